/* test_py_lines.c - line-table decoders against real and hostile tables.
 *
 * The real tables and the line CPython reports at every offset come from
 * py_lines_vectors.h (scripts/gen-line-vectors.py).  The hostile ones are
 * hand-made or pseudo-random; buffers are allocated to their exact size so a
 * sanitizer build catches any read or write past them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/py_lines.h"
#include "py_lines_vectors.h"

#define NVEC (sizeof(line_vectors) / sizeof(line_vectors[0]))
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rng(void)
{
	/* xorshift64*: fixed seed, same sequence on every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* What py_lines_lookup must return, the slow obvious way. */
static int ref_lookup(const struct line_range *r, size_t n, uint32_t off)
{
	int line = -1;
	size_t i;

	for (i = 0; i < n && r[i].start <= off; i++)
		line = r[i].line;
	return line;
}

/* Invariants of any decode, valid input or not. */
static void check_shape(int rc, const struct line_range *r, size_t n,
			size_t cap)
{
	size_t i;

	assert_true(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
	assert_true(n <= cap);
	if (rc == -ENOSPC)
		assert_int_equal(n, cap);
	for (i = 0; i < n; i++) {
		assert_true(r[i].line >= -1);
		if (i) {
			assert_true(r[i].start > r[i - 1].start);
			assert_true(r[i].line != r[i - 1].line);
		} else {
			assert_true(r[i].line != -1);
		}
	}
}

static int decode_alloc(int format, const uint8_t *t, size_t len, int first,
			struct line_range **out, size_t *n)
{
	size_t cap = len + 1;

	*out = malloc(cap * sizeof(**out));
	assert_non_null(*out);
	return py_lines_decode(format, t, len, first, *out, cap, n);
}

static void expect_ranges(const struct line_range *got, size_t n,
			  const struct line_range *want, size_t nwant)
{
	size_t i;

	assert_int_equal(n, nwant);
	for (i = 0; i < n; i++) {
		assert_int_equal(got[i].start, want[i].start);
		assert_int_equal(got[i].line, want[i].line);
	}
}

/* Location-table writer, as CPython's assembler does it. */
struct tbuf {
	uint8_t b[256];
	size_t len;
};

static void put_byte(struct tbuf *t, unsigned int b)
{
	assert_true(t->len < sizeof(t->b));
	t->b[t->len++] = (uint8_t)b;
}

static void put_varint(struct tbuf *t, uint32_t v)
{
	while (v >= 64) {
		put_byte(t, 0x40 | (v & 63));
		v >>= 6;
	}
	put_byte(t, v);
}

static void put_svarint(struct tbuf *t, int32_t v)
{
	put_varint(t, v < 0 ? (uint32_t)(-(int64_t)v << 1) | 1 : (uint32_t)v << 1);
}

static void loc_hdr(struct tbuf *t, unsigned int code, unsigned int units)
{
	put_byte(t, 0x80 | code << 3 | (units - 1));
}

/* ---- real code objects ------------------------------------------------- */

static void test_vectors_every_offset(void **state)
{
	size_t v, i, checked = 0;

	(void)state;
	for (v = 0; v < NVEC; v++) {
		const struct line_vector *lv = &line_vectors[v];
		uint32_t end = (uint32_t)(lv->n_lines * lv->unit);
		struct line_range *r;
		size_t n = 0;
		int rc, want_past;

		rc = decode_alloc(lv->format, lv->table, lv->table_len,
				  lv->firstlineno, &r, &n);
		if (rc)
			fail_msg("%s %s: decode returned %d", lv->python,
				 lv->name, rc);
		check_shape(rc, r, n, lv->table_len + 1);
		for (i = 0; i < lv->n_lines; i++) {
			uint32_t off = (uint32_t)(i * lv->unit);
			int got = py_lines_lookup(r, n, off);

			if (got != lv->lines[i])
				fail_msg("%s %s: offset %u: line %d, CPython "
					 "says %d", lv->python, lv->name, off,
					 got, lv->lines[i]);
			/* the middle of a code unit resolves like its start */
			if (lv->unit == 2)
				assert_int_equal(py_lines_lookup(r, n, off + 1),
						 lv->lines[i]);
			checked++;
		}
		/* Past the code: the last line runs on for co_lnotab,
		 * 3.10+ tables end (PyCode_Addr2Line gives -1 there). */
		want_past = -1;
		if ((lv->format == PY_LINES_LNOTAB ||
		     lv->format == PY_LINES_LNOTAB_U8) && lv->n_lines)
			want_past = lv->lines[lv->n_lines - 1];
		assert_int_equal(py_lines_lookup(r, n, end), want_past);
		assert_int_equal(py_lines_lookup(r, n, UINT32_MAX), want_past);
		free(r);
	}
	print_message("%zu vectors, %zu offsets checked\n", (size_t)NVEC,
		      checked);
}

/* Every cap below what a table needs: -ENOSPC, and exactly the ranges the
 * full decode starts with. */
static void test_vectors_cap_too_small(void **state)
{
	size_t v, cap;

	(void)state;
	for (v = 0; v < NVEC; v++) {
		const struct line_vector *lv = &line_vectors[v];
		struct line_range *full;
		size_t nfull = 0;

		assert_int_equal(decode_alloc(lv->format, lv->table,
					      lv->table_len, lv->firstlineno,
					      &full, &nfull), 0);
		for (cap = 0; cap < nfull; cap++) {
			struct line_range *r = malloc((cap ? cap : 1) *
						      sizeof(*r));
			size_t n = 12345;
			int rc;

			assert_non_null(r);
			rc = py_lines_decode(lv->format, lv->table,
					     lv->table_len, lv->firstlineno,
					     cap ? r : NULL, cap, &n);
			assert_int_equal(rc, -ENOSPC);
			expect_ranges(r, n, full, cap);
			free(r);
		}
		/* and exactly enough is enough */
		{
			struct line_range *r = malloc((nfull ? nfull : 1) *
						      sizeof(*r));
			size_t n;

			assert_non_null(r);
			assert_int_equal(py_lines_decode(lv->format, lv->table,
							 lv->table_len,
							 lv->firstlineno, r,
							 nfull, &n), 0);
			expect_ranges(r, n, full, nfull);
			free(r);
		}
		free(full);
	}
}

/* A table cut short, as a read capped below the real size gives.  3.10+
 * tables must never report a line the full table does not (a cut is either
 * an entry boundary or -EINVAL, and both end in "no line").  co_lnotab
 * cannot tell a cut from the end, but must agree before its last range. */
static void test_vectors_truncated(void **state)
{
	size_t v, cut, i;

	(void)state;
	for (v = 0; v < NVEC; v++) {
		const struct line_vector *lv = &line_vectors[v];
		bool lnotab = lv->format == PY_LINES_LNOTAB ||
			      lv->format == PY_LINES_LNOTAB_U8;
		struct line_range *full;
		size_t nfull;

		assert_int_equal(decode_alloc(lv->format, lv->table,
					      lv->table_len, lv->firstlineno,
					      &full, &nfull), 0);
		for (cut = 0; cut < lv->table_len; cut++) {
			uint8_t *t = malloc(cut ? cut : 1);
			struct line_range *r;
			size_t n;
			int rc;

			assert_non_null(t);
			memcpy(t, lv->table, cut);
			rc = decode_alloc(lv->format, t, cut,
					  lv->firstlineno, &r, &n);
			check_shape(rc, r, n, cut + 1);
			assert_true(rc == 0 || rc == -EINVAL);
			if (lnotab)
				assert_int_equal(rc, (cut & 1) ? -EINVAL : 0);
			for (i = 0; i < lv->n_lines; i++) {
				uint32_t off = (uint32_t)(i * lv->unit);
				int got = py_lines_lookup(r, n, off);

				if (lnotab && (!n || off >= r[n - 1].start))
					break;
				if (got != -1)
					assert_int_equal(got, lv->lines[i]);
			}
			free(r);
			free(t);
		}
		free(full);
	}
}

/* ---- hand-made tables -------------------------------------------------- */

static void test_empty(void **state)
{
	struct line_range r[2];
	size_t n = 99;

	(void)state;
	/* no pairs: the first line covers everything (PyCode_Addr2Line) */
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, NULL, 0, 7, r, 2, &n),
			 0);
	expect_ranges(r, n, (struct line_range[]){ { 0, 7 } }, 1);
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB_U8, NULL, 0, 7, r, 2,
					 &n), 0);
	expect_ranges(r, n, (struct line_range[]){ { 0, 7 } }, 1);
	assert_int_equal(py_lines_lookup(r, n, 1000), 7);
	/* no entries: no offset has a line */
	assert_int_equal(py_lines_decode(PY_LINES_310, NULL, 0, 7, r, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, (const uint8_t *)"",
					 0, 7, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(py_lines_lookup(NULL, 0, 0), -1);
	/* n may be NULL */
	assert_int_equal(py_lines_decode(PY_LINES_310, NULL, 0, 7, r, 2, NULL),
			 0);
}

static void test_bad_arguments(void **state)
{
	static const uint8_t t[] = { 2, 1 };
	struct line_range r[4];
	size_t n = 99;
	int fmt;

	(void)state;
	for (fmt = -1; fmt <= 6; fmt++) {
		int want = (fmt >= PY_LINES_LNOTAB && fmt <= PY_LINES_LNOTAB_U8) ?
			   0 : -EINVAL;

		if (fmt == PY_LINES_LOCATION)
			continue;	/* { 2, 1 } is not a location table */
		assert_int_equal(py_lines_decode(fmt, t, 2, 1, r, 4, &n), want);
	}
	assert_int_equal(py_lines_decode(PY_LINES_310, NULL, 2, 1, r, 4, &n),
			 -EINVAL);
	assert_int_equal(py_lines_decode(PY_LINES_310, t, 2, 1, NULL, 4, &n),
			 -EINVAL);
	assert_int_equal(py_lines_decode(PY_LINES_310, t, 2, -1, r, 4, &n),
			 -EINVAL);
	assert_int_equal(n, 0);
}

static void test_lnotab(void **state)
{
	/* 2.7 for a 200-line gap, then a 603-line one split in 255s */
	static const uint8_t t27[] = { 0, 1, 6, 200, 6, 255, 0, 146 };
	/* 3.6+ for the same code: +-127/128 splits, offset-0 pairs */
	static const uint8_t t36[] = { 0, 1, 4, 127, 0, 73, 4, 127, 0, 127,
				       0, 127, 0, 20 };
	/* a backward jump (3.8+), and 300 bytes on one line */
	static const uint8_t tback[] = { 2, 5, 255, 0, 45, 0x80, 4, 0xfd };
	struct line_range r[16];
	size_t n;

	(void)state;
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB_U8, t27, sizeof(t27),
					 1, r, 16, &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 2 }, { 6, 202 }, { 12, 603 } }, 3);
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, t36, sizeof(t36),
					 1, r, 16, &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 2 }, { 4, 202 }, { 8, 603 } }, 3);
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, tback, sizeof(tback),
					 200, r, 16, &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 200 }, { 2, 205 }, { 302, 77 }, { 306, 74 } }, 4);
	assert_int_equal(py_lines_lookup(r, n, 301), 205);
	assert_int_equal(py_lines_lookup(r, n, 305), 77);
	assert_int_equal(py_lines_lookup(r, n, 1u << 31), 74);

	/* the same bytes read the other way: 200 is -56 in 3.6+ */
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, t27, 4, 100, r, 16,
					 &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 101 }, { 6, 45 } }, 2);
	/* and below line 0 is malformed; the fault point gets no line */
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, t27, 4, 1, r, 16,
					 &n), -EINVAL);
	expect_ranges(r, n, (struct line_range[]){ { 0, 2 }, { 6, -1 } }, 2);

	/* odd length: the pairs before it stand */
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB_U8, t27, 5, 1, r, 16,
					 &n), -EINVAL);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 2 }, { 6, 202 }, { 12, -1 } }, 3);
}

static void test_lnotab_huge_deltas(void **state)
{
	static const uint8_t up[] = { 2, 100, 2, 100 };
	struct line_range r[8];
	size_t n;

	(void)state;
	/* running line past INT32_MAX */
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB_U8, up, 4,
					 INT32_MAX - 150, r, 8, &n), -EINVAL);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, INT32_MAX - 150 }, { 2, INT32_MAX - 50 }, { 4, -1 } }, 3);
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB_U8, up, 4,
					 INT32_MAX - 200, r, 8, &n), 0);
	assert_int_equal(py_lines_lookup(r, n, 4), INT32_MAX);
}

/* Offsets past 4 GiB cannot be represented: a table that claims them is
 * malformed, and nothing wraps around to small offsets. */
static void test_offset_overflow(void **state)
{
	/* 255 * pairs passes UINT32_MAX */
	size_t pairs = (1u << 24) + 70000, len = pairs * 2, i;
	uint8_t *t = malloc(len);
	struct line_range r[4];
	size_t n;

	(void)state;
	assert_non_null(t);
	for (i = 0; i < len; i += 2) {
		t[i] = 0xff;
		t[i + 1] = 0;
	}
	t[1] = 1;
	assert_int_equal(py_lines_decode(PY_LINES_LNOTAB, t, len, 1, r, 4, &n),
			 -EINVAL);
	assert_int_equal(n, 3);
	assert_int_equal(r[1].line, 2);
	assert_true(r[2].start > UINT32_MAX - 255);
	assert_int_equal(r[2].line, -1);

	assert_int_equal(py_lines_decode(PY_LINES_310, t, len, 1, r, 4, &n),
			 -EINVAL);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].start, 0);
	assert_int_equal(r[0].line, 2);
	assert_true(r[1].start > UINT32_MAX - 255);
	assert_int_equal(r[1].line, -1);
	free(t);
}

static void test_310(void **state)
{
	/* -128: no line, running line untouched; zero-length pairs still
	 * move the line; ranges past 254 bytes split with delta 0 */
	static const uint8_t t[] = { 2, 1, 2, 0x80, 2, 1, 0, 127, 0, 127,
				     4, 6, 254, 0x81, 254, 0, 10, 0x80 };
	struct line_range r[16];
	size_t n;

	(void)state;
	assert_int_equal(py_lines_decode(PY_LINES_310, t, sizeof(t), 10, r, 16,
					 &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 11 }, { 2, -1 }, { 4, 12 }, { 6, 272 }, { 10, 145 },
		{ 518, -1 } }, 6);
	assert_int_equal(py_lines_lookup(r, n, 517), 145);
	assert_int_equal(py_lines_lookup(r, n, 527), -1);
	assert_int_equal(py_lines_lookup(r, n, 528), -1);

	/* odd length and running line below zero */
	assert_int_equal(py_lines_decode(PY_LINES_310, t, 3, 10, r, 16, &n),
			 -EINVAL);
	expect_ranges(r, n, (struct line_range[]){ { 0, 11 }, { 2, -1 } }, 2);
	assert_int_equal(py_lines_decode(PY_LINES_310, t + 12, 2, 10, r, 16,
					 &n), -EINVAL);
	assert_int_equal(n, 0);
}

static void test_location_forms(void **state)
{
	struct tbuf t = { .len = 0 };
	struct line_range r[32];
	size_t n;

	(void)state;
	loc_hdr(&t, 13, 1);		/* RESUME of a module: line 0 */
	put_svarint(&t, -1);
	loc_hdr(&t, 0, 8);		/* short forms keep the line */
	put_byte(&t, 0x12);
	loc_hdr(&t, 9, 2);
	put_byte(&t, 0x7f);
	loc_hdr(&t, 10, 3);		/* one-line forms: +0, +1, +2 */
	put_byte(&t, 4);
	put_byte(&t, 9);
	loc_hdr(&t, 11, 1);
	put_byte(&t, 127);
	put_byte(&t, 127);
	loc_hdr(&t, 12, 1);
	put_byte(&t, 0);
	put_byte(&t, 1);
	loc_hdr(&t, 15, 4);		/* no location, line untouched */
	loc_hdr(&t, 14, 2);		/* long: -3, multi-chunk varints */
	put_svarint(&t, -3);
	put_varint(&t, 300);
	put_varint(&t, 1000);
	put_varint(&t, 70000);
	loc_hdr(&t, 13, 5);		/* no columns: +100000 */
	put_svarint(&t, 100000);
	loc_hdr(&t, 5, 1);
	put_byte(&t, 0);

	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t.b, t.len, 1, r,
					 32, &n), 0);
	/* by hand, in code units: 0 | short 8+2 units: still 0 | one-line +0 at
	 * unit 11 (same) | +1 at 14 | +2 at 15 | none at 16..19 | long -3
	 * at 20 | +100000 at 22 | short at 27 (same) | end at 28 */
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 0 }, { 28, 1 }, { 30, 3 }, { 32, -1 }, { 40, 0 },
		{ 44, 100000 }, { 56, -1 } }, 7);
}

static void test_location_lengths(void **state)
{
	struct tbuf t = { .len = 0 };
	struct line_range r[16];
	unsigned int units, off = 0;
	size_t n;

	(void)state;
	for (units = 1; units <= 8; units++) {
		loc_hdr(&t, 11, units);		/* +1 each */
		put_byte(&t, 0);
		put_byte(&t, 0);
	}
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t.b, t.len, 50, r,
					 16, &n), 0);
	assert_int_equal(n, 9);
	for (units = 1; units <= 8; units++) {
		assert_int_equal(r[units - 1].start, off);
		assert_int_equal(r[units - 1].line, 50 + (int)units);
		off += units * 2;
	}
	assert_int_equal(r[8].start, off);
	assert_int_equal(r[8].line, -1);
}

static void test_location_malformed(void **state)
{
	struct line_range r[8];
	size_t n;
	unsigned int i;
	static const struct {
		const char *what;
		uint8_t t[12];
		size_t len;
		size_t n;	/* ranges kept: ok entries, then "no line" */
	} bad[] = {
		{ "no entry start bit", { 0x68, 0x02 }, 2, 0 },
		{ "cut after header", { 0xe8 }, 1, 0 },
		{ "truncated varint", { 0xf8, 0xe8, 0x42 }, 3, 0 },
		{ "varint into next entry", { 0xe8, 0x42, 0xf8 }, 3, 0 },
		{ "overlong varint", { 0xe8, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40,
		  0x00 }, 8, 0 },
		{ "varint past 32 bits", { 0xe8, 0x40, 0x40, 0x40, 0x40, 0x40,
		  0x04 }, 7, 0 },
		{ "long form cut", { 0x80, 0x00, 0xf0, 0x02, 0x02, 0x02 }, 6, 2 },
		{ "short form cut", { 0x80, 0x00, 0x80 }, 3, 2 },
		{ "column byte is a header", { 0xd0, 0x00, 0x80, 0x80 }, 4, 0 },
		{ "line below zero", { 0x80, 0x00, 0xe8, 0x05 }, 4, 2 },
		{ "line past INT32_MAX", { 0xe8, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f,
		  0x03 }, 7, 0 },
	};

	(void)state;
	for (i = 0; i < LEN(bad); i++) {
		int rc = py_lines_decode(PY_LINES_LOCATION, bad[i].t,
					 bad[i].len, 1, r, 8, &n);

		if (rc != -EINVAL || n != bad[i].n)
			fail_msg("%s: rc %d n %zu", bad[i].what, rc, n);
		check_shape(rc, r, n, 8);
		if (n)
			assert_int_equal(r[n - 1].line, -1);
	}

	/* six chunks holding a small value are long, but legal */
	{
		static const uint8_t t[] = { 0xe8, 0x42, 0x40, 0x40, 0x40,
					     0x40, 0x00 };

		assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t,
						 sizeof(t), 1, r, 8, &n), 0);
		expect_ranges(r, n, (struct line_range[]){
			{ 0, 2 }, { 2, -1 } }, 2);
	}
	/* the biggest line there is */
	{
		struct tbuf t = { .len = 0 };

		loc_hdr(&t, 13, 1);
		put_svarint(&t, INT32_MAX - 1);
		assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t.b, t.len,
						 1, r, 8, &n), 0);
		assert_int_equal(r[0].line, INT32_MAX);
		t.len = 0;
		loc_hdr(&t, 13, 1);
		put_svarint(&t, INT32_MAX);
		assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t.b, t.len,
						 1, r, 8, &n), -EINVAL);
	}
}

static void test_cap(void **state)
{
	/* lines 1, 2 (+1), 3 (+1), then the end */
	static const uint8_t t[] = { 0x80, 0x00, 0xd8, 0, 0, 0xd8, 0, 0 };
	struct line_range r[4];
	size_t n = 99;

	(void)state;
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, sizeof(t), 1,
					 NULL, 0, &n), -ENOSPC);
	assert_int_equal(n, 0);
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, sizeof(t), 1,
					 r, 2, &n), -ENOSPC);
	expect_ranges(r, n, (struct line_range[]){ { 0, 1 }, { 2, 2 } }, 2);
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, sizeof(t), 1,
					 r, 3, &n), -ENOSPC);
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, sizeof(t), 1,
					 r, 4, &n), 0);
	expect_ranges(r, n, (struct line_range[]){
		{ 0, 1 }, { 2, 2 }, { 4, 3 }, { 6, -1 } }, 4);
	/* malformed input: the "no line" marker where decoding stopped,
	 * and still -EINVAL when there is no room for it */
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, 4, 1, r, 2, &n),
			 -EINVAL);
	expect_ranges(r, n, (struct line_range[]){ { 0, 1 }, { 2, -1 } }, 2);
	assert_int_equal(py_lines_decode(PY_LINES_LOCATION, t, 4, 1, r, 1, &n),
			 -EINVAL);
	expect_ranges(r, n, (struct line_range[]){ { 0, 1 } }, 1);
}

/* ---- lookup ------------------------------------------------------------ */

static void test_lookup(void **state)
{
	struct line_range r[70];
	size_t n, i, k;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (n = 0; n <= LEN(r); n++) {
		uint32_t start = rng() % 3;

		for (i = 0; i < n; i++) {
			r[i].start = start;
			r[i].line = (int32_t)(i % 5 == 4 ? -1 : (int)i * 7);
			start += 1 + rng() % 9;
		}
		for (k = 0; k < 600; k++) {
			uint32_t off = k < 500 ? (uint32_t)k : rng();

			assert_int_equal(py_lines_lookup(r, n, off),
					 ref_lookup(r, n, off));
		}
		assert_int_equal(py_lines_lookup(r, n, UINT32_MAX),
				 ref_lookup(r, n, UINT32_MAX));
	}
	/* a range at the last offset there is */
	r[0] = (struct line_range){ 0, 1 };
	r[1] = (struct line_range){ UINT32_MAX, 2 };
	assert_int_equal(py_lines_lookup(r, 2, UINT32_MAX - 1), 1);
	assert_int_equal(py_lines_lookup(r, 2, UINT32_MAX), 2);
}

/* ---- fuzz -------------------------------------------------------------- */

/* Decode t (exactly len bytes, heap) with an exactly-cap output buffer and
 * check every invariant; on -ENOSPC the output must be the start of what a
 * big enough buffer gets. */
static void fuzz_one(int fmt, const uint8_t *src, size_t len, int first,
		     size_t cap)
{
	uint8_t *t = malloc(len ? len : 1);
	struct line_range *r = malloc((cap ? cap : 1) * sizeof(*r));
	struct line_range *full;
	size_t n = 0, nfull = 0;
	int rc, rcfull;

	assert_non_null(t);
	assert_non_null(r);
	memcpy(t, src, len);
	rc = py_lines_decode(fmt, t, len, first, r, cap, &n);
	check_shape(rc, r, n, cap);
	rcfull = decode_alloc(fmt, t, len, first, &full, &nfull);
	check_shape(rcfull, full, nfull, len + 1);
	assert_int_not_equal(rcfull, -ENOSPC);
	/* the output only grows by appending: whatever fits is a prefix,
	 * and a cap that fits the result is enough */
	assert_true(n <= nfull);
	expect_ranges(r, n, full, n);
	if (cap >= nfull)
		assert_int_equal(rc, rcfull);
	else
		assert_true(rc == -ENOSPC || (rc == -EINVAL && rcfull == -EINVAL &&
					      n == nfull - 1));
	free(full);
	free(r);
	free(t);
}

static void test_fuzz_random(void **state)
{
	uint8_t buf[512];
	unsigned int iter;

	(void)state;
	rng_state = 0x2545f4914f6cdd1dULL;
	for (iter = 0; iter < 20000; iter++) {
		size_t len = rng() % sizeof(buf), i;
		int fmt = (int)(rng() % 6);
		int first = (int)(rng() % 4 == 0 ? rng() : rng() % 5000);
		size_t cap = rng() % (len + 3);

		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)rng();
		/* half the location tables start like real ones, so the
		 * fuzz gets past the first header */
		if (fmt == PY_LINES_LOCATION && (iter & 1)) {
			for (i = 0; i < len; i++)
				if (rng() % 3)
					buf[i] &= 0x7f;
			if (len)
				buf[0] |= 0x80;
		}
		fuzz_one(fmt, buf, len, first, cap);
	}
}

/* Real tables with a few bytes flipped: close to valid, so the decoders'
 * deeper paths get exercised too. */
static void test_fuzz_mutated(void **state)
{
	uint8_t buf[4096];
	size_t v;
	unsigned int k;

	(void)state;
	rng_state = 0x853c49e6748fea9bULL;
	for (v = 0; v < NVEC; v++) {
		const struct line_vector *lv = &line_vectors[v];

		if (lv->table_len > sizeof(buf) || !lv->table_len)
			continue;
		for (k = 0; k < 40; k++) {
			unsigned int flips = 1 + rng() % 3, f;

			memcpy(buf, lv->table, lv->table_len);
			for (f = 0; f < flips; f++)
				buf[rng() % lv->table_len] ^=
					(uint8_t)(1u << (rng() % 8));
			fuzz_one(lv->format, buf, lv->table_len,
				 lv->firstlineno,
				 rng() % (lv->table_len + 2));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_every_offset),
		cmocka_unit_test(test_vectors_cap_too_small),
		cmocka_unit_test(test_vectors_truncated),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_lnotab),
		cmocka_unit_test(test_lnotab_huge_deltas),
		cmocka_unit_test(test_offset_overflow),
		cmocka_unit_test(test_310),
		cmocka_unit_test(test_location_forms),
		cmocka_unit_test(test_location_lengths),
		cmocka_unit_test(test_location_malformed),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_fuzz_random),
		cmocka_unit_test(test_fuzz_mutated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
