/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmscope report's analyses (cmd-report.c parses the command line, opens the trace and
 * runs exits; report-<analysis>.c the others) and what they share.
 */
#ifndef VMSCOPE_CLI_REPORT_H
#define VMSCOPE_CLI_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "vmscope/analysis.h"
#include "vmscope/exits.h"
#include "vmscope/json.h"
#include "vmscope/vmmap.h"

enum sort_key {
	SORT_SAMPLES,
	SORT_EVENTS,
	SORT_TIME,
	SORT_AVG,
	SORT_MIN,
	SORT_MAX,
	SORT_P99,
	SORT_NAME
};

struct report_args {
	const char *analysis, *file, *buffer, *vm;
	struct vms_exits_opts exits; /* exits.vcpu is --vcpu for every analysis */
	bool per_vcpu, per_vm, quiet, verbose;
	bool html, heatmap; /* --html (to @output), irq --heatmap */
	const char *output; /* -o */
	uint64_t from, to;  /* --from, --to: ns after the first record (0: not given) */
	enum sort_key sort;
	enum cli_format format;
};

/* Run @s over its trace with progress on a terminal; *@error: what ended it, or NULL. */
int report_run(const struct report_args *a, struct vms_session *s, const char **error);
/* "  trace: version 7, zstd, ..." */
void report_print_trace(struct vms_trace *tr);
/* "file" and "trace" members of a JSON report. */
void report_json_trace(struct vms_json *j, const struct report_args *a, struct vms_trace *tr);

/* Whether @list ("vcpu,cpu,sched,steal", any of them) names only reports of the vCPU
 * state model; @want (4 entries) receives which. */
bool report_states_parse(const char *list, bool *want);
/* report vcpu, cpu, sched, steal (@a->analysis: one, or several with commas); @only_vm:
 * the --vm's index in @map, or -1. */
int report_vcpu(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map,
		int only_vm);
/* report irq: interrupts per VM, vCPU, source and vector, or (--heatmap) per second and
 * sub-second offset. */
int report_irq(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map,
	       int only_vm);
/* The VM (index in @map) of thread @tid: a vCPU thread of the map, the VM's own pid, or its
 * "kvm-pit/PID" kernel thread; -1 when nothing says. */
int report_vm_of_thread(const struct vms_vmmap *map, struct vms_trace *tr, int tid);
/* The vCPU index of thread @tid: from the map, or its name "CPU N/KVM"; -1 unknown. */
int report_vcpu_of_thread(const struct vms_vmmap *map, struct vms_trace *tr, int tid);
/* report --html: one self-contained page of charts, written to @a->output atomically. */
int report_html(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map);

#endif /* VMSCOPE_CLI_REPORT_H */
