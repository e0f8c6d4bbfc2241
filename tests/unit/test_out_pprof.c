/* test_out_pprof.c - the pprof writer, read back by a decoder of our own.
 *
 * Each test writes a hand-built profile, gunzips it with zlib, decodes the
 * protobuf with the small strict decoder below (written from the wire
 * format, independent of the writer's encoder) into plain tables, checks
 * the cross-references every pprof reader relies on, and then asserts on
 * the decoded values: tables, leaf-first order, values, labels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pyspyc/output.h"

/* ---- a decoded profile ------------------------------------------------- */

#define MAX_IDS 20000  /* location ids in one sample */
#define MAX_LABELS 8
#define MAX_ROWS 4096  /* samples, locations, functions, strings */

struct d_label {
	int64_t key, str, num, num_unit;
};

struct d_sample {
	uint64_t *loc;         /* MAX_IDS, leaf first as written */
	uint32_t nloc;
	int64_t val[4];
	uint32_t nval;
	struct d_label label[MAX_LABELS];
	uint32_t nlabel;
};

struct d_location {
	uint64_t id, mapping, address;
	uint64_t func[4];
	int64_t line[4];
	uint32_t nline;
};

struct d_function {
	uint64_t id;
	int64_t name, system_name, filename, start_line;
};

struct d_profile {
	int64_t sample_type[4][2];
	uint32_t nsample_type;
	struct d_sample *sample;
	uint32_t nsample;
	struct d_location *loc;
	uint32_t nloc;
	struct d_function *func;
	uint32_t nfunc;
	char **str;
	uint32_t nstr;
	int64_t time_nanos, duration_nanos, period;
	int64_t period_type[2];
	int nperiod_type;
	uint64_t comment[4];
	uint32_t ncomment;
	uint32_t nmapping, nunknown;
};

/* ---- a strict protobuf reader ---------------------------------------- */

struct rd {
	const uint8_t *p, *end;
};

static uint64_t rd_varint(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift;

	for (shift = 0;; shift += 7) {
		uint8_t c;

		assert_true(r->p < r->end);   /* truncated varint */
		assert_true(shift < 64);      /* more than 10 bytes */
		c = *r->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
}

/* The next field: 0 at the end of the message.  Wire type 0 leaves the
 * value in *v, wire type 2 the bytes in *sub; the writer uses no other. */
static int rd_field(struct rd *r, unsigned *field, unsigned *wire, uint64_t *v,
		    struct rd *sub)
{
	uint64_t key, len;

	if (r->p == r->end)
		return 0;
	key = rd_varint(r);
	*field = (unsigned)(key >> 3);
	*wire = (unsigned)(key & 7);
	assert_true(*field > 0);
	if (*wire == 0) {
		*v = rd_varint(r);
		return 1;
	}
	assert_int_equal(*wire, 2);
	len = rd_varint(r);
	assert_true(len <= (uint64_t)(r->end - r->p));
	sub->p = r->p;
	sub->end = r->p + len;
	r->p += len;
	return 1;
}

/* A repeated scalar, packed (wire 2) or not (wire 0), appended to out. */
static void rd_repeated(unsigned wire, uint64_t v, struct rd *sub, uint64_t *out,
			uint32_t *n, uint32_t cap)
{
	if (wire == 0) {
		assert_true(*n < cap);
		out[(*n)++] = v;
		return;
	}
	while (sub->p < sub->end) {
		assert_true(*n < cap);
		out[(*n)++] = rd_varint(sub);
	}
}

static void rd_scalar(unsigned wire, uint64_t v, int64_t *out)
{
	assert_int_equal(wire, 0);
	*out = (int64_t)v;
}

/* A message of varint fields 1..n only (ValueType, Label, Line,
 * Function): field k lands in out[k - 1], absent ones are 0. */
static void rd_scalars(struct rd *r, int64_t *out, unsigned n)
{
	unsigned field, wire;
	uint64_t v;
	struct rd sub;

	memset(out, 0, n * sizeof(*out));
	while (rd_field(r, &field, &wire, &v, &sub)) {
		assert_true(field >= 1 && field <= n);
		rd_scalar(wire, v, &out[field - 1]);
	}
}

static void rd_sample(struct rd *r, struct d_sample *s)
{
	unsigned field, wire;
	uint64_t v, vals[4];
	uint32_t i, nv = 0;
	int64_t l[4];
	struct rd sub;

	while (rd_field(r, &field, &wire, &v, &sub)) {
		switch (field) {
		case 1:
			rd_repeated(wire, v, &sub, s->loc, &s->nloc, MAX_IDS);
			break;
		case 2:
			rd_repeated(wire, v, &sub, vals, &nv, 4);
			break;
		case 3:
			assert_int_equal(wire, 2);
			assert_true(s->nlabel < MAX_LABELS);
			rd_scalars(&sub, l, 4);
			s->label[s->nlabel++] = (struct d_label){ l[0], l[1], l[2], l[3] };
			break;
		default:
			fail_msg("unknown Sample field %u", field);
		}
	}
	for (i = 0; i < nv; i++)
		s->val[i] = (int64_t)vals[i];
	s->nval = nv;
}

static void rd_location(struct rd *r, struct d_location *l)
{
	unsigned field, wire;
	uint64_t v;
	int64_t line[2];
	struct rd sub;

	memset(l, 0, sizeof(*l));
	while (rd_field(r, &field, &wire, &v, &sub)) {
		if (field == 4) {
			assert_int_equal(wire, 2);
			assert_true(l->nline < 4);
			rd_scalars(&sub, line, 2);
			l->func[l->nline] = (uint64_t)line[0];
			l->line[l->nline++] = line[1];
			continue;
		}
		assert_int_equal(wire, 0);
		if (field == 1)
			l->id = v;
		else if (field == 2)
			l->mapping = v;
		else if (field == 3)
			l->address = v;
		else
			fail_msg("unknown Location field %u", field);
	}
}

static void rd_function(struct rd *r, struct d_function *f)
{
	int64_t v[5];

	rd_scalars(r, v, 5);
	*f = (struct d_function){ (uint64_t)v[0], v[1], v[2], v[3], v[4] };
}

static void rd_profile(struct rd *r, struct d_profile *d)
{
	unsigned field, wire;
	uint64_t v;
	struct rd sub;
	char *s;

	while (rd_field(r, &field, &wire, &v, &sub)) {
		switch (field) {
		case 1:
			assert_int_equal(wire, 2);
			assert_true(d->nsample_type < 4);
			rd_scalars(&sub, d->sample_type[d->nsample_type++], 2);
			break;
		case 2:
			assert_int_equal(wire, 2);
			assert_true(d->nsample < MAX_ROWS);
			d->sample[d->nsample].loc = calloc(MAX_IDS, sizeof(uint64_t));
			assert_non_null(d->sample[d->nsample].loc);
			rd_sample(&sub, &d->sample[d->nsample++]);
			break;
		case 3:
			d->nmapping++;
			break;
		case 4:
			assert_int_equal(wire, 2);
			assert_true(d->nloc < MAX_ROWS);
			rd_location(&sub, &d->loc[d->nloc++]);
			break;
		case 5:
			assert_int_equal(wire, 2);
			assert_true(d->nfunc < MAX_ROWS);
			rd_function(&sub, &d->func[d->nfunc++]);
			break;
		case 6:
			assert_int_equal(wire, 2);
			assert_true(d->nstr < MAX_ROWS);
			s = malloc((size_t)(sub.end - sub.p) + 1);
			assert_non_null(s);
			memcpy(s, sub.p, (size_t)(sub.end - sub.p));
			s[sub.end - sub.p] = '\0';
			/* No NUL may hide inside a string. */
			assert_int_equal(strlen(s), (size_t)(sub.end - sub.p));
			d->str[d->nstr++] = s;
			break;
		case 9:
			rd_scalar(wire, v, &d->time_nanos);
			break;
		case 10:
			rd_scalar(wire, v, &d->duration_nanos);
			break;
		case 11:
			assert_int_equal(wire, 2);
			rd_scalars(&sub, d->period_type, 2);
			d->nperiod_type++;
			break;
		case 12:
			rd_scalar(wire, v, &d->period);
			break;
		case 13:
			rd_repeated(wire, v, &sub, d->comment, &d->ncomment, 4);
			break;
		default:
			d->nunknown++;
		}
	}
}

static struct d_profile *d_new(void)
{
	struct d_profile *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->sample = calloc(MAX_ROWS, sizeof(*d->sample));
	d->loc = calloc(MAX_ROWS, sizeof(*d->loc));
	d->func = calloc(MAX_ROWS, sizeof(*d->func));
	d->str = calloc(MAX_ROWS, sizeof(*d->str));
	assert_true(d->sample && d->loc && d->func && d->str);
	return d;
}

static void d_free(struct d_profile *d)
{
	uint32_t i;

	for (i = 0; i < MAX_ROWS; i++) {
		free(d->sample[i].loc);
		free(d->str[i]);
	}
	free(d->sample);
	free(d->loc);
	free(d->func);
	free(d->str);
	free(d);
}

/* ---- writing and reading back ------------------------------------------ */

static const struct out_opts *write_opts; /* the next roundtrip's, then NULL */

static int write_pprof(const struct profile *p, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	int err;

	assert_non_null(f);
	err = out_pprof_write(p, write_opts, f);
	write_opts = NULL;
	assert_int_equal(fclose(f), 0);
	return err;
}

/* Gunzip data: exactly one gzip member, nothing after it. */
static uint8_t *gunzip(const char *data, size_t len, size_t *out_len)
{
	z_stream z;
	size_t cap = 1 << 16, used = 0;
	uint8_t *out = malloc(cap);
	int rc;

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	/* 15 + 16: gzip only; a zlib or raw stream fails here. */
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	do {
		if (cap - used < 4096) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		z.next_out = out + used;
		z.avail_out = (uInt)(cap - used);
		rc = inflate(&z, Z_NO_FLUSH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		used = cap - z.avail_out;
	} while (rc != Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	inflateEnd(&z);
	*out_len = used;
	return out;
}

static const char *str(const struct d_profile *d, int64_t i)
{
	assert_true(i >= 0 && i < (int64_t)d->nstr);
	return d->str[i];
}

/* The row whose id is id among n rows of size bytes that start with their
 * uint64_t id; fails the test when there is none. */
static const void *row_by_id(const void *rows, uint32_t n, size_t size, uint64_t id)
{
	const char *r = rows;
	uint32_t i;
	uint64_t v;

	for (i = 0; i < n; i++, r += size) {
		memcpy(&v, r, sizeof(v));
		if (v == id)
			return r;
	}
	fail_msg("no row with id %llu", (unsigned long long)id);
	return NULL;
}

static const struct d_location *loc_by_id(const struct d_profile *d, uint64_t id)
{
	return row_by_id(d->loc, d->nloc, sizeof(*d->loc), id);
}

static const struct d_function *func_by_id(const struct d_profile *d, uint64_t id)
{
	return row_by_id(d->func, d->nfunc, sizeof(*d->func), id);
}

/* Every cross-reference a pprof reader follows must resolve. */
static void check_refs(const struct d_profile *d)
{
	uint32_t i, j, k;

	assert_true(d->nstr >= 1);
	assert_string_equal(d->str[0], "");
	for (i = 0; i < d->nstr; i++)
		for (j = i + 1; j < d->nstr; j++)
			assert_string_not_equal(d->str[i], d->str[j]);
	assert_int_equal(d->nunknown, 0);
	assert_int_equal(d->nmapping, 0);
	for (i = 0; i < d->nsample_type; i++)
		for (k = 0; k < 2; k++)
			assert_true(d->sample_type[i][k] > 0 &&
				    d->sample_type[i][k] < (int64_t)d->nstr);
	for (i = 0; i < d->nfunc; i++) {
		const struct d_function *f = &d->func[i];

		assert_true(f->id > 0);
		for (j = i + 1; j < d->nfunc; j++)
			assert_true(d->func[j].id != f->id);
		assert_true(f->name >= 0 && f->name < (int64_t)d->nstr);
		assert_true(f->system_name >= 0 && f->system_name < (int64_t)d->nstr);
		assert_true(f->filename >= 0 && f->filename < (int64_t)d->nstr);
	}
	for (i = 0; i < d->nloc; i++) {
		const struct d_location *l = &d->loc[i];

		assert_true(l->id > 0);
		for (j = i + 1; j < d->nloc; j++)
			assert_true(d->loc[j].id != l->id);
		assert_int_equal(l->nline, 1);
		func_by_id(d, l->func[0]);
	}
	for (i = 0; i < d->nsample; i++) {
		const struct d_sample *s = &d->sample[i];

		assert_int_equal(s->nval, d->nsample_type);
		assert_true(s->nloc > 0);
		for (j = 0; j < s->nloc; j++)
			loc_by_id(d, s->loc[j]);
		for (j = 0; j < s->nlabel; j++) {
			const struct d_label *l = &s->label[j];

			assert_true(l->key > 0 && l->key < (int64_t)d->nstr);
			assert_true(l->str >= 0 && l->str < (int64_t)d->nstr);
			/* At most one of str and num. */
			assert_true(!(l->str && l->num));
		}
	}
}

/* Write p, read it back, check the references. */
static struct d_profile *roundtrip(const struct profile *p)
{
	struct d_profile *d = d_new();
	char *buf = NULL;
	size_t len = 0, plen;
	uint8_t *pb;
	struct rd r;

	assert_int_equal(write_pprof(p, &buf, &len), 0);
	pb = gunzip(buf, len, &plen);
	r.p = pb;
	r.end = pb + plen;
	rd_profile(&r, d);
	check_refs(d);
	free(pb);
	free(buf);
	return d;
}

/* "name (file:line)" of a location id, in buf. */
static const char *where(const struct d_profile *d, uint64_t id, char *buf, size_t size)
{
	const struct d_location *l = loc_by_id(d, id);
	const struct d_function *f = func_by_id(d, l->func[0]);

	snprintf(buf, size, "%s (%s:%lld)", str(d, f->name), str(d, f->filename),
		 (long long)l->line[0]);
	return buf;
}

/* Assert that sample s lists exactly the frames in want, leaf first. */
static void expect_stack(const struct d_profile *d, const struct d_sample *s,
			 const char *const *want, uint32_t n)
{
	char buf[512];
	uint32_t i;

	assert_int_equal(s->nloc, n);
	for (i = 0; i < n; i++)
		assert_string_equal(where(d, s->loc[i], buf, sizeof(buf)), want[i]);
}

/* The label of s called key: its struct, or NULL. */
static const struct d_label *label_of(const struct d_profile *d, const struct d_sample *s,
				      const char *key)
{
	const struct d_label *found = NULL;
	uint32_t i;

	for (i = 0; i < s->nlabel; i++) {
		if (strcmp(str(d, s->label[i].key), key))
			continue;
		assert_null(found); /* each key once */
		found = &s->label[i];
	}
	return found;
}

static struct profile mkprofile(const struct profile_frame *fr, uint32_t nfr,
				const struct profile_stack *st, uint32_t nst)
{
	struct profile p = {
		.frames = fr, .nframes = nfr, .stacks = st, .nstacks = nst,
		.command = "python3 app.py --flag", .pid = 4242, .rate_hz = 100,
		.duration_s = 2.5, .start_wall_ns = 1700000000123456789ll,
	};
	uint32_t i;

	for (i = 0; i < nst; i++)
		p.total += st[i].count;
	return p;
}

/* ---- tests --------------------------------------------------------------- */

static void test_tables_and_leaf_first(void **state)
{
	static const struct profile_frame fr[] = {
		{ "main", "app.py", 10, FRAME_APP },
		{ "helper", "pkg/helpers.py", 3, FRAME_APP },
		{ "helper", "pkg/helpers.py", 7, FRAME_APP }, /* same function */
		{ "sleep", "", 0, FRAME_STDLIB },
		{ "unused", "u.py", 1, FRAME_APP },
	};
	static const uint32_t a[] = { 0 }, b[] = { 0, 1 }, c[] = { 0, 1, 3 }, e[] = { 0, 2 };
	static const struct profile_stack st[] = {
		{ a, 1, 7, 0 }, { b, 2, 1, 0 }, { c, 3, 5, 0 }, { e, 2, 2, 0 },
	};
	static const char *const w0[] = { "main (app.py:10)" };
	static const char *const w1[] = { "helper (pkg/helpers.py:3)", "main (app.py:10)" };
	static const char *const w2[] = { "sleep (:0)", "helper (pkg/helpers.py:3)",
					  "main (app.py:10)" };
	static const char *const w3[] = { "helper (pkg/helpers.py:7)", "main (app.py:10)" };
	struct profile p = mkprofile(fr, 5, st, 4);
	struct d_profile *d;
	uint32_t i;

	(void)state;
	d = roundtrip(&p);
	assert_int_equal(d->nsample_type, 2);
	assert_string_equal(str(d, d->sample_type[0][0]), "samples");
	assert_string_equal(str(d, d->sample_type[0][1]), "count");
	assert_string_equal(str(d, d->sample_type[1][0]), "cpu");
	assert_string_equal(str(d, d->sample_type[1][1]), "nanoseconds");
	assert_int_equal(d->nperiod_type, 1);
	assert_string_equal(str(d, d->period_type[0]), "cpu");
	assert_string_equal(str(d, d->period_type[1]), "nanoseconds");
	assert_int_equal(d->period, 10000000);
	assert_int_equal(d->time_nanos, 1700000000123456789ll);
	assert_int_equal(d->duration_nanos, 2500000000ll);
	assert_int_equal(d->ncomment, 1);
	assert_string_equal(str(d, d->comment[0]), "python3 app.py --flag");

	/* One function per (name, file), one location per frame used. */
	assert_int_equal(d->nfunc, 3);
	assert_int_equal(d->nloc, 4);
	for (i = 0; i < d->nfunc; i++) {
		assert_string_not_equal(str(d, d->func[i].name), "unused");
		/* Left empty so that pprof does not demangle Python names. */
		assert_int_equal(d->func[i].system_name, 0);
		assert_int_equal(d->func[i].start_line, 0);
	}

	assert_int_equal(d->nsample, 4);
	expect_stack(d, &d->sample[0], w0, 1);
	expect_stack(d, &d->sample[1], w1, 2);
	expect_stack(d, &d->sample[2], w2, 3);
	expect_stack(d, &d->sample[3], w3, 2);
	/* The two helper lines are one function. */
	assert_int_equal(loc_by_id(d, d->sample[1].loc[0])->func[0],
			 loc_by_id(d, d->sample[3].loc[0])->func[0]);
	for (i = 0; i < 4; i++) {
		const struct d_label *pid = label_of(d, &d->sample[i], "pid");

		assert_int_equal(d->sample[i].val[0], st[i].count);
		assert_int_equal(d->sample[i].val[1], (int64_t)st[i].count * 10000000);
		assert_non_null(pid);
		assert_int_equal(pid->num, 4242);
		assert_null(label_of(d, &d->sample[i], "tid"));
		assert_null(label_of(d, &d->sample[i], "thread_name"));
		assert_int_equal(d->sample[i].nlabel, 1);
	}
	d_free(d);
}

/* period is round(1e9 / rate), not truncated. */
static void test_period_rounds(void **state)
{
	static const struct profile_frame fr[] = { { "f", "f.py", 1, FRAME_APP } };
	static const uint32_t a[] = { 0 };
	static const struct profile_stack st[] = { { a, 1, 3, 0 } };
	static const struct {
		double hz;
		int64_t period;
	} cases[] = { { 7, 142857143 }, { 300, 3333333 }, { 997, 1003009 },
		      { 1e9, 1 }, { 4e9, 1 } };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct profile p = mkprofile(fr, 1, st, 1);
		struct d_profile *d;

		p.rate_hz = cases[i].hz;
		d = roundtrip(&p);
		assert_int_equal(d->period, cases[i].period);
		assert_int_equal(d->sample[0].val[1], 3 * cases[i].period);
		d_free(d);
	}
}

/* The caller's labels (the agent's) go on every sample, as strings, after
 * the markers' labels; one of bytes that are not UTF-8 is made valid. */
static void test_caller_labels(void **state)
{
	static const struct profile_frame fr[] = {
		{ "thread 101 \"w\"", "w", 101, FRAME_THREAD },
		{ "run", "r.py", 5, FRAME_APP },
	};
	static const uint32_t s0[] = { 0, 1 }, s1[] = { 1 };
	static const struct profile_stack st[] = { { s0, 2, 5, 0 }, { s1, 1, 2, 0 } };
	static const char *const labels[] = { "service_name", "web", "hostname", "h1",
					      "team", "caf\xc3\xa9\xff" };
	const struct out_opts o = { .labels = labels, .nlabels = 3 };
	struct profile p = mkprofile(fr, 2, st, 2);
	struct d_profile *d;
	uint32_t i;

	(void)state;
	write_opts = &o;
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 2);
	for (i = 0; i < 2; i++) {
		const struct d_label *svc = label_of(d, &d->sample[i], "service_name"),
				     *host = label_of(d, &d->sample[i], "hostname"),
				     *team = label_of(d, &d->sample[i], "team");

		assert_non_null(svc);
		assert_non_null(host);
		assert_non_null(team);
		assert_string_equal(str(d, svc->str), "web");
		assert_string_equal(str(d, host->str), "h1");
		assert_string_equal(str(d, team->str), "caf\xc3\xa9\xef\xbf\xbd");
		assert_int_equal(svc->num, 0);
	}
	/* The profile's pid, the thread's tid and name, then ours. */
	assert_int_equal(d->sample[0].nlabel, 6);
	assert_int_equal(d->sample[1].nlabel, 4);
	d_free(d);
}

/* Root markers become labels; stacks that differ only by them stay apart;
 * what is left of a stack without them must not be empty. */
static void test_markers_as_labels(void **state)
{
	static const struct profile_frame fr[] = {
		{ "process 77:\"cmd --x\"", "cmd --x", 77, FRAME_PROCESS },  /* 0 */
		{ "thread 101 \"worker\"", "worker", 101, FRAME_THREAD },   /* 1 */
		{ "thread 102 \"other\"", "other", 102, FRAME_THREAD },     /* 2 */
		{ "thread 0x7f \"\"", "", 0, FRAME_THREAD },                /* 3 */
		{ "[truncated]", "", 0, FRAME_SPECIAL },                    /* 4 */
		{ "run", "r.py", 5, FRAME_APP },                            /* 5 */
		{ "leaf", "r.py", 9, FRAME_APP },                           /* 6 */
	};
	static const uint32_t s0[] = { 0, 1, 5, 6 }, s1[] = { 0, 2, 5, 6 }, s2[] = { 1, 5 },
			      s3[] = { 0, 1 }, s4[] = { 0 }, s5[] = { 3, 4, 5 }, s6[] = { 5 };
	static const struct profile_stack st[] = {
		{ s0, 4, 5, 0 }, { s1, 4, 7, 0 }, { s2, 2, 2, 0 }, { s3, 2, 9, 0 },
		{ s4, 1, 1, 0 }, { s5, 3, 3, 0 }, { s6, 0, 4, 0 }, { s6, 1, 6, 0 },
	};
	static const char *const w01[] = { "leaf (r.py:9)", "run (r.py:5)" };
	static const char *const w2[] = { "run (r.py:5)" };
	static const char *const w5[] = { "run (r.py:5)", "[truncated] (:0)" };
	static const struct {
		uint64_t count;
		int64_t pid, tid;
		const char *name;
	} want[] = {
		{ 5, 77, 101, "worker" }, { 7, 77, 102, "other" }, { 2, 4242, 101, "worker" },
		{ 3, 4242, 0, NULL }, { 6, 4242, 0, NULL },
	};
	struct profile p = mkprofile(fr, 7, st, 8);
	struct d_profile *d;
	uint32_t i, j;

	(void)state;
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 5);
	expect_stack(d, &d->sample[0], w01, 2);
	expect_stack(d, &d->sample[1], w01, 2);
	expect_stack(d, &d->sample[2], w2, 1);
	expect_stack(d, &d->sample[3], w5, 2);
	expect_stack(d, &d->sample[4], w2, 1);
	for (i = 0; i < d->nsample; i++) {
		const struct d_sample *s = &d->sample[i];
		const struct d_label *pid = label_of(d, s, "pid"), *tid = label_of(d, s, "tid"),
				     *name = label_of(d, s, "thread_name");

		assert_int_equal(s->val[0], want[i].count);
		assert_non_null(pid);
		assert_int_equal(pid->num, want[i].pid);
		assert_int_equal(pid->str, 0);
		if (want[i].tid) {
			assert_non_null(tid);
			assert_int_equal(tid->num, want[i].tid);
		} else {
			assert_null(tid);
		}
		if (want[i].name) {
			assert_non_null(name);
			assert_string_equal(str(d, name->str), want[i].name);
			assert_int_equal(name->num, 0);
		} else {
			assert_null(name);
		}
	}
	/* No marker became a location or a function. */
	for (i = 0; i < d->nfunc; i++) {
		const char *n = str(d, d->func[i].name);

		assert_true(strncmp(n, "process ", 8) && strncmp(n, "thread ", 7));
	}
	assert_int_equal(d->nloc, 3);
	for (i = 0; i < d->nsample; i++)
		for (j = 0; j < d->sample[i].nloc; j++)
			assert_true(d->sample[i].loc[j] <= 3);
	d_free(d);
}

/* Strings pass through as they are (pprof has no grammar to protect), but
 * a protobuf string must be UTF-8: each bad byte becomes U+FFFD. */
static void test_hostile_strings(void **state)
{
#define FFFD "\xef\xbf\xbd"
	static const struct profile_frame fr[] = {
		{ "a;b \"q\" <x> %s %n\\", "dir with space/f;1.py", 1, FRAME_APP },
		{ "new\nline\ttab\x01\x7f", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x94\xa5.py", 2, FRAME_APP },
		{ "bad\xff\xfe" "end", "over\xc0\xaflong.py", 3, FRAME_APP },
		{ "surr\xed\xa0\x80" "x", "cut\xe2\x82", 4, FRAME_APP },
		{ "<module>", "<frozen importlib._bootstrap>", 0, FRAME_STDLIB },
		{ "thread 9 \"t\xff\"", "t\xff;\"n\"\n", 9, FRAME_THREAD },
		{ "", "empty-name.py", 5, FRAME_APP },
	};
	static const uint32_t s0[] = { 5, 4, 0, 1, 2, 3, 6 };
	static const struct profile_stack st[] = { { s0, 7, 11, 0 } };
	static const char *const want[] = {
		" (empty-name.py:5)",
		"surr" FFFD FFFD FFFD "x (cut" FFFD FFFD ":4)",
		"bad" FFFD FFFD "end (over" FFFD FFFD "long.py:3)",
		"new\nline\ttab\x01\x7f (\xc3\xa9t\xc3\xa9 \xf0\x9f\x94\xa5.py:2)",
		"a;b \"q\" <x> %s %n\\ (dir with space/f;1.py:1)",
		"<module> (<frozen importlib._bootstrap>:0)",
	};
	struct profile p = mkprofile(fr, 7, st, 1);
	const struct d_label *name;
	struct d_profile *d;

	(void)state;
	p.command = "cmd \xff\n;";
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 1);
	expect_stack(d, &d->sample[0], want, 6);
	name = label_of(d, &d->sample[0], "thread_name");
	assert_non_null(name);
	assert_string_equal(str(d, name->str), "t" FFFD ";\"n\"\n");
	assert_int_equal(label_of(d, &d->sample[0], "tid")->num, 9);
	assert_string_equal(str(d, d->comment[0]), "cmd " FFFD "\n;");
	/* An empty name and an empty file share string 0. */
	assert_int_equal(func_by_id(d, loc_by_id(d, d->sample[0].loc[0])->func[0])->name, 0);
	d_free(d);
#undef FFFD
}

/* A deep stack: ids past one varint byte, a sample past two length bytes,
 * leaf first all the way down. */
#define DEEP 12000
#define DISTINCT 700

static void test_deep_stack(void **state)
{
	static struct profile_frame fr[DISTINCT + 1];
	static char names[DISTINCT][16];
	static uint32_t frames[DEEP + 1];
	struct profile_stack st[2];
	struct profile p;
	struct d_profile *d;
	char buf[64], wantb[64];
	uint32_t i;

	(void)state;
	fr[0] = (struct profile_frame){ "thread 5 \"deep\"", "deep", 5, FRAME_THREAD };
	for (i = 0; i < DISTINCT; i++) {
		snprintf(names[i], sizeof(names[i]), "rec_%u", i);
		fr[i + 1] = (struct profile_frame){ names[i], "deep.py", (int)i + 1, FRAME_APP };
	}
	frames[0] = 0;
	for (i = 1; i <= DEEP; i++)
		frames[i] = 1 + (i * 7919u) % DISTINCT;
	st[0] = (struct profile_stack){ frames, DEEP + 1, 3, 0 };
	st[1] = (struct profile_stack){ frames + 1, 2, 1, 0 };
	p = mkprofile(fr, DISTINCT + 1, st, 2);
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 2);
	assert_int_equal(d->sample[0].nloc, DEEP);
	assert_int_equal(d->nloc, DISTINCT);
	assert_int_equal(d->nfunc, DISTINCT);
	for (i = 0; i < DEEP; i++) {
		uint32_t f = frames[DEEP - i];

		snprintf(wantb, sizeof(wantb), "rec_%u (deep.py:%u)", f - 1, f);
		assert_string_equal(where(d, d->sample[0].loc[i], buf, sizeof(buf)), wantb);
	}
	assert_int_equal(label_of(d, &d->sample[0], "tid")->num, 5);
	/* The second stack starts at the first's root frame (no marker). */
	assert_int_equal(d->sample[1].nloc, 2);
	assert_int_equal(d->sample[1].loc[1], d->sample[0].loc[DEEP - 1]);
	assert_null(label_of(d, &d->sample[1], "tid"));
	d_free(d);
}

/* count * period past int64 saturates instead of wrapping negative. */
static void test_values_saturate(void **state)
{
	static const struct profile_frame fr[] = { { "f", "f.py", 1, FRAME_APP } };
	static const uint32_t a[] = { 0 };
	static const struct profile_stack st[] = {
		{ a, 1, 922337203685ull, 0 },       /* * 1e7 still fits */
		{ a, 1, 12345678901234ull, 0 },     /* * 1e7 does not */
		{ a, 1, UINT64_MAX, 0 },            /* not even the count */
	};
	struct profile p = mkprofile(fr, 1, st, 3);
	struct d_profile *d;

	(void)state;
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 3);
	assert_int_equal(d->sample[0].val[0], 922337203685ll);
	assert_int_equal(d->sample[0].val[1], 9223372036850000000ll);
	assert_int_equal(d->sample[1].val[0], 12345678901234ll);
	assert_int_equal(d->sample[1].val[1], INT64_MAX);
	assert_int_equal(d->sample[2].val[0], INT64_MAX);
	assert_int_equal(d->sample[2].val[1], INT64_MAX);
	d_free(d);
}

static void test_empty_profile(void **state)
{
	struct profile p = mkprofile(NULL, 0, NULL, 0);
	struct d_profile *d;

	(void)state;
	p.command = NULL;
	p.rate_hz = 0;
	p.duration_s = 0;
	d = roundtrip(&p);
	assert_int_equal(d->nsample, 0);
	assert_int_equal(d->nloc, 0);
	assert_int_equal(d->nfunc, 0);
	assert_int_equal(d->nsample_type, 2);
	assert_int_equal(d->period, 0);
	assert_int_equal(d->ncomment, 0);
	d_free(d);
}

/* The same profile gives the same bytes. */
static void test_deterministic(void **state)
{
	static const struct profile_frame fr[] = {
		{ "thread 3 \"x\"", "x", 3, FRAME_THREAD },
		{ "b", "b.py", 2, FRAME_APP },
		{ "a", "a.py", 1, FRAME_APP },
	};
	static const uint32_t s0[] = { 0, 1, 2 }, s1[] = { 2, 1 };
	static const struct profile_stack st[] = { { s0, 3, 4, 0 }, { s1, 2, 5, 0 } };
	struct profile p = mkprofile(fr, 3, st, 2);
	char *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;

	(void)state;
	assert_int_equal(write_pprof(&p, &b1, &l1), 0);
	assert_int_equal(write_pprof(&p, &b2, &l2), 0);
	assert_true(l1 > 20);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);
}

static void test_bad_frame_index(void **state)
{
	static const struct profile_frame fr[] = { { "f", "f.py", 1, FRAME_APP } };
	static const uint32_t a[] = { 0, 1 };
	static const struct profile_stack st[] = { { a, 2, 1, 0 } };
	struct profile p = mkprofile(fr, 1, st, 1);
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(write_pprof(&p, &buf, &len), -EINVAL);
	free(buf);
}

/* A write error inside the stream comes back as -errno. */
static void test_dev_full(void **state)
{
	static const struct profile_frame fr[] = { { "main", "m.py", 1, FRAME_APP } };
	static const uint32_t s0[] = { 0 };
	static const struct profile_stack st[] = { { s0, 1, 1, 0 } };
	struct profile p = mkprofile(fr, 1, st, 1);
	FILE *f;

	(void)state;
	f = fopen("/dev/full", "w");
	if (!f)
		skip();
	/* Unbuffered: the writer's own fwrite meets the error. */
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(out_pprof_write(&p, NULL, f), -ENOSPC);
	fclose(f);
}

static void test_registry(void **state)
{
	const struct out_format *fmt = out_format_by_name("pprof");

	(void)state;
	assert_non_null(fmt);
	assert_ptr_equal(fmt->write, out_pprof_write);
	assert_true(fmt->needs & OUT_PER_THREAD);
	assert_ptr_equal(out_format_by_path("cpu.pb.gz"), fmt);
	assert_ptr_equal(out_format_by_path("dir/x.PPROF"), fmt);
	assert_ptr_equal(out_format_by_path("x.gz"), NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_and_leaf_first),
		cmocka_unit_test(test_period_rounds),
		cmocka_unit_test(test_markers_as_labels),
		cmocka_unit_test(test_caller_labels),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_deep_stack),
		cmocka_unit_test(test_values_saturate),
		cmocka_unit_test(test_empty_profile),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bad_frame_index),
		cmocka_unit_test(test_dev_full),
		cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
