/* proc_events.h - fork, exec and exit of every process, as the kernel's
 * process events connector (netlink, NETLINK_CONNECTOR / CN_IDX_PROC)
 * reports them, so a process tree is followed as it changes instead of
 * being scanned for.
 *
 * Listening needs CAP_NET_ADMIN in the initial user and PID namespaces
 * (root on the host); elsewhere, or on a kernel built without
 * CONFIG_PROC_EVENTS, proc_events_open fails and the caller scans instead.
 * The events are system-wide: the caller keeps those of its tree.  When the
 * socket's buffer overflows, events are lost: proc_events_read says so
 * (-ENOBUFS) and the caller must look at its tree afresh.
 */
#ifndef PYSPYC_PROC_EVENTS_H
#define PYSPYC_PROC_EVENTS_H

#include <stddef.h>
#include <sys/types.h>

enum proc_ev_kind {
	PROC_EV_FORK = 1,   /* pid is a new process, ppid its parent (tgids) */
	PROC_EV_EXEC,       /* pid ran exec */
	PROC_EV_EXIT,       /* pid's main thread exited (the process may live on
			     * while other threads of it run) */
	PROC_EV_ACK,        /* the kernel's answer to a subscription: err */
};

struct proc_ev {
	enum proc_ev_kind kind;
	pid_t pid, ppid;
	int err;            /* PROC_EV_ACK: 0 or an errno */
};

/* A non-blocking netlink socket subscribed to the events, once the kernel
 * has acknowledged the subscription (waiting at most 200 ms for it: a
 * kernel that ignores it, as in a PID namespace other than the initial
 * one, gives -ETIMEDOUT).  Returns the descriptor (O_CLOEXEC; the caller
 * polls it for POLLIN) or -errno. */
int proc_events_open(void);

/* Unsubscribe and close; fd < 0 is ignored. */
void proc_events_close(int fd);

/* The events waiting on fd, without blocking, into out[0..cap); stops
 * when out has room for fewer than 8 (the rest stay queued).  Returns the
 * count, or -ENOBUFS when events were lost (some of them may be in out: *n
 * says how many), or another -errno.  Threads starting and ending are left
 * out. */
int proc_events_read(int fd, struct proc_ev *out, size_t cap, size_t *n);

/* Pure: decode one datagram of netlink messages into out[0..cap)
 * (PROC_EV_ACK included; proc_events_read leaves those out).  Every
 * length is checked against len; a malformed message ends the decoding.
 * Returns the number of events stored. */
size_t proc_events_decode(const void *buf, size_t len, struct proc_ev *out,
			  size_t cap);

#endif
