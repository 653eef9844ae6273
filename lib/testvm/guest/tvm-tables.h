/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test VM's descriptor tables and page tables, one copy for both ways the guest starts:
 * the VMM (vmm.c) writes them into guest memory before the first KVM_RUN, and the
 * multiboot boot code (mb-boot.c) writes them itself, in guest kernel mode, through its
 * identity map. Either way they land at the fixed guest-physical addresses of tvm-abi.h with
 * the same contents: Linux's x86_64 GDT layout, one TSS per vCPU whose rsp0 slot holds the
 * vCPU index, an IDT pointing at the guest's entry stubs, and an identity map of the first
 * 4 GiB in 2 MiB pages.
 *
 * Compiled freestanding into the guest and hosted into the library: tvm-abi.h types and
 * compiler builtins only.
 */
#ifndef VMS_TVM_TABLES_H
#define VMS_TVM_TABLES_H

#include "tvm-abi.h"

/* Unaligned stores (TSS fields are not 8-byte aligned). */
static inline void tvm_put64(unsigned char *p, tvm_u64 v)
{
	__builtin_memcpy(p, &v, sizeof(v));
}

static inline void tvm_put16(unsigned char *p, unsigned short v)
{
	__builtin_memcpy(p, &v, sizeof(v));
}

static inline tvm_u64 tvm_gdt_code64(unsigned int dpl)
{
	/* present, code, readable, long mode (L=1), granularity 4K, limit 0xfffff */
	return 0x00af9a000000ffffULL | ((tvm_u64)dpl << 45);
}

/*
 * tvm_build_tables() - write the GDT, IDT, TSSs and page tables
 * @mem: guest-physical address 0 as the builder sees it (the VMM's mapping of guest RAM, or
 *	 the guest's own identity map)
 * @nvcpus: vCPUs to give a TSS and a kernel stack index slot
 * @hdr: the guest image's header, for the entry points the IDT points at
 *
 * Only the entries in use are written: the rest of the table pages must be zero already
 * (fresh VMM memory is; the multiboot guest clears them first).
 */
static inline void tvm_build_tables(unsigned char *mem, unsigned int nvcpus,
				    const struct tvm_image_header *hdr)
{
	tvm_u64 *gdt = (tvm_u64 *)(mem + TVM_GDT_GPA);
	tvm_u64 *idt = (tvm_u64 *)(mem + TVM_IDT_GPA);
	tvm_u64 *pml4 = (tvm_u64 *)(mem + TVM_PML4_GPA);
	tvm_u64 *pdpt = (tvm_u64 *)(mem + TVM_PDPT_GPA);
	tvm_u64 *pd = (tvm_u64 *)(mem + TVM_PD_GPA);

	/* GDT: Linux's x86_64 selector layout, then one 16-byte TSS descriptor per vCPU. */
	gdt[0] = 0;
	gdt[TVM_SEL_KCODE32 / 8] = 0x00cf9a000000ffffULL;
	gdt[TVM_SEL_KCODE / 8] = tvm_gdt_code64(0);
	gdt[TVM_SEL_KDATA / 8] = 0x00cf92000000ffffULL;
	gdt[TVM_SEL_UCODE32 / 8] = 0x00cffa000000ffffULL;
	gdt[TVM_SEL_UDATA / 8] = 0x00cff2000000ffffULL;
	gdt[TVM_SEL_UCODE / 8] = tvm_gdt_code64(3);
	for (unsigned int c = 0; c < nvcpus; c++) {
		tvm_u64 base = TVM_TSS_GPA + 128ULL * c, lim = 103;
		unsigned char *tss = mem + base;
		unsigned int e = TVM_SEL_TSS(c) / 8;
		tvm_u64 ktop = TVM_STACK_GPA + (tvm_u64)c * (TVM_KSTACK_SIZE + TVM_USTACK_SIZE) +
			       TVM_KSTACK_SIZE;
		tvm_u64 rsp0 = ktop - 16;

		/* The guest finds its vCPU index in the slot above rsp0 (guest.c). */
		tvm_put64(mem + rsp0, c);
		tvm_put64(tss + 4, rsp0);
		tvm_put16(tss + 102, 104); /* no I/O permission bitmap */
		gdt[e] = (lim & 0xffff) | ((base & 0xffffff) << 16) | (0x89ULL << 40) |
			 (((lim >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
		gdt[e + 1] = base >> 32;
	}

	/* IDT: faults to the fault stubs, #UD to the service handler, our vectors. */
	for (unsigned int v = 0; v < 256; v++) {
		tvm_u64 fn = hdr->isr_spurious;

		if (v < 32)
			fn = hdr->isr_faults + (tvm_u64)v * TVM_FAULT_STUB_SIZE;
		if (v == 6)
			fn = hdr->isr_ud;
		if (v == TVM_VEC_TIMER || v == TVM_VEC_WAKE)
			fn = hdr->isr_timer;
		idt[2 * v] = (fn & 0xffff) | ((tvm_u64)TVM_SEL_KCODE << 16) | (0x8eULL << 40) |
			     (((fn >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = fn >> 32;
	}

	/* Identity map of the first 4 GiB in 2 MiB pages, user-accessible; the MMIO and
	 * local APIC ranges uncached. */
	pml4[0] = TVM_PDPT_GPA | 0x7;
	for (unsigned int i = 0; i < 4; i++)
		pdpt[i] = (TVM_PD_GPA + 0x1000ULL * i) | 0x7;
	for (tvm_u64 i = 0; i < 2048; i++) {
		tvm_u64 addr = i << 21;

		pd[i] = addr | 0x87; /* P RW US PS */
		if (addr >= 0xc0000000ULL)
			pd[i] |= 0x18; /* PWT PCD */
	}
}

#endif /* VMS_TVM_TABLES_H */
