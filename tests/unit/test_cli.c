/* test_cli.c - strict number parsing and the table-driven option parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/cli.h"

/* ---- numbers --------------------------------------------------------------- */

static void test_parse_ll_ok(void **state)
{
	static const struct {
		const char *s;
		long long v;
	} ok[] = {
		{ "0", 0 }, { "1", 1 }, { "-1", -1 }, { "+7", 7 }, { "-0", 0 },
		{ "007", 7 }, { "4194304", 4194304 },
		{ "9223372036854775807", 9223372036854775807ll },
		{ "-9223372036854775808", -9223372036854775807ll - 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		long long v = 12345;

		assert_int_equal(cli_parse_ll(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
}

static void test_parse_ll_strict(void **state)
{
	static const char *const bad[] = {
		"", " 1", "\t1", "\n1", "1 ", "1x", "x1", "abc", "1.0", "1e3",
		"0x10", "--1", "+", "-", "1,000", "١",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long v = 12345;

		assert_int_equal(cli_parse_ll(bad[i], &v), -EINVAL);
		assert_true(v == 12345); /* untouched on failure */
	}
	{
		long long v = 12345;

		assert_int_equal(cli_parse_ll(NULL, &v), -EINVAL);
		assert_int_equal(cli_parse_ll("99999999999999999999", &v), -ERANGE);
		assert_int_equal(cli_parse_ll("-99999999999999999999", &v), -ERANGE);
		assert_int_equal(cli_parse_ll("9223372036854775808", &v), -ERANGE);
		assert_true(v == 12345);
	}
}

static void test_parse_double_ok(void **state)
{
	static const struct {
		const char *s;
		double v;
	} ok[] = {
		{ "0", 0 }, { "1", 1 }, { "1.5", 1.5 }, { "-2.25", -2.25 },
		{ ".5", 0.5 }, { "5.", 5 }, { "1e3", 1000 }, { "1E-2", 0.01 },
		{ "+3", 3 }, { "100000", 100000 },
	};
	size_t i;
	double v;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -999;
		assert_int_equal(cli_parse_double(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
	v = 1;
	assert_int_equal(cli_parse_double("-0", &v), 0);
	assert_true(v == 0 && signbit(v));
}

static void test_parse_double_strict(void **state)
{
	static const char *const bad[] = {
		"", " 1", "\t1", "\n1", "1 ", "1x", "abc", "1..0", "e3", "--1",
		"1e", "+", "-", ".",
	};
	static const char *const nonfinite[] = {
		"1e999", "-1e999", "nan", "NaN", "-nan", "inf", "-inf", "Infinity",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v = 42;

		assert_int_equal(cli_parse_double(bad[i], &v), -EINVAL);
		assert_true(v == 42);
	}
	for (i = 0; i < sizeof(nonfinite) / sizeof(nonfinite[0]); i++) {
		double v = 42;
		int r = cli_parse_double(nonfinite[i], &v);

		/* Rejected, either as out of range or as not a number. */
		assert_true(r == -ERANGE || r == -EINVAL);
		assert_true(v == 42);
	}
	{
		double v = 42;

		assert_int_equal(cli_parse_double(NULL, &v), -EINVAL);
		assert_int_equal(cli_parse_double("1e999", &v), -ERANGE);
	}
}

/* Leading white space of any kind is not part of a number: strtod and
 * strtoll skip every isspace() byte, not only " \t\n". */
static void test_parse_rejects_all_leading_space(void **state)
{
	static const char *const bad[] = { "\r1", "\v1", "\f1", "\r\n1" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long ll = 12345;
		double d = 42;

		assert_int_equal(cli_parse_ll(bad[i], &ll), -EINVAL);
		assert_int_equal(cli_parse_double(bad[i], &d), -EINVAL);
	}
}

/* ---- option table ------------------------------------------------------------ */

struct args {
	int verbose;
	long long count;
	double rate;
	const char *name;
	struct opt_list outs;
	int quiet;
};

#define OFF(f) offsetof(struct args, f)

static const struct opt opts[] = {
	{ 'v', "verbose", OPT_FLAG, NULL, "say more", OFF(verbose), 0, 0, 0 },
	{ 'c', "count", OPT_INT, "N", "how many", OFF(count), 1, 100, 0 },
	{ 'r', "rate", OPT_DOUBLE, "HZ", "how often", OFF(rate), 0, 1000, 1 },
	{ 'n', "name", OPT_STRING, "NAME", "what", OFF(name), 0, 0, 0 },
	{ 'o', "output", OPT_LIST, "FILE", "where", OFF(outs), 0, 0, 0 },
	{ 0, "quiet", OPT_FLAG, NULL, "say less", OFF(quiet), 0, 0, 0 },
};

static const struct cmd_usage usage_cmd = {
	.name = "test",
	.synopsis = "[OPTIONS] [--] COMMAND",
	.about = "A test command.",
	.opts = opts,
	.nopts = sizeof(opts) / sizeof(opts[0]),
	.examples = "  pyspyc test -c 3 -- ls\n",
	.takes_command = 1,
};

static const struct cmd_usage usage_nocmd = {
	.name = "plain",
	.synopsis = "[OPTIONS]",
	.about = "No command.",
	.opts = opts,
	.nopts = sizeof(opts) / sizeof(opts[0]),
	.examples = NULL,
	.takes_command = 0,
};

struct result {
	struct args a;
	int rc, cmd, help, argc;
	char err[256];
};

/* Parse a NULL-terminated list of words (argv[0] is added). */
static void parse(const struct cmd_usage *u, struct result *r, ...)
{
	static char *argv[64];
	va_list ap;
	char *w;
	int argc = 0;

	memset(r, 0, sizeof(*r));
	r->cmd = -1;
	r->help = -1;
	argv[argc++] = (char *)"pyspyc-test";
	va_start(ap, r);
	while ((w = va_arg(ap, char *)) != NULL) {
		assert_true(argc < 63);
		argv[argc++] = w;
	}
	va_end(ap);
	argv[argc] = NULL;
	r->argc = argc;
	r->rc = cli_parse(u, argc, argv, &r->a, &r->cmd, &r->help, r->err,
			  sizeof(r->err));
}

static void expect_err(const struct result *r, const char *needle)
{
	assert_int_equal(r->rc, -EINVAL);
	if (!strstr(r->err, needle))
		fail_msg("error '%s' does not mention '%s'", r->err, needle);
	assert_null(strchr(r->err, '\n'));
}

static void test_no_args(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cmd, 1);
	assert_int_equal(r.help, 0);
	assert_int_equal(r.a.verbose, 0);
}

static void test_long_and_short_forms(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "--verbose", "--count", "5", "--rate", "99.5",
	      "--name", "bob", "--output", "a.svg", "--quiet", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.verbose, 1);
	assert_int_equal(r.a.quiet, 1);
	assert_true(r.a.count == 5);
	assert_true(r.a.rate == 99.5);
	assert_string_equal(r.a.name, "bob");
	assert_int_equal(r.a.outs.n, 1);
	assert_string_equal(r.a.outs.v[0], "a.svg");
	assert_int_equal(r.cmd, r.argc);

	parse(&usage_cmd, &r, "-v", "-c", "6", "-r", "1e2", "-n", "al", "-o", "x",
	      "-o", "y", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.verbose, 1);
	assert_true(r.a.count == 6);
	assert_true(r.a.rate == 100);
	assert_string_equal(r.a.name, "al");
	assert_int_equal(r.a.outs.n, 2);
	assert_string_equal(r.a.outs.v[0], "x");
	assert_string_equal(r.a.outs.v[1], "y");
}

static void test_attached_values(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "--count=7", "--rate=0.5", "--name=a=b", "--output=o1",
	      "-c8", "-r2.5", "-nzed", "-oo2", NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.count == 8);   /* last wins */
	assert_true(r.a.rate == 2.5);
	assert_string_equal(r.a.name, "zed");
	assert_int_equal(r.a.outs.n, 2);
	assert_string_equal(r.a.outs.v[0], "o1");
	assert_string_equal(r.a.outs.v[1], "o2");

	/* "=" only splits the long name from its value once. */
	parse(&usage_cmd, &r, "--name=a=b", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.name, "a=b");

	/* A value that looks like an option is still the value. */
	parse(&usage_cmd, &r, "--name", "-v", "--output", "--", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.name, "-v");
	assert_int_equal(r.a.verbose, 0);
	assert_string_equal(r.a.outs.v[0], "--");
}

static void test_int_range(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "-c", "1", NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.count == 1);
	parse(&usage_cmd, &r, "-c", "100", NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.count == 100);

	parse(&usage_cmd, &r, "-c", "0", NULL);
	expect_err(&r, "--count");
	expect_err(&r, "'0'");
	parse(&usage_cmd, &r, "--count=101", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "-c", "-5", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "-c", "5x", NULL);
	expect_err(&r, "--count");
	expect_err(&r, "5x");
	parse(&usage_cmd, &r, "-c", "2.0", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "-c", "99999999999999999999", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "--count=", NULL);
	expect_err(&r, "--count");
}

static void test_double_exclusive_min(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "-r", "0.001", NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.rate == 0.001);
	parse(&usage_cmd, &r, "-r", "1000", NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.rate == 1000);

	parse(&usage_cmd, &r, "-r", "0", NULL);
	expect_err(&r, "--rate");
	expect_err(&r, "above");
	parse(&usage_cmd, &r, "-r", "-0", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "-r", "-1", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "-r", "1000.0001", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "-r", "nan", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "-r", "inf", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "-r", "1e999", NULL);
	expect_err(&r, "--rate");
	parse(&usage_cmd, &r, "--rate=fast", NULL);
	expect_err(&r, "--rate");
	expect_err(&r, "fast");
}

static void test_missing_value(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "--count", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "-c", NULL);
	expect_err(&r, "--count");
	parse(&usage_cmd, &r, "-v", "--name", NULL);
	expect_err(&r, "--name");
	parse(&usage_cmd, &r, "-o", NULL);
	expect_err(&r, "--output");
	/* Empty strings are not values. */
	parse(&usage_cmd, &r, "--name", "", NULL);
	expect_err(&r, "--name");
	parse(&usage_cmd, &r, "--output=", NULL);
	expect_err(&r, "--output");
}

static void test_unknown_option(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "--bogus", NULL);
	expect_err(&r, "--bogus");
	parse(&usage_cmd, &r, "--bogus=3", NULL);
	expect_err(&r, "--bogus");
	parse(&usage_cmd, &r, "-x", NULL);
	expect_err(&r, "-x");
	/* A prefix of a long name is not that option. */
	parse(&usage_cmd, &r, "--verb", NULL);
	expect_err(&r, "--verb");
	parse(&usage_cmd, &r, "--verbosely", NULL);
	expect_err(&r, "--verbosely");
	/* Flags take no value. */
	parse(&usage_cmd, &r, "--verbose=1", NULL);
	expect_err(&r, "--verbose");
	parse(&usage_cmd, &r, "-vx", NULL);
	expect_err(&r, "-vx");
	/* Unknown option after good ones. */
	parse(&usage_cmd, &r, "-v", "-c", "3", "--nope", NULL);
	expect_err(&r, "--nope");
}

static void test_double_dash_ends_options(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "-v", "--", "-c", "5", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.verbose, 1);
	assert_true(r.a.count == 0);
	assert_int_equal(r.cmd, 3);     /* "-c" */

	parse(&usage_cmd, &r, "--", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cmd, 2);     /* == argc: no command */
	assert_int_equal(r.cmd, r.argc);

	parse(&usage_cmd, &r, "--", "--", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cmd, 2);
}

static void test_command_starts_at_first_word(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "-c", "3", "python3", "app.py", "-v", "--count", "9",
	      NULL);
	assert_int_equal(r.rc, 0);
	assert_true(r.a.count == 3);
	assert_int_equal(r.a.verbose, 0);   /* belongs to the command */
	assert_int_equal(r.cmd, 3);

	/* A lone "-" is a word, not an option. */
	parse(&usage_cmd, &r, "-v", "-", "x", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cmd, 2);

	/* Without a command allowed, a word is an error that names it. */
	parse(&usage_nocmd, &r, "-v", "stray", NULL);
	expect_err(&r, "stray");
	parse(&usage_nocmd, &r, "-v", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cmd, r.argc);
}

static void test_help(void **state)
{
	struct result r;

	(void)state;
	parse(&usage_cmd, &r, "-h", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.help, 1);
	parse(&usage_cmd, &r, "-v", "--help", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.help, 1);
	/* After "--" or in the command, -h is the command's. */
	parse(&usage_cmd, &r, "--", "-h", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.help, 0);
	parse(&usage_cmd, &r, "ls", "-h", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.help, 0);
	assert_int_equal(r.cmd, 1);
	/* As an option's value it is that value. */
	parse(&usage_cmd, &r, "--name", "-h", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.help, 0);
	assert_string_equal(r.a.name, "-h");
}

static void test_list_overflow(void **state)
{
	static char words[OPT_LIST_MAX + 1][8];
	char *argv[2 * (OPT_LIST_MAX + 1) + 2];
	struct args a;
	char err[256];
	int argc = 0, i, cmd, help;

	(void)state;
	argv[argc++] = (char *)"pyspyc-test";
	for (i = 0; i < OPT_LIST_MAX; i++) {
		snprintf(words[i], sizeof(words[i]), "f%d", i);
		argv[argc++] = (char *)"-o";
		argv[argc++] = words[i];
	}
	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	assert_int_equal(cli_parse(&usage_cmd, argc, argv, &a, &cmd, &help, err,
				   sizeof(err)), 0);
	assert_int_equal(a.outs.n, OPT_LIST_MAX);
	for (i = 0; i < OPT_LIST_MAX; i++)
		assert_string_equal(a.outs.v[i], words[i]);

	snprintf(words[OPT_LIST_MAX], sizeof(words[0]), "last");
	argv[argc++] = (char *)"--output";
	argv[argc++] = words[OPT_LIST_MAX];
	memset(&a, 0, sizeof(a));
	assert_int_equal(cli_parse(&usage_cmd, argc, argv, &a, &cmd, &help, err,
				   sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--output"));
	assert_int_equal(a.outs.n, OPT_LIST_MAX);
}

/* The error buffer is bounded and always terminated. */
static void test_small_error_buffer(void **state)
{
	char *argv[] = { (char *)"x", (char *)"--an-unknown-option-with-a-long-name",
			 NULL };
	char err[8];
	struct args a;
	int cmd, help;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(err, 'Z', sizeof(err));
	assert_int_equal(cli_parse(&usage_cmd, 2, argv, &a, &cmd, &help, err,
				   sizeof(err)), -EINVAL);
	assert_non_null(memchr(err, '\0', sizeof(err)));
}

static void test_print_help(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	size_t i;

	(void)state;
	assert_non_null(f);
	cli_print_help(&usage_cmd, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "Usage: pyspyc test [OPTIONS] [--] COMMAND"));
	assert_non_null(strstr(buf, "-c, --count N"));
	assert_non_null(strstr(buf, "--quiet"));
	assert_non_null(strstr(buf, "-h, --help"));
	for (i = 0; i < usage_cmd.nopts; i++)
		assert_non_null(strstr(buf, opts[i].help));
	/* --help ends with the examples. */
	assert_true(len >= strlen(usage_cmd.examples));
	assert_string_equal(buf + len - strlen(usage_cmd.examples), usage_cmd.examples);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ll_ok),
		cmocka_unit_test(test_parse_ll_strict),
		cmocka_unit_test(test_parse_double_ok),
		cmocka_unit_test(test_parse_double_strict),
		cmocka_unit_test(test_parse_rejects_all_leading_space),
		cmocka_unit_test(test_no_args),
		cmocka_unit_test(test_long_and_short_forms),
		cmocka_unit_test(test_attached_values),
		cmocka_unit_test(test_int_range),
		cmocka_unit_test(test_double_exclusive_min),
		cmocka_unit_test(test_missing_value),
		cmocka_unit_test(test_unknown_option),
		cmocka_unit_test(test_double_dash_ends_options),
		cmocka_unit_test(test_command_starts_at_first_word),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_list_overflow),
		cmocka_unit_test(test_small_error_buffer),
		cmocka_unit_test(test_print_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
