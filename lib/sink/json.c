// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Streaming JSON writer: the output format of --format json, the test VM's truth file and
 * every other machine-readable output. Strings are escaped per RFC 8259; numbers are
 * written exactly (u64 in decimal, doubles with 17 significant digits only when needed).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/json.h"

void vms_json_init(struct vms_json *j, FILE *f, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->pretty = pretty;
	j->first[0] = true;
}

static void json_put(struct vms_json *j, const char *s)
{
	if (!j->err && fputs(s, j->f) == EOF)
		j->err = -EIO;
}

static void json_indent(struct vms_json *j)
{
	if (!j->pretty)
		return;
	json_put(j, "\n");
	for (int i = 0; i < j->depth; i++)
		json_put(j, "  ");
}

static void json_string_raw(struct vms_json *j, const char *s)
{
	char buf[8];

	json_put(j, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			json_put(j, "\\\"");
			break;
		case '\\':
			json_put(j, "\\\\");
			break;
		case '\n':
			json_put(j, "\\n");
			break;
		case '\r':
			json_put(j, "\\r");
			break;
		case '\t':
			json_put(j, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(buf, sizeof(buf), "\\u%04x", *p);
				json_put(j, buf);
			} else {
				buf[0] = (char)*p;
				buf[1] = '\0';
				json_put(j, buf);
			}
		}
	}
	json_put(j, "\"");
}

/* Separator, indentation and key before a value. */
static void json_member(struct vms_json *j, const char *key)
{
	if (!j->first[j->depth])
		json_put(j, ",");
	j->first[j->depth] = false;
	if (j->depth > 0)
		json_indent(j);
	if (key) {
		json_string_raw(j, key);
		json_put(j, j->pretty ? ": " : ":");
	}
}

static void json_open(struct vms_json *j, const char *key, const char *bracket)
{
	json_member(j, key);
	json_put(j, bracket);
	if (j->depth + 1 >= VMS_JSON_MAX_DEPTH) {
		if (!j->err)
			j->err = -EINVAL;
		return;
	}
	j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct vms_json *j, const char *bracket)
{
	bool empty;

	if (j->depth == 0) {
		if (!j->err)
			j->err = -EINVAL;
		return;
	}
	empty = j->first[j->depth];
	j->depth--;
	if (!empty)
		json_indent(j);
	json_put(j, bracket);
}

void vms_json_object_begin(struct vms_json *j, const char *key)
{
	json_open(j, key, "{");
}

void vms_json_object_end(struct vms_json *j)
{
	json_close(j, "}");
}

void vms_json_array_begin(struct vms_json *j, const char *key)
{
	json_open(j, key, "[");
}

void vms_json_array_end(struct vms_json *j)
{
	json_close(j, "]");
}

void vms_json_string(struct vms_json *j, const char *key, const char *val)
{
	json_member(j, key);
	if (val)
		json_string_raw(j, val);
	else
		json_put(j, "null");
}

void vms_json_u64(struct vms_json *j, const char *key, uint64_t val)
{
	char buf[32];

	json_member(j, key);
	snprintf(buf, sizeof(buf), "%" PRIu64, val);
	json_put(j, buf);
}

void vms_json_i64(struct vms_json *j, const char *key, int64_t val)
{
	char buf[32];

	json_member(j, key);
	snprintf(buf, sizeof(buf), "%" PRId64, val);
	json_put(j, buf);
}

void vms_json_double(struct vms_json *j, const char *key, double val)
{
	char buf[40];

	json_member(j, key);
	if (!isfinite(val)) {
		json_put(j, "null");
		return;
	}
	/* The shortest of %.15g / %.17g that reads back as the same double. */
	snprintf(buf, sizeof(buf), "%.15g", val);
	if (strtod(buf, NULL) != val)
		snprintf(buf, sizeof(buf), "%.17g", val);
	json_put(j, buf);
}

void vms_json_bool(struct vms_json *j, const char *key, bool val)
{
	json_member(j, key);
	json_put(j, val ? "true" : "false");
}

void vms_json_null(struct vms_json *j, const char *key)
{
	json_member(j, key);
	json_put(j, "null");
}

int vms_json_finish(struct vms_json *j)
{
	if (j->depth != 0 && !j->err)
		j->err = -EINVAL;
	json_put(j, "\n");
	if (fflush(j->f) == EOF && !j->err)
		j->err = -EIO;
	return j->err;
}
