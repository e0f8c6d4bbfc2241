/* stacktab.c - lock-free aggregation of samples into stacks and counts.
 *
 * Strings and frames are interned once for the table's life.  Stacks,
 * their counts and the timeline live in a window: two are kept, the open
 * one samplers add to and the one closed last, whose profile the caller
 * may still be reading; a rotation empties the closed one (its pages go
 * back to the system) and opens it again.
 *
 * A writer enters the open window (a count of writers in it, then a check
 * that it is still the open one) and leaves it when its add is done; a
 * rotation publishes the new window and waits for the old one's writers to
 * leave, so every add lands whole in exactly one window. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pyspyc/stacktab.h"
#include "pyspyc/strtab.h"

/* A stack id is its index in its window's table, with the window's
 * generation (mod 32) in the top bits: an id kept across a rotation is
 * told apart for the next 31 rotations. */
#define INDEX_BITS 27
#define INDEX_MASK ((1u << INDEX_BITS) - 1)
#define GEN_MASK ((1u << (32 - INDEX_BITS)) - 1)
#define ID_GEN(id) ((id) >> INDEX_BITS)
#define ID_INDEX(id) ((id) & INDEX_MASK)

struct log_rec { int64_t t_ns; uint32_t id, pad; };

struct window {
	struct strtab *stacks;
	_Atomic uint64_t *counts; /* one per stack index */
	/* The timeline, when kept: records reserved up front, filled in
	 * order of a shared index, pages touched as they fill. */
	struct log_rec *log;
	_Atomic uint64_t log_n;   /* records claimed (may pass log_cap) */
	_Atomic uint32_t gen;     /* generation & GEN_MASK, set while closed */
	_Atomic uint32_t writers; /* adds in progress (see enter()) */
};

struct stacktab {
	struct strtab *strings;
	struct strtab *frames;
	struct window win[2];
	struct window *_Atomic open;
	uint32_t gen;             /* of the open window, not masked */
	size_t counts_bytes;
	uint32_t max_stacks;
	uint64_t log_cap;
	_Atomic int full;         /* 1 strings, 2 frames, 3 stacks */
	/* Per frame id: the name and file it is shown with instead of its
	 * key's, as (name + 1) << 32 | (file + 1); 0 for none.  Reserved for
	 * every frame id, touched only for the few relabelled. */
	_Atomic uint64_t *relabel;
	uint32_t max_frames;
};

/* Bytes of arena per key, generous: names average far less, and a stack
 * key is 4 bytes a frame (deep stacks are rare and bounded by max depth). */
#define STRING_ARENA_PER_KEY 128
#define FRAME_ARENA_PER_KEY 24
#define STACK_ARENA_PER_KEY 512

static void *map_zero(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int window_init(struct window *w, const struct stacktab_limits *lim,
		       size_t counts_bytes)
{
	int err = strtab_new(&w->stacks, lim->max_stacks,
			     (size_t)lim->max_stacks * STACK_ARENA_PER_KEY);

	if (err)
		return err;
	w->counts = map_zero(counts_bytes);
	return w->counts ? 0 : -ENOMEM;
}

static void window_release(struct window *w, size_t counts_bytes, uint64_t log_cap)
{
	if (w->counts)
		munmap((void *)w->counts, counts_bytes);
	if (w->log)
		munmap(w->log, log_cap * sizeof(*w->log));
	strtab_free(w->stacks);
}

/* Empty a window no writer is in; its pages go back to the system. */
static void window_reset(struct window *w, uint64_t log_cap)
{
	uint64_t n = atomic_load(&w->log_n);

	if (n > log_cap)
		n = log_cap;
	if (w->log && n)
		madvise(w->log, n * sizeof(*w->log), MADV_DONTNEED);
	madvise((void *)w->counts, (size_t)strtab_count(w->stacks) * sizeof(*w->counts),
		MADV_DONTNEED);
	strtab_reset(w->stacks);
	atomic_store(&w->log_n, 0);
}

int stacktab_new(struct stacktab **out, const struct stacktab_limits *lim)
{
	struct stacktab *t;
	int err, i;

	*out = NULL;
	if (lim->max_stacks > INDEX_MASK)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->max_stacks = lim->max_stacks;
	t->counts_bytes = (size_t)lim->max_stacks * sizeof(*t->win[0].counts);
	err = strtab_new_lasting(&t->strings, lim->max_strings,
			 (size_t)lim->max_strings * STRING_ARENA_PER_KEY);
	if (err)
		goto out_free;
	err = strtab_new_lasting(&t->frames, lim->max_frames,
			 (size_t)lim->max_frames * FRAME_ARENA_PER_KEY);
	if (err)
		goto out_free;
	t->max_frames = lim->max_frames;
	t->relabel = map_zero((size_t)lim->max_frames * sizeof(*t->relabel));
	if (!t->relabel) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < 2; i++) {
		err = window_init(&t->win[i], lim, t->counts_bytes);
		if (err)
			goto out_free;
	}
	atomic_store(&t->open, &t->win[0]);
	*out = t;
	return 0;

out_free:
	stacktab_free(t);
	return err;
}

void stacktab_free(struct stacktab *t)
{
	if (!t)
		return;
	window_release(&t->win[0], t->counts_bytes, t->log_cap);
	window_release(&t->win[1], t->counts_bytes, t->log_cap);
	strtab_free(t->frames);
	strtab_free(t->strings);
	if (t->relabel)
		munmap((void *)t->relabel, (size_t)t->max_frames * sizeof(*t->relabel));
	free(t);
}

static int note_full(struct stacktab *t, int err, int which)
{
	int none = 0;

	if (err == -ENOSPC)
		atomic_compare_exchange_strong(&t->full, &none, which);
	return err;
}

int stacktab_string(struct stacktab *t, const char *s, size_t len, uint32_t *id)
{
	return note_full(t, strtab_intern(t->strings, s, len, id), 1);
}

int stacktab_frame(struct stacktab *t, const struct frame_key *k, uint32_t *id)
{
	return note_full(t, strtab_intern(t->frames, k, sizeof(*k), id), 2);
}

/* The open window, held open until leave(): a rotation that closes it
 * waits for the count of writers to fall to zero.  The count goes up
 * before the second look at which window is open (both sequentially
 * consistent), so a rotation either sees this writer or is seen by it. */
static struct window *enter(struct stacktab *t)
{
	for (;;) {
		struct window *w = atomic_load(&t->open);

		atomic_fetch_add(&w->writers, 1);
		if (atomic_load(&t->open) == w)
			return w;
		atomic_fetch_sub(&w->writers, 1);
	}
}

static void leave(struct window *w)
{
	atomic_fetch_sub_explicit(&w->writers, 1, memory_order_release);
}

static void log_in(struct stacktab *t, struct window *w, int64_t t_ns, uint32_t index)
{
	uint64_t i;

	if (!w->log)
		return;
	i = atomic_fetch_add_explicit(&w->log_n, 1, memory_order_relaxed);
	if (i < t->log_cap)
		w->log[i] = (struct log_rec){ .t_ns = t_ns, .id = index };
}

/* The index of id in w, or UINT32_MAX when id is another window's. */
static uint32_t index_in(const struct window *w, uint32_t id)
{
	if (ID_GEN(id) != atomic_load_explicit(&w->gen, memory_order_relaxed) ||
	    ID_INDEX(id) >= strtab_count(w->stacks))
		return UINT32_MAX;
	return ID_INDEX(id);
}

static int add_in(struct stacktab *t, struct window *w, const uint32_t *frames,
		  uint32_t depth, uint64_t count, int64_t t_ns, int log, uint32_t *id)
{
	uint32_t i;
	int err;

	err = strtab_intern(w->stacks, frames, (size_t)depth * sizeof(*frames), &i);
	if (err)
		return note_full(t, err, 3);
	atomic_fetch_add_explicit(&w->counts[i], count, memory_order_relaxed);
	if (log)
		log_in(t, w, t_ns, i);
	if (id)
		*id = atomic_load_explicit(&w->gen, memory_order_relaxed) << INDEX_BITS | i;
	return 0;
}

int stacktab_add(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		 uint64_t count, uint32_t *id)
{
	struct window *w = enter(t);
	int err = add_in(t, w, frames, depth, count, 0, 0, id);

	leave(w);
	return err;
}

int stacktab_add_at(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		    int64_t t_ns, uint32_t *id)
{
	struct window *w = enter(t);
	int err = add_in(t, w, frames, depth, 1, t_ns, 1, id);

	leave(w);
	return err;
}

static int add_id_in(struct stacktab *t, uint32_t id, uint64_t count, int64_t t_ns,
		     int log)
{
	struct window *w = enter(t);
	uint32_t i = index_in(w, id);

	if (i != UINT32_MAX) {
		atomic_fetch_add_explicit(&w->counts[i], count, memory_order_relaxed);
		if (log)
			log_in(t, w, t_ns, i);
	}
	leave(w);
	return i == UINT32_MAX ? -ESTALE : 0;
}

int stacktab_add_id(struct stacktab *t, uint32_t id, uint64_t count)
{
	return add_id_in(t, id, count, 0, 0);
}

int stacktab_add_id_at(struct stacktab *t, uint32_t id, int64_t t_ns)
{
	return add_id_in(t, id, 1, t_ns, 1);
}

int stacktab_timeline(struct stacktab *t, uint64_t max_records)
{
	int i;

	if (t->log_cap || !max_records)
		return -EINVAL;
	for (i = 0; i < 2; i++) {
		t->win[i].log = map_zero(max_records * sizeof(*t->win[i].log));
		if (!t->win[i].log) {
			if (i)
				munmap(t->win[0].log, max_records * sizeof(*t->win[0].log));
			t->win[0].log = NULL;
			return -ENOMEM;
		}
	}
	t->log_cap = max_records;
	return 0;
}

void stacktab_log(struct stacktab *t, int64_t t_ns, uint32_t id)
{
	struct window *w = enter(t);
	uint32_t i = index_in(w, id);

	if (i != UINT32_MAX)
		log_in(t, w, t_ns, i);
	leave(w);
}

const char *stacktab_full(const struct stacktab *t)
{
	switch (atomic_load(&t->full)) {
	case 1:
	case 2:
		return "--max-frames";
	case 3:
		return "--max-stacks";
	default:
		return NULL;
	}
}

uint32_t stacktab_nstacks(const struct stacktab *t)
{
	return strtab_count(atomic_load(&t->open)->stacks);
}

uint64_t stacktab_windows(const struct stacktab *t)
{
	return (uint64_t)t->gen + 1;
}

static const char *string_or_empty(const struct stacktab *t, uint32_t id)
{
	const void *s;
	size_t len;

	return strtab_get(t->strings, id, &s, &len) ? "" : s;
}

int stacktab_frame_relabel(struct stacktab *t, uint32_t frame, uint32_t name, uint32_t file)
{
	if (frame >= strtab_count(t->frames) || name >= UINT32_MAX || file >= UINT32_MAX)
		return -EINVAL;
	atomic_store_explicit(&t->relabel[frame], ((uint64_t)name + 1) << 32 | ((uint64_t)file + 1),
			      memory_order_relaxed);
	return 0;
}

const char *stacktab_string_get(const struct stacktab *t, uint32_t id)
{
	return string_or_empty(t, id);
}

const struct frame_key *stacktab_frame_get(const struct stacktab *t, uint32_t id)
{
	const void *key;
	size_t len;

	if (strtab_get(t->frames, id, &key, &len) || len != sizeof(struct frame_key))
		return NULL;
	return key;
}

static int sample_cmp(const void *a, const void *b)
{
	const struct profile_sample *x = a, *y = b;

	/* Records of one instant are the threads of one sample: any order
	 * among them is right, stack order makes it repeatable. */
	if (x->t_ns != y->t_ns)
		return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
	return (x->stack > y->stack) - (x->stack < y->stack);
}

/* The timeline in profile terms: stack ids become indexes into the sorted
 * stacks, records sorted by time (samplers log in parallel). */
static int snapshot_timeline(const struct stacktab *t, const struct window *w,
			     struct profile *p, uint32_t ns)
{
	uint64_t n = atomic_load(&w->log_n), i, k = 0;
	struct profile_sample *out;
	uint32_t *index;

	/* Set either way: a profile struct may be filled again. */
	p->timeline_lost = n > t->log_cap ? n - t->log_cap : 0;
	if (n > t->log_cap)
		n = t->log_cap;
	index = malloc((ns ? ns : 1) * sizeof(*index));
	out = malloc((n ? n : 1) * sizeof(*out));
	if (!index || !out) {
		free(index);
		free(out);
		return -ENOMEM;
	}
	memset(index, 0xff, (ns ? ns : 1) * sizeof(*index));
	for (i = 0; i < p->nstacks; i++)
		index[p->stacks[i].id] = (uint32_t)i;
	for (i = 0; i < n; i++) {
		const struct log_rec *r = &w->log[i];

		if (r->id >= ns || index[r->id] == UINT32_MAX)
			continue; /* claimed but not yet written (a live view) */
		out[k++] = (struct profile_sample){ .t_ns = r->t_ns, .stack = index[r->id] };
	}
	free(index);
	qsort(out, k, sizeof(*out), sample_cmp);
	p->samples = out;
	p->nsamples = k;
	p->own_samples = out;
	return 0;
}

static int snapshot_window(const struct stacktab *t, const struct window *w,
			   struct profile *p)
{
	/* Stacks first: every frame a counted stack uses was interned before
	 * the stack was, so reading the frame count second covers them all and
	 * a snapshot may be taken while samplers keep adding. */
	uint32_t ns = strtab_count(w->stacks), nf = strtab_count(t->frames);
	struct profile_frame *frames;
	struct profile_stack *stacks;
	uint32_t i, n = 0;
	uint64_t total = 0;

	frames = calloc(nf ? nf : 1, sizeof(*frames));
	stacks = calloc(ns ? ns : 1, sizeof(*stacks));
	if (!frames || !stacks) {
		free(frames);
		free(stacks);
		return -ENOMEM;
	}
	for (i = 0; i < nf; i++) {
		const struct frame_key *k;
		const void *key;
		size_t len;
		uint64_t lab;

		frames[i].name = "";
		frames[i].file = "";
		if (strtab_get(t->frames, i, &key, &len) || len != sizeof(*k))
			continue;
		k = key;
		frames[i].name = string_or_empty(t, k->name);
		frames[i].file = string_or_empty(t, k->file);
		lab = atomic_load_explicit(&t->relabel[i], memory_order_relaxed);
		if (lab) {
			frames[i].name = string_or_empty(t, (uint32_t)(lab >> 32) - 1);
			frames[i].file = string_or_empty(t, (uint32_t)lab - 1);
		}
		frames[i].line = k->line;
		frames[i].kind = (int)k->kind;
	}
	for (i = 0; i < ns; i++) {
		uint64_t c = atomic_load_explicit(&w->counts[i], memory_order_relaxed);
		const void *key;
		size_t len;

		if (!c || strtab_get(w->stacks, i, &key, &len))
			continue;
		stacks[n].frames = key;
		stacks[n].depth = (uint32_t)(len / sizeof(uint32_t));
		stacks[n].count = c;
		stacks[n].id = i;
		total += c;
		n++;
	}
	p->frames = frames;
	p->nframes = nf;
	p->stacks = stacks;
	p->nstacks = n;
	p->total = total;
	p->own_frames = frames;
	p->own_stacks = stacks;
	profile_sort(p, stacks);
	return w->log ? snapshot_timeline(t, w, p, ns) : 0;
}

int stacktab_snapshot(const struct stacktab *t, struct profile *p)
{
	return snapshot_window(t, atomic_load(&t->open), p);
}

int stacktab_rotate(struct stacktab *t, struct profile *closed)
{
	struct window *old = atomic_load(&t->open);
	struct window *next = old == &t->win[0] ? &t->win[1] : &t->win[0];

	/* The window closed last: its profile was released (the contract),
	 * and no writer has been in it since that rotation waited them out. */
	window_reset(next, t->log_cap);
	t->gen++;
	atomic_store(&next->gen, t->gen & GEN_MASK);
	atomic_store(&t->open, next);
	/* A writer that entered old finishes there; new ones go to next. */
	while (atomic_load(&old->writers))
		sched_yield();
	return closed ? snapshot_window(t, old, closed) : 0;
}


