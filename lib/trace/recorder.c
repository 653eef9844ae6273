// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The recorder (see vmscope/record.h): a tracefs instance of its own with the kvm and
 * sched events enabled, kvm events filtered in the kernel by the VMs' threads; each CPU's
 * trace_pipe_raw read page by page (non-blocking, every 50 ms) into the .dat writer, which
 * spools the pages and assembles the file at the end. The instance is removed whatever
 * happens; instances of earlier recorders that died are removed before a new one starts.
 */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <tracefs/tracefs.h>

#include "vmscope-local.h"
#include "vmscope/host.h"
#include "vmscope/record.h"
#include "vmscope/trace-writer.h"
#include "trace-local.h"

#define VMS_RECORD_MAX_VCPUS 4096

/* The events the analyses use; those a kernel lacks are left out. */
static const struct {
	const char *sys, *name;
	bool per_vm; /* filtered by the VMs' threads (common_pid) */
} default_events[] = {
	{ "kvm", "kvm_entry", true },
	{ "kvm", "kvm_exit", true },
	{ "kvm", "kvm_mmio", true },
	{ "kvm", "kvm_pio", true },
	{ "kvm", "kvm_msr", true },
	{ "kvm", "kvm_userspace_exit", true },
	{ "kvm", "kvm_vcpu_wakeup", true },
	{ "kvm", "kvm_hypercall", true },
	{ "kvm", "kvm_inj_virq", true },
	{ "kvm", "kvm_set_irq", true },
	/* Interrupts are often delivered from another task's context (a timer's hardirq on
	 * an idle CPU): a filter by the VMs' threads would lose them. */
	{ "kvm", "kvm_apic_accept_irq", false },
	{ "kvm", "kvm_msi_set_irq", false },
	{ "sched", "sched_switch", false },
	{ "sched", "sched_wakeup", false },
	{ "sched", "sched_wakeup_new", false },
	{ "sched", "sched_migrate_task", false },
	{ "sched", "sched_process_exit", false },
};

struct cpu_snap {
	uint64_t entries, overrun, dropped;
};

struct vms_recorder {
	struct vms_record_opts opts;
	char *output;
	char inst_name[64];
	struct tracefs_instance *inst;
	struct vms_host_vm *vms;
	size_t nvms;
	int *tids; /* every thread of the VMs, and their kvm kernel threads */
	size_t ntids;
	unsigned int ncpus;
	struct tracefs_cpu **tcpu;
	struct cpu_snap *before;
	struct vms_record_cpu_stats *stats;
	int page_size;
	bool enabled[VMS_ARRAY_SIZE(default_events)];
	atomic_bool stop;
	char err[256];
};

static __thread char new_error[256];

__attribute__((format(printf, 3, 4))) static int rec_fail(struct vms_recorder *r, int code,
							  const char *fmt, ...)
{
	va_list ap;

	if (!r->err[0]) {
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *vms_recorder_last_error(const struct vms_recorder *r)
{
	return r ? r->err : new_error;
}

/*
 * Remove instances "vmscope-<pid>" and "vmscope-<pid>-<what>" whose process is gone (a
 * recorder or a live trace killed with SIGKILL). The names are matched here:
 * tracefs_instances() with a regex leaks the compiled regex (libtracefs 1.6).
 */
void vms_trace_remove_stale_instances(void)
{
	char **names = tracefs_instances(NULL);

	for (size_t i = 0; names && names[i]; i++) {
		const char *n = names[i];
		struct tracefs_instance *in;
		char *end;
		long pid;

		if (strncmp(n, "vmscope-", 8) || !n[8])
			continue;
		pid = strtol(n + 8, &end, 10);
		if ((*end && *end != '-') || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		in = tracefs_instance_alloc(NULL, n);
		if (in) {
			tracefs_instance_destroy(in);
			tracefs_instance_free(in);
			vms_info("removed the tracefs instance %s of a process that died", n);
		}
	}
	tracefs_list_free(names);
}

static int add_tid(struct vms_recorder *r, int tid)
{
	int *nt;

	for (size_t i = 0; i < r->ntids; i++)
		if (r->tids[i] == tid)
			return 0;
	nt = realloc(r->tids, (r->ntids + 1) * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	r->tids = nt;
	r->tids[r->ntids++] = tid;
	return 0;
}

/* The threads of the VMs: every task of each VMM, and kernel threads named after it
 * ("kvm-pit/<pid>", "kvm-nx-lpage-recovery-<pid>" ...). */
static int collect_threads(struct vms_recorder *r)
{
	struct dirent *de;
	char path[64], comm[64];
	DIR *d;
	int ret;

	for (size_t v = 0; v < r->nvms; v++) {
		snprintf(path, sizeof(path), "/proc/%d/task", r->vms[v].pid);
		d = opendir(path);
		if (!d)
			continue;
		while ((de = readdir(d)))
			if (atoi(de->d_name) > 0 && (ret = add_tid(r, atoi(de->d_name)))) {
				closedir(d);
				return ret;
			}
		closedir(d);
	}
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name);
		const char *slash;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (vms_read_text(path, comm, sizeof(comm)) <= 0 || strncmp(comm, "kvm", 3))
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		slash = strpbrk(comm, "/-");
		for (size_t v = 0; slash && v < r->nvms; v++) {
			const char *num = strrchr(comm, '/') ? strrchr(comm, '/') + 1
							     : strrchr(comm, '-') + 1;

			if (atoi(num) == r->vms[v].pid && (ret = add_tid(r, pid))) {
				closedir(d);
				return ret;
			}
		}
	}
	closedir(d);
	return 0;
}

/* "field == a || field == b ...", or NULL when it would be too long for the kernel. */
static char *pid_filter(const struct vms_recorder *r, const char *field)
{
	size_t cap = r->ntids * (strlen(field) + 20) + 1, len = 0;
	char *f;

	if (cap > 32768)
		return NULL;
	f = malloc(cap);
	if (!f)
		return NULL;
	f[0] = '\0';
	for (size_t i = 0; i < r->ntids; i++)
		len += (size_t)snprintf(f + len, cap - len, "%s%s == %d", i ? " || " : "", field,
					r->tids[i]);
	return f;
}

static int select_vms(struct vms_recorder *r)
{
	struct vms_host_vm *all;
	size_t n, keep = 0;
	int ret = vms_host_vms_list(NULL, &all, &n);

	if (ret)
		return rec_fail(r, ret, "cannot list the VMs of this host: %s", vms_strerror(ret));
	for (size_t i = 0; i < n; i++) {
		bool want = !r->opts.npids && !r->opts.nnames;

		for (size_t k = 0; k < r->opts.npids; k++)
			want |= all[i].pid == r->opts.pids[k];
		for (size_t k = 0; k < r->opts.nnames; k++)
			want |= !strcmp(all[i].name, r->opts.names[k]);
		if (want)
			all[keep++] = all[i];
		else
			free(all[i].vcpus);
	}
	r->vms = all;
	r->nvms = keep;
	/* Every VM asked for must be there. */
	for (size_t k = 0; k < r->opts.npids; k++) {
		bool found = false;

		for (size_t i = 0; i < keep; i++)
			found |= all[i].pid == r->opts.pids[k];
		if (!found)
			return rec_fail(r, -ENOENT, "no VM with pid %d (vmscope stat lists them)",
					r->opts.pids[k]);
	}
	for (size_t k = 0; k < r->opts.nnames; k++) {
		bool found = false;

		for (size_t i = 0; i < keep; i++)
			found |= !strcmp(all[i].name, r->opts.names[k]);
		if (!found)
			return rec_fail(r, -ENOENT, "no VM named %s (vmscope stat lists them)",
					r->opts.names[k]);
	}
	if (!keep)
		return rec_fail(r, -ENOENT, "no KVM virtual machine runs on this host");
	return 0;
}

static void remove_instance(struct vms_recorder *r);

static int setup_instance(struct vms_recorder *r)
{
	char num[32];
	int ret;

	snprintf(r->inst_name, sizeof(r->inst_name), "%s",
		 r->opts.instance ? r->opts.instance : "");
	if (!r->inst_name[0])
		snprintf(r->inst_name, sizeof(r->inst_name), "vmscope-%d", getpid());
	if (tracefs_instance_exists(r->inst_name))
		return rec_fail(r, -EEXIST, "the tracefs instance %s exists already", r->inst_name);
	r->inst = tracefs_instance_create(r->inst_name);
	if (!r->inst)
		return rec_fail(r, errno ? -errno : -EIO,
				"cannot create the tracefs instance %s: %s (root needed)",
				r->inst_name, strerror(errno ? errno : EIO));
	tracefs_trace_off(r->inst);
	snprintf(num, sizeof(num), "%u", r->opts.buffer_kb ? r->opts.buffer_kb : 16384);
	if (tracefs_instance_file_write(r->inst, "buffer_size_kb", num) < 0)
		return rec_fail(r, -errno, "cannot set the buffer size to %s KiB: %s", num,
				strerror(errno));
	if (tracefs_instance_file_write(r->inst, "trace_clock",
					r->opts.clock ? r->opts.clock : "local") < 0)
		return rec_fail(r, -EINVAL, "the kernel has no trace clock \"%s\"", r->opts.clock);
	for (size_t i = 0; i < VMS_ARRAY_SIZE(default_events); i++) {
		bool per_vm = default_events[i].per_vm || r->opts.sched_vm_only;
		char *filter = NULL;

		if (tracefs_event_enable(r->inst, default_events[i].sys, default_events[i].name))
			continue; /* this kernel lacks the event */
		r->enabled[i] = true;
		if (!per_vm)
			continue;
		if (!strcmp(default_events[i].name, "sched_switch")) {
			char *a = pid_filter(r, "prev_pid"), *b = pid_filter(r, "next_pid");

			if (a && b && asprintf(&filter, "%s || %s", a, b) < 0)
				filter = NULL;
			free(a);
			free(b);
		} else {
			filter = pid_filter(r,
					    default_events[i].sys[0] == 'k' ? "common_pid" : "pid");
		}
		ret = filter ? tracefs_event_file_write(r->inst, default_events[i].sys,
							default_events[i].name, "filter", filter)
			     : -1;
		if (ret < 0)
			vms_warn("record: %s:%s is recorded for every process (its filter was "
				 "refused or too long)",
				 default_events[i].sys, default_events[i].name);
		free(filter);
	}
	return 0;
}

int vms_recorder_new(const struct vms_record_opts *opts, struct vms_recorder **out)
{
	struct vms_recorder *r;
	int ret;

	*out = NULL;
	new_error[0] = '\0';
	if (!opts || opts->sz < sizeof(*opts) || !opts->output)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->opts = *opts;
	r->output = strdup(opts->output);
	if (!r->output) {
		free(r);
		return -ENOMEM;
	}
	if (!tracefs_tracing_dir()) {
		ret = rec_fail(r, -ENOENT,
			       "tracefs is not mounted and cannot be mounted "
			       "(mount -t tracefs nodev /sys/kernel/tracing)");
		goto fail;
	}
	vms_trace_remove_stale_instances();
	if ((ret = select_vms(r)) || (ret = collect_threads(r)) || (ret = setup_instance(r)))
		goto fail;
	r->ncpus = (unsigned int)sysconf(_SC_NPROCESSORS_CONF);
	r->tcpu = calloc(r->ncpus, sizeof(*r->tcpu));
	r->before = calloc(r->ncpus, sizeof(*r->before));
	r->stats = calloc(r->ncpus, sizeof(*r->stats));
	if (!r->tcpu || !r->before || !r->stats) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned int c = 0; c < r->ncpus; c++) {
		r->tcpu[c] = tracefs_cpu_open(r->inst, (int)c, true);
		if (!r->tcpu[c]) {
			ret = rec_fail(r, -errno, "cannot open CPU %u's trace_pipe_raw: %s", c,
				       strerror(errno));
			goto fail;
		}
		if (!r->page_size)
			r->page_size = tracefs_cpu_read_size(r->tcpu[c]);
	}
	if (r->page_size <= 0)
		r->page_size = getpagesize();
	*out = r;
	return 0;
fail:
	snprintf(new_error, sizeof(new_error), "%s", r->err[0] ? r->err : vms_strerror(ret));
	vms_recorder_free(r);
	return ret;
}

/* per_cpu/cpuN/stats: "entries: N", "overrun: N", "dropped events: N". */
static void read_cpu_stats(struct vms_recorder *r, unsigned int cpu, struct cpu_snap *s,
			   char **text)
{
	char file[64], *buf, *p;

	memset(s, 0, sizeof(*s));
	snprintf(file, sizeof(file), "per_cpu/cpu%u/stats", cpu);
	buf = tracefs_instance_file_read(r->inst, file, NULL);
	if (!buf)
		return;
	if ((p = strstr(buf, "entries:")))
		s->entries = strtoull(p + 8, NULL, 10);
	if ((p = strstr(buf, "\noverrun:")))
		s->overrun = strtoull(p + 9, NULL, 10);
	if ((p = strstr(buf, "dropped events:")))
		s->dropped = strtoull(p + 15, NULL, 10);
	if (text)
		*text = buf;
	else
		free(buf);
}

static int write_page(struct vms_recorder *r, struct vms_dat_writer *w, unsigned int cpu,
		      void *page, int n)
{
	if (n < r->page_size)
		memset((uint8_t *)page + n, 0, (size_t)(r->page_size - n));
	r->stats[cpu].pages++;
	r->stats[cpu].bytes += (uint64_t)r->page_size;
	return vms_dat_writer_add_page(w, cpu, page);
}

/* What the trace cannot tell, for the file: vendor, flavour, VMs, vCPU threads. */
static char *build_meta(const struct vms_recorder *r)
{
	uint32_t a = 0, b, c, d;
	char vendor[13], *m = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&m, &len);

	if (!f)
		return NULL;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = '\0';
	fprintf(f, "vmscope=1\nvmscope_version=%s\nvendor=%s\nkvm=%s\ninstance=%s\n", vms_version(),
		vendor, vms_kvm_flavor_name(vms_host_kvm_flavor(NULL)), r->inst_name);
	for (size_t v = 0; v < r->nvms; v++) {
		fprintf(f, "vm=%d %s\n", r->vms[v].pid, r->vms[v].name);
		for (size_t k = 0; k < r->vms[v].nvcpus; k++)
			if (r->vms[v].vcpus[k].vcpu >= 0)
				fprintf(f, "vcpu=%d %d %d\n", r->vms[v].vcpus[k].tid, r->vms[v].pid,
					r->vms[v].vcpus[k].vcpu);
	}
	fclose(f);
	return m;
}

/* saved_cmdlines of the kernel plus the VMs' own threads (they may have scrolled out). */
static char *build_cmdlines(const struct vms_recorder *r)
{
	char *saved = tracefs_instance_file_read(NULL, "saved_cmdlines", NULL), *m = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&m, &len);

	if (!f) {
		free(saved);
		return NULL;
	}
	if (saved)
		fputs(saved, f);
	for (size_t i = 0; i < r->ntids; i++) {
		char path[64], comm[64];

		snprintf(path, sizeof(path), "/proc/%d/comm", r->tids[i]);
		if (vms_read_text(path, comm, sizeof(comm)) > 0)
			fprintf(f, "%d %s", r->tids[i], comm);
	}
	fclose(f);
	free(saved);
	return m;
}

static int open_writer(struct vms_recorder *r, struct vms_dat_writer **w)
{
	char *hp = NULL, *he = NULL;
	struct utsname u;
	char uts[4 * sizeof(u.release)];
	struct vms_dat_writer_opts wo = { .sz = sizeof(wo) };
	int ret;

	hp = tracefs_instance_file_read(NULL, "events/header_page", NULL);
	he = tracefs_instance_file_read(NULL, "events/header_event", NULL);
	if (!hp || !he) {
		free(hp);
		free(he);
		return rec_fail(r, -EIO, "cannot read events/header_page of tracefs");
	}
	uname(&u);
	snprintf(uts, sizeof(uts), "%s %s %s %s", u.sysname, u.nodename, u.release, u.machine);
	wo.version = r->opts.version ? r->opts.version : 7;
	wo.compression =
		wo.version >= 7 ? (r->opts.compression ? r->opts.compression : "zstd") : NULL;
	wo.page_size = (uint32_t)r->page_size;
	wo.long_size = sizeof(long);
	wo.ncpus = r->ncpus;
	wo.clock = r->opts.clock ? r->opts.clock : "local";
	wo.header_page = hp;
	wo.header_event = he;
	wo.uname = uts;
	ret = vms_dat_writer_open(r->output, &wo, w);
	free(hp);
	free(he);
	if (ret)
		return rec_fail(r, ret, "cannot create %s: %s", r->output, vms_strerror(ret));
	for (size_t i = 0; i < VMS_ARRAY_SIZE(default_events) && !ret; i++) {
		char *fmt;
		int size = 0;

		if (!r->enabled[i])
			continue;
		fmt = tracefs_event_file_read(r->inst, default_events[i].sys,
					      default_events[i].name, "format", &size);
		if (fmt)
			ret = vms_dat_writer_add_format(*w, default_events[i].sys, fmt,
							(size_t)size);
		free(fmt);
	}
	return ret;
}

/* Read every full page available now (and, @flush, what is left of partial ones). */
static int drain(struct vms_recorder *r, struct vms_dat_writer *w, void *page, bool flush)
{
	for (unsigned int c = 0; c < r->ncpus; c++) {
		int n, ret;

		while ((n = tracefs_cpu_read(r->tcpu[c], page, true)) > 0)
			if ((ret = write_page(r, w, c, page, n)))
				return ret;
		while (flush && (n = tracefs_cpu_flush(r->tcpu[c], page)) > 0)
			if ((ret = write_page(r, w, c, page, n)))
				return ret;
	}
	return 0;
}

int vms_recorder_run(struct vms_recorder *r, void (*progress)(uint64_t, void *), void *ctx)
{
	struct vms_dat_writer *w = NULL;
	uint64_t start, last_progress = 0, pages = 0;
	char *meta = NULL, *cmdlines = NULL;
	void *page;
	int ret;

	page = calloc(1, (size_t)r->page_size);
	if (!page)
		return -ENOMEM;
	ret = open_writer(r, &w);
	if (ret)
		goto out;
	for (unsigned int c = 0; c < r->ncpus; c++)
		read_cpu_stats(r, c, &r->before[c], NULL);
	if (tracefs_trace_on(r->inst) < 0) {
		ret = rec_fail(r, -EIO, "cannot start tracing in %s", r->inst_name);
		goto out;
	}
	start = vms_mono_ns();
	while (!atomic_load(&r->stop)) {
		struct timespec nap = { 0, 50000000 };
		uint64_t now = vms_mono_ns();

		if (r->opts.duration_ns && now - start >= r->opts.duration_ns)
			break;
		if ((ret = drain(r, w, page, false)))
			break;
		if (progress && now - last_progress >= 1000000000ULL) {
			pages = 0;
			for (unsigned int c = 0; c < r->ncpus; c++)
				pages += r->stats[c].pages;
			progress(pages, ctx);
			last_progress = now;
		}
		nanosleep(&nap, NULL);
	}
	tracefs_trace_off(r->inst);
	if (!ret)
		ret = drain(r, w, page, true);
	for (unsigned int c = 0; c < r->ncpus && !ret; c++) {
		struct cpu_snap after;
		char *text = NULL;

		read_cpu_stats(r, c, &after, &text);
		r->stats[c].entries = after.entries;
		r->stats[c].overrun = after.overrun - r->before[c].overrun;
		r->stats[c].dropped = after.dropped - r->before[c].dropped;
		if (text)
			ret = vms_dat_writer_add_cpustat(w, c, text);
		free(text);
	}
	if (ret)
		goto out;
	meta = build_meta(r);
	cmdlines = build_cmdlines(r);
	if (!meta || !cmdlines || (ret = vms_dat_writer_set_meta(w, meta)) ||
	    (ret = vms_dat_writer_set_cmdlines(w, cmdlines))) {
		ret = ret ? ret : -ENOMEM;
		goto out;
	}
	for (size_t v = 0; v < r->nvms && !ret; v++) {
		int32_t tids[VMS_RECORD_MAX_VCPUS];
		uint32_t n = 0;

		for (size_t k = 0; k < r->vms[v].nvcpus; k++) {
			int idx = r->vms[v].vcpus[k].vcpu;

			if (idx >= 0 && idx < VMS_RECORD_MAX_VCPUS) {
				while (n <= (uint32_t)idx)
					tids[n++] = -1;
				tids[idx] = r->vms[v].vcpus[k].tid;
			}
		}
		if (n)
			ret = vms_dat_writer_add_guest(w, r->vms[v].name, 0, n, tids);
	}
	if (ret)
		goto out;
	ret = vms_dat_writer_close(w);
	w = NULL;
	if (ret)
		rec_fail(r, ret, "cannot write %s: %s", r->output, vms_strerror(ret));
out:
	if (w)
		vms_dat_writer_discard(w);
	free(meta);
	free(cmdlines);
	free(page);
	remove_instance(r);
	return ret;
}

/* Close the per-CPU readers (an open trace_pipe_raw keeps the instance busy) and remove
 * the instance. */
static void remove_instance(struct vms_recorder *r)
{
	for (unsigned int c = 0; r->tcpu && c < r->ncpus; c++) {
		if (r->tcpu[c])
			tracefs_cpu_close(r->tcpu[c]);
		r->tcpu[c] = NULL;
	}
	if (!r->inst)
		return;
	if (tracefs_instance_destroy(r->inst))
		vms_warn("record: cannot remove the tracefs instance %s: %s (remove it with rmdir)",
			 r->inst_name, strerror(errno));
	tracefs_instance_free(r->inst);
	r->inst = NULL;
}

void vms_recorder_stop(struct vms_recorder *r)
{
	atomic_store(&r->stop, true);
}

void vms_recorder_free(struct vms_recorder *r)
{
	if (!r)
		return;
	remove_instance(r);
	vms_host_vms_free(r->vms, r->nvms);
	free(r->tcpu);
	free(r->before);
	free(r->stats);
	free(r->tids);
	free(r->output);
	free(r);
}

unsigned int vms_recorder_ncpus(const struct vms_recorder *r)
{
	return r->ncpus;
}

int vms_recorder_cpu_stats(const struct vms_recorder *r, unsigned int cpu,
			   struct vms_record_cpu_stats *out)
{
	if (cpu >= r->ncpus)
		return -EINVAL;
	*out = r->stats[cpu];
	return 0;
}

size_t vms_recorder_nvms(const struct vms_recorder *r)
{
	return r->nvms;
}

int vms_recorder_vm(const struct vms_recorder *r, size_t i, int *pid, const char **name,
		    unsigned int *nvcpus)
{
	if (i >= r->nvms)
		return -EINVAL;
	*pid = r->vms[i].pid;
	*name = r->vms[i].name;
	*nvcpus = (unsigned int)r->vms[i].nvcpus;
	return 0;
}
