/* runwatch.h - did a process get a CPU since we last looked?  Told by the
 * kernel, read without a system call.
 *
 * The sampler's asleep test (sampler.h) asks, at every tick, for every
 * process, whether any of its threads ran since its last walk.  Asking the
 * kernel costs a system call per process per tick (its CPU clock), plus a
 * read of its GIL word because that clock lags a thread that got a CPU
 * less than a scheduler tick ago.  With a hundred sleeping workers that is
 * most of what a profiler that records nothing spends.
 *
 * A runwatch is one eBPF program on the sched_switch tracepoint
 * (bpf/runwatch.bpf.c).  At every context switch on the host it looks
 * up the process of the thread that comes onto the CPU; for a watched one
 * it adds one to the process's switch count, and it notes, per CPU, which
 * watched process is on it now; a thread of a watched process that leaves
 * a CPU adds one too.  Both live in memory mapped into pyspyc: a process
 * asleep since the last look is one whose count did not move (none of its
 * threads came onto a CPU or left one) and that is on no CPU (none stayed
 * on one throughout), two memory loads and a scan of a small array, with
 * no lag (a thread is counted the moment it is switched in or out).  What it cannot
 * know: a thread that has been on a CPU without a switch since before the
 * watch was attached (the sampler's occasional clock check catches it).
 *
 * It needs root (or CAP_BPF and CAP_PERFMON), a kernel with BTF and
 * BPF trampolines for tracepoints (5.5 or later), and pyspyc in the
 * initial PID namespace (the program sees those pids; runwatch_open checks
 * that the two agree by watching its own process).  Without them
 * runwatch_open fails and the sampler uses the clock and GIL test.
 * PYSPYC_RUNWATCH=0 in the environment turns it off; PYSPYC_RUNWATCH=libbpf
 * loads it through libbpf's skeleton only (otherwise the light skeleton,
 * relocated in the kernel, is tried first: see runwatch.c).
 *
 * Cost on the host: the programs run at every context switch and every
 * wakeup of every process (a bit test for a process not watched, one hash
 * lookup for one that may be), and only while a runwatch is open.
 * Measured on a 2-core VM: `taskset -c 1 perf bench sched pipe` (two
 * switches and two wakeups an operation) took 14.4-18.5 us an operation
 * without them and 14.6-18.8 us with them, run to run: within the
 * machine's own spread.
 *
 * The same events note each watched thread's state (running or runnable,
 * or how it left its CPU), so that the sampler knows which threads are
 * idle without reading /proc for each (runwatch_thread_state).
 *
 * Thread-safety: runwatch_add and runwatch_del may be called from any
 * thread; runwatch_switches, runwatch_stir, runwatch_on_cpu and
 * runwatch_thread_state from any thread, lock-free; runwatch_take_moved
 * from one thread per slot (the one that decides for that process).
 */
#ifndef PYSPYC_RUNWATCH_H
#define PYSPYC_RUNWATCH_H

#include <stdint.h>
#include <sys/types.h>

struct runwatch;

/* Load and attach the program.  0, or -errno: -ENOTSUP when it is turned
 * off or the kernel or namespace does not allow it (the caller falls back
 * quietly), another -errno from the kernel. */
int runwatch_open(struct runwatch **out);
void runwatch_close(struct runwatch *rw);

/* How the program was loaded: "light" (the light skeleton) or "libbpf". */
const char *runwatch_loader(const struct runwatch *rw);

/* Watch process pid (a pid as pyspyc sees it).  *slot is its handle; the
 * count starts where it is (read it with runwatch_switches).  -ENOSPC when
 * RW_MAX_SLOTS processes are watched already (the caller uses the clock
 * test for this one), another -errno from the kernel. */
int runwatch_add(struct runwatch *rw, pid_t pid, uint32_t *slot);
void runwatch_del(struct runwatch *rw, pid_t pid, uint32_t slot);

/* Times a thread of the process in slot was switched onto or off a CPU. */
uint64_t runwatch_switches(const struct runwatch *rw, uint32_t slot);

/* A word that moves at every event the watch notes, for any process, after
 * the event's count, CPU mark and thread word are written: read before
 * those, and found where it was at the last look, it says that none of
 * them changed since.  A memory load. */
uint64_t runwatch_stir(const struct runwatch *rw);

/* Did the watch note an event of the process in slot (a thread switched
 * onto or off a CPU, or woken; or a thread of another process put on the
 * CPU its mark was on) since the last call for this slot?  1 or 0, and the
 * mark is taken back either way: the next call answers for what happens
 * after this one.  Marked before stir moves, so a caller that read
 * runwatch_stir first and takes this after misses no event the stir
 * counted.  A slot just added may answer 1 for its last owner's events (a
 * look for nothing, never one missed).  One load, and an atomic exchange
 * when marked. */
int runwatch_take_moved(struct runwatch *rw, uint32_t slot);

/* 1 when a thread of the process in slot was the last one switched onto
 * some CPU (it is on that CPU now, or has just left it), else 0.  A switch
 * in that reached no program (runwatch.bpf.c: it happens) leaves no mark
 * and no count while that thread runs: its runwatch_thread_state, 'R'
 * since it was woken or preempted, says it may run (preempted on its way
 * into a stop, 'T' or 't': it runs then only to finish entering it). */
int runwatch_on_cpu(const struct runwatch *rw, uint32_t slot);

/* The state thread tid of the process watched in slot is in, as the
 * letter /proc/PID/task/TID/stat would give ('R' running or runnable, 'S',
 * 'D', 'T', 't', 'X' exited), from its last scheduler event; -ENOENT when
 * there is none to go by (no event since its process was added, or a
 * thread whose tid shares its place in the table had one since: ask
 * /proc).  Memory loads, no system call.  rw may be NULL (-ENOENT). */
int runwatch_thread_state(const struct runwatch *rw, uint32_t slot, pid_t tid);

/* Note letter, read from /proc, as thread tid's state, after
 * runwatch_thread_state had none for it: a thread asleep since before its
 * process was watched has no scheduler event to be noted by, and would be
 * asked of /proc (and read) at every sample.  Its next event overwrites
 * it, as any word.  Nothing is written when the program noted the thread
 * meanwhile (its word is newer) or when the place holds another thread's
 * word.  Only 'R', 'S', 'D', 'T' and 't' are noted.  rw may be NULL. */
void runwatch_seed(struct runwatch *rw, uint32_t slot, pid_t tid, int letter);

#endif
