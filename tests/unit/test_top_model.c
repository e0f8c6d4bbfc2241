/* test_top_model.c - the numbers behind `pyspyc top`.
 *
 * Profiles are built by hand (or through a real stacktab) and fed to the
 * model as a live view would: cumulative counts that only grow.  Checks own
 * and total (once per stack under recursion), the skipping of pyspyc's
 * marker frames, both line-number modes, the interval and the window, the
 * reset baseline, every sort column with its tie-breaks, and the escaping
 * of target-controlled text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_fixture.h"
#include "pyspyc/stacktab.h"
#include "pyspyc/top_model.h"

/* ---- helpers ----------------------------------------------------------- */

/* Frames used by most tests; indexes are what the stacks name. */
enum { MAIN, RUN, SPIN_A, SPIN_B, FIB5, FIB7, PROC, THREAD, TRUNC, NFRAMES };

static const struct profile_frame frames[NFRAMES] = {
	[MAIN] = { "<module>", "app.py", 40, FRAME_APP },
	[RUN] = { "run", "app.py", 30, FRAME_APP },
	[SPIN_A] = { "spin_a", "app.py", 10, FRAME_APP },
	[SPIN_B] = { "spin_b", "app.py", 20, FRAME_APP },
	[FIB5] = { "fib", "lib/fib.py", 5, FRAME_LIBRARY },
	[FIB7] = { "fib", "lib/fib.py", 7, FRAME_LIBRARY },
	[PROC] = { "process 42:\"python app.py\"", "", 0, FRAME_SPECIAL },
	[THREAD] = { "thread 0x1 (MainThread)", "", 0, FRAME_SPECIAL },
	[TRUNC] = { "[truncated]", "", 0, FRAME_SPECIAL },
};

static struct top_model *new_model(double rate)
{
	struct top_model *m = NULL;

	assert_int_equal(top_model_new(&m, rate), 0);
	assert_non_null(m);
	return m;
}

static const struct top_row *find_row(const struct top_model *m, const char *name,
				      int line)
{
	uint32_t i, n;
	const struct top_row *r = top_model_rows(m, &n);

	for (i = 0; i < n; i++)
		if (!strcmp(r[i].name, name) && r[i].line == line)
			return &r[i];
	return NULL;
}

static void expect_counts(const struct top_model *m, const char *name, int line,
			  uint64_t own, uint64_t total)
{
	const struct top_row *r = find_row(m, name, line);

	if (!r)
		fail_msg("no row for %s:%d", name, line);
	assert_int_equal(r->own, own);
	assert_int_equal(r->total, total);
}

/* The rows' names in order, joined by spaces. */
static const char *order(const struct top_model *m)
{
	static char buf[512];
	uint32_t i, n;
	const struct top_row *r = top_model_rows(m, &n);
	size_t used = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s:%d",
					 i ? " " : "", r[i].name, r[i].line);
	return buf;
}

/* ---- own and total --------------------------------------------------------- */

static void test_own_total(void **state)
{
	static const uint32_t a[] = { MAIN, RUN, SPIN_A }, b[] = { MAIN, RUN, SPIN_B },
			      c[] = { MAIN };
	static const struct profile_stack st[] = { { a, 3, 6, 0 }, { b, 3, 3, 0 }, { c, 1, 1, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 3);
	struct top_model *m = new_model(100);
	uint32_t n;

	(void)state;
	assert_int_equal(top_model_update(m, &p, 0), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 4);
	expect_counts(m, "spin_a", 10, 6, 6);
	expect_counts(m, "spin_b", 20, 3, 3);
	expect_counts(m, "run", 30, 0, 9);
	expect_counts(m, "<module>", 40, 1, 10);
	/* Default sort: own time, largest first. */
	assert_string_equal(order(m), "spin_a:10 spin_b:20 <module>:40 run:30");
	assert_int_equal(top_model_sort(m), TOP_COL_OWN_TIME);
	/* No sample count given: the profile's total is the denominator. */
	assert_int_equal(top_model_interval_samples(m), 10);
	assert_int_equal(top_model_window_samples(m), 10);
	top_model_free(m);
}

static void test_recursion_counted_once(void **state)
{
	/* fib -> run -> fib -> fib: fib is on the stack three times. */
	static const struct profile_frame fr[] = {
		{ "fib", "f.py", 5, FRAME_APP },
		{ "run", "f.py", 9, FRAME_APP },
	};
	static const uint32_t s1[] = { 0, 1, 0, 0 }, s2[] = { 1, 0 };
	static const struct profile_stack st[] = { { s1, 4, 7, 0 }, { s2, 2, 2, 0 } };
	struct profile p = fixture_profile(fr, 2, st, 2);
	struct top_model *m = new_model(100);

	(void)state;
	assert_int_equal(top_model_update(m, &p, 0), 0);
	expect_counts(m, "fib", 5, 9, 9);
	expect_counts(m, "run", 9, 0, 9);
	top_model_free(m);
}

static void test_special_frames_skipped(void **state)
{
	/* --subprocesses/--threads roots, a truncation marker, and a stack
	 * that (oddly) ends in a marker: its own sample goes to spin_a. */
	static const uint32_t a[] = { PROC, THREAD, MAIN, SPIN_A },
			      b[] = { PROC, THREAD, TRUNC, SPIN_B },
			      c[] = { PROC, THREAD, MAIN, SPIN_A, TRUNC },
			      d[] = { PROC, THREAD };
	static const struct profile_stack st[] = {
		{ a, 4, 5, 0 }, { b, 4, 2, 0 }, { c, 5, 1, 0 }, { d, 2, 4, 0 },
	};
	struct profile p = fixture_profile(frames, NFRAMES, st, 4);
	struct top_model *m = new_model(100);
	uint32_t i, n;
	const struct top_row *r;

	(void)state;
	assert_int_equal(top_model_update(m, &p, 12), 0);
	r = top_model_rows(m, &n);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		assert_null(strstr(r[i].name, "process"));
		assert_null(strstr(r[i].name, "thread"));
		assert_null(strstr(r[i].name, "truncated"));
	}
	expect_counts(m, "spin_a", 10, 6, 6);
	expect_counts(m, "spin_b", 20, 2, 2);
	expect_counts(m, "<module>", 40, 0, 6);
	/* The samples that saw no Python frame still count in the denominator. */
	assert_int_equal(top_model_interval_samples(m), 12);
	top_model_free(m);
}

static void test_kinds_merge_and_bad_indexes(void **state)
{
	/* The same text from two kinds of code is one function; a frame index
	 * past the table is ignored rather than read. */
	static const struct profile_frame fr[] = {
		{ "f", "x.py", 1, FRAME_APP },
		{ "f", "x.py", 1, FRAME_LIBRARY },
	};
	static const uint32_t s1[] = { 0 }, s2[] = { 1 }, s3[] = { 0, 99 };
	static const struct profile_stack st[] = { { s1, 1, 1, 0 }, { s2, 1, 2, 0 }, { s3, 2, 4, 0 } };
	struct profile p = fixture_profile(fr, 2, st, 3);
	struct top_model *m = new_model(100);
	uint32_t n;

	(void)state;
	assert_int_equal(top_model_update(m, &p, 0), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 1);
	expect_counts(m, "f", 1, 7, 7);
	top_model_free(m);
}

/* ---- line numbers ---------------------------------------------------------- */

static void test_lineno_toggle(void **state)
{
	/* fib recursing through two of its lines: two functions with line
	 * numbers, one without, and its total still counted once per stack. */
	static const uint32_t a[] = { MAIN, FIB5, FIB7, FIB5 }, b[] = { MAIN, FIB7 };
	static const struct profile_stack st[] = { { a, 4, 10, 0 }, { b, 2, 5, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 2);
	struct top_model *m = new_model(100);
	uint32_t n;

	(void)state;
	assert_int_equal(top_model_lineno(m), 1);
	assert_int_equal(top_model_update(m, &p, 0), 0);
	expect_counts(m, "fib", 5, 10, 10);
	expect_counts(m, "fib", 7, 5, 15);
	top_model_set_lineno(m, 0);
	assert_int_equal(top_model_lineno(m), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 2);
	expect_counts(m, "fib", 0, 15, 15);
	expect_counts(m, "<module>", 0, 0, 15);
	assert_null(find_row(m, "fib", 5));
	top_model_set_lineno(m, 1);
	expect_counts(m, "fib", 7, 5, 15);
	top_model_free(m);
}

/* ---- interval, window, reset ---------------------------------------------- */

static void test_interval_and_window(void **state)
{
	static const uint32_t a[] = { MAIN, SPIN_A }, b[] = { MAIN, SPIN_B };
	struct profile_stack st[] = { { a, 2, 60, 0 }, { b, 2, 40, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 2);
	struct top_model *m = new_model(100);
	const struct top_row *r;

	(void)state;
	assert_int_equal(top_model_update(m, &p, 100), 0);
	r = find_row(m, "spin_a", 10);
	assert_non_null(r);
	assert_true(r->own_pct > 59.99 && r->own_pct < 60.01);
	assert_true(r->own_s > 0.5999 && r->own_s < 0.6001);

	/* One more second: spin_b ran 90 of 100 samples. */
	st[0].count = 70;
	st[1].count = 130;
	p = fixture_profile(frames, NFRAMES, st, 2);
	assert_int_equal(top_model_update(m, &p, 200), 0);
	assert_int_equal(top_model_interval_samples(m), 100);
	assert_int_equal(top_model_window_samples(m), 200);
	r = find_row(m, "spin_b", 20);
	assert_non_null(r);
	assert_int_equal(r->own_now, 90);
	assert_int_equal(r->own, 130);
	assert_true(r->own_pct > 89.99 && r->own_pct < 90.01);
	assert_true(r->total_pct > 89.99 && r->total_pct < 90.01);
	assert_true(r->own_s > 1.2999 && r->own_s < 1.3001);
	r = find_row(m, "<module>", 40);
	assert_non_null(r);
	assert_int_equal(r->total_now, 100);
	assert_true(r->total_pct > 99.99 && r->total_pct < 100.01);
	assert_true(r->total_s > 1.9999 && r->total_s < 2.0001);

	/* Nothing new: the interval is empty, the window is not. */
	assert_int_equal(top_model_update(m, &p, 200), 0);
	r = find_row(m, "spin_b", 20);
	assert_non_null(r);
	assert_int_equal(r->own_now, 0);
	assert_true(r->own_pct == 0.0);
	assert_int_equal(r->own, 130);
	top_model_free(m);
}

static void test_reset(void **state)
{
	static const uint32_t a[] = { MAIN, FIB5, FIB7 }, b[] = { MAIN, SPIN_B };
	struct profile_stack st[] = { { a, 3, 50, 0 }, { b, 2, 50, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 2);
	struct top_model *m = new_model(50);
	uint32_t n;
	const struct top_row *r;

	(void)state;
	assert_int_equal(top_model_update(m, &p, 100), 0);
	assert_int_equal(top_model_reset(m), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 0);
	assert_int_equal(top_model_window_samples(m), 0);

	/* After the reset only fib ran. */
	st[0].count = 80;
	p = fixture_profile(frames, NFRAMES, st, 2);
	assert_int_equal(top_model_update(m, &p, 130), 0);
	assert_int_equal(top_model_window_samples(m), 30);
	top_model_rows(m, &n);
	assert_int_equal(n, 3); /* spin_b, with nothing since, is gone */
	assert_null(find_row(m, "spin_b", 20));
	expect_counts(m, "fib", 7, 30, 30);
	expect_counts(m, "fib", 5, 0, 30);
	r = find_row(m, "fib", 7);
	assert_true(r->own_s > 0.5999 && r->own_s < 0.6001); /* 30 at 50 Hz */
	assert_true(r->own_pct > 99.99 && r->own_pct < 100.01);

	/* The baseline was kept for the other mode too. */
	top_model_set_lineno(m, 0);
	expect_counts(m, "fib", 0, 30, 30);
	expect_counts(m, "<module>", 0, 0, 30);
	top_model_rows(m, &n);
	assert_int_equal(n, 2);
	top_model_free(m);
}

static void test_reset_before_any_update(void **state)
{
	static const uint32_t a[] = { SPIN_A };
	static const struct profile_stack st[] = { { a, 1, 3, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 1);
	struct top_model *m = new_model(100);
	uint32_t n;

	(void)state;
	assert_int_equal(top_model_reset(m), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 0);
	assert_int_equal(top_model_update(m, &p, 0), 0);
	expect_counts(m, "spin_a", 10, 3, 3);
	top_model_free(m);
}

/* ---- sorting ---------------------------------------------------------------- */

static void test_sort_columns(void **state)
{
	/* Before: a has the most own time; in the last interval b ran most;
	 * <module> has the most total throughout. */
	static const uint32_t a[] = { MAIN, SPIN_A }, b[] = { MAIN, SPIN_B },
			      c[] = { MAIN, RUN };
	struct profile_stack st[] = { { a, 2, 50, 0 }, { b, 2, 1, 0 }, { c, 2, 10, 0 } };
	struct profile p = fixture_profile(frames, NFRAMES, st, 3);
	struct top_model *m = new_model(100);

	(void)state;
	assert_int_equal(top_model_update(m, &p, 0), 0);
	st[1].count = 31;
	st[0].count = 55;
	p = fixture_profile(frames, NFRAMES, st, 3);
	assert_int_equal(top_model_update(m, &p, 0), 0);

	top_model_set_sort(m, TOP_COL_OWN_PCT);
	/* run and <module> tie on own: <module>'s total in the interval wins. */
	assert_string_equal(order(m), "spin_b:20 spin_a:10 <module>:40 run:30");
	top_model_set_sort(m, TOP_COL_TOTAL_PCT);
	assert_string_equal(order(m), "<module>:40 spin_b:20 spin_a:10 run:30");
	top_model_set_sort(m, TOP_COL_OWN_TIME);
	assert_string_equal(order(m), "spin_a:10 spin_b:20 run:30 <module>:40");
	top_model_set_sort(m, TOP_COL_TOTAL_TIME);
	assert_string_equal(order(m), "<module>:40 spin_a:10 spin_b:20 run:30");
	assert_int_equal(top_model_sort(m), TOP_COL_TOTAL_TIME);
	/* Out of range: ignored. */
	top_model_set_sort(m, (enum top_col)7);
	assert_int_equal(top_model_sort(m), TOP_COL_TOTAL_TIME);
	/* The sort survives an update. */
	assert_int_equal(top_model_update(m, &p, 0), 0);
	assert_string_equal(order(m), "<module>:40 spin_a:10 spin_b:20 run:30");
	top_model_free(m);
}

static void test_ties_are_deterministic(void **state)
{
	/* Equal counts everywhere: name, then file, then line decide,
	 * whatever the order of frames and stacks. */
	static const struct profile_frame f1[] = {
		{ "b", "z.py", 1, FRAME_APP }, { "a", "y.py", 2, FRAME_APP },
		{ "a", "x.py", 9, FRAME_APP }, { "a", "x.py", 3, FRAME_APP },
	};
	static const struct profile_frame f2[] = {
		{ "a", "x.py", 3, FRAME_APP }, { "a", "x.py", 9, FRAME_APP },
		{ "a", "y.py", 2, FRAME_APP }, { "b", "z.py", 1, FRAME_APP },
	};
	static const uint32_t s0[] = { 0 }, s1[] = { 1 }, s2[] = { 2 }, s3[] = { 3 };
	static const struct profile_stack st[] = {
		{ s0, 1, 4, 0 }, { s1, 1, 4, 0 }, { s2, 1, 4, 0 }, { s3, 1, 4, 0 },
	};
	static const struct profile_stack st_rev[] = {
		{ s3, 1, 4, 0 }, { s2, 1, 4, 0 }, { s1, 1, 4, 0 }, { s0, 1, 4, 0 },
	};
	struct profile p1 = fixture_profile(f1, 4, st, 4), p2 = fixture_profile(f2, 4, st_rev, 4);
	struct top_model *m1 = new_model(100), *m2 = new_model(100);
	char want[128];
	int col;

	(void)state;
	assert_int_equal(top_model_update(m1, &p1, 0), 0);
	assert_int_equal(top_model_update(m2, &p2, 0), 0);
	for (col = 0; col < TOP_NCOLS; col++) {
		top_model_set_sort(m1, (enum top_col)col);
		top_model_set_sort(m2, (enum top_col)col);
		snprintf(want, sizeof(want), "%s", order(m1));
		assert_string_equal(want, "a:3 a:9 a:2 b:1");
		assert_string_equal(order(m2), want);
	}
	top_model_free(m1);
	top_model_free(m2);
}

/* ---- ownership and a real stacktab ------------------------------------- */

static void test_strings_are_copied(void **state)
{
	/* The profile's strings are freed right after the update: the rows
	 * must not point into them (ASan checks in the SAN=1 build). */
	struct profile_frame *fr = calloc(2, sizeof(*fr));
	char *n0 = strdup("worker"), *f0 = strdup("w.py"), *n1 = strdup("main");
	static const uint32_t s[] = { 1, 0 };
	static const struct profile_stack st[] = { { s, 2, 3, 0 } };
	struct profile p;
	struct top_model *m = new_model(100);
	const struct top_row *r;
	uint32_t n;

	(void)state;
	assert_non_null(fr);
	fr[0] = (struct profile_frame){ n0, f0, 7, FRAME_APP };
	fr[1] = (struct profile_frame){ n1, f0, 1, FRAME_APP };
	p = fixture_profile(fr, 2, st, 1);
	assert_int_equal(top_model_update(m, &p, 0), 0);
	free(n0);
	free(f0);
	free(n1);
	free(fr);
	r = top_model_rows(m, &n);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "worker");
	assert_string_equal(r[0].file, "w.py");
	assert_string_equal(r[1].name, "main");
	top_model_set_lineno(m, 0);
	r = top_model_rows(m, &n);
	assert_string_equal(r[0].name, "worker");
	top_model_free(m);
}

static uint32_t tab_frame(struct stacktab *t, const char *name, const char *file,
			  int line, int kind)
{
	struct frame_key k;
	uint32_t id = 0;

	memset(&k, 0, sizeof(k));
	assert_int_equal(stacktab_string(t, name, strlen(name), &k.name), 0);
	assert_int_equal(stacktab_string(t, file, strlen(file), &k.file), 0);
	k.line = line;
	k.kind = (uint32_t)kind;
	assert_int_equal(stacktab_frame(t, &k, &id), 0);
	return id;
}

static void test_live_stacktab(void **state)
{
	/* As top uses it: snapshot, update, release, while the table grows
	 * with new frames and stacks between updates. */
	static const struct stacktab_limits lim = { 1000, 1000, 1000 };
	struct stacktab *t = NULL;
	struct top_model *m = new_model(100);
	struct profile p;
	uint32_t th, mod, a, b, s1[3], s2[3];
	const struct top_row *r;
	uint32_t n;

	(void)state;
	assert_int_equal(stacktab_new(&t, &lim), 0);
	th = tab_frame(t, "thread 1", "", 0, FRAME_SPECIAL);
	mod = tab_frame(t, "<module>", "app.py", 3, FRAME_APP);
	a = tab_frame(t, "spin_a", "app.py", 10, FRAME_APP);
	s1[0] = th, s1[1] = mod, s1[2] = a;
	assert_int_equal(stacktab_add(t, s1, 3, 60, NULL), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(top_model_update(m, &p, 60), 0);
	profile_release(&p);
	expect_counts(m, "spin_a", 10, 60, 60);

	b = tab_frame(t, "spin_b", "app.py", 20, FRAME_APP);
	s2[0] = th, s2[1] = mod, s2[2] = b;
	assert_int_equal(stacktab_add(t, s2, 3, 40, NULL), 0);
	assert_int_equal(stacktab_add(t, s1, 3, 10, NULL), 0);
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(top_model_update(m, &p, 110), 0);
	profile_release(&p);
	top_model_set_sort(m, TOP_COL_OWN_PCT);
	r = top_model_rows(m, &n);
	assert_int_equal(n, 3);
	assert_string_equal(r[0].name, "spin_b");
	assert_int_equal(r[0].own_now, 40);
	assert_int_equal(r[1].own_now, 10);
	expect_counts(m, "<module>", 3, 0, 110);
	top_model_free(m);
	stacktab_free(t);
}

static void test_empty_profiles(void **state)
{
	/* Nothing sampled yet, then only marker frames. */
	static const uint32_t d[] = { PROC, THREAD };
	static const struct profile_stack st[] = { { d, 2, 5, 0 } };
	struct profile empty, markers = fixture_profile(frames, NFRAMES, st, 1);
	struct top_model *m = new_model(100);
	uint32_t n;

	(void)state;
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(top_model_update(m, &empty, 0), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 0);
	assert_int_equal(top_model_interval_samples(m), 0);
	assert_int_equal(top_model_reset(m), 0);
	top_model_set_lineno(m, 0);
	top_model_set_sort(m, TOP_COL_TOTAL_PCT);
	assert_int_equal(top_model_update(m, &markers, 0), 0);
	top_model_rows(m, &n);
	assert_int_equal(n, 0);
	assert_int_equal(top_model_window_samples(m), 5);
	top_model_free(m);
}

static void test_bad_rate(void **state)
{
	struct top_model *m = (struct top_model *)1;

	(void)state;
	assert_int_equal(top_model_new(&m, 0), -EINVAL);
	assert_null(m);
	assert_int_equal(top_model_new(&m, -5), -EINVAL);
	top_model_free(NULL);
	assert_string_equal(top_col_name(TOP_COL_OWN_PCT), "%Own");
	assert_string_equal(top_col_name(TOP_COL_TOTAL_TIME), "TotalTime");
	assert_string_equal(top_col_name((enum top_col)9), "?");
}

/* ---- safe text -------------------------------------------------------------- */

static void expect_safe(const char *in, int cols, int utf8, size_t size,
			const char *want, int want_cols)
{
	char out[256];

	assert_true(size <= sizeof(out));
	memset(out, 'X', sizeof(out));
	assert_int_equal(top_safe_text(in, cols, utf8, out, size), want_cols);
	assert_string_equal(out, want);
}

static void test_safe_text(void **state)
{
	(void)state;
	if (!setlocale(LC_CTYPE, "C.UTF-8") && !setlocale(LC_CTYPE, "C.utf8"))
		skip();
	expect_safe("spin_a", 80, 1, 256, "spin_a", 6);
	expect_safe(NULL, 80, 1, 256, "", 0);
	/* Control characters, escapes and DEL: one '?' each. */
	expect_safe("a\nb\tc\x1b[2Jd\x7f", 80, 1, 256, "a?b?c?[2Jd?", 11);
	/* C1 controls (U+009B is CSI in some terminals). */
	expect_safe("x\xc2\x9b" "31m", 80, 1, 256, "x?31m", 5);
	/* Invalid UTF-8: stray continuation, truncated, overlong, surrogate,
	 * past U+10FFFF. */
	expect_safe("\x80" "a\xe2\x82" "b", 80, 1, 256, "?a??b", 5);
	expect_safe("\xc0\xaf\xe0\x80\xaf", 80, 1, 256, "?????", 5);
	expect_safe("\xed\xa0\x80", 80, 1, 256, "???", 3);
	expect_safe("\xf4\x90\x80\x80", 80, 1, 256, "????", 4);
	/* Bidi override and zero-width space: no width of their own. */
	expect_safe("ab\xe2\x80\xae" "cd\xe2\x80\x8b", 80, 1, 256, "ab?cd?", 6);
	/* Valid text passes whole: accented, Greek, CJK (two columns each). */
	expect_safe("caf\xc3\xa9 \xce\xbb", 80, 1, 256, "caf\xc3\xa9 \xce\xbb", 6);
	expect_safe("\xe6\x97\xa5\xe6\x9c\xac", 80, 1, 256, "\xe6\x97\xa5\xe6\x9c\xac", 4);
	/* Cut at the column limit, never inside a character. */
	expect_safe("abcdef", 4, 1, 256, "abcd", 4);
	expect_safe("a\xe6\x97\xa5\xe6\x9c\xac", 4, 1, 256, "a\xe6\x97\xa5", 3);
	expect_safe("abc", 0, 1, 256, "", 0);
	/* Cut at the buffer, never inside a character. */
	expect_safe("abcdef", 80, 1, 4, "abc", 3);
	expect_safe("ab\xc3\xa9", 80, 1, 4, "ab", 2);
	expect_safe("x", 80, 1, 1, "", 0);
	/* A terminal that is not UTF-8 gets ASCII only. */
	expect_safe("caf\xc3\xa9\xe6\x97\xa5", 80, 0, 256, "caf??", 5);
}

/* Widths 20..200: the name column is always there with TOP_NAME_MIN
 * columns or more (all of the screen below that); numeric columns go
 * TotalTime, OwnTime, %Total, %Own, the sort column last; the shown ones
 * keep their order and do not overlap. */
static void test_layout(void **state)
{
	static const enum top_col drop[TOP_NCOLS] = {
		TOP_COL_TOTAL_TIME, TOP_COL_OWN_TIME, TOP_COL_TOTAL_PCT, TOP_COL_OWN_PCT,
	};
	struct top_layout lay;
	int cols, sorted, i, prev_shown;

	(void)state;
	for (sorted = 0; sorted < TOP_NCOLS; sorted++) {
		prev_shown = 0;
		for (cols = 20; cols <= 200; cols++) {
			int shown = 0, end = 0, k, rank[TOP_NCOLS], n = 0;

			top_layout(cols, (enum top_col)sorted, &lay);
			for (i = 0; i < TOP_NCOLS; i++) {
				if (!lay.width[i])
					continue;
				shown++;
				assert_true(lay.x[i] >= end);
				end = lay.x[i] + lay.width[i] + 1;
			}
			assert_true(lay.name_x >= end);
			assert_true(cols - lay.name_x >= TOP_NAME_MIN);
			/* Only as many dropped as the name needs. */
			if (shown < TOP_NCOLS)
				assert_true(cols < TOP_COLS_ALL);
			else
				assert_true(cols >= TOP_COLS_ALL);
			/* A wider screen never shows fewer. */
			assert_true(shown >= prev_shown);
			prev_shown = shown;
			/* The dropped ones are the first of the drop order
			 * (with the sort column moved last). */
			for (i = 0; i < TOP_NCOLS; i++)
				if ((int)drop[i] != sorted)
					rank[n++] = (int)drop[i];
			rank[n++] = sorted;
			for (k = 0; k < TOP_NCOLS; k++)
				assert_int_equal(!lay.width[rank[k]], k < TOP_NCOLS - shown);
		}
	}
	/* The wide layout is the one top always had. */
	top_layout(80, TOP_COL_OWN_PCT, &lay);
	assert_int_equal(lay.x[TOP_COL_TOTAL_TIME], 29);
	assert_int_equal(lay.name_x, 41);
	/* 40 columns: the sort column alone; 29, none. */
	top_layout(40, TOP_COL_TOTAL_TIME, &lay);
	assert_int_equal(lay.width[TOP_COL_TOTAL_TIME], 10);
	assert_int_equal(lay.width[TOP_COL_OWN_PCT], 0);
	assert_int_equal(lay.name_x, 12);
	top_layout(29, TOP_COL_OWN_PCT, &lay);
	assert_int_equal(lay.name_x, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_total),
		cmocka_unit_test(test_recursion_counted_once),
		cmocka_unit_test(test_special_frames_skipped),
		cmocka_unit_test(test_kinds_merge_and_bad_indexes),
		cmocka_unit_test(test_lineno_toggle),
		cmocka_unit_test(test_interval_and_window),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_reset_before_any_update),
		cmocka_unit_test(test_sort_columns),
		cmocka_unit_test(test_ties_are_deterministic),
		cmocka_unit_test(test_strings_are_copied),
		cmocka_unit_test(test_live_stacktab),
		cmocka_unit_test(test_empty_profiles),
		cmocka_unit_test(test_bad_rate),
		cmocka_unit_test(test_safe_text),
		cmocka_unit_test(test_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
