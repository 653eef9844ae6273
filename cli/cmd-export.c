// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope export perfetto: a trace as a timeline for ui.perfetto.dev, in the Chrome
 * trace-event JSON format that Perfetto (and chrome://tracing) read.
 *
 * The vCPU state model (vmscope/vcpu.h) hands out each slice of each vCPU thread as it
 * ends; each is written at once, as an "X" event on its thread's track (a process per VM)
 * and, when the thread had a CPU, on that host CPU's track (the process "Host CPUs").
 * kvm_exit records (on KVM-PVM hosts, which have none: kvm_userspace_exit, kvm_mmio and
 * kvm_pio) are counted in 10 ms bins per VM, and each bin is written as a "C" event once
 * a later one begins. Process and thread names ("M" events) come when a VM, thread or CPU
 * first appears. Nothing is held but one bin per VM and one entry per vCPU thread.
 *
 * Two things the model only knows at the end are needed from the start: whether the trace
 * has kvm_entry and kvm_exit records at all (then a running slice, host-side time before a
 * thread's first of them, is hypervisor time, as the model's totals count it; and exits
 * are counted as kvm_exit), and the time of its first record (ts 0). A first pass over
 * only those two events finds both; it stops at the first of each, so it costs a walk of
 * the whole file only when it has none (KVM-PVM).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vmscope/analysis.h"
#include "vmscope/arch-x86.h"
#include "vmscope/json.h"
#include "vmscope/trace.h"
#include "vmscope/vcpu.h"
#include "vmscope/vmmap.h"

#define CMD "export"

/* Exit-rate bins. */
#define BIN_NS 10000000ULL
/*
 * Synthetic process and thread ids, above Linux's PID_MAX_LIMIT (2^22) so that none is a
 * real task's: Perfetto keys threads by tid, and vCPU tracks keep their host tids.
 */
#define VM_PID_BASE 5000000 /* VM i of the file's map; the VM of unmapped threads after */
#define HOST_PID 6000000    /* "Host CPUs" */
#define CPU_TID_BASE 6000001

static const char usage_text[] =
	"Usage: vmscope export FORMAT [OPTIONS] FILE -o OUT\n"
	"\n"
	"Convert a trace-cmd .dat file (as written by vmscope record or trace-cmd record)\n"
	"into a timeline for another tool, as a stream, in bounded memory.\n"
	"\n"
	"Formats:\n"
	"  perfetto   JSON for ui.perfetto.dev (Chrome trace-event format): a process per VM\n"
	"             with a track per vCPU thread showing its state (guest, hypervisor, vmm\n"
	"             or running; preempted, waiting, idle, blocked, unknown), a process\n"
	"             \"Host CPUs\" with a track per CPU showing which vCPU ran there, and\n"
	"             each VM's exit rate in 10 ms bins\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE        where to write it (\"-\": standard output); required\n"
	"      --from TIME          only the time from TIME after the first record on\n"
	"                           (\"10s\", \"1500ms\"; a bare number is seconds)\n"
	"      --to TIME            only until TIME after the first record\n"
	"  -b, --buffer NAME        the trace instance buffer to read [the first with data]\n"
	"  -q, --quiet              no progress on stderr\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Times are us after the trace's first record. Exit status: 0; 1 when the file cannot\n"
	"be read (the output still holds what was read before a damaged part, as valid JSON)\n"
	"or the output cannot be written; 2 for a wrong command line.\n";

struct export_args {
	const char *format, *file, *output, *buffer;
	uint64_t from, to; /* ns after the first record (0: not given) */
	bool quiet, verbose;
};

/* A process of the output: a VM. */
struct proc {
	int pid;
	char name[80];
	bool shown;	/* its process_name was written */
	int64_t bin;	/* the exit-rate bin being counted, -1 before the first */
	uint64_t count; /* records in it so far */
};

/* A vCPU thread (an entry of an open-addressing table by tid; tid 0: a free slot). */
struct thread {
	int tid;
	unsigned int proc;
	int vcpu;
	bool shown;  /* its thread_name was written */
	bool exited; /* exit_ts, exit_isa: its last kvm_exit's */
	uint32_t exit_isa;
	uint64_t exit_ts;
	char label[96]; /* its slices on a host CPU's track: "VM vCPU n" */
};

struct exporter {
	struct vms_json j;
	struct vms_trace *tr;
	struct vms_vmmap *map;
	void *vcpu;
	uint64_t origin;   /* the first record's time: ts 0 */
	uint64_t from, to; /* the window in trace time; to UINT64_MAX: to the end */
	bool split;	   /* the trace has kvm_entry and kvm_exit records */
	bool has_exit;	   /* ... kvm_exit records: the rate counts them */
	enum vms_x86_isa isa;
	struct vms_field exit_isa;
	struct proc *procs; /* the map's VMs, then one for the threads it does not name */
	size_t nprocs;
	struct thread *tab;
	size_t tab_cap, tab_n;
	bool *cpu_shown;
	unsigned int ncpu_shown;
	bool host_shown;
	int err;
};

static int parse_args(int argc, char **argv, struct export_args *a)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:b:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->output = optarg;
			break;
		case 'F':
		case 'T':
			if (cli_window_option(CMD, c == 'T', optarg, c == 'F' ? &a->from : &a->to))
				return CLI_EXIT_USAGE;
			break;
		case 'b':
			a->buffer = optarg;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, &a->quiet, &a->verbose);
			if (ret)
				return ret;
			break;
		}
	}
	if (optind >= argc)
		return cli_usage_error(CMD, "which format? (perfetto)");
	a->format = argv[optind++];
	if (strcmp(a->format, "perfetto"))
		return cli_usage_error(CMD, "unknown format '%s' (perfetto)", a->format);
	if (optind >= argc)
		return cli_usage_error(CMD, "which trace file?");
	a->file = argv[optind++];
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (!a->output || !*a->output)
		return cli_usage_error(CMD, "where to? --output FILE is required (- for stdout)");
	if (cli_window_check(CMD, a->from, a->to))
		return CLI_EXIT_USAGE;
	return 0;
}

/*
 * The first pass: the time of the file's first record, and whether it has kvm_entry and
 * kvm_exit records. Errors are left to the real pass, which meets them too.
 */
static void prescan(const struct export_args *a, uint64_t *first, bool *entry, bool *exits)
{
	struct vms_trace_opts o = { .sz = sizeof(o), .buffer = a->buffer, .readahead = -1 };
	struct vms_record rec;
	struct vms_trace *t;
	int ids[2], n = 0, id_entry, id_exit;
	uint64_t last;

	*first = 0;
	*entry = *exits = false;
	if (vms_trace_open(a->file, &o, &t))
		return;
	id_entry = vms_trace_event_id(t, "kvm", "kvm_entry");
	id_exit = vms_trace_event_id(t, "kvm", "kvm_exit");
	if (id_entry >= 0)
		ids[n++] = id_entry;
	if (id_exit >= 0)
		ids[n++] = id_exit;
	/* Records walked over still count in the span: its start is the first record's. */
	if (n && vms_trace_select(t, ids, (size_t)n))
		n = 0;
	while (vms_trace_next(t, &rec) > 0) {
		if (n == 0)
			break; /* no such event: one record says when the trace starts */
		*entry |= (int)rec.type == id_entry;
		*exits |= (int)rec.type == id_exit;
		if ((*entry || id_entry < 0) && (*exits || id_exit < 0))
			break;
	}
	vms_trace_span(t, first, &last);
	vms_trace_close(t);
}

/* ---- writing events ---- */

/* {"ph": PH, "name": NAME, "pid": PID, "tid": TID, "ts": T, ... (the caller closes it) */
static void event_begin(struct exporter *e, const char *ph, const char *name, int pid, int tid,
			uint64_t ts)
{
	struct vms_json *j = &e->j;

	vms_json_object_begin(j, NULL);
	vms_json_string(j, "ph", ph);
	vms_json_string(j, "name", name);
	vms_json_i64(j, "pid", pid);
	vms_json_i64(j, "tid", tid);
	vms_json_fixed(j, "ts", (int64_t)(ts - e->origin), 3);
}

/* A metadata event: process_name, thread_name (@name) or *_sort_index (@sort). */
static void meta(struct exporter *e, const char *what, int pid, int tid, const char *name,
		 int64_t sort)
{
	event_begin(e, "M", what, pid, tid, e->from);
	vms_json_object_begin(&e->j, "args");
	if (name)
		vms_json_string(&e->j, "name", name);
	else
		vms_json_i64(&e->j, "sort_index", sort);
	vms_json_object_end(&e->j);
	vms_json_object_end(&e->j);
}

static void proc_show(struct exporter *e, struct proc *p)
{
	if (p->shown)
		return;
	p->shown = true;
	meta(e, "process_name", p->pid, p->pid, p->name, 0);
	meta(e, "process_sort_index", p->pid, p->pid, NULL, p - e->procs);
}

static void cpu_show(struct exporter *e, int cpu)
{
	char name[32];

	if ((unsigned int)cpu >= e->ncpu_shown) {
		unsigned int n = (unsigned int)cpu + 1;
		bool *ns = realloc(e->cpu_shown, n * sizeof(*ns));

		if (!ns) {
			e->err = -ENOMEM;
			return;
		}
		memset(ns + e->ncpu_shown, 0, (n - e->ncpu_shown) * sizeof(*ns));
		e->cpu_shown = ns;
		e->ncpu_shown = n;
	}
	if (e->cpu_shown[cpu])
		return;
	e->cpu_shown[cpu] = true;
	if (!e->host_shown) {
		e->host_shown = true;
		meta(e, "process_name", HOST_PID, HOST_PID, "Host CPUs", 0);
		meta(e, "process_sort_index", HOST_PID, HOST_PID, NULL, (int64_t)e->nprocs);
	}
	snprintf(name, sizeof(name), "CPU %d", cpu);
	meta(e, "thread_name", HOST_PID, CPU_TID_BASE + cpu, name, 0);
	meta(e, "thread_sort_index", HOST_PID, CPU_TID_BASE + cpu, NULL, cpu);
}

static void thread_show(struct exporter *e, struct thread *t)
{
	struct proc *p = &e->procs[t->proc];
	char name[64];

	if (t->shown)
		return;
	t->shown = true;
	proc_show(e, p);
	if (t->vcpu >= 0)
		snprintf(name, sizeof(name), "vCPU %d (tid %d)", t->vcpu, t->tid);
	else
		snprintf(name, sizeof(name), "vCPU ? (tid %d)", t->tid);
	meta(e, "thread_name", p->pid, t->tid, name, 0);
	meta(e, "thread_sort_index", p->pid, t->tid, NULL, t->vcpu >= 0 ? t->vcpu : 1 << 20);
}

/* ---- the vCPU threads ---- */

static size_t hash_tid(int tid)
{
	return (size_t)(((uint64_t)(uint32_t)tid * 0x9e3779b97f4a7c15ULL) >> 32);
}

/* A new thread: its VM, vCPU index and label. */
static void thread_init(struct exporter *e, struct thread *t, int tid)
{
	int vm = vms_vmmap_vm_of_tid(e->map, tid);
	const struct vms_vcpu_thread *th;
	size_t n;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->proc = vm >= 0 && (size_t)vm < e->nprocs - 1 ? (unsigned int)vm
							: (unsigned int)(e->nprocs - 1);
	t->vcpu = vms_vmmap_vcpu_of_tid(e->map, tid);
	th = vms_vcpu_threads(e->vcpu, &n);
	for (size_t i = 0; t->vcpu < 0 && i < n; i++)
		if (th[i].tid == tid)
			t->vcpu = th[i].vcpu;
	if (t->vcpu >= 0)
		snprintf(t->label, sizeof(t->label), "%s vCPU %d", e->procs[t->proc].name, t->vcpu);
	else
		snprintf(t->label, sizeof(t->label), "%s tid %d", e->procs[t->proc].name, tid);
}

/* The entry of vCPU thread @tid, made when it first appears; NULL on ENOMEM. */
static struct thread *thread_get(struct exporter *e, int tid)
{
	size_t i;

	if (e->tab_cap)
		for (i = hash_tid(tid) & (e->tab_cap - 1); e->tab[i].tid;
		     i = (i + 1) & (e->tab_cap - 1))
			if (e->tab[i].tid == tid)
				return &e->tab[i];
	if ((e->tab_n + 1) * 2 > e->tab_cap) {
		size_t ncap = e->tab_cap ? 2 * e->tab_cap : 64;
		struct thread *nt = calloc(ncap, sizeof(*nt));

		if (!nt) {
			e->err = -ENOMEM;
			return NULL;
		}
		for (size_t k = 0; k < e->tab_cap; k++) {
			if (!e->tab[k].tid)
				continue;
			for (i = hash_tid(e->tab[k].tid) & (ncap - 1); nt[i].tid;
			     i = (i + 1) & (ncap - 1))
				;
			nt[i] = e->tab[k];
		}
		free(e->tab);
		e->tab = nt;
		e->tab_cap = ncap;
	}
	for (i = hash_tid(tid) & (e->tab_cap - 1); e->tab[i].tid; i = (i + 1) & (e->tab_cap - 1))
		;
	thread_init(e, &e->tab[i], tid);
	e->tab_n++;
	return &e->tab[i];
}

/* ---- the exit rate ---- */

/* The value of bin @bin of @p: @n records, as a rate per second, at the bin's start. */
static void counter(struct exporter *e, struct proc *p, int64_t bin, uint64_t n)
{
	uint64_t ts = e->origin + (uint64_t)bin * BIN_NS;

	if (ts < e->from)
		ts = e->from;
	if (ts > e->to)
		ts = e->to;
	event_begin(e, "C", e->has_exit ? "exits/s" : "kvm exits seen/s", p->pid, p->pid, ts);
	vms_json_object_begin(&e->j, "args");
	vms_json_u64(&e->j, e->has_exit ? "kvm_exit" : "userspace+mmio+pio",
		     n * (1000000000ULL / BIN_NS));
	vms_json_object_end(&e->j);
	vms_json_object_end(&e->j);
}

/*
 * The bin of @p is complete: write it, and a 0 after it when the next bin with records,
 * @next (-1: none), is not the one after (a counter holds its value until the next). A VM
 * starts at 0 from the window's first bin.
 */
static void rate_flush(struct exporter *e, struct proc *p, int64_t next)
{
	if (p->bin < 0) {
		int64_t first = (int64_t)((e->from - e->origin) / BIN_NS);

		if (next < 0 || next > first)
			counter(e, p, first, 0);
		return;
	}
	counter(e, p, p->bin, p->count);
	if (next < 0 || next > p->bin + 1)
		counter(e, p, p->bin + 1, 0);
}

static void rate_add(struct exporter *e, int tid, uint64_t ts)
{
	struct thread *t;
	struct proc *p;
	int64_t bin;

	if (ts < e->from || ts >= e->to || tid <= 0 || !(t = thread_get(e, tid)))
		return;
	p = &e->procs[t->proc];
	proc_show(e, p);
	bin = (int64_t)((ts - e->origin) / BIN_NS);
	if (bin != p->bin) {
		rate_flush(e, p, bin);
		p->bin = bin;
		p->count = 0;
	}
	p->count++;
}

/* ---- handlers ---- */

/*
 * kvm_exit, after the model's own handler: when and on which ISA the thread exited (a
 * hypervisor slice that begins then is named by its reason), and the exit rate.
 */
static void on_kvm_exit(void *priv, const struct vms_record *rec)
{
	struct exporter *e = priv;
	struct thread *t;

	if (rec->pid <= 0 || !(t = thread_get(e, rec->pid)))
		return;
	t->exited = true;
	t->exit_ts = rec->ts;
	t->exit_isa = (uint32_t)vms_field_u64(&e->exit_isa, rec);
	if (!t->exit_isa)
		t->exit_isa = (uint32_t)e->isa;
	if (e->has_exit)
		rate_add(e, rec->pid, rec->ts);
}

/* kvm_userspace_exit, kvm_mmio, kvm_pio: the exits a trace without kvm_exit shows. */
static void on_seen_exit(void *priv, const struct vms_record *rec)
{
	rate_add(priv, rec->pid, rec->ts);
}

static void slice_args(struct exporter *e, const struct vms_vcpu_slice *s, struct thread *t,
		       enum vms_vcpu_state st)
{
	struct vms_json *j = &e->j;

	vms_json_object_begin(j, "args");
	if (s->cpu >= 0)
		vms_json_i64(j, "cpu", s->cpu);
	if (st == VMS_VCPU_PREEMPTED && s->by > 0) {
		const char *comm = vms_trace_comm(e->tr, s->by);

		vms_json_i64(j, "by_pid", s->by);
		if (comm)
			vms_json_string(j, "by_comm", comm);
	} else if (s->state == VMS_VCPU_HYPERVISOR && t->exited && t->exit_ts == s->start) {
		/* it began at the thread's last kvm_exit (not at a switch in) */
		const char *name =
			vms_x86_exit_reason_name((enum vms_x86_isa)t->exit_isa, s->reason);

		if (name)
			vms_json_string(j, "exit_reason", name);
		vms_json_u64(j, "exit_code", s->reason);
	} else if (st == VMS_VCPU_VMM && s->reason) {
		const char *name = vms_kvm_exit_name(s->reason);

		if (name)
			vms_json_string(j, "kvm_exit_reason", name);
		vms_json_u64(j, "kvm_exit_code", s->reason);
	}
	vms_json_object_end(j);
}

/* A slice of a vCPU thread: on its track, and on its host CPU's when it had one. */
static void on_slice(void *ctx, const struct vms_vcpu_slice *s)
{
	struct exporter *e = ctx;
	enum vms_vcpu_state st = s->state;
	uint64_t a = s->start > e->from ? s->start : e->from;
	uint64_t b = s->end < e->to ? s->end : e->to;
	struct thread *t;

	if (b <= a || s->tid <= 0 || !(t = thread_get(e, s->tid)))
		return;
	/* host-side time before the thread's first kvm_entry/kvm_exit: as report vcpu */
	if (st == VMS_VCPU_RUNNING && e->split)
		st = VMS_VCPU_HYPERVISOR;
	thread_show(e, t);
	event_begin(e, "X", vms_vcpu_state_name(st), e->procs[t->proc].pid, t->tid, a);
	vms_json_fixed(&e->j, "dur", (int64_t)(b - a), 3);
	slice_args(e, s, t, st);
	vms_json_object_end(&e->j);
	if (!vms_vcpu_state_on_cpu(st) || s->cpu < 0)
		return;
	cpu_show(e, s->cpu);
	event_begin(e, "X", t->label, HOST_PID, CPU_TID_BASE + s->cpu, a);
	vms_json_fixed(&e->j, "dur", (int64_t)(b - a), 3);
	vms_json_object_begin(&e->j, "args");
	vms_json_string(&e->j, "state", vms_vcpu_state_name(st));
	vms_json_i64(&e->j, "tid", t->tid);
	vms_json_object_end(&e->j);
	vms_json_object_end(&e->j);
}

/* ---- the command ---- */

static int make_procs(struct exporter *e)
{
	size_t nvms = vms_vmmap_nvms(e->map);

	e->nprocs = nvms + 1;
	e->procs = calloc(e->nprocs, sizeof(*e->procs));
	if (!e->procs)
		return -ENOMEM;
	for (size_t i = 0; i < e->nprocs; i++) {
		struct proc *p = &e->procs[i];
		const char *name = i < nvms ? vms_vmmap_vm_name(e->map, (int)i) : "";
		int vmm = i < nvms ? vms_vmmap_vm_pid(e->map, (int)i) : 0;

		p->pid = VM_PID_BASE + (int)i;
		p->bin = -1;
		if (*name)
			snprintf(p->name, sizeof(p->name), "%s", name);
		else if (vmm > 0)
			snprintf(p->name, sizeof(p->name), "VMM %d", vmm);
		else
			snprintf(p->name, sizeof(p->name), "VM");
	}
	return 0;
}

/*
 * Subscribe to what the rate counts, after the model: a kvm_exit that ends a hypervisor
 * slice begun by the previous one hands it out before on_kvm_exit() moves exit_ts on.
 */
static int subscribe(struct exporter *e, struct vms_session *s)
{
	static const char *const seen[] = { "kvm_userspace_exit", "kvm_mmio", "kvm_pio" };
	int id = vms_trace_event_id(e->tr, "kvm", "kvm_exit"), ret;

	if (id >= 0) {
		vms_trace_field(e->tr, id, "isa", &e->exit_isa);
		if ((ret = vms_session_subscribe(s, id, on_kvm_exit, e)))
			return ret;
	}
	for (size_t k = 0; !e->has_exit && k < sizeof(seen) / sizeof(seen[0]); k++) {
		id = vms_trace_event_id(e->tr, "kvm", seen[k]);
		if (id >= 0 && (ret = vms_session_subscribe(s, id, on_seen_exit, e)))
			return ret;
	}
	return 0;
}

static void progress(uint64_t n, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "\rvmscope export: %" PRIu64 " M records read", n >> 20);
}

/* What the output says about itself, after the events. */
static void other_data(struct exporter *e, const struct export_args *a, const char *error)
{
	struct vms_json *j = &e->j;

	vms_json_object_begin(j, "otherData");
	vms_json_string(j, "generator", "vmscope export perfetto");
	vms_json_string(j, "version", vms_version());
	vms_json_string(j, "file", a->file);
	vms_json_string(j, "clock", vms_trace_info(e->tr)->clock);
	vms_json_u64(j, "first_record_ts", e->origin);
	vms_json_bool(j, "kvm_entry_exit", e->split);
	vms_json_string(j, "exit_rate",
			e->has_exit ? "kvm_exit records per second, 10 ms bins"
				    : "kvm_userspace_exit + kvm_mmio + kvm_pio records per second "
				      "(no kvm_exit in this trace), 10 ms bins");
	if (error)
		vms_json_string(j, "error", error);
	vms_json_object_end(j);
}

/* Open the output (after what can fail before the first record): NULL on error. */
static FILE *open_output(const char *path)
{
	static char buf[1 << 20];
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;

	if (!f) {
		cli_error(CMD, "cannot write %s: %s", path, strerror(errno));
		return NULL;
	}
	setvbuf(f, buf, _IOFBF, sizeof(buf));
	/*
	 * Only this thread writes it: no lock per call (the reader's threads make every
	 * stdio call take the stream's lock otherwise, and a slice is some 40 calls).
	 */
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	return f;
}

static int run_export(const struct export_args *a, struct exporter *e)
{
	struct vms_vcpu_opts o = { sizeof(o), e->from, a->to ? e->to : 0, false };
	bool show_progress = !a->quiet && isatty(STDERR_FILENO);
	struct vms_session *s = NULL;
	const char *error = NULL;
	int ret, rc = 0;
	FILE *out;

	if ((ret = vms_session_new(e->tr, &s)) ||
	    (ret = vms_session_add(s, &vms_vcpu_ops, &o, &e->vcpu)) ||
	    (ret = vms_vcpu_listen(e->vcpu, on_slice, e)) || (ret = subscribe(e, s))) {
		vms_session_free(s);
		return cli_error(CMD, "cannot set up the analysis: %s", vms_strerror(ret));
	}
	if (!(out = open_output(a->output))) {
		vms_session_free(s);
		return CLI_EXIT_FAIL;
	}
	vms_json_init(&e->j, out, false);
	vms_json_object_begin(&e->j, NULL);
	vms_json_string(&e->j, "displayTimeUnit", "ns");
	vms_json_array_begin(&e->j, "traceEvents");
	ret = vms_session_run(s, show_progress ? progress : NULL, NULL);
	if (show_progress)
		fprintf(stderr, "\r%60s\r", "");
	if (ret) {
		error = vms_session_error(s)[0] ? vms_session_error(s) : vms_strerror(ret);
		rc = CLI_EXIT_FAIL;
	}
	for (size_t i = 0; i < e->nprocs; i++)
		if (e->procs[i].shown)
			rate_flush(e, &e->procs[i], -1);
	vms_json_array_end(&e->j);
	other_data(e, a, error);
	vms_json_object_end(&e->j);
	ret = vms_json_finish(&e->j);
	if (out != stdout && fclose(out) && !ret)
		ret = -errno;
	if (error)
		cli_error(CMD, "%s (the export covers the records before it)", error);
	if (e->err)
		rc = cli_error(CMD, "out of memory");
	else if (ret)
		rc = cli_error(CMD, "cannot write %s: %s", a->output, vms_strerror(ret));
	vms_session_free(s);
	return rc;
}

static int cmd_export_run(int argc, char **argv)
{
	struct export_args a;
	struct vms_trace_opts topts = { .sz = sizeof(topts) };
	struct exporter e = { 0 };
	bool has_entry, has_exit;
	int ret, rc;

	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	topts.buffer = a.buffer;
	if (vms_trace_open(a.file, &topts, &e.tr))
		return cli_error(CMD, "%s", vms_trace_open_error());
	if (vms_vmmap_from_trace(e.tr, &e.map) || make_procs(&e)) {
		vms_vmmap_free(e.map);
		vms_trace_close(e.tr);
		return cli_error(CMD, "out of memory");
	}
	prescan(&a, &e.origin, &has_entry, &has_exit);
	e.split = has_entry && has_exit;
	e.has_exit = has_exit;
	e.isa = vms_x86_isa_of_vendor(vms_trace_meta(e.tr, "vendor"));
	e.from = e.origin + a.from;
	e.to = a.to ? e.origin + a.to : UINT64_MAX;
	rc = run_export(&a, &e);
	free(e.tab);
	free(e.procs);
	free(e.cpu_shown);
	vms_vmmap_free(e.map);
	vms_trace_close(e.tr);
	return rc;
}

const struct vms_cmd cmd_export = {
	.name = "export",
	.summary = "convert a recorded trace into a timeline: perfetto (ui.perfetto.dev)",
	.usage = usage_text,
	.run = cmd_export_run,
};
