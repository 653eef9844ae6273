// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The interrupt analysis (see vmscope/irq.h for its sources). Two open-addressing hash
 * tables find a record's heatmap series (source, key) and its row (source, thread,
 * destination, key); a series keeps one pointer per second since its first interrupt, to
 * an array of sub-second bucket counters allocated when that second gets its first
 * interrupt. So a record allocates only when it brings a new series, row or second; the
 * field offsets are looked up once, at init.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/irq.h"

#define NS_PER_SEC 1000000000ULL
#define NONE UINT32_MAX

/* The counters of one series: per second from base_sec, an array of buckets or NULL. */
struct seconds {
	uint32_t **sec;
	size_t nsec;
};

struct irq {
	unsigned int buckets;
	uint64_t bucket_ns;
	int id[VMS_IRQ_NSOURCES];
	struct vms_field inj_vector, aa_apicid, aa_vec, msi_address, msi_data, set_gsi, set_level;
	/* series (and their counters, in step), and their hash table (index + 1; 0: empty) */
	struct vms_irq_series *series;
	struct seconds *secs;
	size_t nseries, series_cap;
	uint32_t *series_slots;
	size_t series_slots_cap;
	/* rows, and theirs */
	struct vms_irq_row *rows;
	uint32_t *row_series; /* the series of each row */
	size_t nrows, rows_cap;
	uint32_t *row_slots;
	size_t row_slots_cap;
	/* the last row counted: interrupts come in runs of the same thread and vector */
	uint32_t last_row;
	/* heatmap seconds count from the clock's second of the first interrupt, until finish */
	bool started;
	uint64_t base_sec;
	uint64_t sec_offset; /* after finish: base_sec - the first record's second */
	struct vms_irq_summary sum;
	int err; /* -ENOMEM met while counting: the results are short of some interrupts */
};

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t)x;
}

static uint64_t series_hash_key(enum vms_irq_source src, uint32_t key)
{
	return (uint64_t)src << 32 | key;
}

static uint64_t row_hash_key(enum vms_irq_source src, int tid, int dest, uint32_t key)
{
	return ((uint64_t)(uint32_t)tid << 32 | key) * 31 + (uint64_t)(uint32_t)dest * 7 + src;
}

/* Put index @idx (of a thing whose hash is @h) into @slots of @cap (a power of two). */
static void slot_put(uint32_t *slots, size_t cap, size_t h, uint32_t idx)
{
	size_t i;

	for (i = h & (cap - 1); slots[i]; i = (i + 1) & (cap - 1))
		;
	slots[i] = idx + 1;
}

/* Grow @arr (of @cap elements of @size) to hold one more than @n; 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static uint32_t series_get(struct irq *q, enum vms_irq_source src, uint32_t key)
{
	size_t h = hash_u64(series_hash_key(src, key)), i;
	struct vms_irq_series *s;

	if (q->series_slots_cap) {
		for (i = h & (q->series_slots_cap - 1); q->series_slots[i];
		     i = (i + 1) & (q->series_slots_cap - 1)) {
			s = &q->series[q->series_slots[i] - 1];
			if (s->source == src && s->key == key)
				return q->series_slots[i] - 1;
		}
	}
	if (q->nseries >= q->series_cap) {
		size_t cap = q->series_cap;

		if (grow((void **)&q->series, &cap, q->nseries, sizeof(*q->series)))
			return NONE;
		cap = q->series_cap;
		if (grow((void **)&q->secs, &cap, q->nseries, sizeof(*q->secs)))
			return NONE;
		q->series_cap = cap;
	}
	if ((q->nseries + 1) * 2 > q->series_slots_cap) {
		size_t ncap = q->series_slots_cap ? q->series_slots_cap * 2 : 64;
		uint32_t *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return NONE;
		for (size_t k = 0; k < q->nseries; k++)
			slot_put(ns, ncap,
				 hash_u64(series_hash_key(q->series[k].source, q->series[k].key)),
				 (uint32_t)k);
		free(q->series_slots);
		q->series_slots = ns;
		q->series_slots_cap = ncap;
	}
	q->series[q->nseries] = (struct vms_irq_series){ src, key, 0 };
	q->secs[q->nseries] = (struct seconds){ NULL, 0 };
	slot_put(q->series_slots, q->series_slots_cap, h, (uint32_t)q->nseries);
	return (uint32_t)q->nseries++;
}

static uint32_t row_get(struct irq *q, enum vms_irq_source src, int tid, int dest, uint32_t key)
{
	size_t h = hash_u64(row_hash_key(src, tid, dest, key)), i;
	struct vms_irq_row *r;
	uint32_t ser;

	if (q->row_slots_cap) {
		for (i = h & (q->row_slots_cap - 1); q->row_slots[i];
		     i = (i + 1) & (q->row_slots_cap - 1)) {
			r = &q->rows[q->row_slots[i] - 1];
			if (r->source == src && r->tid == tid && r->dest == dest && r->key == key)
				return q->row_slots[i] - 1;
		}
	}
	ser = series_get(q, src, key);
	if (ser == NONE)
		return NONE;
	if (q->nrows >= q->rows_cap) {
		size_t cap = q->rows_cap;

		if (grow((void **)&q->rows, &cap, q->nrows, sizeof(*q->rows)))
			return NONE;
		cap = q->rows_cap;
		if (grow((void **)&q->row_series, &cap, q->nrows, sizeof(*q->row_series)))
			return NONE;
		q->rows_cap = cap;
	}
	if ((q->nrows + 1) * 2 > q->row_slots_cap) {
		size_t ncap = q->row_slots_cap ? q->row_slots_cap * 2 : 64;
		uint32_t *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return NONE;
		for (size_t k = 0; k < q->nrows; k++) {
			const struct vms_irq_row *o = &q->rows[k];

			slot_put(ns, ncap,
				 hash_u64(row_hash_key(o->source, o->tid, o->dest, o->key)),
				 (uint32_t)k);
		}
		free(q->row_slots);
		q->row_slots = ns;
		q->row_slots_cap = ncap;
	}
	r = &q->rows[q->nrows];
	*r = (struct vms_irq_row){ .source = src, .tid = tid, .dest = dest, .key = key };
	q->row_series[q->nrows] = ser;
	slot_put(q->row_slots, q->row_slots_cap, h, (uint32_t)q->nrows);
	return (uint32_t)q->nrows++;
}

/* The counters of second @off (from base_sec) in @s; NULL when out of memory. */
static uint32_t *second_of(struct irq *q, struct seconds *s, uint64_t off)
{
	if (off >= s->nsec) {
		size_t n = s->nsec ? s->nsec : 8;
		uint32_t **p;

		while (n <= off)
			n *= 2;
		p = realloc(s->sec, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + s->nsec, 0, (n - s->nsec) * sizeof(*p));
		s->sec = p;
		s->nsec = n;
	}
	if (!s->sec[off])
		s->sec[off] = calloc(q->buckets, sizeof(**s->sec));
	return s->sec[off];
}

/* One interrupt of @src with @key, in thread @tid, to APIC @dest (or -1), at @ts. */
static void count(struct irq *q, enum vms_irq_source src, int tid, int dest, uint32_t key,
		  uint64_t ts)
{
	uint32_t row = q->last_row, *cell;
	struct vms_irq_row *r;
	uint64_t sec = ts / NS_PER_SEC;

	if (row == NONE || q->rows[row].source != src || q->rows[row].tid != tid ||
	    q->rows[row].dest != dest || q->rows[row].key != key) {
		row = row_get(q, src, tid, dest, key);
		if (row == NONE) {
			q->err = -ENOMEM;
			return;
		}
		q->last_row = row;
	}
	r = &q->rows[row];
	if (!q->started) {
		q->started = true;
		q->base_sec = sec;
	}
	/* records come in time order: an earlier second cannot follow the first one */
	cell = second_of(q, &q->secs[q->row_series[row]],
			 sec > q->base_sec ? sec - q->base_sec : 0);
	if (!cell) {
		q->err = -ENOMEM;
		return;
	}
	cell[(ts % NS_PER_SEC) / q->bucket_ns]++;
	if (!r->count)
		r->first_ts = ts;
	r->last_ts = ts;
	r->count++;
	q->sum.events[src]++;
}

static void on_inj_virq(void *priv, const struct vms_record *rec)
{
	struct irq *q = priv;

	count(q, VMS_IRQ_INJ_VIRQ, rec->pid, -1, (uint32_t)vms_field_u64(&q->inj_vector, rec),
	      rec->ts);
}

static void on_apic_accept(void *priv, const struct vms_record *rec)
{
	struct irq *q = priv;

	count(q, VMS_IRQ_APIC_ACCEPT, rec->pid, (int)vms_field_u64(&q->aa_apicid, rec),
	      (uint32_t)vms_field_u64(&q->aa_vec, rec) & 0xff, rec->ts);
}

static void on_msi(void *priv, const struct vms_record *rec)
{
	struct irq *q = priv;
	uint64_t addr = vms_field_u64(&q->msi_address, rec);

	/* the destination as the tracepoint prints it: address bits 19:12 (and 63:40) */
	count(q, VMS_IRQ_MSI, rec->pid, (int)((addr >> 12 & 0xff) | (addr >> 32 & 0xffffff00)),
	      (uint32_t)vms_field_u64(&q->msi_data, rec) & 0xff, rec->ts);
}

static void on_set_irq(void *priv, const struct vms_record *rec)
{
	struct irq *q = priv;

	if (!vms_field_u64(&q->set_level, rec)) {
		q->sum.deasserts++;
		return;
	}
	count(q, VMS_IRQ_SET_IRQ, rec->pid, -1, (uint32_t)vms_field_u64(&q->set_gsi, rec), rec->ts);
}

static const char *const event_names[VMS_IRQ_NSOURCES] = {
	"kvm_inj_virq",
	"kvm_apic_accept_irq",
	"kvm_msi_set_irq",
	"kvm_set_irq",
};

static int irq_init(void *priv, struct vms_session *s, const void *opts)
{
	static const vms_handler_fn fns[VMS_IRQ_NSOURCES] = { on_inj_virq, on_apic_accept, on_msi,
							      on_set_irq };
	struct irq *q = priv;
	struct vms_trace *t = vms_session_trace(s);
	const struct vms_irq_opts *o = opts;
	unsigned int b =
		o && o->sz >= offsetof(struct vms_irq_opts, buckets) + sizeof(b) ? o->buckets : 0;
	int ret;

	if (!b)
		b = VMS_IRQ_DEFAULT_BUCKETS;
	if (b > 1000 || 1000 % b)
		return -EINVAL;
	q->buckets = b;
	q->bucket_ns = NS_PER_SEC / b;
	q->last_row = NONE;
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++) {
		q->id[k] = vms_trace_event_id(t, "kvm", event_names[k]);
		q->sum.has_format[k] = q->id[k] >= 0;
	}
	vms_trace_field(t, q->id[VMS_IRQ_INJ_VIRQ], "vector", &q->inj_vector);
	vms_trace_field(t, q->id[VMS_IRQ_APIC_ACCEPT], "apicid", &q->aa_apicid);
	vms_trace_field(t, q->id[VMS_IRQ_APIC_ACCEPT], "vec", &q->aa_vec);
	vms_trace_field(t, q->id[VMS_IRQ_MSI], "address", &q->msi_address);
	vms_trace_field(t, q->id[VMS_IRQ_MSI], "data", &q->msi_data);
	vms_trace_field(t, q->id[VMS_IRQ_SET_IRQ], "gsi", &q->set_gsi);
	vms_trace_field(t, q->id[VMS_IRQ_SET_IRQ], "level", &q->set_level);
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		if (q->id[k] >= 0 && (ret = vms_session_subscribe(s, q->id[k], fns[k], q)))
			return ret;
	return 0;
}

static void irq_finish(void *priv, struct vms_session *s)
{
	struct irq *q = priv;
	struct vms_trace *t = vms_session_trace(s);
	uint64_t first = vms_session_first_ts(s), last = vms_session_last_ts(s);
	uint64_t first_sec = first / NS_PER_SEC;

	/* series totals here, not per record: they are the sums of their rows */
	for (size_t i = 0; i < q->nrows; i++)
		q->series[q->row_series[i]].count += q->rows[i].count;
	q->sum.heatmap_sources = q->sum.events[VMS_IRQ_INJ_VIRQ] ? 1u << VMS_IRQ_INJ_VIRQ
				 : q->sum.events[VMS_IRQ_APIC_ACCEPT]
					 ? 1u << VMS_IRQ_APIC_ACCEPT
					 : 1u << VMS_IRQ_SET_IRQ | 1u << VMS_IRQ_MSI;
	/* every counted interrupt lies between the first and the last record */
	if (q->started && q->base_sec < first_sec)
		first_sec = q->base_sec;
	q->sec_offset = q->started ? q->base_sec - first_sec : 0;
	q->sum.first_second = first_sec;
	q->sum.seconds = last || first ? (unsigned int)(last / NS_PER_SEC - first_sec + 1) : 0;
	q->sum.buckets = q->buckets;
	q->sum.bucket_ns = q->bucket_ns;
	q->sum.span_ns = last > first ? last - first : 0;
	q->sum.lost_events = vms_trace_lost(t);
	q->sum.lost_windows = vms_trace_lost_windows(t);
	q->sum.error = q->err;
}

static void irq_free(void *priv)
{
	struct irq *q = priv;

	for (size_t i = 0; i < q->nseries; i++) {
		for (size_t k = 0; k < q->secs[i].nsec; k++)
			free(q->secs[i].sec[k]);
		free(q->secs[i].sec);
	}
	free(q->series);
	free(q->secs);
	free(q->series_slots);
	free(q->rows);
	free(q->row_series);
	free(q->row_slots);
}

static int irq_error(const void *priv)
{
	const struct irq *q = priv;

	return q->err;
}

const struct vms_analysis_ops vms_irq_ops = {
	.name = "irq",
	.priv_size = sizeof(struct irq),
	.init = irq_init,
	.finish = irq_finish,
	.free = irq_free,
	.error = irq_error,
};

/* ---- results ---- */

void vms_irq_summary(const void *priv, struct vms_irq_summary *out)
{
	*out = ((const struct irq *)priv)->sum;
}

const struct vms_irq_row *vms_irq_rows(const void *priv, size_t *n)
{
	const struct irq *q = priv;

	*n = q->nrows;
	return q->rows;
}

const struct vms_irq_series *vms_irq_series(const void *priv, size_t *n)
{
	const struct irq *q = priv;

	*n = q->nseries;
	return q->series;
}

uint64_t vms_irq_cell(const void *priv, size_t series, unsigned int second, unsigned int bucket)
{
	const struct irq *q = priv;
	const struct seconds *s;
	uint64_t off;

	if (series >= q->nseries || bucket >= q->buckets || second < q->sec_offset)
		return 0;
	s = &q->secs[series];
	off = second - q->sec_offset;
	return off < s->nsec && s->sec[off] ? s->sec[off][bucket] : 0;
}

static const char *const source_names[VMS_IRQ_NSOURCES] = {
	"inj_virq",
	"apic_accept_irq",
	"msi_set_irq",
	"set_irq",
};

const char *vms_irq_source_name(enum vms_irq_source s)
{
	return (unsigned int)s < VMS_IRQ_NSOURCES ? source_names[s] : "?";
}

const char *vms_irq_key_name(enum vms_irq_source s, uint32_t key, char *buf, size_t len)
{
	if (s == VMS_IRQ_SET_IRQ)
		snprintf(buf, len, "gsi %u", key);
	else
		snprintf(buf, len, "0x%02x", key);
	return buf;
}
