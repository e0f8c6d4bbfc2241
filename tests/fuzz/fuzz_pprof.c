/* fuzz_pprof.c - pprof profiles read back (input.h): any bytes, gzip or
 * plain.  Either they are read, or the error says where (an offset within
 * the data, or within its inflated form) in one line.  Read, the table's
 * total is the samples counted; written as pprof by our writer and read
 * again, the profile has the same total at the same rate, and from then on
 * it is a fixed point: the same stacks with the same counts however often
 * it goes round (the first writing replaces bytes that are not UTF-8,
 * which proto3 strings may not hold).
 */
#include "image.h"
#include "in_round.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_round r;

	in_rounds(in_pprof_read, out_pprof_write, 100, (const char *)data, size, &r);
	if (r.e.what[0]) {
		FUZZ_CHECK(!strchr(r.e.what, '\n') && r.e.line == 0);
		FUZZ_CHECK(r.e.inflated || r.e.offset <= size);
	}
	in_round_free(&r);
	return 0;
}
