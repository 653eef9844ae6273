// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope report: analyses of a recorded trace. `report exits` is perf kvm stat report's
 * table (samples, samples %, time %, min, max, average ± standard error) with what perf
 * lacks: percentiles, per-vCPU rows, any sort key, CSV and JSON, lost events and
 * untimed exits said out loud.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "vmscope/analysis.h"
#include "vmscope/exits.h"
#include "vmscope/table.h"
#include "vmscope/trace.h"
#include "vmscope/vmmap.h"

#define CMD "report"

static const char usage_text[] =
	"Usage: vmscope report ANALYSIS [OPTIONS] FILE\n"
	"       vmscope report --html FILE -o OUT.html\n"
	"\n"
	"Analyse a trace-cmd .dat file (version 6 or 7, any compression), as written by\n"
	"vmscope record or trace-cmd record.\n"
	"\n"
	"Analyses (vcpu, cpu, sched and steal come from one pass of the vCPU state model:\n"
	"name several with commas, e.g. vcpu,cpu,sched,steal):\n"
	"  exits      exits per reason, MMIO address, I/O port, MSR or user-space exit reason:\n"
	"             count, share, time share, min, max, average +- standard error, p50,\n"
	"             p95, p99 (perf kvm stat report's table, and more)\n"
	"  vcpu       per vCPU (or VM): the share of time in each state (guest, hypervisor,\n"
	"             vmm or running; preempted, waiting, idle, blocked, unknown), host CPUs\n"
	"             used, migrations, exit rate, wakeup latency\n"
	"  cpu        per host CPU: who used it: each VM's guest, hypervisor and vmm (or\n"
	"             running) time, the idle task, every other task, and what the trace\n"
	"             cannot tell (unknown)\n"
	"  sched      per vCPU: wakeup to running latency (count, p50, p95, p99, max) and a\n"
	"             histogram\n"
	"  steal      per vCPU: every preemption, by which host task and for how long; top\n"
	"             preemptors, a histogram, the steal the guest could see, and the\n"
	"             hypervisor time per VM (the virtualization overhead)\n"
	"  irq        interrupts delivered to the guests per VM, vCPU and vector: count and\n"
	"             rate, from kvm_inj_virq, or where it never fires (KVM-PVM) from\n"
	"             kvm_apic_accept_irq, kvm_msi_set_irq and kvm_set_irq; --heatmap: per\n"
	"             second and offset within the second (the HTML report's heatmap)\n"
	"\n"
	"  --html FILE -o OUT.html\n"
	"             one self-contained page (inline SVG, no script, no network) with the\n"
	"             time of each vCPU by state, exit latency histograms of the top reasons,\n"
	"             exits over time and the heatmap of interrupts by sub-second offset, from\n"
	"             one pass over the trace; written atomically (-e chooses the exits)\n"
	"\n"
	"Options:\n"
	"  -e, --event EVENT        exits: vmexit, mmio, ioport, msr or userspace [vmexit]\n"
	"      --vm VM              only this VM, by name or pid (the file must name its VMs,\n"
	"                           as files of vmscope record and trace-cmd with guests do)\n"
	"      --vcpu N             only vCPU N\n"
	"      --per-vm             one row per VM (and key)\n"
	"      --per-vcpu           exits: one row per vCPU thread and key\n"
	"      --from TIME          vcpu, cpu, sched, steal: only the time from TIME after the\n"
	"                           first record on\n"
	"                           (\"10s\", \"1500ms\"; a bare number is seconds)\n"
	"      --to TIME            vcpu, cpu, sched, steal: only until TIME after the first\n"
	"                           record\n"
	"  -s, --sort KEY           exits: samples, events, time, avg, min, max, p99 or name\n"
	"                           [samples]\n"
	"      --heatmap            irq: the heatmap's cells (second, offset, vector, count)\n"
	"                           instead of the rows per vCPU\n"
	"      --html               an HTML report of FILE (needs -o)\n"
	"  -o, --output FILE        where --html writes its page\n"
	"  -f, --format FMT         table, csv or json [table]\n"
	"  -b, --buffer NAME        the trace instance buffer to read [the first with data]\n"
	"  -q, --quiet              no progress on stderr\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Times are ns in CSV and JSON, us in the table. Exit status: 0; 1 when the file cannot\n"
	"be read (the report still shows what was read before a damaged part); 2 for a\n"
	"wrong command line.\n";

static const char *const sort_names[] = { "samples", "events", "time", "avg",
					  "min",     "max",    "p99",  "name" };

/* --html FILE -o OUT: the page covers the whole trace, so the selections do not apply. */
static int parse_html_args(int argc, char **argv, struct report_args *a)
{
	a->analysis = "html";
	if (optind >= argc)
		return cli_usage_error(CMD, "which trace file? (--html FILE -o OUT.html)");
	a->file = argv[optind++];
	if (optind < argc)
		return cli_usage_error(
			CMD,
			"unexpected argument '%s' (--html takes the trace file only: "
			"the page has every analysis)",
			argv[optind]);
	if (!a->output)
		return cli_usage_error(CMD, "--html writes a file: name it with -o OUT.html");
	if (a->vm || a->exits.vcpu >= 0 || a->per_vm || a->per_vcpu || a->from || a->to ||
	    a->heatmap)
		return cli_usage_error(CMD,
				       "--html covers the whole trace: it takes no --vm, "
				       "--vcpu, --per-vm, --per-vcpu, --from, --to or --heatmap");
	return 0;
}

static int parse_args(int argc, char **argv, struct report_args *a)
{
	static const struct option longopts[] = {
		{ "event", required_argument, NULL, 'e' },
		{ "vcpu", required_argument, NULL, 'V' },
		{ "per-vcpu", no_argument, NULL, 'P' },
		{ "per-vm", no_argument, NULL, 'M' },
		{ "vm", required_argument, NULL, 'm' },
		{ "sort", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "html", no_argument, NULL, 'H' },
		{ "output", required_argument, NULL, 'o' },
		{ "heatmap", no_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	bool want[4];
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->exits =
		(struct vms_exits_opts){ sizeof(a->exits), VMS_EXITS_VMEXIT, -1, VMS_X86_UNKNOWN };
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "e:s:f:b:o:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (vms_exits_event_parse(optarg, &a->exits.event))
				return cli_usage_error(CMD,
						       "--event takes vmexit, mmio, ioport, msr or "
						       "userspace, not '%s'",
						       optarg);
			break;
		case 'V':
			if (cli_parse_uint(optarg, 1u << 20, &u))
				return cli_usage_error(CMD, "--vcpu takes a vCPU number, not '%s'",
						       optarg);
			a->exits.vcpu = (int)u;
			break;
		case 'P':
			a->per_vcpu = true;
			break;
		case 'M':
			a->per_vm = true;
			break;
		case 'm':
			a->vm = optarg;
			break;
		case 's': {
			size_t i;

			for (i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++)
				if (!strcmp(optarg, sort_names[i]))
					break;
			if (i == sizeof(sort_names) / sizeof(sort_names[0]))
				return cli_usage_error(CMD,
						       "--sort takes samples, events, time, avg, "
						       "min, max, p99 or name, not '%s'",
						       optarg);
			a->sort = (enum sort_key)i;
			break;
		}
		case 'f':
			if (cli_format_option(CMD, optarg, true, &a->format))
				return CLI_EXIT_USAGE;
			break;
		case 'b':
			a->buffer = optarg;
			break;
		case 'F':
		case 'T':
			if (cli_window_option(CMD, c == 'T', optarg, c == 'F' ? &a->from : &a->to))
				return CLI_EXIT_USAGE;
			break;
		case 'H':
			a->html = true;
			break;
		case 'o':
			a->output = optarg;
			break;
		case 'X':
			a->heatmap = true;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, &a->quiet, &a->verbose);
			if (ret)
				return ret;
			break;
		}
	}
	if (a->html)
		return parse_html_args(argc, argv, a);
	if (a->output)
		return cli_usage_error(CMD, "-o names the page of --html; the analyses print on "
					    "standard output");
	if (optind >= argc)
		return cli_usage_error(CMD,
				       "which analysis? (exits, vcpu, cpu, sched, steal or irq; or "
				       "--html)");
	a->analysis = argv[optind++];
	if (strcmp(a->analysis, "exits") && strcmp(a->analysis, "irq") &&
	    !report_states_parse(a->analysis, want))
		return cli_usage_error(CMD,
				       "unknown analysis '%s' (exits, irq, or vcpu, cpu, sched, "
				       "steal: one or several, with commas)",
				       a->analysis);
	if (a->heatmap && strcmp(a->analysis, "irq"))
		return cli_usage_error(CMD, "--heatmap is an option of irq");
	if (a->heatmap && (a->vm || a->exits.vcpu >= 0 || a->per_vm))
		return cli_usage_error(CMD, "the heatmap covers every VM and vCPU: --heatmap takes "
					    "no --vm, --vcpu or --per-vm");
	if (strchr(a->analysis, ',') && a->format == CLI_FORMAT_CSV)
		return cli_usage_error(CMD, "CSV takes one analysis at a time, not '%s'",
				       a->analysis);
	if (optind >= argc)
		return cli_usage_error(CMD, "which trace file?");
	a->file = argv[optind++];
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	if (a->per_vm && a->per_vcpu)
		return cli_usage_error(CMD, "--per-vm and --per-vcpu exclude each other");
	if (cli_window_check(CMD, a->from, a->to))
		return CLI_EXIT_USAGE;
	return 0;
}

static int vm_of_tid(int tid, void *ctx)
{
	return vms_vmmap_vm_of_tid(ctx, tid);
}

/* ---- sorting rows ---- */

static const void *sort_priv;
static enum sort_key sort_by;

static uint64_t row_p99(const struct vms_exits_row *r)
{
	return vms_hist_percentile(&r->hist, 99);
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct vms_exits_row *a = pa, *b = pb;
	double x = 0, y = 0;

	switch (sort_by) {
	case SORT_SAMPLES:
		x = (double)a->count, y = (double)b->count;
		if (x == y)
			x = (double)a->events, y = (double)b->events;
		break;
	case SORT_EVENTS:
		x = (double)a->events, y = (double)b->events;
		break;
	case SORT_TIME:
		x = (double)a->total_ns, y = (double)b->total_ns;
		break;
	case SORT_AVG:
		x = a->mean_ns, y = b->mean_ns;
		break;
	case SORT_MIN:
		x = (double)a->min_ns, y = (double)b->min_ns;
		break;
	case SORT_MAX:
		x = (double)a->max_ns, y = (double)b->max_ns;
		break;
	case SORT_P99:
		x = (double)row_p99(a), y = (double)row_p99(b);
		break;
	case SORT_NAME: {
		char na[64], nb[64];

		return strcmp(vms_exits_key_name(sort_priv, a, na, sizeof(na)),
			      vms_exits_key_name(sort_priv, b, nb, sizeof(nb)));
	}
	}
	if (x != y)
		return x > y ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

/* ---- output ---- */

static const char *event_title(enum vms_exits_event e)
{
	static const char *const t[] = { "VM-EXIT", "MMIO Access", "IO Port Access", "MSR Access",
					 "Userspace Exit" };

	return t[e];
}

static struct vms_table *build_table(const struct report_args *a, const void *priv,
				     struct vms_exits_row *rows, size_t n,
				     const struct vms_exits_summary *sum,
				     const struct vms_vmmap *map)
{
	struct vms_table *t = vms_table_new();
	bool timed = sum->samples > 0;
	int c_name, c_vcpu = -1, c_tid = -1, c_key, c_info, c_ev, c_n, c_np, c_tp, c_min, c_max,
		    c_avg, c_sem, c_sd, c_p50, c_p95, c_p99, c_tot;
	char name[64];

	if (!t)
		return NULL;
	int c_vm = -1;

	c_name = vms_table_column(t, "name", event_title(a->exits.event), VMS_COL_STR, 1, 0, NULL);
	if (a->per_vm || a->vm || (a->per_vcpu && vms_vmmap_nvms(map)))
		c_vm = vms_table_column(t, "vm", "VM", VMS_COL_STR, 1, 0, NULL);
	if (a->per_vcpu) {
		c_vcpu = vms_table_column(t, "vcpu", "vCPU", VMS_COL_I64, 1, 0, NULL);
		c_tid = vms_table_column(t, "tid", "Thread", VMS_COL_I64, 1, 0, NULL);
	}
	c_key = a->format == CLI_FORMAT_TABLE
			? -1
			: vms_table_column(t, "key", NULL, VMS_COL_U64, 1, 0, NULL);
	c_info = a->format == CLI_FORMAT_TABLE
			 ? -1
			 : vms_table_column(t, "info", NULL, VMS_COL_U64, 1, 0, NULL);
	c_ev = vms_table_column(t, "events", "Events", VMS_COL_U64, 1, 0, NULL);
	c_n = c_np = c_tp = c_min = c_max = c_avg = c_sem = c_sd = c_p50 = c_p95 = c_p99 = -1;
	/* A trace that times nothing gets no empty timing columns in the text table; CSV and
	 * JSON keep them (as null) so their schema does not depend on the trace. */
	if (timed || a->format != CLI_FORMAT_TABLE) {
		c_n = vms_table_column(t, "samples", "Samples", VMS_COL_U64, 1, 0, NULL);
		c_np = vms_table_column(t, "samples_pct", "Samples%", VMS_COL_F64, 1, 2, "%");
		c_tp = vms_table_column(t, "time_pct", "Time%", VMS_COL_F64, 1, 2, "%");
		c_min = vms_table_column(t, "min_ns", "Min Time", VMS_COL_U64, 1e3, 2, "us");
		c_max = vms_table_column(t, "max_ns", "Max Time", VMS_COL_U64, 1e3, 2, "us");
		c_avg = vms_table_column(t, "avg_ns", "Avg time", VMS_COL_F64, 1e3, 2, "us");
		c_sem = vms_table_column(t, "avg_sem_pct", "+-", VMS_COL_F64, 1, 2, "%");
		c_sd = vms_table_column(t, "stddev_ns", "Stddev", VMS_COL_F64, 1e3, 2, "us");
		c_p50 = vms_table_column(t, "p50_ns", "p50", VMS_COL_U64, 1e3, 2, "us");
		c_p95 = vms_table_column(t, "p95_ns", "p95", VMS_COL_U64, 1e3, 2, "us");
		c_p99 = vms_table_column(t, "p99_ns", "p99", VMS_COL_U64, 1e3, 2, "us");
	}
	c_tot = a->format == CLI_FORMAT_TABLE
			? -1
			: vms_table_column(t, "total_ns", NULL, VMS_COL_U64, 1, 0, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct vms_exits_row *r = &rows[i];

		if (vms_table_row(t))
			break;
		vms_table_str(t, c_name, vms_exits_key_name(priv, r, name, sizeof(name)));
		if (c_vm >= 0 && r->vm >= 0)
			vms_table_str(t, c_vm, vms_vmmap_vm_name(map, r->vm));
		if (a->per_vcpu) {
			int vcpu = r->vcpu >= 0 ? r->vcpu : vms_vmmap_vcpu_of_tid(map, r->tid);

			if (vcpu >= 0)
				vms_table_i64(t, c_vcpu, vcpu);
			vms_table_i64(t, c_tid, r->tid);
		}
		vms_table_u64(t, c_key, r->key);
		vms_table_u64(t, c_info, r->info);
		vms_table_u64(t, c_ev, r->events);
		if (!timed)
			continue;
		vms_table_u64(t, c_n, r->count);
		vms_table_f64(t, c_np,
			      sum->samples ? 100.0 * (double)r->count / (double)sum->samples : 0);
		vms_table_f64(t, c_tp,
			      sum->total_ns ? 100.0 * (double)r->total_ns / (double)sum->total_ns
					    : 0);
		vms_table_u64(t, c_tot, r->total_ns);
		if (!r->count)
			continue;
		vms_table_u64(t, c_min, r->min_ns);
		vms_table_u64(t, c_max, r->max_ns);
		vms_table_f64(t, c_avg, r->mean_ns);
		vms_table_f64(t, c_sem, vms_exits_row_sem_pct(r));
		vms_table_f64(t, c_sd, vms_exits_row_stddev(r));
		vms_table_u64(t, c_p50, vms_hist_percentile(&r->hist, 50));
		vms_table_u64(t, c_p95, vms_hist_percentile(&r->hist, 95));
		vms_table_u64(t, c_p99, vms_hist_percentile(&r->hist, 99));
	}
	return t;
}

static void print_header(const struct report_args *a, struct vms_trace *tr,
			 const struct vms_exits_summary *s)
{
	printf("vmscope report exits: %s\n", a->file);
	report_print_trace(tr);
	printf("  event %s, %s, %s\n\n", vms_exits_event_name(a->exits.event),
	       a->vm ? a->vm : "all VMs", a->exits.vcpu >= 0 ? "one vCPU" : "all vCPUs");
	(void)s;
}

static void print_notes(const struct report_args *a, const struct vms_exits_summary *s)
{
	printf("\nTotal Samples:%" PRIu64 ", Total events handled time:%.2fus.\n", s->samples,
	       s->total_ns / 1e3);
	if (!s->entries)
		printf("Latencies: none. This trace has no kvm_entry events (%s), so no exit can "
		       "be timed;\nthe Events column counts the %s events.\n",
		       s->has_entry_format ? "KVM-PVM hosts never emit it"
					   : "the event was not recorded",
		       vms_exits_event_name(a->exits.event));
	if (s->before_first_entry && s->entries)
		printf("%" PRIu64 " events came before their thread's first kvm_entry "
		       "(counted, not timed, as perf does).\n",
		       s->before_first_entry);
	if (s->unfinished)
		printf("%" PRIu64 " exits had no end (trace ended, or another exit began first).\n",
		       s->unfinished);
	if (s->lost_windows)
		printf("Lost events: %" PRIu64 " in %" PRIu64 " windows; %" PRIu64
		       " exits were not timed because their end may be in a lost window.\n",
		       s->lost_events, s->lost_windows, s->dropped_lost);
	else
		printf("Lost events: none.\n");
}

static void print_json(const struct report_args *a, struct vms_trace *tr,
		       const struct vms_exits_summary *s, const struct vms_table *t,
		       const char *error)
{
	struct vms_json j;

	vms_json_init(&j, stdout, true);
	vms_json_object_begin(&j, NULL);
	report_json_trace(&j, a, tr);
	vms_json_string(&j, "event", vms_exits_event_name(a->exits.event));
	if (a->exits.vcpu >= 0)
		vms_json_i64(&j, "vcpu", a->exits.vcpu);
	vms_json_object_begin(&j, "summary");
	vms_json_u64(&j, "samples", s->samples);
	vms_json_u64(&j, "total_ns", s->total_ns);
	vms_json_u64(&j, "events", s->events);
	vms_json_u64(&j, "kvm_entry", s->entries);
	vms_json_bool(&j, "timed", s->entries > 0);
	vms_json_u64(&j, "before_first_entry", s->before_first_entry);
	vms_json_u64(&j, "unfinished", s->unfinished);
	vms_json_u64(&j, "lost_events", s->lost_events);
	vms_json_u64(&j, "lost_windows", s->lost_windows);
	vms_json_u64(&j, "not_timed_lost", s->dropped_lost);
	vms_json_object_end(&j);
	vms_table_json(t, &j, "rows");
	if (error)
		vms_json_string(&j, "error", error);
	vms_json_object_end(&j);
	vms_json_finish(&j);
}

static void progress(uint64_t n, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "\rvmscope report: %" PRIu64 " M records read", n >> 20);
}

int report_run(const struct report_args *a, struct vms_session *s, const char **error)
{
	bool show_progress = !a->quiet && isatty(STDERR_FILENO);
	int ret = vms_session_run(s, show_progress ? progress : NULL, NULL);

	if (show_progress)
		fprintf(stderr, "\r%60s\r", "");
	*error = NULL;
	if (!ret)
		return 0;
	*error = vms_session_error(s)[0] ? vms_session_error(s) : vms_strerror(ret);
	return CLI_EXIT_FAIL;
}

void report_print_trace(struct vms_trace *tr)
{
	const struct vms_trace_info *in = vms_trace_info(tr);

	printf("  trace: version %d, %s, buffer \"%s\", %u CPUs, clock %s, %" PRIu64 " records\n",
	       in->version, in->compression, in->buffer, in->ncpus, in->clock,
	       vms_trace_events_read(tr));
}

void report_json_trace(struct vms_json *j, const struct report_args *a, struct vms_trace *tr)
{
	const struct vms_trace_info *in = vms_trace_info(tr);

	vms_json_string(j, "file", a->file);
	vms_json_object_begin(j, "trace");
	vms_json_i64(j, "version", in->version);
	vms_json_string(j, "compression", in->compression);
	vms_json_string(j, "buffer", in->buffer);
	vms_json_u64(j, "cpus", in->ncpus);
	vms_json_string(j, "clock", in->clock);
	vms_json_u64(j, "records", vms_trace_events_read(tr));
	vms_json_object_end(j);
}

static int cmd_report_run(int argc, char **argv)
{
	struct report_args a;
	struct vms_trace_opts topts = { .sz = sizeof(topts) };
	struct vms_exits_summary sum;
	struct vms_exits_row *rows = NULL;
	struct vms_session *s = NULL;
	struct vms_trace *tr = NULL;
	struct vms_table *t = NULL;
	struct vms_vmmap *map = NULL;
	const char *error = NULL;
	int only_vm = -1;
	size_t n = 0;
	void *priv;
	int ret, rc = 0;

	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	topts.buffer = a.buffer;
	ret = vms_trace_open(a.file, &topts, &tr);
	if (ret)
		return cli_error(CMD, "%s", vms_trace_open_error());
	if (a.exits.isa == VMS_X86_UNKNOWN)
		a.exits.isa = vms_x86_isa_of_vendor(vms_trace_meta(tr, "vendor"));
	if (vms_vmmap_from_trace(tr, &map)) {
		vms_trace_close(tr);
		return cli_error(CMD, "out of memory");
	}
	if (a.vm) {
		only_vm = vms_vmmap_find(map, a.vm);
		if (only_vm < 0) {
			vms_vmmap_free(map);
			vms_trace_close(tr);
			return cli_error(CMD, "%s names no VM \"%s\" (%s)", a.file, a.vm,
					 vms_vmmap_nvms(map) ? "see --per-vm for the names"
							     : "the file does not name its VMs");
		}
	}
	if (a.html || !strcmp(a.analysis, "irq")) {
		rc = a.html ? report_html(&a, tr, map) : report_irq(&a, tr, map, only_vm);
		vms_vmmap_free(map);
		vms_trace_close(tr);
		return rc;
	}
	if (strcmp(a.analysis, "exits")) {
		rc = report_vcpu(&a, tr, map, only_vm);
		vms_vmmap_free(map);
		vms_trace_close(tr);
		return rc;
	}
	if ((a.per_vm) && !vms_vmmap_nvms(map)) {
		vms_trace_close(tr);
		vms_vmmap_free(map);
		return cli_error(CMD,
				 "%s does not name its VMs: --per-vm needs a file from vmscope "
				 "record (or trace-cmd with guests)",
				 a.file);
	}
	if ((ret = vms_session_new(tr, &s)) ||
	    (ret = vms_session_add(s, &vms_exits_ops, &a.exits, &priv))) {
		vms_session_free(s);
		vms_trace_close(tr);
		return cli_error(CMD, "cannot set up the analysis: %s", vms_strerror(ret));
	}
	rc = report_run(&a, s, &error);
	vms_exits_summary(priv, &sum);
	ret = vms_exits_group(priv,
			      a.per_vcpu ? VMS_EXITS_BY_VCPU
			      : a.per_vm ? VMS_EXITS_BY_VM
					 : VMS_EXITS_BY_KEY,
			      vm_of_tid, map, only_vm, &rows, &n);
	if (!ret) {
		sort_priv = priv;
		sort_by = a.sort;
		if (n)
			qsort(rows, n, sizeof(*rows), row_cmp);
		t = build_table(&a, priv, rows, n, &sum, map);
	}
	if (!t) {
		rc = cli_error(CMD, "out of memory");
	} else if (a.format == CLI_FORMAT_JSON) {
		print_json(&a, tr, &sum, t, error);
	} else if (a.format == CLI_FORMAT_CSV) {
		vms_table_print(t, stdout, VMS_FORMAT_CSV);
	} else {
		print_header(&a, tr, &sum);
		vms_table_print(t, stdout, VMS_FORMAT_TABLE);
		print_notes(&a, &sum);
	}
	fflush(stdout);
	if (error)
		cli_error(CMD, "%s (the report covers the records before it)", error);
	vms_table_free(t);
	vms_exits_rows_free(rows, n);
	vms_session_free(s);
	vms_vmmap_free(map);
	vms_trace_close(tr);
	return rc;
}

const struct vms_cmd cmd_report = {
	.name = "report",
	.summary = "analyse a recorded trace: exits, vcpu (time in each state), cpu (who "
		   "used each host CPU), sched (wakeup latency), steal (preemptions), irq "
		   "(interrupts); --html: a page of charts",
	.usage = usage_text,
	.run = cmd_report_run,
};
