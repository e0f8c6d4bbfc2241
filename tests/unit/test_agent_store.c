/* test_agent_store.c - the agent's windows on disk: names that sort as
 * time does and parse back, what retention deletes (by age, by each
 * service's bytes, by all services' bytes, never a service's newest
 * window), listing and deleting a real directory, and the free-space
 * check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/agent_store.h"

#define S 1000000000LL
#define T0 1796000000LL /* 2026-11-30 00:53:20 UTC */

static void test_names(void **state)
{
	char buf[64];
	int64_t t;
	uint32_t seq;
	const char *ext;

	(void)state;
	assert_int_equal(agent_window_stem(T0 * S + 123, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "20261130T005320Z");
	assert_int_equal(agent_window_stem(T0 * S, 12, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "20261130T005320Z-12");
	assert_int_equal(agent_window_stem(T0 * S, 1, buf, 10), -ENAMETOOLONG);
	assert_int_equal(agent_window_stem(T0 * S, 0, buf, sizeof(buf)), -EINVAL);

	assert_int_equal(agent_window_parse("20261130T005320Z.pb.gz", &t, &seq, &ext), 0);
	assert_true(t == T0 * S && seq == 1);
	assert_string_equal(ext, ".pb.gz");
	assert_int_equal(agent_window_parse("20261130T005320Z-12.folded", &t, &seq, &ext), 0);
	assert_true(t == T0 * S && seq == 12);
	assert_string_equal(ext, ".folded");
	/* Not ours: left alone. */
	assert_int_equal(agent_window_parse("20261130T005320Z.svg", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse("20261130T005320Z-1.pb.gz", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse("20261130T005320Z-012.pb.gz", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse("20261131T083320Z.pb.gz", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse("2026112xT083320Z.pb.gz", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse(".tmp20261130T005320Z.pb.gz", &t, &seq, &ext), -EINVAL);
	assert_int_equal(agent_window_parse("x", &t, &seq, &ext), -EINVAL);
}

#define W(svc, min, kb) { .service = (svc), .start_ns = (T0 + (min) * 60) * S, .seq = 1, \
			  .bytes = (kb) * 1024ULL }

static void test_plan_by_age(void **state)
{
	struct agent_window_file v[] = { W(0, 0, 1), W(0, 10, 1), W(0, 20, 1), W(1, 0, 1) };
	double age[] = { 15 * 60.0, 0 };
	struct agent_retention r = { .svc_keep_age_s = age, .now_ns = (T0 + 30 * 60) * S };

	(void)state;
	/* Service 0 keeps 15 minutes: the windows 30 and 20 minutes old go;
	 * service 1 keeps all. */
	assert_int_equal(agent_retention_plan(v, 4, &r), 2);
	assert_true(v[0].doomed && v[1].doomed && !v[2].doomed && !v[3].doomed);
}

static void test_plan_by_service_bytes(void **state)
{
	struct agent_window_file v[] = { W(0, 3, 10), W(0, 1, 10), W(1, 0, 50), W(0, 2, 10),
					 W(0, 4, 10) };
	uint64_t svc[] = { 25 * 1024, 0 };
	struct agent_retention r = { .svc_keep_bytes = svc, .now_ns = T0 * S };

	(void)state;
	/* 40 KB of service 0 against 25: the two oldest (minutes 1 and 2)
	 * go, in any order given. */
	assert_int_equal(agent_retention_plan(v, 5, &r), 2);
	assert_true(v[1].doomed && v[3].doomed);
	assert_true(!v[0].doomed && !v[2].doomed && !v[4].doomed);
}

static void test_plan_overall_keeps_newest(void **state)
{
	struct agent_window_file v[] = { W(0, 0, 10), W(1, 1, 10), W(0, 2, 10), W(1, 3, 10),
					 W(2, 0, 100) };
	struct agent_retention r = { .keep_bytes = 15 * 1024, .now_ns = T0 * S };

	(void)state;
	/* 140 KB against 15: everything but each service's newest goes, and
	 * the newest stay even though they are still over the bound. */
	assert_int_equal(agent_retention_plan(v, 5, &r), 2);
	assert_true(v[0].doomed && v[1].doomed);
	assert_true(!v[2].doomed && !v[3].doomed && !v[4].doomed);
}

static void test_plan_nothing(void **state)
{
	struct agent_window_file v[] = { W(0, 0, 10), W(0, 1, 10) };
	struct agent_retention r = { .keep_bytes = 20 * 1024, .now_ns = T0 * S };

	(void)state;
	assert_int_equal(agent_retention_plan(v, 2, &r), 0);
	assert_int_equal(agent_retention_plan(NULL, 0, &r), 0);
}

static void put(const char *dir, const char *name, size_t bytes)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	while (bytes--)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
}

static void test_on_disk(void **state)
{
	char root[] = "/tmp/pyspyc-store-XXXXXX", web[256], path[512], want[512], cmd[300];
	const char *svcs[] = { "web", "jobs" };
	struct agent_window_file *v;
	size_t n, i;
	uint64_t freed;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_int_equal(agent_store_service_dir(root, "web"), 0);
	assert_int_equal(agent_store_service_dir(root, "web"), 0); /* again: fine */
	snprintf(web, sizeof(web), "%s/web", root);
	put(web, "20261130T005320Z.pb.gz", 100);
	put(web, "20261130T005320Z.folded", 50);
	put(web, "20261130T005420Z.pb.gz", 200);
	put(web, "notes.txt", 10);
	put(web, "20261130T005320Z.svg", 10);
	/* jobs has no directory yet: no windows, no error. */
	assert_int_equal(agent_store_list(root, svcs, 2, &v, &n), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++) {
		assert_int_equal(v[i].service, 0);
		if (v[i].start_ns == T0 * S)
			assert_true(v[i].bytes == 150);
		else
			assert_true(v[i].bytes == 200 && v[i].start_ns == (T0 + 60) * S);
		v[i].doomed = v[i].start_ns == T0 * S;
	}
	freed = agent_store_delete(root, svcs, v, n);
	assert_true(freed == 150);
	free(v);
	snprintf(path, sizeof(path), "%s/20261130T005320Z.pb.gz", web);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/20261130T005320Z.folded", web);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/notes.txt", web);
	assert_int_equal(access(path, F_OK), 0);

	/* A new window in a second already taken gets "-2". */
	assert_int_equal(agent_store_path(root, "web", (T0 + 60) * S + 5, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/20261130T005420Z-2", web);
	assert_string_equal(path, want);
	assert_int_equal(agent_store_path(root, "web", (T0 + 120) * S, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/20261130T005520Z", web);
	assert_string_equal(path, want);
	assert_int_equal(agent_store_sync_dir(web), 0);

	/* A file where a service's directory should be. */
	put(root, "jobs", 1);
	assert_int_equal(agent_store_service_dir(root, "jobs"), -ENOTDIR);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static void test_room(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(agent_store_room("/tmp", 1, 0, 0.0, why, sizeof(why)), 0);
	/* Keeping everything free: no room. */
	assert_int_equal(agent_store_room("/tmp", 1, 0, 99.9999, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "min_free keeps 99.9999%"));
	assert_int_equal(agent_store_room("/tmp", 1, 1ULL << 62, 0, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, " bytes free under /tmp; min_free keeps 4611686018427387904"));
	assert_int_equal(agent_store_room("/nonexistent/x", 1, 0, 1, why, sizeof(why)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_plan_by_age),
		cmocka_unit_test(test_plan_by_service_bytes),
		cmocka_unit_test(test_plan_overall_keeps_newest),
		cmocka_unit_test(test_plan_nothing),
		cmocka_unit_test(test_on_disk),
		cmocka_unit_test(test_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
