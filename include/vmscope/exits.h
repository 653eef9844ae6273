/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The exit analysis: how often and how long vCPUs exit, per exit reason (or MMIO address,
 * I/O port, MSR, user-space exit reason), per vCPU thread. Its event definitions are those
 * of `perf kvm stat report`, so the two agree on the same trace:
 *
 *   vmexit    kvm_exit (key: exit_reason)         → the thread's next kvm_entry
 *   mmio      write: kvm_mmio(type write) (gpa)   → next kvm_entry
 *             read:  kvm_exit                     → kvm_mmio(type read) (gpa)
 *   ioport    kvm_pio (port, rw)                  → next kvm_entry
 *   msr       kvm_msr (ecx, write)                → next kvm_entry
 *   userspace kvm_userspace_exit (reason)         → next kvm_entry   (vmscope only)
 *
 * As in perf, a thread counts from its first kvm_entry (which names its vCPU), and an end
 * event without a caught begin is ignored. vmscope adds: every key event is also counted
 * whether or not it could be timed (so traces without kvm_entry, e.g. from KVM-PVM hosts,
 * still give exact counts); exits left open at the end of the trace are counted as
 * unfinished; and an exit whose end might lie in a lost-events window on its CPU is not
 * timed (perf would time it across the gap).
 */
#ifndef VMSCOPE_EXITS_H
#define VMSCOPE_EXITS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmscope/analysis.h"
#include "vmscope/arch-x86.h"
#include "vmscope/hist.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vms_exits_event {
	VMS_EXITS_VMEXIT,
	VMS_EXITS_MMIO,
	VMS_EXITS_IOPORT,
	VMS_EXITS_MSR,
	VMS_EXITS_USERSPACE,
};

struct vms_exits_opts {
	size_t sz;
	enum vms_exits_event event;
	int vcpu;	      /* only this vCPU index, or -1 for all */
	enum vms_x86_isa isa; /* how to name exit reasons when a record's isa field is 0 */
	/*
	 * Count key events in time bins too (exits over time), at most this many (an even
	 * number, 2 .. VMS_EXITS_MAX_BINS; 0: no bins). Bins are a power of two ns wide and
	 * begin at the first key event; when the trace outlasts them their width doubles,
	 * pairs merging, so a trace of any length ends with between half and all of them.
	 */
	unsigned int bins;
};

#define VMS_EXITS_MAX_BINS 4096

/* The keys of mmio rows' info: KVM_TRACE_MMIO_READ, KVM_TRACE_MMIO_WRITE. */
#define VMS_MMIO_READ 1
#define VMS_MMIO_WRITE 2

/* One row: a key of one vCPU thread, or an aggregate of rows (tid -1). */
struct vms_exits_row {
	int tid;	   /* host thread, -1 in aggregates over threads */
	int vcpu;	   /* vCPU index (from kvm_entry), -1 unknown or aggregated */
	int vm;		   /* set by vms_exits_group() from the caller's map, else -1 */
	uint32_t isa;	   /* vmexit rows: 1 VMX, 2 SVM, 0 unknown */
	uint64_t key;	   /* exit reason / gpa / port / MSR index / KVM_EXIT_* reason */
	uint32_t info;	   /* mmio: VMS_MMIO_*; ioport: 1 out, 0 in; msr: 1 write, 0 read */
	uint64_t events;   /* key events seen, timed or not */
	uint64_t count;	   /* timed samples */
	uint64_t total_ns; /* sum of the samples */
	uint64_t min_ns, max_ns;
	double mean_ns, m2; /* running mean and sum of squared deviations (Welford) */
	struct vms_hist hist;
	uint64_t *bins; /* with vms_exits_opts.bins: key events per time bin (see the summary's
			 * bin_start_ts, bin_ns, nbins); else NULL */
};

struct vms_exits_summary {
	enum vms_exits_event event;
	bool has_entry_format; /* the trace has the kvm_entry event at all */
	uint64_t entries;      /* kvm_entry records seen */
	uint64_t begins;       /* begin events caught (on threads known from a kvm_entry) */
	uint64_t samples;      /* timed samples */
	uint64_t total_ns;
	uint64_t events;	     /* key events counted */
	uint64_t before_first_entry; /* begins on threads not yet known: not timed */
	uint64_t unfinished;	     /* begins never ended (overwritten, or open at the end) */
	uint64_t dropped_lost;	     /* begins dropped because their CPU lost events after them */
	uint64_t lost_events, lost_windows;
	uint64_t threads;
	/* with vms_exits_opts.bins: bin i counts key events in [bin_start_ts + i * bin_ns,
	 * bin_start_ts + (i + 1) * bin_ns); nbins of them hold the key events (0: none) */
	uint64_t bin_start_ts, bin_ns;
	unsigned int nbins;
};

VMS_API extern const struct vms_analysis_ops vms_exits_ops;

/** vms_exits_summary() - totals of the analysis @priv (from vms_session_add()). */
VMS_API void vms_exits_summary(const void *priv, struct vms_exits_summary *out);

/** vms_exits_rows() - the per-thread rows (owned by the analysis), *n of them. */
VMS_API const struct vms_exits_row *vms_exits_rows(const void *priv, size_t *n);

enum vms_exits_group { VMS_EXITS_BY_KEY, VMS_EXITS_BY_VCPU, VMS_EXITS_BY_VM };

/**
 * vms_exits_group() - rows merged by key (and by vCPU thread, or by VM)
 * @vm_of_tid: the VM (any id >= 0) of a thread, -1 unknown; or NULL (every VM unknown).
 *             Rows get their vm from it.
 * @only_vm: keep only the rows of threads of this VM; -1 keeps all
 * @out: receives a malloc'ed array (histograms and time bins merged too); free it with
 *       vms_exits_rows_free()
 * Return: 0 or -ENOMEM.
 */
VMS_API int vms_exits_group(const void *priv, enum vms_exits_group by,
			    int (*vm_of_tid)(int tid, void *ctx), void *ctx, int only_vm,
			    struct vms_exits_row **out, size_t *n);
VMS_API void vms_exits_rows_free(struct vms_exits_row *rows, size_t n);

/** vms_exits_key_name() - the row's key for people: "EPT_VIOLATION", "0xfee000b0:W", ... */
VMS_API const char *vms_exits_key_name(const void *priv, const struct vms_exits_row *r, char *buf,
				       size_t len);

/** vms_exits_event_name() - "vmexit", "mmio", ...; vms_exits_event_parse() the reverse. */
VMS_API const char *vms_exits_event_name(enum vms_exits_event e);
VMS_API int vms_exits_event_parse(const char *s, enum vms_exits_event *e);

/* Standard error of the mean in % of the mean, as perf kvm stat prints it ("+- x%"). */
VMS_API double vms_exits_row_sem_pct(const struct vms_exits_row *r);
/* Standard deviation of the samples, ns. */
VMS_API double vms_exits_row_stddev(const struct vms_exits_row *r);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_EXITS_H */
