/* out_threads.c - a profile's stacks and timeline split by thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/out_threads.h"

struct owner {
	int pid, tid;
	uint32_t stack;
	uint32_t thread; /* its thread marker's frame index, or UINT32_MAX */
};

static int owner_cmp(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;

	if (x->pid != y->pid)
		return (x->pid > y->pid) - (x->pid < y->pid);
	if (x->tid != y->tid)
		return (x->tid > y->tid) - (x->tid < y->tid);
	return (x->stack > y->stack) - (x->stack < y->stack);
}

/* Sample indexes by time, then by index: the profile's own order. */
static int sample_cmp(const void *a, const void *b, void *ctx)
{
	const struct profile_sample *s = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (s[x].t_ns != s[y].t_ns)
		return (s[x].t_ns > s[y].t_ns) - (s[x].t_ns < s[y].t_ns);
	return (x > y) - (x < y);
}

/* Group the non-empty stacks by owner; thread_of[stack] gets its thread. */
static int split_stacks(struct out_threads *t, const struct profile *p, uint32_t *thread_of)
{
	struct owner *own = malloc((p->nstacks ? p->nstacks : 1) * sizeof(*own));
	uint32_t i, n = 0;

	if (!own)
		return -ENOMEM;
	for (i = 0; i < p->nstacks; i++) {
		if (!p->stacks[i].depth)
			continue;
		own[n].stack = i;
		profile_stack_owner(p, &p->stacks[i], &own[n].pid, &own[n].tid, &own[n].thread);
		n++;
	}
	qsort(own, n, sizeof(*own), owner_cmp);
	t->v = calloc(n ? n : 1, sizeof(*t->v));
	t->stacks = malloc((n ? n : 1) * sizeof(*t->stacks));
	if (!t->v || !t->stacks) {
		free(own);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct profile_stack *s = &p->stacks[own[i].stack];
		struct out_thread *th;

		if (!i || own[i].pid != own[i - 1].pid || own[i].tid != own[i - 1].tid)
			t->v[t->n++] = (struct out_thread){ .pid = own[i].pid, .tid = own[i].tid,
							    .process = UINT32_MAX,
							    .thread = UINT32_MAX, .sfirst = i };
		th = &t->v[t->n - 1];
		th->nstacks++;
		th->count += s->count;
		if (th->thread == UINT32_MAX)
			th->thread = own[i].thread;
		if (p->frames[s->frames[0]].kind == FRAME_PROCESS) {
			if (th->process == UINT32_MAX)
				th->process = s->frames[0];
			t->processes = 1;
		}
		t->stacks[i] = own[i].stack;
		thread_of[own[i].stack] = t->n - 1;
	}
	free(own);
	return 0;
}

/* Bucket the samples by thread (a counting sort, so time order within a
 * thread is kept) and check them against the counts. */
static int split_samples(struct out_threads *t, const struct profile *p,
			 const uint32_t *thread_of)
{
	uint64_t *seen = calloc(p->nstacks ? p->nstacks : 1, sizeof(*seen));
	uint64_t k, at = 0;
	uint32_t i;
	int whole = !p->timeline_lost;

	t->order = malloc(p->nsamples * sizeof(*t->order));
	if (!seen || !t->order) {
		free(seen);
		return -ENOMEM;
	}
	for (k = 0; k < p->nsamples; k++) {
		uint32_t s = p->samples[k].stack;

		if (s >= p->nstacks || thread_of[s] == UINT32_MAX) {
			whole = 0;
			continue;
		}
		t->v[thread_of[s]].nsamples++;
		seen[s]++;
	}
	for (i = 0; i < t->n; i++) {
		t->v[i].first = at;
		at += t->v[i].nsamples;
		t->v[i].nsamples = 0;
	}
	for (k = 0; k < p->nsamples; k++) {
		uint32_t s = p->samples[k].stack;
		struct out_thread *th;

		if (s >= p->nstacks || thread_of[s] == UINT32_MAX)
			continue;
		th = &t->v[thread_of[s]];
		t->order[th->first + th->nsamples++] = (uint32_t)k;
	}
	/* The profile promises time order; a thread that breaks it is sorted
	 * rather than trusted, since writers rely on it. */
	for (i = 0; i < t->n; i++) {
		const uint32_t *o = t->order + t->v[i].first;

		for (k = 1; k < t->v[i].nsamples; k++)
			if (p->samples[o[k]].t_ns < p->samples[o[k - 1]].t_ns)
				break;
		if (k < t->v[i].nsamples)
			qsort_r(t->order + t->v[i].first, t->v[i].nsamples, sizeof(*t->order),
				sample_cmp, (void *)p->samples);
	}
	for (i = 0; i < p->nstacks && whole; i++)
		if (p->stacks[i].depth && seen[i] != p->stacks[i].count)
			whole = 0;
	t->complete = whole;
	free(seen);
	return 0;
}

int out_threads_init(struct out_threads *t, const struct profile *p)
{
	uint32_t *thread_of;
	int err;

	memset(t, 0, sizeof(*t));
	if (p->nsamples > UINT32_MAX)
		return -EOVERFLOW;
	thread_of = malloc((p->nstacks ? p->nstacks : 1) * sizeof(*thread_of));
	if (!thread_of)
		return -ENOMEM;
	memset(thread_of, 0xff, (p->nstacks ? p->nstacks : 1) * sizeof(*thread_of));
	err = split_stacks(t, p, thread_of);
	if (!err && p->nsamples)
		err = split_samples(t, p, thread_of);
	free(thread_of);
	if (err)
		out_threads_release(t);
	return err;
}

int out_frame_fn_cmp(const void *a, const void *b, void *frames)
{
	const struct profile_frame *x = (const struct profile_frame *)frames + *(const uint32_t *)a;
	const struct profile_frame *y = (const struct profile_frame *)frames + *(const uint32_t *)b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->file, y->file);
}

int out_functions(const struct profile *p, uint32_t **fn_of, uint32_t **fn_frame,
		  uint32_t *nfn)
{
	void *frames = (void *)p->frames;
	uint32_t *order = malloc(((size_t)p->nframes + 1) * sizeof(*order));
	uint32_t *of = malloc(((size_t)p->nframes + 1) * sizeof(*of));
	uint32_t *fr = malloc(((size_t)p->nframes + 1) * sizeof(*fr));
	uint32_t i, n = 0;

	if (!order || !of || !fr) {
		free(order);
		free(of);
		free(fr);
		return -ENOMEM;
	}
	for (i = 0; i < p->nframes; i++)
		order[i] = i;
	qsort_r(order, p->nframes, sizeof(*order), out_frame_fn_cmp, frames);
	for (i = 0; i < p->nframes; i++) {
		if (i && out_frame_fn_cmp(&order[i - 1], &order[i], frames))
			n++;
		of[order[i]] = n;
		fr[n] = order[i];
	}
	free(order);
	*fn_of = of;
	*fn_frame = fr;
	*nfn = p->nframes ? n + 1 : 0;
	return 0;
}

const uint32_t *out_stack_body(const struct profile *p, uint32_t s, uint32_t *depth)
{
	const struct profile_stack *st = &p->stacks[s];
	int pid, tid;
	uint32_t skip = profile_stack_owner(p, st, &pid, &tid, NULL);

	*depth = st->depth - skip;
	return st->frames + skip;
}

void out_threads_release(struct out_threads *t)
{
	free(t->v);
	free(t->stacks);
	free(t->order);
	memset(t, 0, sizeof(*t));
}
