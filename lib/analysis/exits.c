// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The exit analysis (see vmscope/exits.h for the event definitions, which follow perf kvm
 * stat's). State per vCPU thread: whether a kvm_entry named it, the begin timestamp and
 * key of the exit in progress, the CPU it was last seen on. Results per (thread, key) row:
 * count, total, min, max, Welford mean and M2, and a log-linear histogram. Threads and rows
 * are found through open-addressing hash tables; a record allocates only when it brings a
 * new thread, key or histogram octave. With time bins asked for (exits over time), each row
 * also counts its key events per bin: a fixed array allocated with the row, whose bins
 * double in width (pairs merging) when the trace outlasts them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/exits.h"

#define NO_ROW UINT32_MAX

#define ROW_CACHE 64

struct thread {
	int tid; /* 0: empty slot */
	int vcpu;
	int cpu;	   /* CPU of its last record */
	bool known;	   /* a kvm_entry named it */
	uint64_t start_ts; /* 0: no begin caught */
	uint32_t row;	   /* the row of the begin's key, NO_ROW when the key is not known yet */
	/* the rows of its recent keys, direct-mapped: most exits hit here, not the row table */
	uint64_t cache_key[ROW_CACHE];
	uint32_t cache_row[ROW_CACHE]; /* row + 1; 0: empty */
};

struct row_slot {
	uint32_t row; /* index + 1; 0: empty */
};

/*
 * What every record of a row updates, in one cache line of its own (the rows themselves
 * are large, for their histograms): copied into the row at the end. The sum of squares is
 * exact; mean and M2 come from it once, at the end, with no division per sample.
 */
struct hot_row {
	uint64_t events, count, total_ns, min_ns, max_ns;
	unsigned __int128 sumsq;
} __attribute__((aligned(64)));

/*
 * Histogram counters are spread over far more memory than the caches keep while the trace
 * streams through them: a sample's counter is prefetched and incremented PENDING samples
 * later, when it has arrived. Slots start on a dummy counter, so there is no empty case.
 */
#define PENDING 16

struct exits {
	struct vms_exits_opts opts;
	struct vms_trace *trace;
	/* fields */
	struct vms_field entry_vcpu, exit_reason, exit_isa, mmio_type, mmio_gpa, pio_port, pio_rw,
		msr_ecx, msr_write, ue_reason;
	int id_entry, id_exit, id_mmio, id_pio, id_msr, id_ue;
	/* threads */
	struct thread *th;
	size_t th_cap, th_n;
	/* the thread last seen on each CPU: consecutive records of a CPU mostly come from
	 * the same vCPU thread, so this saves most hash lookups (cleared on rehash) */
	struct thread *on_cpu[256];
	/* rows */
	struct vms_exits_row *rows;
	struct hot_row *hot; /* per row */
	size_t nrows, rows_cap;
	uint32_t *pending[PENDING];
	unsigned int pending_i;
	uint32_t dummy;
	struct row_slot *slots;
	size_t slots_cap;
	struct vms_exits_summary sum;
	/* time bins (opts.bins > 0): bin i is [bin_start + i << bin_shift, ...) */
	bool bin_started;
	uint64_t bin_start;
	unsigned int bin_shift, bin_used;
	int err; /* -ENOMEM met while recording: results are incomplete */
};

/* ---- threads ---- */

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct thread *thread_find(struct exits *e, int tid)
{
	if (!e->th_cap)
		return NULL;
	for (size_t i = hash_u64((uint64_t)tid) & (e->th_cap - 1);; i = (i + 1) & (e->th_cap - 1)) {
		if (e->th[i].tid == tid)
			return &e->th[i];
		if (!e->th[i].tid)
			return NULL;
	}
}

static struct thread *thread_add(struct exits *e, int tid)
{
	struct thread *t;

	if ((e->th_n + 1) * 2 > e->th_cap) {
		size_t ncap = e->th_cap ? e->th_cap * 2 : 64;
		struct thread *old = e->th, *nt = calloc(ncap, sizeof(*nt));
		size_t ocap = e->th_cap;

		if (!nt)
			return NULL;
		e->th = nt;
		e->th_cap = ncap;
		memset(e->on_cpu, 0, sizeof(e->on_cpu));
		for (size_t i = 0; i < ocap; i++) {
			if (!old[i].tid)
				continue;
			for (size_t j = hash_u64((uint64_t)old[i].tid) & (ncap - 1);;
			     j = (j + 1) & (ncap - 1)) {
				if (!nt[j].tid) {
					nt[j] = old[i];
					break;
				}
			}
		}
		free(old);
	}
	for (size_t i = hash_u64((uint64_t)tid) & (e->th_cap - 1);; i = (i + 1) & (e->th_cap - 1)) {
		if (!e->th[i].tid) {
			t = &e->th[i];
			t->tid = tid;
			t->vcpu = -1;
			t->cpu = -1;
			t->row = NO_ROW;
			e->th_n++;
			e->sum.threads++;
			return t;
		}
	}
}

/* ---- rows ---- */

static size_t row_hash(int tid, uint32_t isa, uint64_t key, uint32_t info)
{
	return hash_u64(key * 31 + ((uint64_t)(uint32_t)tid << 20) + ((uint64_t)isa << 8) + info);
}

static uint32_t row_get(struct exits *e, int tid, int vcpu, uint32_t isa, uint64_t key,
			uint32_t info)
{
	struct vms_exits_row *r;
	size_t i;

	if (e->slots_cap) {
		for (i = row_hash(tid, isa, key, info) & (e->slots_cap - 1);;
		     i = (i + 1) & (e->slots_cap - 1)) {
			uint32_t k = e->slots[i].row;

			if (!k)
				break;
			r = &e->rows[k - 1];
			if (r->tid == tid && r->key == key && r->info == info && r->isa == isa)
				return k - 1;
		}
	}
	/* A new row: grow the array and, at half load, the slot table. */
	if (e->nrows == e->rows_cap) {
		size_t ncap = e->rows_cap ? e->rows_cap * 2 : 64;
		struct vms_exits_row *nr = realloc(e->rows, ncap * sizeof(*nr));
		struct hot_row *nh;

		if (!nr)
			return NO_ROW;
		e->rows = nr;
		nh = aligned_alloc(_Alignof(struct hot_row), ncap * sizeof(*nh));
		if (!nh)
			return NO_ROW;
		if (e->nrows)
			memcpy(nh, e->hot, e->nrows * sizeof(*nh));
		free(e->hot);
		e->hot = nh;
		e->rows_cap = ncap;
	}
	if ((e->nrows + 1) * 2 > e->slots_cap) {
		size_t ncap = e->slots_cap ? e->slots_cap * 2 : 128;
		struct row_slot *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return NO_ROW;
		free(e->slots);
		e->slots = ns;
		e->slots_cap = ncap;
		for (size_t k = 0; k < e->nrows; k++) {
			const struct vms_exits_row *o = &e->rows[k];

			for (i = row_hash(o->tid, o->isa, o->key, o->info) & (ncap - 1); ns[i].row;
			     i = (i + 1) & (ncap - 1))
				;
			ns[i].row = (uint32_t)k + 1;
		}
	}
	r = &e->rows[e->nrows];
	memset(r, 0, sizeof(*r));
	if (e->opts.bins && !(r->bins = calloc(e->opts.bins, sizeof(*r->bins))))
		return NO_ROW;
	memset(&e->hot[e->nrows], 0, sizeof(e->hot[0]));
	e->hot[e->nrows].min_ns = UINT64_MAX;
	r->tid = tid;
	r->vcpu = vcpu;
	r->vm = -1;
	r->isa = isa;
	r->key = key;
	r->info = info;
	for (i = row_hash(tid, isa, key, info) & (e->slots_cap - 1); e->slots[i].row;
	     i = (i + 1) & (e->slots_cap - 1))
		;
	e->slots[i].row = (uint32_t)e->nrows + 1;
	return (uint32_t)e->nrows++;
}

/* One timed sample. */
static inline __attribute__((always_inline)) void row_sample(struct exits *e, uint32_t row,
							     uint64_t ns)
{
	struct hot_row *h = &e->hot[row];
	uint32_t *counter = vms_hist_counter(&e->rows[row].hist, ns), *due;

	h->count++;
	h->total_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->sumsq += (unsigned __int128)ns * ns;
	if (!counter) {
		e->err = -ENOMEM;
		return;
	}
	__builtin_prefetch(counter, 1);
	due = e->pending[e->pending_i];
	e->pending[e->pending_i] = counter;
	e->pending_i = (e->pending_i + 1) % PENDING;
	(*due)++;
}

/* The histogram increments still pending, and each row's results in the row itself. */
static void rows_settle(struct exits *e)
{
	for (unsigned int i = 0; i < PENDING; i++) {
		(*e->pending[i])++;
		e->pending[i] = &e->dummy;
	}
	for (size_t i = 0; i < e->nrows; i++) {
		struct vms_exits_row *r = &e->rows[i];
		const struct hot_row *h = &e->hot[i];

		r->events = h->events;
		r->count = h->count;
		r->total_ns = h->total_ns;
		r->min_ns = h->count ? h->min_ns : 0;
		r->max_ns = h->max_ns;
		r->hist.count = h->count;
		r->hist.min = r->min_ns;
		r->hist.max = r->max_ns;
	}
}

/* The trace outlasts the bins: double their width, merging pairs. */
static void bins_fold(struct exits *e)
{
	unsigned int half = e->opts.bins / 2;

	for (size_t i = 0; i < e->nrows; i++) {
		uint64_t *b = e->rows[i].bins;

		for (unsigned int k = 0; k < half; k++)
			b[k] = b[2 * k] + b[2 * k + 1];
		memset(b + half, 0, half * sizeof(*b));
	}
	e->bin_used = (e->bin_used + 1) / 2;
	e->bin_shift++;
}

/* A key event of @row at @ts, in its time bin. */
static void bin_count(struct exits *e, uint32_t row, uint64_t ts)
{
	uint64_t d, idx;

	if (!e->bin_started) {
		e->bin_started = true;
		e->bin_start = ts;
	}
	d = ts > e->bin_start ? ts - e->bin_start : 0;
	while ((idx = d >> e->bin_shift) >= e->opts.bins)
		bins_fold(e);
	if (idx >= e->bin_used)
		e->bin_used = (unsigned int)idx + 1;
	e->rows[row].bins[idx]++;
}

/* Count a key event (timed or not) at @ts; returns its row. */
static inline __attribute__((always_inline)) uint32_t key_event(struct exits *e, struct thread *t,
								int tid, uint32_t isa, uint64_t key,
								uint32_t info, uint64_t ts)
{
	uint64_t ck = key ^ ((uint64_t)info << 56) ^ ((uint64_t)isa << 62);
	/* exit reasons below 64 (all of VMX's) get a slot each */
	unsigned int slot = (unsigned int)((key ^ (key >> 6) ^ (key >> 12) ^ (key >> 24) ^
					    info * 17u ^ isa * 5u) &
					   (ROW_CACHE - 1));
	uint32_t row;

	if (t && t->cache_row[slot] && t->cache_key[slot] == ck) {
		row = t->cache_row[slot] - 1;
	} else {
		row = row_get(e, tid, t ? t->vcpu : -1, isa, key, info);
		if (t && row != NO_ROW) {
			t->cache_key[slot] = ck;
			t->cache_row[slot] = row + 1;
		}
	}

	if (row == NO_ROW) {
		e->err = -ENOMEM;
		return NO_ROW;
	}
	e->hot[row].events++;
	if (__builtin_expect(e->opts.bins != 0, 0))
		bin_count(e, row, ts);
	return row;
}

/* ---- the begin / end logic, as perf kvm stat's handle_begin_event/handle_end_event ---- */

static bool vcpu_wanted(const struct exits *e, const struct thread *t)
{
	return e->opts.vcpu < 0 || (t && t->vcpu == e->opts.vcpu);
}

static void begin(struct exits *e, struct thread *t, uint64_t ts, uint32_t row)
{
	if (t->start_ts)
		e->sum.unfinished++;
	t->start_ts = ts;
	t->row = row;
	e->sum.begins++;
}

static void end(struct exits *e, struct thread *t, uint64_t ts, uint32_t row)
{
	if (!t->start_ts)
		return; /* the begin was not caught */
	if (t->row == NO_ROW && row == NO_ROW)
		return; /* neither begin nor end knew the key (perf keeps the begin, so do we) */
	if (t->row == NO_ROW)
		t->row = row;
	if (ts >= t->start_ts)
		row_sample(e, t->row, ts - t->start_ts);
	t->start_ts = 0;
	t->row = NO_ROW;
}

/* The thread of @rec's pid, through the per-CPU cache. */
static inline struct thread *thread_lookup(struct exits *e, const struct vms_record *rec)
{
	struct thread *t;

	if ((unsigned int)rec->cpu < VMS_ARRAY_SIZE(e->on_cpu)) {
		t = e->on_cpu[rec->cpu];
		if (t && t->tid == rec->pid)
			return t;
		t = thread_find(e, rec->pid);
		e->on_cpu[rec->cpu] = t;
		return t;
	}
	return thread_find(e, rec->pid);
}

/* The thread of @rec; NULL when no kvm_entry has named it yet (or it is filtered out). */
static inline __attribute__((always_inline)) struct thread *thread_of(struct exits *e,
								      const struct vms_record *rec)
{
	struct thread *t = thread_lookup(e, rec);

	if (t)
		t->cpu = rec->cpu;
	return t && t->known && vcpu_wanted(e, t) ? t : NULL;
}

static void on_kvm_entry(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;
	struct thread *t = thread_lookup(e, rec);

	e->sum.entries++;
	if (!t) {
		t = thread_add(e, rec->pid);
		if (!t) {
			e->err = -ENOMEM;
			return;
		}
	}
	t->cpu = rec->cpu;
	t->vcpu = (int)vms_field_u64(&e->entry_vcpu, rec);
	t->known = true;
	if (!vcpu_wanted(e, t))
		return;
	/* kvm_entry ends vmexit, mmio writes, ioport, msr and userspace exits */
	end(e, t, rec->ts, NO_ROW);
}

static void on_kvm_exit(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;
	struct thread *t = thread_of(e, rec);

	if (e->opts.event == VMS_EXITS_VMEXIT) {
		uint32_t isa = (uint32_t)vms_field_u64(&e->exit_isa, rec);
		uint32_t row;

		if (!isa)
			isa = e->opts.isa;
		if (!t && e->opts.vcpu >= 0)
			return; /* another vCPU than the one asked for, or not known to be it */
		row = key_event(e, t, rec->pid, isa, vms_field_u64(&e->exit_reason, rec), 0,
				rec->ts);
		if (!t) {
			e->sum.before_first_entry++;
			return;
		}
		if (row != NO_ROW)
			begin(e, t, rec->ts, row);
	} else if (e->opts.event == VMS_EXITS_MMIO && t) {
		begin(e, t, rec->ts, NO_ROW); /* a read's begin: the key comes with the end */
	}
}

static void on_mmio(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;
	struct thread *t = thread_of(e, rec);
	uint32_t type = (uint32_t)vms_field_u64(&e->mmio_type, rec), row;

	if (!t && e->opts.vcpu >= 0)
		return;
	row = key_event(e, t, rec->pid, 0, vms_field_u64(&e->mmio_gpa, rec), type, rec->ts);
	if (!t || row == NO_ROW)
		return;
	if (type == VMS_MMIO_WRITE)
		begin(e, t, rec->ts, row);
	else if (type == VMS_MMIO_READ)
		end(e, t, rec->ts, row);
}

/* ioport, msr and userspace: a key event begins, the next kvm_entry ends. */
static void on_keyed_begin(struct exits *e, const struct vms_record *rec, uint64_t key,
			   uint32_t info)
{
	struct thread *t = thread_of(e, rec);
	uint32_t row;

	if (!t && e->opts.vcpu >= 0)
		return;
	row = key_event(e, t, rec->pid, 0, key, info, rec->ts);
	if (!t) {
		e->sum.before_first_entry++;
		return;
	}
	if (row != NO_ROW)
		begin(e, t, rec->ts, row);
}

static void on_pio(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;

	on_keyed_begin(e, rec, vms_field_u64(&e->pio_port, rec),
		       (uint32_t)vms_field_u64(&e->pio_rw, rec));
}

static void on_msr(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;

	on_keyed_begin(e, rec, vms_field_u64(&e->msr_ecx, rec),
		       (uint32_t)vms_field_u64(&e->msr_write, rec));
}

static void on_userspace(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;

	on_keyed_begin(e, rec, vms_field_u64(&e->ue_reason, rec), 0);
}

/* Events of a CPU were lost: an exit begun on it may have ended in the gap. */
static void on_lost(void *priv, const struct vms_record *rec)
{
	struct exits *e = priv;

	for (size_t i = 0; i < e->th_cap; i++) {
		struct thread *t = &e->th[i];

		if (t->tid && t->cpu == rec->cpu && t->start_ts) {
			t->start_ts = 0;
			t->row = NO_ROW;
			e->sum.dropped_lost++;
		}
	}
}

static int sub(struct vms_session *s, struct exits *e, int id, vms_handler_fn fn)
{
	return id < 0 ? 0 : vms_session_subscribe(s, id, fn, e);
}

static int exits_init(void *priv, struct vms_session *s, const void *opts)
{
	struct exits *e = priv;
	struct vms_trace *t = vms_session_trace(s);
	int ret;

	e->trace = t;
	for (unsigned int i = 0; i < PENDING; i++)
		e->pending[i] = &e->dummy;
	e->opts = (struct vms_exits_opts){ sizeof(e->opts), VMS_EXITS_VMEXIT, -1, VMS_X86_UNKNOWN };
	if (opts) {
		const struct vms_exits_opts *o = opts;

		/* a caller built against an older, shorter struct leaves the rest default */
		memcpy(&e->opts, o, o->sz && o->sz < sizeof(*o) ? o->sz : sizeof(*o));
		e->opts.sz = sizeof(e->opts);
	}
	if (e->opts.bins % 2 || e->opts.bins > VMS_EXITS_MAX_BINS)
		return -EINVAL;
	e->bin_shift = 10; /* 1 us bins at first: a short trace keeps its detail */
	e->sum.event = e->opts.event;
	e->id_entry = vms_trace_event_id(t, "kvm", "kvm_entry");
	e->id_exit = vms_trace_event_id(t, "kvm", "kvm_exit");
	e->id_mmio = vms_trace_event_id(t, "kvm", "kvm_mmio");
	e->id_pio = vms_trace_event_id(t, "kvm", "kvm_pio");
	e->id_msr = vms_trace_event_id(t, "kvm", "kvm_msr");
	e->id_ue = vms_trace_event_id(t, "kvm", "kvm_userspace_exit");
	e->sum.has_entry_format = e->id_entry >= 0;
	vms_trace_field(t, e->id_entry, "vcpu_id", &e->entry_vcpu);
	vms_trace_field(t, e->id_exit, "exit_reason", &e->exit_reason);
	vms_trace_field(t, e->id_exit, "isa", &e->exit_isa);
	vms_trace_field(t, e->id_mmio, "type", &e->mmio_type);
	vms_trace_field(t, e->id_mmio, "gpa", &e->mmio_gpa);
	vms_trace_field(t, e->id_pio, "port", &e->pio_port);
	vms_trace_field(t, e->id_pio, "rw", &e->pio_rw);
	vms_trace_field(t, e->id_msr, "ecx", &e->msr_ecx);
	vms_trace_field(t, e->id_msr, "write", &e->msr_write);
	vms_trace_field(t, e->id_ue, "reason", &e->ue_reason);
	if ((ret = sub(s, e, e->id_entry, on_kvm_entry)) ||
	    (ret = vms_session_subscribe(s, (int)VMS_RECORD_LOST, on_lost, e)))
		return ret;
	switch (e->opts.event) {
	case VMS_EXITS_VMEXIT:
		return sub(s, e, e->id_exit, on_kvm_exit);
	case VMS_EXITS_MMIO:
		if ((ret = sub(s, e, e->id_exit, on_kvm_exit)))
			return ret;
		return sub(s, e, e->id_mmio, on_mmio);
	case VMS_EXITS_IOPORT:
		return sub(s, e, e->id_pio, on_pio);
	case VMS_EXITS_MSR:
		return sub(s, e, e->id_msr, on_msr);
	case VMS_EXITS_USERSPACE:
		return sub(s, e, e->id_ue, on_userspace);
	}
	return -EINVAL;
}

static void exits_finish(void *priv, struct vms_session *s)
{
	struct exits *e = priv;

	rows_settle(e);
	for (size_t i = 0; i < e->th_cap; i++)
		if (e->th[i].tid && e->th[i].start_ts)
			e->sum.unfinished++;
	/* mean and M2 from the exact sums: M2 = sum(x^2) - (sum x)^2 / n; the totals are the
	 * rows' sums (kept out of the per-record path) */
	for (size_t i = 0; i < e->nrows; i++) {
		struct vms_exits_row *r = &e->rows[i];

		e->sum.events += r->events;
		e->sum.samples += r->count;
		e->sum.total_ns += r->total_ns;

		if (!r->count)
			continue;
		r->mean_ns = (double)r->total_ns / (double)r->count;
		r->m2 = (double)((long double)e->hot[i].sumsq - (long double)r->total_ns *
									(long double)r->total_ns /
									(long double)r->count);
		if (r->m2 < 0)
			r->m2 = 0;
	}
	if (e->bin_used) {
		e->sum.bin_start_ts = e->bin_start;
		e->sum.bin_ns = 1ULL << e->bin_shift;
		e->sum.nbins = e->bin_used;
	}
	e->sum.lost_events = vms_trace_lost(vms_session_trace(s));
	e->sum.lost_windows = vms_trace_lost_windows(vms_session_trace(s));
	/* vCPU indexes learned after a thread's first rows; where no kvm_entry named the
	 * thread, its name in the trace's saved cmdlines may ("CPU 3/KVM", as QEMU names
	 * them). */
	for (size_t i = 0; i < e->nrows; i++) {
		struct thread *t = thread_find(e, e->rows[i].tid);
		const char *comm;
		unsigned int idx;
		char tail[8];

		if (t && t->vcpu >= 0) {
			e->rows[i].vcpu = t->vcpu;
		} else if ((comm = vms_trace_comm(e->trace, e->rows[i].tid)) &&
			   sscanf(comm, "CPU %u/%7s", &idx, tail) == 2 && !strcmp(tail, "KVM")) {
			e->rows[i].vcpu = (int)idx;
		}
	}
}

static void exits_free(void *priv)
{
	struct exits *e = priv;

	for (size_t i = 0; i < e->nrows; i++) {
		vms_hist_free(&e->rows[i].hist);
		free(e->rows[i].bins);
	}
	free(e->rows);
	free(e->hot);
	free(e->slots);
	free(e->th);
}

static int exits_error(const void *priv)
{
	const struct exits *e = priv;

	return e->err;
}

const struct vms_analysis_ops vms_exits_ops = {
	.name = "exits",
	.priv_size = sizeof(struct exits),
	.init = exits_init,
	.finish = exits_finish,
	.free = exits_free,
	.error = exits_error,
};

/* ---- results ---- */

void vms_exits_summary(const void *priv, struct vms_exits_summary *out)
{
	*out = ((const struct exits *)priv)->sum;
}

const struct vms_exits_row *vms_exits_rows(const void *priv, size_t *n)
{
	const struct exits *e = priv;

	*n = e->nrows;
	return e->rows;
}

/* Merge @src into @dst (Chan et al.'s parallel update of mean and M2); @nbins time bins. */
static int row_merge(struct vms_exits_row *dst, const struct vms_exits_row *src, unsigned int nbins)
{
	uint64_t n = dst->count + src->count;

	if (src->bins) {
		if (!dst->bins && !(dst->bins = calloc(nbins, sizeof(*dst->bins))))
			return -ENOMEM;
		for (unsigned int k = 0; k < nbins; k++)
			dst->bins[k] += src->bins[k];
	}

	dst->events += src->events;
	if (src->count) {
		double delta = src->mean_ns - dst->mean_ns;

		if (!dst->count || src->min_ns < dst->min_ns)
			dst->min_ns = src->min_ns;
		if (src->max_ns > dst->max_ns)
			dst->max_ns = src->max_ns;
		dst->m2 += src->m2 +
			   delta * delta * (double)dst->count * (double)src->count / (double)n;
		dst->mean_ns += delta * (double)src->count / (double)n;
		dst->count = n;
		dst->total_ns += src->total_ns;
	}
	return vms_hist_merge(&dst->hist, &src->hist);
}

int vms_exits_group(const void *priv, enum vms_exits_group by, int (*vm_of_tid)(int, void *),
		    void *ctx, int only_vm, struct vms_exits_row **out, size_t *n)
{
	const struct exits *e = priv;
	struct vms_exits_row *g = NULL;
	size_t ng = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < e->nrows; i++) {
		const struct vms_exits_row *r = &e->rows[i];
		int vm = vm_of_tid ? vm_of_tid(r->tid, ctx) : -1;
		size_t k;

		if (only_vm >= 0 && vm != only_vm)
			continue;
		if (by == VMS_EXITS_BY_KEY)
			vm = only_vm;

		for (k = 0; k < ng; k++) {
			if (g[k].key == r->key && g[k].info == r->info && g[k].isa == r->isa &&
			    (by != VMS_EXITS_BY_VCPU || g[k].tid == r->tid) &&
			    (by != VMS_EXITS_BY_VM || g[k].vm == vm))
				break;
		}
		if (k == ng) {
			struct vms_exits_row *ngp = realloc(g, (ng + 1) * sizeof(*g));

			if (!ngp) {
				vms_exits_rows_free(g, ng);
				return -ENOMEM;
			}
			g = ngp;
			memset(&g[ng], 0, sizeof(g[ng]));
			g[ng].tid = by == VMS_EXITS_BY_VCPU ? r->tid : -1;
			g[ng].vcpu = by == VMS_EXITS_BY_VCPU ? r->vcpu : -1;
			g[ng].vm = by == VMS_EXITS_BY_KEY ? only_vm : vm;
			g[ng].isa = r->isa;
			g[ng].key = r->key;
			g[ng].info = r->info;
			ng++;
		}
		if (row_merge(&g[k], r, e->opts.bins)) {
			vms_exits_rows_free(g, ng);
			return -ENOMEM;
		}
	}
	*out = g;
	*n = ng;
	return 0;
}

void vms_exits_rows_free(struct vms_exits_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		vms_hist_free(&rows[i].hist);
		free(rows[i].bins);
	}
	free(rows);
}

const char *vms_exits_key_name(const void *priv, const struct vms_exits_row *r, char *buf,
			       size_t len)
{
	const struct exits *e = priv;
	const char *name;

	switch (e->opts.event) {
	case VMS_EXITS_VMEXIT:
		name = vms_x86_exit_reason_name((enum vms_x86_isa)r->isa, (uint32_t)r->key);
		if (name && (r->isa != VMS_X86_VMX || !(r->key & ~0xffffULL)))
			snprintf(buf, len, "%s", name);
		else if (name)
			snprintf(buf, len, "%s|%#llx", name,
				 (unsigned long long)(r->key & ~0xffffULL));
		else
			snprintf(buf, len, "%llu", (unsigned long long)r->key);
		break;
	case VMS_EXITS_MMIO:
		/* perf names unsatisfied reads (type 0) "R" too; they are rows of their own */
		snprintf(buf, len, "%#llx:%s", (unsigned long long)r->key,
			 r->info == VMS_MMIO_WRITE  ? "W"
			 : r->info == VMS_MMIO_READ ? "R"
						    : "U");
		break;
	case VMS_EXITS_IOPORT:
		snprintf(buf, len, "%#llx:%s", (unsigned long long)r->key,
			 r->info ? "POUT" : "PIN");
		break;
	case VMS_EXITS_MSR:
		snprintf(buf, len, "%#llx:%s", (unsigned long long)r->key, r->info ? "W" : "R");
		break;
	case VMS_EXITS_USERSPACE:
		name = vms_kvm_exit_name((uint32_t)r->key);
		if (name)
			snprintf(buf, len, "%s", name);
		else
			snprintf(buf, len, "%llu", (unsigned long long)r->key);
		break;
	}
	return buf;
}

static const char *const event_names[] = { "vmexit", "mmio", "ioport", "msr", "userspace" };

const char *vms_exits_event_name(enum vms_exits_event ev)
{
	return (unsigned int)ev < VMS_ARRAY_SIZE(event_names) ? event_names[ev] : "?";
}

int vms_exits_event_parse(const char *s, enum vms_exits_event *ev)
{
	for (size_t i = 0; i < VMS_ARRAY_SIZE(event_names); i++) {
		if (!strcmp(s, event_names[i])) {
			*ev = (enum vms_exits_event)i;
			return 0;
		}
	}
	return -EINVAL;
}

double vms_exits_row_stddev(const struct vms_exits_row *r)
{
	return r->count > 1 ? sqrt(r->m2 / (double)(r->count - 1)) : 0.0;
}

double vms_exits_row_sem_pct(const struct vms_exits_row *r)
{
	if (r->count < 2 || r->mean_ns <= 0)
		return 0.0;
	return 100.0 * sqrt(r->m2 / (double)(r->count - 1) / (double)r->count) / r->mean_ns;
}
