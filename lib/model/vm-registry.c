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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmscope-local.h"
#include "vmscope/host.h"

#define DEFAULT_PROC "/proc"
#define DEFAULT_DEBUGFS "/sys/kernel/debug/kvm"

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Parse /proc/<pid>/task/<tid>/stat: the comm may hold spaces and parentheses, so the
 * fields are counted from the last ')'. */
static int parse_task_stat(const char *buf, struct vms_host_vcpu *v, long hz)
{
	const char *p = strrchr(buf, ')');
	unsigned long long utime = 0, stime = 0, gtime = 0;
	int field = 3, cpu = -1;

	if (!p)
		return -VMS_E_PARSE;
	p++;
	while (*p && field <= 43) {
		char *end;
		unsigned long long val;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		val = strtoull(p, &end, 10);
		if (end == p) /* the state letter (field 3) */
			end = (char *)p + 1;
		if (field == 14)
			utime = val;
		else if (field == 15)
			stime = val;
		else if (field == 39)
			cpu = (int)val;
		else if (field == 43)
			gtime = val;
		p = end;
		field++;
	}
	if (field <= 43)
		return -VMS_E_PARSE;
	v->user_ns = utime * (1000000000ULL / (unsigned long long)hz);
	v->system_ns = stime * (1000000000ULL / (unsigned long long)hz);
	v->guest_ns = gtime * (1000000000ULL / (unsigned long long)hz);
	v->last_cpu = cpu;
	return 0;
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
	v->stat_err = ret < 0 ? (ret == -ENOENT ? -ESRCH : ret) : parse_task_stat(buf, v, hz);
	snprintf(path, sizeof(path), "%s/%d/task/%d/schedstat", proc_root, pid, v->tid);
	ret = vms_read_text(path, buf, sizeof(buf));
	if (ret < 0)
		v->schedstat_err = ret == -ENOENT ? -ESRCH : ret;
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

/* The VM's name from its command line: QEMU's "-name guest=NAME,..." or "-name NAME",
 * vmscope testvm's "--name NAME" / "-n NAME". */
static void name_from_cmdline(struct vms_host_vm *vm, const char *args, size_t len)
{
	const char *prev = NULL, *is_testvm = NULL;

	for (const char *a = args; a < args + len; a += strlen(a) + 1) {
		if (!strcmp(a, "testvm"))
			is_testvm = a;
		if (prev && (!strcmp(prev, "-name") || !strcmp(prev, "--name"))) {
			const char *n = a;
			size_t nl;

			if (!strncmp(n, "guest=", 6))
				n += 6;
			nl = strcspn(n, ",");
			if (nl && nl < sizeof(vm->name)) {
				memcpy(vm->name, n, nl);
				vm->name[nl] = '\0';
				vm->name_source = !strcmp(prev, "-name") ? "qemu -name" :
								     "vmscope --name";
			}
		} else if (is_testvm && !strncmp(a, "--name=", 7) && strlen(a + 7) &&
			   strlen(a + 7) < sizeof(vm->name)) {
			strcpy(vm->name, a + 7);
			vm->name_source = "vmscope --name";
		} else if (is_testvm && prev && !strcmp(prev, "-n") && strlen(a) < sizeof(vm->name)) {
			strcpy(vm->name, a);
			vm->name_source = "vmscope --name";
		}
		prev = a;
	}
}

/* Scan /proc/<pid>/fd: the kvm-vm descriptor (returns its number) and kvm-vcpu ones. */
static int scan_fds(const char *proc_root, int pid, unsigned int *vcpu_fds)
{
	char path[512], link[128];
	struct dirent *de;
	int vm_fd = -1;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/fd", proc_root, pid);
	d = opendir(path);
	if (!d)
		return -1;
	*vcpu_fds = 0;
	while ((de = readdir(d))) {
		ssize_t n;

		if (!all_digits(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%d/fd/%s", proc_root, pid, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:kvm-vm") && vm_fd < 0)
			vm_fd = atoi(de->d_name);
		else if (!strncmp(link, "anon_inode:kvm-vcpu:", 20))
			(*vcpu_fds)++;
	}
	closedir(d);
	return vm_fd;
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

		if (strncmp(de->d_name, "vcpu", 4) || !all_digits(de->d_name + 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s/pid", vm->debugfs, de->d_name);
		if (!vms_read_u64(path, &tid) && tid > 0)
			add_vcpu(vm, (int)tid, atoi(de->d_name + 4));
	}
	closedir(d);
}

/* vCPU threads from their names: QEMU's (and the test VM's) "CPU N/KVM". */
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
		unsigned int idx;
		char tail[8];

		if (!all_digits(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%s/comm", proc_root, vm->pid, de->d_name);
		if (vms_read_text(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (sscanf(comm, "CPU %u/%7s", &idx, tail) == 2 && !strcmp(tail, "KVM"))
			add_vcpu(vm, atoi(de->d_name), (int)idx);
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
	const char *debugfs_root = opts && opts->debugfs_root ? opts->debugfs_root :
								  DEFAULT_DEBUGFS;
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
		unsigned int vcpu_fds = 0;
		int vm_fd;

		if (!all_digits(de->d_name))
			continue;
		vm_fd = scan_fds(proc_root, atoi(de->d_name), &vcpu_fds);
		if (vm_fd < 0)
			continue;
		memset(&vm, 0, sizeof(vm));
		vm.pid = atoi(de->d_name);
		vm.vm_fd = vm_fd;
		vm.vcpu_fds = vcpu_fds;
		if (read_vm(&vm, proc_root, debugfs_root)) {
			free(vm.vcpus); /* the process went away meanwhile */
			continue;
		}
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
