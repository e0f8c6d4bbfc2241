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
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_state),
		cmocka_unit_test(test_active_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
