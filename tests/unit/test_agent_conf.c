/* test_agent_conf.c - the agent's configuration: a whole file read into
 * its services, [agent]'s defaults under each service's own keys, drop-ins
 * and the command line over the file, and every kind of mistake reported
 * as one line with its file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/agent_conf.h"

static int parse(struct agent_conf *c, const char *text)
{
	int err;

	assert_int_equal(agent_conf_init(c), 0);
	err = agent_conf_parse(c, "t.conf", text, strlen(text));
	if (!err)
		err = agent_conf_finish(c);
	return err;
}

static const struct agent_label *label(const struct agent_service *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->nlabels; i++)
		if (!strcmp(s->labels[i].key, key))
			return &s->labels[i];
	return NULL;
}

static void test_whole_file(void **state)
{
	static const char text[] =
		"; the agent\n"
		"[agent]\n"
		"listen = 127.0.0.1:7070\n"
		"state_dir = /srv/prof\n"
		"rate = 50\n"
		"window = 2m\n"
		"labels = env=prod, team=web\n"
		"keep_bytes = 2G\n"
		"min_free = 10%\n"
		"\n"
		"# gunicorn's workers\n"
		"[service web]\n"
		"match = gunicorn: worker \\[app\\] ?[{]{0,4000}\n"
		"labels = team=api\n"
		"    tier=front\n"
		"\n"
		"[service jobs]\n"
		"unit = celery\n"
		"rate = 19.5\n"
		"idle = yes\n"
		"pid = 10, 11\n"
		"  12\n"
		"keep_bytes = 100M\n";
	struct agent_conf c;
	const struct agent_service *web, *jobs;
	const struct sockaddr_in *a;

	(void)state;
	assert_int_equal(parse(&c, text), 0);
	a = (const struct sockaddr_in *)&c.listen;
	assert_int_equal(a->sin_family, AF_INET);
	assert_int_equal(ntohs(a->sin_port), 7070);
	assert_string_equal(c.state_dir, "/srv/prof");
	assert_true(c.keep_bytes == 2ULL << 30);
	assert_true(c.min_free_pct == 10.0 && c.min_free_bytes == 0);
	assert_int_equal(c.nservices, 2);
	web = &c.services[0];
	jobs = &c.services[1];
	assert_string_equal(web->name, "web");
	assert_true(web->has_re);
	assert_int_equal(regexec(&web->match_re, "gunicorn: worker [app]", 0, NULL, 0), 0);
	assert_int_not_equal(regexec(&web->match_re, "gunicorn: master [app]", 0, NULL, 0), 0);
	/* [agent]'s rate and window; its labels under the service's own. */
	assert_true(web->rate_hz == 50.0 && web->window_s == 120.0);
	assert_int_equal(web->nlabels, 3);
	assert_string_equal(label(web, "team")->value, "api");
	assert_string_equal(label(web, "tier")->value, "front");
	assert_string_equal(label(web, "env")->value, "prod");
	assert_true(web->enabled && !web->idle);
	assert_true(web->keep_bytes == 0);
	assert_string_equal(jobs->unit, "celery.service");
	assert_true(jobs->rate_hz == 19.5 && jobs->idle);
	assert_int_equal(jobs->npids, 3);
	assert_int_equal(jobs->pids[2], 12);
	assert_true(jobs->keep_bytes == 100ULL << 20);
	assert_true(jobs->keep_age_s == 7 * 86400.0);
	agent_conf_release(&c);
}

static void test_defaults(void **state)
{
	struct agent_conf c;
	const struct sockaddr_in *a;

	(void)state;
	assert_int_equal(parse(&c, "[service s]\npidfile = /run/app.pid\n"), 0);
	a = (const struct sockaddr_in *)&c.listen;
	assert_int_equal(ntohs(a->sin_port), 6060);
	assert_int_equal(ntohl(a->sin_addr.s_addr), 0x7f000001);
	assert_string_equal(c.state_dir, "/var/lib/pyspyc");
	assert_true(c.services[0].rate_hz == 100.0 && c.services[0].window_s == 60.0);
	assert_string_equal(c.services[0].pidfile, "/run/app.pid");
	assert_null(c.token);
	agent_conf_release(&c);
}

/* Each mistake, the line it is on, and what the message says. */
static const struct {
	const char *text;
	const char *err; /* the message begins with this */
} bad[] = {
	{ "[agent]\nfoo = 1\n", "t.conf:2: unknown key 'foo' in [agent]" },
	{ "[service s]\npid = 1\nrate = fast\n", "t.conf:3: rate: 'fast' is not a rate in Hz" },
	{ "[service s]\npid = 1\nrate = 0\n", "t.conf:3: rate: '0' is not a rate" },
	{ "[service s]\npid = 1\nrate = 20000\n", "t.conf:3: rate: '20000' is not a rate" },
	{ "[service s]\npid = 1\nrate = nan\n", "t.conf:3: rate: 'nan' is not a rate" },
	{ "[service s]\npid = 1\nwindow = 500ms\n", "t.conf:3: window: must be from 1s to 1d" },
	{ "[service s]\npid = 1\nwindow = 5 s\n", "t.conf:3: window: '5 s' is not a duration" },
	{ "[agent]\nkeep_bytes = 10X\n", "t.conf:2: keep_bytes: '10X' is not a size" },
	{ "[agent]\nkeep_bytes = -1\n", "t.conf:2: keep_bytes: '-1' is not a size" },
	{ "[agent]\nmin_free = 100%\n", "t.conf:2: min_free: '100%' is not a size or a percentage" },
	{ "[service s]\nmatch = ([\n", "t.conf:2: match: '([' does not compile: " },
	{ "[service s]\nmatch = ((a{100}){100}){100}\n",
	  "t.conf:2: match: repetition counts ({n}) multiply past 4096" },
	{ "[service s]\nmatch = s+++\n", "t.conf:2: match: a repetition right after another" },
	{ "[service s]\nmatch = a{2}*\n", "t.conf:2: match: a repetition right after another" },
	{ "[service s]\nmatch = a+?\n", "t.conf:2: match: a repetition right after another" },
	{ "[agent]\nlisten = 127.0.0.1\n", "t.conf:2: listen: '127.0.0.1' is not ADDRESS:PORT" },
	{ "[agent]\nlisten = 127.0.0.1:65536\n", "t.conf:2: listen: '127.0.0.1:65536' is not" },
	{ "[agent]\nlisten = example.com:80\n", "t.conf:2: listen: 'example.com:80' is not" },
	{ "[agent]\nlisten = 0.0.0.0:6060\n[service s]\npid = 1\n",
	  "t.conf: listen 0.0.0.0:6060 is not a loopback address: set token" },
	{ "[agent]\nlisten = [::]:6060\n[service s]\npid = 1\n",
	  "t.conf: listen [::]:6060 is not a loopback address" },
	{ "rate = 5\n[agent]\n", "t.conf:1: 'rate' comes before any section" },
	{ "[agent]\n[agnet]\nrate = 5\n", "t.conf:2: unknown section [agnet]" },
	{ "[service a/b]\npid = 1\n", "t.conf:1: [service a/b]: a service name is 1 to 40" },
	{ "[service]\npid = 1\n", "t.conf:1: unknown section [service]" },
	{ "[agent]\n[service web]\nrate = 5\n", "t.conf:2: [service web] chooses no process" },
	{ "[agent]\nrate = 5\n", "t.conf: no service to sample" },
	{ "[service s]\npid = 1\nrate = 5\nrate = 6\n", "t.conf:4: 'rate' is set twice" },
	{ "[service s]\npid = 1\nlisten = 127.0.0.1:1\n", "t.conf:3: 'listen' belongs in [agent]" },
	{ "[agent]\npid = 1\n", "t.conf:2: 'pid' belongs in a [service NAME] section" },
	{ "[service s]\npid = 1\nlabels = 1a=b\n", "t.conf:3: labels: '1a' is not a label name" },
	{ "[service s]\npid = 1\nlabels = __x=b\n", "t.conf:3: labels: '__x' is not a label name" },
	{ "[service s]\npid = 1\nlabels = service_name=x\n",
	  "t.conf:3: labels: 'service_name' is set by the agent" },
	{ "[service s]\npid = 1\nlabels = a=1, novalue\n", "t.conf:3: labels: 'novalue' is not KEY=VALUE" },
	{ "[service s]\npid = 1\nrate = 5\n  6\n", "t.conf:4: 'rate' takes one line" },
	{ "[service s]\npid = 0\n", "t.conf:2: pid: '0' is not a process id" },
	{ "[service s]\npid = 12, x\n", "t.conf:2: pid: 'x' is not a process id" },
	{ "[service s]\nunit = a/b\n", "t.conf:2: unit: 'a/b' is not a unit name" },
	{ "[service s]\ncgroup = /system.slice/../x\n", "t.conf:2: cgroup: '/system.slice/../x' is not" },
	{ "[service s]\npidfile = run/app.pid\n", "t.conf:2: pidfile: 'run/app.pid' is not an absolute" },
	{ "[agent]\ntoken = short\n", "t.conf:2: token: must be 16 to 256 characters" },
	{ "[agent]\nidle = maybe\n", "t.conf:2: idle: 'maybe' is not yes or no" },
	{ "[agent]\nrediscover = 0\n", "t.conf:2: rediscover: must be from 100ms to 1h" },
	{ "[agent]\nbackend = ebpf\n", "t.conf:2: backend: 'ebpf' is not auto, bpf or user" },
	{ "[service s]\npid = 1\nbackend = bpf\n", "t.conf:3: 'backend' belongs in [agent]" },
	{ "[agent]\njust words\n", "t.conf:2: not a section header, a 'key = value' line" },
	{ "[agent\nrate = 1\n", "t.conf:1: no ']' closes the section header" },
};

static void test_mistakes(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_conf c;
		int err = parse(&c, bad[i].text);

		if (err != -EINVAL || strncmp(c.err, bad[i].err, strlen(bad[i].err)))
			fail_msg("case %zu (%s): got %d '%s', want '%s'", i, bad[i].text, err, c.err,
				 bad[i].err);
		assert_null(strchr(c.err, '\n'));
		agent_conf_release(&c);
	}
}

static void test_long_line_and_nul(void **state)
{
	char text[600];
	struct agent_conf c;

	(void)state;
	snprintf(text, sizeof(text), "[service s]\npid = 1\nlabels = a=%0300d\n", 7);
	assert_int_equal(parse(&c, text), -EINVAL);
	assert_string_equal(c.err, "t.conf:3: the line is longer than 198 bytes");
	agent_conf_release(&c);

	memcpy(text, "[agent]\nra\0e = 1\n", 17);
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_parse(&c, "t.conf", text, 17), -EINVAL);
	assert_string_equal(c.err, "t.conf:2: a NUL byte in the file");
	agent_conf_release(&c);
}

/* A section with no keys still counts, and a name longer than libinih
 * keeps (49 bytes) is seen whole. */
static void test_sections_seen_whole(void **state)
{
	struct agent_conf c;

	(void)state;
	assert_int_equal(parse(&c, "[service empty]\n"), -EINVAL);
	assert_string_equal(c.err, "t.conf:1: [service empty] chooses no process: give pid, "
				   "pidfile, match, unit or cgroup");
	agent_conf_release(&c);
	assert_int_equal(parse(&c, "[service a234567890123456789012345678901234567890]\n"
				   "pid = 1\n[service a2345678901234567890123456789012345678901]\n"),
			 -EINVAL);
	assert_string_equal(c.err, "t.conf:3: [service a2345678901234567890123456789012345678901]: "
				   "a service name is 1 to 40 letters, digits, '_', '.' or '-', "
				   "not starting with '.' or '-'");
	agent_conf_release(&c);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_dropins(void **state)
{
	char dir[] = "/tmp/pyspyc-conf-XXXXXX", path[256], sub[256], f[300], want[400];
	struct agent_conf c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.conf", dir);
	snprintf(sub, sizeof(sub), "%s/agent.conf.d", dir);
	write_file(path, "[agent]\nrate = 10\n[service web]\npid = 5\nwindow = 30\n");
	/* No drop-in directory: the file alone. */
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_load(&c, path), 0);
	assert_int_equal(agent_conf_finish(&c), 0);
	assert_true(c.services[0].rate_hz == 10.0);
	agent_conf_release(&c);

	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(f, sizeof(f), "%s/20-late.conf", sub);
	write_file(f, "[service web]\nwindow = 90\n");
	snprintf(f, sizeof(f), "%s/10-early.conf", sub);
	write_file(f, "[agent]\nrate = 20\n[service web]\nwindow = 45\n[service jobs]\nmatch = celery\n");
	snprintf(f, sizeof(f), "%s/README", sub);
	write_file(f, "not a config\n");
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_load(&c, path), 0);
	/* The command line last. */
	assert_int_equal(agent_conf_set(&c, "command line", "agent", "window", "15"), 0);
	assert_int_equal(agent_conf_finish(&c), 0);
	assert_int_equal(c.nservices, 2);
	assert_true(c.services[0].rate_hz == 20.0);  /* [agent] from 10-early */
	assert_true(c.services[0].window_s == 90.0); /* its own, from 20-late */
	assert_true(c.services[1].window_s == 15.0); /* [agent]'s, from the command line */
	agent_conf_release(&c);

	/* A mistake in a drop-in names the drop-in. */
	snprintf(f, sizeof(f), "%s/30-bad.conf", sub);
	write_file(f, "\n[service web]\nrate = 5\nrate = 6\n");
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_load(&c, path), -EINVAL);
	snprintf(want, sizeof(want), "%s:4: 'rate' is set twice in this section", f);
	assert_string_equal(c.err, want);
	agent_conf_release(&c);
	unlink(f);

	/* A drop-in that cannot be read. */
	snprintf(f, sizeof(f), "%s/40-gone.conf", sub);
	assert_int_equal(symlink("/nonexistent/x", f), 0);
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_load(&c, path), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot read it: No such file or directory", f);
	assert_string_equal(c.err, want);
	agent_conf_release(&c);
	unlink(f);

	/* The file itself missing. */
	snprintf(f, sizeof(f), "%s/none.conf", dir);
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_load(&c, f), -ENOENT);
	agent_conf_release(&c);

	snprintf(f, sizeof(f), "rm -rf %s", dir);
	assert_int_equal(system(f), 0);
}

static void test_command_line(void **state)
{
	struct agent_conf c;

	(void)state;
	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_set(&c, "--match", AGENT_CLI_SERVICE, "match", "gunicorn"), 0);
	assert_int_equal(agent_conf_set(&c, "--pid", AGENT_CLI_SERVICE, "pid", "7"), 0);
	assert_int_equal(agent_conf_set(&c, "--pid", AGENT_CLI_SERVICE, "pid", "8"), 0);
	assert_int_equal(agent_conf_set(&c, "--listen", "agent", "listen", "[::1]:0"), 0);
	assert_int_equal(agent_conf_finish(&c), 0);
	assert_string_equal(c.services[0].name, "default");
	assert_int_equal(c.services[0].npids, 2);
	assert_int_equal(c.listen.ss_family, AF_INET6);
	agent_conf_release(&c);

	assert_int_equal(agent_conf_init(&c), 0);
	assert_int_equal(agent_conf_set(&c, "--rate", "agent", "rate", "x"), -EINVAL);
	assert_string_equal(c.err, "--rate: rate: 'x' is not a rate in Hz (above 0, at most 10000)");
	/* The first error stays. */
	assert_int_equal(agent_conf_set(&c, "--window", "agent", "window", "y"), -EINVAL);
	assert_int_equal(agent_conf_finish(&c), -EINVAL);
	assert_string_equal(c.err, "--rate: rate: 'x' is not a rate in Hz (above 0, at most 10000)");
	agent_conf_release(&c);
}

static void test_values(void **state)
{
	uint64_t n;
	double d;
	int b;

	(void)state;
	assert_int_equal(agent_parse_size("0", &n), 0);
	assert_true(n == 0);
	assert_int_equal(agent_parse_size("1K", &n), 0);
	assert_true(n == 1024);
	assert_int_equal(agent_parse_size("1.5M", &n), 0);
	assert_true(n == 1572864);
	assert_int_equal(agent_parse_size("3GiB", &n), 0);
	assert_true(n == 3ULL << 30);
	assert_int_equal(agent_parse_size("1KB", &n), -EINVAL);
	assert_int_equal(agent_parse_size("0.5", &n), -EINVAL);
	assert_int_equal(agent_parse_size("", &n), -EINVAL);
	assert_int_equal(agent_parse_size("K", &n), -EINVAL);
	assert_int_equal(agent_parse_size("99999999T", &n), -EINVAL);
	assert_int_equal(agent_parse_duration("90", &d), 0);
	assert_true(d == 90.0);
	assert_int_equal(agent_parse_duration("1.5h", &d), 0);
	assert_true(d == 5400.0);
	assert_int_equal(agent_parse_duration("250ms", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(agent_parse_duration("7d", &d), 0);
	assert_true(d == 604800.0);
	assert_int_equal(agent_parse_duration("1w", &d), -EINVAL);
	assert_int_equal(agent_parse_duration("1e3", &d), -EINVAL);
	assert_int_equal(agent_parse_bool("Yes", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(agent_parse_bool("off", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(agent_parse_bool("2", &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_mistakes),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_sections_seen_whole),
		cmocka_unit_test(test_dropins),
		cmocka_unit_test(test_command_line),
		cmocka_unit_test(test_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
