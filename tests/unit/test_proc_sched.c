/* test_proc_sched.c - the sampling thread's scheduler hint (proc_sched.c):
 * a 100 us slice where the kernel has custom slices (6.12+: sched_getattr
 * reports a fair task's slice), nice -10 as root, nothing with
 * PYSPYC_PROMPT=0.  Each case runs on a thread of its own: the hint is the
 * calling thread's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pyspyc/proc.h"

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

struct outcome {
	int ret;
	struct attr before, after;
};

static void get_attr(struct attr *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(syscall(SYS_sched_getattr, 0, a, sizeof(*a), 0), 0);
}

static void *prompt_thread(void *arg)
{
	struct outcome *o = arg;

	get_attr(&o->before);
	o->ret = proc_sched_prompt();
	get_attr(&o->after);
	return NULL;
}

static void run(struct outcome *o)
{
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, prompt_thread, o), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_prompt(void **state)
{
	struct outcome o;

	(void)state;
	unsetenv("PYSPYC_PROMPT");
	run(&o);
	assert_int_equal(o.after.policy, 0); /* still SCHED_OTHER */
	if (o.before.runtime) /* the kernel has slices */
		assert_int_equal(o.after.runtime, 100000);
	if (geteuid() == 0 && o.before.nice > -10)
		assert_int_equal(o.after.nice, -10);
	if (o.before.runtime || geteuid() == 0)
		assert_int_equal(o.ret, 1);
}

static void test_prompt_off(void **state)
{
	struct outcome o;

	(void)state;
	setenv("PYSPYC_PROMPT", "0", 1);
	run(&o);
	unsetenv("PYSPYC_PROMPT");
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.after.nice, o.before.nice);
	assert_int_equal(o.after.runtime, o.before.runtime);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prompt),
		cmocka_unit_test(test_prompt_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
