// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The v7 reader's decompression ring against the v6 reader, on generated traces big
 * enough that every CPU has tens of chunks (10 pages each) and several load at once:
 * 1 host CPU (all workers on one CPU's chunks), 3 CPUs, and 20 CPUs (two slots each).
 * gentrace writes the same pages with one seed as v6 and as v7 zstd, so both readers must
 * return the same records in the same order (record by record, and batched with the
 * read-ahead thread).
 *
 * Then the zstd frame of a chunk in the middle of one CPU's data is broken, while that
 * CPU's later chunks are loading: the stream still delivers every record of the other
 * CPUs, that CPU's records up to the broken chunk (a prefix of its v6 records, in order),
 * and ends with an error naming the chunk's offset and the CPU.
 *
 * Usage: test-reader-chunks GENTRACE
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "vmscope/trace.h"

#define MAX_CPUS 64

static int failures;

#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond)) {                        \
			failures++;                   \
			printf("FAIL: " __VA_ARGS__); \
			printf("\n");                 \
		}                                     \
	} while (0)

struct rec {
	uint64_t ts;
	uint32_t crc; /* of the bytes; the type of a LOST record */
	uint32_t size;
};

struct stream {
	struct rec *r[MAX_CPUS];
	size_t n[MAX_CPUS], cap[MAX_CPUS];
	uint64_t total, digest; /* the merged order */
	bool ordered;
	int end; /* what the stream ended with */
	char err[512];
};

static void stream_free(struct stream *s)
{
	for (int i = 0; i < MAX_CPUS; i++)
		free(s->r[i]);
	memset(s, 0, sizeof(*s));
}

static int add(struct stream *s, const struct vms_record *r, uint64_t *last)
{
	struct rec x = { r->ts, r->data ? (uint32_t)crc32(0, r->data, r->size) : r->type, r->size };
	int c = r->cpu;

	if (c < 0 || c >= MAX_CPUS)
		return -1;
	if (s->n[c] == s->cap[c]) {
		size_t ncap = s->cap[c] ? 2 * s->cap[c] : 4096;
		struct rec *nr = realloc(s->r[c], ncap * sizeof(*nr));

		if (!nr)
			return -1;
		s->r[c] = nr;
		s->cap[c] = ncap;
	}
	s->r[c][s->n[c]++] = x;
	if (r->ts < *last)
		s->ordered = false;
	*last = r->ts;
	s->digest = (s->digest ^ x.ts) * 0x100000001b3ULL;
	s->digest = (s->digest ^ ((uint64_t)x.crc << 32 | (uint32_t)c)) * 0x100000001b3ULL;
	s->total++;
	return 0;
}

/* Read @path whole: record by record (@ra < 0) or batched with the read-ahead thread. */
static int read_all(const char *path, int ra, struct stream *s)
{
	struct vms_trace_opts o = { .sz = sizeof(o), .readahead = ra };
	struct vms_trace *t;
	uint64_t last = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	s->ordered = true;
	if (vms_trace_open(path, &o, &t)) {
		printf("FAIL: %s: %s\n", path, vms_trace_open_error());
		failures++;
		return -1;
	}
	if (ra < 0) {
		struct vms_record r;

		while ((ret = vms_trace_next(t, &r)) > 0)
			if (add(s, &r, &last))
				break;
	} else {
		const struct vms_record *recs;

		while ((ret = vms_trace_next_batch(t, &recs)) > 0)
			for (int k = 0; k < ret; k++)
				if (add(s, &recs[k], &last))
					break;
	}
	s->end = ret;
	if (ret < 0)
		snprintf(s->err, sizeof(s->err), "%s", vms_trace_error(t));
	vms_trace_close(t);
	return 0;
}

static int gen(const char *gentrace, const char *out, int cpus, int vcpus, long events, bool v7)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "%s -o %s --vms 1 --vcpus %d --cpus %d --events-total %ld --lost 2 --seed 7 "
		 "--no-percentiles --quiet%s",
		 gentrace, out, vcpus, cpus, events,
		 v7 ? " --dat-version 7 --compression zstd" : "");
	return system(cmd) == 0 ? 0 : -1;
}

static bool same_cpu(const struct stream *a, const struct stream *b, int c, size_t n)
{
	return n <= a->n[c] && n <= b->n[c] &&
	       (!n || !memcmp(a->r[c], b->r[c], n * sizeof(struct rec)));
}

/*
 * The chunks of a v7 zstd file, found by their frames: a (u32 compressed size, u32 size)
 * header, then a zstd frame of that size, and the next header right after it. Returns
 * their number; offs[] are the header offsets, in file order.
 */
static size_t find_chunks(const uint8_t *d, size_t len, size_t *offs, size_t max)
{
	static const uint8_t magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	size_t n = 0;

	for (size_t p = 8; p + 4 <= len && n < max; p++) {
		uint32_t zs, us;

		if (memcmp(d + p, magic, 4))
			continue;
		memcpy(&zs, d + p - 8, 4);
		memcpy(&us, d + p - 4, 4);
		if (!us || us % 4096 || us > 10 * 4096 || p + zs > len)
			continue;
		offs[n++] = p - 8;
		p += zs - 1;
	}
	return n;
}

static void scenario(const char *gentrace, const char *dir, int cpus, int vcpus, long events)
{
	char v6[512], v7[512], bad[512];
	struct stream s6, s7, sb;

	snprintf(v6, sizeof(v6), "%s/c%d.v6.dat", dir, cpus);
	snprintf(v7, sizeof(v7), "%s/c%d.v7.dat", dir, cpus);
	snprintf(bad, sizeof(bad), "%s/c%d.bad.dat", dir, cpus);
	if (gen(gentrace, v6, cpus, vcpus, events, false) ||
	    gen(gentrace, v7, cpus, vcpus, events, true)) {
		printf("FAIL: %d CPUs: gentrace failed\n", cpus);
		failures++;
		return;
	}
	if (read_all(v6, -1, &s6))
		return;
	CHECK(s6.end == 0 && s6.ordered, "%d CPUs: v6 reads whole, in time order", cpus);
	for (int ra = -1; ra <= 1; ra += 2) {
		if (read_all(v7, ra, &s7))
			break;
		CHECK(s7.end == 0, "%d CPUs: v7 (read-ahead %d) reads whole: %s", cpus, ra, s7.err);
		CHECK(s7.total == s6.total && s7.digest == s6.digest,
		      "%d CPUs: v7 (read-ahead %d) gives v6's %" PRIu64
		      " records in its order (got %" PRIu64 ")",
		      cpus, ra, s6.total, s7.total);
		stream_free(&s7);
	}

	/* Break the zstd magic of the middle chunk of the file. */
	FILE *f = fopen(v7, "rb");
	struct stat st;
	uint8_t *d = NULL;
	size_t offs[8192], n = 0, len = 0;

	if (f && !fstat(fileno(f), &st) && (d = malloc((size_t)st.st_size)) &&
	    fread(d, 1, (size_t)st.st_size, f) == (size_t)st.st_size)
		len = (size_t)st.st_size;
	if (f)
		fclose(f);
	n = len ? find_chunks(d, len, offs, 8192) : 0;
	/* chunks per CPU, at least: the writer puts 10 pages in each */
	CHECK(n >= (size_t)cpus * 8, "%d CPUs: %zu chunks found, >= 8 per CPU", cpus, n);
	if (n >= (size_t)cpus * 8) {
		size_t k = n / 2, off = offs[k];
		char want[128];
		int victim = -1;

		d[off + 8] ^= 0xff;
		f = fopen(bad, "wb");
		CHECK(f && fwrite(d, 1, len, f) == len && !fclose(f), "%s written", bad);
		for (int ra = -1; ra <= 1; ra += 2) {
			if (read_all(bad, ra, &sb))
				break;
			snprintf(want, sizeof(want), "offset %zu: CPU ", off);
			CHECK(sb.end < 0 && strstr(sb.err, want) &&
				      strstr(sb.err, "does not decompress"),
			      "%d CPUs, read-ahead %d: the broken chunk at %zu is the error: "
			      "\"%s\"",
			      cpus, ra, off, sb.err);
			if (sb.end < 0 && strstr(sb.err, want))
				victim = atoi(strstr(sb.err, want) + strlen(want));
			CHECK(sb.ordered, "%d CPUs, read-ahead %d: in time order", cpus, ra);
			for (int c = 0; c < cpus && victim >= 0; c++) {
				if (c == victim)
					CHECK(sb.n[c] > 0 && sb.n[c] < s6.n[c] &&
						      same_cpu(&sb, &s6, c, sb.n[c]),
					      "%d CPUs, read-ahead %d: CPU %d (broken) gives the "
					      "first %zu of its %zu records",
					      cpus, ra, c, sb.n[c], s6.n[c]);
				else
					CHECK(sb.n[c] == s6.n[c] && same_cpu(&sb, &s6, c, sb.n[c]),
					      "%d CPUs, read-ahead %d: CPU %d gives all its %zu "
					      "records (got %zu)",
					      cpus, ra, c, s6.n[c], sb.n[c]);
			}
			stream_free(&sb);
		}
	}
	printf("%d CPUs: %" PRIu64 " records, %zu chunks\n", cpus, s6.total, n);
	free(d);
	stream_free(&s6);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/vmscope-chunks-XXXXXX";
	char cmd[600];

	if (argc != 2) {
		fprintf(stderr, "usage: %s GENTRACE\n", argv[0]);
		return 2;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	scenario(argv[1], dir, 1, 1, 60000);
	scenario(argv[1], dir, 3, 3, 150000);
	scenario(argv[1], dir, 20, 4, 400000);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "note: could not remove %s\n", dir);
	if (failures)
		printf("%d checks failed\n", failures);
	else
		printf("all checks passed\n");
	return failures ? 1 : 0;
}
