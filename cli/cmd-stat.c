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
	"counters where the kernel allows reading them. Without --once, prints the same every\n"
	"interval with the growth since the previous one.\n"
	"\n"
	"Options:\n"
	"  -1, --once               print once and exit\n"
	"  -s, --interval TIME      time between reports [1s]\n"
	"  -n, --count N            stop after N reports [until SIGINT]\n"
	"  -p, --pid PID            only the VM of this process\n"
	"  -g, --guest NAME         only VMs with this name\n"
	"  -f, --format FMT         table, csv or json [table]\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0, 1 when no VM matched -p/-g, 2 for a wrong command line.\n";

struct stat_args {
	bool once, verbose;
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
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	int c;

	memset(a, 0, sizeof(*a));
	a->interval_ns = 1000000000ULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "1s:n:p:g:f:vh", longopts, NULL)) != -1) {
		switch (c) {
		case '1':
			a->once = true;
			break;
		case 's':
			if (cli_parse_duration(optarg, &a->interval_ns) ||
			    a->interval_ns < 10000000ULL)
				return cli_usage_error(CMD, "--interval takes a time of at least "
						       "10ms, not '%s'", optarg);
			break;
		case 'n':
			if (cli_parse_uint(optarg, 1ULL << 40, &a->count) || !a->count)
				return cli_usage_error(CMD, "--count takes a positive number, not '%s'",
						       optarg);
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
			if (cli_parse_format(optarg, &a->format))
				return cli_usage_error(CMD, "--format takes table, csv or json, not "
						       "'%s'", optarg);
			break;
		case 'v':
			a->verbose = true;
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

static void print_table(const struct stat_args *a, struct vms_host_vm *vms, size_t n,
			const struct vms_host_vm *prev, size_t nprev, double dt)
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
		printf("  %-4s %-8s %-10s %4s %10s %10s %10s %10s %11s %8s\n", "vcpu", "tid",
		       "thread", "cpu", "user(s)", "system(s)", "guest(s)", "run(s)",
		       "runq-wait(s)", pv ? "run%" : "slices");
		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_host_vcpu *v = &vm->vcpus[j];
			char idx[12] = "?";

			if (v->vcpu >= 0)
				snprintf(idx, sizeof(idx), "%d", v->vcpu);
			if (v->stat_err && v->schedstat_err) {
				printf("  %-4s %-8d %-10s unreadable: %s\n", idx, v->tid, v->comm,
				       vms_strerror(v->stat_err));
				continue;
			}
			printf("  %-4s %-8d %-10s %4d %10.2f %10.2f %10.2f %10.3f %11.3f", idx,
			       v->tid, v->comm, v->last_cpu, v->user_ns / 1e9, v->system_ns / 1e9,
			       v->guest_ns / 1e9, v->run_ns / 1e9, v->wait_ns / 1e9);
			if (pv) {
				const struct vms_host_vcpu *pvc = NULL;

				for (size_t k = 0; k < pv->nvcpus; k++)
					if (pv->vcpus[k].tid == v->tid)
						pvc = &pv->vcpus[k];
				if (pvc && dt > 0)
					printf(" %7.1f%%", 100.0 * (double)(v->run_ns - pvc->run_ns) /
								   (dt * 1e9));
				printf("\n");
			} else {
				printf(" %8" PRIu64 "\n", v->slices);
			}
		}
	}
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

			/* Names are quoted; a double quote inside is doubled (RFC 4180). */
			printf("%" PRIu64 ",%d,\"", ts_ns, vm->pid);
			for (const char *c = vm->name; *c; c++)
				printf(*c == '"' ? "\"\"" : "%c", *c);
			printf("\",%d,%d,%d,%.2f,%.2f,%.2f,%.9f,%.9f,%" PRIu64 "\n", v->vcpu, v->tid,
			       v->last_cpu, v->user_ns / 1e9, v->system_ns / 1e9, v->guest_ns / 1e9,
			       v->run_ns / 1e9, v->wait_ns / 1e9, v->slices);
		}
	}
}

static void print_json(const struct stat_args *a, struct vms_host_vm *vms, size_t n,
		       uint64_t ts_ns)
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
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	vms_json_finish(&j);
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
	size_t nprev = 0;
	uint64_t prev_ts = 0;
	unsigned long long reports = 0;
	int ret = parse_args(argc, argv, &a), rc = 0;

	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!interrupted) {
		struct vms_host_vm *vms;
		size_t n, matched = 0;
		uint64_t ts;

		ret = vms_host_vms_list(NULL, &vms, &n);
		if (ret) {
			vms_host_vms_free(prev, nprev);
			return cli_error(CMD, "cannot list processes in /proc: %s",
					 vms_strerror(ret));
		}
		ts = mono_ns();
		for (size_t i = 0; i < n; i++)
			matched += vm_selected(&a, &vms[i]);
		if (a.format == CLI_FORMAT_JSON)
			print_json(&a, vms, n, ts);
		else if (a.format == CLI_FORMAT_CSV)
			print_csv(&a, vms, n, reports == 0, ts);
		else if (!matched && !a.pid && !a.guest)
			printf("no KVM virtual machine runs on this host\n");
		else
			print_table(&a, vms, n, prev, nprev, prev ? (ts - prev_ts) / 1e9 : 0);
		if (!matched && (a.pid || a.guest)) {
			cli_error(CMD, "no VM %s%s%s%d", a.guest ? "named " : "",
				  a.guest ? a.guest : "", a.guest ? " or with pid " : "with pid ",
				  a.pid);
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
		if (a.format == CLI_FORMAT_TABLE)
			printf("\n");
		{
			struct timespec ts_sleep = { (time_t)(a.interval_ns / 1000000000ULL),
						     (long)(a.interval_ns % 1000000000ULL) };

			nanosleep(&ts_sleep, NULL);
		}
	}
	vms_host_vms_free(prev, nprev);
	return rc;
}

const struct vms_cmd cmd_stat = {
	.name = "stat",
	.summary = "list the host's VMs with their vCPU threads and readable counters",
	.usage = usage_text,
	.run = cmd_stat_run,
};
