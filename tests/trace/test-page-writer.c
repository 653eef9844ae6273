// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the ring-buffer page encoder (lib/trace/page-writer.c). Every page it
 * emits is decoded with libtraceevent's kbuffer, the parser that trace-cmd and KernelShark
 * use, and each event's timestamp and payload must come back exactly: records of every
 * length (type_len 1..28, and type_len 0 with the length in array[0]), zero-length
 * records, padding to 4 bytes, deltas just below and at the 27-bit limit (TIME_EXTEND),
 * deltas too large even for a time extend (a new page), pages that fill up, lost events
 * (RB_MISSED_EVENTS | RB_MISSED_STORED and the stored count, on the page after the loss),
 * the zeroed tail of each page, other page sizes, the errors (time going back, records
 * too large, an emit callback that fails) and a seeded random stream.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <traceevent/kbuffer.h>

#include "vmscope/trace-writer.h"

/* ---- a sink keeping every emitted page ---- */

struct sink {
	size_t page_size;
	uint8_t *pages;
	size_t npages, cap;
	int fail_at; /* return an error for the page with this index (-1: never) */
	int calls;
};

static int sink_emit(void *ctx, const void *page, size_t size)
{
	struct sink *s = ctx;

	assert_int_equal(size, s->page_size);
	if (s->fail_at >= 0 && s->calls++ == s->fail_at)
		return -ENOSPC;
	if (s->npages == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->pages = realloc(s->pages, s->cap * size);
		assert_non_null(s->pages);
	}
	memcpy(s->pages + s->npages++ * size, page, size);
	return 0;
}

static void sink_init(struct sink *s, size_t page_size)
{
	memset(s, 0, sizeof(*s));
	s->page_size = page_size;
	s->fail_at = -1;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* ---- the events we expect back ---- */

struct want {
	uint64_t ts;
	size_t len;
	uint8_t data[1024];
};

static void fill(struct want *w, uint64_t ts, size_t len, unsigned seed)
{
	w->ts = ts;
	w->len = len;
	for (size_t i = 0; i < len; i++)
		w->data[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

/*
 * Decode every page with kbuffer and compare with @want in order; @lost[i] is the missed
 * count expected on page i (0: no flag). Also checks each page's commit and zeroed tail.
 */
static void check_pages(struct sink *s, const struct want *want, size_t nwant, const uint64_t *lost)
{
	struct kbuffer *kb = kbuffer_alloc(KBUFFER_LSIZE_8, KBUFFER_ENDIAN_LITTLE);
	size_t k = 0;

	assert_non_null(kb);
	for (size_t p = 0; p < s->npages; p++) {
		uint8_t *page = s->pages + p * s->page_size;
		uint64_t commit = rd64(page + 8), size = commit & ((1ULL << 27) - 1);
		unsigned long long ts;
		size_t tail = size;
		void *data;

		assert_int_equal(kbuffer_load_subbuffer(kb, page), 0);
		if (lost && lost[p]) {
			assert_int_equal(commit >> 30, 3); /* MISSED_EVENTS | MISSED_STORED */
			assert_int_equal(kbuffer_missed_events(kb), (int)lost[p]);
			assert_int_equal(rd64(page + 16 + size), lost[p]);
			tail += 8;
		} else {
			assert_int_equal(commit >> 27, 0);
			assert_int_equal(kbuffer_missed_events(kb), 0);
		}
		for (size_t i = 16 + tail; i < s->page_size; i++)
			assert_int_equal(page[i], 0);
		for (data = kbuffer_read_event(kb, &ts); data; data = kbuffer_next_event(kb, &ts)) {
			size_t padded = want[k].len ? (want[k].len + 3) & ~3UL : 4;

			assert_true(k < nwant);
			assert_int_equal(ts, want[k].ts);
			assert_int_equal(kbuffer_event_size(kb), padded);
			assert_memory_equal(data, want[k].data, want[k].len);
			for (size_t i = want[k].len; i < padded; i++)
				assert_int_equal(((uint8_t *)data)[i], 0);
			k++;
		}
	}
	assert_int_equal(k, nwant);
	kbuffer_free(kb);
}

static struct vms_page_writer *new_pw(struct sink *s, size_t page_size)
{
	struct vms_page_writer *pw = NULL;

	sink_init(s, page_size);
	assert_int_equal(vms_page_writer_new(page_size, sink_emit, s, &pw), 0);
	return pw;
}

/* ---- tests ---- */

static void test_new_invalid(void **state)
{
	struct vms_page_writer *pw = (void *)1;
	struct sink s;

	(void)state;
	sink_init(&s, 4096);
	assert_int_equal(vms_page_writer_new(4000, sink_emit, &s, &pw), -EINVAL);
	assert_null(pw);
	assert_int_equal(vms_page_writer_new(128, sink_emit, &s, &pw), -EINVAL);
	assert_int_equal(vms_page_writer_new(4096, NULL, &s, &pw), -EINVAL);
	assert_int_equal(vms_page_writer_new(4096, sink_emit, &s, NULL), -EINVAL);
	vms_page_writer_free(NULL);
	assert_int_equal(vms_page_writer_flush(NULL), -EINVAL);
	assert_int_equal(vms_page_writer_pages(NULL), 0);
}

static void test_event_size(void **state)
{
	(void)state;
	assert_int_equal(vms_page_event_size(0), 8);
	assert_int_equal(vms_page_event_size(1), 8);
	assert_int_equal(vms_page_event_size(4), 8);
	assert_int_equal(vms_page_event_size(5), 12);
	assert_int_equal(vms_page_event_size(112), 116);
	assert_int_equal(vms_page_event_size(113), 124); /* type_len 0: header + array[0] */
	assert_int_equal(vms_page_event_size(116), 124);
	assert_int_equal(vms_page_event_size(1000), 1008);
}

/* Every length from 0 to 300: type_len 1..28 below 113 bytes, type_len 0 above. */
static void test_all_lengths(void **state)
{
	static struct want want[301];
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);
	uint64_t ts = 5000;

	(void)state;
	for (size_t len = 0; len <= 300; len++) {
		fill(&want[len], ts, len, (unsigned)len);
		assert_int_equal(vms_page_writer_add(pw, ts, want[len].data, len), 0);
		ts += len % 3; /* deltas of 0, 1 and 2 */
	}
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_true(s.npages > 1);
	assert_int_equal(vms_page_writer_pages(pw), s.npages);
	check_pages(&s, want, 301, NULL);
	vms_page_writer_free(pw);
	free(s.pages);
}

/* The raw headers: type_len, delta and array[0] exactly as the kernel writes them. */
static void test_raw_encoding(void **state)
{
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);
	uint8_t rec[200] = { 1, 2, 3, 4, 5 };
	uint32_t hdr;

	(void)state;
	assert_int_equal(vms_page_writer_add(pw, 1000, rec, 5), 0);   /* type_len 2, delta 0 */
	assert_int_equal(vms_page_writer_add(pw, 1003, rec, 112), 0); /* type_len 28, delta 3 */
	assert_int_equal(vms_page_writer_add(pw, 1010, rec, 113), 0); /* type_len 0 */
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(s.npages, 1);
	assert_int_equal(rd64(s.pages), 1000);		     /* page timestamp */
	assert_int_equal(rd64(s.pages + 8), 12 + 116 + 124); /* commit */
	memcpy(&hdr, s.pages + 16, 4);
	assert_int_equal(hdr & 31, 2);
	assert_int_equal(hdr >> 5, 0);
	memcpy(&hdr, s.pages + 16 + 12, 4);
	assert_int_equal(hdr & 31, 28);
	assert_int_equal(hdr >> 5, 3);
	memcpy(&hdr, s.pages + 16 + 12 + 116, 4);
	assert_int_equal(hdr & 31, 0);
	assert_int_equal(hdr >> 5, 7);
	memcpy(&hdr, s.pages + 16 + 12 + 116 + 4, 4);
	assert_int_equal(hdr, 116 + 4); /* array[0]: padded length + 4 */
	vms_page_writer_free(pw);
	free(s.pages);
}

/* Deltas at the 27-bit limit: 2^27 - 1 fits, 2^27 needs a TIME_EXTEND. */
static void test_time_extend(void **state)
{
	const uint64_t lim = (1ULL << 27) - 1;
	const uint64_t deltas[] = { lim, lim + 1, 5, 1ULL << 40, 0, (1ULL << 59) - 1, 3 };
	struct want want[8];
	struct kbuffer_raw_info info, *ri;
	struct kbuffer *kb;
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);
	uint64_t ts = 77;
	int extends = 0;

	(void)state;
	fill(&want[0], ts, 24, 0);
	assert_int_equal(vms_page_writer_add(pw, ts, want[0].data, 24), 0);
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		ts += deltas[i];
		fill(&want[i + 1], ts, 24, (unsigned)i + 1);
		assert_int_equal(vms_page_writer_add(pw, ts, want[i + 1].data, 24), 0);
	}
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(s.npages, 1);
	check_pages(&s, want, 8, NULL);

	/* Walk the raw events: a TIME_EXTEND before each delta of 2^27 and more. */
	kb = kbuffer_alloc(KBUFFER_LSIZE_8, KBUFFER_ENDIAN_LITTLE);
	info.next = s.pages + 16; /* kbuffer_raw_get() reads the event at info.next */
	while ((ri = kbuffer_raw_get(kb, s.pages, &info)))
		if (ri->type == KBUFFER_TYPE_TIME_EXTEND)
			extends++;
	assert_int_equal(extends, 3);
	kbuffer_free(kb);
	vms_page_writer_free(pw);
	free(s.pages);
}

/* A delta of 2^59 and more cannot be a time extend: the next page carries the time. */
static void test_huge_delta(void **state)
{
	struct want want[2];
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);

	(void)state;
	fill(&want[0], 10, 8, 1);
	fill(&want[1], 10 + (1ULL << 59), 8, 2);
	assert_int_equal(vms_page_writer_add(pw, want[0].ts, want[0].data, 8), 0);
	assert_int_equal(vms_page_writer_add(pw, want[1].ts, want[1].data, 8), 0);
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(s.npages, 2);
	assert_int_equal(rd64(s.pages + 4096), want[1].ts);
	check_pages(&s, want, 2, NULL);
	vms_page_writer_free(pw);
	free(s.pages);
}

/* A page takes exactly as many events as fit; the next event opens a new page. */
static void test_page_full(void **state)
{
	static struct want want[300];
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);

	(void)state;
	/* 60-byte records take 64 bytes: 4080 / 64 = 63 per page, 48 bytes left over. */
	for (int i = 0; i < 200; i++) {
		fill(&want[i], 1000 + (uint64_t)i * 10, 60, (unsigned)i);
		assert_int_equal(vms_page_writer_add(pw, want[i].ts, want[i].data, 60), 0);
	}
	assert_int_equal(s.npages, 3);
	assert_int_equal(rd64(s.pages + 8), 63 * 64);
	assert_int_equal(rd64(s.pages + 4096), want[63].ts);
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(vms_page_writer_flush(pw), 0); /* nothing left: no empty page */
	assert_int_equal(s.npages, 4);
	check_pages(&s, want, 200, NULL);
	vms_page_writer_free(pw);
	free(s.pages);
}

/* An overrun: the page after the loss has the missed flags and count; counts add up. */
static void test_lost(void **state)
{
	static struct want want[300];
	uint64_t lost[16] = { 0 };
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);
	int n = 0;

	(void)state;
	for (; n < 10; n++) {
		fill(&want[n], 100 + (uint64_t)n, 40, (unsigned)n);
		assert_int_equal(vms_page_writer_add(pw, want[n].ts, want[n].data, 40), 0);
	}
	assert_int_equal(vms_page_writer_lost(pw, 0), 0); /* no-op */
	assert_int_equal(s.npages, 0);
	assert_int_equal(vms_page_writer_lost(pw, 1234), 0);
	assert_int_equal(s.npages, 1); /* the page before the loss ends there */
	assert_int_equal(vms_page_writer_lost(pw, 66), 0);
	lost[1] = 1300;
	/* Fill the lossy page: 8 bytes less room (the count), so 84 records of 48 bytes fit
	 * where a page without a loss holds 85 (4080 / 48). */
	for (; n < 10 + 84; n++) {
		fill(&want[n], 100000 + (uint64_t)n, 44, (unsigned)n);
		assert_int_equal(vms_page_writer_add(pw, want[n].ts, want[n].data, 44), 0);
	}
	assert_int_equal(s.npages, 1);
	fill(&want[n], 200000, 44, 999);
	assert_int_equal(vms_page_writer_add(pw, want[n].ts, want[n].data, 44), 0);
	n++;
	assert_int_equal(s.npages, 2);
	assert_int_equal(rd64(s.pages + 4096 + 8) & ((1ULL << 27) - 1), 84 * 48);
	/* A loss at the very end: flush emits an empty page that still reports it. */
	assert_int_equal(vms_page_writer_lost(pw, 5), 0);
	lost[3] = 5;
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(s.npages, 4);
	assert_int_equal(rd64(s.pages + 3 * 4096 + 8) & ((1ULL << 27) - 1), 0);
	assert_int_equal(rd64(s.pages + 3 * 4096), want[n - 1].ts);
	check_pages(&s, want, (size_t)n, lost);
	vms_page_writer_free(pw);
	free(s.pages);
}

static void test_errors(void **state)
{
	uint8_t rec[4096] = { 0 };
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);

	(void)state;
	assert_int_equal(vms_page_writer_add(pw, 100, rec, 16), 0);
	assert_int_equal(vms_page_writer_add(pw, 99, rec, 16), -EINVAL); /* time going back */
	assert_int_equal(vms_page_writer_add(pw, 100, NULL, 16), -EINVAL);
	assert_int_equal(vms_page_writer_add(NULL, 100, rec, 16), -EINVAL);
	/* the largest record: 4080 - 8 (a possible lost count) - 8 (header, array[0]) */
	assert_int_equal(vms_page_writer_add(pw, 100, rec, 4064), 0);
	assert_int_equal(vms_page_writer_add(pw, 100, rec, 4065), -EMSGSIZE);
	assert_int_equal(vms_page_writer_flush(pw), 0);
	assert_int_equal(s.npages, 2);
	vms_page_writer_free(pw);
	free(s.pages);

	/* An emit error is returned and sticks. */
	pw = new_pw(&s, 4096);
	s.fail_at = 0;
	for (int i = 0; i < 63; i++)
		assert_int_equal(vms_page_writer_add(pw, 100, rec, 60), 0);
	assert_int_equal(vms_page_writer_add(pw, 100, rec, 60), -ENOSPC);
	assert_int_equal(vms_page_writer_add(pw, 100, rec, 60), -ENOSPC);
	assert_int_equal(vms_page_writer_lost(pw, 3), -ENOSPC);
	assert_int_equal(vms_page_writer_flush(pw), -ENOSPC);
	assert_int_equal(vms_page_writer_pages(pw), 0);
	vms_page_writer_free(pw);
	free(s.pages);
}

/* Other sub-buffer sizes: the smallest accepted and a larger one. */
static void test_page_sizes(void **state)
{
	static const size_t sizes[] = { 256, 8192, 65536 };
	static struct want want[500];

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		struct sink s;
		struct vms_page_writer *pw = new_pw(&s, sizes[k]);

		for (int i = 0; i < 500; i++) {
			size_t len = 1 + (size_t)(i * 37) % 200;

			fill(&want[i], 1000 + (uint64_t)i * 1000, len, (unsigned)i);
			assert_int_equal(vms_page_writer_add(pw, want[i].ts, want[i].data, len), 0);
		}
		assert_int_equal(vms_page_writer_flush(pw), 0);
		check_pages(&s, want, 500, NULL);
		vms_page_writer_free(pw);
		free(s.pages);
	}
}

/* A seeded random stream: lengths, deltas (some beyond 27 bits) and losses. */
static void test_random(void **state)
{
	enum { N = 20000 };
	static struct want want[N];
	uint64_t *lost = calloc(N, sizeof(*lost));
	uint64_t x = 0x1234567, ts = 1ULL << 40;
	struct sink s;
	struct vms_page_writer *pw = new_pw(&s, 4096);

	(void)state;
	for (int i = 0; i < N; i++) {
		size_t len;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = x % 7 == 0 ? 113 + x % 400 : 8 + x % 100;
		ts += x % 97 == 0 ? (x >> 20) % (1ULL << 33) : x % 5000;
		if (x % 211 == 0) {
			uint64_t n = 1 + (x >> 8) % 10000;

			assert_int_equal(vms_page_writer_lost(pw, n), 0);
			lost[s.npages] += n;
		}
		fill(&want[i], ts, len, (unsigned)x);
		assert_int_equal(vms_page_writer_add(pw, ts, want[i].data, len), 0);
	}
	assert_int_equal(vms_page_writer_flush(pw), 0);
	check_pages(&s, want, N, lost);
	vms_page_writer_free(pw);
	free(s.pages);
	free(lost);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_invalid), cmocka_unit_test(test_event_size),
		cmocka_unit_test(test_all_lengths), cmocka_unit_test(test_raw_encoding),
		cmocka_unit_test(test_time_extend), cmocka_unit_test(test_huge_delta),
		cmocka_unit_test(test_page_full),   cmocka_unit_test(test_lost),
		cmocka_unit_test(test_errors),	    cmocka_unit_test(test_page_sizes),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
