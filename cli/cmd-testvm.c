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
#include "testvm.h"
#include "vmscope/host.h"
#include "vmscope/stats.h"
#include "vmscope/testvm.h"

#define CMD "testvm"

static const char usage_text[] =
	"Usage: vmscope testvm [OPTIONS]\n"
	"       vmscope testvm --qemu[=BINARY] [OPTIONS]\n"
	"       vmscope testvm --truth-from-dump DUMP [-t FILE] [-f FMT] [-n NAME]\n"
	"       vmscope testvm --write-image FILE | --print-tsc-khz\n"
	"\n"
	"Run the built-in test VM: a small VMM on the KVM API whose guest runs a duty-cycle\n"
	"load in guest user mode (idle is a real HLT), causes exits on demand, and counts\n"
	"everything it does. Prints a summary at the end; --truth writes the ground truth.\n"
	"The same guest boots under QEMU or libvirt as a multiboot kernel.\n"
	"\n"
	"Options:\n"
	"  -c, --vcpus N            vCPUs (threads named 'CPU n/KVM'), 1-64 [2]\n"
	"  -n, --name NAME          process name, as shown by ps/top [vmscope-testvm]\n"
	"  -P, --phase DUTY:TIME    a load phase: busy DUTY % of every period for TIME\n"
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
	"Under QEMU (the guest as a multiboot kernel, its truth read back from its memory):\n"
	"      --qemu               run the schedule under QEMU instead of the built-in VMM\n"
	"                           (not with --msr); --qemu=BINARY names the QEMU to run\n"
	"                           [qemu-system-x86_64]; --name is QEMU's -name\n"
	"      --qemu-arg ARG       append ARG to QEMU's command line (repeat: --qemu-arg=-cpu\n"
	"                           --qemu-arg=host)\n"
	"      --write-image FILE   write the multiboot image (QEMU -kernel, libvirt <kernel>)\n"
	"      --print-tsc-khz      print the guest TSC frequency its tsc_khz= needs here\n"
	"      --truth-from-dump DUMP  the truth of a guest QEMU ran, from a dump of its\n"
	"                           memory at 0x20000 (HMP: pmemsave 0x20000 0x60000 \"DUMP\")\n"
	"\n"
	"TIME takes ns, us, ms, s, m or h (a bare number is seconds). SIGINT or SIGTERM stops\n"
	"the VM cleanly (--qemu: pauses the guest); the truth file is still written. Needs\n"
	"read-write access to /dev/kvm. See doc/vmscope-testvm.md for the truth format and\n"
	"the guest's command line under QEMU and libvirt.\n";

/* What the command does besides running the built-in VM. */
enum testvm_mode { MODE_RUN, MODE_QEMU, MODE_WRITE_IMAGE, MODE_FROM_DUMP, MODE_TSC_KHZ };

struct testvm_cmd {
	struct testvm_args a;
	enum testvm_mode mode;
	const char *file; /* --write-image, --truth-from-dump */
	bool set[128];	  /* options given, by short letter, for the mode checks */
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

static int parse_args(int argc, char **argv, struct testvm_cmd *cmd)
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
		{ "qemu", optional_argument, NULL, 'Q' },
		{ "qemu-arg", required_argument, NULL, 'A' },
		{ "write-image", required_argument, NULL, 'W' },
		{ "truth-from-dump", required_argument, NULL, 'D' },
		{ "print-tsc-khz", no_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	struct testvm_args *a = &cmd->a;
	unsigned long long u;
	unsigned int npin = 0;
	int c, ret;

	memset(cmd, 0, sizeof(*cmd));
	a->opts.sz = sizeof(a->opts);
	a->opts.vcpus = 2;
	a->name = "vmscope-testvm";
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++)
		a->pin[i] = -1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:n:P:T:t:sf:dp:qvh", longopts, NULL)) != -1) {
		if (c > 0 && c < 128)
			cmd->set[c] = true;
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
		case 'Q':
			a->qemu = optarg ? optarg : "qemu-system-x86_64";
			break;
		case 'A':
			if (a->nqemu_args >= TESTVM_MAX_QEMU_ARGS)
				return cli_usage_error(CMD, "at most %d --qemu-arg",
						       TESTVM_MAX_QEMU_ARGS);
			a->qemu_args[a->nqemu_args++] = optarg;
			break;
		case 'W':
		case 'D':
		case 'K':
			if (cmd->mode != MODE_RUN)
				return cli_usage_error(CMD, "--write-image, --truth-from-dump and "
							    "--print-tsc-khz go alone");
			cmd->mode = c == 'W'   ? MODE_WRITE_IMAGE
				    : c == 'D' ? MODE_FROM_DUMP
					       : MODE_TSC_KHZ;
			cmd->file = optarg;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, &a->quiet, &a->verbose);
			if (ret)
				return ret;
			break;
		}
	}
	if (a->qemu) {
		if (cmd->mode != MODE_RUN)
			return cli_usage_error(CMD, "--qemu runs a VM: not with --write-image, "
						    "--truth-from-dump or --print-tsc-khz");
		cmd->mode = MODE_QEMU;
	}
	if (a->nqemu_args && cmd->mode != MODE_QEMU)
		return cli_usage_error(CMD, "--qemu-arg goes with --qemu");
	if (cmd->mode == MODE_QEMU && a->opts.msr_rate > 0)
		return cli_usage_error(CMD,
				       "--msr is not available with --qemu: QEMU has no MSR "
				       "filter that would make the WRMSRs exit to it (the guest "
				       "would take a #GP)");
	if (cmd->mode == MODE_WRITE_IMAGE || cmd->mode == MODE_TSC_KHZ ||
	    cmd->mode == MODE_FROM_DUMP) {
		/* Options of a run make no sense here: say so rather than ignore them. */
		static const char run_only[] = "cPTMIRHCsdp";

		for (const char *o = run_only; *o; o++)
			if (cmd->set[(unsigned char)*o])
				return cli_usage_error(
					CMD, "%s takes no options of a run",
					cmd->mode == MODE_FROM_DUMP	? "--truth-from-dump"
					: cmd->mode == MODE_WRITE_IMAGE ? "--write-image"
									: "--print-tsc-khz");
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
	bool finished; /* atomic */
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

		if (sig == SIGUSR2 || __atomic_load_n(&w->finished, __ATOMIC_ACQUIRE))
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

/* A VMM count as text, or "-" when the VMM that ran the guest did not report it. */
static const char *vmm_str(bool known, uint64_t val, char *buf, size_t len)
{
	if (!known)
		return "-";
	snprintf(buf, len, "%" PRIu64, val);
	return buf;
}

int testvm_close_truth(struct vms_testvm *vm, FILE *f, const char *path)
{
	int ret = vms_testvm_write_truth(vm, f);

	if (fclose(f) || ret) {
		cli_error(CMD, "cannot write the truth file %s: %s", path,
			  ret ? vms_strerror(ret) : strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

void testvm_print_summary(struct vms_testvm *vm)
{
	unsigned int n = vms_testvm_vcpus(vm), np = vms_testvm_nphases(vm);
	struct vms_testvm_vmm_counts vmm;
	/* A dump read back from another VMM has neither our pid nor our exit counts. */
	bool here = vms_testvm_vmm_counts(vm, 0, &vmm) == 0;

	if (here)
		printf("vmscope testvm: pid %d, ", getpid());
	else
		printf("vmscope testvm (read back from guest memory): ");
	printf("%u vCPUs, %u phases, period %.0f ms\n\n", n, np, vms_testvm_period_ns(vm) / 1e6);
	printf("%-5s %-5s %-4s %-8s %9s %9s %9s %7s %10s %6s %6s %6s %6s %6s\n", "phase", "duty",
	       "vcpu", "tid", "busy(s)", "idle(s)", "late(ms)", "busy%", "work", "mmio", "pio",
	       "msr", "hcall", "hlt");
	for (unsigned int p = 0; p < np; p++) {
		uint64_t s, e;
		bool complete;

		if (vms_testvm_phase_tsc(vm, p, &s, &e, &complete))
			continue;
		for (unsigned int i = 0; i < n; i++) {
			struct vms_testvm_vcpu_phase ph;
			char tid[16] = "-";
			double tot;

			vms_testvm_vcpu_phase(vm, i, p, &ph);
			tot = (double)(ph.busy_ns + ph.idle_ns);
			if (vms_testvm_vcpu_tid(vm, i)) /* unknown in a dump taken by hand */
				snprintf(tid, sizeof(tid), "%d", vms_testvm_vcpu_tid(vm, i));
			printf("%-5u %4u%% %-4u %-8s %9.3f %9.3f %9.3f %6.2f%% %10" PRIu64
			       " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64
			       "%s\n",
			       p, ph.duty, i, tid, ph.busy_ns / 1e9, ph.idle_ns / 1e9,
			       ph.late_ns / 1e6, tot > 0 ? 100.0 * ph.busy_ns / tot : 0.0, ph.work,
			       ph.mmio, ph.pio, ph.msr, ph.hypercall, ph.hlt,
			       complete ? "" : "  (stopped early)");
		}
	}
	printf("\nExits per vCPU: the guest's count, the VMM's count, KVM's own statistics\n");
	printf("%-4s %11s %9s %10s %9s %8s %8s %9s %8s %10s %10s %11s %10s\n", "vcpu", "mmio:guest",
	       "mmio:vmm", "mmio_exits", "pio:guest", "pio:vmm", "io_exits", "msr:guest", "msr:vmm",
	       "hlt:guest", "halt_exits", "hcall:guest", "hypercalls");
	for (unsigned int i = 0; i < n; i++) {
		struct vms_testvm_vcpu_phase tot;
		char b1[24], b2[24], b3[24], b4[24], v1[24], v2[24], v3[24];

		vms_testvm_vcpu_totals(vm, i, &tot);
		here = vms_testvm_vmm_counts(vm, i, &vmm) == 0;
		/* MMIO counts include the guest's control write (its DONE report). */
		printf("%-4u %11" PRIu64 " %9s %10s %9" PRIu64 " %8s %8s %9" PRIu64
		       " %8s %10" PRIu64 " %10s %11" PRIu64 " %10s\n",
		       i, tot.mmio + tot.mmio_control,
		       vmm_str(here, vmm.mmio_load + vmm.mmio_control + vmm.mmio_other, v1,
			       sizeof(v1)),
		       stat_delta_str(vm, i, "mmio_exits", b1, sizeof(b1)), tot.pio,
		       vmm_str(here, vmm.pio, v2, sizeof(v2)),
		       stat_delta_str(vm, i, "io_exits", b2, sizeof(b2)), tot.msr,
		       vmm_str(here, vmm.msr, v3, sizeof(v3)), tot.hlt,
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
	__atomic_store_n(&w.finished, true, __ATOMIC_RELEASE);
	pthread_kill(sigthr, SIGUSR2);
	pthread_join(sigthr, NULL);
	if (ret) {
		cli_error(CMD, "the test VM failed: %s",
			  *vms_testvm_last_error(vm) ? vms_testvm_last_error(vm)
						     : vms_strerror(ret));
		rc = CLI_EXIT_FAIL;
	}

	if (truth) {
		if (testvm_close_truth(vm, truth, a->truth))
			rc = CLI_EXIT_FAIL;
	}
	if (!a->quiet && !a->daemon) {
		if (a->format == CLI_FORMAT_JSON)
			vms_testvm_write_truth(vm, stdout);
		else
			testvm_print_summary(vm);
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
		_exit(a->qemu ? testvm_qemu_run(a, pfd[1]) : run_vm(a, pfd[1]));
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) == 1 && c == 'R')
		return 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : CLI_EXIT_FAIL;
}

/* --print-tsc-khz: what the guest's command line needs as tsc_khz=. */
static int print_tsc_khz(void)
{
	uint64_t khz;
	int ret = vms_testvm_host_tsc_khz(&khz);

	if (ret)
		return cli_error(
			CMD, "cannot read KVM's TSC frequency: %s%s", vms_testvm_last_error(NULL),
			ret == -ENOENT	 ? ": is the kvm module loaded?"
			: ret == -EACCES ? ": run as root or join the group that owns /dev/kvm"
					 : "");
	printf("%" PRIu64 "\n", khz);
	return 0;
}

/* --write-image FILE: the guest as a multiboot kernel, for QEMU's -kernel. */
static int write_image(const char *path)
{
	size_t size;
	const void *img = vms_testvm_multiboot_image(&size);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(img, 1, size, f) != size || fclose(f)) {
		int err = errno;

		if (f)
			fclose(f);
		return cli_error(CMD, "cannot write the image %s: %s", path, strerror(err));
	}
	return 0;
}

/* --truth-from-dump DUMP: the truth of a guest that ran under QEMU or libvirt. */
static int truth_from_dump(const struct testvm_cmd *cmd)
{
	const struct testvm_args *a = &cmd->a;
	struct vms_testvm_dump_opts opts = { .sz = sizeof(opts), .vmm_pio = -1 };
	struct vms_testvm *vm;
	/* More than any shared block: a dump of a larger range still has it at its start. */
	size_t cap = 64u << 20, len = 0;
	unsigned char *buf = malloc(cap);
	FILE *f = fopen(cmd->file, "r");
	int ret, rc = 0;

	if (!buf || !f) {
		ret = errno;
		free(buf);
		if (f)
			fclose(f);
		return cli_error(CMD, "cannot read the dump %s: %s", cmd->file, strerror(ret));
	}
	len = fread(buf, 1, cap, f);
	ret = ferror(f) ? errno : 0;
	fclose(f);
	if (ret) {
		free(buf);
		return cli_error(CMD, "cannot read the dump %s: %s", cmd->file, strerror(ret));
	}
	opts.name = cmd->set['n'] ? a->name : NULL;
	ret = vms_testvm_open_dump(buf, len, &opts, &vm);
	free(buf);
	if (ret)
		return cli_error(CMD, "%s: %s", cmd->file, vms_testvm_last_error(NULL));
	if (a->truth) {
		FILE *t = fopen(a->truth, "w");

		ret = t ? vms_testvm_write_truth(vm, t) : -errno;
		if (!t || fclose(t) || ret) {
			cli_error(CMD, "cannot write the truth file %s: %s", a->truth,
				  ret ? vms_strerror(ret) : strerror(errno));
			rc = CLI_EXIT_FAIL;
		}
	}
	if (!a->quiet) {
		if (a->format == CLI_FORMAT_JSON)
			vms_testvm_write_truth(vm, stdout);
		else
			testvm_print_summary(vm);
	}
	vms_testvm_free(vm);
	return rc;
}

static int cmd_testvm_run(int argc, char **argv)
{
	struct testvm_cmd cmd;
	struct testvm_args *a = &cmd.a;
	sigset_t set;
	int ret = parse_args(argc, argv, &cmd);

	if (ret)
		return ret;
	cli_setup_log(CMD, a->verbose);
	switch (cmd.mode) {
	case MODE_TSC_KHZ:
		return print_tsc_khz();
	case MODE_WRITE_IMAGE:
		return write_image(cmd.file);
	case MODE_FROM_DUMP:
		return truth_from_dump(&cmd);
	case MODE_RUN:
	case MODE_QEMU:
		break;
	}
	/* Every thread blocks these; the signal thread (or the QEMU supervisor) takes them
	 * with sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (a->daemon)
		return daemonize(a);
	return cmd.mode == MODE_QEMU ? testvm_qemu_run(a, -1) : run_vm(a, -1);
}

const struct vms_cmd cmd_testvm = {
	.name = "testvm",
	.summary = "run the built-in test VM and print its exact ground truth",
	.usage = usage_text,
	.run = cmd_testvm_run,
};
