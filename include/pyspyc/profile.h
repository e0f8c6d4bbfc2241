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
	FRAME_SPECIAL = 3, /* pyspyc's own markers: truncation, elided frames */
	/* Root markers that say whose stack it is.  name is the label shown
	 * ("process 12:\"cmd\"", "thread 34 \"name\""); file holds the bare
	 * command line or thread name and line the pid or OS thread id (0 when
	 * unknown), for writers that carry them as labels instead of frames.
	 * A stack starts with at most one process marker, then at most one
	 * thread marker. */
	FRAME_PROCESS = 4,
	FRAME_THREAD = 5,
	/* The agent's root marker in a profile of several services: name and
	 * file are the service's name, line 0.  It comes before the
	 * process marker; pprof carries it as the label service_name. */
	FRAME_SERVICE = 6,
};

/* pyspyc's own frames are shown by name alone. */
static inline int frame_is_marker(int kind)
{
	return kind == FRAME_SPECIAL || kind == FRAME_PROCESS || kind == FRAME_THREAD ||
	       kind == FRAME_SERVICE;
}

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
	uint32_t id;            /* the builder's own id; not for writers */
};

/* One counted thread stack in time, when the run kept a timeline. */
struct profile_sample {
	int64_t t_ns;           /* CLOCK_MONOTONIC time of the sample */
	uint32_t stack;         /* index into profile.stacks */
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
	int64_t start_ns;      /* CLOCK_MONOTONIC start of sampling */
	int64_t start_wall_ns; /* the same instant, Unix time in ns */

	/* The timeline (chrometrace, speedscope): every counted thread stack
	 * in time order, or none (nsamples 0).  timeline_lost counts samples
	 * that did not fit; the timeline then covers the start of the run. */
	const struct profile_sample *samples;
	uint64_t nsamples;
	uint64_t timeline_lost;

	/* What the builder allocated (profile_release frees it). */
	void *own_frames, *own_stacks, *own_pool, *own_samples;
};

/* Total order on stacks by their frames' text (name, file, line, then kind,
 * root to leaf): the same profile always gives the same order, whatever the
 * ids. */
int profile_stack_cmp(const struct profile *p, const struct profile_stack *a,
		      const struct profile_stack *b);

/* Sort p->stacks in place with profile_stack_cmp(). */
void profile_sort(struct profile *p, struct profile_stack *stacks);

/* Bit (1 << kind) for profile_strip's mask. */
#define PROFILE_KIND(k) (1u << (k))

/* A view of in without the frames whose kind is in mask (a bit per kind,
 * PROFILE_KIND()): stacks that become equal are merged, their counts
 * added; stacks left empty are dropped with their counts (the total
 * follows).  out borrows in's frames and strings (release out first); it
 * keeps no timeline.  Returns 0 or -ENOMEM. */
int profile_strip(const struct profile *in, unsigned int mask, struct profile *out);

/* The pid and OS thread id a stack belongs to, from its root markers:
 * *pid is the process marker's pid or p->pid, *tid the thread marker's id
 * or 0; *thread (may be NULL) the thread marker's frame index or
 * UINT32_MAX.  Returns how many root frames are markers (a service
 * marker first, if any, then a process and a thread marker). */
uint32_t profile_stack_owner(const struct profile *p, const struct profile_stack *s,
			     int *pid, int *tid, uint32_t *thread);

/* Free what a builder allocated in p. Accepts a zeroed profile. */
void profile_release(struct profile *p);

#endif
