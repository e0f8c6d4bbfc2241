/* fuzz_pprof.c - pprof profiles read back (input.h): any bytes, gzip or
 * plain.  Either they are read, or the error says where (an offset within
 * the data, or within its inflated form) in one line.  Read, the table's
 * total is the samples counted; written as pprof by our writer and read
 * again, the profile is the same stacks with the same counts (compared as
 * collapsed stacks), at the same rate.
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

/* Read data (pprof) into a new table; its rate and total, and its profile
 * written as pprof into *pb and as collapsed stacks into *folded (both
 * malloc'd, or NULL).  The reader's return. */
static int read_write(const char *data, size_t len, double *rate, uint64_t *total,
		      char **pb, size_t *npb, char **folded, size_t *nfolded)
{
	struct stacktab *t;
	struct in_totals tot = { 0 };
	struct in_error e = { 0 };
	struct profile p = { 0 };
	FILE *f;
	int err;

	*pb = *folded = NULL;
	*npb = *nfolded = 0;
	if (stacktab_new(&t, &lim))
		return -ENOMEM;
	err = in_pprof_read(t, data, len, &tot, &e);
	if (err == -EINVAL) {
		FUZZ_CHECK(e.what[0] && !strchr(e.what, '\n') && e.line == 0);
		FUZZ_CHECK(e.inflated || e.offset <= len);
	}
	if (!err && !stacktab_snapshot(t, &p)) {
		FUZZ_CHECK(p.total == tot.samples);
		*rate = tot.rate;
		*total = p.total;
		p.rate_hz = tot.rate > 0 ? tot.rate : 100;
		f = open_memstream(pb, npb);
		FUZZ_CHECK(f);
		FUZZ_CHECK(out_pprof_write(&p, NULL, f) == 0);
		FUZZ_CHECK(fclose(f) == 0);
		f = open_memstream(folded, nfolded);
		FUZZ_CHECK(f);
		FUZZ_CHECK(out_collapsed_write(&p, NULL, f) == 0);
		FUZZ_CHECK(fclose(f) == 0);
		profile_release(&p);
	} else if (!err) {
		err = -ENOMEM;
	}
	stacktab_free(t);
	return err;
}

static int same_rate(double a, double b)
{
	return a > 0 && b > 0 && a / b > 0.999 && a / b < 1.001;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pb[3] = { NULL }, *f[3] = { NULL };
	size_t npb[3], nf[3];
	double r[3] = { 0 };
	uint64_t total[3];
	int i;

	if (read_write((const char *)data, size, &r[0], &total[0], &pb[0], &npb[0], &f[0],
		       &nf[0]) == 0) {
		/* Our own writing of it reads back, twice. */
		for (i = 1; i < 3; i++) {
			FUZZ_CHECK(read_write(pb[i - 1], npb[i - 1], &r[i], &total[i], &pb[i],
					      &npb[i], &f[i], &nf[i]) == 0);
			FUZZ_CHECK(total[i] == total[0]);
			FUZZ_CHECK(same_rate(r[i], r[0] > 0 ? r[0] : 100));
		}
		FUZZ_CHECK(nf[1] == nf[2] && !memcmp(f[1], f[2], nf[1]));
	}
	for (i = 0; i < 3; i++) {
		free(pb[i]);
		free(f[i]);
	}
	return 0;
}
