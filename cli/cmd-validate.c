// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope validate: can this VM's CPU accounting be trusted? Reads every accounting
 * source of one VM twice (over --interval, or from two saved snapshots), shows their growth
 * side by side, and runs the checks of lib/acct/validate.c, each pass / warn / fail with
 * the reason in words. --calibrate runs the built-in test VM with a known load first and
 * prints every source's error against the guest's own count (cmd-validate-calibrate.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "validate.h"
#include "vmscope/analysis.h"
#include "vmscope/host.h"
#include "vmscope/json.h"
#include "vmscope/trace.h"
#include "vmscope/vcpu.h"

#define CMD "validate"

static const char usage_text[] =
	"Usage: vmscope validate [OPTIONS] [-p PID | -g NAME | -d DOMAIN]\n"
	"       vmscope validate --save-snapshot FILE [-p PID | -g NAME | -d DOMAIN]\n"
	"       vmscope validate --compare A B [--trace FILE]\n"
	"       vmscope validate --calibrate [--phase-time TIME] [-c VCPUS]\n"
	"\n"
	"Can this VM's CPU accounting be trusted? Reads every source of CPU time the host keeps\n"
	"for one VM - cgroup v1 cpuacct, cgroup v2 cpu.stat, /proc stat and schedstat of every\n"
	"thread, the host CPUs' /proc/stat guest columns, KVM's binary statistics, libvirt's\n"
	"cpu-stats and domstats, and a trace's vCPU states - at the start and the end of an\n"
	"interval, shows their growth side by side, and checks each pair that should agree\n"
	"against a tolerance derived from the sources' granularity. Every check says pass,\n"
	"info, warn, fail or skip, and what the difference means.\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID            the VM of this process\n"
	"  -g, --guest NAME         the VM with this name (QEMU -name, a libvirt domain)\n"
	"  -d, --domain NAME        a libvirt domain: also read libvirt's figures\n"
	"      --uri URI            libvirt connection [qemu:///system]\n"
	"  -i, --interval TIME      time between the two readings [10s]\n"
	"      --save-snapshot FILE\n"
	"                           read every source once, write it to FILE, and exit\n"
	"      --compare A B        compare two saved snapshots instead of reading now\n"
	"      --trace FILE         also compare the vCPU states of this trace (recorded by\n"
	"                           vmscope record with the mono clock over the interval)\n"
	"      --calibrate          run the built-in test VM (baseline, 75 %%, 90 %% busy,\n"
	"                           vCPUs pinned) and print each source's error per phase\n"
	"      --phase-time TIME    with --calibrate: length of each phase [10s]\n"
	"  -c, --vcpus N            with --calibrate: vCPUs [number of host CPUs, at most 4]\n"
	"  -f, --format FMT         table or json [table]\n"
	"  -q, --quiet              table: only the checks that warn or fail, and the verdict\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Without -p/-g/-d, the only VM of the host. SIGINT ends the interval early and\n"
	"validates what was seen. See doc/vmscope-validate.md for every source and check.\n"
	"\n"
	"Exit status: 0 when no check failed (warnings allowed), 3 when a check failed, 1 when\n"
	"the sources could not be read (no such VM, a bad snapshot file), 2 for a wrong\n"
	"command line.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_args(int argc, char **argv, struct validate_args *a)
{
	enum { OPT_SAVE = 256, OPT_COMPARE, OPT_TRACE, OPT_CALIBRATE, OPT_PHASE_TIME, OPT_URI };
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "guest", required_argument, NULL, 'g' },
		{ "domain", required_argument, NULL, 'd' },
		{ "uri", required_argument, NULL, OPT_URI },
		{ "interval", required_argument, NULL, 'i' },
		{ "save-snapshot", required_argument, NULL, OPT_SAVE },
		{ "compare", required_argument, NULL, OPT_COMPARE },
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "calibrate", no_argument, NULL, OPT_CALIBRATE },
		{ "phase-time", required_argument, NULL, OPT_PHASE_TIME },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->interval_ns = 10000000000ULL;
	a->phase_ns = 10000000000ULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:g:d:i:c:f:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (cli_parse_uint(optarg, 4194304, &u) || !u)
				return cli_usage_error(CMD, "bad --pid '%s'", optarg);
			a->pid = (int)u;
			break;
		case 'g':
			a->guest = optarg;
			break;
		case 'd':
			a->domain = optarg;
			break;
		case OPT_URI:
			a->uri = optarg;
			break;
		case 'i':
			if (cli_parse_duration(optarg, &a->interval_ns) || !a->interval_ns)
				return cli_usage_error(CMD, "bad --interval '%s' (e.g. 10s)",
						       optarg);
			break;
		case OPT_SAVE:
			a->save = optarg;
			break;
		case OPT_COMPARE:
			if (optind >= argc)
				return cli_usage_error(CMD, "--compare needs two snapshot files");
			a->cmp_a = optarg;
			a->cmp_b = argv[optind++];
			break;
		case OPT_TRACE:
			a->trace = optarg;
			break;
		case OPT_CALIBRATE:
			a->calibrate = true;
			break;
		case OPT_PHASE_TIME:
			if (cli_parse_duration(optarg, &a->phase_ns) || a->phase_ns < 1000000000ULL)
				return cli_usage_error(CMD, "bad --phase-time '%s' (1s or more)",
						       optarg);
			break;
		case 'c':
			if (cli_parse_uint(optarg, 64, &u) || !u)
				return cli_usage_error(CMD, "bad --vcpus '%s' (1-64)", optarg);
			a->vcpus = (unsigned int)u;
			break;
		case 'f':
			if ((ret = cli_format_option(CMD, optarg, false, &a->format)))
				return ret;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, &a->quiet, &a->verbose);
			if (ret)
				return ret;
			break;
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if ((a->pid != 0) + (a->guest != NULL) + (a->domain != NULL) > 1)
		return cli_usage_error(CMD, "give one of -p, -g and -d");
	if ((a->save != NULL) + (a->cmp_a != NULL) + a->calibrate > 1)
		return cli_usage_error(CMD, "--save-snapshot, --compare and --calibrate exclude "
					    "each other");
	if (a->cmp_a && (a->pid || a->guest || a->domain))
		return cli_usage_error(CMD,
				       "--compare reads the VM from the snapshots: no -p/-g/-d");
	return 0;
}

/* ---- finding the VM ---- */

/* A libvirt domain's QEMU pid, from libvirt's own pid file. */
static int libvirt_pid(const char *domain)
{
	char path[512], buf[32];
	FILE *f;
	int pid = 0;

	if (strchr(domain, '/'))
		return 0;
	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", domain);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		pid = atoi(buf);
	fclose(f);
	return pid > 0 && kill(pid, 0) == 0 ? pid : 0;
}

int validate_find_vm(struct validate_args *a)
{
	struct vms_host_vm *vms = NULL;
	size_t n = 0, found = 0;
	int ret, pid = 0;

	if (a->domain) {
		a->pid = libvirt_pid(a->domain);
		if (!a->pid)
			return cli_error(CMD,
					 "libvirt domain '%s' is not running (no live "
					 "/run/libvirt/qemu/%s.pid): start it, or check the "
					 "name with 'virsh list'",
					 a->domain, a->domain);
		return 0;
	}
	ret = vms_host_vms_list(NULL, &vms, &n);
	if (ret)
		return cli_error(CMD, "cannot list the host's processes: %s", vms_strerror(ret));
	for (size_t i = 0; i < n; i++) {
		if ((a->pid && vms[i].pid == a->pid) ||
		    (a->guest && !strcmp(vms[i].name, a->guest)) || (!a->pid && !a->guest)) {
			pid = vms[i].pid;
			found++;
		}
	}
	vms_host_vms_free(vms, n);
	if (a->pid) {
		if (kill(a->pid, 0) && errno == ESRCH)
			return cli_error(CMD, "no process %d", a->pid);
		/* Not a VM: validate its threads anyway; the report says what is missing. */
		return 0;
	}
	if (a->guest && !found && libvirt_pid(a->guest)) {
		a->domain = a->guest;
		a->pid = libvirt_pid(a->guest);
		return 0;
	}
	if (!found)
		return cli_error(CMD,
				 a->guest ? "no VM named '%s' on this host (see 'vmscope stat')"
					  : "no VM runs on this host%s",
				 a->guest ? a->guest : "");
	if (found > 1)
		return cli_error(
			CMD,
			a->guest ? "%zu VMs are named '%s': choose one with -p PID"
				 : "%zu VMs run on this host: choose one with -p, -g or -d%s",
			found, a->guest ? a->guest : "");
	a->pid = pid;
	if (!a->domain && libvirt_pid(a->guest ? a->guest : "") == pid)
		a->domain = a->guest;
	return 0;
}

int validate_snapshot(const struct validate_args *a, struct vms_acct **out)
{
	struct vms_acct_opts o = { .sz = sizeof(o),
				   .libvirt_domain = a->domain,
				   .libvirt_uri = a->uri };
	int ret = vms_acct_read(a->pid, &o, out);

	if (ret == -ESRCH)
		return cli_error(CMD, "process %d is gone: the VM stopped", a->pid);
	if (ret)
		return cli_error(CMD, "reading the accounting sources of process %d: %s", a->pid,
				 vms_strerror(ret));
	return 0;
}

static int load_snapshot(const char *path, struct vms_acct **out)
{
	char msg[256];
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret;

	if (!f)
		return cli_error(CMD, "cannot open snapshot %s: %s", path, strerror(errno));
	for (;;) {
		size_t n;

		if (len == cap) {
			char *p;

			cap = cap ? cap * 2 : 65536;
			if (cap > (64u << 20)) {
				fclose(f);
				free(buf);
				return cli_error(CMD, "%s: larger than 64 MiB, not a snapshot",
						 path);
			}
			p = realloc(buf, cap);
			if (!p) {
				fclose(f);
				free(buf);
				return cli_error(CMD, "out of memory");
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	ret = ferror(f);
	fclose(f);
	if (ret) {
		free(buf);
		return cli_error(CMD, "reading %s failed", path);
	}
	ret = vms_acct_parse(buf, len, out, msg, sizeof(msg));
	free(buf);
	if (ret == -VMS_E_PARSE)
		return cli_error(CMD, "%s: %s (write snapshots with --save-snapshot)", path, msg);
	if (ret)
		return cli_error(CMD, "%s: %s", path, vms_strerror(ret));
	return 0;
}

static int save_snapshot(const struct validate_args *a)
{
	struct vms_acct *s;
	char tmp[4096];
	FILE *f;
	int ret;

	if ((ret = validate_find_vm((struct validate_args *)a)) || (ret = validate_snapshot(a, &s)))
		return ret;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", a->save, (int)getpid());
	f = fopen(tmp, "we");
	if (!f) {
		vms_acct_free(s);
		return cli_error(CMD, "cannot write %s: %s", a->save, strerror(errno));
	}
	ret = vms_acct_write(s, f);
	if (fclose(f) || ret || rename(tmp, a->save)) {
		unlink(tmp);
		vms_acct_free(s);
		return cli_error(CMD, "writing %s failed: %s", a->save, strerror(errno));
	}
	if (!a->quiet)
		fprintf(stderr, "vmscope validate: saved a snapshot of %s (pid %d) to %s\n",
			vms_acct_str(s, "meta.name") ? vms_acct_str(s, "meta.name") : "process",
			a->pid, a->save);
	vms_acct_free(s);
	return 0;
}

/* ---- the trace's vCPU states over the interval ---- */

static int trace_states(const char *path, const struct vms_acct *a, const struct vms_acct *b,
			struct vms_acct **out)
{
	struct vms_trace_opts topts = { .sz = sizeof(topts) };
	struct vms_vcpu_opts o = { .sz = sizeof(o) };
	uint64_t from = 0, to = 0, first, last;
	struct vms_trace *tr = NULL;
	struct vms_session *s = NULL;
	const struct vms_vcpu_thread *th;
	struct vms_acct *t;
	void *priv;
	size_t n;
	int ret;

	*out = NULL;
	vms_acct_get(a, "meta.mono_ns", &from);
	vms_acct_get(b, "meta.mono_ns", &to);
	ret = vms_trace_open(path, &topts, &tr);
	if (ret)
		return cli_error(CMD, "%s", vms_trace_open_error());
	if (strcmp(vms_trace_info(tr)->clock, "mono")) {
		vms_trace_close(tr);
		return cli_error(CMD,
				 "%s uses the '%s' trace clock: validate needs CLOCK_MONOTONIC "
				 "times to match the snapshots; record with 'vmscope record "
				 "--clock mono'",
				 path, vms_trace_info(tr)->clock);
	}
	o.from = from;
	o.to = to;
	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_vcpu_ops, &o, &priv)) ||
	    (ret = vms_session_run(s, NULL, NULL)) < 0) {
		const char *err = s ? vms_session_error(s) : "";

		cli_error(CMD, "%s: %s", path, *err ? err : vms_strerror(ret));
		vms_session_free(s);
		vms_trace_close(tr);
		return CLI_EXIT_FAIL;
	}
	t = vms_acct_new();
	if (!t) {
		vms_session_free(s);
		vms_trace_close(tr);
		return cli_error(CMD, "out of memory");
	}
	if (vms_trace_span(tr, &first, &last)) {
		uint64_t lo = first > from ? first : from, hi = last < to ? last : to;

		vms_acct_set(t, "trace.covered_ns", hi > lo ? hi - lo : 0);
	}
	th = vms_vcpu_threads(priv, &n);
	for (size_t i = 0; i < n; i++) {
		char key[64];
		uint64_t run = 0;

		for (int st = 0; st < VMS_VCPU_NSTATES; st++)
			if (vms_vcpu_state_on_cpu((enum vms_vcpu_state)st))
				run += th[i].ns[st];
		snprintf(key, sizeof(key), "trace.task.%d.run_ns", th[i].tid);
		vms_acct_set(t, key, run);
		snprintf(key, sizeof(key), "trace.task.%d.wait_ns", th[i].tid);
		vms_acct_set(t, key, th[i].ns[VMS_VCPU_PREEMPTED] + th[i].ns[VMS_VCPU_WAITING]);
		snprintf(key, sizeof(key), "trace.task.%d.uncertain_ns", th[i].tid);
		vms_acct_set(t, key, th[i].uncertain_ns);
	}
	vms_session_free(s);
	vms_trace_close(tr);
	*out = t;
	return 0;
}

/* ---- output ---- */

static void print_wrapped(const char *text, int indent, int width)
{
	const char *p = text;

	while (*p) {
		int n = (int)strlen(p), cut = n;

		if (n > width - indent) {
			cut = width - indent;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (!cut)
				cut = width - indent;
		}
		printf("%*s%.*s\n", indent, "", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void fmt_s(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", v);
}

void validate_print_checks(const struct vms_acct_report *r, bool quiet)
{
	unsigned int count[VMS_CHECK_SKIP + 1] = { 0 };
	bool printed = false;

	for (size_t i = 0; i < r->nchecks; i++) {
		const struct vms_check *k = &r->checks[i];
		char l[32], rv[32], tol[32];

		count[k->status]++;
		if (quiet && k->status != VMS_CHECK_WARN && k->status != VMS_CHECK_FAIL)
			continue;
		printed = true;
		fmt_s(l, sizeof(l), k->lhs_s);
		fmt_s(rv, sizeof(rv), k->rhs_s);
		fmt_s(tol, sizeof(tol), k->tol_s);
		printf("%-5s %s: %s\n", vms_check_status_name(k->status), k->id, k->what);
		if (!isnan(k->lhs_s) && isnan(k->rhs_s) && isinf(k->tol_s))
			printf("      %s %s s\n", k->lhs, l);
		else if (!isnan(k->lhs_s) && isnan(k->rhs_s))
			printf("      %s %s s (limit %s s)\n", k->lhs, l, tol);
		else if (!isnan(k->lhs_s) || !isnan(k->rhs_s))
			printf("      %s %s s, %s %s s (tolerance %s s)\n", k->lhs, l, k->rhs, rv,
			       tol);
		if (k->explain[0])
			print_wrapped(k->explain, 6, 100);
	}
	printf("%s%u pass, %u info, %u warn, %u fail, %u skip: %s\n", printed ? "\n" : "",
	       count[VMS_CHECK_PASS], count[VMS_CHECK_INFO], count[VMS_CHECK_WARN],
	       count[VMS_CHECK_FAIL], count[VMS_CHECK_SKIP],
	       r->fails	  ? "FAIL - this VM's accounting sources disagree"
	       : r->warns ? "pass with warnings"
			  : "pass");
}

static void print_table(const struct vms_acct_report *r, const struct vms_acct *b, bool quiet)
{
	const char *kernel = vms_acct_str(b, "meta.kernel"), *kvm = vms_acct_str(b, "meta.kvm");
	uint64_t hz = 0, uhz = 0;

	vms_acct_get(b, "meta.config.hz", &hz);
	vms_acct_get(b, "meta.user_hz", &uhz);
	printf("VM %s (pid %d), interval %.3f s; kernel %s, KVM %s, HZ %s%" PRIu64
	       ", USER_HZ %" PRIu64 "\n",
	       r->name[0] ? r->name : "?", r->pid, r->interval_s, kernel ? kernel : "?",
	       kvm ? kvm : "?", hz ? "" : "unknown ", hz, uhz);
	if (!quiet) {
		printf("\n%-10s %-44s %12s %9s  %s\n", "SOURCE", "FIELD", "SECONDS", "% TIME",
		       "GRANULARITY");
		for (size_t i = 0; i < r->nrows; i++) {
			const struct vms_acct_row *w = &r->rows[i];

			printf("%-10s %-44s %12.3f %8.1f%%  %s\n", w->source, w->field, w->value_s,
			       100.0 * w->value_s / r->interval_s, w->granularity);
		}
		printf("\n");
	}
	if (r->npairs) {
		printf("libvirt, field by field at the second reading, beside its source:\n");
		printf("%-28s %14s   %-38s %14s  %s\n", "LIBVIRT", "VALUE", "SOURCE", "VALUE",
		       "MATCH");
		for (size_t i = 0; i < r->npairs; i++) {
			const struct vms_acct_pair *p = &r->pairs[i];

			printf("%-28s %14.6f   %-38s %14.6f  %s\n", p->libvirt, p->libvirt_v,
			       p->source, p->source_v, p->match ? "yes" : "NO");
		}
		printf("\n");
	}
	validate_print_checks(r, quiet);
}

static void json_double(struct vms_json *j, const char *key, double v)
{
	if (isnan(v))
		vms_json_null(j, key);
	else
		vms_json_double(j, key, v);
}

void validate_json_report(struct vms_json *j, const struct vms_acct_report *r)
{
	vms_json_double(j, "interval_s", r->interval_s);
	vms_json_array_begin(j, "sources");
	for (size_t i = 0; i < r->nrows; i++) {
		vms_json_object_begin(j, NULL);
		vms_json_string(j, "source", r->rows[i].source);
		vms_json_string(j, "field", r->rows[i].field);
		vms_json_double(j, "seconds", r->rows[i].value_s);
		vms_json_string(j, "granularity", r->rows[i].granularity);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_array_begin(j, "checks");
	for (size_t i = 0; i < r->nchecks; i++) {
		const struct vms_check *k = &r->checks[i];

		vms_json_object_begin(j, NULL);
		vms_json_string(j, "id", k->id);
		vms_json_string(j, "status", vms_check_status_name(k->status));
		vms_json_string(j, "what", k->what);
		vms_json_string(j, "lhs", k->lhs);
		json_double(j, "lhs_s", k->lhs_s);
		vms_json_string(j, "rhs", k->rhs);
		json_double(j, "rhs_s", k->rhs_s);
		json_double(j, "tolerance_s", isinf(k->tol_s) ? NAN : k->tol_s);
		vms_json_string(j, "explain", k->explain);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_array_begin(j, "libvirt_fields");
	for (size_t i = 0; i < r->npairs; i++) {
		const struct vms_acct_pair *p = &r->pairs[i];

		vms_json_object_begin(j, NULL);
		vms_json_string(j, "libvirt", p->libvirt);
		vms_json_double(j, "libvirt_value", p->libvirt_v);
		vms_json_string(j, "source", p->source);
		vms_json_double(j, "source_value", p->source_v);
		vms_json_double(j, "tolerance", p->tol);
		vms_json_bool(j, "match", p->match);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_u64(j, "fails", r->fails);
	vms_json_u64(j, "warns", r->warns);
	vms_json_string(j, "verdict", r->fails ? "fail" : r->warns ? "warn" : "pass");
}

static void print_json(const struct vms_acct_report *r, const struct vms_acct *b)
{
	struct vms_json j;
	const char *s;
	uint64_t v;

	vms_json_init(&j, stdout, true);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "pid", (uint64_t)r->pid);
	vms_json_string(&j, "name", r->name);
	if ((s = vms_acct_str(b, "meta.kernel")))
		vms_json_string(&j, "kernel", s);
	if ((s = vms_acct_str(b, "meta.kvm")))
		vms_json_string(&j, "kvm", s);
	if (!vms_acct_get(b, "meta.config.hz", &v))
		vms_json_u64(&j, "hz", v);
	if (!vms_acct_get(b, "meta.user_hz", &v))
		vms_json_u64(&j, "user_hz", v);
	validate_json_report(&j, r);
	vms_json_object_end(&j);
	vms_json_finish(&j);
	fputc('\n', stdout);
}

static int wait_interval(const struct validate_args *a)
{
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t left = a->interval_ns;
	bool tty = isatty(STDERR_FILENO) && !a->quiet;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (left && !interrupted) {
		uint64_t step = left < 200000000ULL ? left : 200000000ULL;
		struct timespec ts = { (time_t)(step / 1000000000ULL),
				       (long)(step % 1000000000ULL) };

		nanosleep(&ts, NULL);
		left -= step;
		if (tty)
			fprintf(stderr, "\rvmscope validate: %.1f s left ", (double)left * 1e-9);
	}
	if (tty)
		fprintf(stderr, "\r%40s\r", "");
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return 0;
}

static int cmd_validate_run(int argc, char **argv)
{
	struct vms_acct *sa = NULL, *sb = NULL, *tr = NULL;
	struct vms_acct_report *r = NULL;
	struct validate_args a;
	char msg[256];
	int ret;

	if ((ret = parse_args(argc, argv, &a)))
		return ret;
	cli_setup_log(CMD, a.verbose);
	if (a.calibrate)
		return validate_calibrate(&a);
	if (a.save)
		return save_snapshot(&a);
	if (a.cmp_a) {
		if ((ret = load_snapshot(a.cmp_a, &sa)) || (ret = load_snapshot(a.cmp_b, &sb)))
			goto out;
	} else {
		if ((ret = validate_find_vm(&a)) || (ret = validate_snapshot(&a, &sa)))
			goto out;
		wait_interval(&a);
		if ((ret = validate_snapshot(&a, &sb)))
			goto out;
	}
	if (a.trace && (ret = trace_states(a.trace, sa, sb, &tr)))
		goto out;
	ret = vms_acct_validate(sa, sb, tr, &r, msg, sizeof(msg));
	if (ret) {
		ret = cli_error(CMD, "%s", ret == -EINVAL ? msg : vms_strerror(ret));
		goto out;
	}
	if (a.format == CLI_FORMAT_JSON)
		print_json(r, sb);
	else
		print_table(r, sb, a.quiet);
	ret = r->fails ? VALIDATE_EXIT_CHECK_FAILED : 0;
out:
	vms_acct_report_free(r);
	vms_acct_free(sa);
	vms_acct_free(sb);
	vms_acct_free(tr);
	return ret;
}

const struct vms_cmd cmd_validate = {
	.name = "validate",
	.summary =
		"check a VM's CPU accounting sources against each other, and say why they differ",
	.usage = usage_text,
	.run = cmd_validate_run,
};
