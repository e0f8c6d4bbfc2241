/* out_threads.h - a profile split by thread, for the writers that carry
 * threads themselves (speedscope: a profile per thread; chrometrace: a
 * track per thread).
 *
 * A thread is a (pid, OS thread id) pair as profile_stack_owner() reads it
 * from a stack's root markers; stacks without markers belong to (p->pid, 0).
 * The split lists each thread's stacks in profile order and, when the
 * profile has a timeline, each thread's samples in time order.  It borrows
 * nothing from the profile after out_threads_init() returns except through
 * the indexes it holds: keep the profile alive while using it.
 */
#ifndef PYSPYC_OUT_THREADS_H
#define PYSPYC_OUT_THREADS_H

#include <stdint.h>
#include "pyspyc/profile.h"

struct out_thread {
	int pid;            /* the process marker's pid, or profile.pid */
	int tid;            /* the thread marker's OS thread id, or 0 */
	uint32_t process;   /* frame index of a process marker, or UINT32_MAX */
	uint32_t thread;    /* frame index of a thread marker, or UINT32_MAX;
			     * the first in profile order when a thread was
			     * renamed during the run */
	uint64_t count;     /* the sum of its stacks' counts */
	uint32_t sfirst;    /* its stacks: stacks[sfirst .. sfirst + nstacks) */
	uint32_t nstacks;
	uint64_t first;     /* its samples: order[first .. first + nsamples) */
	uint64_t nsamples;
};

struct out_threads {
	struct out_thread *v; /* sorted by pid, then tid */
	uint32_t n;
	uint32_t *stacks;   /* stack indexes grouped by thread, profile order
			     * within one; empty stacks are left out */
	uint32_t *order;    /* sample indexes grouped by thread, time order
			     * within one; NULL when the profile has none */
	int processes;      /* some stack starts at a process marker (-s) */
	/* The timeline holds every counted sample: nothing was lost and each
	 * stack has exactly as many samples as its count.  Only then may a
	 * writer put the timeline where the counts are expected. */
	int complete;
};

/* Split p.  Samples that name no stack, or an empty one, are left out (and
 * the timeline is then not complete).  Returns 0, -ENOMEM, or -EOVERFLOW
 * for a timeline of 2^32 samples or more. */
int out_threads_init(struct out_threads *t, const struct profile *p);

/* The profile's functions for the writers that show functions, not frames
 * (callgrind, pstats): a function is a (name, file) pair, numbered in that
 * order from 0.  *fn_of (profile frame -> function) and *fn_frame
 * (function -> a frame of it) are malloc'd, for the caller to free; *nfn
 * gets the count.  0 or -ENOMEM (nothing to free then). */
int out_functions(const struct profile *p, uint32_t **fn_of, uint32_t **fn_frame,
		  uint32_t *nfn);

/* Frame indexes by name, then file (frames, the profile's, is the
 * context): qsort_r's order of out_functions. */
int out_frame_fn_cmp(const void *a, const void *b, void *frames);

/* The frames of stack s after its root markers, and how many (*depth). */
const uint32_t *out_stack_body(const struct profile *p, uint32_t s, uint32_t *depth);

/* Free what init allocated.  Accepts a zeroed struct. */
void out_threads_release(struct out_threads *t);

#endif
