/* raw.h - raw stacks: what every backend produces and nothing else.
 *
 * A raw sample is one instant of one process: per thread, its frames
 * innermost first as (code object address, instruction, owner), and flags.
 * It says nothing about names, files or lines (the symbolizer's job,
 * py_code.h) and nothing about what its consumers decide (which threads
 * count, their root frames: the sampler keeps that in an array of its own,
 * parallel to threads[], struct thread_pick in py_code.h).  A backend fills
 * it and no consumer writes to it: an OS thread id the backend could not
 * tell (native_tid 0) is found by thread_map_tids (py_threads.h) into the
 * consumer's own array.
 */
#ifndef PYSPYC_RAW_H
#define PYSPYC_RAW_H

#include <stdint.h>

struct raw_frame {
	uint64_t code;   /* PyCodeObject address (unvalidated) */
	uint64_t instr;  /* instruction pointer / lasti as the version keeps it */
	uint32_t owner;  /* frame owner (generator, thread, ...) */
	uint32_t zero;   /* always 0, so frames compare with memcmp */
};

#define RAW_TRUNCATED 0x1 /* depth cap hit: root-side frames are missing */
#define RAW_TORN 0x2      /* the stack changed under the backend: drop it */
#define RAW_GIL 0x4       /* this thread held the GIL at the sample */
/* Not read (depth 0): the host said the thread was idle at the sample,
 * asleep without the GIL or stopped (enum host_thread).  It is a thread
 * all the same, left out as idle. */
#define RAW_IDLE 0x8

/* What the host knows of an OS thread at a sample, before any of its
 * memory is read (backend_set_host): what a backend may leave unread. */
enum host_thread {
	HOST_UNKNOWN = 0,   /* nothing: read it */
	HOST_EXITED,        /* it has exited: its memory is going or gone */
	HOST_ASLEEP,        /* idle, unless it holds the GIL (then read it) */
	HOST_STOPPED,       /* idle whatever it holds */
};

/* The host's word on a thread (an enum host_thread) by its OS id tid (0
 * when the backend has none) and the backend's thread_id (the remote
 * memory backend: the thread state's pthread_t). */
typedef int (*host_word_fn)(void *ctx, int64_t tid, uint64_t thread_id);

struct raw_thread {
	/* The backend's key for the thread, unique among the threads alive
	 * at one sample and stable over its life (the remote-memory backend:
	 * its PyThreadState address). */
	uint64_t tstate;
	uint64_t thread_id;   /* pthread id */
	int32_t native_tid;   /* OS thread id, 0 if unknown */
	uint32_t flags;       /* RAW_* */
	uint32_t first;       /* index of the innermost frame in sample.frames */
	uint32_t depth;
};

struct raw_sample {
	struct raw_thread *threads;
	uint32_t nthreads;
	struct raw_frame *frames;
	uint64_t *addrs;      /* each frame's remote address, parallel to frames
			       * (for dump's locals); NULL, or 0s, when a backend
			       * has none */
	uint32_t nframes;
	int gil_known;        /* the GIL holder could be read this sample */
	uint64_t gil_holder;  /* its thread (raw_thread.tstate), 0 when nobody
			       * held it */
	uint64_t list_gen;    /* changes whenever the thread list changed */
	/* mono_ns() when the backend began to read this sample (0: it cannot
	 * tell).  Every frame was read after it; the symbolizer bounds by it
	 * how late a code object first met may be read and still vouch for
	 * the frames that run it (py_code.c, CODE_SPAN_NS). */
	int64_t read_ns;
	/* Threads past backend_opts.max_threads, not read: the oldest ones
	 * (the list starts at the newest).  Counted when the list was last
	 * walked one thread at a time (it changed, or a sample was read
	 * slowly). */
	uint32_t threads_left_out;
	/* A push backend's sample (backend.h): when the kernel took it
	 * (CLOCK_MONOTONIC; 0: now), and each frame's code object
	 * fingerprint read with it (pb_fp, bpf/pyspyc_abi.h), parallel to
	 * frames, which the symbolizer checks its cache against instead of
	 * reading the object again.  NULL for a backend that has none. */
	int64_t at_ns;
	const uint32_t *fps;
};

/* A consumer's verdict on a stack read whole (backend_set_recheck). */
enum recheck {
	RECHECK_WHOLE = 0,  /* as read */
	RECHECK_TORN,       /* changed while read: read again, or dropped */
	/* Its innermost frame had returned before its caller's was read
	 * (the caller went on from its call): the callers are the stack as
	 * it was then, without that frame. */
	RECHECK_RETURNED,
};

/* The check: fn(ctx, sample, thread) says an enum recheck. */
typedef int (*recheck_fn)(void *ctx, const struct raw_sample *rs, const struct raw_thread *th);

#endif
