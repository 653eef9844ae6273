// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope validate --calibrate: seed 000's protocol on the built-in test VM. The VM runs in
 * this process, in cgroups of its own, with its vCPUs pinned one per host CPU: a baseline
 * (0 % busy), then 75 % and 90 % busy, each for --phase-time. Every source is read at the
 * exact phase boundaries (the guest's schedule is in TSC, converted to CLOCK_MONOTONIC), so
 * each phase's growth of each source can be put against what the guest itself counted,
 * and the phase's checks run as they would for any VM.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "validate.h"
#include "vmscope/testvm.h"

#define CMD "validate"
#define NPHASES 3

static const unsigned int duty[NPHASES] = { 0, 75, 90 };
static const char *const phase_name[NPHASES] = { "baseline 0 %", "75 % busy", "90 % busy" };

/* What calibration compares, per phase: one value per source. */
enum cal_src {
	SRC_TRUTH,   /* the guest's own busy time */
	SRC_NOMINAL, /* duty x phase length x vCPUs: what the schedule asked for */
	SRC_RUN,     /* schedstat run time of the vCPU threads */
	SRC_WAIT,    /* their run-queue delay: busy time the host did not give them */
	SRC_UTIME_STIME,
	SRC_GUEST,
	SRC_CG1_USAGE,
	SRC_CG1_STAT,
	SRC_CG1_TICKS,
	SRC_CG2_USAGE,
	SRC_HOST_GUEST, /* /proc/stat guest of the CPUs the vCPUs are pinned to */
	SRC_HALT_POLL,	/* KVM: time spent polling (not compared: the guest was idle then) */
	SRC_LATE,	/* the guest's count of time held past its deadlines: host delay */
	SRC_STALL,	/* the guest's count of busy time its vCPU did not run */
	SRC_STEAL,	/* /proc/stat steal of the pinned CPUs: the hypervisor under this host */
	SRC_N
};

static const struct {
	const char *key, *title;
	bool compared; /* error against the truth is meaningful */
} src_info[SRC_N] = {
	[SRC_TRUTH] = { "truth", "guest busy time (its own TSC count)", false },
	[SRC_NOMINAL] = { "nominal", "duty x length (what the schedule asks)", false },
	[SRC_RUN] = { "schedstat_run", "schedstat run time, vCPU threads", true },
	[SRC_WAIT] = { "schedstat_wait", "schedstat run-queue delay, vCPU threads", false },
	[SRC_UTIME_STIME] = { "utime_stime", "/proc utime + stime, vCPU threads", true },
	[SRC_GUEST] = { "guest_time", "/proc guest_time, vCPU threads", true },
	[SRC_CG1_USAGE] = { "cpuacct_usage", "cpuacct.usage (whole process)", true },
	[SRC_CG1_STAT] = { "cpuacct_stat", "cpuacct.stat user + system", true },
	[SRC_CG1_TICKS] = { "cpuacct_ticks", "cpuacct.usage_user + usage_sys", true },
	[SRC_CG2_USAGE] = { "cg2_usage", "cgroup2 cpu.stat usage_usec", true },
	[SRC_HOST_GUEST] = { "host_guest", "/proc/stat guest, pinned CPUs", true },
	[SRC_HALT_POLL] = { "kvm_halt_poll", "KVM halt polling (guest idle)", false },
	[SRC_LATE] = { "guest_late", "guest late (host delay)", false },
	[SRC_STALL] = { "guest_stall", "guest stalled while busy (did not run)", false },
	[SRC_STEAL] = { "host_steal", "/proc/stat steal, pinned CPUs", false },
};

struct cal {
	struct vms_testvm *vm;
	unsigned int nvcpus;
	int pin[VMS_TESTVM_MAX_VCPUS];
	int run_ret;
	struct vms_acct *snap[NPHASES + 1];
	double val[NPHASES][SRC_N];
	bool has[NPHASES][SRC_N];
	struct vms_acct_report *rep[NPHASES];
};

static void *run_vm(void *arg)
{
	struct cal *c = arg;

	c->run_ret = vms_testvm_run(c->vm);
	return NULL;
}

static void add(struct cal *c, unsigned int p, enum cal_src s, const struct vms_acct *a,
		const struct vms_acct *b, const char *key, double scale)
{
	uint64_t d;

	if (vms_acct_delta(a, b, key, &d))
		return;
	c->val[p][s] += (double)d * scale;
	c->has[p][s] = true;
}

static void phase_values(struct cal *c, unsigned int p, double phase_s)
{
	const struct vms_acct *a = c->snap[p], *b = c->snap[p + 1];
	uint64_t uhz = 100;
	double tick;
	char key[96];

	vms_acct_get(b, "meta.user_hz", &uhz);
	tick = 1.0 / (double)(uhz ? uhz : 100);
	c->val[p][SRC_NOMINAL] = duty[p] / 100.0 * phase_s * c->nvcpus;
	c->has[p][SRC_NOMINAL] = true;
	for (unsigned int i = 0; i < c->nvcpus; i++) {
		struct vms_testvm_vcpu_phase t;
		int tid = vms_testvm_vcpu_tid(c->vm, i);

		if (!vms_testvm_vcpu_phase(c->vm, i, p, &t)) {
			c->val[p][SRC_TRUTH] += (double)t.busy_ns * 1e-9;
			c->val[p][SRC_LATE] += (double)t.late_ns * 1e-9;
			c->val[p][SRC_STALL] += (double)t.stall_ns * 1e-9;
			c->has[p][SRC_TRUTH] = c->has[p][SRC_LATE] = c->has[p][SRC_STALL] = true;
		}
		snprintf(key, sizeof(key), "task.%d.run_ns", tid);
		add(c, p, SRC_RUN, a, b, key, 1e-9);
		snprintf(key, sizeof(key), "task.%d.wait_ns", tid);
		add(c, p, SRC_WAIT, a, b, key, 1e-9);
		snprintf(key, sizeof(key), "task.%d.utime", tid);
		add(c, p, SRC_UTIME_STIME, a, b, key, tick);
		snprintf(key, sizeof(key), "task.%d.stime", tid);
		add(c, p, SRC_UTIME_STIME, a, b, key, tick);
		snprintf(key, sizeof(key), "task.%d.gtime", tid);
		add(c, p, SRC_GUEST, a, b, key, tick);
		snprintf(key, sizeof(key), "kvm.vcpu%u.halt_poll_success_ns", i);
		add(c, p, SRC_HALT_POLL, a, b, key, 1e-9);
		snprintf(key, sizeof(key), "kvm.vcpu%u.halt_poll_fail_ns", i);
		add(c, p, SRC_HALT_POLL, a, b, key, 1e-9);
		if (c->pin[i] >= 0) {
			snprintf(key, sizeof(key), "stat.cpu%d.guest", c->pin[i]);
			add(c, p, SRC_HOST_GUEST, a, b, key, tick);
			snprintf(key, sizeof(key), "stat.cpu%d.guest_nice", c->pin[i]);
			add(c, p, SRC_HOST_GUEST, a, b, key, tick);
			/* Time the vCPU's clock ran on while this (virtual) host CPU did not. */
			snprintf(key, sizeof(key), "stat.cpu%d.steal", c->pin[i]);
			add(c, p, SRC_STEAL, a, b, key, tick);
		}
	}
	add(c, p, SRC_CG1_USAGE, a, b, "cg1.usage", 1e-9);
	add(c, p, SRC_CG1_STAT, a, b, "cg1.stat.user", tick);
	add(c, p, SRC_CG1_STAT, a, b, "cg1.stat.system", tick);
	add(c, p, SRC_CG1_TICKS, a, b, "cg1.usage_user", 1e-9);
	add(c, p, SRC_CG1_TICKS, a, b, "cg1.usage_sys", 1e-9);
	add(c, p, SRC_CG2_USAGE, a, b, "cg2.usage_usec", 1e-6);
}

static void sleep_until(uint64_t mono)
{
	struct timespec ts = { (time_t)(mono / 1000000000ULL), (long)(mono % 1000000000ULL) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void print_cal_table(const struct cal *c, double phase_s, const char *cgmsg)
{
	printf("Calibration: the built-in test VM, %u vCPU(s) pinned to CPU", c->nvcpus);
	for (unsigned int i = 0; i < c->nvcpus; i++)
		printf("%s%d", i ? "," : " ", c->pin[i]);
	printf("; three phases of %.1f s\n", phase_s);
	if (cgmsg && *cgmsg)
		printf("(cgroups: %s)\n", cgmsg);
	printf("\n%-40s", "SOURCE (seconds, error against truth)");
	for (unsigned int p = 0; p < NPHASES; p++)
		printf(" %22s", phase_name[p]);
	printf("\n");
	for (unsigned int s = 0; s < SRC_N; s++) {
		printf("%-40s", src_info[s].title);
		for (unsigned int p = 0; p < NPHASES; p++) {
			char cell[64];
			double v = c->val[p][s], t = c->val[p][SRC_TRUTH];

			if (!c->has[p][s])
				snprintf(cell, sizeof(cell), "-");
			else if (!src_info[s].compared)
				snprintf(cell, sizeof(cell), "%.3f", v);
			else if (t > 0.05)
				snprintf(cell, sizeof(cell), "%.3f %+6.1f%%", v,
					 100.0 * (v - t) / t);
			else
				snprintf(cell, sizeof(cell), "%.3f %+.3fs", v, v - t);
			printf(" %22s", cell);
		}
		printf("\n");
	}
	printf("\nThe truth is the time the guest spent in its busy loops by its own clock; a\n"
	       "source above it also counts the host's work for the vCPU (exits, emulation,\n"
	       "halt polling), one below it missed time or sampled it short. A guest whose vCPU\n"
	       "did not run while busy (preempted, or its host CPU taken by a hypervisor below)\n"
	       "still counts that time as busy: 'guest stalled while busy' is the part of it the\n"
	       "guest saw (its clock jumped), whatever took it; the run-queue delay and the\n"
	       "CPUs' steal are what this host's kernel saw of it.\n");
}

static void print_cal_json(const struct cal *c, double phase_s)
{
	struct vms_json j;

	vms_json_init(&j, stdout, true);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "vcpus", c->nvcpus);
	vms_json_array_begin(&j, "pinned");
	for (unsigned int i = 0; i < c->nvcpus; i++)
		vms_json_i64(&j, NULL, c->pin[i]);
	vms_json_array_end(&j);
	vms_json_double(&j, "phase_s", phase_s);
	vms_json_array_begin(&j, "phases");
	for (unsigned int p = 0; p < NPHASES; p++) {
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "duty", duty[p]);
		vms_json_object_begin(&j, "seconds");
		for (unsigned int s = 0; s < SRC_N; s++)
			if (c->has[p][s])
				vms_json_double(&j, src_info[s].key, c->val[p][s]);
		vms_json_object_end(&j);
		vms_json_array_begin(&j, "vcpu_truth");
		for (unsigned int i = 0; i < c->nvcpus; i++) {
			struct vms_testvm_vcpu_phase t;

			if (vms_testvm_vcpu_phase(c->vm, i, p, &t))
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_u64(&j, "vcpu", i);
			vms_json_i64(&j, "tid", vms_testvm_vcpu_tid(c->vm, i));
			vms_json_u64(&j, "busy_ns", t.busy_ns);
			vms_json_u64(&j, "idle_ns", t.idle_ns);
			vms_json_u64(&j, "late_ns", t.late_ns);
			vms_json_u64(&j, "stall_ns", t.stall_ns);
			vms_json_u64(&j, "wakeups", t.wakeups);
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		if (c->rep[p]) {
			vms_json_object_begin(&j, "validate");
			validate_json_report(&j, c->rep[p]);
			vms_json_object_end(&j);
		}
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	vms_json_finish(&j);
	fputc('\n', stdout);
}

int validate_calibrate(const struct validate_args *a)
{
	struct vms_testvm_phase phases[NPHASES + 1];
	struct vms_testvm_opts o = { .sz = sizeof(o) };
	struct validate_args va = *a;
	struct vms_acct_cgroup *cg = NULL;
	struct cal c = { .run_ret = 0 };
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t start = 0, end0 = 0, len;
	char cgname[64], cgmsg[256] = "";
	unsigned int fails = 0;
	pthread_t th;
	bool complete;
	int ret = 0;

	if (ncpus < 1)
		ncpus = 1;
	c.nvcpus = a->vcpus ? a->vcpus : (unsigned int)(ncpus < 4 ? ncpus : 4);
	for (unsigned int i = 0; i < c.nvcpus; i++)
		c.pin[i] = (int)(i % (unsigned int)ncpus);
	for (unsigned int p = 0; p < NPHASES; p++)
		phases[p] = (struct vms_testvm_phase){ duty[p], a->phase_ns };
	/* An idle tail keeps the vCPU threads alive for the last reading. */
	phases[NPHASES] = (struct vms_testvm_phase){ 0, 500000000ULL };
	o.vcpus = c.nvcpus;
	o.phases = phases;
	o.nphases = NPHASES + 1;
	o.pin = c.pin;
	o.start_delay_ns = 200000000ULL;

	snprintf(cgname, sizeof(cgname), "vmscope-calibrate-%d", (int)getpid());
	if (vms_acct_cgroup_enter(cgname, &cg, cgmsg, sizeof(cgmsg)) && !cgmsg[0])
		snprintf(cgmsg, sizeof(cgmsg), "no cgroup hierarchy could be entered");
	ret = vms_testvm_new(&o, &c.vm);
	if (ret) {
		vms_acct_cgroup_leave(cg);
		if (ret == -ENOENT || ret == -EACCES)
			return cli_error(CMD, "--calibrate needs read-write /dev/kvm: %s",
					 vms_testvm_last_error(NULL));
		return cli_error(CMD, "cannot create the test VM: %s", vms_testvm_last_error(NULL));
	}
	if (!a->quiet)
		fprintf(stderr,
			"vmscope validate: calibrating with the test VM: %u vCPUs, "
			"0 %%, 75 %%, 90 %% busy for %.1f s each\n",
			c.nvcpus, (double)a->phase_ns * 1e-9);
	if (pthread_create(&th, NULL, run_vm, &c)) {
		vms_testvm_free(c.vm);
		vms_acct_cgroup_leave(cg);
		return cli_error(CMD, "cannot start the test VM's thread");
	}
	/* Phase 0 is known once the vCPUs began it; it is idle, so a late first reading
	 * misses nothing. The other boundaries follow from its length. */
	for (int i = 0; i < 20000 && vms_testvm_phase_times(c.vm, 0, &start, &end0, &complete); i++)
		usleep(200);
	va.pid = (int)getpid();
	va.domain = NULL;
	len = end0 - start;
	for (unsigned int p = 0; p <= NPHASES && start && !ret; p++) {
		if (p)
			sleep_until(start + p * len);
		ret = validate_snapshot(&va, &c.snap[p]);
		if (!ret && !a->quiet && p < NPHASES)
			fprintf(stderr, "vmscope validate: phase %u of %u (%s)\n", p + 1, NPHASES,
				phase_name[p]);
	}
	if (!start) {
		vms_testvm_stop(c.vm);
		ret = cli_error(CMD, "the test VM did not start its schedule: %s",
				vms_testvm_last_error(c.vm));
	}
	pthread_join(th, NULL);
	if (!ret && c.run_ret)
		ret = cli_error(CMD, "the test VM failed: %s", vms_testvm_last_error(c.vm));
	for (unsigned int p = 0; p < NPHASES && !ret; p++) {
		char msg[256];

		phase_values(&c, p, (double)len * 1e-9);
		if (vms_acct_validate(c.snap[p], c.snap[p + 1], NULL, &c.rep[p], msg, sizeof(msg)))
			ret = cli_error(CMD, "phase %u: %s", p, msg);
		else
			fails += c.rep[p]->fails;
	}
	if (!ret) {
		if (a->format == CLI_FORMAT_JSON) {
			print_cal_json(&c, (double)len * 1e-9);
		} else {
			print_cal_table(&c, (double)len * 1e-9, cgmsg);
			for (unsigned int p = 0; p < NPHASES; p++) {
				printf("\nChecks, %s:\n", phase_name[p]);
				validate_print_checks(c.rep[p], true);
			}
		}
		ret = fails ? VALIDATE_EXIT_CHECK_FAILED : 0;
	}
	for (unsigned int p = 0; p <= NPHASES; p++)
		vms_acct_free(c.snap[p]);
	for (unsigned int p = 0; p < NPHASES; p++)
		vms_acct_report_free(c.rep[p]);
	vms_testvm_free(c.vm);
	vms_acct_cgroup_leave(cg);
	return ret;
}
