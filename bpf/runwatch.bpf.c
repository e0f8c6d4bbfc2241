/* runwatch.bpf.c - which watched processes had a thread put on a CPU, and
 * what each of their threads is doing.
 *
 * Runs in the kernel at every context switch of the host (the sched_switch
 * tracepoint, BTF-typed).  For the process whose thread comes onto the CPU,
 * if user space watches it (its tgid is in `slots`), it adds one to that
 * slot's switch count; and it notes per CPU which watched slot is on it
 * now (slot + 1; 0: none).  The thread that leaves the CPU adds one to its
 * own process's count too, looked up by its own tgid.  User space reads
 * both from the mapped .bss, with no system call (src/proc/runwatch.c).
 * The non-watched path is two bit tests and loads: it runs for every
 * process on the host.
 *
 * Not every switch onto a CPU reaches the program: on Linux 6.18 (a PVM
 * guest) about 1 in 3000 of a thread's switches in had no event, while
 * every switch out did (a thread napping 0.2 ms in a loop, counted by the
 * program and by /proc's context switches).  So the way out is not found
 * from the way in, and a thread on a CPU with no mark there still has its
 * word (below) from before, 'R': user space asks that too (runwatch.h).
 *
 * Each thread of a watched process also has its state noted (threads[],
 * runwatch_abi.h) at each of its scheduler events: switched onto a CPU or
 * woken (sched_wakeup, sched_wakeup_new), 'R'; switched off, its state as
 * it left (still 'R' when preempted).  That is what /proc/PID/task/TID/stat
 * would say, read with a memory load instead of an open and a read.
 *
 * Built with clang -target bpf; the skeleton (bpftool gen skeleton) embeds
 * the object in pyspyc.  The kernel's own structs are known only by the
 * fields named here (CO-RE relocations against the running kernel's BTF).
 */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "runwatch_abi.h"

struct task_struct {
	int pid;
	int tgid;
	unsigned int __state;
} __attribute__((preserve_access_index));

/* Before Linux 5.14 the field was `state`. */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

/* The kernel's task states (include/linux/sched.h), as far as /proc's
 * letters go. */
#define K_INTERRUPTIBLE 0x1
#define K_UNINTERRUPTIBLE 0x2
#define K_STOPPED 0x4
#define K_TRACED 0x8
#define K_EXIT_DEAD 0x10
#define K_EXIT_ZOMBIE 0x20
#define K_DEAD 0x80

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RW_MAX_SLOTS);
	__type(key, __u32);   /* tgid, in the initial PID namespace */
	__type(value, __u32); /* slot */
} slots SEC(".maps");

__u64 switches[RW_MAX_SLOTS];
__u32 on_cpu[RW_MAX_CPUS];
/* A filter in front of the lookup, set by user space: bit (tgid mod
 * RW_FILTER_BITS) is set when some watched process has that remainder.
 * Most switches on a host are of processes not watched: they stop here. */
__u64 filter[RW_FILTER_BITS / 64];
__u64 threads[RW_MAX_THREADS];
__u32 slot_gen[RW_MAX_SLOTS];
/* Moves at every event of any watched process, after what the event
 * changed: user space that reads it first and finds it where it was at its
 * last look knows that no process's count, CPU mark or thread word changed
 * since, without looking at each.  A plain add, not an atomic one: two
 * CPUs adding at once may count one, but it still moves. */
__u64 stir;
/* The same per process: set to 1 at every event of the process in the
 * slot, before stir moves; user space takes it back to 0 when it looks
 * (runwatch_take_moved).  A byte each, stored whole: two CPUs marking
 * two processes at once cannot undo each other's mark, as they could
 * with bits of one word. */
__u8 moved[RW_MAX_SLOTS];

/* The slot of process tgid + 1, or 0 when it is not watched. */
static __always_inline __u32 watched(__u32 tgid)
{
	__u32 bit = tgid % RW_FILTER_BITS;
	__u32 *slot, v;

	if (!(filter[bit / 64] & (1ULL << (bit % 64))))
		return 0;
	slot = bpf_map_lookup_elem(&slots, &tgid);
	if (!slot)
		return 0;
	v = *slot;
	return v < RW_MAX_SLOTS ? v + 1 : 0;
}

/* One store: a reader never sees one thread's tid with another's state.
 * slot: its process's, < RW_MAX_SLOTS. */
static __always_inline void note(__u32 tid, __u32 slot, __u64 letter)
{
	__u64 gen = slot < RW_MAX_SLOTS ? slot_gen[slot] & RW_GEN_MASK : 0;

	threads[tid % RW_MAX_THREADS] = (__u64)tid << 32 | gen << 8 | letter;
}

/* /proc's letter for a thread switched off its CPU in state st. */
static __always_inline __u64 letter_of(unsigned long st)
{
	if (!st)
		return 'R';
	if (st & (K_DEAD | K_EXIT_DEAD | K_EXIT_ZOMBIE))
		return 'X';
	if (st & K_TRACED)
		return 't';
	if (st & K_STOPPED)
		return 'T';
	if (st & K_UNINTERRUPTIBLE)
		return 'D';
	return 'S';
}

static __always_inline unsigned long state_of(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return (unsigned long)BPF_CORE_READ((struct task_struct___old *)t, state);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rw_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tgid = (__u32)next->tgid;
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 v, was;
	int stirred = 0;

	if (cpu >= RW_MAX_CPUS)
		return 0; /* user space does not watch on such a machine */
	/* prev leaves the CPU: its process is counted too, so that a thread
	 * that ran from before the last look until now, switched out at last
	 * (by pyspyc's own thread, say), moves it.  A thread preempted is
	 * still runnable ('R'), as /proc has it -- unless it was on its way
	 * into a stop (SIGSTOP, a ptrace trap: the state is set before the
	 * switch it asks for): /proc says T or t then, and the thread runs
	 * again only to finish entering the stop, switched in (noted 'R')
	 * and out again as it says.  Any other state of a preempted thread
	 * is left 'R': a switch in that the program misses (above) must not
	 * leave a running thread asleep in its word. */
	was = on_cpu[cpu];
	v = watched((__u32)prev->tgid);
	if (v && v <= RW_MAX_SLOTS) {
		unsigned long st = state_of(prev);

		stirred = 1;
		__sync_fetch_and_add(&switches[v - 1], 1);
		note((__u32)prev->pid, v - 1,
		     !preempt || (st & (K_STOPPED | K_TRACED)) ? letter_of(st) : 'R');
		moved[v - 1] = 1;
	}
	v = watched(tgid);
	if (v && v <= RW_MAX_SLOTS) {
		stirred = 1;
		__sync_fetch_and_add(&switches[v - 1], 1);
		note((__u32)next->pid, v - 1, 'R');
		moved[v - 1] = 1;
	} else {
		v = 0;
	}
	/* Written only when it changes: the cache line stays clean while
	 * the host runs processes nobody watches. */
	if (was != v) {
		on_cpu[cpu] = v;
		/* The process marked on this CPU until now left it (when prev
		 * was not its thread: a switch the program did not see). */
		if (was && was <= RW_MAX_SLOTS)
			moved[was - 1] = 1;
	}
	if (stirred || was != v)
		stir++;
	return 0;
}

/* A thread woken (or new) is runnable: 'R' until it is switched off. */
static __always_inline void woken(struct task_struct *p)
{
	__u32 v = watched((__u32)p->tgid);

	if (v && v <= RW_MAX_SLOTS) {
		note((__u32)p->pid, v - 1, 'R');
		moved[v - 1] = 1;
		stir++;
	}
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rw_wakeup, struct task_struct *p)
{
	woken(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rw_wakeup_new, struct task_struct *p)
{
	woken(p);
	return 0;
}

/* Tracing programs must be GPL-compatible to be loaded. */
char LICENSE[] SEC("license") = "GPL";
