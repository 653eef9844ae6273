// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Helpers shared by the subcommands: one-line error messages for people, and parsing of
 * option values (durations, numbers, formats) with precise complaints.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmscope/vmscope.h"

/* "vmscope CMD: message" on stderr, with @hint after the message when not NULL. */
static void cli_vmessage(const char *cmd, const char *hint, const char *fmt, va_list ap)
{
	fprintf(stderr, "vmscope%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	vfprintf(stderr, fmt, ap);
	if (hint)
		fprintf(stderr, " (see 'vmscope%s%s --help')", cmd ? " " : "", cmd ? cmd : "");
	fputc('\n', stderr);
}

int cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(cmd, NULL, fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(cmd, "help", fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char **argv)
{
	extern int optind, optopt;
	const char *arg = argv[optind - 1];

	if (optopt && arg && arg[0] == '-' && arg[1] != '-')
		return cli_usage_error(cmd, "unknown option '-%c' or missing value", optopt);
	return cli_usage_error(cmd, "unknown option or missing value: '%s'", arg ? arg : "?");
}

int cli_common_option(const char *cmd, int c, char **argv, const char *usage, bool *quiet,
		      bool *verbose)
{
	if (c == 'q' && quiet) {
		*quiet = true;
		return 0;
	}
	if (c == 'v' && verbose) {
		*verbose = true;
		return 0;
	}
	if (c == 'h') {
		fputs(usage, stdout);
		exit(0);
	}
	return cli_bad_option(cmd, argv);
}

int cli_parse_duration(const char *s, uint64_t *ns)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = { { "ns", 1 },   { "us", 1e3 },   { "ms", 1e6 },   { "s", 1e9 },
		      { "m", 60e9 }, { "min", 60e9 }, { "h", 3600e9 }, { "", 1e9 } };
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].suffix)) {
			double r = v * units[i].mult;

			if (r > 1e19)
				return -ERANGE;
			*ns = (uint64_t)(r + 0.5);
			return 0;
		}
	}
	return -EINVAL;
}

int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *val)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*val = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return *val > max ? -ERANGE : 0;
}

int cli_parse_double(const char *s, double *val)
{
	char *end;

	errno = 0;
	*val = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*val))
		return -EINVAL;
	return 0;
}

int cli_format_option(const char *cmd, const char *s, bool csv, enum cli_format *fmt)
{
	if (!strcmp(s, "table"))
		*fmt = CLI_FORMAT_TABLE;
	else if (csv && !strcmp(s, "csv"))
		*fmt = CLI_FORMAT_CSV;
	else if (!strcmp(s, "json"))
		*fmt = CLI_FORMAT_JSON;
	else
		return cli_usage_error(cmd, "--format takes %s, not '%s'",
				       csv ? "table, csv or json" : "table or json", s);
	return 0;
}

int cli_window_option(const char *cmd, bool to, const char *s, uint64_t *ns)
{
	if (cli_parse_duration(s, ns))
		return cli_usage_error(cmd, "--%s takes a time like 10s or 1500ms, not '%s'",
				       to ? "to" : "from", s);
	return 0;
}

int cli_window_check(const char *cmd, uint64_t from, uint64_t to)
{
	if (to && to <= from)
		return cli_usage_error(cmd, "--to must come after --from");
	return 0;
}

static bool cli_log_errors;

static void cli_log(enum vms_log_level level, const char *msg, void *ctx)
{
	const char *cmd = ctx;

	if (level == VMS_LOG_ERROR && !cli_log_errors)
		return;
	fprintf(stderr, "vmscope %s: %s%s\n", cmd,
		level == VMS_LOG_WARN	? "warning: "
		: level >= VMS_LOG_INFO ? "debug: "
					: "",
		msg);
}

void cli_setup_log(const char *cmd, bool verbose)
{
	/* A failure reaches the user once, as the command's own message; the log adds
	 * warnings, and with --verbose the library's errors and detail too. */
	vms_set_log(cli_log, (void *)cmd, verbose ? VMS_LOG_DEBUG : VMS_LOG_WARN);
	cli_log_errors = verbose;
}
