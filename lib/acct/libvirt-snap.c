// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvirt's view of a domain in an accounting snapshot: "libvirt.*" counters from
 * vms_libvirt_read() (virsh cpu-stats, domstats --cpu-total --vcpu), so that validate can
 * put libvirt's figures beside the sources they come from.
 */
#include "acct-local.h"

int acct_read_libvirt(struct vms_acct *a, const char *uri, const char *domain)
{
	(void)uri;
	(void)domain;
	return vms_acct_set_str(a, "err.libvirt", "this vmscope was built without libvirt");
}
