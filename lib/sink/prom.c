// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Prometheus text exposition of a sample (vmscope/prom.h). Each metric family is written
 * whole (one HELP, one TYPE, then its series) as the format asks; label values are escaped
 * (backslash, double quote, newline). Everything is in base units: seconds, bytes, counts.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmscope/prom.h"
#include "vmscope/stats.h"
#include "vmscope/wakelat.h"

/* A label value, escaped. */
static void put_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_value(FILE *f, double v)
{
	if (isnan(v))
		fputs(" NaN\n", f);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(f, " %.0f\n", v);
	else {
		/* The shortest text that reads back as the same double: a counter of seconds
		 * keeps its nanoseconds however large it grows. */
		char buf[32];

		snprintf(buf, sizeof(buf), "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, sizeof(buf), "%.17g", v);
		fprintf(f, " %s\n", buf);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{vm="..",pid="..",vcpu=".."} */
static void vm_series(FILE *f, const char *name, const struct vms_host_vm *vm, int vcpu)
{
	char num[24];

	fputs(name, f);
	fputc('{', f);
	put_label(f, "vm", vm->name, true);
	snprintf(num, sizeof(num), "%d", vm->pid);
	put_label(f, "pid", num, false);
	if (vcpu >= 0) {
		snprintf(num, sizeof(num), "%d", vcpu);
		put_label(f, "vcpu", num, false);
	}
}

double vms_prom_metric_name(char *out, size_t len, const char *scope, const char *name,
			    enum vms_stat_type type, enum vms_stat_unit unit, unsigned int base,
			    int exponent)
{
	char stem[96];
	size_t n;
	double factor = pow(base ? base : 10, exponent);
	const char *suffix = "";

	snprintf(stem, sizeof(stem), "%s", name);
	n = strlen(stem);
	/* KVM names a time by its unit ("halt_wait_ns"): the metric is in seconds. */
	if (unit == VMS_UNIT_SECONDS) {
		static const char *const units[] = { "_ns", "_us", "_ms", "_s" };

		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t u = strlen(units[i]);

			if (n > u && !strcmp(stem + n - u, units[i])) {
				stem[n - u] = '\0';
				break;
			}
		}
		suffix = "_seconds";
	} else if (unit == VMS_UNIT_BYTES) {
		suffix = "_bytes";
	}
	/* Characters a metric name cannot have become '_'. */
	for (char *p = stem; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			*p = '_';
	snprintf(out, len, "vmscope_kvm_%s_%s%s%s", scope, stem, suffix,
		 type == VMS_STAT_CUMULATIVE ? "_total" : "");
	return unit == VMS_UNIT_BOOLEAN ? 1.0 : factor;
}

/* ---- every KVM statistic: gathered, then written family by family ---- */

struct kstat {
	char metric[160];
	const char *type;
	const struct vms_host_vm *vm;
	int vcpu; /* -1: the VM's */
	double value;
	int order; /* first seen: families in a stable order */
};

struct kstats {
	struct kstat *v;
	size_t n, cap;
	int err;
};

static void kadd(struct kstats *k, const struct vms_host_vm *vm, int vcpu, const char *name,
		 enum vms_stat_type type, enum vms_stat_unit unit, unsigned int base, int exponent,
		 uint64_t raw)
{
	struct kstat *e;
	double factor;

	if (type != VMS_STAT_CUMULATIVE && type != VMS_STAT_INSTANT && type != VMS_STAT_PEAK)
		return;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		struct kstat *p = realloc(k->v, cap * sizeof(*p));

		if (!p) {
			k->err = -ENOMEM;
			return;
		}
		k->v = p;
		k->cap = cap;
	}
	e = &k->v[k->n];
	factor = vms_prom_metric_name(e->metric, sizeof(e->metric), vcpu < 0 ? "vm" : "vcpu", name,
				      type, unit, base, exponent);
	e->type = type == VMS_STAT_CUMULATIVE ? "counter" : "gauge";
	e->vm = vm;
	e->vcpu = vcpu;
	e->value = (double)raw * factor;
	e->order = (int)k->n;
	k->n++;
}

static void kadd_fd(struct kstats *k, const struct vms_host_vm *vm, int vcpu, int fd)
{
	struct vms_stats *st;

	if (fd < 0 || vms_stats_open_remote(vm->pid, fd, &st))
		return;
	for (size_t d = 0; d < vms_stats_count(st); d++) {
		const struct vms_stat_desc *desc = vms_stats_desc(st, d);

		if (desc->size == 1)
			kadd(k, vm, vcpu, desc->name, desc->type, desc->unit, desc->base,
			     desc->exponent, vms_stats_value(st, d));
	}
	vms_stats_free(st);
}

static void kadd_vmm(struct kstats *k, const struct vms_host_vm *vm, const struct vms_vmm_stat *s,
		     size_t n, int vcpu)
{
	for (size_t i = 0; i < n; i++)
		kadd(k, vm, vcpu, s[i].name, s[i].type, s[i].has_unit ? s[i].unit : VMS_UNIT_NONE,
		     s[i].has_unit ? s[i].base : 10, s[i].has_unit ? s[i].exponent : 0, s[i].value);
}

static int kstat_cmp(const void *a, const void *b)
{
	const struct kstat *x = a, *y = b;
	int c = strcmp(x->metric, y->metric);

	return c ? c : x->order - y->order;
}

static void write_kvm(FILE *f, const struct vms_sample *smp)
{
	struct kstats k = { NULL, 0, 0, 0 };

	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];

		if (v->vmm) {
			kadd_vmm(&k, v->vm, v->vmm->vm, v->vmm->nvm, -1);
			for (size_t j = 0; j < v->vmm->nvcpus; j++)
				kadd_vmm(&k, v->vm, v->vmm->vcpus[j].stats, v->vmm->vcpus[j].nstats,
					 v->vmm->vcpus[j].vcpu);
		} else if (v->kvm_source) {
			kadd_fd(&k, v->vm, -1, v->vm->vm_stats_fd);
			for (size_t j = 0; j < v->nvcpus; j++)
				kadd_fd(&k, v->vm, v->vcpus[j].thread->vcpu,
					v->vcpus[j].thread->stats_fd);
		}
	}
	if (k.n)
		qsort(k.v, k.n, sizeof(*k.v), kstat_cmp);
	for (size_t i = 0; i < k.n; i++) {
		const struct kstat *e = &k.v[i];

		if (!i || strcmp(e->metric, k.v[i - 1].metric)) {
			char help[200];

			snprintf(help, sizeof(help), "KVM's statistic %s, in base units.",
				 e->metric + strlen("vmscope_kvm_"));
			family(f, e->metric, e->type, help);
		}
		vm_series(f, e->metric, e->vm, e->vcpu);
		fputc('}', f);
		put_value(f, e->value);
	}
	free(k.v);
}

/* ---- the rest ---- */

/* One series per vCPU of every VM for field @key of the sampler. */
static void write_field(FILE *f, const struct vms_sampler *s, const char *metric, const char *key,
			const char *help)
{
	const struct vms_sample *smp = vms_sampler_sample(s);
	int k = vms_sampler_field_index(s, key);

	if (k < 0)
		return;
	family(f, metric, "counter", help);
	for (size_t i = 0; i < smp->nvms; i++)
		for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
			const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];

			if (isnan(v->value[k]))
				continue;
			vm_series(f, metric, smp->vms[i].vm, v->thread->vcpu);
			fputc('}', f);
			put_value(f, v->value[k]);
		}
}

static void write_events(FILE *f, const struct vms_sampler *s)
{
	const struct vms_sample *smp = vms_sampler_sample(s);
	bool any = false;

	for (size_t k = 0; k < vms_sampler_nfields(s); k++) {
		const struct vms_field_info *fi = vms_sampler_field(s, k);

		if (fi->source != VMS_FIELD_EVENTS)
			continue;
		for (size_t i = 0; i < smp->nvms; i++)
			for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
				const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];

				if (isnan(v->value[k]))
					continue;
				if (!any)
					family(f, "vmscope_vcpu_events_total", "counter",
					       "kvm trace events of the vCPU thread, counted in "
					       "the "
					       "kernel since vmscope began counting.");
				any = true;
				vm_series(f, "vmscope_vcpu_events_total", smp->vms[i].vm,
					  v->thread->vcpu);
				put_label(f, "event", fi->key + strlen("events."), false);
				fputc('}', f);
				put_value(f, v->value[k]);
			}
	}
}

static void write_reasons(FILE *f, const struct vms_sample *smp)
{
	bool any = false;

	for (size_t i = 0; i < smp->nvms; i++)
		for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
			const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];

			for (size_t r = 0; r < v->nreasons; r++) {
				char code[24];

				if (!any)
					family(f, "vmscope_vcpu_exits_total", "counter",
					       "Exits of the vCPU by reason: kvm_exit by VMX/SVM "
					       "exit "
					       "reason, userspace_exit by KVM_EXIT_* reason.");
				any = true;
				snprintf(code, sizeof(code), "%llu",
					 (unsigned long long)v->reasons[r].code);
				vm_series(f, "vmscope_vcpu_exits_total", smp->vms[i].vm,
					  v->thread->vcpu);
				put_label(f, "kind", vms_reason_kind_name(v->reasons[r].kind),
					  false);
				put_label(f, "reason",
					  v->reasons[r].name ? v->reasons[r].name : code, false);
				fputc('}', f);
				put_value(f, v->reasons[r].value);
			}
		}
}

/* Wakeup latency per vCPU thread: a Prometheus histogram with cumulative buckets. */
static void write_wakeups(FILE *f, const struct vms_sample *smp)
{
	static const char *const name = "vmscope_vcpu_wakeup_latency_seconds";
	bool any = false;

	for (size_t i = 0; i < smp->nvms; i++)
		for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
			const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];
			const struct vms_wakelat_hist *h = v->wakeups;
			uint64_t cum = 0;
			char series[64], le[32];

			if (!h)
				continue;
			if (!any)
				family(f, name, "histogram",
				       "Time from the vCPU thread's wakeup (sched_wakeup) to its "
				       "running on a host CPU (sched_switch): latency its guest "
				       "feels in timers and interrupts.");
			any = true;
			snprintf(series, sizeof(series), "%s_bucket", name);
			for (unsigned int b = 0; b < VMS_WAKELAT_BUCKETS; b++) {
				cum += h->bucket[b];
				if (b < VMS_WAKELAT_BOUNDS)
					snprintf(le, sizeof(le), "%.9g",
						 (double)vms_wakelat_bounds_ns[b] * 1e-9);
				else
					snprintf(le, sizeof(le), "+Inf");
				vm_series(f, series, smp->vms[i].vm, v->thread->vcpu);
				put_label(f, "le", le, false);
				fputc('}', f);
				put_value(f, (double)cum);
			}
			snprintf(series, sizeof(series), "%s_sum", name);
			vm_series(f, series, smp->vms[i].vm, v->thread->vcpu);
			fputc('}', f);
			put_value(f, (double)h->sum_ns * 1e-9);
			snprintf(series, sizeof(series), "%s_count", name);
			vm_series(f, series, smp->vms[i].vm, v->thread->vcpu);
			fputc('}', f);
			put_value(f, (double)h->count);
		}
	if (!any)
		return;
	family(f, "vmscope_vcpu_wakeups_untimed_total", "counter",
	       "Wakeups of the vCPU thread whose switch in the kernel did not trace (some "
	       "kernels miss switches away from the idle task): counted, not timed.");
	for (size_t i = 0; i < smp->nvms; i++)
		for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
			const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];

			if (!v->wakeups)
				continue;
			vm_series(f, "vmscope_vcpu_wakeups_untimed_total", smp->vms[i].vm,
				  v->thread->vcpu);
			fputc('}', f);
			put_value(f, (double)v->wakeups->untimed);
		}
}

static void write_host(FILE *f, const struct vms_sample *smp)
{
	double tick = 1.0 / (double)sysconf(_SC_CLK_TCK);

	if (!smp->nraw_cpus)
		return;
	family(f, "vmscope_host_cpu_seconds_total", "counter",
	       "Time of each host CPU by mode (/proc/stat); user and nice leave guest time out, "
	       "which is a mode of its own.");
	for (size_t i = 0; i < smp->nraw_cpus; i++) {
		const struct vms_host_cpu *c = &smp->raw_cpus[i];
		const struct {
			const char *mode;
			uint64_t v;
		} m[] = {
			{ "user", c->user > c->guest ? c->user - c->guest : 0 },
			{ "nice", c->nice > c->guest_nice ? c->nice - c->guest_nice : 0 },
			{ "system", c->system },
			{ "irq", c->irq },
			{ "softirq", c->softirq },
			{ "steal", c->steal },
			{ "guest", c->guest },
			{ "guest_nice", c->guest_nice },
			{ "iowait", c->iowait },
			{ "idle", c->idle },
		};
		char cpu[16];

		snprintf(cpu, sizeof(cpu), "%d", c->cpu);
		for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
			fputs("vmscope_host_cpu_seconds_total{", f);
			put_label(f, "cpu", cpu, true);
			put_label(f, "mode", m[k].mode, false);
			fputc('}', f);
			put_value(f, (double)m[k].v * tick);
		}
	}
}

int vms_prom_write(FILE *f, const struct vms_sampler *s, const struct vms_prom_opts *opts)
{
	const struct vms_sample *smp = vms_sampler_sample(s);
	bool kvm_ok = true, events_ok = true;
	int k, ks;

	family(f, "vmscope_vms", "gauge", "KVM virtual machines vmscope sees on this host.");
	fprintf(f, "vmscope_vms %zu\n", smp->nvms);
	family(f, "vmscope_vm_info", "gauge", "A KVM virtual machine of this host (always 1).");
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];

		vm_series(f, "vmscope_vm_info", v->vm, -1);
		put_label(f, "name_source", v->vm->name_source, false);
		put_label(f, "comm", v->vm->comm, false);
		put_label(f, "kvm_stats_source", v->kvm_source ? v->kvm_source : "", false);
		fputs("} 1\n", f);
		kvm_ok = kvm_ok && !v->kvm_err;
		events_ok = events_ok && !v->events_err;
	}
	family(f, "vmscope_vm_vcpus", "gauge", "vCPU threads of the VM.");
	for (size_t i = 0; i < smp->nvms; i++) {
		vm_series(f, "vmscope_vm_vcpus", smp->vms[i].vm, -1);
		fputc('}', f);
		put_value(f, (double)smp->vms[i].nvcpus);
	}
	/* The libvirt exporters' name: vcpu.N.time, user + system time of the vCPU thread. */
	family(f, "libvirt_domain_vcpu_time_seconds_total", "counter",
	       "CPU time of the vCPU thread (user + system, /proc; as libvirt's vcpu.N.time).");
	k = vms_sampler_field_index(s, "cpu.user_s");
	ks = vms_sampler_field_index(s, "cpu.system_s");
	for (size_t i = 0; k >= 0 && ks >= 0 && i < smp->nvms; i++)
		for (size_t j = 0; j < smp->vms[i].nvcpus; j++) {
			const struct vms_sample_vcpu *v = &smp->vms[i].vcpus[j];
			char num[16];

			if (isnan(v->value[k]))
				continue;
			fputs("libvirt_domain_vcpu_time_seconds_total{", f);
			put_label(f, "domain", smp->vms[i].vm->name, true);
			snprintf(num, sizeof(num), "%d", v->thread->vcpu);
			put_label(f, "vcpu", num, false);
			fputc('}', f);
			put_value(f, v->value[k] + v->value[ks]);
		}
	write_field(f, s, "vmscope_vcpu_run_seconds_total", "cpu.run_s",
		    "Time the vCPU thread ran on a host CPU (schedstat, exact).");
	write_field(f, s, "vmscope_vcpu_runq_wait_seconds_total", "cpu.runq_wait_s",
		    "Time the vCPU thread waited for a host CPU while runnable (schedstat): steal "
		    "the guest cannot see.");
	write_field(f, s, "vmscope_vcpu_user_seconds_total", "cpu.user_s",
		    "User time of the vCPU thread (/proc, tick-based; guest time is inside it).");
	write_field(f, s, "vmscope_vcpu_system_seconds_total", "cpu.system_s",
		    "System time of the vCPU thread (/proc, tick-based).");
	write_field(f, s, "vmscope_vcpu_guest_seconds_total", "cpu.guest_s",
		    "Guest time of the vCPU thread (/proc, tick-based).");
	write_events(f, s);
	write_reasons(f, smp);
	write_wakeups(f, smp);
	if (opts && opts->kvm_stats)
		write_kvm(f, smp);
	write_host(f, smp);
	family(f, "vmscope_source_up", "gauge",
	       "Whether a source could be read for every VM (1) or not (0); the reason is in "
	       "vmscope's log.");
	fprintf(f, "vmscope_source_up{source=\"procfs\"} 1\n");
	fprintf(f, "vmscope_source_up{source=\"kvm_stats\"} %d\n", kvm_ok);
	fprintf(f, "vmscope_source_up{source=\"events\"} %d\n", events_ok);
	if (smp->reasons_backend || smp->reasons_err)
		fprintf(f, "vmscope_source_up{source=\"exit_reasons\"} %d\n",
			smp->reasons_backend != NULL);
	if (smp->wakeups_err || smp->wakeups_timed)
		fprintf(f, "vmscope_source_up{source=\"wakeup_latency\"} %d\n", smp->wakeups_timed);
	fprintf(f, "vmscope_source_up{source=\"host_cpus\"} %d\n", smp->nraw_cpus > 0);
	if (smp->reasons_backend) {
		family(f, "vmscope_exit_reasons_dropped_total", "counter",
		       "Exits not counted by reason (tables full, ring buffer lost).");
		fprintf(f, "vmscope_exit_reasons_dropped_total %llu\n",
			(unsigned long long)smp->reasons_dropped);
	}
	if (smp->wakeups_timed) {
		family(f, "vmscope_wakeup_latency_lost_events_total", "counter",
		       "sched events the ring buffer lost: the wakeups around them are not timed.");
		fprintf(f, "vmscope_wakeup_latency_lost_events_total %llu\n",
			(unsigned long long)smp->wakeups_lost);
	}
	if (opts) {
		family(f, "vmscope_scrape_duration_seconds", "gauge",
		       "Time vmscope took to sample the host for this scrape.");
		fprintf(f, "vmscope_scrape_duration_seconds %.6f\n", opts->scrape_seconds);
	}
	return fflush(f) || ferror(f) ? -EIO : 0;
}
