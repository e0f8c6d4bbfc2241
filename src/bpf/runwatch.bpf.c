/* runwatch.bpf.c - which watched processes had a thread put on a CPU.
 *
 * Runs in the kernel at every context switch of the host (the sched_switch
 * tracepoint, BTF-typed).  For the process whose thread comes onto the CPU,
 * if user space watches it (its tgid is in `slots`), it adds one to that
 * slot's switch count; and it notes per CPU which watched slot is on it
 * now (slot + 1; 0: none).  The thread that leaves the CPU adds one to its
 * own process's count, read from that note.  User space reads both from the mapped .bss,
 * with no system call (src/proc/runwatch.c).  The non-watched path is a
 * bit test and a load: it runs for every process on the host.
 *
 * Built with clang -target bpf; the skeleton (bpftool gen skeleton) embeds
 * the object in pyspyc.  The kernel's own structs are known only by the
 * fields named here (CO-RE relocations against the running kernel's BTF).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "runwatch_abi.h"

struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

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

SEC("tp_btf/sched_switch")
int BPF_PROG(rw_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tgid = (__u32)next->tgid;
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 bit = tgid % RW_FILTER_BITS;
	__u32 *slot, v = 0, was;

	if (cpu >= RW_MAX_CPUS)
		return 0; /* user space does not watch on such a machine */
	/* prev leaves the CPU: when it is watched, this CPU's mark says so
	 * (it was set when prev came on), and its process is counted too,
	 * so that a thread that ran from before the last look until now,
	 * switched out at last (by pyspyc's own thread, say), moves it. */
	was = on_cpu[cpu];
	if (was && was <= RW_MAX_SLOTS)
		__sync_fetch_and_add(&switches[was - 1], 1);
	if (filter[bit / 64] & (1ULL << (bit % 64))) {
		slot = bpf_map_lookup_elem(&slots, &tgid);
		if (slot && *slot < RW_MAX_SLOTS) {
			__sync_fetch_and_add(&switches[*slot], 1);
			v = *slot + 1;
		}
	}
	/* Written only when it changes: the cache line stays clean while
	 * the host runs processes nobody watches. */
	if (was != v)
		on_cpu[cpu] = v;
	return 0;
}

/* Tracing programs must be GPL-compatible to be loaded. */
char LICENSE[] SEC("license") = "GPL";
