/* py_threads.h - what the OS knows about each Python thread.
 *
 * A thread map belongs to one target process and one sampler thread (not
 * thread-safe).  It gives each Python thread its OS thread id, whether that
 * thread is on a CPU right now, and a name to show.
 *
 * OS thread ids: 3.11+ keeps native_thread_id in the thread state (the
 * walker fills it in).  Older versions only keep pthread_self(), which on
 * Linux libcs is the address of the thread's descriptor; the descriptor
 * holds the tid at a fixed offset.  That offset is found once per process by
 * matching every thread's descriptor against the process's real task list
 * (the main thread's value must be the pid), so it is learnt, not assumed,
 * and works for glibc and musl alike.  Descriptors are reused by new threads,
 * so tids are re-read whenever the thread list changes and once a second.
 *
 * Activity: the thread's state letter in /proc/PID/task/TID/stat ('R' is on
 * a CPU or waiting for one; anything else -- sleeping in a syscall, waiting
 * for a lock or for the GIL, stopped -- is idle).  Each thread's stat file
 * is kept open and re-read with one pread per sample.  The thread holding
 * the GIL counts as active whatever its state, unless it is stopped
 * (thread_state_active: the one rule of record, top and dump).
 *
 * Names: threading's name for the thread when the target's threading module
 * can be read, else the OS thread name (comm).  Cached per thread.
 */
#ifndef PYSPYC_PY_THREADS_H
#define PYSPYC_PY_THREADS_H

#include <stdint.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_walk.h"

struct thread_map;

int thread_map_new(struct thread_map **out, const struct py_target *t,
		   struct rmem *mem);
void thread_map_free(struct thread_map *tm);

/* Fill in native_tid for every thread of rs that lacks one.  A thread whose
 * tid cannot be known keeps 0. */
void thread_map_tids(struct thread_map *tm, struct raw_sample *rs);

/* 1 when thread tid is on a CPU (or runnable), 0 when it waits, -errno when
 * that cannot be read (-ESRCH: the thread is gone). */
int thread_map_active(struct thread_map *tm, int32_t tid);

/* Thread tid's state letter ('R', 'S', 'T', ...), or -errno. */
int thread_map_state(struct thread_map *tm, int32_t tid);

/* Does a thread in OS state `state` (a letter) count as active?  Yes when
 * it runs or may run ('R'), or when it holds the GIL (it runs Python, or
 * keeps every thread that would waiting); never when it is stopped ('T':
 * SIGSTOP or job control; 't': stopped by a tracer), GIL or not: a stopped
 * process runs nothing. */
int thread_state_active(int state, int holds_gil);

/* thread_state_active(state of tid, 1) for the thread holding the GIL, its
 * state read at most every 50 ms (a holder stays stopped or running for
 * longer; reading it each sample would cost a read per sample).  A state
 * that cannot be read counts as active. */
int thread_map_holder_active(struct thread_map *tm, int32_t tid);

/* The label of th's root frame (-t): 'thread TID "name"', NUL-terminated,
 * valid until the next call, and in *name (may be NULL) the bare name.
 * *version changes whenever the label of that thread does (a name found
 * later), so callers can cache what they make of it. */
const char *thread_map_name(struct thread_map *tm, const struct raw_thread *th,
			    uint64_t *version, const char **name);

/* Parse a /proc/.../stat line: the state letter after the command name
 * (which may itself contain ')' or spaces).  Returns it, or -EINVAL. */
int proc_stat_state(const char *buf, size_t len);

#endif
