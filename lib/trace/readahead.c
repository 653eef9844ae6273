// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Read-ahead: while the caller analyses one batch of records, a thread of the reader walks
 * and merges the next ones, and passes whole batches through a ring of NBATCH: one lock
 * round per batch, not per record. Records are not copied: they point into the CPUs'
 * windows (mappings, buffers, decompressed chunks), and a window the thread replaces is
 * retired rather than freed, until the caller has released every batch that may point into
 * it. The counters the caller sees are those of the last batch it took.
 *
 * A live trace, a machine with one CPU, or a caller that only ever asks for one record at
 * a time (vms_trace_next()) reads in the caller's thread (vms_dat_next()).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace-local.h"

#define NBATCH 4
#define BATCH_RECS 16384 /* fewer hand-overs: each costs the two threads a lock round */
#define DIRECT_RECS 256

struct batch {
	struct vms_record recs[BATCH_RECS];
	unsigned int n;
	int end; /* after this batch: 0 more, 1 the end, < 0 the error that ended it */
	struct vms_trace_counts cnt;
};

struct readahead {
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct batch *b;     /* NBATCH */
	uint64_t head, tail; /* batches [tail, head) are filled and not yet released */
	bool quit;
	/* the caller's side */
	struct batch *cur; /* taken from the ring, released on the next take */
	unsigned int pos;  /* records of cur handed out */
	bool ended;
	int final; /* what the stream returns once ended */
	struct vms_trace_counts seen;
};

/* Fill @b from the stream. Its records point into the CPUs' windows, which are retired,
 * not freed, when they are replaced (see vms_retire()). */
static void fill(struct vms_trace *t, struct batch *b)
{
	int ret = vms_dat_next(t, b->recs, BATCH_RECS);

	b->n = ret > 0 ? (unsigned int)ret : 0;
	b->end = ret > 0 ? 0 : ret == 0 ? 1 : ret;
	b->cnt = t->cnt;
}

static void *producer(void *arg)
{
	struct vms_trace *t = arg;
	struct readahead *ra = t->ra;

	for (;;) {
		struct batch *b;
		uint64_t released;
		bool end;

		pthread_mutex_lock(&ra->lock);
		while (!ra->quit && ra->head - ra->tail == NBATCH)
			pthread_cond_wait(&ra->cond, &ra->lock);
		if (ra->quit) {
			pthread_mutex_unlock(&ra->lock);
			break;
		}
		b = &ra->b[ra->head % NBATCH];
		released = ra->tail;
		t->retire_tag = ra->head;
		pthread_mutex_unlock(&ra->lock);

		vms_retired_reclaim(t, released);
		fill(t, b);
		end = b->end != 0;

		pthread_mutex_lock(&ra->lock);
		ra->head++;
		pthread_cond_broadcast(&ra->cond);
		pthread_mutex_unlock(&ra->lock);
		if (end)
			break;
	}
	return NULL;
}

void vms_readahead_free(struct vms_trace *t)
{
	struct readahead *ra = t->ra;

	if (!ra)
		return;
	if (ra->thread_started) {
		pthread_mutex_lock(&ra->lock);
		ra->quit = true;
		pthread_cond_broadcast(&ra->cond);
		pthread_mutex_unlock(&ra->lock);
		pthread_join(ra->thread, NULL);
	}
	free(ra->b);
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->cond);
	free(ra);
	t->ra = NULL;
}

/* Start the read-ahead thread where it pays; false: read in the caller's thread. */
static bool readahead_start(struct vms_trace *t)
{
	struct readahead *ra;

	if (t->live || t->readahead < 0 || (!t->readahead && sysconf(_SC_NPROCESSORS_ONLN) < 2))
		return false;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return false;
	ra->b = calloc(NBATCH, sizeof(*ra->b));
	if (!ra->b) {
		free(ra);
		return false;
	}
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->cond, NULL);
	ra->seen = t->cnt;
	t->ra = ra;
	t->retire_mode = true;
	if (pthread_create(&ra->thread, NULL, producer, t)) {
		t->retire_mode = false;
		vms_readahead_free(t);
		return false;
	}
	ra->thread_started = true;
	return true;
}

/* Make records of the current batch available: their number, or what the stream ended with. */
static int available(struct readahead *ra)
{
	while (!ra->cur || ra->pos >= ra->cur->n) {
		struct batch *b;

		if (ra->ended)
			return ra->final;
		pthread_mutex_lock(&ra->lock);
		if (ra->cur) {
			ra->tail++; /* the caller is done with it: the producer may refill it */
			pthread_cond_broadcast(&ra->cond);
			ra->cur = NULL;
		}
		while (ra->head == ra->tail)
			pthread_cond_wait(&ra->cond, &ra->lock);
		b = &ra->b[ra->tail % NBATCH];
		pthread_mutex_unlock(&ra->lock);
		ra->cur = b;
		ra->pos = 0;
		ra->seen = b->cnt;
		if (b->end) {
			ra->ended = true;
			ra->final = b->end == 1 ? 0 : b->end;
		}
	}
	return (int)(ra->cur->n - ra->pos);
}

int vms_trace_next_batch(struct vms_trace *t, const struct vms_record **recs)
{
	int n;

	if (!t->ra && !t->direct && !readahead_start(t))
		t->direct = calloc(DIRECT_RECS, sizeof(*t->direct));
	if (!t->ra) {
		if (!t->direct)
			return -ENOMEM;
		*recs = t->direct;
		return vms_dat_next(t, t->direct, DIRECT_RECS);
	}
	n = available(t->ra);
	if (n > 0) {
		*recs = &t->ra->cur->recs[t->ra->pos];
		t->ra->pos = t->ra->cur->n;
	}
	return n;
}

int vms_trace_next(struct vms_trace *t, struct vms_record *rec)
{
	int n;

	if (!t->ra)
		return vms_dat_next(t, rec, 1);
	n = available(t->ra);
	if (n > 0) {
		*rec = t->ra->cur->recs[t->ra->pos++];
		n = 1;
	}
	return n;
}

const struct vms_trace_counts *vms_trace_counts(const struct vms_trace *t)
{
	return t->ra ? &t->ra->seen : &t->cnt;
}
