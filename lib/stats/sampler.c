// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The live sampler (vmscope/sampler.h): one set of named fields per vCPU thread, read
 * every sample from procfs, KVM's statistics descriptors and per-thread perf counters on
 * the kvm tracepoints, with rates against the previous sample.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmscope/arch-x86.h"
#include "vmscope/libvirt.h"
#include "vmscope/qmp.h"
#include "vmscope/sampler.h"
#include "vmscope/stats.h"
#include "vmscope/wakelat.h"
#include "vmscope-local.h"

/* ---- the fields ---- */

#define NPROC 5
/* KVM's own counters of a vCPU, by their names in the binary statistics. */
static const char *const kvm_names[] = { "exits", "halt_exits", "mmio_exits", "io_exits",
					 "irq_exits" };
#define NKVM (sizeof(kvm_names) / sizeof(kvm_names[0]))

/* kvm_stat's way where the kernel has no hist triggers: one counter per thread and
 * event, exits to the VMM split by reason with filters. kvm_exit never fires on
 * KVM-PVM. */
static const struct vms_tp_event tp_events[] = {
	{ "kvm", "kvm_exit", NULL },
	{ "kvm", "kvm_userspace_exit", NULL },
	{ "kvm", "kvm_userspace_exit", "reason == 2" },
	{ "kvm", "kvm_userspace_exit", "reason == 6" },
	{ "kvm", "kvm_userspace_exit", "reason == 29 || reason == 30" },
	{ "kvm", "kvm_userspace_exit", "reason == 10" },
	{ "kvm", "kvm_mmio", NULL },
	{ "kvm", "kvm_pio", NULL },
	{ "kvm", "kvm_hypercall", NULL },
	{ "kvm", "kvm_vcpu_wakeup", NULL },
};
#define NTP (sizeof(tp_events) / sizeof(tp_events[0]))

#define NF (NPROC + NKVM + NTP)

static const struct vms_field_info fields[NF] = {
	{ "cpu.run_s", "run", VMS_FIELD_PROC, true },
	{ "cpu.runq_wait_s", "runq", VMS_FIELD_PROC, true },
	{ "cpu.user_s", "user", VMS_FIELD_PROC, true },
	{ "cpu.system_s", "system", VMS_FIELD_PROC, true },
	{ "cpu.guest_s", "guest", VMS_FIELD_PROC, true },
	{ "kvm.exits", "exits", VMS_FIELD_KVM, false },
	{ "kvm.halt_exits", "halt", VMS_FIELD_KVM, false },
	{ "kvm.mmio_exits", "mmio", VMS_FIELD_KVM, false },
	{ "kvm.io_exits", "io", VMS_FIELD_KVM, false },
	{ "kvm.irq_exits", "irq", VMS_FIELD_KVM, false },
	{ "events.kvm_exit", "kvm_exit", VMS_FIELD_EVENTS, false },
	{ "events.userspace_exit", "to-VMM", VMS_FIELD_EVENTS, false },
	{ "events.userspace_exit.io", "io", VMS_FIELD_EVENTS, false },
	{ "events.userspace_exit.mmio", "mmio", VMS_FIELD_EVENTS, false },
	{ "events.userspace_exit.msr", "msr", VMS_FIELD_EVENTS, false },
	{ "events.userspace_exit.intr", "intr", VMS_FIELD_EVENTS, false },
	{ "events.kvm_mmio", "kvm_mmio", VMS_FIELD_EVENTS, false },
	{ "events.kvm_pio", "kvm_pio", VMS_FIELD_EVENTS, false },
	{ "events.kvm_hypercall", "hcall", VMS_FIELD_EVENTS, false },
	{ "events.kvm_vcpu_wakeup", "wakeup", VMS_FIELD_EVENTS, false },
};

/* ---- kernel-counted events of one VM's vCPU threads, kept from sample to sample ---- */

struct tp_vm {
	int pid;
	size_t ntids;
	int *tids;
	struct vms_tpcount *tc;
	uint64_t *now, *prev; /* ntids x NTP */
	bool *valid, has_prev, seen;
	unsigned int reads;
	uint64_t read_ns, prev_ns; /* when the counters were read, now and before */
	int err;
	char msg[200];
};

/* One sample with the storage behind it. */
struct store {
	struct vms_sample pub;
	struct vms_host_vm *host; /* every VM of the host */
	size_t nhost;
	struct vms_sample_vm *vms;
	struct vms_sample_vcpu *vcpus;
	double *vals; /* per vCPU: value, rate; per VM: sum, sum_rate; NF each */
	struct vms_host_cpu *raw;
	size_t nraw;
	struct vms_sample_cpu *cpus;
	struct vms_sample_reason *reasons; /* the vCPUs', then the VMs' sums */
	struct vms_vmm_stats **vmm;	   /* per VM: from its VMM (QMP, libvirt) or NULL */
	struct vms_wakelat_hist *wl;	   /* per vCPU, with wakeup_latency */
};

/* A VM whose VMM keeps no statistics descriptor: how its statistics are asked for. */
struct vmm_src {
	int pid;
	bool seen;
	uint64_t retry_ns; /* a failed VMM is asked again from then on */
	int err;
	char msg[200];
};

struct vms_sampler {
	char *proc_root, *debugfs_root, *guest;
	int pid;
	bool events;
	struct tp_vm *tpv;
	size_t ntpv;
	struct store cur, prev;
	/* exits by reason */
	bool reasons;
	struct vms_keycount *kc;
	int kc_err;
	char kc_msg[256];
	enum vms_x86_isa isa;
	const struct vms_keycount_entry *kent; /* the last read, sorted */
	size_t nkent;
	uint64_t kc_read_ns, kc_prev_ns;
	/* VMs whose statistics come from their VMM */
	struct vmm_src *vsrc;
	size_t nvsrc;
	bool vmm_stats; /* KVM statistics asked of VMMs without descriptors */
	/* wakeup latency of the vCPU threads */
	bool wakeups;
	struct vms_wakelat *wl;
	int wl_err;
	char wl_msg[256];
	int *wl_tids; /* the threads timed now */
	size_t wl_ntids;
};

/* The two keyed events, in the order of enum vms_reason_kind. */
static const struct vms_keyed_event reason_events[VMS_REASON_KINDS] = {
	{ "kvm", "kvm_exit", "exit_reason" },
	{ "kvm", "kvm_userspace_exit", "reason" },
};

static const char *const reason_kind_names[VMS_REASON_KINDS] = { "kvm_exit", "userspace_exit" };

const char *vms_reason_kind_name(enum vms_reason_kind k)
{
	return (unsigned int)k < VMS_REASON_KINDS ? reason_kind_names[k] : "?";
}

static void tp_vm_clear(struct tp_vm *t)
{
	vms_tpcount_free(t->tc);
	free(t->tids);
	free(t->now);
	free(t->prev);
	free(t->valid);
	memset(t, 0, sizeof(*t));
}

static bool tp_same_threads(const struct tp_vm *t, const struct vms_host_vm *vm)
{
	if (t->ntids != vm->nvcpus)
		return false;
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (t->tids[i] != vm->vcpus[i].tid)
			return false;
	return true;
}

static void tp_open(struct tp_vm *t, const struct vms_host_vm *vm)
{
	tp_vm_clear(t);
	t->pid = vm->pid;
	t->ntids = vm->nvcpus;
	t->tids = calloc(vm->nvcpus ? vm->nvcpus : 1, sizeof(int));
	t->now = calloc(vm->nvcpus * NTP + 1, sizeof(uint64_t));
	t->prev = calloc(vm->nvcpus * NTP + 1, sizeof(uint64_t));
	t->valid = calloc(vm->nvcpus * NTP + 1, sizeof(bool));
	if (!t->tids || !t->now || !t->prev || !t->valid) {
		t->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < vm->nvcpus; i++)
		t->tids[i] = vm->vcpus[i].tid;
	if (vm->nvcpus)
		t->err = vms_tpcount_open(tp_events, NTP, t->tids, t->ntids, &t->tc, t->msg,
					  sizeof(t->msg));
}

static bool selected(const struct vms_sampler *s, const struct vms_host_vm *vm)
{
	return (!s->pid || vm->pid == s->pid) && (!s->guest || !strcmp(s->guest, vm->name));
}

/* Open counters for new VMs (or VMs whose threads changed), read all, drop gone VMs. */
static int tp_update(struct vms_sampler *s, const struct vms_host_vm *vms, size_t n)
{
	for (size_t k = 0; k < s->ntpv; k++)
		s->tpv[k].seen = false;
	for (size_t i = 0; i < n; i++) {
		struct tp_vm *t = NULL;

		if (!selected(s, &vms[i]))
			continue;
		for (size_t k = 0; k < s->ntpv && !t; k++)
			if (s->tpv[k].pid == vms[i].pid)
				t = &s->tpv[k];
		if (!t) {
			struct tp_vm *p = realloc(s->tpv, (s->ntpv + 1) * sizeof(*p));

			if (!p)
				return -ENOMEM;
			s->tpv = p;
			t = &s->tpv[s->ntpv++];
			memset(t, 0, sizeof(*t));
		}
		if (!t->pid || !tp_same_threads(t, &vms[i]))
			tp_open(t, &vms[i]);
		t->seen = true;
		if (!t->tc)
			continue;
		memcpy(t->prev, t->now, t->ntids * NTP * sizeof(uint64_t));
		/* Rates need two readings: the first follows the opening by less than an
		 * interval. */
		t->has_prev = t->reads++ > 0;
		t->prev_ns = t->read_ns;
		vms_tpcount_read(t->tc, t->now, t->valid);
		/* Rates over the time between the reads themselves: the first read follows
		 * the opening of many counters, which takes a while. */
		t->read_ns = vms_mono_ns();
	}
	/* VMs that are gone: their counters go too. */
	for (size_t k = 0; k < s->ntpv;) {
		if (s->tpv[k].seen) {
			k++;
			continue;
		}
		tp_vm_clear(&s->tpv[k]);
		s->tpv[k] = s->tpv[--s->ntpv];
	}
	return 0;
}

static const struct tp_vm *tp_find(const struct vms_sampler *s, int pid)
{
	for (size_t k = 0; k < s->ntpv; k++)
		if (s->tpv[k].pid == pid)
			return &s->tpv[k];
	return NULL;
}

/* ---- host CPUs ---- */

static const char *const cpu_kind_names[VMS_CPU_KINDS] = { "user",  "nice",  "system", "irq",
							   "guest", "steal", "iowait", "idle" };

const char *vms_cpu_kind_name(enum vms_cpu_kind k)
{
	return (unsigned int)k < VMS_CPU_KINDS ? cpu_kind_names[k] : "?";
}

bool vms_cpu_shares(const struct vms_host_cpu *c, const struct vms_host_cpu *p,
		    double share[VMS_CPU_KINDS])
{
	static const struct vms_host_cpu zero;
	const struct vms_host_cpu *b = p ? p : &zero;
	double d[VMS_CPU_KINDS], total = 0;

#define HD(f) ((double)(c->f >= b->f ? c->f - b->f : 0))
	d[VMS_CPU_GUEST] = HD(guest) + HD(guest_nice);
	d[VMS_CPU_USER] = HD(user) > HD(guest) ? HD(user) - HD(guest) : 0;
	d[VMS_CPU_NICE] = HD(nice) > HD(guest_nice) ? HD(nice) - HD(guest_nice) : 0;
	d[VMS_CPU_SYSTEM] = HD(system);
	d[VMS_CPU_IRQ] = HD(irq) + HD(softirq);
	d[VMS_CPU_STEAL] = HD(steal);
	d[VMS_CPU_IOWAIT] = HD(iowait);
	d[VMS_CPU_IDLE] = HD(idle);
#undef HD
	for (int k = 0; k < VMS_CPU_KINDS; k++)
		total += d[k];
	for (int k = 0; k < VMS_CPU_KINDS; k++)
		share[k] = total > 0 ? d[k] / total : 0;
	return total > 0;
}

/* ---- samples ---- */

static void store_free(struct store *st)
{
	vms_host_vms_free(st->host, st->nhost);
	free(st->vms);
	free(st->vcpus);
	free(st->vals);
	free(st->raw);
	free(st->cpus);
	free(st->reasons);
	free(st->wl);
	for (size_t i = 0; st->vmm && i < st->pub.nvms; i++)
		vms_vmm_stats_free(st->vmm[i]);
	free(st->vmm);
	memset(st, 0, sizeof(*st));
}

/* The previous sample's vCPU of thread @tid of VM @pid, or NULL. */
static const struct vms_sample_vcpu *prev_vcpu(const struct store *prev, int pid, int tid)
{
	for (size_t i = 0; i < prev->pub.nvms; i++) {
		const struct vms_sample_vm *v = &prev->vms[i];

		if (v->vm->pid != pid)
			continue;
		for (size_t j = 0; j < v->nvcpus; j++)
			if (v->vcpus[j].thread->tid == tid)
				return &v->vcpus[j];
		return NULL;
	}
	return NULL;
}

static bool prev_has_vm(const struct store *prev, int pid)
{
	for (size_t i = 0; i < prev->pub.nvms; i++)
		if (prev->vms[i].vm->pid == pid)
			return true;
	return false;
}

/* Read KVM's counters of one vCPU into val[NPROC..]; returns the error, 0 when read. */
static int read_kvm(const struct vms_host_vm *vm, const struct vms_host_vcpu *v, double *val)
{
	struct vms_stats *st;
	int err = v->stats_fd < 0 ? -ENOENT : vms_stats_open_remote(vm->pid, v->stats_fd, &st);

	if (err)
		return err;
	for (size_t k = 0; k < NKVM; k++) {
		uint64_t x;

		if (!vms_stats_value_by_name(st, kvm_names[k], &x))
			val[NPROC + k] = (double)x;
	}
	vms_stats_free(st);
	return 0;
}

/* Rates of the fields read anew every sample (procfs, KVM), against the previous sample. */
static void proc_kvm_rates(const struct vms_sample_vcpu *pv, const double *val, double *rate,
			   double dt)
{
	for (size_t k = 0; k < NPROC + NKVM && pv && dt > 0; k++)
		if (!isnan(val[k]) && !isnan(pv->value[k]) && val[k] >= pv->value[k])
			rate[k] = (val[k] - pv->value[k]) / dt;
}

static struct vmm_src *vsrc_get(struct vms_sampler *s, int pid)
{
	struct vmm_src *p;

	for (size_t i = 0; i < s->nvsrc; i++)
		if (s->vsrc[i].pid == pid)
			return &s->vsrc[i];
	p = realloc(s->vsrc, (s->nvsrc + 1) * sizeof(*p));
	if (!p)
		return NULL;
	s->vsrc = p;
	p = &s->vsrc[s->nvsrc++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	return p;
}

#define VMM_TIMEOUT_MS 500
#define VMM_RETRY_NS (10 * 1000000000ULL)

/*
 * KVM's statistics of a VM that keeps no descriptor open, from its VMM: QEMU's QMP socket
 * when its command line has a free one, else libvirt when the VM is a domain (libvirt
 * holds its monitor). A VMM that failed is asked again only after VMM_RETRY_NS: a monitor
 * someone holds costs the whole timeout.
 */
static int vmm_read(struct vmm_src *src, const struct vms_host_vm *vm, struct vms_vmm_stats **out)
{
	char path[256];
	uint64_t now = vms_mono_ns();
	int err;

	*out = NULL;
	if (src->retry_ns && now < src->retry_ns)
		return src->err;
	src->msg[0] = '\0';
	err = vms_qmp_socket_of(vm->pid, path, sizeof(path));
	if (!err) {
		struct vms_qmp *q;

		err = vms_qmp_connect(path, VMM_TIMEOUT_MS, &q, src->msg, sizeof(src->msg));
		if (!err) {
			err = vms_qmp_query_stats(q, VMM_TIMEOUT_MS, out, src->msg,
						  sizeof(src->msg));
			vms_qmp_close(q);
		}
	} else if (!strcmp(vm->name_source, "qemu -name")) {
		err = vms_libvirt_vm_stats(NULL, vm->name, out, src->msg, sizeof(src->msg));
		if (err == -ENOTSUP || err == -ECONNREFUSED || err == -ENOENT)
			snprintf(
				src->msg, sizeof(src->msg),
				"the VMM keeps no KVM statistics descriptor open, its command line "
				"has no free QMP socket, and it is not a libvirt domain%s",
				err == -ENOTSUP ? " (vmscope was built without libvirt)" : "");
	} else {
		snprintf(src->msg, sizeof(src->msg),
			 "the VMM keeps no KVM statistics descriptor open and its command line has "
			 "no QMP socket");
	}
	src->err = err;
	src->retry_ns = err ? now + VMM_RETRY_NS : 0;
	return err;
}

/* The VMs whose statistics are asked of their VMMs in one sample, and what they said. */
struct vmm_job {
	struct vmm_src *src;
	const struct vms_host_vm *vm;
	struct vms_vmm_stats *out;
	int err;
};

struct vmm_jobs {
	struct vmm_job *job;
	size_t n;
	size_t next; /* atomic: the next job a worker takes */
};

static void *vmm_worker(void *arg)
{
	struct vmm_jobs *j = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n)
		j->job[i].err = vmm_read(j->job[i].src, j->job[i].vm, &j->job[i].out);
	return NULL;
}

#define VMM_WORKERS 16

/* Ask every VMM at once: QEMU answers query-stats in tens of ms (it kicks every vCPU),
 * so a host of many VMs is read in the time of the slowest, not of their sum. */
static void vmm_read_all(struct vmm_jobs *j)
{
	pthread_t th[VMM_WORKERS];
	size_t nth = 0;

	if (j->n > 1)
		for (; nth < VMM_WORKERS && nth < j->n - 1; nth++)
			if (pthread_create(&th[nth], NULL, vmm_worker, j))
				break;
	vmm_worker(j); /* this thread works too, and alone when no thread could start */
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
}

/* Fill the KVM fields of @svm's vCPUs from @vs, matched by thread (else by index). */
static void vmm_fill(const struct vms_vmm_stats *vs, struct vms_sample_vm *svm, double *vals)
{
	for (size_t j = 0; j < svm->nvcpus; j++) {
		const struct vms_host_vcpu *t = svm->vcpus[j].thread;
		double *val = vals + 2 * j * NF;
		int idx = -1;

		for (size_t i = 0; i < vs->nvcpus && idx < 0; i++)
			if ((vs->vcpus[i].tid && vs->vcpus[i].tid == t->tid) ||
			    (!vs->vcpus[i].tid && vs->vcpus[i].vcpu == t->vcpu))
				idx = vs->vcpus[i].vcpu;
		if (idx < 0)
			continue;
		for (size_t k = 0; k < NKVM; k++) {
			const struct vms_vmm_stat *st = vms_vmm_stats_find(vs, idx, kvm_names[k]);

			if (st)
				val[NPROC + k] = (double)st->value;
		}
	}
}

static void fill_vcpu(struct vms_sampler *s, const struct vms_host_vm *vm,
		      const struct vms_host_vcpu *v, size_t idx, double *val, double *rate,
		      struct vms_sample_vm *svm)
{
	const struct tp_vm *t = s->events ? tp_find(s, vm->pid) : NULL;
	int err;

	for (size_t k = 0; k < NF; k++)
		val[k] = rate[k] = NAN;
	if (!(v->stat_err && v->schedstat_err)) {
		const uint64_t ns[NPROC] = { v->run_ns, v->wait_ns, v->user_ns, v->system_ns,
					     v->guest_ns };

		for (size_t k = 0; k < NPROC; k++)
			val[k] = (double)ns[k] / 1e9;
	}
	err = read_kvm(vm, v, val);
	if (err && !svm->kvm_err)
		svm->kvm_err = err;
	/* Events: counts since the counters opened; rates once they were read before. */
	if (t && t->tc && idx < t->ntids && t->tids[idx] == v->tid) {
		double tdt = (double)(t->read_ns - t->prev_ns) / 1e9;

		for (size_t e = 0; e < NTP; e++) {
			size_t x = idx * NTP + e;

			if (!t->valid[x])
				continue;
			val[NPROC + NKVM + e] = (double)t->now[x];
			if (t->has_prev && tdt > 0)
				rate[NPROC + NKVM + e] = (double)(t->now[x] - t->prev[x]) / tdt;
		}
	}
}

/* The first entry of the last keycount read at or after (@kind, @tid). */
static size_t kent_lower(const struct vms_sampler *s, uint32_t kind, int tid)
{
	size_t lo = 0, hi = s->nkent;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct vms_keycount_entry *e = &s->kent[mid];

		if (e->event < kind || (e->event == kind && e->tid < tid))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t kent_count(const struct vms_sampler *s, int tid)
{
	size_t n = 0;

	for (uint32_t k = 0; k < VMS_REASON_KINDS; k++)
		for (size_t i = kent_lower(s, k, tid);
		     i < s->nkent && s->kent[i].event == k && s->kent[i].tid == tid; i++)
			n++;
	return n;
}

static const char *reason_name(const struct vms_sampler *s, enum vms_reason_kind k, uint64_t c)
{
	if (c > UINT32_MAX)
		return NULL;
	return k == VMS_REASON_KVM_EXIT ? vms_x86_exit_reason_name(s->isa, (uint32_t)c)
					: vms_kvm_exit_name((uint32_t)c);
}

/* The exits by reason of one vCPU thread, into @r; returns how many. */
static size_t fill_reasons(const struct vms_sampler *s, int tid, const struct vms_sample_vcpu *pv,
			   struct vms_sample_reason *r)
{
	double dt = s->kc_prev_ns ? (double)(s->kc_read_ns - s->kc_prev_ns) / 1e9 : 0;
	size_t n = 0;

	for (uint32_t k = 0; k < VMS_REASON_KINDS; k++)
		for (size_t i = kent_lower(s, k, tid);
		     i < s->nkent && s->kent[i].event == k && s->kent[i].tid == tid; i++) {
			struct vms_sample_reason *x = &r[n++];

			x->kind = (enum vms_reason_kind)k;
			x->code = s->kent[i].key;
			x->name = reason_name(s, x->kind, x->code);
			x->value = (double)s->kent[i].count;
			x->rate = NAN;
			if (!pv || dt <= 0)
				continue;
			/* A reason the thread had not shown before had 0 then: counting
			 * began before either sample. */
			x->rate = x->value / dt;
			for (size_t j = 0; j < pv->nreasons; j++)
				if (pv->reasons[j].kind == x->kind &&
				    pv->reasons[j].code == x->code)
					x->rate = x->value >= pv->reasons[j].value
							  ? (x->value - pv->reasons[j].value) / dt
							  : NAN;
		}
	return n;
}

static int reason_cmp(const void *a, const void *b)
{
	const struct vms_sample_reason *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->code < y->code ? -1 : x->code > y->code;
}

/* The VM's sums of its vCPUs' @n reasons at @r, into @sum; returns how many. */
static size_t sum_reasons(const struct vms_sample_vm *svm, struct vms_sample_reason *sum)
{
	size_t n = 0;

	for (size_t j = 0; j < svm->nvcpus; j++)
		for (size_t i = 0; i < svm->vcpus[j].nreasons; i++) {
			const struct vms_sample_reason *x = &svm->vcpus[j].reasons[i];
			size_t k;

			for (k = 0; k < n; k++)
				if (sum[k].kind == x->kind && sum[k].code == x->code)
					break;
			if (k == n)
				sum[n++] = (struct vms_sample_reason){ x->kind, x->code, x->name, 0,
								       0 };
			sum[k].value += x->value;
			sum[k].rate += x->rate; /* NAN once a vCPU lacks it */
		}
	qsort(sum, n, sizeof(*sum), reason_cmp);
	return n;
}

static int fill(struct vms_sampler *s, struct store *st)
{
	size_t nvms = 0, nv = 0, m = 0, vi = 0, nr = 0, ri = 0;
	struct vmm_jobs jobs = { NULL, 0, 0 };

	for (size_t i = 0; i < st->nhost; i++)
		if (selected(s, &st->host[i])) {
			nvms++;
			nv += st->host[i].nvcpus;
			for (size_t j = 0; s->kent && j < st->host[i].nvcpus; j++)
				nr += kent_count(s, st->host[i].vcpus[j].tid);
		}
	st->vms = calloc(nvms + 1, sizeof(*st->vms));
	st->vcpus = calloc(nv + 1, sizeof(*st->vcpus));
	st->vals = malloc((2 * nv + 2 * nvms + 1) * NF * sizeof(double));
	st->reasons = calloc(2 * nr + 1, sizeof(*st->reasons));
	st->vmm = calloc(nvms + 1, sizeof(*st->vmm));
	if (!st->vms || !st->vcpus || !st->vals || !st->reasons || !st->vmm)
		return -ENOMEM;
	if (s->wl && !(st->wl = calloc(nv + 1, sizeof(*st->wl))))
		return -ENOMEM;
	jobs.job = calloc(nvms + 1, sizeof(*jobs.job));
	if (!jobs.job)
		return -ENOMEM;
	/* From here on no return before the jobs are freed. */
	for (size_t k = 0; k < s->nvsrc; k++)
		s->vsrc[k].seen = false;
	for (size_t i = 0; i < st->nhost; i++) {
		const struct vms_host_vm *vm = &st->host[i];
		struct vms_sample_vm *svm;
		const struct tp_vm *t;
		double *sum, *srate;

		if (!selected(s, vm))
			continue;
		svm = &st->vms[m++];
		svm->vm = vm;
		svm->vcpus = &st->vcpus[vi];
		svm->nvcpus = vm->nvcpus;
		svm->new_vm = !prev_has_vm(&s->prev, vm->pid);
		svm->events_msg = "";
		t = s->events ? tp_find(s, vm->pid) : NULL;
		if (t && !t->tc && vm->nvcpus) {
			svm->events_err = t->err ? t->err : -ENOENT;
			svm->events_msg = t->msg;
		}
		sum = st->vals + (2 * nv + 2 * (m - 1)) * NF;
		srate = sum + NF;
		for (size_t k = 0; k < NF; k++) {
			sum[k] = NAN;
			srate[k] = 0;
		}
		for (size_t j = 0; j < vm->nvcpus; j++, vi++) {
			struct vms_sample_vcpu *sv = &st->vcpus[vi];
			double *val = st->vals + 2 * vi * NF, *rate = val + NF;

			sv->thread = &vm->vcpus[j];
			sv->value = val;
			sv->rate = rate;
			fill_vcpu(s, vm, &vm->vcpus[j], j, val, rate, svm);
			if (st->wl && !vms_wakelat_read(s->wl, vm->vcpus[j].tid, &st->wl[vi]))
				sv->wakeups = &st->wl[vi];
			if (s->kent) {
				sv->reasons = &st->reasons[ri];
				sv->nreasons =
					fill_reasons(s, vm->vcpus[j].tid,
						     prev_vcpu(&s->prev, vm->pid, vm->vcpus[j].tid),
						     &st->reasons[ri]);
				ri += sv->nreasons;
			}
			/* The events' sums here; procfs and KVM once their rates are known. */
			for (size_t k = NPROC + NKVM; k < NF; k++) {
				if (isnan(val[k]))
					continue;
				sum[k] = isnan(sum[k]) ? val[k] : sum[k] + val[k];
				srate[k] += rate[k]; /* NAN once any vCPU lacks its rate */
			}
		}
		svm->kvm_msg = "";
		svm->kvm_source = svm->kvm_err ? NULL : vm->nvcpus ? "fd" : NULL;
		svm->sum = sum;
		svm->sum_rate = srate;
		if (s->kent) {
			svm->reasons = &st->reasons[ri];
			svm->nreasons = sum_reasons(svm, &st->reasons[ri]);
			ri += svm->nreasons;
		}
		/* No descriptor: its VMM is asked below, with the others. */
		if (svm->kvm_err == -ENOENT && s->vmm_stats)
			jobs.job[jobs.n++] = (struct vmm_job){ NULL, vm, NULL, 0 };
	}
	/* Their sources first (the array may move as it grows), then the pointers. */
	for (size_t i = 0; i < jobs.n; i++)
		if (!vsrc_get(s, jobs.job[i].vm->pid)) {
			free(jobs.job);
			return -ENOMEM;
		}
	for (size_t i = 0; i < jobs.n; i++) {
		jobs.job[i].src = vsrc_get(s, jobs.job[i].vm->pid);
		jobs.job[i].src->seen = true;
	}
	vmm_read_all(&jobs);
	for (size_t i = 0, jn = 0, v0 = 0; i < nvms; v0 += st->vms[i].nvcpus, i++) {
		struct vms_sample_vm *svm = &st->vms[i];
		const struct vms_host_vm *vm = svm->vm;
		double *sum = (double *)svm->sum, *srate = (double *)svm->sum_rate;

		if (jn < jobs.n && jobs.job[jn].vm == vm) {
			struct vmm_job *jb = &jobs.job[jn++];

			svm->kvm_msg = jb->src->msg;
			st->vmm[i] = jb->out;
			if (!jb->err) {
				vmm_fill(st->vmm[i], svm, st->vals + 2 * v0 * NF);
				svm->vmm = st->vmm[i];
				svm->kvm_source = svm->vmm->source;
				svm->kvm_err = 0;
			} else if (jb->err != -ENOENT) {
				svm->kvm_err = jb->err;
			}
		}
		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct vms_sample_vcpu *sv = &svm->vcpus[j];
			double *val = (double *)sv->value, *rate = (double *)sv->rate;

			proc_kvm_rates(prev_vcpu(&s->prev, vm->pid, sv->thread->tid), val, rate,
				       st->pub.dt);
			for (size_t k = 0; k < NPROC + NKVM; k++) {
				if (isnan(val[k]))
					continue;
				sum[k] = isnan(sum[k]) ? val[k] : sum[k] + val[k];
				srate[k] += rate[k];
			}
		}
		for (size_t k = 0; k < NF; k++)
			if (isnan(sum[k]))
				srate[k] = NAN;
	}
	free(jobs.job);
	st->pub.vms = st->vms;
	st->pub.nvms = nvms;
	/* VMMs of VMs that are gone */
	for (size_t k = 0; k < s->nvsrc;) {
		if (s->vsrc[k].seen) {
			k++;
			continue;
		}
		s->vsrc[k] = s->vsrc[--s->nvsrc];
	}
	return 0;
}

static void fill_cpus(struct vms_sampler *s, struct store *st)
{
	if (vms_host_cpus_read(s->proc_root, &st->raw, &st->nraw))
		return; /* the sample lacks its host CPUs, nothing else */
	st->cpus = calloc(st->nraw + 1, sizeof(*st->cpus));
	if (!st->cpus)
		return;
	st->pub.cpus_since_boot = !s->prev.raw;
	for (size_t i = 0; i < st->nraw; i++) {
		const struct vms_host_cpu *p = NULL;

		for (size_t k = 0; k < s->prev.nraw && !p; k++)
			if (s->prev.raw[k].cpu == st->raw[i].cpu)
				p = &s->prev.raw[k];
		if (!vms_cpu_shares(&st->raw[i], s->prev.raw ? p : NULL,
				    st->cpus[st->pub.ncpus].share))
			continue;
		st->cpus[st->pub.ncpus++].cpu = st->raw[i].cpu;
	}
	st->pub.cpus = st->cpus;
	st->pub.raw_cpus = st->raw;
	st->pub.nraw_cpus = st->nraw;
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Time the wakeups of the selected VMs' vCPU threads (the trace opened on the first
 * sample; its thread list written only when it changed). */
static void wakeups_update(struct vms_sampler *s, const struct store *st, struct vms_sample *pub)
{
	size_t n = 0;
	int *tids;

	if (!s->wl && !s->wl_err)
		s->wl_err = vms_wakelat_new(NULL, &s->wl, s->wl_msg, sizeof(s->wl_msg));
	pub->wakeups_err = s->wl_err;
	pub->wakeups_msg = s->wl_msg;
	if (!s->wl)
		return;
	for (size_t i = 0; i < st->nhost; i++)
		if (selected(s, &st->host[i]))
			n += st->host[i].nvcpus;
	tids = malloc((n + 1) * sizeof(*tids));
	if (!tids)
		return;
	n = 0;
	for (size_t i = 0; i < st->nhost; i++)
		for (size_t j = 0; selected(s, &st->host[i]) && j < st->host[i].nvcpus; j++)
			tids[n++] = st->host[i].vcpus[j].tid;
	qsort(tids, n, sizeof(*tids), int_cmp);
	if (n == s->wl_ntids && (!n || !memcmp(tids, s->wl_tids, n * sizeof(*tids)))) {
		free(tids);
	} else {
		int err = vms_wakelat_set_threads(s->wl, tids, n);

		if (err && err != -ENOSPC) {
			snprintf(s->wl_msg, sizeof(s->wl_msg),
				 "cannot filter the sched events by the vCPU threads: %s",
				 vms_strerror(err));
			pub->wakeups_err = err;
			free(tids);
			return;
		}
		free(s->wl_tids);
		s->wl_tids = tids;
		s->wl_ntids = n;
	}
	pub->wakeups_timed = true;
	pub->wakeups_lost = vms_wakelat_lost(s->wl);
}

/* Open the exit-reason counter on the first sample, then read it every sample. */
static void reasons_update(struct vms_sampler *s, struct vms_sample *pub)
{
	if (!s->kc && !s->kc_err) {
		enum vms_kvm_flavor f = vms_host_kvm_flavor(NULL);

		s->isa = f == VMS_KVM_VMX   ? VMS_X86_VMX
			 : f == VMS_KVM_SVM ? VMS_X86_SVM
					    : VMS_X86_UNKNOWN;
		s->kc_err = vms_keycount_open(reason_events, VMS_REASON_KINDS, NULL, &s->kc,
					      s->kc_msg, sizeof(s->kc_msg));
	}
	pub->reasons_err = s->kc_err;
	pub->reasons_msg = s->kc_msg;
	if (!s->kc)
		return;
	pub->reasons_backend = vms_keycount_backend(s->kc) == VMS_KEYCOUNT_HIST ? "hist" : "stream";
	s->kc_prev_ns = s->kc_read_ns;
	if (vms_keycount_read(s->kc, &s->kent, &s->nkent)) {
		/* A table that did not parse: none this time, never a wrong one. */
		s->kent = NULL;
		s->nkent = 0;
		s->kc_read_ns = 0; /* no rates against this sample */
		return;
	}
	s->kc_read_ns = vms_mono_ns();
	pub->reasons_dropped = vms_keycount_dropped(s->kc);
}

int vms_sampler_update(struct vms_sampler *s)
{
	struct vms_host_opts ho = { sizeof(ho), s->proc_root, s->debugfs_root };
	struct store st;
	int err;

	memset(&st, 0, sizeof(st));
	err = vms_host_vms_list(&ho, &st.host, &st.nhost);
	if (err)
		return err;
	st.pub.ts_ns = vms_mono_ns();
	st.pub.dt = s->cur.pub.ts_ns ? (double)(st.pub.ts_ns - s->cur.pub.ts_ns) / 1e9 : 0;
	if (s->events && (err = tp_update(s, st.host, st.nhost))) {
		store_free(&st);
		return err;
	}
	if (s->reasons)
		reasons_update(s, &st.pub);
	if (s->wakeups)
		wakeups_update(s, &st, &st.pub);
	/* The current sample becomes the previous one while the new one is filled. */
	store_free(&s->prev);
	s->prev = s->cur;
	memset(&s->cur, 0, sizeof(s->cur));
	err = fill(s, &st);
	if (err) {
		store_free(&st);
		s->cur = s->prev;
		memset(&s->prev, 0, sizeof(s->prev));
		return err;
	}
	fill_cpus(s, &st);
	s->cur = st;
	return 0;
}

int vms_sampler_new(const struct vms_sampler_opts *opts, struct vms_sampler **out)
{
	struct vms_sampler *s;

	*out = NULL;
	if (opts && opts->sz < sizeof(*opts))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->events = !(opts && opts->no_events);
	s->reasons = opts && opts->exit_reasons;
	s->wakeups = opts && opts->wakeup_latency;
	s->vmm_stats = !(opts && opts->no_vmm_stats);
	if (opts) {
		s->pid = opts->pid;
		if ((opts->proc_root && !(s->proc_root = strdup(opts->proc_root))) ||
		    (opts->debugfs_root && !(s->debugfs_root = strdup(opts->debugfs_root))) ||
		    (opts->guest && !(s->guest = strdup(opts->guest)))) {
			vms_sampler_free(s);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

const struct vms_sample *vms_sampler_sample(const struct vms_sampler *s)
{
	return &s->cur.pub;
}

size_t vms_sampler_nfields(const struct vms_sampler *s)
{
	(void)s;
	return NF;
}

const struct vms_field_info *vms_sampler_field(const struct vms_sampler *s, size_t k)
{
	(void)s;
	return k < NF ? &fields[k] : NULL;
}

int vms_sampler_field_index(const struct vms_sampler *s, const char *key)
{
	(void)s;
	for (size_t k = 0; k < NF; k++)
		if (!strcmp(fields[k].key, key))
			return (int)k;
	return -1;
}

void vms_sampler_free(struct vms_sampler *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->ntpv; k++)
		tp_vm_clear(&s->tpv[k]);
	free(s->tpv);
	vms_keycount_free(s->kc);
	vms_wakelat_free(s->wl);
	free(s->wl_tids);
	free(s->vsrc);
	store_free(&s->cur);
	store_free(&s->prev);
	free(s->proc_root);
	free(s->debugfs_root);
	free(s->guest);
	free(s);
}
