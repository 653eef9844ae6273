// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * trace-cmd .dat files, versions 6 and 7: everything before the ring-buffer data. The
 * initial format (magic, version, endianness, long size, page size), the header page and
 * event descriptions, the event formats (parsed with libtraceevent), saved command lines,
 * the options (trace clock, uname, instance buffers, guests, vmscope metadata) and, per
 * CPU, where its data lies and whether it is compressed.
 *
 * Version 6 lays these out one after the other; version 7 puts them in sections (which may
 * be compressed) found through chained options sections. Both are read through one
 * bounds-checked cursor, over the file or over a decompressed section in memory, so a
 * damaged file ends in an error that names the offset and what was being read.
 *
 * Formats: trace-cmd's Documentation/trace-cmd/trace-cmd.dat.v6.5.txt and .v7.5.txt.
 * Two details the v7 document does not say and trace-cmd 3.1 writes: a section header's
 * size is 8 bytes (id u16, flags u16, string id u32, size u64), and the BUFFER option holds
 * the page size (u32) between the clock name and the CPU count.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <traceevent/event-parse.h>

#include "dat-format.h"
#include "trace-local.h"

#define MAX_FORMAT (1U << 20) /* one event format file */
#define MAX_FORMATS 100000    /* event formats in a file */
#define MAX_SYSTEMS 10000
#define MAX_CMDLINES (64U << 20)
#define MAX_SECTION (256U << 20) /* a decompressed metadata section */
#define MAX_CPUS 8192
#define MAX_OPTIONS 100000

int vms_trace_fail(struct vms_trace *t, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err[0])
		return code;
	n = snprintf(t->err, sizeof(t->err), "%s: ", t->path ? t->path : "trace");
	va_start(ap, fmt);
	vsnprintf(t->err + n, sizeof(t->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

static void meta_split(struct vms_trace *t);

/* ---- a bounds-checked cursor over the file or a section in memory ---- */

struct cur {
	struct vms_trace *t;
	const uint8_t *mem; /* NULL: read the file */
	uint64_t len;	    /* bytes readable: the file or the section */
	uint64_t pos;	    /* file offset, or offset in mem */
	uint64_t base;	    /* file offset that mem[0] stands for (messages) */
	const char *where;  /* "section event formats", ... (messages) */
};

static int cur_read(struct cur *c, void *buf, uint64_t len, const char *what)
{
	if (len > c->len || c->pos > c->len - len)
		return vms_trace_fail(c->t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu%s%s: truncated while reading %s (%llu bytes)",
				      (unsigned long long)(c->base + c->pos),
				      c->where ? " in " : "", c->where ? c->where : "", what,
				      (unsigned long long)len);
	if (c->mem) {
		memcpy(buf, c->mem + c->pos, len);
	} else {
		uint64_t done = 0;

		while (done < len) {
			ssize_t n = pread(c->t->fd, (uint8_t *)buf + done, len - done,
					  (off_t)(c->pos + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return vms_trace_fail(c->t, n < 0 ? -errno : -VMS_E_TRACE_CORRUPT,
						      "offset %llu: cannot read %s: %s",
						      (unsigned long long)(c->pos + done), what,
						      n < 0 ? strerror(errno) : "end of file");
			done += (uint64_t)n;
		}
	}
	c->pos += len;
	return 0;
}

static int cur_skip(struct cur *c, uint64_t len, const char *what)
{
	if (len > c->len || c->pos > c->len - len)
		return vms_trace_fail(c->t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu: %s (%llu bytes) runs past the end",
				      (unsigned long long)(c->base + c->pos), what,
				      (unsigned long long)len);
	c->pos += len;
	return 0;
}

static int cur_u16(struct cur *c, uint16_t *v, const char *what)
{
	return cur_read(c, v, 2, what);
}

static int cur_u32(struct cur *c, uint32_t *v, const char *what)
{
	return cur_read(c, v, 4, what);
}

static int cur_u64(struct cur *c, uint64_t *v, const char *what)
{
	return cur_read(c, v, 8, what);
}

/* A NUL-terminated string of at most @size - 1 characters. */
static int cur_str(struct cur *c, char *buf, size_t size, const char *what)
{
	for (size_t i = 0; i < size; i++) {
		int ret = cur_read(c, &buf[i], 1, what);

		if (ret)
			return ret;
		if (!buf[i])
			return 0;
	}
	return vms_trace_fail(c->t, -VMS_E_TRACE_CORRUPT, "offset %llu: %s is not terminated",
			      (unsigned long long)(c->base + c->pos), what);
}

/* @len bytes into a new NUL-terminated buffer (caller frees), at most @max. */
static int cur_blob(struct cur *c, uint64_t len, uint64_t max, char **out, const char *what)
{
	char *b;
	int ret;

	*out = NULL;
	if (len > max)
		return vms_trace_fail(c->t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu: %s of %llu bytes is larger than %llu",
				      (unsigned long long)(c->base + c->pos), what,
				      (unsigned long long)len, (unsigned long long)max);
	b = malloc(len + 1);
	if (!b)
		return -ENOMEM;
	ret = cur_read(c, b, len, what);
	if (ret) {
		free(b);
		return ret;
	}
	b[len] = '\0';
	*out = b;
	return 0;
}

/* ---- v7 sections ---- */

struct section {
	uint8_t *data; /* decompressed, or read, section body (owned) */
	struct cur cur;
	uint16_t flags;
};

/* Read the section whose header is at @off (of id @id) into memory. */
static int section_load(struct vms_trace *t, uint64_t off, uint16_t want_id, const char *name,
			struct section *s)
{
	struct cur c = { .t = t, .len = t->info.file_size, .pos = off };
	uint16_t id, flags;
	uint32_t strid, csize, usize;
	uint64_t size;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = cur_u16(&c, &id, "section id")) ||
	    (ret = cur_u16(&c, &flags, "section flags")) ||
	    (ret = cur_u32(&c, &strid, "section string id")) ||
	    (ret = cur_u64(&c, &size, "section size")))
		return ret;
	if (id != want_id)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
				      "offset %llu: expected the %s section (id %u), found id %u",
				      (unsigned long long)off, name, want_id, id);
	s->flags = flags;
	if (flags & 1) {
		uint8_t *in;

		if ((ret = cur_u32(&c, &csize, "compressed size")) ||
		    (ret = cur_u32(&c, &usize, "uncompressed size")))
			return ret;
		if (usize > MAX_SECTION || (uint64_t)csize + 8 > size)
			return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
					      "offset %llu: %s section sizes are inconsistent",
					      (unsigned long long)off, name);
		if ((ret = cur_blob(&c, csize, MAX_SECTION, (char **)&in, name)))
			return ret;
		s->data = malloc(usize ? usize : 1);
		if (!s->data) {
			free(in);
			return -ENOMEM;
		}
		ret = vms_decompress(t, &t->zstd_dctx, in, csize, s->data, usize);
		free(in);
		if (ret) {
			free(s->data);
			s->data = NULL;
			return vms_trace_fail(t, ret,
					      "offset %llu: cannot decompress the %s section",
					      (unsigned long long)off, name);
		}
		size = usize;
	} else {
		if (size > MAX_SECTION)
			return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
					      "offset %llu: %s section too large",
					      (unsigned long long)off, name);
		if ((ret = cur_blob(&c, size, MAX_SECTION, (char **)&s->data, name)))
			return ret;
	}
	s->cur = (struct cur){ .t = t, .mem = s->data, .len = size, .base = off, .where = name };
	return 0;
}

/* ---- the pieces common to both versions ---- */

static int parse_header_info(struct vms_trace *t, struct cur *c)
{
	char label[16], *text;
	uint64_t size;
	int ret;

	if ((ret = cur_read(c, label, 12, "\"header_page\"")))
		return ret;
	if (memcmp(label, "header_page", 12))
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "offset %llu: no \"header_page\"",
				      (unsigned long long)(c->base + c->pos - 12));
	if ((ret = cur_u64(c, &size, "header_page size")) ||
	    (ret = cur_blob(c, size, MAX_FORMAT, &text, "header_page")))
		return ret;
	ret = tep_parse_header_page(t->tep, text, size, (int)t->info.long_size);
	free(text);
	if (ret)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "the header_page does not parse");
	if ((ret = cur_read(c, label, 13, "\"header_event\"")))
		return ret;
	if (memcmp(label, "header_event", 13))
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "offset %llu: no \"header_event\"",
				      (unsigned long long)(c->base + c->pos - 13));
	if ((ret = cur_u64(c, &size, "header_event size")))
		return ret;
	return cur_skip(c, size, "header_event");
}

/*
 * Parse one format file. vmscope reads fields by offset and names what it prints itself,
 * so libtraceevent gets the name, the id and the field lines only, with an empty print
 * format: its print-format parser is the part of libtraceevent (1.7) that crashes and
 * leaks on damaged input (found by fuzz/fuzz-dat-reader.c), and a trace file is input.
 * A format that still does not parse only costs that event.
 */
/*
 * Whether every field line of a format is whole: "field:DECL;" with printable characters and
 * brackets that close, then "offset:N;" and "size:N;". libtraceevent 1.7 reads past the end
 * of a cut one (found by fuzz/fuzz-dat-reader.c).
 */
static bool fields_whole(const char *text)
{
	for (const char *l = strstr(text, "field:"); l; l = strstr(l + 1, "field:")) {
		const char *end = strchr(l, '\n'), *semi = strchr(l, ';'), *o, *z;
		int depth = 0;

		if (!end)
			end = l + strlen(l);
		if (!semi || semi > end)
			return false;
		for (const char *p = l + 6; p < semi; p++) {
			if ((unsigned char)*p < ' ' && *p != '\t')
				return false;
			depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
			if (depth < 0 || depth > 1)
				return false;
		}
		o = strstr(semi, "offset:");
		z = o ? strstr(o, "size:") : NULL;
		if (depth || !o || !z || z > end || !strchr(z, ';') || strchr(z, ';') > end)
			return false;
	}
	return true;
}

void vms_trace_parse_format(struct vms_trace *t, char *text, uint64_t size, const char *system,
			    uint32_t i)
{
	char *pf;
	static const char empty[] = "\nprint fmt: \"\"\n";

	size = strnlen(text, size); /* a NUL ends it */
	text[size] = '\0';
	if (!fields_whole(text)) {
		vms_dbg("%s: event format %u of %s has a damaged field line", t->path, i, system);
		return;
	}
	pf = strstr(text, "\nprint fmt:");

	if (pf) {
		size = (uint64_t)(pf - text);
		if (size + sizeof(empty) <= (uint64_t)strlen(text) + 1) {
			memcpy(pf, empty, sizeof(empty));
			size += sizeof(empty) - 1;
		} else {
			*pf = '\0';
		}
	}
	if (tep_parse_event(t->tep, text, size, system))
		vms_dbg("%s: event format %u of %s does not parse", t->path, i, system);
}

/* @count format files of @system (or, for ftrace events, read the count first). */
static int parse_formats(struct vms_trace *t, struct cur *c, const char *system)
{
	uint32_t count;
	int ret;

	if ((ret = cur_u32(c, &count, "number of event formats")))
		return ret;
	if (count > MAX_FORMATS)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "offset %llu: %u event formats",
				      (unsigned long long)(c->base + c->pos - 4), count);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t size;
		char *text;

		if ((ret = cur_u64(c, &size, "event format size")) ||
		    (ret = cur_blob(c, size, MAX_FORMAT, &text, "event format")))
			return ret;
		vms_trace_parse_format(t, text, size, system, i);
		free(text);
	}
	return 0;
}

static int parse_ftrace_formats(struct vms_trace *t, struct cur *c)
{
	return parse_formats(t, c, "ftrace");
}

static int parse_event_formats(struct vms_trace *t, struct cur *c)
{
	uint32_t nsys;
	int ret;

	if ((ret = cur_u32(c, &nsys, "number of event systems")))
		return ret;
	if (nsys > MAX_SYSTEMS)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "%u event systems", nsys);
	for (uint32_t i = 0; i < nsys; i++) {
		char sys[256];

		if ((ret = cur_str(c, sys, sizeof(sys), "event system name")) ||
		    (ret = parse_formats(t, c, sys)))
			return ret;
	}
	return 0;
}

/*
 * "PID COMM" lines (COMM may hold spaces: "CPU 0/KVM"). Parsed here rather than by
 * tep_parse_saved_cmdlines(), which loses memory on a damaged line (libtraceevent 1.7.1,
 * found by fuzz/fuzz-dat-reader.c). A line that is not one is skipped.
 */
static void register_cmdlines(struct vms_trace *t, char *text)
{
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n'), *end, *comm;
		long pid;

		if (nl)
			*nl = '\0';
		pid = strtol(line, &end, 10);
		comm = end + 1;
		if (end != line && *end == ' ' && pid > 0 && pid <= INT32_MAX && *comm &&
		    strlen(comm) < 64)
			tep_register_comm(t->tep, comm, (int)pid);
		line = nl ? nl + 1 : NULL;
	}
}

static int parse_cmdlines(struct vms_trace *t, struct cur *c)
{
	uint64_t size;
	char *text;
	int ret;

	if ((ret = cur_u64(c, &size, "saved cmdlines size")) ||
	    (ret = cur_blob(c, size, MAX_CMDLINES, &text, "saved cmdlines")))
		return ret;
	register_cmdlines(t, text);
	free(text);
	return 0;
}

/* The selected clock of a trace_clock file: "local [global] counter" → "global". */
static void parse_clock(char *dst, size_t size, const char *text)
{
	const char *b = strchr(text, '['), *e = b ? strchr(b, ']') : NULL;

	if (b && e && e - b - 1 < (long)size)
		snprintf(dst, size, "%.*s", (int)(e - b - 1), b + 1);
	else if (!strchr(text, ' ') && strlen(text) < size)
		snprintf(dst, size, "%s", text);
}

/* ---- buffers: which CPU data to read ---- */

struct buffer_desc {
	char name[128];
	char clock[64];
	uint64_t offset; /* v6: where its "flyrecord" is; v7: its section */
	unsigned int ncpus;
	struct {
		uint32_t cpu;
		uint64_t off, size;
	} * cpus;
	bool has_cpus; /* v7 (the BUFFER option lists them) */
};

struct parse_state {
	struct buffer_desc *bufs;
	unsigned int nbufs;
	uint64_t sections[32]; /* v7: section offsets by option id (16..21) */
};

static int add_buffer(struct parse_state *ps, struct buffer_desc **out)
{
	struct buffer_desc *nb = realloc(ps->bufs, (ps->nbufs + 1) * sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	ps->bufs = nb;
	*out = &nb[ps->nbufs++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int read_cpu_list(struct vms_trace *t, struct cur *c, struct buffer_desc *b, uint32_t ncpus,
			 bool with_ids)
{
	int ret;

	if (ncpus > MAX_CPUS)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "buffer \"%s\" has %u CPUs", b->name,
				      ncpus);
	b->cpus = calloc(ncpus ? ncpus : 1, sizeof(*b->cpus));
	if (!b->cpus)
		return -ENOMEM;
	b->ncpus = ncpus;
	for (uint32_t i = 0; i < ncpus; i++) {
		b->cpus[i].cpu = i;
		if ((with_ids && (ret = cur_u32(c, &b->cpus[i].cpu, "CPU id"))) ||
		    (ret = cur_u64(c, &b->cpus[i].off, "CPU data offset")) ||
		    (ret = cur_u64(c, &b->cpus[i].size, "CPU data size")))
			return ret;
	}
	b->has_cpus = true;
	return 0;
}

/* v7 BUFFER option: offset, name, clock, [page size,] CPU count, (id, offset, size)... */
static int parse_buffer_v7(struct vms_trace *t, struct cur *c, uint64_t end, struct parse_state *ps)
{
	struct buffer_desc *b;
	uint32_t a, n;
	uint64_t left;
	int ret;

	if ((ret = add_buffer(ps, &b)) || (ret = cur_u64(c, &b->offset, "buffer offset")) ||
	    (ret = cur_str(c, b->name, sizeof(b->name), "buffer name")) ||
	    (ret = cur_str(c, b->clock, sizeof(b->clock), "buffer clock")) ||
	    (ret = cur_u32(c, &a, "buffer page size or CPU count")))
		return ret;
	left = end - c->pos;
	/* trace-cmd 3.1 writes the page size first; earlier v7 files go straight on with the
	 * CPU count. The remaining length tells which. */
	if (left == (uint64_t)a * 20) {
		n = a;
	} else {
		if ((ret = cur_u32(c, &n, "buffer CPU count")))
			return ret;
		if (a != t->info.page_size)
			return vms_trace_fail(t, -VMS_E_TRACE_UNSUPPORTED,
					      "buffer \"%s\" has %u-byte pages, the file %u",
					      b->name, a, t->info.page_size);
	}
	return read_cpu_list(t, c, b, n, true);
}

/* trace-cmd's GUEST option: name, trace id, CPU count, (vCPU id, host thread id)... */
static int parse_guest(struct vms_trace *t, struct cur *c)
{
	struct vms_trace_guest *ng, *g;
	char name[256];
	uint32_t n, cpu, pid;
	int32_t *tids;
	int ret;

	if ((ret = cur_str(c, name, sizeof(name), "guest name")))
		return ret;
	ng = realloc(t->guests, (t->nguests + 1) * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	t->guests = ng;
	g = &ng[t->nguests];
	memset(g, 0, sizeof(*g));
	if ((ret = cur_u64(c, &g->trace_id, "guest trace id")) ||
	    (ret = cur_u32(c, &n, "guest vCPU count")))
		return ret;
	if (n > 4096)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "guest \"%s\" with %u vCPUs", name,
				      n);
	g->name = strdup(name);
	tids = malloc((n ? n : 1) * sizeof(*tids));
	if (!g->name || !tids) {
		free((char *)g->name);
		free(tids);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		tids[i] = -1;
	g->tids = tids;
	t->nguests++;
	for (uint32_t i = 0; i < n; i++) {
		if ((ret = cur_u32(c, &cpu, "guest vCPU id")) ||
		    (ret = cur_u32(c, &pid, "guest vCPU thread")))
			return ret;
		if (cpu >= g->nvcpus)
			g->nvcpus = cpu + 1 <= n ? cpu + 1 : g->nvcpus;
		if (cpu < n)
			tids[cpu] = (int32_t)pid;
	}
	g->nvcpus = n;
	return 0;
}

static int parse_options(struct vms_trace *t, struct cur *c, struct parse_state *ps,
			 uint64_t *next_options)
{
	*next_options = 0;
	for (unsigned int k = 0; k < MAX_OPTIONS; k++) {
		uint16_t id;
		uint32_t size;
		uint64_t end;
		char *text = NULL;
		int ret;

		if (c->len - c->pos == 0 && t->info.version >= 7)
			return 0;
		if ((ret = cur_u16(c, &id, "option id")))
			return ret;
		if (id == OPT_DONE && t->info.version < 7)
			return 0;
		if ((ret = cur_u32(c, &size, "option size")))
			return ret;
		if (size > c->len || c->pos > c->len - size)
			return vms_trace_fail(
				t, -VMS_E_TRACE_CORRUPT,
				"offset %llu: option %u of %u bytes runs past the end",
				(unsigned long long)(c->base + c->pos), id, size);
		end = c->pos + size;
		switch (id) {
		case OPT_DONE:
			if ((ret = cur_u64(c, next_options, "next options offset")))
				return ret;
			return 0;
		case OPT_BUFFER:
			if (t->info.version >= 7) {
				ret = parse_buffer_v7(t, c, end, ps);
			} else {
				struct buffer_desc *b;

				if (!(ret = add_buffer(ps, &b)) &&
				    !(ret = cur_u64(c, &b->offset, "buffer offset")))
					ret = cur_str(c, b->name, sizeof(b->name), "buffer name");
			}
			if (ret)
				return ret;
			break;
		case OPT_GUEST:
			if ((ret = parse_guest(t, c)))
				return ret;
			break;
		case OPT_TRACECLOCK:
		case OPT_UNAME:
		case OPT_VMSCOPE_META:
			if ((ret = cur_blob(c, size, 1 << 20, &text, "option text")))
				return ret;
			if (id == OPT_TRACECLOCK)
				parse_clock(t->clock, sizeof(t->clock), text);
			else if (id == OPT_UNAME)
				snprintf(t->uname, sizeof(t->uname), "%s", text);
			if (id == OPT_VMSCOPE_META && !t->meta) {
				t->meta = text;
				text = NULL;
			}
			free(text);
			break;
		case OPT_HEADER_INFO:
		case OPT_FTRACE_EVENTS:
		case OPT_EVENT_FORMATS:
		case OPT_KALLSYMS:
		case OPT_PRINTK:
		case OPT_CMDLINES:
			if (size != 8 || (ret = cur_u64(c, &ps->sections[id], "section offset")))
				return ret ? ret
					   : vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
							    "option %u has %u bytes, not 8", id,
							    size);
			break;
		default:
			break; /* the format lets a reader skip options it does not know */
		}
		c->pos = end;
	}
	return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "more than %d options", MAX_OPTIONS);
}

/* v6: "flyrecord\0" then (offset, size) per CPU, then the clock text. */
static int parse_flyrecord_v6(struct vms_trace *t, struct cur *c, struct buffer_desc *b,
			      uint32_t ncpus)
{
	char label[10];
	uint64_t size;
	int ret;

	if ((ret = cur_read(c, label, 10, "\"flyrecord\"")))
		return ret;
	if (memcmp(label, "flyrecord", 10))
		return vms_trace_fail(t,
				      memcmp(label, "latency  ", 10) ? -VMS_E_TRACE_CORRUPT
								     : -VMS_E_TRACE_UNSUPPORTED,
				      "offset %llu: expected \"flyrecord\", found \"%.9s\"",
				      (unsigned long long)(c->pos - 10), label);
	if ((ret = read_cpu_list(t, c, b, ncpus, false)))
		return ret;
	/* The clock text follows in files of trace-cmd >= 2.9; older files end here. */
	if (c->len - c->pos >= 8) {
		char *text;

		if ((ret = cur_u64(c, &size, "trace clock size")))
			return ret;
		if (size < 4096 && size <= c->len - c->pos &&
		    !cur_blob(c, size, 4096, &text, "trace clock")) {
			parse_clock(b->clock, sizeof(b->clock), text);
			free(text);
		}
	}
	return 0;
}

static int parse_v6(struct vms_trace *t, struct cur *c, struct parse_state *ps)
{
	uint32_t size, ncpus;
	char label[10];
	struct buffer_desc *top;
	int ret;

	if ((ret = parse_header_info(t, c)) || (ret = parse_ftrace_formats(t, c)) ||
	    (ret = parse_event_formats(t, c)))
		return ret;
	if ((ret = cur_u32(c, &size, "kallsyms size")) || (ret = cur_skip(c, size, "kallsyms")) ||
	    (ret = cur_u32(c, &size, "printk formats size")) ||
	    (ret = cur_skip(c, size, "printk formats")) || (ret = parse_cmdlines(t, c)) ||
	    (ret = cur_u32(c, &ncpus, "CPU count")))
		return ret;
	if (ncpus > MAX_CPUS)
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "%u CPUs", ncpus);
	if ((ret = cur_read(c, label, 10, "\"options\" or \"flyrecord\"")))
		return ret;
	if (!memcmp(label, "options  ", 10)) {
		uint64_t next;

		if ((ret = parse_options(t, c, ps, &next)))
			return ret;
	} else {
		c->pos -= 10;
	}
	if ((ret = add_buffer(ps, &top)))
		return ret;
	/* The top buffer first: move it to index 0 keeping the option buffers after it. */
	{
		struct buffer_desc tmp = ps->bufs[ps->nbufs - 1];

		memmove(&ps->bufs[1], &ps->bufs[0], (ps->nbufs - 1) * sizeof(tmp));
		ps->bufs[0] = tmp;
		top = &ps->bufs[0];
	}
	if ((ret = parse_flyrecord_v6(t, c, top, ncpus)))
		return ret;
	for (unsigned int i = 1; i < ps->nbufs; i++) {
		struct cur bc = *c;

		bc.pos = ps->bufs[i].offset;
		if ((ret = parse_flyrecord_v6(t, &bc, &ps->bufs[i], ncpus)))
			return ret;
	}
	return 0;
}

/* The v7 sections that hold what v6 keeps in its header, in the order they are parsed. */
static const struct {
	uint16_t id;
	const char *name;
	int (*parse)(struct vms_trace *t, struct cur *c);
} v7_meta[] = {
	{ OPT_HEADER_INFO, "header info", parse_header_info },
	{ OPT_FTRACE_EVENTS, "ftrace formats", parse_ftrace_formats },
	{ OPT_EVENT_FORMATS, "event formats", parse_event_formats },
	{ OPT_CMDLINES, "cmdlines", parse_cmdlines },
};

static int parse_v7(struct vms_trace *t, struct cur *c, struct parse_state *ps)
{
	char comp[32], compver[32];
	uint64_t options_off;
	struct section s;
	int ret;

	if ((ret = cur_str(c, comp, sizeof(comp), "compression name")) ||
	    (ret = cur_str(c, compver, sizeof(compver), "compression version")) ||
	    (ret = cur_u64(c, &options_off, "options offset")))
		return ret;
	if (!strcmp(comp, "none") || !comp[0]) {
		t->comp = VMS_COMP_NONE;
	} else if (!strcmp(comp, "zstd")) {
		t->comp = VMS_COMP_ZSTD;
	} else if (!strcmp(comp, "zlib")) {
		t->comp = VMS_COMP_ZLIB;
	} else {
		return vms_trace_fail(t, -VMS_E_TRACE_UNSUPPORTED,
				      "compression \"%s\" is not supported (zstd, zlib, none)",
				      comp);
	}
	snprintf(t->compression, sizeof(t->compression), "%s", comp[0] ? comp : "none");

	/* The chain of options sections. */
	for (unsigned int k = 0; options_off; k++) {
		uint64_t next = 0;

		if (k > 1000)
			return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "options sections loop");
		if ((ret = section_load(t, options_off, 0, "options", &s)))
			return ret;
		ret = parse_options(t, &s.cur, ps, &next);
		free(s.data);
		if (ret)
			return ret;
		if (next && next <= options_off)
			return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
					      "options section at %llu points back to %llu",
					      (unsigned long long)options_off,
					      (unsigned long long)next);
		options_off = next;
	}
	if (!ps->sections[OPT_HEADER_INFO] || !ps->sections[OPT_EVENT_FORMATS])
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
				      "no header info or event formats section");
	for (size_t i = 0; i < VMS_ARRAY_SIZE(v7_meta); i++) {
		if (!ps->sections[v7_meta[i].id])
			continue; /* optional: the two that are not were checked above */
		if ((ret = section_load(t, ps->sections[v7_meta[i].id], v7_meta[i].id,
					v7_meta[i].name, &s)))
			return ret;
		ret = v7_meta[i].parse(t, &s.cur);
		free(s.data);
		if (ret)
			return ret;
	}
	return 0;
}

/* Choose the buffer to read and set up the CPU streams from it. */
static int choose_buffer(struct vms_trace *t, const struct vms_trace_opts *opts,
			 struct parse_state *ps)
{
	struct buffer_desc *b = NULL;

	for (unsigned int i = 0; i < ps->nbufs && !b; i++) {
		uint64_t bytes = 0;

		for (unsigned int k = 0; k < ps->bufs[i].ncpus; k++)
			bytes += ps->bufs[i].cpus[k].size;
		if (opts && opts->buffer ? !strcmp(opts->buffer, ps->bufs[i].name) : bytes > 0)
			b = &ps->bufs[i];
	}
	if (!b && !(opts && opts->buffer) && ps->nbufs)
		b = &ps->bufs[0]; /* every buffer is empty: read the first, it yields nothing */
	if (!b)
		return vms_trace_fail(t, -ENOENT, "no buffer \"%s\" in this trace",
				      opts && opts->buffer ? opts->buffer : "");
	snprintf(t->buffer, sizeof(t->buffer), "%s", b->name);
	if (b->clock[0])
		snprintf(t->clock, sizeof(t->clock), "%s", b->clock);
	t->cpus = calloc(b->ncpus ? b->ncpus : 1, sizeof(*t->cpus));
	if (!t->cpus)
		return -ENOMEM;
	for (unsigned int k = 0; k < b->ncpus; k++) {
		if (!b->cpus[k].size)
			continue;
		if (b->cpus[k].off > t->info.file_size ||
		    b->cpus[k].size > t->info.file_size - b->cpus[k].off) {
			/* A truncated file (a recording cut short): read what is there, then
			 * end the stream with this error. */
			uint64_t have = b->cpus[k].off < t->info.file_size
						? t->info.file_size - b->cpus[k].off
						: 0;

			vms_trace_fail(t, -VMS_E_TRACE_CORRUPT,
				       "offset %llu: the file ends there, %llu bytes into CPU %u's "
				       "%llu bytes of data (a truncated trace)",
				       (unsigned long long)t->info.file_size,
				       (unsigned long long)have, b->cpus[k].cpu,
				       (unsigned long long)b->cpus[k].size);
			if (!t->deferred_err)
				t->deferred_err = -VMS_E_TRACE_CORRUPT;
			if (t->comp != VMS_COMP_NONE && t->info.version >= 7)
				have = 0; /* compressed chunks: their count and sizes are unknown */
			b->cpus[k].size = have;
			if (!have)
				continue;
		}
		t->cpus[t->ncpus].cpu = (int)b->cpus[k].cpu;
		t->cpus[t->ncpus].file_off = b->cpus[k].off;
		t->cpus[t->ncpus].file_size = b->cpus[k].size;
		t->ncpus++;
	}
	/* v7: the data is compressed when the buffer's section is. */
	if (t->info.version >= 7 && t->comp != VMS_COMP_NONE) {
		struct cur c = { .t = t, .len = t->info.file_size, .pos = b->offset };
		uint16_t id, flags;
		int ret;

		if ((ret = cur_u16(&c, &id, "buffer section id")) ||
		    (ret = cur_u16(&c, &flags, "buffer section flags")))
			return ret;
		if (!(flags & 1))
			t->comp = VMS_COMP_NONE;
	} else if (t->info.version < 7) {
		t->comp = VMS_COMP_NONE;
	}
	return 0;
}

int vms_dat_parse(struct vms_trace *t, const struct vms_trace_opts *opts)
{
	struct cur c = { .t = t, .len = t->info.file_size };
	struct parse_state ps = { 0 };
	uint8_t endian, lsize;
	char magic[10], version[16];
	uint32_t page_size;
	int ret;

	if ((ret = cur_read(&c, magic, 10, "the magic")))
		return ret == -VMS_E_TRACE_CORRUPT ? vms_trace_fail(t, -VMS_E_TRACE_FORMAT,
								    "too short for a trace file")
						   : ret;
	if (memcmp(magic, DAT_MAGIC, 10)) {
		return vms_trace_fail(t, -VMS_E_TRACE_FORMAT,
				      "not a trace-cmd trace file (wrong magic)");
	}
	if ((ret = cur_str(&c, version, sizeof(version), "the version")) ||
	    (ret = cur_read(&c, &endian, 1, "the endianness")) ||
	    (ret = cur_read(&c, &lsize, 1, "the long size")) ||
	    (ret = cur_u32(&c, &page_size, "the page size")))
		return ret;
	t->info.version = atoi(version);
	if (t->info.version != 6 && t->info.version != 7)
		return vms_trace_fail(t, -VMS_E_TRACE_FORMAT,
				      "trace file version \"%s\" (vmscope reads 6 and 7)", version);
	if (endian != 0)
		return vms_trace_fail(t, -VMS_E_TRACE_UNSUPPORTED,
				      "big-endian trace files are not supported");
	if ((lsize != 4 && lsize != 8) || page_size < 64 || page_size > (1U << 24) ||
	    (page_size & (page_size - 1)))
		return vms_trace_fail(t, -VMS_E_TRACE_CORRUPT, "long size %u / page size %u", lsize,
				      page_size);
	t->info.long_size = lsize;
	t->info.page_size = page_size;
	snprintf(t->compression, sizeof(t->compression), "none");
	tep_set_file_bigendian(t->tep, TEP_LITTLE_ENDIAN);
	tep_set_local_bigendian(t->tep, TEP_LITTLE_ENDIAN);
	tep_set_long_size(t->tep, lsize);
	tep_set_page_size(t->tep, (int)page_size);

	ret = t->info.version == 6 ? parse_v6(t, &c, &ps) : parse_v7(t, &c, &ps);
	if (!ret)
		ret = choose_buffer(t, opts, &ps);
	for (unsigned int i = 0; i < ps.nbufs; i++)
		free(ps.bufs[i].cpus);
	free(ps.bufs);
	return ret;
}

/* ---- the public part that is not about records ---- */

__thread char vms_trace_open_errbuf[512];
#define open_error vms_trace_open_errbuf

const char *vms_trace_open_error(void)
{
	return open_error;
}

int vms_trace_open(const char *path, const struct vms_trace_opts *opts, struct vms_trace **out)
{
	struct vms_trace *t;
	struct stat st;
	int ret;

	*out = NULL;
	open_error[0] = '\0';
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	pthread_cond_init(&t->walk_cond, NULL);
	t->path = strdup(path);
	t->tep = tep_alloc();
	t->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!t->path || !t->tep) {
		ret = -ENOMEM;
		goto fail;
	}
	if (t->fd < 0) {
		ret = vms_trace_fail(t, -errno, "%s", strerror(errno));
		goto fail;
	}
	if (fstat(t->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = vms_trace_fail(t, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
				     "not a regular file");
		goto fail;
	}
	t->info.file_size = (uint64_t)st.st_size;
	t->window_pages =
		opts && opts->sz >= sizeof(*opts) && opts->window_pages ? opts->window_pages : 256;
	if (opts && opts->sz >= offsetof(struct vms_trace_opts, readahead) + sizeof(int))
		t->readahead = opts->readahead;
	ret = vms_dat_parse(t, opts);
	if (!ret)
		ret = vms_dat_stream_init(t);
	if (ret)
		goto fail;
	t->info.ncpus = t->ncpus;
	t->info.compression = t->compression;
	t->info.buffer = t->buffer;
	t->info.clock = t->clock[0] ? t->clock : "local";
	t->info.uname = t->uname;
	meta_split(t);
	*out = t;
	return 0;
fail:
	snprintf(open_error, sizeof(open_error), "%s", t->err[0] ? t->err : vms_strerror(ret));
	vms_trace_close(t);
	return ret;
}

void vms_trace_close(struct vms_trace *t)
{
	if (!t)
		return;
	vms_readahead_free(t);
	if (t->live)
		vms_live_free(t);
	vms_dat_stream_free(t);
	if (t->fd >= 0)
		close(t->fd);
	if (t->tep)
		tep_free(t->tep);
	free(t->meta);
	free(t->select);
	free(t->direct);
	for (size_t i = 0; i < t->nguests; i++) {
		free((char *)t->guests[i].name);
		free((void *)t->guests[i].tids);
	}
	free(t->guests);
	for (size_t i = 0; i < t->nmeta; i++)
		free(t->meta_vals[i]);
	free(t->meta_vals);
	free(t->path);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	pthread_cond_destroy(&t->walk_cond);
	free(t);
}

const struct vms_trace_info *vms_trace_info(const struct vms_trace *t)
{
	return &t->info;
}

int vms_trace_event_id(const struct vms_trace *t, const char *system, const char *name)
{
	struct tep_event *ev = tep_find_event_by_name(t->tep, system, name);

	return ev ? ev->id : -ENOENT;
}

int vms_trace_field(const struct vms_trace *t, int id, const char *field, struct vms_field *f)
{
	struct tep_event *ev = tep_find_event(t->tep, id);
	struct tep_format_field *ff = ev ? tep_find_any_field(ev, field) : NULL;

	memset(f, 0, sizeof(*f));
	if (!ff)
		return -ENOENT;
	f->offset = (uint32_t)ff->offset;
	f->size = (uint32_t)ff->size;
	f->is_signed = ff->flags & TEP_FIELD_IS_SIGNED;
	f->valid = true;
	return 0;
}

const char *vms_trace_error(const struct vms_trace *t)
{
	return t->err;
}

const char *vms_trace_comm(const struct vms_trace *t, int pid)
{
	const char *c = tep_data_comm_from_pid(t->tep, pid);

	return c && strcmp(c, "<...>") ? c : NULL;
}

/* Split the metadata text once into "key\0value" lines. */
static void meta_split(struct vms_trace *t)
{
	for (const char *p = t->meta; p && *p;) {
		const char *nl = strchr(p, '\n'), *eq;
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char **nv, *line;

		eq = memchr(p, '=', len);
		if (eq && (nv = realloc(t->meta_vals, (t->nmeta + 1) * sizeof(*nv)))) {
			t->meta_vals = nv;
			line = strndup(p, len);
			if (line) {
				line[eq - p] = '\0';
				t->meta_vals[t->nmeta++] = line;
			}
		}
		p += len + (nl ? 1 : 0);
	}
}

const char *vms_trace_meta_next(const struct vms_trace *t, const char *key, const char *prev)
{
	bool after = prev == NULL;

	for (size_t i = 0; i < t->nmeta; i++) {
		const char *val = t->meta_vals[i] + strlen(t->meta_vals[i]) + 1;

		if (strcmp(t->meta_vals[i], key))
			continue;
		if (after)
			return val;
		if (val == prev)
			after = true;
	}
	return NULL;
}

const char *vms_trace_meta(const struct vms_trace *t, const char *key)
{
	return vms_trace_meta_next(t, key, NULL);
}

const struct vms_trace_guest *vms_trace_guests(const struct vms_trace *t, size_t *n)
{
	*n = t->nguests;
	return t->guests;
}

uint64_t vms_trace_events_read(const struct vms_trace *t)
{
	return vms_trace_counts(t)->events;
}

int vms_trace_select(struct vms_trace *t, const int *ids, size_t n)
{
	uint64_t *sel = NULL;

	if (t->started)
		return -EBUSY;
	if (ids) {
		sel = calloc(65536 / 64, sizeof(*sel));
		if (!sel)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			if (ids[i] < 0 || ids[i] > 65535) {
				free(sel);
				return -EINVAL;
			}
			sel[ids[i] >> 6] |= 1ULL << (ids[i] & 63);
		}
	}
	free(t->select);
	t->select = sel;
	t->cnt.skip_first = UINT64_MAX;
	t->cnt.skip_last = 0;
	return 0;
}

bool vms_trace_span(const struct vms_trace *t, uint64_t *first, uint64_t *last)
{
	const struct vms_trace_counts *c = vms_trace_counts(t);
	uint64_t f = UINT64_MAX, l = 0;

	if (c->events_out) {
		f = c->first_out;
		l = c->last_out;
	}
	if (t->select && c->skip_first < f)
		f = c->skip_first;
	if (t->select && c->skip_last > l)
		l = c->skip_last;
	*first = f == UINT64_MAX ? 0 : f;
	*last = l;
	return c->events != 0;
}

uint64_t vms_trace_lost(const struct vms_trace *t)
{
	return vms_trace_counts(t)->lost;
}

uint64_t vms_trace_lost_windows(const struct vms_trace *t)
{
	return vms_trace_counts(t)->lost_windows;
}

struct tep_handle *vms_trace_tep(const struct vms_trace *t)
{
	return t->tep;
}
