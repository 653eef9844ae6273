// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the .dat reader: the bytes become a file (a memfd, opened by path
 * as a user's file would be), which is opened, every record read, and a few fields looked
 * up — whatever the bytes, no crash, no hang, no leak, and the stream ends with 0 or an
 * error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmscope/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_trace_opts opts = { .sz = sizeof(opts), .window_pages = 2 };
	struct vms_trace *t;
	struct vms_record r;
	struct vms_field f;
	char path[64];
	uint64_t n = 0, sum = 0;
	int fd, id, ret;

	fd = memfd_create("fuzz-dat", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!vms_trace_open(path, &opts, &t)) {
		id = vms_trace_event_id(t, "kvm", "kvm_exit");
		vms_trace_field(t, id, "exit_reason", &f);
		while ((ret = vms_trace_next(t, &r)) == 1 && n < 10000000) {
			n++;
			if (r.type == (uint32_t)id)
				sum += vms_field_u64(&f, &r);
			(void)vms_trace_comm(t, r.pid);
		}
		if (ret < 0 && !vms_trace_error(t)[0])
			abort(); /* an error must say what and where */
		(void)vms_trace_meta(t, "vendor");
		vms_trace_close(t);
	} else if (!vms_trace_open_error()[0]) {
		abort();
	}
	close(fd);
	(void)sum;
	return 0;
}
