/* proc_pause.c - PTRACE_SEIZE a process's threads and hold them per sample.
 *
 * Each traced thread is in one of a few states (enum th_state).  Every
 * report is taken with waitpid(tid, __WALL | WNOHANG) and turned into a
 * state by note_stop(); what to do with a stop is decided once, from how it
 * was reported:
 *
 *   PTRACE_EVENT_STOP, SIGTRAP          interrupt-stop (ours, or a late one,
 *                                       or the trap that follows SIGCONT):
 *                                       continue with no signal;
 *   PTRACE_EVENT_STOP, a stop signal    group-stop: PTRACE_LISTEN, so the
 *                                       thread stays stopped until SIGCONT;
 *   no event, signal S                  signal-delivery-stop: continue with S.
 *
 * Any ptrace stop satisfies a pending PTRACE_INTERRUPT (the kernel clears
 * the pending trap on every trap), so a thread found in a signal-delivery-
 * stop or a group-stop while we wait for our interrupt is simply stopped:
 * it is held like the others and let go as its stop requires.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/proc.h"
#include "pyspyc/proc_pause.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* Passes over the waiting threads with only sched_yield() between them
 * before the wait starts to sleep: a running thread stops within
 * microseconds of PTRACE_INTERRUPT. */
#define SPIN_PASSES 32
#define NAP_MIN_NS 20000L
#define NAP_MAX_NS 1000000L
/* Reports taken from one thread per proc_pause_poll(). */
#define POLL_REPORTS 4

enum th_state {
	TH_RUNNING,	/* seized; in no stop that we have seen */
	TH_HELD,	/* in a ptrace stop that we saw and did not end yet */
	TH_LISTENING,	/* group-stopped, let go with PTRACE_LISTEN */
	TH_ZOMBIE,	/* an exited main thread, reported once the rest exit */
	TH_GONE,	/* reaped or detached: dropped by compact() */
};

struct th {
	pid_t tid;
	unsigned char state;
	unsigned char group;	/* TH_HELD: in group-stop, end it with LISTEN */
	unsigned char waiting;	/* interrupted, its stop not seen yet */
	unsigned char drop;	/* detach it as soon as it stops */
	int sig;		/* TH_HELD: the signal its stop delivers */
};

struct proc_pause {
	pid_t pid;
	pid_t owner;		/* the only thread whose ptrace requests work */
	int paused;		/* between a successful stop and resume */
	struct th *th;		/* sorted by tid */
	size_t n, cap;
	pid_t *scratch;		/* sync: the caller's list, sorted, unique */
	size_t scratch_cap;
};

static pid_t self_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static int is_owner(const struct proc_pause *p)
{
	return p && p->owner == self_tid();
}

/* 0 when tid is a thread of pid, -ESRCH when not (any more). */
static int thread_of(pid_t pid, pid_t tid)
{
	if (syscall(SYS_tgkill, pid, tid, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	return 0;
}

static int is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
	       sig == SIGTTOU;
}

static int dead_state(int st)
{
	return st == 'Z' || st == 'X' || st == -ESRCH;
}

static void note_stop(struct th *t, int event, int sig)
{
	t->waiting = 0;
	t->state = TH_HELD;
	t->group = event == PTRACE_EVENT_STOP && is_stop_signal(sig);
	t->sig = event == 0 ? sig : 0;
}

/* Take one report of t, without blocking.  1 if there was one (t is now
 * TH_HELD or TH_GONE), 0 if not. */
static int collect(struct th *t)
{
	int status;
	pid_t r;

	do
		r = waitpid(t->tid, &status, __WALL | WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
		/* Reaped, or ECHILD: not our tracee any more. */
		t->state = TH_GONE;
		t->waiting = 0;
		return 1;
	}
	if (!WIFSTOPPED(status))
		return 0;
	note_stop(t, status >> 16, WSTOPSIG(status));
	return 1;
}

/* Is t in a ptrace stop whose report was taken by another waitpid() in
 * this process?  PTRACE_GETSIGINFO works only on a tracee in a ptrace stop,
 * and its siginfo tells the kind of stop as the wait status would have. */
static int probe(struct th *t)
{
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, t->tid, NULL, &si) < 0)
		return 0;
	if (si.si_code >> 8 == PTRACE_EVENT_STOP)
		note_stop(t, PTRACE_EVENT_STOP, si.si_signo);
	else
		note_stop(t, 0, si.si_signo);
	return 1;
}

/* End a stop as its kind requires. */
static void let_go(struct th *t)
{
	long sig = t->sig;

	t->sig = 0;
	if (t->group) {
		t->group = 0;
		if (ptrace(PTRACE_LISTEN, t->tid, NULL, NULL) == 0) {
			t->state = TH_LISTENING;
			return;
		}
		sig = 0;
	}
	/* On failure (killed while stopped) the exit is reported later. */
	ptrace(PTRACE_CONT, t->tid, NULL, (void *)sig);
	t->state = TH_RUNNING;
}

static void detach_one(struct th *t)
{
	/* A group-stopped thread detached with no signal stays stopped: the
	 * kernel puts it back into the group-stop. */
	long sig = t->group ? 0 : t->sig;

	t->sig = 0;
	t->group = 0;
	if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)sig) == 0)
		t->state = TH_GONE;
	else
		t->state = TH_RUNNING; /* killed while stopped: reap it later */
}

static void let_go_held(struct proc_pause *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->th[i].state == TH_HELD)
			let_go(&p->th[i]);
}

static void compact(struct proc_pause *p)
{
	size_t i, k = 0;

	for (i = 0; i < p->n; i++)
		if (p->th[i].state != TH_GONE)
			p->th[k++] = p->th[i];
	p->n = k;
}

static size_t n_waiting(const struct proc_pause *p)
{
	size_t i, k = 0;

	for (i = 0; i < p->n; i++)
		k += p->th[i].waiting;
	return k;
}

static void deadline_after(struct timespec *d, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

static int past(const struct timespec *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > d->tv_sec ||
	       (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

/* Wait until no thread is waiting: each has stopped (TH_HELD), exited
 * (TH_GONE), or turned out to be an exited main thread (TH_ZOMBIE), whose
 * exit cannot be reported while other threads live.  0, or -ETIMEDOUT with
 * the threads that did not stop still marked waiting. */
static int wait_stops(struct proc_pause *p, long timeout_ms)
{
	struct timespec deadline, nap = { 0, NAP_MIN_NS };
	unsigned int idle = 0;
	size_t i;

	deadline_after(&deadline, timeout_ms);
	for (;;) {
		int progress = 0;

		for (i = 0; i < p->n; i++)
			if (p->th[i].waiting && collect(&p->th[i]))
				progress = 1;
		if (!n_waiting(p))
			return 0;
		/* Each report ends one wait, so this cannot go on forever. */
		if (progress) {
			idle = 0;
			continue;
		}
		if (++idle <= SPIN_PASSES) {
			sched_yield();
			continue;
		}
		for (i = 0; i < p->n; i++) {
			struct th *t = &p->th[i];

			if (!t->waiting || probe(t))
				continue;
			if (t->tid == p->pid && dead_state(proc_state(t->tid))) {
				t->state = TH_ZOMBIE;
				t->waiting = 0;
			}
		}
		if (!n_waiting(p))
			return 0;
		if (past(&deadline))
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
		nap.tv_nsec = nap.tv_nsec * 2 > NAP_MAX_NS ? NAP_MAX_NS
							   : nap.tv_nsec * 2;
	}
}

/* Interrupt and detach every thread marked drop.  0 or -ETIMEDOUT: the
 * threads that did not stop in time stay marked for a later call. */
static int detach_dropped(struct proc_pause *p, long timeout_ms)
{
	size_t i;
	int err;

	for (i = 0; i < p->n; i++) {
		struct th *t = &p->th[i];

		if (!t->drop)
			continue;
		if (t->state == TH_ZOMBIE) {
			collect(t);
		} else if ((t->state == TH_RUNNING || t->state == TH_LISTENING) &&
			   !collect(t)) {
			/* Failure means it exited: the wait reaps it. */
			ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
			t->waiting = 1;
		}
	}
	err = wait_stops(p, timeout_ms);
	for (i = 0; i < p->n; i++) {
		struct th *t = &p->th[i];

		t->waiting = 0;
		if (t->drop && t->state == TH_HELD)
			detach_one(t);
	}
	compact(p);
	return err;
}

int proc_pause_new(struct proc_pause **out, pid_t pid)
{
	struct proc_pause *p;

	if (pid <= 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->owner = self_tid();
	*out = p;
	return 0;
}

void proc_pause_free(struct proc_pause *p)
{
	size_t i;

	if (!p)
		return;
	if (is_owner(p)) {
		for (i = 0; i < p->n; i++)
			p->th[i].drop = 1;
		detach_dropped(p, PROC_PAUSE_FREE_TIMEOUT_MS);
		/* Reap what died while stopped, and detach a stop that came
		 * just too late; nothing more can be done. */
		for (i = 0; i < p->n; i++)
			if (collect(&p->th[i]) && p->th[i].state == TH_HELD)
				detach_one(&p->th[i]);
	}
	free(p->scratch);
	free(p->th);
	free(p);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static int cmp_th(const void *a, const void *b)
{
	return cmp_pid(&((const struct th *)a)->tid, &((const struct th *)b)->tid);
}

static struct th *find_th(struct th *v, size_t n, pid_t tid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].tid == tid)
			return &v[mid];
		if (v[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Room for want elements; never leaves *v NULL, so that qsort() and
 * bsearch() always get an array, even an empty one. */
static int reserve(void **v, size_t *cap, size_t want, size_t size)
{
	size_t c = *cap ? *cap : 16;
	void *nv;

	if (*v && want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	nv = realloc(*v, c * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

/* Seize tid and add it to the set.  0 also when tid is no longer a live
 * thread of p->pid; -errno when it may not be traced. */
static int seize(struct proc_pause *p, pid_t tid)
{
	struct th *t;
	int err;

	if (thread_of(p->pid, tid) < 0)
		return 0;
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		err = -errno;
		/* The kernel refuses to trace an exited thread with EPERM. */
		if (err == -ESRCH || (err == -EPERM && dead_state(proc_state(tid))))
			return 0;
		return err;
	}
	t = &p->th[p->n++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->state = TH_RUNNING;
	/* The tid may have been reused by another process between the check
	 * and the seize.  Traced, it cannot be reused any more: check again. */
	if (thread_of(p->pid, tid) < 0)
		t->drop = 1;
	return 0;
}

int proc_pause_sync(struct proc_pause *p, const pid_t *tids, size_t n)
{
	size_t i, m = 0, old_n;
	int err = 0, derr;

	if (!is_owner(p) || (!tids && n))
		return -EINVAL;
	if (p->paused)
		return -EBUSY;
	if (n > PROC_PAUSE_MAX_THREADS)
		return -E2BIG;
	if (reserve((void **)&p->scratch, &p->scratch_cap, n, sizeof(pid_t)) ||
	    reserve((void **)&p->th, &p->cap, p->n + n, sizeof(struct th)))
		return -ENOMEM;
	if (n)
		memcpy(p->scratch, tids, n * sizeof(pid_t));
	qsort(p->scratch, n, sizeof(pid_t), cmp_pid);
	for (i = 0; i < n; i++)
		if (m == 0 || p->scratch[m - 1] != p->scratch[i])
			p->scratch[m++] = p->scratch[i];

	old_n = p->n;
	for (i = 0; i < old_n; i++)
		p->th[i].drop = !bsearch(&p->th[i].tid, p->scratch, m,
					 sizeof(pid_t), cmp_pid);
	for (i = 0; i < m && !err; i++)
		if (!find_th(p->th, old_n, p->scratch[i]))
			err = seize(p, p->scratch[i]);
	qsort(p->th, p->n, sizeof(struct th), cmp_th);

	derr = detach_dropped(p, PROC_PAUSE_TIMEOUT_MS);
	return err ? err : derr;
}

int proc_pause_stop(struct proc_pause *p)
{
	size_t i, stopped = 0;
	int err;

	if (!is_owner(p))
		return -EINVAL;
	if (p->paused)
		return -EBUSY;
	for (i = 0; i < p->n; i++) {
		struct th *t = &p->th[i];

		if (t->drop)
			continue;
		if (t->state == TH_ZOMBIE) {
			collect(t);
			continue;
		}
		/* A group-stopped thread is already still.  A stop reported
		 * since the last poll does as well as the interrupt; an
		 * interrupt on top of it would only stop the thread again
		 * after resume. */
		if (t->state != TH_RUNNING || collect(t))
			continue;
		/* Failure means it exited: the wait reaps it. */
		ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
		t->waiting = 1;
	}
	err = wait_stops(p, PROC_PAUSE_TIMEOUT_MS);
	if (err) {
		/* A late stop is an interrupt-stop that poll continues. */
		for (i = 0; i < p->n; i++)
			p->th[i].waiting = 0;
		let_go_held(p);
		compact(p);
		return err;
	}
	compact(p);
	for (i = 0; i < p->n; i++)
		if (!p->th[i].drop && (p->th[i].state == TH_HELD ||
				       p->th[i].state == TH_LISTENING))
			stopped++;
	if (!stopped)
		return -ESRCH;
	p->paused = 1;
	return 0;
}

int proc_pause_resume(struct proc_pause *p)
{
	if (!is_owner(p))
		return -EINVAL;
	let_go_held(p);
	p->paused = 0;
	return 0;
}

void proc_pause_poll(struct proc_pause *p)
{
	size_t i;
	int k;

	if (!is_owner(p) || p->paused)
		return;
	for (i = 0; i < p->n; i++) {
		struct th *t = &p->th[i];

		for (k = 0; k < POLL_REPORTS && t->state != TH_GONE; k++) {
			/* Only the main thread's reports can be taken by a
			 * waitpid(pid) elsewhere (see the header). */
			if (!collect(t) && !(t->tid == p->pid &&
					     t->state == TH_RUNNING && probe(t)))
				break;
			if (t->state != TH_HELD)
				break;
			if (t->drop)
				detach_one(t);
			else
				let_go(t);
		}
	}
	compact(p);
}

int proc_pause_group_stopped(const struct proc_pause *p, pid_t tid)
{
	const struct th *t = p ? find_th(p->th, p->n, tid) : NULL;

	return t && !t->drop && (t->state == TH_LISTENING || (t->state == TH_HELD && t->group));
}

size_t proc_pause_count(const struct proc_pause *p)
{
	size_t i, k = 0;

	if (!p)
		return 0;
	for (i = 0; i < p->n; i++)
		k += !p->th[i].drop && p->th[i].state != TH_ZOMBIE;
	return k;
}
