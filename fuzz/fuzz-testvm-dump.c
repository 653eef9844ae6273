// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the reader of the multiboot test VM guest's memory dumps
 * (vms_testvm_open_dump() in lib/testvm/truth.c). Each input is the bytes a pmemsave of
 * guest-physical 0x20000 would give. When the reader accepts them, every accessor and the
 * truth writer run over the result and the promises of include/vmscope/testvm.h are
 * checked (counts in range, phase times ordered, the JSON written in full); when it
 * refuses them, the error must be one of those documented, with a message. Linked with
 * replay.c it is the 'fuzz' test that replays fuzz/corpus/testvm-dump/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/testvm.h"
#include "fuzz.h"

static volatile uint64_t sink;

static void exercise(struct vms_testvm *vm)
{
	unsigned int n = vms_testvm_vcpus(vm), np = vms_testvm_nphases(vm);
	struct vms_testvm_vmm_counts vmm;
	char *json = NULL;
	size_t len = 0;
	FILE *f;

	CHECK(n >= 1 && n <= VMS_TESTVM_MAX_VCPUS);
	CHECK(np >= 1 && np <= VMS_TESTVM_MAX_PHASES);
	CHECK(vms_testvm_tsc_khz(vm) >= 1000);
	for (unsigned int p = 0; p <= np; p++) {
		uint64_t s, e;
		bool complete;
		int ret = vms_testvm_phase_tsc(vm, p, &s, &e, &complete);

		CHECK(ret == 0 || ret == -ENOENT);
		CHECK(p < np || ret == -ENOENT);
		if (!ret)
			CHECK(s <= e);
		/* a dump has no host times */
		CHECK(vms_testvm_phase_times(vm, p, &s, &e, &complete) == -ENOENT);
	}
	for (unsigned int i = 0; i <= n; i++) {
		struct vms_testvm_vcpu_phase ph;
		struct vms_testvm_fault fault;
		uint64_t d;

		for (unsigned int p = 0; p <= np + 1; p++) {
			int ret = vms_testvm_vcpu_phase(vm, i, p, &ph);

			CHECK(ret == (i < n && p <= np ? 0 : -EINVAL));
			if (!ret)
				sink += ph.busy_ns + ph.idle_ns + ph.late_ns + ph.pio + ph.duty;
		}
		CHECK(vms_testvm_vcpu_totals(vm, i, &ph) == (i < n ? 0 : -EINVAL));
		CHECK(vms_testvm_vmm_counts(vm, i, &vmm) == (i < n ? -ENOENT : -EINVAL));
		sink += vms_testvm_vcpu_done(vm, i);
		sink += vms_testvm_vcpu_fault(vm, i, &fault) == 0;
		sink += (uint64_t)vms_testvm_vcpu_tid(vm, i);
		CHECK(vms_testvm_stat_delta(vm, i, "exits", &d) == (i < n ? 0 : -EINVAL));
		CHECK(i >= n || d == 7);
	}
	f = open_memstream(&json, &len);
	CHECK(f);
	CHECK(vms_testvm_write_truth(vm, f) == 0);
	CHECK(fclose(f) == 0);
	CHECK(len > 3 && json[0] == '{' && json[len - 2] == '}' && json[len - 1] == '\n');
	CHECK(strstr(json, "\"vmm\": \"fuzz\""));
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vms_testvm_stat_delta stats[] = { { "exits", 7 }, { NULL, 1 } };
	struct vms_testvm_dump_vcpu vcpus[VMS_TESTVM_MAX_VCPUS];
	struct vms_testvm_dump_opts opts = {
		.sz = sizeof(opts),
		.vmm = "fuzz",
		.name = "fuzz \"vm\"",
		.pid = 1,
		.vcpus = vcpus,
		.nvcpus = VMS_TESTVM_MAX_VCPUS,
		.vmm_pio = 3,
	};
	struct vms_testvm *vm = NULL;
	int ret;

	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++)
		vcpus[i] = (struct vms_testvm_dump_vcpu){ .tid = (int)i + 100,
							  .stats = stats,
							  .nstats = 2 };
	ret = vms_testvm_open_dump(data, size, &opts, &vm);
	if (ret) {
		CHECK(!vm);
		CHECK(ret == -VMS_E_TESTVM_DUMP || ret == -VMS_E_GUEST_BOOT || ret == -EAGAIN);
		CHECK(vms_testvm_last_error(NULL)[0] != '\0');
		return 0;
	}
	CHECK(vm);
	exercise(vm);
	vms_testvm_free(vm);
	return 0;
}
