/* output.h - output formats and the atomic file writer.
 *
 * Every format is one writer function over a finished struct profile.
 * Files are written to a temporary name in the destination directory and
 * renamed into place: a crash never leaves half a file, and a symlink at the
 * destination is replaced, never written through.  Paths that are not files
 * (pyspyc's own descriptors, devices, FIFOs) are told apart first: see
 * struct out_dest.
 */
#ifndef PYSPYC_OUTPUT_H
#define PYSPYC_OUTPUT_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include "pyspyc/profile.h"

#define OUT_LABELS_MAX 32

struct out_opts {
	int inverted;   /* icicle graph instead of flame graph (SVG) */
	const char *title; /* NULL: a title made from the profile */
	/* String labels every sample carries (pprof): labels[2i] = labels[2i
	 * + 1] for i < nlabels (at most OUT_LABELS_MAX): the agent's
	 * service_name, hostname and a service's own labels. */
	const char *const *labels;
	size_t nlabels;
};

/* What a format needs from the run (struct out_format.needs). */
enum {
	/* Thread markers (FRAME_THREAD) on every stack, whatever -t says:
	 * the writer carries threads itself (a profile or label per thread).
	 * Formats without it get the thread markers only with -t. */
	OUT_PER_THREAD = 1,
	/* The timeline (profile.samples). */
	OUT_TIMELINE = 2,
};

/* A writer streams the whole document to f.  Returns 0 or -errno (the
 * writer checks ferror(f) itself before returning). */
typedef int (*out_write_fn)(const struct profile *p, const struct out_opts *o,
			    FILE *f);

struct out_format {
	const char *name;        /* "flamegraph", "raw", ... */
	const char *const *exts; /* NULL-terminated list of file name endings */
	/* NULL, or a NULL-terminated list of file name beginnings (of the
	 * name's last component) that name the format too */
	const char *const *prefixes;
	out_write_fn write;
	const char *help;
	unsigned needs;          /* OUT_PER_THREAD | OUT_TIMELINE */
};

/* The format called name (also accepts aliases such as "collapsed"), or
 * NULL. */
const struct out_format *out_format_by_name(const char *name);

/* The format whose extension ends path, or NULL when none does ("-" is
 * raw).  A bare .json names no format: speedscope and chrometrace are both
 * JSON. */
const struct out_format *out_format_by_path(const char *path);

/* All formats, NULL-terminated. */
const struct out_format *const *out_formats(void);

/* Writers. */
int out_collapsed_write(const struct profile *p, const struct out_opts *o,
			FILE *f);
int out_svg_write(const struct profile *p, const struct out_opts *o, FILE *f);
/* Needs OUT_PER_THREAD | OUT_TIMELINE; without a (complete) timeline it
 * writes the aggregated stacks. */
int out_speedscope_write(const struct profile *p, const struct out_opts *o,
			 FILE *f);
/* Needs OUT_PER_THREAD | OUT_TIMELINE; without a timeline, a trace with no
 * events. */
int out_chrometrace_write(const struct profile *p, const struct out_opts *o,
			  FILE *f);
/* pprof's profile.proto, gzip-compressed; threads and processes as sample
 * labels (pid, tid, thread_name).  See out_pprof.c for the mapping. */
int out_pprof_write(const struct profile *p, const struct out_opts *o, FILE *f);
/* The Callgrind format: functions by (name, file), self cost per line,
 * calls with their inclusive samples.  See out_callgrind.c. */
int out_callgrind_write(const struct profile *p, const struct out_opts *o, FILE *f);
int out_pstats_write(const struct profile *p, const struct out_opts *o, FILE *f);

/* Write one output atomically: path "-" means stdout.  Returns 0 or -errno;
 * on failure nothing is left at path (an existing file there is untouched). */
int out_write_file(const char *path, const struct out_format *fmt,
		   const struct profile *p, const struct out_opts *o);

/* Check, before sampling starts, that path can be written as a file
 * (OUT_FILE): its directory exists and a file can be made in it, and path
 * itself is not a directory.  Returns 0 or -errno (-EISDIR, -ENOENT,
 * -EACCES, ...).  out_dest_init tells the other kinds of path apart. */
int out_check_path(const char *path);

/* ---- names with the time in them -------------------------------------- */

/* The length of "20261204T003000Z": what %t becomes. */
#define OUT_TIME_LEN 16

/* Does an output name carry %t (not %%t, a literal "%t")? (pure) */
int out_name_has_time(const char *tmpl);

/* Write tmpl into buf with %t replaced by the time wall_ns (Unix time in
 * ns) in UTC as YYYYMMDDTHHMMSSZ, which sorts as the times do and needs
 * no quoting in a file name, and %% by %; any other % stays as it is.
 * Returns 0, or -ENAMETOOLONG when the name does not fit in size bytes
 * (pure). */
int out_name_expand(const char *tmpl, int64_t wall_ns, char *buf, size_t size);

/* ---- where an output goes -------------------------------------------- */

/* What an output path is, as looked at before sampling starts. */
enum out_kind {
	/* Absent, a regular file, or a symlink to one or to nothing: written
	 * to a temporary file renamed into place (a symlink is replaced). */
	OUT_FILE,
	/* "-" or a name of one of pyspyc's own open descriptors (/dev/stdout,
	 * /dev/stderr, /dev/fd/N, /proc/self/fd/N, a symlink leading to one):
	 * written through that descriptor; nothing is replaced. */
	OUT_STREAM,
	/* A character device (/dev/null, a terminal): opened in place, without
	 * creating or truncating, and written. */
	OUT_DEVICE,
	/* A FIFO: opened in place once it has a reader, and written. */
	OUT_FIFO,
	/* Refused: nothing can be written there whole, or it is unsafe. */
	OUT_DIR,
	OUT_BLOCK,
	OUT_SOCKET,
	/* A FIFO or device in a sticky directory that others may write (/tmp),
	 * owned by neither pyspyc's user nor the directory's owner, or reached
	 * through such a symlink: the kernel's protected_fifos and
	 * protected_symlinks reasoning (someone else may have planted it). */
	OUT_FOREIGN,
	OUT_OTHER,
};

/* What out_dest_init found out about a path; the input of out_kind_of. */
struct out_facts {
	int fd;             /* the descriptor of ours the path names, or -1 */
	int exists;         /* stat(), links followed, found something */
	mode_t mode;        /* its type and mode */
	uid_t uid;          /* its owner */
	int dir_shared;     /* its directory is sticky and group- or world-writable */
	uid_t dir_uid;      /* that directory's owner */
	int link_foreign;   /* a symlink on the way is in such a directory and is
			     * owned by neither euid nor that directory's owner */
	uid_t euid;
};

/* The kind of output the facts describe (pure). */
enum out_kind out_kind_of(const struct out_facts *f);

/* Why kind is refused ("is a directory", ...), or NULL when it is written. */
const char *out_kind_refusal(enum out_kind kind);

/* The descriptor that the file name base in directory dir stands for, when
 * dir is a descriptor directory of this process: /dev/fd, /proc/self/fd,
 * /proc/thread-self/fd, /proc/SELF/fd or /proc/SELF/task/N/fd, with SELF
 * the process id self (as /proc shows it).  -1 when it is not one, or base
 * is not a plain decimal number (pure). */
int out_fd_named(const char *dir, const char *base, long self);

/* An output's destination, from start-up to the end of the run. */
struct out_dest {
	const char *path;   /* as given (not owned) */
	enum out_kind kind;
	/* OUT_STREAM: the descriptor named (1 for "-"). */
	int named_fd;
	/* OUT_STREAM: our close-on-exec duplicate of named_fd, taken at
	 * start-up (the number may name another file later in the run);
	 * OUT_DEVICE, OUT_FIFO: the open file once out_dest_open succeeded.
	 * -1 otherwise; out_dest_write consumes it. */
	int fd;
	/* Where the bytes land, to tell two outputs that are one file:
	 * OUT_FILE: the directory (dev, ino) and the name in it (name), and
	 * the regular file there now, if any (has_cur, cur_dev, cur_ino);
	 * the other kinds: the object written in place. */
	dev_t dev;
	ino_t ino;
	const char *name;   /* OUT_FILE: points into path */
	int has_cur;
	dev_t cur_dev;
	ino_t cur_ino;
};

/* Look at path (see enum out_kind) and fill d.  0 or -errno: a file that
 * cannot be made in the directory, a descriptor that is not open for
 * writing (-EBADF), a device or FIFO pyspyc may not write (-EACCES).  A
 * refused kind is not an error here: check out_kind_refusal(d->kind).
 * Release d with out_dest_release either way. */
int out_dest_init(struct out_dest *d, const char *path);

/* Do a and b name one file?  Compared by device and inode, not by string
 * (a directory and a name in it for OUT_FILE) (pure). */
int out_dest_same(const struct out_dest *a, const struct out_dest *b);

/* Open a device or FIFO in place (nothing to do for other kinds).  A FIFO
 * without a reader is waited for, up to timeout_ms (-1: no limit), while
 * *cancel (may be NULL) stays 0.  0, -EAGAIN when the time ran out, -EINTR
 * when cancelled, -ESTALE when the path no longer names what it did at
 * out_dest_init, or another -errno. */
int out_dest_open(struct out_dest *d, int timeout_ms, const volatile sig_atomic_t *cancel);

/* Write the profile to d: OUT_FILE as out_write_file, the others through
 * their descriptor (opened by out_dest_open), which is then closed.  0 or
 * -errno; -EPIPE when the reader of a pipe, FIFO or socket closed it. */
int out_dest_write(struct out_dest *d, const struct out_format *fmt,
		   const struct profile *p, const struct out_opts *o);

/* Close what d holds.  Accepts NULL. */
void out_dest_release(struct out_dest *d);

#endif
