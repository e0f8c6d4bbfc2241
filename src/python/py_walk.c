/* py_walk.c - thread states and frames -> raw stacks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/bytes.h"
#include "pyspyc/clock.h"
#include "pyspyc/py_walk.h"
#include "pyspyc/recent.h"

/* Bounds on what one sample may copy; beyond them the walker falls back to
 * reading frames one by one rather than failing. */
#define CHUNK_COPY_MAX (64 * 1024)   /* live bytes of one chunk copied */
#define CHUNK_MIN_SIZE (16 * 1024)   /* CPython never allocates smaller */
#define CHUNK_SLACK 512              /* for frames pushed since the tstate read */
#define COPY_BUF_BYTES (4u << 20)    /* all copies of one sample, to start */
/* Per thread, what the storage may grow to: copied bytes, iovecs and
 * frames of one sample.  Past them the walker reads one by one (bytes,
 * iovecs) or truncates (frames), as at the fixed bounds before. */
#define COPY_BYTES_PER_THREAD (64u << 10)
#define IOVS_PER_THREAD 64
#define FRAMES_PER_THREAD 64
#define FIRST_THREADS 4              /* thread slots made at the start (14 KB
					 * each; with -s, per process) */
#define MAX_CHUNKS_PER_THREAD 64
#define MAX_FRAME_BYTES PY_LAYOUT_MAX_FRAME /* a frame header we read */
/* Before 3.11, a frame object not in the pages read with the sample is
 * read with its whole page, kept for the next frames of the walk: a deep
 * stack's callers are mostly on the pages of their callees (pymalloc
 * hands out a pool's frames in turn).  A 20,000-frame recursion (3.9)
 * took a read a frame, 19,753 a sample. */
#define WALK_PAGES 8
#define MAX_SPEC_FRAMES 512          /* frames read ahead per thread (3.11+) */
/* Before 3.11 the frame objects are read ahead as the pages they lie on:
 * a frame that returned goes to a free list and the next call takes it
 * again, so the frames a recursion makes and drops, and a new thread's,
 * keep to a few pages (pymalloc's pools) where frames were met lately.  At
 * most this many runs of pages, this many bytes, a read. */
#define SPEC_PAGE 4096u
#define MAX_FRAME_PAGES 64           /* pages frames were met on lately */
#define MAX_SPEC_RUNS 32
#define SPEC_PAGE_BYTES (128u * 1024u)
#define MAX_SPEC_CHUNKS 8            /* older chunks read ahead per thread */
/* 3.11 and 3.12: the current frame pointer is in a _PyCFrame on the C
 * stack, and every call from C back into Python makes a new one, at a place
 * that depends on the C call path: a loop or a server goes back to the same
 * few.  A thread whose _PyCFrame moved lately has the pointer read at each
 * of its CF_RECENT last places, for CF_HOT samples, which finds the new one
 * without a second read.  3.12's shim frames sit beside them on the C stack
 * and are found the same way, among the frames read one by one lately. */
#define CF_RECENT 8
#define CF_HOT 256
/* The recent places of a thread whose _PyCFrame moves are read as one
 * window of its C stack, from CF_BELOW under the lowest to CF_ABOVE past
 * the highest, when that fits in CF_WINDOW bytes: it also finds a
 * _PyCFrame never seen before (a C call path of another depth), which
 * separate places would not. */
#define CF_WINDOW 8192
#define CF_ABOVE 512
#define CF_BELOW 1024
#define SPEC_KEEP 64                 /* samples a frame read ahead is kept */
#define SPEC_FAILS_MAX 3             /* recent failed reads that stop the extra places */
/* A torn thread is read again at once, alone, up to this many times before
 * its stack is dropped: a generator between resumptions tears a stack
 * often, and the next read usually finds it whole; a thread deep in a
 * recursion of small calls (the demo app's fib, 3.11) can tear two or three
 * reads in a row, returning faster than a read takes.  There, with the
 * recheck resolving code objects, 2 lost about 1.5% of the stacks and 4
 * about 0.2%, for some 15% more re-reads. */
#define TORN_REREADS 4
/* Pages read after the others (queue_runs): the innermost frames' of this
 * many threads at most. */
#define MAX_LAST_PAGES 16
/* Frames left out of a stack read as they returned (RECHECK_RETURNED): a
 * recursion of small calls returns several in the time of one read (the
 * demo app's fib). */
#define RETURNED_MAX 3
/* Before 3.11 a walk is checked by reading its frames again (see
 * objects_verify); the check means something only if it comes soon after
 * the copies walked.  Walk and check normally take 20-150 us from the
 * sample's read for a few frames (3.10, the churn test app, the sanitizer
 * build too), and about 3 us more a read the walk made on its way (a
 * frame away from the pages read ahead is read alone: 500 frames deep,
 * 192 reads and 500-900 us; 20,000 deep, 19,753 reads and 57 ms).  More
 * than VERIFY_SPAN_NS, VERIFY_READ_NS a read since the copies (room for a
 * machine 7 times slower) and VERIFY_FRAME_NS a frame, and pyspyc was most
 * likely preempted in between, long enough for the thread to leave its
 * frames and come back to the same ones. */
#define VERIFY_SPAN_NS (300 * 1000)
#define VERIFY_READ_NS (20 * 1000)
#define VERIFY_FRAME_NS 1000
/* And a walk that took long because pyspyc itself was slow (its own CPU
 * time since the copies: a sanitizer build reads a frame in about 23 us,
 * a 20,000-frame walk about 50 ms) is given VERIFY_CPU_TIMES that time
 * instead, when that is more: time on the CPU is not time preempted. */
#define VERIFY_CPU_TIMES 4
/* Thread states that left the list lately (their threads ended), kept with
 * their slots for GHOST_KEEP samples: a thread-per-request server's next
 * thread state is usually allocated where an ended one's was.  The sample
 * reads them too, as optional reads: a new thread found at one of them
 * costs no read of its thread state (see rebuild_list).  Not their last
 * plans: the new thread's data stack is nearly always elsewhere. */
#define NGHOST 16
#define MAX_NEW_READS 4      /* thread states read one by one by rebuild_list */
#define GHOST_KEEP 400
/* The heap zone.  A new thread state not at a ghost is most often a little
 * below the highest of the heap's known ones (malloc's free chunks and its
 * top): the demo app, 317 such in 8 s, had 269 in the ZONE_LEN bytes below
 * the highest one's end and 21 more in the ZONE_TAIL bytes after it.  While
 * threads begin at places not known (ZONE_KEEP samples since one did), the
 * sample reads that window too, an optional read after the ghosts' rows:
 * a new thread state found in it costs no read of its own.  The window
 * stays between the lowest and highest end of the thread states near the
 * median's (ZONE_NEAR), memory that is mapped when they are one heap's,
 * but for the tail.  A read of the window that fails drops the tail; one
 * that fails without it, the window (the thread states are not one
 * heap's). */
#define ZONE_LEN (48 * 1024)
#define ZONE_TAIL 4096
#define ZONE_NEAR (1024 * 1024)
#define ZONE_KEEP 256
/* A new thread's places, guessed (3.11+).  A thread-per-request server
 * starts its threads on a few C stacks (glibc keeps ended threads' stacks
 * and hands out the one freed last) and data-stack chunks (a chunk is
 * unmapped when its thread ends, and the kernel maps the next one at the
 * highest hole that fits, most often a freed chunk's), and a thread's
 * _PyCFrame sits at one of a few depths under the top of its C stack,
 * whose address is its pthread_t (the thread state's thread_id).  The demo
 * app, 957 new threads first found running: 6 stacks, 5 chunks; 7 depths
 * from 2.4 to 5.3 KB, 67% at one of them.  So where a new thread's state
 * may be read (a ghost's, with the sample; one never seen, alone, by
 * rebuild_list), guesses are read in the same call: the window of the
 * depths seen on NT_GUESS of the free stacks, and the first bytes of as
 * many free chunks, as deep as threads went lately (the demo app, 4 and
 * 4: 1.35 reads a sample, against 1.46-1.52 with 3 and 3, 1.6-1.7 with 1
 * and 1, in a sample's call).  A new thread whose
 * places were among them needs no read of its own (nt_adopt).  The guesses
 * are made of the stacks, chunks and depths of the threads planned lately
 * (NT_STACKS, NT_CHUNKS, NT_SEEN); a depth over NT_OFF_MAX is not a
 * thread's own stack (the main thread's pthread_t is not at its top). */
#define NT_STACKS 8
#define NT_CHUNKS 8
#define NT_SEEN 64
#define NT_OFF_MAX (64 * 1024)
#define NT_GUESS 4           /* stacks and chunks read, each */
#define NT_KNOWN_MAX 64      /* threads past which no guess is made */
/* 3.12+: a frame on a thread's own C stack (the shim frame each entry into
 * the interpreter loop pushes) is at one of a few depths under the top of
 * the stack, like the _PyCFrames: the demo app's request threads have one
 * for the thread's start and one for each call through C (a class's
 * __init__).  The depths met lately (NT_SHIMS) are read with a new
 * thread's guessed C stack (3.13+, which has no _PyCFrame: a window of
 * those depths alone), with its first read of its own, and, for a thread
 * first found asleep, with the read that finds it running.  The demo app
 * under 3.13: 2.8 reads a sample before, 2.0-2.2 after. */
#define NT_SHIMS 4

struct copy {
	uint64_t remote;  /* remote address of buf[off] */
	uint64_t len;
	size_t off;       /* into w->buf */
};

/* What to read of one thread next time, derived from its last thread state:
 * the sample after this one reads it speculatively in the same call as the
 * thread list, and checks the fresh thread state still agrees. */
struct plan {
	uint64_t cframe;       /* _PyCFrame holding current_frame, 0 if none */
	/* Places to read current_frame at: cframe first, then recent ones. */
	uint64_t cfs[CF_RECENT];
	uint32_t ncfs;
	/* Ahead of time, instead of cfs[] when they fit in CF_WINDOW: the
	 * window [cfw_lo, cfw_lo + cfw_len) of the C stack; cfw_len 0 if
	 * none. */
	uint64_t cfw_lo;
	uint32_t cfw_len;
	uint64_t chunk;        /* newest data-stack chunk, 0 if not copied */
	uint64_t len;          /* bytes of it to copy */
	/* Older chunks the last walk copied (remote, len; off unused). */
	struct copy older[MAX_SPEC_CHUNKS];
	uint32_t nolder;
	/* 3.11+: the frames outside the chunks that recent walks read one by
	 * one, with the sample count each was last met at. */
	uint64_t frames[MAX_SPEC_FRAMES];
	uint64_t frame_seen[MAX_SPEC_FRAMES];
	uint32_t nframes;
};

struct thread_slot {
	struct plan plan;
	uint64_t tstate;
	uint64_t current_frame;
	struct copy copies[MAX_CHUNKS_PER_THREAD];
	uint32_t ncopies;
	uint64_t older;        /* next older chunk not yet copied, 0 if none */
	uint32_t cf_hot;       /* samples left reading recent places */
	/* The deepest the newest chunk was in use lately (bytes past its
	 * start), and the samples since: a server thread goes from waiting,
	 * shallow, to handling a request, deep, and back. */
	uint64_t top_hw;
	uint32_t top_age;
	uint64_t thread_id;    /* of the thread whose places these are */
	uint64_t cf_recent[CF_RECENT]; /* most recent first */
	uint32_t ncf_recent;
	uint64_t cf_val[CF_RECENT];    /* current_frame read at plan.cfs[] */
	uint32_t ncf_read;
	/* The window of plan.cfw_* read with the sample, at buf + cfw_off;
	 * 0 when not read. */
	uint32_t cfw_read;
	size_t cfw_off;
	/* The iovecs of this slot's extra reads in the steady state's call
	 * (frames and places the last walk did not need): [xf_lo, xf_hi),
	 * [xc_lo, xc_hi), to tell a failed extra from a failed plain read. */
	uint32_t xf_lo, xf_hi, xc_lo, xc_hi;
	/* Older chunks read with the sample by the plan, used once the walk
	 * reaches them and their headers agree. */
	struct copy pre[MAX_SPEC_CHUNKS];
	uint32_t npre;
	/* Frames read with the sample, by plan.frames[]; 0 if none. */
	uint32_t nspec;
	size_t spec_off;
	uint64_t walked[MAX_SPEC_FRAMES];
	uint32_t nwalked;
	/* The steady state's read brought all of this slot's reads. */
	uint32_t got;
	/* This sample, not read: HOST_ASLEEP or HOST_STOPPED (the host's
	 * word before the read); 0 when read. */
	uint8_t idle;
	uint8_t had_gil;       /* its thread held the GIL at its last walk */
	uint8_t walked_whole;  /* its thread was walked whole in this slot:
				* not idle, not torn, some frames */
	/* A new thread's slot, its thread state read with guesses of its
	 * places (NT_SPEC: the sample's read; NT_FRESH: its own), or alone
	 * (NT_ALONE); NT_NONE for the others.  NT_GONE, during the sample's
	 * read: its thread had exited by the host's word. */
	uint8_t nt_src;
	/* NT_GONE: the exited thread's ids (a new thread may have both the
	 * thread state and the C stack, so the pthread_t, it left). */
	uint64_t gone_id, gone_native;
};

enum { NT_NONE, NT_SPEC, NT_FRESH, NT_ALONE, NT_GONE };

/* One piece of a guess of a new thread's places: len bytes at remote
 * address at, read at buf + off by iovec iov of its call; ok once it
 * arrived. */
struct nt_piece {
	uint64_t at;
	uint32_t len, iov;
	size_t off;
	int ok;
};

/* One read of the guesses: windows of the free C stacks where a _PyCFrame
 * would be, and the first bytes of the free chunks. */
struct nt_read {
	struct nt_piece cfw[NT_GUESS], chunk[NT_GUESS];
	uint32_t ncfw, nchunk;
	/* 3.13+: the windows cfw[] are of the shim frames' depths, the
	 * deepest shim_hi, shim_len bytes long (0: none read). */
	uint64_t shim_hi;
	uint32_t shim_len;
};

/* What guesses are made of (see NT_STACKS): the stacks' tops and the
 * chunks that threads had lately, with the sample each was last met at,
 * and the depths of the NT_SEEN threads planned last. */
struct nt_guess {
	uint64_t stack[NT_STACKS], stack_seen[NT_STACKS];
	uint64_t chunk[NT_CHUNKS], chunk_seen[NT_CHUNKS];
	uint32_t nstack, nchunk;
	uint32_t off[NT_SEEN], top[NT_SEEN];
	uint32_t nseen, next;
	uint64_t shim[NT_SHIMS], shim_seen[NT_SHIMS]; /* depths (see NT_SHIMS) */
	uint32_t nshim;
	struct nt_read spec, fresh;
};

/* One interpreter of the runtime's list, as the last list walk saw it. */
struct interp_slot {
	uint64_t addr;
	uint64_t next;         /* its next pointer then */
	uint32_t first, n;     /* its thread states: known[first .. first + n) */
	uint64_t next_rd, head_rd; /* read with the sample by the fast path */
	uint64_t cut_next;      /* --max-threads: the first thread state left out */
	/* 3.12+, sub-interpreters: the GIL they use (their own, or the main
	 * interpreter's), 0 until known, and its bytes read with the sample. */
	uint64_t gil_addr;
	uint8_t gilbuf[64];
};

/* Thread states of one OS thread in several interpreters, to stitch. */
struct stitch_key {
	uint64_t thread_id;
	uint32_t pos;          /* interpreter's place in the list: 0 is newest */
	uint32_t i;            /* index into known[] */
};

struct frame_page {
	uint64_t page;
	uint64_t seen;         /* w->nsample when a frame was last met there */
};

struct py_walker {
	struct rmem mem;
	/* Before 3.11: the pages frame objects of any thread were met on in
	 * the last SPEC_KEEP samples (frames come and go through one free
	 * list, a new thread's from the same pages as an ended one's), and
	 * the runs of them read with this sample. */
	struct frame_page fpages[MAX_FRAME_PAGES];
	uint32_t nfpages, fpage_last;
	struct copy runs[MAX_SPEC_RUNS];
	uint32_t nruns;
	/* The sample's runs once a torn thread's re-read has taken runs
	 * (reread_thread): the threads walked after it still find their
	 * frames there (sruns_set: kept this sample); the re-read thread
	 * itself, walked again (fresh_only), takes none of these older
	 * copies. */
	struct copy sruns[MAX_SPEC_RUNS];
	uint32_t nsruns;
	uint8_t sruns_set, fresh_only;
	/* Before 3.11, of the thread walked last: its innermost frame had
	 * returned when the walk read it (walk_objects, reset by walk_thread);
	 * the check found that frame's caller at another instruction than the
	 * walk did (frame_agrees).  walk_checked settles both. */
	uint8_t inner_dead, caller_moved;
	/* A re-read thread's frame pointer and its pages read again at the
	 * end of the same call, to check its walk by (objects_verify);
	 * vslot: that thread's slot + 1, 0 when none. */
	struct copy vruns[MAX_SPEC_RUNS];
	uint32_t nvruns, vslot;
	uint64_t vcur;
	/* Before 3.11: the pages read by this sample's walks for frames
	 * not in the runs (object_at), WALK_PAGES of them in turn, each up to
	 * two pages (a frame across a page's end) in pbuf. */
	uint8_t *pbuf;
	struct copy pcopies[WALK_PAGES];
	uint32_t npcopies, pnext;
	const struct py_layout *L;
	uint64_t interp;       /* the main interpreter */
	uint64_t runtime;
	struct walk_opts o;

	/* The interpreter list (newest first, main last) and which of
	 * known[] belong to each; interps_capped when it went on past
	 * PY_MAX_INTERPS. */
	struct interp_slot interps[PY_MAX_INTERPS + 1];
	uint32_t ninterps;
	int interps_capped;
	uint64_t ihead_rd;     /* the list head, read with the sample */
	/* Per-sample GIL holders of the sub-interpreters' own GILs (3.12+). */
	uint64_t holders[PY_MAX_INTERPS + 1];
	uint32_t nholders;
	/* Stitching: walk order, and how many thread states each entry of
	 * order[] starts (0 for those inside a group). */
	struct stitch_key *skeys;
	uint32_t *order, *group;
	uint32_t stitch_cap;

	/* Thread states, tstate_size bytes each, and the list seen last time.
	 * tsbuf, known, slots and sample.threads have room for cap threads;
	 * they grow (geometrically, up to o.max_threads) only while the list
	 * is walked one thread at a time, never while reads are queued.
	 * known[i]'s slot, and its row of tsbuf, is sidx[i]: a slot (its plan)
	 * stays with its thread state when the list changes around it. */
	uint8_t *tsbuf;
	uint64_t *known;
	uint32_t *sidx;
	uint32_t nknown;
	uint32_t cap;
	/* Ghosts: thread states gone from the list lately, newest first, with
	 * their slots and the sample they left at; how many of them the last
	 * read brought whole (their thread states and plans). */
	uint64_t ghost[NGHOST];
	uint32_t gslot[NGHOST];
	uint64_t gsince[NGHOST];
	uint32_t nghost, ghost_rows;
	/* The heap zone (ZONE_LEN): read with the sample up to zone_until,
	 * [zone_at, zone_at + zone_len) at buf + zone_off by iovec zone_iov;
	 * zone_len 0 when not read, or it did not arrive.  zone_fails: 0,
	 * read with its tail; 1, without; 2, not read any more. */
	uint64_t zone_at, zone_until;
	uint32_t zone_len, zone_iov, zone_fails;
	size_t zone_off;
	/* Scratch, cap entries: which slots are taken while a new list is
	 * made (0 free, 1 the old list's, 2 the new one's), and the old list
	 * (thread state -> slot) sorted by address. */
	uint8_t *sused;
	struct old_entry { uint64_t addr; uint32_t slot, ghost; } *omap;
	uint32_t nomap;
	uint64_t *nk;          /* scratch: a list being made, and its slots */
	uint32_t *ns;
	/* When the lists are longer than o.max_threads in all: how many
	 * thread states were left out, counted when the lists were last
	 * walked (each interpreter's cut_next names where its list was cut);
	 * else 0. */
	uint32_t left_out;
	/* The thread states met while walking the list, to stop at a cycle:
	 * an open-addressing set like visited (below), 2 * cap slots. */
	struct visit *tset;
	uint32_t tset_mask;
	uint64_t tset_gen;
	int planned;           /* slots[].plan describe known[] */
	uint32_t spec_fails;   /* speculative reads with extra places that failed */
	int extra;             /* this read has extra places in it */
	int spec_ok;           /* the steady state's read was made whole */
	uint64_t nsample;

	struct thread_slot *slots;
	uint8_t *buf;          /* chunk copies */
	size_t buf_used;
	/* buf has buf_cap bytes; a sample that wanted more leaves buf_want
	 * for the next one to grow to (a copy's address is in the queued
	 * iovecs and the walk's locals, so buf never moves within a sample). */
	size_t buf_cap, buf_want, buf_max;

	/* iov_cap pairs; they grow while reads are queued (their contents
	 * point elsewhere), up to iov_max. */
	struct iovec *liov, *riov;
	uint32_t iov_cap, iov_max;
	/* Open-addressing set of frame addresses seen in this walk; an entry
	 * counts only when its generation is the current one, so clearing the
	 * set between walks costs nothing. */
	struct visit { uint64_t addr; uint64_t gen; } *visited;
	uint32_t visited_mask;
	uint64_t visit_gen;

	struct raw_sample sample;
	uint32_t frames_cap, frames_max;

	/* Who holds the GIL: gil_len bytes at gil_addr, read with the sample.
	 * For the 3.12+ model gil_addr is found through gil_ptr_addr. */
	int gil_model;
	uint64_t gil_addr, gil_ptr_addr;
	uint32_t gil_len;
	uint8_t gilbuf[64];

	/* 3.12: the interpreter's trampoline code object, which only shim
	 * frames run; 0 until read. */
	uint64_t trampoline;

	/* py_walker_set_recheck: a stack it calls torn is read again. */
	recheck_fn recheck;
	void *recheck_ctx;
	/* py_walker_set_host: a thread it says has exited is not read
	 * ahead, one it says is idle not at all. */
	host_word_fn host;
	void *host_ctx;
	/* py_walker_set_clock.  copied_ns: when the read the walk's copies
	 * came from began (the sample's, or the re-read's); vread_ns: when
	 * the re-read's call, its copies checked by the second copy in it
	 * (vslot), ended. */
	int64_t (*clock)(void);
	int64_t copied_ns, vread_ns;
	/* py_walker_set_cpu_clock (pyspyc's own thread's CPU time), read with
	 * copied_ns and vread_ns when walks are checked (before 3.11). */
	int64_t (*cpu_clock)(void);
	int64_t copied_cpu, vread_cpu;
	uint64_t copied_reads; /* mem.reads then */
	struct nt_guess nt;
};

static void gil_init(struct py_walker *w, const struct py_target *t)
{
	const struct py_layout *L = w->L;

	w->gil_model = L->gil_model;
	w->gil_len = 8;
	switch (L->gil_model) {
	case PY_GIL_TSTATE_SYMBOL:
		w->gil_addr = t->tstate_current;
		break;
	case PY_GIL_RUNTIME_TSTATE:
		if (L->runtime_tstate_current >= 0)
			w->gil_addr = t->runtime + (uint64_t)L->runtime_tstate_current;
		break;
	case PY_GIL_INTERP_STATE:
		if (L->interp_ceval_gil < 0 || L->gil_locked < 0 || L->gil_last_holder < 0)
			break;
		w->gil_ptr_addr = t->interp + (uint64_t)L->interp_ceval_gil;
		w->gil_len = (uint32_t)(L->gil_locked > L->gil_last_holder ?
					L->gil_locked : L->gil_last_holder) + 8;
		if (w->gil_len > sizeof(w->gilbuf))
			w->gil_ptr_addr = 0;
		break;
	default:
		break;
	}
}

/* 3.12+: a sub-interpreter may have a GIL of its own (the interpreters
 * module makes them so): queue the read of each such GIL, other than the
 * main interpreter's, at *niov.  A GIL pointer is set while the
 * interpreter is made: one not set yet is looked for again each sample. */
static void gil_queue_subs(struct py_walker *w, uint32_t *niov)
{
	uint32_t k;

	if (w->gil_model != PY_GIL_INTERP_STATE || w->ninterps < 2)
		return;
	for (k = 0; k < w->ninterps; k++) {
		struct interp_slot *is = &w->interps[k];
		uint64_t g = 0;

		if (is->addr == w->interp)
			continue;
		if (!is->gil_addr &&
		    !rmem_read_ptr(&w->mem, is->addr + (uint64_t)w->L->interp_ceval_gil, &g) &&
		    !(g & 7))
			is->gil_addr = g;
		memset(is->gilbuf, 0, sizeof(is->gilbuf));
		if (!is->gil_addr || is->gil_addr == w->gil_addr)
			continue;
		rmem_iov(&w->liov[*niov], &w->riov[*niov], is->gilbuf, is->gil_addr, w->gil_len);
		(*niov)++;
	}
}

/* Queue the GIL read at *niov when its address is known. */
static void gil_queue(struct py_walker *w, uint32_t *niov)
{
	if (!w->gil_addr && w->gil_ptr_addr) {
		uint64_t g = 0;

		/* The interpreter's GIL pointer is set once at start-up. */
		if (!rmem_read_ptr(&w->mem, w->gil_ptr_addr, &g) && g && !(g & 7))
			w->gil_addr = g;
	}
	w->sample.gil_known = 0;
	if (!w->gil_addr)
		return;
	memset(w->gilbuf, 0, sizeof(w->gilbuf));
	rmem_iov(&w->liov[*niov], &w->riov[*niov], w->gilbuf, w->gil_addr, w->gil_len);
	(*niov)++;
	w->sample.gil_known = 1;
	gil_queue_subs(w, niov);
}

/* After the read: the holders of the sub-interpreters' own GILs.  A GIL
 * read as all zero (not read) has none. */
static void gil_decode_subs(struct py_walker *w)
{
	const struct py_layout *L = w->L;
	uint32_t k;
	int32_t locked;

	w->nholders = 0;
	if (w->gil_model != PY_GIL_INTERP_STATE || w->ninterps < 2)
		return;
	for (k = 0; k < w->ninterps; k++) {
		const struct interp_slot *is = &w->interps[k];

		memcpy(&locked, is->gilbuf + L->gil_locked, sizeof(locked));
		if (locked == 1 && rd64(is->gilbuf, L->gil_last_holder))
			w->holders[w->nholders++] = rd64(is->gilbuf, L->gil_last_holder);
	}
	if (!w->sample.gil_holder && w->nholders)
		w->sample.gil_holder = w->holders[0];
}

/* After the read: the holder's thread state, or 0. */
static void gil_decode(struct py_walker *w)
{
	const struct py_layout *L = w->L;
	int32_t locked;

	w->sample.gil_holder = 0;
	w->nholders = 0;
	if (!w->sample.gil_known)
		return;
	if (w->gil_model != PY_GIL_INTERP_STATE) {
		w->sample.gil_holder = rd64(w->gilbuf, 0);
		return;
	}
	memcpy(&locked, w->gilbuf + L->gil_locked, sizeof(locked));
	if (locked == 1)
		w->sample.gil_holder = rd64(w->gilbuf, L->gil_last_holder);
	gil_decode_subs(w);
}

/* Does thread state ts hold its interpreter's GIL at this sample? */
static int gil_holds(const struct py_walker *w, uint64_t ts)
{
	uint32_t k;

	if (w->sample.gil_holder == ts)
		return ts != 0;
	for (k = 0; k < w->nholders; k++)
		if (w->holders[k] == ts)
			return 1;
	return 0;
}

/* Room for n threads (n <= o.max_threads): 0 or -ENOMEM, nothing lost. */
static int grow_threads(struct py_walker *w, uint32_t n)
{
	size_t tsz = (size_t)w->L->tstate_size;
	uint32_t cap = w->cap, tcap;
	void *p;

	if (n <= cap)
		return 0;
	cap = cap * 2 > n ? cap * 2 : n;
	if (cap > w->o.max_threads)
		cap = w->o.max_threads;
	if (!(p = realloc(w->tsbuf, (size_t)cap * tsz)))
		return -ENOMEM;
	w->tsbuf = p;
	if (!(p = realloc(w->known, (size_t)cap * sizeof(*w->known))))
		return -ENOMEM;
	w->known = p;
	if (!(p = realloc(w->sidx, (size_t)cap * sizeof(*w->sidx))))
		return -ENOMEM;
	w->sidx = p;
	if (!(p = realloc(w->sused, (size_t)cap)))
		return -ENOMEM;
	w->sused = p;
	memset(w->sused + w->cap, 0, cap - w->cap);
	if (!(p = realloc(w->omap, (size_t)cap * sizeof(*w->omap))))
		return -ENOMEM;
	w->omap = p;
	if (!(p = realloc(w->nk, (size_t)cap * sizeof(*w->nk))))
		return -ENOMEM;
	w->nk = p;
	if (!(p = realloc(w->ns, (size_t)cap * sizeof(*w->ns))))
		return -ENOMEM;
	w->ns = p;
	if (!(p = realloc(w->sample.threads, (size_t)cap * sizeof(*w->sample.threads))))
		return -ENOMEM;
	w->sample.threads = p;
	if (!(p = realloc(w->slots, (size_t)cap * sizeof(*w->slots))))
		return -ENOMEM;
	w->slots = p;
	memset(w->slots + w->cap, 0, (size_t)(cap - w->cap) * sizeof(*w->slots));
	for (tcap = 64; tcap < 2 * cap; tcap <<= 1)
		;
	if (!(p = calloc(tcap, sizeof(*w->tset))))
		return -ENOMEM;
	free(w->tset);
	w->tset = p;
	w->tset_mask = tcap - 1;
	w->tset_gen = 1; /* its slots are all of generation 0: empty */
	w->cap = cap;
	return 0;
}

/* Room for n iovec pairs (n <= iov_max): 1, or 0 when there is none. */
static int iov_room(struct py_walker *w, uint32_t n)
{
	uint32_t cap = w->iov_cap;
	struct iovec *l, *r;

	if (n <= cap)
		return 1;
	if (n > w->iov_max)
		return 0;
	cap = cap * 2 > n ? cap * 2 : n;
	if (cap > w->iov_max)
		cap = w->iov_max;
	l = realloc(w->liov, (size_t)cap * sizeof(*l));
	if (!l)
		return 0;
	w->liov = l;
	r = realloc(w->riov, (size_t)cap * sizeof(*r));
	if (!r)
		return 0;
	w->riov = r;
	w->iov_cap = cap;
	return 1;
}

/* Is there room for len more copied bytes in this sample?  When not, the
 * next sample has more (see buf_want). */
static int buf_room(struct py_walker *w, uint64_t len)
{
	if (w->buf_used + len <= w->buf_cap)
		return 1;
	if (w->buf_used + len > w->buf_want)
		w->buf_want = w->buf_used + len;
	return 0;
}

/* Between samples: grow buf to what the last sample wanted. */
static void grow_buf(struct py_walker *w)
{
	size_t cap = w->buf_cap * 2;
	uint8_t *p;

	if (w->buf_want <= w->buf_cap || w->buf_cap >= w->buf_max)
		return;
	if (cap < w->buf_want)
		cap = w->buf_want;
	if (cap > w->buf_max)
		cap = w->buf_max;
	p = realloc(w->buf, cap);
	if (p) {
		w->buf = p;
		w->buf_cap = cap;
	}
	w->buf_want = 0;
}

/* Room for n more frames in the sample (bounded by frames_max). */
static void frames_room(struct py_walker *w, uint32_t n)
{
	struct raw_sample *rs = &w->sample;
	uint64_t need = (uint64_t)rs->nframes + n;
	uint32_t cap = w->frames_cap;
	void *p;

	if (need <= cap || cap >= w->frames_max)
		return;
	cap = (uint64_t)cap * 2 > need ? cap * 2 : (uint32_t)need;
	if (cap > w->frames_max)
		cap = w->frames_max;
	if (!(p = realloc(rs->frames, (size_t)cap * sizeof(*rs->frames))))
		return;
	rs->frames = p;
	if (!(p = realloc(rs->addrs, (size_t)cap * sizeof(*rs->addrs))))
		return;
	rs->addrs = p;
	w->frames_cap = cap;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int py_walker_new(struct py_walker **out, const struct py_target *t,
		  const struct walk_opts *o)
{
	struct py_walker *w;
	uint32_t vcap = 64;

	*out = NULL;
	if (!o->max_depth || !o->max_threads || o->max_threads > PY_WALK_MAX_THREADS ||
	    py_layout_check(t->layout))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	rmem_init(&w->mem, t->pid);
	w->L = t->layout;
	w->interp = t->interp;
	w->runtime = t->runtime;
	w->o = *o;
	w->clock = mono_ns;
	w->cpu_clock = thread_cpu_ns;
	/* Room for a walk's frames, and for the frames read ahead when the
	 * next plan is made (plan_spec_frames). */
	while (vcap < 2 * o->max_depth || vcap < 2 * MAX_SPEC_FRAMES)
		vcap <<= 1;
	w->visited_mask = vcap - 1;
	gil_init(w, t);
	/* A sample's frames: max_depth per thread, bounded overall; room for
	 * FRAMES_PER_THREAD per thread is made as threads come. */
	w->frames_cap = o->max_depth * 4 > 65536 ? o->max_depth * 4 : 65536;
	w->frames_max = w->frames_cap;
	if ((uint64_t)o->max_threads * FRAMES_PER_THREAD > w->frames_max)
		w->frames_max = o->max_threads * FRAMES_PER_THREAD;
	w->buf_cap = COPY_BUF_BYTES;
	w->buf_max = (size_t)o->max_threads * COPY_BYTES_PER_THREAD;
	if (w->buf_max < COPY_BUF_BYTES)
		w->buf_max = COPY_BUF_BYTES;
	w->iov_cap = RMEM_MAX_IOV;
	w->iov_max = o->max_threads * IOVS_PER_THREAD + RMEM_MAX_IOV;
	w->buf = malloc(w->buf_cap);
	if (t->layout->frame_model == PY_FRAMES_OBJECTS)
		w->pbuf = malloc((size_t)WALK_PAGES * 2 * SPEC_PAGE);
	w->liov = calloc(w->iov_cap, sizeof(*w->liov));
	w->riov = calloc(w->iov_cap, sizeof(*w->riov));
	w->visited = calloc(vcap, sizeof(*w->visited));
	w->sample.frames = calloc(w->frames_cap, sizeof(*w->sample.frames));
	w->sample.addrs = calloc(w->frames_cap, sizeof(*w->sample.addrs));
	if (!w->buf || !w->liov || !w->riov || !w->visited || !w->sample.frames ||
	    !w->sample.addrs ||
	    grow_threads(w, o->max_threads < FIRST_THREADS ? o->max_threads : FIRST_THREADS)) {
		py_walker_free(w);
		return -ENOMEM;
	}
	*out = w;
	return 0;
}

void py_walker_free(struct py_walker *w)
{
	if (!w)
		return;
	free(w->tsbuf);
	free(w->known);
	free(w->sidx);
	free(w->sused);
	free(w->omap);
	free(w->nk);
	free(w->ns);
	free(w->slots);
	free(w->buf);
	free(w->pbuf);
	free(w->liov);
	free(w->riov);
	free(w->visited);
	free(w->tset);
	free(w->sample.threads);
	free(w->sample.frames);
	free(w->sample.addrs);
	free(w->skeys);
	free(w->order); /* group[] and the inverse map are in it */
	free(w);
}

struct rmem *py_walker_mem(struct py_walker *w)
{
	return &w->mem;
}

void py_walker_set_recheck(struct py_walker *w, recheck_fn fn, void *ctx)
{
	w->recheck = fn;
	w->recheck_ctx = ctx;
}

void py_walker_set_clock(struct py_walker *w, int64_t (*clock)(void))
{
	w->clock = clock ? clock : mono_ns;
}

void py_walker_set_cpu_clock(struct py_walker *w, int64_t (*clock)(void))
{
	w->cpu_clock = clock ? clock : thread_cpu_ns;
}

/* The CPU clock, where walks are checked by it (frame objects). */
static int64_t walk_cpu(const struct py_walker *w)
{
	return w->L->frame_model == PY_FRAMES_OBJECTS ? w->cpu_clock() : 0;
}

/* When the copies a walk is made from are read: the pages walks read
 * before are not among them. */
static void copies_read(struct py_walker *w)
{
	w->npcopies = 0;
	w->copied_ns = w->clock();
	w->copied_cpu = walk_cpu(w);
	w->copied_reads = w->mem.reads;
}

void py_walker_set_host(struct py_walker *w, host_word_fn host, void *ctx)
{
	w->host = host;
	w->host_ctx = ctx;
}

/* The OS thread id in thread state ts (3.11+), 0 where the layout has
 * none. */
static uint64_t ts_native(const struct py_layout *L, const uint8_t *ts)
{
	return L->tstate_native_thread_id < 0 ? 0 : rd64(ts, L->tstate_native_thread_id);
}

/* known[i]'s thread state as last read, and its slot. */
static uint8_t *ts_row(const struct py_walker *w, uint32_t i)
{
	return w->tsbuf + (size_t)w->sidx[i] * (size_t)w->L->tstate_size;
}

static struct thread_slot *slot_of(struct py_walker *w, uint32_t i)
{
	return &w->slots[w->sidx[i]];
}

/* Do the interpreter list and every interpreter's thread list read with
 * the sample (the heads and next pointers, and the thread states into
 * tsbuf) match what the last list walk saw? */
static int list_matches(struct py_walker *w)
{
	const struct py_layout *L = w->L;
	uint32_t i, k;

	if (w->ihead_rd != w->interps[0].addr)
		return 0;
	for (k = 0; k < w->ninterps; k++) {
		const struct interp_slot *is = &w->interps[k];

		if (is->next_rd != is->next ||
		    is->head_rd != (is->n ? w->known[is->first] : is->cut_next))
			return 0;
		for (i = is->first; i < is->first + is->n; i++) {
			const uint8_t *ts = ts_row(w, i);
			uint64_t next = rd64(ts, L->tstate_next);

			if (rd64(ts, L->tstate_interp) != is->addr)
				return 0;
			if (next != (i + 1 < is->first + is->n ? w->known[i + 1] : is->cut_next))
				return 0;
		}
	}
	return 1;
}

/* Insert addr into the open-addressing set (mask + 1 slots; a slot of
 * another generation than gen is empty); returns 1 if it was there already
 * (or the set is full, which its users' sizes rule out). */
static int visit_test_set(struct visit *set, uint32_t mask, uint64_t gen, uint64_t addr)
{
	uint64_t i = (addr >> 4) * 0x9e3779b97f4a7c15ull;
	uint32_t probes;

	for (probes = 0, i &= mask; probes <= mask; probes++, i = (i + 1) & mask) {
		struct visit *v = &set[i];

		if (v->gen != gen) {
			*v = (struct visit){ .addr = addr, .gen = gen };
			return 0;
		}
		if (v->addr == addr)
			return 1;
	}
	return 1;
}

/* Insert thread state t into tset (2 * cap slots for cap threads). */
static int tset_test_set(struct py_walker *w, uint64_t t)
{
	return visit_test_set(w->tset, w->tset_mask, w->tset_gen, t);
}

/* The thread states from t on, left out by --max-threads: counted by their
 * links alone, up to PY_WALK_MAX_THREADS, stopping at an unreadable link
 * or a cycle (Brent's: the saved node is met again). */
static uint32_t count_rest(struct py_walker *w, uint64_t t)
{
	uint64_t saved = 0, power = 1, lam = 0;
	uint32_t n = 0;

	while (t && n < PY_WALK_MAX_THREADS) {
		if (t == saved)
			break;
		n++;
		if (++lam == power) {
			saved = t;
			power *= 2;
			lam = 0;
		}
		if (rmem_read_ptr(&w->mem, t + (uint64_t)w->L->tstate_next, &t))
			break;
	}
	return n;
}

static int cmp_old(const void *a, const void *b)
{
	const struct old_entry *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Before a new list is made: the old one and the ghosts, thread state ->
 * slot, into omap (sorted), their slots marked taken by the old list. */
static void old_snapshot(struct py_walker *w)
{
	uint32_t i, n = 0;

	memset(w->sused, 0, w->cap);
	for (i = 0; i < w->nknown; i++) {
		w->omap[n++] = (struct old_entry){ .addr = w->known[i], .slot = w->sidx[i] };
		w->sused[w->sidx[i]] = 1;
	}
	for (i = 0; i < w->nghost && n < w->cap; i++) {
		w->omap[n++] = (struct old_entry){ .addr = w->ghost[i], .slot = w->gslot[i],
						   .ghost = i + 1 };
		w->sused[w->gslot[i]] = 1;
	}
	qsort(w->omap, n, sizeof(*w->omap), cmp_old);
	w->nomap = n;
}

static const struct old_entry *find_old(const struct py_walker *w, uint64_t t)
{
	const struct old_entry key = { .addr = t };

	return bsearch(&key, w->omap, w->nomap, sizeof(*w->omap), cmp_old);
}

/* A slot for thread state t in the new list: its own (it was in the list,
 * or a ghost), else a free one, else one of the old list's not met yet
 * (its plan is lost).  There is one while fewer than cap are taken (marked
 * 2): the caller marks it once the thread state was read into it, so
 * that one that could not be read (the walk stops there, and goes on in
 * the next interpreter's list) takes none. */
static uint32_t pick_slot(const struct py_walker *w, uint64_t t)
{
	const struct old_entry *o = find_old(w, t);
	uint32_t k;

	if (o && w->sused[o->slot] == 1)
		return o->slot;
	for (k = 0; k < w->cap && w->sused[k]; k++)
		;
	if (k == w->cap)
		for (k = 0; k < w->cap && w->sused[k] == 2; k++)
			;
	return k;
}

/* After a new list is made: the thread states of the old one not in it
 * are ghosts now, before the older ghosts, NGHOST in all, in slots left
 * free by the new list. */
static void nt_freed(struct py_walker *w, const struct thread_slot *s);

static void ghosts_update(struct py_walker *w)
{
	uint64_t ghost[NGHOST], since[NGHOST];
	uint32_t slot[NGHOST], i, n = 0;

	for (i = 0; i < w->nomap && n < NGHOST; i++) {
		const struct old_entry *o = &w->omap[i];

		if (o->ghost || w->sused[o->slot] != 1)
			continue;
		w->sused[o->slot] = 2;
		nt_freed(w, &w->slots[o->slot]);
		ghost[n] = o->addr;
		slot[n] = o->slot;
		since[n++] = w->nsample;
	}
	for (i = 0; i < w->nghost && n < NGHOST; i++) {
		if (w->sused[w->gslot[i]] != 1)
			continue;
		w->sused[w->gslot[i]] = 2;
		ghost[n] = w->ghost[i];
		slot[n] = w->gslot[i];
		since[n++] = w->gsince[i];
	}
	memcpy(w->ghost, ghost, n * sizeof(*ghost));
	memcpy(w->gslot, slot, n * sizeof(*slot));
	memcpy(w->gsince, since, n * sizeof(*since));
	w->nghost = n;
}

/* Walk the thread list of interpreter slot is from t, one thread state at
 * a time, into known[] from w->nknown.  Past --max-threads in all (the
 * lists run from the newest thread) the rest is left out, counted, and the
 * next samples check the list still ends where it was cut. */
static int read_interp_threads(struct py_walker *w, struct interp_slot *is, uint64_t t)
{
	const struct py_layout *L = w->L;
	uint32_t i, n = w->nknown;
	int err, cut = 0;

	is->first = n;
	is->cut_next = 0;
	while (t && n < w->o.max_threads) {
		uint8_t *ts;

		if (n == w->cap) {
			if (grow_threads(w, n + 1)) {
				cut = 1; /* no memory: read what fits, count the rest */
				break;
			}
			for (i = 0; i < n; i++)
				tset_test_set(w, w->known[i]);
		}
		if (tset_test_set(w, t))
			break; /* a cycle: stop at the repeat */
		w->sidx[n] = pick_slot(w, t);
		ts = w->tsbuf + (size_t)w->sidx[n] * L->tstate_size;
		err = rmem_read(&w->mem, t, ts, (size_t)L->tstate_size);
		if (err == -ESRCH)
			return err;
		if (err || rd64(ts, L->tstate_interp) != is->addr)
			break; /* a thread state torn down under us: drop the rest */
		w->sused[w->sidx[n]] = 2;
		w->known[n++] = t;
		t = rd64(ts, L->tstate_next);
	}
	if (t && (cut || n == w->o.max_threads)) {
		is->cut_next = t;
		w->left_out += count_rest(w, t);
	}
	is->n = n - is->first;
	w->nknown = n;
	return 0;
}

/* Add interpreter addr to the list walked, with its threads; *next gets its
 * next pointer.  A sub-interpreter's GIL pointer is read again (its
 * address may be a new interpreter's).  Returns 0, -ESRCH, or -EFAULT when
 * the interpreter could not be read (freed under us). */
static int read_interp(struct py_walker *w, uint64_t addr, uint64_t *next)
{
	const struct py_layout *L = w->L;
	struct interp_slot *is = &w->interps[w->ninterps];
	uint64_t head = 0;
	int err;

	if (addr & 7)
		return -EFAULT;
	err = rmem_read_ptr(&w->mem, addr + (uint64_t)L->interp_next, next);
	if (!err)
		err = rmem_read_ptr(&w->mem, addr + (uint64_t)L->interp_threads_head, &head);
	if (err)
		return err == -ESRCH ? err : -EFAULT;
	memset(is, 0, sizeof(*is));
	is->addr = addr;
	is->next = *next;
	w->ninterps++;
	return read_interp_threads(w, is, head);
}

/* Walk the runtime's interpreter list, newest first, and each one's thread
 * list.  At most PY_MAX_INTERPS of them (interps_capped when there are
 * more); the main interpreter is always walked, added at the end when the
 * list did not reach it (cut short, a loop, one freed under us).  Returns
 * 0, -ESRCH, another -errno of reading the head, or -ESTALE when the whole
 * list was read and the main interpreter is not in it: the runtime was
 * finalized (and maybe initialised anew by an embedding host). */
static int read_threads_from(struct py_walker *w);

static int read_threads(struct py_walker *w)
{
	uint32_t want;
	int err;

	old_snapshot(w);
	err = read_threads_from(w);
	if (err) {
		w->nghost = 0; /* their slots may be in the partial list */
		return err;
	}
	ghosts_update(w);
	/* Room for the ghosts beside the list next time. */
	want = w->nknown + NGHOST < w->o.max_threads ? w->nknown + NGHOST : w->o.max_threads;
	if (w->cap < want)
		(void)grow_threads(w, want);
	return err;
}

static int read_threads_from(struct py_walker *w)
{
	uint64_t ip, next;
	uint32_t k;
	int err, main_seen = 0;

	err = rmem_read_ptr(&w->mem, w->runtime + (uint64_t)w->L->runtime_interp_head, &ip);
	if (err)
		return err;
	w->ihead_rd = ip;
	w->ninterps = 0;
	w->nknown = 0;
	w->interps_capped = 0;
	w->left_out = 0;
	w->tset_gen++;
	while (ip) {
		if (w->ninterps == PY_MAX_INTERPS) {
			w->interps_capped = 1;
			break;
		}
		for (k = 0; k < w->ninterps && w->interps[k].addr != ip; k++)
			;
		if (k < w->ninterps)
			break; /* a loop: stop at the repeat */
		err = read_interp(w, ip, &next);
		if (err == -ESRCH)
			return err;
		if (err)
			break;
		main_seen |= ip == w->interp;
		ip = next;
	}
	if (main_seen)
		return 0;
	if (!ip)
		return -ESTALE;
	err = read_interp(w, w->interp, &next);
	return err == -EFAULT ? -ESTALE : err;
}

/* The places to read a 3.11/3.12 thread's current frame pointer at: its
 * _PyCFrame, and while it keeps moving, the last places it was at. */
static void plan_cframes(struct py_walker *w, struct thread_slot *s)
{
	struct plan *p = &s->plan;
	uint64_t cf = p->cframe, lo = cf, hi = cf;
	uint32_t k;

	p->ncfs = 0;
	p->cfw_len = 0;
	if (w->L->frame_model == PY_FRAMES_OBJECTS || w->L->tstate_current_frame >= 0 || !cf)
		return;
	recent_push(s->cf_recent, &s->ncf_recent, CF_RECENT, cf);
	p->cfs[p->ncfs++] = cf;
	if (!s->cf_hot)
		return;
	s->cf_hot--;
	if (w->spec_fails >= SPEC_FAILS_MAX)
		return;
	for (k = 1; k < s->ncf_recent; k++) {
		p->cfs[p->ncfs++] = s->cf_recent[k];
		lo = s->cf_recent[k] < lo ? s->cf_recent[k] : lo;
		hi = s->cf_recent[k] > hi ? s->cf_recent[k] : hi;
	}
	/* One window over the places seen, from CF_BELOW under the lowest to
	 * CF_ABOVE over the highest, CF_WINDOW bytes at most: a C call path
	 * of another depth puts the cframe lower (the stack grows down).  A
	 * gunicorn sync worker under load (Flask, 3.11, 1 kHz): of 9,600
	 * samples, 99.3% found it at or above the lowest place seen, the
	 * rest within 1 KB under it; a fixed 8 KB window read 2.5 pages
	 * where this reads 1.5 (3.7 KB on average). */
	hi += (uint64_t)w->L->cframe_current_frame + 8 + CF_ABOVE;
	if (hi - lo > CF_WINDOW - CF_ABOVE || hi < CF_WINDOW)
		return;
	lo = lo - CF_BELOW < hi - CF_WINDOW ? hi - CF_WINDOW : lo - CF_BELOW;
	p->cfw_lo = lo & ~(uint64_t)7;
	p->cfw_len = (uint32_t)(hi - p->cfw_lo);
}

static void visited_clear(struct py_walker *w)
{
	w->visit_gen++;
}

/* Insert f; returns 1 if it was already there. */
static int visited_test_set(struct py_walker *w, uint64_t f)
{
	return visit_test_set(w->visited, w->visited_mask, w->visit_gen, f);
}

/* 3.11+: the frames outside the chunks to read with the next sample: those
 * this walk read one by one, then those of recent walks not met for at
 * most SPEC_KEEP samples. */
static void plan_spec_frames(struct py_walker *w, struct thread_slot *s)
{
	struct plan *p = &s->plan;
	uint64_t keep[MAX_SPEC_FRAMES], seen[MAX_SPEC_FRAMES];
	uint32_t n = 0, k;

	/* The walk's visited set, between walks, finds the frames listed
	 * already without comparing every pair. */
	visited_clear(w);
	for (k = 0; k < s->nwalked; k++)
		visited_test_set(w, s->walked[k]);
	for (k = 0; k < p->nframes && w->spec_fails < SPEC_FAILS_MAX; k++) {
		if (w->nsample - p->frame_seen[k] > SPEC_KEEP ||
		    visited_test_set(w, p->frames[k]))
			continue;
		keep[n] = p->frames[k];
		seen[n++] = p->frame_seen[k];
	}
	p->nframes = 0;
	for (k = 0; k < s->nwalked; k++) {
		p->frames[p->nframes] = s->walked[k];
		p->frame_seen[p->nframes++] = w->nsample;
	}
	for (k = 0; k < n && p->nframes < MAX_SPEC_FRAMES; k++) {
		p->frames[p->nframes] = keep[k];
		p->frame_seen[p->nframes++] = seen[k];
	}
}

/* 3.11 and 3.12: the current frame pointer is in a _PyCFrame. */
static int nt_cframes(const struct py_layout *L)
{
	return L->tstate_cframe >= 0 && L->tstate_current_frame < 0;
}

/* 3.12+: each entry into the interpreter loop pushes a shim frame on the
 * thread's own C stack (see NT_SHIMS). */
static int nt_shim_frames(const struct py_layout *L)
{
	return L->iframe_owned_by_cstack >= 0 && L->frame_model != PY_FRAMES_OBJECTS;
}

/* Note in v[0..*n) (cap at most), with the sample each was last met at,
 * that x was met now: the one met longest ago makes room. */
static void nt_met(uint64_t *v, uint64_t *seen, uint32_t *n, uint32_t cap, uint64_t x,
		   uint64_t now)
{
	uint32_t k, j;

	for (k = 0; k < *n && v[k] != x; k++)
		;
	if (k == *n && *n < cap) {
		(*n)++;
	} else if (k == *n) {
		for (k = 0, j = 1; j < cap; j++)
			if (seen[j] < seen[k])
				k = j;
	}
	v[k] = x;
	seen[k] = now;
}

/* The thread of slot s has left the list: its stacks were freed now. */
static void nt_freed(struct py_walker *w, const struct thread_slot *s)
{
	struct nt_guess *g = &w->nt;
	uint32_t k;

	for (k = 0; k < g->nstack; k++)
		if (g->stack[k] == s->thread_id)
			g->stack_seen[k] = w->nsample;
	for (k = 0; k < g->nchunk; k++)
		if (g->chunk[k] == s->plan.chunk)
			g->chunk_seen[k] = w->nsample;
}

/* Learn from a thread's fresh thread state ts where its stacks are. */
static void nt_learn(struct py_walker *w, const uint8_t *ts)
{
	const struct py_layout *L = w->L;
	struct nt_guess *g = &w->nt;
	uint64_t chunk = rd64(ts, L->tstate_datastack_chunk);
	uint64_t top = rd64(ts, L->tstate_datastack_top);
	uint64_t off = 0;

	if (!chunk || top <= chunk || top - chunk > CHUNK_MIN_SIZE)
		return;
	if (nt_cframes(L)) {
		uint64_t tid = rd64(ts, L->tstate_thread_id);
		uint64_t cf = rd64(ts, L->tstate_cframe);

		if (!cf || cf >= tid || tid - cf > NT_OFF_MAX)
			return;
		off = tid - cf;
		nt_met(g->stack, g->stack_seen, &g->nstack, NT_STACKS, tid, w->nsample);
	} else if (nt_shim_frames(L)) {
		uint64_t tid = rd64(ts, L->tstate_thread_id);

		/* 3.13+: no _PyCFrame; the stack for its shim frames. */
		if (tid && !(tid & 7))
			nt_met(g->stack, g->stack_seen, &g->nstack, NT_STACKS, tid, w->nsample);
	}
	nt_met(g->chunk, g->chunk_seen, &g->nchunk, NT_CHUNKS, chunk, w->nsample);
	g->off[g->next] = (uint32_t)off;
	g->top[g->next] = (uint32_t)(top - chunk);
	g->next = (g->next + 1) % NT_SEEN;
	if (g->nseen < NT_SEEN)
		g->nseen++;
}

static int host_word(const struct py_walker *w, uint32_t i);

/* Of v[0..n), up to NT_GUESS values none of used[0..nused) is (stacks or
 * chunks free now), into out, the most likely first: the highest when
 * by_addr (the kernel maps a new chunk at the highest hole that fits),
 * else the one met last (glibc hands out the stack freed last; one of
 * exited[0..nexited), a thread the host says has exited, freed its
 * stack just now).  Returns how many. */
static uint32_t nt_free(const struct py_walker *w, const uint64_t *v, const uint64_t *seen,
			uint32_t n, const uint64_t *used, uint32_t nused, const uint64_t *exited,
			uint32_t nexited, int by_addr, uint64_t *out)
{
	uint64_t key[NT_GUESS], kk;
	uint32_t k, i, m = 0, j;

	for (k = 0; k < n; k++) {
		for (i = 0; i < nused && used[i] != v[k]; i++)
			;
		if (i < nused)
			continue;
		kk = by_addr ? v[k] : seen[k] + 1;
		for (i = 0; !by_addr && i < nexited; i++)
			if (exited[i] == v[k])
				kk = w->nsample + 1;
		for (j = m; j > 0 && key[j - 1] < kk; j--)
			if (j < NT_GUESS) {
				key[j] = key[j - 1];
				out[j] = out[j - 1];
			}
		if (j < NT_GUESS) {
			key[j] = kk;
			out[j] = v[k];
			m += m < NT_GUESS;
		}
	}
	return m;
}

static void nt_piece(struct py_walker *w, struct nt_piece *pc, uint64_t at, uint32_t len,
		     uint32_t *niov)
{
	pc->at = at;
	pc->len = len;
	pc->off = w->buf_used;
	pc->iov = *niov;
	pc->ok = 0;
	rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, at, len);
	(*niov)++;
	w->buf_used += len;
}

/* Widen the depths [*lo, *hi] under a stack's top by those of the shim
 * frames met lately (NT_SHIMS), each while a window over them all, frame
 * bytes past the shallowest, still fits in CF_WINDOW. */
static void shim_span(const struct nt_guess *g, uint64_t frame, uint64_t *lo, uint64_t *hi)
{
	uint32_t k;

	for (k = 0; k < g->nshim; k++) {
		uint64_t d = g->shim[k];
		uint64_t nlo = d < *lo ? d : *lo, nhi = d > *hi ? d : *hi;

		if (nhi - nlo + frame <= CF_WINDOW) {
			*lo = nlo;
			*hi = nhi;
		}
	}
}

/* Make r the guesses of a new thread's places, up to max stacks and as
 * many chunks, and queue their reads at *niov (optional ones: the kernel
 * stops at the first it cannot read, so the stacks, which stay mapped, go
 * first, then the chunks, the likeliest first).  Nothing when there is no
 * guess to make, or no room. */
static void nt_queue(struct py_walker *w, struct nt_read *r, uint32_t *niov, uint32_t max)
{
	const struct py_layout *L = w->L;
	struct nt_guess *g = &w->nt;
	uint64_t lo = UINT64_MAX, hi = 0, deep = 0, end;
	uint64_t stacks[NT_GUESS], chunks[NT_GUESS];
	uint64_t used_st[NT_KNOWN_MAX], used_ch[NT_KNOWN_MAX], exited[NT_KNOWN_MAX];
	uint32_t k, nst = 0, nch, clen, wlen = 0, nused = 0, nexited = 0;

	r->ncfw = r->nchunk = 0;
	r->shim_len = 0;
	if (!g->nseen || L->frame_model == PY_FRAMES_OBJECTS)
		return;
	for (k = 0; k < g->nseen; k++) {
		lo = g->off[k] < lo ? g->off[k] : lo;
		hi = g->off[k] > hi ? g->off[k] : hi;
		deep = g->top[k] > deep ? g->top[k] : deep;
	}
	/* The stacks and chunks of the threads alive, by the host's word. */
	if (w->nknown > NT_KNOWN_MAX)
		return;
	for (k = 0; k < w->nknown; k++) {
		const uint8_t *ts = ts_row(w, k);

		if (host_word(w, k) == HOST_EXITED) {
			exited[nexited++] = rd64(ts, L->tstate_thread_id);
			continue;
		}
		used_st[nused] = rd64(ts, L->tstate_thread_id);
		used_ch[nused++] = rd64(ts, L->tstate_datastack_chunk);
	}
	nch = nt_free(w, g->chunk, g->chunk_seen, g->nchunk, used_ch, nused, NULL, 0, 1, chunks);
	clen = (uint32_t)(deep + CHUNK_SLACK < CHUNK_MIN_SIZE ? deep + CHUNK_SLACK : CHUNK_MIN_SIZE);
	if (nt_cframes(L)) {
		uint64_t fend = (uint64_t)L->cframe_current_frame + 8, sh = lo;

		/* From the deepest place seen to past the shallowest one's
		 * pointer; and the shim frames' depths when that still fits. */
		shim_span(g, (uint64_t)L->iframe_size, &sh, &hi);
		if (sh < lo) {
			lo = sh;
			if ((uint64_t)L->iframe_size > fend)
				fend = (uint64_t)L->iframe_size;
		}
		end = hi - lo + fend;
		if (end > CF_WINDOW)
			return;
		wlen = (uint32_t)end;
		nst = nt_free(w, g->stack, g->stack_seen, g->nstack, used_st, nused, exited, nexited,
			      0, stacks);
		if (!nst)
			return;
	} else if (nt_shim_frames(L) && g->nshim) {
		/* 3.13+: the current frame pointer comes with the thread
		 * state; the window is of the shim frames' depths only, and
		 * the chunks are worth reading without it. */
		uint64_t slo = g->shim[0], shi = g->shim[0];

		shim_span(g, (uint64_t)L->iframe_size, &slo, &shi);
		hi = shi;
		wlen = (uint32_t)(shi - slo + (uint64_t)L->iframe_size);
		nst = nt_free(w, g->stack, g->stack_seen, g->nstack, used_st, nused, exited, nexited,
			      0, stacks);
		if (nst && wlen <= CF_WINDOW) {
			r->shim_hi = shi;
			r->shim_len = wlen;
		} else {
			nst = 0;
		}
	}
	nst = nst < max ? nst : max;
	nch = nch < max ? nch : max;
	if (!nch || !iov_room(w, *niov + nst + nch) || !buf_room(w, nst * wlen + nch * clen))
		return;
	for (k = 0; k < nst; k++)
		if (stacks[k] > hi && !((stacks[k] - hi) & 7))
			nt_piece(w, &r->cfw[r->ncfw++], stacks[k] - hi, wlen, niov);
	for (k = 0; k < nch; k++)
		nt_piece(w, &r->chunk[r->nchunk++], chunks[k], clen, niov);
}

/* Which of r's reads arrived: the call's optional reads began at iovec
 * first, and done of them arrived.  A window that did not is of a stack
 * unmapped (glibc keeps only so many): it is forgotten, so as not to stop
 * the reads after it again.  A chunk that did not was freed, and is where
 * the next new thread's will most likely be: it stays. */
static void nt_arrived(struct py_walker *w, struct nt_read *r, uint32_t first, size_t done)
{
	struct nt_guess *g = &w->nt;
	uint32_t k, j;

	for (k = 0; k < r->nchunk; k++)
		r->chunk[k].ok = r->chunk[k].iov - first < done;
	for (k = 0; k < r->ncfw; k++) {
		r->cfw[k].ok = r->cfw[k].iov - first < done;
		if (r->cfw[k].iov - first != done)
			continue;
		for (j = 0; j < g->nstack; j++)
			if (g->stack[j] > r->cfw[k].at && g->stack[j] - r->cfw[k].at <= NT_OFF_MAX) {
				g->stack[j] = g->stack[g->nstack - 1];
				g->stack_seen[j] = g->stack_seen[g->nstack - 1];
				g->nstack--;
				break;
			}
	}
}

/* A thread with no frames to read ahead and none read one by one yet
 * (3.12+): its shim frames' places guessed by the depths other threads had
 * them at (NT_SHIMS), as frames to read ahead, kept only if the walk meets
 * them.  Returns 1 when some were guessed. */
static int nt_shim_guess(struct py_walker *w, struct thread_slot *s)
{
	struct plan *p = &s->plan;
	uint32_t k;

	if (s->nwalked || p->nframes || !nt_shim_frames(w->L) || !s->thread_id)
		return 0;
	for (k = 0; k < w->nt.nshim && p->nframes < MAX_SPEC_FRAMES; k++) {
		if (w->nt.shim[k] >= s->thread_id || (w->nt.shim[k] & 7))
			continue;
		p->frames[p->nframes] = s->thread_id - w->nt.shim[k];
		p->frame_seen[p->nframes++] = w->nsample - SPEC_KEEP - 1;
	}
	return p->nframes != 0;
}

/* Work out slot i's plan from its thread state in tsbuf. */
static void plan_thread(struct py_walker *w, uint32_t i)
{
	const struct py_layout *L = w->L;
	const uint8_t *ts = ts_row(w, i);
	struct thread_slot *s = slot_of(w, i);
	struct plan *p = &s->plan;
	uint64_t chunk, top, last_chunk = p->chunk;
	uint32_t k;

	if (s->tstate != w->known[i] || s->thread_id != rd64(ts, L->tstate_thread_id)) {
		/* Another thread in this slot (a new thread's state may be
		 * where an ended one's was, its C stack elsewhere): forget the
		 * last one's places. */
		s->thread_id = rd64(ts, L->tstate_thread_id);
		s->ncf_recent = 0;
		s->cf_hot = 0;
		s->nwalked = 0;
		s->top_hw = 0;
		s->walked_whole = 0;
		p->nframes = 0;
	}
	p->cframe = L->tstate_cframe >= 0 ? rd64(ts, L->tstate_cframe) : 0;
	plan_cframes(w, s);
	p->chunk = 0;
	p->len = 0;
	p->nolder = 0;
	/* Frame objects: the walker's runs of pages (queue_runs), and a
	 * thread read again the pages of its last walk (s->walked). */
	if (L->frame_model == PY_FRAMES_OBJECTS)
		return;
	nt_learn(w, ts);
	plan_spec_frames(w, s);
	/* Not walked whole yet (a new thread, idle or not begun when first
	 * read, or whose walks came out torn, read again at once): its shim
	 * frames come with the read that finds it running, or reads it
	 * again.  The one place they are guessed. */
	if (!s->walked_whole)
		(void)nt_shim_guess(w, s);
	/* The older chunks hold the callers' frames, which stay put while the
	 * newest chunk is in use: read them ahead too, a little past what was
	 * in use, within the chunk. */
	for (k = 1; k < s->ncopies && p->nolder < MAX_SPEC_CHUNKS; k++) {
		const struct copy *c = &s->copies[k];
		uint64_t size = rd64(w->buf + c->off, L->chunk_size);
		uint64_t len = c->len + CHUNK_SLACK;

		p->older[p->nolder++] = (struct copy){ .remote = c->remote,
						       .len = len < size ? len : c->len };
	}
	chunk = rd64(ts, L->tstate_datastack_chunk);
	top = rd64(ts, L->tstate_datastack_top);
	if (!chunk || top <= chunk || top - chunk > CHUNK_COPY_MAX)
		return;
	/* A little past the deepest top of late catches frames pushed since
	 * the thread state was read, and a thread that went deeper since the
	 * last sample; staying within the chunk's minimum size keeps the
	 * read inside the chunk's mapping. */
	if (chunk != last_chunk || top - chunk >= s->top_hw || ++s->top_age > CF_HOT) {
		s->top_hw = top - chunk;
		s->top_age = 0;
	}
	p->len = s->top_hw + CHUNK_SLACK + s->top_hw / 2;
	if (p->len > CHUNK_MIN_SIZE)
		p->len = top - chunk > CHUNK_MIN_SIZE ? top - chunk : CHUNK_MIN_SIZE;
	p->chunk = chunk;
}

/* Is thread state i's _PyCFrame its root one, inside the thread state
 * (the thread is not in the interpreter loop: it has not begun, or it
 * runs C code only), so that its current frame pointer came with it? */
static int cf_in_row(const struct py_walker *w, uint32_t i)
{
	const struct py_layout *L = w->L;
	uint64_t cf = rd64(ts_row(w, i), L->tstate_cframe), t = w->known[i];

	return cf >= t && !(cf & 7) &&
	       cf - t + (uint64_t)L->cframe_current_frame + 8 <= (uint64_t)L->tstate_size;
}

/* Does the fresh thread state i still agree with the plan it was read by? */
static int plan_holds(struct py_walker *w, uint32_t i)
{
	const struct py_layout *L = w->L;
	const uint8_t *ts = ts_row(w, i);
	struct thread_slot *s = slot_of(w, i);
	const struct plan *p = &s->plan;
	uint64_t chunk, top;

	/* An idle thread not read holds, unless it turns out to hold the
	 * GIL while asleep (blocked in a call that kept it): then it is
	 * read after all, and counted as the filter finds it. */
	if (s->idle)
		return s->idle == HOST_STOPPED || !gil_holds(w, s->tstate);
	/* Frame objects are found by address in the pages read. */
	if (L->frame_model == PY_FRAMES_OBJECTS)
		return 1;
	if (!s->got)
		return 0; /* its copies did not arrive */
	chunk = rd64(ts, L->tstate_datastack_chunk);
	top = rd64(ts, L->tstate_datastack_top);
	if (L->tstate_cframe >= 0 && L->tstate_current_frame < 0) {
		uint64_t cf = rd64(ts, L->tstate_cframe);
		uint32_t k;

		if (cf != p->cframe)
			s->cf_hot = CF_HOT;
		if (cf_in_row(w, i)) {
			s->current_frame = rd64(ts, cf - w->known[i] +
						     (uint64_t)L->cframe_current_frame);
		} else if (cf && s->cfw_read && cf >= p->cfw_lo && !(cf & 7) &&
		    cf - p->cfw_lo + (uint64_t)L->cframe_current_frame + 8 <= p->cfw_len) {
			s->current_frame = rd64(w->buf + s->cfw_off,
						cf - p->cfw_lo + (uint64_t)L->cframe_current_frame);
		} else if (cf) {
			for (k = 0; k < s->ncf_read && p->cfs[k] != cf; k++)
				;
			if (k == s->ncf_read)
				return 0; /* a place not read: read it now */
			s->current_frame = s->cf_val[k];
		} else if (p->cframe) {
			return 0;
		}
	}
	/* No data stack yet (none pushed) is a plan that holds too. */
	if (chunk != p->chunk || !chunk)
		return !p->chunk && !chunk;
	return top > chunk && top - chunk <= p->len;
}

/* Does the C-stack window of plan p hold a whole frame at f? */
static int in_cfw(const struct py_walker *w, const struct plan *p, uint64_t f)
{
	return p->cfw_len && f >= p->cfw_lo &&
	       f - p->cfw_lo + (uint64_t)w->L->iframe_size <= p->cfw_len;
}

/* Queue the frames the last walk of s read one by one, to be read with the
 * sample (they are matched by address as the walk meets them).  win: the
 * plan's C-stack window is read in the same call (queue_slot), and the
 * frames in it are not read again: 3.12 shim frames, while the thread's
 * _PyCFrame moves (frame_at takes them from the window first).  Their
 * places in the buffer stay, unread. */
static void queue_spec(struct py_walker *w, struct thread_slot *s, uint32_t *niov,
		       uint32_t cap, int win)
{
	const struct plan *p = &s->plan;
	size_t fsize = (size_t)w->L->iframe_size; /* 3.11+ only (queue_slot) */
	uint32_t k, n = 0, plain = 0, walked = s->nwalked < p->nframes ? s->nwalked : p->nframes;

	for (k = 0; k < p->nframes; k++)
		if (!win || !in_cfw(w, p, p->frames[k])) {
			n++;
			plain += k < walked;
		}
	if (*niov + n > cap || !iov_room(w, *niov + n) || !buf_room(w, p->nframes * fsize))
		return;
	s->spec_off = w->buf_used;
	for (k = 0; k < p->nframes; k++) {
		if (!win || !in_cfw(w, p, p->frames[k])) {
			rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used,
				p->frames[k], fsize);
			(*niov)++;
		}
		w->buf_used += fsize;
	}
	s->nspec = p->nframes;
	s->xf_lo = *niov - n + plain;
	s->xf_hi = *niov;
	w->extra |= n > plain;
}

static int cmp_u64(const void *a, const void *b);

/* Queue the heap zone's read at *niov, while it is wanted (see ZONE_LEN):
 * the window below the highest end of the thread states (known and
 * ghosts) near their median. */
static void zone_queue(struct py_walker *w, uint32_t *niov)
{
	const uint64_t tsz = (uint64_t)w->L->tstate_size;
	uint64_t *v = w->nk, med, lo = UINT64_MAX, hi = 0, end, at;
	uint32_t i, n = 0;

	w->zone_len = 0;
	if (w->nsample >= w->zone_until || w->zone_fails > 1)
		return;
	for (i = 0; i < w->nknown && n < w->cap; i++)
		v[n++] = w->known[i];
	for (i = 0; i < w->nghost && n < w->cap; i++)
		v[n++] = w->ghost[i];
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	med = v[n / 2];
	for (i = 0; i < n; i++) {
		if (v[i] > med ? v[i] - med > ZONE_NEAR : med - v[i] > ZONE_NEAR)
			continue;
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	end = hi + tsz + (w->zone_fails ? 0 : ZONE_TAIL);
	at = end - lo > ZONE_LEN ? end - ZONE_LEN : lo;
	if (!iov_room(w, *niov + 1) || !buf_room(w, end - at))
		return;
	w->zone_at = at;
	w->zone_len = (uint32_t)(end - at);
	w->zone_off = w->buf_used;
	w->zone_iov = *niov;
	rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, at, w->zone_len);
	(*niov)++;
	w->buf_used += w->zone_len;
}

/* The heap zone's copy of the thread state at t, or NULL. */
static const uint8_t *zone_row(const struct py_walker *w, uint64_t t)
{
	uint64_t tsz = (uint64_t)w->L->tstate_size;

	if (!w->zone_len || t < w->zone_at || t - w->zone_at + tsz > w->zone_len)
		return NULL;
	return w->buf + w->zone_off + (t - w->zone_at);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Before 3.11: note the page frame object f was met on. */
static void frame_page_seen(struct py_walker *w, uint64_t f)
{
	uint64_t page = f & ~(uint64_t)(SPEC_PAGE - 1);
	uint32_t k, old = 0;

	if (w->nfpages && w->fpages[w->fpage_last].page == page) {
		w->fpages[w->fpage_last].seen = w->nsample;
		return;
	}
	for (k = 0; k < w->nfpages; k++) {
		if (w->fpages[k].page == page)
			break;
		if (w->fpages[k].seen < w->fpages[old].seen)
			old = k;
	}
	if (k == w->nfpages) {
		if (w->nfpages < MAX_FRAME_PAGES)
			w->nfpages++;
		else
			k = old;
		w->fpages[k].page = page;
	}
	w->fpages[k].seen = w->nsample;
	w->fpage_last = k;
}

/* Before 3.11: queue the pages of frames, as runs of adjacent pages, into
 * w->runs (frames elsewhere are read one by one as the walk meets them):
 * pages[0..n) (sorted here), those of last[0..nlast) (a thread's innermost
 * frame's, as far as is known) after the others.  One call copies them in
 * that order: a thread's callers are copied before its innermost frame,
 * while they still wait in their calls; the innermost one runs on
 * (walk_checked).  Heap pages may be gone (an arena freed): these reads
 * come last, and are optional. */
static void queue_runs(struct py_walker *w, uint32_t *niov, uint32_t cap, uint64_t *pages,
		       uint32_t n, const uint64_t *last, uint32_t nlast)
{
	uint64_t bytes = 0, prev = 0;
	uint32_t k, j, pass;

	w->nruns = 0;
	qsort(pages, n, sizeof(*pages), cmp_u64);
	for (pass = 0; pass < 2; pass++)
		for (k = 0; k < n && bytes < SPEC_PAGE_BYTES; k++) {
			uint64_t page = pages[k];
			struct copy *r = w->nruns ? &w->runs[w->nruns - 1] : NULL;
			uint32_t is_last = 0;

			for (j = 0; j < nlast && !is_last; j++)
				is_last = last[j] == page;
			if (!page || page == prev || is_last != pass)
				continue;
			prev = page;
			if (!buf_room(w, SPEC_PAGE))
				return;
			if (r && page == r->remote + r->len) {
				r->len += SPEC_PAGE;
				w->liov[*niov - 1].iov_len += SPEC_PAGE;
				w->riov[*niov - 1].iov_len += SPEC_PAGE;
			} else {
				if (w->nruns == MAX_SPEC_RUNS || *niov >= cap || !iov_room(w, *niov + 1))
					return;
				w->runs[w->nruns++] = (struct copy){ .remote = page, .len = SPEC_PAGE,
								     .off = w->buf_used };
				rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, page,
					SPEC_PAGE);
				(*niov)++;
			}
			w->buf_used += SPEC_PAGE;
			bytes += SPEC_PAGE;
		}
}

/* The pages the innermost frames of the known threads' last walks were
 * on, into last[] (up to MAX_LAST_PAGES). */
static uint32_t inner_pages(struct py_walker *w, uint64_t *last)
{
	uint32_t i, n = 0;

	for (i = 0; i < w->nknown && n < MAX_LAST_PAGES; i++) {
		const struct thread_slot *s = slot_of(w, i);

		if (s->nwalked && !s->idle)
			last[n++] = s->walked[0] & ~(uint64_t)(SPEC_PAGE - 1);
	}
	return n;
}

/* The pages frames of any thread were met on lately, into pages[]. */
static uint32_t recent_pages(const struct py_walker *w, uint64_t *pages)
{
	uint32_t k, n = 0;

	for (k = 0; k < w->nfpages; k++)
		if (w->nsample - w->fpages[k].seen <= SPEC_KEEP)
			pages[n++] = w->fpages[k].page;
	return n;
}

/* After a read of which done of the runs queued from index first arrived
 * (counted in iovecs, the runs last): keep the runs that did. */
static void runs_arrived(struct py_walker *w, uint32_t first, size_t done_iov)
{
	if (done_iov < first)
		w->nruns = 0;
	else if (done_iov - first < w->nruns)
		w->nruns = (uint32_t)(done_iov - first);
}

/* Slot s is about to be read for the thread state at tstate: nothing of
 * it read yet. */
static void slot_reset(struct thread_slot *s, uint64_t tstate)
{
	s->tstate = tstate;
	s->got = 1;
	s->current_frame = 0;
	s->ncopies = 0;
	s->older = 0;
	s->nspec = 0;
	s->npre = 0;
	s->ncf_read = 0;
	s->cfw_read = 0;
	s->xf_lo = s->xf_hi = s->xc_lo = s->xc_hi = 0;
	s->idle = 0;
}

/* Slot s, of thread state tstate, idle this sample by the host's word h
 * (stopped, or asleep while it does not hold the GIL: holds): nothing of
 * it is read, and it comes out idle.  Returns 1 when so. */
static int slot_idle(struct thread_slot *s, uint64_t tstate, int h, int holds)
{
	if (h != HOST_STOPPED && (h != HOST_ASLEEP || holds))
		return 0;
	slot_reset(s, tstate);
	s->idle = (uint8_t)h;
	return 1;
}

/* Queue slot s's reads (current frame pointer, chunk copy; ahead of time
 * also the places and frames of the last walks) at *niov, up to cap. */
static void queue_slot(struct py_walker *w, struct thread_slot *s, uint64_t tstate,
		       uint32_t *niov, uint32_t cap, int ahead)
{
	const struct py_layout *L = w->L;
	const struct plan *p = &s->plan;
	uint32_t k;
	int win;

	slot_reset(s, tstate);
	/* Frame objects come with the walker's runs of pages instead. */
	if (L->frame_model == PY_FRAMES_OBJECTS)
		return;
	/* 3.13+ keeps the frame pointer in the thread state itself: it is
	 * taken from there when walking, after this call refreshed it. */
	/* The current frame pointer at the _PyCFrame (3.11, 3.12); ahead of
	 * time also at the thread's recent places, as one window of its C
	 * stack when they are close, with room made for it before the frames
	 * read ahead, which leave out those it holds. */
	win = ahead && p->cfw_len && *niov + p->nframes < cap &&
	      iov_room(w, *niov + p->nframes + 1) &&
	      buf_room(w, (uint64_t)p->nframes * (uint64_t)L->iframe_size + p->cfw_len);
	if (ahead)
		queue_spec(w, s, niov, cap, win);
	if (win) {
		s->cfw_off = w->buf_used;
		s->cfw_read = 1;
		s->xc_lo = *niov;
		rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, p->cfw_lo,
			p->cfw_len);
		(*niov)++;
		s->xc_hi = *niov;
		w->buf_used += p->cfw_len;
		w->extra = 1;
	}
	for (k = 0; !s->cfw_read && k < p->ncfs && (ahead || k == 0) && *niov < cap &&
	     iov_room(w, *niov + 1); k++) {
		if (k == 1 && ahead)
			s->xc_lo = *niov;
		s->cf_val[k] = 0;
		rmem_iov(&w->liov[*niov], &w->riov[*niov], &s->cf_val[k],
			p->cfs[k] + L->cframe_current_frame, 8);
		(*niov)++;
		s->ncf_read = k + 1;
		w->extra |= k > 0 && ahead;
		if (k > 0 && ahead)
			s->xc_hi = *niov;
	}
	if (!p->chunk || *niov >= cap || !iov_room(w, *niov + 1) || !buf_room(w, p->len))
		return;
	s->copies[0] = (struct copy){ .remote = p->chunk, .len = p->len, .off = w->buf_used };
	s->ncopies = 1;
	rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, p->chunk, p->len);
	(*niov)++;
	w->buf_used += p->len;
	for (k = 0; ahead && k < p->nolder; k++) {
		const struct copy *o = &p->older[k];

		if (*niov >= cap || !iov_room(w, *niov + 1) || !buf_room(w, o->len))
			break;
		s->pre[s->npre++] = (struct copy){ .remote = o->remote, .len = o->len,
						   .off = w->buf_used };
		rmem_iov(&w->liov[*niov], &w->riov[*niov], w->buf + w->buf_used, o->remote, o->len);
		(*niov)++;
		w->buf_used += o->len;
	}
}

/* The host's word on known[i]'s OS thread now, by the ids its thread state
 * had when last read (py_walker_set_host): HOST_UNKNOWN when there is
 * none. */
static int host_word(const struct py_walker *w, uint32_t i)
{
	const struct py_layout *L = w->L;
	const uint8_t *ts = ts_row(w, i);
	uint64_t tid, id;

	if (!w->host)
		return HOST_UNKNOWN;
	tid = ts_native(L, ts);
	if (tid >= INT32_MAX)
		tid = 0;
	id = rd64(ts, L->tstate_thread_id);
	if (!tid && !id)
		return HOST_UNKNOWN;
	return w->host(w->host_ctx, (int64_t)tid, id);
}

/* Slot i's reads (its current frame pointer, its chunk; ahead of time the
 * places and frames of the last walks too) at *niov, up to cap. */
static void queue_thread(struct py_walker *w, uint32_t i, uint32_t *niov,
			 uint32_t cap, int ahead)
{
	queue_slot(w, slot_of(w, i), w->known[i], niov, cap, ahead);
}

/* The steady state: thread list, thread states, current frames, chunks and
 * the caller's extra reads, all in one call, by last sample's plans.
 * Returns 0 when every thread state still agrees with its plan, 1 when the
 * thread states are current but a plan is not (a chunk was pushed), -EAGAIN
 * when the thread list moved, or -ESRCH. */
static void slot_got(struct thread_slot *s, int got)
{
	s->got = (uint32_t)got;
	if (got)
		return;
	s->idle = 0;
	s->ncf_read = 0;
	s->cfw_read = 0;
	s->ncopies = 0;
	s->npre = 0;
	s->nspec = 0;
}

/* The optional read at index f (of all) failed.  A place read ahead may be
 * gone (a generator freed, its memory unmapped): the thread whose extra
 * read it was forgets the places its last walk did not need, and after a
 * few such failures only those are read for a while.  A plain read that
 * failed (the chunk of a thread that ended) is no reason to. */
static void blame_extra(struct py_walker *w, uint32_t f)
{
	uint32_t i;

	if (!w->extra)
		return;
	for (i = 0; i < w->nknown; i++) {
		struct thread_slot *s = slot_of(w, i);

		if ((f < s->xf_lo || f >= s->xf_hi) && (f < s->xc_lo || f >= s->xc_hi))
			continue;
		w->spec_fails++;
		if (s->plan.nframes > s->nwalked)
			s->plan.nframes = s->nwalked;
		s->ncf_recent = 0;
	}
}

/* The piece of pcs[0..n) that arrived with [at, at + len) in it, or NULL. */
static const struct nt_piece *nt_holding(const struct nt_piece *pcs, uint32_t n, uint64_t at,
					 uint64_t len)
{
	uint32_t k;

	for (k = 0; k < n; k++)
		if (pcs[k].ok && at >= pcs[k].at && at - pcs[k].at + len <= pcs[k].len)
			return &pcs[k];
	return NULL;
}

/* New thread i, planned: with no data stack yet, and its current frame
 * pointer, if any, in its thread state (the root _PyCFrame, 3.11 and
 * 3.12), it has not begun and was read whole already.  Returns 1 when so
 * (its plan holds). */
static int nt_not_begun(struct py_walker *w, uint32_t i)
{
	const struct py_layout *L = w->L;

	if (rd64(ts_row(w, i), L->tstate_datastack_chunk) || (nt_cframes(L) && !cf_in_row(w, i)))
		return 0;
	slot_reset(slot_of(w, i), w->known[i]);
	return plan_holds(w, i);
}

/* New thread i, planned, its thread state read in the same call as the
 * guesses r: when its _PyCFrame is in a window read and its chunk was
 * read, deep enough, take them as the reads of its plan.  Returns 1 when
 * its plan then holds (nothing more to read for it). */
static int nt_adopt(struct py_walker *w, uint32_t i, const struct nt_read *r)
{
	const struct py_layout *L = w->L;
	const uint8_t *ts = ts_row(w, i);
	struct thread_slot *s = slot_of(w, i);
	struct plan *p = &s->plan;
	uint64_t chunk = rd64(ts, L->tstate_datastack_chunk);
	uint64_t top = rd64(ts, L->tstate_datastack_top);
	const struct nt_piece *c, *cw = NULL;

	if (!chunk || top <= chunk || top - chunk > CHUNK_MIN_SIZE ||
	    !(c = nt_holding(r->chunk, r->nchunk, chunk, top - chunk)) || c->at != chunk)
		return 0;
	if (nt_cframes(L)) {
		uint64_t cf = rd64(ts, L->tstate_cframe);

		if ((cf & 7) ||
		    !(cw = nt_holding(r->cfw, r->ncfw, cf, (uint64_t)L->cframe_current_frame + 8)))
			return 0;
	} else if (r->shim_len) {
		uint64_t tid = rd64(ts, L->tstate_thread_id);

		/* 3.13+: the window of its stack, when one was read, for its
		 * shim frames; the chunk is taken without it. */
		if (tid > r->shim_hi)
			cw = nt_holding(r->cfw, r->ncfw, tid - r->shim_hi, r->shim_len);
	}
	slot_reset(s, w->known[i]);
	if (cw) {
		p->cfw_lo = cw->at;
		p->cfw_len = cw->len;
		s->cfw_off = cw->off;
		s->cfw_read = 1;
	}
	p->chunk = chunk;
	p->len = c->len;
	s->copies[0] = (struct copy){ .remote = chunk, .len = c->len, .off = c->off };
	s->ncopies = 1;
	if (!plan_holds(w, i)) {
		slot_got(s, 0);
		return 0;
	}
	return 1;
}

/* Slot i's thread is new (s->nt_src says how it was read): idle ones
 * (read_unheld's rule), ones that have not begun, and ones found where the
 * guesses read with them were, need nothing more read. */
static void nt_try(struct py_walker *w, uint32_t i)
{
	struct thread_slot *s = slot_of(w, i);
	int src = s->nt_src;

	s->nt_src = NT_NONE;
	if (src == NT_NONE || w->L->frame_model == PY_FRAMES_OBJECTS)
		return;
	plan_thread(w, i);
	if (slot_idle(s, w->known[i], host_word(w, i), gil_holds(w, w->known[i])) ||
	    nt_not_begun(w, i))
		return;
	if (src == NT_SPEC || src == NT_FRESH)
		(void)nt_adopt(w, i, src == NT_SPEC ? &w->nt.spec : &w->nt.fresh);
}

static int read_speculative(struct py_walker *w, const struct iovec *xl,
			    const struct iovec *xr, uint32_t nx)
{
	const struct py_layout *L = w->L;
	const size_t tsz = (size_t)L->tstate_size;
	uint32_t i, g, niov = 0, nreq, runs_first, ngone = 0;
	size_t done = 0;
	int err;

	w->spec_ok = 0;
	w->ghost_rows = 0;
	if (!w->planned || !w->nknown ||
	    !iov_room(w, w->nknown + 2 + 3 * w->ninterps + nx + NGHOST))
		return -EAGAIN;
	w->buf_used = 0;
	w->vslot = 0;
	w->extra = 0;
	rmem_iov(&w->liov[niov], &w->riov[niov], &w->ihead_rd,
		w->runtime + (uint64_t)L->runtime_interp_head, 8);
	niov++;
	for (i = 0; i < w->ninterps; i++) {
		struct interp_slot *is = &w->interps[i];

		rmem_iov(&w->liov[niov], &w->riov[niov], &is->next_rd,
			is->addr + (uint64_t)L->interp_next, 8);
		niov++;
		rmem_iov(&w->liov[niov], &w->riov[niov], &is->head_rd,
			is->addr + (uint64_t)L->interp_threads_head, 8);
		niov++;
	}
	for (i = 0; i < w->nknown; i++, niov++)
		rmem_iov(&w->liov[niov], &w->riov[niov], ts_row(w, i), w->known[i], tsz);
	gil_queue(w, &niov);
	if (nx) { /* xl and xr may be NULL when there is nothing to add */
		memcpy(&w->liov[niov], xl, nx * sizeof(*xl));
		memcpy(&w->riov[niov], xr, nx * sizeof(*xr));
	}
	niov += nx;
	/* The rest is optional, read after the above, in this order: the
	 * ghosts' thread states (heap memory, freed or reused but there),
	 * then by each thread's plan its frames' places and copies.  A
	 * thread that ended since the last sample had its
	 * data stack unmapped: the reads from there on are lost, and the
	 * threads they were for are read again (read_chunks). */
	nreq = niov;
	while (w->nghost && w->nsample - w->gsince[w->nghost - 1] > GHOST_KEEP)
		w->nghost--;
	for (g = 0; g < w->nghost; g++, niov++)
		rmem_iov(&w->liov[niov], &w->riov[niov], w->tsbuf + (size_t)w->gslot[g] * tsz,
			w->ghost[g], tsz);
	zone_queue(w, &niov);
	/* Oldest thread first (each list starts at its newest): a thread
	 * that ended takes the reads after its own with it, and young ones
	 * (a request's) end first. */
	for (i = w->nknown; i-- > 0;) {
		struct thread_slot *s = slot_of(w, i);
		int h = host_word(w, i);

		s->nt_src = NT_NONE;
		if (h == HOST_EXITED) {
			slot_reset(s, w->known[i]);
			s->got = UINT32_MAX; /* nothing of it read */
			s->nt_src = NT_GONE;
			s->gone_id = rd64(ts_row(w, i), L->tstate_thread_id);
			s->gone_native = ts_native(L, ts_row(w, i));
			ngone++;
			continue;
		}
		/* Idle: nothing of it is needed (see plan_holds); the GIL is
		 * not read yet, so by its holder at the last walk. */
		if (slot_idle(s, w->known[i], h, s->had_gil)) {
			s->got = 0;
			continue;
		}
		queue_thread(w, i, &niov, w->iov_max, 1);
		s->got = niov - nreq;
	}
	/* A new thread's places, when a new thread may be found at a ghost
	 * (threads ended lately), where a thread that has exited was (malloc
	 * hands its thread state out again, often before it leaves the
	 * list) or in the heap zone: windows of C stacks and chunks' first
	 * bytes, about 3 KB and (when mapped) 3.5 KB each on the demo app. */
	w->nt.spec.ncfw = w->nt.spec.nchunk = 0;
	if (w->nghost || ngone || w->zone_len)
		nt_queue(w, &w->nt.spec, &niov, NT_GUESS);
	/* A ghost's thread state only: a new thread found there has its
	 * data stack and its _PyCFrame elsewhere nearly always (the demo
	 * app: 40 of some 630 found at a ghost had them where the ghost's
	 * plan said), and those reads cost more bytes than the list (about
	 * 2.5 KB a ghost).  Its chunks are read after (read_unheld). */
	for (g = 0; g < w->nghost; g++) {
		slot_reset(&w->slots[w->gslot[g]], w->ghost[g]);
		slot_got(&w->slots[w->gslot[g]], 0);
	}
	runs_first = niov - nreq;
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		uint64_t pages[MAX_FRAME_PAGES], last[MAX_LAST_PAGES];

		queue_runs(w, &niov, w->iov_max, pages, recent_pages(w, pages), last,
			   inner_pages(w, last));
	}
	err = rmem_readv_opt(&w->mem, w->liov, w->riov, niov, niov - nreq, &done);
	runs_arrived(w, runs_first, err ? 0 : done);
	nt_arrived(w, &w->nt.spec, nreq, err ? 0 : done);
	if (w->zone_len && (err || w->zone_iov - nreq >= done)) {
		if (!err && w->zone_iov - nreq == done)
			w->zone_fails++; /* it failed: past the heap's end */
		w->zone_len = 0;
	}
	if (err)
		return err == -ESRCH ? err : -EAGAIN;
	if (done < niov - nreq)
		blame_extra(w, nreq + (uint32_t)done);
	/* got: the thread's reads all arrived (its end index, before); a
	 * slot whose reads did not has no copies. */
	for (i = 0; i < w->nknown; i++) {
		struct thread_slot *s = slot_of(w, i);

		slot_got(s, s->got <= done);
		/* Another thread's state where an exited one's was: new. */
		if (s->nt_src == NT_GONE)
			s->nt_src = s->gone_id != rd64(ts_row(w, i), L->tstate_thread_id) ||
						    s->gone_native != ts_native(L, ts_row(w, i)) ?
					    NT_SPEC : NT_NONE;
	}
	w->spec_ok = 1;
	w->ghost_rows = done < w->nghost ? (uint32_t)done : w->nghost;
	gil_decode(w); /* for the idle threads' plans */
	if (!list_matches(w))
		return -EAGAIN;
	for (i = 0; i < w->nknown; i++)
		nt_try(w, i);
	for (i = 0; i < w->nknown; i++)
		if (!plan_holds(w, i))
			return 1; /* the thread states are good, the chunks are not */
	return 0;
}

/* After the slow read: the current frame pointers read at the _PyCFrames. */
static void frames_from_places(struct py_walker *w)
{
	uint32_t i;

	for (i = 0; i < w->nknown; i++)
		if (slot_of(w, i)->ncf_read)
			slot_of(w, i)->current_frame = slot_of(w, i)->cf_val[0];
}

/* The niov reads queued, in one call; when some thread's memory went away
 * mid-call, one by one, those that fail zeroed.  0, or -ESRCH. */
static int readv_each(struct py_walker *w, uint32_t niov)
{
	uint32_t k;
	int err = rmem_readv(&w->mem, w->liov, w->riov, niov);

	if (err != -EFAULT)
		return err;
	for (k = 0; k < niov; k++) {
		err = rmem_readv(&w->mem, &w->liov[k], &w->riov[k], 1);
		if (err == -ESRCH)
			return err;
		if (err)
			memset(w->liov[k].iov_base, 0, w->liov[k].iov_len);
	}
	return 0;
}

/* A thread read again alone (3.12+), just planned (plan_thread): the
 * frames its last walk read one by one, its shim frames among them (a
 * thread not walked whole yet: their guessed places, nt_shim_guess), read
 * in the call that reads its chunk, as the steady state reads them. */
static void unheld_frames(struct py_walker *w, struct thread_slot *s, uint32_t *niov)
{
	if (!nt_shim_frames(w->L))
		return;
	if (s->plan.nframes)
		queue_spec(w, s, niov, w->iov_max, 0);
}

/* After the steady state's read (and rebuild_list) left the thread states
 * current but some threads' plans not holding (a chunk pushed, a new
 * thread, reads lost behind an ended thread's): those threads' current
 * frames and chunks in one call, planned from their fresh thread states;
 * the others keep what the steady state's read brought.  The list did not
 * change here (rebuild_list counted a change). */
static int read_unheld(struct py_walker *w)
{
	uint32_t i, k, niov = 0;
	int err;

	for (i = 0; i < w->nknown; i++) {
		struct thread_slot *s = slot_of(w, i);

		if (plan_holds(w, i))
			continue;
		plan_thread(w, i);
		/* Idle now, by the host's word and the GIL just read: nothing
		 * of it is needed.  A thread-per-request server's new thread
		 * is most often this, waiting for the GIL it has not had yet
		 * (the demo app: 763 of 1334).  Its plan is of its fresh
		 * thread state, for the next sample. */
		if (slot_idle(s, w->known[i], host_word(w, i), gil_holds(w, w->known[i])))
			continue;
		k = niov;
		queue_thread(w, i, &niov, w->iov_max, 0);
		unheld_frames(w, s, &niov);
		s->got = niov > k ? 2 : 1; /* 2: read here */
	}
	if (!niov)
		return 0;
	err = readv_each(w, niov);
	if (err)
		return err;
	for (i = 0; i < w->nknown; i++) {
		struct thread_slot *s = slot_of(w, i);

		if (s->got < 2)
			continue;
		if (s->ncopies && rd64(w->buf + s->copies[0].off, w->L->chunk_size) == 0)
			s->ncopies = 0; /* the zeroed copy of a failed read */
		if (s->ncf_read)
			s->current_frame = s->cf_val[0];
	}
	return 0;
}

/* The slow way, after read_threads(): plans from the fresh thread states,
 * then every thread's current frame and chunk in one call. */
static int read_chunks(struct py_walker *w)
{
	uint32_t i, niov = 0;
	int err;

	w->buf_used = 0;
	w->vslot = 0;
	w->sample.list_gen++;
	gil_queue(w, &niov);
	for (i = 0; i < w->nknown; i++) {
		plan_thread(w, i);
		queue_thread(w, i, &niov, w->iov_max, 0);
		unheld_frames(w, slot_of(w, i), &niov);
	}
	w->planned = 1;
	w->nruns = 0;
	if (w->L->frame_model == PY_FRAMES_OBJECTS) {
		uint64_t pages[MAX_FRAME_PAGES], last[MAX_LAST_PAGES];
		uint32_t first = niov;
		size_t done = 0;

		queue_runs(w, &niov, w->iov_max, pages, recent_pages(w, pages), last,
			   inner_pages(w, last));
		err = rmem_readv_opt(&w->mem, w->liov, w->riov, niov, niov - first, &done);
		runs_arrived(w, 0, err ? 0 : done);
		if (err == -EFAULT)
			err = readv_each(w, first);
	} else {
		err = readv_each(w, niov);
	}
	if (err)
		return err;
	for (i = 0; i < w->nknown; i++) {
		struct thread_slot *s = slot_of(w, i);

		if (s->ncopies && rd64(w->buf + s->copies[0].off, w->L->chunk_size) == 0)
			s->ncopies = 0; /* the zeroed copy of a failed read */
	}
	frames_from_places(w);
	return 0;
}

/* Copy the next older chunk of s, if any.  Returns 1 when a copy was added. */
static int copy_older_chunk(struct py_walker *w, struct thread_slot *s)
{
	const struct py_layout *L = w->L;
	uint8_t hdr[PY_LAYOUT_MAX_CHUNK_HDR];
	uint64_t addr, size, top, len;
	uint32_t k;

	if (s->ncopies == 0 || s->ncopies >= MAX_CHUNKS_PER_THREAD)
		return 0;
	if (s->older == 0) {
		const struct copy *last = &s->copies[s->ncopies - 1];

		if (last->len < (uint64_t)L->chunk_data)
			return 0;
		s->older = rd64(w->buf + last->off, L->chunk_previous);
		if (!s->older)
			return 0;
	}
	addr = s->older;
	for (k = 0; k < s->npre; k++) {
		const struct copy *c = &s->pre[k];

		if (c->remote != addr || c->len < (uint64_t)L->chunk_data)
			continue;
		size = rd64(w->buf + c->off, L->chunk_size);
		top = rd64(w->buf + c->off, L->chunk_top);
		len = (uint64_t)L->chunk_data + top * 8;
		if (top > CHUNK_COPY_MAX / 8 || len > size || len > c->len)
			break; /* grown since: read it now */
		s->copies[s->ncopies++] = (struct copy){ .remote = addr, .len = len, .off = c->off };
		s->older = rd64(w->buf + c->off, L->chunk_previous);
		if (!s->older)
			s->older = UINT64_MAX;
		return 1;
	}
	if (rmem_read(&w->mem, addr, hdr, (size_t)L->chunk_data))
		return 0;
	size = rd64(hdr, L->chunk_size);
	top = rd64(hdr, L->chunk_top);   /* words in use, saved at push */
	len = (uint64_t)L->chunk_data + top * 8;
	if (top > CHUNK_COPY_MAX / 8 || len > size || !buf_room(w, len))
		return 0;
	if (rmem_read(&w->mem, addr, w->buf + w->buf_used, len))
		return 0;
	s->copies[s->ncopies++] = (struct copy){ .remote = addr, .len = len, .off = w->buf_used };
	w->buf_used += len;
	s->older = rd64(hdr, L->chunk_previous);
	if (!s->older)
		s->older = UINT64_MAX; /* chain exhausted */
	return 1;
}

/* A pointer to the frame header at remote address f, from a copy when one
 * holds it, else read into tmp. */
static const uint8_t *frame_at(struct py_walker *w, struct thread_slot *s,
			       uint64_t f, uint8_t *tmp, int *where,
			       struct walk_stats *st)
{
	size_t need = (size_t)w->L->iframe_size;
	uint32_t i;

	for (;;) {
		for (i = 0; i < s->ncopies; i++) {
			const struct copy *c = &s->copies[i];

			if (f >= c->remote + (uint64_t)w->L->chunk_data &&
			    f - c->remote <= c->len - need) {
				*where = (int)i;
				return w->buf + c->off + (f - c->remote);
			}
		}
		if (s->older == UINT64_MAX || !copy_older_chunk(w, s))
			break;
	}
	/* A generator's frame lives in the generator object on the heap, a
	 * shim frame on the C stack (3.12+), in the window of it that may have
	 * been read with the sample; otherwise read with the sample when the
	 * last walk met it, else now. */
	*where = -1;
	if (s->thread_id > f && s->thread_id - f <= NT_OFF_MAX && nt_shim_frames(w->L))
		nt_met(w->nt.shim, w->nt.shim_seen, &w->nt.nshim, NT_SHIMS, s->thread_id - f,
		       w->nsample);
	if (s->cfw_read && in_cfw(w, &s->plan, f)) {
		/* Read ahead by address from then on: the window may not be
		 * (a new thread's guessed one, read once; 3.12 reads one
		 * again only while the thread's _PyCFrame moves). */
		if (s->nwalked < MAX_SPEC_FRAMES)
			s->walked[s->nwalked++] = f;
		return w->buf + s->cfw_off + (f - s->plan.cfw_lo);
	}
	/* A frame read ahead that has no code is no frame: a guessed place
	 * that held none then, or the zeroed copy of a read that failed
	 * (readv_each).  Read now: only that one; the others stand. */
	for (i = 0; i < s->nspec; i++)
		if (s->plan.frames[i] == f &&
		    py_frame_code(w->L, rd64(w->buf + s->spec_off + (size_t)i * need,
					     w->L->iframe_code))) {
			s->plan.frame_seen[i] = w->nsample;
			if (s->nwalked < MAX_SPEC_FRAMES)
				s->walked[s->nwalked++] = f;
			return w->buf + s->spec_off + (size_t)i * need;
		}
	st->slow_reads++;
	if (rmem_read(&w->mem, f, tmp, need))
		return NULL;
	/* Only a place that could be read is read ahead next time: a wild
	 * pointer of a torn walk would fail the next steady-state read. */
	if (s->nwalked < MAX_SPEC_FRAMES)
		s->walked[s->nwalked++] = f;
	return tmp;
}

/* The copy of [f, f + size) among runs[0..n) of buf, or NULL. */
static const uint8_t *in_runs(const uint8_t *buf, const struct copy *runs, uint32_t n,
			      uint64_t f, uint64_t size)
{
	uint32_t k;

	for (k = 0; k < n; k++)
		if (f >= runs[k].remote && runs[k].len >= size && f - runs[k].remote <= runs[k].len - size)
			return buf + runs[k].off + (f - runs[k].remote);
	return NULL;
}

/* A frame object's window: in the pages read with the sample (the runs)
 * or by this sample's walks, else read now with its page(s), or alone into
 * tmp when they cannot be read whole. */
static const uint8_t *object_at(struct py_walker *w, uint64_t f, uint8_t *tmp,
				struct walk_stats *st)
{
	size_t fsize = (size_t)w->L->frame_size;
	const uint8_t *b = in_runs(w->buf, w->runs, w->nruns, f, fsize);

	if (b)
		return b;
	if (!w->fresh_only && (b = in_runs(w->buf, w->sruns, w->nsruns, f, fsize)))
		return b;
	if (w->pbuf && (b = in_runs(w->pbuf, w->pcopies, w->npcopies, f, fsize)))
		return b;
	st->slow_reads++;
	if (w->pbuf && f <= UINT64_MAX - fsize) {
		uint64_t page = f & ~(uint64_t)(SPEC_PAGE - 1);
		uint32_t k = w->pnext++ % WALK_PAGES;
		struct copy *c = &w->pcopies[k];

		c->remote = page;
		c->len = ((f + fsize - 1) & ~(uint64_t)(SPEC_PAGE - 1)) + SPEC_PAGE - page;
		c->off = (size_t)k * 2 * SPEC_PAGE;
		if (w->npcopies <= k)
			w->npcopies = k + 1;
		if (!rmem_read(&w->mem, page, w->pbuf + c->off, c->len))
			return w->pbuf + c->off + (f - page);
		c->len = 0; /* a page of it is not mapped: no copy here */
	}
	if (rmem_read(&w->mem, f, tmp, fsize))
		return NULL;
	return tmp;
}

/* Before 3.11: a chain of PyFrameObjects on the heap through f_back. */
static void walk_objects(struct py_walker *w, struct thread_slot *s,
			 struct raw_thread *th, struct walk_stats *st)
{
	const struct py_layout *L = w->L;
	struct raw_sample *rs = &w->sample;
	uint8_t tmp[MAX_FRAME_BYTES];
	uint64_t f = s->current_frame, gen = 0;

	if ((size_t)L->frame_size > sizeof(tmp)) {
		th->flags |= RAW_TORN;
		return;
	}
	while (f) {
		const uint8_t *fr;
		struct raw_frame *rf;
		int32_t lasti;

		if (th->depth >= w->o.max_depth || rs->nframes >= w->frames_cap) {
			th->flags |= RAW_TRUNCATED;
			break;
		}
		fr = (f & 7) ? NULL : object_at(w, f, tmp, st);
		/* A frame object with no reference left was freed since it
		 * was named (by the thread state or its callee's f_back): it
		 * is some code object's zombie frame now, or on a free list,
		 * its fields as they were when it returned. */
		if (!fr || visited_test_set(w, f)) {
			th->flags |= RAW_TORN;
			break;
		}
		/* But the innermost one: a thread calling a small function in
		 * a loop is read with it just returned nearly as often as
		 * not.  Its copy is as it was then, its caller named in it,
		 * which walk_checked settles (not for stitched threads,
		 * which are not checked). */
		if (L->frame_refcnt >= 0 && rd64(fr, L->frame_refcnt) == 0) {
			if (th->depth || w->ninterps > 1) {
				th->flags |= RAW_TORN;
				break;
			}
			w->inner_dead = 1;
		}
		if (s->nwalked < MAX_SPEC_FRAMES)
			s->walked[s->nwalked++] = f;
		/* Its last byte's page too (the same page costs a compare). */
		frame_page_seen(w, f);
		frame_page_seen(w, f + (uint64_t)L->frame_size - 1);
		memcpy(&lasti, fr + L->frame_lasti, sizeof(lasti));
		rs->addrs[rs->nframes] = f;
		rf = &rs->frames[rs->nframes++];
		rf->code = rd64(fr, L->frame_code);
		rf->instr = (uint64_t)(int64_t)lasti; /* an index, not an address */
		rf->owner = 0;
		rf->zero = 0;
		th->depth++;
		gen = L->frame_gen >= 0 ? rd64(fr, L->frame_gen) : 0;
		f = rd64(fr, L->frame_back);
	}
	/* A generator's frame is never a thread's bottom frame: it was read
	 * between resumptions, when it has no link to its caller. */
	if (!f && gen)
		th->flags |= RAW_TORN;
}

/* 3.11+: interpreter frames through ->previous, most of them in the copies
 * of the thread's data-stack chunks.  The hot loop of a sample: the layout's
 * offsets and the copy in use are kept in locals.  base: the frame every
 * whole chain ends at (3.15's base frame), or 0. */
static void walk_frames(struct py_walker *w, struct thread_slot *s,
			struct raw_thread *th, uint64_t f, uint64_t base_frame,
			struct walk_stats *st)
{
	const struct py_layout *L = w->L;
	struct raw_sample *rs = &w->sample;
	struct raw_frame *frames = rs->frames;
	uint64_t *addrs = rs->addrs;
	const size_t o_code = (size_t)L->iframe_code, o_instr = (size_t)L->iframe_instr,
		     o_prev = (size_t)L->iframe_previous, o_owner = (size_t)L->iframe_owner;
	/* 0 when the version has no use of it (stacktop is never first) */
	const size_t o_stacktop = L->iframe_stacktop > 0 ? (size_t)L->iframe_stacktop : 0;
	const uint32_t shim = L->iframe_owned_by_cstack < 0 ? UINT32_MAX :
			      (uint32_t)L->iframe_owned_by_cstack;
	const uint32_t gen = L->iframe_owned_by_generator < 0 ? UINT32_MAX :
			     (uint32_t)L->iframe_owned_by_generator;
	const uint64_t trampoline = w->trampoline;
	const uint32_t max_depth = w->o.max_depth, cap = w->frames_cap;
	uint32_t nf = rs->nframes, depth = 0, flags = 0;
	/* The copy the last frame was found in: frames at remote addresses
	 * [lo, lo + span] are at base + (f - lo). */
	uint64_t lo = 1, span = 0, prev_f = 0;
	const uint8_t *base = NULL;
	uint8_t tmp[MAX_FRAME_BYTES];
	int where = -1;
	uint32_t owner = UINT32_MAX; /* of the last frame met */

	while (f) {
		const uint8_t *fr;

		if (depth >= max_depth || nf >= cap) {
			flags |= RAW_TRUNCATED;
			break;
		}
		if (f & 7) {
			flags |= RAW_TORN; /* misaligned */
			break;
		}
		if (f - lo <= span) {
			/* Within one chunk a caller's frame always sits below
			 * its callee's: a step that does not go down is a loop. */
			if (f >= prev_f) {
				flags |= RAW_TORN;
				break;
			}
			fr = base + (f - lo);
		} else {
			fr = frame_at(w, s, f, tmp, &where, st);
			/* Frames reached from elsewhere go through the visited set. */
			if (!fr || visited_test_set(w, f)) {
				flags |= RAW_TORN;
				break;
			}
			if (where >= 0 && s->copies[where].len >= (uint64_t)L->chunk_data +
								 (uint64_t)L->iframe_size) {
				const struct copy *c = &s->copies[where];

				lo = c->remote + (uint64_t)L->chunk_data;
				span = c->len - (uint64_t)L->chunk_data - (uint64_t)L->iframe_size;
				base = w->buf + c->off + (uint64_t)L->chunk_data;
			} else {
				lo = 1;
				span = 0;
			}
		}
		prev_f = f;
		/* 3.12+: a frame that called the one walked before it from the
		 * interpreter loop keeps its stack pointer in stacktop until
		 * the callee returns, and sets it to -1 when it runs on (a
		 * call through C has a shim frame between).  -1 here: the
		 * callee was read before it returned, this frame after it
		 * moved on (or the other way round, its slot reused), and the
		 * caller's line would not be its call's. */
		if (o_stacktop && owner != UINT32_MAX && owner != shim &&
		    fr[o_owner] != shim && rd32(fr, o_stacktop) < 0) {
			flags |= RAW_TORN;
			break;
		}
		owner = fr[o_owner];
		if (owner != shim) {
			struct raw_frame *rf = &frames[nf];

			addrs[nf++] = f;
			rf->code = py_frame_code(L, rd64(fr, o_code));
			/* Only shim frames run the trampoline: this one is a
			 * shim's stale copy, its owner overwritten. */
			if (trampoline && rf->code == trampoline) {
				flags |= RAW_TORN;
				break;
			}
			rf->instr = rd64(fr, o_instr);
			rf->owner = owner;
			rf->zero = 0;
			depth++;
		}
		f = rd64(fr, o_prev);
	}
	/* A whole chain ends at the thread's bottom: from 3.12 always the
	 * shim frame of the outermost call into the interpreter, in 3.11 a
	 * function's frame.  One that ends elsewhere (a generator's frame
	 * read between resumptions, when it has no link to its caller) lost
	 * its callers. */
	if (!f && owner != UINT32_MAX &&
	    (shim != UINT32_MAX ? owner != shim : owner == gen))
		flags |= RAW_TORN;
	/* 3.15: and that shim frame is the thread's own base frame, which
	 * no walk shows (its owner is a shim's); a chain that ends at
	 * another one was cut. */
	if (!f && base_frame && prev_f && prev_f != base_frame)
		flags |= RAW_TORN;
	rs->nframes = nf;
	th->depth = depth;
	th->flags |= flags;
}

/* Leave out th's innermost frame (RECHECK_RETURNED). */
static void drop_innermost(struct raw_sample *rs, struct raw_thread *th)
{
	uint32_t n = th->depth - 1;

	memmove(&rs->frames[th->first], &rs->frames[th->first + 1], n * sizeof(*rs->frames));
	memmove(&rs->addrs[th->first], &rs->addrs[th->first + 1], n * sizeof(*rs->addrs));
	th->depth = n;
	rs->nframes--;
}

static void walk_thread(struct py_walker *w, uint32_t idx, struct walk_stats *st)
{
	const struct py_layout *L = w->L;
	const uint8_t *ts = ts_row(w, idx);
	struct thread_slot *s = slot_of(w, idx);
	struct raw_sample *rs = &w->sample;
	struct raw_thread *th = &rs->threads[rs->nthreads++];
	uint64_t f;

	if (L->frame_model == PY_FRAMES_OBJECTS)
		s->current_frame = rd64(ts, L->tstate_frame);
	else if (L->tstate_current_frame >= 0)
		s->current_frame = rd64(ts, L->tstate_current_frame);
	f = s->current_frame;
	w->inner_dead = 0;
	memset(th, 0, sizeof(*th));
	/* The list's address, not the slot's: a thread state read alone by
	 * rebuild_list into a free slot (frame objects: nothing else of it
	 * queued) left the slot's as its last occupant had it, or 0; two
	 * threads of one sample with tstate 0 shared the symbolizer's memo. */
	th->tstate = w->known[idx];
	th->thread_id = rd64(ts, L->tstate_thread_id);
	th->native_tid = (int32_t)ts_native(L, ts);
	th->first = rs->nframes;
	if (s->idle) {
		th->flags |= RAW_IDLE;
		goto out;
	}
	frames_room(w, w->o.max_depth);
	visited_clear(w);
	s->nwalked = 0; /* frames this walk reads one by one, for the next plan */
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		walk_objects(w, s, th, st);
		goto out;
	}
	walk_frames(w, s, th, f, L->tstate_base_frame ? rd64(ts, L->tstate_base_frame) : 0, st);
	if (w->recheck && !(th->flags & RAW_TORN) && th->depth) {
		int r = w->recheck(w->recheck_ctx, rs, th);
		uint32_t k;

		/* Callers that had returned too are left out the same way,
		 * up to RETURNED_MAX frames in all; past that it is torn. */
		for (k = 0; r == RECHECK_RETURNED && th->depth > 1 && k < RETURNED_MAX; k++) {
			drop_innermost(rs, th);
			r = w->recheck(w->recheck_ctx, rs, th);
		}
		if (k)
			st->returned++;
		if (r)
			th->flags |= RAW_TORN;
	}
out:
	if (!s->idle && !(th->flags & RAW_TORN) && th->depth)
		s->walked_whole = 1;
	s->had_gil = (uint8_t)gil_holds(w, th->tstate);
	if (s->had_gil)
		th->flags |= RAW_GIL;
	if (th->flags & RAW_TORN) {
		rs->nframes = th->first;
		th->depth = 0;
	}
}

/* The interpreter thread idx belongs to. */
static uint64_t thread_interp(const struct py_walker *w, uint32_t idx)
{
	uint32_t k;

	for (k = 0; k < w->ninterps; k++)
		if (idx >= w->interps[k].first && idx < w->interps[k].first + w->interps[k].n)
			return w->interps[k].addr;
	return w->interp;
}

/* Read thread idx again, alone, after its walk came out torn.  First all
 * in one call, as the steady state reads: its thread state with what the
 * torn walk went through (the places of its current frame pointer, its
 * chunks, the frames outside them, a generator's among them), so that they
 * agree with each other.  If the fresh thread state says the thread moved
 * on (its frame pointer elsewhere, a chunk pushed): its thread state, then
 * its current frame pointer and newest chunk in one call, the frames
 * outside it one by one as the walk meets them.  Before 3.11: its thread
 * state with the pages of its frame and of the torn walk's frames, then
 * its frame pointer and those pages again, which objects_verify checks the
 * walk by.  Returns 0, or -errno when the thread could not be read (it
 * stays torn). */
static int reread_thread(struct py_walker *w, uint32_t idx)
{
	const struct py_layout *L = w->L;
	uint8_t *ts = ts_row(w, idx);
	struct thread_slot *s = slot_of(w, idx);
	uint64_t interp = thread_interp(w, idx);
	uint32_t niov = 1;
	int err;

	if (!iov_room(w, RMEM_MAX_IOV))
		return -ENOMEM;
	plan_thread(w, idx);
	rmem_iov(&w->liov[0], &w->riov[0], ts, w->known[idx], (size_t)L->tstate_size);
	queue_thread(w, idx, &niov, RMEM_MAX_IOV, 1);
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		uint64_t pages[MAX_SPEC_FRAMES + 1];
		/* The innermost frame is most likely on the page of the one
		 * the torn walk began at (the free list gives back the frame
		 * freed last), read last, its callers on their pages of that
		 * walk. */
		uint64_t hot = rd64(ts, L->tstate_frame) & ~(uint64_t)(SPEC_PAGE - 1);
		uint32_t first = niov, k;
		size_t done = 0;

		for (k = 0; k < s->nwalked; k++)
			pages[k] = s->walked[k] & ~(uint64_t)(SPEC_PAGE - 1);
		pages[k++] = hot;
		if (!w->sruns_set) {
			memcpy(w->sruns, w->runs, w->nruns * sizeof(*w->runs));
			w->nsruns = w->nruns;
			w->sruns_set = 1;
		}
		queue_runs(w, &niov, RMEM_MAX_IOV, pages, k, &hot, 1);
		/* Then the frame pointer and the same pages again: the walk
		 * is checked by them, a moment later in the same call. */
		w->vslot = 0;
		if (w->nruns && niov + 1 + w->nruns <= RMEM_MAX_IOV &&
		    buf_room(w, w->buf_used - w->runs[0].off)) {
			uint32_t r;

			rmem_iov(&w->liov[niov], &w->riov[niov], &w->vcur,
				w->known[idx] + (uint64_t)L->tstate_frame, 8);
			niov++;
			for (r = 0; r < w->nruns; r++) {
				w->vruns[r] = w->runs[r];
				w->vruns[r].off = w->buf_used;
				rmem_iov(&w->liov[niov], &w->riov[niov], w->buf + w->buf_used,
					w->runs[r].remote, w->runs[r].len);
				niov++;
				w->buf_used += w->runs[r].len;
			}
			w->nvruns = w->nruns;
			w->vslot = idx + 1;
		}
		copies_read(w);
		err = rmem_readv_opt(&w->mem, w->liov, w->riov, niov, niov - first, &done);
		w->vread_ns = w->clock();
		w->vread_cpu = walk_cpu(w);
		if (err || done < niov - first)
			w->vslot = 0;
		runs_arrived(w, 0, err ? 0 : done);
	} else {
		err = rmem_readv(&w->mem, w->liov, w->riov, niov);
	}
	if (err == -ESRCH)
		return err;
	if (!err && rd64(ts, L->tstate_interp) == interp && plan_holds(w, idx))
		return 0;
	/* The plan did not hold: the places by the thread state just read
	 * (read again alone when that call failed), in one more call. */
	niov = 0;
	w->vslot = 0;
	copies_read(w);
	if (err && (err = rmem_read(&w->mem, w->known[idx], ts, (size_t)L->tstate_size)))
		return err;
	if (rd64(ts, L->tstate_interp) != interp)
		return -ESRCH; /* torn down meanwhile */
	plan_thread(w, idx);
	queue_thread(w, idx, &niov, RMEM_MAX_IOV, 0);
	unheld_frames(w, s, &niov);
	if (niov && (err = rmem_readv(&w->mem, w->liov, w->riov, niov)))
		return err;
	if (s->ncf_read)
		s->current_frame = s->cf_val[0];
	return 0;
}

/* Does b, a later copy of frame object i of th, agree with the walk: the
 * same code, the same instruction (but the innermost frame's and its
 * caller's, which walk_checked settles), still alive, and the same caller?
 * The caller's instruction moved: w->caller_moved. */
static int frame_agrees(struct py_walker *w, const struct raw_thread *th, uint32_t i,
			uint32_t from, const uint8_t *b)
{
	const struct py_layout *L = w->L;
	const struct raw_sample *rs = &w->sample;
	const struct raw_frame *f = &rs->frames[th->first + i];
	int32_t lasti;

	memcpy(&lasti, b + L->frame_lasti, sizeof(lasti));
	if (i == 1 && from == 0)
		w->caller_moved = (uint64_t)(int64_t)lasti != f->instr;
	return rd64(b, L->frame_code) == f->code &&
	       (i <= 1 || (uint64_t)(int64_t)lasti == f->instr) &&
	       (i == from || L->frame_refcnt < 0 || rd64(b, L->frame_refcnt) != 0) &&
	       (i + 1 == th->depth || rd64(b, L->frame_back) == rs->addrs[th->first + i + 1]);
}

/* How long after the copies of th were read its check may come. */
static int64_t verify_span(const struct py_walker *w, const struct raw_thread *th,
			   int64_t cpu_now)
{
	int64_t by_reads = (int64_t)(w->mem.reads - w->copied_reads) * VERIFY_READ_NS;
	int64_t by_cpu = (cpu_now - w->copied_cpu) * VERIFY_CPU_TIMES;

	return VERIFY_SPAN_NS + (by_cpu > by_reads ? by_cpu : by_reads) +
	       (int64_t)th->depth * VERIFY_FRAME_NS;
}

/* Where the check (objects_verify) found the thread, by its frame pointer
 * read again (found_at). */
enum found {
	FOUND_NOT = -1,    /* elsewhere: the walk does not hold */
	FOUND_SAME,        /* in the walk's innermost frame */
	FOUND_CALLER,      /* in its caller: the innermost one had returned */
	FOUND_CALLEE,      /* in a frame the innermost one called since */
};

/* Where cur, the thread's frame pointer read again, is.  A frame cur that
 * is neither the walk's innermost frame nor its caller is looked for among
 * the pages the check read (vr[0..nvr)), else read now into tmp (after the
 * frame pointer was): a callee, alive and naming the innermost frame its
 * caller, or elsewhere. */
static enum found found_at(struct py_walker *w, const struct raw_thread *th, uint64_t cur,
			   const struct copy *vr, uint32_t nvr, uint8_t *tmp)
{
	const struct py_layout *L = w->L;
	const struct raw_sample *rs = &w->sample;
	const size_t fs = (size_t)L->frame_size;
	const uint64_t inner = rs->addrs[th->first];
	const uint8_t *b;

	if (cur == inner)
		return FOUND_SAME;
	if (th->depth >= 2 && cur == rs->addrs[th->first + 1])
		return FOUND_CALLER;
	if (!cur || (cur & 7))
		return FOUND_NOT;
	b = vr ? in_runs(w->buf, vr, nvr, cur, fs) : NULL;
	if (!b && !rmem_read(&w->mem, cur, tmp, fs))
		b = tmp;
	return b && (L->frame_refcnt < 0 || rd64(b, L->frame_refcnt) != 0) &&
		       rd64(b, L->frame_back) == inner ? FOUND_CALLEE : FOUND_NOT;
}

/* Before 3.11 the frames of a thread are separate objects read at separate
 * moments (one call copies its pages by address; frames read one by one
 * are read innermost first): a callee read, then its caller read after the
 * callee returned, shows the caller on a later line than its call; a
 * caller read, then a callee it made later, the caller on an earlier one.
 * So, right after a thread is walked, one more call reads its frame
 * pointer and its frame objects again.  Every frame must still have the
 * code, the caller and (but the innermost, which runs) the instruction
 * the walk read, and be alive: all of them waited in their calls from one
 * read to the other.  And the thread must be found (found_at) where the
 * walk's stack can still be its own: in its innermost frame, in a call
 * that frame made since, or back in its caller, which is then the
 * innermost one, free to have run on (the frame that returned is not
 * compared).  Else the thread is torn (and read again, as any torn
 * thread).  Wanting the thread in the very frame the walk began at
 * dropped a third of the stacks of a thread calling a small function in a
 * loop (the split test app, 3.6), which returns, and is called again, in
 * less time than a read takes; and dropped those of one place more than of
 * another, which moved the shares by up to 8 points.  walk_checked settles
 * the two new cases.  Threads of one frame are left alone, as are
 * stitched ones.  Returns where the thread was found.
 *
 * Frame objects are reused (each code object keeps its last one, and the
 * free list gives back the frame freed last), so a thread that returned
 * and came back to the same calls between the two reads has the same
 * frames at the same addresses: the check holds only if both reads came
 * within verify_span of the walk's copies, too short for that on any but
 * the shortest calls.  A check with no room to read in fails: the
 * stack is dropped, not reported unchecked. */
static enum found objects_verify(struct py_walker *w, uint32_t t)
{
	const struct py_layout *L = w->L;
	const size_t fs = (size_t)L->frame_size;
	struct raw_sample *rs = &w->sample;
	const struct raw_thread *th = &rs->threads[t];
	uint8_t tmp[MAX_FRAME_BYTES];
	uint32_t n = 0, i, from;
	uint64_t cur = 0;
	uint8_t *buf;
	enum found at;
	int same;

	w->caller_moved = 0;
	if (fs > sizeof(tmp))
		return FOUND_NOT;
	/* Read again with the re-read itself: compared where that copy
	 * has them, when it has them all. */
	if (w->vslot && w->known[w->vslot - 1] == th->tstate) {
		const uint8_t *b = NULL;

		w->vslot = 0;
		at = found_at(w, th, w->vcur, w->vruns, w->nvruns, tmp);
		from = at == FOUND_CALLER;
		same = at != FOUND_NOT;
		for (i = from; same && i < th->depth; i++) {
			b = in_runs(w->buf, w->vruns, w->nvruns, rs->addrs[th->first + i], fs);
			if (!b)
				break;
			same = frame_agrees(w, th, i, from, b);
		}
		if (!same || b) {
			if (!same || w->vread_ns - w->copied_ns > verify_span(w, th, w->vread_cpu))
				return FOUND_NOT;
			return at;
		}
	}
	if (!iov_room(w, th->depth + 1) || !buf_room(w, (size_t)th->depth * fs))
		return FOUND_NOT; /* no room this sample: the next one has more */
	buf = w->buf + w->buf_used;
	rmem_iov(&w->liov[n], &w->riov[n], &cur, th->tstate + (uint64_t)L->tstate_frame, 8);
	n++;
	for (i = 0; i < th->depth; i++, n++)
		rmem_iov(&w->liov[n], &w->riov[n], buf + (size_t)i * fs, rs->addrs[th->first + i], fs);
	if (rmem_readv(&w->mem, w->liov, w->riov, n) ||
	    w->clock() - w->copied_ns > verify_span(w, th, walk_cpu(w)))
		return FOUND_NOT;
	at = found_at(w, th, cur, NULL, 0, tmp);
	from = at == FOUND_CALLER;
	same = at != FOUND_NOT;
	for (i = from; same && i < th->depth; i++)
		same = frame_agrees(w, th, i, from, buf + (size_t)i * fs);
	return same ? at : FOUND_NOT;
}

/* Walk thread idx, then before 3.11 check it (objects_verify), and settle
 * what the walk or the check found changed.  The innermost frame had
 * returned when the walk read it (walk_objects), or when the check did
 * (the thread back in its caller), or its caller's instruction moved
 * between the two reads: the walk read the caller at a moment that may be
 * after the callee returned, where the caller may stand at any place,
 * another call among them, so the callee is left out and the stack is the
 * caller's as the walk read it (walk_stats.returned): the caller stood
 * there, with the callers below it waiting in their calls from one read
 * to the other.  (Keeping the callee when the caller stood at an
 * instruction that calls put it under the wrong call: a caller that had
 * gone on to its next call, the thread churn test app under the sanitizer
 * build.)  The thread in a frame the innermost one called since: the
 * walk's stack as read, its caller having waited. */
static void walk_checked(struct py_walker *w, uint32_t idx, struct walk_stats *st)
{
	struct raw_sample *rs = &w->sample;
	uint32_t t = rs->nthreads;
	struct raw_thread *th;
	enum found at;

	walk_thread(w, idx, st);
	th = &rs->threads[t];
	if (w->L->frame_model != PY_FRAMES_OBJECTS || w->ninterps > 1 ||
	    th->flags & RAW_TORN || !th->tstate || (th->depth < 2 && !w->inner_dead))
		return;
	at = th->depth < 2 ? FOUND_NOT : objects_verify(w, t);
	if (at == FOUND_CALLEE && !w->caller_moved && !w->inner_dead)
		return;
	if (at == FOUND_CALLER || (at == FOUND_SAME && (w->inner_dead || w->caller_moved))) {
		drop_innermost(rs, th);
		st->returned++;
		return;
	}
	if (at == FOUND_SAME)
		return;
	th->flags |= RAW_TORN;
	rs->nframes = th->first;
	th->depth = 0;
}

/* Walk thread idx, and when it comes out torn read it again at once, alone,
 * up to TORN_REREADS times.  Returns 1 when it stayed torn (the caller
 * counts it, once for a stitched group). */
static int walk_reread(struct py_walker *w, uint32_t idx, struct walk_stats *st)
{
	uint32_t k, t = w->sample.nthreads;

	walk_checked(w, idx, st);
	for (k = 0; k < TORN_REREADS && (w->sample.threads[t].flags & RAW_TORN); k++) {
		st->rereads++;
		if (reread_thread(w, idx))
			break;
		w->sample.nthreads--;
		w->fresh_only = 1;
		walk_checked(w, idx, st);
		w->fresh_only = 0;
	}
	return (w->sample.threads[t].flags & RAW_TORN) != 0;
}

static int cmp_stitch(const void *a, const void *b)
{
	const struct stitch_key *x = a, *y = b;

	if (x->thread_id != y->thread_id)
		return (x->thread_id > y->thread_id) - (x->thread_id < y->thread_id);
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* With sub-interpreters: an OS thread that runs one (run_string, mod_wsgi's
 * request handling) has a thread state in each interpreter it entered, the
 * one it runs on top of the ones that called it, on one C stack.  They are
 * one thread: walk them one after another, the newest interpreter's first
 * (the main interpreter's, the oldest, at the root), so that their frames
 * follow each other, to be made one stack by stitch_merge.  Fills order[]
 * (known[] indices in walk order, each group in list order of its first
 * member) and group[] (the size of the group an entry starts, 0 inside
 * one).  Thread states of one interpreter are never stitched, nor those
 * with no thread id.  Returns 0, or -ENOMEM (walk them unstitched). */
static int stitch_plan(struct py_walker *w)
{
	const struct py_layout *L = w->L;
	uint32_t n = w->nknown, i, j = 0, k, p, lo, hi, q, *inv;

	if (!n)
		return 0;
	if (n > w->stitch_cap) {
		struct stitch_key *keys = realloc(w->skeys, n * sizeof(*keys));
		uint32_t *order;

		if (keys)
			w->skeys = keys;
		order = keys ? realloc(w->order, 3 * (size_t)n * sizeof(*order)) : NULL;
		if (!order)
			return -ENOMEM;
		w->order = order;
		w->group = order + n;
		w->stitch_cap = n;
	}
	inv = w->order + 2 * (size_t)w->stitch_cap;
	for (k = 0, p = 0; k < w->ninterps; k++)
		for (i = w->interps[k].first; i < w->interps[k].first + w->interps[k].n; i++)
			w->skeys[p++] = (struct stitch_key){
				.thread_id = rd64(ts_row(w, i), L->tstate_thread_id),
				.pos = k, .i = i };
	qsort(w->skeys, n, sizeof(*w->skeys), cmp_stitch);
	for (p = 0; p < n; p++)
		inv[w->skeys[p].i] = p;
	for (i = 0; i < n; i++) {
		if (inv[i] == UINT32_MAX)
			continue;
		p = inv[i];
		lo = p;
		hi = p + 1;
		if (w->skeys[p].thread_id) {
			while (lo > 0 && w->skeys[lo - 1].thread_id == w->skeys[p].thread_id)
				lo--;
			while (hi < n && w->skeys[hi].thread_id == w->skeys[p].thread_id)
				hi++;
			for (q = lo + 1; q < hi && w->skeys[q].pos > w->skeys[q - 1].pos; q++)
				;
			if (q < hi) { /* two in one interpreter: leave them apart */
				lo = p;
				hi = p + 1;
			}
		}
		for (q = lo; q < hi; q++) {
			w->group[j] = q == lo ? hi - lo : 0;
			w->order[j++] = w->skeys[q].i;
			inv[w->skeys[q].i] = UINT32_MAX;
		}
	}
	return 0;
}

/* Make the g threads walked last (rs->threads[t0..]), whose frames follow
 * each other, one: the first one's entry with all their frames, innermost
 * first.  A part cut short by the depth limit cuts off the parts below it;
 * a torn part makes the whole stack torn (the caller counts it once); GIL from any
 * part; the thread state kept is the root part's (the oldest interpreter's,
 * the thread's own). */
static void stitch_merge(struct py_walker *w, uint32_t t0, uint32_t g)
{
	struct raw_sample *rs = &w->sample;
	struct raw_thread *th = &rs->threads[t0];
	uint32_t m, depth = 0, flags = 0, cut = 0, idle = 0;

	for (m = 0; m < g; m++) {
		const struct raw_thread *part = &rs->threads[t0 + m];

		flags |= part->flags & (RAW_TORN | RAW_GIL);
		idle += (part->flags & RAW_IDLE) != 0;
		if (!cut) {
			depth += part->depth;
			cut = (part->flags & RAW_TRUNCATED) != 0;
		}
		if (!th->native_tid)
			th->native_tid = part->native_tid;
	}
	if (cut || depth > w->o.max_depth) {
		flags |= RAW_TRUNCATED;
		if (depth > w->o.max_depth)
			depth = w->o.max_depth;
	}
	/* Idle, the OS thread's parts were left unread alike; but one read
	 * for holding a GIL beside parts not read is no whole stack. */
	if (idle == g)
		flags |= RAW_IDLE;
	else if (idle)
		flags |= RAW_TORN;
	if (flags & RAW_TORN)
		depth = 0;
	th->tstate = rs->threads[t0 + g - 1].tstate;
	th->depth = depth;
	th->flags = flags;
	rs->nframes = th->first + depth;
	rs->nthreads = t0 + 1;
}

/* Walk every thread of every interpreter, stitching those of one OS thread
 * when there are sub-interpreters. */
static void walk_all(struct py_walker *w, struct walk_stats *st)
{
	uint32_t i, j, m;

	if (w->ninterps > 1 && !stitch_plan(w)) {
		for (j = 0; j < w->nknown; j += w->group[j]) {
			uint32_t t0 = w->sample.nthreads;

			uint32_t torn = 0;

			for (m = 0; m < w->group[j]; m++)
				torn += walk_reread(w, w->order[j + m], st);
			if (w->group[j] > 1 && !w->o.unstitched)
				stitch_merge(w, t0, w->group[j]);
			if (torn)
				st->torn++; /* a stitched stack once */
		}
		for (i = 0; i < w->nknown; i++)
			if (!slot_of(w, i)->idle)
				plan_thread(w, i);
		return;
	}
	/* An idle thread's plan stays as it was: its thread has not moved,
	 * and the plan is of its last walk. */
	for (i = 0; i < w->nknown; i++) {
		if (walk_reread(w, i, st))
			st->torn++;
		if (!slot_of(w, i)->idle)
			plan_thread(w, i);
	}
}

/* rebuild_list: the thread state at t, not read with the sample, into
 * slot's row; with a guess of a new thread's places when guess is set
 * (w->nt.fresh).  0 or -errno. */
static int read_new_state(struct py_walker *w, uint64_t t, uint32_t slot, int guess)
{
	const size_t tsz = (size_t)w->L->tstate_size;
	uint32_t niov = 1;
	size_t done = 0;
	int err;

	rmem_iov(&w->liov[0], &w->riov[0], w->tsbuf + (size_t)slot * tsz, t, tsz);
	if (!guess)
		return rmem_readv(&w->mem, w->liov, w->riov, 1);
	nt_queue(w, &w->nt.fresh, &niov, NT_GUESS);
	err = rmem_readv_opt(&w->mem, w->liov, w->riov, niov, niov - 1, &done);
	nt_arrived(w, &w->nt.fresh, 1, err ? 0 : done);
	return err;
}

/* After the steady state's read, when the thread list moved: make the new
 * list out of what that read brought, if it can.  The interpreters are
 * the same; each list is followed from its fresh head through thread
 * states read with the sample: the known ones (an ended thread's
 * predecessor now links past it) and the ghosts (a new thread's state
 * where an ended one's was).  A thread state read by neither, or a list
 * cut by --max-threads, and the list is walked the slow way instead.
 * Returns 0 with the list made and every plan holding (the sample is
 * whole), 1 with the list made but some plan not holding (the chunks are
 * read again), -EAGAIN when the list could not be made (nothing changed). */
static int rebuild_list(struct py_walker *w)
{
	const struct py_layout *L = w->L;
	const size_t tsz = (size_t)L->tstate_size;
	uint32_t first[PY_MAX_INTERPS + 1], cnt[PY_MAX_INTERPS + 1];
	uint32_t i, k, n = 0, nread = 0;

	if (w->ihead_rd != w->interps[0].addr)
		return -EAGAIN;
	for (k = 0; k < w->ninterps; k++)
		if (w->interps[k].next_rd != w->interps[k].next || w->interps[k].cut_next)
			return -EAGAIN;
	old_snapshot(w);
	w->tset_gen++;
	for (k = 0; k < w->ninterps; k++) {
		uint64_t t = w->interps[k].head_rd;

		first[k] = n;
		while (t) {
			const struct old_entry *o = find_old(w, t);
			const uint8_t *ts;

			uint32_t slot;

			if (n == w->cap || n == w->o.max_threads || tset_test_set(w, t))
				return -EAGAIN;
			if (o && (!o->ghost || o->ghost <= w->ghost_rows) && w->sused[o->slot] == 1) {
				slot = o->slot;
				if (o->ghost) /* else as the sample's read left it */
					w->slots[slot].nt_src = NT_SPEC;
			} else {
				/* A thread state not read with the sample (a
				 * new thread's, elsewhere): from the heap zone
				 * read with it, else read now, into a free
				 * slot; its frames are read after. */
				const uint8_t *z = zone_row(w, t);

				for (slot = 0; slot < w->cap && w->sused[slot]; slot++)
					;
				if (o || slot == w->cap)
					return -EAGAIN;
				w->zone_until = w->nsample + ZONE_KEEP;
				if (z) {
					memcpy(w->tsbuf + (size_t)slot * tsz, z, tsz);
				} else if (++nread > MAX_NEW_READS ||
					   read_new_state(w, t, slot, nread == 1)) {
					return -EAGAIN;
				}
				slot_reset(&w->slots[slot], t);
				slot_got(&w->slots[slot], 0);
				w->slots[slot].nt_src = z ? NT_SPEC : nread == 1 ? NT_FRESH : NT_ALONE;
			}
			ts = w->tsbuf + (size_t)slot * tsz;
			if (rd64(ts, L->tstate_interp) != w->interps[k].addr)
				return -EAGAIN;
			w->sused[slot] = 2;
			w->nk[n] = t;
			w->ns[n++] = slot;
			t = rd64(ts, L->tstate_next);
		}
		cnt[k] = n - first[k];
	}
	for (k = 0; k < w->ninterps; k++) {
		w->interps[k].first = first[k];
		w->interps[k].n = cnt[k];
	}
	memcpy(w->known, w->nk, n * sizeof(*w->known));
	memcpy(w->sidx, w->ns, n * sizeof(*w->sidx));
	w->nknown = n;
	w->left_out = 0;
	ghosts_update(w);
	w->sample.list_gen++;
	/* The new threads (3.11+: before, their frames come with the pages
	 * read). */
	for (i = 0; i < w->nknown; i++)
		nt_try(w, i);
	for (i = 0; i < w->nknown; i++)
		if (!plan_holds(w, i))
			return 1;
	return 0;
}

int py_walker_sample(struct py_walker *w, const struct iovec *xl,
		     const struct iovec *xr, uint32_t nx, int *x_ok,
		     struct raw_sample **out, struct walk_stats *st)
{
	int err;

	w->sample.nthreads = 0;
	w->sample.nframes = 0;
	w->sample.read_ns = mono_ns();
	w->nsruns = 0;
	w->sruns_set = 0;
	copies_read(w);
	grow_buf(w);
	*out = &w->sample;
	*x_ok = 0;
	if ((++w->nsample & 8191) == 0)
		w->spec_fails /= 2; /* failures long past count less */
	err = read_speculative(w, xl, xr, nx);
	if (err == -ESRCH)
		return err;
	/* The list moved: a thread ended, or began (often in an ended one's
	 * place), most often both. */
	if (err == -EAGAIN && w->spec_ok)
		err = rebuild_list(w);
	/* The caller's reads were made with the thread states, whatever
	 * came after. */
	*x_ok = w->spec_ok;
	if (!err) {
		st->fast++;
	} else if (err == 1) {
		err = read_unheld(w);
		if (err)
			return err;
	} else {
		if (err < 0 && (err = read_threads(w))) {
			w->planned = 0; /* no fast path from a list not walked */
			return err;
		}
		err = read_chunks(w);
		if (err)
			return err;
	}
	gil_decode(w);
	if (w->interps_capped)
		st->interps_capped++;
	w->sample.threads_left_out = w->left_out;
	if (w->L->interp_trampoline >= 0 && !w->trampoline && (w->nsample & 63) == 1)
		(void)rmem_read_ptr(&w->mem, w->interp + (uint64_t)w->L->interp_trampoline,
				    &w->trampoline);
	walk_all(w, st);
	w->planned = 1;
	return 0;
}

int py_walker_gil_held(struct py_walker *w)
{
	uint8_t buf[sizeof(w->gilbuf)];
	int32_t locked;
	int err;

	if (!w->gil_addr && w->gil_ptr_addr) {
		uint64_t g = 0;

		if (!rmem_read_ptr(&w->mem, w->gil_ptr_addr, &g) && g && !(g & 7))
			w->gil_addr = g;
	}
	if (!w->gil_addr)
		return -ENOENT;
	/* 3.12+: the GILs of sub-interpreters are not read here. */
	if (w->gil_model == PY_GIL_INTERP_STATE && w->ninterps > 1)
		return -EAGAIN;
	err = rmem_read(&w->mem, w->gil_addr, buf, w->gil_len);
	if (err)
		return err;
	if (w->gil_model != PY_GIL_INTERP_STATE)
		return rd64(buf, 0) != 0; /* the current thread state */
	memcpy(&locked, buf + w->L->gil_locked, sizeof(locked));
	return locked != 0;
}
