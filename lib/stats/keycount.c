// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Trace events counted per thread and key field (vmscope/stats.h: vms_keycount_*), e.g.
 * kvm_exit by exit reason for every vCPU thread: kvm_stat's drill-down, per vCPU.
 *
 * Where the kernel has hist triggers, "hist:keys=common_pid,KEY" on each event in a tracefs
 * instance of our own does all the counting and nothing is traced; reading the "hist" file
 * gives the table. Where it has none (CONFIG_HIST_TRIGGERS off, as on this project's
 * development host), the events are traced in a live instance and a thread counts them
 * into a fixed table as they come: what `perf kvm stat live` does, with the ring buffer's
 * lost events counted rather than hidden. The counting path allocates nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tracefs/tracefs.h>

#include "vmscope/stats.h"
#include "vmscope/trace.h"
#include "../trace/trace-local.h"

#define DEFAULT_ENTRIES 8192
#define MAX_EVENTS 16

struct slot {
	uint64_t key;
	uint64_t count;
	int tid;
	uint32_t event; /* UINT32_MAX: empty */
};

struct vms_keycount {
	enum vms_keycount_backend backend;
	size_t nev;
	struct vms_keyed_event ev[MAX_EVENTS];
	bool has[MAX_EVENTS]; /* this kernel has the event */
	unsigned int entries;
	struct vms_keycount_entry *out; /* what read() hands out: entries x nev */
	size_t nout;
	uint64_t dropped;
	/* hist */
	struct tracefs_instance *inst;
	char *text; /* the last hist file read */
	/* stream */
	struct vms_trace *trace;
	int ids[MAX_EVENTS];
	struct vms_field keyf[MAX_EVENTS];
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	struct slot *slots; /* open addressing, cap a power of 2 */
	size_t cap, used;
	uint64_t s_dropped; /* table full or ring buffer lost (under lock) */
};

/* ---- the hist file ---- */

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* An unsigned decimal number at *p (the kernel prints keys and values with %llu); false
 * if there is none or it overflows. */
static bool read_num(const char **p, const char *end, uint64_t *v)
{
	const char *q = skip_space(*p, end);
	uint64_t x = 0;
	int digits = 0;

	while (q < end && *q >= '0' && *q <= '9') {
		if (x > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(*q - '0');
		q++;
		digits++;
	}
	if (!digits)
		return false;
	*v = x;
	*p = q;
	return true;
}

/* "NAME:" at *p, NAME being [A-Za-z0-9_.]; its span in *name, *nlen. */
static bool read_name(const char **p, const char *end, const char **name, size_t *nlen)
{
	const char *q = skip_space(*p, end), *s = q;

	while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			   (*q >= '0' && *q <= '9') || *q == '_' || *q == '.'))
		q++;
	if (q == s || q >= end || *q != ':')
		return false;
	*name = s;
	*nlen = (size_t)(q - s);
	*p = q + 1;
	return true;
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && !memcmp(name, want, nlen);
}

/* One "{ common_pid: N, KEY: N } hitcount: N ..." line. */
static bool parse_entry(const char *p, const char *end, const char *key,
			struct vms_keycount_entry *e)
{
	bool have_pid = false, have_key = false;
	const char *name;
	size_t nlen;
	uint64_t v;

	p = skip_space(p, end);
	if (p >= end || *p != '{')
		return false;
	p++;
	for (;;) {
		if (!read_name(&p, end, &name, &nlen))
			return false;
		if (name_is(name, nlen, "common_pid")) {
			if (have_pid || !read_num(&p, end, &v) || v > INT32_MAX)
				return false;
			e->tid = (int)v;
			have_pid = true;
		} else if (name_is(name, nlen, key)) {
			if (have_key || !read_num(&p, end, &v))
				return false;
			e->key = v;
			have_key = true;
		} else {
			return false;
		}
		p = skip_space(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}') {
			p++;
			break;
		}
		return false;
	}
	if (!have_pid || !have_key || !read_name(&p, end, &name, &nlen) ||
	    !name_is(name, nlen, "hitcount") || !read_num(&p, end, &e->count))
		return false;
	/* Other values may follow ("bytes_req: 32"): not ours to read. */
	return p == end || *p == ' ' || *p == '\t';
}

int vms_hist_parse(const char *text, size_t len, const char *key, struct vms_keycount_entry *out,
		   size_t max, size_t *n, uint64_t *dropped)
{
	const char *p = text, *end = text + len;
	bool totals = false;

	*n = 0;
	*dropped = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *q;
		struct vms_keycount_entry e = { 0, 0, 0, 0 };
		const char *name;
		size_t nlen;
		uint64_t v;

		if (!eol)
			eol = end;
		q = skip_space(p, eol);
		if (q == eol || *q == '#') {
			/* blank or a comment */
		} else if (!totals && *q == '{') {
			if (!parse_entry(q, eol, key, &e))
				return -VMS_E_PARSE;
			if (*n < max)
				out[(*n)++] = e;
			else
				*dropped += e.count;
		} else if (eol - q >= 7 && !memcmp(q, "Totals:", 7)) {
			totals = true;
		} else if (totals && read_name(&q, eol, &name, &nlen)) {
			/* "Hits: N", "Entries: N", "Dropped: N" */
			if (!read_num(&q, eol, &v))
				return -VMS_E_PARSE;
			if (name_is(name, nlen, "Dropped"))
				*dropped += v;
		} else {
			return -VMS_E_PARSE;
		}
		p = eol + 1;
	}
	return 0;
}

/* ---- counting here, from a live trace ---- */

static size_t slot_hash(uint32_t event, int tid, uint64_t key)
{
	uint64_t h = (uint64_t)event * 0x9e3779b97f4a7c15ULL ^
		     (uint64_t)(uint32_t)tid * 0xc2b2ae3d27d4eb4fULL ^ key * 0x165667b19e3779f9ULL;

	return (size_t)(h ^ (h >> 29));
}

static void count_one(struct vms_keycount *kc, uint32_t event, int tid, uint64_t key)
{
	size_t m = kc->cap - 1, i = slot_hash(event, tid, key) & m;

	for (;;) {
		struct slot *s = &kc->slots[i];

		if (s->event == event && s->tid == tid && s->key == key) {
			s->count++;
			return;
		}
		if (s->event == UINT32_MAX) {
			if (kc->used >= (size_t)kc->entries * kc->nev) {
				kc->s_dropped++;
				return;
			}
			s->event = event;
			s->tid = tid;
			s->key = key;
			s->count = 1;
			kc->used++;
			return;
		}
		i = (i + 1) & m;
	}
}

static void *stream_main(void *arg)
{
	struct vms_keycount *kc = arg;
	struct vms_record rec;

	while (vms_trace_next(kc->trace, &rec) > 0) {
		pthread_mutex_lock(&kc->lock);
		if (rec.type == VMS_RECORD_LOST) {
			kc->s_dropped += rec.lost_count ? rec.lost_count : 1;
		} else {
			for (size_t e = 0; e < kc->nev; e++)
				if (kc->has[e] && (uint32_t)kc->ids[e] == rec.type) {
					count_one(kc, (uint32_t)e, rec.pid,
						  vms_field_u64(&kc->keyf[e], &rec));
					break;
				}
		}
		pthread_mutex_unlock(&kc->lock);
	}
	return NULL;
}

static int stream_open(struct vms_keycount *kc, const struct vms_keycount_opts *o, char *msg,
		       size_t msglen)
{
	char names[MAX_EVENTS][160];
	const char *events[MAX_EVENTS + 1];
	struct vms_live_opts lo = { .sz = sizeof(lo), .events = events };
	size_t ne = 0, found = 0;
	int ret;

	for (size_t e = 0; e < kc->nev; e++) {
		snprintf(names[e], sizeof(names[e]), "%s:%s", kc->ev[e].system, kc->ev[e].name);
		events[ne++] = names[e];
	}
	events[ne] = NULL;
	lo.buffer_kb = o && o->buffer_kb ? o->buffer_kb : 4096;
	/* Counts are read about once a second: reading the CPUs 10 times a second is plenty,
	 * as long as the ring buffer holds 100 ms of events (4 MiB per CPU: some 50 000
	 * kvm_exit records). */
	lo.poll_ms = 100;
	ret = vms_trace_open_live(&lo, &kc->trace);
	if (ret) {
		snprintf(msg, msglen, "%s", vms_trace_open_error());
		return ret;
	}
	for (size_t e = 0; e < kc->nev; e++) {
		kc->ids[e] = vms_trace_event_id(kc->trace, kc->ev[e].system, kc->ev[e].name);
		kc->has[e] = kc->ids[e] >= 0 &&
			     !vms_trace_field(kc->trace, kc->ids[e], kc->ev[e].key, &kc->keyf[e]);
		found += kc->has[e];
	}
	if (!found) {
		snprintf(msg, msglen, "this kernel has none of the events to count");
		return -ENOENT;
	}
	kc->cap = 16;
	while (kc->cap < 2 * (size_t)kc->entries * kc->nev)
		kc->cap *= 2;
	kc->slots = malloc(kc->cap * sizeof(*kc->slots));
	if (!kc->slots)
		return -ENOMEM;
	for (size_t i = 0; i < kc->cap; i++)
		kc->slots[i].event = UINT32_MAX;
	ret = pthread_create(&kc->thread, NULL, stream_main, kc);
	if (ret) {
		snprintf(msg, msglen, "cannot start the counting thread: %s", strerror(ret));
		return -ret;
	}
	kc->thread_started = true;
	kc->backend = VMS_KEYCOUNT_STREAM;
	return 0;
}

/* ---- counting in the kernel, with hist triggers ---- */

static int hist_open(struct vms_keycount *kc, char *msg, size_t msglen)
{
	char name[64], trig[256];
	size_t found = 0;

	vms_trace_remove_stale_instances();
	snprintf(name, sizeof(name), "vmscope-%d-keys", getpid());
	kc->inst = tracefs_instance_create(name);
	if (!kc->inst) {
		int err = errno ? errno : EIO;

		snprintf(msg, msglen, "cannot create the tracefs instance %s: %s (root needed)",
			 name, strerror(err));
		return -err;
	}
	for (size_t e = 0; e < kc->nev; e++) {
		const struct vms_keyed_event *ev = &kc->ev[e];

		if (!tracefs_event_file_exists(kc->inst, ev->system, ev->name, "hist"))
			continue;
		snprintf(trig, sizeof(trig), "hist:keys=common_pid,%s:vals=hitcount:size=%u",
			 ev->key, kc->entries);
		if (tracefs_event_file_write(kc->inst, ev->system, ev->name, "trigger", trig) < 0) {
			int err = errno ? errno : EINVAL;

			snprintf(msg, msglen, "the kernel refused the hist trigger on %s:%s: %s",
				 ev->system, ev->name, strerror(err));
			return -err;
		}
		kc->has[e] = true;
		found++;
	}
	if (!found) {
		snprintf(msg, msglen,
			 "this kernel has no hist triggers (CONFIG_HIST_TRIGGERS) "
			 "for these events");
		return -EOPNOTSUPP;
	}
	kc->backend = VMS_KEYCOUNT_HIST;
	return 0;
}

static void hist_close(struct vms_keycount *kc)
{
	char trig[256];

	if (!kc->inst)
		return;
	/* Triggers hold the events; they go before the instance can. */
	for (size_t e = 0; e < kc->nev; e++) {
		if (!kc->has[e] || kc->backend != VMS_KEYCOUNT_HIST)
			continue;
		snprintf(trig, sizeof(trig), "!hist:keys=common_pid,%s:vals=hitcount:size=%u",
			 kc->ev[e].key, kc->entries);
		tracefs_event_file_write(kc->inst, kc->ev[e].system, kc->ev[e].name, "trigger",
					 trig);
	}
	tracefs_instance_destroy(kc->inst);
	tracefs_instance_free(kc->inst);
	kc->inst = NULL;
}

/* ---- the counter ---- */

int vms_keycount_open(const struct vms_keyed_event *ev, size_t nev,
		      const struct vms_keycount_opts *opts, struct vms_keycount **out, char *msg,
		      size_t msglen)
{
	enum vms_keycount_backend want = opts ? opts->backend : VMS_KEYCOUNT_AUTO;
	struct vms_keycount *kc;
	int ret;

	*out = NULL;
	if (msglen)
		msg[0] = '\0';
	if ((opts && opts->sz < sizeof(*opts)) || !nev || nev > MAX_EVENTS)
		return -EINVAL;
	kc = calloc(1, sizeof(*kc));
	if (!kc)
		return -ENOMEM;
	pthread_mutex_init(&kc->lock, NULL);
	kc->nev = nev;
	memcpy(kc->ev, ev, nev * sizeof(*ev));
	kc->entries = opts && opts->entries ? opts->entries : DEFAULT_ENTRIES;
	kc->out = calloc((size_t)kc->entries * nev, sizeof(*kc->out));
	if (!kc->out) {
		vms_keycount_free(kc);
		return -ENOMEM;
	}
	ret = want == VMS_KEYCOUNT_STREAM ? -EOPNOTSUPP : hist_open(kc, msg, msglen);
	if (ret == -EOPNOTSUPP && want != VMS_KEYCOUNT_HIST) {
		hist_close(kc);
		memset(kc->has, 0, sizeof(kc->has));
		ret = stream_open(kc, opts, msg, msglen);
	}
	if (ret) {
		vms_keycount_free(kc);
		return ret;
	}
	*out = kc;
	return 0;
}

enum vms_keycount_backend vms_keycount_backend(const struct vms_keycount *kc)
{
	return kc->backend;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct vms_keycount_entry *x = a, *y = b;

	if (x->event != y->event)
		return x->event < y->event ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

static int hist_read(struct vms_keycount *kc)
{
	size_t max = (size_t)kc->entries * kc->nev;

	kc->nout = 0;
	kc->dropped = 0;
	for (size_t e = 0; e < kc->nev; e++) {
		const struct vms_keyed_event *ev = &kc->ev[e];
		uint64_t dropped;
		size_t n;
		int size = 0, ret;

		if (!kc->has[e])
			continue;
		free(kc->text);
		kc->text = tracefs_event_file_read(kc->inst, ev->system, ev->name, "hist", &size);
		if (!kc->text)
			return errno ? -errno : -EIO;
		ret = vms_hist_parse(kc->text, (size_t)size, ev->key, kc->out + kc->nout,
				     max - kc->nout, &n, &dropped);
		if (ret)
			return ret;
		for (size_t i = 0; i < n; i++)
			kc->out[kc->nout + i].event = (uint32_t)e;
		kc->nout += n;
		kc->dropped += dropped;
	}
	return 0;
}

static void stream_read(struct vms_keycount *kc)
{
	size_t max = (size_t)kc->entries * kc->nev;

	kc->nout = 0;
	pthread_mutex_lock(&kc->lock);
	for (size_t i = 0; i < kc->cap && kc->nout < max; i++) {
		const struct slot *s = &kc->slots[i];

		if (s->event == UINT32_MAX)
			continue;
		kc->out[kc->nout].event = s->event;
		kc->out[kc->nout].tid = s->tid;
		kc->out[kc->nout].key = s->key;
		kc->out[kc->nout].count = s->count;
		kc->nout++;
	}
	kc->dropped = kc->s_dropped;
	pthread_mutex_unlock(&kc->lock);
}

int vms_keycount_read(struct vms_keycount *kc, const struct vms_keycount_entry **out, size_t *n)
{
	int ret = 0;

	if (kc->backend == VMS_KEYCOUNT_HIST)
		ret = hist_read(kc);
	else
		stream_read(kc);
	qsort(kc->out, kc->nout, sizeof(*kc->out), entry_cmp);
	*out = kc->out;
	*n = kc->nout;
	return ret;
}

uint64_t vms_keycount_dropped(const struct vms_keycount *kc)
{
	return kc->dropped;
}

void vms_keycount_free(struct vms_keycount *kc)
{
	if (!kc)
		return;
	if (kc->trace) {
		vms_trace_stop(kc->trace);
		if (kc->thread_started)
			pthread_join(kc->thread, NULL);
		vms_trace_close(kc->trace);
	}
	hist_close(kc);
	pthread_mutex_destroy(&kc->lock);
	free(kc->slots);
	free(kc->out);
	free(kc->text);
	free(kc);
}
