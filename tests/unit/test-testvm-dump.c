// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the test VM under another VMM, no KVM needed: the multiboot guest's command
 * line written by vms_testvm_multiboot_cmdline() and read by the guest's own parser
 * (lib/testvm/guest/mb-cmdline.h, compiled here on the host) gives, tick for tick, the
 * schedule vms_testvm_run() computes for the built-in VMM; the parser refuses what it
 * cannot run and says where; and vms_testvm_open_dump() reads canned shared blocks back
 * (accessors, truth JSON, unfinished and faulted vCPUs) and refuses short, foreign and
 * damaged ones with a clear message and without reading past the bytes it was given.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testvm/guest/mb-cmdline.h"
#include "testvm/guest/tvm-abi.h"
#include "vmscope/testvm.h"

#define KHZ 2596000ULL

/* ---- the command line ---- */

/* What vms_testvm_run() computes (lib/testvm/vmm.c) for the same options. */
static uint64_t vmm_ticks(uint64_t ns)
{
	return ns * KHZ / 1000000ULL;
}

static uint64_t vmm_interval(double rate)
{
	uint64_t iv;

	if (rate <= 0)
		return 0;
	iv = (uint64_t)((double)KHZ * 1000.0 / rate);
	return iv ? iv : 1;
}

/* Parse @line as the guest does, with QEMU's kernel file name in front. */
static unsigned int guest_parse(const char *line, struct tvm_boot *b, struct mb_params *p)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->cmdline, sizeof(b->cmdline), "/tmp/x/guest.mb %s", line);
	return mb_parse_cmdline(b, p);
}

static void test_cmdline_roundtrip(void **state)
{
	static const struct vms_testvm_phase phases[] = {
		{ 0, 2000000000ULL }, { 75, 1500000000ULL }, { 90, 4000123000ULL }, { 100, 1000ULL }
	};
	struct vms_testvm_opts opts = {
		.sz = sizeof(opts),
		.vcpus = 2,
		.phases = phases,
		.nphases = 4,
		.period_ns = 12500000,
		.mmio_rate = 330,
		.pio_rate = 70,
		.hypercall_rate = 55.5,
	};
	struct tvm_shared *sh = calloc(1, sizeof(*sh));
	struct mb_params p;
	struct tvm_boot b;
	char line[1024];
	uint64_t t = 1000;

	(void)state;
	assert_non_null(sh);
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, KHZ, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "tsc_khz=2596000 period_ms=12.5 start_ms=50 "
				     "sched=2:0,1.5:75,4.000123:90,0.000001:100 mmio=330 pio=70 "
				     "hypercall=55.5 hc="));
	assert_int_equal(guest_parse(line, &b, &p), 0);
	mb_fill_schedule(&p, t, sh);
	assert_int_equal(sh->tsc_khz, KHZ);
	assert_int_equal(sh->period_tsc, vmm_ticks(opts.period_ns));
	assert_int_equal(sh->mmio_interval_tsc, vmm_interval(opts.mmio_rate));
	assert_int_equal(sh->pio_interval_tsc, vmm_interval(opts.pio_rate));
	assert_int_equal(sh->hc_interval_tsc, vmm_interval(opts.hypercall_rate));
	assert_int_equal(sh->msr_interval_tsc, 0);
	assert_int_equal(sh->nphases, 4);
	assert_int_equal(sh->start_tsc, t);
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(sh->phases[i].start_tsc, t);
		t += vmm_ticks(phases[i].duration_ns);
		assert_int_equal(sh->phases[i].end_tsc, t);
		assert_int_equal(sh->phases[i].duty, phases[i].duty);
	}
	assert_int_equal(mb_us_to_tsc(p.start_us, KHZ), vmm_ticks(50000000ULL));
	free(sh);
}

static void test_cmdline_refused(void **state)
{
	static const struct vms_testvm_phase one[] = { { 50, 1000000000ULL } };
	static const struct vms_testvm_phase odd[] = { { 50, 1000000500ULL } };
	struct vms_testvm_opts opts = {
		.sz = sizeof(opts), .vcpus = 1, .phases = one, .nphases = 1
	};
	char line[1024];

	(void)state;
	opts.msr_rate = 10; /* QEMU cannot count WRMSR exits */
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, KHZ, line, sizeof(line)), -EINVAL);
	opts.msr_rate = 0;
	opts.phases = odd; /* the guest's times are whole microseconds */
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, KHZ, line, sizeof(line)), -EINVAL);
	opts.phases = one;
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, 0, line, sizeof(line)), -EINVAL);
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, KHZ, line, 20), -ENOSPC);
	assert_int_equal(vms_testvm_multiboot_cmdline(&opts, KHZ, line, sizeof(line)), 0);
	assert_string_equal(line, "tsc_khz=2596000 period_ms=100 start_ms=50 sched=1:50");
}

static void test_guest_parser(void **state)
{
	static const struct {
		const char *line;
		unsigned int err;
		const char *word; /* where error_pos points, after the file name */
	} cases[] = {
		{ "tsc_khz=2000000", 0, NULL },
		{ "tsc_khz=2000000 sched=1:50, ", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "sched=1:50", TVM_BOOT_E_NO_TSC_KHZ, NULL },
		{ "tsc_khz=2000000 sched=1:101", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "tsc_khz=2000000 sched=0:50", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "tsc_khz=2000000 sched=1.0000001:50", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "tsc_khz=2000000 sched=", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "tsc_khz=2000000 sched=:5", TVM_BOOT_E_SYNTAX, "sched=" },
		{ "tsc_khz=2000000 period_ms=0.5", TVM_BOOT_E_SYNTAX, "period_ms=" },
		{ "tsc_khz=999", TVM_BOOT_E_SYNTAX, "tsc_khz=" },
		{ "tsc_khz=99999999999999999999999", TVM_BOOT_E_SYNTAX, "tsc_khz=" },
		{ "tsc_khz=2000000 pio=-1", TVM_BOOT_E_SYNTAX, "pio=" },
		{ "tsc_khz=2000000 pio=1000000.000001", TVM_BOOT_E_SYNTAX, "pio=" },
		{ "tsc_khz=2000000 msr=0", 0, NULL },
		{ "tsc_khz=2000000 msr=5", TVM_BOOT_E_MSR, "msr=" },
		{ "tsc_khz=2000000 hc=syscall", TVM_BOOT_E_SYNTAX, "hc=" },
		{ "tsc_khz=2000000 console=ttyS0", TVM_BOOT_E_UNKNOWN, "console=" },
		{ "quiet tsc_khz=2000000", 0, NULL },
	};
	struct mb_params p;
	struct tvm_boot b;
	char many[512] = "tsc_khz=2000000 sched=";

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned int err = guest_parse(cases[i].line, &b, &p);

		if (err != cases[i].err)
			fail_msg("'%s': error %u, expected %u", cases[i].line, err, cases[i].err);
		if (cases[i].word)
			assert_true(!strncmp(b.cmdline + b.error_pos, cases[i].word,
					     strlen(cases[i].word)));
	}
	/* the defaults: vmscope testvm's */
	assert_int_equal(guest_parse("tsc_khz=2000000", &b, &p), 0);
	assert_int_equal(p.period_us, 100000);
	assert_int_equal(p.nphases, 3);
	assert_int_equal(p.duty[2], 90);
	assert_int_equal(p.hc, -1);
	for (int i = 0; i < TVM_MAX_PHASES; i++)
		strcat(many, "1:1,");
	strcat(many, "1:1");
	assert_int_equal(guest_parse(many, &b, &p), TVM_BOOT_E_PHASES);
}

/* ---- dumps ---- */

/* A guest that ran 2 phases (0 % for 1 s, 75 % for 2 s, period 100 ms) on @n vCPUs. */
static struct tvm_shared *make_dump(unsigned int n)
{
	struct tvm_shared *sh = calloc(1, sizeof(*sh));

	assert_non_null(sh);
	sh->magic = TVM_SHARED_MAGIC;
	sh->boot.magic = TVM_BOOT_MAGIC;
	sh->boot.shared_size = sizeof(struct tvm_shared);
	sh->boot.vcpu_size = sizeof(struct tvm_vcpu);
	sh->boot.cpus_announced = n;
	snprintf(sh->boot.cmdline, sizeof(sh->boot.cmdline),
		 "guest.mb tsc_khz=2000000 sched=1:0,2:75 pio=70");
	sh->nvcpus = n;
	sh->nphases = 2;
	sh->tsc_khz = 2000000;
	sh->period_tsc = 200000000;
	sh->pio_interval_tsc = 2000000000ULL / 70;
	sh->start_tsc = 1000;
	sh->phases[0] = (struct tvm_phase){ 1000, 1000 + 2000000000ULL, 0, 0 };
	sh->phases[1] = (struct tvm_phase){ 1000 + 2000000000ULL, 1000 + 6000000000ULL, 75, 0 };
	for (unsigned int i = 0; i < n; i++) {
		struct tvm_vcpu *v = &sh->vcpu[i];

		v->phase = TVM_PHASE_NONE;
		v->done = 1;
		v->ctl_mmio = 1;
		v->ph[0] = (struct tvm_vcpu_phase){ .idle_tsc = 1998000000,
						    .late_tsc = 2000000,
						    .wakeups = 10,
						    .periods = 10,
						    .hlt = 10,
						    .irq = 10 };
		v->ph[1] = (struct tvm_vcpu_phase){ .busy_tsc = 3000000000ULL,
						    .idle_tsc = 1000000000,
						    .wakeups = 20,
						    .periods = 20,
						    .work = 12345,
						    .pio = 120,
						    .hlt = 21,
						    .irq = 20 };
		v->ph[TVM_PHASE_NONE].hlt = 1;
	}
	return sh;
}

static char *truth_of(const struct tvm_shared *sh, size_t len,
		      const struct vms_testvm_dump_opts *opts)
{
	char *json = NULL;
	size_t jlen = 0;
	FILE *f = open_memstream(&json, &jlen);

	assert_non_null(f);
	assert_int_equal(vms_testvm_truth_from_dump(sh, len, opts, f), 0);
	assert_int_equal(fclose(f), 0);
	return json;
}

static void test_dump_read_back(void **state)
{
	static const struct vms_testvm_stat_delta stats[] = { { "io_exits", 0 },
							      { "halt_exits", 33 } };
	struct vms_testvm_dump_vcpu vcpus[2] = { { 4242, stats, 2 }, { 4243, NULL, 0 } };
	struct vms_testvm_dump_opts opts = { .sz = sizeof(opts),
					     .name = "vm1",
					     .pid = 99,
					     .vcpus = vcpus,
					     .nvcpus = 2,
					     .vmm_pio = 240 };
	struct tvm_shared *sh = make_dump(2);
	size_t len = vms_testvm_dump_size(2);
	struct vms_testvm_vcpu_phase ph;
	struct vms_testvm_vmm_counts vmm;
	struct vms_testvm_fault fault;
	struct vms_testvm *vm;
	uint64_t s, e, d;
	bool complete;
	char *json;

	(void)state;
	assert_int_equal(len, offsetof(struct tvm_shared, vcpu) + 2 * sizeof(struct tvm_vcpu));
	assert_int_equal(vms_testvm_open_dump(sh, len, &opts, &vm), 0);
	assert_int_equal(vms_testvm_vcpus(vm), 2);
	assert_int_equal(vms_testvm_nphases(vm), 2);
	assert_int_equal(vms_testvm_tsc_khz(vm), 2000000);
	assert_int_equal(vms_testvm_period_ns(vm), 100000000);
	assert_int_equal(vms_testvm_vcpu_tid(vm, 0), 4242);
	assert_int_equal(vms_testvm_phase_tsc(vm, 1, &s, &e, &complete), 0);
	assert_int_equal(s, 1000 + 2000000000ULL);
	assert_int_equal(e, 1000 + 6000000000ULL);
	assert_true(complete);
	assert_int_equal(vms_testvm_phase_times(vm, 1, &s, &e, &complete), -ENOENT);
	assert_int_equal(vms_testvm_vmm_counts(vm, 0, &vmm), -ENOENT);
	assert_int_equal(vms_testvm_vcpu_phase(vm, 1, 1, &ph), 0);
	assert_int_equal(ph.busy_ns, 1500000000ULL);
	assert_int_equal(ph.idle_ns, 500000000ULL);
	assert_int_equal(ph.pio, 120);
	assert_int_equal(ph.duty, 75);
	assert_true(ph.complete);
	assert_int_equal(vms_testvm_vcpu_phase(vm, 1, 2, &ph), 0); /* outside the phases */
	assert_int_equal(ph.hlt, 1);
	assert_int_equal(vms_testvm_vcpu_phase(vm, 2, 0, &ph), -EINVAL);
	assert_true(vms_testvm_vcpu_done(vm, 1));
	assert_int_equal(vms_testvm_vcpu_fault(vm, 1, &fault), -ENOENT);
	assert_int_equal(vms_testvm_stat_delta(vm, 0, "halt_exits", &d), 0);
	assert_int_equal(d, 33);
	assert_int_equal(vms_testvm_stat_delta(vm, 1, "halt_exits", &d), -ENOENT);
	assert_int_equal(vms_testvm_run(vm), -EINVAL); /* a dump cannot run */
	vms_testvm_stop(vm);
	vms_testvm_free(vm);

	/* A dump of more than the block (a round size) reads the same. */
	json = truth_of(sh, sizeof(*sh), &opts);
	assert_non_null(strstr(json, "\"clock\": \"guest TSC\""));
	assert_non_null(strstr(json, "\"vmm\": \"qemu\""));
	assert_non_null(strstr(json, "\"name\": \"vm1\""));
	assert_non_null(strstr(json, "\"pid\": 99"));
	assert_non_null(strstr(json, "\"pio_rate\": 70"));
	assert_non_null(strstr(json, "\"stopped_early\": false"));
	assert_non_null(strstr(json, "\"start_tsc\": 2000001000"));
	assert_non_null(strstr(json, "\"vmm_totals\": {\n    \"pio\": 240"));
	assert_non_null(strstr(json, "\"tid\": 4243"));
	assert_non_null(strstr(json, "\"done\": true"));
	assert_non_null(strstr(json, "\"busy_share\": 0.75"));
	assert_non_null(strstr(json, "\"halt_exits\": 33"));
	assert_non_null(strstr(json, "\"cmdline\": \"guest.mb tsc_khz=2000000"));
	assert_null(strstr(json, "start_ns"));	/* no host times */
	assert_null(strstr(json, "\"fault\"")); /* nobody faulted */
	free(json);
	free(sh);
}

static void test_dump_unfinished(void **state)
{
	struct tvm_shared *sh = make_dump(2);
	struct vms_testvm_fault fault;
	struct vms_testvm *vm;
	uint64_t s, e;
	bool complete;
	char *json;

	(void)state;
	/* vCPU 1 is still in phase 1: phase 0 is over, phase 1 is not */
	sh->vcpu[1].done = 0;
	sh->vcpu[1].ctl_mmio = 0;
	sh->vcpu[1].phase = 1;
	/* vCPU 0 reported a page fault instead of finishing */
	sh->vcpu[0].done = 0;
	sh->vcpu[0].fault_vector = 14;
	sh->vcpu[0].fault_rip = 0x101234;
	assert_int_equal(vms_testvm_open_dump(sh, vms_testvm_dump_size(2), NULL, &vm), 0);
	assert_int_equal(vms_testvm_phase_tsc(vm, 0, &s, &e, &complete), 0);
	assert_false(complete); /* vCPU 0 never got past it */
	assert_int_equal(vms_testvm_vcpu_fault(vm, 0, &fault), 0);
	assert_int_equal(fault.vector, 14);
	assert_int_equal(fault.rip, 0x101234);
	assert_int_equal(vms_testvm_vcpu_fault(vm, 1, &fault), -ENOENT);
	assert_false(vms_testvm_vcpu_done(vm, 1));
	vms_testvm_free(vm);
	sh->vcpu[0].done = 1; /* now only vCPU 1 runs, in phase 1 */
	sh->vcpu[0].ctl_mmio = 1;
	assert_int_equal(vms_testvm_open_dump(sh, vms_testvm_dump_size(2), NULL, &vm), 0);
	assert_int_equal(vms_testvm_phase_tsc(vm, 0, &s, &e, &complete), 0);
	assert_true(complete);
	assert_int_equal(vms_testvm_phase_tsc(vm, 1, &s, &e, &complete), 0);
	assert_false(complete);
	vms_testvm_free(vm);
	json = truth_of(sh, vms_testvm_dump_size(2), NULL);
	assert_non_null(strstr(json, "\"stopped_early\": true"));
	assert_non_null(strstr(json, "\"done\": false"));
	assert_null(strstr(json, "\"tid\"")); /* unknown: left out */
	assert_null(strstr(json, "vmm_totals"));
	free(json);
	free(sh);
}

static void test_dump_refused(void **state)
{
	enum {
		SHORT_HEADER,
		SHORT_VCPUS,
		MAGIC,
		BOOT_MAGIC,
		LAYOUT,
		REFUSED,
		BOOTING,
		NVCPUS,
		NPHASES,
		TSC,
		DUTY,
		ENDS_FIRST,
		NCASES
	};
	static const struct {
		int err;
		const char *msg;
	} want[NCASES] = {
		[SHORT_HEADER] = { -VMS_E_TESTVM_DUMP, "pmemsave 0x20000" },
		[SHORT_VCPUS] = { -VMS_E_TESTVM_DUMP, "the truth of 3 vCPUs takes" },
		[MAGIC] = { -VMS_E_TESTVM_DUMP, "no test VM shared block" },
		[BOOT_MAGIC] = { -VMS_E_TESTVM_DUMP, "not written by the multiboot guest" },
		[LAYOUT] = { -VMS_E_TESTVM_DUMP, "another vmscope version" },
		[REFUSED] = { -VMS_E_GUEST_BOOT, "unknown parameter ('foo=1')" },
		[BOOTING] = { -EAGAIN, "not finished booting" },
		[NVCPUS] = { -VMS_E_TESTVM_DUMP, "65 vCPUs" },
		[NPHASES] = { -VMS_E_TESTVM_DUMP, "0 phases" },
		[TSC] = { -VMS_E_TESTVM_DUMP, "TSC frequency 0 kHz" },
		[DUTY] = { -VMS_E_TESTVM_DUMP, "duty 101" },
		[ENDS_FIRST] = { -VMS_E_TESTVM_DUMP, "runs from" },
	};
	struct vms_testvm *vm;

	(void)state;
	for (int c = 0; c < NCASES; c++) {
		struct tvm_shared *sh = make_dump(3);
		size_t len = vms_testvm_dump_size(3);
		unsigned char *copy;
		int ret;

		switch (c) {
		case SHORT_HEADER:
			len = 100;
			break;
		case SHORT_VCPUS:
			len -= 1;
			break;
		case MAGIC:
			sh->magic = 0;
			break;
		case BOOT_MAGIC:
			sh->boot.magic = 0;
			break;
		case LAYOUT:
			sh->boot.vcpu_size = 4000;
			break;
		case REFUSED:
			strcpy(sh->boot.cmdline, "guest.mb tsc_khz=1000000 foo=1 pio=3");
			sh->boot.error = TVM_BOOT_E_UNKNOWN;
			sh->boot.error_pos = 25;
			break;
		case BOOTING:
			sh->nvcpus = 0;
			break;
		case NVCPUS:
			sh->nvcpus = 65;
			break;
		case NPHASES:
			sh->nphases = 0;
			break;
		case TSC:
			sh->tsc_khz = 0;
			break;
		case DUTY:
			sh->phases[1].duty = 101;
			break;
		case ENDS_FIRST:
			sh->phases[0].end_tsc = 5;
			break;
		}
		/* exactly @len bytes, so that ASan sees any read past them */
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, sh, len);
		vm = (struct vms_testvm *)1;
		ret = vms_testvm_open_dump(copy, len, NULL, &vm);
		if (ret != want[c].err || !strstr(vms_testvm_last_error(NULL), want[c].msg))
			fail_msg("case %d: %d '%s', expected %d '%s'", c, ret,
				 vms_testvm_last_error(NULL), want[c].err, want[c].msg);
		assert_null(vm);
		free(copy);
		free(sh);
	}
	assert_int_equal(vms_testvm_open_dump(NULL, 0, NULL, &vm), -VMS_E_TESTVM_DUMP);
	assert_int_equal(vms_testvm_open_dump(NULL, 5, NULL, &vm), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdline_roundtrip), cmocka_unit_test(test_cmdline_refused),
		cmocka_unit_test(test_guest_parser),	  cmocka_unit_test(test_dump_read_back),
		cmocka_unit_test(test_dump_unfinished),	  cmocka_unit_test(test_dump_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
