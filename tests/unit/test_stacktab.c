/* test_stacktab.c - live aggregation (stacktab) and its sorted snapshot.
 *
 * Covers interning of strings and frames, exact counts under concurrent
 * stacktab_add, the order of the snapshot (profile_stack_cmp, independent of
 * ids and insertion order) and the bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/output.h"
#include "pyspyc/stacktab.h"

static const struct stacktab_limits big = {
	.max_stacks = 100000,
	.max_frames = 10000,
	.max_strings = 10000,
};

/* ---- helpers ----------------------------------------------------------- */

static struct stacktab *new_tab(const struct stacktab_limits *lim)
{
	struct stacktab *t = NULL;

	assert_int_equal(stacktab_new(&t, lim), 0);
	assert_non_null(t);
	return t;
}

static uint32_t str_id(struct stacktab *t, const char *s)
{
	uint32_t id = UINT32_MAX;

	assert_int_equal(stacktab_string(t, s, strlen(s), &id), 0);
	return id;
}

static uint32_t frame_id(struct stacktab *t, const char *name, const char *file,
			 int line, int kind)
{
	struct frame_key k;
	uint32_t id = UINT32_MAX;

	memset(&k, 0, sizeof(k));
	k.name = str_id(t, name);
	k.file = str_id(t, file);
	k.line = line;
	k.kind = (uint32_t)kind;
	assert_int_equal(stacktab_frame(t, &k, &id), 0);
	return id;
}

static void render(const struct profile *p, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	assert_non_null(f);
	assert_int_equal(out_collapsed_write(p, NULL, f), 0);
	assert_int_equal(fclose(f), 0);
}

static void expect_sorted(const struct profile *p)
{
	uint32_t i;

	for (i = 1; i < p->nstacks; i++)
		assert_true(profile_stack_cmp(p, &p->stacks[i - 1], &p->stacks[i]) < 0);
}

static uint64_t sum_counts(const struct profile *p)
{
	uint64_t s = 0;
	uint32_t i;

	for (i = 0; i < p->nstacks; i++)
		s += p->stacks[i].count;
	return s;
}

/* ---- interning ----------------------------------------------------------- */

static void test_strings_and_frames(void **state)
{
	struct stacktab *t = new_tab(&big);
	uint32_t a, b, f1, f2, f3, f4;
	struct frame_key k;

	(void)state;
	a = str_id(t, "main");
	b = str_id(t, "app.py");
	assert_int_not_equal(a, b);
	assert_int_equal(str_id(t, "main"), a);
	/* Strings are length-delimited, not NUL-delimited. */
	{
		uint32_t x = UINT32_MAX;

		assert_int_equal(stacktab_string(t, "mainly", 4, &x), 0);
		assert_int_equal(x, a);
	}
	f1 = frame_id(t, "main", "app.py", 10, FRAME_APP);
	f2 = frame_id(t, "main", "app.py", 10, FRAME_APP);
	f3 = frame_id(t, "main", "app.py", 11, FRAME_APP);
	f4 = frame_id(t, "main", "app.py", 10, FRAME_STDLIB);
	assert_int_equal(f1, f2);
	assert_int_not_equal(f1, f3);
	assert_int_not_equal(f1, f4);
	assert_int_not_equal(f3, f4);
	/* A frame key built by hand with the same ids is the same frame. */
	memset(&k, 0, sizeof(k));
	k.name = a;
	k.file = b;
	k.line = 11;
	k.kind = FRAME_APP;
	{
		uint32_t x = UINT32_MAX;

		assert_int_equal(stacktab_frame(t, &k, &x), 0);
		assert_int_equal(x, f3);
	}
	assert_int_equal(stacktab_nstacks(t), 0);
	assert_null(stacktab_full(t));
	stacktab_free(t);
	stacktab_free(NULL);
}

static void test_snapshot_basic(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p;
	uint32_t m, h, w, s1[2], s2[3], s3[1];

	(void)state;
	m = frame_id(t, "main", "app.py", 1, FRAME_APP);
	h = frame_id(t, "helper", "lib/h.py", 20, FRAME_LIBRARY);
	w = frame_id(t, "work", "", 0, FRAME_STDLIB);
	s1[0] = m, s1[1] = h;
	s2[0] = m, s2[1] = h, s2[2] = w;
	s3[0] = m;
	assert_int_equal(stacktab_add(t, s2, 3, 5, NULL), 0);
	assert_int_equal(stacktab_add(t, s1, 2, 1, NULL), 0);
	assert_int_equal(stacktab_add(t, s3, 1, 2, NULL), 0);
	assert_int_equal(stacktab_add(t, s1, 2, 3, NULL), 0);
	assert_int_equal(stacktab_add(t, s2, 3, 1, NULL), 0);
	assert_int_equal(stacktab_nstacks(t), 3);

	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.nstacks, 3);
	assert_int_equal(p.total, 12);
	assert_true(p.nframes >= 3);
	/* Frames are indexed by frame id. */
	assert_string_equal(p.frames[m].name, "main");
	assert_string_equal(p.frames[m].file, "app.py");
	assert_int_equal(p.frames[m].line, 1);
	assert_int_equal(p.frames[m].kind, FRAME_APP);
	assert_string_equal(p.frames[h].name, "helper");
	assert_int_equal(p.frames[h].kind, FRAME_LIBRARY);
	assert_string_equal(p.frames[w].file, "");
	assert_int_equal(p.frames[w].line, 0);
	assert_int_equal(p.frames[w].kind, FRAME_STDLIB);
	/* Root-first text order: main < main;helper < main;helper;work. */
	assert_int_equal(p.stacks[0].depth, 1);
	assert_int_equal(p.stacks[0].count, 2);
	assert_int_equal(p.stacks[1].depth, 2);
	assert_int_equal(p.stacks[1].count, 4);
	assert_int_equal(p.stacks[2].depth, 3);
	assert_int_equal(p.stacks[2].count, 6);
	assert_memory_equal(p.stacks[0].frames, s3, sizeof(s3));
	assert_memory_equal(p.stacks[1].frames, s1, sizeof(s1));
	assert_memory_equal(p.stacks[2].frames, s2, sizeof(s2));
	expect_sorted(&p);
	profile_release(&p);
	assert_null(p.frames);
	assert_null(p.stacks);
	assert_int_equal(p.nstacks, 0);
	profile_release(&p);
	stacktab_free(t);
}

/* A relabelled marker is one frame shown under its last label, in closed
 * windows' profiles too; the key still finds it. */
static void test_relabel(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p, c;
	uint32_t th, again, m, lab, bare, s1[2];

	(void)state;
	th = frame_id(t, "thread", "7f00", 42, FRAME_THREAD);
	m = frame_id(t, "main", "app.py", 1, FRAME_APP);
	s1[0] = th, s1[1] = m;
	assert_int_equal(stacktab_add(t, s1, 2, 1, NULL), 0);
	assert_int_equal(stacktab_string(t, "thread 42 \"python3\"", 20, &lab), 0);
	assert_int_equal(stacktab_string(t, "python3", 7, &bare), 0);
	assert_int_equal(stacktab_frame_relabel(t, th, lab, bare), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(stacktab_rotate(t, &c), 0);
	assert_int_equal(stacktab_string(t, "thread 42 \"worker\"", 19, &lab), 0);
	assert_int_equal(stacktab_string(t, "worker", 6, &bare), 0);
	assert_int_equal(stacktab_frame_relabel(t, th, lab, bare), 0);
	again = frame_id(t, "thread", "7f00", 42, FRAME_THREAD);
	assert_int_equal(again, th);
	assert_int_equal(stacktab_add(t, s1, 2, 2, NULL), 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_string_equal(p.frames[th].name, "thread 42 \"worker\"");
	assert_string_equal(p.frames[th].file, "worker");
	assert_int_equal(p.frames[th].line, 42);
	assert_string_equal(p.frames[m].name, "main");
	assert_int_equal(p.total, 2);
	/* The window closed before the rename holds the label it had then. */
	assert_string_equal(c.frames[th].name, "thread 42 \"python3\"");
	assert_int_equal(c.total, 1);
	assert_int_equal(stacktab_frame_relabel(t, p.nframes, lab, bare), -EINVAL);
	profile_release(&p);
	profile_release(&c);
	stacktab_free(t);
}

static void test_snapshot_empty(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p;
	uint32_t m;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.nstacks, 0);
	assert_int_equal(p.total, 0);
	profile_release(&p);

	/* A stack added with count 0 is interned but not reported. */
	m = frame_id(t, "main", "app.py", 1, FRAME_APP);
	assert_int_equal(stacktab_add(t, &m, 1, 0, NULL), 0);
	assert_int_equal(stacktab_nstacks(t), 1);
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.nstacks, 0);
	assert_int_equal(p.total, 0);
	profile_release(&p);
	stacktab_free(t);
}

/* ---- concurrency ----------------------------------------------------------- */

#define NTHREADS 6
#define NDIGIT 20          /* frames per digit position */
#define NSTACKS 3000       /* < NDIGIT^3 */
#define REPEAT 3

/* Stack s is [root, d0, d1, d2, pad...]: the digits of s in base NDIGIT,
 * each position its own set of frames, then 0..2 pad frames. */
struct ctab {
	struct stacktab *t;
	pthread_barrier_t go;
};

struct cworker {
	struct ctab *c;
	int idx;
	int err;
};

/* Samples thread w adds to stack s: a mix of count-1 adds and bulk adds. */
static uint64_t ones_of(int w, uint32_t s)
{
	return (uint64_t)((s + (uint32_t)w) % 3);
}

static uint64_t bulk_of(int w, uint32_t s)
{
	return (s % 5 == (uint32_t)w % 5) ? 1000ull + s : 0;
}

static uint64_t expected_count(uint32_t s)
{
	uint64_t c = 0;
	int w;

	for (w = 0; w < NTHREADS; w++)
		c += ones_of(w, s) + bulk_of(w, s);
	return c;
}

static int cframe(struct stacktab *t, const char *name, int line, uint32_t *id)
{
	struct frame_key k;
	int err;

	memset(&k, 0, sizeof(k));
	err = stacktab_string(t, name, strlen(name), &k.name);
	if (!err)
		err = stacktab_string(t, "mod.py", 6, &k.file);
	k.line = line;
	if (!err)
		err = stacktab_frame(t, &k, id);
	return err;
}

/* The frames of stack s, interned by this thread (so every thread has to
 * agree with the others on every string and frame id). */
static int build_stack(struct stacktab *t, uint32_t s, uint32_t *out,
		       uint32_t *depth)
{
	char name[32];
	uint32_t d = 0, v = s, pos, pad;
	int err;

	err = cframe(t, "root", 1, &out[d++]);
	for (pos = 0; pos < 3 && !err; pos++) {
		snprintf(name, sizeof(name), "digit%u_%u", pos, v % NDIGIT);
		err = cframe(t, name, (int)(v % NDIGIT) + 1, &out[d++]);
		v /= NDIGIT;
	}
	for (pad = 0; pad < s % 3 && !err; pad++)
		err = cframe(t, "pad", (int)pad + 1, &out[d++]);
	*depth = d;
	return err;
}

static void *cworker_run(void *arg)
{
	struct cworker *w = arg;
	struct stacktab *t = w->c->t;
	uint32_t frames[8], depth, s, i;
	uint64_t n;
	int r;

	pthread_barrier_wait(&w->c->go);
	for (r = 0; r < REPEAT; r++) {
		for (i = 0; i < NSTACKS; i++) {
			/* Each thread walks the stacks from its own offset. */
			s = (i + (uint32_t)w->idx * (NSTACKS / NTHREADS)) % NSTACKS;
			if (build_stack(t, s, frames, &depth)) {
				w->err = __LINE__;
				return NULL;
			}
			if (r == 0 && bulk_of(w->idx, s) &&
			    stacktab_add(t, frames, depth, bulk_of(w->idx, s), NULL)) {
				w->err = __LINE__;
				return NULL;
			}
			/* ones_of() spread over the repeats. */
			for (n = 0; n < ones_of(w->idx, s); n++) {
				if ((n % REPEAT) != (uint64_t)r)
					continue;
				if (stacktab_add(t, frames, depth, 1, NULL)) {
					w->err = __LINE__;
					return NULL;
				}
			}
		}
	}
	return NULL;
}

/* Decode the stack number from a snapshot stack by the frames' names. */
static uint32_t decode_stack(const struct profile *p, const struct profile_stack *st)
{
	uint32_t s = 0, mul = 1, pos;

	assert_true(st->depth >= 4);
	assert_string_equal(p->frames[st->frames[0]].name, "root");
	for (pos = 0; pos < 3; pos++) {
		const struct profile_frame *f = &p->frames[st->frames[1 + pos]];
		unsigned got_pos, digit;

		assert_int_equal(sscanf(f->name, "digit%u_%u", &got_pos, &digit), 2);
		assert_int_equal(got_pos, pos);
		assert_int_equal(f->line, (int)digit + 1);
		s += digit * mul;
		mul *= NDIGIT;
	}
	assert_int_equal(st->depth, 4 + s % 3);
	return s;
}

static void test_concurrent_add(void **state)
{
	struct ctab c;
	struct cworker ws[NTHREADS];
	pthread_t th[NTHREADS];
	struct profile p;
	uint8_t *seen = calloc(NSTACKS, 1);
	uint64_t total = 0;
	uint32_t i;
	int w;

	(void)state;
	assert_non_null(seen);
	c.t = new_tab(&big);
	assert_int_equal(pthread_barrier_init(&c.go, NULL, NTHREADS), 0);
	for (w = 0; w < NTHREADS; w++) {
		ws[w].c = &c;
		ws[w].idx = w;
		ws[w].err = 0;
		assert_int_equal(pthread_create(&th[w], NULL, cworker_run, &ws[w]), 0);
	}
	for (w = 0; w < NTHREADS; w++)
		assert_int_equal(pthread_join(th[w], NULL), 0);
	pthread_barrier_destroy(&c.go);
	for (w = 0; w < NTHREADS; w++)
		assert_int_equal(ws[w].err, 0);
	assert_null(stacktab_full(c.t));

	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(c.t, &p), 0);
	for (i = 0; i < NSTACKS; i++)
		if (expected_count(i))
			total += expected_count(i);
	for (i = 0; i < p.nstacks; i++) {
		uint32_t s = decode_stack(&p, &p.stacks[i]);

		assert_true(s < NSTACKS);
		assert_int_equal(seen[s], 0);
		seen[s] = 1;
		assert_int_equal(p.stacks[i].count, expected_count(s));
	}
	for (i = 0; i < NSTACKS; i++)
		assert_int_equal(seen[i], expected_count(i) != 0);
	assert_int_equal(p.total, total);
	assert_int_equal(sum_counts(&p), total);
	expect_sorted(&p);
	profile_release(&p);
	stacktab_free(c.t);
	free(seen);
}

/* ---- determinism --------------------------------------------------------- */

/* Fill t with the same stacks and counts, visiting them in an order given by
 * perm and interning the names in an order given by name_perm, so that the
 * ids differ between tables. */
static const char *const det_names[] = {
	"main", "serve", "handle", "parse", "render", "sleep", "a;b", "zeta",
	"Main", "main ", "",
};
#define NDET_NAMES (sizeof(det_names) / sizeof(det_names[0]))
#define NDET_STACKS 200

static void fill_det(struct stacktab *t, int reverse)
{
	uint32_t fids[NDET_NAMES * 2];
	uint32_t i, j;

	/* Pre-intern strings and frames in opposite orders. */
	for (i = 0; i < NDET_NAMES * 2; i++) {
		uint32_t k = reverse ? (uint32_t)(NDET_NAMES * 2 - 1 - i) : i;
		const char *file = k % 2 ? "b.py" : "a.py";

		fids[k] = frame_id(t, det_names[k / 2], file, (int)(k % 3), FRAME_APP);
	}
	for (i = 0; i < NDET_STACKS; i++) {
		uint32_t s = reverse ? NDET_STACKS - 1 - i : (i * 7) % NDET_STACKS;
		uint32_t st[6], d = 1 + s % 6, v = s;

		for (j = 0; j < d; j++) {
			st[j] = fids[v % (NDET_NAMES * 2)];
			v = v / 3 + j;
		}
		assert_int_equal(stacktab_add(t, st, d, 1 + s % 4, NULL), 0);
	}
}

static void test_deterministic_order(void **state)
{
	struct stacktab *t1 = new_tab(&big), *t2 = new_tab(&big);
	struct profile p1, p2;
	char *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	uint32_t i, j;

	(void)state;
	fill_det(t1, 0);
	fill_det(t2, 1);
	memset(&p1, 0, sizeof(p1));
	memset(&p2, 0, sizeof(p2));
	assert_int_equal(stacktab_snapshot(t1, &p1), 0);
	assert_int_equal(stacktab_snapshot(t2, &p2), 0);
	expect_sorted(&p1);
	expect_sorted(&p2);
	assert_int_equal(p1.nstacks, p2.nstacks);
	assert_int_equal(p1.total, p2.total);
	for (i = 0; i < p1.nstacks; i++) {
		const struct profile_stack *a = &p1.stacks[i], *b = &p2.stacks[i];

		assert_int_equal(a->depth, b->depth);
		assert_int_equal(a->count, b->count);
		for (j = 0; j < a->depth; j++) {
			const struct profile_frame *fa = &p1.frames[a->frames[j]];
			const struct profile_frame *fb = &p2.frames[b->frames[j]];

			assert_string_equal(fa->name, fb->name);
			assert_string_equal(fa->file, fb->file);
			assert_int_equal(fa->line, fb->line);
		}
	}
	/* And so the written bytes are the same. */
	render(&p1, &b1, &l1);
	render(&p2, &b2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);
	profile_release(&p1);
	profile_release(&p2);
	stacktab_free(t1);
	stacktab_free(t2);
}

/* profile_stack_cmp on a hand-built profile: name, then file, then line,
 * root to leaf; a prefix sorts first. */
static void test_stack_cmp(void **state)
{
	static const struct profile_frame fr[] = {
		{ "b", "x.py", 1, FRAME_APP },  /* 0 */
		{ "a", "y.py", 1, FRAME_APP },  /* 1 */
		{ "a", "x.py", 2, FRAME_APP },  /* 2 */
		{ "a", "x.py", 10, FRAME_APP }, /* 3: 10 > 2 numerically */
		{ "a", "x.py", 2, FRAME_LIBRARY }, /* 4: same text as 2 */
	};
	static const uint32_t f0[] = { 0 }, f1[] = { 1 }, f2[] = { 2 },
			      f3[] = { 3 }, f4[] = { 4 }, f22[] = { 2, 2 },
			      f20[] = { 2, 0 }, f21[] = { 2, 1 };
	struct profile p;
	struct profile_stack s[] = {
		{ f0, 1, 1, 0 }, { f1, 1, 1, 0 }, { f2, 1, 1, 0 }, { f3, 1, 1, 0 },
		{ f22, 2, 1, 0 }, { f20, 2, 1, 0 }, { f21, 2, 1, 0 },
	};
	/* Expected order after sorting, by the stacks' frames arrays. */
	const uint32_t *want[] = { f2, f22, f21, f20, f3, f1, f0 };
	uint32_t i;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.frames = fr;
	p.nframes = 5;
	p.stacks = s;
	p.nstacks = 7;
	{
		struct profile_stack x = { f2, 1, 1, 0 }, y = { f2, 1, 9, 0 };

		assert_int_equal(profile_stack_cmp(&p, &x, &x), 0);
		/* Counts are not part of the order. */
		assert_int_equal(profile_stack_cmp(&p, &x, &y), 0);
		/* Same text, other kind: never "less" one way and "less" the
		 * other. */
		y.frames = f4;
		assert_int_equal(profile_stack_cmp(&p, &x, &y),
				 -profile_stack_cmp(&p, &y, &x));
	}
	assert_true(profile_stack_cmp(&p, &s[2], &s[3]) < 0);
	assert_true(profile_stack_cmp(&p, &s[3], &s[2]) > 0);
	assert_true(profile_stack_cmp(&p, &s[2], &s[4]) < 0);
	profile_sort(&p, s);
	for (i = 0; i < 7; i++)
		assert_ptr_equal(s[i].frames, want[i]);
	expect_sorted(&p);
}

/* Two frames whose text is the same but whose kind differs (say a stdlib
 * module and a site-packages one that shorten to the same "json/x.py") are
 * different frames; the order of their stacks must still not depend on ids,
 * or the same profile gives different bytes (collapsed counts, SVG colours)
 * depending on which was seen first. */
static void fill_kinds(struct stacktab *t, int reverse)
{
	uint32_t lib, std, m, st[2];
	int i;

	m = frame_id(t, "main", "app.py", 1, FRAME_APP);
	if (reverse) {
		std = frame_id(t, "loads", "json/x.py", 3, FRAME_STDLIB);
		lib = frame_id(t, "loads", "json/x.py", 3, FRAME_LIBRARY);
	} else {
		lib = frame_id(t, "loads", "json/x.py", 3, FRAME_LIBRARY);
		std = frame_id(t, "loads", "json/x.py", 3, FRAME_STDLIB);
	}
	for (i = 0; i < 2; i++) {
		st[0] = m;
		st[1] = (i == 0) == !reverse ? lib : std;
		assert_int_equal(stacktab_add(t, st, 2, st[1] == lib ? 5 : 7, NULL), 0);
	}
}

static void test_order_ties_on_kind(void **state)
{
	struct stacktab *t1 = new_tab(&big), *t2 = new_tab(&big);
	struct profile p1, p2;
	int kind1[2], kind2[2];
	uint64_t count1[2], count2[2];
	uint32_t i;

	(void)state;
	fill_kinds(t1, 0);
	fill_kinds(t2, 1);
	memset(&p1, 0, sizeof(p1));
	memset(&p2, 0, sizeof(p2));
	assert_int_equal(stacktab_snapshot(t1, &p1), 0);
	assert_int_equal(stacktab_snapshot(t2, &p2), 0);
	assert_int_equal(p1.nstacks, 2);
	assert_int_equal(p2.nstacks, 2);
	for (i = 0; i < 2; i++) {
		kind1[i] = p1.frames[p1.stacks[i].frames[1]].kind;
		kind2[i] = p2.frames[p2.stacks[i].frames[1]].kind;
		count1[i] = p1.stacks[i].count;
		count2[i] = p2.stacks[i].count;
	}
	/* Free first so a failure below leaks nothing under ASan. */
	profile_release(&p1);
	profile_release(&p2);
	stacktab_free(t1);
	stacktab_free(t2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(kind1[i], kind2[i]);
		assert_int_equal(count1[i], count2[i]);
	}
}

/* ---- bounds -------------------------------------------------------------- */

static void test_full_stacks(void **state)
{
	const struct stacktab_limits lim = {
		.max_stacks = 4, .max_frames = 100, .max_strings = 100,
	};
	struct stacktab *t = new_tab(&lim);
	struct profile p;
	uint32_t f[8], i;

	(void)state;
	for (i = 0; i < 8; i++) {
		char name[8];

		snprintf(name, sizeof(name), "f%u", i);
		f[i] = frame_id(t, name, "m.py", 1, FRAME_APP);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(stacktab_add(t, &f[i], 1, i + 1, NULL), 0);
	assert_null(stacktab_full(t));
	assert_int_equal(stacktab_add(t, &f[4], 1, 1, NULL), -ENOSPC);
	assert_non_null(stacktab_full(t));
	assert_string_equal(stacktab_full(t), "--max-stacks");
	assert_int_equal(stacktab_add(t, f, 2, 1, NULL), -ENOSPC);
	assert_int_equal(stacktab_nstacks(t), 4);
	/* Known stacks still count. */
	assert_int_equal(stacktab_add(t, &f[0], 1, 10, NULL), 0);
	/* The first bound hit stays the one reported. */
	{
		const struct stacktab_limits tiny = {
			.max_stacks = 4, .max_frames = 100, .max_strings = 2,
		};
		struct stacktab *t2 = new_tab(&tiny);
		uint32_t id;

		assert_int_equal(stacktab_string(t2, "a", 1, &id), 0);
		assert_int_equal(stacktab_string(t2, "b", 1, &id), 0);
		assert_int_equal(stacktab_string(t2, "c", 1, &id), -ENOSPC);
		assert_non_null(stacktab_full(t2));
		assert_string_not_equal(stacktab_full(t2), "--max-stacks");
		assert_int_equal(strncmp(stacktab_full(t2), "--", 2), 0);
		stacktab_free(t2);
	}
	assert_string_equal(stacktab_full(t), "--max-stacks");

	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.nstacks, 4);
	assert_int_equal(p.total, 1 + 2 + 3 + 4 + 10);
	assert_int_equal(p.stacks[0].count, 11); /* "f0" sorts first */
	profile_release(&p);
	stacktab_free(t);
}

static void test_full_frames(void **state)
{
	const struct stacktab_limits lim = {
		.max_stacks = 100, .max_frames = 2, .max_strings = 100,
	};
	struct stacktab *t = new_tab(&lim);
	struct frame_key k;
	uint32_t id, f0;

	(void)state;
	f0 = frame_id(t, "a", "m.py", 1, FRAME_APP);
	frame_id(t, "a", "m.py", 2, FRAME_APP);
	memset(&k, 0, sizeof(k));
	k.name = str_id(t, "a");
	k.file = str_id(t, "m.py");
	k.line = 3;
	assert_int_equal(stacktab_frame(t, &k, &id), -ENOSPC);
	assert_non_null(stacktab_full(t));
	assert_string_not_equal(stacktab_full(t), "--max-stacks");
	/* Stacks of the frames that exist still work, and the first bound
	 * stays the one reported. */
	assert_int_equal(stacktab_add(t, &f0, 1, 1, NULL), 0);
	assert_string_not_equal(stacktab_full(t), "--max-stacks");
	stacktab_free(t);
}

/* ---- markers, views and the timeline ------------------------------------- */

static void test_strip_markers(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p, v, w;
	uint32_t pr, t1, t2, a, b, s[4];
	int pid, tid;
	uint32_t th;
	char *txt;
	size_t len;

	(void)state;
	pr = frame_id(t, "process 7:\"app\"", "app", 7, FRAME_PROCESS);
	t1 = frame_id(t, "thread 11 \"Main\"", "Main", 11, FRAME_THREAD);
	t2 = frame_id(t, "thread 12 \"w;1\"", "w;1", 12, FRAME_THREAD);
	a = frame_id(t, "a", "a.py", 1, FRAME_APP);
	b = frame_id(t, "b", "b.py", 2, FRAME_APP);
	s[0] = pr, s[1] = t1, s[2] = a, s[3] = b;
	assert_int_equal(stacktab_add(t, s, 4, 2, NULL), 0);
	s[1] = t2;
	assert_int_equal(stacktab_add(t, s, 4, 3, NULL), 0);
	assert_int_equal(stacktab_add(t, s, 3, 1, NULL), 0);   /* pr t2 a */
	assert_int_equal(stacktab_add(t, s, 2, 4, NULL), 0);   /* markers only */
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	p.pid = 99;
	assert_int_equal(p.total, 10);

	/* Owners come from the markers. */
	assert_int_equal(profile_stack_owner(&p, &p.stacks[0], &pid, &tid, &th), 2);
	assert_int_equal(pid, 7);
	assert_true(tid == 11 || tid == 12);
	assert_true(th == t1 || th == t2);

	/* Without thread markers: the two a;b stacks fold into one. */
	assert_int_equal(profile_strip(&p, PROFILE_KIND(FRAME_THREAD), &v), 0);
	assert_int_equal(v.nstacks, 3);
	assert_int_equal(v.total, 10);
	expect_sorted(&v);
	render(&v, &txt, &len);
	assert_string_equal(txt, "process 7:\"app\" 4\n"
				 "process 7:\"app\";a (a.py:1) 1\n"
				 "process 7:\"app\";a (a.py:1);b (b.py:2) 5\n");
	free(txt);
	assert_int_equal(profile_stack_owner(&v, &v.stacks[0], &pid, &tid, NULL), 1);
	assert_int_equal(pid, 7);
	assert_int_equal(tid, 0);
	assert_null(v.samples);

	/* Without any marker: the markers-only stack is gone with its count. */
	assert_int_equal(profile_strip(&p, PROFILE_KIND(FRAME_THREAD) |
					   PROFILE_KIND(FRAME_PROCESS), &w), 0);
	assert_int_equal(w.nstacks, 2);
	assert_int_equal(w.total, 6);
	assert_int_equal(sum_counts(&w), 6);
	assert_int_equal(profile_stack_owner(&w, &w.stacks[0], &pid, &tid, NULL), 0);
	assert_int_equal(pid, 99);
	render(&w, &txt, &len);
	assert_string_equal(txt, "a (a.py:1) 1\na (a.py:1);b (b.py:2) 5\n");
	free(txt);

	/* Stripping nothing keeps every stack. */
	profile_release(&w);
	assert_int_equal(profile_strip(&p, 0, &w), 0);
	assert_int_equal(w.nstacks, p.nstacks);
	assert_int_equal(w.total, p.total);
	profile_release(&w);
	profile_release(&v);
	profile_release(&p);
	stacktab_free(t);
}

static void test_timeline(void **state)
{
	struct stacktab *t = new_tab(&big);
	struct profile p;
	uint32_t a, b, sa[1], sab[2], ida, idab;
	uint64_t i;

	(void)state;
	a = frame_id(t, "a", "a.py", 1, FRAME_APP);
	b = frame_id(t, "b", "b.py", 2, FRAME_APP);
	sa[0] = a;
	sab[0] = a, sab[1] = b;
	/* Logging without a timeline does nothing. */
	stacktab_log(t, 5, 0);
	assert_int_equal(stacktab_timeline(t, 0), -EINVAL);
	assert_int_equal(stacktab_timeline(t, 5), 0);
	assert_int_equal(stacktab_timeline(t, 5), -EINVAL);
	/* ab is added first, so its id is lower but it sorts after a. */
	assert_int_equal(stacktab_add(t, sab, 2, 1, &idab), 0);
	assert_int_equal(stacktab_add(t, sa, 1, 1, &ida), 0);
	stacktab_log(t, 300, idab);
	stacktab_log(t, 100, ida);
	stacktab_log(t, 200, idab);
	stacktab_log(t, 100, idab);
	stacktab_log(t, 50, ida);
	stacktab_log(t, 10, ida);   /* past the 5 records kept */
	stacktab_log(t, 20, ida);
	memset(&p, 0, sizeof(p));
	assert_int_equal(stacktab_snapshot(t, &p), 0);
	assert_int_equal(p.nsamples, 5);
	assert_int_equal(p.timeline_lost, 2);
	assert_int_equal(p.stacks[0].depth, 1);   /* a */
	assert_int_equal(p.stacks[1].depth, 2);   /* a;b */
	{
		static const int64_t ts[] = { 50, 100, 100, 200, 300 };
		static const uint32_t st[] = { 0, 0, 1, 1, 1 };

		for (i = 0; i < 5; i++) {
			assert_int_equal(p.samples[i].t_ns, ts[i]);
			assert_int_equal(p.samples[i].stack, st[i]);
		}
	}
	profile_release(&p);
	assert_null(p.samples);
	assert_int_equal(p.nsamples, 0);
	stacktab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings_and_frames),
		cmocka_unit_test(test_snapshot_basic),
		cmocka_unit_test(test_relabel),
		cmocka_unit_test(test_snapshot_empty),
		cmocka_unit_test(test_concurrent_add),
		cmocka_unit_test(test_deterministic_order),
		cmocka_unit_test(test_stack_cmp),
		cmocka_unit_test(test_order_ties_on_kind),
		cmocka_unit_test(test_full_stacks),
		cmocka_unit_test(test_full_frames),
		cmocka_unit_test(test_strip_markers),
		cmocka_unit_test(test_timeline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
