/* test_py_interps.c - the walker follows the runtime's interpreter list, over
 * fake memory images (tests/fuzz/image.c) built here: sub-interpreters that
 * appear after the first sample are walked; an OS thread with a thread
 * state in two interpreters is one stack, the sub-interpreter's frames on
 * top; a list without the main interpreter is -ESTALE; a list longer than
 * PY_MAX_INTERPS is counted and its main interpreter still walked; 3.12+
 * sub-interpreters with a GIL of their own have their holder found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "../fuzz/image.c"
#include "pyspyc/py_walk.h"

/* One arena of zeroed memory holds every structure that stays put; what
 * changes between samples is in regions of its own, on pages of their own
 * (reads of neighbouring pages are merged into one, which would read past
 * a region listed first into the arena). */
#define RT 0x80000ull            /* a runtime whose list head changes */
#define SUB 0x90000ull           /* a sub-interpreter that changes */
#define SIDE 0x400u
#define BASE 0x100000ull
#define ARENA 0x80000u
#define INTERP(k) (BASE + 0x1000 + 0x400 * (uint64_t)(k))
#define TSTATE(j) (BASE + 0x60000 + 0x1000 * (uint64_t)(j))
#define FRAME(j) (BASE + 0x70000 + 0x200 * (uint64_t)(j))
#define GIL(k) (BASE + 0x78000 + 0x100 * (uint64_t)(k))
#define MAX_INTERPS_TESTED 300

static uint8_t arena[ARENA];
static uint8_t side[8][SIDE];

struct fixture {
	struct image im;
	struct py_target t;
	const struct py_layout *L;
	struct py_walker *w;
	struct walk_stats st;
};

static void put64(uint64_t addr, int32_t off, uint64_t v)
{
	assert_true(off >= 0);
	assert_true(addr - BASE + (uint64_t)off + 8 <= ARENA);
	memcpy(arena + (addr - BASE) + off, &v, 8);
}

static void side_put64(unsigned int i, int32_t off, uint64_t v)
{
	assert_true(off >= 0 && (uint32_t)off + 8 <= SIDE);
	memcpy(side[i] + off, &v, 8);
}

static void fixture_init(struct fixture *fx, uint32_t version)
{
	memset(fx, 0, sizeof(*fx));
	memset(arena, 0, sizeof(arena));
	memset(side, 0, sizeof(side));
	image_init(&fx->im, NULL, 0);
	image_target(&fx->t, 0);
	fx->L = py_layout_find(version);
	assert_non_null(fx->L);
	fx->t.layout_buf = *fx->L;
	fx->t.layout = &fx->t.layout_buf;
	fx->t.runtime = BASE;
	fx->t.interp = INTERP(0);
}

/* side[i] is at addr in the samples of mask (bit n: sample n). */
static void side_region(struct fixture *fx, unsigned int i, uint64_t addr, uint8_t mask)
{
	struct image_region *r = &fx->im.r[fx->im.n++];

	r->addr = addr;
	r->data = side[i];
	r->len = SIDE;
	r->samples = mask;
}

static void fixture_start(struct fixture *fx)
{
	struct walk_opts o = { .max_depth = 64, .max_threads = 16 };
	struct image_region *r = &fx->im.r[fx->im.n++];

	r->addr = BASE;
	r->data = arena;
	r->len = ARENA;
	assert_int_equal(py_walker_new(&fx->w, &fx->t, &o), 0);
	image_attach(&fx->im, py_walker_mem(fx->w));
}

static int sample(struct fixture *fx, unsigned int n, struct raw_sample **rs)
{
	int x_ok;

	image_set_sample(&fx->im, n);
	return py_walker_sample(fx->w, NULL, NULL, 0, &x_ok, rs, &fx->st);
}

/* A thread state j of interpreter k, thread id tid, next thread state, and
 * (frame model only) its frames: codes[0] innermost, ncodes of them. */
static void tstate(struct fixture *fx, unsigned int j, uint64_t interp, uint64_t tid,
		   uint64_t next, const uint64_t *codes, unsigned int ncodes)
{
	const struct py_layout *L = fx->L;
	unsigned int i;

	put64(TSTATE(j), L->tstate_interp, interp);
	put64(TSTATE(j), L->tstate_next, next);
	put64(TSTATE(j), L->tstate_thread_id, tid);
	if (!ncodes)
		return;
	assert_int_equal(L->frame_model, PY_FRAMES_OBJECTS);
	put64(TSTATE(j), L->tstate_frame, FRAME(8 * j));
	for (i = 0; i < ncodes; i++) {
		put64(FRAME(8 * j + i), L->frame_code, codes[i]);
		put64(FRAME(8 * j + i), L->frame_refcnt, 1); /* live */
		if (i + 1 < ncodes)
			put64(FRAME(8 * j + i), L->frame_back, FRAME(8 * j + i + 1));
	}
}

static const struct raw_thread *thread_of(const struct raw_sample *rs, uint64_t tid)
{
	uint32_t i;

	for (i = 0; i < rs->nthreads; i++)
		if (rs->threads[i].thread_id == tid)
			return &rs->threads[i];
	fail_msg("no thread %#llx", (unsigned long long)tid);
	return NULL;
}

/* Main interpreter 0 with threads A (0xa00) and B (0xb00, calling frames
 * 0xb1 <- 0xb0); from sample 1 on, sub-interpreter SUB at the head of the
 * list, whose one thread state is B's OS thread (0xb00) running 0x51; in
 * sample 3 the list has lost the main interpreter. */
static void stitch_version(uint32_t version)
{
	static const uint64_t a[] = { 0xa0 }, b[] = { 0xb1, 0xb0 }, s[] = { 0x51 };
	struct fixture fx;
	const struct py_layout *L;
	const struct raw_thread *th;
	struct raw_sample *rs;
	unsigned int n;

	fixture_init(&fx, version);
	L = fx.L;
	fx.t.runtime = RT;
	side_put64(0, L->runtime_interp_head, INTERP(0));
	side_region(&fx, 0, RT, 0x01);
	side_put64(1, L->runtime_interp_head, SUB);
	side_region(&fx, 1, RT, 0xfe);
	side_put64(2, L->interp_next, INTERP(0));
	side_put64(2, L->interp_threads_head, TSTATE(2));
	side_region(&fx, 2, SUB, 0xf7);
	side_put64(3, L->interp_threads_head, TSTATE(2));
	side_region(&fx, 3, SUB, 0x08);
	put64(INTERP(0), L->interp_threads_head, TSTATE(0));
	tstate(&fx, 0, INTERP(0), 0xa00, TSTATE(1), a, 1);
	tstate(&fx, 1, INTERP(0), 0xb00, 0, b, 2);
	tstate(&fx, 2, SUB, 0xb00, 0, s, 1);
	fixture_start(&fx);

	assert_int_equal(sample(&fx, 0, &rs), 0);
	assert_int_equal(rs->nthreads, 2);
	assert_int_equal(thread_of(rs, 0xb00)->depth, 2);
	/* Twice: the second may take the fast path. */
	for (n = 1; n <= 2; n++) {
		assert_int_equal(sample(&fx, n, &rs), 0);
		assert_int_equal(rs->nthreads, 2);
		assert_int_equal(thread_of(rs, 0xa00)->depth, 1);
		th = thread_of(rs, 0xb00);
		assert_int_equal(th->depth, 3);
		assert_int_equal(th->flags & (RAW_TORN | RAW_TRUNCATED), 0);
		assert_int_equal(th->tstate, TSTATE(1));
		assert_int_equal(rs->frames[th->first].code, 0x51);
		assert_int_equal(rs->frames[th->first + 1].code, 0xb1);
		assert_int_equal(rs->frames[th->first + 2].code, 0xb0);
	}
	if (sample(&fx, 3, &rs) != -ESTALE)
		fail_msg("%#x: the list without its main interpreter is not -ESTALE", version);
	assert_int_equal(fx.st.torn, 0);
	assert_int_equal(fx.st.interps_capped, 0);
	py_walker_free(fx.w);
}

static void test_subinterpreter_stitched(void **state)
{
	(void)state;
	stitch_version(0x0207);
	stitch_version(0x0306);
	stitch_version(0x0309);
	stitch_version(0x030a);
}

/* 3.9: interpreter 1 at the head of the list, the main interpreter 0
 * after it. */
static void fixture_two(struct fixture *fx)
{
	fixture_init(fx, 0x0309);
	put64(BASE, fx->L->runtime_interp_head, INTERP(1));
	put64(INTERP(1), fx->L->interp_next, INTERP(0));
}

/* Thread states of one interpreter with the same thread id stay apart. */
static void test_same_interpreter_not_stitched(void **state)
{
	static const uint64_t a[] = { 0xa0 }, b[] = { 0xb0 };
	struct fixture fx;
	struct raw_sample *rs;

	(void)state;
	fixture_two(&fx);
	put64(INTERP(0), fx.L->interp_threads_head, TSTATE(0));
	tstate(&fx, 0, INTERP(0), 0xa00, TSTATE(1), a, 1);
	tstate(&fx, 1, INTERP(0), 0xa00, 0, b, 1);
	fixture_start(&fx);
	assert_int_equal(sample(&fx, 0, &rs), 0);
	assert_int_equal(rs->nthreads, 2);
	assert_int_equal(rs->threads[0].depth, 1);
	assert_int_equal(rs->threads[1].depth, 1);
	py_walker_free(fx.w);
}

/* Two interpreters and no thread in either (found by fuzz_walk: nothing to
 * stitch, nothing to walk). */
static void test_no_threads(void **state)
{
	struct fixture fx;
	struct raw_sample *rs;

	(void)state;
	fixture_two(&fx);
	fixture_start(&fx);
	assert_int_equal(sample(&fx, 0, &rs), 0);
	assert_int_equal(rs->nthreads, 0);
	py_walker_free(fx.w);
}

/* More interpreters than PY_MAX_INTERPS, the main one last: counted, and
 * the main interpreter's thread still walked. */
static void test_interps_capped(void **state)
{
	static const uint64_t a[] = { 0xa0 };
	struct fixture fx;
	struct raw_sample *rs;
	unsigned int k, n;

	(void)state;
	assert_true(MAX_INTERPS_TESTED > PY_MAX_INTERPS);
	fixture_init(&fx, 0x0309);
	put64(BASE, fx.L->runtime_interp_head, INTERP(MAX_INTERPS_TESTED - 1));
	for (k = 1; k < MAX_INTERPS_TESTED; k++)
		put64(INTERP(k), fx.L->interp_next, INTERP(k - 1));
	put64(INTERP(0), fx.L->interp_threads_head, TSTATE(0));
	tstate(&fx, 0, INTERP(0), 0xa00, 0, a, 1);
	fixture_start(&fx);
	for (n = 0; n < 2; n++) {
		assert_int_equal(sample(&fx, n, &rs), 0);
		assert_int_equal(rs->nthreads, 1);
		assert_int_equal(rs->threads[0].depth, 1);
	}
	assert_int_equal(fx.st.interps_capped, 2);
	py_walker_free(fx.w);
}

/* 3.12: interpreter 1 has a GIL of its own, held by its thread; interpreter
 * 2 shares the main interpreter's, held by the main thread. */
static void test_own_gil(void **state)
{
	struct fixture fx;
	const struct py_layout *L;
	struct raw_sample *rs;
	unsigned int n;

	(void)state;
	fixture_init(&fx, 0x030c);
	L = fx.L;
	assert_int_equal(L->gil_model, PY_GIL_INTERP_STATE);
	put64(BASE, L->runtime_interp_head, INTERP(2));
	put64(INTERP(2), L->interp_next, INTERP(1));
	put64(INTERP(1), L->interp_next, INTERP(0));
	for (n = 0; n < 3; n++) {
		put64(INTERP(n), L->interp_threads_head, TSTATE(n));
		tstate(&fx, n, INTERP(n), 0x100 * (n + 1), 0, NULL, 0);
	}
	put64(INTERP(0), L->interp_ceval_gil, GIL(0));
	put64(INTERP(1), L->interp_ceval_gil, GIL(1));
	put64(INTERP(2), L->interp_ceval_gil, GIL(0));
	put64(GIL(0), L->gil_locked, 1);
	put64(GIL(0), L->gil_last_holder, TSTATE(0));
	put64(GIL(1), L->gil_locked, 1);
	put64(GIL(1), L->gil_last_holder, TSTATE(1));
	fixture_start(&fx);
	for (n = 0; n < 2; n++) {
		assert_int_equal(sample(&fx, n, &rs), 0);
		assert_int_equal(rs->nthreads, 3);
		assert_true(rs->gil_known);
		assert_true(thread_of(rs, 0x100)->flags & RAW_GIL);
		assert_true(thread_of(rs, 0x200)->flags & RAW_GIL);
		assert_false(thread_of(rs, 0x300)->flags & RAW_GIL);
	}
	py_walker_free(fx.w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subinterpreter_stitched),
		cmocka_unit_test(test_same_interpreter_not_stitched),
		cmocka_unit_test(test_no_threads),
		cmocka_unit_test(test_interps_capped),
		cmocka_unit_test(test_own_gil),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
