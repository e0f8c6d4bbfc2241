/* agent_notify.h - systemd's readiness protocol, written here.
 *
 * Under Type=notify, systemd names an AF_UNIX datagram socket in
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace); the
 * service sends it newline-separated assignments ("READY=1",
 * "STATUS=...", "WATCHDOG=1", "RELOADING=1", "STOPPING=1").  libsystemd's
 * sd_notify() does the same, but linking libsystemd would bring its own
 * dependencies (compression, crypto, capability libraries) into a binary
 * that runs as root, for one sendmsg().
 */
#ifndef PYSPYC_AGENT_NOTIFY_H
#define PYSPYC_AGENT_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct agent_notify {
	int fd;                  /* -1: no socket (not under systemd) */
	struct sockaddr_un addr;
	socklen_t len;
};

/* Set n up for the socket env names ($NOTIFY_SOCKET; NULL or "": none, fd
 * -1, and 0).  0, or -EINVAL (not an absolute path or "@name", or too
 * long), or -errno (socket). */
int agent_notify_open(struct agent_notify *n, const char *env);

/* Send msg (e.g. "READY=1\nSTATUS=3 services"); nothing without a socket.
 * 0 or -errno. */
int agent_notify_send(struct agent_notify *n, const char *msg);

void agent_notify_close(struct agent_notify *n);

/* The interval to send WATCHDOG=1 at: half of $WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or names pid; 0 when no watchdog is asked for
 * (or the values are malformed). */
int64_t agent_notify_watchdog_ns(const char *usec, const char *wpid, pid_t pid);

#endif
