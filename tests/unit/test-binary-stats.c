// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the KVM binary statistics parser and the debugfs reader, without root and
 * without KVM. A small builder lays out stats files in memory the way a vCPU's stats fd
 * does (id "kvm-1234/vcpu-0", exit counters, a boolean, a peak, ns and MiB scalars, a
 * linear and a log histogram), but with the blocks out of the usual order, gaps between
 * them and a hole in the data, so the parser cannot lean on the kernel's current layout.
 * Every accessor and unit conversion is compared with values worked out here by hand; then
 * each check of the validator gets a file that breaks exactly it, and the test asserts the
 * exact error code. Run under ASan (meson -Db_sanitize=address,undefined) for leaks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit-files.h"
#include "vmscope/stats.h"

/* ---- the builder ---- */

/* Header field offsets (struct kvm_stats_header) and descriptor field offsets. */
enum { H_FLAGS = 0, H_NAME_SIZE = 4, H_NUM_DESC = 8, H_ID = 12, H_DESC = 16, H_DATA = 20 };
enum { D_FLAGS = 0, D_EXP = 4, D_SIZE = 6, D_OFFSET = 8, D_BUCKET = 12, D_NAME = 16 };

/* KVM_STATS_* flag values, spelled out here so the test does not share the parser's source. */
#define T_CUMULATIVE 0x0
#define T_INSTANT 0x1
#define T_PEAK 0x2
#define T_LINEAR 0x3
#define T_LOG 0x4
#define U_BYTES 0x10
#define U_SECONDS 0x20
#define U_CYCLES 0x30
#define U_BOOLEAN 0x40
#define B_POW2 0x100

struct tdesc {
	const char *name;
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint32_t offset;
	uint32_t bucket_size;
};

struct layout {
	const char *id;
	uint32_t name_size;
	uint32_t id_offset, desc_offset, data_offset;
	const struct tdesc *desc;
	uint32_t ndesc;
	const uint64_t *data; /* data_len / 8 values, the data block as the kernel lays it out */
	uint32_t data_len;
	uint32_t trailer; /* bytes of padding after the last block */
};

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static size_t stride(const struct layout *l)
{
	return 16 + l->name_size;
}

static size_t max3(size_t a, size_t b, size_t c)
{
	size_t m = a > b ? a : b;

	return m > c ? m : c;
}

/* Lay out a stats file; blocks are written data, descriptors, id (later ones win). */
static uint8_t *build(const struct layout *l, size_t *len)
{
	size_t id_end = l->id_offset + l->name_size;
	size_t desc_end = l->desc_offset + stride(l) * l->ndesc;
	size_t data_end = l->data_offset + l->data_len;
	size_t n = max3(id_end, desc_end, data_end) + l->trailer;
	uint8_t *p = calloc(1, n);

	assert_non_null(p);
	put32(p, H_FLAGS, 0);
	put32(p, H_NAME_SIZE, l->name_size);
	put32(p, H_NUM_DESC, l->ndesc);
	put32(p, H_ID, l->id_offset);
	put32(p, H_DESC, l->desc_offset);
	put32(p, H_DATA, l->data_offset);
	if (l->data_len)
		memcpy(p + l->data_offset, l->data, l->data_len);
	for (uint32_t i = 0; i < l->ndesc; i++) {
		size_t at = l->desc_offset + i * stride(l);
		const struct tdesc *d = &l->desc[i];

		put32(p, at + D_FLAGS, d->flags);
		put16(p, at + D_EXP, (uint16_t)d->exponent);
		put16(p, at + D_SIZE, d->size);
		put32(p, at + D_OFFSET, d->offset);
		put32(p, at + D_BUCKET, d->bucket_size);
		assert_true(strlen(d->name) < l->name_size);
		memcpy(p + at + D_NAME, d->name, strlen(d->name));
	}
	assert_true(strlen(l->id) < l->name_size);
	memcpy(p + l->id_offset, l->id, strlen(l->id));
	*len = n;
	return p;
}

/* ---- the canned vCPU file ---- */

/*
 * File layout (not the kernel's header/id/descriptors/data order, and with gaps):
 *   [0, 24)     header
 *   [64, 224)   data block; bytes [24, 32) of it belong to no descriptor (a hole)
 *   [256, 296)  id string (name_size 40)
 *   [320, 824)  9 descriptors of 56 bytes, not sorted by data offset
 *   [824, 832)  trailing padding
 */
enum { C_DATA = 64, C_DATA_LEN = 160, C_ID = 256, C_NAME_SIZE = 40, C_DESC = 320, C_NDESC = 9 };
#define C_STRIDE (16 + C_NAME_SIZE)
#define C_DESC_END (C_DESC + C_NDESC * C_STRIDE)
#define C_LEN (C_DESC_END + 8)

enum { I_LOGH, I_EXITS, I_HALT, I_MMIO, I_GUEST_MODE, I_PEAK, I_WAIT_NS, I_MEM, I_LINH };

static const struct tdesc canned_desc[C_NDESC] = {
	[I_LOGH] = { "halt_poll_success_hist", T_LOG | U_SECONDS, -9, 8, 96, 0 },
	[I_EXITS] = { "exits", T_CUMULATIVE, 0, 1, 0, 0 },
	[I_HALT] = { "halt_exits", T_CUMULATIVE, 0, 1, 8, 0 },
	[I_MMIO] = { "mmio_exits", T_CUMULATIVE, 0, 1, 16, 0 },
	[I_GUEST_MODE] = { "guest_mode", T_INSTANT | U_BOOLEAN, 0, 1, 32, 0 },
	[I_PEAK] = { "max_mmu_rmap_size", T_PEAK, 0, 1, 40, 0 },
	[I_WAIT_NS] = { "halt_wait_ns", T_CUMULATIVE | U_SECONDS, -9, 1, 48, 0 },
	[I_MEM] = { "guest_mem", T_INSTANT | U_BYTES | B_POW2, 20, 1, 56, 0 },
	[I_LINH] = { "exit_latency_hist", T_LINEAR | U_SECONDS, -6, 4, 64, 100 },
};

#define HOLE 0xdeadbeefdeadbeefull

/* clang-format off */
static const uint64_t canned_data[C_DATA_LEN / 8] = {
	123456,				/* 0: exits */
	789,				/* 8: halt_exits */
	42,				/* 16: mmio_exits */
	HOLE,				/* 24: hole */
	1,				/* 32: guest_mode */
	17,				/* 40: max_mmu_rmap_size */
	1500000000,			/* 48: halt_wait_ns = 1.5 s */
	3,				/* 56: guest_mem = 3 MiB */
	5, 6, 7, 8,			/* 64: exit_latency_hist */
	11, 12, 13, 14, 15, 16, 17, 18, /* 96: halt_poll_success_hist */
};
/* clang-format on */

static const struct layout canned = {
	.id = "kvm-1234/vcpu-0",
	.name_size = C_NAME_SIZE,
	.id_offset = C_ID,
	.desc_offset = C_DESC,
	.data_offset = C_DATA,
	.desc = canned_desc,
	.ndesc = C_NDESC,
	.data = canned_data,
	.data_len = C_DATA_LEN,
	.trailer = 8,
};

static uint8_t *canned_bytes(size_t *len)
{
	uint8_t *p = build(&canned, len);

	assert_int_equal(*len, C_LEN);
	return p;
}

/* File offset of field f of canned descriptor i. */
static size_t dfield(int i, size_t f)
{
	return C_DESC + (size_t)i * C_STRIDE + f;
}

/* Open bytes that must fail with want; check that nothing is returned and why is said. */
static void expect_fail(const uint8_t *p, size_t len, int want)
{
	struct vms_stats *st = (struct vms_stats *)(uintptr_t)0x1;
	int ret = vms_stats_open_buf(p, len, &st);

	if (ret != want)
		fail_msg("expected %d (%s), got %d (%s): %s", want, vms_strerror(want), ret,
			 vms_strerror(ret), vms_stats_last_error());
	assert_null(st);
	assert_true(strlen(vms_stats_last_error()) > 0);
}

/* Patch a 32-bit field of a fresh canned file and expect the open to fail with want. */
static void patch32_fail(size_t off, uint32_t v, int want)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	put32(p, off, v);
	expect_fail(p, len, want);
	free(p);
}

static void patch16_fail(size_t off, uint16_t v, int want)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	put16(p, off, v);
	expect_fail(p, len, want);
	free(p);
}

static void assert_close(double got, double want)
{
	if (isinf(want)) {
		if (!(isinf(got) && got > 0))
			fail_msg("expected +inf, got %.17g", got);
		return;
	}
	if (fabs(got - want) > 1e-12 * fabs(want))
		fail_msg("expected %.17g, got %.17g", want, got);
}

static void assert_bucket(const struct vms_stat_desc *d, uint32_t b, double lo, double hi)
{
	double l = -1, h = -1;

	assert_int_equal(vms_stat_bucket_range(d, b, &l, &h), 0);
	assert_close(l, lo);
	assert_close(h, hi);
}

/* The checks every view of the canned file must pass (buffer or fd). */
static void check_canned(const struct vms_stats *st)
{
	const struct vms_stat_desc *d;
	const uint64_t *v;
	uint64_t val = 0;

	assert_string_equal(vms_stats_id(st), "kvm-1234/vcpu-0");
	assert_int_equal(vms_stats_count(st), C_NDESC);

	for (int i = 0; i < C_NDESC; i++) {
		d = vms_stats_desc(st, (size_t)i);
		assert_non_null(d);
		assert_string_equal(d->name, canned_desc[i].name);
		assert_int_equal(vms_stats_find(st, canned_desc[i].name), i);
		assert_int_equal(d->type, canned_desc[i].flags & 0xf);
		assert_int_equal(d->unit, (canned_desc[i].flags >> 4) & 0xf);
		assert_int_equal(d->base, canned_desc[i].flags & B_POW2 ? 2 : 10);
		assert_int_equal(d->exponent, canned_desc[i].exponent);
		assert_int_equal(d->size, canned_desc[i].size);
		assert_int_equal(d->offset, canned_desc[i].offset);
		assert_int_equal(d->bucket_size, canned_desc[i].bucket_size);
		v = vms_stats_values(st, (size_t)i);
		assert_non_null(v);
		for (uint32_t k = 0; k < d->size; k++)
			assert_int_equal(v[k], canned_data[d->offset / 8 + k]);
		assert_int_equal(vms_stats_value(st, (size_t)i), canned_data[d->offset / 8]);
	}

	/* Counters, boolean, peak: raw values and a scale of exactly 1. */
	assert_int_equal(vms_stats_value_by_name(st, "exits", &val), 0);
	assert_int_equal(val, 123456);
	assert_int_equal(vms_stats_value_by_name(st, "halt_exits", &val), 0);
	assert_int_equal(val, 789);
	assert_int_equal(vms_stats_value_by_name(st, "mmio_exits", &val), 0);
	assert_int_equal(val, 42);
	assert_int_equal(vms_stats_value_by_name(st, "guest_mode", &val), 0);
	assert_int_equal(val, 1);
	assert_int_equal(vms_stats_value_by_name(st, "max_mmu_rmap_size", &val), 0);
	assert_int_equal(val, 17);
	val = 99;
	assert_int_equal(vms_stats_value_by_name(st, "no_such_stat", &val), -ENOENT);
	assert_int_equal(val, 99);
	assert_int_equal(vms_stats_find(st, "no_such_stat"), -ENOENT);
	assert_int_equal(vms_stats_find(st, "exit"), -ENOENT); /* no prefix match */
	assert_int_equal(vms_stats_find(st, ""), -ENOENT);
	assert_true(vms_stats_desc(st, I_EXITS)->scale == 1.0);
	assert_true(vms_stat_in_units(vms_stats_desc(st, I_EXITS), 123456) == 123456.0);
	assert_true(vms_stat_in_units(vms_stats_desc(st, I_GUEST_MODE), 1) == 1.0);

	/* 1500000000 ns = 1.5 s; 3 MiB = 3 * 1024 * 1024 bytes (exact in binary). */
	d = vms_stats_desc(st, I_WAIT_NS);
	assert_close(d->scale, 1.0 / 1000000000.0);
	assert_close(vms_stat_in_units(d, vms_stats_value(st, I_WAIT_NS)), 1.5);
	d = vms_stats_desc(st, I_MEM);
	assert_true(d->scale == 1048576.0);
	assert_true(vms_stat_in_units(d, vms_stats_value(st, I_MEM)) == 3.0 * 1024 * 1024);

	/* Linear histogram, 100 us buckets: [0,100us) [100,200) [200,300) [300us, inf). */
	d = vms_stats_desc(st, I_LINH);
	for (uint32_t b = 0; b < 3; b++)
		assert_bucket(d, b, b * 100 / 1e6, (b + 1) * 100 / 1e6);
	assert_bucket(d, 3, 300 / 1e6, INFINITY);
	assert_int_equal(vms_stat_bucket_range(d, 4, NULL, NULL), -EINVAL);

	/* Log histogram in ns: [0,1) [1,2) [2,4) [4,8) ... [32,64) [64, inf). */
	d = vms_stats_desc(st, I_LOGH);
	assert_bucket(d, 0, 0, 1e-9);
	assert_bucket(d, 1, 1e-9, 2e-9);
	assert_bucket(d, 2, 2e-9, 4e-9);
	assert_bucket(d, 3, 4e-9, 8e-9);
	assert_bucket(d, 6, 32e-9, 64e-9);
	assert_bucket(d, 7, 64e-9, INFINITY);
	assert_int_equal(vms_stat_bucket_range(d, 8, NULL, NULL), -EINVAL);
	assert_int_equal(vms_stat_bucket_range(d, UINT32_MAX, NULL, NULL), -EINVAL);

	/* Scalars have no buckets. */
	for (int i = I_EXITS; i <= I_MEM; i++)
		assert_int_equal(
			vms_stat_bucket_range(vms_stats_desc(st, (size_t)i), 0, NULL, NULL),
			-EINVAL);

	/* Out of range. */
	assert_null(vms_stats_desc(st, C_NDESC));
	assert_null(vms_stats_values(st, C_NDESC));
	assert_int_equal(vms_stats_value(st, C_NDESC), 0);
	assert_null(vms_stats_desc(st, SIZE_MAX));
}

/* ---- well-formed files ---- */

static void test_canned_buf(void **state)
{
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = canned_bytes(&len);

	assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
	assert_string_equal(vms_stats_last_error(), "");
	check_canned(st);

	/* The bytes were copied: changing the caller's buffer changes nothing. */
	put64(p, C_DATA, 1);
	memset(p + C_ID, 'x', C_NAME_SIZE);
	assert_int_equal(vms_stats_read(st), 0);
	check_canned(st);
	vms_stats_free(st);
	free(p);
}

/* The file without its trailing padding is still whole; the data block ends before it. */
static void test_canned_exact_length(void **state)
{
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = canned_bytes(&len);

	assert_int_equal(vms_stats_open_buf(p, C_DESC_END, &st), 0);
	check_canned(st);
	vms_stats_free(st);
	free(p);
}

static void test_names(void **state)
{
	assert_string_equal(vms_stat_type_name(VMS_STAT_CUMULATIVE), "cumulative");
	assert_string_equal(vms_stat_type_name(VMS_STAT_INSTANT), "instant");
	assert_string_equal(vms_stat_type_name(VMS_STAT_PEAK), "peak");
	assert_string_equal(vms_stat_type_name(VMS_STAT_LINEAR_HIST), "linear-hist");
	assert_string_equal(vms_stat_type_name(VMS_STAT_LOG_HIST), "log-hist");
	assert_string_equal(vms_stat_type_name((enum vms_stat_type)5), "unknown");
	assert_string_equal(vms_stat_type_name((enum vms_stat_type)(-1)), "unknown");
	assert_string_equal(vms_stat_unit_name(VMS_UNIT_NONE), "none");
	assert_string_equal(vms_stat_unit_name(VMS_UNIT_BYTES), "bytes");
	assert_string_equal(vms_stat_unit_name(VMS_UNIT_SECONDS), "seconds");
	assert_string_equal(vms_stat_unit_name(VMS_UNIT_CYCLES), "cycles");
	assert_string_equal(vms_stat_unit_name(VMS_UNIT_BOOLEAN), "boolean");
	assert_string_equal(vms_stat_unit_name((enum vms_stat_unit)9), "unknown");
}

/* NULL handling of every entry point: no crash, a defined answer. */
static void test_null_args(void **state)
{
	struct vms_stats *st = NULL;
	uint64_t v;

	vms_stats_free(NULL);
	assert_int_equal(vms_stats_open_buf(NULL, 10, &st), -EINVAL);
	assert_int_equal(vms_stats_open_buf("x", 1, NULL), -EINVAL);
	assert_int_equal(vms_stats_open_fd(-1, &st), -EINVAL);
	assert_int_equal(vms_stats_read(NULL), -EINVAL);
	assert_null(vms_stats_id(NULL));
	assert_int_equal(vms_stats_count(NULL), 0);
	assert_null(vms_stats_desc(NULL, 0));
	assert_null(vms_stats_values(NULL, 0));
	assert_int_equal(vms_stats_value(NULL, 0), 0);
	assert_int_equal(vms_stats_find(NULL, "exits"), -EINVAL);
	assert_int_equal(vms_stats_value_by_name(NULL, "exits", &v), -EINVAL);
	assert_true(isnan(vms_stat_in_units(NULL, 1)));
	assert_int_equal(vms_stat_bucket_range(NULL, 0, NULL, NULL), -EINVAL);
}

/* Extreme but legal values: the largest u64, size-1 histograms, bucket boundaries. */
static void test_edge_values(void **state)
{
	static const struct tdesc d[] = {
		{ "big", T_CUMULATIVE, 0, 1, 0, 0 },
		{ "lin1", T_LINEAR, 0, 1, 8, 4294967295u },
		{ "log1", T_LOG, 0, 1, 16, 0 },
		{ "cycles", T_CUMULATIVE | U_CYCLES, 3, 1, 24, 0 },
		{ "linbig", T_LINEAR | U_BYTES | B_POW2, 10, 3, 32, 4294967295u },
	};
	static const uint64_t data[7] = { UINT64_MAX, 1, 2, 5, 0, 0, 0 };
	const struct layout l = {
		.id = "kvm",
		.name_size = 8,
		.id_offset = 24,
		.desc_offset = 32,
		.data_offset = 32 + 5 * 24,
		.desc = d,
		.ndesc = 5,
		.data = data,
		.data_len = 56,
	};
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = build(&l, &len);

	assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
	assert_string_equal(vms_stats_id(st), "kvm");
	assert_int_equal(vms_stats_value(st, 0), UINT64_MAX);
	assert_close(vms_stat_in_units(vms_stats_desc(st, 0), UINT64_MAX), 18446744073709551615.0);
	/* One-bucket histograms: the only bucket is also the last, [0, +inf). */
	assert_bucket(vms_stats_desc(st, 1), 0, 0, INFINITY);
	assert_bucket(vms_stats_desc(st, 2), 0, 0, INFINITY);
	/* 5 * 10^3 cycles. */
	assert_true(vms_stat_in_units(vms_stats_desc(st, 3), 5) == 5000.0);
	/* Bucket size 2^32-1 KiB: no 32-bit wrap in bucket * bucket_size. */
	assert_bucket(vms_stats_desc(st, 4), 2, 2.0 * 4294967295.0 * 1024, INFINITY);
	assert_bucket(vms_stats_desc(st, 4), 1, 4294967295.0 * 1024, 2.0 * 4294967295.0 * 1024);
	vms_stats_free(st);
	free(p);
}

/* num_desc 0: the selftest accepts it ("No KVM stats defined!"), so do we. */
static void test_no_descriptors(void **state)
{
	const struct layout l = {
		.id = "kvm-1",
		.name_size = 16,
		.id_offset = 24,
		.desc_offset = 40,
		.data_offset = 40,
		.ndesc = 0,
	};
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = build(&l, &len);

	assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
	assert_string_equal(vms_stats_id(st), "kvm-1");
	assert_int_equal(vms_stats_count(st), 0);
	assert_null(vms_stats_desc(st, 0));
	assert_int_equal(vms_stats_read(st), 0);
	vms_stats_free(st);
	free(p);
}

/* ---- stats from a file descriptor ---- */

static int memfd_with(const uint8_t *p, size_t len)
{
	int fd = memfd_create("vms-stats-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	return fd;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void test_fd_read_refresh(void **state)
{
	struct vms_stats *st = NULL;
	uint64_t v;
	size_t len;
	uint8_t *p = canned_bytes(&len);
	int fd = memfd_with(p, len);

	assert_int_equal(vms_stats_open_fd(fd, &st), 0);
	check_canned(st);

	/* The kernel updates the data block in place; so do we, then re-read. */
	v = 123457;
	assert_int_equal(pwrite(fd, &v, 8, C_DATA + 0), 8);
	v = 2;
	assert_int_equal(pwrite(fd, &v, 8, C_DATA + 56), 8);
	v = 1000;
	assert_int_equal(pwrite(fd, &v, 8, C_DATA + 96 + 7 * 8), 8);
	/* The schema is not re-read: a changed name stays as it was at open. */
	assert_int_equal(pwrite(fd, "zzzzz", 5, dfield(I_EXITS, D_NAME)), 5);

	assert_int_equal(vms_stats_value(st, I_EXITS), 123456);
	assert_int_equal(vms_stats_read(st), 0);
	assert_int_equal(vms_stats_value(st, I_EXITS), 123457);
	assert_int_equal(vms_stats_find(st, "exits"), I_EXITS);
	assert_true(vms_stat_in_units(vms_stats_desc(st, I_MEM), vms_stats_value(st, I_MEM)) ==
		    2.0 * 1024 * 1024);
	assert_int_equal(vms_stats_values(st, I_LOGH)[7], 1000);
	assert_int_equal(vms_stats_values(st, I_LOGH)[6], 17);
	assert_int_equal(vms_stats_value(st, I_HALT), 789);

	/* A read twice in a row gives the same values. */
	assert_int_equal(vms_stats_read(st), 0);
	assert_int_equal(vms_stats_value(st, I_EXITS), 123457);

	/* The file shrinks under us: the next read is short, not stale or zero-filled. */
	assert_int_equal(ftruncate(fd, C_DATA + 100), 0);
	assert_int_equal(vms_stats_read(st), -VMS_E_STATS_SHORT);
	assert_non_null(strstr(vms_stats_last_error(), "data block"));

	/* vms_stats_free() closes the fd it was given. */
	assert_true(fd_is_open(fd));
	vms_stats_free(st);
	assert_false(fd_is_open(fd));
	free(p);
}

/* Open failures close the fd too (the object took ownership). */
static void test_fd_fail_closes(void **state)
{
	struct vms_stats *st = (struct vms_stats *)(uintptr_t)0x1;
	size_t len;
	uint8_t *p = canned_bytes(&len);
	int fd = memfd_with(p, C_DATA + 8);

	assert_int_equal(vms_stats_open_fd(fd, &st), -VMS_E_STATS_SHORT);
	assert_null(st);
	assert_false(fd_is_open(fd));

	fd = memfd_with(p, len);
	put32(p, H_NAME_SIZE, 0);
	assert_int_equal(pwrite(fd, p, 24, 0), 24);
	assert_int_equal(vms_stats_open_fd(fd, &st), -VMS_E_STATS_HEADER);
	assert_false(fd_is_open(fd));
	free(p);
}

/* Fds that are not regular files: the errno or SHORT, and the fd closed. */
static void test_fd_pipe(void **state)
{
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = canned_bytes(&len);
	int fds[2];

	/* /dev/null: no size to check against, and the header read comes back empty. */
	fds[0] = open("/dev/null", O_RDONLY);
	assert_true(fds[0] >= 0);
	assert_int_equal(vms_stats_open_fd(fds[0], &st), -VMS_E_STATS_SHORT);
	assert_null(st);
	assert_false(fd_is_open(fds[0]));

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], p, 64), 64);
	assert_int_equal(vms_stats_open_fd(fds[0], &st), -ESPIPE);
	assert_null(st);
	assert_false(fd_is_open(fds[0]));
	close(fds[1]);
	free(p);
}

/* Truncating a real file at each block boundary gives SHORT through the fd path too. */
static void test_fd_truncated(void **state)
{
	/* clang-format off */
	static const size_t cuts[] = {
		0, 1, 23, 24,					/* header */
		C_DATA, C_DATA + 1, C_DATA + C_DATA_LEN - 1,	/* data block */
		C_ID, C_ID + 1, C_ID + C_NAME_SIZE - 1,		/* id string */
		C_DESC, C_DESC + C_STRIDE, C_DESC_END - 1,	/* descriptors */
	};
	/* clang-format on */
	size_t len;
	uint8_t *p = canned_bytes(&len);

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct vms_stats *st = NULL;
		int fd = memfd_with(p, cuts[i]);

		assert_int_equal(vms_stats_open_fd(fd, &st), -VMS_E_STATS_SHORT);
		assert_null(st);
		assert_false(fd_is_open(fd));
	}
	free(p);
}

/* ---- malformed files: one test per check ---- */

/* Every prefix of the file that stops before the last block ends is SHORT. */
static void test_truncated_everywhere(void **state)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	expect_fail(NULL, 0, -VMS_E_STATS_SHORT);
	for (size_t n = 0; n < C_DESC_END; n++)
		expect_fail(p, n, -VMS_E_STATS_SHORT);
	free(p);
}

static void test_truncated_messages(void **state)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	expect_fail(p, 23, -VMS_E_STATS_SHORT);
	assert_non_null(strstr(vms_stats_last_error(), "header"));
	expect_fail(p, C_ID + 10, -VMS_E_STATS_SHORT);
	assert_non_null(strstr(vms_stats_last_error(), "id string at offset 256"));
	expect_fail(p, C_DESC + 10, -VMS_E_STATS_SHORT);
	assert_non_null(strstr(vms_stats_last_error(), "descriptor block at offset 320"));
	free(p);
}

/* The data block is checked last; a file that stops inside it alone is SHORT too. */
static void test_truncated_data_only(void **state)
{
	static const struct tdesc d[] = { { "exits", T_CUMULATIVE, 0, 1, 0, 0 },
					  { "hist", T_LOG, 0, 4, 16, 0 } };
	static const uint64_t data[6] = { 1, 0, 1, 2, 3, 4 };
	/* Usual order here, data last: cutting anywhere in it leaves the schema whole. */
	const struct layout l = {
		.id = "kvm-9",
		.name_size = 16,
		.id_offset = 24,
		.desc_offset = 40,
		.data_offset = 40 + 2 * 32,
		.desc = d,
		.ndesc = 2,
		.data = data,
		.data_len = 48,
	};
	struct vms_stats *st = NULL;
	size_t len;
	uint8_t *p = build(&l, &len);

	for (size_t n = l.data_offset; n < len; n++) {
		expect_fail(p, n, -VMS_E_STATS_SHORT);
		assert_non_null(strstr(vms_stats_last_error(), "data block"));
	}
	assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
	vms_stats_free(st);
	free(p);
}

static void test_name_size(void **state)
{
	patch32_fail(H_NAME_SIZE, 0, -VMS_E_STATS_HEADER);
	patch32_fail(H_NAME_SIZE, 4097, -VMS_E_STATS_HEADER);
	patch32_fail(H_NAME_SIZE, UINT32_MAX, -VMS_E_STATS_HEADER);
	assert_non_null(strstr(vms_stats_last_error(), "name_size"));
}

static void test_num_desc_cap(void **state)
{
	patch32_fail(H_NUM_DESC, 65537, -VMS_E_STATS_HEADER);
	patch32_fail(H_NUM_DESC, UINT32_MAX, -VMS_E_STATS_HEADER);
	assert_non_null(strstr(vms_stats_last_error(), "num_desc"));
	/* Under the cap but far past the end of the file: SHORT, before any allocation. */
	patch32_fail(H_NUM_DESC, 65536, -VMS_E_STATS_SHORT);
	patch32_fail(H_NUM_DESC, C_NDESC + 1, -VMS_E_STATS_SHORT);
}

/* desc_offset/data_offset (and id_offset) must lie past the 24-byte header. */
static void test_offsets_in_header(void **state)
{
	patch32_fail(H_DESC, 0, -VMS_E_STATS_HEADER);
	patch32_fail(H_DESC, 23, -VMS_E_STATS_HEADER);
	assert_non_null(strstr(vms_stats_last_error(), "desc_offset 23"));
	patch32_fail(H_DATA, 0, -VMS_E_STATS_HEADER);
	patch32_fail(H_DATA, 8, -VMS_E_STATS_HEADER);
	assert_non_null(strstr(vms_stats_last_error(), "data_offset 8"));
	patch32_fail(H_ID, 0, -VMS_E_STATS_HEADER);
	patch32_fail(H_ID, 20, -VMS_E_STATS_HEADER);
	assert_non_null(strstr(vms_stats_last_error(), "id_offset 20"));
}

/* Offsets near 2^32: a 32-bit sum would wrap to a small, harmless-looking value. */
static void test_offsets_overflow(void **state)
{
	/* 0xffffff00 + 9 * 56 wraps to 0x1f8 in 32 bits. */
	patch32_fail(H_DESC, 0xffffff00u, -VMS_E_STATS_SHORT);
	patch32_fail(H_ID, 0xfffffff0u, -VMS_E_STATS_SHORT);
	patch32_fail(H_ID, UINT32_MAX, -VMS_E_STATS_SHORT);
	patch32_fail(H_DATA, 0xfffffff8u, -VMS_E_STATS_SHORT);
	patch32_fail(H_DATA, UINT32_MAX - 7, -VMS_E_STATS_SHORT);
	/* A value offset that wraps in 32 bits: 0xfffffff8 + 2 * 8. */
	{
		size_t len;
		uint8_t *p = canned_bytes(&len);

		put32(p, dfield(I_EXITS, D_OFFSET), 0xfffffff8u);
		put16(p, dfield(I_EXITS, D_SIZE), 2);
		expect_fail(p, len, -VMS_E_STATS_DESC);
		assert_non_null(strstr(vms_stats_last_error(), "descriptor 1 \"exits\""));
		free(p);
	}
	/* Just past the 64 MiB data cap. */
	patch32_fail(dfield(I_EXITS, D_OFFSET), 64u << 20, -VMS_E_STATS_DESC);
}

static void test_id(void **state)
{
	static const char *const bad[] = { "", "kv", "qemu-1234", "KVM-1", " kvm" };
	size_t len;
	uint8_t *p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = canned_bytes(&len);
		memset(p + C_ID, 0, C_NAME_SIZE);
		memcpy(p + C_ID, bad[i], strlen(bad[i]));
		expect_fail(p, len, -VMS_E_STATS_ID);
		free(p);
	}
	assert_non_null(strstr(vms_stats_last_error(), "id string at offset 256"));

	/* "kvm" but no NUL within name_size. */
	p = canned_bytes(&len);
	memset(p + C_ID, 'k', C_NAME_SIZE);
	memcpy(p + C_ID, "kvm", 3);
	expect_fail(p, len, -VMS_E_STATS_ID);
	assert_non_null(strstr(vms_stats_last_error(), "NUL"));
	/* ... and the NUL in the very last byte is fine. */
	p[C_ID + C_NAME_SIZE - 1] = '\0';
	{
		struct vms_stats *st = NULL;

		assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
		assert_int_equal(strlen(vms_stats_id(st)), C_NAME_SIZE - 1);
		vms_stats_free(st);
	}
	free(p);
}

static void test_overlap_id_desc(void **state)
{
	/* id starts inside the descriptor block. */
	patch32_fail(H_ID, C_DESC + 8, -VMS_E_STATS_OVERLAP);
	assert_non_null(strstr(vms_stats_last_error(), "id string"));
	assert_non_null(strstr(vms_stats_last_error(), "descriptor block"));
	/* descriptor block starts inside the id string. */
	patch32_fail(H_DESC, C_ID + 8, -VMS_E_STATS_OVERLAP);
	/* descriptor block runs into the id string from below. */
	patch32_fail(H_DESC, C_ID - 16, -VMS_E_STATS_OVERLAP);
}

static void test_overlap_desc_data(void **state)
{
	/* data starts inside the descriptor block (the selftest's first overlap check). */
	patch32_fail(H_DATA, C_DESC + C_STRIDE, -VMS_E_STATS_OVERLAP);
	assert_non_null(strstr(vms_stats_last_error(), "data block"));
	/* The descriptor block starts inside the data block (the second check). */
	{
		const struct layout l = {
			.id = "kvm-1234/vcpu-0",
			.name_size = C_NAME_SIZE,
			.id_offset = 1000,
			.desc_offset = C_DATA + 96,
			.data_offset = C_DATA,
			.desc = canned_desc,
			.ndesc = C_NDESC,
			.data = canned_data,
			.data_len = C_DATA_LEN,
		};
		size_t len;
		uint8_t *p = build(&l, &len);

		expect_fail(p, len, -VMS_E_STATS_OVERLAP);
		assert_non_null(
			strstr(vms_stats_last_error(),
			       "descriptor block [160, 664) overlaps data block [64, 224)"));
		free(p);
	}
}

static void test_overlap_id_data(void **state)
{
	/* data starts inside the id string. */
	patch32_fail(H_DATA, C_ID + 8, -VMS_E_STATS_OVERLAP);
	/* id starts inside the data block (only known once the data size is). */
	{
		size_t len;
		uint8_t *p = canned_bytes(&len);

		put32(p, H_ID, C_DATA + 8);
		memcpy(p + C_DATA + 8, "kvm-1", 6); /* a valid id, so only the overlap is wrong */
		expect_fail(p, len, -VMS_E_STATS_OVERLAP);
		assert_non_null(strstr(vms_stats_last_error(),
				       "id string [72, 112) overlaps data block [64, 224)"));
		free(p);
	}
}

/* The values of two statistics must not share bytes. */
static void test_overlap_values(void **state)
{
	/* halt_exits at the same offset as exits. */
	patch32_fail(dfield(I_HALT, D_OFFSET), 0, -VMS_E_STATS_OVERLAP);
	assert_non_null(strstr(vms_stats_last_error(), "\"exits\""));
	assert_non_null(strstr(vms_stats_last_error(), "\"halt_exits\""));
	/* The linear histogram's last bucket runs into the log histogram. */
	patch32_fail(dfield(I_LINH, D_OFFSET), 72, -VMS_E_STATS_OVERLAP);
	/* A scalar inside a histogram. */
	patch32_fail(dfield(I_MMIO, D_OFFSET), 104, -VMS_E_STATS_OVERLAP);
	/* ... but moving it into the hole is fine (adjacent to its neighbours, no overlap). */
	{
		struct vms_stats *st = NULL;
		size_t len;
		uint8_t *p = canned_bytes(&len);

		put32(p, dfield(I_MMIO, D_OFFSET), 24);
		assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
		assert_int_equal(vms_stats_value(st, I_MMIO), HOLE);
		vms_stats_free(st);
		free(p);
	}
}

static void test_desc_type_unit_base(void **state)
{
	patch32_fail(dfield(I_EXITS, D_FLAGS), 5, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "descriptor 1 \"exits\" at offset 376"));
	assert_non_null(strstr(vms_stats_last_error(), "type 5"));
	patch32_fail(dfield(I_EXITS, D_FLAGS), 0xf, -VMS_E_STATS_DESC);
	patch32_fail(dfield(I_EXITS, D_FLAGS), 0x50, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "unit 5"));
	patch32_fail(dfield(I_EXITS, D_FLAGS), 0xf0, -VMS_E_STATS_DESC);
	patch32_fail(dfield(I_EXITS, D_FLAGS), 0x200, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "base 2"));
	patch32_fail(dfield(I_EXITS, D_FLAGS), 0xf00, -VMS_E_STATS_DESC);
}

static void test_desc_exponent(void **state)
{
	/* NONE, BYTES, CYCLES: >= 0. */
	patch16_fail(dfield(I_EXITS, D_EXP), (uint16_t)-1, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "exponent -1 must be >= 0"));
	patch16_fail(dfield(I_MEM, D_EXP), (uint16_t)-3, -VMS_E_STATS_DESC);
	{
		size_t len;
		uint8_t *p = canned_bytes(&len);

		put32(p, dfield(I_PEAK, D_FLAGS), T_PEAK | U_CYCLES);
		put16(p, dfield(I_PEAK, D_EXP), (uint16_t)-1);
		expect_fail(p, len, -VMS_E_STATS_DESC);
		free(p);
	}
	/* SECONDS: <= 0. */
	patch16_fail(dfield(I_WAIT_NS, D_EXP), 1, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "must be <= 0"));
	patch16_fail(dfield(I_LOGH, D_EXP), 3, -VMS_E_STATS_DESC);
	/* BOOLEAN: 0 (the current selftest). */
	patch16_fail(dfield(I_GUEST_MODE, D_EXP), 1, -VMS_E_STATS_DESC);
	patch16_fail(dfield(I_GUEST_MODE, D_EXP), (uint16_t)-1, -VMS_E_STATS_DESC);
	/* base^exponent must be a normal double. */
	patch16_fail(dfield(I_EXITS, D_EXP), 309, -VMS_E_STATS_DESC);
	patch16_fail(dfield(I_EXITS, D_EXP), 32767, -VMS_E_STATS_DESC);
	patch16_fail(dfield(I_WAIT_NS, D_EXP), (uint16_t)-400, -VMS_E_STATS_DESC);
	patch16_fail(dfield(I_MEM, D_EXP), 1024, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "not representable"));
	/* ... and the extremes that still are, accepted. */
	{
		struct vms_stats *st = NULL;
		size_t len;
		uint8_t *p = canned_bytes(&len);

		put16(p, dfield(I_EXITS, D_EXP), 308);
		put16(p, dfield(I_MEM, D_EXP), 1023);
		put16(p, dfield(I_WAIT_NS, D_EXP), (uint16_t)-307);
		assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
		assert_close(vms_stats_desc(st, I_EXITS)->scale, 1e308);
		assert_close(vms_stats_desc(st, I_MEM)->scale, ldexp(1, 1023));
		assert_close(vms_stats_desc(st, I_WAIT_NS)->scale, 1e-307);
		vms_stats_free(st);
		free(p);
	}
}

static void test_desc_name(void **state)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	/* Not NUL-terminated within name_size. */
	memset(p + dfield(I_MMIO, D_NAME), 'a', C_NAME_SIZE);
	expect_fail(p, len, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "descriptor 3 at offset 488"));
	assert_non_null(strstr(vms_stats_last_error(), "NUL"));
	/* Terminated in the last byte: fine. */
	p[dfield(I_MMIO, D_NAME) + C_NAME_SIZE - 1] = '\0';
	{
		struct vms_stats *st = NULL;

		assert_int_equal(vms_stats_open_buf(p, len, &st), 0);
		assert_int_equal(strlen(vms_stats_desc(st, I_MMIO)->name), C_NAME_SIZE - 1);
		vms_stats_free(st);
	}
	/* Empty. */
	memset(p + dfield(I_MMIO, D_NAME), 0, C_NAME_SIZE);
	expect_fail(p, len, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "empty name"));
	free(p);
}

static void test_desc_size_zero(void **state)
{
	patch16_fail(dfield(I_EXITS, D_SIZE), 0, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "size is 0"));
	patch16_fail(dfield(I_LOGH, D_SIZE), 0, -VMS_E_STATS_DESC);
}

static void test_desc_bucket_size(void **state)
{
	/* Linear histograms need one... */
	patch32_fail(dfield(I_LINH, D_BUCKET), 0, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "bucket_size 0"));
	/* ... every other type must have none. */
	patch32_fail(dfield(I_EXITS, D_BUCKET), 7, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "bucket_size 7 on a cumulative"));
	patch32_fail(dfield(I_GUEST_MODE, D_BUCKET), 1, -VMS_E_STATS_DESC);
	patch32_fail(dfield(I_PEAK, D_BUCKET), 1, -VMS_E_STATS_DESC);
	patch32_fail(dfield(I_LOGH, D_BUCKET), 2, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "log-hist"));
}

static void test_desc_offset_alignment(void **state)
{
	patch32_fail(dfield(I_MMIO, D_OFFSET), 20, -VMS_E_STATS_DESC);
	assert_non_null(strstr(vms_stats_last_error(), "not a multiple of 8"));
	patch32_fail(dfield(I_MMIO, D_OFFSET), 25, -VMS_E_STATS_DESC);
}

/* Every single-byte corruption of the header and descriptors: no crash, no leak. */
static void test_bitflips(void **state)
{
	size_t len;
	uint8_t *p = canned_bytes(&len);

	for (size_t off = 0; off < len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct vms_stats *st = NULL;
			int ret;

			p[off] ^= (uint8_t)(1u << bit);
			ret = vms_stats_open_buf(p, len, &st);
			if (ret == 0) {
				for (size_t i = 0; i < vms_stats_count(st); i++) {
					const struct vms_stat_desc *d = vms_stats_desc(st, i);
					double lo, hi;

					assert_in_range(vms_stats_find(st, d->name), 0, i);
					for (uint32_t b = 0; b < d->size; b++)
						vms_stat_bucket_range(d, b, &lo, &hi);
				}
				assert_int_equal(vms_stats_read(st), 0);
			} else {
				assert_null(st);
				assert_true(ret == -VMS_E_STATS_HEADER || ret == -VMS_E_STATS_ID ||
					    ret == -VMS_E_STATS_OVERLAP ||
					    ret == -VMS_E_STATS_DESC || ret == -VMS_E_STATS_SHORT);
			}
			vms_stats_free(st);
			p[off] ^= (uint8_t)(1u << bit);
		}
	}
	free(p);
}

/* ---- debugfs ---- */

static const struct vms_debugfs_entry *find_entry(const struct vms_debugfs_entry *e, size_t n,
						  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(e[i].name, name))
			return &e[i];
	fail_msg("no entry %s", name);
	return NULL;
}

static void test_debugfs_tmpdir(void **state)
{
	static const char *const sorted[] = {
		"a_very_long_name_that_does_not_fit_in_the_sixty_four_byte_name_field_at_all",
		"big",
		"dangling",
		"empty",
		"exits",
		"fifo",
		"halt_exits",
		"notnum",
		"remote_tlb_flush",
		"vcpu0/deeper",
		"vcpu0/pid",
		"vcpu0/tsc-offset",
		"vcpu1/guest_mode",
	};
	char dir[] = "/tmp/vms-debugfs-XXXXXX", sub[128], big[201];
	struct vms_debugfs_entry *e = NULL;
	size_t n = 0;
	const struct vms_debugfs_entry *x;

	assert_non_null(mkdtemp(dir));
	unit_write_file(dir, "exits", "123\n");
	unit_write_file(dir, "halt_exits", "0\n");
	unit_write_file(dir, "remote_tlb_flush", "  7\n");
	unit_write_file(dir, "notnum", "abc\n");
	unit_write_file(dir, "empty", "");
	memset(big, '9', 200);
	big[200] = '\0';
	unit_write_file(dir, "big", big);
	unit_write_file(dir, sorted[0], "1\n");
	snprintf(sub, sizeof(sub), "%s/dangling", dir);
	/* Root can read a mode-000 file; a dangling symlink fails for everyone (ENOENT). */
	assert_int_equal(symlink("/nonexistent/vms-test-target", sub), 0);
	snprintf(sub, sizeof(sub), "%s/fifo", dir);
	/* Opening a FIFO would block until a writer comes: listed as such, not read. */
	assert_int_equal(mkfifo(sub, 0644), 0);
	snprintf(sub, sizeof(sub), "%s/vcpu0", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	unit_write_file(sub, "pid", "4321\n");
	unit_write_file(sub, "tsc-offset", "-5\n");
	snprintf(sub, sizeof(sub), "%s/vcpu0/deeper", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	unit_write_file(sub, "ignored", "1\n");
	snprintf(sub, sizeof(sub), "%s/vcpu1", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	unit_write_file(sub, "guest_mode", "1\n");

	assert_int_equal(vms_debugfs_read_vm(dir, &e, &n), 0);
	assert_int_equal(n, sizeof(sorted) / sizeof(sorted[0]));
	/* Sorted by name; the too-long name is cut to 63 bytes but still listed. */
	assert_int_equal(strlen(e[0].name), 63);
	assert_int_equal(strncmp(e[0].name, sorted[0], 63), 0);
	assert_int_equal(e[0].err, -ENAMETOOLONG);
	for (size_t i = 1; i < n; i++)
		assert_string_equal(e[i].name, sorted[i]);

	x = find_entry(e, n, "exits");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, 123);
	x = find_entry(e, n, "halt_exits");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, 0);
	x = find_entry(e, n, "remote_tlb_flush");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, 7);
	assert_int_equal(find_entry(e, n, "notnum")->err, -VMS_E_PARSE);
	assert_int_equal(find_entry(e, n, "empty")->err, -VMS_E_PARSE);
	assert_int_equal(find_entry(e, n, "big")->err, -VMS_E_PARSE);
	x = find_entry(e, n, "dangling");
	assert_int_equal(x->err, -ENOENT);
	assert_int_equal(x->value, 0);
	x = find_entry(e, n, "vcpu0/pid");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, 4321);
	x = find_entry(e, n, "vcpu0/tsc-offset");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, (uint64_t)-5);
	assert_int_equal(find_entry(e, n, "vcpu0/deeper")->err, -EISDIR);
	assert_int_equal(find_entry(e, n, "fifo")->err, -EWOULDBLOCK);
	x = find_entry(e, n, "vcpu1/guest_mode");
	assert_int_equal(x->err, 0);
	assert_int_equal(x->value, 1);
	free(e);

	/* Any folder can be read on its own. */
	snprintf(sub, sizeof(sub), "%s/vcpu0/deeper", dir);
	assert_int_equal(vms_debugfs_read_vm(sub, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].name, "ignored");
	assert_int_equal(e[0].err, 0);
	assert_int_equal(e[0].value, 1);
	free(e);

	assert_int_equal(unit_rm_tree(dir), 0);

	/* The folder itself cannot be listed: an error, nothing allocated. */
	e = (struct vms_debugfs_entry *)(uintptr_t)0x1;
	assert_int_equal(vms_debugfs_read_vm(dir, &e, &n), -ENOENT);
	assert_null(e);
	assert_int_equal(n, 0);
	assert_int_equal(vms_debugfs_read_vm(NULL, &e, &n), -EINVAL);
}

/*
 * On a real host: every entry's error is what open()/read() give for that file, never a 0
 * in place of an error. The VM belongs to someone else and may exit meanwhile (the kvm
 * suite starts and stops VMs in parallel): a folder that vanished skips, it does not fail.
 */
static void test_debugfs_real(void **state)
{
	const char *root = "/sys/kernel/debug/kvm";
	struct vms_debugfs_entry *e = NULL;
	char dir[512] = "", why[700] = "";
	struct dirent *de;
	struct stat sb;
	size_t n = 0;
	DIR *d = opendir(root);
	int ret;

	if (d) {
		while ((de = readdir(d))) {
			int pid, fd;
			char c;

			if (sscanf(de->d_name, "%d-%d%c", &pid, &fd, &c) == 2) {
				snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
				break;
			}
		}
		closedir(d);
	}
	if (!dir[0]) {
		print_message("no VM folder in %s (debugfs not mounted or no VM running)\n", root);
		skip();
	}
	ret = vms_debugfs_read_vm(dir, &e, &n);
	if (ret == -ENOENT) {
		print_message("%s went away while being read\n", dir);
		skip();
	}
	assert_int_equal(ret, 0);
	for (size_t i = 0; i < n && !why[0]; i++) {
		char path[600], buf[128];
		int err = 0, fd;

		if (i)
			assert_true(strcmp(e[i - 1].name, e[i].name) < 0);
		snprintf(path, sizeof(path), "%s/%s", dir, e[i].name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			err = -errno;
		else if (read(fd, buf, sizeof(buf)) < 0)
			err = -errno;
		if (fd >= 0)
			close(fd);
		if (err ? e[i].err != err || e[i].value : e[i].err && e[i].err != -VMS_E_PARSE)
			snprintf(why, sizeof(why), "%s: entry err %d value %llu, open/read err %d",
				 path, e[i].err, (unsigned long long)e[i].value, err);
	}
	free(e);
	if (why[0] && stat(dir, &sb) < 0) {
		print_message("%s went away while being checked\n", dir);
		skip();
	}
	if (why[0])
		fail_msg("%s", why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canned_buf),
		cmocka_unit_test(test_canned_exact_length),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_edge_values),
		cmocka_unit_test(test_no_descriptors),
		cmocka_unit_test(test_fd_read_refresh),
		cmocka_unit_test(test_fd_fail_closes),
		cmocka_unit_test(test_fd_pipe),
		cmocka_unit_test(test_fd_truncated),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_truncated_messages),
		cmocka_unit_test(test_truncated_data_only),
		cmocka_unit_test(test_name_size),
		cmocka_unit_test(test_num_desc_cap),
		cmocka_unit_test(test_offsets_in_header),
		cmocka_unit_test(test_offsets_overflow),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_overlap_id_desc),
		cmocka_unit_test(test_overlap_desc_data),
		cmocka_unit_test(test_overlap_id_data),
		cmocka_unit_test(test_overlap_values),
		cmocka_unit_test(test_desc_type_unit_base),
		cmocka_unit_test(test_desc_exponent),
		cmocka_unit_test(test_desc_name),
		cmocka_unit_test(test_desc_size_zero),
		cmocka_unit_test(test_desc_bucket_size),
		cmocka_unit_test(test_desc_offset_alignment),
		cmocka_unit_test(test_bitflips),
		cmocka_unit_test(test_debugfs_tmpdir),
		cmocka_unit_test(test_debugfs_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
