// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Per-VM KVM debugfs folders: /sys/kernel/debug/kvm/<pid>-<fd>/ holds one file per VM
 * statistic and per vCPU statistic (summed over the vCPUs), plus a vcpuN/ folder per vCPU
 * with its host thread id ("pid") and x86 details (guest_mode, tsc-offset, ...). This is
 * the legacy interface that kvm_stat reads; the binary stats fd is the modern one.
 *
 * Under kernel lockdown the counter files exist but cannot be opened (EPERM). A monitor
 * that turned such a failure into 0 would report an idle VM, so every file is listed with
 * its own error and a value only when it really read one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmscope-local.h"
#include "vmscope/stats.h"

struct entry_list {
	struct vms_debugfs_entry *v;
	size_t n, cap;
};

/*
 * Parse a debugfs value: one decimal number and a newline. Signed files (tsc-offset is
 * printed with %lld) keep their two's-complement bit pattern, as the u64 field says raw.
 */
static int parse_value(const char *buf, uint64_t *val)
{
	const char *p = buf;
	char *end;
	bool neg = false;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (*p < '0' || *p > '9')
		return -VMS_E_PARSE;
	errno = 0;
	*val = strtoull(p, &end, 10);
	if (errno)
		return -VMS_E_PARSE;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end)
		return -VMS_E_PARSE;
	if (neg) {
		if (*val > (uint64_t)INT64_MAX + 1)
			return -VMS_E_PARSE;
		*val = (uint64_t)0 - *val;
	}
	return 0;
}

/* Read one file into e: e->err is the negative errno, or -VMS_E_PARSE for non-numbers. */
static void read_entry(const char *path, struct vms_debugfs_entry *e)
{
	/* Every KVM debugfs value fits in far less; a full buffer means it is not one number. */
	char buf[128];
	int len = vms_read_text(path, buf, sizeof(buf));

	e->value = 0;
	if (len < 0)
		e->err = len;
	else if ((size_t)len >= sizeof(buf) - 1)
		e->err = -VMS_E_PARSE;
	else
		e->err = parse_value(buf, &e->value);
}

/* Append prefix+name; read path unless err already says why it cannot be read. */
static int add_entry(struct entry_list *l, const char *prefix, const char *name, const char *path,
		     int err)
{
	struct vms_debugfs_entry *e;
	int n;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	n = snprintf(e->name, sizeof(e->name), "%s%s", prefix, name);
	if (n < 0 || (size_t)n >= sizeof(e->name)) {
		/* Listed, not skipped, but never with a value read under a cut name. */
		e->err = -ENAMETOOLONG;
		return 0;
	}
	if (err)
		e->err = err;
	else
		read_entry(path, e);
	return 0;
}

/* An entry's type (DT_DIR, DT_FIFO, ...), from the file system if readdir() did not say. */
static unsigned char entry_type(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type;
	/* Symlinks are not followed: debugfs has none, and a loop must not hang us. */
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return DT_UNKNOWN;
	return IFTODT(st.st_mode);
}

/*
 * List the files of dir. At depth 0, subfolders (vcpuN/) are listed one level deeper with
 * "vcpuN/" prefixed; deeper folders are read like files and so listed with -EISDIR.
 */
static int list_dir(struct entry_list *l, const char *dir, const char *prefix, int depth)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret) {
		char path[4096], sub[128];
		unsigned char type;
		int n;

		errno = 0;
		de = readdir(d);
		if (!de) {
			ret = errno ? -errno : 0;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			ret = add_entry(l, prefix, de->d_name, NULL, -ENAMETOOLONG);
			continue;
		}
		type = entry_type(dirfd(d), de);
		/* open() of a FIFO without a writer would block: say so instead of reading. */
		if (type == DT_FIFO) {
			ret = add_entry(l, prefix, de->d_name, NULL, -EWOULDBLOCK);
			continue;
		}
		if (depth == 0 && type == DT_DIR) {
			n = snprintf(sub, sizeof(sub), "%s/", de->d_name);
			if (n > 0 && (size_t)n < sizeof(sub)) {
				int err = list_dir(l, path, sub, depth + 1);

				/* A vCPU folder that cannot be listed is shown with the reason. */
				if (err == -ENOMEM)
					ret = err;
				else if (err)
					ret = add_entry(l, sub, "", NULL, err);
				continue;
			}
		}
		ret = add_entry(l, prefix, de->d_name, path, 0);
	}
	closedir(d);
	return ret;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct vms_debugfs_entry *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int vms_debugfs_read_vm(const char *dir, struct vms_debugfs_entry **entries, size_t *count)
{
	struct entry_list l = { 0 };
	int ret;

	if (!dir || !entries || !count)
		return -EINVAL;
	*entries = NULL;
	*count = 0;
	ret = list_dir(&l, dir, "", 0);
	if (ret) {
		free(l.v);
		return ret;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
	*entries = l.v;
	*count = l.n;
	return 0;
}
