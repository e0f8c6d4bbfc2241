/* test_utf8.c - utf8_shorten: how a long path or command shows in a
 * message (its start and its end, never a split character). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pyspyc/utf8.h"

#define MAX 400

static void test_short_names_whole(void **state)
{
	char buf[MAX + 1], name[MAX + 1];
	const char *s;

	(void)state;
	s = utf8_shorten("p.svg", MAX, buf, sizeof(buf));
	assert_string_equal(s, "p.svg");
	assert_string_equal(utf8_shorten("", MAX, buf, sizeof(buf)), "");
	/* Exactly the bound: whole. */
	memset(name, 'a', MAX);
	name[MAX] = '\0';
	s = utf8_shorten(name, MAX, buf, sizeof(buf));
	assert_ptr_equal(s, name);
}

static void test_long_name_keeps_both_ends(void **state)
{
	char buf[MAX + 1], name[1000];
	const char *s;
	size_t len;

	(void)state;
	/* "/tmp/" + 990 'n' + ".svg" */
	memset(name, 'n', sizeof(name));
	memcpy(name, "/tmp/", 5);
	memcpy(name + sizeof(name) - 5, ".svg", 5);
	s = utf8_shorten(name, MAX, buf, sizeof(buf));
	assert_ptr_equal(s, buf);
	len = strlen(s);
	assert_int_equal(len, MAX);
	assert_memory_equal(s, "/tmp/nnn", 8);
	assert_string_equal(s + len - 8, "nnnn.svg");
	assert_non_null(strstr(s, "..."));
	/* 198 bytes of the start, "...", 199 of the end (the odd byte). */
	assert_memory_equal(s + 198, "...", 3);
	assert_memory_equal(s, name, 198);
	assert_string_equal(s + 201, name + strlen(name) - 199);
}

/* No cut falls inside a multi-byte character: each end loses the
 * character it would split, so the result is shorter than max. */
static void test_cuts_between_characters(void **state)
{
	char buf[MAX + 1], name[900];
	const char *s, *dots;
	size_t i, len;

	(void)state;
	/* U+00E9 (2 bytes) then U+20AC (3 bytes), repeated: no half of the
	 * budget falls on a boundary of both. */
	for (i = 0; i + 5 < sizeof(name); i += 5)
		memcpy(name + i, "\xc3\xa9\xe2\x82\xac", 5);
	name[i] = '\0';
	s = utf8_shorten(name, MAX, buf, sizeof(buf));
	len = strlen(s);
	assert_true(len <= MAX && len >= MAX - 6);
	dots = strstr(s, "...");
	assert_non_null(dots);
	/* Every sequence on either side is whole. */
	for (i = 0; i < len;) {
		uint32_t cp;
		size_t n;

		if (s + i == dots) {
			i += 3;
			continue;
		}
		n = utf8_seq((const unsigned char *)s + i, len - i, &cp);
		assert_true(n == 2 || n == 3);
		i += n;
	}
	assert_int_equal(i, len);
}

/* Without room for both ends, the name is shown whole. */
static void test_no_room(void **state)
{
	char buf[8], name[20] = "0123456789abcdefghi";

	(void)state;
	assert_ptr_equal(utf8_shorten(name, 12, buf, sizeof(buf)), name);
	assert_ptr_equal(utf8_shorten(name, 5, buf, sizeof(buf)), name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_names_whole),
		cmocka_unit_test(test_long_name_keeps_both_ends),
		cmocka_unit_test(test_cuts_between_characters),
		cmocka_unit_test(test_no_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
