// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace's scenario: what the simulated guests do. The exit reasons of Intel VMX and
 * AMD SVM with the weights of a typical mix and the bounds of their latencies, and the
 * MMIO devices, I/O ports and MSRs that the exits touch, each emulated in the kernel or
 * by the VMM in user space. The simulation (gentrace-sim.c) draws from these tables, the
 * truth (gentrace-truth.c) counts by them; changing them changes every generated trace.
 */
#include "gentrace.h"

const struct reason vmx_reasons[] = {
	{ 1, "EXTERNAL_INTERRUPT", C_EXTINT, 14, 400, 6000 },
	{ 12, "HLT", C_HLT, 14, 2000, 150000 },
	{ 48, "EPT_VIOLATION", C_PF, 12, 600, 25000 },
	{ 49, "EPT_MISCONFIG", C_MMIO, 12, 1500, 60000 },
	{ 30, "IO_INSTRUCTION", C_IO, 14, 1000, 50000 },
	{ 32, "MSR_WRITE", C_MSR_W, 14, 300, 3000 },
	{ 31, "MSR_READ", C_MSR_R, 5, 300, 2000 },
	{ 10, "CPUID", C_PLAIN, 4, 200, 1500 },
	{ 52, "PREEMPTION_TIMER", C_TIMER, 9, 300, 4000 },
	{ 99, "unknown", C_PLAIN, 2, 1000, 12000 },
};

const struct reason svm_reasons[] = {
	{ 0x060, "interrupt", C_EXTINT, 18, 400, 6000 }, { 0x078, "hlt", C_HLT, 14, 2000, 150000 },
	{ 0x400, "npf", C_NPF, 22, 600, 50000 },	 { 0x07b, "io", C_IO, 14, 1000, 50000 },
	{ 0x07c, "msr", C_MSR, 20, 300, 3000 },		 { 0x072, "cpuid", C_PLAIN, 5, 200, 1500 },
	{ 0x0ff, "unknown", C_PLAIN, 2, 1000, 12000 },
};

_Static_assert(ARRAY_SIZE(vmx_reasons) == NR_VMX_REASONS, "NR_VMX_REASONS");
_Static_assert(ARRAY_SIZE(svm_reasons) == NR_SVM_REASONS, "NR_SVM_REASONS");
_Static_assert(NR_VMX_REASONS <= MAX_REASONS && NR_SVM_REASONS <= MAX_REASONS,
	       "struct thread keeps MAX_REASONS exit statistics");

const struct mmio_dev mmio_devs[] = {
	{ 0xfec00000, false, 4 }, /* IOAPIC, in the kernel */
	{ 0xfee00300, false, 4 }, /* local APIC ICR, in the kernel */
	{ 0xfebc1000, true, 4 },  /* a virtio-net doorbell */
	{ 0xfebd2000, true, 2 },  /* a virtio-blk register */
	{ 0xfe000000, true, 8 },  /* display memory */
};
_Static_assert(ARRAY_SIZE(mmio_devs) == NR_MMIO_DEVS, "NR_MMIO_DEVS");

const struct pio_port pio_ports[] = {
	{ 0x3f8, true, 1 },  /* serial data */
	{ 0x3fd, true, 1 },  /* serial line status */
	{ 0xcf8, true, 4 },  /* PCI config address */
	{ 0xcfc, true, 4 },  /* PCI config data */
	{ 0x70, true, 1 },   /* RTC index */
	{ 0x40, false, 1 },  /* PIT, in the kernel */
	{ 0x20, false, 1 },  /* PIC, in the kernel */
	{ 0xb008, true, 4 }, /* ACPI PM timer */
};
_Static_assert(ARRAY_SIZE(pio_ports) == NR_PIO_PORTS, "NR_PIO_PORTS");

const uint32_t msr_idx[] = {
	0x6e0,	    /* TSC_DEADLINE (write) */
	0x830,	    /* x2APIC ICR (write) */
	0x80b,	    /* x2APIC EOI (write) */
	0x48,	    /* SPEC_CTRL (write) */
	0x1b,	    /* APIC_BASE (read) */
	0x10,	    /* TSC (read) */
	0xc0000103, /* TSC_AUX (read) */
};
_Static_assert(ARRAY_SIZE(msr_idx) == NR_MSRS, "NR_MSRS");
