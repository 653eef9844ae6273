/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private state of the test VM, shared by vmm.c (KVM setup and run loop), truth.c (what the
 * guest and the VMM counted, turned into host time and JSON, also read back from a dump of
 * the multiboot guest) and multiboot.c (the guest as a multiboot kernel).
 */
#ifndef VMS_TESTVM_LOCAL_H
#define VMS_TESTVM_LOCAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <linux/kvm.h>

#include "vmscope-local.h"
#include "vmscope/stats.h"
#include "vmscope/testvm.h"
#include "guest/tvm-abi.h"

struct vms_testvm;

struct tvm_vcpu_host {
	struct vms_testvm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	_Atomic int tid;
	int err;   /* negative errno / VMS_E_* if this vCPU failed */
	bool done; /* the guest reported DONE */
	struct vms_testvm_vmm_counts vmm;
	struct vms_stats *stats;
	uint64_t *stats_begin; /* data block copy at start (one u64 per value) */
	size_t stats_nvals;
};

/* What the host told vms_testvm_open_dump() about one vCPU of a dumped guest. */
struct tvm_dump_vcpu {
	int tid;
	size_t nstats;
	char **stat_names;
	uint64_t *stat_deltas;
};

/* One (host TSC, CLOCK_MONOTONIC) pair: the mapping between the two clocks. */
struct tvm_clock_pair {
	uint64_t tsc;
	uint64_t mono_ns;
};

struct vms_testvm {
	struct vms_testvm_opts opts;
	struct vms_testvm_phase phases[VMS_TESTVM_MAX_PHASES];
	int pin[VMS_TESTVM_MAX_VCPUS];
	int kvm_fd, vm_fd;
	void *mem;
	size_t mem_size;
	size_t run_size; /* mmap size of each vCPU's struct kvm_run */
	struct tvm_shared *shared;
	unsigned int nvcpus;
	struct tvm_vcpu_host vcpu[VMS_TESTVM_MAX_VCPUS];
	struct vms_stats *vm_stats;
	uint64_t tsc_khz;
	int64_t tsc_offset; /* guest TSC - host TSC */
	struct tvm_clock_pair clk_start, clk_end;
	uint64_t stop_mono_ns; /* when a stop was asked for; 0 if none */
	_Atomic bool stopping;
	bool ran;
	bool scheduled; /* the schedule is in shared (atomic: read while it runs) */
	pthread_mutex_t lock;
	char errbuf[256];
	/* Read back from a dump (vms_testvm_open_dump()): no KVM objects, shared is a copy. */
	bool dump;
	bool dump_stopped;
	char dump_vmm[32];
	char dump_name[64];
	int dump_pid;
	int64_t dump_vmm_pio;
	struct tvm_dump_vcpu dumpv[VMS_TESTVM_MAX_VCPUS];
};

/* Record the first error of the VM with a sentence for vms_testvm_last_error(). */
__attribute__((format(printf, 3, 4))) int tvm_fail(struct vms_testvm *vm, int err, const char *fmt,
						   ...);

/* Record the detail of a failure without a VM, for vms_testvm_last_error(NULL); "" clears. */
__attribute__((format(printf, 1, 2))) void tvm_set_last_error(const char *fmt, ...);

/* AMD and Hygon CPUs call the hypervisor with VMMCALL, Intel ones with VMCALL. */
bool tvm_host_is_amd(void);

uint64_t tvm_mono_ns(void);
uint64_t tvm_rdtsc(void);
struct tvm_clock_pair tvm_clock_pair_now(void);
/* Guest TSC → host CLOCK_MONOTONIC ns, from the two clock pairs of the run. */
uint64_t tvm_guest_tsc_to_mono(const struct vms_testvm *vm, uint64_t guest_tsc);
/* A guest TSC interval → ns. */
uint64_t tvm_tsc_to_ns(const struct vms_testvm *vm, uint64_t ticks);

#endif /* VMS_TESTVM_LOCAL_H */
