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
	uint64_t from, to; /* --from, --to: ns after the first record (0: not given) */
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

#endif /* VMSCOPE_CLI_REPORT_H */
