// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The vCPU state model (see vmscope/vcpu.h for the states and the inference rules).
 *
 * Threads are kept in an open-addressing table by pid, the tasks that are not vCPU threads
 * too (so that a host-wide sched_switch costs one lookup, not a name comparison). A task is
 * a vCPU thread when the trace's VM map says so, when its name is QEMU's "CPU n/KVM", or
 * from its first kvm event that only a vCPU thread emits. Each vCPU thread has one current
 * state since a time; a change closes a slice, which is added to the thread's totals
 * (clipped to the window) and handed to the listeners. A sleep whose kind (idle or blocked)
 * only a later event tells is held, with the waiting that follows it, until that event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/arch-x86.h"
#include "vmscope/vcpu.h"
#include "vmscope/vmmap.h"

#define SLEEPING VMS_VCPU_NSTATES /* internal: switched out blocked, kind not known yet */

enum kind { FREE, VCPU, OTHER };

struct th {
	int pid;
	enum kind kind;
	unsigned int idx; /* VCPU: its index in ->threads */
};

/* The state machine of one vCPU thread. */
struct vst {
	unsigned int st; /* enum vms_vcpu_state, or SLEEPING */
	uint64_t since;
	int cpu;		     /* where it runs, or last ran / was woken to */
	int run_cpu;		     /* the CPU of its last on-CPU period (migrations) */
	int by;			     /* preempted: by whom */
	uint64_t run_start, run_end; /* its last time on a CPU (run_cpu) */
	char by_comm[16];
	uint32_t reason;
	bool on_cpu, in_vmm, halted, seen;
	/* a sleep (and the waiting after it) whose kind is not known yet */
	bool held;
	uint64_t sleep_start, sleep_end, wait_end;
	bool wait_closed; /* the held waiting ended (switch in) at wait_end */
	int sleep_cpu, wait_cpu;
};

struct listener {
	vms_vcpu_slice_fn fn;
	void *ctx;
};

struct vcpu {
	struct vms_vcpu_opts opts;
	struct vms_trace *trace;
	struct vms_vmmap *map;
	unsigned int ncpu; /* host CPUs of the trace */
	/* events */
	int id_entry, id_exit, id_ue, id_wakeup_kvm, id_switch, id_wakeup, id_migrate;
	struct vms_field exit_reason, exit_isa, ue_reason, sw_prev_pid, sw_prev_state, sw_next_pid,
		sw_prev_comm, sw_next_comm, wk_pid, wk_comm, wk_target, mg_pid, mg_dest;
	enum vms_x86_isa isa; /* the host's, for exits without an isa field */
	/* tasks */
	struct th *tab;
	size_t tab_cap, tab_n;
	struct vms_vcpu_thread *threads;
	struct vst *vst;
	size_t nthreads, threads_cap;
	struct listener *ls;
	size_t nls;
	struct vms_vcpu_summary sum;
	int last_pid[256]; /* per CPU: the vCPU thread of its last kvm record */
	unsigned int last_idx[256];
	uint64_t origin; /* the first record's time */
	bool started;
	uint64_t entries, exits;
	int err;
};

static const char *const state_names[] = {
	[VMS_VCPU_GUEST] = "guest",
	[VMS_VCPU_HYPERVISOR] = "hypervisor",
	[VMS_VCPU_VMM] = "vmm",
	[VMS_VCPU_RUNNING] = "running",
	[VMS_VCPU_PREEMPTED] = "preempted",
	[VMS_VCPU_WAITING] = "waiting",
	[VMS_VCPU_IDLE] = "idle",
	[VMS_VCPU_BLOCKED] = "blocked",
	[VMS_VCPU_UNKNOWN] = "unknown",
};

const char *vms_vcpu_state_name(enum vms_vcpu_state s)
{
	return (unsigned int)s < VMS_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

/* ---- the task table ---- */

static size_t hash_pid(int pid)
{
	uint64_t x = (uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x >> 32);
}

static struct th *tab_find(struct vcpu *v, int pid)
{
	if (!v->tab_cap)
		return NULL;
	for (size_t i = hash_pid(pid) & (v->tab_cap - 1);; i = (i + 1) & (v->tab_cap - 1)) {
		if (v->tab[i].kind == FREE)
			return NULL;
		if (v->tab[i].pid == pid)
			return &v->tab[i];
	}
}

static struct th *tab_add(struct vcpu *v, int pid, enum kind kind)
{
	if ((v->tab_n + 1) * 2 > v->tab_cap) {
		size_t ncap = v->tab_cap ? 2 * v->tab_cap : 256;
		struct th *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return NULL;
		for (size_t i = 0; i < v->tab_cap; i++) {
			size_t j;

			if (v->tab[i].kind == FREE)
				continue;
			for (j = hash_pid(v->tab[i].pid) & (ncap - 1); nt[j].kind != FREE;
			     j = (j + 1) & (ncap - 1))
				;
			nt[j] = v->tab[i];
		}
		free(v->tab);
		v->tab = nt;
		v->tab_cap = ncap;
	}
	for (size_t i = hash_pid(pid) & (v->tab_cap - 1);; i = (i + 1) & (v->tab_cap - 1)) {
		if (v->tab[i].kind == FREE) {
			v->tab[i] = (struct th){ pid, kind, 0 };
			v->tab_n++;
			return &v->tab[i];
		}
	}
}

/* "CPU 3/KVM": QEMU's name of vCPU 3's thread. Returns the index or -1. */
static int qemu_vcpu_index(const char *comm, size_t len)
{
	char buf[32], tail[8];
	unsigned int idx;

	if (!comm || !len)
		return -1;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, comm, len);
	buf[len] = '\0';
	if (sscanf(buf, "CPU %u/%7s", &idx, tail) == 2 && !strcmp(tail, "KVM"))
		return (int)idx;
	return -1;
}

/* Make @t a vCPU thread. */
static int make_vcpu(struct vcpu *v, struct th *t, int vcpu)
{
	struct vms_vcpu_thread *th;

	if (v->nthreads == v->threads_cap) {
		size_t ncap = v->threads_cap ? 2 * v->threads_cap : 16;
		struct vms_vcpu_thread *nt = realloc(v->threads, ncap * sizeof(*nt));
		struct vst *ns;

		if (!nt)
			return -ENOMEM;
		v->threads = nt;
		ns = realloc(v->vst, ncap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		v->vst = ns;
		v->threads_cap = ncap;
	}
	th = &v->threads[v->nthreads];
	memset(th, 0, sizeof(*th));
	th->tid = t->pid;
	th->vm = v->map ? vms_vmmap_vm_of_tid(v->map, t->pid) : -1;
	th->vcpu = v->map ? vms_vmmap_vcpu_of_tid(v->map, t->pid) : -1;
	if (th->vcpu < 0)
		th->vcpu = vcpu;
	th->ncpu = v->ncpu;
	th->cpu_ns = calloc(v->ncpu ? v->ncpu : 1, sizeof(*th->cpu_ns)); /* ncpu x states */
	if (!th->cpu_ns)
		return -ENOMEM;
	memset(&v->vst[v->nthreads], 0, sizeof(v->vst[0]));
	v->vst[v->nthreads].cpu = -1;
	v->vst[v->nthreads].run_cpu = -1;
	v->vst[v->nthreads].by = -1;
	v->vst[v->nthreads].st = VMS_VCPU_UNKNOWN;
	t->kind = VCPU;
	t->idx = (unsigned int)v->nthreads++;
	return 0;
}

/*
 * The vCPU thread of @pid, or NULL when it is not one. @comm (may be NULL) is its name as
 * the record gives it; @kvm: the record is a kvm event of the thread's own (it is one).
 */
static unsigned int lookup(struct vcpu *v, int pid, const char *comm, size_t comm_len, bool kvm,
			   bool *found)
{
	struct th *t;
	int idx;

	*found = false;
	if (pid <= 0)
		return 0;
	t = tab_find(v, pid);
	if (t && (t->kind == VCPU || !kvm)) {
		*found = t->kind == VCPU;
		return t->idx;
	}
	if (!t) {
		bool in_map = v->map && vms_vmmap_vm_of_tid(v->map, pid) >= 0;

		idx = qemu_vcpu_index(comm, comm_len);
		if (idx < 0 && !comm) {
			const char *c = vms_trace_comm(v->trace, pid);

			idx = qemu_vcpu_index(c, c ? strlen(c) : 0);
		}
		t = tab_add(v, pid, OTHER);
		if (!t) {
			v->err = -ENOMEM;
			return 0;
		}
		if (!in_map && idx < 0 && !kvm)
			return 0;
	} else {
		idx = -1;
	}
	if (make_vcpu(v, t, idx)) {
		v->err = -ENOMEM;
		return 0;
	}
	*found = true;
	return t->idx;
}

/* The bytes of array field @f of @rec (a comm), or NULL when the record is too short. */
static const char *field_bytes(const struct vms_field *f, const struct vms_record *rec)
{
	if (!f->valid || (uint64_t)f->offset + f->size > rec->size)
		return NULL;
	return (const char *)rec->data + f->offset;
}

/* ---- slices ---- */

/* Count a preemption of thread @i by @by lasting @ns. */
static void preempted_by(struct vcpu *v, unsigned int i, int by, uint64_t ns)
{
	struct vms_vcpu_thread *th = &v->threads[i];
	size_t k;

	for (k = 0; k < th->nby && th->by[k].pid != by; k++)
		;
	if (k == th->nby) {
		struct vms_vcpu_preemptor *nb = realloc(th->by, (th->nby + 1) * sizeof(*nb));

		if (!nb) {
			v->err = -ENOMEM;
			return;
		}
		th->by = nb;
		memset(&th->by[th->nby], 0, sizeof(th->by[0]));
		th->by[th->nby].pid = by;
		memcpy(th->by[th->nby].comm, v->vst[i].by_comm, sizeof(th->by[0].comm) - 1);
		th->nby++;
	}
	th->by[k].count++;
	th->by[k].ns += ns;
	if (vms_hist_add(&th->preempt_lat, ns))
		v->err = -ENOMEM;
}

/* A slice of thread @i ends: clip it to the window, count it, hand it to the listeners. */
static void emit(struct vcpu *v, unsigned int i, unsigned int st, uint64_t start, uint64_t end,
		 int cpu, int by, uint32_t reason)
{
	struct vms_vcpu_thread *th = &v->threads[i];
	struct vms_vcpu_slice s = { th->tid, cpu, (enum vms_vcpu_state)st, start, end, by, reason };

	if (v->opts.to && s.end > v->opts.to)
		s.end = v->opts.to;
	if (s.start < v->opts.from)
		s.start = v->opts.from;
	if (s.end <= s.start)
		return; /* empty, or outside the window */
	th->ns[st] += s.end - s.start;
	if (vms_vcpu_state_on_cpu(s.state) && cpu >= 0 && (unsigned int)cpu < th->ncpu)
		th->cpu_ns[cpu][st] += s.end - s.start;
	if (st == VMS_VCPU_PREEMPTED && by > 0)
		preempted_by(v, i, by, s.end - s.start);
	for (size_t k = 0; k < v->nls; k++)
		v->ls[k].fn(v->ls[k].ctx, &s);
}

/* Close the current state at @ts and enter @st. */
static void set_state(struct vcpu *v, unsigned int i, unsigned int st, uint64_t ts)
{
	struct vst *s = &v->vst[i];

	if (ts < s->since)
		ts = s->since; /* never backwards (clocks of different CPUs) */
	if (s->st != SLEEPING)
		emit(v, i, s->st, s->since, ts, s->cpu, s->by, s->reason);
	s->st = st;
	s->since = ts;
	s->by = -1;
	s->reason = 0;
}

/* The held sleep turned out to be @kind (idle or blocked): hand it out, with its waiting. */
static void settle(struct vcpu *v, unsigned int i, unsigned int kind)
{
	struct vst *s = &v->vst[i];

	if (!s->held)
		return;
	s->held = false;
	emit(v, i, kind, s->sleep_start, s->sleep_end, s->sleep_cpu, -1, 0);
	if (s->wait_closed)
		emit(v, i, VMS_VCPU_WAITING, s->sleep_end, s->wait_end, s->wait_cpu, -1, 0);
}

/* A sleep ends at @ts; its kind comes with a later event (settle()). */
static void hold_sleep(struct vst *s, uint64_t ts)
{
	s->held = true;
	s->sleep_end = ts < s->since ? s->since : ts;
	s->wait_closed = false;
}

/* A held sleep whose kind no event will tell: the kind of most of its thread's sleeps. */
static void settle_guess(struct vcpu *v, unsigned int i)
{
	const struct vms_vcpu_thread *th = &v->threads[i];

	settle(v, i,
	       th->ns[VMS_VCPU_BLOCKED] > th->ns[VMS_VCPU_IDLE] ? VMS_VCPU_BLOCKED : VMS_VCPU_IDLE);
}

/* The state a thread is in when it gets a CPU. */
static unsigned int running_state(const struct vms_vcpu_thread *th, const struct vst *s)
{
	if (!th->split)
		return VMS_VCPU_RUNNING;
	return s->in_vmm ? VMS_VCPU_VMM : VMS_VCPU_HYPERVISOR;
}

/* It runs on @cpu from @ts on (a switch in, seen or inferred). */
static void run_on(struct vcpu *v, unsigned int i, int cpu, uint64_t ts)
{
	struct vms_vcpu_thread *th = &v->threads[i];
	struct vst *s = &v->vst[i];

	if (s->run_cpu >= 0 && cpu != s->run_cpu)
		th->migrations++;
	s->run_cpu = cpu;
	s->run_start = s->run_end = ts;
	if (s->held && s->st == VMS_VCPU_WAITING) {
		/* the waiting after a held sleep is held too, until the sleep is settled */
		s->wait_closed = true;
		s->wait_end = ts < s->sleep_end ? s->sleep_end : ts;
		s->wait_cpu = s->cpu;
		s->st = running_state(th, s);
		s->since = s->wait_end;
	} else {
		set_state(v, i, running_state(th, s), ts);
	}
	s->cpu = cpu;
	s->on_cpu = true;
}

/* The first event of a thread: it is counted from here. */
static void first_seen(struct vcpu *v, unsigned int i, uint64_t ts)
{
	struct vst *s = &v->vst[i];

	if (s->seen)
		return;
	s->seen = true;
	s->since = ts;
	v->threads[i].first_ts = ts;
}

/* The first event of a thread shows it running on @cpu. */
static void first_seen_running(struct vcpu *v, unsigned int i, int cpu, uint64_t ts)
{
	struct vst *s = &v->vst[i];

	first_seen(v, i, ts);
	s->st = running_state(&v->threads[i], s);
	s->cpu = s->run_cpu = cpu;
	s->on_cpu = true;
}

/*
 * An event of the thread's own on @cpu at @ts: it runs there. If it was believed off its
 * CPU, a switch in is inferred (a missing sched_switch).
 */
static void own_event(struct vcpu *v, unsigned int i, int cpu, uint64_t ts)
{
	struct vms_vcpu_thread *th = &v->threads[i];
	struct vst *s = &v->vst[i];

	if (!s->seen) {
		first_seen_running(v, i, cpu, ts);
		return;
	}
	if (s->on_cpu && s->cpu == cpu)
		return;
	if (s->st == VMS_VCPU_UNKNOWN) {
		run_on(v, i, cpu, ts);
		return;
	}
	th->inferred++;
	if (s->on_cpu) {
		/* on another CPU: its switch out there and in here are both missing */
		th->uncertain_ns += ts > s->since ? ts - s->since : 0;
		run_on(v, i, cpu, ts);
		return;
	}
	if (s->st == VMS_VCPU_WAITING) {
		/* woken: an idle CPU takes it at once; it ran by @ts at the latest */
		th->uncertain_ns += ts > s->since ? ts - s->since : 0;
		run_on(v, i, cpu, s->since);
		return;
	}
	/* preempted or asleep and no wakeup seen: it ran by @ts */
	th->uncertain_ns += ts > s->since ? ts - s->since : 0;
	if (s->st == SLEEPING)
		hold_sleep(s, ts);
	run_on(v, i, cpu, ts);
}

/* ---- handlers ---- */

/* The vCPU thread of a kvm record: consecutive records of a CPU mostly come from the
 * same thread, so the last one found on each CPU is tried first. */
static unsigned int vcpu_of_record(struct vcpu *v, const struct vms_record *rec, bool *found)
{
	unsigned int i;

	if ((unsigned int)rec->cpu < VMS_ARRAY_SIZE(v->last_pid) &&
	    v->last_pid[rec->cpu] == rec->pid && rec->pid > 0) {
		*found = true;
		return v->last_idx[rec->cpu];
	}
	i = lookup(v, rec->pid, NULL, 0, true, found);
	if (*found && (unsigned int)rec->cpu < VMS_ARRAY_SIZE(v->last_pid)) {
		v->last_pid[rec->cpu] = rec->pid;
		v->last_idx[rec->cpu] = i;
	}
	return i;
}

static void start(struct vcpu *v, const struct vms_record *rec)
{
	if (!v->started) {
		v->started = true;
		v->origin = rec->ts;
		if (v->opts.relative) {
			v->opts.from += rec->ts;
			v->opts.to = v->opts.to ? v->opts.to + rec->ts : 0;
		}
	}
}

/* kvm events: the thread runs; some change its state */
static void on_kvm(void *priv, const struct vms_record *rec)
{
	struct vcpu *v = priv;
	struct vms_vcpu_thread *th;
	struct vst *s;
	bool found;
	unsigned int i = vcpu_of_record(v, rec, &found);

	start(v, rec);
	if (!found)
		return;
	th = &v->threads[i];
	s = &v->vst[i];
	th->kvm_events++;
	own_event(v, i, rec->cpu, rec->ts);
	if (s->held) /* the first kvm event after a sleep says what it was */
		settle(v, i, (int)rec->type == v->id_wakeup_kvm ? VMS_VCPU_IDLE : VMS_VCPU_BLOCKED);
	if ((int)rec->type == v->id_entry) {
		v->entries++;
		th->split = true;
		s->in_vmm = false;
		set_state(v, i, VMS_VCPU_GUEST, rec->ts);
	} else if ((int)rec->type == v->id_exit) {
		uint32_t isa = (uint32_t)vms_field_u64(&v->exit_isa, rec);
		uint32_t reason = (uint32_t)vms_field_u64(&v->exit_reason, rec);

		v->exits++;
		th->exits++;
		th->split = true;
		s->in_vmm = false;
		if (!isa)
			isa = (uint32_t)v->isa;
		s->halted = (isa == VMS_X86_VMX && reason == 12) ||
			    (isa == VMS_X86_SVM && reason == 0x78);
		set_state(v, i, VMS_VCPU_HYPERVISOR, rec->ts);
		s->reason = reason;
	} else if ((int)rec->type == v->id_ue && th->split) {
		s->in_vmm = true;
		set_state(v, i, VMS_VCPU_VMM, rec->ts);
		s->reason = (uint32_t)vms_field_u64(&v->ue_reason, rec);
	}
}

static void on_switch(void *priv, const struct vms_record *rec)
{
	struct vcpu *v = priv;
	int prev = (int)vms_field_u64(&v->sw_prev_pid, rec);
	int next = (int)vms_field_u64(&v->sw_next_pid, rec);
	uint64_t prev_state = vms_field_u64(&v->sw_prev_state, rec);
	const char *comm;
	bool found;
	unsigned int i;

	start(v, rec);
	comm = field_bytes(&v->sw_prev_comm, rec);
	i = lookup(v, prev, comm, comm ? v->sw_prev_comm.size : 0, false, &found);
	if (found) {
		struct vms_vcpu_thread *th = &v->threads[i];
		struct vst *s = &v->vst[i];

		own_event(v, i, rec->cpu, rec->ts); /* it ran here until now */
		if (s->held)
			settle(v, i, VMS_VCPU_BLOCKED); /* asleep again without a halt wakeup */
		s->on_cpu = false;
		s->run_end = rec->ts;
		if (!(prev_state & 0xff)) {
			th->preemptions++;
			set_state(v, i, VMS_VCPU_PREEMPTED, rec->ts);
			s->by = next;
			memset(s->by_comm, 0, sizeof(s->by_comm));
			if ((comm = field_bytes(&v->sw_next_comm, rec)))
				memcpy(s->by_comm, comm,
				       v->sw_next_comm.size < sizeof(s->by_comm) - 1
					       ? v->sw_next_comm.size
					       : sizeof(s->by_comm) - 1);
		} else if (th->split) {
			set_state(v, i, s->halted ? VMS_VCPU_IDLE : VMS_VCPU_BLOCKED, rec->ts);
		} else {
			set_state(v, i, SLEEPING, rec->ts);
			s->sleep_start = s->since; /* rec->ts, or later if time went back */
			s->sleep_cpu = rec->cpu;
		}
	}
	comm = field_bytes(&v->sw_next_comm, rec);
	i = lookup(v, next, comm, comm ? v->sw_next_comm.size : 0, false, &found);
	if (found) {
		struct vms_vcpu_thread *th = &v->threads[i];
		struct vst *s = &v->vst[i];

		if (!s->seen) {
			first_seen_running(v, i, rec->cpu, rec->ts);
			return;
		}
		if (s->st == VMS_VCPU_WAITING) {
			if (vms_hist_add(&th->wake_lat,
					 rec->ts > s->since ? rec->ts - s->since : 0))
				v->err = -ENOMEM;
			th->wakeups++;
		} else if (s->st == SLEEPING) {
			hold_sleep(s, rec->ts); /* its wakeup is missing: the sleep ends here */
		} else if (s->on_cpu && s->cpu != rec->cpu) {
			th->inferred++; /* its switch out from the other CPU is missing */
		}
		run_on(v, i, rec->cpu, rec->ts);
	}
}

static void on_wakeup(void *priv, const struct vms_record *rec)
{
	struct vcpu *v = priv;
	int pid = (int)vms_field_u64(&v->wk_pid, rec);
	const char *comm;
	bool found;
	unsigned int i;
	struct vst *s;

	start(v, rec);
	comm = field_bytes(&v->wk_comm, rec);
	i = lookup(v, pid, comm, comm ? v->wk_comm.size : 0, false, &found);
	if (!found)
		return;
	s = &v->vst[i];
	if (!s->seen) {
		first_seen(v, i, rec->ts);
		s->st = VMS_VCPU_WAITING;
		s->cpu = (int)vms_field_u64(&v->wk_target, rec);
		return;
	}
	if (s->st == SLEEPING) {
		hold_sleep(s, rec->ts);
		s->st = VMS_VCPU_WAITING;
		s->since = s->sleep_end;
	} else if (s->st == VMS_VCPU_IDLE || s->st == VMS_VCPU_BLOCKED ||
		   s->st == VMS_VCPU_UNKNOWN) {
		set_state(v, i, VMS_VCPU_WAITING, rec->ts);
	} else {
		return; /* running, preempted or already woken */
	}
	if (v->wk_target.valid)
		s->cpu = (int)vms_field_u64(&v->wk_target, rec);
}

static void on_migrate(void *priv, const struct vms_record *rec)
{
	struct vcpu *v = priv;
	struct th *t = tab_find(v, (int)vms_field_u64(&v->mg_pid, rec));

	start(v, rec);
	if (t && t->kind == VCPU && !v->vst[t->idx].on_cpu)
		v->vst[t->idx].cpu = (int)vms_field_u64(&v->mg_dest, rec);
}

/* Events of a CPU were lost: what its threads did since is unknown. */
static void on_lost(void *priv, const struct vms_record *rec)
{
	struct vcpu *v = priv;

	for (size_t i = 0; i < v->nthreads; i++) {
		struct vst *s = &v->vst[i];

		if (!s->seen || s->cpu != rec->cpu || s->st == VMS_VCPU_UNKNOWN)
			continue;
		if (s->st == SLEEPING) {
			hold_sleep(s, rec->ts);
			s->st = VMS_VCPU_UNKNOWN;
			s->since = s->sleep_end;
		}
		if (s->held)
			settle_guess(v, (unsigned int)i);
		set_state(v, (unsigned int)i, VMS_VCPU_UNKNOWN, rec->ts);
		s->on_cpu = false;
	}
}

/* ---- init, finish ---- */

/* Events only a vCPU thread emits, in its own context. */
static const char *const vcpu_events[] = {
	"kvm_entry",	     "kvm_exit",       "kvm_userspace_exit",
	"kvm_vcpu_wakeup",   "kvm_mmio",       "kvm_pio",
	"kvm_msr",	     "kvm_hypercall",  "kvm_inj_virq",
	"kvm_cpuid",	     "kvm_page_fault", "kvm_emulate_insn",
	"kvm_fpu",	     "kvm_cr",	       "kvm_eoi",
	"kvm_pv_eoi",	     "kvm_apic",       "kvm_inj_exception",
	"kvm_nested_vmexit",
};

static int vcpu_init(void *priv, struct vms_session *s, const void *opts)
{
	struct vcpu *v = priv;
	struct vms_trace *t = vms_session_trace(s);
	const char *vendor = vms_trace_meta(t, "vendor");
	int ret, id;

	v->trace = t;
	v->opts = (struct vms_vcpu_opts){ sizeof(v->opts), 0, 0, false };
	if (opts)
		v->opts = *(const struct vms_vcpu_opts *)opts;
	v->ncpu = vms_trace_info(t)->ncpus;
	if ((ret = vms_vmmap_from_trace(t, &v->map)))
		return ret;
	if (!vms_vmmap_nvms(v->map)) {
		vms_vmmap_free(v->map);
		v->map = NULL;
	}
	v->isa = vendor ? vms_x86_isa_of_vendor(vendor) : VMS_X86_UNKNOWN;
	v->id_entry = vms_trace_event_id(t, "kvm", "kvm_entry");
	v->id_exit = vms_trace_event_id(t, "kvm", "kvm_exit");
	v->id_ue = vms_trace_event_id(t, "kvm", "kvm_userspace_exit");
	v->id_wakeup_kvm = vms_trace_event_id(t, "kvm", "kvm_vcpu_wakeup");
	v->id_switch = vms_trace_event_id(t, "sched", "sched_switch");
	v->id_wakeup = vms_trace_event_id(t, "sched", "sched_wakeup");
	v->id_migrate = vms_trace_event_id(t, "sched", "sched_migrate_task");
	vms_trace_field(t, v->id_exit, "exit_reason", &v->exit_reason);
	vms_trace_field(t, v->id_exit, "isa", &v->exit_isa);
	vms_trace_field(t, v->id_ue, "reason", &v->ue_reason);
	vms_trace_field(t, v->id_switch, "prev_pid", &v->sw_prev_pid);
	vms_trace_field(t, v->id_switch, "prev_state", &v->sw_prev_state);
	vms_trace_field(t, v->id_switch, "next_pid", &v->sw_next_pid);
	vms_trace_field(t, v->id_switch, "prev_comm", &v->sw_prev_comm);
	vms_trace_field(t, v->id_switch, "next_comm", &v->sw_next_comm);
	vms_trace_field(t, v->id_wakeup, "pid", &v->wk_pid);
	vms_trace_field(t, v->id_wakeup, "comm", &v->wk_comm);
	vms_trace_field(t, v->id_wakeup, "target_cpu", &v->wk_target);
	vms_trace_field(t, v->id_migrate, "pid", &v->mg_pid);
	vms_trace_field(t, v->id_migrate, "dest_cpu", &v->mg_dest);
	for (size_t k = 0; k < VMS_ARRAY_SIZE(vcpu_events); k++) {
		id = vms_trace_event_id(t, "kvm", vcpu_events[k]);
		if (id >= 0 && (ret = vms_session_subscribe(s, id, on_kvm, v)))
			return ret;
	}
	if ((v->id_switch >= 0 && (ret = vms_session_subscribe(s, v->id_switch, on_switch, v))) ||
	    (v->id_wakeup >= 0 && (ret = vms_session_subscribe(s, v->id_wakeup, on_wakeup, v))) ||
	    (v->id_migrate >= 0 &&
	     (ret = vms_session_subscribe(s, v->id_migrate, on_migrate, v))) ||
	    (ret = vms_session_subscribe(s, (int)VMS_RECORD_LOST, on_lost, v)))
		return ret;
	return 0;
}

static int cmp_by(const void *a, const void *b)
{
	const struct vms_vcpu_preemptor *x = a, *y = b;

	return x->ns > y->ns ? -1 : x->ns < y->ns;
}

static void vcpu_finish(void *priv, struct vms_session *s)
{
	struct vcpu *v = priv;
	uint64_t first, last;

	vms_trace_span(vms_session_trace(s), &first, &last);
	if (v->opts.to && last > v->opts.to)
		last = v->opts.to;
	for (size_t i = 0; i < v->nthreads; i++) {
		struct vst *st = &v->vst[i];
		struct vms_vcpu_thread *th = &v->threads[i];

		if (!st->seen)
			continue;
		/* a sleep still held at the end: the kind of its thread's other sleeps */
		if (st->st == SLEEPING) {
			hold_sleep(st, last);
			st->st = VMS_VCPU_UNKNOWN;
			st->since = st->sleep_end;
		}
		if (st->held)
			settle_guess(v, (unsigned int)i);
		set_state(v, (unsigned int)i, VMS_VCPU_UNKNOWN, last);
		th->end_ts = last > st->since ? last : st->since;
		if (th->nby > 1)
			qsort(th->by, th->nby, sizeof(*th->by), cmp_by);
		v->sum.inferred += th->inferred;
		v->sum.uncertain_ns += th->uncertain_ns;
	}
	v->sum.has_entry_exit = v->entries && v->exits;
	/* In a trace with kvm_entry and kvm_exit, a thread's running time before its first
	 * one of them is host-side: switched in, or in a kvm event of the host kernel. */
	for (size_t i = 0; v->sum.has_entry_exit && i < v->nthreads; i++) {
		struct vms_vcpu_thread *th = &v->threads[i];

		th->ns[VMS_VCPU_HYPERVISOR] += th->ns[VMS_VCPU_RUNNING];
		th->ns[VMS_VCPU_RUNNING] = 0;
		for (unsigned int c = 0; c < th->ncpu; c++) {
			th->cpu_ns[c][VMS_VCPU_HYPERVISOR] += th->cpu_ns[c][VMS_VCPU_RUNNING];
			th->cpu_ns[c][VMS_VCPU_RUNNING] = 0;
		}
		th->split = true;
	}
	v->sum.split = v->sum.has_entry_exit;
	v->sum.start_ts = v->opts.from > first ? v->opts.from : first;
	v->sum.end_ts = last;
	v->sum.lost_events = vms_trace_lost(vms_session_trace(s));
	v->sum.lost_windows = vms_trace_lost_windows(vms_session_trace(s));
}

static void vcpu_free(void *priv)
{
	struct vcpu *v = priv;

	for (size_t i = 0; i < v->nthreads; i++) {
		vms_hist_free(&v->threads[i].wake_lat);
		vms_hist_free(&v->threads[i].preempt_lat);
		free(v->threads[i].cpu_ns);
		free(v->threads[i].by);
	}
	free(v->threads);
	free(v->vst);
	free(v->tab);
	free(v->ls);
	vms_vmmap_free(v->map);
}

static int vcpu_error(const void *priv)
{
	const struct vcpu *v = priv;

	return v->err;
}

const struct vms_analysis_ops vms_vcpu_ops = {
	.name = "vcpu",
	.priv_size = sizeof(struct vcpu),
	.init = vcpu_init,
	.finish = vcpu_finish,
	.free = vcpu_free,
	.error = vcpu_error,
};

bool vms_vcpu_last_run(const void *priv, int tid, int *cpu, uint64_t *start, uint64_t *end)
{
	const struct vcpu *v = priv;
	struct th *t = tab_find((struct vcpu *)v, tid);
	const struct vst *s;

	if (!t || t->kind != VCPU)
		return false;
	s = &v->vst[t->idx];
	if (s->run_cpu < 0)
		return false;
	*cpu = s->run_cpu;
	*start = s->run_start;
	*end = s->run_end;
	return true;
}

void vms_vcpu_window(const void *priv, uint64_t *from, uint64_t *to)
{
	const struct vcpu *v = priv;

	*from = v->opts.from;
	*to = v->opts.to;
}

int vms_vcpu_listen(void *priv, vms_vcpu_slice_fn fn, void *ctx)
{
	struct vcpu *v = priv;
	struct listener *nl = realloc(v->ls, (v->nls + 1) * sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	v->ls = nl;
	v->ls[v->nls++] = (struct listener){ fn, ctx };
	return 0;
}

const struct vms_vcpu_thread *vms_vcpu_threads(const void *priv, size_t *n)
{
	const struct vcpu *v = priv;

	*n = v->nthreads;
	return v->threads;
}

void vms_vcpu_summary(const void *priv, struct vms_vcpu_summary *out)
{
	*out = ((const struct vcpu *)priv)->sum;
}
