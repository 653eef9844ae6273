// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The accounting checks of vmscope validate: over the interval between two snapshots of
 * one VM, every pair of sources that should agree is compared against a tolerance derived
 * from how the two are kept (exact nanosecond runtime, scheduler ticks of 1/HZ, USER_HZ
 * rounding in /proc, the time the snapshot took to read while the VM ran on), and each
 * difference is explained in words: guest time is inside user time; kernels before 5.16
 * leave guest time out of cpuacct.stat (seed 000); user/system are a tick split scaled to
 * the exact runtime on newer kernels; halt polling is counted as busy; run-queue delay is
 * invisible to the guest.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acct-local.h"

#define MAX_TASKS 4096

struct task {
	int tid, vcpu;
	bool both;			       /* present in both snapshots */
	double run, wait, utime, stime, gtime; /* growth, seconds */
	bool has_sched;
};

struct ctx {
	const struct vms_acct *a, *b, *trace;
	struct vms_acct_report *r;
	size_t cap_rows, cap_checks, cap_pairs;
	double interval, tick, ktick, skew; /* seconds */
	bool ktick_known;
	unsigned int ncpus;
	struct task *tasks;
	size_t ntasks;
	int err;
	bool new_kernel; /* >= 5.16: guest time in cpuacct.stat, split scaled to runtime */
};

/* Growth of counter @key between the snapshots; false when absent or going backwards. */
static bool dk(const struct ctx *c, const char *key, double scale, double *out)
{
	uint64_t d;

	if (vms_acct_delta(c->a, c->b, key, &d))
		return false;
	*out = (double)d * scale;
	return true;
}

static bool dkf(const struct ctx *c, double scale, double *out, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool dkf(const struct ctx *c, double scale, double *out, const char *fmt, ...)
{
	char key[ACCT_KEY_BUF];
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = acct_vkey(key, fmt, ap);
	va_end(ap);
	return !err && dk(c, key, scale, out);
}

static void row(struct ctx *c, const char *source, const char *gran, double v, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void row(struct ctx *c, const char *source, const char *gran, double v, const char *fmt, ...)
{
	struct vms_acct_report *r = c->r;
	struct vms_acct_row *w;
	va_list ap;

	if (r->nrows == c->cap_rows) {
		size_t cap = c->cap_rows ? c->cap_rows * 2 : 32;
		void *p = realloc(r->rows, cap * sizeof(*r->rows));

		if (!p) {
			c->err = -ENOMEM;
			return;
		}
		r->rows = p;
		c->cap_rows = cap;
	}
	w = &r->rows[r->nrows++];
	memset(w, 0, sizeof(*w));
	snprintf(w->source, sizeof(w->source), "%s", source);
	snprintf(w->granularity, sizeof(w->granularity), "%s", gran);
	va_start(ap, fmt);
	vsnprintf(w->field, sizeof(w->field), fmt, ap);
	va_end(ap);
	w->value_s = v;
}

static struct vms_check *check(struct ctx *c, const char *id, const char *what, const char *lhs,
			       double lv, const char *rhs, double rv, double tol)
{
	struct vms_acct_report *r = c->r;
	struct vms_check *k;

	if (r->nchecks == c->cap_checks) {
		size_t cap = c->cap_checks ? c->cap_checks * 2 : 32;
		void *p = realloc(r->checks, cap * sizeof(*r->checks));

		if (!p) {
			c->err = -ENOMEM;
			return NULL;
		}
		r->checks = p;
		c->cap_checks = cap;
	}
	k = &r->checks[r->nchecks++];
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->what, sizeof(k->what), "%s", what);
	snprintf(k->lhs, sizeof(k->lhs), "%s", lhs);
	snprintf(k->rhs, sizeof(k->rhs), "%s", rhs);
	k->lhs_s = lv;
	k->rhs_s = rv;
	k->tol_s = tol;
	k->status = isnan(lv) || isnan(rv) ? VMS_CHECK_SKIP
		    : fabs(lv - rv) <= tol ? VMS_CHECK_PASS
					   : VMS_CHECK_FAIL;
	return k;
}

/* A value that should stay under a limit (the check has no second source). */
static struct vms_check *threshold(struct ctx *c, const char *id, const char *what, const char *lhs,
				   double v, double limit)
{
	struct vms_check *k = check(c, id, what, lhs, v, "", 0.0, limit);

	if (k) {
		k->rhs_s = NAN;
		k->status = v <= limit ? VMS_CHECK_PASS : VMS_CHECK_FAIL;
	}
	return k;
}

static void say(struct vms_check *k, enum vms_check_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct vms_check *k, enum vms_check_status st, const char *fmt, ...)
{
	va_list ap;

	if (!k)
		return;
	k->status = st;
	va_start(ap, fmt);
	vsnprintf(k->explain, sizeof(k->explain), fmt, ap);
	va_end(ap);
}

/* Tolerance for a tick-sampled counter of @value seconds against an exact one. */
static double tick_tol(const struct ctx *c, double value, unsigned int counters)
{
	double n = value / c->ktick;

	return 3.0 * sqrt(n > 0 ? n : 0) * c->ktick + 2.0 * counters * c->ktick + c->skew;
}

/* ---- the VM's threads ---- */

static int collect_tasks(struct ctx *c)
{
	c->tasks = calloc(MAX_TASKS, sizeof(*c->tasks));
	if (!c->tasks)
		return -ENOMEM;
	for (size_t i = 0; i < vms_acct_count(c->b) && c->ntasks < MAX_TASKS; i++) {
		const char *key = vms_acct_key(c->b, i);
		struct task *t;
		uint64_t v;
		int tid, n = 0;

		if (sscanf(key, "task.%d.utime%n", &tid, &n) != 1 || !n || key[n])
			continue;
		t = &c->tasks[c->ntasks++];
		t->tid = tid;
		t->vcpu = acct_getf(c->b, &v, "task.%d.vcpu", tid) ? -1 : (int)v;
		t->both = !acct_getf(c->a, &v, "task.%d.utime", tid);
		t->has_sched = dkf(c, 1e-9, &t->run, "task.%d.run_ns", tid) &&
			       dkf(c, 1e-9, &t->wait, "task.%d.wait_ns", tid);
		dkf(c, c->tick, &t->utime, "task.%d.utime", tid);
		dkf(c, c->tick, &t->stime, "task.%d.stime", tid);
		dkf(c, c->tick, &t->gtime, "task.%d.gtime", tid);
	}
	return 0;
}

static int cmp_task(const void *x, const void *y)
{
	const struct task *a = x, *b = y;
	int va = a->vcpu < 0 ? 1 << 30 : a->vcpu, vb = b->vcpu < 0 ? 1 << 30 : b->vcpu;

	return va != vb ? (va < vb ? -1 : 1) : (a->tid > b->tid) - (a->tid < b->tid);
}

struct sums {
	double run, wait, utime, stime, gtime;
	double vrun, vwait, vgtime;
	unsigned int n, nvcpu, changed; /* threads; vCPU threads; started or ended meanwhile */
};

static void sum_tasks(const struct ctx *c, struct sums *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];

		if (!t->both) {
			s->changed++;
			continue;
		}
		s->n++;
		s->run += t->run;
		s->wait += t->wait;
		s->utime += t->utime;
		s->stime += t->stime;
		s->gtime += t->gtime;
		if (t->vcpu >= 0) {
			s->nvcpu++;
			s->vrun += t->run;
			s->vwait += t->wait;
			s->vgtime += t->gtime;
		}
	}
	/* Threads of A that are gone from B. */
	for (size_t i = 0; i < vms_acct_count(c->a); i++) {
		const char *key = vms_acct_key(c->a, i);
		uint64_t v;
		int tid, n = 0;

		if (sscanf(key, "task.%d.utime%n", &tid, &n) == 1 && n && !key[n] &&
		    acct_getf(c->b, &v, "task.%d.utime", tid))
			s->changed++;
	}
}

/* ---- checks ---- */

static void check_cgroup_usage(struct ctx *c, const struct sums *s, const char *id,
			       const char *name, double usage, uint64_t others)
{
	struct vms_check *k =
		check(c, id, "the cgroup's exact CPU time = its threads' run time", name, usage,
		      "sum of schedstat run time", s->run, c->skew + 0.001);

	if (!k)
		return;
	if (others) {
		say(k, VMS_CHECK_SKIP,
		    "the cgroup also holds %" PRIu64 " other process(es), whose time it counts too",
		    others);
	} else if (k->status == VMS_CHECK_PASS) {
		say(k, VMS_CHECK_PASS,
		    "%s is the scheduler's exact runtime of the cgroup's tasks (ns); it equals the "
		    "threads' own run time",
		    name);
	} else if (s->changed) {
		say(k, VMS_CHECK_WARN,
		    "%u thread(s) started or ended in the interval; the cgroup counts their time, "
		    "the thread sum cannot",
		    s->changed);
	} else {
		say(k, VMS_CHECK_FAIL,
		    "%s and the threads' exact run time differ by %.3f s with no thread started "
		    "or ended: some of the cgroup's time is not this VM's",
		    name, usage - s->run);
	}
}

/*
 * user + system against the exact usage: the question of seed 000. On kernels before 5.16
 * a cgroup's cpuacct.stat (and cgroup2 cpu.stat) missed all guest time; since 5.16 the two
 * are the tick split scaled to the exact runtime, so their sum cannot fall short.
 */
static void check_user_system(struct ctx *c, const char *id, const char *name, double user,
			      double sys, double usage, double guest, double gran)
{
	char lhs[64];
	double tol = 2 * gran + c->skew, gap = usage - (user + sys);
	struct vms_check *k;

	snprintf(lhs, sizeof(lhs), "%s user + system", name);
	k = check(c, id, "user + system = the exact CPU time", lhs, user + sys, "exact usage",
		  usage, tol);
	if (!k || k->status == VMS_CHECK_SKIP)
		return;
	if (k->status == VMS_CHECK_PASS) {
		say(k, VMS_CHECK_PASS,
		    c->new_kernel
			    ? "user and system add up to the exact time because this kernel (5.16 "
			      "or "
			      "later, commit 8c92606ab810) scales the tick-based split to the "
			      "runtime; only the split between them is sampled"
			    : "user and system add up to the exact time");
		return;
	}
	if (gap > tol && guest > gran && fabs(gap - guest) <= tick_tol(c, guest, 2) + tol) {
		say(k, VMS_CHECK_FAIL,
		    "user + system fall short of the exact time by %.3f s, which is the guest "
		    "time (%.3f s): this kernel leaves guest time out of the cgroup's user time "
		    "(the symptom of seed 000; fixed in Linux 5.16 by commit 9731698ecb9c). Use "
		    "the exact usage for the VM's CPU time",
		    gap, guest);
	} else if (gap > tol) {
		say(k, VMS_CHECK_FAIL,
		    "user + system fall short of the exact time by %.3f s, more than the tick "
		    "granularity allows, and the guest time (%.3f s) does not explain it",
		    gap, guest);
	} else {
		say(k, VMS_CHECK_WARN,
		    "user + system exceed the exact time by %.3f s: unscaled ticks sample CPU "
		    "time and can overshoot it",
		    -gap);
	}
}

static void check_cg1(struct ctx *c, const struct sums *s)
{
	double usage, uu, us, su, ss, sum = 0, v;
	uint64_t others = 0;
	unsigned int n = 0;

	if (!dk(c, "cg1.usage", 1e-9, &usage))
		return;
	vms_acct_get(c->b, "cg1.other_procs", &others);
	row(c, "cgroup v1", "exact (ns)", usage, "cpuacct.usage");
	check_cgroup_usage(c, s, "cg1-usage-vs-threads", "cpuacct.usage", usage, others);
	if (dk(c, "cg1.stat.user", c->tick, &su) && dk(c, "cg1.stat.system", c->tick, &ss)) {
		row(c, "cgroup v1", "USER_HZ", su, "cpuacct.stat user");
		row(c, "cgroup v1", "USER_HZ", ss, "cpuacct.stat system");
		check_user_system(c, "cg1-stat-vs-usage", "cpuacct.stat", su, ss, usage, s->vgtime,
				  c->tick);
		if (!others) {
			struct vms_check *k =
				check(c, "cg1-user-has-guest", "guest time is inside user time",
				      "cpuacct.stat user", su, "vCPU threads' guest_time",
				      s->vgtime, tick_tol(c, s->vgtime, 2 * s->nvcpu + 2));

			if (k && k->status == VMS_CHECK_FAIL && su + k->tol_s >= s->vgtime)
				say(k, VMS_CHECK_PASS,
				    "user (%.3f s) includes the guest time (%.3f s) and %.3f s of "
				    "host user time besides: do not add guest to user, it is in it",
				    su, s->vgtime, su - s->vgtime);
			else if (k && k->status == VMS_CHECK_PASS)
				say(k, VMS_CHECK_PASS,
				    "user includes the guest time: do not add guest to user, it is "
				    "in "
				    "it");
			else if (k && k->status == VMS_CHECK_FAIL)
				say(k, VMS_CHECK_FAIL,
				    "user (%.3f s) is less than the guest time (%.3f s): this "
				    "cgroup's "
				    "user time leaves guest time out (kernels before 5.16)",
				    su, s->vgtime);
		}
	}
	if (dk(c, "cg1.usage_user", 1e-9, &uu) && dk(c, "cg1.usage_sys", 1e-9, &us)) {
		struct vms_check *k;

		row(c, "cgroup v1", c->ktick_known ? "tick (1/HZ)" : "tick", uu,
		    "cpuacct.usage_user");
		row(c, "cgroup v1", c->ktick_known ? "tick (1/HZ)" : "tick", us,
		    "cpuacct.usage_sys");
		k = check(c, "cg1-ticks-vs-usage", "the raw tick split adds up to the exact time",
			  "usage_user + usage_sys", uu + us, "cpuacct.usage", usage,
			  tick_tol(c, usage, c->ncpus));
		if (k && k->status == VMS_CHECK_PASS)
			say(k, VMS_CHECK_PASS,
			    "usage_user and usage_sys are unscaled samples, one per scheduler tick "
			    "(%.0f ms) that finds the task running; they match the exact time "
			    "within "
			    "the sampling error",
			    c->ktick * 1e3);
		else if (k && k->status == VMS_CHECK_FAIL)
			say(k, VMS_CHECK_WARN,
			    "the tick samples differ from the exact time by %.3f s, beyond the "
			    "sampling error: a task that runs in step with the tick (or sleeps "
			    "across it) is seen too often or too rarely",
			    uu + us - usage);
	}
	for (unsigned int cpu = 0; cpu < c->ncpus; cpu++)
		if (dkf(c, 1e-9, &v, "cg1.percpu.%u", cpu)) {
			sum += v;
			n++;
		}
	if (n) {
		struct vms_check *k = check(
			c, "cg1-percpu-sum", "per-CPU usage adds up to the total",
			"sum of cpuacct.usage_percpu", sum, "cpuacct.usage", usage, c->skew + 1e-6);

		if (k && k->status == VMS_CHECK_PASS)
			say(k, VMS_CHECK_PASS,
			    "the per-CPU counters are the same exact runtime, split "
			    "by the CPU it ran on");
		else if (k)
			say(k, VMS_CHECK_FAIL, "the per-CPU counters do not add up to the total");
	}
}

static void check_cg2(struct ctx *c, const struct sums *s)
{
	double usage, user, sys;
	uint64_t others = 0;

	if (!dk(c, "cg2.usage_usec", 1e-6, &usage))
		return;
	vms_acct_get(c->b, "cg2.other_procs", &others);
	row(c, "cgroup v2", "exact (us)", usage, "cpu.stat usage_usec");
	check_cgroup_usage(c, s, "cg2-usage-vs-threads", "cpu.stat usage_usec", usage, others);
	if (dk(c, "cg2.user_usec", 1e-6, &user) && dk(c, "cg2.system_usec", 1e-6, &sys)) {
		row(c, "cgroup v2", "tick, scaled", user, "cpu.stat user_usec");
		row(c, "cgroup v2", "tick, scaled", sys, "cpu.stat system_usec");
		check_user_system(c, "cg2-user-system-vs-usage", "cpu.stat", user, sys, usage,
				  s->vgtime, c->ktick);
	}
}

static void check_threads(struct ctx *c)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];
		char who[32], id[40];
		struct vms_check *k;

		if (!t->both || t->vcpu < 0)
			continue;
		snprintf(who, sizeof(who), "vCPU %d", t->vcpu);
		row(c, "procfs", "USER_HZ", t->utime, "%s utime (tid %d)", who, t->tid);
		row(c, "procfs", "USER_HZ", t->stime, "%s stime", who);
		row(c, "procfs", "tick (1/HZ)", t->gtime, "%s guest_time", who);
		if (!t->has_sched)
			continue;
		row(c, "schedstat", "exact (ns)", t->run, "%s run time", who);
		row(c, "schedstat", "exact (ns)", t->wait, "%s run-queue delay", who);

		snprintf(id, sizeof(id), "vcpu%d-utime-stime-vs-run", t->vcpu);
		k = check(c, id, "the thread's utime + stime = its exact run time", "utime + stime",
			  t->utime + t->stime, "schedstat run time", t->run, 2 * c->tick + c->skew);
		if (k && k->status == VMS_CHECK_PASS)
			say(k, VMS_CHECK_PASS,
			    "/proc's utime and stime are the tick split scaled to the exact run "
			    "time "
			    "(cputime_adjust), then rounded to USER_HZ");
		else if (k)
			say(k, VMS_CHECK_FAIL,
			    "utime + stime differ from the run time by %.3f s, more than the "
			    "USER_HZ "
			    "rounding allows",
			    t->utime + t->stime - t->run);

		snprintf(id, sizeof(id), "vcpu%d-guest-in-user", t->vcpu);
		k = check(c, id, "guest time is inside user time", "guest_time", t->gtime, "utime",
			  t->utime, tick_tol(c, t->gtime, 2));
		if (k && (k->status == VMS_CHECK_PASS || t->gtime <= t->utime))
			say(k, VMS_CHECK_PASS,
			    "%.1f %% of %s's run time was guest mode, counted inside user time "
			    "(user = guest + %.3f s of the VMM's own user time); the other %.3f s "
			    "are "
			    "host time on its behalf: exits handled in the kernel, emulation%s, "
			    "the "
			    "VMM",
			    t->run > 0 ? 100.0 * t->gtime / t->run : 0.0, who,
			    t->utime > t->gtime ? t->utime - t->gtime : 0.0,
			    t->run > t->gtime ? t->run - t->gtime : 0.0,
			    vms_acct_str(c->b, "meta.kvm") &&
					    !strcmp(vms_acct_str(c->b, "meta.kvm"), "pvm")
				    ? " (on KVM-PVM the guest kernel is emulated: system time)"
				    : "");
		else if (k)
			say(k, VMS_CHECK_WARN,
			    "guest_time exceeds utime by %.3f s: guest_time is raw ticks while "
			    "utime "
			    "is scaled to the exact run time; tick sampling overshot",
			    t->gtime - t->utime);

		snprintf(id, sizeof(id), "vcpu%d-runqueue-delay", t->vcpu);
		k = threshold(c, id, "time the vCPU waited for a host CPU", "run-queue delay",
			      t->wait, 0.05 * c->interval);
		if (k && k->status == VMS_CHECK_PASS)
			say(k, t->wait > 0.001 ? VMS_CHECK_INFO : VMS_CHECK_PASS,
			    "%s waited %.3f s (%.1f %% of the interval) for a host CPU while "
			    "runnable",
			    who, t->wait, 100.0 * t->wait / c->interval);
		else if (k)
			say(k, VMS_CHECK_WARN,
			    "%s waited %.3f s (%.1f %% of the interval) for a host CPU while "
			    "runnable. The guest cannot see this: its clock runs on, so it "
			    "believes "
			    "it ran (unless it reads steal time); every source above counts only "
			    "the "
			    "time it got",
			    who, t->wait, 100.0 * t->wait / c->interval);
	}
}

static void check_host_cpus(struct ctx *c, const struct sums *s)
{
	double guest = 0, user = 0, steal = 0, v;
	unsigned int used = 0, cpus[1024];
	bool any_percpu = false;
	struct vms_check *k;
	char list[128] = "";

	/* The CPUs the VM used: where its cgroup counted time, else all of them. */
	for (unsigned int cpu = 0; cpu < c->ncpus && cpu < 1024; cpu++)
		if (dkf(c, 1e-9, &v, "cg1.percpu.%u", cpu)) {
			any_percpu = true;
			if (v > 0)
				cpus[used++] = cpu;
		}
	if (!any_percpu)
		for (unsigned int cpu = 0; cpu < c->ncpus && cpu < 1024; cpu++)
			cpus[used++] = cpu;
	for (unsigned int i = 0; i < used; i++) {
		double g, gn, u, st;
		size_t l = strlen(list);

		if (!dkf(c, c->tick, &g, "stat.cpu%u.guest", cpus[i]) ||
		    !dkf(c, c->tick, &gn, "stat.cpu%u.guest_nice", cpus[i]) ||
		    !dkf(c, c->tick, &u, "stat.cpu%u.user", cpus[i]))
			return;
		if (dkf(c, c->tick, &st, "stat.cpu%u.steal", cpus[i]))
			steal += st;
		guest += g + gn;
		user += u;
		if (l < sizeof(list) - 8)
			snprintf(list + l, sizeof(list) - l, "%s%u", l ? "," : "", cpus[i]);
	}
	if (!used)
		return;
	row(c, "/proc/stat", "tick (1/HZ)", guest, "guest + guest_nice, CPUs %s", list);
	row(c, "/proc/stat", "tick (1/HZ)", user, "user, CPUs %s", list);
	row(c, "/proc/stat", "tick (1/HZ)", steal, "steal, CPUs %s", list);
	k = check(c, "host-guest-covers-vm", "the host CPUs' guest time covers the VM's",
		  "/proc/stat guest", guest, "vCPU threads' guest_time", s->vgtime,
		  tick_tol(c, s->vgtime, 2 * used));
	if (!k)
		return;
	if (guest + k->tol_s >= s->vgtime)
		say(k, VMS_CHECK_PASS,
		    "the guest column of CPUs %s holds this VM's guest time%s%.3f s; it is "
		    "counted inside their user column too (user %.3f s)",
		    list,
		    guest > s->vgtime + k->tol_s ? " and other VMs' or earlier threads': " : ": ",
		    guest, user);
	else
		say(k, VMS_CHECK_FAIL,
		    "CPUs %s show %.3f s less guest time than the VM's threads: the two count "
		    "the same ticks and should agree",
		    list, s->vgtime - guest);
}

static unsigned int check_kvm_vcpus(struct ctx *c)
{
	unsigned int n = 0;

	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];
		double ok, fail, wait;
		struct vms_check *k;
		char id[40];

		if (t->vcpu < 0 || !t->both ||
		    !dkf(c, 1e-9, &ok, "kvm.vcpu%d.halt_poll_success_ns", t->vcpu) ||
		    !dkf(c, 1e-9, &fail, "kvm.vcpu%d.halt_poll_fail_ns", t->vcpu))
			continue;
		n++;
		row(c, "KVM stats", "exact (ns)", ok + fail, "vCPU %d halt polling", t->vcpu);
		if (dkf(c, 1e-9, &wait, "kvm.vcpu%d.halt_wait_ns", t->vcpu))
			row(c, "KVM stats", "exact (ns)", wait, "vCPU %d halted (asleep)", t->vcpu);
		snprintf(id, sizeof(id), "vcpu%d-halt-polling", t->vcpu);
		k = threshold(c, id, "CPU time spent polling a halted vCPU", "halt polling",
			      ok + fail, fmax(0.01, 0.05 * t->run));
		if (!k)
			continue;
		if (k->status == VMS_CHECK_PASS)
			say(k, VMS_CHECK_PASS,
			    "halt polling took %.3f s of vCPU %d's %.3f s run time (%.1f %%)",
			    ok + fail, t->vcpu, t->run,
			    t->run > 0 ? 100 * (ok + fail) / t->run : 0.0);
		else
			say(k, VMS_CHECK_WARN,
			    "%.3f s of vCPU %d's run time (%.1f %%) was halt polling: after the "
			    "guest "
			    "halts, KVM spins up to halt_poll_ns before it sleeps. Every source "
			    "counts "
			    "that spin as the VM's busy CPU time although the guest was idle",
			    ok + fail, t->vcpu, t->run > 0 ? 100 * (ok + fail) / t->run : 0.0);
	}
	return n;
}

/* Without the VMM's statistics descriptors, libvirt's domain-wide cpu.haltpoll figures
 * (which QEMU's query-stats gives it) still show the polling. */
static void check_kvm(struct ctx *c)
{
	double ok, fail, run = 0;
	struct vms_check *k;

	if (check_kvm_vcpus(c) || !dk(c, "libvirt.ds.haltpoll_success", 1e-9, &ok) ||
	    !dk(c, "libvirt.ds.haltpoll_fail", 1e-9, &fail))
		return;
	for (size_t i = 0; i < c->ntasks; i++)
		if (c->tasks[i].vcpu >= 0 && c->tasks[i].both)
			run += c->tasks[i].run;
	row(c, "libvirt", "exact (ns)", ok + fail, "domstats cpu.haltpoll (all vCPUs)");
	k = threshold(c, "halt-polling", "CPU time spent polling halted vCPUs",
		      "cpu.haltpoll success + fail", ok + fail, fmax(0.01, 0.05 * run));
	if (k && k->status == VMS_CHECK_PASS)
		say(k, VMS_CHECK_PASS, "halt polling took %.3f s of the vCPUs' %.3f s run time",
		    ok + fail, run);
	else if (k)
		say(k, VMS_CHECK_WARN,
		    "%.3f s of the vCPUs' %.3f s run time was halt polling: KVM spins after a "
		    "guest halts, and every source counts the spin as busy although the guest was "
		    "idle",
		    ok + fail, run);
}

/* libvirt's figures against the sources the libvirt README table says they come from. */
static void check_libvirt(struct ctx *c)
{
	double lv, src, su, ss;
	bool v1 = dk(c, "cg1.usage", 1e-9, &src);
	struct vms_check *k;

	if (!dk(c, "libvirt.cpu_time", 1e-9, &lv))
		return;
	row(c, "libvirt", "exact (ns)", lv, "cpu-stats cpu_time");
	if (!v1 && !dk(c, "cg2.usage_usec", 1e-6, &src))
		src = NAN;
	k = check(c, "libvirt-cpu_time", "libvirt's cpu_time = the cgroup's usage",
		  "cpu-stats cpu_time", lv, v1 ? "cpuacct.usage" : "cpu.stat usage_usec", src,
		  c->skew + 0.001);
	if (k && k->status == VMS_CHECK_PASS)
		say(k, VMS_CHECK_PASS, "libvirt reads the domain cgroup's %s",
		    v1 ? "cpuacct.usage (cgroup v1)" : "cpu.stat usage_usec (cgroup v2)");
	else if (k && k->status == VMS_CHECK_FAIL)
		say(k, VMS_CHECK_FAIL, "libvirt's cpu_time is not the domain cgroup's usage");
	if (dk(c, "libvirt.user_time", 1e-9, &su) && dk(c, "libvirt.system_time", 1e-9, &ss)) {
		row(c, "libvirt", "USER_HZ", su, "cpu-stats user_time");
		row(c, "libvirt", "USER_HZ", ss, "cpu-stats system_time");
		check_user_system(c, "libvirt-user-system", "libvirt", su, ss, lv, 0,
				  v1 ? c->tick : c->ktick);
	}
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];
		double time, delay, wait;
		uint64_t schedstats = 1;
		char id[40];

		if (t->vcpu < 0 || !t->both)
			continue;
		if (dkf(c, 1e-9, &time, "libvirt.vcpu.%d.time", t->vcpu)) {
			row(c, "libvirt", "USER_HZ", time, "vcpu.%d.time", t->vcpu);
			snprintf(id, sizeof(id), "libvirt-vcpu%d-time", t->vcpu);
			k = check(c, id, "libvirt's vCPU time = the thread's utime + stime",
				  "domstats vcpu.N.time", time, "utime + stime",
				  t->utime + t->stime, 2 * c->tick + c->skew);
			if (k && k->status == VMS_CHECK_PASS)
				say(k, VMS_CHECK_PASS,
				    "libvirt reads /proc/<pid>/task/<tid>/stat utime + stime "
				    "(USER_HZ)");
		}
		if (dkf(c, 1e-9, &delay, "libvirt.vcpu.%d.delay", t->vcpu)) {
			row(c, "libvirt", "exact (ns)", delay, "vcpu.%d.delay", t->vcpu);
			snprintf(id, sizeof(id), "libvirt-vcpu%d-delay", t->vcpu);
			k = check(c, id, "libvirt's vCPU delay = the thread's run-queue delay",
				  "domstats vcpu.N.delay", delay, "schedstat run-queue delay",
				  t->wait, c->skew + 0.001);
			if (k && k->status == VMS_CHECK_PASS)
				say(k, VMS_CHECK_PASS, "libvirt reads schedstat's second field");
		}
		if (dkf(c, 1e-9, &wait, "libvirt.vcpu.%d.wait", t->vcpu)) {
			snprintf(id, sizeof(id), "libvirt-vcpu%d-wait", t->vcpu);
			vms_acct_get(c->b, "meta.config.schedstats", &schedstats);
			k = threshold(c, id, "libvirt's vCPU wait", "domstats vcpu.N.wait", wait,
				      INFINITY);
			if (k && !schedstats && wait == 0)
				say(k, VMS_CHECK_WARN,
				    "vcpu.N.wait is always 0 here: it is the thread's wait_sum "
				    "from "
				    "/proc/<pid>/task/<tid>/sched, which needs CONFIG_SCHEDSTATS. "
				    "Use "
				    "vcpu.N.delay for the time the vCPU waited for a CPU");
			else if (k)
				say(k, VMS_CHECK_INFO,
				    "vcpu.N.wait is wait_sum from /proc/<pid>/task/<tid>/sched "
				    "(CONFIG_SCHEDSTATS, kernel.sched_schedstats=1)");
		}
	}
}

static void check_trace(struct ctx *c)
{
	uint64_t covered = 0;
	double cov, steal = 0, st;

	if (!c->trace)
		return;
	vms_acct_get(c->trace, "trace.covered_ns", &covered);
	cov = (double)covered * 1e-9 / c->interval;
	/* Time a hypervisor under this host took from its CPUs: on-CPU time by the trace's
	 * clock, but left out of the run time when the kernel accounts steal
	 * (CONFIG_PARAVIRT_TIME_ACCOUNTING). Which CPUs a thread ran on is not known: all. */
	for (unsigned int cpu = 0; cpu < c->ncpus; cpu++)
		if (dkf(c, c->tick, &st, "stat.cpu%u.steal", cpu))
			steal += st;
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];
		uint64_t run, wait, unsure = 0;
		struct vms_check *k;
		char id[40];

		acct_getf(c->trace, &unsure, "trace.task.%d.uncertain_ns", t->tid);
		if (t->vcpu < 0 || !t->both || !t->has_sched ||
		    acct_getf(c->trace, &run, "trace.task.%d.run_ns", t->tid) ||
		    acct_getf(c->trace, &wait, "trace.task.%d.wait_ns", t->tid))
			continue;
		row(c, "trace", "exact (ns)", (double)run * 1e-9, "vCPU %d running", t->vcpu);
		row(c, "trace", "exact (ns)", (double)wait * 1e-9, "vCPU %d preempted + waiting",
		    t->vcpu);
		snprintf(id, sizeof(id), "trace-vcpu%d-run", t->vcpu);
		k = check(c, id, "the trace's running time = schedstat run time", "trace running",
			  (double)run * 1e-9, "schedstat run time", t->run,
			  0.01 * t->run + c->skew + 0.002 + (double)unsure * 1e-9);
		if (!k)
			continue;
		if (cov < 0.99)
			say(k, VMS_CHECK_SKIP,
			    "the trace covers %.1f %% of the interval: record it over the whole "
			    "interval to compare",
			    100 * cov);
		else if (k->status != VMS_CHECK_PASS && (double)run * 1e-9 > t->run &&
			 (double)run * 1e-9 - t->run <= k->tol_s + steal)
			say(k, VMS_CHECK_PASS,
			    "the trace counts %.3f s more on-CPU time: the host's CPUs were "
			    "stolen for %.3f s (steal), which the trace's clock counts and the "
			    "scheduler's run time leaves out",
			    (double)run * 1e-9 - t->run, steal);
		else if (k->status == VMS_CHECK_PASS)
			say(k, VMS_CHECK_PASS,
			    "the sched_switch events account for the same on-CPU time as the "
			    "scheduler's counters%s",
			    unsure ? " (within what the switch-ins inferred from the thread's own "
				     "events may be off)"
				   : "");
		else
			say(k, VMS_CHECK_FAIL,
			    "the trace and schedstat differ by %.3f s: events were lost or the "
			    "trace "
			    "is not of this interval",
			    (double)run * 1e-9 - t->run);
	}
}

/* Every source that could not be read is a skipped check that says why. */
static void check_missing(struct ctx *c)
{
	for (size_t i = 0; i < vms_acct_count(c->b); i++) {
		const char *key = vms_acct_key(c->b, i);
		struct vms_check *k;
		char id[40];

		if (strncmp(key, "err.", 4))
			continue;
		snprintf(id, sizeof(id), "source-%s", key + 4);
		k = check(c, id, "source not readable", key + 4, NAN, "", NAN, 0);
		if (k)
			say(k, VMS_CHECK_SKIP, "%s", vms_acct_str(c->b, key));
	}
}

/* ---- libvirt, field by field ---- */

static bool getb(const struct ctx *c, double scale, double *out, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool getb(const struct ctx *c, double scale, double *out, const char *fmt, ...)
{
	char key[ACCT_KEY_BUF];
	uint64_t v;
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = acct_vkey(key, fmt, ap);
	va_end(ap);
	if (err || vms_acct_get(c->b, key, &v))
		return false;
	*out = (double)v * scale;
	return true;
}

static void pair(struct ctx *c, const char *lv_name, double lv, const char *src_name, double sv,
		 double tol)
{
	struct vms_acct_report *r = c->r;
	struct vms_acct_pair *p;

	if (r->npairs == c->cap_pairs) {
		size_t cap = c->cap_pairs ? c->cap_pairs * 2 : 32;
		void *n = realloc(r->pairs, cap * sizeof(*r->pairs));

		if (!n) {
			c->err = -ENOMEM;
			return;
		}
		r->pairs = n;
		c->cap_pairs = cap;
	}
	p = &r->pairs[r->npairs++];
	memset(p, 0, sizeof(*p));
	snprintf(p->libvirt, sizeof(p->libvirt), "%s", lv_name);
	snprintf(p->source, sizeof(p->source), "%s", src_name);
	p->libvirt_v = lv;
	p->source_v = sv;
	p->tol = tol;
	p->match = fabs(lv - sv) <= tol;
}

/*
 * Every libvirt figure at the second snapshot against vmscope's reading of its source at
 * the same snapshot (libvirt 9.0's sources, checked on a paused domain). libvirt is read
 * last, so a running VM moves on by up to the snapshot's reading time in between.
 */
static void libvirt_pairs(struct ctx *c)
{
	double lv, sv, sv2, skew, tick = c->tick;
	uint64_t rb = 0;
	bool v1;
	char name[64], src[64];

	if (!getb(c, 1, &lv, "libvirt.state"))
		return;
	vms_acct_get(c->b, "meta.read_ns", &rb);
	skew = (double)rb * 1e-9 * c->ncpus + 1e-6;
	v1 = getb(c, 1e-9, &sv, "cg1.usage");
	if ((v1 || getb(c, 1e-6, &sv, "cg2.usage_usec"))) {
		const char *usrc = v1 ? "cpuacct.usage" : "cpu.stat usage_usec";

		if (getb(c, 1e-9, &lv, "libvirt.cpu_time"))
			pair(c, "cpu-stats cpu_time", lv, usrc, sv, skew);
		if (getb(c, 1e-9, &lv, "libvirt.ds.cpu_time"))
			pair(c, "domstats cpu.time", lv, usrc, sv, skew);
	}
	if (v1 ? getb(c, tick, &sv, "cg1.stat.user") : getb(c, 1e-6, &sv, "cg2.user_usec")) {
		const char *usrc = v1 ? "cpuacct.stat user x 1/USER_HZ" : "cpu.stat user_usec";

		if (getb(c, 1e-9, &lv, "libvirt.user_time"))
			pair(c, "cpu-stats user_time", lv, usrc, sv, skew + tick);
		if (getb(c, 1e-9, &lv, "libvirt.ds.cpu_user"))
			pair(c, "domstats cpu.user", lv, usrc, sv, skew + tick);
	}
	if (v1 ? getb(c, tick, &sv, "cg1.stat.system") : getb(c, 1e-6, &sv, "cg2.system_usec")) {
		const char *usrc = v1 ? "cpuacct.stat system x 1/USER_HZ" : "cpu.stat system_usec";

		if (getb(c, 1e-9, &lv, "libvirt.system_time"))
			pair(c, "cpu-stats system_time", lv, usrc, sv, skew + tick);
		if (getb(c, 1e-9, &lv, "libvirt.ds.cpu_system"))
			pair(c, "domstats cpu.system", lv, usrc, sv, skew + tick);
	}
	for (unsigned int cpu = 0; cpu < c->ncpus; cpu++) {
		if (getb(c, 1e-9, &lv, "libvirt.percpu.%u.cpu_time", cpu) &&
		    getb(c, 1e-9, &sv, "cg1.percpu.%u", cpu)) {
			snprintf(name, sizeof(name), "cpu-stats CPU%u cpu_time", cpu);
			snprintf(src, sizeof(src), "cpuacct.usage_percpu[%u]", cpu);
			pair(c, name, lv, src, sv, skew);
		}
		if (getb(c, 1e-9, &lv, "libvirt.percpu.%u.vcpu_time", cpu)) {
			sv = 0;
			for (int v = 0;
			     v < 1024 && getb(c, 1e-9, &sv2, "cg1.child.vcpu%d.percpu.%u", v, cpu);
			     v++)
				sv += sv2;
			snprintf(name, sizeof(name), "cpu-stats CPU%u vcpu_time", cpu);
			snprintf(src, sizeof(src), "sum of vcpuN/cpuacct.usage_percpu[%u]", cpu);
			pair(c, name, lv, src, sv, skew);
		}
	}
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct task *t = &c->tasks[i];
		double ut, st;

		if (t->vcpu < 0)
			continue;
		if (getb(c, 1e-9, &lv, "libvirt.vcpu.%d.time", t->vcpu) &&
		    getb(c, tick, &ut, "task.%d.utime", t->tid) &&
		    getb(c, tick, &st, "task.%d.stime", t->tid)) {
			snprintf(name, sizeof(name), "domstats vcpu.%d.time", t->vcpu);
			snprintf(src, sizeof(src), "tid %d utime + stime x 1/USER_HZ", t->tid);
			pair(c, name, lv, src, ut + st, skew + tick);
		}
		if (getb(c, 1e-9, &lv, "libvirt.vcpu.%d.delay", t->vcpu) &&
		    getb(c, 1e-9, &sv, "task.%d.wait_ns", t->tid)) {
			snprintf(name, sizeof(name), "domstats vcpu.%d.delay", t->vcpu);
			snprintf(src, sizeof(src), "tid %d schedstat run delay", t->tid);
			pair(c, name, lv, src, sv, skew);
		}
		if (getb(c, 1, &lv, "libvirt.vcpu.%d.host_cpu", t->vcpu) &&
		    getb(c, 1, &sv, "task.%d.cpu", t->tid)) {
			snprintf(name, sizeof(name), "vcpuinfo vCPU %d CPU", t->vcpu);
			snprintf(src, sizeof(src), "tid %d stat field 39", t->tid);
			/* A running vCPU may move between the two readings unless pinned. */
			pair(c, name, lv, src, sv, 0);
		}
	}
}

static bool same_text(const struct vms_acct *a, const struct vms_acct *b, const char *key)
{
	const char *x = vms_acct_str(a, key), *y = vms_acct_str(b, key);

	return !x || !y || !strcmp(x, y);
}

int vms_acct_validate(const struct vms_acct *a, const struct vms_acct *b,
		      const struct vms_acct *trace, struct vms_acct_report **out, char *msg,
		      size_t msglen)
{
	struct ctx c = { .a = a, .b = b, .trace = trace };
	uint64_t pa = 0, pb = 0, sa = 0, sb = 0, ta = 0, tb = 0, ra = 0, rb = 0, hz = 0, uhz = 100;
	uint64_t ncpus = 1, nthreads = 1;
	const char *kernel;
	struct sums s;
	unsigned int maj = 0, min = 0;

	*out = NULL;
	if (msg && msglen)
		msg[0] = '\0';
	vms_acct_get(a, "meta.pid", &pa);
	vms_acct_get(b, "meta.pid", &pb);
	vms_acct_get(a, "meta.starttime", &sa);
	vms_acct_get(b, "meta.starttime", &sb);
	if (pa != pb || sa != sb || !same_text(a, b, "meta.boot_id")) {
		snprintf(msg, msglen,
			 "the snapshots are not of the same VM process (pid %" PRIu64
			 " and %" PRIu64 ")",
			 pa, pb);
		return -EINVAL;
	}
	if (vms_acct_get(a, "meta.mono_ns", &ta) || vms_acct_get(b, "meta.mono_ns", &tb) ||
	    tb <= ta) {
		snprintf(msg, msglen, "the second snapshot is not later than the first");
		return -EINVAL;
	}
	c.r = calloc(1, sizeof(*c.r));
	if (!c.r)
		return -ENOMEM;
	c.r->pid = (int)pb;
	snprintf(c.r->name, sizeof(c.r->name), "%s",
		 vms_acct_str(b, "meta.name") ? vms_acct_str(b, "meta.name") : "");
	c.interval = (double)(tb - ta) * 1e-9;
	c.r->interval_s = c.interval;
	vms_acct_get(b, "meta.user_hz", &uhz);
	c.tick = 1.0 / (double)(uhz ? uhz : 100);
	c.ktick_known = !vms_acct_get(b, "meta.config.hz", &hz) && hz;
	c.ktick = c.ktick_known ? 1.0 / (double)hz : 0.01; /* HZ=100 is the coarsest */
	vms_acct_get(b, "meta.ncpus", &ncpus);
	vms_acct_get(b, "proc.threads", &nthreads);
	c.ncpus = (unsigned int)(ncpus ? ncpus : 1);
	vms_acct_get(a, "meta.read_ns", &ra);
	vms_acct_get(b, "meta.read_ns", &rb);
	/* Sources read at different moments of a snapshot see the VM run on meanwhile. */
	c.skew = (double)(ra + rb) * 1e-9 * (double)(nthreads < ncpus ? nthreads : ncpus);
	kernel = vms_acct_str(b, "meta.kernel");
	if (kernel && sscanf(kernel, "%u.%u", &maj, &min) == 2)
		c.new_kernel = maj > 5 || (maj == 5 && min >= 16);

	c.err = collect_tasks(&c);
	if (!c.err) {
		qsort(c.tasks, c.ntasks, sizeof(*c.tasks), cmp_task);
		sum_tasks(&c, &s);
		row(&c, "schedstat", "exact (ns)", s.run, "all %u threads: run time", s.n);
		row(&c, "schedstat", "exact (ns)", s.vrun, "%u vCPU threads: run time", s.nvcpu);
		row(&c, "procfs", "USER_HZ", s.utime, "all threads: utime");
		row(&c, "procfs", "USER_HZ", s.stime, "all threads: stime");
		row(&c, "procfs", "tick (1/HZ)", s.gtime, "all threads: guest_time");
		check_cg1(&c, &s);
		check_cg2(&c, &s);
		check_threads(&c);
		check_host_cpus(&c, &s);
		check_kvm(&c);
		check_libvirt(&c);
		check_trace(&c);
		check_missing(&c);
		libvirt_pairs(&c);
	}
	free(c.tasks);
	if (c.err) {
		vms_acct_report_free(c.r);
		return c.err;
	}
	for (size_t i = 0; i < c.r->nchecks; i++) {
		c.r->fails += c.r->checks[i].status == VMS_CHECK_FAIL;
		c.r->warns += c.r->checks[i].status == VMS_CHECK_WARN;
	}
	*out = c.r;
	return 0;
}

void vms_acct_report_free(struct vms_acct_report *r)
{
	if (!r)
		return;
	free(r->rows);
	free(r->checks);
	free(r->pairs);
	free(r);
}

const char *vms_check_status_name(enum vms_check_status s)
{
	switch (s) {
	case VMS_CHECK_PASS:
		return "pass";
	case VMS_CHECK_INFO:
		return "info";
	case VMS_CHECK_WARN:
		return "warn";
	case VMS_CHECK_FAIL:
		return "fail";
	case VMS_CHECK_SKIP:
		return "skip";
	}
	return "?";
}
