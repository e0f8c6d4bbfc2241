/* pyspyc_abi.h - what pyspyc.bpf.c and its user-space side
 * (src/sample/backend_bpf.c) share: fixed-width records and the layout
 * of the maps, nothing else.
 *
 * The program runs at a cpu-clock interrupt in the context of the thread
 * it interrupted.  For a thread of a process user space put in `procs`,
 * whose thread state user space put in `threads`, it walks the Python
 * frames (the version's offsets come from `layouts`, filled from the same
 * per-version tables the user-space walker reads) and emits one record to
 * the ring buffer: a pb_head, then nframes pb_frames, innermost first.
 *
 * Records are hostile input to user space like any remote memory: every
 * field is checked before it is used (pb_record_check).
 */
#ifndef PYSPYC_PB_ABI_H
#define PYSPYC_PB_ABI_H

#include <linux/types.h>

#define PB_MAX_FRAMES 4096      /* frames per record (power of 2); deeper: PB_TRUNCATED */
#define PB_MAX_PROCS 8192       /* processes sampled at once */
#define PB_MAX_THREADS 65536    /* their threads */
#define PB_MAX_LAYOUTS 16       /* Python versions at once */
#define PB_MAX_CPUS 1024        /* per-CPU counters (power of 2); past it, rows are shared */
#define PB_FRAME_READ 256       /* bytes read of a frame, at most (power of 2) */
/* 3.11+ frames sit one above another in the thread's data stack: a frame
 * not in the last read is read with everything below it in its page
 * (PB_WIN_BYTES, a page), where its callers are, into a buffer of
 * PB_WIN_BUF bytes (powers of 2). */
#define PB_WIN_BYTES 4096
#define PB_WIN_BUF 8192
#define PB_CODE_READ 256        /* bytes read of a code object, at most (power of 2) */
#define PB_RING_BYTES (4u << 20) /* the ring buffer */
#define PB_RING_WAKE_BYTES (PB_RING_BYTES / 4) /* ...past this, user space is woken */

/* pb_layout.model */
#define PB_MODEL_OBJECTS 1      /* PyFrameObject through f_back (<= 3.10) */
#define PB_MODEL_INTERP 2       /* _PyInterpreterFrame through previous (3.11+) */

/* An offset of -1: the version has no such field. */
struct pb_layout {
	__u32 model;
	__u32 frame_read;           /* bytes read of each frame, <= PB_FRAME_READ */
	__u32 code_read;            /* bytes read of each code object, <= PB_CODE_READ */
	__s32 owner_shim;           /* owner value of shim frames (3.12+), or -1 */
	/* PyThreadState: where the current frame is */
	__s32 tstate_frame;         /* PyFrameObject * (<= 3.10) */
	__s32 tstate_cframe;        /* _PyCFrame * (3.11, 3.12) ... */
	__s32 cframe_current_frame; /* ... and its current_frame */
	__s32 tstate_current_frame; /* _PyInterpreterFrame * (3.13+) */
	/* a frame */
	__s32 frame_back;           /* f_back or previous */
	__s32 frame_code;           /* f_code or f_code / f_executable */
	__s32 frame_instr;          /* int f_lasti (objects) or a pointer (interp) */
	__s32 frame_owner;          /* char owner (interp), or -1 */
	__s32 frame_gen;            /* f_gen (objects, 3.6-3.10), or -1 */
	/* PyThreadState's list link and pthread id */
	__s32 tstate_next, tstate_thread_id;
	/* the code object's fingerprint (pb_fp) */
	__s32 code_type, code_size, code_filename, code_name, code_qualname, code_linetable;
	__s32 code_firstlineno;
	/* 3.14+: the frame's code word is a _PyStackRef: these low bits are
	 * tags (cleared for the pointer; both set: a tagged int, no code
	 * object), else 0 */
	__u32 code_tags;
	/* 3.15+: where the thread state points to its own base frame, at
	 * which every whole chain of its frames ends; -1: none */
	__s32 tstate_base_frame;
};

/* procs: tgid (initial namespace) -> this */
struct pb_proc {
	__u32 layout;               /* index into layouts */
	__u32 gen;                  /* user space's generation of the process */
	__u32 max_frames;           /* frames walked, at most PB_MAX_FRAMES */
	__u32 pad;
	/* Where the main interpreter keeps its first thread state: a thread
	 * not in `threads` is looked for there (its thread_id is its
	 * pthread_self(), the thread's fsbase on x86-64), 0: not. */
	__u64 threads_head;
	/* The process's start (its group leader's start_boottime), noted by
	 * the program at its first sample: a later process given the pid
	 * (the sampled one exited, user space has not taken it out yet)
	 * starts at another time and is not walked. */
	__u64 start;
	/* Where the interpreters' list starts (_PyRuntime.interpreters.head;
	 * 0: not looked at), the head last seen there (user space sets it, the
	 * program keeps it) and when the program last looked, at most every
	 * PB_HEAD_EVERY_NS while the process runs: a new or ended interpreter
	 * (a sub-interpreter) flags the record PB_INTERP_MOVED, and user space
	 * walks the list again then; no read of its own at each drain. */
	__u64 interp_head;
	__u64 head_seen;
	__u64 head_at;
};

#define PB_HEAD_EVERY_NS 20000000ull

#define PB_SCAN_THREADS 512     /* thread states looked at for an unknown thread */

/* threads: tid (initial namespace) -> this.  A thread that runs a
 * sub-interpreter (run_string, mod_wsgi's requests) has a thread state in
 * each interpreter it entered, its frames in the newest one's on top of
 * those that called it: they are walked one after another, newest
 * interpreter first, as one stack.  Unused places are 0. */
#define PB_MAX_PARTS 4
struct pb_thread {
	__u64 tstate[PB_MAX_PARTS];
};

/* pb_head.flags */
#define PB_TRUNCATED 0x1        /* more frames than PB_MAX_FRAMES: the outer ones are missing */
#define PB_READ_FAILED 0x2      /* a read failed (a page not in memory): not whole */
#define PB_UNKNOWN_THREAD 0x4   /* no thread state for this tid: no frames */
#define PB_BAD_LAYOUT 0x8       /* the process's layout could not be found */
#define PB_OTHER_PROCESS 0x10   /* another process than the one sampled has its pid */
#define PB_INTERP_MOVED 0x20    /* the interpreters' list's head changed (pb_proc.interp_head) */

struct pb_head {
	__u32 tgid, tid;            /* the initial PID namespace's */
	__u64 time_ns;              /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 tstate;               /* the thread state walked (0: none) */
	__u16 nframes, flags;
	__u32 gen;                  /* pb_proc.gen when it was taken */
};

struct pb_frame {
	__u64 code;                 /* the code object's address */
	__u64 instr;                /* f_lasti (objects) or the instruction pointer */
	__u32 fp;                   /* pb_fp of the code object, read with the frame */
	__u32 owner;                /* the frame's owner (interp); objects: 1 for a
				     * generator's frame (f_gen set), else 0 */
};

/* The last PB_EXEC_RING processes taken out at their exec, in the
 * program's .bss: exec_ring[n % PB_EXEC_RING] for n below exec_count. */
#define PB_EXEC_RING 256

/* Per-CPU counters, in the program's .bss: counts[cpu][PB_C_*]. */
#define PB_C_TICKS 0            /* interrupts, in any process */
#define PB_C_HITS 1             /* ...in a process sampled */
#define PB_C_LOST 2             /* records the ring had no room for */
#define PB_C_UNKNOWN 3          /* records of a thread without a thread state */
#define PB_C_EXECS 4            /* sampled processes that exec'd: taken out */
#define PB_C_HIT_NS 5           /* time spent past the process lookup, in samples */
#define PB_C_FOUND 6            /* threads found by the program in the thread list */
#define PB_C_OTHER 7            /* interrupts in a process that took a sampled one's pid */
#define PB_NCOUNTS 8

/* The code object a frame's code word (bits) names, 0 for none: with tags
 * (3.14+) the word is a _PyStackRef, 1 alone NULL, both low bits set a
 * tagged int (no object), else the pointer with the tag bits cleared.
 * The program and the user-space walker (py_frame_code) both use it. */
static inline __attribute__((always_inline)) __u64 pb_frame_code(__u64 bits, __u64 tags)
{
	if (!tags)
		return bits;
	if ((bits & 3) == 3)
		return 0;
	return bits & ~tags;
}

/* One fold step of the fingerprint: a 64-bit multiply and shift. */
static inline __attribute__((always_inline)) __u64 pb_fp_mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
}

/* The fingerprint of a code object, from the fields the user-space
 * symbolizer compares (py_code.c: struct fingerprint), folded to 32 bits:
 * a code object freed and its address taken by another since the sample
 * differs here in all but 1 in 2^32 cases. */
static inline __attribute__((always_inline)) __u32 pb_fp(__u64 type, __u64 size, __u64 filename, __u64 name, __u64 qualname,
			  __u64 linetable, __u32 firstlineno)
{
	__u64 h = 0x243f6a8885a308d3ULL;

	h = pb_fp_mix(h, type);
	h = pb_fp_mix(h, size);
	h = pb_fp_mix(h, filename);
	h = pb_fp_mix(h, name);
	h = pb_fp_mix(h, qualname);
	h = pb_fp_mix(h, linetable);
	h = pb_fp_mix(h, firstlineno);
	return (__u32)(h ^ (h >> 32));
}

#endif
