/* strtab.c - lock-free interning of byte strings to dense ids. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pyspyc/strtab.h"

/* A slot holds 0 (empty) or (hash tag << 32 | (id + 1)).  The tag is the
 * high half of the key's hash, so most mismatches are rejected without
 * touching the key bytes. */
#define SLOT_ID(s) ((uint32_t)((s) & 0xffffffffu) - 1)
#define SLOT_TAG(s) ((uint32_t)((s) >> 32))

/* The slots are touched in 4 KiB granules (a page here; a part of one
 * where pages are larger, which costs only a spare write). */
#define GRANULE_SLOTS_SHIFT 9 /* 4096 / sizeof(uint64_t) slots */

/* A lasting table's slots (strtab_new_lasting) are levels: small ones
 * first, each LEVEL_GROWTH times the last, then the main table (at least
 * twice max_keys slots); another table's are the main table alone.  A key's
 * place is the first free slot along one sequence: a line of LINE_SLOTS
 * slots in each small level (at a place its hash picks there), then the
 * main table's slots from its hash on.  The sequence is the key's alone
 * and slots are never emptied, so two threads putting in one key meet at
 * the same free slot, where the compare-and-swap picks one, as in a single
 * table; a lookup stops at the first free slot, where the key would be.
 * Keys fill the small levels first: a table of a thousand keys has them
 * in a few pages.  With the main table alone, each new key touched a page
 * of its own at random until every page of the table was resident: the
 * agent's long-lived frame and name tables (2^20 keys, 16 MiB of slots
 * each) grew by 4 KiB a frame for as long as new lines turned up, 2.4 MiB
 * over a 30-minute soak.  A key past the small levels looks at a line of
 * each first (LEVELS_MAX at most): a lookup of a table of 2000 keys took
 * 80-90 ns against 33 ns (/tmp throwaway loop, 64-byte keys), a price for
 * tables looked up only when a name or a line is met for the first time,
 * not for a window's stacks (looked up at every sample, and emptied, their
 * pages given back, at every window). */
#define LINE_SLOTS 8          /* 64 bytes: one cache line */
#define LEVEL0_SLOTS 512      /* one granule */
#define LEVEL_GROWTH 4
#define LEVELS_MAX 8

/* entry.len for an id whose key lost the publication race. */
#define ORPHAN_LEN UINT32_MAX

struct entry {
	_Atomic uint64_t off; /* arena offset of the key */
	_Atomic uint32_t len; /* key length, ORPHAN_LEN, or 0 before set */
	_Atomic uint32_t ready;
};

struct strtab {
	_Atomic uint64_t *slots;  /* the levels, then the main table */
	uint64_t mask;        /* main table's slots - 1, a power of two >= 2 * max_keys */
	uint64_t main_base;   /* index of the main table's first slot */
	uint32_t nlevels;     /* small levels before it */
	uint64_t level_base[LEVELS_MAX], level_mask[LEVELS_MAX];
	/* One bit per granule of slots that has been written (first_write). */
	_Atomic uint64_t *written;
	size_t nwritten;      /* words of written[] */
	struct entry *entries;
	uint32_t max_keys;
	char *arena;
	size_t arena_bytes;
	_Atomic uint32_t next_id;
	_Atomic size_t arena_used;
	size_t map_slots, map_entries;
};

static void *map_zero(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int new_table(struct strtab **out, uint32_t max_keys, size_t arena_bytes, int levels)
{
	struct strtab *t;
	uint64_t nslots = 2, level;
	int err;

	*out = NULL;
	if (max_keys == 0 || max_keys > (1u << 30) || arena_bytes == 0)
		return -EINVAL;
	/* Keep the load factor at or under one half so probes stay short. */
	while (nslots < 2ull * max_keys)
		nslots <<= 1;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->mask = nslots - 1;
	t->max_keys = max_keys;
	/* Small levels while the next is no larger than a quarter of the main
	 * table: none for small tables. */
	for (level = LEVEL0_SLOTS;
	     levels && t->nlevels < LEVELS_MAX && level * LEVEL_GROWTH <= nslots;
	     level *= LEVEL_GROWTH) {
		t->level_base[t->nlevels] = t->main_base;
		t->level_mask[t->nlevels++] = level - 1;
		t->main_base += level;
	}
	nslots += t->main_base;
	t->map_slots = nslots * sizeof(*t->slots);
	t->map_entries = (size_t)max_keys * sizeof(*t->entries);
	t->arena_bytes = arena_bytes;
	t->slots = map_zero(t->map_slots);
	t->entries = map_zero(t->map_entries);
	t->arena = map_zero(arena_bytes);
	t->nwritten = ((nslots >> GRANULE_SLOTS_SHIFT) + 64) / 64;
	t->written = calloc(t->nwritten, sizeof(*t->written));
	if (!t->slots || !t->entries || !t->arena || !t->written) {
		err = -ENOMEM;
		goto out_free;
	}
	*out = t;
	return 0;

out_free:
	strtab_free(t);
	return err;
}

int strtab_new(struct strtab **out, uint32_t max_keys, size_t arena_bytes)
{
	return new_table(out, max_keys, arena_bytes, 0);
}

int strtab_new_lasting(struct strtab **out, uint32_t max_keys, size_t arena_bytes)
{
	return new_table(out, max_keys, arena_bytes, 1);
}

void strtab_free(struct strtab *t)
{
	if (!t)
		return;
	if (t->slots)
		munmap((void *)t->slots, t->map_slots);
	if (t->entries)
		munmap(t->entries, t->map_entries);
	if (t->arena)
		munmap(t->arena, t->arena_bytes);
	free((void *)t->written);
	free(t);
}

/* Give back the pages of len bytes at p (a mapping of map_zero): the next
 * touch reads zeros, as after mmap. */
static void give_back(void *p, size_t len)
{
	if (len)
		madvise(p, len, MADV_DONTNEED);
}

void strtab_reset(struct strtab *t)
{
	uint32_t n = strtab_count(t);
	size_t used = strtab_bytes(t);

	give_back((void *)t->slots, t->map_slots);
	memset((void *)t->written, 0, t->nwritten * sizeof(*t->written));
	give_back(t->entries, (size_t)n * sizeof(*t->entries));
	give_back(t->arena, used);
	atomic_store_explicit(&t->next_id, 0, memory_order_relaxed);
	atomic_store_explicit(&t->arena_used, 0, memory_order_relaxed);
}

/* FNV-1a is too slow on long stack keys; this mixes 8 bytes at a time with
 * a multiply-xorshift and finishes with a murmur-style avalanche. */
uint64_t strtab_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
	uint64_t v;

	while (len >= 8) {
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	v = 0;
	memcpy(&v, p, len);
	h = (h ^ v ^ ((uint64_t)len << 56)) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static int entry_equals(const struct strtab *t, uint32_t id, const void *key,
			size_t len)
{
	const struct entry *e = &t->entries[id];
	uint32_t elen = atomic_load_explicit(&e->len, memory_order_acquire);

	return elen == len &&
	       memcmp(t->arena + atomic_load_explicit(&e->off, memory_order_relaxed),
		      key, len) == 0;
}

/* Reserve an id and copy the key into the arena (not yet published). */
static int reserve(struct strtab *t, const void *key, size_t len, uint32_t *id)
{
	uint32_t i;
	size_t off, step;

	if (len >= ORPHAN_LEN)
		return -ENOSPC;
	i = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed);
	if (i >= t->max_keys) {
		atomic_store_explicit(&t->next_id, t->max_keys, memory_order_relaxed);
		return -ENOSPC;
	}
	/* 8-byte aligned so keys that are arrays of integers can be read in
	 * place. */
	step = (len + 8) & ~(size_t)7;
	off = atomic_fetch_add_explicit(&t->arena_used, step, memory_order_relaxed);
	if (off + step > t->arena_bytes || off + step < off) {
		atomic_store_explicit(&t->entries[i].len, ORPHAN_LEN, memory_order_release);
		return -ENOSPC;
	}
	memcpy(t->arena + off, key, len);
	t->arena[off + len] = '\0';
	atomic_store_explicit(&t->entries[i].off, off, memory_order_relaxed);
	atomic_store_explicit(&t->entries[i].len, (uint32_t)len, memory_order_release);
	atomic_store_explicit(&t->entries[i].ready, 1, memory_order_release);
	*id = i;
	return 0;
}

/* Before the first look at slot i's granule: write to it, a write that
 * changes nothing.  Slots are met at random, and a page first touched by a
 * read is mapped to the shared zero page, which the write that fills a
 * slot then replaces: a second fault, and a TLB flush that interrupts
 * every CPU the process has run on (gthread under wrk, perf: a tenth of
 * pyspyc's time, most of it the other CPU's acknowledgement).  Touched
 * first by a write, the page is mapped once. */
static void first_write(struct strtab *t, uint64_t i)
{
	uint64_t g = i >> GRANULE_SLOTS_SHIFT, bit = 1ull << (g % 64);

	if (atomic_load_explicit(&t->written[g / 64], memory_order_relaxed) & bit)
		return;
	atomic_fetch_or_explicit(&t->slots[i], 0, memory_order_relaxed);
	atomic_fetch_or_explicit(&t->written[g / 64], bit, memory_order_relaxed);
}

/* Is slot value s the key's?  (A tag that differs, most often, settles it
 * without the key's bytes.) */
static inline int holds(const struct strtab *t, uint64_t s, uint32_t tag, const void *key,
			size_t len)
{
	return SLOT_TAG(s) == tag && entry_equals(t, SLOT_ID(s), key, len);
}

/* One step of a key's sequence (see LINE_SLOTS): slot i.  Returns 1 with
 * *id set when the key is there or was put there, 0 when the slot holds
 * another key, or -ENOSPC.  *mine: the id reserved for the key, if any. */
static int probe(struct strtab *t, uint64_t i, const void *key, size_t len, uint32_t tag,
		 uint32_t *mine, uint32_t *id)
{
	uint64_t s;
	int err;

	first_write(t, i);
	s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
	while (s == 0) {
		uint64_t want;

		if (*mine == UINT32_MAX) {
			err = reserve(t, key, len, mine);
			if (err)
				return err;
		}
		want = (uint64_t)tag << 32 | (*mine + 1u);
		if (atomic_compare_exchange_strong_explicit(&t->slots[i], &s, want,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			*id = *mine;
			return 1;
		}
		/* Lost the slot: s now holds the winner; look at it. */
	}
	if (holds(t, s, tag, key, len)) {
		if (*mine != UINT32_MAX)
			atomic_store_explicit(&t->entries[*mine].len, ORPHAN_LEN,
					      memory_order_release);
		*id = SLOT_ID(s);
		return 1;
	}
	return 0;
}

int strtab_intern(struct strtab *t, const void *key, size_t len, uint32_t *id)
{
	uint64_t h = strtab_hash(key, len);
	uint32_t tag = (uint32_t)(h >> 32), k, j;
	uint64_t i, s, probes;
	uint32_t mine = UINT32_MAX;
	int r;

	for (k = 0; k < t->nlevels; k++) {
		/* Mixed again for each level: keys that share a line in one
		 * are spread over the next. */
		uint64_t at = ((h ^ (k + 1) * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull >> 32) &
			      t->level_mask[k];

		i = t->level_base[k] + (at & ~(uint64_t)(LINE_SLOTS - 1));
		first_write(t, i); /* the line is in one granule */
		for (j = 0; j < LINE_SLOTS; j++) {
			s = atomic_load_explicit(&t->slots[i + j], memory_order_acquire);
			if (s && !holds(t, s, tag, key, len))
				continue; /* the common case: another key's */
			/* The key's (its id, and an id reserved by a lost race
			 * before made an orphan), or free when read: taken
			 * now, or found taken since. */
			if ((r = probe(t, i + j, key, len, tag, &mine, id)) != 0)
				return r < 0 ? r : 0;
		}
	}
	for (probes = 0, i = h & t->mask; probes <= t->mask; probes++, i = (i + 1) & t->mask)
		if ((r = probe(t, t->main_base + i, key, len, tag, &mine, id)) != 0)
			return r < 0 ? r : 0;
	if (mine != UINT32_MAX)
		atomic_store_explicit(&t->entries[mine].len, ORPHAN_LEN,
				      memory_order_release);
	return -ENOSPC;
}

int strtab_get(const struct strtab *t, uint32_t id, const void **key, size_t *len)
{
	const struct entry *e;
	uint32_t elen;

	if (id >= atomic_load_explicit(&t->next_id, memory_order_acquire) ||
	    id >= t->max_keys)
		return -ENOENT;
	e = &t->entries[id];
	if (!atomic_load_explicit(&e->ready, memory_order_acquire))
		return -ENOENT;
	elen = atomic_load_explicit(&e->len, memory_order_acquire);
	if (elen == ORPHAN_LEN)
		return -ENOENT;
	*key = t->arena + atomic_load_explicit(&e->off, memory_order_relaxed);
	*len = elen;
	return 0;
}

uint32_t strtab_count(const struct strtab *t)
{
	uint32_t n = atomic_load_explicit(&t->next_id, memory_order_acquire);

	return n < t->max_keys ? n : t->max_keys;
}

size_t strtab_slot_bytes(const struct strtab *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nwritten; i++)
		n += (size_t)__builtin_popcountll(atomic_load_explicit(&t->written[i],
								       memory_order_relaxed));
	return n * (sizeof(*t->slots) << GRANULE_SLOTS_SHIFT);
}

size_t strtab_bytes(const struct strtab *t)
{
	size_t n = atomic_load_explicit(&t->arena_used, memory_order_relaxed);

	return n < t->arena_bytes ? n : t->arena_bytes;
}
