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
 * are merged by timestamp with a tournament tree. A CPU whose data is damaged stops there; the
 * other CPUs are read to their end and the error is returned last, so every valid record is
 * delivered.
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
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 1024
#endif

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
		int ret = vms_retire(t, c->map, c->map_len);

		c->map = NULL;
		if (ret)
			return ret;
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
	madvise(m, want, MADV_WILLNEED);
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
	if (t->retire_mode) {
		/* records handed out may point into the buffer: read into a new one */
		uint8_t *nb = malloc(c->cap);

		if (!nb || vms_retire(t, c->buf, 0)) {
			free(nb);
			return vms_trace_fail(t, -ENOMEM, "CPU %d: out of memory", c->cpu);
		}
		c->buf = nb;
	}
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
 * Compressed streams: worker threads decompress each CPU's chunks ahead of the walk, into
 * a ring of slots per CPU, so decompression (the slow part of a zstd file) runs beside the
 * parsing, on every core. A worker reserves a CPU's next chunk under the lock (it reads the
 * chunk's 8-byte header there, so a CPU's chunks are reserved in file order) and reads and
 * decompresses it outside the lock: several chunks of one CPU may load at once, and the
 * CPU whose walk is nearest to starving is served first. The threads wake each other only
 * when one is waiting: a worker when half a ring is free, the walk when the slot it needs
 * is loaded. A worker touches only its slot and its own zstd context while it loads;
 * errors are handed over in the slot and reported by the walking thread, in order.
 */

#define CHUNK_SLOTS 32 /* per trace: 32 chunks of 10 pages ahead are 1.3 MiB */
#define CPU_SLOTS_MIN 2
#define CPU_SLOTS_MAX 8

static int slot_fail(struct chunk_slot *s, int err, const char *what)
{
	s->err = err;
	s->what = what;
	return err;
}

/* Reserve the next chunk of @c into slot @s: read and check its header (lock held). */
static int reserve_chunk(struct vms_trace *t, struct vms_cpu_stream *c, struct chunk_slot *s)
{
	uint32_t hdr[2];
	uint64_t off = c->file_off + c->consumed;

	s->file_off = off;
	if (c->file_size - c->consumed < 8 || pread(t->fd, hdr, 8, (off_t)off) != 8)
		return slot_fail(s, -VMS_E_TRACE_CORRUPT, "chunk header truncated");
	if (hdr[0] > MAX_CHUNK || hdr[1] > MAX_CHUNK || !hdr[1] || hdr[1] % t->info.page_size ||
	    hdr[0] > c->file_size - c->consumed - 8)
		return slot_fail(s, -VMS_E_TRACE_CORRUPT, "chunk sizes do not fit the data");
	s->zsize = hdr[0];
	s->size = hdr[1];
	c->consumed += 8 + (uint64_t)hdr[0];
	c->chunks_left--;
	return 0;
}

/* Read and decompress the chunk reserved in slot @s (worker side, lock not held). */
static int load_chunk(struct vms_trace *t, void **dctx, struct chunk_slot *s)
{
	if (s->size + t->info.page_size > s->cap) {
		uint8_t *nb = realloc(s->buf, s->size + t->info.page_size);

		if (!nb)
			return slot_fail(s, -ENOMEM, "out of memory");
		s->buf = nb;
		s->cap = s->size + t->info.page_size;
	}
	if (s->zsize > s->ccap) {
		uint8_t *nb = realloc(s->cbuf, s->zsize);

		if (!nb)
			return slot_fail(s, -ENOMEM, "out of memory");
		s->cbuf = nb;
		s->ccap = s->zsize;
	}
	if (pread(t->fd, s->cbuf, s->zsize, (off_t)(s->file_off + 8)) != (ssize_t)s->zsize)
		return slot_fail(s, -VMS_E_TRACE_CORRUPT, "chunk truncated");
	if (vms_decompress(t, dctx, s->cbuf, s->zsize, s->buf, s->size))
		return slot_fail(s, -VMS_E_TRACE_CORRUPT, "chunk does not decompress");
	memset(s->buf + s->size, 0, t->info.page_size);
	s->len = s->size;
	s->err = 0;
	return 0;
}

/* The CPU with a free slot whose walk has the fewest chunks loaded ahead, or NULL. */
static struct vms_cpu_stream *neediest(struct vms_trace *t)
{
	struct vms_cpu_stream *best = NULL;

	for (unsigned int i = 0; i < t->ncpus; i++) {
		struct vms_cpu_stream *c = &t->cpus[i];

		if (!c->load_done && c->slot[c->load].state == SLOT_EMPTY &&
		    (!best || c->pending < best->pending))
			best = c;
	}
	return best;
}

static void *prefetch_worker(void *arg)
{
	struct vms_worker *w = arg;
	struct vms_trace *t = w->t;

	pthread_mutex_lock(&t->lock);
	while (!t->worker_quit) {
		struct vms_cpu_stream *c = neediest(t);
		struct chunk_slot *s;

		if (!c) {
			t->workers_idle++;
			pthread_cond_wait(&t->cond, &t->lock);
			t->workers_idle--;
			continue;
		}
		s = &c->slot[c->load];
		c->load = (c->load + 1) % c->nslot;
		c->pending++;
		if (!c->chunks_left) {
			s->state = SLOT_END;
			c->load_done = true;
		} else if (reserve_chunk(t, c, s)) {
			s->state = SLOT_ERROR;
			c->load_done = true;
		} else {
			if (!s->buf && t->nspare) {
				s->buf = t->spare[--t->nspare].p;
				s->cap = t->spare[t->nspare].cap;
			}
			s->state = SLOT_LOADING;
			pthread_mutex_unlock(&t->lock);
			load_chunk(t, &w->dctx, s);
			pthread_mutex_lock(&t->lock);
			if (s->err)
				c->load_done = true; /* the walk stops at this slot */
			s->state = s->err ? SLOT_ERROR : SLOT_READY;
		}
		if (t->walker_waiting)
			pthread_cond_signal(&t->walk_cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Start the decompression workers. */
static int start_workers(struct vms_trace *t)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = online > 3 ? (unsigned int)online - 1 : 2;

	t->workers_started = true;
	if (n > VMS_DECOMPRESS_WORKERS)
		n = VMS_DECOMPRESS_WORKERS;
	for (unsigned int i = 0; i < n; i++) {
		struct vms_worker *w = &t->workers[i];

		w->t = t;
		if (pthread_create(&w->thread, NULL, prefetch_worker, w)) {
			if (i)
				break; /* the others do it */
			return vms_trace_fail(t, -EAGAIN, "cannot start the decompression thread");
		}
		w->started = true;
	}
	return 0;
}

/* Walk the next decompressed chunk of @c (walking side). Return: 1, 0 at the end, < 0. */
static int fill_chunk(struct vms_trace *t, struct vms_cpu_stream *c)
{
	struct chunk_slot *s;
	int ret = 1;

	if (!t->workers_started && (ret = start_workers(t)) < 0)
		return ret;
	pthread_mutex_lock(&t->lock);
	if (c->cur >= 0) {
		struct chunk_slot *old = &c->slot[c->cur];

		/* records handed out may point into it: the worker gets a new buffer */
		if (t->retire_mode) {
			if (vms_retire_chunk(t, old->buf, old->cap)) {
				pthread_mutex_unlock(&t->lock);
				return vms_trace_fail(t, -ENOMEM, "CPU %d: out of memory", c->cpu);
			}
			old->buf = NULL;
			old->cap = 0;
		}
		old->state = SLOT_EMPTY; /* done with it: a worker may refill it */
		c->pending--;
		if (t->workers_idle && c->pending <= c->nslot / 2)
			pthread_cond_signal(&t->cond);
	}
	c->cur = c->cur < 0 ? 0 : (int)((c->cur + 1) % c->nslot);
	s = &c->slot[c->cur];
	while (s->state == SLOT_EMPTY || s->state == SLOT_LOADING) {
		if (t->workers_idle)
			pthread_cond_signal(&t->cond); /* the walk needs one now */
		t->walker_waiting = true;
		pthread_cond_wait(&t->walk_cond, &t->lock);
		t->walker_waiting = false;
	}
	if (s->state == SLOT_END)
		ret = 0;
	else if (s->state == SLOT_ERROR)
		ret = s->err;
	else
		ret = 1;
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

/* cpu_advance() would have to replace @c's window while records in it are handed out */
#define LATER 2

/*
 * Load the next non-empty page of @c. Its window is replaced when it is used up, which ends
 * the records handed out from it: only when @may_refill. Return: 1, 0 at the end, LATER,
 * or < 0.
 */
static int next_page(struct vms_trace *t, struct vms_cpu_stream *c, bool may_refill)
{
	const unsigned int hdr = 8 + t->info.long_size, ps = t->info.page_size;

	for (;;) {
		uint64_t commit, size;
		const uint8_t *page;
		int ret;

		if (c->pos >= c->len) {
			if (!may_refill)
				return LATER;
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
 * Decode the loaded page of @c into its run: the records to hand out, with their times.
 * Records vms_trace_select() leaves out are counted and dropped here, except the first of
 * a page after a gap (its time ends the LOST record). Nothing is read past the page's
 * commit (the page may end a memory mapping): a header, or a length word, that does not
 * fit ends the page. A record that does not end inside the page ends it too, and is
 * reported once the records before it are handed out (page_bad).
 */
static void decode_page(struct vms_trace *t, struct vms_cpu_stream *c)
{
	const uint8_t *data = c->data;
	const uint64_t *sel = t->select;
	const uint32_t size = c->size;
	struct vms_run_rec *run = c->run;
	uint64_t ts = c->ts, last = c->last_ts, skipped = 0;
	uint64_t sk_first = t->cnt.skip_first, sk_last = t->cnt.skip_last;
	bool keep = c->lost_pending;
	uint32_t next = 0, n = 0;

	while (next + 4 <= size) {
		const uint8_t *p = data + next;
		uint32_t h = rd4(p), type_len = h & 31, delta = h >> 5;
		uint64_t length = 0;
		uint32_t off;

		/* Hardware prefetchers stop at 4 KiB boundaries, ring-buffer pages are 4 KiB:
		 * ask for the data a few hundred bytes ahead, into the next page too. */
		__builtin_prefetch(p + PREFETCH_AHEAD);

		p += 4;
		if ((type_len == 0 || type_len >= TYPE_PADDING) && next + 8 > size)
			break;
		switch (type_len) {
		case TYPE_PADDING:
			length = rd4(p);
			ts += delta;
			break;
		case TYPE_TIME_EXTEND:
			ts += ((uint64_t)rd4(p) << TS_SHIFT) + delta;
			p += 4;
			break;
		case TYPE_TIME_STAMP:
			ts = (((uint64_t)rd4(p) << TS_SHIFT) + delta) | (ts & TS_MSB);
			p += 4;
			break;
		case 0:
			length = ((uint64_t)rd4(p) - 4 + 3) & ~3ULL;
			p += 4;
			ts += delta;
			break;
		default:
			length = type_len * 4u;
			ts += delta;
			break;
		}
		off = (uint32_t)(p - data); /* <= next + 12 */
		if (type_len >= TYPE_PADDING) {
			if (off > size || length > size - off)
				break;
			next = off + (uint32_t)length;
			continue;
		}
		if (off > size || length > size - off || length < 8) {
			c->page_bad = true; /* (a length word below 4 reads as a huge length) */
			break;
		}
		next = off + (uint32_t)length;
		last = ts;
		if (sel && !keep) {
			uint16_t type;

			memcpy(&type, p, 2);
			if (!(sel[type >> 6] >> (type & 63) & 1)) {
				/* walked over, counted, and kept for the trace's span */
				skipped++;
				if (ts < sk_first)
					sk_first = ts;
				if (ts > sk_last)
					sk_last = ts;
				continue;
			}
		}
		keep = false;
		run[n].ts = ts;
		run[n].data = p;
		run[n].len = (uint32_t)length;
		n++;
	}
	c->run_n = n;
	c->run_pos = 0;
	c->size = 0; /* decoded */
	c->page_last_ts = last;
	t->cnt.events += skipped;
	t->cnt.skip_first = sk_first;
	t->cnt.skip_last = sk_last;
}

/* Move @c to its next record. Return: 1, 0 at the end of its data, LATER, or < 0. */
static inline __attribute__((always_inline)) int
cpu_advance(struct vms_trace *t, struct vms_cpu_stream *c, bool may_refill)
{
	for (;;) {
		int ret;

		if (c->run_pos < c->run_n) {
			const struct vms_run_rec *r = &c->run[c->run_pos++];

			c->rec = (void *)r->data;
			c->rec_size = (int)r->len;
			c->rec_ts = r->ts;
			return 1;
		}
		if (c->page_bad)
			return vms_trace_fail(
				t, -VMS_E_TRACE_CORRUPT,
				"offset %llu: CPU %d: a record runs past its page or "
				"is too short",
				(unsigned long long)(c->buf_file_off + c->pos - t->info.page_size),
				c->cpu);
		/* the last record of the page, handed out or not, is the last before a gap */
		c->last_ts = c->page_last_ts;
		ret = next_page(t, c, may_refill);
		if (ret != 1)
			return ret;
		decode_page(t, c);
	}
}

/* ---- merging the CPUs: a tournament (loser) tree over their current keys ---- */

/*
 * Leaf i is CPU i (leaves past the CPUs are padding). A CPU's key is the time of its
 * current record, or of the start of its gap while a LOST record is pending; UINT64_MAX
 * when it has none. Node n of the tree keeps the loser of the match played there, node 0
 * the overall winner: the next record. When the winner's key changes, the matches on its
 * path are replayed: log2(leaves) comparisons, without branches (which CPU comes next is
 * data a branch predictor cannot guess). Equal keys go to the lower CPU.
 *
 * With more than a few CPUs the winner mostly keeps on winning for a while: the runner-up's
 * key (the least loser on the winner's path, found by the replay) lets its records go out
 * without a replay while they come strictly before it.
 */
#define REPLAY_ALWAYS 4 /* leaves up to which the replay is cheaper than the test */

/* A CPU with a pending LOST record sorts at the start of its gap. */
static inline uint64_t key_ts(const struct vms_cpu_stream *c)
{
	return c->lost_pending ? c->last_ts : c->rec_ts;
}

static inline void tree_replay(struct vms_trace *t, unsigned int i)
{
	unsigned int *tree = t->tree;
	const uint64_t *key = t->key;
	const unsigned int leaf = i;
	uint64_t k = key[i], th = UINT64_MAX;

	for (unsigned int n = (i + t->leaves) >> 1; n; n >>= 1) {
		unsigned int o = tree[n];
		uint64_t ko = key[o];
		bool sw = ko < k || (ko == k && o < i);
		uint64_t lk = sw ? k : ko;

		tree[n] = sw ? i : o;
		i = sw ? o : i;
		k = sw ? ko : k;
		th = lk < th ? lk : th;
	}
	tree[0] = i;
	/* The losers on this path lost to the new winner only if it is this leaf; another
	 * winner's runner-up may have lost to it below the paths' meeting: replay next time. */
	t->threshold = i == leaf ? th : 0;
}

/* Play every match again (at the start, and after CPUs of a live trace came back). */
static void tree_build(struct vms_trace *t)
{
	const unsigned int l = t->leaves;
	unsigned int *win = t->tree_win;

	for (unsigned int i = 0; i < t->ncpus; i++)
		t->key[i] = t->cpus[i].active ? key_ts(&t->cpus[i]) : UINT64_MAX;
	for (unsigned int i = 0; i < l; i++)
		win[l + i] = i;
	for (unsigned int n = l - 1; n >= 1; n--) {
		unsigned int a = win[2 * n], b = win[2 * n + 1];
		bool bw = t->key[b] < t->key[a] || (t->key[b] == t->key[a] && b < a);

		win[n] = bw ? b : a;
		t->tree[n] = bw ? a : b;
	}
	t->tree[0] = l > 1 ? win[1] : 0;
	t->threshold = 0; /* replay on the first change */
}

/* The winner @w's key changed (its record was handed out, or it has none left). */
static inline void tree_update(struct vms_trace *t, unsigned int w)
{
	uint64_t k = t->cpus[w].active ? key_ts(&t->cpus[w]) : UINT64_MAX;

	t->key[w] = k;
	if (t->leaves <= REPLAY_ALWAYS || k >= t->threshold)
		tree_replay(t, w);
}

/* The CPU whose record is next (an active one). */
static inline struct vms_cpu_stream *tree_winner(struct vms_trace *t)
{
	struct vms_cpu_stream *c = &t->cpus[t->tree[0]];

	if (__builtin_expect(!c->active, 0)) {
		/* the only keys left are UINT64_MAX (damaged times): any active CPU */
		for (unsigned int i = 0; i < t->ncpus; i++) {
			if (t->cpus[i].active) {
				t->tree[0] = i;
				t->threshold = 0;
				return &t->cpus[i];
			}
		}
	}
	return c;
}

int vms_dat_stream_init(struct vms_trace *t)
{
	for (unsigned int i = 0; i < t->ncpus; i++) {
		/* records are 8 bytes at least */
		t->cpus[i].run = calloc(t->info.page_size / 8 + 1, sizeof(*t->cpus[i].run));
		if (!t->cpus[i].run)
			return -ENOMEM;
	}
	t->leaves = 1;
	while (t->leaves < t->ncpus)
		t->leaves *= 2;
	t->tree = calloc(t->leaves, sizeof(*t->tree));
	t->tree_win = calloc(2 * (size_t)t->leaves, sizeof(*t->tree_win));
	t->key = malloc(t->leaves * sizeof(*t->key));
	if (!t->tree || !t->tree_win || !t->key)
		return -ENOMEM;
	for (unsigned int i = 0; i < t->leaves; i++)
		t->key[i] = UINT64_MAX;
	if (t->live)
		return 0;
	size_t pages = t->window_pages;

	/* Bound the windows of many CPUs to 64 MiB in all. */
	if (t->ncpus && pages * t->info.page_size * t->ncpus > (64ULL << 20))
		pages = (64ULL << 20) / t->info.page_size / t->ncpus;
	if (pages < 2)
		pages = 2;
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
			c->nslot = CHUNK_SLOTS / t->ncpus;
			if (c->nslot < CPU_SLOTS_MIN)
				c->nslot = CPU_SLOTS_MIN;
			if (c->nslot > CPU_SLOTS_MAX)
				c->nslot = CPU_SLOTS_MAX;
			c->slot = calloc(c->nslot, sizeof(*c->slot));
			if (!c->slot)
				return -ENOMEM;
		}
		t->info.data_bytes += t->comp == VMS_COMP_NONE ? c->file_size : 0;
	}
	return 0;
}

static int retire(struct vms_trace *t, struct retired r)
{
	if (!t->retire_mode) {
		if (r.len)
			munmap(r.p, r.len);
		else
			free(r.p);
		return 0;
	}
	if (t->nretired == t->retired_cap) {
		size_t ncap = t->retired_cap ? 2 * t->retired_cap : 16;
		struct retired *nr = realloc(t->retired, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM; /* kept (leaked): records may point into it */
		t->retired = nr;
		t->retired_cap = ncap;
	}
	r.tag = t->retire_tag;
	t->retired[t->nretired++] = r;
	return 0;
}

int vms_retire(struct vms_trace *t, void *p, size_t len)
{
	return retire(t, (struct retired){ .p = p, .len = len });
}

int vms_retire_chunk(struct vms_trace *t, void *p, size_t cap)
{
	return retire(t, (struct retired){ .p = p, .cap = cap });
}

void vms_retired_reclaim(struct vms_trace *t, uint64_t released)
{
	bool locked = false;
	size_t k = 0;

	for (size_t i = 0; i < t->nretired; i++) {
		struct retired *r = &t->retired[i];

		if (r->tag >= released) {
			t->retired[k++] = *r;
			continue;
		}
		if (r->cap && released != UINT64_MAX) {
			/* the workers decompress into it again: no page faults, no malloc */
			if (!locked) {
				pthread_mutex_lock(&t->lock);
				locked = true;
			}
			if (t->nspare < VMS_SPARE_BUFS) {
				t->spare[t->nspare++] = *r;
				continue;
			}
		}
		if (r->len)
			munmap(r->p, r->len);
		else
			free(r->p);
	}
	if (locked)
		pthread_mutex_unlock(&t->lock);
	t->nretired = k;
}

void vms_dat_stream_free(struct vms_trace *t)
{
	pthread_mutex_lock(&t->lock);
	t->worker_quit = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	for (unsigned int i = 0; i < VMS_DECOMPRESS_WORKERS; i++) {
		if (t->workers[i].started)
			pthread_join(t->workers[i].thread, NULL);
		t->workers[i].started = false;
		if (t->workers[i].dctx)
			vms_decompress_free(t->workers[i].dctx);
		t->workers[i].dctx = NULL;
	}
	for (unsigned int i = 0; t->cpus && i < t->ncpus; i++) {
		for (unsigned int k = 0; t->cpus[i].slot && k < t->cpus[i].nslot; k++) {
			free(t->cpus[i].slot[k].buf);
			free(t->cpus[i].slot[k].cbuf);
		}
		free(t->cpus[i].slot);
	}
	for (unsigned int i = 0; t->cpus && i < t->ncpus; i++) {
		free(t->cpus[i].run);
		free(t->cpus[i].buf);
		free(t->cpus[i].cbuf);
		if (t->cpus[i].map)
			munmap(t->cpus[i].map, t->cpus[i].map_len);
	}
	vms_retired_reclaim(t, UINT64_MAX);
	free(t->retired);
	while (t->nspare)
		free(t->spare[--t->nspare].p);
	free(t->cpus);
	free(t->tree);
	free(t->tree_win);
	free(t->key);
	if (t->zstd_dctx)
		vms_decompress_free(t->zstd_dctx);
}

/* The first error met while streaming; the stream goes on with the other CPUs. */
static void stream_error(struct vms_trace *t, int ret)
{
	if (!t->deferred_err)
		t->deferred_err = ret;
}

/* Hand out the winner's record (or its pending LOST record). */
static inline __attribute__((always_inline)) int deliver(struct vms_trace *t,
							 struct vms_record *rec)
{
	struct vms_cpu_stream *c = tree_winner(t);

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
		t->cnt.lost += c->lost_count;
		t->cnt.lost_windows++;
		tree_update(t, (unsigned int)(c - t->cpus)); /* its record sorts by its own time */
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
	/* min and max, not first and last: a damaged file's times can go back */
	if (!t->cnt.events_out++ || c->rec_ts < t->cnt.first_out)
		t->cnt.first_out = c->rec_ts;
	if (c->rec_ts > t->cnt.last_out)
		t->cnt.last_out = c->rec_ts;
	t->cnt.events++;
	t->advance_pending = true;
	return 1;
}

/*
 * A live trace: records below the watermark go out in time order; otherwise a new round
 * reads every CPU (vms_live_round()) and the CPUs that ran dry come back.
 */
static int live_next(struct vms_trace *t, struct vms_record *rec)
{
	for (;;) {
		bool back = false;
		int ret;

		if (t->advance_pending) {
			unsigned int w = t->tree[0];
			struct vms_cpu_stream *top = &t->cpus[w];

			t->advance_pending = false;
			ret = cpu_advance(t, top, true);
			if (ret < 0)
				stream_error(t, ret);
			if (ret != 1) {
				top->active = false;
				t->nactive--;
			}
			tree_update(t, w);
		}
		if (t->nactive && t->key[t->tree[0]] < t->live_w)
			return deliver(t, rec);
		if (t->live_ended && !t->nactive)
			return t->deferred_err;
		if (t->nactive && t->live_ended)
			return deliver(t, rec);
		if (!t->live_ended && t->started) {
			struct timespec nap = { t->live_nap_ns / 1000000000L,
						t->live_nap_ns % 1000000000L };

			nanosleep(&nap, NULL);
		}
		t->started = true;
		vms_live_round(t);
		for (unsigned int i = 0; i < t->ncpus; i++) {
			struct vms_cpu_stream *c = &t->cpus[i];

			if (c->active)
				continue;
			ret = cpu_advance(t, c, true);
			if (ret < 0)
				stream_error(t, ret);
			if (ret == 1) {
				c->active = true;
				t->nactive++;
				back = true;
			}
		}
		if (back)
			tree_build(t);
	}
}

static void stream_start(struct vms_trace *t)
{
	t->started = true;
	for (unsigned int i = 0; i < t->ncpus; i++) {
		int ret = cpu_advance(t, &t->cpus[i], true);

		if (ret < 0)
			stream_error(t, ret);
		if (ret == 1) {
			t->cpus[i].active = true;
			t->nactive++;
		}
	}
	tree_build(t);
}

int vms_dat_next(struct vms_trace *t, struct vms_record *recs, unsigned int max)
{
	unsigned int n = 0;

	if (t->live)
		return max ? live_next(t, recs) : 0;
	if (!t->started)
		stream_start(t);
	while (n < max) {
		if (t->advance_pending) {
			/* The CPU of the last record moves on. Without read-ahead, a window is
			 * replaced only at the start of a batch. */
			unsigned int w = t->tree[0];
			struct vms_cpu_stream *top = &t->cpus[w];
			int ret = cpu_advance(t, top, n == 0 || t->retire_mode);

			if (ret == LATER)
				break;
			t->advance_pending = false;
			if (__builtin_expect(ret != 1, 0)) {
				if (ret < 0)
					stream_error(t, ret);
				top->active = false;
				t->nactive--;
			}
			tree_update(t, w);
		}
		if (!t->nactive)
			break;
		deliver(t, &recs[n++]);
	}
	return n ? (int)n : t->deferred_err;
}
