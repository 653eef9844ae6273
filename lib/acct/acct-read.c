// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Reading every CPU accounting source of one VM into a snapshot: the process's and every
 * thread's /proc stat and schedstat, the VM's cgroup v1 cpuacct and cgroup v2 cpu.stat
 * (the lowest cgroup that holds all its threads, and that cgroup's children, which is
 * where libvirt puts each vCPU), the host CPUs' /proc/stat lines, the KVM binary
 * statistics the VMM keeps open, the kernel's accounting configuration, and libvirt's
 * view when asked. Sources are read one after the other as fast as possible; the time the
 * whole read took is kept, because the checks must allow for the VM running meanwhile.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "acct-local.h"
#include "vmscope/host.h"
#include "vmscope/stats.h"

#define PATH_LEN 512

struct reader {
	struct vms_acct *a;
	const char *proc;
	int pid;
	int err; /* first -ENOMEM */
};

static uint64_t mono_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void put(struct reader *r, uint64_t val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void put(struct reader *r, uint64_t val, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = acct_vsetf(r->a, val, fmt, ap);
	va_end(ap);
	if (err == -ENOMEM && !r->err)
		r->err = err;
}

static void put_str(struct reader *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void put_str(struct reader *r, const char *key, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (vms_acct_set_str(r->a, key, text) == -ENOMEM && !r->err)
		r->err = -ENOMEM;
}

/*
 * Split a /proc stat line after the command's closing parenthesis: f[k] is field k + 3 of
 * proc(5) (f[0] is the state). Returns the number of fields.
 */
static int stat_fields(char *buf, char **f, int max)
{
	char *p = strrchr(buf, ')'), *save = NULL, *tok;
	int n = 0;

	if (!p)
		return 0;
	for (tok = strtok_r(p + 1, " \n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \n", &save))
		f[n++] = tok;
	return n;
}

#define F(k) ((k)-3) /* proc(5) field number → stat_fields() index */

static void read_task(struct reader *r, int tid, int vcpu)
{
	char path[PATH_LEN], buf[1024], *f[64];
	uint64_t run, wait, slices;
	int n;

	snprintf(path, sizeof(path), "%s/%d/task/%d/stat", r->proc, r->pid, tid);
	if (vms_read_text(path, buf, sizeof(buf)) < 0)
		return; /* the thread exited meanwhile */
	n = stat_fields(buf, f, 64);
	if (n <= F(43))
		return;
	{
		char *open = strchr(buf, '('), *close = strrchr(buf, ')');
		char comm[32] = "";

		if (open && close && close > open && close - open - 1 < (ptrdiff_t)sizeof(comm)) {
			memcpy(comm, open + 1, (size_t)(close - open - 1));
			comm[close - open - 1] = '\0';
		}
		snprintf(path, sizeof(path), "task.%d.comm", tid);
		put_str(r, path, "%s", comm);
	}
	put(r, strtoull(f[F(14)], NULL, 10), "task.%d.utime", tid);
	put(r, strtoull(f[F(15)], NULL, 10), "task.%d.stime", tid);
	put(r, strtoull(f[F(39)], NULL, 10), "task.%d.cpu", tid);
	put(r, strtoull(f[F(43)], NULL, 10), "task.%d.gtime", tid);
	if (vcpu >= 0)
		put(r, (uint64_t)vcpu, "task.%d.vcpu", tid);
	snprintf(path, sizeof(path), "%s/%d/task/%d/schedstat", r->proc, r->pid, tid);
	if (vms_read_text(path, buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &run, &wait, &slices) == 3) {
		put(r, run, "task.%d.run_ns", tid);
		put(r, wait, "task.%d.wait_ns", tid);
		put(r, slices, "task.%d.slices", tid);
	}
}

static int vcpu_of(const struct vms_host_vm *vm, int tid)
{
	for (size_t i = 0; vm && i < vm->nvcpus; i++)
		if (vm->vcpus[i].tid == tid)
			return vm->vcpus[i].vcpu;
	return -1;
}

static void read_tasks(struct reader *r, const struct vms_host_vm *vm)
{
	char path[PATH_LEN];
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/task", r->proc, r->pid);
	d = opendir(path);
	if (!d) {
		put_str(r, "err.tasks", "%s: %s", path, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		read_task(r, tid, vcpu_of(vm, tid));
		n++;
	}
	closedir(d);
	put(r, n, "proc.threads");
}

static void read_process(struct reader *r)
{
	char path[PATH_LEN], buf[1024], *f[64];
	int n;

	snprintf(path, sizeof(path), "%s/%d/stat", r->proc, r->pid);
	if (vms_read_text(path, buf, sizeof(buf)) < 0)
		return;
	n = stat_fields(buf, f, 64);
	if (n <= F(44))
		return;
	put(r, strtoull(f[F(14)], NULL, 10), "proc.utime");
	put(r, strtoull(f[F(15)], NULL, 10), "proc.stime");
	put(r, strtoull(f[F(16)], NULL, 10), "proc.cutime");
	put(r, strtoull(f[F(17)], NULL, 10), "proc.cstime");
	put(r, strtoull(f[F(22)], NULL, 10), "meta.starttime");
	put(r, strtoull(f[F(43)], NULL, 10), "proc.gtime");
	put(r, strtoull(f[F(44)], NULL, 10), "proc.cgtime");
}

/* ---- cgroups ---- */

/* The lowest common ancestor of two cgroup paths, in place in @lca. */
static void path_lca(char *lca, const char *p)
{
	size_t i = 0, last = 0;

	while (lca[i] && p[i] && lca[i] == p[i]) {
		if (lca[i] == '/')
			last = i;
		i++;
	}
	if ((!lca[i] && (!p[i] || p[i] == '/')) || (!p[i] && lca[i] == '/'))
		last = i;
	lca[last ? last : 1] = '\0';
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0' || p[n] == ':'))
			return true;
	return false;
}

/* The cgroup path of every thread (v1 cpuacct and v2), reduced to their common ancestor. */
static void vm_cgroups(struct reader *r, char *v1, char *v2, size_t len)
{
	char path[PATH_LEN], buf[4096];
	struct dirent *de;
	bool first1 = true, first2 = true;
	DIR *d;

	v1[0] = v2[0] = '\0';
	snprintf(path, sizeof(path), "%s/%d/task", r->proc, r->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *save = NULL, *line;

		if (atoi(de->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%d/task/%s/cgroup", r->proc, r->pid, de->d_name);
		if (vms_read_text(path, buf, sizeof(buf)) < 0)
			continue;
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			char *target = NULL;
			bool *first = NULL;

			if (!c2)
				continue;
			*c2 = '\0';
			if (!strcmp(line, "0:") && c1 == line + 1) {
				target = v2;
				first = &first2;
			} else if (has_word(c1 + 1, "cpuacct")) {
				target = v1;
				first = &first1;
			}
			if (!target || c2[1] != '/')
				continue;
			if (*first) {
				snprintf(target, len, "%s", c2 + 1);
				*first = false;
			} else {
				path_lca(target, c2 + 1);
			}
		}
	}
	closedir(d);
}

int acct_cgroup_mount(const char *proc, bool v2, char *out, size_t len)
{
	char path[PATH_LEN];
	char line[1024];
	int found = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/self/mountinfo", proc);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (found && fgets(line, sizeof(line), f)) {
		char root[256], mnt[256], fstype[32], opts[512];
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %255s %255s", root, mnt) != 2 ||
		    sscanf(dash + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (strcmp(root, "/"))
			continue;
		if (v2 ? !strcmp(fstype, "cgroup2")
		       : (!strcmp(fstype, "cgroup") && has_word(opts, "cpuacct"))) {
			snprintf(out, len, "%s", mnt);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static bool key_name_ok(const char *s)
{
	if (!*s || strlen(s) > 40)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("_-", *s)))
			return false;
	return true;
}

static void read_percpu(struct reader *r, const char *dir, const char *prefix)
{
	char path[PATH_LEN], buf[4096], *p, *end;
	unsigned int cpu = 0;

	snprintf(path, sizeof(path), "%s/cpuacct.usage_percpu", dir);
	if (vms_read_text(path, buf, sizeof(buf)) < 0)
		return;
	for (p = buf;; p = end, cpu++) {
		uint64_t v = strtoull(p, &end, 10);

		if (end == p)
			break;
		put(r, v, "%s.percpu.%u", prefix, cpu);
	}
}

/* Processes in @dir's cgroup and its children other than the VM's own. */
static unsigned int other_procs(struct reader *r, const char *dir, int depth)
{
	char path[PATH_LEN], buf[8192], *save = NULL, *tok;
	unsigned int n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (vms_read_text(path, buf, sizeof(buf)) >= 0)
		for (tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
			if (atoi(tok) != r->pid)
				n++;
	if (depth >= 2 || !(d = opendir(dir)))
		return n;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			n += other_procs(r, path, depth + 1);
		}
	closedir(d);
	return n;
}

static void read_cg1(struct reader *r, const char *cg)
{
	char mnt[256], dir[PATH_LEN], path[PATH_LEN + 320], buf[512];
	struct dirent *de;
	uint64_t v, user, sys;
	DIR *d;
	int err;

	if (!cg[0]) {
		put_str(r, "err.cg1", "no cgroup v1 cpuacct hierarchy holds the VM's threads");
		return;
	}
	if (!strcmp(cg, "/")) {
		put_str(r, "err.cg1",
			"the VM runs in the root cpuacct cgroup, which counts the whole "
			"host: give the VM a cgroup of its own (libvirt does)");
		return;
	}
	err = acct_cgroup_mount(r->proc, false, mnt, sizeof(mnt));
	if (err) {
		put_str(r, "err.cg1", "the cpuacct hierarchy is not mounted here");
		return;
	}
	snprintf(dir, sizeof(dir), "%s%s", mnt, cg);
	put_str(r, "meta.cg1", "%s", dir);
	snprintf(path, sizeof(path), "%s/cpuacct.usage", dir);
	err = vms_read_u64(path, &v);
	if (err) {
		put_str(r, "err.cg1", "%s: %s", path, vms_strerror(err));
		return;
	}
	put(r, v, "cg1.usage");
	snprintf(path, sizeof(path), "%s/cpuacct.usage_user", dir);
	if (!vms_read_u64(path, &v))
		put(r, v, "cg1.usage_user");
	snprintf(path, sizeof(path), "%s/cpuacct.usage_sys", dir);
	if (!vms_read_u64(path, &v))
		put(r, v, "cg1.usage_sys");
	snprintf(path, sizeof(path), "%s/cpuacct.stat", dir);
	if (vms_read_text(path, buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "user %" SCNu64 " system %" SCNu64, &user, &sys) == 2) {
		put(r, user, "cg1.stat.user");
		put(r, sys, "cg1.stat.system");
	}
	read_percpu(r, dir, "cg1");
	put(r, other_procs(r, dir, 0), "cg1.other_procs");
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char prefix[300];

		if (de->d_type != DT_DIR || !key_name_ok(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/cpuacct.usage", dir, de->d_name);
		if (vms_read_u64(path, &v))
			continue;
		snprintf(prefix, sizeof(prefix), "cg1.child.%s", de->d_name);
		put(r, v, "%s.usage", prefix);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		read_percpu(r, path, prefix);
	}
	closedir(d);
}

static void read_cg2(struct reader *r, const char *cg)
{
	char mnt[256], dir[PATH_LEN], path[PATH_LEN + 64], buf[2048], *save = NULL, *line;
	int err;

	if (!cg[0]) {
		put_str(r, "err.cg2", "the VM's threads are in no cgroup v2 hierarchy");
		return;
	}
	if (!strcmp(cg, "/")) {
		put_str(r, "err.cg2",
			"the VM runs in the root cgroup v2, which counts the whole host");
		return;
	}
	err = acct_cgroup_mount(r->proc, true, mnt, sizeof(mnt));
	if (err) {
		put_str(r, "err.cg2", "cgroup2 is not mounted here");
		return;
	}
	snprintf(dir, sizeof(dir), "%s%s", mnt, cg);
	put_str(r, "meta.cg2", "%s", dir);
	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	err = vms_read_text(path, buf, sizeof(buf));
	if (err < 0) {
		put_str(r, "err.cg2", "%s: %s", path, vms_strerror(err));
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		uint64_t v;

		if (sscanf(line, "%63s %" SCNu64, name, &v) == 2 && key_name_ok(name))
			put(r, v, "cg2.%s", name);
	}
	put(r, other_procs(r, dir, 0), "cg2.other_procs");
}

/* ---- host ---- */

static void read_proc_stat(struct reader *r)
{
	struct vms_host_cpu *cpus;
	size_t n;
	int err = vms_host_cpus_read(r->proc, &cpus, &n);

	if (err) {
		put_str(r, "err.stat", "%s/stat: %s", r->proc, vms_strerror(err));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vms_host_cpu *c = &cpus[i];

		put(r, c->user, "stat.cpu%d.user", c->cpu);
		put(r, c->nice, "stat.cpu%d.nice", c->cpu);
		put(r, c->system, "stat.cpu%d.system", c->cpu);
		put(r, c->idle, "stat.cpu%d.idle", c->cpu);
		put(r, c->iowait, "stat.cpu%d.iowait", c->cpu);
		put(r, c->irq, "stat.cpu%d.irq", c->cpu);
		put(r, c->softirq, "stat.cpu%d.softirq", c->cpu);
		put(r, c->steal, "stat.cpu%d.steal", c->cpu);
		put(r, c->guest, "stat.cpu%d.guest", c->cpu);
		put(r, c->guest_nice, "stat.cpu%d.guest_nice", c->cpu);
	}
	free(cpus);
	put(r, n, "meta.ncpus");
}

/* Kernel configuration that decides how CPU time is accounted. */
static void read_config(struct reader *r, const char *release)
{
	static const struct {
		const char *opt, *key;
	} opts[] = {
		{ "CONFIG_HZ=", "meta.config.hz" },
		{ "CONFIG_TICK_CPU_ACCOUNTING=", "meta.config.tick_cpu_accounting" },
		{ "CONFIG_VIRT_CPU_ACCOUNTING_GEN=", "meta.config.virt_cpu_accounting_gen" },
		{ "CONFIG_IRQ_TIME_ACCOUNTING=", "meta.config.irq_time_accounting" },
		{ "CONFIG_SCHEDSTATS=", "meta.config.schedstats" },
	};
	char path[PATH_LEN], line[256];
	bool seen[VMS_ARRAY_SIZE(opts)] = { false };
	gzFile gz;

	snprintf(path, sizeof(path), "%s/config.gz", r->proc);
	gz = gzopen(path, "rb");
	if (!gz) {
		snprintf(path, sizeof(path), "/boot/config-%s", release);
		gz = gzopen(path, "rb"); /* zlib reads plain text files too */
	}
	if (!gz) {
		put_str(r, "err.config", "neither /proc/config.gz nor /boot/config-%s is readable",
			release);
		return;
	}
	while (gzgets(gz, line, sizeof(line))) {
		for (size_t i = 0; i < VMS_ARRAY_SIZE(opts); i++) {
			size_t n = strlen(opts[i].opt);

			if (strncmp(line, opts[i].opt, n))
				continue;
			seen[i] = true;
			put(r, line[n] == 'y' ? 1 : strtoull(line + n, NULL, 10), "%s",
			    opts[i].key);
		}
	}
	gzclose(gz);
	/* An option that is not set is written as a comment: record it as 0. */
	for (size_t i = 1; i < VMS_ARRAY_SIZE(opts); i++)
		if (!seen[i])
			put(r, 0, "%s", opts[i].key);
}

/* The KVM binary statistics that bear on CPU accounting, per vCPU. */
static void read_kvm(struct reader *r, const struct vms_host_vm *vm)
{
	static const char *const names[] = {
		"halt_poll_success_ns", "halt_poll_fail_ns",   "halt_wait_ns", "halt_exits",
		"halt_successful_poll", "halt_attempted_poll", "exits",	       "halt_wakeup"
	};
	unsigned int opened = 0;
	int last_err = 0;

	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct vms_host_vcpu *v = &vm->vcpus[i];
		struct vms_stats *st;
		int err;

		if (v->stats_fd < 0 || v->vcpu < 0)
			continue;
		err = vms_stats_open_remote(r->pid, v->stats_fd, &st);
		if (err) {
			last_err = err;
			continue;
		}
		for (size_t k = 0; k < VMS_ARRAY_SIZE(names); k++) {
			uint64_t val;

			if (!vms_stats_value_by_name(st, names[k], &val))
				put(r, val, "kvm.vcpu%d.%s", v->vcpu, names[k]);
		}
		vms_stats_free(st);
		opened++;
	}
	if (opened)
		return;
	if (last_err)
		put_str(r, "err.kvm",
			"the VMM's KVM statistics descriptors cannot be duplicated: %s",
			vms_strerror(last_err));
	else
		put_str(r, "err.kvm",
			"the VMM keeps no KVM statistics descriptor open (QEMU opens "
			"them only while answering query-stats)");
}

static void read_meta(struct reader *r, const struct vms_host_vm *vm, struct utsname *u)
{
	char path[PATH_LEN], buf[64];

	put(r, (uint64_t)r->pid, "meta.pid");
	put(r, (uint64_t)sysconf(_SC_CLK_TCK), "meta.user_hz");
	put_str(r, "meta.kernel", "%s", u->release);
	put_str(r, "meta.kvm", "%s", vms_kvm_flavor_name(vms_host_kvm_flavor(NULL)));
	snprintf(path, sizeof(path), "%s/sys/kernel/random/boot_id", r->proc);
	if (vms_read_text(path, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		put_str(r, "meta.boot_id", "%s", buf);
	}
	if (vm) {
		put_str(r, "meta.name", "%s", vm->name);
		put(r, vm->nvcpus, "meta.nvcpus");
	} else {
		put_str(r, "err.vm", "process %d holds no KVM VM: its vCPU threads are unknown",
			r->pid);
	}
}

int vms_acct_read(int pid, const struct vms_acct_opts *opts, struct vms_acct **out)
{
	struct vms_host_opts hopts = { .sz = sizeof(hopts) };
	struct vms_host_vm *vms = NULL, *vm = NULL;
	struct reader r = { .pid = pid };
	char v1[PATH_LEN], v2[PATH_LEN], path[PATH_LEN];
	uint64_t t0, t1;
	struct utsname u;
	size_t nvms = 0;

	*out = NULL;
	r.proc = opts && opts->proc_root ? opts->proc_root : "/proc";
	snprintf(path, sizeof(path), "%s/%d/stat", r.proc, pid);
	if (pid <= 0 || access(path, R_OK))
		return -ESRCH;
	r.a = vms_acct_new();
	if (!r.a)
		return -ENOMEM;
	uname(&u);
	read_config(&r, u.release);
	hopts.proc_root = opts ? opts->proc_root : NULL;
	if (!vms_host_vms_list(&hopts, &vms, &nvms))
		for (size_t i = 0; i < nvms; i++)
			if (vms[i].pid == pid)
				vm = &vms[i];

	/* The counters, as close together in time as possible. */
	t0 = mono_ns(CLOCK_MONOTONIC);
	put(&r, mono_ns(CLOCK_REALTIME), "meta.real_ns");
	read_process(&r);
	read_tasks(&r, vm);
	vm_cgroups(&r, v1, v2, sizeof(v1));
	read_cg1(&r, v1);
	read_cg2(&r, v2);
	read_proc_stat(&r);
	if (vm && !(opts && opts->no_kvm_stats))
		read_kvm(&r, vm);
	if (opts && opts->libvirt_domain)
		acct_read_libvirt(r.a, opts->libvirt_uri, opts->libvirt_domain);
	t1 = mono_ns(CLOCK_MONOTONIC);

	put(&r, t0, "meta.mono_ns");
	put(&r, t1 - t0, "meta.read_ns");
	read_meta(&r, vm, &u);
	vms_host_vms_free(vms, nvms);
	if (r.err) {
		vms_acct_free(r.a);
		return r.err;
	}
	*out = r.a;
	return 0;
}
