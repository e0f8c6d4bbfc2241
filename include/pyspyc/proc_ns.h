/* proc_ns.h - a process's thread ids as its own PID namespace numbers them.
 *
 * A process in a PID namespace of its own (a container, `unshare --pid`)
 * knows itself and its threads by that namespace's ids: the interpreter's
 * native_thread_id, the tid in a pthread descriptor and the process's own
 * pid are all inner ids (the first process of the namespace is 1).  /proc
 * as we see it names the same tasks by our ids.  Every id the target gives
 * us must be turned into ours before it is used to look at /proc, and an
 * inner id taken as ours names another task, or none.
 *
 * An ns_map holds the pairs for one process: from the NSpid line of each
 * task's /proc/PID/task/TID/status, which lists the task's id in every
 * namespace from /proc's (ours: the first field) to the innermost (its own:
 * the last), so nested namespaces work too.  It is only filled when the ids
 * differ: the process's namespace (/proc/PID/ns/pid) is not ours and its
 * NSpid has more than one field.
 *
 * Threads come and go: the map is read again when asked (ns_map_read); the
 * caller decides when (on an id it does not know).  A task keeps its ids for
 * life, so a read lists the tasks and reads the status of new ones only.
 * Not thread-safe.
 */
#ifndef PYSPYC_PROC_NS_H
#define PYSPYC_PROC_NS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ns_tid {
	int32_t inner;   /* the id the target knows the task by */
	int32_t host;    /* ours: the one /proc/PID/task/ takes */
};

struct ns_map {
	pid_t pid;            /* ours */
	pid_t inner_pid;      /* the process's own view of its pid (== pid when
				 not namespaced) */
	int active;           /* 1: the ids differ and are translated */
	struct ns_tid *ids;   /* sorted by inner id */
	uint32_t n, cap;
	int64_t read_ns;      /* CLOCK_MONOTONIC time of the last read */
	char *buf;            /* status text, grown as needed */
	size_t buf_size;
};

/* Set up m for process pid and, when it is in a PID namespace whose ids
 * differ from ours, read its threads (m->active set).  A process whose
 * namespace cannot be told (no NSpid line: kernels before 4.1) is taken as
 * not namespaced.  0 or -errno (-ESRCH: no such process); m can be released
 * either way. */
int ns_map_init(struct ns_map *m, pid_t pid);

/* Read the pairs again: every task listed now, the status of those not
 * known yet (a task that ends meanwhile is left out; one gone is dropped).
 * 0 or -errno (m keeps its old pairs then). */
int ns_map_read(struct ns_map *m);

/* Our id of the task the target calls inner, or 0 when the map does not
 * know it.  When m is not active, inner itself. */
int32_t ns_map_host(const struct ns_map *m, int32_t inner);

/* The target's id of our task host, or 0 when unknown or not active. */
int32_t ns_map_inner(const struct ns_map *m, int32_t host);

void ns_map_release(struct ns_map *m);

/* Parse the NSpid line out of the text of a /proc status file: its fields
 * into ids[0..cap), outermost first.  Returns how many fields the line has
 * (which may exceed cap), 0 when the text holds no NSpid line, or -EINVAL
 * when the line is malformed or not complete in buf[0..len). */
int proc_nspid_parse(const char *buf, size_t len, int32_t *ids, int cap);

#endif
