/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * x86 virtualization facts an analysis needs: the names of VMX and SVM exit reasons and of
 * the KVM_EXIT_* reasons of KVM_RUN, and which of VMX or SVM a CPU vendor uses.
 */
#ifndef VMSCOPE_ARCH_X86_H
#define VMSCOPE_ARCH_X86_H

#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kvm_exit tracepoint's "isa" field uses these values. */
enum vms_x86_isa { VMS_X86_UNKNOWN = 0, VMS_X86_VMX = 1, VMS_X86_SVM = 2 };

/**
 * vms_x86_exit_reason_name() - "EPT_VIOLATION", "npf", ... or NULL for an unknown code
 * VMX reasons are looked up by their basic reason (the low 16 bits). Static string.
 */
VMS_API const char *vms_x86_exit_reason_name(enum vms_x86_isa isa, uint32_t code);

/** vms_kvm_exit_name() - "MMIO", "IO", ... for a KVM_EXIT_* reason, or NULL. */
VMS_API const char *vms_kvm_exit_name(uint32_t reason);

/** vms_x86_isa_of_vendor() - VMX for "GenuineIntel", SVM for AMD and Hygon. */
VMS_API enum vms_x86_isa vms_x86_isa_of_vendor(const char *vendor);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_ARCH_X86_H */
