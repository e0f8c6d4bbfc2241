/* cli.c - table-driven option parsing and help. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/cli.h"
#include "pyspyc/utf8.h"

int cli_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end || end == s)
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	*out = v;
	return 0;
}

int cli_parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || end == s)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

static const struct opt *find_long(const struct cmd_usage *u, const char *name,
				   size_t len)
{
	size_t i;

	for (i = 0; i < u->nopts; i++)
		if (strlen(u->opts[i].long_name) == len &&
		    !strncmp(u->opts[i].long_name, name, len))
			return &u->opts[i];
	return NULL;
}

static const struct opt *find_short(const struct cmd_usage *u, char c)
{
	size_t i;

	for (i = 0; i < u->nopts; i++)
		if (u->opts[i].short_name == c)
			return &u->opts[i];
	return NULL;
}

static void opt_name(const struct opt *o, char *buf, size_t n)
{
	snprintf(buf, n, "--%s", o->long_name);
}

static int set_value(const struct opt *o, const char *val, void *out, char *err,
		     size_t errlen)
{
	char *base = out;
	char name[64];
	int r;

	opt_name(o, name, sizeof(name));
	switch (o->type) {
	case OPT_FLAG:
		*(int *)(base + o->offset) = 1;
		return 0;
	case OPT_STRING:
		if (!*val) {
			snprintf(err, errlen, "%s needs a non-empty %s", name, o->metavar);
			return -EINVAL;
		}
		*(const char **)(base + o->offset) = val;
		return 0;
	case OPT_LIST: {
		struct opt_list *l = (struct opt_list *)(base + o->offset);

		if (!*val) {
			snprintf(err, errlen, "%s needs a non-empty %s", name, o->metavar);
			return -EINVAL;
		}
		if (l->n == OPT_LIST_MAX) {
			snprintf(err, errlen, "%s given more than %d times", name, OPT_LIST_MAX);
			return -EINVAL;
		}
		l->v[l->n++] = val;
		return 0;
	}
	case OPT_INT: {
		long long v;

		r = cli_parse_ll(val, &v);
		if (r || v < o->min || v > o->max) {
			snprintf(err, errlen, "%s: '%.64s' is not a whole number from %.0f to %.0f",
				 name, val, o->min, o->max);
			return -EINVAL;
		}
		*(long long *)(base + o->offset) = v;
		return 0;
	}
	case OPT_DOUBLE: {
		double v;

		r = cli_parse_double(val, &v);
		if (r || v > o->max || v < o->min || (o->min_exclusive && v <= o->min)) {
			snprintf(err, errlen, "%s: '%.64s' is not a number %s %g and at most %g",
				 name, val, o->min_exclusive ? "above" : "of at least",
				 o->min, o->max);
			return -EINVAL;
		}
		*(double *)(base + o->offset) = v;
		return 0;
	}
	}
	return -EINVAL;
}

int cli_parse(const struct cmd_usage *u, int argc, char **argv, void *out,
	      int *cmd_index, int *help, char *err, size_t errlen)
{
	struct cli_operands *ops = u->takes_operands
				   ? (struct cli_operands *)((char *)out + u->operands) : NULL;
	int i;

	*help = 0;
	*cmd_index = argc;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char nb[401]; /* a name shown whole up to 400 bytes, as CMD_NAME */
		const struct opt *o;

		if (!strcmp(a, "--")) {
			if (ops) {
				while (++i < argc)
					ops->v[ops->n++] = argv[i];
				break;
			}
			*cmd_index = i + 1;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*help = 1;
			return 0;
		}
		if (a[0] != '-' || !a[1]) {
			if (ops) {
				ops->v[ops->n++] = a;
				continue;
			}
			if (u->takes_command) {
				*cmd_index = i;
				break;
			}
			snprintf(err, errlen, "unexpected argument '%s'",
				 utf8_shorten(a, sizeof(nb) - 1, nb, sizeof(nb)));
			return -EINVAL;
		}
		if (a[1] == '-') {
			eq = strchr(a + 2, '=');
			o = find_long(u, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (!o) {
				snprintf(err, errlen, "unknown option '%.64s' (see 'pyspyc %s --help')",
					 a, u->name);
				return -EINVAL;
			}
			if (eq)
				val = eq + 1;
			if (o->type == OPT_FLAG && eq) {
				snprintf(err, errlen, "--%s takes no value", o->long_name);
				return -EINVAL;
			}
		} else {
			o = find_short(u, a[1]);
			if (!o) {
				snprintf(err, errlen, "unknown option '%.64s' (see 'pyspyc %s --help')",
					 a, u->name);
				return -EINVAL;
			}
			if (a[2]) {
				if (o->type == OPT_FLAG) {
					snprintf(err, errlen, "unknown option '%.64s'", a);
					return -EINVAL;
				}
				val = a + 2;
			}
		}
		if (o->type != OPT_FLAG && !val) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--%s needs a value (%s)", o->long_name,
					 o->metavar);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (set_value(o, val, out, err, errlen))
			return -EINVAL;
	}
	return 0;
}

/* text after a 31-column left part, wrapped at spaces to 79 columns. */
#define HELP_INDENT 31
#define HELP_WIDTH 79

static void put_wrapped(const char *text, FILE *f)
{
	const char *p = text;
	int first = 1;

	while (*p) {
		size_t room = HELP_WIDTH - HELP_INDENT, n = strlen(p), cut = n;

		if (n > room) {
			cut = room;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0) /* one word longer than the line */
				for (cut = room; p[cut] && p[cut] != ' '; cut++)
					;
		}
		fprintf(f, "%*s%.*s\n", first ? 0 : HELP_INDENT, "", (int)cut, p);
		first = 0;
		p += cut;
		while (*p == ' ')
			p++;
	}
	if (first)
		fputc('\n', f);
}

void cli_print_help(const struct cmd_usage *u, FILE *f)
{
	size_t i;

	fprintf(f, "Usage: pyspyc %s %s\n\n%s\n\nOptions:\n", u->name, u->synopsis, u->about);
	for (i = 0; i < u->nopts; i++) {
		const struct opt *o = &u->opts[i];
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name,
				 o->long_name, o->metavar ? " " : "",
				 o->metavar ? o->metavar : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->long_name,
				 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		if (strlen(left) > HELP_INDENT - 3)
			fprintf(f, "  %s\n%*s", left, HELP_INDENT, "");
		else
			fprintf(f, "  %-28s ", left);
		put_wrapped(o->help, f);
	}
	fprintf(f, "  %-28s ", "-h, --help");
	put_wrapped("show this help and exit", f);
	if (u->examples)
		fprintf(f, "\nExamples:\n%s", u->examples);
}
