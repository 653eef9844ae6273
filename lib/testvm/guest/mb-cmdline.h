/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The multiboot guest's command line: its parser, and the schedule in TSC ticks that it
 * makes of it, computed as vms_testvm_run() computes it for the VMM's guest. The boot code
 * (mb-boot.c) uses it in guest kernel mode; the unit tests use it on the host, so that the
 * line vms_testvm_multiboot_cmdline() writes is checked to give the VMM's very schedule.
 *
 *   tsc_khz=KHZ                    the guest TSC frequency; required (1000 to 10000000)
 *   period_ms=MS                   duty-cycle period, to the microsecond [100]
 *   start_ms=MS                    from "all CPUs up" to the start of phase 0 [50]
 *   sched=SECONDS:DUTY[,...]       the phases, seconds to the microsecond [2:0,4:75,4:90]
 *   mmio=RATE pio=RATE hypercall=RATE   load exits per second of busy time, to 10^-6 [0]
 *   hc=vmcall|vmmcall              the hypercall instruction [from the CPU vendor]
 *   msr=0                          accepted; any other rate is refused (no MSR filter)
 *
 * Words without '=' are skipped (QEMU puts the kernel's file name first); any other word
 * is an error. Freestanding: no library calls, integer arithmetic only.
 */
#ifndef VMS_TVM_MB_CMDLINE_H
#define VMS_TVM_MB_CMDLINE_H

#include "tvm-abi.h"

#define MB_DEF_PERIOD_US 100000
#define MB_DEF_START_US 50000

struct mb_params {
	tvm_u64 tsc_khz, period_us, start_us;
	tvm_u64 rate_micro[3]; /* mmio, pio, hypercall; per 10^6 s of busy time */
	int hc;		       /* -1: from the CPU vendor, 0: VMCALL, 1: VMMCALL */
	tvm_u32 nphases;
	tvm_u64 dur_us[TVM_MAX_PHASES];
	tvm_u32 duty[TVM_MAX_PHASES];
};

static inline int mb_streq(const char *a, const char *aend, const char *b)
{
	for (; a < aend; a++, b++)
		if (*a != *b)
			return 0;
	return *b == '\0';
}

/*
 * A decimal number with at most @frac fraction digits, as an integer scaled by 10^frac
 * ("1.5" with @frac 3 is 1500), at most @max. Return 0, or -1.
 */
static inline int mb_parse_dec(const char *s, const char *end, tvm_u32 frac, tvm_u64 max,
			       tvm_u64 *out)
{
	tvm_u64 v = 0;
	tvm_u32 digits = 0, nfrac = 0;
	int dot = 0;

	for (; s < end; s++) {
		if (*s == '.' && !dot) {
			dot = 1;
			continue;
		}
		if (*s < '0' || *s > '9' || (dot && nfrac == frac) || v >= 1000000000000000000UL)
			return -1;
		v = v * 10 + (tvm_u64)(*s - '0');
		digits++;
		nfrac += (tvm_u32)dot;
	}
	for (; nfrac < frac; nfrac++) {
		if (v >= 1000000000000000000UL)
			return -1;
		v *= 10;
	}
	if (!digits || v > max)
		return -1;
	*out = v;
	return 0;
}

/* sched=SECONDS:DUTY[,SECONDS:DUTY...]; seconds to the microsecond, at most a week. */
static inline tvm_u32 mb_parse_sched(const char *s, const char *end, struct mb_params *p)
{
	p->nphases = 0;
	if (s == end)
		return TVM_BOOT_E_SYNTAX;
	while (s < end) {
		const char *item = s, *colon = 0;
		tvm_u64 us, duty;

		while (s < end && *s != ',') {
			if (*s == ':' && !colon)
				colon = s;
			s++;
		}
		if (!colon || mb_parse_dec(item, colon, 6, 604800000000UL, &us) || !us ||
		    mb_parse_dec(colon + 1, s, 0, 100, &duty))
			return TVM_BOOT_E_SYNTAX;
		if (p->nphases == TVM_MAX_PHASES)
			return TVM_BOOT_E_PHASES;
		p->dur_us[p->nphases] = us;
		p->duty[p->nphases++] = (tvm_u32)duty;
		if (s < end && ++s == end)
			return TVM_BOOT_E_SYNTAX; /* a comma at the end */
	}
	return 0;
}

static inline tvm_u32 mb_parse_param(const char *k, const char *kend, const char *v,
				     const char *vend, struct mb_params *p)
{
	static const char *const rates[3] = { "mmio", "pio", "hypercall" };
	tvm_u64 x;

	if (mb_streq(k, kend, "tsc_khz"))
		return mb_parse_dec(v, vend, 0, 10000000, &p->tsc_khz) || p->tsc_khz < 1000
			       ? TVM_BOOT_E_SYNTAX
			       : 0;
	if (mb_streq(k, kend, "period_ms"))
		return mb_parse_dec(v, vend, 3, 3600000000UL, &p->period_us) ||
				       p->period_us < 1000
			       ? TVM_BOOT_E_SYNTAX
			       : 0;
	if (mb_streq(k, kend, "start_ms"))
		return mb_parse_dec(v, vend, 3, 60000000, &p->start_us) ? TVM_BOOT_E_SYNTAX : 0;
	if (mb_streq(k, kend, "sched"))
		return mb_parse_sched(v, vend, p);
	for (int i = 0; i < 3; i++)
		if (mb_streq(k, kend, rates[i]))
			return mb_parse_dec(v, vend, 6, 1000000000000UL, &p->rate_micro[i])
				       ? TVM_BOOT_E_SYNTAX
				       : 0;
	if (mb_streq(k, kend, "msr")) {
		/* QEMU has no MSR filter: the WRMSR would #GP instead of exiting. */
		if (mb_parse_dec(v, vend, 6, 1000000000000UL, &x))
			return TVM_BOOT_E_SYNTAX;
		return x ? TVM_BOOT_E_MSR : 0;
	}
	if (mb_streq(k, kend, "hc")) {
		if (mb_streq(v, vend, "vmcall"))
			p->hc = 0;
		else if (mb_streq(v, vend, "vmmcall"))
			p->hc = 1;
		else
			return TVM_BOOT_E_SYNTAX;
		return 0;
	}
	return TVM_BOOT_E_UNKNOWN;
}

/* Parse b->cmdline into @p; on error, b->error_pos is the refused word's offset.
 * Return: 0 or a TVM_BOOT_E_* code. */
static inline tvm_u32 mb_parse_cmdline(struct tvm_boot *b, struct mb_params *p)
{
	const char *s = b->cmdline;

	p->tsc_khz = 0;
	p->period_us = MB_DEF_PERIOD_US;
	p->start_us = MB_DEF_START_US;
	p->rate_micro[0] = p->rate_micro[1] = p->rate_micro[2] = 0;
	p->hc = -1;
	p->dur_us[0] = 2000000;
	p->duty[0] = 0;
	p->dur_us[1] = 4000000;
	p->duty[1] = 75;
	p->dur_us[2] = 4000000;
	p->duty[2] = 90;
	p->nphases = 3;
	while (*s) {
		const char *w, *eq = 0;
		tvm_u32 err;

		while (*s == ' ' || *s == '\t')
			s++;
		w = s;
		while (*s && *s != ' ' && *s != '\t') {
			if (*s == '=' && !eq)
				eq = s;
			s++;
		}
		if (!eq)
			continue; /* the kernel's file name, or an empty tail */
		err = mb_parse_param(w, eq, eq + 1, s, p);
		if (err) {
			b->error_pos = (tvm_u32)(w - b->cmdline);
			return err;
		}
	}
	return p->tsc_khz ? 0 : TVM_BOOT_E_NO_TSC_KHZ;
}

/* Microseconds to TSC ticks as the VMM computes ns * tsc_khz / 10^6, without overflow. */
static inline tvm_u64 mb_us_to_tsc(tvm_u64 us, tvm_u64 tsc_khz)
{
	return us / 1000 * tsc_khz + us % 1000 * tsc_khz / 1000;
}

/* Ticks between two load exits, tsc_khz * 1000 / rate as the VMM computes it (at least 1). */
static inline tvm_u64 mb_interval(tvm_u64 tsc_khz, tvm_u64 rate_micro)
{
	tvm_u64 iv;

	if (!rate_micro)
		return 0;
	iv = tsc_khz * 1000000000UL / rate_micro;
	return iv ? iv : 1;
}

/* The schedule, as vms_testvm_run() writes it, with phase 0 starting at @start_tsc. */
static inline void mb_fill_schedule(const struct mb_params *p, tvm_u64 start_tsc,
				    struct tvm_shared *sh)
{
	tvm_u64 t = start_tsc;

	sh->tsc_khz = p->tsc_khz;
	sh->period_tsc = mb_us_to_tsc(p->period_us, p->tsc_khz);
	if (!sh->period_tsc)
		sh->period_tsc = 1;
	sh->mmio_interval_tsc = mb_interval(p->tsc_khz, p->rate_micro[0]);
	sh->pio_interval_tsc = mb_interval(p->tsc_khz, p->rate_micro[1]);
	sh->msr_interval_tsc = 0;
	sh->hc_interval_tsc = mb_interval(p->tsc_khz, p->rate_micro[2]);
	sh->start_tsc = t;
	for (tvm_u32 i = 0; i < p->nphases; i++) {
		sh->phases[i].start_tsc = t;
		t += mb_us_to_tsc(p->dur_us[i], p->tsc_khz);
		sh->phases[i].end_tsc = t;
		sh->phases[i].duty = p->duty[i];
	}
	sh->nphases = p->nphases;
}

#endif /* VMS_TVM_MB_CMDLINE_H */
