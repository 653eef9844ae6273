// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The test VM's ground truth: what the guest counted in its shared block and what the VMM
 * counted per vCPU thread, converted to host CLOCK_MONOTONIC nanoseconds, and written as
 * JSON. The format is documented in doc/vmscope-testvm.md; tests read it back.
 *
 * Guest TSC ticks become host time through two (host TSC, CLOCK_MONOTONIC) pairs taken at
 * the start and the end of the run and the guest's TSC offset measured at creation, so the
 * mapping follows any drift between the TSC and CLOCK_MONOTONIC over the run.
 */
#include <inttypes.h>
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
	return (uint64_t)((double)ticks * tvm_ns_per_tick(vm) + 0.5);
}

unsigned int vms_testvm_vcpus(const struct vms_testvm *vm)
{
	return vm->nvcpus;
}

int vms_testvm_vcpu_tid(const struct vms_testvm *vm, unsigned int i)
{
	return i < vm->nvcpus ? vm->vcpu[i].tid : 0;
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

int vms_testvm_phase_times(const struct vms_testvm *vm, unsigned int p, uint64_t *start_ns,
			   uint64_t *end_ns, bool *complete)
{
	const struct tvm_phase *ph;
	uint64_t end;

	if (p >= vm->opts.nphases || !vm->ran || !tvm_phase_started(vm, p))
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
			vms_testvm_phase_times(vm, p, &s, &e, &out->complete) == 0 && out->complete;
	out->busy_ns = tvm_tsc_to_ns(vm, g->busy_tsc);
	out->idle_ns = tvm_tsc_to_ns(vm, g->idle_tsc);
	out->late_ns = tvm_tsc_to_ns(vm, g->late_tsc);
	out->late_max_ns = tvm_tsc_to_ns(vm, g->late_max_tsc);
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

static void tvm_json_vcpu(const struct vms_testvm *vm, struct vms_json *j, unsigned int i)
{
	const struct tvm_vcpu_host *v = &vm->vcpu[i];
	struct vms_testvm_vcpu_phase tot, ph;

	vms_json_object_begin(j, NULL);
	vms_json_u64(j, "vcpu", i);
	vms_json_i64(j, "tid", v->tid);
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
		vms_json_u64(j, "wakeups", ph.wakeups);
		/* The duty the guest kept while it ran: late wake-ups are the host's doing. */
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
	if (v->stats && v->stats_begin) {
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

int vms_testvm_write_truth(const struct vms_testvm *vm, FILE *f)
{
	struct vms_json j;
	char comm[32] = "";
	FILE *cf;

	cf = fopen("/proc/self/comm", "r");
	if (cf) {
		if (fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(cf);
	}
	vms_json_init(&j, f, true);
	vms_json_object_begin(&j, NULL);
	vms_json_u64(&j, "format", 1);
	vms_json_string(&j, "clock", "CLOCK_MONOTONIC");
	vms_json_object_begin(&j, "vm");
	vms_json_i64(&j, "pid", getpid());
	vms_json_string(&j, "name", comm);
	vms_json_u64(&j, "vcpus", vm->nvcpus);
	vms_json_u64(&j, "tsc_khz", vm->tsc_khz);
	vms_json_u64(&j, "period_ns", vm->opts.period_ns);
	vms_json_double(&j, "mmio_rate", vm->opts.mmio_rate);
	vms_json_double(&j, "pio_rate", vm->opts.pio_rate);
	vms_json_double(&j, "msr_rate", vm->opts.msr_rate);
	vms_json_double(&j, "hypercall_rate", vm->opts.hypercall_rate);
	vms_json_object_end(&j);
	vms_json_string(&j, "host_kvm", vms_kvm_flavor_name(vms_host_kvm_flavor(NULL)));
	vms_json_bool(&j, "stopped_early", vm->stop_mono_ns != 0);
	vms_json_u64(&j, "run_start_ns", vm->clk_start.mono_ns);
	vms_json_u64(&j, "run_end_ns", vm->clk_end.mono_ns);
	vms_json_array_begin(&j, "phases");
	for (unsigned int p = 0; p < vm->opts.nphases; p++) {
		uint64_t s, e;
		bool complete;

		if (vms_testvm_phase_times(vm, p, &s, &e, &complete))
			continue;
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "phase", p);
		vms_json_u64(&j, "duty", vm->phases[p].duty);
		vms_json_u64(&j, "start_ns", s);
		vms_json_u64(&j, "end_ns", e);
		vms_json_bool(&j, "complete", complete);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	vms_json_array_begin(&j, "vcpus");
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		tvm_json_vcpu(vm, &j, i);
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	return vms_json_finish(&j);
}
