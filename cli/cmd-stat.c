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
	"  -l, --log                log: one line per VM, vCPU and field with a timestamp\n"
	"                           (text, CSV with one header, or JSON lines by --format)\n"
	"  -F, --fields REGEX       with --log: only the fields this regex matches\n"
	"  -z, --skip-zero          with --log: leave out rows whose rate (or value) is 0\n"
	"  -o, --output FILE        with --log: append to FILE instead of stdout\n"
	"      --rotate-size BYTES  rotate FILE to FILE.1 ... once it is this large\n"
	"      --rotate-time TIME   rotate FILE once it is this old\n"
	"      --keep N             rotated files kept [5]\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0, 1 when no VM matched -p/-g, 2 for a wrong command line.\n";

struct stat_args {
	bool once, verbose, events;
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
	int c;

	memset(a, 0, sizeof(*a));
	a->events = true;
	a->keep = 5;
	a->interval_ns = 1000000000ULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "1s:n:p:g:f:vhlF:zo:", longopts, NULL)) != -1) {
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
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return cli_bad_option(CMD, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (!a->log &&
	    (a->has_fields || a->skip_zero || a->output || a->rotate_size || a->rotate_ns))
		return cli_usage_error(CMD, "--fields, --skip-zero, --output and --rotate-* go "
					    "with --log");
	if ((a->rotate_size || a->rotate_ns) && !a->output)
		return cli_usage_error(CMD, "--rotate-size and --rotate-time rotate --output FILE");
	return 0;
}

static bool vm_selected(const struct stat_args *a, const struct vms_host_vm *vm)
{
	if (a->pid && vm->pid != a->pid)
		return false;
	if (a->guest && strcmp(a->guest, vm->name))
		return false;
	return true;
}

/* What the debugfs folder of @vm offers: counts of readable and unreadable files. */
struct debugfs_summary {
	size_t files, readable, numbers;
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

/* KVM's own counters of a vCPU, read through the VMM's statistics descriptor. */
static const char *const kvm_keys[] = { "exits", "halt_exits", "mmio_exits", "io_exits",
					"irq_exits" };
#define NKEYS (sizeof(kvm_keys) / sizeof(kvm_keys[0]))

struct vcpu_kvm {
	int pid, tid;
	int err;	   /* 0, or why the counters are not readable */
	uint64_t v[NKEYS]; /* UINT64_MAX where the kernel has no such counter */
};

struct kvm_snapshot {
	struct vcpu_kvm *vcpus;
	size_t n;
};

static void kvm_snapshot_take(struct kvm_snapshot *ks, const struct vms_host_vm *vms, size_t n)
{
	size_t total = 0;

	ks->n = 0;
	for (size_t i = 0; i < n; i++)
		total += vms[i].nvcpus;
	ks->vcpus = calloc(total ? total : 1, sizeof(*ks->vcpus));
	if (!ks->vcpus)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < vms[i].nvcpus; j++) {
			const struct vms_host_vcpu *v = &vms[i].vcpus[j];
			struct vcpu_kvm *k = &ks->vcpus[ks->n++];
			struct vms_stats *st;

			k->pid = vms[i].pid;
			k->tid = v->tid;
			k->err = v->stats_fd < 0
					 ? -ENOENT
					 : vms_stats_open_remote(vms[i].pid, v->stats_fd, &st);
			for (size_t key = 0; key < NKEYS; key++)
				if (k->err ||
				    vms_stats_value_by_name(st, kvm_keys[key], &k->v[key]))
					k->v[key] = UINT64_MAX;
			if (!k->err)
				vms_stats_free(st);
		}
	}
}

static const struct vcpu_kvm *kvm_find(const struct kvm_snapshot *ks, int pid, int tid)
{
	for (size_t i = 0; ks && i < ks->n; i++)
		if (ks->vcpus[i].pid == pid && ks->vcpus[i].tid == tid)
			return &ks->vcpus[i];
	return NULL;
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

/* ---- kernel-counted events per vCPU thread (perf tracepoint counters) ---- */

/* kvm_stat's way where the kernel has no hist triggers: one counter per thread and event,
 * user-space exits split by reason with filters. kvm_exit never fires on KVM-PVM. */
static const struct {
	const char *key, *title;
	struct vms_tp_event ev;
} tp_events[] = {
	{ "kvm_exit", "kvm_exit", { "kvm", "kvm_exit", NULL } },
	{ "userspace_exit", "to-VMM", { "kvm", "kvm_userspace_exit", NULL } },
	{ "userspace_exit.io", "io", { "kvm", "kvm_userspace_exit", "reason == 2" } },
	{ "userspace_exit.mmio", "mmio", { "kvm", "kvm_userspace_exit", "reason == 6" } },
	{ "userspace_exit.msr",
	  "msr",
	  { "kvm", "kvm_userspace_exit", "reason == 29 || reason == 30" } },
	{ "userspace_exit.intr", "intr", { "kvm", "kvm_userspace_exit", "reason == 10" } },
	{ "kvm_mmio", "kvm_mmio", { "kvm", "kvm_mmio", NULL } },
	{ "kvm_pio", "kvm_pio", { "kvm", "kvm_pio", NULL } },
	{ "kvm_hypercall", "hcall", { "kvm", "kvm_hypercall", NULL } },
	{ "kvm_vcpu_wakeup", "wakeup", { "kvm", "kvm_vcpu_wakeup", NULL } },
};
#define NTP (sizeof(tp_events) / sizeof(tp_events[0]))

/* The counters of one VM's vCPU threads, kept from report to report. */
struct tp_vm {
	int pid;
	size_t ntids;
	int *tids;
	struct vms_tpcount *tc;
	uint64_t *now, *prev; /* ntids x NTP */
	bool *valid, has_prev, seen;
	unsigned int reads;
	int err;
	char msg[200];
};

static struct tp_vm *tpv;
static size_t ntpv;

static void tp_vm_clear(struct tp_vm *t)
{
	vms_tpcount_free(t->tc);
	free(t->tids);
	free(t->now);
	free(t->prev);
	free(t->valid);
	memset(t, 0, sizeof(*t));
}

static bool tp_same_threads(const struct tp_vm *t, const struct vms_host_vm *vm)
{
	if (t->ntids != vm->nvcpus)
		return false;
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (t->tids[i] != vm->vcpus[i].tid)
			return false;
	return true;
}

static void tp_open(struct tp_vm *t, const struct vms_host_vm *vm)
{
	struct vms_tp_event ev[NTP];

	tp_vm_clear(t);
	t->pid = vm->pid;
	t->seen = true;
	t->ntids = vm->nvcpus;
	t->tids = calloc(vm->nvcpus ? vm->nvcpus : 1, sizeof(int));
	t->now = calloc(vm->nvcpus * NTP + 1, sizeof(uint64_t));
	t->prev = calloc(vm->nvcpus * NTP + 1, sizeof(uint64_t));
	t->valid = calloc(vm->nvcpus * NTP + 1, sizeof(bool));
	if (!t->tids || !t->now || !t->prev || !t->valid) {
		t->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < vm->nvcpus; i++)
		t->tids[i] = vm->vcpus[i].tid;
	for (size_t e = 0; e < NTP; e++)
		ev[e] = tp_events[e].ev;
	if (vm->nvcpus)
		t->err = vms_tpcount_open(ev, NTP, t->tids, t->ntids, &t->tc, t->msg,
					  sizeof(t->msg));
}

/* Open counters for new VMs (or VMs whose threads changed), read all, drop gone VMs. */
static void tp_update(const struct stat_args *a, struct vms_host_vm *vms, size_t n)
{
	for (size_t k = 0; k < ntpv; k++)
		tpv[k].seen = false;
	for (size_t i = 0; i < n; i++) {
		struct tp_vm *t = NULL;

		if (!vm_selected(a, &vms[i]))
			continue;
		for (size_t k = 0; k < ntpv; k++)
			if (tpv[k].pid == vms[i].pid)
				t = &tpv[k];
		if (!t) {
			struct tp_vm *p = realloc(tpv, (ntpv + 1) * sizeof(*p));

			if (!p)
				continue;
			tpv = p;
			t = &tpv[ntpv++];
			memset(t, 0, sizeof(*t));
		}
		if (!t->pid || !tp_same_threads(t, &vms[i]))
			tp_open(t, &vms[i]);
		t->seen = true;
		if (!t->tc)
			continue;
		memcpy(t->prev, t->now, t->ntids * NTP * sizeof(uint64_t));
		/* Rates need two readings: the first follows the opening by less than the
		 * interval. */
		t->has_prev = t->reads++ > 0;
		vms_tpcount_read(t->tc, t->now, t->valid);
	}
	/* VMs that are gone: their counters go too. */
	for (size_t k = 0; k < ntpv;) {
		if (tpv[k].seen) {
			k++;
			continue;
		}
		tp_vm_clear(&tpv[k]);
		tpv[k] = tpv[--ntpv];
	}
}

static void tp_free_all(void)
{
	for (size_t k = 0; k < ntpv; k++)
		tp_vm_clear(&tpv[k]);
	free(tpv);
	tpv = NULL;
	ntpv = 0;
}

static struct tp_vm *tp_find(int pid)
{
	for (size_t k = 0; k < ntpv; k++)
		if (tpv[k].pid == pid)
			return &tpv[k];
	return NULL;
}

static bool tp_sum(const struct tp_vm *t, size_t e, uint64_t *now, uint64_t *prev);

static void print_tp_table(const struct vms_host_vm *vm, bool rates, double dt)
{
	const struct tp_vm *t = tp_find(vm->pid);

	if (!t || !vm->nvcpus)
		return;
	if (!t->tc) {
		printf("  kernel-counted events: %s\n",
		       t->err == -EACCES || t->err == -EPERM
			       ? "not permitted (needs root or perf_event_paranoid <= 1)"
		       : t->msg[0] ? t->msg
				   : vms_strerror(t->err));
		return;
	}
	rates = rates && t->has_prev;
	printf("  kernel-counted events (tracepoints), %s:\n",
	       rates ? "per second over the interval" : "counts since vmscope began counting");
	printf("  %-4s", "vcpu");
	for (size_t e = 0; e < NTP; e++)
		printf(" %9s", tp_events[e].title);
	printf("\n");
	for (size_t i = 0; i < t->ntids; i++) {
		printf("  %-4d", vm->vcpus[i].vcpu);
		for (size_t e = 0; e < NTP; e++) {
			size_t x = i * NTP + e;

			if (!t->valid[x])
				printf(" %9s", "-");
			else if (rates && t->has_prev && dt > 0)
				printf(" %9.0f", (double)(t->now[x] - t->prev[x]) / dt);
			else
				printf(" %9" PRIu64, t->now[x]);
		}
		printf("\n");
	}
	/* The VM's sum, which is all kvm_stat shows. */
	if (t->ntids > 1) {
		printf("  %-4s", "all");
		for (size_t e = 0; e < NTP; e++) {
			uint64_t now, prev;

			if (!tp_sum(t, e, &now, &prev))
				printf(" %9s", "-");
			else if (rates && dt > 0)
				printf(" %9.0f", (double)(now - prev) / dt);
			else
				printf(" %9" PRIu64, now);
		}
		printf("\n");
	}
}

/* Event @e summed over the VM's vCPU threads (now and at the previous report); false
 * when no thread could count it. */
static bool tp_sum(const struct tp_vm *t, size_t e, uint64_t *now, uint64_t *prev)
{
	bool any = false;

	*now = *prev = 0;
	for (size_t i = 0; i < t->ntids; i++)
		if (t->valid[i * NTP + e]) {
			*now += t->now[i * NTP + e];
			*prev += t->prev[i * NTP + e];
			any = true;
		}
	return any;
}

static void json_tp_vm(struct vms_json *j, int pid, double dt)
{
	const struct tp_vm *t = tp_find(pid);

	if (!t || !t->tc)
		return;
	vms_json_object_begin(j, "events");
	for (size_t e = 0; e < NTP; e++) {
		uint64_t now, prev;

		if (!tp_sum(t, e, &now, &prev))
			continue;
		vms_json_object_begin(j, tp_events[e].key);
		vms_json_u64(j, "count", now);
		if (t->has_prev && dt > 0)
			vms_json_double(j, "per_s", (double)(now - prev) / dt);
		vms_json_object_end(j);
	}
	vms_json_object_end(j);
}

static void json_tp(struct vms_json *j, int pid, int tid, double dt)
{
	const struct tp_vm *t = tp_find(pid);
	size_t i;

	if (!t)
		return;
	if (!t->tc) {
		vms_json_string(j, "events_error", t->msg[0] ? t->msg : vms_strerror(t->err));
		return;
	}
	for (i = 0; i < t->ntids && t->tids[i] != tid; i++)
		;
	if (i == t->ntids)
		return;
	vms_json_object_begin(j, "events");
	for (size_t e = 0; e < NTP; e++) {
		size_t x = i * NTP + e;

		if (!t->valid[x])
			continue;
		vms_json_object_begin(j, tp_events[e].key);
		vms_json_u64(j, "count", t->now[x]);
		if (t->has_prev && dt > 0)
			vms_json_double(j, "per_s", (double)(t->now[x] - t->prev[x]) / dt);
		vms_json_object_end(j);
	}
	vms_json_object_end(j);
}

/* ---- host CPUs: guest and steal time, which top and vmstat fold into user ---- */

enum { HC_USER, HC_NICE, HC_SYSTEM, HC_IRQ, HC_GUEST, HC_STEAL, HC_IOWAIT, HC_IDLE, HC_N };
static const char *const hc_name[HC_N] = { "user",  "nice",  "system", "irq",
					   "guest", "steal", "iowait", "idle" };

/* Shares of CPU @c's time since @p (NULL: since boot); false when no tick passed. The
 * user and nice shares leave guest time out: it is a share of its own. */
static bool host_shares(const struct vms_host_cpu *c, const struct vms_host_cpu *p,
			double share[HC_N])
{
	static const struct vms_host_cpu zero;
	const struct vms_host_cpu *b = p ? p : &zero;
	double d[HC_N], total = 0;

#define HD(f) ((double)(c->f >= b->f ? c->f - b->f : 0))
	d[HC_GUEST] = HD(guest) + HD(guest_nice);
	d[HC_USER] = HD(user) > HD(guest) ? HD(user) - HD(guest) : 0;
	d[HC_NICE] = HD(nice) > HD(guest_nice) ? HD(nice) - HD(guest_nice) : 0;
	d[HC_SYSTEM] = HD(system);
	d[HC_IRQ] = HD(irq) + HD(softirq);
	d[HC_STEAL] = HD(steal);
	d[HC_IOWAIT] = HD(iowait);
	d[HC_IDLE] = HD(idle);
#undef HD
	for (int k = 0; k < HC_N; k++)
		total += d[k];
	for (int k = 0; k < HC_N; k++)
		share[k] = total > 0 ? d[k] / total : 0;
	return total > 0;
}

static const struct vms_host_cpu *host_prev(const struct vms_host_cpu *prev, size_t nprev, int cpu)
{
	for (size_t i = 0; i < nprev; i++)
		if (prev[i].cpu == cpu)
			return &prev[i];
	return NULL;
}

static void print_host_table(const struct vms_host_cpu *cpus, size_t n,
			     const struct vms_host_cpu *prev, size_t nprev, double dt)
{
	if (prev)
		printf("Host CPUs over the last %.1f s (%% of each CPU; user leaves guest out):\n",
		       dt);
	else
		printf("Host CPUs since boot (%% of each CPU; user leaves guest out):\n");
	printf("  CPU");
	for (int k = 0; k < HC_N; k++)
		printf(" %7s", hc_name[k]);
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		double sh[HC_N];

		if (!host_shares(&cpus[i], prev ? host_prev(prev, nprev, cpus[i].cpu) : NULL, sh))
			continue;
		printf("  %3d", cpus[i].cpu);
		for (int k = 0; k < HC_N; k++)
			printf(" %6.1f%%", 100 * sh[k]);
		printf("\n");
	}
}

static void json_host(struct vms_json *j, const struct vms_host_cpu *cpus, size_t n,
		      const struct vms_host_cpu *prev, size_t nprev, double dt)
{
	vms_json_object_begin(j, "host_cpus");
	if (prev)
		vms_json_double(j, "interval_s", dt);
	vms_json_bool(j, "since_boot", !prev);
	vms_json_array_begin(j, "cpus");
	for (size_t i = 0; i < n; i++) {
		double sh[HC_N];

		if (!host_shares(&cpus[i], prev ? host_prev(prev, nprev, cpus[i].cpu) : NULL, sh))
			continue;
		vms_json_object_begin(j, NULL);
		vms_json_i64(j, "cpu", cpus[i].cpu);
		for (int k = 0; k < HC_N; k++)
			vms_json_double(j, hc_name[k], sh[k]);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_object_end(j);
}

static void print_table(const struct stat_args *a, struct vms_host_vm *vms, size_t n,
			const struct vms_host_vm *prev, size_t nprev, double dt,
			const struct kvm_snapshot *ks, const struct kvm_snapshot *pks)
{
	for (size_t i = 0; i < n; i++) {
		const struct vms_host_vm *vm = &vms[i];
		const struct vms_host_vm *pv = NULL;
		struct debugfs_summary ds;

		if (!vm_selected(a, vm))
			continue;
		for (size_t k = 0; k < nprev; k++)
			if (prev[k].pid == vm->pid)
				pv = &prev[k];
		printf("VM %d \"%s\" (name from %s), %zu vCPU threads, %u kvm-vcpu fds\n", vm->pid,
		       vm->name, vm->name_source, vm->nvcpus, vm->vcpu_fds);
		if (!vm->debugfs[0])
			printf("  debugfs: no folder for this VM (is debugfs mounted? mount -t "
			       "debugfs none /sys/kernel/debug)\n");
		else if (vm->debugfs_err)
			printf("  debugfs %s: %s\n", vm->debugfs, vms_strerror(vm->debugfs_err));
		else {
			debugfs_summarize(vm, &ds);
			printf("  debugfs %s: %zu of %zu files readable", vm->debugfs, ds.readable,
			       ds.files);
			if (ds.first_err)
				printf("; the others: %s", debugfs_explain(ds.first_err));
			printf("\n");
			for (size_t k = 0; k < ds.count; k++)
				if (!ds.entries[k].err && !strchr(ds.entries[k].name, '/'))
					printf("    %-24s %" PRIu64 "\n", ds.entries[k].name,
					       ds.entries[k].value);
			free(ds.entries);
		}
		{
			int kerr = 0;

			for (size_t j = 0; j < vm->nvcpus && !kerr; j++) {
				const struct vcpu_kvm *k = kvm_find(ks, vm->pid, vm->vcpus[j].tid);

				if (k && k->err)
					kerr = k->err;
			}
			if (kerr)
				printf("  KVM statistics: %s\n", kvm_explain(kerr));
		}
		printf("  %-4s %-8s %-10s %4s %9s %9s %9s %9s %11s %7s %10s %9s %9s %9s %9s\n",
		       "vcpu", "tid", "thread", "cpu", "user(s)", "system(s)", "guest(s)", "run(s)",
		       "runq-wait(s)", pv ? "run%" : "slices", pv ? "exits/s" : "exits",
		       pv ? "halt/s" : "halt", pv ? "mmio/s" : "mmio", pv ? "io/s" : "io",
		       pv ? "irq/s" : "irq");
		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_host_vcpu *v = &vm->vcpus[j];
			const struct vcpu_kvm *k = kvm_find(ks, vm->pid, v->tid);
			const struct vcpu_kvm *pk = pv ? kvm_find(pks, vm->pid, v->tid) : NULL;
			char idx[12] = "?";

			if (v->vcpu >= 0)
				snprintf(idx, sizeof(idx), "%d", v->vcpu);
			if (v->stat_err && v->schedstat_err) {
				printf("  %-4s %-8d %-10s unreadable: %s\n", idx, v->tid, v->comm,
				       vms_strerror(v->stat_err));
				continue;
			}
			printf("  %-4s %-8d %-10s %4d %9.2f %9.2f %9.2f %9.3f %11.3f", idx, v->tid,
			       v->comm, v->last_cpu, v->user_ns / 1e9, v->system_ns / 1e9,
			       v->guest_ns / 1e9, v->run_ns / 1e9, v->wait_ns / 1e9);
			if (pv) {
				const struct vms_host_vcpu *pvc = NULL;

				for (size_t m = 0; m < pv->nvcpus; m++)
					if (pv->vcpus[m].tid == v->tid)
						pvc = &pv->vcpus[m];
				if (pvc && dt > 0)
					printf(" %6.1f%%",
					       100.0 * (double)(v->run_ns - pvc->run_ns) /
						       (dt * 1e9));
				else
					printf(" %7s", "-");
			} else {
				printf(" %7" PRIu64, v->slices);
			}
			for (size_t key = 0; key < NKEYS; key++) {
				int w = key == 0 ? 10 : 9;

				if (!k || k->v[key] == UINT64_MAX)
					printf(" %*s", w, "-");
				else if (!pv)
					printf(" %*" PRIu64, w, k->v[key]);
				else if (pk && pk->v[key] != UINT64_MAX && dt > 0)
					printf(" %*.0f", w, (double)(k->v[key] - pk->v[key]) / dt);
				else
					printf(" %*s", w, "-");
			}
			printf("\n");
		}
		if (a->events)
			print_tp_table(vm, pv != NULL, dt);
	}
}

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

static void print_csv(const struct stat_args *a, struct vms_host_vm *vms, size_t n, bool header,
		      uint64_t ts_ns)
{
	if (header)
		printf("timestamp_ns,pid,name,vcpu,tid,last_cpu,user_s,system_s,guest_s,run_s,"
		       "runq_wait_s,slices\n");
	for (size_t i = 0; i < n; i++) {
		const struct vms_host_vm *vm = &vms[i];

		if (!vm_selected(a, vm))
			continue;
		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_host_vcpu *v = &vm->vcpus[j];

			printf("%" PRIu64 ",%d,", ts_ns, vm->pid);
			csv_quoted(stdout, vm->name);
			printf(",%d,%d,%d,%.2f,%.2f,%.2f,%.9f,%.9f,%" PRIu64 "\n", v->vcpu, v->tid,
			       v->last_cpu, v->user_ns / 1e9, v->system_ns / 1e9, v->guest_ns / 1e9,
			       v->run_ns / 1e9, v->wait_ns / 1e9, v->slices);
		}
	}
}

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
	vms_json_object_begin(j, "kvm_stats");
	for (size_t d = 0; d < vms_stats_count(st); d++) {
		const struct vms_stat_desc *desc = vms_stats_desc(st, d);

		if (desc->size == 1)
			vms_json_u64(j, desc->name, vms_stats_value(st, d));
	}
	vms_json_object_end(j);
	vms_stats_free(st);
}

static void print_json(const struct stat_args *a, struct vms_host_vm *vms, size_t n, uint64_t ts_ns,
		       const struct vms_host_cpu *cpus, size_t ncpus,
		       const struct vms_host_cpu *hprev, size_t nhprev, double dt)
{
	struct vms_json j;

	vms_json_init(&j, stdout, a->once);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "timestamp_ns", ts_ns);
	vms_json_array_begin(&j, "vms");
	for (size_t i = 0; i < n; i++) {
		const struct vms_host_vm *vm = &vms[i];
		struct debugfs_summary ds;

		if (!vm_selected(a, vm))
			continue;
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "pid", vm->pid);
		vms_json_string(&j, "name", vm->name);
		vms_json_string(&j, "name_source", vm->name_source);
		vms_json_string(&j, "comm", vm->comm);
		vms_json_u64(&j, "vcpu_fds", vm->vcpu_fds);
		vms_json_object_begin(&j, "debugfs");
		vms_json_string(&j, "path", vm->debugfs[0] ? vm->debugfs : NULL);
		debugfs_summarize(vm, &ds);
		if (vm->debugfs[0] && vm->debugfs_err)
			vms_json_string(&j, "error", vms_strerror(vm->debugfs_err));
		vms_json_object_begin(&j, "files");
		for (size_t k = 0; k < ds.count; k++) {
			if (ds.entries[k].err)
				vms_json_string(&j, ds.entries[k].name,
						vms_strerror(ds.entries[k].err));
			else
				vms_json_u64(&j, ds.entries[k].name, ds.entries[k].value);
		}
		vms_json_object_end(&j);
		free(ds.entries);
		vms_json_object_end(&j);
		json_kvm_stats(&j, vm->pid, vm->vm_stats_fd);
		if (a->events)
			json_tp_vm(&j, vm->pid, dt);
		vms_json_array_begin(&j, "vcpus");
		for (size_t k = 0; k < vm->nvcpus; k++) {
			const struct vms_host_vcpu *v = &vm->vcpus[k];

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
			json_kvm_stats(&j, vm->pid, v->stats_fd);
			if (a->events)
				json_tp(&j, vm->pid, v->tid, dt);
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	if (cpus)
		json_host(&j, cpus, ncpus, hprev, nhprev, dt);
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

	if (!f || (a->has_fields && regexec(&a->fields, field, 0, NULL, 0)))
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

#define LOG_CPU 5
#define LOG_FIELDS (LOG_CPU + NKEYS + NTP)

static const char *log_field_name(size_t k, char *buf, size_t len)
{
	static const char *const cpu[LOG_CPU] = { "cpu.run_s", "cpu.runq_wait_s", "cpu.user_s",
						  "cpu.system_s", "cpu.guest_s" };

	if (k < LOG_CPU)
		return cpu[k];
	if (k < LOG_CPU + NKEYS)
		snprintf(buf, len, "kvm.%s", kvm_keys[k - LOG_CPU]);
	else
		snprintf(buf, len, "events.%s", tp_events[k - LOG_CPU - NKEYS].key);
	return buf;
}

/* Field @k of vCPU thread @v now (*val) and in the previous report (*pval); false when
 * the field is not known for it. */
static bool log_field(size_t k, const struct vms_host_vm *vm, const struct vms_host_vcpu *v,
		      const struct vms_host_vcpu *pv, const struct kvm_snapshot *ks,
		      const struct kvm_snapshot *pks, double *val, double *pval, bool *has_prev)
{
	*has_prev = false;
	if (k < LOG_CPU) {
		const uint64_t *f[2][LOG_CPU] = {
			{ &v->run_ns, &v->wait_ns, &v->user_ns, &v->system_ns, &v->guest_ns },
			{ pv ? &pv->run_ns : NULL, pv ? &pv->wait_ns : NULL,
			  pv ? &pv->user_ns : NULL, pv ? &pv->system_ns : NULL,
			  pv ? &pv->guest_ns : NULL },
		};

		*val = (double)*f[0][k] / 1e9;
		if (pv) {
			*pval = (double)*f[1][k] / 1e9;
			*has_prev = true;
		}
		return !(v->stat_err && v->schedstat_err);
	}
	if (k < LOG_CPU + NKEYS) {
		const struct vcpu_kvm *kv = kvm_find(ks, vm->pid, v->tid);
		const struct vcpu_kvm *pk = pks ? kvm_find(pks, vm->pid, v->tid) : NULL;
		size_t key = k - LOG_CPU;

		if (!kv || kv->err || kv->v[key] == UINT64_MAX)
			return false;
		*val = (double)kv->v[key];
		if (pk && !pk->err && pk->v[key] != UINT64_MAX) {
			*pval = (double)pk->v[key];
			*has_prev = true;
		}
		return true;
	}
	{
		const struct tp_vm *t = tp_find(vm->pid);
		size_t e = k - LOG_CPU - NKEYS, i;

		if (!t || !t->tc)
			return false;
		for (i = 0; i < t->ntids && t->tids[i] != v->tid; i++)
			;
		if (i == t->ntids || !t->valid[i * NTP + e])
			return false;
		*val = (double)t->now[i * NTP + e];
		*pval = (double)t->prev[i * NTP + e];
		*has_prev = t->has_prev;
		return true;
	}
}

static void log_report(struct log_sink *ls, const struct stat_args *a, struct vms_host_vm *vms,
		       size_t n, const struct vms_host_vm *prev, size_t nprev, double dt,
		       const struct kvm_snapshot *ks, const struct kvm_snapshot *pks)
{
	char ts[80], name[96];

	iso_time(ts, sizeof(ts));
	for (size_t i = 0; i < n; i++) {
		const struct vms_host_vm *vm = &vms[i], *pvm = NULL;
		double sum[LOG_FIELDS] = { 0 }, rsum[LOG_FIELDS] = { 0 };
		bool any[LOG_FIELDS] = { false }, rate_ok[LOG_FIELDS];

		if (!vm_selected(a, vm))
			continue;
		for (size_t k = 0; k < nprev; k++)
			if (prev[k].pid == vm->pid)
				pvm = &prev[k];
		for (size_t k = 0; k < LOG_FIELDS; k++)
			rate_ok[k] = dt > 0;
		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_host_vcpu *v = &vm->vcpus[j], *pv = NULL;

			for (size_t m = 0; pvm && m < pvm->nvcpus; m++)
				if (pvm->vcpus[m].tid == v->tid)
					pv = &pvm->vcpus[m];
			for (size_t k = 0; k < LOG_FIELDS; k++) {
				double val, pval = 0, rate = NAN;
				bool has_prev;

				if (!log_field(k, vm, v, pv, ks, pks, &val, &pval, &has_prev))
					continue;
				if (has_prev && dt > 0 && val >= pval)
					rate = (val - pval) / dt;
				else
					rate_ok[k] = false;
				log_row(ls, a, ts, vm, v->vcpu,
					log_field_name(k, name, sizeof(name)), val, rate);
				sum[k] += val;
				rsum[k] += isnan(rate) ? 0 : rate;
				any[k] = true;
			}
		}
		/* The VM's sums, as kvm_stat shows them. */
		for (size_t k = 0; k < LOG_FIELDS; k++)
			if (any[k])
				log_row(ls, a, ts, vm, -1, log_field_name(k, name, sizeof(name)),
					sum[k], rate_ok[k] ? rsum[k] : NAN);
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

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmd_stat_run(int argc, char **argv)
{
	struct stat_args a;
	struct vms_host_vm *prev = NULL;
	struct kvm_snapshot ks_prev = { NULL, 0 };
	struct vms_host_cpu *hprev = NULL;
	struct log_sink ls = { NULL, 0, false, 0 };
	size_t nprev = 0, nhprev = 0;
	uint64_t prev_ts = 0;
	unsigned long long reports = 0;
	int ret = parse_args(argc, argv, &a), rc = 0;

	if (ret) {
		if (a.has_fields)
			regfree(&a.fields);
		return ret;
	}
	cli_setup_log(CMD, a.verbose);
	if (a.log && (ret = log_open(&ls, &a, mono_ns()))) {
		if (a.has_fields)
			regfree(&a.fields);
		return cli_error(CMD, "cannot open the log %s: %s", a.output, strerror(-ret));
	}
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!interrupted) {
		struct vms_host_vm *vms;
		struct vms_host_cpu *cpus = NULL;
		size_t n, matched = 0, ncpus = 0;
		uint64_t ts;
		double dt;

		ret = vms_host_vms_list(NULL, &vms, &n);
		if (ret) {
			vms_host_vms_free(prev, nprev);
			free(ks_prev.vcpus);
			free(hprev);
			return cli_error(CMD, "cannot list processes in /proc: %s",
					 vms_strerror(ret));
		}
		ts = mono_ns();
		dt = prev_ts ? (ts - prev_ts) / 1e9 : 0;
		/* Without it the report lacks its host section, nothing else. */
		vms_host_cpus_read(NULL, &cpus, &ncpus);
		for (size_t i = 0; i < n; i++)
			matched += vm_selected(&a, &vms[i]);
		if (a.events && (a.log || a.format != CLI_FORMAT_CSV))
			tp_update(&a, vms, n);
		if (a.log) {
			struct kvm_snapshot ks;

			kvm_snapshot_take(&ks, vms, n);
			log_rotate(&ls, &a, ts);
			log_report(&ls, &a, vms, n, prev, nprev, dt, &ks, &ks_prev);
			free(ks_prev.vcpus);
			ks_prev = ks;
			if (ls.err) {
				rc = cli_error(CMD, "writing the log %s failed: %s",
					       a.output ? a.output : "(stdout)", strerror(ls.err));
				interrupted = 1;
			}
		} else if (a.format == CLI_FORMAT_JSON)
			print_json(&a, vms, n, ts, cpus, ncpus, hprev, nhprev, dt);
		else if (a.format == CLI_FORMAT_CSV)
			print_csv(&a, vms, n, reports == 0, ts);
		else if (!matched && !a.pid && !a.guest)
			printf("no KVM virtual machine runs on this host\n");
		else {
			struct kvm_snapshot ks;

			kvm_snapshot_take(&ks, vms, n);
			print_table(&a, vms, n, prev, nprev, prev ? (ts - prev_ts) / 1e9 : 0, &ks,
				    &ks_prev);
			free(ks_prev.vcpus);
			ks_prev = ks;
		}
		if (!a.log && a.format == CLI_FORMAT_TABLE && cpus &&
		    (matched || (!a.pid && !a.guest)))
			print_host_table(cpus, ncpus, hprev, nhprev, dt);
		free(hprev);
		hprev = cpus;
		nhprev = ncpus;
		if (!matched && (a.pid || a.guest)) {
			if (a.pid && a.guest)
				cli_error(CMD, "no VM named %s with pid %d", a.guest, a.pid);
			else if (a.pid)
				cli_error(CMD, "no VM with pid %d (is the process a VMM?)", a.pid);
			else
				cli_error(CMD, "no VM named %s", a.guest);
			rc = CLI_EXIT_FAIL;
		}
		fflush(stdout);
		vms_host_vms_free(prev, nprev);
		prev = vms;
		nprev = n;
		prev_ts = ts;
		reports++;
		if (a.once || (a.count && reports >= a.count))
			break;
		if (a.format == CLI_FORMAT_TABLE && !a.log)
			printf("\n");
		{
			struct timespec ts_sleep = { (time_t)(a.interval_ns / 1000000000ULL),
						     (long)(a.interval_ns % 1000000000ULL) };

			nanosleep(&ts_sleep, NULL);
		}
	}
	vms_host_vms_free(prev, nprev);
	free(ks_prev.vcpus);
	free(hprev);
	tp_free_all();
	if (ls.f && ls.f != stdout && fclose(ls.f) && !rc)
		rc = cli_error(CMD, "writing the log %s failed: %s", a.output, strerror(errno));
	if (a.has_fields)
		regfree(&a.fields);
	return rc;
}

const struct vms_cmd cmd_stat = {
	.name = "stat",
	.summary = "list the host's VMs with their vCPU threads and readable counters",
	.usage = usage_text,
	.run = cmd_stat_run,
};
