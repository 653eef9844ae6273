/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Wakeup latency of chosen threads, live: the time from sched_wakeup (the thread made
 * runnable) to the sched_switch that puts it on a CPU, per thread, in a histogram of fixed
 * buckets (1 us to 1 s, 1-2-5 steps) with the exact sum and count: what a Prometheus
 * histogram needs, and what a vCPU's guest feels as timer and interrupt latency.
 *
 * The events are traced in a tracefs instance of vmscope's own, filtered in the kernel by
 * the threads (set_event_pid), and timed by a thread of the library into a fixed table:
 * nothing is allocated per event. A wakeup of a thread that had not yet left its CPU is
 * void; lost events clear every pending wakeup and are counted. A woken thread that is
 * switched out again without a switch in between (some kernels do not trace every switch
 * away from the idle task) ran from an unknown time: its wakeup is counted as untimed.
 * The same state machine can be fed by hand (vms_wakelat_new() without tracing).
 */
#ifndef VMSCOPE_WAKELAT_H
#define VMSCOPE_WAKELAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Upper bounds (ns, inclusive) of the buckets; the last bucket (+Inf) is beyond them. */
#define VMS_WAKELAT_BOUNDS 19
#define VMS_WAKELAT_BUCKETS (VMS_WAKELAT_BOUNDS + 1)
VMS_API extern const uint64_t vms_wakelat_bounds_ns[VMS_WAKELAT_BOUNDS];

struct vms_wakelat_hist {
	uint64_t untimed;		      /* wakeups whose switch in was not traced */
	uint64_t count;			      /* wakeups timed */
	uint64_t sum_ns;		      /* their latencies, exact */
	uint64_t max_ns;		      /* the longest */
	uint64_t bucket[VMS_WAKELAT_BUCKETS]; /* per bucket, not cumulative */
};

struct vms_wakelat_opts {
	size_t sz;		  /* sizeof(struct vms_wakelat_opts) */
	unsigned int max_threads; /* threads timed at once; 0: 4096 */
	unsigned int buffer_kb;	  /* ring buffer per CPU; 0: 1024 */
	bool no_trace;		  /* no tracefs: events come from vms_wakelat_feed_*() */
};

struct vms_wakelat;

/**
 * vms_wakelat_new() - start timing wakeups (of no thread yet: see vms_wakelat_set_threads())
 * @opts: NULL for the defaults
 * @out: receives the timer; free with vms_wakelat_free()
 * @msg: receives why it cannot trace (no tracefs, not root), with @msglen its size
 * Return: 0, -ENOMEM, or the error of the live trace (-EACCES, -ENOENT, ...).
 */
VMS_API int vms_wakelat_new(const struct vms_wakelat_opts *opts, struct vms_wakelat **out,
			    char *msg, size_t msglen);

/**
 * vms_wakelat_set_threads() - time exactly these threads from now on
 * A thread kept from the previous list keeps its histogram; a new one starts empty; one
 * left out is forgotten.
 * Return: 0, -ENOSPC (more than max_threads: the first max_threads are timed), -ENOMEM,
 * or the tracefs error of the filter (the previous list stays in force then).
 */
VMS_API int vms_wakelat_set_threads(struct vms_wakelat *w, const int *tids, size_t n);

/** vms_wakelat_read() - @tid's histogram so far; -ENOENT when it is not timed. */
VMS_API int vms_wakelat_read(struct vms_wakelat *w, int tid, struct vms_wakelat_hist *out);

/** vms_wakelat_lost() - events the ring buffer lost (0 when it lost none; 1 when unknown). */
VMS_API uint64_t vms_wakelat_lost(struct vms_wakelat *w);

/* Feeding by hand (tests, other sources), in time order: @tid was made runnable at @ts; a
 * sched_switch from @prev to @next at @ts; events were lost (pending wakeups are void). */
VMS_API void vms_wakelat_feed_wakeup(struct vms_wakelat *w, int tid, uint64_t ts);
VMS_API void vms_wakelat_feed_switch(struct vms_wakelat *w, int prev, int next, uint64_t ts);
VMS_API void vms_wakelat_feed_lost(struct vms_wakelat *w, uint64_t count);

/** vms_wakelat_free() - stop tracing, remove the instance, free; NULL is a no-op. */
VMS_API void vms_wakelat_free(struct vms_wakelat *w);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_WAKELAT_H */
