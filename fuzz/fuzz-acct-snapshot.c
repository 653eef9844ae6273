// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the accounting snapshot parser (lib/acct/snapshot.c): a snapshot
 * file handed to vmscope validate --compare may come from anywhere. When the parser
 * accepts an input, its promises are checked: the written form parses back to the same
 * entries, and the checks of vms_acct_validate() run over the snapshot and a copy taken
 * one second later without crashing, whatever the counters hold (they may go backwards,
 * overflow, or name threads and CPUs that make no sense). A broken promise aborts. Linked
 * with replay.c it is the 'fuzz' test that replays fuzz/corpus/acct-snapshot/.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/acct.h"
#include "fuzz.h"

static volatile double sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_acct *a = NULL, *b = NULL;
	struct vms_acct_report *r = NULL;
	char msg[256], *buf = NULL;
	size_t len = 0;
	uint64_t mono = 0;
	FILE *f;

	if (vms_acct_parse((const char *)data, size, &a, msg, sizeof(msg)))
		return 0;
	f = open_memstream(&buf, &len);
	CHECK(f && vms_acct_write(a, f) == 0);
	fclose(f);
	CHECK(vms_acct_parse(buf, len, &b, msg, sizeof(msg)) == 0);
	CHECK(vms_acct_count(a) == vms_acct_count(b));
	for (size_t i = 0; i < vms_acct_count(a); i++) {
		const char *k = vms_acct_key(a, i), *s = vms_acct_str(a, k);
		uint64_t x, y;

		CHECK(!strcmp(k, vms_acct_key(b, i)));
		if (s)
			CHECK(vms_acct_str(b, k) && !strcmp(s, vms_acct_str(b, k)));
		else
			CHECK(!vms_acct_get(a, k, &x) && !vms_acct_get(b, k, &y) && x == y);
	}
	/* The checks, over one second, with the same counters as the end. */
	vms_acct_get(a, "meta.mono_ns", &mono);
	if (mono < UINT64_MAX - 1000000000ULL &&
	    vms_acct_set(b, "meta.mono_ns", mono + 1000000000ULL) == 0 &&
	    vms_acct_validate(a, b, a, &r, msg, sizeof(msg)) == 0) {
		for (size_t i = 0; i < r->nchecks; i++)
			sink = r->checks[i].lhs_s + r->checks[i].rhs_s + r->checks[i].tol_s;
		for (size_t i = 0; i < r->nrows; i++)
			sink = r->rows[i].value_s;
		CHECK(r->fails + r->warns <= r->nchecks);
	}
	vms_acct_report_free(r);
	vms_acct_free(a);
	vms_acct_free(b);
	free(buf);
	return 0;
}
