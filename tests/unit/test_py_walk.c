/* test_py_walk.c - the frame walker over fake memory images: the fuzzers'
 * seeds of one thread running f0 <- f1 <- f2 (tests/fuzz/corpus/walk/, made
 * by tests/fuzz/gen_images.c) for 2.7 and 3.9 to 3.15, as
 * they are, with the chain made to loop, and with the thread in a
 * sub-interpreter too (sub-: one stack of both).  A loop ends the walk at the
 * repeat, the stack marked torn (dropped, never counted half), whatever
 * the depth limit.  A chain that does not reach the thread's bottom (a
 * generator's frame read while suspended, no shim frame at the end from
 * 3.12) or that starts at a stale shim frame is torn too, after being read
 * again TORN_REREADS times, as is a chain before 3.11 whose check came too
 * late after its read.
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

static const char *const versions[] = { "207", "309", "30a", "30b", "30c", "30d", "30e",
					"30f" };
static uint64_t last_rereads, last_torn, last_slow_reads, last_returned;
/* The last sample's thread's code objects, innermost first. */
static uint64_t last_codes[4];
/* The walker's recheck in walk_seed (NULL: none). */
static recheck_fn seed_recheck;
/* The walker's clocks here, and how far each moves each time it is read:
 * by default neither moves, so that no check of a walk (before 3.11) is
 * late however slow the machine (a sanitizer build under load once took a
 * whole chain's check past its span on the real clocks, and read it again).
 * The late-check tests move them: a frozen CPU clock beside a moving one is
 * a sampler preempted. */
static int64_t clock_now, clock_step, cpu_now, cpu_step;

static int64_t stepping_clock(void)
{
	clock_now += clock_step;
	return clock_now;
}

static int64_t stepping_cpu_clock(void)
{
	cpu_now += cpu_step;
	return cpu_now;
}

/* Walk the seed file prefix+version twice (the second sample may take the
 * fast path); the thread's depth and flags after each must agree. */
static void walk_seed(const char *prefix, const char *version, uint32_t max_depth,
		      uint32_t *depth, uint32_t *flags)
{
	static uint8_t buf[1 << 16];
	char path[256];
	struct image im;
	struct py_target t;
	struct walk_opts o = { .max_depth = max_depth, .max_threads = 4 };
	struct walk_stats st = { 0 };
	struct py_walker *w;
	struct raw_sample *rs;
	size_t n;
	FILE *f;
	int pass, x_ok;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/walk/%s%s", prefix, version);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	/* The seed's header, as fuzz_walk reads it. */
	image_init(&im, buf, n);
	image_target(&t, image_u8(&im));
	(void)image_u8(&im);               /* the fuzzer's caps: ours instead */
	im.fail_after = image_u8(&im);
	t.interp = image_u64(&im);
	t.runtime = image_u64(&im);
	t.tstate_current = image_u64(&im);
	(void)image_u64(&im);              /* no extra read */
	image_load(&im);
	assert_int_equal(py_walker_new(&w, &t, &o), 0);
	py_walker_set_clock(w, stepping_clock);
	py_walker_set_cpu_clock(w, stepping_cpu_clock);
	if (seed_recheck)
		py_walker_set_recheck(w, seed_recheck, NULL);
	image_attach(&im, py_walker_mem(w));
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, 1);
		if (pass && (rs->threads[0].depth != *depth || rs->threads[0].flags != *flags))
			fail_msg("%s%s: the second sample differs", prefix, version);
		*depth = rs->threads[0].depth;
		*flags = rs->threads[0].flags;
		for (n = 0; n < *depth && n < 4; n++)
			last_codes[n] = rs->frames[rs->threads[0].first + n].code;
	}
	last_rereads = st.rereads;
	last_torn = st.torn;
	last_slow_reads = st.slow_reads;
	last_returned = st.returned;
	py_walker_free(w);
}

/* Walk the seed of version: its chain must come out whole. */
static void expect_whole(const char *version)
{
	uint32_t depth, flags;

	walk_seed("", version, 64, &depth, &flags);
	assert_int_equal(depth, 3);
	assert_int_equal(flags & (RAW_TORN | RAW_TRUNCATED), 0);
	/* the code objects' own addresses (gen_images' CODES), the tag of
	 * 3.14+'s code words cleared */
	assert_int_equal(last_codes[0], 0x40000);
	assert_int_equal(last_codes[2], 0x40000 + 2 * 0x400);
}

/* The seeds of the versions with frame objects (2.7, 3.9, 3.10). */
static const char *const objects[] = { "207", "309", "30a" };

static void test_chain_whole(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		expect_whole(versions[i]);
}

static void test_cycle_is_torn(void **state)
{
	static const uint32_t limits[] = { 4, 64, 4096 };
	uint32_t depth, flags;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		for (k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
			walk_seed("loop-", versions[i], limits[k], &depth, &flags);
			if (!(flags & RAW_TORN) || depth > 3)
				fail_msg("loop-%s, max depth %u: depth %u flags %#x", versions[i],
					 limits[k], depth, flags);
		}
}

/* A thread that entered a sub-interpreter has a thread state in each,
 * here running the same three frames: one thread, one stack of six. */
static void test_subinterpreter_stitched(void **state)
{
	uint32_t depth, flags;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		walk_seed("sub-", versions[i], 64, &depth, &flags);
		if (depth != 6 || (flags & (RAW_TORN | RAW_TRUNCATED)))
			fail_msg("sub-%s: depth %u flags %#x", versions[i], depth, flags);
	}
}

static void test_own_caller_is_torn(void **state)
{
	uint32_t depth, flags;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		walk_seed("self-", versions[i], 4096, &depth, &flags);
		if (!(flags & RAW_TORN) || depth > 1)
			fail_msg("self-%s: depth %u flags %#x", versions[i], depth, flags);
	}
}

/* Walk seed prefix+version: it must come out torn, read again four times
 * (TORN_REREADS) at each of the two samples, and counted torn once per
 * sample. */
static void expect_torn(const char *prefix, const char *version)
{
	uint32_t depth, flags;

	walk_seed(prefix, version, 64, &depth, &flags);
	if (!(flags & RAW_TORN) || depth != 0)
		fail_msg("%s%s: depth %u flags %#x", prefix, version, depth, flags);
	if (last_rereads != 8 || last_torn != 2)
		fail_msg("%s%s: %llu re-reads, %llu torn", prefix, version,
			 (unsigned long long)last_rereads, (unsigned long long)last_torn);
}

static void test_whole_chain_no_rereads(void **state)
{
	uint32_t depth, flags;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		walk_seed("", versions[i], 64, &depth, &flags);
		assert_int_equal(last_rereads, 0);
		assert_int_equal(last_torn, 0);
	}
}

/* Before 3.11 (frame objects: 2.7, 3.9, 3.10) a walk's frames are read
 * again to check them; a check that came too late after the copies walked
 * (pyspyc preempted in between: the thread may have left its frames and
 * come back to the same ones) proves nothing, and the thread is read again
 * and, late every time, dropped as torn.  The seeds' chain with a clock
 * that moves 1 ms at each reading of it while pyspyc's CPU clock does not
 * move; and 1 us: whole. */
static void test_late_check_is_torn(void **state)
{
	size_t i;

	(void)state;
	cpu_step = 0;
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		clock_step = 1000 * 1000;
		expect_torn("", objects[i]);
		clock_step = 1000;
		expect_whole(objects[i]);
		assert_int_equal(last_rereads, 0);
	}
	clock_step = cpu_step = 0;
}

/* The same late check, when pyspyc spent that time on the CPU (a slow
 * build, a deep stack: its CPU clock moves 1 ms as the wall clock does),
 * was not preempted: the walk is whole (a sanitizer build under load, a
 * thread 20,000 frames deep, 3.10: every sample was dropped). */
static void test_late_check_of_own_work_is_whole(void **state)
{
	size_t i;

	(void)state;
	clock_step = cpu_step = 1000 * 1000;
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		expect_whole(objects[i]);
		assert_int_equal(last_rereads, 0);
	}
	clock_step = cpu_step = 0;
}

/* Before 3.11 a frame not in the pages read with the sample is read with
 * its page, where its callers mostly are: the seeds' chain of three frames
 * on one page costs one read on the first sample (three before, one a
 * frame), none on the second (its page is read with the sample). */
static void test_chain_on_one_page_one_read(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		expect_whole(objects[i]);
		if (last_slow_reads != 1)
			fail_msg("%s: %llu frames read alone", objects[i],
				 (unsigned long long)last_slow_reads);
	}
}

static void test_generator_bottom_is_torn(void **state)
{
	static const char *const gen_versions[] = { "309", "30a", "30b", "30c", "30d", "30e",
						    "30f" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(gen_versions) / sizeof(gen_versions[0]); i++)
		expect_torn("gen-", gen_versions[i]);
}

static void test_chain_not_ending_at_shim_is_torn(void **state)
{
	(void)state;
	expect_torn("noshim-", "30c");
	expect_torn("noshim-", "30d");
	expect_torn("noshim-", "30e");
	expect_torn("noshim-", "30f");
	/* 3.15: at a shim frame, but not the thread's base frame */
	expect_torn("nobase-", "30f");
}

static void test_stale_trampoline_is_torn(void **state)
{
	(void)state;
	expect_torn("trampoline-", "30c");
}

/* The innermost frame read before it returned, its caller after it went
 * on: from 3.12 the caller's stacktop is -1 (it runs), and the stack is
 * torn.  Before 3.11 the frame object was freed (reference count 0): it is
 * left out, and the stack is its caller's as read (walk_checked). */
static void test_caller_gone_on_is_torn(void **state)
{
	static const char *const gone[] = { "30c", "30d" };
	uint32_t depth, flags;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		expect_torn("gone-", gone[i]);
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		walk_seed("gone-", objects[i], 64, &depth, &flags);
		if (depth != 2 || flags & RAW_TORN || last_returned != 2 || last_rereads)
			fail_msg("gone-%s: depth %u flags %#x, %llu returned", objects[i], depth,
				 flags, (unsigned long long)last_returned);
	}
}

/* Rechecks: one that says the innermost frame had returned each time the
 * thread is walked, then (its callers checked again) that they are whole;
 * and one that says so at every check. */
static int checks;
static int returned_once(void *ctx, const struct raw_sample *rs, const struct raw_thread *th)
{
	(void)ctx;
	(void)rs;
	(void)th;
	return checks++ % 2 == 0 ? RECHECK_RETURNED : RECHECK_WHOLE;
}

static int returned_twice(void *ctx, const struct raw_sample *rs, const struct raw_thread *th)
{
	(void)ctx;
	(void)rs;
	(void)th;
	return checks++ % 3 < 2 ? RECHECK_RETURNED : RECHECK_WHOLE;
}

static int returned_always(void *ctx, const struct raw_sample *rs, const struct raw_thread *th)
{
	(void)ctx;
	(void)rs;
	(void)th;
	return RECHECK_RETURNED;
}

/* 3.11: a stack whose innermost frame had returned as it was read (the
 * symbolizer's recheck says so: py_sym_stale_return) loses that frame and
 * is counted with its callers, not read again; one whose caller had
 * returned too loses both (RETURNED_MAX frames at most); one that is said
 * to have returned down to its last frame is torn. */
static void test_returned_frame_left_out(void **state)
{
	uint32_t depth, flags, whole_depth;
	uint64_t codes[4];

	(void)state;
	walk_seed("", "30b", 64, &whole_depth, &flags);
	memcpy(codes, last_codes, sizeof(codes));
	seed_recheck = returned_once;
	checks = 0;
	walk_seed("", "30b", 64, &depth, &flags);
	assert_int_equal(depth, whole_depth - 1);
	assert_int_equal(flags & RAW_TORN, 0);
	assert_int_equal(last_returned, 2); /* once a sample */
	assert_int_equal(last_rereads, 0);
	assert_memory_equal(last_codes, codes + 1, (whole_depth - 1) * sizeof(*codes));
	seed_recheck = returned_twice;
	checks = 0;
	walk_seed("", "30b", 64, &depth, &flags);
	assert_int_equal(depth, whole_depth - 2);
	assert_int_equal(flags & RAW_TORN, 0);
	assert_int_equal(last_returned, 2);
	assert_int_equal(last_rereads, 0);
	assert_int_equal(last_codes[0], codes[2]);
	seed_recheck = returned_always;
	expect_torn("", "30b");
	seed_recheck = NULL;
}

/* Before 3.11 a thread's next frames come from the free list, where its
 * last frames (or an ended thread's) went: the seed's thread (3.10: f0 <-
 * f1 <- f2 on one page) at sample 0, then at sample 1 a new chain of the
 * same code objects elsewhere on that page.  The walker reads the pages
 * frames were met on with the sample, so the new chain needs no read of
 * its own (before, each new frame was read one by one); and it comes out
 * whole, checked. */
static void test_new_frames_on_known_pages(void **state)
{
	static uint8_t seed[1 << 16], in[1 << 16];
	const size_t header = 35; /* walk_seed's fuzzer parameters */
	struct walk_opts o = { .max_depth = 64, .max_threads = 4 };
	struct py_target t;
	struct image im;
	struct rmem m;
	struct py_walker *w;
	struct raw_sample *rs;
	uint64_t interp, ts, old[3], neu[3], code[3];
	uint8_t fr[3][512], tsb[4096];
	size_t n, len;
	uint32_t pass, i;
	const struct py_layout *L;
	FILE *f;
	int x_ok;

	(void)state;
	f = fopen("tests/fuzz/corpus/walk/30a", "rb");
	assert_non_null(f);
	n = fread(seed, 1, sizeof(seed), f);
	fclose(f);
	/* Read the seed's chain through an image of it. */
	image_init(&im, seed, n);
	image_target(&t, image_u8(&im));
	L = t.layout;
	assert_int_equal(L->frame_model, PY_FRAMES_OBJECTS);
	assert_true((size_t)L->frame_size <= sizeof(fr[0]));
	(void)image_u8(&im);
	(void)image_u8(&im);
	interp = image_u64(&im);
	im.pos = header;
	image_load(&im);
	rmem_init(&m, t.pid);
	image_attach(&im, &m);
	assert_int_equal(rmem_read(&m, interp + (uint64_t)L->interp_threads_head, &ts, 8), 0);
	assert_int_equal(rmem_read(&m, ts + (uint64_t)L->tstate_frame, &old[0], 8), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(rmem_read(&m, old[i], fr[i], (size_t)L->frame_size), 0);
		memcpy(&code[i], fr[i] + L->frame_code, 8);
		if (i < 2)
			memcpy(&old[i + 1], fr[i] + L->frame_back, 8);
	}
	/* The new chain, 0x600 on, and the thread state's frame at sample 1
	 * (mask 2), listed before the seed's regions so that they win. */
	for (i = 0; i < 3; i++)
		neu[i] = old[0] + 0x600 + 0x200 * (uint64_t)i;
	assert_true((neu[2] + (uint64_t)L->frame_size - 1) / 4096 == old[0] / 4096);
	memcpy(in, seed, header);
	len = header;
#define REGION(addr, bytes, size) do { \
		uint64_t a_ = (addr); uint16_t l_ = (uint16_t)(size); \
		memcpy(in + len, &a_, 8); memcpy(in + len + 8, &l_, 2); in[len + 10] = 2; \
		memcpy(in + len + 11, (bytes), l_); len += 11 + (size_t)l_; } while (0)
	/* A read takes the region it starts in whole: the thread state
	 * again, all of it, with the new frame. */
	assert_true((size_t)L->tstate_size <= sizeof(tsb));
	assert_int_equal(rmem_read(&m, ts, tsb, (size_t)L->tstate_size), 0);
	memcpy(tsb + L->tstate_frame, &neu[0], 8);
	REGION(ts, tsb, L->tstate_size);
	for (i = 0; i < 3; i++) {
		uint64_t back = i < 2 ? neu[i + 1] : 0;

		memcpy(fr[i] + L->frame_back, &back, 8);
		REGION(neu[i], fr[i], L->frame_size);
	}
#undef REGION
	memcpy(in + len, seed + header, n - header);
	len += n - header;
	image_init(&im, in, len);
	image_target(&t, image_u8(&im));
	(void)image_u8(&im);
	im.fail_after = image_u8(&im);
	t.interp = image_u64(&im);
	t.runtime = image_u64(&im);
	t.tstate_current = image_u64(&im);
	(void)image_u64(&im);
	image_load(&im);
	assert_int_equal(py_walker_new(&w, &t, &o), 0);
	py_walker_set_clock(w, stepping_clock);
	py_walker_set_cpu_clock(w, stepping_cpu_clock);
	image_attach(&im, py_walker_mem(w));
	for (pass = 0; pass < 2; pass++) {
		struct walk_stats st = { 0 };
		const struct raw_thread *th;

		image_set_sample(&im, pass);
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, 1);
		th = &rs->threads[0];
		if (th->depth != 3)
			fail_msg("sample %u: depth %u flags %#x", pass, th->depth, th->flags);
		assert_false(th->flags & RAW_TORN);
		for (i = 0; i < 3; i++) {
			assert_int_equal(rs->frames[th->first + i].code, code[i]);
			assert_int_equal(rs->addrs[th->first + i], pass ? neu[i] : old[i]);
		}
		if (pass)
			assert_int_equal(st.slow_reads, 0);
	}
	py_walker_free(w);
}

/* Before 3.11, a thread that moved on between the walk's copies and its
 * check's (objects_verify, walk_checked): the seed's chain f0 <- f1 <- f2
 * (2.7, 3.9, 3.10) read through an image that changes to a second state
 * once a read has copied f0.  The second state's thread is:
 *  - back in f1, f0 freed: f0 is left out, the stack f1's as read (f1 may
 *    have gone on to another call by then);
 *  - in a new frame f0 called: the stack whole;
 *  - in f2: the check fails, and the thread read again is in f2;
 * and a walk that found f0 freed (the first state), the check finding it
 * called again, leaves f0 out too (it had returned when it was read). */
struct moving {
	struct image im;
	uint64_t watch;
};

static ssize_t moving_readv(void *ctx, const struct iovec *local, unsigned long nl,
			    const struct iovec *remote, unsigned long nr)
{
	struct moving *mv = ctx;
	ssize_t r = image_readv(&mv->im, local, nl, remote, nr);
	unsigned long i;

	for (i = 0; i < nr; i++) {
		uint64_t a = (uint64_t)(uintptr_t)remote[i].iov_base;

		if (mv->watch >= a && mv->watch - a < remote[i].iov_len)
			image_set_sample(&mv->im, 1);
	}
	return r;
}

enum move { BACK_IN_CALLER, INTO_CALLEE, TWO_UP, DEAD_THEN_CALLED };

/* One sample of version's seed, the thread moving as mv says; the
 * thread's depth, its code objects into codes[], and the sample's stats. */
static uint32_t walk_moving(const char *version, enum move mv, uint64_t *codes,
			    struct walk_stats *st)
{
	static uint8_t seed[1 << 16], in[1 << 16];
	const size_t header = 35;
	struct walk_opts o = { .max_depth = 64, .max_threads = 4 };
	struct py_target t;
	struct moving m;
	struct rmem probe;
	struct py_walker *w;
	struct raw_sample *rs;
	const struct py_layout *L;
	uint64_t interp, ts, f[3], zero = 0, one = 1, cur;
	uint8_t fr[512], tsb[4096];
	char path[256];
	size_t n, len;
	uint32_t depth, i;
	FILE *fp;
	int x_ok;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/walk/%s", version);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(seed, 1, sizeof(seed), fp);
	fclose(fp);
	image_init(&m.im, seed, n);
	image_target(&t, image_u8(&m.im));
	L = t.layout;
	assert_int_equal(L->frame_model, PY_FRAMES_OBJECTS);
	(void)image_u8(&m.im);
	(void)image_u8(&m.im);
	interp = image_u64(&m.im);
	m.im.pos = header;
	image_load(&m.im);
	rmem_init(&probe, t.pid);
	image_attach(&m.im, &probe);
	assert_int_equal(rmem_read(&probe, interp + (uint64_t)L->interp_threads_head, &ts, 8), 0);
	assert_int_equal(rmem_read(&probe, ts + (uint64_t)L->tstate_frame, &f[0], 8), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(rmem_read(&probe, f[i], fr, (size_t)L->frame_size), 0);
		memcpy(&f[i + 1], fr + L->frame_back, 8);
	}
	assert_int_equal(rmem_read(&probe, ts, tsb, (size_t)L->tstate_size), 0);
	memcpy(in, seed, header);
	len = header;
#define REGION(addr, bytes, size, mask) do { \
		uint64_t a_ = (addr); uint16_t l_ = (uint16_t)(size); \
		memcpy(in + len, &a_, 8); memcpy(in + len + 8, &l_, 2); in[len + 10] = (mask); \
		memcpy(in + len + 11, (bytes), l_); len += 11 + (size_t)l_; } while (0)
	/* f0 freed: in the second state (back in f1), or the first. */
	assert_int_equal(rmem_read(&probe, f[0], fr, (size_t)L->frame_size), 0);
	memcpy(fr + L->frame_refcnt, &zero, 8);
	if (mv == BACK_IN_CALLER)
		REGION(f[0], fr, L->frame_size, 2);
	if (mv == DEAD_THEN_CALLED)
		REGION(f[0], fr, L->frame_size, 1);
	/* The thread state of the second state. */
	cur = mv == BACK_IN_CALLER ? f[1] : mv == TWO_UP ? f[2] : mv == INTO_CALLEE ? f[0] + 0x600 : f[0];
	memcpy(tsb + L->tstate_frame, &cur, 8);
	REGION(ts, tsb, L->tstate_size, 2);
	if (mv == INTO_CALLEE) {
		/* A new frame, alive, called by f0 (the code is f2's). */
		assert_int_equal(rmem_read(&probe, f[2], fr, (size_t)L->frame_size), 0);
		memcpy(fr + L->frame_back, &f[0], 8);
		memcpy(fr + L->frame_refcnt, &one, 8);
		assert_true((cur + (uint64_t)L->frame_size - 1) / 4096 == f[0] / 4096);
		REGION(cur, fr, L->frame_size, 2);
	}
#undef REGION
	memcpy(in + len, seed + header, n - header);
	len += n - header;
	image_init(&m.im, in, len);
	image_target(&t, image_u8(&m.im));
	(void)image_u8(&m.im);
	m.im.fail_after = image_u8(&m.im);
	t.interp = image_u64(&m.im);
	t.runtime = image_u64(&m.im);
	t.tstate_current = image_u64(&m.im);
	(void)image_u64(&m.im);
	image_load(&m.im);
	m.watch = f[0];
	assert_int_equal(py_walker_new(&w, &t, &o), 0);
	py_walker_set_clock(w, stepping_clock);
	py_walker_set_cpu_clock(w, stepping_cpu_clock);
	py_walker_mem(w)->fake = moving_readv;
	py_walker_mem(w)->fake_ctx = &m;
	memset(st, 0, sizeof(*st));
	assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, st), 0);
	assert_int_equal(rs->nthreads, 1);
	depth = rs->threads[0].depth;
	assert_int_equal(depth == 0, (rs->threads[0].flags & RAW_TORN) != 0);
	for (i = 0; i < depth && i < 3; i++)
		codes[i] = rs->frames[rs->threads[0].first + i].code;
	py_walker_free(w);
	return depth;
}

static void test_objects_thread_moved_on(void **state)
{
	size_t v;

	(void)state;
	for (v = 0; v < sizeof(objects) / sizeof(objects[0]); v++) {
		const char *ver = objects[v];
		uint64_t whole[3], codes[3];
		struct walk_stats st;
		uint32_t d;

		expect_whole(ver);
		memcpy(whole, last_codes, sizeof(whole));
		d = walk_moving(ver, BACK_IN_CALLER, codes, &st);
		if (d != 2 || memcmp(codes, whole + 1, 2 * sizeof(*whole)) || st.returned != 1 ||
		    st.rereads)
			fail_msg("%s back in caller: depth %u, %llu returned, %llu re-reads", ver, d,
				 (unsigned long long)st.returned, (unsigned long long)st.rereads);
		d = walk_moving(ver, INTO_CALLEE, codes, &st);
		if (d != 3 || memcmp(codes, whole, sizeof(whole)) || st.rereads || st.returned)
			fail_msg("%s into a callee: depth %u, %llu re-reads", ver, d,
				 (unsigned long long)st.rereads);
		d = walk_moving(ver, TWO_UP, codes, &st);
		if (d != 1 || codes[0] != whole[2] || st.rereads != 1)
			fail_msg("%s two frames up: depth %u, %llu re-reads", ver, d,
				 (unsigned long long)st.rereads);
		d = walk_moving(ver, DEAD_THEN_CALLED, codes, &st);
		if (d != 2 || memcmp(codes, whole + 1, 2 * sizeof(*whole)) || st.returned != 1 ||
		    st.rereads)
			fail_msg("%s freed, then called again: depth %u, %llu re-reads", ver, d,
				 (unsigned long long)st.rereads);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_whole),
		cmocka_unit_test(test_cycle_is_torn),
		cmocka_unit_test(test_own_caller_is_torn),
		cmocka_unit_test(test_subinterpreter_stitched),
		cmocka_unit_test(test_whole_chain_no_rereads),
		cmocka_unit_test(test_late_check_is_torn),
		cmocka_unit_test(test_late_check_of_own_work_is_whole),
		cmocka_unit_test(test_chain_on_one_page_one_read),
		cmocka_unit_test(test_generator_bottom_is_torn),
		cmocka_unit_test(test_chain_not_ending_at_shim_is_torn),
		cmocka_unit_test(test_stale_trampoline_is_torn),
		cmocka_unit_test(test_caller_gone_on_is_torn),
		cmocka_unit_test(test_returned_frame_left_out),
		cmocka_unit_test(test_new_frames_on_known_pages),
		cmocka_unit_test(test_objects_thread_moved_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
