// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The test VM's guest as a multiboot kernel, for QEMU and libvirt: the embedded image
 * (lib/testvm/guest/mb-entry.S, mb-boot.c and the VMM image's objects) and the command line
 * that hands it a schedule. The guest parses that line itself (mb-boot.c); this file writes
 * it from the same options vms_testvm_new() takes, so that both VMMs run the same load.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "testvm-local.h"

extern const unsigned char vms_tvm_mb_image[];
extern const size_t vms_tvm_mb_image_size;

const void *vms_testvm_multiboot_image(size_t *size)
{
	*size = vms_tvm_mb_image_size;
	return vms_tvm_mb_image;
}

/* @val / 10^@digits as a decimal without trailing zeros: 1500, 3 → "1.5". */
static void line_fixed(struct vms_strbuf *l, uint64_t val, unsigned int digits)
{
	uint64_t scale = 1, frac;
	unsigned int d = digits;

	for (unsigned int i = 0; i < digits; i++)
		scale *= 10;
	frac = val % scale;
	if (!frac) {
		vms_sb_add(l, "%" PRIu64, val / scale);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		d--;
	}
	vms_sb_add(l, "%" PRIu64 ".%0*" PRIu64, val / scale, (int)d, frac);
}

/* A load rate in millionths per second; false when it does not fit the guest's parser. */
static bool rate_micro(double rate, uint64_t *out)
{
	if (!(rate >= 0) || rate > 1e6)
		return false;
	*out = (uint64_t)llround(rate * 1e6);
	return true;
}

int vms_testvm_multiboot_cmdline(const struct vms_testvm_opts *opts, uint64_t tsc_khz, char *buf,
				 size_t len)
{
	struct vms_strbuf l = { buf, len, 0, len == 0 };
	uint64_t period_ns, start_ns, mmio, pio, hc;

	if (!opts || opts->sz < sizeof(*opts) || !opts->nphases ||
	    opts->nphases > VMS_TESTVM_MAX_PHASES || !opts->phases || opts->msr_rate != 0 ||
	    tsc_khz < 1000 || tsc_khz > 10000000 || !buf || !len ||
	    !rate_micro(opts->mmio_rate, &mmio) || !rate_micro(opts->pio_rate, &pio) ||
	    !rate_micro(opts->hypercall_rate, &hc))
		return -EINVAL;
	period_ns = opts->period_ns ? opts->period_ns : 100000000ULL;
	start_ns = opts->start_delay_ns ? opts->start_delay_ns : 50000000ULL;
	if (period_ns % 1000 || start_ns % 1000 || period_ns < 1000000 ||
	    period_ns > 3600000000000ULL || start_ns > 60000000000ULL)
		return -EINVAL;
	for (unsigned int p = 0; p < opts->nphases; p++)
		if (opts->phases[p].duty > 100 || !opts->phases[p].duration_ns ||
		    opts->phases[p].duration_ns % 1000 ||
		    opts->phases[p].duration_ns > 604800000000000ULL)
			return -EINVAL;

	vms_sb_add(&l, "tsc_khz=%" PRIu64 " period_ms=", tsc_khz);
	line_fixed(&l, period_ns / 1000, 3);
	vms_sb_add(&l, " start_ms=");
	line_fixed(&l, start_ns / 1000, 3);
	vms_sb_add(&l, " sched=");
	for (unsigned int p = 0; p < opts->nphases; p++) {
		line_fixed(&l, opts->phases[p].duration_ns / 1000, 6);
		vms_sb_add(&l, ":%u%s", opts->phases[p].duty, p + 1 < opts->nphases ? "," : "");
	}
	if (mmio) {
		vms_sb_add(&l, " mmio=");
		line_fixed(&l, mmio, 6);
	}
	if (pio) {
		vms_sb_add(&l, " pio=");
		line_fixed(&l, pio, 6);
	}
	if (hc) {
		/* The instruction this host's KVM expects, as vms_testvm_new() chooses it. */
		vms_sb_add(&l, " hypercall=");
		line_fixed(&l, hc, 6);
		vms_sb_add(&l, " hc=%s", tvm_host_is_amd() ? "vmmcall" : "vmcall");
	}
	/* The guest keeps TVM_BOOT_CMDLINE_MAX bytes, QEMU's file name of the kernel included. */
	if (l.full || l.len + 1 > TVM_BOOT_CMDLINE_MAX - 256)
		return -ENOSPC;
	return 0;
}
