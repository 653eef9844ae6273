// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvirt's view of a domain in an accounting snapshot: the "libvirt.*" counters, from
 * vms_libvirt_read() (virsh cpu-stats, domstats --cpu-total --vcpu, vcpuinfo), so that
 * validate can put every libvirt figure beside the source it comes from. What libvirt does
 * not report is left out and said in "err.libvirt*", never written as zero.
 */
#include <stdio.h>

#include "acct-local.h"
#include "vmscope/libvirt.h"

static void put(struct vms_acct *a, bool has, uint64_t v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void put(struct vms_acct *a, bool has, uint64_t v, const char *fmt, ...)
{
	va_list ap;

	if (!has)
		return;
	va_start(ap, fmt);
	acct_vsetf(a, v, fmt, ap);
	va_end(ap);
}

int acct_read_libvirt(struct vms_acct *a, const char *uri, const char *domain)
{
	struct vms_libvirt_dom d;
	int err = vms_libvirt_read(uri, domain, &d);

	if (err) {
		vms_acct_set_str(a, "err.libvirt",
				 err == -ENOTSUP ? "this vmscope was built without libvirt"
				 : d.msg[0]	 ? d.msg
						 : vms_strerror(err));
		vms_libvirt_dom_release(&d);
		return err;
	}
	vms_acct_set_str(a, "libvirt.name", d.name);
	vms_acct_set_str(a, "libvirt.uuid", d.uuid);
	put(a, true, (uint64_t)d.state, "libvirt.state");
	put(a, d.has_cpu_time, d.cpu_time_ns, "libvirt.cpu_time");
	put(a, d.has_user_time, d.user_time_ns, "libvirt.user_time");
	put(a, d.has_system_time, d.system_time_ns, "libvirt.system_time");
	put(a, d.has_ds_cpu_time, d.ds_cpu_time_ns, "libvirt.ds.cpu_time");
	put(a, d.has_ds_cpu_user, d.ds_cpu_user_ns, "libvirt.ds.cpu_user");
	put(a, d.has_ds_cpu_system, d.ds_cpu_system_ns, "libvirt.ds.cpu_system");
	put(a, d.has_ds_haltpoll, d.ds_haltpoll_success_ns, "libvirt.ds.haltpoll_success");
	put(a, d.has_ds_haltpoll, d.ds_haltpoll_fail_ns, "libvirt.ds.haltpoll_fail");
	for (size_t c = 0; c < d.ncpus; c++) {
		put(a, d.percpu_cpu_ns[c] != VMS_LIBVIRT_UNSET, d.percpu_cpu_ns[c],
		    "libvirt.percpu.%zu.cpu_time", c);
		put(a, d.percpu_vcpu_ns[c] != VMS_LIBVIRT_UNSET, d.percpu_vcpu_ns[c],
		    "libvirt.percpu.%zu.vcpu_time", c);
	}
	if (d.percpu_err)
		vms_acct_set_str(a, "err.libvirt_percpu",
				 d.percpu_msg[0] ? d.percpu_msg : vms_strerror(d.percpu_err));
	for (size_t i = 0; i < d.nvcpus; i++) {
		const struct vms_libvirt_vcpu *v = &d.vcpus[i];

		put(a, v->has_state, (uint64_t)v->state, "libvirt.vcpu.%d.state", v->vcpu);
		put(a, v->has_time, v->time_ns, "libvirt.vcpu.%d.time", v->vcpu);
		put(a, v->has_wait, v->wait_ns, "libvirt.vcpu.%d.wait", v->vcpu);
		put(a, v->has_delay, v->delay_ns, "libvirt.vcpu.%d.delay", v->vcpu);
		put(a, v->host_cpu >= 0, (uint64_t)v->host_cpu, "libvirt.vcpu.%d.host_cpu",
		    v->vcpu);
	}
	vms_libvirt_dom_release(&d);
	return 0;
}
