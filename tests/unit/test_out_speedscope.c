/* test_out_speedscope.c - the speedscope writer on hand-built profiles.
 *
 * Every document is read back with a strict JSON reader and checked for
 * speedscope's structure; the weights of each stack, per thread, must add
 * up to its count / rate, with and without a timeline.
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

#define SCHEMA "https://www.speedscope.app/file-format-schema.json"

/* Frames with hostile text; DECODED is each name as JSON must carry it
 * (bytes that are not UTF-8 become U+FFFD). */
static const struct profile_frame FR[] = {
	/* 0 */ { "process 7:\"app \\\"x\\\"\"", "app \"x\"", 7, FRAME_PROCESS },
	/* 1 */ { "thread 11 \"MainThread\"", "MainThread", 11, FRAME_THREAD },
	/* 2 */ { "thread 12 \"w\\\"k\n\"", "w\"k\n", 12, FRAME_THREAD },
	/* 3 */ { "main", "app.py", 10, FRAME_APP },
	/* 4 */ { "<script>\"q\"\n\xff\xe2\x80\xa8", "a;b\t<c>.py", 3, FRAME_APP },
	/* 5 */ { "sleep", "", 0, FRAME_STDLIB },
	/* 6 */ { "<truncated>", "", 0, FRAME_SPECIAL },
	/* 7 */ { "process 8:\"b\"", "b", 8, FRAME_PROCESS },
	/* 8 */ { "helper", "app.py", 20, FRAME_APP },
};
static const char *const DECODED[] = {
	NULL, NULL, NULL, "main", "<script>\"q\"\n\xef\xbf\xbd\xe2\x80\xa8", "sleep",
	"<truncated>", NULL, "helper",
};

static const uint32_t S_MAIN_A[] = { 1, 3, 4 };      /* thread 11: main;<script> */
static const uint32_t S_MAIN_B[] = { 1, 3, 5 };      /* thread 11: main;sleep */
static const uint32_t S_W_A[] = { 2, 3, 4 };         /* thread 12: main;<script> */
static const uint32_t S_W_C[] = { 2, 3, 4, 6 };      /* thread 12: ...;<truncated> */
static const uint32_t S_BARE[] = { 3, 8 };           /* no markers */

/* ---- reading the document ------------------------------------------------ */

static const struct jv *arr(const struct jv *v)
{
	assert_non_null(v);
	assert_int_equal(v->type, JV_ARR);
	return v;
}

/* The document's fixed parts; returns its profiles. */
static const struct jv *check_header(const struct jv *doc, const char *name)
{
	const struct jv *frames, *profiles;
	size_t i;

	assert_int_equal(doc->type, JV_OBJ);
	assert_string_equal(jstr(jv_get(doc, "$schema")), SCHEMA);
	assert_string_equal(jstr(jv_get(doc, "exporter")), "pyspyc");
	assert_string_equal(jstr(jv_get(doc, "name")), name);
	frames = arr(jv_get(jv_get(doc, "shared"), "frames"));
	for (i = 0; i < frames->n; i++) {
		const char *n = jstr(jv_get(&frames->items[i], "name"));

		/* Markers name profiles; they are never frames. */
		assert_true(strncmp(n, "process ", 8) && strncmp(n, "thread ", 7));
	}
	profiles = arr(jv_get(doc, "profiles"));
	for (i = 0; i < profiles->n; i++) {
		const struct jv *pr = &profiles->items[i];

		assert_string_equal(jstr(jv_get(pr, "type")), "sampled");
		assert_int_equal(arr(jv_get(pr, "samples"))->n, arr(jv_get(pr, "weights"))->n);
		assert_true(jnum(jv_get(pr, "endValue")) >= jnum(jv_get(pr, "startValue")));
	}
	if (profiles->n)
		assert_true(jnum(jv_get(doc, "activeProfileIndex")) < (double)profiles->n);
	return profiles;
}

static const struct jv *profile_named(const struct jv *doc, const char *name)
{
	const struct jv *profiles = jv_get(doc, "profiles");
	size_t i;

	for (i = 0; i < profiles->n; i++)
		if (!strcmp(jstr(jv_get(&profiles->items[i], "name")), name))
			return &profiles->items[i];
	fail_msg("no profile named %s", name);
	return NULL;
}

/* Does the sample (a list of shared frame indexes) show the frames of
 * stack s after its markers? */
static int sample_is(const struct jv *doc, const struct jv *sample, const struct profile *p,
		     uint32_t s)
{
	const struct jv *frames = jv_get(jv_get(doc, "shared"), "frames");
	const struct profile_stack *st = &p->stacks[s];
	uint32_t k = 0, i;

	while (k < st->depth && (p->frames[st->frames[k]].kind == FRAME_PROCESS ||
				 p->frames[st->frames[k]].kind == FRAME_THREAD))
		k++;
	if (arr(sample)->n != st->depth - k)
		return 0;
	for (i = 0; k < st->depth; i++, k++) {
		uint32_t want = st->frames[k];
		const struct jv *f = jv_at(frames, (size_t)jnum(jv_at(sample, i)));
		const struct jv *file = jv_get(f, "file"), *line = jv_get(f, "line");

		assert_non_null(f);
		if (strcmp(jstr(jv_get(f, "name")), DECODED[want]))
			return 0;
		if (p->frames[want].file[0] && p->frames[want].kind != FRAME_SPECIAL
		    ? !file || strcmp(jstr(file), p->frames[want].file) : file != NULL)
			return 0;
		if (p->frames[want].line > 0 && p->frames[want].kind != FRAME_SPECIAL
		    ? !line || jnum(line) != p->frames[want].line : line != NULL)
			return 0;
	}
	return 1;
}

/* Stack i belongs to the profile named owner[i]: there, the weights of
 * its samples add up to count / rate, and all weights to total / rate. */
static void check_counts(const struct jv *doc, const struct profile *p,
			 const char *const *owner, double per)
{
	const struct jv *profiles = jv_get(doc, "profiles");
	double all = 0;
	uint32_t i;
	size_t k, n;

	for (i = 0; i < p->nstacks; i++) {
		const struct jv *pr = profile_named(doc, owner[i]);
		const struct jv *samples = jv_get(pr, "samples"), *weights = jv_get(pr, "weights");
		double sum = 0;

		for (k = 0; k < samples->n; k++)
			if (sample_is(doc, &samples->items[k], p, i))
				sum += jnum(&weights->items[k]);
		assert_true(fabs(sum / per - (double)p->stacks[i].count) < 1e-6);
	}
	for (k = 0; k < profiles->n; k++) {
		const struct jv *w = jv_get(&profiles->items[k], "weights");

		for (n = 0; n < w->n; n++) {
			assert_true(jnum(&w->items[n]) > 0);
			all += jnum(&w->items[n]);
		}
	}
	assert_true(fabs(all / per - (double)p->total) < 1e-6);
}

static void release(struct jv *doc, char *text)
{
	jv_release(doc);
	free(text);
}

/* ---- tests --------------------------------------------------------------- */

static const struct profile_stack TWO_THREADS[] = {
	{ S_MAIN_A, 3, 5, 0 }, { S_MAIN_B, 3, 2, 0 }, { S_W_A, 3, 7, 0 }, { S_W_C, 4, 1, 0 },
};
static const char *const TWO_OWNERS[] = {
	"thread 11 \"MainThread\"", "thread 11 \"MainThread\"",
	"thread 12 \"w\\\"k\n\"", "thread 12 \"w\\\"k\n\"",
};

static void test_aggregated(void **state)
{
	struct profile p = fixture_profile(FR, 9, TWO_THREADS, 4);
	const struct jv *profiles, *frames, *pr;
	struct jv doc;
	char *text;

	(void)state;
	text = out_json_load(out_speedscope_write, &p, NULL, &doc);
	profiles = check_header(&doc, "python3 app.py");
	assert_int_equal(profiles->n, 2);
	/* Sorted by thread id; the busier thread is the one shown first. */
	assert_string_equal(jstr(jv_get(&profiles->items[0], "name")), TWO_OWNERS[0]);
	assert_string_equal(jstr(jv_get(&profiles->items[1], "name")), TWO_OWNERS[2]);
	assert_int_equal((int)jnum(jv_get(&doc, "activeProfileIndex")), 1);
	/* One shared frame per frame used: main, <script>, sleep, <truncated>. */
	frames = jv_get(jv_get(&doc, "shared"), "frames");
	assert_int_equal(frames->n, 4);
	/* Without a timeline: one sample per stack, its whole count. */
	pr = profile_named(&doc, TWO_OWNERS[2]);
	assert_string_equal(jstr(jv_get(pr, "unit")), "seconds");
	assert_int_equal(jv_get(pr, "samples")->n, 2);
	assert_true(jnum(jv_get(pr, "startValue")) == 0);
	assert_true(fabs(jnum(jv_get(pr, "endValue")) - 0.08) < 1e-12);
	check_counts(&doc, &p, TWO_OWNERS, 0.01);
	/* The hostile name survives whole, escaped in the text. */
	assert_non_null(strstr(text, "\\u2028"));
	assert_null(strstr(text, "\xe2\x80\xa8"));
	release(&doc, text);
}

static void test_title_and_special_frames(void **state)
{
	struct profile p = fixture_profile(FR, 9, TWO_THREADS, 4);
	struct out_opts o = { .title = "my \"title\"" };
	const struct jv *frames;
	struct jv doc;
	char *text;
	size_t i;

	(void)state;
	text = out_json_load(out_speedscope_write, &p, &o, &doc);
	check_header(&doc, "my \"title\"");
	frames = jv_get(jv_get(&doc, "shared"), "frames");
	for (i = 0; i < frames->n; i++) {
		const struct jv *f = &frames->items[i];

		if (!strcmp(jstr(jv_get(f, "name")), "<truncated>")) {
			assert_null(jv_get(f, "file"));
			assert_null(jv_get(f, "line"));
		} else if (!strcmp(jstr(jv_get(f, "name")), "sleep")) {
			/* no file: none written, and no line 0 */
			assert_null(jv_get(f, "file"));
			assert_null(jv_get(f, "line"));
		} else {
			assert_non_null(jv_get(f, "file"));
		}
	}
	release(&doc, text);
}

/* Thread 11: A A B B B A, then after a gap A; thread 12 interleaved. */
static const struct profile_sample TIMELINE[] = {
	{ 1000000000, 0 }, { 1000000000, 2 }, { 1010000000, 0 }, { 1010000000, 2 },
	{ 1020000000, 1 }, { 1030000000, 1 }, { 1040000000, 1 }, { 1040000000, 3 },
	{ 1050000000, 0 }, { 1050000000, 2 }, { 1500000000, 0 }, { 1500000000, 2 },
	{ 1510000000, 2 }, { 1520000000, 2 },
};

/* The counts the timeline above holds. */
static const struct profile_stack TIMED[] = {
	{ S_MAIN_A, 3, 4, 0 }, { S_MAIN_B, 3, 3, 0 }, { S_W_A, 3, 6, 0 }, { S_W_C, 4, 1, 0 },
};

/* The profile named name has exactly the samples stacks[0..n) with the
 * weights w[0..n), in that order. */
static void expect_runs(const struct jv *doc, const struct profile *p, const char *name,
			const uint32_t *stacks, const double *w, size_t n)
{
	const struct jv *pr = profile_named(doc, name);
	const struct jv *samples = jv_get(pr, "samples"), *weights = jv_get(pr, "weights");
	size_t k;

	assert_int_equal(samples->n, n);
	for (k = 0; k < n; k++) {
		assert_true(sample_is(doc, &samples->items[k], p, stacks[k]));
		assert_true(fabs(jnum(&weights->items[k]) - w[k]) < 1e-12);
	}
}

static void test_time_order(void **state)
{
	struct profile p = fixture_profile(FR, 9, TIMED, 4);
	static const uint32_t want_main[] = { 0, 1, 0 };
	static const double want_main_w[] = { 0.02, 0.03, 0.02 };
	static const uint32_t want_w[] = { 2, 3, 2 };
	static const double want_w_w[] = { 0.02, 0.01, 0.04 };
	const struct jv *pr;
	struct jv doc;
	char *text;

	(void)state;
	p.samples = TIMELINE;
	p.nsamples = sizeof(TIMELINE) / sizeof(TIMELINE[0]);
	p.start_ns = 990000000;
	text = out_json_load(out_speedscope_write, &p, NULL, &doc);
	check_header(&doc, "python3 app.py");
	check_counts(&doc, &p, TWO_OWNERS, 0.01);
	/* Runs of one stack are one sample, in the order they happened; the
	 * run that resumes after the gap joins the one before it. */
	expect_runs(&doc, &p, TWO_OWNERS[0], want_main, want_main_w, 3);
	expect_runs(&doc, &p, TWO_OWNERS[2], want_w, want_w_w, 3);
	/* Time starts at the thread's first sample, since sampling began. */
	pr = profile_named(&doc, TWO_OWNERS[0]);
	assert_true(fabs(jnum(jv_get(pr, "startValue")) - 0.01) < 1e-12);
	assert_true(fabs(jnum(jv_get(pr, "endValue")) - 0.08) < 1e-12);
	release(&doc, text);
}

static void test_timeline_not_trusted(void **state)
{
	/* Counts that the timeline does not hold (W_A counted once more). */
	static const struct profile_stack more[] = {
		{ S_MAIN_A, 3, 4, 0 }, { S_MAIN_B, 3, 3, 0 }, { S_W_A, 3, 7, 0 },
		{ S_W_C, 4, 1, 0 },
	};
	struct profile lost = fixture_profile(FR, 9, TIMED, 4);
	struct profile counted = fixture_profile(FR, 9, more, 4);
	struct profile *ps[] = { &lost, &counted };
	struct jv doc;
	char *text;
	size_t i;

	(void)state;
	lost.samples = counted.samples = TIMELINE;
	lost.nsamples = counted.nsamples = sizeof(TIMELINE) / sizeof(TIMELINE[0]);
	lost.timeline_lost = 1;
	for (i = 0; i < 2; i++) {
		const struct jv *pr;

		text = out_json_load(out_speedscope_write, ps[i], NULL, &doc);
		check_header(&doc, "python3 app.py");
		/* The counts, not the timeline: one sample per stack. */
		check_counts(&doc, ps[i], TWO_OWNERS, 0.01);
		pr = profile_named(&doc, TWO_OWNERS[0]);
		assert_int_equal(jv_get(pr, "samples")->n, 2);
		assert_true(sample_is(&doc, jv_at(jv_get(pr, "samples"), 0), ps[i], 0));
		assert_true(jnum(jv_get(pr, "startValue")) == 0);
		release(&doc, text);
	}
}

static void test_processes(void **state)
{
	static const uint32_t a[] = { 0, 1, 3, 4 }, b[] = { 7, 1, 3, 8 }, c[] = { 7, 3 };
	/* Thread 11 in two processes is two threads; a stack without a
	 * thread marker goes to its process. */
	static const struct profile_stack st[] = {
		{ a, 4, 3, 0 }, { b, 4, 4, 0 }, { c, 2, 2, 0 }, { S_BARE, 2, 6, 0 },
	};
	static const char *const owners[] = {
		"process 7:\"app \\\"x\\\"\" thread 11 \"MainThread\"",
		"process 8:\"b\" thread 11 \"MainThread\"",
		"process 8:\"b\"",
		"process 8:\"b\"",
	};
	struct profile p = fixture_profile(FR, 9, st, 4);
	const struct jv *profiles;
	struct jv doc;
	char *text;

	(void)state;
	p.pid = 8;
	text = out_json_load(out_speedscope_write, &p, NULL, &doc);
	profiles = check_header(&doc, "python3 app.py");
	/* (7, 11); (8, 0) holds the bare stack and c; (8, 11). */
	assert_int_equal(profiles->n, 3);
	assert_string_equal(jstr(jv_get(&profiles->items[0], "name")), owners[0]);
	assert_string_equal(jstr(jv_get(&profiles->items[1], "name")), owners[2]);
	assert_string_equal(jstr(jv_get(&profiles->items[2], "name")), owners[1]);
	check_counts(&doc, &p, owners, 0.01);
	release(&doc, text);
}

static void test_no_rate(void **state)
{
	struct profile p = fixture_profile(FR, 9, TWO_THREADS, 4);
	struct jv doc;
	char *text;

	(void)state;
	p.rate_hz = 0;
	text = out_json_load(out_speedscope_write, &p, NULL, &doc);
	check_header(&doc, "python3 app.py");
	/* Weights are then plain counts. */
	assert_string_equal(jstr(jv_get(jv_at(jv_get(&doc, "profiles"), 0), "unit")), "none");
	check_counts(&doc, &p, TWO_OWNERS, 1.0);
	release(&doc, text);
}

static void test_empty(void **state)
{
	static const struct profile_stack st[] = { { S_BARE, 0, 0, 0 } };
	struct profile none = fixture_profile(FR, 9, NULL, 0);
	struct profile hollow = fixture_profile(FR, 9, st, 1);
	struct jv doc;
	char *text;

	(void)state;
	none.command = NULL;
	text = out_json_load(out_speedscope_write, &none, NULL, &doc);
	assert_int_equal(check_header(&doc, "pyspyc")->n, 0);
	assert_int_equal(jv_get(jv_get(&doc, "shared"), "frames")->n, 0);
	release(&doc, text);
	/* An empty stack is no sample. */
	text = out_json_load(out_speedscope_write, &hollow, NULL, &doc);
	assert_int_equal(check_header(&doc, "python3 app.py")->n, 0);
	release(&doc, text);
}

static void test_same_bytes(void **state)
{
	struct profile p = fixture_profile(FR, 9, TIMED, 4);
	struct jv d1, d2;
	char *t1, *t2;

	(void)state;
	p.samples = TIMELINE;
	p.nsamples = sizeof(TIMELINE) / sizeof(TIMELINE[0]);
	t1 = out_json_load(out_speedscope_write, &p, NULL, &d1);
	t2 = out_json_load(out_speedscope_write, &p, NULL, &d2);
	assert_string_equal(t1, t2);
	release(&d1, t1);
	release(&d2, t2);
}

/* The checks above mean something only if the reader refuses what is not
 * JSON. */
static void test_reader_is_strict(void **state)
{
	static const char *const bad[] = {
		"", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[\"a\nb\"]", "[\"\\x\"]",
		"[\"\\ud800\"]", "[\"\xff\"]", "{\"a\":1,\"a\":2}", "[1] x", "{a:1}", "[nul]",
		"[\"\\u00e\"]", "[-]", "[1e]",
	};
	static const char *const good[] = {
		"[1,-0.5e+3,\"\\ud83d\\ude00\\u2028\\/\",true,false,null,{}]",
		" {\"a\": [ ], \"b\" : {\"c\":\"\xc3\xa9\"}} ",
	};
	struct jv v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(jv_read(bad[i], strlen(bad[i]), &v), -1);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(jv_read(good[i], strlen(good[i]), &v), 0);
		jv_release(&v);
	}
	assert_int_equal(jv_read(good[0], strlen(good[0]), &v), 0);
	assert_string_equal(jv_at(&v, 2)->str, "\xf0\x9f\x98\x80\xe2\x80\xa8/");
	assert_true(jv_at(&v, 1)->num == -500);
	jv_release(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_is_strict),
		cmocka_unit_test(test_aggregated),
		cmocka_unit_test(test_title_and_special_frames),
		cmocka_unit_test(test_time_order),
		cmocka_unit_test(test_timeline_not_trusted),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_no_rate),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_same_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
