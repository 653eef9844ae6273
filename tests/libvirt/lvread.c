// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lvread: print what vms_libvirt_read() or vms_libvirt_find_by_pid() returns, as JSON, so
 * that the libvirt tests can compare the library's reading with virsh's text output.
 *
 *   lvread [-c URI] DOMAIN       struct vms_libvirt_dom
 *   lvread [-c URI] --pid PID    {"name": ...}
 *
 * Every run prints one JSON object; a failed call prints {"error": -errno, "msg": ...}.
 * Exit status: 0 success, 77 the library was built without libvirt, 1 any other error,
 * 2 usage. Nothing but the JSON goes to stdout and nothing at all to stderr unless the
 * usage is wrong: the tests check that the library prints nothing by itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/json.h"
#include "vmscope/libvirt.h"

static char log_msg[512];

static void keep_log(enum vms_log_level level, const char *msg, void *ctx)
{
	snprintf(log_msg, sizeof(log_msg), "%s", msg);
}

/* A per-CPU value: null where libvirt reported nothing. */
static void u64_or_null(struct vms_json *j, uint64_t v)
{
	if (v == VMS_LIBVIRT_UNSET)
		vms_json_null(j, NULL);
	else
		vms_json_u64(j, NULL, v);
}

static void opt_u64(struct vms_json *j, const char *key, bool has, uint64_t v)
{
	if (has)
		vms_json_u64(j, key, v);
	else
		vms_json_null(j, key);
}

static void print_dom(struct vms_json *j, const struct vms_libvirt_dom *d)
{
	size_t i;

	vms_json_string(j, "name", d->name);
	vms_json_string(j, "uuid", d->uuid);
	vms_json_i64(j, "id", d->id);
	vms_json_i64(j, "pid", d->pid);
	vms_json_i64(j, "state", d->state);
	opt_u64(j, "cpu_time", d->has_cpu_time, d->cpu_time_ns);
	opt_u64(j, "user_time", d->has_user_time, d->user_time_ns);
	opt_u64(j, "system_time", d->has_system_time, d->system_time_ns);
	vms_json_i64(j, "percpu_err", d->percpu_err);
	vms_json_string(j, "percpu_msg", d->percpu_msg);
	vms_json_array_begin(j, "percpu_cpu_time");
	for (i = 0; i < d->ncpus; i++)
		u64_or_null(j, d->percpu_cpu_ns[i]);
	vms_json_array_end(j);
	vms_json_array_begin(j, "percpu_vcpu_time");
	for (i = 0; i < d->ncpus; i++)
		u64_or_null(j, d->percpu_vcpu_ns[i]);
	vms_json_array_end(j);
	opt_u64(j, "cpu.time", d->has_ds_cpu_time, d->ds_cpu_time_ns);
	opt_u64(j, "cpu.user", d->has_ds_cpu_user, d->ds_cpu_user_ns);
	opt_u64(j, "cpu.system", d->has_ds_cpu_system, d->ds_cpu_system_ns);
	opt_u64(j, "cpu.haltpoll.success.time", d->has_ds_haltpoll, d->ds_haltpoll_success_ns);
	opt_u64(j, "cpu.haltpoll.fail.time", d->has_ds_haltpoll, d->ds_haltpoll_fail_ns);
	vms_json_i64(j, "vcpu.current", d->vcpu_current);
	vms_json_i64(j, "vcpu.maximum", d->vcpu_maximum);
	vms_json_array_begin(j, "vcpus");
	for (i = 0; i < d->nvcpus; i++) {
		const struct vms_libvirt_vcpu *v = &d->vcpus[i];

		vms_json_object_begin(j, NULL);
		vms_json_i64(j, "vcpu", v->vcpu);
		vms_json_i64(j, "host_cpu", v->host_cpu);
		opt_u64(j, "state", v->has_state, (uint64_t)v->state);
		opt_u64(j, "time", v->has_time, v->time_ns);
		opt_u64(j, "wait", v->has_wait, v->wait_ns);
		opt_u64(j, "delay", v->has_delay, v->delay_ns);
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
	vms_json_string(j, "msg", d->msg);
}

int main(int argc, char **argv)
{
	struct vms_libvirt_dom d;
	struct vms_json j;
	const char *uri = NULL;
	char name[256] = "";
	int ret, argi = 1;

	if (argc > 2 && !strcmp(argv[1], "-c")) {
		uri = argv[2];
		argi = 3;
	}
	if (argc - argi < 1 || (!strcmp(argv[argi], "--pid") && argc - argi < 2)) {
		fprintf(stderr, "usage: lvread [-c URI] DOMAIN | --pid PID\n");
		return 2;
	}
	memset(&d, 0, sizeof(d));
	vms_set_log(keep_log, NULL, VMS_LOG_ERROR);
	vms_json_init(&j, stdout, true);
	vms_json_object_begin(&j, NULL);
	if (!strcmp(argv[argi], "--pid")) {
		ret = vms_libvirt_find_by_pid(uri, atoi(argv[argi + 1]), name, sizeof(name));
		if (ret)
			vms_json_string(&j, "msg", log_msg);
		else
			vms_json_string(&j, "name", name);
	} else {
		ret = vms_libvirt_read(uri, argv[argi], &d);
		print_dom(&j, &d);
		vms_libvirt_dom_release(&d);
	}
	vms_json_i64(&j, "error", ret);
	vms_json_string(&j, "strerror", ret ? vms_strerror(ret) : "");
	vms_json_object_end(&j);
	if (vms_json_finish(&j))
		return 1;
	if (ret == -ENOTSUP && !strcmp(log_msg, "libvirt: vmscope was built without libvirt"))
		return 77;
	if (ret == -ENOTSUP && strstr(d.msg, "built without libvirt"))
		return 77;
	return ret ? 1 : 0;
}
