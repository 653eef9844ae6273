// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Streaming JSON writer: the output format of --format json, the test VM's truth file and
 * every other machine-readable output. Strings are escaped per RFC 8259 (and kept valid
 * UTF-8); numbers are written exactly (u64 in decimal, doubles in the shortest form that
 * reads back as the same value, fixed-point numbers with all their decimals).
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

static void json_write(struct vms_json *j, const char *s, size_t len)
{
	/* glibc's fwrite() on an unbuffered stream reports every byte written even when the
	 * write failed; the stream's error flag tells the truth. */
	if (!j->err && len && (fwrite(s, 1, len, j->f) != len || ferror(j->f)))
		j->err = -EIO;
}

static void json_put(struct vms_json *j, const char *s)
{
	json_write(j, s, strlen(s));
}

static void json_indent(struct vms_json *j)
{
	if (!j->pretty)
		return;
	json_put(j, "\n");
	for (int i = 0; i < j->depth; i++)
		json_put(j, "  ");
}

/*
 * The length of the well-formed UTF-8 sequence of two to four bytes at @p (Unicode 15,
 * table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or 0 with the
 * length of its maximal ill-formed prefix in @skip. The NUL at the end of the string
 * fails every test, so nothing past it is read.
 */
static size_t utf8_sequence(const unsigned char *p, size_t *skip)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (*p >= 0xc2 && *p <= 0xdf) {
		n = 2;
	} else if (*p >= 0xe0 && *p <= 0xef) {
		n = 3;
		if (*p == 0xe0)
			lo = 0xa0;
		else if (*p == 0xed)
			hi = 0x9f;
	} else if (*p >= 0xf0 && *p <= 0xf4) {
		n = 4;
		if (*p == 0xf0)
			lo = 0x90;
		else if (*p == 0xf4)
			hi = 0x8f;
	} else {
		*skip = 1;
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (p[i] < lo || p[i] > hi) {
			*skip = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/*
 * A string per RFC 8259: '"', '\\' and control characters escaped (DEL too), UTF-8 as it
 * is. Bytes that are not UTF-8 (a process name can hold any) would make the whole
 * document invalid, so each maximal ill-formed part becomes U+FFFD, as Unicode
 * recommends. Runs of bytes that need nothing are written in one go.
 */
static void json_string_raw(struct vms_json *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;
	char buf[8];

	json_put(j, "\"");
	while (*p) {
		const char *esc = NULL;
		size_t n = 1, skip;

		if (*p == '"')
			esc = "\\\"";
		else if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (*p == '\r')
			esc = "\\r";
		else if (*p == '\t')
			esc = "\\t";
		else if (*p < 0x20 || *p == 0x7f)
			esc = buf;
		else if (*p >= 0x80 && !(n = utf8_sequence(p, &skip)))
			esc = "\\ufffd";
		if (!esc) {
			p += n;
			continue;
		}
		json_write(j, (const char *)run, (size_t)(p - run));
		if (esc == buf)
			snprintf(buf, sizeof(buf), "\\u%04x", *p);
		json_put(j, esc);
		p += n ? n : skip;
		run = p;
	}
	json_write(j, (const char *)run, (size_t)(p - run));
	json_put(j, "\"");
}

/* Separator, indentation and key before a value. */
static void json_member(struct vms_json *j, const char *key)
{
	/* Members of an object have a key; array items and the top-level value do not. */
	if ((j->kind[j->depth] == '{') != (key != NULL) && !j->err)
		j->err = -EINVAL;
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
	j->kind[j->depth] = bracket[0];
}

static void json_close(struct vms_json *j, const char *bracket)
{
	bool empty;

	if (j->depth == 0) {
		if (!j->err)
			j->err = -EINVAL;
		return;
	}
	/* "}" closes "{", "]" closes "[" */
	if (j->kind[j->depth] != (bracket[0] == '}' ? '{' : '[') && !j->err)
		j->err = -EINVAL;
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
	/*
	 * The shortest form that reads back as the same double. For a normal number that
	 * takes 15 digits or fewer, %.15g is it (its digits are the shortest ones followed
	 * by zeros, which %g drops); else 16 digits, else 17, which always suffice.
	 * Subnormals carry fewer digits (5e-324), so they are tried from 1.
	 */
	for (int prec = fpclassify(val) == FP_SUBNORMAL ? 1 : 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, val);
		if (prec == 17 || strtod(buf, NULL) == val)
			break;
	}
	json_put(j, buf);
}

void vms_json_fixed(struct vms_json *j, const char *key, int64_t val, unsigned int decimals)
{
	uint64_t a = val < 0 ? -(uint64_t)val : (uint64_t)val, p = 1;
	char buf[48];

	json_member(j, key);
	if (decimals > 18) {
		if (!j->err)
			j->err = -EINVAL;
		return;
	}
	for (unsigned int i = 0; i < decimals; i++)
		p *= 10;
	if (decimals)
		snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%0*" PRIu64, val < 0 ? "-" : "", a / p,
			 (int)decimals, a % p);
	else
		snprintf(buf, sizeof(buf), "%" PRId64, val);
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
