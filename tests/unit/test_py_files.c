/* test_py_files.c - how file names are shown (py_shorten_filename) and
 * classified (py_file_kind).
 *
 * py_shorten_filename looks at the file system, so the tests build a small
 * tree of packages (directories with __init__.py) and plain directories
 * under a fresh mkdtemp() directory and remove it afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/py_code.h"

/* ---- the tree ------------------------------------------------------------ */

/* Directories, then files, relative to the temporary root. */
static const char *const tree_dirs[] = {
	"app", "app/pkg", "app/pkg/sub", "app/pkg/plain", "app/pkg/sub/deep",
	"toppkg", "toppkg/inner",
};
static const char *const tree_files[] = {
	"app/run.py",
	"app/pkg/__init__.py", "app/pkg/sub/__init__.py", "app/pkg/sub/mod.py",
	"app/pkg/plain/x.py",
	"app/pkg/sub/deep/__init__.py", "app/pkg/sub/deep/d.py",
	"toppkg/__init__.py", "toppkg/inner/__init__.py", "toppkg/inner/m.py",
};
#define NDIRS (sizeof(tree_dirs) / sizeof(tree_dirs[0]))
#define NFILES (sizeof(tree_files) / sizeof(tree_files[0]))

struct tree {
	char root[64];
};

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char path[256];
	size_t i;

	if (!t)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/pyspyc-files-XXXXXX");
	if (!mkdtemp(t->root))
		goto out_free;
	for (i = 0; i < NDIRS; i++) {
		snprintf(path, sizeof(path), "%s/%s", t->root, tree_dirs[i]);
		if (mkdir(path, 0755))
			goto out_free;
	}
	for (i = 0; i < NFILES; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", t->root, tree_files[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			goto out_free;
		close(fd);
	}
	*state = t;
	return 0;

out_free:
	free(t);
	return -1;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	char path[256];
	size_t i;

	for (i = NFILES; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%s", t->root, tree_files[i]);
		unlink(path);
	}
	for (i = NDIRS; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%s", t->root, tree_dirs[i]);
		rmdir(path);
	}
	rmdir(t->root);
	free(t);
	return 0;
}

/* Shorten root-relative path rel (which starts with '/') both ways: as an
 * absolute path with root "", and as rel with the tree as the root prefix. */
static void expect_short(const struct tree *t, const char *rel, const char *want)
{
	char full[512], out[512];

	snprintf(full, sizeof(full), "%s%s", t->root, rel);
	memset(out, 'Z', sizeof(out));
	py_shorten_filename("", full, out, sizeof(out));
	assert_string_equal(out, want);

	memset(out, 'Z', sizeof(out));
	py_shorten_filename(t->root, rel, out, sizeof(out));
	assert_string_equal(out, want);
}

static void expect_same(const char *file)
{
	char out[256];

	py_shorten_filename("", file, out, sizeof(out));
	assert_string_equal(out, file);
	py_shorten_filename("/nonexistent-root", file, out, sizeof(out));
	assert_string_equal(out, file);
}

/* ---- py_shorten_filename --------------------------------------------------- */

static void test_shorten_packages(void **state)
{
	const struct tree *t = *state;

	expect_short(t, "/app/pkg/sub/mod.py", "pkg/sub/mod.py");
	expect_short(t, "/app/pkg/sub/deep/d.py", "pkg/sub/deep/d.py");
	expect_short(t, "/app/pkg/__init__.py", "pkg/__init__.py");
	/* The file need not exist: only the directories are looked at. */
	expect_short(t, "/app/pkg/sub/gone.py", "pkg/sub/gone.py");
}

static void test_shorten_script(void **state)
{
	const struct tree *t = *state;

	expect_short(t, "/app/run.py", "run.py");
	expect_short(t, "/app/other.py", "other.py");
}

/* A plain directory inside a package ends the package. */
static void test_shorten_plain_dir(void **state)
{
	const struct tree *t = *state;

	expect_short(t, "/app/pkg/plain/x.py", "x.py");
}

/* Directories that do not exist are not packages. */
static void test_shorten_missing_dirs(void **state)
{
	const struct tree *t = *state;

	expect_short(t, "/nowhere/at/all.py", "all.py");
	expect_short(t, "/app/pkg/nosuch/z.py", "z.py");
}

static void test_shorten_not_absolute(void **state)
{
	(void)state;
	expect_same("<frozen os>");
	expect_same("<frozen importlib._bootstrap>");
	expect_same("<string>");
	expect_same("<stdin>");
	expect_same("relative/path.py");
	expect_same("run.py");
	expect_same("");
}

/* The root argument is a prefix under which the target's paths are looked
 * up: with another root the same path has no packages. */
static void test_shorten_root_prefix(void **state)
{
	const struct tree *t = *state;
	char out[256], bogus[128];

	py_shorten_filename(t->root, "/app/pkg/sub/mod.py", out, sizeof(out));
	assert_string_equal(out, "pkg/sub/mod.py");
	snprintf(bogus, sizeof(bogus), "%s/nonexistent", t->root);
	py_shorten_filename(bogus, "/app/pkg/sub/mod.py", out, sizeof(out));
	assert_string_equal(out, "mod.py");
	/* Without the root the relative-to-tree path means nothing. */
	py_shorten_filename("", "/app/pkg/sub/mod.py", out, sizeof(out));
	assert_string_equal(out, "mod.py");
}

static void test_shorten_truncates(void **state)
{
	const struct tree *t = *state;
	char out[8];
	size_t n;

	for (n = 1; n <= sizeof(out); n++) {
		memset(out, 'Z', sizeof(out));
		py_shorten_filename(t->root, "/app/pkg/sub/mod.py", out, n);
		assert_int_equal(out[n - 1], '\0');
		assert_int_equal(strlen(out), n - 1);
		assert_memory_equal(out, "pkg/sub/mod.py", n - 1);
		if (n < sizeof(out))
			assert_int_equal(out[n], 'Z');   /* nothing past size */
	}
	memset(out, 'Z', sizeof(out));
	py_shorten_filename("", "<frozen importlib._bootstrap>", out, 5);
	assert_string_equal(out, "<fro");
	assert_int_equal(out[5], 'Z');
}

/* A name cut to fit never ends in part of a character: "\xc3\xa9" (2
 * bytes), "\xe2\x82\xac" (3) and "\xf0\x9f\x98\x80" (4) are kept whole or
 * left out, whether the name is kept as it is or shortened. */
static void test_shorten_cuts_whole_characters(void **state)
{
	static const char name[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const size_t whole[] = { 0, 0, 0, 2, 2, 2, 5, 5, 5, 5, 9 };
	const char *files[] = { name, "/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" };
	char out[16];
	size_t f, size;

	(void)state;
	for (f = 0; f < 2; f++) {
		for (size = 1; size < sizeof(whole) / sizeof(whole[0]); size++) {
			memset(out, 'Z', sizeof(out));
			py_shorten_filename("", files[f], out, size);
			assert_int_equal(strlen(out), whole[size]);
			assert_memory_equal(out, name, whole[size]);
			assert_int_equal(out[size], 'Z');
		}
	}
}

/* Paths longer than PATH_MAX still give a bounded, terminated result. */
static void test_shorten_very_long_path(void **state)
{
	const size_t depth = 3000;
	char *file = malloc(depth * 2 + 16), out[32];
	size_t i, n = 0;

	(void)state;
	assert_non_null(file);
	for (i = 0; i < depth; i++) {
		file[n++] = '/';
		file[n++] = 'q';
	}
	memcpy(file + n, "/m.py", 6);
	py_shorten_filename("", file, out, sizeof(out));
	assert_string_equal(out, "m.py");
	py_shorten_filename("", file, out, 3);
	assert_string_equal(out, "m.");
	free(file);
}

/* When every directory up to the root is a package, the name is relative
 * to the root directory "/": "/toppkg/inner/m.py" is "toppkg/inner/m.py",
 * and a file directly in "/" is its base name. */
static void test_shorten_package_at_root(void **state)
{
	const struct tree *t = *state;
	char out[256];

	py_shorten_filename(t->root, "/toppkg/inner/m.py", out, sizeof(out));
	assert_string_equal(out, "toppkg/inner/m.py");
	py_shorten_filename(t->root, "/toppkg/__init__.py", out, sizeof(out));
	assert_string_equal(out, "toppkg/__init__.py");
	py_shorten_filename(t->root, "/m.py", out, sizeof(out));
	assert_string_equal(out, "m.py");
}

/* The target names the paths, and may plant symlinks and FIFOs in its own
 * tree: the probes stay inside root and look at regular files only.  An
 * absolute symlink resolves inside root (RESOLVE_IN_ROOT), ".." stops at
 * root, and a FIFO called __init__.py neither counts nor blocks. */
static void test_shorten_confined_to_root(void **state)
{
	const struct tree *t = *state;
	char outside[128], path[256], out[256], up[512];
	int fd;

	/* A real package outside the root: /tmp/...-out/pkg/__init__.py. */
	snprintf(outside, sizeof(outside), "%s-out", t->root);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(path, sizeof(path), "%s/__init__.py", outside);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);

	/* app/pkg/plain/__init__.py -> that file, by absolute path: inside
	 * the root the path does not exist, so plain is not a package. */
	snprintf(path, sizeof(path), "%s/app/pkg/plain/__init__.py", t->root);
	snprintf(up, sizeof(up), "%s/__init__.py", outside);
	assert_int_equal(symlink(up, path), 0);
	py_shorten_filename(t->root, "/app/pkg/plain/x.py", out, sizeof(out));
	assert_string_equal(out, "x.py");
	unlink(path);

	/* The same by "..": as many as it takes to climb out of the root, and
	 * then down into the outside directory, which ".." cannot reach. */
	snprintf(up, sizeof(up), "../../../../../../../../..%s/__init__.py", outside);
	assert_int_equal(symlink(up, path), 0);
	py_shorten_filename(t->root, "/app/pkg/plain/x.py", out, sizeof(out));
	assert_string_equal(out, "x.py");
	unlink(path);

	/* A FIFO is not a package marker, and opening it must not block. */
	assert_int_equal(mkfifo(path, 0644), 0);
	py_shorten_filename(t->root, "/app/pkg/plain/x.py", out, sizeof(out));
	assert_string_equal(out, "x.py");
	unlink(path);

	/* A symlink that stays inside the root still works. */
	assert_int_equal(symlink("/app/pkg/__init__.py", path), 0);
	py_shorten_filename(t->root, "/app/pkg/plain/x.py", out, sizeof(out));
	assert_string_equal(out, "pkg/plain/x.py");
	unlink(path);

	snprintf(path, sizeof(path), "%s/__init__.py", outside);
	unlink(path);
	rmdir(outside);
}

/* ---- py_file_kind ---------------------------------------------------------- */

static void test_kind_library(void **state)
{
	static const char *const lib[] = {
		"/usr/lib/python3/dist-packages/requests/api.py",
		"/home/u/.venv/lib/python3.12/site-packages/numpy/core/x.py",
		"/usr/local/lib/python3.11/site-packages/flask/app.py",
		"/opt/py/lib/python3.11/site-packages/six.py",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lib) / sizeof(lib[0]); i++) {
		assert_int_equal(py_file_kind(lib[i], ""), FRAME_LIBRARY);
		/* site-packages under the stdlib prefix is still a library. */
		assert_int_equal(py_file_kind(lib[i], "/usr/lib/python3.11/"),
				 FRAME_LIBRARY);
		assert_int_equal(py_file_kind(lib[i], "/opt/py/lib/python3.11/"),
				 FRAME_LIBRARY);
	}
}

static void test_kind_stdlib(void **state)
{
	static const char *const std[] = {
		"<frozen importlib._bootstrap>",
		"<frozen importlib._bootstrap_external>",
		"<frozen os>",
		"/usr/lib/python3.11/threading.py",
		"/usr/lib/python3.11/json/decoder.py",
		"/usr/local/lib/python3.10/asyncio/events.py",
		"/opt/python/3.13/lib/python3.13/socket.py",
		"/usr/lib/python2.7/os.py",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
		assert_int_equal(py_file_kind(std[i], ""), FRAME_STDLIB);
		assert_int_equal(py_file_kind(std[i], "/elsewhere/lib/python3.11/"),
				 FRAME_STDLIB);
	}
	/* The prefix given at attach, wherever it is. */
	assert_int_equal(py_file_kind("/opt/custom/pystd/json/__init__.py",
				      "/opt/custom/pystd/"), FRAME_STDLIB);
	assert_int_equal(py_file_kind("/opt/custom/pystd/json/__init__.py", ""),
			 FRAME_APP);
}

static void test_kind_app(void **state)
{
	static const char *const app[] = {
		"/srv/app/main.py", "/home/u/proj/pkg/mod.py", "app.py", "pkg/mod.py",
		"<string>", "<stdin>", "<frozenset>", "",
		"/home/u/lib/pythonic/x.py", "/home/u/lib/python-tools/x.py",
		"/home/u/site-packages-notes/x.py", "/home/u/site-packages",
		"/home/u/src/lib/py/x.py",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(app) / sizeof(app[0]); i++) {
		if (py_file_kind(app[i], "/usr/lib/python3.11/") != FRAME_APP)
			fail_msg("'%s' is not app code", app[i]);
		assert_int_equal(py_file_kind(app[i], ""), FRAME_APP);
	}
}

/* The stdlib of distributions with platlibdir "lib64" (Fedora, RHEL,
 * openSUSE) is /usr/lib64/pythonX.Y, while the prefix derived from
 * /usr/bin/pythonX.Y is /usr/lib/pythonX.Y/. */
static void test_kind_stdlib_lib64(void **state)
{
	(void)state;
	assert_int_equal(py_file_kind("/usr/lib64/python3.11/threading.py",
				      "/usr/lib/python3.11/"), FRAME_STDLIB);
	assert_int_equal(py_file_kind("/usr/lib64/python3.11/site-packages/x.py",
				      "/usr/lib/python3.11/"), FRAME_LIBRARY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shorten_packages, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_shorten_script, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_shorten_plain_dir, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_shorten_missing_dirs, tree_setup,
						tree_teardown),
		cmocka_unit_test(test_shorten_not_absolute),
		cmocka_unit_test_setup_teardown(test_shorten_root_prefix, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_shorten_truncates, tree_setup,
						tree_teardown),
		cmocka_unit_test(test_shorten_cuts_whole_characters),
		cmocka_unit_test(test_shorten_very_long_path),
		cmocka_unit_test_setup_teardown(test_shorten_package_at_root,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_shorten_confined_to_root,
						tree_setup, tree_teardown),
		cmocka_unit_test(test_kind_library),
		cmocka_unit_test(test_kind_stdlib),
		cmocka_unit_test(test_kind_app),
		cmocka_unit_test(test_kind_stdlib_lib64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
