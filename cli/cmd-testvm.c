// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope testvm: run the built-in test VM (lib/testvm) with a duty-cycle schedule and
 * exits on demand, print what it did, and write the exact ground truth for other tools
 * and tests to compare against.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vmscope/host.h"
#include "vmscope/stats.h"
#include "vmscope/testvm.h"

#define CMD "testvm"

static const char usage_text[] =
	"Usage: vmscope testvm [OPTIONS]\n"
	"\n"
	"Run the built-in test VM: a small VMM on the KVM API whose guest runs a duty-cycle\n"
	"load in guest user mode (idle is a real HLT), causes exits on demand, and counts\n"
	"everything it does. Prints a summary at the end; --truth writes the ground truth.\n"
	"\n"
	"Options:\n"
	"  -c, --vcpus N            vCPUs (threads named 'CPU n/KVM'), 1-64 [2]\n"
	"  -n, --name NAME          process name, as shown by ps/top [vmscope-testvm]\n"
	"  -P, --phase DUTY:TIME    a load phase: busy DUTY %% of every period for TIME\n"
	"                           (e.g. 75:60s); repeat for a schedule [0:2s 75:4s 90:4s]\n"
	"  -T, --period TIME        duty-cycle period [100ms]\n"
	"      --mmio RATE          MMIO writes to unbacked guest memory (exits to the VMM)\n"
	"                           per second of busy time per vCPU [0]\n"
	"      --pio RATE           port writes (exits to the VMM) per second of busy time per\n"
	"                           vCPU [0]\n"
	"      --msr RATE           WRMSRs of a filtered MSR (exits to the VMM) per second of\n"
	"                           busy time per vCPU [0]\n"
	"      --hypercall RATE     VMCALL/VMMCALL from guest user mode (exits to the host\n"
	"                           kernel, answered -KVM_EPERM) per second of busy time [0]\n"
	"      --pin CPU[,CPU...]   pin vCPU n's thread to the n-th host CPU listed\n"
	"  -t, --truth FILE         write the ground truth as JSON (also after SIGTERM)\n"
	"  -s, --stats              print the KVM binary statistics of every vCPU at the end\n"
	"  -f, --format FMT         summary format: table or json [table]\n"
	"  -d, --daemon             run in the background (returns once the VM runs)\n"
	"  -p, --pidfile FILE       with --daemon: write the VM's pid here\n"
	"  -q, --quiet              no summary, no progress\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"TIME takes ns, us, ms, s, m or h (a bare number is seconds). SIGINT or SIGTERM stops\n"
	"the VM cleanly; the truth file is still written. Needs read-write access to\n"
	"/dev/kvm. See doc/vmscope-testvm.md for the truth format.\n";

struct testvm_args {
	struct vms_testvm_opts opts;
	struct vms_testvm_phase phases[VMS_TESTVM_MAX_PHASES];
	int pin[VMS_TESTVM_MAX_VCPUS];
	const char *name, *truth, *pidfile;
	bool stats, daemon, quiet, verbose;
	enum cli_format format;
};

static int parse_phase(const char *s, struct vms_testvm_phase *ph)
{
	unsigned long long duty;
	char buf[64], *colon;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (cli_parse_uint(buf, 100, &duty) || cli_parse_duration(colon + 1, &ph->duration_ns) ||
	    !ph->duration_ns)
		return -EINVAL;
	ph->duty = (unsigned int)duty;
	return 0;
}

static int parse_pin(const char *s, struct testvm_args *a, unsigned int *npin)
{
	char buf[512], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	*npin = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long long cpu;

		if (*npin >= VMS_TESTVM_MAX_VCPUS || cli_parse_uint(tok, CPU_SETSIZE - 1, &cpu))
			return -EINVAL;
		a->pin[(*npin)++] = (int)cpu;
	}
	return *npin ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, struct testvm_args *a)
{
	static const struct option longopts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "phase", required_argument, NULL, 'P' },
		{ "period", required_argument, NULL, 'T' },
		{ "mmio", required_argument, NULL, 'M' },
		{ "pio", required_argument, NULL, 'I' },
		{ "msr", required_argument, NULL, 'R' },
		{ "hypercall", required_argument, NULL, 'H' },
		{ "pin", required_argument, NULL, 'C' },
		{ "truth", required_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	unsigned int npin = 0;
	int c;

	memset(a, 0, sizeof(*a));
	a->opts.sz = sizeof(a->opts);
	a->opts.vcpus = 2;
	a->name = "vmscope-testvm";
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++)
		a->pin[i] = -1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:n:P:T:t:sf:dp:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (cli_parse_uint(optarg, VMS_TESTVM_MAX_VCPUS, &u) || !u)
				return cli_usage_error(CMD,
						       "--vcpus takes a number from 1 to %d, "
						       "not '%s'",
						       VMS_TESTVM_MAX_VCPUS, optarg);
			a->opts.vcpus = (unsigned int)u;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > 15)
				return cli_usage_error(CMD, "--name takes 1 to 15 characters (the "
							    "kernel's limit for a process name)");
			a->name = optarg;
			break;
		case 'P':
			if (a->opts.nphases >= VMS_TESTVM_MAX_PHASES)
				return cli_usage_error(CMD, "at most %d phases",
						       VMS_TESTVM_MAX_PHASES);
			if (parse_phase(optarg, &a->phases[a->opts.nphases]))
				return cli_usage_error(CMD,
						       "--phase takes DUTY:TIME with DUTY 0-100 "
						       "and TIME > 0 (e.g. 75:60s), not '%s'",
						       optarg);
			a->opts.nphases++;
			break;
		case 'T':
			if (cli_parse_duration(optarg, &a->opts.period_ns) ||
			    a->opts.period_ns < 1000000 || a->opts.period_ns > 3600000000000ULL)
				return cli_usage_error(CMD,
						       "--period takes a time from 1ms to 1h, "
						       "not '%s'",
						       optarg);
			break;
		case 'M':
		case 'I':
		case 'R':
		case 'H': {
			const char *opt = c == 'M'   ? "mmio"
					  : c == 'I' ? "pio"
					  : c == 'R' ? "msr"
						     : "hypercall";
			double r;

			if (cli_parse_double(optarg, &r) || r < 0 || r > 1e6)
				return cli_usage_error(CMD,
						       "--%s takes a rate from 0 to 1000000 per "
						       "second, not '%s'",
						       opt, optarg);
			*(c == 'M'   ? &a->opts.mmio_rate
			  : c == 'I' ? &a->opts.pio_rate
			  : c == 'R' ? &a->opts.msr_rate
				     : &a->opts.hypercall_rate) = r;
			break;
		}
		case 'C':
			if (parse_pin(optarg, a, &npin))
				return cli_usage_error(CMD,
						       "--pin takes a list of host CPU numbers "
						       "(e.g. 0,1), not '%s'",
						       optarg);
			break;
		case 't':
			a->truth = optarg;
			break;
		case 's':
			a->stats = true;
			break;
		case 'f':
			if (cli_format_option(CMD, optarg, false, &a->format))
				return CLI_EXIT_USAGE;
			break;
		case 'd':
			a->daemon = true;
			break;
		case 'p':
			a->pidfile = optarg;
			break;
		case 'q':
			a->quiet = true;
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
	if (npin && npin != a->opts.vcpus)
		return cli_usage_error(CMD, "--pin lists %u CPUs for %u vCPUs", npin,
				       a->opts.vcpus);
	if (a->pidfile && !a->daemon)
		return cli_usage_error(CMD, "--pidfile goes with --daemon");
	if (!a->opts.nphases) {
		static const struct vms_testvm_phase def[] = { { 0, 2000000000ULL },
							       { 75, 4000000000ULL },
							       { 90, 4000000000ULL } };

		memcpy(a->phases, def, sizeof(def));
		a->opts.nphases = 3;
	}
	a->opts.phases = a->phases;
	a->opts.pin = npin ? a->pin : NULL;
	return 0;
}

/* ---- signals and progress ---- */

struct waiter {
	struct vms_testvm *vm;
	sigset_t set;
	bool progress;
	uint64_t total_ns, start_ns;
	volatile bool finished;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Waits for SIGINT/SIGTERM (stop the VM) or SIGUSR2 (the run ended); prints progress. */
static void *signal_thread(void *arg)
{
	struct waiter *w = arg;
	struct timespec tick = { 1, 0 };

	for (;;) {
		int sig = sigtimedwait(&w->set, NULL, &tick);

		if (sig == SIGUSR2 || w->finished)
			break;
		if (sig == SIGINT || sig == SIGTERM) {
			vms_testvm_stop(w->vm);
			continue;
		}
		if (w->progress) {
			uint64_t el = now_ns() - w->start_ns;

			if (el > w->total_ns)
				el = w->total_ns;
			fprintf(stderr, "\rvmscope testvm: %5.1f s of %.1f s", el / 1e9,
				w->total_ns / 1e9);
		}
	}
	if (w->progress)
		fprintf(stderr, "\r%60s\r", "");
	return NULL;
}

/* ---- output ---- */

/*
 * One statistics file: every statistic, its type and unit, its value in base units, and
 * for a vCPU (@vcpu >= 0) the growth of each cumulative counter over the run.
 */
static void print_stats_file(struct vms_testvm *vm, int vcpu, struct vms_stats *st,
			     const char *what)
{
	printf("\nKVM binary statistics of %s (%s): %zu statistics\n", what, vms_stats_id(st),
	       vms_stats_count(st));
	printf("  %-32s %-12s %-8s %20s %14s\n", "name", "type", "unit", "value",
	       vcpu >= 0 ? "run delta" : "");
	for (size_t d = 0; d < vms_stats_count(st); d++) {
		const struct vms_stat_desc *desc = vms_stats_desc(st, d);

		if (desc->size == 1) {
			char dbuf[32] = "";
			uint64_t delta;

			if (vcpu >= 0 && desc->type == VMS_STAT_CUMULATIVE &&
			    !vms_testvm_stat_delta(vm, (unsigned int)vcpu, desc->name, &delta))
				snprintf(dbuf, sizeof(dbuf), "%" PRIu64, delta);
			if (desc->unit == VMS_UNIT_NONE || desc->unit == VMS_UNIT_BOOLEAN)
				printf("  %-32s %-12s %-8s %20" PRIu64 " %14s\n", desc->name,
				       vms_stat_type_name(desc->type),
				       vms_stat_unit_name(desc->unit), vms_stats_value(st, d),
				       dbuf);
			else
				printf("  %-32s %-12s %-8s %20.9g %14s\n", desc->name,
				       vms_stat_type_name(desc->type),
				       vms_stat_unit_name(desc->unit),
				       vms_stat_in_units(desc, vms_stats_value(st, d)), dbuf);
		} else {
			const uint64_t *vals = vms_stats_values(st, d);
			uint64_t sum = 0;

			for (uint32_t b = 0; b < desc->size; b++)
				sum += vals[b];
			printf("  %-32s %-12s %-8s %20" PRIu64 " samples in %u buckets\n",
			       desc->name, vms_stat_type_name(desc->type),
			       vms_stat_unit_name(desc->unit), sum, desc->size);
		}
	}
}

static void print_stats(struct vms_testvm *vm)
{
	char what[32];

	if (vms_testvm_vm_stats(vm))
		print_stats_file(vm, -1, vms_testvm_vm_stats(vm), "the VM");
	else
		printf("\nThe VM: no binary statistics (KVM_GET_STATS_FD needs Linux 5.14)\n");
	for (unsigned int i = 0; i < vms_testvm_vcpus(vm); i++) {
		struct vms_stats *st = vms_testvm_vcpu_stats(vm, i);

		snprintf(what, sizeof(what), "vCPU %u", i);
		if (st)
			print_stats_file(vm, (int)i, st, what);
		else
			printf("\nvCPU %u: no binary statistics (KVM_GET_STATS_FD needs Linux "
			       "5.14)\n",
			       i);
	}
}

/* A statistic's growth over the run as text, or "-" when the kernel has no such one. */
static const char *stat_delta_str(struct vms_testvm *vm, unsigned int i, const char *name,
				  char *buf, size_t len)
{
	uint64_t d;

	if (vms_testvm_stat_delta(vm, i, name, &d))
		return "-";
	snprintf(buf, len, "%" PRIu64, d);
	return buf;
}

static void print_summary(struct vms_testvm *vm, const struct testvm_args *a)
{
	unsigned int n = vms_testvm_vcpus(vm);

	printf("vmscope testvm: pid %d, %u vCPUs, %u phases, period %.0f ms\n\n", getpid(), n,
	       a->opts.nphases, (a->opts.period_ns ? a->opts.period_ns : 100000000ULL) / 1e6);
	printf("%-5s %-5s %-4s %-8s %9s %9s %9s %7s %10s %6s %6s %6s %6s %6s\n", "phase", "duty",
	       "vcpu", "tid", "busy(s)", "idle(s)", "late(ms)", "busy%", "work", "mmio", "pio",
	       "msr", "hcall", "hlt");
	for (unsigned int p = 0; p < a->opts.nphases; p++) {
		uint64_t s, e;
		bool complete;

		if (vms_testvm_phase_times(vm, p, &s, &e, &complete))
			continue;
		for (unsigned int i = 0; i < n; i++) {
			struct vms_testvm_vcpu_phase ph;
			double tot;

			vms_testvm_vcpu_phase(vm, i, p, &ph);
			tot = (double)(ph.busy_ns + ph.idle_ns);
			printf("%-5u %4u%% %-4u %-8d %9.3f %9.3f %9.3f %6.2f%% %10" PRIu64
			       " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64
			       "%s\n",
			       p, ph.duty, i, vms_testvm_vcpu_tid(vm, i), ph.busy_ns / 1e9,
			       ph.idle_ns / 1e9, ph.late_ns / 1e6,
			       tot > 0 ? 100.0 * ph.busy_ns / tot : 0.0, ph.work, ph.mmio, ph.pio,
			       ph.msr, ph.hypercall, ph.hlt, complete ? "" : "  (stopped early)");
		}
	}
	printf("\nExits per vCPU: the guest's count, the VMM's count, KVM's own statistics\n");
	printf("%-4s %11s %9s %10s %9s %8s %8s %9s %8s %10s %10s %11s %10s\n", "vcpu", "mmio:guest",
	       "mmio:vmm", "mmio_exits", "pio:guest", "pio:vmm", "io_exits", "msr:guest", "msr:vmm",
	       "hlt:guest", "halt_exits", "hcall:guest", "hypercalls");
	for (unsigned int i = 0; i < n; i++) {
		struct vms_testvm_vmm_counts vmm;
		struct vms_testvm_vcpu_phase tot;
		char b1[24], b2[24], b3[24], b4[24];

		vms_testvm_vcpu_totals(vm, i, &tot);
		vms_testvm_vmm_counts(vm, i, &vmm);
		/* MMIO counts include the guest's control write (its DONE report). */
		printf("%-4u %11" PRIu64 " %9" PRIu64 " %10s %9" PRIu64 " %8" PRIu64
		       " %8s %9" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10s %11" PRIu64 " %10s\n",
		       i, tot.mmio + tot.mmio_control,
		       vmm.mmio_load + vmm.mmio_control + vmm.mmio_other,
		       stat_delta_str(vm, i, "mmio_exits", b1, sizeof(b1)), tot.pio, vmm.pio,
		       stat_delta_str(vm, i, "io_exits", b2, sizeof(b2)), tot.msr, vmm.msr, tot.hlt,
		       stat_delta_str(vm, i, "halt_exits", b3, sizeof(b3)), tot.hypercall,
		       stat_delta_str(vm, i, "hypercalls", b4, sizeof(b4)));
	}
	if (vms_host_kvm_flavor(NULL) == VMS_KVM_PVM)
		printf("\nThis host's KVM is PVM (software virtualization): it emulates the "
		       "guest's "
		       "kernel-mode OUT\n(counted in insn_emulation, not io_exits) and answers "
		       "user-mode hypercalls without\ncounting them in hypercalls. See "
		       "doc/vmscope-testvm.md.\n");
}

/*
 * Daemon: the VM runs, every vCPU thread named: the caller may return (a recorder it starts
 * next sees them all). Start-up errors went to the caller's stderr; from now on nobody reads
 * it, and holding it open would keep the caller's pipes open.
 */
static void daemon_ready(void *ctx)
{
	int ready_fd = *(int *)ctx, nul = open("/dev/null", O_WRONLY);

	if (nul >= 0) {
		dup2(nul, STDERR_FILENO);
		close(nul);
	}
	(void)!write(ready_fd, "R", 1);
	close(ready_fd);
}

static int run_vm(struct testvm_args *a, int ready_fd)
{
	struct vms_testvm *vm = NULL;
	struct waiter w = { 0 };
	FILE *truth = NULL;
	pthread_t sigthr;
	uint64_t total = a->opts.start_delay_ns;
	int ret, rc = 0;

	if (prctl(PR_SET_NAME, a->name, 0, 0, 0) < 0)
		return cli_error(CMD, "cannot set the process name: %s", strerror(errno));
	/* Open the truth file first: a bad path should not cost a whole run. */
	if (a->truth) {
		truth = fopen(a->truth, "w");
		if (!truth) {
			cli_error(CMD, "cannot write the truth file %s: %s", a->truth,
				  strerror(errno));
			if (ready_fd >= 0)
				(void)!write(ready_fd, "E", 1);
			return CLI_EXIT_FAIL;
		}
	}
	if (ready_fd >= 0) {
		a->opts.started = daemon_ready;
		a->opts.started_ctx = &ready_fd;
	}
	ret = vms_testvm_new(&a->opts, &vm);
	if (ret) {
		const char *why = vms_testvm_last_error(NULL);

		if (ret == -ENOENT)
			cli_error(CMD,
				  "%s: is the kvm module loaded (modprobe kvm_intel or "
				  "kvm_amd)?",
				  why);
		else if (ret == -EACCES || ret == -EPERM)
			cli_error(CMD, "%s: run as root or join the group that owns /dev/kvm", why);
		else
			cli_error(CMD, "cannot create the test VM: %s",
				  *why ? why : vms_strerror(ret));
		if (ready_fd >= 0)
			(void)!write(ready_fd, "E", 1);
		if (truth)
			fclose(truth);
		return CLI_EXIT_FAIL;
	}

	for (unsigned int p = 0; p < a->opts.nphases; p++)
		total += a->phases[p].duration_ns;
	w.vm = vm;
	sigemptyset(&w.set);
	sigaddset(&w.set, SIGINT);
	sigaddset(&w.set, SIGTERM);
	sigaddset(&w.set, SIGUSR2);
	w.progress = !a->quiet && !a->daemon && isatty(STDERR_FILENO);
	w.total_ns = total + 50000000ULL;
	w.start_ns = now_ns();
	ret = pthread_create(&sigthr, NULL, signal_thread, &w);
	if (ret) {
		vms_testvm_free(vm);
		if (truth)
			fclose(truth);
		return cli_error(CMD, "cannot start the signal thread: %s", strerror(ret));
	}

	ret = vms_testvm_run(vm);
	w.finished = true;
	pthread_kill(sigthr, SIGUSR2);
	pthread_join(sigthr, NULL);
	if (ret) {
		cli_error(CMD, "the test VM failed: %s",
			  *vms_testvm_last_error(vm) ? vms_testvm_last_error(vm)
						     : vms_strerror(ret));
		rc = CLI_EXIT_FAIL;
	}

	if (truth) {
		ret = vms_testvm_write_truth(vm, truth);
		if (fclose(truth) || ret) {
			cli_error(CMD, "cannot write the truth file %s: %s", a->truth,
				  ret ? vms_strerror(ret) : strerror(errno));
			rc = CLI_EXIT_FAIL;
		}
	}
	if (!a->quiet && !a->daemon) {
		if (a->format == CLI_FORMAT_JSON)
			vms_testvm_write_truth(vm, stdout);
		else
			print_summary(vm, a);
		if (a->stats)
			print_stats(vm);
	}
	vms_testvm_free(vm);
	return rc;
}

/* Fork; the child runs the VM; the parent returns once the VM runs (or failed). */
static int daemonize(struct testvm_args *a)
{
	int pfd[2], status;
	char c = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return cli_error(CMD, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return cli_error(CMD, "fork: %s", strerror(errno));
	if (pid == 0) {
		int nul;

		close(pfd[0]);
		setsid();
		nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
			close(nul);
		}
		if (a->pidfile) {
			FILE *f = fopen(a->pidfile, "w");

			if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
				cli_error(CMD, "cannot write the pid file %s: %s", a->pidfile,
					  strerror(errno));
				(void)!write(pfd[1], "E", 1);
				_exit(CLI_EXIT_FAIL);
			}
		}
		_exit(run_vm(a, pfd[1]));
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) == 1 && c == 'R')
		return 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : CLI_EXIT_FAIL;
}

static int cmd_testvm_run(int argc, char **argv)
{
	struct testvm_args a;
	sigset_t set;
	int ret = parse_args(argc, argv, &a);

	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	/* Every thread blocks these; the signal thread takes them with sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (a.daemon)
		return daemonize(&a);
	return run_vm(&a, -1);
}

const struct vms_cmd cmd_testvm = {
	.name = "testvm",
	.summary = "run the built-in test VM and print its exact ground truth",
	.usage = usage_text,
	.run = cmd_testvm_run,
};
