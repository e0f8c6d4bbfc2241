/* in_speedscope.c - speedscope's JSON file format read back (input.h).
 *
 * The document is parsed by jansson (Debian's libjansson), which reports a
 * syntax error's line and column; a JSON parser is no place for hand work.
 * What the document says is checked here, every index and number bounded:
 *
 *   shared.frames[i]   {name, file?, line?}: a frame
 *   profiles[k]        "sampled": samples[j] (frame indexes, root first)
 *                      weigh weights[j] in unit; "evented": events
 *                      {type "O"|"C", at, frame} open and close frames in
 *                      time order, and a stack weighs the time it was the
 *                      open one
 *
 * A weight in a unit of time is weight / (1/rate) samples, to the nearest
 * (a stack's weights added first: one sample is exactly 1/rate, split
 * over neighbours or not); in "none" it is a count.  A profile named by
 * pyspyc's markers, as our writer names them ("thread TID \"name\"", a
 * process marker and a space before it), starts each stack at those
 * markers again.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pyspyc/input.h"

/* The largest JSON document parsed (its tree takes several times that). */
#define MAX_JSON ((size_t)256 << 20)

__attribute__((format(printf, 2, 3)))
static int bad(struct in_error *e, const char *fmt, ...)
{
	va_list ap;

	e->line = 0;
	e->offset = 0;
	e->whole = 1;
	va_start(ap, fmt);
	vsnprintf(e->what, sizeof(e->what), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int in_is_json(const char *data, size_t len)
{
	size_t i = 0;

	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
		i = 3; /* a UTF-8 byte order mark */
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' ||
			   data[i] == '\r'))
		i++;
	return i < len && data[i] == '{';
}

/* Seconds per unit, 0 for "none" (counts), or -1 for a unit not known. */
static double unit_seconds(const char *u)
{
	static const struct { const char *name; double s; } units[] = {
		{ "seconds", 1 }, { "milliseconds", 1e-3 }, { "microseconds", 1e-6 },
		{ "nanoseconds", 1e-9 }, { "none", 0 },
	};
	size_t i;

	for (i = 0; u && i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(u, units[i].name))
			return units[i].s;
	return -1;
}

struct ss_in {
	struct stacktab *t;
	struct in_error *e;
	uint32_t *fid;         /* shared frame -> frame id */
	size_t nframes;
	uint32_t *ids;         /* a stack being built: markers, then frames */
	uint32_t nmark;
	double rate;
	/* One profile's weighed stacks, in the order met, their frames at
	 * pool + off: summed per distinct stack before they are made counts,
	 * so that a sample split over neighbours is one. */
	struct acc { size_t off; uint32_t depth; double w; } *acc;
	size_t nacc, capacc;
	uint32_t *pool;
	size_t npool, cappool;
};

static int frame_of(struct ss_in *s, json_t *fr, size_t i)
{
	json_t *name = json_object_get(fr, "name"), *file = json_object_get(fr, "file");
	json_t *line = json_object_get(fr, "line");
	const char *fs = json_is_string(file) ? json_string_value(file) : "";
	size_t flen = json_is_string(file) ? json_string_length(file) : 0;
	int32_t lineno = 0;

	if (!json_is_object(fr) || !json_is_string(name))
		return bad(s->e, "shared.frames[%zu] has no name", i);
	if (json_is_integer(line) && json_integer_value(line) > 0 &&
	    json_integer_value(line) <= INT32_MAX)
		lineno = (int32_t)json_integer_value(line);
	return in_frame(s->t, json_string_value(name), json_string_length(name), fs, flen, lineno,
			&s->fid[i]);
}

/* The markers a profile's name stands for, into s->ids[0..s->nmark). */
static int name_markers(struct ss_in *s, const char *name, size_t n)
{
	const char *cut = NULL, *p;
	int r;

	s->nmark = 0;
	if (n > 8 && !memcmp(name, "process ", 8)) {
		/* The thread's label after the last '" thread ' there is. */
		for (p = name; (p = memmem(p, (size_t)(name + n - p), "\" thread ", 9)); p++)
			cut = p + 1;
		r = in_marker(s->t, name, cut ? (size_t)(cut - name) : n, 0, 0, &s->ids[0]);
		if (r <= 0)
			return r;
		s->nmark = 1;
		if (!cut)
			return 0;
		r = in_marker(s->t, cut + 1, (size_t)(name + n - cut - 1), 1, 1, &s->ids[1]);
		if (r < 0)
			return r;
		if (r == 0) {
			s->nmark = 0; /* not ours after all */
			return 0;
		}
		s->nmark = 2;
		return 0;
	}
	r = in_marker(s->t, name, n, 0, 0, &s->ids[0]);
	if (r > 0)
		s->nmark = 1;
	return r < 0 ? r : 0;
}

/* Add weight w to the stack s->ids[0..depth). */
static int accumulate(struct ss_in *s, uint32_t depth, double w)
{
	if (s->nacc == s->capacc) {
		size_t cap = s->capacc ? 2 * s->capacc : 256;
		struct acc *a = realloc(s->acc, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		s->acc = a;
		s->capacc = cap;
	}
	if (s->npool + depth > s->cappool) {
		size_t cap = s->cappool ? 2 * s->cappool : 4096;
		uint32_t *p;

		while (cap < s->npool + depth)
			cap *= 2;
		p = realloc(s->pool, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->pool = p;
		s->cappool = cap;
	}
	memcpy(s->pool + s->npool, s->ids, depth * sizeof(*s->ids));
	s->acc[s->nacc++] = (struct acc){ .off = s->npool, .depth = depth, .w = w };
	s->npool += depth;
	return 0;
}

/* By stack (depth, then frames: pool is the context), then in the order
 * met. */
static int cmp_stack(const void *a, const void *b, void *pool)
{
	const struct acc *x = a, *y = b;
	const uint32_t *p = pool;
	int r;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	r = memcmp(p + x->off, p + y->off, x->depth * sizeof(*p));
	if (r)
		return r;
	return (x->off > y->off) - (x->off < y->off);
}

static int cmp_met(const void *a, const void *b)
{
	const struct acc *x = a, *y = b;

	return (x->off > y->off) - (x->off < y->off);
}

/* The profile's stacks, weights summed per stack (in the order met) and
 * made counts, into the table in the order each stack was first met. */
static int flush(struct ss_in *s, double per_unit, size_t k, struct in_totals *tot)
{
	size_t i, n = 0;
	int err = 0;

	if (s->nacc)
		qsort_r(s->acc, s->nacc, sizeof(*s->acc), cmp_stack, s->pool);
	for (i = 0; i < s->nacc; i++) {
		const struct acc *a = &s->acc[i], *b = n ? &s->acc[n - 1] : NULL;

		if (b && b->depth == a->depth &&
		    !memcmp(s->pool + b->off, s->pool + a->off, a->depth * sizeof(*s->pool)))
			s->acc[n - 1].w += a->w;
		else
			s->acc[n++] = *a;
	}
	if (n)
		qsort(s->acc, n, sizeof(*s->acc), cmp_met);
	for (i = 0; i < n && !err; i++) {
		const struct acc *a = &s->acc[i];
		double c = per_unit > 0 ? a->w * per_unit : a->w;
		uint64_t count;

		if (!(c >= 0 && c < (double)IN_MAX_COUNT)) {
			err = bad(s->e, "profiles[%zu]: a weight that is no sample count "
				  "(%g)", k, c);
			break;
		}
		count = (uint64_t)llround(c);
		if (!count || a->depth <= s->nmark)
			continue;
		if (tot->samples + count > IN_MAX_COUNT)
			err = bad(s->e, "more than 2^53 samples in all");
		else
			err = stacktab_add(s->t, s->pool + a->off, a->depth, count, NULL);
		if (!err) {
			tot->samples += count;
			tot->stacks++;
		}
	}
	s->nacc = 0;
	s->npool = 0;
	return err;
}

/* Frame index v (a JSON number) as a frame id appended at s->ids[*depth]. */
static int push_frame(struct ss_in *s, json_t *v, uint32_t *depth, size_t k, size_t j)
{
	json_int_t f = json_is_integer(v) ? json_integer_value(v) : -1;

	if (f < 0 || (size_t)f >= s->nframes)
		return bad(s->e, "profiles[%zu]: sample or event %zu names no shared frame", k, j);
	if (*depth == IN_MAX_DEPTH + 2)
		return bad(s->e, "profiles[%zu]: more than %d frames in one stack", k,
			   IN_MAX_DEPTH);
	s->ids[(*depth)++] = s->fid[f];
	return 0;
}

static int sampled(struct ss_in *s, json_t *prof, size_t k)
{
	json_t *samples = json_object_get(prof, "samples");
	json_t *weights = json_object_get(prof, "weights");
	size_t j, i;
	int err;

	if (!json_is_array(samples) || !json_is_array(weights) ||
	    json_array_size(samples) != json_array_size(weights))
		return bad(s->e, "profiles[%zu]: samples and weights are not two arrays of "
			   "one length", k);
	for (j = 0; j < json_array_size(samples); j++) {
		json_t *st = json_array_get(samples, j), *w = json_array_get(weights, j);
		uint32_t depth = s->nmark;

		if (!json_is_array(st) || !json_is_number(w))
			return bad(s->e, "profiles[%zu]: sample %zu is not a list of frames with "
				   "a weight", k, j);
		for (i = 0; i < json_array_size(st); i++)
			if ((err = push_frame(s, json_array_get(st, i), &depth, k, j)))
				return err;
		if (depth > s->nmark && (err = accumulate(s, depth, json_number_value(w))))
			return err;
	}
	return 0;
}

static int evented(struct ss_in *s, json_t *prof, size_t k)
{
	json_t *events = json_object_get(prof, "events");
	uint32_t depth = s->nmark;
	double last = 0;
	size_t j;
	int err;

	if (!json_is_array(events))
		return bad(s->e, "profiles[%zu]: an evented profile without events", k);
	for (j = 0; j < json_array_size(events); j++) {
		json_t *ev = json_array_get(events, j);
		json_t *type = json_object_get(ev, "type"), *at = json_object_get(ev, "at");
		const char *ty = json_is_string(type) ? json_string_value(type) : "";
		double now = json_is_number(at) ? json_number_value(at) : NAN;

		if (!json_is_object(ev) || !(now >= last) || (strcmp(ty, "O") && strcmp(ty, "C")))
			return bad(s->e, "profiles[%zu]: event %zu is not an \"O\" or \"C\" event "
				   "at a time not before the last", k, j);
		/* The stack open until now weighs the time since the last event. */
		if (depth > s->nmark && now > last && (err = accumulate(s, depth, now - last)))
			return err;
		last = now;
		if (!strcmp(ty, "O")) {
			if ((err = push_frame(s, json_object_get(ev, "frame"), &depth, k, j)))
				return err;
		} else {
			json_t *f = json_object_get(ev, "frame");
			json_int_t fi = json_is_integer(f) ? json_integer_value(f) : -1;

			if (depth == s->nmark || fi < 0 || (size_t)fi >= s->nframes ||
			    s->ids[depth - 1] != s->fid[fi])
				return bad(s->e, "profiles[%zu]: event %zu closes a frame that is not "
					   "the innermost one open", k, j);
			depth--;
		}
	}
	return 0;
}

static int read_doc(struct ss_in *s, json_t *doc, struct in_totals *tot)
{
	json_t *shared = json_object_get(doc, "shared");
	json_t *frames = json_object_get(shared, "frames");
	json_t *profiles = json_object_get(doc, "profiles");
	size_t i, k;
	int err;

	if (!json_is_object(doc) || !json_is_array(frames) || !json_is_array(profiles))
		return bad(s->e, "no shared.frames and profiles: not a speedscope file");
	s->nframes = json_array_size(frames);
	s->fid = malloc(s->nframes * sizeof(*s->fid) + 1);
	s->ids = malloc((IN_MAX_DEPTH + 2) * sizeof(*s->ids));
	if (!s->fid || !s->ids)
		return -ENOMEM;
	for (i = 0; i < s->nframes; i++)
		if ((err = frame_of(s, json_array_get(frames, i), i)))
			return err;
	for (k = 0; k < json_array_size(profiles); k++) {
		json_t *prof = json_array_get(profiles, k);
		json_t *type = json_object_get(prof, "type"), *name = json_object_get(prof, "name");
		json_t *unit = json_object_get(prof, "unit");
		double secs = unit_seconds(json_is_string(unit) ? json_string_value(unit) : NULL);
		const char *ty = json_is_string(type) ? json_string_value(type) : "";

		if (!json_is_object(prof) || secs < 0)
			return bad(s->e, "profiles[%zu] has no unit of time or count", k);
		s->nmark = 0;
		if (json_is_string(name) &&
		    (err = name_markers(s, json_string_value(name), json_string_length(name))))
			return err;
		if (!strcmp(ty, "sampled"))
			err = sampled(s, prof, k);
		else if (!strcmp(ty, "evented"))
			err = evented(s, prof, k);
		else
			err = bad(s->e, "profiles[%zu] is neither sampled nor evented", k);
		if (!err)
			err = flush(s, secs > 0 ? secs * s->rate : 0, k, tot);
		if (err)
			return err;
	}
	return 0;
}

int in_speedscope_read(struct stacktab *t, const char *data, size_t len, double rate,
		       struct in_totals *tot, struct in_error *e)
{
	struct ss_in s = { .t = t, .e = e, .rate = rate };
	json_error_t je;
	json_t *doc;
	size_t i;
	int err;

	e->inflated = 0;
	if (len > MAX_JSON)
		return bad(e, "a JSON document larger than %zu MiB", MAX_JSON >> 20);
	doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		e->line = je.line > 0 ? (uint64_t)je.line : 0;
		e->offset = je.position > 0 ? (uint64_t)je.position : 0;
		snprintf(e->what, sizeof(e->what), "not JSON: %.120s (column %d)", je.text,
			 je.column);
		/* jansson quotes the text near the error, newlines and all. */
		for (i = 0; e->what[i]; i++)
			if ((unsigned char)e->what[i] < 0x20 || e->what[i] == 0x7f)
				e->what[i] = '?';
		if (!e->line)
			e->line = 1;
		return -EINVAL;
	}
	err = read_doc(&s, doc, tot);
	free(s.acc);
	free(s.pool);
	free(s.fid);
	free(s.ids);
	json_decref(doc);
	return err;
}
