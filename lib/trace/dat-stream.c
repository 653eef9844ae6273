// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The ring-buffer data of a .dat file as one time-ordered stream of records.
 *
 * Each CPU's data is read a window of pages at a time (uncompressed files) or a chunk at a
 * time (compressed version 7 files), so memory stays bounded whatever the trace length.
 * Pages are walked with libtraceevent's kbuffer after their header is checked (a commit
 * larger than the page is damage, not data); a page flagged with missed events becomes a
 * LOST record. The CPUs are merged by timestamp with a min-heap. A CPU whose data is
 * damaged stops there; the other CPUs are read to their end and the error is returned
 * last, so every valid record is delivered.
 *
 * The record handed out points into the CPU's window, so a CPU is advanced only on the
 * next call, once the caller is done with the record.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <traceevent/event-parse.h>
#include <traceevent/kbuffer.h>
#include <zstd.h>

#include "trace-local.h"

#define COMMIT_MASK ((1U << 27) - 1)
#define MISSED_STORED (1ULL << 30)
#define MAX_CHUNK (64U << 20)

static uint64_t page_commit(const struct vms_trace *t, const uint8_t *page)
{
	uint64_t v = 0;

	memcpy(&v, page + 8, t->info.long_size);
	return v;
}

/* Read the next window of an uncompressed CPU stream. Return: 1, 0 at the end, or < 0. */
static int fill_window(struct vms_trace *t, struct vms_cpu_stream *c)
{
	uint64_t left = c->file_size - c->consumed, want = c->cap - t->info.page_size;
	size_t done = 0;

	if (!left)
		return 0;
	if (want > left)
		want = left;
	while (done < want) {
		ssize_t n = pread(t->fd, c->buf + done, want - done,
				  (off_t)(c->file_off + c->consumed + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vms_trace_fail(
				t, n < 0 ? -errno : -VMS_E_TRACE_CORRUPT,
				"offset %llu: CPU %d data: %s",
				(unsigned long long)(c->file_off + c->consumed + done), c->cpu,
				n < 0 ? strerror(errno) : "truncated");
		done += (size_t)n;
	}
	c->buf_file_off = c->file_off + c->consumed;
	c->consumed += done;
	/* A partial last page reads as zeroes (an empty page). */
	c->len = (done + t->info.page_size - 1) / t->info.page_size * t->info.page_size;
	memset(c->buf + done, 0, c->cap - done);
	c->pos = 0;
	return 1;
}

/* Read and decompress the next chunk of a compressed CPU stream. */
static int fill_chunk(struct vms_trace *t, struct vms_cpu_stream *c)
{
	uint32_t hdr[2];
	uint64_t off;
	int ret;

	if (!c->chunks_left)
		return 0;
	off = c->file_off + c->consumed;
	if (c->file_size - c->consumed < 8 || pread(t->fd, hdr, 8, (off_t)off) != 8)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu: CPU %d: chunk header truncated",
				      (unsigned long long)off, c->cpu);
	if (hdr[0] > MAX_CHUNK || hdr[1] > MAX_CHUNK || !hdr[1] || hdr[1] % t->info.page_size ||
	    hdr[0] > c->file_size - c->consumed - 8)
		return vms_trace_fail(
			t, -VMS_E_TRACE_CORRUPT,
			"offset %llu: CPU %d: chunk of %u bytes (%u uncompressed) does "
			"not fit",
			(unsigned long long)off, c->cpu, hdr[0], hdr[1]);
	if (hdr[0] > c->ccap) {
		uint8_t *nb = realloc(c->cbuf, hdr[0]);

		if (!nb)
			return -ENOMEM;
		c->cbuf = nb;
		c->ccap = hdr[0];
	}
	if (hdr[1] + t->info.page_size > c->cap) {
		uint8_t *nb = realloc(c->buf, hdr[1] + t->info.page_size);

		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = hdr[1] + t->info.page_size;
	}
	if (pread(t->fd, c->cbuf, hdr[0], (off_t)(off + 8)) != (ssize_t)hdr[0])
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu: CPU %d: chunk truncated",
				      (unsigned long long)off, c->cpu);
	ret = vms_decompress(t, c->cbuf, hdr[0], c->buf, hdr[1]);
	if (ret)
		return vms_trace_fail(t, ret, "offset %llu: CPU %d: chunk does not decompress",
				      (unsigned long long)off, c->cpu);
	memset(c->buf + hdr[1], 0, t->info.page_size);
	c->buf_file_off = off;
	c->consumed += 8 + (uint64_t)hdr[0];
	c->chunks_left--;
	c->len = hdr[1];
	c->pos = 0;
	return 1;
}

/* Load the next non-empty page of @c into its kbuffer. Return: 1, 0 at the end, or < 0. */
static int next_page(struct vms_trace *t, struct vms_cpu_stream *c)
{
	const unsigned int hdr = 8 + t->info.long_size, ps = t->info.page_size;

	for (;;) {
		uint64_t commit, size;
		uint8_t *page;
		int ret;

		if (c->pos >= c->len) {
			ret = t->comp == VMS_COMP_NONE ? fill_window(t, c) : fill_chunk(t, c);
			if (ret <= 0)
				return ret;
		}
		page = c->buf + c->pos;
		c->pos += ps;
		commit = page_commit(t, page);
		size = commit & COMMIT_MASK;
		if (!size)
			continue;
		if (size > ps - hdr ||
		    ((commit & MISSED_STORED) && size + t->info.long_size > ps - hdr))
			return vms_trace_fail(
				t, -VMS_E_TRACE_CORRUPT,
				"offset %llu: CPU %d: page with %llu bytes of data, more "
				"than a %u-byte page holds",
				(unsigned long long)(c->buf_file_off + (c->pos - ps)), c->cpu,
				(unsigned long long)size, ps);
		if (kbuffer_load_subbuffer(c->kbuf, page) < 0)
			return vms_trace_fail(
				t, -VMS_E_TRACE_CORRUPT, "offset %llu: CPU %d: page does not load",
				(unsigned long long)(c->buf_file_off + (c->pos - ps)), c->cpu);
		c->page_end = page + hdr + size;
		ret = kbuffer_missed_events(c->kbuf);
		if (ret) {
			c->lost_pending = true;
			c->lost_count = ret > 0 ? (uint64_t)ret : 0;
		}
		return 1;
	}
}

/* Move @c to its next record. Return: 1, 0 at the end of its data, or < 0. */
static int cpu_advance(struct vms_trace *t, struct vms_cpu_stream *c)
{
	for (;;) {
		int ret;

		c->rec = c->rec ? kbuffer_next_event(c->kbuf, &c->rec_ts)
				: kbuffer_read_event(c->kbuf, &c->rec_ts);
		if (c->rec) {
			c->rec_size = kbuffer_event_size(c->kbuf);
			if (c->rec_size < 0 ||
			    (const uint8_t *)c->rec + c->rec_size > c->page_end || c->rec_size < 8)
				return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
						      "offset %llu: CPU %d: a record runs past its "
						      "page or is too short",
						      (unsigned long long)(c->buf_file_off +
									   c->pos -
									   t->info.page_size),
						      c->cpu);
			return 1;
		}
		ret = next_page(t, c);
		if (ret <= 0)
			return ret;
		/* kbuffer_read_event() on the freshly loaded page */
	}
}

/* ---- the heap of CPUs, keyed by their current record's timestamp ---- */

/* A CPU with a pending LOST record sorts at the start of its gap. */
static inline uint64_t key_ts(const struct vms_cpu_stream *c)
{
	return c->lost_pending ? c->last_ts : c->rec_ts;
}

static bool heap_less(const struct vms_trace *t, unsigned int a, unsigned int b)
{
	const struct vms_cpu_stream *x = &t->cpus[a], *y = &t->cpus[b];
	uint64_t kx = key_ts(x), ky = key_ts(y);

	return kx < ky || (kx == ky && x->cpu < y->cpu);
}

static void heap_down(struct vms_trace *t, unsigned int i)
{
	for (;;) {
		unsigned int l = 2 * i + 1, r = l + 1, m = i, tmp;

		if (l < t->heap_len && heap_less(t, t->heap[l], t->heap[m]))
			m = l;
		if (r < t->heap_len && heap_less(t, t->heap[r], t->heap[m]))
			m = r;
		if (m == i)
			return;
		tmp = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = tmp;
		i = m;
	}
}

int vms_dat_stream_init(struct vms_trace *t)
{
	size_t pages = t->window_pages;

	/* Bound the windows of many CPUs to 64 MiB in all. */
	if (t->ncpus && pages * t->info.page_size * t->ncpus > (64ULL << 20))
		pages = (64ULL << 20) / t->info.page_size / t->ncpus;
	if (pages < 2)
		pages = 2;
	t->heap = calloc(t->ncpus ? t->ncpus : 1, sizeof(*t->heap));
	if (!t->heap)
		return -ENOMEM;
	for (unsigned int i = 0; i < t->ncpus; i++) {
		struct vms_cpu_stream *c = &t->cpus[i];

		c->kbuf = tep_kbuffer(t->tep);
		if (!c->kbuf)
			c->kbuf = kbuffer_alloc(t->info.long_size == 8 ? KBUFFER_LSIZE_8
								       : KBUFFER_LSIZE_4,
						KBUFFER_ENDIAN_LITTLE);
		if (!c->kbuf)
			return -ENOMEM;
		if (t->comp == VMS_COMP_NONE) {
			c->cap = (pages + 1) * t->info.page_size;
			c->buf = calloc(1, c->cap);
			if (!c->buf)
				return -ENOMEM;
		} else {
			uint32_t n;

			if (c->file_size < 4 || pread(t->fd, &n, 4, (off_t)c->file_off) != 4)
				return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
						      "offset %llu: CPU %d: no chunk count",
						      (unsigned long long)c->file_off, c->cpu);
			/* trace-cmd's per-CPU size counts the chunks, not this count. */
			c->chunks_left = n;
			c->file_off += 4;
		}
		t->info.data_bytes += t->comp == VMS_COMP_NONE ? c->file_size : 0;
	}
	return 0;
}

void vms_dat_stream_free(struct vms_trace *t)
{
	for (unsigned int i = 0; t->cpus && i < t->ncpus; i++) {
		free(t->cpus[i].buf);
		free(t->cpus[i].cbuf);
		if (t->cpus[i].kbuf)
			kbuffer_free(t->cpus[i].kbuf);
	}
	free(t->cpus);
	free(t->heap);
	if (t->zstd_dctx)
		ZSTD_freeDCtx(t->zstd_dctx);
}

/* The first error met while streaming; the stream goes on with the other CPUs. */
static void stream_error(struct vms_trace *t, int ret)
{
	if (!t->deferred_err)
		t->deferred_err = ret;
}

int vms_trace_next(struct vms_trace *t, struct vms_record *rec)
{
	struct vms_cpu_stream *c;
	int ret;

	if (!t->started) {
		t->started = true;
		for (unsigned int i = 0; i < t->ncpus; i++) {
			ret = cpu_advance(t, &t->cpus[i]);
			if (ret < 0)
				stream_error(t, ret);
			if (ret == 1)
				t->heap[t->heap_len++] = i;
		}
		for (unsigned int i = t->heap_len / 2 + 1; i-- > 0;)
			heap_down(t, i);
	} else if (t->advance_pending) {
		/* The caller is done with the last record: move its CPU on. */
		t->advance_pending = false;
		ret = cpu_advance(t, &t->cpus[t->heap[0]]);
		if (ret < 0)
			stream_error(t, ret);
		if (ret != 1)
			t->heap[0] = t->heap[--t->heap_len];
		heap_down(t, 0);
	}
	if (!t->heap_len)
		return t->deferred_err;

	c = &t->cpus[t->heap[0]];
	memset(rec, 0, sizeof(*rec));
	rec->cpu = c->cpu;
	rec->ts = c->rec_ts;
	if (c->lost_pending) {
		c->lost_pending = false;
		rec->type = VMS_RECORD_LOST;
		rec->pid = -1;
		rec->ts = c->last_ts;
		rec->lost_to_ts = c->rec_ts;
		rec->lost_count = c->lost_count;
		t->lost += c->lost_count;
		t->lost_windows++;
		heap_down(t, 0); /* its record now sorts by its own time */
		return 1;
	}
	rec->data = c->rec;
	rec->size = (uint32_t)c->rec_size;
	{
		uint16_t type;
		int32_t pid;

		memcpy(&type, rec->data, 2);
		memcpy(&pid, rec->data + 4, 4);
		rec->type = type;
		rec->pid = pid;
	}
	c->last_ts = c->rec_ts;
	t->events++;
	t->advance_pending = true;
	return 1;
}
