// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gentrace's writing side: from the simulation's events to the bytes of the .dat file.
 *
 * The kernel's format files are parsed once with libtraceevent (and copied into the
 * file) to learn each event's id and the offset and size of each field; the ev_*()
 * functions then fill a record with those offsets, so that the generated events are
 * laid out exactly as the kernel the formats come from would lay them out. Records go,
 * time-ordered per CPU, through one libvmscope page writer per CPU into the .dat writer:
 * nothing is buffered beyond a page. --lost windows are applied here: at the chosen
 * event, a CPU's pages so far are flushed and the next page's worth of events is dropped;
 * the page after carries the missed-events count. Last, the file gets the options that
 * the events cannot tell (GUEST per VM, cmdlines, vmscope's meta, per-CPU stats).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <traceevent/event-parse.h>

#include "gentrace.h"
#include "tools-util.h"
#include "vmscope/trace-writer.h"

/* ---- event formats ---- */

static const struct {
	const char *sys, *name;
	const char *fields[MAX_FIELDS];
} ev_spec[EV_N] = {
	[EV_EXIT] = { "kvm",
		      "kvm_exit",
		      { "exit_reason", "guest_rip", "isa", "info1", "info2", "intr_info",
			"error_code", "vcpu_id", "requests" } },
	[EV_ENTRY] = { "kvm",
		       "kvm_entry",
		       { "vcpu_id", "rip", "immediate_exit", "intr_info", "error_code" } },
	[EV_PIO] = { "kvm", "kvm_pio", { "rw", "port", "size", "count", "val" } },
	[EV_MMIO] = { "kvm", "kvm_mmio", { "type", "len", "gpa", "val" } },
	[EV_MSR] = { "kvm", "kvm_msr", { "write", "ecx", "data", "exception" } },
	[EV_USER_EXIT] = { "kvm", "kvm_userspace_exit", { "reason", "errno" } },
	[EV_PF] = { "kvm",
		    "kvm_page_fault",
		    { "vcpu_id", "guest_rip", "fault_address", "error_code" } },
	[EV_VCPU_WAKEUP] = { "kvm", "kvm_vcpu_wakeup", { "ns", "waited", "valid" } },
	[EV_INJ_VIRQ] = { "kvm", "kvm_inj_virq", { "vector", "soft", "reinjected" } },
	[EV_SWITCH] = { "sched",
			"sched_switch",
			{ "prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm",
			  "next_pid", "next_prio" } },
	[EV_WAKING] = { "sched", "sched_waking", { "comm", "pid", "prio", "target_cpu" } },
	[EV_WAKEUP] = { "sched", "sched_wakeup", { "comm", "pid", "prio", "target_cpu" } },
	[EV_MIGRATE] = { "sched",
			 "sched_migrate_task",
			 { "comm", "pid", "prio", "orig_cpu", "dest_cpu" } },
};

const char *ev_name(int e)
{
	return ev_spec[e].name;
}

static inline void rec_u(struct rec *r, const struct fld *f, uint64_t v)
{
	if (f->off >= 0)
		memcpy(r->buf + f->off, &v, (size_t)f->size); /* little-endian host */
}

static void rec_str(struct rec *r, const struct fld *f, const char *s)
{
	size_t n = strlen(s);

	if (f->off < 0)
		return;
	if (f->dyn) {
		uint32_t loc;

		if (r->len + n + 1 > REC_MAX)
			n = REC_MAX - r->len - 1;
		loc = (uint32_t)((n + 1) << 16 | r->len);
		memcpy(r->buf + r->len, s, n);
		r->buf[r->len + n] = 0;
		r->len += n + 1;
		memcpy(r->buf + f->off, &loc, 4);
	} else {
		if (n >= (size_t)f->size)
			n = (size_t)f->size - 1;
		memcpy(r->buf + f->off, s, n);
	}
}

static inline void rec_begin(struct rec *r, const struct evdesc *d, int32_t pid)
{
	memset(r->buf, 0, (size_t)d->size);
	r->len = (size_t)d->size;
	rec_u(r, &d->type, (uint64_t)d->id);
	rec_u(r, &d->pid, (uint64_t)(uint32_t)pid);
}

static void fld_of(struct tep_format_field *tf, struct fld *f)
{
	f->off = tf ? tf->offset : -1;
	f->size = tf ? tf->size : 0;
	f->dyn = tf && (tf->flags & TEP_FIELD_IS_DYNAMIC);
	if (tf && !f->dyn && f->size > 8 && !(tf->flags & TEP_FIELD_IS_STRING))
		f->off = -1; /* arrays other than strings: not set by the generator */
}

static int filter_dirs(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/*
 * Add every format under @dir to the .dat writer and to @tep: systems and events in
 * alphabetical order, so the file does not depend on the order of the directory.
 */
int load_formats(const char *dir, struct tep_handle *tep, struct vms_dat_writer *w)
{
	struct dirent **sys = NULL;
	int nsys, ret = 0;

	nsys = scandir(dir, &sys, filter_dirs, alphasort);
	if (nsys < 0) {
		fprintf(stderr, "gentrace: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < nsys && !ret; i++) {
		struct dirent **evs = NULL;
		char path[PATH_MAX];
		int nev;

		snprintf(path, sizeof(path), "%s/%s", dir, sys[i]->d_name);
		nev = scandir(path, &evs, filter_dirs, alphasort);
		if (nev < 0)
			continue; /* header_page, header_event, README.md: plain files */
		for (int j = 0; j < nev; j++) {
			size_t len;
			char *text;

			snprintf(path, sizeof(path), "%s/%s/%s/format", dir, sys[i]->d_name,
				 evs[j]->d_name);
			text = tools_read_file(path, &len);
			if (!text)
				continue;
			if (tep_parse_event(tep, text, len, sys[i]->d_name)) {
				fprintf(stderr, "gentrace: %s does not parse\n", path);
				ret = -1;
			} else if (vms_dat_writer_add_format(w, sys[i]->d_name, text, len)) {
				ret = -1;
			}
			free(text);
			free(evs[j]);
		}
		free(evs);
	}
	for (int i = 0; i < nsys; i++)
		free(sys[i]);
	free(sys);
	return ret;
}

int describe_events(struct tep_handle *tep, struct evdesc *desc)
{
	for (int e = 0; e < EV_N; e++) {
		struct tep_event *ev = tep_find_event_by_name(tep, ev_spec[e].sys, ev_spec[e].name);
		struct tep_format_field *tf;
		int size = 0;

		if (!ev) {
			fprintf(stderr, "gentrace: no format for %s:%s\n", ev_spec[e].sys,
				ev_spec[e].name);
			return -1;
		}
		desc[e].id = ev->id;
		for (tf = ev->format.common_fields; tf; tf = tf->next)
			size = tf->offset + tf->size > size ? tf->offset + tf->size : size;
		for (tf = ev->format.fields; tf; tf = tf->next)
			size = tf->offset + tf->size > size ? tf->offset + tf->size : size;
		if (size > REC_MAX / 2) {
			fprintf(stderr, "gentrace: %s is too large\n", ev_spec[e].name);
			return -1;
		}
		desc[e].size = size;
		fld_of(tep_find_common_field(ev, "common_type"), &desc[e].type);
		fld_of(tep_find_common_field(ev, "common_pid"), &desc[e].pid);
		for (int i = 0; i < MAX_FIELDS; i++)
			fld_of(ev_spec[e].fields[i] ? tep_find_field(ev, ev_spec[e].fields[i])
						    : NULL,
			       &desc[e].f[i]);
	}
	return 0;
}

/* ---- pages, lost windows ---- */

int emit_page(void *ctx, const void *page, size_t size)
{
	struct cpu *c = ctx;

	(void)size;
	return vms_dat_writer_add_page(c->sim->w, (uint32_t)(c - c->sim->cpu), page);
}

static void end_window(struct sim *s, struct cpu *c)
{
	struct lost_window *w;
	int ret;

	c->dropping = false;
	ret = vms_page_writer_lost(c->pw, c->cur_win.events);
	if (ret < 0 && !s->err)
		s->err = ret;
	w = realloc(s->wins, (s->nwins + 1) * sizeof(*w));
	if (!w) {
		s->err = -ENOMEM;
		return;
	}
	s->wins = w;
	s->wins[s->nwins++] = c->cur_win;
	c->lost_total += c->cur_win.events;
}

/*
 * Write the record in s->rec as event @ev on @cpu at @ts, or drop it inside a lost window.
 * Returns whether it was written (the truth counts only those).
 */
static bool emit(struct sim *s, int cpu, uint64_t ts, enum ev ev)
{
	struct cpu *c = &s->cpu[cpu];
	int ret;

	s->generated++;
	c->generated++;
	if (!c->dropping && c->iwin < c->nwin && c->generated >= c->win_at[c->iwin]) {
		/* An overrun: the pages up to here survive, the next page's worth does not. */
		ret = vms_page_writer_flush(c->pw);
		if (ret < 0 && !s->err)
			s->err = ret;
		c->iwin++;
		c->dropping = true;
		c->drop_bytes = 0;
		c->cur_win = (struct lost_window){ cpu, 0, ts, ts };
	}
	if (c->dropping) {
		c->cur_win.events++;
		c->cur_win.to = ts;
		c->drop_bytes += vms_page_event_size(s->rec.len);
		s->dropped++;
		if (c->drop_bytes >= 4096 - VMS_PAGE_HEADER_SIZE)
			end_window(s, c);
		return false;
	}
	ret = vms_page_writer_add(c->pw, ts, s->rec.buf, s->rec.len);
	if (ret < 0 && !s->err)
		s->err = ret;
	if (!c->written)
		c->first_ts = ts;
	c->last_ts = ts;
	c->written++;
	s->events[ev]++;
	return true;
}

void emit_flush(struct sim *s)
{
	for (unsigned c = 0; c < s->o->cpus && !s->err; c++) {
		struct cpu *cp = &s->cpu[c];
		int ret;

		if (cp->dropping)
			end_window(s, cp);
		ret = vms_page_writer_flush(cp->pw);
		if (ret < 0)
			s->err = ret;
	}
}

/* ---- sched events ---- */

static inline int32_t cur_pid(struct sim *s, int cpu)
{
	int cur = s->cpu[cpu].cur;

	return cur == IDLE ? 0 : s->th[cur].tid;
}

static const char *comm_of(struct sim *s, int t, int cpu, char *buf)
{
	if (t != IDLE)
		return s->th[t].comm;
	snprintf(buf, 16, "swapper/%d", cpu);
	return buf;
}

bool ev_switch(struct sim *s, int cpu, uint64_t ts, int prev, uint64_t prev_state, int next)
{
	const struct evdesc *d = &s->ev[EV_SWITCH];
	char b1[16], b2[16];

	rec_begin(&s->rec, d, prev == IDLE ? 0 : s->th[prev].tid);
	rec_str(&s->rec, &d->f[0], comm_of(s, prev, cpu, b1));
	rec_u(&s->rec, &d->f[1], prev == IDLE ? 0 : (uint64_t)s->th[prev].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], prev_state);
	rec_str(&s->rec, &d->f[4], comm_of(s, next, cpu, b2));
	rec_u(&s->rec, &d->f[5], next == IDLE ? 0 : (uint64_t)s->th[next].tid);
	rec_u(&s->rec, &d->f[6], 120);
	return emit(s, cpu, ts, EV_SWITCH);
}

bool ev_wake(struct sim *s, enum ev ev, int cpu, uint64_t ts, int t, int target)
{
	const struct evdesc *d = &s->ev[ev];

	rec_begin(&s->rec, d, cur_pid(s, cpu));
	rec_str(&s->rec, &d->f[0], s->th[t].comm);
	rec_u(&s->rec, &d->f[1], (uint64_t)s->th[t].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], (uint64_t)target);
	return emit(s, cpu, ts, ev);
}

void ev_migrate(struct sim *s, int cpu, uint64_t ts, int t, int from, int to)
{
	const struct evdesc *d = &s->ev[EV_MIGRATE];

	rec_begin(&s->rec, d, cur_pid(s, cpu));
	rec_str(&s->rec, &d->f[0], s->th[t].comm);
	rec_u(&s->rec, &d->f[1], (uint64_t)s->th[t].tid);
	rec_u(&s->rec, &d->f[2], 120);
	rec_u(&s->rec, &d->f[3], (uint64_t)from);
	rec_u(&s->rec, &d->f[4], (uint64_t)to);
	emit(s, cpu, ts, EV_MIGRATE);
}

/* ---- kvm events ---- */

bool ev_kvm_exit(struct sim *s, const struct thread *th, uint64_t ts, const struct reason *r)
{
	const struct evdesc *d = &s->ev[EV_EXIT];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], r->code);
	rec_u(&s->rec, &d->f[1], th->rip);
	rec_u(&s->rec, &d->f[2], s->isa);
	rec_u(&s->rec, &d->f[5], r->cat == C_EXTINT ? 0x800000ec : 0);
	rec_u(&s->rec, &d->f[7], (uint64_t)th->vid);
	return emit(s, th->cpu, ts, EV_EXIT);
}

bool ev_kvm_entry(struct sim *s, const struct thread *th, uint64_t ts)
{
	const struct evdesc *d = &s->ev[EV_ENTRY];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], (uint64_t)th->vid);
	rec_u(&s->rec, &d->f[1], th->rip + 2);
	return emit(s, th->cpu, ts, EV_ENTRY);
}

bool ev_kvm_pio(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t rw,
		const struct pio_port *p, uint64_t val)
{
	const struct evdesc *d = &s->ev[EV_PIO];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], rw);
	rec_u(&s->rec, &d->f[1], p->port);
	rec_u(&s->rec, &d->f[2], p->size);
	rec_u(&s->rec, &d->f[3], 1);
	rec_u(&s->rec, &d->f[4], val);
	return emit(s, cpu, ts, EV_PIO);
}

bool ev_kvm_mmio(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t type,
		 const struct mmio_dev *dev, uint64_t val)
{
	const struct evdesc *d = &s->ev[EV_MMIO];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], type);
	rec_u(&s->rec, &d->f[1], dev->len);
	rec_u(&s->rec, &d->f[2], dev->gpa);
	rec_u(&s->rec, &d->f[3], val);
	return emit(s, cpu, ts, EV_MMIO);
}

bool ev_kvm_msr(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t write,
		uint32_t index, uint64_t data)
{
	const struct evdesc *d = &s->ev[EV_MSR];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], write);
	rec_u(&s->rec, &d->f[1], index);
	rec_u(&s->rec, &d->f[2], data);
	return emit(s, cpu, ts, EV_MSR);
}

bool ev_kvm_page_fault(struct sim *s, int cpu, uint64_t ts, const struct thread *th,
		       uint64_t address, uint64_t error_code)
{
	const struct evdesc *d = &s->ev[EV_PF];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], (uint64_t)th->vid);
	rec_u(&s->rec, &d->f[1], th->rip);
	rec_u(&s->rec, &d->f[2], address);
	rec_u(&s->rec, &d->f[3], error_code);
	return emit(s, cpu, ts, EV_PF);
}

bool ev_kvm_userspace_exit(struct sim *s, int cpu, uint64_t ts, const struct thread *th,
			   uint32_t reason)
{
	const struct evdesc *d = &s->ev[EV_USER_EXIT];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], reason);
	return emit(s, cpu, ts, EV_USER_EXIT);
}

bool ev_kvm_inj_virq(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t vector)
{
	const struct evdesc *d = &s->ev[EV_INJ_VIRQ];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], vector);
	return emit(s, cpu, ts, EV_INJ_VIRQ);
}

bool ev_kvm_vcpu_wakeup(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint64_t ns,
			uint32_t waited)
{
	const struct evdesc *d = &s->ev[EV_VCPU_WAKEUP];

	rec_begin(&s->rec, d, th->tid);
	rec_u(&s->rec, &d->f[0], ns);
	rec_u(&s->rec, &d->f[1], waited);
	rec_u(&s->rec, &d->f[2], 1);
	return emit(s, cpu, ts, EV_VCPU_WAKEUP);
}

/* ---- file options ---- */

/* Options of the file that the trace cannot tell: GUEST per VM, vmscope's meta, stats. */
int write_file_info(struct sim *s)
{
	struct opts *o = s->o;
	char *cmdlines = NULL, buf[512];
	size_t len = 0;
	FILE *m = open_memstream(&cmdlines, &len);
	int ret = 0;

	if (!m)
		return -ENOMEM;
	for (unsigned v = 0; v < o->vms; v++) {
		int32_t *tids = calloc(o->vcpus, sizeof(*tids));
		char name[32];

		if (!tids) {
			fclose(m);
			free(cmdlines);
			return -ENOMEM;
		}
		fprintf(m, "%d qemu-system-x86\n", s->th[v * o->vcpus].pid);
		for (unsigned i = 0; i < o->vcpus; i++) {
			tids[i] = s->th[v * o->vcpus + i].tid;
			fprintf(m, "%d %s\n", tids[i], s->th[v * o->vcpus + i].comm);
		}
		snprintf(name, sizeof(name), "vm%u", v);
		if (!ret)
			ret = vms_dat_writer_add_guest(s->w, name, 0x1000 + v, o->vcpus, tids);
		free(tids);
	}
	for (unsigned c = 0; c < o->cpus; c++)
		fprintf(m, "%d %s\n", s->th[s->cpu[c].kworker].tid, s->th[s->cpu[c].kworker].comm);
	if (fclose(m)) {
		free(cmdlines);
		return -ENOMEM;
	}
	if (!ret)
		ret = vms_dat_writer_set_cmdlines(s->w, cmdlines);
	free(cmdlines);
	snprintf(buf, sizeof(buf), "vendor=%s\nkvm=%s\ngenerator=gentrace\nseed=%" PRIu64 "\n",
		 o->svm ? "AuthenticAMD" : "GenuineIntel", o->svm ? "svm" : "vmx", o->seed);
	if (!ret)
		ret = vms_dat_writer_set_meta(s->w, buf);
	for (unsigned c = 0; c < o->cpus && !ret; c++) {
		struct cpu *cp = &s->cpu[c];

		snprintf(buf, sizeof(buf),
			 "CPU: %u\nentries: 0\noverrun: %" PRIu64 "\ncommit overrun: 0\n"
			 "bytes: 0\noldest event ts: %" PRIu64 ".%06" PRIu64 "\n"
			 "now ts: %" PRIu64 ".%06" PRIu64 "\ndropped events: 0\n"
			 "read events: %" PRIu64 "\n",
			 c, cp->lost_total, cp->first_ts / 1000000000,
			 cp->first_ts / 1000 % 1000000, cp->last_ts / 1000000000,
			 cp->last_ts / 1000 % 1000000, cp->written);
		ret = vms_dat_writer_add_cpustat(s->w, c, buf);
	}
	return ret;
}
