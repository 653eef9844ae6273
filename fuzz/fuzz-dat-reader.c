// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the .dat reader: the bytes become a file (a memfd, opened by path
 * as a user's file would be), which is opened, every record read, and a few fields looked
 * up — whatever the bytes, no crash, no hang, no leak, and the stream ends with 0 or an
 * error. Then it is read again in batches through the read-ahead thread, with only the
 * kvm_exit records handed out: they must be the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmscope/analysis.h"
#include "vmscope/exits.h"
#include "vmscope/trace.h"
#include "vmscope/vcpu.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_trace_opts opts = { .sz = sizeof(opts), .window_pages = 2 },
			      ra_opts = { .sz = sizeof(opts), .window_pages = 2, .readahead = 1 };
	struct vms_trace *t;
	struct vms_record r;
	struct vms_field f;
	char path[64];
	uint64_t n = 0, sum = 0, exits = 0;
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
			if (r.type == (uint32_t)id) {
				sum += vms_field_u64(&f, &r);
				exits++;
			}
			(void)vms_trace_comm(t, r.pid);
		}
		if (ret < 0 && !vms_trace_error(t)[0])
			abort(); /* an error must say what and where */
		(void)vms_trace_meta(t, "vendor");
		vms_trace_close(t);
		/* Again in batches, merged by the read-ahead thread, only kvm_exit handed
		 * out: the same exits, the same end. */
		if (n < 10000000 && !vms_trace_open(path, &ra_opts, &t)) {
			const struct vms_record *recs;
			uint64_t exits2 = 0, sum2 = 0;
			int ret2;

			if (id >= 0 && vms_trace_select(t, &id, 1))
				abort();
			while ((ret2 = vms_trace_next_batch(t, &recs)) > 0) {
				for (int k = 0; k < ret2; k++) {
					if (recs[k].type == (uint32_t)id) {
						sum2 += vms_field_u64(&f, &recs[k]);
						exits2++;
					}
				}
			}
			if (exits2 != exits || sum2 != sum || (ret2 < 0) != (ret < 0))
				abort(); /* the batched stream differs */
			vms_trace_close(t);
		}
		/* And the analyses over it: the vCPU state model and the exit analysis. */
		if (n < 10000000 && !vms_trace_open(path, &opts, &t)) {
			struct vms_session *s = NULL;
			void *vp;

			if (!vms_session_new(t, &s) &&
			    !vms_session_add(s, &vms_vcpu_ops, NULL, &vp) &&
			    !vms_session_add(s, &vms_exits_ops, NULL, NULL)) {
				size_t nth;
				const struct vms_vcpu_thread *th;

				vms_session_run(s, NULL, NULL);
				th = vms_vcpu_threads(vp, &nth);
				for (size_t k = 0; k < nth; k++) {
					uint64_t total = 0;

					for (int st = 0; st < VMS_VCPU_NSTATES; st++)
						total += th[k].ns[st];
					if (total > th[k].end_ts - th[k].first_ts &&
					    th[k].end_ts >= th[k].first_ts)
						abort(); /* more time than the thread's span */
				}
			}
			vms_session_free(s);
			vms_trace_close(t);
		}
	} else if (!vms_trace_open_error()[0]) {
		abort();
	}
	close(fd);
	(void)sum;
	return 0;
}
