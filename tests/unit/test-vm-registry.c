// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the host's VM registry (lib/model/vm-registry.c) and of the KVM flavor probe
 * (lib/model/host-kvm.c), without root and without a VM. Each test lays out a fake procfs,
 * debugfs and /sys/module in a temporary folder: processes with the descriptor symlinks
 * the kernel shows ("anon_inode:kvm-vm", "anon_inode:kvm-vcpu:0", the stats fds that must
 * not count), QEMU's and the test VM's command lines, vCPU threads named "CPU N/KVM",
 * complete 52-field task stat lines whose other fields all differ (a parser that counts
 * one field off reads a wrong value, not a plausible one), schedstat, and the per-VM debugfs
 * folder with vcpuN/pid. Expected values are worked out here from the numbers written,
 * with USER_HZ from sysconf(_SC_CLK_TCK).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit-files.h"
#include "vmscope/host.h"
#include "vmscope/prom.h"
#include "vmscope/sampler.h"

/* ---- the fake tree ---- */

static char root[PATH_MAX]; /* this test's temporary folder */
static char proc[PATH_MAX + 8], debugfs[PATH_MAX + 16], sysmod[PATH_MAX + 16];

static void vpath(char *buf, size_t len, const char *fmt, va_list ap)
{
	int n = snprintf(buf, len, "%s/", root);

	assert_true(n > 0 && (size_t)n < len);
	n = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	assert_true(n >= 0 && (size_t)n < len - strlen(root) - 1);
}

static void mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

__attribute__((format(printf, 1, 2))) static void mk(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vpath(path, sizeof(path), fmt, ap);
	va_end(ap);
	mkdir_p(path);
}

/* Write @len bytes of @data to a file of the tree, creating its folders. */
static void vput(const char *data, size_t len, const char *fmt, va_list ap)
{
	char path[PATH_MAX];
	int fd;

	vpath(path, sizeof(path), fmt, ap);
	*strrchr(path, '/') = '\0';
	mkdir_p(path);
	path[strlen(path)] = '/';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

__attribute__((format(printf, 3, 4))) static void put(const char *data, size_t len, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput(data, len, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void put_str(const char *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput(s, strlen(s), fmt, ap);
	va_end(ap);
}

/* Remove a file or a whole folder of the tree. */
__attribute__((format(printf, 1, 2))) static void rm(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	struct stat sb;

	va_start(ap, fmt);
	vpath(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (lstat(path, &sb) < 0 && errno == ENOENT)
		return;
	assert_int_equal(unit_rm_tree(path), 0);
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/vmscope-registry-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		return -1;
	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(debugfs, sizeof(debugfs), "%s/debugfs/kvm", root);
	snprintf(sysmod, sizeof(sysmod), "%s/sys/module", root);
	mkdir_p(proc);
	return 0;
}

static int teardown(void **state)
{
	return unit_rm_tree(root);
}

/* ---- processes, threads, descriptors ---- */

static long user_hz(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	assert_true(hz > 0);
	return hz;
}

/* Expected ns of a tick count. */
static uint64_t ticks_ns(unsigned long long ticks)
{
	return ticks * 1000000000ULL / (unsigned long long)user_hz();
}

struct tstat {
	unsigned long long utime, stime, gtime;
	int cpu;
};

/*
 * A task stat line as Linux 6.x writes it: 52 fields. The four the registry reads come
 * from @t; every other field k holds 100000 + k (the priority, field 18, is negative as
 * for a real-time thread), so a parser that miscounts reads an implausible value.
 */
static void stat_line(char *buf, size_t len, int tid, const char *comm, const struct tstat *t)
{
	size_t n = (size_t)snprintf(buf, len, "%d (%s) S", tid, comm);

	for (int k = 4; k <= 52; k++) {
		long long v = 100000 + k;

		if (k == 14)
			v = (long long)t->utime;
		else if (k == 15)
			v = (long long)t->stime;
		else if (k == 18)
			v = -3;
		else if (k == 39)
			v = t->cpu;
		else if (k == 43)
			v = (long long)t->gtime;
		n += (size_t)snprintf(buf + n, len - n, " %lld", v);
		assert_true(n < len);
	}
	snprintf(buf + n, len - n, "\n");
}

/* A thread with its comm, stat and schedstat files. */
static void task(int pid, int tid, const char *comm, const struct tstat *t, unsigned long long run,
		 unsigned long long wait, unsigned long long slices)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s\n", comm);
	put_str(buf, "proc/%d/task/%d/comm", pid, tid);
	stat_line(buf, sizeof(buf), tid, comm, t);
	put_str(buf, "proc/%d/task/%d/stat", pid, tid);
	snprintf(buf, sizeof(buf), "%llu %llu %llu\n", run, wait, slices);
	put_str(buf, "proc/%d/task/%d/schedstat", pid, tid);
}

/*
 * A process: comm, cmdline, an empty fd folder and its main thread. @args are the
 * arguments separated by spaces; cmdline holds each one NUL-terminated, as the kernel
 * shows them.
 */
static void process(int pid, const char *comm, const char *args)
{
	static const struct tstat zero = { 0, 0, 0, 0 };
	char buf[512];
	size_t len = strlen(args);

	snprintf(buf, sizeof(buf), "%s\n", comm);
	put_str(buf, "proc/%d/comm", pid);
	assert_true(len + 1 < sizeof(buf));
	memcpy(buf, args, len + 1);
	for (size_t i = 0; i < len; i++)
		if (buf[i] == ' ')
			buf[i] = '\0';
	put(buf, len ? len + 1 : 0, "proc/%d/cmdline", pid);
	mk("proc/%d/fd", pid);
	task(pid, pid, comm, &zero, 0, 0, 0);
}

__attribute__((format(printf, 3, 4))) static void fd_link(int pid, int fd, const char *fmt, ...)
{
	char target[256], path[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(target, sizeof(target), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%d/fd/%d", proc, pid, fd);
	assert_int_equal(symlink(target, path), 0);
}

/* The descriptors of a VMM: stdio, /dev/kvm, the VM, its vCPUs and the stats fds KVM
 * gives for each (which are not vCPUs), an eventfd. */
static void vmm_fds(int pid, int vm_fd, int nvcpus)
{
	fd_link(pid, 0, "/dev/null");
	fd_link(pid, 1, "pipe:[4711]");
	fd_link(pid, 2, "/dev/pts/0");
	fd_link(pid, 3, "/dev/kvm");
	fd_link(pid, vm_fd, "anon_inode:kvm-vm");
	fd_link(pid, vm_fd + 1, "anon_inode:kvm-vm-stats");
	fd_link(pid, vm_fd + 2, "anon_inode:[eventfd]");
	for (int i = 0; i < nvcpus; i++) {
		fd_link(pid, vm_fd + 10 + 2 * i, "anon_inode:kvm-vcpu:%d", i);
		fd_link(pid, vm_fd + 11 + 2 * i, "anon_inode:kvm-vcpu-stats:%d", i);
	}
}

/* debugfs <pid>-<fd>/vcpu<idx>/pid holding @tid, next to a counter file of the VM. */
static void debugfs_vcpu(int pid, int vm_fd, int idx, const char *tid)
{
	put_str("12345\n", "debugfs/kvm/%d-%d/exits", pid, vm_fd);
	put_str(tid, "debugfs/kvm/%d-%d/vcpu%d/pid", pid, vm_fd, idx);
	put_str("0\n", "debugfs/kvm/%d-%d/vcpu%d/tsc-offset", pid, vm_fd, idx);
}

static struct vms_host_vm *list(size_t *n)
{
	struct vms_host_opts o = { .sz = sizeof(o), .proc_root = proc, .debugfs_root = debugfs };
	struct vms_host_vm *vms = (void *)1;

	assert_int_equal(vms_host_vms_list(&o, &vms, n), 0);
	if (*n)
		assert_non_null(vms);
	else
		assert_null(vms);
	return vms;
}

static const struct vms_host_vm *find_vm(const struct vms_host_vm *vms, size_t n, int pid)
{
	for (size_t i = 0; i < n; i++)
		if (vms[i].pid == pid)
			return &vms[i];
	fail_msg("pid %d is not listed as a VM", pid);
	return NULL;
}

static void assert_vcpu(const struct vms_host_vcpu *v, int idx, int tid, const char *comm)
{
	if (v->vcpu != idx || v->tid != tid || strcmp(v->comm, comm))
		fail_msg("vCPU entry {vcpu %d, tid %d, comm '%s'}, expected {%d, %d, '%s'}",
			 v->vcpu, v->tid, v->comm, idx, tid, comm);
}

/* ---- names ---- */

static void test_qemu_vm(void **state)
{
	static const struct tstat t0 = { 250, 40, 200, 3 }, t1 = { 1234, 56, 1100, 7 };
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	process(4242, "qemu-system-x86",
		"/usr/bin/qemu-system-x86_64 -name guest=web1,debug-threads=on -S -machine "
		"pc-q35-8.2,accel=kvm -m 4096 -smp 2");
	vmm_fds(4242, 12, 2);
	/* vCPU 1 has the lower thread id: the list is sorted by index, not by tid */
	task(4242, 4244, "CPU 1/KVM", &t1, 9000000001ULL, 123456789ULL, 4321);
	task(4242, 4245, "CPU 0/KVM", &t0, 5000000000ULL, 987654321ULL, 1234);
	task(4242, 4243, "call_rcu", &t0, 1, 2, 3);
	task(4242, 4246, "IO mon_iothread", &t0, 1, 2, 3);

	vms = list(&n);
	assert_int_equal(n, 1);
	vm = &vms[0];
	assert_int_equal(vm->pid, 4242);
	assert_int_equal(vm->vm_fd, 12);
	assert_int_equal(vm->vcpu_fds, 2); /* the vcpu-stats fds do not count */
	assert_string_equal(vm->name, "web1");
	assert_string_equal(vm->name_source, "qemu -name");
	assert_string_equal(vm->comm, "qemu-system-x86");
	assert_string_equal(vm->debugfs, ""); /* no debugfs folder for it */
	assert_int_equal(vm->nvcpus, 2);
	assert_vcpu(&vm->vcpus[0], 0, 4245, "CPU 0/KVM");
	assert_vcpu(&vm->vcpus[1], 1, 4244, "CPU 1/KVM");
	/* statistics descriptors as the kernel names them, mapped by vCPU index */
	assert_int_equal(vm->vm_stats_fd, 13);
	assert_int_equal(vm->vcpus[0].stats_fd, 12 + 11);
	assert_int_equal(vm->vcpus[1].stats_fd, 12 + 13);

	assert_int_equal(vm->vcpus[0].stat_err, 0);
	assert_int_equal(vm->vcpus[0].schedstat_err, 0);
	assert_int_equal(vm->vcpus[0].last_cpu, 3);
	assert_int_equal(vm->vcpus[0].user_ns, ticks_ns(250));
	assert_int_equal(vm->vcpus[0].system_ns, ticks_ns(40));
	assert_int_equal(vm->vcpus[0].guest_ns, ticks_ns(200));
	assert_int_equal(vm->vcpus[0].run_ns, 5000000000ULL);
	assert_int_equal(vm->vcpus[0].wait_ns, 987654321ULL);
	assert_int_equal(vm->vcpus[0].slices, 1234);
	assert_int_equal(vm->vcpus[1].last_cpu, 7);
	assert_int_equal(vm->vcpus[1].user_ns, ticks_ns(1234));
	assert_int_equal(vm->vcpus[1].system_ns, ticks_ns(56));
	assert_int_equal(vm->vcpus[1].guest_ns, ticks_ns(1100));
	assert_int_equal(vm->vcpus[1].run_ns, 9000000001ULL);
	assert_int_equal(vm->vcpus[1].wait_ns, 123456789ULL);
	assert_int_equal(vm->vcpus[1].slices, 4321);
	vms_host_vms_free(vms, n);
}

static void expect_name(int pid, const char *comm, const char *args, const char *name,
			const char *source)
{
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	process(pid, comm, args);
	vmm_fds(pid, 9, 1);
	vms = list(&n);
	vm = find_vm(vms, n, pid);
	if (strcmp(vm->name, name) || strcmp(vm->name_source, source))
		fail_msg("pid %d: name '%s' from %s, expected '%s' from %s", pid, vm->name,
			 vm->name_source, name, source);
	vms_host_vms_free(vms, n);
}

static void test_names(void **state)
{
	/* QEMU: -name NAME, -name guest=NAME, options after a comma, and --name (QEMU takes
	 * every option with two dashes too). */
	expect_name(100, "qemu-system-x86", "qemu-system-x86_64 -name db -m 1G", "db",
		    "qemu -name");
	expect_name(101, "qemu-system-x86", "qemu-system-x86_64 -name guest=web2 -enable-kvm",
		    "web2", "qemu -name");
	expect_name(102, "qemu-kvm", "/usr/libexec/qemu-kvm -name cache,process=qemu:cache",
		    "cache", "qemu -name");
	expect_name(103, "qemu-system-x86", "qemu-system-x86_64 --name guest=edge,debug-threads=on",
		    "edge", "qemu -name");
	/* vmscope testvm: --name X, --name=X, -n X; its value is the process name as given */
	expect_name(200, "alpha", "/usr/local/bin/vmscope testvm --vcpus 1 --name alpha", "alpha",
		    "vmscope --name");
	expect_name(201, "beta", "./build/cli/vmscope testvm --name=beta -q", "beta",
		    "vmscope --name");
	expect_name(202, "gamma", "vmscope testvm -n gamma", "gamma", "vmscope --name");
	expect_name(203, "a,b", "vmscope testvm --name a,b", "a,b", "vmscope --name");
	expect_name(204, "guest=x", "vmscope testvm --name guest=x", "guest=x", "vmscope --name");
	/* no name on the command line: the process name */
	expect_name(300, "vmscope-testvm", "vmscope testvm --vcpus 2", "vmscope-testvm", "comm");
	expect_name(301, "firecracker", "firecracker --api-sock /run/fc.sock --id vm7",
		    "firecracker", "comm");
	expect_name(302, "cloud-hyperviso", "", "cloud-hyperviso", "comm");
	/* -n means nothing to other programs; "-name" without a value is no name */
	expect_name(303, "crosvm", "crosvm run -n other", "crosvm", "comm");
	expect_name(304, "qemu-system-x86", "qemu-system-x86_64 -name", "qemu-system-x86", "comm");
}

/* ---- which processes are VMs ---- */

static void test_not_a_vm(void **state)
{
	struct vms_host_vm *vms;
	size_t n;

	/* /dev/kvm open, stats fds and vCPU fds, but no kvm-vm descriptor */
	process(10, "kvm-probe", "kvm-probe");
	fd_link(10, 0, "/dev/null");
	fd_link(10, 3, "/dev/kvm");
	fd_link(10, 4, "anon_inode:kvm-vm-stats");
	fd_link(10, 5, "anon_inode:kvm-vcpu-stats");
	fd_link(10, 6, "anon_inode:kvm-vcpu:0");
	fd_link(10, 7, "/tmp/anon_inode:kvm-vm");
	/* a process without descriptors, one whose fd folder is missing */
	process(11, "bash", "bash");
	put_str("sleep\n", "proc/12/comm");
	/* what /proc also holds */
	mk("proc/sys/kernel");
	put_str("0\n", "proc/uptime");
	{
		char path[PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/self", proc);
		assert_int_equal(symlink("10", path), 0);
	}
	vms = list(&n);
	assert_int_equal(n, 0);
	vms_host_vms_free(vms, n);

	/* the same process with a VM descriptor is one */
	fd_link(10, 8, "anon_inode:kvm-vm");
	vms = list(&n);
	assert_int_equal(n, 1);
	assert_int_equal(vms[0].pid, 10);
	assert_int_equal(vms[0].vm_fd, 8);
	assert_int_equal(vms[0].vcpu_fds, 1);
	assert_int_equal(vms[0].nvcpus, 0);
	vms_host_vms_free(vms, n);
}

/* ---- vCPU threads ---- */

static void test_debugfs_vcpus(void **state)
{
	static const struct tstat t = { 10, 20, 5, 1 };
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	process(700, "qemu-system-x86", "qemu-system-x86_64 -name guest=dbg");
	vmm_fds(700, 9, 5);
	/* debugfs says vCPU 0 is 701 and vCPU 1 is 702; their names say the opposite. The
	 * kernel's word wins. */
	debugfs_vcpu(700, 9, 0, "701\n");
	debugfs_vcpu(700, 9, 1, "702\n");
	task(700, 701, "CPU 1/KVM", &t, 1, 2, 3);
	task(700, 702, "CPU 0/KVM", &t, 1, 2, 3);
	/* a vCPU thread that a VMM named otherwise: only debugfs knows it */
	debugfs_vcpu(700, 9, 2, "703\n");
	task(700, 703, "vcpu-worker", &t, 1, 2, 3);
	/* vCPU 3 has not run yet (pid 0): its name tells */
	debugfs_vcpu(700, 9, 3, "0\n");
	task(700, 704, "CPU 3/KVM", &t, 1, 2, 3);
	/* a pid file that does not parse is no thread */
	debugfs_vcpu(700, 9, 4, "garbage\n");
	/* a thread whose name claims vCPU 0, which debugfs gave to 701: index unknown */
	task(700, 705, "CPU 0/KVM", &t, 1, 2, 3);
	/* folders that are not vCPUs */
	mk("debugfs/kvm/700-9/vcpu");
	mk("debugfs/kvm/700-9/vcpux1");

	vms = list(&n);
	assert_int_equal(n, 1);
	vm = &vms[0];
	{
		char want[PATH_MAX + 32];

		snprintf(want, sizeof(want), "%s/700-9", debugfs);
		assert_string_equal(vm->debugfs, want);
	}
	assert_int_equal(vm->debugfs_err, 0);
	assert_int_equal(vm->vcpu_fds, 5);
	assert_int_equal(vm->nvcpus, 5);
	assert_vcpu(&vm->vcpus[0], 0, 701, "CPU 1/KVM");
	assert_vcpu(&vm->vcpus[1], 1, 702, "CPU 0/KVM");
	assert_vcpu(&vm->vcpus[2], 2, 703, "vcpu-worker");
	assert_vcpu(&vm->vcpus[3], 3, 704, "CPU 3/KVM");
	assert_vcpu(&vm->vcpus[4], -1, 705, "CPU 0/KVM");
	for (size_t i = 0; i < vm->nvcpus; i++) {
		assert_int_equal(vm->vcpus[i].stat_err, 0);
		assert_int_equal(vm->vcpus[i].user_ns, ticks_ns(10));
	}
	vms_host_vms_free(vms, n);
}

static void test_debugfs_unreadable(void **state)
{
	static const struct tstat t = { 1, 2, 0, 0 };
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	/* the folder's place holds a file: it cannot be listed, and the names are used */
	process(900, "vmscope-testvm", "vmscope testvm");
	vmm_fds(900, 5, 1);
	put_str("x", "debugfs/kvm/900-5");
	task(900, 901, "CPU 0/KVM", &t, 1, 2, 3);
	vms = list(&n);
	assert_int_equal(n, 1);
	vm = &vms[0];
	assert_int_equal(vm->debugfs_err, -ENOTDIR);
	assert_non_null(strstr(vm->debugfs, "/900-5"));
	assert_int_equal(vm->nvcpus, 1);
	assert_vcpu(&vm->vcpus[0], 0, 901, "CPU 0/KVM");
	vms_host_vms_free(vms, n);
}

static void test_sorting(void **state)
{
	static const struct tstat t = { 1, 1, 1, 0 };
	static const int pids[] = { 200, 1000, 30, 4000000, 9 };
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	/* VMs by pid as numbers ("1000" < "200" < "30" as strings) */
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		process(pids[i], "vmm", "vmm");
		vmm_fds(pids[i], 7, 0);
	}
	/* vCPUs by index as numbers; thread ids in the opposite order */
	task(30, 40, "CPU 10/KVM", &t, 1, 2, 3);
	task(30, 41, "CPU 2/KVM", &t, 1, 2, 3);
	task(30, 42, "CPU 1/KVM", &t, 1, 2, 3);
	task(30, 43, "CPU 0/KVM", &t, 1, 2, 3);
	/* names that look almost like vCPUs are not */
	task(30, 44, "CPU 3/KVMX", &t, 1, 2, 3);
	task(30, 45, "CPU x/KVM", &t, 1, 2, 3);
	task(30, 46, "CPU 4/TCG", &t, 1, 2, 3);
	task(30, 47, "CPU -5/KVM", &t, 1, 2, 3);
	task(30, 48, "CPU  6/KVM", &t, 1, 2, 3);
	task(30, 49, "CPU 99999999999/KVM", &t, 1, 2, 3);
	task(30, 50, "CPU 7/KVM ", &t, 1, 2, 3);
	/* a second thread that claims vCPU 1: one of the two gets the index, the other is
	 * listed as unknown, after all known ones */
	task(30, 39, "CPU 1/KVM", &t, 1, 2, 3);

	vms = list(&n);
	assert_int_equal(n, 5);
	assert_int_equal(vms[0].pid, 9);
	assert_int_equal(vms[1].pid, 30);
	assert_int_equal(vms[2].pid, 200);
	assert_int_equal(vms[3].pid, 1000);
	assert_int_equal(vms[4].pid, 4000000);
	vm = find_vm(vms, n, 30);
	assert_int_equal(vm->nvcpus, 5);
	assert_int_equal(vm->vcpus[0].vcpu, 0);
	assert_int_equal(vm->vcpus[0].tid, 43);
	assert_int_equal(vm->vcpus[1].vcpu, 1);
	assert_int_equal(vm->vcpus[2].vcpu, 2);
	assert_int_equal(vm->vcpus[2].tid, 41);
	assert_int_equal(vm->vcpus[3].vcpu, 10);
	assert_int_equal(vm->vcpus[3].tid, 40);
	/* tids 39 and 42 both say vCPU 1: one has it, the other is unknown and last */
	assert_int_equal(vm->vcpus[4].vcpu, -1);
	assert_true((vm->vcpus[1].tid == 39 && vm->vcpus[4].tid == 42) ||
		    (vm->vcpus[1].tid == 42 && vm->vcpus[4].tid == 39));
	vms_host_vms_free(vms, n);
}

/* ---- procfs counters ---- */

static void test_stat_odd_comm(void **state)
{
	static const struct tstat t = { 4321, 1234, 4000, 12 };
	struct vms_host_vcpu v;
	char buf[1024];

	/* the comm closes a parenthesis, opens one, and holds spaces and digits */
	memset(&v, 0, sizeof(v));
	v.tid = 51;
	stat_line(buf, sizeof(buf), 51, "a) (1 2 3) S (", &t);
	put_str(buf, "proc/50/task/51/stat");
	put_str("77 88 99\n", "proc/50/task/51/schedstat");
	assert_int_equal(vms_host_vcpu_read(proc, 50, &v), 0);
	assert_int_equal(v.stat_err, 0);
	assert_int_equal(v.schedstat_err, 0);
	assert_int_equal(v.user_ns, ticks_ns(4321));
	assert_int_equal(v.system_ns, ticks_ns(1234));
	assert_int_equal(v.guest_ns, ticks_ns(4000));
	assert_int_equal(v.last_cpu, 12);
	assert_int_equal(v.run_ns, 77);
	assert_int_equal(v.wait_ns, 88);
	assert_int_equal(v.slices, 99);

	/* "(CPU 0/KVM)": QEMU's vCPU thread, listed through the registry */
	process(60, "qemu-system-x86", "qemu-system-x86_64");
	vmm_fds(60, 8, 1);
	task(60, 61, "CPU 0/KVM", &t, 5, 6, 7);
	{
		struct vms_host_vm *vms;
		size_t n;

		vms = list(&n);
		assert_int_equal(n, 1);
		assert_int_equal(vms[0].nvcpus, 1);
		assert_int_equal(vms[0].vcpus[0].user_ns, ticks_ns(4321));
		assert_int_equal(vms[0].vcpus[0].guest_ns, ticks_ns(4000));
		assert_int_equal(vms[0].vcpus[0].last_cpu, 12);
		vms_host_vms_free(vms, n);
	}
}

/* A stat file that does not parse gives -VMS_E_PARSE; the values are not made up. */
static void expect_stat_parse_error(const char *content)
{
	struct vms_host_vcpu v;

	memset(&v, 0, sizeof(v));
	v.tid = 71;
	v.user_ns = v.system_ns = v.guest_ns = 111;
	v.last_cpu = 5;
	put_str(content, "proc/70/task/71/stat");
	put_str("1 2 3\n", "proc/70/task/71/schedstat");
	if (vms_host_vcpu_read(proc, 70, &v) != -VMS_E_PARSE || v.stat_err != -VMS_E_PARSE)
		fail_msg("stat '%s': stat_err %d, expected -VMS_E_PARSE (%d)", content, v.stat_err,
			 -VMS_E_PARSE);
	assert_int_equal(v.schedstat_err, 0);
	assert_int_equal(v.run_ns, 1);
	assert_int_equal(v.user_ns, 111);
	assert_int_equal(v.system_ns, 111);
	assert_int_equal(v.guest_ns, 111);
	assert_int_equal(v.last_cpu, 5);
}

static void test_stat_malformed(void **state)
{
	static const struct tstat t = { 1, 2, 3, 4 };
	char good[1024], bad[1024];
	char *p;

	stat_line(good, sizeof(good), 71, "CPU 0/KVM", &t);
	expect_stat_parse_error("");
	expect_stat_parse_error("\n");
	expect_stat_parse_error("71 CPU 0/KVM S 1 2 3\n"); /* no parentheses */
	/* cut after field 42 (one short of guest_time): from the space before field 3, 40
	 * more spaces lead to the one before field 43 */
	snprintf(bad, sizeof(bad), "%s", good);
	p = strrchr(bad, ')') + 1;
	for (int field = 3; field < 43; field++)
		p = strchr(p + 1, ' ');
	*p = '\0';
	expect_stat_parse_error(bad);
	/* a letter inside utime (field 14) */
	snprintf(bad, sizeof(bad), "71 (CPU 0/KVM) S");
	for (int k = 4; k <= 52; k++)
		snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), k == 14 ? " 12x" : " %d", k);
	expect_stat_parse_error(bad);
	/* a negative utime */
	snprintf(bad, sizeof(bad), "71 (CPU 0/KVM) S");
	for (int k = 4; k <= 52; k++)
		snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), k == 14 ? " -5" : " %d", k);
	expect_stat_parse_error(bad);
	/* a number too large for 64 bits */
	snprintf(bad, sizeof(bad), "71 (CPU 0/KVM) S");
	for (int k = 4; k <= 52; k++)
		snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
			 k == 15 ? " 18446744073709551616" : " %d", k);
	expect_stat_parse_error(bad);
	/* a word where the cpu (field 39) belongs */
	snprintf(bad, sizeof(bad), "71 (CPU 0/KVM) S");
	for (int k = 4; k <= 52; k++)
		snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), k == 39 ? " cpu" : " %d", k);
	expect_stat_parse_error(bad);

	/* and the good line parses, also cut after field 43 (as old kernels wrote it) */
	for (int cut = 0; cut < 2; cut++) {
		struct vms_host_vcpu v;

		snprintf(bad, sizeof(bad), "%s", good);
		if (cut) {
			p = strrchr(bad, ')') + 1;
			for (int field = 3; field < 44; field++)
				p = strchr(p + 1, ' ');
			strcpy(p, "\n");
		}
		memset(&v, 0, sizeof(v));
		v.tid = 71;
		put_str(bad, "proc/70/task/71/stat");
		assert_int_equal(vms_host_vcpu_read(proc, 70, &v), 0);
		assert_int_equal(v.user_ns, ticks_ns(1));
		assert_int_equal(v.system_ns, ticks_ns(2));
		assert_int_equal(v.guest_ns, ticks_ns(3));
		assert_int_equal(v.last_cpu, 4);
	}
}

static void test_schedstat(void **state)
{
	static const struct tstat t = { 9, 8, 7, 6 };
	struct vms_host_vcpu v;
	char buf[1024];

	memset(&v, 0, sizeof(v));
	v.tid = 81;
	stat_line(buf, sizeof(buf), 81, "CPU 0/KVM", &t);
	put_str(buf, "proc/80/task/81/stat");

	/* large values, no trailing newline */
	put_str("18446744073709551615 12345678901234 42", "proc/80/task/81/schedstat");
	assert_int_equal(vms_host_vcpu_read(proc, 80, &v), 0);
	assert_int_equal(v.run_ns, UINT64_MAX);
	assert_int_equal(v.wait_ns, 12345678901234ULL);
	assert_int_equal(v.slices, 42);

	/* two numbers of three, words */
	put_str("1 2\n", "proc/80/task/81/schedstat");
	assert_int_equal(vms_host_vcpu_read(proc, 80, &v), -VMS_E_PARSE);
	assert_int_equal(v.schedstat_err, -VMS_E_PARSE);
	assert_int_equal(v.stat_err, 0);
	put_str("run wait slices\n", "proc/80/task/81/schedstat");
	assert_int_equal(vms_host_vcpu_read(proc, 80, &v), -VMS_E_PARSE);

	/* missing (a kernel without schedstat) while the thread lives: an error, but not
	 * "the thread is gone" */
	rm("proc/80/task/81/schedstat");
	v.run_ns = 5;
	assert_int_equal(vms_host_vcpu_read(proc, 80, &v), -ENOENT);
	assert_int_equal(v.schedstat_err, -ENOENT);
	assert_int_equal(v.stat_err, 0);
	assert_int_equal(v.user_ns, ticks_ns(9));
	assert_int_equal(v.last_cpu, 6);
	assert_int_equal(v.run_ns, 5); /* not overwritten */

	/* the same through the registry */
	process(85, "vmm", "vmm");
	vmm_fds(85, 4, 1);
	task(85, 86, "CPU 0/KVM", &t, 1, 2, 3);
	rm("proc/85/task/86/schedstat");
	{
		struct vms_host_vm *vms;
		size_t n;

		vms = list(&n);
		assert_int_equal(n, 1);
		assert_int_equal(vms[0].nvcpus, 1);
		assert_int_equal(vms[0].vcpus[0].stat_err, 0);
		assert_int_equal(vms[0].vcpus[0].schedstat_err, -ENOENT);
		assert_int_equal(vms[0].vcpus[0].run_ns, 0);
		assert_int_equal(vms[0].vcpus[0].user_ns, ticks_ns(9));
		vms_host_vms_free(vms, n);
	}
}

/* ---- things that go away while being read ---- */

static void test_vanished(void **state)
{
	static const struct tstat t = { 3, 3, 3, 3 };
	const struct vms_host_vm *vm;
	struct vms_host_vm *vms;
	size_t n;

	/* debugfs still lists a vCPU thread that has exited */
	process(800, "qemu-system-x86", "qemu-system-x86_64");
	vmm_fds(800, 10, 2);
	debugfs_vcpu(800, 10, 0, "801\n");
	debugfs_vcpu(800, 10, 1, "802\n");
	task(800, 802, "CPU 1/KVM", &t, 1, 2, 3);
	/* a VM process that exited between the fd scan and the read (no comm) */
	mk("proc/810/fd");
	fd_link(810, 4, "anon_inode:kvm-vm");

	vms = list(&n);
	assert_int_equal(n, 1);
	vm = &vms[0];
	assert_int_equal(vm->pid, 800);
	assert_int_equal(vm->nvcpus, 2);
	assert_vcpu(&vm->vcpus[0], 0, 801, "");
	assert_int_equal(vm->vcpus[0].stat_err, -ESRCH);
	assert_int_equal(vm->vcpus[0].schedstat_err, -ESRCH);
	assert_int_equal(vm->vcpus[0].last_cpu, -1);
	assert_vcpu(&vm->vcpus[1], 1, 802, "CPU 1/KVM");
	assert_int_equal(vm->vcpus[1].stat_err, 0);

	/* the thread goes between two reads */
	{
		struct vms_host_vcpu v = vm->vcpus[1];

		assert_int_equal(vms_host_vcpu_read(proc, 800, &v), 0);
		rm("proc/800/task/802");
		assert_int_equal(vms_host_vcpu_read(proc, 800, &v), -ESRCH);
		assert_int_equal(v.stat_err, -ESRCH);
		assert_int_equal(v.schedstat_err, -ESRCH);
		/* and the whole process */
		rm("proc/800");
		assert_int_equal(vms_host_vcpu_read(proc, 800, &v), -ESRCH);
	}
	vms_host_vms_free(vms, n);
}

/* ---- the list itself ---- */

static void test_empty_and_errors(void **state)
{
	struct vms_host_opts o = { .sz = sizeof(o) };
	struct vms_host_vm *vms = (void *)1;
	size_t n = 99;
	char missing[PATH_MAX + 16];

	vms_host_vms_free(NULL, 0);
	vms_host_vms_free(NULL, 3);

	vms = list(&n);
	assert_int_equal(n, 0);

	snprintf(missing, sizeof(missing), "%s/no-proc", root);
	o.proc_root = missing;
	vms = (void *)1;
	n = 99;
	assert_int_equal(vms_host_vms_list(&o, &vms, &n), -ENOENT);
	assert_null(vms);
	assert_int_equal(n, 0);
}

/* vms_host_vcpu_read() on the real /proc: this very thread. */
static void test_vcpu_read_self(void **state)
{
	struct vms_host_vcpu v;
	volatile unsigned long spin = 0;

	for (unsigned long i = 0; i < 20000000UL; i++)
		spin += i;
	memset(&v, 0, sizeof(v));
	v.tid = (int)syscall(SYS_gettid);
	v.last_cpu = -1;
	assert_int_equal(vms_host_vcpu_read(NULL, getpid(), &v), 0);
	assert_true(v.last_cpu >= 0 && v.last_cpu < sysconf(_SC_NPROCESSORS_CONF));
	assert_true(v.run_ns > 0);
	assert_true(v.slices > 0);
	assert_int_equal(v.guest_ns, 0);
	assert_int_equal(v.user_ns % ticks_ns(1), 0);

	v.tid = INT_MAX; /* no such thread */
	assert_int_equal(vms_host_vcpu_read(NULL, getpid(), &v), -ESRCH);
}

/* ---- the KVM flavor ---- */

static void test_flavor(void **state)
{
	static const struct {
		const char *modules[3];
		enum vms_kvm_flavor want;
	} cases[] = {
		{ { NULL }, VMS_KVM_NONE },
		{ { "kvm", NULL }, VMS_KVM_UNKNOWN },
		{ { "kvm", "kvm_intel", NULL }, VMS_KVM_VMX },
		{ { "kvm", "kvm_amd", NULL }, VMS_KVM_SVM },
		{ { "kvm", "kvm_pvm", NULL }, VMS_KVM_PVM },
		/* PVM runs on top of a loaded vendor module too; it serves /dev/kvm then */
		{ { "kvm_intel", "kvm_pvm", NULL }, VMS_KVM_PVM },
		{ { "kvm_amd", "kvm_pvm", NULL }, VMS_KVM_PVM },
	};
	char missing[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum vms_kvm_flavor got;

		rm("sys");
		mk("sys/module/tun");
		for (int m = 0; m < 3 && cases[i].modules[m]; m++)
			mk("sys/module/%s/parameters", cases[i].modules[m]);
		got = vms_host_kvm_flavor(sysmod);
		if (got != cases[i].want)
			fail_msg("case %zu (%s %s): %s, expected %s", i,
				 cases[i].modules[0] ? cases[i].modules[0] : "no module",
				 cases[i].modules[1] ? cases[i].modules[1] : "",
				 vms_kvm_flavor_name(got), vms_kvm_flavor_name(cases[i].want));
	}
	/* a module is a folder; a file of that name is not one */
	rm("sys");
	put_str("", "sys/module/kvm_intel");
	assert_int_equal(vms_host_kvm_flavor(sysmod), VMS_KVM_NONE);
	snprintf(missing, sizeof(missing), "%s/nowhere", root);
	assert_int_equal(vms_host_kvm_flavor(missing), VMS_KVM_NONE);

	assert_string_equal(vms_kvm_flavor_name(VMS_KVM_NONE), "none");
	assert_string_equal(vms_kvm_flavor_name(VMS_KVM_VMX), "vmx");
	assert_string_equal(vms_kvm_flavor_name(VMS_KVM_SVM), "svm");
	assert_string_equal(vms_kvm_flavor_name(VMS_KVM_PVM), "pvm");
	assert_string_equal(vms_kvm_flavor_name(VMS_KVM_UNKNOWN), "unknown");
	assert_string_equal(vms_kvm_flavor_name((enum vms_kvm_flavor)1234), "unknown");
}

/* ---- the live sampler over the fake tree ---- */

static int field(const struct vms_sampler *s, const char *key)
{
	int k = vms_sampler_field_index(s, key);

	if (k < 0)
		fail_msg("no field %s", key);
	return k;
}

static void proc_stat(unsigned long long user, unsigned long long guest, unsigned long long steal,
		      unsigned long long idle)
{
	char buf[512];

	/* cpu0: user nice system idle iowait irq softirq steal guest guest_nice */
	snprintf(buf, sizeof(buf),
		 "cpu  1 2 3 4 5 6 7 8 9 10\n"
		 "cpu0 %llu 0 100 %llu 0 10 10 %llu %llu 0\n"
		 "intr 0\n",
		 user, idle, steal, guest);
	put_str(buf, "proc/stat");
}

static void assert_near(double got, double want, const char *what)
{
	if (!(fabs(got - want) <= 1e-9 * fabs(want) + 1e-12))
		fail_msg("%s: %.12g, expected %.12g", what, got, want);
}

static void test_sampler(void **state)
{
	static const struct tstat t0 = { 250, 40, 200, 3 }, t1 = { 1234, 56, 1100, 1 };
	struct vms_sampler_opts o = {
		.sz = sizeof(o), .proc_root = proc, .debugfs_root = debugfs, .no_events = true
	};
	const struct vms_sample *smp;
	const struct vms_sample_vm *v;
	struct vms_sampler *s;
	int run, wait, guest, exits, ev;

	process(4242, "qemu-system-x86", "/usr/bin/qemu-system-x86_64 -name web1");
	vmm_fds(4242, 12, 2);
	task(4242, 4245, "CPU 0/KVM", &t0, 5000000000ULL, 1000000000ULL, 10);
	task(4242, 4246, "CPU 1/KVM", &t1, 7000000000ULL, 3000000000ULL, 20);
	proc_stat(1000, 400, 50, 8000);
	assert_int_equal(vms_sampler_new(&o, &s), 0);
	run = field(s, "cpu.run_s");
	wait = field(s, "cpu.runq_wait_s");
	guest = field(s, "cpu.guest_s");
	exits = field(s, "kvm.exits");
	ev = field(s, "events.kvm_exit");
	assert_int_equal(vms_sampler_field_index(s, "no.such"), -1);
	assert_null(vms_sampler_field(s, vms_sampler_nfields(s)));
	assert_true(vms_sampler_field(s, (size_t)run)->seconds);
	assert_false(vms_sampler_field(s, (size_t)exits)->seconds);
	assert_int_equal(vms_sampler_sample(s)->nvms, 0); /* nothing before the first update */

	/* First sample: values, no rates yet; the sums are the vCPUs' */
	assert_int_equal(vms_sampler_update(s), 0);
	smp = vms_sampler_sample(s);
	assert_int_equal(smp->nvms, 1);
	assert_true(smp->dt == 0);
	v = &smp->vms[0];
	assert_int_equal(v->vm->pid, 4242);
	assert_true(v->new_vm);
	assert_int_equal(v->nvcpus, 2);
	assert_near(v->vcpus[0].value[run], 5.0, "vCPU 0 run");
	assert_near(v->vcpus[1].value[wait], 3.0, "vCPU 1 wait");
	assert_near(v->vcpus[1].value[guest], (double)ticks_ns(1100) / 1e9, "vCPU 1 guest");
	assert_near(v->sum[run], 12.0, "sum of run");
	assert_true(isnan(v->vcpus[0].rate[run]) && isnan(v->sum_rate[run]));
	/* KVM's statistics cannot be taken from a fake process; never a 0 */
	assert_true(isnan(v->vcpus[0].value[exits]) && isnan(v->sum[exits]));
	assert_int_not_equal(v->kvm_err, 0);
	/* events were not asked for */
	assert_true(isnan(v->vcpus[0].value[ev]) && v->events_err == 0);
	/* host CPU shares since boot: user leaves guest out; of 9170 ticks, 600 user (1000 -
	 * 400 guest), 100 system, 20 irq + softirq, 400 guest, 50 steal, 8000 idle */
	assert_int_equal(smp->ncpus, 1);
	assert_true(smp->cpus_since_boot);
	assert_near(smp->cpus[0].share[VMS_CPU_USER], 600.0 / 9170, "user share");
	assert_near(smp->cpus[0].share[VMS_CPU_GUEST], 400.0 / 9170, "guest share");
	assert_near(smp->cpus[0].share[VMS_CPU_STEAL], 50.0 / 9170, "steal share");
	assert_near(smp->cpus[0].share[VMS_CPU_IRQ], 20.0 / 9170, "irq share");

	/* Second sample: vCPU 0 ran 0.5 s more, vCPU 1 waited 0.25 s more; a second VM */
	task(4242, 4245, "CPU 0/KVM", &t0, 5500000000ULL, 1000000000ULL, 11);
	task(4242, 4246, "CPU 1/KVM", &t1, 7000000000ULL, 3250000000ULL, 21);
	process(5151, "vmscope", "vmscope testvm --name t2");
	vmm_fds(5151, 12, 1);
	task(5151, 5152, "CPU 0/KVM", &t0, 1000000000ULL, 0, 1);
	proc_stat(1100, 480, 60, 8010);
	usleep(20000);
	assert_int_equal(vms_sampler_update(s), 0);
	smp = vms_sampler_sample(s);
	assert_true(smp->dt > 0.015);
	assert_int_equal(smp->nvms, 2);
	v = smp->vms[0].vm->pid == 4242 ? &smp->vms[0] : &smp->vms[1];
	assert_false(v->new_vm);
	assert_near(v->vcpus[0].rate[run], 0.5 / smp->dt, "vCPU 0 run rate");
	assert_near(v->vcpus[1].rate[run], 0, "vCPU 1 run rate");
	assert_near(v->vcpus[1].rate[wait], 0.25 / smp->dt, "vCPU 1 wait rate");
	assert_near(v->sum_rate[run], 0.5 / smp->dt, "the VM's run rate");
	v = v == &smp->vms[0] ? &smp->vms[1] : &smp->vms[0];
	assert_int_equal(v->vm->pid, 5151);
	assert_true(v->new_vm);
	assert_true(isnan(v->vcpus[0].rate[run])); /* new: no rate yet */
	assert_false(smp->cpus_since_boot);
	/* over the interval: 120 ticks, user 100 of which guest 80, steal 10, idle 10 */
	assert_near(smp->cpus[0].share[VMS_CPU_USER], 20.0 / 120, "user share over dt");
	assert_near(smp->cpus[0].share[VMS_CPU_GUEST], 80.0 / 120, "guest share over dt");

	/* Third sample: the first VM is gone; counters going backwards give no rate */
	rm("proc/4242");
	task(5151, 5152, "CPU 0/KVM", &t0, 900000000ULL, 0, 1);
	assert_int_equal(vms_sampler_update(s), 0);
	smp = vms_sampler_sample(s);
	assert_int_equal(smp->nvms, 1);
	assert_int_equal(smp->vms[0].vm->pid, 5151);
	assert_true(isnan(smp->vms[0].vcpus[0].rate[run]));
	vms_sampler_free(s);

	/* Only one VM by pid, or by name */
	o.pid = 5151;
	assert_int_equal(vms_sampler_new(&o, &s), 0);
	assert_int_equal(vms_sampler_update(s), 0);
	assert_int_equal(vms_sampler_sample(s)->nvms, 1);
	vms_sampler_free(s);
	o.pid = 0;
	o.guest = "web1";
	assert_int_equal(vms_sampler_new(&o, &s), 0);
	assert_int_equal(vms_sampler_update(s), 0);
	assert_int_equal(vms_sampler_sample(s)->nvms, 0);
	vms_sampler_free(s);
	o.sz = 1;
	assert_int_equal(vms_sampler_new(&o, &s), -EINVAL);
	assert_null(s);
	vms_sampler_free(NULL);
}

/* The exposition of a sample: label values escaped, values in seconds, names in base
 * units. */
static void test_prom(void **state)
{
	static const struct tstat t0 = { 250, 40, 200, 3 };
	struct vms_sampler_opts o = {
		.sz = sizeof(o), .proc_root = proc, .debugfs_root = debugfs, .no_events = true
	};
	struct vms_prom_opts po = { sizeof(po), true, 0.25 };
	struct vms_sampler *s;
	char *buf = NULL, name[160];
	size_t len = 0;
	FILE *f;

	(void)state;
	/* a name with a double quote and a backslash, which the exposition must escape */
	process(4242, "qemu-system-x86", "/usr/bin/qemu-system-x86_64 -name we\"b\\1");
	vmm_fds(4242, 12, 1);
	task(4242, 4245, "CPU 0/KVM", &t0, 123456789012ULL, 1500000000ULL, 10);
	proc_stat(1000, 400, 50, 8000);
	assert_int_equal(vms_sampler_new(&o, &s), 0);
	assert_int_equal(vms_sampler_update(s), 0);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(vms_prom_write(f, s, &po), 0);
	fclose(f);
	assert_non_null(strstr(buf, "vmscope_vms 1\n"));
	assert_non_null(strstr(buf,
			       "vmscope_vcpu_run_seconds_total{vm=\"we\\\"b\\\\1\",pid=\"4242\","
			       "vcpu=\"0\"} 123.456789012\n")); /* every nanosecond kept */
	assert_non_null(strstr(buf, "vmscope_vcpu_runq_wait_seconds_total{vm=\"we\\\"b\\\\1\","
				    "pid=\"4242\",vcpu=\"0\"} 1.5\n"));
	/* user + system, libvirt's vcpu.N.time */
	snprintf(
		name, sizeof(name),
		"libvirt_domain_vcpu_time_seconds_total{domain=\"we\\\"b\\\\1\",vcpu=\"0\"} %.9g\n",
		(double)(ticks_ns(250) + ticks_ns(40)) / 1e9);
	assert_non_null(strstr(buf, name));
	/* host CPU 0: user without its guest time, in seconds */
	snprintf(name, sizeof(name),
		 "vmscope_host_cpu_seconds_total{cpu=\"0\",mode=\"user\"} %.9g\n",
		 600.0 / (double)user_hz());
	assert_non_null(strstr(buf, name));
	assert_non_null(strstr(buf, "vmscope_scrape_duration_seconds 0.250000\n"));
	/* the fake VM's KVM statistics cannot be read: not there, and the source is down */
	assert_null(strstr(buf, "vmscope_kvm_vcpu_"));
	assert_non_null(strstr(buf, "vmscope_source_up{source=\"kvm_stats\"} 0\n"));
	free(buf);
	vms_sampler_free(s);

	/* KVM's names in base units */
	assert_true(vms_prom_metric_name(name, sizeof(name), "vcpu", "halt_wait_ns",
					 VMS_STAT_CUMULATIVE, VMS_UNIT_SECONDS, 10, -9) == 1e-9);
	assert_string_equal(name, "vmscope_kvm_vcpu_halt_wait_seconds_total");
	assert_true(vms_prom_metric_name(name, sizeof(name), "vm", "pages_4k", VMS_STAT_INSTANT,
					 VMS_UNIT_NONE, 10, 0) == 1);
	assert_string_equal(name, "vmscope_kvm_vm_pages_4k");
	assert_true(vms_prom_metric_name(name, sizeof(name), "vcpu", "halt_poll_success_hist",
					 VMS_STAT_PEAK, VMS_UNIT_BYTES, 2, 10) == 1024);
	assert_string_equal(name, "vmscope_kvm_vcpu_halt_poll_success_hist_bytes");
	assert_true(vms_prom_metric_name(name, sizeof(name), "vcpu", "guest.mode", VMS_STAT_INSTANT,
					 VMS_UNIT_BOOLEAN, 10, 0) == 1);
	assert_string_equal(name, "vmscope_kvm_vcpu_guest_mode");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_qemu_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debugfs_vcpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debugfs_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sorting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_odd_comm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schedstat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_errors, setup, teardown),
		cmocka_unit_test(test_vcpu_read_self),
		cmocka_unit_test_setup_teardown(test_flavor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sampler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prom, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
