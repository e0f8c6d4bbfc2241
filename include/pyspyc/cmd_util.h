/* cmd_util.h - what every subcommand does with its target: check a pid,
 * explain why it cannot be profiled, start a command, wait for its
 * interpreter, and end it.  The cmd_* layer prints; these helpers print the
 * one line they are asked to and return the exit status to use.
 */
#ifndef PYSPYC_CMD_UTIL_H
#define PYSPYC_CMD_UTIL_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyspyc/cli.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_walk.h"
#include "pyspyc/session.h"
#include "pyspyc/stacktab.h"
#include "pyspyc/utf8.h"

/* Parse a subcommand's arguments into args (see cli_parse) and
 * PYSPYC_FIND into *find_flags (may be NULL; a bad value is told as who).
 * Returns -1 to go on, or the exit status to return at once: --help was
 * shown, or a usage error was told in one line. */
int cmd_parse(const char *who, const struct cmd_usage *u, int argc, char **argv,
	      void *args, int *cmd_index, unsigned int *find_flags);

/* How record and top sample, and how much they keep.  Each command's
 * arguments hold one (member m of type T) and list its options with the
 * SAMPLE_OPT_* macros, placed where the command's --help wants them. */
struct sample_args {
	double rate;
	int idle;
	int gil;
	int blocking;
	int nonblocking;
	int function;
	int full_filenames;
	long long max_depth;
	long long max_stacks;
	long long max_frames;
	long long max_threads;
	long long max_processes;
	const char *backend;         /* --backend: "auto", "bpf", "user" (NULL: the default) */
};

/* --max-threads when not given (record, top and dump). */
#define MAX_THREADS_DEFAULT 8192

/* --max-processes when not given (record and top). */
#define MAX_PROCESSES_DEFAULT 4096

#define SAMPLE_ARGS_DEFAULT \
	{ .rate = 100, .max_depth = 4096, .max_stacks = 200000, .max_frames = 1 << 20, \
	  .max_threads = MAX_THREADS_DEFAULT, .max_processes = MAX_PROCESSES_DEFAULT }

#define SAMPLE_OPT_RATE(T, m) \
	{ 'r', "rate", OPT_DOUBLE, "HZ", "samples per second (default 100)", \
	  offsetof(T, m.rate), 0, 100000, 1 }

/* --full-filenames (record, top and dump), into the int at field f. */
#define OPT_FULL_FILENAMES(T, f) \
	{ 0, "full-filenames", OPT_FLAG, NULL, \
	  "show whole file names instead of package-relative ones", \
	  offsetof(T, f), 0, 0, 0 }

/* --nolineno (record and dump; top's starts with them hidden). */
#define OPT_NOLINENO(T, f) \
	{ 0, "nolineno", OPT_FLAG, NULL, "do not show line numbers", \
	  offsetof(T, f), 0, 0, 0 }

/* --full-filenames and -F. */
#define SAMPLE_OPTS_NAMES(T, m) \
	OPT_FULL_FILENAMES(T, m.full_filenames), \
	{ 'F', "function", OPT_FLAG, NULL, \
	  "aggregate by function: show each function's first line", \
	  offsetof(T, m.function), 0, 0, 0 }

/* -i, -g, --blocking and --nonblocking. */
#define SAMPLE_OPTS_MODE(T, m) \
	{ 'i', "idle", OPT_FLAG, NULL, \
	  "count threads that are waiting too (default: only threads on a CPU)", \
	  offsetof(T, m.idle), 0, 0, 0 }, \
	{ 'g', "gil", OPT_FLAG, NULL, "count only the thread holding the GIL", \
	  offsetof(T, m.gil), 0, 0, 0 }, \
	{ 0, "blocking", OPT_FLAG, NULL, \
	  "pause the target's Python threads while each sample is read " \
	  "(consistent stacks; slows the target)", \
	  offsetof(T, m.blocking), 0, 0, 0 }, \
	{ 0, "nonblocking", OPT_FLAG, NULL, \
	  "never pause the target (the default; for py-spy compatibility)", \
	  offsetof(T, m.nonblocking), 0, 0, 0 }, \
	{ 0, "backend", OPT_STRING, "NAME", \
	  "bpf (stacks walked in the kernel at a timer interrupt), user (read " \
	  "from user space at each tick; the default) or auto (bpf when it " \
	  "loads and the options allow it)", \
	  offsetof(T, m.backend), 0, 0, 0 }

/* --max-threads (record, top and dump): what a process's threads beyond it
 * are, and its range. */
#define MAX_THREADS_HELP \
	"Python threads read per process (default 8192); the oldest threads " \
	"beyond it are left out, and counted"
#define OPT_MAX_THREADS(T, m) \
	{ 0, "max-threads", OPT_INT, "N", MAX_THREADS_HELP, offsetof(T, m), 1, \
	  PY_WALK_MAX_THREADS, 0 }

/* --max-depth, --max-stacks, --max-frames, --max-threads and
 * --max-processes. */
#define SAMPLE_OPTS_LIMITS(T, m) \
	{ 0, "max-depth", OPT_INT, "N", \
	  "frames kept per stack before it is truncated (default 4096)", \
	  offsetof(T, m.max_depth), 1, 65536, 0 }, \
	{ 0, "max-stacks", OPT_INT, "N", "unique stacks kept in memory (default 200000)", \
	  offsetof(T, m.max_stacks), 16, 100000000, 0 }, \
	{ 0, "max-frames", OPT_INT, "N", \
	  "unique frames and unique names kept in memory (default 1048576)", \
	  offsetof(T, m.max_frames), 1024, 100000000, 0 }, \
	OPT_MAX_THREADS(T, m.max_threads), \
	{ 0, "max-processes", OPT_INT, "N", \
	  "processes sampled at once with -s (default 4096); Python processes " \
	  "beyond it are left out, and counted", \
	  offsetof(T, m.max_processes), 1, 1000000, 0 }

/* Options that cannot go together (--blocking with --nonblocking): one
 * line and EXIT_USAGE, else 0. */
int cmd_sample_check(const char *who, const struct sample_args *s);

/* The session options and table limits s asks for.  What differs by
 * command (duration, subprocesses, threads, line numbers, find flags) is
 * left zero for the caller. */
void cmd_sample_setup(const struct sample_args *s, struct session_opts *so,
		      struct stacktab_limits *lim);

/* The backend a run samples with (--backend), chosen before anything is
 * attached or launched.  name: "bpf" or "user"; why: for auto, why not
 * bpf ("" when it is bpf). */
struct bpf_hub;
struct backend_choice {
	const char *name;
	struct bpf_hub *hub;
	int asked_bpf;               /* --backend bpf, not auto */
	char why[256];
};

/* Choose and open the backend s asks for at its rate.  -1 to go on, or
 * the exit status after one line on stderr: EXIT_USAGE for an unknown
 * name or --backend bpf with --idle, --gil or --blocking; EXIT_PERMISSION
 * when bpf is not allowed; EXIT_FAILURE_RUN when it cannot load. */
int cmd_backend_open(const char *who, const struct sample_args *s, struct backend_choice *bc);

/* The same without a word: name NULL for the default (PYSPYC_BACKEND,
 * else user); opt the option that rules bpf out, or NULL.  0 with bc
 * set (bc->why says why not bpf, for auto); -EINVAL for an unknown name
 * or bpf with opt; the hub's -errno for bpf that cannot load (bc->why:
 * "bpf: WHAT"). */
int cmd_backend_pick(const char *name, const char *opt, double rate, struct backend_choice *bc);

/* Once the target t is found: when the eBPF program cannot read its frames
 * (bpf_layout_ok), auto closes the hub
 * and samples with user, bc->why saying why; bpf asked by name is refused.
 * -1 to go on, or the exit status (EXIT_NOT_PYTHON) after one line. */
struct py_target;
int cmd_backend_fit(const char *who, const struct py_target *t, struct backend_choice *bc);

/* The session options for it (after cmd_sample_setup). */
void cmd_backend_setup(const struct backend_choice *bc, struct session_opts *so);

/* After the session is freed. */
void cmd_backend_close(struct backend_choice *bc);

/* "; backend bpf (N us in the kernel per sample)" or "; backend user
 * (auto: WHY)" on stderr, for the summary line. */
struct session_stats;
void cmd_backend_words(const struct backend_choice *bc, const struct session_stats *st);

/* Raise the soft RLIMIT_NOFILE to the hard one: a sampler keeps a stat file
 * open per thread of the target (py_threads.h).  A command started by
 * cmd_launch gets the limit pyspyc was started with.  Call once, first. */
void cmd_raise_nofile(void);

/* Set by SIGINT, SIGTERM and SIGHUP once cmd_install_signals() ran. */
extern volatile sig_atomic_t cmd_stop_flag;

/* Catch SIGINT, SIGTERM and SIGHUP into cmd_stop_flag (no SA_RESTART, so
 * sleeps wake up), and ignore SIGPIPE (a closed stdout is an error return,
 * not a death).  Idempotent. */
void cmd_install_signals(void);

/* Format a message into line as one line: control characters as '?'. */
void cmd_vline(char *line, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* "WHO: message" on stderr; returns code. */
int cmd_die(const char *who, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Why py_target_find(pid) failed with err, as one line; the exit status. */
int cmd_attach_error(const char *who, int err, pid_t pid, const struct py_target *t);

/* A --pid that cannot be a target (pyspyc itself, gone, a zombie, a kernel
 * thread): one line and the exit status; 0 when it may be one. */
int cmd_check_pid(const char *who, pid_t pid);

/* Start argv as a child.  quiet: its standard streams are /dev/null.  An
 * exec failure is reported through a close-on-exec pipe as -errno, with the
 * child reaped.  0 or -errno. */
int cmd_launch(char **argv, int quiet, pid_t *child);

/* Says why a launched command could not start (err from cmd_launch) and
 * returns the exit status: EXIT_NO_COMMAND when it was not found,
 * EXIT_CANNOT_EXEC when it exists but cannot be run, EXIT_FAILURE_RUN when
 * the fork itself failed. */
int cmd_launch_error(const char *who, const char *cmd, int err);

/* Has our child exited?  Read from /proc without reaping it, so it is safe
 * while the child is traced (waitpid would take its ptrace stops). */
int cmd_child_exited(pid_t child);

/* Wait up to 5 s for a launched command to bring up its interpreter (or
 * until cmd_stop_flag).  0 when found; when the command exits first, sets
 * *exited and returns what was seen before: -ENOEXEC (never Python) or the
 * last error. */
int cmd_attach_launched(struct py_target *t, pid_t child, unsigned int flags,
			int *exited);

/* argv joined by spaces into buf (cut to size). */
void cmd_join_command(char **argv, char *buf, size_t size);

/* How a launched command ended, from cmd_end_child(). */
struct child_end {
	int how;      /* CHILD_* */
	int status;   /* CHILD_EXITED: its exit status; CHILD_SIGNALLED: the signal */
};

enum {
	CHILD_UNKNOWN = 0, /* reaped elsewhere, or not ours */
	CHILD_EXITED,      /* it exited by itself */
	CHILD_SIGNALLED,   /* a signal killed it (not ours) */
	CHILD_ENDED,       /* still running at the end of the run: we ended it */
};

/* End a command we started and reap it: SIGTERM, then SIGKILL a second
 * later if needed.  end (may be NULL) says how it ended. */
void cmd_end_child(pid_t child, struct child_end *end);

/* How the command ended, as words ("the command exited with status 7",
 * "the command was killed by signal SIGSEGV"), into buf; "" when unknown. */
void cmd_child_end_words(const struct child_end *end, char *buf, size_t size);

/* The exit status for a run that launched a command: pyspyc's own status rc
 * when it is not EXIT_OK (its errors come first), else the command's: its
 * exit status, or 128 + the signal that killed it, as a shell gives.  A
 * command still running at the end (the duration is over) and ended by
 * pyspyc leaves EXIT_OK. */
int cmd_child_exit_status(int rc, const struct child_end *end);

/* py_target_find(), waiting a bounded while for an interpreter that is
 * starting up: a runtime with no interpreter yet (-EAGAIN: Python is
 * initialising, or an embedding host is between finalizing and
 * initialising again), up to CMD_INTERP_WAIT_NS from the first look, as
 * long as a launched command has to start Python; and a process that is
 * not Python (yet) but started less than CMD_STARTUP_WAIT_NS ago (a shell
 * that has forked and not exec'd yet, libpython not mapped yet).  Returns
 * as py_target_find(). */
#define CMD_STARTUP_WAIT_NS 1000000000LL
#define CMD_INTERP_WAIT_NS 5000000000LL
int cmd_find_target(struct py_target *t, pid_t pid, unsigned int flags);

/* Paths and commands in messages: whole up to CMD_NAME_MAX bytes, a longer
 * one as its start and end around "..." (utf8_shorten), so the end of a
 * name (its extension) is always seen.  CMD_NAME(s) is for one message's
 * arguments: its buffer lasts to the end of the enclosing block. */
#define CMD_NAME_MAX 400
struct cmd_name_buf {
	char s[CMD_NAME_MAX + 1];
};
#define CMD_NAME(str) \
	utf8_shorten((str), CMD_NAME_MAX, (struct cmd_name_buf){ { 0 } }.s, CMD_NAME_MAX + 1)

#endif
