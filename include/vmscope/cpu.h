/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who used each host CPU: the vCPU threads, by state (from the vCPU state model's slices),
 * the idle task and every other task (from sched_switch: a task's time counts when both
 * its switch in and its switch out are in the trace). Where the switch from idle to a task
 * is missing, the task runs from the wakeup that woke it onto the idle CPU (the vCPU state
 * model infers the same for vCPU threads). What none of this accounts for — a CPU whose
 * current task is not known because a sched_switch is missing — is reported as unknown,
 * never given to anyone.
 */
#ifndef VMSCOPE_CPU_H
#define VMSCOPE_CPU_H

#include <stdint.h>

#include "vmscope/analysis.h"
#include "vmscope/vcpu.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_cpu_opts {
	size_t sz;
	void *vcpu; /* the session's vCPU state model (vms_vcpu_ops, added before this) */
};

/* A task's time on one CPU. */
struct vms_cpu_task {
	int pid;
	char comm[16];
	uint64_t ns;
};

struct vms_cpu_usage {
	int cpu;
	uint64_t span_ns; /* the window counted */
	uint64_t idle_ns; /* the idle task (pid 0) */
	uint64_t unknown_ns;
	uint64_t inferred_ns; /* given to tasks whose switch in from idle is missing, from the
			       * sched_wakeup that woke them onto this idle CPU on */
	/* vCPU threads, [thread index of vms_vcpu_threads()][state] */
	uint64_t (*vcpu_ns)[VMS_VCPU_NSTATES];
	size_t nvcpu;
	struct vms_cpu_task *tasks; /* other tasks, most time first */
	size_t ntasks;
};

VMS_API extern const struct vms_analysis_ops vms_cpu_ops;

/** vms_cpu_usage() - per host CPU (after the session ran), @n of them. */
VMS_API const struct vms_cpu_usage *vms_cpu_usage(const void *priv, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_CPU_H */
