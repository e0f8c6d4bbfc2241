/* stacktab.h - the live, lock-free aggregation of samples.
 *
 * A stacktab owns three interning tables (strings, frames, stacks) and one
 * counter per stack.  Sampler threads call stacktab_string/_frame/_add
 * concurrently without locks; at the end of the run one thread turns it into
 * an immutable struct profile with stacktab_snapshot().
 *
 * Ids are dense and stable for the life of the table, so samplers cache them
 * (a code object caches its name and file ids, a (code, line) pair its frame
 * id) and the hot path is: intern the stack's id array, add one.
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
 * first) and set *id (may be NULL) to its stack id.  Returns 0 or -ENOSPC
 * when the stack table is full; the caller counts the dropped sample. */
int stacktab_add(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		 uint64_t count, uint32_t *id);

/* Count `count` more samples of a stack id stacktab_add returned. */
void stacktab_add_id(struct stacktab *t, uint32_t id, uint64_t count);

/* The string or frame key behind an id, while the table lives; "" / NULL
 * for an id not (yet) interned. */
const char *stacktab_string_get(const struct stacktab *t, uint32_t id);
const struct frame_key *stacktab_frame_get(const struct stacktab *t, uint32_t id);

/* Keep a timeline of up to max_records counted stacks (virtual memory is
 * reserved now, touched as it fills).  Call before sampling starts.
 * Returns 0, -EINVAL (already kept, or 0 records) or -ENOMEM. */
int stacktab_timeline(struct stacktab *t, uint64_t max_records);

/* Log that stack id was counted at t_ns; nothing when no timeline is kept.
 * Lock-free; records past max_records are counted as lost. */
void stacktab_log(struct stacktab *t, int64_t t_ns, uint32_t id);

/* Which bound was hit first, as the name of the option that raises it, or
 * NULL when none was. */
const char *stacktab_full(const struct stacktab *t);

/* Unique stacks so far. */
uint32_t stacktab_nstacks(const struct stacktab *t);

/* Build an immutable, sorted profile from the table.  The profile borrows the
 * table's strings: release it (profile_release) before stacktab_free.  May
 * run while samplers insert (a live view): it sees the stacks published
 * before it started, with counts read at some instant after.  Returns 0 or
 * -ENOMEM. */
int stacktab_snapshot(const struct stacktab *t, struct profile *p);

#endif
