// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope report vcpu: per vCPU thread (or per VM), the share of its time in each state of
 * the vCPU state model (vmscope/vcpu.h), the host CPUs it used, its migrations, exit rate
 * and wakeup latency. The table shows shares of each row's own span; CSV and JSON give
 * the nanoseconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "vmscope/cpu.h"
#include "vmscope/table.h"
#include "vmscope/vcpu.h"

#define CMD "report"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct row {
	int vm, vcpu, tid; /* tid -1 in a VM's row */
	uint64_t ns[VMS_VCPU_NSTATES], span;
	uint64_t exits, migrations, inferred, uncertain_ns, wakeups;
	uint64_t preemptions;
	bool split;
	struct vms_hist wake, preempt;
	uint64_t *cpu_ns;
	unsigned int ncpu;
	struct vms_vcpu_preemptor *by; /* merged by pid */
	size_t nby;
};

static int row_cmp(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;

	if (a->vm != b->vm)
		return a->vm < b->vm ? -1 : 1;
	if (a->vcpu != b->vcpu)
		return a->vcpu < b->vcpu ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* Add preemptors @by to @r's, by pid. */
static int by_add(struct row *r, const struct vms_vcpu_preemptor *by, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < r->nby && r->by[k].pid != by[i].pid; k++)
			;
		if (k == r->nby) {
			struct vms_vcpu_preemptor *nb = realloc(r->by, (r->nby + 1) * sizeof(*nb));

			if (!nb)
				return -ENOMEM;
			r->by = nb;
			r->by[r->nby++] = (struct vms_vcpu_preemptor){ by[i].pid, "", 0, 0 };
			memcpy(r->by[k].comm, by[i].comm, sizeof(r->by[k].comm));
		}
		r->by[k].count += by[i].count;
		r->by[k].ns += by[i].ns;
	}
	return 0;
}

static int by_cmp(const void *pa, const void *pb)
{
	const struct vms_vcpu_preemptor *a = pa, *b = pb;

	return a->ns > b->ns ? -1 : a->ns < b->ns;
}

/* Add thread @th to @r. */
static int row_add(struct row *r, const struct vms_vcpu_thread *th)
{
	for (unsigned int s = 0; s < VMS_VCPU_NSTATES; s++) {
		r->ns[s] += th->ns[s];
		r->span += th->ns[s];
	}
	r->exits += th->exits;
	r->migrations += th->migrations;
	r->inferred += th->inferred;
	r->uncertain_ns += th->uncertain_ns;
	r->wakeups += th->wakeups;
	r->preemptions += th->preemptions;
	r->split |= th->split;
	if (by_add(r, th->by, th->nby))
		return -ENOMEM;
	if (vms_hist_merge(&r->preempt, &th->preempt_lat))
		return -ENOMEM;
	if (!r->cpu_ns) {
		r->cpu_ns = calloc(th->ncpu ? th->ncpu : 1, sizeof(*r->cpu_ns));
		if (!r->cpu_ns)
			return -ENOMEM;
		r->ncpu = th->ncpu;
	}
	for (unsigned int c = 0; c < th->ncpu && c < r->ncpu; c++)
		for (unsigned int st = 0; st <= VMS_VCPU_RUNNING; st++)
			r->cpu_ns[c] += th->cpu_ns[c][st];
	return vms_hist_merge(&r->wake, &th->wake_lat);
}

/* "0-3,6": the host CPUs a row ran on. */
static void cpu_list(const struct row *r, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int c = 0; c < r->ncpu && n + 24 < len;) {
		unsigned int e = c;

		if (!r->cpu_ns[c]) {
			c++;
			continue;
		}
		while (e + 1 < r->ncpu && r->cpu_ns[e + 1])
			e++;
		n += (size_t)snprintf(buf + n, len - n, e > c ? "%s%u-%u" : "%s%u", n ? "," : "", c,
				      e);
		c = e + 1;
	}
}

static int build_rows(const struct report_args *a, const void *priv, const struct vms_vmmap *map,
		      int only_vm, struct row **out, size_t *nout)
{
	size_t n, nr = 0;
	const struct vms_vcpu_thread *th = vms_vcpu_threads(priv, &n);
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));

	*out = rows;
	*nout = 0;
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int vm =
			th[i].vm >= 0 ? th[i].vm : (map ? vms_vmmap_vm_of_tid(map, th[i].tid) : -1);
		size_t k = nr;

		if (only_vm >= 0 && vm != only_vm)
			continue;
		if (a->exits.vcpu >= 0 && th[i].vcpu != a->exits.vcpu)
			continue;
		if (a->per_vm)
			for (k = 0; k < nr && rows[k].vm != vm; k++)
				;
		if (k == nr) {
			rows[nr].vm = vm;
			rows[nr].vcpu = a->per_vm ? -1 : th[i].vcpu;
			rows[nr].tid = a->per_vm ? -1 : th[i].tid;
			nr++;
		}
		*nout = nr;
		if (row_add(&rows[k], &th[i]))
			return -ENOMEM;
	}
	if (nr > 1)
		qsort(rows, nr, sizeof(*rows), row_cmp);
	for (size_t k = 0; k < nr; k++)
		if (rows[k].nby > 1)
			qsort(rows[k].by, rows[k].nby, sizeof(*rows[k].by), by_cmp);
	return 0;
}

static void free_rows(struct row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		vms_hist_free(&rows[i].wake);
		vms_hist_free(&rows[i].preempt);
		free(rows[i].cpu_ns);
		free(rows[i].by);
	}
	free(rows);
}

static const enum vms_vcpu_state split_states[] = { VMS_VCPU_GUEST, VMS_VCPU_HYPERVISOR,
						    VMS_VCPU_VMM };
static const enum vms_vcpu_state off_states[] = { VMS_VCPU_PREEMPTED, VMS_VCPU_WAITING,
						  VMS_VCPU_IDLE, VMS_VCPU_BLOCKED,
						  VMS_VCPU_UNKNOWN };
static const char *const titles[] = {
	[VMS_VCPU_GUEST] = "Guest",	  [VMS_VCPU_HYPERVISOR] = "Hyperv",
	[VMS_VCPU_VMM] = "VMM",		  [VMS_VCPU_RUNNING] = "Running",
	[VMS_VCPU_PREEMPTED] = "Preempt", [VMS_VCPU_WAITING] = "Waiting",
	[VMS_VCPU_IDLE] = "Idle",	  [VMS_VCPU_BLOCKED] = "Blocked",
	[VMS_VCPU_UNKNOWN] = "Unknown",
};

/* The VM, vCPU and thread columns (vCPU and thread not with --per-vm), and their cells. */
static void id_columns(const struct report_args *a, struct vms_table *t, int *c_vm, int *c_vcpu,
		       int *c_tid)
{
	*c_vm = vms_table_column(t, "vm", "VM", VMS_COL_STR, 1, 0, NULL);
	*c_vcpu = *c_tid = -1;
	if (!a->per_vm) {
		*c_vcpu = vms_table_column(t, "vcpu", "vCPU", VMS_COL_I64, 1, 0, NULL);
		*c_tid = vms_table_column(t, "tid", "Thread", VMS_COL_I64, 1, 0, NULL);
	}
}

static void id_cells(struct vms_table *t, const struct row *r, const struct vms_vmmap *map,
		     int c_vm, int c_vcpu, int c_tid)
{
	const char *vm = r->vm >= 0 && map ? vms_vmmap_vm_name(map, r->vm) : NULL;

	vms_table_str(t, c_vm, vm ? vm : "-");
	if (c_vcpu >= 0 && r->vcpu >= 0)
		vms_table_i64(t, c_vcpu, r->vcpu);
	if (c_tid >= 0)
		vms_table_i64(t, c_tid, r->tid);
}

static struct vms_table *build_table(const struct report_args *a, const struct row *rows, size_t n,
				     const struct vms_vcpu_summary *sum,
				     const struct vms_vmmap *map)
{
	struct vms_table *t = vms_table_new();
	bool table = a->format == CLI_FORMAT_TABLE, any_split = sum->split, any_run = false;
	int c_vm, c_vcpu = -1, c_tid = -1, c_span = -1, c_st[VMS_VCPU_NSTATES], c_cpus, c_mig,
		  c_rate, c_wn, c_w50, c_w99, c_inf, c_unc;
	char key[32], buf[96];

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++)
		any_run |= rows[i].ns[VMS_VCPU_RUNNING] > 0 || !rows[i].split;
	for (unsigned int s = 0; s < VMS_VCPU_NSTATES; s++)
		c_st[s] = -1;
	id_columns(a, t, &c_vm, &c_vcpu, &c_tid);
	if (!table)
		c_span = vms_table_column(t, "span_ns", NULL, VMS_COL_U64, 1, 0, NULL);
	/* Without kvm_entry/kvm_exit the table has one running column; CSV and JSON keep
	 * every state, so their schema does not depend on the trace. */
	for (size_t k = 0; k < ARRAY_SIZE(split_states); k++) {
		enum vms_vcpu_state s = split_states[k];

		if (!table || any_split) {
			snprintf(key, sizeof(key), "%s_ns", vms_vcpu_state_name(s));
			c_st[s] =
				table ? vms_table_column(t, key, titles[s], VMS_COL_F64, 1, 1, "%")
				      : vms_table_column(t, key, NULL, VMS_COL_U64, 1, 0, NULL);
		}
	}
	if (!table || any_run)
		c_st[VMS_VCPU_RUNNING] =
			table ? vms_table_column(t, "running_ns", "Running", VMS_COL_F64, 1, 1, "%")
			      : vms_table_column(t, "running_ns", NULL, VMS_COL_U64, 1, 0, NULL);
	for (size_t k = 0; k < ARRAY_SIZE(off_states); k++) {
		enum vms_vcpu_state s = off_states[k];

		snprintf(key, sizeof(key), "%s_ns", vms_vcpu_state_name(s));
		c_st[s] = table ? vms_table_column(t, key, titles[s], VMS_COL_F64, 1, 1, "%")
				: vms_table_column(t, key, NULL, VMS_COL_U64, 1, 0, NULL);
	}
	c_cpus = vms_table_column(t, "cpus", "CPUs", VMS_COL_STR, 1, 0, NULL);
	c_mig = vms_table_column(t, "migrations", "Migr", VMS_COL_U64, 1, 0, NULL);
	c_rate = vms_table_column(t, "exits_per_s", "Exits/s", VMS_COL_F64, 1, 0, NULL);
	c_wn = vms_table_column(t, "wakeups", "Wakeups", VMS_COL_U64, 1, 0, NULL);
	c_w50 = vms_table_column(t, "wake_p50_ns", "Wake p50", VMS_COL_U64, 1e3, 1, "us");
	c_w99 = vms_table_column(t, "wake_p99_ns", "Wake p99", VMS_COL_U64, 1e3, 1, "us");
	c_inf = vms_table_column(t, "inferred_switch_ins", "Inferred", VMS_COL_U64, 1, 0, NULL);
	c_unc = vms_table_column(t, "uncertain_ns", "Uncertain", VMS_COL_U64, 1e6, 2, "ms");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		if (vms_table_row(t))
			break;
		id_cells(t, r, map, c_vm, c_vcpu, c_tid);
		if (c_span >= 0)
			vms_table_u64(t, c_span, r->span);
		for (unsigned int s = 0; s < VMS_VCPU_NSTATES; s++) {
			if (c_st[s] < 0)
				continue;
			if (table)
				vms_table_f64(t, c_st[s],
					      r->span ? 100.0 * (double)r->ns[s] / (double)r->span
						      : 0.0);
			else
				vms_table_u64(t, c_st[s], r->ns[s]);
		}
		cpu_list(r, buf, sizeof(buf));
		vms_table_str(t, c_cpus, buf);
		vms_table_u64(t, c_mig, r->migrations);
		if (r->split && r->span)
			vms_table_f64(t, c_rate, (double)r->exits * 1e9 / (double)r->span);
		vms_table_u64(t, c_wn, r->wakeups);
		if (r->wake.count) {
			vms_table_u64(t, c_w50, vms_hist_percentile(&r->wake, 50));
			vms_table_u64(t, c_w99, vms_hist_percentile(&r->wake, 99));
		}
		vms_table_u64(t, c_inf, r->inferred);
		vms_table_u64(t, c_unc, r->uncertain_ns);
	}
	return t;
}

/* ---- report sched: wakeup -> running latency ---- */

/* A count column, then p50, p95, p99 and max of a histogram, keyed PREFIX_p50_ns ... */
static void hist_columns(struct vms_table *t, const char *prefix, const char *count_title, int *c)
{
	static const char *const names[] = { "p50", "p95", "p99", "max" };
	char key[32];

	snprintf(key, sizeof(key), "%ss", prefix);
	c[0] = vms_table_column(t, key, count_title, VMS_COL_U64, 1, 0, NULL);
	for (int k = 0; k < 4; k++) {
		snprintf(key, sizeof(key), "%s_%s_ns", prefix, names[k]);
		c[1 + k] = vms_table_column(t, key, names[k], VMS_COL_U64, 1e3, 1, "us");
	}
}

static void hist_cells(struct vms_table *t, const struct vms_hist *h, const int *c)
{
	static const double ps[] = { 50, 95, 99 };

	vms_table_u64(t, c[0], h->count);
	if (!h->count)
		return;
	for (int k = 0; k < 3; k++)
		vms_table_u64(t, c[1 + k], vms_hist_percentile(h, ps[k]));
	vms_table_u64(t, c[4], h->max);
}

static struct vms_table *build_sched(const struct report_args *a, const struct row *rows, size_t n,
				     const struct vms_vmmap *map)
{
	struct vms_table *t = vms_table_new();
	int c_vm, c_vcpu, c_tid, c[5], c_wait;

	if (!t)
		return NULL;
	id_columns(a, t, &c_vm, &c_vcpu, &c_tid);
	hist_columns(t, "wakeup", "Wakeups", c);
	c_wait = vms_table_column(t, "waiting_ns", "Waiting", VMS_COL_U64, 1e6, 1, "ms");
	for (size_t i = 0; i < n; i++) {
		if (vms_table_row(t))
			break;
		id_cells(t, &rows[i], map, c_vm, c_vcpu, c_tid);
		hist_cells(t, &rows[i].wake, c);
		vms_table_u64(t, c_wait, rows[i].ns[VMS_VCPU_WAITING]);
	}
	return t;
}

/* ---- report steal: preemptions, who took the CPU, what the guest could see ---- */

static struct vms_table *build_steal(const struct report_args *a, const struct row *rows, size_t n,
				     const struct vms_vmmap *map)
{
	struct vms_table *t = vms_table_new();
	bool table = a->format == CLI_FORMAT_TABLE;
	int c_vm, c_vcpu, c_tid, c[5], c_span = -1, c_pre, c_wait, c_steal, c_top;
	char buf[64];

	if (!t)
		return NULL;
	id_columns(a, t, &c_vm, &c_vcpu, &c_tid);
	hist_columns(t, "preemption", "Preempts", c);
	if (table) {
		c_pre = vms_table_column(t, "preempted_pct", "Preempted", VMS_COL_F64, 1, 1, "%");
		c_wait = vms_table_column(t, "waiting_pct", "Waiting", VMS_COL_F64, 1, 1, "%");
		c_steal = vms_table_column(t, "steal_pct", "Steal", VMS_COL_F64, 1, 1, "%");
	} else {
		c_span = vms_table_column(t, "span_ns", NULL, VMS_COL_U64, 1, 0, NULL);
		c_pre = vms_table_column(t, "preempted_ns", NULL, VMS_COL_U64, 1, 0, NULL);
		c_wait = vms_table_column(t, "waiting_ns", NULL, VMS_COL_U64, 1, 0, NULL);
		c_steal = vms_table_column(t, "steal_ns", NULL, VMS_COL_U64, 1, 0, NULL);
	}
	c_top = vms_table_column(t, "top_preemptor", "Top preemptor", VMS_COL_STR, 1, 0, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		uint64_t pre = r->ns[VMS_VCPU_PREEMPTED], wait = r->ns[VMS_VCPU_WAITING];
		double span = r->span ? (double)r->span : 1.0;

		if (vms_table_row(t))
			break;
		id_cells(t, r, map, c_vm, c_vcpu, c_tid);
		hist_cells(t, &r->preempt, c);
		if (table) {
			vms_table_f64(t, c_pre, 100.0 * (double)pre / span);
			vms_table_f64(t, c_wait, 100.0 * (double)wait / span);
			vms_table_f64(t, c_steal, 100.0 * (double)(pre + wait) / span);
		} else {
			vms_table_u64(t, c_span, r->span);
			vms_table_u64(t, c_pre, pre);
			vms_table_u64(t, c_wait, wait);
			vms_table_u64(t, c_steal, pre + wait);
		}
		if (r->nby) {
			snprintf(buf, sizeof(buf), "%s:%d %.0f%%",
				 r->by[0].comm[0] ? r->by[0].comm : "?", r->by[0].pid,
				 pre ? 100.0 * (double)r->by[0].ns / (double)pre : 0.0);
			vms_table_str(t, c_top, buf);
		}
	}
	return t;
}

/* ---- report cpu: who used each host CPU ---- */

#define CPU_TASKS_SHOWN 5 /* tasks per CPU in the text table; CSV and JSON have all */

struct cpu_cols {
	int cpu, who, kind, state, ns, pct;
};

static void cpu_row(struct vms_table *t, const struct cpu_cols *c, const struct vms_cpu_usage *u,
		    const char *who, const char *kind, const char *state, uint64_t ns)
{
	if (!ns || vms_table_row(t))
		return;
	vms_table_i64(t, c->cpu, u->cpu);
	vms_table_str(t, c->who, who);
	vms_table_str(t, c->kind, kind);
	if (state)
		vms_table_str(t, c->state, state);
	vms_table_u64(t, c->ns, ns);
	vms_table_f64(t, c->pct, u->span_ns ? 100.0 * (double)ns / (double)u->span_ns : 0.0);
}

static struct vms_table *build_cpu(const struct report_args *a, const void *vcpu, const void *cpu,
				   const struct vms_vmmap *map, int only_vm)
{
	struct vms_table *t = vms_table_new();
	bool table = a->format == CLI_FORMAT_TABLE;
	size_t nth, ncpu;
	const struct vms_vcpu_thread *th = vms_vcpu_threads(vcpu, &nth);
	const struct vms_cpu_usage *u = vms_cpu_usage(cpu, &ncpu);
	struct cpu_cols c;
	char who[64];

	if (!t)
		return NULL;
	c.cpu = vms_table_column(t, "cpu", "CPU", VMS_COL_I64, 1, 0, NULL);
	c.who = vms_table_column(t, "who", "Who", VMS_COL_STR, 1, 0, NULL);
	c.kind = vms_table_column(t, "kind", "Kind", VMS_COL_STR, 1, 0, NULL);
	c.state = vms_table_column(t, "state", "State", VMS_COL_STR, 1, 0, NULL);
	c.ns = vms_table_column(t, "ns", "Time", VMS_COL_U64, 1e9, 3, "s");
	c.pct = vms_table_column(t, "pct", "Share", VMS_COL_F64, 1, 1, "%");
	for (size_t i = 0; i < ncpu; i++) {
		uint64_t rest = 0;

		cpu_row(t, &c, &u[i], "idle", "idle", NULL, u[i].idle_ns);
		/* each VM's vCPUs, by state */
		for (size_t k = 0; k < nth; k++) {
			int vm = th[k].vm;
			bool seen = false;

			if (only_vm >= 0 && vm != only_vm)
				continue;
			if (a->exits.vcpu >= 0 && th[k].vcpu != a->exits.vcpu)
				continue;
			for (size_t j = 0; j < k && !seen; j++)
				seen = th[j].vm == vm && (only_vm < 0 || th[j].vm == only_vm) &&
				       (a->exits.vcpu < 0 || th[j].vcpu == a->exits.vcpu);
			if (seen)
				continue; /* its VM's rows are written */
			for (unsigned int st = 0; st <= VMS_VCPU_RUNNING; st++) {
				uint64_t ns = 0;

				for (size_t j = k; j < nth; j++)
					if (th[j].vm == vm &&
					    (a->exits.vcpu < 0 || th[j].vcpu == a->exits.vcpu))
						ns += u[i].vcpu_ns[j][st];
				snprintf(who, sizeof(who), "%s",
					 vm >= 0 && map ? vms_vmmap_vm_name(map, vm) : "VM");
				cpu_row(t, &c, &u[i], who, "vm",
					vms_vcpu_state_name((enum vms_vcpu_state)st), ns);
			}
		}
		for (size_t k = 0; k < u[i].ntasks; k++) {
			if (table && k >= CPU_TASKS_SHOWN) {
				rest += u[i].tasks[k].ns;
				continue;
			}
			snprintf(who, sizeof(who), "%s:%d",
				 u[i].tasks[k].comm[0] ? u[i].tasks[k].comm : "?",
				 u[i].tasks[k].pid);
			cpu_row(t, &c, &u[i], who, "task", NULL, u[i].tasks[k].ns);
		}
		if (rest) {
			snprintf(who, sizeof(who), "%zu other tasks",
				 u[i].ntasks - CPU_TASKS_SHOWN);
			cpu_row(t, &c, &u[i], who, "task", NULL, rest);
		}
		cpu_row(t, &c, &u[i], "unknown", "unknown", NULL, u[i].unknown_ns);
	}
	return t;
}

/* What report cpu inferred, per CPU. */
static void print_cpu_extras(const void *cpu)
{
	size_t n;
	const struct vms_cpu_usage *u = vms_cpu_usage(cpu, &n);

	for (size_t i = 0; i < n; i++)
		if (u[i].inferred_ns)
			printf("CPU %d: %.3f s given to tasks whose switch from idle is missing, "
			       "from the wakeup that woke them there on.\n",
			       u[i].cpu, (double)u[i].inferred_ns / 1e9);
}

/* "131us", "2.1ms" */
static const char *fmt_ns(uint64_t v, char *buf, size_t len)
{
	if (v < 1000)
		snprintf(buf, len, "%lluns", (unsigned long long)v);
	else if (v < 1000000)
		snprintf(buf, len, "%.3gus", (double)v / 1e3);
	else if (v < 1000000000)
		snprintf(buf, len, "%.3gms", (double)v / 1e6);
	else
		snprintf(buf, len, "%.3gs", (double)v / 1e9);
	return buf;
}

/* Counts of @h in [0, 1024 ns), then [2^(k-1), 2^k) ns up to its max: calls @fn for each. */
static void hist_buckets(const struct vms_hist *h, void (*fn)(void *, uint64_t, uint64_t, uint64_t),
			 void *ctx)
{
	int top = 64 - __builtin_clzll(h->max | 1);
	uint64_t prev = 0;

	for (int k = 10; h->count && k <= top && k < 64; k++) {
		uint64_t c = vms_hist_count_below(h, 1ULL << k);

		fn(ctx, k == 10 ? 0 : 1ULL << (k - 1), 1ULL << k, c - prev);
		prev = c;
	}
	if (h->count > prev)
		fn(ctx, 1ULL << (top < 64 ? top : 63), 0, h->count - prev);
}

static void bucket_peak(void *ctx, uint64_t lo, uint64_t hi, uint64_t n)
{
	uint64_t *peak = ctx;

	(void)lo;
	(void)hi;
	if (n > *peak)
		*peak = n;
}

static void bucket_print(void *ctx, uint64_t lo, uint64_t hi, uint64_t n)
{
	static const char bars[] = "##################################################";
	uint64_t peak = *(uint64_t *)ctx;
	char a[16], b[16];

	printf("  %8s - %-8s %10" PRIu64 " %.*s\n", lo ? fmt_ns(lo, a, sizeof(a)) : "0",
	       hi ? fmt_ns(hi, b, sizeof(b)) : "", n, (int)(50 * n / (peak ? peak : 1)), bars);
}

static void bucket_json(void *ctx, uint64_t lo, uint64_t hi, uint64_t n)
{
	struct vms_json *j = ctx;

	vms_json_object_begin(j, NULL);
	vms_json_u64(j, "lo_ns", lo);
	if (hi)
		vms_json_u64(j, "hi_ns", hi);
	else
		vms_json_null(j, "hi_ns");
	vms_json_u64(j, "count", n);
	vms_json_object_end(j);
}

/* A histogram of @h by powers of two, as text bars. */
static void print_hist(const char *title, const struct vms_hist *h)
{
	uint64_t peak = 0;

	if (!h->count)
		return;
	printf("\n%s (%" PRIu64 "):\n", title, h->count);
	hist_buckets(h, bucket_peak, &peak);
	hist_buckets(h, bucket_print, &peak);
}

static void json_hist(struct vms_json *j, const char *key, const struct vms_hist *h)
{
	vms_json_array_begin(j, key);
	hist_buckets(h, bucket_json, j);
	vms_json_array_end(j);
}

/* Everything selected, in one row (for the histograms and the top preemptors). */
static int total_row(const struct row *rows, size_t n, struct row *all)
{
	memset(all, 0, sizeof(*all));
	for (size_t i = 0; i < n; i++) {
		for (unsigned int st = 0; st < VMS_VCPU_NSTATES; st++)
			all->ns[st] += rows[i].ns[st];
		all->span += rows[i].span;
		all->split |= rows[i].split;
		if (vms_hist_merge(&all->wake, &rows[i].wake) ||
		    vms_hist_merge(&all->preempt, &rows[i].preempt) ||
		    by_add(all, rows[i].by, rows[i].nby))
			return -ENOMEM;
	}
	if (all->nby > 1)
		qsort(all->by, all->nby, sizeof(*all->by), by_cmp);
	return 0;
}

static void print_steal_extras(const struct row *rows, size_t n, const struct row *all,
			       const struct vms_vcpu_summary *sum, const struct vms_vmmap *map)
{
	uint64_t pre = all->ns[VMS_VCPU_PREEMPTED];

	if (all->nby) {
		printf("\nTop preemptors (of %.3f s preempted):\n", (double)pre / 1e9);
		printf("  %-16s %8s %10s %12s %7s\n", "task", "pid", "count", "time", "share");
		for (size_t k = 0; k < all->nby && k < 10; k++)
			printf("  %-16s %8d %10" PRIu64 " %9.3f ms %6.1f%%\n",
			       all->by[k].comm[0] ? all->by[k].comm : "?", all->by[k].pid,
			       all->by[k].count, (double)all->by[k].ns / 1e6,
			       pre ? 100.0 * (double)all->by[k].ns / (double)pre : 0.0);
	}
	print_hist("Preemptions by length", &all->preempt);
	printf("\nSteal is preempted + waiting: the run delay that KVM's steal-time clock shows "
	       "the guest.\n");
	if (!sum->has_entry_exit) {
		printf("Virtualization overhead (hypervisor time): not measurable, this trace has "
		       "no kvm_entry/kvm_exit.\n");
		return;
	}
	printf("Virtualization overhead: hypervisor + vmm time of each VM's vCPUs, as a share of "
	       "their time on a CPU:\n");
	for (size_t i = 0; i < n;) {
		uint64_t host = 0, on = 0;
		int vm = rows[i].vm;
		const char *name = vm >= 0 && map ? vms_vmmap_vm_name(map, vm) : NULL;

		for (; i < n && rows[i].vm == vm; i++) {
			host += rows[i].ns[VMS_VCPU_HYPERVISOR] + rows[i].ns[VMS_VCPU_VMM];
			on += rows[i].ns[VMS_VCPU_GUEST] + rows[i].ns[VMS_VCPU_HYPERVISOR] +
			      rows[i].ns[VMS_VCPU_VMM];
		}
		printf("  %-20s %6.2f%%  (%.3f s of %.3f s)\n", name ? name : "-",
		       on ? 100.0 * (double)host / (double)on : 0.0, (double)host / 1e9,
		       (double)on / 1e9);
	}
}

/* The header says what the trace cannot split. */
static void print_mode(const struct vms_vcpu_summary *s)
{
	if (!s->has_entry_exit)
		printf("  kvm_entry and kvm_exit are absent from this trace (KVM-PVM hosts never "
		       "emit "
		       "them): guest,\n  hypervisor and vmm time are one state, running; a sleep "
		       "is "
		       "idle when the vCPU's\n  next kvm event is kvm_vcpu_wakeup (a halt), else "
		       "blocked.\n");
	else
		printf("  guest, hypervisor and vmm time split by kvm_entry, kvm_exit and "
		       "kvm_userspace_exit\n");
}

static void print_notes(const struct vms_vcpu_summary *s)
{
	if (s->inferred)
		printf("%" PRIu64 " switch-ins were missing from the trace and inferred from "
		       "the threads' own events;\nthe time they may misplace is at most %.3f ms "
		       "in all (the Uncertain column).\n",
		       s->inferred, (double)s->uncertain_ns / 1e6);
	if (s->lost_windows)
		printf("Lost events: %" PRIu64 " in %" PRIu64 " windows: the threads of those "
		       "CPUs are unknown until an event\nsays their state again.\n",
		       s->lost_events, s->lost_windows);
	else
		printf("Lost events: none.\n");
}

/* The reports of the state model, in the order they print. */
enum { R_VCPU, R_CPU, R_SCHED, R_STEAL, R_N };
static const char *const report_names[R_N] = { "vcpu", "cpu", "sched", "steal" };

/* Which of them @list ("vcpu,cpu,...") asks for; false when it names another. */
bool report_states_parse(const char *list, bool *want)
{
	const char *p = list;

	memset(want, 0, R_N * sizeof(*want));
	while (*p) {
		size_t len = strcspn(p, ","), k;

		for (k = 0; k < R_N; k++)
			if (strlen(report_names[k]) == len && !strncmp(p, report_names[k], len))
				break;
		if (k == R_N)
			return false;
		want[k] = true;
		p += len;
		p += *p == ',';
	}
	return true;
}

/* One report's rows (and histogram, preemptors) into the current JSON object. */
static void json_report(struct vms_json *j, int which, const struct vms_table *t,
			const struct row *all)
{
	vms_table_json(t, j, "rows");
	if (which == R_SCHED)
		json_hist(j, "histogram", &all->wake);
	if (which == R_STEAL) {
		json_hist(j, "histogram", &all->preempt);
		vms_json_array_begin(j, "preemptors");
		for (size_t k = 0; k < all->nby; k++) {
			vms_json_object_begin(j, NULL);
			vms_json_i64(j, "pid", all->by[k].pid);
			vms_json_string(j, "comm", all->by[k].comm);
			vms_json_u64(j, "count", all->by[k].count);
			vms_json_u64(j, "ns", all->by[k].ns);
			vms_json_object_end(j);
		}
		vms_json_array_end(j);
	}
}

static void json_begin(struct vms_json *j, const struct report_args *a, struct vms_trace *tr,
		       const struct vms_vcpu_summary *s)
{
	vms_json_init(j, stdout, true);
	vms_json_object_begin(j, NULL);
	report_json_trace(j, a, tr);
	vms_json_object_begin(j, "summary");
	vms_json_bool(j, "kvm_entry_exit", s->has_entry_exit);
	vms_json_u64(j, "start_ts", s->start_ts);
	vms_json_u64(j, "end_ts", s->end_ts);
	vms_json_u64(j, "inferred_switch_ins", s->inferred);
	vms_json_u64(j, "uncertain_ns", s->uncertain_ns);
	vms_json_u64(j, "lost_events", s->lost_events);
	vms_json_u64(j, "lost_windows", s->lost_windows);
	vms_json_object_end(j);
}

/*
 * report vcpu, cpu, sched and steal: one pass of the state model (and of the CPU analysis
 * for cpu), then each report asked for. With one report, JSON has its rows at the top;
 * with several, each is a member named after it.
 */
int report_vcpu(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map,
		int only_vm)
{
	struct vms_vcpu_opts o = { sizeof(o), a->from, a->to, true };
	struct vms_vcpu_summary sum;
	struct vms_session *s = NULL;
	struct vms_table *t[R_N] = { NULL };
	struct row *rows = NULL, all = { 0 };
	const char *error;
	size_t n = 0;
	void *priv, *cpriv = NULL;
	bool want[R_N];
	int ret, rc, nwant = 0;
	struct vms_json j;

	report_states_parse(a->analysis, want);
	for (int k = 0; k < R_N; k++)
		nwant += want[k];
	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_vcpu_ops, &o, &priv)) ||
	    (want[R_CPU] &&
	     (ret = vms_session_add(s, &vms_cpu_ops,
				    &(struct vms_cpu_opts){ sizeof(struct vms_cpu_opts), priv },
				    &cpriv)))) {
		vms_session_free(s);
		return cli_error(CMD, "cannot set up the analysis: %s", vms_strerror(ret));
	}
	rc = report_run(a, s, &error);
	vms_vcpu_summary(priv, &sum);
	if (build_rows(a, priv, map, only_vm, &rows, &n) || total_row(rows, n, &all)) {
		rc = cli_error(CMD, "out of memory");
		goto out;
	}
	for (int k = 0; k < R_N; k++) {
		if (!want[k])
			continue;
		t[k] = k == R_CPU     ? build_cpu(a, priv, cpriv, map, only_vm)
		       : k == R_SCHED ? build_sched(a, rows, n, map)
		       : k == R_STEAL ? build_steal(a, rows, n, map)
				      : build_table(a, rows, n, &sum, map);
		if (!t[k]) {
			rc = cli_error(CMD, "out of memory");
			goto out;
		}
	}
	if (a->format == CLI_FORMAT_JSON) {
		json_begin(&j, a, tr, &sum);
		for (int k = 0; k < R_N; k++) {
			if (!want[k])
				continue;
			if (nwant > 1)
				vms_json_object_begin(&j, report_names[k]);
			json_report(&j, k, t[k], &all);
			if (nwant > 1)
				vms_json_object_end(&j);
		}
		if (error)
			vms_json_string(&j, "error", error);
		vms_json_object_end(&j);
		vms_json_finish(&j);
	} else if (a->format == CLI_FORMAT_CSV) {
		for (int k = 0; k < R_N; k++)
			if (want[k])
				vms_table_print(t[k], stdout, VMS_FORMAT_CSV);
	} else {
		printf("vmscope report %s: %s\n", a->analysis, a->file);
		report_print_trace(tr);
		printf("  window %.3f s from %.6f s, %s, %s\n",
		       (double)(sum.end_ts - sum.start_ts) / 1e9, (double)sum.start_ts / 1e9,
		       a->vm ? a->vm : "all VMs", a->exits.vcpu >= 0 ? "one vCPU" : "all vCPUs");
		print_mode(&sum);
		if (!n)
			printf("\nNo vCPU thread in this trace (no kvm event, no thread named "
			       "\"CPU n/KVM\", and no VM map in the file).\n");
		for (int k = 0; n && k < R_N; k++) {
			if (!want[k])
				continue;
			if (nwant > 1)
				printf("\n== %s\n", report_names[k]);
			printf("\n");
			if (k == R_VCPU)
				printf("Shares of each row's time.\n");
			else if (k == R_CPU)
				printf("Shares of each CPU's time.\n");
			vms_table_print(t[k], stdout, VMS_FORMAT_TABLE);
			if (k == R_SCHED)
				print_hist("Wakeup to running", &all.wake);
			else if (k == R_STEAL)
				print_steal_extras(rows, n, &all, &sum, map);
			else if (k == R_CPU)
				print_cpu_extras(cpriv);
		}
		printf("\n");
		print_notes(&sum);
	}
out:
	fflush(stdout);
	if (error)
		cli_error(CMD, "%s (the report covers the records before it)", error);
	for (int k = 0; k < R_N; k++)
		vms_table_free(t[k]);
	free_rows(rows, n);
	vms_hist_free(&all.wake);
	vms_hist_free(&all.preempt);
	free(all.by);
	vms_session_free(s);
	return rc;
}
