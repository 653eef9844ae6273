/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vmscope command: shared declarations of the subcommands (one file each,
 * cmd-<name>.c) and of the small helpers they share: error messages for people, option
 * value parsing, the output format switch.
 */
#ifndef VMSCOPE_CLI_H
#define VMSCOPE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct vms_cmd {
	const char *name;
	const char *summary; /* one line for `vmscope --help` */
	const char *usage;   /* the whole --help text */
	int (*run)(int argc, char **argv);
};

extern const struct vms_cmd cmd_testvm;
extern const struct vms_cmd cmd_stat;
extern const struct vms_cmd cmd_top;
extern const struct vms_cmd cmd_serve;
extern const struct vms_cmd cmd_report;
extern const struct vms_cmd cmd_record;
extern const struct vms_cmd cmd_export;
extern const struct vms_cmd cmd_validate;

/* Exit codes: 0 success, 1 the work failed, 2 the command line was wrong. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

enum cli_format { CLI_FORMAT_TABLE, CLI_FORMAT_CSV, CLI_FORMAT_JSON };

/* "vmscope CMD: message" on stderr; returns CLI_EXIT_FAIL. */
__attribute__((format(printf, 2, 3))) int cli_error(const char *cmd, const char *fmt, ...);
/* "vmscope CMD: message (see 'vmscope CMD --help')" on stderr; returns CLI_EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int cli_usage_error(const char *cmd, const char *fmt, ...);
/* The error for an option getopt_long() rejected (optopt / argv[optind - 1]). */
int cli_bad_option(const char *cmd, char **argv);

/*
 * The options every command shares, for the default: of its getopt switch on @c: -q sets
 * *quiet and -v *verbose (NULL: the command has no such option), -h prints @usage and
 * exits 0, anything else is a usage error. Returns 0 when @c was one of them, else
 * CLI_EXIT_USAGE (the message printed).
 */
int cli_common_option(const char *cmd, int c, char **argv, const char *usage, bool *quiet,
		      bool *verbose);

/* "100ms", "5s", "1.5s", "2m", "250us", "1h"; a bare number is seconds. */
int cli_parse_duration(const char *s, uint64_t *ns);
int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *val);
int cli_parse_double(const char *s, double *val);
/* --format's value; csv only where @csv. On a bad value: the usage error, CLI_EXIT_USAGE. */
int cli_format_option(const char *cmd, const char *s, bool csv, enum cli_format *fmt);

/* --from / --to TIME (@to: which): a time after the trace's first record; on a bad value the
 * usage error, CLI_EXIT_USAGE. cli_window_check(): --to after --from, or the usage error. */
int cli_window_option(const char *cmd, bool to, const char *s, uint64_t *ns);
int cli_window_check(const char *cmd, uint64_t from, uint64_t to);

/* CLOCK_MONOTONIC now, in ns. */
static inline uint64_t cli_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Route the library's log to stderr with the command's name (warnings and errors). */
void cli_setup_log(const char *cmd, bool verbose);

#endif /* VMSCOPE_CLI_H */
