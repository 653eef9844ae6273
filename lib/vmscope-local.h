/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private declarations shared by the library's source files: logging helpers and small
 * utilities. Nothing here is exported; the public API lives in include/vmscope/.
 */
#ifndef VMSCOPE_LOCAL_H
#define VMSCOPE_LOCAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "vmscope/vmscope.h"

#define VMS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 2, 3))) void vms_log(enum vms_log_level level, const char *fmt, ...);

#define vms_err(...) vms_log(VMS_LOG_ERROR, __VA_ARGS__)
#define vms_warn(...) vms_log(VMS_LOG_WARN, __VA_ARGS__)
#define vms_info(...) vms_log(VMS_LOG_INFO, __VA_ARGS__)
#define vms_dbg(...) vms_log(VMS_LOG_DEBUG, __VA_ARGS__)

/* CLOCK_MONOTONIC now, in ns. */
static inline uint64_t vms_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Text appended to a fixed buffer: once a piece does not fit the buffer is full, keeps
 * what fitted and takes no more. Start it as { buf, size, 0, size == 0 }. */
struct vms_strbuf {
	char *buf;
	size_t size, len;
	bool full;
};

__attribute__((format(printf, 2, 3))) void vms_sb_add(struct vms_strbuf *b, const char *fmt, ...);

/* Whether @s is a non-empty string of decimal digits (a pid, an fd number). */
static inline bool vms_all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Set errno to -err and return NULL: for functions that return pointers. */
static inline void *vms_err_ptr(int err)
{
	errno = err < 0 ? -err : err;
	return NULL;
}

/*
 * Read a whole small text file (procfs, sysfs, debugfs) into buf, NUL-terminated.
 * Returns the length or a negative errno.
 */
int vms_read_text(const char *path, char *buf, size_t size);

/* Read one unsigned decimal number from a small text file. */
int vms_read_u64(const char *path, uint64_t *val);

#endif /* VMSCOPE_LOCAL_H */
