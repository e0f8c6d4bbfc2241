/* py_lines.c - decode CPython line-number tables (see py_lines.h).
 *
 * Each decoder replays what CPython's own PyCode_Addr2Line does for its
 * version, but over a table that may be garbage: every read is checked
 * against len, every write against cap, offsets are kept in 64 bits and
 * checked against UINT32_MAX, and the running line is checked after every
 * delta so no sum can overflow.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyspyc/py_lines.h"

struct lines_out {
	struct line_range *r;
	size_t cap;
	size_t n;
};

/* Record that line holds from start on; starts never decrease.  A range with
 * the line of the one before adds nothing, nor does a leading "no line"
 * range, since lookups before the first range already answer -1.  A range
 * at the same start as the last one replaces it; only lines_fail() does
 * that, so the output only ever grows by appending and whatever is in it
 * when the cap is hit is exactly the start of the full result. */
static int lines_put(struct lines_out *o, uint64_t start, int64_t line)
{
	size_t n = o->n;

	if (start > UINT32_MAX)
		return -EINVAL;
	if (n && o->r[n - 1].start == start)
		n--;
	if ((n ? o->r[n - 1].line : -1) == line) {
		o->n = n;
		return 0;
	}
	if (n == o->cap)
		return -ENOSPC;
	o->r[n].start = (uint32_t)start;
	o->r[n].line = (int32_t)line;
	o->n = n + 1;
	return 0;
}

/* Malformed input: decoding stopped at offset at, so nothing is known from
 * there on.  Say so with a "no line" range, room permitting, rather than let
 * the last good line stretch over bytes it was never decoded for. */
static int lines_fail(struct lines_out *o, uint64_t at)
{
	lines_put(o, at, -1);
	return -EINVAL;
}

static bool line_ok(int64_t line)
{
	return line >= 0 && line <= INT32_MAX;
}

/* Two's-complement int8 without relying on implementation-defined
 * conversion of out-of-range values. */
static int s8(uint8_t b)
{
	return (int)b - ((b & 0x80) ? 256 : 0);
}

/* co_lnotab (Objects/lnotab_notes.txt): pairs of (offset increment, line
 * increment); each pair moves both, and the line reached holds from the
 * offset reached on.  Big jumps are split into several pairs, the extra ones
 * with an offset increment of 0, so a line is only recorded once the offset
 * moves past it: the output never has to take back a range, and a cap that
 * fits the result is never too small half-way.  The line before the first
 * pair is co_firstlineno; the last line runs to the end of the code. */
static int decode_lnotab(const uint8_t *t, size_t len, int64_t line,
			 bool signed_delta, struct lines_out *o)
{
	uint64_t addr = 0, next;
	size_t i;
	int err;

	for (i = 0; i + 1 < len; i += 2) {
		next = addr + t[i];
		if (next != addr) {
			err = lines_put(o, addr, line);
			if (err)
				return err;
		}
		if (next > UINT32_MAX)
			return lines_fail(o, addr);
		line += signed_delta ? s8(t[i + 1]) : t[i + 1];
		if (!line_ok(line))
			return lines_fail(o, next);
		addr = next;
	}
	err = lines_put(o, addr, line);
	if (err)
		return err;
	if (len & 1) {
		/* A lone offset increment: a table cut short.  It still says
		 * where the last line ends. */
		next = addr + t[len - 1];
		return lines_fail(o, next > UINT32_MAX ? addr : next);
	}
	return 0;
}

/* 3.10 co_linetable: pairs of (range length, line delta); each pair is one
 * range starting where the previous one ended.  A line delta of -128 means
 * the range has no line and leaves the running line alone.  Empty ranges
 * still move the running line (that is how jumps past +-127 are split).
 * Past the last range CPython reports no line. */
static int decode_310(const uint8_t *t, size_t len, int64_t line,
		      struct lines_out *o)
{
	uint64_t start = 0;
	size_t i;
	int err;

	for (i = 0; i + 1 < len; i += 2) {
		uint64_t end = start + t[i];
		int64_t cur = -1;

		if (end > UINT32_MAX)
			return lines_fail(o, start);
		if (t[i + 1] != 0x80) {
			line += s8(t[i + 1]);
			if (!line_ok(line))
				return lines_fail(o, start);
			cur = line;
		}
		if (end > start) {
			err = lines_put(o, start, cur);
			if (err)
				return err;
		}
		start = end;
	}
	if (len & 1)
		return lines_fail(o, start);
	return lines_put(o, start, -1);
}

/* Location-table varint: 6-bit chunks, least significant first, 0x40 means
 * another chunk follows.  CPython writes unsigned ints, so at most 6 chunks
 * and 32 bits; anything longer, anything reaching past len, or a byte with
 * 0x80 (which starts the next entry) is malformed. */
static int read_varint(const uint8_t *t, size_t len, size_t *pos,
		       uint32_t *val)
{
	uint32_t v = 0;
	unsigned int shift;

	for (shift = 0; shift <= 30; shift += 6) {
		uint8_t b;

		if (*pos >= len)
			return -EINVAL;
		b = t[(*pos)++];
		if (b & 0x80)
			return -EINVAL;
		if (shift == 30 && (b & 0x3c))
			return -EINVAL;
		v |= (uint32_t)(b & 0x3f) << shift;
		if (!(b & 0x40)) {
			*val = v;
			return 0;
		}
	}
	return -EINVAL;
}

/* Signed varint: the low bit is the sign, the rest the magnitude. */
static int read_svarint(const uint8_t *t, size_t len, size_t *pos,
			int64_t *val)
{
	uint32_t u;
	int err;

	err = read_varint(t, len, pos, &u);
	if (err)
		return err;
	*val = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	return 0;
}

/* Column bytes of the short and one-line forms: present, and without the
 * bit that starts an entry. */
static int skip_bytes(const uint8_t *t, size_t len, size_t *pos, size_t k)
{
	if (len - *pos < k)
		return -EINVAL;
	for (; k; k--, (*pos)++)
		if (t[*pos] & 0x80)
			return -EINVAL;
	return 0;
}

enum {
	LOC_ONE_LINE0 = 10,	/* 10..12: line delta code - 10, two columns */
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

/* 3.11+ location table (Objects/locations.md): each entry starts with a
 * byte 0x80 | code << 3 | (length - 1), length in code units, and covers
 * that many units after the previous entry.  Only codes 10-14 move the
 * line; 0-9 repeat it, 15 has none and leaves the running line alone.
 * Entries are parsed to their exact size, so a table read from the wrong
 * address is caught early instead of yielding plausible nonsense.  Past the
 * last entry CPython reports no line. */
static int decode_location(const uint8_t *t, size_t len, int64_t line,
			   struct lines_out *o)
{
	uint64_t start = 0;
	size_t pos = 0;
	int err;

	while (pos < len) {
		uint8_t h = t[pos++];
		unsigned int code = (h >> 3) & 15;
		uint64_t end = start + ((uint64_t)(h & 7) + 1) * 2;
		int64_t delta = 0, cur = -1;
		uint32_t skip;

		if (!(h & 0x80) || end > UINT32_MAX)
			return lines_fail(o, start);
		err = 0;
		switch (code) {
		case LOC_NONE:
			break;
		case LOC_LONG:
			/* line delta, end line delta, column + 1,
			 * end column + 1 */
			err = read_svarint(t, len, &pos, &delta);
			if (!err)
				err = read_varint(t, len, &pos, &skip);
			if (!err)
				err = read_varint(t, len, &pos, &skip);
			if (!err)
				err = read_varint(t, len, &pos, &skip);
			break;
		case LOC_NO_COLUMNS:
			err = read_svarint(t, len, &pos, &delta);
			break;
		case LOC_ONE_LINE0:
		case LOC_ONE_LINE0 + 1:
		case LOC_ONE_LINE0 + 2:
			delta = code - LOC_ONE_LINE0;
			err = skip_bytes(t, len, &pos, 2);
			break;
		default:
			/* short form: same line, one byte of columns */
			err = skip_bytes(t, len, &pos, 1);
			break;
		}
		if (err)
			return lines_fail(o, start);
		if (code != LOC_NONE) {
			line += delta;
			if (!line_ok(line))
				return lines_fail(o, start);
			cur = line;
		}
		err = lines_put(o, start, cur);
		if (err)
			return err;
		start = end;
	}
	return lines_put(o, start, -1);
}

int py_lines_decode(int format, const uint8_t *table, size_t len,
		    int firstlineno, struct line_range *out, size_t cap,
		    size_t *n)
{
	struct lines_out o = { .r = out, .cap = cap, .n = 0 };
	int err;

	if ((!table && len) || (!out && cap) || firstlineno < 0) {
		err = -EINVAL;
		goto out;
	}
	switch (format) {
	case PY_LINES_LNOTAB:
		err = decode_lnotab(table, len, firstlineno, true, &o);
		break;
	case PY_LINES_LNOTAB_U8:
		err = decode_lnotab(table, len, firstlineno, false, &o);
		break;
	case PY_LINES_310:
		err = decode_310(table, len, firstlineno, &o);
		break;
	case PY_LINES_LOCATION:
		err = decode_location(table, len, firstlineno, &o);
		break;
	default:
		err = -EINVAL;
		break;
	}
out:
	if (n)
		*n = o.n;
	return err;
}

int py_lines_lookup(const struct line_range *r, size_t n, uint32_t offset)
{
	const struct line_range *base = r;

	if (!n)
		return -1;
	/* Branch-free lower bound: log2(n) steps whatever the offsets, and
	 * the compare becomes a conditional move, so a sampler walking many
	 * frames does not pay for mispredicted branches. */
	while (n > 1) {
		size_t half = n / 2;

		base = base[half].start <= offset ? base + half : base;
		n -= half;
	}
	return base->start <= offset ? base->line : -1;
}
