// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace's truth: what an exact analysis of the generated file must find, as JSON.
 *
 * Only written events count: an event dropped in a lost window is not in the truth. The
 * exit latencies follow perf kvm stat's pairing: an exit ends at the next written
 * kvm_entry of the same thread, and a thread is timed only from its first written
 * kvm_entry on; so the truth also lists the exits before that entry, the entries without
 * an exit, and the exits still unfinished at the end (each vCPU's last HLT, and exits
 * whose entry was dropped). The latencies are kept as counters per (thread, reason) plus,
 * unless --no-percentiles, one sample per exit for exact nearest-rank percentiles. The
 * per-device, per-port and per-MSR counters are kept by the simulation
 * (gentrace-sim.c) in struct thread; write_truth() prints them all. The injected
 * interrupts (kvm_inj_virq) are counted per thread and vector, and, unless
 * --no-percentiles, per vector and millisecond of the clock, for the heatmap of
 * `report irq`.
 *
 * "states" is the truth of the vCPU state model, from the written kvm_exit, kvm_entry,
 * kvm_userspace_exit, sched_switch and sched_wakeup events (sched_waking and
 * sched_migrate_task always share the timestamp of a sched_wakeup or a switch-in, so they
 * start no thread earlier). A vCPU thread counts from its first event to the trace's end
 * (its last record, any CPU), in exactly one of: guest (kvm_entry to the next kvm_exit),
 * hypervisor (kvm_exit, or a switch-in, to the next kvm_entry, kvm_userspace_exit or
 * switch-out), vmm (kvm_userspace_exit to kvm_entry or switch-out; a thread switched out
 * in vmm comes back in vmm), preempted (switch-out with (prev_state & 0xff) == 0 to
 * switch-in), idle or blocked (switch-out in a sleeping state after a HLT exit, or
 * another one, to sched_wakeup) and waiting (sched_wakeup to switch-in); its first event
 * gives its first state. Also per thread: its running time per CPU, its migrations (a
 * switch-in on another CPU than its last on-CPU period), its wakeup latencies (sched_wakeup
 * to switch-in, counted at the switch-in) and its preemptions, per preempting task (the
 * next task of the switch-out; the time runs to the switch-in or the end). Per CPU, from
 * the trace's first record to its end: each vCPU's guest, hypervisor and vmm time, other
 * tasks' and the idle task's. A CPU runs, until its first sched_switch, the task it started
 * with: a vCPU that starts there is in the guest until its first kvm_exit, time that the
 * CPU counts and the thread, not yet seen, does not. gentrace blocks vCPUs only in HLT, so
 * blocked is always 0. Across lost events the states are not known: "states" is null
 * whenever --lost is given.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gentrace.h"
#include "vmscope/json.h"
#include "vmscope/trace-writer.h"

static const char *const mmio_type_name[] = { "unsatisfied-read", "read", "write" };

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

/* ---- the vCPU state model ---- */

static const char *const vstate_key[VS_N] = { "guest_ns",     "hypervisor_ns", "vmm_ns",
					      "preempted_ns", "waiting_ns",    "idle_ns",
					      "blocked_ns" };

static inline bool running(int state)
{
	return state == VS_GUEST || state == VS_HYP || state == VS_VMM;
}

int truth_init(struct sim *s)
{
	unsigned ncpus = s->o->cpus;

	for (unsigned c = 0; c < ncpus; c++) {
		s->cpu[c].run = s->cpu[c].cur;
		s->cpu[c].vcpu_ns = calloc(s->nvcpus, sizeof(*s->cpu[c].vcpu_ns));
		if (!s->cpu[c].vcpu_ns)
			return -ENOMEM;
	}
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct vtruth *vt = &s->th[t].vt;

		vt->last_exit = -1;
		vt->cpu = -1;
		/* Where a vCPU starts on a CPU it is in the guest: the CPU counts it from the
		 * trace's first record, the thread only from its own first event. */
		vt->state = s->cpu[s->th[t].cpu].cur == (int)t ? VS_GUEST : VS_PREEMPTED;
		vt->run_ns = calloc(ncpus, sizeof(*vt->run_ns));
		vt->by = calloc(s->nth + ncpus, sizeof(*vt->by));
		if (!vt->run_ns || !vt->by)
			return -ENOMEM;
	}
	return 0;
}

void truth_injection(struct sim *s, struct thread *th, uint64_t ts, uint32_t vector)
{
	int k;

	for (k = 0; k < th->ninj && th->inj_vector[k] != vector; k++)
		;
	if (k == th->ninj) {
		if (k == MAX_INJ_VECTORS) {
			s->err = -ENOSPC; /* the scenario injects more vectors than the truth keeps
					   */
			return;
		}
		th->inj_vector[th->ninj++] = vector;
	}
	th->inj_count[k]++;
	if (!s->o->percentiles)
		return;
	if (s->ninjs == s->capinjs) {
		size_t cap = s->capinjs ? s->capinjs * 2 : 1024;
		struct injection *p = realloc(s->injs, cap * sizeof(*p));

		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		s->injs = p;
		s->capinjs = cap;
	}
	s->injs[s->ninjs++] = (struct injection){ ts, vector };
}

static int cmp_injection(const void *pa, const void *pb)
{
	const struct injection *a = pa, *b = pb;

	if (a->vector != b->vector)
		return a->vector < b->vector ? -1 : 1;
	return a->ts < b->ts ? -1 : a->ts > b->ts;
}

/*
 * "injections": written kvm_inj_virq per thread and vector; "injection_ms": per vector,
 * clock second (ts / 1e9) and millisecond within it, how many (null with --no-percentiles):
 * any sub-second bucketing of whole milliseconds can be summed from it.
 */
static void write_injections(struct sim *s, struct vms_json *j)
{
	vms_json_array_begin(j, "injections");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (int k = 0; k < s->th[t].ninj; k++) {
			vms_json_object_begin(j, NULL);
			vms_json_i64(j, "tid", s->th[t].tid);
			vms_json_u64(j, "vcpu", (uint64_t)s->th[t].vid);
			vms_json_u64(j, "vector", s->th[t].inj_vector[k]);
			vms_json_u64(j, "count", s->th[t].inj_count[k]);
			vms_json_object_end(j);
		}
	vms_json_array_end(j);
	if (!s->o->percentiles) {
		vms_json_null(j, "injection_ms");
		return;
	}
	qsort(s->injs, s->ninjs, sizeof(*s->injs), cmp_injection);
	vms_json_array_begin(j, "injection_ms");
	for (size_t i = 0; i < s->ninjs;) {
		const struct injection *a = &s->injs[i];
		uint64_t sec = a->ts / 1000000000, ms = a->ts % 1000000000 / 1000000, n = 0;

		for (; i < s->ninjs && s->injs[i].vector == a->vector &&
		       s->injs[i].ts / 1000000000 == sec &&
		       s->injs[i].ts % 1000000000 / 1000000 == ms;
		     i++)
			n++;
		vms_json_object_begin(j, NULL);
		vms_json_u64(j, "vector", a->vector);
		vms_json_u64(j, "second", sec);
		vms_json_u64(j, "ms", ms);
		vms_json_u64(j, "count", n);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
}

void truth_free(struct sim *s)
{
	free(s->injs);
	for (unsigned c = 0; s->cpu && c < s->o->cpus; c++)
		free(s->cpu[c].vcpu_ns);
	for (unsigned t = 0; s->th && t < s->nvcpus; t++) {
		free(s->th[t].vt.run_ns);
		free(s->th[t].vt.by);
		free(s->th[t].vt.wake.samples);
		free(s->th[t].vt.preempt.samples);
	}
}

/* The first record of the trace: events are written in time order over all CPUs, so once
 * any is written, this one is. */
static uint64_t trace_first_ts(const struct sim *s)
{
	uint64_t first = UINT64_MAX;

	for (unsigned c = 0; c < s->o->cpus; c++)
		if (s->cpu[c].written && s->cpu[c].first_ts < first)
			first = s->cpu[c].first_ts;
	return first;
}

/* Count the time of @cpu up to @ts to the task that runs there, in its state. */
static void cpu_account(struct sim *s, int cpu, uint64_t ts)
{
	struct cpu *c = &s->cpu[cpu];
	uint64_t from = c->run_since ? c->run_since : trace_first_ts(s);
	uint64_t d = ts > from ? ts - from : 0;

	if (c->run == IDLE) {
		c->idle_ns += d;
	} else if (!s->th[c->run].vcpu) {
		c->other_ns += d;
	} else {
		int st = s->th[c->run].vt.state;

		/* a vCPU runs in a running state, unless lost events hid its switch-in */
		c->vcpu_ns[c->run][running(st) ? st : VS_HYP] += d;
	}
	c->run_since = ts;
}

/* Count the time of @th up to @ts to its state. */
static void vt_account(struct thread *th, uint64_t ts)
{
	struct vtruth *vt = &th->vt;
	uint64_t d = ts - vt->since;

	vt->ns[vt->state] += d;
	if (running(vt->state) && vt->cpu >= 0)
		vt->run_ns[vt->cpu] += d;
	if (vt->state == VS_PREEMPTED)
		vt->by[vt->preempter][1] += d;
	vt->since = ts;
}

/*
 * A written event of @th at @ts puts it in @state. Its first one starts its time; the
 * CPU that runs it, if any, counts its time in the state it leaves first.
 */
static void vt_enter(struct sim *s, struct thread *th, uint64_t ts, int state)
{
	struct vtruth *vt = &th->vt;
	int t = (int)(th - s->th);

	if (vt->cpu >= 0 && s->cpu[vt->cpu].run == t)
		cpu_account(s, vt->cpu, ts);
	if (vt->seen) {
		vt_account(th, ts);
	} else {
		vt->seen = true;
		vt->first_ts = vt->since = ts;
	}
	vt->state = (uint8_t)state;
}

/* A written kvm event of @th (on its CPU) puts it in @state. */
static void vt_kvm(struct sim *s, struct thread *th, uint64_t ts, int state)
{
	if (th->vt.cpu < 0)
		th->vt.cpu = th->cpu; /* running since before its first event */
	vt_enter(s, th, ts, state);
}

void truth_userspace_exit(struct sim *s, struct thread *th, uint64_t ts)
{
	vt_kvm(s, th, ts, VS_VMM);
}

void truth_switch(struct sim *s, int cpu, uint64_t ts, int prev, uint64_t prev_state, int next)
{
	cpu_account(s, cpu, ts);
	if (prev != IDLE && s->th[prev].vcpu) {
		struct thread *th = &s->th[prev];
		struct vtruth *vt = &th->vt;
		int state;

		if (!(prev_state & 0xff))
			state = VS_PREEMPTED;
		else if (vt->last_exit == REASON_HLT)
			state = VS_IDLE;
		else
			state = VS_BLOCKED;
		vt->out_vmm = vt->seen && vt->state == VS_VMM;
		vt->cpu = cpu;
		vt_enter(s, th, ts, state);
		if (state == VS_PREEMPTED) {
			vt->preempt_ts = ts;
			vt->preempter = next == IDLE ? (int)s->nth + cpu : next;
			vt->preemptions++;
			vt->by[vt->preempter][0]++;
		}
	}
	if (next != IDLE && s->th[next].vcpu) {
		struct thread *th = &s->th[next];
		struct vtruth *vt = &th->vt;

		if (vt->seen && vt->state == VS_WAITING)
			xstat_add(s, &vt->wake, ts - vt->wake_ts);
		else if (vt->seen && vt->state == VS_PREEMPTED)
			xstat_add(s, &vt->preempt, ts - vt->preempt_ts);
		if (vt->cpu >= 0 && vt->cpu != cpu)
			vt->migrations++;
		vt->cpu = cpu;
		vt_enter(s, th, ts, vt->out_vmm ? VS_VMM : VS_HYP);
		vt->out_vmm = false;
	}
	s->cpu[cpu].run = next;
}

void truth_wakeup(struct sim *s, int t, uint64_t ts)
{
	struct thread *th = &s->th[t];

	if (!th->vcpu)
		return;
	vt_enter(s, th, ts, VS_WAITING);
	th->vt.wake_ts = ts;
}

/* ---- exit latencies ---- */

/* perf kvm stat's pairing: an exit ends at the next kvm_entry of the same thread, and a
 * thread is timed only from its first kvm_entry on. */
void truth_exit(struct sim *s, struct thread *th, uint64_t ts, int reason)
{
	th->vt.last_exit = reason;
	vt_kvm(s, th, ts, VS_HYP);
	if (!th->known) {
		th->xs[reason].before++;
		return;
	}
	if (th->pending >= 0)
		th->xs[th->pending].unfinished++;
	th->pending = reason;
	th->pending_ts = ts;
}

void truth_entry(struct sim *s, struct thread *th, uint64_t ts)
{
	vt_kvm(s, th, ts, VS_GUEST);
	th->known = true;
	if (th->pending < 0) {
		th->orphans++;
		return;
	}
	xstat_add(s, &th->xs[th->pending], ts - th->pending_ts);
	th->pending = -1;
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

struct by_row {
	int32_t pid;
	int slot;
};

static int cmp_by_row(const void *a, const void *b)
{
	const struct by_row *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

/* max and the nearest-rank percentiles of @x (null without the samples) */
static void write_dist(struct sim *s, struct vms_json *j, struct xstat *x)
{
	vms_json_u64(j, "max_ns", x->max);
	if (s->o->percentiles && x->count && x->ns == x->count) {
		qsort(x->samples, x->ns, sizeof(*x->samples), cmp_u64);
		vms_json_u64(j, "p50_ns", percentile(x->samples, x->ns, 50));
		vms_json_u64(j, "p95_ns", percentile(x->samples, x->ns, 95));
		vms_json_u64(j, "p99_ns", percentile(x->samples, x->ns, 99));
	} else if (s->o->percentiles) {
		vms_json_null(j, "p50_ns");
		vms_json_null(j, "p95_ns");
		vms_json_null(j, "p99_ns");
	}
}

static void write_wakeups(struct sim *s, struct vms_json *j, struct xstat *x)
{
	vms_json_object_begin(j, "wakeups");
	vms_json_u64(j, "count", x->count);
	vms_json_u64(j, "total_ns", x->total);
	write_dist(s, j, x);
	vms_json_object_end(j);
}

static int write_preemptions(struct sim *s, struct vms_json *j, struct vtruth *vt)
{
	size_t nslots = s->nth + s->o->cpus, n = 0;
	struct by_row *rows = calloc(nslots, sizeof(*rows));
	uint64_t total = 0;

	if (!rows)
		return -ENOMEM;
	for (size_t k = 0; k < nslots; k++) {
		if (!vt->by[k][0])
			continue;
		rows[n].pid = k < s->nth ? s->th[k].tid : 0;
		rows[n++].slot = (int)k;
		total += vt->by[k][1];
	}
	qsort(rows, n, sizeof(*rows), cmp_by_row);
	vms_json_object_begin(j, "preemptions");
	vms_json_u64(j, "count", vt->preemptions);
	vms_json_u64(j, "total_ns", total);
	/* their lengths (the one still open at the end included) */
	vms_json_u64(j, "timed", vt->preempt.count);
	write_dist(s, j, &vt->preempt);
	vms_json_array_begin(j, "by");
	for (size_t i = 0; i < n; i++) {
		size_t k = (size_t)rows[i].slot;
		char comm[16];

		if (k < s->nth)
			snprintf(comm, sizeof(comm), "%s", s->th[k].comm);
		else
			snprintf(comm, sizeof(comm), "swapper/%zu", k - s->nth);
		vms_json_object_begin(j, NULL);
		vms_json_i64(j, "pid", rows[i].pid);
		vms_json_string(j, "comm", comm);
		vms_json_u64(j, "count", vt->by[k][0]);
		vms_json_u64(j, "total_ns", vt->by[k][1]);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_object_end(j);
	free(rows);
	return 0;
}

/*
 * The state truth, closed at the trace's end (its last record). Undefined with lost
 * events: null.
 */
static int write_states(struct sim *s, struct vms_json *j)
{
	unsigned ncpus = s->o->cpus;
	uint64_t first = trace_first_ts(s), end = 0;
	int ret = 0;

	if (s->o->lost || first == UINT64_MAX) {
		vms_json_null(j, "states");
		return 0;
	}
	for (unsigned c = 0; c < ncpus; c++)
		if (s->cpu[c].written && s->cpu[c].last_ts > end)
			end = s->cpu[c].last_ts;
	for (unsigned c = 0; c < ncpus; c++)
		cpu_account(s, (int)c, end);
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct vtruth *vt = &s->th[t].vt;

		if (!vt->seen)
			continue;
		vt_account(&s->th[t], end);
		/* still preempted at the end: that preemption lasts to the end */
		if (vt->state == VS_PREEMPTED && vt->preempt_ts && !vt->preempt_closed) {
			xstat_add(s, &vt->preempt, end - vt->preempt_ts);
			vt->preempt_closed = true;
		}
	}

	vms_json_object_begin(j, "states");
	vms_json_u64(j, "first_ts", first);
	vms_json_u64(j, "end_ts", end);
	vms_json_array_begin(j, "threads");
	for (unsigned t = 0; t < s->nvcpus && !ret; t++) {
		struct thread *th = &s->th[t];
		struct vtruth *vt = &th->vt;

		vms_json_object_begin(j, NULL);
		vms_json_i64(j, "tid", th->tid);
		vms_json_u64(j, "vm", (uint64_t)th->vm);
		vms_json_u64(j, "vcpu", (uint64_t)th->vid);
		if (vt->seen)
			vms_json_u64(j, "first_ts", vt->first_ts);
		else
			vms_json_null(j, "first_ts");
		vms_json_u64(j, "end_ts", end);
		for (int k = 0; k < VS_N; k++)
			vms_json_u64(j, vstate_key[k], vt->ns[k]);
		vms_json_u64(j, "migrations", vt->migrations);
		vms_json_object_begin(j, "cpu_run_ns");
		for (unsigned c = 0; c < ncpus; c++) {
			char key[16];

			if (!vt->run_ns[c])
				continue;
			snprintf(key, sizeof(key), "%u", c);
			vms_json_u64(j, key, vt->run_ns[c]);
		}
		vms_json_object_end(j);
		write_wakeups(s, j, &vt->wake);
		ret = write_preemptions(s, j, vt);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);

	vms_json_array_begin(j, "cpus");
	for (unsigned c = 0; c < ncpus; c++) {
		struct cpu *cp = &s->cpu[c];

		vms_json_object_begin(j, NULL);
		vms_json_u64(j, "cpu", c);
		vms_json_u64(j, "idle_ns", cp->idle_ns);
		vms_json_u64(j, "other_ns", cp->other_ns);
		vms_json_array_begin(j, "vcpus");
		for (unsigned t = 0; t < s->nvcpus; t++) {
			uint64_t *ns = cp->vcpu_ns[t];

			if (!ns[VS_GUEST] && !ns[VS_HYP] && !ns[VS_VMM])
				continue;
			vms_json_object_begin(j, NULL);
			vms_json_i64(j, "tid", s->th[t].tid);
			vms_json_u64(j, "guest_ns", ns[VS_GUEST]);
			vms_json_u64(j, "hypervisor_ns", ns[VS_HYP]);
			vms_json_u64(j, "vmm_ns", ns[VS_VMM]);
			vms_json_object_end(j);
		}
		vms_json_array_end(j);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_object_end(j);
	return ret;
}

int write_truth(struct sim *s, const char *path)
{
	struct opts *o = s->o;
	struct vms_json j;
	FILE *f = fopen(path, "we");
	uint64_t lost_total = 0;
	int ret, states;

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
			for (unsigned d = 0; d < NR_MMIO_DEVS; d++) {
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
		for (unsigned p = 0; p < NR_PIO_PORTS; p++)
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
		for (unsigned m = 0; m < NR_MSRS; m++)
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

	write_injections(s, &j);

	states = write_states(s, &j);

	vms_json_object_end(&j);
	ret = vms_json_finish(&j);
	if (states)
		ret = states;
	if (fclose(f) && !ret)
		ret = -EIO;
	return ret;
}
