// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A minimal QMP client (vmscope/qmp.h). QMP speaks one JSON object per line: a greeting,
 * then a reply ({"return": ...} or {"error": ...}) for each command, with asynchronous
 * events ({"event": ...}) in between, which are skipped. The JSON reader builds a small
 * tree with numbers kept as text, bounded in depth (64) and line length (16 MiB): what a
 * QEMU process sends is read like any other untrusted input (fuzz/fuzz-qmp-json.c).
 * Moved here from cli/ so that vmscope stat can read KVM's statistics through QEMU.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmscope/qmp.h"

#define QJSON_MAX_DEPTH 64
#define QMP_MAX_LINE (16u << 20)

/* ---- JSON ---- */

struct qjson_parser {
	const char *s, *end;
	char *err;
	size_t errlen;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void qjson_fail(struct qjson_parser *p,
							     const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
}

static void qjson_skip_ws(struct qjson_parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static void qjson_clear(struct vms_qjson *v)
{
	for (size_t i = 0; i < v->n; i++) {
		qjson_clear(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	memset(v, 0, sizeof(*v));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string at p->s (the opening quote); \u escapes become UTF-8 (surrogates as '?'). */
static char *qjson_string(struct qjson_parser *p)
{
	size_t cap = 16, n = 0;
	char *out = malloc(cap);

	if (!out) {
		qjson_fail(p, "out of memory");
		return NULL;
	}
	p->s++;
	while (p->s < p->end && *p->s != '"') {
		char c = *p->s++, enc[3];
		unsigned int cp = 0;
		size_t k = 1;

		if ((unsigned char)c < 0x20)
			goto bad;
		enc[0] = c; /* UTF-8 text is copied byte by byte */
		if (c == '\\') {
			static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
			const char *e;

			if (p->s >= p->end)
				goto bad;
			c = *p->s++;
			e = c && c != 'u' ? strchr(esc, c) : NULL;
			if (e && (e - esc) % 2 == 0) {
				enc[0] = e[1];
			} else if (c == 'u') {
				for (int i = 0; i < 4; i++) {
					int h = p->s < p->end ? hexval(*p->s++) : -1;

					if (h < 0)
						goto bad;
					cp = cp << 4 | (unsigned int)h;
				}
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = '?'; /* surrogate pairs are not needed here */
				if (cp < 0x80) {
					enc[0] = (char)cp;
				} else if (cp < 0x800) {
					enc[0] = (char)(0xc0 | cp >> 6);
					enc[1] = (char)(0x80 | (cp & 0x3f));
					k = 2;
				} else {
					enc[0] = (char)(0xe0 | cp >> 12);
					enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
					enc[2] = (char)(0x80 | (cp & 0x3f));
					k = 3;
				}
			} else {
				goto bad;
			}
		}
		if (n + k + 1 > cap) {
			char *bigger = realloc(out, cap * 2);

			if (!bigger) {
				free(out);
				qjson_fail(p, "out of memory");
				return NULL;
			}
			out = bigger;
			cap *= 2;
		}
		memcpy(out + n, enc, k);
		n += k;
	}
	if (p->s >= p->end)
		goto bad;
	p->s++;
	out[n] = '\0';
	return out;
bad:
	free(out);
	qjson_fail(p, "invalid string");
	return NULL;
}

static void qjson_value(struct qjson_parser *p, struct vms_qjson *v, int depth);

static bool qjson_digits(struct qjson_parser *p)
{
	const char *start = p->s;

	while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
		p->s++;
	return p->s > start;
}

/* Move past one number of JSON's grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?:
 * false when what follows is not one (a leading zero, a lone '-', "1.", "1e"). */
static bool qjson_number_end(struct qjson_parser *p)
{
	if (p->s < p->end && *p->s == '-')
		p->s++;
	if (p->s < p->end && *p->s == '0')
		p->s++;
	else if (!qjson_digits(p))
		return false;
	if (p->s < p->end && *p->s == '.') {
		p->s++;
		if (!qjson_digits(p))
			return false;
	}
	if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
		p->s++;
		if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
			p->s++;
		if (!qjson_digits(p))
			return false;
	}
	return p->s >= p->end || !((*p->s >= '0' && *p->s <= '9') || *p->s == '.' || *p->s == 'e' ||
				   *p->s == 'E' || *p->s == '+' || *p->s == '-');
}

/* Append one element (and its key for an object) to @v. */
static struct vms_qjson *qjson_push(struct qjson_parser *p, struct vms_qjson *v, char *key)
{
	struct vms_qjson *items = realloc(v->items, (v->n + 1) * sizeof(*items));

	if (items)
		v->items = items;
	if (items && v->type == VMS_QJSON_OBJECT) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			items = NULL;
		else
			v->keys = keys;
	}
	if (!items) {
		free(key);
		qjson_fail(p, "out of memory");
		return NULL;
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	if (v->type == VMS_QJSON_OBJECT)
		v->keys[v->n] = key;
	return &v->items[v->n++];
}

static void qjson_container(struct qjson_parser *p, struct vms_qjson *v, int depth)
{
	char close = *p->s == '{' ? '}' : ']';

	v->type = close == '}' ? VMS_QJSON_OBJECT : VMS_QJSON_ARRAY;
	p->s++;
	qjson_skip_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		return;
	}
	for (;;) {
		char *key = NULL;
		struct vms_qjson *item;

		qjson_skip_ws(p);
		if (v->type == VMS_QJSON_OBJECT) {
			if (p->s >= p->end || *p->s != '"') {
				qjson_fail(p, "expected a member name");
				return;
			}
			key = qjson_string(p);
			if (!key)
				return;
			qjson_skip_ws(p);
			if (p->s >= p->end || *p->s != ':') {
				free(key);
				qjson_fail(p, "expected ':'");
				return;
			}
			p->s++;
		}
		item = qjson_push(p, v, key);
		if (!item)
			return;
		qjson_value(p, item, depth + 1);
		if (p->failed)
			return;
		qjson_skip_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return;
		}
		qjson_fail(p, "expected ',' or '%c'", close);
		return;
	}
}

static void qjson_value(struct qjson_parser *p, struct vms_qjson *v, int depth)
{
	static const struct {
		const char *word;
		enum vms_qjson_type type;
		bool val;
	} words[] = { { "null", VMS_QJSON_NULL, false },
		      { "true", VMS_QJSON_BOOL, true },
		      { "false", VMS_QJSON_BOOL, false } };

	if (depth > QJSON_MAX_DEPTH) {
		qjson_fail(p, "nested too deep");
		return;
	}
	qjson_skip_ws(p);
	if (p->s >= p->end) {
		qjson_fail(p, "unexpected end");
		return;
	}
	if (*p->s == '{' || *p->s == '[') {
		qjson_container(p, v, depth);
		return;
	}
	if (*p->s == '"') {
		v->type = VMS_QJSON_STRING;
		v->text = qjson_string(p);
		return;
	}
	if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9')) {
		const char *start = p->s;

		if (!qjson_number_end(p)) {
			qjson_fail(p, "malformed number");
			return;
		}
		v->type = VMS_QJSON_NUMBER;
		v->text = strndup(start, (size_t)(p->s - start));
		if (!v->text)
			qjson_fail(p, "out of memory");
		return;
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);

		if ((size_t)(p->end - p->s) >= n && !memcmp(p->s, words[i].word, n)) {
			v->type = words[i].type;
			v->boolean = words[i].val;
			p->s += n;
			return;
		}
	}
	qjson_fail(p, "unexpected character '%c'", *p->s);
}

struct vms_qjson *vms_qjson_parse(const char *s, size_t len, char *err, size_t errlen)
{
	struct qjson_parser p = { s, s + len, err, errlen, false };
	struct vms_qjson *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	qjson_value(&p, v, 0);
	qjson_skip_ws(&p);
	if (!p.failed && p.s != p.end)
		qjson_fail(&p, "text after the value");
	if (p.failed) {
		vms_qjson_free(v);
		return NULL;
	}
	return v;
}

void vms_qjson_free(struct vms_qjson *v)
{
	if (!v)
		return;
	qjson_clear(v);
	free(v);
}

const struct vms_qjson *vms_qjson_get(const struct vms_qjson *v, const char *key)
{
	if (!v || v->type != VMS_QJSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->keys[i], key))
			return &v->items[i];
	return NULL;
}

const char *vms_qjson_str(const struct vms_qjson *v)
{
	return v && v->type == VMS_QJSON_STRING ? v->text : NULL;
}

bool vms_qjson_u64(const struct vms_qjson *v, uint64_t *out)
{
	char *end;

	if (!v || v->type != VMS_QJSON_NUMBER || !(v->text[0] >= '0' && v->text[0] <= '9'))
		return false;
	errno = 0;
	*out = strtoull(v->text, &end, 10);
	return !errno && !*end;
}

/* ---- QMP ---- */

struct vms_qmp {
	int fd;
	char *buf;
	size_t len, cap;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next line from QEMU, NUL-terminated in q->buf[0..*linelen]; consumed by the caller. */
static int qmp_read_line(struct vms_qmp *q, int64_t deadline, size_t *linelen)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*linelen = (size_t)(nl - q->buf);
			return 0;
		}
		if (left <= 0)
			return -ETIMEDOUT;
		if (q->len + 4096 > q->cap) {
			char *bigger;

			if (q->cap >= QMP_MAX_LINE)
				return -EMSGSIZE;
			bigger = realloc(q->buf, q->cap ? q->cap * 2 : 65536);
			if (!bigger)
				return -ENOMEM;
			q->buf = bigger;
			q->cap = q->cap ? q->cap * 2 : 65536;
		}
		n = poll(&pfd, 1, (int)(left < 1000 ? left : 1000));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		n = read(q->fd, q->buf + q->len, q->cap - q->len - 1);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		if (n > 0)
			q->len += (size_t)n;
	}
}

static void qmp_consume(struct vms_qmp *q, size_t linelen)
{
	memmove(q->buf, q->buf + linelen + 1, q->len - linelen - 1);
	q->len -= linelen + 1;
}

/* The next message that is not an event. */
static int qmp_read_message(struct vms_qmp *q, int64_t deadline, struct vms_qjson **msg, char *err,
			    size_t errlen)
{
	for (;;) {
		size_t linelen = 0;
		int ret = qmp_read_line(q, deadline, &linelen);

		if (ret) {
			snprintf(err, errlen, "reading from QEMU's QMP socket: %s", strerror(-ret));
			return ret;
		}
		*msg = vms_qjson_parse(q->buf, linelen, err, errlen);
		qmp_consume(q, linelen);
		if (!*msg)
			return -EPROTO;
		if (!vms_qjson_get(*msg, "event"))
			return 0;
		vms_qjson_free(*msg);
	}
}

int vms_qmp_exec(struct vms_qmp *q, const char *cmd, int timeout_ms, struct vms_qjson **ret,
		 char *err, size_t errlen)
{
	int64_t deadline = mono_ms() + timeout_ms;
	size_t len = strlen(cmd), off = 0;
	struct vms_qjson *msg;
	char *line;
	const struct vms_qjson *r, *e;
	int rc;

	if (ret)
		*ret = NULL;
	line = malloc(len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, cmd, len);
	line[len++] = '\n';
	while (off < len) {
		ssize_t w = send(q->fd, line + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			snprintf(err, errlen, "writing to QEMU's QMP socket: %s", strerror(errno));
			free(line);
			return rc;
		}
		off += (size_t)w;
	}
	free(line);
	rc = qmp_read_message(q, deadline, &msg, err, errlen);
	if (rc)
		return rc;
	r = vms_qjson_get(msg, "return");
	e = vms_qjson_get(msg, "error");
	if (r) {
		if (ret) {
			*ret = malloc(sizeof(**ret));
			if (!*ret) {
				vms_qjson_free(msg);
				return -ENOMEM;
			}
			/* Move the value out of the message. */
			**ret = *r;
			memset((struct vms_qjson *)r, 0, sizeof(*r));
		}
		vms_qjson_free(msg);
		return 0;
	}
	snprintf(err, errlen, "%s",
		 vms_qjson_str(vms_qjson_get(e, "desc"))
			 ? vms_qjson_str(vms_qjson_get(e, "desc"))
			 : "QEMU answered neither return nor error");
	vms_qjson_free(msg);
	return -EREMOTEIO;
}

int vms_qmp_connect(const char *path, int timeout_ms, struct vms_qmp **out, char *err,
		    size_t errlen)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vms_qjson *greeting = NULL;
	struct vms_qmp *q;
	int ret;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "the QMP socket path is too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (;;) {
		struct timespec nap = { 0, 20000000 };

		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "socket: %s", strerror(errno));
			free(q);
			return ret;
		}
		if (!connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		ret = -errno;
		close(q->fd);
		if ((ret != -ENOENT && ret != -ECONNREFUSED) || mono_ms() >= deadline) {
			snprintf(err, errlen, "cannot connect to QEMU's QMP socket %s: %s", path,
				 strerror(-ret));
			free(q);
			return ret;
		}
		nanosleep(&nap, NULL);
	}
	ret = qmp_read_message(q, deadline, &greeting, err, errlen);
	if (!ret && !vms_qjson_get(greeting, "QMP")) {
		snprintf(err, errlen, "QEMU's QMP socket did not greet");
		ret = -EPROTO;
	}
	vms_qjson_free(greeting);
	if (!ret)
		ret = vms_qmp_exec(q, "{\"execute\": \"qmp_capabilities\"}",
				   (int)(deadline - mono_ms()), NULL, err, errlen);
	if (ret) {
		vms_qmp_close(q);
		return ret;
	}
	*out = q;
	return 0;
}

void vms_qmp_close(struct vms_qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q->buf);
	free(q);
}
