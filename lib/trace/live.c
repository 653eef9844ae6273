// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Live traces: the records of a tracefs instance of our own, as the kernel writes them,
 * through the same page walker and CPU merge as trace files.
 *
 * Each CPU's trace_pipe_raw is read without blocking, page by page, into that CPU's window
 * (a fixed buffer: the record being handed out never moves). Time order across CPUs needs
 * to know that no CPU still holds an older record: the instance uses the "mono" clock, and
 * each round notes CLOCK_MONOTONIC before reading each CPU, so every event of that CPU
 * older than that moment has been read (less a margin for events being written while the
 * CPU was read). Records older than the earliest such moment are handed out; newer ones
 * wait for the next round. vms_trace_stop() turns tracing off, reads what is left of every
 * CPU, and lets everything out.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tracefs/tracefs.h>
#include <traceevent/event-parse.h>

#include "trace-local.h"

#define LIVE_WINDOW_PAGES 256
#define LIVE_MARGIN_NS 10000000ULL /* events being written while their CPU was read */

static const char *const default_events[] = {
	"kvm:kvm_entry",
	"kvm:kvm_exit",
	"kvm:kvm_mmio",
	"kvm:kvm_pio",
	"kvm:kvm_msr",
	"kvm:kvm_userspace_exit",
	"kvm:kvm_vcpu_wakeup",
	"kvm:kvm_hypercall",
	"kvm:kvm_inj_virq",
	"kvm:kvm_set_irq",
	"sched:sched_switch",
	"sched:sched_wakeup",
	"sched:sched_wakeup_new",
	"sched:sched_migrate_task",
	"sched:sched_process_exit",
	NULL,
};

/* "common_pid == t1 || ..." for every thread of @pids; NULL when too long or none. */
static char *thread_filter(const int *pids, size_t npids)
{
	char *f = NULL, path[64];
	size_t len = 0;
	FILE *out = open_memstream(&f, &len);
	int n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < npids; i++) {
		struct dirent **ents;
		int k;

		snprintf(path, sizeof(path), "/proc/%d/task", pids[i]);
		k = scandir(path, &ents, NULL, NULL);
		for (int j = 0; j < k; j++) {
			if (atoi(ents[j]->d_name) > 0)
				fprintf(out, "%scommon_pid == %s", n++ ? " || " : "",
					ents[j]->d_name);
			free(ents[j]);
		}
		if (k >= 0)
			free(ents);
	}
	fclose(out);
	if (!n || len > 16384) {
		free(f);
		return NULL;
	}
	return f;
}

static int live_setup(struct vms_trace *t, const struct vms_live_opts *opts)
{
	const char *const *events = opts->events ? opts->events : default_events;
	char name[64], num[32], *filter;
	char *hp;
	int ret;

	static unsigned int serial;

	vms_trace_remove_stale_instances();
	/* One process may run several live traces (exit reasons, wakeup latency). */
	snprintf(name, sizeof(name), "vmscope-%d-live%u", getpid(),
		 __atomic_fetch_add(&serial, 1, __ATOMIC_RELAXED));
	t->inst = tracefs_instance_create(name);
	if (!t->inst)
		return vms_trace_fail(t, errno ? -errno : -EIO,
				      "cannot create the tracefs instance %s: %s (root needed)",
				      name, strerror(errno ? errno : EIO));
	tracefs_trace_off(t->inst);
	snprintf(num, sizeof(num), "%u", opts->buffer_kb ? opts->buffer_kb : 4096);
	tracefs_instance_file_write(t->inst, "buffer_size_kb", num);
	if (tracefs_instance_file_write(t->inst, "trace_clock", "mono") < 0)
		return vms_trace_fail(t, -ENOTSUP, "this kernel has no \"mono\" trace clock");
	hp = tracefs_instance_file_read(NULL, "events/header_page", NULL);
	if (!hp || tep_parse_header_page(t->tep, hp, strlen(hp), sizeof(long))) {
		free(hp);
		return vms_trace_fail(t, -EIO, "cannot read tracefs events/header_page");
	}
	free(hp);
	filter = opts->npids ? thread_filter(opts->pids, opts->npids) : NULL;
	for (size_t i = 0; events[i]; i++) {
		char sys[64], ev[128], *fmt;
		int size = 0;

		if (sscanf(events[i], "%63[^:]:%127s", sys, ev) != 2)
			return vms_trace_fail(t, -EINVAL, "\"%s\" is not system:event", events[i]);
		if (tracefs_event_enable(t->inst, sys, ev))
			continue; /* this kernel lacks it */
		fmt = tracefs_event_file_read(t->inst, sys, ev, "format", &size);
		if (fmt)
			vms_trace_parse_format(t, fmt, (uint64_t)size, sys, (uint32_t)i);
		free(fmt);
		if (filter && !strcmp(sys, "kvm"))
			tracefs_event_file_write(t->inst, sys, ev, "filter", filter);
	}
	free(filter);
	t->ncpus = (unsigned int)sysconf(_SC_NPROCESSORS_CONF);
	t->cpus = calloc(t->ncpus, sizeof(*t->cpus));
	t->tcpu = calloc(t->ncpus, sizeof(*t->tcpu));
	if (!t->cpus || !t->tcpu)
		return -ENOMEM;
	for (unsigned int c = 0; c < t->ncpus; c++) {
		t->cpus[c].cpu = (int)c;
		t->tcpu[c] = tracefs_cpu_open(t->inst, (int)c, true);
		if (!t->tcpu[c])
			return vms_trace_fail(t, -errno, "cannot open CPU %u's trace_pipe_raw", c);
		if (!t->info.page_size)
			t->info.page_size = (unsigned int)tracefs_cpu_read_size(t->tcpu[c]);
	}
	if (!t->info.page_size)
		t->info.page_size = (unsigned int)getpagesize();
	for (unsigned int c = 0; c < t->ncpus; c++) {
		t->cpus[c].cap = (LIVE_WINDOW_PAGES + 1) * (size_t)t->info.page_size;
		t->cpus[c].buf = calloc(1, t->cpus[c].cap);
		if (!t->cpus[c].buf)
			return -ENOMEM;
		t->cpus[c].window = t->cpus[c].buf;
	}
	ret = tracefs_trace_on(t->inst);
	return ret < 0 ? vms_trace_fail(t, -EIO, "cannot start tracing in %s", name) : 0;
}

int vms_trace_open_live(const struct vms_live_opts *opts, struct vms_trace **out)
{
	struct vms_trace *t;
	int ret;

	*out = NULL;
	vms_trace_open_errbuf[0] = '\0';
	if (!opts || opts->sz < sizeof(*opts))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	pthread_cond_init(&t->walk_cond, NULL);
	t->fd = -1;
	t->live = true;
	t->live_nap_ns = (opts->poll_ms ? (long)opts->poll_ms : 20) * 1000000L;
	t->path = strdup("live");
	t->tep = tep_alloc();
	if (!t->path || !t->tep) {
		vms_trace_close(t);
		return -ENOMEM;
	}
	tep_set_file_bigendian(t->tep, TEP_LITTLE_ENDIAN);
	tep_set_local_bigendian(t->tep, TEP_LITTLE_ENDIAN);
	tep_set_long_size(t->tep, sizeof(long));
	t->info.version = 0;
	t->info.long_size = sizeof(long);
	snprintf(t->clock, sizeof(t->clock), "mono");
	snprintf(t->compression, sizeof(t->compression), "none");
	ret = live_setup(t, opts);
	if (!ret)
		ret = vms_dat_stream_init(t);
	if (ret) {
		snprintf(vms_trace_open_errbuf, sizeof(vms_trace_open_errbuf), "%s",
			 t->err[0] ? t->err : vms_strerror(ret));
		vms_trace_close(t);
		return ret;
	}
	t->info.ncpus = t->ncpus;
	t->info.compression = t->compression;
	t->info.buffer = "live";
	t->info.clock = t->clock;
	t->info.uname = t->uname;
	*out = t;
	return 0;
}

int vms_trace_live_set_pids(struct vms_trace *t, const int *pids, size_t n)
{
	size_t cap = n * 12 + 2, len = 0;
	char *buf;
	int ret;

	if (!t->live || !t->inst)
		return -EINVAL;
	if (!n)
		return tracefs_trace_off(t->inst) < 0 ? -EIO : 0;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%d ", pids[i]);
	buf[len ? len - 1 : 0] = '\n';
	ret = 0;
	if (tracefs_instance_file_write(t->inst, "set_event_pid", buf) < 0)
		ret = errno ? -errno : -EIO;
	free(buf);
	if (!ret && tracefs_trace_on(t->inst) < 0)
		ret = -EIO;
	return ret;
}

void vms_trace_stop(struct vms_trace *t)
{
	if (t->live)
		__atomic_store_n(&t->live_stop, true, __ATOMIC_SEQ_CST);
}

/* Append what CPU @c has now to its window (whole window consumed: start it over). */
static int read_cpu(struct vms_trace *t, unsigned int i, bool flush)
{
	struct vms_cpu_stream *c = &t->cpus[i];
	const size_t ps = t->info.page_size;
	int n;

	if (!c->active && c->pos >= c->len)
		c->pos = c->len = 0; /* nothing of it is in use: reuse the window */
	while (c->len + ps <= c->cap - ps) {
		uint8_t *page = c->buf + c->len;

		n = flush ? tracefs_cpu_flush(t->tcpu[i], page)
			  : tracefs_cpu_read(t->tcpu[i], page, true);
		if (n <= 0)
			break;
		if ((size_t)n < ps)
			memset(page + n, 0, ps - (size_t)n);
		c->len += ps;
	}
	return 0;
}

/* One round: read every CPU, move the watermark. Stopped: flush and open the gates. */
int vms_live_round(struct vms_trace *t)
{
	uint64_t w = UINT64_MAX;
	bool stop = __atomic_load_n(&t->live_stop, __ATOMIC_SEQ_CST);

	if (stop && !t->live_ended) {
		tracefs_trace_off(t->inst);
		for (unsigned int i = 0; i < t->ncpus; i++) {
			read_cpu(t, i, false);
			read_cpu(t, i, true);
		}
		t->live_ended = true;
		t->live_w = UINT64_MAX;
		return 0;
	}
	if (t->live_ended)
		return 0;
	for (unsigned int i = 0; i < t->ncpus; i++) {
		uint64_t r = vms_mono_ns();

		read_cpu(t, i, false);
		if (r < w)
			w = r;
	}
	t->live_w = w > LIVE_MARGIN_NS ? w - LIVE_MARGIN_NS : 0;
	return 0;
}

/* The window of a live CPU: what the rounds appended. 0: nothing now (not the end). */
int vms_live_fill(struct vms_trace *t, struct vms_cpu_stream *c)
{
	(void)t;
	return c->pos < c->len ? 1 : 0;
}

void vms_live_free(struct vms_trace *t)
{
	for (unsigned int i = 0; t->tcpu && i < t->ncpus; i++)
		if (t->tcpu[i])
			tracefs_cpu_close(t->tcpu[i]);
	free(t->tcpu);
	t->tcpu = NULL;
	if (t->inst) {
		tracefs_trace_off(t->inst);
		tracefs_instance_destroy(t->inst);
		tracefs_instance_free(t->inst);
		t->inst = NULL;
	}
}
