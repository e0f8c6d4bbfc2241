/* profile.c - ordering, views and release of an aggregated profile. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/profile.h"

static int frame_cmp(const struct profile_frame *a, const struct profile_frame *b)
{
	int c;

	if (a == b)
		return 0;
	c = strcmp(a->name, b->name);
	if (c)
		return c;
	c = strcmp(a->file, b->file);
	if (c)
		return c;
	c = (a->line > b->line) - (a->line < b->line);
	if (c)
		return c;
	/* Same text, different code (a vendored copy of a module): still a
	 * total order that does not depend on ids. */
	return (a->kind > b->kind) - (a->kind < b->kind);
}

int profile_stack_cmp(const struct profile *p, const struct profile_stack *a,
		      const struct profile_stack *b)
{
	uint32_t i, n = a->depth < b->depth ? a->depth : b->depth;

	for (i = 0; i < n; i++) {
		int c = frame_cmp(&p->frames[a->frames[i]], &p->frames[b->frames[i]]);

		if (c)
			return c;
	}
	return (a->depth > b->depth) - (a->depth < b->depth);
}

/* qsort has no context argument in C11; qsort_r's differs between libcs,
 * and glibc's is what we build against. */
static int cmp_r(const void *a, const void *b, void *ctx)
{
	return profile_stack_cmp(ctx, a, b);
}

void profile_sort(struct profile *p, struct profile_stack *stacks)
{
	qsort_r(stacks, p->nstacks, sizeof(*stacks), cmp_r, p);
}

void profile_release(struct profile *p)
{
	free(p->own_frames);
	free(p->own_stacks);
	free(p->own_pool);
	free(p->own_samples);
	p->own_frames = p->own_stacks = p->own_pool = p->own_samples = NULL;
	p->frames = NULL;
	p->stacks = NULL;
	p->samples = NULL;
	p->nframes = p->nstacks = 0;
	p->nsamples = 0;
}

uint32_t profile_stack_owner(const struct profile *p, const struct profile_stack *s,
			     int *pid, int *tid, uint32_t *thread)
{
	uint32_t i = 0;

	*pid = p->pid;
	*tid = 0;
	if (thread)
		*thread = UINT32_MAX;
	if (i < s->depth && p->frames[s->frames[i]].kind == FRAME_SERVICE)
		i++;
	if (i < s->depth && p->frames[s->frames[i]].kind == FRAME_PROCESS)
		*pid = p->frames[s->frames[i++]].line;
	if (i < s->depth && p->frames[s->frames[i]].kind == FRAME_THREAD) {
		*tid = p->frames[s->frames[i]].line;
		if (thread)
			*thread = s->frames[i];
		i++;
	}
	return i;
}

int profile_strip(const struct profile *in, unsigned int mask, struct profile *out)
{
	struct profile_stack *stacks;
	uint32_t *pool, i, j, n = 0;
	size_t frames = 0, used = 0;
	uint64_t total = 0;

	*out = *in;
	out->own_frames = out->own_stacks = out->own_pool = out->own_samples = NULL;
	out->samples = NULL;
	out->nsamples = 0;
	out->timeline_lost = 0;
	for (i = 0; i < in->nstacks; i++)
		frames += in->stacks[i].depth;
	stacks = calloc(in->nstacks ? in->nstacks : 1, sizeof(*stacks));
	pool = malloc((frames ? frames : 1) * sizeof(*pool));
	if (!stacks || !pool) {
		free(stacks);
		free(pool);
		return -ENOMEM;
	}
	for (i = 0; i < in->nstacks; i++) {
		const struct profile_stack *s = &in->stacks[i];
		uint32_t d = 0;

		for (j = 0; j < s->depth; j++)
			if (!(mask & PROFILE_KIND(in->frames[s->frames[j]].kind)))
				pool[used + d++] = s->frames[j];
		if (!d)
			continue;
		stacks[n] = (struct profile_stack){ .frames = pool + used, .depth = d,
						    .count = s->count, .id = s->id };
		used += d;
		n++;
	}
	out->stacks = stacks;
	out->nstacks = n;
	profile_sort(out, stacks);
	/* Equal stacks are now neighbours: fold each run into its first. */
	for (i = 0, j = 0; i < n; i++) {
		if (j && !profile_stack_cmp(out, &stacks[j - 1], &stacks[i])) {
			stacks[j - 1].count += stacks[i].count;
		} else {
			stacks[j++] = stacks[i];
		}
		total += stacks[i].count;
	}
	out->nstacks = j;
	out->total = total;
	out->own_stacks = stacks;
	out->own_pool = pool;
	return 0;
}
