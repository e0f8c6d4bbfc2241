/* main.c - dispatch to subcommands. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "pyspyc/cli.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_util.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "record", cmd_record, "sample a Python process and write a profile" },
	{ "top", cmd_top, "show a live view of the functions a Python process runs" },
	{ "dump", cmd_dump, "print the stack of every thread of a Python process once" },
	{ "agent", cmd_agent, "sample a host's Python services all the time (a daemon)" },
	{ "convert", cmd_convert, "merge profiles and write them in another format" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: pyspyc <command> [OPTIONS]\n\n"
		   "A sampling profiler for Python programs.\n\nCommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\nOptions:\n  -h, --help     show this help\n"
		   "  -V, --version  show the version\n\n"
		   "Run 'pyspyc <command> --help' for a command's options.\n"
		   "Examples:\n"
		   "  sudo pyspyc record --pid 12345 -o profile.svg -o profile.folded\n"
		   "  pyspyc record -o profile.svg -- python3 app.py arg\n"
		   "  sudo pyspyc top --pid 12345\n"
		   "  sudo pyspyc dump --pid 12345\n"
		   "  sudo pyspyc agent --config /etc/pyspyc/agent.conf\n"
		   "  pyspyc convert worker-*.folded -o all-workers.svg\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		fprintf(stderr, "pyspyc: no command given (try 'pyspyc --help')\n");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("pyspyc %s\n", PYSPYC_VERSION);
		return EXIT_OK;
	}
	cmd_raise_nofile();
	/* A fixed threshold: glibc otherwise raises it to the size of any
	 * large block freed, and then hands out large zeroed blocks (each
	 * process's walker and caches, a few MB, with -s hundreds of them)
	 * from the heap by writing zeros over them, where fresh mappings are
	 * zero for free and only the pages used are ever touched. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "pyspyc: unknown command '%.64s' (try 'pyspyc --help')\n", argv[1]);
	return EXIT_USAGE;
}
