/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gentrace's private declarations, shared by its files: the options (gentrace.c), the
 * scenario tables (gentrace-scenario.c), the state of the simulated host
 * (gentrace-sim.c), the encoding of its events into .dat records (gentrace-events.c) and
 * the truth that it keeps (gentrace-truth.c). Nothing here is part of libvmscope.
 */
#ifndef VMS_GENTRACE_H
#define VMS_GENTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tep_handle;
struct vms_dat_writer;
struct vms_page_writer;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_STEPS 8
#define IDLE (-1) /* no thread: the CPU runs its idle task (swapper) */

/* ---- options (gentrace.c) ---- */

struct opts {
	const char *formats;
	const char *output;
	const char *truth;
	const char *compression;
	bool svm;
	unsigned vms, vcpus, cpus;
	uint64_t exits, events_total, seed;
	unsigned lost;
	int dat_version;
	int level;
	bool percentiles;
	bool quiet;
};

/* ---- random numbers: xoshiro256** seeded by splitmix64 (gentrace-sim.c) ---- */

struct rng {
	uint64_t s[4];
};

/* ---- event formats and records (gentrace-events.c) ---- */

enum ev {
	EV_EXIT,
	EV_ENTRY,
	EV_PIO,
	EV_MMIO,
	EV_MSR,
	EV_USER_EXIT,
	EV_PF,
	EV_VCPU_WAKEUP,
	EV_INJ_VIRQ,
	EV_SWITCH,
	EV_WAKING,
	EV_WAKEUP,
	EV_MIGRATE,
	EV_N
};

#define MAX_FIELDS 9

struct fld {
	int off, size; /* off -1: the kernel's format has no such field */
	bool dyn;      /* __data_loc string */
};

struct evdesc {
	int id;
	int size; /* fixed part of the record */
	struct fld type, pid;
	struct fld f[MAX_FIELDS];
};

#define REC_MAX 256

struct rec {
	uint8_t buf[REC_MAX];
	size_t len;
};

/* ---- the scenario: exit reasons, devices (gentrace-scenario.c) ---- */

enum cat { C_EXTINT, C_HLT, C_PF, C_MMIO, C_NPF, C_IO, C_MSR_R, C_MSR_W, C_MSR, C_PLAIN, C_TIMER };

struct reason {
	uint32_t code;
	const char *name;
	enum cat cat;
	unsigned weight;
	uint32_t lo, hi; /* latency bounds, ns (log-uniform) */
};

#define NR_VMX_REASONS 10
#define NR_SVM_REASONS 7
#define REASON_EXTINT 0 /* index of the interrupt exit in both tables */
#define REASON_HLT 1	/* index of HLT in both tables */
#define MAX_REASONS 10
#define MAX_INJ_VECTORS 8

/*
 * The tables are defined in gentrace-scenario.c, which checks their sizes against the
 * NR_ constants: elsewhere they are incomplete types, so ARRAY_SIZE() does not apply.
 */
extern const struct reason vmx_reasons[];
extern const struct reason svm_reasons[];

struct mmio_dev {
	uint64_t gpa;
	bool user; /* emulated by the VMM: the exit goes to user space */
	uint32_t len;
};

#define NR_MMIO_DEVS 5
extern const struct mmio_dev mmio_devs[];

struct pio_port {
	uint16_t port;
	bool user;
	uint8_t size;
};

#define NR_PIO_PORTS 8
extern const struct pio_port pio_ports[];

#define NR_MSRS 7
#define MSR_FIRST_READ 4 /* msr_idx[]: the written ones, then the read ones */
extern const uint32_t msr_idx[];

#define KVM_EXIT_IO 2
#define KVM_EXIT_MMIO 6
#define MMIO_UNSATISFIED_READ 0
#define MMIO_READ 1
#define MMIO_WRITE 2

/* ---- the simulation (gentrace-sim.c) ---- */

enum tstate { T_GUEST, T_HYP, T_RUNNABLE, T_BLOCKED, T_DONE, T_HOST_RUN, T_HOST_SLEEP };
enum resume { R_ENTRY, R_WOKEN, R_HOST };
enum stepkind { S_IRQ, S_PIO, S_MMIO, S_MSR, S_PF, S_USER_EXIT, S_INJ, S_VWAKE, S_BLOCK, S_ENTRY };

struct step {
	uint64_t at;
	uint8_t kind;
	uint32_t a, b;
	uint64_t c, d;
};

/* Exit latency statistics of one (thread, reason). */
struct xstat {
	uint64_t count, total, min, max, unfinished;
	uint64_t before; /* exits before the thread's first written kvm_entry: not timed */
	uint64_t *samples;
	size_t ns, cap;
};

/*
 * The vCPU state model (gentrace-truth.c): the state of a vCPU thread, as its written
 * events tell it. The first three run on a CPU.
 */
enum vstate { VS_GUEST, VS_HYP, VS_VMM, VS_PREEMPTED, VS_WAITING, VS_IDLE, VS_BLOCKED, VS_N };

/* The truth of the state model for one vCPU thread. */
struct vtruth {
	bool seen;     /* an event of the thread was written: it counts from first_ts on */
	bool out_vmm;  /* switched out in vmm: it comes back in vmm */
	uint8_t state; /* enum vstate, since @since */
	int last_exit; /* reason index of its last written kvm_exit, or -1 */
	int cpu;       /* CPU of its current or last on-CPU period, or -1 */
	int preempter; /* slot in @by of the task that preempted it last */
	uint64_t first_ts, since, wake_ts, preempt_ts;
	bool preempt_closed; /* the open preemption was counted at the end */
	uint64_t ns[VS_N];
	uint64_t migrations, preemptions;
	uint64_t *run_ns;     /* [cpus]: time on each CPU (guest, hypervisor, vmm) */
	uint64_t (*by)[2];    /* [nth + cpus]: preemptions and their ns per preempting task: the
			       * threads, then the idle task of each CPU */
	struct xstat wake;    /* wakeup latencies (min unused) */
	struct xstat preempt; /* preemption lengths: switch-out runnable to switch-in (or the
			       * end) */
};

struct thread {
	bool vcpu; /* else a kworker */
	int32_t pid, tid;
	char comm[16];
	int vm, vid; /* VM index and vCPU id */
	int cpu;     /* where it runs or last ran */
	enum tstate state;
	enum resume resume;
	uint64_t switched_in;
	int rq_next;
	int irq_next;
	bool irq_queued;
	/* the exit being handled */
	int reason;
	bool forced, final;
	uint64_t exit_ts, block_ts, rip;
	struct step steps[MAX_STEPS];
	int nsteps, istep;
	uint64_t nexits;
	/* heap action */
	uint64_t act_time;
	uint32_t act_seq;
	/* truth */
	int pending; /* reason of the written kvm_exit still waiting for its entry, or -1 */
	uint64_t pending_ts;
	uint64_t orphans; /* written kvm_entry without a written kvm_exit before */
	bool known;	  /* a written kvm_entry named the thread (perf starts timing then) */
	struct xstat xs[MAX_REASONS];
	uint32_t mmio[3][NR_MMIO_DEVS];
	uint32_t pio[NR_PIO_PORTS][2];
	uint32_t msr[NR_MSRS][2];
	uint32_t uexit[2]; /* KVM_EXIT_IO, KVM_EXIT_MMIO */
	struct vtruth vt;  /* vCPUs only */
	/* written kvm_inj_virq events, per vector (the scenario injects a few vectors) */
	uint32_t inj_vector[MAX_INJ_VECTORS];
	uint64_t inj_count[MAX_INJ_VECTORS];
	int ninj;
};

/* A written kvm_inj_virq: where in the clock's seconds it lies, for heatmap truths. */
struct injection {
	uint64_t ts;
	uint32_t vector;
};

struct lost_window {
	int cpu;
	uint64_t events, from, to;
};

struct cpu {
	int cur; /* thread index, or IDLE */
	int rq_head, rq_tail;
	bool need_resched;
	int irq_head, irq_tail;
	int kworker;
	struct vms_page_writer *pw;
	struct sim *sim;
	uint64_t generated, written; /* events, dropped included or not */
	/* lost windows */
	uint64_t *win_at; /* generated-event index where each window starts */
	unsigned nwin, iwin;
	bool dropping;
	struct lost_window cur_win;
	size_t drop_bytes;
	uint64_t lost_total;
	uint64_t first_ts, last_ts;
	/* heap entities: the kworker timer and the idle-CPU reschedule */
	uint64_t timer_time, resched_time;
	uint32_t timer_seq, resched_seq;
	bool resched_armed;
	/* the state truth: who runs here, by the written sched_switch events */
	int run;	    /* thread index, or IDLE */
	uint64_t run_since; /* 0: since the trace's first record */
	uint64_t idle_ns, other_ns;
	uint64_t (*vcpu_ns)[3]; /* [nvcpus]: guest, hypervisor, vmm */
};

struct hent {
	uint64_t time;
	uint32_t seq;
	uint32_t ent;
};

struct sim {
	struct opts *o;
	struct rng rng;
	const struct reason *reasons;
	unsigned nreasons, weight_sum;
	uint32_t isa;
	struct evdesc ev[EV_N];
	struct vms_dat_writer *w;
	struct thread *th;
	unsigned nth, nvcpus;
	struct cpu *cpu;
	struct hent *heap;
	size_t nheap, capheap;
	uint64_t generated, dropped;
	uint64_t events[EV_N];
	unsigned done;
	bool draining, finished;
	uint64_t end_ts; /* the trace ends here, once every vCPU is done */
	int err;
	struct lost_window *wins;
	size_t nwins;
	struct injection *injs; /* every written injection, unless --no-percentiles */
	size_t ninjs, capinjs;
	struct rec rec;
};

/*
 * Set up @s (zeroed, with its .dat writer s->w open and s->ev described) for the
 * options @o, which must outlive it. 0 or -ENOMEM.
 */
int sim_init(struct sim *s, struct opts *o);

/* Run the simulation to its end and flush every CPU's last page. 0 or a negative errno. */
int sim_run(struct sim *s);

/* Free @s and what it holds; its .dat writer, if still open, is discarded. NULL: no-op. */
void sim_free(struct sim *s);

/* ---- writing events (gentrace-events.c) ---- */

/*
 * Add every format under @dir to the .dat writer @w and to @tep. 0 or -1 (after a
 * message on stderr).
 */
int load_formats(const char *dir, struct tep_handle *tep, struct vms_dat_writer *w);

/* Fill @desc[EV_N] with the ids and field offsets of the events in @tep. 0 or -1. */
int describe_events(struct tep_handle *tep, struct evdesc *desc);

/* The kernel's name of event @e (enum ev). */
const char *ev_name(int e);

/* The page writer's callback: a finished page of CPU @ctx (a struct cpu) to the .dat. */
int emit_page(void *ctx, const void *page, size_t size);

/* Close the lost window still open on each CPU and flush its last page; errors in s->err. */
void emit_flush(struct sim *s);

/*
 * Each ev_*() writes one event on @cpu (or on @th->cpu) at @ts, or drops it inside a lost
 * window. Those that return a bool say whether it was written: the truth counts only those.
 */
bool ev_switch(struct sim *s, int cpu, uint64_t ts, int prev, uint64_t prev_state, int next);
bool ev_wake(struct sim *s, enum ev ev, int cpu, uint64_t ts, int t, int target);
void ev_migrate(struct sim *s, int cpu, uint64_t ts, int t, int from, int to);
bool ev_kvm_exit(struct sim *s, const struct thread *th, uint64_t ts, const struct reason *r);
bool ev_kvm_entry(struct sim *s, const struct thread *th, uint64_t ts);
bool ev_kvm_pio(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t rw,
		const struct pio_port *p, uint64_t val);
bool ev_kvm_mmio(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t type,
		 const struct mmio_dev *dev, uint64_t val);
bool ev_kvm_msr(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t write,
		uint32_t index, uint64_t data);
bool ev_kvm_page_fault(struct sim *s, int cpu, uint64_t ts, const struct thread *th,
		       uint64_t address, uint64_t error_code);
bool ev_kvm_userspace_exit(struct sim *s, int cpu, uint64_t ts, const struct thread *th,
			   uint32_t reason);
bool ev_kvm_inj_virq(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint32_t vector);
bool ev_kvm_vcpu_wakeup(struct sim *s, int cpu, uint64_t ts, const struct thread *th, uint64_t ns,
			uint32_t waited);

/*
 * Options of the file that the trace cannot tell (GUEST per VM, cmdlines, vmscope's meta,
 * per-CPU stats), once the simulation is over. 0 or a negative errno.
 */
int write_file_info(struct sim *s);

/* ---- the truth (gentrace-truth.c) ---- */

/*
 * Set up the state truth of @s, once sim_init() has placed the threads on the CPUs (no
 * random draw). 0 or -ENOMEM.
 */
int truth_init(struct sim *s);

/* Free what truth_init() allocated. */
void truth_free(struct sim *s);

/* A kvm_exit of @th for reason index @reason was written at @ts. */
void truth_exit(struct sim *s, struct thread *th, uint64_t ts, int reason);

/* A kvm_entry of @th was written at @ts. */
void truth_entry(struct sim *s, struct thread *th, uint64_t ts);

/* A kvm_userspace_exit of @th was written at @ts. */
void truth_userspace_exit(struct sim *s, struct thread *th, uint64_t ts);

/* A sched_switch from @prev to @next (threads or IDLE) was written on @cpu at @ts. */
void truth_switch(struct sim *s, int cpu, uint64_t ts, int prev, uint64_t prev_state, int next);

/* A sched_wakeup of thread @t was written at @ts. */
void truth_wakeup(struct sim *s, int t, uint64_t ts);

/* A kvm_inj_virq of @th with @vector was written at @ts. */
void truth_injection(struct sim *s, struct thread *th, uint64_t ts, uint32_t vector);

/* The truth of the finished simulation @s as JSON in @path. 0 or a negative errno. */
int write_truth(struct sim *s, const char *path);

#endif /* VMS_GENTRACE_H */
