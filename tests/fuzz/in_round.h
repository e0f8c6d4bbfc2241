/* in_round.h - one round of a profile reader's fuzzer (input.h): bytes
 * read into a new table, the profile written back with a writer, and as
 * collapsed stacks to compare.  Include after image.h. */
#ifndef PYSPYC_FUZZ_IN_ROUND_H
#define PYSPYC_FUZZ_IN_ROUND_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/input.h"
#include "pyspyc/output.h"
#include "pyspyc/stacktab.h"

typedef int (*in_reader_fn)(struct stacktab *t, const char *data, size_t len,
			    struct in_totals *tot, struct in_error *e);

struct in_round {
	struct in_totals tot;
	struct in_error e;
	char *out, *folded;   /* the writer's bytes and the collapsed stacks */
	size_t nout, nfolded;
};

/* Read data with read; when it was read, write its profile (at rate, or
 * the one read) with write into r->out and as collapsed stacks into
 * r->folded.  The reader's return; r->tot and r->e as it left them. */
static inline int in_round(in_reader_fn read, out_write_fn write, double rate,
			   const char *data, size_t len, struct in_round *r)
{
	static const struct stacktab_limits lim = { 4096, 16384, 16384 };
	struct stacktab *t;
	struct profile p = { 0 };
	FILE *f;
	int err;

	memset(r, 0, sizeof(*r));
	if (stacktab_new(&t, &lim))
		return -ENOMEM;
	err = read(t, data, len, &r->tot, &r->e);
	if (!err && !stacktab_snapshot(t, &p)) {
		FUZZ_CHECK(p.total == r->tot.samples);
		p.rate_hz = r->tot.rate > 0 ? r->tot.rate : rate;
		f = open_memstream(&r->out, &r->nout);
		FUZZ_CHECK(f);
		FUZZ_CHECK(write(&p, NULL, f) == 0);
		FUZZ_CHECK(fclose(f) == 0);
		f = open_memstream(&r->folded, &r->nfolded);
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

static inline void in_round_free(struct in_round *r)
{
	free(r->out);
	free(r->folded);
	r->out = r->folded = NULL;
}

/* Three rounds: data, then what the writer made of it, twice.  Once read,
 * each round reads whole with the same total (and rate, when the reader
 * gives one), and the second and third are the same stacks with the same
 * counts.  The first round's reader error is left in *first. */
static inline void in_rounds(in_reader_fn read, out_write_fn write, double rate,
			     const char *data, size_t len, struct in_round *first)
{
	struct in_round r[2];
	int i;

	if (in_round(read, write, rate, data, len, first))
		return;
	for (i = 0; i < 2; i++) {
		const struct in_round *prev = i ? &r[0] : first;

		FUZZ_CHECK(in_round(read, write, rate, prev->out, prev->nout, &r[i]) == 0);
		FUZZ_CHECK(r[i].tot.samples == first->tot.samples);
		if (first->tot.rate > 0)
			FUZZ_CHECK(r[i].tot.rate / first->tot.rate > 0.999 &&
				   r[i].tot.rate / first->tot.rate < 1.001);
	}
	FUZZ_CHECK(r[0].nfolded == r[1].nfolded &&
		   !memcmp(r[0].folded, r[1].folded, r[0].nfolded));
	in_round_free(&r[0]);
	in_round_free(&r[1]);
}

#endif
