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
	uint8_t *buf; /* decompressed pages, plus a page of zero slack */
	size_t cap, len;
	uint8_t *cbuf; /* the compressed bytes */
	size_t ccap;
	uint64_t file_off; /* of the chunk (messages) */
	int err;
	const char *what; /* SLOT_ERROR: what was wrong */
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
	/* compressed data: the chunk being walked and the next one, filled by the worker */
	struct chunk_slot slot[2];
	int cur;	       /* the slot being walked, -1 before the first */
	int load;	       /* the slot the worker fills next */
	bool load_done;	       /* the worker has met the end (or an error) of this CPU */
	bool in_heap;	       /* has a current record (live CPUs leave the heap and come back) */
	const uint8_t *window; /* the pages being walked: buf, or the mapping */
	void *map;	       /* mapped window of an uncompressed stream, or NULL */
	size_t map_len;
	bool use_map;
	/* the page being walked (ring-buffer format, see dat-stream.c) */
	const uint8_t *data; /* first byte after the page header */
	uint32_t size;	     /* bytes of events in the page (commit) */
	uint32_t next;	     /* offset in data of the next event header */
	uint64_t ts;	     /* timestamp of the event at next - its delta */
	const uint8_t *page_end;
	/* the current record */
	void *rec;
	unsigned long long rec_ts;
	int rec_size;
	bool done;
	uint64_t last_ts;
	bool lost_pending; /* a page with the missed-events flag was loaded */
	uint64_t lost_count;
};

struct vms_trace {
	int fd;
	char *path;
	struct vms_trace_info info;
	char clock[64];
	char buffer[128];
	char compression[40];
	char uname[256];
	enum vms_compression comp;
	void *zstd_dctx; /* the prefetch worker's once the stream runs */
	/* prefetch worker of compressed streams: decompresses chunks ahead of the walk */
	pthread_t worker;
	bool worker_started, worker_quit;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tep_handle *tep;
	char *meta;	  /* vmscope metadata option text, or NULL */
	char **meta_vals; /* meta split in lines: key NUL value */
	size_t nmeta;
	struct vms_trace_guest *guests;
	size_t nguests;
	struct vms_cpu_stream *cpus;
	unsigned int ncpus;
	unsigned int *heap; /* indexes of CPUs with a current record, min-heap on ts */
	unsigned int heap_len;
	bool started;
	bool advance_pending; /* the CPU at the heap's top has handed out its record */
	int deferred_err;     /* first streaming error, returned once the stream ends */
	uint64_t threshold;   /* see set_threshold() in dat-stream.c */
	/* live traces */
	bool live;
	struct tracefs_instance *inst;
	struct tracefs_cpu **tcpu;
	uint64_t live_w; /* records older than this can be handed out */
	bool live_stop;	 /* vms_trace_stop() was called */
	bool live_ended; /* stopped and flushed: what is in the windows is all */
	size_t window_pages;
	uint64_t events, lost, lost_windows;
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
void vms_dat_stream_free(struct vms_trace *t);

/* Decompress @in (@in_len) into @out, which must receive exactly @out_len bytes. */
int vms_decompress(struct vms_trace *t, const void *in, size_t in_len, void *out, size_t out_len);

#endif /* VMS_TRACE_LOCAL_H */
