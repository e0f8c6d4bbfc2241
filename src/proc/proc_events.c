/* proc_events.c - the process events connector: fork, exec and exit. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "pyspyc/clock.h"
#include "pyspyc/proc_events.h"

#define ACK_WAIT_NS 200000000LL

/* One subscription message: a netlink header, a connector header and the
 * operation, laid out as the kernel reads them. */
static int send_op(int fd, enum proc_cn_mcast_op op)
{
	/* Built in a byte buffer: struct cn_msg ends in a flexible array,
	 * so it cannot sit inside another struct in standard C. */
	union {
		struct nlmsghdr align;
		uint8_t b[NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))];
	} msg;
	struct nlmsghdr *nl = &msg.align;
	struct cn_msg cn;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };

	memset(&msg, 0, sizeof(msg));
	memset(&cn, 0, sizeof(cn));
	nl->nlmsg_len = sizeof(msg.b);
	nl->nlmsg_type = NLMSG_DONE;
	nl->nlmsg_pid = 0;
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = sizeof(op);
	cn.ack = 1; /* ask for an answer (it comes back as ack + 1) */
	memcpy(msg.b + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(msg.b + NLMSG_HDRLEN + sizeof(cn), &op, sizeof(op));
	if (sendto(fd, msg.b, sizeof(msg.b), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* The answer to the subscription; events of other listeners' that come
 * first are dropped (the caller looks at its tree after this anyway). */
static int wait_ack(int fd)
{
	uint64_t buf[1024];
	struct proc_ev ev[8];
	int64_t end = mono_ns() + ACK_WAIT_NS, left;
	size_t n, i;
	ssize_t len;

	while ((left = end - mono_ns()) > 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, (int)(left / 1000000) + 1) < 0 && errno != EINTR)
			return -errno;
		while ((len = recv(fd, buf, sizeof(buf), 0)) > 0) {
			n = proc_events_decode(buf, (size_t)len, ev, 8);
			for (i = 0; i < n; i++)
				if (ev[i].kind == PROC_EV_ACK)
					return -ev[i].err;
		}
		if (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ENOBUFS)
			return -errno;
	}
	return -ETIMEDOUT;
}

int proc_events_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	int fd, err, size = 4 << 20;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    NETLINK_CONNECTOR);
	if (fd < 0)
		return -errno;
	/* A busy machine forks in bursts: room for tens of thousands of
	 * events between two reads (FORCE needs CAP_NET_ADMIN, which
	 * listening needs anyway). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto out_fd;
	}
	err = send_op(fd, PROC_CN_MCAST_LISTEN);
	if (err)
		goto out_fd;
	err = wait_ack(fd);
	if (err)
		goto out_fd;
	return fd;

out_fd:
	close(fd);
	return err;
}

void proc_events_close(int fd)
{
	if (fd < 0)
		return;
	send_op(fd, PROC_CN_MCAST_IGNORE);
	close(fd);
}

/* One connector message's event, if it is one we keep. */
static int decode_event(const struct proc_event *ev, struct proc_ev *out)
{
	out->err = 0;
	switch (ev->what) {
	case PROC_EVENT_NONE:
		out->kind = PROC_EV_ACK;
		out->pid = out->ppid = 0;
		out->err = (int)ev->event_data.ack.err;
		return 1;
	case PROC_EVENT_FORK:
		if (ev->event_data.fork.child_pid != ev->event_data.fork.child_tgid)
			return 0; /* a new thread */
		out->kind = PROC_EV_FORK;
		out->pid = ev->event_data.fork.child_tgid;
		out->ppid = ev->event_data.fork.parent_tgid;
		return 1;
	case PROC_EVENT_EXEC:
		out->kind = PROC_EV_EXEC;
		out->pid = ev->event_data.exec.process_tgid;
		out->ppid = 0;
		return 1;
	case PROC_EVENT_EXIT:
		if (ev->event_data.exit.process_pid != ev->event_data.exit.process_tgid)
			return 0; /* a thread other than the main one */
		out->kind = PROC_EV_EXIT;
		out->pid = ev->event_data.exit.process_tgid;
		out->ppid = 0;
		return 1;
	default:
		return 0;
	}
}

size_t proc_events_decode(const void *buf, size_t len, struct proc_ev *out,
			  size_t cap)
{
	const unsigned char *p = buf;
	size_t n = 0;

	while (len >= sizeof(struct nlmsghdr) && n < cap) {
		struct nlmsghdr nl;
		struct cn_msg cn;
		struct proc_event ev;
		size_t step;

		memcpy(&nl, p, sizeof(nl));
		if (nl.nlmsg_len < sizeof(nl) || nl.nlmsg_len > len)
			break;
		step = NLMSG_ALIGN(nl.nlmsg_len);
		if (nl.nlmsg_type != NLMSG_NOOP && nl.nlmsg_type != NLMSG_ERROR &&
		    nl.nlmsg_len >= NLMSG_HDRLEN + sizeof(cn)) {
			memcpy(&cn, p + NLMSG_HDRLEN, sizeof(cn));
			if (cn.id.idx == CN_IDX_PROC && cn.id.val == CN_VAL_PROC &&
			    cn.len >= offsetof(struct proc_event, event_data) + 16 &&
			    cn.len <= nl.nlmsg_len - NLMSG_HDRLEN - sizeof(cn)) {
				size_t take = cn.len < sizeof(ev) ? cn.len : sizeof(ev);

				memset(&ev, 0, sizeof(ev));
				memcpy(&ev, p + NLMSG_HDRLEN + sizeof(cn), take);
				n += (size_t)decode_event(&ev, &out[n]);
			}
		}
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return n;
}

int proc_events_read(int fd, struct proc_ev *out, size_t cap, size_t *n)
{
	/* Aligned for the headers; one datagram holds one event today. */
	uint64_t buf[1024];
	size_t got, i, base;
	ssize_t len;

	*n = 0;
	/* Room for a whole datagram's events, so none is read and dropped. */
	while (cap - *n >= 8) {
		len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (int)*n;
			return -errno;
		}
		if (len == 0)
			return (int)*n;
		base = *n;
		got = proc_events_decode(buf, (size_t)len, out + base, cap - base);
		for (i = 0; i < got; i++)
			if (out[base + i].kind != PROC_EV_ACK)
				out[(*n)++] = out[base + i];
	}
	return (int)*n;
}
