/* test_agent_notify.c - systemd's readiness protocol: messages arrive on
 * a socket named by a path and by an abstract name, nothing is sent
 * outside systemd, malformed names are refused, and the watchdog interval
 * is half of what systemd asks, for this process only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pyspyc/agent_notify.h"

/* A datagram socket bound to name (a path, or "@abstract"). */
static int listener(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(a.sun_path, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
	return fd;
}

static void expect(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_path_and_abstract(void **state)
{
	char path[64], abs_name[64];
	struct agent_notify n;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/pyspyc-notify-%d", (int)getpid());
	unlink(path);
	fd = listener(path);
	assert_int_equal(agent_notify_open(&n, path), 0);
	assert_int_equal(agent_notify_send(&n, "READY=1\nSTATUS=2 services, 5 processes"), 0);
	expect(fd, "READY=1\nSTATUS=2 services, 5 processes");
	assert_int_equal(agent_notify_send(&n, "STOPPING=1"), 0);
	expect(fd, "STOPPING=1");
	agent_notify_close(&n);
	close(fd);
	unlink(path);

	snprintf(abs_name, sizeof(abs_name), "@pyspyc-notify-%d", (int)getpid());
	fd = listener(abs_name);
	assert_int_equal(agent_notify_open(&n, abs_name), 0);
	assert_int_equal(agent_notify_send(&n, "WATCHDOG=1"), 0);
	expect(fd, "WATCHDOG=1");
	agent_notify_close(&n);
	agent_notify_close(&n); /* twice: fine */
	close(fd);
}

static void test_none_and_bad(void **state)
{
	struct agent_notify n;
	char longname[200];

	(void)state;
	assert_int_equal(agent_notify_open(&n, NULL), 0);
	assert_int_equal(n.fd, -1);
	assert_int_equal(agent_notify_send(&n, "READY=1"), 0);
	assert_int_equal(agent_notify_open(&n, ""), 0);
	assert_int_equal(n.fd, -1);
	assert_int_equal(agent_notify_open(&n, "relative/socket"), -EINVAL);
	assert_int_equal(agent_notify_open(&n, "@"), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(agent_notify_open(&n, longname), -EINVAL);
	/* A socket nobody listens on: the error comes back, nothing else. */
	assert_int_equal(agent_notify_open(&n, "/tmp/pyspyc-nobody-listens"), 0);
	assert_int_equal(agent_notify_send(&n, "READY=1"), -ENOENT);
	agent_notify_close(&n);
}

static void test_watchdog(void **state)
{
	(void)state;
	assert_true(agent_notify_watchdog_ns("30000000", NULL, 42) == 15000000000LL);
	assert_true(agent_notify_watchdog_ns("30000000", "42", 42) == 15000000000LL);
	assert_true(agent_notify_watchdog_ns("30000000", "43", 42) == 0);
	assert_true(agent_notify_watchdog_ns(NULL, NULL, 42) == 0);
	assert_true(agent_notify_watchdog_ns("x", NULL, 42) == 0);
	assert_true(agent_notify_watchdog_ns("0", NULL, 42) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_and_abstract),
		cmocka_unit_test(test_none_and_bad),
		cmocka_unit_test(test_watchdog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
