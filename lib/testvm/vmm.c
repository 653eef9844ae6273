// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The test VM's monitor, written directly on the KVM ioctl API (no QEMU): one VM with an
 * in-kernel local APIC, 4 MiB of RAM holding the guest image, descriptor tables and page
 * tables that the VMM builds itself, and one thread per vCPU running the classic
 * KVM_RUN loop (a switch on kvm_run->exit_reason, as kvmtool's kvm-cpu.c does).
 *
 * Every vCPU starts directly in 64-bit guest user mode at the guest's user_main: the guest
 * needs no boot code, and on KVM-PVM hosts (which emulate guest kernel mode one
 * instruction at a time) almost nothing runs emulated. The exits the guest causes on
 * purpose are counted here, per vCPU, next to the guest's own counts.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testvm-local.h"
#include "guest/tvm-tables.h"

extern const unsigned char vms_tvm_guest_image[];
extern const size_t vms_tvm_guest_image_size;

#define MSR_IA32_TSC 0x10
#define APIC_BASE_ADDR 0xfee00000UL
#define APIC_BASE_ENABLE (1UL << 11)
#define APIC_BASE_BSP (1UL << 8)

/* The message of the last failure without a VM object in this thread (see
 * vms_testvm_last_error()). */
static __thread char tvm_new_error[256];

const char *vms_testvm_last_error(const struct vms_testvm *vm)
{
	return vm ? vm->errbuf : tvm_new_error;
}

void tvm_set_last_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tvm_new_error, sizeof(tvm_new_error), fmt, ap);
	va_end(ap);
}

int tvm_fail(struct vms_testvm *vm, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(vm->errbuf, sizeof(vm->errbuf), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
	vms_err("testvm: %s", vm->errbuf);
	return err;
}

uint64_t tvm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t tvm_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* The tightest of a few (TSC, CLOCK_MONOTONIC, TSC) samples, taken at its midpoint. */
struct tvm_clock_pair tvm_clock_pair_now(void)
{
	struct tvm_clock_pair best = { 0, 0 };
	uint64_t best_width = UINT64_MAX;

	for (int i = 0; i < 8; i++) {
		uint64_t t0 = tvm_rdtsc(), ns = tvm_mono_ns(), t1 = tvm_rdtsc();

		if (t1 - t0 < best_width) {
			best_width = t1 - t0;
			best.tsc = t0 + (t1 - t0) / 2;
			best.mono_ns = ns;
		}
	}
	return best;
}

/* ---- guest memory: image, descriptor tables, page tables, shared block ---- */

static int tvm_load_guest(struct vms_testvm *vm)
{
	const struct tvm_image_header *hdr = (const void *)vms_tvm_guest_image;
	struct tvm_shared *sh;

	if (vms_tvm_guest_image_size < sizeof(*hdr) || hdr->magic != TVM_IMAGE_MAGIC ||
	    vms_tvm_guest_image_size > TVM_IMAGE_MAX ||
	    hdr->image_end > TVM_IMAGE_GPA + TVM_IMAGE_MAX)
		return tvm_fail(vm, -EINVAL, "the embedded guest image is damaged");
	memcpy((uint8_t *)vm->mem + TVM_IMAGE_GPA, vms_tvm_guest_image, vms_tvm_guest_image_size);
	tvm_build_tables(vm->mem, vm->nvcpus, hdr);

	sh = (struct tvm_shared *)((uint8_t *)vm->mem + TVM_SHARED_GPA);
	sh->magic = TVM_SHARED_MAGIC;
	sh->nvcpus = vm->nvcpus;
	sh->nphases = vm->opts.nphases;
	vm->shared = sh;
	return 0;
}

/* ---- vCPUs ---- */

static int tvm_set_cpuid(struct vms_testvm *vm, int fd, unsigned int index)
{
	struct kvm_cpuid2 *cpuid;
	int nent = 64, ret;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return -ENOMEM;
		cpuid->nent = nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		ret = -errno;
		free(cpuid);
		if (ret != -E2BIG || nent > 4096)
			return tvm_fail(vm, ret, "KVM_GET_SUPPORTED_CPUID failed: %s",
					vms_strerror(ret));
		nent *= 2;
	}
	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ecx |= 1u << 24; /* TSC-deadline timer: the in-kernel APIC has it */
			e->ebx = (e->ebx & 0x00ffffff) | (index << 24);
		}
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = index; /* x2APIC id */
	}
	ret = ioctl(fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	free(cpuid);
	if (ret)
		return tvm_fail(vm, ret, "KVM_SET_CPUID2 failed: %s", vms_strerror(ret));
	return 0;
}

static void seg_set(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, int dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->dpl = (uint8_t)dpl;
	s->s = 1;
	s->g = 1;
	s->l = code64;
	s->db = !code64;
}

static int tvm_setup_vcpu(struct vms_testvm *vm, struct tvm_vcpu_host *v, int mmap_size)
{
	const struct tvm_image_header *hdr = (const void *)vms_tvm_guest_image;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	uint64_t ustack_top;
	int ret;

	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
	if (v->fd < 0)
		return tvm_fail(vm, -errno, "KVM_CREATE_VCPU %u failed: %s", v->index,
				vms_strerror(-errno));
	v->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return tvm_fail(vm, -errno, "mmap of vCPU %u's kvm_run failed", v->index);
	}
	ret = tvm_set_cpuid(vm, v->fd, v->index);
	if (ret)
		return ret;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return tvm_fail(vm, -errno, "KVM_GET_SREGS failed: %s", vms_strerror(-errno));
	seg_set(&sregs.cs, TVM_SEL_UCODE, 0xb, true, 3);
	seg_set(&sregs.ss, TVM_SEL_UDATA, 0x3, false, 3);
	seg_set(&sregs.ds, TVM_SEL_UDATA, 0x3, false, 3);
	seg_set(&sregs.es, TVM_SEL_UDATA, 0x3, false, 3);
	seg_set(&sregs.fs, TVM_SEL_UDATA, 0x3, false, 3);
	seg_set(&sregs.gs, TVM_SEL_UDATA, 0x3, false, 3);
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = TVM_SEL_TSS(v->index);
	sregs.tr.base = TVM_TSS_GPA + 128ULL * v->index;
	sregs.tr.limit = 103;
	sregs.tr.type = 0xb; /* busy 64-bit TSS */
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.type = 0x2;
	sregs.ldt.unusable = 1;
	sregs.gdt.base = TVM_GDT_GPA;
	sregs.gdt.limit = (uint16_t)(TVM_SEL_TSS(vm->nvcpus) - 1);
	sregs.idt.base = TVM_IDT_GPA;
	sregs.idt.limit = 256 * 16 - 1;
	sregs.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sregs.cr3 = TVM_PML4_GPA;
	sregs.cr4 = 0x20;   /* PAE */
	sregs.efer = 0x500; /* LMA LME */
	sregs.apic_base = APIC_BASE_ADDR | APIC_BASE_ENABLE | (v->index ? 0 : APIC_BASE_BSP);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return tvm_fail(vm, -errno, "KVM_SET_SREGS (64-bit user mode) failed: %s",
				vms_strerror(-errno));

	ustack_top = TVM_STACK_GPA + (uint64_t)v->index * (TVM_KSTACK_SIZE + TVM_USTACK_SIZE) +
		     TVM_KSTACK_SIZE + TVM_USTACK_SIZE;
	memset(&regs, 0, sizeof(regs));
	regs.rip = hdr->user_entry;
	regs.rsp = ustack_top - 8; /* as after a call: keeps the ABI's stack alignment */
	regs.rdi = v->index;
	regs.rsi = TVM_SHARED_GPA;
	regs.rflags = 0x202; /* IF */
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return tvm_fail(vm, -errno, "KVM_SET_REGS failed: %s", vms_strerror(-errno));

	/* Local APIC: software-enabled, timer in TSC-deadline mode, LINT0/1 masked. */
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return tvm_fail(vm, -errno, "KVM_GET_LAPIC failed: %s", vms_strerror(-errno));
#define LAPIC_REG(off) (*(uint32_t *)&lapic.regs[off])
	LAPIC_REG(0x80) = 0;			       /* TPR */
	LAPIC_REG(0xf0) = 0x100 | TVM_VEC_SPURIOUS;    /* SVR: enabled */
	LAPIC_REG(0x320) = (2u << 17) | TVM_VEC_TIMER; /* LVT timer: TSC deadline */
	LAPIC_REG(0x350) = 1u << 16;		       /* LINT0 masked */
	LAPIC_REG(0x360) = 1u << 16;		       /* LINT1 masked */
	LAPIC_REG(0x370) = 1u << 16;		       /* LVT error masked */
#undef LAPIC_REG
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return tvm_fail(vm, -errno, "KVM_SET_LAPIC failed: %s", vms_strerror(-errno));
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return tvm_fail(vm, -errno, "KVM_SET_MP_STATE failed: %s", vms_strerror(-errno));

	/* Binary statistics are optional (kernels before 5.14 lack them). */
	ret = ioctl(v->fd, KVM_GET_STATS_FD, NULL);
	if (ret >= 0) {
		int sret = vms_stats_open_fd(ret, &v->stats);

		if (sret)
			vms_warn("testvm: vCPU %u statistics unreadable: %s (%s)", v->index,
				 vms_strerror(sret), vms_stats_last_error());
	}
	return 0;
}

/* Route the guest's WRMSR/RDMSR of TVM_MSR_INDEX to user space (KVM_EXIT_X86_*MSR). */
static int tvm_setup_msr_filter(struct vms_testvm *vm)
{
	uint8_t deny = 0;
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges[0] = { .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			       .nmsrs = 1,
			       .base = TVM_MSR_INDEX,
			       .bitmap = &deny },
	};
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR,
				      .args[0] = KVM_MSR_EXIT_REASON_FILTER };

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0)
		return tvm_fail(vm, -VMS_E_KVM_API,
				"/dev/kvm lacks KVM_CAP_X86_USER_SPACE_MSR or "
				"KVM_CAP_X86_MSR_FILTER, needed for MSR exits");
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return tvm_fail(vm, -errno, "enabling user-space MSR exits failed: %s",
				vms_strerror(-errno));
	if (ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0)
		return tvm_fail(vm, -errno, "KVM_X86_SET_MSR_FILTER failed: %s",
				vms_strerror(-errno));
	return 0;
}

bool tvm_host_is_amd(void)
{
	uint32_t a = 0, b, c, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	return (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) || /* AuthenticAMD */
	       (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975);	  /* HygonGenuine */
}

static int tvm_check_caps(struct vms_testvm *vm)
{
	static const struct {
		int cap;
		const char *name;
	} need[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER" },
		{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
		{ KVM_CAP_GET_TSC_KHZ, "KVM_CAP_GET_TSC_KHZ" },
	};
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);

	if (api != KVM_API_VERSION)
		return tvm_fail(vm, -VMS_E_KVM_API, "/dev/kvm speaks API version %d, not %d", api,
				KVM_API_VERSION);
	for (size_t i = 0; i < VMS_ARRAY_SIZE(need); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0)
			return tvm_fail(vm, -VMS_E_KVM_API, "/dev/kvm lacks %s", need[i].name);
	return 0;
}

static int tvm_measure_tsc_offset(struct vms_testvm *vm)
{
	/* struct kvm_msrs ends in a flexible array: room for one entry after it. */
	uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)) / 8 + 1] = { 0 };
	struct kvm_msrs *msrs = (struct kvm_msrs *)buf;
	uint64_t best = UINT64_MAX;

	msrs->nmsrs = 1;
	msrs->entries[0].index = MSR_IA32_TSC;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = tvm_rdtsc(), t1;

		if (ioctl(vm->vcpu[0].fd, KVM_GET_MSRS, msrs) != 1)
			return tvm_fail(vm, -EIO, "KVM_GET_MSRS(IA32_TSC) failed");
		t1 = tvm_rdtsc();
		if (t1 - t0 < best) {
			best = t1 - t0;
			vm->tsc_offset = (int64_t)(msrs->entries[0].data - (t0 + (t1 - t0) / 2));
		}
	}
	return 0;
}

static int tvm_open(struct vms_testvm *vm)
{
	struct kvm_userspace_memory_region region;
	int ret, mmap_size;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		return tvm_fail(vm, ret, "cannot open /dev/kvm: %s", vms_strerror(ret));
	}
	ret = tvm_check_caps(vm);
	if (ret)
		return ret;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return tvm_fail(vm, -errno, "KVM_CREATE_VM failed: %s", vms_strerror(-errno));
	/* VMX needs a TSS area for real-mode emulation; harmless elsewhere. */
	(void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return tvm_fail(vm, -errno, "KVM_CREATE_IRQCHIP failed: %s", vms_strerror(-errno));

	vm->mem_size = TVM_RAM_SIZE;
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return tvm_fail(vm, -ENOMEM, "cannot allocate %zu bytes of guest memory",
				vm->mem_size);
	}
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = vm->mem_size,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return tvm_fail(vm, -errno, "KVM_SET_USER_MEMORY_REGION failed: %s",
				vms_strerror(-errno));
	ret = tvm_load_guest(vm);
	if (ret)
		return ret;
	if (vm->opts.msr_rate > 0) {
		ret = tvm_setup_msr_filter(vm);
		if (ret)
			return ret;
	}
	vm->shared->hc_vmmcall = tvm_host_is_amd();

	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return tvm_fail(vm, -EIO, "KVM_GET_VCPU_MMAP_SIZE failed");
	vm->run_size = (size_t)mmap_size;
	for (unsigned int i = 0; i < vm->nvcpus; i++) {
		vm->vcpu[i].vm = vm;
		vm->vcpu[i].index = i;
		ret = tvm_setup_vcpu(vm, &vm->vcpu[i], mmap_size);
		if (ret)
			return ret;
	}
	ret = ioctl(vm->vcpu[0].fd, KVM_GET_TSC_KHZ, 0);
	if (ret <= 0)
		return tvm_fail(vm, -EIO, "KVM_GET_TSC_KHZ failed");
	vm->tsc_khz = (uint64_t)ret;
	ret = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
	if (ret >= 0 && vms_stats_open_fd(ret, &vm->vm_stats))
		vm->vm_stats = NULL;
	return tvm_measure_tsc_offset(vm);
}

int vms_testvm_new(const struct vms_testvm_opts *opts, struct vms_testvm **out)
{
	struct vms_testvm *vm;
	int ret;

	*out = NULL;
	if (!opts || opts->sz < sizeof(*opts) || !opts->vcpus ||
	    opts->vcpus > VMS_TESTVM_MAX_VCPUS || !opts->nphases ||
	    opts->nphases > VMS_TESTVM_MAX_PHASES || !opts->phases || opts->mmio_rate < 0 ||
	    opts->pio_rate < 0 || opts->msr_rate < 0 || opts->hypercall_rate < 0)
		return -EINVAL;
	for (unsigned int p = 0; p < opts->nphases; p++)
		if (opts->phases[p].duty > 100 || !opts->phases[p].duration_ns)
			return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	pthread_mutex_init(&vm->lock, NULL);
	vm->kvm_fd = vm->vm_fd = -1;
	vm->opts = *opts;
	vm->nvcpus = opts->vcpus;
	memcpy(vm->phases, opts->phases, opts->nphases * sizeof(opts->phases[0]));
	vm->opts.phases = vm->phases;
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++) {
		vm->pin[i] = opts->pin && i < opts->vcpus ? opts->pin[i] : -1;
		vm->vcpu[i].fd = -1;
	}
	vm->opts.pin = vm->pin;
	if (!vm->opts.period_ns)
		vm->opts.period_ns = 100000000ULL;
	if (!vm->opts.start_delay_ns)
		vm->opts.start_delay_ns = 50000000ULL;

	ret = tvm_open(vm);
	if (ret) {
		/* The VM is not handed back: keep its message for vms_testvm_last_error(NULL). */
		tvm_set_last_error("%s", vm->errbuf);
		vms_testvm_free(vm);
		return ret;
	}
	tvm_new_error[0] = '\0';
	*out = vm;
	return 0;
}

int vms_testvm_host_tsc_khz(uint64_t *khz)
{
	int kvm_fd, vm_fd = -1, vcpu_fd = -1, ret;

	*khz = 0;
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		ret = -errno;
		tvm_set_last_error("cannot open /dev/kvm: %s", vms_strerror(ret));
		return ret;
	}
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) <= 0) {
		ret = -VMS_E_KVM_API;
		tvm_set_last_error("/dev/kvm lacks KVM_CAP_GET_TSC_KHZ");
		goto out;
	}
	errno = 0;
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd >= 0)
		vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0UL);
	ret = vcpu_fd >= 0 ? ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0) : -1;
	if (ret <= 0) {
		ret = ret < 0 && errno ? -errno : -EIO;
		tvm_set_last_error("%s failed: %s",
				   vm_fd < 0	 ? "KVM_CREATE_VM"
				   : vcpu_fd < 0 ? "KVM_CREATE_VCPU"
						 : "KVM_GET_TSC_KHZ",
				   vms_strerror(ret));
		goto out;
	}
	*khz = (uint64_t)ret;
	ret = 0;
	tvm_set_last_error("%s", "");
out:
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	close(kvm_fd);
	return ret;
}

/* ---- running ---- */

static void tvm_handle_mmio(struct tvm_vcpu_host *v)
{
	struct kvm_run *run = v->run;
	uint64_t addr = run->mmio.phys_addr;
	uint32_t val = 0;

	memcpy(&val, run->mmio.data, run->mmio.len < 4 ? run->mmio.len : 4);
	if (addr == TVM_MMIO_LOAD_GPA && run->mmio.is_write) {
		if (val >> 24 != v->index || (val & 0xffffff) != (v->vmm.mmio_load & 0xffffff))
			v->vmm.seq_errors++;
		v->vmm.mmio_load++;
		return;
	}
	if (addr == TVM_MMIO_CTL_GPA + TVM_CTL_DONE && run->mmio.is_write) {
		v->vmm.mmio_control++;
		v->done = true;
		return;
	}
	if (addr == TVM_MMIO_CTL_GPA + TVM_CTL_FAULT && run->mmio.is_write) {
		const struct tvm_vcpu *st = &v->vm->shared->vcpu[v->index];

		v->vmm.mmio_control++;
		v->err = tvm_fail(
			v->vm, -VMS_E_GUEST_FAULT,
			"guest vCPU %u took exception %llu (error %#llx) at rip %#llx "
			"cs %#llx cr2 %#llx",
			v->index, (unsigned long long)st->fault_vector,
			(unsigned long long)st->fault_error, (unsigned long long)st->fault_rip,
			(unsigned long long)st->fault_cs, (unsigned long long)st->fault_cr2);
		return;
	}
	v->vmm.mmio_other++;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
}

static void tvm_handle_io(struct tvm_vcpu_host *v)
{
	struct kvm_run *run = v->run;

	if (run->io.port == TVM_PIO_PORT && run->io.direction == KVM_EXIT_IO_OUT)
		v->vmm.pio += run->io.count;
	else
		v->vmm.io_other++;
	if (run->io.direction == KVM_EXIT_IO_IN)
		memset((uint8_t *)run + run->io.data_offset, 0xff,
		       (size_t)run->io.size * run->io.count);
}

static void tvm_handle_msr(struct tvm_vcpu_host *v)
{
	struct kvm_run *run = v->run;

	if (run->msr.index == TVM_MSR_INDEX && run->exit_reason == KVM_EXIT_X86_WRMSR) {
		v->vmm.msr++;
		run->msr.error = 0;
	} else {
		v->vmm.msr_other++;
		run->msr.error = 1; /* the guest gets #GP, its fault handler reports it */
	}
	if (run->exit_reason == KVM_EXIT_X86_RDMSR)
		run->msr.data = 0;
}

static void *tvm_vcpu_thread(void *arg)
{
	struct tvm_vcpu_host *v = arg;
	struct vms_testvm *vm = v->vm;
	struct kvm_run *run = v->run;
	char name[16];

	snprintf(name, sizeof(name), "CPU %u/KVM", v->index);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	v->tid = (int)syscall(SYS_gettid); /* atomic: named and running, for vms_testvm_run() */
	if (vm->pin[v->index] >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(vm->pin[v->index], &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			v->err = tvm_fail(vm, -errno, "cannot pin vCPU %u to host CPU %d: %s",
					  v->index, vm->pin[v->index], vms_strerror(-errno));
			vms_testvm_stop(vm);
			return NULL;
		}
	}
	while (!v->done && !v->err) {
		v->vmm.run_calls++;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->vmm.intr++;
				continue;
			}
			v->err = tvm_fail(vm, -errno, "KVM_RUN on vCPU %u failed: %s", v->index,
					  vms_strerror(-errno));
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			tvm_handle_mmio(v);
			break;
		case KVM_EXIT_IO:
			tvm_handle_io(v);
			break;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			tvm_handle_msr(v);
			break;
		case KVM_EXIT_INTR:
			v->vmm.intr++;
			break;
		case KVM_EXIT_SHUTDOWN:
			v->err = tvm_fail(vm, -VMS_E_GUEST_FAULT,
					  "guest vCPU %u shut down (triple fault)", v->index);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			v->err = tvm_fail(
				vm, -VMS_E_GUEST_EXIT,
				"vCPU %u: entry failed, hardware reason %#llx", v->index,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			v->err = tvm_fail(vm, -VMS_E_GUEST_EXIT,
					  "vCPU %u: KVM internal error, suberror %u", v->index,
					  run->internal.suberror);
			break;
		default:
			v->vmm.other++;
			v->err = tvm_fail(vm, -VMS_E_GUEST_EXIT,
					  "vCPU %u: unexpected exit reason %u", v->index,
					  run->exit_reason);
			break;
		}
	}
	if (v->err)
		vms_testvm_stop(vm);
	return NULL;
}

/* Wake a halted vCPU with a fixed-delivery MSI carrying TVM_VEC_WAKE. */
static void tvm_wake(struct vms_testvm *vm, unsigned int i)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)(APIC_BASE_ADDR | (i << 12)),
		.data = TVM_VEC_WAKE,
	};

	(void)ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
}

void vms_testvm_stop(struct vms_testvm *vm)
{
	bool expected = false;

	if (!vm || vm->dump || !atomic_compare_exchange_strong(&vm->stopping, &expected, true))
		return;
	vm->stop_mono_ns = tvm_mono_ns();
	__atomic_store_n(&vm->shared->stop, 1, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		tvm_wake(vm, i);
}

static void tvm_snapshot_stats_begin(struct vms_testvm *vm)
{
	for (unsigned int i = 0; i < vm->nvcpus; i++) {
		struct tvm_vcpu_host *v = &vm->vcpu[i];
		size_t n = 0;

		if (!v->stats || vms_stats_read(v->stats))
			continue;
		for (size_t d = 0; d < vms_stats_count(v->stats); d++)
			n += vms_stats_desc(v->stats, d)->size;
		v->stats_begin = calloc(n ? n : 1, sizeof(uint64_t));
		if (!v->stats_begin)
			continue;
		v->stats_nvals = n;
		n = 0;
		for (size_t d = 0; d < vms_stats_count(v->stats); d++) {
			const struct vms_stat_desc *desc = vms_stats_desc(v->stats, d);

			memcpy(v->stats_begin + n, vms_stats_values(v->stats, d),
			       desc->size * sizeof(uint64_t));
			n += desc->size;
		}
	}
	if (vm->vm_stats)
		vms_stats_read(vm->vm_stats);
}

/* Guest TSC ticks between two load exits at @rate per second; 0 (none) for rate 0. */
static uint64_t tvm_interval_tsc(const struct vms_testvm *vm, double rate)
{
	uint64_t iv;

	if (rate <= 0)
		return 0;
	iv = (uint64_t)((double)vm->tsc_khz * 1000.0 / rate);
	return iv ? iv : 1;
}

int vms_testvm_run(struct vms_testvm *vm)
{
	struct tvm_shared *sh = vm->shared;
	uint64_t t, period_tsc;
	int ret = 0;

	if (vm->dump)
		return -EINVAL;
	if (vm->ran)
		return -EALREADY;
	vm->ran = true;

	/* The schedule, in guest TSC ticks. */
	sh->tsc_khz = vm->tsc_khz;
	period_tsc = vm->opts.period_ns * vm->tsc_khz / 1000000ULL;
	sh->period_tsc = period_tsc ? period_tsc : 1;
	sh->mmio_interval_tsc = tvm_interval_tsc(vm, vm->opts.mmio_rate);
	sh->pio_interval_tsc = tvm_interval_tsc(vm, vm->opts.pio_rate);
	sh->msr_interval_tsc = tvm_interval_tsc(vm, vm->opts.msr_rate);
	sh->hc_interval_tsc = tvm_interval_tsc(vm, vm->opts.hypercall_rate);

	tvm_snapshot_stats_begin(vm);
	vm->clk_start = tvm_clock_pair_now();
	t = vm->clk_start.tsc + (uint64_t)vm->tsc_offset +
	    vm->opts.start_delay_ns * vm->tsc_khz / 1000000ULL;
	sh->start_tsc = t;
	for (unsigned int p = 0; p < vm->opts.nphases; p++) {
		sh->phases[p].start_tsc = t;
		t += vm->phases[p].duration_ns * vm->tsc_khz / 1000000ULL;
		sh->phases[p].end_tsc = t;
		sh->phases[p].duty = vm->phases[p].duty;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* the phase times can be asked from another thread from now on */
	__atomic_store_n(&vm->scheduled, true, __ATOMIC_RELEASE);

	for (unsigned int i = 0; i < vm->nvcpus; i++) {
		struct tvm_vcpu_host *v = &vm->vcpu[i];
		int err = pthread_create(&v->thread, NULL, tvm_vcpu_thread, v);

		if (err) {
			ret = tvm_fail(vm, -err, "cannot start vCPU thread %u", i);
			vms_testvm_stop(vm);
			break;
		}
		v->thread_started = true;
	}
	if (!ret && vm->opts.started) {
		/* every vCPU thread has named itself: tell the caller */
		for (unsigned int i = 0; i < vm->nvcpus; i++) {
			struct timespec nap = { 0, 100000 };

			while (!vm->vcpu[i].tid) /* _Atomic */
				nanosleep(&nap, NULL);
		}
		vm->opts.started(vm->opts.started_ctx);
	}
	for (unsigned int i = 0; i < vm->nvcpus; i++) {
		struct tvm_vcpu_host *v = &vm->vcpu[i];

		if (!v->thread_started)
			continue;
		pthread_join(v->thread, NULL);
		v->thread_started = false;
		if (v->err && !ret)
			ret = v->err;
	}
	vm->clk_end = tvm_clock_pair_now();
	for (unsigned int i = 0; i < vm->nvcpus; i++)
		if (vm->vcpu[i].stats)
			vms_stats_read(vm->vcpu[i].stats);
	if (vm->vm_stats)
		vms_stats_read(vm->vm_stats);
	return ret;
}

void vms_testvm_free(struct vms_testvm *vm)
{
	if (!vm)
		return;
	for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++) {
		struct tvm_vcpu_host *v = &vm->vcpu[i];

		if (v->run)
			munmap(v->run, vm->run_size);
		if (v->fd >= 0)
			close(v->fd);
		vms_stats_free(v->stats);
		free(v->stats_begin);
	}
	vms_stats_free(vm->vm_stats);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->dump) {
		free(vm->shared);
		for (unsigned int i = 0; i < VMS_TESTVM_MAX_VCPUS; i++) {
			struct tvm_dump_vcpu *d = &vm->dumpv[i];

			for (size_t s = 0; s < d->nstats; s++)
				free(d->stat_names[s]);
			free(d->stat_names);
			free(d->stat_deltas);
		}
	}
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
