/* pyspyc.bpf.c - walk the Python stack of the thread a cpu-clock
 * interrupt stopped, in the kernel, and hand it to user space.
 *
 * Attached to one cpu-clock perf event per CPU (src/sample/backend_bpf.c).
 * At each interrupt it runs in the context of the thread that was on the
 * CPU: the thread is stopped where it was, so its frames are read as one
 * consistent chain, with no other thread changing them (a thread's frames
 * are its own).  A process not sampled costs a map lookup.  For one that
 * is, the thread state comes from `threads` (filled by user space from its
 * own walk of the thread list), then the frames: one read of each frame
 * (3.11+: of each page of the data stack they are in, frame_window), one
 * of each code object's header for its fingerprint (skipped for a frame
 * running the same code as its callee: recursion).  Shim frames
 * (3.12+: C calling into the interpreter) are sent as they are, with
 * their owner; user space leaves them out.  The record goes
 * to the ring buffer without waking anyone: user space drains it on its
 * own timer.
 *
 * Nothing here trusts what it reads: every offset comes from `layouts`
 * and is bounded by the buffer it indexes, every loop is bounded.  A read
 * that fails (a page not present: bpf_probe_read_user cannot fault) ends
 * the walk and flags the record; user space drops it and counts it.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "pyspyc_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PB_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct pb_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PB_MAX_THREADS);
	__type(key, __u32);   /* tid, initial namespace */
	__type(value, struct pb_thread); /* its PyThreadStates */
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PB_MAX_LAYOUTS);
	__type(key, __u32);
	__type(value, struct pb_layout);
} layouts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PB_RING_BYTES);
} ring SEC(".maps");

struct scratch {
	struct pb_head head;
	struct pb_frame frames[PB_MAX_FRAMES];
	__u64 ends[PB_MAX_PARTS];   /* each part's last frame in this walk (0: none) */
	__u8 win[PB_WIN_BUF] __attribute__((aligned(8)));
	__u8 code[PB_CODE_READ] __attribute__((aligned(8)));
};

/* One per CPU, by CPU number (user space sets max_entries to the CPUs):
 * a per-CPU array's values cannot be this large.  A program on a perf
 * event is not run again on its CPU before it returns. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* The kernel's own, by the fields named here (CO-RE relocations against
 * the running kernel's BTF). */
struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	struct thread_struct thread;
	struct task_struct *group_leader;
	__u64 start_boottime;
} __attribute__((preserve_access_index));

#define PF_EXITING 0x00000004 /* include/linux/sched.h */

__u64 counts[PB_MAX_CPUS][PB_NCOUNTS];
__u32 exec_ring[PB_EXEC_RING];
__u64 exec_count;

/* Fields of a buffer of n bytes (a power of 2) at an offset from user
 * space: 0 when it does not fit. */
static __always_inline __u64 ld64(const __u8 *b, __s32 off, __u32 n)
{
	if (off < 0 || (__u32)off > n - 8)
		return 0;
	return *(const __u64 *)(b + ((__u32)off & (n - 1)));
}

static __always_inline __u32 ld32(const __u8 *b, __s32 off, __u32 n)
{
	if (off < 0 || (__u32)off > n - 4)
		return 0;
	return *(const __u32 *)(b + ((__u32)off & (n - 1)));
}

static __always_inline __u8 ld8(const __u8 *b, __s32 off, __u32 n)
{
	if (off < 0 || (__u32)off > n - 1)
		return 0;
	return b[(__u32)off & (n - 1)];
}

/* A pointer-sized field of user memory; 0 when it cannot be read. */
static __always_inline int rd_ptr(__u64 at, __s32 off, __u64 *v)
{
	*v = 0;
	if (off < 0)
		return -1;
	return bpf_probe_read_user(v, sizeof(*v), (const void *)(at + (__u64)off));
}

/* The thread's innermost frame, by the version's way; -1: a read failed. */
static __always_inline int first_frame(const struct pb_layout *L, __u64 ts, __u64 *f)
{
	__u64 cf;

	if (L->tstate_current_frame >= 0)
		return rd_ptr(ts, L->tstate_current_frame, f);
	if (L->tstate_cframe >= 0) {
		if (rd_ptr(ts, L->tstate_cframe, &cf))
			return -1;
		if (!cf) {
			*f = 0;
			return 0;
		}
		return rd_ptr(cf, L->cframe_current_frame, f);
	}
	return rd_ptr(ts, L->tstate_frame, f);
}

/* The walk's state, on the program's stack, for walk_one.  sc->win holds
 * user memory [win_lo, win_lo + win_len); stacked: the low bits of an address
 * cleared for the start of its page (3.11+'s data stack), else 0. */
struct walk {
	struct scratch *sc;
	const struct pb_layout *L;
	__u64 f, last_code, win_lo, win_len, stacked;
	__u64 prev;                 /* the frame read last (0: none in this part) */
	struct pb_thread parts;     /* the thread's thread states */
	__u32 part;                 /* the one walked now */
	__u32 last_fp, flags, n, max, fread, cread;
};

/* Frame f's bytes into sc->win, unless the last read has them: 0, or -1
 * when they cannot be read.  With a data stack (stacked: 3.11+) a frame is
 * read with the rest of its page below it, where the frames that called it
 * are: a walk of 25 frames reads a page or two, not 25 frames (a
 * generator's frame, in its object on the heap, has its page read for
 * nothing).  The page's start is as far down as a read goes: the page
 * below may not be mapped (a chunk's first).  Frame objects (before 3.11)
 * are read alone. */
static __always_inline int frame_window(struct walk *w, __u64 f)
{
	__u64 lo = f & ~(__u64)w->stacked, len = (f - lo + w->fread) & (PB_WIN_BUF - 1);
	__u64 d = f - w->win_lo; /* below win_lo: past any length */

	if (d < PB_WIN_BUF && d + w->fread <= w->win_len)
		return 0;
	if (bpf_probe_read_user(w->sc->win, len, (const void *)lo))
		return -1;
	w->win_lo = lo;
	w->win_len = len;
	return 0;
}

/* The walk at the end of one thread state's frames: on to the next thread
 * state's (an older interpreter's, whose frames called the newer one's).
 * 1 when there is none left, or its frame pointer could not be read. */
static __always_inline long next_part(struct walk *w)
{
	__u64 ts;

	/* In the map value, not the walk's state on the stack: a store at a
	 * variable place there cost the verifier its pruning (5x the load
	 * time). */
	w->sc->ends[w->part & (PB_MAX_PARTS - 1)] = w->prev; /* see base_frames_ok */
	w->prev = 0;
	if (w->part >= PB_MAX_PARTS - 1)
		return 1;
	w->part++;
	ts = w->parts.tstate[w->part & (PB_MAX_PARTS - 1)];
	if (!ts)
		return 1;
	if (first_frame(w->L, ts, &w->f)) {
		w->flags |= PB_READ_FAILED;
		return 1;
	}
	return 0;
}

/* A step of the walk: the next frame, read with its code object's
 * fingerprint unless its callee ran the same code, or, at the end of a
 * thread state's frames, on to the next one's (next_part).  Shim frames are
 * sent too, with their owner (user space leaves them out).  1 ends the
 * loop. */
static long walk_one(__u32 i, void *ctx)
{
	struct walk *w = ctx;
	struct scratch *sc = w->sc;
	const struct pb_layout *L = w->L;
	struct pb_frame *pf;
	__u64 f = w->f, code;
	__u32 n = w->n, fo;

	(void)i; /* frames are counted in w->n: part changes take steps too */
	if (!f)
		return next_part(w);
	if (n >= w->max)
		return 1;
	pf = &sc->frames[n & (PB_MAX_FRAMES - 1)];
	if (f & 7 || frame_window(w, f)) {
		w->flags |= PB_READ_FAILED;
		return 1;
	}
	/* Read alone (objects), a frame is at 0, where a field the version
	 * lacks (-1) reads as 0; a data stack's version has them all. */
	fo = (__u32)(f - w->win_lo) & (PB_WIN_BYTES - 1);
	code = ld64(sc->win, (__s32)fo + L->frame_code, PB_WIN_BUF);
	code = pb_frame_code(code, L->code_tags);
	if (L->model == PB_MODEL_OBJECTS) {
		pf->instr = (__u64)(__s64)(__s32)ld32(sc->win, (__s32)fo + L->frame_instr,
						     PB_WIN_BUF);
		pf->owner = ld64(sc->win, (__s32)fo + L->frame_gen, PB_WIN_BUF) != 0;
	} else {
		pf->instr = ld64(sc->win, (__s32)fo + L->frame_instr, PB_WIN_BUF);
		pf->owner = ld8(sc->win, (__s32)fo + L->frame_owner, PB_WIN_BUF);
	}
	w->f = ld64(sc->win, (__s32)fo + L->frame_back, PB_WIN_BUF);
	w->prev = f;
	if (code != w->last_code) {
		if (!code || code & 7 ||
		    bpf_probe_read_user(sc->code, w->cread & (PB_CODE_READ - 1), (const void *)code)) {
			w->flags |= PB_READ_FAILED;
			return 1;
		}
		w->last_fp = pb_fp(ld64(sc->code, L->code_type, PB_CODE_READ),
				   ld64(sc->code, L->code_size, PB_CODE_READ),
				   ld64(sc->code, L->code_filename, PB_CODE_READ),
				   ld64(sc->code, L->code_name, PB_CODE_READ),
				   ld64(sc->code, L->code_qualname, PB_CODE_READ),
				   ld64(sc->code, L->code_linetable, PB_CODE_READ),
				   ld32(sc->code, L->code_firstlineno, PB_CODE_READ));
		w->last_code = code;
	}
	pf->code = code;
	pf->fp = w->last_fp;
	w->n = n + 1;
	return 0;
}

/* The thread state of the current thread, looked for in the main
 * interpreter's list by its pthread id (glibc and musl: the thread's
 * fsbase), and noted in `threads` for the next samples; 0 when not found
 * (a thread of a sub-interpreter, or one not registered yet).  A thread
 * started since user space last read the list (a server's thread per
 * request) is sampled from its first interrupt on. */
static __always_inline __u64 find_tstate(const struct pb_proc *p, const struct pb_layout *L,
					 __u32 tid, __u64 *cnt)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 fs = BPF_CORE_READ(task, thread.fsbase), t = 0, id;
	__u32 i;

	if (!p->threads_head || !fs || rd_ptr(p->threads_head, 0, &t))
		return 0;
	for (i = 0; i < PB_SCAN_THREADS && t; i++) {
		if (t & 7 || rd_ptr(t, L->tstate_thread_id, &id))
			return 0;
		if (id == fs) {
			struct pb_thread th = { .tstate = { t } };

			bpf_map_update_elem(&threads, &tid, &th, BPF_NOEXIST);
			cnt[PB_C_FOUND]++;
			return t;
		}
		if (rd_ptr(t, L->tstate_next, &t))
			return 0;
	}
	return 0;
}

/* 3.15+: a whole chain of a thread state's frames ends at its own base
 * frame; one that ends at another frame was cut (read as a frame was
 * pushed or popped), and the record is torn, as the user-space walker has
 * it.  (Checked once the walk is done: a read in walk_one's loop made the
 * program too complex for the verifier.) */
static __always_inline int base_frames_ok(const struct walk *w)
{
	__u64 base;
	__u32 i;

	if (w->L->tstate_base_frame < 0)
		return 1;
	for (i = 0; i < PB_MAX_PARTS; i++)
		if (w->sc->ends[i] &&
		    (rd_ptr(w->parts.tstate[i], w->L->tstate_base_frame, &base) ||
		     base != w->sc->ends[i]))
			return 0;
	return 1;
}

SEC("perf_event")
int pb_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = (__u32)(pid_tgid >> 32), tid = (__u32)pid_tgid, i;
	__u32 cpu = bpf_get_smp_processor_id();
	struct walk w = { 0 };
	struct pb_proc *p;
	struct scratch *sc;
	struct pb_thread *ts;
	__u64 size, *cnt, t0, tstate = 0, start, head;
	struct task_struct *task;
	__u16 moved = 0;

	(void)ctx;
	/* CPUs past PB_MAX_CPUS share rows (the sums stay right, roughly). */
	cnt = counts[cpu & (PB_MAX_CPUS - 1)];
	cnt[PB_C_TICKS]++;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	/* The process given, not a later one with its pid. */
	task = (struct task_struct *)bpf_get_current_task_btf();
	start = BPF_CORE_READ(task, group_leader, start_boottime);
	if (!p->start)
		p->start = start;
	else if (p->start != start) {
		cnt[PB_C_OTHER]++;
		return 0;
	}
	cnt[PB_C_HITS]++;
	t0 = bpf_ktime_get_ns();
	/* An interpreter made or ended since the last look?  (Racy between
	 * CPUs, harmlessly: both flag it, or one looks a turn early.) */
	if (p->interp_head && t0 - p->head_at >= PB_HEAD_EVERY_NS) {
		p->head_at = t0;
		if (!rd_ptr(p->interp_head, 0, &head) && head != p->head_seen) {
			p->head_seen = head;
			moved = PB_INTERP_MOVED;
		}
	}
	sc = bpf_map_lookup_elem(&scratch, &cpu);
	if (!sc)
		return 0; /* never: the map has a value for every CPU */
	sc->head.tgid = tgid;
	sc->head.tid = tid;
	sc->head.time_ns = t0;
	sc->head.tstate = 0;
	sc->head.gen = p->gen;
	i = p->layout;
	w.L = bpf_map_lookup_elem(&layouts, &i);
	w.max = p->max_frames;
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!w.L) {
		w.flags = PB_BAD_LAYOUT;
		goto out;
	}
	/* A thread on its way out (in exit(), past its thread state's end)
	 * has no Python stack left: a record with none, not a thread to look
	 * for. */
	if (BPF_CORE_READ(task, flags) & PF_EXITING)
		goto out;
	if (ts) {
		w.parts = *ts;
		/* The record names the thread by its own (the oldest
		 * interpreter's) thread state, as the user-space walker does. */
		for (i = 0; i < PB_MAX_PARTS; i++)
			if (w.parts.tstate[i])
				tstate = w.parts.tstate[i];
	} else {
		tstate = w.parts.tstate[0] = find_tstate(p, w.L, tid, cnt);
	}
	if (!tstate) {
		cnt[PB_C_UNKNOWN]++;
		w.flags = PB_UNKNOWN_THREAD;
		goto out;
	}
	sc->head.tstate = tstate;
	if (first_frame(w.L, w.parts.tstate[0], &w.f)) {
		w.flags = PB_READ_FAILED;
		goto out;
	}
	w.sc = sc;
	for (i = 0; i < PB_MAX_PARTS; i++)
		sc->ends[i] = 0;
	w.fread = w.L->frame_read & (PB_FRAME_READ - 1);
	w.stacked = w.L->model == PB_MODEL_INTERP ? PB_WIN_BYTES - 1 : 0;
	w.cread = w.L->code_read & (PB_CODE_READ - 1);
	/* A step per frame, and one per thread state after the first. */
	bpf_loop(PB_MAX_FRAMES + PB_MAX_PARTS, walk_one, &w, 0);
	if (w.f && !(w.flags & PB_READ_FAILED))
		w.flags |= PB_TRUNCATED;
	else if (!w.f && !(w.flags & PB_READ_FAILED) && !base_frames_ok(&w))
		w.flags |= PB_READ_FAILED;
out:
	sc->head.flags = (__u16)w.flags | moved;
	sc->head.nframes = (__u16)w.n;
	size = sizeof(struct pb_head) + (__u64)(w.n & (2 * PB_MAX_FRAMES - 1)) * sizeof(struct pb_frame);
	if (size > sizeof(struct pb_head) + sizeof(sc->frames))
		size = sizeof(struct pb_head) + sizeof(sc->frames);
	/* User space drains on its timer; sooner when the ring fills up (a
	 * host of many CPUs at a high rate). */
	if (bpf_ringbuf_output(&ring, sc, size,
			       bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) >= PB_RING_WAKE_BYTES
			       ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP))
		cnt[PB_C_LOST]++;
	cnt[PB_C_HIT_NS] += bpf_ktime_get_ns() - t0;
	return 0;
}

/* A sampled process that exec's another program is taken out at once: its
 * memory is not the interpreter's any more, and the program would walk
 * whatever the new one keeps at the old addresses.  User space finds the
 * exec (its thread list no longer reads) and adds the process anew if the
 * new program is Python. */
SEC("tp_btf/sched_process_exec")
int pb_exec(__u64 *ctx)
{
	__u32 tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);

	(void)ctx;
	if (!bpf_map_delete_elem(&procs, &tgid)) {
		__u64 n = __sync_fetch_and_add(&exec_count, 1);

		exec_ring[n & (PB_EXEC_RING - 1)] = tgid;
		counts[bpf_get_smp_processor_id() & (PB_MAX_CPUS - 1)][PB_C_EXECS]++;
	}
	return 0;
}

/* A thread that exits leaves the threads map: a later thread given its id
 * (in the same process) is unknown until user space reads the list again,
 * never walked from the exited one's thread state. */
SEC("tp_btf/sched_process_exit")
int pb_exit(__u64 *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	(void)ctx;
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
