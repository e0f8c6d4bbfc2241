/* test_py_obj.c - reading Python objects (py_obj.h).
 *
 * The pure formatters (strings, floats, ints) are tested on values.  The
 * readers are tested on byte images of objects built in this process's own
 * memory, laid out with each CPython version's generated py_layout, and read
 * through a struct rmem on our own pid (process_vm_readv works on oneself),
 * so every dict model, instance-dict model and frame model is exercised
 * without a Python.  Hostile images (huge counts, unmapped pointers, a heap
 * type that calls itself "int", a type name with no NUL) must give an
 * error or a harmless text, never a crash or an unbounded loop.
 */
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
#include <sys/mman.h>
#include <unistd.h>

#include "pyspyc/py_obj.h"

/* ---- pure formatting --------------------------------------------------- */

static const char *fmt_cp(const uint32_t *cp, size_t n, uint64_t total,
			  const char *prefix, int flags, size_t size)
{
	static char out[4096];

	assert_true(size <= sizeof(out));
	py_text_format(cp, n, total, prefix, flags, out, size);
	assert_true(strlen(out) < size);
	return out;
}

/* ASCII/Latin-1 text given as bytes, one code point each. */
static const char *fmt(const char *s, int flags)
{
	uint32_t cp[256];
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++)
		cp[i] = (uint8_t)s[i];
	return fmt_cp(cp, n, n, flags & PY_TEXT_BYTES ? "b" : "", flags, 4096);
}

static void test_text_quotes(void **state)
{
	(void)state;
	assert_string_equal(fmt("abc", PY_TEXT_QUOTE), "'abc'");
	assert_string_equal(fmt("it's", PY_TEXT_QUOTE), "\"it's\"");
	assert_string_equal(fmt("say \"x\"", PY_TEXT_QUOTE), "'say \"x\"'");
	/* both: single quotes, the single one escaped (as Python) */
	assert_string_equal(fmt("it's \"x\"", PY_TEXT_QUOTE), "'it\\'s \"x\"'");
	assert_string_equal(fmt("", PY_TEXT_QUOTE), "''");
	assert_string_equal(fmt("a\\b", PY_TEXT_QUOTE), "'a\\\\b'");
	/* not quoting: quotes pass, backslashes are still escaped */
	assert_string_equal(fmt("it's \"x\"\\", 0), "it's \"x\"\\\\");
}

static void test_text_escapes(void **state)
{
	(void)state;
	assert_string_equal(fmt("a\nb\tc\rd", PY_TEXT_QUOTE), "'a\\nb\\tc\\rd'");
	assert_string_equal(fmt("\x01\x1f\x7f", PY_TEXT_QUOTE), "'\\x01\\x1f\\x7f'");
	assert_string_equal(fmt("\x1b[31mred", 0), "\\x1b[31mred");
	/* bytes: everything past ASCII as \xNN */
	assert_string_equal(fmt("\xff\x80" "a'", PY_TEXT_QUOTE | PY_TEXT_BYTES),
			    "b\"\\xff\\x80a'\"");
}

static void test_text_unicode(void **state)
{
	uint32_t ok[] = { 0xe9, 0x2603, 0x1f600, 'x' };
	uint32_t bad[] = { 0xa0, 0x200b, 0x202e, 0xdcff, 0xfeff, 0xe000, 0x10ffff, 0x110000, 0x85 };

	(void)state;
	assert_string_equal(fmt_cp(ok, 4, 4, "", PY_TEXT_QUOTE, 64),
			    "'\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80x'");
	assert_string_equal(fmt_cp(bad, 9, 9, "", 0, 256),
			    "\\xa0\\u200b\\u202e\\udcff\\ufeff\\ue000\\U0010ffff"
			    "\\U00110000\\x85");
}

static void test_text_cut(void **state)
{
	uint32_t cp[8] = { 'a', 'b', 'c', 0xe9, 0xe9, 0xe9, 0xe9, 0xe9 };
	const char *s;

	(void)state;
	/* the object is longer than what was read */
	assert_string_equal(fmt_cp(cp, 3, 5000, "", PY_TEXT_QUOTE, 64), "'abc'... (5000 chars)");
	assert_string_equal(fmt_cp(cp, 3, 5000, "b", PY_TEXT_QUOTE | PY_TEXT_BYTES, 64),
			    "b'abc'... (5000 bytes)");
	assert_string_equal(fmt_cp(cp, 3, 4, "", 0, 64), "abc...");
	/* the buffer is too small: cut at a character boundary, "..." */
	s = fmt_cp(cp, 8, 8, "", 0, 10);
	assert_string_equal(s, "abc\xc3\xa9...");
	s = fmt_cp(cp, 8, 8, "", 0, 4);
	assert_string_equal(s, "...");
	s = fmt_cp(cp, 8, 8, "", 0, 2);
	assert_string_equal(s, ".");
	s = fmt_cp(cp, 8, 8, "", 0, 1);
	assert_string_equal(s, "");
	/* exactly fitting needs no cut */
	s = fmt_cp(cp, 3, 3, "", 0, 4);
	assert_string_equal(s, "abc");
}

static void test_decode_utf8(void **state)
{
	const uint8_t good[] = "a\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80";
	const uint8_t bad[] = { 0xff, 'a', 0xc3, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x98 };
	uint32_t cp[16];
	size_t n, used;

	(void)state;
	n = py_text_decode_utf8(good, sizeof(good) - 1, cp, 16, &used);
	assert_int_equal(n, 4);
	assert_int_equal(used, sizeof(good) - 1);
	assert_int_equal(cp[1], 0xe9);
	assert_int_equal(cp[2], 0x2603);
	assert_int_equal(cp[3], 0x1f600);
	/* invalid, overlong, encoded surrogate, cut short: one escape a byte */
	n = py_text_decode_utf8(bad, sizeof(bad), cp, 16, &used);
	assert_int_equal(n, 10);
	assert_int_equal(cp[0], 0xdcff);
	assert_int_equal(cp[1], 'a');
	assert_int_equal(cp[2], 0xdcc3);
	assert_int_equal(cp[5], 0xdced);
	assert_int_equal(cp[9], 0xdc98);
	/* the cap is honoured */
	n = py_text_decode_utf8(good, sizeof(good) - 1, cp, 2, &used);
	assert_int_equal(n, 2);
	assert_int_equal(used, 3);
}

static void test_text_printable(void **state)
{
	char out[64];
	char big[5000];

	(void)state;
	py_text_printable("spin", 4, out, sizeof(out));
	assert_string_equal(out, "spin");
	py_text_printable("new\nline\x1b[0m", 12, out, sizeof(out));
	assert_string_equal(out, "new\\nline\\x1b[0m");
	/* valid UTF-8 passes; an invalid byte shows as Python shows it */
	py_text_printable("\xc3\xa9t\xc3\xa9\xff", 6, out, sizeof(out));
	assert_string_equal(out, "\xc3\xa9t\xc3\xa9\\udcff");
	/* a bidi override cannot reorder the line it is printed on */
	py_text_printable("a\xe2\x80\xae" "b", 5, out, sizeof(out));
	assert_string_equal(out, "a\\u202eb");
	memset(big, 'x', sizeof(big));
	py_text_printable(big, sizeof(big), out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + strlen(out) - 3, "...");
}

static const char *ffmt(double v)
{
	static char out[64];

	py_float_format(v, out, sizeof(out));
	return out;
}

static void test_float(void **state)
{
	(void)state;
	assert_string_equal(ffmt(0.1), "0.1");
	assert_string_equal(ffmt(0.25), "0.25");
	assert_string_equal(ffmt(1.0), "1.0");
	assert_string_equal(ffmt(-0.0), "-0.0");
	assert_string_equal(ffmt(0.0), "0.0");
	assert_string_equal(ffmt(123.456), "123.456");
	assert_string_equal(ffmt(1e15), "1000000000000000.0");
	assert_string_equal(ffmt(1e16), "1e+16");
	assert_string_equal(ffmt(1.5e16), "1.5e+16");
	assert_string_equal(ffmt(0.0001), "0.0001");
	assert_string_equal(ffmt(1e-05), "1e-05");
	assert_string_equal(ffmt(1.5e-7), "1.5e-07");
	assert_string_equal(ffmt(1e100), "1e+100");
	assert_string_equal(ffmt(2.0 / 3.0), "0.6666666666666666");
	assert_string_equal(ffmt(9007199254740993.0), "9007199254740992.0");
	assert_string_equal(ffmt(5e-324), "5e-324");
	assert_string_equal(ffmt(1.7976931348623157e308), "1.7976931348623157e+308");
	assert_string_equal(ffmt(INFINITY), "inf");
	assert_string_equal(ffmt(-INFINITY), "-inf");
	assert_string_equal(ffmt(NAN), "nan");
}

static const char *ifmt(const uint32_t *d, size_t n, unsigned shift, int neg, size_t max)
{
	static char out[128];

	out[0] = '\0';
	if (!py_int_format(d, n, shift, neg, max, out, sizeof(out)))
		return NULL;
	return out;
}

static void test_int(void **state)
{
	/* 2**100 + 7 in 30-bit digits */
	uint32_t big[] = { 7, 0, 0, 1u << 10 };
	uint32_t u64max[] = { 0x3fffffff, 0x3fffffff, 0xf };
	uint32_t d15[] = { 0x7fff, 1 }; /* 2**16 - 1 in 15-bit digits */
	uint32_t huge[40];
	uint32_t bad[] = { 1u << 30 };
	size_t i;

	(void)state;
	assert_string_equal(ifmt(NULL, 0, 30, 0, 60), "0");
	assert_string_equal(ifmt(big, 1, 30, 0, 60), "7");
	assert_string_equal(ifmt(big, 1, 30, 1, 60), "-7");
	assert_string_equal(ifmt(big, 4, 30, 0, 60), "1267650600228229401496703205383");
	assert_string_equal(ifmt(big, 4, 30, 1, 60), "-1267650600228229401496703205383");
	assert_string_equal(ifmt(u64max, 3, 30, 0, 60), "18446744073709551615");
	assert_string_equal(ifmt(d15, 2, 15, 0, 60), "65535");
	/* leading zero digits are ignored */
	assert_string_equal(ifmt((uint32_t[]){ 5, 0, 0 }, 3, 30, 0, 60), "5");
	/* 1000000000 exactly: a limb boundary */
	assert_string_equal(ifmt((uint32_t[]){ 1000000000 % (1u << 30) }, 1, 30, 0, 60),
			    "1000000000");
	for (i = 0; i < 40; i++)
		huge[i] = 0x3fffffff;
	/* 2**1200 - 1 has 362 digits */
	assert_string_equal(ifmt(huge, 40, 30, 0, 60), "<int of 362 digits>");
	assert_null(ifmt(bad, 1, 30, 0, 60));
	assert_null(ifmt(big, 1, 0, 0, 60));
}

/* ---- images of objects ------------------------------------------------- */

#define ARENA (4u << 20)

struct img {
	struct py_target t;
	const struct py_layout *L;
	struct rmem m;
	uint8_t *arena;
	size_t used;
	uint64_t t_none, t_int, t_str, t_bytes, t_dict, t_list, t_tuple, t_float,
		 t_bool, t_set, t_module, t_cell, t_code, t_thread, t_fake_int;
	uint64_t none;
};

static uint64_t A(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static uint8_t *P(uint64_t a)
{
	return (uint8_t *)(uintptr_t)a;
}

static uint64_t alloc(struct img *im, size_t n)
{
	uint64_t a;

	im->used = (im->used + 15) & ~(size_t)15;
	assert_true(im->used + n <= ARENA);
	a = A(im->arena + im->used);
	im->used += n;
	return a;
}

static void put64(uint64_t addr, int32_t off, uint64_t v)
{
	assert_true(off >= -64);
	memcpy(P(addr) + off, &v, 8);
}

static void put32(uint64_t addr, int32_t off, uint32_t v)
{
	memcpy(P(addr) + off, &v, 4);
}

static uint64_t mk_type(struct img *im, const char *name, uint64_t flags, int64_t dictoffset)
{
	uint64_t t = alloc(im, 1024), s = alloc(im, strlen(name) + 1);

	memcpy(P(s), name, strlen(name) + 1);
	put64(t, im->L->type_name, s);
	put64(t, im->L->type_flags, flags);
	put64(t, im->L->type_dictoffset, (uint64_t)dictoffset);
	return t;
}

/* An object of type with n bytes of body; leaves room before it for the
 * managed-dict pre-header. */
static uint64_t mk_obj(struct img *im, uint64_t type, size_t n)
{
	uint64_t o = alloc(im, 64 + n + 64) + 64;

	put64(o, 0, 1);
	put64(o, im->L->obj_type, type);
	return o;
}

static uint64_t mk_str(struct img *im, const char *s)
{
	const struct py_layout *L = im->L;
	size_t n = strlen(s);
	uint64_t o;

	if (L->str_model == PY_STR_BYTES) {
		o = mk_obj(im, im->t_str, (size_t)L->bytes_data + n + 1);
		put64(o, L->bytes_size, n);
		memcpy(P(o) + L->bytes_data, s, n + 1);
		return o;
	}
	o = mk_obj(im, im->t_str, (size_t)L->unicode_ascii_data + n + 1);
	put64(o, L->unicode_length, n);
	/* kind 1, compact, ascii; "ready" before 3.12 */
	put32(o, L->unicode_state, 1u << 2 | 1u << 5 | 1u << 6 | (L->version < 0x030c ? 1u << 7 : 0));
	memcpy(P(o) + L->unicode_ascii_data, s, n + 1);
	return o;
}

/* A 3.x str of kind 2 or 4 (not ASCII). */
static uint64_t mk_wide_str(struct img *im, const uint32_t *cp, size_t n, unsigned kind)
{
	const struct py_layout *L = im->L;
	uint64_t o = mk_obj(im, im->t_str, (size_t)L->unicode_compact_data + (n + 1) * kind);
	size_t i;

	put64(o, L->unicode_length, n);
	put32(o, L->unicode_state, kind << 2 | 1u << 5 | (L->version < 0x030c ? 1u << 7 : 0));
	for (i = 0; i < n; i++) {
		if (kind == 2) {
			uint16_t v = (uint16_t)cp[i];

			memcpy(P(o) + L->unicode_compact_data + 2 * i, &v, 2);
		} else {
			memcpy(P(o) + L->unicode_compact_data + 4 * i, &cp[i], 4);
		}
	}
	return o;
}

static uint64_t mk_bytes(struct img *im, const void *b, size_t n)
{
	const struct py_layout *L = im->L;
	uint64_t o = mk_obj(im, im->t_bytes, (size_t)L->bytes_data + n + 1);

	put64(o, L->bytes_size, n);
	memcpy(P(o) + L->bytes_data, b, n);
	return o;
}

/* An int from 30-bit digits (2.7: a long). */
static uint64_t mk_long(struct img *im, uint64_t type, const uint32_t *d, size_t n, int neg)
{
	const struct py_layout *L = im->L;
	uint64_t o = mk_obj(im, type, (size_t)L->long_digits + 4 * (n + 1));

	if (L->long_tag_shift >= 0)
		put64(o, L->long_size, (uint64_t)n << L->long_tag_shift | (n == 0 ? 1 : neg ? 2 : 0));
	else
		put64(o, L->long_size, neg ? (uint64_t)0 - n : n);
	memcpy(P(o) + L->long_digits, d, 4 * n);
	return o;
}

static uint64_t mk_int(struct img *im, uint64_t v)
{
	uint32_t d[3];
	size_t n = 0;

	if (im->L->str_model == PY_STR_BYTES) {
		uint64_t o = mk_obj(im, im->t_int, 16);

		put64(o, im->L->int_ival, v);
		return o;
	}
	while (v) {
		d[n++] = (uint32_t)(v & 0x3fffffff);
		v >>= 30;
	}
	return mk_long(im, im->t_int, d, n, 0);
}

static uint64_t mk_var(struct img *im, uint64_t type, int64_t n, size_t body)
{
	uint64_t o = mk_obj(im, type, body + 64);

	put64(o, im->L->obj_var_size, (uint64_t)n);
	return o;
}

static uint64_t mk_tuple(struct img *im, const uint64_t *items, size_t n)
{
	uint64_t o = mk_var(im, im->t_tuple, (int64_t)n, (size_t)im->L->tuple_items + 8 * n);

	if (n)
		memcpy(P(o) + im->L->tuple_items, items, 8 * n);
	return o;
}

/* Dict keys for 3.x: eight slots, entries in order; kind 0 general, 1
 * unicode, 2 split (3.11+). */
static uint64_t mk_keys(struct img *im, const uint64_t *k, const uint64_t *v, size_t n,
			int kind)
{
	const struct py_layout *L = im->L;
	size_t esize = L->dict_model == PY_DICT_KINDS && kind ? (size_t)L->dk_unicode_entry_size
							      : (size_t)L->dk_entry_size;
	uint64_t keys = alloc(im, (size_t)L->dk_indices + 8 + 8 * esize), entries, i;

	assert_true(n <= 5);
	memset(P(keys) + L->dk_indices, 0xff, 8);
	if (L->dict_model == PY_DICT_COMPACT) {
		put64(keys, L->dk_size, 8);
	} else {
		P(keys)[L->dk_log2_size] = 3;
		P(keys)[L->dk_log2_index_bytes] = 3;
		P(keys)[L->dk_kind] = (uint8_t)kind;
	}
	put64(keys, L->dk_nentries, n);
	entries = keys + (uint64_t)L->dk_indices + 8;
	for (i = 0; i < n; i++) {
		uint64_t e = entries + i * esize;

		P(keys)[L->dk_indices + i] = (uint8_t)i;
		if (esize == 16) {
			put64(e, 0, k[i]);
			put64(e, 8, v ? v[i] : 0);
		} else {
			put64(e, 0, 0x1234 + i); /* hash */
			put64(e, 8, k[i]);
			put64(e, 16, v ? v[i] : 0);
		}
	}
	return keys;
}

static uint64_t mk_dict(struct img *im, const uint64_t *k, const uint64_t *v, size_t n)
{
	const struct py_layout *L = im->L;
	uint64_t d = mk_obj(im, im->t_dict, 256), i;

	put64(d, L->dict_used, n);
	if (L->dict_model == PY_DICT_TABLE) {
		uint64_t table = alloc(im, 8 * 24);

		put64(d, L->dict_mask, 7);
		put64(d, L->dict_table, table);
		/* after a deleted slot (a dummy key, no value) */
		assert_true(n < 7);
		for (i = 0; i < n; i++) {
			put64(table, (int32_t)(24 * (i + 1) + 8), k[i]);
			put64(table, (int32_t)(24 * (i + 1) + 16), v[i]);
		}
		if (n)
			put64(table, 8, k[0]);
		return d;
	}
	put64(d, L->dict_keys, mk_keys(im, k, v, n, 0));
	return d;
}

static void img_init(struct img *im, uint32_t version)
{
	const struct py_layout *L = py_layout_find(version);

	assert_non_null(L);
	memset(im, 0, sizeof(*im));
	im->arena = aligned_alloc(4096, ARENA);
	assert_non_null(im->arena);
	memset(im->arena, 0, ARENA);
	im->t.layout_buf = *L;
	im->t.layout = &im->t.layout_buf;
	im->t.version_hex = (version >> 8) << 24 | (version & 0xff) << 16;
	im->t.pid = getpid();
	im->L = im->t.layout;
	rmem_init(&im->m, getpid());
	im->used = 4096; /* keep the first address well above 0 */
	im->t_none = mk_type(im, "NoneType", 0, 0);
	im->t_int = mk_type(im, "int", 0, 0);
	im->t_str = mk_type(im, "str", 0, 0);
	im->t_bytes = mk_type(im, L->str_model == PY_STR_BYTES ? "str" : "bytes", 0, 0);
	im->t_dict = mk_type(im, "dict", 0, 0);
	im->t_list = mk_type(im, "list", 0, 0);
	im->t_tuple = mk_type(im, "tuple", 0, 0);
	im->t_float = mk_type(im, "float", 0, 0);
	im->t_bool = mk_type(im, "bool", 0, 0);
	im->t_set = mk_type(im, "set", 0, 0);
	im->t_module = mk_type(im, "module", 0, 0);
	im->t_cell = mk_type(im, "cell", 0, 0);
	im->t_code = mk_type(im, "code", 0, 0);
	/* A program's own class that calls itself "int". */
	im->t_fake_int = mk_type(im, "int", (uint64_t)L->tpflags_heaptype, 0);
	im->none = mk_obj(im, im->t_none, 16);
}

static void img_release(struct img *im)
{
	free(im->arena);
}

static const uint32_t versions[] = { 0x0207, 0x0306, 0x0307, 0x0308, 0x0309,
				     0x030a, 0x030b, 0x030c, 0x030d };
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

static const char *repr(struct img *im, uint64_t obj, int *err)
{
	static char out[1024];

	*err = py_obj_repr(&im->t, &im->m, obj, out, sizeof(out));
	return out;
}

static void check_repr(struct img *im, uint64_t obj, const char *want)
{
	int err;
	const char *got = repr(im, obj, &err);

	if (strcmp(got, want) || err) {
		fprintf(stderr, "version %x: repr '%s' (err %d), want '%s'\n",
			im->L->version, got, err, want);
		fail();
	}
}

/* ---- repr on every version ------------------------------------------- */

static void test_repr_scalars(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct img im;
		uint32_t big[] = { 7, 0, 0, 1u << 10 };
		uint64_t o, b;
		double f = 0.1;
		char buf[64];
		int err;

		img_init(&im, versions[vi]);
		check_repr(&im, im.none, "None");
		check_repr(&im, 0, "<NULL>");
		check_repr(&im, mk_int(&im, 42), "42");
		check_repr(&im, mk_int(&im, 0), "0");
		if (im.L->str_model != PY_STR_BYTES) {
			uint64_t t_long = im.t_int;

			check_repr(&im, mk_long(&im, t_long, big, 4, 1),
				   "-1267650600228229401496703205383");
			b = mk_long(&im, im.t_bool, big, 1, 0);
			put32(b, im.L->long_digits, 1);
			check_repr(&im, b, "True");
			b = mk_long(&im, im.t_bool, big, 0, 0);
			check_repr(&im, b, "False");
		} else {
			uint64_t t_long = mk_type(&im, "long", 0, 0);

			check_repr(&im, mk_long(&im, t_long, big, 4, 1),
				   "-1267650600228229401496703205383");
			o = mk_int(&im, (uint64_t)-5);
			check_repr(&im, o, "-5");
			b = mk_obj(&im, im.t_bool, 16);
			put64(b, im.L->int_ival, 1);
			check_repr(&im, b, "True");
		}
		o = mk_obj(&im, im.t_float, 16);
		memcpy(P(o) + im.L->float_fval, &f, 8);
		check_repr(&im, o, "0.1");
		/* a class of the program named "int" is not read as one */
		o = mk_obj(&im, im.t_fake_int, 16);
		snprintf(buf, sizeof(buf), "<int at 0x%llx>", (unsigned long long)o);
		check_repr(&im, o, buf);
		/* unknown builtins by name and address */
		o = mk_obj(&im, mk_type(&im, "function", 0, 0), 16);
		snprintf(buf, sizeof(buf), "<function at 0x%llx>", (unsigned long long)o);
		check_repr(&im, o, buf);
		/* an unreadable object says so */
		repr(&im, 0x1000, &err);
		assert_int_equal(err, -EFAULT);
		img_release(&im);
	}
}

static void test_repr_text(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct img im;
		char longs[300];
		uint64_t o;

		img_init(&im, versions[vi]);
		check_repr(&im, mk_str(&im, "it's a \"quoted\"\nline"),
			   "'it\\'s a \"quoted\"\\nline'");
		memset(longs, 'x', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = '\0';
		o = mk_str(&im, longs);
		{
			int err;
			const char *got = repr(&im, o, &err);

			assert_int_equal(err, 0);
			assert_int_equal(strlen(got), 1 + 100 + 1 + strlen("... (299 chars)"));
			assert_string_equal(got + 102, im.L->str_model == PY_STR_BYTES
							? "... (299 bytes)" : "... (299 chars)");
		}
		o = mk_bytes(&im, "\x00\xffz'", 4);
		check_repr(&im, o, im.L->str_model == PY_STR_BYTES ? "\"\\x00\\xffz'\""
								     : "b\"\\x00\\xffz'\"");
		if (im.L->str_model != PY_STR_BYTES) {
			uint32_t w2[] = { 0xe9, 0x202e, 'a' }, w4[] = { 0x1f600, 0xdcff };

			check_repr(&im, mk_wide_str(&im, w2, 3, 2), "'\xc3\xa9\\u202ea'");
			check_repr(&im, mk_wide_str(&im, w4, 2, 4), "'\xf0\x9f\x98\x80\\udcff'");
		} else {
			/* 2.7 unicode: a pointer to UCS-4 (or UCS-2) units */
			uint64_t t_u = mk_type(&im, "unicode", 0, 0);
			uint64_t data = alloc(&im, 16);
			uint32_t u[] = { 'h', 0xe9, 0x2603 };

			o = mk_obj(&im, t_u, 64);
			put64(o, im.L->ustr_length, 3);
			put64(o, im.L->ustr_str, data);
			assert_int_equal(im.L->ustr_unit, 4);
			memcpy(P(data), u, sizeof(u));
			check_repr(&im, o, "u'h\xc3\xa9\xe2\x98\x83'");
		}
		img_release(&im);
	}
}

static void test_repr_containers(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct img im;
		uint64_t k[2], v[2];

		img_init(&im, versions[vi]);
		check_repr(&im, mk_var(&im, im.t_list, 3, 0), "<list of 3 items>");
		check_repr(&im, mk_var(&im, im.t_tuple, 1, 0), "<tuple of 1 item>");
		check_repr(&im, mk_var(&im, im.t_tuple, 0, 0), "<tuple of 0 items>");
		k[0] = mk_str(&im, "a");
		k[1] = mk_str(&im, "b");
		v[0] = v[1] = im.none;
		check_repr(&im, mk_dict(&im, k, v, 2), "<dict of 2 items>");
		{
			uint64_t s = mk_obj(&im, im.t_set, 256);

			put64(s, im.L->set_used, 5);
			check_repr(&im, s, "<set of 5 items>");
		}
		/* a negative or absurd size is an unreadable object */
		{
			int err;
			const char *got = repr(&im, mk_var(&im, im.t_list, -1, 0), &err);

			assert_int_equal(err, -EBADMSG);
			assert_non_null(strstr(got, "unreadable"));
		}
		img_release(&im);
	}
}

/* ---- hostile images -------------------------------------------------- */

static void test_hostile(void **state)
{
	size_t vi;
	uint8_t *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0), *hole = pages + 4096;

	(void)state;
	assert_true(pages != MAP_FAILED);
	assert_int_equal(mprotect(hole, 4096, PROT_NONE), 0);
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct img im;
		uint64_t o, t, s;
		uint32_t d[] = { 1 };
		int err;

		img_init(&im, versions[vi]);
		/* a type name with no NUL within the cap: cut, still printable */
		t = mk_type(&im, "x", 0, 0);
		s = alloc(&im, 200);
		memset(P(s), 'N', 200);
		put64(t, im.L->type_name, s);
		o = mk_obj(&im, t, 16);
		{
			const char *got = repr(&im, o, &err);

			assert_int_equal(err, 0);
			assert_non_null(strstr(got, "NNN..."));
		}
		/* a type name ending at the edge of a mapping */
		s = A(hole) - 3;
		memcpy(P(s), "ab", 3);
		put64(t, im.L->type_name, s);
		o = mk_obj(&im, mk_type(&im, "y", 0, 0), 16);
		put64(o, im.L->obj_type, t);
		{
			char buf[64];

			repr(&im, o, &err);
			assert_int_equal(err, 0);
			snprintf(buf, sizeof(buf), "<ab at 0x%llx>", (unsigned long long)o);
			check_repr(&im, o, buf);
		}
		/* an object whose type is unmapped, or misaligned */
		o = mk_obj(&im, A(hole), 16);
		repr(&im, o, &err);
		assert_int_equal(err, -EFAULT);
		o = mk_obj(&im, im.t_str + 3, 16);
		repr(&im, o, &err);
		assert_int_equal(err, -EBADMSG);
		/* a str with a huge length reads at most what is shown */
		o = mk_str(&im, "abc");
		put64(o, im.L->str_model == PY_STR_BYTES ? im.L->bytes_size : im.L->unicode_length,
		      (uint64_t)1 << 39);
		{
			const char *got = repr(&im, o, &err);

			/* the bytes after "abc" are the arena's zeros */
			assert_int_equal(err, 0);
			assert_non_null(strstr(got, "... (549755813888 "));
		}
		put64(o, im.L->str_model == PY_STR_BYTES ? im.L->bytes_size : im.L->unicode_length,
		      (uint64_t)1 << 62);
		repr(&im, o, &err);
		assert_int_equal(err, -EBADMSG);
		if (im.L->str_model != PY_STR_BYTES) {
			/* a str whose kind bits are nonsense */
			put64(o, im.L->unicode_length, 3);
			put32(o, im.L->unicode_state, 7u << 2 | 1u << 5);
			repr(&im, o, &err);
			assert_int_equal(err, -EBADMSG);
		}
		/* an int whose digit is out of range, or with a huge count */
		o = mk_long(&im, im.t_int, d, 1, 0);
		if (im.L->str_model != PY_STR_BYTES) {
			put32(o, im.L->long_digits, 1u << 31);
			repr(&im, o, &err);
			assert_int_equal(err, -EBADMSG);
			put64(o, im.L->long_size, im.L->long_tag_shift >= 0 ? (uint64_t)5000 << 3 : 5000);
			check_repr(&im, o, "<int of ~45155 digits>");
		}
		img_release(&im);
	}
	munmap(pages, 8192);
}

/* ---- thread names: modules -> threading -> _active -> Thread._name --- */

/* A Thread instance with attribute _name (plus another first) in the
 * version's instance-dict model; shared selects split values on 3.11+. */
static uint64_t mk_thread(struct img *im, const char *name, int shared)
{
	const struct py_layout *L = im->L;
	const char *attr = L->str_model == PY_STR_BYTES ? "_Thread__name" : "_name";
	uint64_t k[2] = { mk_str(im, "_target"), mk_str(im, attr) };
	uint64_t v[2] = { im->none, mk_str(im, name) };
	uint64_t o;

	if (L->mdict_model == PY_MDICT_NONE || !shared) {
		if (!im->t_thread)
			im->t_thread = mk_type(im, "Thread", (uint64_t)L->tpflags_heaptype, 16);
		o = mk_obj(im, im->t_thread, 32);
		if (L->mdict_model == PY_MDICT_NONE) {
			put64(o, 16, mk_dict(im, k, v, 2));
		} else {
			/* the instance's own dict in the managed slot */
			uint64_t t = mk_type(im, "Thread",
					     (uint64_t)(L->tpflags_heaptype | L->tpflags_managed_dict), -1);

			put64(o, L->obj_type, t);
			put64(o, L->mdict_dict, mk_dict(im, k, v, 2));
		}
		return o;
	} else {
		uint64_t t = mk_type(im, "Thread", (uint64_t)(L->tpflags_heaptype |
							     L->tpflags_managed_dict |
							     L->tpflags_inline_values), -1);
		uint64_t keys = mk_keys(im, k, NULL, 2, 2);
		uint64_t vals;

		put64(t, L->heaptype_cached_keys, keys);
		o = mk_obj(im, t, 16 + 8 + 8 * 2);
		switch (L->mdict_model) {
		case PY_MDICT_VALUES_PTR:
			vals = alloc(im, 64);
			put64(o, L->mdict_values, vals);
			break;
		case PY_MDICT_TAGGED:
			vals = alloc(im, 64);
			put64(o, L->mdict_dict, vals - 1);
			break;
		default:
			vals = o + (uint64_t)L->mdict_values;
			P(vals)[L->dict_values_valid] = 1;
			break;
		}
		put64(vals, L->dict_values_items, v[0]);
		put64(vals, L->dict_values_items + 8, v[1]);
		return o;
	}
}

static uint64_t mk_threading(struct img *im, int shared, const char *const *names,
			     const uint64_t *idents, size_t n)
{
	const struct py_layout *L = im->L;
	uint64_t ak[4], av[4], mk[3], mv[3], sk[3], sv[3], mod, modules, interp;
	size_t i;

	for (i = 0; i < n; i++) {
		ak[i] = mk_int(im, idents[i]);
		av[i] = mk_thread(im, names[i], shared);
	}
	mk[0] = mk_str(im, "_limbo");
	mv[0] = mk_dict(im, NULL, NULL, 0);
	mk[1] = mk_str(im, "_active");
	mv[1] = mk_dict(im, ak, av, n);
	mod = mk_obj(im, im->t_module, 64);
	put64(mod, L->module_dict, mk_dict(im, mk, mv, 2));
	sk[0] = mk_str(im, "sys");
	sv[0] = mk_obj(im, im->t_module, 64);
	sk[1] = mk_str(im, "threadingx");
	sv[1] = im->none;
	sk[2] = mk_str(im, "threading");
	sv[2] = mod;
	modules = mk_dict(im, sk, sv, 3);
	interp = alloc(im, 16384);
	put64(interp, L->interp_modules, modules);
	im->t.interp = interp;
	return modules;
}

static void test_thread_names(void **state)
{
	static const char *const names[] = { "MainThread", "worker \"1\"\n", "w\xc3\xa9" };
	static const uint64_t idents[] = { 0x7f0011223344ull, 0x7f0011225566ull, 42 };
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		for (int shared = 0; shared < 2; shared++) {
			struct py_thread_name out[8];
			struct img im;
			int n;

			img_init(&im, versions[vi]);
			mk_threading(&im, shared, names, idents, 3);
			memset(out, 0, sizeof(out));
			n = py_obj_thread_names(&im.t, &im.m, out, 8);
			if (n != 3)
				fprintf(stderr, "version %x shared %d: %d names\n", versions[vi], shared, n);
			assert_int_equal(n, 3);
			assert_int_equal(out[0].ident, idents[0]);
			assert_string_equal(out[0].name, "MainThread");
			assert_int_equal(out[1].ident, idents[1]);
			assert_string_equal(out[1].name, "worker \"1\"\\n");
			assert_int_equal(out[2].ident, 42);
			if (im.L->str_model == PY_STR_BYTES)
				assert_string_equal(out[2].name, "w\xc3\xa9"); /* UTF-8 bytes decoded */
			else
				/* kind-1 data: Latin-1 code points, both printable */
				assert_string_equal(out[2].name, "w\xc3\x83\xc2\xa9");
			/* the caller's room is honoured */
			assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 2), 2);
			img_release(&im);
		}
	}
}

static void test_thread_names_missing(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct py_thread_name out[4];
		struct img im;
		uint64_t k[1], v[1], modules;

		img_init(&im, versions[vi]);
		/* no threading module: no names, no error */
		k[0] = mk_str(&im, "sys");
		v[0] = mk_obj(&im, im.t_module, 64);
		modules = mk_dict(&im, k, v, 1);
		im.t.interp = alloc(&im, 16384);
		put64(im.t.interp, im.L->interp_modules, modules);
		assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), 0);
		/* sys.modules not set up yet */
		put64(im.t.interp, im.L->interp_modules, 0);
		assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), 0);
		/* a modules pointer that is not a dict */
		put64(im.t.interp, im.L->interp_modules, im.none);
		assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), -EBADMSG);
		img_release(&im);
	}
}

/* A dict whose keys object claims far more entries than its table holds
 * must be refused, not walked. */
static void test_dict_hostile(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		struct py_thread_name out[4];
		struct img im;
		uint64_t modules, k[1], v[1], keys = 0;

		img_init(&im, versions[vi]);
		k[0] = mk_str(&im, "threading");
		v[0] = im.none;
		modules = mk_dict(&im, k, v, 1);
		im.t.interp = alloc(&im, 16384);
		put64(im.t.interp, im.L->interp_modules, modules);
		if (im.L->dict_model == PY_DICT_TABLE) {
			put64(modules, im.L->dict_mask, (1ull << 40) - 1);
		} else {
			memcpy(&keys, P(modules) + im.L->dict_keys, 8);
			put64(keys, im.L->dk_nentries, 1ull << 40);
		}
		assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), -EBADMSG);
		if (im.L->dict_model == PY_DICT_COMPACT) {
			put64(keys, im.L->dk_nentries, 1);
			put64(keys, im.L->dk_size, 12); /* not a power of two */
			assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), -EBADMSG);
		}
		if (im.L->dict_model == PY_DICT_KINDS) {
			put64(keys, im.L->dk_nentries, 1);
			P(keys)[im.L->dk_log2_index_bytes] = 40;
			assert_int_equal(py_obj_thread_names(&im.t, &im.m, out, 4), -EBADMSG);
		}
		img_release(&im);
	}
}

/* ---- frame locals ---------------------------------------------------- */

struct seen {
	char names[16][64];
	uint64_t values[16];
	int args[16];
	int n;
};

static int collect(const char *name, uint64_t value, int is_arg, void *ctx)
{
	struct seen *s = ctx;

	assert_true(s->n < 16);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->values[s->n] = value;
	s->args[s->n] = is_arg;
	s->n++;
	return 0;
}

static int stop_at_two(const char *name, uint64_t value, int is_arg, void *ctx)
{
	int *n = ctx;

	(void)name;
	(void)value;
	(void)is_arg;
	return ++*n == 2 ? 7 : 0;
}

/* def f(a, b, *args, **kw): x = ...; captured = ... (a cell); one free
 * variable "outer".  Argument b is captured too. */
static void test_frame_locals(void **state)
{
	size_t vi;

	(void)state;
	for (vi = 0; vi < NVERSIONS; vi++) {
		const struct py_layout *L;
		struct seen s;
		struct img im;
		uint64_t code, frame, nm[8], val[8], cell_b, cell_c, cell_o;
		int n = 0, objects;

		img_init(&im, versions[vi]);
		L = im.L;
		objects = L->frame_model == PY_FRAMES_OBJECTS;
		nm[0] = mk_str(&im, "a");
		nm[1] = mk_str(&im, "b");
		nm[2] = mk_str(&im, "args");
		nm[3] = mk_str(&im, "kw");
		nm[4] = mk_str(&im, "x");
		nm[5] = mk_str(&im, "captured");
		nm[6] = mk_str(&im, "outer");
		val[0] = mk_int(&im, 1);
		val[1] = mk_int(&im, 2);
		val[2] = mk_tuple(&im, NULL, 0);
		val[3] = mk_dict(&im, NULL, NULL, 0);
		val[4] = mk_str(&im, "ex");
		cell_b = mk_obj(&im, im.t_cell, 16);
		put64(cell_b, L->cell_ref, val[1]);
		cell_c = mk_obj(&im, im.t_cell, 16);
		put64(cell_c, L->cell_ref, 0); /* not assigned yet */
		cell_o = mk_obj(&im, im.t_cell, 16);
		put64(cell_o, L->cell_ref, im.none);
		code = mk_obj(&im, im.t_code, 512);
		put32(code, L->code_argcount, 2);
		if (L->code_kwonlyargcount >= 0)
			put32(code, L->code_kwonlyargcount, 0);
		put32(code, L->code_flags, 0x4 | 0x8);
		frame = alloc(&im, 1024);
		if (objects) {
			uint64_t slots[8] = { val[0], 0, val[2], val[3], val[4], cell_b, cell_c, cell_o };
			uint64_t cellnames[2] = { nm[1], nm[5] };

			put32(code, L->code_nlocals, 5);
			put64(code, L->code_varnames, mk_tuple(&im, nm, 5));
			put64(code, L->code_cellvars, mk_tuple(&im, cellnames, 2));
			put64(code, L->code_freevars, mk_tuple(&im, &nm[6], 1));
			put64(frame, L->frame_code, code);
			memcpy(P(frame) + L->frame_localsplus, slots, sizeof(slots));
		} else {
			uint64_t slots[7] = { val[0], cell_b, val[2], val[3], val[4], cell_c, cell_o };
			uint8_t kinds[7] = { 0x20, 0x20 | 0x40, 0x20, 0x20, 0x20, 0x40, 0x80 };

			put64(code, L->code_localsplusnames, mk_tuple(&im, nm, 7));
			put64(code, L->code_localspluskinds, mk_bytes(&im, kinds, 7));
			put64(frame, L->iframe_code, code);
			memcpy(P(frame) + L->iframe_localsplus, slots, sizeof(slots));
		}
		memset(&s, 0, sizeof(s));
		assert_int_equal(py_obj_frame_locals(&im.t, &im.m, frame, code, collect, &s), 0);
		assert_int_equal(s.n, 7);
		assert_string_equal(s.names[0], "a");
		assert_int_equal(s.values[0], val[0]);
		assert_string_equal(s.names[1], "b");
		assert_int_equal(s.values[1], val[1]); /* through its cell */
		assert_string_equal(s.names[2], "args");
		assert_string_equal(s.names[3], "kw");
		assert_true(s.args[0] && s.args[1] && s.args[2] && s.args[3]);
		assert_string_equal(s.names[4], "x");
		assert_false(s.args[4]);
		assert_string_equal(s.names[5], "captured");
		assert_int_equal(s.values[5], 0);
		assert_string_equal(s.names[6], "outer");
		assert_int_equal(s.values[6], im.none);
		/* the callback can stop the walk */
		assert_int_equal(py_obj_frame_locals(&im.t, &im.m, frame, code, stop_at_two, &n), 7);
		/* a frame that runs other code now is stale */
		assert_int_equal(py_obj_frame_locals(&im.t, &im.m, frame, im.none, collect, &s),
				 -ESTALE);
		/* a "code" that is not code */
		put64(frame, objects ? L->frame_code : L->iframe_code, im.none);
		assert_int_equal(py_obj_frame_locals(&im.t, &im.m, frame, im.none, collect, &s),
				 -EBADMSG);
		/* names and values that disagree in number */
		put64(frame, objects ? L->frame_code : L->iframe_code, code);
		if (objects)
			put32(code, L->code_nlocals, 6);
		else
			put64(code, L->code_localspluskinds, mk_bytes(&im, "\x20", 1));
		assert_int_equal(py_obj_frame_locals(&im.t, &im.m, frame, code, collect, &s),
				 -EBADMSG);
		img_release(&im);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_quotes),
		cmocka_unit_test(test_text_escapes),
		cmocka_unit_test(test_text_unicode),
		cmocka_unit_test(test_text_cut),
		cmocka_unit_test(test_decode_utf8),
		cmocka_unit_test(test_text_printable),
		cmocka_unit_test(test_float),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_repr_scalars),
		cmocka_unit_test(test_repr_text),
		cmocka_unit_test(test_repr_containers),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_thread_names),
		cmocka_unit_test(test_thread_names_missing),
		cmocka_unit_test(test_dict_hostile),
		cmocka_unit_test(test_frame_locals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
