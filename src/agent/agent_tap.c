/* agent_tap.c - a window of its own on a service's live sample stream
 * (agent_tap.h).
 *
 * A tap's counts are a hash table of stacks (their frame ids, copied into
 * one pool) by open addressing; its base an array by the open window's
 * stack index.  tap_take reserves all it may need before it adds
 * anything, so a failure leaves the tap as it was. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/agent_tap.h"

struct tap_stack {
	size_t off;       /* its frame ids in the pool */
	uint32_t depth;
	uint32_t hash;
	uint64_t count;
};

struct tap {
	uint64_t *base;   /* the open window's counts at the last look */
	uint32_t nbase, base_cap;
	struct tap_stack *stacks;
	uint32_t nstacks, stacks_cap;
	uint32_t *slots;  /* stack index + 1; 0 empty */
	uint32_t nslots;  /* a power of two, at least twice nstacks */
	uint32_t *pool;
	size_t npool, pool_cap;
	uint64_t total;
};

static uint32_t hash_frames(const uint32_t *f, uint32_t depth)
{
	uint32_t h = 2166136261u ^ depth;
	uint32_t i;

	for (i = 0; i < depth; i++)
		h = (h ^ f[i]) * 16777619u;
	return h ? h : 1;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

/* A table of slots for at least n stacks, the stacks placed again. */
static int rehash(struct tap *t, uint32_t n)
{
	uint32_t ns = 16, i, *slots;

	while (ns < 2 * (uint64_t)n)
		ns *= 2;
	if (ns <= t->nslots)
		return 0;
	slots = calloc(ns, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < t->nstacks; i++) {
		uint32_t j = t->stacks[i].hash & (ns - 1);

		while (slots[j])
			j = (j + 1) & (ns - 1);
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = ns;
	return 0;
}

/* Add count to the stack f[0..depth); room was reserved. */
static void add(struct tap *t, const uint32_t *f, uint32_t depth, uint64_t count)
{
	uint32_t h = hash_frames(f, depth), j = h & (t->nslots - 1);
	struct tap_stack *s;

	for (; t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
		s = &t->stacks[t->slots[j] - 1];
		if (s->hash == h && s->depth == depth &&
		    !memcmp(t->pool + s->off, f, depth * sizeof(*f))) {
			s->count += count;
			t->total += count;
			return;
		}
	}
	s = &t->stacks[t->nstacks];
	s->off = t->npool;
	s->depth = depth;
	s->hash = h;
	s->count = count;
	memcpy(t->pool + t->npool, f, depth * sizeof(*f));
	t->npool += depth;
	t->slots[j] = ++t->nstacks;
	t->total += count;
}

/* The base of stack index i. */
static uint64_t base_of(const struct tap *t, uint32_t i)
{
	return i < t->nbase ? t->base[i] : 0;
}

/* Make the base p's counts (or empty). */
static int set_base(struct tap *t, const struct profile *p, uint64_t *fresh, uint32_t n)
{
	uint32_t i;

	if (fresh) {
		free(t->base);
		t->base = fresh;
		t->base_cap = n;
	}
	t->nbase = 0;
	if (!p || !n)
		return 0;
	memset(t->base, 0, (size_t)n * sizeof(*t->base));
	for (i = 0; i < p->nstacks; i++)
		t->base[p->stacks[i].id] = p->stacks[i].count;
	t->nbase = n;
	return 0;
}

/* One past the largest stack index in p. */
static uint32_t index_span(const struct profile *p)
{
	uint32_t i, n = 0;

	for (i = 0; p && i < p->nstacks; i++)
		if (p->stacks[i].id >= n)
			n = p->stacks[i].id + 1;
	return n;
}

int tap_new(struct tap **out, const struct profile *open)
{
	struct tap *t = calloc(1, sizeof(*t));
	uint32_t n = index_span(open);
	uint64_t *b = n ? calloc(n, sizeof(*b)) : NULL;

	*out = NULL;
	if (!t || (n && !b)) {
		free(t);
		free(b);
		return -ENOMEM;
	}
	set_base(t, n ? open : NULL, b, n);
	*out = t;
	return 0;
}

void tap_free(struct tap *t)
{
	if (!t)
		return;
	free(t->base);
	free(t->stacks);
	free(t->slots);
	free(t->pool);
	free(t);
}

int tap_take(struct tap *t, const struct profile *p, int closed)
{
	uint32_t i, fresh = 0, span = closed ? 0 : index_span(p);
	size_t frames = 0, cap;
	uint64_t *b = NULL;

	for (i = 0; i < p->nstacks; i++)
		if (p->stacks[i].count > base_of(t, p->stacks[i].id)) {
			fresh++;
			frames += p->stacks[i].depth;
		}
	/* Room for every grown stack as a new one, and the next base. */
	if (span > t->base_cap) {
		b = calloc(span, sizeof(*b));
		if (!b)
			return -ENOMEM;
	}
	cap = t->stacks_cap;
	if (grow((void **)&t->stacks, &cap, (size_t)t->nstacks + fresh, sizeof(*t->stacks)))
		goto nomem;
	t->stacks_cap = (uint32_t)cap;
	if (grow((void **)&t->pool, &t->pool_cap, t->npool + frames, sizeof(*t->pool)) ||
	    rehash(t, t->nstacks + fresh))
		goto nomem;
	for (i = 0; i < p->nstacks; i++) {
		const struct profile_stack *s = &p->stacks[i];
		uint64_t was = base_of(t, s->id);

		if (s->count > was)
			add(t, s->frames, s->depth, s->count - was);
	}
	return set_base(t, closed ? NULL : p, b, span);
nomem:
	free(b);
	return -ENOMEM;
}

uint64_t tap_total(const struct tap *t)
{
	return t->total;
}

int tap_profile(const struct tap_part *parts, size_t n, int mark, struct profile *out)
{
	struct profile_frame *frames;
	struct profile_stack *stacks;
	uint32_t *pool, nf = 0, ns = 0, k;
	size_t i, npool = 0, at = 0;
	uint64_t total = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		nf += parts[i].frames->nframes + (mark ? 1 : 0);
		ns += parts[i].tap->nstacks;
		npool += parts[i].tap->npool + (mark ? parts[i].tap->nstacks : 0);
	}
	frames = calloc(nf ? nf : 1, sizeof(*frames));
	stacks = calloc(ns ? ns : 1, sizeof(*stacks));
	pool = malloc((npool ? npool : 1) * sizeof(*pool));
	if (!frames || !stacks || !pool) {
		free(frames);
		free(stacks);
		free(pool);
		return -ENOMEM;
	}
	nf = ns = 0;
	for (i = 0; i < n; i++) {
		const struct tap *t = parts[i].tap;
		const struct profile *pf = parts[i].frames;
		uint32_t first = nf, marker = 0;

		memcpy(frames + nf, pf->frames, pf->nframes * sizeof(*frames));
		nf += pf->nframes;
		if (mark) {
			marker = nf++;
			frames[marker].name = parts[i].service;
			frames[marker].file = parts[i].service;
			frames[marker].kind = FRAME_SERVICE;
		}
		for (k = 0; k < t->nstacks; k++) {
			const struct tap_stack *s = &t->stacks[k];
			uint32_t d, depth = 0;

			stacks[ns].frames = pool + at;
			if (mark)
				pool[at + depth++] = marker;
			/* A frame id past the snapshot's frames cannot be: the
			 * snapshot was taken after the stack was counted.  Such
			 * a stack would be dropped whole, never shown wrong. */
			for (d = 0; d < s->depth; d++)
				if (t->pool[s->off + d] >= pf->nframes)
					break;
			if (d < s->depth)
				continue;
			for (d = 0; d < s->depth; d++)
				pool[at + depth++] = first + t->pool[s->off + d];
			stacks[ns].depth = depth;
			stacks[ns].count = s->count;
			stacks[ns].id = ns;
			total += s->count;
			at += depth;
			ns++;
		}
	}
	out->frames = frames;
	out->nframes = nf;
	out->stacks = stacks;
	out->nstacks = ns;
	out->total = total;
	out->own_frames = frames;
	out->own_stacks = stacks;
	out->own_pool = pool;
	profile_sort(out, stacks);
	return 0;
}
