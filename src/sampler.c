/* sampler.c - fixed-rate sampling on absolute deadlines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "pyspyc/sampler.h"

struct sampler {
	struct py_walker *walker;
	struct py_symbolizer *sym;
	struct sampler_opts o;
};

int sampler_new(struct sampler **out, const struct py_target *t,
		struct stacktab *tab, const struct sampler_opts *o)
{
	struct sampler *s;
	int err;

	*out = NULL;
	if (!(o->rate_hz > 0))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	err = py_walker_new(&s->walker, t, &o->walk);
	if (err)
		goto out_free;
	err = py_sym_new(&s->sym, t, py_walker_mem(s->walker), tab, &o->sym);
	if (err)
		goto out_free;
	*out = s;
	return 0;

out_free:
	sampler_free(s);
	return err;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	py_sym_free(s->sym);
	py_walker_free(s->walker);
	free(s);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	/* EINTR returns early: the caller rechecks its stop flag. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

int sampler_run(struct sampler *s, volatile sig_atomic_t *stop,
		struct sampler_stats *st)
{
	int64_t period = (int64_t)(1e9 / s->o.rate_hz + 0.5);
	int64_t start = now_ns(), end = 0, next = start, now;
	struct walk_stats ws = { 0 };
	struct sym_stats ss = { 0 };
	int err = 0;

	if (period < 1)
		period = 1;
	/* The default 50 us timer slack would smear every deadline. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (s->o.duration_s > 0)
		end = start + (int64_t)(s->o.duration_s * 1e9);
	while (!*stop) {
		struct raw_sample *rs;
		const struct iovec *xl, *xr;
		uint32_t nx;
		int x_ok;

		now = now_ns();
		if (now < next) {
			sleep_until(next);
			continue; /* recheck stop and the time */
		}
		if (end && next >= end)
			break;
		st->ticks++;
		py_sym_prefetch(s->sym, &xl, &xr, &nx);
		err = py_walker_sample(s->walker, xl, xr, nx, &x_ok, &rs, &ws);
		if (err == -ESRCH) {
			st->target_gone = 1;
			err = 0;
			break;
		}
		if (err) {
			st->errors++;
			err = 0;
		} else {
			st->samples++;
			py_sym_add(s->sym, rs, x_ok, &ss);
		}
		next += period;
		now = now_ns();
		if (now - next >= period) {
			/* Fell behind by whole ticks: skip them, do not bunch. */
			int64_t missed = (now - next) / period;

			st->late += (uint64_t)missed;
			next += missed * period;
		}
	}
	st->stacks += ss.stacks;
	st->torn += ws.torn + ss.torn;
	st->dropped += ss.dropped;
	st->code_misses += ss.code_misses;
	st->errors += ss.errors;
	st->reads += py_walker_mem(s->walker)->reads;
	st->fast += ws.fast;
	st->elapsed_s = (double)(now_ns() - start) / 1e9;
	return err;
}
