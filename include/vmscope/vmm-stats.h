/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM statistics as a VMM hands them out: QEMU's QMP query-stats (vms_qmp_query_stats(),
 * vmscope/qmp.h) and libvirt's `virsh domstats --vm --vcpu` (vms_libvirt_vm_stats(),
 * vmscope/libvirt.h). Both give the same shape, so a caller can take either: the VM-level
 * statistics, and per vCPU (index and host thread) its own, each a name exactly as KVM
 * spells it with a u64 value. Only scalar statistics are kept (cumulative, instant, peak;
 * booleans as 0 or 1); histograms are left out, since libvirt does not pass them on.
 *
 * These are the numbers of KVM's binary statistics (vmscope/stats.h) read by the VMM for
 * us, for when the VMM's statistics file descriptors cannot be borrowed (QEMU opens them
 * only while it answers query-stats).
 */
#ifndef VMSCOPE_VMM_STATS_H
#define VMSCOPE_VMM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/stats.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One scalar statistic. */
struct vms_vmm_stat {
	char *name;		 /* KVM's name, exactly: "exits", "halt_wait_ns" */
	uint64_t value;		 /* raw, as KVM counts it; a boolean is 0 or 1 */
	enum vms_stat_type type; /* VMS_STAT_CUMULATIVE, VMS_STAT_INSTANT or VMS_STAT_PEAK */
	/*
	 * With has_unit, the value is value * base^exponent in unit (QMP: from
	 * query-stats-schemas; libvirt passes on only booleans as such). Without it unit is
	 * VMS_UNIT_NONE, base 10, exponent 0: not known, not "a plain count".
	 */
	bool has_unit;
	enum vms_stat_unit unit;
	unsigned int base; /* 10 or 2 */
	int exponent;
};

/* The statistics of one vCPU. */
struct vms_vmm_vcpu_stats {
	int vcpu; /* QEMU's cpu-index, libvirt's vcpu.N */
	int tid;  /* the host thread that runs it; 0 when not known */
	size_t nstats;
	struct vms_vmm_stat *stats; /* in the order the VMM gave them */
};

struct vms_vmm_stats {
	const char *source; /* "qmp" or "libvirt" (static) */
	size_t nvm;
	struct vms_vmm_stat *vm; /* VM-level statistics, in the order the VMM gave them */
	size_t nvcpus;
	struct vms_vmm_vcpu_stats *vcpus; /* sorted by vcpu */
};

/** vms_vmm_stats_free() - free @s and everything in it; NULL is a no-op. */
VMS_API void vms_vmm_stats_free(struct vms_vmm_stats *s);

/**
 * vms_vmm_stats_find() - one statistic by name
 * @s: the statistics
 * @vcpu: the vCPU index (struct vms_vmm_vcpu_stats.vcpu), or -1 for a VM-level statistic
 * @name: KVM's name of the statistic
 *
 * Return: the statistic, owned by @s; NULL when @s has no such vCPU or statistic.
 */
VMS_API const struct vms_vmm_stat *vms_vmm_stats_find(const struct vms_vmm_stats *s, int vcpu,
						      const char *name);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_VMM_STATS_H */
