/* strtab.h - lock-free interning of byte strings to dense ids.
 *
 * A strtab maps byte strings (any bytes, any length up to the arena) to
 * small dense ids 0, 1, 2, ...  It is the one interning mechanism of pyspyc:
 * names and file names, frames (a fixed-size key) and whole stacks (an array
 * of frame ids) are all interned through it.
 *
 * Concurrency: strtab_intern() may be called from any number of threads at
 * once; it takes no lock (compare-and-swap on the slot array, fetch-and-add
 * on the arena and id counters).  A thread that loses a race for the same
 * key gets the winner's id; the id it had reserved is left as an "orphan"
 * that strtab_get() reports with -ENOENT and that iteration skips.
 * strtab_get() may run concurrently with inserts for any id returned by a
 * completed strtab_intern().
 *
 * Memory is bounded at creation: at most max_keys keys and arena_bytes of
 * key bytes.  Both regions are reserved with mmap(MAP_NORESERVE) and only the
 * pages touched are resident.  When either bound is hit, strtab_intern()
 * returns -ENOSPC and the caller tells the user which option raises it.
 */
#ifndef PYSPYC_STRTAB_H
#define PYSPYC_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab;

/* Create a table for at most max_keys keys holding at most arena_bytes of
 * key data.  Returns 0 or -errno (-EINVAL, -ENOMEM). */
int strtab_new(struct strtab **out, uint32_t max_keys, size_t arena_bytes);

/* The same, for a table that keeps its keys for the run and is looked up
 * seldom (names, frames): its resident memory grows with its keys, a few
 * pages for the first thousands, not a page a key until the index is all
 * resident; a lookup costs up to a few cache lines more. */
int strtab_new_lasting(struct strtab **out, uint32_t max_keys, size_t arena_bytes);

/* Free the table and everything in it.  Accepts NULL.  Not thread-safe:
 * every inserting thread must have stopped. */
void strtab_free(struct strtab *t);

/* Empty the table for reuse, as if new: ids start at 0 again, and the
 * pages it had touched go back to the system (resident memory falls to what
 * the next keys touch).  Not thread-safe: no other thread may use the table
 * during the call, and keys and ids from before it are invalid after. */
void strtab_reset(struct strtab *t);

/* The id of key (len bytes), inserting it when new.  Returns 0 and sets *id,
 * or -ENOSPC when the table is full. */
int strtab_intern(struct strtab *t, const void *key, size_t len, uint32_t *id);

/* The bytes of id: returns 0 and sets *key and *len (the bytes stay valid and
 * unchanged until strtab_free; a NUL follows them), or -ENOENT for an id that
 * was never handed out or is an orphan. */
int strtab_get(const struct strtab *t, uint32_t id, const void **key,
	       size_t *len);

/* One more than the highest id handed out so far (orphans included). */
uint32_t strtab_count(const struct strtab *t);

/* Bytes of arena in use, for statistics. */
size_t strtab_bytes(const struct strtab *t);

/* Bytes of the slot array's pages touched since creation or the last
 * reset (4 KiB granules), for statistics: the index's share of resident
 * memory. */
size_t strtab_slot_bytes(const struct strtab *t);

/* 64-bit hash used for keys (exposed for the tests). */
uint64_t strtab_hash(const void *key, size_t len);

#endif
