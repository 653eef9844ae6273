// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A cgroup of one's own, in the cpuacct v1 hierarchy and in cgroup2, for the calibration
 * run of vmscope validate: the test VM runs inside cgroups that count nothing else, so the
 * cgroup sources can be checked against its exact truth, and the process is moved back
 * and the cgroups removed afterwards.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acct-local.h"

struct vms_acct_cgroup {
	int n;
	struct {
		char dir[512];	/* the cgroup we made */
		char back[512]; /* where the process was */
	} h[2];
};

static int write_pid(const char *dir)
{
	char path[600], buf[32];
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		err = -errno;
	close(fd);
	return err;
}

/* The process's current cgroup path in one hierarchy ("" when not found). */
static void own_cgroup(bool v2, char *out, size_t len)
{
	char buf[4096], *save = NULL, *line;

	out[0] = '\0';
	if (vms_read_text("/proc/self/cgroup", buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		bool match;

		if (!c2)
			continue;
		*c2 = '\0';
		if (v2) {
			match = !strcmp(line, "0:") && c1 == line + 1;
		} else {
			char ctl[256];

			snprintf(ctl, sizeof(ctl), ",%s,", c1 + 1);
			match = strstr(ctl, ",cpuacct,") != NULL;
		}
		if (match) {
			snprintf(out, len, "%s", c2 + 1);
			return;
		}
	}
}

static int enter_one(struct vms_acct_cgroup *cg, bool v2, const char *name, char *msg,
		     size_t msglen)
{
	char mnt[256], cur[256];
	int i = cg->n, err;

	err = acct_cgroup_mount("/proc", v2, mnt, sizeof(mnt));
	if (err)
		return err;
	own_cgroup(v2, cur, sizeof(cur));
	snprintf(cg->h[i].back, sizeof(cg->h[i].back), "%s%s", mnt, cur);
	snprintf(cg->h[i].dir, sizeof(cg->h[i].dir), "%s/%s", mnt, name);
	if (mkdir(cg->h[i].dir, 0755) && errno != EEXIST) {
		err = -errno;
		snprintf(msg, msglen, "cannot create %s: %s", cg->h[i].dir, strerror(errno));
		return err;
	}
	err = write_pid(cg->h[i].dir);
	if (err) {
		snprintf(msg, msglen, "cannot move into %s: %s", cg->h[i].dir, strerror(-err));
		rmdir(cg->h[i].dir);
		return err;
	}
	cg->n++;
	return 0;
}

int vms_acct_cgroup_enter(const char *name, struct vms_acct_cgroup **out, char *msg, size_t msglen)
{
	struct vms_acct_cgroup *cg;
	int e1, e2;

	*out = NULL;
	if (msg && msglen)
		msg[0] = '\0';
	if (!name || !*name || strchr(name, '/') || name[0] == '.')
		return -EINVAL;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	e1 = enter_one(cg, false, name, msg, msglen);
	e2 = enter_one(cg, true, name, msg, msglen);
	if (!cg->n) {
		free(cg);
		return e1 ? e1 : e2;
	}
	*out = cg;
	return 0;
}

void vms_acct_cgroup_leave(struct vms_acct_cgroup *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < cg->n; i++) {
		write_pid(cg->h[i].back);
		/* The kernel may still be releasing the last exited thread: retry briefly. */
		for (int t = 0; t < 50 && rmdir(cg->h[i].dir) && errno == EBUSY; t++)
			usleep(10000);
	}
	free(cg);
}
