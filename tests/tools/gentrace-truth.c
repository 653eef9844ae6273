// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace's truth: what an exact analysis of the generated file must find, as JSON.
 *
 * Only written events count: an event dropped in a lost window is not in the truth. The
 * exit latencies follow perf kvm stat's pairing: an exit ends at the next written
 * kvm_entry of the same thread, and a thread is timed only from its first written
 * kvm_entry on; so the truth also lists the exits before that entry, the entries without
 * an exit, and the exits still unfinished at the end (each vCPU's last HLT, and exits
 * whose entry was dropped). The latencies are kept as counters per (thread, reason) plus,
 * unless --no-percentiles, one sample per exit for exact nearest-rank percentiles. The
 * per-device, per-port and per-MSR counters are kept by the simulation
 * (gentrace-sim.c) in struct thread; write_truth() prints them all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gentrace.h"
#include "vmscope/json.h"
#include "vmscope/trace-writer.h"

static const char *const mmio_type_name[] = { "unsatisfied-read", "read", "write" };

static void xstat_add(struct sim *s, struct xstat *x, uint64_t lat)
{
	if (!x->count || lat < x->min)
		x->min = lat;
	if (lat > x->max)
		x->max = lat;
	x->count++;
	x->total += lat;
	if (!s->o->percentiles)
		return;
	if (x->ns == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		uint64_t *p = realloc(x->samples, cap * sizeof(*p));

		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		x->samples = p;
		x->cap = cap;
	}
	x->samples[x->ns++] = lat;
}

/* perf kvm stat's pairing: an exit ends at the next kvm_entry of the same thread, and a
 * thread is timed only from its first kvm_entry on. */
void truth_exit(struct sim *s, struct thread *th, uint64_t ts, int reason)
{
	if (!th->known) {
		th->xs[reason].before++;
		return;
	}
	if (th->pending >= 0)
		th->xs[th->pending].unfinished++;
	th->pending = reason;
	th->pending_ts = ts;
}

void truth_entry(struct sim *s, struct thread *th, uint64_t ts)
{
	th->known = true;
	if (th->pending < 0) {
		th->orphans++;
		return;
	}
	xstat_add(s, &th->xs[th->pending], ts - th->pending_ts);
	th->pending = -1;
}

/* ---- output ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned p)
{
	size_t rank = (p * n + 99) / 100;

	return v[rank ? rank - 1 : 0];
}

int write_truth(struct sim *s, const char *path)
{
	struct opts *o = s->o;
	struct vms_json j;
	FILE *f = fopen(path, "we");
	uint64_t lost_total = 0;
	int ret;

	if (!f)
		return -errno;
	vms_json_init(&j, f, true);
	vms_json_object_begin(&j, NULL);

	vms_json_object_begin(&j, "scenario");
	vms_json_string(&j, "vendor", o->svm ? "svm" : "vmx");
	vms_json_u64(&j, "vms", o->vms);
	vms_json_u64(&j, "vcpus", o->vcpus);
	vms_json_u64(&j, "cpus", o->cpus);
	vms_json_u64(&j, "exits", o->exits);
	vms_json_u64(&j, "events_total", o->events_total);
	vms_json_u64(&j, "seed", o->seed);
	vms_json_u64(&j, "lost", o->lost);
	vms_json_u64(&j, "dat_version", (uint64_t)o->dat_version);
	vms_json_string(&j, "compression", o->compression);
	vms_json_u64(&j, "page_size", 4096);
	vms_json_bool(&j, "percentiles", o->percentiles);
	vms_json_object_end(&j);

	vms_json_string(&j, "vendor", o->svm ? "svm" : "vmx");
	vms_json_u64(&j, "isa", s->isa);
	vms_json_u64(&j, "cpus", o->cpus);
	vms_json_string(&j, "exit_pairing",
			"next kvm_entry of the same thread in the file, from the thread's first "
			"kvm_entry on");

	vms_json_array_begin(&j, "vms");
	for (unsigned v = 0; v < o->vms; v++) {
		char name[32];

		snprintf(name, sizeof(name), "vm%u", v);
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "pid", s->th[v * o->vcpus].pid);
		vms_json_string(&j, "name", name);
		vms_json_array_begin(&j, "vcpus");
		for (unsigned i = 0; i < o->vcpus; i++) {
			vms_json_object_begin(&j, NULL);
			vms_json_u64(&j, "vcpu", i);
			vms_json_i64(&j, "tid", s->th[v * o->vcpus + i].tid);
			vms_json_object_end(&j);
		}
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_object_begin(&j, "events");
	for (int e = 0; e < EV_N; e++)
		vms_json_u64(&j, ev_name(e), s->events[e]);
	vms_json_object_end(&j);
	vms_json_u64(&j, "events_written", s->generated - s->dropped);

	vms_json_array_begin(&j, "per_cpu");
	for (unsigned c = 0; c < o->cpus; c++) {
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "cpu", c);
		vms_json_u64(&j, "events", s->cpu[c].written);
		vms_json_u64(&j, "lost", s->cpu[c].lost_total);
		vms_json_u64(&j, "pages", vms_page_writer_pages(s->cpu[c].pw));
		vms_json_u64(&j, "first_ts", s->cpu[c].first_ts);
		vms_json_u64(&j, "last_ts", s->cpu[c].last_ts);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "lost");
	for (size_t i = 0; i < s->nwins; i++) {
		vms_json_object_begin(&j, NULL);
		vms_json_u64(&j, "cpu", (uint64_t)s->wins[i].cpu);
		vms_json_u64(&j, "events", s->wins[i].events);
		vms_json_u64(&j, "from_ts", s->wins[i].from);
		vms_json_u64(&j, "to_ts", s->wins[i].to);
		vms_json_object_end(&j);
		lost_total += s->wins[i].events;
	}
	vms_json_array_end(&j);
	vms_json_u64(&j, "lost_total", lost_total);

	vms_json_array_begin(&j, "exits");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			struct xstat *x = &th->xs[r];

			if (!x->count)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "pid", th->pid);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "vcpu", (uint64_t)th->vid);
			vms_json_u64(&j, "isa", s->isa);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_string(&j, "name", s->reasons[r].name);
			vms_json_u64(&j, "count", x->count);
			vms_json_u64(&j, "total_ns", x->total);
			vms_json_u64(&j, "min_ns", x->min);
			vms_json_u64(&j, "max_ns", x->max);
			if (o->percentiles && x->ns == x->count) {
				qsort(x->samples, x->ns, sizeof(*x->samples), cmp_u64);
				vms_json_u64(&j, "p50_ns", percentile(x->samples, x->ns, 50));
				vms_json_u64(&j, "p95_ns", percentile(x->samples, x->ns, 95));
				vms_json_u64(&j, "p99_ns", percentile(x->samples, x->ns, 99));
			}
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "unfinished");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			uint64_t n = th->xs[r].unfinished + (th->pending == (int)r);

			if (!n)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "pid", th->pid);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "vcpu", (uint64_t)th->vid);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_string(&j, "name", s->reasons[r].name);
			vms_json_u64(&j, "count", n);
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "before_first_entry");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		struct thread *th = &s->th[t];

		for (unsigned r = 0; r < s->nreasons; r++) {
			if (!th->xs[r].before)
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "tid", th->tid);
			vms_json_u64(&j, "reason", s->reasons[r].code);
			vms_json_u64(&j, "count", th->xs[r].before);
			vms_json_object_end(&j);
		}
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "orphan_entries");
	for (unsigned t = 0; t < s->nvcpus; t++) {
		if (!s->th[t].orphans)
			continue;
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "tid", s->th[t].tid);
		vms_json_u64(&j, "count", s->th[t].orphans);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "mmio");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned ty = 0; ty < 3; ty++)
			for (unsigned d = 0; d < NR_MMIO_DEVS; d++) {
				if (!s->th[t].mmio[ty][d])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_string(&j, "type", mmio_type_name[ty]);
				vms_json_u64(&j, "gpa", mmio_devs[d].gpa);
				vms_json_u64(&j, "count", s->th[t].mmio[ty][d]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "pio");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned p = 0; p < NR_PIO_PORTS; p++)
			for (unsigned rw = 0; rw < 2; rw++) {
				if (!s->th[t].pio[p][rw])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_u64(&j, "port", pio_ports[p].port);
				vms_json_string(&j, "rw", rw ? "write" : "read");
				vms_json_u64(&j, "count", s->th[t].pio[p][rw]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "msr");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned m = 0; m < NR_MSRS; m++)
			for (unsigned rw = 0; rw < 2; rw++) {
				if (!s->th[t].msr[m][rw])
					continue;
				vms_json_object_begin(&j, NULL);
				vms_json_i64(&j, "tid", s->th[t].tid);
				vms_json_u64(&j, "index", msr_idx[m]);
				vms_json_string(&j, "rw", rw ? "write" : "read");
				vms_json_u64(&j, "count", s->th[t].msr[m][rw]);
				vms_json_object_end(&j);
			}
	vms_json_array_end(&j);

	vms_json_array_begin(&j, "userspace_exits");
	for (unsigned t = 0; t < s->nvcpus; t++)
		for (unsigned k = 0; k < 2; k++) {
			if (!s->th[t].uexit[k])
				continue;
			vms_json_object_begin(&j, NULL);
			vms_json_i64(&j, "tid", s->th[t].tid);
			vms_json_u64(&j, "reason", k ? KVM_EXIT_MMIO : KVM_EXIT_IO);
			vms_json_u64(&j, "count", s->th[t].uexit[k]);
			vms_json_object_end(&j);
		}
	vms_json_array_end(&j);

	vms_json_object_end(&j);
	ret = vms_json_finish(&j);
	if (fclose(f) && !ret)
		ret = -EIO;
	return ret;
}
