// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmmstats: print the KVM statistics the library gets from a VMM, as JSON, so that the
 * tests can hold them against QEMU's raw QMP answers and against virsh.
 *
 *   vmmstats [-t MS] --qmp SOCKET        vms_qmp_connect() + vms_qmp_query_stats()
 *   vmmstats [-t MS] --pid PID           the same on vms_qmp_socket_of(PID)
 *   vmmstats --socket-of PID             {"path": ...} from vms_qmp_socket_of()
 *   vmmstats [-c URI] --libvirt DOMAIN   vms_libvirt_vm_stats()
 *
 * Output: {"source", "vm": [STAT...], "vcpus": [{"vcpu", "tid", "stats": [STAT...]}]}
 * with STAT {"name", "value", "type", "has_unit", "unit", "base", "exponent"}. A failure
 * prints {"error": -errno, "msg": ...} and exits 1; 77 when the library says -ENOTSUP
 * (built without libvirt, or no KVM statistics to be had); 2 for a wrong usage. Nothing
 * goes to stderr but usage errors: the library must not print by itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/json.h"
#include "vmscope/libvirt.h"
#include "vmscope/qmp.h"

static void print_stat(struct vms_json *j, const struct vms_vmm_stat *st)
{
	vms_json_object_begin(j, NULL);
	vms_json_string(j, "name", st->name);
	vms_json_u64(j, "value", st->value);
	vms_json_string(j, "type", vms_stat_type_name(st->type));
	vms_json_bool(j, "has_unit", st->has_unit);
	vms_json_string(j, "unit", vms_stat_unit_name(st->unit));
	vms_json_u64(j, "base", st->base);
	vms_json_i64(j, "exponent", st->exponent);
	vms_json_object_end(j);
}

static void print_stats(const struct vms_vmm_stats *s)
{
	struct vms_json j;

	vms_json_init(&j, stdout, false);
	vms_json_object_begin(&j, NULL);
	vms_json_string(&j, "source", s->source);
	vms_json_array_begin(&j, "vm");
	for (size_t i = 0; i < s->nvm; i++)
		print_stat(&j, &s->vm[i]);
	vms_json_array_end(&j);
	vms_json_array_begin(&j, "vcpus");
	for (size_t i = 0; i < s->nvcpus; i++) {
		vms_json_object_begin(&j, NULL);
		vms_json_i64(&j, "vcpu", s->vcpus[i].vcpu);
		vms_json_i64(&j, "tid", s->vcpus[i].tid);
		vms_json_array_begin(&j, "stats");
		for (size_t k = 0; k < s->vcpus[i].nstats; k++)
			print_stat(&j, &s->vcpus[i].stats[k]);
		vms_json_array_end(&j);
		vms_json_object_end(&j);
	}
	vms_json_array_end(&j);
	vms_json_object_end(&j);
	vms_json_finish(&j);
}

static int fail(int err, const char *msg)
{
	struct vms_json j;

	vms_json_init(&j, stdout, false);
	vms_json_object_begin(&j, NULL);
	vms_json_i64(&j, "error", err);
	vms_json_string(&j, "msg", msg && *msg ? msg : vms_strerror(err));
	vms_json_object_end(&j);
	vms_json_finish(&j);
	return err == -ENOTSUP ? 77 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: vmmstats [-t MS] --qmp SOCKET | --pid PID | --socket-of PID | "
			"[-c URI] --libvirt DOMAIN\n");
	return 2;
}

static int from_qmp(const char *path, int timeout_ms)
{
	struct vms_vmm_stats *s;
	struct vms_qmp *q;
	char err[512] = "";
	int ret = vms_qmp_connect(path, timeout_ms, &q, err, sizeof(err));

	if (ret)
		return fail(ret, err);
	ret = vms_qmp_query_stats(q, timeout_ms, &s, err, sizeof(err));
	vms_qmp_close(q);
	if (ret)
		return fail(ret, err);
	print_stats(s);
	vms_vmm_stats_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *uri = NULL;
	int timeout_ms = 5000, i;
	char path[256], msg[512] = "";

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			timeout_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			uri = argv[++i];
		else
			break;
	}
	if (i + 2 != argc)
		return usage();
	if (!strcmp(argv[i], "--qmp"))
		return from_qmp(argv[i + 1], timeout_ms);
	if (!strcmp(argv[i], "--pid") || !strcmp(argv[i], "--socket-of")) {
		int ret = vms_qmp_socket_of(atoi(argv[i + 1]), path, sizeof(path));
		struct vms_json j;

		if (ret)
			return fail(ret, NULL);
		if (!strcmp(argv[i], "--pid"))
			return from_qmp(path, timeout_ms);
		vms_json_init(&j, stdout, false);
		vms_json_object_begin(&j, NULL);
		vms_json_string(&j, "path", path);
		vms_json_object_end(&j);
		vms_json_finish(&j);
		return 0;
	}
	if (!strcmp(argv[i], "--libvirt")) {
		struct vms_vmm_stats *s;
		int ret = vms_libvirt_vm_stats(uri, argv[i + 1], &s, msg, sizeof(msg));

		if (ret)
			return fail(ret, msg);
		print_stats(s);
		vms_vmm_stats_free(s);
		return 0;
	}
	return usage();
}
