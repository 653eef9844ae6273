/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Building a struct vms_vmm_stats (vmscope/vmm-stats.h), for its two sources: QMP
 * query-stats (lib/stats/qmp-stats.c) and libvirt's domstats (lib/acct/libvirt.c).
 */
#ifndef VMS_VMM_STATS_LOCAL_H
#define VMS_VMM_STATS_LOCAL_H

#include "vmscope-local.h"
#include "vmscope/vmm-stats.h"

/* An empty set of statistics from @source (a static string), or NULL (out of memory). */
struct vms_vmm_stats *vmm_stats_new(const char *source);

/* vCPU @vcpu of @s, added (tid 0, no statistics) when it is not there yet; NULL: ENOMEM. */
struct vms_vmm_vcpu_stats *vmm_stats_vcpu(struct vms_vmm_stats *s, int vcpu);

/*
 * Append a copy of @st (its name is copied) to the list *@list of *@n entries.
 * Return: 0 or -ENOMEM.
 */
int vmm_stats_add(struct vms_vmm_stat **list, size_t *n, const struct vms_vmm_stat *st);

/* Sort the vCPUs by index (the statistics keep their order). */
void vmm_stats_sort(struct vms_vmm_stats *s);

#endif /* VMS_VMM_STATS_LOCAL_H */
