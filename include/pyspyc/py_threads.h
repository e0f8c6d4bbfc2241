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
 * PID namespaces: a target in a namespace of its own (a container) keeps
 * its namespace's ids in both places.  They are turned into ours (the ids
 * /proc takes) through the NSpid lines of its tasks (proc_ns.h), read once
 * and again only when an id the map does not know shows up or a task it
 * named is gone (an id a read did not find is looked for again after a
 * second).  The descriptor search matches against the
 * process's own ids.  Every tid this module gives out or takes is ours.
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
#include "pyspyc/py_obj.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_walk.h"

struct thread_map;

int thread_map_new(struct thread_map **out, const struct py_target *t,
		   struct rmem *mem);
void thread_map_free(struct thread_map *tm);

/* Take threads' states from rw (runwatch_thread_state: the scheduler's
 * events, no system call) where it knows them, from /proc where it does
 * not, and note what /proc said in rw (runwatch_seed) for the next time;
 * rw watches the target in slot and outlives tm.  NULL: /proc alone. */
struct runwatch;
void thread_map_set_runwatch(struct thread_map *tm, struct runwatch *rw, uint32_t slot);

/* The OS thread id of every thread of rs, as we know it, into tids[]
 * (parallel to rs->threads; the sample is the backend's and stays as it
 * is): the backend's native_tid, found where it had none, and the
 * target's namespace ids turned into ours.  A thread whose tid cannot be
 * known gets 0; one whose OS thread has exited (its thread state left
 * behind by a main thread's pthread_exit()) gets -1.  Call it once per
 * sample. */
void thread_map_tids(struct thread_map *tm, const struct raw_sample *rs, int32_t *tids);

/* The id the target knows our thread tid by, when the target is in a PID
 * namespace of its own; else 0 (also when not known). */
int32_t thread_map_ns_tid(const struct thread_map *tm, int32_t tid);

/* The target's pid as it knows it itself, when it is in a PID namespace of
 * its own (1 for a container's first process); else 0. */
pid_t thread_map_ns_pid(const struct thread_map *tm);

/* 1 when thread tid is on a CPU (or runnable), 0 when it waits, -errno when
 * that cannot be read (-ESRCH: the thread is gone or a zombie, as a main
 * thread after pthread_exit(), or tid is -1). */
int thread_map_active(struct thread_map *tm, int32_t tid);

/* Thread tid's state letter ('R', 'S', 'T', ...), or -errno (-ESRCH: gone or a
 * zombie, as for thread_map_active). */
int thread_map_state(struct thread_map *tm, int32_t tid);

/* OS thread tid's state (the target's id, as its thread state has it) by
 * the scheduler watch's word alone (thread_map_set_runwatch), no system
 * call: its letter, 'X' once it has exited, or 0 when the watch does not
 * know. */
int thread_map_known_state(const struct thread_map *tm, int32_t tid);

/* Before 3.11: the OS thread id (the target's) of the thread whose thread
 * state holds thread_id (its pthread_t), as its thread descriptor said at
 * the last sample (thread_map_tids); 0 when not known.  Two thread states
 * with one id (a new one holds its creator's until its thread runs) give
 * the first one's. */
int32_t thread_map_descriptor_tid(const struct thread_map *tm, uint64_t thread_id);

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

/* The label of th's root frame (-t), tid its OS id (thread_map_tids):
 * 'thread TID "name"', NUL-terminated,
 * valid until the next call, and in *name (may be NULL) the bare name;
 * *from_os (may be NULL) is 1 when the OS thread name stands in for
 * threading's.
 * *version changes whenever the label of that thread does (a name found
 * later), so callers can cache what they make of it. */
const char *thread_map_name(struct thread_map *tm, const struct raw_thread *th, int32_t tid,
			    uint64_t *version, const char **name, int *from_os);

/* threading's names for a process's threads, sorted by ident. */
struct py_thread_names {
	struct py_thread_name *v;
	uint32_t n, cap;
};

/* Read every name (py_obj_thread_names), growing tn as needed up to max
 * names; room for hint names (the threads the caller knows of) is made
 * first, so that one read usually does.  tn starts zeroed; it is reused
 * from call to call.  Returns the number of names or -errno (tn then holds
 * none). */
int py_thread_names_read(struct py_thread_names *tn, const struct py_target *t,
			 struct rmem *m, uint32_t hint, uint32_t max);

/* The name of thread ident (a PyThreadState.thread_id), or NULL.  A binary
 * search: one lookup per thread stays cheap with thousands of threads. */
const char *py_thread_names_find(const struct py_thread_names *tn, uint64_t ident);

/* Free what tn holds, leaving it empty (zeroed). */
void py_thread_names_release(struct py_thread_names *tn);

/* Parse a /proc/.../stat line: the state letter after the command name
 * (which may itself contain ')' or spaces).  Returns it, or -EINVAL. */
int proc_stat_state(const char *buf, size_t len);

#endif
