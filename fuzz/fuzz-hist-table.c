// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the hist trigger table parser (vms_hist_parse(), lib/stats/
 * keycount.c): the text comes from a kernel file, but a kernel of another version may
 * print it otherwise, and nothing in it may make vmscope read or write out of bounds.
 * Promises checked: never more entries than room was given, every entry has a thread id
 * that is one, a parse that succeeds on the whole text succeeds on it again with the
 * same entries, and a table cut at any line end parses too or fails cleanly. Linked with
 * replay.c it is the 'fuzz' test that replays fuzz/corpus/hist-table/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/stats.h"
#include "fuzz.h"

#define MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_keycount_entry a[MAX], b[MAX];
	const char *text = (const char *)data;
	uint64_t da, db;
	size_t na, nb;
	int ra, rb;

	ra = vms_hist_parse(text, size, "exit_reason", a, MAX, &na, &da);
	CHECK(ra == 0 || ra == -VMS_E_PARSE);
	CHECK(na <= MAX);
	for (size_t i = 0; i < na; i++)
		CHECK(a[i].tid >= 0 && a[i].event == 0);
	rb = vms_hist_parse(text, size, "exit_reason", b, MAX, &nb, &db);
	CHECK(ra == rb && na == nb && da == db && !memcmp(a, b, na * sizeof(*a)));
	/* A table cut after its first line (a read that raced the kernel) */
	{
		const char *nl = memchr(text, '\n', size);

		if (nl) {
			rb = vms_hist_parse(text, (size_t)(nl - text + 1), "exit_reason", b, MAX,
					    &nb, &db);
			CHECK((rb == 0 || rb == -VMS_E_PARSE) && nb <= MAX);
		}
	}
	/* Room for none: every entry is dropped, none written */
	rb = vms_hist_parse(text, size, "exit_reason", NULL, 0, &nb, &db);
	CHECK(nb == 0);
	return 0;
}
