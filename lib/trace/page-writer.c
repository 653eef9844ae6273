// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Encoder of events into ring-buffer pages, the format that the kernel's ring buffer
 * (kernel/trace/ring_buffer.c) hands to a trace_pipe_raw reader and that libtraceevent's
 * kbuffer decodes: a page header (u64 timestamp, local_t commit) followed by events, each
 * a 32-bit header (type_len:5, time_delta:27) and its record padded to 4 bytes. The
 * timestamp of an event is the page's timestamp plus the deltas of all events before it
 * on the page; a delta that does not fit 27 bits goes into a TIME_EXTEND event first.
 * Missed events (an overrun) are flagged in the top bits of the commit field of the page
 * that follows them, with their count stored after the page's data.
 */
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/trace-writer.h"

/* include/linux/ring_buffer.h and kernel/trace/ring_buffer.c */
#define RB_TYPE_PADDING 29
#define RB_TYPE_TIME_EXTEND 30
#define RB_TYPE_DATA_MAX 28
#define RB_TS_SHIFT 27
#define RB_DELTA_MAX ((1ULL << RB_TS_SHIFT) - 1)
#define RB_EXTEND_MAX ((1ULL << (RB_TS_SHIFT + 32)) - 1) /* 27 + 32 bits */
#define RB_MAX_SMALL_DATA (RB_TYPE_DATA_MAX * 4)
#define RB_LEN_TIME_EXTEND 8
#define RB_MISSED_EVENTS (1ULL << 31)
#define RB_MISSED_STORED (1ULL << 30)
#define RB_MISSED_SIZE 8 /* the count, an unsigned long of a 64-bit kernel */

struct vms_page_writer {
	size_t page_size;
	size_t cap; /* bytes of event data a page holds */
	vms_page_emit_fn emit;
	void *ctx;
	uint8_t *page;
	size_t used;	  /* bytes of event data on the current page */
	bool started;	  /* the current page has a timestamp */
	uint64_t page_ts; /* timestamp in the page header */
	uint64_t last_ts; /* timestamp of the last event added (on any page) */
	bool any;	  /* an event was added since creation */
	uint64_t lost;	  /* missed events to report on the next page */
	uint64_t npages;  /* pages emitted */
	int err;	  /* first error of emit; sticky */
};

static inline void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* x86_64 only (meson.build): little-endian, as the files are */
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

size_t vms_page_event_size(size_t len)
{
	size_t dlen = len ? (len + 3) & ~(size_t)3 : 4;

	return dlen <= RB_MAX_SMALL_DATA ? 4 + dlen : 8 + dlen;
}

uint64_t vms_page_writer_pages(const struct vms_page_writer *pw)
{
	return pw ? pw->npages : 0;
}

int vms_page_writer_new(size_t page_size, vms_page_emit_fn emit, void *ctx,
			struct vms_page_writer **out)
{
	struct vms_page_writer *pw;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!emit || page_size < 256 || page_size > (1U << 24) || (page_size & (page_size - 1)))
		return -EINVAL;
	pw = calloc(1, sizeof(*pw));
	if (!pw)
		return -ENOMEM;
	pw->page = calloc(1, page_size);
	if (!pw->page) {
		free(pw);
		return -ENOMEM;
	}
	pw->page_size = page_size;
	pw->cap = page_size - VMS_PAGE_HEADER_SIZE;
	pw->emit = emit;
	pw->ctx = ctx;
	*out = pw;
	return 0;
}

void vms_page_writer_free(struct vms_page_writer *pw)
{
	if (!pw)
		return;
	free(pw->page);
	free(pw);
}

/* Bytes of the current page that events may still use: a pending lost count needs room. */
static size_t room(const struct vms_page_writer *pw)
{
	size_t reserve = pw->lost ? RB_MISSED_SIZE : 0;

	return pw->cap - reserve > pw->used ? pw->cap - reserve - pw->used : 0;
}

/* Finish the current page (header, missed-events flags, zeroed tail) and hand it out. */
static int emit_page(struct vms_page_writer *pw)
{
	uint64_t commit = pw->used;
	uint8_t *data = pw->page + VMS_PAGE_HEADER_SIZE;
	size_t end = pw->used;
	int ret;

	if (pw->lost) {
		put_u64(data + end, pw->lost);
		end += RB_MISSED_SIZE;
		commit |= RB_MISSED_EVENTS | RB_MISSED_STORED;
	}
	memset(data + end, 0, pw->cap - end);
	put_u64(pw->page, pw->page_ts);
	put_u64(pw->page + 8, commit);
	ret = pw->emit(pw->ctx, pw->page, pw->page_size);
	pw->used = 0;
	pw->started = false;
	pw->lost = 0;
	if (ret < 0) {
		pw->err = ret;
		return ret;
	}
	pw->npages++;
	return 0;
}

int vms_page_writer_add(struct vms_page_writer *pw, uint64_t ts, const void *data, size_t len)
{
	size_t dlen, evsize, need;
	uint64_t delta = 0;
	uint8_t *p;
	int ret;

	if (!pw || (len && !data))
		return -EINVAL;
	if (pw->err)
		return pw->err;
	if (pw->any && ts < pw->last_ts)
		return -EINVAL;
	evsize = vms_page_event_size(len);
	if (evsize > pw->cap - RB_MISSED_SIZE)
		return -EMSGSIZE;
	dlen = len ? (len + 3) & ~(size_t)3 : 4;

	if (pw->started) {
		delta = ts - pw->last_ts;
		need = evsize + (delta > RB_DELTA_MAX ? RB_LEN_TIME_EXTEND : 0);
		if (need > room(pw) || delta > RB_EXTEND_MAX) {
			ret = emit_page(pw);
			if (ret < 0)
				return ret;
		}
	}
	if (!pw->started) {
		/* The page header carries the absolute time; the first delta is 0. */
		pw->started = true;
		pw->page_ts = ts;
		delta = 0;
	}

	p = pw->page + VMS_PAGE_HEADER_SIZE + pw->used;
	if (delta > RB_DELTA_MAX) {
		put_u32(p, RB_TYPE_TIME_EXTEND | (uint32_t)((delta & RB_DELTA_MAX) << 5));
		put_u32(p + 4, (uint32_t)(delta >> RB_TS_SHIFT));
		p += RB_LEN_TIME_EXTEND;
		pw->used += RB_LEN_TIME_EXTEND;
		delta = 0;
	}
	if (dlen <= RB_MAX_SMALL_DATA) {
		put_u32(p, (uint32_t)(dlen / 4) | (uint32_t)(delta << 5));
		p += 4;
	} else {
		/* type_len 0: array[0] holds the length of the record plus array[0] itself */
		put_u32(p, (uint32_t)(delta << 5));
		put_u32(p + 4, (uint32_t)(dlen + 4));
		p += 8;
	}
	if (len)
		memcpy(p, data, len);
	memset(p + len, 0, dlen - len);
	pw->used += evsize;
	pw->last_ts = ts;
	pw->any = true;
	return 0;
}

int vms_page_writer_lost(struct vms_page_writer *pw, uint64_t count)
{
	int ret;

	if (!pw)
		return -EINVAL;
	if (pw->err)
		return pw->err;
	if (!count)
		return 0;
	/* The page holding events from before the loss ends here. */
	if (pw->started && pw->used) {
		ret = emit_page(pw);
		if (ret < 0)
			return ret;
	}
	pw->lost += count;
	return 0;
}

int vms_page_writer_flush(struct vms_page_writer *pw)
{
	if (!pw)
		return -EINVAL;
	if (pw->err)
		return pw->err;
	if (pw->started && pw->used)
		return emit_page(pw);
	if (pw->lost) {
		/* No event came after the loss: an empty page still reports it. */
		pw->page_ts = pw->last_ts;
		return emit_page(pw);
	}
	return 0;
}
