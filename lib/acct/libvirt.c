// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvirt's CPU accounting of one domain, through libvirt's public API on a read-only
 * connection: virDomainGetCPUStats (what `virsh cpu-stats` prints, total and per host
 * CPU), virDomainListGetStats with the cpu-total and vcpu groups (`virsh domstats
 * --cpu-total --vcpu`) and virDomainGetVcpus (`virsh vcpuinfo`). Values are kept as libvirt
 * gives them; whatever libvirt does not give keeps its has_* flag false and a note in the
 * message buffer, because vmscope's point is to compare libvirt with its sources and a
 * made-up zero would compare wrongly. libvirt never prints on our behalf: a silent error
 * handler is installed and its errors become negative errno values plus text.
 *
 * It also reads KVM's own statistics of a domain as libvirt passes them on from QEMU's
 * query-stats (`virsh domstats --vm --vcpu`, libvirt 8.9 and later) into the shape that
 * vms_qmp_query_stats() gives (vmscope/vmm-stats.h): libvirt holds the domain's QMP
 * monitor, so for a libvirt domain this is the way to them.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/vmm-stats-local.h"
#include "vmscope-local.h"
#include "vmscope/libvirt.h"

#define DEFAULT_URI "qemu:///system"

void vms_libvirt_dom_release(struct vms_libvirt_dom *d)
{
	if (!d)
		return;
	free(d->percpu_cpu_ns);
	free(d->percpu_vcpu_ns);
	free(d->vcpus);
	d->percpu_cpu_ns = d->percpu_vcpu_ns = NULL;
	d->vcpus = NULL;
	d->ncpus = d->nvcpus = 0;
}

#ifndef VMS_HAVE_LIBVIRT

int vms_libvirt_read(const char *uri, const char *domain, struct vms_libvirt_dom *out)
{
	if (out) {
		memset(out, 0, sizeof(*out));
		out->id = -1;
		snprintf(out->msg, sizeof(out->msg), "vmscope was built without libvirt");
	}
	return -ENOTSUP;
}

int vms_libvirt_find_by_pid(const char *uri, int pid, char *name, size_t len)
{
	vms_err("libvirt: vmscope was built without libvirt");
	return -ENOTSUP;
}

int vms_libvirt_vm_stats(const char *uri, const char *domain, struct vms_vmm_stats **out, char *msg,
			 size_t msglen)
{
	if (out)
		*out = NULL;
	if (msg && msglen)
		snprintf(msg, msglen, "vmscope was built without libvirt");
	return -ENOTSUP;
}

#else /* VMS_HAVE_LIBVIRT */

#include <pthread.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* Largest /proc/PID/cmdline we look at: libvirt's QEMU command lines are a few KiB. */
#define CMDLINE_MAX (256 * 1024)

__attribute__((format(printf, 3, 4))) static void msg_add(char *buf, size_t size, const char *fmt,
							  ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 3 >= size)
		return;
	if (used) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

static void silent_error(void *userdata, virErrorPtr err)
{
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ret;

static void lv_init(void)
{
	/*
	 * Without a handler libvirt prints every error to stderr, also those of
	 * virConnectOpen, which happen before a connection could get its own handler.
	 */
	virSetErrorFunc(NULL, silent_error);
	if (virInitialize() < 0)
		init_ret = -EIO;
}

/* libvirt's last error (of this thread) as a negative errno; its text into buf. */
static int lv_error(char *buf, size_t size, const char *what)
{
	virErrorPtr e = virGetLastError();
	int ret = -EIO;

	if (!e) {
		msg_add(buf, size, "%s failed", what);
		return -EIO;
	}
	switch (e->code) {
	case VIR_ERR_NO_DOMAIN:
		ret = -ENOENT;
		break;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_OPERATION_UNSUPPORTED:
	case VIR_ERR_ARGUMENT_UNSUPPORTED:
		ret = -ENOTSUP;
		break;
	case VIR_ERR_OPERATION_DENIED:
	case VIR_ERR_ACCESS_DENIED:
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_AUTH_UNAVAILABLE:
		ret = -EACCES;
		break;
	case VIR_ERR_NO_MEMORY:
		ret = -ENOMEM;
		break;
	case VIR_ERR_OPERATION_INVALID:
		ret = -EINVAL;
		break;
	case VIR_ERR_SYSTEM_ERROR:
		if (e->int1 > 0 && e->int1 < 4096)
			ret = -e->int1;
		break;
	default:
		break;
	}
	msg_add(buf, size, "%s: %s", what, e->message ? e->message : "unknown libvirt error");
	virResetLastError();
	return ret;
}

static virConnectPtr lv_open(const char *uri, char *buf, size_t size, int *ret)
{
	virConnectPtr conn;
	virErrorPtr e;

	pthread_once(&init_once, lv_init);
	if (init_ret) {
		snprintf(buf, size, "libvirt: virInitialize failed");
		*ret = init_ret;
		return NULL;
	}
	conn = virConnectOpenReadOnly(uri);
	if (conn) {
		virConnSetErrorFunc(conn, NULL, silent_error);
		return conn;
	}
	e = virGetLastError();
	if (e && e->code == VIR_ERR_SYSTEM_ERROR &&
	    (e->int1 == ENOENT || e->int1 == ECONNREFUSED)) {
		/* The daemon's socket is missing or nobody listens on it. */
		snprintf(buf, size, "libvirtd is not running (%s): start it or pass -p PID", uri);
		*ret = -e->int1;
		virResetLastError();
		return NULL;
	}
	buf[0] = '\0';
	*ret = lv_error(buf, size, uri);
	return NULL;
}

/* As virsh: an id, then a UUID, then a name. */
static virDomainPtr lv_lookup(virConnectPtr conn, const char *domain)
{
	virDomainPtr dom = NULL;

	if (vms_all_digits(domain) && strlen(domain) < 10)
		dom = virDomainLookupByID(conn, atoi(domain));
	if (!dom && strlen(domain) == VIR_UUID_STRING_BUFLEN - 1)
		dom = virDomainLookupByUUIDString(conn, domain);
	if (!dom)
		dom = virDomainLookupByName(conn, domain);
	return dom;
}

static uint64_t param_u64(const virTypedParameter *p, bool *ok)
{
	*ok = true;
	switch (p->type) {
	case VIR_TYPED_PARAM_ULLONG:
		return p->value.ul;
	case VIR_TYPED_PARAM_LLONG:
		return (uint64_t)p->value.l;
	case VIR_TYPED_PARAM_UINT:
		return p->value.ui;
	case VIR_TYPED_PARAM_INT:
		return (uint64_t)(int64_t)p->value.i;
	default:
		*ok = false;
		return 0;
	}
}

/*
 * The QEMU process of a running domain. libvirt's public API has no call for it; the
 * daemon writes NAME.pid into its run directory (root only for qemu:///system). A pid
 * file can outlive its process, so the pid counts only if that process's command line
 * carries the domain's -uuid; without a readable pid file the processes are searched.
 */
static bool uri_is_local_qemu(const char *uri)
{
	return !strcmp(uri, "qemu:///system") || !strcmp(uri, "qemu:///session") ||
	       !strncmp(uri, "qemu+unix:///", 13);
}

/* Read /proc/PID/cmdline into buf (NUL separated). Returns its length or -errno. */
static int read_cmdline(int pid, char *buf, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	return vms_read_text(path, buf, size);
}

/* The argument after "-uuid" in a NUL-separated command line, or NULL. */
static const char *cmdline_uuid(const char *buf, int len)
{
	const char *arg = buf, *end = buf + len;

	while (arg < end) {
		size_t n = strnlen(arg, (size_t)(end - arg));

		if (!strcmp(arg, "-uuid") && arg + n + 1 < end)
			return arg + n + 1;
		arg += n + 1;
	}
	return NULL;
}

static bool pid_has_uuid(int pid, const char *uuid, char *buf, size_t size)
{
	int len = read_cmdline(pid, buf, size);
	const char *u;

	if (len <= 0)
		return false;
	u = cmdline_uuid(buf, len);
	return u && !strcasecmp(u, uuid);
}

static int pid_from_file(const char *uri, const char *name)
{
	char path[512], text[32];
	const char *xdg;
	int n;

	if (!strcmp(uri, "qemu:///session")) {
		xdg = getenv("XDG_RUNTIME_DIR");
		if (!xdg)
			return 0;
		n = snprintf(path, sizeof(path), "%s/libvirt/qemu/run/%s.pid", xdg, name);
	} else {
		n = snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", name);
	}
	if (n < 0 || (size_t)n >= sizeof(path) || vms_read_text(path, text, sizeof(text)) <= 0)
		return 0;
	n = atoi(text);
	return n > 0 ? n : 0;
}

static int lv_qemu_pid(const char *uri, const char *name, const char *uuid)
{
	char *buf = malloc(CMDLINE_MAX);
	int pid = 0;
	DIR *dir;
	struct dirent *de;

	if (!buf || !uri_is_local_qemu(uri))
		goto out;
	pid = pid_from_file(uri, name);
	if (pid && pid_has_uuid(pid, uuid, buf, CMDLINE_MAX))
		goto out;
	pid = 0;
	dir = opendir("/proc");
	if (!dir)
		goto out;
	while ((de = readdir(dir))) {
		if (!vms_all_digits(de->d_name))
			continue;
		if (pid_has_uuid(atoi(de->d_name), uuid, buf, CMDLINE_MAX)) {
			pid = atoi(de->d_name);
			break;
		}
	}
	closedir(dir);
out:
	free(buf);
	return pid;
}

/* virsh cpu-stats --total */
static int read_cpu_total(virDomainPtr dom, struct vms_libvirt_dom *d)
{
	virTypedParameterPtr params;
	int n, got, i;

	n = virDomainGetCPUStats(dom, NULL, 0, -1, 1, 0);
	if (n < 0)
		return lv_error(d->msg, sizeof(d->msg), "cpu-stats --total");
	if (n == 0)
		return 0;
	params = calloc((size_t)n, sizeof(*params));
	if (!params)
		return -ENOMEM;
	got = virDomainGetCPUStats(dom, params, (unsigned int)n, -1, 1, 0);
	if (got < 0) {
		free(params);
		return lv_error(d->msg, sizeof(d->msg), "cpu-stats --total");
	}
	for (i = 0; i < got; i++) {
		bool ok;
		uint64_t v = param_u64(&params[i], &ok);

		if (!ok)
			continue;
		if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_CPUTIME)) {
			d->cpu_time_ns = v;
			d->has_cpu_time = true;
		} else if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_USERTIME)) {
			d->user_time_ns = v;
			d->has_user_time = true;
		} else if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_SYSTEMTIME)) {
			d->system_time_ns = v;
			d->has_system_time = true;
		}
	}
	virTypedParamsClear(params, got);
	free(params);
	return 0;
}

/* virsh cpu-stats: per host CPU, in chunks as virsh asks (libvirt caps one call at 128). */
static int read_cpu_percpu(virDomainPtr dom, struct vms_libvirt_dom *d)
{
	virTypedParameterPtr params = NULL;
	int ncpus, nparams, start, chunk = 128, i, j, ret = 0;

	ncpus = virDomainGetCPUStats(dom, NULL, 0, 0, 0, 0);
	if (ncpus < 0)
		goto fail;
	nparams = virDomainGetCPUStats(dom, NULL, 0, 0, 1, 0);
	if (nparams < 0)
		goto fail;
	if (ncpus == 0 || nparams == 0)
		return 0;
	d->percpu_cpu_ns = malloc((size_t)ncpus * sizeof(uint64_t));
	d->percpu_vcpu_ns = malloc((size_t)ncpus * sizeof(uint64_t));
	params = calloc((size_t)nparams * (size_t)chunk, sizeof(*params));
	if (!d->percpu_cpu_ns || !d->percpu_vcpu_ns || !params) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ncpus; i++)
		d->percpu_cpu_ns[i] = d->percpu_vcpu_ns[i] = VMS_LIBVIRT_UNSET;
	for (start = 0; start < ncpus; start += chunk) {
		int count = ncpus - start < chunk ? ncpus - start : chunk;

		if (virDomainGetCPUStats(dom, params, (unsigned int)nparams, start,
					 (unsigned int)count, 0) < 0)
			goto fail;
		for (i = 0; i < count * nparams; i++) {
			bool ok;
			uint64_t v = param_u64(&params[i], &ok);

			j = start + i / nparams;
			/* An unset parameter (type 0): a CPU that is not in the host's map. */
			if (!ok)
				continue;
			if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_CPUTIME))
				d->percpu_cpu_ns[j] = v;
			else if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_VCPUTIME))
				d->percpu_vcpu_ns[j] = v;
		}
		virTypedParamsClear(params, count * nparams);
	}
	d->ncpus = (size_t)ncpus;
	goto out;
fail:
	d->percpu_err = lv_error(d->percpu_msg, sizeof(d->percpu_msg), "per-CPU cpu-stats");
	if (d->percpu_err == -ENOMEM)
		ret = -ENOMEM;
out:
	free(params);
	if (!d->ncpus) {
		free(d->percpu_cpu_ns);
		free(d->percpu_vcpu_ns);
		d->percpu_cpu_ns = d->percpu_vcpu_ns = NULL;
	}
	return ret;
}

static struct vms_libvirt_vcpu *vcpu_get(struct vms_libvirt_dom *d, int index)
{
	struct vms_libvirt_vcpu *v;
	size_t i;

	for (i = 0; i < d->nvcpus; i++)
		if (d->vcpus[i].vcpu == index)
			return &d->vcpus[i];
	v = realloc(d->vcpus, (d->nvcpus + 1) * sizeof(*v));
	if (!v)
		return NULL;
	d->vcpus = v;
	v = &d->vcpus[d->nvcpus++];
	memset(v, 0, sizeof(*v));
	v->vcpu = index;
	v->host_cpu = -1;
	return v;
}

/* One "vcpu.N.field" parameter of domstats. */
static int ds_vcpu_param(struct vms_libvirt_dom *d, const char *name, uint64_t v)
{
	struct vms_libvirt_vcpu *vc;
	char *end;
	unsigned long index;

	if (!strcmp(name, "current")) {
		d->vcpu_current = (int)v;
		return 0;
	}
	if (!strcmp(name, "maximum")) {
		d->vcpu_maximum = (int)v;
		return 0;
	}
	if (!isdigit((unsigned char)*name))
		return 0;
	index = strtoul(name, &end, 10);
	if (*end != '.' || index > 1u << 20)
		return 0;
	end++;
	if (strcmp(end, "state") && strcmp(end, "time") && strcmp(end, "wait") &&
	    strcmp(end, "delay"))
		return 0;
	vc = vcpu_get(d, (int)index);
	if (!vc)
		return -ENOMEM;
	if (!strcmp(end, "state")) {
		vc->state = (int)v;
		vc->has_state = true;
	} else if (!strcmp(end, "time")) {
		vc->time_ns = v;
		vc->has_time = true;
	} else if (!strcmp(end, "wait")) {
		vc->wait_ns = v;
		vc->has_wait = true;
	} else {
		vc->delay_ns = v;
		vc->has_delay = true;
	}
	return 0;
}

/* virsh domstats --cpu-total --vcpu */
static int read_domstats(virDomainPtr dom, struct vms_libvirt_dom *d)
{
	virDomainPtr doms[2] = { dom, NULL };
	virDomainStatsRecordPtr *recs = NULL;
	virDomainStatsRecordPtr r;
	int n, i, ret = 0;

	/* NOWAIT: a probe must not queue behind a long job (migration, dump); the times
	 * read here come from cgroups and /proc and need no job at all. */
	n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_VCPU, &recs,
				  VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
	if (n < 0)
		return lv_error(d->msg, sizeof(d->msg), "domstats");
	if (n < 1) {
		msg_add(d->msg, sizeof(d->msg), "domstats returned no record");
		goto out;
	}
	r = recs[0];
	for (i = 0; i < r->nparams && !ret; i++) {
		const char *f = r->params[i].field;
		bool ok;
		uint64_t v = param_u64(&r->params[i], &ok);

		if (!ok)
			continue;
		if (!strcmp(f, "cpu.time")) {
			d->ds_cpu_time_ns = v;
			d->has_ds_cpu_time = true;
		} else if (!strcmp(f, "cpu.user")) {
			d->ds_cpu_user_ns = v;
			d->has_ds_cpu_user = true;
		} else if (!strcmp(f, "cpu.system")) {
			d->ds_cpu_system_ns = v;
			d->has_ds_cpu_system = true;
		} else if (!strcmp(f, "cpu.haltpoll.success.time")) {
			d->ds_haltpoll_success_ns = v;
			d->has_ds_haltpoll = true;
		} else if (!strcmp(f, "cpu.haltpoll.fail.time")) {
			d->ds_haltpoll_fail_ns = v;
			d->has_ds_haltpoll = true;
		} else if (!strncmp(f, "vcpu.", 5)) {
			ret = ds_vcpu_param(d, f + 5, v);
		}
	}
out:
	virDomainStatsRecordListFree(recs);
	return ret;
}

/* virsh vcpuinfo: the host CPU each vCPU thread last ran on. */
static int read_vcpuinfo(virDomainPtr dom, struct vms_libvirt_dom *d, int maxinfo)
{
	virVcpuInfoPtr info;
	int n, i;

	if (maxinfo <= 0)
		return 0;
	info = calloc((size_t)maxinfo, sizeof(*info));
	if (!info)
		return -ENOMEM;
	n = virDomainGetVcpus(dom, info, maxinfo, NULL, 0);
	if (n < 0) {
		free(info);
		return lv_error(d->msg, sizeof(d->msg), "vcpuinfo");
	}
	for (i = 0; i < n; i++) {
		struct vms_libvirt_vcpu *v = vcpu_get(d, (int)info[i].number);

		if (!v) {
			free(info);
			return -ENOMEM;
		}
		v->host_cpu = info[i].cpu;
		/* domstats reads the same values; fill them only where it gave none. */
		if (!v->has_state) {
			v->state = info[i].state;
			v->has_state = true;
		}
		if (!v->has_time) {
			v->time_ns = info[i].cpuTime;
			v->has_time = true;
		}
	}
	free(info);
	return 0;
}

static int vcpu_cmp(const void *a, const void *b)
{
	const struct vms_libvirt_vcpu *x = a, *y = b;

	return (x->vcpu > y->vcpu) - (x->vcpu < y->vcpu);
}

/* A failure of one source is a note, unless it is ENOMEM. */
static int soft(int ret)
{
	return ret == -ENOMEM ? ret : 0;
}

int vms_libvirt_read(const char *uri, const char *domain, struct vms_libvirt_dom *out)
{
	virConnectPtr conn;
	virDomainPtr dom;
	virDomainInfo info;
	unsigned int id;
	int ret = 0, reason;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->id = -1;
	out->vcpu_current = out->vcpu_maximum = -1;
	if (!domain || !*domain) {
		snprintf(out->msg, sizeof(out->msg), "no domain given");
		return -EINVAL;
	}
	if (!uri)
		uri = DEFAULT_URI;
	conn = lv_open(uri, out->msg, sizeof(out->msg), &ret);
	if (!conn)
		return ret;
	dom = lv_lookup(conn, domain);
	if (!dom) {
		virErrorPtr e = virGetLastError();

		if (!e || e->code == VIR_ERR_NO_DOMAIN) {
			snprintf(out->msg, sizeof(out->msg), "no domain '%s' in %s", domain, uri);
			virResetLastError();
			ret = -ENOENT;
		} else {
			ret = lv_error(out->msg, sizeof(out->msg), domain);
		}
		goto close;
	}
	snprintf(out->name, sizeof(out->name), "%s", virDomainGetName(dom));
	if (virDomainGetUUIDString(dom, out->uuid) < 0 ||
	    virDomainGetState(dom, &out->state, &reason, 0) < 0) {
		ret = lv_error(out->msg, sizeof(out->msg), out->name);
		goto free;
	}
	id = virDomainGetID(dom);
	out->id = id == (unsigned int)-1 ? -1 : (int)id;
	if (out->id < 0) {
		msg_add(out->msg, sizeof(out->msg), "domain %s is not running", out->name);
		goto free;
	}
	out->pid = lv_qemu_pid(uri, out->name, out->uuid);
	if (!out->pid)
		msg_add(out->msg, sizeof(out->msg), "QEMU pid unknown (no pid file, no process)");

	if ((ret = soft(read_cpu_total(dom, out))))
		goto free;
	if ((ret = read_cpu_percpu(dom, out)))
		goto free;
	if ((ret = soft(read_domstats(dom, out))))
		goto free;
	if (virDomainGetInfo(dom, &info) < 0)
		ret = soft(lv_error(out->msg, sizeof(out->msg), "dominfo"));
	else
		ret = soft(read_vcpuinfo(dom, out, info.nrVirtCpu));
	if (ret)
		goto free;
	if (out->nvcpus)
		qsort(out->vcpus, out->nvcpus, sizeof(*out->vcpus), vcpu_cmp);
free:
	virDomainFree(dom);
close:
	virConnectClose(conn);
	if (ret)
		vms_libvirt_dom_release(out);
	return ret;
}

int vms_libvirt_find_by_pid(const char *uri, int pid, char *name, size_t len)
{
	char msg[256] = "";
	virConnectPtr conn;
	virDomainPtr *doms = NULL, dom;
	char *buf;
	const char *u = NULL;
	int n, i, ret = -ENOENT, clen;

	if (pid <= 0 || !name || !len)
		return -EINVAL;
	if (!uri)
		uri = DEFAULT_URI;
	buf = malloc(CMDLINE_MAX);
	if (!buf)
		return -ENOMEM;
	clen = read_cmdline(pid, buf, CMDLINE_MAX);
	if (clen == -ENOENT || clen == -ESRCH) {
		vms_err("libvirt: no process %d", pid);
		free(buf);
		return -ESRCH;
	}
	if (clen > 0)
		u = cmdline_uuid(buf, clen);
	conn = lv_open(uri, msg, sizeof(msg), &ret);
	if (!conn)
		goto out;
	ret = -ENOENT;
	if (u) {
		/* Fast path: the process names its domain by -uuid. */
		dom = virDomainLookupByUUIDString(conn, u);
		if (dom) {
			if (virDomainIsActive(dom) == 1 &&
			    lv_qemu_pid(uri, virDomainGetName(dom), u) == pid) {
				snprintf(name, len, "%s", virDomainGetName(dom));
				ret = 0;
			}
			virDomainFree(dom);
			goto close;
		}
		virResetLastError();
	}
	/* The command line is not readable (hidepid): ask every running domain. */
	n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		ret = lv_error(msg, sizeof(msg), "list domains");
		goto close;
	}
	for (i = 0; i < n; i++) {
		if (ret && pid_from_file(uri, virDomainGetName(doms[i])) == pid) {
			snprintf(name, len, "%s", virDomainGetName(doms[i]));
			ret = 0;
		}
		virDomainFree(doms[i]);
	}
	free(doms);
close:
	virConnectClose(conn);
	if (ret == -ENOENT && !msg[0])
		snprintf(msg, sizeof(msg), "process %d is no running domain of %s", pid, uri);
out:
	if (ret)
		vms_err("libvirt: %s", msg);
	free(buf);
	return ret;
}

/* ---- KVM's statistics: virsh domstats --vm --vcpu ---- */

#if LIBVIR_CHECK_VERSION(8, 9, 0)

/* The host threads of a QEMU's vCPUs: "CPU N/KVM" (debug-threads=on), into s->vcpus. */
static void vcpu_tids(int pid, struct vms_vmm_stats *s)
{
	char path[320], comm[32];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		char *end;
		unsigned long n;

		if (!vms_all_digits(de->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", pid, de->d_name);
		if (vms_read_text(path, comm, sizeof(comm)) <= 0 || strncmp(comm, "CPU ", 4))
			continue;
		n = strtoul(comm + 4, &end, 10);
		if (end == comm + 4 || strncmp(end, "/KVM", 4))
			continue;
		for (size_t i = 0; i < s->nvcpus; i++)
			if (s->vcpus[i].vcpu >= 0 && (unsigned long)s->vcpus[i].vcpu == n)
				s->vcpus[i].tid = atoi(de->d_name);
	}
	if (dir)
		closedir(dir);
}

/*
 * "NAME.TYPE" of a VM statistic (after "vm." or "vcpu.N."): the statistic, with its name
 * (a pointer into a copy in @buf). false when the field is not one (vcpu.N.time).
 */
static bool vm_stat_field(const char *f, const virTypedParameter *p, struct vms_vmm_stat *st,
			  char *buf, size_t size)
{
	static const struct {
		const char *suffix;
		enum vms_stat_type type;
	} types[] = { { ".cur", VMS_STAT_INSTANT },
		      { ".sum", VMS_STAT_CUMULATIVE },
		      { ".max", VMS_STAT_PEAK } };
	size_t len = strlen(f), i;
	bool ok;

	for (i = 0; i < VMS_ARRAY_SIZE(types); i++)
		if (len > 4 && !strcmp(f + len - 4, types[i].suffix))
			break;
	if (i == VMS_ARRAY_SIZE(types) || len - 4 >= size)
		return false;
	memset(st, 0, sizeof(*st));
	memcpy(buf, f, len - 4);
	buf[len - 4] = '\0';
	st->name = buf;
	st->type = types[i].type;
	st->base = 10;
	if (p->type == VIR_TYPED_PARAM_BOOLEAN) {
		st->value = p->value.b ? 1 : 0;
		st->has_unit = true;
		st->unit = VMS_UNIT_BOOLEAN;
		return true;
	}
	st->value = param_u64(p, &ok);
	/* libvirt passes no units on, but KVM names each time by its unit (halt_wait_ns,
	 * the only suffix it uses, with unit seconds and exponent -9 in its descriptors). */
	if (len - 4 > 3 && !strcmp(buf + len - 4 - 3, "_ns")) {
		st->has_unit = true;
		st->unit = VMS_UNIT_SECONDS;
		st->exponent = -9;
	}
	return ok;
}

/* One domstats field into @s: vm.NAME.TYPE, vcpu.N.NAME.TYPE, or vcpu.N.* (the vCPU). */
static int vm_stats_param(struct vms_vmm_stats *s, const virTypedParameter *p, bool *any)
{
	const char *f = p->field;
	struct vms_vmm_stat st;
	char name[VIR_TYPED_PARAM_FIELD_LENGTH];

	if (!strncmp(f, "vm.", 3)) {
		if (!vm_stat_field(f + 3, p, &st, name, sizeof(name)))
			return 0;
		*any = true;
		return vmm_stats_add(&s->vm, &s->nvm, &st);
	}
	if (!strncmp(f, "vcpu.", 5) && isdigit((unsigned char)f[5])) {
		struct vms_vmm_vcpu_stats *v;
		char *end;
		unsigned long n = strtoul(f + 5, &end, 10);

		if (*end != '.' || n > 1u << 20)
			return 0;
		v = vmm_stats_vcpu(s, (int)n);
		if (!v)
			return -ENOMEM;
		/* vcpu.N.state, .time, .wait, .delay, .halted are libvirt's, not KVM's. */
		if (!strchr(end + 1, '.') || !vm_stat_field(end + 1, p, &st, name, sizeof(name)))
			return 0;
		*any = true;
		return vmm_stats_add(&v->stats, &v->nstats, &st);
	}
	return 0;
}

int vms_libvirt_vm_stats(const char *uri, const char *domain, struct vms_vmm_stats **out, char *msg,
			 size_t msglen)
{
	char buf[256] = "", uuid[VIR_UUID_STRING_BUFLEN];
	virDomainStatsRecordPtr *recs = NULL;
	virDomainPtr doms[2] = { NULL, NULL };
	struct vms_vmm_stats *s = NULL;
	virConnectPtr conn;
	bool any = false;
	int ret = 0, n, pid;

	if (out)
		*out = NULL;
	if (!out || !domain || !*domain) {
		ret = -EINVAL;
		snprintf(buf, sizeof(buf), "no domain given");
		goto out;
	}
	if (!uri)
		uri = DEFAULT_URI;
	conn = lv_open(uri, buf, sizeof(buf), &ret);
	if (!conn)
		goto out;
	doms[0] = lv_lookup(conn, domain);
	if (!doms[0]) {
		virErrorPtr e = virGetLastError();

		if (!e || e->code == VIR_ERR_NO_DOMAIN) {
			snprintf(buf, sizeof(buf), "no domain '%s' in %s", domain, uri);
			virResetLastError();
			ret = -ENOENT;
		} else {
			ret = lv_error(buf, sizeof(buf), domain);
		}
		goto close;
	}
	if (virDomainIsActive(doms[0]) != 1) {
		snprintf(buf, sizeof(buf), "domain %s is not running", virDomainGetName(doms[0]));
		ret = -ESRCH;
		goto close;
	}
	/* Without NOWAIT: query-stats needs the monitor, which a job (migration) may hold. */
	n = virDomainListGetStats(doms, VIR_DOMAIN_STATS_VM | VIR_DOMAIN_STATS_VCPU, &recs, 0);
	if (n < 0) {
		ret = lv_error(buf, sizeof(buf), "domstats --vm --vcpu");
		goto close;
	}
	s = vmm_stats_new("libvirt");
	if (!s) {
		ret = -ENOMEM;
		goto close;
	}
	for (int i = 0; n > 0 && i < recs[0]->nparams && !ret; i++)
		ret = vm_stats_param(s, &recs[0]->params[i], &any);
	if (ret)
		goto close;
	if (!any) {
		snprintf(buf, sizeof(buf),
			 "libvirt gave no KVM statistics for %s (libvirt before 8.9, QEMU "
			 "before 7.1, or not a KVM domain)",
			 virDomainGetName(doms[0]));
		ret = -EOPNOTSUPP;
		goto close;
	}
	vmm_stats_sort(s);
	if (virDomainGetUUIDString(doms[0], uuid) == 0) {
		pid = lv_qemu_pid(uri, virDomainGetName(doms[0]), uuid);
		if (pid > 0)
			vcpu_tids(pid, s);
	}
	*out = s;
	s = NULL;
close:
	virDomainStatsRecordListFree(recs);
	if (doms[0])
		virDomainFree(doms[0]);
	virConnectClose(conn);
out:
	if (ret == -ENOMEM && !buf[0])
		snprintf(buf, sizeof(buf), "out of memory");
	if (ret && msg && msglen)
		snprintf(msg, msglen, "%s", buf);
	vms_vmm_stats_free(s);
	return ret;
}

#else /* libvirt before 8.9: no VIR_DOMAIN_STATS_VM */

int vms_libvirt_vm_stats(const char *uri, const char *domain, struct vms_vmm_stats **out, char *msg,
			 size_t msglen)
{
	if (out)
		*out = NULL;
	if (msg && msglen)
		snprintf(msg, msglen,
			 "vmscope was built with a libvirt before 8.9 (no domstats --vm)");
	return -ENOTSUP;
}

#endif /* LIBVIR_CHECK_VERSION(8, 9, 0) */

#endif /* VMS_HAVE_LIBVIRT */
