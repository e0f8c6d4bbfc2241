/* cmd_outputs.h - the output files of record and convert: each one's
 * name, format and destination, checked before any work is done, and
 * opened for writing at the end.
 */
#ifndef PYSPYC_CMD_OUTPUTS_H
#define PYSPYC_CMD_OUTPUTS_H

#include <limits.h>
#include <stddef.h>

#include "pyspyc/cli.h"
#include "pyspyc/output.h"

/* The -o and -f help of record and convert: the endings that pick a format,
 * and the formats' names (the list completion offers for -f). */
#define OUT_HELP_ENDINGS \
	".svg flame graph, .folded/.collapsed/.txt collapsed stacks, " \
	".speedscope.json speedscope, .trace.json chrometrace, .pb.gz/.pprof pprof, " \
	".callgrind/callgrind.out.* callgrind, .pstats/.prof pstats"
#define OUT_HELP_FORMATS "flamegraph, raw, speedscope, chrometrace, pprof, callgrind or pstats"

/* --inverted. */
#define OPT_INVERTED(T, f) \
	{ 0, "inverted", OPT_FLAG, NULL, \
	  "draw the flame graph upside down (icicle graph: roots at the top)", \
	  offsetof(T, f), 0, 0, 0 }

struct cmd_output {
	const char *tmpl;     /* as given; %t and %% expanded into name (record) */
	const char *path;     /* name */
	const struct out_format *fmt;
	struct out_dest dest; /* from cmd_outputs_check on (set_up) */
	int set_up;
	char name[PATH_MAX];
};

/* The format --format names into *forced (NULL when format is NULL).  0,
 * or the exit status of the line printed (as who) for a format not
 * known. */
int cmd_format_forced(const char *who, const char *format, const struct out_format **forced);

/* Output path's format: the one its name tells, else forced (always for
 * '-' when forced is given); *out set up for cmd_outputs_check with
 * path as its name.  0, or the exit status of the line printed (as who)
 * when neither tells. */
int cmd_output_plan(const char *who, const char *path, const struct out_format *forced,
		    struct cmd_output *out);

/* What each output path is (see enum out_kind), and whether it can be
 * written there; every dest is set up, to be released whatever this
 * returns.  0, or the exit status of the one line it printed. */
int cmd_outputs_check(struct cmd_output *outs, int nout);

void cmd_outputs_release(struct cmd_output *outs, int nout);

/* Open a device or FIFO output; a FIFO's reader is waited for, and the
 * wait said after a second.  Ctrl-C gives up.  0 or -errno. */
int cmd_output_open(struct cmd_output *out);

/* Open out and write p to it; a failure is said in one line (as who),
 * except -EPIPE: the reader went away (| head), no failure of ours.  0 or
 * -errno. */
int cmd_output_write(const char *who, struct cmd_output *out, const struct profile *p,
		     const struct out_opts *oo);

#endif
