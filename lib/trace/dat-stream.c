// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The ring-buffer data of a .dat file as one time-ordered stream of records.
 *
 * Each CPU's data is read a window of pages at a time (uncompressed files) or a chunk at a
 * time (compressed version 7 files), so memory stays bounded whatever the trace length.
 * Pages are walked by an inline decoder of the kernel's ring-buffer format (the rules of
 * libtraceevent's kbuffer-parse.c: 5-bit type_len, 27-bit time delta; padding, time
 * extend and absolute time stamp records; length in array[0] for type_len 0), after their
 * header is checked (a commit larger than the page is damage, not data); every record is
 * checked to lie inside its page. A page flagged with missed events becomes a LOST record. The CPUs
 * are merged by timestamp with a min-heap. A CPU whose data is damaged stops there; the other CPUs
 * are read to their end and the error is returned last, so every valid record is delivered.
 *
 * The record handed out points into the CPU's window, so a CPU is advanced only on the
 * next call, once the caller is done with the record.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zstd.h>

#include "trace-local.h"

#define COMMIT_MASK ((1U << 27) - 1)
#define MISSED_EVENTS (1ULL << 31)
#define MISSED_STORED (1ULL << 30)
#define TYPE_PADDING 29
#define TYPE_TIME_EXTEND 30
#define TYPE_TIME_STAMP 31
#define TS_SHIFT 27
#define TS_MSB (0xf8ULL << 56) /* absolute time stamps lack the 5 top bits */
#define MAX_CHUNK (64U << 20)

static uint64_t page_commit(const struct vms_trace *t, const uint8_t *page)
{
	uint64_t v = 0;

	memcpy(&v, page + 8, t->info.long_size);
	return v;
}

/*
 * Map the next window of an uncompressed CPU stream: no copy, and the window's pages
 * leave the process's memory when it is unmapped. Return: 1, 0 at the end, or < 0 when
 * the file cannot be mapped (then it is read, see fill_window()).
 */
static int map_window(struct vms_trace *t, struct vms_cpu_stream *c)
{
	uint64_t left = c->file_size - c->consumed, want = c->cap - t->info.page_size;
	uint64_t off = c->file_off + c->consumed;
	void *m;

	if (c->map) {
		munmap(c->map, c->map_len);
		c->map = NULL;
	}
	if (!left)
		return 0;
	if (want > left)
		want = left;
	/* whole pages only: a torn last page is read by fill_window() */
	want -= want % t->info.page_size;
	if (!want || off % (uint64_t)sysconf(_SC_PAGESIZE))
		return -EINVAL;
	m = mmap(NULL, want, PROT_READ, MAP_PRIVATE, t->fd, (off_t)off);
	if (m == MAP_FAILED)
		return -errno;
	madvise(m, want, MADV_SEQUENTIAL | MADV_WILLNEED);
	c->map = m;
	c->map_len = want;
	c->window = m;
	c->buf_file_off = off;
	c->consumed += want;
	c->len = want;
	c->pos = 0;
	return 1;
}

/* Read the next window of an uncompressed CPU stream. Return: 1, 0 at the end, or < 0. */
static int fill_window(struct vms_trace *t, struct vms_cpu_stream *c)
{
	uint64_t left = c->file_size - c->consumed, want = c->cap - t->info.page_size;
	size_t done = 0;

	if (c->use_map) {
		int ret = map_window(t, c);

		if (ret >= 0)
			return ret;
		c->use_map = false; /* this file cannot be mapped here: read it */
	}
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
	c->window = c->buf;
	c->pos = 0;
	return 1;
}

/*
 * Compressed streams: a worker thread reads and decompresses each CPU's chunks one ahead
 * of the walk, into the CPU's spare slot, so decompression (the slow part of a zstd
 * file) runs beside the parsing. The worker touches only the slots and its own zstd
 * context; errors are handed over in the slot and reported by the walking thread, in
 * order.
 */

/* Read and decompress the next chunk of @c into slot @s (worker side, lock not held). */
static void load_chunk(struct vms_trace *t, struct vms_cpu_stream *c, struct chunk_slot *s)
{
	uint32_t hdr[2];
	uint64_t off = c->file_off + c->consumed;

	s->file_off = off;
	if (c->file_size - c->consumed < 8 || pread(t->fd, hdr, 8, (off_t)off) != 8) {
		s->err = -VMS_E_TRACE_CORRUPT;
		s->what = "chunk header truncated";
		return;
	}
	if (hdr[0] > MAX_CHUNK || hdr[1] > MAX_CHUNK || !hdr[1] || hdr[1] % t->info.page_size ||
	    hdr[0] > c->file_size - c->consumed - 8) {
		s->err = -VMS_E_TRACE_CORRUPT;
		s->what = "chunk sizes do not fit the data";
		return;
	}
	if (hdr[0] > s->ccap) {
		uint8_t *nb = realloc(s->cbuf, hdr[0]);

		if (!nb) {
			s->err = -ENOMEM;
			s->what = "out of memory";
			return;
		}
		s->cbuf = nb;
		s->ccap = hdr[0];
	}
	if (hdr[1] + t->info.page_size > s->cap) {
		uint8_t *nb = realloc(s->buf, hdr[1] + t->info.page_size);

		if (!nb) {
			s->err = -ENOMEM;
			s->what = "out of memory";
			return;
		}
		s->buf = nb;
		s->cap = hdr[1] + t->info.page_size;
	}
	if (pread(t->fd, s->cbuf, hdr[0], (off_t)(off + 8)) != (ssize_t)hdr[0]) {
		s->err = -VMS_E_TRACE_CORRUPT;
		s->what = "chunk truncated";
		return;
	}
	if (vms_decompress(t, s->cbuf, hdr[0], s->buf, hdr[1])) {
		s->err = -VMS_E_TRACE_CORRUPT;
		s->what = "chunk does not decompress";
		return;
	}
	memset(s->buf + hdr[1], 0, t->info.page_size);
	s->len = hdr[1];
	s->err = 0;
	c->consumed += 8 + (uint64_t)hdr[0];
	c->chunks_left--;
}

static void *prefetch_worker(void *arg)
{
	struct vms_trace *t = arg;
	unsigned int next = 0;

	pthread_mutex_lock(&t->lock);
	while (!t->worker_quit) {
		struct vms_cpu_stream *c = NULL;
		struct chunk_slot *s;

		/* a CPU whose next slot to fill is free, round robin */
		for (unsigned int k = 0; k < t->ncpus && !c; k++) {
			struct vms_cpu_stream *x = &t->cpus[(next + k) % t->ncpus];

			if (!x->load_done && x->slot[x->load].state == SLOT_EMPTY) {
				c = x;
				next = (next + k + 1) % t->ncpus;
			}
		}
		if (!c) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		s = &c->slot[c->load];
		if (!c->chunks_left) {
			s->state = SLOT_END;
			c->load_done = true;
		} else {
			s->state = SLOT_LOADING;
			pthread_mutex_unlock(&t->lock);
			load_chunk(t, c, s);
			pthread_mutex_lock(&t->lock);
			s->state = s->err ? SLOT_ERROR : SLOT_READY;
			if (s->err)
				c->load_done = true;
			c->load ^= 1;
		}
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Walk the next decompressed chunk of @c (walking side). Return: 1, 0 at the end, < 0. */
static int fill_chunk(struct vms_trace *t, struct vms_cpu_stream *c)
{
	struct chunk_slot *s;
	int ret = 1;

	if (!t->worker_started) {
		if (pthread_create(&t->worker, NULL, prefetch_worker, t))
			return vms_trace_fail(t, -EAGAIN, "cannot start the decompression thread");
		t->worker_started = true;
	}
	pthread_mutex_lock(&t->lock);
	if (c->cur >= 0)
		c->slot[c->cur].state = SLOT_EMPTY; /* done with it: the worker may refill it */
	c->cur = c->cur < 0 ? 0 : c->cur ^ 1;
	s = &c->slot[c->cur];
	pthread_cond_broadcast(&t->cond);
	while (s->state == SLOT_EMPTY || s->state == SLOT_LOADING)
		pthread_cond_wait(&t->cond, &t->lock);
	if (s->state == SLOT_END)
		ret = 0;
	else if (s->state == SLOT_ERROR)
		ret = s->err;
	pthread_mutex_unlock(&t->lock);
	if (ret < 0)
		return vms_trace_fail(t, ret, "offset %llu: CPU %d: %s",
				      (unsigned long long)s->file_off, c->cpu, s->what);
	if (!ret)
		return 0;
	c->window = s->buf;
	c->buf_file_off = s->file_off;
	c->len = s->len;
	c->pos = 0;
	return 1;
}

/* Load the next non-empty page of @c. Return: 1, 0 at the end, or < 0. */
static int next_page(struct vms_trace *t, struct vms_cpu_stream *c)
{
	const unsigned int hdr = 8 + t->info.long_size, ps = t->info.page_size;

	for (;;) {
		uint64_t commit, size;
		const uint8_t *page;
		int ret;

		if (c->pos >= c->len) {
			ret = t->live			 ? vms_live_fill(t, c)
			      : t->comp == VMS_COMP_NONE ? fill_window(t, c)
							 : fill_chunk(t, c);
			if (ret <= 0)
				return ret;
		}
		page = c->window + c->pos;
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
		memcpy(&c->ts, page, 8);
		c->data = page + hdr;
		c->size = (uint32_t)size;
		c->next = 0;
		c->page_end = page + hdr + size;
		if (commit & MISSED_EVENTS) {
			uint64_t n = 0;

			if (commit & MISSED_STORED)
				memcpy(&n, c->data + size, t->info.long_size);
			c->lost_pending = true;
			c->lost_count = n; /* 0: the kernel did not say how many */
		}
		return 1;
	}
}

static inline uint32_t rd4(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * The next data record of the loaded page: NULL at its end. Nothing is read past the
 * page's commit (the page may end a memory mapping): a header, or a length word, that does
 * not fit ends the page. A record that does not end inside the page is reported by the
 * caller.
 */
static inline const uint8_t *page_next(struct vms_cpu_stream *c, uint32_t *len)
{
	while (c->next + 4 <= c->size) {
		const uint8_t *p = c->data + c->next;
		uint32_t h = rd4(p), type_len = h & 31, delta = h >> 5;
		uint64_t length = 0;

		p += 4;
		if ((type_len == 0 || type_len >= TYPE_PADDING) && c->next + 8 > c->size)
			break;
		switch (type_len) {
		case TYPE_PADDING:
			length = rd4(p);
			c->ts += delta;
			break;
		case TYPE_TIME_EXTEND:
			c->ts += ((uint64_t)rd4(p) << TS_SHIFT) + delta;
			p += 4;
			break;
		case TYPE_TIME_STAMP:
			c->ts = (((uint64_t)rd4(p) << TS_SHIFT) + delta) | (c->ts & TS_MSB);
			p += 4;
			break;
		case 0:
			length = ((uint64_t)rd4(p) - 4 + 3) & ~3ULL;
			p += 4;
			c->ts += delta;
			break;
		default:
			length = type_len * 4u;
			c->ts += delta;
			break;
		}
		if ((uint64_t)(p - c->data) + length > UINT32_MAX)
			length = UINT32_MAX; /* damage: ends the page, reported below */
		c->next = (uint32_t)((uint64_t)(p - c->data) + length);
		if (type_len >= TYPE_PADDING)
			continue;
		*len = (uint32_t)length;
		return p;
	}
	c->next = c->size;
	return NULL;
}

/* Move @c to its next record. Return: 1, 0 at the end of its data, or < 0. */
static int cpu_advance(struct vms_trace *t, struct vms_cpu_stream *c)
{
	for (;;) {
		uint32_t len;
		const uint8_t *rec = c->size ? page_next(c, &len) : NULL;
		int ret;

		if (rec) {
			if (rec + len > c->page_end || len < 8)
				return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
						      "offset %llu: CPU %d: a record runs past its "
						      "page or is too short",
						      (unsigned long long)(c->buf_file_off +
									   c->pos -
									   t->info.page_size),
						      c->cpu);
			c->rec = (void *)rec;
			c->rec_size = (int)len;
			c->rec_ts = c->ts;
			return 1;
		}
		ret = next_page(t, c);
		if (ret <= 0)
			return ret;
	}
}

/* ---- the heap of CPUs, keyed by their current record's timestamp ---- */

/* A CPU with a pending LOST record sorts at the start of its gap. */
static inline uint64_t key_ts(const struct vms_cpu_stream *c)
{
	return c->lost_pending ? c->last_ts : c->rec_ts;
}

static inline bool heap_less(const struct vms_trace *t, unsigned int a, unsigned int b)
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

/*
 * The earliest key among the CPUs below the heap's top: the top CPU's records that come
 * strictly before it can be handed out without a heap operation. (Equal keys go through
 * the heap, which orders them by CPU.)
 */
static void set_threshold(struct vms_trace *t)
{
	uint64_t th = UINT64_MAX;

	for (unsigned int i = 1; i <= 2 && i < t->heap_len; i++) {
		uint64_t k = key_ts(&t->cpus[t->heap[i]]);

		if (k < th)
			th = k;
	}
	t->threshold = th;
}

int vms_dat_stream_init(struct vms_trace *t)
{
	if (t->live) {
		t->heap = calloc(t->ncpus ? t->ncpus : 1, sizeof(*t->heap));
		return t->heap ? 0 : -ENOMEM;
	}
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

		if (t->comp == VMS_COMP_NONE) {
			c->use_map = true;
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
			c->cur = -1;
			c->file_off += 4;
		}
		t->info.data_bytes += t->comp == VMS_COMP_NONE ? c->file_size : 0;
	}
	return 0;
}

void vms_dat_stream_free(struct vms_trace *t)
{
	if (t->worker_started) {
		pthread_mutex_lock(&t->lock);
		t->worker_quit = true;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->worker, NULL);
		t->worker_started = false;
	}
	for (unsigned int i = 0; t->cpus && i < t->ncpus; i++) {
		for (int k = 0; k < 2; k++) {
			free(t->cpus[i].slot[k].buf);
			free(t->cpus[i].slot[k].cbuf);
		}
	}
	for (unsigned int i = 0; t->cpus && i < t->ncpus; i++) {
		free(t->cpus[i].buf);
		free(t->cpus[i].cbuf);
		if (t->cpus[i].map)
			munmap(t->cpus[i].map, t->cpus[i].map_len);
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

/* Hand out the heap top's record (or its pending LOST record). */
static int deliver(struct vms_trace *t, struct vms_record *rec)
{
	struct vms_cpu_stream *c;

	c = &t->cpus[t->heap[0]];
	rec->cpu = c->cpu;
	rec->lost_to_ts = 0;
	rec->lost_count = 0;
	if (c->lost_pending) {
		c->lost_pending = false;
		rec->type = VMS_RECORD_LOST;
		rec->pid = -1;
		rec->data = NULL;
		rec->size = 0;
		rec->ts = c->last_ts;
		rec->lost_to_ts = c->rec_ts;
		rec->lost_count = c->lost_count;
		t->lost += c->lost_count;
		t->lost_windows++;
		heap_down(t, 0); /* its record now sorts by its own time */
		set_threshold(t);
		return 1;
	}
	rec->ts = c->rec_ts;
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

static void heap_up(struct vms_trace *t, unsigned int i)
{
	while (i && heap_less(t, t->heap[i], t->heap[(i - 1) / 2])) {
		unsigned int p = (i - 1) / 2, tmp = t->heap[i];

		t->heap[i] = t->heap[p];
		t->heap[p] = tmp;
		i = p;
	}
}

/*
 * A live trace: records below the watermark go out in time order; otherwise a new round
 * reads every CPU (vms_live_round()) and the CPUs that ran dry come back into the heap.
 */
static int live_next(struct vms_trace *t, struct vms_record *rec)
{
	for (;;) {
		int ret;

		if (t->advance_pending) {
			struct vms_cpu_stream *top = &t->cpus[t->heap[0]];

			t->advance_pending = false;
			ret = cpu_advance(t, top);
			if (ret < 0)
				stream_error(t, ret);
			if (ret != 1) {
				top->in_heap = false;
				t->heap[0] = t->heap[--t->heap_len];
			}
			heap_down(t, 0);
		}
		if (t->heap_len && key_ts(&t->cpus[t->heap[0]]) < t->live_w)
			return deliver(t, rec);
		if (t->live_ended && !t->heap_len)
			return t->deferred_err;
		if (t->heap_len && t->live_ended)
			return deliver(t, rec);
		if (!t->live_ended && t->started) {
			struct timespec nap = { 0, 20000000 };

			nanosleep(&nap, NULL);
		}
		t->started = true;
		vms_live_round(t);
		for (unsigned int i = 0; i < t->ncpus; i++) {
			struct vms_cpu_stream *c = &t->cpus[i];

			if (c->in_heap)
				continue;
			ret = cpu_advance(t, c);
			if (ret < 0)
				stream_error(t, ret);
			if (ret == 1) {
				c->in_heap = true;
				t->heap[t->heap_len++] = i;
				heap_up(t, t->heap_len - 1);
			}
		}
	}
}

int vms_trace_next(struct vms_trace *t, struct vms_record *rec)
{
	int ret;

	if (t->live)
		return live_next(t, rec);

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
		set_threshold(t);
	} else if (t->advance_pending) {
		/* The caller is done with the last record: move its CPU on. While that CPU's
		 * records come before every other CPU's next one, the heap is left alone. */
		struct vms_cpu_stream *top = &t->cpus[t->heap[0]];

		t->advance_pending = false;
		ret = cpu_advance(t, top);
		if (ret == 1 && !top->lost_pending && top->rec_ts < t->threshold) {
			/* fast path */
		} else {
			if (ret < 0)
				stream_error(t, ret);
			if (ret != 1)
				t->heap[0] = t->heap[--t->heap_len];
			heap_down(t, 0);
			set_threshold(t);
		}
	}
	if (!t->heap_len)
		return t->deferred_err;

	return deliver(t, rec);
}
