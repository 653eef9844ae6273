// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope testvm --qemu: the test VM's schedule under QEMU instead of the built-in VMM. The
 * guest is the same, booted as a multiboot kernel (vms_testvm_multiboot_image()) with the
 * schedule on its command line; QEMU is started paused with a private QMP socket in a
 * temporary folder, its vCPU threads are pinned, KVM's statistics are read (query-stats),
 * and the guest runs. The guest's shared block is dumped (pmemsave) until every vCPU has
 * finished, then read back into the truth (vms_testvm_open_dump()) with what QEMU told:
 * thread ids, the statistics' growth, and the port writes it received (an isa-debugcon at
 * the load port writes one byte to a file for each).
 *
 * SIGINT or SIGTERM pause the guest and write the truth of what it did so far. QEMU and the
 * temporary folder go away in every case; QEMU dies with this process (PR_SET_PDEATHSIG).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testvm.h"
#include "vmscope/qmp.h"
#include "vmscope/testvm.h"

#define CMD "testvm"
#define QMP_TIMEOUT_MS 10000
#define POLL_MS 100
#define BOOT_TIMEOUT_S 60 /* SeaBIOS alone takes seconds when the host emulates it */
#define END_MARGIN_S 30
#define MAX_STATS 256

/* Scalar values of one vCPU's KVM statistics, by name. */
struct stat_list {
	size_t n;
	char *names[MAX_STATS];
	uint64_t vals[MAX_STATS];
};

struct qemu_run {
	const struct testvm_args *a;
	char dir[96]; /* short: QEMU's unix socket path has to fit in 108 bytes */
	char image[128], sock[128], log[128], console[128], pio[128], dump[128];
	pid_t pid;
	struct vms_qmp *qmp;
	unsigned int ncpus;
	int tids[VMS_TESTVM_MAX_VCPUS];
	struct stat_list begin[VMS_TESTVM_MAX_VCPUS], end[VMS_TESTVM_MAX_VCPUS];
	bool stats; /* query-stats answered */
	char err[512];
};

/* ---- the temporary folder ---- */

static int make_dir(struct qemu_run *r)
{
	const char *tmp = getenv("TMPDIR");

	/* QEMU's option syntax cannot take a comma in these paths, nor QMP's JSON (written
	 * without escaping) a quote: keep to plain path characters. */
	if (!tmp || !*tmp || strlen(tmp) > 64 ||
	    strspn(tmp, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
		    strlen(tmp))
		tmp = "/tmp";
	snprintf(r->dir, sizeof(r->dir), "%s/vmscope-qemu-XXXXXX", tmp);
	if (!mkdtemp(r->dir)) {
		cli_error(CMD, "cannot create a temporary folder in %s: %s", tmp, strerror(errno));
		r->dir[0] = '\0';
		return -1;
	}
	snprintf(r->image, sizeof(r->image), "%s/guest.mb", r->dir);
	snprintf(r->sock, sizeof(r->sock), "%s/qmp.sock", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/qemu.log", r->dir);
	snprintf(r->console, sizeof(r->console), "%s/console.log", r->dir);
	snprintf(r->pio, sizeof(r->pio), "%s/pio.log", r->dir);
	snprintf(r->dump, sizeof(r->dump), "%s/shared.bin", r->dir);
	return 0;
}

static void remove_dir(struct qemu_run *r)
{
	DIR *d;
	struct dirent *de;

	if (!r->dir[0])
		return;
	d = opendir(r->dir);
	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
	rmdir(r->dir);
}

/* The last lines of a file QEMU wrote (its stderr, the guest's console), on stderr. */
static void show_file(const char *what, const char *path)
{
	char buf[2048];
	FILE *f = fopen(path, "r");
	size_t n;
	long size;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n)
		fprintf(stderr, "--- %s ---\n%s%s", what, buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* ---- starting QEMU ---- */

/* qboot starts in a fraction of a second where SeaBIOS, emulated on KVM-PVM, takes seconds. */
static const char *find_qboot(const char *qemu, char *buf, size_t len)
{
	static const char *const dirs[] = { "/usr/share/qemu", "/usr/local/share/qemu" };
	char exe[PATH_MAX];

	if (strchr(qemu, '/') && realpath(qemu, exe)) {
		char *slash = strrchr(exe, '/');

		*slash = '\0';
		snprintf(buf, len, "%s/../share/qemu/qboot.rom", exe);
		if (!access(buf, R_OK) && !strchr(buf, ','))
			return buf;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(buf, len, "%s/qboot.rom", dirs[i]);
		if (!access(buf, R_OK))
			return buf;
	}
	return NULL;
}

static int start_qemu(struct qemu_run *r, const char *cmdline)
{
	const struct testvm_args *a = r->a;
	char name[128], smp[16], serial[160], qmp[192], chardev[192], qboot[PATH_MAX + 32],
		*o = name;
	const char *argv[64 + TESTVM_MAX_QEMU_ARGS];
	const char *bios;
	size_t n = 0;

	/* QEMU doubles a comma that belongs to a value. */
	o += sprintf(o, "guest=");
	for (const char *s = a->name; *s && o < name + sizeof(name) - 24; s++) {
		*o++ = *s;
		if (*s == ',')
			*o++ = ',';
	}
	strcpy(o, ",debug-threads=on"); /* vCPU threads named "CPU n/KVM" */
	snprintf(smp, sizeof(smp), "%u", a->opts.vcpus);
	snprintf(serial, sizeof(serial), "file:%s", r->console);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", r->sock);
	snprintf(chardev, sizeof(chardev), "file,id=tvmpio,path=%s", r->pio);
	argv[n++] = a->qemu;
	argv[n++] = "-name";
	argv[n++] = name;
	argv[n++] = "-enable-kvm";
	argv[n++] = "-cpu";
	argv[n++] = "max"; /* the host's CPUID, TSC-deadline timer included */
	argv[n++] = "-smp";
	argv[n++] = smp;
	argv[n++] = "-m";
	argv[n++] = "32";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-no-reboot";
	argv[n++] = "-S";
	argv[n++] = "-serial";
	argv[n++] = serial;
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	argv[n++] = "-chardev";
	argv[n++] = chardev;
	argv[n++] = "-device";
	argv[n++] = "isa-debugcon,iobase=0x5a0,chardev=tvmpio"; /* counts the load port's writes */
	argv[n++] = "-kernel";
	argv[n++] = r->image;
	argv[n++] = "-append";
	argv[n++] = cmdline;
	bios = find_qboot(a->qemu, qboot, sizeof(qboot));
	if (bios) {
		argv[n++] = "-bios";
		argv[n++] = bios;
	}
	for (unsigned int i = 0; i < a->nqemu_args; i++)
		argv[n++] = a->qemu_args[i];
	argv[n] = NULL;
	if (a->verbose) {
		fprintf(stderr, "vmscope testvm:");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %s", argv[i]);
		fputc('\n', stderr);
	}

	r->pid = fork();
	if (r->pid < 0)
		return cli_error(CMD, "fork: %s", strerror(errno)), -1;
	if (r->pid == 0) {
		sigset_t none;
		int nul = open("/dev/null", O_RDWR), log;

		/* Its own process group: a terminal's ^C goes to vmscope, which stops the
		 * guest and reads the truth before QEMU goes. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		log = open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execvp(a->qemu, (char *const *)argv);
		fprintf(stderr,
			"cannot run %s: %s (Debian: apt-get install qemu-system-x86; or name "
			"the binary with --qemu=BINARY)\n",
			a->qemu, strerror(errno));
		_exit(127);
	}
	return 0;
}

/* Has QEMU exited? Then say how, with its output. */
static bool qemu_gone(struct qemu_run *r, bool report)
{
	int status;

	if (r->pid <= 0)
		return true;
	if (waitpid(r->pid, &status, WNOHANG) != r->pid)
		return false;
	r->pid = 0;
	if (report) {
		if (WIFEXITED(status))
			cli_error(CMD, "QEMU exited (status %d)", WEXITSTATUS(status));
		else
			cli_error(CMD, "QEMU was killed by signal %d", WTERMSIG(status));
		show_file("QEMU's output", r->log);
		show_file("the guest's console", r->console);
	}
	return true;
}

static void stop_qemu(struct qemu_run *r)
{
	char err[256];

	if (r->qmp)
		vms_qmp_exec(r->qmp, "{\"execute\": \"quit\"}", 2000, NULL, err, sizeof(err));
	vms_qmp_close(r->qmp);
	r->qmp = NULL;
	for (int i = 0; i < 50 && !qemu_gone(r, false); i++) {
		struct timespec nap = { 0, 20000000 };

		nanosleep(&nap, NULL);
	}
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
}

/* ---- QMP: vCPU threads, statistics, memory ---- */

static int qmp_do(struct qemu_run *r, const char *cmd, struct vms_qjson **ret)
{
	int rc = vms_qmp_exec(r->qmp, cmd, QMP_TIMEOUT_MS, ret, r->err, sizeof(r->err));

	if (rc)
		cli_error(CMD, "QMP %s: %s", cmd, r->err);
	return rc;
}

/* vCPU index → thread id. */
static int read_vcpus(struct qemu_run *r)
{
	struct vms_qjson *cpus;
	int rc = qmp_do(r, "{\"execute\": \"query-cpus-fast\"}", &cpus);

	if (rc)
		return rc;
	for (size_t i = 0; cpus->type == VMS_QJSON_ARRAY && i < cpus->n; i++) {
		const struct vms_qjson *c = &cpus->items[i];
		uint64_t idx, tid;

		if (!vms_qjson_u64(vms_qjson_get(c, "cpu-index"), &idx) ||
		    !vms_qjson_u64(vms_qjson_get(c, "thread-id"), &tid) ||
		    idx >= VMS_TESTVM_MAX_VCPUS)
			continue;
		r->tids[idx] = (int)tid;
		if (idx + 1 > r->ncpus)
			r->ncpus = (unsigned int)idx + 1;
	}
	vms_qjson_free(cpus);
	if (r->ncpus != r->a->opts.vcpus) {
		cli_error(CMD, "QEMU has %u vCPUs, not %u", r->ncpus, r->a->opts.vcpus);
		return -EPROTO;
	}
	return 0;
}

static int pin_vcpus(struct qemu_run *r)
{
	const struct testvm_args *a = r->a;

	for (unsigned int i = 0; a->opts.pin && i < r->ncpus; i++) {
		cpu_set_t set;

		if (a->opts.pin[i] < 0)
			continue;
		CPU_ZERO(&set);
		CPU_SET(a->opts.pin[i], &set);
		if (sched_setaffinity(r->tids[i], sizeof(set), &set) < 0)
			return cli_error(CMD, "cannot pin vCPU %u (thread %d) to host CPU %d: %s",
					 i, r->tids[i], a->opts.pin[i], strerror(errno)),
			       -1;
	}
	return 0;
}

static void free_stats(struct stat_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	l->n = 0;
}

/*
 * Every vCPU's cumulative scalar KVM statistics (only their growth means something), into
 * @out (indexed by vCPU): QMP query-stats through the library. -EOPNOTSUPP before QEMU 7.1.
 */
static int read_stats(struct qemu_run *r, struct stat_list *out)
{
	struct vms_vmm_stats *s;
	char err[256];
	int ret = vms_qmp_query_stats(r->qmp, QMP_TIMEOUT_MS, &s, err, sizeof(err));

	if (ret)
		return ret;
	for (size_t i = 0; i < s->nvcpus; i++) {
		const struct vms_vmm_vcpu_stats *v = &s->vcpus[i];
		struct stat_list *l;

		if (v->vcpu < 0 || (unsigned int)v->vcpu >= r->ncpus)
			continue;
		l = &out[v->vcpu];
		free_stats(l);
		for (size_t k = 0; k < v->nstats && l->n < MAX_STATS; k++) {
			if (v->stats[k].type != VMS_STAT_CUMULATIVE)
				continue;
			l->names[l->n] = strdup(v->stats[k].name);
			if (l->names[l->n])
				l->vals[l->n++] = v->stats[k].value;
		}
	}
	vms_vmm_stats_free(s);
	return 0;
}

/* Dump the shared block and read it back; the VM object or NULL and the error. */
static int read_dump(struct qemu_run *r, const struct vms_testvm_dump_opts *opts,
		     struct vms_testvm **vm)
{
	char cmd[384];
	size_t size = vms_testvm_dump_size(r->ncpus), len;
	unsigned char *buf;
	FILE *f;
	int rc;

	*vm = NULL;
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": %d, \"size\": %zu, "
		 "\"filename\": \"%s\"}}",
		 VMS_TESTVM_DUMP_GPA, size, r->dump);
	rc = vms_qmp_exec(r->qmp, cmd, QMP_TIMEOUT_MS, NULL, r->err, sizeof(r->err));
	if (rc)
		return rc;
	buf = malloc(size);
	f = fopen(r->dump, "r");
	if (!buf || !f) {
		rc = -errno;
		snprintf(r->err, sizeof(r->err), "cannot read %s: %s", r->dump, strerror(errno));
		free(buf);
		if (f)
			fclose(f);
		return rc;
	}
	len = fread(buf, 1, size, f);
	fclose(f);
	rc = vms_testvm_open_dump(buf, len, opts, vm);
	free(buf);
	if (rc)
		snprintf(r->err, sizeof(r->err), "%s", vms_testvm_last_error(NULL));
	return rc;
}

/* ---- the run ---- */

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static void print_qemu_stats(const struct qemu_run *r)
{
	for (unsigned int i = 0; i < r->ncpus; i++) {
		printf("\nKVM statistics of vCPU %u (QMP query-stats), growth over the run:\n", i);
		for (size_t k = 0; k < r->end[i].n; k++) {
			uint64_t before = 0;

			for (size_t b = 0; b < r->begin[i].n; b++)
				if (!strcmp(r->begin[i].names[b], r->end[i].names[k]))
					before = r->begin[i].vals[b];
			printf("  %-32s %20" PRIu64 "\n", r->end[i].names[k],
			       r->end[i].vals[k] - before);
		}
	}
}

/* The truth of the last dump, with what QEMU told, to @truth (closed) and stdout. */
static int finish(struct qemu_run *r, FILE *truth, bool stopped, int rc)
{
	const struct testvm_args *a = r->a;
	struct vms_testvm_stat_delta *deltas[VMS_TESTVM_MAX_VCPUS] = { 0 };
	struct vms_testvm_dump_vcpu vcpus[VMS_TESTVM_MAX_VCPUS];
	struct vms_testvm_dump_opts opts = {
		.sz = sizeof(opts),
		.vmm = "qemu",
		.name = a->name,
		.pid = r->pid,
		.stopped = stopped,
		.vcpus = vcpus,
		.nvcpus = r->ncpus,
		.vmm_pio = (int64_t)file_size(r->pio),
	};
	struct vms_testvm *vm = NULL;
	int ret;

	if (r->stats && !read_stats(r, r->end)) {
		for (unsigned int i = 0; i < r->ncpus; i++) {
			deltas[i] = calloc(r->end[i].n + 1, sizeof(*deltas[i]));
			for (size_t k = 0; deltas[i] && k < r->end[i].n; k++) {
				uint64_t before = 0;

				for (size_t b = 0; b < r->begin[i].n; b++)
					if (!strcmp(r->begin[i].names[b], r->end[i].names[k]))
						before = r->begin[i].vals[b];
				deltas[i][k].name = r->end[i].names[k];
				deltas[i][k].delta = r->end[i].vals[k] - before;
			}
		}
	}
	for (unsigned int i = 0; i < r->ncpus; i++)
		vcpus[i] = (struct vms_testvm_dump_vcpu){ .tid = r->tids[i],
							  .stats = deltas[i],
							  .nstats = deltas[i] ? r->end[i].n : 0 };
	ret = read_dump(r, &opts, &vm);
	if (ret) {
		cli_error(CMD, "cannot read the truth back from the guest: %s", r->err);
		show_file("the guest's console", r->console);
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if (truth) {
		if (testvm_close_truth(vm, truth, a->truth))
			rc = CLI_EXIT_FAIL;
		truth = NULL;
	}
	if (!a->quiet && !a->daemon) {
		if (a->format == CLI_FORMAT_JSON) {
			vms_testvm_write_truth(vm, stdout);
		} else {
			uint64_t pio = 0;

			testvm_print_summary(vm);
			for (unsigned int i = 0; i < vms_testvm_vcpus(vm); i++) {
				struct vms_testvm_vcpu_phase tot;

				vms_testvm_vcpu_totals(vm, i, &tot);
				pio += tot.pio;
			}
			printf("\nQEMU (pid %d) received %" PRId64 " port writes at the load port; "
			       "the guest made %" PRIu64 ".\n",
			       r->pid, opts.vmm_pio, pio);
		}
		if (a->stats)
			print_qemu_stats(r);
	}
out:
	if (truth)
		fclose(truth);
	vms_testvm_free(vm);
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++)
		free(deltas[i]);
	return rc;
}

/* Say whether a vCPU faulted; true if one did. */
static bool report_faults(struct vms_testvm *vm)
{
	bool any = false;

	for (unsigned int i = 0; i < vms_testvm_vcpus(vm); i++) {
		struct vms_testvm_fault f;

		if (vms_testvm_vcpu_fault(vm, i, &f))
			continue;
		cli_error(CMD,
			  "guest vCPU %u took exception %" PRIu64 " (error %#" PRIx64
			  ") at rip %#" PRIx64 " cs %#" PRIx64 " cr2 %#" PRIx64,
			  i, f.vector, f.error, f.rip, f.cs, f.cr2);
		any = true;
	}
	return any;
}

static bool all_done(struct vms_testvm *vm)
{
	for (unsigned int i = 0; i < vms_testvm_vcpus(vm); i++)
		if (!vms_testvm_vcpu_done(vm, i))
			return false;
	return true;
}

/*
 * Watch the guest until it finished, failed, or a signal came. Return: 0 finished or
 * stopped; 1 failed after it started its schedule (its truth is worth writing); -1 failed
 * before (QEMU died, the guest did not boot or refused its command line).
 */
static int supervise(struct qemu_run *r, int *ready_fd, bool *stopped)
{
	const struct testvm_args *a = r->a;
	uint64_t total = a->opts.start_delay_ns ? a->opts.start_delay_ns : 50000000ULL;
	uint64_t start = cli_mono_ns(), booted = 0,
		 deadline = start + BOOT_TIMEOUT_S * 1000000000ULL;
	bool progress = !a->quiet && !a->daemon && isatty(STDERR_FILENO);
	struct timespec tick = { 0, POLL_MS * 1000000L };
	sigset_t set;
	int rc = 0;

	for (unsigned int p = 0; p < a->opts.nphases; p++)
		total += a->phases[p].duration_ns;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		struct vms_testvm *vm;
		int sig = sigtimedwait(&set, NULL, &tick), ret;

		if (sig == SIGINT || sig == SIGTERM) {
			*stopped = true;
			qmp_do(r, "{\"execute\": \"stop\"}", NULL);
			break;
		}
		if (qemu_gone(r, true))
			return -1;
		ret = read_dump(r, NULL, &vm);
		/* Until the guest has booted, the block holds firmware data, then zeros. */
		if (ret && (booted || (ret != -EAGAIN && ret != -VMS_E_TESTVM_DUMP))) {
			cli_error(CMD, "%s", r->err);
			show_file("the guest's console", r->console);
			return -1;
		}
		if (!ret && !booted) {
			booted = cli_mono_ns();
			deadline = booted + total + END_MARGIN_S * 1000000000ULL;
			if (*ready_fd >= 0) {
				int nul = open("/dev/null", O_WRONLY);

				/* From now on nobody reads the caller's stderr (see run_vm()). */
				if (nul >= 0) {
					dup2(nul, STDERR_FILENO);
					close(nul);
				}
				(void)!write(*ready_fd, "R", 1);
				close(*ready_fd);
				*ready_fd = -1;
			}
		}
		if (vm) {
			bool faulted = report_faults(vm), done = all_done(vm);

			vms_testvm_free(vm);
			if (faulted) {
				rc = 1;
				break;
			}
			if (done)
				break;
		}
		if (cli_mono_ns() > deadline) {
			if (booted)
				cli_error(CMD, "the guest did not finish its schedule in time");
			else
				cli_error(CMD, "the guest did not boot in %d s (%s)",
					  BOOT_TIMEOUT_S, r->err);
			show_file("the guest's console", r->console);
			*stopped = true;
			qmp_do(r, "{\"execute\": \"stop\"}", NULL);
			rc = booted ? 1 : -1;
			break;
		}
		if (progress) {
			uint64_t el = booted ? cli_mono_ns() - booted : 0;

			fprintf(stderr, "\rvmscope testvm --qemu: %s %5.1f s of %.1f s",
				booted ? "running" : "booting", el / 1e9, total / 1e9);
		}
	}
	if (progress)
		fprintf(stderr, "\r%70s\r", "");
	return rc;
}

int testvm_qemu_run(const struct testvm_args *a, int ready_fd)
{
	struct qemu_run *r = calloc(1, sizeof(*r));
	char cmdline[1024];
	uint64_t tsc_khz;
	size_t size;
	const void *img;
	bool stopped = false;
	FILE *f, *truth = NULL;
	int ret, rc = CLI_EXIT_FAIL;

	if (!r)
		return cli_error(CMD, "out of memory");
	r->a = a;
	/* Open the truth file first: a bad path should not cost a whole run. */
	if (a->truth) {
		truth = fopen(a->truth, "w");
		if (!truth) {
			cli_error(CMD, "cannot write the truth file %s: %s", a->truth,
				  strerror(errno));
			goto out;
		}
	}
	ret = vms_testvm_host_tsc_khz(&tsc_khz);
	if (ret) {
		cli_error(CMD, "cannot read KVM's TSC frequency: %s", vms_testvm_last_error(NULL));
		goto out;
	}
	ret = vms_testvm_multiboot_cmdline(&a->opts, tsc_khz, cmdline, sizeof(cmdline));
	if (ret) {
		cli_error(CMD, "%s",
			  ret == -ENOSPC ? "the schedule does not fit the guest's command line"
					 : "with --qemu, times must be whole microseconds");
		goto out;
	}
	if (make_dir(r))
		goto out;
	img = vms_testvm_multiboot_image(&size);
	f = fopen(r->image, "w");
	if (!f || fwrite(img, 1, size, f) != size || fclose(f)) {
		cli_error(CMD, "cannot write %s: %s", r->image, strerror(errno));
		goto out;
	}
	if (start_qemu(r, cmdline))
		goto out;
	ret = vms_qmp_connect(r->sock, QMP_TIMEOUT_MS, &r->qmp, r->err, sizeof(r->err));
	if (ret) {
		if (!qemu_gone(r, true))
			cli_error(CMD, "%s", r->err);
		goto out;
	}
	if (read_vcpus(r) || pin_vcpus(r))
		goto out;
	r->stats = !read_stats(r, r->begin);
	if (qmp_do(r, "{\"execute\": \"cont\"}", NULL))
		goto out;
	ret = supervise(r, &ready_fd, &stopped);
	if (ret >= 0 && !qemu_gone(r, true)) {
		rc = finish(r, truth, stopped, ret ? CLI_EXIT_FAIL : 0);
		truth = NULL;
	}
out:
	if (truth)
		fclose(truth);
	if (ready_fd >= 0)
		(void)!write(ready_fd, "E", 1);
	stop_qemu(r);
	remove_dir(r);
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++) {
		free_stats(&r->begin[i]);
		free_stats(&r->end[i]);
	}
	free(r);
	return rc;
}
