/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt's view of one domain's CPU accounting, read through libvirt's public API the way
 * virsh shows it: `virsh cpu-stats` (total and per host CPU), `virsh domstats --cpu-total
 * --vcpu` and `virsh vcpuinfo`. vmscope compares these numbers with the sources libvirt
 * takes them from (cgroups, /proc), so the reader keeps every value as libvirt gave it,
 * in nanoseconds, and says which ones libvirt did not give instead of writing a zero.
 *
 * The connection is opened read-only (a monitoring probe needs no write access) and
 * closed again by every call. Without libvirt at build time every function returns
 * -ENOTSUP. libvirt's own error printing is silenced: the first call installs a silent
 * global error handler (virSetErrorFunc) and one per connection; libvirt's messages end up
 * in the message buffers below instead. A program that uses libvirt itself and wants its
 * own handler sets it again after the first call.
 *
 * vms_libvirt_vm_stats() gives KVM's own statistics of a domain (`virsh domstats --vm
 * --vcpu`) in the shape of vmscope/vmm-stats.h.
 */
#ifndef VMSCOPE_LIBVIRT_H
#define VMSCOPE_LIBVIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmm-stats.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A per-CPU value libvirt did not report (an offline or absent host CPU). */
#define VMS_LIBVIRT_UNSET UINT64_MAX

/* One vCPU as domstats --vcpu and vcpuinfo (virDomainGetVcpus) show it. */
struct vms_libvirt_vcpu {
	int vcpu;	   /* index N of vcpu.N.* */
	int state;	   /* vcpu.N.state: virVcpuState (0 offline, 1 running, 2 blocked) */
	int host_cpu;	   /* vcpuinfo "CPU" (virDomainGetVcpus), -1 unknown */
	uint64_t time_ns;  /* vcpu.N.time (vcpuinfo "CPU time" is the same number) */
	uint64_t wait_ns;  /* vcpu.N.wait */
	uint64_t delay_ns; /* vcpu.N.delay (run-queue delay) */
	bool has_state, has_time, has_wait, has_delay;
};

struct vms_libvirt_dom {
	char name[256];
	char uuid[40];
	int id;	   /* -1 when not running */
	int pid;   /* QEMU pid (pid file or the process whose -uuid matches), 0 unknown */
	int state; /* virDomainState (1 running, 3 paused, 5 shut off, ...) */

	/* virsh cpu-stats --total: virDomainGetCPUStats(start_cpu -1) */
	uint64_t cpu_time_ns, user_time_ns, system_time_ns;
	bool has_cpu_time, has_user_time, has_system_time;

	/*
	 * virsh cpu-stats (per host CPU): cpu_time and vcpu_time of host CPUs 0..ncpus-1,
	 * VMS_LIBVIRT_UNSET where libvirt reports nothing. When libvirt refuses (its cgroup
	 * V2 backend, "hybrid" cgroup mode, has no per-CPU usage) ncpus is 0, percpu_err a
	 * negative errno (-ENOTSUP) and percpu_msg libvirt's reason.
	 */
	size_t ncpus;
	uint64_t *percpu_cpu_ns, *percpu_vcpu_ns;
	int percpu_err;
	char percpu_msg[256];

	/* virsh domstats --cpu-total: cpu.time, cpu.user, cpu.system, cpu.haltpoll.*.time */
	uint64_t ds_cpu_time_ns, ds_cpu_user_ns, ds_cpu_system_ns;
	uint64_t ds_haltpoll_success_ns, ds_haltpoll_fail_ns;
	bool has_ds_cpu_time, has_ds_cpu_user, has_ds_cpu_system, has_ds_haltpoll;

	/* virsh domstats --vcpu: vcpu.current, vcpu.maximum and one entry per vcpu.N */
	int vcpu_current, vcpu_maximum; /* -1 when not reported */
	size_t nvcpus;
	struct vms_libvirt_vcpu *vcpus;

	char msg[256]; /* the error of a failed call, or why something above is missing */
};

/**
 * vms_libvirt_read() - read libvirt's CPU accounting of one domain
 * @uri: libvirt URI; NULL for "qemu:///system"
 * @domain: the domain's name, UUID or id (tried as virsh does: id, UUID, name)
 * @out: filled in; its arrays are allocated, free them with vms_libvirt_dom_release()
 *
 * A domain that is not running gives name, uuid, state and id -1 and no counters (msg
 * says so). Counters libvirt does not report keep their has_* flag false and msg says why.
 *
 * Return: 0; -ENOENT no such domain (msg names it); -ECONNREFUSED or -ENOENT when
 * libvirtd is not running (msg says so); -EACCES access denied; -ENOTSUP built without
 * libvirt; -ENOMEM; -EIO any other libvirt error (msg has libvirt's text). On failure
 * nothing stays allocated (releasing @out anyway is harmless).
 */
VMS_API int vms_libvirt_read(const char *uri, const char *domain, struct vms_libvirt_dom *out);

/** vms_libvirt_dom_release() - free the arrays of @d and empty it; NULL is a no-op. */
VMS_API void vms_libvirt_dom_release(struct vms_libvirt_dom *d);

/**
 * vms_libvirt_find_by_pid() - which running domain is QEMU process @pid
 * @uri: libvirt URI; NULL for "qemu:///system"
 * @pid: a process id
 * @name: receives the domain's name (truncated to @len - 1 bytes)
 * @len: size of @name
 *
 * Return: 0; -ENOENT when no running domain of @uri has that pid; -ESRCH no such
 * process; the connection errors of vms_libvirt_read(); -ENOTSUP built without libvirt.
 * The reason of a failure goes to the log callback (vms_set_log()) at VMS_LOG_ERROR.
 */
VMS_API int vms_libvirt_find_by_pid(const char *uri, int pid, char *name, size_t len);

/**
 * vms_libvirt_vm_stats() - KVM's statistics of a running domain, as libvirt passes them on
 * @uri: libvirt URI; NULL for "qemu:///system"
 * @domain: the domain's name, UUID or id
 * @out: receives the statistics (source "libvirt"); free them with vms_vmm_stats_free()
 * @msg: receives the reason of a failure, at most @msglen bytes
 * @msglen: size of @msg
 *
 * What `virsh domstats --vm --vcpu` shows: libvirt asks QEMU (query-stats) on the monitor
 * it holds and names the VM's statistics "vm.NAME.TYPE" and each vCPU's
 * "vcpu.N.NAME.TYPE", TYPE "cur" (instant), "sum" (cumulative) or "max" (peak); booleans
 * come as booleans (0 or 1 here, unit VMS_UNIT_BOOLEAN); other units are not passed on,
 * but KVM names every time by its unit: a name ending "_ns" is in nanoseconds (unit
 * VMS_UNIT_SECONDS, exponent -9), others have has_unit false. The vCPU threads (tid) are QEMU's
 * "CPU N/KVM" threads, found in /proc for a local domain (libvirt starts QEMU with
 * debug-threads=on), else 0. The same shape as vms_qmp_query_stats(). Each call makes QEMU answer
 * query-stats, which kicks every running vCPU: the exit counters of a running domain move a little
 * with every call.
 *
 * Return: 0; -ENOENT no such domain; -ESRCH the domain is not running; -EOPNOTSUPP libvirt
 * gave no KVM statistics (libvirt before 8.9, QEMU before 7.1, or not KVM); -ENOTSUP built
 * without libvirt (or with a libvirt before 8.9); the connection errors of
 * vms_libvirt_read(); -ENOMEM.
 */
VMS_API int vms_libvirt_vm_stats(const char *uri, const char *domain, struct vms_vmm_stats **out,
				 char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_LIBVIRT_H */
