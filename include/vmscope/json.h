/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A streaming JSON writer (a sink): objects and arrays are opened and closed in order and
 * written as they come, nothing is buffered. Like libtraceevent's trace_seq, a write error
 * is sticky: check vms_json_error() once at the end.
 */
#ifndef VMSCOPE_JSON_H
#define VMSCOPE_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_JSON_MAX_DEPTH 32

struct vms_json {
	FILE *f;
	bool pretty; /* indent by nesting; otherwise one line */
	int depth;
	bool first[VMS_JSON_MAX_DEPTH];
	char kind[VMS_JSON_MAX_DEPTH]; /* '{' or '[' per open level, 0 at the top */
	int err;		       /* first error, negative errno; sticky */
};

/** vms_json_init() - start writing to @f (borrowed, not closed). */
VMS_API void vms_json_init(struct vms_json *j, FILE *f, bool pretty);

/*
 * @key is the member name inside an object and NULL inside an array or at top level; a key
 * where none belongs (or none where one does), a closer that does not match its opener,
 * and more than VMS_JSON_MAX_DEPTH - 1 nested containers are errors (-EINVAL).
 */
VMS_API void vms_json_object_begin(struct vms_json *j, const char *key);
VMS_API void vms_json_object_end(struct vms_json *j);
VMS_API void vms_json_array_begin(struct vms_json *j, const char *key);
VMS_API void vms_json_array_end(struct vms_json *j);
VMS_API void vms_json_string(struct vms_json *j, const char *key, const char *val);
VMS_API void vms_json_u64(struct vms_json *j, const char *key, uint64_t val);
VMS_API void vms_json_i64(struct vms_json *j, const char *key, int64_t val);
/* Non-finite values are written as null (JSON has no NaN). */
VMS_API void vms_json_double(struct vms_json *j, const char *key, double val);
/*
 * A fixed-point number: @val / 10^@decimals with exactly @decimals digits after the point
 * (none for 0), so exact where a double is not: vms_json_fixed(j, "ts", 1234567, 3) writes
 * 1234.567 (ns as us). @decimals above 18 is an error (-EINVAL).
 */
VMS_API void vms_json_fixed(struct vms_json *j, const char *key, int64_t val,
			    unsigned int decimals);
VMS_API void vms_json_bool(struct vms_json *j, const char *key, bool val);
VMS_API void vms_json_null(struct vms_json *j, const char *key);

/**
 * vms_json_finish() - end the document (newline, flush)
 * Return: 0, or the first error met (-EIO on a write error, -EINVAL on unbalanced nesting).
 */
VMS_API int vms_json_finish(struct vms_json *j);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_JSON_H */
