/* json.h - write one JSON document to a stream.
 *
 * A small streaming writer: the caller opens objects and arrays, names keys
 * and writes values; the writer places commas, newlines and indentation.
 * Strings may be any bytes: they are written as valid JSON whatever they
 * hold (quotes and backslashes escaped, control characters as \u00XX,
 * U+2028 and U+2029 escaped too, each byte that is not part of valid UTF-8
 * as U+FFFD).  Nesting deeper than JSON_MAX_DEPTH is refused (the value is
 * left out and the document flagged).  Output errors are left to the
 * caller's ferror() check.
 */
#ifndef PYSPYC_JSON_H
#define PYSPYC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json {
	FILE *f;
	int depth;
	int bad;                       /* nesting overflowed or underflowed */
	unsigned char first[JSON_MAX_DEPTH]; /* nothing written yet at depth */
	unsigned char oneline[JSON_MAX_DEPTH]; /* the container at depth is on one line */
	unsigned char key_pending;     /* a key was written: its value is next */
	unsigned char oneline_next;    /* json_oneline() was called */
};

void json_init(struct json *j, FILE *f);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);

/* Write the next object or array opened, and everything in it, on one line
 * without spaces (a trace event, a list of frame indexes): big documents
 * stay small and a line stays one record. */
void json_oneline(struct json *j);

/* The next member's name, inside an object. */
void json_key(struct json *j, const char *key);

/* Values: s may be NULL (writes null). */
void json_string(struct json *j, const char *s);
void json_string_n(struct json *j, const char *s, size_t len);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
/* The shortest text (of 15, 16 or 17 significant digits) that reads back
 * as exactly v; null for NaN and the infinities, which JSON cannot carry.
 * Assumes the "C" LC_NUMERIC, which pyspyc never changes. */
void json_double(struct json *j, double v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* v / 10^decimals written exactly, without trailing zeros (5201908 with 3
 * decimals: 5201.908): times in ns as us or ms, with no rounding and
 * none of a double's formatting cost.  decimals is at most 18. */
void json_decimal(struct json *j, int64_t v, unsigned decimals);

/* A member: its key, then its value. */
void json_member_string(struct json *j, const char *key, const char *s);
void json_member_int(struct json *j, const char *key, int64_t v);
void json_member_uint(struct json *j, const char *key, uint64_t v);
void json_member_double(struct json *j, const char *key, double v);

/* End the document with a newline.  Returns 0, or -EINVAL when the objects
 * and arrays opened were not all closed. */
int json_finish(struct json *j);

/* The escaped body of a JSON string (no quotes), for the tests: writes at
 * most size-1 bytes and a NUL; returns the length it needed. */
size_t json_escape(const char *s, size_t len, char *out, size_t size);

#endif
