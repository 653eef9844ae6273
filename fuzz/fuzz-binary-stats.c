// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the KVM binary stats parser (lib/stats/binary-stats.c). Each input
 * is a whole stats file handed to vms_stats_open_buf(). When the parser accepts it, every
 * accessor is exercised and the promises of include/vmscope/stats.h are checked: indexes in
 * range, names that find themselves, values inside the copy, a re-read that succeeds, and
 * bucket ranges that are ordered and contiguous. A broken promise aborts, so the fuzzer
 * reports logic errors as well as memory errors. Linked with replay.c it is the
 * 'fuzz' test suite that replays fuzz/corpus/binary-stats/.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/stats.h"
#include "fuzz.h"

/* Keep the optimiser from dropping reads whose only purpose is to be checked by ASan. */
static volatile uint64_t sink;
static volatile double dsink; /* a double sink: converting a huge double to u64 is UB */

static void check_hist(const struct vms_stat_desc *d)
{
	double prev_hi = 0;

	for (uint32_t b = 0; b < d->size; b++) {
		double lo = NAN, hi = NAN;

		CHECK(vms_stat_bucket_range(d, b, &lo, &hi) == 0);
		/*
		 * Ordered and contiguous, until the bounds leave the range of a double (a
		 * log histogram's 2^(n-1) does past n ~ 1024): then both are +inf.
		 */
		CHECK(lo >= 0 && (hi > lo || (isinf(lo) && isinf(hi))));
		if (b)
			CHECK(lo == prev_hi || isinf(prev_hi));
		if (b == d->size - 1)
			CHECK(isinf(hi) && hi > 0);
		prev_hi = hi;
	}
	CHECK(vms_stat_bucket_range(d, d->size, NULL, NULL) == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_stats *st = NULL;
	const char *id;
	size_t n;
	int ret;

	ret = vms_stats_open_buf(data, size, &st);
	if (ret) {
		CHECK(!st);
		CHECK(ret == -VMS_E_STATS_HEADER || ret == -VMS_E_STATS_ID ||
		      ret == -VMS_E_STATS_OVERLAP || ret == -VMS_E_STATS_DESC ||
		      ret == -VMS_E_STATS_SHORT);
		CHECK(vms_stats_last_error()[0] != '\0');
		CHECK(vms_strerror(ret)[0] != '\0');
		return 0;
	}
	CHECK(st);
	id = vms_stats_id(st);
	CHECK(id && !strncmp(id, "kvm", 3));
	n = vms_stats_count(st);
	CHECK(n <= 65536);

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct vms_stat_desc *d = vms_stats_desc(st, i);
			const uint64_t *v = vms_stats_values(st, i);
			uint64_t val = 0;
			int idx;

			CHECK(d && v && d->name && d->name[0]);
			CHECK(d->size >= 1 && d->offset % 8 == 0);
			CHECK(d->base == 2 || d->base == 10);
			CHECK((unsigned int)d->type <= VMS_STAT_LOG_HIST);
			CHECK((unsigned int)d->unit <= VMS_UNIT_BOOLEAN);
			CHECK(isnormal(d->scale));
			CHECK(strcmp(vms_stat_type_name(d->type), "unknown"));
			CHECK(strcmp(vms_stat_unit_name(d->unit), "unknown"));
			for (uint32_t k = 0; k < d->size; k++)
				sink += v[k];
			CHECK(vms_stats_value(st, i) == v[0]);
			idx = vms_stats_find(st, d->name);
			CHECK(idx >= 0 && (size_t)idx <= i);
			CHECK(vms_stats_value_by_name(st, d->name, &val) == 0);
			CHECK(val == vms_stats_value(st, (size_t)idx));
			dsink += vms_stat_in_units(d, v[0]);
			if (d->type == VMS_STAT_LINEAR_HIST || d->type == VMS_STAT_LOG_HIST) {
				CHECK(d->type != VMS_STAT_LINEAR_HIST || d->bucket_size);
				check_hist(d);
			} else {
				CHECK(!d->bucket_size);
				CHECK(vms_stat_bucket_range(d, 0, NULL, NULL) == -EINVAL);
			}
		}
		CHECK(!vms_stats_desc(st, n));
		CHECK(!vms_stats_values(st, n));
		CHECK(vms_stats_value(st, n) == 0);
		/* Re-reading the data block of a private copy cannot fail. */
		CHECK(vms_stats_read(st) == 0);
	}
	vms_stats_free(st);
	return 0;
}
