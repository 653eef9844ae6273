// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which KVM implementation serves /dev/kvm (VMX, SVM or the software PVM), read from
 * /sys/module. Analyses need it: it decides which trace events can exist (kvm_exit never
 * fires under PVM) and which KVM statistics count what (PVM counts an emulated OUT as
 * insn_emulation, not io_exits). And the host CPUs' time from /proc/stat, where guest
 * time is a column of its own (top and vmstat fold it into user).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int vms_host_cpus_read(const char *proc_root, struct vms_host_cpu **out, size_t *count)
{
	char path[512], *buf, *save = NULL, *line;
	struct vms_host_cpu *cpus = NULL;
	size_t n = 0, cap = 0;
	int ret;

	*out = NULL;
	*count = 0;
	buf = malloc(1 << 16);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/stat", proc_root ? proc_root : "/proc");
	ret = vms_read_text(path, buf, 1 << 16);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct vms_host_cpu c = { 0 };

		/* "cpuN user nice system idle iowait irq softirq steal guest guest_nice";
		 * older kernels end earlier: the missing columns stay 0. */
		if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9' ||
		    sscanf(line + 3,
			   "%d %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
			   &c.cpu, &c.user, &c.nice, &c.system, &c.idle, &c.iowait, &c.irq,
			   &c.softirq, &c.steal, &c.guest, &c.guest_nice) < 5)
			continue;
		if (n == cap) {
			struct vms_host_cpu *p = realloc(cpus, (cap ? cap * 2 : 8) * sizeof(*p));

			if (!p) {
				free(cpus);
				free(buf);
				return -ENOMEM;
			}
			cpus = p;
			cap = cap ? cap * 2 : 8;
		}
		cpus[n++] = c;
	}
	free(buf);
	if (!n) {
		free(cpus);
		return -VMS_E_PARSE;
	}
	*out = cpus;
	*count = n;
	return 0;
}
