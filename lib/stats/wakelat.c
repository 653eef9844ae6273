// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Wakeup latency of chosen threads, live (vmscope/wakelat.h): sched_wakeup and
 * sched_switch traced in an instance of our own, filtered by set_event_pid, timed by a
 * thread into an open-addressing table of fixed size that is rebuilt only when the set of
 * threads changes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/trace.h"
#include "vmscope/wakelat.h"

#define DEFAULT_THREADS 4096

const uint64_t vms_wakelat_bounds_ns[VMS_WAKELAT_BOUNDS] = {
	1000,	  2000,	     5000,	10000,	   20000,      50000,	 100000,
	200000,	  500000,    1000000,	2000000,   5000000,    10000000, 20000000,
	50000000, 100000000, 200000000, 500000000, 1000000000,
};

struct slot {
	int tid;	  /* 0: empty */
	int on_cpu;	  /* 1 switched in, 0 switched out, -1 not known */
	uint64_t woke_ns; /* pending wakeup, 0: none */
	struct vms_wakelat_hist h;
};

struct vms_wakelat {
	unsigned int max_threads;
	pthread_mutex_t lock;
	struct slot *slots; /* cap a power of 2, at most half full */
	size_t cap;
	uint64_t lost;
	/* live */
	struct vms_trace *trace;
	int id_wakeup, id_switch;
	struct vms_field f_pid, f_prev, f_next;
	pthread_t thread;
	bool thread_started;
};

static size_t tid_hash(int tid)
{
	uint64_t h = (uint64_t)(uint32_t)tid * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h ^ (h >> 31));
}

static struct slot *find(struct slot *slots, size_t cap, int tid)
{
	size_t m = cap - 1, i = tid_hash(tid) & m;

	if (tid <= 0)
		return NULL;
	for (;;) {
		struct slot *s = &slots[i];

		if (s->tid == tid)
			return s;
		if (!s->tid)
			return NULL;
		i = (i + 1) & m;
	}
}

static struct slot *insert(struct slot *slots, size_t cap, int tid)
{
	size_t m = cap - 1, i = tid_hash(tid) & m;

	while (slots[i].tid && slots[i].tid != tid)
		i = (i + 1) & m;
	slots[i].tid = tid;
	return &slots[i];
}

static unsigned int bucket_of(uint64_t ns)
{
	unsigned int lo = 0, hi = VMS_WAKELAT_BOUNDS;

	/* the first bound >= ns; VMS_WAKELAT_BOUNDS for +Inf */
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (vms_wakelat_bounds_ns[mid] >= ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- the state machine (under w->lock) ---- */

static void on_wakeup(struct vms_wakelat *w, int tid, uint64_t ts)
{
	struct slot *s = find(w->slots, w->cap, tid);

	/* Woken before it left its CPU: it does not wait. */
	if (s && s->on_cpu != 1)
		s->woke_ns = ts ? ts : 1;
}

static void on_switch(struct vms_wakelat *w, int prev, int next, uint64_t ts)
{
	struct slot *s = find(w->slots, w->cap, prev);

	if (s) {
		/* Woken, and running again without a switch in that the trace showed: some
		 * kernels do not trace every switch away from the idle task. */
		if (s->woke_ns)
			s->h.untimed++;
		s->woke_ns = 0;
		s->on_cpu = 0;
	}
	s = find(w->slots, w->cap, next);
	if (!s)
		return;
	if (s->woke_ns) {
		uint64_t d = ts > s->woke_ns ? ts - s->woke_ns : 0;

		s->h.count++;
		s->h.sum_ns += d;
		if (d > s->h.max_ns)
			s->h.max_ns = d;
		s->h.bucket[bucket_of(d)]++;
		s->woke_ns = 0;
	}
	s->on_cpu = 1;
}

static void on_lost(struct vms_wakelat *w, uint64_t count)
{
	w->lost += count ? count : 1;
	for (size_t i = 0; i < w->cap; i++) {
		w->slots[i].woke_ns = 0;
		w->slots[i].on_cpu = -1;
	}
}

void vms_wakelat_feed_wakeup(struct vms_wakelat *w, int tid, uint64_t ts)
{
	pthread_mutex_lock(&w->lock);
	on_wakeup(w, tid, ts);
	pthread_mutex_unlock(&w->lock);
}

void vms_wakelat_feed_switch(struct vms_wakelat *w, int prev, int next, uint64_t ts)
{
	pthread_mutex_lock(&w->lock);
	on_switch(w, prev, next, ts);
	pthread_mutex_unlock(&w->lock);
}

void vms_wakelat_feed_lost(struct vms_wakelat *w, uint64_t count)
{
	pthread_mutex_lock(&w->lock);
	on_lost(w, count);
	pthread_mutex_unlock(&w->lock);
}

/* ---- live ---- */

static void *trace_main(void *arg)
{
	struct vms_wakelat *w = arg;
	struct vms_record rec;

	while (vms_trace_next(w->trace, &rec) > 0) {
		pthread_mutex_lock(&w->lock);
		if (rec.type == VMS_RECORD_LOST)
			on_lost(w, rec.lost_count);
		else if ((int)rec.type == w->id_wakeup)
			on_wakeup(w, (int)vms_field_u64(&w->f_pid, &rec), rec.ts);
		else if ((int)rec.type == w->id_switch)
			on_switch(w, (int)vms_field_u64(&w->f_prev, &rec),
				  (int)vms_field_u64(&w->f_next, &rec), rec.ts);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

static int open_trace(struct vms_wakelat *w, const struct vms_wakelat_opts *o, char *msg,
		      size_t msglen)
{
	static const char *const events[] = { "sched:sched_wakeup", "sched:sched_switch", NULL };
	struct vms_live_opts lo = { .sz = sizeof(lo), .events = events };
	int ret;

	lo.buffer_kb = o && o->buffer_kb ? o->buffer_kb : 1024;
	/* Histograms are read at scrape time, seconds apart: 100 ms between reads of the CPUs
	 * is plenty for the few thousand switches per second of the threads timed. */
	lo.poll_ms = 100;
	ret = vms_trace_open_live(&lo, &w->trace);
	if (ret) {
		snprintf(msg, msglen, "%s", vms_trace_open_error());
		return ret;
	}
	/* Nothing is timed until the threads are known. */
	vms_trace_live_set_pids(w->trace, NULL, 0);
	w->id_wakeup = vms_trace_event_id(w->trace, "sched", "sched_wakeup");
	w->id_switch = vms_trace_event_id(w->trace, "sched", "sched_switch");
	if (w->id_wakeup < 0 || w->id_switch < 0 ||
	    vms_trace_field(w->trace, w->id_wakeup, "pid", &w->f_pid) ||
	    vms_trace_field(w->trace, w->id_switch, "prev_pid", &w->f_prev) ||
	    vms_trace_field(w->trace, w->id_switch, "next_pid", &w->f_next)) {
		snprintf(msg, msglen,
			 "this kernel lacks sched_wakeup or sched_switch (or their "
			 "pid fields)");
		return -ENOENT;
	}
	ret = pthread_create(&w->thread, NULL, trace_main, w);
	if (ret) {
		snprintf(msg, msglen, "cannot start the timing thread: %s", strerror(ret));
		return -ret;
	}
	w->thread_started = true;
	return 0;
}

int vms_wakelat_new(const struct vms_wakelat_opts *opts, struct vms_wakelat **out, char *msg,
		    size_t msglen)
{
	struct vms_wakelat *w;
	int ret = 0;

	*out = NULL;
	if (msglen)
		msg[0] = '\0';
	if (opts && opts->sz < sizeof(*opts))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	w->max_threads = opts && opts->max_threads ? opts->max_threads : DEFAULT_THREADS;
	w->cap = 16;
	w->slots = calloc(w->cap, sizeof(*w->slots));
	if (!w->slots)
		ret = -ENOMEM;
	else if (!(opts && opts->no_trace))
		ret = open_trace(w, opts, msg, msglen);
	if (ret) {
		vms_wakelat_free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int vms_wakelat_set_threads(struct vms_wakelat *w, const int *tids, size_t n)
{
	size_t keep = n < w->max_threads ? n : w->max_threads, cap = 16;
	struct slot *slots, *old;
	int ret = 0;

	while (cap < 2 * keep)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	if (w->trace) {
		ret = vms_trace_live_set_pids(w->trace, tids, keep);
		if (ret) {
			free(slots);
			return ret;
		}
	}
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < keep; i++) {
		struct slot *s, *was;

		if (tids[i] <= 0 || find(slots, cap, tids[i]))
			continue;
		s = insert(slots, cap, tids[i]);
		s->on_cpu = -1;
		was = find(w->slots, w->cap, tids[i]);
		if (was)
			*s = *was;
	}
	old = w->slots;
	w->slots = slots;
	w->cap = cap;
	pthread_mutex_unlock(&w->lock);
	free(old);
	return n > keep ? -ENOSPC : 0;
}

int vms_wakelat_read(struct vms_wakelat *w, int tid, struct vms_wakelat_hist *out)
{
	struct slot *s;
	int ret = -ENOENT;

	pthread_mutex_lock(&w->lock);
	s = find(w->slots, w->cap, tid);
	if (s) {
		*out = s->h;
		ret = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}

uint64_t vms_wakelat_lost(struct vms_wakelat *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = w->lost;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void vms_wakelat_free(struct vms_wakelat *w)
{
	if (!w)
		return;
	if (w->trace)
		vms_trace_stop(w->trace);
	if (w->thread_started)
		pthread_join(w->thread, NULL);
	if (w->trace)
		vms_trace_close(w->trace);
	pthread_mutex_destroy(&w->lock);
	free(w->slots);
	free(w);
}
