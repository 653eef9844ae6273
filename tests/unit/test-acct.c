// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the accounting layer (lib/acct/): the snapshot's text form and its parser,
 * and the checks of vmscope validate on snapshots built from scenarios whose truth the
 * test defines: a CPU-bound two-vCPU guest on a kernel before 5.16 (cpuacct.stat leaves
 * guest time out: seed 000) and after it, run-queue delay, halt polling, libvirt's wait
 * without schedstats, a cgroup shared with another process, snapshots of two processes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmscope/acct.h"

#define S 1000000000ULL /* ns per s */

static void set(struct vms_acct *a, const char *key, uint64_t v)
{
	assert_int_equal(vms_acct_set(a, key, v), 0);
}

static const struct vms_check *find_check(const struct vms_acct_report *r, const char *id)
{
	for (size_t i = 0; i < r->nchecks; i++)
		if (!strcmp(r->checks[i].id, id))
			return &r->checks[i];
	fail_msg("no check %s", id);
	return NULL;
}

/* ---- the text form ---- */

static void test_roundtrip(void **state)
{
	struct vms_acct *a = vms_acct_new(), *b = NULL;
	char *buf = NULL, msg[128];
	size_t len = 0;
	uint64_t v;
	FILE *f;

	(void)state;
	set(a, "task.12.utime", 123);
	set(a, "cg1.usage", UINT64_MAX);
	assert_int_equal(vms_acct_set_str(a, "meta.name", "a \"quoted\" \\ name\nsecond"), 0);
	assert_int_equal(vms_acct_set(a, "bad key", 1), -EINVAL);
	assert_int_equal(vms_acct_set(a, "", 1), -EINVAL);
	f = open_memstream(&buf, &len);
	assert_int_equal(vms_acct_write(a, f), 0);
	fclose(f);
	assert_int_equal(vms_acct_parse(buf, len, &b, msg, sizeof(msg)), 0);
	assert_int_equal(vms_acct_count(b), 3);
	assert_int_equal(vms_acct_get(b, "task.12.utime", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(vms_acct_get(b, "cg1.usage", &v), 0);
	assert_true(v == UINT64_MAX);
	/* The newline became a space: a text is one line. */
	assert_string_equal(vms_acct_str(b, "meta.name"), "a \"quoted\" \\ name second");
	assert_int_equal(vms_acct_get(b, "meta.name", &v), -ENOENT);
	assert_null(vms_acct_str(b, "cg1.usage"));
	free(buf);
	vms_acct_free(a);
	vms_acct_free(b);
}

static void test_delta(void **state)
{
	struct vms_acct *a = vms_acct_new(), *b = vms_acct_new();
	uint64_t d = 7;

	(void)state;
	set(a, "x", 10);
	set(b, "x", 25);
	set(a, "back", 5);
	set(b, "back", 4);
	set(a, "only.a", 1);
	vms_acct_set_str(a, "t", "text");
	vms_acct_set_str(b, "t", "text");
	assert_int_equal(vms_acct_delta(a, b, "x", &d), 0);
	assert_int_equal(d, 15);
	assert_int_equal(vms_acct_delta(a, b, "back", &d), -ERANGE);
	assert_int_equal(vms_acct_delta(a, b, "only.a", &d), -ENOENT);
	assert_int_equal(vms_acct_delta(a, b, "t", &d), -ENOENT);
	assert_int_equal(d, 15);
	vms_acct_free(a);
	vms_acct_free(b);
}

static void expect_parse_error(const char *text, const char *line)
{
	struct vms_acct *a = (struct vms_acct *)1;
	char msg[128];

	assert_int_equal(vms_acct_parse(text, strlen(text), &a, msg, sizeof(msg)), -VMS_E_PARSE);
	assert_null(a);
	if (!strstr(msg, line))
		fail_msg("parsing \"%s\": message \"%s\" does not name %s", text, msg, line);
}

static void test_parse_errors(void **state)
{
	static const char nul[] = "vmscope-acct 1\nx 1\0\n";
	struct vms_acct *a;
	char msg[128];

	(void)state;
	expect_parse_error("", "line 0");
	expect_parse_error("hello 1\n", "line 1");
	expect_parse_error("vmscope-acct 2\n", "line 1");
	expect_parse_error("vmscope-acct 1\nx\n", "line 2");
	expect_parse_error("vmscope-acct 1\nx -1\n", "line 2");
	expect_parse_error("vmscope-acct 1\nx 99999999999999999999999\n", "line 2");
	expect_parse_error("vmscope-acct 1\nx 1\nx 2\n", "line 3");
	expect_parse_error("vmscope-acct 1\n# c\nx \"open\n", "line 3");
	expect_parse_error("vmscope-acct 1\nx \"a\\nb\"\n", "line 2");
	expect_parse_error("vmscope-acct 1\nk*y 1\n", "line 2");
	assert_int_equal(vms_acct_parse(nul, sizeof(nul) - 1, &a, msg, sizeof(msg)), -VMS_E_PARSE);
	/* Comments, blank lines and CRLF are fine. */
	{
		static const char crlf[] = "# x\r\n\r\nvmscope-acct 1\r\nk 5\r\n";
		uint64_t v = 0;

		assert_int_equal(vms_acct_parse(crlf, strlen(crlf), &a, msg, sizeof(msg)), 0);
		assert_int_equal(vms_acct_get(a, "k", &v), 0);
		assert_int_equal(v, 5);
	}
	vms_acct_free(a);
}

/* ---- the checks ---- */

/*
 * Two snapshots 10 s apart of a VM whose two vCPU threads (tids 11, 12) each ran 5 s, all
 * of it in guest mode, in a cgroup of their own; USER_HZ 100, HZ 250. @guest_in_stat: the
 * cgroup's cpuacct.stat user includes guest time (kernel 5.16 and later).
 */
static void scenario(struct vms_acct **pa, struct vms_acct **pb, const char *kernel,
		     bool guest_in_stat)
{
	struct vms_acct *s[2] = { vms_acct_new(), vms_acct_new() };

	for (int i = 0; i < 2; i++) {
		uint64_t k = (uint64_t)i; /* 0: start, 1: end */

		set(s[i], "meta.pid", 10);
		set(s[i], "meta.starttime", 777);
		set(s[i], "meta.user_hz", 100);
		set(s[i], "meta.config.hz", 250);
		set(s[i], "meta.config.schedstats", 0);
		set(s[i], "meta.ncpus", 2);
		set(s[i], "meta.read_ns", 100000);
		set(s[i], "proc.threads", 2);
		set(s[i], "meta.mono_ns", 1000 * S + k * 10 * S);
		vms_acct_set_str(s[i], "meta.kernel", kernel);
		vms_acct_set_str(s[i], "meta.name", "vm1");
		for (int t = 11; t <= 12; t++) {
			char key[64];

			snprintf(key, sizeof(key), "task.%d.vcpu", t);
			set(s[i], key, (uint64_t)(t - 11));
			snprintf(key, sizeof(key), "task.%d.run_ns", t);
			set(s[i], key, 100 * S + k * 5 * S);
			snprintf(key, sizeof(key), "task.%d.wait_ns", t);
			set(s[i], key, 1 * S + k * S / 100);
			snprintf(key, sizeof(key), "task.%d.utime", t);
			set(s[i], key, 10000 + k * 500);
			snprintf(key, sizeof(key), "task.%d.stime", t);
			set(s[i], key, 40);
			snprintf(key, sizeof(key), "task.%d.gtime", t);
			set(s[i], key, 9000 + k * 500);
		}
		set(s[i], "cg1.usage", 200 * S + k * 10 * S);
		set(s[i], "cg1.usage_user", 190 * S + k * 10 * S);
		set(s[i], "cg1.usage_sys", 10 * S);
		set(s[i], "cg1.percpu.0", 100 * S + k * 5 * S);
		set(s[i], "cg1.percpu.1", 100 * S + k * 5 * S);
		set(s[i], "cg1.other_procs", 0);
		/* Before 5.16 the cgroup's user time missed the guest time entirely. */
		set(s[i], "cg1.stat.user", 500 + (guest_in_stat ? k * 1000 : 0));
		set(s[i], "cg1.stat.system", 80);
		for (int c = 0; c < 2; c++) {
			char key[64];

			snprintf(key, sizeof(key), "stat.cpu%d.guest", c);
			set(s[i], key, 20000 + k * 500);
			snprintf(key, sizeof(key), "stat.cpu%d.guest_nice", c);
			set(s[i], key, 0);
			snprintf(key, sizeof(key), "stat.cpu%d.user", c);
			set(s[i], key, 30000 + k * 520);
		}
	}
	*pa = s[0];
	*pb = s[1];
}

static struct vms_acct_report *run(struct vms_acct *a, struct vms_acct *b)
{
	struct vms_acct_report *r = NULL;
	char msg[128];

	assert_int_equal(vms_acct_validate(a, b, NULL, &r, msg, sizeof(msg)), 0);
	assert_non_null(r);
	assert_true(r->interval_s > 9.999 && r->interval_s < 10.001);
	return r;
}

static void test_seed000_old_kernel(void **state)
{
	struct vms_acct *a, *b;
	struct vms_acct_report *r;
	const struct vms_check *k;

	(void)state;
	scenario(&a, &b, "5.10.0-28-amd64", false);
	r = run(a, b);
	k = find_check(r, "cg1-stat-vs-usage");
	assert_int_equal(k->status, VMS_CHECK_FAIL);
	assert_true(k->lhs_s < 0.001 && k->rhs_s > 9.999);
	assert_non_null(strstr(k->explain, "seed 000"));
	assert_non_null(strstr(k->explain, "9731698ecb9c"));
	assert_int_equal(find_check(r, "cg1-user-has-guest")->status, VMS_CHECK_FAIL);
	/* The exact sources still agree with each other. */
	assert_int_equal(find_check(r, "cg1-usage-vs-threads")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "cg1-percpu-sum")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "cg1-ticks-vs-usage")->status, VMS_CHECK_PASS);
	assert_true(r->fails >= 2);
	vms_acct_report_free(r);
	vms_acct_free(a);
	vms_acct_free(b);
}

static void test_new_kernel(void **state)
{
	struct vms_acct *a, *b;
	struct vms_acct_report *r;
	const struct vms_check *k;

	(void)state;
	scenario(&a, &b, "6.1.0-13-amd64", true);
	r = run(a, b);
	k = find_check(r, "cg1-stat-vs-usage");
	assert_int_equal(k->status, VMS_CHECK_PASS);
	assert_non_null(strstr(k->explain, "8c92606ab810"));
	assert_int_equal(find_check(r, "cg1-user-has-guest")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "vcpu0-utime-stime-vs-run")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "vcpu1-guest-in-user")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "host-guest-covers-vm")->status, VMS_CHECK_PASS);
	/* 10 ms of run-queue delay in 10 s is worth knowing, not a warning. */
	assert_int_equal(find_check(r, "vcpu0-runqueue-delay")->status, VMS_CHECK_INFO);
	assert_int_equal(r->fails, 0);
	assert_int_equal(r->warns, 0);
	vms_acct_report_free(r);
	vms_acct_free(a);
	vms_acct_free(b);
}

static void test_delay_polling_libvirt(void **state)
{
	struct vms_acct *a, *b;
	struct vms_acct_report *r;

	(void)state;
	scenario(&a, &b, "6.1.0", true);
	/* vCPU 1 waited 2 s of the 10 s for a CPU. */
	set(b, "task.12.wait_ns", 3 * S);
	/* vCPU 0 polled 1 s of its 5 s. */
	set(a, "kvm.vcpu0.halt_poll_success_ns", 0);
	set(a, "kvm.vcpu0.halt_poll_fail_ns", 0);
	set(b, "kvm.vcpu0.halt_poll_success_ns", S / 2);
	set(b, "kvm.vcpu0.halt_poll_fail_ns", S / 2);
	/* libvirt: cpu_time is the cgroup's usage; wait stays 0 without schedstats. */
	set(a, "libvirt.cpu_time", 200 * S);
	set(b, "libvirt.cpu_time", 210 * S);
	set(a, "libvirt.vcpu.0.wait", 0);
	set(b, "libvirt.vcpu.0.wait", 0);
	set(a, "libvirt.vcpu.0.delay", 1 * S);
	set(b, "libvirt.vcpu.0.delay", 1 * S + S / 100);
	/* vcpuinfo: host CPU 1, where the thread is not (a made-up mismatch). */
	set(b, "libvirt.state", 1);
	set(b, "libvirt.vcpu.0.host_cpu", 1);
	set(b, "task.11.cpu", 0);
	r = run(a, b);
	/* Field by field at the second snapshot: cpu_time is cpuacct.usage, the delay is
	 * schedstat's, the host CPU differs. */
	assert_int_equal(r->npairs, 3);
	assert_string_equal(r->pairs[0].libvirt, "cpu-stats cpu_time");
	assert_true(r->pairs[0].match && r->pairs[0].source_v == 210.0);
	assert_string_equal(r->pairs[1].libvirt, "domstats vcpu.0.delay");
	assert_true(r->pairs[1].match);
	assert_string_equal(r->pairs[2].libvirt, "vcpuinfo vCPU 0 CPU");
	assert_false(r->pairs[2].match);
	assert_int_equal(find_check(r, "vcpu1-runqueue-delay")->status, VMS_CHECK_WARN);
	assert_non_null(strstr(find_check(r, "vcpu1-runqueue-delay")->explain, "guest cannot"));
	assert_int_equal(find_check(r, "vcpu0-halt-polling")->status, VMS_CHECK_WARN);
	assert_int_equal(find_check(r, "libvirt-cpu_time")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "libvirt-vcpu0-delay")->status, VMS_CHECK_PASS);
	assert_int_equal(find_check(r, "libvirt-vcpu0-wait")->status, VMS_CHECK_WARN);
	assert_non_null(strstr(find_check(r, "libvirt-vcpu0-wait")->explain, "CONFIG_SCHEDSTATS"));
	vms_acct_report_free(r);
	vms_acct_free(a);
	vms_acct_free(b);
}

static void test_shared_cgroup_and_missing(void **state)
{
	struct vms_acct *a, *b;
	struct vms_acct_report *r;

	(void)state;
	scenario(&a, &b, "6.1.0", true);
	set(b, "cg1.other_procs", 3);
	vms_acct_set_str(b, "err.kvm", "no stats descriptors");
	/* Without KVM's per-vCPU statistics, libvirt's domain-wide haltpoll figures are
	 * used: 1 s of polling in the vCPUs' 10 s of run time. */
	set(a, "libvirt.ds.haltpoll_success", 0);
	set(a, "libvirt.ds.haltpoll_fail", 0);
	set(b, "libvirt.ds.haltpoll_success", S / 4);
	set(b, "libvirt.ds.haltpoll_fail", 3 * S / 4);
	r = run(a, b);
	assert_int_equal(find_check(r, "halt-polling")->status, VMS_CHECK_WARN);
	assert_true(find_check(r, "halt-polling")->lhs_s > 0.999 &&
		    find_check(r, "halt-polling")->lhs_s < 1.001);
	assert_int_equal(find_check(r, "cg1-usage-vs-threads")->status, VMS_CHECK_SKIP);
	assert_int_equal(find_check(r, "source-kvm")->status, VMS_CHECK_SKIP);
	assert_string_equal(find_check(r, "source-kvm")->explain, "no stats descriptors");
	vms_acct_report_free(r);
	vms_acct_free(a);
	vms_acct_free(b);
}

/*
 * A trace of the same interval: each vCPU thread on a CPU 5 s by schedstat. The trace's
 * clock also runs while a hypervisor under the host holds the CPU (steal), which the
 * scheduler's run time leaves out: the trace may count up to the CPUs' steal more, never
 * less, and never more than that.
 */
static const struct vms_check *trace_check(uint64_t steal_ticks, uint64_t trace_run_ns,
					   struct vms_acct_report **pr)
{
	struct vms_acct *a, *b, *t = vms_acct_new();
	char msg[128];

	scenario(&a, &b, "6.1.0-13-amd64", true);
	set(a, "stat.cpu0.steal", 1000);
	set(a, "stat.cpu1.steal", 2000);
	set(b, "stat.cpu0.steal", 1000 + steal_ticks / 2);
	set(b, "stat.cpu1.steal", 2000 + steal_ticks - steal_ticks / 2);
	set(t, "trace.covered_ns", 10 * S);
	for (int tid = 11; tid <= 12; tid++) {
		char key[64];

		snprintf(key, sizeof(key), "trace.task.%d.run_ns", tid);
		set(t, key, tid == 11 ? trace_run_ns : 5 * S);
		snprintf(key, sizeof(key), "trace.task.%d.wait_ns", tid);
		set(t, key, S / 100);
	}
	assert_int_equal(vms_acct_validate(a, b, t, pr, msg, sizeof(msg)), 0);
	vms_acct_free(a);
	vms_acct_free(b);
	vms_acct_free(t);
	assert_int_equal(find_check(*pr, "trace-vcpu1-run")->status, VMS_CHECK_PASS);
	return find_check(*pr, "trace-vcpu0-run");
}

static void test_trace_and_steal(void **state)
{
	struct vms_acct_report *r;
	const struct vms_check *k;

	(void)state;
	/* No steal: 5.3 s by the trace against 5 s is lost events or another interval. */
	k = trace_check(0, 5300 * (S / 1000), &r);
	assert_int_equal(k->status, VMS_CHECK_FAIL);
	vms_acct_report_free(r);
	/* 0.4 s of steal (40 USER_HZ ticks) on the CPUs covers the 0.3 s, and says so. */
	k = trace_check(40, 5300 * (S / 1000), &r);
	assert_int_equal(k->status, VMS_CHECK_PASS);
	assert_non_null(strstr(k->explain, "steal"));
	vms_acct_report_free(r);
	/* Steal never explains a trace that counts less than the scheduler. */
	k = trace_check(40, 4700 * (S / 1000), &r);
	assert_int_equal(k->status, VMS_CHECK_FAIL);
	vms_acct_report_free(r);
	/* Nor more than the steal. */
	k = trace_check(20, 5300 * (S / 1000), &r);
	assert_int_equal(k->status, VMS_CHECK_FAIL);
	vms_acct_report_free(r);
}

static void test_mismatched_snapshots(void **state)
{
	struct vms_acct *a, *b;
	struct vms_acct_report *r = NULL;
	char msg[128];

	(void)state;
	scenario(&a, &b, "6.1.0", true);
	/* Swapped: the second is earlier. */
	assert_int_equal(vms_acct_validate(b, a, NULL, &r, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "later"));
	/* Another process. */
	set(b, "meta.pid", 11);
	assert_int_equal(vms_acct_validate(a, b, NULL, &r, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "same VM"));
	assert_null(r);
	vms_acct_free(a);
	vms_acct_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_seed000_old_kernel),
		cmocka_unit_test(test_new_kernel),
		cmocka_unit_test(test_delay_polling_libvirt),
		cmocka_unit_test(test_shared_cgroup_and_missing),
		cmocka_unit_test(test_mismatched_snapshots),
		cmocka_unit_test(test_trace_and_steal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
