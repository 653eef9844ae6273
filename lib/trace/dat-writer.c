// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Writer of trace-cmd .dat files, versions 6 and 7 (trace-cmd.dat.v6(5), trace-cmd.dat.v7(5),
 * and what trace-cmd 3.1 really writes where the documents are silent or wrong: v7 section
 * sizes are 8 bytes, the BUFFER option has a 4-byte page size after the clock, the v6
 * flyrecord offsets are followed by the trace clock, CPUs without data are left out of the
 * BUFFER option).
 *
 * Pages arrive per CPU, interleaved in time, from a recorder or a generator; each CPU's
 * pages are appended to its own unlinked spool file next to the output (the same file
 * system, so the space is accounted where the result goes). Metadata (formats, command
 * lines, options) is small and kept in memory. vms_dat_writer_close() writes the file in
 * one pass: metadata, then every CPU's pages from its spool, page-aligned; in v7 the
 * flyrecord data is compressed in chunks of ten pages, as trace-cmd does. Memory stays
 * bounded: a few pages per CPU of spool buffer and one compression chunk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vmscope-local.h"
#include "vmscope/trace-writer.h"
#include "dat-format.h"

/* Section and option ids of trace-cmd (lib/trace-cmd/include/private/trace-cmd-private.h) */

#define PAGES_IN_CHUNK 10 /* trace-cmd's chunk of compressed flyrecord data */
#define SPOOL_PAGES 8	  /* pages buffered per CPU before a write to its spool */
#define OBUF_SIZE (256 * 1024)
#define COPY_BUF_SIZE (1024 * 1024)

enum comp { COMP_NONE, COMP_ZSTD, COMP_ZLIB };

struct format {
	char *system;
	char *text;
	size_t len;
};

struct guest {
	char *name;
	uint64_t trace_id;
	uint32_t nvcpus;
	int32_t *tids;
};

struct spool {
	int fd;		 /* -1 until the CPU's first page */
	uint64_t npages; /* pages in the file and in buf */
	uint8_t *buf;
	size_t nbuf; /* pages waiting in buf */
};

/* A growable memory buffer with a sticky error, for metadata and option payloads. */
struct mbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

/* Buffered sequential output with positioned writes; the first error is sticky. */
struct obuf {
	int fd;
	uint64_t pos; /* file offset of buf[0] */
	size_t len;
	int err;
	uint8_t *buf;
};

struct vms_dat_writer {
	char *path;
	int out_fd;
	int version;
	enum comp comp;
	int level;
	uint32_t page_size;
	uint32_t long_size;
	uint32_t ncpus;
	uint64_t trace_id;
	char *clock, *header_page, *header_event, *uname, *kallsyms, *printk;
	char *cmdlines, *meta;
	char **cpustat; /* [ncpus] */
	struct format *formats;
	size_t nformats;
	struct guest *guests;
	size_t nguests;
	struct spool *spools; /* [ncpus] */
	char *dir;	      /* directory of the spool files */
	int err;	      /* first error; sticky */
	struct mbuf strings;  /* v7 section descriptions */
};

/* ---- small helpers ---- */

static void mb_reserve(struct mbuf *m, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (m->err || m->len + n <= m->cap)
		return;
	cap = m->cap ? m->cap : 256;
	while (cap < m->len + n)
		cap *= 2;
	p = realloc(m->p, cap);
	if (!p) {
		m->err = -ENOMEM;
		return;
	}
	m->p = p;
	m->cap = cap;
}

static void mb_put(struct mbuf *m, const void *data, size_t n)
{
	mb_reserve(m, n);
	if (m->err || !n)
		return;
	memcpy(m->p + m->len, data, n);
	m->len += n;
}

static void mb_u16(struct mbuf *m, uint16_t v)
{
	mb_put(m, &v, 2); /* x86_64 only: little-endian, the byte order the file declares */
}

static void mb_u32(struct mbuf *m, uint32_t v)
{
	mb_put(m, &v, 4);
}

static void mb_u64(struct mbuf *m, uint64_t v)
{
	mb_put(m, &v, 8);
}

static void mb_str(struct mbuf *m, const char *s)
{
	mb_put(m, s, strlen(s) + 1);
}

static void mb_free(struct mbuf *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

static int pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
	const uint8_t *p = data;

	while (n) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pread_all(int fd, void *data, size_t n, uint64_t off)
{
	uint8_t *p = data;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* the spool file is shorter than what was written to it */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static void ob_flush(struct obuf *o)
{
	int ret;

	if (o->err || !o->len)
		return;
	ret = pwrite_all(o->fd, o->buf, o->len, o->pos);
	if (ret < 0)
		o->err = ret;
	o->pos += o->len;
	o->len = 0;
}

static void ob_write(struct obuf *o, const void *data, size_t n)
{
	int ret;

	if (o->err || !n)
		return;
	if (o->len + n > OBUF_SIZE)
		ob_flush(o);
	if (n >= OBUF_SIZE) {
		ret = pwrite_all(o->fd, data, n, o->pos);
		if (ret < 0)
			o->err = ret;
		o->pos += n;
		return;
	}
	memcpy(o->buf + o->len, data, n);
	o->len += n;
}

static uint64_t ob_tell(const struct obuf *o)
{
	return o->pos + o->len;
}

static void ob_u16(struct obuf *o, uint16_t v)
{
	ob_write(o, &v, 2);
}

static void ob_u32(struct obuf *o, uint32_t v)
{
	ob_write(o, &v, 4);
}

static void ob_u64(struct obuf *o, uint64_t v)
{
	ob_write(o, &v, 8);
}

static void ob_str(struct obuf *o, const char *s)
{
	ob_write(o, s, strlen(s) + 1);
}

/* Zero bytes up to the next multiple of @align (a power of two). */
static void ob_align(struct obuf *o, uint64_t align)
{
	static const uint8_t zero[4096];
	uint64_t pad = (align - (ob_tell(o) & (align - 1))) & (align - 1);

	while (pad && !o->err) {
		size_t n = pad > sizeof(zero) ? sizeof(zero) : (size_t)pad;

		ob_write(o, zero, n);
		pad -= n;
	}
}

/* Overwrite @n bytes at file offset @at, already written (in the file or the buffer). */
static void ob_patch(struct obuf *o, uint64_t at, const void *data, size_t n)
{
	int ret;

	if (o->err)
		return;
	if (at >= o->pos && at + n <= o->pos + o->len) {
		memcpy(o->buf + (at - o->pos), data, n);
		return;
	}
	ob_flush(o);
	if (o->err)
		return;
	ret = pwrite_all(o->fd, data, n, at);
	if (ret < 0)
		o->err = ret;
}

static int set_err(struct vms_dat_writer *w, int err)
{
	if (!w->err && err < 0)
		w->err = err;
	return err;
}

static char *dup_or_null(const char *s, int *err)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*err = -ENOMEM;
	return d;
}

/* ---- compression ---- */

static const char *comp_name(enum comp c)
{
	return c == COMP_ZSTD ? "zstd" : c == COMP_ZLIB ? "zlib" : "none";
}

static const char *comp_version(enum comp c)
{
	return c == COMP_ZSTD ? ZSTD_versionString() : c == COMP_ZLIB ? zlibVersion() : "";
}

static size_t comp_bound(enum comp c, size_t n)
{
	return c == COMP_ZSTD ? ZSTD_compressBound(n) : (size_t)compressBound((uLong)n);
}

/* Compress @n bytes of @in into @out (capacity @cap); returns the size or a negative errno. */
static long comp_block(struct vms_dat_writer *w, void *zctx, const void *in, size_t n, void *out,
		       size_t cap)
{
	if (w->comp == COMP_ZSTD) {
		size_t r = ZSTD_compressCCtx(zctx, out, cap, in, n,
					     w->level ? w->level : ZSTD_CLEVEL_DEFAULT);

		if (ZSTD_isError(r)) {
			vms_err("zstd: %s", ZSTD_getErrorName(r));
			return -EIO;
		}
		return (long)r;
	} else {
		uLongf len = (uLongf)cap;
		int r = compress2(out, &len, in, (uLong)n, w->level ? w->level : 1);

		if (r != Z_OK) {
			vms_err("zlib: compress2 failed (%d)", r);
			return r == Z_MEM_ERROR ? -ENOMEM : -EIO;
		}
		return (long)len;
	}
}

/* ---- open, add ---- */

static int open_spool(struct vms_dat_writer *w)
{
	char *tmpl;
	int fd;

	fd = open(w->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
		return -errno;
	/* No O_TMPFILE on this file system: a named file, unlinked at once. */
	if (asprintf(&tmpl, "%s/.vmscope-spool-XXXXXX", w->dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
	} else if (unlink(tmpl) < 0) {
		int err = -errno;

		close(fd);
		fd = err;
	}
	free(tmpl);
	return fd;
}

static void writer_free(struct vms_dat_writer *w)
{
	size_t i;

	if (w->out_fd >= 0)
		close(w->out_fd);
	for (i = 0; w->spools && i < w->ncpus; i++) {
		if (w->spools[i].fd >= 0)
			close(w->spools[i].fd);
		free(w->spools[i].buf);
	}
	free(w->spools);
	for (i = 0; w->cpustat && i < w->ncpus; i++)
		free(w->cpustat[i]);
	free(w->cpustat);
	for (i = 0; i < w->nformats; i++) {
		free(w->formats[i].system);
		free(w->formats[i].text);
	}
	free(w->formats);
	for (i = 0; i < w->nguests; i++) {
		free(w->guests[i].name);
		free(w->guests[i].tids);
	}
	free(w->guests);
	free(w->path);
	free(w->dir);
	free(w->clock);
	free(w->header_page);
	free(w->header_event);
	free(w->uname);
	free(w->kallsyms);
	free(w->printk);
	free(w->cmdlines);
	free(w->meta);
	mb_free(&w->strings);
	free(w);
}

int vms_dat_writer_open(const char *path, const struct vms_dat_writer_opts *uopts,
			struct vms_dat_writer **out)
{
	struct vms_dat_writer_opts o = { 0 };
	struct vms_dat_writer *w;
	const char *slash;
	int err = 0;
	uint32_t i;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !*path || !uopts || uopts->sz < offsetof(struct vms_dat_writer_opts, version))
		return -EINVAL;
	if (uopts->sz > sizeof(o)) {
		/* Newer caller: accept only if the fields we do not know are all zero. */
		const uint8_t *extra = (const uint8_t *)uopts + sizeof(o);

		for (i = 0; i < uopts->sz - sizeof(o); i++)
			if (extra[i])
				return -E2BIG;
	}
	memcpy(&o, uopts, uopts->sz < sizeof(o) ? uopts->sz : sizeof(o));

	if (!o.version)
		o.version = 6;
	if (!o.page_size)
		o.page_size = 4096;
	if (!o.long_size)
		o.long_size = 8;
	if ((o.version != 6 && o.version != 7) || o.page_size < 256 || o.page_size > (1U << 24) ||
	    (o.page_size & (o.page_size - 1)) || (o.long_size != 4 && o.long_size != 8) ||
	    !o.ncpus || o.ncpus > 65536 || !o.header_page || !o.header_event ||
	    o.compression_level < 0 || o.compression_level > 22)
		return -EINVAL;
	if (o.compression && strcmp(o.compression, "none") && o.version == 6)
		return -EINVAL; /* v6 files have no compression */

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->out_fd = -1;
	w->version = o.version;
	w->page_size = o.page_size;
	w->long_size = o.long_size;
	w->ncpus = o.ncpus;
	w->trace_id = o.trace_id;
	w->level = o.compression_level;
	if (!o.compression || !strcmp(o.compression, "none")) {
		w->comp = COMP_NONE;
	} else if (!strcmp(o.compression, "zstd")) {
		w->comp = COMP_ZSTD;
	} else if (!strcmp(o.compression, "zlib")) {
		w->comp = COMP_ZLIB;
		if (w->level > 9)
			err = -EINVAL;
	} else {
		err = -ENOTSUP;
	}

	w->path = dup_or_null(path, &err);
	w->clock = dup_or_null(o.clock ? o.clock : "local", &err);
	w->header_page = dup_or_null(o.header_page, &err);
	w->header_event = dup_or_null(o.header_event, &err);
	w->uname = dup_or_null(o.uname, &err);
	w->kallsyms = dup_or_null(o.kallsyms, &err);
	w->printk = dup_or_null(o.printk_formats, &err);
	slash = strrchr(path, '/');
	if (!slash)
		w->dir = dup_or_null(".", &err);
	else if (slash == path)
		w->dir = dup_or_null("/", &err);
	else if (!err && !(w->dir = strndup(path, (size_t)(slash - path))))
		err = -ENOMEM;
	w->spools = calloc(o.ncpus, sizeof(*w->spools));
	w->cpustat = calloc(o.ncpus, sizeof(*w->cpustat));
	if (!w->spools || !w->cpustat)
		err = err ? err : -ENOMEM;
	for (i = 0; w->spools && i < o.ncpus; i++)
		w->spools[i].fd = -1;
	if (err) {
		writer_free(w);
		return err;
	}
	w->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->out_fd < 0) {
		err = -errno;
		writer_free(w);
		return err;
	}
	*out = w;
	return 0;
}

int vms_dat_writer_add_format(struct vms_dat_writer *w, const char *system, const char *format,
			      size_t len)
{
	struct format *f;

	if (!w || !system || !*system || (!format && len))
		return -EINVAL;
	if (w->err)
		return w->err;
	f = realloc(w->formats, (w->nformats + 1) * sizeof(*f));
	if (!f)
		return set_err(w, -ENOMEM);
	w->formats = f;
	f = &w->formats[w->nformats];
	f->system = strdup(system);
	f->text = malloc(len ? len : 1);
	if (!f->system || !f->text) {
		free(f->system);
		free(f->text);
		return set_err(w, -ENOMEM);
	}
	if (len)
		memcpy(f->text, format, len);
	f->len = len;
	w->nformats++;
	return 0;
}

static int replace_text(struct vms_dat_writer *w, char **dst, const char *text)
{
	char *d;

	if (!w || !text)
		return -EINVAL;
	if (w->err)
		return w->err;
	d = strdup(text);
	if (!d)
		return set_err(w, -ENOMEM);
	free(*dst);
	*dst = d;
	return 0;
}

int vms_dat_writer_set_cmdlines(struct vms_dat_writer *w, const char *text)
{
	return replace_text(w, w ? &w->cmdlines : NULL, text);
}

int vms_dat_writer_set_meta(struct vms_dat_writer *w, const char *text)
{
	return replace_text(w, w ? &w->meta : NULL, text);
}

int vms_dat_writer_add_cpustat(struct vms_dat_writer *w, uint32_t cpu, const char *text)
{
	if (!w || cpu >= w->ncpus)
		return -EINVAL;
	return replace_text(w, &w->cpustat[cpu], text);
}

int vms_dat_writer_add_guest(struct vms_dat_writer *w, const char *name, uint64_t trace_id,
			     uint32_t nvcpus, const int32_t *tids)
{
	struct guest *g;

	if (!w || !name || !nvcpus || nvcpus > 4096 || !tids)
		return -EINVAL;
	if (w->err)
		return w->err;
	g = realloc(w->guests, (w->nguests + 1) * sizeof(*g));
	if (!g)
		return set_err(w, -ENOMEM);
	w->guests = g;
	g = &w->guests[w->nguests];
	g->name = strdup(name);
	g->tids = malloc(nvcpus * sizeof(*tids));
	if (!g->name || !g->tids) {
		free(g->name);
		free(g->tids);
		return set_err(w, -ENOMEM);
	}
	memcpy(g->tids, tids, nvcpus * sizeof(*tids));
	g->trace_id = trace_id;
	g->nvcpus = nvcpus;
	w->nguests++;
	return 0;
}

static int spool_flush(struct vms_dat_writer *w, struct spool *s)
{
	uint64_t off;
	int ret;

	if (!s->nbuf)
		return 0;
	if (s->fd < 0) {
		s->fd = open_spool(w);
		if (s->fd < 0)
			return s->fd;
	}
	off = (s->npages - s->nbuf) * w->page_size;
	ret = pwrite_all(s->fd, s->buf, s->nbuf * w->page_size, off);
	if (ret < 0)
		return ret;
	s->nbuf = 0;
	return 0;
}

int vms_dat_writer_add_page(struct vms_dat_writer *w, uint32_t cpu, const void *page)
{
	struct spool *s;
	uint64_t commit;

	if (!w || !page || cpu >= w->ncpus)
		return -EINVAL;
	if (w->err)
		return w->err;
	/* A page whose commit (the low 27 bits) overflows it is not a ring-buffer page. */
	memcpy(&commit, (const uint8_t *)page + 8, 8);
	if ((commit & ((1U << 27) - 1)) > w->page_size - VMS_PAGE_HEADER_SIZE)
		return -EINVAL;
	s = &w->spools[cpu];
	if (!s->buf) {
		s->buf = malloc((size_t)SPOOL_PAGES * w->page_size);
		if (!s->buf)
			return set_err(w, -ENOMEM);
	}
	memcpy(s->buf + s->nbuf * w->page_size, page, w->page_size);
	s->nbuf++;
	s->npages++;
	if (s->nbuf == SPOOL_PAGES)
		return set_err(w, spool_flush(w, s));
	return 0;
}

/* ---- assembling the file ---- */

/* The CPU data of one CPU as laid out in the file. */
struct cpu_out {
	uint64_t offset, size;
};

/* v7 section descriptions live in the strings section; a description's id is its offset. */
static uint32_t add_string(struct vms_dat_writer *w, const char *s)
{
	uint32_t id = (uint32_t)w->strings.len;

	mb_str(&w->strings, s);
	return id;
}

static void put_format_sections(struct vms_dat_writer *w, struct mbuf *ftrace, struct mbuf *events)
{
	uint32_t nftrace = 0, nsys = 0, n;
	size_t i, j, k;

	for (i = 0; i < w->nformats; i++)
		nftrace += !strcmp(w->formats[i].system, "ftrace");
	mb_u32(ftrace, nftrace);
	for (i = 0; i < w->nformats; i++) {
		if (strcmp(w->formats[i].system, "ftrace"))
			continue;
		mb_u64(ftrace, w->formats[i].len);
		mb_put(ftrace, w->formats[i].text, w->formats[i].len);
	}

	/* Systems in order of first appearance, each with all its events. */
	for (i = 0; i < w->nformats; i++) {
		const char *sys = w->formats[i].system;

		if (!strcmp(sys, "ftrace"))
			continue;
		for (j = 0; j < i && strcmp(w->formats[j].system, sys); j++)
			;
		nsys += j == i;
	}
	mb_u32(events, nsys);
	for (i = 0; i < w->nformats; i++) {
		const char *sys = w->formats[i].system;

		if (!strcmp(sys, "ftrace"))
			continue;
		for (j = 0; j < i && strcmp(w->formats[j].system, sys); j++)
			;
		if (j < i)
			continue; /* system already written */
		mb_str(events, sys);
		for (n = 0, k = i; k < w->nformats; k++)
			n += !strcmp(w->formats[k].system, sys);
		mb_u32(events, n);
		for (k = i; k < w->nformats; k++) {
			if (strcmp(w->formats[k].system, sys))
				continue;
			mb_u64(events, w->formats[k].len);
			mb_put(events, w->formats[k].text, w->formats[k].len);
		}
	}
}

static void put_headers(struct vms_dat_writer *w, struct mbuf *m)
{
	mb_put(m, "header_page", 12);
	mb_u64(m, strlen(w->header_page));
	mb_put(m, w->header_page, strlen(w->header_page));
	mb_put(m, "header_event", 13);
	mb_u64(m, strlen(w->header_event));
	mb_put(m, w->header_event, strlen(w->header_event));
}

static void put_text32(struct mbuf *m, const char *text)
{
	size_t len = text ? strlen(text) : 0;

	mb_u32(m, (uint32_t)len);
	mb_put(m, text, len);
}

static void put_text64(struct mbuf *m, const char *text)
{
	size_t len = text ? strlen(text) : 0;

	mb_u64(m, len);
	mb_put(m, text, len);
}

static void put_option(struct mbuf *m, uint16_t id, const void *data, uint32_t len)
{
	mb_u16(m, id);
	mb_u32(m, len);
	mb_put(m, data, len);
}

static void put_option_str(struct mbuf *m, uint16_t id, const char *s)
{
	put_option(m, id, s, (uint32_t)strlen(s) + 1);
}

/* The options both versions share; v7 adds its section and BUFFER options. */
static void put_common_options(struct vms_dat_writer *w, struct mbuf *m)
{
	struct mbuf g = { 0 };
	char *clock = NULL;
	char version[64];
	size_t i;
	uint32_t c;

	put_option(m, OPT_CPUCOUNT, &w->ncpus, 4);
	/* The format of tracefs trace_clock: the clock in use between brackets. */
	if (asprintf(&clock, "[%s]\n", w->clock) < 0) {
		m->err = -ENOMEM;
		return;
	}
	put_option_str(m, OPT_TRACECLOCK, clock);
	free(clock);
	if (w->uname)
		put_option_str(m, OPT_UNAME, w->uname);
	snprintf(version, sizeof(version), "vmscope %s", vms_version());
	put_option_str(m, OPT_VERSION, version);
	if (w->trace_id)
		put_option(m, OPT_TRACEID, &w->trace_id, 8);
	for (c = 0; c < w->ncpus; c++)
		if (w->cpustat[c])
			put_option_str(m, OPT_CPUSTAT, w->cpustat[c]);
	for (i = 0; i < w->nguests; i++) {
		const struct guest *gu = &w->guests[i];
		uint32_t v;

		g.len = 0;
		mb_str(&g, gu->name);
		mb_u64(&g, gu->trace_id);
		mb_u32(&g, gu->nvcpus);
		for (v = 0; v < gu->nvcpus; v++) {
			mb_u32(&g, v);
			mb_u32(&g, (uint32_t)gu->tids[v]);
		}
		if (g.err)
			m->err = g.err;
		else
			put_option(m, OPT_GUEST, g.p, (uint32_t)g.len);
	}
	mb_free(&g);
	if (w->meta)
		put_option_str(m, VMS_DAT_OPTION_META, w->meta);
}

/* Copy @len bytes of a spool file to the output at its current end, unbuffered. */
static int copy_spool(struct vms_dat_writer *w, struct obuf *o, int fd, uint64_t len)
{
	loff_t in = 0, outpos;
	uint8_t *buf = NULL;
	int ret = 0;

	ob_flush(o);
	if (o->err)
		return o->err;
	outpos = (loff_t)o->pos;
	while (len) {
		ssize_t r = copy_file_range(fd, &in, o->fd, &outpos, len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len -= (uint64_t)r;
	}
	if (len) {
		/* No copy_file_range between these files (or a short copy): plain reads. */
		buf = malloc(COPY_BUF_SIZE);
		if (!buf)
			ret = -ENOMEM;
		while (!ret && len) {
			size_t n = len > COPY_BUF_SIZE ? COPY_BUF_SIZE : (size_t)len;

			ret = pread_all(fd, buf, n, (uint64_t)in);
			if (!ret)
				ret = pwrite_all(o->fd, buf, n, (uint64_t)outpos);
			in += (loff_t)n;
			outpos += (loff_t)n;
			len -= n;
		}
		free(buf);
	}
	o->pos = (uint64_t)outpos;
	if (ret < 0)
		o->err = ret;
	return ret;
}

/* Write one CPU's data compressed in chunks: u32 count, then (u32 zsize, u32 size, data)*. */
static int copy_spool_compressed(struct vms_dat_writer *w, struct obuf *o, void *zctx, int fd,
				 uint64_t npages)
{
	size_t chunk = (size_t)PAGES_IN_CHUNK * w->page_size;
	size_t zcap = comp_bound(w->comp, chunk);
	uint8_t *in = malloc(chunk), *zout = malloc(zcap);
	uint64_t count_at = ob_tell(o), done = 0;
	uint32_t chunks = 0;
	int ret = 0;

	if (!in || !zout)
		ret = -ENOMEM;
	ob_u32(o, 0);
	while (!ret && !o->err && done < npages) {
		uint64_t n = npages - done > PAGES_IN_CHUNK ? PAGES_IN_CHUNK : npages - done;
		size_t bytes = (size_t)n * w->page_size;
		long z;

		ret = pread_all(fd, in, bytes, done * w->page_size);
		if (ret < 0)
			break;
		z = comp_block(w, zctx, in, bytes, zout, zcap);
		if (z < 0) {
			ret = (int)z;
			break;
		}
		ob_u32(o, (uint32_t)z);
		ob_u32(o, (uint32_t)bytes);
		ob_write(o, zout, (size_t)z);
		chunks++;
		done += n;
	}
	free(in);
	free(zout);
	if (!ret)
		ob_patch(o, count_at, &chunks, 4);
	if (ret < 0 && !o->err)
		o->err = ret;
	return o->err;
}

/* Write a v7 section: header, then the data, compressed in one block if asked. */
static void put_section(struct vms_dat_writer *w, struct obuf *o, uint16_t id, const char *desc,
			bool compress, const struct mbuf *data, void *zctx)
{
	uint16_t flags = compress && w->comp != COMP_NONE ? SEC_FL_COMPRESS : 0;
	uint32_t sid = add_string(w, desc);

	if (data->err) {
		o->err = o->err ? o->err : data->err;
		return;
	}
	ob_u16(o, id);
	ob_u16(o, flags);
	ob_u32(o, sid);
	if (!flags) {
		ob_u64(o, data->len);
		ob_write(o, data->p, data->len);
		return;
	} else {
		size_t cap = comp_bound(w->comp, data->len);
		uint8_t *z = malloc(cap ? cap : 1);
		long zlen;

		if (!z) {
			o->err = o->err ? o->err : -ENOMEM;
			return;
		}
		zlen = comp_block(w, zctx, data->p, data->len, z, cap);
		if (zlen < 0) {
			o->err = o->err ? o->err : (int)zlen;
			free(z);
			return;
		}
		ob_u64(o, 8 + (uint64_t)zlen);
		ob_u32(o, (uint32_t)zlen);
		ob_u32(o, (uint32_t)data->len);
		ob_write(o, z, (size_t)zlen);
		free(z);
	}
}

static void put_initial(struct vms_dat_writer *w, struct obuf *o)
{
	uint8_t b;

	ob_write(o, DAT_MAGIC, 10);
	ob_str(o, w->version == 7 ? "7" : "6");
	b = 0; /* little-endian */
	ob_write(o, &b, 1);
	b = (uint8_t)w->long_size;
	ob_write(o, &b, 1);
	ob_u32(o, w->page_size);
}

static int write_v6(struct vms_dat_writer *w, struct obuf *o)
{
	struct mbuf m = { 0 }, ev = { 0 };
	struct cpu_out *cpu = calloc(w->ncpus, sizeof(*cpu));
	char *clock = NULL;
	uint64_t off;
	uint32_t c;

	if (!cpu)
		return -ENOMEM;
	put_initial(w, o);
	put_headers(w, &m);
	put_format_sections(w, &m, &ev);
	mb_put(&m, ev.p, ev.len);
	if (ev.err)
		m.err = ev.err;
	put_text32(&m, w->kallsyms);
	put_text32(&m, w->printk);
	put_text64(&m, w->cmdlines);
	mb_u32(&m, w->ncpus);
	mb_put(&m, "options  ", 10);
	put_common_options(w, &m);
	mb_u16(&m, OPT_DONE);
	mb_put(&m, "flyrecord", 10);
	if (m.err) {
		o->err = m.err;
		goto out;
	}
	ob_write(o, m.p, m.len);

	/* Offsets: after the table and the clock, page-aligned, one CPU after the other. */
	if (asprintf(&clock, "[%s]", w->clock) < 0) {
		o->err = -ENOMEM;
		goto out;
	}
	off = ob_tell(o) + (uint64_t)w->ncpus * 16 + 8 + strlen(clock);
	off = (off + w->page_size - 1) & ~(uint64_t)(w->page_size - 1);
	for (c = 0; c < w->ncpus; c++) {
		cpu[c].offset = off;
		cpu[c].size = w->spools[c].npages * w->page_size;
		off += cpu[c].size;
		ob_u64(o, cpu[c].offset);
		ob_u64(o, cpu[c].size);
	}
	ob_u64(o, strlen(clock));
	ob_write(o, clock, strlen(clock));
	ob_align(o, w->page_size);
	for (c = 0; c < w->ncpus && !o->err; c++)
		if (cpu[c].size)
			copy_spool(w, o, w->spools[c].fd, cpu[c].size);
out:
	free(clock);
	free(cpu);
	mb_free(&m);
	mb_free(&ev);
	return o->err;
}

static int write_v7(struct vms_dat_writer *w, struct obuf *o)
{
	static const struct {
		uint16_t id;
		const char *desc;
	} meta[] = {
		{ OPT_HEADER_INFO, "headers" },
		{ OPT_FTRACE_EVENTS, "ftrace events" },
		{ OPT_EVENT_FORMATS, "events format" },
		{ OPT_KALLSYMS, "kallsyms" },
		{ OPT_PRINTK, "printk" },
		{ OPT_CMDLINES, "command lines" },
	};
	struct mbuf data[6] = { { 0 } }, opts = { 0 }, buffer = { 0 };
	struct cpu_out *cpu = calloc(w->ncpus, sizeof(*cpu));
	uint64_t sec_off[6], opts_at, fly_off, size_at, opts_off;
	void *zctx = NULL;
	uint32_t c, ncpu_data = 0;
	size_t i;

	if (!cpu)
		return -ENOMEM;
	if (w->comp == COMP_ZSTD && !(zctx = ZSTD_createCCtx())) {
		free(cpu);
		return -ENOMEM;
	}
	put_initial(w, o);
	ob_str(o, comp_name(w->comp));
	ob_str(o, comp_version(w->comp));
	opts_at = ob_tell(o);
	ob_u64(o, 0); /* offset of the first options section, patched below */

	put_headers(w, &data[0]);
	put_format_sections(w, &data[1], &data[2]);
	put_text32(&data[3], w->kallsyms);
	put_text32(&data[4], w->printk);
	put_text64(&data[5], w->cmdlines);
	for (i = 0; i < 6; i++) {
		sec_off[i] = ob_tell(o);
		put_section(w, o, meta[i].id, meta[i].desc, true, &data[i], zctx);
	}

	/* The flyrecord section: header, then each CPU's data at a page-aligned offset. */
	fly_off = ob_tell(o);
	ob_u16(o, OPT_BUFFER);
	ob_u16(o, w->comp != COMP_NONE ? SEC_FL_COMPRESS : 0);
	ob_u32(o, add_string(w, "buffer flyrecord "));
	size_at = ob_tell(o);
	ob_u64(o, 0);
	for (c = 0; c < w->ncpus && !o->err; c++) {
		struct spool *s = &w->spools[c];

		if (!s->npages)
			continue;
		ob_align(o, w->page_size);
		cpu[c].offset = ob_tell(o);
		if (w->comp == COMP_NONE)
			copy_spool(w, o, s->fd, s->npages * w->page_size);
		else
			copy_spool_compressed(w, o, zctx, s->fd, s->npages);
		cpu[c].size = ob_tell(o) - cpu[c].offset;
		ncpu_data++;
	}
	{
		uint64_t size = ob_tell(o) - size_at - 8;

		ob_patch(o, size_at, &size, 8);
	}

	/* One options section: sections, common options, BUFFER; DONE ends the chain. */
	for (i = 0; i < 6; i++)
		put_option(&opts, meta[i].id, &sec_off[i], 8);
	put_common_options(w, &opts);
	mb_u64(&buffer, fly_off);
	mb_str(&buffer, "");
	mb_str(&buffer, w->clock);
	mb_u32(&buffer, w->page_size);
	mb_u32(&buffer, ncpu_data);
	for (c = 0; c < w->ncpus; c++) {
		if (!cpu[c].size)
			continue;
		mb_u32(&buffer, c);
		mb_u64(&buffer, cpu[c].offset);
		mb_u64(&buffer, cpu[c].size);
	}
	if (buffer.err)
		opts.err = buffer.err;
	put_option(&opts, OPT_BUFFER, buffer.p, (uint32_t)buffer.len);
	mb_u16(&opts, OPT_DONE);
	mb_u32(&opts, 8);
	mb_u64(&opts, 0);
	opts_off = ob_tell(o);
	put_section(w, o, OPT_DONE, "options", false, &opts, zctx);
	ob_patch(o, opts_at, &opts_off, 8);

	/* The strings section names itself too: its description goes in before it is written. */
	{
		uint32_t sid = add_string(w, "strings");
		struct mbuf strings = w->strings;

		w->strings = (struct mbuf){ 0 };
		ob_u16(o, OPT_STRINGS);
		ob_u16(o, w->comp != COMP_NONE ? SEC_FL_COMPRESS : 0);
		ob_u32(o, sid);
		if (strings.err) {
			o->err = o->err ? o->err : strings.err;
		} else if (w->comp == COMP_NONE) {
			ob_u64(o, strings.len);
			ob_write(o, strings.p, strings.len);
		} else {
			size_t cap = comp_bound(w->comp, strings.len);
			uint8_t *z = malloc(cap);
			long zlen =
				z ? comp_block(w, zctx, strings.p, strings.len, z, cap) : -ENOMEM;

			if (zlen < 0) {
				o->err = o->err ? o->err : (int)zlen;
			} else {
				ob_u64(o, 8 + (uint64_t)zlen);
				ob_u32(o, (uint32_t)zlen);
				ob_u32(o, (uint32_t)strings.len);
				ob_write(o, z, (size_t)zlen);
			}
			free(z);
		}
		mb_free(&strings);
	}

	for (i = 0; i < 6; i++)
		mb_free(&data[i]);
	mb_free(&opts);
	mb_free(&buffer);
	ZSTD_freeCCtx(zctx);
	free(cpu);
	return o->err;
}

int vms_dat_writer_close(struct vms_dat_writer *w)
{
	struct obuf o = { 0 };
	uint32_t c;
	int ret;

	if (!w)
		return 0;
	for (c = 0; c < w->ncpus && !w->err; c++)
		set_err(w, spool_flush(w, &w->spools[c]));
	if (!w->err) {
		o.fd = w->out_fd;
		o.buf = malloc(OBUF_SIZE);
		if (!o.buf)
			set_err(w, -ENOMEM);
	}
	if (!w->err) {
		ret = w->version == 7 ? write_v7(w, &o) : write_v6(w, &o);
		ob_flush(&o);
		set_err(w, ret ? ret : o.err);
	}
	free(o.buf);
	if (!w->err && ftruncate(w->out_fd, (off_t)(o.pos)) < 0)
		set_err(w, -errno);
	if (close(w->out_fd) < 0)
		set_err(w, -errno); /* NFS and friends report write errors here */
	w->out_fd = -1;
	ret = w->err;
	if (ret < 0) {
		vms_err("writing %s failed: %s", w->path, vms_strerror(ret));
		unlink(w->path);
	}
	writer_free(w);
	return ret;
}

void vms_dat_writer_discard(struct vms_dat_writer *w)
{
	if (!w)
		return;
	if (w->out_fd >= 0) {
		close(w->out_fd);
		w->out_fd = -1;
	}
	unlink(w->path);
	writer_free(w);
}
