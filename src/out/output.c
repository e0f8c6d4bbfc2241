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
#include <time.h>
#include <unistd.h>

#include "pyspyc/cli.h"
#include "pyspyc/output.h"

static const char *const svg_exts[] = { ".svg", NULL };
static const char *const raw_exts[] = { ".folded", ".collapsed", ".txt", NULL };
static const char *const speedscope_exts[] = { ".speedscope.json", NULL };
static const char *const chrometrace_exts[] = { ".trace.json", NULL };
static const char *const pprof_exts[] = { ".pb.gz", ".pprof", NULL };
static const char *const callgrind_exts[] = { ".callgrind", NULL };
static const char *const pstats_exts[] = { ".pstats", ".prof", NULL };
/* callgrind.out.*, as Callgrind names its own */
static const char *const callgrind_prefixes[] = { "callgrind.out.", NULL };

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

static const struct out_format fmt_callgrind = {
	.name = "callgrind",
	.exts = callgrind_exts,
	.prefixes = callgrind_prefixes,
	.write = out_callgrind_write,
	.help = "Callgrind format for KCachegrind and callgrind_annotate (callgrind.out.*)",
};

static const struct out_format fmt_pstats = {
	.name = "pstats",
	.exts = pstats_exts,
	.write = out_pstats_write,
	.help = "Python's pstats (cProfile's dump), for python -m pstats, snakeviz, gprof2dot",
};

static const struct out_format *const formats[] = { &fmt_svg, &fmt_raw, &fmt_speedscope,
						    &fmt_chrometrace, &fmt_pprof,
						    &fmt_callgrind, &fmt_pstats, NULL };

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

/* The file name part of path. */
static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

const struct out_format *out_format_by_path(const char *path)
{
	size_t i, j;

	if (!strcmp(path, "-"))
		return &fmt_raw;
	/* A name's beginning first: callgrind.out.x.svg is Callgrind's. */
	for (i = 0; formats[i]; i++)
		for (j = 0; formats[i]->prefixes && formats[i]->prefixes[j]; j++)
			if (!strncmp(base_of(path), formats[i]->prefixes[j],
				     strlen(formats[i]->prefixes[j])))
				return formats[i];
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

int out_name_has_time(const char *tmpl)
{
	const char *c;

	for (c = tmpl; *c; c++)
		if (c[0] == '%' && (c[1] == 't' || c[1] == '%')) {
			if (c[1] == 't')
				return 1;
			c++;
		}
	return 0;
}

int out_name_expand(const char *tmpl, int64_t wall_ns, char *buf, size_t size)
{
	char stamp[OUT_TIME_LEN + 1];
	time_t secs = (time_t)(wall_ns / 1000000000);
	size_t n = 0;
	struct tm tm;
	const char *c;

	if (!gmtime_r(&secs, &tm) ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) != OUT_TIME_LEN)
		snprintf(stamp, sizeof(stamp), "%s", "00000000T000000Z");
	for (c = tmpl; *c; c++) {
		const char *piece = c;
		size_t len = 1;

		if (c[0] == '%' && c[1] == 't') {
			piece = stamp;
			len = OUT_TIME_LEN;
			c++;
		} else if (c[0] == '%' && c[1] == '%') {
			c++;
		}
		if (n + len >= size)
			return -ENAMETOOLONG;
		memcpy(buf + n, piece, len);
		n += len;
	}
	if (n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
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

/* ---- where an output goes -------------------------------------------- */

enum out_kind out_kind_of(const struct out_facts *f)
{
	int foreign;

	if (f->fd >= 0)
		return OUT_STREAM;
	if (!f->exists)
		return OUT_FILE;
	foreign = f->link_foreign ||
		  (f->dir_shared && f->uid != f->euid && f->uid != f->dir_uid);
	switch (f->mode & S_IFMT) {
	case S_IFREG:
		return OUT_FILE; /* replaced by rename, never written through */
	case S_IFDIR:
		return OUT_DIR;
	case S_IFBLK:
		return OUT_BLOCK;
	case S_IFSOCK:
		return OUT_SOCKET;
	case S_IFCHR:
		return foreign ? OUT_FOREIGN : OUT_DEVICE;
	case S_IFIFO:
		return foreign ? OUT_FOREIGN : OUT_FIFO;
	default:
		return OUT_OTHER;
	}
}

const char *out_kind_refusal(enum out_kind kind)
{
	switch (kind) {
	case OUT_DIR:
		return "it is a directory";
	case OUT_BLOCK:
		return "it is a block device (pyspyc writes files, character devices, "
		       "FIFOs and its own descriptors)";
	case OUT_SOCKET:
		return "it is a socket (give it as a descriptor of pyspyc's, such as "
		       "/dev/stdout, to write to it)";
	case OUT_FOREIGN:
		return "it is another user's FIFO or device in a directory anyone may "
		       "write to (or reached through another user's symlink there)";
	case OUT_OTHER:
		return "it is not a file, a device or a FIFO";
	default:
		return NULL;
	}
}

/* s as a plain decimal number of at most 9 digits (an int), or -1. */
static long decimal(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int out_fd_named(const char *dir, const char *base, long self)
{
	const char *rest;
	long n;

	n = decimal(base, strlen(base));
	if (n < 0)
		return -1;
	if (!strcmp(dir, "/dev/fd") || !strcmp(dir, "/proc/self/fd") ||
	    !strcmp(dir, "/proc/thread-self/fd"))
		return (int)n;
	if (strncmp(dir, "/proc/", 6))
		return -1;
	rest = strchr(dir + 6, '/');
	if (!rest || decimal(dir + 6, (size_t)(rest - (dir + 6))) != self)
		return -1;
	if (!strcmp(rest, "/fd"))
		return (int)n;
	/* /task/TID/fd: a thread of ours shares our descriptors. */
	if (strncmp(rest, "/task/", 6))
		return -1;
	rest += 6;
	{
		const char *end = strchr(rest, '/');

		if (!end || decimal(rest, (size_t)(end - rest)) < 0 || strcmp(end, "/fd"))
			return -1;
	}
	return (int)n;
}

/* This process's id as /proc shows it (it differs from getpid() when
 * /proc belongs to another PID namespace). */
static long proc_self(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	long v;

	if (n > 0) {
		v = decimal(buf, (size_t)n);
		if (v > 0)
			return v;
	}
	return (long)getpid();
}

/* Is the directory of st sticky and writable by others? */
static int dir_is_shared(const struct stat *st)
{
	return (st->st_mode & S_ISVTX) && (st->st_mode & (S_IWGRP | S_IWOTH));
}

/* Follow the symlinks that path's last component leads through, one at a
 * time (at most 40, as the kernel), looking for a name of one of our
 * descriptors (by its words, and by its directory resolved).  Returns the
 * descriptor or -1; the last name reached is left in end, and a symlink
 * of another user's in a shared sticky directory sets *foreign. */
static int walk_links(const char *path, char *end, size_t size, int *foreign)
{
	char cur[PATH_MAX], dir[PATH_MAX], canon[PATH_MAX], link[PATH_MAX];
	long self = proc_self();
	struct stat st, dst;
	int hop, fd = -1;
	ssize_t n;

	if (strlen(path) >= sizeof(cur))
		return -1;
	strcpy(cur, path);
	for (hop = 0; hop < 40; hop++) {
		if (dir_of(cur, dir, sizeof(dir)))
			break;
		fd = out_fd_named(dir, base_of(cur), self);
		if (fd < 0 && realpath(dir, canon))
			fd = out_fd_named(canon, base_of(cur), self);
		if (fd >= 0 || lstat(cur, &st) || !S_ISLNK(st.st_mode))
			break;
		if (!stat(dir, &dst) && dir_is_shared(&dst) && st.st_uid != geteuid() &&
		    st.st_uid != dst.st_uid)
			*foreign = 1;
		n = readlink(cur, link, sizeof(link) - 1);
		if (n < 0)
			break;
		link[n] = '\0';
		if (link[0] == '/') {
			strcpy(cur, link);
		} else {
			int m = snprintf(cur, sizeof(cur), "%s/%s", dir, link);

			if (m < 0 || (size_t)m >= sizeof(cur))
				break;
		}
	}
	snprintf(end, size, "%s", cur);
	return fd;
}

int out_dest_init(struct out_dest *d, const char *path)
{
	struct out_facts f = { .fd = -1, .euid = geteuid() };
	char end[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int err, fl;

	*d = (struct out_dest){ .path = path, .named_fd = -1, .fd = -1 };
	snprintf(end, sizeof(end), "%s", path);
	if (!strcmp(path, "-"))
		f.fd = STDOUT_FILENO;
	else if (path[0] && path[strlen(path) - 1] != '/')
		f.fd = walk_links(path, end, sizeof(end), &f.link_foreign);
	if (f.fd < 0 && path[0] && !stat(path, &st)) {
		f.exists = 1;
		f.mode = st.st_mode;
		f.uid = st.st_uid;
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		if (!dir_of(end, dir, sizeof(dir)) && !stat(dir, &st)) {
			f.dir_shared = dir_is_shared(&st);
			f.dir_uid = st.st_uid;
		}
	}
	d->kind = out_kind_of(&f);
	switch (d->kind) {
	case OUT_FILE:
		err = out_check_path(path);
		if (err)
			return err;
		if (dir_of(path, dir, sizeof(dir)) || stat(dir, &st))
			return -ENOENT; /* just checked: it changed under us */
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		d->name = base_of(path);
		if (!lstat(path, &st) && S_ISREG(st.st_mode)) {
			d->has_cur = 1;
			d->cur_dev = st.st_dev;
			d->cur_ino = st.st_ino;
		}
		return 0;
	case OUT_STREAM:
		d->named_fd = f.fd;
		fl = fcntl(f.fd, F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || fstat(f.fd, &st))
			return -EBADF;
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		d->fd = fcntl(f.fd, F_DUPFD_CLOEXEC, 3);
		return d->fd < 0 ? -errno : 0;
	case OUT_DEVICE:
	case OUT_FIFO:
		/* Opened at the end: opening a FIFO waits for its reader, and
		 * opening a device may do something. */
		return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) ? -errno : 0;
	default:
		return 0;
	}
}

int out_dest_same(const struct out_dest *a, const struct out_dest *b)
{
	const struct out_dest *file, *other;

	if (a->name && b->name)
		return a->dev == b->dev && a->ino == b->ino && !strcmp(a->name, b->name);
	if (!a->name && !b->name)
		return a->dev == b->dev && a->ino == b->ino;
	/* A file written in place and then replaced by the other's rename. */
	file = a->name ? a : b;
	other = a->name ? b : a;
	return file->has_cur && file->cur_dev == other->dev && file->cur_ino == other->ino;
}

int out_dest_open(struct out_dest *d, int timeout_ms, const volatile sig_atomic_t *cancel)
{
	const struct timespec pause = { 0, 20 * 1000 * 1000 };
	int waited_ms = 0, fd, fl;
	struct stat st;

	if ((d->kind != OUT_DEVICE && d->kind != OUT_FIFO) || d->fd >= 0)
		return 0;
	/* O_NONBLOCK: a FIFO without a reader fails with ENXIO rather than
	 * blocking, so the wait can be bounded and cancelled; a terminal
	 * does not wait for its carrier.  No O_CREAT, no O_TRUNC. */
	for (;;) {
		fd = open(d->path, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0)
			break;
		if (errno != ENXIO || d->kind != OUT_FIFO)
			return -errno;
		if (cancel && *cancel)
			return -EINTR;
		if (timeout_ms >= 0 && waited_ms >= timeout_ms)
			return -EAGAIN;
		nanosleep(&pause, NULL);
		waited_ms += 20;
	}
	/* The path may have been replaced since start-up (by a regular file:
	 * it is not truncated, and not written). */
	if (fstat(fd, &st) || st.st_dev != d->dev || st.st_ino != d->ino ||
	    (S_ISFIFO(st.st_mode) != (d->kind == OUT_FIFO)) ||
	    (S_ISCHR(st.st_mode) != (d->kind == OUT_DEVICE))) {
		close(fd);
		return -ESTALE;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	d->fd = fd;
	return 0;
}

int out_dest_write(struct out_dest *d, const struct out_format *fmt,
		   const struct profile *p, const struct out_opts *o)
{
	FILE *f;
	int err;

	if (d->kind == OUT_FILE)
		return out_write_file(d->path, fmt, p, o);
	if (d->fd < 0)
		return -EBADF;
	f = fdopen(d->fd, "w");
	if (!f)
		return -errno;
	d->fd = -1; /* the stream owns it now */
	err = write_stream(f, fmt, p, o);
	/* A reader that closed the pipe early: say so, not "I/O error". */
	if (err && errno == EPIPE)
		err = -EPIPE;
	if (fclose(f) && !err)
		err = errno == EPIPE ? -EPIPE : -errno;
	return err;
}

void out_dest_release(struct out_dest *d)
{
	if (d && d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
}
