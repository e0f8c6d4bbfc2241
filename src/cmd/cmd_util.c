/* cmd_util.c - the target's life as the subcommands see it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/cli.h"
#include "pyspyc/clock.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/backend_bpf.h"
#include "pyspyc_abi.h"

#define PB_MAX_FRAMES_TEXT "4096"
/* bpf where it loads and the options allow it, else user. */
#define BACKEND_DEFAULT "auto"
#include "pyspyc/proc.h"

#define ATTACH_WAIT_S 5.0   /* a launched command has this long to start Python */

volatile sig_atomic_t cmd_stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	cmd_stop_flag = 1;
}

void cmd_install_signals(void)
{
	static int done;
	struct sigaction sa;

	if (done)
		return;
	done = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cmd_vline(char *line, size_t size, const char *fmt, va_list ap)
{
	size_t i;

	vsnprintf(line, size, fmt, ap);
	/* One line, whatever the user typed or the target is called: control
	 * characters (a newline in a path, an escape sequence) show as '?'. */
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
}

int cmd_die(const char *who, int code, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	cmd_vline(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", who, line);
	return code;
}

int cmd_attach_error(const char *who, int err, pid_t pid, const struct py_target *t)
{
	switch (err) {
	case -ESRCH:
		return cmd_die(who, EXIT_NO_PROCESS, "no process with pid %d", (int)pid);
	case -EPERM:
	case -EACCES:
		if (geteuid() == 0)
			return cmd_die(who, EXIT_PERMISSION, "permission denied reading pid %d, "
				       "even as root: it is not dumpable, or a security module "
				       "or another user namespace protects it", (int)pid);
		return cmd_die(who, EXIT_PERMISSION, "permission denied reading pid %d: run "
			       "as root or grant CAP_SYS_PTRACE", (int)pid);
	case -EPROTONOSUPPORT:
		return cmd_die(who, EXIT_NOT_PYTHON, "pid %d runs %sPython %u.%u, which this "
			       "pyspyc does not support", (int)pid,
			       t->free_threaded ? "a free-threaded build of " : "",
			       t->version_hex >> 24, (t->version_hex >> 16) & 0xff);
	case -EAGAIN:
		return cmd_die(who, EXIT_NOT_PYTHON, "pid %d has a Python runtime that has "
			       "not started an interpreter", (int)pid);
	case -ENOMEM:
		return cmd_die(who, EXIT_FAILURE_RUN, "out of memory reading pid %d", (int)pid);
	case -ESTALE:
		return cmd_die(who, EXIT_STALE, "pid %d runs a Python whose file was replaced or "
			       "deleted since it started, and the file it runs cannot be opened: "
			       "run as root (the mapped file is read through "
			       "/proc/PID/map_files)", (int)pid);
	default:
		return cmd_die(who, EXIT_NOT_PYTHON, "pid %d is not a Python process (%s): "
			       "for the Python processes under it, add --subprocesses",
			       (int)pid, strerror(-err));
	}
}

int cmd_launch_error(const char *who, const char *cmd, int err)
{
	int code = err == -ENOENT || err == -ENOTDIR ? EXIT_NO_COMMAND : EXIT_CANNOT_EXEC;

	if (err == -ENOMEM || err == -EAGAIN || err == -EMFILE || err == -ENFILE)
		code = EXIT_FAILURE_RUN; /* our own trouble, not the command's */
	return cmd_die(who, code, "cannot run '%s': %s", CMD_NAME(cmd), strerror(-err));
}

int cmd_check_pid(const char *who, pid_t pid)
{
	int st;

	if (pid == getpid())
		return cmd_die(who, EXIT_NOT_PYTHON, "pid %d is pyspyc itself", (int)pid);
	st = proc_state(pid);
	if (st == -ESRCH)
		return cmd_die(who, EXIT_NO_PROCESS, "no process with pid %d", (int)pid);
	/* A zombie main thread with live threads (it called pthread_exit)
	 * is a live process. */
	if ((st == 'Z' || st == 'X') && proc_live_task(pid) < 0)
		return cmd_die(who, EXIT_NO_PROCESS, "pid %d is a zombie (it has exited)",
			       (int)pid);
	if (proc_is_kernel_thread(pid) == 1)
		return cmd_die(who, EXIT_NOT_PYTHON, "pid %d is a kernel thread, not Python",
			       (int)pid);
	return 0;
}

/* The child's side: never returns. */
/* RLIMIT_NOFILE as pyspyc was started with, when cmd_raise_nofile raised
 * it: what a launched command gets back. */
static struct rlimit nofile_orig;
static int nofile_raised;

void cmd_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	nofile_orig = rl;
	rl.rlim_cur = rl.rlim_max;
	if (!setrlimit(RLIMIT_NOFILE, &rl))
		nofile_raised = 1;
}

static void exec_child(char **argv, int quiet, int null, int report)
{
	int e;

	signal(SIGPIPE, SIG_DFL); /* ignored here, and exec keeps that */
	if (nofile_raised)
		setrlimit(RLIMIT_NOFILE, &nofile_orig); /* the command's own limit */
	if (quiet && (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0))
		_exit(127);
	execvp(argv[0], argv);
	e = errno;
	if (write(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int cmd_launch(char **argv, int quiet, pid_t *child)
{
	int fds[2], err = 0, null = -1;
	ssize_t n;
	pid_t pid;

	if (quiet && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return -errno;
	if (pipe2(fds, O_CLOEXEC)) {
		err = -errno;
		goto out_null;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(fds[0]);
		close(fds[1]);
		goto out_null;
	}
	if (pid == 0) {
		close(fds[0]);
		exec_child(argv, quiet, null, fds[1]);
	}
	close(fds[1]);
	do
		n = read(fds[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n == sizeof(err)) {
		waitpid(pid, NULL, 0);
		err = -err;
		goto out_null;
	}
	err = 0;
	*child = pid;
out_null:
	if (null >= 0)
		close(null);
	return err;
}

int cmd_child_exited(pid_t child)
{
	/* Alive while any thread is, also after its main thread's exit. */
	return proc_live_task(child) < 0;
}

int cmd_attach_launched(struct py_target *t, pid_t child, unsigned int flags,
			int *exited)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int err = -ENOEXEC, seen = -ENOEXEC, i;

	for (i = 0; i < (int)(ATTACH_WAIT_S / 0.005) && !cmd_stop_flag; i++) {
		err = py_target_find(t, child, flags);
		if (!err)
			return 0;
		if (err == -EPERM || err == -EACCES || err == -EPROTONOSUPPORT)
			return err;
		if (err != -ESRCH)
			seen = err;
		if (cmd_child_exited(child)) {
			*exited = 1;
			return seen;
		}
		nanosleep(&ts, NULL);
	}
	return err;
}

void cmd_join_command(char **argv, char *buf, size_t size)
{
	size_t used = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; argv[i] && used + 1 < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? " " : "", argv[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	buf[size - 1] = '\0';
}

/* What waitpid's status says of a child that ended by itself. */
static void ended_by_itself(int status, struct child_end *end)
{
	if (WIFEXITED(status))
		*end = (struct child_end){ CHILD_EXITED, WEXITSTATUS(status) };
	else if (WIFSIGNALED(status))
		*end = (struct child_end){ CHILD_SIGNALLED, WTERMSIG(status) };
}

void cmd_end_child(pid_t child, struct child_end *end)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct child_end dummy;
	int status, i;
	pid_t got;

	if (!end)
		end = &dummy;
	*end = (struct child_end){ .how = CHILD_UNKNOWN };
	/* Seen gone by the sampler (its memory is), it may not be ours to
	 * reap yet: an exit takes a while (2 s at most here).  It ended by
	 * itself, then, not by us. */
	for (i = 0; (got = waitpid(child, &status, WNOHANG)) == 0 && i < 200 &&
		    proc_exiting(child); i++)
		nanosleep(&ts, NULL);
	if (got == child) {
		ended_by_itself(status, end);
		return;
	}
	if (got != 0)
		return; /* not ours to reap */
	/* We started it and the run is over: it ends with us. */
	end->how = CHILD_ENDED;
	kill(child, SIGTERM);
	for (i = 0; i < 100; i++) {
		if (waitpid(child, &status, WNOHANG) != 0)
			return;
		nanosleep(&ts, NULL);
	}
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
}

void cmd_child_end_words(const struct child_end *end, char *buf, size_t size)
{
	const char *abbrev;

	switch (end->how) {
	case CHILD_EXITED:
		snprintf(buf, size, "the command exited with status %d", end->status);
		break;
	case CHILD_SIGNALLED:
		abbrev = sigabbrev_np(end->status);
		if (abbrev)
			snprintf(buf, size, "the command was killed by signal SIG%s", abbrev);
		else
			snprintf(buf, size, "the command was killed by signal %d", end->status);
		break;
	case CHILD_ENDED:
		snprintf(buf, size, "the command was still running: ended it with SIGTERM");
		break;
	default:
		buf[0] = '\0';
	}
}

int cmd_child_exit_status(int rc, const struct child_end *end)
{
	if (rc != EXIT_OK)
		return rc;
	if (end->how == CHILD_EXITED)
		return end->status;
	if (end->how == CHILD_SIGNALLED)
		return 128 + end->status;
	return EXIT_OK;
}

int cmd_find_target(struct py_target *t, pid_t pid, unsigned int flags)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int64_t end = 0, age;
	int err;

	for (;;) {
		err = py_target_find(t, pid, flags);
		/* From the first look, not from pyspyc's own start: the
		 * first look reads the binaries' symbols. */
		if (!end)
			end = mono_ns() + CMD_INTERP_WAIT_NS;
		if (!err || cmd_stop_flag || mono_ns() >= end)
			return err;
		if (err == -ESRCH || err == -EPERM || err == -EACCES || err == -ENOMEM ||
		    err == -EPROTONOSUPPORT || err == -ESTALE)
			return err;
		/* Not Python: only worth waiting for while the process is
		 * young enough to be on its way to exec'ing it. */
		if (err != -EAGAIN) {
			age = proc_age_ns(pid);
			if (age < 0 || age >= CMD_STARTUP_WAIT_NS)
				return err;
		}
		nanosleep(&ts, NULL);
	}
}

int cmd_parse(const char *who, const struct cmd_usage *u, int argc, char **argv,
	      void *args, int *cmd_index, unsigned int *find_flags)
{
	char err[512];
	int help, e;

	if (cli_parse(u, argc, argv, args, cmd_index, &help, err, sizeof(err))) {
		char who_cmd[64];

		snprintf(who_cmd, sizeof(who_cmd), "pyspyc %s", u->name);
		return cmd_die(who_cmd, EXIT_USAGE, "%s", err);
	}
	if (help) {
		cli_print_help(u, stdout);
		return EXIT_OK;
	}
	if (find_flags) {
		e = py_find_flags_parse(getenv("PYSPYC_FIND"));
		if (e < 0)
			return cmd_die(who, EXIT_USAGE, "PYSPYC_FIND: unknown word in '%.64s' "
				       "(no-symbols, no-section, no-version-hints)",
				       getenv("PYSPYC_FIND"));
		*find_flags = (unsigned int)e;
	}
	return -1;
}

int cmd_sample_check(const char *who, const struct sample_args *s)
{
	if (s->blocking && s->nonblocking)
		return cmd_die(who, EXIT_USAGE, "give --blocking or --nonblocking, not both");
	return 0;
}

int cmd_backend_pick(const char *name, const char *opt, double rate, struct backend_choice *bc)
{
	const char *env = getenv("PYSPYC_BACKEND");
	char why[200];
	int e;

	if (!name)
		name = env && *env ? env : BACKEND_DEFAULT;
	memset(bc, 0, sizeof(*bc));
	bc->name = "user";
	if (!strcmp(name, "user"))
		return 0;
	bc->asked_bpf = !strcmp(name, "bpf");
	if (strcmp(name, "bpf") && strcmp(name, "auto")) {
		snprintf(bc->why, sizeof(bc->why), "'%.32s' is not a backend (bpf, user or auto)",
			 name);
		return -EINVAL;
	}
	/* The eBPF backend samples the threads on a CPU at its interrupt:
	 * it cannot count waiting threads, the GIL holder alone, or pause. */
	if (opt) {
		snprintf(bc->why, sizeof(bc->why), "%s needs it", opt);
		return strcmp(name, "bpf") ? 0 : -EINVAL;
	}
	e = bpf_hub_open(&bc->hub, rate, why, sizeof(why));
	if (!e) {
		bc->name = "bpf";
		return 0;
	}
	snprintf(bc->why, sizeof(bc->why), "bpf: %s", why);
	return strcmp(name, "bpf") ? 0 : e;
}

int cmd_backend_open(const char *who, const struct sample_args *s, struct backend_choice *bc)
{
	const char *opt = s->idle ? "--idle" : s->gil ? "--gil" : s->blocking ? "--blocking"
			  : s->max_depth > PB_MAX_FRAMES ? "--max-depth above " PB_MAX_FRAMES_TEXT
			  : NULL;
	int e = cmd_backend_pick(s->backend, opt, s->rate, bc);

	_Static_assert(PB_MAX_FRAMES == 4096, "PB_MAX_FRAMES_TEXT");
	if (!e)
		return -1;
	if (e == -EINVAL && opt)
		return cmd_die(who, EXIT_USAGE, "--backend bpf samples the threads on a CPU: "
			       "%s needs --backend user", opt);
	if (e == -EINVAL)
		return cmd_die(who, EXIT_USAGE, "--backend: %s", bc->why);
	return cmd_die(who, e == -EPERM || e == -EACCES ? EXIT_PERMISSION : EXIT_FAILURE_RUN,
		       "--backend %s", bc->why);
}

int cmd_backend_fit(const char *who, const struct py_target *t, struct backend_choice *bc)
{
	unsigned int major = t->version_hex >> 24, minor = (t->version_hex >> 16) & 0xff;

	if (!bc->hub || !t->layout || bpf_layout_ok(t->layout))
		return -1;
	if (bc->asked_bpf)
		return cmd_die(who, EXIT_NOT_PYTHON, "--backend bpf cannot read pid %d: it runs "
			       "Python %u.%u, whose frames the eBPF program cannot read; "
			       "use --backend user", (int)t->pid, major, minor);
	bpf_hub_close(bc->hub);
	bc->hub = NULL;
	bc->name = "user";
	snprintf(bc->why, sizeof(bc->why), "bpf: the eBPF program cannot read Python "
		 "%u.%u's frames", major, minor);
	return -1;
}

void cmd_backend_setup(const struct backend_choice *bc, struct session_opts *so)
{
	if (bc->hub) {
		so->backend = &backend_bpf_ops;
		so->walk.hub = bc->hub;
	}
}

void cmd_backend_words(const struct backend_choice *bc, const struct session_stats *st)
{
	struct bpf_hub_counts c;
	double tick_ns, sample_ns;

	if (!bc->hub) {
		fprintf(stderr, "; backend user%s%s%s", bc->why[0] ? " (not bpf: " : "", bc->why,
			bc->why[0] ? ")" : "");
		return;
	}
	bpf_hub_counts(bc->hub, &c);
	fprintf(stderr, "; backend bpf");
	bpf_hub_costs(&c, &tick_ns, &sample_ns);
	if (sample_ns > 0)
		fprintf(stderr, " (kernel: %.2f us per sample, %.2f us per interrupt elsewhere, "
			"%llu interrupts)", sample_ns / 1e3, tick_ns / 1e3,
			(unsigned long long)c.ticks);
	if (st->bpf_unknown)
		fprintf(stderr, "; %llu samples of threads not known yet (no stack)",
			(unsigned long long)st->bpf_unknown);
	if (st->bpf_dropped || c.lost)
		fprintf(stderr, "; %llu eBPF samples lost (a full queue or ring)",
			(unsigned long long)(st->bpf_dropped + c.lost));
}

void cmd_backend_close(struct backend_choice *bc)
{
	bpf_hub_close(bc->hub);
	bc->hub = NULL;
}

void cmd_sample_setup(const struct sample_args *s, struct session_opts *so,
		      struct stacktab_limits *lim)
{
	*lim = (struct stacktab_limits){
		.max_stacks = (uint32_t)s->max_stacks,
		.max_frames = (uint32_t)s->max_frames,
		.max_strings = (uint32_t)s->max_frames,
	};
	*so = (struct session_opts){
		.rate_hz = s->rate,
		.idle = s->idle,
		.gil = s->gil,
		.blocking = s->blocking,
		.max_processes = (uint32_t)s->max_processes,
		.walk = { .max_depth = (uint32_t)s->max_depth,
			  .max_threads = (uint32_t)s->max_threads },
		.sym = { .full_filenames = s->full_filenames, .function = s->function },
	};
}
