// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope stat: the VMs of this host and what can be read about them from the outside:
 * vCPU threads and their CPU, guest and run-queue time (procfs), and the per-VM debugfs
 * counters where the kernel lets them be read. Once (--once) or every interval, as a
 * table, CSV or JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vmscope/host.h"
#include "vmscope/json.h"
#include "vmscope/sampler.h"
#include "vmscope/stats.h"

#define CMD "stat"

static const char usage_text[] =
	"Usage: vmscope stat [OPTIONS]\n"
	"\n"
	"List the KVM virtual machines of this host with their vCPU threads and the counters\n"
	"that can be read from outside the VMM: user, system and guest time (procfs, tick\n"
	"based), exact on-CPU and run-queue time (schedstat), and the per-VM KVM debugfs\n"
	"counters where the kernel allows reading them; kvm trace events counted in the kernel\n"
	"per vCPU thread (exits to the VMM by reason, MMIO, port I/O, hypercalls, wake-ups:\n"
	"perf counters, no tracing); then each host CPU's time by kind,\n"
	"with guest and steal time apart (top and vmstat fold guest into user). Without\n"
	"--once, prints the same every interval with the growth since the previous one.\n"
	"\n"
	"Options:\n"
	"  -1, --once               print once and exit\n"
	"  -s, --interval TIME      time between reports [1s]\n"
	"  -n, --count N            stop after N reports [until SIGINT]\n"
	"  -p, --pid PID            only the VM of this process\n"
	"  -g, --guest NAME         only VMs with this name\n"
	"  -f, --format FMT         table, csv or json [table]\n"
	"      --no-events          do not count kvm trace events per vCPU thread\n"
	"  -x, --exit-reasons       exits by reason per vCPU: kvm_exit by VMX/SVM exit reason,\n"
	"                           exits to the VMM by KVM_EXIT_* reason (a hist trigger in\n"
	"                           the kernel, else traced in an instance of vmscope's own)\n"
	"  -l, --log                log: one line per VM, vCPU and field with a timestamp\n"
	"                           (text, CSV with one header, or JSON lines by --format)\n"
	"  -F, --fields REGEX       only the fields whose key this regex matches (table and\n"
	"                           --log; keys: cpu.run_s, kvm.exits, events.kvm_exit, ...)\n"
	"  -z, --skip-zero          leave out rows whose rates (or values) are all 0\n"
	"  -o, --output FILE        with --log: append to FILE instead of stdout\n"
	"      --rotate-size BYTES  rotate FILE to FILE.1 ... once it is this large\n"
	"      --rotate-time TIME   rotate FILE once it is this old\n"
	"      --keep N             rotated files kept [5]\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0, 1 when no VM matched -p/-g, 2 for a wrong command line.\n";

struct stat_args {
	bool once, verbose, events, reasons;
	bool log, skip_zero, has_fields;
	regex_t fields;			 /* --fields: which log rows */
	const char *output;		 /* --output: log into this file, not stdout */
	uint64_t rotate_size, rotate_ns; /* rotate --output past this size or age; 0: never */
	unsigned int keep;		 /* rotated files kept */
	uint64_t interval_ns;
	unsigned long long count;
	int pid;
	const char *guest;
	enum cli_format format;
};

static int parse_args(int argc, char **argv, struct stat_args *a)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, '1' },
		{ "interval", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "pid", required_argument, NULL, 'p' },
		{ "guest", required_argument, NULL, 'g' },
		{ "format", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "no-events", no_argument, NULL, 'E' },
		{ "exit-reasons", no_argument, NULL, 'x' },
		{ "log", no_argument, NULL, 'l' },
		{ "fields", required_argument, NULL, 'F' },
		{ "skip-zero", no_argument, NULL, 'z' },
		{ "output", required_argument, NULL, 'o' },
		{ "rotate-size", required_argument, NULL, 'S' },
		{ "rotate-time", required_argument, NULL, 'T' },
		{ "keep", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->events = true;
	a->keep = 5;
	a->interval_ns = 1000000000ULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "1s:n:p:g:f:vhlF:zo:x", longopts, NULL)) != -1) {
		switch (c) {
		case '1':
			a->once = true;
			break;
		case 's':
			if (cli_parse_duration(optarg, &a->interval_ns) ||
			    a->interval_ns < 10000000ULL)
				return cli_usage_error(CMD,
						       "--interval takes a time of at least "
						       "10ms, not '%s'",
						       optarg);
			break;
		case 'n':
			if (cli_parse_uint(optarg, 1ULL << 40, &a->count) || !a->count)
				return cli_usage_error(
					CMD, "--count takes a positive number, not '%s'", optarg);
			break;
		case 'p':
			if (cli_parse_uint(optarg, 1ULL << 22, &u) || !u)
				return cli_usage_error(CMD, "--pid takes a process id, not '%s'",
						       optarg);
			a->pid = (int)u;
			break;
		case 'g':
			a->guest = optarg;
			break;
		case 'f':
			if (cli_format_option(CMD, optarg, true, &a->format))
				return CLI_EXIT_USAGE;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'E':
			a->events = false;
			break;
		case 'x':
			a->reasons = true;
			break;
		case 'l':
			a->log = true;
			break;
		case 'z':
			a->skip_zero = true;
			break;
		case 'F': {
			int err;

			if (a->has_fields)
				regfree(&a->fields);
			err = regcomp(&a->fields, optarg, REG_EXTENDED | REG_NOSUB);
			if (err) {
				char why[128];

				regerror(err, &a->fields, why, sizeof(why));
				return cli_usage_error(CMD, "bad --fields regex '%s': %s", optarg,
						       why);
			}
			a->has_fields = true;
			break;
		}
		case 'o':
			a->output = optarg;
			break;
		case 'S':
			if (cli_parse_uint(optarg, UINT64_MAX / 2, &u) || u < 1024)
				return cli_usage_error(
					CMD, "bad --rotate-size '%s' (bytes, 1024 or more)",
					optarg);
			a->rotate_size = u;
			break;
		case 'T':
			if (cli_parse_duration(optarg, &a->rotate_ns) ||
			    a->rotate_ns < 1000000000ULL)
				return cli_usage_error(CMD, "bad --rotate-time '%s' (1s or more)",
						       optarg);
			break;
		case 'k':
			if (cli_parse_uint(optarg, 1000, &u) || !u)
				return cli_usage_error(CMD, "bad --keep '%s' (1-1000)", optarg);
			a->keep = (unsigned int)u;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, NULL, NULL);
			if (ret)
				return ret;
			break;
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (!a->log && (a->output || a->rotate_size || a->rotate_ns))
		return cli_usage_error(CMD, "--output and --rotate-* go with --log");
	if (!a->log && a->format != CLI_FORMAT_TABLE && (a->has_fields || a->skip_zero))
		return cli_usage_error(CMD, "--fields and --skip-zero go with the table or --log");
	if ((a->rotate_size || a->rotate_ns) && !a->output)
		return cli_usage_error(CMD, "--rotate-size and --rotate-time rotate --output FILE");
	return 0;
}

/* What the debugfs folder of @vm offers: counts of readable and unreadable files. */
struct debugfs_summary {
	size_t files, readable;
	int first_err;
	struct vms_debugfs_entry *entries;
	size_t count;
};

static void debugfs_summarize(const struct vms_host_vm *vm, struct debugfs_summary *s)
{
	memset(s, 0, sizeof(*s));
	if (!vm->debugfs[0] || vm->debugfs_err)
		return;
	if (vms_debugfs_read_vm(vm->debugfs, &s->entries, &s->count))
		return;
	for (size_t i = 0; i < s->count; i++) {
		s->files++;
		if (!s->entries[i].err)
			s->readable++;
		else if (!s->first_err)
			s->first_err = s->entries[i].err;
	}
}

static const char *debugfs_explain(int err)
{
	if (err == -EPERM || err == -EACCES)
		return "the kernel refuses reads of KVM's debugfs counters here (lockdown or "
		       "restricted debugfs); the same counters are reachable through the VMM "
		       "(QEMU's QMP query-stats)";
	return vms_strerror(err);
}

/* Why a VM's KVM counters cannot be shown, for people. */
static const char *kvm_explain(int err)
{
	if (err == -ENOENT)
		return "the VMM keeps no KVM statistics descriptor open (QEMU opens one only "
		       "while answering query-stats)";
	if (err == -EPERM || err == -EACCES)
		return "no permission to take the VMM's statistics descriptor (needs root or "
		       "CAP_SYS_PTRACE)";
	if (err == -ENOSYS)
		return "this kernel lacks pidfd_getfd (Linux 5.6)";
	return vms_strerror(err);
}

static const char *kvm_source_text(const char *src)
{
	if (src && !strcmp(src, "qmp"))
		return "through QEMU's QMP query-stats";
	if (src && !strcmp(src, "libvirt"))
		return "through libvirt's domstats";
	return "through the VMM's statistics descriptors";
}

static const char *events_explain(const struct vms_sample_vm *v)
{
	if (v->events_err == -EACCES || v->events_err == -EPERM)
		return "not permitted (needs root or perf_event_paranoid <= 1)";
	return v->events_msg[0] ? v->events_msg : vms_strerror(v->events_err);
}

static bool field_wanted(const struct stat_args *a, const struct vms_field_info *f)
{
	return !a->has_fields || !regexec(&a->fields, f->key, 0, NULL, 0);
}

/* ---- the table ---- */

#define MAX_COLS 64

/* The columns of one block of a VM's table: the wanted fields of @src that some vCPU of
 * the VM knows. */
static size_t table_columns(const struct stat_args *a, const struct vms_sampler *s,
			    const struct vms_sample_vm *v, enum vms_field_source src,
			    size_t cols[MAX_COLS])
{
	size_t n = 0;

	for (size_t k = 0; k < vms_sampler_nfields(s) && n < MAX_COLS; k++) {
		const struct vms_field_info *f = vms_sampler_field(s, k);

		if (f->source == src && field_wanted(a, f) && !isnan(v->sum[k]))
			cols[n++] = k;
	}
	return n;
}

/* Whether a row shows only zeros (or nothing known): -z leaves it out. */
static bool row_zero(const double *val, const double *rate, bool rates, const size_t *cols,
		     size_t n)
{
	for (size_t c = 0; c < n; c++) {
		double x = rates ? rate[cols[c]] : val[cols[c]];

		if (!isnan(x) && x != 0)
			return false;
	}
	return true;
}

static void print_cell(const struct vms_field_info *f, double val, double rate, bool rates)
{
	double x = rates ? rate : val;

	if (isnan(x))
		printf(" %9s", "-");
	else if (f->seconds && rates)
		printf(" %8.1f%%", 100 * x);
	else if (f->seconds)
		printf(" %9.3f", x);
	else
		printf(" %9.0f", x);
}

static void print_block(const struct stat_args *a, const struct vms_sampler *s,
			const struct vms_sample_vm *v, enum vms_field_source src, bool rates,
			bool thread_cols, const char *heading)
{
	size_t cols[MAX_COLS], n = table_columns(a, s, v, src, cols);
	char title[32];

	if (!n)
		return;
	printf("  %s:\n", heading);
	printf("  %-4s", "vcpu");
	if (thread_cols)
		printf(" %-8s %-10s %4s", "tid", "thread", "cpu");
	for (size_t c = 0; c < n; c++) {
		const struct vms_field_info *f = vms_sampler_field(s, cols[c]);

		snprintf(title, sizeof(title), "%s%s", f->title,
			 rates ? (f->seconds ? "%" : "/s") : (f->seconds ? "(s)" : ""));
		printf(" %9s", title);
	}
	printf("\n");
	for (size_t j = 0; j < v->nvcpus; j++) {
		const struct vms_sample_vcpu *sv = &v->vcpus[j];
		const struct vms_host_vcpu *t = sv->thread;
		char idx[12] = "?";

		if (a->skip_zero && row_zero(sv->value, sv->rate, rates, cols, n))
			continue;
		if (t->vcpu >= 0)
			snprintf(idx, sizeof(idx), "%d", t->vcpu);
		printf("  %-4s", idx);
		if (thread_cols)
			printf(" %-8d %-10s %4d", t->tid, t->comm, t->last_cpu);
		for (size_t c = 0; c < n; c++)
			print_cell(vms_sampler_field(s, cols[c]), sv->value[cols[c]],
				   sv->rate[cols[c]], rates);
		printf("\n");
	}
	/* The VM's sum, which is all kvm_stat shows. */
	if (v->nvcpus > 1 && !(a->skip_zero && row_zero(v->sum, v->sum_rate, rates, cols, n))) {
		printf("  %-4s", "all");
		if (thread_cols)
			printf(" %-8s %-10s %4s", "", "", "");
		for (size_t c = 0; c < n; c++)
			print_cell(vms_sampler_field(s, cols[c]), v->sum[cols[c]],
				   v->sum_rate[cols[c]], rates);
		printf("\n");
	}
}

/* A reason's key for --fields and --log: "reasons.kvm_exit.HLT", "reasons.userspace_exit.MMIO"
 * (a code without a name is its number). */
static const char *reason_key(const struct vms_sample_reason *r, char *buf, size_t len)
{
	if (r->name)
		snprintf(buf, len, "reasons.%s.%s", vms_reason_kind_name(r->kind), r->name);
	else
		snprintf(buf, len, "reasons.%s.%" PRIu64, vms_reason_kind_name(r->kind), r->code);
	return buf;
}

/* The reason @like of vCPU @v, or NULL. */
static const struct vms_sample_reason *vcpu_reason(const struct vms_sample_vcpu *v,
						   const struct vms_sample_reason *like)
{
	for (size_t i = 0; i < v->nreasons; i++)
		if (v->reasons[i].kind == like->kind && v->reasons[i].code == like->code)
			return &v->reasons[i];
	return NULL;
}

#define REASON_VCPU_COLS 8

/* Rows: the VM's exit reasons; columns: the VM's sum, then its first vCPUs. */
static void print_reasons(const struct stat_args *a, const struct vms_sample *smp,
			  const struct vms_sample_vm *v, bool rates)
{
	size_t ncols = v->nvcpus < REASON_VCPU_COLS ? v->nvcpus : REASON_VCPU_COLS;
	char key[128], title[16];

	if (!v->nreasons)
		return;
	printf("  exits by reason (%s), %s:\n",
	       !strcmp(smp->reasons_backend, "hist") ? "counted in the kernel by a hist trigger"
						     : "traced and counted by vmscope",
	       rates ? "per second over the interval" : "counts since vmscope began counting");
	printf("  %-40s %10s", "reason", rates ? "all/s" : "all");
	for (size_t j = 0; j < ncols; j++) {
		snprintf(title, sizeof(title), "vcpu%d", v->vcpus[j].thread->vcpu);
		printf(" %9s", title);
	}
	if (ncols < v->nvcpus)
		printf("  (first %zu vCPUs; all in --format json)", ncols);
	printf("\n");
	for (size_t i = 0; i < v->nreasons; i++) {
		const struct vms_sample_reason *r = &v->reasons[i];
		double x = rates ? r->rate : r->value;
		const char *k = reason_key(r, key, sizeof(key));

		if (a->has_fields && regexec(&a->fields, k, 0, NULL, 0))
			continue;
		if (a->skip_zero && (isnan(x) || x == 0))
			continue;
		printf("  %-40s", k + strlen("reasons."));
		if (isnan(x))
			printf(" %10s", "-");
		else
			printf(" %10.0f", x);
		for (size_t j = 0; j < ncols; j++) {
			const struct vms_sample_reason *vr = vcpu_reason(&v->vcpus[j], r);
			double y = vr ? (rates ? vr->rate : vr->value) : 0;

			if (isnan(y))
				printf(" %9s", "-");
			else
				printf(" %9.0f", y);
		}
		printf("\n");
	}
}

static void print_debugfs(const struct vms_host_vm *vm)
{
	struct debugfs_summary ds;

	if (!vm->debugfs[0]) {
		printf("  debugfs: no folder for this VM (is debugfs mounted? mount -t debugfs "
		       "none /sys/kernel/debug)\n");
		return;
	}
	if (vm->debugfs_err) {
		printf("  debugfs %s: %s\n", vm->debugfs, vms_strerror(vm->debugfs_err));
		return;
	}
	debugfs_summarize(vm, &ds);
	printf("  debugfs %s: %zu of %zu files readable", vm->debugfs, ds.readable, ds.files);
	if (ds.first_err)
		printf("; the others: %s", debugfs_explain(ds.first_err));
	printf("\n");
	for (size_t k = 0; k < ds.count; k++)
		if (!ds.entries[k].err && !strchr(ds.entries[k].name, '/'))
			printf("    %-24s %" PRIu64 "\n", ds.entries[k].name, ds.entries[k].value);
	free(ds.entries);
}

static void print_table(const struct stat_args *a, const struct vms_sampler *s)
{
	const struct vms_sample *smp = vms_sampler_sample(s);

	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];
		const struct vms_host_vm *vm = v->vm;
		bool rates = smp->dt > 0 && !v->new_vm;

		printf("VM %d \"%s\" (name from %s), %zu vCPU threads, %u kvm-vcpu fds\n", vm->pid,
		       vm->name, vm->name_source, vm->nvcpus, vm->vcpu_fds);
		/* The VM's debugfs files once, when it first shows: as rates they would only
		 * repeat KVM's statistics, in a list of up to some 70 lines per VM. */
		if (!rates)
			print_debugfs(vm);
		if (v->kvm_err)
			printf("  KVM statistics: %s\n",
			       v->kvm_msg[0] ? v->kvm_msg : kvm_explain(v->kvm_err));
		if (a->events && v->events_err)
			printf("  kernel-counted events: %s\n", events_explain(v));
		if (a->reasons && smp->reasons_err)
			printf("  exits by reason: %s\n", smp->reasons_msg[0]
								  ? smp->reasons_msg
								  : vms_strerror(smp->reasons_err));
		print_block(a, s, v, VMS_FIELD_PROC, rates, true,
			    rates ? "CPU time, % of one CPU over the interval (procfs, schedstat)"
				  : "CPU time since the thread began (procfs, schedstat)");
		{
			char h[160];

			snprintf(h, sizeof(h), "KVM's counters%s (binary statistics, %s)",
				 rates ? ", per second" : "", kvm_source_text(v->kvm_source));
			print_block(a, s, v, VMS_FIELD_KVM, rates, false, h);
		}
		print_block(a, s, v, VMS_FIELD_EVENTS, rates, false,
			    rates ? "kernel-counted events (tracepoints), per second over the "
				    "interval"
				  : "kernel-counted events (tracepoints), counts since vmscope "
				    "began counting");
		if (smp->reasons_backend)
			print_reasons(a, smp, v, rates);
	}
}

static void print_host_table(const struct vms_sample *smp)
{
	if (!smp->cpus_since_boot)
		printf("Host CPUs over the last %.1f s (%% of each CPU; user leaves guest out):\n",
		       smp->dt);
	else
		printf("Host CPUs since boot (%% of each CPU; user leaves guest out):\n");
	printf("  CPU");
	for (int k = 0; k < VMS_CPU_KINDS; k++)
		printf(" %7s", vms_cpu_kind_name(k));
	printf("\n");
	for (size_t i = 0; i < smp->ncpus; i++) {
		printf("  %3d", smp->cpus[i].cpu);
		for (int k = 0; k < VMS_CPU_KINDS; k++)
			printf(" %6.1f%%", 100 * smp->cpus[i].share[k]);
		printf("\n");
	}
}

/* ---- CSV: the vCPU threads' CPU time ---- */

/* A CSV field, always quoted; a double quote inside is doubled (RFC 4180). */
static void csv_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void print_csv(const struct vms_sample *smp, bool header)
{
	if (header)
		printf("timestamp_ns,pid,name,vcpu,tid,last_cpu,user_s,system_s,guest_s,run_s,"
		       "runq_wait_s,slices\n");
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_host_vm *vm = smp->vms[i].vm;

		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_host_vcpu *v = &vm->vcpus[j];

			printf("%" PRIu64 ",%d,", smp->ts_ns, vm->pid);
			csv_quoted(stdout, vm->name);
			printf(",%d,%d,%d,%.2f,%.2f,%.2f,%.9f,%.9f,%" PRIu64 "\n", v->vcpu, v->tid,
			       v->last_cpu, v->user_ns / 1e9, v->system_ns / 1e9, v->guest_ns / 1e9,
			       v->run_ns / 1e9, v->wait_ns / 1e9, v->slices);
		}
	}
}

/* ---- JSON ---- */

/* Every scalar statistic of one statistics descriptor of a VMM, or the reason it is not
 * readable. */
static void json_kvm_stats(struct vms_json *j, int pid, int fd)
{
	struct vms_stats *st;
	int err = fd < 0 ? -ENOENT : vms_stats_open_remote(pid, fd, &st);

	if (err) {
		vms_json_string(j, "kvm_stats_error", kvm_explain(err));
		return;
	}
	vms_json_string(j, "kvm_stats_source", "fd");
	vms_json_object_begin(j, "kvm_stats");
	for (size_t d = 0; d < vms_stats_count(st); d++) {
		const struct vms_stat_desc *desc = vms_stats_desc(st, d);

		if (desc->size == 1)
			vms_json_u64(j, desc->name, vms_stats_value(st, d));
	}
	vms_json_object_end(j);
	vms_stats_free(st);
}

/* Every scalar statistic a VMM gave (@vcpu -1: the VM's), as "kvm_stats". */
static void json_vmm_stats(struct vms_json *j, const struct vms_vmm_stats *vs, int tid)
{
	const struct vms_vmm_stat *st = vs->vm;
	size_t n = vs->nvm;

	if (tid) {
		st = NULL;
		n = 0;
		for (size_t i = 0; i < vs->nvcpus; i++)
			if (vs->vcpus[i].tid == tid) {
				st = vs->vcpus[i].stats;
				n = vs->vcpus[i].nstats;
			}
		if (!st) {
			vms_json_string(j, "kvm_stats_error", "the VMM did not list this thread");
			return;
		}
	}
	vms_json_string(j, "kvm_stats_source", vs->source);
	vms_json_object_begin(j, "kvm_stats");
	for (size_t i = 0; i < n; i++)
		vms_json_u64(j, st[i].name, st[i].value);
	vms_json_object_end(j);
}

/* The event fields as {"kvm_exit": {"count": N, "per_s": R}, ...}. */
static void json_events(struct vms_json *j, const struct vms_sampler *s, const double *val,
			const double *rate)
{
	vms_json_object_begin(j, "events");
	for (size_t k = 0; k < vms_sampler_nfields(s); k++) {
		const struct vms_field_info *f = vms_sampler_field(s, k);

		if (f->source != VMS_FIELD_EVENTS || isnan(val[k]))
			continue;
		vms_json_object_begin(j, f->key + strlen("events."));
		vms_json_u64(j, "count", (uint64_t)val[k]);
		if (!isnan(rate[k]))
			vms_json_double(j, "per_s", rate[k]);
		vms_json_object_end(j);
	}
	vms_json_object_end(j);
}

/* {"kvm_exit": {"HLT": {"code", "count", "per_s"}}, "userspace_exit": {...}} */
static void json_reasons(struct vms_json *j, const struct vms_sample_reason *r, size_t n)
{
	vms_json_object_begin(j, "exit_reasons");
	for (int k = 0; k < VMS_REASON_KINDS; k++) {
		bool open = false;

		for (size_t i = 0; i < n; i++) {
			char code[24];

			if (r[i].kind != (enum vms_reason_kind)k)
				continue;
			if (!open) {
				vms_json_object_begin(j, vms_reason_kind_name(r[i].kind));
				open = true;
			}
			snprintf(code, sizeof(code), "%" PRIu64, r[i].code);
			vms_json_object_begin(j, r[i].name ? r[i].name : code);
			vms_json_u64(j, "code", r[i].code);
			vms_json_u64(j, "count", (uint64_t)r[i].value);
			if (!isnan(r[i].rate))
				vms_json_double(j, "per_s", r[i].rate);
			vms_json_object_end(j);
		}
		if (open)
			vms_json_object_end(j);
	}
	vms_json_object_end(j);
}

static void json_debugfs(struct vms_json *j, const struct vms_host_vm *vm)
{
	struct debugfs_summary ds;

	vms_json_object_begin(j, "debugfs");
	vms_json_string(j, "path", vm->debugfs[0] ? vm->debugfs : NULL);
	debugfs_summarize(vm, &ds);
	if (vm->debugfs[0] && vm->debugfs_err)
		vms_json_string(j, "error", vms_strerror(vm->debugfs_err));
	vms_json_object_begin(j, "files");
	for (size_t k = 0; k < ds.count; k++) {
		if (ds.entries[k].err)
			vms_json_string(j, ds.entries[k].name, vms_strerror(ds.entries[k].err));
		else
			vms_json_u64(j, ds.entries[k].name, ds.entries[k].value);
	}
	vms_json_object_end(j);
	free(ds.entries);
	vms_json_object_end(j);
}

static void json_host(struct vms_json *j, const struct vms_sample *smp)
{
	vms_json_object_begin(j, "host_cpus");
	if (!smp->cpus_since_boot)
		vms_json_double(j, "interval_s", smp->dt);
	vms_json_bool(j, "since_boot", smp->cpus_since_boot);
	vms_json_array_begin(j, "cpus");
	for (size_t i = 0; i < smp->ncpus; i++) {
		vms_json_object_begin(j, NULL);
		vms_json_i64(j, "cpu", smp->cpus[i].cpu);
		for (int k = 0; k < VMS_CPU_KINDS; k++)
			vms_json_double(j, vms_cpu_kind_name(k), smp->cpus[i].share[k]);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_object_end(j);
}

static void print_json(const struct stat_args *a, const struct vms_sampler *s)
{
	const struct vms_sample *smp = vms_sampler_sample(s);
	struct vms_json j;

	vms_json_init(&j, stdout, a->once);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "timestamp_ns", smp->ts_ns);
	vms_json_array_begin(&j, "vms");
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *sv = &smp->vms[i];
		const struct vms_host_vm *vm = sv->vm;

		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "pid", vm->pid);
		vms_json_string(&j, "name", vm->name);
		vms_json_string(&j, "name_source", vm->name_source);
		vms_json_string(&j, "comm", vm->comm);
		vms_json_u64(&j, "vcpu_fds", vm->vcpu_fds);
		json_debugfs(&j, vm);
		if (sv->vmm)
			json_vmm_stats(&j, sv->vmm, 0);
		else if (sv->kvm_err && sv->kvm_msg[0])
			vms_json_string(&j, "kvm_stats_error", sv->kvm_msg);
		else
			json_kvm_stats(&j, vm->pid, vm->vm_stats_fd);
		if (a->events && sv->events_err)
			vms_json_string(&j, "events_error", events_explain(sv));
		else if (a->events)
			json_events(&j, s, sv->sum, sv->sum_rate);
		if (smp->reasons_backend)
			json_reasons(&j, sv->reasons, sv->nreasons);
		vms_json_array_begin(&j, "vcpus");
		for (size_t k = 0; k < sv->nvcpus; k++) {
			const struct vms_host_vcpu *v = sv->vcpus[k].thread;

			vms_json_object_begin(&j, NULL);
			if (v->vcpu >= 0)
				vms_json_i64(&j, "vcpu", v->vcpu);
			else
				vms_json_null(&j, "vcpu");
			vms_json_i64(&j, "tid", v->tid);
			vms_json_string(&j, "thread", v->comm);
			vms_json_i64(&j, "last_cpu", v->last_cpu);
			vms_json_u64(&j, "user_ns", v->user_ns);
			vms_json_u64(&j, "system_ns", v->system_ns);
			vms_json_u64(&j, "guest_ns", v->guest_ns);
			vms_json_u64(&j, "run_ns", v->run_ns);
			vms_json_u64(&j, "runq_wait_ns", v->wait_ns);
			vms_json_u64(&j, "slices", v->slices);
			if (sv->vmm)
				json_vmm_stats(&j, sv->vmm, v->tid);
			else
				json_kvm_stats(&j, vm->pid, v->stats_fd);
			if (a->events && !sv->events_err)
				json_events(&j, s, sv->vcpus[k].value, sv->vcpus[k].rate);
			if (smp->reasons_backend)
				json_reasons(&j, sv->vcpus[k].reasons, sv->vcpus[k].nreasons);
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	if (a->reasons) {
		vms_json_object_begin(&j, "exit_reasons");
		if (smp->reasons_backend) {
			vms_json_string(&j, "backend", smp->reasons_backend);
			vms_json_u64(&j, "dropped", smp->reasons_dropped);
		} else {
			vms_json_string(&j, "error",
					smp->reasons_msg[0] ? smp->reasons_msg
							    : vms_strerror(smp->reasons_err));
		}
		vms_json_object_end(&j);
	}
	if (smp->ncpus)
		json_host(&j, smp);
	vms_json_object_end(&j);
	vms_json_finish(&j);
}

/* ---- --log: one line per VM, vCPU and field, with a timestamp on every line ---- */

struct log_sink {
	FILE *f;
	uint64_t opened_ns;
	bool header; /* the CSV header is in this file */
	int err;     /* errno of a failed write or rotation */
};

static int log_open(struct log_sink *ls, const struct stat_args *a, uint64_t now)
{
	ls->opened_ns = now;
	if (!a->output) {
		ls->f = stdout;
		ls->header = false;
		return 0;
	}
	ls->f = fopen(a->output, "ae");
	if (!ls->f)
		return -errno;
	/* Appending to a CSV file that has its header already. */
	ls->header = ftell(ls->f) > 0;
	return 0;
}

/* FILE -> FILE.1 -> ... -> FILE.keep (dropped), then a new FILE. */
static void log_rotate(struct log_sink *ls, const struct stat_args *a, uint64_t now)
{
	char from[4096], to[4096];
	long size;

	if (!a->output || !ls->f)
		return;
	size = ftell(ls->f);
	if (!((a->rotate_size && size >= 0 && (uint64_t)size >= a->rotate_size) ||
	      (a->rotate_ns && now - ls->opened_ns >= a->rotate_ns)))
		return;
	fclose(ls->f);
	ls->f = NULL;
	for (unsigned int k = a->keep; k >= 1; k--) {
		if (k == 1)
			snprintf(from, sizeof(from), "%s", a->output);
		else
			snprintf(from, sizeof(from), "%s.%u", a->output, k - 1);
		snprintf(to, sizeof(to), "%s.%u", a->output, k);
		if (rename(from, to) && errno != ENOENT && !ls->err)
			ls->err = errno;
	}
	if (log_open(ls, a, now) && !ls->err)
		ls->err = errno;
}

static void iso_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* One row; @vcpu -1: the VM's sum. @rate NAN: not known yet (the first report). */
static void log_row(struct log_sink *ls, const struct stat_args *a, const char *ts,
		    const struct vms_host_vm *vm, int vcpu, const char *field, double value,
		    double rate)
{
	FILE *f = ls->f;
	char vc[16];

	if (!f)
		return;
	if (a->skip_zero && (isnan(rate) ? value : rate) == 0)
		return;
	if (vcpu < 0)
		snprintf(vc, sizeof(vc), "all");
	else
		snprintf(vc, sizeof(vc), "%d", vcpu);
	switch (a->format) {
	case CLI_FORMAT_CSV:
		if (!ls->header) {
			fputs("timestamp,pid,vm,vcpu,field,value,per_s\n", f);
			ls->header = true;
		}
		fprintf(f, "%s,%d,", ts, vm->pid);
		csv_quoted(f, vm->name);
		fprintf(f, ",%s,%s,%.9g,", vc, field, value);
		if (!isnan(rate))
			fprintf(f, "%.9g", rate);
		fputc('\n', f);
		break;
	case CLI_FORMAT_JSON: {
		struct vms_json j;

		vms_json_init(&j, f, false);
		vms_json_object_begin(&j, NULL);
		vms_json_string(&j, "timestamp", ts);
		vms_json_i64(&j, "pid", vm->pid);
		vms_json_string(&j, "vm", vm->name);
		if (vcpu < 0)
			vms_json_string(&j, "vcpu", "all");
		else
			vms_json_i64(&j, "vcpu", vcpu);
		vms_json_string(&j, "field", field);
		vms_json_double(&j, "value", value);
		if (isnan(rate))
			vms_json_null(&j, "per_s");
		else
			vms_json_double(&j, "per_s", rate);
		vms_json_object_end(&j);
		vms_json_finish(&j); /* ends the line */
		break;
	}
	default:
		fprintf(f, "%s pid=%d vm=%s vcpu=%s %s=%.9g", ts, vm->pid, vm->name, vc, field,
			value);
		if (!isnan(rate))
			fprintf(f, " per_s=%.9g", rate);
		fputc('\n', f);
		break;
	}
}

static void log_reasons(struct log_sink *ls, const struct stat_args *a, const char *ts,
			const struct vms_host_vm *vm, int vcpu, const struct vms_sample_reason *r,
			size_t n)
{
	char key[128];

	for (size_t i = 0; i < n; i++) {
		const char *k = reason_key(&r[i], key, sizeof(key));

		if (!a->has_fields || !regexec(&a->fields, k, 0, NULL, 0))
			log_row(ls, a, ts, vm, vcpu, k, r[i].value, r[i].rate);
	}
}

static void log_report(struct log_sink *ls, const struct stat_args *a, const struct vms_sampler *s)
{
	const struct vms_sample *smp = vms_sampler_sample(s);
	char ts[80];

	iso_time(ts, sizeof(ts));
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];

		for (size_t j = 0; j < v->nvcpus; j++)
			for (size_t k = 0; k < vms_sampler_nfields(s); k++) {
				const struct vms_field_info *f = vms_sampler_field(s, k);

				if (!isnan(v->vcpus[j].value[k]) && field_wanted(a, f))
					log_row(ls, a, ts, v->vm, v->vcpus[j].thread->vcpu, f->key,
						v->vcpus[j].value[k], v->vcpus[j].rate[k]);
			}
		for (size_t j = 0; j < v->nvcpus; j++)
			log_reasons(ls, a, ts, v->vm, v->vcpus[j].thread->vcpu, v->vcpus[j].reasons,
				    v->vcpus[j].nreasons);
		/* The VM's sums, as kvm_stat shows them. */
		for (size_t k = 0; k < vms_sampler_nfields(s); k++) {
			const struct vms_field_info *f = vms_sampler_field(s, k);

			if (!isnan(v->sum[k]) && field_wanted(a, f))
				log_row(ls, a, ts, v->vm, -1, f->key, v->sum[k], v->sum_rate[k]);
		}
		log_reasons(ls, a, ts, v->vm, -1, v->reasons, v->nreasons);
	}
	if (ls->f && (fflush(ls->f) || ferror(ls->f)) && !ls->err)
		ls->err = errno ? errno : EIO;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int stat_loop(struct stat_args *a, struct vms_sampler *s, struct log_sink *ls)
{
	unsigned long long reports = 0;
	int rc = 0, ret;

	while (!interrupted) {
		const struct vms_sample *smp;

		ret = vms_sampler_update(s);
		if (ret)
			return cli_error(CMD, "cannot read the host's VMs: %s", vms_strerror(ret));
		smp = vms_sampler_sample(s);
		if (a->log) {
			log_rotate(ls, a, smp->ts_ns);
			log_report(ls, a, s);
			if (ls->err) {
				rc = cli_error(CMD, "writing the log %s failed: %s",
					       a->output ? a->output : "(stdout)",
					       strerror(ls->err));
				break;
			}
		} else if (a->format == CLI_FORMAT_JSON) {
			print_json(a, s);
		} else if (a->format == CLI_FORMAT_CSV) {
			print_csv(smp, reports == 0);
		} else {
			if (!smp->nvms && !a->pid && !a->guest)
				printf("no KVM virtual machine runs on this host\n");
			print_table(a, s);
			if (smp->ncpus && (smp->nvms || (!a->pid && !a->guest)))
				print_host_table(smp);
		}
		if (!smp->nvms && (a->pid || a->guest)) {
			if (a->pid && a->guest)
				cli_error(CMD, "no VM named %s with pid %d", a->guest, a->pid);
			else if (a->pid)
				cli_error(CMD, "no VM with pid %d (is the process a VMM?)", a->pid);
			else
				cli_error(CMD, "no VM named %s", a->guest);
			rc = CLI_EXIT_FAIL;
		}
		fflush(stdout);
		reports++;
		if (a->once || (a->count && reports >= a->count))
			break;
		if (a->format == CLI_FORMAT_TABLE && !a->log)
			printf("\n");
		{
			struct timespec ts_sleep = { (time_t)(a->interval_ns / 1000000000ULL),
						     (long)(a->interval_ns % 1000000000ULL) };

			nanosleep(&ts_sleep, NULL);
		}
	}
	return rc;
}

static int cmd_stat_run(int argc, char **argv)
{
	struct stat_args a;
	struct vms_sampler *s = NULL;
	struct log_sink ls = { NULL, 0, false, 0 };
	int ret = parse_args(argc, argv, &a), rc;

	if (ret)
		goto out;
	cli_setup_log(CMD, a.verbose);
	{
		/* CSV without --log has no events: they would cost counters for nothing. */
		struct vms_sampler_opts so = {
			.sz = sizeof(so),
			.pid = a.pid,
			.guest = a.guest,
			.no_events = !a.events || (!a.log && a.format == CLI_FORMAT_CSV),
			.exit_reasons = a.reasons,
		};

		ret = vms_sampler_new(&so, &s);
		if (ret) {
			ret = cli_error(CMD, "%s", vms_strerror(ret));
			goto out;
		}
	}
	if (a.log && (ret = log_open(&ls, &a, cli_mono_ns()))) {
		ret = cli_error(CMD, "cannot open the log %s: %s", a.output, strerror(-ret));
		goto out;
	}
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	rc = stat_loop(&a, s, &ls);
	if (ls.f && ls.f != stdout && fclose(ls.f) && !rc)
		rc = cli_error(CMD, "writing the log %s failed: %s", a.output, strerror(errno));
	ret = rc;
out:
	vms_sampler_free(s);
	if (a.has_fields)
		regfree(&a.fields);
	return ret;
}

const struct vms_cmd cmd_stat = {
	.name = "stat",
	.summary = "list the host's VMs with their vCPU threads and readable counters",
	.usage = usage_text,
	.run = cmd_stat_run,
};
