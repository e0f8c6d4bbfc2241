/* input.h - profiles read back in: the readers `pyspyc convert` merges.
 *
 * A reader parses one file's bytes into a stack table (stacktab.h), adding
 * its stacks to whatever the table already holds: several inputs read into
 * one table are merged, counts added.  Input is hostile: every reader is
 * bounded (IN_MAX_DEPTH frames a stack, IN_MAX_COUNT samples in all) and
 * says what is wrong with a malformed file, where (a line, or a byte
 * offset), in one line.
 */
#ifndef PYSPYC_INPUT_H
#define PYSPYC_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "pyspyc/stacktab.h"

/* Frames of one stack, and samples of all inputs together (a sum past it
 * could wrap a writer's arithmetic). */
#define IN_MAX_DEPTH 4096
#define IN_MAX_COUNT (UINT64_C(1) << 53)

/* Where a file was found malformed, and why. */
struct in_error {
	uint64_t line;     /* 1-based line (text formats), 0 when not known */
	uint64_t offset;   /* byte offset of the problem */
	int inflated;      /* ...in the file's data inflated (gzip) */
	int whole;         /* neither: what the file says is wrong, not where */
	char what[160];
};

/* What the inputs read so far add up to. */
struct in_totals {
	uint64_t samples;  /* counts added */
	uint64_t stacks;   /* lines (collapsed) or samples (others) read */
	double rate;       /* Hz the inputs that carry one were sampled at; 0: none did */
};

/* Collapsed stacks: "frame;frame;... count" a line, root first, as ours
 * and flamegraph.pl's stackcollapse scripts and inferno write them.  A
 * frame "name (file:line)" or "name (file)" is a Python frame, a bare one
 * is a name alone (flamegraph.pl's dialect); a root "process PID:\"cmd\""
 * and a "thread TID \"name\"" after it are pyspyc's markers.  Blank lines
 * and CRLF endings are taken.  0, -EINVAL (e says where and why) or
 * -ENOSPC (the table is full: stacktab_full says which bound). */
int in_collapsed_read(struct stacktab *t, const char *data, size_t len,
		      struct in_totals *tot, struct in_error *e);

/* pprof's profile.proto, gzip-compressed or plain: ours (pyspyc's labels
 * become its markers again) and Go's.  Each sample is a stack; its count
 * the "samples" value, or a time in nanoseconds over the period.  An input
 * sampled at another rate than tot->rate (the inputs' before it) is
 * refused: their samples are not the same time.  0, -EINVAL (e says
 * where: a byte offset, in the inflated data when e->inflated) or
 * -ENOSPC. */
int in_pprof_read(struct stacktab *t, const char *data, size_t len,
		  struct in_totals *tot, struct in_error *e);

/* 1 when data looks like a pprof profile (gzip, or protobuf bytes), 0 when
 * it is text. */
int in_is_pprof(const char *data, size_t len);

/* Speedscope's JSON (file-format-schema.json): sampled profiles (weights
 * in a unit of time, a sample being 1/rate seconds, or "none": counts)
 * and evented ones (the time each stack was open, over 1/rate).  A profile
 * named by pyspyc's markers ("thread TID \"name\"", "process PID:\"cmd\"
 * thread ...") has its stacks start at those markers again.  0, -EINVAL (e
 * says the line and column for JSON, or which profile and sample) or
 * -ENOSPC. */
int in_speedscope_read(struct stacktab *t, const char *data, size_t len, double rate,
		       struct in_totals *tot, struct in_error *e);

/* 1 when data is JSON text (starts with '{' after white space). */
int in_is_json(const char *data, size_t len);

/* Intern the frame name[0..nlen) of file[0..flen) at line (0: none), its
 * kind told by the file's name as the symbolizer tells it (a name longer
 * than PATH_MAX, or holding a NUL, is no file's: the application's).  0 or
 * -ENOSPC. */
int in_frame(struct stacktab *t, const char *name, size_t nlen, const char *file, size_t flen,
	     int32_t line, uint32_t *id);

/* Intern f[0..n) as a marker frame when it is one of pyspyc's (a process
 * marker "process PID:\"cmd\"" at the root, at == 0; a thread marker
 * "thread TID \"name\"" at the root or after the process's): 1 and *id,
 * 0 when it is none, or -ENOSPC. */
int in_marker(struct stacktab *t, const char *f, size_t n, uint32_t at, int after_process,
	      uint32_t *id);

/* The whole of path ("-": standard input) into a new buffer (*data, a
 * NUL after its *len bytes), at most max bytes.  0, -EFBIG past max, or
 * another -errno. */
int in_read_file(const char *path, size_t max, char **data, size_t *len);

#endif
