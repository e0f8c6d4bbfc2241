/* profile_fixture.h - a hand-built struct profile for the unit tests. */
#ifndef PYSPYC_TEST_PROFILE_FIXTURE_H
#define PYSPYC_TEST_PROFILE_FIXTURE_H

#include <string.h>

#include "pyspyc/profile.h"

/* A profile over frames fr and stacks st (borrowed), its total their
 * counts, the rest filled as record would fill it: no timeline. */
static inline struct profile fixture_profile(const struct profile_frame *fr, uint32_t nfr,
					     const struct profile_stack *st, uint32_t nst)
{
	struct profile p;
	uint32_t i;

	memset(&p, 0, sizeof(p));
	p.frames = fr;
	p.nframes = nfr;
	p.stacks = st;
	p.nstacks = nst;
	for (i = 0; i < nst; i++)
		p.total += st[i].count;
	p.command = "python3 app.py";
	p.pid = 4242;
	p.rate_hz = 100;
	p.duration_s = 1;
	p.start_ns = 1000000000;
	p.start_wall_ns = 1700000000000000000;
	return p;
}

#endif
