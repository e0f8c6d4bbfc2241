/* cmd_convert.c - `pyspyc convert`: read profiles, merge them, write any
 * output format.
 *
 * Every input is read and parsed before any output is opened: a malformed
 * input is one line naming the file and where it is wrong, exit status
 * EXIT_INPUT, and nothing written.  Inputs are merged by adding counts
 * (input.h); the profile written is the same one for every output.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyspyc/cli.h"
#include "pyspyc/clock.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_outputs.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/input.h"
#include "pyspyc/output.h"
#include "pyspyc/stacktab.h"

#define WHO "pyspyc convert"
/* The largest input read (a collapsed file of this size is tens of
 * millions of stacks). */
#define MAX_INPUT_BYTES ((size_t)1 << 30)
#define MAX_OUTPUTS OPT_LIST_MAX

struct convert_args {
	struct cli_operands inputs;
	struct opt_list outputs;
	const char *format;
	const char *title;
	double rate;
	int inverted;
	long long max_stacks;
	long long max_frames;
};

#define OFF(f) offsetof(struct convert_args, f)

static const struct opt convert_opts[] = {
	{ 'o', "output", OPT_LIST, "FILE",
	  "write the merged profile to FILE; repeatable; the format follows the extension: "
	  OUT_HELP_ENDINGS "; '-' writes to stdout (collapsed stacks unless --format "
	  "says otherwise)",
	  OFF(outputs), 0, 0, 0 },
	{ 'f', "format", OPT_STRING, "FORMAT",
	  "format of outputs whose name has no known extension (such as '-'): "
	  OUT_HELP_FORMATS,
	  OFF(format), 0, 0, 0 },
	{ 'r', "rate", OPT_DOUBLE, "HZ",
	  "the rate the inputs were sampled at, which collapsed stacks and speedscope's "
	  "times do not carry: a sample is 1/HZ seconds (default: the pprof inputs' "
	  "rate, else 100, record's default)",
	  OFF(rate), 0, 1e6, 1 },
	{ 0, "title", OPT_STRING, "TEXT",
	  "the flame graph's title (default: the inputs' names)",
	  OFF(title), 0, 0, 0 },
	OPT_INVERTED(struct convert_args, inverted),
	{ 0, "max-stacks", OPT_INT, "N",
	  "distinct stacks kept (default 10000000)",
	  OFF(max_stacks), 1, (1 << 27) - 1, 0 },
	{ 0, "max-frames", OPT_INT, "N",
	  "distinct frames and strings kept (default 10000000)",
	  OFF(max_frames), 1, 1 << 30, 0 },
};

static const struct cmd_usage convert_usage = {
	.name = "convert",
	.synopsis = "[OPTIONS] INPUT... -o OUTPUT...",
	.about = "Read profiles (collapsed stacks, ours or flamegraph.pl's; pprof,\n"
		 "ours or Go's, gzip-compressed or not; speedscope, sampled or\n"
		 "evented), merge them (counts add) and write the result in any output\n"
		 "format.  An input that is not well formed is named with the line or\n"
		 "byte where it goes wrong, and nothing is written.  '-' reads standard\n"
		 "input.",
	.opts = convert_opts,
	.nopts = sizeof(convert_opts) / sizeof(convert_opts[0]),
	.examples =
		"  pyspyc convert web.folded -o web.svg -o web.pb.gz\n"
		"  pyspyc convert worker-*.folded -o all-workers.svg\n"
		"  pyspyc convert /var/lib/pyspyc/web/20261207T10*.pb.gz -o web-10h.svg\n"
		"  stackcollapse-perf.pl perf.txt | pyspyc convert - -o perf.speedscope.json\n",
	.takes_operands = 1,
	.operands = OFF(inputs),
};

/* Each output's format, from its name or --format. */
static int plan(const struct convert_args *a, struct cmd_output *outs)
{
	const struct out_format *forced;
	int i, rc = cmd_format_forced(WHO, a->format, &forced);

	for (i = 0; i < a->outputs.n && !rc; i++)
		rc = cmd_output_plan(WHO, a->outputs.v[i], forced, &outs[i]);
	return rc;
}

/* Read path whole into *data, *len.  0, or the exit status of the line
 * printed. */
static int load(const char *path, char **data, size_t *len)
{
	int err = in_read_file(path, MAX_INPUT_BYTES, data, len);

	if (err == -EFBIG)
		return cmd_die(WHO, EXIT_INPUT, "'%s': larger than %zu MiB", CMD_NAME(path),
			       MAX_INPUT_BYTES >> 20);
	if (err)
		return cmd_die(WHO, EXIT_INPUT, "cannot read '%s': %s", CMD_NAME(path),
			       strerror(-err));
	return 0;
}

enum input_kind { INPUT_COLLAPSED, INPUT_PPROF, INPUT_SPEEDSCOPE };

static enum input_kind kind_of(const char *data, size_t len)
{
	return in_is_pprof(data, len) ? INPUT_PPROF
	       : in_is_json(data, len) ? INPUT_SPEEDSCOPE : INPUT_COLLAPSED;
}

/* Parse one input's bytes, of kind, into tab (speedscope's weights at
 * rate).  0, or the exit status of the line printed. */
static int parse(struct stacktab *tab, const char *path, const char *data, size_t len,
		 enum input_kind kind, double rate, struct in_totals *tot)
{
	struct in_error e = { 0 };
	int err;

	if (kind == INPUT_PPROF)
		err = in_pprof_read(tab, data, len, tot, &e);
	else if (kind == INPUT_SPEEDSCOPE)
		err = in_speedscope_read(tab, data, len, rate, tot, &e);
	else
		err = in_collapsed_read(tab, data, len, tot, &e);
	if (err == -EINVAL && e.line)
		return cmd_die(WHO, EXIT_INPUT, "'%s' line %llu: %s", CMD_NAME(path),
			       (unsigned long long)e.line, e.what);
	if (err == -EINVAL && e.whole)
		return cmd_die(WHO, EXIT_INPUT, "'%s': %s", CMD_NAME(path), e.what);
	if (err == -EINVAL)
		return cmd_die(WHO, EXIT_INPUT, "'%s' at byte %llu%s: %s", CMD_NAME(path),
			       (unsigned long long)e.offset,
			       e.inflated ? " of its inflated data" : "", e.what);
	if (err == -ENOSPC)
		return cmd_die(WHO, EXIT_INPUT, "'%s': more distinct stacks or frames than "
			       "%s allows", CMD_NAME(path), stacktab_full(tab));
	if (err)
		return cmd_die(WHO, EXIT_FAILURE_RUN, "'%s': %s", CMD_NAME(path),
			       strerror(-err));
	return 0;
}

/* Every input into tab, each read once (standard input or a pipe cannot
 * be read again): pprof inputs, which carry their rate, and collapsed
 * stacks, which need none, as they come; speedscope documents, whose
 * weights are times made samples at the rate (--rate, else the pprof
 * inputs', else 100), kept until every input was read.  0, or the exit
 * status of the line printed. */
static int read_inputs(struct convert_args *a, struct stacktab *tab, struct in_totals *tot)
{
	struct later { char *data; size_t len; int input; } *later;
	size_t nlater = 0, i;
	int rc = 0, k;

	later = calloc((size_t)a->inputs.n + 1, sizeof(*later));
	if (!later)
		return cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
	for (k = 0; k < a->inputs.n && !rc; k++) {
		enum input_kind kind;
		char *data;
		size_t len;

		rc = load(a->inputs.v[k], &data, &len);
		if (rc)
			break;
		kind = kind_of(data, len);
		if (kind == INPUT_SPEEDSCOPE) {
			later[nlater++] = (struct later){ data, len, k };
			continue;
		}
		rc = parse(tab, a->inputs.v[k], data, len, kind, 0, tot);
		free(data);
	}
	if (!rc && a->rate > 0 && tot->rate > 0 && (a->rate > tot->rate * 1.000001 ||
						     a->rate < tot->rate * 0.999999))
		rc = cmd_die(WHO, EXIT_INPUT, "the inputs were sampled at %g Hz, not the "
			     "%g Hz --rate gives", tot->rate, a->rate);
	if (!(a->rate > 0))
		a->rate = tot->rate > 0 ? tot->rate : 100;
	for (i = 0; i < nlater && !rc; i++)
		rc = parse(tab, a->inputs.v[later[i].input], later[i].data, later[i].len,
			   INPUT_SPEEDSCOPE, a->rate, tot);
	for (i = 0; i < nlater; i++)
		free(later[i].data);
	free(later);
	return rc;
}

/* The title: the inputs' names, "a.folded + b.folded", or how many. */
static void default_title(const struct convert_args *a, char *buf, size_t size)
{
	size_t n = 0;
	int i;

	buf[0] = '\0';
	if (a->inputs.n > 3) {
		snprintf(buf, size, "%d profiles merged", a->inputs.n);
		return;
	}
	for (i = 0; i < a->inputs.n && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " + " : "",
				      strcmp(a->inputs.v[i], "-") ? a->inputs.v[i] : "stdin");
}

static int write_all(struct cmd_output *outs, int nout, const struct profile *p,
		     const struct out_opts *oo)
{
	int i, rc = 0;

	for (i = 0; i < nout; i++) {
		int err = cmd_output_write(WHO, &outs[i], p, oo);

		if (err && err != -EPIPE)
			rc = EXIT_OUTPUT;
	}
	return rc;
}

int cmd_convert(int argc, char **argv)
{
	struct convert_args a = { .max_stacks = 10000000,
				  .max_frames = 10000000 };
	struct cmd_output outs[MAX_OUTPUTS];
	struct stacktab *tab = NULL;
	struct in_totals tot = { 0 };
	struct profile p = { 0 };
	struct stacktab_limits lim;
	char title[512];
	int rc, cmd_i, i, nout = 0;

	a.inputs.v = calloc((size_t)argc + 1, sizeof(*a.inputs.v));
	if (!a.inputs.v)
		return cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
	rc = cmd_parse(WHO, &convert_usage, argc, argv, &a, &cmd_i, NULL);
	if (rc >= 0)
		goto out;
	rc = EXIT_USAGE;
	if (!a.inputs.n) {
		cmd_die(WHO, rc, "no input profile given (see 'pyspyc convert --help')");
		goto out;
	}
	if (!a.outputs.n) {
		cmd_die(WHO, rc, "no output given: -o FILE (see 'pyspyc convert --help')");
		goto out;
	}
	for (i = 0; i < a.inputs.n; i++) {
		int j;

		for (j = 0; j < i; j++)
			if (!strcmp(a.inputs.v[i], "-") && !strcmp(a.inputs.v[j], "-")) {
				cmd_die(WHO, rc, "'-' (standard input) given more than once");
				goto out;
			}
	}
	rc = plan(&a, outs);
	if (rc)
		goto out;
	nout = a.outputs.n;
	rc = cmd_outputs_check(outs, nout);
	if (rc)
		goto out;
	lim = (struct stacktab_limits){ .max_stacks = (uint32_t)a.max_stacks,
					.max_frames = (uint32_t)a.max_frames,
					.max_strings = (uint32_t)a.max_frames };
	if (stacktab_new(&tab, &lim)) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
		goto out;
	}
	rc = read_inputs(&a, tab, &tot);
	if (rc)
		goto out;
	if (stacktab_snapshot(tab, &p)) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
		goto out;
	}
	default_title(&a, title, sizeof(title));
	p.command = title;
	p.rate_hz = a.rate;
	p.duration_s = (double)p.total / a.rate;
	p.start_wall_ns = wall_ns();
	{
		struct out_opts oo = { .inverted = a.inverted, .title = a.title };

		rc = write_all(outs, nout, &p, &oo);
	}
	if (!rc)
		fprintf(stderr, "pyspyc convert: %d input%s, %llu stacks, %llu samples; wrote %d "
			"output%s\n", a.inputs.n, a.inputs.n == 1 ? "" : "s",
			(unsigned long long)p.nstacks, (unsigned long long)p.total, nout,
			nout == 1 ? "" : "s");
out:
	profile_release(&p);
	stacktab_free(tab);
	cmd_outputs_release(outs, nout);
	free(a.inputs.v);
	return rc;
}
