/* out_svg.c - interactive flame graph: one self-contained SVG document.
 *
 * The stacks are merged into a call tree (children keyed by frame index),
 * children are ordered by frame text (name, file, line) so that the picture
 * and the bytes depend only on what was sampled, never on the ids the run
 * happened to assign, and every node becomes one <g> under <g id="frames">:
 *
 *   <g data-d="depth" data-s="first sample" data-n="samples">
 *     <title>name (file:line) — N samples (P%)</title>
 *     <rect .../><text ...>label, cut to fit..</text>
 *   </g>
 *
 * data-s/data-n place the frame on the sample axis: [s, s + n) of
 * [0, total), nested inside its parent's range.  The inline script zooms and
 * searches with those numbers and takes each frame's text from its <title>
 * (everything before the last " — "), so no target string is ever part of
 * the script's source.  Searches skip merged blocks (below), which keep no
 * names, and state the samples in blocks outside the matches as the bound
 * they are.  Everything that came from the target passes through
 * text_add(): invalid UTF-8, control characters, characters XML 1.0 cannot
 * carry and bidirectional overrides become U+FFFD, and the result is
 * XML-escaped when written.
 *
 * Bounds: frames narrower than 1/SVG_MIN_FRAC of the samples (0.1 px of the
 * image) are not drawn one by one.  The narrow children of each drawn
 * frame, with all their callees, become one grey merged block after its
 * drawn children:
 *
 *   <g data-d=.. data-s=.. data-n="their samples" data-m="narrow children">
 *     <title>3 narrow frames merged (17 with callees) — N samples (P%)</title>
 *
 * so no count changes, a parent's children still add up to its samples
 * less its own, and what was merged can be hovered and zoomed into.  If
 * frames and blocks still number more than SVG_MAX_FRAMES the threshold
 * is doubled until they do not.  Stacks deeper than SVG_MAX_DEPTH are
 * folded into their frame at that depth.  The subtitle says what was
 * merged, and when either cap changed the picture.
 *
 * Numbers are formatted with integer arithmetic: printf's %f follows
 * LC_NUMERIC and a decimal comma would break every coordinate.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/output.h"
#include "pyspyc/utf8.h"

/* Geometry, in px. */
#define SVG_WIDTH	1200
#define SVG_XPAD	10
#define SVG_FRAMES_W	(SVG_WIDTH - 2 * SVG_XPAD)
#define SVG_FRAME_H	16
#define SVG_TOP		72	/* title, subtitle, legend */
#define SVG_BOTTOM	34	/* details line */
#define SVG_CHAR_W	7	/* mean advance of 12 px Verdana */
#define SVG_TEXT_PAD	3

#define SVG_MIN_FRAC	12000u	/* 0.1 px of SVG_WIDTH */
#define SVG_MAX_FRAMES	250000u	/* beyond this, browsers crawl */
#define SVG_MAX_DEPTH	2048u

/* Caps on target strings, in code points. */
#define CAP_NAME	200
#define CAP_FILE	200
#define CAP_TITLE	200

#define EM_DASH		"\xe2\x80\x94"
#define MID_DOT		"\xc2\xb7"

/* ---- sanitised text ---------------------------------------------------- */

/* Clean UTF-8 that XML 1.0 can carry; big enough for the caps above (four
 * bytes per code point at most). */
struct text {
	size_t len;
	uint32_t ncp;
	char buf[2048];
};

static void text_init(struct text *t)
{
	t->len = 0;
	t->ncp = 0;
	t->buf[0] = '\0';
}

static void text_put_cp(struct text *t, uint32_t cp)
{
	if (t->len + 5 > sizeof(t->buf))
		return;
	t->len += utf8_put(t->buf + t->len, cp);
	t->buf[t->len] = '\0';
	t->ncp++;
}

/* Our own ASCII text: trusted, no cap. */
static void text_put(struct text *t, const char *s)
{
	for (; *s; s++)
		text_put_cp(t, (unsigned char)*s);
}

/* Decode one scalar value from NUL-terminated s; an invalid sequence
 * costs one byte and yields U+FFFD. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t n = utf8_seq(s, 4, cp);

	if (!n)
		*cp = 0xfffd;
	return n ? n : 1;
}

/* What a code point from the target is shown as.  Line breaks and tabs
 * become spaces (labels are one line); other controls, the two XML
 * non-characters and the bidirectional overrides, which could make a
 * label read as something it is not, become U+FFFD. */
static uint32_t cp_shown(uint32_t cp)
{
	if (cp == '\t' || cp == '\n' || cp == '\r')
		return ' ';
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return 0xfffd;
	if (cp == 0xfffe || cp == 0xffff)
		return 0xfffd;
	if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return 0xfffd;
	return cp;
}

/* Append target string s (NULL reads as ""), at most cap code points of
 * it, then "..." if it was cut. */
static void text_add(struct text *t, const char *s, uint32_t cap)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	uint32_t n, cp;

	for (n = 0; *u; n++) {
		if (n == cap) {
			text_put(t, "...");
			return;
		}
		u += utf8_next(u, &cp);
		text_put_cp(t, cp_shown(cp));
	}
}

/* "name (file:line)", as in the collapsed output. */
static void text_frame(struct text *t, const struct profile_frame *fr)
{
	char num[16];

	text_init(t);
	text_add(t, fr->name, CAP_NAME);
	if (!fr->file || !fr->file[0] || frame_is_marker(fr->kind))
		return;
	text_put(t, " (");
	text_add(t, fr->file, CAP_FILE);
	if (fr->line > 0) {
		snprintf(num, sizeof(num), ":%d", fr->line);
		text_put(t, num);
	}
	text_put(t, ")");
}

/* Bytes of the first ncp code points of clean UTF-8 s. */
static size_t utf8_prefix(const char *s, size_t len, uint32_t ncp)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (!ncp--)
			break;
	}
	return i;
}

static void put_esc(FILE *f, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			fputs_unlocked("&amp;", f);
			break;
		case '<':
			fputs_unlocked("&lt;", f);
			break;
		case '>':
			fputs_unlocked("&gt;", f);
			break;
		case '"':
			fputs_unlocked("&quot;", f);
			break;
		case '\'':
			fputs_unlocked("&#39;", f);
			break;
		default:
			putc_unlocked(s[i], f);
		}
	}
}

static void put_text(FILE *f, const struct text *t)
{
	put_esc(f, t->buf, t->len);
}

/* ---- numbers ----------------------------------------------------------- */

/* v >= 0 with dec (0..3) decimals; "?" for NaN, negatives and absurd
 * values, which only a broken profile has. */
static const char *fmt_fixed(char *buf, size_t size, double v, unsigned dec)
{
	static const uint64_t scale[] = { 1, 10, 100, 1000 };
	uint64_t u;

	if (!(v >= 0.0) || v > 1e15 || dec > 3) {
		snprintf(buf, size, "?");
		return buf;
	}
	u = (uint64_t)(v * (double)scale[dec] + 0.5);
	if (dec)
		snprintf(buf, size, "%" PRIu64 ".%0*" PRIu64, u / scale[dec],
			 (int)dec, u % scale[dec]);
	else
		snprintf(buf, size, "%" PRIu64, u);
	return buf;
}

static int is_whole(double v)
{
	return v >= 0.0 && v <= 1e15 && v == (double)(uint64_t)v;
}

/* 1234567 -> "1,234,567" */
static const char *fmt_count(char *buf, size_t size, uint64_t v)
{
	char digits[24];
	size_t n, i, o = 0;

	n = (size_t)snprintf(digits, sizeof(digits), "%" PRIu64, v);
	for (i = 0; i < n && o + 2 < size; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *fmt_pct(char *buf, size_t size, uint64_t n, uint64_t total)
{
	return fmt_fixed(buf, size, total ? (double)n * 100.0 / (double)total : 0,
			 2);
}

/* Pixel positions are kept in hundredths of a pixel. */
static void put_px(FILE *f, uint64_t px100)
{
	fprintf(f, "%" PRIu64 ".%02u", px100 / 100, (unsigned)(px100 % 100));
}

static uint64_t px100_of(uint64_t samples, uint64_t total)
{
	return (uint64_t)((double)samples * (SVG_FRAMES_W * 100.0) /
			  (double)total + 0.5);
}

/* ---- colours ----------------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct rgb {
	unsigned r, g, b;
};

/* One hue family per kind; the shade within it comes from a hash of the
 * name, so a function keeps its colour from run to run and neighbours with
 * different names are told apart. */
static struct rgb frame_colour(int kind, const char *name)
{
	uint32_t h = fnv1a(name);
	unsigned a = h & 0xff, b = h >> 8 & 0xff, c = h >> 16 & 0xff;
	struct rgb col;

	switch (kind) {
	case FRAME_APP:		/* warm: red-orange to amber */
		col.r = 220 + a * 35 / 255;
		col.g = 95 + b * 105 / 255;
		col.b = 30 + c * 40 / 255;
		break;
	case FRAME_STDLIB:	/* blue-grey */
		col.r = 120 + a * 55 / 255;
		col.g = 150 + a * 50 / 255;
		col.b = 200 + b * 45 / 255;
		break;
	case FRAME_LIBRARY:	/* sea green to aqua */
		col.r = 60 + a * 50 / 255;
		col.g = 175 + b * 50 / 255;
		col.b = 110 + c * 85 / 255;
		break;
	case FRAME_SPECIAL:	/* lavender-grey */
	case FRAME_PROCESS:
	case FRAME_THREAD:
	case FRAME_SERVICE:
		col.r = 170 + a * 35 / 255;
		col.g = 150 + a * 30 / 255;
		col.b = 205 + b * 40 / 255;
		break;
	default:
		col.r = col.g = col.b = 180 + a * 40 / 255;
	}
	return col;
}

/* ---- the call tree ----------------------------------------------------- */

struct node {
	uint64_t count;		/* samples in this frame and below */
	uint32_t parent;
	uint32_t frame;		/* index into profile.frames; root: unused */
	uint32_t depth;		/* root ("all") is 0 */
	uint32_t rank;		/* position of frame in text order */
};

struct tree {
	struct node *nodes;	/* [0] is the root; parent id < child id */
	uint32_t n, cap;
	uint32_t *slots;	/* (parent, frame) -> node id; 0 is empty */
	uint32_t mask;
	uint32_t max_depth;
	int folded;		/* some stack was deeper than SVG_MAX_DEPTH */
};

static void tree_release(struct tree *t)
{
	free(t->nodes);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static uint32_t slot_of(uint32_t parent, uint32_t frame, uint32_t mask)
{
	uint64_t k = ((uint64_t)parent << 32 | frame) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(k >> 32) & mask;
}

static int tree_rehash(struct tree *t, uint32_t nslots)
{
	uint32_t *slots, i, s;

	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 1; i < t->n; i++) {
		s = slot_of(t->nodes[i].parent, t->nodes[i].frame, nslots - 1);
		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = i;
	}
	free(t->slots);
	t->slots = slots;
	t->mask = nslots - 1;
	return 0;
}

static int tree_init(struct tree *t)
{
	memset(t, 0, sizeof(*t));
	t->cap = 1024;
	t->nodes = calloc(t->cap, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	t->n = 1;
	return tree_rehash(t, 2048);
}

/* The child of parent for frame, created if new. */
static int tree_child(struct tree *t, uint32_t parent, uint32_t frame,
		      uint32_t *id)
{
	struct node *nd;
	uint32_t s;
	int err;

	for (s = slot_of(parent, frame, t->mask); t->slots[s];
	     s = (s + 1) & t->mask) {
		nd = &t->nodes[t->slots[s]];
		if (nd->parent == parent && nd->frame == frame) {
			*id = t->slots[s];
			return 0;
		}
	}
	if (t->n >= UINT32_MAX / 4)
		return -EOVERFLOW;
	if (t->n == t->cap) {
		nd = realloc(t->nodes, 2 * (size_t)t->cap * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		t->nodes = nd;
		t->cap *= 2;
	}
	/* Keep the table at most half full so probes stay short. */
	if ((uint64_t)t->n * 2 > t->mask) {
		err = tree_rehash(t, 2 * (t->mask + 1));
		if (err)
			return err;
		for (s = slot_of(parent, frame, t->mask); t->slots[s];
		     s = (s + 1) & t->mask)
			;
	}
	nd = &t->nodes[t->n];
	memset(nd, 0, sizeof(*nd));
	nd->parent = parent;
	nd->frame = frame;
	nd->depth = t->nodes[parent].depth + 1;
	if (nd->depth > t->max_depth)
		t->max_depth = nd->depth;
	t->slots[s] = t->n;
	*id = t->n++;
	return 0;
}

/* Merge every stack into the tree.  Stacks arrive sorted, so consecutive
 * ones share prefixes: the path of the previous stack is reused up to the
 * first frame that differs, and only the rest is looked up. */
static int tree_build(struct tree *t, const struct profile *p)
{
	const struct profile_stack *prev = NULL;
	uint32_t *path, plen = 0, i, j, d, k;
	int err;

	path = malloc((SVG_MAX_DEPTH + 1) * sizeof(*path));
	if (!path)
		return -ENOMEM;
	path[0] = 0;
	for (i = 0; i < p->nstacks; i++) {
		const struct profile_stack *s = &p->stacks[i];

		d = s->depth;
		if (d > SVG_MAX_DEPTH) {
			d = SVG_MAX_DEPTH;
			t->folded = 1;
		}
		if (d && !s->frames) {
			err = -EINVAL;
			goto out_path;
		}
		k = 0;
		if (prev)
			while (k < d && k < plen && s->frames[k] == prev->frames[k])
				k++;
		for (j = k; j < d; j++) {
			if (s->frames[j] >= p->nframes) {
				err = -EINVAL;
				goto out_path;
			}
			err = tree_child(t, path[j], s->frames[j], &path[j + 1]);
			if (err)
				goto out_path;
		}
		for (j = 0; j <= d; j++)
			t->nodes[path[j]].count += s->count;
		prev = s;
		plen = d;
	}
	err = 0;
out_path:
	free(path);
	return err;
}

/* What tree_mark() leaves in on[]: a node is drawn, and a drawn node has
 * narrow children with samples, which one merged block stands for. */
enum {
	ON_DRAWN = 1,
	ON_MERGED = 2,
};

struct marks {
	uint32_t drawn;		/* nodes drawn, the root included */
	uint32_t blocks;	/* merged blocks: drawn nodes with ON_MERGED */
	uint32_t merged;	/* nodes with samples inside those blocks */
	uint32_t max_depth;	/* deepest row, merged blocks included */
};

/* Which nodes are drawn: wide enough, under a drawn parent (a child is
 * never wider than its parent, so a narrow node's callees are all narrow
 * too).  The narrow children of a drawn node, with their callees, become
 * one merged block beside its drawn children: no sample leaves the
 * picture and every parent's children still add up. */
static void tree_mark(const struct tree *t, uint8_t *on, uint64_t min,
		      struct marks *m)
{
	uint32_t i;

	memset(m, 0, sizeof(*m));
	on[0] = t->nodes[0].count > 0 ? ON_DRAWN : 0;
	m->drawn = on[0];
	for (i = 1; i < t->n; i++) {
		const struct node *nd = &t->nodes[i];
		uint8_t *up = &on[nd->parent];

		on[i] = 0;
		if (!nd->count)
			continue;	/* never sampled: nothing to show */
		if (*up && nd->count >= min) {
			on[i] = ON_DRAWN;
			m->drawn++;
		} else {
			/* Inside a block: the parent's, or the block its
			 * narrow parent is in, which counts it as a callee. */
			m->merged++;
			if (!*up || (*up & ON_MERGED))
				continue;
			*up |= ON_MERGED;
			m->blocks++;
		}
		if (nd->depth > m->max_depth)
			m->max_depth = nd->depth;
	}
}

/* One merged block: the narrow children of a drawn node and their callees,
 * drawn to the right of the drawn children. */
struct block {
	uint64_t count;		/* samples in the narrow children */
	uint32_t parent;	/* the drawn node */
	uint32_t frames;	/* narrow children */
	uint32_t nodes;		/* narrow children and all their callees */
};

/* Fill blk[0..m->blocks) from the marks; blk[k] comes from the k-th drawn
 * parent in node order.  Caller owns *blkp.  Returns 0 or -ENOMEM. */
static int tree_blocks(const struct tree *t, const uint8_t *on,
		       const struct marks *m, struct block **blkp)
{
	struct block *blk;
	uint32_t *in, i, nb = 0;
	int err = -ENOMEM;

	*blkp = NULL;
	if (!m->blocks)
		return 0;
	blk = calloc(m->blocks, sizeof(*blk));
	if (!blk)
		goto out;
	/* in[node]: 1 + the block that holds a narrow node, or for a drawn
	 * node the block of its narrow children; 0 for none yet.  Parents
	 * come before children, so one pass fills it. */
	in = calloc(t->n, sizeof(*in));
	if (!in)
		goto out_blk;
	for (i = 1; i < t->n; i++) {
		const struct node *nd = &t->nodes[i];
		uint32_t up = nd->parent, b;

		if (on[i] || !nd->count)
			continue;
		b = in[up];
		if (on[up]) {
			if (!b) {
				if (nb == m->blocks)
					break;	/* cannot happen: marks agree */
				b = in[up] = ++nb;
				blk[b - 1].parent = up;
			}
			blk[b - 1].count += nd->count;
			blk[b - 1].frames++;
		}
		if (!b)
			continue;
		blk[b - 1].nodes++;
		in[i] = b;
	}
	*blkp = blk;
	blk = NULL;
	err = 0;
	free(in);
out_blk:
	free(blk);
out:
	return err;
}

/* ---- ordering ---------------------------------------------------------- */

struct frame_key {
	const char *name, *file;
	int line;
	uint32_t idx;
};

static int frame_key_cmp(const void *pa, const void *pb)
{
	const struct frame_key *a = pa, *b = pb;
	int c;

	c = strcmp(a->name, b->name);
	if (c)
		return c;
	c = strcmp(a->file, b->file);
	if (c)
		return c;
	if (a->line != b->line)
		return (a->line > b->line) - (a->line < b->line);
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Give every drawn node the rank of its frame in text order. */
static int tree_rank(struct tree *t, const struct profile *p, const uint8_t *on)
{
	struct frame_key *keys;
	uint32_t *rank, i, n = 0;
	int err = -ENOMEM;

	rank = malloc((size_t)p->nframes * sizeof(*rank) + 1);
	if (!rank)
		goto out;
	keys = malloc((size_t)p->nframes * sizeof(*keys) + 1);
	if (!keys)
		goto out_rank;
	for (i = 0; i < p->nframes; i++)
		rank[i] = UINT32_MAX;
	/* Only frames that are drawn need sorting. */
	for (i = 1; i < t->n; i++) {
		uint32_t fi = t->nodes[i].frame;
		const struct profile_frame *fr = &p->frames[fi];

		if (!on[i] || rank[fi] != UINT32_MAX)
			continue;
		rank[fi] = 0;
		keys[n].name = fr->name ? fr->name : "";
		keys[n].file = fr->file ? fr->file : "";
		keys[n].line = fr->line;
		keys[n].idx = fi;
		n++;
	}
	qsort(keys, n, sizeof(*keys), frame_key_cmp);
	for (i = 0; i < n; i++)
		rank[keys[i].idx] = i;
	for (i = 1; i < t->n; i++)
		if (on[i])
			t->nodes[i].rank = rank[t->nodes[i].frame];
	err = 0;
	free(keys);
out_rank:
	free(rank);
out:
	return err;
}

/* Drawn non-root nodes, grouped by parent and in text order within a
 * parent, so the children of any node are one contiguous run. */
struct child {
	uint32_t parent, rank, id;
};

static int child_cmp(const void *pa, const void *pb)
{
	const struct child *a = pa, *b = pb;

	if (a->parent != b->parent)
		return (a->parent > b->parent) - (a->parent < b->parent);
	return (a->rank > b->rank) - (a->rank < b->rank);
}

/* First index in c[0..n) whose parent is >= parent. */
static uint32_t child_lower(const struct child *c, uint32_t n, uint32_t parent)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c[mid].parent < parent)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- the document ------------------------------------------------------ */

struct svg {
	FILE *f;
	const struct profile *p;
	const struct tree *t;
	const struct block *blk;	/* merged blocks, item ids t->n + k */
	uint64_t total;
	uint32_t rows;		/* frame rows drawn */
	unsigned height;
	int inverted;
};

/* Merged blocks are grey, apart from every kind's hue family. */
static const struct rgb merged_colour = { 178, 178, 178 };

/* One box on the sample axis: [start, start + count) at depth.  merged is
 * how many frames a merged block stands for (data-m), 0 for a frame. */
static void put_box(struct svg *s, uint32_t depth, uint64_t start,
		    uint64_t count, const struct text *txt, struct rgb col,
		    uint32_t merged)
{
	uint64_t x = SVG_XPAD * 100 + px100_of(start, s->total);
	uint64_t w = px100_of(count, s->total);
	unsigned row = s->inverted ? depth : s->rows - 1 - depth;
	unsigned y = SVG_TOP + row * SVG_FRAME_H;
	char nbuf[32], pbuf[32];
	uint64_t room;
	size_t cut;

	fprintf(s->f, "<g data-d=\"%" PRIu32 "\" data-s=\"%" PRIu64
		"\" data-n=\"%" PRIu64 "\"", depth, start, count);
	if (merged)
		fprintf(s->f, " data-m=\"%" PRIu32 "\"", merged);
	fputs_unlocked("><title>", s->f);
	put_text(s->f, txt);
	fprintf(s->f, " " EM_DASH " %s sample%s (%s%%)</title><rect x=\"",
		fmt_count(nbuf, sizeof(nbuf), count), count == 1 ? "" : "s",
		fmt_pct(pbuf, sizeof(pbuf), count, s->total));
	put_px(s->f, x);
	fprintf(s->f, "\" y=\"%u\" width=\"", y);
	put_px(s->f, w);
	fprintf(s->f, "\" height=\"%u\" rx=\"2\" fill=\"rgb(%u,%u,%u)\"/>"
		"<text x=\"", SVG_FRAME_H - 1, col.r, col.g, col.b);
	put_px(s->f, x + SVG_TEXT_PAD * 100);
	fprintf(s->f, "\" y=\"%u\">", y + 11);

	/* Same rule as fit() in the script: whole text, or the first
	 * room - 2 characters (trailing spaces dropped) and "..", or nothing
	 * when fewer than three fit. */
	room = w > 2 * SVG_TEXT_PAD * 100 ?
		(w - 2 * SVG_TEXT_PAD * 100) / (SVG_CHAR_W * 100) : 0;
	if (room >= txt->ncp) {
		put_text(s->f, txt);
	} else if (room >= 3) {
		cut = utf8_prefix(txt->buf, txt->len, (uint32_t)room - 2);
		while (cut && txt->buf[cut - 1] == ' ')
			cut--;
		put_esc(s->f, txt->buf, cut);
		fputs_unlocked("..", s->f);
	}
	fputs_unlocked("</text></g>\n", s->f);
}

static void put_frame(struct svg *s, uint32_t id, uint64_t start)
{
	const struct node *nd = &s->t->nodes[id];
	const struct profile_frame *fr = id ? &s->p->frames[nd->frame] : NULL;
	struct text txt;
	struct rgb col;

	if (fr) {
		text_frame(&txt, fr);
		col = frame_colour(fr->kind, fr->name);
	} else {
		/* Neutral, so the root is not taken for a thread marker. */
		text_init(&txt);
		text_put(&txt, "all");
		col.r = col.g = col.b = 205;
	}
	put_box(s, nd->depth, start, nd->count, &txt, col, 0);
}

/* "3 narrow frames merged (17 with callees)": the numbers the block stands
 * for; the script leaves it out of searches by its data-m. */
static void put_block(struct svg *s, const struct block *b, uint64_t start)
{
	struct text txt;
	char buf[32];

	text_init(&txt);
	text_put(&txt, fmt_count(buf, sizeof(buf), b->frames));
	text_put(&txt, b->frames == 1 ? " narrow frame merged" :
		 " narrow frames merged");
	if (b->nodes > b->frames) {
		text_put(&txt, " (");
		text_put(&txt, fmt_count(buf, sizeof(buf), b->nodes));
		text_put(&txt, " with callees)");
	}
	put_box(s, s->t->nodes[b->parent].depth + 1, start, b->count, &txt,
		merged_colour, b->frames);
}

/* Samples under item id: a node, or merged block id - t->n. */
static uint64_t item_count(const struct svg *s, uint32_t id)
{
	return id < s->t->n ? s->t->nodes[id].count : s->blk[id - s->t->n].count;
}

/* Draw the drawn nodes depth first, children left to right in text order
 * and a node's merged block after them, so the bytes follow the picture,
 * not the order nodes were created in. */
static int put_frames(struct svg *s, const uint8_t *on, const struct marks *m)
{
	const struct tree *t = s->t;
	size_t nitems = (size_t)m->drawn + m->blocks;
	struct child *c;
	struct visit {
		uint32_t id;
		uint64_t start;
	} *stack;
	uint32_t i, nc = 0, sp = 0, lo, hi;
	uint64_t off;
	int err = -ENOMEM;

	if (!m->drawn)
		return 0;
	c = malloc(nitems * sizeof(*c));
	if (!c)
		goto out;
	stack = malloc(nitems * sizeof(*stack));
	if (!stack)
		goto out_c;
	for (i = 1; i < t->n; i++) {
		if (!on[i])
			continue;
		c[nc].parent = t->nodes[i].parent;
		c[nc].rank = t->nodes[i].rank;
		c[nc].id = i;
		nc++;
	}
	/* Ranks are below nframes, so a block sorts after its siblings. */
	for (i = 0; i < m->blocks; i++) {
		c[nc].parent = s->blk[i].parent;
		c[nc].rank = UINT32_MAX;
		c[nc].id = t->n + i;
		nc++;
	}
	qsort(c, nc, sizeof(*c), child_cmp);

	stack[sp].id = 0;
	stack[sp++].start = 0;
	while (sp) {
		struct visit v = stack[--sp];

		if (v.id >= t->n) {
			put_block(s, &s->blk[v.id - t->n], v.start);
			continue;
		}
		put_frame(s, v.id, v.start);
		lo = child_lower(c, nc, v.id);
		for (hi = lo, off = v.start; hi < nc && c[hi].parent == v.id; hi++)
			off += item_count(s, c[hi].id);
		/* Pushed last to first so the leftmost is drawn next. */
		while (hi-- > lo) {
			off -= item_count(s, c[hi].id);
			stack[sp].id = c[hi].id;
			stack[sp++].start = off;
		}
	}
	err = 0;
	free(stack);
out_c:
	free(c);
out:
	return err;
}

static const char svg_style[] =
"<style type=\"text/css\"><![CDATA[\n"
"text { font-family: Verdana, \"DejaVu Sans\", Arial, sans-serif; font-size: 12px; fill: #000; }\n"
"#title { font-size: 17px; text-anchor: middle; }\n"
"#subtitle { fill: #555; text-anchor: middle; }\n"
".legend { fill: #444; font-size: 11px; }\n"
".ctl { fill: #1d4f91; cursor: pointer; }\n"
".ctl:hover { text-decoration: underline; }\n"
".ctl.off { display: none; }\n"
"#details, #matched { fill: #222; }\n"
"#frames g { cursor: pointer; }\n"
"#frames text { pointer-events: none; }\n"
"#frames g:hover rect { stroke: #222; stroke-width: 0.8; }\n"
"#frames g.m rect { fill: rgb(230,0,230); }\n"
"#frames g.a rect { opacity: 0.55; }\n"
"#frames g.h { display: none; }\n"
"]]></style>\n";

/* The viewer.  Constant text: it reads everything about the profile from
 * attributes and <title> elements, never from its own source. */
static const char svg_script[] =
"<script type=\"text/ecmascript\"><![CDATA[\n"
"(function () {\n"
"\"use strict\";\n"
"var frames = document.getElementById(\"frames\");\n"
"var details = document.getElementById(\"details\");\n"
"var matched = document.getElementById(\"matched\");\n"
"var unzoomBtn = document.getElementById(\"unzoom\");\n"
"var searchBtn = document.getElementById(\"search\");\n"
"var total = +frames.getAttribute(\"data-total\");\n"
"var X0 = +frames.getAttribute(\"data-x\");\n"
"var W = +frames.getAttribute(\"data-w\");\n"
"var CW = +frames.getAttribute(\"data-cw\");\n"
"var PAD = +frames.getAttribute(\"data-pad\");\n"
"var SEP = \" \\u2014 \";\n"
"var all = [], zoomed = null, searching = false, lastTerm = \"\";\n"
"var gs = frames.getElementsByTagName(\"g\");\n"
"for (var i = 0; i < gs.length; i++) {\n"
"	var g = gs[i];\n"
"	var info = g.getElementsByTagName(\"title\")[0].textContent;\n"
"	var k = info.lastIndexOf(SEP);\n"
"	var f = {\n"
"		g: g, info: info, label: k >= 0 ? info.slice(0, k) : info,\n"
"		rect: g.getElementsByTagName(\"rect\")[0],\n"
"		text: g.getElementsByTagName(\"text\")[0],\n"
"		d: +g.getAttribute(\"data-d\"), s: +g.getAttribute(\"data-s\"),\n"
"		n: +g.getAttribute(\"data-n\"), m: g.hasAttribute(\"data-m\")\n"
"	};\n"
"	g.pyspycFrame = f;\n"
"	all.push(f);\n"
"}\n"
"function fit(s, w) {\n"
"	var room = Math.floor((w - 2 * PAD) / CW);\n"
"	if (room >= s.length) return s;\n"
"	if (room < 3) return \"\";\n"
"	var cut = room - 2, c = s.charCodeAt(cut - 1);\n"
"	if (c >= 0xd800 && c <= 0xdbff) cut--;\n"
"	return s.slice(0, cut).replace(/ +$/, \"\") + \"..\";\n"
"}\n"
"function place(f, x, w) {\n"
"	f.rect.setAttribute(\"x\", x.toFixed(2));\n"
"	f.rect.setAttribute(\"width\", w.toFixed(2));\n"
"	f.text.setAttribute(\"x\", (x + PAD).toFixed(2));\n"
"	f.text.textContent = fit(f.label, w);\n"
"}\n"
"function zoom(z) {\n"
"	var s0 = z.s, e0 = z.s + z.n;\n"
"	for (var i = 0; i < all.length; i++) {\n"
"		var f = all[i], cl = f.g.classList;\n"
"		if (f.d >= z.d && f.s >= s0 && f.s + f.n <= e0) {\n"
"			cl.remove(\"h\", \"a\");\n"
"			place(f, X0 + (f.s - s0) / z.n * W, f.n / z.n * W);\n"
"		} else if (f.d < z.d && f.s <= s0 && f.s + f.n >= e0) {\n"
"			cl.remove(\"h\");\n"
"			cl.add(\"a\");\n"
"			place(f, X0, W);\n"
"		} else {\n"
"			cl.add(\"h\");\n"
"		}\n"
"	}\n"
"	zoomed = z;\n"
"	unzoomBtn.classList.remove(\"off\");\n"
"}\n"
"function unzoom() {\n"
"	if (!zoomed) return;\n"
"	for (var i = 0; i < all.length; i++) {\n"
"		var f = all[i];\n"
"		f.g.classList.remove(\"h\", \"a\");\n"
"		place(f, X0 + f.s / total * W, f.n / total * W);\n"
"	}\n"
"	zoomed = null;\n"
"	unzoomBtn.classList.add(\"off\");\n"
"}\n"
"function pct(n) {\n"
"	return total ? (n * 100 / total).toFixed(2) : \"0.00\";\n"
"}\n"
"/* Whether f lies inside one of the disjoint ranges tops, sorted by start. */\n"
"function within(tops, f) {\n"
"	var lo = 0, hi = tops.length;\n"
"	while (lo < hi) {\n"
"		var mid = (lo + hi) >> 1;\n"
"		if (tops[mid].s <= f.s) lo = mid + 1; else hi = mid;\n"
"	}\n"
"	return lo > 0 && f.s + f.n <= tops[lo - 1].s + tops[lo - 1].n;\n"
"}\n"
"function search(term) {\n"
"	var re;\n"
"	try {\n"
"		re = new RegExp(term);\n"
"	} catch (e) {\n"
"		matched.textContent = \"Invalid regular expression\";\n"
"		return;\n"
"	}\n"
"	var hits = [], blocks = [];\n"
"	for (var i = 0; i < all.length; i++) {\n"
"		var f = all[i];\n"
"		if (f.m) blocks.push(f);\n"
"		if (f.d > 0 && !f.m && re.test(f.label)) {\n"
"			f.g.classList.add(\"m\");\n"
"			hits.push(f);\n"
"		} else {\n"
"			f.g.classList.remove(\"m\");\n"
"		}\n"
"	}\n"
"	/* Ranges nest or are disjoint: sorted by start, widest first, a\n"
"	 * hit inside the last counted one is already counted. */\n"
"	hits.sort(function (a, b) { return a.s - b.s || b.n - a.n; });\n"
"	var sum = 0, end = -1, tops = [];\n"
"	for (var j = 0; j < hits.length; j++) {\n"
"		if (hits[j].s >= end) {\n"
"			sum += hits[j].n;\n"
"			end = hits[j].s + hits[j].n;\n"
"			tops.push(hits[j]);\n"
"		}\n"
"	}\n"
"	/* Merged blocks keep no names: what they hold outside the hits\n"
"	 * may match too, and is shown as the bound it is. */\n"
"	var maybe = 0;\n"
"	for (var b = 0; b < blocks.length; b++)\n"
"		if (!within(tops, blocks[b])) maybe += blocks[b].n;\n"
"	matched.textContent = \"Matched: \" + pct(sum) + \"%\" + (maybe ?\n"
"		\" (+ up to \" + pct(maybe) + \"% in merged blocks)\" : \"\");\n"
"	searchBtn.textContent = \"Reset Search\";\n"
"	searching = true;\n"
"}\n"
"function resetSearch() {\n"
"	for (var i = 0; i < all.length; i++) all[i].g.classList.remove(\"m\");\n"
"	matched.textContent = \"\";\n"
"	searchBtn.textContent = \"Search\";\n"
"	searching = false;\n"
"}\n"
"function askSearch() {\n"
"	var term = window.prompt(\"Search for (regular expression):\", lastTerm);\n"
"	if (term === null || term === \"\") return;\n"
"	lastTerm = term;\n"
"	search(term);\n"
"}\n"
"function frameOf(n) {\n"
"	for (; n && n !== frames; n = n.parentNode)\n"
"		if (n.pyspycFrame) return n.pyspycFrame;\n"
"	return null;\n"
"}\n"
"frames.addEventListener(\"mouseover\", function (e) {\n"
"	var f = frameOf(e.target);\n"
"	if (f) details.textContent = f.info;\n"
"});\n"
"frames.addEventListener(\"mouseout\", function () {\n"
"	details.textContent = \"\";\n"
"});\n"
"frames.addEventListener(\"click\", function (e) {\n"
"	var f = frameOf(e.target);\n"
"	if (!f) return;\n"
"	if (f.d === 0) unzoom(); else zoom(f);\n"
"});\n"
"unzoomBtn.addEventListener(\"click\", unzoom);\n"
"searchBtn.addEventListener(\"click\", function () {\n"
"	if (searching) resetSearch(); else askSearch();\n"
"});\n"
"window.addEventListener(\"keydown\", function (e) {\n"
"	if ((e.ctrlKey || e.metaKey) && (e.key === \"f\" || e.key === \"F\")) {\n"
"		e.preventDefault();\n"
"		askSearch();\n"
"	} else if (e.key === \"Escape\") {\n"
"		if (searching) resetSearch(); else unzoom();\n"
"	}\n"
"});\n"
"window.pyspyc = { zoom: zoom, unzoom: unzoom, search: search,\n"
"	resetSearch: resetSearch, frames: all };\n"
"})();\n"
"]]></script>\n";

/* min: the drawing threshold in samples; capped: SVG_MAX_FRAMES raised it. */
static void put_header(struct svg *s, const struct out_opts *o,
		       const struct marks *m, uint64_t min, int capped)
{
	const struct profile *p = s->p;
	static const struct {
		int kind;
		const char *name, *label;
	} legend[] = {
		{ FRAME_APP, "app", "application" },
		{ FRAME_STDLIB, "stdlib", "standard library" },
		{ FRAME_LIBRARY, "lib", "libraries" },
		{ FRAME_SPECIAL, "marker", "pyspyc markers" },
	};
	struct text txt;
	struct rgb col;
	char buf[64], buf2[64], buf3[64];
	unsigned i, x;

	fprintf(s->f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\">\n"
		"<defs><linearGradient id=\"bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
		"<stop offset=\"5%%\" stop-color=\"#f6f6f6\"/>"
		"<stop offset=\"95%%\" stop-color=\"#ececdc\"/>"
		"</linearGradient></defs>\n",
		SVG_WIDTH, s->height, SVG_WIDTH, s->height);
	fputs_unlocked(svg_style, s->f);
	fprintf(s->f, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" "
		"fill=\"url(#bg)\"/>\n", SVG_WIDTH, s->height);

	text_init(&txt);
	if (o && o->title) {
		text_add(&txt, o->title, CAP_TITLE);
	} else {
		text_put(&txt, "pyspyc");
		if (p->command && p->command[0]) {
			text_put(&txt, ": ");
			text_add(&txt, p->command, CAP_TITLE);
		}
	}
	fprintf(s->f, "<text id=\"title\" x=\"%u\" y=\"24\">", SVG_WIDTH / 2);
	put_text(s->f, &txt);
	fputs_unlocked("</text>\n", s->f);

	fprintf(s->f, "<text id=\"subtitle\" x=\"%u\" y=\"42\">%s sample%s",
		SVG_WIDTH / 2, fmt_count(buf, sizeof(buf), s->total),
		s->total == 1 ? "" : "s");
	fprintf(s->f, " " MID_DOT " %s Hz",
		fmt_fixed(buf, sizeof(buf), p->rate_hz,
			  is_whole(p->rate_hz) ? 0 : 2));
	fprintf(s->f, " " MID_DOT " %s s",
		fmt_fixed(buf, sizeof(buf), p->duration_s, 2));
	if (p->pid > 0)
		fprintf(s->f, " " MID_DOT " pid %d", p->pid);
	if (m->blocks)
		fprintf(s->f, " " MID_DOT " %s frame%s under %s sample%s merged "
			"into %s block%s", fmt_count(buf, sizeof(buf), m->merged),
			m->merged == 1 ? "" : "s",
			fmt_count(buf2, sizeof(buf2), min), min == 1 ? "" : "s",
			fmt_count(buf3, sizeof(buf3), m->blocks),
			m->blocks == 1 ? "" : "s");
	if (capped)
		fprintf(s->f, " (threshold raised by the %s frame cap)",
			fmt_count(buf, sizeof(buf), SVG_MAX_FRAMES));
	if (s->t->folded)
		fprintf(s->f, " " MID_DOT " stacks deeper than %u folded",
			SVG_MAX_DEPTH);
	fputs_unlocked("</text>\n", s->f);

	fprintf(s->f, "<text id=\"unzoom\" class=\"ctl off\" x=\"%u\" y=\"24\">"
		"Reset Zoom</text>\n", SVG_XPAD);
	fprintf(s->f, "<text id=\"search\" class=\"ctl\" x=\"%u\" y=\"24\" "
		"text-anchor=\"end\">Search</text>\n", SVG_WIDTH - SVG_XPAD);

	for (i = 0, x = SVG_XPAD; i < sizeof(legend) / sizeof(legend[0]); i++) {
		col = frame_colour(legend[i].kind, legend[i].name);
		fprintf(s->f, "<rect x=\"%u\" y=\"52\" width=\"12\" height=\"12\" "
			"rx=\"2\" fill=\"rgb(%u,%u,%u)\"/><text class=\"legend\" "
			"x=\"%u\" y=\"62\">%s</text>\n", x, col.r, col.g, col.b,
			x + 16, legend[i].label);
		/* 11 px text averages under 7 px a character. */
		x += 16 + 7 * (unsigned)strlen(legend[i].label) + 18;
	}
	if (m->blocks)
		fprintf(s->f, "<rect x=\"%u\" y=\"52\" width=\"12\" height=\"12\" "
			"rx=\"2\" fill=\"rgb(%u,%u,%u)\"/><text class=\"legend\" "
			"x=\"%u\" y=\"62\">merged narrow frames</text>\n", x,
			merged_colour.r, merged_colour.g, merged_colour.b, x + 16);
}

int out_svg_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct tree t;
	struct svg s;
	struct marks m;
	struct block *blk = NULL;
	uint8_t *on;
	uint64_t min_count;
	int capped = 0, err;

	if (!p || !f || (p->nframes && !p->frames) || (p->nstacks && !p->stacks))
		return -EINVAL;
	err = tree_init(&t);
	if (err)
		goto out_tree;
	err = tree_build(&t, p);
	if (err)
		goto out_tree;
	/* The slots are only needed while building. */
	free(t.slots);
	t.slots = NULL;

	err = -ENOMEM;
	on = malloc(t.n);
	if (!on)
		goto out_tree;
	min_count = (t.nodes[0].count + SVG_MIN_FRAC - 1) / SVG_MIN_FRAC;
	if (!min_count)
		min_count = 1;
	tree_mark(&t, on, min_count, &m);
	while ((uint64_t)m.drawn + m.blocks > SVG_MAX_FRAMES) {
		min_count *= 2;
		capped = 1;
		tree_mark(&t, on, min_count, &m);
	}
	err = tree_rank(&t, p, on);
	if (err)
		goto out_on;
	err = tree_blocks(&t, on, &m, &blk);
	if (err)
		goto out_on;

	s.f = f;
	s.p = p;
	s.t = &t;
	s.blk = blk;
	s.total = t.nodes[0].count;
	s.rows = m.max_depth + 1;
	s.height = SVG_TOP + s.rows * SVG_FRAME_H + SVG_BOTTOM;
	s.inverted = o && o->inverted;

	put_header(&s, o, &m, min_count, capped);
	fprintf(f, "<g id=\"frames\" data-total=\"%" PRIu64 "\" data-x=\"%u\" "
		"data-w=\"%u\" data-cw=\"%u\" data-pad=\"%u\">\n", s.total,
		SVG_XPAD, SVG_FRAMES_W, SVG_CHAR_W, SVG_TEXT_PAD);
	err = put_frames(&s, on, &m);
	if (err)
		goto out_blk;
	fputs_unlocked("</g>\n", f);
	if (!m.drawn)
		fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\" "
			"fill=\"#666\">No samples were collected</text>\n",
			SVG_WIDTH / 2, SVG_TOP + 12);
	fprintf(f, "<text id=\"details\" x=\"%u\" y=\"%u\"></text>\n"
		"<text id=\"matched\" x=\"%u\" y=\"%u\" text-anchor=\"end\"></text>\n",
		SVG_XPAD, s.height - 12, SVG_WIDTH - SVG_XPAD, s.height - 12);
	fputs_unlocked(svg_script, f);
	fputs_unlocked("</svg>\n", f);

	err = (fflush(f) || ferror(f)) ? -EIO : 0;
out_blk:
	free(blk);
out_on:
	free(on);
out_tree:
	tree_release(&t);
	return err;
}
