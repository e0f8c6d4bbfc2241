/* stacktab.c - lock-free aggregation of samples into stacks and counts. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pyspyc/stacktab.h"
#include "pyspyc/strtab.h"

struct stacktab {
	struct strtab *strings;
	struct strtab *frames;
	struct strtab *stacks;
	_Atomic uint64_t *counts; /* one per stack id */
	size_t counts_bytes;
	uint32_t max_stacks;
	_Atomic int full;         /* 1 strings, 2 frames, 3 stacks */
	/* The timeline, when kept: records reserved up front, filled in
	 * order of a shared index, pages touched as they fill. */
	struct log_rec { int64_t t_ns; uint32_t id, pad; } *log;
	uint64_t log_cap;
	_Atomic uint64_t log_n;   /* records claimed (may pass log_cap) */
};

/* Bytes of arena per key, generous: names average far less, and a stack
 * key is 4 bytes a frame (deep stacks are rare and bounded by max depth). */
#define STRING_ARENA_PER_KEY 128
#define FRAME_ARENA_PER_KEY 24
#define STACK_ARENA_PER_KEY 512

int stacktab_new(struct stacktab **out, const struct stacktab_limits *lim)
{
	struct stacktab *t;
	int err;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->max_stacks = lim->max_stacks;
	err = strtab_new(&t->strings, lim->max_strings,
			 (size_t)lim->max_strings * STRING_ARENA_PER_KEY);
	if (err)
		goto out_free;
	err = strtab_new(&t->frames, lim->max_frames,
			 (size_t)lim->max_frames * FRAME_ARENA_PER_KEY);
	if (err)
		goto out_free;
	err = strtab_new(&t->stacks, lim->max_stacks,
			 (size_t)lim->max_stacks * STACK_ARENA_PER_KEY);
	if (err)
		goto out_free;
	t->counts_bytes = (size_t)lim->max_stacks * sizeof(*t->counts);
	t->counts = mmap(NULL, t->counts_bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->counts == MAP_FAILED) {
		t->counts = NULL;
		err = -ENOMEM;
		goto out_free;
	}
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
	if (t->counts)
		munmap((void *)t->counts, t->counts_bytes);
	if (t->log)
		munmap(t->log, t->log_cap * sizeof(*t->log));
	strtab_free(t->stacks);
	strtab_free(t->frames);
	strtab_free(t->strings);
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

int stacktab_add(struct stacktab *t, const uint32_t *frames, uint32_t depth,
		 uint64_t count, uint32_t *id)
{
	uint32_t i;
	int err;

	err = strtab_intern(t->stacks, frames, (size_t)depth * sizeof(*frames), &i);
	if (err)
		return note_full(t, err, 3);
	atomic_fetch_add_explicit(&t->counts[i], count, memory_order_relaxed);
	if (id)
		*id = i;
	return 0;
}

void stacktab_add_id(struct stacktab *t, uint32_t id, uint64_t count)
{
	if (id < t->max_stacks)
		atomic_fetch_add_explicit(&t->counts[id], count, memory_order_relaxed);
}

int stacktab_timeline(struct stacktab *t, uint64_t max_records)
{
	void *m;

	if (t->log || !max_records)
		return -EINVAL;
	m = mmap(NULL, max_records * sizeof(*t->log), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	t->log = m;
	t->log_cap = max_records;
	return 0;
}

void stacktab_log(struct stacktab *t, int64_t t_ns, uint32_t id)
{
	uint64_t i;

	if (!t->log)
		return;
	i = atomic_fetch_add_explicit(&t->log_n, 1, memory_order_relaxed);
	if (i < t->log_cap)
		t->log[i] = (struct log_rec){ .t_ns = t_ns, .id = id };
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
	return strtab_count(t->stacks);
}

static const char *string_or_empty(const struct stacktab *t, uint32_t id)
{
	const void *s;
	size_t len;

	return strtab_get(t->strings, id, &s, &len) ? "" : s;
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
static int snapshot_timeline(const struct stacktab *t, struct profile *p, uint32_t ns)
{
	uint64_t n = atomic_load(&t->log_n), i, k = 0;
	struct profile_sample *out;
	uint32_t *index;

	if (n > t->log_cap) {
		p->timeline_lost = n - t->log_cap;
		n = t->log_cap;
	}
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
		const struct log_rec *r = &t->log[i];

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

int stacktab_snapshot(const struct stacktab *t, struct profile *p)
{
	/* Stacks first: every frame a counted stack uses was interned before
	 * the stack was, so reading the frame count second covers them all and
	 * a snapshot may be taken while samplers keep adding. */
	uint32_t ns = strtab_count(t->stacks), nf = strtab_count(t->frames);
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

		frames[i].name = "";
		frames[i].file = "";
		if (strtab_get(t->frames, i, &key, &len) || len != sizeof(*k))
			continue;
		k = key;
		frames[i].name = string_or_empty(t, k->name);
		frames[i].file = string_or_empty(t, k->file);
		frames[i].line = k->line;
		frames[i].kind = (int)k->kind;
	}
	for (i = 0; i < ns; i++) {
		uint64_t c = atomic_load_explicit(&t->counts[i], memory_order_relaxed);
		const void *key;
		size_t len;

		if (!c || strtab_get(t->stacks, i, &key, &len))
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
	return t->log ? snapshot_timeline(t, p, ns) : 0;
}


