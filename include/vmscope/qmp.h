/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small client of QEMU's machine protocol (QMP): find a VM's QMP socket from its command
 * line, connect to it, run one command at a time and read the reply through a JSON reader
 * that keeps numbers as text, so that u64 values stay exact (KVM statistics do not fit a
 * double); and, on top, KVM's statistics of the VM and of each vCPU through query-stats.
 *
 * QEMU serves one client per monitor: a socket that libvirt (or any other manager) holds
 * answers nobody else. The calls report what went wrong in a caller's buffer (@err) and
 * return a negative errno (@err may be NULL when @errlen is 0); nothing is printed.
 */
#ifndef VMSCOPE_QMP_H
#define VMSCOPE_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmm-stats.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- JSON ---- */

enum vms_qjson_type {
	VMS_QJSON_NULL,
	VMS_QJSON_BOOL,
	VMS_QJSON_NUMBER,
	VMS_QJSON_STRING,
	VMS_QJSON_ARRAY,
	VMS_QJSON_OBJECT
};

/* A parsed JSON value. Objects keep their members in order, keys[i] names items[i]. */
struct vms_qjson {
	enum vms_qjson_type type;
	bool boolean;
	char *text; /* a string's value, or a number as written */
	size_t n;   /* array elements or object members */
	struct vms_qjson *items;
	char **keys;
};

/**
 * vms_qjson_parse() - parse one JSON value (with nothing but white space after it)
 * @s: the text (need not be NUL-terminated)
 * @len: its length
 * @err: receives what is wrong, at most @errlen bytes
 * @errlen: size of @err
 *
 * Nesting is limited to 64 levels. \u escapes become UTF-8 (surrogates become '?').
 * Return: the value (free with vms_qjson_free()), or NULL.
 */
VMS_API struct vms_qjson *vms_qjson_parse(const char *s, size_t len, char *err, size_t errlen);

/** vms_qjson_free() - free a value from vms_qjson_parse(); NULL is a no-op. */
VMS_API void vms_qjson_free(struct vms_qjson *v);

/** vms_qjson_get() - member @key of object @v (owned by @v), or NULL (also for a non-object). */
VMS_API const struct vms_qjson *vms_qjson_get(const struct vms_qjson *v, const char *key);

/** vms_qjson_str() - a string's value (owned by @v), or NULL when @v is no string. */
VMS_API const char *vms_qjson_str(const struct vms_qjson *v);

/**
 * vms_qjson_u64() - a non-negative integer that fits a u64, exactly
 * Return: true and *out, or false (not a number, negative, a fraction, an exponent, too big).
 */
VMS_API bool vms_qjson_u64(const struct vms_qjson *v, uint64_t *out);

/* ---- QMP ---- */

struct vms_qmp;

/**
 * vms_qmp_connect() - connect to a QMP socket and leave the capabilities negotiation
 * @path: the unix socket
 * @timeout_ms: QEMU may still be creating the socket: connecting is retried until then, and
 *              the greeting waited for
 * @out: receives the connection; close it with vms_qmp_close()
 * @err: receives the reason of a failure, at most @errlen bytes
 * @errlen: size of @err
 *
 * A socket that another client holds (libvirt's monitor) accepts the connection but never
 * greets: that is -ETIMEDOUT after @timeout_ms.
 * Return: 0; -ENOENT or -ECONNREFUSED (nobody listens), -ETIMEDOUT, -EPROTO (not QMP),
 * -ENAMETOOLONG, another negative errno.
 */
VMS_API int vms_qmp_connect(const char *path, int timeout_ms, struct vms_qmp **out, char *err,
			    size_t errlen);

/**
 * vms_qmp_exec() - run one command and wait for its reply
 * @q: the connection
 * @cmd: a JSON object: {"execute": ..., "arguments": ...}, without a newline
 * @timeout_ms: how long to wait for the reply
 * @ret: receives the reply's "return" value (free it with vms_qjson_free()), or NULL to drop
 *       it; NULL on failure
 * @err: receives the reason of a failure
 * @errlen: size of @err
 *
 * Asynchronous events that come before the reply are skipped.
 * Return: 0; -EREMOTEIO with QEMU's error description in @err; -ETIMEDOUT, -ECONNRESET,
 * -EPROTO (a reply that is no JSON), another negative errno.
 */
VMS_API int vms_qmp_exec(struct vms_qmp *q, const char *cmd, int timeout_ms, struct vms_qjson **ret,
			 char *err, size_t errlen);

/** vms_qmp_close() - close the connection; NULL is a no-op. */
VMS_API void vms_qmp_close(struct vms_qmp *q);

/* ---- finding a VM's QMP socket ---- */

/**
 * vms_qmp_socket_from_cmdline() - the first QMP server socket a QEMU command line opens
 * @cmdline: the arguments, each NUL-terminated, one after the other (/proc/PID/cmdline)
 * @len: bytes in @cmdline
 * @path: receives the socket's path as written (maybe relative to QEMU's working folder)
 * @pathlen: size of @path
 *
 * Counts `-qmp unix:PATH[,server=on,...]` (also `unix:path=PATH`, `-qmp-pretty`, `--qmp`),
 * and `-chardev socket,id=ID,path=PATH,server=on` with a `-mon [chardev=]ID,mode=control`
 * (a -mon without mode=control is a human monitor, not QMP). Only listening sockets
 * (server=on) on a path count: not the ones QEMU connects to, nor abstract ones, nor those
 * passed as an fd (libvirt's). ",," in a value is a comma, as QEMU reads it.
 * Return: 0; -ENOENT when there is none; -ENAMETOOLONG when the path does not fit @path.
 */
VMS_API int vms_qmp_socket_from_cmdline(const char *cmdline, size_t len, char *path,
					size_t pathlen);

/**
 * vms_qmp_socket_of() - the QMP server socket of QEMU process @pid
 * @pid: the QEMU process
 * @path: receives an absolute path (a relative one is resolved against QEMU's working
 *        folder) that fits a struct sockaddr_un
 * @len: size of @path
 *
 * Reads /proc/PID/cmdline; see vms_qmp_socket_from_cmdline(). The socket may still be held
 * by another client: only connecting tells.
 * Return: 0; -ENOENT no QMP socket on the command line; -ESRCH no such process; -EACCES;
 * -ENAMETOOLONG.
 */
VMS_API int vms_qmp_socket_of(int pid, char *path, size_t len);

/* ---- KVM statistics ---- */

/**
 * vms_qmp_query_stats() - KVM's statistics of the VM and of every vCPU
 * @q: a connection (vms_qmp_connect())
 * @timeout_ms: for each of the commands
 * @out: receives the statistics (source "qmp"); free them with vms_vmm_stats_free()
 * @err: receives the reason of a failure
 * @errlen: size of @err
 *
 * Runs query-cpus-fast (vCPU index and thread of each QOM path), query-stats-schemas for
 * provider kvm (type, unit, base, exponent of each name) and query-stats for targets vcpu
 * and vm. Every vCPU that query-cpus-fast lists is in @out, with its scalar statistics.
 * Answering query-stats costs QEMU a kick of every running vCPU thread, so the exit
 * counters of a running VM move with each call (by a few); a paused VM's do not.
 * Return: 0; -EOPNOTSUPP when QEMU has no query-stats (before 7.1) or no KVM statistics
 * (TCG); the errors of vms_qmp_exec(); -EPROTO for an answer of the wrong shape.
 */
VMS_API int vms_qmp_query_stats(struct vms_qmp *q, int timeout_ms, struct vms_vmm_stats **out,
				char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_QMP_H */
