/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Analyses and the session that runs them. A session reads one trace and hands each record
 * to the analyses that subscribed to its event type (a table lookup by event id; records
 * nobody wants cost one branch). Analyses are plug-ins of one shape: an ops table with
 * init (look up the events and fields they need, subscribe), finish (after the last
 * record) and free, plus their own result accessors. Adding an analysis is one new file
 * and one ops table; the reader does not change.
 */
#ifndef VMSCOPE_ANALYSIS_H
#define VMSCOPE_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "vmscope/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_session;

/* Called for every record of a subscribed type; must not allocate on the common path. */
typedef void (*vms_handler_fn)(void *priv, const struct vms_record *rec);

struct vms_analysis_ops {
	const char *name;
	size_t priv_size; /* the session allocates (zeroed) and frees this much state */
	/* Look up events and fields, subscribe. @opts is the analysis's own options struct. */
	int (*init)(void *priv, struct vms_session *s, const void *opts);
	/* After the last record (or the first error). */
	void (*finish)(void *priv, struct vms_session *s);
	/* Free what init and the handlers allocated (not priv itself). */
	void (*free)(void *priv);
	/* Optional: an error a handler met (-ENOMEM: its results are short), or 0. Handlers
	 * cannot return one; the session asks after finish. */
	int (*error)(const void *priv);
};

/**
 * vms_session_new() - a session over trace @t (borrowed: close it after the session)
 * Return: 0 or -ENOMEM.
 */
VMS_API int vms_session_new(struct vms_trace *t, struct vms_session **out);

/** vms_session_free() - free the session and its analyses; NULL is a no-op. */
VMS_API void vms_session_free(struct vms_session *s);

/**
 * vms_session_add() - add an analysis
 * @priv: receives its state (owned by the session), for the analysis's result accessors
 * Return: 0, or what its init returned.
 */
VMS_API int vms_session_add(struct vms_session *s, const struct vms_analysis_ops *ops,
			    const void *opts, void **priv);

/**
 * vms_session_subscribe() - call @fn(@priv, record) for every record of event @id
 * @id: an id from vms_trace_event_id(), or VMS_RECORD_LOST
 * Return: 0, -EINVAL, -ENOMEM.
 */
VMS_API int vms_session_subscribe(struct vms_session *s, int id, vms_handler_fn fn, void *priv);

/**
 * vms_session_run() - read the whole trace, dispatch every record, then finish every
 * analysis
 * @progress: called about every 2^20 records with (records so far, ctx), or NULL
 * Return: 0, or the reader's error (the records before it were analysed and the analyses
 * finished; vms_session_error() says what and where), or else the first error an analysis
 * met (-ENOMEM: its results are incomplete; vms_session_error() names the analysis).
 */
VMS_API int vms_session_run(struct vms_session *s, void (*progress)(uint64_t, void *), void *ctx);

/**
 * vms_session_error() - what ended vms_session_run() with an error: the reader's
 * (vms_trace_error()) or an analysis's, by name; "" if none. Owned by @s.
 */
VMS_API const char *vms_session_error(const struct vms_session *s);

VMS_API struct vms_trace *vms_session_trace(const struct vms_session *s);

/* First and last record timestamps seen by the session (0 before any). */
VMS_API uint64_t vms_session_first_ts(const struct vms_session *s);
VMS_API uint64_t vms_session_last_ts(const struct vms_session *s);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_ANALYSIS_H */
