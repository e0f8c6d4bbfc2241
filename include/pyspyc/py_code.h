/* py_code.h - raw stacks -> interned frames, through a code-object cache.
 *
 * The symbolizer owns a per-process cache from code-object address to what
 * the profile needs of it: name and file (as string ids in the stacktab), its
 * kind, and its decoded line table.  Each sample checks every code object it
 * uses through a small window of the object (type, name, file and
 * line-table pointers, first line, size), read in the same call as the sample
 * in the steady state (py_sym_prefetch) and else in one batched read: an
 * address freed and
 * reused by another code object no longer matches and is resolved afresh, so
 * a stale entry is never reported under the wrong name.
 *
 * Not thread-safe: one symbolizer per sampler thread.  The stacktab it feeds
 * is shared and lock-free.
 */
#ifndef PYSPYC_PY_CODE_H
#define PYSPYC_PY_CODE_H

#include <stdint.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/raw.h"
#include "pyspyc/stacktab.h"

struct sym_opts {
	int full_filenames;   /* keep co_filename whole */
	int lineno;           /* 0: no line numbers (--nolineno) */
	int function;         /* 1: first line of the function (--function) */
};

struct sym_stats {
	uint64_t stacks;       /* thread stacks added */
	uint64_t dropped;      /* stacks lost to a full table */
	uint64_t torn;         /* stacks dropped as inconsistent */
	/* ...of which one ran a code object freed or replaced by the time it
	 * was checked (named sooner, it would have been) */
	uint64_t code_gone;
	uint64_t code_misses;  /* code objects resolved */
	uint64_t errors;       /* code objects that could not be resolved */
	/* code objects met first in a window read too long after their
	 * sample (py_code.c, CODE_SPAN_NS): its stacks that ran them are torn */
	uint64_t late_codes;
};

struct py_symbolizer;

int py_sym_new(struct py_symbolizer **out, const struct py_target *t,
	       struct rmem *mem, struct stacktab *tab, const struct sym_opts *o);
void py_sym_free(struct py_symbolizer *s);

/* The reads to make together with the next sample (windows onto the code
 * objects of the last one), for the backend to make with it (struct
 * backend_reads).  The iovecs stay valid until the next py_sym_add. */
void py_sym_prefetch(struct py_symbolizer *s, const struct iovec **l,
		     const struct iovec **r, uint32_t *n);

/* What the consumer of a raw sample decided about one of its threads (the
 * sampler's filter: sampler.c), in an array it owns, parallel to
 * raw_sample.threads.  The raw sample itself stays as the backend made it. */
struct thread_pick {
	uint32_t skip;      /* nonzero: leave this thread out */
	int32_t tid;        /* its OS id as we know it (thread_map_tids) */
	/* Frame ids (stacktab) put at the root of the thread's stack,
	 * outermost first, e.g. "process 12 ..." then "thread 34 ...". */
	uint32_t nroot;
	uint32_t root[2];
};

/* Validate, symbolize and count every thread stack of one raw sample taken
 * at t_ns (logged to the stacktab's timeline, when it keeps one): those
 * pick[] does not skip, under its root frames (pick NULL: every thread,
 * without roots).  prefetched_ok says the py_sym_prefetch reads were made
 * with this sample. */
void py_sym_add(struct py_symbolizer *s, const struct raw_sample *rs,
		const struct thread_pick *pick, int prefetched_ok, int64_t t_ns,
		struct sym_stats *st);

/* Count the stacks of the last py_sym_add that wait for the check of a
 * code object (py_code.c: check_codes puts off the read of a cached code
 * object with no window read with the sample, to the next sample's read):
 * check those now, in one read, and count them, or drop them as torn (1)
 * when one is no longer the code object cached.  0 when counted or none
 * waited.  Call it before the last sample's counted stacks are used
 * (py_sym_counted) without another py_sym_add, and at the end. */
int py_sym_flush(struct py_symbolizer *s, int64_t now, struct sym_stats *st);

/* For py_walker_set_recheck (ctx: the symbolizer): an enum recheck for th's
 * frames, by the code objects cached (see py_code.c). */
int py_sym_stale_return(void *ctx, const struct raw_sample *rs, const struct raw_thread *th);

/* The stack ids the last py_sym_add counted, one per thread stack counted,
 * in *ids[0..*n) (valid until the next py_sym_add): what a process that
 * has not run since counts again (sampler.h, -i). */
void py_sym_counted(const struct py_symbolizer *s, const uint32_t **ids, uint32_t *n);

/* One frame described for display (pyspyc dump). */
struct sym_frame {
	const char *name;   /* qualified name; owned by the stacktab */
	const char *file;   /* as the options say (short or full) */
	int line;           /* 0 when unknown or not shown */
	uint64_t code;      /* code object address */
	uint64_t addr;      /* the frame's remote address (for its locals) */
};

/* Describe thread th of rs (a sample the backend just returned) into
 * out[0..n), innermost first, without counting anything.  Returns the number
 * of frames written, or -EBADF when a code object did not validate (the
 * stack changed under us: take another sample), or -ENOSPC. */
int py_sym_describe(struct py_symbolizer *s, const struct raw_sample *rs,
		    const struct raw_thread *th, struct sym_frame *out, uint32_t n);

/* Bytes of the longest name or file name the symbolizer hands out, with
 * the NUL (a name of 1024 code points of 4 bytes each, then "...").  A
 * buffer of this size holds any of them, or any shortened file name,
 * whole. */
#define PY_NAME_MAX (1024 * 4 + 16)

/* Shorten a file name the way the profile shows it: relative to the nearest
 * ancestor directory that has no __init__.py, looked up confined to root
 * (e.g. "/proc/PID/root": symlinks resolve inside it; "" for the local file
 * system; see path_open_in_root).  Names that are not
 * absolute paths are kept.  Writes a NUL-terminated result of at most
 * size-1 bytes into out; a result cut to fit ends at a UTF-8 character
 * boundary. */
void py_shorten_filename(const char *root, const char *file, char *out,
			 size_t size);

/* The kind of code a file name belongs to (enum frame_kind). */
int py_file_kind(const char *file, const char *stdlib_prefix);

#endif
