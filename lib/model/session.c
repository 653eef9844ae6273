// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The session: one trace, its analyses, and the dispatcher between them. Subscriptions are
 * kept in a table indexed by event id, so dispatching a record is one bounds check and a
 * short loop over its handlers; records of types nobody subscribed to cost nothing more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/analysis.h"

struct handler {
	vms_handler_fn fn;
	void *priv;
};

struct sub_list {
	struct handler *h;
	unsigned int n;
};

struct analysis {
	const struct vms_analysis_ops *ops;
	void *priv;
};

struct vms_session {
	struct vms_trace *trace;
	struct sub_list *subs; /* indexed by event id, VMS_RECORD_LOST included */
	unsigned int nsubs;
	struct analysis *an;
	unsigned int nan;
	uint64_t first_ts, last_ts;
	char err[160]; /* vms_session_error() */
};

int vms_session_new(struct vms_trace *t, struct vms_session **out)
{
	struct vms_session *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->trace = t;
	*out = s;
	return 0;
}

void vms_session_free(struct vms_session *s)
{
	if (!s)
		return;
	for (unsigned int i = 0; i < s->nan; i++) {
		if (s->an[i].ops->free)
			s->an[i].ops->free(s->an[i].priv);
		free(s->an[i].priv);
	}
	for (unsigned int i = 0; i < s->nsubs; i++)
		free(s->subs[i].h);
	free(s->subs);
	free(s->an);
	free(s);
}

int vms_session_add(struct vms_session *s, const struct vms_analysis_ops *ops, const void *opts,
		    void **priv)
{
	struct analysis *na;
	void *p;
	int ret;

	p = calloc(1, ops->priv_size ? ops->priv_size : 1);
	if (!p)
		return -ENOMEM;
	na = realloc(s->an, (s->nan + 1) * sizeof(*na));
	if (!na) {
		free(p);
		return -ENOMEM;
	}
	s->an = na;
	s->an[s->nan++] = (struct analysis){ ops, p };
	ret = ops->init ? ops->init(p, s, opts) : 0;
	if (ret)
		return ret; /* freed with the session */
	if (priv)
		*priv = p;
	return 0;
}

int vms_session_subscribe(struct vms_session *s, int id, vms_handler_fn fn, void *priv)
{
	struct sub_list *l;
	struct handler *nh;

	if (id < 0 || id > (int)VMS_RECORD_LOST || !fn)
		return -EINVAL;
	if ((unsigned int)id >= s->nsubs) {
		unsigned int n = (unsigned int)id + 1;
		struct sub_list *ns = realloc(s->subs, n * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		memset(ns + s->nsubs, 0, (n - s->nsubs) * sizeof(*ns));
		s->subs = ns;
		s->nsubs = n;
	}
	l = &s->subs[id];
	nh = realloc(l->h, (l->n + 1) * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	l->h = nh;
	l->h[l->n++] = (struct handler){ fn, priv };
	return 0;
}

/* The reader hands out only the records someone subscribed to; it walks over the rest. */
static int select_subscribed(struct vms_session *s)
{
	int ids[256] = { 0 }, *v = ids, ret;
	size_t n = 0;

	for (unsigned int i = 0; i < s->nsubs && i < VMS_RECORD_LOST; i++)
		n += s->subs[i].n != 0;
	if (n > VMS_ARRAY_SIZE(ids) && !(v = malloc(n * sizeof(*v))))
		return -ENOMEM;
	n = 0;
	for (unsigned int i = 0; i < s->nsubs && i < VMS_RECORD_LOST; i++)
		if (s->subs[i].n)
			v[n++] = (int)i;
	ret = vms_trace_select(s->trace, v, n);
	if (v != ids)
		free(v);
	return ret;
}

int vms_session_run(struct vms_session *s, void (*progress)(uint64_t, void *), void *ctx)
{
	const struct vms_record *recs;
	uint64_t n = 0, next_progress = 1u << 20;
	int ret;

	if ((ret = select_subscribed(s)))
		return ret;
	while ((ret = vms_trace_next_batch(s->trace, &recs)) > 0) {
		for (int k = 0; k < ret; k++) {
			const struct vms_record *rec = &recs[k];

			/* the records were read on another CPU (see vms_trace_next_batch()) */
			if (k + 4 < ret)
				__builtin_prefetch(recs[k + 4].data);

			if (rec->type < s->nsubs) {
				const struct sub_list *l = &s->subs[rec->type];

				for (unsigned int i = 0; i < l->n; i++)
					l->h[i].fn(l->h[i].priv, rec);
			}
		}
		n += (unsigned int)ret;
		if (progress && n >= next_progress) {
			progress(n, ctx);
			next_progress = n + (1u << 20);
		}
	}
	vms_trace_span(s->trace, &s->first_ts, &s->last_ts);
	for (unsigned int i = 0; i < s->nan; i++)
		if (s->an[i].ops->finish)
			s->an[i].ops->finish(s->an[i].priv, s);
	for (unsigned int i = 0; i < s->nan && !ret; i++) {
		const struct vms_analysis_ops *ops = s->an[i].ops;

		if (ops->error && (ret = ops->error(s->an[i].priv)))
			snprintf(s->err, sizeof(s->err),
				 "the %s analysis: %s; its results are incomplete", ops->name,
				 vms_strerror(ret));
	}
	return ret;
}

const char *vms_session_error(const struct vms_session *s)
{
	return s->err[0] ? s->err : vms_trace_error(s->trace);
}

struct vms_trace *vms_session_trace(const struct vms_session *s)
{
	return s->trace;
}

uint64_t vms_session_first_ts(const struct vms_session *s)
{
	return s->first_ts;
}

uint64_t vms_session_last_ts(const struct vms_session *s)
{
	return s->last_ts;
}
