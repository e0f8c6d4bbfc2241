/* session.h - sample a process, or a process tree, into one stacktab.
 *
 * A session runs one sampling thread for all its target processes,
 * whatever their number.  It waits on absolute deadlines (CLOCK_MONOTONIC,
 * 1 ns timer slack) and at each one samples every live process
 * (sampler_tick: a process that has not run since its last tick costs two
 * memory loads, or one clock read and one small read, see sampler.h).  It
 * opens the context-switch watch (runwatch.h) when the kernel allows.
 * Between ticks the same thread waits in one epoll set on every process's pidfd (an exit is seen
 * at once) and, with subprocesses, on the process events socket; it also
 * walks the tree under the root now and then: Python processes that appear
 * (forked workers, workers replaced after max_requests or a crash) are
 * sampled from the next tick; processes that exit are dropped quietly;
 * processes that are not Python are ignored quietly.  Processes are told
 * apart by pid and start time, so a reused pid is a new process; a
 * sampler holds its process by a pidfd, so it never reads a later process
 * that took the pid.  A process that exec's another program is sampled on
 * if the program is Python (its own interpreter, found anew), and dropped
 * if it is not; one that finalizes its interpreter and starts another (an
 * embedding host) is sampled on in the new one.  Nothing is bounded but
 * by max_processes (--max-processes), and Python processes past it are
 * counted (processes_left_out).
 *
 * The caller's thread is free while a session runs (record waits on it, top
 * draws its screen); session_stats() and stacktab_snapshot() may be called
 * at any time.
 */
#ifndef PYSPYC_SESSION_H
#define PYSPYC_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyspyc/py_code.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/backend.h"
#include "pyspyc/counters.h"
#include "pyspyc/stacktab.h"

struct session_opts {
	double rate_hz;
	double duration_s;       /* 0: until stopped or every target exited */
	int subprocesses;        /* -s: the tree under the root */
	int idle;                /* -i: count threads that are not on a CPU */
	int gil;                 /* -g: only the thread holding the GIL */
	int threads;             /* -t: a root frame per thread */
	int blocking;            /* --blocking: pause Python threads per sample */
	unsigned int find_flags; /* PY_FIND_* for processes found later */
	uint32_t max_processes;  /* sampled at once (--max-processes); 0: no
				  * bound */
	/* The processes to sample are given by the caller (session_give),
	 * not found under a root: the agent's services.  The session runs
	 * until it is stopped, with or without processes; a process that
	 * exec's is looked at again as with subprocesses; a process left out
	 * of the next set given stops being sampled. */
	int given;
	int process_root;        /* a root frame per process without
				  * subprocesses (given: the agent's pid
				  * label) */
	const struct backend_ops *backend; /* NULL: the default (backend.h) */
	struct backend_opts walk;
	struct sym_opts sym;
};

/* Counters summed over every process sampled so far. */
struct session_stats {
	/* Every process's counters merged (counters.h): summed, the largest,
	 * or (threads, active) over the processes sampled now; the ones of a
	 * single process (elapsed_ns, target_*) are 0 here. */
	SAMPLER_COUNTERS(COUNTER_FIELD)
	uint32_t processes;      /* processes being sampled now */
	uint32_t processes_seen; /* processes sampled at any time */
	uint32_t execs;          /* sampled processes that exec'd another program */
	uint32_t execs_lost;     /* ...that is not Python (or not yet, without
				  * subprocesses): not sampled after that */
	uint32_t reinits;        /* interpreters an embedding host finalized and
				  * started anew, each followed */
	uint32_t processes_left_out; /* Python processes not sampled: more than
				      * max_processes at once */
	uint32_t processes_unread; /* Python processes not sampled: the backend
				    * cannot read them (bpf and 3.14+) */
	int root_exited;         /* the process (or tree root) given has exited */
	double elapsed_s;        /* since the engine's first tick */
	int runwatch;            /* the asleep test reads the kernel's context
				  * switches (runwatch.h), not clocks */
	uint64_t engine_ticks;   /* deadlines the sampling thread has reached
				  * (the agent's watchdog: it goes on) */
};

struct session;

int session_new(struct session **out, const struct session_opts *o,
		struct stacktab *tab);

/* Start sampling root, whose interpreter t was found by the caller (given
 * mode: root 0 and t NULL; the processes come from session_give).  With
 * subprocesses, t may be NULL (a root that is not Python, e.g. a shell
 * script or a non-Python supervisor): only its descendants are sampled.
 * Returns 0 or -errno (the sampling thread could not be started). */
int session_start(struct session *s, pid_t root, const struct py_target *t);

/* Given mode: sample the processes ids[0..n) from now on (those not
 * Python are looked at a few times, as a tree's new processes are, then
 * left alone), and no others.  Safe from any thread while the session
 * runs; the engine takes the set within WAIT_MAX_NS or a tick.  0 or
 * -ENOMEM (the last set stays). */
int session_give(struct session *s, const struct proc_ident *ids, size_t n);

/* Given mode, with a table per process: tabs[k] (NULL: the session's
 * own) is the stacktab ids[k]'s samples count into, so that one engine
 * samples several services, each into its own table.  A process given
 * again with another table is sampled anew into it.  The caller keeps
 * every table alive until a set without its processes has been taken
 * (session_sync).  0 or -ENOMEM. */
int session_give_tables(struct session *s, const struct proc_ident *ids,
			struct stacktab *const *tabs, size_t n);
/* Wait until the engine has taken the set given last: from then on no
 * process left out of it counts into any table (its last counts are in).
 * 0, or -ETIMEDOUT after timeout_ns. */
int session_sync(struct session *s, int64_t timeout_ns);
/* session_stats over the processes that count into tab (live, and
 * finished since: their counters are kept by table until
 * session_forget_table).  processes is those sampled now; the fields of
 * the session as a whole (seen, execs, ...) are 0. */
void session_stats_table(struct session *s, const struct stacktab *tab,
			 struct session_stats *out);
void session_forget_table(struct session *s, const struct stacktab *tab);
/* 1 when sampling is over: the duration elapsed, or the root and every
 * followed process have exited (with subprocesses, the root's exit alone
 * does not end it while workers live). */
int session_done(struct session *s);

/* Block until the session is done, or until until_ns (mono_ns(); 0: no
 * limit but the session's), or a signal arrives: mask is the signal mask
 * while waiting, as ppoll's (the caller blocks the signals it acts on
 * before it looks at its flags, and unblocks them here, so that none is
 * lost in between).  Returns at once when done; no polling. */
void session_wait(struct session *s, int64_t until_ns, const sigset_t *mask);

/* Live counters; safe from any thread while the session runs. */
void session_stats(struct session *s, struct session_stats *st);

/* Stop the sampling thread and wait for it.  Idempotent.  Leaves every
 * target running, never stopped or traced. */
void session_stop(struct session *s);

void session_free(struct session *s);

#endif
