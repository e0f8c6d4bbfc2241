/* test_json.c - the JSON writer: escaping of any bytes, and layout. */
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

#include "pyspyc/json.h"

static const char *esc(const char *s, size_t len)
{
	static char out[512];

	json_escape(s, len, out, sizeof(out));
	return out;
}

static void test_escape(void **state)
{
	(void)state;
	assert_string_equal(esc("plain", 5), "plain");
	assert_string_equal(esc("a\"b\\c", 5), "a\\\"b\\\\c");
	assert_string_equal(esc("\n\t\r\x01\x1f\x7f", 6), "\\n\\t\\r\\u0001\\u001f\\u007f");
	assert_string_equal(esc("</script>", 9), "</script>");
	/* valid UTF-8 passes, U+2028/2029 are escaped for JavaScript */
	assert_string_equal(esc("\xc3\xa9\xf0\x9f\x98\x80", 6), "\xc3\xa9\xf0\x9f\x98\x80");
	assert_string_equal(esc("\xe2\x80\xa8\xe2\x80\xa9", 6), "\\u2028\\u2029");
	/* a NUL inside the given length */
	assert_string_equal(esc("a\0b", 3), "a\\u0000b");
	/* invalid: stray continuation, overlong, surrogate, cut short, 0xff */
	assert_string_equal(esc("\x80", 1), "\\ufffd");
	assert_string_equal(esc("\xc0\xaf", 2), "\\ufffd\\ufffd");
	assert_string_equal(esc("\xed\xa0\x80", 3), "\\ufffd\\ufffd\\ufffd");
	assert_string_equal(esc("x\xe2\x98", 3), "x\\ufffd\\ufffd");
	assert_string_equal(esc("\xff" "a", 2), "\\ufffda");
	assert_string_equal(esc("\xf4\x90\x80\x80", 4), "\\ufffd\\ufffd\\ufffd\\ufffd");
}

static void test_escape_cut(void **state)
{
	char out[8];
	size_t need;

	(void)state;
	/* the needed length is reported; what fits is whole pieces */
	need = json_escape("ab\"cdef", 7, out, sizeof(out));
	assert_int_equal(need, 8);
	assert_string_equal(out, "ab\\\"cde");
	need = json_escape("\x01\x01", 2, out, sizeof(out));
	assert_int_equal(need, 12);
	assert_string_equal(out, "\\u0001");
}

static char *doc(void (*build)(struct json *), int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	assert_non_null(f);
	json_init(&j, f);
	build(&j);
	*rc = json_finish(&j);
	fclose(f);
	return buf;
}

/* Build a document that must close cleanly and read exactly want. */
static void expect_doc(void (*build)(struct json *), const char *want)
{
	int rc;
	char *s = doc(build, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s, want);
	free(s);
}

static void build_nested(struct json *j)
{
	json_object_begin(j);
	json_key(j, "pid");
	json_int(j, 42);
	json_key(j, "name");
	json_string(j, "a\"b");
	json_key(j, "none");
	json_string(j, NULL);
	json_key(j, "empty");
	json_array_begin(j);
	json_array_end(j);
	json_key(j, "list");
	json_array_begin(j);
	json_bool(j, 1);
	json_uint(j, 18446744073709551615ull);
	json_object_begin(j);
	json_key(j, "k\n");
	json_int(j, -1);
	json_object_end(j);
	json_array_end(j);
	json_object_end(j);
}

static void test_document(void **state)
{
	(void)state;
	expect_doc(build_nested,
		"{\n"
		"  \"pid\": 42,\n"
		"  \"name\": \"a\\\"b\",\n"
		"  \"none\": null,\n"
		"  \"empty\": [],\n"
		"  \"list\": [\n"
		"    true,\n"
		"    18446744073709551615,\n"
		"    {\n"
		"      \"k\\n\": -1\n"
		"    }\n"
		"  ]\n"
		"}\n");
}

static void build_oneline(struct json *j)
{
	json_object_begin(j);
	json_key(j, "events");
	json_array_begin(j);
	json_oneline(j);
	json_object_begin(j);
	json_key(j, "ph");
	json_string(j, "B");
	json_key(j, "args");
	json_object_begin(j);
	json_key(j, "line");
	json_int(j, 3);
	json_object_end(j);
	json_key(j, "empty");
	json_array_begin(j);
	json_array_end(j);
	json_object_end(j);
	json_oneline(j);
	json_array_begin(j);
	json_uint(j, 1);
	json_uint(j, 2);
	json_array_end(j);
	json_uint(j, 7);
	json_array_end(j);
	json_object_end(j);
}

static void test_oneline(void **state)
{
	(void)state;
	/* Only the containers asked for are on one line; the one after
	 * them is laid out again. */
	expect_doc(build_oneline,
		"{\n"
		"  \"events\": [\n"
		"    {\"ph\":\"B\",\"args\":{\"line\":3},\"empty\":[]},\n"
		"    [1,2],\n"
		"    7\n"
		"  ]\n"
		"}\n");
}

static void build_doubles(struct json *j)
{
	json_array_begin(j);
	json_oneline(j);
	json_array_begin(j);
	json_double(j, 0.01);
	json_double(j, 1.0 / 3.0);
	json_double(j, 0.1 + 0.2);
	json_double(j, -2.5e-7);
	json_double(j, INFINITY);
	json_double(j, NAN);
	json_double(j, 1e21);
	json_double(j, 1234567.891);
	json_array_end(j);
	json_oneline(j);
	json_array_begin(j);
	json_decimal(j, 5201908, 3);
	json_decimal(j, 5201900, 3);
	json_decimal(j, 5000, 3);
	json_decimal(j, -1, 3);
	json_decimal(j, 0, 3);
	json_decimal(j, 42, 0);
	json_decimal(j, INT64_MIN, 18);
	json_array_end(j);
	json_array_end(j);
}

static void test_double(void **state)
{
	(void)state;
	/* Shortest exact text; the infinity and the NaN as null.  Decimals
	 * exact, without trailing zeros. */
	expect_doc(build_doubles, "[\n  [0.01,0.3333333333333333,0.30000000000000004,-2.5e-07,"
				  "null,null,1e+21,1234567.891],\n"
				  "  [5201.908,5201.9,5,-0.001,0,42,-9.223372036854775808]\n]\n");
}

static void build_unclosed(struct json *j)
{
	json_object_begin(j);
	json_key(j, "a");
	json_array_begin(j);
}

static void build_deep(struct json *j)
{
	int i;

	for (i = 0; i < JSON_MAX_DEPTH + 5; i++)
		json_array_begin(j);
	for (i = 0; i < JSON_MAX_DEPTH + 5; i++)
		json_array_end(j);
}

static void test_misuse(void **state)
{
	int rc;
	char *s;

	(void)state;
	s = doc(build_unclosed, &rc);
	assert_int_equal(rc, -EINVAL);
	free(s);
	s = doc(build_deep, &rc);
	assert_int_equal(rc, -EINVAL);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_cut),
		cmocka_unit_test(test_document),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_oneline),
		cmocka_unit_test(test_double),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
