/* out_callgrind.c - the Callgrind profile format (version 1), for
 * KCachegrind, QCachegrind and callgrind_annotate:
 *
 *   # callgrind format
 *   version: 1
 *   creator: pyspyc
 *   positions: line
 *   events: Samples
 *   summary: TOTAL
 *
 *   fl=(F) FILE            a function's file, then its name
 *   fn=(N) NAME
 *   LINE SELF              samples whose innermost frame ran this line
 *   cfl=(F) FILE           a call from it: the callee's file and name,
 *   cfn=(N) NAME
 *   calls=SAMPLES 0        then the caller's line and the samples under
 *   LINE INCLUSIVE         the call (the callee's inclusive cost there)
 *
 * A function is a (name, file) pair: a sampler sees the lines a function
 * ran, not where it was defined, so its cost lines are the lines sampled
 * and a call's target position is 0.  The count after calls= is the
 * samples under that call, not the number of calls, which a sampler
 * cannot know.  Each stack adds its count to every call on it, caller's
 * line to callee, so a function that recurses has an inclusive cost per
 * level of the recursion, as Callgrind's own profiles of recursion do.
 * Root markers (process, thread, service) are left out; pyspyc's own
 * frames (a truncated stack's marker) are functions of file "???", the
 * name Callgrind gives an unknown file.  Names are
 * compressed ("(N) NAME" the first time, "(N)" after, N counting
 * from 1 in the order of first appearance) and control
 * characters in them replaced by '?', so a hostile name cannot end a line.
 * Functions come in name order, their lines and calls in line order: the
 * same profile gives the same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/output.h"
#include "pyspyc/out_threads.h"

/* One cost: self (callee UINT32_MAX) or a call's inclusive samples. */
struct cost {
	uint32_t fn, callee;
	int32_t line;
	uint64_t count;
};

struct cg {
	const struct profile *p;
	uint32_t *fn_of;      /* profile frame -> function */
	uint32_t *fn_frame;   /* function -> a profile frame of it */
	uint32_t *file_of;    /* function -> file id */
	/* The id each function and file is written with, 0 until it is:
	 * numbered in the order they first appear. */
	uint32_t *fn_id, *file_id;
	uint32_t nfn, fn_next, file_next;
	struct cost *c;
	size_t nc, cap;
};

static int cmp_files(const void *a, const void *b, void *frames)
{
	const struct profile_frame *x = (const struct profile_frame *)frames + *(const uint32_t *)a;
	const struct profile_frame *y = (const struct profile_frame *)frames + *(const uint32_t *)b;

	return strcmp(x->file, y->file);
}

static int cmp_costs(const void *a, const void *b)
{
	const struct cost *x = a, *y = b;

	if (x->fn != y->fn)
		return x->fn < y->fn ? -1 : 1;
	/* self lines first, then calls */
	if ((x->callee == UINT32_MAX) != (y->callee == UINT32_MAX))
		return x->callee == UINT32_MAX ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->callee > y->callee) - (x->callee < y->callee);
}

/* Number the functions (name, file) and their files, in name order. */
static int number(struct cg *g)
{
	const struct profile *p = g->p;
	void *frames = (void *)p->frames;
	uint32_t *order = malloc(((size_t)p->nframes + 1) * sizeof(*order));
	uint32_t i, nfiles = 0;

	g->file_of = malloc(((size_t)p->nframes + 1) * sizeof(*g->file_of));
	g->fn_id = calloc((size_t)p->nframes + 1, sizeof(*g->fn_id));
	g->file_id = calloc((size_t)p->nframes + 1, sizeof(*g->file_id));
	if (!order || !g->file_of || !g->fn_id || !g->file_id ||
	    out_functions(p, &g->fn_of, &g->fn_frame, &g->nfn)) {
		free(order);
		return -ENOMEM;
	}
	/* Files: the functions' frames in file order. */
	for (i = 0; i < g->nfn; i++)
		order[i] = g->fn_frame[i];
	qsort_r(order, g->nfn, sizeof(*order), cmp_files, frames);
	for (i = 0; i < g->nfn; i++) {
		if (i && cmp_files(&order[i - 1], &order[i], frames))
			nfiles++;
		g->file_of[g->fn_of[order[i]]] = nfiles;
	}
	free(order);
	return 0;
}

static int add(struct cg *g, uint32_t fn, int32_t line, uint32_t callee, uint64_t count)
{
	if (g->nc == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;
		struct cost *c = realloc(g->c, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		g->c = c;
		g->cap = cap;
	}
	g->c[g->nc++] = (struct cost){ .fn = fn, .callee = callee, .line = line, .count = count };
	return 0;
}

/* Every stack's self cost and calls, then summed by key. */
static int collect(struct cg *g)
{
	const struct profile *p = g->p;
	uint32_t i, k, depth;
	size_t n = 0, j;
	int err;

	for (i = 0; i < p->nstacks; i++) {
		const uint32_t *fr;

		if (!p->stacks[i].depth || !p->stacks[i].count)
			continue;
		fr = out_stack_body(p, i, &depth);
		if (!depth)
			continue;
		for (k = 0; k + 1 < depth; k++) {
			err = add(g, g->fn_of[fr[k]], p->frames[fr[k]].line, g->fn_of[fr[k + 1]],
				  p->stacks[i].count);
			if (err)
				return err;
		}
		err = add(g, g->fn_of[fr[depth - 1]], p->frames[fr[depth - 1]].line, UINT32_MAX,
			  p->stacks[i].count);
		if (err)
			return err;
	}
	if (g->nc)
		qsort(g->c, g->nc, sizeof(*g->c), cmp_costs);
	for (j = 0; j < g->nc; j++) {
		if (n && !cmp_costs(&g->c[n - 1], &g->c[j]))
			g->c[n - 1].count += g->c[j].count;
		else
			g->c[n++] = g->c[j];
	}
	g->nc = n;
	return 0;
}

static void put_clean(const char *s, FILE *f)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		putc_unlocked(c < 0x20 || c == 0x7f ? '?' : c, f);
	}
}

/* "KEY=(id) text" the first time, with the next id, "KEY=(id)" after. */
static void put_name(FILE *f, const char *key, uint32_t *id, uint32_t *next, const char *text)
{
	int first = !*id;

	if (first)
		*id = ++*next;
	fprintf(f, "%s=(%" PRIu32 ")", key, *id);
	if (first) {
		putc_unlocked(' ', f);
		put_clean(text, f);
	}
	putc_unlocked('\n', f);
}

static void put_fn(struct cg *g, FILE *f, const char *fl, const char *fn, uint32_t id)
{
	const struct profile_frame *fr = &g->p->frames[g->fn_frame[id]];

	put_name(f, fl, &g->file_id[g->file_of[id]], &g->file_next,
		 fr->file[0] ? fr->file : "???");
	put_name(f, fn, &g->fn_id[id], &g->fn_next, fr->name);
}

static void put_header(const struct profile *p, FILE *f)
{
	fputs("# callgrind format\nversion: 1\ncreator: pyspyc\n", f);
	if (p->command && p->command[0]) {
		fputs("cmd: ", f);
		put_clean(p->command, f);
		putc_unlocked('\n', f);
	}
	if (p->pid > 0)
		fprintf(f, "pid: %d\n", p->pid);
	fprintf(f, "positions: line\nevents: Samples\nsummary: %" PRIu64 "\n", p->total);
}

int out_callgrind_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct cg g = { .p = p };
	uint32_t fn = UINT32_MAX;
	size_t j;
	int err;

	(void)o;
	err = number(&g);
	if (!err)
		err = collect(&g);
	if (!err) {
		put_header(p, f);
		for (j = 0; j < g.nc; j++) {
			const struct cost *c = &g.c[j];

			if (c->fn != fn) {
				fn = c->fn;
				putc_unlocked('\n', f);
				put_fn(&g, f, "fl", "fn", fn);
			}
			if (c->callee == UINT32_MAX) {
				fprintf(f, "%" PRId32 " %" PRIu64 "\n", c->line > 0 ? c->line : 0,
					c->count);
				continue;
			}
			put_fn(&g, f, "cfl", "cfn", c->callee);
			fprintf(f, "calls=%" PRIu64 " 0\n%" PRId32 " %" PRIu64 "\n", c->count,
				c->line > 0 ? c->line : 0, c->count);
		}
	}
	free(g.fn_of);
	free(g.fn_frame);
	free(g.file_of);
	free(g.fn_id);
	free(g.file_id);
	free(g.c);
	if (err)
		return err;
	return ferror(f) ? -EIO : 0;
}
