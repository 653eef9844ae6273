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

/* An order-sensitive digest of a stream: every record's CPU, type, time and bytes. */
static uint64_t digest_step(uint64_t d, const struct vms_record *r)
{
	uint32_t c = r->data ? (uint32_t)crc32(0, r->data, r->size) : 0;

	d = (d ^ (uint64_t)r->ts) * 0x100000001b3ULL;
	d = (d ^ ((uint64_t)(uint32_t)r->cpu << 32 | r->type)) * 0x100000001b3ULL;
	return (d ^ ((uint64_t)c << 32 | r->size)) * 0x100000001b3ULL;
}

/*
 * Read @path again through vms_trace_next_batch() with the read-ahead thread @ra (1 on, -1
 * off), keeping only the records of @ids (all when @nids is 0, with the LOST records), and
 * compare with @want_digest / @want_n of the record-by-record stream filtered the same way.
 */
static int check_batched(const char *path, int ra, const int *ids, size_t nids,
			 uint64_t want_digest, uint64_t want_n, uint64_t want_read)
{
	struct vms_trace_opts o = { .sz = sizeof(o), .readahead = ra };
	const struct vms_record *recs;
	uint64_t d = 0, n = 0;
	struct vms_trace *t;
	int ret, bad = 0;

	if (vms_trace_open(path, &o, &t)) {
		printf("FAIL: %s: cannot open it again: %s\n", path, vms_trace_open_error());
		return 1;
	}
	if (nids && vms_trace_select(t, ids, nids)) {
		printf("FAIL: %s: vms_trace_select\n", path);
		vms_trace_close(t);
		return 1;
	}
	while ((ret = vms_trace_next_batch(t, &recs)) > 0) {
		for (int k = 0; k < ret; k++) {
			d = digest_step(d, &recs[k]);
			n++;
		}
	}
	if (d != want_digest || n != want_n || vms_trace_events_read(t) != want_read) {
		printf("FAIL: %s: batched (read-ahead %s, %zu event ids) gives %" PRIu64
		       " records (%" PRIu64 " read), record by record %" PRIu64 " (%" PRIu64
		       " read)%s\n",
		       path, ra > 0 ? "on" : "off", nids, n, vms_trace_events_read(t), want_n,
		       want_read, d != want_digest ? ", not the same ones" : "");
		bad = 1;
	}
	vms_trace_close(t);
	return bad;
}

static int compare_file(const char *path)
{
	struct tracecmd_input *h, *bh = NULL;
	struct cpu_recs cpus[256] = { 0 };
	struct vms_trace *t;
	struct vms_record r;
	uint64_t prev = 0, total = 0, compared = 0, digest = 0, nrec = 0, sel_digest = 0, sel_n = 0;
	int first_type = -1;
	int ret, bad = 0, ncpus;
	const char *want;

	if (vms_trace_open(path, NULL, &t)) {
		printf("FAIL: %s: vmscope cannot open it: %s\n", path, vms_trace_open_error());
		return 1;
	}
	while ((ret = vms_trace_next(t, &r)) == 1) {
		struct cpu_recs *c;

		digest = digest_step(digest, &r);
		nrec++;
		if (r.type == VMS_RECORD_LOST) {
			sel_digest = digest_step(sel_digest, &r);
			sel_n++;
			continue;
		}
		if (first_type < 0)
			first_type = (int)r.type;
		if ((int)r.type == first_type) {
			sel_digest = digest_step(sel_digest, &r);
			sel_n++;
		}
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
	/* The same stream in batches, with and without the read-ahead thread, and only the
	 * first record's event (the others walked over, still counted). */
	bad += check_batched(path, -1, NULL, 0, digest, nrec, total);
	bad += check_batched(path, 1, NULL, 0, digest, nrec, total);
	if (first_type >= 0)
		bad += check_batched(path, 1, &first_type, 1, sel_digest, sel_n, total);

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
	printf("%s: %" PRIu64 " records, %" PRIu64 " identical to libtracecmd's, %s; batched "
	       "and selected streams checked\n",
	       path, total, compared, bad ? "DIFFERENT" : "same");
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
