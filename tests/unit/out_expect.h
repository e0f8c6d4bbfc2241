/* out_expect.h - a writer's whole output compared with golden text, for
 * the unit tests of the text formats.  Include after cmocka.h. */
#ifndef PYSPYC_TEST_OUT_EXPECT_H
#define PYSPYC_TEST_OUT_EXPECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/output.h"

/* Write p with write and compare with want exactly. */
static inline void expect_output(out_write_fn write, const struct profile *p, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct out_opts o = { 0 };

	assert_non_null(f);
	assert_int_equal(write(p, &o, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	/* No NUL may hide inside the output. */
	assert_int_equal(strlen(buf), len);
	assert_string_equal(buf, want);
	free(buf);
}

#endif
