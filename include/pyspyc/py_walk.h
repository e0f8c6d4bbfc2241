/* py_walk.h - read every thread's Python stack out of the target.
 *
 * The walker turns the target's thread states and frames into raw stacks:
 * per thread, the (code object address, instruction address) of each frame,
 * innermost first.  It does no symbolization; that is py_code.h's job.
 *
 * Cost is the point of this module.  In the steady state a sample of N
 * threads is ONE process_vm_readv call, whatever N is (one per RMEM_MAX_IOV
 * ranges, past that: the kernel takes no more in one call).  It reads, by what
 * the previous sample saw: the interpreter list (its head, and each
 * interpreter's next pointer and thread-list head), every thread state, every
 * thread's current frame pointer, the live part of every thread's newest
 * frame data-stack chunk, and the caller's extra reads (py_code's windows
 * onto the code objects the last sample used).  The fresh thread states are
 * then checked against that plan; frames are walked locally in the copies.
 * When anything moved (a thread came or went, a chunk was pushed) the
 * sample is read the slow way: the list walked, then all chunks in one more
 * call.  Frames outside the copied chunks (generators, older chunks of deep
 * stacks) cost one more read each.
 *
 * Remote memory is hostile: thread and frame counts are capped, chains are
 * checked for cycles, and every address is bounds-checked against the copy
 * it is read from.
 *
 * A stack is whole only when it reaches the thread's real bottom: from 3.12
 * the shim frame of the outermost call into the interpreter, never (3.6 to
 * 3.11) a generator's or coroutine's frame, which has no link to its caller
 * while it is suspended.  A stack that changed under the walker (a frame
 * read between a generator's resumptions, a loop, a stale shim frame) is
 * torn: that thread is read again at once, alone, a couple of times, and
 * dropped (RAW_TORN) if it still is.  2.7's frames do not name their
 * generator: the symbolizer checks the bottom frame's code flags instead.
 */
#ifndef PYSPYC_PY_WALK_H
#define PYSPYC_PY_WALK_H

#include <stdint.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/raw.h"

/* The most --max-threads allows. */
#define PY_WALK_MAX_THREADS 1000000

struct walk_opts {
	uint32_t max_depth;    /* frames per thread before truncation */
	/* Threads read per process, 1..PY_WALK_MAX_THREADS (--max-threads).
	 * The walker's storage grows with the threads it meets, up to this;
	 * threads past it are counted in raw_sample.threads_left_out. */
	uint32_t max_threads;
	/* With sub-interpreters, the thread states of one OS thread are
	 * walked one after another (newest interpreter first) but left
	 * separate, not made one stack (the eBPF backend's thread list). */
	int unstitched;
};

struct walk_stats {
	uint64_t fast;         /* samples read in a single call */
	uint64_t torn;         /* thread stacks dropped as inconsistent */
	uint64_t rereads;      /* torn threads read again at once, alone */
	uint64_t returned;     /* stacks whose innermost frame had returned as
				* they were read: left out (RECHECK_RETURNED) */
	uint64_t slow_reads;   /* frames read one by one */
	uint64_t interps_capped; /* samples that saw more than PY_MAX_INTERPS
				  * interpreters: the rest left out */
};

struct py_walker;

int py_walker_new(struct py_walker **out, const struct py_target *t,
		  const struct walk_opts *o);
void py_walker_free(struct py_walker *w);

/* The walker's remote-memory handle (shared with the symbolizer). */
struct rmem *py_walker_mem(struct py_walker *w);

/* A check of each stack walked whole (3.11+), before the sample is
 * returned (the symbolizer knows the code objects' returns:
 * py_sym_stale_return).  RECHECK_TORN: the thread is read again at once
 * like any torn one (up to TORN_REREADS times), instead of being dropped
 * by the symbolizer later.  RECHECK_RETURNED: its innermost frame is left
 * out (walk_stats.returned), and the rest checked again. */
void py_walker_set_recheck(struct py_walker *w, recheck_fn fn, void *ctx);

/* The clock the walker times its frame object checks by (objects_verify):
 * CLOCK_MONOTONIC in nanoseconds unless set (tests set a clock of their
 * own). */
void py_walker_set_clock(struct py_walker *w, int64_t (*clock)(void));
/* The CPU time of the calling thread, in ns, by which a check that came
 * late but after as much of pyspyc's own work is not taken as preempted
 * (NULL: CLOCK_THREAD_CPUTIME_ID). */
void py_walker_set_cpu_clock(struct py_walker *w, int64_t (*clock)(void));

/* The host's word on an OS thread before it is read: host(ctx, tid,
 * thread_id) says an enum host_thread (raw.h), from the scheduler watch
 * (runwatch.h).  tid is the OS thread id the thread state holds (3.11+),
 * else 0; thread_id its thread_id (the pthread_t), which the host can
 * know the OS thread of from the last sample (thread_map_descriptor_tid).
 *  - HOST_EXITED: a thread of the last sample that has exited is not read
 *    ahead by its plan.  Its data stack was unmapped as it ended, and a
 *    read that fails loses the reads queued after it in the same call (a
 *    thread-per-request server's samples, about 2 in 3).
 *  - HOST_ASLEEP, HOST_STOPPED: an idle thread (the host asks so only
 *    when idle threads are left out) is not read at all: it comes out
 *    with RAW_IDLE and no frames.  A pool of workers waiting for work
 *    costs its thread states, not its stacks (a gthread worker's idle
 *    thread: 8 KB of C stack and 4 KB of frames a sample).  One asleep
 *    while holding the GIL (blocked in a call that kept it) is read after
 *    all, at once when it held it the sample before. */
void py_walker_set_host(struct py_walker *w, host_word_fn host,
			void *ctx);

/* Read all threads now, of every interpreter (the runtime's list, the main
 * interpreter and its sub-interpreters).  The thread states one OS thread has
 * in several interpreters (it runs a sub-interpreter from another one) make
 * one raw thread: the newest interpreter's frames on top, the main
 * interpreter's at the root.  *out points into the walker and is valid until
 * the next call.  Returns 0, -ESRCH when the target is gone, -ESTALE when
 * the main interpreter is no longer in the runtime's list (the runtime was
 * finalized, perhaps initialised anew by an embedding host: find the
 * interpreter again), or another -errno when the thread list itself could
 * not be read (an error sample).
 *
 * xl/xr are nx extra reads (at most RMEM_MAX_IOV / 2) the caller wants made
 * at the same instant, in the same call when the steady state holds: *x_ok is
 * set to 1 when they were, 0 when they were not made at all. */
int py_walker_sample(struct py_walker *w, const struct iovec *xl,
		     const struct iovec *xr, uint32_t nx, int *x_ok,
		     struct raw_sample **out, struct walk_stats *st);

/* Does a thread hold the GIL now?  One read of the GIL word alone, for the
 * sampler's asleep test (sampler.h); the last sample is left as it was.
 * Returns 1 (held), 0 (free), or -errno when it cannot tell: the GIL's
 * address is not known, or sub-interpreters may have GILs of their own. */
int py_walker_gil_held(struct py_walker *w);

#endif
