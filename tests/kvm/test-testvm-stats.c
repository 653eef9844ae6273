// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The test VM's exits against KVM's own counters. The test opens its own
 * KVM_GET_STATS_FD on every vCPU of a test VM and reads the counters with a minimal
 * reader of its own (not libvmscope's parser), before and after a run with MMIO and
 * port-I/O load, then checks the relations documented in doc/vmscope-testvm.md:
 *
 *   mmio_exits grew by at least the MMIO writes the guest made (load + control), and
 *     exactly by the KVM_EXIT_MMIO returns the VMM saw;
 *   halt_exits grew by at least the HLTs the guest executed;
 *   exits grew by at least mmio + hlt;
 *   VMX/SVM: io_exits grew by at least the guest's OUTs and hypercalls by at least its
 *     VMCALL/VMMCALLs; KVM-PVM emulates the guest's kernel-mode OUT, so it shows up in
 *     insn_emulation instead and io_exits does not move, and it answers a user-mode
 *     VMMCALL (-KVM_EPERM) without counting it in hypercalls.
 *
 * It also checks that libvmscope's parser returns the very values the minimal reader does.
 * Exit 77 (skip) only when /dev/kvm is absent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vmscope/host.h"
#include "vmscope/stats.h"
#include "vmscope/testvm.h"

#include "check.h"

static const char *const names[] = { "exits",	 "mmio_exits",	   "halt_exits",
				     "io_exits", "insn_emulation", "hypercalls" };
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* A deliberately small, independent reader: header, descriptors, one value per name. */
static int read_counters(int stats_fd, uint64_t out[NNAMES])
{
	struct kvm_stats_header h;
	char *descs;
	size_t dsz;

	if (pread(stats_fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = malloc(dsz * h.num_desc);
	if (!descs || pread(stats_fd, descs, dsz * h.num_desc, h.desc_offset) !=
			      (ssize_t)(dsz * h.num_desc)) {
		free(descs);
		return -1;
	}
	for (size_t n = 0; n < NNAMES; n++) {
		out[n] = UINT64_MAX;
		for (uint32_t i = 0; i < h.num_desc; i++) {
			struct kvm_stats_desc *d = (void *)(descs + i * dsz);

			if (!strcmp(d->name, names[n]) &&
			    pread(stats_fd, &out[n], 8, h.data_offset + d->offset) != 8)
				out[n] = UINT64_MAX;
		}
	}
	free(descs);
	return 0;
}

int main(void)
{
	struct vms_testvm_phase phases[] = { { 60, 1500000000ULL } };
	struct vms_testvm_opts opts = {
		.sz = sizeof(opts),
		.vcpus = 2,
		.phases = phases,
		.nphases = 1,
		.mmio_rate = 400,
		.pio_rate = 150,
		.msr_rate = 50,
		.hypercall_rate = 60,
	};
	enum vms_kvm_flavor flavor = vms_host_kvm_flavor(NULL);
	uint64_t before[2][NNAMES], after[2][NNAMES];
	int sfd[2];
	struct vms_testvm *vm;
	int ret;

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: /dev/kvm is absent or not accessible\n");
		return 77;
	}
	ret = vms_testvm_new(&opts, &vm);
	if (ret) {
		printf("FAIL: vms_testvm_new: %s: %s\n", vms_strerror(ret),
		       vms_testvm_last_error(NULL));
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		sfd[i] = ioctl(vms_testvm_vcpu_fd(vm, (unsigned)i), KVM_GET_STATS_FD, NULL);
		if (sfd[i] < 0) {
			printf("SKIP: KVM_GET_STATS_FD unsupported: %s\n", strerror(errno));
			return 77;
		}
		CHECK(read_counters(sfd[i], before[i]) == 0, "read vCPU %d counters", i);
	}
	ret = vms_testvm_run(vm);
	CHECK(ret == 0, "run: %s %s", vms_strerror(ret), vms_testvm_last_error(vm));
	printf("host KVM: %s\n", vms_kvm_flavor_name(flavor));
	for (int i = 0; i < 2; i++) {
		struct vms_testvm_vcpu_phase tot;
		struct vms_testvm_vmm_counts vmm;
		struct vms_stats *st = vms_testvm_vcpu_stats(vm, (unsigned)i);
		uint64_t d[NNAMES], guest_mmio;

		CHECK(read_counters(sfd[i], after[i]) == 0, "read vCPU %d counters", i);
		for (size_t n = 0; n < NNAMES; n++)
			d[n] = after[i][n] - before[i][n];
		vms_testvm_vcpu_totals(vm, (unsigned)i, &tot);
		vms_testvm_vmm_counts(vm, (unsigned)i, &vmm);
		guest_mmio = tot.mmio + tot.mmio_control;
		printf("vCPU %d: guest mmio %lu pio %lu msr %lu hypercall %lu hlt %lu | VMM mmio "
		       "%lu "
		       "pio %lu msr %lu | KVM exits +%lu mmio_exits +%lu halt_exits +%lu io_exits "
		       "+%lu insn_emulation +%lu hypercalls +%lu\n",
		       i, (unsigned long)guest_mmio, (unsigned long)tot.pio, (unsigned long)tot.msr,
		       (unsigned long)tot.hypercall, (unsigned long)tot.hlt,
		       (unsigned long)(vmm.mmio_load + vmm.mmio_control), (unsigned long)vmm.pio,
		       (unsigned long)vmm.msr, (unsigned long)d[0], (unsigned long)d[1],
		       (unsigned long)d[2], (unsigned long)d[3], (unsigned long)d[4],
		       (unsigned long)d[5]);
		CHECK(tot.mmio > 100 && tot.pio > 50 && tot.hlt > 10 && tot.msr > 20 &&
			      tot.hypercall > 20,
		      "vCPU %d made the exits it was asked for", i);
		CHECK(vmm.msr == tot.msr, "vCPU %d: WRMSR exits, VMM %lu == guest %lu", i,
		      (unsigned long)vmm.msr, (unsigned long)tot.msr);
		CHECK(tot.hypercall_eperm == tot.hypercall, "vCPU %d: hypercalls refused", i);
		CHECK(d[1] >= guest_mmio, "vCPU %d: mmio_exits +%lu >= guest MMIO writes %lu", i,
		      (unsigned long)d[1], (unsigned long)guest_mmio);
		CHECK(d[1] == vmm.mmio_load + vmm.mmio_control + vmm.mmio_other,
		      "vCPU %d: mmio_exits +%lu == KVM_EXIT_MMIO seen by the VMM %lu", i,
		      (unsigned long)d[1], (unsigned long)(vmm.mmio_load + vmm.mmio_control));
		CHECK(d[2] >= tot.hlt, "vCPU %d: halt_exits +%lu >= guest HLTs %lu", i,
		      (unsigned long)d[2], (unsigned long)tot.hlt);
		CHECK(d[0] >= guest_mmio + tot.hlt, "vCPU %d: exits +%lu >= mmio + hlt", i,
		      (unsigned long)d[0]);
		if (flavor == VMS_KVM_PVM) {
			CHECK(d[4] >= tot.pio,
			      "vCPU %d (PVM): insn_emulation +%lu >= guest OUTs %lu", i,
			      (unsigned long)d[4], (unsigned long)tot.pio);
			CHECK(d[3] == 0, "vCPU %d (PVM): io_exits +%lu stays 0 (OUT is emulated)",
			      i, (unsigned long)d[3]);
			CHECK(d[5] == 0, "vCPU %d (PVM): hypercalls +%lu stays 0", i,
			      (unsigned long)d[5]);
		} else {
			CHECK(d[3] >= tot.pio, "vCPU %d: io_exits +%lu >= guest OUTs %lu", i,
			      (unsigned long)d[3], (unsigned long)tot.pio);
			CHECK(d[5] >= tot.hypercall, "vCPU %d: hypercalls +%lu >= guest's %lu", i,
			      (unsigned long)d[5], (unsigned long)tot.hypercall);
		}
		/* libvmscope's parser reads the same values as the minimal reader. */
		CHECK(st != NULL, "vCPU %d has libvmscope stats", i);
		if (st) {
			CHECK(vms_stats_read(st) == 0, "vms_stats_read");
			for (size_t n = 0; n < NNAMES; n++) {
				uint64_t v = 0;

				CHECK(vms_stats_value_by_name(st, names[n], &v) == 0 &&
					      v == after[i][n],
				      "vCPU %d %s: libvmscope %lu, minimal reader %lu", i, names[n],
				      (unsigned long)v, (unsigned long)after[i][n]);
			}
		}
		close(sfd[i]);
	}
	vms_testvm_free(vm);
	return CHECK_DONE();
}
