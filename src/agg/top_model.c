/* top_model.c - per-function own/total counts from profile snapshots.
 *
 * Each update groups the profile's frames by function key (one sort of the
 * frame table serves both line-number modes), counts own and total samples
 * per group in one pass over the stacks, and stores the result per mode as
 * an aggregate sorted by key with its strings copied.  Aggregates of the
 * same mode are in the same key order, so the interval (against the last
 * update) and the window (against the reset baseline) are merge walks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "pyspyc/top_model.h"
#include "pyspyc/utf8.h"

#define NONE UINT32_MAX

/* One function in an aggregate.  Strings are offsets into the aggregate's
 * text, which moves when it grows. */
struct agg_ent {
	size_t name, file;
	int line;
	uint64_t own, total;         /* since sampling began */
	uint64_t own_now, total_now; /* since the update before */
};

/* Functions sorted by key (name, file, line) with their strings. */
struct agg {
	struct agg_ent *e;
	uint32_t n, cap;
	char *text;
	size_t len, tcap;
};

struct top_model {
	double rate;
	int lineno;
	enum top_col sort;

	struct agg last[2];   /* the latest update, per mode (index: lineno) */
	struct agg base[2];   /* the reset baseline, per mode */
	struct agg next[2];   /* being built by an update */
	uint64_t last_samples, base_samples, iv_samples;

	/* Scratch for one update, sized by the frame table. */
	uint32_t fcap;
	uint32_t *order;      /* real frames, sorted by key */
	uint32_t *group[2];   /* frame -> group, NONE for none */
	uint32_t *rep[2];     /* group -> a frame of it */
	uint32_t *stamp[2];   /* group -> 1 + the last stack counted in total */
	uint64_t *own[2], *tot[2];

	struct top_row *rows;
	uint32_t nrows, rcap;
};

/* ---- keys ---------------------------------------------------------------- */

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static int key_cmp(const char *an, const char *af, int al, const char *bn,
		   const char *bf, int bl)
{
	int c = strcmp(an, bn);

	if (c)
		return c;
	c = strcmp(af, bf);
	if (c)
		return c;
	return (al > bl) - (al < bl);
}

static int frame_key_cmp(const void *a, const void *b, void *ctx)
{
	const struct profile_frame *fr = ctx;
	const struct profile_frame *x = &fr[*(const uint32_t *)a];
	const struct profile_frame *y = &fr[*(const uint32_t *)b];

	return key_cmp(str_or_empty(x->name), str_or_empty(x->file), x->line,
		       str_or_empty(y->name), str_or_empty(y->file), y->line);
}

static const char *ent_name(const struct agg *g, const struct agg_ent *e)
{
	return g->text + e->name;
}

static const char *ent_file(const struct agg *g, const struct agg_ent *e)
{
	return g->text + e->file;
}

/* ---- growable buffers ---------------------------------------------------- */

static int grow(void **p, uint32_t *cap, uint32_t want, size_t elem)
{
	uint32_t n = *cap ? *cap : 64;
	void *q;

	if (want <= *cap)
		return 0;
	while (n < want)
		n = n > UINT32_MAX / 2 ? want : n * 2;
	q = realloc(*p, (size_t)n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static int agg_reserve(struct agg *g, uint32_t n, size_t text)
{
	void *t;

	if (grow((void **)&g->e, &g->cap, n, sizeof(*g->e)))
		return -ENOMEM;
	if (text > g->tcap) {
		size_t c = g->tcap ? g->tcap : 4096;

		while (c < text)
			c *= 2;
		t = realloc(g->text, c);
		if (!t)
			return -ENOMEM;
		g->text = t;
		g->tcap = c;
	}
	return 0;
}

static void agg_release(struct agg *g)
{
	free(g->e);
	free(g->text);
	memset(g, 0, sizeof(*g));
}

static size_t agg_put(struct agg *g, const char *s)
{
	size_t at = g->len, n = strlen(s) + 1;

	memcpy(g->text + at, s, n);
	g->len += n;
	return at;
}

static void swap_agg(struct agg *a, struct agg *b)
{
	struct agg t = *a;

	*a = *b;
	*b = t;
}

/* ---- lifecycle ------------------------------------------------------------ */

int top_model_new(struct top_model **out, double rate_hz)
{
	struct top_model *m;

	*out = NULL;
	if (!(rate_hz > 0))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->rate = rate_hz;
	m->lineno = 1;
	m->sort = TOP_COL_OWN_TIME;
	*out = m;
	return 0;
}

void top_model_free(struct top_model *m)
{
	int md;

	if (!m)
		return;
	for (md = 0; md < 2; md++) {
		agg_release(&m->last[md]);
		agg_release(&m->base[md]);
		agg_release(&m->next[md]);
		free(m->group[md]);
		free(m->rep[md]);
		free(m->stamp[md]);
		free(m->own[md]);
		free(m->tot[md]);
	}
	free(m->order);
	free(m->rows);
	free(m);
}

/* ---- rows ----------------------------------------------------------------- */

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t col_value(const struct top_row *r, int col)
{
	switch (col) {
	case TOP_COL_OWN_PCT:
		return r->own_now;
	case TOP_COL_TOTAL_PCT:
		return r->total_now;
	case TOP_COL_OWN_TIME:
		return r->own;
	default:
		return r->total;
	}
}

static int row_cmp(const void *a, const void *b, void *ctx)
{
	const struct top_row *x = a, *y = b;
	int primary = *(const int *)ctx, col, c;
	uint64_t vx, vy;

	vx = col_value(x, primary);
	vy = col_value(y, primary);
	if (vx != vy)
		return vx < vy ? 1 : -1;
	for (col = 0; col < TOP_NCOLS; col++) {
		if (col == primary)
			continue;
		vx = col_value(x, col);
		vy = col_value(y, col);
		if (vx != vy)
			return vx < vy ? 1 : -1;
	}
	c = key_cmp(x->name, x->file, x->line, y->name, y->file, y->line);
	return c;
}

static void sort_rows(struct top_model *m)
{
	int col = (int)m->sort;

	if (m->nrows > 1)
		qsort_r(m->rows, m->nrows, sizeof(*m->rows), row_cmp, &col);
}

/* Rows of the current mode: the latest update less the baseline.  rows has
 * room for every entry (update made it). */
static void build_rows(struct top_model *m)
{
	const struct agg *g = &m->last[m->lineno], *b = &m->base[m->lineno];
	uint32_t i, j = 0, n = 0;

	for (i = 0; i < g->n; i++) {
		const struct agg_ent *e = &g->e[i];
		struct top_row *r = &m->rows[n];
		uint64_t bown = 0, btot = 0;
		int c = 1;

		while (j < b->n &&
		       (c = key_cmp(ent_name(b, &b->e[j]), ent_file(b, &b->e[j]),
				    b->e[j].line, ent_name(g, e), ent_file(g, e),
				    e->line)) < 0)
			j++;
		if (j < b->n && c == 0) {
			bown = b->e[j].own;
			btot = b->e[j].total;
		}
		r->own = sub_sat(e->own, bown);
		r->total = sub_sat(e->total, btot);
		if (!r->own && !r->total)
			continue;
		r->name = ent_name(g, e);
		r->file = ent_file(g, e);
		r->line = e->line;
		/* The interval lies inside the window: never more than it. */
		r->own_now = e->own_now < r->own ? e->own_now : r->own;
		r->total_now = e->total_now < r->total ? e->total_now : r->total;
		r->own_pct = m->iv_samples ?
			100.0 * (double)r->own_now / (double)m->iv_samples : 0.0;
		r->total_pct = m->iv_samples ?
			100.0 * (double)r->total_now / (double)m->iv_samples : 0.0;
		r->own_s = (double)r->own / m->rate;
		r->total_s = (double)r->total / m->rate;
		n++;
	}
	m->nrows = n;
	sort_rows(m);
}

/* ---- update --------------------------------------------------------------- */

static int resize(void **p, size_t n, size_t elem)
{
	void *q = realloc(*p, n * elem);

	if (!q)
		return -ENOMEM;
	*p = q;
	return 0;
}

static int reserve_scratch(struct top_model *m, uint32_t nframes)
{
	uint32_t cap = m->fcap ? m->fcap : 64;
	int md;

	if (nframes <= m->fcap)
		return 0;
	while (cap < nframes)
		cap = cap > UINT32_MAX / 2 ? nframes : cap * 2;
	/* An array that grew before a failure keeps its room; fcap says what
	 * every array has. */
	if (resize((void **)&m->order, cap, sizeof(uint32_t)))
		return -ENOMEM;
	for (md = 0; md < 2; md++) {
		if (resize((void **)&m->group[md], cap, sizeof(uint32_t)) ||
		    resize((void **)&m->rep[md], cap, sizeof(uint32_t)) ||
		    resize((void **)&m->stamp[md], cap, sizeof(uint32_t)) ||
		    resize((void **)&m->own[md], cap, sizeof(uint64_t)) ||
		    resize((void **)&m->tot[md], cap, sizeof(uint64_t)))
			return -ENOMEM;
	}
	m->fcap = cap;
	return 0;
}

/* Group the real frames by key; returns the number of groups of mode md. */
static uint32_t group_frames(struct top_model *m, const struct profile *p,
			     uint32_t nreal, int md)
{
	uint32_t i, ng = 0;

	for (i = 0; i < p->nframes; i++)
		m->group[md][i] = NONE;
	for (i = 0; i < nreal; i++) {
		uint32_t f = m->order[i];
		const struct profile_frame *a = &p->frames[f];

		if (ng) {
			const struct profile_frame *b = &p->frames[m->rep[md][ng - 1]];

			if (!key_cmp(str_or_empty(a->name), str_or_empty(a->file),
				     md ? a->line : 0, str_or_empty(b->name),
				     str_or_empty(b->file), md ? b->line : 0)) {
				m->group[md][f] = ng - 1;
				continue;
			}
		}
		m->rep[md][ng] = f;
		m->group[md][f] = ng++;
	}
	if (ng) {
		memset(m->own[md], 0, (size_t)ng * sizeof(uint64_t));
		memset(m->tot[md], 0, (size_t)ng * sizeof(uint64_t));
		memset(m->stamp[md], 0, (size_t)ng * sizeof(uint32_t));
	}
	return ng;
}

/* One pass over the stacks: own to the innermost real frame, total once
 * per stack to every group on it. */
static void count_stacks(struct top_model *m, const struct profile *p)
{
	uint32_t s, d;
	int md;

	for (s = 0; s < p->nstacks; s++) {
		const struct profile_stack *st = &p->stacks[s];
		uint32_t leaf = NONE;

		if (!st->count)
			continue;
		for (d = st->depth; d-- > 0;) {
			uint32_t f = st->frames[d];

			if (f < p->nframes && m->group[1][f] != NONE) {
				leaf = f;
				break;
			}
		}
		if (leaf == NONE)
			continue;
		for (md = 0; md < 2; md++)
			m->own[md][m->group[md][leaf]] += st->count;
		for (d = 0; d < st->depth; d++) {
			uint32_t f = st->frames[d];

			if (f >= p->nframes || m->group[1][f] == NONE)
				continue;
			for (md = 0; md < 2; md++) {
				uint32_t g = m->group[md][f];

				if (m->stamp[md][g] == s + 1)
					continue;
				m->stamp[md][g] = s + 1;
				m->tot[md][g] += st->count;
			}
		}
	}
}

/* Fill m->next[md] from the counted groups, the interval taken against
 * m->last[md].  Room was reserved. */
static void fill_next(struct top_model *m, const struct profile *p, uint32_t ng,
		      int md)
{
	struct agg *nx = &m->next[md];
	const struct agg *old = &m->last[md];
	uint32_t g, j = 0;

	nx->n = 0;
	nx->len = 0;
	for (g = 0; g < ng; g++) {
		const struct profile_frame *f = &p->frames[m->rep[md][g]];
		const char *name = str_or_empty(f->name), *file = str_or_empty(f->file);
		int line = md ? f->line : 0;
		struct agg_ent *e;
		uint64_t oown = 0, otot = 0;
		int c = 1;

		if (!m->tot[md][g])
			continue;
		while (j < old->n &&
		       (c = key_cmp(ent_name(old, &old->e[j]), ent_file(old, &old->e[j]),
				    old->e[j].line, name, file, line)) < 0)
			j++;
		if (j < old->n && c == 0) {
			oown = old->e[j].own;
			otot = old->e[j].total;
		}
		e = &nx->e[nx->n++];
		e->name = agg_put(nx, name);
		e->file = agg_put(nx, file);
		e->line = line;
		e->own = m->own[md][g];
		e->total = m->tot[md][g];
		e->own_now = sub_sat(e->own, oown);
		e->total_now = sub_sat(e->total, otot);
	}
}

/* Room in next[md] for the groups with samples, and their strings. */
static int reserve_next(struct top_model *m, const struct profile *p, uint32_t ng,
			int md, uint32_t *used)
{
	size_t text = 0;
	uint32_t g, n = 0;

	for (g = 0; g < ng; g++) {
		const struct profile_frame *f = &p->frames[m->rep[md][g]];

		if (!m->tot[md][g])
			continue;
		text += strlen(str_or_empty(f->name)) + strlen(str_or_empty(f->file)) + 2;
		n++;
	}
	*used = n;
	return agg_reserve(&m->next[md], n, text);
}

int top_model_update(struct top_model *m, const struct profile *p,
		     uint64_t samples)
{
	uint32_t i, nreal = 0, ng[2], used[2];
	int md;

	if (reserve_scratch(m, p->nframes))
		return -ENOMEM;
	for (i = 0; i < p->nframes; i++)
		if (!frame_is_marker(p->frames[i].kind))
			m->order[nreal++] = i;
	if (nreal > 1)
		qsort_r(m->order, nreal, sizeof(*m->order), frame_key_cmp,
			(void *)p->frames);
	for (md = 0; md < 2; md++)
		ng[md] = group_frames(m, p, nreal, md);
	count_stacks(m, p);
	for (md = 0; md < 2; md++)
		if (reserve_next(m, p, ng[md], md, &used[md]))
			return -ENOMEM;
	/* Line numbers split functions: mode 1 has the most rows. */
	if (grow((void **)&m->rows, &m->rcap, used[1], sizeof(*m->rows)))
		return -ENOMEM;

	for (md = 0; md < 2; md++) {
		fill_next(m, p, ng[md], md);
		swap_agg(&m->next[md], &m->last[md]);
	}
	if (!samples)
		samples = p->total;
	m->iv_samples = sub_sat(samples, m->last_samples);
	m->last_samples = samples;
	build_rows(m);
	return 0;
}

/* ---- reset, modes, sorting ---------------------------------------------- */

static int agg_copy_counts(struct agg *dst, const struct agg *src)
{
	if (agg_reserve(dst, src->n, src->len))
		return -ENOMEM;
	if (src->n)
		memcpy(dst->e, src->e, (size_t)src->n * sizeof(*src->e));
	if (src->len)
		memcpy(dst->text, src->text, src->len);
	dst->n = src->n;
	dst->len = src->len;
	return 0;
}

int top_model_reset(struct top_model *m)
{
	int md;

	/* Reserve both before changing either: all or nothing. */
	for (md = 0; md < 2; md++)
		if (agg_reserve(&m->base[md], m->last[md].n, m->last[md].len))
			return -ENOMEM;
	for (md = 0; md < 2; md++)
		agg_copy_counts(&m->base[md], &m->last[md]);
	m->base_samples = m->last_samples;
	build_rows(m);
	return 0;
}

void top_model_set_lineno(struct top_model *m, int on)
{
	m->lineno = !!on;
	build_rows(m);
}

int top_model_lineno(const struct top_model *m)
{
	return m->lineno;
}

void top_model_set_sort(struct top_model *m, enum top_col col)
{
	if ((int)col < 0 || col >= TOP_NCOLS)
		return;
	m->sort = col;
	sort_rows(m);
}

enum top_col top_model_sort(const struct top_model *m)
{
	return m->sort;
}

const struct top_row *top_model_rows(const struct top_model *m, uint32_t *n)
{
	*n = m->nrows;
	return m->rows;
}

uint64_t top_model_interval_samples(const struct top_model *m)
{
	return m->iv_samples;
}

uint64_t top_model_window_samples(const struct top_model *m)
{
	return sub_sat(m->last_samples, m->base_samples);
}

const char *top_col_name(enum top_col col)
{
	static const char *const names[TOP_NCOLS] = {
		"%Own", "%Total", "OwnTime", "TotalTime",
	};

	return (int)col >= 0 && col < TOP_NCOLS ? names[col] : "?";
}

/* ---- layout ---------------------------------------------------------------- */

void top_layout(int cols, enum top_col sorted, struct top_layout *out)
{
	/* "%7.2f% %7.2f% %10s %10s  name": a space after each column, one
	 * more before the name. */
	static const int width[TOP_NCOLS] = { 8, 8, 10, 10 };
	static const enum top_col drop[TOP_NCOLS] = {
		TOP_COL_TOTAL_TIME, TOP_COL_OWN_TIME, TOP_COL_TOTAL_PCT, TOP_COL_OWN_PCT,
	};
	int shown[TOP_NCOLS], order[TOP_NCOLS], n = 0, i, used, x;

	/* The drop order, the sort column moved to its end. */
	for (i = 0; i < TOP_NCOLS; i++)
		if (drop[i] != sorted)
			order[n++] = drop[i];
	if (n < TOP_NCOLS)
		order[n++] = sorted;
	used = 1;
	for (i = 0; i < TOP_NCOLS; i++) {
		shown[i] = 1;
		used += width[i] + 1;
	}
	for (i = 0; i < n && cols - used < TOP_NAME_MIN; i++) {
		shown[order[i]] = 0;
		used -= width[order[i]] + 1;
	}
	for (i = 0, x = 0; i < TOP_NCOLS; i++) {
		out->width[i] = shown[i] ? width[i] : 0;
		out->x[i] = x;
		if (shown[i])
			x += width[i] + 1;
	}
	out->name_x = x ? x + 1 : 0;
}

/* ---- safe text ------------------------------------------------------------ */

int top_safe_text(const char *in, int max_cols, int utf8, char *out,
		  size_t size)
{
	const unsigned char *s = (const unsigned char *)str_or_empty(in);
	size_t used = 0;
	int cols = 0;

	while (*s) {
		uint32_t cp = 0;
		int n = (int)utf8_seq(s, 4, &cp), w = 1, keep = 0;

		if (n == 0) {
			n = 1;
		} else if (cp >= 0x20 && cp < 0x7f) {
			keep = 1;
		} else if (utf8 && cp >= 0xa0) {
			w = wcwidth((wchar_t)cp);
			keep = w > 0;
			if (!keep)
				w = 1;
		}
		if (cols + w > max_cols || used + (size_t)(keep ? n : 1) + 1 > size)
			break;
		if (keep) {
			memcpy(out + used, s, (size_t)n);
			used += (size_t)n;
		} else {
			out[used++] = '?';
		}
		cols += w;
		s += n;
	}
	out[used] = '\0';
	return cols;
}
