/* proc_sched.c - the sampling thread asks the scheduler to run it at once.
 *
 * A sampler that shares a CPU with the process it samples wakes at its
 * tick while that process runs; a fair scheduler lets the running task go
 * on until its slice is used (milliseconds), so the tick is taken once the
 * target has gone to sleep, and short CPU bursts are seen less than they
 * ran: a bias against exactly what a profile should show (measured: 3 ms
 * bursts every 25 ms, sampled at 250 Hz from the same CPU, got 19-54
 * samples where 60 were due; 55-61 with the hint below).  The hint: a short
 * slice (EEVDF's custom slice, Linux 6.12 and later; a waking task with an
 * earlier deadline preempts the running one) and more weight (nice, with
 * CAP_SYS_NICE; before 6.12 the fair scheduler preempts for a heavier
 * waking task sooner).
 *
 * What it costs is the preemptions: the sampled process is switched out at
 * every tick that finds it on the sampler's CPU, and pays in its own time
 * (caches, the switch).  That grows with the rate: gunicorn's workers under
 * wrk at 1 kHz (bench.py's overhead section) lost about 9% of their
 * requests with the hint against about 5% without; at 100 Hz the two were
 * within the measurement's noise.  So it is taken by default up to
 * PROMPT_MAX_HZ, the default rate; PYSPYC_PROMPT=1 takes it at any rate and
 * PYSPYC_PROMPT=0 never.  With --blocking it is taken at any rate: there
 * the sampler holds the target's threads stopped while it reads, and being
 * switched out then stretches the pause (a signal sent to the target
 * meanwhile waits, and a second one of the same kind is merged with it:
 * test_blocking_delivers_signals_and_job_control, under two CPU hogs, lost
 * some of its 20 SIGUSR1 in 8 runs of 8 without the hint, in 1 of 10 with
 * it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pyspyc/proc.h"

#define PROMPT_SLICE_NS 100000u /* the kernel's smallest custom slice */
#define PROMPT_NICE (-10)
#define PROMPT_MAX_HZ 100.0

/* struct sched_attr as sched_setattr(2) takes it (its first version, 48
 * bytes); <linux/sched/types.h> clashes with <sched.h>. */
struct prompt_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static int set_attr(int32_t nice, uint64_t slice)
{
	struct prompt_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = SCHED_OTHER;
	a.sched_nice = nice;
	a.sched_runtime = slice;
	return syscall(SYS_sched_setattr, 0, &a, 0) ? -errno : 0;
}

int proc_sched_prompt_wanted(double rate_hz, int blocking, const char *env)
{
	if (env && !strcmp(env, "0"))
		return 0;
	if (env && !strcmp(env, "1"))
		return 1;
	return blocking || rate_hz <= PROMPT_MAX_HZ;
}

int proc_sched_prompt(double rate_hz, int blocking)
{
	int nice = getpriority(PRIO_PROCESS, 0);

	if (!proc_sched_prompt_wanted(rate_hz, blocking, getenv("PYSPYC_PROMPT")))
		return 0;
	if (nice > PROMPT_NICE && !set_attr(PROMPT_NICE, PROMPT_SLICE_NS))
		return 1;
	if (!set_attr(nice, PROMPT_SLICE_NS))
		return 1;
	/* No custom slice before 6.12 on some kernels' checks, or no
	 * sched_setattr: the weight alone. */
	return nice > PROMPT_NICE && !setpriority(PRIO_PROCESS, 0, PROMPT_NICE);
}
