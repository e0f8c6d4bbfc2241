/* in_pprof.c - pprof's profile.proto read back (input.h): ours and Go's,
 * gzip-compressed or plain.
 *
 * The wire format is decoded here by hand, as out_pprof.c encodes it: a
 * message is a run of (field number, wire type) keys with a varint, a
 * fixed 32 or 64 bits, or a length and that many bytes.  Fields may come
 * in any order, so the profile is read in two passes: the string table,
 * functions, locations, sample types and period first, then the samples.
 *
 * A sample's locations are leaf first, and a location's lines innermost
 * first (the last one is the caller the others were inlined into): the
 * stack, root first, is both reversed.  Its count is its value of the
 * "samples" (count) type when there is one; else, when a type is counted
 * in nanoseconds and the period is too, the value over the period; else
 * the first value.  The labels our writer sets become the markers they
 * came from: service_name the service's, tid and thread_name the
 * thread's; pid a process's only when the profile holds several pids.
 */
#define ZLIB_CONST
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pyspyc/input.h"
#include "pyspyc/pprof_proto.h"

/* The largest profile inflated (a gzip bomb stops here). */
#define MAX_INFLATED ((size_t)1 << 30)

struct span {
	const uint8_t *p;
	size_t n;
};

/* One field as read: its number, wire type, and value or bytes. */
struct field {
	uint32_t num;
	int wt;
	uint64_t v;
	struct span b;
};

struct fn {
	uint64_t id;
	int64_t name, file;
};

struct loc {
	uint64_t id;
	uint32_t first, n; /* its lines in pr->lines */
};

struct line {
	uint64_t fn;
	int64_t line;
};

struct pr {
	const uint8_t *base;
	struct span *str;
	size_t nstr, capstr;
	struct fn *fns;
	size_t nfn, capfn;
	struct loc *locs;
	size_t nloc, caploc;
	struct line *lines;
	size_t nline, capline;
	int64_t type_str[16][2]; /* sample types: type and unit string ids */
	uint32_t ntypes;
	struct span period_type;
	int64_t period;
	int64_t default_type;
	struct in_error *e;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct pr *r, const uint8_t *at, const char *fmt, ...)
{
	va_list ap;

	r->e->line = 0;
	r->e->offset = (uint64_t)(at - r->base);
	va_start(ap, fmt);
	vsnprintf(r->e->what, sizeof(r->e->what), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	int shift;

	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t c = *(*p)++;

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* The next field of the message [*p, end), or 1 at its end, or -EINVAL. */
static int next(struct pr *r, const uint8_t **p, const uint8_t *end, struct field *f)
{
	const uint8_t *at = *p;
	uint64_t key;

	if (*p == end)
		return 1;
	if (varint(p, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return bad(r, at, "a malformed field key: not a pprof profile");
	f->num = (uint32_t)(key >> 3);
	f->wt = (int)(key & 7);
	f->v = 0;
	f->b = (struct span){ NULL, 0 };
	switch (f->wt) {
	case WIRE_VARINT:
		if (varint(p, end, &f->v))
			return bad(r, at, "a varint runs past its message");
		return 0;
	case WIRE_64:
	case WIRE_32: {
		size_t n = f->wt == WIRE_64 ? 8 : 4;

		if ((size_t)(end - *p) < n)
			return bad(r, at, "a fixed-size field runs past its message");
		memcpy(&f->v, *p, n); /* little-endian, as the host */
		*p += n;
		return 0;
	}
	case WIRE_LEN:
		if (varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
			return bad(r, at, "a length runs past its message");
		f->b = (struct span){ *p, (size_t)f->v };
		*p += f->v;
		return 0;
	default:
		return bad(r, at, "wire type %d: not a pprof profile", f->wt);
	}
}

static int grow(void **a, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*a, c * size);
	if (!p)
		return -ENOMEM;
	*a = p;
	*cap = c;
	return 0;
}

static int read_value_type(struct pr *r, struct span m, int64_t *type, int64_t *unit)
{
	const uint8_t *p = m.p, *end = m.p + m.n;
	struct field f;
	int err;

	*type = *unit = 0;
	while (!(err = next(r, &p, end, &f)))
		if (f.wt == WIRE_VARINT && f.num == VALUE_TYPE_TYPE)
			*type = (int64_t)f.v;
		else if (f.wt == WIRE_VARINT && f.num == VALUE_TYPE_UNIT)
			*unit = (int64_t)f.v;
	return err < 0 ? err : 0;
}

static int read_function(struct pr *r, struct span m)
{
	const uint8_t *p = m.p, *end = m.p + m.n;
	struct fn fn = { 0 };
	struct field f;
	int err;

	while (!(err = next(r, &p, end, &f))) {
		if (f.wt != WIRE_VARINT)
			continue;
		if (f.num == FUNCTION_ID)
			fn.id = f.v;
		else if (f.num == FUNCTION_NAME)
			fn.name = (int64_t)f.v;
		else if (f.num == FUNCTION_FILENAME)
			fn.file = (int64_t)f.v;
	}
	if (err < 0)
		return err;
	if (grow((void **)&r->fns, &r->capfn, r->nfn, sizeof(*r->fns)))
		return -ENOMEM;
	r->fns[r->nfn++] = fn;
	return 0;
}

static int read_location(struct pr *r, struct span m)
{
	const uint8_t *p = m.p, *end = m.p + m.n;
	struct loc loc = { .first = (uint32_t)r->nline };
	struct field f;
	int err;

	if (r->nline > UINT32_MAX - (m.n + 1))
		return bad(r, m.p, "too many lines in all");
	while (!(err = next(r, &p, end, &f))) {
		if (f.num == LOCATION_ID && f.wt == WIRE_VARINT) {
			loc.id = f.v;
		} else if (f.num == LOCATION_LINE && f.wt == WIRE_LEN) {
			const uint8_t *q = f.b.p, *qe = f.b.p + f.b.n;
			struct line ln = { 0 };
			struct field g;

			while (!(err = next(r, &q, qe, &g)))
				if (g.wt == WIRE_VARINT && g.num == LINE_FUNCTION_ID)
					ln.fn = g.v;
				else if (g.wt == WIRE_VARINT && g.num == LINE_LINE)
					ln.line = (int64_t)g.v;
			if (err < 0)
				return err;
			if (grow((void **)&r->lines, &r->capline, r->nline, sizeof(*r->lines)))
				return -ENOMEM;
			r->lines[r->nline++] = ln;
			loc.n++;
		}
	}
	if (err < 0)
		return err;
	if (grow((void **)&r->locs, &r->caploc, r->nloc, sizeof(*r->locs)))
		return -ENOMEM;
	r->locs[r->nloc++] = loc;
	return 0;
}

static int by_fn_id(const void *a, const void *b)
{
	const struct fn *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int by_loc_id(const void *a, const void *b)
{
	const struct loc *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* String s of the table, or NULL when out of range. */
static const struct span *string_at(const struct pr *r, int64_t s)
{
	return s >= 0 && (uint64_t)s < r->nstr ? &r->str[s] : NULL;
}

static int span_is(const struct span *s, const char *text)
{
	return s && s->n == strlen(text) && !memcmp(s->p, text, s->n);
}

/* Pass one: everything but the samples. */
static int read_tables(struct pr *r, const uint8_t *msg, size_t len)
{
	const uint8_t *p = msg, *end = msg + len;
	struct field f;
	int err;

	while (!(err = next(r, &p, end, &f))) {
		if (f.num == PROFILE_STRING_TABLE && f.wt == WIRE_LEN) {
			if (grow((void **)&r->str, &r->capstr, r->nstr, sizeof(*r->str)))
				return -ENOMEM;
			r->str[r->nstr++] = f.b;
		} else if (f.num == PROFILE_FUNCTION && f.wt == WIRE_LEN) {
			err = read_function(r, f.b);
		} else if (f.num == PROFILE_LOCATION && f.wt == WIRE_LEN) {
			err = read_location(r, f.b);
		} else if (f.num == PROFILE_SAMPLE_TYPE && f.wt == WIRE_LEN) {
			if (r->ntypes == sizeof(r->type_str) / sizeof(r->type_str[0]))
				return bad(r, f.b.p, "more than %u sample types", r->ntypes);
			err = read_value_type(r, f.b, &r->type_str[r->ntypes][0],
					      &r->type_str[r->ntypes][1]);
			r->ntypes++;
		} else if (f.num == PROFILE_PERIOD_TYPE && f.wt == WIRE_LEN) {
			r->period_type = f.b;
		} else if (f.num == PROFILE_PERIOD && f.wt == WIRE_VARINT) {
			r->period = (int64_t)f.v;
		} else if (f.num == PROFILE_DEFAULT_SAMPLE_TYPE && f.wt == WIRE_VARINT) {
			r->default_type = (int64_t)f.v;
		}
		if (err)
			return err;
	}
	if (err < 0)
		return err;
	if (!r->nstr || r->str[0].n)
		return bad(r, msg, "the string table does not start with \"\": not a pprof "
			   "profile");
	if (r->nfn)
		qsort(r->fns, r->nfn, sizeof(*r->fns), by_fn_id);
	if (r->nloc)
		qsort(r->locs, r->nloc, sizeof(*r->locs), by_loc_id);
	return 0;
}

/* Which value a sample's count is, and the divisor that makes it one:
 * *index, *per (1, or the period for a time in nanoseconds). */
static int pick_value(struct pr *r, const uint8_t *msg, uint32_t *index, int64_t *per,
		      double *rate)
{
	int64_t pt = 0, pu = 0;
	uint32_t i;

	*rate = 0;
	if (r->period_type.p && read_value_type(r, r->period_type, &pt, &pu))
		return -EINVAL;
	if (span_is(string_at(r, pu), "nanoseconds") && r->period > 0)
		*rate = 1e9 / (double)r->period;
	*per = 1;
	for (i = 0; i < r->ntypes; i++)
		if (span_is(string_at(r, r->type_str[i][0]), "samples") &&
		    span_is(string_at(r, r->type_str[i][1]), "count")) {
			*index = i;
			return 0;
		}
	for (i = 0; i < r->ntypes; i++)
		if (span_is(string_at(r, r->type_str[i][1]), "nanoseconds") && *rate > 0) {
			*index = i;
			*per = r->period;
			return 0;
		}
	if (!r->ntypes)
		return bad(r, msg, "no sample type");
	for (i = 0; i < r->ntypes; i++)
		if (r->default_type && r->type_str[i][0] == r->default_type) {
			*index = i;
			return 0;
		}
	*index = 0;
	return 0;
}

/* Intern the string span s (NULL: ""). */
static int intern(struct stacktab *t, const struct span *s, uint32_t *id)
{
	return stacktab_string(t, s ? (const char *)s->p : "", s ? s->n : 0, id);
}

/* A marker frame: kind, the label shown, the bare text and line. */
static int marker(struct stacktab *t, uint32_t kind, const char *label, const struct span *bare,
		  int line, uint32_t *id)
{
	struct frame_key k = { .kind = kind, .line = line };
	int err = stacktab_string(t, label, strlen(label), &k.name);

	if (!err)
		err = intern(t, bare, &k.file);
	return err ? err : stacktab_frame(t, &k, id);
}

/* The frame of one line of a location. */
static int line_frame(struct stacktab *t, struct pr *r, const struct line *ln,
		      const uint8_t *at, uint32_t *id)
{
	const struct fn key = { .id = ln->fn };
	const struct fn *fn = r->nfn ? bsearch(&key, r->fns, r->nfn, sizeof(*r->fns), by_fn_id)
				     : NULL;
	const struct span *name, *file;

	if (!fn)
		return bad(r, at, "function id %" PRIu64 " is not defined", ln->fn);
	name = string_at(r, fn->name);
	file = string_at(r, fn->file);
	if (!name || !file)
		return bad(r, at, "a function's name or file is not in the string table");
	return in_frame(t, (const char *)name->p, name->n, (const char *)file->p, file->n,
			ln->line > 0 && ln->line <= INT32_MAX ? (int32_t)ln->line : 0, id);
}

/* The labels of a sample that name where it ran. */
struct owner {
	int64_t pid, tid;
	const struct span *thread, *service;
};

static int read_labels(struct pr *r, struct span m, struct owner *o)
{
	const uint8_t *p = m.p, *end = m.p + m.n;
	int64_t key = 0, str = 0, num = 0;
	const struct span *k;
	struct field f;
	int err;

	while (!(err = next(r, &p, end, &f)))
		if (f.wt == WIRE_VARINT && f.num == LABEL_KEY)
			key = (int64_t)f.v;
		else if (f.wt == WIRE_VARINT && f.num == LABEL_STR)
			str = (int64_t)f.v;
		else if (f.wt == WIRE_VARINT && f.num == LABEL_NUM)
			num = (int64_t)f.v;
	if (err < 0)
		return err;
	k = string_at(r, key);
	if (span_is(k, "pid"))
		o->pid = num;
	else if (span_is(k, "tid"))
		o->tid = num;
	else if (span_is(k, "thread_name"))
		o->thread = string_at(r, str);
	else if (span_is(k, "service_name"))
		o->service = string_at(r, str);
	return 0;
}

/* A repeated integer field's values, packed or one, into v (cap of them);
 * how many, or -1 past cap. */
static int64_t ints(struct pr *r, const struct field *f, uint64_t *v, size_t cap, size_t n)
{
	const uint8_t *p, *end;

	if (f->wt == WIRE_VARINT) {
		if (n == cap)
			return -1;
		v[n++] = f->v;
		return (int64_t)n;
	}
	for (p = f->b.p, end = f->b.p + f->b.n; p < end;) {
		if (n == cap)
			return -1;
		if (varint(&p, end, &v[n++]))
			return bad(r, f->b.p, "a packed varint runs past its field"), -2;
	}
	return (int64_t)n;
}

struct scratch {
	uint64_t locs[IN_MAX_DEPTH], vals[16];
	uint32_t ids[IN_MAX_DEPTH + 3];
};

static int read_sample(struct stacktab *t, struct pr *r, struct span m, uint32_t index,
		       int64_t per, int pids, struct scratch *sc, struct in_totals *tot)
{
	const uint8_t *p = m.p, *end = m.p + m.n;
	struct owner o = { 0 };
	size_t nloc = 0, nval = 0, i;
	uint32_t depth = 0, nmark;
	uint64_t count;
	struct field f;
	int err;

	while (!(err = next(r, &p, end, &f))) {
		int64_t n;

		if (f.num == SAMPLE_LOCATION_ID && (f.wt == WIRE_VARINT || f.wt == WIRE_LEN)) {
			n = ints(r, &f, sc->locs, IN_MAX_DEPTH, nloc);
			if (n == -1)
				return bad(r, m.p, "more than %d locations in one sample",
					   IN_MAX_DEPTH);
			if (n < 0)
				return -EINVAL;
			nloc = (size_t)n;
		} else if (f.num == SAMPLE_VALUE && (f.wt == WIRE_VARINT || f.wt == WIRE_LEN)) {
			n = ints(r, &f, sc->vals, 16, nval);
			if (n == -1)
				return bad(r, m.p, "more than 16 values in one sample");
			if (n < 0)
				return -EINVAL;
			nval = (size_t)n;
		} else if (f.num == SAMPLE_LABEL && f.wt == WIRE_LEN) {
			err = read_labels(r, f.b, &o);
			if (err)
				return err;
		}
	}
	if (err < 0)
		return err;
	err = 0;
	if (index >= nval)
		return bad(r, m.p, "a sample has %zu values, not one per sample type", nval);
	if ((int64_t)sc->vals[index] < 0)
		return bad(r, m.p, "a negative sample value");
	/* A time over the period, to the nearest sample. */
	count = sc->vals[index] / (uint64_t)per;
	if (per > 1 && sc->vals[index] % (uint64_t)per >= ((uint64_t)per + 1) / 2)
		count++;
	if (!count || !nloc)
		return 0;
	if (count > IN_MAX_COUNT || tot->samples + count > IN_MAX_COUNT)
		return bad(r, m.p, "more than 2^53 samples in all");
	if (o.service) {
		struct frame_key k = { .kind = FRAME_SERVICE };

		err = intern(t, o.service, &k.file);
		k.name = k.file; /* the service's name, shown and as the label */
		if (!err)
			err = stacktab_frame(t, &k, &sc->ids[depth++]);
	}
	if (!err && pids && o.pid > 0 && o.pid <= INT32_MAX) {
		char label[64];

		snprintf(label, sizeof(label), "process %" PRId64 ":\"?\"", o.pid);
		err = marker(t, FRAME_PROCESS, label, &(struct span){ (const uint8_t *)"?", 1 },
			     (int)o.pid, &sc->ids[depth++]);
	}
	if (!err && (o.tid > 0 || o.thread)) {
		char label[600];
		int tid = o.tid > 0 && o.tid <= INT32_MAX ? (int)o.tid : 0;

		snprintf(label, sizeof(label), "thread %d \"%.*s\"", tid,
			 o.thread ? (int)(o.thread->n < 512 ? o.thread->n : 512) : 0,
			 o.thread ? (const char *)o.thread->p : "");
		err = marker(t, FRAME_THREAD, label, o.thread, tid, &sc->ids[depth++]);
	}
	nmark = depth;
	for (i = nloc; !err && i-- > 0;) {
		const struct loc key = { .id = sc->locs[i] };
		const struct loc *loc = r->nloc ? bsearch(&key, r->locs, r->nloc,
							  sizeof(*r->locs), by_loc_id)
						: NULL;
		uint32_t j;

		if (!loc)
			return bad(r, m.p, "location id %" PRIu64 " is not defined", sc->locs[i]);
		for (j = loc->n; !err && j-- > 0;) {
			if (depth == IN_MAX_DEPTH)
				return bad(r, m.p, "more than %d frames in one stack",
					   IN_MAX_DEPTH);
			err = line_frame(t, r, &r->lines[loc->first + j], m.p, &sc->ids[depth++]);
		}
	}
	/* Locations without lines: no frame to count it in (our writers
	 * leave out stacks of markers alone). */
	if (!err && depth == nmark)
		return 0;
	if (!err)
		err = stacktab_add(t, sc->ids, depth, count, NULL);
	if (!err) {
		tot->samples += count;
		tot->stacks++;
	}
	return err;
}

/* More than one pid among the samples' labels? */
static int several_pids(struct pr *r, const uint8_t *msg, size_t len)
{
	const uint8_t *p = msg, *end = msg + len;
	int64_t first = 0;
	struct field f;

	while (next(r, &p, end, &f) == 0) {
		const uint8_t *q, *qe;
		struct field g;

		if (f.num != PROFILE_SAMPLE || f.wt != WIRE_LEN)
			continue;
		for (q = f.b.p, qe = f.b.p + f.b.n; next(r, &q, qe, &g) == 0;) {
			struct owner o = { 0 };

			if (g.num != SAMPLE_LABEL || g.wt != WIRE_LEN || read_labels(r, g.b, &o) ||
			    o.pid <= 0)
				continue;
			if (first && o.pid != first)
				return 1;
			first = o.pid;
		}
	}
	return 0;
}

static int decode(struct stacktab *t, const uint8_t *msg, size_t len, struct pr *r,
		  struct in_totals *tot)
{
	const uint8_t *p = msg, *end = msg + len;
	struct scratch *sc;
	uint32_t index = 0;
	int64_t per = 1;
	double rate;
	struct field f;
	int err, pids;

	err = read_tables(r, msg, len);
	if (!err)
		err = pick_value(r, msg, &index, &per, &rate);
	if (err)
		return err;
	if (rate > 0 && tot->rate > 0 && (rate > tot->rate * 1.000001 ||
					  rate < tot->rate * 0.999999))
		return bad(r, msg, "sampled at %g Hz, and the inputs before at %g Hz: "
			   "their samples do not add up", rate, tot->rate);
	sc = malloc(sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	pids = several_pids(r, msg, len);
	while (!(err = next(r, &p, end, &f)))
		if (f.num == PROFILE_SAMPLE && f.wt == WIRE_LEN &&
		    (err = read_sample(t, r, f.b, index, per, pids, sc, tot)))
			break;
	free(sc);
	if (err < 0)
		return err;
	if (rate > 0)
		tot->rate = rate;
	return 0;
}

/* Inflate a gzip or zlib stream into *out.  0, -EINVAL or -ENOMEM. */
static int inflate_all(const uint8_t *in, size_t len, uint8_t **out, size_t *olen,
		       struct in_error *e)
{
	z_stream z;
	size_t cap = len * 4 + 4096, n = 0;
	uint8_t *buf = NULL;
	int zr = Z_OK;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return -ENOMEM;
	z.next_in = in;
	z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	while (zr != Z_STREAM_END) {
		if (n == cap || !buf) {
			uint8_t *nb;

			if (buf)
				cap *= 2;
			if (cap > MAX_INFLATED)
				cap = MAX_INFLATED;
			if (buf && n == cap) {
				inflateEnd(&z);
				free(buf);
				snprintf(e->what, sizeof(e->what), "larger than %zu MiB inflated",
					 MAX_INFLATED >> 20);
				e->offset = len;
				return -EINVAL;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				inflateEnd(&z);
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		z.next_out = buf + n;
		z.avail_out = (uInt)(cap - n > UINT32_MAX ? UINT32_MAX : cap - n);
		zr = inflate(&z, Z_NO_FLUSH);
		n = (size_t)(z.next_out - buf);
		if (zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && n == cap)) {
			e->offset = (uint64_t)(z.next_in - in);
			snprintf(e->what, sizeof(e->what), "the gzip stream is corrupt or cut "
				 "short (%s)", z.msg ? z.msg : "no more input");
			inflateEnd(&z);
			free(buf);
			return -EINVAL;
		}
	}
	inflateEnd(&z);
	*out = buf;
	*olen = n;
	return 0;
}

int in_pprof_read(struct stacktab *t, const char *data, size_t len, struct in_totals *tot,
		  struct in_error *e)
{
	const uint8_t *msg = (const uint8_t *)data;
	uint8_t *inflated = NULL;
	struct pr r = { .e = e };
	size_t n = len;
	int err;

	e->line = 0;
	if (len >= 2 && msg[0] == 0x1f && msg[1] == 0x8b) {
		err = inflate_all(msg, len, &inflated, &n, e);
		if (err)
			return err;
		msg = inflated;
	}
	r.base = msg;
	err = decode(t, msg, n, &r, tot);
	e->inflated = inflated != NULL;
	free(r.str);
	free(r.fns);
	free(r.locs);
	free(r.lines);
	free(inflated);
	return err;
}

int in_is_pprof(const char *data, size_t len)
{
	const uint8_t *p = (const uint8_t *)data;
	size_t i;

	/* gzip; or a plain message that starts with a length-delimited field
	 * of the profile's own (a key byte that text does not start with)
	 * and has bytes no text has within its first 64. */
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return 1;
	if (len < 2 || (p[0] & 7) != WIRE_LEN || p[0] >> 3 < 1 || p[0] >> 3 > 14)
		return 0;
	for (i = 1; i < len && i < 64; i++)
		if (p[i] < 0x09 || (p[i] > 0x0d && p[i] < 0x20))
			return 1;
	return 0;
}
