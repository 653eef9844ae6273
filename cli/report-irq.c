// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope report irq: the interrupts KVM delivered to its guests (vmscope/irq.h), one row
 * per VM, vCPU, source and vector (or GSI) with its count and rate; or, with --heatmap,
 * the cells of the sub-second-offset heatmap (seed 003) as rows: second, offset, source,
 * vector, count. The same numbers as the HTML report's heatmap, in table, CSV or JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "vmscope/irq.h"
#include "vmscope/table.h"

#define CMD "report"

int report_vm_of_thread(const struct vms_vmmap *map, struct vms_trace *tr, int tid)
{
	int vm = map ? vms_vmmap_vm_of_tid(map, tid) : -1, pid;
	const char *comm = vms_trace_comm(tr, tid);
	size_t n = map ? vms_vmmap_nvms(map) : 0;

	if (vm >= 0)
		return vm;
	/* KVM's PIT thread is named after its VM's process */
	if (!comm || sscanf(comm, "kvm-pit/%d", &pid) != 1)
		pid = tid;
	for (size_t i = 0; i < n; i++)
		if (vms_vmmap_vm_pid(map, (int)i) == pid)
			return (int)i;
	return -1;
}

int report_vcpu_of_thread(const struct vms_vmmap *map, struct vms_trace *tr, int tid)
{
	int vcpu = map ? vms_vmmap_vcpu_of_tid(map, tid) : -1;
	const char *comm;
	unsigned int idx;
	char tail[8];

	if (vcpu >= 0)
		return vcpu;
	comm = vms_trace_comm(tr, tid);
	if (comm && sscanf(comm, "CPU %u/%7s", &idx, tail) == 2 && !strcmp(tail, "KVM"))
		return (int)idx;
	return -1;
}

struct irow {
	int vm, vcpu, tid; /* tid -1 with --per-vm */
	enum vms_irq_source source;
	uint32_t key;
	uint64_t count;
};

static int irow_cmp(const void *pa, const void *pb)
{
	const struct irow *a = pa, *b = pb;

	if (a->vm != b->vm)
		return a->vm < b->vm ? -1 : 1;
	if (a->vcpu != b->vcpu)
		return a->vcpu < b->vcpu ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->source != b->source)
		return a->source < b->source ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

/* The rows of @priv for the selection of @a, merged per VM with --per-vm, sorted. */
static int build_rows(const struct report_args *a, const void *priv, struct vms_trace *tr,
		      const struct vms_vmmap *map, int only_vm, struct irow **out, size_t *nout)
{
	size_t n, nr = 0;
	const struct vms_irq_row *r = vms_irq_rows(priv, &n);
	struct irow *rows = calloc(n ? n : 1, sizeof(*rows));

	*out = rows;
	*nout = 0;
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct irow x = { report_vm_of_thread(map, tr, r[i].tid),
				  r[i].dest,
				  r[i].tid,
				  r[i].source,
				  r[i].key,
				  r[i].count };
		size_t k = nr;

		if (r[i].source == VMS_IRQ_INJ_VIRQ)
			x.vcpu = report_vcpu_of_thread(map, tr, r[i].tid);
		if (only_vm >= 0 && x.vm != only_vm)
			continue;
		if (a->exits.vcpu >= 0 && x.vcpu != a->exits.vcpu)
			continue;
		if (a->per_vm) {
			x.vcpu = x.tid = -1;
			for (k = 0; k < nr; k++)
				if (rows[k].vm == x.vm && rows[k].source == x.source &&
				    rows[k].key == x.key)
					break;
		}
		if (k == nr) {
			rows[nr++] = x;
		} else {
			rows[k].count += x.count;
		}
	}
	if (nr > 1)
		qsort(rows, nr, sizeof(*rows), irow_cmp);
	*nout = nr;
	return 0;
}

static struct vms_table *build_table(const struct report_args *a, const struct irow *rows, size_t n,
				     const struct vms_irq_summary *sum, const struct vms_vmmap *map)
{
	struct vms_table *t = vms_table_new();
	bool table = a->format == CLI_FORMAT_TABLE;
	int c_vm, c_vcpu = -1, c_tid = -1, c_src, c_key, c_name, c_n, c_rate;
	char buf[32];

	if (!t)
		return NULL;
	c_vm = vms_table_column(t, "vm", "VM", VMS_COL_STR, 1, 0, NULL);
	if (!a->per_vm) {
		c_vcpu = vms_table_column(t, "vcpu", "vCPU", VMS_COL_I64, 1, 0, NULL);
		c_tid = vms_table_column(t, "tid", "Thread", VMS_COL_I64, 1, 0, NULL);
	}
	c_src = vms_table_column(t, "source", "Source", VMS_COL_STR, 1, 0, NULL);
	c_key = table ? -1 : vms_table_column(t, "key", NULL, VMS_COL_U64, 1, 0, NULL);
	c_name = vms_table_column(t, "name", "Vector", VMS_COL_STR, 1, 0, NULL);
	c_n = vms_table_column(t, "count", "Count", VMS_COL_U64, 1, 0, NULL);
	c_rate = vms_table_column(t, "per_s", "Rate/s", VMS_COL_F64, 1, 1, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct irow *r = &rows[i];
		const char *vm = r->vm >= 0 && map ? vms_vmmap_vm_name(map, r->vm) : NULL;

		if (vms_table_row(t))
			break;
		vms_table_str(t, c_vm, vm ? vm : "-");
		if (c_vcpu >= 0 && r->vcpu >= 0)
			vms_table_i64(t, c_vcpu, r->vcpu);
		if (c_tid >= 0)
			vms_table_i64(t, c_tid, r->tid);
		vms_table_str(t, c_src, vms_irq_source_name(r->source));
		vms_table_u64(t, c_key, r->key);
		vms_table_str(t, c_name, vms_irq_key_name(r->source, r->key, buf, sizeof(buf)));
		vms_table_u64(t, c_n, r->count);
		if (sum->span_ns)
			vms_table_f64(t, c_rate, (double)r->count * 1e9 / (double)sum->span_ns);
	}
	return t;
}

/* --heatmap: one row per non-empty cell of every series, by series, second and offset. */
static struct vms_table *build_heatmap(const struct report_args *a, const void *priv,
				       const struct vms_irq_summary *sum)
{
	struct vms_table *t = vms_table_new();
	size_t ns;
	const struct vms_irq_series *se = vms_irq_series(priv, &ns);
	int c_sec, c_off, c_src, c_key, c_name, c_n;
	char buf[32];

	if (!t)
		return NULL;
	c_sec = vms_table_column(t, "second", "Second", VMS_COL_U64, 1, 0, NULL);
	c_off = vms_table_column(t, "offset_ns", "Offset", VMS_COL_U64, 1e6, 0, "ms");
	c_src = vms_table_column(t, "source", "Source", VMS_COL_STR, 1, 0, NULL);
	c_key = a->format == CLI_FORMAT_TABLE
			? -1
			: vms_table_column(t, "key", NULL, VMS_COL_U64, 1, 0, NULL);
	c_name = vms_table_column(t, "name", "Vector", VMS_COL_STR, 1, 0, NULL);
	c_n = vms_table_column(t, "count", "Count", VMS_COL_U64, 1, 0, NULL);
	for (size_t i = 0; i < ns; i++)
		for (unsigned int s = 0; s < sum->seconds; s++)
			for (unsigned int b = 0; b < sum->buckets; b++) {
				uint64_t c = vms_irq_cell(priv, i, s, b);

				if (!c || vms_table_row(t))
					continue;
				vms_table_u64(t, c_sec, s);
				vms_table_u64(t, c_off, b * sum->bucket_ns);
				vms_table_str(t, c_src, vms_irq_source_name(se[i].source));
				vms_table_u64(t, c_key, se[i].key);
				vms_table_str(t, c_name,
					      vms_irq_key_name(se[i].source, se[i].key, buf,
							       sizeof(buf)));
				vms_table_u64(t, c_n, c);
			}
	return t;
}

static void print_notes(const struct vms_irq_summary *s)
{
	uint64_t total = 0;

	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		total += s->events[k];
	printf("\nIn the whole trace, by source:\n");
	if (!total)
		printf("No interrupt in this trace: none of kvm_inj_virq, kvm_apic_accept_irq, "
		       "kvm_msi_set_irq,\nkvm_set_irq was recorded, or none fired.\n");
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		if (s->events[k])
			printf("%-16s %10" PRIu64 "%s\n",
			       vms_irq_source_name((enum vms_irq_source)k), s->events[k],
			       s->heatmap_sources & 1u << k ? "  (in the heatmap)" : "");
	if (!s->events[VMS_IRQ_INJ_VIRQ] && s->has_format[VMS_IRQ_INJ_VIRQ])
		printf("kvm_inj_virq never fired (KVM-PVM hosts never emit it).\n");
	if (s->deasserts)
		printf("kvm_set_irq: %" PRIu64 " deasserts (level 0) are not interrupts and were "
		       "not counted.\n",
		       s->deasserts);
	if (s->lost_windows)
		printf("Lost events: %" PRIu64 " in %" PRIu64 " windows: interrupts in them are "
		       "not counted.\n",
		       s->lost_events, s->lost_windows);
	else
		printf("Lost events: none.\n");
}

static void json_summary(struct vms_json *j, const struct vms_irq_summary *s)
{
	vms_json_object_begin(j, "summary");
	vms_json_u64(j, "span_ns", s->span_ns);
	vms_json_u64(j, "first_second", s->first_second);
	vms_json_u64(j, "seconds", s->seconds);
	vms_json_u64(j, "buckets", s->buckets);
	vms_json_u64(j, "bucket_ns", s->bucket_ns);
	vms_json_array_begin(j, "heatmap_sources");
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		if (s->heatmap_sources & 1u << k)
			vms_json_string(j, NULL, vms_irq_source_name((enum vms_irq_source)k));
	vms_json_array_end(j);
	vms_json_object_begin(j, "events");
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		vms_json_u64(j, vms_irq_source_name((enum vms_irq_source)k), s->events[k]);
	vms_json_object_end(j);
	vms_json_object_begin(j, "traced");
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		vms_json_bool(j, vms_irq_source_name((enum vms_irq_source)k), s->has_format[k]);
	vms_json_object_end(j);
	vms_json_u64(j, "set_irq_deasserts", s->deasserts);
	vms_json_u64(j, "lost_events", s->lost_events);
	vms_json_u64(j, "lost_windows", s->lost_windows);
	vms_json_object_end(j);
}

int report_irq(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map,
	       int only_vm)
{
	struct vms_irq_opts o = { sizeof(o), 0 };
	struct vms_irq_summary sum;
	struct vms_session *s = NULL;
	struct vms_table *t = NULL;
	struct irow *rows = NULL;
	const char *error = NULL;
	size_t n = 0;
	void *priv;
	int ret, rc;

	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_irq_ops, &o, &priv))) {
		vms_session_free(s);
		return cli_error(CMD, "cannot set up the analysis: %s", vms_strerror(ret));
	}
	rc = report_run(a, s, &error);
	vms_irq_summary(priv, &sum);
	if (sum.error && !error)
		error = vms_strerror(sum.error);
	if (a->heatmap)
		t = build_heatmap(a, priv, &sum);
	else if (!build_rows(a, priv, tr, map, only_vm, &rows, &n))
		t = build_table(a, rows, n, &sum, map);
	if (!t) {
		rc = cli_error(CMD, "out of memory");
	} else if (a->format == CLI_FORMAT_JSON) {
		struct vms_json j;

		vms_json_init(&j, stdout, true);
		vms_json_object_begin(&j, NULL);
		report_json_trace(&j, a, tr);
		json_summary(&j, &sum);
		vms_table_json(t, &j, a->heatmap ? "cells" : "rows");
		if (error)
			vms_json_string(&j, "error", error);
		vms_json_object_end(&j);
		vms_json_finish(&j);
	} else if (a->format == CLI_FORMAT_CSV) {
		vms_table_print(t, stdout, VMS_FORMAT_CSV);
	} else {
		char srcs[96] = "";

		for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
			if (sum.heatmap_sources & 1u << k)
				snprintf(srcs + strlen(srcs), sizeof(srcs) - strlen(srcs), "%s%s",
					 srcs[0] ? " + " : "",
					 vms_irq_source_name((enum vms_irq_source)k));
		printf("vmscope report irq%s: %s\n", a->heatmap ? " --heatmap" : "", a->file);
		report_print_trace(tr);
		printf("  span %.3f s, %s, %s; heatmap: %s in %u buckets of %.0f ms a second\n\n",
		       (double)sum.span_ns / 1e9, a->vm ? a->vm : "all VMs",
		       a->exits.vcpu >= 0 ? "one vCPU" : "all vCPUs", srcs, sum.buckets,
		       (double)sum.bucket_ns / 1e6);
		vms_table_print(t, stdout, VMS_FORMAT_TABLE);
		print_notes(&sum);
	}
	fflush(stdout);
	if (error)
		cli_error(CMD, "%s (the report covers the records before it)", error);
	vms_table_free(t);
	free(rows);
	vms_session_free(s);
	return error ? CLI_EXIT_FAIL : rc;
}
