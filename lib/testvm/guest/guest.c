// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Test VM guest: the duty-cycle load and the exits it causes on purpose, with an exact count
 * of everything it does.
 *
 * User mode (CPL3, runs natively even on KVM-PVM): for every phase of the schedule in the
 * shared block, each period of period_tsc ticks begins with a busy part of duty % (real
 * computation: xorshift rounds, checking the TSC between chunks) and ends with an idle part
 * (a service call that halts the vCPU until the period ends). Period boundaries are
 * absolute TSC times, so a late wake-up shortens the next busy part instead of shifting the
 * schedule; every tick the host kept the vCPU from its schedule (past a busy part's end, a
 * wake-up's deadline, a period's start) is counted apart (late), as the delay the host
 * imposed, not as busy or idle time the guest chose (see period()). Each busy part owes a
 * number of load MMIO writes and port writes fixed by the options; those it could not make
 * in time are counted as missed (see busy_part()).
 *
 * Kernel mode (emulated instruction by instruction on KVM-PVM): the service call handler
 * (idle = TSC-deadline timer + sti;hlt, pio = outl), the interrupt handler (EOI) and the
 * fault handler, which reports to the VMM and stops the vCPU.
 */
#define TVM_GUEST
#include "tvm-abi.h"

typedef tvm_u64 u64;
typedef tvm_u32 u32;

#define LAPIC_EOI 0xfee000b0UL
#define MSR_TSC_DEADLINE 0x6e0

/* The frame built by TRAP_ENTRY in entry.S, lowest address first. */
struct frame {
	u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss;
};

static inline u64 rdtsc(void)
{
	u32 lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void mmio_write32(u64 addr, u32 val)
{
	*(volatile u32 *)addr = val;
}

static struct tvm_shared *const shared = (struct tvm_shared *)TVM_SHARED_GPA;

/* ---- kernel mode ---- */

/* The VMM stores the vCPU index in the top slot of each kernel stack (above rsp0). */
static inline u64 kernel_cpu(const void *frame)
{
	u64 top = ((u64)frame | (TVM_KSTACK_SIZE - 1)) + 1;

	return *(u64 *)(top - 16);
}

void kernel_service(struct frame *f);
void kernel_interrupt(struct frame *f);
void kernel_fault(struct frame *f);

void kernel_service(struct frame *f)
{
	struct tvm_vcpu *st = &shared->vcpu[kernel_cpu(f)];
	struct tvm_vcpu_phase *ph = &st->ph[st->phase];

	if ((f->cs & 3) != 3 || *(unsigned short *)f->rip != 0x0b0f) {
		kernel_fault(f);
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	f->rip += 2;
	switch (f->rax) {
	case TVM_SVC_IDLE:
		/* The timer fires at the deadline; anything else (the VMM's stop wake-up)
		 * returns early only when a stop was asked for. */
		while (rdtsc() < f->rdi && !shared->stop) {
			__asm__ volatile("wrmsr" ::"c"(MSR_TSC_DEADLINE), "a"((u32)f->rdi),
					 "d"((u32)(f->rdi >> 32)));
			__asm__ volatile("sti; hlt; cli" ::: "memory");
			ph->hlt++;
		}
		break;
	case TVM_SVC_PIO:
		__asm__ volatile("outl %0, %w1" ::"a"((u32)f->rdi), "Nd"(TVM_PIO_PORT));
		ph->pio++;
		break;
	case TVM_SVC_MSR:
		__asm__ volatile("wrmsr" ::"c"(TVM_MSR_INDEX), "a"((u32)f->rdi),
				 "d"((u32)(f->rdi >> 32)));
		ph->msr++;
		break;
	}
}

void kernel_interrupt(struct frame *f)
{
	struct tvm_vcpu *st = &shared->vcpu[kernel_cpu(f)];

	st->ph[st->phase].irq++;
	mmio_write32(LAPIC_EOI, 0);
}

void kernel_fault(struct frame *f)
{
	u64 cpu = kernel_cpu(f), cr2;
	struct tvm_vcpu *st = &shared->vcpu[cpu];

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	st->fault_vector = f->vector;
	st->fault_error = f->error;
	st->fault_rip = f->rip;
	st->fault_cs = f->cs;
	st->fault_cr2 = cr2;
	st->ctl_mmio++;
	mmio_write32(TVM_MMIO_CTL_GPA + TVM_CTL_FAULT, (u32)cpu);
}

/* ---- user mode ---- */

static inline void svc(u64 nr, u64 arg)
{
	__asm__ volatile("ud2" ::"a"(nr), "D"(arg) : "memory");
}

void user_main(u64 cpu, struct tvm_shared *sh);

/* Computation for the busy part: a chunk of xorshift64 rounds whose result is kept. */
static inline u64 work_chunk(u64 x)
{
	for (int i = 0; i < 64; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

struct seqs {
	u64 mmio, pio, msr;
};

/* One kind of load exit: how often, and how to make one. */
enum load_kind { LOAD_MMIO, LOAD_PIO, LOAD_MSR, LOAD_HC, LOAD_KINDS };

static inline long hypercall(const struct tvm_shared *sh)
{
	long ret;

	/* From user mode KVM answers -KVM_EPERM without acting; the exit is what counts. */
	if (sh->hc_vmmcall)
		__asm__ volatile("vmmcall" : "=a"(ret) : "a"(TVM_HC_NR), "b"(0), "c"(0), "d"(0),
				 "S"(0) : "memory");
	else
		__asm__ volatile("vmcall" : "=a"(ret) : "a"(TVM_HC_NR), "b"(0), "c"(0), "d"(0),
				 "S"(0) : "memory");
	return ret;
}

static void load_exit(const struct tvm_shared *sh, enum load_kind k, u64 cpu, struct seqs *seq,
		      struct tvm_vcpu_phase *ph)
{
	switch (k) {
	case LOAD_MMIO:
		mmio_write32(TVM_MMIO_LOAD_GPA, (u32)(cpu << 24 | (seq->mmio & 0xffffff)));
		seq->mmio++;
		ph->mmio++;
		break;
	case LOAD_PIO:
		svc(TVM_SVC_PIO, seq->pio++);
		break;
	case LOAD_MSR:
		svc(TVM_SVC_MSR, seq->msr++);
		break;
	case LOAD_HC:
		if (hypercall(sh) == -1)
			ph->hypercall_eperm++;
		ph->hypercall++;
		break;
	default:
		break;
	}
}

/*
 * One busy part, from now until the TSC reaches be. The part that began (by the schedule)
 * at t owes ceil((be - t) / interval) exits of each kind, the j-th due at t + j * interval.
 * Those still owed when the part ends (the host held the vCPU back) are not made up, which
 * would stretch the busy part past its duty; they are counted as missed, so that made +
 * missed per period follows from the options alone.
 */
static void busy_part(struct tvm_shared *sh, struct tvm_vcpu_phase *ph, u64 cpu, u64 t, u64 be,
		      u64 *x, struct seqs *seq)
{
	const u64 iv[LOAD_KINDS] = { sh->mmio_interval_tsc, sh->pio_interval_tsc,
				     sh->msr_interval_tsc, sh->hc_interval_tsc };
	u64 owed[LOAD_KINDS], done[LOAD_KINDS], now = rdtsc();
	u64 *missed[LOAD_KINDS] = { &ph->mmio_missed, &ph->pio_missed, &ph->msr_missed,
				    &ph->hypercall_missed };

	for (int k = 0; k < LOAD_KINDS; k++) {
		owed[k] = iv[k] ? (be - t + iv[k] - 1) / iv[k] : 0;
		done[k] = 0;
	}
	const u64 stall_min = sh->tsc_khz * TVM_STALL_US / 1000;

	while (now < be && !sh->stop) {
		u64 prev = now;
		int exited = 0;

		*x = work_chunk(*x);
		ph->work++;
		now = rdtsc();
		if (now - prev >= stall_min) {
			/* The vCPU did not run for most of this gap; only its part inside the
			 * busy part counts (the rest is late time). */
			ph->stall_tsc += (now < be ? now : be) - prev;
			ph->stalls++;
		}
		for (int k = 0; k < LOAD_KINDS; k++) {
			if (done[k] < owed[k] && now >= t + done[k] * iv[k]) {
				load_exit(sh, (enum load_kind)k, cpu, seq, ph);
				done[k]++;
				exited = 1;
			}
		}
		if (exited)
			now = rdtsc();
	}
	if (!sh->stop)
		for (int k = 0; k < LOAD_KINDS; k++)
			*missed[k] += owed[k] - done[k];
}

/* The host held the vCPU @d ticks past a deadline the guest had set itself. */
static inline void held_back(struct tvm_vcpu_phase *ph, u64 d)
{
	if (d > ph->late_max_tsc)
		ph->late_max_tsc = d;
}

/*
 * One period [t, ie) of a phase, its busy part ending at be. Its ticks are split exactly:
 * busy (computing inside [t, be)), idle (halted inside [t, ie), up to the deadline asked
 * for) and late, the rest: the ticks the host kept the vCPU from its schedule, whether it
 * overran the busy part's end, woke past a deadline, or reached the period (or skipped it
 * whole) after its start. So busy + idle + late is the phase's length whatever the host
 * did, and a stall never counts as time the guest chose to spend. Stalls inside a busy part
 * (the vCPU stopped mid-computation and resumed before the part's end) stay busy time, by
 * the schedule, and are also counted apart (busy_part()): the busy time the vCPU did not
 * run, which no host-side counter may be trusted to see when the host is itself a VM.
 */
static void period(struct tvm_shared *sh, struct tvm_vcpu *st, struct tvm_vcpu_phase *ph,
		   u64 cpu, u64 t, u64 be, u64 ie, u64 *x, struct seqs *seq)
{
	u64 now = rdtsc(), busy = 0, idle = 0;

	ph->periods++;
	if (now < be) {
		u64 seg = now;

		st->seg_start = seg;
		st->seg_kind = TVM_SEG_BUSY;
		busy_part(sh, ph, cpu, t, be, x, seq);
		now = rdtsc();
		busy = (now < be ? now : be) - seg;
		if (now > be)
			held_back(ph, now - be);
		st->seg_kind = TVM_SEG_NONE;
	} else {
		/* Reached after its busy part's end: every exit it owed is missed. */
		busy_part(sh, ph, cpu, t, be, x, seq);
	}
	if (now < ie && !sh->stop) {
		u64 seg = now;

		st->seg_start = seg;
		st->seg_kind = TVM_SEG_IDLE;
		/* Halt until the deadline; an interrupt that wakes the vCPU early is not it. */
		do
			svc(TVM_SVC_IDLE, ie);
		while ((now = rdtsc()) < ie && !sh->stop);
		idle = (now < ie ? now : ie) - seg;
		if (now > ie)
			held_back(ph, now - ie);
		ph->wakeups++;
		st->seg_kind = TVM_SEG_NONE;
	}
	ph->busy_tsc += busy;
	ph->idle_tsc += idle;
	if (!sh->stop && busy + idle <= ie - t)
		ph->late_tsc += ie - t - busy - idle;
}

void user_main(u64 cpu, struct tvm_shared *sh)
{
	struct tvm_vcpu *st = &sh->vcpu[cpu];
	u64 x = 0x9e3779b97f4a7c15UL ^ (cpu + 1), now;
	struct seqs seq = { 0, 0, 0 };

	st->started = 1;
	/* Wait for the common start; this wait belongs to no phase. */
	st->phase = TVM_PHASE_NONE;
	while (rdtsc() < sh->start_tsc && !sh->stop)
		svc(TVM_SVC_IDLE, sh->start_tsc);
	/* Starting after the common start is the host's delay too (thread start-up); the first
	 * period counts it as late. */
	now = rdtsc();
	if (now > sh->start_tsc && sh->nphases)
		held_back(&st->ph[0], now - sh->start_tsc);
	for (u32 p = 0; p < sh->nphases && !sh->stop; p++) {
		const struct tvm_phase *phase = &sh->phases[p];
		struct tvm_vcpu_phase *ph = &st->ph[p];
		u64 busy_len = sh->period_tsc * phase->duty / 100;

		st->phase = p;
		for (u64 t = phase->start_tsc; t < phase->end_tsc && !sh->stop; t += sh->period_tsc) {
			u64 be = t + busy_len, ie = t + sh->period_tsc;

			if (be > phase->end_tsc)
				be = phase->end_tsc;
			if (ie > phase->end_tsc)
				ie = phase->end_tsc;
			period(sh, st, ph, cpu, t, be, ie, &x, &seq);
		}
	}
	st->phase = TVM_PHASE_NONE;
	st->result = x;
	st->done = 1;
	st->ctl_mmio++;
	mmio_write32(TVM_MMIO_CTL_GPA + TVM_CTL_DONE, (u32)cpu);
	/* The VMM stops running this vCPU once it has seen DONE. */
	for (;;)
		svc(TVM_SVC_IDLE, ~0UL);
}
