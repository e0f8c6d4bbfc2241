/* output.c - the format registry and atomic output files. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/cli.h"
#include "pyspyc/output.h"

static const char *const svg_exts[] = { ".svg", NULL };
static const char *const raw_exts[] = { ".folded", ".collapsed", ".txt", NULL };
static const char *const speedscope_exts[] = { ".speedscope.json", NULL };
static const char *const chrometrace_exts[] = { ".trace.json", NULL };
static const char *const pprof_exts[] = { ".pb.gz", ".pprof", NULL };

static const struct out_format fmt_svg = {
	.name = "flamegraph",
	.exts = svg_exts,
	.write = out_svg_write,
	.help = "interactive flame graph (SVG)",
};

static const struct out_format fmt_raw = {
	.name = "raw",
	.exts = raw_exts,
	.write = out_collapsed_write,
	.help = "collapsed stacks for flamegraph.pl, inferno, speedscope",
};

static const struct out_format fmt_speedscope = {
	.name = "speedscope",
	.exts = speedscope_exts,
	.write = out_speedscope_write,
	.help = "speedscope JSON: a profile per thread, samples in time order",
	.needs = OUT_PER_THREAD | OUT_TIMELINE,
};

static const struct out_format fmt_chrometrace = {
	.name = "chrometrace",
	.exts = chrometrace_exts,
	.write = out_chrometrace_write,
	.help = "Chrome trace events for Perfetto and chrome://tracing",
	.needs = OUT_PER_THREAD | OUT_TIMELINE,
};

static const struct out_format fmt_pprof = {
	.name = "pprof",
	.exts = pprof_exts,
	.write = out_pprof_write,
	.help = "pprof profile.proto, gzipped, for go tool pprof; threads as labels",
	.needs = OUT_PER_THREAD,
};

static const struct out_format *const formats[] = { &fmt_svg, &fmt_raw, &fmt_speedscope,
						    &fmt_chrometrace, &fmt_pprof, NULL };

static const struct {
	const char *alias;
	const struct out_format *fmt;
} aliases[] = {
	{ "svg", &fmt_svg },
	{ "collapsed", &fmt_raw },
	{ "folded", &fmt_raw },
};

const struct out_format *const *out_formats(void)
{
	return formats;
}

const struct out_format *out_format_by_name(const char *name)
{
	size_t i;

	for (i = 0; formats[i]; i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(aliases[i].alias, name))
			return aliases[i].fmt;
	return NULL;
}

static int ends_with(const char *s, const char *end)
{
	size_t ls = strlen(s), le = strlen(end);

	return ls > le && !strcasecmp(s + ls - le, end);
}

const struct out_format *out_format_by_path(const char *path)
{
	size_t i, j;

	if (!strcmp(path, "-"))
		return &fmt_raw;
	for (i = 0; formats[i]; i++)
		for (j = 0; formats[i]->exts[j]; j++)
			if (ends_with(path, formats[i]->exts[j]))
				return formats[i];
	return NULL;
}

/* The directory part of path, in buf. */
static int dir_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		if (size < 2)
			return -ENAMETOOLONG;
		strcpy(buf, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

/* The file name part of path. */
static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The temporary file path is written through, in path's directory (so the
 * rename is atomic) and hidden; at most 40 bytes of the name go into it,
 * so any name the file system takes gives a temporary name it takes. */
static int tmp_beside(const char *path, char *tmp, size_t size)
{
	char dir[PATH_MAX];
	int err, n;

	err = dir_of(path, dir, sizeof(dir));
	if (err)
		return err;
	n = snprintf(tmp, size, "%s/.%.40s.pyspyc-XXXXXX", dir, base_of(path));
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int out_check_path(const char *path)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int err, fd;
	long max;

	if (!strcmp(path, "-")) { /* stdout: open, and writable */
		int fl = fcntl(STDOUT_FILENO, F_GETFL);

		return fl < 0 || (fl & O_ACCMODE) == O_RDONLY ? -EBADF : 0;
	}
	if (!path[0])
		return -ENOENT;
	if (path[strlen(path) - 1] == '/')
		return -EISDIR;
	/* A symlink at path is fine: it will be replaced.  A directory is not. */
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	err = dir_of(path, dir, sizeof(dir));
	if (err)
		return err;
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	max = pathconf(dir, _PC_NAME_MAX);
	if (max > 0 && strlen(base_of(path)) > (size_t)max)
		return -ENAMETOOLONG;
	/* Whether a file can really be made there (root passes access() on a
	 * read-only or special file system such as /proc): make the temporary
	 * file the output will be written to, and remove it. */
	err = tmp_beside(path, tmp, sizeof(tmp));
	if (err)
		return err;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	unlink(tmp);
	return 0;
}

/* Run through sudo, root makes the outputs the invoking user's (SUDO_UID,
 * SUDO_GID), so they can read and remove their profile.  Best effort: a
 * file system without owners (vfat) keeps root's, and the profile is
 * written all the same. */
static void give_to_sudo_user(int fd)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");
	long long uid, gid = -1;

	if (geteuid() != 0 || !u || cli_parse_ll(u, &uid) || uid < 0 || uid >= UINT32_MAX)
		return;
	if (g && (cli_parse_ll(g, &gid) || gid < 0 || gid >= UINT32_MAX))
		gid = -1;
	if (fchown(fd, (uid_t)uid, gid < 0 ? (gid_t)-1 : (gid_t)gid) < 0)
		return; /* the file stays root's */
}

static int write_stream(FILE *f, const struct out_format *fmt,
			const struct profile *p, const struct out_opts *o)
{
	int err;

	/* A writer reports a failed write as -EIO (it sees only ferror()):
	 * the failed write's own errno (ENOSPC, EDQUOT, EPIPE) says more. */
	errno = 0;
	err = fmt->write(p, o, f);
	if (err == -EIO && errno)
		err = -errno;

	if (fflush(f) && !err)
		err = -errno;
	if (ferror(f) && !err)
		err = -EIO;
	return err;
}

int out_write_file(const char *path, const struct out_format *fmt,
		   const struct profile *p, const struct out_opts *o)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, err;

	if (!strcmp(path, "-")) {
		err = write_stream(stdout, fmt, p, o);
		/* A reader that closed the pipe early is not an I/O error. */
		return err && errno == EPIPE ? -EPIPE : err;
	}

	err = tmp_beside(path, tmp, sizeof(tmp));
	if (err)
		return err;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* mkostemp makes 0600; a profile is as readable as any new file. */
	{
		mode_t um = umask(0);

		umask(um);
		if (fchmod(fd, 0666 & ~um)) {
			err = -errno;
			close(fd);
			goto out_unlink;
		}
	}
	give_to_sudo_user(fd);
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto out_unlink;
	}
	err = write_stream(f, fmt, p, o);
	if (!err && fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		goto out_unlink;
	/* rename() replaces a symlink at path rather than following it. */
	if (rename(tmp, path)) {
		err = -errno;
		goto out_unlink;
	}
	return 0;

out_unlink:
	unlink(tmp);
	return err;
}
