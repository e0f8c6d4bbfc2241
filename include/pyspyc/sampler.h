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
	double duration_s;          /* 0: until stopped or the target exits */
	struct walk_opts walk;
	struct sym_opts sym;
};

struct sampler_stats {
	uint64_t ticks;             /* deadlines met */
	uint64_t samples;           /* ticks whose thread list was read */
	uint64_t stacks;            /* thread stacks counted */
	uint64_t errors;            /* ticks that failed to read the target */
	uint64_t torn;              /* stacks dropped as inconsistent */
	uint64_t late;              /* ticks skipped because we fell behind */
	uint64_t dropped;           /* stacks lost to a full table */
	uint64_t code_misses;
	uint64_t reads;             /* process_vm_readv calls */
	uint64_t fast;              /* samples read in a single call */
	double elapsed_s;
	int target_gone;            /* 1 when the run ended with the target */
};

struct sampler;

int sampler_new(struct sampler **out, const struct py_target *t,
		struct stacktab *tab, const struct sampler_opts *o);
void sampler_free(struct sampler *s);

/* Sample until *stop becomes non-zero, the duration elapses or the target
 * exits.  Returns 0 (the reason is in the stats) or -errno for a failure
 * that ended the run early. */
int sampler_run(struct sampler *s, volatile sig_atomic_t *stop,
		struct sampler_stats *st);

#endif
