// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace: a generator of synthetic KVM host traces, with their ground truth, for tests
 * and benchmarks.
 *
 * It reads the kernel's format files (tests/data/formats: header_page, header_event and
 * <system>/<event>/format), parses them with libtraceevent to learn each event's id and
 * field offsets, simulates a KVM host and writes what a recorder on that host would have
 * written: a trace-cmd .dat file (v6, or v7 uncompressed / zstd / zlib) made with
 * libvmscope's page and file writers, and a JSON file with the exact truth that an
 * analysis of the file must find.
 *
 * This file holds the command line and the order of the work: options, the .dat writer,
 * the formats, the simulation, the file's options, the truth. The rest, by area:
 * gentrace-scenario.c (exit reasons and devices), gentrace-sim.c (the seeded scheduler
 * that makes the events), gentrace-events.c (records, pages, lost windows, the .dat's
 * options), gentrace-truth.c (the truth and its JSON); gentrace.h declares what they
 * share. The output depends only on the options: the same options give the same bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <traceevent/event-parse.h>

#include "gentrace.h"
#include "tools-util.h"
#include "vmscope/trace-writer.h"

#ifndef GENTRACE_FORMATS_DIR
#define GENTRACE_FORMATS_DIR "tests/data/formats"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gentrace -o OUT.dat [--truth OUT.json] [options]\n"
		"  --formats DIR          kernel format files (default %s)\n"
		"  --vendor vmx|svm       exit reasons of Intel VMX or AMD SVM (vmx)\n"
		"  --vms N                VMs (1)\n"
		"  --vcpus N              vCPUs per VM (2)\n"
		"  --cpus N               host CPUs (2)\n"
		"  --exits N              exits per vCPU, the last one unfinished (1000)\n"
		"  --events-total N       instead of --exits: stop after about N events\n"
		"  --seed N               random seed (1)\n"
		"  --lost N               lost-events windows of a page each (0)\n"
		"  --dat-version 6|7      file version (6)\n"
		"  --compression none|zstd|zlib   v7 compression (none)\n"
		"  --compression-level N  zstd 1-22, zlib 1-9 (the writer's default)\n"
		"  --no-percentiles       keep counters only (bounded memory for big files)\n"
		"  --quiet                no summary on stderr\n",
		GENTRACE_FORMATS_DIR);
}

static int parse_u64(const char *s, uint64_t *v, uint64_t lo, uint64_t hi)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end || *v < lo || *v > hi || *s == '-' ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "formats", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "truth", required_argument, NULL, 't' },
		{ "vendor", required_argument, NULL, 'V' },
		{ "vms", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "exits", required_argument, NULL, 'x' },
		{ "events-total", required_argument, NULL, 'E' },
		{ "seed", required_argument, NULL, 's' },
		{ "lost", required_argument, NULL, 'l' },
		{ "dat-version", required_argument, NULL, 'D' },
		{ "compression", required_argument, NULL, 'C' },
		{ "compression-level", required_argument, NULL, 'L' },
		{ "no-percentiles", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int c, idx = 0;

	*o = (struct opts){ .formats = GENTRACE_FORMATS_DIR,
			    .compression = "none",
			    .vms = 1,
			    .vcpus = 2,
			    .cpus = 2,
			    .exits = 1000,
			    .seed = 1,
			    .dat_version = 6,
			    .percentiles = true };
	while ((c = getopt_long(argc, argv, "o:qh", lo, &idx)) != -1) {
		switch (c) {
		case 'F':
			o->formats = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 't':
			o->truth = optarg;
			break;
		case 'V':
			if (strcmp(optarg, "vmx") && strcmp(optarg, "svm"))
				goto bad;
			o->svm = !strcmp(optarg, "svm");
			break;
		case 'm':
			if (parse_u64(optarg, &v, 1, 64))
				goto bad;
			o->vms = (unsigned)v;
			break;
		case 'v':
			if (parse_u64(optarg, &v, 1, 256))
				goto bad;
			o->vcpus = (unsigned)v;
			break;
		case 'c':
			if (parse_u64(optarg, &v, 1, 1024))
				goto bad;
			o->cpus = (unsigned)v;
			break;
		case 'x':
			if (parse_u64(optarg, &o->exits, 1, UINT64_MAX / 4))
				goto bad;
			break;
		case 'E':
			if (parse_u64(optarg, &o->events_total, 1, UINT64_MAX / 4))
				goto bad;
			break;
		case 's':
			if (parse_u64(optarg, &o->seed, 0, UINT64_MAX))
				goto bad;
			break;
		case 'l':
			if (parse_u64(optarg, &v, 0, 10000))
				goto bad;
			o->lost = (unsigned)v;
			break;
		case 'D':
			if (parse_u64(optarg, &v, 6, 7))
				goto bad;
			o->dat_version = (int)v;
			break;
		case 'C':
			if (strcmp(optarg, "none") && strcmp(optarg, "zstd") &&
			    strcmp(optarg, "zlib"))
				goto bad;
			o->compression = optarg;
			break;
		case 'L':
			if (parse_u64(optarg, &v, 1, 22))
				goto bad;
			o->level = (int)v;
			break;
		case 'P':
			o->percentiles = false;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !o->output) {
		usage(stderr);
		return -1;
	}
	if (o->events_total)
		o->exits = 0;
	if (strcmp(o->compression, "none") && o->dat_version != 7) {
		fprintf(stderr, "gentrace: --compression needs --dat-version 7\n");
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "gentrace: bad value for --%s: '%s'\n", lo[idx].name, optarg);
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	struct vms_dat_writer_opts wo = { .sz = sizeof(wo) };
	struct sim *s = calloc(1, sizeof(*s));
	struct tep_handle *tep = NULL;
	char path[PATH_MAX], *hp = NULL, *he = NULL;
	struct timespec t0, t1;
	struct opts o;
	size_t len;
	int ret = 1;

	if (!s || parse_opts(argc, argv, &o))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(path, sizeof(path), "%s/header_page", o.formats);
	hp = tools_read_file(path, &len);
	snprintf(path, sizeof(path), "%s/header_event", o.formats);
	he = tools_read_file(path, &len);
	if (!hp || !he) {
		fprintf(stderr, "gentrace: %s: no header_page / header_event\n", o.formats);
		goto out;
	}
	wo.version = o.dat_version;
	wo.compression = o.compression;
	wo.compression_level = o.level;
	wo.ncpus = o.cpus;
	wo.header_page = hp;
	wo.header_event = he;
	wo.uname = "Linux gentrace 6.18.44 x86_64";
	wo.trace_id = 0x1000000 + o.seed;
	ret = vms_dat_writer_open(o.output, &wo, &s->w);
	if (ret) {
		fprintf(stderr, "gentrace: %s: %s\n", o.output, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	ret = 1;
	tep = tep_alloc();
	if (!tep)
		goto out;
	tep_set_long_size(tep, 8);
	if (load_formats(o.formats, tep, s->w) || describe_events(tep, s->ev))
		goto out;
	if (sim_init(s, &o) || sim_run(s)) {
		fprintf(stderr, "gentrace: %s\n", vms_strerror(s->err ? s->err : -ENOMEM));
		goto out;
	}
	if (write_file_info(s))
		goto out;
	ret = vms_dat_writer_close(s->w);
	s->w = NULL;
	if (ret) {
		fprintf(stderr, "gentrace: writing %s: %s\n", o.output, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	if (o.truth && (ret = write_truth(s, o.truth))) {
		fprintf(stderr, "gentrace: writing %s: %s\n", o.truth, vms_strerror(ret));
		ret = 1;
		goto out;
	}
	if (o.lost && s->nwins < o.lost)
		fprintf(stderr, "gentrace: warning: only %zu of %u lost windows fit the trace\n",
			s->nwins, o.lost);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!o.quiet)
		fprintf(stderr,
			"gentrace: %" PRIu64 " events written, %" PRIu64 " dropped, %.2f s\n",
			s->generated - s->dropped, s->dropped,
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	ret = 0;
out:
	sim_free(s);
	tep_free(tep);
	free(hp);
	free(he);
	return ret;
}
