/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmscope testvm: what cmd-testvm.c (options, the built-in VMM, output) shares with
 * testvm-qemu.c (the same schedule under QEMU).
 */
#ifndef VMSCOPE_CLI_TESTVM_H
#define VMSCOPE_CLI_TESTVM_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "vmscope/testvm.h"

#define TESTVM_MAX_QEMU_ARGS 32

struct testvm_args {
	struct vms_testvm_opts opts;
	struct vms_testvm_phase phases[VMS_TESTVM_MAX_PHASES];
	int pin[VMS_TESTVM_MAX_VCPUS];
	const char *name, *truth, *pidfile;
	bool stats, daemon, quiet, verbose;
	enum cli_format format;
	/* --qemu: the binary, and what to add to its command line */
	const char *qemu;
	const char *qemu_args[TESTVM_MAX_QEMU_ARGS];
	unsigned int nqemu_args;
};

/* Write the truth of @vm to @f (opened early, so a bad path fails before the run), close
 * it; on failure the CLI error naming @path is printed: CLI_EXIT_FAIL, else 0. */
int testvm_close_truth(struct vms_testvm *vm, FILE *f, const char *path);

/* The summary table of a VM (run here or read back from a dump) on stdout. */
void testvm_print_summary(struct vms_testvm *vm);

/*
 * testvm_qemu_run() - run the schedule of @a under QEMU, write the truth, print the summary
 * @ready_fd: with --daemon, where to write 'R' once the guest runs (or 'E'), else -1
 * Return: the command's exit code.
 */
int testvm_qemu_run(const struct testvm_args *a, int ready_fd);

#endif /* VMSCOPE_CLI_TESTVM_H */
