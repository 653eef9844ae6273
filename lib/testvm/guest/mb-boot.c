// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Test VM guest, multiboot boot: what the VMM does from the outside (vmm.c), done by the
 * guest itself when QEMU or libvirt boots it as a multiboot kernel, so that the very same
 * duty-cycle load (guest.c's user_main, unchanged) runs under another VMM.
 *
 * The boot processor reads the schedule from the multiboot command line into the shared
 * block (where the host reads the truth back from a dump of guest memory), builds the
 * descriptor and page tables with the VMM's own builder (tvm-tables.h), starts the other
 * processors with INIT-SIPI-SIPI, waits until they are up, and sets the common start a
 * little later. Every processor then loads the tables, sets up its local APIC as the VMM
 * does through KVM_SET_LAPIC, and drops to user mode at user_main(cpu, shared) with the
 * VMM's selectors, stack and flags.
 *
 * The command line (mb-cmdline.h) gives the schedule. One the guest refuses is reported in
 * the shared block (tvm_boot.error) and on the first serial port, and no processor runs
 * the load.
 *
 * All of this is guest kernel mode, which KVM-PVM hosts emulate instruction by instruction:
 * it runs once, and keeps loops short.
 */
#define TVM_GUEST
#include "tvm-abi.h"
#include "tvm-tables.h"
#include "mb-cmdline.h"

typedef tvm_u64 u64;
typedef tvm_u32 u32;

#define LAPIC_BASE 0xfee00000UL
#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_INIT 0x4500 /* INIT, level assert */
#define ICR_SIPI 0x4600 /* start-up, level assert; | vector */
#define MSR_TSC_DEADLINE 0x6e0
#define COM1 0x3f8
#define FW_CFG_CTL 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_NB_CPUS 0x05

#define AP_WAIT_MS 2000	    /* how long the boot processor waits for announced APs */
#define AP_WAIT_UNKNOWN_MS 200 /* ... and for any AP when the firmware did not say */

extern const struct tvm_image_header tvm_header;		   /* entry.S */
extern const unsigned char mb_trampoline[], mb_trampoline_end[]; /* mb-entry.S */
extern u32 mb_info;
extern u32 mb_next_cpu;

void mb_cpu_main(u64 cpu);
void user_main(u64 cpu, struct tvm_shared *sh); /* guest.c */

static struct tvm_shared *const shared = (struct tvm_shared *)TVM_SHARED_GPA;
static u32 mb_go; /* the boot processor published the schedule */

/* ---- instructions ---- */

static inline u64 rdtsc(void)
{
	u32 lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 val)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((u32)val), "d"((u32)(val >> 32)));
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline void outb(unsigned short port, unsigned char val)
{
	__asm__ volatile("outb %0, %1" ::"a"(val), "Nd"(port));
}

static inline void outw(unsigned short port, unsigned short val)
{
	__asm__ volatile("outw %0, %1" ::"a"(val), "Nd"(port));
}

static inline unsigned char inb(unsigned short port)
{
	unsigned char v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void lapic_write(u32 reg, u32 val)
{
	*(volatile u32 *)(LAPIC_BASE + reg) = val;
}

/* Clear memory with one (emulated) string instruction rather than a loop. */
static inline void zero(void *p, u64 bytes)
{
	u64 n = bytes / 8;

	__asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(0UL) : "memory");
}

/* Guest-physical 0 as a pointer the compiler cannot reason about (it is mapped). */
static inline unsigned char *phys0(void)
{
	unsigned char *p;

	__asm__("" : "=r"(p) : "0"(0UL));
	return p;
}

/* ---- first serial port: one line for a person reading the console ---- */

static void con_puts(const char *s)
{
	for (; *s; s++)
		outb(COM1, (unsigned char)*s);
}

static void con_putu(u64 v)
{
	char buf[24], *p = buf + sizeof(buf) - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	con_puts(p);
}

static const char *boot_error_text(u32 err)
{
	switch (err) {
	case TVM_BOOT_E_SYNTAX:
		return "a value does not parse or is out of range";
	case TVM_BOOT_E_UNKNOWN:
		return "unknown parameter";
	case TVM_BOOT_E_NO_TSC_KHZ:
		return "tsc_khz= is missing";
	case TVM_BOOT_E_MSR:
		return "msr= is not available: QEMU cannot count WRMSR exits";
	case TVM_BOOT_E_TOO_LONG:
		return "the command line is too long";
	case TVM_BOOT_E_NO_TSC_DEADLINE:
		return "the CPU model lacks the TSC-deadline timer (use -cpu max)";
	case TVM_BOOT_E_PHASES:
		return "more than 32 phases";
	default:
		return "error";
	}
}

/* ---- the other processors ---- */

/* CPUs QEMU was started with (-smp), through its firmware configuration device; 0 when
 * there is none. */
static u32 fw_cfg_cpus(void)
{
	static const char sig[4] = { 'Q', 'E', 'M', 'U' };
	u32 n;

	outw(FW_CFG_CTL, FW_CFG_SIGNATURE);
	for (int i = 0; i < 4; i++)
		if (inb(FW_CFG_DATA) != (unsigned char)sig[i])
			return 0;
	outw(FW_CFG_CTL, FW_CFG_NB_CPUS);
	n = inb(FW_CFG_DATA);
	n |= (u32)inb(FW_CFG_DATA) << 8;
	return n;
}

/* Halt until the TSC-deadline timer fires at @deadline (or any interrupt comes). */
static void nap_until(u64 deadline)
{
	wrmsr(MSR_TSC_DEADLINE, deadline);
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

static u32 start_aps(u64 tsc_khz)
{
	const unsigned char *src = mb_trampoline;
	unsigned char *dst = phys0() + TVM_TRAMPOLINE_GPA;
	u32 want = fw_cfg_cpus(), up;
	u64 deadline;

	shared->boot.cpus_announced = want;
	if (want == 1)
		return 1;
	while (src < mb_trampoline_end)
		*dst++ = *src++;
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_INIT);
	lapic_write(LAPIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_SIPI | (TVM_TRAMPOLINE_GPA >> 12));
	lapic_write(LAPIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_SIPI | (TVM_TRAMPOLINE_GPA >> 12));
	deadline = rdtsc() + tsc_khz * (want ? AP_WAIT_MS : AP_WAIT_UNKNOWN_MS);
	for (;;) {
		u64 now = rdtsc();

		up = __atomic_load_n(&mb_next_cpu, __ATOMIC_ACQUIRE);
		if ((want && up >= want) || now >= deadline)
			break;
		nap_until(now + tsc_khz); /* 1 ms */
	}
	return up < TVM_MAX_VCPUS ? up : TVM_MAX_VCPUS;
}

/* ---- the schedule ---- */

/* What vms_testvm_run() writes into the shared block, from the command line. */
static void publish(const struct mb_params *p, u32 ncpus)
{
	struct tvm_shared *sh = shared;

	if (p->hc >= 0) {
		sh->hc_vmmcall = (u32)p->hc;
	} else {
		u32 a, b, c, d;

		/* AMD and Hygon call the hypervisor with VMMCALL, Intel with VMCALL. */
		cpuid(0, &a, &b, &c, &d);
		sh->hc_vmmcall = (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) ||
				 (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975);
	}
	mb_fill_schedule(p, rdtsc() + mb_us_to_tsc(p->start_us, p->tsc_khz), sh);
	sh->nvcpus = ncpus;
}

/* ---- every processor ---- */

static void load_tables(u64 cpu)
{
	struct {
		unsigned short limit;
		u64 base;
	} __attribute__((packed)) gdtr = { TVM_SEL_TSS(TVM_MAX_VCPUS) - 1, TVM_GDT_GPA },
				  idtr = { 256 * 16 - 1, TVM_IDT_GPA };

	__asm__ volatile("lgdt %0; lidt %1" ::"m"(gdtr), "m"(idtr));
	__asm__ volatile("ltr %w0" ::"r"((unsigned short)TVM_SEL_TSS(cpu)));
}

/* The local APIC as tvm_setup_vcpu() sets it through KVM_SET_LAPIC. */
static void lapic_setup(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | TVM_VEC_SPURIOUS);
	lapic_write(LAPIC_LVT_TIMER, (2u << 17) | TVM_VEC_TIMER); /* TSC deadline */
	lapic_write(LAPIC_LVT_LINT0, 1u << 16);
	lapic_write(LAPIC_LVT_LINT1, 1u << 16);
	lapic_write(LAPIC_LVT_ERROR, 1u << 16);
	wrmsr(MSR_TSC_DEADLINE, 0);
}

/* iretq to user_main(cpu, shared) at CPL3 with the registers tvm_setup_vcpu() sets. */
static void __attribute__((noreturn)) enter_user(u64 cpu)
{
	u64 ustack_top = TVM_STACK_GPA + cpu * (TVM_KSTACK_SIZE + TVM_USTACK_SIZE) +
			 TVM_KSTACK_SIZE + TVM_USTACK_SIZE;

	__asm__ volatile("mov %w0, %%ds\n\t"
			 "mov %w0, %%es\n\t"
			 "mov %w0, %%fs\n\t"
			 "mov %w0, %%gs\n\t"
			 "pushq %0\n\t"
			 "pushq %1\n\t"
			 "pushq $0x202\n\t" /* IF */
			 "pushq %2\n\t"
			 "pushq %3\n\t"
			 "iretq" ::"r"((u64)TVM_SEL_UDATA),
			 "r"(ustack_top - 8), /* as after a call */
			 "i"(TVM_SEL_UCODE), "r"((u64)user_main), "D"(cpu), "S"(TVM_SHARED_GPA)
			 : "memory");
	__builtin_unreachable();
}

static void __attribute__((noreturn)) park(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* The boot processor's part before the tables exist. Return: a TVM_BOOT_E_* code. */
static u32 bsp_early(struct mb_params *p)
{
	struct tvm_boot *b = &shared->boot;
	const u32 *mbi = (const u32 *)(u64)mb_info;
	u32 err = TVM_BOOT_OK, a, bx, c, d;

	/* Firmware data may lie where the shared block goes: clear it, then say who we are. */
	zero(shared, sizeof(*shared));
	shared->magic = TVM_SHARED_MAGIC;
	b->magic = TVM_BOOT_MAGIC;
	b->shared_size = sizeof(struct tvm_shared);
	b->vcpu_size = sizeof(struct tvm_vcpu);
	/* The multiboot information lies among the page-table pages: read it first. */
	if (mbi[0] & (1u << 2)) {
		const char *s = (const char *)(u64)mbi[4];
		u32 i;

		for (i = 0; s[i] && i < TVM_BOOT_CMDLINE_MAX - 1; i++)
			b->cmdline[i] = s[i];
		if (s[i])
			err = TVM_BOOT_E_TOO_LONG;
	}
	if (!err)
		err = mb_parse_cmdline(b, p);
	cpuid(1, &a, &bx, &c, &d);
	if (!err && !(c & (1u << 24)))
		err = TVM_BOOT_E_NO_TSC_DEADLINE;

	zero(phys0() + TVM_GDT_GPA, TVM_TABLES_END - TVM_GDT_GPA);
	tvm_build_tables(phys0(), TVM_MAX_VCPUS, &tvm_header);
	__asm__ volatile("mov %0, %%cr3" ::"r"(TVM_PML4_GPA) : "memory");
	return err;
}

void mb_cpu_main(u64 cpu)
{
	static struct mb_params p;
	u32 err = TVM_BOOT_OK;

	if (cpu == 0)
		err = bsp_early(&p);
	load_tables(cpu);
	lapic_setup();
	/* Interrupts before the schedule count outside it (guest.c's ph[TVM_PHASE_NONE]). */
	shared->vcpu[cpu].phase = TVM_PHASE_NONE;
	if (cpu == 0) {
		u32 n;

		con_puts("vmscope testvm guest: ");
		if (err) {
			shared->boot.error = err;
			con_puts("refused its command line: ");
			con_puts(boot_error_text(err));
			con_puts("\n");
			park();
		}
		n = start_aps(p.tsc_khz);
		publish(&p, n);
		__atomic_store_n(&mb_go, 1, __ATOMIC_RELEASE);
		lapic_write(LAPIC_ICR_LO, ICR_ALL_BUT_SELF | TVM_VEC_WAKE);
		con_putu(n);
		con_puts(" vCPUs, ");
		con_putu(p.nphases);
		con_puts(" phases\n");
	} else {
		while (!__atomic_load_n(&mb_go, __ATOMIC_ACQUIRE))
			__asm__ volatile("sti; hlt; cli" ::: "memory");
		/* Came up after the boot processor stopped waiting: not part of the run. */
		if (cpu >= shared->nvcpus)
			park();
	}
	enter_user(cpu);
}
