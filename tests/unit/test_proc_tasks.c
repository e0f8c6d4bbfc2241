/* test_proc_tasks.c - listing a process's threads through one kept handle
 * on /proc/PID/task (proc_tasks_open, proc_tasks_read): every thread, in
 * order, read again from the start at each call (threads that start and end
 * between two calls show in the second), within the room given, and what a
 * handle on an exited process gives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyspyc/proc.h"

/* More than one getdents64 buffer holds (8 KB, at most 32 bytes an entry):
 * the listing must take a second call and lose nothing at the seam. */
#define MANY 400

struct crew {
	pthread_t th[MANY];
	int32_t tid[MANY];
	int n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int started, leave;
};

static void *member(void *arg)
{
	struct crew *c = arg;

	pthread_mutex_lock(&c->lock);
	c->tid[c->started++] = (int32_t)gettid();
	pthread_cond_broadcast(&c->cond);
	while (!c->leave)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* n threads that wait until crew_end(); their tids in c->tid. */
static void crew_start(struct crew *c, int n)
{
	pthread_attr_t a;
	int i;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->started = c->leave = 0;
	c->n = n;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (i = 0; i < n; i++)
		assert_int_equal(pthread_create(&c->th[i], &a, member, c), 0);
	pthread_attr_destroy(&a);
	pthread_mutex_lock(&c->lock);
	while (c->started < n)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void crew_end(struct crew *c)
{
	int i;

	pthread_mutex_lock(&c->lock);
	c->leave = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < c->n; i++)
		pthread_join(c->th[i], NULL);
}

static int listed(const int32_t *tids, int n, int32_t tid)
{
	int i;

	for (i = 0; i < n; i++)
		if (tids[i] == tid)
			return 1;
	return 0;
}

static void assert_sorted(const int32_t *tids, int n)
{
	int i;

	for (i = 1; i < n; i++)
		assert_true(tids[i - 1] < tids[i]);
}

static void test_lists_every_thread_again(void **state)
{
	static struct crew c;
	static int32_t tids[MANY + 8];
	int fd, n, i;

	(void)state;
	fd = proc_tasks_open(getpid());
	assert_true(fd >= 0);
	n = proc_tasks_read(fd, tids, MANY + 8);
	assert_int_equal(n, 1);
	assert_int_equal(tids[0], getpid());

	/* The same handle, read again, sees the threads started since. */
	crew_start(&c, MANY);
	n = proc_tasks_read(fd, tids, MANY + 8);
	assert_int_equal(n, MANY + 1);
	assert_sorted(tids, n);
	assert_true(listed(tids, n, getpid()));
	for (i = 0; i < MANY; i++)
		assert_true(listed(tids, n, c.tid[i]));
	/* As proc_tasks() does through a handle of its own. */
	assert_int_equal(proc_tasks(getpid(), tids, MANY + 8), MANY + 1);

	/* Room for fewer: that many, and nothing written past them. */
	tids[5] = -7;
	assert_int_equal(proc_tasks_read(fd, tids, 5), 5);
	assert_int_equal(tids[5], -7);
	assert_sorted(tids, 5);

	/* And the ones that ended since are gone from it.  pthread_join
	 * returns when a thread's id is cleared, which comes before the
	 * kernel drops its task from /proc (a sanitizer run listed one of
	 * them there once): read again until they are gone, 5 s at most. */
	crew_end(&c);
	for (i = 0; i < 500; i++) {
		n = proc_tasks_read(fd, tids, MANY + 8);
		if (n == 1)
			break;
		usleep(10000);
	}
	assert_int_equal(n, 1);
	assert_int_equal(tids[0], getpid());
	close(fd);
}

static void test_exited_process(void **state)
{
	int32_t tids[8];
	pid_t child;
	int fd, status, n;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	fd = proc_tasks_open(child);
	assert_true(fd >= 0);
	n = proc_tasks_read(fd, tids, 8);
	assert_int_equal(n, 1);
	assert_int_equal(tids[0], child);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	/* Its handle lists nothing once it is gone, and says no error. */
	assert_int_equal(proc_tasks_read(fd, tids, 8), 0);
	close(fd);
	assert_int_equal(proc_tasks_open(child), -ESRCH);
	assert_int_equal(proc_tasks(child, tids, 8), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_every_thread_again),
		cmocka_unit_test(test_exited_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
