/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vCPU state model: what every vCPU thread was doing at every moment, from host events
 * alone. It is an analysis like the others, and the one other analyses build on: they
 * listen to its slices (vms_vcpu_listen()).
 *
 *   guest       kvm_entry → kvm_exit
 *   hypervisor  kvm_exit → kvm_entry, kvm_userspace_exit or a switch out; and from a switch
 *               in until the next kvm event (the thread comes back in the host kernel)
 *   vmm         kvm_userspace_exit → kvm_entry (the VMM handles the exit in user space)
 *   running     guest + hypervisor + vmm, for a thread whose trace has no kvm_entry or
 *               kvm_exit to split them (KVM-PVM hosts, or traces recorded without them).
 *               In a trace with them, a running slice is a thread's host-side time before
 *               its first kvm_entry or kvm_exit, and the totals count it as hypervisor
 *   preempted   switched out still runnable ((prev_state & 0xff) == 0) → switched in
 *   waiting     sched_wakeup → switched in
 *   idle        switched out blocked after a HLT exit → sched_wakeup. Without kvm_exit,
 *               a sleep is a halt when the thread's next kvm event is kvm_vcpu_wakeup
 *   blocked     switched out blocked after any other exit → sched_wakeup
 *   unknown     after a lost-events window on the thread's CPU, until an event says again
 *
 * A thread is counted from its first event. Real traces miss some sched_switch events
 * although the ring buffer reports no loss; when a thread believed off its CPU shows an
 * event of its own, the switch in is inferred: at its wakeup when it was waiting (an idle
 * CPU takes a woken thread at once), else at that event. The time this may misplace is
 * summed as the thread's uncertain_ns bound, never dropped.
 */
#ifndef VMSCOPE_VCPU_H
#define VMSCOPE_VCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "vmscope/analysis.h"
#include "vmscope/hist.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vms_vcpu_state {
	VMS_VCPU_GUEST,
	VMS_VCPU_HYPERVISOR,
	VMS_VCPU_VMM,
	VMS_VCPU_RUNNING,
	VMS_VCPU_PREEMPTED,
	VMS_VCPU_WAITING,
	VMS_VCPU_IDLE,
	VMS_VCPU_BLOCKED,
	VMS_VCPU_UNKNOWN,
	VMS_VCPU_NSTATES
};

/** vms_vcpu_state_name() - "guest", "hypervisor", ... */
VMS_API const char *vms_vcpu_state_name(enum vms_vcpu_state s);
/** vms_vcpu_state_on_cpu() - guest, hypervisor, vmm and running: the thread had a CPU. */
static inline bool vms_vcpu_state_on_cpu(enum vms_vcpu_state s)
{
	return s <= VMS_VCPU_RUNNING;
}

/* A stretch of one state of one vCPU thread. */
struct vms_vcpu_slice {
	int tid;
	int cpu; /* the host CPU it ran on (on-CPU states) or last ran on */
	enum vms_vcpu_state state;
	uint64_t start, end;
	int by;		 /* preempted: the task that took the CPU; else -1 */
	uint32_t reason; /* hypervisor: the exit reason (when known); vmm: KVM_EXIT_* */
};

typedef void (*vms_vcpu_slice_fn)(void *ctx, const struct vms_vcpu_slice *s);

struct vms_vcpu_opts {
	size_t sz;
	/* Only time inside [from, to) counts (0, 0: all of it); trace clock, or ns after the
	 * first record when @relative. */
	uint64_t from, to;
	bool relative;
};

/* A task that preempted a vCPU thread. */
struct vms_vcpu_preemptor {
	int pid;
	char comm[16]; /* its name when it first preempted ("" if the trace does not say) */
	uint64_t count, ns;
};

struct vms_vcpu_thread {
	int tid;
	int vm, vcpu; /* from the trace's VM map or the thread's name; -1 unknown */
	uint64_t first_ts, end_ts;
	uint64_t ns[VMS_VCPU_NSTATES];
	bool split;		     /* kvm_entry/kvm_exit split its running time */
	uint64_t exits;		     /* kvm_exit records */
	uint64_t kvm_events;	     /* its kvm events of any kind */
	uint64_t migrations;	     /* it ran on another CPU than the time before */
	uint64_t preemptions;	     /* switched out runnable */
	uint64_t wakeups;	     /* sched_wakeup → switch in, timed (in wake_lat) */
	uint64_t inferred;	     /* switch ins inferred from its own events */
	uint64_t uncertain_ns;	     /* how far the inferred switch ins may be off, in all */
	struct vms_hist wake_lat;    /* wakeup → running, ns */
	struct vms_hist preempt_lat; /* the length of each preemption, ns */
	/* time on each host CPU (ncpu of them) in each on-CPU state (guest .. running) */
	uint64_t (*cpu_ns)[VMS_VCPU_RUNNING + 1];
	unsigned int ncpu;
	struct vms_vcpu_preemptor *by; /* who preempted it, most time first after finish */
	size_t nby;
};

struct vms_vcpu_summary {
	bool split;	     /* some thread's running time is split (kvm_entry/kvm_exit seen) */
	bool has_entry_exit; /* the trace has kvm_entry and kvm_exit records at all */
	uint64_t start_ts, end_ts; /* the window counted */
	uint64_t lost_events, lost_windows;
	uint64_t inferred, uncertain_ns;
};

VMS_API extern const struct vms_analysis_ops vms_vcpu_ops;

/**
 * vms_vcpu_listen() - call @fn(@ctx, slice) for every slice of every vCPU thread, as each
 * ends (a sleep whose kind is decided by a later event comes with it, in order per thread),
 * clipped to the window (vms_vcpu_opts.from/to).
 * Return: 0 or -ENOMEM.
 */
VMS_API int vms_vcpu_listen(void *priv, vms_vcpu_slice_fn fn, void *ctx);

/**
 * vms_vcpu_window() - the window counted, in trace time (once the first record came);
 * @to 0: up to the end. Slices handed to listeners are clipped to it.
 */
VMS_API void vms_vcpu_window(const void *priv, uint64_t *from, uint64_t *to);

/**
 * vms_vcpu_last_run() - where and when thread @tid last had a CPU: from its (seen or
 * inferred) switch in to its switch out (both the switch in while it runs)
 * Return: false when @tid is not a vCPU thread or never ran.
 */
VMS_API bool vms_vcpu_last_run(const void *priv, int tid, int *cpu, uint64_t *start, uint64_t *end);

/** vms_vcpu_threads() - the vCPU threads found (after the session ran), @n of them. */
VMS_API const struct vms_vcpu_thread *vms_vcpu_threads(const void *priv, size_t *n);
VMS_API void vms_vcpu_summary(const void *priv, struct vms_vcpu_summary *out);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_VCPU_H */
