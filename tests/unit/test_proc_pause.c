/* test_proc_pause.c - hold a live child's threads still with ptrace.
 *
 * Each test forks a child with a main thread that sleeps and two threads
 * that spin, counting in shared memory, and a SIGUSR1 handler that counts
 * too.  The spin counters tell whether the child runs; /proc tells each
 * thread's state and tracer.  Nothing is timed tightly: every wait polls
 * with a generous limit, so a loaded machine is only slower.  The teardown
 * frees the proc_pause and kills and reaps the child even when a test
 * fails.  Needs CAP_SYS_PTRACE over its own children (root in CI).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/proc.h"
#include "pyspyc/proc_pause.h"

#define WAIT_S 30.0
#define MAX_TIDS 16

/* Shared between the test and its child; every access is __atomic. */
struct shared {
	unsigned long spins[2];	/* advanced by the two busy threads */
	int usr1;		/* SIGUSR1s the child's handler ran */
	int ready;		/* both busy threads run */
	int stop_one;		/* busy thread 1 returns */
	int exit_all;		/* the child exits */
	int stall;		/* the main thread waits in vfork() ... */
	int release;		/* ... until this is set */
	pid_t busy_tid[2];
};

struct fx {
	pid_t child;
	struct shared *sh;
	struct proc_pause *p;
};

/* ---- the child --------------------------------------------------------- */

static struct shared *child_sh;

static void on_usr1(int sig)
{
	(void)sig;
	__atomic_fetch_add(&child_sh->usr1, 1, __ATOMIC_RELAXED);
}

static void *busy(void *arg)
{
	int i = (int)(intptr_t)arg;

	__atomic_store_n(&child_sh->busy_tid[i], (pid_t)syscall(SYS_gettid),
			 __ATOMIC_RELEASE);
	while (!__atomic_load_n(&child_sh->exit_all, __ATOMIC_RELAXED) &&
	       !(i == 1 && __atomic_load_n(&child_sh->stop_one, __ATOMIC_RELAXED)))
		__atomic_fetch_add(&child_sh->spins[i], 1, __ATOMIC_RELAXED);
	return NULL;
}

/* A thread waiting for its vfork() child sleeps killable only: no
 * PTRACE_INTERRUPT wakes it, like a thread in uninterruptible sleep. */
static void stall_in_vfork(struct shared *sh)
{
	struct timespec ms = { 0, 1000000 };
	pid_t v = vfork();

	if (v == 0) {
		while (!__atomic_load_n(&sh->release, __ATOMIC_RELAXED) &&
		       !__atomic_load_n(&sh->exit_all, __ATOMIC_RELAXED))
			nanosleep(&ms, NULL);
		_exit(0);
	}
	if (v > 0)
		waitpid(v, NULL, 0);
	__atomic_store_n(&sh->stall, 0, __ATOMIC_RELAXED);
}

static void child_main(struct shared *sh)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	struct timespec ms = { 0, 1000000 };
	pthread_t t;
	int i;

	child_sh = sh;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		_exit(2);
	for (i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, busy, (void *)(intptr_t)i) != 0)
			_exit(2);
	while (!__atomic_load_n(&sh->busy_tid[0], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&sh->busy_tid[1], __ATOMIC_ACQUIRE))
		nanosleep(&ms, NULL);
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&sh->exit_all, __ATOMIC_RELAXED)) {
		if (__atomic_load_n(&sh->stall, __ATOMIC_RELAXED))
			stall_in_vfork(sh);
		nanosleep(&ms, NULL);
	}
	_exit(0);
}

/* ---- helpers ----------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static size_t child_tids(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max)
		if (de->d_name[0] != '.')
			out[n++] = (pid_t)atoi(de->d_name);
	closedir(d);
	return n;
}

/* TracerPid of tid, or -1. */
static int tracer_of(pid_t tid)
{
	char path[64], line[256];
	int tracer = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	return tracer;
}

static int sync_all(struct fx *fx)
{
	pid_t tids[MAX_TIDS];
	size_t n = child_tids(fx->child, tids, MAX_TIDS);

	return proc_pause_sync(fx->p, tids, n);
}

/* 1 when every thread of the child is in one of the states listed. */
static int states_in(struct fx *fx, const char *ok)
{
	pid_t tids[MAX_TIDS];
	size_t i, n = child_tids(fx->child, tids, MAX_TIDS);

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		int st = proc_state(tids[i]);

		if (st <= 0 || !strchr(ok, st))
			return 0;
	}
	return 1;
}

static int some_state(struct fx *fx, int want)
{
	pid_t tids[MAX_TIDS];
	size_t i, n = child_tids(fx->child, tids, MAX_TIDS);

	for (i = 0; i < n; i++)
		if (proc_state(tids[i]) == want)
			return 1;
	return 0;
}

static int untraced(struct fx *fx)
{
	pid_t tids[MAX_TIDS];
	size_t i, n = child_tids(fx->child, tids, MAX_TIDS);

	for (i = 0; i < n; i++)
		if (tracer_of(tids[i]) != 0)
			return 0;
	return n > 0;
}

static unsigned long spins(struct fx *fx, int i)
{
	return __atomic_load_n(&fx->sh->spins[i], __ATOMIC_RELAXED);
}

static int usr1_count(struct fx *fx)
{
	return __atomic_load_n(&fx->sh->usr1, __ATOMIC_RELAXED);
}

/* 1 when neither busy thread advances over 30 ms.  Only meaningful while
 * the child should be still: a running thread always advances. */
static int frozen(struct fx *fx)
{
	unsigned long a = spins(fx, 0), b = spins(fx, 1);

	nap_ms(30);
	return spins(fx, 0) == a && spins(fx, 1) == b;
}

/* Wait for busy thread i to advance, calling proc_pause_poll() meanwhile
 * when poll is set. */
static int advances(struct fx *fx, int i, int poll)
{
	unsigned long a = spins(fx, i);
	double end = now_s() + WAIT_S;

	while (now_s() < end) {
		if (poll)
			proc_pause_poll(fx->p);
		if (spins(fx, i) != a)
			return 1;
		nap_ms(1);
	}
	return 0;
}

static int runs(struct fx *fx, int poll)
{
	return advances(fx, 0, poll) && advances(fx, 1, poll);
}

/* Wait until cond(fx) holds, calling proc_pause_poll() in between. */
static int poll_until(struct fx *fx, int (*cond)(struct fx *))
{
	double end = now_s() + WAIT_S;

	while (now_s() < end) {
		proc_pause_poll(fx->p);
		if (cond(fx))
			return 1;
		nap_ms(1);
	}
	return 0;
}

static int running_states(struct fx *fx)
{
	return states_in(fx, "RS");
}

static int stopped_states(struct fx *fx)
{
	return states_in(fx, "tT");
}

static int job_stopped_states(struct fx *fx)
{
	return states_in(fx, "T");
}

/* Poll until the child's handler has run want times, then check no more
 * come: every signal seen exactly once. */
static void expect_usr1(struct fx *fx, int want)
{
	double end = now_s() + WAIT_S;

	while (usr1_count(fx) < want && now_s() < end) {
		proc_pause_poll(fx->p);
		nap_ms(1);
	}
	assert_int_equal(usr1_count(fx), want);
}

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	double end = now_s() + WAIT_S;

	if (!fx)
		return -1;
	fx->sh = mmap(NULL, sizeof(*fx->sh), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fx->sh == MAP_FAILED) {
		free(fx);
		return -1;
	}
	fx->child = fork();
	if (fx->child == 0)
		child_main(fx->sh);
	*state = fx;
	if (fx->child < 0)
		return -1;
	while (!__atomic_load_n(&fx->sh->ready, __ATOMIC_ACQUIRE)) {
		if (now_s() > end)
			return -1;
		nap_ms(1);
	}
	return proc_pause_new(&fx->p, fx->child);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (!fx)
		return 0;
	__atomic_store_n(&fx->sh->release, 1, __ATOMIC_RELAXED);
	proc_pause_free(fx->p);
	if (fx->child > 0) {
		kill(fx->child, SIGKILL);
		/* ECHILD when the tracer already reaped it. */
		while (waitpid(fx->child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	munmap(fx->sh, sizeof(*fx->sh));
	free(fx);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_arguments(void **state)
{
	struct proc_pause *p = NULL;
	pid_t self = my_tid(), one = 1;

	(void)state;
	assert_int_equal(proc_pause_new(&p, 0), -EINVAL);
	assert_int_equal(proc_pause_new(&p, -1), -EINVAL);
	proc_pause_free(NULL);
	assert_int_equal(proc_pause_count(NULL), 0);

	assert_int_equal(proc_pause_new(&p, getpid()), 0);
	assert_int_equal(proc_pause_stop(p), -ESRCH); /* nothing traced */
	assert_int_equal(proc_pause_resume(p), 0);
	proc_pause_poll(p);
	assert_int_equal(proc_pause_sync(p, NULL, 1), -EINVAL);
	assert_int_equal(proc_pause_sync(p, NULL, 0), 0);
	assert_int_equal(proc_pause_sync(p, &one, PROC_PAUSE_MAX_THREADS + 1),
			 -E2BIG);
	/* A thread of one's own process can never be traced. */
	assert_int_equal(proc_pause_sync(p, &self, 1), -EPERM);
	assert_int_equal(proc_pause_count(p), 0);
	proc_pause_free(p);
}

static void test_stop_resume(void **state)
{
	struct fx *fx = *state;
	int round;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_count(fx->p), 3);
	assert_int_equal(tracer_of(fx->child), my_tid());
	for (round = 0; round < 200; round++) {
		assert_int_equal(proc_pause_stop(fx->p), 0);
		assert_true(states_in(fx, "t"));
		if (round % 50 == 0)
			assert_true(frozen(fx));
		assert_int_equal(proc_pause_stop(fx->p), -EBUSY);
		assert_int_equal(sync_all(fx), -EBUSY);
		assert_int_equal(proc_pause_resume(fx->p), 0);
	}
	assert_true(poll_until(fx, running_states));
	assert_true(runs(fx, 1));
	assert_int_equal(proc_pause_count(fx->p), 3);
}

static void test_free_detaches(void **state)
{
	struct fx *fx = *state;

	/* Free while running. */
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(proc_pause_resume(fx->p), 0);
	proc_pause_free(fx->p);
	fx->p = NULL;
	assert_true(untraced(fx));
	assert_true(runs(fx, 0));

	/* Free while held by proc_pause_stop(). */
	assert_int_equal(proc_pause_new(&fx->p, fx->child), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	proc_pause_free(fx->p);
	fx->p = NULL;
	assert_true(untraced(fx));
	assert_true(runs(fx, 0));
	assert_int_equal(usr1_count(fx), 0);
}

static void test_sync_detaches_unlisted(void **state)
{
	struct fx *fx = *state;
	pid_t leader = fx->child;
	pid_t b0 = fx->sh->busy_tid[0], b1 = fx->sh->busy_tid[1];

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_sync(fx->p, &leader, 1), 0);
	assert_int_equal(proc_pause_count(fx->p), 1);
	assert_int_equal(tracer_of(b0), 0);
	assert_int_equal(tracer_of(b1), 0);
	assert_int_equal(tracer_of(leader), my_tid());

	/* Only the main thread stops; the others go on. */
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(proc_state(leader), 't');
	assert_true(runs(fx, 0));
	assert_int_equal(proc_pause_resume(fx->p), 0);

	/* Listed again, with duplicates, in another order. */
	{
		pid_t again[] = { b1, leader, b0, b1, leader };

		assert_int_equal(proc_pause_sync(fx->p, again, 5), 0);
	}
	assert_int_equal(proc_pause_count(fx->p), 3);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	assert_true(frozen(fx));
	assert_int_equal(proc_pause_resume(fx->p), 0);
	assert_true(runs(fx, 1));

	/* An empty list detaches everything. */
	assert_int_equal(proc_pause_sync(fx->p, NULL, 0), 0);
	assert_int_equal(proc_pause_count(fx->p), 0);
	assert_true(untraced(fx));
	assert_int_equal(proc_pause_stop(fx->p), -ESRCH);
}

static void test_signals_delivered(void **state)
{
	struct fx *fx = *state;
	int i, want = 0;

	assert_int_equal(sync_all(fx), 0);

	/* Signals that arrive between samples: poll re-injects each. */
	for (i = 0; i < 10; i++) {
		assert_int_equal(kill(fx->child, SIGUSR1), 0);
		expect_usr1(fx, ++want);
	}

	/* A signal-delivery-stop that proc_pause_stop() finds waiting: it
	 * counts as stopped, and resume delivers the signal. */
	assert_int_equal(kill(fx->child, SIGUSR1), 0);
	{
		double end = now_s() + WAIT_S;

		while (!some_state(fx, 't') && now_s() < end)
			nap_ms(1);
	}
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	assert_int_equal(usr1_count(fx), want);
	assert_int_equal(proc_pause_resume(fx->p), 0);
	expect_usr1(fx, ++want);

	/* A signal sent while every thread is held. */
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(kill(fx->child, SIGUSR1), 0);
	nap_ms(10);
	assert_int_equal(usr1_count(fx), want);
	assert_int_equal(proc_pause_resume(fx->p), 0);
	expect_usr1(fx, ++want);

	/* Signals racing the interrupt. */
	for (i = 0; i < 50; i++) {
		assert_int_equal(kill(fx->child, SIGUSR1), 0);
		assert_int_equal(proc_pause_stop(fx->p), 0);
		assert_int_equal(proc_pause_resume(fx->p), 0);
		expect_usr1(fx, ++want);
	}

	/* None lost, none made up, and the child runs on. */
	nap_ms(50);
	proc_pause_poll(fx->p);
	assert_int_equal(usr1_count(fx), want);
	assert_true(runs(fx, 1));
}

static int b0_signal_stopped(struct fx *fx)
{
	return proc_state(fx->sh->busy_tid[0]) == 't';
}

/* Detaching a thread caught in a signal-delivery-stop hands it its signal,
 * whether it is dropped by sync or by free. */
static void test_detach_delivers_signal(void **state)
{
	struct fx *fx = *state;
	pid_t b0 = fx->sh->busy_tid[0];
	double end;

	assert_int_equal(sync_all(fx), 0);

	/* Stopped in its signal-delivery-stop, not yet polled: sync drops it. */
	assert_int_equal(syscall(SYS_tgkill, fx->child, b0, SIGUSR1), 0);
	end = now_s() + WAIT_S;
	while (!b0_signal_stopped(fx) && now_s() < end)
		nap_ms(1);
	assert_true(b0_signal_stopped(fx));
	{
		pid_t keep[] = { fx->child, fx->sh->busy_tid[1] };

		assert_int_equal(proc_pause_sync(fx->p, keep, 2), 0);
	}
	assert_int_equal(tracer_of(b0), 0);
	expect_usr1(fx, 1);

	/* Held by proc_pause_stop() with its signal pending: free. */
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(syscall(SYS_tgkill, fx->child, b0, SIGUSR1), 0);
	end = now_s() + WAIT_S;
	while (!b0_signal_stopped(fx) && now_s() < end)
		nap_ms(1);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(usr1_count(fx), 1);
	proc_pause_free(fx->p);
	fx->p = NULL;
	assert_true(untraced(fx));
	end = now_s() + WAIT_S;
	while (usr1_count(fx) < 2 && now_s() < end)
		nap_ms(1);
	assert_int_equal(usr1_count(fx), 2);
	assert_true(runs(fx, 0));
}

/* Another waitpid() in this process takes the main thread's stop report
 * (as a launcher waiting for its child would): the stop is still handled. */
static void test_stolen_report(void **state)
{
	struct fx *fx = *state;
	double end;
	int status = 0, round;

	assert_int_equal(sync_all(fx), 0);
	for (round = 0; round < 2; round++) {
		assert_int_equal(syscall(SYS_tgkill, fx->child, fx->child, SIGUSR1), 0);
		end = now_s() + WAIT_S;
		while (waitpid(fx->child, &status, WNOHANG) != fx->child &&
		       now_s() < end)
			nap_ms(1);
		assert_true(WIFSTOPPED(status));
		assert_int_equal(WSTOPSIG(status), SIGUSR1);
		assert_int_equal(proc_state(fx->child), 't');
		if (round == 1) {
			/* Found by proc_pause_stop(), delivered on resume. */
			assert_int_equal(proc_pause_stop(fx->p), 0);
			assert_true(states_in(fx, "t"));
			assert_int_equal(proc_pause_resume(fx->p), 0);
		}
		/* Found by proc_pause_poll(). */
		expect_usr1(fx, round + 1);
	}
	assert_true(poll_until(fx, running_states));
}

/* How many of the child's threads the set says are group-stopped. */
static int group_stopped(struct fx *fx)
{
	pid_t tids[MAX_TIDS];
	size_t i, n = child_tids(fx->child, tids, MAX_TIDS);
	int k = 0;

	for (i = 0; i < n; i++)
		k += proc_pause_group_stopped(fx->p, tids[i]);
	return k;
}

/* Sampling a group-stopped target holds it and leaves it stopped. */
static void sample_stopped(struct fx *fx)
{
	int i;

	for (i = 0; i < 20; i++) {
		assert_int_equal(proc_pause_stop(fx->p), 0);
		assert_true(stopped_states(fx));
		assert_int_equal(proc_pause_resume(fx->p), 0);
		proc_pause_poll(fx->p);
		/* The tracer's word: every thread of it in the group-stop. */
		assert_int_equal(group_stopped(fx), 3);
	}
	assert_true(frozen(fx));
	assert_true(stopped_states(fx));
}

static void test_group_stop(void **state)
{
	struct fx *fx = *state;
	int i;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(kill(fx->child, SIGSTOP), 0);
	assert_true(poll_until(fx, stopped_states));

	/* Stays stopped however often it is polled. */
	for (i = 0; i < 10; i++) {
		unsigned long a = spins(fx, 0), b = spins(fx, 1);

		proc_pause_poll(fx->p);
		nap_ms(5);
		proc_pause_poll(fx->p);
		assert_true(spins(fx, 0) == a && spins(fx, 1) == b);
	}
	assert_true(stopped_states(fx));

	sample_stopped(fx);
	assert_int_equal(proc_pause_count(fx->p), 3);

	/* SIGCONT resumes it, and sampling goes on as before. */
	assert_int_equal(kill(fx->child, SIGCONT), 0);
	assert_true(runs(fx, 1));
	assert_true(poll_until(fx, running_states));
	assert_int_equal(group_stopped(fx), 0);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	/* Held by our interrupt, not in a group-stop. */
	assert_int_equal(group_stopped(fx), 0);
	assert_int_equal(proc_pause_resume(fx->p), 0);
	assert_true(runs(fx, 1));
	assert_int_equal(usr1_count(fx), 0);
}

/* A target already stopped by the user when it is first seized. */
static void test_seize_group_stopped(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(kill(fx->child, SIGSTOP), 0);
	assert_true(poll_until(fx, job_stopped_states));
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_count(fx->p), 3);
	sample_stopped(fx);
	assert_int_equal(kill(fx->child, SIGCONT), 0);
	assert_true(runs(fx, 1));
	assert_true(poll_until(fx, running_states));
}

static void test_free_group_stopped(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(kill(fx->child, SIGSTOP), 0);
	assert_true(poll_until(fx, stopped_states));
	proc_pause_free(fx->p);
	fx->p = NULL;

	/* Detached, and still stopped as the user asked.  Each thread is
	 * woken on detach to re-enter the group-stop untraced ('T'), which
	 * can take a moment on a busy machine; it runs no code meanwhile. */
	assert_true(untraced(fx));
	assert_true(poll_until(fx, job_stopped_states));
	assert_true(frozen(fx));
	assert_int_equal(kill(fx->child, SIGCONT), 0);
	assert_true(runs(fx, 0));
}

static int busy1_gone(struct fx *fx)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)fx->child,
		 (int)fx->sh->busy_tid[1]);
	return proc_pause_count(fx->p) == 2 && access(path, F_OK) < 0;
}

static void test_thread_exit(void **state)
{
	struct fx *fx = *state;
	double end;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_count(fx->p), 3);
	__atomic_store_n(&fx->sh->stop_one, 1, __ATOMIC_RELAXED);

	/* Sampling goes on without error while the thread exits; it is
	 * reaped (its /proc entry goes) and forgotten. */
	end = now_s() + WAIT_S;
	while (!busy1_gone(fx) && now_s() < end) {
		assert_int_equal(proc_pause_stop(fx->p), 0);
		assert_int_equal(proc_pause_resume(fx->p), 0);
		proc_pause_poll(fx->p);
		nap_ms(1);
	}
	assert_true(busy1_gone(fx));

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_count(fx->p), 2);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	assert_int_equal(proc_pause_resume(fx->p), 0);
	assert_true(advances(fx, 0, 1));
}

static void test_process_exit(void **state)
{
	struct fx *fx = *state;
	double end = now_s() + WAIT_S;
	int err = 0;

	assert_int_equal(sync_all(fx), 0);
	__atomic_store_n(&fx->sh->exit_all, 1, __ATOMIC_RELAXED);
	while (now_s() < end) {
		err = proc_pause_stop(fx->p);
		if (err == -ESRCH)
			break;
		assert_int_equal(err, 0);
		assert_int_equal(proc_pause_resume(fx->p), 0);
		proc_pause_poll(fx->p);
		nap_ms(1);
	}
	assert_int_equal(err, -ESRCH);
	assert_int_equal(proc_pause_count(fx->p), 0);
	assert_int_equal(proc_pause_stop(fx->p), -ESRCH);
	/* Every thread was reaped: nothing of the child is left. */
	assert_int_equal(kill(fx->child, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_process_killed(void **state)
{
	struct fx *fx = *state;
	double end = now_s() + WAIT_S;
	int err = -ETIMEDOUT;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(kill(fx->child, SIGKILL), 0);
	/* -ETIMEDOUT only if the dying threads got no CPU for seconds. */
	while (err == -ETIMEDOUT && now_s() < end)
		err = proc_pause_stop(fx->p);
	assert_int_equal(err, -ESRCH);
	assert_int_equal(proc_pause_count(fx->p), 0);
}

static void test_two_tracers(void **state)
{
	struct fx *fx = *state;
	struct proc_pause *q = NULL;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(proc_pause_new(&q, fx->child), 0);
	{
		pid_t tids[MAX_TIDS];
		size_t n = child_tids(fx->child, tids, MAX_TIDS);

		assert_int_equal(proc_pause_sync(q, tids, n), -EPERM);
	}
	assert_int_equal(proc_pause_count(q), 0);
	proc_pause_free(q);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(proc_pause_resume(fx->p), 0);
	assert_int_equal(tracer_of(fx->child), my_tid());
}

static int leader_stalled(struct fx *fx)
{
	return proc_state(fx->child) == 'D';
}

static int leader_untraced(struct fx *fx)
{
	return tracer_of(fx->child) == 0;
}

/* A thread that cannot stop (uninterruptible sleep, here a vfork() wait)
 * costs PROC_PAUSE_TIMEOUT_MS, holds nothing still, and is handled once it
 * leaves the kernel. */
static void test_stuck_thread(void **state)
{
	struct fx *fx = *state;
	pid_t keep[] = { fx->sh->busy_tid[0], fx->sh->busy_tid[1] };
	double end = now_s() + WAIT_S;

	assert_int_equal(sync_all(fx), 0);
	__atomic_store_n(&fx->sh->stall, 1, __ATOMIC_RELAXED);
	while (!leader_stalled(fx) && now_s() < end)
		nap_ms(1);
	assert_true(leader_stalled(fx));

	/* stop gives up, and the threads that did stop run again. */
	assert_int_equal(proc_pause_stop(fx->p), -ETIMEDOUT);
	assert_true(runs(fx, 0));
	assert_int_equal(proc_pause_count(fx->p), 3);
	assert_true(leader_stalled(fx));

	/* sync cannot detach it either: it stays traced, set aside. */
	assert_int_equal(proc_pause_sync(fx->p, keep, 2), -ETIMEDOUT);
	assert_int_equal(proc_pause_count(fx->p), 2);
	assert_int_equal(tracer_of(fx->child), my_tid());

	/* The rest is sampled as usual meanwhile. */
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_int_equal(proc_state(keep[0]), 't');
	assert_int_equal(proc_state(keep[1]), 't');
	assert_int_equal(proc_pause_resume(fx->p), 0);

	/* Let out, it stops for the interrupt and poll detaches it. */
	__atomic_store_n(&fx->sh->release, 1, __ATOMIC_RELAXED);
	assert_true(poll_until(fx, leader_untraced));
	assert_true(poll_until(fx, running_states));
	assert_int_equal(tracer_of(keep[0]), my_tid());
	assert_true(runs(fx, 1));
}

struct other_call {
	struct fx *fx;
	int stop, resume, sync;
};

static void *call_from_other_thread(void *arg)
{
	struct other_call *c = arg;

	c->stop = proc_pause_stop(c->fx->p);
	c->resume = proc_pause_resume(c->fx->p);
	c->sync = sync_all(c->fx);
	proc_pause_poll(c->fx->p);
	return NULL;
}

static void test_wrong_thread(void **state)
{
	struct fx *fx = *state;
	struct other_call c = { .fx = fx };
	pthread_t t;

	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(pthread_create(&t, NULL, call_from_other_thread, &c), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c.stop, -EINVAL);
	assert_int_equal(c.resume, -EINVAL);
	assert_int_equal(c.sync, -EINVAL);
	assert_int_equal(proc_pause_count(fx->p), 3);
	assert_int_equal(proc_pause_stop(fx->p), 0);
	assert_true(states_in(fx, "t"));
	assert_int_equal(proc_pause_resume(fx->p), 0);
	assert_true(runs(fx, 1));
}

#define CHILD_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arguments),
		CHILD_TEST(test_stop_resume),
		CHILD_TEST(test_free_detaches),
		CHILD_TEST(test_sync_detaches_unlisted),
		CHILD_TEST(test_signals_delivered),
		CHILD_TEST(test_detach_delivers_signal),
		CHILD_TEST(test_stolen_report),
		CHILD_TEST(test_group_stop),
		CHILD_TEST(test_seize_group_stopped),
		CHILD_TEST(test_free_group_stopped),
		CHILD_TEST(test_thread_exit),
		CHILD_TEST(test_process_exit),
		CHILD_TEST(test_process_killed),
		CHILD_TEST(test_two_tracers),
		CHILD_TEST(test_stuck_thread),
		CHILD_TEST(test_wrong_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
