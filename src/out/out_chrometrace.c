/* out_chrometrace.c - the Chrome Trace Event Format, JSON object form, for
 * Perfetto and chrome://tracing:
 *
 *   { "traceEvents": [ {"ph":"M","name":"process_name",...},
 *                      {"ph":"B","name":fn,"pid","tid","ts","args":{file,line}},
 *                      {"ph":"E",...}, ... ],
 *     "displayTimeUnit": "ms", "otherData": { what was profiled } }
 *
 * Each thread's samples are walked in time order: between two samples, the
 * frames that left the stack end ("E", innermost first) and the new ones
 * begin ("B", outermost first), both at the later sample's time.  A thread
 * not sampled for more than 1.5 periods (it was idle, and idle threads are
 * left out) has its whole stack ended one period after its last sample, and
 * so does every thread at the end.  Within a thread every B has its E and
 * time never goes back; threads follow each other, which the format allows
 * (events need not be sorted across threads).  ts is in microseconds since
 * the start of sampling.  Without a timeline the trace has no events.
 */
#include <errno.h>
#include <math.h>

#include "pyspyc/json.h"
#include "pyspyc/output.h"
#include "pyspyc/out_threads.h"

/* The period assumed when the profile has no usable rate: record's
 * default of 100 Hz. */
#define FALLBACK_PERIOD_NS 10000000LL

struct ct {
	const struct profile *p;
	struct out_threads th;
	int64_t period;   /* ns between samples */
	struct json j;
};

/* Open an event object with what every event has. */
static void begin_event(struct ct *w, const char *ph, const char *name, int pid, int tid)
{
	json_oneline(&w->j);
	json_object_begin(&w->j);
	json_member_string(&w->j, "ph", ph);
	json_member_string(&w->j, "name", name);
	json_member_int(&w->j, "pid", pid);
	json_member_int(&w->j, "tid", tid);
}

static void event(struct ct *w, const char *ph, const struct out_thread *t, uint32_t frame,
		  int64_t t_ns)
{
	const struct profile_frame *f = &w->p->frames[frame];

	begin_event(w, ph, f->name, t->pid, t->tid);
	json_key(&w->j, "ts");
	json_decimal(&w->j, t_ns - w->p->start_ns, 3);
	/* The E carries the B's args too: importers that match them by name
	 * and args (speedscope's) then pair them without a warning. */
	if (!frame_is_marker(f->kind) && (f->file[0] || f->line > 0)) {
		json_key(&w->j, "args");
		json_object_begin(&w->j);
		if (f->file[0])
			json_member_string(&w->j, "file", f->file);
		if (f->line > 0)
			json_member_int(&w->j, "line", f->line);
		json_object_end(&w->j);
	}
	json_object_end(&w->j);
}

static void metadata(struct ct *w, const char *what, int pid, int tid, const char *name)
{
	begin_event(w, "M", what, pid, tid);
	json_key(&w->j, "args");
	json_object_begin(&w->j);
	json_member_string(&w->j, "name", name);
	json_object_end(&w->j);
	json_object_end(&w->j);
}

/* A marker's bare label (command line, thread name), or its whole name. */
static const char *label(const struct profile *p, uint32_t marker, const char *none)
{
	if (marker == UINT32_MAX)
		return none;
	return p->frames[marker].file[0] ? p->frames[marker].file : p->frames[marker].name;
}

/* End frames fr[from .. depth), innermost first. */
static void end_frames(struct ct *w, const struct out_thread *t, const uint32_t *fr,
		       uint32_t from, uint32_t depth, int64_t t_ns)
{
	while (depth > from)
		event(w, "E", t, fr[--depth], t_ns);
}

static void write_thread(struct ct *w, const struct out_thread *t)
{
	const struct profile *p = w->p;
	const uint32_t *o = w->th.order + t->first;
	const uint32_t *open = NULL; /* the frames begun and not ended */
	uint32_t nopen = 0;
	int64_t last = 0;
	uint64_t k;

	for (k = 0; k < t->nsamples; k++) {
		const struct profile_sample *s = &p->samples[o[k]];
		uint32_t depth, same = 0, i;
		const uint32_t *fr = out_stack_body(p, s->stack, &depth);

		if (k && s->t_ns - last > w->period + w->period / 2) {
			end_frames(w, t, open, 0, nopen, last + w->period);
			nopen = 0;
		}
		while (same < nopen && same < depth && open[same] == fr[same])
			same++;
		end_frames(w, t, open, same, nopen, s->t_ns);
		for (i = same; i < depth; i++)
			event(w, "B", t, fr[i], s->t_ns);
		open = fr;
		nopen = depth;
		last = s->t_ns;
	}
	end_frames(w, t, open, 0, nopen, last + w->period);
}

static void write_events(struct ct *w)
{
	const struct profile *p = w->p;
	const char *command = p->command && p->command[0] ? p->command : "python";
	uint32_t i;
	int pid_named = 0, named_pid = 0;

	for (i = 0; i < w->th.n; i++) {
		const struct out_thread *t = &w->th.v[i];

		if (!t->nsamples)
			continue;
		/* Threads are sorted by pid: name each process once. */
		if (!pid_named || named_pid != t->pid) {
			metadata(w, "process_name", t->pid, 0,
				 label(p, t->process, t->pid == p->pid ? command : "python"));
			pid_named = 1;
			named_pid = t->pid;
		}
		metadata(w, "thread_name", t->pid, t->tid, label(p, t->thread, "all threads"));
		write_thread(w, t);
	}
}

static void write_other(struct ct *w)
{
	const struct profile *p = w->p;

	json_key(&w->j, "otherData");
	json_object_begin(&w->j);
	json_member_string(&w->j, "exporter", "pyspyc");
	json_member_string(&w->j, "command", p->command ? p->command : "");
	json_member_int(&w->j, "pid", p->pid);
	json_member_double(&w->j, "rate_hz", p->rate_hz);
	json_member_double(&w->j, "duration_s", p->duration_s);
	/* Seconds, not ns: a JavaScript number holds ns since 1970 only to
	 * about 256 ns. */
	json_member_double(&w->j, "start_unix_s", (double)p->start_wall_ns / 1e9);
	json_member_uint(&w->j, "samples", p->total);
	json_member_uint(&w->j, "timeline_samples", p->nsamples);
	/* Not zero: the trace covers the start of the run only
	 * (--max-timeline). */
	json_member_uint(&w->j, "timeline_lost", p->timeline_lost);
	json_object_end(&w->j);
}

int out_chrometrace_write(const struct profile *p, const struct out_opts *o, FILE *f)
{
	struct ct w = { .p = p, .period = FALLBACK_PERIOD_NS };
	int err;

	(void)o;
	err = out_threads_init(&w.th, p);
	if (err)
		return err;
	if (isfinite(p->rate_hz) && p->rate_hz > 0) {
		double ns = 1e9 / p->rate_hz;

		/* Between 1 ns and a day: sums of times stay far from overflow. */
		w.period = ns < 1 ? 1 : ns > 864e11 ? 864e11 : llround(ns);
	}
	json_init(&w.j, f);
	json_object_begin(&w.j);
	json_key(&w.j, "traceEvents");
	json_array_begin(&w.j);
	write_events(&w);
	json_array_end(&w.j);
	json_member_string(&w.j, "displayTimeUnit", "ms");
	write_other(&w);
	json_object_end(&w.j);
	err = json_finish(&w.j);
	if (!err && ferror(f))
		err = -EIO;
	out_threads_release(&w.th);
	return err;
}
