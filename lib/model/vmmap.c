// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The VM map of a trace file (see vmscope/vmmap.h): built once from the file's vmscope
 * metadata ("vm=PID NAME", "vcpu=TID PID INDEX") or, failing that, its GUEST options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/vmmap.h"

struct map_vm {
	int pid;
	char name[64];
};

struct map_vcpu {
	int tid, vm, vcpu;
};

struct vms_vmmap {
	struct map_vm *vms;
	size_t nvms;
	struct map_vcpu *vcpus;
	size_t nvcpus;
};

static int add_vm(struct vms_vmmap *m, int pid, const char *name)
{
	struct map_vm *nv = realloc(m->vms, (m->nvms + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	m->vms = nv;
	nv[m->nvms].pid = pid;
	snprintf(nv[m->nvms].name, sizeof(nv[m->nvms].name), "%s", name);
	return (int)m->nvms++;
}

static int add_vcpu(struct vms_vmmap *m, int tid, int vm, int vcpu)
{
	struct map_vcpu *nv = realloc(m->vcpus, (m->nvcpus + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	m->vcpus = nv;
	nv[m->nvcpus++] = (struct map_vcpu){ tid, vm, vcpu };
	return 0;
}

int vms_vmmap_from_trace(const struct vms_trace *t, struct vms_vmmap **out)
{
	struct vms_vmmap *m = calloc(1, sizeof(*m));
	const char *v;
	int ret = 0;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	for (v = vms_trace_meta_next(t, "vm", NULL); v && !ret;
	     v = vms_trace_meta_next(t, "vm", v)) {
		int pid, n = 0;

		if (sscanf(v, "%d %n", &pid, &n) >= 1 && n)
			ret = add_vm(m, pid, v + n) < 0 ? -ENOMEM : 0;
	}
	for (v = vms_trace_meta_next(t, "vcpu", NULL); v && !ret;
	     v = vms_trace_meta_next(t, "vcpu", v)) {
		int tid, pid, idx;

		if (sscanf(v, "%d %d %d", &tid, &pid, &idx) != 3)
			continue;
		for (size_t i = 0; i < m->nvms; i++)
			if (m->vms[i].pid == pid)
				ret = add_vcpu(m, tid, (int)i, idx);
	}
	if (!m->nvms && !ret) {
		size_t ng;
		const struct vms_trace_guest *g = vms_trace_guests(t, &ng);

		for (size_t i = 0; i < ng && !ret; i++) {
			int vm = add_vm(m, 0, g[i].name);

			if (vm < 0)
				ret = vm;
			for (uint32_t k = 0; k < g[i].nvcpus && !ret; k++)
				if (g[i].tids[k] > 0)
					ret = add_vcpu(m, g[i].tids[k], vm, (int)k);
		}
	}
	if (ret) {
		vms_vmmap_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void vms_vmmap_free(struct vms_vmmap *m)
{
	if (!m)
		return;
	free(m->vms);
	free(m->vcpus);
	free(m);
}

size_t vms_vmmap_nvms(const struct vms_vmmap *m)
{
	return m->nvms;
}

static const struct map_vcpu *find_tid(const struct vms_vmmap *m, int tid)
{
	for (size_t i = 0; i < m->nvcpus; i++)
		if (m->vcpus[i].tid == tid)
			return &m->vcpus[i];
	return NULL;
}

int vms_vmmap_vm_of_tid(const struct vms_vmmap *m, int tid)
{
	const struct map_vcpu *v = find_tid(m, tid);

	return v ? v->vm : -1;
}

int vms_vmmap_vcpu_of_tid(const struct vms_vmmap *m, int tid)
{
	const struct map_vcpu *v = find_tid(m, tid);

	return v ? v->vcpu : -1;
}

const char *vms_vmmap_vm_name(const struct vms_vmmap *m, int vm)
{
	return vm >= 0 && (size_t)vm < m->nvms ? m->vms[vm].name : "?";
}

int vms_vmmap_vm_pid(const struct vms_vmmap *m, int vm)
{
	return vm >= 0 && (size_t)vm < m->nvms ? m->vms[vm].pid : 0;
}

int vms_vmmap_find(const struct vms_vmmap *m, const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);

	for (size_t i = 0; i < m->nvms; i++)
		if (!strcmp(m->vms[i].name, name) || (!*end && m->vms[i].pid == pid && pid > 0))
			return (int)i;
	return -ENOENT;
}
