// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dat2perf: convert a trace-cmd .dat file into a perf.data file that `perf script` and
 * `perf kvm stat report` read, so that vmscope's exit analysis can be checked against
 * perf's own on the very same events (perf cannot record kvm_exit on a KVM-PVM host, and
 * synthetic traces exist only as .dat files).
 *
 * The records come from libvmscope's streaming reader in time order and are written as
 * they come: one PERF_RECORD_SAMPLE per tracepoint record (its raw bytes as the sample's
 * RAW data, as the kernel gives them to perf), a PERF_RECORD_COMM before the first sample
 * of a thread that the file's saved cmdlines name, a PERF_RECORD_LOST per lost-events
 * window, and a PERF_RECORD_FINISHED_ROUND every ROUND_RECORDS records so that perf's
 * reordering queue stays short. Memory is bounded by the number of threads and event
 * types, not by the length of the trace. A .dat names threads, not their processes: the
 * samples' pid is the tid. A LOST record carries the time of its CPU's last record before
 * the gap (where the reader puts it in the stream), and the count of lost events (0 when
 * the .dat does not say).
 *
 * File layout (tools/perf/Documentation/perf.data-file-format.txt):
 *
 *   header (PERFILE2, 104 bytes, written last)
 *   data: COMM / SAMPLE / LOST / FINISHED_ROUND records
 *   feature section index, then the features: TRACING_DATA, HOSTNAME, OSRELEASE, VERSION,
 *     ARCH, NRCPUS, CPUID, CMDLINE, EVENT_DESC, SAMPLE_TIME
 *   attr ids, then the attrs: one tracepoint attr per event type that has records
 *
 * perf reads the features from data.offset + data.size on, and the attrs wherever the
 * header says, so the attrs can follow the features: the set of event types used is only
 * known once the stream has been read, and a second pass is avoided.
 *
 * The attrs are what `perf kvm stat record` asks the kernel for (perf record -R -c 1 with
 * several tracepoints): sample_type IP|TID|TIME|ID|CPU|PERIOD|RAW, sample_period 1,
 * sample_id_all. The tracing data feature is a trace-cmd v6 style header (version "0.6")
 * with the text of header_page, header_event and the format file of each event used, taken
 * from a formats directory (DIR/header_page, DIR/header_event, DIR/<system>/<event>/format)
 * and checked against the .dat's own parsed formats: same fields at the same offsets; an ID
 * line that differs is rewritten to the .dat's id. perf kvm stat picks the exit-reason
 * table from the CPUID feature ("Intel" or "AMD" in it), so the CPU vendor is an option,
 * taken by default from the .dat's vmscope metadata or from kvm_exit's isa field.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <traceevent/event-parse.h>

#include "tools-util.h"
#include "vmscope/trace.h"

#ifndef DAT2PERF_FORMATS_DIR
#define DAT2PERF_FORMATS_DIR "tests/data/formats"
#endif

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* perf's own record types and header features (tools/perf/util/event.h, header.h). */
#define PERF_RECORD_FINISHED_ROUND 68
enum feat {
	FEAT_TRACING_DATA = 1,
	FEAT_HOSTNAME = 3,
	FEAT_OSRELEASE = 4,
	FEAT_VERSION = 5,
	FEAT_ARCH = 6,
	FEAT_NRCPUS = 7,
	FEAT_CPUID = 9,
	FEAT_CMDLINE = 11,
	FEAT_EVENT_DESC = 12,
	FEAT_SAMPLE_TIME = 21,
};
static const enum feat feats[] = { FEAT_TRACING_DATA, FEAT_HOSTNAME,   FEAT_OSRELEASE, FEAT_VERSION,
				   FEAT_ARCH,	      FEAT_NRCPUS,     FEAT_CPUID,     FEAT_CMDLINE,
				   FEAT_EVENT_DESC,   FEAT_SAMPLE_TIME };
#define NFEATS (sizeof(feats) / sizeof(feats[0]))

/*
 * The attr as written: PERF_ATTR_SIZE_VER7 bytes (perf 5.13 and later read it; a larger
 * attr than the reading perf knows is refused by its read_attr()).
 */
#define ATTR_SIZE PERF_ATTR_SIZE_VER7
_Static_assert(sizeof(struct perf_event_attr) >= ATTR_SIZE, "perf_event_attr too small");

#define SAMPLE_TYPE                                                                               \
	(PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ID | PERF_SAMPLE_CPU | \
	 PERF_SAMPLE_PERIOD | PERF_SAMPLE_RAW)
#define HEADER_SIZE 104	    /* struct perf_file_header with its 256-bit feature bitmap */
#define NAME_ALIGN 64	    /* perf pads header strings to this */
#define ROUND_RECORDS 65536 /* records between FINISHED_ROUND records */
#define NTYPES 65536	    /* event ids are 16-bit (common_type) */
#define REC_MAX (64 * 1024) /* a perf record's size is a u16 */

static const char *const intel_cpuid = "GenuineIntel-6-55-7"; /* Cascade Lake, as in perf */
static const char *const amd_cpuid = "AuthenticAMD-25-1-1";   /* Zen 3 (Milan) */

struct opts {
	const char *formats;
	const char *vendor; /* "intel", "amd" or NULL */
	const char *cpuid;
	const char *input, *output;
	bool quiet;
	int argc;
	char **argv;
};

/* An event type of the trace that has records: one perf attr. */
struct tp {
	int type;		   /* event id in the .dat = attr.config */
	uint64_t id;		   /* perf sample id */
	const char *system, *name; /* owned by the reader's tep */
	char *format;		   /* the format file's text, ID line as in the .dat */
	size_t format_len;
	uint64_t samples;
};

struct conv {
	const struct opts *o;
	struct vms_trace *t;
	struct tep_handle *tep;
	FILE *f;
	int32_t *tp_of_type; /* NTYPES entries: index into tps, or -1 */
	struct tp *tps;
	size_t ntps;
	uint32_t *pids; /* open addressing set of pid + 1 (0: empty) */
	size_t pids_cap, npids;
	uint64_t first_ts, last_ts, samples, comms, lost_records, lost_events, since_round;
	int max_cpu;
	int id_exit;
	struct vms_field exit_isa;
	uint32_t isa; /* first non-zero isa field of kvm_exit: 1 VMX, 2 SVM */
	uint8_t rec[REC_MAX];
};

static void die_usage(const char *msg)
{
	fprintf(stderr, "dat2perf: %s\nTry 'dat2perf --help'.\n", msg);
	exit(2);
}

/* ---- output ---- */

static void put(struct conv *c, const void *p, size_t n)
{
	fwrite(p, 1, n, c->f); /* errors are caught by ferror() at the end */
}

static void put_u32(struct conv *c, uint32_t v)
{
	put(c, &v, 4);
}

static void put_u64(struct conv *c, uint64_t v)
{
	put(c, &v, 8);
}

static void put_zeros(struct conv *c, size_t n)
{
	static const uint8_t z[NAME_ALIGN];

	while (n) {
		size_t k = n < sizeof(z) ? n : sizeof(z);

		put(c, z, k);
		n -= k;
	}
}

/* struct perf_header_string: u32 len, then the string NUL-padded to NAME_ALIGN. */
static void put_string(struct conv *c, const char *s)
{
	size_t n = strlen(s) + 1, len = ALIGN_UP(n, NAME_ALIGN);

	put_u32(c, (uint32_t)len);
	put(c, s, n);
	put_zeros(c, len - n);
}

static uint64_t pos(struct conv *c)
{
	return (uint64_t)ftello(c->f);
}

/* ---- threads ---- */

static size_t pid_hash(uint32_t k)
{
	return (k * 0x9e3779b1u) >> 7;
}

/* Adds @pid to the set; returns true when it was new. Exits on ENOMEM. */
static bool pid_add(struct conv *c, int pid)
{
	uint32_t k = (uint32_t)pid + 1;
	size_t i;

	if ((c->npids + 1) * 2 > c->pids_cap) {
		size_t ncap = c->pids_cap ? c->pids_cap * 2 : 256;
		uint32_t *n = calloc(ncap, sizeof(*n));

		if (!n) {
			fprintf(stderr, "dat2perf: out of memory\n");
			exit(1);
		}
		for (size_t j = 0; j < c->pids_cap; j++) {
			if (!c->pids[j])
				continue;
			for (i = pid_hash(c->pids[j]) & (ncap - 1); n[i]; i = (i + 1) & (ncap - 1))
				;
			n[i] = c->pids[j];
		}
		free(c->pids);
		c->pids = n;
		c->pids_cap = ncap;
	}
	for (i = pid_hash(k) & (c->pids_cap - 1); c->pids[i]; i = (i + 1) & (c->pids_cap - 1))
		if (c->pids[i] == k)
			return false;
	c->pids[i] = k;
	c->npids++;
	return true;
}

/* ---- event formats ---- */

static bool same_fields(struct tep_format_field **a, struct tep_format_field **b, char *why,
			size_t whylen)
{
	size_t i;

	for (i = 0; a && a[i]; i++) {
		size_t j;

		for (j = 0; b && b[j] && strcmp(a[i]->name, b[j]->name); j++)
			;
		if (!b || !b[j]) {
			snprintf(why, whylen, "field %s is missing", a[i]->name);
			return false;
		}
		if (a[i]->offset != b[j]->offset || a[i]->size != b[j]->size ||
		    (a[i]->flags & TEP_FIELD_IS_SIGNED) != (b[j]->flags & TEP_FIELD_IS_SIGNED)) {
			snprintf(why, whylen,
				 "field %s is at %d size %d there, at %d size %d in the trace",
				 a[i]->name, b[j]->offset, b[j]->size, a[i]->offset, a[i]->size);
			return false;
		}
	}
	for (i = 0; b && b[i]; i++)
		;
	if (a) {
		size_t na;

		for (na = 0; a[na]; na++)
			;
		if (na != i) {
			snprintf(why, whylen, "it has %zu fields, the trace %zu", i, na);
			return false;
		}
	}
	return true;
}

/*
 * Load DIR/<system>/<name>/format for event @ev of the trace, check that it describes the
 * same record layout, and make its ID line say the trace's id.
 */
static int load_format(struct conv *c, struct tp *tp, struct tep_event *ev)
{
	char path[PATH_MAX], why[256] = "";
	struct tep_handle *scratch = NULL;
	struct tep_event *sev;
	struct tep_format_field **fa = NULL, **fb = NULL;
	char *text, *idl;
	size_t len;
	int ret = -1;

	snprintf(path, sizeof(path), "%s/%s/%s/format", c->o->formats, ev->system, ev->name);
	text = tools_read_file(path, &len);
	if (!text) {
		fprintf(stderr,
			"dat2perf: %s: %s (the trace has records of %s:%s: copy its format from "
			"/sys/kernel/tracing/events into the formats directory)\n",
			path, strerror(errno), ev->system, ev->name);
		return -1;
	}
	scratch = tep_alloc();
	if (!scratch || tep_parse_event(scratch, text, len, ev->system) ||
	    !(sev = tep_find_event_by_name(scratch, ev->system, ev->name))) {
		fprintf(stderr, "dat2perf: %s: libtraceevent cannot parse it\n", path);
		goto out;
	}
	fa = tep_event_common_fields(ev);
	fb = tep_event_common_fields(sev);
	if (!same_fields(fa, fb, why, sizeof(why))) {
		fprintf(stderr, "dat2perf: %s does not describe the trace's %s:%s: %s\n", path,
			ev->system, ev->name, why);
		goto out;
	}
	free(fa);
	free(fb);
	fa = tep_event_fields(ev);
	fb = tep_event_fields(sev);
	if (!same_fields(fa, fb, why, sizeof(why))) {
		fprintf(stderr, "dat2perf: %s does not describe the trace's %s:%s: %s\n", path,
			ev->system, ev->name, why);
		goto out;
	}
	if (sev->id != ev->id) {
		/* Same layout, other id (another boot or kernel build): say the trace's id. */
		char head[64], *nl;
		size_t hl, nlen;
		char *nt;

		idl = strstr(text, "\nID: ");
		if (!idl || !(nl = strchr(idl + 1, '\n'))) {
			fprintf(stderr, "dat2perf: %s: no ID line\n", path);
			goto out;
		}
		hl = (size_t)snprintf(head, sizeof(head), "\nID: %d", ev->id);
		nlen = (size_t)(idl - text) + hl + (len - (size_t)(nl - text));
		nt = malloc(nlen + 1);
		if (!nt)
			goto out;
		memcpy(nt, text, (size_t)(idl - text));
		memcpy(nt + (idl - text), head, hl);
		memcpy(nt + (idl - text) + hl, nl, len - (size_t)(nl - text) + 1);
		if (!c->o->quiet)
			fprintf(stderr,
				"dat2perf: note: %s has ID %d, the trace %d: using the trace's\n",
				path, sev->id, ev->id);
		free(text);
		text = nt;
		len = nlen;
	}
	tp->format = text;
	tp->format_len = len;
	text = NULL;
	ret = 0;
out:
	free(fa);
	free(fb);
	free(text);
	tep_free(scratch);
	return ret;
}

/* The tp of event @type, made (with its format) when first seen; NULL on error. */
static struct tp *tp_get(struct conv *c, uint32_t type)
{
	struct tep_event *ev;
	struct tp *tp, *ntps;

	if (type >= NTYPES)
		return NULL;
	if (c->tp_of_type[type] >= 0)
		return &c->tps[c->tp_of_type[type]];
	ev = tep_find_event(c->tep, (int)type);
	if (!ev) {
		fprintf(stderr,
			"dat2perf: record of event id %u, which the trace has no format for\n",
			type);
		return NULL;
	}
	ntps = realloc(c->tps, (c->ntps + 1) * sizeof(*ntps));
	if (!ntps)
		return NULL;
	c->tps = ntps;
	tp = &c->tps[c->ntps];
	memset(tp, 0, sizeof(*tp));
	tp->type = (int)type;
	tp->id = c->ntps + 1; /* 0 is the id of synthesized records */
	tp->system = ev->system;
	tp->name = ev->name;
	if (load_format(c, tp, ev))
		return NULL;
	c->tp_of_type[type] = (int32_t)c->ntps++;
	return tp;
}

/* ---- records ---- */

/* sample_id_all trailer for sample_type TID|TIME|ID|CPU: pid, tid, time, id, cpu, res */
static size_t put_sample_id(uint8_t *p, int pid, uint64_t ts, uint64_t id, int cpu)
{
	uint32_t u[2] = { (uint32_t)pid, (uint32_t)pid };

	memcpy(p, u, 8);
	memcpy(p + 8, &ts, 8);
	memcpy(p + 16, &id, 8);
	u[0] = (uint32_t)cpu;
	u[1] = 0;
	memcpy(p + 24, u, 8);
	return 32;
}

static void put_header(uint8_t *p, uint32_t type, uint16_t misc, size_t size)
{
	struct perf_event_header h = { .type = type, .misc = misc, .size = (uint16_t)size };

	memcpy(p, &h, sizeof(h));
}

static void comm_record(struct conv *c, int pid, const char *comm, uint64_t ts, int cpu)
{
	size_t n = strnlen(comm, 255) + 1, len = 8 + 8 + ALIGN_UP(n, 8);
	uint32_t u[2] = { (uint32_t)pid, (uint32_t)pid };
	uint8_t *p = c->rec;

	memset(p, 0, len + 32);
	memcpy(p + 8, u, 8);
	memcpy(p + 16, comm, n - 1);
	len += put_sample_id(p + len, pid, ts, 0, cpu);
	put_header(p, PERF_RECORD_COMM, 0, len);
	put(c, p, len);
	c->comms++;
}

static int sample_record(struct conv *c, const struct vms_record *r)
{
	struct tp *tp = tp_get(c, r->type);
	uint32_t raw = (uint32_t)(ALIGN_UP(r->size + 4, 8) - 4), u[2];
	uint64_t v;
	size_t len = 8 + 8 + 8 + 8 + 8 + 8 + 8 + 4 + raw;
	uint8_t *p = c->rec;

	if (!tp)
		return -1;
	if (len > 0xffff) {
		fprintf(stderr, "dat2perf: a %s:%s record of %u bytes does not fit a perf record\n",
			tp->system, tp->name, r->size);
		return -1;
	}
	if (pid_add(c, r->pid)) {
		const char *comm = vms_trace_comm(c->t, r->pid);

		if (comm)
			comm_record(c, r->pid, comm, r->ts, r->cpu);
	}
	/* the kernel's tracepoint samples are kernel-mode samples */
	put_header(p, PERF_RECORD_SAMPLE, PERF_RECORD_MISC_KERNEL, len);
	v = 0; /* ip: the tracepoint's call site is not in a .dat */
	memcpy(p + 8, &v, 8);
	u[0] = u[1] = (uint32_t)r->pid; /* the .dat has the thread, not its process */
	memcpy(p + 16, u, 8);
	memcpy(p + 24, &r->ts, 8);
	memcpy(p + 32, &tp->id, 8);
	u[0] = (uint32_t)r->cpu;
	u[1] = 0;
	memcpy(p + 40, u, 8);
	v = 1; /* period: -c 1 */
	memcpy(p + 48, &v, 8);
	memcpy(p + 56, &raw, 4);
	memcpy(p + 60, r->data, r->size);
	memset(p + 60 + r->size, 0, raw - r->size);
	put(c, p, len);
	tp->samples++;
	c->samples++;
	if (r->type == (uint32_t)c->id_exit && !c->isa)
		c->isa = (uint32_t)vms_field_u64(&c->exit_isa, r);
	return 0;
}

static void lost_record(struct conv *c, const struct vms_record *r)
{
	uint8_t *p = c->rec;
	uint64_t zero = 0;
	size_t len = 24;

	memcpy(p + 8, &zero, 8); /* id: the lost events' stream is not known */
	memcpy(p + 16, &r->lost_count, 8);
	len += put_sample_id(p + len, 0, r->ts, 0, r->cpu);
	put_header(p, PERF_RECORD_LOST, 0, len);
	put(c, p, len);
	c->lost_records++;
	c->lost_events += r->lost_count;
}

static void round_record(struct conv *c)
{
	uint8_t p[8];

	put_header(p, PERF_RECORD_FINISHED_ROUND, 0, 8);
	put(c, p, 8);
	c->since_round = 0;
}

static int convert_data(struct conv *c)
{
	struct vms_record r;
	int ret;

	while ((ret = vms_trace_next(c->t, &r)) > 0) {
		if (r.cpu > c->max_cpu)
			c->max_cpu = r.cpu;
		if (r.type == VMS_RECORD_LOST) {
			lost_record(c, &r);
		} else {
			if (sample_record(c, &r))
				return -1;
			if (!c->first_ts)
				c->first_ts = r.ts;
			c->last_ts = r.ts;
		}
		if (++c->since_round == ROUND_RECORDS)
			round_record(c);
	}
	if (ret < 0) {
		fprintf(stderr, "dat2perf: %s\n", vms_trace_error(c->t));
		return -1;
	}
	if (c->since_round)
		round_record(c);
	return 0;
}

/* ---- features ---- */

static int put_text_file(struct conv *c, const char *tag, size_t taglen, const char *name)
{
	char path[PATH_MAX];
	size_t len;
	char *text;

	snprintf(path, sizeof(path), "%s/%s", c->o->formats, name);
	text = tools_read_file(path, &len);
	if (!text) {
		fprintf(stderr, "dat2perf: %s: %s\n", path, strerror(errno));
		return -1;
	}
	put(c, tag, taglen);
	put_u64(c, len);
	put(c, text, len);
	free(text);
	return 0;
}

static int cmp_tp_system(const void *a, const void *b)
{
	const struct tp *x = *(const struct tp *const *)a, *y = *(const struct tp *const *)b;
	int d = strcmp(x->system, y->system);

	return d ? d : x->type - y->type;
}

/* The tracing data: the layout of trace-cmd's v6 headers, as perf's trace_report() reads. */
static int put_tracing_data(struct conv *c)
{
	const struct vms_trace_info *info = vms_trace_info(c->t);
	static const char magic[] = { 23, 8, 68, 't', 'r', 'a', 'c', 'i', 'n', 'g' };
	struct tp **v = calloc(c->ntps + 1, sizeof(*v));
	size_t nftrace = 0, nsys = 0, i;
	char *cmdlines = NULL;
	size_t cmdlen = 0;
	FILE *m;

	if (!v)
		return -1;
	for (i = 0; i < c->ntps; i++)
		v[i] = &c->tps[i];
	qsort(v, c->ntps, sizeof(*v), cmp_tp_system);
	put(c, magic, sizeof(magic));
	put(c, "0.6", 4);
	put(c, "\0", 1); /* little endian */
	put(c, &(uint8_t){ (uint8_t)info->long_size }, 1);
	put_u32(c, info->page_size);
	if (put_text_file(c, "header_page", 12, "header_page") ||
	    put_text_file(c, "header_event", 13, "header_event")) {
		free(v);
		return -1;
	}
	/* ftrace's own events (ftrace:print, ...) have their section */
	for (i = 0; i < c->ntps; i++)
		nftrace += !strcmp(v[i]->system, "ftrace");
	put_u32(c, (uint32_t)nftrace);
	for (i = 0; i < c->ntps; i++) {
		if (!strcmp(v[i]->system, "ftrace")) {
			put_u64(c, v[i]->format_len);
			put(c, v[i]->format, v[i]->format_len);
		}
	}
	for (i = 0; i < c->ntps; i++)
		if (strcmp(v[i]->system, "ftrace") &&
		    (!i || strcmp(v[i]->system, v[i - 1]->system)))
			nsys++;
	put_u32(c, (uint32_t)nsys);
	for (i = 0; i < c->ntps;) {
		size_t j;

		if (!strcmp(v[i]->system, "ftrace")) {
			i++;
			continue;
		}
		for (j = i; j < c->ntps && !strcmp(v[j]->system, v[i]->system); j++)
			;
		put(c, v[i]->system, strlen(v[i]->system) + 1);
		put_u32(c, (uint32_t)(j - i));
		for (; i < j; i++) {
			put_u64(c, v[i]->format_len);
			put(c, v[i]->format, v[i]->format_len);
		}
	}
	free(v);
	put_u32(c, 0); /* kallsyms: none (perf resolves symbols itself) */
	put_u32(c, 0); /* printk formats: none */
	/* saved cmdlines: the threads of the trace that have a name */
	m = open_memstream(&cmdlines, &cmdlen);
	if (!m)
		return -1;
	for (i = 0; i < c->pids_cap; i++) {
		const char *comm;

		if (c->pids[i] && (comm = vms_trace_comm(c->t, (int)(c->pids[i] - 1))))
			fprintf(m, "%d %s\n", (int)(c->pids[i] - 1), comm);
	}
	if (fclose(m))
		return -1;
	put_u64(c, cmdlen);
	put(c, cmdlines, cmdlen);
	free(cmdlines);
	return 0;
}

static void fill_attr(const struct tp *tp, struct perf_event_attr *a, bool first)
{
	memset(a, 0, sizeof(*a));
	a->type = PERF_TYPE_TRACEPOINT;
	a->size = ATTR_SIZE;
	a->config = (uint64_t)tp->type;
	a->sample_period = 1;
	a->sample_type = SAMPLE_TYPE;
	a->disabled = 1;
	a->inherit = 1;
	a->sample_id_all = 1;
	a->exclude_guest = 1;
	/* the first event tracks the threads, as in perf record */
	a->comm = first;
	a->task = first;
}

static const char *cpuid_string(struct conv *c)
{
	const char *v = c->o->vendor;

	if (c->o->cpuid)
		return c->o->cpuid;
	if (!v)
		v = vms_trace_meta(c->t, "vendor");
	if (v) {
		if (strcasestr(v, "amd") || strcasestr(v, "svm") || strcasestr(v, "hygon"))
			return amd_cpuid;
		return intel_cpuid;
	}
	return c->isa == 2 ? amd_cpuid : intel_cpuid;
}

/* "sysname nodename release version..." of the UNAME option: word @n, or @def. */
static void uname_word(struct conv *c, int n, const char *def, char *buf, size_t len)
{
	const char *s = vms_trace_info(c->t)->uname;

	snprintf(buf, len, "%s", def);
	for (int i = 0; s && *s; i++) {
		size_t k = strcspn(s, " ");

		if (i == n && k) {
			snprintf(buf, len, "%.*s", (int)k, s);
			return;
		}
		s += k;
		s += strspn(s, " ");
	}
}

static int put_feature(struct conv *c, enum feat f)
{
	char buf[256];
	uint32_t ncpus;

	switch (f) {
	case FEAT_TRACING_DATA:
		return put_tracing_data(c);
	case FEAT_HOSTNAME:
		uname_word(c, 1, "unknown", buf, sizeof(buf));
		put_string(c, buf);
		break;
	case FEAT_OSRELEASE:
		uname_word(c, 2, "unknown", buf, sizeof(buf));
		put_string(c, buf);
		break;
	case FEAT_VERSION:
		put_string(c, "6.1 (vmscope dat2perf)");
		break;
	case FEAT_ARCH:
		put_string(c, "x86_64");
		break;
	case FEAT_NRCPUS:
		ncpus = vms_trace_info(c->t)->ncpus;
		if ((uint32_t)(c->max_cpu + 1) > ncpus)
			ncpus = (uint32_t)(c->max_cpu + 1);
		put_u32(c, ncpus); /* available */
		put_u32(c, ncpus); /* online */
		break;
	case FEAT_CPUID:
		put_string(c, cpuid_string(c));
		break;
	case FEAT_CMDLINE:
		put_u32(c, (uint32_t)c->o->argc);
		for (int i = 0; i < c->o->argc; i++)
			put_string(c, c->o->argv[i]);
		break;
	case FEAT_EVENT_DESC:
		put_u32(c, (uint32_t)c->ntps);
		put_u32(c, ATTR_SIZE);
		for (size_t i = 0; i < c->ntps; i++) {
			struct perf_event_attr a;

			fill_attr(&c->tps[i], &a, i == 0);
			put(c, &a, ATTR_SIZE);
			put_u32(c, 1);
			snprintf(buf, sizeof(buf), "%s:%s", c->tps[i].system, c->tps[i].name);
			put_string(c, buf);
			put_u64(c, c->tps[i].id);
		}
		break;
	case FEAT_SAMPLE_TIME:
		put_u64(c, c->first_ts);
		put_u64(c, c->last_ts);
		break;
	}
	return 0;
}

/* ---- the file ---- */

static int write_tail(struct conv *c, uint64_t data_off, uint64_t data_size)
{
	uint64_t idx_off = pos(c), attr_ids, attrs_off, end, bitmap[4] = { 0 };
	uint64_t sec[NFEATS][2];
	uint64_t hdr[9];

	put_zeros(c, sizeof(sec)); /* the index, filled in below */
	for (size_t i = 0; i < NFEATS; i++) {
		sec[i][0] = pos(c);
		if (put_feature(c, feats[i]))
			return -1;
		sec[i][1] = pos(c) - sec[i][0];
		bitmap[feats[i] / 64] |= 1ULL << (feats[i] % 64);
	}
	attr_ids = pos(c);
	for (size_t i = 0; i < c->ntps; i++)
		put_u64(c, c->tps[i].id);
	attrs_off = pos(c);
	for (size_t i = 0; i < c->ntps; i++) {
		struct perf_event_attr a;

		fill_attr(&c->tps[i], &a, i == 0);
		put(c, &a, ATTR_SIZE);
		put_u64(c, attr_ids + 8 * i); /* ids section: offset, size */
		put_u64(c, 8);
	}
	end = pos(c);
	if (fseeko(c->f, (off_t)idx_off, SEEK_SET))
		return -1;
	put(c, sec, sizeof(sec));
	if (fseeko(c->f, 0, SEEK_SET))
		return -1;
	memcpy(&hdr[0], "PERFILE2", 8);
	hdr[1] = HEADER_SIZE;
	hdr[2] = ATTR_SIZE + 16; /* perf_file_attr: the attr and its ids section */
	hdr[3] = attrs_off;
	hdr[4] = end - attrs_off;
	hdr[5] = data_off;
	hdr[6] = data_size;
	hdr[7] = 0; /* event_types: unused */
	hdr[8] = 0;
	put(c, hdr, sizeof(hdr));
	put(c, bitmap, sizeof(bitmap));
	return 0;
}

static int convert(const struct opts *o)
{
	struct conv *c = calloc(1, sizeof(*c));
	const struct vms_trace_info *info;
	uint64_t data_size;
	int ret = 1;

	if (!c || !(c->tp_of_type = malloc(NTYPES * sizeof(*c->tp_of_type)))) {
		fprintf(stderr, "dat2perf: out of memory\n");
		goto out;
	}
	memset(c->tp_of_type, 0xff, NTYPES * sizeof(*c->tp_of_type));
	c->o = o;
	if (vms_trace_open(o->input, NULL, &c->t)) {
		fprintf(stderr, "dat2perf: %s\n", vms_trace_open_error());
		goto out;
	}
	c->tep = vms_trace_tep(c->t);
	c->id_exit = vms_trace_event_id(c->t, "kvm", "kvm_exit");
	vms_trace_field(c->t, c->id_exit, "isa", &c->exit_isa);
	info = vms_trace_info(c->t);
	if (info->long_size != 8) {
		fprintf(stderr, "dat2perf: %s: a %u-bit trace; only 64-bit hosts are supported\n",
			o->input, info->long_size * 8);
		goto out;
	}
	c->f = fopen(o->output, "w+");
	if (!c->f) {
		fprintf(stderr, "dat2perf: %s: %s\n", o->output, strerror(errno));
		goto out;
	}
	setvbuf(c->f, NULL, _IOFBF, 1 << 20);
	put_zeros(c, HEADER_SIZE); /* written last */
	if (convert_data(c))
		goto out;
	data_size = pos(c) - HEADER_SIZE;
	if (write_tail(c, HEADER_SIZE, data_size))
		goto out;
	if (fflush(c->f) || ferror(c->f)) {
		fprintf(stderr, "dat2perf: %s: %s\n", o->output, strerror(errno));
		goto out;
	}
	ret = 0;
	if (!o->quiet) {
		fprintf(stderr,
			"dat2perf: %s -> %s: %" PRIu64 " samples of %zu events, %" PRIu64
			" comm, %" PRIu64 " lost windows (%" PRIu64 " events), cpuid %s\n",
			o->input, o->output, c->samples, c->ntps, c->comms, c->lost_records,
			c->lost_events, cpuid_string(c));
		for (size_t i = 0; i < c->ntps; i++)
			fprintf(stderr, "  %-28s id %5d  %" PRIu64 "\n", c->tps[i].name,
				c->tps[i].type, c->tps[i].samples);
	}
out:
	if (c) {
		if (c->f && fclose(c->f) && !ret) {
			fprintf(stderr, "dat2perf: %s: %s\n", o->output, strerror(errno));
			ret = 1;
		}
		if (ret && c->f)
			unlink(o->output);
		for (size_t i = 0; i < c->ntps; i++)
			free(c->tps[i].format);
		free(c->tps);
		free(c->pids);
		free(c->tp_of_type);
		vms_trace_close(c->t);
		free(c);
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dat2perf [options] IN.dat OUT.data\n"
		"Convert a trace-cmd .dat file into a perf.data file for perf script and\n"
		"perf kvm stat report (perf kvm -i OUT.data stat report --event vmexit).\n"
		"  -F, --formats DIR   kernel format files: DIR/header_page, DIR/header_event,\n"
		"                      DIR/<system>/<event>/format (default %s)\n"
		"      --vendor intel|amd  CPU vendor that perf kvm stat names exit reasons for\n"
		"                      (default: the trace's vmscope metadata, else the isa field\n"
		"                      of its kvm_exit records, else intel)\n"
		"      --cpuid STR     the CPUID feature string itself (\"GenuineIntel-6-55-7\")\n"
		"  -q, --quiet         no summary on stderr\n"
		"  -h, --help          this text\n",
		DAT2PERF_FORMATS_DIR);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "formats", required_argument, NULL, 'F' },
		{ "vendor", required_argument, NULL, 'V' },
		{ "cpuid", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .formats = DAT2PERF_FORMATS_DIR, .argc = argc, .argv = argv };
	int ch;

	while ((ch = getopt_long(argc, argv, "F:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'F':
			o.formats = optarg;
			break;
		case 'V':
			if (strcmp(optarg, "intel") && strcmp(optarg, "amd"))
				die_usage("--vendor must be intel or amd");
			o.vendor = optarg;
			break;
		case 'C':
			o.cpuid = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2)
		die_usage("need an input .dat file and an output perf.data file");
	o.input = argv[optind];
	o.output = argv[optind + 1];
	return convert(&o);
}
