// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Accounting snapshots: a sorted table of named counters and texts, its text form, and the
 * parser of that text form (which reads untrusted bytes: a saved snapshot may come from
 * anywhere). Reading the sources themselves is in acct-read.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acct-local.h"

#define ACCT_MAGIC "vmscope-acct 1"

struct vms_acct *vms_acct_new(void)
{
	return calloc(1, sizeof(struct vms_acct));
}

void vms_acct_free(struct vms_acct *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->e[i].key);
		free(a->e[i].str);
	}
	free(a->e);
	free(a);
}

static bool key_ok(const char *key)
{
	size_t n = strlen(key);

	if (!n || n > VMS_ACCT_KEY_MAX)
		return false;
	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("_.:/-", *p)))
			return false;
	return true;
}

/* Index of @key, or -(insertion point) - 1. */
static ptrdiff_t find(const struct vms_acct *a, const char *key)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->e[mid].key, key);

		if (!c)
			return (ptrdiff_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ptrdiff_t)lo - 1;
}

static struct acct_entry *slot(struct vms_acct *a, const char *key, int *err)
{
	ptrdiff_t i;
	size_t at;

	*err = 0;
	if (!a || !key || !key_ok(key)) {
		*err = -EINVAL;
		return NULL;
	}
	i = find(a, key);
	if (i >= 0) {
		free(a->e[i].str);
		a->e[i].str = NULL;
		return &a->e[i];
	}
	at = (size_t)(-i - 1);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct acct_entry *e = realloc(a->e, cap * sizeof(*e));

		if (!e) {
			*err = -ENOMEM;
			return NULL;
		}
		a->e = e;
		a->cap = cap;
	}
	memmove(&a->e[at + 1], &a->e[at], (a->n - at) * sizeof(a->e[0]));
	a->e[at] = (struct acct_entry){ .key = strdup(key) };
	if (!a->e[at].key) {
		memmove(&a->e[at], &a->e[at + 1], (a->n - at) * sizeof(a->e[0]));
		*err = -ENOMEM;
		return NULL;
	}
	a->n++;
	return &a->e[at];
}

int vms_acct_set(struct vms_acct *a, const char *key, uint64_t val)
{
	int err;
	struct acct_entry *e = slot(a, key, &err);

	if (!e)
		return err;
	e->val = val;
	return 0;
}

int vms_acct_set_str(struct vms_acct *a, const char *key, const char *text)
{
	char *s = strdup(text ? text : "");
	struct acct_entry *e;
	int err;

	if (!s)
		return -ENOMEM;
	e = slot(a, key, &err);
	if (!e) {
		free(s);
		return err;
	}
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	e->str = s;
	return 0;
}

int acct_vkey(char *key, const char *fmt, va_list ap)
{
	int n = vsnprintf(key, ACCT_KEY_BUF, fmt, ap);

	return n < 0 || n >= ACCT_KEY_BUF ? -EINVAL : 0;
}

int acct_vsetf(struct vms_acct *a, uint64_t val, const char *fmt, va_list ap)
{
	char key[ACCT_KEY_BUF];
	int err = acct_vkey(key, fmt, ap);

	return err ? err : vms_acct_set(a, key, val);
}

int acct_getf(const struct vms_acct *a, uint64_t *val, const char *fmt, ...)
{
	char key[ACCT_KEY_BUF];
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = acct_vkey(key, fmt, ap);
	va_end(ap);
	return err ? err : vms_acct_get(a, key, val);
}

int vms_acct_get(const struct vms_acct *a, const char *key, uint64_t *val)
{
	ptrdiff_t i;

	if (!a || !key)
		return -ENOENT;
	i = find(a, key);
	if (i < 0 || a->e[i].str)
		return -ENOENT;
	*val = a->e[i].val;
	return 0;
}

int vms_acct_delta(const struct vms_acct *a, const struct vms_acct *b, const char *key,
		   uint64_t *delta)
{
	uint64_t x, y;

	if (vms_acct_get(a, key, &x) || vms_acct_get(b, key, &y))
		return -ENOENT;
	if (y < x)
		return -ERANGE;
	*delta = y - x;
	return 0;
}

const char *vms_acct_str(const struct vms_acct *a, const char *key)
{
	ptrdiff_t i;

	if (!a || !key)
		return NULL;
	i = find(a, key);
	return i < 0 ? NULL : a->e[i].str;
}

size_t vms_acct_count(const struct vms_acct *a)
{
	return a ? a->n : 0;
}

const char *vms_acct_key(const struct vms_acct *a, size_t i)
{
	return a && i < a->n ? a->e[i].key : NULL;
}

int vms_acct_write(const struct vms_acct *a, FILE *f)
{
	fprintf(f, "%s\n", ACCT_MAGIC);
	for (size_t i = 0; i < a->n; i++) {
		const struct acct_entry *e = &a->e[i];

		if (!e->str) {
			fprintf(f, "%s %" PRIu64 "\n", e->key, e->val);
			continue;
		}
		fprintf(f, "%s \"", e->key);
		for (const char *p = e->str; *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fputs("\"\n", f);
	}
	return ferror(f) ? -EIO : 0;
}

static int parse_fail(char *msg, size_t msglen, size_t line, const char *why)
{
	if (msg && msglen)
		snprintf(msg, msglen, "line %zu: %s", line, why);
	return -VMS_E_PARSE;
}

/* One "key value" line (without its newline, NUL-terminated in place). */
static int parse_line(struct vms_acct *a, char *s, size_t line, char *msg, size_t msglen)
{
	char *sp = strchr(s, ' '), *v, *end;
	uint64_t val;
	int err;

	if (!sp)
		return parse_fail(msg, msglen, line, "expected \"key value\"");
	*sp = '\0';
	v = sp + 1;
	if (!key_ok(s))
		return parse_fail(msg, msglen, line, "invalid key");
	if (vms_acct_str(a, s) || vms_acct_get(a, s, &val) == 0)
		return parse_fail(msg, msglen, line, "key given twice");
	if (*v == '"') {
		char *out = v;

		for (v++; *v && *v != '"'; v++) {
			if (*v == '\\') {
				v++;
				if (*v != '"' && *v != '\\')
					return parse_fail(msg, msglen, line, "bad escape in text");
			}
			*out++ = *v;
		}
		if (*v != '"' || v[1])
			return parse_fail(msg, msglen, line, "unterminated text");
		*out = '\0';
		err = vms_acct_set_str(a, s, sp + 1);
	} else {
		if (*v < '0' || *v > '9')
			return parse_fail(msg, msglen, line,
					  "value is neither a number nor a text");
		errno = 0;
		val = strtoull(v, &end, 10);
		if (errno || *end)
			return parse_fail(msg, msglen, line, "bad number");
		err = vms_acct_set(a, s, val);
	}
	return err;
}

int vms_acct_parse(const char *buf, size_t len, struct vms_acct **out, char *msg, size_t msglen)
{
	struct vms_acct *a;
	size_t pos = 0, line = 0;
	bool magic = false;
	char *s = NULL;
	int err = 0;

	*out = NULL;
	if (msg && msglen)
		msg[0] = '\0';
	a = vms_acct_new();
	if (!a)
		return -ENOMEM;
	while (pos < len && !err) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = (nl ? (size_t)(nl - buf) : len) - pos;

		line++;
		if (memchr(buf + pos, '\0', n)) {
			err = parse_fail(msg, msglen, line, "NUL byte");
			break;
		}
		free(s);
		s = malloc(n + 1);
		if (!s) {
			err = -ENOMEM;
			break;
		}
		memcpy(s, buf + pos, n);
		s[n] = '\0';
		pos += n + 1;
		if (n && s[n - 1] == '\r')
			s[n - 1] = '\0';
		if (!s[0] || s[0] == '#')
			continue;
		if (!magic) {
			if (strcmp(s, ACCT_MAGIC))
				err = parse_fail(
					msg, msglen, line,
					"not a vmscope accounting snapshot (no \"" ACCT_MAGIC
					"\" line)");
			magic = true;
			continue;
		}
		err = parse_line(a, s, line, msg, msglen);
	}
	free(s);
	if (!err && !magic)
		err = parse_fail(msg, msglen, line, "empty: not a vmscope accounting snapshot");
	if (err) {
		vms_acct_free(a);
		return err;
	}
	*out = a;
	return 0;
}
