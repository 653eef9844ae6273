// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope top: the host's VMs live on an ncurses screen, on the library's sampler (the
 * one vmscope stat uses). A header, each host CPU's time as a bar with guest and steal
 * apart, then either one row per VM (run and guest shares, exits by kind, per second;
 * a VM expands into its vCPUs) or kvm_stat's classic view, one row per field with its
 * total and current rate summed over the shown VMs. kvm_stat's keys (b c f g h o p q r
 * s x) and more: sort by any column, select and expand a VM, pause. The screen is built
 * from the last sample on every redraw; sampling happens only when the interval is due.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef VMS_HAVE_NCURSES
#include <curses.h>
#include <locale.h>
#endif

#include "cli.h"
#include "vmscope/sampler.h"

#define CMD "top"

static const char usage_text[] =
	"Usage: vmscope top [OPTIONS]\n"
	"\n"
	"The host's KVM virtual machines live on a full screen, as kvm_stat shows them and\n"
	"more: each host CPU's time as a bar (user, system, guest, steal, idle), then one row\n"
	"per VM with its vCPUs' run and guest shares and its exits per second by kind (KVM's\n"
	"statistics and kvm trace events counted in the kernel), or, with 'b', one row per\n"
	"field with its total and current rate (kvm_stat's view). Keys: b c f g h o p q r s x\n"
	"as in kvm_stat, Up/Down and Enter to expand a VM into its vCPUs, < > to sort by\n"
	"another column, space to pause; 'h' lists them all. Needs a terminal.\n"
	"\n"
	"Options:\n"
	"  -s, --interval TIME      time between samples [1s]\n"
	"  -p, --pid PID            start with a filter: only the VM of this process\n"
	"  -g, --guest NAME         start with a filter: only VMs named NAME (or whose name\n"
	"                           the extended regex NAME matches)\n"
	"  -F, --fields REGEX       start with a filter: only the fields whose key this regex\n"
	"                           matches (cpu.run_s, kvm.exits, events.kvm_mmio, ...)\n"
	"      --no-events          do not count kvm trace events per vCPU thread\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 (q, SIGINT or SIGTERM), 1 when standard input or output is not a\n"
	"terminal or vmscope was built without ncurses, 2 for a wrong command line.\n";

struct top_args {
	uint64_t interval_ns;
	int pid;
	const char *guest;  /* -g: the initial guest filter */
	const char *fields; /* -F: the initial fields filter, a valid regex */
	bool events;
};

/* Compile @re as an extended regex; on error, its text in @why. */
static int compile_regex(regex_t *re, const char *text, char *why, size_t len)
{
	int err = regcomp(re, text, REG_EXTENDED | REG_NOSUB);

	if (err) {
		regerror(err, re, why, len);
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct top_args *a)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "guest", required_argument, NULL, 'g' },
		{ "fields", required_argument, NULL, 'F' },
		{ "no-events", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	char why[128];
	regex_t re;
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->events = true;
	a->interval_ns = 1000000000ULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:p:g:F:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_duration(optarg, &a->interval_ns) ||
			    a->interval_ns < 100000000ULL)
				return cli_usage_error(CMD,
						       "--interval takes a time of at least "
						       "100ms, not '%s'",
						       optarg);
			break;
		case 'p':
			if (cli_parse_uint(optarg, 1ULL << 22, &u) || !u)
				return cli_usage_error(CMD, "--pid takes a process id, not '%s'",
						       optarg);
			a->pid = (int)u;
			break;
		case 'g':
			if (!*optarg)
				return cli_usage_error(CMD, "--guest takes a name, not ''");
			a->guest = optarg;
			break;
		case 'F':
			if (compile_regex(&re, optarg, why, sizeof(why)))
				return cli_usage_error(CMD, "bad --fields regex '%s': %s", optarg,
						       why);
			regfree(&re);
			a->fields = optarg;
			break;
		case 'E':
			a->events = false;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, NULL, NULL);
			if (ret)
				return ret;
			break;
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	return 0;
}

#ifdef VMS_HAVE_NCURSES

/* ---- the columns ---- */

enum col_kind { COL_NAME, COL_PID, COL_VCPUS, COL_FIELD };

/* A column of the VM view: the VM's name, pid, vCPU count, or the rate of the first of
 * its fields that the VM knows (kernel-counted events first, KVM's statistics where the
 * events are not counted). A time field's rate is a share of one CPU, shown in %. */
#define NKEYS 2

struct vm_col {
	const char *title;
	enum col_kind kind;
	int width;
	const char *keys[NKEYS];
};

static const struct vm_col vm_cols[] = {
	{ "NAME", COL_NAME, 18, { NULL } },
	{ "PID", COL_PID, 8, { NULL } },
	{ "VCPUS", COL_VCPUS, 5, { NULL } },
	{ "run%", COL_FIELD, 7, { "cpu.run_s" } },
	{ "guest%", COL_FIELD, 7, { "cpu.guest_s" } },
	{ "sys%", COL_FIELD, 6, { "cpu.system_s" } },
	{ "runq%", COL_FIELD, 6, { "cpu.runq_wait_s" } },
	{ "exits/s", COL_FIELD, 9, { "kvm.exits", "events.kvm_exit" } },
	{ "vmm/s", COL_FIELD, 8, { "events.userspace_exit" } },
	{ "mmio/s", COL_FIELD, 8, { "events.userspace_exit.mmio", "kvm.mmio_exits" } },
	{ "io/s", COL_FIELD, 8, { "events.userspace_exit.io", "kvm.io_exits" } },
	{ "msr/s", COL_FIELD, 7, { "events.userspace_exit.msr" } },
	{ "halt/s", COL_FIELD, 8, { "kvm.halt_exits" } },
	{ "wake/s", COL_FIELD, 8, { "events.kvm_vcpu_wakeup" } },
	{ "irq/s", COL_FIELD, 8, { "kvm.irq_exits" } },
	{ "hcall/s", COL_FIELD, 8, { "events.kvm_hypercall" } },
};
#define NVMCOLS (int)(sizeof(vm_cols) / sizeof(vm_cols[0]))

/* The fields view (VIEW_EVENTS, kvm_stat's): the field's key, its total since counting began (or
 * r), its rate. */
enum { EV_FIELD, EV_TOTAL, EV_CURRENT, NEVCOLS };
static const char *const ev_titles[NEVCOLS] = { "Field", "Total", "Current" };
static const int ev_widths[NEVCOLS] = { 34, 16, 12 };

enum top_view { VIEW_VMS, VIEW_EVENTS };

#define LINE_CAP 1024
#define MAX_EXPANDED 64
#define MAX_FILTER 128

/* A row of the VM view: a VM, or one of its vCPUs (@vcpu >= 0). */
struct vm_row {
	const struct vms_sample_vm *vm;
	int vcpu;
};

/* The totals from 'r' on: each VM's sums at the reset. */
struct baseline {
	int pid;
	double *sum;
};

struct top {
	struct vms_sampler *s;
	size_t nf;
	const struct vms_field_info **field;
	int *parent; /* per field: the field whose key is its key's prefix, or -1 */
	char host[64];

	enum top_view view;
	bool paused, drill, desc, help;
	int sort_col[2]; /* per view */
	uint64_t interval_ns, next_ns;
	time_t sampled_at;

	/* Filters: VMs by pid and by name, fields by key. */
	int pid_filter;
	char guest[MAX_FILTER];
	regex_t guest_re;
	bool guest_is_re;
	char fields[MAX_FILTER];
	regex_t fields_re;
	bool has_fields;
	bool *wanted;		     /* per field: its key matches the fields filter */
	int col_key[NVMCOLS][NKEYS]; /* field indices of the VM view's columns, -1: none */

	int sel_pid, scroll[2];
	int expanded[MAX_EXPANDED];
	size_t nexpanded;
	struct baseline *base;
	size_t nbase;

	/* Per sample, rebuilt when the sample, a filter or the sort changes; they grow only
	 * when a sample has more VMs or vCPUs than any before. */
	struct vm_row *vmrows, *rows;
	size_t nvmrows, nrows, cap_vmrows, cap_rows;
	int *evrows;
	size_t nevrows;
	double *total, *current;
	size_t nvms_shown, events_missing;
	int events_err;
	const char *events_msg;
	bool dirty;

	char msg[256];
	bool has_colors;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static char log_msg[256];

/* The library's warnings go to the status line, never to the screen under curses. */
static void top_log(enum vms_log_level level, const char *msg, void *ctx)
{
	(void)level;
	(void)ctx;
	snprintf(log_msg, sizeof(log_msg), "%s", msg);
}

static void set_msg(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_msg(struct top *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
}

/* ---- filters ---- */

static bool vm_shown(const struct top *t, const struct vms_host_vm *vm)
{
	if (t->pid_filter && vm->pid != t->pid_filter)
		return false;
	if (t->guest[0] && strcmp(t->guest, vm->name) &&
	    !(t->guest_is_re && !regexec(&t->guest_re, vm->name, 0, NULL, 0)))
		return false;
	return true;
}

/* Which fields the fields filter lets through, and which field each column shows. */
static void resolve_fields(struct top *t)
{
	for (size_t k = 0; k < t->nf; k++)
		t->wanted[k] =
			!t->has_fields || !regexec(&t->fields_re, t->field[k]->key, 0, NULL, 0);
	for (int c = 0; c < NVMCOLS; c++)
		for (int i = 0; i < NKEYS; i++) {
			int k = vm_cols[c].keys[i]
					? vms_sampler_field_index(t->s, vm_cols[c].keys[i])
					: -1;

			t->col_key[c][i] = k >= 0 && t->wanted[k] ? k : -1;
		}
	t->dirty = true;
}

static bool col_visible(const struct top *t, int c)
{
	if (vm_cols[c].kind != COL_FIELD)
		return true;
	for (int i = 0; i < NKEYS; i++)
		if (t->col_key[c][i] >= 0)
			return true;
	return false;
}

static int set_guest_filter(struct top *t, const char *text)
{
	char why[128];

	if (t->guest_is_re)
		regfree(&t->guest_re);
	t->guest_is_re = false;
	snprintf(t->guest, sizeof(t->guest), "%s", text);
	/* A name that is no regex still filters by itself. */
	if (text[0] && !compile_regex(&t->guest_re, text, why, sizeof(why)))
		t->guest_is_re = true;
	t->dirty = true;
	return 0;
}

static int set_fields_filter(struct top *t, const char *text)
{
	char why[128];
	regex_t re;

	if (text[0] && compile_regex(&re, text, why, sizeof(why))) {
		set_msg(t, "bad regex '%s': %s", text, why);
		return -EINVAL;
	}
	if (t->has_fields)
		regfree(&t->fields_re);
	t->has_fields = text[0] != 0;
	if (t->has_fields)
		t->fields_re = re;
	snprintf(t->fields, sizeof(t->fields), "%s", text);
	resolve_fields(t);
	return 0;
}

/* ---- values ---- */

/* A column's value for a VM (@vcpu < 0) or one of its vCPUs; NAN when not known. */
static double col_value(const struct top *t, int c, const struct vms_sample_vm *v, int vcpu)
{
	const double *val = vcpu < 0 ? v->sum : v->vcpus[vcpu].value;
	const double *rate = vcpu < 0 ? v->sum_rate : v->vcpus[vcpu].rate;

	switch (vm_cols[c].kind) {
	case COL_PID:
		return vcpu < 0 ? v->vm->pid : v->vcpus[vcpu].thread->tid;
	case COL_VCPUS:
		return vcpu < 0 ? (double)v->nvcpus : NAN;
	case COL_FIELD:
		for (int i = 0; i < NKEYS; i++) {
			int k = t->col_key[c][i];

			if (k < 0 || isnan(val[k]))
				continue;
			return t->field[k]->seconds ? 100 * rate[k] : rate[k];
		}
		return NAN;
	default:
		return NAN;
	}
}

/* Unknown values last, whatever the order. */
static int cmp_values(double x, double y, bool desc)
{
	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	return desc ? (x < y) - (x > y) : (x > y) - (x < y);
}

static int cmp_vm_rows(const void *pa, const void *pb, void *ctx)
{
	const struct top *t = ctx;
	const struct vm_row *a = pa, *b = pb;
	int c = t->sort_col[VIEW_VMS], r;

	if (vm_cols[c].kind == COL_NAME) {
		r = strcmp(a->vm->vm->name, b->vm->vm->name);
		if (t->desc)
			r = -r;
	} else {
		r = cmp_values(col_value(t, c, a->vm, -1), col_value(t, c, b->vm, -1), t->desc);
	}
	return r ? r : (a->vm->vm->pid > b->vm->vm->pid) - (a->vm->vm->pid < b->vm->vm->pid);
}

static int cmp_ev_rows(const void *pa, const void *pb, void *ctx)
{
	const struct top *t = ctx;
	int a = *(const int *)pa, b = *(const int *)pb, r;

	switch (t->sort_col[VIEW_EVENTS]) {
	case EV_FIELD:
		r = strcmp(t->field[a]->key, t->field[b]->key);
		if (t->desc)
			r = -r;
		break;
	case EV_TOTAL:
		r = cmp_values(t->total[a], t->total[b], t->desc);
		break;
	default:
		r = cmp_values(t->current[a], t->current[b], t->desc);
		break;
	}
	return r ? r : a - b;
}

static bool is_expanded(const struct top *t, int pid)
{
	for (size_t i = 0; i < t->nexpanded; i++)
		if (t->expanded[i] == pid)
			return true;
	return false;
}

static void toggle_expanded(struct top *t, int pid)
{
	for (size_t i = 0; i < t->nexpanded; i++)
		if (t->expanded[i] == pid) {
			t->expanded[i] = t->expanded[--t->nexpanded];
			return;
		}
	if (t->nexpanded < MAX_EXPANDED)
		t->expanded[t->nexpanded++] = pid;
}

static const double *baseline_of(const struct top *t, int pid)
{
	for (size_t i = 0; i < t->nbase; i++)
		if (t->base[i].pid == pid)
			return t->base[i].sum;
	return NULL;
}

static void free_baselines(struct top *t)
{
	for (size_t i = 0; i < t->nbase; i++)
		free(t->base[i].sum);
	free(t->base);
	t->base = NULL;
	t->nbase = 0;
}

/* 'r': the totals count from the last sample on. */
static void reset_totals(struct top *t)
{
	const struct vms_sample *smp = vms_sampler_sample(t->s);

	free_baselines(t);
	t->base = calloc(smp->nvms + 1, sizeof(*t->base));
	if (!t->base) {
		set_msg(t, "reset: out of memory");
		return;
	}
	for (size_t i = 0; i < smp->nvms; i++) {
		double *sum = malloc(t->nf * sizeof(double));

		if (!sum)
			break;
		memcpy(sum, smp->vms[i].sum, t->nf * sizeof(double));
		t->base[t->nbase].pid = smp->vms[i].vm->pid;
		t->base[t->nbase++].sum = sum;
	}
	set_msg(t, "totals reset: they count from now");
	t->dirty = true;
}

static int grow(void **p, size_t *cap, size_t want, size_t elem)
{
	void *n;

	if (want <= *cap)
		return 0;
	n = realloc(*p, want * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = want;
	return 0;
}

/* The rows of both views from the last sample, filtered and sorted. */
static void build_rows(struct top *t)
{
	const struct vms_sample *smp = vms_sampler_sample(t->s);
	size_t nv = 0, n;
	int *top_rows;

	t->dirty = false;
	t->nvmrows = t->nrows = t->nevrows = 0;
	t->nvms_shown = t->events_missing = 0;
	t->events_err = 0;
	t->events_msg = "";
	for (size_t i = 0; i < smp->nvms; i++)
		nv += smp->vms[i].nvcpus;
	if (grow((void **)&t->vmrows, &t->cap_vmrows, smp->nvms + 1, sizeof(*t->vmrows)) ||
	    grow((void **)&t->rows, &t->cap_rows, smp->nvms + nv + 1, sizeof(*t->rows))) {
		set_msg(t, "out of memory");
		return;
	}
	for (size_t k = 0; k < t->nf; k++)
		t->total[k] = t->current[k] = NAN;
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];
		const double *base;

		if (!vm_shown(t, v->vm))
			continue;
		t->vmrows[t->nvmrows++] = (struct vm_row){ v, -1 };
		if (v->events_err) {
			t->events_missing++;
			t->events_err = v->events_err;
			t->events_msg = v->events_msg;
		}
		/* kvm_stat's sums over the VMs shown; a counter that went back (its VM's
		 * threads changed, the counters were opened anew) counts from its new start. */
		base = baseline_of(t, v->vm->pid);
		for (size_t k = 0; k < t->nf; k++) {
			double x = v->sum[k], b = base && !isnan(base[k]) ? base[k] : 0;

			if (isnan(x))
				continue;
			x = x >= b ? x - b : x;
			t->total[k] = isnan(t->total[k]) ? x : t->total[k] + x;
			if (!isnan(v->sum_rate[k]))
				t->current[k] = isnan(t->current[k])
							? v->sum_rate[k]
							: t->current[k] + v->sum_rate[k];
		}
	}
	t->nvms_shown = t->nvmrows;
	qsort_r(t->vmrows, t->nvmrows, sizeof(*t->vmrows), cmp_vm_rows, t);
	for (size_t i = 0; i < t->nvmrows; i++) {
		const struct vms_sample_vm *v = t->vmrows[i].vm;

		t->rows[t->nrows++] = t->vmrows[i];
		if (is_expanded(t, v->vm->pid))
			for (size_t j = 0; j < v->nvcpus; j++)
				t->rows[t->nrows++] = (struct vm_row){ v, (int)j };
	}
	/* The events view: the top-level fields sorted, each followed by its children
	 * (with x) sorted the same way. A shown child whose parent is filtered out stands
	 * at the top level. */
	top_rows = t->evrows + t->nf;
	n = 0;
	for (size_t k = 0; k < t->nf; k++) {
		int p = t->parent[k];

		if (isnan(t->total[k]) || !t->wanted[k])
			continue;
		if (p < 0 || (t->drill && (!t->wanted[p] || isnan(t->total[p]))))
			top_rows[n++] = (int)k;
	}
	qsort_r(top_rows, n, sizeof(int), cmp_ev_rows, t);
	for (size_t i = 0; i < n; i++) {
		size_t first;

		t->evrows[t->nevrows++] = top_rows[i];
		if (!t->drill)
			continue;
		first = t->nevrows;
		for (size_t k = 0; k < t->nf; k++)
			if (t->parent[k] == top_rows[i] && t->wanted[k] && !isnan(t->total[k]))
				t->evrows[t->nevrows++] = (int)k;
		qsort_r(t->evrows + first, t->nevrows - first, sizeof(int), cmp_ev_rows, t);
	}
}

static void take_sample(struct top *t)
{
	int err = vms_sampler_update(t->s);

	if (err)
		set_msg(t, "cannot read the host's VMs: %s", vms_strerror(err));
	t->sampled_at = time(NULL);
	t->dirty = true;
}

/* ---- drawing ---- */

/* One screen line, built in a buffer and cut at the screen's width. */
struct line {
	char buf[LINE_CAP];
	int len, width;
};

static void line_init(struct line *l, int width)
{
	l->len = 0;
	l->width = width < LINE_CAP - 1 ? width : LINE_CAP - 1;
	l->buf[0] = 0;
}

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= LINE_CAP - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, LINE_CAP - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + n < LINE_CAP - 1 ? l->len + n : LINE_CAP - 1;
}

static void line_put(const struct line *l, int y, attr_t attr)
{
	int n = l->len < l->width ? l->len : l->width;

	/* The screen's last cell would scroll some terminals: leave it. */
	if (y == LINES - 1 && n >= COLS)
		n = COLS - 1;
	if (attr)
		attron(attr);
	mvaddnstr(y, 0, l->buf, n);
	if (attr)
		attroff(attr);
}

/* A number in @w columns: as is when it fits, else with k, M, G; "-" when unknown. */
static void fmt_num(char *buf, size_t len, int w, double x, bool pct)
{
	static const char *const suffix[] = { "", "k", "M", "G", "T" };
	int u = 0;

	if (isnan(x)) {
		snprintf(buf, len, "%*s", w, "-");
		return;
	}
	if (pct) {
		snprintf(buf, len, "%*.1f", w, x);
		return;
	}
	if (fabs(x) < 100 && x != floor(x)) {
		snprintf(buf, len, "%*.1f", w, x);
		return;
	}
	snprintf(buf, len, "%*.0f", w, x);
	while ((int)strlen(buf) > w && u < 4) {
		x /= 1000;
		u++;
		snprintf(buf, len, "%*.1f%s", w - 1, x, suffix[u]);
	}
}

enum { PAIR_USER = 1, PAIR_SYSTEM, PAIR_GUEST, PAIR_STEAL, PAIR_IOWAIT, PAIR_TITLE };

/* A bar's segments: each kind's character and colour; nice joins user, irq system. */
static const struct {
	char ch;
	short pair;
	const char *name;
} bar_kinds[] = {
	{ 'u', PAIR_USER, "user" },	{ 's', PAIR_SYSTEM, "system+irq" },
	{ 'G', PAIR_GUEST, "guest" },	{ 'S', PAIR_STEAL, "steal" },
	{ 'w', PAIR_IOWAIT, "iowait" }, { '.', 0, "idle" },
};
#define NBAR (sizeof(bar_kinds) / sizeof(bar_kinds[0]))
#define BAR_WIDTH 20
#define BAR_CELL 44

static void bar_shares(const double *share, double out[NBAR])
{
	out[0] = share[VMS_CPU_USER] + share[VMS_CPU_NICE];
	out[1] = share[VMS_CPU_SYSTEM] + share[VMS_CPU_IRQ];
	out[2] = share[VMS_CPU_GUEST];
	out[3] = share[VMS_CPU_STEAL];
	out[4] = share[VMS_CPU_IOWAIT];
	out[5] = share[VMS_CPU_IDLE];
}

/* "cpu3 [GGGGGGGGss........] g 45% st  2%" at (y, x), cut at the screen's width. */
static void draw_bar(const struct top *t, int y, int x, const char *label, const double *share)
{
	char tail[32];
	double part[NBAR], cum = 0;
	int pos = 0;

	bar_shares(share, part);
	if (x + BAR_CELL > COLS)
		return;
	mvprintw(y, x, "%-6s[", label);
	for (size_t k = 0; k < NBAR; k++) {
		int end;

		cum += part[k];
		end = k == NBAR - 1 ? BAR_WIDTH : (int)lround(cum * BAR_WIDTH);
		if (end > BAR_WIDTH)
			end = BAR_WIDTH;
		if (t->has_colors && bar_kinds[k].pair)
			attron(COLOR_PAIR(bar_kinds[k].pair));
		for (; pos < end; pos++)
			addch((chtype)(unsigned char)bar_kinds[k].ch);
		if (t->has_colors && bar_kinds[k].pair)
			attroff(COLOR_PAIR(bar_kinds[k].pair));
	}
	snprintf(tail, sizeof(tail), "] g%3.0f%% st%3.0f%%", 100 * part[2], 100 * part[3]);
	addstr(tail);
}

/* The host CPUs' bars in as many columns as fit, or one bar of their mean when they would
 * take more than a third of the screen. Returns the next free line. */
static int draw_cpus(const struct top *t, int y)
{
	const struct vms_sample *smp = vms_sampler_sample(t->s);
	int per_line = COLS / BAR_CELL, lines, max_lines = (LINES - 6) / 3;
	struct line l;

	if (!smp->ncpus || per_line < 1 || max_lines < 1)
		return y;
	lines = (int)((smp->ncpus + per_line - 1) / per_line);
	if (lines > max_lines) {
		double mean[VMS_CPU_KINDS] = { 0 };
		char label[32];

		for (size_t i = 0; i < smp->ncpus; i++)
			for (int k = 0; k < VMS_CPU_KINDS; k++)
				mean[k] += smp->cpus[i].share[k] / (double)smp->ncpus;
		snprintf(label, sizeof(label), "all%zu", smp->ncpus);
		draw_bar(t, y++, 0, label, mean);
	} else {
		for (size_t i = 0; i < smp->ncpus; i++) {
			char label[16];

			snprintf(label, sizeof(label), "cpu%d", smp->cpus[i].cpu);
			draw_bar(t, y + (int)(i / per_line), (int)(i % per_line) * BAR_CELL, label,
				 smp->cpus[i].share);
		}
		y += lines;
	}
	line_init(&l, COLS);
	line_add(&l, "host CPUs %s:", smp->cpus_since_boot ? "since boot" : "over the interval");
	for (size_t k = 0; k < NBAR; k++)
		line_add(&l, "  %c %s", bar_kinds[k].ch, bar_kinds[k].name);
	line_put(&l, y, 0);
	return y + 1;
}

static const char *sort_title(const struct top *t)
{
	return t->view == VIEW_VMS ? vm_cols[t->sort_col[VIEW_VMS]].title
				   : ev_titles[t->sort_col[VIEW_EVENTS]];
}

static void draw_header(const struct top *t)
{
	char when[16] = "--:--:--";
	struct line l;
	struct tm tm;

	if (t->sampled_at && localtime_r(&t->sampled_at, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	line_init(&l, COLS);
	line_add(&l, "vmscope top - %s %s  every %gs", t->host, when, t->interval_ns / 1e9);
	if (t->paused)
		line_add(&l, "  PAUSED");
	line_add(&l, "  %s  sort %s %s", t->view == VIEW_VMS ? "VMs" : "fields", sort_title(t),
		 t->desc ? "desc" : "asc");
	if (t->view == VIEW_EVENTS)
		line_add(&l, "  children %s", t->drill ? "shown" : "hidden");
	if (t->guest[0])
		line_add(&l, "  guest=%s", t->guest);
	if (t->pid_filter)
		line_add(&l, "  pid=%d", t->pid_filter);
	if (t->has_fields)
		line_add(&l, "  fields=%s", t->fields);
	line_put(&l, 0, A_BOLD);
}

/* How many columns of the VM view fit the screen, counting from the left. */
static void vm_layout(const struct top *t, int cols[NVMCOLS], int *ncols)
{
	int x = 2;

	*ncols = 0;
	for (int c = 0; c < NVMCOLS; c++) {
		if (!col_visible(t, c))
			continue;
		/* The first column always, cut at the width when it is wider. */
		if (*ncols && x + vm_cols[c].width > COLS)
			break;
		cols[(*ncols)++] = c;
		x += vm_cols[c].width + 1;
	}
}

static void draw_vm_row(const struct top *t, int y, const struct vm_row *r, const int *cols,
			int ncols, bool selected)
{
	const struct vms_sample_vm *v = r->vm;
	char cell[64];
	struct line l;

	line_init(&l, COLS);
	if (r->vcpu < 0)
		line_add(&l, "%c%c", selected ? '>' : ' ', is_expanded(t, v->vm->pid) ? '-' : '+');
	else
		line_add(&l, "  ");
	for (int i = 0; i < ncols; i++) {
		const struct vm_col *c = &vm_cols[cols[i]];
		double x;

		switch (c->kind) {
		case COL_NAME:
			if (r->vcpu < 0) {
				line_add(&l, "%-*.*s ", c->width, c->width, v->vm->name);
			} else if (v->vcpus[r->vcpu].thread->vcpu >= 0) {
				snprintf(cell, sizeof(cell), "  vcpu%d",
					 v->vcpus[r->vcpu].thread->vcpu);
				line_add(&l, "%-*s ", c->width, cell);
			} else {
				line_add(&l, "%-*s ", c->width, "  vcpu?");
			}
			break;
		case COL_PID:
			line_add(&l, "%*.0f ", c->width, col_value(t, cols[i], v, r->vcpu));
			break;
		default:
			x = col_value(t, cols[i], v, r->vcpu);
			fmt_num(cell, sizeof(cell), c->width, x,
				c->kind == COL_FIELD && c->title[strlen(c->title) - 1] == '%');
			line_add(&l, "%s ", cell);
			break;
		}
	}
	line_put(&l, y, selected ? A_REVERSE : 0);
}

/* Keep the selected VM on the screen: the first VM when it is gone. Returns its row. */
static int select_row(struct top *t)
{
	for (size_t i = 0; i < t->nrows; i++)
		if (t->rows[i].vcpu < 0 && t->rows[i].vm->vm->pid == t->sel_pid)
			return (int)i;
	t->sel_pid = t->nrows ? t->rows[0].vm->vm->pid : 0;
	return t->nrows ? 0 : -1;
}

static int draw_vms(struct top *t, int y, int bottom)
{
	int cols[NVMCOLS], ncols, sel = select_row(t), space = bottom - y - 1;
	struct line l;

	vm_layout(t, cols, &ncols);
	line_init(&l, COLS);
	line_add(&l, "  ");
	for (int i = 0; i < ncols; i++) {
		const struct vm_col *c = &vm_cols[cols[i]];
		char title[24];

		snprintf(title, sizeof(title), "%s%s", cols[i] == t->sort_col[VIEW_VMS] ? "*" : "",
			 c->title);
		line_add(&l, c->kind == COL_NAME ? "%-*s " : "%*s ", c->width, title);
	}
	line_put(&l, y++, A_BOLD | A_UNDERLINE);
	if (!t->nrows) {
		mvaddnstr(y, 2,
			  t->nvms_shown || vms_sampler_sample(t->s)->nvms
				  ? "no VM matches the filters (c clears them)"
				  : "no KVM virtual machine runs on this host",
			  COLS - 3 > 0 ? COLS - 3 : 0);
		return y + 1;
	}
	if (space < 1)
		return y;
	if (sel >= 0 && sel < t->scroll[VIEW_VMS])
		t->scroll[VIEW_VMS] = sel;
	if (sel >= t->scroll[VIEW_VMS] + space)
		t->scroll[VIEW_VMS] = sel - space + 1;
	if (t->scroll[VIEW_VMS] > (int)t->nrows - 1)
		t->scroll[VIEW_VMS] = 0;
	for (int i = t->scroll[VIEW_VMS]; i < (int)t->nrows && y < bottom; i++, y++)
		draw_vm_row(t, y, &t->rows[i], cols, ncols, i == sel);
	return y;
}

static int draw_events(struct top *t, int y, int bottom)
{
	int space = bottom - y - 1, ncols = 0, x = 0;
	struct line l;

	for (int c = 0; c < NEVCOLS && (!c || x + ev_widths[c] <= COLS); c++, ncols++)
		x += ev_widths[c] + 1;
	line_init(&l, COLS);
	for (int c = 0; c < ncols; c++) {
		char title[24];

		snprintf(title, sizeof(title), "%s%s", c == t->sort_col[VIEW_EVENTS] ? "*" : "",
			 ev_titles[c]);
		line_add(&l, c == EV_FIELD ? "%-*s " : "%*s ", ev_widths[c], title);
	}
	line_put(&l, y++, A_BOLD | A_UNDERLINE);
	if (!t->nevrows) {
		mvaddnstr(y, 2, "no field to show (c clears the filters)",
			  COLS - 3 > 0 ? COLS - 3 : 0);
		return y + 1;
	}
	if (t->scroll[VIEW_EVENTS] > (int)t->nevrows - (space > 0 ? space : 1))
		t->scroll[VIEW_EVENTS] = (int)t->nevrows - (space > 0 ? space : 1);
	if (t->scroll[VIEW_EVENTS] < 0)
		t->scroll[VIEW_EVENTS] = 0;
	for (int i = t->scroll[VIEW_EVENTS]; i < (int)t->nevrows && y < bottom; i++, y++) {
		int k = t->evrows[i];
		const struct vms_field_info *f = t->field[k];
		char cell[64];

		line_init(&l, COLS);
		snprintf(cell, sizeof(cell), "%s%s", t->parent[k] >= 0 && t->drill ? "  " : "",
			 f->key);
		line_add(&l, "%-*s ", ev_widths[EV_FIELD], cell);
		if (ncols > EV_TOTAL) {
			if (f->seconds && !isnan(t->total[k]))
				snprintf(cell, sizeof(cell), "%*.3fs", ev_widths[EV_TOTAL] - 1,
					 t->total[k]);
			else
				fmt_num(cell, sizeof(cell), ev_widths[EV_TOTAL], t->total[k],
					false);
			line_add(&l, "%s ", cell);
		}
		if (ncols > EV_CURRENT) {
			if (f->seconds && !isnan(t->current[k]))
				snprintf(cell, sizeof(cell), "%*.1f%%", ev_widths[EV_CURRENT] - 1,
					 100 * t->current[k]);
			else
				fmt_num(cell, sizeof(cell), ev_widths[EV_CURRENT], t->current[k],
					false);
			line_add(&l, "%s", cell);
		}
		line_put(&l, y, 0);
	}
	return y;
}

static const char *const help_lines[] = {
	"vmscope top: keys (any key closes this help)",
	"b        VM rows <-> rows per field (kvm_stat's view)",
	"c        clear the filters (guest, pid, fields)",
	"f        filter the fields by a regex on their keys",
	"g        filter the VMs by guest name (or a regex)",
	"h, ?     this help",
	"o        flip the sort order",
	"p        filter the VMs by pid",
	"q        quit (also SIGINT, SIGTERM)",
	"r        reset: the totals count from now",
	"s        set the interval (2s, 500ms)",
	"x        fields view: show or hide the child events",
	"Up/Down  select a VM (also k/j); scroll the fields",
	"Enter, e expand the selected VM into its vCPUs",
	"< >      sort by another column (also Left/Right)",
	"space    pause or resume sampling",
	"Esc      cancel a prompt",
	"",
	"u user  s system+irq  G guest  S steal  w iowait  . idle",
	"-: not known (KVM statistics or events not readable)",
};
#define NHELP (int)(sizeof(help_lines) / sizeof(help_lines[0]))

static void draw_help(void)
{
	int w = 62, h = NHELP + 2, x0, y0;

	if (w > COLS)
		w = COLS;
	if (h > LINES)
		h = LINES;
	x0 = (COLS - w) / 2;
	y0 = (LINES - h) / 2;
	for (int y = 0; y < h; y++) {
		move(y0 + y, x0);
		for (int x = 0; x < w; x++)
			addch(' ' | A_REVERSE);
		if (y > 0 && y - 1 < NHELP && y < h - 1) {
			attron(A_REVERSE);
			mvaddnstr(y0 + y, x0 + 2, help_lines[y - 1], w - 3 > 0 ? w - 3 : 0);
			attroff(A_REVERSE);
		}
	}
}

static void draw_status(const struct top *t, const char *prompt, const char *input)
{
	struct line l;

	line_init(&l, COLS);
	if (prompt)
		line_add(&l, "%s%s", prompt, input);
	else if (t->msg[0])
		line_add(&l, "%s", t->msg);
	else if (log_msg[0])
		line_add(&l, "%s", log_msg);
	else if (t->events_missing)
		line_add(&l, "events not counted for %zu VM(s): %s", t->events_missing,
			 t->events_err == -EACCES || t->events_err == -EPERM
				 ? "not permitted (needs root or perf_event_paranoid <= 1)"
			 : t->events_msg[0] ? t->events_msg
					    : vms_strerror(t->events_err));
	else
		line_add(&l, "h help  q quit  b VMs/fields  space pause  Enter expand  < > sort");
	move(LINES - 1, 0);
	clrtoeol();
	line_put(&l, LINES - 1, prompt ? 0 : A_DIM);
	if (prompt)
		move(LINES - 1, l.len < COLS - 1 ? l.len : COLS - 1);
}

static void draw(struct top *t, const char *prompt, const char *input)
{
	int y;

	if (t->dirty)
		build_rows(t);
	erase();
	draw_header(t);
	y = draw_cpus(t, 1);
	y++;
	if (t->view == VIEW_VMS)
		draw_vms(t, y, LINES - 1);
	else
		draw_events(t, y, LINES - 1);
	draw_status(t, prompt, input);
	if (t->help)
		draw_help();
	curs_set(prompt ? 1 : 0);
	refresh();
}

/* ---- keys ---- */

/* A line typed on the status line; false when cancelled (Esc, or a signal). */
static bool prompt_line(struct top *t, const char *prompt, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	timeout(200);
	for (;;) {
		int ch;

		draw(t, prompt, buf);
		ch = getch();
		if (stop)
			return false;
		if (ch == ERR || ch == KEY_RESIZE)
			continue;
		if (ch == 27)
			return false;
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			return true;
		if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
			if (n)
				buf[--n] = 0;
		} else if (ch >= 32 && ch < 127 && n + 1 < len) {
			buf[n++] = (char)ch;
			buf[n] = 0;
		}
	}
}

static void move_selection(struct top *t, int delta)
{
	int sel = select_row(t), i = sel;

	if (t->view == VIEW_EVENTS) {
		t->scroll[VIEW_EVENTS] += delta;
		return;
	}
	if (sel < 0)
		return;
	for (i += delta; i >= 0 && i < (int)t->nrows; i += delta)
		if (t->rows[i].vcpu < 0) {
			t->sel_pid = t->rows[i].vm->vm->pid;
			return;
		}
}

/* < and >: the next column that is shown. */
static void move_sort(struct top *t, int delta)
{
	int *c = &t->sort_col[t->view];

	if (t->view == VIEW_EVENTS) {
		*c = (*c + delta + NEVCOLS) % NEVCOLS;
	} else {
		int cols[NVMCOLS], ncols, at = 0;

		vm_layout(t, cols, &ncols);
		if (!ncols)
			return;
		for (int i = 0; i < ncols; i++)
			if (cols[i] == *c)
				at = i;
		*c = cols[(at + delta + ncols) % ncols];
	}
	t->dirty = true;
}

static void key_prompt(struct top *t, int ch)
{
	char buf[MAX_FILTER];
	unsigned long long u;
	uint64_t ns;

	switch (ch) {
	case 'f':
		if (prompt_line(t, "fields regex (empty: all): ", buf, sizeof(buf)) &&
		    !set_fields_filter(t, buf))
			set_msg(t, "%s%s", buf[0] ? "fields matching " : "all fields", buf);
		break;
	case 'g':
		if (prompt_line(t, "guest name or regex (empty: all): ", buf, sizeof(buf))) {
			set_guest_filter(t, buf);
			set_msg(t, "%s%s", buf[0] ? "VMs named " : "every VM", buf);
		}
		break;
	case 'p':
		if (!prompt_line(t, "pid (empty: all): ", buf, sizeof(buf)))
			break;
		if (!buf[0]) {
			t->pid_filter = 0;
		} else if (cli_parse_uint(buf, 1ULL << 22, &u) || !u) {
			set_msg(t, "not a pid: '%s'", buf);
			break;
		} else {
			t->pid_filter = (int)u;
		}
		t->dirty = true;
		break;
	case 's':
		if (!prompt_line(t, "interval (e.g. 2s, 500ms): ", buf, sizeof(buf)))
			break;
		if (cli_parse_duration(buf, &ns) || ns < 100000000ULL) {
			set_msg(t, "the interval is a time of at least 100ms, not '%s'", buf);
			break;
		}
		t->interval_ns = ns;
		t->next_ns = cli_mono_ns() + ns;
		set_msg(t, "every %gs", ns / 1e9);
		break;
	}
}

/* Returns false on q. */
static bool handle_key(struct top *t, int ch)
{
	t->msg[0] = 0;
	log_msg[0] = 0;
	if (t->help && ch != KEY_RESIZE) {
		t->help = false;
		return true;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		return false;
	case 'b':
		t->view = t->view == VIEW_VMS ? VIEW_EVENTS : VIEW_VMS;
		break;
	case 'c':
		t->pid_filter = 0;
		set_guest_filter(t, "");
		set_fields_filter(t, "");
		set_msg(t, "filters cleared");
		break;
	case 'f':
	case 'g':
	case 'p':
	case 's':
		key_prompt(t, ch);
		break;
	case 'h':
	case '?':
		t->help = true;
		break;
	case 'o':
		t->desc = !t->desc;
		t->dirty = true;
		break;
	case 'r':
		reset_totals(t);
		break;
	case 'x':
		t->drill = !t->drill;
		t->dirty = true;
		break;
	case ' ':
		t->paused = !t->paused;
		if (!t->paused)
			t->next_ns = cli_mono_ns();
		break;
	case KEY_UP:
	case 'k':
		move_selection(t, -1);
		break;
	case KEY_DOWN:
	case 'j':
		move_selection(t, 1);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case 'e':
		if (t->view == VIEW_VMS && select_row(t) >= 0) {
			toggle_expanded(t, t->sel_pid);
			t->dirty = true;
		}
		break;
	case '<':
	case KEY_LEFT:
		move_sort(t, -1);
		break;
	case '>':
	case KEY_RIGHT:
		move_sort(t, 1);
		break;
	case KEY_RESIZE:
		clear();
		break;
	default:
		break;
	}
	return true;
}

/* ---- set-up ---- */

static int top_init(struct top *t, const struct top_args *a)
{
	struct vms_sampler_opts so = { .sz = sizeof(so), .no_events = !a->events };
	int err = vms_sampler_new(&so, &t->s);

	if (err)
		return err;
	t->nf = vms_sampler_nfields(t->s);
	t->field = calloc(t->nf, sizeof(*t->field));
	t->parent = calloc(t->nf, sizeof(int));
	t->wanted = calloc(t->nf, sizeof(bool));
	t->evrows = calloc(2 * t->nf, sizeof(int));
	t->total = calloc(t->nf, sizeof(double));
	t->current = calloc(t->nf, sizeof(double));
	if (!t->field || !t->parent || !t->wanted || !t->evrows || !t->total || !t->current)
		return -ENOMEM;
	for (size_t k = 0; k < t->nf; k++)
		t->field[k] = vms_sampler_field(t->s, k);
	/* A child event: the longest other key that is its key's prefix up to a dot. */
	for (size_t k = 0; k < t->nf; k++) {
		size_t best = 0;

		t->parent[k] = -1;
		for (size_t p = 0; p < t->nf; p++) {
			size_t n = strlen(t->field[p]->key);

			if (p != k && n > best && !strncmp(t->field[k]->key, t->field[p]->key, n) &&
			    t->field[k]->key[n] == '.') {
				best = n;
				t->parent[k] = (int)p;
			}
		}
	}
	t->interval_ns = a->interval_ns;
	t->desc = true;
	t->sort_col[VIEW_VMS] = 3; /* run% */
	t->sort_col[VIEW_EVENTS] = EV_CURRENT;
	t->pid_filter = a->pid;
	if (gethostname(t->host, sizeof(t->host) - 1))
		snprintf(t->host, sizeof(t->host), "localhost");
	set_guest_filter(t, a->guest ? a->guest : "");
	return set_fields_filter(t, a->fields ? a->fields : "");
}

static void top_free(struct top *t)
{
	vms_sampler_free(t->s);
	free(t->field);
	free(t->parent);
	free(t->wanted);
	free(t->evrows);
	free(t->total);
	free(t->current);
	free(t->vmrows);
	free(t->rows);
	free_baselines(t);
	if (t->guest_is_re)
		regfree(&t->guest_re);
	if (t->has_fields)
		regfree(&t->fields_re);
}

static void init_colors(struct top *t)
{
	if (!has_colors() || start_color() == ERR)
		return;
	use_default_colors();
	init_pair(PAIR_USER, COLOR_GREEN, -1);
	init_pair(PAIR_SYSTEM, COLOR_RED, -1);
	init_pair(PAIR_GUEST, COLOR_CYAN, -1);
	init_pair(PAIR_STEAL, COLOR_MAGENTA, -1);
	init_pair(PAIR_IOWAIT, COLOR_BLUE, -1);
	t->has_colors = true;
}

static int top_loop(struct top *t)
{
	take_sample(t);
	t->next_ns = cli_mono_ns() + t->interval_ns;
	draw(t, NULL, NULL);
	while (!stop) {
		uint64_t now = cli_mono_ns();
		int ch, wait_ms = 250;

		if (!t->paused && now >= t->next_ns) {
			take_sample(t);
			/* The next one an interval on, or from now when sampling fell behind. */
			t->next_ns += t->interval_ns;
			if (t->next_ns <= now)
				t->next_ns = now + t->interval_ns;
			draw(t, NULL, NULL);
			continue;
		}
		if (!t->paused && (t->next_ns - now) / 1000000 < (uint64_t)wait_ms)
			wait_ms = (int)((t->next_ns - now) / 1000000) + 1;
		timeout(wait_ms);
		ch = getch();
		if (stop)
			break;
		if (ch == ERR)
			continue;
		if (!handle_key(t, ch))
			break;
		draw(t, NULL, NULL);
	}
	return 0;
}

static int top_main(const struct top_args *a)
{
	struct sigaction sa;
	struct top t;
	SCREEN *scr;
	int err, rc;

	memset(&t, 0, sizeof(t));
	err = top_init(&t, a);
	if (err) {
		top_free(&t);
		return cli_error(CMD, "%s", vms_strerror(err));
	}
	vms_set_log(top_log, NULL, VMS_LOG_WARN);
	/* Ours before curses's: a signal ends the loop, and endwin() restores the terminal. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	setlocale(LC_CTYPE, "");
	scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		top_free(&t);
		return cli_error(CMD, "cannot drive the terminal '%s' (is TERM right?)",
				 getenv("TERM") ? getenv("TERM") : "");
	}
	set_term(scr);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	init_colors(&t);
	rc = top_loop(&t);
	endwin();
	delscreen(scr);
	vms_set_log(NULL, NULL, VMS_LOG_ERROR);
	top_free(&t);
	return rc;
}

#endif /* VMS_HAVE_NCURSES */

static int cmd_top_run(int argc, char **argv)
{
	struct top_args a;
	int ret = parse_args(argc, argv, &a);

	if (ret)
		return ret;
#ifndef VMS_HAVE_NCURSES
	return cli_error(CMD, "this vmscope was built without ncurses: install libncurses-dev "
			      "and rebuild (meson finds ncursesw through pkg-config)");
#else
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_error(CMD,
				 "standard %s is not a terminal: top draws a screen and reads "
				 "keys (for text, CSV or JSON use 'vmscope stat')",
				 isatty(STDOUT_FILENO) ? "input" : "output");
	return top_main(&a);
#endif
}

const struct vms_cmd cmd_top = {
	.name = "top",
	.summary = "the host's VMs live on a full screen (kvm_stat's keys, vCPUs, host CPUs)",
	.usage = usage_text,
	.run = cmd_top_run,
};
