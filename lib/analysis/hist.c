// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Log-linear histograms for latencies (see vmscope/hist.h): the bucket of a value is its
 * octave (the position of its top bit) and the next 8 bits below the top one; values below
 * 256 have a bucket each. Counting is a few shifts and an increment; an octave's counters
 * are allocated the first time a value falls in it.
 */
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/hist.h"

static void bucket_range(unsigned int oct, unsigned int sub, uint64_t *lo, uint64_t *hi)
{
	if (!oct) {
		*lo = sub;
		*hi = sub + 1ULL;
		return;
	}
	{
		unsigned int shift = oct - 1;

		*lo = ((uint64_t)(VMS_HIST_SUB + sub)) << shift;
		*hi = *lo + (1ULL << shift);
		if (*hi < *lo)
			*hi = UINT64_MAX;
	}
}

void vms_hist_bucket(uint64_t value, uint64_t *lo, uint64_t *hi)
{
	unsigned int oct, sub;

	vms_hist_locate(value, &oct, &sub);
	bucket_range(oct, sub, lo, hi);
}

uint32_t *vms_hist_octave(struct vms_hist *h, unsigned int oct)
{
	if (oct >= VMS_ARRAY_SIZE(h->octave))
		return NULL;
	if (!h->octave[oct])
		h->octave[oct] = calloc(VMS_HIST_SUB, sizeof(uint32_t));
	return h->octave[oct];
}

int vms_hist_add(struct vms_hist *h, uint64_t v)
{
	unsigned int oct, sub;

	vms_hist_locate(v, &oct, &sub);
	if (!vms_hist_octave(h, oct))
		return -ENOMEM;
	if (!h->count || v < h->min)
		h->min = v;
	if (!h->count || v > h->max)
		h->max = v;
	h->count++;
	h->octave[oct][sub]++;
	return 0;
}

int vms_hist_merge(struct vms_hist *dst, const struct vms_hist *src)
{
	if (!src->count)
		return 0;
	for (unsigned int o = 0; o < VMS_ARRAY_SIZE(src->octave); o++) {
		if (!src->octave[o])
			continue;
		if (!dst->octave[o]) {
			dst->octave[o] = calloc(VMS_HIST_SUB, sizeof(uint32_t));
			if (!dst->octave[o])
				return -ENOMEM;
		}
		for (unsigned int s = 0; s < VMS_HIST_SUB; s++)
			dst->octave[o][s] += src->octave[o][s];
	}
	if (!dst->count || src->min < dst->min)
		dst->min = src->min;
	if (!dst->count || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	return 0;
}

uint64_t vms_hist_percentile(const struct vms_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	if (p <= 0)
		return h->min;
	rank = (uint64_t)(p / 100.0 * (double)h->count);
	if ((double)rank < p / 100.0 * (double)h->count)
		rank++; /* nearest rank: ceil(p/100 * n) */
	if (rank < 1)
		rank = 1;
	if (rank >= h->count)
		return h->max; /* the last rank is the largest value, known exactly */
	for (unsigned int o = 0; o < VMS_ARRAY_SIZE(h->octave); o++) {
		if (!h->octave[o])
			continue;
		for (unsigned int s = 0; s < VMS_HIST_SUB; s++) {
			seen += h->octave[o][s];
			if (seen >= rank) {
				uint64_t lo, hi, mid;

				bucket_range(o, s, &lo, &hi);
				mid = lo + (hi - lo) / 2;
				if (!o)
					mid = lo; /* exact */
				if (mid < h->min)
					mid = h->min;
				if (mid > h->max)
					mid = h->max;
				return mid;
			}
		}
	}
	return h->max;
}

uint64_t vms_hist_count_below(const struct vms_hist *h, uint64_t v)
{
	uint64_t n = 0;

	for (unsigned int o = 0; o < VMS_ARRAY_SIZE(h->octave); o++) {
		if (!h->octave[o])
			continue;
		for (unsigned int s = 0; s < VMS_HIST_SUB; s++) {
			uint64_t lo, hi;

			bucket_range(o, s, &lo, &hi);
			if (lo >= v)
				return n;
			n += h->octave[o][s];
		}
	}
	return n;
}

void vms_hist_free(struct vms_hist *h)
{
	for (unsigned int o = 0; o < VMS_ARRAY_SIZE(h->octave); o++)
		free(h->octave[o]);
	memset(h, 0, sizeof(*h));
}
