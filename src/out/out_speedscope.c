/* out_speedscope.c - speedscope's own file format (file-format-schema.json):
 *
 *   { "$schema", "name", "exporter", "activeProfileIndex",
 *     "shared": { "frames": [ { "name", "file", "line" }, ... ] },
 *     "profiles": [ { "type": "sampled", "name", "unit", "startValue",
 *                     "endValue", "samples": [[frame, ...], ...],
 *                     "weights": [...] }, ... ] }
 *
 * One sampled profile per thread, named by its markers; the markers
 * themselves are not frames.  Samples list frame indexes root first and
 * weigh count / rate seconds.  When the timeline holds every sample, a
 * thread's samples come in time order, a run of one stack as one sample, so
 * speedscope's Time Order view shows the run as it happened (the time a
 * thread was not sampled is left out: samples follow each other).
 * Otherwise each stack is one sample with its whole count.  Either way the
 * weights of a stack add up to its count / rate.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/json.h"
#include "pyspyc/output.h"
#include "pyspyc/out_threads.h"

#define SCHEMA "https://www.speedscope.app/file-format-schema.json"

struct ss {
	const struct profile *p;
	struct out_threads th;
	uint32_t *fidx;   /* profile frame -> shared frame index */
	double rate;       /* a weight is a sample count / rate */
	const char *unit;
	struct json j;
};

/* Shared frames in the order stacks first use them, so the same profile
 * always numbers them the same. */
static void write_frames(struct ss *w)
{
	const struct profile *p = w->p;
	uint32_t i, k, depth, next = 0;

	json_key(&w->j, "shared");
	json_object_begin(&w->j);
	json_key(&w->j, "frames");
	json_array_begin(&w->j);
	for (i = 0; i < p->nstacks; i++) {
		const uint32_t *fr;

		if (!p->stacks[i].depth)
			continue;
		fr = out_stack_body(p, i, &depth);
		for (k = 0; k < depth; k++) {
			const struct profile_frame *f = &p->frames[fr[k]];

			if (w->fidx[fr[k]] != UINT32_MAX)
				continue;
			w->fidx[fr[k]] = next++;
			json_oneline(&w->j);
			json_object_begin(&w->j);
			json_member_string(&w->j, "name", f->name);
			if (!frame_is_marker(f->kind) && f->file[0])
				json_member_string(&w->j, "file", f->file);
			if (!frame_is_marker(f->kind) && f->line > 0)
				json_member_int(&w->j, "line", f->line);
			json_object_end(&w->j);
		}
	}
	json_array_end(&w->j);
	json_object_end(&w->j);
}

static void write_stack(struct ss *w, uint32_t s)
{
	uint32_t k, depth;
	const uint32_t *fr = out_stack_body(w->p, s, &depth);

	json_oneline(&w->j);
	json_array_begin(&w->j);
	for (k = 0; k < depth; k++)
		json_uint(&w->j, w->fidx[fr[k]]);
	json_array_end(&w->j);
}

/* The run of samples of one stack that starts at o[*k]: returns the stack,
 * moves *k past the run and sets *len to its length. */
static uint32_t run_at(const struct profile *p, const uint32_t *o, uint64_t n, uint64_t *k,
		       uint64_t *len)
{
	uint32_t s = p->samples[o[*k]].stack;
	uint64_t start = *k;

	while (*k < n && p->samples[o[*k]].stack == s)
		(*k)++;
	*len = *k - start;
	return s;
}

/* "name": the thread's marker, after its process's with -s; a process's
 * stacks without a thread marker go by the process alone. */
static int write_name(struct ss *w, const struct out_thread *t)
{
	const char *proc = t->process != UINT32_MAX ? w->p->frames[t->process].name : NULL;
	const char *thr = t->thread != UINT32_MAX ? w->p->frames[t->thread].name : NULL;
	size_t lp, lt;
	char *buf;

	if (!thr) {
		thr = proc ? proc : "all threads";
		proc = NULL;
	}
	lp = proc ? strlen(proc) + 1 : 0;
	lt = strlen(thr);
	buf = malloc(lp + lt + 1);
	if (!buf)
		return -ENOMEM;
	if (proc) {
		memcpy(buf, proc, lp - 1);
		buf[lp - 1] = ' ';
	}
	memcpy(buf + lp, thr, lt + 1);
	json_member_string(&w->j, "name", buf);
	free(buf);
	return 0;
}

static int write_profile(struct ss *w, const struct out_thread *t)
{
	const struct profile *p = w->p;
	int timeline = w->th.complete && t->nsamples > 0;
	const uint32_t *o = timeline ? w->th.order + t->first : NULL;
	double start = 0;
	uint64_t k, len;
	int err;

	if (timeline)
		start = (double)(p->samples[o[0]].t_ns - p->start_ns) / 1e9;
	json_object_begin(&w->j);
	json_member_string(&w->j, "type", "sampled");
	err = write_name(w, t);
	if (err)
		return err;
	json_member_string(&w->j, "unit", w->unit);
	json_member_double(&w->j, "startValue", start);
	json_member_double(&w->j, "endValue", start + (double)t->count / w->rate);
	json_key(&w->j, "samples");
	json_array_begin(&w->j);
	if (timeline) {
		for (k = 0; k < t->nsamples;)
			write_stack(w, run_at(p, o, t->nsamples, &k, &len));
	} else {
		for (k = 0; k < t->nstacks; k++)
			write_stack(w, w->th.stacks[t->sfirst + k]);
	}
	json_array_end(&w->j);
	json_key(&w->j, "weights");
	json_array_begin(&w->j);
	if (timeline) {
		for (k = 0; k < t->nsamples;) {
			run_at(p, o, t->nsamples, &k, &len);
			json_double(&w->j, (double)len / w->rate);
		}
	} else {
		for (k = 0; k < t->nstacks; k++)
			json_double(&w->j, (double)p->stacks[w->th.stacks[t->sfirst + k]].count /
						   w->rate);
	}
	json_array_end(&w->j);
	json_object_end(&w->j);
	return 0;
}

int out_speedscope_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct ss w = { .p = p, .rate = 1.0, .unit = "none" };
	const char *name = o && o->title ? o->title
			 : p->command && p->command[0] ? p->command : "pyspyc";
	uint32_t i, active = 0;
	int err;

	err = out_threads_init(&w.th, p);
	if (err)
		return err;
	w.fidx = malloc((p->nframes ? p->nframes : 1) * sizeof(*w.fidx));
	if (!w.fidx) {
		err = -ENOMEM;
		goto out_threads;
	}
	memset(w.fidx, 0xff, (p->nframes ? p->nframes : 1) * sizeof(*w.fidx));
	/* Without a usable rate the weights are sample counts. */
	if (isfinite(p->rate_hz) && p->rate_hz > 0) {
		w.rate = p->rate_hz;
		w.unit = "seconds";
	}
	for (i = 1; i < w.th.n; i++)
		if (w.th.v[i].count > w.th.v[active].count)
			active = i;

	json_init(&w.j, f);
	json_object_begin(&w.j);
	json_member_string(&w.j, "$schema", SCHEMA);
	json_member_string(&w.j, "name", name);
	json_member_string(&w.j, "exporter", "pyspyc");
	json_member_uint(&w.j, "activeProfileIndex", active);
	write_frames(&w);
	json_key(&w.j, "profiles");
	json_array_begin(&w.j);
	for (i = 0; i < w.th.n && !err; i++)
		err = write_profile(&w, &w.th.v[i]);
	json_array_end(&w.j);
	json_object_end(&w.j);
	if (!err)
		err = json_finish(&w.j);
	if (!err && ferror(f))
		err = -EIO;
	free(w.fidx);
out_threads:
	out_threads_release(&w.th);
	return err;
}
