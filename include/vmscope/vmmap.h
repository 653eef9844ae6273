/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMs of a trace: which host thread is which vCPU of which VM. A trace alone does not
 * say; the file does when it was written by vmscope record (its metadata lines "vm=PID
 * NAME" and "vcpu=TID PID INDEX") or by trace-cmd with guests (GUEST options: a name and
 * its vCPUs' host threads).
 */
#ifndef VMSCOPE_VMMAP_H
#define VMSCOPE_VMMAP_H

#include <stddef.h>

#include "vmscope/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vms_vmmap;

/**
 * vms_vmmap_from_trace() - the VM map the file of @t carries (empty when it has none)
 * @out: receives the map; free with vms_vmmap_free()
 * Return: 0 or -ENOMEM.
 */
VMS_API int vms_vmmap_from_trace(const struct vms_trace *t, struct vms_vmmap **out);
VMS_API void vms_vmmap_free(struct vms_vmmap *m);

VMS_API size_t vms_vmmap_nvms(const struct vms_vmmap *m);
/** The VM (0 .. nvms-1) of host thread @tid, or -1 when the map does not know it. */
VMS_API int vms_vmmap_vm_of_tid(const struct vms_vmmap *m, int tid);
/** The vCPU index of host thread @tid, or -1. */
VMS_API int vms_vmmap_vcpu_of_tid(const struct vms_vmmap *m, int tid);
/** The name of VM @vm (owned by the map), and its VMM's pid (0 when unknown). */
VMS_API const char *vms_vmmap_vm_name(const struct vms_vmmap *m, int vm);
VMS_API int vms_vmmap_vm_pid(const struct vms_vmmap *m, int vm);
/** The VM named @name, or whose pid is @name in decimal; -ENOENT if none. */
VMS_API int vms_vmmap_find(const struct vms_vmmap *m, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_VMMAP_H */
