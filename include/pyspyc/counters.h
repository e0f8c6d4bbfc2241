/* counters.h - the sampling counters, defined once.
 *
 * One list, X(name, merge, description), from which come the fields of
 * struct sampler_stats (one process, sampler.h) and of struct
 * session_stats (all of them, session.h), the relaxed-atomic copy that
 * reads a sampler's while it runs, and the sum session.c makes of many.
 * A counter is added here, once, and then published by the sampler and
 * printed by the command that wants it.
 *
 * merge says how the counters of several processes make one:
 *   COUNTER_SUM   added up, finished processes included;
 *   COUNTER_MAX   the largest;
 *   COUNTER_LIVE  added up over the processes sampled now only (a gauge
 *                 of the latest sample);
 *   COUNTER_OWN   one process's own (its age, how it ended): not merged.
 */
#ifndef PYSPYC_COUNTERS_H
#define PYSPYC_COUNTERS_H

#include <stdint.h>

#define SAMPLER_COUNTERS(X) \
	X(ticks, COUNTER_SUM, "deadlines met") \
	X(samples, COUNTER_SUM, "ticks whose thread list was read (asleep ones included)") \
	X(stacks, COUNTER_SUM, "thread stacks counted") \
	X(errors, COUNTER_SUM, "ticks or code objects that failed to read") \
	X(torn, COUNTER_SUM, "stacks dropped as inconsistent") \
	X(code_gone, COUNTER_SUM, "...of which one ran a code object freed or " \
	  "replaced before it was checked") \
	X(rereads, COUNTER_SUM, "torn threads read again at once") \
	X(returned, COUNTER_SUM, "stacks read as their innermost frame returned: " \
	  "that frame left out") \
	X(late, COUNTER_SUM, "ticks skipped because the sampler fell behind") \
	X(dropped, COUNTER_SUM, "stacks lost to a full table") \
	X(idle, COUNTER_SUM, "thread stacks left out as idle") \
	X(code_misses, COUNTER_SUM, "code objects resolved") \
	X(reads, COUNTER_SUM, "process_vm_readv calls") \
	X(pages, COUNTER_SUM, "...the pages their remote ranges span") \
	X(bytes, COUNTER_SUM, "...the bytes they asked for") \
	X(fast, COUNTER_SUM, "samples read in a single call") \
	X(gil_known, COUNTER_SUM, "samples whose GIL holder could be read") \
	X(gil_held, COUNTER_SUM, "...of which a Python thread held it") \
	X(pauses, COUNTER_SUM, "--blocking: samples taken with the threads paused") \
	X(pause_ns, COUNTER_SUM, "...total time the threads were paused") \
	X(pause_ns_max, COUNTER_MAX, "...longest pause") \
	X(threads, COUNTER_LIVE, "Python threads in the latest sample") \
	X(active, COUNTER_LIVE, "...of which on a CPU (eBPF: sampled in the last 0.25 s)") \
	X(elapsed_ns, COUNTER_OWN, "since the first tick") \
	X(target_gone, COUNTER_OWN, "1 when the run ended with the target") \
	X(target_exec, COUNTER_OWN, "1 when it ended because the target exec'd " \
	  "another program (Python or not)") \
	X(target_reinit, COUNTER_OWN, "1 when it ended because the target (an " \
	  "embedding host) finalized its interpreter and started a new one") \
	X(interps_capped, COUNTER_SUM, "samples that saw more interpreters than " \
	  "PY_MAX_INTERPS: the rest left out") \
	X(threads_left_out, COUNTER_SUM, "most threads of one sample left out by " \
	  "--max-threads (summed over processes)") \
	X(asleep, COUNTER_SUM, "samples at which the process had not run since " \
	  "the last one: nothing read (sampler.h); also counted in samples") \
	X(bpf_unknown, COUNTER_SUM, "eBPF samples of a thread not yet known (started " \
	  "since the thread list was read): no stack, the list read again") \
	X(bpf_dropped, COUNTER_SUM, "eBPF samples dropped: more were waiting for one " \
	  "process than it may queue")

/* One uint64_t field per counter, in a struct. */
#define COUNTER_FIELD(name, merge, desc) uint64_t name;

/* Fold counter x into *sum, by merge; live: x is of a process sampled now. */
#define COUNTER_SUM_FOLD(sum, x, live) ((sum) += (x))
#define COUNTER_MAX_FOLD(sum, x, live) ((sum) = (x) > (sum) ? (x) : (sum))
#define COUNTER_LIVE_FOLD(sum, x, live) ((sum) += (live) ? (x) : 0)
#define COUNTER_OWN_FOLD(sum, x, live) ((void)0)

#endif
