/* test_proc_sched.c - the sampling thread's scheduler hint (proc_sched.c):
 * a 100 us slice where the kernel has custom slices (6.12+: sched_getattr
 * reports a fair task's slice), nice -10 as root, nothing with
 * PYSPYC_PROMPT=0, and by default only up to the default rate.  Each case
 * runs on a thread of its own: the hint is the calling thread's.
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
	double rate;  /* the rate to ask at; 0: the default, 100 Hz */
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
	o->ret = proc_sched_prompt(o->rate ? o->rate : 100.0, 0);
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
	struct outcome o = { 0 };

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
	struct outcome o = { 0 };

	(void)state;
	setenv("PYSPYC_PROMPT", "0", 1);
	run(&o);
	unsetenv("PYSPYC_PROMPT");
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.after.nice, o.before.nice);
	assert_int_equal(o.after.runtime, o.before.runtime);
}

/* Past the default rate the hint costs the sampled processes more than
 * it gives (proc_sched.c): not taken unless asked for, or --blocking. */
static void test_prompt_by_rate(void **state)
{
	(void)state;
	assert_true(proc_sched_prompt_wanted(100.0, 0, NULL));
	assert_true(proc_sched_prompt_wanted(10.0, 0, NULL));
	assert_false(proc_sched_prompt_wanted(101.0, 0, NULL));
	assert_false(proc_sched_prompt_wanted(1000.0, 0, NULL));
	assert_true(proc_sched_prompt_wanted(1000.0, 0, "1"));
	assert_false(proc_sched_prompt_wanted(100.0, 0, "0"));
	assert_false(proc_sched_prompt_wanted(1000.0, 0, "")); /* set, empty: the default */
	assert_true(proc_sched_prompt_wanted(50.0, 0, ""));
	/* --blocking holds the target stopped while it reads: at any rate. */
	assert_true(proc_sched_prompt_wanted(1000.0, 1, NULL));
	assert_false(proc_sched_prompt_wanted(1000.0, 1, "0"));
}

static void test_prompt_fast_rate(void **state)
{
	struct outcome o = { .rate = 1000.0 };

	(void)state;
	unsetenv("PYSPYC_PROMPT");
	run(&o);
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.after.nice, o.before.nice);
	assert_int_equal(o.after.runtime, o.before.runtime);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prompt),
		cmocka_unit_test(test_prompt_off),
		cmocka_unit_test(test_prompt_by_rate),
		cmocka_unit_test(test_prompt_fast_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
