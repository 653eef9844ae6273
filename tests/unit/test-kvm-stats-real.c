// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The binary stats parser against the running kernel: create a VM and one vCPU through
 * /dev/kvm, open their KVM_GET_STATS_FD files with vms_stats_open_fd() and check that the
 * kernel's own files pass validation, carry the documented ids ("kvm-<pid>",
 * "kvm-<pid>/vcpu-0") and the statistics every x86 kernel has, and that vms_stats_read()
 * sees the counters move when the vCPU runs a one-instruction guest (HLT). If debugfs is
 * mounted, the VM's debugfs folder is cross-checked against the binary stats.
 *
 * Without /dev/kvm or KVM_CAP_BINARY_STATS_FD the test exits 77, which meson reports as a
 * skip, and says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmscope/stats.h"

static int kvm_fd = -1, vm_fd = -1, vcpu_fd = -1;
static struct kvm_run *run;
static size_t run_size;
static uint8_t *guest_mem;

static struct vms_stats *open_stats(int fd)
{
	struct vms_stats *st = NULL;
	int sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
	int ret;

	assert_true(sfd >= 0);
	ret = vms_stats_open_fd(sfd, &st);
	if (ret)
		fail_msg("vms_stats_open_fd: %s: %s", vms_strerror(ret), vms_stats_last_error());
	return st;
}

/* Properties every well-formed file has, whatever the kernel version. */
static void check_common(const struct vms_stats *st)
{
	assert_true(vms_stats_count(st) > 0);
	for (size_t i = 0; i < vms_stats_count(st); i++) {
		const struct vms_stat_desc *d = vms_stats_desc(st, i);

		assert_non_null(d);
		assert_true(d->name[0] != '\0');
		assert_int_equal(vms_stats_find(st, d->name), (int)i);
		assert_non_null(vms_stats_values(st, i));
		assert_true(d->size >= 1);
	}
}

static void expect_stat(const struct vms_stats *st, const char *name, enum vms_stat_type type,
			enum vms_stat_unit unit, int exponent)
{
	int i = vms_stats_find(st, name);
	const struct vms_stat_desc *d;

	if (i < 0)
		fail_msg("%s has no statistic \"%s\"", vms_stats_id(st), name);
	d = vms_stats_desc(st, (size_t)i);
	assert_int_equal(d->type, type);
	assert_int_equal(d->unit, unit);
	assert_int_equal(d->exponent, exponent);
}

static void test_vm_stats(void **state)
{
	struct vms_stats *st = open_stats(vm_fd);
	char id[64];

	snprintf(id, sizeof(id), "kvm-%d", (int)getpid());
	assert_string_equal(vms_stats_id(st), id);
	check_common(st);
	/* KVM_GENERIC_VM_STATS(), in every kernel with binary stats. */
	expect_stat(st, "remote_tlb_flush", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	/* x86 VM stats. */
	expect_stat(st, "mmu_shadow_zapped", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	expect_stat(st, "pages_4k", VMS_STAT_INSTANT, VMS_UNIT_NONE, 0);
	expect_stat(st, "max_mmu_page_hash_collisions", VMS_STAT_PEAK, VMS_UNIT_NONE, 0);
	assert_int_equal(vms_stats_read(st), 0);
	assert_int_equal(vms_stats_read(st), 0);
	vms_stats_free(st);
}

/* Run the vCPU until it exits to us; the guest is a single HLT at address 0. */
static void run_to_hlt(void)
{
	assert_int_equal(ioctl(vcpu_fd, KVM_RUN, NULL), 0);
	if (run->exit_reason != KVM_EXIT_HLT)
		fail_msg("vCPU exit reason %u, expected KVM_EXIT_HLT", run->exit_reason);
}

static void test_vcpu_stats(void **state)
{
	struct vms_stats *st = open_stats(vcpu_fd);
	uint64_t exits0, halts0, exits1, halts1, exits2;
	uint64_t *before;
	size_t n;
	char id[64];

	snprintf(id, sizeof(id), "kvm-%d/vcpu-0", (int)getpid());
	assert_string_equal(vms_stats_id(st), id);
	check_common(st);
	expect_stat(st, "exits", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	expect_stat(st, "halt_exits", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	expect_stat(st, "mmio_exits", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	expect_stat(st, "io_exits", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	/* KVM_GENERIC_VCPU_STATS(). */
	expect_stat(st, "halt_successful_poll", VMS_STAT_CUMULATIVE, VMS_UNIT_NONE, 0);
	expect_stat(st, "halt_wait_ns", VMS_STAT_CUMULATIVE, VMS_UNIT_SECONDS, -9);
	if (vms_stats_find(st, "halt_poll_success_hist") >= 0)
		expect_stat(st, "halt_poll_success_hist", VMS_STAT_LOG_HIST, VMS_UNIT_SECONDS, -9);
	if (vms_stats_find(st, "guest_mode") >= 0)
		expect_stat(st, "guest_mode", VMS_STAT_INSTANT, VMS_UNIT_BOOLEAN, 0);

	/* Snapshot every first value, run the guest, read again. */
	assert_int_equal(vms_stats_read(st), 0);
	n = vms_stats_count(st);
	before = calloc(n, sizeof(*before));
	assert_non_null(before);
	for (size_t i = 0; i < n; i++)
		before[i] = vms_stats_value(st, i);
	assert_int_equal(vms_stats_value_by_name(st, "exits", &exits0), 0);
	assert_int_equal(vms_stats_value_by_name(st, "halt_exits", &halts0), 0);

	run_to_hlt();
	assert_int_equal(vms_stats_read(st), 0);
	assert_int_equal(vms_stats_value_by_name(st, "exits", &exits1), 0);
	assert_int_equal(vms_stats_value_by_name(st, "halt_exits", &halts1), 0);
	assert_true(exits1 > exits0);
	assert_int_equal(halts1, halts0 + 1);
	/* Cumulative counters only go up. */
	for (size_t i = 0; i < n; i++)
		if (vms_stats_desc(st, i)->type == VMS_STAT_CUMULATIVE)
			assert_true(vms_stats_value(st, i) >= before[i]);

	/* Nothing runs between these two reads: the same values. */
	assert_int_equal(vms_stats_read(st), 0);
	assert_int_equal(vms_stats_value_by_name(st, "exits", &exits2), 0);
	assert_int_equal(exits2, exits1);
	free(before);
	vms_stats_free(st);
}

/* Several stats fds for one vCPU are independent files with one schema. */
static void test_two_fds(void **state)
{
	struct vms_stats *a = open_stats(vcpu_fd), *b = open_stats(vcpu_fd);

	assert_string_equal(vms_stats_id(a), vms_stats_id(b));
	assert_int_equal(vms_stats_count(a), vms_stats_count(b));
	for (size_t i = 0; i < vms_stats_count(a); i++) {
		assert_string_equal(vms_stats_desc(a, i)->name, vms_stats_desc(b, i)->name);
		assert_int_equal(vms_stats_desc(a, i)->offset, vms_stats_desc(b, i)->offset);
	}
	vms_stats_free(a);
	vms_stats_free(b);
}

/* The VM's debugfs folder, when debugfs is mounted: per-VM exits = the one vCPU's exits. */
static void test_debugfs_vm(void **state)
{
	struct vms_debugfs_entry *e = NULL;
	struct vms_stats *st;
	uint64_t exits = 0;
	char dir[128];
	struct stat sb;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "/sys/kernel/debug/kvm/%d-%d", (int)getpid(), vm_fd);
	if (stat(dir, &sb) < 0) {
		print_message("%s: %s (debugfs not mounted?), skipping\n", dir, strerror(errno));
		skip();
	}
	run_to_hlt();
	st = open_stats(vcpu_fd);
	assert_int_equal(vms_stats_value_by_name(st, "exits", &exits), 0);
	assert_int_equal(vms_debugfs_read_vm(dir, &e, &n), 0);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(strcmp(e[i - 1].name, e[i].name) < 0);
		if (!strcmp(e[i].name, "exits")) {
			/* Under lockdown the counters cannot be read: an error, never 0. */
			if (e[i].err)
				assert_int_equal(e[i].err, -EPERM);
			else
				assert_int_equal(e[i].value, exits);
		}
		if (!strcmp(e[i].name, "vcpu0/pid") && !e[i].err)
			assert_int_equal(e[i].value, (uint64_t)gettid());
		if (e[i].err)
			assert_int_equal(e[i].value, 0);
	}
	free(e);
	vms_stats_free(st);
}

static int setup_vm(void **state)
{
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		fprintf(stderr, "KVM_CREATE_VM: %s\n", strerror(errno));
		return -1;
	}
	/* Real mode without unrestricted guest needs a TSS; harmless elsewhere. */
	ioctl(vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	guest_mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (guest_mem == MAP_FAILED)
		return -1;
	memset(guest_mem, 0xf4, 0x1000); /* HLT everywhere: every KVM_RUN stops at one */
	region.memory_size = 0x1000;
	region.userspace_addr = (uintptr_t)guest_mem;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
		return -1;
	}
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0) {
		fprintf(stderr, "KVM_CREATE_VCPU: %s\n", strerror(errno));
		return -1;
	}
	run_size = (size_t)ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		return -1;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -1;
	regs.rip = 0;
	regs.rflags = 2;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -1;
	return 0;
}

static int teardown_vm(void **state)
{
	if (run && run != MAP_FAILED)
		munmap(run, run_size);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	if (guest_mem && guest_mem != MAP_FAILED)
		munmap(guest_mem, 0x1000);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_stats),
		cmocka_unit_test(test_vcpu_stats),
		cmocka_unit_test(test_two_fds),
		cmocka_unit_test(test_debugfs_vm),
	};
	int ret;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("SKIP: cannot open /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		printf("SKIP: this kernel lacks KVM_CAP_BINARY_STATS_FD (Linux 5.14+)\n");
		close(kvm_fd);
		return 77;
	}
	ret = cmocka_run_group_tests(tests, setup_vm, teardown_vm);
	close(kvm_fd);
	return ret;
}
