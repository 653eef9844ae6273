// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Small-file helpers for procfs, sysfs and debugfs: read the whole file in one go (these
 * files are generated at read time and must not be read piecewise) and parse numbers.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmscope-local.h"

int vms_read_text(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd, err = 0;

	if (!size)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return err ? err : (int)len;
}

int vms_read_u64(const char *path, uint64_t *val)
{
	char buf[64], *end;
	int ret = vms_read_text(path, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -VMS_E_PARSE;
	return 0;
}
