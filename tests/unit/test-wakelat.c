// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wakeup-latency state machine, fed by hand: latencies go to the bucket whose bound
 * is the first at or above them, a wakeup before the thread left its CPU is void, lost
 * events void every pending wakeup, untimed threads are ignored, and a new thread list
 * keeps the histograms of the threads it keeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmscope/wakelat.h"

static struct vms_wakelat *fed(unsigned int max_threads)
{
	struct vms_wakelat_opts o = { .sz = sizeof(o),
				      .max_threads = max_threads,
				      .no_trace = true };
	struct vms_wakelat *w;
	char msg[64];

	assert_int_equal(vms_wakelat_new(&o, &w, msg, sizeof(msg)), 0);
	return w;
}

static void test_buckets(void **state)
{
	/* (latency, its bucket): on a bound is inside it, past the last is +Inf */
	static const uint64_t lat[][2] = { { 0, 0 },	       { 999, 0 },
					   { 1000, 0 },	       { 1001, 1 },
					   { 2000, 1 },	       { 4999, 2 },
					   { 1000000, 9 },     { 1000000000, 18 },
					   { 1000000001, 19 }, { 7000000000, 19 } };
	const int tids[] = { 100 };
	struct vms_wakelat *w = fed(0);
	struct vms_wakelat_hist h;
	uint64_t t = 5000000000ULL, sum = 0;

	(void)state;
	assert_int_equal(vms_wakelat_set_threads(w, tids, 1), 0);
	for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
		vms_wakelat_feed_switch(w, 100, 1, t); /* it leaves its CPU */
		vms_wakelat_feed_wakeup(w, 100, t + 10);
		vms_wakelat_feed_switch(w, 1, 100, t + 10 + lat[i][0]);
		sum += lat[i][0];
		t += 10000000000ULL;
	}
	assert_int_equal(vms_wakelat_read(w, 100, &h), 0);
	assert_int_equal(h.count, sizeof(lat) / sizeof(lat[0]));
	assert_int_equal(h.sum_ns, sum);
	assert_int_equal(h.max_ns, 7000000000ULL);
	for (unsigned int b = 0; b < VMS_WAKELAT_BUCKETS; b++) {
		uint64_t want = 0;

		for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++)
			want += lat[i][1] == b;
		assert_int_equal(h.bucket[b], want);
	}
	vms_wakelat_free(w);
}

static void test_void_wakeups(void **state)
{
	const int tids[] = { 100, 200 };
	struct vms_wakelat *w = fed(0);
	struct vms_wakelat_hist h;

	(void)state;
	assert_int_equal(vms_wakelat_set_threads(w, tids, 2), 0);
	/* Woken while still on its CPU, then it leaves and comes back preempted: no wakeup. */
	vms_wakelat_feed_switch(w, 7, 100, 500);
	vms_wakelat_feed_wakeup(w, 100, 1000);
	vms_wakelat_feed_switch(w, 100, 7, 2000);
	vms_wakelat_feed_switch(w, 7, 100, 50000);
	/* A switch-in with no wakeup before it (a preempted thread back): nothing. */
	vms_wakelat_feed_switch(w, 100, 7, 60000);
	vms_wakelat_feed_switch(w, 7, 100, 70000);
	/* Lost events between wakeup and switch-in: not timed. */
	vms_wakelat_feed_switch(w, 100, 7, 80000);
	vms_wakelat_feed_wakeup(w, 100, 90000);
	vms_wakelat_feed_lost(w, 3);
	vms_wakelat_feed_switch(w, 7, 100, 95000);
	assert_int_equal(vms_wakelat_read(w, 100, &h), 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.untimed, 0);
	assert_int_equal(vms_wakelat_lost(w), 3);
	/* Woken off its CPU, switched out again with no switch in traced: untimed. */
	vms_wakelat_feed_switch(w, 100, 7, 96000);
	vms_wakelat_feed_wakeup(w, 100, 97000);
	vms_wakelat_feed_switch(w, 100, 0, 99000);
	assert_int_equal(vms_wakelat_read(w, 100, &h), 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.untimed, 1);
	vms_wakelat_feed_lost(w, 0); /* unknown: at least one */
	assert_int_equal(vms_wakelat_lost(w), 4);
	/* Threads not timed are ignored; 200 is timed from its wakeup. */
	vms_wakelat_feed_wakeup(w, 300, 100000);
	vms_wakelat_feed_switch(w, 7, 300, 100500);
	vms_wakelat_feed_wakeup(w, 200, 100000);
	vms_wakelat_feed_switch(w, 300, 200, 103000);
	assert_int_equal(vms_wakelat_read(w, 300, &h), -ENOENT);
	assert_int_equal(vms_wakelat_read(w, 200, &h), 0);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.sum_ns, 3000);
	assert_int_equal(h.bucket[2], 1);
	vms_wakelat_free(w);
}

static void test_thread_list(void **state)
{
	const int a[] = { 100, 200, 100 }, b[] = { 200, 300 }, many[] = { 1, 2, 3, 4, 5 };
	struct vms_wakelat *w = fed(4);
	struct vms_wakelat_hist h;

	(void)state;
	assert_int_equal(vms_wakelat_set_threads(w, a, 3), 0); /* a duplicate is one thread */
	vms_wakelat_feed_wakeup(w, 100, 10);
	vms_wakelat_feed_switch(w, 1, 100, 20);
	vms_wakelat_feed_wakeup(w, 200, 10);
	vms_wakelat_feed_switch(w, 1, 200, 40);
	assert_int_equal(vms_wakelat_set_threads(w, b, 2), 0);
	assert_int_equal(vms_wakelat_read(w, 100, &h), -ENOENT); /* forgotten */
	assert_int_equal(vms_wakelat_read(w, 200, &h), 0);	 /* kept */
	assert_int_equal(h.count, 1);
	assert_int_equal(h.sum_ns, 30);
	assert_int_equal(vms_wakelat_read(w, 300, &h), 0); /* new, empty */
	assert_int_equal(h.count, 0);
	/* More than max_threads: the first four are timed. */
	assert_int_equal(vms_wakelat_set_threads(w, many, 5), -ENOSPC);
	assert_int_equal(vms_wakelat_read(w, 4, &h), 0);
	assert_int_equal(vms_wakelat_read(w, 5, &h), -ENOENT);
	assert_int_equal(vms_wakelat_set_threads(w, NULL, 0), 0);
	assert_int_equal(vms_wakelat_read(w, 1, &h), -ENOENT);
	vms_wakelat_free(w);
	vms_wakelat_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_void_wakeups),
		cmocka_unit_test(test_thread_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
