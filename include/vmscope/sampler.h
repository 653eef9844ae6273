/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A live sampler of the host's VMs, for stat, top and serve. Every vms_sampler_update()
 * lists the VMs and reads, for every vCPU thread, one set of named fields: CPU time from
 * procfs, KVM's own statistics through the VMM's descriptors, and trace events counted in
 * the kernel (perf counters on the kvm tracepoints, kvm_stat's way without hist
 * triggers). It keeps the previous sample and gives each field's value, its rate over the
 * interval, the VM's sums over its vCPUs (all kvm_stat shows), and each host CPU's time
 * by kind with guest and steal apart. Event counters persist from sample to sample and
 * follow VMs that start and end: a VM that appears is counted from then on, one that
 * goes away is dropped without error.
 *
 * A field that cannot be read for a thread is NAN, never 0; the VM says why
 * (kvm_err, events_err).
 */
#ifndef VMSCOPE_SAMPLER_H
#define VMSCOPE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/host.h"
#include "vmscope/vmm-stats.h"
#include "vmscope/wakelat.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a field comes from. */
enum vms_field_source {
	VMS_FIELD_PROC,	  /* /proc/<pid>/task/<tid>/stat and schedstat */
	VMS_FIELD_KVM,	  /* KVM's binary statistics, through the VMM's descriptor */
	VMS_FIELD_EVENTS, /* kvm tracepoints counted in the kernel */
};

struct vms_field_info {
	const char *key;   /* "cpu.run_s", "kvm.exits", "events.kvm_exit" */
	const char *title; /* a short column title ("run", "exits", "kvm_exit") */
	enum vms_field_source source;
	bool seconds; /* a time in seconds (its rate is a share of one CPU), else a count */
};

/* Exits by reason (with vms_sampler_opts.exit_reasons): the kvm_exit tracepoint by its
 * exit_reason (VMX or SVM), and exits to the VMM (kvm_userspace_exit) by KVM_EXIT_*
 * reason, counted since the sampler began, per vCPU thread. */
enum vms_reason_kind { VMS_REASON_KVM_EXIT, VMS_REASON_USERSPACE, VMS_REASON_KINDS };

struct vms_sample_reason {
	enum vms_reason_kind kind;
	uint64_t code;	  /* the exit_reason or KVM_EXIT_* number */
	const char *name; /* "EPT_VIOLATION", "npf", "MMIO", ...; NULL for a code without one */
	double value;	  /* count */
	double rate;	  /* per second over the interval; NAN when not known (yet) */
};

struct vms_sample_vcpu {
	const struct vms_host_vcpu *thread;
	const double *value; /* one per field: NAN when not known for this thread */
	const double *rate;  /* per second over the interval; NAN when not known (yet) */
	size_t nreasons;     /* sorted by kind and code */
	const struct vms_sample_reason *reasons;
	/* With wakeup_latency: the thread's wakeup latencies since the sampler began timing
	 * it (sched_wakeup to running); NULL when not timed. */
	const struct vms_wakelat_hist *wakeups;
};

struct vms_sample_vm {
	const struct vms_host_vm *vm;
	size_t nvcpus;
	const struct vms_sample_vcpu *vcpus;
	const double *sum;	/* over its vCPUs; NAN where no vCPU knows the field */
	const double *sum_rate; /* NAN unless every vCPU that knows the field has a rate */
	size_t nreasons;	/* the sums of its vCPUs' exits by reason */
	const struct vms_sample_reason *reasons;
	/* Where KVM's statistics came from: "fd" (the VMM's own statistics descriptors),
	 * "qmp" (QEMU's QMP socket, query-stats) or "libvirt" (domstats --vm --vcpu), for a
	 * VMM that keeps no descriptor open; NULL when none could be read (kvm_err). */
	const char *kvm_source;
	const struct vms_vmm_stats *vmm; /* every statistic, for "qmp" and "libvirt" */
	int kvm_err;			 /* 0, or why a vCPU's KVM statistics are not readable */
	const char *kvm_msg;	/* the VMM's or libvirt's detail for kvm_err, "" when none */
	int events_err;		/* 0, or why events are not counted for this VM */
	const char *events_msg; /* the kernel's detail for events_err, "" when none */
	bool new_vm;		/* not in the previous sample */
};

/* Each host CPU's time by kind; user and nice leave guest time out (top and vmstat fold
 * guest into user). */
enum vms_cpu_kind {
	VMS_CPU_USER,
	VMS_CPU_NICE,
	VMS_CPU_SYSTEM,
	VMS_CPU_IRQ,
	VMS_CPU_GUEST,
	VMS_CPU_STEAL,
	VMS_CPU_IOWAIT,
	VMS_CPU_IDLE,
	VMS_CPU_KINDS
};

struct vms_sample_cpu {
	int cpu;
	double share[VMS_CPU_KINDS]; /* fractions of the CPU's time, summing to 1 */
};

struct vms_sample {
	uint64_t ts_ns; /* CLOCK_MONOTONIC */
	double dt;	/* seconds since the previous sample; 0 for the first */
	size_t nvms;	/* the VMs that match the options */
	const struct vms_sample_vm *vms;
	size_t ncpus;	      /* 0 when /proc/stat could not be read */
	bool cpus_since_boot; /* shares since boot (first sample), else over dt */
	const struct vms_sample_cpu *cpus;
	size_t nraw_cpus; /* /proc/stat's per-CPU lines as read (USER_HZ ticks) */
	const struct vms_host_cpu *raw_cpus;
	/* With exit_reasons: how they are counted ("hist": in the kernel; "stream": traced
	 * and counted by vmscope), the events not counted (tables full, ring buffer lost),
	 * or why they cannot be counted. */
	const char *reasons_backend; /* NULL when not counted */
	uint64_t reasons_dropped;
	int reasons_err;
	const char *reasons_msg; /* detail for reasons_err, "" when none */
	/* With wakeup_latency: events the ring buffer lost (their wakeups are not timed), or
	 * why wakeups cannot be timed. */
	bool wakeups_timed; /* the wakeups of the vCPU threads are timed */
	uint64_t wakeups_lost;
	int wakeups_err;
	const char *wakeups_msg; /* detail for wakeups_err, "" when none */
};

struct vms_sampler_opts {
	size_t sz;		  /* sizeof(struct vms_sampler_opts) */
	const char *proc_root;	  /* NULL: "/proc" */
	const char *debugfs_root; /* NULL: "/sys/kernel/debug/kvm" */
	int pid;		  /* only the VM of this process; 0: every VM */
	const char *guest;	  /* only VMs with this name; NULL: every VM */
	bool no_events;		  /* do not count trace events (no perf counters opened) */
	bool exit_reasons;	  /* count exits by reason (vms_keycount: hist trigger or stream) */
	bool wakeup_latency;	  /* time the vCPU threads' wakeups (vms_wakelat: traced) */
	bool no_vmm_stats;	  /* never ask a VMM (QMP, libvirt) for KVM statistics: each
				   * answer costs QEMU tens of ms and kicks its vCPUs */
};

struct vms_sampler;

/**
 * vms_sampler_new() - a sampler; nothing is read before vms_sampler_update()
 * @opts: NULL for the defaults (every VM, events counted)
 * Return: 0 and *out (free with vms_sampler_free()), or -ENOMEM / -EINVAL.
 */
VMS_API int vms_sampler_new(const struct vms_sampler_opts *opts, struct vms_sampler **out);

/**
 * vms_sampler_update() - take a sample: list the VMs and read every field
 * Return: 0, or a negative errno when /proc cannot be listed or memory runs out (the
 * previous sample stays valid then).
 */
VMS_API int vms_sampler_update(struct vms_sampler *s);

/** vms_sampler_sample() - the last sample (empty before the first update). */
VMS_API const struct vms_sample *vms_sampler_sample(const struct vms_sampler *s);

/** vms_sampler_nfields() - how many fields each vCPU has. */
VMS_API size_t vms_sampler_nfields(const struct vms_sampler *s);

/** vms_sampler_field() - field @k's description, or NULL past the end. */
VMS_API const struct vms_field_info *vms_sampler_field(const struct vms_sampler *s, size_t k);

/** vms_sampler_field_index() - the index of the field named @key, or -1. */
VMS_API int vms_sampler_field_index(const struct vms_sampler *s, const char *key);

/** vms_sampler_free() - close the counters and free everything; NULL is a no-op. */
VMS_API void vms_sampler_free(struct vms_sampler *s);

/**
 * vms_cpu_shares() - CPU @c's time by kind since @prev (NULL: since boot)
 * Return: false when no tick passed (the shares are then all 0).
 */
VMS_API bool vms_cpu_shares(const struct vms_host_cpu *c, const struct vms_host_cpu *prev,
			    double share[VMS_CPU_KINDS]);

/** vms_reason_kind_name() - "kvm_exit", "userspace_exit" (static). */
VMS_API const char *vms_reason_kind_name(enum vms_reason_kind k);

/** vms_cpu_kind_name() - "user", "nice", "system", "irq", "guest", "steal", ... (static) */
VMS_API const char *vms_cpu_kind_name(enum vms_cpu_kind k);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_SAMPLER_H */
