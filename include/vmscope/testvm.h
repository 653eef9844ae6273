/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The built-in test VM: a small virtual machine monitor written directly on the KVM ioctl
 * API, whose guest runs a duty-cycle load and causes exits on demand, and counts all of it.
 * It is vmscope's ground truth: every analysis is checked against what this VM knows it
 * did.
 *
 * The guest's load runs in guest user mode (CPL3), so it runs natively both on VMX/SVM
 * hosts and on KVM-PVM hosts, where guest kernel-mode code is emulated. Idle time is a real
 * HLT woken by the guest's TSC-deadline timer, so the vCPU thread really sleeps in the
 * host. The VMM is one process: vCPU threads are named like QEMU's ("CPU 0/KVM").
 *
 * Typical use: vms_testvm_new() → vms_testvm_run() (blocks; vms_testvm_stop() from another
 * thread ends it early) → vms_testvm_write_truth() → vms_testvm_free().
 *
 * The same guest also boots as a multiboot kernel under QEMU or libvirt
 * (vms_testvm_multiboot_image(), with the command line of vms_testvm_multiboot_cmdline()).
 * Its truth then stays in guest memory; vms_testvm_open_dump() reads it back from a dump of
 * VMS_TESTVM_DUMP_GPA (QEMU's pmemsave), and the accessors below and
 * vms_testvm_write_truth() work on that object as on a VM run here, except for what only
 * this VMM knows (host times, its own exit counts).
 */
#ifndef VMSCOPE_TESTVM_H
#define VMSCOPE_TESTVM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_TESTVM_MAX_VCPUS 64
#define VMS_TESTVM_MAX_PHASES 32

struct vms_testvm_phase {
	unsigned int duty;    /* busy share of every period, percent (0..100) */
	uint64_t duration_ns; /* length of the phase */
};

struct vms_testvm_opts {
	size_t sz;	    /* sizeof(struct vms_testvm_opts), for compatibility */
	unsigned int vcpus; /* 1..VMS_TESTVM_MAX_VCPUS */
	const struct vms_testvm_phase *phases; /* the schedule, run in order by every vCPU */
	unsigned int nphases;		       /* 1..VMS_TESTVM_MAX_PHASES */
	uint64_t period_ns;		       /* duty-cycle period; 0 = 100 ms */
	double mmio_rate; /* load MMIO exits per second of busy time, per vCPU; 0 = none */
	double pio_rate;  /* load port-I/O exits per second of busy time, per vCPU; 0 = none */
	const int *pin;	  /* vcpus entries: host CPU for each vCPU thread, -1 = any; or NULL */
	uint64_t start_delay_ns; /* from vms_testvm_run() to the start of phase 0; 0 = 50 ms */
	double msr_rate;	 /* load WRMSR exits (to the VMM, through an MSR filter) per second
				  * of busy time, per vCPU; 0 = none */
	double hypercall_rate;	 /* load hypercalls (VMCALL/VMMCALL from guest user mode, handled
				  * by the host kernel) per second of busy time, per vCPU */
	/* Called by vms_testvm_run() once every vCPU thread runs and has its name (so that
	 * a tool started then sees them all); NULL: none. */
	void (*started)(void *ctx);
	void *started_ctx;
};

/* What one vCPU did in one phase (or outside the schedule), as the guest counted it. */
struct vms_testvm_vcpu_phase {
	unsigned int duty;
	bool complete;	      /* the phase ran to its end */
	uint64_t busy_ns;     /* guest-measured busy time */
	uint64_t idle_ns;     /* guest-measured idle time: halted, up to each deadline */
	uint64_t late_ns;     /* wake-ups past the deadline (and, in phase 0, a start after the
			       * common start): time the host kept the vCPU from running when
			       * the guest wanted to run */
	uint64_t late_max_ns; /* the latest single wake-up */
	uint64_t stall_ns;    /* inside busy_ns, the gaps of 100 us or more the guest saw
			       * between two reads of its clock around one chunk of work: busy
			       * time its vCPU did not run, whoever took the CPU (the host's
			       * scheduler, or a hypervisor under the host that its steal time
			       * may not show) */
	uint64_t stalls;      /* how many such gaps */
	uint64_t wakeups;     /* idle segments */
	uint64_t periods;
	uint64_t work;		  /* computation units done */
	uint64_t mmio;		  /* load MMIO writes (exits to the VMM) */
	uint64_t pio;		  /* load port writes (exits to the VMM) */
	uint64_t msr;		  /* load WRMSRs (exits to the VMM) */
	uint64_t hypercall;	  /* load hypercalls (exits to the host kernel) */
	uint64_t hypercall_eperm; /* ... answered -KVM_EPERM, as KVM does for user mode */
	uint64_t mmio_missed;	  /* load MMIO writes owed by a busy part that ended first */
	uint64_t pio_missed;	  /* the same for port writes, WRMSRs, hypercalls */
	uint64_t msr_missed;
	uint64_t hypercall_missed;
	uint64_t hlt;	       /* HLT instructions */
	uint64_t irq;	       /* interrupts taken */
	uint64_t mmio_control; /* control writes (DONE/FAULT reports); totals only */
};

/* What the VMM saw one vCPU thread do. */
struct vms_testvm_vmm_counts {
	uint64_t mmio_load;    /* KVM_EXIT_MMIO at the load address */
	uint64_t mmio_control; /* KVM_EXIT_MMIO at the control page (DONE, FAULT) */
	uint64_t mmio_other;   /* KVM_EXIT_MMIO anywhere else (a bug if not 0) */
	uint64_t pio;	       /* KVM_EXIT_IO at the load port */
	uint64_t io_other;     /* KVM_EXIT_IO at any other port */
	uint64_t msr;	       /* KVM_EXIT_X86_WRMSR of the load MSR */
	uint64_t msr_other;    /* KVM_EXIT_X86_RDMSR/WRMSR of any other MSR (a bug if not 0) */
	uint64_t intr;	       /* KVM_EXIT_INTR (a signal interrupted KVM_RUN) */
	uint64_t other;	       /* any other exit reason */
	uint64_t seq_errors;   /* load MMIO values out of sequence or from the wrong vCPU */
	uint64_t run_calls;    /* KVM_RUN calls */
};

struct vms_testvm;

/**
 * vms_testvm_new() - create the VM: memory, guest image, vCPUs, binary stats fds
 * @opts: options (copied)
 * @out: receives the VM; free with vms_testvm_free()
 *
 * Return: 0, or a negative errno (-ENOENT: no /dev/kvm; -EACCES: no permission on it;
 * -VMS_E_KVM_API: a required capability is missing; vms_testvm_last_error() says which).
 */
VMS_API int vms_testvm_new(const struct vms_testvm_opts *opts, struct vms_testvm **out);

/**
 * vms_testvm_run() - run the schedule to its end, or until vms_testvm_stop()
 *
 * Starts one thread per vCPU and returns once every vCPU finished. Can be called once.
 * The calling thread's signal mask is inherited by the vCPU threads.
 * Return: 0; -VMS_E_GUEST_FAULT / -VMS_E_GUEST_EXIT / a negative errno when a vCPU failed
 * (vms_testvm_last_error() has the detail); the truth is still available.
 */
VMS_API int vms_testvm_run(struct vms_testvm *vm);

/**
 * vms_testvm_stop() - ask a running VM to finish now
 *
 * Safe from any thread. The guest closes its current busy or idle segment, so the truth
 * stays exact; the phase that was running is marked incomplete.
 */
VMS_API void vms_testvm_stop(struct vms_testvm *vm);

/** vms_testvm_free() - destroy the VM and close everything; NULL is a no-op. */
VMS_API void vms_testvm_free(struct vms_testvm *vm);

/**
 * vms_testvm_last_error() - detail of the last failure of @vm ("" if none), owned by @vm;
 * with @vm NULL, of the last vms_testvm_new(), vms_testvm_open_dump(),
 * vms_testvm_truth_from_dump() or vms_testvm_host_tsc_khz() that failed in this thread.
 */
VMS_API const char *vms_testvm_last_error(const struct vms_testvm *vm);

VMS_API unsigned int vms_testvm_vcpus(const struct vms_testvm *vm);

/** vms_testvm_vcpu_tid() - host thread id of vCPU @i (0 before vms_testvm_run()). */
VMS_API int vms_testvm_vcpu_tid(const struct vms_testvm *vm, unsigned int i);

/** vms_testvm_vcpu_fd() - the KVM vCPU fd of vCPU @i (owned by @vm), or -EINVAL. */
VMS_API int vms_testvm_vcpu_fd(const struct vms_testvm *vm, unsigned int i);

/** vms_testvm_vm_fd() - the KVM VM fd (owned by @vm). */
VMS_API int vms_testvm_vm_fd(const struct vms_testvm *vm);

/**
 * vms_testvm_vcpu_stats() - binary statistics of vCPU @i (KVM_GET_STATS_FD), or NULL when
 * the kernel lacks them. Owned by @vm. Their values are the last ones read: at creation
 * (vms_testvm_stats_begin()) and when vms_testvm_run() returned (vms_testvm_stats_end()).
 */
VMS_API struct vms_stats *vms_testvm_vcpu_stats(const struct vms_testvm *vm, unsigned int i);
VMS_API struct vms_stats *vms_testvm_vm_stats(const struct vms_testvm *vm);

/**
 * vms_testvm_stat_delta() - growth of statistic @name of vCPU @i over vms_testvm_run()
 * Return: 0 and *delta, -ENOENT (no such statistic or no stats), -EINVAL.
 */
VMS_API int vms_testvm_stat_delta(const struct vms_testvm *vm, unsigned int i, const char *name,
				  uint64_t *delta);

/** Guest-counted truth of vCPU @i in phase @p (p == nphases: outside the schedule). */
VMS_API int vms_testvm_vcpu_phase(const struct vms_testvm *vm, unsigned int i, unsigned int p,
				  struct vms_testvm_vcpu_phase *out);

/** Sum over the phases and outside them of vCPU @i, control writes included. */
VMS_API int vms_testvm_vcpu_totals(const struct vms_testvm *vm, unsigned int i,
				   struct vms_testvm_vcpu_phase *out);

/**
 * vms_testvm_vcpu_done() - the guest reported the end of its schedule on vCPU @i (its
 * record in guest memory; also set when a stop ended it)
 */
VMS_API bool vms_testvm_vcpu_done(const struct vms_testvm *vm, unsigned int i);

/* An exception the guest reported instead of finishing. */
struct vms_testvm_fault {
	uint64_t vector, error, rip, cs, cr2;
};

/**
 * vms_testvm_vcpu_fault() - the exception vCPU @i's guest reported
 * Return: 0 and *out, or -ENOENT when it reported none.
 */
VMS_API int vms_testvm_vcpu_fault(const struct vms_testvm *vm, unsigned int i,
				  struct vms_testvm_fault *out);

/** What the VMM counted for vCPU @i; -ENOENT for a dump. */
VMS_API int vms_testvm_vmm_counts(const struct vms_testvm *vm, unsigned int i,
				  struct vms_testvm_vmm_counts *out);

/**
 * vms_testvm_phase_times() - phase @p's start and end in host CLOCK_MONOTONIC ns
 * Return: 0, or -ENOENT for a phase that never started (or a dump: no host times).
 */
VMS_API int vms_testvm_phase_times(const struct vms_testvm *vm, unsigned int p, uint64_t *start_ns,
				   uint64_t *end_ns, bool *complete);

/**
 * vms_testvm_phase_tsc() - phase @p's start and end in guest TSC ticks
 * Return: 0, or -ENOENT for a phase that never started.
 */
VMS_API int vms_testvm_phase_tsc(const struct vms_testvm *vm, unsigned int p, uint64_t *start_tsc,
				 uint64_t *end_tsc, bool *complete);

/** vms_testvm_nphases() - phases in the schedule. */
VMS_API unsigned int vms_testvm_nphases(const struct vms_testvm *vm);

/** vms_testvm_tsc_khz() - the guest's TSC frequency the schedule was computed with. */
VMS_API uint64_t vms_testvm_tsc_khz(const struct vms_testvm *vm);

/** vms_testvm_period_ns() - the duty-cycle period. */
VMS_API uint64_t vms_testvm_period_ns(const struct vms_testvm *vm);

/**
 * vms_testvm_write_truth() - write the ground truth as JSON (format in doc/vmscope-testvm.md)
 * @f: an open stream (not closed)
 * Return: 0 or a negative errno.
 */
VMS_API int vms_testvm_write_truth(const struct vms_testvm *vm, FILE *f);

/* ---- the guest under another VMM: multiboot image, command line, memory dump ---- */

/* Guest-physical address of the shared block that holds the schedule and the truth. */
#define VMS_TESTVM_DUMP_GPA 0x20000

/**
 * vms_testvm_multiboot_image() - the guest as a multiboot (v1) kernel
 * @size: receives its length in bytes
 *
 * A flat binary with an "a.out kludge" header, loaded at 1 MiB; `qemu-system-x86_64
 * -enable-kvm -cpu max -kernel IMAGE -append CMDLINE -smp N` boots it.
 * Return: the image; static, not to be freed.
 */
VMS_API const void *vms_testvm_multiboot_image(size_t *size);

/**
 * vms_testvm_multiboot_cmdline() - the guest command line that runs a schedule
 * @opts: as for vms_testvm_new(); vcpus, pin and started are not used (the guest runs on
 *	  every CPU it finds); msr_rate must be 0: QEMU cannot filter an MSR to count its
 *	  exits, and the guest would take a #GP
 * @tsc_khz: the guest's TSC frequency (vms_testvm_host_tsc_khz()); the guest needs it to
 *	     turn times into TSC ticks
 * @buf: receives the NUL-terminated line, at most @len bytes
 *
 * Times go to the guest in microseconds and rates in millionths per second.
 * Return: 0; -EINVAL (invalid options, msr_rate, a time that is not a whole number of
 * microseconds); -ENOSPC when @len is too small.
 */
VMS_API int vms_testvm_multiboot_cmdline(const struct vms_testvm_opts *opts, uint64_t tsc_khz,
					 char *buf, size_t len);

/**
 * vms_testvm_host_tsc_khz() - the TSC frequency KVM gives guests on this host
 * @khz: receives KVM_GET_TSC_KHZ of a scratch vCPU (QEMU keeps it unless told otherwise)
 * Return: 0, or a negative errno as for vms_testvm_new().
 */
VMS_API int vms_testvm_host_tsc_khz(uint64_t *khz);

/**
 * vms_testvm_dump_size() - bytes from VMS_TESTVM_DUMP_GPA that hold the truth of @vcpus vCPUs
 * (VMS_TESTVM_MAX_VCPUS for any guest).
 */
VMS_API size_t vms_testvm_dump_size(unsigned int vcpus);

/* The growth of one KVM statistic over the run. */
struct vms_testvm_stat_delta {
	const char *name;
	uint64_t delta;
};

/* What the host knows about one vCPU of a dumped guest. */
struct vms_testvm_dump_vcpu {
	int tid;				   /* host thread id, 0 if unknown */
	const struct vms_testvm_stat_delta *stats; /* KVM statistics' growth, or NULL */
	size_t nstats;
};

struct vms_testvm_dump_opts {
	size_t sz;	  /* sizeof(struct vms_testvm_dump_opts), for compatibility */
	const char *vmm;  /* who ran the guest, for the truth's "vmm"; NULL: "qemu" */
	const char *name; /* the VM's name, or NULL */
	int pid;	  /* the VMM's process id, 0 if unknown */
	bool stopped;	  /* the host stopped the guest before its schedule ended */
	const struct vms_testvm_dump_vcpu *vcpus; /* nvcpus entries (by vCPU index), or NULL */
	unsigned int nvcpus;
	int64_t vmm_pio; /* port writes the VMM received at the load port, all vCPUs together;
			  * negative: unknown */
};

/**
 * vms_testvm_open_dump() - read the truth back from a dump of the multiboot guest's memory
 * @buf: @len bytes of guest-physical memory from VMS_TESTVM_DUMP_GPA on (untrusted: every
 *	 field is checked before use); copied
 * @opts: what the host knows besides (copied), or NULL
 * @out: receives a VM object for the accessors and vms_testvm_write_truth(); free with
 *	 vms_testvm_free(). It cannot run. Phase times exist in guest TSC ticks only
 *	 (vms_testvm_phase_tsc()); vms_testvm_phase_times() and vms_testvm_vmm_counts() answer
 *	 -ENOENT.
 *
 * Return: 0; -VMS_E_TESTVM_DUMP (not the shared block of this guest, from another
 * vmscope version, too short for its vCPUs, or damaged); -VMS_E_GUEST_BOOT (the guest
 * refused its command line); -EAGAIN (the guest has not finished booting: dump again);
 * -EINVAL; -ENOMEM. vms_testvm_last_error(NULL) says what exactly.
 */
VMS_API int vms_testvm_open_dump(const void *buf, size_t len,
				 const struct vms_testvm_dump_opts *opts, struct vms_testvm **out);

/**
 * vms_testvm_truth_from_dump() - vms_testvm_open_dump(), vms_testvm_write_truth() to @f,
 * vms_testvm_free() in one call
 * Return: as vms_testvm_open_dump(), or the write's negative errno.
 */
VMS_API int vms_testvm_truth_from_dump(const void *buf, size_t len,
				       const struct vms_testvm_dump_opts *opts, FILE *f);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_TESTVM_H */
