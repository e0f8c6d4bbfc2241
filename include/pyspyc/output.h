/* output.h - output formats and the atomic file writer.
 *
 * Every format is one writer function over a finished struct profile.
 * Files are written to a temporary name in the destination directory and
 * renamed into place: a crash never leaves half a file, and a symlink at the
 * destination is replaced, never written through.
 */
#ifndef PYSPYC_OUTPUT_H
#define PYSPYC_OUTPUT_H

#include <stdio.h>
#include "pyspyc/profile.h"

struct out_opts {
	int inverted;   /* icicle graph instead of flame graph (SVG) */
	const char *title; /* NULL: a title made from the profile */
};

/* What a format needs from the run (struct out_format.needs). */
enum {
	/* Thread markers (FRAME_THREAD) on every stack, whatever -t says:
	 * the writer carries threads itself (a profile or label per thread).
	 * Formats without it get the thread markers only with -t. */
	OUT_PER_THREAD = 1,
	/* The timeline (profile.samples). */
	OUT_TIMELINE = 2,
};

/* A writer streams the whole document to f.  Returns 0 or -errno (the
 * writer checks ferror(f) itself before returning). */
typedef int (*out_write_fn)(const struct profile *p, const struct out_opts *o,
			    FILE *f);

struct out_format {
	const char *name;        /* "flamegraph", "raw", ... */
	const char *const *exts; /* NULL-terminated list of file name endings */
	out_write_fn write;
	const char *help;
	unsigned needs;          /* OUT_PER_THREAD | OUT_TIMELINE */
};

/* The format called name (also accepts aliases such as "collapsed"), or
 * NULL. */
const struct out_format *out_format_by_name(const char *name);

/* The format whose extension ends path, or NULL when none does ("-" is
 * raw).  A bare .json names no format: speedscope and chrometrace are both
 * JSON. */
const struct out_format *out_format_by_path(const char *path);

/* All formats, NULL-terminated. */
const struct out_format *const *out_formats(void);

/* Writers. */
int out_collapsed_write(const struct profile *p, const struct out_opts *o,
			FILE *f);
int out_svg_write(const struct profile *p, const struct out_opts *o, FILE *f);
/* Needs OUT_PER_THREAD | OUT_TIMELINE; without a (complete) timeline it
 * writes the aggregated stacks. */
int out_speedscope_write(const struct profile *p, const struct out_opts *o,
			 FILE *f);
/* Needs OUT_PER_THREAD | OUT_TIMELINE; without a timeline, a trace with no
 * events. */
int out_chrometrace_write(const struct profile *p, const struct out_opts *o,
			  FILE *f);
/* pprof's profile.proto, gzip-compressed; threads and processes as sample
 * labels (pid, tid, thread_name).  See out_pprof.c for the mapping. */
int out_pprof_write(const struct profile *p, const struct out_opts *o, FILE *f);

/* Write one output atomically: path "-" means stdout.  Returns 0 or -errno;
 * on failure nothing is left at path (an existing file there is untouched). */
int out_write_file(const char *path, const struct out_format *fmt,
		   const struct profile *p, const struct out_opts *o);

/* Check, before sampling starts, that path can be written: its directory
 * exists and is writable, and path itself is not a directory.  Returns 0 or
 * -errno (-EISDIR, -ENOENT, -EACCES, ...). */
int out_check_path(const char *path);

#endif
