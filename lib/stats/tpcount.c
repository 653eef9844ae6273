// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Kernel-counted trace events per thread: one counting perf event per (thread, event),
 * each with an optional ftrace filter ("reason == 6"), as kvm_stat counts exits by reason
 * when the kernel has no hist triggers. Nothing is recorded: the kernel only increments a
 * counter when the event fires in that thread, and a read is one read(2) per counter.
 * Works without debugfs and without a tracefs instance of our own (only the event ids
 * are read from tracefs).
 */
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <tracefs.h>
#include <unistd.h>

#include "vmscope-local.h"
#include "vmscope/stats.h"

struct vms_tpcount {
	size_t nev, ntids;
	int *fds; /* ntids x nev, -1 where the event does not exist */
	uint64_t *last;
};

static int event_id(const char *system, const char *name)
{
	const char *dir = tracefs_tracing_dir();
	char path[512];
	uint64_t id;
	int err;

	if (!dir)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/events/%s/%s/id", dir, system, name);
	err = vms_read_u64(path, &id);
	return err ? err : (int)id;
}

static int perf_open(int id, int tid)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = (uint64_t)id;
	attr.sample_period = 0;
	attr.exclude_guest = 0;
	return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

void vms_tpcount_free(struct vms_tpcount *tc)
{
	if (!tc)
		return;
	for (size_t i = 0; i < tc->nev * tc->ntids; i++)
		if (tc->fds[i] >= 0)
			close(tc->fds[i]);
	free(tc->fds);
	free(tc->last);
	free(tc);
}

int vms_tpcount_open(const struct vms_tp_event *ev, size_t nev, const int *tids, size_t ntids,
		     struct vms_tpcount **out, char *msg, size_t msglen)
{
	struct vms_tpcount *tc;
	int *ids, err = 0;
	size_t opened = 0;

	*out = NULL;
	if (msg && msglen)
		msg[0] = '\0';
	if (!nev || !ntids)
		return -EINVAL;
	tc = calloc(1, sizeof(*tc));
	ids = calloc(nev, sizeof(*ids));
	if (!tc || !ids || !(tc->fds = malloc(nev * ntids * sizeof(int))) ||
	    !(tc->last = calloc(nev * ntids, sizeof(uint64_t)))) {
		free(ids);
		vms_tpcount_free(tc);
		return -ENOMEM;
	}
	tc->nev = nev;
	tc->ntids = ntids;
	for (size_t i = 0; i < nev * ntids; i++)
		tc->fds[i] = -1;
	for (size_t e = 0; e < nev; e++)
		ids[e] = event_id(ev[e].system, ev[e].name);
	for (size_t t = 0; t < ntids; t++) {
		for (size_t e = 0; e < nev; e++) {
			int fd;

			if (ids[e] < 0)
				continue;
			fd = perf_open(ids[e], tids[t]);
			if (fd < 0) {
				err = -errno;
				if (msg && msglen)
					snprintf(msg, msglen,
						 "perf_event_open(%s:%s, thread %d): %s",
						 ev[e].system, ev[e].name, tids[t],
						 strerror(errno));
				continue;
			}
			if (ev[e].filter && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, ev[e].filter)) {
				err = -errno;
				if (msg && msglen)
					snprintf(msg, msglen, "filter \"%s\" on %s:%s: %s",
						 ev[e].filter, ev[e].system, ev[e].name,
						 strerror(errno));
				close(fd);
				continue;
			}
			tc->fds[t * nev + e] = fd;
			opened++;
		}
	}
	free(ids);
	if (!opened) {
		vms_tpcount_free(tc);
		return err ? err : -ENOENT;
	}
	*out = tc;
	return 0;
}

int vms_tpcount_read(struct vms_tpcount *tc, uint64_t *counts, bool *valid)
{
	for (size_t i = 0; i < tc->nev * tc->ntids; i++) {
		uint64_t v;

		valid[i] = false;
		if (tc->fds[i] < 0)
			continue;
		/* A thread that exited keeps its last count. */
		if (read(tc->fds[i], &v, sizeof(v)) == (ssize_t)sizeof(v))
			tc->last[i] = v;
		counts[i] = tc->last[i];
		valid[i] = true;
	}
	return 0;
}
