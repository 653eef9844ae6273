// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the QMP client (lib/stats/qmp.c, qmp-stats.c): where a QEMU command line
 * puts its QMP socket (-qmp unix:..., -chardev socket + -mon mode=control, and the odd
 * ones: commas doubled in paths, flags without values, human monitors, client sockets,
 * abstract and fd sockets, an argument cut at the end), and vms_qmp_query_stats() against
 * a fake QEMU on a socket pair in a thread that answers with canned replies shaped like
 * QEMU 7.2's (histograms, booleans, an event in between, a vCPU QEMU does not list). No
 * root, no QEMU.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmscope/qmp.h"

/* ---- the command line ---- */

/* Build a NUL-separated command line from a NULL-terminated list of arguments. */
static size_t cmdline(char *buf, size_t size, ...)
{
	size_t n = 0;
	const char *a;
	va_list ap;

	va_start(ap, size);
	while ((a = va_arg(ap, const char *))) {
		size_t len = strlen(a) + 1;

		assert_true(n + len <= size);
		memcpy(buf + n, a, len);
		n += len;
	}
	va_end(ap);
	return n;
}

#define SOCKET_OF(want_ret, want_path, ...)                                                \
	do {                                                                               \
		char buf_[2048], path_[256];                                               \
		size_t n_ = cmdline(buf_, sizeof(buf_), "qemu-system-x86_64", __VA_ARGS__, \
				    (const char *)NULL);                                   \
		int r_ = vms_qmp_socket_from_cmdline(buf_, n_, path_, sizeof(path_));      \
		assert_int_equal(r_, want_ret);                                            \
		assert_string_equal(path_, want_path);                                     \
	} while (0)

static void test_qmp_option(void **state)
{
	SOCKET_OF(0, "/tmp/q.sock", "-enable-kvm", "-qmp", "unix:/tmp/q.sock,server=on,wait=off");
	SOCKET_OF(0, "/tmp/q.sock", "-qmp", "unix:path=/tmp/q.sock,server=on,wait=off");
	/* the old spelling: bare flags */
	SOCKET_OF(0, "/tmp/q.sock", "-qmp", "unix:/tmp/q.sock,server,nowait");
	SOCKET_OF(0, "/tmp/q.sock", "--qmp", "unix:/tmp/q.sock,server=yes");
	SOCKET_OF(0, "/tmp/q.sock", "-qmp-pretty", "unix:/tmp/q.sock,server=on");
	/* relative paths stay as written (vms_qmp_socket_of() resolves them) */
	SOCKET_OF(0, "run/q.sock", "-qmp", "unix:run/q.sock,server=on");
	/* ",," is a comma in the path; the last path= wins, as in QEMU */
	SOCKET_OF(0, "/tmp/a,b.sock", "-qmp", "unix:/tmp/a,,b.sock,server=on");
	SOCKET_OF(0, "/tmp/b", "-qmp", "unix:/tmp/a,path=/tmp/b,server=on");
	/* a client socket: QEMU connects to someone else's server */
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:/tmp/q.sock");
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:/tmp/q.sock,server=off");
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:/tmp/q.sock,server,noserver");
	/* abstract sockets have no path to connect to; TCP is not a unix socket */
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:q,server=on,abstract=on");
	SOCKET_OF(-ENOENT, "", "-qmp", "tcp:localhost:4444,server=on");
	SOCKET_OF(-ENOENT, "", "-qmp", "stdio");
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:,server=on");
	/* a human monitor is not QMP */
	SOCKET_OF(-ENOENT, "", "-monitor", "unix:/tmp/hmp.sock,server=on,wait=off");
	/* the first usable one */
	SOCKET_OF(0, "/tmp/2", "-qmp", "unix:/tmp/1", "-qmp", "unix:/tmp/2,server=on", "-qmp",
		  "unix:/tmp/3,server=on");
}

static void test_chardev_mon(void **state)
{
	SOCKET_OF(0, "/run/m.sock", "-chardev", "socket,id=m0,path=/run/m.sock,server=on,wait=off",
		  "-mon", "chardev=m0,mode=control");
	/* -mon before -chardev, the implied key of -mon, extra keys */
	SOCKET_OF(0, "/run/m.sock", "-mon", "m0,mode=control,pretty=on", "-chardev",
		  "socket,path=/run/m.sock,id=m0,server=on");
	/* -qmp chardev:ID is a control monitor on a chardev too */
	SOCKET_OF(0, "/run/m.sock", "-chardev", "socket,id=m0,path=/run/m.sock,server=on", "-qmp",
		  "chardev:m0");
	/* mode defaults to readline: a human monitor */
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=m0,path=/run/m.sock,server=on", "-mon",
		  "chardev=m0");
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=m0,path=/run/m.sock,server=on", "-mon",
		  "chardev=m0,mode=readline");
	/* libvirt passes its monitor as an fd */
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=charmonitor,fd=27,server=on,wait=off", "-mon",
		  "chardev=charmonitor,id=monitor,mode=control");
	/* the monitor's chardev is another one, or not a socket, or a client */
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=a,path=/run/a.sock,server=on", "-mon",
		  "chardev=b,mode=control");
	SOCKET_OF(-ENOENT, "", "-chardev", "file,id=m0,path=/tmp/log", "-mon",
		  "chardev=m0,mode=control");
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=m0,path=/run/m.sock", "-mon",
		  "chardev=m0,mode=control");
	/* the id may contain no comma, the path may: ",," */
	SOCKET_OF(0, "/run/x,y", "-chardev", "socket,id=m0,path=/run/x,,y,server=on", "-mon",
		  "chardev=m0,mode=control");
	/* two chardevs, the second one is the monitor's */
	SOCKET_OF(0, "/run/b.sock", "-chardev", "socket,id=a,path=/run/a.sock,server=on",
		  "-chardev", "socket,id=b,path=/run/b.sock,server=on", "-serial", "chardev:a",
		  "-mon", "chardev=b,mode=control");
}

static void test_odd_cmdlines(void **state)
{
	char buf[512], path[256];
	size_t n;

	/* nothing at all */
	assert_int_equal(vms_qmp_socket_from_cmdline("", 0, path, sizeof(path)), -ENOENT);
	assert_string_equal(path, "");
	/* an option without its argument at the end */
	SOCKET_OF(-ENOENT, "", "-m", "32", "-qmp");
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=m0,path=/x,server=on", "-mon");
	/* a value that looks like the option: "-append -qmp" takes the next word as spec */
	SOCKET_OF(-ENOENT, "", "-append", "-qmp", "-kernel", "x");
	/* empty strings, stray commas, an empty id */
	SOCKET_OF(-ENOENT, "", "", "-qmp", "");
	SOCKET_OF(0, "/x,", "-qmp", "unix:/x,,,server=on");
	SOCKET_OF(-ENOENT, "", "-qmp", "unix:,,,,");
	SOCKET_OF(-ENOENT, "", "-chardev", "socket,id=,path=/x,server=on", "-mon",
		  "chardev=,mode=control");
	SOCKET_OF(-ENOENT, "", "-qmp", "chardev:");

	/* a buffer that ends without the last NUL: that argument does not count */
	n = cmdline(buf, sizeof(buf), "qemu", "-qmp", "unix:/tmp/q,server=on", (const char *)NULL);
	assert_int_equal(vms_qmp_socket_from_cmdline(buf, n - 1, path, sizeof(path)), -ENOENT);
	assert_int_equal(vms_qmp_socket_from_cmdline(buf, n, path, sizeof(path)), 0);

	/* a path too long for the caller's buffer */
	assert_int_equal(vms_qmp_socket_from_cmdline(buf, n, path, 6), -ENAMETOOLONG);
	assert_string_equal(path, "");
	assert_int_equal(vms_qmp_socket_from_cmdline(buf, n, path, 7), 0);
	assert_string_equal(path, "/tmp/q");
	/* ... but a later one that fits is taken */
	n = cmdline(buf, sizeof(buf), "qemu", "-qmp", "unix:/tmp/long-name,server=on", "-qmp",
		    "unix:/s,server=on", (const char *)NULL);
	assert_int_equal(vms_qmp_socket_from_cmdline(buf, n, path, 8), 0);
	assert_string_equal(path, "/s");
	assert_int_equal(vms_qmp_socket_from_cmdline(NULL, 0, path, sizeof(path)), -EINVAL);
}

static void test_socket_of_self(void **state)
{
	char path[128];

	/* this test's own command line has no -qmp */
	assert_int_equal(vms_qmp_socket_of(getpid(), path, sizeof(path)), -ENOENT);
	assert_int_equal(vms_qmp_socket_of(0x3fffffff, path, sizeof(path)), -ESRCH);
	assert_int_equal(vms_qmp_socket_of(-1, path, sizeof(path)), -EINVAL);
}

/* ---- a fake QEMU ---- */

struct fake {
	char dir[64], sock[96];
	int listen_fd;
	pthread_t thread;
	bool greet;	    /* false: accept and never answer (a monitor someone else holds) */
	bool old_qemu;	    /* no query-stats-schemas */
	const char *events; /* sent before each reply */
};

static const char CPUS[] =
	"[{\"thread-id\": 4080, \"qom-path\": \"/machine/unattached/device[0]\", "
	"\"cpu-index\": 0, \"target\": \"x86_64\"}, {\"thread-id\": 4081, \"qom-path\": "
	"\"/machine/unattached/device[2]\", \"cpu-index\": 1, \"target\": \"x86_64\"}]";

static const char SCHEMAS[] =
	"[{\"provider\": \"kvm\", \"target\": \"vcpu\", \"stats\": ["
	"{\"name\": \"exits\", \"exponent\": 0, \"type\": \"cumulative\"}, "
	"{\"name\": \"guest_mode\", \"unit\": \"boolean\", \"exponent\": 0, \"type\": "
	"\"instant\"}, "
	"{\"name\": \"halt_wait_hist\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9, "
	"\"type\": \"log2-histogram\"}, "
	"{\"name\": \"halt_wait_ns\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9, "
	"\"type\": \"cumulative\"}, "
	"{\"name\": \"odd_unit\", \"unit\": \"furlongs\", \"exponent\": 3, \"type\": "
	"\"instant\"}]}, "
	"{\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": ["
	"{\"name\": \"max_mmu_rmap_size\", \"exponent\": 0, \"type\": \"peak\"}, "
	"{\"name\": \"pages_4k\", \"exponent\": 0, \"type\": \"instant\"}, "
	"{\"name\": \"pages_bytes\", \"unit\": \"bytes\", \"base\": 2, \"exponent\": 10, "
	"\"type\": \"instant\"}]}]";

static const char VCPU_STATS[] =
	"[{\"provider\": \"kvm\", \"stats\": [{\"name\": \"exits\", \"value\": 688}, "
	"{\"name\": \"guest_mode\", \"value\": true}, "
	"{\"name\": \"halt_wait_hist\", \"value\": [1, 0, 2]}, "
	"{\"name\": \"halt_wait_ns\", \"value\": 18446744073709551615}, "
	"{\"name\": \"odd_unit\", \"value\": 5}, "
	"{\"name\": \"not_in_schema\", \"value\": 1}], "
	"\"qom-path\": \"/machine/unattached/device[2]\"}, "
	"{\"provider\": \"kvm\", \"stats\": [{\"name\": \"exits\", \"value\": 344}, "
	"{\"name\": \"guest_mode\", \"value\": false}, "
	"{\"name\": \"halt_wait_ns\", \"value\": -1}], "
	"\"qom-path\": \"/machine/unattached/device[0]\"}, "
	"{\"provider\": \"kvm\", \"stats\": [{\"name\": \"exits\", \"value\": 1}], "
	"\"qom-path\": \"/machine/unattached/device[9]\"}]";

static const char VM_STATS[] =
	"[{\"provider\": \"kvm\", \"stats\": [{\"name\": \"max_mmu_rmap_size\", \"value\": 7}, "
	"{\"name\": \"pages_4k\", \"value\": 16}, {\"name\": \"pages_bytes\", \"value\": 3}]}]";

static void say(int fd, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_int_equal(write(fd, buf, (size_t)n), n);
}

static void *fake_qemu(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	char line[4096];
	FILE *in;

	if (fd < 0)
		return NULL;
	if (!f->greet) {
		/* Hold the connection until the client gives up. */
		while (read(fd, line, sizeof(line)) > 0)
			;
		close(fd);
		return NULL;
	}
	in = fdopen(dup(fd), "r");
	say(fd, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
		"\"capabilities\": [\"oob\"]}}\r\n");
	while (fgets(line, sizeof(line), in)) {
		const char *reply = NULL;

		if (f->events)
			say(fd, "%s\r\n", f->events);
		if (strstr(line, "qmp_capabilities"))
			reply = "{}";
		else if (strstr(line, "query-cpus-fast"))
			reply = CPUS;
		else if (strstr(line, "query-stats-schemas") && !f->old_qemu)
			reply = SCHEMAS;
		else if (strstr(line, "query-stats") && strstr(line, "\"vcpu\"") && !f->old_qemu)
			reply = VCPU_STATS;
		else if (strstr(line, "query-stats") && strstr(line, "\"vm\"") && !f->old_qemu)
			reply = VM_STATS;
		if (reply)
			say(fd, "{\"return\": %s}\r\n", reply);
		else
			say(fd, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The "
				"command has not been found\"}}\r\n");
	}
	fclose(in);
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->dir, sizeof(f->dir), "/tmp/vmscope-test-qmp-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/qmp.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 1), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_qemu, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(f->sock);
	rmdir(f->dir);
}

static void test_query_stats(void **state)
{
	struct fake f = { .greet = true,
			  .events = "{\"event\": \"RESUME\", \"timestamp\": "
				    "{\"seconds\": 1, \"microseconds\": 2}}" };
	const struct vms_vmm_stat *st;
	struct vms_vmm_stats *s;
	struct vms_qmp *q;
	char err[256] = "";

	fake_start(&f);
	assert_int_equal(vms_qmp_connect(f.sock, 5000, &q, err, sizeof(err)), 0);
	assert_int_equal(vms_qmp_query_stats(q, 5000, &s, err, sizeof(err)), 0);
	vms_qmp_close(q);
	fake_stop(&f);

	assert_string_equal(s->source, "qmp");
	/* vCPUs sorted by index, with QEMU's threads; device[9] is no vCPU QEMU listed */
	assert_int_equal(s->nvcpus, 2);
	assert_int_equal(s->vcpus[0].vcpu, 0);
	assert_int_equal(s->vcpus[0].tid, 4080);
	assert_int_equal(s->vcpus[1].vcpu, 1);
	assert_int_equal(s->vcpus[1].tid, 4081);

	/* vCPU 1: exits, guest_mode, halt_wait_ns, odd_unit; no histogram, nothing unknown */
	assert_int_equal(s->vcpus[1].nstats, 4);
	st = vms_vmm_stats_find(s, 1, "exits");
	assert_non_null(st);
	assert_int_equal(st->value, 688);
	assert_int_equal(st->type, VMS_STAT_CUMULATIVE);
	assert_true(st->has_unit);
	assert_int_equal(st->unit, VMS_UNIT_NONE);
	assert_int_equal(st->base, 10);
	assert_int_equal(st->exponent, 0);
	st = vms_vmm_stats_find(s, 1, "guest_mode");
	assert_int_equal(st->value, 1);
	assert_int_equal(st->type, VMS_STAT_INSTANT);
	assert_int_equal(st->unit, VMS_UNIT_BOOLEAN);
	st = vms_vmm_stats_find(s, 1, "halt_wait_ns");
	assert_true(st->value == UINT64_MAX); /* exact: no double in between */
	assert_int_equal(st->unit, VMS_UNIT_SECONDS);
	assert_int_equal(st->base, 10);
	assert_int_equal(st->exponent, -9);
	st = vms_vmm_stats_find(s, 1, "odd_unit");
	assert_int_equal(st->value, 5);
	assert_false(st->has_unit);
	assert_int_equal(st->exponent, 0);
	assert_null(vms_vmm_stats_find(s, 1, "halt_wait_hist"));
	assert_null(vms_vmm_stats_find(s, 1, "not_in_schema"));

	/* vCPU 0: a negative value is no u64: left out */
	assert_int_equal(s->vcpus[0].nstats, 2);
	assert_int_equal(vms_vmm_stats_find(s, 0, "exits")->value, 344);
	assert_int_equal(vms_vmm_stats_find(s, 0, "guest_mode")->value, 0);
	assert_null(vms_vmm_stats_find(s, 0, "halt_wait_ns"));
	assert_null(vms_vmm_stats_find(s, 9, "exits"));

	/* the VM */
	assert_int_equal(s->nvm, 3);
	assert_string_equal(s->vm[0].name, "max_mmu_rmap_size");
	assert_int_equal(s->vm[0].type, VMS_STAT_PEAK);
	assert_int_equal(s->vm[0].value, 7);
	st = vms_vmm_stats_find(s, -1, "pages_bytes");
	assert_int_equal(st->unit, VMS_UNIT_BYTES);
	assert_int_equal(st->base, 2);
	assert_int_equal(st->exponent, 10);
	assert_null(vms_vmm_stats_find(s, -1, "exits"));
	assert_null(vms_vmm_stats_find(NULL, -1, "exits"));
	vms_vmm_stats_free(s);
	vms_vmm_stats_free(NULL);
}

static void test_old_qemu(void **state)
{
	struct fake f = { .greet = true, .old_qemu = true };
	struct vms_vmm_stats *s = (void *)1;
	struct vms_qmp *q;
	char err[256] = "";

	fake_start(&f);
	assert_int_equal(vms_qmp_connect(f.sock, 5000, &q, err, sizeof(err)), 0);
	assert_int_equal(vms_qmp_query_stats(q, 5000, &s, err, sizeof(err)), -EOPNOTSUPP);
	assert_null(s);
	assert_string_equal(err, "The command has not been found");
	vms_qmp_close(q);
	fake_stop(&f);
}

static void test_held_monitor(void **state)
{
	struct fake f = { .greet = false };
	struct vms_qmp *q = (void *)1;
	char err[256] = "";

	fake_start(&f);
	/* Someone else's monitor accepts the connection but never greets. */
	assert_int_equal(vms_qmp_connect(f.sock, 300, &q, err, sizeof(err)), -ETIMEDOUT);
	assert_null(q);
	assert_non_null(strstr(err, "reading from QEMU's QMP socket"));
	fake_stop(&f);

	/* Nobody there at all. */
	assert_int_equal(vms_qmp_connect("/nonexistent/qmp.sock", 100, &q, err, sizeof(err)),
			 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmp_option),   cmocka_unit_test(test_chardev_mon),
		cmocka_unit_test(test_odd_cmdlines), cmocka_unit_test(test_socket_of_self),
		cmocka_unit_test(test_query_stats),  cmocka_unit_test(test_old_qemu),
		cmocka_unit_test(test_held_monitor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
