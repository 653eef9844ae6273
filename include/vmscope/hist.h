/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Latency histograms: log-linear buckets over u64 values (ns), exact below 256 and with
 * 256 sub-buckets per power of two above, so any value is known to within 0.4 % whatever
 * its magnitude, and memory grows only with the octaves actually used (1 KiB each).
 * Percentiles are by nearest rank and returned as the middle of their bucket, clamped to
 * the exact minimum and maximum.
 */
#ifndef VMSCOPE_HIST_H
#define VMSCOPE_HIST_H

#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_HIST_SUB_BITS 8
#define VMS_HIST_SUB (1u << VMS_HIST_SUB_BITS)

struct vms_hist {
	uint64_t count;
	uint64_t min, max;
	uint32_t *octave[64 - VMS_HIST_SUB_BITS + 1]; /* [0]: 0..255 exact; [k]: 2^(k+7).. */
};

/** vms_hist_add() - count @value; -ENOMEM only when a new octave cannot be allocated. */
VMS_API int vms_hist_add(struct vms_hist *h, uint64_t value);

/** vms_hist_locate() - the octave and the bucket in it of @v. */
static inline void vms_hist_locate(uint64_t v, unsigned int *oct, unsigned int *sub)
{
	if (v < VMS_HIST_SUB) {
		*oct = 0;
		*sub = (unsigned int)v;
	} else {
		unsigned int top = 63 - (unsigned int)__builtin_clzll(v); /* >= 8 */

		*oct = top - VMS_HIST_SUB_BITS + 1;
		*sub = (unsigned int)(v >> (top - VMS_HIST_SUB_BITS)) & (VMS_HIST_SUB - 1);
	}
}

/** vms_hist_octave() - allocate octave @oct of @h if it is not yet; NULL when out of memory. */
VMS_API uint32_t *vms_hist_octave(struct vms_hist *h, unsigned int oct);

/**
 * vms_hist_counter() - the counter of @v's bucket, for callers that count a great many
 * values and keep count, min and max themselves: they increment the counter (when they
 * like: it never moves) and set count, min and max before the histogram is read.
 * Returns NULL when the bucket's octave cannot be allocated.
 */
static inline uint32_t *vms_hist_counter(struct vms_hist *h, uint64_t v)
{
	unsigned int oct, sub;
	uint32_t *o;

	vms_hist_locate(v, &oct, &sub);
	o = h->octave[oct];
	if (__builtin_expect(!o, 0))
		o = vms_hist_octave(h, oct);
	return o ? o + sub : NULL;
}

/** vms_hist_add_fast() - vms_hist_add(), inline when the value's octave exists already. */
static inline int vms_hist_add_fast(struct vms_hist *h, uint64_t v)
{
	unsigned int oct, sub;

	vms_hist_locate(v, &oct, &sub);
	if (!h->octave[oct] || !h->count)
		return vms_hist_add(h, v);
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->octave[oct][sub]++;
	return 0;
}

/**
 * vms_hist_count_below() - how many values are below @v: exact when @v is a bucket's
 * lower bound (any value below 257, and every power of two)
 */
VMS_API uint64_t vms_hist_count_below(const struct vms_hist *h, uint64_t v);

/** vms_hist_merge() - add every count of @src to @dst. */
VMS_API int vms_hist_merge(struct vms_hist *dst, const struct vms_hist *src);

/**
 * vms_hist_percentile() - the value at percentile @p (0 < p <= 100), nearest rank
 * Returns 0 for an empty histogram.
 */
VMS_API uint64_t vms_hist_percentile(const struct vms_hist *h, double p);

/** vms_hist_bucket() - the range [lo, hi) of the bucket holding @value. */
VMS_API void vms_hist_bucket(uint64_t value, uint64_t *lo, uint64_t *hi);

/** vms_hist_free() - free the octaves (not @h itself); the histogram is then empty. */
VMS_API void vms_hist_free(struct vms_hist *h);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_HIST_H */
