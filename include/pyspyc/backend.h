/* backend.h - where raw stacks come from: one ops table per backend.
 *
 * A backend's only job is to turn one target process into raw samples
 * (raw.h): per thread, its frames as (code address, instruction, owner),
 * and flags (truncated, torn, GIL).  Everything after it (the sampler's
 * filter, the symbolizer, the stack table, the writers, the commands)
 * takes a struct raw_sample and never asks which backend made it.  A
 * backend is one file and one struct backend_ops (in the manner of
 * libperf's ops structs); the remote-memory walker (backend_mem.c, over
 * py_walk.h) is the first.
 *
 * The symbolizer validates every code address against the target before
 * trusting it, so a backend need not; it reads the code objects through
 * backend_mem(), the backend's handle on the target's memory, which every
 * backend must give (the symbolizer, thread names and dump's objects read
 * through it).  A stack the backend could not read whole it flags
 * RAW_TORN: the sampler counts those and the symbolizer leaves them out.
 *
 * Not thread-safe: one backend per sampler, used from one thread at a time.
 */
#ifndef PYSPYC_BACKEND_H
#define PYSPYC_BACKEND_H

#include <stdint.h>
#include <sys/uio.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/raw.h"

struct bpf_hub;

struct backend_opts {
	uint32_t max_depth;    /* frames per thread before RAW_TRUNCATED */
	/* Threads read per process, 1..PY_WALK_MAX_THREADS (--max-threads);
	 * the rest are counted in raw_sample.threads_left_out. */
	uint32_t max_threads;
	/* The eBPF backend's hub (backend_bpf.h), which it needs; NULL for
	 * the others. */
	struct bpf_hub *hub;
	/* The consumer names threads (-t): a backend that learns of a thread
	 * before it knows its pthread id reads it then. */
	int thread_ids;
};

/* A backend's counters, since backend_open, as X(name, description): one
 * list for the struct and for whoever copies them out (sampler.c).  Reads
 * of the target are counted by its struct rmem (backend_mem), which the
 * symbolizer reads through too. */
#define BACKEND_COUNTERS(X) \
	X(fast, "samples read in a single call") \
	X(rereads, "torn threads read again at once") \
	X(returned, "stacks read as their innermost frame returned: that frame left out") \
	X(interps_capped, "samples that saw more than PY_MAX_INTERPS interpreters") \
	X(bpf_unknown, "eBPF records of a thread not yet known: no stack") \
	X(bpf_dropped, "eBPF records dropped: more were waiting than a process may queue")

struct backend_stats {
#define BACKEND_FIELD(name, desc) uint64_t name;
	BACKEND_COUNTERS(BACKEND_FIELD)
#undef BACKEND_FIELD
};

/* Reads a consumer wants made at the same instant as the sample, in the
 * same call when the backend can (the symbolizer's windows onto the code
 * objects it will check, py_sym_prefetch): n pairs l[i] <- r[i], n at most
 * RMEM_MAX_IOV / 2.  A backend that cannot make them sets done to 0. */
struct backend_reads {
	const struct iovec *l, *r;
	uint32_t n;
	int done;              /* out: 1 when they were made with the sample */
};

/* Every backend embeds this first; backend_open's caller sees no more. */
struct backend {
	const struct backend_ops *ops;
};

struct backend_ops {
	const char *name;
	/* Attach to target t (found by the caller); *out on success (its
	 * ops set by backend_open).  0 or -errno. */
	int (*open)(struct backend **out, const struct py_target *t,
		    const struct backend_opts *o);
	/* Read every thread's stack now (x may be NULL).  *out is the
	 * backend's and valid until the next sample or close.  0; -ESRCH
	 * when the target is gone; -ESTALE when the interpreter sampled is
	 * no longer the runtime's (finalized); another -errno for a sample
	 * that could not be read at all. */
	int (*sample)(struct backend *b, struct backend_reads *x, struct raw_sample **out);
	/* Does a thread hold the GIL now, without a sample?  1, 0, or
	 * -errno when the backend cannot tell (the sampler then samples). */
	int (*gil_held)(struct backend *b);
	/* The target's memory, for the symbolizer, thread names and dump's
	 * object reads. */
	struct rmem *(*mem)(struct backend *b);
	void (*stats)(const struct backend *b, struct backend_stats *st);
	/* The consumer's own test of a stack read whole (may be NULL in the
	 * ops: the backend has no use for it): fn says an enum recheck (the
	 * symbolizer knows where code objects return: py_sym_stale_return).
	 * A backend that can read a thread again at once does so for a torn
	 * one, as for any torn stack, instead of leaving it to be dropped
	 * later; one whose innermost frame had returned loses that frame. */
	void (*set_recheck)(struct backend *b, recheck_fn fn, void *ctx);
	/* The host's word on OS threads before they are read (may be NULL
	 * in the ops): host(ctx, tid, thread_id) says an enum host_thread
	 * (raw.h): a thread that exited is not read ahead, an idle one not at
	 * all (py_walker_set_host). */
	void (*set_host)(struct backend *b, host_word_fn host, void *ctx);
	/* Frees b; b may be NULL. */
	void (*close)(struct backend *b);
	/* A backend whose samples come when the kernel takes them (the eBPF
	 * backend), not when asked: sample hands them out one at a time, one
	 * thread each at its own time (raw_sample.at_ns), and -EAGAIN when
	 * none is left; gil_held and the reads x are not used.  Such a
	 * backend needs the OS thread id of every thread state: list_due
	 * says when (1: now), list walks the thread list (a raw sample of
	 * every thread, as the remote-memory backend reads it) and set_tids
	 * gives it the OS ids found for that sample's threads
	 * (thread_map_tids). */
	int push;
	int (*list_due)(struct backend *b, int64_t now);
	int (*list)(struct backend *b, struct raw_sample **out);
	void (*set_tids)(struct backend *b, const struct raw_sample *rs, const int32_t *tids,
			 int64_t now);
	/* 1 once the kernel saw the process exec (its samples stopped): it
	 * is to be found anew, whatever the new program is. */
	int (*execd)(struct backend *b);
};

/* The remote-memory walker (py_walk.h). */
extern const struct backend_ops backend_mem_ops;

/* ops NULL: the default backend (backend_mem_ops). */
int backend_open(struct backend **out, const struct backend_ops *ops,
		 const struct py_target *t, const struct backend_opts *o);

static inline int backend_sample(struct backend *b, struct backend_reads *x,
				 struct raw_sample **out)
{
	return b->ops->sample(b, x, out);
}

static inline int backend_gil_held(struct backend *b)
{
	return b->ops->gil_held(b);
}

static inline struct rmem *backend_mem(struct backend *b)
{
	return b->ops->mem(b);
}

static inline void backend_stats(const struct backend *b, struct backend_stats *st)
{
	b->ops->stats(b, st);
}

static inline void backend_set_recheck(struct backend *b, recheck_fn fn, void *ctx)
{
	if (b->ops->set_recheck)
		b->ops->set_recheck(b, fn, ctx);
}

static inline void backend_set_host(struct backend *b,
				    host_word_fn host, void *ctx)
{
	if (b->ops->set_host)
		b->ops->set_host(b, host, ctx);
}

void backend_close(struct backend *b);

#endif
