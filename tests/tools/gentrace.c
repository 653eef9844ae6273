// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace: a generator of synthetic KVM host traces, with their ground truth, for tests
 * and benchmarks.
 *
 * It reads the kernel's format files (tests/data/formats: header_page, header_event and
 * <system>/<event>/format), parses them with libtraceevent to learn each event's id and
 * field offsets, simulates a KVM host and writes what a recorder on that host would have
 * written: a trace-cmd .dat file (v6, or v7 uncompressed / zstd / zlib) made with
 * libvmscope's page and file writers, and a JSON file with the exact truth that an
 * analysis of the file must find.
 *
 * The simulation is a discrete-event scheduler, deterministic for a --seed: VMs with vCPU
 * threads and one kworker per host CPU share the host CPUs. A vCPU alternates between
 * the guest and exits whose reasons come from a weighted mix typical of the vendor (VMX
 * or SVM), with latencies drawn per reason; exits carry their side events (kvm_pio,
 * kvm_mmio, kvm_msr, kvm_page_fault, kvm_userspace_exit, kvm_inj_virq). Long HLTs block
 * the thread (sched_switch out, state S) until a timer wakes it (sched_waking,
 * sched_wakeup, sometimes sched_migrate_task to another CPU). Host work that needs a CPU
 * running a guest (a timer, a wakeup) first makes that guest exit (EXTERNAL_INTERRUPT),
 * and a vCPU about to enter the guest yields its CPU to a waiting task (sched_switch out
 * with prev_state R+, the kernel's TASK_REPORT_MAX for a preemption). Each vCPU's last
 * exit is a HLT that never ends, so the truth has unfinished exits too; the host then
 * stays on, idle, for one more second, where tickless CPUs can be quiet for longer than a
 * 27-bit time delta (the pages get TIME_EXTEND events).
 *
 * Events are written as they happen, time-ordered per CPU, through one page writer per
 * CPU into the .dat writer: nothing is buffered beyond a page, and the truth keeps
 * counters (plus, unless --no-percentiles, one latency sample per exit for exact
 * percentiles). --lost N drops N windows of a page's worth of events on one CPU; the
 * page after each carries the missed-events count, and the truth excludes exactly the
 * dropped events.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <traceevent/event-parse.h>

#include "tools-util.h"
#include "vmscope/json.h"
#include "vmscope/trace-writer.h"

#ifndef GENTRACE_FORMATS_DIR
#define GENTRACE_FORMATS_DIR "tests/data/formats"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define START_TS (1000ULL * 1000 * NS_PER_MS) /* the trace starts at 1000 s */
#define SLICE_NS (3 * NS_PER_MS)	      /* a vCPU yields to waiting tasks after this */
#define PREEMPT_STATE 0x100		      /* TASK_REPORT_MAX: "R+", preempted */
#define BLOCK_STATE 0x1			      /* TASK_INTERRUPTIBLE: "S" */
#define IDLE_STATE 0x80			      /* TASK_REPORT_IDLE: "I" (kworker) */
#define MAX_STEPS 8
#define IDLE (-1)

/* ---- options ---- */

struct opts {
	const char *formats;
	const char *output;
	const char *truth;
	const char *compression;
	bool svm;
	unsigned vms, vcpus, cpus;
	uint64_t exits, events_total, seed;
	unsigned lost;
	int dat_version;
	int level;
	bool percentiles;
	bool quiet;
};

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* Uniform in [0, 1). */
static inline double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(r) % (hi - lo + 1);
}

static inline bool rng_chance(struct rng *r, double p)
{
	return rng_unit(r) < p;
}

/* Log-uniform in [lo, hi]: as many short values per decade as long ones. */
static inline uint64_t rng_log(struct rng *r, uint64_t lo, uint64_t hi)
{
	double l = log((double)lo), h = log((double)hi);
	uint64_t v = (uint64_t)exp(l + (h - l) * rng_unit(r));

	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- event formats ---- */

enum ev {
	EV_EXIT,
	EV_ENTRY,
	EV_PIO,
	EV_MMIO,
	EV_MSR,
	EV_USER_EXIT,
	EV_PF,
	EV_VCPU_WAKEUP,
	EV_INJ_VIRQ,
	EV_SWITCH,
	EV_WAKING,
	EV_WAKEUP,
	EV_MIGRATE,
	EV_N
};

#define MAX_FIELDS 9

static const struct {
	const char *sys, *name;
	const char *fields[MAX_FIELDS];
} ev_spec[EV_N] = {
	[EV_EXIT] = { "kvm",
		      "kvm_exit",
		      { "exit_reason", "guest_rip", "isa", "info1", "info2", "intr_info",
			"error_code", "vcpu_id", "requests" } },
	[EV_ENTRY] = { "kvm",
		       "kvm_entry",
		       { "vcpu_id", "rip", "immediate_exit", "intr_info", "error_code" } },
	[EV_PIO] = { "kvm", "kvm_pio", { "rw", "port", "size", "count", "val" } },
	[EV_MMIO] = { "kvm", "kvm_mmio", { "type", "len", "gpa", "val" } },
	[EV_MSR] = { "kvm", "kvm_msr", { "write", "ecx", "data", "exception" } },
	[EV_USER_EXIT] = { "kvm", "kvm_userspace_exit", { "reason", "errno" } },
	[EV_PF] = { "kvm",
		    "kvm_page_fault",
		    { "vcpu_id", "guest_rip", "fault_address", "error_code" } },
	[EV_VCPU_WAKEUP] = { "kvm", "kvm_vcpu_wakeup", { "ns", "waited", "valid" } },
	[EV_INJ_VIRQ] = { "kvm", "kvm_inj_virq", { "vector", "soft", "reinjected" } },
	[EV_SWITCH] = { "sched",
			"sched_switch",
			{ "prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm",
			  "next_pid", "next_prio" } },
	[EV_WAKING] = { "sched", "sched_waking", { "comm", "pid", "prio", "target_cpu" } },
	[EV_WAKEUP] = { "sched", "sched_wakeup", { "comm", "pid", "prio", "target_cpu" } },
	[EV_MIGRATE] = { "sched",
			 "sched_migrate_task",
			 { "comm", "pid", "prio", "orig_cpu", "dest_cpu" } },
};

struct fld {
	int off, size; /* off -1: the kernel's format has no such field */
	bool dyn;      /* __data_loc string */
};

struct evdesc {
	int id;
	int size; /* fixed part of the record */
	struct fld type, pid;
	struct fld f[MAX_FIELDS];
};

#define REC_MAX 256

struct rec {
	uint8_t buf[REC_MAX];
	size_t len;
};

static inline void rec_u(struct rec *r, const struct fld *f, uint64_t v)
{
	if (f->off >= 0)
		memcpy(r->buf + f->off, &v, (size_t)f->size); /* little-endian host */
}

static void rec_str(struct rec *r, const struct fld *f, const char *s)
{
	size_t n = strlen(s);

	if (f->off < 0)
		return;
	if (f->dyn) {
		uint32_t loc;

		if (r->len + n + 1 > REC_MAX)
			n = REC_MAX - r->len - 1;
		loc = (uint32_t)((n + 1) << 16 | r->len);
		memcpy(r->buf + r->len, s, n);
		r->buf[r->len + n] = 0;
		r->len += n + 1;
		memcpy(r->buf + f->off, &loc, 4);
	} else {
		if (n >= (size_t)f->size)
			n = (size_t)f->size - 1;
		memcpy(r->buf + f->off, s, n);
	}
}

static inline void rec_begin(struct rec *r, const struct evdesc *d, int32_t pid)
{
	memset(r->buf, 0, (size_t)d->size);
	r->len = (size_t)d->size;
	rec_u(r, &d->type, (uint64_t)d->id);
	rec_u(r, &d->pid, (uint64_t)(uint32_t)pid);
}

static void fld_of(struct tep_format_field *tf, struct fld *f)
{
	f->off = tf ? tf->offset : -1;
	f->size = tf ? tf->size : 0;
	f->dyn = tf && (tf->flags & TEP_FIELD_IS_DYNAMIC);
	if (tf && !f->dyn && f->size > 8 && !(tf->flags & TEP_FIELD_IS_STRING))
		f->off = -1; /* arrays other than strings: not set by the generator */
}

static int filter_dirs(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/*
 * Add every format under @dir to the .dat writer and to @tep: systems and events in
 * alphabetical order, so the file does not depend on the order of the directory.
 */
static int load_formats(const char *dir, struct tep_handle *tep, struct vms_dat_writer *w)
{
	struct dirent **sys = NULL;
	int nsys, ret = 0;

	nsys = scandir(dir, &sys, filter_dirs, alphasort);
	if (nsys < 0) {
		fprintf(stderr, "gentrace: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < nsys && !ret; i++) {
		struct dirent **evs = NULL;
		char path[PATH_MAX];
		int nev;

		snprintf(path, sizeof(path), "%s/%s", dir, sys[i]->d_name);
		nev = scandir(path, &evs, filter_dirs, alphasort);
		if (nev < 0)
			continue; /* header_page, header_event, README.md: plain files */
		for (int j = 0; j < nev; j++) {
			size_t len;
			char *text;

			snprintf(path, sizeof(path), "%s/%s/%s/format", dir, sys[i]->d_name,
				 evs[j]->d_name);
			text = tools_read_file(path, &len);
			if (!text)
				continue;
			if (tep_parse_event(tep, text, len, sys[i]->d_name)) {
				fprintf(stderr, "gentrace: %s does not parse\n", path);
				ret = -1;
			} else if (vms_dat_writer_add_format(w, sys[i]->d_name, text, len)) {
				ret = -1;
			}
			free(text);
			free(evs[j]);
		}
		free(evs);
	}
	for (int i = 0; i < nsys; i++)
		free(sys[i]);
	free(sys);
	return ret;
}

static int describe_events(struct tep_handle *tep, struct evdesc *desc)
{
	for (int e = 0; e < EV_N; e++) {
		struct tep_event *ev = tep_find_event_by_name(tep, ev_spec[e].sys, ev_spec[e].name);
		struct tep_format_field *tf;
		int size = 0;

		if (!ev) {
			fprintf(stderr, "gentrace: no format for %s:%s\n", ev_spec[e].sys,
				ev_spec[e].name);
			return -1;
		}
		desc[e].id = ev->id;
		for (tf = ev->format.common_fields; tf; tf = tf->next)
			size = tf->offset + tf->size > size ? tf->offset + tf->size : size;
		for (tf = ev->format.fields; tf; tf = tf->next)
			size = tf->offset + tf->size > size ? tf->offset + tf->size : size;
		if (size > REC_MAX / 2) {
			fprintf(stderr, "gentrace: %s is too large\n", ev_spec[e].name);
			return -1;
		}
		desc[e].size = size;
		fld_of(tep_find_common_field(ev, "common_type"), &desc[e].type);
		fld_of(tep_find_common_field(ev, "common_pid"), &desc[e].pid);
		for (int i = 0; i < MAX_FIELDS; i++)
			fld_of(ev_spec[e].fields[i] ? tep_find_field(ev, ev_spec[e].fields[i])
						    : NULL,
			       &desc[e].f[i]);
	}
	return 0;
}

/* ---- the scenario: exit reasons, devices ---- */

enum cat { C_EXTINT, C_HLT, C_PF, C_MMIO, C_NPF, C_IO, C_MSR_R, C_MSR_W, C_MSR, C_PLAIN, C_TIMER };

struct reason {
	uint32_t code;
	const char *name;
	enum cat cat;
	unsigned weight;
	uint32_t lo, hi; /* latency bounds, ns (log-uniform) */
};

static const struct reason vmx_reasons[] = {
	{ 1, "EXTERNAL_INTERRUPT", C_EXTINT, 14, 400, 6000 },
	{ 12, "HLT", C_HLT, 14, 2000, 150000 },
	{ 48, "EPT_VIOLATION", C_PF, 12, 600, 25000 },
	{ 49, "EPT_MISCONFIG", C_MMIO, 12, 1500, 60000 },
	{ 30, "IO_INSTRUCTION", C_IO, 14, 1000, 50000 },
	{ 32, "MSR_WRITE", C_MSR_W, 14, 300, 3000 },
	{ 31, "MSR_READ", C_MSR_R, 5, 300, 2000 },
	{ 10, "CPUID", C_PLAIN, 4, 200, 1500 },
	{ 52, "PREEMPTION_TIMER", C_TIMER, 9, 300, 4000 },
	{ 99, "unknown", C_PLAIN, 2, 1000, 12000 },
};

static const struct reason svm_reasons[] = {
	{ 0x060, "interrupt", C_EXTINT, 18, 400, 6000 }, { 0x078, "hlt", C_HLT, 14, 2000, 150000 },
	{ 0x400, "npf", C_NPF, 22, 600, 50000 },	 { 0x07b, "io", C_IO, 14, 1000, 50000 },
	{ 0x07c, "msr", C_MSR, 20, 300, 3000 },		 { 0x072, "cpuid", C_PLAIN, 5, 200, 1500 },
	{ 0x0ff, "unknown", C_PLAIN, 2, 1000, 12000 },
};

#define REASON_EXTINT 0 /* index of the interrupt exit in both tables */
#define REASON_HLT 1	/* index of HLT in both tables */
#define MAX_REASONS 10

static const struct mmio_dev {
	uint64_t gpa;
	bool user; /* emulated by the VMM: the exit goes to user space */
	uint32_t len;
} mmio_devs[] = {
	{ 0xfec00000, false, 4 }, /* IOAPIC, in the kernel */
	{ 0xfee00300, false, 4 }, /* local APIC ICR, in the kernel */
	{ 0xfebc1000, true, 4 },  /* a virtio-net doorbell */
	{ 0xfebd2000, true, 2 },  /* a virtio-blk register */
	{ 0xfe000000, true, 8 },  /* display memory */
};

static const struct pio_port {
	uint16_t port;
	bool user;
	uint8_t size;
} pio_ports[] = {
	{ 0x3f8, true, 1 },  /* serial data */
	{ 0x3fd, true, 1 },  /* serial line status */
	{ 0xcf8, true, 4 },  /* PCI config address */
	{ 0xcfc, true, 4 },  /* PCI config data */
	{ 0x70, true, 1 },   /* RTC index */
	{ 0x40, false, 1 },  /* PIT, in the kernel */
	{ 0x20, false, 1 },  /* PIC, in the kernel */
	{ 0xb008, true, 4 }, /* ACPI PM timer */
};

static const uint32_t msr_idx[] = {
	0x6e0,	    /* TSC_DEADLINE (write) */
	0x830,	    /* x2APIC ICR (write) */
	0x80b,	    /* x2APIC EOI (write) */
	0x48,	    /* SPEC_CTRL (write) */
	0x1b,	    /* APIC_BASE (read) */
	0x10,	    /* TSC (read) */
	0xc0000103, /* TSC_AUX (read) */
};
#define MSR_FIRST_READ 4

#define KVM_EXIT_IO 2
#define KVM_EXIT_MMIO 6
#define MMIO_UNSATISFIED_READ 0
#define MMIO_READ 1
#define MMIO_WRITE 2

static const char *const mmio_type_name[] = { "unsatisfied-read", "read", "write" };

/* ---- the simulation ---- */

enum tstate { T_GUEST, T_HYP, T_RUNNABLE, T_BLOCKED, T_DONE, T_HOST_RUN, T_HOST_SLEEP };
enum resume { R_ENTRY, R_WOKEN, R_HOST };
enum stepkind { S_IRQ, S_PIO, S_MMIO, S_MSR, S_PF, S_USER_EXIT, S_INJ, S_VWAKE, S_BLOCK, S_ENTRY };

struct step {
	uint64_t at;
	uint8_t kind;
	uint32_t a, b;
	uint64_t c, d;
};

/* Exit latency statistics of one (thread, reason). */
struct xstat {
	uint64_t count, total, min, max, unfinished;
	uint64_t before; /* exits before the thread's first written kvm_entry: not timed */
	uint64_t *samples;
	size_t ns, cap;
};

struct thread {
	bool vcpu; /* else a kworker */
	int32_t pid, tid;
	char comm[16];
	int vm, vid; /* VM index and vCPU id */
	int cpu;     /* where it runs or last ran */
	enum tstate state;
	enum resume resume;
	uint64_t switched_in;
	int rq_next;
	int irq_next;
	bool irq_queued;
	/* the exit being handled */
	int reason;
	bool forced, final;
	uint64_t exit_ts, block_ts, rip;
	struct step steps[MAX_STEPS];
	int nsteps, istep;
	uint64_t nexits;
	/* heap action */
	uint64_t act_time;
	uint32_t act_seq;
	/* truth */
	int pending; /* reason of the written kvm_exit still waiting for its entry, or -1 */
	uint64_t pending_ts;
	uint64_t orphans; /* written kvm_entry without a written kvm_exit before */
	bool known;	  /* a written kvm_entry named the thread (perf starts timing then) */
	struct xstat xs[MAX_REASONS];
	uint32_t mmio[3][ARRAY_SIZE(mmio_devs)];
	uint32_t pio[ARRAY_SIZE(pio_ports)][2];
	uint32_t msr[ARRAY_SIZE(msr_idx)][2];
	uint32_t uexit[2]; /* KVM_EXIT_IO, KVM_EXIT_MMIO */
};

struct lost_window {
	int cpu;
	uint64_t events, from, to;
};

struct cpu {
	int cur; /* thread index, or IDLE */
	int rq_head, rq_tail;
	bool need_resched;
	int irq_head, irq_tail;
	int kworker;
	struct vms_page_writer *pw;
	struct sim *sim;
	uint64_t generated, written; /* events, dropped included or not */
	/* lost windows */
	uint64_t *win_at; /* generated-event index where each window starts */
	unsigned nwin, iwin;
	bool dropping;
	struct lost_window cur_win;
	size_t drop_bytes;
	uint64_t lost_total;
	uint64_t first_ts, last_ts;
	/* heap entities: the kworker timer and the idle-CPU reschedule */
	uint64_t timer_time, resched_time;
	uint32_t timer_seq, resched_seq;
	bool resched_armed;
};

struct hent {
	uint64_t time;
	uint32_t seq;
	uint32_t ent;
};

struct sim {
	struct opts *o;
	struct rng rng;
	const struct reason *reasons;
	unsigned nreasons, weight_sum;
	uint32_t isa;
	struct evdesc ev[EV_N];
	struct vms_dat_writer *w;
	struct thread *th;
	unsigned nth, nvcpus;
	struct cpu *cpu;
	struct hent *heap;
	size_t nheap, capheap;
	uint64_t generated, dropped;
	uint64_t events[EV_N];
	unsigned done;
	bool draining, finished;
	uint64_t end_ts; /* the trace ends here, once every vCPU is done */
	int err;
	struct lost_window *wins;
	size_t nwins;
	struct rec rec;
};

/* Heap entity numbers: threads, then per CPU the kworker timer, then the reschedule. */
static inline uint32_t ent_timer(struct sim *s, int c)
{
	return s->nth + (uint32_t)c;
}

static inline uint32_t ent_resched(struct sim *s, int c)
{
	return s->nth + s->o->cpus + (uint32_t)c;
}

static inline bool hless(const struct hent *a, const struct hent *b)
{
	return a->time < b->time || (a->time == b->time && a->ent < b->ent);
}

static void heap_push(struct sim *s, uint64_t time, uint32_t seq, uint32_t ent)
{
	size_t i;

	if (s->nheap == s->capheap) {
		size_t cap = s->capheap ? s->capheap * 2 : 256;
		struct hent *h = realloc(s->heap, cap * sizeof(*h));

		if (!h) {
			s->err = -ENOMEM;
			return;
		}
		s->heap = h;
		s->capheap = cap;
	}
	i = s->nheap++;
	s->heap[i] = (struct hent){ time, seq, ent };
	while (i && hless(&s->heap[i], &s->heap[(i - 1) / 2])) {
		struct hent t = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct hent heap_pop(struct sim *s)
{
	struct hent top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->nheap && hless(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->nheap && hless(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct hent t = s->heap[i];

		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

static void set_action(struct sim *s, int t, uint64_t time)
{
	struct thread *th = &s->th[t];

	th->act_time = time;
	heap_push(s, time, ++th->act_seq, (uint32_t)t);
}

static void cancel_action(struct sim *s, int t)
{
	s->th[t].act_seq++;
	s->th[t].act_time = UINT64_MAX;
}

/* ---- emitting events ---- */

static int emit_page(void *ctx, const void *page, size_t size)
{
	struct cpu *c = ctx;

	(void)size;
	return vms_dat_writer_add_page(c->sim->w, (uint32_t)(c - c->sim->cpu), page);
}

static void end_window(struct sim *s, struct cpu *c)
{
	struct lost_window *w;
	int ret;

	c->dropping = false;
	ret = vms_page_writer_lost(c->pw, c->cur_win.events);
	if (ret < 0 && !s->err)
		s->err = ret;
	w = realloc(s->wins, (s->nwins + 1) * sizeof(*w));
	if (!w) {
		s->err = -ENOMEM;
		return;
	}
	s->wins = w;
	s->wins[s->nwins++] = c->cur_win;
	c->lost_total += c->cur_win.events;
}

/*
 * Write the record in s->rec as event @ev on @cpu at @ts, or drop it inside a lost window.
 * Returns whether it was written (the truth counts only those).
 */
static bool emit(struct sim *s, int cpu, uint64_t ts, enum ev ev)
{
	struct cpu *c = &s->cpu[cpu];
	int ret;

	s->generated++;
	c->generated++;
	if (!c->dropping && c->iwin < c->nwin && c->generated >= c->win_at[c->iwin]) {
		/* An overrun: the pages up to here survive, the next page's worth does not. */
		ret = vms_page_writer_flush(c->pw);
		if (ret < 0 && !s->err)
			s->err = ret;
		c->iwin++;
		c->dropping = true;
		c->drop_bytes = 0;
		c->cur_win = (struct lost_window){ cpu, 0, ts, ts };
	}
	if (c->dropping) {
		c->cur_win.events++;
		c->cur_win.to = ts;
		c->drop_bytes += vms_page_event_size(s->rec.len);
		s->dropped++;
		if (c->drop_bytes >= 4096 - VMS_PAGE_HEADER_SIZE)
			end_window(s, c);
		return false;
	}
	ret = vms_page_writer_add(c->pw, ts, s->rec.buf, s->rec.len);
	if (ret < 0 && !s->err)
		s->err = ret;
	if (!c->written)
		c->first_ts = ts;
	c->last_ts = ts;
	c->written++;
	s->events[ev]++;
	return true;
}

static inline int32_t cur_pid(struct sim *s, int cpu)
{
	int cur = s->cpu[cpu].cur;

	return cur == IDLE ? 0 : s->th[cur].tid;
}

static const char *comm_of(struct sim *s, int t, int cpu, char *buf)
{
	if (t != IDLE)
		return s->th[t].comm;
	snprintf(buf, 16, "swapper/%d", cpu);
	return buf;
}

static void ev_switch(struct sim *s, int cpu, uint64_t ts, int prev, uint64_t prev_state, int next)
{
	const struct evdesc *d = &s->ev[EV_SWITCH];
	char b1[16], b2[16];

	rec_begin(&s->rec, d, prev == IDLE ? 0 : s->th[prev].tid);
	rec_str(&s->rec, &d->f[0], comm_of(s, prev, cpu, b1));
	rec_u(&s->rec, &d->f[1], prev == IDLE ? 0 : (uint64_t)s->th[prev].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], prev_state);
	rec_str(&s->rec, &d->f[4], comm_of(s, next, cpu, b2));
	rec_u(&s->rec, &d->f[5], next == IDLE ? 0 : (uint64_t)s->th[next].tid);
	rec_u(&s->rec, &d->f[6], 120);
	emit(s, cpu, ts, EV_SWITCH);
}

static void ev_wake(struct sim *s, enum ev ev, int cpu, uint64_t ts, int t, int target)
{
	const struct evdesc *d = &s->ev[ev];

	rec_begin(&s->rec, d, cur_pid(s, cpu));
	rec_str(&s->rec, &d->f[0], s->th[t].comm);
	rec_u(&s->rec, &d->f[1], (uint64_t)s->th[t].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], (uint64_t)target);
	emit(s, cpu, ts, ev);
}

static void ev_migrate(struct sim *s, int cpu, uint64_t ts, int t, int from, int to)
{
	const struct evdesc *d = &s->ev[EV_MIGRATE];

	rec_begin(&s->rec, d, cur_pid(s, cpu));
	rec_str(&s->rec, &d->f[0], s->th[t].comm);
	rec_u(&s->rec, &d->f[1], (uint64_t)s->th[t].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], (uint64_t)from);
	rec_u(&s->rec, &d->f[4], (uint64_t)to);
	emit(s, cpu, ts, EV_MIGRATE);
}

/* ---- truth ---- */

static void xstat_add(struct sim *s, struct xstat *x, uint64_t lat)
{
	if (!x->count || lat < x->min)
		x->min = lat;
	if (lat > x->max)
		x->max = lat;
	x->count++;
	x->total += lat;
	if (!s->o->percentiles)
		return;
	if (x->ns == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		uint64_t *p = realloc(x->samples, cap * sizeof(*p));

		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		x->samples = p;
		x->cap = cap;
	}
	x->samples[x->ns++] = lat;
}

/* perf kvm stat's pairing: an exit ends at the next kvm_entry of the same thread, and a
 * thread is timed only from its first kvm_entry on. */
static void truth_exit(struct sim *s, struct thread *th, uint64_t ts, int reason)
{
	if (!th->known) {
		th->xs[reason].before++;
		return;
	}
	if (th->pending >= 0)
		th->xs[th->pending].unfinished++;
	th->pending = reason;
	th->pending_ts = ts;
}

static void truth_entry(struct sim *s, struct thread *th, uint64_t ts)
{
	th->known = true;
	if (th->pending < 0) {
		th->orphans++;
		return;
	}
	xstat_add(s, &th->xs[th->pending], ts - th->pending_ts);
	th->pending = -1;
}

/* ---- scheduling ---- */

static void rq_push(struct sim *s, int cpu, int t)
{
	struct cpu *c = &s->cpu[cpu];

	s->th[t].rq_next = -1;
	s->th[t].state = T_RUNNABLE;
	if (c->rq_tail >= 0)
		s->th[c->rq_tail].rq_next = t;
	else
		c->rq_head = t;
	c->rq_tail = t;
}

static int rq_pop(struct sim *s, int cpu)
{
	struct cpu *c = &s->cpu[cpu];
	int t = c->rq_head;

	if (t < 0)
		return -1;
	c->rq_head = s->th[t].rq_next;
	if (c->rq_head < 0)
		c->rq_tail = -1;
	s->th[t].rq_next = -1;
	return t;
}

/* Take the first waiting vCPU of another CPU's run queue (idle balancing). */
static int rq_steal(struct sim *s, int cpu)
{
	for (unsigned k = 1; k < s->o->cpus; k++) {
		int from = (int)((unsigned)cpu + k) % (int)s->o->cpus;
		struct cpu *c = &s->cpu[from];
		int prev = -1;

		for (int t = c->rq_head; t >= 0; prev = t, t = s->th[t].rq_next) {
			if (!s->th[t].vcpu)
				continue;
			if (prev < 0)
				c->rq_head = s->th[t].rq_next;
			else
				s->th[prev].rq_next = s->th[t].rq_next;
			if (c->rq_tail == t)
				c->rq_tail = prev;
			s->th[t].rq_next = -1;
			return t;
		}
	}
	return -1;
}

static void add_step(struct thread *th, uint64_t at, uint8_t kind, uint32_t a, uint32_t b,
		     uint64_t c, uint64_t d)
{
	if (th->nsteps && at <= th->steps[th->nsteps - 1].at)
		at = th->steps[th->nsteps - 1].at + 1;
	th->steps[th->nsteps++] = (struct step){ at, kind, a, b, c, d };
}

static void start_steps(struct sim *s, int t)
{
	struct thread *th = &s->th[t];

	th->istep = 0;
	th->state = T_HYP;
	set_action(s, t, th->steps[0].at);
}

static void switch_in(struct sim *s, int t, int cpu, uint64_t now)
{
	struct thread *th = &s->th[t];

	th->cpu = cpu;
	th->switched_in = now;
	th->nsteps = 0;
	switch (th->resume) {
	case R_ENTRY:
		add_step(th, now + rng_range(&s->rng, 300, 1500), S_ENTRY, 0, 0, 0, 0);
		start_steps(s, t);
		break;
	case R_WOKEN: {
		uint64_t at = now + rng_range(&s->rng, 300, 1200);

		add_step(th, at, S_VWAKE, 1, 0, at - th->block_ts, 0);
		if (rng_chance(&s->rng, 0.7))
			add_step(th, at + rng_range(&s->rng, 200, 800), S_INJ, 0xec, 0, 0, 0);
		add_step(th, at + rng_range(&s->rng, 900, 2500), S_ENTRY, 0, 0, 0, 0);
		start_steps(s, t);
		break;
	}
	case R_HOST:
		th->state = T_HOST_RUN;
		set_action(s, t, now + rng_log(&s->rng, 2 * NS_PER_US, 200 * NS_PER_US));
		break;
	}
}

/* @prev leaves @cpu (or the CPU was idle: IDLE); the next task gets it. */
static void cpu_switch(struct sim *s, int cpu, uint64_t now, int prev, uint64_t prev_state)
{
	struct cpu *c = &s->cpu[cpu];
	int next = rq_pop(s, cpu);

	if (next < 0 && prev != IDLE) {
		next = rq_steal(s, cpu);
		if (next >= 0) {
			ev_migrate(s, cpu, now, next, s->th[next].cpu, cpu);
			s->th[next].cpu = cpu;
		}
	}
	if (next < 0 && prev == IDLE)
		return;
	ev_switch(s, cpu, now, prev, prev_state, next < 0 ? IDLE : next);
	c->cur = next < 0 ? IDLE : next;
	c->need_resched = false;
	if (next >= 0)
		switch_in(s, next, cpu, now);
}

static void force_exit(struct sim *s, int t, uint64_t at)
{
	struct thread *th = &s->th[t];

	if (th->state != T_GUEST || th->act_time <= at)
		return;
	th->forced = true;
	set_action(s, t, at);
}

/* Make @cpu notice a task waiting on its run queue. */
static void kick(struct sim *s, int cpu, uint64_t now)
{
	struct cpu *c = &s->cpu[cpu];

	if (c->cur == IDLE) {
		uint64_t at = now + rng_range(&s->rng, 1000, 4000);

		if (!c->resched_armed || c->resched_time > at) {
			c->resched_armed = true;
			c->resched_time = at;
			heap_push(s, at, ++c->resched_seq, ent_resched(s, cpu));
		}
		return;
	}
	c->need_resched = true;
	if (s->th[c->cur].vcpu) /* the reschedule IPI makes a running guest exit */
		force_exit(s, c->cur, now + rng_range(&s->rng, 800, 3000));
}

static int pick_target(struct sim *s, int from)
{
	unsigned n = s->o->cpus;
	int start = (int)(rng_next(&s->rng) % n);

	for (unsigned k = 0; k < n; k++) {
		int c = (start + (int)k) % (int)n;

		if (c != from && s->cpu[c].cur == IDLE && s->cpu[c].rq_head < 0)
			return c;
	}
	if (n == 1)
		return from;
	return (from + 1 + (int)(rng_next(&s->rng) % (n - 1))) % (int)n;
}

/* Host context on @cpu wakes thread @t (a blocked vCPU or a sleeping kworker). */
static void do_wake(struct sim *s, int cpu, uint64_t now, int t)
{
	struct thread *th = &s->th[t];
	int target = cpu;

	if (th->vcpu && s->o->cpus > 1 && rng_chance(&s->rng, 0.15))
		target = pick_target(s, cpu);
	ev_wake(s, EV_WAKING, cpu, now, t, target);
	if (target != th->cpu) {
		ev_migrate(s, cpu, now, t, th->cpu, target);
		th->cpu = target;
	}
	ev_wake(s, EV_WAKEUP, cpu, now, t, target);
	th->resume = th->vcpu ? R_WOKEN : R_HOST;
	rq_push(s, target, t);
	kick(s, target, now);
}

/* Work that needs host context on @cpu: a guest running there exits first. */
static void host_work(struct sim *s, int cpu, uint64_t now, int t)
{
	struct cpu *c = &s->cpu[cpu];

	if (c->cur != IDLE && s->th[c->cur].vcpu && s->th[c->cur].state == T_GUEST) {
		if (s->th[t].irq_queued)
			return;
		s->th[t].irq_queued = true;
		s->th[t].irq_next = -1;
		if (c->irq_tail >= 0)
			s->th[c->irq_tail].irq_next = t;
		else
			c->irq_head = t;
		c->irq_tail = t;
		force_exit(s, c->cur, now);
		return;
	}
	do_wake(s, cpu, now, t);
}

static int draw_reason(struct sim *s)
{
	unsigned x = (unsigned)(rng_next(&s->rng) % s->weight_sum);

	for (unsigned i = 0; i < s->nreasons; i++) {
		if (x < s->reasons[i].weight)
			return (int)i;
		x -= s->reasons[i].weight;
	}
	return 0;
}

static void do_exit(struct sim *s, int t, uint64_t now)
{
	struct thread *th = &s->th[t];
	const struct evdesc *d = &s->ev[EV_EXIT];
	struct cpu *c = &s->cpu[th->cpu];
	const struct reason *r;
	uint64_t lat, at;
	int reason;

	th->nexits++;
	reason = th->forced ? REASON_EXTINT : draw_reason(s);
	th->forced = false;
	if ((s->o->exits && th->nexits >= s->o->exits) || s->draining) {
		th->final = true; /* the guest halts for good: this exit never ends */
		reason = REASON_HLT;
	}
	r = &s->reasons[reason];
	th->reason = reason;
	th->exit_ts = now;
	th->rip = 0xffffffff81000000ULL + (uint64_t)reason * 0x10000 + (rng_next(&s->rng) & 0xfff0);

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], r->code);
	rec_u(&s->rec, &d->f[1], th->rip);
	rec_u(&s->rec, &d->f[2], s->isa);
	rec_u(&s->rec, &d->f[5], r->cat == C_EXTINT ? 0x800000ec : 0);
	rec_u(&s->rec, &d->f[7], (uint64_t)th->vid);
	if (emit(s, th->cpu, now, EV_EXIT))
		truth_exit(s, th, now, reason);

	th->nsteps = 0;
	at = now;
	if (c->irq_head >= 0)
		add_step(th, at += rng_range(&s->rng, 100, 400), S_IRQ, 0, 0, 0, 0);
	lat = rng_log(&s->rng, r->lo, r->hi);
	if (th->final) {
		add_step(th, at + rng_range(&s->rng, 300, 900), S_BLOCK, 0, 0, 0, 0);
		start_steps(s, t);
		return;
	}
	switch (r->cat) {
	case C_IO: {
		unsigned p = (unsigned)(rng_next(&s->rng) % ARRAY_SIZE(pio_ports));
		uint32_t rw = rng_chance(&s->rng, 0.6);

		if (!pio_ports[p].user)
			lat = rng_log(&s->rng, 800, 4000);
		add_step(th, now + lat / 5, S_PIO, p, rw, rng_next(&s->rng) & 0xff, 0);
		if (pio_ports[p].user)
			add_step(th, now + lat * 2 / 5, S_USER_EXIT, KVM_EXIT_IO, 0, 0, 0);
		break;
	}
	case C_NPF:
		if (rng_chance(&s->rng, 0.55)) {
			add_step(th, now + lat / 3, S_PF, 0, 0, rng_next(&s->rng) & 0xfffff000,
				 rng_chance(&s->rng, 0.5) ? 0x100000006ULL : 0x100000004ULL);
			break;
		}
		__attribute__((fallthrough)); /* the other npf exits access MMIO */
	case C_MMIO: {
		unsigned dv = (unsigned)(rng_next(&s->rng) % ARRAY_SIZE(mmio_devs));
		bool write = rng_chance(&s->rng, 0.6);
		uint64_t val = rng_next(&s->rng) & 0xffffffff;

		if (!mmio_devs[dv].user) {
			lat = rng_log(&s->rng, 1000, 5000);
			add_step(th, now + lat / 3, S_MMIO, write ? MMIO_WRITE : MMIO_READ, dv, val,
				 0);
		} else if (write) {
			add_step(th, now + lat / 5, S_MMIO, MMIO_WRITE, dv, val, 0);
			add_step(th, now + lat * 2 / 5, S_USER_EXIT, KVM_EXIT_MMIO, 0, 0, 0);
		} else {
			add_step(th, now + lat / 5, S_MMIO, MMIO_UNSATISFIED_READ, dv, 0, 0);
			add_step(th, now + lat * 2 / 5, S_USER_EXIT, KVM_EXIT_MMIO, 0, 0, 0);
			add_step(th, now + lat * 9 / 10, S_MMIO, MMIO_READ, dv, val, 0);
		}
		break;
	}
	case C_PF:
		add_step(th, now + lat / 3, S_PF, 0, 0, rng_next(&s->rng) & 0xfffff000,
			 rng_chance(&s->rng, 0.5) ? 0x100000006ULL : 0x100000004ULL);
		break;
	case C_MSR_W:
	case C_MSR_R:
	case C_MSR: {
		bool write = r->cat == C_MSR_W || (r->cat == C_MSR && rng_chance(&s->rng, 0.7));
		unsigned m =
			write ? (unsigned)(rng_next(&s->rng) % MSR_FIRST_READ)
			      : MSR_FIRST_READ + (unsigned)(rng_next(&s->rng) %
							    (ARRAY_SIZE(msr_idx) - MSR_FIRST_READ));

		add_step(th, now + lat / 3, S_MSR, m, write, rng_next(&s->rng), 0);
		break;
	}
	case C_EXTINT:
	case C_TIMER:
		if (rng_chance(&s->rng, 0.5))
			add_step(th, now + lat * 4 / 5, S_INJ, r->cat == C_TIMER ? 0xec : 0x22, 0,
				 0, 0);
		break;
	case C_HLT:
		if (rng_chance(&s->rng, 0.35)) {
			add_step(th, at + rng_range(&s->rng, 300, 900), S_BLOCK, 0, 0, 0, 0);
			start_steps(s, t);
			return;
		}
		add_step(th, now + lat * 9 / 10, S_VWAKE, 0, 0, lat * 9 / 10, 0);
		break;
	case C_PLAIN:
		break;
	}
	add_step(th, now + lat, S_ENTRY, 0, 0, 0, 0);
	start_steps(s, t);
}

static void do_entry(struct sim *s, int t, uint64_t now)
{
	struct thread *th = &s->th[t];
	struct cpu *c = &s->cpu[th->cpu];
	const struct evdesc *d = &s->ev[EV_ENTRY];

	if (c->rq_head < 0)
		c->need_resched = false; /* the waiting task went to another CPU */
	if (c->rq_head >= 0 && (c->need_resched || now - th->switched_in > SLICE_NS)) {
		/* Preempted on the way back to the guest: it waits, still runnable. */
		int cpu = th->cpu;

		cancel_action(s, t);
		th->resume = R_ENTRY;
		rq_push(s, cpu, t);
		cpu_switch(s, cpu, now, t, PREEMPT_STATE);
		return;
	}
	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], (uint64_t)th->vid);
	rec_u(&s->rec, &d->f[1], th->rip + 2);
	if (emit(s, th->cpu, now, EV_ENTRY))
		truth_entry(s, th, now);
	th->state = T_GUEST;
	set_action(s, t, now + rng_log(&s->rng, 300, 400 * NS_PER_US));
}

static void do_step(struct sim *s, int t, uint64_t now)
{
	struct thread *th = &s->th[t];
	struct step *st = &th->steps[th->istep++];
	int cpu = th->cpu;
	struct cpu *c = &s->cpu[cpu];
	const struct evdesc *d;

	switch (st->kind) {
	case S_IRQ:
		while (c->irq_head >= 0) {
			int w = c->irq_head;

			c->irq_head = s->th[w].irq_next;
			if (c->irq_head < 0)
				c->irq_tail = -1;
			s->th[w].irq_queued = false;
			do_wake(s, cpu, now, w);
		}
		break;
	case S_PIO: {
		const struct pio_port *p = &pio_ports[st->a];

		d = &s->ev[EV_PIO];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->b);
		rec_u(&s->rec, &d->f[1], p->port);
		rec_u(&s->rec, &d->f[2], p->size);
		rec_u(&s->rec, &d->f[3], 1);
		rec_u(&s->rec, &d->f[4], st->c);
		if (emit(s, cpu, now, EV_PIO))
			th->pio[st->a][st->b]++;
		break;
	}
	case S_MMIO:
		d = &s->ev[EV_MMIO];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->a);
		rec_u(&s->rec, &d->f[1], mmio_devs[st->b].len);
		rec_u(&s->rec, &d->f[2], mmio_devs[st->b].gpa);
		rec_u(&s->rec, &d->f[3], st->c);
		if (emit(s, cpu, now, EV_MMIO))
			th->mmio[st->a][st->b]++;
		break;
	case S_MSR:
		d = &s->ev[EV_MSR];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->b);
		rec_u(&s->rec, &d->f[1], msr_idx[st->a]);
		rec_u(&s->rec, &d->f[2], st->c);
		if (emit(s, cpu, now, EV_MSR))
			th->msr[st->a][st->b]++;
		break;
	case S_PF:
		d = &s->ev[EV_PF];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], (uint64_t)th->vid);
		rec_u(&s->rec, &d->f[1], th->rip);
		rec_u(&s->rec, &d->f[2], st->c);
		rec_u(&s->rec, &d->f[3], st->d);
		emit(s, cpu, now, EV_PF);
		break;
	case S_USER_EXIT:
		d = &s->ev[EV_USER_EXIT];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->a);
		if (emit(s, cpu, now, EV_USER_EXIT))
			th->uexit[st->a == KVM_EXIT_MMIO]++;
		break;
	case S_INJ:
		d = &s->ev[EV_INJ_VIRQ];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->a);
		emit(s, cpu, now, EV_INJ_VIRQ);
		break;
	case S_VWAKE:
		d = &s->ev[EV_VCPU_WAKEUP];
		rec_begin(&s->rec, d, th->tid);
		rec_u(&s->rec, &d->f[0], st->c);
		rec_u(&s->rec, &d->f[1], st->a);
		rec_u(&s->rec, &d->f[2], 1);
		emit(s, cpu, now, EV_VCPU_WAKEUP);
		break;
	case S_BLOCK:
		cancel_action(s, t);
		th->block_ts = now;
		if (th->final) {
			th->state = T_DONE;
			if (++s->done == s->nvcpus) {
				/* The host goes on for a second, idle: NOHZ gaps, time extends. */
				s->finished = true;
				s->end_ts = now + 1000 * NS_PER_MS;
			}
		} else {
			th->state = T_BLOCKED;
			set_action(s, t, now + rng_log(&s->rng, 200 * NS_PER_US, 8 * NS_PER_MS));
		}
		cpu_switch(s, cpu, now, t, BLOCK_STATE);
		return;
	case S_ENTRY:
		do_entry(s, t, now);
		return;
	}
	if (th->istep < th->nsteps)
		set_action(s, t, th->steps[th->istep].at);
}

static void thread_action(struct sim *s, int t, uint64_t now)
{
	struct thread *th = &s->th[t];

	switch (th->state) {
	case T_GUEST:
		do_exit(s, t, now);
		break;
	case T_HYP:
		do_step(s, t, now);
		break;
	case T_BLOCKED:
		/* the halt timer fires on the CPU where the vCPU went to sleep */
		th->act_time = UINT64_MAX;
		host_work(s, th->cpu, now, t);
		break;
	case T_HOST_RUN:
		th->state = T_HOST_SLEEP;
		th->act_time = UINT64_MAX;
		cpu_switch(s, th->cpu, now, t, IDLE_STATE);
		break;
	default:
		break;
	}
}

static void cpu_timer(struct sim *s, int cpu, uint64_t now)
{
	struct cpu *c = &s->cpu[cpu];
	struct thread *kw = &s->th[c->kworker];
	bool idle = c->cur == IDLE && c->rq_head < 0;
	uint64_t next;

	if (s->finished && now > s->end_ts)
		return;
	if (kw->state == T_HOST_SLEEP && !kw->irq_queued && c->cur != c->kworker)
		host_work(s, cpu, now, c->kworker);
	/* A busy CPU has host work every few hundred microseconds to milliseconds; an idle one
	 * (NOHZ) can stay quiet for longer than a 27-bit delta (134 ms): time extends. */
	if (idle)
		next = rng_log(&s->rng, NS_PER_MS, 300 * NS_PER_MS);
	else
		next = rng_log(&s->rng, 200 * NS_PER_US, 4 * NS_PER_MS);
	c->timer_time = now + next;
	heap_push(s, c->timer_time, ++c->timer_seq, ent_timer(s, cpu));
}

static void cpu_resched(struct sim *s, int cpu, uint64_t now)
{
	struct cpu *c = &s->cpu[cpu];

	c->resched_armed = false;
	if (c->cur == IDLE && c->rq_head >= 0)
		cpu_switch(s, cpu, now, IDLE, 0);
}

/* ---- set-up ---- */

static int sim_init(struct sim *s, struct opts *o)
{
	unsigned t = 0;

	s->o = o;
	rng_seed(&s->rng, o->seed);
	s->reasons = o->svm ? svm_reasons : vmx_reasons;
	s->nreasons = o->svm ? ARRAY_SIZE(svm_reasons) : ARRAY_SIZE(vmx_reasons);
	for (unsigned i = 0; i < s->nreasons; i++)
		s->weight_sum += s->reasons[i].weight;
	s->isa = o->svm ? 2 : 1;
	s->nvcpus = o->vms * o->vcpus;
	s->nth = s->nvcpus + o->cpus;
	s->th = calloc(s->nth, sizeof(*s->th));
	s->cpu = calloc(o->cpus, sizeof(*s->cpu));
	if (!s->th || !s->cpu)
		return -ENOMEM;
	for (unsigned c = 0; c < o->cpus; c++) {
		s->cpu[c] = (struct cpu){ .cur = IDLE,
					  .rq_head = -1,
					  .rq_tail = -1,
					  .irq_head = -1,
					  .irq_tail = -1,
					  .sim = s };
		if (vms_page_writer_new(4096, emit_page, &s->cpu[c], &s->cpu[c].pw))
			return -ENOMEM;
	}
	for (unsigned v = 0; v < o->vms; v++) {
		for (unsigned i = 0; i < o->vcpus; i++, t++) {
			struct thread *th = &s->th[t];

			th->vcpu = true;
			th->vm = (int)v;
			th->vid = (int)i;
			th->pid = 10000 + 1000 * (int32_t)v;
			th->tid = th->pid + 1 + (int32_t)i;
			snprintf(th->comm, sizeof(th->comm), "CPU %hu/KVM", (unsigned short)i);
		}
	}
	for (unsigned c = 0; c < o->cpus; c++, t++) {
		struct thread *th = &s->th[t];

		th->pid = th->tid = 100 + (int32_t)c;
		snprintf(th->comm, sizeof(th->comm), "kworker/%hu:1", (unsigned short)c);
		th->cpu = (int)c;
		th->state = T_HOST_SLEEP;
		s->cpu[c].kworker = (int)t;
	}
	for (t = 0; t < s->nth; t++) {
		s->th[t].pending = -1;
		s->th[t].rq_next = s->th[t].irq_next = -1;
		s->th[t].act_time = UINT64_MAX;
	}

	/* vCPUs round-robin over the CPUs: the first on each CPU runs the guest, the others
	 * wait on its run queue (their first event will be a kvm_entry). */
	for (t = 0; t < s->nvcpus; t++) {
		int cpu = (int)(t % o->cpus);
		struct thread *th = &s->th[t];

		th->cpu = cpu;
		if (s->cpu[cpu].cur == IDLE) {
			s->cpu[cpu].cur = (int)t;
			th->state = T_GUEST;
			th->switched_in = START_TS;
			set_action(s, (int)t, START_TS + rng_log(&s->rng, 300, 400 * NS_PER_US));
		} else {
			th->resume = R_ENTRY;
			rq_push(s, cpu, (int)t);
		}
	}
	for (unsigned c = 0; c < o->cpus; c++) {
		s->cpu[c].timer_time = START_TS + rng_log(&s->rng, 50 * NS_PER_US, 2 * NS_PER_MS);
		heap_push(s, s->cpu[c].timer_time, ++s->cpu[c].timer_seq, ent_timer(s, (int)c));
	}

	/* Lost windows: round-robin over the CPUs that start with a vCPU, spread over the
	 * first half of a conservative estimate of each CPU's events. */
	if (o->lost) {
		unsigned busy = o->cpus < s->nvcpus ? o->cpus : s->nvcpus;
		uint64_t per_cpu;

		if (o->events_total)
			per_cpu = o->events_total / o->cpus;
		else
			per_cpu = o->exits * 2 * (s->nvcpus / busy);
		for (unsigned k = 0; k < o->lost; k++) {
			struct cpu *c = &s->cpu[k % busy];
			uint64_t *p = realloc(c->win_at, (c->nwin + 1) * sizeof(*p));

			if (!p)
				return -ENOMEM;
			c->win_at = p;
			c->nwin++;
		}
		for (unsigned c = 0; c < busy; c++)
			for (unsigned j = 0; j < s->cpu[c].nwin; j++)
				s->cpu[c].win_at[j] =
					20 + per_cpu * (j + 1) / (2 * (s->cpu[c].nwin + 1));
	}
	return 0;
}

static int run(struct sim *s)
{
	while (s->nheap && !s->err) {
		struct hent h = heap_pop(s);

		if (h.ent < s->nth) {
			if (h.seq != s->th[h.ent].act_seq)
				continue; /* superseded */
			thread_action(s, (int)h.ent, h.time);
		} else if (h.ent < s->nth + s->o->cpus) {
			int c = (int)(h.ent - s->nth);

			if (h.seq == s->cpu[c].timer_seq)
				cpu_timer(s, c, h.time);
		} else {
			int c = (int)(h.ent - s->nth - s->o->cpus);

			if (h.seq == s->cpu[c].resched_seq)
				cpu_resched(s, c, h.time);
		}
		if (s->o->events_total && s->generated >= s->o->events_total)
			s->draining = true;
	}
	for (unsigned c = 0; c < s->o->cpus && !s->err; c++) {
		struct cpu *cp = &s->cpu[c];
		int ret;

		if (cp->dropping)
			end_window(s, cp);
		ret = vms_page_writer_flush(cp->pw);
		if (ret < 0)
			s->err = ret;
	}
	return s->err;
}

/* ---- output ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned p)
{
	size_t rank = (p * n + 99) / 100;

	return v[rank ? rank - 1 : 0];
}

static const char *ev_name(int e)
{
	return ev_spec[e].name;
}

static int write_truth(struct sim *s, const char *path)
{
	struct opts *o = s->o;
	struct vms_json j;
	FILE *f = fopen(path, "we");
	uint64_t lost_total = 0;
	int ret;

	if (!f)
		return -errno;
	vms_json_init(&j, f, true);
	vms_json_object_begin(&j, NULL);

	vms_json_object_begin(&j, "scenario");
	vms_json_string(&j, "vendor", o->svm ? "svm" : "vmx");
	vms_json_u64(&j, "vms", o->vms);
	vms_json_u64(&j, "vcpus", o->vcpus);
	vms_json_u64(&j, "cpus", o->cpus);
	vms_json_u64(&j, "exits", o->exits);
	vms_json_u64(&j, "events_total", o->events_total);
	vms_json_u64(&j, "seed", o->seed);
	vms_json_u64(&j, "lost", o->lost);
	vms_json_u64(&j, "dat_version", (uint64_t)o->dat_version);
	vms_json_string(&j, "compression", o->compression);
	vms_json_u64(&j, "page_size", 4096);
	vms_json_bool(&j, "percentiles", o->percentiles);
	vms_json_object_end(&j);

	vms_json_string(&j, "vendor", o->svm ? "svm" : "vmx");
	vms_json_u64(&j, "isa", s->isa);
	vms_json_u64(&j, "cpus", o->cpus);
	vms_json_string(&j, "exit_pairing",
			"next kvm_entry of the same thread in the file, from the thread's first "
			"kvm_entry on");

	vms_json_array_begin(&j, "vms");
	for (unsigned v = 0; v < o->vms; v++) {
		char name[32];

		snprintf(name, sizeof(name), "vm%u", v);
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "pid", s->th[v * o->vcpus].pid);
		vms_json_string(&j, "name", name);
		vms_json_array_begin(&j, "vcpus");
		for (unsigned i = 0; i < o->vcpus; i++) {
			vms_json_object_begin(&j, NULL);
			vms_json_u64(&j, "vcpu", i);
			vms_json_i64(&j, "tid", s->th[v * o->vcpus + i].tid);
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_object_begin(&j, "events");
	for (int e = 0; e < EV_N; e++)
		vms_json_u64(&j, ev_name(e), s->events[e]);
	vms_json_object_end(&j);
	vms_json_u64(&j, "events_written", s->generated - s->dropped);

	vms_json_array_begin(&j, "per_cpu");
	for (unsigned c = 0; c < o->cpus; c++) {
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "cpu", c);
		vms_json_u64(&j, "events", s->cpu[c].written);
		vms_json_u64(&j, "lost", s->cpu[c].lost_total);
		vms_json_u64(&j, "pages", vms_page_writer_pages(s->cpu[c].pw));
		vms_json_u64(&j, "first_ts", s->cpu[c].first_ts);
		vms_json_u64(&j, "last_ts", s->cpu[c].last_ts);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "lost");
	for (size_t i = 0; i < s->nwins; i++) {
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "cpu", (uint64_t)s->wins[i].cpu);
		vms_json_u64(&j, "events", s->wins[i].events);
		vms_json_u64(&j, "from_ts", s->wins[i].from);
		vms_json_u64(&j, "to_ts", s->wins[i].to);
		vms_json_object_end(&j);
		lost_total += s->wins[i].events;
	}
	vms_json_array_end(&j);
	vms_json_u64(&j, "lost_total", lost_total);

	vms_json_array_begin(&j, "exits");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			struct xstat *x = &th->xs[r];

			if (!x->count)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "pid", th->pid);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "vcpu", (uint64_t)th->vid);
			vms_json_u64(&j, "isa", s->isa);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_string(&j, "name", s->reasons[r].name);
			vms_json_u64(&j, "count", x->count);
			vms_json_u64(&j, "total_ns", x->total);
			vms_json_u64(&j, "min_ns", x->min);
			vms_json_u64(&j, "max_ns", x->max);
			if (o->percentiles && x->ns == x->count) {
				qsort(x->samples, x->ns, sizeof(*x->samples), cmp_u64);
				vms_json_u64(&j, "p50_ns", percentile(x->samples, x->ns, 50));
				vms_json_u64(&j, "p95_ns", percentile(x->samples, x->ns, 95));
				vms_json_u64(&j, "p99_ns", percentile(x->samples, x->ns, 99));
			}
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "unfinished");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			uint64_t n = th->xs[r].unfinished + (th->pending == (int)r);

			if (!n)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "pid", th->pid);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "vcpu", (uint64_t)th->vid);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_string(&j, "name", s->reasons[r].name);
			vms_json_u64(&j, "count", n);
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "before_first_entry");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			if (!th->xs[r].before)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_u64(&j, "count", th->xs[r].before);
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "orphan_entries");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		if (!s->th[t].orphans)
			continue;
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "tid", s->th[t].tid);
		vms_json_u64(&j, "count", s->th[t].orphans);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "mmio");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned ty = 0; ty < 3; ty++)
			for (unsigned d = 0; d < ARRAY_SIZE(mmio_devs); d++) {
				if (!s->th[t].mmio[ty][d])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_string(&j, "type", mmio_type_name[ty]);
				vms_json_u64(&j, "gpa", mmio_devs[d].gpa);
				vms_json_u64(&j, "count", s->th[t].mmio[ty][d]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "pio");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned p = 0; p < ARRAY_SIZE(pio_ports); p++)
			for (unsigned rw = 0; rw < 2; rw++) {
				if (!s->th[t].pio[p][rw])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_u64(&j, "port", pio_ports[p].port);
				vms_json_string(&j, "rw", rw ? "write" : "read");
				vms_json_u64(&j, "count", s->th[t].pio[p][rw]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "msr");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned m = 0; m < ARRAY_SIZE(msr_idx); m++)
			for (unsigned rw = 0; rw < 2; rw++) {
				if (!s->th[t].msr[m][rw])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_u64(&j, "index", msr_idx[m]);
				vms_json_string(&j, "rw", rw ? "write" : "read");
				vms_json_u64(&j, "count", s->th[t].msr[m][rw]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "userspace_exits");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned k = 0; k < 2; k++) {
			if (!s->th[t].uexit[k])
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "tid", s->th[t].tid);
			vms_json_u64(&j, "reason", k ? KVM_EXIT_MMIO : KVM_EXIT_IO);
			vms_json_u64(&j, "count", s->th[t].uexit[k]);
			vms_json_object_end(&j);
		}
	vms_json_array_end(&j);

	vms_json_object_end(&j);
	ret = vms_json_finish(&j);
	if (fclose(f) && !ret)
		ret = -EIO;
	return ret;
}

/* Options of the file that the trace cannot tell: GUEST per VM, vmscope's meta, stats. */
static int write_file_info(struct sim *s)
{
	struct opts *o = s->o;
	char *cmdlines = NULL, buf[512];
	size_t len = 0;
	FILE *m = open_memstream(&cmdlines, &len);
	int ret = 0;

	if (!m)
		return -ENOMEM;
	for (unsigned v = 0; v < o->vms; v++) {
		int32_t *tids = calloc(o->vcpus, sizeof(*tids));
		char name[32];

		if (!tids) {
			fclose(m);
			free(cmdlines);
			return -ENOMEM;
		}
		fprintf(m, "%d qemu-system-x86\n", s->th[v * o->vcpus].pid);
		for (unsigned i = 0; i < o->vcpus; i++) {
			tids[i] = s->th[v * o->vcpus + i].tid;
			fprintf(m, "%d %s\n", tids[i], s->th[v * o->vcpus + i].comm);
		}
		snprintf(name, sizeof(name), "vm%u", v);
		if (!ret)
			ret = vms_dat_writer_add_guest(s->w, name, 0x1000 + v, o->vcpus, tids);
		free(tids);
	}
	for (unsigned c = 0; c < o->cpus; c++)
		fprintf(m, "%d %s\n", s->th[s->cpu[c].kworker].tid, s->th[s->cpu[c].kworker].comm);
	if (fclose(m)) {
		free(cmdlines);
		return -ENOMEM;
	}
	if (!ret)
		ret = vms_dat_writer_set_cmdlines(s->w, cmdlines);
	free(cmdlines);
	snprintf(buf, sizeof(buf), "vendor=%s\nkvm=%s\ngenerator=gentrace\nseed=%" PRIu64 "\n",
		 o->svm ? "AuthenticAMD" : "GenuineIntel", o->svm ? "svm" : "vmx", o->seed);
	if (!ret)
		ret = vms_dat_writer_set_meta(s->w, buf);
	for (unsigned c = 0; c < o->cpus && !ret; c++) {
		struct cpu *cp = &s->cpu[c];

		snprintf(buf, sizeof(buf),
			 "CPU: %u\nentries: 0\noverrun: %" PRIu64 "\ncommit overrun: 0\n"
			 "bytes: 0\noldest event ts: %" PRIu64 ".%06" PRIu64 "\n"
			 "now ts: %" PRIu64 ".%06" PRIu64 "\ndropped events: 0\n"
			 "read events: %" PRIu64 "\n",
			 c, cp->lost_total, cp->first_ts / 1000000000,
			 cp->first_ts / 1000 % 1000000, cp->last_ts / 1000000000,
			 cp->last_ts / 1000 % 1000000, cp->written);
		ret = vms_dat_writer_add_cpustat(s->w, c, buf);
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gentrace -o OUT.dat [--truth OUT.json] [options]\n"
		"  --formats DIR          kernel format files (default %s)\n"
		"  --vendor vmx|svm       exit reasons of Intel VMX or AMD SVM (vmx)\n"
		"  --vms N                VMs (1)\n"
		"  --vcpus N              vCPUs per VM (2)\n"
		"  --cpus N               host CPUs (2)\n"
		"  --exits N              exits per vCPU, the last one unfinished (1000)\n"
		"  --events-total N       instead of --exits: stop after about N events\n"
		"  --seed N               random seed (1)\n"
		"  --lost N               lost-events windows of a page each (0)\n"
		"  --dat-version 6|7      file version (6)\n"
		"  --compression none|zstd|zlib   v7 compression (none)\n"
		"  --compression-level N  zstd 1-22, zlib 1-9 (the writer's default)\n"
		"  --no-percentiles       keep counters only (bounded memory for big files)\n"
		"  --quiet                no summary on stderr\n",
		GENTRACE_FORMATS_DIR);
}

static int parse_u64(const char *s, uint64_t *v, uint64_t lo, uint64_t hi)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end || *v < lo || *v > hi || *s == '-' ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "formats", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "truth", required_argument, NULL, 't' },
		{ "vendor", required_argument, NULL, 'V' },
		{ "vms", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "exits", required_argument, NULL, 'x' },
		{ "events-total", required_argument, NULL, 'E' },
		{ "seed", required_argument, NULL, 's' },
		{ "lost", required_argument, NULL, 'l' },
		{ "dat-version", required_argument, NULL, 'D' },
		{ "compression", required_argument, NULL, 'C' },
		{ "compression-level", required_argument, NULL, 'L' },
		{ "no-percentiles", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int c, idx = 0;

	*o = (struct opts){ .formats = GENTRACE_FORMATS_DIR,
			    .compression = "none",
			    .vms = 1,
			    .vcpus = 2,
			    .cpus = 2,
			    .exits = 1000,
			    .seed = 1,
			    .dat_version = 6,
			    .percentiles = true };
	while ((c = getopt_long(argc, argv, "o:qh", lo, &idx)) != -1) {
		switch (c) {
		case 'F':
			o->formats = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 't':
			o->truth = optarg;
			break;
		case 'V':
			if (strcmp(optarg, "vmx") && strcmp(optarg, "svm"))
				goto bad;
			o->svm = !strcmp(optarg, "svm");
			break;
		case 'm':
			if (parse_u64(optarg, &v, 1, 64))
				goto bad;
			o->vms = (unsigned)v;
			break;
		case 'v':
			if (parse_u64(optarg, &v, 1, 256))
				goto bad;
			o->vcpus = (unsigned)v;
			break;
		case 'c':
			if (parse_u64(optarg, &v, 1, 1024))
				goto bad;
			o->cpus = (unsigned)v;
			break;
		case 'x':
			if (parse_u64(optarg, &o->exits, 1, UINT64_MAX / 4))
				goto bad;
			break;
		case 'E':
			if (parse_u64(optarg, &o->events_total, 1, UINT64_MAX / 4))
				goto bad;
			break;
		case 's':
			if (parse_u64(optarg, &o->seed, 0, UINT64_MAX))
				goto bad;
			break;
		case 'l':
			if (parse_u64(optarg, &v, 0, 10000))
				goto bad;
			o->lost = (unsigned)v;
			break;
		case 'D':
			if (parse_u64(optarg, &v, 6, 7))
				goto bad;
			o->dat_version = (int)v;
			break;
		case 'C':
			if (strcmp(optarg, "none") && strcmp(optarg, "zstd") &&
			    strcmp(optarg, "zlib"))
				goto bad;
			o->compression = optarg;
			break;
		case 'L':
			if (parse_u64(optarg, &v, 1, 22))
				goto bad;
			o->level = (int)v;
			break;
		case 'P':
			o->percentiles = false;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !o->output) {
		usage(stderr);
		return -1;
	}
	if (o->events_total)
		o->exits = 0;
	if (strcmp(o->compression, "none") && o->dat_version != 7) {
		fprintf(stderr, "gentrace: --compression needs --dat-version 7\n");
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "gentrace: bad value for --%s: '%s'\n", lo[idx].name, optarg);
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	struct vms_dat_writer_opts wo = { .sz = sizeof(wo) };
	struct sim *s = calloc(1, sizeof(*s));
	struct tep_handle *tep = NULL;
	char path[PATH_MAX], *hp = NULL, *he = NULL;
	struct timespec t0, t1;
	struct opts o;
	size_t len;
	int ret = 1;

	if (!s || parse_opts(argc, argv, &o))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(path, sizeof(path), "%s/header_page", o.formats);
	hp = tools_read_file(path, &len);
	snprintf(path, sizeof(path), "%s/header_event", o.formats);
	he = tools_read_file(path, &len);
	if (!hp || !he) {
		fprintf(stderr, "gentrace: %s: no header_page / header_event\n", o.formats);
		goto out;
	}
	wo.version = o.dat_version;
	wo.compression = o.compression;
	wo.compression_level = o.level;
	wo.ncpus = o.cpus;
	wo.header_page = hp;
	wo.header_event = he;
	wo.uname = "Linux gentrace 6.18.44 x86_64";
	wo.trace_id = 0x1000000 + o.seed;
	ret = vms_dat_writer_open(o.output, &wo, &s->w);
	if (ret) {
		fprintf(stderr, "gentrace: %s: %s\n", o.output, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	ret = 1;
	tep = tep_alloc();
	if (!tep)
		goto out;
	tep_set_long_size(tep, 8);
	if (load_formats(o.formats, tep, s->w) || describe_events(tep, s->ev))
		goto out;
	if (sim_init(s, &o) || run(s)) {
		fprintf(stderr, "gentrace: %s\n", vms_strerror(s->err ? s->err : -ENOMEM));
		goto out;
	}
	if (write_file_info(s))
		goto out;
	ret = vms_dat_writer_close(s->w);
	s->w = NULL;
	if (ret) {
		fprintf(stderr, "gentrace: writing %s: %s\n", o.output, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	if (o.truth && (ret = write_truth(s, o.truth))) {
		fprintf(stderr, "gentrace: writing %s: %s\n", o.truth, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	if (o.lost && s->nwins < o.lost)
		fprintf(stderr, "gentrace: warning: only %zu of %u lost windows fit the trace\n",
			s->nwins, o.lost);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!o.quiet)
		fprintf(stderr,
			"gentrace: %" PRIu64 " events written, %" PRIu64 " dropped, %.2f s\n",
			s->generated - s->dropped, s->dropped,
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	ret = 0;
out:
	if (s) {
		vms_dat_writer_discard(s->w);
		for (unsigned c = 0; s->cpu && c < s->o->cpus; c++) {
			vms_page_writer_free(s->cpu[c].pw);
			free(s->cpu[c].win_at);
		}
		for (unsigned t = 0; s->th && t < s->nth; t++)
			for (unsigned r = 0; r < MAX_REASONS; r++)
				free(s->th[t].xs[r].samples);
		free(s->th);
		free(s->cpu);
		free(s->heap);
		free(s->wins);
		free(s);
	}
	tep_free(tep);
	free(hp);
	free(he);
	return ret;
}
