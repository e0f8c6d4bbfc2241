/* py_obj.h - read Python objects out of a target's memory.
 *
 * Everything here reads; nothing runs in the target.  The target's memory is
 * hostile input: every read is bounded, every length and count is checked
 * against a cap before it sizes a read, every loop is capped, and types are
 * recognised by reading the type object (a static, non-heap type whose
 * tp_name is one of the builtins'), never by trusting a pointer.  A value
 * that does not check out is shown as what it is ("<int at 0x...:
 * unreadable>") rather than guessed at.  Each top-level call makes at most
 * PY_OBJ_MAX_READS remote reads.
 *
 * Offsets come from the target's struct py_layout (py_layout.h, "Objects"
 * section): generated per minor version, 3.13 from _Py_DebugOffsets.
 *
 * Not thread-safe with respect to one struct rmem; otherwise stateless.
 */
#ifndef PYSPYC_PY_OBJ_H
#define PYSPYC_PY_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"

#define PY_OBJ_MAX_READS 50000    /* remote reads per call */
#define PY_OBJ_MAX_STR 100        /* characters of a str/bytes shown */
#define PY_OBJ_MAX_LOCALS 4096    /* locals of one frame */
#define PY_OBJ_MAX_NAME 256       /* bytes of a local's name, with the NUL */

/* A short, printable text for the object at obj, written as NUL-terminated
 * UTF-8 into out (cut at a character boundary, ending in "..." when it did
 * not fit; size >= 16 keeps every form whole but long strings):
 *
 *   None, True, False
 *   int          exact ("-12", up to 60 digits), else "<int of N digits>"
 *   float        like Python's repr: "0.1", "1e+16", "inf", "nan", "2.0"
 *   str          Python repr with quotes chosen as Python does, escapes for
 *                backslash, the quote, control and non-printable
 *                characters; more than PY_OBJ_MAX_STR characters are cut:
 *                "'abc'... (5000 chars)".  2.7: unicode as u'...'
 *   bytes        b'...' likewise (2.7 str: '...')
 *   list, tuple, dict, set, frozenset
 *                "<list of 3 items>", "<dict of 1 item>"
 *   NULL         "<NULL>"
 *   others       "<TypeName at 0x7f...>" (also subclasses of the above)
 *
 * The text never holds control characters or invalid UTF-8, so it can be
 * printed to a terminal as is (JSON still needs escaping of quotes and
 * backslashes).  Returns 0, or -errno when the object could not be read
 * (-EFAULT, -ESRCH: the target is gone, -EBADMSG: fields out of range);
 * out then says so ("<unreadable at 0x...>").  size must be at least 1. */
int py_obj_repr(const struct py_target *t, struct rmem *m, uint64_t obj,
		char *out, size_t size);

/* Called for each argument and local of a frame, in the code object's order:
 * arguments first (positional, keyword-only, *args, **kwargs), then the
 * other locals, then cell and free variables not already shown.  name is
 * printable UTF-8 (escaped like py_obj_repr's strings, without quotes) and
 * valid only during the call; value is the object's remote address, 0 when
 * the variable is unbound.  For a cell, value is the cell's content.  A
 * non-zero return stops the walk and is returned by py_obj_frame_locals. */
typedef int (*py_obj_local_fn)(const char *name, uint64_t value, int is_arg,
			       void *ctx);

/* The arguments and locals of one frame.  frame is the remote address of a
 * PyFrameObject (<= 3.10) or a _PyInterpreterFrame (3.11+); code is its code
 * object, which the frame must still point to (else -ESTALE: the frame was
 * reused since it was sampled).  Returns 0, the callback's non-zero value,
 * or -errno (-EFAULT, -ESRCH, -EBADMSG for counts that do not check out,
 * -ESTALE). */
int py_obj_frame_locals(const struct py_target *t, struct rmem *m,
			uint64_t frame, uint64_t code, py_obj_local_fn cb,
			void *ctx);

/* A thread's name as threading knows it. */
struct py_thread_name {
	uint64_t ident;   /* threading.get_ident() == PyThreadState.thread_id */
	char name[64];    /* printable UTF-8, escaped like py_obj_repr's strings
			   * without quotes; cut with "..." */
};

/* Read threading's names: sys.modules (interp->modules; 3.12+
 * interp->imports.modules) -> "threading" -> its __dict__ -> "_active" (a
 * dict ident -> Thread) -> each Thread's "_name" ("_Thread__name" on 2.7)
 * from its instance dict (tp_dictoffset, or 3.11+ managed dicts, shared-key
 * values and 3.13 inline values).  Fills out[0..n) in the dict's order.
 * Returns the number filled: 0 when threading was never imported, or
 * -errno when the modules dict itself could not be read.  Threads whose
 * entry does not check out are left out. */
int py_obj_thread_names(const struct py_target *t, struct rmem *m,
			struct py_thread_name *out, size_t n);

/* ---- pure formatting, exposed for the tests ---------------------------- */

/* How py_text_format writes code points. */
#define PY_TEXT_QUOTE 0x1    /* Python repr: quotes chosen as Python does */
#define PY_TEXT_BYTES 0x2    /* the values are bytes: >= 0x7f as \xNN */

/* Write n code points (bytes with PY_TEXT_BYTES) as printable UTF-8 into
 * out: backslash, control and non-printable characters escaped as Python's
 * repr does (\n, \t, \r, \\, \xNN, \uNNNN, \UNNNNNNNN; the quote when
 * quoting), values past U+10FFFF as \UNNNNNNNN too.  prefix ("b", "u" or
 * "") goes before the opening quote.  total is the object's real length:
 * more than n marks the text as cut ("... (N chars)" after the closing
 * quote; "..." when not quoting).  Output that does not fit in size is cut
 * at a character boundary and ends in "...".  Returns the length written. */
size_t py_text_format(const uint32_t *cp, size_t n, uint64_t total,
		      const char *prefix, int flags, char *out, size_t size);

/* Decode UTF-8 bytes into code points, each invalid byte as 0xDC00 + byte
 * (Python's surrogateescape), which py_text_format escapes as \udcNN.
 * Returns the number of code points written (at most cap). */
size_t py_text_decode_utf8(const uint8_t *s, size_t len, uint32_t *cp,
			   size_t cap, size_t *used);

/* Text from the target that is meant to be UTF-8 (function and file names)
 * as printable UTF-8: control and non-printable characters escaped as
 * py_text_format does, each invalid byte as \udcNN (Python's
 * surrogateescape), no quotes.  Input past 4096
 * bytes is cut ("...").  Returns the length written. */
size_t py_text_printable(const char *s, size_t len, char *out, size_t size);

/* A double as Python's repr() shows it: the shortest text that reads back
 * to the same value, "1e+16" past 16 digits, ".0" on integers, "inf",
 * "-inf", "nan".  Returns the length written (size >= 32). */
size_t py_float_format(double v, char *out, size_t size);

/* An integer given as little-endian digits of `shift` bits each, in
 * decimal, "-" first when negative.  Values of more than max_chars digits
 * are written as "<int of N digits>".  Returns the length written, or 0
 * when a digit does not fit in shift bits (a damaged object). */
size_t py_int_format(const uint32_t *digits, size_t ndigits, unsigned shift,
		     int negative, size_t max_chars, char *out, size_t size);

#endif
