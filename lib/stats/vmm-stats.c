// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * KVM statistics as a VMM hands them out (vmscope/vmm-stats.h): the container that QMP's
 * query-stats and libvirt's domstats both fill, so that a caller reads either the same way.
 * Lists grow one entry at a time; a VM has tens of statistics and a handful of vCPUs.
 */
#include <stdlib.h>
#include <string.h>

#include "stats/vmm-stats-local.h"

static void free_list(struct vms_vmm_stat *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

void vms_vmm_stats_free(struct vms_vmm_stats *s)
{
	if (!s)
		return;
	free_list(s->vm, s->nvm);
	for (size_t i = 0; i < s->nvcpus; i++)
		free_list(s->vcpus[i].stats, s->vcpus[i].nstats);
	free(s->vcpus);
	free(s);
}

static const struct vms_vmm_stat *find_in(const struct vms_vmm_stat *list, size_t n,
					  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].name, name))
			return &list[i];
	return NULL;
}

const struct vms_vmm_stat *vms_vmm_stats_find(const struct vms_vmm_stats *s, int vcpu,
					      const char *name)
{
	if (!s || !name)
		return NULL;
	if (vcpu < 0)
		return find_in(s->vm, s->nvm, name);
	for (size_t i = 0; i < s->nvcpus; i++)
		if (s->vcpus[i].vcpu == vcpu)
			return find_in(s->vcpus[i].stats, s->vcpus[i].nstats, name);
	return NULL;
}

struct vms_vmm_stats *vmm_stats_new(const char *source)
{
	struct vms_vmm_stats *s = calloc(1, sizeof(*s));

	if (s)
		s->source = source;
	return s;
}

struct vms_vmm_vcpu_stats *vmm_stats_vcpu(struct vms_vmm_stats *s, int vcpu)
{
	struct vms_vmm_vcpu_stats *v;

	for (size_t i = 0; i < s->nvcpus; i++)
		if (s->vcpus[i].vcpu == vcpu)
			return &s->vcpus[i];
	v = realloc(s->vcpus, (s->nvcpus + 1) * sizeof(*v));
	if (!v)
		return NULL;
	s->vcpus = v;
	v = &s->vcpus[s->nvcpus++];
	memset(v, 0, sizeof(*v));
	v->vcpu = vcpu;
	return v;
}

int vmm_stats_add(struct vms_vmm_stat **list, size_t *n, const struct vms_vmm_stat *st)
{
	struct vms_vmm_stat *l = realloc(*list, (*n + 1) * sizeof(*l));
	char *name;

	if (!l)
		return -ENOMEM;
	*list = l;
	name = strdup(st->name);
	if (!name)
		return -ENOMEM;
	l[*n] = *st;
	l[*n].name = name;
	(*n)++;
	return 0;
}

static int vcpu_cmp(const void *a, const void *b)
{
	const struct vms_vmm_vcpu_stats *x = a, *y = b;

	return (x->vcpu > y->vcpu) - (x->vcpu < y->vcpu);
}

void vmm_stats_sort(struct vms_vmm_stats *s)
{
	if (s->nvcpus > 1)
		qsort(s->vcpus, s->nvcpus, sizeof(*s->vcpus), vcpu_cmp);
}
