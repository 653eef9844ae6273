// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the streaming JSON writer (lib/sink/json.c): the same document in compact
 * and pretty form against golden text written out by hand, string escaping (quotes,
 * backslash, control characters, DEL, UTF-8 passed through and invalid UTF-8 replaced so
 * the output stays valid JSON), integer extremes, doubles in their shortest round-trip
 * form with non-finite values as null, fixed-point numbers, and the sticky errors:
 * unbalanced nesting, nesting too deep, and write errors (a FILE on /dev/full, and a stream
 * that fails after a given number of bytes and records whether the writer kept writing
 * after the failure).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "vmscope/json.h"

/* ---- a writer on a memory stream ---- */

struct mem {
	struct vms_json j;
	FILE *f;
	char *buf;
	size_t len;
};

static void mem_open(struct mem *m, bool pretty)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	assert_non_null(m->f);
	vms_json_init(&m->j, m->f, pretty);
}

/* Finish the document, check the return value and the whole text, free the stream. */
static void mem_expect(struct mem *m, int ret, const char *want)
{
	assert_int_equal(vms_json_finish(&m->j), ret);
	assert_int_equal(fclose(m->f), 0);
	if (want && strcmp(m->buf, want))
		fail_msg("JSON text\n%s\nexpected\n%s", m->buf, want);
	free(m->buf);
}

/* The text one value of a single-member object becomes, compact: {"v":TEXT}. */
static void expect_dbl(double v, const char *text)
{
	char want[128];
	struct mem m;

	mem_open(&m, false);
	vms_json_object_begin(&m.j, NULL);
	vms_json_double(&m.j, "v", v);
	vms_json_object_end(&m.j);
	snprintf(want, sizeof(want), "{\"v\":%s}\n", text);
	mem_expect(&m, 0, want);
}

static void expect_str(const char *s, const char *text)
{
	char want[512];
	struct mem m;

	mem_open(&m, false);
	vms_json_array_begin(&m.j, NULL);
	vms_json_string(&m.j, NULL, s);
	vms_json_array_end(&m.j);
	snprintf(want, sizeof(want), "[%s]\n", text);
	mem_expect(&m, 0, want);
}

/* ---- golden documents ---- */

/* One document that uses every kind of value and container. */
static void write_doc(struct vms_json *j)
{
	vms_json_object_begin(j, NULL);
	vms_json_string(j, "name", "vm1");
	vms_json_u64(j, "pid", 42);
	vms_json_i64(j, "delta", -7);
	vms_json_bool(j, "ok", true);
	vms_json_bool(j, "bad", false);
	vms_json_null(j, "none");
	vms_json_string(j, "nothing", NULL);
	vms_json_double(j, "half", 0.5);
	vms_json_array_begin(j, "list");
	vms_json_u64(j, NULL, 1);
	vms_json_i64(j, NULL, -2);
	vms_json_object_begin(j, NULL);
	vms_json_object_end(j);
	vms_json_array_begin(j, NULL);
	vms_json_array_end(j);
	vms_json_object_begin(j, NULL);
	vms_json_string(j, "k", "v");
	vms_json_object_end(j);
	vms_json_array_end(j);
	vms_json_object_begin(j, "empty");
	vms_json_object_end(j);
	vms_json_array_begin(j, "empty_list");
	vms_json_array_end(j);
	vms_json_object_begin(j, "nested");
	vms_json_object_begin(j, "deeper");
	vms_json_u64(j, "x", 0);
	vms_json_object_end(j);
	vms_json_object_end(j);
	vms_json_object_end(j);
}

static void test_compact(void **state)
{
	struct mem m;

	mem_open(&m, false);
	write_doc(&m.j);
	mem_expect(&m, 0,
		   "{\"name\":\"vm1\",\"pid\":42,\"delta\":-7,\"ok\":true,\"bad\":false,"
		   "\"none\":null,\"nothing\":null,\"half\":0.5,"
		   "\"list\":[1,-2,{},[],{\"k\":\"v\"}],\"empty\":{},\"empty_list\":[],"
		   "\"nested\":{\"deeper\":{\"x\":0}}}\n");
}

static void test_pretty(void **state)
{
	struct mem m;

	mem_open(&m, true);
	write_doc(&m.j);
	mem_expect(&m, 0,
		   "{\n"
		   "  \"name\": \"vm1\",\n"
		   "  \"pid\": 42,\n"
		   "  \"delta\": -7,\n"
		   "  \"ok\": true,\n"
		   "  \"bad\": false,\n"
		   "  \"none\": null,\n"
		   "  \"nothing\": null,\n"
		   "  \"half\": 0.5,\n"
		   "  \"list\": [\n"
		   "    1,\n"
		   "    -2,\n"
		   "    {},\n"
		   "    [],\n"
		   "    {\n"
		   "      \"k\": \"v\"\n"
		   "    }\n"
		   "  ],\n"
		   "  \"empty\": {},\n"
		   "  \"empty_list\": [],\n"
		   "  \"nested\": {\n"
		   "    \"deeper\": {\n"
		   "      \"x\": 0\n"
		   "    }\n"
		   "  }\n"
		   "}\n");
}

static void test_top_level(void **state)
{
	struct mem m;

	for (int pretty = 0; pretty < 2; pretty++) {
		mem_open(&m, pretty);
		vms_json_object_begin(&m.j, NULL);
		vms_json_object_end(&m.j);
		mem_expect(&m, 0, "{}\n");

		mem_open(&m, pretty);
		vms_json_array_begin(&m.j, NULL);
		vms_json_array_end(&m.j);
		mem_expect(&m, 0, "[]\n");

		mem_open(&m, pretty);
		vms_json_u64(&m.j, NULL, 5);
		mem_expect(&m, 0, "5\n");

		mem_open(&m, pretty);
		vms_json_string(&m.j, NULL, "x");
		mem_expect(&m, 0, "\"x\"\n");
	}
	mem_open(&m, true);
	vms_json_array_begin(&m.j, NULL);
	vms_json_object_begin(&m.j, NULL);
	vms_json_u64(&m.j, "a", 1);
	vms_json_object_end(&m.j);
	vms_json_array_begin(&m.j, NULL);
	vms_json_null(&m.j, NULL);
	vms_json_array_end(&m.j);
	vms_json_array_end(&m.j);
	mem_expect(&m, 0, "[\n  {\n    \"a\": 1\n  },\n  [\n    null\n  ]\n]\n");
}

/* ---- strings ---- */

static void test_escaping(void **state)
{
	struct mem m;

	expect_str("", "\"\"");
	expect_str("plain text 123", "\"plain text 123\"");
	expect_str("say \"hi\"", "\"say \\\"hi\\\"\"");
	expect_str("C:\\dir\\", "\"C:\\\\dir\\\\\"");
	expect_str("a/b", "\"a/b\""); /* '/' needs no escape */
	expect_str("l1\nl2\r\n\tx", "\"l1\\nl2\\r\\n\\tx\"");
	/* every other control character as \u00XX, and DEL too */
	expect_str("\x01", "\"\\u0001\"");
	expect_str("\b\f", "\"\\u0008\\u000c\"");
	expect_str("\x1b[0m", "\"\\u001b[0m\"");
	expect_str("\x1f", "\"\\u001f\"");
	expect_str("\x7f", "\"\\u007f\"");
	expect_str(" ~", "\" ~\"");
	/* UTF-8 as it is: 2, 3 and 4 byte sequences, the first and last code points */
	expect_str("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	expect_str("\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"");
	expect_str("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
	expect_str("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
		   "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
	/* bytes that are not UTF-8 would make the document invalid JSON: each maximal
	 * invalid part becomes U+FFFD */
	expect_str("a\xffz", "\"a\\ufffdz\"");
	/* a lone continuation byte; a sequence cut at the end, and in the middle */
	expect_str("\x80", "\"\\ufffd\"");
	expect_str("x\xc3", "\"x\\ufffd\"");
	expect_str("\xe2\x82Z", "\"\\ufffdZ\"");
	/* overlong forms of '/', a surrogate, a code point above U+10FFFF: every byte */
	expect_str("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	expect_str("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_str("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_str("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	expect_str("\xf5\x80", "\"\\ufffd\\ufffd\"");
	expect_str("\xf0\x9f\x98\xc3\xa9", "\"\\ufffd\xc3\xa9\"");

	/* keys are escaped the same way */
	mem_open(&m, false);
	vms_json_object_begin(&m.j, NULL);
	vms_json_u64(&m.j, "k\"e\\y\n", 1);
	vms_json_object_end(&m.j);
	mem_expect(&m, 0, "{\"k\\\"e\\\\y\\n\":1}\n");

	/* a long string, longer than any internal buffer */
	{
		char s[5000], want[5010];

		memset(s, 'a', sizeof(s) - 1);
		s[sizeof(s) - 1] = '\0';
		s[2500] = '"';
		snprintf(want, sizeof(want), "\"%.2500s\\\"%s\"", s, s + 2501);
		mem_open(&m, false);
		vms_json_string(&m.j, NULL, s);
		strcat(want, "\n");
		mem_expect(&m, 0, want);
	}
}

/* ---- numbers ---- */

static void test_integers(void **state)
{
	struct mem m;

	mem_open(&m, false);
	vms_json_array_begin(&m.j, NULL);
	vms_json_u64(&m.j, NULL, 0);
	vms_json_u64(&m.j, NULL, UINT64_MAX);
	vms_json_i64(&m.j, NULL, INT64_MIN);
	vms_json_i64(&m.j, NULL, INT64_MAX);
	vms_json_i64(&m.j, NULL, -1);
	vms_json_i64(&m.j, NULL, 0);
	vms_json_array_end(&m.j);
	mem_expect(&m, 0,
		   "[0,18446744073709551615,-9223372036854775808,9223372036854775807,-1,0]\n");
}

/* Fixed-point numbers: exact, with as many decimals as asked (times in ns as us). */
static void test_fixed(void **state)
{
	struct mem m;

	mem_open(&m, false);
	vms_json_array_begin(&m.j, NULL);
	vms_json_fixed(&m.j, NULL, 1234567, 3);
	vms_json_fixed(&m.j, NULL, 0, 3);
	vms_json_fixed(&m.j, NULL, 5, 3);
	vms_json_fixed(&m.j, NULL, 1000, 3);
	vms_json_fixed(&m.j, NULL, -5, 3);
	vms_json_fixed(&m.j, NULL, -1234567, 3);
	vms_json_fixed(&m.j, NULL, 42, 0);
	vms_json_fixed(&m.j, NULL, -42, 0);
	vms_json_fixed(&m.j, NULL, INT64_MAX, 9);
	vms_json_fixed(&m.j, NULL, INT64_MIN, 18);
	vms_json_array_end(&m.j);
	mem_expect(&m, 0,
		   "[1234.567,0.000,0.005,1.000,-0.005,-1234.567,42,-42,9223372036.854775807,"
		   "-9.223372036854775808]\n");

	/* more decimals than an int64_t has digits: an error */
	mem_open(&m, false);
	vms_json_array_begin(&m.j, NULL);
	vms_json_fixed(&m.j, NULL, 1, 19);
	vms_json_array_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
}

static void test_doubles(void **state)
{
	expect_dbl(0.1, "0.1");
	expect_dbl(0.5, "0.5");
	expect_dbl(100.0, "100");
	expect_dbl(-2.25, "-2.25");
	expect_dbl(0.0, "0");
	expect_dbl(-0.0, "-0");
	expect_dbl(123456.789, "123456.789");
	expect_dbl(1e300, "1e+300");
	expect_dbl(1e21, "1e+21");
	expect_dbl(1.5e-7, "1.5e-07");
	/* 15, 16 and 17 significant digits, each the shortest that reads back */
	expect_dbl(0.1 + 0.2, "0.30000000000000004");
	expect_dbl(1.0 / 3.0, "0.3333333333333333");
	expect_dbl(2.0 / 3.0, "0.6666666666666666");
	expect_dbl(9007199254740992.0, "9007199254740992"); /* 2^53 */
	expect_dbl(123456789012345.6, "123456789012345.6");
	expect_dbl(DBL_MAX, "1.7976931348623157e+308");
	expect_dbl(DBL_MIN, "2.2250738585072014e-308");
	/* subnormals have few digits of precision: the shortest form is short */
	expect_dbl(4.9406564584124654e-324, "5e-324");
	expect_dbl(1e-320, "1e-320");
	/* JSON has no NaN or infinity */
	expect_dbl(NAN, "null");
	expect_dbl(-NAN, "null");
	expect_dbl(INFINITY, "null");
	expect_dbl(-INFINITY, "null");

	/* every double written reads back as itself: a sweep over magnitudes */
	for (int e = -320; e <= 308; e += 7) {
		double v = 1.2345678901234567 * pow(10.0, e);
		struct mem m;
		char *end;

		mem_open(&m, false);
		vms_json_double(&m.j, NULL, v);
		assert_int_equal(vms_json_finish(&m.j), 0);
		assert_int_equal(fclose(m.f), 0);
		if (strtod(m.buf, &end) != v || strcmp(end, "\n"))
			fail_msg("%.17g was written as '%s', which does not read back", v, m.buf);
		free(m.buf);
	}
}

/* ---- errors ---- */

static void test_unbalanced(void **state)
{
	struct mem m;

	/* an end with nothing open */
	mem_open(&m, false);
	vms_json_object_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false);
	vms_json_array_begin(&m.j, NULL);
	vms_json_array_end(&m.j);
	vms_json_array_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	/* containers left open */
	mem_open(&m, false);
	vms_json_object_begin(&m.j, NULL);
	vms_json_array_begin(&m.j, "a");
	vms_json_array_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	/* the error stays even when the count balances later */
	mem_open(&m, false);
	vms_json_array_end(&m.j);
	vms_json_array_begin(&m.j, NULL);
	mem_expect(&m, -EINVAL, NULL);
	/* a new init starts clean */
	mem_open(&m, false);
	vms_json_array_end(&m.j);
	assert_int_equal(vms_json_finish(&m.j), -EINVAL);
	vms_json_init(&m.j, m.f, false);
	vms_json_u64(&m.j, NULL, 1);
	assert_int_equal(vms_json_finish(&m.j), 0);
	assert_int_equal(fclose(m.f), 0);
	free(m.buf);
}

/* Keys where they belong, closers that match their openers. */
static void test_shape(void **state)
{
	struct mem m;

	mem_open(&m, false); /* "]" closing "{" */
	vms_json_object_begin(&m.j, NULL);
	vms_json_array_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false); /* "}" closing "[" */
	vms_json_array_begin(&m.j, NULL);
	vms_json_object_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false); /* a member without a key */
	vms_json_object_begin(&m.j, NULL);
	vms_json_u64(&m.j, NULL, 1);
	vms_json_object_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false); /* an array item with a key */
	vms_json_array_begin(&m.j, NULL);
	vms_json_u64(&m.j, "k", 1);
	vms_json_array_end(&m.j);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false); /* a top-level value with a key */
	vms_json_bool(&m.j, "k", true);
	mem_expect(&m, -EINVAL, NULL);
	mem_open(&m, false); /* the right shape still passes */
	vms_json_array_begin(&m.j, NULL);
	vms_json_object_begin(&m.j, NULL);
	vms_json_array_begin(&m.j, "a");
	vms_json_null(&m.j, NULL);
	vms_json_array_end(&m.j);
	vms_json_object_end(&m.j);
	vms_json_array_end(&m.j);
	mem_expect(&m, 0, "[{\"a\":[null]}]\n");
}

static void test_depth(void **state)
{
	char want[2 * VMS_JSON_MAX_DEPTH + 2];
	struct mem m;
	int n = VMS_JSON_MAX_DEPTH - 1;

	/* VMS_JSON_MAX_DEPTH - 1 nested containers (the top level is depth 0) */
	mem_open(&m, false);
	for (int i = 0; i < n; i++)
		vms_json_array_begin(&m.j, NULL);
	for (int i = 0; i < n; i++)
		vms_json_array_end(&m.j);
	memset(want, '[', (size_t)n);
	memset(want + n, ']', (size_t)n);
	strcpy(want + 2 * n, "\n");
	mem_expect(&m, 0, want);

	/* one more is an error, however the rest goes */
	for (int extra = 1; extra <= 3; extra++) {
		mem_open(&m, false);
		for (int i = 0; i < n + extra; i++)
			vms_json_object_begin(&m.j, i ? "k" : NULL);
		for (int i = 0; i < n + extra; i++)
			vms_json_object_end(&m.j);
		mem_expect(&m, -EINVAL, NULL);
	}
}

static void test_dev_full(void **state)
{
	struct vms_json j;
	FILE *f;

	/* buffered: the error shows at the flush in vms_json_finish() */
	f = fopen("/dev/full", "w");
	if (!f) {
		print_message("/dev/full: %s\n", strerror(errno));
		skip();
	}
	vms_json_init(&j, f, false);
	write_doc(&j);
	assert_int_equal(vms_json_finish(&j), -EIO);
	fclose(f);

	/* unbuffered: the first write fails and the error stays; a later nesting error does
	 * not replace it */
	f = fopen("/dev/full", "w");
	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	vms_json_init(&j, f, true);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "a", 1);
	vms_json_object_end(&j);
	vms_json_object_end(&j);
	assert_int_equal(vms_json_finish(&j), -EIO);
	fclose(f);
}

/* A stream that takes @limit bytes, then fails every write and counts the attempts. */
struct failing {
	char got[256];
	size_t len, limit;
	int writes_after_failure;
};

static ssize_t failing_write(void *cookie, const char *buf, size_t size)
{
	struct failing *c = cookie;

	if (c->len >= c->limit) {
		c->writes_after_failure++;
		errno = EIO;
		return -1;
	}
	if (size > c->limit - c->len)
		size = c->limit - c->len;
	memcpy(c->got + c->len, buf, size);
	c->len += size;
	return (ssize_t)size;
}

static void test_sticky(void **state)
{
	static const cookie_io_functions_t io = { .write = failing_write };
	struct failing c = { .limit = 5 };
	struct vms_json j;
	FILE *f = fopencookie(&c, "w", io);
	int failed;

	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	vms_json_init(&j, f, false);
	vms_json_object_begin(&j, NULL);
	vms_json_string(&j, "key", "value"); /* fails after {"key */
	/* stdio may retry a failed write itself */
	failed = c.writes_after_failure;
	assert_true(failed >= 1);
	vms_json_u64(&j, "n", 1);
	vms_json_array_begin(&j, "l");
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	assert_int_equal(vms_json_finish(&j), -EIO);
	/* after the first failed write the writer wrote nothing more */
	assert_int_equal(c.writes_after_failure, failed);
	assert_int_equal(c.len, 5);
	assert_memory_equal(c.got, "{\"key", 5);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact),	  cmocka_unit_test(test_pretty),
		cmocka_unit_test(test_top_level), cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_integers),  cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_fixed),	  cmocka_unit_test(test_unbalanced),
		cmocka_unit_test(test_shape),	  cmocka_unit_test(test_depth),
		cmocka_unit_test(test_dev_full),  cmocka_unit_test(test_sticky),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
