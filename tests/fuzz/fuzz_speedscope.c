/* fuzz_speedscope.c - speedscope documents read back (input.h): any bytes
 * as a file, read at 100 Hz.  Either they are read, or there is one line
 * saying what is wrong (and for JSON that does not parse, which line).
 * Read, the table's total is the samples counted; written as speedscope
 * by our writer and read again, the total is the same, and from then on
 * the profile is a fixed point: the same stacks with the same counts
 * (compared as collapsed stacks).
 */
#include "image.h"
#include "in_round.h"

#define RATE 100.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_speedscope(struct stacktab *t, const char *data, size_t len,
			   struct in_totals *tot, struct in_error *e)
{
	return in_speedscope_read(t, data, len, RATE, tot, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_round r;

	in_rounds(read_speedscope, out_speedscope_write, RATE, (const char *)data, size, &r);
	if (r.e.what[0])
		FUZZ_CHECK(!strchr(r.e.what, '\n') && (r.e.line || r.e.whole));
	in_round_free(&r);
	return 0;
}
