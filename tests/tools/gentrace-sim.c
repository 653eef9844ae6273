// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace's simulation of a KVM host: a discrete-event scheduler, deterministic for a
 * --seed, that decides which event happens when and on which CPU.
 *
 * VMs with vCPU threads and one kworker per host CPU share the host CPUs. A vCPU
 * alternates between the guest and exits whose reasons come from a weighted mix typical
 * of the vendor (VMX or SVM, gentrace-scenario.c), with latencies drawn per reason;
 * exits carry their side events (kvm_pio, kvm_mmio, kvm_msr, kvm_page_fault,
 * kvm_userspace_exit, kvm_inj_virq). Long HLTs block the thread (sched_switch out, state
 * S) until a timer wakes it (sched_waking, sched_wakeup, sometimes sched_migrate_task to
 * another CPU). Host work that needs a CPU running a guest (a timer, a wakeup) first makes
 * that guest exit (EXTERNAL_INTERRUPT), and a vCPU about to enter the guest yields its CPU
 * to a waiting task (sched_switch out with prev_state R+, the kernel's TASK_REPORT_MAX for
 * a preemption). Each vCPU's last exit is a HLT that never ends, so the truth has
 * unfinished exits too; the host then stays on, idle, for one more second, where tickless
 * CPUs can be quiet for longer than a 27-bit time delta (the pages get TIME_EXTEND
 * events).
 *
 * Pending actions (a thread's next step, a CPU's timer, an idle CPU's reschedule) wait in
 * a binary heap ordered by time; each event is handed to gentrace-events.c as it happens,
 * and its truth to gentrace-truth.c once it is known to be written. The order of the
 * random draws is part of the output: a change here changes every generated trace.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gentrace.h"
#include "vmscope/trace-writer.h"

#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define START_TS (1000ULL * 1000 * NS_PER_MS) /* the trace starts at 1000 s */
#define SLICE_NS (3 * NS_PER_MS)	      /* a vCPU yields to waiting tasks after this */
#define PREEMPT_STATE 0x100		      /* TASK_REPORT_MAX: "R+", preempted */
#define BLOCK_STATE 0x1			      /* TASK_INTERRUPTIBLE: "S" */
#define IDLE_STATE 0x80			      /* TASK_REPORT_IDLE: "I" (kworker) */

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */

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

/* ---- the event heap ---- */

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
	if (ev_switch(s, cpu, now, prev, prev_state, next < 0 ? IDLE : next))
		truth_switch(s, cpu, now, prev, prev_state, next < 0 ? IDLE : next);
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
	if (ev_wake(s, EV_WAKEUP, cpu, now, t, target))
		truth_wakeup(s, t, now);
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

	if (ev_kvm_exit(s, th, now, r))
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
		unsigned p = (unsigned)(rng_next(&s->rng) % NR_PIO_PORTS);
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
		unsigned dv = (unsigned)(rng_next(&s->rng) % NR_MMIO_DEVS);
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
		unsigned m = write ? (unsigned)(rng_next(&s->rng) % MSR_FIRST_READ)
				   : MSR_FIRST_READ + (unsigned)(rng_next(&s->rng) %
								 (NR_MSRS - MSR_FIRST_READ));

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
	if (ev_kvm_entry(s, th, now))
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
	case S_PIO: /* the truth's counters: written events only */
		if (ev_kvm_pio(s, cpu, now, th, st->b, &pio_ports[st->a], st->c))
			th->pio[st->a][st->b]++;
		break;
	case S_MMIO:
		if (ev_kvm_mmio(s, cpu, now, th, st->a, &mmio_devs[st->b], st->c))
			th->mmio[st->a][st->b]++;
		break;
	case S_MSR:
		if (ev_kvm_msr(s, cpu, now, th, st->b, msr_idx[st->a], st->c))
			th->msr[st->a][st->b]++;
		break;
	case S_PF:
		ev_kvm_page_fault(s, cpu, now, th, st->c, st->d);
		break;
	case S_USER_EXIT:
		if (ev_kvm_userspace_exit(s, cpu, now, th, st->a)) {
			th->uexit[st->a == KVM_EXIT_MMIO]++;
			truth_userspace_exit(s, th, now);
		}
		break;
	case S_INJ:
		if (ev_kvm_inj_virq(s, cpu, now, th, st->a))
			truth_injection(s, th, now, st->a);
		break;
	case S_VWAKE:
		ev_kvm_vcpu_wakeup(s, cpu, now, th, st->c, st->a);
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

int sim_init(struct sim *s, struct opts *o)
{
	unsigned t = 0;

	s->o = o;
	rng_seed(&s->rng, o->seed);
	s->reasons = o->svm ? svm_reasons : vmx_reasons;
	s->nreasons = o->svm ? NR_SVM_REASONS : NR_VMX_REASONS;
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
	return truth_init(s);
}

int sim_run(struct sim *s)
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
	emit_flush(s);
	return s->err;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	vms_dat_writer_discard(s->w);
	for (unsigned c = 0; s->cpu && c < s->o->cpus; c++) {
		vms_page_writer_free(s->cpu[c].pw);
		free(s->cpu[c].win_at);
	}
	for (unsigned t = 0; s->th && t < s->nth; t++)
		for (unsigned r = 0; r < MAX_REASONS; r++)
			free(s->th[t].xs[r].samples);
	truth_free(s);
	free(s->th);
	free(s->cpu);
	free(s->heap);
	free(s->wins);
	free(s);
}
