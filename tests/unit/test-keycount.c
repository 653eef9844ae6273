// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vms_hist_parse(): the table of a hist trigger keyed on common_pid and one field, as the
 * kernel prints it ("{ common_pid:       2520, exit_reason:         30 } hitcount:  7"),
 * with its comments and Totals; and every way a line can be wrong. The texts are written
 * here the way kernel/trace/trace_events_hist.c prints them; the expected entries are the
 * numbers written into them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmscope/stats.h"

static const char table[] =
	"# event histogram\n"
	"#\n"
	"# trigger info: hist:keys=common_pid,exit_reason:vals=hitcount:sort=hitcount:size=8192 "
	"[active]\n"
	"#\n"
	"\n"
	"{ common_pid:       2520, exit_reason:          1 } hitcount:          1\n"
	"{ common_pid:       2521, exit_reason:         48 } hitcount:      12345\n"
	"{ common_pid:       2520, exit_reason: 4294967295 } hitcount: 18446744073709551615\n"
	"{ exit_reason:         30, common_pid:          7 } hitcount:          3  bytes:  9\n"
	"\n"
	"Totals:\n"
	"    Hits: 12349\n"
	"    Entries: 4\n"
	"    Dropped: 17\n";

static void test_table(void **state)
{
	struct vms_keycount_entry e[8];
	uint64_t dropped;
	size_t n;

	(void)state;
	assert_int_equal(vms_hist_parse(table, strlen(table), "exit_reason", e, 8, &n, &dropped),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(dropped, 17);
	assert_int_equal(e[0].tid, 2520);
	assert_int_equal(e[0].key, 1);
	assert_int_equal(e[0].count, 1);
	assert_int_equal(e[1].tid, 2521);
	assert_int_equal(e[1].key, 48);
	assert_int_equal(e[1].count, 12345);
	/* SVM's invalid_guest_state is -1 in an unsigned field; counts use all 64 bits */
	assert_int_equal(e[2].key, 4294967295ULL);
	assert_true(e[2].count == UINT64_MAX);
	/* keys in either order; values after hitcount are not ours */
	assert_int_equal(e[3].tid, 7);
	assert_int_equal(e[3].key, 30);
	assert_int_equal(e[3].count, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(e[i].event, 0);
}

static void test_more_than_max(void **state)
{
	struct vms_keycount_entry e[2];
	uint64_t dropped;
	size_t n;

	(void)state;
	/* the lines past max are counted as dropped, with the table's own */
	assert_int_equal(vms_hist_parse(table, strlen(table), "exit_reason", e, 2, &n, &dropped),
			 0);
	assert_int_equal(n, 2);
	assert_true(dropped == 17 + UINT64_MAX + 3); /* wraps: the caller sees "very many" */
}

static void test_empty_and_unterminated(void **state)
{
	static const char one[] = "{ common_pid: 5, reason: 6 } hitcount: 17";
	struct vms_keycount_entry e[2];
	uint64_t dropped = 99;
	size_t n = 99;

	(void)state;
	assert_int_equal(vms_hist_parse("", 0, "reason", e, 2, &n, &dropped), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dropped, 0);
	/* no newline at the end; only the first len bytes count */
	assert_int_equal(vms_hist_parse(one, strlen(one), "reason", e, 2, &n, &dropped), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].tid, 5);
	assert_int_equal(e[0].key, 6);
	assert_int_equal(e[0].count, 17);
	assert_int_equal(vms_hist_parse(one, strlen(one) - 1, "reason", e, 2, &n, &dropped), 0);
	assert_int_equal(e[0].count, 1);
	/* "hitcount:" and then nothing */
	assert_int_equal(vms_hist_parse(one, strlen(one) - 3, "reason", e, 2, &n, &dropped),
			 -VMS_E_PARSE);
}

static void expect_bad(const char *text)
{
	struct vms_keycount_entry e[4];
	uint64_t dropped;
	size_t n;

	if (vms_hist_parse(text, strlen(text), "exit_reason", e, 4, &n, &dropped) != -VMS_E_PARSE)
		fail_msg("parsed: %s", text);
}

static void test_bad_lines(void **state)
{
	(void)state;
	/* the wrong key, a missing key, a repeated key */
	expect_bad("{ common_pid: 1, reason: 2 } hitcount: 3\n");
	expect_bad("{ common_pid: 1 } hitcount: 3\n");
	expect_bad("{ common_pid: 1, common_pid: 2, exit_reason: 3 } hitcount: 3\n");
	/* a modifier's text instead of a number (.execname) */
	expect_bad("{ common_pid: bash [  8710], exit_reason: 1 } hitcount: 3\n");
	/* a pid that is not one; a number that overflows 64 bits */
	expect_bad("{ common_pid: 4294967296, exit_reason: 1 } hitcount: 3\n");
	expect_bad("{ common_pid: 1, exit_reason: 18446744073709551616 } hitcount: 3\n");
	expect_bad("{ common_pid: -1, exit_reason: 1 } hitcount: 3\n");
	/* no hitcount, a broken brace, text glued on */
	expect_bad("{ common_pid: 1, exit_reason: 1 }\n");
	expect_bad("{ common_pid: 1, exit_reason: 1 hitcount: 3\n");
	expect_bad("{ common_pid: 1, exit_reason: 1 } hitcount: 3x\n");
	expect_bad("{ common_pid: 1; exit_reason: 1 } hitcount: 3\n");
	/* a line that is none of the known kinds; a Totals line without its number */
	expect_bad("hello\n");
	expect_bad("Totals:\n    Hits: many\n");
	/* an entry after the Totals */
	expect_bad("Totals:\n    Hits: 1\n{ common_pid: 1, exit_reason: 1 } hitcount: 3\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_more_than_max),
		cmocka_unit_test(test_empty_and_unterminated),
		cmocka_unit_test(test_bad_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
