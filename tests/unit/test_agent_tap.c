/* test_agent_tap.c - a request's own window on a service's sample stream.
 *
 * A tap counts what its stacktab counted between the tap's start and its
 * last look, across rotations, exactly once; two taps over the same time
 * both get every sample, while writers add and the owner rotates; a
 * profile of several taps puts each service's stacks under its marker
 * with the right frames.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/agent_tap.h"
#include "pyspyc/stacktab.h"

static const struct stacktab_limits lim = {
	.max_stacks = 10000,
	.max_frames = 1000,
	.max_strings = 1000,
};

static struct stacktab *new_tab(void)
{
	struct stacktab *t = NULL;

	assert_int_equal(stacktab_new(&t, &lim), 0);
	return t;
}

static uint32_t frame_id(struct stacktab *t, const char *name)
{
	struct frame_key k = { .line = 1, .kind = FRAME_APP };
	uint32_t id = UINT32_MAX;

	assert_int_equal(stacktab_string(t, name, strlen(name), &k.name), 0);
	assert_int_equal(stacktab_string(t, "m.py", 4, &k.file), 0);
	assert_int_equal(stacktab_frame(t, &k, &id), 0);
	return id;
}

static void add_n(struct stacktab *t, const uint32_t *f, uint32_t depth, uint64_t n)
{
	assert_int_equal(stacktab_add(t, f, depth, n, NULL), 0);
}

/* The count of the stack whose frames are named names[0..depth) in p. */
static uint64_t count_named(const struct profile *p, const char *const *names, uint32_t depth)
{
	uint64_t c = 0;
	uint32_t i, d;

	for (i = 0; i < p->nstacks; i++) {
		if (p->stacks[i].depth != depth)
			continue;
		for (d = 0; d < depth; d++)
			if (strcmp(p->frames[p->stacks[i].frames[d]].name, names[d]))
				break;
		if (d == depth)
			c += p->stacks[i].count;
	}
	return c;
}

static void take_snapshot(struct stacktab *t, struct tap *tap)
{
	struct profile p = { 0 };

	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(tap_take(tap, &p, 0), 0);
	profile_release(&p);
}

static void rotate_into(struct stacktab *t, struct tap *tap)
{
	struct profile p = { 0 };

	assert_int_equal(stacktab_rotate(t, &p), 0);
	assert_int_equal(tap_take(tap, &p, 1), 0);
	profile_release(&p);
}

static void test_counts_across_rotations(void **state)
{
	struct stacktab *t = new_tab();
	uint32_t root = frame_id(t, "root"), a = frame_id(t, "a"), b = frame_id(t, "b"),
		 c = frame_id(t, "c");
	const uint32_t A[] = { root, a }, B[] = { root, b }, C[] = { root, a, c };
	const char *const nA[] = { "root", "a" }, *const nB[] = { "root", "b" },
		   *const nC[] = { "root", "a", "c" };
	struct profile snap = { 0 }, out = { 0 };
	struct tap *tap, *late;
	struct tap_part part;

	(void)state;
	add_n(t, A, 2, 3);
	add_n(t, B, 2, 1);
	assert_int_equal(stacktab_snapshot(t, &snap), 0);
	assert_int_equal(tap_new(&tap, &snap), 0);
	profile_release(&snap);
	assert_int_equal(tap_total(tap), 0);

	add_n(t, A, 2, 2);
	add_n(t, C, 3, 4);
	take_snapshot(t, tap);
	assert_int_equal(tap_total(tap), 6);
	take_snapshot(t, tap); /* nothing new: nothing added */
	assert_int_equal(tap_total(tap), 6);
	add_n(t, A, 2, 1);
	rotate_into(t, tap);   /* the closed window's A: 1 more */
	assert_int_equal(tap_total(tap), 7);

	add_n(t, B, 2, 5);
	assert_int_equal(stacktab_snapshot(t, &snap), 0);
	assert_int_equal(tap_new(&late, &snap), 0);
	profile_release(&snap);
	add_n(t, A, 2, 1);
	take_snapshot(t, tap);
	take_snapshot(t, late);
	assert_int_equal(tap_total(tap), 13);
	assert_int_equal(tap_total(late), 1);

	assert_int_equal(stacktab_snapshot(t, &snap), 0);
	part = (struct tap_part){ .tap = tap, .frames = &snap, .service = "web" };
	assert_int_equal(tap_profile(&part, 1, 0, &out), 0);
	assert_int_equal(out.total, 13);
	assert_int_equal(count_named(&out, nA, 2), 4);
	assert_int_equal(count_named(&out, nB, 2), 5);
	assert_int_equal(count_named(&out, nC, 3), 4);
	profile_release(&out);
	profile_release(&snap);
	tap_free(tap);
	tap_free(late);
	stacktab_free(t);
}

/* A tap over a window with nothing in it yet, looked at while empty. */
static void test_empty_window(void **state)
{
	struct stacktab *t = new_tab();
	uint32_t f = frame_id(t, "f");
	struct tap *tap;

	(void)state;
	assert_int_equal(tap_new(&tap, NULL), 0);
	take_snapshot(t, tap);
	rotate_into(t, tap);
	take_snapshot(t, tap);
	assert_int_equal(tap_total(tap), 0);
	add_n(t, &f, 1, 2);
	take_snapshot(t, tap);
	assert_int_equal(tap_total(tap), 2);
	tap_free(tap);
	stacktab_free(t);
}

static void test_profile_of_services(void **state)
{
	struct stacktab *t1 = new_tab(), *t2 = new_tab();
	/* Different frame ids for the same names, and names the other lacks. */
	uint32_t x = frame_id(t2, "x"), m2 = frame_id(t2, "main"), m1 = frame_id(t1, "main"),
		 h = frame_id(t1, "handler");
	const uint32_t S1[] = { m1, h }, S2[] = { m2, x };
	const char *const n1[] = { "web", "main", "handler" }, *const n2[] = { "jobs", "main", "x" };
	struct profile s1 = { 0 }, s2 = { 0 }, out = { 0 };
	struct tap *t1tap, *t2tap;
	struct tap_part parts[2];
	uint32_t i;

	(void)state;
	assert_int_equal(tap_new(&t1tap, NULL), 0);
	assert_int_equal(tap_new(&t2tap, NULL), 0);
	add_n(t1, S1, 2, 7);
	add_n(t2, S2, 2, 2);
	take_snapshot(t1, t1tap);
	take_snapshot(t2, t2tap);
	assert_int_equal(stacktab_snapshot(t1, &s1), 0);
	assert_int_equal(stacktab_snapshot(t2, &s2), 0);
	parts[0] = (struct tap_part){ .tap = t1tap, .frames = &s1, .service = "web" };
	parts[1] = (struct tap_part){ .tap = t2tap, .frames = &s2, .service = "jobs" };
	assert_int_equal(tap_profile(parts, 2, 1, &out), 0);
	assert_int_equal(out.total, 9);
	assert_int_equal(count_named(&out, n1, 3), 7);
	assert_int_equal(count_named(&out, n2, 3), 2);
	for (i = 0; i < out.nstacks; i++)
		assert_int_equal(out.frames[out.stacks[i].frames[0]].kind, FRAME_SERVICE);
	profile_release(&out);
	profile_release(&s1);
	profile_release(&s2);
	tap_free(t1tap);
	tap_free(t2tap);
	stacktab_free(t1);
	stacktab_free(t2);
}

/* Writers add while the owner looks and rotates: both taps, open before
 * the first add, end with every sample. */
struct writer {
	struct stacktab *t;
	uint32_t frames[3];
	uint64_t adds;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	uint64_t i;

	for (i = 0; i < w->adds; i++) {
		uint32_t depth = 1 + (uint32_t)(i % 3);

		assert_int_equal(stacktab_add(w->t, w->frames, depth, 1, NULL), 0);
	}
	return NULL;
}

static void test_two_taps_get_every_sample(void **state)
{
	struct stacktab *t = new_tab();
	struct writer w[2];
	pthread_t th[2];
	struct tap *one, *two;
	int i, k;

	(void)state;
	for (k = 0; k < 2; k++) {
		w[k].t = t;
		w[k].adds = 200000;
		w[k].frames[0] = frame_id(t, k ? "w1" : "w0");
		w[k].frames[1] = frame_id(t, "f");
		w[k].frames[2] = frame_id(t, "g");
	}
	assert_int_equal(tap_new(&one, NULL), 0);
	assert_int_equal(tap_new(&two, NULL), 0);
	for (k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&th[k], NULL, write_loop, &w[k]), 0);
	for (i = 0; i < 200; i++) {
		take_snapshot(t, one);
		if (i % 3 == 0)
			take_snapshot(t, two);
		if (i % 7 == 6) {
			struct profile p = { 0 };

			assert_int_equal(stacktab_rotate(t, &p), 0);
			assert_int_equal(tap_take(one, &p, 1), 0);
			assert_int_equal(tap_take(two, &p, 1), 0);
			profile_release(&p);
		}
	}
	for (k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	take_snapshot(t, one);
	take_snapshot(t, two);
	assert_int_equal(tap_total(one), 400000);
	assert_int_equal(tap_total(two), 400000);
	tap_free(one);
	tap_free(two);
	stacktab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_across_rotations),
		cmocka_unit_test(test_empty_window),
		cmocka_unit_test(test_profile_of_services),
		cmocka_unit_test(test_two_taps_get_every_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
