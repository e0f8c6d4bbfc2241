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

/* entry.len for an id whose key lost the publication race. */
#define ORPHAN_LEN UINT32_MAX

struct entry {
	_Atomic uint64_t off; /* arena offset of the key */
	_Atomic uint32_t len; /* key length, ORPHAN_LEN, or 0 before set */
	_Atomic uint32_t ready;
};

struct strtab {
	_Atomic uint64_t *slots;
	uint64_t mask;        /* slots - 1, a power of two >= 2 * max_keys */
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

int strtab_new(struct strtab **out, uint32_t max_keys, size_t arena_bytes)
{
	struct strtab *t;
	uint64_t nslots = 2;
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

int strtab_intern(struct strtab *t, const void *key, size_t len, uint32_t *id)
{
	uint64_t h = strtab_hash(key, len);
	uint32_t tag = (uint32_t)(h >> 32);
	uint64_t i = h & t->mask, probes;
	uint32_t mine = UINT32_MAX;
	int err;

	for (probes = 0; probes <= t->mask; probes++, i = (i + 1) & t->mask) {
		uint64_t s;

		first_write(t, i);
		s = atomic_load_explicit(&t->slots[i], memory_order_acquire);

		while (s == 0) {
			uint64_t want;

			if (mine == UINT32_MAX) {
				err = reserve(t, key, len, &mine);
				if (err)
					return err;
			}
			want = (uint64_t)tag << 32 | (mine + 1u);
			if (atomic_compare_exchange_strong_explicit(
				    &t->slots[i], &s, want, memory_order_acq_rel,
				    memory_order_acquire)) {
				*id = mine;
				return 0;
			}
			/* Lost the slot: s now holds the winner; look at it. */
		}
		if (SLOT_TAG(s) == tag && entry_equals(t, SLOT_ID(s), key, len)) {
			if (mine != UINT32_MAX)
				atomic_store_explicit(&t->entries[mine].len, ORPHAN_LEN,
						      memory_order_release);
			*id = SLOT_ID(s);
			return 0;
		}
	}
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

size_t strtab_bytes(const struct strtab *t)
{
	size_t n = atomic_load_explicit(&t->arena_used, memory_order_relaxed);

	return n < t->arena_bytes ? n : t->arena_bytes;
}
