// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the data behind the HTML report's charts, on canned records: the interrupt
 * analysis (lib/analysis/irq.c) and the exit analysis's time bins (lib/analysis/exits.c).
 *
 * Each test writes a small .dat file with libvmscope's writers (the kernel's header_page
 * and header_event from tests/data/formats, the event formats of this host inline, records
 * made byte by byte), runs one session over it and checks every number: which source the
 * heatmap shows, rows per thread, destination and vector, the deasserts left out, the
 * second and sub-second bucket of interrupts on bucket edges, the options' limits; and
 * that time bins sum to the events, cover the trace in half to all of the bins asked for,
 * hold each exit in the bin of its time, and merge when rows are grouped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmscope/analysis.h"
#include "vmscope/exits.h"
#include "vmscope/irq.h"
#include "vmscope/trace-writer.h"

#define SEC 1000000000ULL
#define MS 1000000ULL

/* The formats of this host's kernel (6.18, x86-64), as in events/kvm/<event>/format. */
#define COMMON                                                                         \
	"format:\n"                                                                    \
	"\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"         \
	"\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"         \
	"\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n" \
	"\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"

static const char *const formats[] = {
	"name: kvm_set_irq\nID: 40\n" COMMON
	"\tfield:unsigned int gsi;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:int level;\toffset:12;\tsize:4;\tsigned:1;\n"
	"\tfield:int irq_source_id;\toffset:16;\tsize:4;\tsigned:1;\n\n"
	"print fmt: \"gsi %u level %d source %d\", REC->gsi, REC->level, REC->irq_source_id\n",
	"name: kvm_apic_accept_irq\nID: 95\n" COMMON
	"\tfield:__u32 apicid;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:__u16 dm;\toffset:12;\tsize:2;\tsigned:0;\n"
	"\tfield:__u16 tm;\toffset:14;\tsize:2;\tsigned:0;\n"
	"\tfield:__u8 vec;\toffset:16;\tsize:1;\tsigned:0;\n\n"
	"print fmt: \"apicid %x vec %u\", REC->apicid, REC->vec\n",
	"name: kvm_inj_virq\nID: 102\n" COMMON
	"\tfield:unsigned int vector;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:bool soft;\toffset:12;\tsize:1;\tsigned:0;\n"
	"\tfield:bool reinjected;\toffset:13;\tsize:1;\tsigned:0;\n\n"
	"print fmt: \"%s 0x%x%s\", REC->soft ? \"Soft/INTn\" : \"IRQ\", REC->vector, "
	"REC->reinjected ? \" [reinjected]\" : \"\"\n",
	"name: kvm_exit\nID: 103\n" COMMON
	"\tfield:unsigned int exit_reason;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:unsigned long guest_rip;\toffset:16;\tsize:8;\tsigned:0;\n"
	"\tfield:u32 isa;\toffset:24;\tsize:4;\tsigned:0;\n\n"
	"print fmt: \"reason %u\", REC->exit_reason\n",
	"name: kvm_msi_set_irq\nID: 105\n" COMMON
	"\tfield:__u64 address;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:__u64 data;\toffset:16;\tsize:8;\tsigned:0;\n\n"
	"print fmt: \"dst %llx vec %u\", REC->address, (u8)REC->data\n",
	"name: kvm_entry\nID: 115\n" COMMON
	"\tfield:unsigned int vcpu_id;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:unsigned long rip;\toffset:16;\tsize:8;\tsigned:0;\n\n"
	"print fmt: \"vcpu %u\", REC->vcpu_id\n",
};

enum { SET_IRQ = 40, APIC_ACCEPT = 95, INJ_VIRQ = 102, EXIT = 103, MSI = 105, ENTRY = 115 };

/* A trace being written: one CPU, records in time order. */
struct canned {
	char path[64];
	struct vms_dat_writer *w;
	struct vms_page_writer *pw;
};

static int emit(void *ctx, const void *page, size_t size)
{
	(void)size;
	return vms_dat_writer_add_page(ctx, 0, page);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void canned_open(struct canned *c)
{
	struct vms_dat_writer_opts o = { .sz = sizeof(o), .ncpus = 1 };
	char *hp = slurp(FORMATS_DIR "/header_page"), *he = slurp(FORMATS_DIR "/header_event");
	int fd;

	snprintf(c->path, sizeof(c->path), "/tmp/vmscope-test-irq-XXXXXX");
	fd = mkstemp(c->path);
	assert_true(fd >= 0);
	close(fd);
	o.header_page = hp;
	o.header_event = he;
	assert_int_equal(vms_dat_writer_open(c->path, &o, &c->w), 0);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		assert_int_equal(
			vms_dat_writer_add_format(c->w, "kvm", formats[i], strlen(formats[i])), 0);
	assert_int_equal(vms_page_writer_new(4096, emit, c->w, &c->pw), 0);
	free(hp);
	free(he);
}

/* A record of event @id by thread @pid at @ts: the common fields, then @n bytes of @fields
 * at offset 8. */
static void rec(struct canned *c, uint64_t ts, uint16_t id, int32_t pid, const void *fields,
		size_t n)
{
	uint8_t buf[64] = { 0 };

	memcpy(buf, &id, 2);
	memcpy(buf + 4, &pid, 4);
	memcpy(buf + 8, fields, n);
	assert_int_equal(vms_page_writer_add(c->pw, ts, buf, 8 + n), 0);
}

static void set_irq(struct canned *c, uint64_t ts, int pid, uint32_t gsi, int32_t level)
{
	uint32_t f[3] = { gsi, (uint32_t)level, 0 };

	rec(c, ts, SET_IRQ, pid, f, sizeof(f));
}

static void msi(struct canned *c, uint64_t ts, int pid, uint64_t address, uint64_t data)
{
	uint64_t f[2] = { address, data };

	rec(c, ts, MSI, pid, f, sizeof(f));
}

static void apic_accept(struct canned *c, uint64_t ts, int pid, uint32_t apicid, uint8_t vec)
{
	uint8_t f[9] = { 0 };

	memcpy(f, &apicid, 4);
	f[8] = vec;
	rec(c, ts, APIC_ACCEPT, pid, f, sizeof(f));
}

static void inj_virq(struct canned *c, uint64_t ts, int pid, uint32_t vector)
{
	rec(c, ts, INJ_VIRQ, pid, &vector, 4);
}

static void kvm_exit(struct canned *c, uint64_t ts, int pid, uint32_t reason)
{
	uint8_t f[20] = { 0 };
	uint32_t isa = 1;

	memcpy(f, &reason, 4);
	memcpy(f + 16, &isa, 4);
	rec(c, ts, EXIT, pid, f, sizeof(f));
}

/* Close the file and open a session on it with analysis @ops (@opts); *priv its state. */
static int canned_session(struct canned *c, const struct vms_analysis_ops *ops, const void *opts,
			  struct vms_trace **tr, struct vms_session **s, void **priv)
{
	int ret;

	assert_int_equal(vms_page_writer_flush(c->pw), 0);
	vms_page_writer_free(c->pw);
	assert_int_equal(vms_dat_writer_close(c->w), 0);
	assert_int_equal(vms_trace_open(c->path, NULL, tr), 0);
	unlink(c->path);
	assert_int_equal(vms_session_new(*tr, s), 0);
	ret = vms_session_add(*s, ops, opts, priv);
	if (!ret)
		assert_int_equal(vms_session_run(*s, NULL, NULL), 0);
	return ret;
}

static const struct vms_irq_row *find_row(const void *priv, enum vms_irq_source src, int tid,
					  uint32_t key)
{
	size_t n;
	const struct vms_irq_row *r = vms_irq_rows(priv, &n);

	for (size_t i = 0; i < n; i++)
		if (r[i].source == src && r[i].tid == tid && r[i].key == key)
			return &r[i];
	return NULL;
}

static size_t find_series(const void *priv, enum vms_irq_source src, uint32_t key)
{
	size_t n;
	const struct vms_irq_series *s = vms_irq_series(priv, &n);

	for (size_t i = 0; i < n; i++)
		if (s[i].source == src && s[i].key == key)
			return i;
	fail_msg("no series %d/%u", src, key);
	return 0;
}

/* Without kvm_inj_virq or kvm_apic_accept_irq, the heatmap shows raised lines and MSIs. */
static void test_irq_lines(void **state)
{
	struct canned c;
	struct vms_trace *tr;
	struct vms_session *s;
	struct vms_irq_summary sum;
	const struct vms_irq_row *r;
	size_t gsi0, m41, n;
	void *priv;

	(void)state;
	canned_open(&c);
	set_irq(&c, 5 * SEC + 990 * MS, 100, 0, 1);		 /* second 0, bucket 49 */
	set_irq(&c, 5 * SEC + 991 * MS, 100, 0, 0);		 /* a deassert */
	msi(&c, 6 * SEC + 20 * MS - 1, 200, 0xfee01000, 0x4041); /* second 1, bucket 0 */
	msi(&c, 6 * SEC + 20 * MS, 200, 0xfee01000, 0x4041);	 /* bucket 1: its first ns */
	msi(&c, 6 * SEC + 20 * MS, 201, 0xfee02000, 0x41);	 /* another thread, APIC 2 */
	set_irq(&c, 7 * SEC + 500 * MS, 100, 4, 0);		 /* the last record */
	assert_int_equal(canned_session(&c, &vms_irq_ops, NULL, &tr, &s, &priv), 0);
	vms_irq_summary(priv, &sum);
	assert_int_equal(sum.events[VMS_IRQ_SET_IRQ], 1);
	assert_int_equal(sum.events[VMS_IRQ_MSI], 3);
	assert_int_equal(sum.events[VMS_IRQ_INJ_VIRQ] + sum.events[VMS_IRQ_APIC_ACCEPT], 0);
	assert_int_equal(sum.deasserts, 2);
	assert_int_equal(sum.heatmap_sources, 1u << VMS_IRQ_SET_IRQ | 1u << VMS_IRQ_MSI);
	assert_true(sum.has_format[VMS_IRQ_INJ_VIRQ] && sum.has_format[VMS_IRQ_APIC_ACCEPT]);
	assert_int_equal(sum.first_second, 5);
	assert_int_equal(sum.seconds, 3);
	assert_int_equal(sum.buckets, VMS_IRQ_DEFAULT_BUCKETS);
	assert_int_equal(sum.bucket_ns, 20 * MS);
	assert_int_equal(sum.span_ns, 7 * SEC + 500 * MS - (5 * SEC + 990 * MS));
	assert_int_equal(sum.error, 0);
	vms_irq_rows(priv, &n);
	assert_int_equal(n, 3);
	r = find_row(priv, VMS_IRQ_SET_IRQ, 100, 0);
	assert_non_null(r);
	assert_int_equal(r->count, 1);
	assert_int_equal(r->dest, -1);
	r = find_row(priv, VMS_IRQ_MSI, 200, 0x41);
	assert_non_null(r);
	assert_int_equal(r->count, 2);
	assert_int_equal(r->dest, 1);
	assert_int_equal(r->first_ts, 6 * SEC + 20 * MS - 1);
	assert_int_equal(r->last_ts, 6 * SEC + 20 * MS);
	r = find_row(priv, VMS_IRQ_MSI, 201, 0x41);
	assert_non_null(r);
	assert_int_equal(r->dest, 2);
	vms_irq_series(priv, &n);
	assert_int_equal(n, 2);
	gsi0 = find_series(priv, VMS_IRQ_SET_IRQ, 0);
	m41 = find_series(priv, VMS_IRQ_MSI, 0x41);
	assert_int_equal(vms_irq_series(priv, &n)[m41].count, 3);
	assert_int_equal(vms_irq_cell(priv, gsi0, 0, 49), 1);
	assert_int_equal(vms_irq_cell(priv, gsi0, 0, 48), 0);
	assert_int_equal(vms_irq_cell(priv, m41, 1, 0), 1);
	assert_int_equal(vms_irq_cell(priv, m41, 1, 1), 2);
	assert_int_equal(vms_irq_cell(priv, m41, 0, 1), 0);
	/* outside the map */
	assert_int_equal(vms_irq_cell(priv, m41, 3, 1), 0);
	assert_int_equal(vms_irq_cell(priv, m41, 1, 50), 0);
	assert_int_equal(vms_irq_cell(priv, 2, 1, 1), 0);
	vms_session_free(s);
	vms_trace_close(tr);
}

/* kvm_apic_accept_irq outranks raised lines; kvm_inj_virq outranks both. */
static void test_irq_primary(void **state)
{
	struct canned c;
	struct vms_trace *tr;
	struct vms_session *s;
	struct vms_irq_summary sum;
	const struct vms_irq_row *r;
	void *priv;

	(void)state;
	canned_open(&c);
	set_irq(&c, 1 * SEC, 100, 0, 1);
	apic_accept(&c, 1 * SEC + 1, 100, 3, 0xec);
	assert_int_equal(canned_session(&c, &vms_irq_ops, NULL, &tr, &s, &priv), 0);
	vms_irq_summary(priv, &sum);
	assert_int_equal(sum.heatmap_sources, 1u << VMS_IRQ_APIC_ACCEPT);
	r = find_row(priv, VMS_IRQ_APIC_ACCEPT, 100, 0xec);
	assert_non_null(r);
	assert_int_equal(r->dest, 3);
	vms_session_free(s);
	vms_trace_close(tr);

	canned_open(&c);
	apic_accept(&c, 1 * SEC, 100, 0, 0xec);
	inj_virq(&c, 1 * SEC + 5, 300, 0xec);
	inj_virq(&c, 2 * SEC + 999 * MS, 300, 0x22);
	assert_int_equal(canned_session(&c, &vms_irq_ops,
					&(struct vms_irq_opts){ sizeof(struct vms_irq_opts), 1000 },
					&tr, &s, &priv),
			 0);
	vms_irq_summary(priv, &sum);
	assert_int_equal(sum.heatmap_sources, 1u << VMS_IRQ_INJ_VIRQ);
	assert_int_equal(sum.events[VMS_IRQ_INJ_VIRQ], 2);
	assert_int_equal(sum.bucket_ns, MS);
	assert_int_equal(sum.seconds, 2);
	assert_int_equal(vms_irq_cell(priv, find_series(priv, VMS_IRQ_INJ_VIRQ, 0x22), 1, 999), 1);
	assert_int_equal(find_row(priv, VMS_IRQ_INJ_VIRQ, 300, 0xec)->dest, -1);
	vms_session_free(s);
	vms_trace_close(tr);
}

/* Buckets must divide a second into whole milliseconds. */
static void test_irq_opts(void **state)
{
	static const unsigned int bad[] = { 7, 2000, 3 };
	struct canned c;
	struct vms_trace *tr;
	struct vms_session *s;
	void *priv;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		canned_open(&c);
		set_irq(&c, SEC, 1, 0, 1);
		assert_int_equal(canned_session(&c, &vms_irq_ops,
						&(struct vms_irq_opts){ sizeof(struct vms_irq_opts),
									bad[i] },
						&tr, &s, &priv),
				 -EINVAL);
		vms_session_free(s);
		vms_trace_close(tr);
	}
}

/* Exits over time: 100 to 200 bins of a power of two ns, each exit in the bin of its time. */
static void test_exit_bins(void **state)
{
	struct vms_exits_opts o = { sizeof(o), VMS_EXITS_VMEXIT, -1, VMS_X86_VMX, 200 };
	const uint64_t t0 = 10 * SEC + 123;
	struct vms_exits_summary sum;
	struct vms_exits_row *g;
	struct canned c;
	struct vms_trace *tr;
	struct vms_session *s;
	uint64_t want[200] = { 0 }, total = 0, ts;
	size_t n, ng;
	const struct vms_exits_row *rows;
	void *priv;

	(void)state;
	canned_open(&c);
	/* 10000 exits of two threads and two reasons over 3.7 s, the gaps growing */
	ts = t0;
	for (int i = 0; i < 10000; i++) {
		kvm_exit(&c, ts, 500 + i % 2, i % 3 ? 12 : 30);
		ts += 20000 + (uint64_t)i * 7;
	}
	assert_int_equal(canned_session(&c, &vms_exits_ops, &o, &tr, &s, &priv), 0);
	vms_exits_summary(priv, &sum);
	assert_int_equal(sum.events, 10000);
	assert_int_equal(sum.bin_start_ts, t0);
	assert_true(sum.nbins >= 100 && sum.nbins <= 200);
	assert_int_equal(sum.bin_ns & (sum.bin_ns - 1), 0);
	ts = t0;
	for (int i = 0; i < 10000; i++) {
		want[(ts - t0) / sum.bin_ns]++;
		ts += 20000 + (uint64_t)i * 7;
	}
	rows = vms_exits_rows(priv, &n);
	assert_int_equal(n, 4);
	assert_int_equal(vms_exits_group(priv, VMS_EXITS_BY_KEY, NULL, NULL, -1, &g, &ng), 0);
	assert_int_equal(ng, 2);
	for (unsigned int b = 0; b < 200; b++) {
		uint64_t got = 0, grouped = 0;

		for (size_t i = 0; i < n; i++)
			got += rows[i].bins[b];
		for (size_t i = 0; i < ng; i++)
			grouped += g[i].bins[b];
		assert_int_equal(got, want[b]);
		assert_int_equal(grouped, want[b]);
		total += got;
		if (b >= sum.nbins)
			assert_int_equal(got, 0);
	}
	assert_int_equal(total, 10000);
	for (size_t i = 0; i < ng; i++) {
		uint64_t k = 0;

		for (unsigned int b = 0; b < sum.nbins; b++)
			k += g[i].bins[b];
		assert_int_equal(k, g[i].events);
	}
	vms_exits_rows_free(g, ng);
	vms_session_free(s);
	vms_trace_close(tr);

	/* no bins unless asked for; an odd or too large number is refused */
	canned_open(&c);
	kvm_exit(&c, SEC, 500, 12);
	o.bins = 0;
	assert_int_equal(canned_session(&c, &vms_exits_ops, &o, &tr, &s, &priv), 0);
	rows = vms_exits_rows(priv, &n);
	assert_int_equal(n, 1);
	assert_null(rows[0].bins);
	vms_exits_summary(priv, &sum);
	assert_int_equal(sum.nbins, 0);
	vms_session_free(s);
	vms_trace_close(tr);
	for (unsigned int bad = 201; bad <= VMS_EXITS_MAX_BINS + 2;
	     bad += VMS_EXITS_MAX_BINS - 199) {
		canned_open(&c);
		kvm_exit(&c, SEC, 500, 12);
		o.bins = bad;
		assert_int_equal(canned_session(&c, &vms_exits_ops, &o, &tr, &s, &priv), -EINVAL);
		vms_session_free(s);
		vms_trace_close(tr);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_irq_lines),
		cmocka_unit_test(test_irq_primary),
		cmocka_unit_test(test_irq_opts),
		cmocka_unit_test(test_exit_bins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
