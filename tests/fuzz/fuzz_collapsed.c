/* fuzz_collapsed.c - collapsed stacks read back (input.h): any bytes as a
 * file.  Either they are read, or the error names a line inside the input
 * and an offset within it, in one line of text.  Read, the profile's total
 * is the samples counted, and what the collapsed writer makes of it reads
 * back to the same table: written again it is the same text, byte for
 * byte (write(read(x)) is a fixed point after one round).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pyspyc/input.h"
#include "pyspyc/output.h"
#include "pyspyc/stacktab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct stacktab_limits lim = { 4096, 16384, 16384 };

/* Read text into a new table and write it out as collapsed stacks into
 * *out (malloc'd).  The reader's return. */
static int round_trip(const char *text, size_t len, char **out, size_t *olen)
{
	struct stacktab *t;
	struct in_totals tot = { 0 };
	struct in_error e = { 0 };
	struct profile p = { 0 };
	FILE *f;
	int err;

	*out = NULL;
	*olen = 0;
	if (stacktab_new(&t, &lim))
		return -ENOMEM;
	err = in_collapsed_read(t, text, len, &tot, &e);
	if (err == -EINVAL) {
		size_t lines = 1, i;

		for (i = 0; i < len; i++)
			lines += text[i] == '\n';
		FUZZ_CHECK(e.line >= 1 && e.line <= lines);
		FUZZ_CHECK(e.offset <= len);
		FUZZ_CHECK(e.what[0] && !strchr(e.what, '\n'));
	}
	if (!err) {
		FUZZ_CHECK(tot.samples <= IN_MAX_COUNT);
		if (!stacktab_snapshot(t, &p)) {
			FUZZ_CHECK(p.total == tot.samples);
			f = open_memstream(out, olen);
			FUZZ_CHECK(f);
			FUZZ_CHECK(out_collapsed_write(&p, NULL, f) == 0);
			FUZZ_CHECK(fclose(f) == 0);
			profile_release(&p);
		} else {
			err = -ENOMEM;
		}
	}
	stacktab_free(t);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *once, *twice, *thrice;
	size_t n1, n2, n3;

	if (round_trip((const char *)data, size, &once, &n1)) {
		free(once);
		return 0;
	}
	/* Written once, it reads back whole, and writes the same. */
	FUZZ_CHECK(round_trip(once, n1, &twice, &n2) == 0);
	FUZZ_CHECK(round_trip(twice, n2, &thrice, &n3) == 0);
	FUZZ_CHECK(n2 == n3 && !memcmp(twice, thrice, n2));
	free(once);
	free(twice);
	free(thrice);
	return 0;
}
