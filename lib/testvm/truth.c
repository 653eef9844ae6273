// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The test VM's ground truth: what the guest counted in its shared block and what the VMM
 * counted per vCPU thread, converted to host CLOCK_MONOTONIC nanoseconds, and written as
 * JSON. The format is documented in doc/vmscope-testvm.md; tests read it back.
 *
 * Guest TSC ticks become host time through two (host TSC, CLOCK_MONOTONIC) pairs taken at
 * the start and the end of the run and the guest's TSC offset measured at creation, so the
 * mapping follows any drift between the TSC and CLOCK_MONOTONIC over the run.
 *
 * The same truth comes out of a dump of the multiboot guest's shared block, taken by
 * another VMM (QEMU's pmemsave): vms_testvm_open_dump() checks the untrusted bytes and makes
 * a VM object of them that the functions below read like a VM run here. Only what this VMM
 * alone knows is missing: host times (durations come from the guest TSC frequency) and the
 * VMM's own per-vCPU counts.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testvm-local.h"
#include "vmscope/host.h"
#include "vmscope/json.h"

/* ns per host TSC tick over the run; falls back to the kernel's TSC frequency when the
 * run is too short for the two clock pairs to give a precise slope. */
static double tvm_ns_per_tick(const struct vms_testvm *vm)
{
	if (vm->clk_end.tsc > vm->clk_start.tsc &&
	    vm->clk_end.mono_ns - vm->clk_start.mono_ns >= 500000000ULL)
		return (double)(vm->clk_end.mono_ns - vm->clk_start.mono_ns) /
		       (double)(vm->clk_end.tsc - vm->clk_start.tsc);
	return 1e6 / (double)vm->tsc_khz;
}

uint64_t tvm_guest_tsc_to_mono(const struct vms_testvm *vm, uint64_t guest_tsc)
{
	int64_t host_ticks = (int64_t)(guest_tsc - (uint64_t)vm->tsc_offset - vm->clk_start.tsc);

	return (uint64_t)((int64_t)vm->clk_start.mono_ns +
			  (int64_t)((double)host_ticks * tvm_ns_per_tick(vm)));
}

uint64_t tvm_tsc_to_ns(const struct vms_testvm *vm, uint64_t ticks)
{
	double ns = (double)ticks * tvm_ns_per_tick(vm) + 0.5;

	/* A dump can hold any value: saturate rather than convert out of range. */
	return ns < 18446744073709549568.0 ? (uint64_t)ns : UINT64_MAX;
}

unsigned int vms_testvm_vcpus(const struct vms_testvm *vm)
{
	return vm->nvcpus;
}

unsigned int vms_testvm_nphases(const struct vms_testvm *vm)
{
	return vm->opts.nphases;
}

uint64_t vms_testvm_tsc_khz(const struct vms_testvm *vm)
{
	return vm->tsc_khz;
}

uint64_t vms_testvm_period_ns(const struct vms_testvm *vm)
{
	return vm->opts.period_ns;
}

int vms_testvm_vcpu_tid(const struct vms_testvm *vm, unsigned int i)
{
	if (i >= vm->nvcpus)
		return 0;
	return vm->dump ? vm->dumpv[i].tid : vm->vcpu[i].tid;
}

int vms_testvm_vcpu_fd(const struct vms_testvm *vm, unsigned int i)
{
	return i < vm->nvcpus ? vm->vcpu[i].fd : -EINVAL;
}

int vms_testvm_vm_fd(const struct vms_testvm *vm)
{
	return vm->vm_fd;
}

struct vms_stats *vms_testvm_vcpu_stats(const struct vms_testvm *vm, unsigned int i)
{
	return i < vm->nvcpus ? vm->vcpu[i].stats : NULL;
}

struct vms_stats *vms_testvm_vm_stats(const struct vms_testvm *vm)
{
	return vm->vm_stats;
}

int vms_testvm_stat_delta(const struct vms_testvm *vm, unsigned int i, const char *name,
			  uint64_t *delta)
{
	const struct tvm_vcpu_host *v;
	size_t off = 0;
	int idx;

	if (i >= vm->nvcpus)
		return -EINVAL;
	if (vm->dump) {
		const struct tvm_dump_vcpu *d = &vm->dumpv[i];

		for (size_t s = 0; s < d->nstats; s++) {
			if (!strcmp(d->stat_names[s], name)) {
				*delta = d->stat_deltas[s];
				return 0;
			}
		}
		return -ENOENT;
	}
	v = &vm->vcpu[i];
	if (!v->stats || !v->stats_begin)
		return -ENOENT;
	idx = vms_stats_find(v->stats, name);
	if (idx < 0)
		return idx;
	for (int d = 0; d < idx; d++)
		off += vms_stats_desc(v->stats, (size_t)d)->size;
	*delta = vms_stats_value(v->stats, (size_t)idx) - v->stats_begin[off];
	return 0;
}

/* Has phase p started (by the guest's own clock, or the VM ran to the end)? */
static bool tvm_phase_started(const struct vms_testvm *vm, unsigned int p)
{
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		if (vm->shared->vcpu[i].ph[p].periods)
			return true;
	return false;
}

/*
 * Did phase p run to its end? Here: unless a stop came before its end. In a dump: when
 * every vCPU is past it, by the guest's own record.
 */
static bool tvm_phase_complete(const struct vms_testvm *vm, unsigned int p)
{
	if (!vm->dump)
		return !vm->stop_mono_ns ||
		       vm->stop_mono_ns >= tvm_guest_tsc_to_mono(vm, vm->shared->phases[p].end_tsc);
	for (unsigned int i = 0; i < vm->nvcpus; i++) {
		const struct tvm_vcpu *st = &vm->shared->vcpu[i];

		if (!st->done && (st->phase == TVM_PHASE_NONE || st->phase <= p))
			return false;
	}
	return true;
}

int vms_testvm_phase_tsc(const struct vms_testvm *vm, unsigned int p, uint64_t *start_tsc,
			 uint64_t *end_tsc, bool *complete)
{
	if (p >= vm->opts.nphases ||
	    (!__atomic_load_n(&vm->scheduled, __ATOMIC_ACQUIRE) && !vm->dump) ||
	    !tvm_phase_started(vm, p))
		return -ENOENT;
	*start_tsc = vm->shared->phases[p].start_tsc;
	*end_tsc = vm->shared->phases[p].end_tsc;
	*complete = tvm_phase_complete(vm, p);
	return 0;
}

int vms_testvm_phase_times(const struct vms_testvm *vm, unsigned int p, uint64_t *start_ns,
			   uint64_t *end_ns, bool *complete)
{
	const struct tvm_phase *ph;
	uint64_t end;

	if (p >= vm->opts.nphases || !__atomic_load_n(&vm->scheduled, __ATOMIC_ACQUIRE) ||
	    vm->dump || !tvm_phase_started(vm, p))
		return -ENOENT;
	ph = &vm->shared->phases[p];
	*start_ns = tvm_guest_tsc_to_mono(vm, ph->start_tsc);
	end = tvm_guest_tsc_to_mono(vm, ph->end_tsc);
	*complete = true;
	if (vm->stop_mono_ns && vm->stop_mono_ns < end) {
		end = vm->stop_mono_ns;
		*complete = false;
	}
	*end_ns = end;
	return 0;
}

int vms_testvm_vcpu_phase(const struct vms_testvm *vm, unsigned int i, unsigned int p,
			  struct vms_testvm_vcpu_phase *out)
{
	const struct tvm_vcpu_phase *g;
	uint64_t s, e;

	if (i >= vm->nvcpus || p > vm->opts.nphases)
		return -EINVAL;
	g = &vm->shared->vcpu[i].ph[p == vm->opts.nphases ? TVM_PHASE_NONE : p];
	memset(out, 0, sizeof(*out));
	out->duty = p < vm->opts.nphases ? vm->phases[p].duty : 0;
	out->complete = p < vm->opts.nphases &&
			vms_testvm_phase_tsc(vm, p, &s, &e, &out->complete) == 0 && out->complete;
	out->busy_ns = tvm_tsc_to_ns(vm, g->busy_tsc);
	out->idle_ns = tvm_tsc_to_ns(vm, g->idle_tsc);
	out->late_ns = tvm_tsc_to_ns(vm, g->late_tsc);
	out->late_max_ns = tvm_tsc_to_ns(vm, g->late_max_tsc);
	out->stall_ns = tvm_tsc_to_ns(vm, g->stall_tsc);
	out->stalls = g->stalls;
	out->wakeups = g->wakeups;
	out->periods = g->periods;
	out->work = g->work;
	out->mmio = g->mmio;
	out->pio = g->pio;
	out->msr = g->msr;
	out->hypercall = g->hypercall;
	out->hypercall_eperm = g->hypercall_eperm;
	out->mmio_missed = g->mmio_missed;
	out->pio_missed = g->pio_missed;
	out->msr_missed = g->msr_missed;
	out->hypercall_missed = g->hypercall_missed;
	out->hlt = g->hlt;
	out->irq = g->irq;
	return 0;
}

int vms_testvm_vcpu_totals(const struct vms_testvm *vm, unsigned int i,
			   struct vms_testvm_vcpu_phase *out)
{
	struct vms_testvm_vcpu_phase ph;

	if (i >= vm->nvcpus)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (unsigned int p = 0; p <= vm->opts.nphases; p++) {
		vms_testvm_vcpu_phase(vm, i, p, &ph);
		out->busy_ns += ph.busy_ns;
		out->idle_ns += ph.idle_ns;
		out->late_ns += ph.late_ns;
		if (ph.late_max_ns > out->late_max_ns)
			out->late_max_ns = ph.late_max_ns;
		out->stall_ns += ph.stall_ns;
		out->stalls += ph.stalls;
		out->wakeups += ph.wakeups;
		out->periods += ph.periods;
		out->work += ph.work;
		out->mmio += ph.mmio;
		out->pio += ph.pio;
		out->msr += ph.msr;
		out->hypercall += ph.hypercall;
		out->hypercall_eperm += ph.hypercall_eperm;
		out->mmio_missed += ph.mmio_missed;
		out->pio_missed += ph.pio_missed;
		out->msr_missed += ph.msr_missed;
		out->hypercall_missed += ph.hypercall_missed;
		out->hlt += ph.hlt;
		out->irq += ph.irq;
	}
	out->mmio_control = vm->shared->vcpu[i].ctl_mmio;
	return 0;
}

int vms_testvm_vmm_counts(const struct vms_testvm *vm, unsigned int i,
			  struct vms_testvm_vmm_counts *out)
{
	if (i >= vm->nvcpus)
		return -EINVAL;
	if (vm->dump)
		return -ENOENT;
	*out = vm->vcpu[i].vmm;
	return 0;
}

static void tvm_json_exits(struct vms_json *j, const char *key,
			   const struct vms_testvm_vcpu_phase *ph, uint64_t ctl)
{
	vms_json_object_begin(j, key);
	vms_json_u64(j, "mmio", ph->mmio + ctl);
	vms_json_u64(j, "mmio_load", ph->mmio);
	vms_json_u64(j, "mmio_control", ctl);
	vms_json_u64(j, "pio", ph->pio);
	vms_json_u64(j, "hlt", ph->hlt);
	vms_json_u64(j, "msr", ph->msr);
	vms_json_u64(j, "hypercall", ph->hypercall);
	vms_json_u64(j, "hypercall_eperm", ph->hypercall_eperm);
	vms_json_u64(j, "mmio_missed", ph->mmio_missed);
	vms_json_u64(j, "pio_missed", ph->pio_missed);
	vms_json_u64(j, "msr_missed", ph->msr_missed);
	vms_json_u64(j, "hypercall_missed", ph->hypercall_missed);
	vms_json_object_end(j);
}

/* Did the guest report an exception on vCPU i? Its fault handler counts a control write
 * that is not the DONE report. */
static bool tvm_vcpu_faulted(const struct vms_testvm *vm, unsigned int i)
{
	const struct tvm_vcpu *st = &vm->shared->vcpu[i];

	return st->ctl_mmio > (st->done ? 1 : 0);
}

bool vms_testvm_vcpu_done(const struct vms_testvm *vm, unsigned int i)
{
	return i < vm->nvcpus && vm->shared->vcpu[i].done;
}

int vms_testvm_vcpu_fault(const struct vms_testvm *vm, unsigned int i, struct vms_testvm_fault *out)
{
	const struct tvm_vcpu *st;

	if (i >= vm->nvcpus || !tvm_vcpu_faulted(vm, i))
		return -ENOENT;
	st = &vm->shared->vcpu[i];
	out->vector = st->fault_vector;
	out->error = st->fault_error;
	out->rip = st->fault_rip;
	out->cs = st->fault_cs;
	out->cr2 = st->fault_cr2;
	return 0;
}

/* The VMM's own counts of one vCPU thread (a VM run here only). */
static void tvm_json_vmm(struct vms_json *j, const struct tvm_vcpu_host *v)
{
	vms_json_object_begin(j, "vmm");
	vms_json_u64(j, "mmio", v->vmm.mmio_load + v->vmm.mmio_control + v->vmm.mmio_other);
	vms_json_u64(j, "mmio_load", v->vmm.mmio_load);
	vms_json_u64(j, "mmio_control", v->vmm.mmio_control);
	vms_json_u64(j, "mmio_other", v->vmm.mmio_other);
	vms_json_u64(j, "pio", v->vmm.pio);
	vms_json_u64(j, "io_other", v->vmm.io_other);
	vms_json_u64(j, "msr", v->vmm.msr);
	vms_json_u64(j, "msr_other", v->vmm.msr_other);
	vms_json_u64(j, "intr", v->vmm.intr);
	vms_json_u64(j, "other", v->vmm.other);
	vms_json_u64(j, "seq_errors", v->vmm.seq_errors);
	vms_json_u64(j, "run_calls", v->vmm.run_calls);
	vms_json_object_end(j);
}

/* What only a dump tells: whether the vCPU finished, and the exception it reported. */
static void tvm_json_dump_state(const struct vms_testvm *vm, struct vms_json *j, unsigned int i)
{
	const struct tvm_vcpu *st = &vm->shared->vcpu[i];

	vms_json_bool(j, "done", st->done);
	if (!tvm_vcpu_faulted(vm, i))
		return;
	vms_json_object_begin(j, "fault");
	vms_json_u64(j, "vector", st->fault_vector);
	vms_json_u64(j, "error", st->fault_error);
	vms_json_u64(j, "rip", st->fault_rip);
	vms_json_u64(j, "cs", st->fault_cs);
	vms_json_u64(j, "cr2", st->fault_cr2);
	vms_json_object_end(j);
}

static void tvm_json_vcpu(const struct vms_testvm *vm, struct vms_json *j, unsigned int i)
{
	const struct tvm_vcpu_host *v = &vm->vcpu[i];
	struct vms_testvm_vcpu_phase tot, ph;

	vms_json_object_begin(j, NULL);
	vms_json_u64(j, "vcpu", i);
	if (!vm->dump || vm->dumpv[i].tid)
		vms_json_i64(j, "tid", vms_testvm_vcpu_tid(vm, i));
	if (vm->dump)
		tvm_json_dump_state(vm, j, i);
	vms_json_array_begin(j, "phases");
	for (unsigned int p = 0; p <= vm->opts.nphases; p++) {
		vms_testvm_vcpu_phase(vm, i, p, &ph);
		if (p == vm->opts.nphases || !tvm_phase_started(vm, p))
			continue;
		vms_json_object_begin(j, NULL);
		vms_json_u64(j, "phase", p);
		vms_json_u64(j, "duty", ph.duty);
		vms_json_bool(j, "complete", ph.complete);
		vms_json_u64(j, "busy_ns", ph.busy_ns);
		vms_json_u64(j, "idle_ns", ph.idle_ns);
		vms_json_u64(j, "late_ns", ph.late_ns);
		vms_json_u64(j, "late_max_ns", ph.late_max_ns);
		vms_json_u64(j, "stall_ns", ph.stall_ns);
		vms_json_u64(j, "stalls", ph.stalls);
		vms_json_u64(j, "wakeups", ph.wakeups);
		/* The duty the guest kept while it ran: late time is the host's doing. */
		vms_json_double(j, "busy_share",
				ph.busy_ns + ph.idle_ns
					? (double)ph.busy_ns / (double)(ph.busy_ns + ph.idle_ns)
					: 0.0);
		vms_json_u64(j, "periods", ph.periods);
		vms_json_u64(j, "work", ph.work);
		vms_json_u64(j, "interrupts", ph.irq);
		tvm_json_exits(j, "exits", &ph, 0);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_testvm_vcpu_totals(vm, i, &tot);
	/* Outside the schedule: waiting for the common start. */
	vms_testvm_vcpu_phase(vm, i, vm->opts.nphases, &ph);
	vms_json_object_begin(j, "outside_phases");
	vms_json_u64(j, "hlt", ph.hlt);
	vms_json_u64(j, "interrupts", ph.irq);
	vms_json_object_end(j);
	vms_json_u64(j, "interrupts", tot.irq);
	vms_json_u64(j, "work", tot.work);
	tvm_json_exits(j, "exits", &tot, tot.mmio_control);
	if (!vm->dump)
		tvm_json_vmm(j, v);
	if (vm->dump && vm->dumpv[i].nstats) {
		const struct tvm_dump_vcpu *d = &vm->dumpv[i];

		vms_json_object_begin(j, "kvm_stats_delta");
		for (size_t s = 0; s < d->nstats; s++)
			vms_json_u64(j, d->stat_names[s], d->stat_deltas[s]);
		vms_json_object_end(j);
	} else if (!vm->dump && v->stats && v->stats_begin) {
		/* Growth of every scalar binary statistic over the run. */
		vms_json_object_begin(j, "kvm_stats_delta");
		for (size_t d = 0; d < vms_stats_count(v->stats); d++) {
			const struct vms_stat_desc *desc = vms_stats_desc(v->stats, d);
			uint64_t delta;

			if (desc->size != 1 || (desc->type != VMS_STAT_CUMULATIVE))
				continue;
			if (!vms_testvm_stat_delta(vm, i, desc->name, &delta))
				vms_json_u64(j, desc->name, delta);
		}
		vms_json_object_end(j);
	}
	vms_json_object_end(j);
}

/* A dump stopped early when the host said so or some vCPU has not finished. */
static bool tvm_stopped_early(const struct vms_testvm *vm)
{
	if (!vm->dump)
		return vm->stop_mono_ns != 0;
	if (vm->dump_stopped)
		return true;
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		if (!vm->shared->vcpu[i].done)
			return true;
	return false;
}

int vms_testvm_write_truth(const struct vms_testvm *vm, FILE *f)
{
	struct vms_json j;
	char comm[32] = "";
	FILE *cf;

	if (!vm->dump) {
		cf = fopen("/proc/self/comm", "r");
		if (cf) {
			if (fgets(comm, sizeof(comm), cf))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(cf);
		}
	}
	vms_json_init(&j, f, true);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "format", 1);
	/* Times of a dump exist in guest TSC ticks only: no host clock was read with them. */
	vms_json_string(&j, "clock", vm->dump ? "guest TSC" : "CLOCK_MONOTONIC");
	vms_json_string(&j, "vmm", vm->dump ? vm->dump_vmm : "testvm");
	vms_json_object_begin(&j, "vm");
	if (!vm->dump || vm->dump_pid > 0)
		vms_json_i64(&j, "pid", vm->dump ? vm->dump_pid : getpid());
	if (!vm->dump || vm->dump_name[0])
		vms_json_string(&j, "name", vm->dump ? vm->dump_name : comm);
	vms_json_u64(&j, "vcpus", vm->nvcpus);
	vms_json_u64(&j, "tsc_khz", vm->tsc_khz);
	vms_json_u64(&j, "period_ns", vm->opts.period_ns);
	vms_json_double(&j, "mmio_rate", vm->opts.mmio_rate);
	vms_json_double(&j, "pio_rate", vm->opts.pio_rate);
	vms_json_double(&j, "msr_rate", vm->opts.msr_rate);
	vms_json_double(&j, "hypercall_rate", vm->opts.hypercall_rate);
	if (vm->dump)
		vms_json_string(&j, "cmdline", vm->shared->boot.cmdline);
	vms_json_object_end(&j);
	vms_json_string(&j, "host_kvm", vms_kvm_flavor_name(vms_host_kvm_flavor(NULL)));
	vms_json_bool(&j, "stopped_early", tvm_stopped_early(vm));
	if (!vm->dump) {
		vms_json_u64(&j, "run_start_ns", vm->clk_start.mono_ns);
		vms_json_u64(&j, "run_end_ns", vm->clk_end.mono_ns);
	}
	vms_json_array_begin(&j, "phases");
	for (unsigned int p = 0; p < vm->opts.nphases; p++) {
		uint64_t s, e, ts, te;
		bool complete;

		if (vms_testvm_phase_tsc(vm, p, &ts, &te, &complete))
			continue;
		if (!vm->dump && vms_testvm_phase_times(vm, p, &s, &e, &complete))
			continue;
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "phase", p);
		vms_json_u64(&j, "duty", vm->phases[p].duty);
		if (!vm->dump) {
			vms_json_u64(&j, "start_ns", s);
			vms_json_u64(&j, "end_ns", e);
		}
		vms_json_u64(&j, "start_tsc", ts);
		vms_json_u64(&j, "end_tsc", te);
		vms_json_bool(&j, "complete", complete);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	if (vm->dump && vm->dump_vmm_pio >= 0) {
		/* What the VMM counted, all vCPUs together (QEMU cannot tell them apart). */
		vms_json_object_begin(&j, "vmm_totals");
		vms_json_u64(&j, "pio", (uint64_t)vm->dump_vmm_pio);
		vms_json_object_end(&j);
	}
	vms_json_array_begin(&j, "vcpus");
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		tvm_json_vcpu(vm, &j, i);
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	return vms_json_finish(&j);
}

/* ---- reading the truth back from a dump of the multiboot guest ---- */

_Static_assert(VMS_TESTVM_DUMP_GPA == TVM_SHARED_GPA, "the dump address is the shared block's");
_Static_assert(VMS_TESTVM_MAX_VCPUS == TVM_MAX_VCPUS && VMS_TESTVM_MAX_PHASES == TVM_MAX_PHASES,
	       "the guest's limits are the library's");

size_t vms_testvm_dump_size(unsigned int vcpus)
{
	if (vcpus > TVM_MAX_VCPUS)
		vcpus = TVM_MAX_VCPUS;
	return offsetof(struct tvm_shared, vcpu) + (size_t)vcpus * sizeof(struct tvm_vcpu);
}

static const char *tvm_boot_error_text(uint32_t err)
{
	switch (err) {
	case TVM_BOOT_E_SYNTAX:
		return "a value does not parse or is out of range";
	case TVM_BOOT_E_UNKNOWN:
		return "unknown parameter";
	case TVM_BOOT_E_NO_TSC_KHZ:
		return "tsc_khz= is missing (vmscope testvm --print-tsc-khz gives it)";
	case TVM_BOOT_E_MSR:
		return "msr= is not available under QEMU (no MSR filter to count the exits)";
	case TVM_BOOT_E_TOO_LONG:
		return "the command line is longer than the guest keeps";
	case TVM_BOOT_E_NO_TSC_DEADLINE:
		return "the CPU model lacks the TSC-deadline timer (use -cpu max)";
	case TVM_BOOT_E_PHASES:
		return "more than 32 phases";
	default:
		return "an error this vmscope does not know";
	}
}

/* A load rate back from the guest's interval, to the 6 significant digits it carries. */
static double tvm_rate(uint64_t tsc_khz, uint64_t interval)
{
	char buf[32];

	if (!interval)
		return 0;
	snprintf(buf, sizeof(buf), "%.6g", (double)tsc_khz * 1000.0 / (double)interval);
	return strtod(buf, NULL);
}

__attribute__((format(printf, 2, 3))) static int tvm_dump_fail(int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tvm_set_last_error("%s", msg);
	return err;
}

/* Check the guest's header fields; @len bytes are known to cover the header. */
static int tvm_dump_check(const struct tvm_shared *sh, size_t len)
{
	const struct tvm_boot *b = &sh->boot;
	size_t need;

	if (sh->magic != TVM_SHARED_MAGIC)
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "no test VM shared block at the start of the dump (magic %#x, "
				     "not %#x): dump guest-physical %#x of a guest booted from "
				     "vmscope's multiboot image",
				     sh->magic, TVM_SHARED_MAGIC, VMS_TESTVM_DUMP_GPA);
	if (b->magic != TVM_BOOT_MAGIC)
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "the shared block was not written by the multiboot guest "
				     "(boot magic %#x, not %#x)",
				     b->magic, TVM_BOOT_MAGIC);
	if (b->shared_size != sizeof(struct tvm_shared) || b->vcpu_size != sizeof(struct tvm_vcpu))
		return tvm_dump_fail(
			-VMS_E_TESTVM_DUMP,
			"the guest's shared block has another layout (%u and %u bytes, "
			"not %zu and %zu): it comes from another vmscope version",
			b->shared_size, b->vcpu_size, sizeof(struct tvm_shared),
			sizeof(struct tvm_vcpu));
	if (b->error) {
		uint32_t pos = b->error_pos < TVM_BOOT_CMDLINE_MAX ? b->error_pos : 0;
		size_t wlen = strcspn(b->cmdline + pos, " \t");
		/* These point at a word of the command line; the others are about all of it. */
		bool word = b->error == TVM_BOOT_E_SYNTAX || b->error == TVM_BOOT_E_UNKNOWN ||
			    b->error == TVM_BOOT_E_MSR || b->error == TVM_BOOT_E_PHASES;

		return tvm_dump_fail(-VMS_E_GUEST_BOOT, "the guest refused to run: %s%s%.*s%s",
				     tvm_boot_error_text(b->error), word ? " ('" : "",
				     word ? (int)(wlen < 64 ? wlen : 64) : 0, b->cmdline + pos,
				     word ? "')" : "");
	}
	if (!sh->nvcpus)
		return tvm_dump_fail(-EAGAIN, "the guest has not finished booting yet: no vCPU "
					      "runs its schedule; dump it again later");
	if (sh->nvcpus > TVM_MAX_VCPUS || !sh->nphases || sh->nphases > TVM_MAX_PHASES)
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "the dump is damaged: %u vCPUs and %u phases (at most %d and "
				     "%d, at least 1 of each)",
				     sh->nvcpus, sh->nphases, TVM_MAX_VCPUS, TVM_MAX_PHASES);
	need = vms_testvm_dump_size(sh->nvcpus);
	if (len < need)
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "the dump has %zu bytes; the truth of %u vCPUs takes %zu: "
				     "pmemsave %#x %zu",
				     len, sh->nvcpus, need, VMS_TESTVM_DUMP_GPA, need);
	if (sh->tsc_khz < 1000 || sh->tsc_khz > 10000000 || !sh->period_tsc)
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "the dump is damaged: TSC frequency %" PRIu64
				     " kHz, period %" PRIu64 " ticks",
				     (uint64_t)sh->tsc_khz, (uint64_t)sh->period_tsc);
	for (uint32_t p = 0; p < sh->nphases; p++)
		if (sh->phases[p].duty > 100 || sh->phases[p].end_tsc < sh->phases[p].start_tsc)
			return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
					     "the dump is damaged: phase %u has duty %u %% and "
					     "runs from %" PRIu64 " to %" PRIu64,
					     p, sh->phases[p].duty,
					     (uint64_t)sh->phases[p].start_tsc,
					     (uint64_t)sh->phases[p].end_tsc);
	return 0;
}

/* Copy what the host knows about the vCPUs (thread ids, KVM statistics). */
static int tvm_dump_copy_vcpus(struct vms_testvm *vm, const struct vms_testvm_dump_opts *o)
{
	for (unsigned int i = 0; i < o->nvcpus && i < vm->nvcpus; i++) {
		const struct vms_testvm_dump_vcpu *src = &o->vcpus[i];
		struct tvm_dump_vcpu *d = &vm->dumpv[i];

		d->tid = src->tid;
		if (!src->nstats || !src->stats)
			continue;
		d->stat_names = calloc(src->nstats, sizeof(*d->stat_names));
		d->stat_deltas = calloc(src->nstats, sizeof(*d->stat_deltas));
		if (!d->stat_names || !d->stat_deltas)
			return -ENOMEM;
		for (size_t s = 0; s < src->nstats; s++) {
			if (!src->stats[s].name)
				continue;
			d->stat_names[d->nstats] = strdup(src->stats[s].name);
			if (!d->stat_names[d->nstats])
				return -ENOMEM;
			d->stat_deltas[d->nstats++] = src->stats[s].delta;
		}
	}
	return 0;
}

int vms_testvm_open_dump(const void *buf, size_t len, const struct vms_testvm_dump_opts *opts,
			 struct vms_testvm **out)
{
	static const struct vms_testvm_dump_opts none = { .sz = sizeof(none), .vmm_pio = -1 };
	struct tvm_shared *sh;
	struct vms_testvm *vm;
	int ret;

	if (out)
		*out = NULL;
	if (!out || (!buf && len) || (opts && opts->sz < sizeof(*opts)) ||
	    (opts && opts->nvcpus && !opts->vcpus))
		return tvm_dump_fail(-EINVAL, "invalid arguments");
	if (!opts)
		opts = &none;
	if (len < offsetof(struct tvm_shared, vcpu))
		return tvm_dump_fail(-VMS_E_TESTVM_DUMP,
				     "the dump has %zu bytes, shorter than the shared block's "
				     "header (%zu): pmemsave %#x %zu",
				     len, offsetof(struct tvm_shared, vcpu), VMS_TESTVM_DUMP_GPA,
				     vms_testvm_dump_size(TVM_MAX_VCPUS));
	/* A private, aligned copy of the whole block: the accessors index it freely. */
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return tvm_dump_fail(-ENOMEM, "out of memory");
	memcpy(sh, buf, len < sizeof(*sh) ? len : sizeof(*sh));
	sh->boot.cmdline[TVM_BOOT_CMDLINE_MAX - 1] = '\0';
	ret = tvm_dump_check(sh, len);
	if (ret) {
		free(sh);
		return ret;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		free(sh);
		return tvm_dump_fail(-ENOMEM, "out of memory");
	}
	pthread_mutex_init(&vm->lock, NULL);
	vm->kvm_fd = vm->vm_fd = -1;
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++) {
		vm->vcpu[i].fd = -1;
		vm->pin[i] = -1;
	}
	vm->dump = true;
	vm->shared = sh;
	vm->nvcpus = sh->nvcpus;
	vm->tsc_khz = sh->tsc_khz;
	vm->opts.sz = sizeof(vm->opts);
	vm->opts.vcpus = sh->nvcpus;
	vm->opts.nphases = sh->nphases;
	vm->opts.phases = vm->phases;
	vm->opts.pin = vm->pin;
	vm->opts.period_ns = tvm_tsc_to_ns(vm, sh->period_tsc);
	vm->opts.mmio_rate = tvm_rate(sh->tsc_khz, sh->mmio_interval_tsc);
	vm->opts.pio_rate = tvm_rate(sh->tsc_khz, sh->pio_interval_tsc);
	vm->opts.msr_rate = tvm_rate(sh->tsc_khz, sh->msr_interval_tsc);
	vm->opts.hypercall_rate = tvm_rate(sh->tsc_khz, sh->hc_interval_tsc);
	for (uint32_t p = 0; p < sh->nphases; p++) {
		vm->phases[p].duty = sh->phases[p].duty;
		vm->phases[p].duration_ns =
			tvm_tsc_to_ns(vm, sh->phases[p].end_tsc - sh->phases[p].start_tsc);
	}
	snprintf(vm->dump_vmm, sizeof(vm->dump_vmm), "%s", opts->vmm ? opts->vmm : "qemu");
	snprintf(vm->dump_name, sizeof(vm->dump_name), "%s", opts->name ? opts->name : "");
	vm->dump_pid = opts->pid;
	vm->dump_stopped = opts->stopped;
	vm->dump_vmm_pio = opts->vmm_pio;
	ret = tvm_dump_copy_vcpus(vm, opts);
	if (ret) {
		vms_testvm_free(vm);
		return tvm_dump_fail(ret, "out of memory");
	}
	tvm_set_last_error("%s", "");
	*out = vm;
	return 0;
}

int vms_testvm_truth_from_dump(const void *buf, size_t len, const struct vms_testvm_dump_opts *opts,
			       FILE *f)
{
	struct vms_testvm *vm;
	int ret = vms_testvm_open_dump(buf, len, opts, &vm);

	if (ret)
		return ret;
	ret = vms_testvm_write_truth(vm, f);
	vms_testvm_free(vm);
	return ret;
}
