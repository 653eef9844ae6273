/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private state of the .dat reader, shared by dat-file.c (headers, options, sections,
 * event formats) and dat-stream.c (per-CPU data, ring-buffer pages, merging CPUs).
 */
#ifndef VMS_TRACE_LOCAL_H
#define VMS_TRACE_LOCAL_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include "vmscope-local.h"
#include "vmscope/trace.h"

struct tep_handle;

struct tracefs_instance;
struct tracefs_cpu;

enum vms_compression { VMS_COMP_NONE, VMS_COMP_ZSTD, VMS_COMP_ZLIB };

/* A compressed chunk, decompressed by the prefetch worker (see dat-stream.c). */
enum slot_state { SLOT_EMPTY, SLOT_LOADING, SLOT_READY, SLOT_END, SLOT_ERROR };

struct chunk_slot {
	enum slot_state state;
	uint32_t zsize, size; /* compressed and decompressed bytes (from the chunk header) */
	uint8_t *buf;	      /* decompressed pages, plus a page of zero slack */
	size_t cap, len;
	uint8_t *cbuf; /* the compressed bytes */
	size_t ccap;
	uint64_t file_off; /* of the chunk (messages) */
	int err;
	const char *what; /* SLOT_ERROR: what was wrong */
};

/* A record of the page being walked. */
struct vms_run_rec {
	uint64_t ts;
	const uint8_t *data;
	uint32_t len;
};

/* One CPU's ring-buffer data in the file, read a window (or a chunk) at a time. */
struct vms_cpu_stream {
	int cpu;
	uint64_t file_off;     /* where its data starts in the file */
	uint64_t file_size;    /* bytes in the file (compressed size for chunked data) */
	uint64_t consumed;     /* file bytes consumed so far */
	uint32_t chunks_left;  /* compressed data: chunks not read yet */
	uint8_t *buf;	       /* pages read (decompressed), plus slack */
	size_t cap, len, pos;  /* capacity, valid bytes, offset of the next page */
	uint64_t buf_file_off; /* file offset of buf[0] (uncompressed data) */
	uint8_t *cbuf;	       /* one compressed chunk */
	size_t ccap;
	/* compressed data: a ring of the chunk being walked and the next ones, filled by the
	 * workers (see dat-stream.c) */
	struct chunk_slot *slot;
	unsigned int nslot;
	int cur;	       /* the slot being walked, -1 before the first */
	unsigned int load;     /* the slot a worker fills next */
	unsigned int pending;  /* slots loading or loaded that the walk has not left yet */
	bool load_done;	       /* the workers have met the end (or an error) of this CPU */
	bool active;	       /* has a current record (live CPUs leave the merge and come back) */
	const uint8_t *window; /* the pages being walked: buf, or the mapping */
	void *map;	       /* mapped window of an uncompressed stream, or NULL */
	size_t map_len;
	bool use_map;
	/* the page being walked (ring-buffer format, see dat-stream.c) */
	const uint8_t *data;	 /* first byte after the page header */
	uint32_t size;		 /* bytes of events in the page (commit) */
	uint64_t ts;		 /* the page's time stamp */
	struct vms_run_rec *run; /* its records to hand out (decode_page()) */
	uint32_t run_n, run_pos;
	bool page_bad;	       /* the page ends in a damaged record */
	uint64_t page_last_ts; /* time of its last record, handed out or not */
	/* the current record */
	void *rec;
	unsigned long long rec_ts;
	int rec_size;
	bool done;
	uint64_t last_ts;
	bool lost_pending; /* a page with the missed-events flag was loaded */
	uint64_t lost_count;
};

/* What the stream counted: the records read, lost, and the span of their timestamps. */
struct vms_trace_counts {
	uint64_t events, lost, lost_windows;
	uint64_t skip_first, skip_last;		  /* span of the records walked over */
	uint64_t events_out, first_out, last_out; /* and of those handed out */
};

struct readahead;

/* Threads that decompress the chunks of v7 files (the slowest part of reading them): one
 * fewer than the online CPUs, at least 2, at most this. */
#define VMS_DECOMPRESS_WORKERS 8

/* A window (mapping or buffer) that records handed out may still point into. */
struct retired {
	void *p;
	size_t len; /* of a mapping; 0 for a malloc()ed buffer */
	size_t cap; /* a chunk slot's buffer of this capacity: kept as a spare, not freed */
	uint64_t tag;
};

/* Chunk buffers released by the caller, for the workers to decompress into again. */
#define VMS_SPARE_BUFS 64

struct vms_trace {
	int fd;
	char *path;
	struct vms_trace_info info;
	char clock[64];
	char buffer[128];
	char compression[40];
	char uname[256];
	enum vms_compression comp;
	void *zstd_dctx; /* for the sections read at open */
	/* prefetch workers of compressed streams: decompress chunks ahead of the walk */
	struct vms_worker {
		struct vms_trace *t;
		pthread_t thread;
		void *dctx;
		bool started;
	} workers[VMS_DECOMPRESS_WORKERS];
	bool workers_started, worker_quit;
	unsigned int workers_idle; /* waiting on cond for a free slot */
	bool walker_waiting;	   /* waiting on walk_cond for a slot to be loaded */
	pthread_mutex_t lock;
	pthread_cond_t cond, walk_cond;
	struct tep_handle *tep;
	char *meta;	  /* vmscope metadata option text, or NULL */
	char **meta_vals; /* meta split in lines: key NUL value */
	size_t nmeta;
	struct vms_trace_guest *guests;
	size_t nguests;
	struct vms_cpu_stream *cpus;
	unsigned int ncpus;
	/* the merge of the CPUs (see dat-stream.c) */
	unsigned int *tree; /* [0] the winner, [n] the loser of match n */
	unsigned int *tree_win;
	uint64_t *key; /* per leaf */
	unsigned int leaves, nactive;
	bool started;
	bool advance_pending; /* the winning CPU has handed out its record */
	int deferred_err;     /* first streaming error, returned once the stream ends */
	uint64_t threshold;   /* the runner-up's key (see tree_replay()) */
	/* vms_trace_select(): bit per event id of the records handed out */
	uint64_t *select;
	struct vms_trace_counts cnt; /* as the stream stands */
	struct readahead *ra;	     /* the read-ahead thread, once started (readahead.c) */
	int readahead;		     /* vms_trace_opts.readahead */
	/* With read-ahead, records handed out may outlive their CPU's window: a replaced
	 * window is retired, tagged with the batch being filled, and freed once the caller
	 * has released that batch (vms_retired_reclaim()). */
	bool retire_mode;
	uint64_t retire_tag;
	struct retired *retired;
	size_t nretired, retired_cap;
	struct retired spare[VMS_SPARE_BUFS]; /* under lock */
	unsigned int nspare;
	struct vms_record *direct; /* vms_trace_next_batch()'s records without read-ahead */
	/* live traces */
	bool live;
	struct tracefs_instance *inst;
	struct tracefs_cpu **tcpu;
	uint64_t live_w;  /* records older than this can be handed out */
	long live_nap_ns; /* between rounds that found nothing to hand out */
	bool live_stop;	  /* vms_trace_stop() was called */
	bool live_ended;  /* stopped and flushed: what is in the windows is all */
	size_t window_pages;
	char err[512];
};

/* Record the first error of a trace; returns @code. */
__attribute__((format(printf, 3, 4))) int vms_trace_fail(struct vms_trace *t, int code,
							 const char *fmt, ...);

int vms_dat_parse(struct vms_trace *t, const struct vms_trace_opts *opts);
/* Parse one event format file (@text is modified: its print format is dropped). */
void vms_trace_parse_format(struct vms_trace *t, char *text, uint64_t size, const char *system,
			    uint32_t i);
extern __thread char vms_trace_open_errbuf[512];

/* Remove tracefs instances of vmscope processes that died (recorder.c). */
void vms_trace_remove_stale_instances(void);

/* live traces (live.c) */
int vms_live_fill(struct vms_trace *t, struct vms_cpu_stream *c);
int vms_live_round(struct vms_trace *t);
void vms_live_free(struct vms_trace *t);
int vms_dat_stream_init(struct vms_trace *t);
/* Up to @max records straight from the stream (dat-stream.c); see vms_trace_next_batch(). */
int vms_dat_next(struct vms_trace *t, struct vms_record *recs, unsigned int max);
/* Done with window @p (a mapping of @len bytes, or a buffer when @len is 0): freed now, or
 * once the records handed out from it are released. -ENOMEM: it could not be kept. */
int vms_retire(struct vms_trace *t, void *p, size_t len);
/* The same for a chunk slot's buffer of capacity @cap: kept as a spare once released. */
int vms_retire_chunk(struct vms_trace *t, void *p, size_t cap);
/* Free the retired windows of batches before @released. */
void vms_retired_reclaim(struct vms_trace *t, uint64_t released);
/* The counters the caller of vms_trace_next*() may see now. */
const struct vms_trace_counts *vms_trace_counts(const struct vms_trace *t);
void vms_readahead_free(struct vms_trace *t);
void vms_dat_stream_free(struct vms_trace *t);

/* Decompress @in (@in_len) into @out, which must receive exactly @out_len bytes; *@dctx is
 * the caller's decompression context, made on first use (free it with
 * vms_decompress_free()). */
int vms_decompress(const struct vms_trace *t, void **dctx, const void *in, size_t in_len, void *out,
		   size_t out_len);
void vms_decompress_free(void *dctx);

#endif /* VMS_TRACE_LOCAL_H */
