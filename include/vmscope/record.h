/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recording: the kvm and sched events that vmscope's analyses need, for chosen VMs, into a
 * trace-cmd .dat file that trace-cmd report and KernelShark read too.
 *
 * The recorder works in a tracefs instance of its own ("vmscope-<pid>"), never in the
 * top-level one, and removes it when done (also after an error; an instance left by a
 * recorder that was killed with SIGKILL is removed by the next one). kvm events are
 * filtered in the kernel by the VMs' threads; sched events are recorded host-wide (the
 * CPU and steal analyses need to know who else ran) unless asked otherwise. It needs
 * none of the function tracer's files (set_ftrace_pid and the like), which lockdown and
 * some hosts refuse.
 *
 * The file carries what the trace alone cannot tell: the VMs' names, their vCPU thread →
 * vCPU index map (vmscope metadata "vm=", "vcpu=" and trace-cmd GUEST options), the host's
 * CPU vendor and KVM flavour, and each CPU's ring-buffer statistics before and after.
 */
#ifndef VMSCOPE_RECORD_H
#define VMSCOPE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_record_opts {
	size_t sz;	    /* sizeof(struct vms_record_opts) */
	const char *output; /* the .dat file to write */
	const int *pids;    /* VMM processes to record; NULL/0: every VM of the host */
	size_t npids;
	const char *const *names; /* or VMs by name (as vmscope stat shows them) */
	size_t nnames;
	uint64_t duration_ns;	 /* 0: until vms_recorder_stop() */
	unsigned int buffer_kb;	 /* ring buffer per CPU; 0: 16384 */
	const char *clock;	 /* trace clock; NULL: "local" */
	int version;		 /* file version 6 or 7; 0: 7 */
	const char *compression; /* version 7: "zstd", "zlib", "none"; NULL: "zstd" */
	bool sched_vm_only;	 /* filter sched events by the VMs' threads as well */
	const char *instance;	 /* tracefs instance name; NULL: "vmscope-<pid>" */
};

/* One CPU's ring buffer over the recording (per_cpu/cpuN/stats, after - before). */
struct vms_record_cpu_stats {
	uint64_t entries; /* events written to the buffer */
	uint64_t overrun; /* events overwritten before they were read: lost */
	uint64_t dropped; /* events dropped (buffer full): lost */
	uint64_t pages;	  /* pages written to the file */
	uint64_t bytes;	  /* bytes of those pages */
};

struct vms_recorder;

/**
 * vms_recorder_new() - find the VMs, create the instance, enable and filter the events
 * @out: receives the recorder; free with vms_recorder_free()
 * Return: 0, -ENOENT (no such VM / no VM at all: vms_recorder_last_error(NULL) says which),
 * -EACCES/-EPERM (tracefs not writable: root needed), or another negative errno.
 */
VMS_API int vms_recorder_new(const struct vms_record_opts *opts, struct vms_recorder **out);

/**
 * vms_recorder_run() - record until the duration ends or vms_recorder_stop(), then write
 * the file and remove the instance
 * @progress: called about once a second with the pages written so far, or NULL
 * Return: 0 or a negative errno (the instance is removed either way).
 */
VMS_API int vms_recorder_run(struct vms_recorder *r, void (*progress)(uint64_t pages, void *ctx),
			     void *ctx);

/** vms_recorder_stop() - end the recording soon; safe from another thread. */
VMS_API void vms_recorder_stop(struct vms_recorder *r);

/** vms_recorder_free() - free the recorder, removing its instance if still there. */
VMS_API void vms_recorder_free(struct vms_recorder *r);

VMS_API unsigned int vms_recorder_ncpus(const struct vms_recorder *r);
VMS_API int vms_recorder_cpu_stats(const struct vms_recorder *r, unsigned int cpu,
				   struct vms_record_cpu_stats *out);
/** The VMs being recorded: count, and each one's pid and name (owned by @r). */
VMS_API size_t vms_recorder_nvms(const struct vms_recorder *r);
VMS_API int vms_recorder_vm(const struct vms_recorder *r, size_t i, int *pid, const char **name,
			    unsigned int *nvcpus);

/** What went wrong last (@r NULL: the last vms_recorder_new() of this thread). */
VMS_API const char *vms_recorder_last_error(const struct vms_recorder *r);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_RECORD_H */
