/* stacktab.h - the live, lock-free aggregation of samples.
 *
 * A stacktab owns two interning tables that live as long as it does
 * (strings, frames) and a window: the stacks counted since it opened, a
 * counter per stack and the timeline.  Sampler threads call
 * stacktab_string/_frame/_add concurrently without locks; one other thread
 * (the owner) turns the window into an immutable struct profile with
 * stacktab_snapshot() (a live view, the window stays open) or closes it and
 * opens a new, empty one with stacktab_rotate() while samplers go on.
 *
 * String and frame ids are dense and stable for the life of the table, so
 * samplers cache them (a code object caches its name and file ids, a (code,
 * line) pair its frame id) and the hot path is: intern the stack's id
 * array, add one.  A stack id is valid in the window that gave it: adding
 * by an id of a closed window fails with -ESTALE (the caller adds by frames
 * again), so a cached stack id never counts in the wrong window.
 *
 * Memory: each window's stacks are bounded by max_stacks; two windows are
 * kept (the open one and the one closed last, whose profile may still be
 * read), and a rotation empties the older one and gives its pages back, so
 * the memory of stacks does not grow with the number of windows.  Strings
 * and frames are never collected: they are the program's code (a function
 * and line each; bounded by the code the target runs) and the process and
 * thread markers (-s, -t: a label per process and thread seen); a run
 * that would pass max_frames drops what does not fit, counted, and
 * stacktab_full() names --max-frames.
 */
#ifndef PYSPYC_STACKTAB_H
#define PYSPYC_STACKTAB_H

#include <stddef.h>
#include <stdint.h>
#include "pyspyc/profile.h"

struct stacktab;

struct stacktab_limits {
	uint32_t max_stacks;  /* unique stacks (--max-stacks) */
	uint32_t max_frames;  /* unique frames */
	uint32_t max_strings; /* unique strings */
};

/* The key a frame is interned by. */
struct frame_key {
	uint32_t name;  /* string id */
	uint32_t file;  /* string id */
	int32_t line;   /* 0: none */
	uint32_t kind;  /* enum frame_kind */
};

int stacktab_new(struct stacktab **out, const struct stacktab_limits *lim);
void stacktab_free(struct stacktab *t);

/* Intern a string / a frame.  0 or -ENOSPC (which table: see
 * stacktab_full()). */
int stacktab_string(struct stacktab *t, const char *s, size_t len, uint32_t *id);
int stacktab_frame(struct stacktab *t, const struct frame_key *k, uint32_t *id);

/* Count `count` samples of the stack frames[0..depth) (frame ids, root
 * first) in the open window and set *id (may be NULL) to its stack id
 * there.  Returns 0 or -ENOSPC when the window's stack table is full; the
 * caller counts the dropped sample.  max_stacks is at most 2^27 - 1. */
int stacktab_add(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		 uint64_t count, uint32_t *id);

/* Count `count` more samples of a stack id stacktab_add returned.  Returns
 * 0, or -ESTALE (nothing counted) when the id is not of the open window:
 * add the stack by its frames. */
int stacktab_add_id(struct stacktab *t, uint32_t id, uint64_t count);

/* Count one sample, as stacktab_add / stacktab_add_id, and log it at t_ns
 * in the same window's timeline when one is kept: the sampler's calls,
 * which a rotation never splits. */
int stacktab_add_at(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		    int64_t t_ns, uint32_t *id);
int stacktab_add_id_at(struct stacktab *t, uint32_t id, int64_t t_ns);

/* Show frame (a marker) with the strings name and file instead of its
 * key's, in every profile taken from now on, closed windows' included: a
 * thread keeps one frame for its life and is shown under its last name.
 * The key stays what the frame is found by.  0 or -EINVAL. */
int stacktab_frame_relabel(struct stacktab *t, uint32_t frame, uint32_t name, uint32_t file);

/* The string or frame key behind an id, while the table lives; "" / NULL
 * for an id not (yet) interned. */
const char *stacktab_string_get(const struct stacktab *t, uint32_t id);
const struct frame_key *stacktab_frame_get(const struct stacktab *t, uint32_t id);

/* Keep a timeline of up to max_records counted stacks per window (virtual
 * memory is reserved now, touched as it fills).  Call before sampling
 * starts.  Returns 0, -EINVAL (already kept, or 0 records) or -ENOMEM. */
int stacktab_timeline(struct stacktab *t, uint64_t max_records);

/* Log that stack id was counted at t_ns; nothing when no timeline is kept
 * or id is not of the open window.  Lock-free; records past max_records
 * are counted as lost. */
void stacktab_log(struct stacktab *t, int64_t t_ns, uint32_t id);

/* Which bound was hit first, as the name of the option that raises it, or
 * NULL when none was. */
const char *stacktab_full(const struct stacktab *t);

/* Unique stacks of the open window so far. */
uint32_t stacktab_nstacks(const struct stacktab *t);

/* Windows opened so far (1 before the first rotation). */
uint64_t stacktab_windows(const struct stacktab *t);

/* Build an immutable, sorted profile of the open window.  The profile
 * borrows the table's strings and the window's stacks: release it
 * (profile_release) before the next stacktab_rotate and before
 * stacktab_free.  May run while samplers insert (a live view): it sees the
 * stacks published before it started, with counts read at some instant
 * after.  Returns 0 or -ENOMEM. */
int stacktab_snapshot(const struct stacktab *t, struct profile *p);

/* Close the open window and open an empty one; samplers go on adding,
 * to the new one, and every add counts in exactly one of the two.  When
 * closed is not NULL it gets the closed window's profile, as
 * stacktab_snapshot gives it (with the same lifetime); a failure to build
 * it (-ENOMEM) still rotates.  Call from the owner thread only, not
 * concurrently with stacktab_snapshot; a profile of an earlier window
 * must have been released.  Waits for adds already in the closed window to
 * finish (a few instructions each). */
int stacktab_rotate(struct stacktab *t, struct profile *closed);

#endif
