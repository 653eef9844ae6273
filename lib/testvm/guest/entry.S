/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test VM guest: image header and the kernel-mode entry stubs. The VMM builds the GDT, IDT,
 * TSS and page tables itself and starts every vCPU directly in 64-bit user mode at
 * user_main, so the only kernel-mode code is what runs on a trap or an interrupt. On
 * KVM-PVM every kernel-mode instruction is emulated by the host, so these paths are kept
 * to a few dozen instructions.
 */
#define TVM_GUEST
#include "tvm-abi.h"

	.section .header, "a"
	.globl tvm_header
tvm_header:
	.long TVM_IMAGE_MAGIC
	.long 1
	.quad user_main
	.quad isr_ud
	.quad isr_timer
	.quad isr_spurious
	.quad isr_faults
	.quad _image_end

	.text
/* Save the caller-saved registers, call fn(frame), restore, iretq. */
.macro TRAP_ENTRY fn
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %rsp, %rdi
	call \fn
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
.endm

	.globl isr_ud
isr_ud:
	pushq $0		/* no error code */
	pushq $6
	TRAP_ENTRY kernel_service
	addq $16, %rsp
	iretq

	.globl isr_timer
isr_timer:
	pushq $0
	pushq $TVM_VEC_TIMER
	TRAP_ENTRY kernel_interrupt
	addq $16, %rsp
	iretq

	.globl isr_spurious
isr_spurious:
	iretq

/* 32 fault stubs of TVM_FAULT_STUB_SIZE bytes; vectors with an error code have one pushed
 * by the CPU, the others push 0 so that the frame has one shape. */
	.balign TVM_FAULT_STUB_SIZE
	.globl isr_faults
isr_faults:
	.set vec, 0
	.rept 32
	.balign TVM_FAULT_STUB_SIZE
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp fault_common
	.set vec, vec + 1
	.endr

fault_common:
	TRAP_ENTRY kernel_fault
1:	cli
	hlt
	jmp 1b
