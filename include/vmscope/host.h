/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM registry of a host: which processes run KVM virtual machines, their names, their
 * vCPU threads (host thread id → vCPU index), and what can be read about them from the
 * outside: per-thread CPU, guest and run-queue time from procfs, and the per-VM debugfs
 * folder (whose counter files may be unreadable, e.g. under kernel lockdown).
 *
 * A VM is a process holding an "anon_inode:kvm-vm" file descriptor. Its vCPU threads are
 * found through debugfs (vcpuN/pid) when readable, else through QEMU's thread names
 * ("CPU N/KVM"), which vmscope's test VM uses too. A VMM that keeps its KVM statistics
 * descriptors open ("kvm-vm-stats", "kvm-vcpu-stats:N") can be read from outside with
 * vms_stats_open_remote() (vmscope/stats.h).
 */
#ifndef VMSCOPE_HOST_H
#define VMSCOPE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_host_vcpu {
	int vcpu; /* vCPU index, -1 when unknown */
	int tid;  /* host thread id */
	char comm[16];
	int last_cpu; /* host CPU it ran on last (stat field 39) */
	/* /proc/<pid>/task/<tid>/stat, tick-based (USER_HZ), in ns; guest is inside user */
	uint64_t user_ns, system_ns, guest_ns;
	/* /proc/<pid>/task/<tid>/schedstat: exact on-CPU and run-queue time, ns */
	uint64_t run_ns, wait_ns, slices;
	int stat_err;	   /* 0, or the negative errno reading stat gave */
	int schedstat_err; /* 0, or the negative errno reading schedstat gave */
	int stats_fd;	   /* its "kvm-vcpu-stats:N" descriptor in the VMM, -1 if none;
			    * read it with vms_stats_open_remote() */
};

struct vms_host_vm {
	int pid;
	int vm_fd;		 /* the kvm-vm descriptor number in that process */
	char name[64];		 /* from the command line, else the process name */
	const char *name_source; /* "qemu -name", "vmscope --name", "comm" (static) */
	char comm[16];
	unsigned int vcpu_fds; /* kvm-vcpu descriptors the process holds */
	int vm_stats_fd;       /* its "kvm-vm-stats" descriptor, -1 if none */
	char debugfs[256];     /* its debugfs folder, "" when there is none */
	int debugfs_err;       /* 0, or why the folder could not be read */
	size_t nvcpus;
	struct vms_host_vcpu *vcpus; /* sorted by vCPU index, unknown ones last */
};

struct vms_host_opts {
	size_t sz;		  /* sizeof(struct vms_host_opts) */
	const char *proc_root;	  /* NULL: "/proc" (tests point it at a fake tree) */
	const char *debugfs_root; /* NULL: "/sys/kernel/debug/kvm" */
};

/**
 * vms_host_vms_list() - find the VMs of this host and read their counters once
 * @opts: NULL for the defaults
 * @out: receives a malloc'ed array; free with vms_host_vms_free()
 * @count: receives its length (0 when no VM runs)
 *
 * Processes that exit while being read are left out. Return: 0 or a negative errno (only
 * when /proc itself cannot be listed).
 */
VMS_API int vms_host_vms_list(const struct vms_host_opts *opts, struct vms_host_vm **out,
			      size_t *count);

/** vms_host_vms_free() - free an array from vms_host_vms_list(); NULL is a no-op. */
VMS_API void vms_host_vms_free(struct vms_host_vm *vms, size_t count);

/**
 * vms_host_vcpu_read() - refresh one vCPU thread's procfs counters
 * @proc_root: NULL for "/proc"
 * Return: 0, or a negative errno (-ESRCH: the thread is gone).
 */
VMS_API int vms_host_vcpu_read(const char *proc_root, int pid, struct vms_host_vcpu *vcpu);

/* One host CPU's line of /proc/stat, in USER_HZ ticks. Guest time is counted inside user
 * (and guest_nice inside nice): the CPU's own user time is user - guest. */
struct vms_host_cpu {
	int cpu;
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice;
};

/**
 * vms_host_cpus_read() - the per-CPU lines of /proc/stat
 * @proc_root: NULL for "/proc"
 * @out: receives a malloc'ed array, by CPU number (free() it)
 * @count: receives its length
 * Return: 0, or a negative errno (-VMS_E_PARSE when no CPU line parses).
 */
VMS_API int vms_host_cpus_read(const char *proc_root, struct vms_host_cpu **out, size_t *count);

/* Which KVM implementation serves /dev/kvm. */
enum vms_kvm_flavor {
	VMS_KVM_NONE,	 /* no KVM module loaded */
	VMS_KVM_VMX,	 /* kvm_intel: kvm_entry/kvm_exit fire, VMX exit reasons */
	VMS_KVM_SVM,	 /* kvm_amd: kvm_entry/kvm_exit fire, SVM exit codes */
	VMS_KVM_PVM,	 /* kvm_pvm: software virtualization; guest kernel mode is emulated,
			  * kvm_entry/kvm_exit never fire */
	VMS_KVM_UNKNOWN, /* kvm loaded, vendor module not recognised */
};

/**
 * vms_host_kvm_flavor() - the KVM implementation of this host, from /sys/module
 * @sysfs_module: NULL for "/sys/module"
 */
VMS_API enum vms_kvm_flavor vms_host_kvm_flavor(const char *sysfs_module);

/** vms_kvm_flavor_name() - "vmx", "svm", "pvm", "none", "unknown" (static). */
VMS_API const char *vms_kvm_flavor_name(enum vms_kvm_flavor flavor);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_HOST_H */
