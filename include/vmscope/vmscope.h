/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvmscope: the public entry point.
 *
 * Every function of the library returns 0 (or a count) on success and a negative errno on
 * failure; functions that return pointers return NULL and set errno. Errors that errno
 * cannot name (a malformed statistics file, a guest that faulted, ...) use the VMS_E_*
 * codes below; vms_strerror() turns any of them into a sentence. The library never prints
 * and never exits: it reports through return values and, for detail, through the log
 * callback set with vms_set_log().
 */
#ifndef VMSCOPE_VMSCOPE_H
#define VMSCOPE_VMSCOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_API __attribute__((visibility("default")))

/* Domain error codes, returned negated like errno values. */
enum vms_error {
	VMS_E_FIRST = 4096,
	VMS_E_STATS_HEADER = VMS_E_FIRST, /* stats header inconsistent (sizes, offsets) */
	VMS_E_STATS_ID,			  /* stats id string missing or not "kvm..." */
	VMS_E_STATS_OVERLAP,		  /* two blocks of a stats file overlap */
	VMS_E_STATS_DESC,		  /* a stats descriptor is invalid */
	VMS_E_STATS_SHORT,		  /* a stats file ended before a block it announced */
	VMS_E_KVM_API,			  /* /dev/kvm lacks an API the caller needs */
	VMS_E_GUEST_FAULT,		  /* the test VM's guest took an unexpected exception */
	VMS_E_GUEST_EXIT,		  /* a vCPU exited for a reason the VMM cannot handle */
	VMS_E_PARSE,			  /* a text file (procfs, debugfs, JSON) did not parse */
	VMS_E_TRACE_FORMAT,		  /* not a trace-cmd .dat file, or an unknown version */
	VMS_E_TRACE_CORRUPT,		  /* a trace file is damaged or truncated */
	VMS_E_TRACE_UNSUPPORTED,	  /* a valid trace using a feature vmscope lacks */
	VMS_E_TESTVM_DUMP,		  /* not a test VM guest memory dump, or a damaged one */
	VMS_E_GUEST_BOOT,		  /* the test VM's guest refused its command line */
	VMS_E_LAST
};

/**
 * vms_strerror() - describe an error code
 * @err: a negative errno or a negative VMS_E_* code (a positive value is negated)
 *
 * Returns a static string; never NULL.
 */
VMS_API const char *vms_strerror(int err);

/* Log levels of the log callback. */
enum vms_log_level { VMS_LOG_ERROR, VMS_LOG_WARN, VMS_LOG_INFO, VMS_LOG_DEBUG };

typedef void (*vms_log_fn)(enum vms_log_level level, const char *msg, void *ctx);

/**
 * vms_set_log() - route the library's detail messages
 * @fn: callback, or NULL to drop messages (the default)
 * @ctx: passed to @fn unchanged
 * @max_level: messages above this level are not formatted at all
 *
 * The message string is only valid during the call.
 */
VMS_API void vms_set_log(vms_log_fn fn, void *ctx, enum vms_log_level max_level);

/** vms_version() - the library version, "MAJOR.MINOR.PATCH" (static string). */
VMS_API const char *vms_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_VMSCOPE_H */
