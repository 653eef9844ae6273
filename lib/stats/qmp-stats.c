// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * KVM's statistics through QEMU's QMP monitor (vmscope/qmp.h): where a QEMU process has its
 * QMP socket, read from its command line, and what query-stats says of the VM and of each
 * vCPU. QEMU opens its KVM statistics file descriptors only while it answers query-stats,
 * so for a QEMU VM this is the way to KVM's per-vCPU counters that needs nothing from the
 * kernel but QEMU's socket.
 *
 * The command line is read the way QEMU reads its options (QemuOpts): "key=value" pairs
 * separated by commas, ",," a comma inside a value, a first element without '=' the value
 * of the option's implied key, a bare "key" or "nokey" a boolean switched on or off.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "stats/vmm-stats-local.h"
#include "vmscope/qmp.h"

/* Largest /proc/PID/cmdline looked at: QEMU command lines are a few KiB. */
#define CMDLINE_MAX (256 * 1024)
#define ID_MAX 128

/* ---- QEMU's option strings ---- */

/*
 * Copy one value of a QemuOpts string from @s up to a single ',' (",," is a comma) into
 * @out (NULL: only skip it); return where the element ends (its ',' or the NUL).
 * -ENAMETOOLONG in *@err when @out is too small.
 */
static const char *opt_value(const char *s, char *out, size_t len, int *err)
{
	size_t n = 0;

	for (; *s; s++) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++;
		}
		if (!out)
			continue;
		if (n + 1 < len)
			out[n++] = *s;
		else
			*err = -ENAMETOOLONG;
	}
	if (out && len)
		out[n] = '\0';
	return s;
}

/*
 * The value of @key in the QemuOpts string @s whose first element, when it has no '=', is
 * the value of @implied (NULL: none). A bare "key" reads as "on", "nokey" as "off".
 * Return: 1 found (the last one wins, as in QEMU), 0 not there, -ENAMETOOLONG.
 */
static int opt_get(const char *s, const char *implied, const char *key, char *val, size_t len)
{
	size_t keylen = strlen(key);
	int found = 0, err = 0;
	bool first = true;

	while (*s) {
		size_t klen = strcspn(s, "=,");
		const char *name = s;
		bool match;
		int e = 0;

		if (first && implied && s[klen] != '=') {
			match = !strcmp(implied, key);
			s = opt_value(s, match ? val : NULL, match ? len : 0, &e);
		} else if (s[klen] == '=') {
			match = klen == keylen && !strncmp(s, key, klen);
			s = opt_value(s + klen + 1, match ? val : NULL, match ? len : 0, &e);
		} else {
			/* A flag: "server" is server=on, "nowait" wait=off. */
			bool off = !strncmp(s, "no", 2);

			if (off) {
				name += 2;
				klen -= 2;
			}
			match = klen == keylen && !strncmp(name, key, klen);
			if (match)
				snprintf(val, len, "%s", off ? "off" : "on");
			s = name + klen;
		}
		if (match) {
			found = 1;
			err = e;
		}
		first = false;
		if (*s == ',')
			s++;
	}
	return err ? err : found;
}

static bool opt_is_on(const char *v)
{
	static const char *const on[] = { "on", "yes", "true", "y" };

	for (size_t i = 0; i < VMS_ARRAY_SIZE(on); i++)
		if (!strcasecmp(v, on[i]))
			return true;
	return false;
}

/* Whether QemuOpts string @s sets boolean @key on (default @def). */
static bool opt_bool(const char *s, const char *implied, const char *key, bool def)
{
	char v[16];
	int r = opt_get(s, implied, key, v, sizeof(v));

	return r == 1 ? opt_is_on(v) : def;
}

/*
 * A listening unix socket on a path, in the options of a socket chardev (after the backend
 * name: "path=...,server=on"): 0 and @path; -ENOENT; -ENAMETOOLONG.
 */
static int socket_server_path(const char *opts, const char *implied, char *path, size_t len)
{
	int r;

	if (!opt_bool(opts, implied, "server", false) || opt_bool(opts, implied, "abstract", false))
		return -ENOENT;
	r = opt_get(opts, implied, "path", path, len);
	if (r < 0)
		return r;
	return r == 1 && path[0] ? 0 : -ENOENT;
}

/* ---- the command line ---- */

struct cmdline {
	const char *buf, *end;
};

/*
 * The next argument after @arg, the first with @arg NULL; NULL at the end. An argument that
 * the buffer ends inside, without its NUL, does not count: /proc/PID/cmdline ends with one,
 * but a caller's buffer need not.
 */
static const char *arg_next(const struct cmdline *c, const char *arg)
{
	if (arg)
		arg += strnlen(arg, (size_t)(c->end - arg)) + 1;
	else
		arg = c->buf;
	if (arg >= c->end || strnlen(arg, (size_t)(c->end - arg)) == (size_t)(c->end - arg))
		return NULL;
	return arg;
}

/* Whether @arg is option @name ("-name" or "--name"). */
static bool is_opt(const char *arg, const char *name)
{
	if (arg[0] != '-')
		return false;
	arg += arg[1] == '-' ? 2 : 1;
	return !strcmp(arg, name);
}

/* The path of chardev @id when it is a listening unix socket: 0, -ENOENT, -ENAMETOOLONG. */
static int chardev_path(const struct cmdline *c, const char *id, char *path, size_t len)
{
	if (!*id)
		return -ENOENT; /* QEMU refuses an empty id */
	for (const char *a = arg_next(c, NULL); a; a = arg_next(c, a)) {
		const char *v = arg_next(c, a);
		char backend[16], cid[ID_MAX];

		if (!v || !is_opt(a, "chardev"))
			continue;
		a = v;
		if (opt_get(v, "backend", "id", cid, sizeof(cid)) != 1 || strcmp(cid, id))
			continue;
		if (opt_get(v, "backend", "backend", backend, sizeof(backend)) != 1 ||
		    strcmp(backend, "socket"))
			return -ENOENT;
		return socket_server_path(v, "backend", path, len);
	}
	return -ENOENT;
}

int vms_qmp_socket_from_cmdline(const char *cmdline, size_t len, char *path, size_t pathlen)
{
	struct cmdline c = { cmdline, cmdline + len };
	int ret = -ENOENT;

	if (!cmdline || !path || !pathlen)
		return -EINVAL;
	path[0] = '\0';
	for (const char *a = arg_next(&c, NULL); a; a = arg_next(&c, a)) {
		const char *v = arg_next(&c, a);
		char id[ID_MAX], mode[16];
		int r = -ENOENT;

		if (!v)
			break;
		if (is_opt(a, "qmp") || is_opt(a, "qmp-pretty")) {
			a = v;
			if (!strncmp(v, "unix:", 5))
				r = socket_server_path(v + 5, "path", path, pathlen);
			else if (!strncmp(v, "chardev:", 8))
				r = chardev_path(&c, v + 8, path, pathlen);
		} else if (is_opt(a, "mon")) {
			a = v;
			if (opt_get(v, "chardev", "mode", mode, sizeof(mode)) == 1 &&
			    !strcmp(mode, "control") &&
			    opt_get(v, "chardev", "chardev", id, sizeof(id)) == 1)
				r = chardev_path(&c, id, path, pathlen);
		} else {
			continue;
		}
		if (r == 0)
			return 0;
		if (r == -ENAMETOOLONG)
			ret = r; /* keep looking: a later one may fit */
	}
	path[0] = '\0';
	return ret;
}

int vms_qmp_socket_of(int pid, char *path, size_t len)
{
	char proc[64], raw[sizeof(((struct sockaddr_un *)0)->sun_path)], cwd[PATH_MAX];
	char *buf;
	int n, ret;
	ssize_t cl;

	if (pid <= 0 || !path || !len)
		return -EINVAL;
	buf = malloc(CMDLINE_MAX);
	if (!buf)
		return -ENOMEM;
	snprintf(proc, sizeof(proc), "/proc/%d/cmdline", pid);
	n = vms_read_text(proc, buf, CMDLINE_MAX);
	if (n < 0) {
		free(buf);
		return n == -ENOENT ? -ESRCH : n;
	}
	ret = vms_qmp_socket_from_cmdline(buf, (size_t)n, raw, sizeof(raw));
	free(buf);
	if (ret)
		return ret;
	if (raw[0] == '/') {
		n = snprintf(path, len, "%s", raw);
	} else {
		snprintf(proc, sizeof(proc), "/proc/%d/cwd", pid);
		cl = readlink(proc, cwd, sizeof(cwd) - 1);
		if (cl < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		cwd[cl] = '\0';
		n = snprintf(path, len, "%s/%s", strcmp(cwd, "/") ? cwd : "", raw);
	}
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(raw)) {
		path[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---- query-stats ---- */

/* One target's schema: query-stats-schemas' "stats" array of that target. */
static const struct vms_qjson *schema_of(const struct vms_qjson *schemas, const char *target)
{
	for (size_t i = 0; schemas->type == VMS_QJSON_ARRAY && i < schemas->n; i++) {
		const struct vms_qjson *s = &schemas->items[i];
		const struct vms_qjson *st = vms_qjson_get(s, "stats");

		if (!strcmp(vms_qjson_str(vms_qjson_get(s, "provider")) ?: "", "kvm") &&
		    !strcmp(vms_qjson_str(vms_qjson_get(s, "target")) ?: "", target) && st &&
		    st->type == VMS_QJSON_ARRAY)
			return st;
	}
	return NULL;
}

/* Describe statistic @name from @schema into @st; false when it is no scalar, or unknown. */
static bool describe(const struct vms_qjson *schema, const char *name, struct vms_vmm_stat *st)
{
	static const struct {
		const char *name;
		enum vms_stat_type type;
	} types[] = { { "cumulative", VMS_STAT_CUMULATIVE },
		      { "instant", VMS_STAT_INSTANT },
		      { "peak", VMS_STAT_PEAK } };
	static const struct {
		const char *name;
		enum vms_stat_unit unit;
	} units[] = { { "bytes", VMS_UNIT_BYTES },
		      { "seconds", VMS_UNIT_SECONDS },
		      { "cycles", VMS_UNIT_CYCLES },
		      { "boolean", VMS_UNIT_BOOLEAN } };
	const struct vms_qjson *d = NULL, *e;
	const char *type, *unit;
	uint64_t u;
	size_t i;

	for (i = 0; schema && i < schema->n; i++) {
		if (!strcmp(vms_qjson_str(vms_qjson_get(&schema->items[i], "name")) ?: "", name)) {
			d = &schema->items[i];
			break;
		}
	}
	if (!d)
		return false;
	type = vms_qjson_str(vms_qjson_get(d, "type"));
	for (i = 0; type && i < VMS_ARRAY_SIZE(types); i++)
		if (!strcmp(type, types[i].name))
			break;
	if (!type || i == VMS_ARRAY_SIZE(types))
		return false; /* a histogram, or a type this reader does not know */
	st->type = types[i].type;
	st->has_unit = true;
	st->unit = VMS_UNIT_NONE; /* no unit in the schema: a count */
	unit = vms_qjson_str(vms_qjson_get(d, "unit"));
	for (i = 0; unit && i < VMS_ARRAY_SIZE(units); i++)
		if (!strcmp(unit, units[i].name))
			st->unit = units[i].unit;
	if (unit && st->unit == VMS_UNIT_NONE)
		st->has_unit = false; /* a unit this reader does not know */
	st->base = vms_qjson_u64(vms_qjson_get(d, "base"), &u) && u == 2 ? 2 : 10;
	st->exponent = 0;
	e = vms_qjson_get(d, "exponent");
	if (e && e->type == VMS_QJSON_NUMBER) {
		char *end;
		long x = strtol(e->text, &end, 10);

		if (*end || x < -64 || x > 64)
			st->has_unit = false; /* KVM's exponents are small integers */
		else
			st->exponent = (int)x;
	}
	if (!st->has_unit) {
		st->unit = VMS_UNIT_NONE;
		st->base = 10;
		st->exponent = 0;
	}
	return true;
}

/* The scalar statistics of one query-stats entry ("stats": [{name, value}]) into a list. */
static int add_stats(const struct vms_qjson *stats, const struct vms_qjson *schema,
		     struct vms_vmm_stat **list, size_t *n)
{
	for (size_t i = 0; stats && stats->type == VMS_QJSON_ARRAY && i < stats->n; i++) {
		const struct vms_qjson *v = vms_qjson_get(&stats->items[i], "value");
		struct vms_vmm_stat st = { 0 };
		int ret;

		st.name = (char *)vms_qjson_str(vms_qjson_get(&stats->items[i], "name"));
		if (!st.name || !v)
			continue;
		if (v->type == VMS_QJSON_BOOL)
			st.value = v->boolean;
		else if (!vms_qjson_u64(v, &st.value))
			continue; /* a histogram's array */
		if (!describe(schema, st.name, &st))
			continue;
		ret = vmm_stats_add(list, n, &st);
		if (ret)
			return ret;
	}
	return 0;
}

/* Run @cmd; its return value must be an array. */
static int exec_array(struct vms_qmp *q, const char *cmd, int timeout_ms, struct vms_qjson **ret,
		      char *err, size_t errlen)
{
	int rc = vms_qmp_exec(q, cmd, timeout_ms, ret, err, errlen);

	if (rc)
		return rc;
	if ((*ret)->type != VMS_QJSON_ARRAY) {
		snprintf(err, errlen, "QEMU's answer to %s is not an array", cmd);
		vms_qjson_free(*ret);
		*ret = NULL;
		return -EPROTO;
	}
	return 0;
}

int vms_qmp_query_stats(struct vms_qmp *q, int timeout_ms, struct vms_vmm_stats **out, char *err,
			size_t errlen)
{
	struct vms_qjson *cpus = NULL, *schemas = NULL, *vcpu = NULL, *vm = NULL;
	const struct vms_qjson *vcpu_schema, *vm_schema;
	struct vms_vmm_stats *s = NULL;
	int ret;

	if (!q || !out)
		return -EINVAL;
	*out = NULL;
	ret = exec_array(q, "{\"execute\": \"query-cpus-fast\"}", timeout_ms, &cpus, err, errlen);
	if (ret)
		goto out;
	ret = exec_array(q,
			 "{\"execute\": \"query-stats-schemas\", \"arguments\": "
			 "{\"provider\": \"kvm\"}}",
			 timeout_ms, &schemas, err, errlen);
	if (ret == -EREMOTEIO) /* "The command query-stats-schemas has not been found" */
		ret = -EOPNOTSUPP;
	if (ret)
		goto out;
	vcpu_schema = schema_of(schemas, "vcpu");
	vm_schema = schema_of(schemas, "vm");
	if (!vcpu_schema && !vm_schema) {
		snprintf(err, errlen, "QEMU has no KVM statistics (not a KVM VM?)");
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = exec_array(q,
			 "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vcpu\", "
			 "\"providers\": [{\"provider\": \"kvm\"}]}}",
			 timeout_ms, &vcpu, err, errlen);
	if (ret)
		goto out;
	ret = exec_array(q,
			 "{\"execute\": \"query-stats\", \"arguments\": {\"target\": \"vm\", "
			 "\"providers\": [{\"provider\": \"kvm\"}]}}",
			 timeout_ms, &vm, err, errlen);
	if (ret)
		goto out;

	ret = -ENOMEM;
	s = vmm_stats_new("qmp");
	if (!s)
		goto out;
	for (size_t i = 0; i < cpus->n; i++) {
		const struct vms_qjson *c = &cpus->items[i];
		struct vms_vmm_vcpu_stats *v;
		uint64_t idx, tid;

		if (!vms_qjson_u64(vms_qjson_get(c, "cpu-index"), &idx) || idx > INT_MAX)
			continue;
		v = vmm_stats_vcpu(s, (int)idx);
		if (!v)
			goto out;
		if (vms_qjson_u64(vms_qjson_get(c, "thread-id"), &tid) && tid <= INT_MAX)
			v->tid = (int)tid;
	}
	for (size_t i = 0; i < vcpu->n; i++) {
		const char *qom = vms_qjson_str(vms_qjson_get(&vcpu->items[i], "qom-path"));
		struct vms_vmm_vcpu_stats *v = NULL;
		uint64_t idx;

		if (strcmp(vms_qjson_str(vms_qjson_get(&vcpu->items[i], "provider")) ?: "", "kvm"))
			continue;
		for (size_t k = 0; qom && k < cpus->n; k++) {
			if (!strcmp(vms_qjson_str(vms_qjson_get(&cpus->items[k], "qom-path")) ?: "",
				    qom) &&
			    vms_qjson_u64(vms_qjson_get(&cpus->items[k], "cpu-index"), &idx) &&
			    idx <= INT_MAX) {
				v = vmm_stats_vcpu(s, (int)idx);
				if (!v)
					goto out;
				break;
			}
		}
		/* A vCPU that query-cpus-fast did not list (hot-unplugged in between). */
		if (!v)
			continue;
		ret = add_stats(vms_qjson_get(&vcpu->items[i], "stats"), vcpu_schema, &v->stats,
				&v->nstats);
		if (ret)
			goto out;
		ret = -ENOMEM;
	}
	for (size_t i = 0; i < vm->n; i++) {
		if (strcmp(vms_qjson_str(vms_qjson_get(&vm->items[i], "provider")) ?: "", "kvm"))
			continue;
		ret = add_stats(vms_qjson_get(&vm->items[i], "stats"), vm_schema, &s->vm, &s->nvm);
		if (ret)
			goto out;
	}
	vmm_stats_sort(s);
	*out = s;
	s = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	vms_vmm_stats_free(s);
	vms_qjson_free(cpus);
	vms_qjson_free(schemas);
	vms_qjson_free(vcpu);
	vms_qjson_free(vm);
	return ret;
}
