// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which KVM implementation serves /dev/kvm (VMX, SVM or the software PVM), read from
 * /sys/module. Analyses need it: it decides which trace events can exist (kvm_exit never
 * fires under PVM) and which KVM statistics count what (PVM counts an emulated OUT as
 * insn_emulation, not io_exits).
 */
#include <stdio.h>
#include <sys/stat.h>

#include "vmscope-local.h"
#include "vmscope/host.h"

static bool module_loaded(const char *root, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum vms_kvm_flavor vms_host_kvm_flavor(const char *sysfs_module)
{
	const char *root = sysfs_module ? sysfs_module : "/sys/module";

	if (module_loaded(root, "kvm_pvm"))
		return VMS_KVM_PVM;
	if (module_loaded(root, "kvm_intel"))
		return VMS_KVM_VMX;
	if (module_loaded(root, "kvm_amd"))
		return VMS_KVM_SVM;
	return module_loaded(root, "kvm") ? VMS_KVM_UNKNOWN : VMS_KVM_NONE;
}

const char *vms_kvm_flavor_name(enum vms_kvm_flavor flavor)
{
	switch (flavor) {
	case VMS_KVM_NONE:
		return "none";
	case VMS_KVM_VMX:
		return "vmx";
	case VMS_KVM_SVM:
		return "svm";
	case VMS_KVM_PVM:
		return "pvm";
	default:
		return "unknown";
	}
}
