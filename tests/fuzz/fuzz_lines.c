/* fuzz_lines.c - line-number tables of every format (py_lines.h).
 *
 * Input: u8 format (mod 5: the four formats and an unknown one), i32
 * co_firstlineno, then the table.  Checks the documented contract, not
 * just memory safety: cap = len + 1 always suffices, ranges are sorted with
 * lines >= -1 and no two neighbours alike, py_lines_lookup agrees with the
 * ranges, and a smaller cap gives the start of the same result.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pyspyc/py_lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image in;
	struct line_range *full, *part;
	size_t len, n = 0, m = 0, i, cap;
	int format, first, err, err2;

	image_init(&in, data, size);
	format = image_u8(&in) % 5;
	first = (int)image_u32(&in);
	len = size - in.pos;
	full = malloc((len + 1) * sizeof(*full));
	part = malloc((len + 1) * sizeof(*part));
	FUZZ_CHECK(full && part);
	err = py_lines_decode(format, data + in.pos, len, first, full, len + 1, &n);
	FUZZ_CHECK(err == 0 || err == -EINVAL);
	FUZZ_CHECK(n <= len + 1);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(full[i].line >= -1);
		FUZZ_CHECK(i == 0 || full[i].start > full[i - 1].start);
		FUZZ_CHECK(i == 0 || full[i].line != full[i - 1].line);
		FUZZ_CHECK(py_lines_lookup(full, n, full[i].start) == full[i].line);
		if (full[i].start)
			FUZZ_CHECK(py_lines_lookup(full, n, full[i].start - 1) ==
				   (i ? full[i - 1].line : -1));
	}
	FUZZ_CHECK(py_lines_lookup(full, n, UINT32_MAX) == (n ? full[n - 1].line : -1));
	/* A smaller cap: the first cap ranges of the same result. */
	cap = len ? data[in.pos] % (len + 1) : 0;
	err2 = py_lines_decode(format, data + in.pos, len, first, part, cap, &m);
	FUZZ_CHECK(m <= cap);
	/* A range that malformed input took back may still have needed room
	 * on the way: -ENOSPC then, with the same (complete) result. */
	if (cap >= n)
		FUZZ_CHECK((err2 == err || err2 == -ENOSPC) && m == n);
	else
		FUZZ_CHECK(err2 == -ENOSPC || err2 == -EINVAL);
	for (i = 0; i < m; i++)
		if (err2 == -ENOSPC || i + 1 < m)
			FUZZ_CHECK(!memcmp(&part[i], &full[i], sizeof(part[i])));
	free(full);
	free(part);
	return 0;
}
