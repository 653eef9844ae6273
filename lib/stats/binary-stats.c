// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Parser for the KVM binary statistics format (KVM_GET_STATS_FD, Documentation/virt/kvm/
 * api.rst section "KVM_GET_STATS_FD"; struct kvm_stats_header and struct kvm_stats_desc in
 * <linux/kvm.h>). The schema (header, id string, descriptors) is read and validated once
 * when the object is opened; from then on vms_stats_read() refreshes the data block with a
 * single pread() into a buffer allocated at open time, so polling allocates nothing.
 *
 * The bytes are untrusted: a stats fd can come from another process (pidfd_getfd()) and a
 * file can come from anywhere. Every check of tools/testing/selftests/kvm/
 * kvm_binary_stats_test.c is applied, every offset and size is computed in 64 bits so no
 * sum can wrap, and the counts that size allocations are capped. Failures return a
 * -VMS_E_STATS_* code and leave a sentence in a thread-local buffer that names the block,
 * the file offset and the descriptor (vms_stats_last_error()).
 *
 * Files opened from an fd and copies in memory share one parser through a tiny reader that
 * does pread() on one and memcpy() on the other.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmscope-local.h"
#include "vmscope/stats.h"

/*
 * Sanity caps. A real x86 vCPU file has about 50 descriptors, name_size 48 and a 3 KiB
 * data block; the caps leave three orders of magnitude of room while keeping what a
 * corrupt header can make us allocate bounded.
 */
#define VMS_STATS_MAX_DESC 65536u
#define VMS_STATS_MAX_NAME_SIZE 4096u
#define VMS_STATS_MAX_DATA (64u << 20)

/* The fixed part of a descriptor, before the name: 16 bytes in every kernel so far. */
#define VMS_STATS_DESC_FIXED sizeof(struct kvm_stats_desc)

_Static_assert(sizeof(struct kvm_stats_header) == 24, "kvm_stats_header layout");
_Static_assert(sizeof(struct kvm_stats_desc) == 16, "kvm_stats_desc layout");

/* Where the bytes come from: an fd read with pread(), or a private copy in memory. */
struct vms_stats_reader {
	int fd;		    /* -1 when reading from buf */
	const uint8_t *buf; /* the copy, owned by struct vms_stats */
	uint64_t size;	    /* bytes available; UINT64_MAX when unknown (an anon-inode fd) */
};

struct vms_stats {
	struct vms_stats_reader rd;
	uint8_t *copy; /* vms_stats_open_buf(): the bytes, else NULL */
	char *id;
	size_t count;
	struct vms_stat_desc *descs;
	uint8_t *desc_block; /* raw descriptor block: the names point into it */
	uint64_t *data;	     /* data_size bytes, refreshed by vms_stats_read() */
	uint64_t data_offset;
	size_t data_size;
};

static __thread char stats_error[256];

const char *vms_stats_last_error(void)
{
	return stats_error;
}

/* Record why validation failed (thread-local, also sent to the debug log) and return err. */
__attribute__((format(printf, 2, 3))) static int stats_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(stats_error, sizeof(stats_error), fmt, ap);
	va_end(ap);
	vms_dbg("stats: %s", stats_error);
	return err;
}

/* Read up to n bytes at off; returns the number read (short only at end of file) or -errno. */
static ssize_t reader_pread(const struct vms_stats_reader *rd, void *dst, size_t n, uint64_t off)
{
	size_t done = 0;

	if (rd->fd < 0) {
		if (off >= rd->size)
			return 0;
		if (n > rd->size - off)
			n = (size_t)(rd->size - off);
		memcpy(dst, rd->buf + off, n);
		return (ssize_t)n;
	}
	while (done < n) {
		ssize_t r;

		if (off + done > (uint64_t)INT64_MAX)
			break;
		r = pread(rd->fd, (uint8_t *)dst + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/*
 * Fail early, before allocating for it, when a block cannot be in the file. Only possible
 * when the size is known (a buffer or a regular file; KVM's anon-inode fds report 0).
 */
static int reader_check(const struct vms_stats_reader *rd, const char *what, uint64_t off,
			uint64_t n)
{
	if (off > rd->size || n > rd->size - off)
		return stats_fail(-VMS_E_STATS_SHORT,
				  "%s at offset %" PRIu64 " (%" PRIu64 " bytes) "
				  "ends past the end of the file (%" PRIu64 " bytes)",
				  what, off, n, rd->size);
	return 0;
}

static int reader_read_exact(const struct vms_stats_reader *rd, const char *what, void *dst,
			     size_t n, uint64_t off)
{
	ssize_t r;

	if (reader_check(rd, what, off, n))
		return -VMS_E_STATS_SHORT;
	r = reader_pread(rd, dst, n, off);
	if (r < 0)
		return stats_fail((int)r, "%s at offset %" PRIu64 ": read failed: %s", what, off,
				  strerror((int)-r));
	if ((size_t)r != n)
		return stats_fail(-VMS_E_STATS_SHORT,
				  "%s at offset %" PRIu64 ": file ended after %zd of %zu bytes",
				  what, off, r, n);
	return 0;
}

/* Do [a, a + alen) and [b, b + blen) intersect? Empty ranges intersect nothing. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int check_blocks_disjoint(const char *aname, uint64_t a, uint64_t alen, const char *bname,
				 uint64_t b, uint64_t blen)
{
	if (!ranges_overlap(a, alen, b, blen))
		return 0;
	return stats_fail(-VMS_E_STATS_OVERLAP,
			  "%s [%" PRIu64 ", %" PRIu64 ") overlaps %s [%" PRIu64 ", %" PRIu64 ")",
			  aname, a, a + alen, bname, b, b + blen);
}

/* Before the data block's size is known: a non-empty data block must not start inside. */
static int check_data_start(const char *aname, uint64_t a, uint64_t alen, uint64_t data)
{
	if (data < a || data >= a + alen)
		return 0;
	return stats_fail(-VMS_E_STATS_OVERLAP,
			  "data block at offset %" PRIu64 " starts inside %s [%" PRIu64 ", %" PRIu64
			  ")",
			  data, aname, a, a + alen);
}

static const char *const type_names[] = {
	[VMS_STAT_CUMULATIVE] = "cumulative",
	[VMS_STAT_INSTANT] = "instant",
	[VMS_STAT_PEAK] = "peak",
	[VMS_STAT_LINEAR_HIST] = "linear-hist",
	[VMS_STAT_LOG_HIST] = "log-hist",
};

static const char *const unit_names[] = {
	[VMS_UNIT_NONE] = "none",	[VMS_UNIT_BYTES] = "bytes",
	[VMS_UNIT_SECONDS] = "seconds", [VMS_UNIT_CYCLES] = "cycles",
	[VMS_UNIT_BOOLEAN] = "boolean",
};

const char *vms_stat_type_name(enum vms_stat_type type)
{
	if ((unsigned int)type < VMS_ARRAY_SIZE(type_names))
		return type_names[type];
	return "unknown";
}

const char *vms_stat_unit_name(enum vms_stat_unit unit)
{
	if ((unsigned int)unit < VMS_ARRAY_SIZE(unit_names))
		return unit_names[unit];
	return "unknown";
}

/* Validate descriptor i (raw bytes at raw, file offset at) and fill d. */
static int parse_desc(const uint8_t *raw, size_t i, uint64_t at, uint32_t name_size,
		      struct vms_stat_desc *d)
{
	struct kvm_stats_desc kd;
	const char *name = (const char *)raw + VMS_STATS_DESC_FIXED;
	uint32_t type, unit, base;
	const char *bad = NULL;

	memcpy(&kd, raw, sizeof(kd));

	/* The name first, so that every later message can quote it. */
	if (!memchr(name, '\0', name_size))
		return stats_fail(-VMS_E_STATS_DESC,
				  "descriptor block, descriptor %zu at offset %" PRIu64
				  ": name is not NUL-terminated within name_size %u",
				  i, at, name_size);
	if (!name[0])
		return stats_fail(-VMS_E_STATS_DESC,
				  "descriptor block, descriptor %zu at offset %" PRIu64
				  ": empty name",
				  i, at);

#define DESC_FAIL(fmt, ...)                                                                     \
	stats_fail(-VMS_E_STATS_DESC,                                                           \
		   "descriptor block, descriptor %zu \"%.64s\" at offset %" PRIu64 ": " fmt, i, \
		   name, at, __VA_ARGS__)

	type = kd.flags & KVM_STATS_TYPE_MASK;
	unit = kd.flags & KVM_STATS_UNIT_MASK;
	base = kd.flags & KVM_STATS_BASE_MASK;
	if (type > KVM_STATS_TYPE_MAX)
		return DESC_FAIL("unknown type %u (flags %#x)", type >> KVM_STATS_TYPE_SHIFT,
				 kd.flags);
	if (unit > KVM_STATS_UNIT_MAX)
		return DESC_FAIL("unknown unit %u (flags %#x)", unit >> KVM_STATS_UNIT_SHIFT,
				 kd.flags);
	if (base > KVM_STATS_BASE_MAX)
		return DESC_FAIL("unknown base %u (flags %#x)", base >> KVM_STATS_BASE_SHIFT,
				 kd.flags);

	/* Exponent sign per unit, as the selftest checks (booleans: exactly 0). */
	switch (unit) {
	case KVM_STATS_UNIT_NONE:
	case KVM_STATS_UNIT_BYTES:
	case KVM_STATS_UNIT_CYCLES:
		if (kd.exponent < 0)
			bad = "must be >= 0";
		break;
	case KVM_STATS_UNIT_SECONDS:
		if (kd.exponent > 0)
			bad = "must be <= 0";
		break;
	case KVM_STATS_UNIT_BOOLEAN:
		if (kd.exponent != 0)
			bad = "must be 0";
		break;
	}
	if (bad)
		return DESC_FAIL("exponent %d %s for unit %s", kd.exponent, bad,
				 unit_names[unit >> KVM_STATS_UNIT_SHIFT]);

	if (!kd.size)
		return DESC_FAIL("%s", "size is 0");
	if (type == KVM_STATS_TYPE_LINEAR_HIST && !kd.bucket_size)
		return DESC_FAIL("%s", "linear histogram with bucket_size 0");
	if (type != KVM_STATS_TYPE_LINEAR_HIST && kd.bucket_size)
		return DESC_FAIL("bucket_size %u on a %s statistic", kd.bucket_size,
				 type_names[type >> KVM_STATS_TYPE_SHIFT]);
	/*
	 * The values are handed out as uint64_t pointers into the data block, and api.rst
	 * says the data is 64-bit aligned: a misaligned offset is a corrupt file.
	 */
	if (kd.offset % sizeof(uint64_t))
		return DESC_FAIL("data offset %u is not a multiple of 8", kd.offset);

	d->name = name;
	d->type = (enum vms_stat_type)(type >> KVM_STATS_TYPE_SHIFT);
	d->unit = (enum vms_stat_unit)(unit >> KVM_STATS_UNIT_SHIFT);
	d->base = base == KVM_STATS_BASE_POW2 ? 2 : 10;
	d->exponent = kd.exponent;
	d->size = kd.size;
	d->offset = kd.offset;
	d->bucket_size = kd.bucket_size;
	d->scale = d->base == 2 ? ldexp(1.0, d->exponent) : pow(10.0, d->exponent);
	/*
	 * Not in the selftest: an exponent so large that base^exponent is not a normal double
	 * (|exponent| > ~308 for base 10) would turn every conversion into 0, inf or NaN.
	 */
	if (!isnormal(d->scale))
		return DESC_FAIL("exponent %d: %u^%d is not representable", kd.exponent, d->base,
				 kd.exponent);
#undef DESC_FAIL
	return 0;
}

/* For the overlap check of the values: descriptor index sorted by data offset. */
struct value_range {
	uint64_t start, end;
	size_t index;
};

static int cmp_range(const void *a, const void *b)
{
	const struct value_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int check_values_disjoint(const struct vms_stats *st)
{
	struct value_range *r;
	int ret = 0;

	if (st->count < 2)
		return 0;
	r = calloc(st->count, sizeof(*r));
	if (!r)
		return stats_fail(-ENOMEM, "out of memory checking %zu descriptors", st->count);
	for (size_t i = 0; i < st->count; i++) {
		r[i].start = st->descs[i].offset;
		r[i].end = r[i].start + (uint64_t)st->descs[i].size * sizeof(uint64_t);
		r[i].index = i;
	}
	qsort(r, st->count, sizeof(*r), cmp_range);
	for (size_t i = 1; i < st->count; i++) {
		const struct vms_stat_desc *a = &st->descs[r[i - 1].index];
		const struct vms_stat_desc *b = &st->descs[r[i].index];

		if (r[i].start < r[i - 1].end) {
			ret = stats_fail(-VMS_E_STATS_OVERLAP,
					 "data block: values of descriptor %zu \"%.64s\" [%" PRIu64
					 ", %" PRIu64 ") overlap those of descriptor %zu \"%.64s\" "
					 "[%" PRIu64 ", %" PRIu64 ")",
					 r[i].index, b->name, r[i].start, r[i].end, r[i - 1].index,
					 a->name, r[i - 1].start, r[i - 1].end);
			break;
		}
	}
	free(r);
	return ret;
}

static int stats_parse(struct vms_stats *st)
{
	const struct vms_stats_reader *rd = &st->rd;
	const uint64_t hdr_size = sizeof(struct kvm_stats_header);
	struct kvm_stats_header h;
	uint64_t stride, desc_len, data_end = 0;
	int ret;

	ret = reader_read_exact(rd, "header", &h, sizeof(h), 0);
	if (ret)
		return ret;

	if (!h.name_size || h.name_size > VMS_STATS_MAX_NAME_SIZE)
		return stats_fail(-VMS_E_STATS_HEADER,
				  "header at offset 0: name_size %u is outside [1, %u]",
				  h.name_size, VMS_STATS_MAX_NAME_SIZE);
	if (h.num_desc > VMS_STATS_MAX_DESC)
		return stats_fail(-VMS_E_STATS_HEADER,
				  "header at offset 0: num_desc %u is above the limit of %u",
				  h.num_desc, VMS_STATS_MAX_DESC);
	/* All three blocks must lie past the header (the selftest checks desc and data). */
	if (h.id_offset < hdr_size)
		return stats_fail(-VMS_E_STATS_HEADER,
				  "header at offset 0: id_offset %u points into the %" PRIu64
				  "-byte header",
				  h.id_offset, hdr_size);
	if (h.desc_offset < hdr_size)
		return stats_fail(-VMS_E_STATS_HEADER,
				  "header at offset 0: desc_offset %u points into the %" PRIu64
				  "-byte header",
				  h.desc_offset, hdr_size);
	if (h.data_offset < hdr_size)
		return stats_fail(-VMS_E_STATS_HEADER,
				  "header at offset 0: data_offset %u points into the %" PRIu64
				  "-byte header",
				  h.data_offset, hdr_size);

	/* 64-bit arithmetic: at most 65536 * (16 + 4096), far from wrapping. */
	stride = VMS_STATS_DESC_FIXED + (uint64_t)h.name_size;
	desc_len = stride * h.num_desc;
	ret = check_blocks_disjoint("id string", h.id_offset, h.name_size, "descriptor block",
				    h.desc_offset, desc_len);
	if (ret)
		return ret;
	/*
	 * Every descriptor has at least one value, so with descriptors the data block is not
	 * empty and starting inside the descriptor block is already an overlap.
	 */
	if (h.num_desc) {
		ret = check_data_start("descriptor block", h.desc_offset, desc_len, h.data_offset);
		if (!ret)
			ret = check_data_start("id string", h.id_offset, h.name_size,
					       h.data_offset);
		if (ret)
			return ret;
	}

	st->id = malloc(h.name_size);
	if (!st->id)
		return stats_fail(-ENOMEM, "out of memory for a %u-byte id string", h.name_size);
	ret = reader_read_exact(rd, "id string", st->id, h.name_size, h.id_offset);
	if (ret)
		return ret;
	if (!memchr(st->id, '\0', h.name_size))
		return stats_fail(-VMS_E_STATS_ID,
				  "id string at offset %u: not NUL-terminated within name_size %u",
				  h.id_offset, h.name_size);
	if (strncmp(st->id, "kvm", 3))
		return stats_fail(-VMS_E_STATS_ID,
				  "id string at offset %u: \"%.64s\" does not start with \"kvm\"",
				  h.id_offset, st->id);

	ret = reader_check(rd, "descriptor block", h.desc_offset, desc_len);
	if (ret)
		return ret;
	st->desc_block = malloc(desc_len ? (size_t)desc_len : 1);
	st->descs = calloc(h.num_desc ? h.num_desc : 1, sizeof(*st->descs));
	if (!st->desc_block || !st->descs)
		return stats_fail(-ENOMEM, "out of memory for %u descriptors", h.num_desc);
	ret = reader_read_exact(rd, "descriptor block", st->desc_block, (size_t)desc_len,
				h.desc_offset);
	if (ret)
		return ret;

	for (size_t i = 0; i < h.num_desc; i++) {
		struct vms_stat_desc *d = &st->descs[i];
		uint64_t end;

		ret = parse_desc(st->desc_block + i * stride, i, h.desc_offset + i * stride,
				 h.name_size, d);
		if (ret)
			return ret;
		/* offset < 2^32 and size * 8 < 2^19: no wrap in 64 bits. */
		end = (uint64_t)d->offset + (uint64_t)d->size * sizeof(uint64_t);
		if (end > VMS_STATS_MAX_DATA)
			return stats_fail(-VMS_E_STATS_DESC,
					  "descriptor block, descriptor %zu \"%.64s\" at offset "
					  "%" PRIu64 ": values [%u, %" PRIu64 ") of the data block "
					  "pass the %u-byte limit",
					  i, d->name, h.desc_offset + i * stride, d->offset, end,
					  VMS_STATS_MAX_DATA);
		if (end > data_end)
			data_end = end;
	}
	st->count = h.num_desc;

	/* The data block is as long as the furthest value reaches; holes are allowed. */
	ret = check_values_disjoint(st);
	if (ret)
		return ret;
	ret = check_blocks_disjoint("descriptor block", h.desc_offset, desc_len, "data block",
				    h.data_offset, data_end);
	if (!ret)
		ret = check_blocks_disjoint("id string", h.id_offset, h.name_size, "data block",
					    h.data_offset, data_end);
	if (ret)
		return ret;

	st->data_offset = h.data_offset;
	st->data_size = (size_t)data_end;
	ret = reader_check(rd, "data block", st->data_offset, st->data_size);
	if (ret)
		return ret;
	st->data = malloc(st->data_size ? st->data_size : sizeof(uint64_t));
	if (!st->data)
		return stats_fail(-ENOMEM, "out of memory for a %zu-byte data block",
				  st->data_size);
	return vms_stats_read(st);
}

static int stats_open(struct vms_stats *st, struct vms_stats **out)
{
	int ret;

	stats_error[0] = '\0';
	ret = stats_parse(st);
	if (ret) {
		vms_stats_free(st);
		return ret;
	}
	*out = st;
	return 0;
}

int vms_stats_open_fd(int fd, struct vms_stats **out)
{
	struct vms_stats *st;
	struct stat sb;

	if (!out || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		close(fd);
		return -ENOMEM;
	}
	st->rd.fd = fd;
	/* A regular file has a size to check against; KVM's anon-inode fds do not. */
	st->rd.size =
		fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : UINT64_MAX;
	return stats_open(st, out);
}

int vms_stats_open_buf(const void *buf, size_t len, struct vms_stats **out)
{
	struct vms_stats *st;

	if (!out || (!buf && len))
		return -EINVAL;
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->rd.fd = -1;
	st->copy = malloc(len ? len : 1);
	if (!st->copy) {
		free(st);
		return -ENOMEM;
	}
	if (len)
		memcpy(st->copy, buf, len);
	st->rd.buf = st->copy;
	st->rd.size = len;
	return stats_open(st, out);
}

void vms_stats_free(struct vms_stats *stats)
{
	if (!stats)
		return;
	if (stats->rd.fd >= 0)
		close(stats->rd.fd);
	free(stats->copy);
	free(stats->id);
	free(stats->descs);
	free(stats->desc_block);
	free(stats->data);
	free(stats);
}

int vms_stats_read(struct vms_stats *stats)
{
	ssize_t r;

	if (!stats || !stats->data)
		return -EINVAL;
	r = reader_pread(&stats->rd, stats->data, stats->data_size, stats->data_offset);
	if (r < 0)
		return stats_fail((int)r, "data block at offset %" PRIu64 ": read failed: %s",
				  stats->data_offset, strerror((int)-r));
	if ((size_t)r != stats->data_size)
		return stats_fail(-VMS_E_STATS_SHORT,
				  "data block at offset %" PRIu64 ": file ended after %zd of %zu "
				  "bytes",
				  stats->data_offset, r, stats->data_size);
	return 0;
}

const char *vms_stats_id(const struct vms_stats *stats)
{
	return stats ? stats->id : NULL;
}

size_t vms_stats_count(const struct vms_stats *stats)
{
	return stats ? stats->count : 0;
}

const struct vms_stat_desc *vms_stats_desc(const struct vms_stats *stats, size_t i)
{
	if (!stats || i >= stats->count)
		return NULL;
	return &stats->descs[i];
}

int vms_stats_find(const struct vms_stats *stats, const char *name)
{
	if (!stats || !name)
		return -EINVAL;
	/* Names are unique in every kernel; a linear scan of ~50 short strings is cheap. */
	for (size_t i = 0; i < stats->count; i++)
		if (!strcmp(stats->descs[i].name, name))
			return (int)i;
	return -ENOENT;
}

const uint64_t *vms_stats_values(const struct vms_stats *stats, size_t i)
{
	if (!stats || i >= stats->count)
		return NULL;
	/* offset is a validated multiple of 8 inside the block: an aligned index. */
	return stats->data + stats->descs[i].offset / sizeof(uint64_t);
}

uint64_t vms_stats_value(const struct vms_stats *stats, size_t i)
{
	const uint64_t *v = vms_stats_values(stats, i);

	return v ? v[0] : 0;
}

int vms_stats_value_by_name(const struct vms_stats *stats, const char *name, uint64_t *val)
{
	int i = vms_stats_find(stats, name);

	if (i < 0)
		return i;
	if (val)
		*val = vms_stats_value(stats, (size_t)i);
	return 0;
}

double vms_stat_in_units(const struct vms_stat_desc *desc, uint64_t value)
{
	if (!desc)
		return NAN;
	return (double)value * desc->scale;
}

/*
 * Bucket ranges, from Documentation/virt/kvm/api.rst ("KVM_GET_STATS_FD", as clarified by
 * commit 942d9e89524c "Documentation: kvm: clarify histogram units"), which counts buckets
 * from N = 1:
 *   LINEAR_HIST: the Nth bucket (1 <= N < size) is [hist_param*(N-1), hist_param*N), the
 *                last is [hist_param*(size-1), +INF)  (hist_param = bucket_size);
 *   LOG_HIST:    the first bucket is [0, 1), the Nth (1 < N < size) is
 *                [pow(2, N-2), pow(2, N-1)), the last is [pow(2, size-2), +INF).
 * With the 0-based index n = N - 1 used here: linear n covers [bucket_size*n,
 * bucket_size*(n+1)); log 0 covers [0, 1) and n >= 1 covers [2^(n-1), 2^n) (the kernel's
 * kvm_stats_log_hist_update() files a value v under fls64(v)). The last bucket always
 * reaches +INF, so a one-bucket histogram is [0, +INF). "In the case of histograms, the
 * unit applies to the bucket ranges": the bounds are scaled, the values are sample counts.
 */
int vms_stat_bucket_range(const struct vms_stat_desc *desc, uint32_t bucket, double *lo, double *hi)
{
	double l, h;
	bool last;

	if (!desc || bucket >= desc->size)
		return -EINVAL;
	last = bucket == desc->size - 1;
	switch (desc->type) {
	case VMS_STAT_LINEAR_HIST:
		l = (double)desc->bucket_size * bucket * desc->scale;
		h = (double)desc->bucket_size * ((double)bucket + 1) * desc->scale;
		break;
	case VMS_STAT_LOG_HIST:
		l = bucket ? ldexp(desc->scale, (int)bucket - 1) : 0.0;
		h = ldexp(desc->scale, (int)bucket);
		break;
	default:
		return -EINVAL;
	}
	if (last)
		h = INFINITY;
	if (lo)
		*lo = l;
	if (hi)
		*hi = h;
	return 0;
}
