// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The session's errors: handlers cannot return one, so an analysis that met one (an
 * allocation that failed: its results are short) says so after finish, and
 * vms_session_run() returns it with a message naming the analysis; a reader error comes
 * first (it says where the trace ended). On a small generated trace (argv[1]: gentrace).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmscope/analysis.h"
#include "vmscope/trace.h"
#include "vmscope/vmscope.h"

static char whole[64], cut[64];

struct fake {
	uint64_t switches;
	bool finished;
	int err; /* what error() says */
};

static void on_switch(void *priv, const struct vms_record *rec)
{
	(void)rec;
	((struct fake *)priv)->switches++;
}

static int fake_init(void *priv, struct vms_session *s, const void *opts)
{
	struct fake *f = priv;

	f->err = *(const int *)opts;
	return vms_session_subscribe(
		s, vms_trace_event_id(vms_session_trace(s), "sched", "sched_switch"), on_switch, f);
}

static void fake_finish(void *priv, struct vms_session *s)
{
	(void)s;
	((struct fake *)priv)->finished = true;
}

static int fake_error(const void *priv)
{
	return ((const struct fake *)priv)->err;
}

static const struct vms_analysis_ops fake_ops = {
	.name = "fake",
	.priv_size = sizeof(struct fake),
	.init = fake_init,
	.finish = fake_finish,
	.error = fake_error,
};

/* Run the fake analysis (its error() says @err) over @path: the run's return value. */
static int run(const char *path, int err, struct fake *out, char *msg, size_t len)
{
	struct vms_trace *t;
	struct vms_session *s;
	void *priv;
	int ret;

	assert_int_equal(vms_trace_open(path, NULL, &t), 0);
	assert_int_equal(vms_session_new(t, &s), 0);
	assert_int_equal(vms_session_add(s, &fake_ops, &err, &priv), 0);
	ret = vms_session_run(s, NULL, NULL);
	*out = *(struct fake *)priv;
	snprintf(msg, len, "%s", vms_session_error(s));
	vms_session_free(s);
	vms_trace_close(t);
	return ret;
}

static void test_no_error(void **state)
{
	struct fake f;
	char msg[256];

	(void)state;
	assert_int_equal(run(whole, 0, &f, msg, sizeof(msg)), 0);
	assert_true(f.finished && f.switches > 0);
	assert_string_equal(msg, "");
}

static void test_analysis_error(void **state)
{
	struct fake f;
	char msg[256];

	(void)state;
	assert_int_equal(run(whole, -ENOMEM, &f, msg, sizeof(msg)), -ENOMEM);
	/* every record was still handed out, and the analysis finished */
	assert_true(f.finished && f.switches > 0);
	assert_non_null(strstr(msg, "the fake analysis: "));
	assert_non_null(strstr(msg, "incomplete"));
}

static void test_reader_error_first(void **state)
{
	struct fake f, g;
	char msg[256];
	int ret;

	(void)state;
	ret = run(cut, -ENOMEM, &f, msg, sizeof(msg));
	assert_true(ret < 0 && ret != -ENOMEM);
	assert_non_null(strstr(msg, "offset"));
	assert_null(strstr(msg, "fake"));
	/* the records before the damage were analysed */
	assert_int_equal(run(whole, 0, &g, msg, sizeof(msg)), 0);
	assert_true(f.finished && f.switches > 0 && f.switches < g.switches);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_error),
		cmocka_unit_test(test_analysis_error),
		cmocka_unit_test(test_reader_error_first),
	};
	char cmd[512];
	FILE *f;
	char *buf;
	long n;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s GENTRACE\n", argv[0]);
		return 2;
	}
	snprintf(whole, sizeof(whole), "/tmp/vmscope-session-%d.dat", (int)getpid());
	snprintf(cut, sizeof(cut), "/tmp/vmscope-session-%d-cut.dat", (int)getpid());
	snprintf(cmd, sizeof(cmd), "%s -o %s --exits 2000 --seed 3 --quiet", argv[1], whole);
	if (system(cmd)) {
		fprintf(stderr, "gentrace failed\n");
		return 1;
	}
	/* the same file cut at 80 %: a truncated recording (v6 says where each CPU's data
	 * lies before the data, so what is left is read) */
	f = fopen(whole, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)n)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", whole);
		return 1;
	}
	fclose(f);
	f = fopen(cut, "wb");
	if (!f || fwrite(buf, 1, (size_t)(n * 4 / 5), f) != (size_t)(n * 4 / 5) || fclose(f)) {
		fprintf(stderr, "cannot write %s\n", cut);
		return 1;
	}
	free(buf);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(whole);
	unlink(cut);
	return ret;
}
