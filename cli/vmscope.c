// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope: what every virtual machine on a KVM host really does with its CPUs, and what
 * the hypervisor costs it. This file is the dispatcher: global options, help, and the
 * table of subcommands (one file each: cmd-<name>.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vmscope/vmscope.h"

static const struct vms_cmd *const commands[] = {
	&cmd_testvm, &cmd_stat,	  &cmd_top,    &cmd_serve,
	&cmd_record, &cmd_report, &cmd_export, &cmd_validate,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmscope [--version] [--help] COMMAND [ARGS...]\n\n"
		   "Shows what every virtual machine on a KVM host does with its CPUs and what\n"
		   "the hypervisor costs it.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "  %-10s %s\n", "help", "show the help of a command: vmscope help COMMAND");
	fprintf(f, "\nRun 'vmscope COMMAND --help' for a command's options; the manual pages\n"
		   "are in doc/ (vmscope.md, vmscope-COMMAND.md).\n");
}

static const struct vms_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct vms_cmd *cmd;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vmscope %s\n", vms_version());
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		cmd = find_command(argv[2]);
		if (!cmd)
			return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
		fputs(cmd->usage, stdout);
		return 0;
	}
	if (argv[1][0] == '-')
		return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
	cmd = find_command(argv[1]);
	if (!cmd)
		return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help")) {
			fputs(cmd->usage, stdout);
			return 0;
		}
	}
	return cmd->run(argc - 1, argv + 1);
}
