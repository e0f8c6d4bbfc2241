/* fuzz_collapsed.c - collapsed stacks read back (input.h): any bytes as a
 * file.  Either they are read, or the error names a line inside the input
 * and an offset within it, in one line of text.  Read, the profile's total
 * is the samples counted, and what the collapsed writer makes of it reads
 * back to the same table: written again it is the same text, byte for
 * byte (write(read(x)) is a fixed point after one round).
 */
#include "image.h"
#include "in_round.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_round r;
	size_t lines = 1, i;

	in_rounds(in_collapsed_read, out_collapsed_write, 100, (const char *)data, size, &r);
	if (r.e.what[0]) {
		for (i = 0; i < size; i++)
			lines += data[i] == '\n';
		FUZZ_CHECK(r.e.line >= 1 && r.e.line <= lines && r.e.offset <= size);
		FUZZ_CHECK(!strchr(r.e.what, '\n'));
	}
	in_round_free(&r);
	return 0;
}
