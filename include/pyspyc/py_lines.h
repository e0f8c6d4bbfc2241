/* py_lines.h - CPython line-number tables, decoded from bytes.
 *
 * Pure functions, no I/O: the input is whatever bytes were read from the
 * target (hostile), so every decoder is bounded by the input length and the
 * output capacity and never trusts a length it decoded.
 *
 * A decoded table is an array of ranges sorted by start offset; offsets are
 * in bytes of bytecode (code unit index * 2 for 3.6+, byte index for 2.7).
 */
#ifndef PYSPYC_PY_LINES_H
#define PYSPYC_PY_LINES_H

#include <stddef.h>
#include <stdint.h>

struct line_range {
	uint32_t start;  /* first bytecode offset (bytes) covered */
	int32_t line;    /* source line, or -1 for "no line" */
};

enum py_line_format {
	PY_LINES_LNOTAB = 1,   /* co_lnotab, 3.6 - 3.9: signed line increments */
	PY_LINES_310 = 2,      /* co_linetable, 3.10 */
	PY_LINES_LOCATION = 3, /* co_linetable location table, 3.11+ */
	/* co_lnotab, 2.7 and 3.0 - 3.5: unsigned line increments.  2.7 writes
	 * increments of 128..255 as is (a 200-line gap is one pair, 200), so
	 * reading them as signed (PY_LINES_LNOTAB) goes backwards. */
	PY_LINES_LNOTAB_U8 = 4,
};

/* Decode table (len bytes) of the given format for a code object whose
 * co_firstlineno is firstlineno into out[0..cap).  *n receives the number of
 * ranges written.  Returns 0, -EINVAL for malformed input (ranges decoded
 * before the fault are kept in out and *n), or -ENOSPC when cap was too small
 * (out holds the first cap ranges).  An unknown format is -EINVAL.
 *
 * cap = len + 1 always suffices.  Adjacent ranges with the same line are
 * merged.  Where a 3.10+ table ends, and where malformed input stopped the
 * decoder, a range with line -1 follows (room permitting), so offsets past
 * what was decoded look up as -1, as CPython's PyCode_Addr2Line does past
 * the end of a 3.10+ table.  Decoded lines are never negative: a table
 * whose running line leaves 0..INT32_MAX is malformed. */
int py_lines_decode(int format, const uint8_t *table, size_t len,
		    int firstlineno, struct line_range *out, size_t cap,
		    size_t *n);

/* The line for bytecode offset (bytes) in a decoded table, or -1 when the
 * offset is before the first range or the covering range has no line. */
int py_lines_lookup(const struct line_range *r, size_t n, uint32_t offset);

#endif
