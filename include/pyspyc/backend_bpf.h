/* backend_bpf.h - the eBPF backend: Python stacks walked in the kernel at
 * a cpu-clock interrupt (bpf/pyspyc.bpf.c), drained from a ring buffer.
 *
 * One hub per session holds what the host has once: a cpu-clock perf event
 * per online CPU at the rate, the program on each, its maps and the ring
 * buffer.  Each target process is a struct backend over the hub (opened
 * with backend_opts.hub): it puts the process and the version's offsets in
 * the program's maps, keeps the map of its threads (OS thread id -> thread
 * state) current from its own walk of the thread list, and hands its
 * records out one at a time.  The session's one thread drains the ring on
 * its timer (bpf_hub_drain) and then lets each process take its records
 * (backend_sample: -EAGAIN when none is left): no wake-up per sample.
 *
 * What it samples: the threads that are on a CPU when the interrupt fires
 * (man page, WHAT IS COUNTED).  A thread the map does not know yet (one
 * started since the last walk) gives a record without frames: it is
 * counted (bpf_unknown) and the process's thread list is walked again at
 * its next turn.  A record the program could not read whole (a page not
 * present) is dropped and counted as torn.
 *
 * Not thread-safe: the hub and its backends are the session thread's;
 * bpf_hub_counts may be read from any thread.
 */
#ifndef PYSPYC_BACKEND_BPF_H
#define PYSPYC_BACKEND_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "pyspyc/backend.h"
#include "pyspyc/raw.h"

struct bpf_hub;

/* Load the program and open a cpu-clock event per online CPU at rate_hz.
 * 0, or -errno with a line for the user in why (what failed, and for a
 * refused program the verifier's last line): -EPERM without root (or
 * CAP_BPF and CAP_PERFMON), -ENOTSUP without BTF or outside the initial
 * PID namespace. */
int bpf_hub_open(struct bpf_hub **out, double rate_hz, char *why, size_t whylen);
void bpf_hub_close(struct bpf_hub *h);

/* Take every record in the ring and queue each with its process.  Returns
 * the records taken. */
uint64_t bpf_hub_drain(struct bpf_hub *h);

/* The ring's fd: readable, edge-triggered, when the program finds it a
 * quarter full (PB_RING_WAKE_BYTES) and wants it drained before the
 * drain due. */
int bpf_hub_ring_fd(const struct bpf_hub *h);

/* Can the program walk the frames of a process of layout L?  (Every
 * field it reads must lie within what it reads of a frame or a code
 * object.) */
int bpf_layout_ok(const struct py_layout *L);

struct bpf_hub_counts {
	uint64_t ticks;        /* interrupts taken, on every CPU */
	uint64_t hits;         /* ...in a process sampled */
	uint64_t lost;         /* records the ring had no room for */
	uint64_t unknown;      /* records of threads not yet in the map */
	uint64_t bad;          /* records that failed user space's checks */
	uint64_t run_ns;       /* the program's run time (BPF stats), 0 when off */
	uint64_t run_cnt;      /* ...over this many runs */
	uint64_t hit_ns;       /* the part of it past the process lookup, in samples */
	uint64_t execs;        /* processes taken out at their exec */
	uint64_t found;        /* threads the program found in a thread list */
};

/* From c: the program's time per interrupt that is not a sample (the
 * lookup every interrupt pays), and per sample (that, plus the walk), in
 * ns; 0 when the kernel's statistics are off. */
void bpf_hub_costs(const struct bpf_hub_counts *c, double *per_tick_ns, double *per_sample_ns);

/* Summed over the CPUs, since the hub opened.  run_ns and run_cnt need
 * the kernel's BPF statistics on (bpf_hub_open turns them on while the
 * hub is open when it may). */
void bpf_hub_counts(const struct bpf_hub *h, struct bpf_hub_counts *c);

/* Check one record of len bytes from the ring: 0, or -EBADMSG (its
 * frame count and its length disagree, or it is too short). */
int pb_record_check(const void *rec, size_t len);

/* How records of one process are read (pb_decode_opts_of: from its
 * layout, and --max-depth). */
struct pb_decode_opts {
	int objects;           /* frame objects (<= 3.10) */
	int32_t shim;          /* owner value of shim frames (3.12+), or -1 */
	int32_t gen_owner;     /* ...of generators' frames (3.11+), or -1 */
	uint32_t max_depth;
};

struct py_layout;
void pb_decode_opts_of(const struct py_layout *L, uint32_t max_depth, struct pb_decode_opts *o);

/* One record as one thread's raw stack (raw.h), innermost first, shim
 * frames left out, each frame's code fingerprint beside it.  RAW_TORN
 * (depth 0) for a record the program could not read whole, one of a
 * thread it did not know (unknown set), or one whose chain ends where no
 * whole one does (at a generator's frame); RAW_TRUNCATED past the
 * program's cap or max_depth.  0, or -EBADMSG (pb_record_check). */
#define PB_DECODED_FRAMES 4096
struct pb_decoded {
	struct raw_thread th;  /* thread_id 0: the caller knows it */
	uint32_t tid;          /* the initial namespace's */
	int unknown;
	int64_t at_ns;
	struct raw_frame frames[PB_DECODED_FRAMES];
	uint32_t fps[PB_DECODED_FRAMES];
};

int pb_record_decode(const void *rec, size_t len, const struct pb_decode_opts *o,
		     struct pb_decoded *d);

extern const struct backend_ops backend_bpf_ops;

#endif
