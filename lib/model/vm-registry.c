// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The host's VM registry: find KVM virtual machines by their "anon_inode:kvm-vm"
 * descriptors in /proc/<pid>/fd, name them from their command line (QEMU's -name, the test
 * VM's --name) or process name, map their vCPU threads to vCPU indexes (debugfs vcpuN/pid,
 * else QEMU-style "CPU N/KVM" thread names) and read each thread's counters from procfs.
 *
 * The roots of procfs and debugfs are options, so the unit tests run this code on a fake
 * tree without root and without a VM.
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmscope-local.h"
#include "vmscope/host.h"

#define DEFAULT_PROC "/proc"
#define DEFAULT_DEBUGFS "/sys/kernel/debug/kvm"

/*
 * Parse /proc/<pid>/task/<tid>/stat: the comm may hold spaces and parentheses, so the
 * fields are counted from the last ')'. Field 3 is the state letter and every later one a
 * decimal number (negative for some, e.g. the priority of a real-time thread); anything
 * else is a parse error, since counting it as fields would shift the ones after it.
 */
static int parse_task_stat(const char *buf, struct vms_host_vcpu *v, long hz)
{
	const char *p = strrchr(buf, ')');
	unsigned long long utime = 0, stime = 0, gtime = 0, cpu = 0;

	if (!p)
		return -VMS_E_PARSE;
	p++;
	for (int field = 3; field <= 43; field++) {
		unsigned long long val;
		bool neg;
		size_t len;
		char *end;

		if (*p != ' ')
			return -VMS_E_PARSE;
		p++;
		len = strcspn(p, " \n");
		if (field == 3) {
			if (len != 1 || !isalpha((unsigned char)*p))
				return -VMS_E_PARSE;
			p += len;
			continue;
		}
		neg = *p == '-';
		if (!isdigit((unsigned char)p[neg]))
			return -VMS_E_PARSE;
		errno = 0;
		val = strtoull(p + neg, &end, 10);
		if (errno || end != p + len)
			return -VMS_E_PARSE;
		if (neg && (field == 14 || field == 15 || field == 39 || field == 43))
			return -VMS_E_PARSE;
		if (field == 14)
			utime = val;
		else if (field == 15)
			stime = val;
		else if (field == 39)
			cpu = val;
		else if (field == 43)
			gtime = val;
		p += len;
	}
	if (cpu > INT_MAX)
		return -VMS_E_PARSE;
	v->user_ns = utime * (1000000000ULL / (unsigned long long)hz);
	v->system_ns = stime * (1000000000ULL / (unsigned long long)hz);
	v->guest_ns = gtime * (1000000000ULL / (unsigned long long)hz);
	v->last_cpu = (int)cpu;
	return 0;
}

/*
 * A task file that is not there: the thread has gone (-ESRCH) when its folder went too,
 * else this kernel lacks the file (-ENOENT, e.g. schedstat without CONFIG_SCHED_INFO).
 */
static int task_file_err(const char *proc_root, int pid, int tid, int err)
{
	char path[512];
	struct stat st;

	if (err != -ENOENT)
		return err;
	snprintf(path, sizeof(path), "%s/%d/task/%d", proc_root, pid, tid);
	return stat(path, &st) < 0 && errno == ENOENT ? -ESRCH : -ENOENT;
}

int vms_host_vcpu_read(const char *proc_root, int pid, struct vms_host_vcpu *v)
{
	char path[512], buf[1024];
	unsigned long long run, wait, slices;
	long hz = sysconf(_SC_CLK_TCK);
	int ret;

	if (!proc_root)
		proc_root = DEFAULT_PROC;
	if (hz <= 0)
		hz = 100;
	snprintf(path, sizeof(path), "%s/%d/task/%d/stat", proc_root, pid, v->tid);
	ret = vms_read_text(path, buf, sizeof(buf));
	if (ret < 0)
		v->stat_err = task_file_err(proc_root, pid, v->tid, ret);
	else
		v->stat_err = parse_task_stat(buf, v, hz);
	snprintf(path, sizeof(path), "%s/%d/task/%d/schedstat", proc_root, pid, v->tid);
	ret = vms_read_text(path, buf, sizeof(buf));
	if (ret < 0)
		v->schedstat_err = task_file_err(proc_root, pid, v->tid, ret);
	else if (sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		v->schedstat_err = -VMS_E_PARSE;
	else {
		v->schedstat_err = 0;
		v->run_ns = run;
		v->wait_ns = wait;
		v->slices = slices;
	}
	return v->stat_err ? v->stat_err : v->schedstat_err;
}

static void set_name(struct vms_host_vm *vm, const char *name, size_t len, const char *source)
{
	if (!len || len >= sizeof(vm->name))
		return;
	memcpy(vm->name, name, len);
	vm->name[len] = '\0';
	vm->name_source = source;
}

/*
 * The VM's name from its command line. vmscope testvm (an argument "testvm" right after
 * one named vmscope): "--name NAME", "--name=NAME", "-n NAME", the value as given, which
 * is also its process name. Any other VMM is taken for QEMU: "-name NAME" or
 * "-name guest=NAME,..." (QEMU also takes "--name").
 */
static void name_from_cmdline(struct vms_host_vm *vm, const char *args, size_t len)
{
	const char *prev = NULL;
	bool testvm = false;

	for (const char *a = args; a < args + len; a += strlen(a) + 1) {
		if (prev && !testvm && !strcmp(a, "testvm")) {
			const char *base = strrchr(prev, '/');

			testvm = !strcmp(base ? base + 1 : prev, "vmscope");
		}
		if (testvm) {
			if (prev && (!strcmp(prev, "--name") || !strcmp(prev, "-n")))
				set_name(vm, a, strlen(a), "vmscope --name");
			else if (!strncmp(a, "--name=", 7))
				set_name(vm, a + 7, strlen(a + 7), "vmscope --name");
		} else if (prev && (!strcmp(prev, "-name") || !strcmp(prev, "--name"))) {
			const char *n = !strncmp(a, "guest=", 6) ? a + 6 : a;

			set_name(vm, n, strcspn(n, ","), "qemu -name");
		}
		prev = a;
	}
}

/* Scan /proc/<pid>/fd: the kvm-vm descriptor (returns its number) and kvm-vcpu ones. */
/* What /proc/<pid>/fd says about a process's KVM descriptors. */
struct kvm_fds {
	int vm_fd;	       /* "anon_inode:kvm-vm", -1 if none: not a VMM */
	unsigned int vcpu_fds; /* "anon_inode:kvm-vcpu:N" */
	int vm_stats_fd;       /* "anon_inode:kvm-vm-stats" */
	struct {
		int vcpu, fd;
	} * vcpu_stats; /* "anon_inode:kvm-vcpu-stats:N" */
	size_t nvcpu_stats;
};

/* Scan /proc/<pid>/fd for the descriptors above. Return: 0, or -1 (no such folder). */
static int scan_fds(const char *proc_root, int pid, struct kvm_fds *k)
{
	char path[512], link[128];
	struct dirent *de;
	DIR *d;

	memset(k, 0, sizeof(*k));
	k->vm_fd = k->vm_stats_fd = -1;
	snprintf(path, sizeof(path), "%s/%d/fd", proc_root, pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		unsigned int idx;
		ssize_t n;
		char end;

		if (!vms_all_digits(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%d/fd/%s", proc_root, pid, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:kvm-vm") && k->vm_fd < 0) {
			k->vm_fd = atoi(de->d_name);
		} else if (!strncmp(link, "anon_inode:kvm-vcpu:", 20)) {
			k->vcpu_fds++;
		} else if (!strcmp(link, "anon_inode:kvm-vm-stats") && k->vm_stats_fd < 0) {
			k->vm_stats_fd = atoi(de->d_name);
		} else if (sscanf(link, "anon_inode:kvm-vcpu-stats:%u%c", &idx, &end) == 1 &&
			   idx <= INT_MAX) {
			void *nv = realloc(k->vcpu_stats,
					   (k->nvcpu_stats + 1) * sizeof(k->vcpu_stats[0]));

			if (!nv)
				continue; /* statistics are optional: go on without this one */
			k->vcpu_stats = nv;
			k->vcpu_stats[k->nvcpu_stats].vcpu = (int)idx;
			k->vcpu_stats[k->nvcpu_stats].fd = atoi(de->d_name);
			k->nvcpu_stats++;
		}
	}
	closedir(d);
	return 0;
}

/* Hand each vCPU its statistics descriptor (the first one the VMM holds for its index). */
static void assign_stats_fds(struct vms_host_vm *vm, const struct kvm_fds *k)
{
	vm->vm_stats_fd = k->vm_stats_fd;
	for (size_t i = 0; i < vm->nvcpus; i++) {
		vm->vcpus[i].stats_fd = -1;
		for (size_t j = 0; j < k->nvcpu_stats && vm->vcpus[i].vcpu >= 0; j++) {
			if (k->vcpu_stats[j].vcpu == vm->vcpus[i].vcpu) {
				vm->vcpus[i].stats_fd = k->vcpu_stats[j].fd;
				break;
			}
		}
	}
}

static int add_vcpu(struct vms_host_vm *vm, int tid, int index)
{
	struct vms_host_vcpu *nv;

	for (size_t i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpus[i].tid == tid) {
			if (index >= 0)
				vm->vcpus[i].vcpu = index;
			return 0;
		}
	}
	nv = realloc(vm->vcpus, (vm->nvcpus + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	vm->vcpus = nv;
	memset(&nv[vm->nvcpus], 0, sizeof(*nv));
	nv[vm->nvcpus].tid = tid;
	nv[vm->nvcpus].vcpu = index;
	nv[vm->nvcpus].last_cpu = -1;
	vm->nvcpus++;
	return 0;
}

/* vCPU threads from debugfs: <root>/<pid>-<fd>/vcpuN/pid. */
static void vcpus_from_debugfs(struct vms_host_vm *vm, const char *debugfs_root)
{
	struct dirent *de;
	DIR *d;

	snprintf(vm->debugfs, sizeof(vm->debugfs), "%s/%d-%d", debugfs_root, vm->pid, vm->vm_fd);
	d = opendir(vm->debugfs);
	if (!d) {
		vm->debugfs_err = -errno;
		if (errno == ENOENT)
			vm->debugfs[0] = '\0';
		return;
	}
	while ((de = readdir(d))) {
		char path[600];
		uint64_t tid;

		if (strncmp(de->d_name, "vcpu", 4) || !vms_all_digits(de->d_name + 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s/pid", vm->debugfs, de->d_name);
		if (!vms_read_u64(path, &tid) && tid > 0)
			add_vcpu(vm, (int)tid, atoi(de->d_name + 4));
	}
	closedir(d);
}

/* The vCPU index of a thread named as QEMU names them, "CPU N/KVM", else -1. */
static int vcpu_index_from_comm(const char *comm)
{
	unsigned long idx;
	char *end;

	if (strncmp(comm, "CPU ", 4) || !isdigit((unsigned char)comm[4]))
		return -1;
	errno = 0;
	idx = strtoul(comm + 4, &end, 10);
	if (errno || idx > INT_MAX || strcmp(end, "/KVM"))
		return -1;
	return (int)idx;
}

static bool vcpu_has_tid(const struct vms_host_vm *vm, int tid)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].tid == tid)
			return true;
	return false;
}

static bool vcpu_has_index(const struct vms_host_vm *vm, int index)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].vcpu == index)
			return true;
	return false;
}

/*
 * vCPU threads from their names: QEMU's (and the test VM's) "CPU N/KVM". They fill in
 * what debugfs did not say (a vCPU that has not run yet has pid 0 there) and never
 * overrule it: a thread debugfs knows keeps its index, and a thread whose name claims an
 * index another thread already has is listed with index -1 (unknown).
 */
static void vcpus_from_comm(struct vms_host_vm *vm, const char *proc_root)
{
	char path[512], comm[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/task", proc_root, vm->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		int idx, tid;

		if (!vms_all_digits(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%s/comm", proc_root, vm->pid, de->d_name);
		if (vms_read_text(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		idx = vcpu_index_from_comm(comm);
		if (idx < 0)
			continue;
		tid = atoi(de->d_name);
		if (!vcpu_has_tid(vm, tid))
			add_vcpu(vm, tid, vcpu_has_index(vm, idx) ? -1 : idx);
	}
	closedir(d);
}

static int vcpu_cmp(const void *a, const void *b)
{
	const struct vms_host_vcpu *x = a, *y = b;
	unsigned int xi = (unsigned int)x->vcpu, yi = (unsigned int)y->vcpu; /* -1 sorts last */

	if (xi != yi)
		return xi < yi ? -1 : 1;
	return x->tid - y->tid;
}

static int read_vm(struct vms_host_vm *vm, const char *proc_root, const char *debugfs_root)
{
	char path[512], buf[4096];
	int ret;

	snprintf(path, sizeof(path), "%s/%d/comm", proc_root, vm->pid);
	ret = vms_read_text(path, vm->comm, sizeof(vm->comm));
	if (ret < 0)
		return ret;
	vm->comm[strcspn(vm->comm, "\n")] = '\0';
	snprintf(vm->name, sizeof(vm->name), "%s", vm->comm);
	vm->name_source = "comm";
	snprintf(path, sizeof(path), "%s/%d/cmdline", proc_root, vm->pid);
	ret = vms_read_text(path, buf, sizeof(buf));
	if (ret > 0)
		name_from_cmdline(vm, buf, (size_t)ret);

	vcpus_from_debugfs(vm, debugfs_root);
	vcpus_from_comm(vm, proc_root);
	for (size_t i = 0; i < vm->nvcpus; i++) {
		struct vms_host_vcpu *v = &vm->vcpus[i];

		snprintf(path, sizeof(path), "%s/%d/task/%d/comm", proc_root, vm->pid, v->tid);
		if (vms_read_text(path, v->comm, sizeof(v->comm)) > 0)
			v->comm[strcspn(v->comm, "\n")] = '\0';
		vms_host_vcpu_read(proc_root, vm->pid, v);
	}
	if (vm->nvcpus)
		qsort(vm->vcpus, vm->nvcpus, sizeof(vm->vcpus[0]), vcpu_cmp);
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	return ((const struct vms_host_vm *)a)->pid - ((const struct vms_host_vm *)b)->pid;
}

int vms_host_vms_list(const struct vms_host_opts *opts, struct vms_host_vm **out, size_t *count)
{
	const char *proc_root = opts && opts->proc_root ? opts->proc_root : DEFAULT_PROC;
	const char *debugfs_root =
		opts && opts->debugfs_root ? opts->debugfs_root : DEFAULT_DEBUGFS;
	struct vms_host_vm *vms = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir(proc_root);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct vms_host_vm vm, *nv;
		struct kvm_fds k;

		if (!vms_all_digits(de->d_name))
			continue;
		if (scan_fds(proc_root, atoi(de->d_name), &k) < 0 || k.vm_fd < 0) {
			free(k.vcpu_stats);
			continue;
		}
		memset(&vm, 0, sizeof(vm));
		vm.pid = atoi(de->d_name);
		vm.vm_fd = k.vm_fd;
		vm.vcpu_fds = k.vcpu_fds;
		if (read_vm(&vm, proc_root, debugfs_root)) {
			free(vm.vcpus); /* the process went away meanwhile */
			free(k.vcpu_stats);
			continue;
		}
		assign_stats_fds(&vm, &k);
		free(k.vcpu_stats);
		nv = realloc(vms, (n + 1) * sizeof(*nv));
		if (!nv) {
			free(vm.vcpus);
			closedir(d);
			vms_host_vms_free(vms, n);
			return -ENOMEM;
		}
		vms = nv;
		vms[n++] = vm;
	}
	closedir(d);
	if (n)
		qsort(vms, n, sizeof(vms[0]), pid_cmp);
	*out = vms;
	*count = n;
	return 0;
}

void vms_host_vms_free(struct vms_host_vm *vms, size_t count)
{
	if (!vms)
		return;
	for (size_t i = 0; i < count; i++)
		free(vms[i].vcpus);
	free(vms);
}
