/* cli.h - declarative command-line options.
 *
 * Each subcommand describes its options in one table; the same table drives
 * parsing, --help and (by hand, checked by a test) the man page.  Numbers
 * are parsed strictly: the whole argument must be a number, finite, and in
 * the option's range.
 */
#ifndef PYSPYC_CLI_H
#define PYSPYC_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit statuses, documented in pyspyc(1). */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_RUN = 1,   /* the run failed (out of memory, sampling could not start) */
	EXIT_USAGE = 2,         /* malformed command line */
	EXIT_NO_PROCESS = 3,    /* no such process (or a zombie) */
	EXIT_PERMISSION = 4,    /* not allowed to read the target */
	EXIT_NOT_PYTHON = 5,    /* not Python, or an unsupported version */
	EXIT_OUTPUT = 6,        /* an output path cannot be written */
	EXIT_STALE = 7,         /* the target's program file was replaced on disk and the
				 * one it runs cannot be opened */
	EXIT_CONFIG = 8,        /* the agent's configuration is wrong (nothing started) */
	EXIT_INPUT = 9,         /* convert: an input profile cannot be read or is malformed
				 * (nothing written) */
	EXIT_CANNOT_EXEC = 126, /* the command exists but cannot be run (as env(1)) */
	EXIT_NO_COMMAND = 127,  /* the command is not found (as env(1)) */
};

enum opt_type {
	OPT_FLAG,     /* sets an int to 1 */
	OPT_INT,      /* long long in [min, max] */
	OPT_DOUBLE,   /* double in (min, max] when min_exclusive, else [min, max] */
	OPT_STRING,   /* one string (last wins) */
	OPT_LIST,     /* repeatable string */
};

struct opt {
	char short_name;        /* 0: none */
	const char *long_name;
	enum opt_type type;
	const char *metavar;
	const char *help;
	size_t offset;          /* where in the caller's struct the value goes */
	double min, max;
	int min_exclusive;
};

/* Operands (cmd_usage.takes_operands). */
struct cli_operands {
	const char **v;
	int n;
};

/* A repeatable option's values. */
#define OPT_LIST_MAX 16
struct opt_list {
	const char *v[OPT_LIST_MAX];
	int n;
};

struct cmd_usage {
	const char *name;       /* "record" */
	const char *synopsis;   /* "[OPTIONS] (--pid PID | [--] COMMAND [ARGS...])" */
	const char *about;
	const struct opt *opts;
	size_t nopts;
	const char *examples;
	int takes_command;      /* a trailing command is allowed */
	/* Words that are not options, wherever they are, and every word after
	 * "--", are operands (the input files of convert): appended to the
	 * struct cli_operands at this offset in the caller's struct, whose v
	 * the caller points at room for argc of them.  0: none taken. */
	int takes_operands;
	size_t operands;
};

/* Parse argv[1..argc) of a subcommand into the struct at out.  On success
 * returns 0 and sets *cmd_index to the index of the first word of a trailing
 * command (argc when none), *help to 1 when -h/--help was given.  On error
 * writes one line to err (size errlen) and returns -EINVAL. */
int cli_parse(const struct cmd_usage *u, int argc, char **argv, void *out,
	      int *cmd_index, int *help, char *err, size_t errlen);

/* Print u's --help text. */
void cli_print_help(const struct cmd_usage *u, FILE *f);

/* Strict number parsing (exposed for the tests). 0 or -EINVAL / -ERANGE. */
int cli_parse_double(const char *s, double *out);
int cli_parse_ll(const char *s, long long *out);

#endif
