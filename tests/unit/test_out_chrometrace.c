/* test_out_chrometrace.c - the Chrome trace writer on hand-built timelines.
 *
 * Every document is read back with a strict JSON reader.  Each thread's
 * B and E events must nest and balance, time must not go back within a
 * thread, and the events must be the ones the walk over the samples gives:
 * spelled out event by event for small timelines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out_json.h"
#include "pyspyc/output.h"

#define MS 1000000LL /* ns */
#define T0 1000000000LL /* the profiles' start_ns */

static const struct profile_frame FR[] = {
	/* 0 */ { "process 7:\"app\"", "app \"x\"\n\xff", 7, FRAME_PROCESS },
	/* 1 */ { "thread 11 \"MainThread\"", "MainThread", 11, FRAME_THREAD },
	/* 2 */ { "thread 12 \"w\\\"k\"", "w\"k\x01", 12, FRAME_THREAD },
	/* 3 */ { "main", "app.py", 10, FRAME_APP },
	/* 4 */ { "f", "app.py", 20, FRAME_APP },
	/* 5 */ { "g", "lib/g.py", 30, FRAME_LIBRARY },
	/* 6 */ { "h\"<\xe2\x80\xa8>\n", "a;b\t.py", 0, FRAME_APP },
	/* 7 */ { "<truncated>", "", 0, FRAME_SPECIAL },
	/* 8 */ { "process 8:\"b\"", "", 8, FRAME_PROCESS },
	/* 9 */ { "thread 0", "", 0, FRAME_THREAD },
};

/* ---- reading the trace ----------------------------------------------------- */

struct ev {
	char ph;
	int pid, tid;
	double ts;
	const char *name;
	const struct jv *args;
};

static int same_args(const struct jv *a, const struct jv *b)
{
	const struct jv *fa, *fb, *la, *lb;

	if (!a || !b)
		return a == b;
	fa = jv_get(a, "file");
	fb = jv_get(b, "file");
	la = jv_get(a, "line");
	lb = jv_get(b, "line");
	return (fa ? fb && !strcmp(jstr(fa), jstr(fb)) : !fb) &&
	       (la ? lb && jnum(la) == jnum(lb) : !lb) && a->n == b->n;
}

/* The events of thread (pid, tid), in file order, into out (at most max);
 * returns how many.  Checks on the way what every trace must hold. */
static size_t events_of(const struct jv *doc, int pid, int tid, struct ev *out, size_t max)
{
	const struct jv *evs = jv_get(doc, "traceEvents");
	size_t i, n = 0;

	assert_non_null(evs);
	assert_int_equal(evs->type, JV_ARR);
	for (i = 0; i < evs->n; i++) {
		const struct jv *e = &evs->items[i];
		struct ev v = { .ph = jstr(jv_get(e, "ph"))[0], .pid = (int)jnum(jv_get(e, "pid")),
				.tid = (int)jnum(jv_get(e, "tid")), .name = jstr(jv_get(e, "name")),
				.args = jv_get(e, "args") };

		assert_true(v.ph == 'M' || v.ph == 'B' || v.ph == 'E');
		assert_int_equal(strlen(jstr(jv_get(e, "ph"))), 1);
		if (v.ph == 'M')
			continue;
		v.ts = jnum(jv_get(e, "ts"));
		if (v.pid != pid || v.tid != tid)
			continue;
		assert_true(n < max);
		out[n++] = v;
	}
	return n;
}

/* The thread's B and E nest, balance and never go back in time; returns
 * the time (us) its outermost frames were open. */
static double check_thread(const struct jv *doc, int pid, int tid, size_t *nevents)
{
	static struct ev ev[4096];
	const struct ev *stack[64];
	size_t n = events_of(doc, pid, tid, ev, 4096), i, depth = 0;
	double open = 0, root_begin = 0;

	for (i = 0; i < n; i++) {
		if (i)
			assert_true(ev[i].ts >= ev[i - 1].ts);
		if (ev[i].ph == 'B') {
			assert_true(depth < 64);
			if (!depth)
				root_begin = ev[i].ts;
			stack[depth++] = &ev[i];
			continue;
		}
		assert_true(depth > 0);
		depth--;
		assert_string_equal(ev[i].name, stack[depth]->name);
		assert_true(same_args(ev[i].args, stack[depth]->args));
		/* No slice of zero length. */
		assert_true(ev[i].ts > stack[depth]->ts);
		if (!depth)
			open += ev[i].ts - root_begin;
	}
	assert_int_equal(depth, 0);
	if (nevents)
		*nevents = n;
	return open;
}

/* The metadata event what ("process_name", "thread_name") for pid/tid. */
static const char *meta(const struct jv *doc, const char *what, int pid, int tid)
{
	const struct jv *evs = jv_get(doc, "traceEvents");
	size_t i;

	for (i = 0; i < evs->n; i++) {
		const struct jv *e = &evs->items[i];

		if (!strcmp(jstr(jv_get(e, "ph")), "M") && !strcmp(jstr(jv_get(e, "name")), what) &&
		    jnum(jv_get(e, "pid")) == pid && (tid < 0 || jnum(jv_get(e, "tid")) == tid))
			return jstr(jv_get(jv_get(e, "args"), "name"));
	}
	return NULL;
}

/* One expected event: ph, frame, ms since the start. */
struct want {
	char ph;
	uint32_t frame;
	double ms;
};

static void expect_events(const struct jv *doc, int pid, int tid, const struct want *w,
			  size_t n)
{
	static struct ev ev[256];
	size_t got = events_of(doc, pid, tid, ev, 256), i;

	assert_int_equal(got, n);
	for (i = 0; i < n; i++) {
		const struct profile_frame *f = &FR[w[i].frame];

		assert_int_equal(ev[i].ph, w[i].ph);
		assert_true(fabs(ev[i].ts - w[i].ms * 1000) < 1e-6);
		if (strcmp(ev[i].name, f->name))
			fail_msg("event %zu: %s, want %s", i, ev[i].name, f->name);
		if (f->line > 0)
			assert_true(jnum(jv_get(ev[i].args, "line")) == f->line);
		else
			assert_null(jv_get(ev[i].args, "line"));
		if (f->file[0] && f->kind != FRAME_SPECIAL)
			assert_string_equal(jstr(jv_get(ev[i].args, "file")), f->file);
		else
			assert_null(ev[i].args);
	}
}

static void release(struct jv *doc, char *text)
{
	jv_release(doc);
	free(text);
}

/* Thread 11's events for timeline tl over p are exactly w; returns the
 * document (release it) for more checks. */
static char *walk_is(struct profile *p, const struct profile_sample *tl, uint64_t ntl,
		     const struct want *w, size_t nw, struct jv *doc)
{
	char *text;

	p->samples = tl;
	p->nsamples = ntl;
	text = out_json_load(out_chrometrace_write, p, NULL, doc);
	expect_events(doc, 4242, 11, w, nw);
	check_thread(doc, 4242, 11, NULL);
	return text;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tests --------------------------------------------------------------- */

static const uint32_t S_MF[] = { 1, 3, 4 };        /* 11: main;f */
static const uint32_t S_MFG[] = { 1, 3, 4, 5 };    /* 11: main;f;g */
static const uint32_t S_MG[] = { 1, 3, 5 };        /* 11: main;g */
static const uint32_t S_WH[] = { 2, 3, 6 };        /* 12: main;h */
static const uint32_t S_WT[] = { 2, 3, 6, 7 };     /* 12: main;h;<truncated> */

static const struct profile_stack STACKS[] = {
	{ S_MF, 3, 3, 0 }, { S_MFG, 4, 2, 0 }, { S_MG, 3, 2, 0 }, { S_WH, 3, 4, 0 },
	{ S_WT, 4, 1, 0 },
};

/* 100 Hz.  Thread 11: main;f at 0 and 10, main;f;g at 20 and 30, main;g at
 * 40, then nothing until 100 (a gap: more than 15 ms), main;f at 100 and
 * main;g at 114 (14 ms: no gap).  Thread 12: main;h at 0, <truncated>
 * under it at 10, main;h at 20, 30 and 45 (15 ms: not more than 1.5
 * periods). */
static const struct profile_sample TIMELINE[] = {
	{ T0 + 0 * MS, 0 },   { T0 + 0 * MS, 3 },  { T0 + 10 * MS, 0 }, { T0 + 10 * MS, 4 },
	{ T0 + 20 * MS, 1 },  { T0 + 20 * MS, 3 }, { T0 + 30 * MS, 1 }, { T0 + 30 * MS, 3 },
	{ T0 + 40 * MS, 2 },  { T0 + 45 * MS, 3 }, { T0 + 100 * MS, 0 },
	{ T0 + 114 * MS, 2 },
};

static void test_walk(void **state)
{
	static const struct want main_thread[] = {
		{ 'B', 3, 0 },   { 'B', 4, 0 },                      /* main;f */
		{ 'B', 5, 20 },                                      /* ;g */
		{ 'E', 5, 40 },  { 'E', 4, 40 },  { 'B', 5, 40 },    /* main;g */
		{ 'E', 5, 50 },  { 'E', 3, 50 },                     /* the gap */
		{ 'B', 3, 100 }, { 'B', 4, 100 },                    /* main;f */
		{ 'E', 4, 114 }, { 'B', 5, 114 },                    /* main;g */
		{ 'E', 5, 124 }, { 'E', 3, 124 },                    /* the end */
	};
	static const struct want worker[] = {
		{ 'B', 3, 0 },  { 'B', 6, 0 },  { 'B', 7, 10 }, { 'E', 7, 20 },
		{ 'E', 6, 55 }, { 'E', 3, 55 },
	};
	struct profile p = fixture_profile(FR, 10, STACKS, 5);
	const struct jv *other;
	struct jv doc;
	char *text;
	size_t n;

	(void)state;
	p.samples = TIMELINE;
	p.nsamples = N(TIMELINE);
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	expect_events(&doc, 4242, 11, main_thread, N(main_thread));
	expect_events(&doc, 4242, 12, worker, N(worker));
	/* Outermost frames open (ms): 0-50 and 100-124; 0-55. */
	assert_true(fabs(check_thread(&doc, 4242, 11, &n) - 74000) < 1e-6);
	assert_true(fabs(check_thread(&doc, 4242, 12, &n) - 55000) < 1e-6);
	/* Names: the process's command line, the threads' bare names. */
	assert_string_equal(meta(&doc, "process_name", 4242, -1), "python3 app.py");
	assert_string_equal(meta(&doc, "thread_name", 4242, 11), "MainThread");
	assert_string_equal(meta(&doc, "thread_name", 4242, 12), "w\"k\x01");
	assert_string_equal(jstr(jv_get(&doc, "displayTimeUnit")), "ms");
	other = jv_get(&doc, "otherData");
	assert_string_equal(jstr(jv_get(other, "exporter")), "pyspyc");
	assert_string_equal(jstr(jv_get(other, "command")), "python3 app.py");
	assert_true(jnum(jv_get(other, "timeline_samples")) == 12);
	assert_true(jnum(jv_get(other, "timeline_lost")) == 0);
	/* Escaped, not raw: a control character never reaches the file. */
	assert_null(strchr(text, '\x01'));
	assert_non_null(strstr(text, "\\u0001"));
	release(&doc, text);
}

static void test_processes_and_names(void **state)
{
	/* -s: two processes, thread 11 in both; a thread with no known id
	 * and no name; a stack with no thread marker. */
	static const uint32_t a[] = { 0, 1, 3 }, b[] = { 8, 1, 3, 4 }, c[] = { 8, 9, 5 },
			      d[] = { 0, 3, 6 };
	static const struct profile_stack st[] = {
		{ a, 3, 1, 0 }, { b, 4, 1, 0 }, { c, 3, 1, 0 }, { d, 3, 1, 0 },
	};
	static const struct profile_sample tl[] = {
		{ T0, 0 }, { T0, 1 }, { T0, 2 }, { T0, 3 },
	};
	struct profile p = fixture_profile(FR, 10, st, 4);
	struct jv doc;
	char *text;
	size_t n;

	(void)state;
	p.samples = tl;
	p.nsamples = 4;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	/* Each stack is its own thread, one period long. */
	assert_true(fabs(check_thread(&doc, 7, 11, &n) - 10000) < 1e-6);
	assert_int_equal(n, 2);
	assert_true(fabs(check_thread(&doc, 8, 11, &n) - 10000) < 1e-6);
	assert_int_equal(n, 4);
	assert_true(fabs(check_thread(&doc, 8, 0, &n) - 10000) < 1e-6);
	assert_int_equal(n, 2);
	assert_true(fabs(check_thread(&doc, 7, 0, &n) - 10000) < 1e-6);
	assert_int_equal(n, 4);
	/* A marker's bare label, or its whole name when the label is empty;
	 * a byte that is not UTF-8 arrives as U+FFFD. */
	assert_string_equal(meta(&doc, "process_name", 7, -1), "app \"x\"\n\xef\xbf\xbd");
	assert_string_equal(meta(&doc, "process_name", 8, -1), "process 8:\"b\"");
	assert_string_equal(meta(&doc, "thread_name", 7, 11), "MainThread");
	assert_string_equal(meta(&doc, "thread_name", 8, 0), "thread 0");
	assert_string_equal(meta(&doc, "thread_name", 7, 0), "all threads");
	release(&doc, text);
}

static void test_no_timeline(void **state)
{
	struct profile p = fixture_profile(FR, 10, STACKS, 5);
	struct jv doc;
	char *text;

	(void)state;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	assert_int_equal(jv_get(&doc, "traceEvents")->n, 0);
	assert_true(jnum(jv_get(jv_get(&doc, "otherData"), "samples")) == 12);
	release(&doc, text);
	/* Nothing at all. */
	p = fixture_profile(NULL, 0, NULL, 0);
	p.command = NULL;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	assert_int_equal(jv_get(&doc, "traceEvents")->n, 0);
	release(&doc, text);
}

static void test_untrusted_timeline(void **state)
{
	/* Out of time order, a stack index out of range, samples lost. */
	static const struct profile_sample tl[] = {
		{ T0 + 30 * MS, 0 }, { T0 + 10 * MS, 1 }, { T0 + 20 * MS, 99 },
		{ T0 + 20 * MS, 2 }, { T0, 0 },
	};
	static const struct want want[] = {
		{ 'B', 3, 0 },  { 'B', 4, 0 },  { 'B', 5, 10 }, { 'E', 5, 20 },
		{ 'E', 4, 20 }, { 'B', 5, 20 }, { 'E', 5, 30 }, { 'B', 4, 30 },
		{ 'E', 4, 40 }, { 'E', 3, 40 },
	};
	struct profile p = fixture_profile(FR, 10, STACKS, 5);
	struct jv doc;
	char *text;

	(void)state;
	p.timeline_lost = 3;
	text = walk_is(&p, tl, N(tl), want, N(want), &doc);
	assert_true(jnum(jv_get(jv_get(&doc, "otherData"), "timeline_lost")) == 3);
	release(&doc, text);
}

static void test_rates(void **state)
{
	static const struct profile_sample tl[] = {
		{ T0, 0 }, { T0 + 2 * MS, 0 }, { T0 + 4 * MS, 0 },
	};
	struct profile p = fixture_profile(FR, 10, STACKS, 5);
	struct jv doc;
	char *text;

	(void)state;
	p.samples = tl;
	p.nsamples = 3;
	/* 500 Hz: one contiguous slice of 6 ms. */
	p.rate_hz = 500;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	assert_true(fabs(check_thread(&doc, 4242, 11, NULL) - 6000) < 1e-6);
	release(&doc, text);
	/* 1000 Hz: every 2 ms is a gap; three slices of 1 ms. */
	p.rate_hz = 1000;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	assert_true(fabs(check_thread(&doc, 4242, 11, NULL) - 3000) < 1e-6);
	release(&doc, text);
	/* No usable rate: 100 Hz is assumed. */
	p.rate_hz = 0;
	text = out_json_load(out_chrometrace_write, &p, NULL, &doc);
	assert_true(fabs(check_thread(&doc, 4242, 11, NULL) - 14000) < 1e-6);
	release(&doc, text);
}

/* Recursion: the same frame at two depths is two slices. */
static void test_recursion(void **state)
{
	static const uint32_t r1[] = { 1, 3, 4, 4 }, r2[] = { 1, 3, 4, 4, 4 },
			      r3[] = { 1, 3, 4, 5 };
	static const struct profile_stack st[] = { { r1, 4, 1, 0 }, { r2, 5, 1, 0 },
						   { r3, 4, 1, 0 } };
	static const struct profile_sample tl[] = {
		{ T0, 0 }, { T0 + 10 * MS, 1 }, { T0 + 20 * MS, 2 },
	};
	static const struct want want[] = {
		{ 'B', 3, 0 },  { 'B', 4, 0 },  { 'B', 4, 0 },  { 'B', 4, 10 },
		{ 'E', 4, 20 }, { 'E', 4, 20 }, { 'B', 5, 20 }, { 'E', 5, 30 },
		{ 'E', 4, 30 }, { 'E', 3, 30 },
	};
	struct profile p = fixture_profile(FR, 10, st, 3);
	struct jv doc;

	(void)state;
	free(walk_is(&p, tl, N(tl), want, N(want), &doc));
	jv_release(&doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_processes_and_names),
		cmocka_unit_test(test_no_timeline),
		cmocka_unit_test(test_untrusted_timeline),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_recursion),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
