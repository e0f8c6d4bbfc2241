/* test_out_dest.c - the pure parts of telling output paths apart: the
 * kind a path's facts give (out_kind_of), the names of our own
 * descriptors (out_fd_named), one file by two names (out_dest_same), and
 * names with the time in them (out_name_expand).
 * The probing itself runs in tests/integration/test_outputs_special.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "pyspyc/output.h"

static struct out_facts existing(mode_t type, uid_t uid)
{
	return (struct out_facts){ .fd = -1, .exists = 1, .mode = type | 0644, .uid = uid };
}

static void test_kinds(void **state)
{
	static const struct {
		mode_t type;
		enum out_kind kind;
	} rows[] = {
		{ S_IFREG, OUT_FILE }, { S_IFCHR, OUT_DEVICE }, { S_IFIFO, OUT_FIFO },
		{ S_IFDIR, OUT_DIR }, { S_IFBLK, OUT_BLOCK }, { S_IFSOCK, OUT_SOCKET },
	};
	struct out_facts f = { .fd = -1 };
	size_t i;

	(void)state;
	assert_int_equal(out_kind_of(&f), OUT_FILE); /* absent, or a dangling link */
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		f = existing(rows[i].type, 0);
		assert_int_equal(out_kind_of(&f), rows[i].kind);
		/* Refused kinds say why; the others are written. */
		assert_true(!out_kind_refusal(rows[i].kind) ==
			    (rows[i].kind == OUT_FILE || rows[i].kind == OUT_DEVICE ||
			     rows[i].kind == OUT_FIFO));
		/* A descriptor of ours wins over what it leads to. */
		f.fd = 2;
		assert_int_equal(out_kind_of(&f), OUT_STREAM);
	}
	assert_null(out_kind_refusal(OUT_STREAM));
	assert_non_null(out_kind_refusal(OUT_FOREIGN));
	assert_non_null(out_kind_refusal(OUT_OTHER));
}

/* protected_fifos: in a sticky directory others may write, a FIFO or
 * device is ours, or the directory owner's, or refused. */
static void test_foreign(void **state)
{
	static const mode_t types[] = { S_IFIFO, S_IFCHR };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		enum out_kind mine = types[i] == S_IFIFO ? OUT_FIFO : OUT_DEVICE;
		struct out_facts f = existing(types[i], 1000);

		f.euid = 0;
		f.dir_uid = 0;
		assert_int_equal(out_kind_of(&f), mine); /* not a shared directory */
		f.dir_shared = 1;
		assert_int_equal(out_kind_of(&f), OUT_FOREIGN);
		f.euid = 1000; /* our own */
		assert_int_equal(out_kind_of(&f), mine);
		f.euid = 0;
		f.dir_uid = 1000; /* the directory owner's */
		assert_int_equal(out_kind_of(&f), mine);
		f.link_foreign = 1; /* reached through another user's link */
		assert_int_equal(out_kind_of(&f), OUT_FOREIGN);
	}
	{
		/* A regular file is replaced, never written through: no matter. */
		struct out_facts f = existing(S_IFREG, 1000);

		f.dir_shared = 1;
		f.link_foreign = 1;
		assert_int_equal(out_kind_of(&f), OUT_FILE);
	}
}

static void test_fd_names(void **state)
{
	(void)state;
	assert_int_equal(out_fd_named("/dev/fd", "1", 42), 1);
	assert_int_equal(out_fd_named("/proc/self/fd", "2", 42), 2);
	assert_int_equal(out_fd_named("/proc/thread-self/fd", "0", 42), 0);
	assert_int_equal(out_fd_named("/proc/42/fd", "7", 42), 7);
	assert_int_equal(out_fd_named("/proc/42/task/43/fd", "1", 42), 1);
	assert_int_equal(out_fd_named("/proc/42/fd", "123456789", 42), 123456789);
	/* Another process's descriptors are not ours. */
	assert_int_equal(out_fd_named("/proc/43/fd", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/420/fd", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/4/fd", "1", 42), -1);
	/* Not a descriptor directory, or not a plain number. */
	assert_int_equal(out_fd_named("/dev", "stdout", 42), -1);
	assert_int_equal(out_fd_named("/tmp/fd", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/42/fdinfo", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/42/task/x/fd", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/42/task/43/fd/", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/42/task//fd", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/42", "1", 42), -1);
	assert_int_equal(out_fd_named("/proc/", "1", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "01", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "+1", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "-1", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "1 ", 42), -1);
	assert_int_equal(out_fd_named("/dev/fd", "1234567890", 42), -1);
}

static void test_same(void **state)
{
	struct out_dest a = { .kind = OUT_FILE, .dev = 1, .ino = 10, .name = "p.svg" };
	struct out_dest b = a, dev = { .kind = OUT_DEVICE, .dev = 5, .ino = 50 };
	struct out_dest stream = { .kind = OUT_STREAM, .dev = 5, .ino = 50 };

	(void)state;
	assert_true(out_dest_same(&a, &b)); /* one directory, one name */
	b.name = "q.svg";
	assert_false(out_dest_same(&a, &b));
	b.name = "p.svg";
	b.ino = 11; /* another directory */
	assert_false(out_dest_same(&a, &b));
	assert_true(out_dest_same(&dev, &stream)); /* one object */
	stream.ino = 51;
	assert_false(out_dest_same(&dev, &stream));
	/* A file in place now that another output writes in place: the one
	 * would be written, then replaced by the other. */
	assert_false(out_dest_same(&a, &dev));
	a.has_cur = 1;
	a.cur_dev = 5;
	a.cur_ino = 50;
	assert_true(out_dest_same(&a, &dev));
	assert_true(out_dest_same(&dev, &a));
	/* A directory's inode is not a file's: keys of the two kinds never
	 * meet (a's directory is dev 1, ino 10). */
	dev.dev = 1;
	dev.ino = 10;
	a.has_cur = 0;
	assert_false(out_dest_same(&a, &dev));
}

static void test_name_expand(void **state)
{
	/* 2026-12-04 00:30:00 UTC, and 999 ms later (the same second). */
	const int64_t t = 1796344200LL * 1000000000LL;
	static const struct {
		const char *tmpl, *want;
		int has_time;
	} rows[] = {
		{ "web-%t.svg", "web-20261204T003000Z.svg", 1 },
		{ "%t", "20261204T003000Z", 1 },
		{ "a-%t-%t.folded", "a-20261204T003000Z-20261204T003000Z.folded", 1 },
		{ "100%%.svg", "100%.svg", 0 },
		{ "%%t.svg", "%t.svg", 0 },
		{ "%%%t.svg", "%20261204T003000Z.svg", 1 },
		{ "50%.svg", "50%.svg", 0 },
		{ "x%", "x%", 0 },
		{ "%d-%T", "%d-%T", 0 },
		{ "plain.svg", "plain.svg", 0 },
		{ "", "", 0 },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(out_name_expand(rows[i].tmpl, t + 999000000, buf, sizeof(buf)), 0);
		assert_string_equal(buf, rows[i].want);
		assert_int_equal(out_name_has_time(rows[i].tmpl), rows[i].has_time);
	}
	/* Exactly fits, one byte short. */
	assert_int_equal(out_name_expand("ab-%t", t, buf, 20), 0);
	assert_int_equal(strlen(buf), 19);
	assert_int_equal(out_name_expand("ab-%t", t, buf, 19), -ENAMETOOLONG);
	assert_int_equal(out_name_expand("abc", t, buf, 3), -ENAMETOOLONG);
	assert_int_equal(out_name_expand("abc", t, buf, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_fd_names),
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_name_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
