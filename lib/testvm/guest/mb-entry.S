/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test VM guest, multiboot entry: the header that lets QEMU (-kernel) and libvirt (<kernel>)
 * load the guest as a multiboot v1 kernel, and the way from 32-bit protected mode (the boot
 * processor, from the loader) or real mode (the other processors, from a SIPI) to 64-bit
 * kernel mode, where mb-boot.c does the rest.
 *
 * QEMU refuses 64-bit ELF multiboot kernels, so the image is a flat binary whose header
 * uses the "a.out kludge" (flag 16): it names the load and entry addresses itself. The
 * image is linked at TVM_IMAGE_GPA, like the VMM's.
 *
 * Every instruction here is emulated on KVM-PVM hosts: the path is kept to a few dozen.
 */
#define TVM_GUEST
#include "tvm-abi.h"

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00010000 /* bit 16: the address fields below are valid */
#define MB_BOOT_MAGIC 0x2badb002
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_VALUE 0x80050033 /* PG WP NE ET MP PE, as the VMM sets it */
#define CR4_PAE 0x20

	.section .mbheader, "a"
	.balign 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header		/* header_addr */
	.long mb_header		/* load_addr: the header is the first byte of the image */
	.long _mb_load_end	/* load_end_addr */
	.long _mb_bss_end	/* bss_end_addr */
	.long mb_entry		/* entry_addr */

	.text
	.code32
/* Boot processor: EAX = multiboot magic, EBX = multiboot information, flat segments. */
	.globl mb_entry
mb_entry:
	cli
	cmpl $MB_BOOT_MAGIC, %eax
	jne mb_park32
	movl %ebx, mb_info
	/* cpu 0's kernel stack, below its index slot (tvm-tables.h) */
	movl $(TVM_STACK_GPA + TVM_KSTACK_SIZE - 16), %esp
	/* Mask both 8259 PICs: the firmware left the PIT on IRQ0 at vector 8. */
	movb $0xff, %al
	outb %al, $0xa1
	outb %al, $0x21
	/* Bootstrap page tables in .bss: the first 4 MiB, where everything the boot code
	 * touches lies, until mb-boot.c has built the real ones. */
	xorl %eax, %eax
	movl $mb_boot_pml4, %edi
	movl $(3 * 4096 / 4), %ecx
	rep stosl
	movl $(mb_boot_pdpt + 3), mb_boot_pml4
	movl $(mb_boot_pd + 3), mb_boot_pdpt
	movl $0x83, mb_boot_pd
	movl $0x200083, mb_boot_pd + 8
	lgdt mb_boot_gdtr
	xorl %edi, %edi		/* cpu 0 */
	movl $mb_boot_pml4, %eax

/* EAX = page tables, EDI = cpu index, ESP = its kernel stack. */
mb_long_mode:
	movl %eax, %cr3
	movl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl $CR0_VALUE, %eax
	movl %eax, %cr0
	ljmp $TVM_SEL_KCODE, $mb_entry64

/* Another processor, from the trampoline: the real GDT is loaded, paging is off. */
mb_ap_entry32:
	movl $TVM_SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $1, %eax
	lock xaddl %eax, mb_next_cpu
	cmpl $TVM_MAX_VCPUS, %eax
	jae mb_park32
	movl %eax, %edi
	imull $(TVM_KSTACK_SIZE + TVM_USTACK_SIZE), %eax, %esp
	addl $(TVM_STACK_GPA + TVM_KSTACK_SIZE - 16), %esp
	movl $TVM_PML4_GPA, %eax
	jmp mb_long_mode

mb_park32:
	cli
	hlt
	jmp mb_park32

	.code64
mb_entry64:
	movl $TVM_SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movl %esp, %esp		/* the upper halves are undefined after the mode switch */
	movl %edi, %edi
	call mb_cpu_main
1:	cli
	hlt
	jmp 1b

/*
 * The APs' real-mode start, copied to TVM_TRAMPOLINE_GPA by mb-boot.c (a SIPI starts a
 * processor at CS = vector << 8, IP = 0): load the real GDT, which the boot processor has
 * built by then, enter protected mode, jump into the image.
 */
	.section .rodata
	.code16
	.globl mb_trampoline, mb_trampoline_end
mb_trampoline:
	cli
	movw %cs, %ax
	movw %ax, %ds
	lgdtl mb_tramp_gdtr - mb_trampoline
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $TVM_SEL_KCODE32, $mb_ap_entry32
	.balign 4
mb_tramp_gdtr:
	.word TVM_SEL_TSS(TVM_MAX_VCPUS) - 1
	.long TVM_GDT_GPA
mb_trampoline_end:
	.code64

/* The boot processor's GDT until mb-boot.c loads the real one: the same descriptors at
 * the same selectors (tvm-tables.h). */
	.balign 8
mb_boot_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* TVM_SEL_KCODE32 */
	.quad 0x00af9a000000ffff	/* TVM_SEL_KCODE */
	.quad 0x00cf92000000ffff	/* TVM_SEL_KDATA */
mb_boot_gdtr:
	.word mb_boot_gdtr - mb_boot_gdt - 1
	.long mb_boot_gdt

	.data
	.balign 4
	.globl mb_info, mb_next_cpu
mb_info:
	.long 0
mb_next_cpu:			/* the next AP's index: cpu 0 is the boot processor */
	.long 1

	.section .bss
	.balign 4096
mb_boot_pml4:
	.skip 4096
mb_boot_pdpt:
	.skip 4096
mb_boot_pd:
	.skip 4096
