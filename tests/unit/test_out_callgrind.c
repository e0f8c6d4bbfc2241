/* test_out_callgrind.c - the Callgrind writer, golden text inline.
 *
 * Each test builds a struct profile by hand and compares the writer's whole
 * output byte for byte with the expected document.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out_expect.h"
#include "profile_fixture.h"
#include "pyspyc/output.h"

static void expect_text(const struct profile *p, const char *want)
{
	expect_output(out_callgrind_write, p, want);
}

#define HEADER(total) \
	"# callgrind format\nversion: 1\ncreator: pyspyc\ncmd: python3 app.py\npid: 4242\n" \
	"positions: line\nevents: Samples\nsummary: " total "\n"

/* main calls work from two lines; work runs two lines; one sample is in
 * main itself.  A function's frames at different lines are one function;
 * the calls from one line add up. */
static void test_self_and_calls(void **state)
{
	static const struct profile_frame fr[] = {
		{ "main", "app.py", 3, FRAME_APP },    /* 0 */
		{ "main", "app.py", 5, FRAME_APP },    /* 1 */
		{ "work", "lib/w.py", 7, FRAME_APP },  /* 2 */
		{ "work", "lib/w.py", 8, FRAME_APP },  /* 3 */
	};
	static const uint32_t a[] = { 0 }, b[] = { 1, 2 }, c[] = { 1, 3 }, d[] = { 0, 2 };
	static const struct profile_stack st[] = {
		{ a, 1, 10, 0 }, { b, 2, 60, 0 }, { c, 2, 25, 0 }, { d, 2, 5, 0 },
	};
	struct profile p = fixture_profile(fr, 4, st, 4);

	(void)state;
	expect_text(&p, HEADER("100")
		    "\nfl=(1) app.py\nfn=(1) main\n"
		    "3 10\n"
		    "cfl=(2) lib/w.py\ncfn=(2) work\ncalls=5 0\n3 5\n"
		    "cfl=(2)\ncfn=(2)\ncalls=85 0\n5 85\n"
		    "\nfl=(2)\nfn=(2)\n"
		    "7 65\n8 25\n");
}

/* Root markers are not functions; pyspyc's own frames have file "???";
 * control characters never end a line; a name that starts with '(' is
 * read as a name, after the compressed id.  Functions come in name
 * order, ids in the order of first appearance. */
static void test_markers_and_hostile_names(void **state)
{
	static const struct profile_frame fr[] = {
		{ "thread 12 \"w\"", "w", 12, FRAME_THREAD },    /* 0 */
		{ "(1) x\nfn=evil", "a\rb.py", 2, FRAME_APP },   /* 1 */
		{ "<truncated>", "", 0, FRAME_SPECIAL },         /* 2 */
	};
	static const uint32_t a[] = { 0, 2, 1 };
	static const struct profile_stack st[] = { { a, 3, 4, 0 } };
	struct profile p = fixture_profile(fr, 3, st, 1);

	(void)state;
	p.command = "python3\napp.py";
	expect_text(&p,
		    "# callgrind format\nversion: 1\ncreator: pyspyc\ncmd: python3?app.py\n"
		    "pid: 4242\npositions: line\nevents: Samples\nsummary: 4\n"
		    "\nfl=(1) a?b.py\nfn=(1) (1) x?fn=evil\n"
		    "2 4\n"
		    "\nfl=(2) ???\nfn=(2) <truncated>\n"
		    "cfl=(1)\ncfn=(1)\ncalls=4 0\n0 4\n");
}

static void test_empty(void **state)
{
	struct profile p = fixture_profile(NULL, 0, NULL, 0);

	(void)state;
	expect_text(&p, HEADER("0"));
}

/* Named by its ending or, as Callgrind names its files, its beginning,
 * which comes first; only the name's last component begins it. */
static void test_names(void **state)
{
	const struct out_format *cg = out_format_by_name("callgrind");

	(void)state;
	assert_non_null(cg);
	assert_ptr_equal(out_format_by_path("x.callgrind"), cg);
	assert_ptr_equal(out_format_by_path("run/callgrind.out.4242"), cg);
	assert_ptr_equal(out_format_by_path("callgrind.out.x.svg"), cg);
	assert_ptr_equal(out_format_by_path("callgrind.out.1/x.svg"), out_format_by_name("flamegraph"));
	assert_ptr_equal(out_format_by_path("callgrind.outx"), NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_self_and_calls),
		cmocka_unit_test(test_markers_and_hostile_names),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
