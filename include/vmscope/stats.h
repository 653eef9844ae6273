/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM statistics: the binary format of KVM_GET_STATS_FD (Documentation/virt/kvm/api.rst,
 * "KVM_GET_STATS_FD") and the per-VM debugfs folders.
 *
 * A stats file is self-describing: a header, an id string ("kvm-<pid>" or
 * "kvm-<pid>/vcpu-<n>"), one descriptor per statistic (name, type, unit, base, exponent,
 * size, offset, bucket size) and a data block of u64 values. The schema is read and
 * validated once by vms_stats_open_*(); vms_stats_read() then refreshes the data block with
 * one pread(). Values are kept raw (u64, as the kernel exports them) and converted to base
 * units (seconds, bytes, cycles) on request.
 */
#ifndef VMSCOPE_STATS_H
#define VMSCOPE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vms_stat_type {
	VMS_STAT_CUMULATIVE = 0, /* only increases */
	VMS_STAT_INSTANT = 1,	 /* goes up and down */
	VMS_STAT_PEAK = 2,	 /* highest value seen */
	VMS_STAT_LINEAR_HIST = 3,
	VMS_STAT_LOG_HIST = 4,
};

enum vms_stat_unit {
	VMS_UNIT_NONE = 0,
	VMS_UNIT_BYTES = 1,
	VMS_UNIT_SECONDS = 2,
	VMS_UNIT_CYCLES = 3,
	VMS_UNIT_BOOLEAN = 4,
};

/* One statistic, as described by its descriptor. Owned by the vms_stats object. */
struct vms_stat_desc {
	const char *name;
	enum vms_stat_type type;
	enum vms_stat_unit unit;
	unsigned int base;    /* 10 or 2 */
	int exponent;	      /* value * base^exponent = value in the unit */
	uint32_t size;	      /* number of u64 values: 1, or the number of buckets */
	uint32_t offset;      /* byte offset in the data block */
	uint32_t bucket_size; /* linear histograms only */
	double scale;	      /* base^exponent, precomputed */
};

struct vms_stats;

/**
 * vms_stats_open_fd() - read and validate the schema of a stats file descriptor
 * @fd: a file descriptor from KVM_GET_STATS_FD (or any file with that layout); the object
 *      takes ownership and closes it in vms_stats_free(), also on failure
 * @out: receives the new object; free it with vms_stats_free()
 *
 * Validates the file the way the kernel's kvm_binary_stats_test does: offsets past the
 * header, blocks that do not overlap, known types/units/bases, exponents that fit the unit,
 * NUL-terminated names, non-zero sizes, bucket sizes only on linear histograms, every
 * value inside the data block. The data block is read once as well.
 *
 * Return: 0, or a negative errno / -VMS_E_STATS_* code (vms_stats_last_error() has detail).
 */
VMS_API int vms_stats_open_fd(int fd, struct vms_stats **out);

/**
 * vms_stats_open_buf() - the same, from the bytes of a stats file in memory
 * @buf: the bytes (copied; the caller keeps ownership)
 * @len: their length
 * @out: receives the new object; free it with vms_stats_free()
 *
 * vms_stats_read() on such an object re-reads the data block from the copied bytes.
 */
VMS_API int vms_stats_open_buf(const void *buf, size_t len, struct vms_stats **out);

/** vms_stats_free() - free the object and close its fd; NULL is a no-op. */
VMS_API void vms_stats_free(struct vms_stats *stats);

/**
 * vms_stats_read() - refresh the data block (one pread of the whole block)
 * Return: 0 or a negative errno (-VMS_E_STATS_SHORT when the read came back short).
 */
VMS_API int vms_stats_read(struct vms_stats *stats);

/** vms_stats_id() - the id string ("kvm-1234/vcpu-0"); owned by @stats. */
VMS_API const char *vms_stats_id(const struct vms_stats *stats);

/** vms_stats_count() - number of statistics (descriptors). */
VMS_API size_t vms_stats_count(const struct vms_stats *stats);

/** vms_stats_desc() - descriptor @i (0 <= i < count); owned by @stats. NULL if out of range. */
VMS_API const struct vms_stat_desc *vms_stats_desc(const struct vms_stats *stats, size_t i);

/** vms_stats_find() - index of the statistic called @name, or -ENOENT. */
VMS_API int vms_stats_find(const struct vms_stats *stats, const char *name);

/**
 * vms_stats_values() - the raw u64 values of statistic @i from the last read
 * Returns desc->size values, owned by @stats and overwritten by the next vms_stats_read();
 * NULL if @i is out of range.
 */
VMS_API const uint64_t *vms_stats_values(const struct vms_stats *stats, size_t i);

/** vms_stats_value() - first raw value of statistic @i (0 if out of range). */
VMS_API uint64_t vms_stats_value(const struct vms_stats *stats, size_t i);

/**
 * vms_stats_value_by_name() - first raw value of the statistic called @name
 * Return: 0 and *val set, or -ENOENT.
 */
VMS_API int vms_stats_value_by_name(const struct vms_stats *stats, const char *name, uint64_t *val);

/** vms_stat_in_units() - raw @value of a scalar statistic in base units (raw * scale). */
VMS_API double vms_stat_in_units(const struct vms_stat_desc *desc, uint64_t value);

/**
 * vms_stat_bucket_range() - the range a histogram bucket covers, in base units
 * @desc: a LINEAR_HIST or LOG_HIST descriptor
 * @bucket: 0 <= bucket < desc->size
 * @lo, @hi: receive [lo, hi); hi is INFINITY for the last bucket
 * Return: 0, or -EINVAL for a scalar statistic or a bucket out of range.
 */
VMS_API int vms_stat_bucket_range(const struct vms_stat_desc *desc, uint32_t bucket, double *lo,
				  double *hi);

/** vms_stat_type_name(), vms_stat_unit_name() - "cumulative", "seconds", ... (static). */
VMS_API const char *vms_stat_type_name(enum vms_stat_type type);
VMS_API const char *vms_stat_unit_name(enum vms_stat_unit unit);

/**
 * vms_stats_last_error() - a sentence describing the last validation failure of
 * vms_stats_open_*() in this thread (which block, which offset, which descriptor), or "".
 */
VMS_API const char *vms_stats_last_error(void);

/**
 * vms_stats_open_remote() - read a stats file descriptor that another process holds
 * @pid: the process (a VMM) that holds it
 * @remote_fd: its number in that process (an "anon_inode:kvm-vcpu-stats:N" or
 *             "anon_inode:kvm-vm-stats" link in /proc/<pid>/fd)
 * @out: receives the new object; free it with vms_stats_free()
 *
 * Duplicates the descriptor with pidfd_getfd(2) — no cooperation from the VMM, no debugfs.
 * Needs ptrace permission over @pid (root, or CAP_SYS_PTRACE) and Linux 5.6.
 * Return: 0, -EPERM (no permission), -ENOSYS (kernel too old), -ESRCH (the process is gone),
 * -EBADF (no such descriptor), or a vms_stats_open_fd() error.
 */
VMS_API int vms_stats_open_remote(int pid, int remote_fd, struct vms_stats **out);

/* ---- kernel-counted trace events per thread (kvm_stat's counters) ---- */

/* A trace event to count, with an optional ftrace filter (e.g. "reason == 6"). */
struct vms_tp_event {
	const char *system, *name, *filter;
};

struct vms_tpcount;

/**
 * vms_tpcount_open() - count events @ev in each of threads @tids, in the kernel
 * @out: receives the counters; free with vms_tpcount_free()
 * @msg: the last reason a counter could not be opened (an event this kernel lacks is
 *       skipped silently and reads as not valid)
 *
 * One counting perf event (PERF_TYPE_TRACEPOINT) per thread and event: needs root or
 * perf_event_paranoid <= 1 for another user's threads. Counting starts now.
 * Return: 0 when at least one counter opened, else a negative errno (-EACCES, -ENOENT...).
 */
VMS_API int vms_tpcount_open(const struct vms_tp_event *ev, size_t nev, const int *tids,
			     size_t ntids, struct vms_tpcount **out, char *msg, size_t msglen);

/**
 * vms_tpcount_read() - the counts since vms_tpcount_open()
 * @counts, @valid: ntids x nev entries, thread-major (counts[t * nev + e]); a thread that
 *                  exited keeps its last count, an event that could not be counted is not
 *                  valid. Return: 0.
 */
VMS_API int vms_tpcount_read(struct vms_tpcount *tc, uint64_t *counts, bool *valid);

/** vms_tpcount_free() - close the counters; NULL is a no-op. */
VMS_API void vms_tpcount_free(struct vms_tpcount *tc);

/* ---- trace events counted per thread and key field (exit reasons) ---- */

/* An event to count by thread and by the value of one of its fields, e.g. kvm:kvm_exit
 * by exit_reason. */
struct vms_keyed_event {
	const char *system, *name, *key;
};

/* How the kernel's events are counted. */
enum vms_keycount_backend {
	VMS_KEYCOUNT_AUTO,   /* a hist trigger where the kernel has them, else a stream */
	VMS_KEYCOUNT_HIST,   /* hist triggers: the kernel counts, nothing is traced */
	VMS_KEYCOUNT_STREAM, /* the events are traced and counted here as they come */
};

struct vms_keycount_opts {
	size_t sz;			   /* sizeof(struct vms_keycount_opts) */
	enum vms_keycount_backend backend; /* VMS_KEYCOUNT_AUTO by default */
	unsigned int entries;		   /* (thread, key) pairs kept per event; 0: 8192 */
	unsigned int buffer_kb;		   /* stream: ring buffer per CPU; 0: 4096 */
};

/* One count: event @event (index into the events given) of thread @tid with key @key. */
struct vms_keycount_entry {
	uint32_t event;
	int tid;
	uint64_t key;
	uint64_t count;
};

struct vms_keycount;

/**
 * vms_keycount_open() - count events @ev by thread and key, from now on, host-wide
 * @opts: NULL for the defaults
 * @out: receives the counter; free with vms_keycount_free() (which removes its tracefs
 *       instance)
 * @msg: why it could not open, for people
 *
 * Works in a tracefs instance of its own ("vmscope-<pid>-keys"): a hist trigger
 * "keys=common_pid,KEY" on each event where the kernel has CONFIG_HIST_TRIGGERS (the
 * events are then counted in the kernel and never traced), else the events are traced in
 * that instance and counted by a thread of the counter's own, with the events the ring
 * buffer lost counted in vms_keycount_dropped(). An event this kernel lacks is skipped.
 * Needs root. Return: 0, or a negative errno (-EACCES, -ENOENT when no event exists,
 * -EOPNOTSUPP when VMS_KEYCOUNT_HIST was asked for and the kernel has none).
 */
VMS_API int vms_keycount_open(const struct vms_keyed_event *ev, size_t nev,
			      const struct vms_keycount_opts *opts, struct vms_keycount **out,
			      char *msg, size_t msglen);

/** vms_keycount_backend() - VMS_KEYCOUNT_HIST or VMS_KEYCOUNT_STREAM. */
VMS_API enum vms_keycount_backend vms_keycount_backend(const struct vms_keycount *kc);

/**
 * vms_keycount_read() - the counts since vms_keycount_open()
 * @out: receives the entries, sorted by event, thread and key; owned by @kc, valid until
 *       the next call
 * @n: receives how many
 * Return: 0, or a negative errno (the hist file could not be read or parsed).
 */
VMS_API int vms_keycount_read(struct vms_keycount *kc, const struct vms_keycount_entry **out,
			      size_t *n);

/**
 * vms_keycount_dropped() - events that were not counted: hist tables full, the stream's
 * own table full, or events the ring buffer lost. As of the last vms_keycount_read().
 */
VMS_API uint64_t vms_keycount_dropped(const struct vms_keycount *kc);

/** vms_keycount_free() - stop counting, remove the tracefs instance; NULL is a no-op. */
VMS_API void vms_keycount_free(struct vms_keycount *kc);

/**
 * vms_hist_parse() - read the table of a hist trigger keyed on common_pid and @key
 * @text, @len: the "hist" file's content (need not end in NUL)
 * @key: the other key's field name, e.g. "exit_reason"
 * @out, @max: receives up to @max entries (their event is 0); *@n says how many; more
 *             lines than @max are counted in *@dropped
 * @dropped: receives the table's "Dropped:" total (plus the lines past @max)
 *
 * Lines look like "{ common_pid:       2520, exit_reason:         30 } hitcount:   7";
 * comments, blank lines and the Totals block are read over.
 * Return: 0, or -VMS_E_PARSE at the first line that does not parse (*@n then holds the
 * entries before it).
 */
VMS_API int vms_hist_parse(const char *text, size_t len, const char *key,
			   struct vms_keycount_entry *out, size_t max, size_t *n,
			   uint64_t *dropped);

/* ---- debugfs: /sys/kernel/debug/kvm/<pid>-<fd>/ ---- */

/* One file of a per-VM debugfs folder. */
struct vms_debugfs_entry {
	char name[64];	/* "exits", "vcpu0/pid", ... */
	int err;	/* 0, or the negative errno reading it gave (-EPERM under lockdown) */
	uint64_t value; /* valid when err == 0 and the file holds one number */
};

/**
 * vms_debugfs_read_vm() - read every file of a VM's debugfs folder
 * @dir: the folder, e.g. "/sys/kernel/debug/kvm/1234-11"
 * @entries: receives a malloc'ed array (caller frees with free())
 * @count: receives its length
 *
 * Files that cannot be read are listed with their error, never skipped and never read as 0.
 * Return: 0, or a negative errno if the folder itself cannot be listed.
 */
VMS_API int vms_debugfs_read_vm(const char *dir, struct vms_debugfs_entry **entries, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_STATS_H */
