// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope report --html: one self-contained page per trace, with the charts people would
 * rather look at than read: the time of each vCPU by state, exit-latency histograms of
 * the top exit reasons, exits over time, and the heatmap of interrupts by sub-second
 * offset (seed 003). Inline CSS and SVG only: no script, no external resource; every
 * mark carries its number in data-* attributes and a <title> tooltip, so a test (or a
 * person) can check each one against the text reports of the same file.
 *
 * The analyses run in one pass over the trace: the vCPU state model, the exit analysis
 * with time bins (and a second one of exits to user space, shown when the trace has no
 * kvm_exit, as on KVM-PVM hosts), and the interrupt analysis. The page goes to a
 * temporary file beside the output, renamed over it once complete: an old page is never
 * half overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "vmscope/irq.h"
#include "vmscope/vcpu.h"

#define CMD "report"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define EXIT_BINS 200	     /* exits over time: 100 to 200 bins across the trace */
#define TOP_HIST 6	     /* latency histograms of the top reasons */
#define TOP_TIMELINE 7	     /* reasons of their own in exits over time; the rest: other */
#define HEAT_FAMILIES 8	     /* heatmap series with a hue of their own; the rest: other */
#define HEAT_MAX_COLUMNS 240 /* more seconds than this share a column */
#define CHART_W 1100	     /* the width of every chart, px */

struct page {
	FILE *f;
	const struct report_args *a;
	struct vms_trace *tr;
	const struct vms_vmmap *map;
	void *vcpu, *irq;
	struct vms_vcpu_summary vsum;
	/* the exits shown, grouped by key, most events first */
	const void *xpriv;
	enum vms_exits_event xevent;
	bool xfallback; /* no kvm_exit: exits to user space shown instead */
	struct vms_exits_summary xsum;
	struct vms_exits_row *x;
	size_t nx;
	struct vms_irq_summary isum;
	uint64_t first_ts, last_ts;
	const char *error;
};

/* ---- text ---- */

/* @s with &, <, >, " and ' escaped for HTML text and attributes. */
static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* @s escaped as esc() does, into @buf (cut to fit): for attribute values. */
static const char *attr(const char *s, char *buf, size_t len)
{
	FILE *m = fmemopen(buf, len, "w");

	buf[0] = '\0';
	if (!m)
		return buf;
	setvbuf(m, NULL, _IONBF, 0);
	esc(m, s);
	fclose(m);
	buf[len - 1] = '\0';
	return buf;
}

/* "1,234,567" */
static const char *fmt_count(uint64_t v, char *buf, size_t len)
{
	char tmp[32];
	size_t n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRIu64, v), o = 0;

	for (size_t i = 0; i < n && o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

/* "850 ns", "12.3 µs", "4.56 ms", "1.23 s" */
static const char *fmt_ns(double v, char *buf, size_t len)
{
	if (v < 1e3)
		snprintf(buf, len, "%.0f ns", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.3g µs", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, len, "%.3g ms", v / 1e6);
	else
		snprintf(buf, len, "%.3g s", v / 1e9);
	return buf;
}

/* An axis step of 1, 2 or 5 times a power of ten that cuts @range in about @n. */
static double nice_step(double range, int n)
{
	double raw = range > 0 ? range / n : 1, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

/* "1.5k", "20", "0.5": an axis label */
static const char *fmt_tick(double v, char *buf, size_t len)
{
	if (fabs(v) >= 1e6)
		snprintf(buf, len, "%gM", v / 1e6);
	else if (fabs(v) >= 1e4)
		snprintf(buf, len, "%gk", v / 1e3);
	else
		snprintf(buf, len, "%g", v);
	return buf;
}

/* ---- what Linux guests use some vectors and GSIs for (legend hints only) ---- */

static const char *hint(enum vms_irq_source s, uint32_t key)
{
	static const struct {
		uint32_t vec;
		const char *what;
	} vec[] = {
		{ 0xec, "Linux: local timer" },
		{ 0xfd, "Linux: reschedule IPI" },
		{ 0xfc, "Linux: call-function IPI" },
		{ 0xfb, "Linux: call-function-single IPI" },
		{ 0xf6, "Linux: irq work" },
		{ 0xf2, "Linux: posted interrupt" },
		{ 0xf3, "Linux: hypervisor callback" },
		{ 0xfe, "Linux: APIC error" },
		{ 0xff, "spurious" },
	};
	static const char *const gsi[] = { [0] = "PIT timer", [1] = "keyboard", [4] = "COM1",
					   [3] = "COM2",      [8] = "RTC",	[9] = "ACPI" };

	if (s == VMS_IRQ_SET_IRQ)
		return key < ARRAY_SIZE(gsi) ? gsi[key] : NULL;
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++)
		if (vec[i].vec == key)
			return vec[i].what;
	return NULL;
}

/* ---- page frame ---- */

static const char css[] =
	":root{--ink:#1d2733;--muted:#5b6877;--line:#dfe4ea;--bg:#f4f6f9;--card:#fff;"
	"--accent:#2f6fdf;--warn:#b3261e}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;background:var(--bg);color:var(--ink);"
	"font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
	"sans-serif}\n"
	"header.top{background:#16202b;color:#fff;padding:22px 0 18px}\n"
	".wrap{max-width:1180px;margin:0 auto;padding:0 24px}\n"
	".brand{font-weight:700;letter-spacing:.08em;text-transform:uppercase;font-size:12px;"
	"color:#8fb4ff}\n"
	"h1{margin:4px 0 2px;font-size:24px;font-weight:600}\n"
	".sub{color:#b8c4d2;font-size:13px;word-break:break-all}\n"
	"nav{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:1}\n"
	"nav a{display:inline-block;padding:10px 14px 9px;color:var(--muted);"
	"text-decoration:none;border-bottom:2px solid transparent}\n"
	"nav a:hover{color:var(--accent);border-color:var(--accent)}\n"
	"section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;"
	"margin:20px 0;padding:18px 22px;box-shadow:0 1px 2px rgba(20,30,40,.05)}\n"
	"h2{margin:0 0 4px;font-size:18px;font-weight:600}\n"
	"p.lead{margin:0 0 12px;color:var(--muted);max-width:900px}\n"
	"dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));"
	"gap:10px 24px;margin:0}\n"
	"dl.facts div{border-left:3px solid var(--line);padding-left:10px}\n"
	"dt{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}\n"
	"dd{margin:0;font-variant-numeric:tabular-nums;word-break:break-word}\n"
	"ul.unseen{margin:8px 0 0;padding-left:20px}\n"
	"ul.unseen li{margin:3px 0}\n"
	".alert{border-left:4px solid var(--warn);background:#fdf0ef;padding:8px 12px;"
	"margin:10px 0;border-radius:4px}\n"
	".empty{color:var(--muted);font-style:italic;padding:18px 0}\n"
	"svg.chart{display:block;max-width:100%;height:auto;margin-top:6px}\n"
	"svg text{font:12px system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
	"fill:#3a4654}\n"
	"svg .axis line,svg .axis path{stroke:#9aa6b2;stroke-width:1}\n"
	"svg .grid line{stroke:#edf0f3;stroke-width:1}\n"
	"svg .title{font-weight:600;fill:#1d2733}\n"
	"svg .small{font-size:11px;fill:#5b6877}\n"
	"svg rect.mark:hover{stroke:#111;stroke-width:1}\n"
	"footer{color:var(--muted);font-size:12px;padding:10px 0 40px}\n"
	"code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;"
	"padding:1px 4px;border-radius:3px}\n";

static void page_begin(struct page *p)
{
	const char *base = strrchr(p->a->file, '/');

	base = base ? base + 1 : p->a->file;
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
	      p->f);
	fprintf(p->f, "<meta name=\"generator\" content=\"vmscope %s\">\n<title>vmscope report — ",
		vms_version());
	esc(p->f, base);
	fprintf(p->f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
	fputs("<header class=\"top\"><div class=\"wrap\"><div class=\"brand\">vmscope report</div>"
	      "<h1>",
	      p->f);
	esc(p->f, base);
	fputs("</h1><div class=\"sub\">", p->f);
	esc(p->f, p->a->file);
	fprintf(p->f, " · vmscope %s</div></div></header>\n", vms_version());
	fputs("<nav><div class=\"wrap\"><a href=\"#trace\">Trace</a><a href=\"#states\">vCPU "
	      "states</a><a href=\"#latency\">Exit latency</a><a href=\"#timeline\">Exits over "
	      "time</a><a href=\"#heatmap\">Interrupt heatmap</a></div></nav>\n<main "
	      "class=\"wrap\">\n",
	      p->f);
}

static void page_end(struct page *p)
{
	fputs("<footer>The numbers behind each chart are in the data-* attributes of its marks "
	      "and in vmscope's text reports of the same file: <code>vmscope report vcpu</code>, "
	      "<code>vmscope report exits",
	      p->f);
	if (p->xevent != VMS_EXITS_VMEXIT)
		fprintf(p->f, " -e %s", vms_exits_event_name(p->xevent));
	fprintf(p->f,
		"</code>, <code>vmscope report irq --heatmap</code> (each with "
		"<code>--format json</code>). Made by vmscope %s.</footer>\n</main>\n"
		"</body>\n</html>\n",
		vms_version());
}

static void fact(struct page *p, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One "name: value" of the header; the value is escaped. */
static void fact(struct page *p, const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(p->f, "<div><dt>%s</dt><dd>", name);
	esc(p->f, buf);
	fputs("</dd></div>\n", p->f);
}

static uint64_t irq_total(const struct vms_irq_summary *s)
{
	uint64_t n = 0;

	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		n += s->events[k];
	return n;
}

/* The header: what the file is, and what the report could not see. */
static void trace_facts(struct page *p)
{
	const struct vms_trace_info *in = vms_trace_info(p->tr);
	size_t nvms = p->map ? vms_vmmap_nvms(p->map) : 0, nth;
	char b1[32], b2[32], vms[256] = "";
	uint64_t span = p->last_ts > p->first_ts ? p->last_ts - p->first_ts : 0;
	const struct vms_vcpu_thread *th = vms_vcpu_threads(p->vcpu, &nth);
	bool any = false;

	for (size_t i = 0; i < nvms; i++) {
		int n = 0;

		for (size_t k = 0; k < nth; k++)
			n += th[k].vm == (int)i;
		snprintf(vms + strlen(vms), sizeof(vms) - strlen(vms), "%s%s (%d vCPU%s)",
			 i ? ", " : "", vms_vmmap_vm_name(p->map, (int)i), n, n == 1 ? "" : "s");
	}
	fputs("<section class=\"card\" id=\"trace\"><h2>Trace</h2>\n<dl class=\"facts\">\n", p->f);
	fact(p, "File", "%s (%.1f MiB)", p->a->file, (double)in->file_size / 1048576.0);
	fact(p, "Format", "trace-cmd version %d, %s%s%s%s", in->version,
	     strcmp(in->compression, "none") ? in->compression : "uncompressed",
	     in->buffer[0] ? ", buffer \"" : "", in->buffer, in->buffer[0] ? "\"" : "");
	fact(p, "Clock", "%s", in->clock);
	fact(p, "Host CPUs", "%u", in->ncpus);
	fact(p, "Records", "%s", fmt_count(vms_trace_events_read(p->tr), b1, sizeof(b1)));
	fact(p, "Span", "%.3f s (%.6f s to %.6f s of the clock)", (double)span / 1e9,
	     (double)p->first_ts / 1e9, (double)p->last_ts / 1e9);
	if (p->vsum.lost_windows)
		fact(p, "Lost events", "%s in %s windows",
		     fmt_count(p->vsum.lost_events, b1, sizeof(b1)),
		     fmt_count(p->vsum.lost_windows, b2, sizeof(b2)));
	else
		fact(p, "Lost events", "none");
	fact(p, "VMs", "%s", nvms ? vms : "the file does not name them");
	fact(p, "vCPU threads", "%zu", nth);
	fact(p, "Exits", "%s %s (%s timed)", fmt_count(p->xsum.events, b1, sizeof(b1)),
	     vms_exits_event_name(p->xevent), fmt_count(p->xsum.samples, b2, sizeof(b2)));
	fact(p, "Interrupts", "%s", fmt_count(irq_total(&p->isum), b1, sizeof(b1)));
	fputs("</dl>\n", p->f);
	if (p->error) {
		fputs("<div class=\"alert\"><b>The trace is damaged:</b> ", p->f);
		esc(p->f, p->error);
		fputs(". Everything below covers the records before the damage.</div>\n", p->f);
	}
	fputs("<h2 style=\"margin-top:14px;font-size:15px\">What this report did not see</h2>\n"
	      "<ul class=\"unseen\">\n",
	      p->f);
	if (p->error) {
		fputs("<li>Everything after the damage named above.</li>\n", p->f);
		any = true;
	}
	if (p->vsum.lost_windows) {
		fprintf(p->f,
			"<li>%s events lost in %s windows (ring-buffer overruns): the vCPUs' "
			"state there is <i>unknown</i>, exits that may end in them are not "
			"timed, interrupts in them are not counted.</li>\n",
			fmt_count(p->vsum.lost_events, b1, sizeof(b1)),
			fmt_count(p->vsum.lost_windows, b2, sizeof(b2)));
		any = true;
	}
	if (!p->vsum.has_entry_exit) {
		fputs("<li>No kvm_entry or kvm_exit (KVM-PVM hosts never emit them): guest, "
		      "hypervisor and vmm time are one state, <i>running</i>, and no exit can be "
		      "timed.</li>\n",
		      p->f);
		any = true;
	}
	if (p->xfallback) {
		fputs("<li>No kvm_exit: the exit charts show the exits to user space "
		      "(kvm_userspace_exit) instead.</li>\n",
		      p->f);
		any = true;
	}
	/* untimed exits, where a kvm_entry could have timed them */
	if (p->xsum.entries && p->xsum.before_first_entry) {
		fprintf(p->f,
			"<li>%s exits came before their thread's first kvm_entry: counted, not "
			"timed.</li>\n",
			fmt_count(p->xsum.before_first_entry, b1, sizeof(b1)));
		any = true;
	}
	if (p->xsum.entries && p->xsum.unfinished) {
		fprintf(p->f,
			"<li>%s exits had no end (the trace ended, or another exit began "
			"first): counted, not timed.</li>\n",
			fmt_count(p->xsum.unfinished, b1, sizeof(b1)));
		any = true;
	}
	if (p->xsum.dropped_lost) {
		fprintf(p->f,
			"<li>%s exits were not timed because their end may lie in a lost "
			"window.</li>\n",
			fmt_count(p->xsum.dropped_lost, b1, sizeof(b1)));
		any = true;
	}
	if (p->vsum.inferred) {
		fprintf(p->f,
			"<li>%s switch-ins of vCPU threads were missing from the trace and "
			"inferred from the threads' own events; they may misplace up to %.3f ms "
			"in all.</li>\n",
			fmt_count(p->vsum.inferred, b1, sizeof(b1)),
			(double)p->vsum.uncertain_ns / 1e6);
		any = true;
	}
	if (!p->isum.events[VMS_IRQ_INJ_VIRQ] && irq_total(&p->isum)) {
		fprintf(p->f, "<li>%s: the heatmap shows the interrupts KVM %s instead.</li>\n",
			p->isum.has_format[VMS_IRQ_INJ_VIRQ]
				? "kvm_inj_virq never fired (KVM-PVM hosts never emit it)"
				: "kvm_inj_virq was not recorded",
			p->isum.heatmap_sources & 1u << VMS_IRQ_APIC_ACCEPT
				? "accepted in the vCPUs' local APICs (kvm_apic_accept_irq)"
				: "raised on GSI lines and by MSIs (kvm_set_irq, kvm_msi_set_irq)");
		any = true;
	}
	if (!irq_total(&p->isum)) {
		fputs("<li>No interrupt event (kvm_inj_virq, kvm_apic_accept_irq, kvm_msi_set_irq, "
		      "kvm_set_irq) was recorded or fired.</li>\n",
		      p->f);
		any = true;
	}
	if (vms_trace_event_id(p->tr, "sched", "sched_switch") < 0) {
		fputs("<li>No sched_switch: when the vCPUs were preempted, waiting or asleep "
		      "cannot be seen.</li>\n",
		      p->f);
		any = true;
	}
	if (!any)
		fputs("<li>Nothing: no damage, no lost events; every state split, every exit "
		      "timed.</li>\n",
		      p->f);
	fputs("</ul>\n</section>\n", p->f);
}

/* ---- SVG helpers ---- */

static void svg_begin(struct page *p, const char *id, int h, const char *label)
{
	fprintf(p->f,
		"<svg class=\"chart\" id=\"%s\" data-chart=\"%s\" xmlns=\"http://www.w3.org/2000/"
		"svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"aria-label=\"",
		id, id + 6, CHART_W, h, CHART_W, h);
	esc(p->f, label);
	fputs("\">\n", p->f);
}

/* <text> at (@x, @y), anchored "start" (NULL), "middle" or "end", of CSS class @cls or none. */
static void text(FILE *f, double x, double y, const char *anchor, const char *cls, const char *s)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"", x, y);
	if (anchor)
		fprintf(f, " text-anchor=\"%s\"", anchor);
	if (cls)
		fprintf(f, " class=\"%s\"", cls);
	fputs(">", f);
	esc(f, s);
	fputs("</text>\n", f);
}

/* A linear y axis from 0 to @max (and its grid) over [@y0 (top), @y1] at x = @x0 .. @x1. */
static double y_axis(FILE *f, double x0, double x1, double y0, double y1, double max,
		     const char *label)
{
	double step = nice_step(max, 5), top = ceil(max / step) * step;
	char buf[32];

	if (top <= 0)
		top = step;
	fputs("<g class=\"grid\">", f);
	for (double v = step; v <= top + step / 2; v += step) {
		double y = y1 - (y1 - y0) * v / top;

		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x0, x1, y, y);
	}
	fputs("</g>\n<g class=\"axis\">", f);
	fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/></g>\n", x0, x0, y0, y1);
	for (double v = 0; v <= top + step / 2; v += step)
		text(f, x0 - 6, y1 - (y1 - y0) * v / top + 4, "end", "small",
		     fmt_tick(v, buf, sizeof(buf)));
	if (label)
		fprintf(f,
			"<text class=\"small\" transform=\"translate(%.1f %.1f) rotate(-90)\" "
			"text-anchor=\"middle\">%s</text>\n",
			x0 - 44, (y0 + y1) / 2, label);
	return top;
}

/* ---- chart 1: where each vCPU's time went ---- */

static const char *const state_color[VMS_VCPU_NSTATES] = {
	[VMS_VCPU_GUEST] = "#2e7d32",	    [VMS_VCPU_HYPERVISOR] = "#f57c00",
	[VMS_VCPU_VMM] = "#8e24aa",	    [VMS_VCPU_RUNNING] = "#26a69a",
	[VMS_VCPU_PREEMPTED] = "#e53935",   [VMS_VCPU_WAITING] = "#fbc02d",
	[VMS_VCPU_IDLE] = "#cfd8dc",	    [VMS_VCPU_BLOCKED] = "#78909c",
	[VMS_VCPU_UNKNOWN] = "url(#hatch)",
};

struct vrow {
	const struct vms_vcpu_thread *th;
	int vm;
	uint64_t span;
};

static int vrow_cmp(const void *pa, const void *pb)
{
	const struct vrow *a = pa, *b = pb;

	if (a->vm != b->vm)
		return a->vm < b->vm ? -1 : 1;
	if (a->th->vcpu != b->th->vcpu)
		return a->th->vcpu < b->th->vcpu ? -1 : 1;
	return a->th->tid < b->th->tid ? -1 : a->th->tid > b->th->tid;
}

static int chart_states(struct page *p)
{
	size_t n;
	const struct vms_vcpu_thread *th = vms_vcpu_threads(p->vcpu, &n);
	struct vrow *rows = calloc(n ? n : 1, sizeof(*rows));
	const double x0 = 210, x1 = 990, top = 44, rh = 28, bh = 18;
	bool used[VMS_VCPU_NSTATES] = { false };
	char lab[160], t1[32], t2[32];
	double lx = x0;
	int h = (int)(top + rh * (double)n + 40);

	if (!rows)
		return -ENOMEM;
	fputs("<section class=\"card\" id=\"states\"><h2>Where the vCPUs' time went</h2>\n"
	      "<p class=\"lead\">Each vCPU thread's time from its first event to the end of the "
	      "trace, by state of the vCPU state model (host events only): in the guest, in the "
	      "hypervisor or the VMM handling an exit (or <i>running</i>, all three, when the "
	      "trace cannot split them), preempted by other host work, waiting for a CPU after a "
	      "wakeup, idle after a halt, blocked, or unknown after lost events.</p>\n",
	      p->f);
	if (!n) {
		fputs("<p class=\"empty\">No vCPU thread in this trace (no kvm event, no thread "
		      "named \"CPU n/KVM\", and no VM map in the file).</p>\n</section>\n",
		      p->f);
		free(rows);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		rows[i].th = &th[i];
		rows[i].vm = th[i].vm >= 0 ? th[i].vm
					   : (p->map ? vms_vmmap_vm_of_tid(p->map, th[i].tid) : -1);
		for (int s = 0; s < VMS_VCPU_NSTATES; s++) {
			rows[i].span += th[i].ns[s];
			used[s] |= th[i].ns[s] > 0;
		}
	}
	qsort(rows, n, sizeof(*rows), vrow_cmp);
	svg_begin(p, "chart-states", h, "time of each vCPU thread by state");
	fputs("<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
	      "patternUnits=\"userSpaceOnUse\" "
	      "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f1f3f5\"/>"
	      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#9aa6b2\" stroke-width=\"2\"/>"
	      "</pattern></defs>\n<g class=\"plot\">\n",
	      p->f);
	/* legend */
	for (int s = 0; s < VMS_VCPU_NSTATES; s++) {
		if (!used[s])
			continue;
		fprintf(p->f,
			"<g class=\"legend\" data-state=\"%s\"><rect x=\"%.1f\" y=\"8\" "
			"width=\"12\" "
			"height=\"12\" rx=\"2\" fill=\"%s\"/>",
			vms_vcpu_state_name((enum vms_vcpu_state)s), lx, state_color[s]);
		text(p->f, lx + 17, 18.5, NULL, NULL, vms_vcpu_state_name((enum vms_vcpu_state)s));
		fputs("</g>\n", p->f);
		lx += 30 + 7.0 * (double)strlen(vms_vcpu_state_name((enum vms_vcpu_state)s));
	}
	/* x grid and axis: shares */
	fputs("<g class=\"grid\">", p->f);
	for (int k = 0; k <= 10; k++)
		fprintf(p->f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
			x0 + (x1 - x0) * k / 10, x0 + (x1 - x0) * k / 10, top - 4,
			top + rh * (double)n);
	fputs("</g>\n", p->f);
	for (int k = 0; k <= 10; k += 2) {
		snprintf(lab, sizeof(lab), "%d %%", k * 10);
		text(p->f, x0 + (x1 - x0) * k / 10, top + rh * (double)n + 16, "middle", "small",
		     lab);
	}
	for (size_t i = 0; i < n; i++) {
		const struct vrow *r = &rows[i];
		const char *vmname = r->vm >= 0 && p->map ? vms_vmmap_vm_name(p->map, r->vm) : "-";
		double y = top + rh * (double)i + (rh - bh) / 2, x = x0;
		char vm[128];

		attr(vmname, vm, sizeof(vm));

		if (r->vm < 0 && r->th->vcpu >= 0)
			snprintf(lab, sizeof(lab), "vCPU %d · thread %d", r->th->vcpu, r->th->tid);
		else if (r->th->vcpu >= 0)
			snprintf(lab, sizeof(lab), "%s · vCPU %d", vmname, r->th->vcpu);
		else
			snprintf(lab, sizeof(lab), "%s · thread %d", vmname, r->th->tid);
		fprintf(p->f,
			"<g class=\"row\" data-vm=\"%s\" data-vcpu=\"%d\" data-tid=\"%d\" "
			"data-span=\"%" PRIu64 "\">\n",
			vm, r->th->vcpu, r->th->tid, r->span);
		text(p->f, x0 - 10, y + bh / 2 + 4, "end", NULL, lab);
		for (int s = 0; s < VMS_VCPU_NSTATES; s++) {
			uint64_t ns = r->th->ns[s];
			double share = r->span ? 100.0 * (double)ns / (double)r->span : 0,
			       w = (x1 - x0) * share / 100;

			if (!ns)
				continue;
			fprintf(p->f,
				"<rect class=\"mark\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
				"height=\"%.1f\" fill=\"%s\" data-vm=\"%s\" data-vcpu=\"%d\" "
				"data-tid=\"%d\" data-state=\"%s\" data-ns=\"%" PRIu64
				"\" data-share=\"%.6f\"><title>%s vCPU %d (thread %d): %s %.1f %% "
				"(%s)</title></rect>\n",
				x, y, w, bh, state_color[s], vm, r->th->vcpu, r->th->tid,
				vms_vcpu_state_name((enum vms_vcpu_state)s), ns, share, vm,
				r->th->vcpu, r->th->tid,
				vms_vcpu_state_name((enum vms_vcpu_state)s), share,
				fmt_ns((double)ns, t1, sizeof(t1)));
			if (w > 44) {
				snprintf(t2, sizeof(t2), "%.0f %%", share);
				fprintf(p->f,
					"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
					"class=\"small\" style=\"fill:%s\" "
					"pointer-events=\"none\">%s</text>\n",
					x + w / 2, y + bh / 2 + 4,
					s == VMS_VCPU_IDLE || s == VMS_VCPU_WAITING ||
							s == VMS_VCPU_UNKNOWN
						? "#263238"
						: "#fff",
					t2);
			}
			x += w;
		}
		text(p->f, x1 + 8, y + bh / 2 + 4, NULL, "small",
		     fmt_ns((double)r->span, t1, sizeof(t1)));
		fputs("</g>\n", p->f);
	}
	fputs("</g>\n</svg>\n</section>\n", p->f);
	free(rows);
	return 0;
}

/* ---- chart 2: exit latency histograms ---- */

static const char *const reason_color[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
					    "#59a14f", "#edc948", "#b07aa1" };
#define OTHER_COLOR "#bab0ac"

#define HIST_PER_OCTAVE 4

/*
 * Bucket edges from 2^@k0 to 2^@k1, HIST_PER_OCTAVE per octave, evenly spaced on the log
 * scale: each 2^(k + j / HIST_PER_OCTAVE) moved down to the lower bound of its histogram
 * bucket (within 0.4 %), so that the counts below the edges are exact.
 */
static size_t hist_edges(unsigned int k0, unsigned int k1, uint64_t *e, size_t max)
{
	size_t n = 0;

	for (unsigned int k = k0; k < k1 && n + HIST_PER_OCTAVE < max; k++)
		for (int j = 0; j < HIST_PER_OCTAVE; j++) {
			uint64_t v = (uint64_t)llround(pow(2, k + (double)j / HIST_PER_OCTAVE)), lo,
				 hi;

			vms_hist_bucket(v, &lo, &hi);
			if (!n || lo > e[n - 1])
				e[n++] = lo;
		}
	e[n++] = 1ULL << k1;
	return n;
}

static double log_x(uint64_t v, double lo, double hi, double x0, double x1)
{
	double l = log2(v ? (double)v : 1);

	return x0 + (x1 - x0) * (l - lo) / (hi - lo);
}

static void hist_panel(struct page *p, const struct vms_exits_row *r, int idx, double ox, double oy,
		       double pw, double ph, const uint64_t *e, size_t ne)
{
	const double x0 = ox + 52, x1 = ox + pw - 14, y0 = oy + 44, y1 = oy + ph - 34;
	double lo = log2((double)e[0]), hi = log2((double)e[ne - 1]), top;
	uint64_t peak = 0, prev = 0, p50 = vms_hist_percentile(&r->hist, 50),
		 p99 = vms_hist_percentile(&r->hist, 99), c;
	char name[64], t1[32], t2[32], t3[128], t4[32];
	const char *color = reason_color[idx % (int)ARRAY_SIZE(reason_color)];

	vms_exits_key_name(p->xpriv, r, name, sizeof(name));
	for (size_t i = 1; i < ne; i++) {
		c = vms_hist_count_below(&r->hist, e[i]);
		if (c - prev > peak)
			peak = c - prev;
		prev = c;
	}
	fprintf(p->f,
		"<g class=\"panel\" data-reason=\"%s\" data-samples=\"%" PRIu64
		"\" data-p50=\"%" PRIu64 "\" data-p99=\"%" PRIu64 "\">\n",
		name, r->count, p50, p99);
	fprintf(p->f,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" rx=\"2\" "
		"fill=\"%s\"/>\n",
		ox + 14, oy + 7, color);
	text(p->f, ox + 30, oy + 16, NULL, "title", name);
	snprintf(t3, sizeof(t3), "%s samples · p50 %s · p99 %s",
		 fmt_count(r->count, t4, sizeof(t4)), fmt_ns((double)p50, t1, sizeof(t1)),
		 fmt_ns((double)p99, t2, sizeof(t2)));
	text(p->f, ox + 30, oy + 31, NULL, "small", t3);
	top = y_axis(p->f, x0, x1, y0, y1, (double)peak, NULL);
	/* decades on the log axis */
	fputs("<g class=\"axis\">", p->f);
	fprintf(p->f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x0, x1, y1, y1);
	fputs("</g>\n", p->f);
	for (double d = 1; d <= 1e10; d *= 10) {
		double l = log2(d), x;

		if (l < lo - 1e-9 || l > hi + 1e-9)
			continue;
		x = x0 + (x1 - x0) * (l - lo) / (hi - lo);
		fprintf(p->f,
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#9aa6b2\"/>\n",
			x, x, y1, y1 + 4);
		text(p->f, x, y1 + 16, "middle", "small", fmt_ns(d, t1, sizeof(t1)));
	}
	prev = 0;
	for (size_t i = 0; i + 1 < ne; i++) {
		double bx0 = log_x(e[i], lo, hi, x0, x1), bx1 = log_x(e[i + 1], lo, hi, x0, x1), bh;

		c = vms_hist_count_below(&r->hist, e[i + 1]);
		if (c == prev)
			continue;
		bh = (y1 - y0) * (double)(c - prev) / top;
		fprintf(p->f,
			"<rect class=\"mark\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
			"fill=\"%s\" data-reason=\"%s\" data-lo=\"%" PRIu64 "\" data-hi=\"%" PRIu64
			"\" data-count=\"%" PRIu64 "\"><title>%s: %" PRIu64
			" exits of %s to %s</title>"
			"</rect>\n",
			bx0 + 0.5, y1 - bh, bx1 - bx0 - 1 > 0.8 ? bx1 - bx0 - 1 : 0.8, bh, color,
			name, i ? e[i] : 0, e[i + 1], c - prev, name, c - prev,
			fmt_ns(i ? (double)e[i] : 0, t1, sizeof(t1)),
			fmt_ns((double)e[i + 1], t2, sizeof(t2)));
		prev = c;
	}
	/* the median and p99 */
	for (int k = 0; k < 2; k++) {
		uint64_t v = k ? p99 : p50;
		double x = log_x(v, lo, hi, x0, x1);

		fprintf(p->f,
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2733\" "
			"stroke-dasharray=\"3 3\"/>\n",
			x, x, y0 - 4, y1);
		text(p->f, x + 3, y0 + 6 + 12 * k, NULL, "small", k ? "p99" : "p50");
	}
	text(p->f, (x0 + x1) / 2, y1 + 30, "middle", "small", "exit latency (log scale)");
	fputs("</g>\n", p->f);
}

static int row_events_cmp(const void *pa, const void *pb)
{
	const struct vms_exits_row *a = pa, *b = pb;

	if (a->events != b->events)
		return a->events > b->events ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

static void chart_latency(struct page *p)
{
	const struct vms_exits_row *top[TOP_HIST];
	uint64_t lo = UINT64_MAX, hi = 0, e[256];
	unsigned int k0, k1;
	size_t nt = 0, ne;
	int cols = 3, rows, h;
	const double pw = CHART_W / 3.0, ph = 240;

	fputs("<section class=\"card\" id=\"latency\"><h2>Exit latency by reason</h2>\n", p->f);
	fprintf(p->f,
		"<p class=\"lead\">How long the %s exits of the top reasons took (from the exit "
		"to the thread's next kvm_entry, as <code>perf kvm stat</code> times them), in "
		"buckets of a quarter octave on a shared log scale. Dashed: the median and the "
		"99th percentile.</p>\n",
		vms_exits_event_name(p->xevent));
	for (size_t i = 0; i < p->nx && nt < TOP_HIST; i++) {
		const struct vms_exits_row *r = &p->x[i];

		if (!r->count)
			continue;
		top[nt++] = r;
		if (r->min_ns < lo)
			lo = r->min_ns;
		if (r->max_ns > hi)
			hi = r->max_ns;
	}
	if (!nt) {
		fprintf(p->f, "<p class=\"empty\">No exit could be timed: %s</p>\n</section>\n",
			!p->xsum.entries
				? "this trace has no kvm_entry events (KVM-PVM hosts never "
				  "emit it, so an exit's end cannot be seen)."
				: "no exit of this kind was caught from begin to end.");
		return;
	}
	k0 = lo > 1 ? 63 - (unsigned int)__builtin_clzll(lo) : 0;
	k1 = 64 - (unsigned int)__builtin_clzll(hi | 1);
	if (k1 <= k0)
		k1 = k0 + 1;
	ne = hist_edges(k0, k1, e, ARRAY_SIZE(e));
	rows = (int)(nt + (size_t)cols - 1) / cols;
	h = (int)(ph * rows) + 6;
	svg_begin(p, "chart-latency", h, "exit latency histograms of the top exit reasons");
	fprintf(p->f, "<g class=\"plot\" data-event=\"%s\">\n", vms_exits_event_name(p->xevent));
	for (size_t i = 0; i < nt; i++)
		hist_panel(p, top[i], (int)i, pw * (double)(i % (size_t)cols),
			   ph * (double)(i / (size_t)cols), pw, ph, e, ne);
	fputs("</g>\n</svg>\n</section>\n", p->f);
}

/* ---- chart 3: exits over time ---- */

static void chart_timeline(struct page *p)
{
	const double x0 = 80, x1 = 830, y0 = 24, y1 = 330;
	const struct vms_exits_summary *s = &p->xsum;
	double span = p->last_ts > p->first_ts ? (double)(p->last_ts - p->first_ts) : 1, max = 0,
	       top, bin_s = (double)s->bin_ns / 1e9, step;
	size_t ntop = p->nx < TOP_TIMELINE ? p->nx : TOP_TIMELINE;
	char name[64], t1[32], t2[128];

	fputs("<section class=\"card\" id=\"timeline\"><h2>Exits over time</h2>\n", p->f);
	if (!s->nbins || !p->nx) {
		fprintf(p->f, "<p class=\"empty\">No %s exit in this trace%s.</p>\n</section>\n",
			vms_exits_event_name(p->xevent),
			p->xsum.has_entry_format ? "" : " (kvm_exit was not recorded)");
		return;
	}
	fprintf(p->f,
		"<p class=\"lead\">%s exits per second of the trace, by reason (the top %zu, then "
		"the rest as <i>other</i>), in %u bins of %s.</p>\n",
		vms_exits_event_name(p->xevent), ntop, s->nbins,
		fmt_ns((double)s->bin_ns, t1, sizeof(t1)));
	for (unsigned int b = 0; b < s->nbins; b++) {
		double sum = 0;

		for (size_t i = 0; i < p->nx; i++)
			sum += (double)p->x[i].bins[b];
		if (sum / bin_s > max)
			max = sum / bin_s;
	}
	svg_begin(p, "chart-timeline", (int)y1 + 46, "exits per second over time, by reason");
	fprintf(p->f,
		"<g class=\"plot\" data-event=\"%s\" data-bins=\"%u\" data-bin-ns=\"%" PRIu64
		"\" data-total=\"%" PRIu64 "\">\n",
		vms_exits_event_name(p->xevent), s->nbins, s->bin_ns, s->events);
	top = y_axis(p->f, x0, x1, y0, y1, max, "exits per second");
	fputs("<g class=\"axis\">", p->f);
	fprintf(p->f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/></g>\n", x0, x1, y1,
		y1);
	step = nice_step(span / 1e9, 8);
	for (double t = 0; t <= span / 1e9 + 1e-12; t += step) {
		double x = x0 + (x1 - x0) * t * 1e9 / span;

		snprintf(t2, sizeof(t2), "%g s", t);
		fprintf(p->f,
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#9aa6b2\"/>\n",
			x, x, y1, y1 + 4);
		text(p->f, x, y1 + 17, "middle", "small", t2);
	}
	text(p->f, (x0 + x1) / 2, y1 + 36, "middle", "small",
	     "time since the trace's first record");
	for (unsigned int b = 0; b < s->nbins; b++) {
		double t0 = (double)(s->bin_start_ts + (uint64_t)b * s->bin_ns) -
			    (double)p->first_ts,
		       t1b = t0 + (double)s->bin_ns, bx0, bx1, y = y1;
		uint64_t other = 0;

		if (t0 < 0)
			t0 = 0;
		if (t1b > span)
			t1b = span;
		bx0 = x0 + (x1 - x0) * t0 / span;
		bx1 = x0 + (x1 - x0) * t1b / span;
		if (bx1 - bx0 < 0.6)
			bx1 = bx0 + 0.6;
		for (size_t i = 0; i <= ntop; i++) {
			uint64_t c;
			double hgt;
			const char *color;

			if (i < ntop) {
				c = p->x[i].bins[b];
				vms_exits_key_name(p->xpriv, &p->x[i], name, sizeof(name));
				color = reason_color[i];
			} else {
				for (size_t k = ntop; k < p->nx; k++)
					other += p->x[k].bins[b];
				c = other;
				snprintf(name, sizeof(name), "other");
				color = OTHER_COLOR;
			}
			if (!c)
				continue;
			hgt = (y1 - y0) * (double)c / bin_s / top;
			y -= hgt;
			fprintf(p->f,
				"<rect class=\"mark\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
				"height=\"%.2f\" fill=\"%s\" data-reason=\"%s\" data-bin=\"%u\" "
				"data-start-ns=\"%.0f\" data-count=\"%" PRIu64
				"\"><title>%.3f s: %s %" PRIu64 " (%.0f/s)</title></rect>\n",
				bx0, y, bx1 - bx0, hgt, color, name, b, t0, c, t0 / 1e9, name, c,
				(double)c / bin_s);
		}
	}
	/* legend */
	for (size_t i = 0; i <= ntop; i++) {
		double ly = y0 + 4 + 20.0 * (double)i;
		uint64_t ev = 0;

		if (i == ntop) {
			if (p->nx <= ntop)
				break;
			for (size_t k = ntop; k < p->nx; k++)
				ev += p->x[k].events;
			snprintf(name, sizeof(name), "other (%zu)", p->nx - ntop);
		} else {
			ev = p->x[i].events;
			vms_exits_key_name(p->xpriv, &p->x[i], name, sizeof(name));
		}
		fprintf(p->f,
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" rx=\"2\" "
			"fill=\"%s\"/>\n",
			x1 + 20, ly, i < ntop ? reason_color[i] : OTHER_COLOR);
		snprintf(t2, sizeof(t2), "%s  %s", name, fmt_count(ev, t1, sizeof(t1)));
		text(p->f, x1 + 38, ly + 10.5, NULL, NULL, t2);
	}
	fputs("</g>\n</svg>\n</section>\n", p->f);
}

/* ---- chart 4: interrupts by sub-second offset ---- */

static const int heat_hue[HEAT_FAMILIES] = { 210, 0, 38, 140, 275, 185, 320, 25 };

/* The colour of @count in family @fam (-1: the others, grey), darker for more. */
static void heat_color(char *buf, size_t len, int fam, uint64_t count, uint64_t max)
{
	double f = max > 1 ? log((double)count) / log((double)max) : 1, l = 86 - 52 * f;

	if (fam < 0)
		snprintf(buf, len, "hsl(0,0%%,%.0f%%)", l);
	else
		snprintf(buf, len, "hsl(%d,70%%,%.0f%%)", heat_hue[fam], l);
}

struct hseries {
	size_t idx; /* in vms_irq_series() */
	const struct vms_irq_series *s;
};

static int hseries_cmp(const void *pa, const void *pb)
{
	const struct hseries *a = pa, *b = pb;

	if (a->s->count != b->s->count)
		return a->s->count > b->s->count ? -1 : 1;
	if (a->s->source != b->s->source)
		return a->s->source < b->s->source ? -1 : 1;
	return a->s->key < b->s->key ? -1 : a->s->key > b->s->key;
}

static int chart_heatmap(struct page *p)
{
	const struct vms_irq_summary *s = &p->isum;
	size_t ns, nh = 0;
	const struct vms_irq_series *se = vms_irq_series(p->irq, &ns);
	struct hseries *hs = calloc(ns ? ns : 1, sizeof(*hs));
	unsigned int group, ncols, nfam, nind;
	const double x0 = 70, y0 = 20, ph = 300;
	double cw, rh = ph / s->buckets, x1, step;
	uint64_t max = 0, total = 0, *cell = NULL;
	char t1[32], t2[48], color[32], srcs[160] = "";

	if (!hs)
		return -ENOMEM;
	for (size_t i = 0; i < ns; i++)
		if (s->heatmap_sources & 1u << se[i].source)
			hs[nh++] = (struct hseries){ i, &se[i] };
	if (nh > 1)
		qsort(hs, nh, sizeof(*hs), hseries_cmp);
	for (size_t i = 0; i < nh; i++)
		total += hs[i].s->count;
	for (int k = 0; k < VMS_IRQ_NSOURCES; k++)
		if (s->heatmap_sources & 1u << k)
			snprintf(srcs + strlen(srcs), sizeof(srcs) - strlen(srcs), "%skvm_%s",
				 srcs[0] ? " and " : "",
				 vms_irq_source_name((enum vms_irq_source)k));
	fputs("<section class=\"card\" id=\"heatmap\"><h2>Interrupts by sub-second offset</h2>\n",
	      p->f);
	fprintf(p->f,
		"<p class=\"lead\">Each interrupt in %s placed by the second of the trace it "
		"came in (x) and its offset within that second (y), as in Brendan Gregg's "
		"heatmaps of injected interrupts: a flat line is a timer that fires at the same "
		"offset every second, a rising stair a task that works, sleeps for an interval "
		"and works again. One hue per vector (or GSI), darker for more interrupts in a "
		"cell of %.0f ms; a cell shared by several is split between them.%s</p>\n",
		srcs, (double)s->bucket_ns / 1e6,
		s->deasserts && s->heatmap_sources & 1u << VMS_IRQ_SET_IRQ
			? " kvm_set_irq deasserts (level 0) end a level-triggered pulse and are "
			  "left out."
			: "");
	if (!total || !s->seconds) {
		fputs("<p class=\"empty\">No interrupt in this trace.</p>\n</section>\n", p->f);
		free(hs);
		return 0;
	}
	group = (s->seconds + HEAT_MAX_COLUMNS - 1) / HEAT_MAX_COLUMNS;
	ncols = (s->seconds + group - 1) / group;
	cw = 880.0 / ncols > 72 ? 72 : 880.0 / ncols;
	x1 = x0 + cw * ncols;
	/* a family per series; past HEAT_FAMILIES, the last one is all the others (grey) */
	nind = nh > HEAT_FAMILIES ? HEAT_FAMILIES - 1 : (unsigned int)nh;
	nfam = nind + (nh > nind);
	cell = calloc((size_t)nfam * s->buckets * ncols, sizeof(*cell));
	if (!cell) {
		free(hs);
		return -ENOMEM;
	}
	/* cell counts per family */
	for (size_t i = 0; i < nh; i++) {
		unsigned int fam = i < nind ? (unsigned int)i : nind;

		for (unsigned int sec = 0; sec < s->seconds; sec++)
			for (unsigned int b = 0; b < s->buckets; b++) {
				uint64_t *c =
					&cell[((size_t)fam * ncols + sec / group) * s->buckets + b];

				*c += vms_irq_cell(p->irq, hs[i].idx, sec, b);
				if (*c > max)
					max = *c;
			}
	}
	svg_begin(p, "chart-heatmap", (int)(y0 + ph + 50 + 22 * ((nfam + 2) / 3)),
		  "interrupts by second and sub-second offset");
	fprintf(p->f,
		"<g class=\"plot\" data-total=\"%" PRIu64 "\" data-buckets=\"%u\" "
		"data-bucket-ns=\"%" PRIu64 "\" data-seconds=\"%u\" data-group=\"%u\" "
		"data-first-second=\"%" PRIu64 "\">\n",
		total, s->buckets, s->bucket_ns, s->seconds, group, s->first_second);
	fprintf(p->f,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fbfcfd\" "
		"stroke=\"#dfe4ea\"/>\n",
		x0, y0, x1 - x0, ph);
	/* y: offset within the second, 0 at the bottom */
	for (int ms = 0; ms <= 1000; ms += 100) {
		double y = y0 + ph - ph * ms / 1000.0;

		snprintf(t1, sizeof(t1), "%d", ms);
		fprintf(p->f,
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#9aa6b2\"/>\n",
			x0 - 4, x0, y, y);
		text(p->f, x0 - 7, y + 4, "end", "small", t1);
	}
	fprintf(p->f,
		"<text class=\"small\" transform=\"translate(%.1f %.1f) rotate(-90)\" "
		"text-anchor=\"middle\">offset within the second (ms)</text>\n",
		x0 - 44, y0 + ph / 2);
	step = nice_step((double)s->seconds, 10);
	if (step < group)
		step = group;
	for (double t = 0; t < s->seconds; t += step) {
		double x = x0 + cw * (t / group) + cw / 2;

		snprintf(t1, sizeof(t1), "%g", t);
		fprintf(p->f,
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#9aa6b2\"/>\n",
			x, x, y0 + ph, y0 + ph + 4);
		text(p->f, x, y0 + ph + 17, "middle", "small", t1);
	}
	snprintf(t2, sizeof(t2), "second of the trace%s", group > 1 ? " (columns of several)" : "");
	text(p->f, (x0 + x1) / 2, y0 + ph + 34, "middle", "small", t2);
	/* the cells */
	for (unsigned int col = 0; col < ncols; col++)
		for (unsigned int b = 0; b < s->buckets; b++) {
			unsigned int present = 0, k = 0;

			for (unsigned int f = 0; f < nfam; f++)
				present += cell[((size_t)f * ncols + col) * s->buckets + b] > 0;
			for (unsigned int f = 0; f < nfam && present; f++) {
				uint64_t c = cell[((size_t)f * ncols + col) * s->buckets + b];
				double w = cw / present, y = y0 + ph - rh * (b + 1);
				char key[32], name[64];

				if (!c)
					continue;
				if (f < nind) {
					vms_irq_key_name(hs[f].s->source, hs[f].s->key, key,
							 sizeof(key));
					snprintf(name, sizeof(name), "%s %s",
						 vms_irq_source_name(hs[f].s->source), key);
				} else {
					snprintf(key, sizeof(key), "other");
					snprintf(name, sizeof(name), "other");
				}
				heat_color(color, sizeof(color), f < nind ? (int)f : -1, c, max);
				fprintf(p->f,
					"<rect class=\"mark\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
					"height=\"%.2f\" fill=\"%s\" data-second=\"%u\" "
					"data-seconds=\"%u\" data-offset-ns=\"%" PRIu64 "\" "
					"data-source=\"%s\" data-vector=\"%s\" "
					"data-count=\"%" PRIu64
					"\"><title>second %u, %.0f–%.0f ms: %s × %" PRIu64
					"</title></rect>\n",
					x0 + cw * col + w * k, y, w, rh, color, col * group, group,
					(uint64_t)b * s->bucket_ns,
					f < nind ? vms_irq_source_name(hs[f].s->source) : "other",
					key, c, col * group, (double)b * s->bucket_ns / 1e6,
					(double)(b + 1) * s->bucket_ns / 1e6, name, c);
				k++;
			}
		}
	/* legend: each family's ramp, its name and count */
	for (unsigned int f = 0; f < nfam; f++) {
		double lx = x0 + 330.0 * (f % 3), ly = y0 + ph + 48 + 22.0 * (f / 3);
		char lab[160], key[32];
		uint64_t n = 0;
		const char *h = NULL;

		for (int q = 0; q < 4; q++) {
			heat_color(color, sizeof(color), f < nind ? (int)f : -1,
				   q ? (uint64_t)pow((double)max, q / 3.0) : 1, max);
			fprintf(p->f,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"12\" "
				"fill=\"%s\"/>\n",
				lx + 9.0 * q, ly, color);
		}
		if (f < nind) {
			n = hs[f].s->count;
			h = hint(hs[f].s->source, hs[f].s->key);
			vms_irq_key_name(hs[f].s->source, hs[f].s->key, key, sizeof(key));
			snprintf(lab, sizeof(lab), "%s · %s%s%s%s", key,
				 fmt_count(n, t1, sizeof(t1)), h ? " (" : "", h ? h : "",
				 h ? ")" : "");
		} else {
			for (size_t i = f; i < nh; i++)
				n += hs[i].s->count;
			snprintf(lab, sizeof(lab), "%zu others · %s", nh - f,
				 fmt_count(n, t1, sizeof(t1)));
		}
		fprintf(p->f, "<g class=\"legend\" data-vector=\"%s\" data-count=\"%" PRIu64 "\">",
			f < nind ? key : "other", n);
		text(p->f, lx + 42, ly + 10.5, NULL, NULL, lab);
		fputs("</g>\n", p->f);
	}
	snprintf(t2, sizeof(t2), "darkest: %" PRIu64 " in a cell", max);
	text(p->f, x1, y0 - 6, "end", "small", t2);
	fputs("</g>\n</svg>\n</section>\n", p->f);
	free(cell);
	free(hs);
	return 0;
}

/* ---- the page ---- */

static int write_page(struct page *p)
{
	int ret;

	page_begin(p);
	trace_facts(p);
	if ((ret = chart_states(p)))
		return ret;
	chart_latency(p);
	chart_timeline(p);
	if ((ret = chart_heatmap(p)))
		return ret;
	page_end(p);
	return 0;
}

/* A temporary file beside @out for the page; its path in @tmp. -errno on failure. */
static int open_temp(const char *out, char *tmp, size_t len, FILE **f)
{
	struct stat st;
	mode_t mask;
	int fd;

	if (!stat(out, &st) && S_ISDIR(st.st_mode))
		return -EISDIR;
	if ((size_t)snprintf(tmp, len, "%s.tmp-XXXXXX", out) >= len)
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	/* mkstemp makes it 0600: give the page the mode a new file would have */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) || !(*f = fdopen(fd, "w"))) {
		int err = -errno;

		close(fd);
		unlink(tmp);
		return err;
	}
	return 0;
}

int report_html(const struct report_args *a, struct vms_trace *tr, const struct vms_vmmap *map)
{
	struct vms_exits_opts xo = a->exits, uo = a->exits;
	struct vms_vcpu_opts vo = { sizeof(vo), 0, 0, true };
	struct vms_irq_opts io = { sizeof(io), 0 };
	struct vms_session *s = NULL;
	struct page p = { .a = a, .tr = tr, .map = map };
	void *xpriv = NULL, *upriv = NULL;
	struct stat in, out;
	char tmp[PATH_MAX];
	int ret, rc;

	if (!stat(a->file, &in) && !stat(a->output, &out) && in.st_dev == out.st_dev &&
	    in.st_ino == out.st_ino)
		return cli_error(CMD, "cannot write %s: it is the trace being read", a->output);
	ret = open_temp(a->output, tmp, sizeof(tmp), &p.f);
	if (ret)
		return cli_error(CMD, "cannot write %s: %s", a->output, strerror(-ret));
	xo.bins = uo.bins = EXIT_BINS;
	uo.event = VMS_EXITS_USERSPACE;
	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_vcpu_ops, &vo, &p.vcpu)) ||
	    (ret = vms_session_add(s, &vms_exits_ops, &xo, &xpriv)) ||
	    (xo.event != VMS_EXITS_USERSPACE &&
	     (ret = vms_session_add(s, &vms_exits_ops, &uo, &upriv))) ||
	    (ret = vms_session_add(s, &vms_irq_ops, &io, &p.irq))) {
		rc = cli_error(CMD, "cannot set up the analyses: %s", vms_strerror(ret));
		goto out;
	}
	rc = report_run(a, s, &p.error);
	p.first_ts = vms_session_first_ts(s);
	p.last_ts = vms_session_last_ts(s);
	vms_vcpu_summary(p.vcpu, &p.vsum);
	vms_irq_summary(p.irq, &p.isum);
	p.xpriv = xpriv;
	p.xevent = xo.event;
	vms_exits_summary(xpriv, &p.xsum);
	if (!p.xsum.events && upriv) {
		struct vms_exits_summary us;

		vms_exits_summary(upriv, &us);
		if (us.events) {
			p.xpriv = upriv;
			p.xevent = VMS_EXITS_USERSPACE;
			p.xsum = us;
			p.xfallback = true;
		}
	}
	if (vms_exits_group(p.xpriv, VMS_EXITS_BY_KEY, NULL, NULL, -1, &p.x, &p.nx)) {
		rc = cli_error(CMD, "out of memory");
		goto out;
	}
	if (p.nx > 1)
		qsort(p.x, p.nx, sizeof(*p.x), row_events_cmp);
	if (write_page(&p)) {
		rc = cli_error(CMD, "out of memory");
		goto out;
	}
	if (fflush(p.f) || ferror(p.f) || fsync(fileno(p.f))) {
		rc = cli_error(CMD, "cannot write %s: %s", a->output,
			       strerror(errno ? errno : EIO));
		goto out;
	}
	ret = fclose(p.f);
	p.f = NULL;
	if (ret || rename(tmp, a->output)) {
		rc = cli_error(CMD, "cannot write %s: %s", a->output, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	if (p.error)
		cli_error(CMD, "%s (the page covers the records before it)", p.error);
	if (a->verbose)
		fprintf(stderr, "vmscope report: wrote %s\n", a->output);
out:
	if (p.f)
		fclose(p.f);
	if (tmp[0])
		unlink(tmp);
	vms_exits_rows_free(p.x, p.nx);
	vms_session_free(s);
	return rc;
}
