/* out_pprof.c - pprof's profile.proto, gzip-compressed (.pb.gz), for
 * `go tool pprof` and the other readers of the pprof format.
 *
 * The protobuf is encoded here by hand.  The wire format is small and
 * stable (varints and length-delimited fields): the encoder below is about
 * 80 lines and the messages we write some 200 more, against a code
 * generator in the build and a protobuf library as a run-time dependency.
 * We choose no protobuf library.
 * Field numbers are those of github.com/google/pprof/proto/profile.proto.
 *
 * How a profile maps onto the document:
 *
 *   sample_type  [samples/count, cpu/nanoseconds]; period_type cpu/nanoseconds;
 *                period = 1e9 / rate (ns); time_nanos and duration_nanos from
 *                the run; the target's command line as the one comment.
 *   sample       one per profile stack, location ids leaf first (pprof's
 *                order; profile stacks are root first), values [count,
 *                count * period].  The root markers are not locations: they
 *                become labels pid (num), tid (num) and thread_name (str),
 *                and the agent's service marker service_name (str);
 *                an id of 0 means unknown and is left out, and so is an empty
 *                thread name.  Stacks with nothing but markers are skipped.
 *                The caller's labels (out_opts: the agent's service_name,
 *                hostname, ...) go on every sample.
 *                Other FRAME_SPECIAL frames ("[truncated]") stay locations.
 *   location     one per profile frame used, one line {function, line}.
 *   function     one per (name, file); start_line 0 (frames carry the
 *                sampled line, not the def line).  system_name is left
 *                empty on purpose: pprof takes a function whose system_name
 *                equals its name as not yet demangled and runs its C++
 *                heuristics on it, which strip "<...>" and so show Python's
 *                <module>, <lambda> and <listcomp> as "<unknown>".
 *
 * Locations, functions and strings are numbered in order of first use,
 * walking the stacks in profile order, so the same profile gives the same
 * bytes.  Strings are interned through strtab (the string table is its ids
 * in order: "" first, as pprof requires).  A proto3 string must be valid
 * UTF-8 and strict parsers reject the whole profile otherwise: each byte
 * that is not part of valid UTF-8 becomes U+FFFD.
 *
 * Fields go out in field-number order.  Each top-level message is encoded
 * into one scratch buffer and streamed through zlib, so memory is the tables
 * (O(frames)) plus the largest single message (a deep stack's sample).
 */
#define ZLIB_CONST
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pyspyc/output.h"
#include "pyspyc/pprof_proto.h"
#include "pyspyc/strtab.h"
#include "pyspyc/utf8.h"

/* Room kept for the length of a message still being encoded: 5 varint
 * bytes carry lengths below 2^35. */
#define PB_LEN_ROOM 5
/* Scratch bytes gathered before they are handed to zlib. */
#define FLUSH_AT 65536

/* ---- protobuf encoding ---------------------------------------------- */

/* The message being encoded.  err is sticky: once a grow failed, later
 * writes are dropped and the caller finds err at its next flush. */
struct pb {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static int pb_reserve(struct pb *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *nb;

	if (b->err)
		return b->err;
	if (b->cap - b->len >= n)
		return 0;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->err = -ENOMEM;
			return b->err;
		}
		cap *= 2;
	}
	nb = realloc(b->buf, cap);
	if (!nb) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->buf = nb;
	b->cap = cap;
	return 0;
}

/* Encode v at out (room for 10 bytes); returns the bytes used. */
static size_t varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	if (!pb_reserve(b, 10))
		b->len += varint_put(b->buf + b->len, v);
}

static void pb_key(struct pb *b, unsigned field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

/* A varint field (uint64, or int64 as two's complement).  proto3 leaves a
 * zero out: readers take the default. */
static void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, WIRE_VARINT);
	pb_varint(b, v);
}

static void pb_bytes(struct pb *b, unsigned field, const void *s, size_t n)
{
	pb_key(b, field, WIRE_LEN);
	pb_varint(b, n);
	if (!pb_reserve(b, n)) {
		memcpy(b->buf + b->len, s, n);
		b->len += n;
	}
}

/* Start a length-delimited field (a message, a packed list) whose length
 * is not known yet; returns the mark pb_close() takes. */
static size_t pb_open(struct pb *b, unsigned field)
{
	pb_key(b, field, WIRE_LEN);
	if (pb_reserve(b, PB_LEN_ROOM))
		return 0;
	b->len += PB_LEN_ROOM;
	return b->len;
}

/* End the field opened at mark: its length goes in front of it and the
 * body moves down over the room the length did not use. */
static void pb_close(struct pb *b, size_t mark)
{
	uint8_t len[10];
	size_t n, k;

	if (b->err)
		return;
	n = b->len - mark;
	if (n >> (7 * PB_LEN_ROOM)) {
		b->err = -EFBIG;
		return;
	}
	k = varint_put(len, n);
	memmove(b->buf + mark - PB_LEN_ROOM + k, b->buf + mark, n);
	memcpy(b->buf + mark - PB_LEN_ROOM, len, k);
	b->len = mark - PB_LEN_ROOM + k + n;
}

/* ---- gzip stream ------------------------------------------------------ */

struct gz {
	z_stream z;
	FILE *f;
	unsigned char out[16384];
};

/* Compress n bytes at data into the file; flush Z_FINISH ends the stream
 * (n may be 0).  Returns 0 or -errno. */
static int gz_write(struct gz *g, const void *data, size_t n, int flush)
{
	const unsigned char *p = data;

	for (;;) {
		uInt chunk = n > UINT_MAX ? UINT_MAX : (uInt)n;
		size_t have, used;
		int rc;

		g->z.next_in = p;
		g->z.avail_in = chunk;
		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		rc = deflate(&g->z, n > chunk ? Z_NO_FLUSH : flush);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return -EIO;
		have = sizeof(g->out) - g->z.avail_out;
		used = chunk - g->z.avail_in;
		if (have) {
			errno = 0;
			if (fwrite(g->out, 1, have, g->f) != have)
				return errno ? -errno : -EIO;
		}
		if (used) /* p may be NULL with nothing (the end of the stream) */
			p += used;
		n -= used;
		if (rc == Z_STREAM_END)
			return 0;
		/* Room was left: deflate took all it was given and holds
		 * nothing more back for now. */
		if (flush == Z_NO_FLUSH && !n && g->z.avail_out)
			return 0;
		/* Z_BUF_ERROR is "no progress possible": never expected with
		 * room to write, but never loop on it either. */
		if (rc == Z_BUF_ERROR && !have && !used)
			return -EIO;
	}
}

/* ---- the writer ------------------------------------------------------- */

struct pprof {
	const struct profile *p;
	struct strtab *strs;   /* the string table: id = index */
	struct strtab *funcs;  /* (name, file) string ids: id + 1 = Function.id */
	uint32_t *loc_of;      /* frame index -> Location.id, 0 while unused */
	uint32_t *loc_frame;   /* Location.id - 1 -> frame index */
	uint32_t *loc_func;    /* Location.id - 1 -> Function.id */
	uint32_t nlocs;
	char *clean;           /* a string with its invalid UTF-8 replaced */
	size_t clean_cap;
	struct pb msg;
	int64_t period;
	uint32_t s_samples, s_count, s_cpu, s_ns, s_pid, s_tid, s_thread_name;
	uint32_t s_command;
	uint32_t s_service;    /* "service_name"; 0 with no service marker */
	const struct out_opts *o;
	uint32_t lab[2 * OUT_LABELS_MAX]; /* the caller's labels' string ids */
	size_t nlab;          /* how many of o's labels go out */
};

/* s, or a copy in w->clean with U+FFFD for each byte that is not part of
 * valid UTF-8; *len is the result's length.  NULL when out of memory. */
static const char *clean_utf8(struct pprof *w, const char *s, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, out = 0;
	uint32_t cp;

	*len = n;
	while (i < n && u[i] < 0x80)
		i++;
	while (i < n) {
		size_t k = utf8_seq(u + i, n - i, &cp);

		if (!k)
			break;
		i += k;
	}
	if (i == n)
		return s;
	/* Each bad byte grows to three. */
	if (w->clean_cap < 3 * n) {
		char *nc = realloc(w->clean, 3 * n);

		if (!nc)
			return NULL;
		w->clean = nc;
		w->clean_cap = 3 * n;
	}
	for (i = 0; i < n;) {
		size_t k = utf8_seq(u + i, n - i, &cp);

		if (k) {
			memcpy(w->clean + out, s + i, k);
			out += k;
			i += k;
		} else {
			memcpy(w->clean + out, UTF8_REPLACEMENT, 3);
			out += 3;
			i++;
		}
	}
	*len = out;
	return w->clean;
}

/* The string table index of s. */
static int intern(struct pprof *w, const char *s, uint32_t *id)
{
	size_t len;
	const char *c = clean_utf8(w, s, &len);

	return c ? strtab_intern(w->strs, c, len, id) : -ENOMEM;
}

/* The Location.id of frame, numbering it (and its Function) at first use. */
static int location(struct pprof *w, uint32_t frame, uint32_t *id)
{
	const struct profile_frame *fr;
	uint32_t key[2], fid;
	int err;

	if (frame >= w->p->nframes)
		return -EINVAL;
	if (w->loc_of[frame]) {
		*id = w->loc_of[frame];
		return 0;
	}
	fr = &w->p->frames[frame];
	err = intern(w, fr->name, &key[0]);
	if (!err)
		err = intern(w, fr->file, &key[1]);
	if (!err)
		err = strtab_intern(w->funcs, key, sizeof(key), &fid);
	if (err)
		return err;
	w->loc_frame[w->nlocs] = frame;
	w->loc_func[w->nlocs] = fid + 1;
	*id = w->loc_of[frame] = ++w->nlocs;
	return 0;
}

/* Hand what msg gathered to zlib once there is enough of it (or always,
 * with force). */
static int flush_msg(struct pprof *w, struct gz *g, int force)
{
	int err = w->msg.err;

	if (!err && (force || w->msg.len >= FLUSH_AT)) {
		err = gz_write(g, w->msg.buf, w->msg.len, Z_NO_FLUSH);
		w->msg.len = 0;
	}
	return err;
}

/* Nanoseconds of v (a count of ns as a double), clamped to int64. */
static int64_t to_ns(double v)
{
	if (!(v > 0))
		return 0;
	if (v >= 9.2e18)
		return INT64_MAX;
	return (int64_t)llround(v);
}

static int64_t value_of(uint64_t count, int64_t period)
{
	int64_t c = count > INT64_MAX ? INT64_MAX : (int64_t)count;

	if (period > 0 && c > INT64_MAX / period)
		return INT64_MAX;
	return c * period;
}

static void value_type(struct pb *b, unsigned field, uint32_t type, uint32_t unit)
{
	size_t m = pb_open(b, field);

	pb_uint(b, VALUE_TYPE_TYPE, type);
	pb_uint(b, VALUE_TYPE_UNIT, unit);
	pb_close(b, m);
}

static void label(struct pb *b, uint32_t key, uint32_t str, int64_t num)
{
	size_t m = pb_open(b, SAMPLE_LABEL);

	pb_uint(b, LABEL_KEY, key);
	pb_uint(b, LABEL_STR, str);
	pb_uint(b, LABEL_NUM, (uint64_t)num);
	pb_close(b, m);
}

static int put_sample(struct pprof *w, const struct profile_stack *s)
{
	const struct profile *p = w->p;
	struct pb *b = &w->msg;
	uint32_t thread, name = 0, service = 0, j, nmark;
	size_t m, mlist;
	int pid, tid, err = 0;

	nmark = profile_stack_owner(p, s, &pid, &tid, &thread);
	if (nmark >= s->depth)
		return 0;
	if (thread != UINT32_MAX && p->frames[thread].file[0])
		err = intern(w, p->frames[thread].file, &name);
	if (!err && p->frames[s->frames[0]].kind == FRAME_SERVICE && w->s_service)
		err = intern(w, p->frames[s->frames[0]].file, &service);
	m = pb_open(b, PROFILE_SAMPLE);
	mlist = pb_open(b, SAMPLE_LOCATION_ID);
	for (j = s->depth; !err && j-- > nmark;) {
		uint32_t id = 0;

		err = location(w, s->frames[j], &id);
		pb_varint(b, id);
	}
	pb_close(b, mlist);
	mlist = pb_open(b, SAMPLE_VALUE);
	pb_varint(b, (uint64_t)value_of(s->count, 1));
	pb_varint(b, (uint64_t)value_of(s->count, w->period));
	pb_close(b, mlist);
	if (pid > 0)
		label(b, w->s_pid, 0, pid);
	if (tid > 0)
		label(b, w->s_tid, 0, tid);
	if (name)
		label(b, w->s_thread_name, name, 0);
	if (service)
		label(b, w->s_service, service, 0);
	for (j = 0; j < w->nlab; j++)
		label(b, w->lab[2 * j], w->lab[2 * j + 1], 0);
	pb_close(b, m);
	return err;
}

static void put_location(struct pprof *w, uint32_t i)
{
	const struct profile_frame *fr = &w->p->frames[w->loc_frame[i]];
	struct pb *b = &w->msg;
	size_t m = pb_open(b, PROFILE_LOCATION), ml;

	pb_uint(b, LOCATION_ID, i + 1);
	ml = pb_open(b, LOCATION_LINE);
	pb_uint(b, LINE_FUNCTION_ID, w->loc_func[i]);
	pb_uint(b, LINE_LINE, fr->line > 0 ? (uint64_t)fr->line : 0);
	pb_close(b, ml);
	pb_close(b, m);
}

static int put_function(struct pprof *w, uint32_t fid)
{
	struct pb *b = &w->msg;
	uint32_t key[2];
	const void *k;
	size_t len, m;
	int err = strtab_get(w->funcs, fid, &k, &len);

	if (err)
		return err;
	memcpy(key, k, sizeof(key));
	m = pb_open(b, PROFILE_FUNCTION);
	pb_uint(b, FUNCTION_ID, fid + 1);
	pb_uint(b, FUNCTION_NAME, key[0]);
	pb_uint(b, FUNCTION_FILENAME, key[1]);
	pb_close(b, m);
	return 0;
}

/* Size the tables for every frame of p (a bound: not all may be used).
 * Each frame brings at most two strings; a bad byte grows to three. */
static int tables_new(struct pprof *w, const struct profile *p)
{
	static const size_t fixed = 256; /* "", "samples", ... and their padding */
	uint64_t nkeys = 2ull * p->nframes + 16 + 2 * OUT_LABELS_MAX;
	size_t arena = fixed, i;
	int err;

	if (nkeys > (1u << 30))
		return -E2BIG;
	for (i = 0; i < p->nframes; i++) {
		arena += 3 * strlen(p->frames[i].name) + 8;
		arena += 3 * strlen(p->frames[i].file) + 8;
		if (arena > SIZE_MAX / 4)
			return -E2BIG;
	}
	if (p->command)
		arena += 3 * strlen(p->command) + 8;
	for (i = 0; i < 2 * w->nlab; i++)
		arena += 3 * strlen(w->o->labels[i]) + 8;
	err = strtab_new(&w->strs, (uint32_t)nkeys, arena);
	if (!err)
		err = strtab_new(&w->funcs, p->nframes + 1u, 16 * ((size_t)p->nframes + 1));
	if (err)
		return err;
	w->loc_of = calloc((size_t)p->nframes + 1, sizeof(*w->loc_of));
	w->loc_frame = malloc(((size_t)p->nframes + 1) * sizeof(*w->loc_frame));
	w->loc_func = malloc(((size_t)p->nframes + 1) * sizeof(*w->loc_func));
	if (!w->loc_of || !w->loc_frame || !w->loc_func)
		return -ENOMEM;
	return 0;
}

static void tables_release(struct pprof *w)
{
	strtab_free(w->strs);
	strtab_free(w->funcs);
	free(w->loc_of);
	free(w->loc_frame);
	free(w->loc_func);
	free(w->clean);
	free(w->msg.buf);
}

/* The fixed strings, "" first so that it is index 0. */
static int intern_fixed(struct pprof *w, const struct profile *p)
{
	uint32_t empty, i;
	int services = 0;

	/* "service_name" only in the agent's profiles of several services. */
	for (i = 0; i < p->nframes && !services; i++)
		services = p->frames[i].kind == FRAME_SERVICE;

	const struct {
		const char *s;
		uint32_t *id;
	} fixed[] = {
		{ "", &empty },
		{ "samples", &w->s_samples },
		{ "count", &w->s_count },
		{ "cpu", &w->s_cpu },
		{ "nanoseconds", &w->s_ns },
		{ "pid", &w->s_pid },
		{ "tid", &w->s_tid },
		{ "thread_name", &w->s_thread_name },
		{ p->command && p->command[0] ? p->command : NULL, &w->s_command },
		{ services ? "service_name" : NULL, &w->s_service },
	};
	size_t k;
	int err = 0;

	for (k = 0; !err && k < sizeof(fixed) / sizeof(fixed[0]); k++)
		if (fixed[k].s)
			err = intern(w, fixed[k].s, fixed[k].id);
	for (k = 0; !err && k < 2 * w->nlab; k++)
		err = intern(w, w->o->labels[k], &w->lab[k]);
	return err;
}

/* Everything after the header, in field order. */
static int put_body(struct pprof *w, struct gz *g)
{
	const struct profile *p = w->p;
	struct pb *b = &w->msg;
	uint32_t i, n;
	int err = 0;

	for (i = 0; !err && i < p->nstacks; i++) {
		err = put_sample(w, &p->stacks[i]);
		if (!err)
			err = flush_msg(w, g, 0);
	}
	for (i = 0; !err && i < w->nlocs; i++) {
		put_location(w, i);
		err = flush_msg(w, g, 0);
	}
	n = strtab_count(w->funcs);
	for (i = 0; !err && i < n; i++) {
		err = put_function(w, i);
		if (!err)
			err = flush_msg(w, g, 0);
	}
	n = strtab_count(w->strs);
	for (i = 0; !err && i < n; i++) {
		const void *s;
		size_t len;

		err = strtab_get(w->strs, i, &s, &len);
		if (!err) {
			pb_bytes(b, PROFILE_STRING_TABLE, s, len);
			err = flush_msg(w, g, 0);
		}
	}
	if (err)
		return err;
	pb_uint(b, PROFILE_TIME_NANOS, (uint64_t)p->start_wall_ns);
	pb_uint(b, PROFILE_DURATION_NANOS, (uint64_t)to_ns(p->duration_s * 1e9));
	value_type(b, PROFILE_PERIOD_TYPE, w->s_cpu, w->s_ns);
	pb_uint(b, PROFILE_PERIOD, (uint64_t)w->period);
	pb_uint(b, PROFILE_COMMENT, w->s_command);
	return flush_msg(w, g, 1);
}

int out_pprof_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct pprof w = { .p = p, .o = o };
	struct gz *g;
	int err;

	if (o)
		w.nlab = o->nlabels < OUT_LABELS_MAX ? o->nlabels : OUT_LABELS_MAX;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->f = f;
	if (p->rate_hz > 0) {
		w.period = to_ns(1e9 / p->rate_hz);
		if (w.period < 1)
			w.period = 1;
	}
	err = tables_new(&w, p);
	if (!err)
		err = intern_fixed(&w, p);
	if (err)
		goto out_tables;
	/* windowBits 15 + 16: a gzip wrapper, not a zlib one. */
	switch (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			     Z_DEFAULT_STRATEGY)) {
	case Z_OK:
		break;
	case Z_MEM_ERROR:
		err = -ENOMEM;
		goto out_tables;
	default:
		err = -EINVAL;
		goto out_tables;
	}
	value_type(&w.msg, PROFILE_SAMPLE_TYPE, w.s_samples, w.s_count);
	value_type(&w.msg, PROFILE_SAMPLE_TYPE, w.s_cpu, w.s_ns);
	err = put_body(&w, g);
	if (!err)
		err = gz_write(g, NULL, 0, Z_FINISH);
	deflateEnd(&g->z);
	if (!err && ferror(f))
		err = -EIO;
out_tables:
	tables_release(&w);
	free(g);
	return err;
}
