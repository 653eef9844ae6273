// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope record: record the kvm and sched events of chosen VMs (default: all) into a
 * .dat file that vmscope report, trace-cmd report and KernelShark read.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vmscope/record.h"

#define CMD "record"
#define MAX_SEL 256

static const char usage_text[] =
	"Usage: vmscope record [OPTIONS]\n"
	"\n"
	"Record the kvm events of chosen VMs (filtered in the kernel by their threads) and the\n"
	"host's sched events into a trace-cmd .dat file, until --duration or SIGINT/SIGTERM.\n"
	"The file names the VMs and their vCPU threads, so a report needs nothing else.\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE        the trace file [vmscope.dat]\n"
	"  -p, --pid PID            record the VM of this process (repeatable)\n"
	"  -g, --guest NAME         record the VM with this name (repeatable)\n"
	"                           (default: every VM of the host, as vmscope stat lists them)\n"
	"  -d, --duration TIME      stop after TIME (e.g. 10s) [until SIGINT]\n"
	"  -b, --buffer-size KIB    ring buffer per CPU, KiB [16384]\n"
	"  -C, --clock CLOCK        trace clock [local]\n"
	"      --file-version VER   6 or 7 [7]\n"
	"      --compression ALG    version 7: zstd, zlib or none [zstd]\n"
	"      --sched-vm-only      record sched events of the VMs' threads only (smaller;\n"
	"                           loses who else ran on the host CPUs)\n"
	"  -q, --quiet              no progress and no summary\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Needs root (tracefs). Works in its own tracefs instance, always removed at the end.\n";

struct record_args {
	struct vms_record_opts opts;
	int pids[MAX_SEL];
	const char *names[MAX_SEL];
	bool quiet, verbose;
};

static int parse_args(int argc, char **argv, struct record_args *a)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "pid", required_argument, NULL, 'p' },
		{ "guest", required_argument, NULL, 'g' },
		{ "duration", required_argument, NULL, 'd' },
		{ "buffer-size", required_argument, NULL, 'b' },
		{ "clock", required_argument, NULL, 'C' },
		{ "file-version", required_argument, NULL, 'F' },
		{ "compression", required_argument, NULL, 'Z' },
		{ "sched-vm-only", no_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->opts.sz = sizeof(a->opts);
	a->opts.output = "vmscope.dat";
	a->opts.pids = a->pids;
	a->opts.names = a->names;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:p:g:d:b:C:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->opts.output = optarg;
			break;
		case 'p':
			if (cli_parse_uint(optarg, 1u << 22, &u) || !u)
				return cli_usage_error(CMD, "--pid takes a process id, not '%s'",
						       optarg);
			if (a->opts.npids >= MAX_SEL)
				return cli_usage_error(CMD, "at most %d --pid", MAX_SEL);
			a->pids[a->opts.npids++] = (int)u;
			break;
		case 'g':
			if (a->opts.nnames >= MAX_SEL)
				return cli_usage_error(CMD, "at most %d --guest", MAX_SEL);
			a->names[a->opts.nnames++] = optarg;
			break;
		case 'd':
			if (cli_parse_duration(optarg, &a->opts.duration_ns) ||
			    !a->opts.duration_ns)
				return cli_usage_error(CMD, "--duration takes a time > 0, not '%s'",
						       optarg);
			break;
		case 'b':
			if (cli_parse_uint(optarg, 1u << 22, &u) || u < 4)
				return cli_usage_error(CMD,
						       "--buffer-size takes KiB from 4 to 4194304, "
						       "not '%s'",
						       optarg);
			a->opts.buffer_kb = (unsigned int)u;
			break;
		case 'C':
			a->opts.clock = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "6") && strcmp(optarg, "7"))
				return cli_usage_error(CMD, "--file-version takes 6 or 7, not '%s'",
						       optarg);
			a->opts.version = atoi(optarg);
			break;
		case 'Z':
			if (strcmp(optarg, "zstd") && strcmp(optarg, "zlib") &&
			    strcmp(optarg, "none"))
				return cli_usage_error(CMD,
						       "--compression takes zstd, zlib or none, "
						       "not '%s'",
						       optarg);
			a->opts.compression = optarg;
			break;
		case 'S':
			a->opts.sched_vm_only = true;
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
	if (a->opts.compression && a->opts.version == 6)
		return cli_usage_error(CMD, "--compression needs --file-version 7");
	return 0;
}

struct waiter {
	struct vms_recorder *r;
	sigset_t set;
};

static void *signal_thread(void *arg)
{
	struct waiter *w = arg;
	int sig;

	for (;;) {
		if (sigwait(&w->set, &sig))
			continue;
		if (sig == SIGUSR2)
			break;
		vms_recorder_stop(w->r);
	}
	return NULL;
}

static void progress(uint64_t pages, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "\rvmscope record: %" PRIu64 " pages", pages);
}

static int cmd_record_run(int argc, char **argv)
{
	struct record_args a;
	struct vms_recorder *r;
	struct waiter w;
	pthread_t thr;
	bool show_progress;
	uint64_t lost = 0;
	int ret;

	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	sigemptyset(&w.set);
	sigaddset(&w.set, SIGINT);
	sigaddset(&w.set, SIGTERM);
	sigaddset(&w.set, SIGHUP);
	sigaddset(&w.set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &w.set, NULL);
	ret = vms_recorder_new(&a.opts, &r);
	if (ret)
		return cli_error(CMD, "%s", vms_recorder_last_error(NULL));
	w.r = r;
	if (pthread_create(&thr, NULL, signal_thread, &w)) {
		vms_recorder_free(r);
		return cli_error(CMD, "cannot start the signal thread");
	}
	if (!a.quiet) {
		for (size_t i = 0; i < vms_recorder_nvms(r); i++) {
			const char *name;
			unsigned int nv;
			int pid;

			vms_recorder_vm(r, i, &pid, &name, &nv);
			fprintf(stderr, "vmscope record: VM %d \"%s\", %u vCPUs\n", pid, name, nv);
		}
	}
	show_progress = !a.quiet && isatty(STDERR_FILENO);
	ret = vms_recorder_run(r, show_progress ? progress : NULL, NULL);
	if (show_progress)
		fprintf(stderr, "\r%60s\r", "");
	pthread_kill(thr, SIGUSR2);
	pthread_join(thr, NULL);
	if (ret) {
		cli_error(CMD, "%s",
			  vms_recorder_last_error(r)[0] ? vms_recorder_last_error(r)
							: vms_strerror(ret));
		vms_recorder_free(r);
		return CLI_EXIT_FAIL;
	}
	for (unsigned int c = 0; c < vms_recorder_ncpus(r); c++) {
		struct vms_record_cpu_stats st;

		vms_recorder_cpu_stats(r, c, &st);
		lost += st.overrun + st.dropped;
		if (!a.quiet && (st.pages || st.overrun || st.dropped))
			fprintf(stderr,
				"vmscope record: CPU %u: %" PRIu64 " pages, %" PRIu64
				" events lost (overrun %" PRIu64 ", dropped %" PRIu64 ")\n",
				c, st.pages, st.overrun + st.dropped, st.overrun, st.dropped);
	}
	if (!a.quiet)
		fprintf(stderr, "vmscope record: wrote %s%s\n", a.opts.output,
			lost ? "; events were lost: a larger --buffer-size would help" : "");
	vms_recorder_free(r);
	return 0;
}

const struct vms_cmd cmd_record = {
	.name = "record",
	.summary = "record the kvm and sched events of chosen VMs into a .dat file",
	.usage = usage_text,
	.run = cmd_record_run,
};
