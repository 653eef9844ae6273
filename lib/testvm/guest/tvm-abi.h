/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The contract between vmscope's test VM monitor (lib/testvm/vmm.c) and its guest
 * (lib/testvm/guest/): guest-physical memory layout, the shared control block through which
 * the VMM hands the guest its schedule and the guest reports what it did, and the MMIO
 * addresses and I/O port whose exits the guest causes on purpose.
 *
 * Everything the guest counts lives in guest RAM, so the VMM can read it at any moment,
 * also after a SIGTERM in the middle of a phase. Times are guest TSC ticks.
 *
 * The same guest also boots as a multiboot kernel under QEMU (mb-entry.S, mb-boot.c): then
 * it fills in the shared block itself, from its command line, and the host reads it back
 * from a dump of guest memory (vms_testvm_open_dump()).
 *
 * This header is compiled twice: freestanding into the guest, hosted into the library.
 */
#ifndef VMS_TVM_ABI_H
#define VMS_TVM_ABI_H

#ifdef __ASSEMBLER__
#define TVM_UL(x) x
#else
#define TVM_UL(x) x##UL
#endif

#ifndef __ASSEMBLER__
#ifdef TVM_GUEST
typedef unsigned long tvm_u64;
typedef unsigned int tvm_u32;
#else
#include <stdint.h>
typedef uint64_t tvm_u64;
typedef uint32_t tvm_u32;
#endif
#endif

#define TVM_MAX_VCPUS 64
#define TVM_MAX_PHASES 32
#define TVM_PHASE_NONE TVM_MAX_PHASES

/* Guest-physical layout (identity-mapped: guest virtual == guest physical). */
#define TVM_GDT_GPA TVM_UL(0x1000)
#define TVM_IDT_GPA TVM_UL(0x2000)
#define TVM_TSS_GPA TVM_UL(0x3000) /* TVM_MAX_VCPUS x 128 bytes */
#define TVM_PML4_GPA TVM_UL(0x5000)
#define TVM_PDPT_GPA TVM_UL(0x6000)
#define TVM_PD_GPA TVM_UL(0x7000) /* 4 pages: 4 GiB in 2 MiB pages */
#define TVM_TABLES_END TVM_UL(0xb000)
#define TVM_TRAMPOLINE_GPA TVM_UL(0xf000) /* multiboot only: where the APs start (SIPI) */
#define TVM_SHARED_GPA TVM_UL(0x20000)
#define TVM_IMAGE_GPA TVM_UL(0x100000)
#define TVM_IMAGE_MAX TVM_UL(0x100000)
#define TVM_STACK_GPA TVM_UL(0x200000) /* per vCPU: kernel stack, then user stack */
#define TVM_KSTACK_SIZE TVM_UL(0x4000)
#define TVM_USTACK_SIZE TVM_UL(0x4000)
#define TVM_RAM_SIZE (TVM_STACK_GPA + TVM_MAX_VCPUS * (TVM_KSTACK_SIZE + TVM_USTACK_SIZE))

/* Segment selectors: Linux x86_64's layout, because KVM-PVM maps the guest's user CS/SS
 * onto the host's (__USER_CS = 0x33, __USER_DS = 0x2b). */
#define TVM_SEL_KCODE32 0x08
#define TVM_SEL_KCODE 0x10
#define TVM_SEL_KDATA 0x18
#define TVM_SEL_UCODE32 0x23
#define TVM_SEL_UDATA 0x2b
#define TVM_SEL_UCODE 0x33
#define TVM_SEL_TSS(cpu) (0x40 + 16 * (cpu))

/* Interrupt vectors. */
#define TVM_VEC_TIMER 0xec
#define TVM_VEC_WAKE 0xed /* sent by the VMM (MSI) to wake a halted vCPU on stop */
#define TVM_VEC_SPURIOUS 0xff

/* Unbacked guest-physical addresses: every access exits to the VMM (KVM_EXIT_MMIO). */
#define TVM_MMIO_LOAD_GPA TVM_UL(0xe8000000) /* --mmio load: value = cpu << 24 | seq & 0xffffff */
#define TVM_MMIO_CTL_GPA TVM_UL(0xe8001000)  /* control: offset selects the message */
#define TVM_CTL_DONE 0x0		/* value = cpu: this vCPU finished its schedule */
#define TVM_CTL_FAULT 0x8		/* value = cpu: unexpected exception, see fault_* */
#define TVM_PIO_PORT 0x5a0		/* --pio load: OUT from guest kernel mode, value = seq */
#define TVM_MSR_INDEX 0x40000ffe	/* --msr load: WRMSR from guest kernel mode, filtered
					 * by the VMM so that it exits to user space */
#define TVM_HC_NR 0x564d53		/* --hypercall load: VMCALL/VMMCALL from user mode */

/* Guest services, requested from user mode with ud2 and the service number in rax. */
#define TVM_SVC_IDLE 1 /* rdi = TSC deadline: halt until then */
#define TVM_SVC_PIO 2  /* rdi = value: outl to TVM_PIO_PORT */
#define TVM_SVC_MSR 3  /* rdi = value: wrmsr TVM_MSR_INDEX */

/* A gap this long (microseconds) around one chunk of busy work (~0.1 us) is a stall: long
 * enough to leave out the host's interrupt handling (20-50 us on KVM-PVM), which the vCPU
 * thread's run time includes. */
#define TVM_STALL_US 100

/* What a vCPU is doing right now (tvm_vcpu.seg_kind). */
#define TVM_SEG_NONE 0
#define TVM_SEG_BUSY 1
#define TVM_SEG_IDLE 2

#define TVM_IMAGE_MAGIC 0x4d56544d /* "MTVM" */

/* Multiboot boot (mb-boot.c): why the guest refused to run (tvm_boot.error). */
#define TVM_BOOT_MAGIC 0x544f4f42 /* "BOOT" */
#define TVM_BOOT_CMDLINE_MAX 1024
#define TVM_BOOT_OK 0
#define TVM_BOOT_E_SYNTAX 1	    /* a value did not parse or is out of range */
#define TVM_BOOT_E_UNKNOWN 2	    /* an unknown parameter */
#define TVM_BOOT_E_NO_TSC_KHZ 3	    /* tsc_khz= is missing */
#define TVM_BOOT_E_MSR 4	    /* msr= asked for: QEMU has no MSR filter to count them */
#define TVM_BOOT_E_TOO_LONG 5	    /* the command line does not fit TVM_BOOT_CMDLINE_MAX */
#define TVM_BOOT_E_NO_TSC_DEADLINE 6 /* the CPU model lacks the TSC-deadline timer */
#define TVM_BOOT_E_PHASES 7	    /* more than TVM_MAX_PHASES phases */

#ifndef __ASSEMBLER__
struct tvm_phase {
	tvm_u64 start_tsc;
	tvm_u64 end_tsc;
	tvm_u32 duty; /* percent */
	tvm_u32 pad;
};

/* What one vCPU did in one phase, as the guest counted it. */
struct tvm_vcpu_phase {
	tvm_u64 busy_tsc;
	tvm_u64 idle_tsc;	/* halted, up to the deadline it asked for */
	tvm_u64 late_tsc;	/* the rest of the phase: the host kept the vCPU from its schedule */
	tvm_u64 late_max_tsc;	/* the longest single hold past a deadline */
	tvm_u64 wakeups;	/* idle parts ended (a period reached past its end has none) */
	tvm_u64 work;	/* units of computation done while busy */
	tvm_u64 mmio;	/* load MMIO writes (each one exit to the VMM) */
	tvm_u64 pio;	/* load OUT instructions (each one exit to the VMM) */
	tvm_u64 msr;	/* load WRMSRs (each one exit to the VMM) */
	tvm_u64 hypercall; /* load hypercalls (handled by the host kernel, not the VMM) */
	tvm_u64 hypercall_eperm; /* ... that returned -KVM_EPERM (-1), as from user mode */
	tvm_u64 mmio_missed; /* load exits owed when a busy part ended, not made */
	tvm_u64 pio_missed;
	tvm_u64 msr_missed;
	tvm_u64 hypercall_missed;
	tvm_u64 hlt;	/* HLT instructions executed (kernel mode) */
	tvm_u64 irq;	/* interrupts taken (timer and wake) */
	tvm_u64 periods;
	tvm_u64 stall_tsc; /* inside busy parts, gaps of TVM_STALL_US or more between two TSC
			    * reads around one chunk of work: the vCPU did not run (preempted,
			    * or its host CPU taken by a hypervisor below, at any depth) */
	tvm_u64 stalls;	   /* how many such gaps */
};

struct tvm_vcpu {
	volatile tvm_u32 phase;	   /* index of the phase running now */
	volatile tvm_u32 seg_kind; /* TVM_SEG_* */
	volatile tvm_u64 seg_start; /* TSC at which the current segment began */
	volatile tvm_u32 started;  /* guest code reached user_main */
	volatile tvm_u32 done;	   /* schedule finished (or stopped) */
	tvm_u64 ctl_mmio;	   /* control MMIO writes (DONE, FAULT) */
	tvm_u64 result;		   /* last value of the computation (keeps it real) */
	tvm_u64 fault_vector, fault_error, fault_rip, fault_cs, fault_cr2;
	/* ph[TVM_PHASE_NONE] counts what happens outside the schedule (before its start). */
	struct tvm_vcpu_phase ph[TVM_MAX_PHASES + 1];
};

/* Multiboot boot only: how the guest set itself up (all zero under the VMM). */
struct tvm_boot {
	tvm_u32 magic;		/* TVM_BOOT_MAGIC once the boot code ran */
	tvm_u32 error;		/* TVM_BOOT_E_*: why the guest refused to run, 0 if it runs */
	tvm_u32 error_pos;	/* offset in cmdline of the parameter it refused */
	tvm_u32 cpus_announced; /* CPUs the firmware announced (QEMU fw_cfg), 0 if unknown */
	tvm_u32 shared_size;	/* sizeof(struct tvm_shared) and sizeof(struct tvm_vcpu): */
	tvm_u32 vcpu_size;	/* lets a reader check that it knows this layout */
	char cmdline[TVM_BOOT_CMDLINE_MAX]; /* the multiboot command line, NUL-terminated */
};

#define TVM_SHARED_MAGIC 0x564d5354 /* "TSMV" */

struct tvm_shared {
	tvm_u32 magic;
	tvm_u32 nvcpus;
	tvm_u32 nphases;
	volatile tvm_u32 stop; /* set by the VMM: finish now */
	tvm_u64 tsc_khz;
	tvm_u64 period_tsc;
	tvm_u64 mmio_interval_tsc; /* 0: no load MMIO */
	tvm_u64 pio_interval_tsc;  /* 0: no load PIO */
	tvm_u64 msr_interval_tsc;  /* 0: no load WRMSR */
	tvm_u64 hc_interval_tsc;   /* 0: no load hypercall */
	tvm_u32 hc_vmmcall;	   /* 1: AMD's VMMCALL, 0: Intel's VMCALL */
	tvm_u32 pad0;
	tvm_u64 start_tsc;	   /* start of phase 0 */
	struct tvm_phase phases[TVM_MAX_PHASES];
	struct tvm_boot boot;
	struct tvm_vcpu vcpu[TVM_MAX_VCPUS]; /* last: a dump needs to cover nvcpus of them */
};

/* At the start of the guest image: where the VMM finds the guest's entry points. */
struct tvm_image_header {
	tvm_u32 magic;
	tvm_u32 version;
	tvm_u64 user_entry;   /* user_main(cpu, shared) at CPL3 */
	tvm_u64 isr_ud;	      /* #UD: service calls from user mode */
	tvm_u64 isr_timer;    /* TVM_VEC_TIMER and TVM_VEC_WAKE */
	tvm_u64 isr_spurious; /* plain iretq */
	tvm_u64 isr_faults;   /* 32 stubs, TVM_FAULT_STUB_SIZE bytes apart */
	tvm_u64 image_end;    /* end of .bss */
};

#endif /* __ASSEMBLER__ */

#define TVM_FAULT_STUB_SIZE 16

#endif /* VMS_TVM_ABI_H */
