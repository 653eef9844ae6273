/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private parts of the accounting layer (lib/acct/): the snapshot's storage and the
 * printf-style key helpers that the readers and the checks share.
 */
#ifndef VMS_ACCT_LOCAL_H
#define VMS_ACCT_LOCAL_H

#include <stdarg.h>

#include "vmscope-local.h"
#include "vmscope/acct.h"

#define VMS_ACCT_KEY_MAX 127
#define ACCT_KEY_BUF (VMS_ACCT_KEY_MAX + 2) /* a key, one byte to see it is too long, NUL */

struct acct_entry {
	char *key;
	char *str; /* NULL: a counter */
	uint64_t val;
};

/* Sorted by key. */
struct vms_acct {
	size_t n, cap;
	struct acct_entry *e;
};

/* Build a key with printf into @key (ACCT_KEY_BUF bytes): 0, or -EINVAL when too long. */
int acct_vkey(char *key, const char *fmt, va_list ap);

/* vms_acct_set() with the key built by vprintf: 0, -EINVAL (key), -ENOMEM. */
int acct_vsetf(struct vms_acct *a, uint64_t val, const char *fmt, va_list ap);

/* vms_acct_get() with the key built by printf. */
__attribute__((format(printf, 3, 4))) int acct_getf(const struct vms_acct *a, uint64_t *val,
						    const char *fmt, ...);

/* Mount point of a cgroup hierarchy: v1 with the cpuacct controller, or cgroup2. */
int acct_cgroup_mount(const char *proc, bool v2, char *out, size_t len);

/* Fill the "libvirt.*" part of a snapshot (lib/acct/libvirt-snap.c). */
int acct_read_libvirt(struct vms_acct *a, const char *uri, const char *domain);

#endif /* VMS_ACCT_LOCAL_H */
