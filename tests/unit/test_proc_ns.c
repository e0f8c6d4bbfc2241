/* test_proc_ns.c - thread ids across PID namespaces: the NSpid line parsed
 * from status text, and (as root) a process in a namespace of its own
 * mapped from its ids to ours. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyspyc/proc_ns.h"

static int parse(const char *text, int32_t *ids, int cap)
{
	return proc_nspid_parse(text, strlen(text), ids, cap);
}

static void test_parse_lines(void **state)
{
	int32_t ids[4];

	(void)state;
	assert_int_equal(parse("Name:\tpython\nNSpid:\t4242\n", ids, 4), 1);
	assert_int_equal(ids[0], 4242);
	/* host id first, innermost last; other lines around it */
	assert_int_equal(parse("Name:\tx\nNStgid:\t9\t1\nNSpid:\t12\t4\t2\nNSsid:\t1\n",
			       ids, 4), 3);
	assert_int_equal(ids[0], 12);
	assert_int_equal(ids[1], 4);
	assert_int_equal(ids[2], 2);
	/* first line of the text, spaces as separators */
	assert_int_equal(parse("NSpid: 7 1\n", ids, 4), 2);
	assert_int_equal(ids[1], 1);
	/* more fields than room: counted, the first cap kept */
	assert_int_equal(parse("NSpid:\t5\t4\t3\t2\t1\n", ids, 2), 5);
	assert_int_equal(ids[0], 5);
	assert_int_equal(ids[1], 4);
}

static void test_parse_absent_or_bad(void **state)
{
	int32_t ids[4];

	(void)state;
	/* no line: an older kernel, or not read far enough yet */
	assert_int_equal(parse("Name:\tpython\nPid:\t3\n", ids, 4), 0);
	assert_int_equal(parse("", ids, 4), 0);
	/* a name that merely contains the key is not the line */
	assert_int_equal(parse("Name:\tNSpid:\t1\n", ids, 4), 0);
	/* cut short: no end of line, or no number at all */
	assert_int_equal(parse("NSpid:\t12\t4", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\t", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\n", ids, 4), -EINVAL);
	/* not ids */
	assert_int_equal(parse("NSpid:\t12x\n", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\t0\n", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\t-3\n", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\t2147483648\n", ids, 4), -EINVAL);
	assert_int_equal(parse("NSpid:\t99999999999999999999\n", ids, 4), -EINVAL);
}

static void test_own_namespace_untouched(void **state)
{
	struct ns_map m;

	(void)state;
	assert_int_equal(ns_map_init(&m, getpid()), 0);
	assert_int_equal(m.active, 0);
	assert_int_equal(m.inner_pid, getpid());
	assert_int_equal(ns_map_host(&m, 1234), 1234);
	assert_int_equal(ns_map_inner(&m, getpid()), 0);
	ns_map_release(&m);
	ns_map_release(NULL);
	assert_int_equal(ns_map_init(&m, 0x3fffff), -ESRCH);
	ns_map_release(&m);
}

/* ---- a process in a PID namespace of its own ---------------------------- */

static int report_fd;

static void *second_thread(void *arg)
{
	int32_t tid = (int32_t)syscall(SYS_gettid);

	(void)arg;
	if (write(report_fd, &tid, sizeof(tid)) != sizeof(tid))
		_exit(1);
	pause();
	return NULL;
}

/* In the child: a new namespace, whose first process (pid 1 there) reports
 * its own pid and then a second thread's tid, and waits to be killed. */
static void namespaced(int fd)
{
	int32_t self;
	pid_t inner;
	pthread_t th;

	if (unshare(CLONE_NEWPID))
		_exit(77);
	inner = fork();
	if (inner < 0)
		_exit(1);
	if (inner > 0) {
		waitpid(inner, NULL, 0);
		_exit(0);
	}
	self = (int32_t)getpid();
	report_fd = fd;
	if (write(fd, &self, sizeof(self)) != sizeof(self))
		_exit(1);
	if (pthread_create(&th, NULL, second_thread, NULL))
		_exit(1);
	pause();
	_exit(0);
}

static int read_all(int fd, int32_t *v)
{
	size_t got = 0;

	while (got < sizeof(*v)) {
		ssize_t n = read(fd, (char *)v + got, sizeof(*v) - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* The one child of pid, by our ids. */
static int32_t child_of(pid_t pid)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return (int32_t)atoi(buf);
}

static void test_namespaced_process(void **state)
{
	int32_t host = 0, inner_pid = 0, inner_tid = 0, host_tid;
	struct ns_map m;
	int p[2], st;
	pid_t mid;

	(void)state;
	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		close(p[0]);
		namespaced(p[1]);
	}
	close(p[1]);
	if (read_all(p[0], &inner_pid)) {
		waitpid(mid, &st, 0);
		close(p[0]);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
			skip(); /* not allowed to make a namespace: not root */
		fail_msg("the namespaced child did not start");
	}
	assert_int_equal(read_all(p[0], &inner_tid), 0);
	close(p[0]);
	host = child_of(mid);
	if (host <= 0)
		kill(mid, SIGKILL);
	assert_true(host > 0);
	assert_int_equal(inner_pid, 1);
	assert_true(inner_tid > 1);

	assert_int_equal(ns_map_init(&m, host), 0);
	assert_int_equal(m.active, 1);
	assert_int_equal(m.inner_pid, 1);
	assert_int_equal(m.n, 2);
	assert_int_equal(ns_map_host(&m, 1), host);
	host_tid = ns_map_host(&m, inner_tid);
	assert_true(host_tid > 0 && host_tid != host);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)host, (int)host_tid);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_int_equal(ns_map_inner(&m, host), 1);
	assert_int_equal(ns_map_inner(&m, host_tid), inner_tid);
	/* an id the namespace has no task for is unknown, not taken as ours */
	assert_int_equal(ns_map_host(&m, inner_tid + 100), 0);
	assert_int_equal(ns_map_inner(&m, getpid()), 0);
	/* read again: the same pairs */
	assert_int_equal(ns_map_read(&m), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(ns_map_host(&m, inner_tid), host_tid);
	ns_map_release(&m);

	kill(host, SIGKILL);
	waitpid(mid, &st, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_parse_absent_or_bad),
		cmocka_unit_test(test_own_namespace_untouched),
		cmocka_unit_test(test_namespaced_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
