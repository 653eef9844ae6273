// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * KVM binary statistics of another process's VM. The statistics fds belong to the VMM
 * (QEMU, the test VM, ...); a VMM that keeps them open lets any process with ptrace
 * permission duplicate them with pidfd_getfd(2) and read them like its own. Unlike the
 * debugfs counters, this works under kernel lockdown, and unlike a vCPU fd, a stats fd
 * does not check which process reads it.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "vmscope-local.h"
#include "vmscope/stats.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int vms_stats_open_remote(int pid, int remote_fd, struct vms_stats **out)
{
	int pidfd, fd, err;

	*out = NULL;
	if (pid <= 0 || remote_fd < 0)
		return -EINVAL;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, remote_fd, 0);
	err = fd < 0 ? -errno : 0;
	close(pidfd);
	if (err)
		return err;
	return vms_stats_open_fd(fd, out);
}
