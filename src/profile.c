/* profile.c - deterministic ordering of an aggregated profile. */
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
