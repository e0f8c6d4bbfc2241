/* sampler.h - the per-process state of sampling, one tick at a time.
 *
 * A sampler knows one target process: its walker, symbolizer and thread
 * map, its counters, and what its last sample counted.  It has no thread
 * or clock of its own: the session's one sampling thread calls
 * sampler_tick for every live process at each deadline (session.h).
 *
 * Sleeping processes cost almost nothing.  With the session's runwatch
 * (runwatch.h: the kernel counts each process's context switches in memory
 * shared with pyspyc), a process is asleep at a tick when its switch count
 * has not moved since the last tick and none of its threads is on a CPU:
 * no system call.  Until the clock test below has once found it asleep
 * (its clock stood still between two reads: no thread was on a CPU, so
 * any that runs after is switched in), it is also put to that test every
 * RW_CHECK_NS, for a thread on a CPU since before the watch began.  Without a
 * runwatch: before a process is read at a tick, its CPU clock (clock_getcpuclockid + clock_gettime: one syscall,
 * every thread of the process together) is compared with the value read
 * at its last walked tick.  The kernel adds a running thread's time to
 * that clock at each of its scheduler ticks (CONFIG_HZ) and when the
 * thread leaves the CPU, not at the instant it is read: a thread that got
 * a CPU less than one scheduler tick ago, and is still on it, does not
 * show yet.  So an unchanged clock is trusted only together with a free
 * GIL (one small read of the GIL word): a thread that came onto a CPU and
 * is running Python holds it.  Clock unchanged and GIL free: the process
 * is "asleep" this tick; no frame of it can have changed, since frames
 * change only under the GIL and any thread that ran and stopped since is
 * on the clock.  Then, with no /proc work and no other read:
 *   - default (threads on a CPU only) and -g: it counts nothing;
 *   - -i: it counts again exactly the stacks its last walked tick counted
 *     (the same stack ids, so the same thread and process roots), when
 *     that walk read every thread whole (none torn or dropped);
 *     otherwise it is walked.
 * The clock failing (a kernel without it, a process gone) or the GIL
 * not being readable (its address unknown, sub-interpreters with GILs of
 * their own) means the process is walked, as always.  What is left out:
 * a thread that came onto a CPU within the last scheduler tick and runs C
 * code without the GIL (it counts from its next tick on), and a thread
 * without the GIL that waits for a CPU without having run.
 */
#ifndef PYSPYC_SAMPLER_H
#define PYSPYC_SAMPLER_H

#include <signal.h>
#include <stdint.h>

#include "pyspyc/py_code.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/backend.h"
#include "pyspyc/counters.h"
#include "pyspyc/runwatch.h"
#include "pyspyc/stacktab.h"

struct sampler_opts {
	int idle;                   /* count threads that are not on a CPU */
	int gil;                    /* count only the thread holding the GIL */
	int threads;                /* a root frame per thread */
	int blocking;               /* pause the Python threads per sample */
	int process_root;           /* a root frame for the process (-s) */
	const struct backend_ops *backend; /* NULL: the default (backend.h) */
	struct backend_opts walk;
	struct sym_opts sym;
	/* The session's sched_switch watch, or NULL: the asleep test reads
	 * it instead of the CPU clock and GIL (see above).  Outlives the
	 * sampler. */
	struct runwatch *rw;
};

/* Counters of one sampler (counters.h).  sampler_tick publishes them as it
 * goes (relaxed atomic stores, one field at a time), so another thread may
 * read them with sampler_stats_read while it runs. */
struct sampler_stats {
	SAMPLER_COUNTERS(COUNTER_FIELD)
};

/* Copy src into dst field by field with relaxed atomic loads. */
void sampler_stats_read(const struct sampler_stats *src, struct sampler_stats *dst);

struct sampler;

/* Set up sampling of target t (found by the caller) into tab.  May be
 * called on any thread; 0 or -errno. */
int sampler_new(struct sampler **out, const struct py_target *t,
		struct stacktab *tab, const struct sampler_opts *o);

/* Detaches nothing: call sampler_end first when sampler_begin was called. */
void sampler_free(struct sampler *s);

/* The process's pidfd (readable once it has exited), or -1 without one
 * (a kernel before 5.3).  Owned by the sampler. */
int sampler_handle(const struct sampler *s);

/* Before the first tick, on the sampling thread (--blocking traces from
 * it, and every later call on s must come from the same thread).  0 or
 * -errno. */
int sampler_begin(struct sampler *s, int64_t now, struct sampler_stats *st);

/* Sample the process once, at deadline now (CLOCK_MONOTONIC).  Returns 0
 * to go on, 1 when this process is done: it exited (a pid taken over by
 * another process is not mistaken for it), exec'd another program
 * (target_exec: the caller may attach to it anew) or started a new
 * interpreter in place of the one sampled (target_reinit: likewise). */
int sampler_tick(struct sampler *s, int64_t now, struct sampler_stats *st);

/* 1 when the last tick found the process asleep (not run since the tick
 * before) and its next ticks would find the same, with nothing to do,
 * until the watch notes an event of it (runwatch_take_moved on *slot; the
 * session's runwatch_stir moves then too) or *until (CLOCK_MONOTONIC),
 * whichever is first: the caller may skip them and tell sampler_skipped
 * how many it skipped, before the next sampler_tick or sampler_end.  0
 * without a runwatch slot, with -i (idle: each tick counts the last stacks
 * again at its own time), or when the process ran. */
int sampler_quiet(const struct sampler *s, int64_t *until, uint32_t *slot);

/* n ticks were skipped while sampler_quiet held, the last at deadline
 * last: count them as ticks at which the process was asleep, as
 * sampler_tick would have. */
void sampler_skipped(struct sampler *s, uint64_t n, int64_t last, struct sampler_stats *st);

/* missed deadlines were skipped because the sampling thread fell behind. */
void sampler_late(struct sampler *s, uint64_t missed, struct sampler_stats *st);

/* The end: publish the last counters (gone: the caller saw the process
 * exit, through its handle) and detach, on the sampling thread. */
void sampler_end(struct sampler *s, int gone, struct sampler_stats *st);

#endif
