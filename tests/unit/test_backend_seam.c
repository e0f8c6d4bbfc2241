/* test_backend_seam.c - a backend other than the remote-memory walker,
 * plugged in through struct backend_ops alone (backend.h).  A fake backend
 * hands the sampler a raw sample it made up: one thread running f2 -> f1
 * -> f0, the code objects of the fuzzers' 3.11 image (image311.h), and
 * the image as its memory.  The stacks go through the sampler's filter, the symbolizer, the
 * stack table and the collapsed writer, none of which is told where they
 * came from: the profile names the three functions, root first, counted
 * once per tick.  A thread the backend marks RAW_TORN is left out of the
 * profile and counted torn by the sampler: the backend only flags it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image311.h"
#include "pyspyc/output.h"
#include "pyspyc/sampler.h"

#define TICKS 5
/* Root first, as the image names and numbers them (f0 at offset 0, f1 and
 * f2 at offset 2). */
#define STACK "f2 (main.py:32);f1 (main.py:22);f0 (main.py:11)"

struct fixture {
	uint8_t in[1 << 16];
	struct image im;
	struct py_target t;
	struct rmem m;
	struct stacktab *tab;
	uint64_t code[3];
	uint32_t torn_every; /* mark every torn_every-th sample torn (0: none) */
	/* The push backend's samples waiting: each one's OS thread and time,
	 * handed out in order. */
	struct { int32_t tid; int64_t at; } queue[8];
	uint32_t queued, taken;
	uint32_t opened, closed;
};

/* backend_ops.open gets only the target: the fixture reaches it here. */
static struct fixture *cur;

/* ---- the fake backend -------------------------------------------------- */

struct fake {
	struct backend b;   /* first, as backend.h asks */
	struct fixture *fx;
	struct raw_sample rs;
	struct raw_thread th;
	struct raw_frame frames[3];
	uint64_t addrs[3];
	struct backend_stats st;
};

static const struct backend_ops fake_ops;

static int fake_open(struct backend **out, const struct py_target *t,
		     const struct backend_opts *o)
{
	struct fake *f;

	*out = NULL;
	if (t != &cur->t || o->max_depth < 3)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fx = cur; /* f->b.ops is backend_open's to set */
	cur->opened++;
	*out = &f->b;
	return 0;
}

/* Innermost first: f0, f1, f2, each at an instruction of its own code. */
static int fake_sample(struct backend *b, struct backend_reads *x, struct raw_sample **out)
{
	struct fake *f = (struct fake *)b;
	const struct fixture *fx = f->fx;
	uint64_t adaptive = (uint64_t)fx->t.layout->code_adaptive;
	int i;

	if (x)
		x->done = 0; /* no reads made with the sample */
	for (i = 0; i < 3; i++)
		f->frames[i] = (struct raw_frame){ .code = fx->code[i],
						   .instr = fx->code[i] + adaptive + (i ? 2 : 0) };
	f->th = (struct raw_thread){ .tstate = 0x7000, .thread_id = 0x7100,
				     .first = 0, .depth = 3 };
	/* A thread marked torn is left out and counted by the consumers,
	 * which are never told why. */
	if (fx->torn_every && f->st.fast % fx->torn_every == fx->torn_every - 1)
		f->th.flags |= RAW_TORN;
	f->st.fast++;
	f->rs = (struct raw_sample){ .threads = &f->th, .nthreads = 1,
				     .frames = f->frames, .addrs = f->addrs, .nframes = 3,
				     .list_gen = 1 };
	*out = &f->rs;
	return 0;
}

static int fake_gil_held(struct backend *b)
{
	(void)b;
	return -ENOSYS; /* cannot tell: the sampler samples */
}

static struct rmem *fake_mem(struct backend *b)
{
	return &((struct fake *)b)->fx->m;
}

static void fake_stats(const struct backend *b, struct backend_stats *st)
{
	*st = ((const struct fake *)b)->st;
}

static void fake_close(struct backend *b)
{
	if (!b)
		return;
	((struct fake *)b)->fx->closed++;
	free(b);
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.sample = fake_sample,
	.gil_held = fake_gil_held,
	.mem = fake_mem,
	.stats = fake_stats,
	.set_recheck = NULL, /* no use for the symbolizer's recheck */
	.close = fake_close,
};

/* ---- the same, as a push backend (the eBPF backend's shape) ------------ */

/* The next queued sample, one thread at its own time; -EAGAIN when none. */
static int push_sample(struct backend *b, struct backend_reads *x, struct raw_sample **out)
{
	struct fake *f = (struct fake *)b;
	struct fixture *fx = f->fx;
	int err;

	if (fx->taken == fx->queued)
		return -EAGAIN;
	err = fake_sample(b, x, out);
	f->th.native_tid = fx->queue[fx->taken].tid;
	f->rs.at_ns = fx->queue[fx->taken].at;
	fx->taken++;
	return err;
}

static int push_list_due(struct backend *b, int64_t now)
{
	(void)b;
	(void)now;
	return 0; /* the threads' OS ids come with the samples */
}

static int push_list(struct backend *b, struct raw_sample **out)
{
	(void)b;
	*out = NULL;
	return -ENOSYS; /* never due */
}

static void push_set_tids(struct backend *b, const struct raw_sample *rs, const int32_t *tids,
			  int64_t now)
{
	(void)b;
	(void)rs;
	(void)tids;
	(void)now;
}

static int push_execd(struct backend *b)
{
	(void)b;
	return 0;
}

static const struct backend_ops push_ops = {
	.name = "fake-push",
	.open = fake_open,
	.sample = push_sample,
	.gil_held = fake_gil_held,
	.mem = fake_mem,
	.stats = fake_stats,
	.close = fake_close,
	.push = 1,
	.list_due = push_list_due,
	.list = push_list,
	.set_tids = push_set_tids,
	.execd = push_execd,
};

static int setup(void **state)
{
	static const struct stacktab_limits lim = { 1024, 4096, 4096 };
	struct fixture *fx = calloc(1, sizeof(*fx));
	size_t n;

	assert_non_null(fx);
	n = seed311_read(fx->in, sizeof(fx->in));
	seed311_target(fx->in, &fx->t, fx->code);
	seed311_attach(&fx->im, fx->in, n, &fx->t, &fx->m);
	assert_int_equal(stacktab_new(&fx->tab, &lim), 0);
	cur = fx;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	stacktab_free(fx->tab);
	free(fx);
	cur = NULL;
	return 0;
}

/* Sample TICKS times through fake_ops; the sampler's counters into *st and
 * the table written as collapsed stacks, returned (the caller frees it). */
static char *run(struct fixture *fx, struct sampler_stats *st)
{
	const struct sampler_opts o = {
		.idle = 1, /* every thread counts, on a CPU or not */
		.backend = &fake_ops,
		.walk = { .max_depth = 128, .max_threads = 16 },
		.sym = { .lineno = 1 },
	};
	struct sampler *s;
	struct profile p = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int i;

	memset(st, 0, sizeof(*st));
	assert_int_equal(sampler_new(&s, &fx->t, fx->tab, &o), 0);
	assert_int_equal(fx->opened, 1);
	assert_int_equal(sampler_begin(s, 1000000000, st), 0);
	for (i = 0; i < TICKS; i++)
		assert_int_equal(sampler_tick(s, 1000000000 + 10000000LL * (i + 1), st), 0);
	sampler_end(s, 0, st);
	sampler_free(s);
	assert_int_equal(fx->closed, 1);

	assert_int_equal(stacktab_snapshot(fx->tab, &p), 0);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(out_collapsed_write(&p, NULL, f), 0);
	fclose(f);
	profile_release(&p);
	return buf;
}

static void test_stacks_flow_through(void **state)
{
	struct fixture *fx = *state;
	struct sampler_stats st;
	char *out = run(fx, &st);

	/* One line, the one stack, once per tick. */
	assert_string_equal(out, STACK " 5\n");
	assert_int_equal(st.ticks, TICKS);
	assert_int_equal(st.samples, TICKS);
	assert_int_equal(st.asleep, 0);
	assert_int_equal(st.fast, TICKS); /* the backend's own counter */
	assert_int_equal(st.stacks, TICKS);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.errors, 0);
	free(out);
}

static void test_torn_left_out(void **state)
{
	struct fixture *fx = *state;
	struct sampler_stats st;
	char *out;

	fx->torn_every = 2;
	out = run(fx, &st);
	/* Samples 2 and 4 torn: read, but not counted. */
	assert_string_equal(out, STACK " 3\n");
	assert_int_equal(st.samples, TICKS);
	assert_int_equal(st.asleep, 0);
	assert_int_equal(st.stacks, TICKS - TICKS / 2);
	assert_int_equal(st.torn, TICKS / 2);
	assert_int_equal(st.errors, 0);
	free(out);
}

#define MS 1000000LL

/* One turn of the push sampler at now, the samples queued before it. */
static void push_turn(struct sampler *s, struct sampler_stats *st, int64_t now)
{
	assert_int_equal(sampler_tick(s, now, st), 0);
	assert_int_equal(cur->taken, cur->queued);
}

static void queue(struct fixture *fx, int32_t tid, int64_t at)
{
	fx->queue[fx->queued].tid = tid;
	fx->queue[fx->queued].at = at;
	fx->queued++;
}

/* A push backend samples a thread only when the kernel finds it on a CPU,
 * at the kernel's pace, and the engine drains at its own: a thread that
 * runs all the time may have no sample in one turn (taken just after the
 * drain, or kept waiting for a CPU).  It stays "active" for a while
 * (SEEN_NS, a quarter second) after its last sample, not only in the turn
 * that drained one; each thread is counted once however many samples. */
static void test_push_active_threads(void **state)
{
	const struct sampler_opts o = {
		.backend = &push_ops,
		.walk = { .max_depth = 128, .max_threads = 16 },
		.sym = { .lineno = 1 },
	};
	struct fixture *fx = *state;
	struct sampler_stats st = { 0 };
	struct sampler *s;
	const int64_t t0 = 1000 * MS;

	assert_int_equal(sampler_new(&s, &fx->t, fx->tab, &o), 0);
	assert_int_equal(sampler_begin(s, t0, &st), 0);
	push_turn(s, &st, t0 + 20 * MS); /* nothing yet */
	assert_int_equal(st.active, 0);
	queue(fx, 101, t0 + 25 * MS);
	queue(fx, 101, t0 + 35 * MS);
	queue(fx, 102, t0 + 38 * MS);
	push_turn(s, &st, t0 + 40 * MS);
	assert_int_equal(st.samples, 3);
	assert_int_equal(st.active, 2);
	/* A turn with no sample: both ran a moment ago. */
	push_turn(s, &st, t0 + 60 * MS);
	assert_int_equal(st.active, 2);
	queue(fx, 101, t0 + 250 * MS);
	push_turn(s, &st, t0 + 260 * MS);
	assert_int_equal(st.active, 2);
	/* 102's last sample is more than a quarter second old; 101's not. */
	push_turn(s, &st, t0 + 300 * MS);
	assert_int_equal(st.active, 1);
	push_turn(s, &st, t0 + 510 * MS);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.samples, 4);
	sampler_end(s, 0, &st);
	sampler_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stacks_flow_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push_active_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
