/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CPU accounting of one VM, from every source the host offers, and the checks that say
 * whether those sources agree and, where they do not, why (vmscope validate).
 *
 * A snapshot (struct vms_acct) is every source read once, as fast as possible one after
 * the other, stored as named counters: "task.<tid>.utime", "cg1.usage", "stat.cpu1.guest",
 * "libvirt.cpu_time", ... (doc/vmscope-validate.md lists them with their units). Sources
 * that cannot be read leave an "err.<source>" text instead of their counters, never a zero.
 * A snapshot can be written as text and read back, so two snapshots taken hours apart, or
 * on another machine, can be compared. vms_acct_validate() takes two snapshots of the same
 * VM and runs the checks over the interval between them.
 */
#ifndef VMSCOPE_ACCT_H
#define VMSCOPE_ACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_acct;

struct vms_acct_opts {
	size_t sz;		    /* sizeof(struct vms_acct_opts) */
	const char *proc_root;	    /* NULL: "/proc" */
	const char *libvirt_domain; /* read libvirt's view of this domain too; NULL: no */
	const char *libvirt_uri;    /* NULL: "qemu:///system" */
	bool no_kvm_stats;	    /* do not duplicate the VMM's KVM statistics fds */
};

/**
 * vms_acct_read() - read every accounting source of the VM of process @pid
 * @pid: the VMM process (QEMU, vmscope testvm, ...)
 * @opts: NULL for the defaults
 * @out: receives the snapshot; free it with vms_acct_free()
 *
 * Return: 0, -ESRCH when @pid is not running, -ENOMEM. A source that cannot be read is
 * recorded in the snapshot as "err.<source>" and does not fail the call.
 */
VMS_API int vms_acct_read(int pid, const struct vms_acct_opts *opts, struct vms_acct **out);

/** vms_acct_new() - an empty snapshot (for tests and tools); NULL and errno on failure. */
VMS_API struct vms_acct *vms_acct_new(void);

/** vms_acct_free() - free a snapshot; NULL is a no-op. */
VMS_API void vms_acct_free(struct vms_acct *a);

/**
 * vms_acct_set() / vms_acct_set_str() - set a counter or a text (replaces an earlier value)
 * Keys are 1-127 characters of [A-Za-z0-9_.:/-]; texts are stored without newlines.
 * Return: 0, -EINVAL (bad key), -ENOMEM.
 */
VMS_API int vms_acct_set(struct vms_acct *a, const char *key, uint64_t val);
VMS_API int vms_acct_set_str(struct vms_acct *a, const char *key, const char *text);

/** vms_acct_get() - a counter: 0 and *val, or -ENOENT (absent or a text). */
VMS_API int vms_acct_get(const struct vms_acct *a, const char *key, uint64_t *val);

/**
 * vms_acct_delta() - growth of counter @key from snapshot @a to snapshot @b
 * Return: 0 and *delta; -ENOENT (absent from either, or a text); -ERANGE (it went back).
 */
VMS_API int vms_acct_delta(const struct vms_acct *a, const struct vms_acct *b, const char *key,
			   uint64_t *delta);

/** vms_acct_str() - a text, owned by @a, or NULL (absent or a counter). */
VMS_API const char *vms_acct_str(const struct vms_acct *a, const char *key);

/** vms_acct_count() / vms_acct_key() - walk the entries in key order. */
VMS_API size_t vms_acct_count(const struct vms_acct *a);
VMS_API const char *vms_acct_key(const struct vms_acct *a, size_t i);

/**
 * vms_acct_write() - write a snapshot as text ("vmscope-acct 1", then one "key value" line
 * per entry); vms_acct_parse() reads it back.
 * Return: 0 or a negative errno.
 */
VMS_API int vms_acct_write(const struct vms_acct *a, FILE *f);

/**
 * vms_acct_parse() - read a snapshot written by vms_acct_write()
 * @buf, @len: the file's bytes (untrusted)
 * @out: receives the snapshot; free with vms_acct_free()
 * @msg, @msglen: on -VMS_E_PARSE, what is wrong and on which line
 * Return: 0, -VMS_E_PARSE, -ENOMEM.
 */
VMS_API int vms_acct_parse(const char *buf, size_t len, struct vms_acct **out, char *msg,
			   size_t msglen);

/* ---- a cgroup of one's own (vmscope validate --calibrate) ---- */

struct vms_acct_cgroup;

/**
 * vms_acct_cgroup_enter() - move the calling process into new cgroups of its own
 * @name: the cgroups' name, e.g. "vmscope-calibrate-1234"
 * @out: receives the handle; vms_acct_cgroup_leave() moves back and removes them
 * @msg, @msglen: what could not be done, when a hierarchy was skipped
 *
 * Creates @name under the cgroup v1 hierarchy that has cpuacct and under cgroup2, where
 * each is mounted and writable, and moves every thread of the process there, so that
 * threads created afterwards (a test VM's vCPUs) are counted by cgroups that hold nothing
 * else. Return: 0 when at least one hierarchy was entered, else a negative errno.
 */
VMS_API int vms_acct_cgroup_enter(const char *name, struct vms_acct_cgroup **out, char *msg,
				  size_t msglen);

/** vms_acct_cgroup_leave() - move the process back, remove the cgroups; NULL: no-op. */
VMS_API void vms_acct_cgroup_leave(struct vms_acct_cgroup *cg);

/* ---- checks ---- */

enum vms_check_status {
	VMS_CHECK_PASS,
	VMS_CHECK_INFO, /* a fact worth knowing, nothing to agree on */
	VMS_CHECK_WARN,
	VMS_CHECK_FAIL,
	VMS_CHECK_SKIP, /* a source is missing; the text says which and why */
};

/* One check: two numbers that should agree, and what their difference means. */
struct vms_check {
	char id[40];	/* stable name, e.g. "cg1-usage-vs-threads", "vcpu0-guest-in-user" */
	char what[128]; /* what is compared, in words */
	char lhs[64];	/* the first source, e.g. "cpuacct.usage" */
	char rhs[64];	/* the second source */
	double lhs_s;	/* its growth over the interval, seconds (NAN: absent) */
	double rhs_s;
	double tol_s; /* the difference allowed, from the sources' granularity */
	enum vms_check_status status;
	char explain[480]; /* what the difference means, in plain words */
};

/* One source's growth over the interval, for the side-by-side table. */
struct vms_acct_row {
	char source[24];      /* "cgroup v1", "procfs", "schedstat", "/proc/stat", "KVM", ... */
	char field[64];	      /* "cpuacct.usage", "vCPU 0 utime", ... */
	double value_s;	      /* growth, seconds */
	char granularity[24]; /* "exact (ns)", "tick 4 ms", "USER_HZ 10 ms", ... */
};

/* A libvirt figure beside vmscope's own reading of the source libvirt takes it from. */
struct vms_acct_pair {
	char libvirt[48]; /* "cpu-stats cpu_time", "domstats vcpu.0.delay", ... */
	char source[64];  /* "cpuacct.usage", "task 1234 utime + stime", ... */
	double libvirt_v; /* seconds (a CPU number for "vcpuinfo vN CPU") */
	double source_v;
	double tol; /* the readings are not simultaneous: what that allows */
	bool match;
};

struct vms_acct_report {
	double interval_s;
	int pid;
	char name[64];
	size_t nrows;
	struct vms_acct_row *rows;
	size_t nchecks;
	struct vms_check *checks;
	unsigned int fails, warns;
	/* libvirt's figures at the second snapshot, field by field, when it has them */
	size_t npairs;
	struct vms_acct_pair *pairs;
};

/**
 * vms_acct_validate() - compare every source over the interval between two snapshots
 * @a: the earlier snapshot
 * @b: the later one, of the same VM process
 * @trace: NULL, or state times from a trace of the same interval: counters
 *         "trace.task.<tid>.run_ns", ".wait_ns" (preempted + waiting for a CPU),
 *         ".uncertain_ns" (how far switch-ins inferred by the state model may be off),
 *         "trace.covered_ns" (how much of the interval the trace covers)
 * @out: receives the report; free with vms_acct_report_free()
 *
 * Return: 0, -EINVAL (not the same process, or @b is not later than @a; *msg says which),
 * -ENOMEM.
 */
VMS_API int vms_acct_validate(const struct vms_acct *a, const struct vms_acct *b,
			      const struct vms_acct *trace, struct vms_acct_report **out, char *msg,
			      size_t msglen);

/** vms_acct_report_free() - NULL is a no-op. */
VMS_API void vms_acct_report_free(struct vms_acct_report *r);

/** vms_check_status_name() - "pass", "info", "warn", "fail", "skip" (static). */
VMS_API const char *vms_check_status_name(enum vms_check_status s);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_ACCT_H */
