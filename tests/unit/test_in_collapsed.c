/* test_in_collapsed.c - collapsed stacks read back (input.h): what our
 * writer wrote comes back as the same text, markers as markers and Python
 * frames with their file and line; flamegraph.pl's bare frames are names;
 * inputs read into one table merge; a malformed line is named with its
 * number and what is wrong.
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

#include "out_expect.h"
#include "pyspyc/input.h"
#include "pyspyc/stacktab.h"

static struct stacktab *table(void)
{
	static const struct stacktab_limits lim = { 1024, 4096, 4096 };
	struct stacktab *t;

	assert_int_equal(stacktab_new(&t, &lim), 0);
	return t;
}

static void read_ok(struct stacktab *t, const char *text, struct in_totals *tot)
{
	struct in_error e = { 0 };

	assert_int_equal(in_collapsed_read(t, text, strlen(text), tot, &e), 0);
}

static void expect_table(struct stacktab *t, const char *want)
{
	struct profile p = { 0 };

	assert_int_equal(stacktab_snapshot(t, &p), 0);
	expect_output(out_collapsed_write, &p, want);
	profile_release(&p);
}

/* The frame of stack line `line`'s depth-th frame, by reading the profile. */
static const struct profile_frame *frame_at(const struct profile *p, const char *root,
					    uint32_t depth)
{
	uint32_t i;

	for (i = 0; i < p->nstacks; i++)
		if (!strcmp(p->frames[p->stacks[i].frames[0]].name, root) &&
		    p->stacks[i].depth > depth)
			return &p->frames[p->stacks[i].frames[depth]];
	fail_msg("no stack from %s", root);
	return NULL;
}

static void test_ours_come_back_the_same(void **state)
{
	/* In the writer's order (by frame text), as out_collapsed writes. */
	const char *text =
		"<module> (app.py:40);main (app.py:31);wait (threading.py) 2\n"
		"<module> (app.py:40);main (app.py:31);work (app.py:12) 7\n"
		"process 41:\"python3 app.py --x\";thread 42 \"MainThread\";main (app.py:31) 5\n"
		"thread 0x7f00aa \"Worker, 2\";run (/usr/lib/python3.11/threading.py:975) 1\n";
	struct stacktab *t = table();
	struct in_totals tot = { 0 };
	const struct profile_frame *f;
	struct profile p = { 0 };

	(void)state;
	read_ok(t, text, &tot);
	assert_int_equal(tot.samples, 15);
	assert_int_equal(tot.stacks, 4);
	expect_table(t, text);
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.total, 15);
	f = frame_at(&p, "<module>", 2);
	assert_string_equal(f->name, "wait");
	assert_string_equal(f->file, "threading.py");
	assert_int_equal(f->line, 0);
	f = &p.frames[p.stacks[1].frames[2]];
	assert_string_equal(f->name, "work");
	assert_string_equal(f->file, "app.py");
	assert_int_equal(f->line, 12);
	assert_int_equal(f->kind, FRAME_APP);
	f = frame_at(&p, "<module>", 1);
	assert_int_equal(f->line, 31);
	f = frame_at(&p, "process 41:\"python3 app.py --x\"", 0);
	assert_int_equal(f->kind, FRAME_PROCESS);
	assert_int_equal(f->line, 41);
	assert_string_equal(f->file, "python3 app.py --x");
	f = frame_at(&p, "process 41:\"python3 app.py --x\"", 1);
	assert_int_equal(f->kind, FRAME_THREAD);
	assert_int_equal(f->line, 42);
	assert_string_equal(f->file, "MainThread");
	f = frame_at(&p, "thread 0x7f00aa \"Worker, 2\"", 0);
	assert_int_equal(f->kind, FRAME_THREAD);
	assert_int_equal(f->line, 0);
	f = frame_at(&p, "thread 0x7f00aa \"Worker, 2\"", 1);
	assert_string_equal(f->file, "/usr/lib/python3.11/threading.py");
	assert_int_equal(f->kind, FRAME_STDLIB);
	profile_release(&p);
	stacktab_free(t);
}

/* flamegraph.pl's dialect: bare frames, CRLF, blank lines, a frame that
 * only looks like a marker where none may be, parentheses that are no
 * file (empty: " ()", "f ()"; "(x:1)" without the space). */
static void test_foreign_dialect(void **state)
{
	const char *text = "\r\n"
			   "perl;main;[unknown] 3\r\n"
			   "\n"
			   "a;process 1:\"x\" 2\n"
			   "b;(x.py:1) 1\n"
			   "c;d (lib (1)) 4\n"
			   "e; () 1\n"
			   "e;f () 1";
	struct stacktab *t = table();
	struct in_totals tot = { 0 };
	const struct profile_frame *f;
	struct profile p = { 0 };

	(void)state;
	read_ok(t, text, &tot);
	assert_int_equal(tot.samples, 12);
	expect_table(t, "a;process 1:\"x\" 2\n"
			"b;(x.py:1) 1\n"
			"c;d (lib (1)) 4\n"
			"e; () 1\n"
			"e;f () 1\n"
			"perl;main;[unknown] 3\n");
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	f = frame_at(&p, "a", 1);
	assert_int_equal(f->kind, FRAME_APP); /* not at the root: no marker */
	assert_string_equal(f->file, "");
	f = frame_at(&p, "b", 1);
	assert_string_equal(f->name, "(x.py:1)");
	f = frame_at(&p, "c", 1);
	assert_string_equal(f->name, "d (lib");
	assert_string_equal(f->file, "1)");
	f = frame_at(&p, "e", 1);
	assert_string_equal(f->name, " ()");
	assert_string_equal(f->file, "");
	profile_release(&p);
	stacktab_free(t);
}

/* Two inputs read into one table: counts add, stacks merge. */
static void test_inputs_merge(void **state)
{
	struct stacktab *t = table();
	struct in_totals tot = { 0 };

	(void)state;
	read_ok(t, "a (x.py:1);b (x.py:2) 3\nc 1\n", &tot);
	read_ok(t, "a (x.py:1);b (x.py:2) 4\nd 0\n", &tot);
	assert_int_equal(tot.samples, 8);
	assert_int_equal(tot.stacks, 4);
	expect_table(t, "a (x.py:1);b (x.py:2) 7\nc 1\n");
	stacktab_free(t);
}

static void expect_bad_n(const char *text, size_t len, uint64_t line, const char *what)
{
	struct stacktab *t = table();
	struct in_totals tot = { 0 };
	struct in_error e = { 0 };

	assert_int_equal(in_collapsed_read(t, text, len, &tot, &e), -EINVAL);
	assert_int_equal(e.line, line);
	if (!strstr(e.what, what))
		fail_msg("'%s': '%s' does not say '%s'", text, e.what, what);
	stacktab_free(t);
}

static void expect_bad(const char *text, uint64_t line, const char *what)
{
	expect_bad_n(text, strlen(text), line, what);
}

static void test_malformed_lines_named(void **state)
{
	char deep[(IN_MAX_DEPTH + 1) * 2 + 8];
	size_t i;

	(void)state;
	expect_bad("a 1\nb\n", 2, "no sample count");
	expect_bad("a 1\n\nb x\n", 3, "'x' is not a whole number");
	expect_bad("a 1.5\n", 1, "'1.5' is not a whole number");
	expect_bad("a -1\n", 1, "'-1' is not a whole number");
	expect_bad("a 18446744073709551616\n", 1, "too large");
	expect_bad("a;;b 1\n", 1, "an empty frame");
	expect_bad(";b 1\n", 1, "an empty frame");
	expect_bad("a; 1\n", 1, "an empty frame");
	expect_bad(" 1\n", 1, "no stack");
	expect_bad_n("a 1\nb\0c 2\n", 10, 2, "NUL");
	expect_bad("a 9007199254740992\nb 1\n", 2, "2^53");
	for (i = 0; i <= IN_MAX_DEPTH; i++)
		memcpy(deep + 2 * i, "a;", 2);
	memcpy(deep + 2 * IN_MAX_DEPTH + 1, " 1\n", 4);
	expect_bad(deep, 1, "frames in one stack");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ours_come_back_the_same),
		cmocka_unit_test(test_foreign_dialect),
		cmocka_unit_test(test_inputs_merge),
		cmocka_unit_test(test_malformed_lines_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
