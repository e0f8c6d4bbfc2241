/* test_stacktab_windows.c - closing a stacktab's window and opening the next.
 *
 * Covers counts per window, the stale stack ids of a closed window, ids of
 * strings and frames kept across windows, that no add is lost or counted
 * twice while writers run through rotations (counts and timeline), and that
 * a window's memory is reused: a small table takes any number of windows of
 * new stacks, and resident memory stays flat.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/stacktab.h"
#include "pyspyc/strtab.h"

static const struct stacktab_limits big = {
	.max_stacks = 100000,
	.max_frames = 10000,
	.max_strings = 10000,
};

static struct stacktab *new_tab(const struct stacktab_limits *lim)
{
	struct stacktab *t = NULL;

	assert_int_equal(stacktab_new(&t, lim), 0);
	return t;
}

static uint32_t frame_id(struct stacktab *t, const char *name, int line)
{
	struct frame_key k = { .line = line, .kind = FRAME_APP };
	uint32_t id = UINT32_MAX;

	assert_int_equal(stacktab_string(t, name, strlen(name), &k.name), 0);
	assert_int_equal(stacktab_string(t, "m.py", 4, &k.file), 0);
	assert_int_equal(stacktab_frame(t, &k, &id), 0);
	return id;
}

/* The count of the stack frames[0..depth) in p, 0 when absent. */
static uint64_t count_of(const struct profile *p, const uint32_t *frames, uint32_t depth)
{
	uint32_t i;

	for (i = 0; i < p->nstacks; i++)
		if (p->stacks[i].depth == depth &&
		    !memcmp(p->stacks[i].frames, frames, depth * sizeof(*frames)))
			return p->stacks[i].count;
	return 0;
}

static void test_counts_per_window(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p = { 0 }, q = { 0 };
	uint32_t a, b, c, ab[2], ac[2];

	(void)state;
	a = frame_id(t, "a", 1);
	b = frame_id(t, "b", 2);
	c = frame_id(t, "c", 3);
	ab[0] = a, ab[1] = b;
	ac[0] = a, ac[1] = c;
	assert_int_equal(stacktab_windows(t), 1);
	assert_int_equal(stacktab_add(t, ab, 2, 3, NULL), 0);
	assert_int_equal(stacktab_add(t, &a, 1, 1, NULL), 0);
	assert_int_equal(stacktab_rotate(t, &p), 0);
	assert_int_equal(stacktab_windows(t), 2);
	assert_int_equal(p.total, 4);
	assert_int_equal(p.nstacks, 2);
	assert_int_equal(count_of(&p, ab, 2), 3);
	assert_int_equal(count_of(&p, &a, 1), 1);
	/* The new window starts empty; the closed one's profile stays
	 * readable while the new one fills. */
	assert_int_equal(stacktab_nstacks(t), 0);
	assert_int_equal(stacktab_add(t, ac, 2, 5, NULL), 0);
	assert_int_equal(stacktab_add(t, ab, 2, 1, NULL), 0);
	assert_int_equal(count_of(&p, ab, 2), 3);
	assert_string_equal(p.frames[ab[1]].name, "b");
	/* A live view of the open window holds only its own counts. */
	assert_int_equal(stacktab_snapshot(t, &q), 0);
	assert_int_equal(q.total, 6);
	assert_int_equal(count_of(&q, ac, 2), 5);
	assert_int_equal(count_of(&q, ab, 2), 1);
	assert_int_equal(count_of(&q, &a, 1), 0);
	profile_release(&q);
	profile_release(&p);
	assert_int_equal(stacktab_rotate(t, &p), 0);
	assert_int_equal(p.total, 6);
	assert_int_equal(p.nstacks, 2);
	profile_release(&p);
	/* An empty window gives an empty profile; NULL closes without one. */
	assert_int_equal(stacktab_rotate(t, &p), 0);
	assert_int_equal(p.total, 0);
	assert_int_equal(p.nstacks, 0);
	profile_release(&p);
	assert_int_equal(stacktab_add(t, &c, 1, 2, NULL), 0);
	assert_int_equal(stacktab_rotate(t, NULL), 0);
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.total, 0);
	profile_release(&p);
	assert_int_equal(stacktab_windows(t), 5);
	stacktab_free(t);
}

static void test_ids_across_windows(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p = { 0 };
	uint32_t a, b, ab[2], id1, id2, again, i;

	(void)state;
	a = frame_id(t, "a", 1);
	b = frame_id(t, "b", 2);
	ab[0] = a, ab[1] = b;
	assert_int_equal(stacktab_add(t, ab, 2, 1, &id1), 0);
	assert_int_equal(stacktab_add_id(t, id1, 2), 0);
	assert_int_equal(stacktab_rotate(t, &p), 0);
	assert_int_equal(p.total, 3);
	profile_release(&p);
	/* Strings and frames keep their ids. */
	assert_int_equal(frame_id(t, "a", 1), a);
	assert_int_equal(frame_id(t, "b", 2), b);
	/* The closed window's stack id counts nothing in the new one. */
	assert_int_equal(stacktab_add_id(t, id1, 1), -ESTALE);
	assert_int_equal(stacktab_add_id_at(t, id1, 5), -ESTALE);
	assert_int_equal(stacktab_add(t, ab, 2, 1, &id2), 0);
	assert_int_not_equal(id2, id1);
	assert_int_equal(stacktab_add_id(t, id2, 1), 0);
	assert_int_equal(stacktab_add(t, ab, 2, 1, &again), 0);
	assert_int_equal(again, id2);
	/* An id past what the window holds is refused too. */
	assert_int_equal(stacktab_add_id(t, id2 + 1, 1), -ESTALE);
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.total, 3);
	assert_int_equal(p.nstacks, 1);
	profile_release(&p);
	/* Ids of each of the last 31 windows are told apart. */
	for (i = 0; i < 31; i++) {
		assert_int_equal(stacktab_rotate(t, NULL), 0);
		assert_int_equal(stacktab_add_id(t, id2, 1), -ESTALE);
	}
	stacktab_free(t);
}

/* ---- writers through rotations ------------------------------------------- */

#define NWRITERS 3
#define NKINDS 50           /* distinct stacks each writer cycles through */
#define NROTATIONS 60

struct rot {
	struct stacktab *t;
	uint32_t frames[NKINDS + 1];
	atomic_int stop;
};

struct writer {
	struct rot *r;
	int idx;
	uint64_t added;         /* adds that returned 0 */
	uint64_t stale;         /* cached ids refused */
	int err;
};

/* Like the symbolizer: a stack id cached per stack, used until it is
 * refused, then the stack added by its frames again. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint32_t cached[NKINDS], stack[2], i = 0;
	int64_t now = 0;

	memset(cached, 0xff, sizeof(cached));
	stack[0] = w->r->frames[NKINDS];
	while (!atomic_load(&w->r->stop)) {
		uint32_t k = (i++ * 7 + (uint32_t)w->idx) % NKINDS;
		int err = -ESTALE;

		now++;
		if (cached[k] != UINT32_MAX) {
			err = stacktab_add_id_at(w->r->t, cached[k], now);
			w->stale += err == -ESTALE;
		}
		if (err) {
			stack[1] = w->r->frames[k];
			err = stacktab_add_at(w->r->t, stack, 2, now, &cached[k]);
		}
		if (err) {
			w->err = err;
			break;
		}
		w->added++;
	}
	return NULL;
}

static void test_no_sample_lost_or_doubled(void **state)
{
	struct stacktab_limits lim = { .max_stacks = 1000, .max_frames = 1000,
				       .max_strings = 1000 };
	struct writer ws[NWRITERS];
	pthread_t th[NWRITERS];
	struct rot r = { 0 };
	uint64_t seen = 0, added = 0, stale = 0, windows = 0, busy = 0;
	struct profile p = { 0 };
	char name[16];
	int i;

	(void)state;
	r.t = new_tab(&lim);
	assert_int_equal(stacktab_timeline(r.t, 1u << 16), 0);
	for (i = 0; i <= NKINDS; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		r.frames[i] = frame_id(r.t, name, i);
	}
	for (i = 0; i < NWRITERS; i++) {
		ws[i] = (struct writer){ .r = &r, .idx = i };
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
	}
	/* Rotate while they add; every closed window's counts and timeline
	 * agree, and the windows together hold every add once. */
	while (windows < NROTATIONS) {
		usleep(200);
		assert_int_equal(stacktab_rotate(r.t, &p), 0);
		windows++;
		assert_int_equal(p.nsamples + p.timeline_lost, p.total);
		busy += p.total > 0;
		seen += p.total;
		profile_release(&p);
	}
	atomic_store(&r.stop, 1);
	for (i = 0; i < NWRITERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(ws[i].err, 0);
		added += ws[i].added;
		stale += ws[i].stale;
	}
	assert_int_equal(stacktab_rotate(r.t, &p), 0);
	assert_int_equal(p.nsamples + p.timeline_lost, p.total);
	seen += p.total;
	profile_release(&p);
	assert_int_equal(seen, added);
	/* The test did what it says: writers met closed windows' ids. */
	print_message("%llu windows, %llu with adds, %llu stale ids\n",
		      (unsigned long long)windows, (unsigned long long)busy,
		      (unsigned long long)stale);
	assert_true(busy > NROTATIONS / 2);
	assert_true(stale > 0);
	stacktab_free(r.t);
}

/* ---- memory ---------------------------------------------------------------- */

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &pages, &resident), 2);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Stack n of depth d: frames chosen by the digits of n, all new. */
static void make_stack(const uint32_t *frames, uint32_t nframes, uint64_t n,
		       uint32_t *out, uint32_t d)
{
	uint32_t i;

	for (i = 0; i < d; i++) {
		out[i] = frames[n % nframes];
		n /= nframes;
		if (!n)
			n = i + 1;
	}
}

static void test_window_memory_reused(void **state)
{
	struct stacktab_limits lim = { .max_stacks = 64, .max_frames = 100,
				       .max_strings = 200 };
	struct stacktab_limits roomy = { .max_stacks = 200000, .max_frames = 1000,
					 .max_strings = 2000 };
	struct stacktab *t = new_tab(&lim);
	struct profile p = { 0 };
	uint32_t frames[64], st[24];
	uint64_t n = 1000, w, k;
	long rss5 = 0, rss_end;
	char name[16];
	int i;

	(void)state;
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		frames[i] = frame_id(t, name, i);
	}
	/* 64 stacks a window, all new, in a table of 64: 2000 windows, never
	 * full. */
	for (w = 0; w < 2000; w++) {
		for (k = 0; k < 64; k++, n++) {
			make_stack(frames, 64, n, st, 6);
			assert_int_equal(stacktab_add(t, st, 6, 1, NULL), 0);
		}
		assert_int_equal(stacktab_rotate(t, &p), 0);
		assert_int_equal(p.nstacks, 64);
		assert_int_equal(p.total, 64);
		profile_release(&p);
	}
	assert_null(stacktab_full(t));
	stacktab_free(t);

	/* Resident memory: 60 windows of 20,000 new stacks (each window's
	 * stacks alone are megabytes) stay where the first 5 left it. */
	t = new_tab(&roomy);
	assert_int_equal(stacktab_timeline(t, 1u << 20), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "h%d", i);
		frame_id(t, name, i);
	}
	for (i = 0; i < 64; i++)
		frames[i] = (uint32_t)i; /* ids of the first frames interned */
	for (w = 0; w < 60; w++) {
		for (k = 0; k < 20000; k++, n++) {
			uint32_t id;

			make_stack(frames, 64, n * 2654435761u, st, 24);
			st[0] = (uint32_t)(n % 1000);
			assert_int_equal(stacktab_add_at(t, st, 24, (int64_t)n, &id), 0);
		}
		assert_int_equal(stacktab_rotate(t, &p), 0);
		assert_int_equal(p.total, 20000);
		assert_int_equal(p.nsamples, 20000);
		profile_release(&p);
		if (w == 4)
			rss5 = rss_kib();
	}
	rss_end = rss_kib();
	print_message("rss after 5 windows %ld KiB, after 60 %ld KiB\n", rss5, rss_end);
	/* Without reuse it would grow by some 200 MiB.  AddressSanitizer
	 * keeps freed heap blocks (the profiles) in quarantine: not ours. */
#ifndef __SANITIZE_ADDRESS__
	assert_true(rss_end < rss5 + 8 * 1024);
#endif
	stacktab_free(t);
}

static void test_strtab_reset(void **state)
{
	struct strtab *s = NULL;
	uint32_t id;

	(void)state;
	assert_int_equal(strtab_new(&s, 4, 64), 0);
	assert_int_equal(strtab_intern(s, "x", 1, &id), 0);
	assert_int_equal(strtab_intern(s, "y", 1, &id), 0);
	assert_int_equal(id, 1);
	strtab_reset(s);
	assert_int_equal(strtab_count(s), 0);
	assert_int_equal(strtab_bytes(s), 0);
	/* Keys start again at id 0, and none of before is found. */
	assert_int_equal(strtab_intern(s, "y", 1, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(strtab_intern(s, "z", 1, &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(strtab_intern(s, "x", 1, &id), 0);
	assert_int_equal(id, 2);
	strtab_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_per_window),
		cmocka_unit_test(test_ids_across_windows),
		cmocka_unit_test(test_no_sample_lost_or_doubled),
		cmocka_unit_test(test_window_memory_reused),
		cmocka_unit_test(test_strtab_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
