/* test_py_walk_threads.c - the walker over a fake image of many thread
 * states (no frames), for 2.7, 3.11 and 3.13 layouts: more threads than
 * one read takes (IOV_MAX) are all read, and the fast path holds; threads
 * past max_threads are counted, not dropped silently, and the list checked
 * against the cut still takes the fast path; a list that loops ends at the
 * repeat.  A thread the host says has exited is not read ahead (3.11); one
 * it says is idle is not read at all, unless it holds the GIL asleep, nor
 * is a new thread found idle.  A new thread where an ended one's places
 * were is found with the sample's read (3.11), and under 3.12 and 3.13 its
 * shim frame too; one found asleep comes whole with the read that finds it
 * running.  A 3.12 thread's shim frame in the window of its C stack read
 * for its moving _PyCFrame is not read again alone.  Threads new at a
 * sample keep their own thread states (2.7, 3.10).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/image.c"
#include "pyspyc/py_walk.h"

#define NTHREADS 1100
#define INTERP 0x10000ull
#define RUNTIME 0x400000ull
#define TSTATES 0x1000000ull

static const uint8_t sels[] = { 0, 6, 8 }; /* image_target: 2.7, 3.11, 3.13 */

struct fake {
	struct py_target t;
	struct image im;
	uint8_t *in;
	size_t len;
};

static void put(struct fake *f, const void *p, size_t n)
{
	memcpy(f->in + f->len, p, n);
	f->len += n;
}

/* n bytes at addr, in the samples of mask when (image_set_sample; 0: all). */
static void region_when(struct fake *f, uint64_t addr, const uint8_t *data, uint16_t n,
			uint8_t when)
{
	put(f, &addr, 8);
	put(f, &n, 2);
	put(f, &when, 1);
	put(f, data, n);
}

static void region(struct fake *f, uint64_t addr, const uint8_t *data, uint16_t n)
{
	region_when(f, addr, data, n, 0);
}

/* The target sel at INTERP and RUNTIME, and their regions into f->in
 * (room for nts thread states and extra bytes more): the runtime's list
 * starts at the only interpreter (its next pointer 0), whose thread list
 * starts at TSTATES.  The runtime is zeros but that, and (layouts whose
 * runtime names the GIL holder) the holder: gil[0] in sample 0, gil[1]
 * after; nobody when gil is NULL. */
static void fake_head_gil(struct fake *f, uint8_t sel, size_t nts, size_t extra,
			  const uint64_t *gil)
{
	const struct py_layout *L;
	uint8_t *hdr;
	size_t ihdr;

	image_target(&f->t, sel);
	L = f->t.layout;
	f->t.interp = INTERP;
	f->t.runtime = RUNTIME;
	ihdr = (size_t)(L->interp_threads_head > L->interp_next ? L->interp_threads_head
								  : L->interp_next) + 8;
	assert_true(ihdr <= 65535 && L->runtime_interp_head + 8 <= 65535);
	f->in = calloc(1, 2 * 65536 + 64 + nts * ((size_t)L->tstate_size + 16) + extra);
	hdr = calloc(1, 65535);
	assert_non_null(f->in);
	assert_non_null(hdr);
	f->len = 0;
	memcpy(hdr + L->interp_threads_head, &(uint64_t){ TSTATES }, 8);
	region(f, INTERP, hdr, (uint16_t)ihdr);
	memset(hdr, 0, 65535);
	memcpy(hdr + L->runtime_interp_head, &(uint64_t){ INTERP }, 8);
	if (!gil) {
		region(f, RUNTIME, hdr, 65535);
	} else {
		assert_true(L->runtime_tstate_current >= 0 &&
			    L->runtime_tstate_current + 8 <= 65535);
		memcpy(hdr + L->runtime_tstate_current, &gil[0], 8);
		region_when(f, RUNTIME, hdr, 65535, 1);
		memcpy(hdr + L->runtime_tstate_current, &gil[1], 8);
		region_when(f, RUNTIME, hdr, 65535, 0xfe);
	}
	free(hdr);
}

static void fake_head(struct fake *f, uint8_t sel, size_t nts, size_t extra)
{
	fake_head_gil(f, sel, nts, extra, NULL);
}

/* n thread states, tstate i linked to i + 1; the last to loop_to (index),
 * or to none when loop_to is -1. */
static void fake_init(struct fake *f, uint8_t sel, uint32_t n, int loop_to)
{
	const struct py_layout *L;
	uint8_t *ts;
	size_t tsz, per;
	uint32_t i, k;

	fake_head(f, sel, n, 0);
	L = f->t.layout;
	tsz = (size_t)L->tstate_size;
	per = 65535 / tsz;
	assert_true(per > 0 && (n + per - 1) / per < IMAGE_MAX_REGIONS - 1);
	ts = calloc(n, tsz);
	assert_non_null(ts);
	for (i = 0; i < n; i++) {
		uint8_t *p = ts + (size_t)i * tsz;
		uint64_t next = i + 1 < n ? TSTATES + (uint64_t)(i + 1) * tsz :
				loop_to >= 0 ? TSTATES + (uint64_t)loop_to * tsz : 0;

		memcpy(p + L->tstate_next, &next, 8);
		memcpy(p + L->tstate_interp, &f->t.interp, 8);
		memcpy(p + L->tstate_thread_id, &(uint64_t){ 0x7f0000000000ull + i * 0x1000 }, 8);
	}
	for (i = 0; i < n; i += k) {
		k = n - i < per ? n - i : (uint32_t)per;
		region(f, TSTATES + (uint64_t)i * tsz, ts + (size_t)i * tsz, (uint16_t)(k * tsz));
	}
	free(ts);
	image_init(&f->im, f->in, f->len);
	image_load(&f->im);
}

/* Two samples with max_threads; both must agree on what they read. */
static void walk(struct fake *f, uint32_t max_threads, uint32_t *nthreads,
		 uint32_t *left_out, uint64_t *fast)
{
	struct walk_opts o = { .max_depth = 64, .max_threads = max_threads };
	struct walk_stats st = { 0 };
	struct py_walker *w;
	struct raw_sample *rs;
	int pass, x_ok;

	assert_int_equal(py_walker_new(&w, &f->t, &o), 0);
	image_attach(&f->im, py_walker_mem(w));
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		if (pass && (rs->nthreads != *nthreads || rs->threads_left_out != *left_out))
			fail_msg("the second sample differs: %u/%u threads, %u/%u left out",
				 rs->nthreads, *nthreads, rs->threads_left_out, *left_out);
		*nthreads = rs->nthreads;
		*left_out = rs->threads_left_out;
	}
	*fast = st.fast;
	py_walker_free(w);
}

static void test_every_thread_read(void **state)
{
	uint32_t n, left;
	uint64_t fast;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sels); i++) {
		struct fake f;

		fake_init(&f, sels[i], NTHREADS, -1);
		walk(&f, 8192, &n, &left, &fast);
		assert_int_equal(n, NTHREADS);
		assert_int_equal(left, 0);
		assert_int_equal(fast, 1); /* the second sample, in one go */
		walk(&f, NTHREADS, &n, &left, &fast);
		assert_int_equal(n, NTHREADS);
		assert_int_equal(left, 0);
		free(f.in);
	}
}

static void test_threads_past_the_bound_counted(void **state)
{
	uint32_t n, left;
	uint64_t fast;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sels); i++) {
		struct fake f;

		fake_init(&f, sels[i], NTHREADS, -1);
		walk(&f, 100, &n, &left, &fast);
		assert_int_equal(n, 100);
		assert_int_equal(left, NTHREADS - 100);
		assert_int_equal(fast, 1); /* the list still ends at the cut */
		walk(&f, NTHREADS - 1, &n, &left, &fast);
		assert_int_equal(n, NTHREADS - 1);
		assert_int_equal(left, 1);
		free(f.in);
	}
}

/* A thread state that cannot be read as its interpreter's (torn down and
 * its memory reused under the walk) ends that interpreter's list, and the
 * walk goes on in the next interpreter's: it takes no slot of the few the
 * walker has room for.  Here a sub-interpreter, first in the runtime's
 * list, leads to a thread state of another interpreter, and the main one
 * has one thread: with room for one thread, that one is read, in the room
 * the other did not keep (the slot it was read into was once left taken,
 * and the main interpreter's thread written past the end of the room). */
#define INTERP2 0x20000ull
#define TS_BAD 0x2000000ull

static void test_unreadable_thread_takes_no_room(void **state)
{
	struct walk_opts o = { .max_depth = 64, .max_threads = 1 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sels); i++) {
		const struct py_layout *L;
		struct walk_stats st = { 0 };
		struct py_walker *w;
		struct raw_sample *rs;
		struct fake f;
		uint8_t *hdr;
		uint64_t tsz;
		size_t ihdr;
		int pass, x_ok;

		fake_head(&f, sels[i], 2, 65536);
		L = f.t.layout;
		tsz = (uint64_t)L->tstate_size;
		ihdr = (size_t)(L->interp_threads_head > L->interp_next ? L->interp_threads_head
									   : L->interp_next) + 8;
		/* fake_head's regions: the runtime leading to INTERP, INTERP's
		 * list to TSTATES.  Read first, these lead to INTERP2 instead. */
		hdr = calloc(1, 65535);
		assert_non_null(hdr);
		f.len = 0;
		memcpy(hdr + L->runtime_interp_head, &(uint64_t){ INTERP2 }, 8);
		region(&f, RUNTIME, hdr, 65535);
		memset(hdr, 0, 65535);
		memcpy(hdr + L->interp_next, &(uint64_t){ INTERP }, 8);
		memcpy(hdr + L->interp_threads_head, &(uint64_t){ TS_BAD }, 8);
		region(&f, INTERP2, hdr, (uint16_t)ihdr);
		memset(hdr, 0, 65535);
		memcpy(hdr + L->interp_threads_head, &(uint64_t){ TSTATES }, 8);
		region(&f, INTERP, hdr, (uint16_t)ihdr);
		/* Both thread states say INTERP: TS_BAD is not INTERP2's. */
		memset(hdr, 0, 65535);
		memcpy(hdr + L->tstate_interp, &(uint64_t){ INTERP }, 8);
		memcpy(hdr + L->tstate_thread_id, &(uint64_t){ 0x7f0000001000ull }, 8);
		region(&f, TS_BAD, hdr, (uint16_t)tsz);
		memcpy(hdr + L->tstate_thread_id, &(uint64_t){ 0x7f0000002000ull }, 8);
		region(&f, TSTATES, hdr, (uint16_t)tsz);
		free(hdr);
		image_init(&f.im, f.in, f.len);
		image_load(&f.im);

		assert_int_equal(py_walker_new(&w, &f.t, &o), 0);
		image_attach(&f.im, py_walker_mem(w));
		for (pass = 0; pass < 3; pass++) {
			assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
			assert_int_equal(rs->nthreads, 1);
			assert_int_equal(rs->threads[0].tstate, TSTATES);
			assert_int_equal(rs->threads[0].thread_id, 0x7f0000002000ull);
			assert_int_equal(rs->threads_left_out, 0);
		}
		py_walker_free(w);
		free(f.in);
	}
}

static void test_looping_list_ends_at_repeat(void **state)
{
	uint32_t n, left;
	uint64_t fast;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sels); i++) {
		struct fake f;

		fake_init(&f, sels[i], 300, 7);
		walk(&f, 8192, &n, &left, &fast);
		assert_int_equal(n, 300);
		assert_int_equal(left, 0);
		/* Cut inside the loop: what is left is counted, and bounded. */
		walk(&f, 100, &n, &left, &fast);
		assert_int_equal(n, 100);
		if (left < 200 || left > 2000)
			fail_msg("%u left out of a loop of 293 after 100 read", left);
		free(f.in);
	}
}

/* ---- a thread that exited (3.11) --------------------------------------- */

#define CHUNKS 0x2000000ull
#define CHUNK_BYTES 16384u
#define GONE_TID 1001

/* What becomes of T1 between sample 0 and sample 1 (three_threads). */
enum t1_fate { T1_STAYS, T1_ENDS, T1_BEGINS };

/* Threads T0 -> T1 -> T2 (OS ids 1000..1002), each with an empty
 * data-stack chunk of its own, the GIL's holder as fake_head_gil says.
 * T1_ENDS: in sample 1 (image_set_sample) T1 has ended: T0 links to T2,
 * and T1's chunk is unmapped, as CPython frees it (its thread state, heap
 * memory, is still there).  T1_BEGINS: the other way round, T1 is new in
 * sample 1, at a thread state the walker has never seen. */
static void three_threads(struct fake *f, enum t1_fate fate, const uint64_t *gil)
{
	/* Which samples (bit k: sample k; 0: all) see T0 linking to T1, T0
	 * linking to T2, T1 and its chunk, and T2. */
	const uint8_t to_t1 = fate == T1_ENDS ? 1 : fate == T1_BEGINS ? 0xfe : 0;
	const uint8_t to_t2 = fate == T1_ENDS ? 0xfe : fate == T1_BEGINS ? 1 : 0x80;
	const uint8_t t1 = fate == T1_ENDS ? 1 : fate == T1_BEGINS ? 0xfe : 0;
	const uint8_t when[4] = { to_t1, to_t2, fate == T1_BEGINS ? t1 : 0, 0 };
	const struct py_layout *L;
	size_t tsz;
	uint8_t *buf;
	uint32_t i;

	fake_head_gil(f, 6, 4, 3 * (CHUNK_BYTES + 16), gil);
	L = f->t.layout;
	tsz = (size_t)L->tstate_size;
	buf = calloc(1, CHUNK_BYTES > tsz ? CHUNK_BYTES : tsz);
	assert_non_null(buf);
	for (i = 0; i < 4; i++) {
		uint64_t t = i ? i - 1 : 0, c = CHUNKS + t * 0x100000;
		uint64_t next = t == 2 ? 0 : TSTATES + (i == 1 ? 2 : t + 1) * tsz;

		memset(buf, 0, tsz);
		memcpy(buf + L->tstate_next, &next, 8);
		memcpy(buf + L->tstate_interp, &f->t.interp, 8);
		memcpy(buf + L->tstate_thread_id, &(uint64_t){ 0x7f0000000000ull + t * 0x1000 }, 8);
		memcpy(buf + L->tstate_native_thread_id, &(uint64_t){ 1000 + t }, 8);
		memcpy(buf + L->tstate_datastack_chunk, &c, 8);
		memcpy(buf + L->tstate_datastack_top, &(uint64_t){ c + (uint64_t)L->chunk_data }, 8);
		region_when(f, TSTATES + t * tsz, buf, (uint16_t)tsz, when[i]);
	}
	memset(buf, 0, CHUNK_BYTES);
	memcpy(buf + L->chunk_size, &(uint64_t){ CHUNK_BYTES }, 8);
	for (i = 0; i < 3; i++)
		region_when(f, CHUNKS + (uint64_t)i * 0x100000, buf, CHUNK_BYTES,
			    i == 1 ? t1 : 0);
	free(buf);
	image_init(&f->im, f->in, f->len);
	image_load(&f->im);
}

/* What the host says of T1 (OS id GONE_TID) in host_cb. */
static int host_of_t1 = HOST_UNKNOWN;

static int host_cb(void *ctx, int64_t tid, uint64_t thread_id)
{
	(void)ctx;
	(void)thread_id;
	return tid == GONE_TID ? host_of_t1 : HOST_UNKNOWN;
}

static uint64_t tstate_size_of(uint8_t sel)
{
	struct py_target t;

	image_target(&t, sel);
	return (uint64_t)t.layout->tstate_size;
}

struct run2 {
	uint64_t reads, bytes;   /* of the second sample */
	uint32_t flags[3];       /* its threads' RAW_* flags, newest first */
	uint64_t fast;
};

/* Two samples of three_threads(fate, gil), the host saying `host` of T1
 * (HOST_UNKNOWN: no word at all). */
static void run2(enum t1_fate fate, int host, const uint64_t *gil, struct run2 *r)
{
	struct walk_opts o = { .max_depth = 64, .max_threads = 16 };
	struct walk_stats st = { 0 };
	struct py_walker *w;
	struct raw_sample *rs;
	struct fake f;
	uint32_t i, n = fate == T1_ENDS ? 2 : 3;
	int x_ok;

	three_threads(&f, fate, gil);
	assert_int_equal(py_walker_new(&w, &f.t, &o), 0);
	image_attach(&f.im, py_walker_mem(w));
	host_of_t1 = host;
	if (host != HOST_UNKNOWN)
		py_walker_set_host(w, host_cb, NULL);
	image_set_sample(&f.im, 0);
	assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
	assert_int_equal(rs->nthreads, fate == T1_BEGINS ? 2 : 3);
	image_set_sample(&f.im, 1);
	r->reads = py_walker_mem(w)->reads;
	r->bytes = py_walker_mem(w)->bytes;
	st.fast = 0;
	assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
	assert_int_equal(rs->nthreads, n);
	r->reads = py_walker_mem(w)->reads - r->reads;
	r->bytes = py_walker_mem(w)->bytes - r->bytes;
	r->fast = st.fast;
	for (i = 0; i < n; i++) {
		r->flags[i] = rs->threads[i].flags;
		if (rs->threads[i].flags & RAW_IDLE)
			assert_int_equal(rs->threads[i].depth, 0);
	}
	py_walker_free(w);
	free(f.in);
}

/* The sample after T1 ended.  Its plan would read its chunk first (the
 * oldest threads' reads go first), which fails and loses T0's read behind
 * it: a second read.  Told T1 exited, the walker leaves its chunk out and
 * the sample is one read, whole.  Without the word, the same image takes
 * two (the loss the word saves). */
static void test_exited_thread_not_read_ahead(void **state)
{
	struct run2 r;

	(void)state;
	run2(T1_ENDS, HOST_EXITED, NULL, &r);
	assert_int_equal(r.reads, 1);
	assert_int_equal(r.fast, 1);
	run2(T1_ENDS, HOST_UNKNOWN, NULL, &r);
	assert_int_equal(r.reads, 2);
	assert_int_equal(r.fast, 0);
}

/* ---- idle threads (3.11) ------------------------------------------------ */

/* T1 asleep, the GIL free: T1 comes out idle, unread (the bytes of its
 * chunk fewer than when the host says nothing), the others as ever; one
 * read.  Stopped, the same even while it holds the GIL. */
static void test_idle_thread_not_read(void **state)
{
	const uint64_t t1 = TSTATES + tstate_size_of(6);
	const uint64_t held[2] = { t1, t1 };
	struct run2 plain, idle;

	(void)state;
	run2(T1_STAYS, HOST_UNKNOWN, NULL, &plain);
	run2(T1_STAYS, HOST_ASLEEP, NULL, &idle);
	assert_int_equal(plain.reads, 1);
	assert_int_equal(idle.reads, 1);
	assert_int_equal(idle.fast, 1);
	assert_int_equal(plain.flags[1] & RAW_IDLE, 0);
	assert_int_equal(idle.flags[1], RAW_IDLE);
	assert_int_equal(idle.flags[0] & RAW_IDLE, 0);
	assert_int_equal(idle.flags[2] & RAW_IDLE, 0);
	if (plain.bytes < idle.bytes + 512)
		fail_msg("idle T1: %llu bytes read against %llu read whole",
			 (unsigned long long)idle.bytes, (unsigned long long)plain.bytes);
	run2(T1_STAYS, HOST_STOPPED, held, &idle);
	assert_int_equal(idle.reads, 1);
	assert_int_equal(idle.flags[1] & RAW_IDLE, RAW_IDLE);
}

/* T1 asleep but holding the GIL (a call that kept it): it is read after
 * all, not idle.  Newly holding it, that takes a second read; holding it
 * at the sample before too, it is read with the others. */
static void test_asleep_gil_holder_read(void **state)
{
	const uint64_t t1 = TSTATES + tstate_size_of(6);
	const uint64_t newly[2] = { 0, t1 }, still[2] = { t1, t1 };
	struct run2 r;

	(void)state;
	run2(T1_STAYS, HOST_ASLEEP, newly, &r);
	assert_int_equal(r.flags[1] & (RAW_IDLE | RAW_GIL), RAW_GIL);
	assert_int_equal(r.reads, 2);
	run2(T1_STAYS, HOST_ASLEEP, still, &r);
	assert_int_equal(r.flags[1] & (RAW_IDLE | RAW_GIL), RAW_GIL);
	assert_int_equal(r.reads, 1);
	assert_int_equal(r.fast, 1);
}

/* T1 new in sample 1 and asleep without the GIL (a request's thread
 * waiting for it): once the list is read again, with T1's thread state
 * alone (T1 is at no ghost), nothing more of T1 is read, and it comes out
 * idle.  Running, the same sample reads T1's frames too: a third read. */
static void test_new_idle_thread_not_read(void **state)
{
	struct run2 idle, plain;

	(void)state;
	run2(T1_BEGINS, HOST_ASLEEP, NULL, &idle);
	run2(T1_BEGINS, HOST_UNKNOWN, NULL, &plain);
	assert_int_equal(idle.flags[1], RAW_IDLE);
	assert_int_equal(plain.flags[1] & RAW_IDLE, 0);
	assert_int_equal(idle.reads, 2);
	assert_int_equal(plain.reads, 3);
}

/* ---- a new thread where an ended one was (3.11) ------------------------- */

/* T1 (OS id 1001, its pthread_t STACK1: the top of its C stack) runs two
 * frames in chunk CHUNK1, its _PyCFrame at NT_DEPTH under the top; T0
 * (1000) two frames of its own in its own stack and chunk.  T1 ends and a
 * new thread T3 (1003) takes its C stack and its chunk, as glibc and the
 * kernel hand them out, and runs two other frames there.  Its thread state
 * is:
 * - NT_FRESH: at a place never seen, the sample after T1 ended;
 * - NT_GHOST: where T1's was, T1 gone in sample 1, T3 there in sample 2;
 * - NT_REUSED: where T1's was, in sample 1, T1 never seen leaving the list
 *   (it has the same pthread_t, its C stack's, and another OS id);
 * - NT_ZONE: at a place never seen, but in the heap zone: in sample 1 a
 *   thread T2 (1002) began at a place never seen (on a stack and chunk of
 *   its own, STACK8 and CHUNK8), which has the walker read the zone, and
 *   in sample 2 T3 begins a little past it.
 * With on_stack1 0, T3 has a C stack and a chunk of its own instead, never
 * seen: nothing to guess; with -1, it has not begun (no chunk, its current
 * frame pointer in its thread state). */
#define STACK0 0x7f0000100000ull
#define STACK1 0x7f0000200000ull
#define STACK8 0x7f0000800000ull
#define STACK9 0x7f0000900000ull
#define CHUNK8 (CHUNKS + 0x800000ull)
#define CHUNK9 (CHUNKS + 0x900000ull)
#define NT_DEPTH 0xe90u
/* 3.12: each thread's bottom frame, the shim frame its start pushed on its
 * C stack, this far under the top (beside its _PyCFrame, as in CPython: both
 * are locals of the interpreter loop's outermost call). */
#define NT_SHIM_DEPTH 0x1100u
#define STACK_BYTES 0x2000u
#define CODE(n) (0x5000000ull + (n) * 0x1000)

enum nt_mode { NT_FRESH, NT_GHOST, NT_REUSED, NT_ZONE };

static uint8_t nt_sel = 6; /* image_target: 3.11, or 3.12 (7) */
static unsigned int nt_sample;
static int nt_heap_gaps; /* the heap between thread states not mapped */
static unsigned int nt_more; /* samples after T3's first (nt_reads) */
static unsigned int nt_asleep_until; /* T3 asleep in the samples before */
/* 3.12+: T0 calls through C (f1 from a second shim frame, NT_SHIM2_DEPTH
 * under the top, which f0 called), so two shim depths are learned, one of
 * which holds no frame on T3's stack. */
static int nt_two_shims;
#define NT_SHIM2_DEPTH 0x1800u
/* Each test of these starts from the defaults, whatever the last one left
 * (a failed assertion leaves its test at once). */
static int nt_defaults(void **state)
{
	(void)state;
	nt_sel = 6;
	nt_heap_gaps = 0;
	nt_more = 0;
	nt_asleep_until = 0;
	nt_two_shims = 0;
	return 0;
}

static int nt_host(void *ctx, int64_t tid, uint64_t thread_id)
{
	(void)ctx;
	(void)thread_id;
	if (tid == 1003 && nt_sample < nt_asleep_until)
		return HOST_ASLEEP;
	return tid == GONE_TID && nt_sample >= 1 ? HOST_EXITED : HOST_UNKNOWN;
}

/* Thread state of OS id 1000 + id at ts for the samples of when: next
 * thread state next, its stack's top tid with its _PyCFrame at NT_DEPTH
 * under it holding frame cur; its chunk and stack as given; the chunk
 * holding the frames of codes a (outer) and b, b's frame cur. */
static void nt_thread(struct fake *f, uint64_t ts, uint8_t when, uint32_t id, uint64_t next,
		      uint64_t tid, uint64_t chunk, uint64_t a, uint64_t b, uint8_t mem_when)
{
	const struct py_layout *L = f->t.layout;
	const size_t tsz = (size_t)L->tstate_size;
	const uint64_t f0 = chunk + (uint64_t)L->chunk_data + 8, f1 = f0 + 0x100;
	const uint64_t cf = tid - NT_DEPTH;
	uint8_t *buf = calloc(1, CHUNK_BYTES > tsz ? CHUNK_BYTES : tsz);

	assert_non_null(buf);
	memcpy(buf + L->tstate_next, &next, 8);
	memcpy(buf + L->tstate_interp, &f->t.interp, 8);
	memcpy(buf + L->tstate_thread_id, &tid, 8);
	memcpy(buf + L->tstate_native_thread_id, &(uint64_t){ 1000 + id }, 8);
	if (chunk && L->tstate_current_frame >= 0) {
		/* 3.13: the current frame pointer in the thread state. */
		memcpy(buf + L->tstate_current_frame, &f1, 8);
		memcpy(buf + L->tstate_datastack_chunk, &chunk, 8);
		memcpy(buf + L->tstate_datastack_top, &(uint64_t){ f1 + 0x100 }, 8);
	} else if (chunk) {
		memcpy(buf + L->tstate_cframe, &cf, 8);
		memcpy(buf + L->tstate_datastack_chunk, &chunk, 8);
		memcpy(buf + L->tstate_datastack_top, &(uint64_t){ f1 + 0x100 }, 8);
	} else if (L->tstate_cframe >= 0) {
		/* Not begun: its root _PyCFrame (current frame 0) in the
		 * thread state itself, past the fields set here. */
		memcpy(buf + L->tstate_cframe, &(uint64_t){ ts + tsz - 64 }, 8);
	}
	region_when(f, ts, buf, (uint16_t)tsz, when);
	if (!chunk) { /* its C stack is there all the same */
		memset(buf, 0, STACK_BYTES);
		region_when(f, tid - STACK_BYTES, buf, STACK_BYTES, mem_when);
		free(buf);
		return;
	}
	memset(buf, 0, CHUNK_BYTES);
	memcpy(buf + L->chunk_size, &(uint64_t){ CHUNK_BYTES }, 8);
	memcpy(buf + (f0 - chunk) + L->iframe_code, &a, 8);
	memcpy(buf + (f1 - chunk) + L->iframe_code, &b, 8);
	memcpy(buf + (f1 - chunk) + L->iframe_previous, &f0, 8);
	if (L->iframe_owned_by_cstack >= 0) /* 3.12: f0 called from the shim */
		memcpy(buf + (f0 - chunk) + L->iframe_previous, &(uint64_t){ tid - NT_SHIM_DEPTH }, 8);
	if (L->iframe_owned_by_cstack >= 0 && nt_two_shims && id == 0)
		memcpy(buf + (f1 - chunk) + L->iframe_previous, &(uint64_t){ tid - NT_SHIM2_DEPTH }, 8);
	region_when(f, chunk, buf, CHUNK_BYTES, mem_when);
	memset(buf, 0, STACK_BYTES);
	if (L->tstate_cframe >= 0)
		memcpy(buf + STACK_BYTES - NT_DEPTH + L->cframe_current_frame, &f1, 8);
	if (L->iframe_owned_by_cstack >= 0) { /* its code: the trampoline's */
		buf[STACK_BYTES - NT_SHIM_DEPTH + L->iframe_owner] = (uint8_t)L->iframe_owned_by_cstack;
		memcpy(buf + STACK_BYTES - NT_SHIM_DEPTH + L->iframe_code, &(uint64_t){ CODE(9) }, 8);
	}
	if (L->iframe_owned_by_cstack >= 0 && nt_two_shims && id == 0) {
		uint8_t *g = buf + STACK_BYTES - NT_SHIM2_DEPTH;

		g[L->iframe_owner] = (uint8_t)L->iframe_owned_by_cstack;
		memcpy(g + L->iframe_code, &(uint64_t){ CODE(9) }, 8);
		memcpy(g + L->iframe_previous, &f0, 8);
	}
	region_when(f, tid - STACK_BYTES, buf, STACK_BYTES, mem_when);
	free(buf);
}

/* The samples (bit k: sample k) in which each is so, by mode. */
struct nt_plan {
	uint64_t t3;                  /* T3's thread state */
	uint8_t in1, in2, in3;        /* T1, T2, T3 in the list */
	uint8_t t1_there;             /* T1's thread state there */
	uint8_t head0;                /* the list starts at T0 */
	unsigned int last;            /* T3's first sample */
};

static struct nt_plan nt_plan_of(enum nt_mode mode)
{
	const uint64_t t1 = TSTATES + 0x1000;

	switch (mode) {
	case NT_GHOST:
		return (struct nt_plan){ .t3 = t1, .in1 = 0x1, .in3 = 0xfc, .t1_there = 0x3,
					 .head0 = 0x2, .last = 2 };
	case NT_REUSED:
		return (struct nt_plan){ .t3 = t1, .in1 = 0x1, .in3 = 0xfe, .t1_there = 0x1,
					 .last = 1 };
	case NT_ZONE:
		return (struct nt_plan){ .t3 = TSTATES + 0x6000, .in1 = 0x1, .in2 = 0xfe,
					 .in3 = 0xfc, .t1_there = 0xff, .last = 2 };
	case NT_FRESH:
	default:
		return (struct nt_plan){ .t3 = TSTATES + 0x3000, .in1 = 0x1, .in3 = 0xfe,
					 .t1_there = 0xff, .last = 1 };
	}
}

static void nt_image(struct fake *f, enum nt_mode mode, int on_stack1)
{
	const struct nt_plan pl = nt_plan_of(mode);
	const struct py_layout *L;
	const uint64_t t0 = TSTATES, t1 = TSTATES + 0x1000, t2 = TSTATES + 0x5000;
	/* The list's head: T3 when it is in it, else T2, T1 or T0. */
	const uint8_t at3 = pl.in3, at2 = pl.in2 & (uint8_t)~at3;
	const uint8_t at1 = pl.in1 & (uint8_t)~(at3 | at2);
	const struct { uint64_t t; uint8_t when; } heads[] = {
		{ t1, at1 }, { t2, at2 }, { pl.t3, at3 }, { t0, pl.head0 },
	};
	uint8_t zero[8] = { 0 };
	size_t ihdr;
	uint8_t *hdr;
	uint32_t k;

	image_target(&f->t, nt_sel);
	L = f->t.layout;
	f->t.interp = INTERP;
	f->t.runtime = RUNTIME;
	assert_true((size_t)L->tstate_size <= 0x1000 - 8);
	assert_true((L->tstate_cframe >= 0 || L->tstate_current_frame >= 0) &&
		    NT_SHIM_DEPTH <= STACK_BYTES);
	ihdr = (size_t)(L->interp_threads_head > L->interp_next ? L->interp_threads_head
								  : L->interp_next) + 8;
	/* 3.12: the interpreter's GIL (unlocked) in the runtime's zeros. */
	if (L->interp_ceval_gil >= 0 && (size_t)L->interp_ceval_gil + 8 > ihdr)
		ihdr = (size_t)L->interp_ceval_gil + 8;
	f->in = calloc(1, 2 * 65536 + 16 * (CHUNK_BYTES + 0x1000 + 64));
	hdr = calloc(1, 65535);
	assert_non_null(f->in);
	assert_non_null(hdr);
	f->len = 0;
	memcpy(hdr + L->runtime_interp_head, &(uint64_t){ INTERP }, 8);
	region(f, RUNTIME, hdr, 65535);
	memset(hdr, 0, 65535);
	for (k = 0; k < 4; k++) { /* when 0: in no sample (not in all) */
		if (!heads[k].when)
			continue;
		memcpy(hdr + L->interp_threads_head, &heads[k].t, 8);
		if (L->interp_ceval_gil >= 0)
			memcpy(hdr + L->interp_ceval_gil, &(uint64_t){ RUNTIME + 0x8000 }, 8);
		region_when(f, INTERP, hdr, (uint16_t)ihdr, heads[k].when);
	}
	free(hdr);
	/* The heap between the thread states is mapped (the pages' last
	 * bytes, which no thread state reaches). */
	for (k = 0; k < 8 && !nt_heap_gaps; k++)
		region(f, TSTATES + k * 0x1000ull + 0x1000 - 8, zero, 8);
	nt_thread(f, t0, 0, 0, 0, STACK0, CHUNKS, CODE(0), CODE(1), 0);
	/* T1's C stack stays mapped when it ends (glibc keeps it), as its
	 * chunk does here, until T3 takes them. */
	nt_thread(f, t1, pl.t1_there, 1, t0, STACK1, CHUNKS + 0x100000, CODE(2), CODE(3),
		  pl.t1_there & (uint8_t)~pl.in3);
	if (pl.in2)
		nt_thread(f, t2, pl.in2, 2, t0, STACK8, CHUNK8, CODE(6), CODE(7), pl.in2);
	nt_thread(f, pl.t3, pl.in3, 3, pl.in2 ? t2 : t0, on_stack1 ? STACK1 : STACK9,
		  on_stack1 < 0 ? 0 : on_stack1 ? CHUNKS + 0x100000 : CHUNK9, CODE(4), CODE(5),
		  pl.in3);
	image_init(&f->im, f->in, f->len);
	image_load(&f->im);
}

/* Reads of T3's first sample (or of nt_more samples after, the same), which
 * must give T3's two frames, whole (no frame when on_stack1 is -1: T3 has
 * not begun, no chunk yet), and T0's. */
static uint64_t nt_reads(enum nt_mode mode, int on_stack1)
{
	const struct nt_plan pl = nt_plan_of(mode);
	struct walk_opts o = { .max_depth = 64, .max_threads = 16 };
	struct walk_stats st = { 0 };
	struct py_walker *w;
	struct raw_sample *rs;
	struct fake f;
	uint64_t reads = 0;
	uint32_t n;
	int x_ok;

	nt_image(&f, mode, on_stack1);
	assert_int_equal(py_walker_new(&w, &f.t, &o), 0);
	image_attach(&f.im, py_walker_mem(w));
	py_walker_set_host(w, nt_host, NULL);
	for (nt_sample = 0; nt_sample <= pl.last + nt_more; nt_sample++) {
		image_set_sample(&f.im, nt_sample < 7 ? nt_sample : 7);
		reads = py_walker_mem(w)->reads;
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		reads = py_walker_mem(w)->reads - reads;
		n = 1 + !!(pl.in1 >> f.im.sample & 1) + !!(pl.in2 >> f.im.sample & 1) +
		    !!(pl.in3 >> f.im.sample & 1);
		assert_int_equal(rs->nthreads, n);
	}
	assert_int_equal(rs->threads[0].flags & RAW_TORN, 0);
	assert_int_equal(rs->threads[0].tstate, pl.t3);
	assert_int_equal(rs->threads[0].depth, on_stack1 < 0 ? 0 : 2);
	if (on_stack1 >= 0) {
		assert_int_equal(rs->frames[rs->threads[0].first].code, CODE(5));
		assert_int_equal(rs->frames[rs->threads[0].first + 1].code, CODE(4));
	}
	assert_int_equal(rs->threads[n - 1].depth, 2);
	assert_int_equal(rs->frames[rs->threads[n - 1].first].code, CODE(1));
	py_walker_free(w);
	free(f.in);
	return reads;
}

/* The reads of T3's first sample, for layout sel, by where T3 is. */
static void expect_nt_reads(uint8_t sel)
{
	static const enum nt_mode in_one[] = { NT_GHOST, NT_REUSED, NT_ZONE };
	size_t k;

	nt_sel = sel;
	assert_int_equal(nt_reads(NT_FRESH, 1), 2);
	assert_int_equal(nt_reads(NT_FRESH, 0), 3);
	assert_int_equal(nt_reads(NT_FRESH, -1), 2);
	for (k = 0; k < sizeof(in_one) / sizeof(in_one[0]); k++) {
		assert_int_equal(nt_reads(in_one[k], 1), 1);
		assert_int_equal(nt_reads(in_one[k], 0), 2);
		assert_int_equal(nt_reads(in_one[k], -1), 1);
	}
	nt_sel = 6;
}

/* A new thread on the C stack and the chunk an ended one left is found
 * there with its thread state: read alone (at a place never seen), its
 * places come with it, two reads in all; at an ended one's thread state,
 * whether the list showed that one leave or not, or in the heap zone, the
 * sample's read brings them, one.  On a stack and a chunk never seen, each
 * takes one read more, and the stack is the same.  A new thread that has
 * not begun was read whole with its thread state. */
static void test_new_thread_in_ended_ones_place(void **state)
{
	(void)state;
	expect_nt_reads(6);
}

/* 3.12+: each thread's chain ends at the shim frame on its C stack (in
 * 3.12 a little under its _PyCFrame; 3.13 has none, its current frame
 * pointer is in the thread state).  Its depth under the top, learned from
 * the threads walked before, has a new thread's shim frame read with its
 * other places: the reads of 3.11 above, none more (before, the shim frame
 * of a new thread was read alone: one read more in each case; 3.13 until
 * this test, which its fake now covers). */
static void test_new_thread_shim_frame_with_its_places(void **state)
{
	(void)state;
	expect_nt_reads(7);
	expect_nt_reads(8);
}

/* 3.12+: where other threads entered the interpreter at more than one
 * depth, a new thread's shim frame is guessed at each, and the guesses at
 * depths where it has none read no frame: the one that holds it is still
 * taken, the reads as with one depth (before: a thread read again alone
 * dropped all its guesses for the empty one, and read its shim frame by
 * itself, a read more). */
static void test_new_thread_shim_guess_among_empty(void **state)
{
	(void)state;
	nt_two_shims = 1;
	expect_nt_reads(7);
	expect_nt_reads(8);
}

/* For 3.11, 3.12 and 3.13 and each place T3 may be found at (and with
 * on_stack1 from 1 down to on_lo): the sample after T3's first is one
 * read.  With asleep, T3 was asleep in its first sample. */
static void expect_one_read_after(int asleep, int on_lo)
{
	static const enum nt_mode modes[] = { NT_FRESH, NT_GHOST, NT_REUSED, NT_ZONE };
	static const uint8_t chunked[] = { 6, 7, 8 };
	size_t j, k;
	int on;

	nt_more = 1;
	for (j = 0; j < sizeof(chunked); j++) {
		nt_sel = chunked[j];
		for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
			for (on = 1; on >= on_lo; on--) {
				nt_asleep_until = asleep ? nt_plan_of(modes[k]).last + 1 : 0;
				assert_int_equal(nt_reads(modes[k], on), 1);
			}
	}
}

/* A new thread found asleep is not read (test_new_idle_thread_not_read);
 * when it runs, at the next sample, that sample is one read, as a steady
 * one: its chunk by its plan, and (3.12+) its shim frame at the depth
 * guessed when it was planned (before, read alone: two reads, but where
 * the ended thread's slot it took had planned the same place). */
static void test_new_thread_found_asleep_then_running(void **state)
{
	(void)state;
	expect_one_read_after(1, 0);
}

/* The sample after a new thread's first is one read, as any steady one:
 * what was read of it first (alone, with the sample's read, or as a
 * guess) is read ahead from then on, its shim frame too when a guessed
 * window of its C stack brought it the first time (before: read alone,
 * 3.12 when the thread was read alone, 3.13 always). */
static void test_new_thread_then_one_read(void **state)
{
	(void)state;
	expect_one_read_after(0, -1);
}

/* 3.12: one thread whose _PyCFrame moves at every sample (calls through C
 * put it at another depth), so the places it was at are read as one window
 * of its C stack, which holds its shim frame (the frame its entry into the
 * interpreter pushed, NT_SHIM_DEPTH under the top).  The shim frame is
 * taken from that window, not read again on its own: one range less in
 * the call, and a page lookup less (before: read twice, in the window and
 * alone, in every such sample). */
#define CFW_MOVE 0x80u
static rmem_readv_fn cfw_image;
static uint64_t cfw_shim, cfw_alone, cfw_windows;
static size_t cfw_fsize;

static ssize_t cfw_readv(void *ctx, const struct iovec *local, unsigned long nl,
			 const struct iovec *remote, unsigned long nr)
{
	unsigned long k;

	for (k = 0; k < nr; k++) {
		uint64_t a = (uint64_t)(uintptr_t)remote[k].iov_base;

		if (a == cfw_shim)
			cfw_alone++;
		else if (a < cfw_shim && a + remote[k].iov_len >= cfw_shim + cfw_fsize)
			cfw_windows++;
	}
	return cfw_image(ctx, local, nl, remote, nr);
}

static void test_shim_frame_in_window_read_once(void **state)
{
	struct walk_opts o = { .max_depth = 64, .max_threads = 16 };
	struct walk_stats st = { 0 };
	const struct py_layout *L;
	const uint64_t tid = STACK0, chunk = CHUNKS;
	uint64_t f0, f1, cf[2] = { tid - NT_DEPTH, tid - NT_DEPTH - CFW_MOVE };
	struct py_walker *w;
	struct raw_sample *rs;
	struct fake f;
	uint8_t *buf;
	size_t tsz;
	unsigned int n;
	int k, x_ok;

	(void)state;
	fake_head(&f, 7, 2, CHUNK_BYTES + STACK_BYTES + 64);
	L = f.t.layout;
	tsz = (size_t)L->tstate_size;
	cfw_fsize = (size_t)L->iframe_size;
	cfw_shim = tid - NT_SHIM_DEPTH;
	f0 = chunk + (uint64_t)L->chunk_data + 8;
	f1 = f0 + 0x100;
	buf = calloc(1, CHUNK_BYTES);
	assert_non_null(buf);
	/* Its thread state, its _PyCFrame at one depth in the even samples
	 * and at another in the odd ones. */
	for (k = 0; k < 2; k++) {
		memset(buf, 0, tsz);
		memcpy(buf + L->tstate_interp, &f.t.interp, 8);
		memcpy(buf + L->tstate_thread_id, &tid, 8);
		memcpy(buf + L->tstate_native_thread_id, &(uint64_t){ 1000 }, 8);
		memcpy(buf + L->tstate_cframe, &cf[k], 8);
		memcpy(buf + L->tstate_datastack_chunk, &chunk, 8);
		memcpy(buf + L->tstate_datastack_top, &(uint64_t){ f1 + 0x100 }, 8);
		region_when(&f, TSTATES, buf, (uint16_t)tsz, k ? 0xaa : 0x55);
	}
	/* Its chunk: f0 called from the shim frame, f1 from f0. */
	memset(buf, 0, CHUNK_BYTES);
	memcpy(buf + L->chunk_size, &(uint64_t){ CHUNK_BYTES }, 8);
	memcpy(buf + (f0 - chunk) + L->iframe_code, &(uint64_t){ CODE(0) }, 8);
	memcpy(buf + (f0 - chunk) + L->iframe_previous, &cfw_shim, 8);
	memcpy(buf + (f1 - chunk) + L->iframe_code, &(uint64_t){ CODE(1) }, 8);
	memcpy(buf + (f1 - chunk) + L->iframe_previous, &f0, 8);
	region(&f, chunk, buf, CHUNK_BYTES);
	/* Its C stack: both _PyCFrames point at f1; the shim frame. */
	memset(buf, 0, STACK_BYTES);
	for (k = 0; k < 2; k++)
		memcpy(buf + STACK_BYTES - (tid - cf[k]) + L->cframe_current_frame, &f1, 8);
	buf[STACK_BYTES - NT_SHIM_DEPTH + L->iframe_owner] = (uint8_t)L->iframe_owned_by_cstack;
	memcpy(buf + STACK_BYTES - NT_SHIM_DEPTH + L->iframe_code, &(uint64_t){ CODE(9) }, 8);
	region(&f, tid - STACK_BYTES, buf, STACK_BYTES);
	free(buf);
	image_init(&f.im, f.in, f.len);
	image_load(&f.im);

	assert_int_equal(py_walker_new(&w, &f.t, &o), 0);
	image_attach(&f.im, py_walker_mem(w));
	cfw_image = py_walker_mem(w)->fake;
	py_walker_mem(w)->fake = cfw_readv;
	for (n = 0; n < 8; n++) {
		if (n == 3) /* the window is planned from the places seen */
			cfw_alone = cfw_windows = 0;
		image_set_sample(&f.im, n);
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, 1);
		assert_int_equal(rs->threads[0].flags & RAW_TORN, 0);
		assert_int_equal(rs->threads[0].depth, 2);
		assert_int_equal(rs->frames[rs->threads[0].first].code, CODE(1));
		assert_int_equal(rs->frames[rs->threads[0].first + 1].code, CODE(0));
	}
	assert_true(cfw_windows >= 5);
	assert_int_equal(cfw_alone, 0);
	py_walker_free(w);
	free(f.in);
}

/* The heap zone over memory not mapped (thread states not of one heap):
 * its read fails, which loses the reads after it, and the sample is whole
 * all the same (T3 read alone, 2 reads, and the threads' chunks, 1).  The
 * next sample tries it without its tail, which fails again; from then on
 * it is not read, and the samples are back to one read. */
static void test_heap_zone_over_a_gap(void **state)
{
	(void)state;
	nt_sel = 6;
	nt_heap_gaps = 1;
	assert_int_equal(nt_reads(NT_ZONE, 1), 3);
	nt_more = 1;
	assert_int_equal(nt_reads(NT_ZONE, 1), 2);
	nt_more = 3;
	assert_int_equal(nt_reads(NT_ZONE, 1), 1);
	nt_more = 0;
	nt_heap_gaps = 0;
	assert_int_equal(nt_reads(NT_ZONE, 1), 1);
}

/* ---- threads new at a sample (before 3.11) ------------------------------ */

/* n thread states at TSTATES + (NEW_AT_HEAD + i) * size, linked in order;
 * in sample 0 the list starts at the first of them, and from sample 1 on
 * at NEW_AT_HEAD more, in front (CPython links a new thread state at the
 * head), themselves linked in order.  Each has its own pthread id. */
#define NEW_AT_HEAD 2

static void grown_list(struct fake *f, uint8_t sel, uint32_t n)
{
	const struct py_layout *L;
	uint32_t total = n + NEW_AT_HEAD, i;
	size_t tsz, ihdr;
	uint8_t *ts, *hdr;

	image_target(&f->t, sel);
	L = f->t.layout;
	f->t.interp = INTERP;
	f->t.runtime = RUNTIME;
	tsz = (size_t)L->tstate_size;
	ihdr = (size_t)(L->interp_threads_head > L->interp_next ? L->interp_threads_head
								  : L->interp_next) + 8;
	assert_true(total * tsz <= 65535 && L->runtime_interp_head + 8 <= 65535);
	f->in = calloc(1, 3 * 65536 + 64 + total * tsz);
	hdr = calloc(1, 65535);
	ts = calloc(total, tsz);
	assert_non_null(f->in);
	assert_non_null(hdr);
	assert_non_null(ts);
	f->len = 0;
	memcpy(hdr + L->interp_threads_head, &(uint64_t){ TSTATES + NEW_AT_HEAD * tsz }, 8);
	region_when(f, INTERP, hdr, (uint16_t)ihdr, 1);
	memcpy(hdr + L->interp_threads_head, &(uint64_t){ TSTATES }, 8);
	region_when(f, INTERP, hdr, (uint16_t)ihdr, 0xfe);
	memset(hdr, 0, 65535);
	memcpy(hdr + L->runtime_interp_head, &(uint64_t){ INTERP }, 8);
	region(f, RUNTIME, hdr, 65535);
	for (i = 0; i < total; i++) {
		uint8_t *p = ts + (size_t)i * tsz;
		uint64_t next = i + 1 < total ? TSTATES + (uint64_t)(i + 1) * tsz : 0;

		memcpy(p + L->tstate_next, &next, 8);
		memcpy(p + L->tstate_interp, &f->t.interp, 8);
		memcpy(p + L->tstate_thread_id, &(uint64_t){ 0x7f0000000000ull + i * 0x1000 }, 8);
	}
	region(f, TSTATES, ts, (uint16_t)(total * tsz));
	free(ts);
	free(hdr);
	image_init(&f->im, f->in, f->len);
	image_load(&f->im);
}

/* Threads that appear between two samples are read with the list, each
 * alone, into a place of the walker's that no thread had held: each must
 * come out under its own thread state, as every other (raw_thread.tstate:
 * a consumer's key for the thread).  Before e96f807 the new ones came out
 * under the place's old one, 0, shared: two such threads then shared the
 * symbolizer's memo, which crashed pyspyc (record -t -i, 2.7, CI). */
static void test_new_threads_keep_their_state(void **state)
{
	static const uint8_t old_sels[] = { 0, 5 }; /* 2.7, 3.10 */
	struct walk_opts o = { .max_depth = 64, .max_threads = 16 };
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(old_sels); k++) {
		struct walk_stats st = { 0 };
		struct py_walker *w;
		struct raw_sample *rs;
		struct fake f;
		uint64_t tsz;
		uint32_t i, n = 3;
		int x_ok;

		grown_list(&f, old_sels[k], n);
		tsz = (uint64_t)f.t.layout->tstate_size;
		assert_int_equal(py_walker_new(&w, &f.t, &o), 0);
		image_attach(&f.im, py_walker_mem(w));
		image_set_sample(&f.im, 0);
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, n);
		for (i = 0; i < n; i++)
			assert_int_equal(rs->threads[i].tstate, TSTATES + (NEW_AT_HEAD + i) * tsz);
		image_set_sample(&f.im, 1);
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, n + NEW_AT_HEAD);
		for (i = 0; i < n + NEW_AT_HEAD; i++) {
			assert_int_equal(rs->threads[i].tstate, TSTATES + i * tsz);
			assert_int_equal(rs->threads[i].thread_id, 0x7f0000000000ull + i * 0x1000);
		}
		py_walker_free(w);
		free(f.in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_thread_read),
		cmocka_unit_test(test_threads_past_the_bound_counted),
		cmocka_unit_test(test_looping_list_ends_at_repeat),
		cmocka_unit_test(test_unreadable_thread_takes_no_room),
		cmocka_unit_test(test_exited_thread_not_read_ahead),
		cmocka_unit_test(test_idle_thread_not_read),
		cmocka_unit_test(test_asleep_gil_holder_read),
		cmocka_unit_test(test_new_idle_thread_not_read),
		cmocka_unit_test_setup(test_new_thread_in_ended_ones_place, nt_defaults),
		cmocka_unit_test_setup(test_new_thread_shim_frame_with_its_places, nt_defaults),
		cmocka_unit_test_setup(test_new_thread_shim_guess_among_empty, nt_defaults),
		cmocka_unit_test_setup(test_new_thread_found_asleep_then_running, nt_defaults),
		cmocka_unit_test_setup(test_new_thread_then_one_read, nt_defaults),
		cmocka_unit_test(test_shim_frame_in_window_read_once),
		cmocka_unit_test_setup(test_heap_zone_over_a_gap, nt_defaults),
		cmocka_unit_test(test_new_threads_keep_their_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
