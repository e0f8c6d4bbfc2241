/* test_py_threads.c - the pure parts of py_threads: the state letter of a
 * /proc stat line, and the one rule record, top and dump count a thread as
 * active by (a stopped thread never is, GIL or not).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_threads.h"

static void test_stat_state(void **state)
{
	static const char plain[] = "42 (python3) R 1 42 42 0 -1";
	static const char odd[] = "42 (a) b (c) T 1 42 42 0 -1"; /* ")" in the name */

	(void)state;
	assert_int_equal(proc_stat_state(plain, strlen(plain)), 'R');
	assert_int_equal(proc_stat_state(odd, strlen(odd)), 'T');
	assert_int_equal(proc_stat_state("42 (x", 5), -EINVAL);
}

static void test_active_rule(void **state)
{
	(void)state;
	/* Without the GIL: only running or runnable. */
	assert_int_equal(thread_state_active('R', 0), 1);
	assert_int_equal(thread_state_active('S', 0), 0);
	assert_int_equal(thread_state_active('D', 0), 0);
	/* The GIL holder runs Python, or keeps the others waiting... */
	assert_int_equal(thread_state_active('R', 1), 1);
	assert_int_equal(thread_state_active('S', 1), 1);
	assert_int_equal(thread_state_active('D', 1), 1);
	/* ...unless it is stopped: SIGSTOP, job control, a tracer. */
	assert_int_equal(thread_state_active('T', 1), 0);
	assert_int_equal(thread_state_active('t', 1), 0);
	assert_int_equal(thread_state_active('T', 0), 0);
	assert_int_equal(thread_state_active('t', 0), 0);
}

/* Threads of this process that wait until told to end, telling their tid. */
struct waiter {
	pthread_t th;
	pid_t tid;
	int up;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *end;
};

static void *wait_here(void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(w->mu);
	w->tid = (pid_t)syscall(SYS_gettid);
	w->up = 1;
	pthread_cond_broadcast(w->cv);
	while (!*w->end)
		pthread_cond_wait(w->cv, w->mu);
	pthread_mutex_unlock(w->mu);
	return NULL;
}

/* Before 3.11 a thread's tid comes from its pthread descriptor, at an
 * offset found by search.  A thread state whose thread has not run yet
 * holds its creator's id: the search must leave that second copy out, not
 * fail at every offset (it did: threads then showed without a tid). */
static void test_descriptor_tids_with_unstarted_thread(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int end = 0, i;
	struct waiter w[2];
	static struct py_target t;
	struct rmem mem;
	struct thread_map *tm;
	struct raw_thread th[4];
	int32_t tids[4];
	struct raw_sample rs;

	(void)state;
	for (i = 0; i < 2; i++) {
		w[i] = (struct waiter){ .mu = &mu, .cv = &cv, .end = &end };
		assert_int_equal(pthread_create(&w[i].th, NULL, wait_here, &w[i]), 0);
	}
	pthread_mutex_lock(&mu);
	while (!w[0].up || !w[1].up)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	memset(&t, 0, sizeof(t));
	t.pid = getpid();
	t.layout = &t.layout_buf;
	t.layout_buf.tstate_native_thread_id = -1; /* 3.10 and older */
	rmem_init(&mem, t.pid);
	assert_int_equal(thread_map_new(&tm, &t, &mem), 0);
	memset(th, 0, sizeof(th));
	th[0].thread_id = (uint64_t)pthread_self();
	th[1].thread_id = (uint64_t)w[0].th;
	th[2].thread_id = (uint64_t)pthread_self(); /* made by main, not run yet */
	th[3].thread_id = (uint64_t)w[1].th;
	memset(&rs, 0, sizeof(rs));
	rs.threads = th;
	rs.nthreads = 4;
	rs.list_gen = 1;
	thread_map_tids(tm, &rs, tids);
	assert_int_equal(tids[0], getpid());
	assert_int_equal(tids[1], w[0].tid);
	assert_int_equal(tids[3], w[1].tid);
	/* Into the consumer's array: the backend's sample is left alone. */
	for (i = 0; i < 4; i++)
		assert_int_equal(th[i].native_tid, 0);
	thread_map_free(tm);

	pthread_mutex_lock(&mu);
	end = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_state),
		cmocka_unit_test(test_active_rule),
		cmocka_unit_test(test_descriptor_tids_with_unstarted_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
