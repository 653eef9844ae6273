// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Decompression of trace file sections and data chunks: zstd (trace-cmd's default) and
 * zlib. Each call decompresses one whole block whose sizes the file states, so a block
 * that does not produce exactly the promised bytes is damage, not a partial result.
 */
#include <zlib.h>
#include <zstd.h>

#include "trace-local.h"

void vms_decompress_free(void *dctx)
{
	ZSTD_freeDCtx(dctx);
}

int vms_decompress(const struct vms_trace *t, void **dctx, const void *in, size_t in_len, void *out,
		   size_t out_len)
{
	if (t->comp == VMS_COMP_ZSTD) {
		size_t n;

		if (!*dctx) {
			*dctx = ZSTD_createDCtx();
			if (!*dctx)
				return -ENOMEM;
		}
		n = ZSTD_decompressDCtx(*dctx, out, out_len, in, in_len);
		if (ZSTD_isError(n) || n != out_len)
			return -VMS_E_TRACE_CORRUPT;
		return 0;
	}
	if (t->comp == VMS_COMP_ZLIB) {
		uLongf n = (uLongf)out_len;

		if (uncompress(out, &n, in, (uLong)in_len) != Z_OK || n != out_len)
			return -VMS_E_TRACE_CORRUPT;
		return 0;
	}
	return -EINVAL;
}
