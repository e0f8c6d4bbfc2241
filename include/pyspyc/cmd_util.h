/* cmd_util.h - what every subcommand does with its target: check a pid,
 * explain why it cannot be profiled, start a command, wait for its
 * interpreter, and end it.  The cmd_* layer prints; these helpers print the
 * one line they are asked to and return the exit status to use.
 */
#ifndef PYSPYC_CMD_UTIL_H
#define PYSPYC_CMD_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyspyc/py_runtime.h"

/* Set by SIGINT, SIGTERM and SIGHUP once cmd_install_signals() ran. */
extern volatile sig_atomic_t cmd_stop_flag;

/* Catch SIGINT, SIGTERM and SIGHUP into cmd_stop_flag (no SA_RESTART, so
 * sleeps wake up), and ignore SIGPIPE (a closed stdout is an error return,
 * not a death).  Idempotent. */
void cmd_install_signals(void);

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

/* End a command we started and reap it: SIGTERM, then SIGKILL a second
 * later if needed. */
void cmd_end_child(pid_t child);

#endif
