/* test_proc_events.c - decoding the process events connector's messages
 * (pure: bytes in, events out), on datagrams built here as the kernel lays
 * them out, and on truncated and malformed ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "pyspyc/proc_events.h"

/* Append one netlink message holding ev to buf at *len; returns its
 * length. */
static size_t put_event(unsigned char *buf, size_t *len, const struct proc_event *ev)
{
	struct nlmsghdr nl = { 0 };
	struct cn_msg cn = { 0 };
	size_t total = NLMSG_HDRLEN + sizeof(cn) + sizeof(*ev);

	nl.nlmsg_len = (uint32_t)total;
	nl.nlmsg_type = NLMSG_DONE;
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = sizeof(*ev);
	memcpy(buf + *len, &nl, sizeof(nl));
	memcpy(buf + *len + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(buf + *len + NLMSG_HDRLEN + sizeof(cn), ev, sizeof(*ev));
	*len += NLMSG_ALIGN(total);
	return total;
}

static struct proc_event fork_ev(int ppid, int child_pid, int child_tgid)
{
	struct proc_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_FORK;
	ev.event_data.fork.parent_pid = ppid;
	ev.event_data.fork.parent_tgid = ppid;
	ev.event_data.fork.child_pid = child_pid;
	ev.event_data.fork.child_tgid = child_tgid;
	return ev;
}

static void test_decode(void **state)
{
	_Alignas(8) unsigned char buf[4096];
	struct proc_event ev;
	struct proc_ev out[8];
	size_t len = 0, n;

	(void)state;
	ev = fork_ev(100, 200, 200);
	put_event(buf, &len, &ev);
	ev = fork_ev(100, 201, 100); /* a thread: left out */
	put_event(buf, &len, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXEC;
	ev.event_data.exec.process_pid = 200;
	ev.event_data.exec.process_tgid = 200;
	put_event(buf, &len, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_UID; /* not one we keep */
	put_event(buf, &len, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXIT;
	ev.event_data.exit.process_pid = 201; /* a thread of 100 */
	ev.event_data.exit.process_tgid = 100;
	put_event(buf, &len, &ev);
	ev.event_data.exit.process_pid = 200;
	ev.event_data.exit.process_tgid = 200;
	put_event(buf, &len, &ev);

	n = proc_events_decode(buf, len, out, 8);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].kind, PROC_EV_FORK);
	assert_int_equal(out[0].pid, 200);
	assert_int_equal(out[0].ppid, 100);
	assert_int_equal(out[1].kind, PROC_EV_EXEC);
	assert_int_equal(out[1].pid, 200);
	assert_int_equal(out[2].kind, PROC_EV_EXIT);
	assert_int_equal(out[2].pid, 200);
	/* cap bounds what is stored. */
	assert_int_equal(proc_events_decode(buf, len, out, 2), 2);
	assert_int_equal(proc_events_decode(buf, len, out, 0), 0);
	/* The answer to a subscription, with its error. */
	len = 0;
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_NONE;
	ev.event_data.ack.err = 1;
	put_event(buf, &len, &ev);
	assert_int_equal(proc_events_decode(buf, len, out, 8), 1);
	assert_int_equal(out[0].kind, PROC_EV_ACK);
	assert_int_equal(out[0].err, 1);
}

static void test_malformed(void **state)
{
	_Alignas(8) unsigned char buf[4096];
	struct proc_event ev = fork_ev(1, 2, 2);
	struct proc_ev out[8];
	struct nlmsghdr nl;
	struct cn_msg cn;
	size_t len = 0, one, cut;

	(void)state;
	one = put_event(buf, &len, &ev);
	/* Every truncation of one message: nothing read past len. */
	for (cut = 0; cut < one; cut++)
		assert_int_equal(proc_events_decode(buf, cut, out, 8), 0);
	assert_int_equal(proc_events_decode(buf, one, out, 8), 1);
	/* A header claiming more than the datagram holds. */
	memcpy(&nl, buf, sizeof(nl));
	nl.nlmsg_len = (uint32_t)len + 64;
	memcpy(buf, &nl, sizeof(nl));
	assert_int_equal(proc_events_decode(buf, len, out, 8), 0);
	/* One claiming less than a header: ends the decoding. */
	nl.nlmsg_len = 4;
	memcpy(buf, &nl, sizeof(nl));
	assert_int_equal(proc_events_decode(buf, len, out, 8), 0);
	/* A connector length beyond its message, or too short for an event. */
	nl.nlmsg_len = (uint32_t)one;
	memcpy(buf, &nl, sizeof(nl));
	memcpy(&cn, buf + NLMSG_HDRLEN, sizeof(cn));
	cn.len = (uint16_t)(sizeof(ev) + 8);
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	assert_int_equal(proc_events_decode(buf, len, out, 8), 0);
	cn.len = 8;
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	assert_int_equal(proc_events_decode(buf, len, out, 8), 0);
	/* Another connector's message. */
	cn.len = sizeof(ev);
	cn.id.idx = CN_IDX_PROC + 1;
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	assert_int_equal(proc_events_decode(buf, len, out, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
