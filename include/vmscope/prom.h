/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Prometheus text exposition (format 0.0.4) of a sample of the host's VMs
 * (vmscope/sampler.h): every metric in base units, counters named *_total, times
 * *_seconds_total, with the libvirt exporters' names where they overlap
 * (libvirt_domain_vcpu_time_seconds_total{domain,vcpu}). doc/vmscope-serve.md lists every
 * metric and bounds the series per VM and per vCPU.
 */
#ifndef VMSCOPE_PROM_H
#define VMSCOPE_PROM_H

#include <stdbool.h>
#include <stdio.h>

#include "vmscope/sampler.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_prom_opts {
	size_t sz;	       /* sizeof(struct vms_prom_opts) */
	bool kvm_stats;	       /* every scalar KVM statistic per VM and vCPU */
	double scrape_seconds; /* the sampling's own duration, exported as such */
};

/**
 * vms_prom_write() - write the metrics of the sampler's last sample to @f
 * Return: 0, or -EIO when writing failed.
 */
VMS_API int vms_prom_write(FILE *f, const struct vms_sampler *s, const struct vms_prom_opts *opts);

/**
 * vms_prom_metric_name() - a KVM statistic's metric name, in base units
 * @out: receives "vmscope_kvm_vcpu_halt_wait_seconds_total" for ("vcpu", "halt_wait_ns",
 *       cumulative, seconds, 10^-9), "vmscope_kvm_vm_pages_4k" for an instant count, ...
 * Return: the factor that turns the raw value into the base unit.
 */
VMS_API double vms_prom_metric_name(char *out, size_t len, const char *scope, const char *name,
				    enum vms_stat_type type, enum vms_stat_unit unit,
				    unsigned int base, int exponent);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_PROM_H */
