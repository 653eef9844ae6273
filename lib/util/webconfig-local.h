/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the web configuration (lib/util/webconfig.c) and its basic auth
 * (lib/util/basic-auth.c): the cache of successful checks that a configuration with users
 * carries, made when its basic_auth_users is parsed.
 */
#ifndef VMSCOPE_WEBCONFIG_LOCAL_H
#define VMSCOPE_WEBCONFIG_LOCAL_H

#include "vmscope/webconfig.h"

/* c->cache for a configuration with users: 0 or -ENOMEM. */
int vms_webconfig_cache_new(struct vms_webconfig *c);
/* Free c->cache (wiping the passwords it holds); none is a no-op. */
void vms_webconfig_cache_free(struct vms_webconfig *c);

#endif /* VMSCOPE_WEBCONFIG_LOCAL_H */
