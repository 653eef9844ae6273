// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A live trace of the built-in test VM: the test runs the VM in a thread and reads
 * kvm_mmio records from vmscope's live source meanwhile; once the VM is done it stops the
 * stream. Every load MMIO write (0xe8000000) and control write (0xe8001000) of each vCPU
 * thread must be there exactly (the VM's own counts), in time order, stamped with
 * CLOCK_MONOTONIC inside the run, and the tracefs instance must be gone after close.
 * Skip (77) without /dev/kvm or tracefs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmscope/testvm.h"
#include "vmscope/trace.h"

#include "check.h"

static struct vms_testvm *vm;
static volatile int vm_done;
static int vm_ret;

static void *run_vm(void *arg)
{
	(void)arg;
	vm_ret = vms_testvm_run(vm);
	__atomic_store_n(&vm_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	static const char *const events[] = { "kvm:kvm_mmio", NULL };
	struct vms_testvm_phase phases[] = { { 0, 300000000ULL }, { 50, 1500000000ULL } };
	struct vms_testvm_opts opts = {
		.sz = sizeof(opts), .vcpus = 2, .phases = phases, .nphases = 2, .mmio_rate = 200
	};
	struct vms_live_opts lo = { .sz = sizeof(lo), .events = events, .pids = NULL };
	uint64_t load[2] = { 0 }, ctl[2] = { 0 }, prev = 0, back = 0, t0, t1, first = 0, last = 0;
	struct vms_field f_type, f_gpa;
	struct vms_trace *t;
	struct vms_record r;
	char inst[96];
	pthread_t th;
	int id, ret, tid[2];
	struct stat st;

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: /dev/kvm is absent or not accessible\n");
		return 77;
	}
	ret = vms_testvm_new(&opts, &vm);
	if (ret) {
		printf("FAIL: vms_testvm_new: %s\n", vms_testvm_last_error(NULL));
		return 1;
	}
	ret = vms_trace_open_live(&lo, &t);
	if (ret) {
		printf("SKIP: no live trace here: %s\n", vms_trace_open_error());
		vms_testvm_free(vm);
		return 77;
	}
	snprintf(inst, sizeof(inst), "/sys/kernel/tracing/instances/vmscope-%d-live0", getpid());
	CHECK(stat(inst, &st) == 0, "the instance %s exists while tracing", inst);
	CHECK(!strcmp(vms_trace_info(t)->clock, "mono"), "clock mono");
	id = vms_trace_event_id(t, "kvm", "kvm_mmio");
	CHECK(id >= 0, "kvm_mmio is traced");
	vms_trace_field(t, id, "type", &f_type);
	vms_trace_field(t, id, "gpa", &f_gpa);
	t0 = mono();
	pthread_create(&th, NULL, run_vm, NULL);
	while ((ret = vms_trace_next(t, &r)) == 1) {
		if (r.type == (uint32_t)id) {
			uint64_t gpa = vms_field_u64(&f_gpa, &r), type = vms_field_u64(&f_type, &r);

			for (int i = 0; i < 2; i++) {
				if (r.pid != vms_testvm_vcpu_tid(vm, (unsigned)i) || type != 2)
					continue;
				load[i] += gpa == 0xe8000000ULL;
				ctl[i] += gpa == 0xe8001000ULL;
				if (!first)
					first = r.ts;
				last = r.ts;
			}
		}
		back += r.ts < prev;
		prev = r.ts;
		/* the VM is done and both DONE writes came: stop; the rest still comes */
		if (__atomic_load_n(&vm_done, __ATOMIC_SEQ_CST) && ctl[0] && ctl[1])
			vms_trace_stop(t);
		if (__atomic_load_n(&vm_done, __ATOMIC_SEQ_CST) && mono() - t0 > 30000000000ULL)
			vms_trace_stop(t); /* never wait for ever */
	}
	if (!__atomic_load_n(&vm_done, __ATOMIC_SEQ_CST))
		vms_testvm_stop(vm);
	pthread_join(th, NULL);
	t1 = mono();
	CHECK(ret == 0, "the stream ends cleanly: %d %s", ret, vms_trace_error(t));
	CHECK(vm_ret == 0, "the VM ran: %s", vms_testvm_last_error(vm));
	CHECK(back == 0, "records in time order (%" PRIu64 " went back)", back);
	CHECK(first >= t0 && last <= t1, "timestamps are CLOCK_MONOTONIC, inside the run");
	for (unsigned int i = 0; i < 2; i++) {
		struct vms_testvm_vcpu_phase tot;

		vms_testvm_vcpu_totals(vm, i, &tot);
		tid[i] = vms_testvm_vcpu_tid(vm, i);
		printf("vCPU %u (thread %d): live load MMIO %" PRIu64 " control %" PRIu64
		       ", the VM's own %" PRIu64 " and %" PRIu64 "\n",
		       i, tid[i], load[i], ctl[i], tot.mmio, tot.mmio_control);
		CHECK(tot.mmio > 100, "vCPU %u made load exits", i);
		CHECK(load[i] == tot.mmio,
		      "vCPU %u: load MMIO writes, live %" PRIu64 " vs the VM's "
		      "%" PRIu64,
		      i, load[i], tot.mmio);
		CHECK(ctl[i] == tot.mmio_control, "vCPU %u: control writes", i);
	}
	vms_trace_close(t);
	CHECK(stat(inst, &st) != 0, "the instance is removed");
	vms_testvm_free(vm);
	return CHECK_DONE();
}
