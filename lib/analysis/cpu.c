// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Who used each host CPU (see vmscope/cpu.h). vCPU time comes from the state model, per
 * thread, CPU and state; the rest from sched_switch: each CPU's current task since
 * its switch in, counted when the same task is switched out. A switch out of another task
 * than the one believed current means a switch is missing: that stretch is nobody's. At
 * the end the vCPU threads' own sched_switch time is dropped (the model's count, with the
 * state model's inferences), and what is left of each CPU's span is unknown.
 */
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/cpu.h"

struct entry {
	uint64_t key; /* cpu << 32 | pid, + 1; 0: free */
	char comm[16];
	uint64_t ns;
};

struct cpu_state {
	int cur; /* pid of the current task, -1 unknown */
	uint64_t since;
	int woken; /* the task last woken onto this CPU while it was idle, and when */
	uint64_t woken_ts;
	uint64_t inferred_ns;
};

struct cpu {
	void *vcpu;
	struct vms_trace *trace;
	struct vms_field prev_pid, prev_comm, next_pid, next_comm, wk_pid, wk_target;
	struct cpu_state *cs;
	unsigned int ncpu;
	struct entry *tab;
	size_t cap, n;
	struct vms_cpu_usage *out;
	int err;
};

static size_t hash_key(uint64_t k)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 20);
}

static struct entry *entry_get(struct cpu *c, unsigned int cpu, int pid)
{
	uint64_t key = ((uint64_t)cpu << 32 | (uint32_t)pid) + 1;
	size_t i;

	if ((c->n + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 1024;
		struct entry *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return NULL;
		for (size_t k = 0; k < c->cap; k++) {
			if (!c->tab[k].key)
				continue;
			for (i = hash_key(c->tab[k].key) & (ncap - 1); nt[i].key;
			     i = (i + 1) & (ncap - 1))
				;
			nt[i] = c->tab[k];
		}
		free(c->tab);
		c->tab = nt;
		c->cap = ncap;
	}
	for (i = hash_key(key) & (c->cap - 1); c->tab[i].key; i = (i + 1) & (c->cap - 1))
		if (c->tab[i].key == key)
			return &c->tab[i];
	c->tab[i].key = key;
	c->n++;
	return &c->tab[i];
}

/* Add @ns to @pid's time on @cpu (no entry pointer is held across calls: adding one may
 * move them all). */
static struct entry *add_ns(struct cpu *c, unsigned int cpu, int pid, uint64_t ns)
{
	struct entry *e = entry_get(c, cpu, pid);

	if (e)
		e->ns += ns;
	else
		c->err = -ENOMEM;
	return e;
}

/* [@a, @b) clipped to the state model's window; 0 when outside. */
static uint64_t clipped(const struct cpu *c, uint64_t a, uint64_t b)
{
	uint64_t from, to;

	vms_vcpu_window(c->vcpu, &from, &to);
	if (to && b > to)
		b = to;
	if (a < from)
		a = from;
	return b > a ? b - a : 0;
}

/* Name entry @e from the comm field @f of @rec, unless it has a name. */
static void name(struct entry *e, const struct vms_field *f, const struct vms_record *rec)
{
	if (e && !e->comm[0] && f->valid && f->offset + f->size <= rec->size)
		memcpy(e->comm, rec->data + f->offset,
		       f->size < sizeof(e->comm) - 1 ? f->size : sizeof(e->comm) - 1);
}

static void on_switch(void *priv, const struct vms_record *rec)
{
	struct cpu *c = priv;
	struct cpu_state *cs;
	int prev = (int)vms_field_u64(&c->prev_pid, rec);

	if ((unsigned int)rec->cpu >= c->ncpu)
		return;
	cs = &c->cs[rec->cpu];
	if (cs->cur == prev && rec->ts > cs->since) {
		/* a task first seen as a waker has no name yet: its switch out gives it */
		name(add_ns(c, (unsigned int)rec->cpu, prev, clipped(c, cs->since, rec->ts)),
		     &c->prev_comm, rec);
	} else if (cs->cur == 0 && prev > 0) {
		/* the switch from idle to @prev is missing: if it is a vCPU thread (the state
		 * model has just seen it leave this CPU), idle ran until its inferred start;
		 * another task woken onto this idle CPU ran from its wakeup on */
		uint64_t start, end;
		int cpu;

		if (vms_vcpu_last_run(c->vcpu, prev, &cpu, &start, &end) && cpu == rec->cpu &&
		    end == rec->ts && start > cs->since) {
			add_ns(c, (unsigned int)rec->cpu, 0, clipped(c, cs->since, start));
		} else if (cs->woken == prev && cs->woken_ts >= cs->since &&
			   rec->ts > cs->woken_ts) {
			uint64_t ns = clipped(c, cs->woken_ts, rec->ts);

			add_ns(c, (unsigned int)rec->cpu, 0, clipped(c, cs->since, cs->woken_ts));
			add_ns(c, (unsigned int)rec->cpu, prev, ns);
			cs->inferred_ns += ns;
		}
	}
	cs->woken = -1;
	cs->cur = (int)vms_field_u64(&c->next_pid, rec);
	cs->since = rec->ts;
	if (c->next_comm.valid) {
		struct entry *e = entry_get(c, (unsigned int)rec->cpu, cs->cur);

		if (!e)
			c->err = -ENOMEM;
		name(e, &c->next_comm, rec);
	}
}

/* A task woken onto an idle CPU runs there next (used when that switch is missing). */
static void on_wakeup(void *priv, const struct vms_record *rec)
{
	struct cpu *c = priv;
	uint64_t target = vms_field_u64(&c->wk_target, rec);

	/* The waker is the task current on its CPU: before the CPU's first switch, it is
	 * the first sign of who runs there (often the idle task, woken by an interrupt). */
	if ((unsigned int)rec->cpu < c->ncpu && c->cs[rec->cpu].cur < 0 && rec->pid >= 0) {
		c->cs[rec->cpu].cur = rec->pid;
		c->cs[rec->cpu].since = rec->ts;
	}

	if (!c->wk_target.valid || target >= c->ncpu || c->cs[target].cur != 0)
		return;
	c->cs[target].woken = (int)vms_field_u64(&c->wk_pid, rec);
	c->cs[target].woken_ts = rec->ts;
}

static int cpu_init(void *priv, struct vms_session *s, const void *opts)
{
	struct cpu *c = priv;
	const struct vms_cpu_opts *o = opts;
	struct vms_trace *t = vms_session_trace(s);
	int id = vms_trace_event_id(t, "sched", "sched_switch"), wid, ret;

	if (!o || !o->vcpu)
		return -EINVAL;
	c->vcpu = o->vcpu;
	c->trace = t;
	c->ncpu = vms_trace_info(t)->ncpus;
	c->cs = calloc(c->ncpu ? c->ncpu : 1, sizeof(*c->cs));
	if (!c->cs)
		return -ENOMEM;
	for (unsigned int i = 0; i < c->ncpu; i++)
		c->cs[i].cur = c->cs[i].woken = -1;
	vms_trace_field(t, id, "prev_pid", &c->prev_pid);
	vms_trace_field(t, id, "next_pid", &c->next_pid);
	vms_trace_field(t, id, "next_comm", &c->next_comm);
	vms_trace_field(t, id, "prev_comm", &c->prev_comm);
	wid = vms_trace_event_id(t, "sched", "sched_wakeup");
	vms_trace_field(t, wid, "pid", &c->wk_pid);
	vms_trace_field(t, wid, "target_cpu", &c->wk_target);
	if (wid >= 0 && (ret = vms_session_subscribe(s, wid, on_wakeup, c)))
		return ret;
	return id >= 0 ? vms_session_subscribe(s, id, on_switch, c) : 0;
}

static int cmp_task(const void *pa, const void *pb)
{
	const struct vms_cpu_task *a = pa, *b = pb;

	return a->ns > b->ns ? -1 : a->ns < b->ns ? 1 : a->pid - b->pid;
}

static void cpu_finish(void *priv, struct vms_session *s)
{
	struct cpu *c = priv;
	size_t nth;
	const struct vms_vcpu_thread *th = vms_vcpu_threads(c->vcpu, &nth);
	uint64_t first, last, span;

	vms_trace_span(vms_session_trace(s), &first, &last);
	span = clipped(c, first, last);
	c->out = calloc(c->ncpu ? c->ncpu : 1, sizeof(*c->out));
	if (!c->out) {
		c->err = -ENOMEM;
		return;
	}
	for (unsigned int i = 0; i < c->ncpu; i++) {
		struct cpu_state *cs = &c->cs[i];
		struct vms_cpu_usage *u = &c->out[i];

		/* the current task runs to the end */
		if (cs->cur >= 0 && last > cs->since)
			add_ns(c, i, cs->cur, clipped(c, cs->since, last));
		u->cpu = i;
		u->span_ns = span;
		u->inferred_ns = cs->inferred_ns;
		u->nvcpu = nth;
		u->vcpu_ns = calloc(nth ? nth : 1, sizeof(*u->vcpu_ns));
		if (!u->vcpu_ns) {
			c->err = -ENOMEM;
			continue;
		}
		for (size_t t = 0; t < nth; t++)
			for (unsigned int st = 0; i < th[t].ncpu && st <= VMS_VCPU_RUNNING; st++)
				u->vcpu_ns[t][st] = th[t].cpu_ns[i][st];
	}
	/* other tasks: every entry that is not a vCPU thread */
	for (size_t k = 0; k < c->cap; k++) {
		struct entry *e = &c->tab[k];
		unsigned int cpu;
		int pid;
		bool vcpu = false;

		if (!e->key || !e->ns)
			continue;
		cpu = (unsigned int)((e->key - 1) >> 32);
		pid = (int)(uint32_t)(e->key - 1);
		for (size_t t = 0; t < nth && !vcpu; t++)
			vcpu = th[t].tid == pid;
		if (vcpu || cpu >= c->ncpu)
			continue;
		if (!pid) {
			c->out[cpu].idle_ns += e->ns;
			continue;
		}
		{
			struct vms_cpu_usage *u = &c->out[cpu];
			struct vms_cpu_task *nt = realloc(u->tasks, (u->ntasks + 1) * sizeof(*nt));

			if (!nt) {
				c->err = -ENOMEM;
				continue;
			}
			u->tasks = nt;
			u->tasks[u->ntasks].pid = pid;
			memcpy(u->tasks[u->ntasks].comm, e->comm, sizeof(e->comm));
			u->tasks[u->ntasks++].ns = e->ns;
		}
	}
	for (unsigned int i = 0; i < c->ncpu; i++) {
		struct vms_cpu_usage *u = &c->out[i];
		uint64_t used = u->idle_ns;

		for (size_t t = 0; u->vcpu_ns && t < u->nvcpu; t++)
			for (unsigned int st = 0; st < VMS_VCPU_NSTATES; st++)
				used += u->vcpu_ns[t][st];
		for (size_t k = 0; k < u->ntasks; k++)
			used += u->tasks[k].ns;
		u->unknown_ns = u->span_ns > used ? u->span_ns - used : 0;
		if (u->ntasks > 1)
			qsort(u->tasks, u->ntasks, sizeof(*u->tasks), cmp_task);
	}
}

static void cpu_free(void *priv)
{
	struct cpu *c = priv;

	for (unsigned int i = 0; c->out && i < c->ncpu; i++) {
		free(c->out[i].vcpu_ns);
		free(c->out[i].tasks);
	}
	free(c->cs);
	free(c->out);
	free(c->tab);
}

static int cpu_error(const void *priv)
{
	const struct cpu *c = priv;

	return c->err;
}

const struct vms_analysis_ops vms_cpu_ops = {
	.name = "cpu",
	.priv_size = sizeof(struct cpu),
	.init = cpu_init,
	.finish = cpu_finish,
	.free = cpu_free,
	.error = cpu_error,
};

const struct vms_cpu_usage *vms_cpu_usage(const void *priv, size_t *n)
{
	const struct cpu *c = priv;

	*n = c->out ? c->ncpu : 0;
	return c->out;
}
