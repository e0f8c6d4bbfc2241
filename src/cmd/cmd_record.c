/* cmd_record.c - `pyspyc record`: sample a process, write the profile. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/cli.h"
#include "pyspyc/clock.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_outputs.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/output.h"
#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/session.h"
#include "pyspyc/stacktab.h"

#define MAX_OUTPUTS OPT_LIST_MAX
#define WHO "pyspyc"
/* The summary suggests --blocking when at least TORN_HINT_PCT percent of
 * the stacks, and TORN_HINT_MIN of them, came out torn: before Python 3.11
 * a thread deep in fast recursion frees and reuses its frame objects
 * within the microseconds a read of their pages takes (a pure-Python fib
 * loop under 2.7, 3.6, 3.8 and 3.10 on a virtual machine: 98-99.8% of
 * its stacks torn without --blocking, under 1% with it). */
#define TORN_HINT_PCT 20
#define TORN_HINT_MIN 20

struct record_args {
	long long pid;
	struct opt_list outputs;
	const char *format;
	struct sample_args s;
	double duration;
	int nolineno;
	int subprocesses;
	int threads;
	int inverted;
	long long max_timeline;
	double period;
};

#define OFF(f) offsetof(struct record_args, f)

static const struct opt record_opts[] = {
	{ 'p', "pid", OPT_INT, "PID", "profile the running process PID",
	  OFF(pid), 1, 4194304, 0 },
	{ 'o', "output", OPT_LIST, "FILE",
	  "write the profile to FILE; repeatable; the format follows the extension: "
	  OUT_HELP_ENDINGS "; "
	  "'-' writes to stdout (collapsed stacks unless --format says otherwise)",
	  OFF(outputs), 0, 0, 0 },
	{ 'f', "format", OPT_STRING, "FORMAT",
	  "format of outputs whose name has no known extension (such as .json or '-'), "
	  "and of the default output: " OUT_HELP_FORMATS,
	  OFF(format), 0, 0, 0 },
	SAMPLE_OPT_RATE(struct record_args, s),
	{ 'd', "duration", OPT_DOUBLE, "SECS",
	  "stop after SECS seconds of sampling (default: until the target exits or Ctrl-C)",
	  OFF(duration), 0, 31536000, 1 },
	OPT_NOLINENO(struct record_args, nolineno),
	SAMPLE_OPTS_NAMES(struct record_args, s),
	{ 's', "subprocesses", OPT_FLAG, NULL,
	  "also profile every process under the target, including ones started "
	  "later (web server workers); each stack starts at its process",
	  OFF(subprocesses), 0, 0, 0 },
	{ 't', "threads", OPT_FLAG, NULL,
	  "start each stack at its thread: OS thread id and thread name",
	  OFF(threads), 0, 0, 0 },
	SAMPLE_OPTS_MODE(struct record_args, s),
	OPT_INVERTED(struct record_args, inverted),
	SAMPLE_OPTS_LIMITS(struct record_args, s),
	{ 0, "max-timeline", OPT_INT, "N",
	  "thread stacks kept in time order for chrometrace and speedscope "
	  "(default 10000000, 16 bytes each; per period with --period)",
	  OFF(max_timeline), 1, 1000000000, 0 },
	{ 0, "period", OPT_DOUBLE, "SECS",
	  "write the outputs every SECS seconds (at least 1), each with that "
	  "period's samples only, while sampling goes on; every output name must "
	  "carry %t, the period's start in UTC (20261204T003000Z)",
	  OFF(period), 1, 31536000, 0 },
};

static const struct cmd_usage record_usage = {
	.name = "record",
	.synopsis = "[OPTIONS] (--pid PID | [--] COMMAND [ARGS...])",
	.about = "Sample a Python program's stacks and write a flame graph or\n"
		 "collapsed stacks when it exits, the duration ends, or on Ctrl-C.\n"
		 "SIGUSR1 writes the profile so far to the output files and sampling\n"
		 "goes on.  %t in an output name is the profile's start (UTC), %% a %.",
	.opts = record_opts,
	.nopts = sizeof(record_opts) / sizeof(record_opts[0]),
	.examples =
		"  sudo pyspyc record --pid 12345 -o profile.svg -o profile.folded\n"
		"  pyspyc record -o profile.svg -- python3 app.py arg\n"
		"  pyspyc record -r 1000 -d 30 -p 12345 -o - | flamegraph.pl > out.svg\n"
		"  sudo pyspyc record -s -p $(pgrep -o gunicorn) -d 60 -o workers.svg\n"
		"  sudo pyspyc record -t -i -p 12345 -o all-threads.svg\n"
		"  sudo pyspyc record -p 12345 --period 600 -o 'web-%t.svg' -o 'web-%t.folded'\n",
	.takes_command = 1,
};

static unsigned int find_flags; /* PYSPYC_FIND */

/* What became of an output at the end (write_outputs). */
enum { OUTPUT_FAILED, OUTPUT_WRITTEN, OUTPUT_CUT_SHORT, OUTPUT_NOT_NOW };

/* Set by SIGUSR1: write the profile so far. */
static volatile sig_atomic_t usr1_flag;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_flag = 1;
}

/* SA_RESTART: a write in progress when it comes is not cut short. */
static void install_usr1(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/* Block or unblock SIGUSR1 in this thread: blocked while the sampling
 * threads are made, which keep that mask, so that it is this thread's. */
static void block_usr1(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(how, &set, NULL);
}

/* Expand every output's name for a profile starting at wall_ns; an output
 * whose name changed is looked at again (out_dest_init).  Returns 0 or the
 * exit status of the line it printed. */
static int name_outputs(struct cmd_output *outs, int nout, int64_t wall_ns)
{
	char name[PATH_MAX];
	int i, err;

	for (i = 0; i < nout; i++) {
		const char *why;

		if (out_name_expand(outs[i].tmpl, wall_ns, name, sizeof(name)))
			return cmd_die(WHO, EXIT_USAGE, "output name too long: '%s'",
				       CMD_NAME(outs[i].tmpl));
		if (outs[i].path && !strcmp(name, outs[i].name))
			continue;
		memcpy(outs[i].name, name, strlen(name) + 1);
		outs[i].path = outs[i].name;
		if (!outs[i].set_up) /* cmd_outputs_check does */
			continue;
		out_dest_release(&outs[i].dest);
		err = out_dest_init(&outs[i].dest, outs[i].path);
		why = out_kind_refusal(outs[i].dest.kind);
		if (err || why)
			return cmd_die(WHO, EXIT_OUTPUT, "cannot write '%s': %s",
				       CMD_NAME(outs[i].path), err ? strerror(-err) : why);
	}
	return 0;
}

/* The default name's command part, with each % doubled so that it is not
 * taken for %t. */
static void escape_percent(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	for (; *s && n + 2 < size; s++) {
		if (*s == '%')
			buf[n++] = '%';
		buf[n++] = *s;
	}
	buf[n] = '\0';
}

/* Work out every output's path and format before sampling starts.  An
 * output whose name ends in a format's extension gets that format; --format
 * gives the others theirs (and the default output's when there is no -o). */
static int plan_outputs(const struct record_args *a, const char *name, int pid,
			struct cmd_output *outs, int *nout, char *defname, size_t deflen)
{
	const struct out_format *forced;
	int i, rc;

	rc = cmd_format_forced(WHO, a->format, &forced);
	if (rc)
		return rc;
	if (a->outputs.n == 0) {
		char stamp[32], cmd[256];
		time_t now = time(NULL);
		struct tm tm;
		const char *ext;

		localtime_r(&now, &tm);
		/* With --period, a name a period: its start. */
		strftime(stamp, sizeof(stamp), a->period > 0 ? "%%t" : "%Y%m%dT%H%M%S", &tm);
		if (!forced)
			forced = out_format_by_name("flamegraph");
		ext = forced->exts[0];
		escape_percent(name, cmd, sizeof(cmd));
		snprintf(defname, deflen, "%s-%d-%s%s", cmd, pid, stamp, ext);
		outs[0] = (struct cmd_output){ .tmpl = defname, .fmt = forced, .dest.fd = -1 };
		*nout = 1;
		return name_outputs(outs, 1, wall_ns());
	}
	for (i = 0; i < a->outputs.n; i++) {
		const char *p = a->outputs.v[i];

		rc = cmd_output_plan(WHO, p, forced, &outs[i]);
		if (rc)
			return rc;
		if (a->period > 0 && !out_name_has_time(p))
			return cmd_die(WHO, EXIT_USAGE, "--period: '-o %s' has no %%t in its "
				       "name: each period is written to names of its own "
				       "(such as -o 'web-%%t.svg')", CMD_NAME(p));
		outs[i].path = NULL; /* name_outputs names it, %t expanded */
	}
	*nout = a->outputs.n;
	return name_outputs(outs, *nout, wall_ns());
}

/* What the outputs together need from the run (OUT_* bits). */
static unsigned outputs_need(const struct cmd_output *outs, int nout)
{
	unsigned needs = 0;
	int i;

	for (i = 0; i < nout; i++)
		needs |= outs[i].fmt->needs;
	return needs;
}

/* full has a thread marker on every stack when a format needed them; plain
 * is the profile the other formats get (markers only with -t).  live: while
 * sampling goes on, only files are written (a stream, FIFO or device gets
 * one profile, the last). */
static int write_outputs(struct cmd_output *outs, int nout, const struct record_args *a,
			 const struct profile *full, const struct profile *plain, int *written,
			 int live)
{
	int i, failed = 0;

	if (!live)
		cmd_stop_flag = 0;
	for (i = 0; i < nout; i++) {
		struct out_opts oo = { .inverted = a->inverted };
		const struct profile *p = outs[i].fmt->needs & OUT_PER_THREAD ? full : plain;
		int err;

		if (live && outs[i].dest.kind != OUT_FILE) {
			written[i] = OUTPUT_NOT_NOW;
			continue;
		}
		err = cmd_output_write("pyspyc", &outs[i], p, &oo);
		written[i] = err ? OUTPUT_FAILED : OUTPUT_WRITTEN;
		if (err == -EPIPE) {
			/* Not a failure of ours: the summary says the output
			 * was cut short. */
			written[i] = OUTPUT_CUT_SHORT;
			continue;
		}
		failed |= err != 0;
	}
	return failed;
}

static void summary(const struct session_stats *st, const struct record_args *a,
		    const struct cmd_output *outs, int nout, const int *written,
		    const struct stacktab *tab, uint64_t timeline_lost, uint64_t periods,
		    const char *ended, const struct backend_choice *bc)
{
	const char *full = stacktab_full(tab);
	struct rusage ru;
	double cpu_us = 0;
	int i, n = 0;

	if (!getrusage(RUSAGE_SELF, &ru))
		cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	fprintf(stderr,
		"pyspyc: %llu samples, %llu errors, %llu torn stacks, %llu late ticks "
		"in %.2f s (%.1f us CPU and %.2f reads per sample)",
		(unsigned long long)st->samples, (unsigned long long)st->errors,
		(unsigned long long)st->torn, (unsigned long long)st->late, st->elapsed_s,
		st->samples ? cpu_us / (double)st->samples : 0.0,
		st->samples ? (double)st->reads / (double)st->samples : 0.0);
	cmd_backend_words(bc, st);
	if (a->subprocesses)
		fprintf(stderr, "; %u processes", st->processes_seen);
	if (st->processes_left_out)
		fprintf(stderr, "; %u Python processes not sampled: more than "
			"--max-processes %lld at once", st->processes_left_out,
			a->s.max_processes);
	if (st->processes_unread)
		fprintf(stderr, "; %u Python processes not sampled: the eBPF program cannot "
			"read their frames, --backend user can",
			st->processes_unread);
	if (st->asleep)
		fprintf(stderr, "; %llu samples of processes that had not run (not read; "
			"told by %s)", (unsigned long long)st->asleep,
			st->runwatch ? "the kernel's context switches" : "their CPU clocks");
	if (st->execs > st->execs_lost)
		fprintf(stderr, "; followed %u exec%s into Python", st->execs - st->execs_lost,
			st->execs - st->execs_lost == 1 ? "" : "s");
	if (st->execs_lost)
		fprintf(stderr, "; %u exec%s into a program that is not Python: not sampled "
			"after that", st->execs_lost, st->execs_lost == 1 ? "" : "s");
	if (st->reinits)
		fprintf(stderr, "; followed %u restart%s of the interpreter", st->reinits,
			st->reinits == 1 ? "" : "s");
	if (st->idle)
		fprintf(stderr, "; %llu idle thread stacks left out",
			(unsigned long long)st->idle);
	if (st->rereads)
		fprintf(stderr, "; %llu re-reads of torn stacks",
			(unsigned long long)st->rereads);
	if (!a->s.blocking && st->torn >= TORN_HINT_MIN &&
	    st->torn * 100 >= (st->torn + st->stacks) * TORN_HINT_PCT)
		fprintf(stderr, "; %.0f%% of the stacks changed while being read: --blocking "
			"reads them from paused threads",
			100.0 * (double)st->torn / (double)(st->torn + st->stacks));
	if (st->returned)
		fprintf(stderr, "; %llu stacks read just after their innermost call "
			"returned (counted without it)", (unsigned long long)st->returned);
	if (st->reads)
		fprintf(stderr, "; %.1f pages and %.1f KB a read",
			(double)st->pages / (double)st->reads,
			(double)st->bytes / 1024.0 / (double)st->reads);
	if (a->s.blocking && st->pauses)
		fprintf(stderr, "; paused %.1f us per sample (longest %.1f us)",
			(double)st->pause_ns / 1e3 / (double)st->pauses,
			(double)st->pause_ns_max / 1e3);
	if (st->dropped)
		fprintf(stderr, "; %llu stacks dropped: table full, raise %s",
			(unsigned long long)st->dropped, full ? full : "--max-stacks");
	if (st->interps_capped)
		fprintf(stderr, "; %llu samples saw more than %d interpreters: only the first "
			"%d and the main one sampled (a fixed bound)",
			(unsigned long long)st->interps_capped, PY_MAX_INTERPS, PY_MAX_INTERPS);
	if (st->threads_left_out)
		fprintf(stderr, "; up to %llu threads left out of a sample (the oldest): "
			"more than --max-threads %lld",
			(unsigned long long)st->threads_left_out, a->s.max_threads);
	if (timeline_lost && periods > 1)
		fprintf(stderr, "; the timeline left out %llu stacks of periods that had more "
			"than --max-timeline", (unsigned long long)timeline_lost);
	else if (timeline_lost)
		fprintf(stderr, "; the timeline kept the first %llu stacks of %llu (--max-timeline)",
			(unsigned long long)a->max_timeline,
			(unsigned long long)(a->max_timeline + timeline_lost));
	/* The outputs that were written, also when another one failed. */
	if (periods > 1)
		fprintf(stderr, "; wrote %llu periods", (unsigned long long)periods);
	for (i = 0; i < nout; i++)
		if (written[i] == OUTPUT_WRITTEN)
			fprintf(stderr, "%s%s", n++ ? ", " : periods > 1 ? ", the last to " : "; wrote ",
				strcmp(outs[i].path, "-") ? outs[i].path : "stdout");
	for (i = 0; i < nout; i++)
		if (written[i] == OUTPUT_CUT_SHORT)
			fprintf(stderr, "; %s cut short: its reader closed it",
				strcmp(outs[i].path, "-") ? outs[i].path : "stdout");
	/* A launched command's end, as its exit status tells it too. */
	if (ended[0])
		fprintf(stderr, "; %s", ended);
	fputc('\n', stderr);
}

/* The one-line progress display, redrawn in place on a terminal.  It is
 * cut to the terminal's width: a line that wraps is not redrawn in place
 * ("\r" goes back only to the start of its last row) but leaves a row
 * behind at every redraw. */
static void progress(struct session *sess)
{
	struct session_stats st;
	struct winsize ws;
	char line[192], procs[32] = "";
	int n;

	session_stats(sess, &st);
	if (st.processes > 1)
		snprintf(procs, sizeof(procs), ", %u processes", st.processes);
	n = snprintf(line, sizeof(line), "pyspyc: %.1f s, %llu samples, %llu errors, "
		     "%llu late ticks%s (Ctrl-C stops)", st.elapsed_s,
		     (unsigned long long)st.samples, (unsigned long long)st.errors,
		     (unsigned long long)st.late, procs);
	if (n < 0)
		return;
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1;
	if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) && ws.ws_col > 1 && n > ws.ws_col - 1)
		n = ws.ws_col - 1;
	fprintf(stderr, "\r%.*s\033[K", n, line);
	fflush(stderr);
}

/* A run of record: what its writes need besides the profile. */
struct recording {
	const struct record_args *a;
	struct cmd_output *outs;
	int nout;
	struct stacktab *tab;
	struct session *sess;
	const char *command;
	pid_t pid;
	int64_t t0_ns, t0_wall_ns; /* sampling's start */
	uint64_t window;           /* the open window, counted from 0 */
	int64_t win_ns;            /* its start (nominal with --period) */
	uint64_t timeline_lost;    /* of the windows closed and written */
	int failed;                /* the status of a write that failed */
	int show;                  /* a progress line is drawn */
};

/* What p says about the run, for a window from start_ns to end_ns. */
static void describe(const struct recording *r, struct profile *p, int64_t start_ns,
		     int64_t end_ns)
{
	p->command = r->command;
	p->pid = (int)r->pid;
	p->rate_hz = r->a->s.rate;
	p->start_ns = start_ns;
	p->start_wall_ns = r->t0_wall_ns + (start_ns - r->t0_ns);
	p->duration_s = (double)(end_ns - start_ns) / 1e9;
}

/* Write prof, described, to the outputs named for its start.  Returns
 * nonzero when something failed (the line is printed). */
static int write_profile(struct recording *r, const struct profile *prof, int *written,
			 int live)
{
	struct profile plain = { 0 };
	int rc, e;

	rc = name_outputs(r->outs, r->nout, prof->start_wall_ns);
	if (rc)
		return r->failed = rc;
	/* Formats that do not carry threads themselves show them only with
	 * -t: the markers kept for the others are folded away. */
	e = profile_strip(prof, r->a->threads ? 0 : PROFILE_KIND(FRAME_THREAD), &plain);
	if (e)
		return r->failed = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot build the profile: %s",
					   strerror(-e));
	if (!prof->total && !live)
		fprintf(stderr, "pyspyc: warning: no samples were collected\n");
	if (write_outputs(r->outs, r->nout, r->a, prof, &plain, written, live))
		r->failed = EXIT_OUTPUT;
	profile_release(&plain);
	return r->failed;
}

/* The line that says what a write during the run wrote. */
static void say_written(const struct recording *r, const int *written,
			const struct profile *p, const char *what)
{
	int i, n = 0;

	for (i = 0; i < r->nout; i++)
		if (written[i] == OUTPUT_WRITTEN)
			fprintf(stderr, "%s%s", n++ ? ", " : "pyspyc: wrote ", r->outs[i].path);
	if (n)
		fprintf(stderr, " (%s: %llu stacks)\n", what, (unsigned long long)p->total);
}

/* SIGUSR1: the open window so far, to the files; sampling goes on. */
static void write_so_far(struct recording *r)
{
	struct profile prof = { 0 };
	int written[MAX_OUTPUTS];
	int e = stacktab_snapshot(r->tab, &prof);

	if (e) {
		r->failed = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot build the profile: %s",
				    strerror(-e));
		return;
	}
	describe(r, &prof, r->win_ns, mono_ns());
	if (!write_profile(r, &prof, written, 1))
		say_written(r, written, &prof, r->a->period > 0 ? "this period so far" : "so far");
	profile_release(&prof);
}

/* The start of window k of --period, nominal: periods do not drift. */
static int64_t window_start(const struct recording *r, uint64_t k)
{
	return r->t0_ns + (int64_t)((double)k * r->a->period * 1e9);
}

/* --period: close the open window at its end and write it; the next one
 * is open from then on. */
static void close_window(struct recording *r)
{
	struct profile prof = { 0 };
	int written[MAX_OUTPUTS];
	int64_t start = r->win_ns;
	int e = stacktab_rotate(r->tab, &prof);

	r->window++;
	r->win_ns = window_start(r, r->window);
	if (e) {
		r->failed = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot build the profile of a "
				    "period: %s", strerror(-e));
		profile_release(&prof);
		return;
	}
	describe(r, &prof, start, mono_ns());
	r->timeline_lost += prof.timeline_lost;
	if (!write_profile(r, &prof, written, 1))
		say_written(r, written, &prof, "a period");
	profile_release(&prof);
}

/* Does --period open another window at the end of this one?  With -d,
 * not when the run ends there: a run of -d D writes ceil(D / SECS)
 * periods, the last one cut at the end. */
static int period_due(const struct recording *r, int64_t now)
{
	const struct record_args *a = r->a;

	if (!(a->period > 0) || now < window_start(r, r->window + 1))
		return 0;
	return !(a->duration > 0) || (double)(r->window + 1) * a->period < a->duration;
}

/* Sample until the session ends or we are told to stop, closing windows
 * and answering SIGUSR1 on the way; with show, keep the progress line up
 * to date (4 times a second) and erase it at the end.  Between those this
 * thread sleeps until one is due, the session ends or a signal comes: the
 * signals it acts on are blocked while it looks at their flags and
 * unblocked only inside the wait (session_wait), so that one that comes
 * in between is not slept through. */
static void run_session(struct recording *r)
{
	static const int acts_on[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
	int64_t next_draw = 0;
	sigset_t acted, old, waiting;
	size_t k;

	/* This thread's mask as it is, and in the wait: it without those. */
	pthread_sigmask(SIG_SETMASK, NULL, &old);
	sigemptyset(&acted);
	waiting = old;
	for (k = 0; k < sizeof(acts_on) / sizeof(acts_on[0]); k++) {
		sigaddset(&acted, acts_on[k]);
		sigdelset(&waiting, acts_on[k]);
	}
	for (;;) {
		int64_t now = mono_ns(), until = 0;

		pthread_sigmask(SIG_BLOCK, &acted, NULL);
		if (cmd_stop_flag || session_done(r->sess)) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			break;
		}
		if (usr1_flag || period_due(r, now)) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			if (r->show)
				fputs("\r\033[K", stderr);
			next_draw = 0;
			if (usr1_flag) {
				usr1_flag = 0;
				write_so_far(r);
			}
			if (period_due(r, now))
				close_window(r);
			continue;
		}
		if (r->show && now >= next_draw) {
			progress(r->sess);
			next_draw = now + 250 * 1000 * 1000;
		}
		if (r->show)
			until = next_draw;
		if (r->a->period > 0) {
			int64_t due = window_start(r, r->window + 1);

			if (due > now && (!until || due < until))
				until = due;
		}
		session_wait(r->sess, until, &waiting);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	session_stop(r->sess);
	if (r->show)
		fputs("\r\033[K", stderr);
}

/* Show progress when stderr is a terminal of its own: not redirected, and
 * not the terminal the profile itself goes to (-o - on a terminal). */
static int want_progress(const struct cmd_output *outs, int nout)
{
	const char *term = getenv("TERM");
	int i;

	if (!isatty(STDERR_FILENO) || (term && !strcmp(term, "dumb")))
		return 0;
	for (i = 0; i < nout; i++)
		if (outs[i].dest.kind == OUT_STREAM && isatty(outs[i].dest.fd))
			return 0;
	return 1;
}

int cmd_record(int argc, char **argv)
{
	struct record_args a = { .s = SAMPLE_ARGS_DEFAULT, .max_timeline = 10000000 };
	struct cmd_output outs[MAX_OUTPUTS];
	int written[MAX_OUTPUTS];
	struct session_stats st = { 0 };
	struct stacktab *tab = NULL;
	struct session *sess = NULL;
	struct profile prof = { 0 };
	struct recording r = { .a = &a, .outs = outs };
	unsigned needs;
	struct py_target *t;
	struct child_end end = { CHILD_UNKNOWN, 0 };
	char defname[512], command[1024], ended[128] = "";
	struct backend_choice bc = { 0 };
	int cmd_i, nout = 0, rc, e, exited = 0, found = 1;
	pid_t pid, child = 0;

	rc = cmd_parse(WHO, &record_usage, argc, argv, &a, &cmd_i, &find_flags);
	if (rc >= 0)
		return rc;
	if ((rc = cmd_sample_check(WHO, &a.s)))
		return rc;
	if (a.pid && cmd_i < argc)
		return cmd_die(WHO, EXIT_USAGE, "give either --pid or a command, not both");
	if (!a.pid && cmd_i >= argc)
		return cmd_die(WHO, EXIT_USAGE,
			   "nothing to profile: give --pid PID or a command after '--'");
	t = calloc(1, sizeof(*t));
	if (!t)
		return cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
	/* From the start: a SIGUSR1 while attaching must not end the run. */
	install_usr1();

	if (a.pid) {
		pid = (pid_t)a.pid;
		rc = plan_outputs(&a, "pyspyc", (int)pid, outs, &nout, defname, sizeof(defname));
		/* The backend after the outputs' checks: its descriptors must
		 * not take a closed standard one's number first. */
		if (rc || (rc = cmd_outputs_check(outs, nout)) || (rc = cmd_check_pid(WHO, pid)) ||
		    (rc = cmd_backend_open(WHO, &a.s, &bc)) >= 0)
			goto out;
		rc = 0;
		e = cmd_find_target(t, pid, find_flags);
		/* With -s the root may be a supervisor that is not Python. */
		if (e && a.subprocesses && (e == -ENOEXEC || e == -EAGAIN))
			found = 0;
		else if (e) {
			rc = cmd_attach_error(WHO, e, pid, t);
			goto out;
		}
		if (found && (rc = cmd_backend_fit(WHO, t, &bc)) >= 0)
			goto out;
		rc = 0;
		if (proc_cmdline(pid, command, sizeof(command)) || !command[0])
			snprintf(command, sizeof(command), "pid %d", (int)pid);
		cmd_install_signals();
	} else {
		const char *base = strrchr(argv[cmd_i], '/');

		rc = plan_outputs(&a, base ? base + 1 : argv[cmd_i], (int)getpid(), outs,
				  &nout, defname, sizeof(defname));
		if (rc || (rc = cmd_outputs_check(outs, nout)) ||
		    (rc = cmd_backend_open(WHO, &a.s, &bc)) >= 0)
			goto out;
		rc = 0;
		cmd_join_command(argv + cmd_i, command, sizeof(command));
		cmd_install_signals();
		e = cmd_launch(argv + cmd_i, 0, &child);
		if (e) {
			rc = cmd_launch_error(WHO, argv[cmd_i], e);
			goto out;
		}
		pid = child;
		/* With -s the tree watcher finds Python wherever it starts. */
		found = !a.subprocesses;
		e = found ? cmd_attach_launched(t, child, find_flags, &exited) : 0;
		if (e && !(exited && e != -ENOEXEC)) {
			if (exited && e == -ENOEXEC)
				rc = cmd_die(WHO, EXIT_NOT_PYTHON, "'%s' exited without running "
					 "Python", CMD_NAME(argv[cmd_i]));
			else
				rc = cmd_attach_error(WHO, e, pid, t);
			goto out;
		}
		if (found && !e && (rc = cmd_backend_fit(WHO, t, &bc)) >= 0)
			goto out;
		rc = 0;
	}

	{
		struct stacktab_limits lim;
		struct session_opts so;

		needs = outputs_need(outs, nout);
		cmd_sample_setup(&a.s, &so, &lim);
		cmd_backend_setup(&bc, &so);
		so.duration_s = a.duration;
		so.subprocesses = a.subprocesses;
		so.threads = a.threads || (needs & OUT_PER_THREAD);
		so.find_flags = find_flags;
		so.sym.lineno = !a.nolineno;

		e = stacktab_new(&tab, &lim);
		if (!e && (needs & OUT_TIMELINE))
			e = stacktab_timeline(tab, (uint64_t)a.max_timeline);
		/* The launched command has its mask already (exec keeps it). */
		block_usr1(SIG_BLOCK);
		if (!e)
			e = session_new(&sess, &so, tab);
		r.t0_ns = r.win_ns = mono_ns();
		r.t0_wall_ns = wall_ns();
		if (!e && !exited)
			e = session_start(sess, pid, found ? t : NULL);
		block_usr1(SIG_UNBLOCK);
		if (e) {
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot start sampling: %s", strerror(-e));
			goto out;
		}
		r.nout = nout;
		r.tab = tab;
		r.sess = sess;
		r.command = command;
		r.pid = pid;
		r.show = want_progress(outs, nout);
		if (!exited)
			run_session(&r);
		session_stats(sess, &st);
	}

	/* The samplers have stopped: the open window is the last one, or the
	 * whole run without --period. */
	e = stacktab_snapshot(tab, &prof);
	if (e) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot build the profile: %s", strerror(-e));
		goto out;
	}
	describe(&r, &prof, r.win_ns, mono_ns());
	if (!(a.period > 0))
		prof.duration_s = st.elapsed_s;
	r.timeline_lost += prof.timeline_lost;
	if (child) {
		cmd_end_child(child, &end);
		cmd_child_end_words(&end, ended, sizeof(ended));
	} else if (st.root_exited) {
		/* An attached process ending the run says so, as a command does. */
		snprintf(ended, sizeof(ended), "pid %d exited", (int)pid);
	}
	child = 0;
	memset(written, 0, sizeof(written));
	write_profile(&r, &prof, written, 0);
	rc = r.failed;
	summary(&st, &a, outs, nout, written, tab, r.timeline_lost, r.window + 1, ended, &bc);
	/* A launched command's failure is the run's: a CI step that runs
	 * its tests under pyspyc fails when they do.  pyspyc's own errors
	 * (the line it printed) come first. */
	rc = cmd_child_exit_status(rc, &end);
out:
	if (child)
		cmd_end_child(child, NULL);
	cmd_outputs_release(outs, nout);
	profile_release(&prof);
	session_free(sess);
	cmd_backend_close(&bc);
	stacktab_free(tab);
	free(t);
	return rc;
}
