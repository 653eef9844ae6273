/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading traces: trace-cmd .dat files (versions 6 and 7, uncompressed or compressed with
 * zstd or zlib) as one time-ordered stream of records across CPUs.
 *
 * The reader streams: it reads (and decompresses) a bounded window of each CPU's data at
 * a time, walks ring-buffer pages with libtraceevent's kbuffer and merges the CPUs by
 * timestamp, so memory stays bounded whatever the trace length. Event formats are parsed
 * once with libtraceevent; analyses look up the offsets of the fields they need once, before
 * the first record, and then read fields straight from the record bytes.
 *
 * Records are borrowed views, valid until the next call to vms_trace_next(). Lost events
 * (ring-buffer overruns) come as records of type VMS_RECORD_LOST, so every analysis can say
 * how much of its window it did not see. A damaged file ends the stream with an error that
 * names the file and the offset; the records before the damage have been delivered.
 */
#ifndef VMSCOPE_TRACE_H
#define VMSCOPE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The type of a lost-events record (event ids of the kernel are below 65535). */
#define VMS_RECORD_LOST 0xffffu

struct vms_record {
	uint64_t ts;	     /* trace clock (ns for the local, global and mono clocks) */
	const uint8_t *data; /* raw event: common fields first; NULL for LOST */
	uint32_t size;	     /* bytes at data */
	uint32_t type;	     /* event id (common_type), or VMS_RECORD_LOST */
	int32_t cpu;
	int32_t pid; /* common_pid (-1 for LOST) */
	/* VMS_RECORD_LOST only: events of this CPU were lost between ts (its last record
	 * before the gap, or 0) and lost_to_ts (its first record after), lost_count of them
	 * (0: unknown). The LOST record comes in time order at the start of the gap, before
	 * any record of another CPU that is later than that. */
	uint64_t lost_to_ts;
	uint64_t lost_count;
};

/* Where a field lies in the records of one event. */
struct vms_field {
	uint32_t offset;
	uint32_t size; /* 1, 2, 4, 8 for numbers; other sizes for arrays */
	bool is_signed;
	bool valid; /* false when the event has no such field */
};

/**
 * vms_field_u64() - the value of a numeric field of @rec (sign-extended when signed)
 * Returns 0 for an invalid field or one outside the record.
 */
static inline uint64_t vms_field_u64(const struct vms_field *f, const struct vms_record *rec)
{
	uint64_t v = 0;

	if (!f->valid || f->offset + f->size > rec->size)
		return 0;
	switch (f->size) {
	case 1: {
		uint8_t x;

		memcpy(&x, rec->data + f->offset, 1);
		return f->is_signed ? (uint64_t)(int64_t)(int8_t)x : x;
	}
	case 2: {
		uint16_t x;

		memcpy(&x, rec->data + f->offset, 2);
		return f->is_signed ? (uint64_t)(int64_t)(int16_t)x : x;
	}
	case 4: {
		uint32_t x;

		memcpy(&x, rec->data + f->offset, 4);
		return f->is_signed ? (uint64_t)(int64_t)(int32_t)x : x;
	}
	case 8:
		memcpy(&v, rec->data + f->offset, 8);
		return v;
	default:
		return 0;
	}
}

/** vms_field_str() - a char[] field (NUL-terminated within its size) as a string view. */
static inline size_t vms_field_str(const struct vms_field *f, const struct vms_record *rec,
				   const char **s)
{
	if (!f->valid || f->offset + f->size > rec->size) {
		*s = "";
		return 0;
	}
	*s = (const char *)rec->data + f->offset;
	return strnlen(*s, f->size);
}

struct vms_trace;

struct vms_trace_opts {
	size_t sz;	     /* sizeof(struct vms_trace_opts) */
	const char *buffer;  /* which instance buffer to read: NULL = the first one with
			      * data (trace-cmd -B writes the top buffer empty) */
	size_t window_pages; /* pages read per CPU at a time (uncompressed files); 0 = 256 */
	int readahead;	     /* vms_trace_next_batch() merges the next records in a thread
			      * of its own: 0 when the machine has 2 CPUs or more, 1 always,
			      * -1 never */
};

/* What a trace file says about itself. */
struct vms_trace_info {
	int version; /* 6 or 7 */
	unsigned int page_size;
	unsigned int long_size;
	unsigned int ncpus;	 /* CPUs with data in the buffer being read */
	const char *compression; /* "none", "zstd", "zlib" */
	const char *buffer;	 /* the instance buffer being read ("" = top) */
	const char *clock;	 /* trace clock of that buffer ("local", "x86-tsc", ...) */
	const char *uname;	 /* UNAME option, or "" */
	uint64_t file_size;
	uint64_t data_bytes; /* ring-buffer bytes of the buffer, uncompressed */
};

/**
 * vms_trace_open() - open a trace-cmd .dat file
 * @path: the file
 * @opts: NULL for the defaults
 * @out: receives the reader; close it with vms_trace_close()
 *
 * Parses the headers and event formats; the data is read as records are asked for.
 * Return: 0, or a negative errno / -VMS_E_TRACE_* code; vms_trace_open_error() then says
 * what was wrong where ("FILE: offset N: ...").
 */
VMS_API int vms_trace_open(const char *path, const struct vms_trace_opts *opts,
			   struct vms_trace **out);

/* Options of a live trace: the kernel's events as they happen, in a tracefs instance. */
struct vms_live_opts {
	size_t sz;		   /* sizeof(struct vms_live_opts) */
	const char *const *events; /* "system:event" to enable, NULL-terminated; NULL: the
				    * kvm and sched events of vmscope record */
	const int *pids;	   /* filter kvm events by the threads of these processes */
	size_t npids;		   /* (0: no filter) */
	unsigned int buffer_kb;	   /* ring buffer per CPU; 0: 4096 */
	unsigned int poll_ms;	   /* time between reads of the CPUs when they ran dry;
				    * 0: 20 (a counter that is read once a second can take
				    * longer, as long as the ring buffer holds that long) */
};

/**
 * vms_trace_open_live() - a live trace: records as the kernel writes them
 * @opts: what to trace
 * @out: receives the reader; vms_trace_next() blocks until records come, and returns 0
 *       once vms_trace_stop() was called and everything traced until then was delivered
 *
 * Works in a tracefs instance of its own ("vmscope-<pid>-live<n>", removed by
 * vms_trace_close(); one left by a process that died is removed by the next one), with the
 * "mono" trace clock: timestamps are CLOCK_MONOTONIC ns. Records are delivered in time
 * order across CPUs: a record is handed out once every CPU has been read past its time
 * (each round reads every CPU; records newer than the earliest of those reads, less a
 * 10 ms margin for events still being written, wait for the next round).
 * Return: 0 or a negative errno (vms_trace_open_error() says what).
 */
VMS_API int vms_trace_open_live(const struct vms_live_opts *opts, struct vms_trace **out);

/**
 * vms_trace_live_set_pids() - trace only the events of these threads (set_event_pid)
 * @t: a live trace
 * @pids: thread ids; sched_switch is kept when its previous or next task is one of them,
 *        sched_wakeup when the task woken is, any other event when the current task is
 * @n: how many; 0 stops tracing until threads are given again
 *
 * Replaces the previous list. Not thread-safe against itself; safe while another thread
 * reads the trace.
 * Return: 0, -EINVAL (not a live trace), -ENOMEM, or the error of the tracefs write.
 */
VMS_API int vms_trace_live_set_pids(struct vms_trace *t, const int *pids, size_t n);

/** vms_trace_stop() - end a live trace (safe from any thread); no-op for a file. */
VMS_API void vms_trace_stop(struct vms_trace *t);

/** vms_trace_open_error() - why the last vms_trace_open() of this thread failed ("" if not). */
VMS_API const char *vms_trace_open_error(void);

/** vms_trace_close() - free the reader; NULL is a no-op. */
VMS_API void vms_trace_close(struct vms_trace *t);

/** vms_trace_info() - what the file says about itself; owned by @t. */
VMS_API const struct vms_trace_info *vms_trace_info(const struct vms_trace *t);

/**
 * vms_trace_event_id() - the id of event @system:@name in this trace
 * Return: the id (>= 0), or -ENOENT when the file has no such event format.
 */
VMS_API int vms_trace_event_id(const struct vms_trace *t, const char *system, const char *name);

/**
 * vms_trace_field() - where field @field of event @id lies (offset, size, sign)
 * Return: 0, or -ENOENT (f->valid is then false).
 */
VMS_API int vms_trace_field(const struct vms_trace *t, int id, const char *field,
			    struct vms_field *f);

/**
 * vms_trace_next() - the next record in time order across CPUs
 * @rec: receives a borrowed view, valid until the next call
 * Return: 1 with a record, 0 at the end, or a negative error (-VMS_E_TRACE_CORRUPT,
 * -EIO, ...) with vms_trace_error() saying where; the stream ends there.
 */
VMS_API int vms_trace_next(struct vms_trace *t, struct vms_record *rec);

/**
 * vms_trace_select() - hand out only the records of these event ids (and LOST records)
 * @ids: event ids from vms_trace_event_id(); NULL to hand out every record again
 * @n: how many
 *
 * The other records are walked over without being merged across CPUs: they cost a
 * header read. They still count in vms_trace_events_read() and vms_trace_span().
 * Return: 0, -EINVAL for an id out of range, -EBUSY once records were asked for.
 */
VMS_API int vms_trace_select(struct vms_trace *t, const int *ids, size_t n);

/**
 * vms_trace_span() - the first and last timestamps of the records read so far (handed
 * out or walked over); false, with both 0, before any.
 */
VMS_API bool vms_trace_span(const struct vms_trace *t, uint64_t *first, uint64_t *last);

/**
 * vms_trace_next_batch() - the next records, in the order vms_trace_next() gives them
 * @recs: receives the address of the first; they stay valid until the next call of
 * vms_trace_next_batch() or vms_trace_next()
 *
 * Faster than record by record: the records are merged in batches, by a thread of the
 * reader's own while the caller works on the previous batch (see vms_trace_opts.readahead;
 * never for live traces).
 * Return: how many (> 0), 0 at the end, or a negative error as vms_trace_next()'s.
 */
VMS_API int vms_trace_next_batch(struct vms_trace *t, const struct vms_record **recs);

/** vms_trace_error() - the error that ended the stream ("" if none); owned by @t. */
VMS_API const char *vms_trace_error(const struct vms_trace *t);

/** vms_trace_comm() - the command name of @pid from the file's saved cmdlines, or NULL. */
VMS_API const char *vms_trace_comm(const struct vms_trace *t, int pid);

/**
 * vms_trace_meta() - value of @key in the file's vmscope metadata option ("vendor",
 * "kvm", ...), or NULL when the file has none (trace-cmd's own files).
 */
VMS_API const char *vms_trace_meta(const struct vms_trace *t, const char *key);

/**
 * vms_trace_events_read() - records read so far, handed out or walked over (LOST
 * records not counted), and
 * vms_trace_lost() - events reported lost so far (counted ones; windows of unknown size
 * add 0), and vms_trace_lost_windows() - how many LOST records were delivered.
 */
VMS_API uint64_t vms_trace_events_read(const struct vms_trace *t);
VMS_API uint64_t vms_trace_lost(const struct vms_trace *t);
VMS_API uint64_t vms_trace_lost_windows(const struct vms_trace *t);

/* A VM the trace file describes (trace-cmd's GUEST option): its vCPUs' host threads. */
struct vms_trace_guest {
	const char *name;
	uint64_t trace_id;
	uint32_t nvcpus;
	const int32_t *tids; /* host thread of vCPU i, or -1 */
};

/** vms_trace_guests() - the VMs of the file's GUEST options (owned by @t), *n of them. */
VMS_API const struct vms_trace_guest *vms_trace_guests(const struct vms_trace *t, size_t *n);

/**
 * vms_trace_meta_next() - the values of a key that the metadata repeats ("vm", "vcpu"):
 * pass NULL first, then the previous value; returns NULL after the last. The strings are
 * owned by @t.
 */
VMS_API const char *vms_trace_meta_next(const struct vms_trace *t, const char *key,
					const char *prev);

/** vms_trace_tep() - the libtraceevent handle with this trace's formats (for printing). */
struct tep_handle;
VMS_API struct tep_handle *vms_trace_tep(const struct vms_trace *t);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_TRACE_H */
