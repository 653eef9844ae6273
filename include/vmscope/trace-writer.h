/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writing trace-cmd .dat files: the file writer (lib/trace/dat-writer.c) and an encoder of
 * events into ring-buffer pages (lib/trace/page-writer.c).
 *
 * A recorder reads raw ring-buffer pages from each CPU's trace_pipe_raw and hands them to
 * vms_dat_writer_add_page() as they come, CPUs interleaved in time. The writer spools each
 * CPU's pages to an unlinked temporary file next to the output and assembles the .dat
 * file at vms_dat_writer_close(): metadata (event formats, command lines, options) in the
 * order the trace-cmd.dat(5) formats require, then every CPU's pages, page-aligned. The
 * memory used stays bounded whatever the size of the trace. The files are read by
 * trace-cmd report, KernelShark and libtracecmd (v6, and v7 uncompressed or compressed
 * with zstd or zlib, as trace-cmd 3.x writes them).
 *
 * A generator of synthetic traces (tests, benchmarks) builds those pages itself with the
 * page writer: events with their timestamps go in, pages in the kernel's ring-buffer
 * format (include/linux/ring_buffer.h, kernel/trace/ring_buffer.c) come out.
 *
 * Options the writer adds to the file, besides trace-cmd's own (CPUCOUNT, TRACECLOCK,
 * UNAME, VERSION, TRACEID, CPUSTAT, BUFFER):
 *  - one GUEST option (id 13) per VM: its name and its vCPU -> host thread id map, in
 *    trace-cmd's layout, so trace-cmd and KernelShark can tie a guest to its host threads;
 *  - one VMS_DAT_OPTION_META option with vmscope's "key=value\n" text: what a report needs
 *    that the trace cannot tell (CPU vendor, KVM flavour, ...). trace-cmd does not know
 *    the id and skips it.
 *
 * A writer or a page encoder is not thread-safe: use each from one thread at a time.
 */
#ifndef VMSCOPE_TRACE_WRITER_H
#define VMSCOPE_TRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Option id of vmscope's key=value text in a .dat file: 0x564d is "VM" in ASCII, far above
 * trace-cmd's own ids (0..22 in trace-cmd 3.1) so that a future trace-cmd option does not
 * collide with it. libtracecmd skips options it does not know, with a warning ("unknown
 * option 22093"): trace-cmd report and dump do not print it, trace-cmd convert and
 * programs using libtracecmd at its default log level print it on stderr. trace-cmd dump
 * lists it as an unknown option; trace-cmd convert copies it.
 */
#define VMS_DAT_OPTION_META 0x564d

/* trace-cmd's GUEST option id (trace-cmd.dat.v7(5)). */
#define VMS_DAT_OPTION_GUEST 13

/* Size of a ring-buffer page header on a 64-bit kernel: u64 timestamp, local_t commit. */
#define VMS_PAGE_HEADER_SIZE 16

/* ---- the .dat file writer ---- */

struct vms_dat_writer;

/*
 * Options of vms_dat_writer_open(). Start with .sz = sizeof(struct vms_dat_writer_opts);
 * fields left 0 / NULL take the default shown. Strings are copied.
 */
struct vms_dat_writer_opts {
	size_t sz;
	int version;		    /* file version: 6 (default) or 7 */
	const char *compression;    /* version 7: "none" (default), "zstd" or "zlib" */
	int compression_level;	    /* 0: zstd 3 (as trace-cmd), zlib 1 (fast; trace-cmd: 9) */
	uint32_t page_size;	    /* ring-buffer page size, a power of two; 4096 */
	uint32_t long_size;	    /* user-space long size, 4 or 8; 8 */
	uint32_t ncpus;		    /* host CPUs; required (1..65536) */
	const char *clock;	    /* trace clock name ("local"); "local" */
	const char *header_page;    /* text of events/header_page; required */
	const char *header_event;   /* text of events/header_event; required */
	const char *uname;	    /* "sysname nodename release machine"; no UNAME if NULL */
	const char *kallsyms;	    /* /proc/kallsyms text; NULL: empty */
	const char *printk_formats; /* printk_formats text; NULL: empty */
	uint64_t trace_id;	    /* TRACEID option when non-zero */
};

/**
 * vms_dat_writer_open() - start a .dat file
 * @path: the output file, created or truncated now; the per-CPU spool files are unlinked
 *        temporary files in the same directory (O_TMPFILE where the file system has it)
 * @opts: see struct vms_dat_writer_opts; the writer keeps copies of what it needs
 * @out: receives the writer; end it with vms_dat_writer_close() or vms_dat_writer_discard()
 *
 * Nothing but an empty @path is on disk until close.
 *
 * Return: 0, -EINVAL (bad option), -ENOTSUP (unknown compression), -E2BIG (opts.sz larger
 * than this library knows, with non-zero bytes past its end), or the errno of open().
 */
VMS_API int vms_dat_writer_open(const char *path, const struct vms_dat_writer_opts *opts,
				struct vms_dat_writer **out);

/**
 * vms_dat_writer_add_format() - add an event's format file (events/<system>/<event>/format)
 * @system: "ftrace" for the ftrace events section, any other name for the event formats
 *          section (systems are written in the order they first appear)
 * @format: the text (copied); @len bytes, NUL not required
 *
 * Return: 0, -EINVAL, -ENOMEM, or an earlier sticky error.
 */
VMS_API int vms_dat_writer_add_format(struct vms_dat_writer *w, const char *system,
				      const char *format, size_t len);

/**
 * vms_dat_writer_set_cmdlines() - the saved command lines ("pid comm\n" lines, as in
 * tracefs saved_cmdlines); copied, replaces an earlier call. Default: empty.
 */
VMS_API int vms_dat_writer_set_cmdlines(struct vms_dat_writer *w, const char *text);

/**
 * vms_dat_writer_add_guest() - add a GUEST option: a VM and the host threads of its vCPUs
 * @name: the VM's name (copied)
 * @trace_id: the trace id of the guest's own trace file, if one is recorded; else any value
 *            (trace-cmd matches guest files to GUEST options by it)
 * @nvcpus: number of vCPUs (1..4096)
 * @tids: @nvcpus host thread ids, indexed by vCPU id (copied)
 */
VMS_API int vms_dat_writer_add_guest(struct vms_dat_writer *w, const char *name, uint64_t trace_id,
				     uint32_t nvcpus, const int32_t *tids);

/**
 * vms_dat_writer_set_meta() - vmscope's "key=value\n..." text (VMS_DAT_OPTION_META);
 * copied, replaces an earlier call. Not interpreted by the writer.
 */
VMS_API int vms_dat_writer_set_meta(struct vms_dat_writer *w, const char *text);

/**
 * vms_dat_writer_add_cpustat() - a CPUSTAT option: the text of per_cpu/cpu<cpu>/stats
 * (copied; replaces an earlier text for the same CPU). Written in CPU order.
 */
VMS_API int vms_dat_writer_add_cpustat(struct vms_dat_writer *w, uint32_t cpu, const char *text);

/**
 * vms_dat_writer_add_page() - append one raw ring-buffer page of @cpu
 * @page: opts.page_size bytes as read from trace_pipe_raw (or made by the page writer);
 *        copied before the call returns
 *
 * Pages of one CPU must come in time order; CPUs may interleave freely.
 *
 * Return: 0, -EINVAL (@cpu out of range, or a commit field larger than the page), or the
 * write error (-ENOSPC, -EIO, ...) of the spool file; write errors are sticky: every later
 * call and close return the first one.
 */
VMS_API int vms_dat_writer_add_page(struct vms_dat_writer *w, uint32_t cpu, const void *page);

/**
 * vms_dat_writer_close() - write the file and free the writer
 *
 * Always frees @w, closes and removes the spool files. On failure the incomplete output
 * file is removed too. NULL is a no-op (returns 0).
 *
 * Return: 0, or the first error met since open (-ENOSPC, -EIO, -ENOMEM, ...).
 */
VMS_API int vms_dat_writer_close(struct vms_dat_writer *w);

/**
 * vms_dat_writer_discard() - give up: free the writer, remove the spool files and the
 * output file. NULL is a no-op.
 */
VMS_API void vms_dat_writer_discard(struct vms_dat_writer *w);

/* ---- the ring-buffer page encoder ---- */

struct vms_page_writer;

/*
 * Receives each finished page (@page_size bytes, borrowed for the duration of the call).
 * Return 0, or a negative errno that the page writer passes back to its caller (sticky).
 */
typedef int (*vms_page_emit_fn)(void *ctx, const void *page, size_t page_size);

/**
 * vms_page_writer_new() - an encoder of one CPU's events into ring-buffer pages
 * @page_size: page (sub-buffer) size, a power of two from 256 to 16 MiB
 * @emit: called with each page as it is finished
 * @ctx: passed to @emit
 * @out: receives the encoder; free with vms_page_writer_free() (after a flush)
 *
 * Pages have the layout of a 64-bit kernel (8-byte commit field, data at offset 16),
 * little-endian, as described by events/header_page and events/header_event.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
VMS_API int vms_page_writer_new(size_t page_size, vms_page_emit_fn emit, void *ctx,
				struct vms_page_writer **out);

/**
 * vms_page_writer_add() - append one event
 * @ts: its timestamp (trace clock units); not lower than the previous event's
 * @data: the event's record (common_type, common_flags, ... as in its format); @len bytes
 *
 * The record gets the smallest header the kernel would give it: type_len = length / 4 up
 * to 112 bytes, else type_len 0 and the length in array[0]; it is padded to 4 bytes (a
 * zero-length record takes 4 zero bytes, as in the kernel). A TIME_EXTEND event comes
 * first when the delta from the previous event does not fit 27 bits. A record that does
 * not fit the current page starts a new one, whose header carries the absolute timestamp
 * (so does a delta too large even for a time extend, 2^59 and up). Allocates nothing.
 *
 * Return: 0, -EINVAL (@ts going back), -EMSGSIZE (the record cannot fit any page), or
 * the error of @emit (sticky).
 */
VMS_API int vms_page_writer_add(struct vms_page_writer *pw, uint64_t ts, const void *data,
				size_t len);

/**
 * vms_page_writer_lost() - @count events were lost here (a ring-buffer overrun)
 *
 * Finishes the current page; the next page carries RB_MISSED_EVENTS | RB_MISSED_STORED
 * in its commit field and @count stored after its data, as the kernel reports an overrun
 * to a trace_pipe_raw reader. Counts of successive calls add up; 0 is a no-op.
 */
VMS_API int vms_page_writer_lost(struct vms_page_writer *pw, uint64_t count);

/**
 * vms_page_writer_flush() - emit the current page if it holds events (or a pending lost
 * count: then an empty page carries it). Return: 0 or the error of @emit (sticky).
 */
VMS_API int vms_page_writer_flush(struct vms_page_writer *pw);

/** vms_page_writer_free() - free the encoder; an unflushed page is dropped. NULL: no-op. */
VMS_API void vms_page_writer_free(struct vms_page_writer *pw);

/**
 * vms_page_event_size() - bytes that a record of @len bytes takes in a page (header and
 * padding, without a time extend)
 */
VMS_API size_t vms_page_event_size(size_t len);

/** vms_page_writer_pages() - pages emitted so far. */
VMS_API uint64_t vms_page_writer_pages(const struct vms_page_writer *pw);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_TRACE_WRITER_H */
