/* test_out_collapsed.c - the collapsed-stacks writer, golden text inline.
 *
 * Each test builds a struct profile by hand and compares the writer's whole
 * output byte for byte with the expected document.
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
#include <unistd.h>

#include "out_expect.h"
#include "profile_fixture.h"
#include "pyspyc/output.h"

/* ---- helpers ----------------------------------------------------------- */

static void expect_text(const struct profile *p, const char *want)
{
	expect_output(out_collapsed_write, p, want);
}

/* ---- tests --------------------------------------------------------------- */

static void test_basic(void **state)
{
	static const struct profile_frame fr[] = {
		{ "main", "app.py", 10, FRAME_APP },
		{ "helper", "pkg/helpers.py", 3, FRAME_APP },
		{ "sleep", "", 0, FRAME_STDLIB },
	};
	static const uint32_t a[] = { 0 }, b[] = { 0, 1 }, c[] = { 0, 1, 2 };
	static const struct profile_stack st[] = {
		{ a, 1, 7, 0 }, { b, 2, 1, 0 }, { c, 3, 12345678901234ull, 0 },
	};
	struct profile p = fixture_profile(fr, 3, st, 3);

	(void)state;
	expect_text(&p,
		    "main (app.py:10) 7\n"
		    "main (app.py:10);helper (pkg/helpers.py:3) 1\n"
		    "main (app.py:10);helper (pkg/helpers.py:3);sleep 12345678901234\n");
}

static void test_empty_profile(void **state)
{
	struct profile p = fixture_profile(NULL, 0, NULL, 0);

	(void)state;
	expect_text(&p, "");
}

/* Lines follow p->stacks as given; the writer does not sort. */
static void test_order_follows_stacks(void **state)
{
	static const struct profile_frame fr[] = {
		{ "z", "z.py", 1, FRAME_APP },
		{ "a", "a.py", 1, FRAME_APP },
	};
	static const uint32_t s0[] = { 0 }, s1[] = { 1 }, s2[] = { 1, 0 };
	static const struct profile_stack st[] = {
		{ s0, 1, 1, 0 }, { s2, 2, 2, 0 }, { s1, 1, 3, 0 },
	};
	struct profile p = fixture_profile(fr, 2, st, 3);

	(void)state;
	expect_text(&p,
		    "z (z.py:1) 1\n"
		    "a (a.py:1);z (z.py:1) 2\n"
		    "a (a.py:1) 3\n");
}

static void test_no_file_and_no_line(void **state)
{
	static const struct profile_frame fr[] = {
		{ "<module>", "run.py", 0, FRAME_APP },     /* line 0: not shown */
		{ "builtin", "", 0, FRAME_APP },            /* no file at all */
		{ "lineonly", "", 12, FRAME_APP },          /* no file: no line */
		{ "neg", "n.py", -1, FRAME_APP },           /* never ":-1" */
		{ "", "anon.py", 2, FRAME_APP },            /* empty name */
		{ "[truncated]", "", 0, FRAME_SPECIAL },
	};
	static const uint32_t s[] = { 5, 0, 1, 2, 3, 4 };
	static const struct profile_stack st[] = { { s, 6, 2, 0 } };
	struct profile p = fixture_profile(fr, 6, st, 1);

	(void)state;
	expect_text(&p,
		    "[truncated];<module> (run.py);builtin;lineonly;neg (n.py);"
		    " (anon.py:2) 2\n");
}

static void test_escaping(void **state)
{
	static const struct profile_frame fr[] = {
		{ "a;b", "x;y.py", 1, FRAME_APP },
		{ "new\nline", "tab\there.py", 2, FRAME_APP },
		{ "cr\rdel\x7f" "bell\x07" "esc\x1b" "x", "", 0, FRAME_APP },
		{ "with spaces  in it", "dir with space/f.py", 3, FRAME_APP },
		{ "\x01\x1f", "\xc3\xa9t\xc3\xa9.py", 4, FRAME_APP },
		{ "<lambda>", "<frozen importlib._bootstrap>", 5, FRAME_STDLIB },
		{ "(paren) [x] {y} 'q' \"dq\" \\ %s %n", "p.py", 6, FRAME_APP },
	};
	static const uint32_t s0[] = { 0, 1 }, s1[] = { 2, 3 }, s2[] = { 4, 5, 6 };
	static const struct profile_stack st[] = {
		{ s0, 2, 1, 0 }, { s1, 2, 22, 0 }, { s2, 3, 333, 0 },
	};
	struct profile p = fixture_profile(fr, 7, st, 3);

	(void)state;
	expect_text(&p,
		    "a,b (x,y.py:1);new?line (tab?here.py:2) 1\n"
		    "cr?del?bell?esc?x;with spaces  in it (dir with space/f.py:3) 22\n"
		    "?? (\xc3\xa9t\xc3\xa9.py:4);<lambda> (<frozen importlib._bootstrap>:5);"
		    "(paren) [x] {y} 'q' \"dq\" \\ %s %n (p.py:6) 333\n");
}

/* The count is the last field, after exactly one space, so a parser that
 * splits at the last space gets the stack back whatever the names hold. */
static void test_count_after_last_space(void **state)
{
	static const struct profile_frame fr[] = {
		{ "f 1 2", "x 3.py", 9, FRAME_APP },
	};
	static const uint32_t s0[] = { 0 };
	static const struct profile_stack st[] = { { s0, 1, 42, 0 } };
	struct profile p = fixture_profile(fr, 1, st, 1);
	char *buf = NULL, *sp, *nl;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(out_collapsed_write(&p, NULL, f), 0);
	assert_int_equal(fclose(f), 0);
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	assert_ptr_equal(nl, buf + len - 1);
	*nl = '\0';
	sp = strrchr(buf, ' ');
	assert_non_null(sp);
	assert_string_equal(sp + 1, "42");
	*sp = '\0';
	assert_string_equal(buf, "f 1 2 (x 3.py:9)");
	free(buf);
}

/* A stack of depth 0 has no frames to write; it is left out rather than
 * written as a line with an empty stack. */
static void test_skips_empty_stacks(void **state)
{
	static const struct profile_frame fr[] = {
		{ "main", "m.py", 1, FRAME_APP },
	};
	static const uint32_t s0[] = { 0 };
	static const struct profile_stack st[] = {
		{ s0, 0, 5, 0 }, { s0, 1, 1, 0 },
	};
	struct profile p = fixture_profile(fr, 1, st, 2);

	(void)state;
	expect_text(&p, "main (m.py:1) 1\n");
}

static void test_registry(void **state)
{
	(void)state;
	assert_non_null(out_format_by_name("raw"));
	assert_ptr_equal(out_format_by_name("raw")->write, out_collapsed_write);
	assert_ptr_equal(out_format_by_name("collapsed"), out_format_by_name("raw"));
	assert_ptr_equal(out_format_by_name("folded"), out_format_by_name("raw"));
	assert_ptr_equal(out_format_by_path("x.folded"), out_format_by_name("raw"));
	assert_ptr_equal(out_format_by_path("-"), out_format_by_name("raw"));
}

/* ---- write errors ---------------------------------------------------------- */

/* Build a profile whose text is far larger than any stdio buffer. */
#define BIG 5000

static void test_dev_full_large(void **state)
{
	static struct profile_frame fr[1];
	static struct profile_stack st[BIG];
	static const uint32_t s0[] = { 0, 0, 0, 0, 0, 0, 0, 0 };
	struct profile p;
	FILE *f;
	int i, err;

	(void)state;
	fr[0] = (struct profile_frame){ "a_rather_long_function_name",
					"some/package/module.py", 123, FRAME_APP };
	for (i = 0; i < BIG; i++)
		st[i] = (struct profile_stack){ s0, 8, (uint64_t)i + 1, 0 };
	p = fixture_profile(fr, 1, st, BIG);
	f = fopen("/dev/full", "w");
	if (!f)
		skip();
	err = out_collapsed_write(&p, NULL, f);
	/* The buffer filled and flushed during the write: the writer must
	 * notice by itself. */
	assert_int_equal(err, -EIO);
	fclose(f);
}

static void test_dev_full_small(void **state)
{
	static const struct profile_frame fr[] = { { "main", "m.py", 1, FRAME_APP } };
	static const uint32_t s0[] = { 0 };
	static const struct profile_stack st[] = { { s0, 1, 1, 0 } };
	struct profile p = fixture_profile(fr, 1, st, 1);
	FILE *f;
	int err;

	(void)state;
	f = fopen("/dev/full", "w");
	if (!f)
		skip();
	/* Small enough to sit in the buffer: the error comes at the flush. */
	err = out_collapsed_write(&p, NULL, f);
	if (!err && fflush(f))
		err = -EIO;
	assert_int_equal(err, -EIO);
	assert_true(ferror(f));
	fclose(f);
}

/* Through the atomic file writer, by extension. */
static void test_out_write_file_ok(void **state)
{
	static const struct profile_frame fr[] = { { "main", "m.py", 1, FRAME_APP } };
	static const uint32_t s0[] = { 0 };
	static const struct profile_stack st[] = { { s0, 1, 3, 0 } };
	struct profile p = fixture_profile(fr, 1, st, 1);
	char dir[] = "/tmp/pyspyc-collapsed-XXXXXX", path[64], text[64];
	FILE *f;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.folded", dir);
	assert_int_equal(out_check_path(path), 0);
	assert_int_equal(out_write_file(path, out_format_by_path(path), &p, NULL), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_string_equal(text, "main (m.py:1) 3\n");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_empty_profile),
		cmocka_unit_test(test_order_follows_stacks),
		cmocka_unit_test(test_no_file_and_no_line),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_count_after_last_space),
		cmocka_unit_test(test_skips_empty_stacks),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_dev_full_large),
		cmocka_unit_test(test_dev_full_small),
		cmocka_unit_test(test_out_write_file_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
