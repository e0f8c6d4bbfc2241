/* out_pstats.c - the profile as Python's pstats loads it (.pstats, .prof):
 * what cProfile's dump_stats writes, a marshalled dictionary
 *
 *   {(file, line, name): (cc, nc, tt, ct, {caller: (nc, cc, tt, ct)})}
 *
 * so that `python -m pstats`, snakeviz, gprof2dot and pyprof2calltree open
 * it.  A function is a (file, name) pair, as in the callgrind writer, and
 * its line is 0: a sampler sees the lines a function ran, not where it
 * starts.  Times are samples / rate seconds: tt, the function's own time,
 * is the samples whose innermost frame it is; ct, its cumulative time, the
 * samples whose stacks hold it, once however deep it recurses.  A sampler
 * cannot count calls: nc holds the samples the function was on the stack
 * in, once per frame of it (a function twice on a stack counts twice), and
 * cc once per stack, so pstats shows recursion as "nc/cc" as cProfile
 * does.  A caller's entry has the same four for the stacks where it called
 * the function (tt: those where the function was innermost).  Root markers
 * are left out; pyspyc's own frames (a truncated stack's marker) are
 * functions of file "~", as pstats names built-ins.
 *
 * marshal's codes used are those every Python 2.7 and 3.x reads: '{' dict
 * ending with '0', '(' tuple with a 4-byte length, 'u' UTF-8 string (bytes
 * that are not UTF-8 become U+FFFD: marshal refuses them), 'i' 32-bit int,
 * 'l' long (15-bit digits) past it, 'g' binary double.  Functions come in
 * name order, callers likewise: the same profile gives the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/output.h"
#include "pyspyc/out_threads.h"
#include "pyspyc/utf8.h"

struct fstat {
	uint64_t cc, nc, tt, ct;
};

/* One (caller, callee) edge's numbers. */
struct edge {
	uint32_t caller, callee;
	struct fstat s;
};

struct ps {
	const struct profile *p;
	uint32_t *fn_of;      /* profile frame -> function */
	uint32_t *fn_frame;   /* function -> a frame of it */
	uint32_t nfn;
	struct fstat *fs;
	uint32_t *seen;       /* function -> the last stack that counted it */
	struct edge *e;
	size_t ne, cap;
	double period;
};

static int cmp_edges(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	if (x->callee != y->callee)
		return x->callee < y->callee ? -1 : 1;
	return (x->caller > y->caller) - (x->caller < y->caller);
}

/* Number the functions in name order (fn_of, fn_frame). */
static int number(struct ps *w)
{
	if (out_functions(w->p, &w->fn_of, &w->fn_frame, &w->nfn))
		return -ENOMEM;
	w->fs = calloc((size_t)w->nfn + 1, sizeof(*w->fs));
	w->seen = malloc(((size_t)w->nfn + 1) * sizeof(*w->seen));
	if (!w->fs || !w->seen)
		return -ENOMEM;
	memset(w->seen, 0xff, ((size_t)w->nfn + 1) * sizeof(*w->seen));
	return 0;
}

static int add_edge(struct ps *w, uint32_t caller, uint32_t callee, const struct fstat *s)
{
	if (w->ne == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 1024;
		struct edge *e = realloc(w->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		w->e = e;
		w->cap = cap;
	}
	w->e[w->ne++] = (struct edge){ .caller = caller, .callee = callee, .s = *s };
	return 0;
}

/* Is the pair (fr[k], fr[k + 1]) at an earlier place of this stack? */
static int pair_before(const struct ps *w, const uint32_t *fr, uint32_t k)
{
	uint32_t j;

	for (j = 0; j < k; j++)
		if (w->fn_of[fr[j]] == w->fn_of[fr[k]] &&
		    w->fn_of[fr[j + 1]] == w->fn_of[fr[k + 1]])
			return 1;
	return 0;
}

/* Every stack's numbers, per function and per edge; edges summed by key. */
static int collect(struct ps *w)
{
	const struct profile *p = w->p;
	uint32_t i, k, depth;
	size_t n = 0, j;
	int err;

	for (i = 0; i < p->nstacks; i++) {
		uint64_t c = p->stacks[i].count;
		const uint32_t *fr;

		if (!p->stacks[i].depth || !c)
			continue;
		fr = out_stack_body(p, i, &depth);
		if (!depth)
			continue;
		w->fs[w->fn_of[fr[depth - 1]]].tt += c;
		for (k = 0; k < depth; k++) {
			uint32_t f = w->fn_of[fr[k]];

			w->fs[f].nc += c;
			if (w->seen[f] != i) {
				w->seen[f] = i;
				w->fs[f].cc += c;
				w->fs[f].ct += c;
			}
		}
		for (k = 0; k + 1 < depth; k++) {
			int again = pair_before(w, fr, k);
			struct fstat s = { .nc = c, .cc = again ? 0 : c, .ct = again ? 0 : c,
					   .tt = k + 2 == depth ? c : 0 };

			err = add_edge(w, w->fn_of[fr[k]], w->fn_of[fr[k + 1]], &s);
			if (err)
				return err;
		}
	}
	if (w->ne)
		qsort(w->e, w->ne, sizeof(*w->e), cmp_edges);
	for (j = 0; j < w->ne; j++) {
		if (n && !cmp_edges(&w->e[n - 1], &w->e[j])) {
			w->e[n - 1].s.nc += w->e[j].s.nc;
			w->e[n - 1].s.cc += w->e[j].s.cc;
			w->e[n - 1].s.tt += w->e[j].s.tt;
			w->e[n - 1].s.ct += w->e[j].s.ct;
		} else {
			w->e[n++] = w->e[j];
		}
	}
	w->ne = n;
	return 0;
}

/* ---- marshal ------------------------------------------------------------ */

static void put_u32(FILE *f, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8),
			       (unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	fwrite_unlocked(b, 1, 4, f);
}

static void put_int(FILE *f, uint64_t v)
{
	unsigned char d[16];
	uint32_t n = 0, i;

	if (v <= INT32_MAX) {
		putc_unlocked('i', f);
		put_u32(f, (uint32_t)v);
		return;
	}
	/* 'l': the count of 15-bit digits, then the digits, least first. */
	for (; v; v >>= 15) {
		d[2 * n] = (unsigned char)(v & 0xff);
		d[2 * n + 1] = (unsigned char)((v >> 8) & 0x7f);
		n++;
	}
	putc_unlocked('l', f);
	put_u32(f, n);
	for (i = 0; i < n; i++)
		fwrite_unlocked(d + 2 * i, 1, 2, f);
}

static void put_float(FILE *f, double v)
{
	unsigned char b[8];

	memcpy(b, &v, 8); /* little-endian, as marshal's 'g' */
	putc_unlocked('g', f);
	fwrite_unlocked(b, 1, 8, f);
}

/* s as valid UTF-8: each byte that starts no sequence becomes U+FFFD. */
static void put_str(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), n = 0, i, k;
	uint32_t cp;

	for (i = 0; i < len; i += k) {
		k = utf8_seq(u + i, len - i, &cp);
		n += k ? k : sizeof(UTF8_REPLACEMENT) - 1;
		if (!k)
			k = 1;
	}
	putc_unlocked('u', f);
	put_u32(f, (uint32_t)n);
	for (i = 0; i < len; i += k) {
		k = utf8_seq(u + i, len - i, &cp);
		if (k) {
			fwrite_unlocked(u + i, 1, k, f);
		} else {
			fputs_unlocked(UTF8_REPLACEMENT, f);
			k = 1;
		}
	}
}

static void put_tuple(FILE *f, uint32_t n)
{
	putc_unlocked('(', f);
	put_u32(f, n);
}

static void put_key(struct ps *w, FILE *f, uint32_t fn)
{
	const struct profile_frame *fr = &w->p->frames[w->fn_frame[fn]];

	put_tuple(f, 3);
	put_str(f, frame_is_marker(fr->kind) ? "~" : fr->file);
	put_int(f, 0);
	put_str(f, fr->name);
}

/* (nc, cc, tt, ct) of an edge, or (cc, nc, tt, ct, ...) of a function. */
static void put_four(struct ps *w, FILE *f, uint64_t a, uint64_t b, const struct fstat *s)
{
	put_int(f, a);
	put_int(f, b);
	put_float(f, (double)s->tt * w->period);
	put_float(f, (double)s->ct * w->period);
}

int out_pstats_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct ps w = { .p = p, .period = p->rate_hz > 0 ? 1.0 / p->rate_hz : 0.01 };
	uint32_t fn;
	size_t e = 0;
	int err;

	(void)o;
	err = number(&w);
	if (!err)
		err = collect(&w);
	if (!err) {
		putc_unlocked('{', f);
		for (fn = 0; fn < w.nfn; fn++) {
			if (!w.fs[fn].ct)
				continue; /* a marker's, or of no stack counted */
			put_key(&w, f, fn);
			put_tuple(f, 5);
			put_four(&w, f, w.fs[fn].cc, w.fs[fn].nc, &w.fs[fn]);
			putc_unlocked('{', f);
			while (e < w.ne && w.e[e].callee < fn)
				e++;
			for (; e < w.ne && w.e[e].callee == fn; e++) {
				put_key(&w, f, w.e[e].caller);
				put_tuple(f, 4);
				put_four(&w, f, w.e[e].s.nc, w.e[e].s.cc, &w.e[e].s);
			}
			putc_unlocked('0', f);
		}
		putc_unlocked('0', f);
	}
	free(w.fn_of);
	free(w.fn_frame);
	free(w.fs);
	free(w.seen);
	free(w.e);
	if (err)
		return err;
	return ferror(f) ? -EIO : 0;
}
