// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Error strings and the log callback. The library reports failures as negative errno or
 * VMS_E_* codes; the only text it produces goes through the callback that the embedding
 * program set, so a library user decides what is printed and where.
 */
#include <stdio.h>
#include <string.h>

#include "vmscope-local.h"

static const char *const vms_error_text[] = {
	[VMS_E_STATS_HEADER - VMS_E_FIRST] = "KVM statistics header is inconsistent",
	[VMS_E_STATS_ID - VMS_E_FIRST] = "KVM statistics id string is missing or invalid",
	[VMS_E_STATS_OVERLAP - VMS_E_FIRST] = "KVM statistics blocks overlap",
	[VMS_E_STATS_DESC - VMS_E_FIRST] = "KVM statistics descriptor is invalid",
	[VMS_E_STATS_SHORT - VMS_E_FIRST] = "KVM statistics file is shorter than its header says",
	[VMS_E_KVM_API - VMS_E_FIRST] = "/dev/kvm lacks a required capability",
	[VMS_E_GUEST_FAULT - VMS_E_FIRST] = "the test VM's guest took an unexpected exception",
	[VMS_E_GUEST_EXIT - VMS_E_FIRST] = "a vCPU exited for a reason the VMM cannot handle",
	[VMS_E_PARSE - VMS_E_FIRST] = "a text file did not have the expected format",
	[VMS_E_TRACE_FORMAT - VMS_E_FIRST] = "not a trace-cmd trace file (or an unknown version)",
	[VMS_E_TRACE_CORRUPT - VMS_E_FIRST] = "the trace file is damaged or truncated",
	[VMS_E_TRACE_UNSUPPORTED - VMS_E_FIRST] = "the trace file uses a feature vmscope lacks",
	[VMS_E_TESTVM_DUMP - VMS_E_FIRST] = "not a test VM guest memory dump, or a damaged one",
	[VMS_E_GUEST_BOOT - VMS_E_FIRST] = "the test VM's guest refused its command line",
};

const char *vms_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= VMS_E_FIRST && err < VMS_E_LAST)
		return vms_error_text[err - VMS_E_FIRST];
	/* strerror() is not thread-safe in general, but glibc returns static text for
	 * known codes; unknown codes get our own static string. */
	if (err > 0 && err < 4096)
		return strerror(err);
	return "unknown error";
}

static vms_log_fn log_fn;
static void *log_ctx;
static enum vms_log_level log_max = VMS_LOG_WARN;

void vms_set_log(vms_log_fn fn, void *ctx, enum vms_log_level max_level)
{
	log_fn = fn;
	log_ctx = ctx;
	log_max = max_level;
}

void vms_log(enum vms_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_fn || level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(level, msg, log_ctx);
}

const char *vms_version(void)
{
	return VMS_VERSION;
}
