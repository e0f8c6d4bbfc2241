/* out_json.h - run a JSON writer on a hand-built profile and read back what
 * it wrote, for the writers' unit tests (cmocka). */
#ifndef PYSPYC_TEST_OUT_JSON_H
#define PYSPYC_TEST_OUT_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"
#include "profile_fixture.h"
#include "pyspyc/output.h"

/* The value of a string or number, asserting it is one. */
static inline const char *jstr(const struct jv *v)
{
	assert_non_null(v);
	assert_int_equal(v->type, JV_STR);
	return v->str;
}

static inline double jnum(const struct jv *v)
{
	assert_non_null(v);
	assert_int_equal(v->type, JV_NUM);
	return v->num;
}

/* Write p with write, check the writer succeeded and wrote no NUL, and
 * read the document into *doc (which must then be JSON).  Returns the
 * text (the caller frees it) for tests that look at bytes. */
static inline char *out_json_load(out_write_fn write, const struct profile *p,
				  const struct out_opts *o, struct jv *doc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct out_opts none = { 0 };

	assert_non_null(f);
	assert_int_equal(write(p, o ? o : &none, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	assert_int_equal(strlen(buf), len);
	assert_int_equal(jv_read(buf, len, doc), 0);
	return buf;
}

#endif
