/* agent_notify.c - systemd's readiness protocol (agent_notify.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/agent_notify.h"
#include "pyspyc/cli.h"

int agent_notify_open(struct agent_notify *n, const char *env)
{
	size_t len;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (!env || !*env)
		return 0;
	len = strlen(env);
	if ((env[0] != '/' && env[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path))
		return -EINVAL;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, env, len);
	if (env[0] == '@') {
		n->addr.sun_path[0] = '\0'; /* the abstract namespace: no NUL at the end */
		n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		n->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return n->fd < 0 ? -errno : 0;
}

int agent_notify_send(struct agent_notify *n, const char *msg)
{
	ssize_t r;

	if (n->fd < 0)
		return 0;
	do
		r = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
			   n->len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

void agent_notify_close(struct agent_notify *n)
{
	if (n && n->fd >= 0)
		close(n->fd);
	if (n)
		n->fd = -1;
}

int64_t agent_notify_watchdog_ns(const char *usec, const char *wpid, pid_t pid)
{
	long long us, p;

	if (!usec || cli_parse_ll(usec, &us) || us <= 0)
		return 0;
	if (wpid && *wpid && (cli_parse_ll(wpid, &p) || p != (long long)pid))
		return 0;
	return us * 1000 / 2;
}
