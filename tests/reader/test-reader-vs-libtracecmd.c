// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope's .dat reader against libtracecmd, the reference: for every file named on the
 * command line, both must return the same records — per CPU, in the same order, with the
 * same timestamps, sizes and bytes. vmscope's stream is merged across CPUs; it must also
 * be in time order. Exit 77 (skip) when no file exists (the sample data is not there).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <trace-cmd/trace-cmd.h>
#include <traceevent/event-parse.h>

#include "vmscope/trace.h"

struct rec {
	uint64_t ts;
	uint32_t size;
	uint32_t crc;
};

struct cpu_recs {
	struct rec *r;
	size_t n, cap;
};

static int compare_file(const char *path)
{
	struct tracecmd_input *h, *bh = NULL;
	struct cpu_recs cpus[256] = { 0 };
	struct vms_trace *t;
	struct vms_record r;
	uint64_t prev = 0, total = 0, compared = 0;
	int ret, bad = 0, ncpus;
	const char *want;

	if (vms_trace_open(path, NULL, &t)) {
		printf("FAIL: %s: vmscope cannot open it: %s\n", path, vms_trace_open_error());
		return 1;
	}
	while ((ret = vms_trace_next(t, &r)) == 1) {
		struct cpu_recs *c;

		if (r.type == VMS_RECORD_LOST)
			continue;
		if (r.ts < prev && !bad++)
			printf("FAIL: %s: record %" PRIu64 " goes back in time\n", path, total);
		prev = r.ts;
		if (r.cpu < 0 || r.cpu >= 256) {
			printf("FAIL: %s: CPU %d\n", path, r.cpu);
			return 1;
		}
		c = &cpus[r.cpu];
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 4096;
			c->r = realloc(c->r, c->cap * sizeof(*c->r));
		}
		c->r[c->n++] = (struct rec){ r.ts, r.size, (uint32_t)crc32(0, r.data, r.size) };
		total++;
	}
	if (ret < 0) {
		printf("FAIL: %s: vmscope stream error: %s\n", path, vms_trace_error(t));
		bad++;
	}
	want = vms_trace_info(t)->buffer;

	h = tracecmd_open(path, 0);
	if (!h) {
		printf("FAIL: %s: libtracecmd cannot open it\n", path);
		return 1;
	}
	/* The buffer vmscope chose: the top one, or the named instance. */
	bh = h;
	for (int i = 0; want[0] && i < tracecmd_buffer_instances(h); i++)
		if (!strcmp(tracecmd_buffer_instance_name(h, i), want))
			bh = tracecmd_buffer_instance_handle(h, i);
	ncpus = tep_get_cpus(tracecmd_get_tep(bh));
	for (int cpu = 0; cpu < ncpus && cpu < 256; cpu++) {
		struct tep_record *tr;
		size_t i = 0;

		while ((tr = tracecmd_read_data(bh, cpu))) {
			struct cpu_recs *c = &cpus[cpu];

			if (i >= c->n) {
				if (!bad++)
					printf("FAIL: %s: CPU %d: libtracecmd has more records "
					       "(%zu+) than "
					       "vmscope (%zu)\n",
					       path, cpu, i + 1, c->n);
			} else if (c->r[i].ts != tr->ts || c->r[i].size != (uint32_t)tr->size ||
				   c->r[i].crc != (uint32_t)crc32(0, tr->data, (uInt)tr->size)) {
				if (!bad++)
					printf("FAIL: %s: CPU %d record %zu differs: ts %" PRIu64
					       "/%llu size %u/%d\n",
					       path, cpu, i, c->r[i].ts, tr->ts, c->r[i].size,
					       tr->size);
			} else {
				compared++;
			}
			i++;
			tracecmd_free_record(tr);
		}
		if (i < cpus[cpu].n && !bad++)
			printf("FAIL: %s: CPU %d: vmscope has %zu records, libtracecmd %zu\n", path,
			       cpu, cpus[cpu].n, i);
	}
	printf("%s: %" PRIu64 " records, %" PRIu64 " identical to libtracecmd's, %s\n", path, total,
	       compared, bad ? "DIFFERENT" : "same");
	if (bh != h)
		tracecmd_close(bh);
	tracecmd_close(h);
	vms_trace_close(t);
	for (int i = 0; i < 256; i++)
		free(cpus[i].r);
	return bad || compared != total;
}

int main(int argc, char **argv)
{
	int files = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		if (access(argv[i], R_OK))
			continue;
		files++;
		failed += compare_file(argv[i]);
	}
	if (!files) {
		printf("SKIP: none of the trace files exists (is ../shared/data beside the "
		       "repo?)\n");
		return 77;
	}
	printf("%d of %d files differ\n", failed, files);
	return failed ? 1 : 0;
}
