/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The interrupt analysis: the interrupts KVM delivered to its guests, counted per thread,
 * destination and vector, and per second of the trace and offset within that second: the
 * data of Brendan Gregg's sub-second-offset heatmaps of injected interrupts (seed 003), where
 * an interval timer draws a flat line and a task that works then sleeps draws a stair.
 *
 * Each source is one step of KVM's interrupt path, with its own tracepoint:
 *
 *   inj_virq         kvm_inj_virq (vector)        injected into the vCPU at VM entry, in
 *                                                  its own thread (VMX and SVM only)
 *   apic_accept_irq  kvm_apic_accept_irq (vec,    accepted by a vCPU's local APIC: timers,
 *                    apicid)                       IPIs, IOAPIC and MSI interrupts
 *   msi_set_irq      kvm_msi_set_irq (data & 0xff, an MSI raised by a device
 *                    destination APIC id)
 *   set_irq          kvm_set_irq (gsi, level)     a GSI line asserted (PIT, IOAPIC and PIC
 *                                                  pins); the deassert (level 0) of a
 *                                                  level-triggered line is no interrupt and
 *                                                  is only counted aside
 *
 * The steps see the same interrupt more than once, so the heatmap shows one of them: the
 * injections when the trace has any, else the local APICs' acceptances, else the raised
 * lines and MSIs (KVM-PVM hosts never fire kvm_inj_virq). The counts of every source are
 * kept all the same.
 *
 * A heatmap second is a second of the trace clock (its ns since boot / 1e9), numbered from
 * the second of the trace's first record; the offset is the time within that second, in
 * equal buckets. Memory grows with the seconds and series that have interrupts, never with
 * their number: a record allocates only when it brings a new series, thread or second.
 */
#ifndef VMSCOPE_IRQ_H
#define VMSCOPE_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include "vmscope/analysis.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vms_irq_source {
	VMS_IRQ_INJ_VIRQ,
	VMS_IRQ_APIC_ACCEPT,
	VMS_IRQ_MSI,
	VMS_IRQ_SET_IRQ,
	VMS_IRQ_NSOURCES
};

#define VMS_IRQ_DEFAULT_BUCKETS 50 /* 20 ms each */

struct vms_irq_opts {
	size_t sz;
	/* sub-second buckets per second: a divisor of 1000 (1 ms to 1 s each); 0: 50 */
	unsigned int buckets;
};

/* One row: the interrupts of one source and key that one thread's events counted. */
struct vms_irq_row {
	enum vms_irq_source source;
	int tid;	   /* the thread the event fired in (inj_virq: the vCPU thread) */
	int dest;	   /* apic_accept_irq and msi_set_irq: destination APIC id; else -1 */
	uint32_t key;	   /* the vector; set_irq: the GSI */
	uint64_t count;	   /* interrupts */
	uint64_t first_ts; /* the first and the last of them */
	uint64_t last_ts;
};

/* A heatmap series: one source and key, over every thread. */
struct vms_irq_series {
	enum vms_irq_source source;
	uint32_t key;
	uint64_t count;
};

struct vms_irq_summary {
	uint64_t events[VMS_IRQ_NSOURCES]; /* interrupts counted, per source */
	bool has_format[VMS_IRQ_NSOURCES]; /* the trace has the event's format at all */
	uint64_t deasserts;		   /* kvm_set_irq with level 0: not counted */
	unsigned int heatmap_sources;	   /* 1 << source of each source the heatmap shows */
	uint64_t first_second; /* the trace clock's second of its first record: heatmap second 0 */
	unsigned int seconds;  /* heatmap seconds, from the first record's to the last's */
	unsigned int buckets;  /* buckets per second */
	uint64_t bucket_ns;    /* their width */
	uint64_t span_ns;      /* first to last record of the trace */
	uint64_t lost_events, lost_windows;
	int error; /* -ENOMEM when some interrupts could not be counted; else 0 */
};

VMS_API extern const struct vms_analysis_ops vms_irq_ops;

/** vms_irq_summary() - totals of the analysis @priv (from vms_session_add()). */
VMS_API void vms_irq_summary(const void *priv, struct vms_irq_summary *out);

/** vms_irq_rows() - the rows (owned by the analysis, in no order), *n of them. */
VMS_API const struct vms_irq_row *vms_irq_rows(const void *priv, size_t *n);

/** vms_irq_series() - the heatmap series (owned by the analysis, in no order), *n of them. */
VMS_API const struct vms_irq_series *vms_irq_series(const void *priv, size_t *n);

/**
 * vms_irq_cell() - interrupts of series @series (an index into vms_irq_series()) in heatmap
 * second @second (0: the trace's first) and sub-second bucket @bucket; 0 outside the map
 */
VMS_API uint64_t vms_irq_cell(const void *priv, size_t series, unsigned int second,
			      unsigned int bucket);

/** vms_irq_source_name() - "inj_virq", "apic_accept_irq", "msi_set_irq", "set_irq". */
VMS_API const char *vms_irq_source_name(enum vms_irq_source s);

/** vms_irq_key_name() - the key for people: "0xec" (a vector), "gsi 4"; returns @buf. */
VMS_API const char *vms_irq_key_name(enum vms_irq_source s, uint32_t key, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_IRQ_H */
