/* sampler.h - sample one target process at a fixed rate.
 *
 * The sampler ticks on absolute deadlines (CLOCK_MONOTONIC, TIMER_ABSTIME)
 * so the rate does not drift with the cost of each sample.  When a sample
 * overruns one or more ticks, the missed ticks are skipped and counted as
 * late rather than taken back to back.
 *
 * A sampler owns its walker and symbolizer; the stacktab it feeds is shared
 * (several samplers may run at once, each in its own thread).
 */
#ifndef PYSPYC_SAMPLER_H
#define PYSPYC_SAMPLER_H

#include <signal.h>
#include <stdint.h>

#include "pyspyc/py_code.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_walk.h"
#include "pyspyc/stacktab.h"

struct sampler_opts {
	double rate_hz;
	int64_t end_ns;             /* CLOCK_MONOTONIC end of the run, 0: none */
	int idle;                   /* count threads that are not on a CPU */
	int gil;                    /* count only the thread holding the GIL */
	int threads;                /* a root frame per thread */
	int blocking;               /* pause the Python threads per sample */
	int process_root;           /* a root frame for the process (-s) */
	struct walk_opts walk;
	struct sym_opts sym;
};

/* Counters of one sampler.  sampler_run publishes them as it goes (relaxed
 * atomic stores, one field at a time), so another thread may read them with
 * sampler_stats_read while it runs. */
struct sampler_stats {
	uint64_t ticks;             /* deadlines met */
	uint64_t samples;           /* ticks whose thread list was read */
	uint64_t stacks;            /* thread stacks counted */
	uint64_t errors;            /* ticks that failed to read the target */
	uint64_t torn;              /* stacks dropped as inconsistent */
	uint64_t rereads;           /* torn threads read again at once */
	uint64_t late;              /* ticks skipped because we fell behind */
	uint64_t dropped;           /* stacks lost to a full table */
	uint64_t idle;              /* thread stacks left out as idle */
	uint64_t code_misses;
	uint64_t reads;             /* process_vm_readv calls */
	uint64_t fast;              /* samples read in a single call */
	uint64_t gil_known;         /* samples whose GIL holder was read */
	uint64_t gil_held;          /* ...in which a Python thread held it */
	uint64_t pauses;            /* samples taken with the threads paused */
	uint64_t pause_ns;          /* total time paused */
	uint64_t pause_ns_max;      /* longest pause */
	uint64_t threads;           /* Python threads in the latest sample */
	uint64_t active;            /* ...of which on a CPU */
	uint64_t elapsed_ns;
	uint64_t target_gone;       /* 1 when the run ended with the target */
	uint64_t target_exec;       /* 1 when it ended because the target exec'd
				     * another program (Python or not) */
	uint64_t interps_capped;    /* samples that saw more interpreters than
				     * PY_MAX_INTERPS (the rest left out) */
	uint64_t target_reinit;     /* 1 when it ended because the target (an
				     * embedding host) finalized its interpreter
				     * and started a new one */
	uint64_t threads_left_out;  /* most threads of one sample left out
				     * by walk.max_threads (--max-threads) */
};

/* Copy src into dst field by field with relaxed atomic loads. */
void sampler_stats_read(const struct sampler_stats *src, struct sampler_stats *dst);

struct sampler;

int sampler_new(struct sampler **out, const struct py_target *t,
		struct stacktab *tab, const struct sampler_opts *o);
void sampler_free(struct sampler *s);

/* Sample until *stop becomes non-zero, end_ns passes, the target exits
 * (a pid taken over by another process is not mistaken for it), the target
 * exec's another program (target_exec: the caller may attach to it anew) or
 * starts a new interpreter in place of the one sampled (target_reinit:
 * likewise).
 * Must run on one thread from start to end (--blocking traces from it).
 * Returns 0 (the reason is in the stats) or -errno for a failure that ended
 * the run early. */
int sampler_run(struct sampler *s, volatile sig_atomic_t *stop,
		struct sampler_stats *st);

#endif
