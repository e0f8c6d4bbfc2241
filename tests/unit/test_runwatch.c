/* test_runwatch.c - the sched_switch watch against real processes: a
 * child that sleeps moves nothing, one woken is counted, one spinning is
 * seen on a CPU; threads' states, and those noted from /proc; the slot
 * bound; turning it off.  Needs root (loading an
 * eBPF program): skipped without it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/py_threads.h"
#include "pyspyc/runwatch.h"
#include "runwatch_abi.h"

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The children a test made, ended by the teardown when a failed check
 * left them (a spinner left running would load the tests after it). */
static pid_t kids[4];
static int nkids;

static int end_kids(void **state)
{
	(void)state;
	while (nkids > 0) {
		pid_t k = kids[--nkids];

		if (waitpid(k, NULL, WNOHANG) == 0) { /* still ours, running */
			kill(k, SIGKILL);
			waitpid(k, NULL, 0);
		}
	}
	return 0;
}

/* A child that waits on a pipe: 'w' wakes it for nothing, 's' makes it
 * spin for 10 s (it is killed before); EOF ends it. */
static pid_t child(int *wfd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		close(p[1]);
		while (read(p[0], &c, 1) == 1) {
			if (c == 's') {
				struct timespec t0, t;

				clock_gettime(CLOCK_MONOTONIC, &t0);
				do
					clock_gettime(CLOCK_MONOTONIC, &t);
				while ((t.tv_sec - t0.tv_sec) * 1000000000L +
				       (t.tv_nsec - t0.tv_nsec) < 10000000000L);
			}
		}
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	if (nkids < (int)(sizeof(kids) / sizeof(kids[0])))
		kids[nkids++] = pid;
	return pid;
}

/* Wait (up to 5 s) until pid sleeps: state S in /proc/PID/stat. */
static void wait_asleep(pid_t pid)
{
	char path[64], buf[256];
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 5000; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

		if (f)
			fclose(f);
		if (proc_stat_state(buf, n) == 'S')
			return;
		nap_ms(1);
	}
	fail_msg("pid %d never slept", (int)pid);
}

/* A clock's reading in ns: a child's CPU time. */
static uint64_t cpu_ns(clockid_t clk)
{
	struct timespec t;

	assert_int_equal(clock_gettime(clk, &t), 0);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static struct runwatch *open_or_skip(void)
{
	struct runwatch *rw = NULL;
	int err;

	if (geteuid() != 0)
		skip();
	err = runwatch_open(&rw);
	if (err == -ENOTSUP)
		skip(); /* a kernel or namespace without it: the fallback's case */
	assert_int_equal(err, 0);
	return rw;
}

static void test_sleep_wake_spin(void **state)
{
	struct runwatch *rw = open_or_skip();
	uint32_t slot;
	uint64_t c0, c1, after;
	clockid_t clk;
	int wfd, ran = 0, missed = 0, i;
	pid_t pid = child(&wfd);

	(void)state;
	wait_asleep(pid); /* in its read */
	assert_int_equal(runwatch_add(rw, pid, &slot), 0);
	c0 = runwatch_switches(rw, slot);
	nap_ms(50);
	/* Asleep: nothing moved, not on a CPU. */
	assert_true(runwatch_switches(rw, slot) == c0);
	assert_int_equal(runwatch_on_cpu(rw, slot), 0);
	/* Woken for a moment: counted, and off the CPU again once it has
	 * read (waits of up to 5 s: a loaded machine may be slow to run it). */
	assert_int_equal(write(wfd, "w", 1), 1);
	for (i = 0; i < 5000 && runwatch_switches(rw, slot) == c0; i++)
		nap_ms(1);
	assert_true(runwatch_switches(rw, slot) > c0);
	for (i = 0; i < 5000 && runwatch_on_cpu(rw, slot); i++)
		nap_ms(1);
	assert_int_equal(runwatch_on_cpu(rw, slot), 0);
	c1 = runwatch_switches(rw, slot);
	/* Spinning: whenever it ran between two looks (its CPU time moved
	 * between a clock read after the first look and one before the
	 * second), its count moved, or it is on a CPU, or its word says
	 * runnable at the second look: what the sampler asks (slept()).
	 * The kernel adds a thread's time before the switch event that
	 * takes it off: a look between the two still finds it on the CPU.
	 * A switch in may reach no program (runwatch.bpf.c: here 1 in some
	 * 3000): the thread then runs with no mark on its CPU and its count
	 * still, 5 looks of 200 in 1 run in 30; its word, 'R' since it was
	 * preempted or woken, says it.  On a loaded machine it may wait its
	 * turn through whole looks (runnable, not running: its stack cannot
	 * have moved), so the looks are judged by its clock, not all
	 * required to see it. */
	assert_int_equal(clock_getcpuclockid(pid, &clk), 0);
	assert_int_equal(write(wfd, "s", 1), 1);
	for (i = 0; i < 5000 && runwatch_switches(rw, slot) == c1; i++)
		nap_ms(1); /* it starts */
	c1 = runwatch_switches(rw, slot);
	after = cpu_ns(clk);
	for (i = 0; i < 200; i++) {
		uint64_t n, before;
		int on;

		nap_ms(1);
		before = cpu_ns(clk);
		n = runwatch_switches(rw, slot);
		on = runwatch_on_cpu(rw, slot);
		if (before > after) {
			ran++;
			missed += n == c1 && !on &&
				  runwatch_thread_state(rw, slot, pid) != 'R';
		}
		after = cpu_ns(clk);
		c1 = n;
	}
	assert_true(ran > 0);
	assert_int_equal(missed, 0);
	kill(pid, SIGKILL);
	close(wfd);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	runwatch_del(rw, pid, slot);
	runwatch_close(rw);
}

/* The per-process mark: set by the events of its process only, taken back
 * by the look that finds it. */
static void test_moved_mark(void **state)
{
	struct runwatch *rw = open_or_skip();
	uint32_t sa, sb;
	int wa, wb, i, m = 0;
	pid_t a = child(&wa), b = child(&wb);

	(void)state;
	wait_asleep(a);
	wait_asleep(b);
	assert_int_equal(runwatch_add(rw, a, &sa), 0);
	assert_int_equal(runwatch_add(rw, b, &sb), 0);
	(void)runwatch_take_moved(rw, sa); /* a slot's last owner's, if any */
	(void)runwatch_take_moved(rw, sb);
	nap_ms(50);
	assert_int_equal(runwatch_take_moved(rw, sa), 0);
	assert_int_equal(runwatch_take_moved(rw, sb), 0);
	/* a woken: its mark is set (waits of up to 5 s for it to run). */
	assert_int_equal(write(wa, "w", 1), 1);
	for (i = 0; i < 5000 && !(m = runwatch_take_moved(rw, sa)); i++)
		nap_ms(1);
	assert_int_equal(m, 1);
	/* Asleep again, and its mark taken once more (the switch off may
	 * have come after the look above): then nothing, until it wakes. */
	wait_asleep(a);
	nap_ms(20);
	(void)runwatch_take_moved(rw, sa);
	nap_ms(50);
	assert_int_equal(runwatch_take_moved(rw, sa), 0);
	/* b slept through all of it. */
	assert_int_equal(runwatch_take_moved(rw, sb), 0);
	assert_int_equal(runwatch_take_moved(rw, RW_MAX_SLOTS), 1); /* no such slot */
	close(wa);
	close(wb);
	assert_int_equal(waitpid(a, NULL, 0), a);
	assert_int_equal(waitpid(b, NULL, 0), b);
	runwatch_del(rw, a, sa);
	runwatch_del(rw, b, sb);
	runwatch_close(rw);
}

/* Wait (up to 5 s) until runwatch_thread_state(pid) is want. */
static int state_becomes(const struct runwatch *rw, uint32_t slot, pid_t pid, int want)
{
	int i, st = 0;

	for (i = 0; i < 5000 && (st = runwatch_thread_state(rw, slot, pid)) != want; i++)
		nap_ms(1);
	return st;
}

/* A thread's state from its scheduler events, as /proc has it: none to go
 * by before its first event since the watch; asleep in a read, 'S';
 * spinning, 'R' (on a CPU, or preempted: still runnable); stopped, 'T';
 * exited, 'X'.  A process not watched has none, nor one watched anew
 * until its next event. */
static void test_thread_states(void **state)
{
	struct runwatch *rw = open_or_skip();
	uint32_t slot;
	int wfd, wfd2;
	pid_t pid = child(&wfd), other = child(&wfd2);

	(void)state;
	wait_asleep(pid);
	wait_asleep(other);
	assert_int_equal(runwatch_add(rw, pid, &slot), 0);
	assert_int_equal(runwatch_thread_state(rw, slot, pid), -ENOENT); /* no event yet */
	assert_int_equal(write(wfd, "w", 1), 1);
	assert_int_equal(write(wfd2, "w", 1), 1);
	assert_int_equal(state_becomes(rw, slot, pid, 'S'), 'S');
	/* Watched again (after an exec, say): what was noted before is not
	 * taken for what it does now. */
	runwatch_del(rw, pid, slot);
	assert_int_equal(runwatch_add(rw, pid, &slot), 0);
	assert_int_equal(runwatch_thread_state(rw, slot, pid), -ENOENT);
	assert_int_equal(write(wfd, "w", 1), 1);
	assert_int_equal(state_becomes(rw, slot, pid, 'S'), 'S');
	wait_asleep(other);
	assert_int_equal(runwatch_thread_state(rw, slot, other), -ENOENT); /* not watched */
	assert_int_equal(write(wfd, "s", 1), 1);
	assert_int_equal(state_becomes(rw, slot, pid, 'R'), 'R');
	nap_ms(20); /* spinning: it stays runnable, on a CPU or not */
	assert_int_equal(runwatch_thread_state(rw, slot, pid), 'R');
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(state_becomes(rw, slot, pid, 'T'), 'T');
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(state_becomes(rw, slot, pid, 'R'), 'R');
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(state_becomes(rw, slot, pid, 'X'), 'X');
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(wfd);
	close(wfd2);
	assert_int_equal(waitpid(other, NULL, 0), other);
	runwatch_del(rw, pid, slot);
	assert_int_equal(runwatch_thread_state(NULL, slot, pid), -ENOENT);
	runwatch_close(rw);
}

/* A thread asleep since before its process was watched has no event to go
 * by: what /proc said of it is noted (runwatch_seed), as a state /proc
 * has, and its next event overwrites it.  A word the program wrote is not
 * overwritten, nor another thread's that shares the place. */
static void test_seeded_state(void **state)
{
	struct runwatch *rw = open_or_skip();
	uint32_t slot;
	int wfd;
	pid_t pid = child(&wfd);

	(void)state;
	wait_asleep(pid);
	assert_int_equal(runwatch_add(rw, pid, &slot), 0);
	assert_int_equal(runwatch_thread_state(rw, slot, pid), -ENOENT);
	runwatch_seed(rw, slot, pid, 'X'); /* exits are the program's to see */
	runwatch_seed(rw, slot, pid, 'Z');
	assert_int_equal(runwatch_thread_state(rw, slot, pid), -ENOENT);
	runwatch_seed(rw, slot, pid, 'S');
	assert_int_equal(runwatch_thread_state(rw, slot, pid), 'S');
	/* Another thread with the same place: this one's word stays. */
	runwatch_seed(rw, slot, pid + RW_MAX_THREADS, 'R');
	assert_int_equal(runwatch_thread_state(rw, slot, pid), 'S');
	assert_int_equal(runwatch_thread_state(rw, slot, pid + RW_MAX_THREADS), -ENOENT);
	/* Its next events overwrite the seed, and a seed does not overwrite
	 * them. */
	assert_int_equal(write(wfd, "s", 1), 1);
	assert_int_equal(state_becomes(rw, slot, pid, 'R'), 'R');
	runwatch_seed(rw, slot, pid, 'S');
	assert_int_equal(runwatch_thread_state(rw, slot, pid), 'R');
	/* Watched anew: what was noted before, seeded or not, is not taken
	 * for what it does now; a new seed is. */
	runwatch_del(rw, pid, slot);
	assert_int_equal(runwatch_add(rw, pid, &slot), 0);
	assert_int_equal(runwatch_thread_state(rw, slot, pid), -ENOENT);
	runwatch_seed(rw, slot, pid, 'T');
	assert_int_equal(runwatch_thread_state(rw, slot, pid), 'T');
	runwatch_seed(NULL, slot, pid, 'S'); /* no watch: nothing */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(wfd);
	runwatch_del(rw, pid, slot);
	runwatch_close(rw);
}

/* RW_MAX_SLOTS - 1 processes at once (one slot is the self check's):
 * the next is refused with -ENOSPC, and a slot given back is taken again. */
static void test_slot_bound(void **state)
{
	struct runwatch *rw = open_or_skip();
	static uint32_t slots[RW_MAX_SLOTS];
	uint32_t i, n = 0, extra;

	(void)state;
	while (n < RW_MAX_SLOTS && !runwatch_add(rw, 1000000 + (pid_t)n, &slots[n]))
		n++;
	assert_int_equal(n, RW_MAX_SLOTS - 1);
	assert_int_equal(runwatch_add(rw, 999, &extra), -ENOSPC);
	runwatch_del(rw, 1000000 + (pid_t)(n - 1), slots[n - 1]);
	assert_int_equal(runwatch_add(rw, 999, &extra), 0);
	assert_int_equal(extra, slots[n - 1]);
	runwatch_del(rw, 999, extra);
	for (i = 0; i + 1 < n; i++)
		runwatch_del(rw, 1000000 + (pid_t)i, slots[i]);
	runwatch_close(rw);
}

static void test_turned_off(void **state)
{
	struct runwatch *rw = NULL;

	(void)state;
	setenv("PYSPYC_RUNWATCH", "0", 1);
	assert_int_equal(runwatch_open(&rw), -ENOTSUP);
	assert_null(rw);
	unsetenv("PYSPYC_RUNWATCH");
	runwatch_close(NULL);
}

/* The light skeleton is what loads by default on a kernel that takes it
 * (5.17 and later: it relocates in the kernel), not libbpf's quietly in its
 * place; PYSPYC_RUNWATCH=libbpf loads libbpf's. */
static void test_loader(void **state)
{
	struct runwatch *rw = NULL;
	unsigned major = 0, minor = 0;
	struct utsname u;
	int err;

	(void)state;
	assert_int_equal(uname(&u), 0);
	assert_int_equal(sscanf(u.release, "%u.%u", &major, &minor), 2);
	unsetenv("PYSPYC_RUNWATCH");
	err = runwatch_open(&rw);
	if (err == -ENOTSUP)
		skip(); /* not root, or no BPF here */
	assert_int_equal(err, 0);
	if (major > 5 || (major == 5 && minor >= 17))
		assert_string_equal(runwatch_loader(rw), "light");
	runwatch_close(rw);
	setenv("PYSPYC_RUNWATCH", "libbpf", 1);
	assert_int_equal(runwatch_open(&rw), 0);
	assert_string_equal(runwatch_loader(rw), "libbpf");
	runwatch_close(rw);
	unsetenv("PYSPYC_RUNWATCH");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sleep_wake_spin, end_kids),
		cmocka_unit_test_teardown(test_thread_states, end_kids),
		cmocka_unit_test_teardown(test_seeded_state, end_kids),
		cmocka_unit_test_teardown(test_moved_mark, end_kids),
		cmocka_unit_test(test_slot_bound),
	};
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_turned_off),
		cmocka_unit_test(test_loader),
	};
	int fails;

	/* The watch's tests under each loader. */
	unsetenv("PYSPYC_RUNWATCH");
	fails = cmocka_run_group_tests_name("default loader", tests, NULL, NULL);
	setenv("PYSPYC_RUNWATCH", "libbpf", 1);
	fails += cmocka_run_group_tests_name("libbpf's skeleton", tests, NULL, NULL);
	unsetenv("PYSPYC_RUNWATCH");
	fails += cmocka_run_group_tests(once, NULL, NULL);
	return fails;
}
