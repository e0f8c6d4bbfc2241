/* test_agent_find.c - which processes a service's selectors choose: a
 * process and its descendants (by pid and by pid file), a command line by
 * regular expression, and control groups (a unit's found by name, the
 * groups under it included), on real child processes and a control-group
 * tree laid out in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/agent_conf.h"
#include "pyspyc/agent_find.h"

#define CAP 64

/* A child running `sleep 60.<tag>` (tag: digits, so a regular expression
 * can tell it from every other process), with a child of its own when
 * nested. */
static pid_t spawn_sleeper(const char *tag, int nested, pid_t *grandchild)
{
	int pfd[2];
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char arg[64];

		close(pfd[0]);
		if (nested) {
			pid_t g = fork();

			if (g == 0) {
				snprintf(arg, sizeof(arg), "60.%s1", tag);
				execlp("sleep", "sleep", arg, (char *)NULL);
				_exit(127);
			}
			if (write(pfd[1], &g, sizeof(g)) != sizeof(g))
				_exit(1);
			close(pfd[1]);
			waitpid(g, NULL, 0);
			_exit(0);
		}
		close(pfd[1]);
		snprintf(arg, sizeof(arg), "60.%s", tag);
		execlp("sleep", "sleep", arg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (nested)
		assert_int_equal(read(pfd[0], grandchild, sizeof(*grandchild)), sizeof(*grandchild));
	close(pfd[0]);
	return pid;
}

/* Until the child has exec'd (its command line is sleep's). */
static void wait_exec(pid_t pid, const char *want)
{
	char cmd[256];
	int i;

	for (i = 0; i < 500; i++) {
		if (!proc_cmdline(pid, cmd, sizeof(cmd)) && !strcmp(cmd, want))
			return;
		usleep(10000);
	}
	fail_msg("pid %d never ran '%s'", (int)pid, want);
}

static int has(const struct proc_ident *v, size_t n, pid_t pid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].pid == pid)
			return 1;
	return 0;
}

static void conf_of(struct agent_conf *c, const char *text)
{
	assert_int_equal(agent_conf_init(c), 0);
	assert_int_equal(agent_conf_parse(c, "t.conf", text, strlen(text)), 0);
	assert_int_equal(agent_conf_finish(c), 0);
}

static void test_pid_tree_and_match(void **state)
{
	char tag[32], text[256], want[64];
	struct proc_ident out[CAP];
	struct agent_scan sc = { 0 };
	struct agent_find_notes notes;
	struct agent_conf c;
	pid_t a, b, g = 0;
	size_t n, left;

	(void)state;
	snprintf(tag, sizeof(tag), "%d%ld", (int)getpid(), (long)time(NULL) % 100000);
	a = spawn_sleeper(tag, 1, &g); /* a forks g, which runs sleep */
	b = spawn_sleeper(tag, 0, NULL);
	snprintf(want, sizeof(want), "sleep 60.%s1", tag);
	wait_exec(g, want);
	snprintf(want, sizeof(want), "sleep 60.%s", tag);
	wait_exec(b, want);
	assert_int_equal(agent_scan_take(&sc), 0);
	assert_non_null(agent_scan_get(&sc, a));
	assert_null(agent_scan_get(&sc, -1));

	/* pid: the process and what it started, nothing else. */
	snprintf(text, sizeof(text), "[service s]\npid = %d\n", (int)a);
	conf_of(&c, text);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 2);
	assert_true(has(out, n, a) && has(out, n, g));
	assert_true(out[0].pid < out[1].pid);
	assert_true(out[0].start > 0);
	assert_string_equal(notes.text, "");
	/* With no room for both: one, and one counted as left out. */
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, 1, &n, &left,
				    NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(left, 1);
	agent_conf_release(&c);

	/* match: the command lines, joined by spaces; anchored, only b. */
	snprintf(text, sizeof(text), "[service s]\nmatch = ^sleep 60\\.%s$\n", tag);
	conf_of(&c, text);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].pid, b);
	agent_conf_release(&c);
	/* Unanchored: both sleeps (and never this test, whose command line
	 * does not hold the tag). */
	snprintf(text, sizeof(text), "[service s]\nmatch = 60\\.%s\n", tag);
	conf_of(&c, text);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 2);
	assert_true(has(out, n, b) && has(out, n, g));
	agent_conf_release(&c);

	/* A pid that is not running selects nothing. */
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	snprintf(text, sizeof(text), "[service s]\npid = %d\n", (int)b);
	conf_of(&c, text);
	assert_int_equal(agent_scan_take(&sc), 0);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 0);
	agent_conf_release(&c);

	kill(g, SIGKILL);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	agent_scan_release(&sc);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_pidfile(void **state)
{
	char dir[] = "/tmp/pyspyc-find-XXXXXX", path[128], text[256], want[300];
	struct proc_ident out[CAP];
	struct agent_scan sc = { 0 };
	struct agent_find_notes notes;
	struct agent_conf c;
	size_t n, left;
	pid_t a;

	(void)state;
	assert_non_null(mkdtemp(dir));
	a = spawn_sleeper("11", 0, NULL);
	wait_exec(a, "sleep 60.11");
	snprintf(path, sizeof(path), "%s/app.pid", dir);
	snprintf(text, sizeof(text), " %d\n", (int)a);
	write_file(path, text);
	assert_int_equal(agent_scan_take(&sc), 0);
	snprintf(text, sizeof(text), "[service s]\npidfile = %s\n", path);
	conf_of(&c, text);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].pid, a);

	write_file(path, "garbage\n");
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 0);
	snprintf(want, sizeof(want), "pidfile %s: holds no process id", path);
	assert_string_equal(notes.text, want);

	unlink(path);
	assert_int_equal(agent_find(&sc, &c.services[0], AGENT_CGROUP_ROOT, out, CAP, &n, &left,
				    &notes), 0);
	assert_int_equal(n, 0);
	snprintf(want, sizeof(want), "pidfile %s: No such file or directory", path);
	assert_string_equal(notes.text, want);
	agent_conf_release(&c);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	rmdir(dir);
	agent_scan_release(&sc);
}

static void mkdirs(const char *root, const char *rel)
{
	char path[512], *p;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void procs_file(const char *root, const char *rel, pid_t pid)
{
	char path[512], text[32];

	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", root, rel);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	write_file(path, text);
}

static void test_cgroups(void **state)
{
	char root[] = "/tmp/pyspyc-cg-XXXXXX", path[512], cmd[600];
	struct proc_ident out[CAP];
	struct agent_scan sc = { 0 };
	struct agent_find_notes notes;
	struct agent_conf c;
	pid_t a, b, d;
	size_t n, left;

	(void)state;
	assert_non_null(mkdtemp(root));
	a = spawn_sleeper("21", 0, NULL);
	b = spawn_sleeper("22", 0, NULL);
	d = spawn_sleeper("23", 0, NULL);
	wait_exec(a, "sleep 60.21");
	wait_exec(b, "sleep 60.22");
	wait_exec(d, "sleep 60.23");
	mkdirs(root, "system.slice/app.service/worker");
	mkdirs(root, "user.slice/user-0.slice/other.service");
	procs_file(root, "system.slice", d);
	procs_file(root, "system.slice/app.service", a);
	procs_file(root, "system.slice/app.service/worker", b);
	procs_file(root, "user.slice/user-0.slice/other.service", d);
	procs_file(root, "user.slice", a);
	procs_file(root, "user.slice/user-0.slice", a);
	assert_int_equal(agent_scan_take(&sc), 0);

	/* A unit in system.slice, the group under it included. */
	conf_of(&c, "[service s]\nunit = app\n");
	assert_int_equal(agent_find(&sc, &c.services[0], root, out, CAP, &n, &left, &notes), 0);
	assert_int_equal(n, 2);
	assert_true(has(out, n, a) && has(out, n, b));
	agent_conf_release(&c);

	/* One found elsewhere, by a search. */
	assert_int_equal(agent_unit_cgroup(root, "other.service", path, sizeof(path)), 0);
	snprintf(cmd, sizeof(cmd), "%s/user.slice/user-0.slice/other.service", root);
	assert_string_equal(path, cmd);
	conf_of(&c, "[service s]\nunit = other.service\n");
	assert_int_equal(agent_find(&sc, &c.services[0], root, out, CAP, &n, &left, &notes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].pid, d);
	agent_conf_release(&c);

	/* A cgroup by path, with and without the mount in front. */
	conf_of(&c, "[service s]\ncgroup = /sys/fs/cgroup/system.slice/app.service/worker\n");
	assert_string_equal(c.services[0].cgroup, "/system.slice/app.service/worker");
	assert_int_equal(agent_find(&sc, &c.services[0], root, out, CAP, &n, &left, &notes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].pid, b);
	agent_conf_release(&c);

	/* Missing ones: nothing, and a note. */
	conf_of(&c, "[service s]\nunit = gone\ncgroup = nowhere\n");
	assert_int_equal(agent_find(&sc, &c.services[0], root, out, CAP, &n, &left, &notes), 0);
	assert_int_equal(n, 0);
	assert_string_equal(notes.text, "unit gone.service: no control group of that name; "
					"cgroup /nowhere: No such file or directory");
	agent_conf_release(&c);

	kill(a, SIGKILL);
	kill(b, SIGKILL);
	kill(d, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	waitpid(d, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	agent_scan_release(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pid_tree_and_match),
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_cgroups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
