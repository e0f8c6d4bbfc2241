/* profile.h - the aggregated profile every writer reads.
 *
 * A profile is a plain, immutable snapshot built once at the end of a run
 * from the live tables (see profile_build() in stacktab.h).  Writers never
 * see the lock-free tables, so they can be tested on hand-built profiles.
 *
 * Strings in a profile are NUL-terminated UTF-8 and may contain anything the
 * target put in them (quotes, '<', ';', control characters): every writer
 * escapes or replaces what its format cannot carry.
 */
#ifndef PYSPYC_PROFILE_H
#define PYSPYC_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* Where a frame's code comes from; the flame graph colours by it. */
enum frame_kind {
	FRAME_APP = 0,     /* the application's own code */
	FRAME_STDLIB = 1,  /* the standard library (lib/pythonX.Y, <frozen ...>) */
	FRAME_LIBRARY = 2, /* site-packages / dist-packages */
	FRAME_SPECIAL = 3, /* pyspyc's own markers: truncation, process, thread */
};

struct profile_frame {
	const char *name;  /* qualified function name */
	const char *file;  /* file name as it should be shown (may be "") */
	int line;          /* line number, 0 when unknown or not shown */
	int kind;          /* enum frame_kind */
};

struct profile_stack {
	const uint32_t *frames; /* indexes into profile.frames, root first */
	uint32_t depth;
	uint64_t count;         /* samples that saw exactly this stack */
};

struct profile {
	const struct profile_frame *frames;
	uint32_t nframes;
	const struct profile_stack *stacks; /* sorted by profile_stack_cmp() */
	uint32_t nstacks;
	uint64_t total;        /* sum of all stack counts */

	/* What was profiled, for titles and metadata. */
	const char *command;   /* target command line, printable */
	int pid;
	double rate_hz;        /* requested sampling rate */
	double duration_s;     /* wall time sampled */
};

/* Total order on stacks by their frames' text (name, file, line, then kind,
 * root to leaf): the same profile always gives the same order, whatever the
 * ids. */
int profile_stack_cmp(const struct profile *p, const struct profile_stack *a,
		      const struct profile_stack *b);

/* Sort p->stacks in place with profile_stack_cmp(). */
void profile_sort(struct profile *p, struct profile_stack *stacks);

#endif
