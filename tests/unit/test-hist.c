// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the latency histogram (lib/analysis/hist.c, vmscope/hist.h). Expected
 * percentiles are worked out here from the values added (nearest rank over a sorted copy),
 * and every bucket is checked to hold its values within the stated precision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmscope/hist.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A latency-like value: spread over 1 ns .. about 70 s, most of them small. */
static uint64_t sample(void)
{
	unsigned int bits = (unsigned int)(next_rand() % 37);

	return next_rand() & ((1ULL << bits) - 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bucket_holds_its_values(void **state)
{
	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = i < 1000 ? (uint64_t)i : sample(), lo, hi;

		vms_hist_bucket(v, &lo, &hi);
		assert_true(lo <= v && v < hi);
		if (v < VMS_HIST_SUB)
			assert_int_equal(hi - lo, 1); /* exact below 256 */
		else
			assert_true((hi - lo) * VMS_HIST_SUB <= lo); /* width <= 1/256 of it */
	}
	/* the top of the range has a bucket too */
	{
		uint64_t lo, hi;

		vms_hist_bucket(UINT64_MAX, &lo, &hi);
		assert_true(lo <= UINT64_MAX && hi == UINT64_MAX);
	}
}

/* vms_hist_add(), vms_hist_add_fast() and vms_hist_counter() make the same histogram, and
 * its percentiles are those of the values within a bucket's precision. */
static void three_ways_same_percentiles(void **state)
{
	enum { N = 50000 };
	struct vms_hist a = { 0 }, b = { 0 }, c = { 0 };
	uint64_t *v = malloc(N * sizeof(*v)), min = UINT64_MAX, max = 0;
	static const double ps[] = { 1, 25, 50, 90, 95, 99, 99.9, 100 };

	(void)state;
	assert_non_null(v);
	for (int i = 0; i < N; i++) {
		uint32_t *counter;

		v[i] = sample();
		assert_int_equal(vms_hist_add(&a, v[i]), 0);
		assert_int_equal(vms_hist_add_fast(&b, v[i]), 0);
		counter = vms_hist_counter(&c, v[i]);
		assert_non_null(counter);
		(*counter)++;
		min = v[i] < min ? v[i] : min;
		max = v[i] > max ? v[i] : max;
	}
	c.count = N;
	c.min = min;
	c.max = max;
	assert_int_equal(a.count, N);
	assert_int_equal(a.min, min);
	assert_int_equal(a.max, max);
	assert_int_equal(b.count, N);
	qsort(v, N, sizeof(*v), cmp_u64);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		uint64_t pa = vms_hist_percentile(&a, ps[k]), want, lo, hi;
		size_t rank = (size_t)(ps[k] / 100.0 * N + 0.999999);

		assert_int_equal(pa, vms_hist_percentile(&b, ps[k]));
		assert_int_equal(pa, vms_hist_percentile(&c, ps[k]));
		want = v[(rank ? rank : 1) - 1];
		vms_hist_bucket(want, &lo, &hi);
		assert_true(pa >= lo && pa < hi); /* the value's own bucket */
	}
	assert_int_equal(vms_hist_percentile(&a, 100), max);
	assert_int_equal(vms_hist_percentile(&a, 0), min);
	vms_hist_free(&a);
	vms_hist_free(&b);
	vms_hist_free(&c);
	free(v);
}

static void merge_adds_counts(void **state)
{
	struct vms_hist a = { 0 }, b = { 0 }, all = { 0 };

	(void)state;
	for (int i = 0; i < 20000; i++) {
		uint64_t x = sample();

		assert_int_equal(vms_hist_add(i % 3 ? &a : &b, x), 0);
		assert_int_equal(vms_hist_add(&all, x), 0);
	}
	assert_int_equal(vms_hist_merge(&a, &b), 0);
	assert_int_equal(a.count, all.count);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	for (double p = 0.5; p <= 100; p += 0.5)
		assert_int_equal(vms_hist_percentile(&a, p), vms_hist_percentile(&all, p));
	vms_hist_free(&a);
	vms_hist_free(&b);
	vms_hist_free(&all);
}

static void count_below_powers_of_two(void **state)
{
	struct vms_hist h = { 0 };
	uint64_t below[40] = { 0 };

	(void)state;
	for (int i = 0; i < 30000; i++) {
		uint64_t x = sample();

		assert_int_equal(vms_hist_add(&h, x), 0);
		for (int k = 0; k < 40; k++)
			below[k] += x < (1ULL << k);
	}
	for (int k = 0; k < 40; k++)
		assert_int_equal(vms_hist_count_below(&h, 1ULL << k), below[k]);
	vms_hist_free(&h);
}

static void empty_is_zero(void **state)
{
	struct vms_hist h = { 0 };

	(void)state;
	assert_int_equal(vms_hist_percentile(&h, 50), 0);
	assert_int_equal(vms_hist_add(&h, 7), 0);
	assert_int_equal(vms_hist_percentile(&h, 50), 7);
	vms_hist_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_holds_its_values),
		cmocka_unit_test(three_ways_same_percentiles),
		cmocka_unit_test(merge_adds_counts),
		cmocka_unit_test(count_below_powers_of_two),
		cmocka_unit_test(empty_is_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
