/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmscope validate's parts (cmd-validate.c: options, snapshots, the interval and the
 * output; cmd-validate-calibrate.c: the calibration run) and what they share.
 */
#ifndef VMSCOPE_CLI_VALIDATE_H
#define VMSCOPE_CLI_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "vmscope/acct.h"
#include "vmscope/json.h"

/* Exit status when a check failed (1 and 2 are errors and usage errors). */
#define VALIDATE_EXIT_CHECK_FAILED 3

struct validate_args {
	int pid;
	const char *guest, *domain, *uri;
	const char *save, *cmp_a, *cmp_b, *trace;
	uint64_t interval_ns, phase_ns;
	unsigned int vcpus;
	bool calibrate, quiet, verbose;
	enum cli_format format;
};

/* Resolve -p/-g/-d (or the only VM) into a->pid (and a->domain for a libvirt domain). */
int validate_find_vm(struct validate_args *a);
/* Read a->pid's sources now; on failure the CLI error has been printed. */
int validate_snapshot(const struct validate_args *a, struct vms_acct **out);
/* The checks as text (all, or with @quiet only warn and fail), then the verdict line. */
void validate_print_checks(const struct vms_acct_report *r, bool quiet);
/* "interval_s", "sources", "checks", "fails", "warns", "verdict" members. */
void validate_json_report(struct vms_json *j, const struct vms_acct_report *r);
/* vmscope validate --calibrate. */
int validate_calibrate(const struct validate_args *a);

#endif /* VMSCOPE_CLI_VALIDATE_H */
