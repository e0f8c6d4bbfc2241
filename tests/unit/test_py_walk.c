/* test_py_walk.c - the frame walker over fake memory images: the fuzzers'
 * seeds of one thread running f0 <- f1 <- f2 (tests/fuzz/corpus/walk/, made
 * by tests/fuzz/gen_images.c) for 2.7, 3.9, 3.10, 3.11, 3.12 and 3.13, as
 * they are, with the chain made to loop, and with the thread in a
 * sub-interpreter too (sub-: one stack of both).  A loop ends the walk at the
 * repeat, the stack marked torn (dropped, never counted half), whatever
 * the depth limit.  A chain that does not reach the thread's bottom (a
 * generator's frame read while suspended, no shim frame at the end from
 * 3.12) or that starts at a stale shim frame is torn too, after being read
 * again TORN_REREADS times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/image.c"
#include "pyspyc/py_walk.h"

static const char *const versions[] = { "207", "309", "30a", "30b", "30c", "30d" };
static uint64_t last_rereads, last_torn;

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
	image_attach(&im, py_walker_mem(w));
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(py_walker_sample(w, NULL, NULL, 0, &x_ok, &rs, &st), 0);
		assert_int_equal(rs->nthreads, 1);
		if (pass && (rs->threads[0].depth != *depth || rs->threads[0].flags != *flags))
			fail_msg("%s%s: the second sample differs", prefix, version);
		*depth = rs->threads[0].depth;
		*flags = rs->threads[0].flags;
	}
	last_rereads = st.rereads;
	last_torn = st.torn;
	py_walker_free(w);
}

static void test_chain_whole(void **state)
{
	uint32_t depth, flags;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		walk_seed("", versions[i], 64, &depth, &flags);
		assert_int_equal(depth, 3);
		assert_int_equal(flags & (RAW_TORN | RAW_TRUNCATED), 0);
	}
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

static void test_generator_bottom_is_torn(void **state)
{
	static const char *const gen_versions[] = { "309", "30a", "30b", "30c", "30d" };
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
}

static void test_stale_trampoline_is_torn(void **state)
{
	(void)state;
	expect_torn("trampoline-", "30c");
}

/* The innermost frame read before it returned, its caller after it went
 * on: from 3.12 the caller's stacktop is -1 (it runs); before 3.11 the
 * frame object was freed (reference count 0). */
static void test_caller_gone_on_is_torn(void **state)
{
	static const char *const gone[] = { "207", "309", "30a", "30c", "30d" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		expect_torn("gone-", gone[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_whole),
		cmocka_unit_test(test_cycle_is_torn),
		cmocka_unit_test(test_own_caller_is_torn),
		cmocka_unit_test(test_subinterpreter_stitched),
		cmocka_unit_test(test_whole_chain_no_rereads),
		cmocka_unit_test(test_generator_bottom_is_torn),
		cmocka_unit_test(test_chain_not_ending_at_shim_is_torn),
		cmocka_unit_test(test_stale_trampoline_is_torn),
		cmocka_unit_test(test_caller_gone_on_is_torn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
