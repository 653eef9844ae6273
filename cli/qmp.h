/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A minimal QMP client for the commands that drive QEMU (vmscope testvm --qemu): connect to
 * a QMP unix socket, run one command at a time, and read its reply through a small JSON
 * reader that keeps u64 numbers exact (KVM statistics do not fit a double).
 */
#ifndef VMSCOPE_CLI_QMP_H
#define VMSCOPE_CLI_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qjson_type { QJSON_NULL, QJSON_BOOL, QJSON_NUMBER, QJSON_STRING, QJSON_ARRAY, QJSON_OBJECT };

/* A parsed JSON value. Objects keep their members in order, keys[i] names items[i]. */
struct qjson {
	enum qjson_type type;
	bool boolean;
	char *text; /* a string's value, or a number as written */
	size_t n;   /* array elements or object members */
	struct qjson *items;
	char **keys;
};

/*
 * qjson_parse() - parse one JSON value (with nothing but white space after it)
 * @err: receives what is wrong, at most @errlen bytes
 * Return: the value (free with qjson_free()), or NULL.
 */
struct qjson *qjson_parse(const char *s, size_t len, char *err, size_t errlen);
/* qjson_free() - free a value from qjson_parse(); NULL is a no-op. */
void qjson_free(struct qjson *v);
/* The member @key of object @v, or NULL (also when @v is NULL or not an object). */
const struct qjson *qjson_get(const struct qjson *v, const char *key);
/* A string's value, or NULL. */
const char *qjson_str(const struct qjson *v);
/* A non-negative integer that fits a u64; false otherwise. */
bool qjson_u64(const struct qjson *v, uint64_t *out);

struct qmp;

/*
 * qmp_connect() - connect to QEMU's QMP socket @path and leave the capabilities
 * negotiation; QEMU may still be creating the socket: retried until @timeout_ms.
 * Return: 0 and *out (close with qmp_close()), or a negative errno and @err.
 */
int qmp_connect(const char *path, int timeout_ms, struct qmp **out, char *err, size_t errlen);
/*
 * qmp_exec() - run @cmd (a JSON object: {"execute": ...}) and wait for its reply
 * @ret: receives the reply's "return" value (free with qjson_free()), or NULL to drop it
 * Return: 0; -EREMOTEIO with QEMU's error description in @err; another negative errno.
 */
int qmp_exec(struct qmp *q, const char *cmd, int timeout_ms, struct qjson **ret, char *err,
	     size_t errlen);
/* qmp_close() - close the connection; NULL is a no-op. */
void qmp_close(struct qmp *q);

#endif /* VMSCOPE_CLI_QMP_H */
