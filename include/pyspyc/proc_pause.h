/* proc_pause.h - hold a target's threads still for the length of one sample.
 *
 * For `record --blocking`: the sampler stops every traced thread of one
 * process, reads the stacks, and lets them go.  struct proc_pause traces the
 * threads with PTRACE_SEIZE (never PTRACE_ATTACH, and it never sends a signal
 * of its own), stops them with PTRACE_INTERRUPT and waits for each stop by
 * tid.  While traced, the target keeps its signal and job-control behaviour:
 *
 *  - A signal sent to the target makes the receiving thread enter a
 *    signal-delivery-stop.  It is delivered unchanged (re-injected) by
 *    proc_pause_poll(), or by proc_pause_resume() when the stop was seen
 *    during proc_pause_stop().  No signal is dropped or added.
 *  - A stopping signal (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) puts the target
 *    in group-stop as usual: proc_pause_poll() answers each thread's group-
 *    stop with PTRACE_LISTEN, so the target stays stopped until SIGCONT, after
 *    which proc_pause_poll() lets each thread run again.  A target that is
 *    group-stopped can be sampled: proc_pause_stop() counts its threads as
 *    stopped, and proc_pause_resume() leaves them stopped.
 *  - Threads that exit are reaped and forgotten (a traced thread that exits
 *    waits for its tracer to reap it; the real parent sees the process exit
 *    only after that).
 *
 * So proc_pause_poll() must be called often while anything is traced, at
 * least once between two samples: until it runs, a thread that received a
 * signal, or was continued by SIGCONT, stays stopped.
 *
 * Threading: ptrace requests are honoured only from the thread that seized
 * the tracee.  Every call on one proc_pause, from proc_pause_new() to
 * proc_pause_free(), must come from the same thread; calls from another
 * thread fail with -EINVAL (proc_pause_free() then only frees memory).  If
 * that thread exits, the kernel detaches every tracee.
 *
 * Waiting: only waitpid(tid, __WALL | WNOHANG) on the tids in the set, never
 * waitpid(-1), and never blocking.  Every wait is bounded by
 * PROC_PAUSE_TIMEOUT_MS (PROC_PAUSE_FREE_TIMEOUT_MS in proc_pause_free), so
 * a thread in uninterruptible sleep or in a frozen cgroup costs time but
 * never hangs the caller.
 *
 * Other waiters in this process: a ptrace stop of a traced thread is also
 * reported to any waitpid() by this process on that tid.  When the target
 * is this process's own child (a launched command), a waitpid(child, ...)
 * elsewhere in the process sees the stops of the child's main thread (and
 * returns the child's pid for a stop, not only for an exit), and our own
 * reaping of that thread takes the exit status it would have collected.
 * proc_pause notices a stop taken from it in this way (it checks the main
 * thread with PTRACE_GETSIGINFO) and still handles it, but such a caller
 * should watch its child with a pidfd or /proc instead of waitpid() while
 * the child is traced.
 */
#ifndef PYSPYC_PROC_PAUSE_H
#define PYSPYC_PROC_PAUSE_H

#include <stddef.h>
#include <sys/types.h>

/* How long one call waits for threads to stop (stop, sync's detaches). */
#define PROC_PAUSE_TIMEOUT_MS 2000
/* How long proc_pause_free() waits for threads to stop so it can detach. */
#define PROC_PAUSE_FREE_TIMEOUT_MS 10000
/* Most threads traced at once in one process. */
#define PROC_PAUSE_MAX_THREADS 65536

struct proc_pause;

/* A new, empty set for process pid (its tgid), bound to the calling thread.
 * Traces nothing yet.  0, -EINVAL (pid <= 0) or -ENOMEM. */
int proc_pause_new(struct proc_pause **out, pid_t pid);

/* Detach every thread and free p.  A thread held by proc_pause_stop() is
 * detached with the signal it was about to receive; a group-stopped thread
 * stays stopped (now untraced) until SIGCONT; a running thread is
 * interrupted, waited for (at most PROC_PAUSE_FREE_TIMEOUT_MS) and
 * detached.  NULL is accepted.
 * Limits: a thread that has not stopped by then keeps a pending interrupt
 * and stops for good when it leaves the kernel, until this thread exits; a
 * main thread that called pthread_exit() while others run is a zombie that
 * can be neither detached nor reaped, and stays traced until its process
 * exits and this thread exits. */
void proc_pause_free(struct proc_pause *p);

/* Make the set of traced threads equal tids[0..n) (in any order, duplicates
 * allowed; they should come from /proc/PID/task): PTRACE_SEIZE those not
 * traced yet, detach those no longer listed (interrupting them first), and
 * skip listed tids that have exited or are not threads of pid.
 * Returns 0, or:
 *   -EPERM      a listed live thread may not be traced (no CAP_SYS_PTRACE,
 *               already traced by someone, or a thread of this process);
 *               the threads seized before it stay in the set;
 *   -ETIMEDOUT  a thread to detach did not stop in time; it is detached by a
 *               later proc_pause_poll(), proc_pause_sync() or
 *               proc_pause_free() once it stops; all else was done;
 *   -E2BIG      n > PROC_PAUSE_MAX_THREADS; nothing changed;
 *   -EBUSY      called between proc_pause_stop() and proc_pause_resume();
 *   -EINVAL     tids is NULL with n > 0, or the wrong thread;
 *   -ENOMEM. */
int proc_pause_sync(struct proc_pause *p, const pid_t *tids, size_t n);

/* Stop every traced thread: PTRACE_INTERRUPT each one and wait until each is
 * in a ptrace stop, at most PROC_PAUSE_TIMEOUT_MS.  Threads that exit in the
 * meantime are forgotten.  A thread found in a signal-delivery-stop counts
 * as stopped; its signal is delivered by proc_pause_resume().  A group-
 * stopped target counts as stopped and stays stopped after resume.
 * On 0 the caller must call proc_pause_resume(); on any error nothing is
 * held.  Returns 0, or:
 *   -ESRCH      no traced thread is left (the process exited, or the set is
 *               empty);
 *   -ETIMEDOUT  a thread did not stop in time (uninterruptible sleep, frozen
 *               cgroup); the threads that did stop were resumed, and the one
 *               that did not is let go by proc_pause_poll() when it stops;
 *   -EBUSY      already stopped;
 *   -EINVAL     the wrong thread. */
int proc_pause_stop(struct proc_pause *p);

/* Let go every thread held by proc_pause_stop(): PTRACE_CONT with signal 0,
 * or with the signal its stop was delivering; PTRACE_LISTEN for a thread in
 * group-stop, which stays stopped.  A thread that died while held is reaped
 * by proc_pause_poll().  0 (also when nothing is held) or -EINVAL (the
 * wrong thread). */
int proc_pause_resume(struct proc_pause *p);

/* Between samples, without blocking: handle the stops the target ran into
 * by itself.  A signal-delivery-stop is continued with its signal; a
 * group-stop is answered with PTRACE_LISTEN (the thread stays stopped); the
 * stop that follows SIGCONT, or an interrupt that landed late, is continued;
 * an exited thread is reaped and forgotten; a thread that sync could not
 * detach in time is detached.  Does nothing between proc_pause_stop() and
 * proc_pause_resume(), or when called from the wrong thread. */
void proc_pause_poll(struct proc_pause *p);

/* Threads in the set (not counting ones waiting to be detached). */
size_t proc_pause_count(const struct proc_pause *p);

/* Is thread tid of the set in a group-stop (SIGSTOP and the like), as its
 * last report said: let go with PTRACE_LISTEN, or held in the stop now?
 * The tracer's own word, which no scheduler event can make stale: such a
 * thread runs nothing until SIGCONT, whose report the next poll takes.
 * 0 for a thread not in the set. */
int proc_pause_group_stopped(const struct proc_pause *p, pid_t tid);

#endif
