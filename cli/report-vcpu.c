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
#include "vmscope/table.h"
#include "vmscope/vcpu.h"

#define CMD "report"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct row {
	int vm, vcpu, tid; /* tid -1 in a VM's row */
	uint64_t ns[VMS_VCPU_NSTATES], span;
	uint64_t exits, migrations, inferred, uncertain_ns, wakeups;
	bool split;
	struct vms_hist wake;
	uint64_t *cpu_ns;
	unsigned int ncpu;
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
	r->split |= th->split;
	if (!r->cpu_ns) {
		r->cpu_ns = calloc(th->ncpu ? th->ncpu : 1, sizeof(*r->cpu_ns));
		if (!r->cpu_ns)
			return -ENOMEM;
		r->ncpu = th->ncpu;
	}
	for (unsigned int c = 0; c < th->ncpu && c < r->ncpu; c++)
		r->cpu_ns[c] += th->cpu_ns[c];
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
	return 0;
}

static void free_rows(struct row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		vms_hist_free(&rows[i].wake);
		free(rows[i].cpu_ns);
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
	c_vm = vms_table_column(t, "vm", "VM", VMS_COL_STR, 1, 0, NULL);
	if (!a->per_vm) {
		c_vcpu = vms_table_column(t, "vcpu", "vCPU", VMS_COL_I64, 1, 0, NULL);
		c_tid = vms_table_column(t, "tid", "Thread", VMS_COL_I64, 1, 0, NULL);
	}
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
	c_inf = vms_table_column(t, "inferred_switch_ins", table ? NULL : NULL, VMS_COL_U64, 1, 0,
				 NULL);
	c_unc = vms_table_column(t, "uncertain_ns", "Uncertain", VMS_COL_U64, 1e6, 2, "ms");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		const char *vm = r->vm >= 0 && map ? vms_vmmap_vm_name(map, r->vm) : NULL;

		if (vms_table_row(t))
			break;
		vms_table_str(t, c_vm, vm ? vm : "-");
		if (c_vcpu >= 0 && r->vcpu >= 0)
			vms_table_i64(t, c_vcpu, r->vcpu);
		if (c_tid >= 0)
			vms_table_i64(t, c_tid, r->tid);
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

static void print_notes(const struct vms_vcpu_summary *s)
{
	if (!s->has_entry_exit)
		printf("\nkvm_entry and kvm_exit are absent from this trace (KVM-PVM hosts never "
		       "emit them): guest,\nhypervisor and vmm time are one state, running; a "
		       "sleep is idle when the vCPU's\nnext kvm event is kvm_vcpu_wakeup (a halt), "
		       "else blocked.\n");
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

static void print_json(const struct report_args *a, struct vms_trace *tr,
		       const struct vms_vcpu_summary *s, const struct vms_table *t,
		       const char *error)
{
	struct vms_json j;

	vms_json_init(&j, stdout, true);
	vms_json_object_begin(&j, NULL);
	report_json_trace(&j, a, tr);
	vms_json_object_begin(&j, "summary");
	vms_json_bool(&j, "kvm_entry_exit", s->has_entry_exit);
	vms_json_u64(&j, "start_ts", s->start_ts);
	vms_json_u64(&j, "end_ts", s->end_ts);
	vms_json_u64(&j, "inferred_switch_ins", s->inferred);
	vms_json_u64(&j, "uncertain_ns", s->uncertain_ns);
	vms_json_u64(&j, "lost_events", s->lost_events);
	vms_json_u64(&j, "lost_windows", s->lost_windows);
	vms_json_object_end(&j);
	vms_table_json(t, &j, "rows");
	if (error)
		vms_json_string(&j, "error", error);
	vms_json_object_end(&j);
	vms_json_finish(&j);
}

int report_vcpu(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map,
		int only_vm)
{
	struct vms_vcpu_opts o = { sizeof(o), a->from, a->to, true };
	struct vms_vcpu_summary sum;
	struct vms_session *s = NULL;
	struct vms_table *t = NULL;
	struct row *rows = NULL;
	const char *error;
	size_t n = 0;
	void *priv;
	int ret, rc;

	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_vcpu_ops, &o, &priv))) {
		vms_session_free(s);
		return cli_error(CMD, "cannot set up the analysis: %s", vms_strerror(ret));
	}
	rc = report_run(a, s, &error);
	vms_vcpu_summary(priv, &sum);
	if (build_rows(a, priv, map, only_vm, &rows, &n) ||
	    !(t = build_table(a, rows, n, &sum, map))) {
		rc = cli_error(CMD, "out of memory");
	} else if (a->format == CLI_FORMAT_JSON) {
		print_json(a, tr, &sum, t, error);
	} else if (a->format == CLI_FORMAT_CSV) {
		vms_table_print(t, stdout, VMS_FORMAT_CSV);
	} else {
		printf("vmscope report vcpu: %s\n", a->file);
		report_print_trace(tr);
		printf("  window %.3f s from %.6f s, %s, %s; shares of each row's time\n\n",
		       (double)(sum.end_ts - sum.start_ts) / 1e9, (double)sum.start_ts / 1e9,
		       a->vm ? a->vm : "all VMs", a->exits.vcpu >= 0 ? "one vCPU" : "all vCPUs");
		if (!n)
			printf("No vCPU thread in this trace (no kvm event, no thread named "
			       "\"CPU n/KVM\", and no VM map in the file).\n");
		else
			vms_table_print(t, stdout, VMS_FORMAT_TABLE);
		print_notes(&sum);
	}
	fflush(stdout);
	if (error)
		cli_error(CMD, "%s (the report covers the records before it)", error);
	vms_table_free(t);
	free_rows(rows, n);
	vms_session_free(s);
	return rc;
}
