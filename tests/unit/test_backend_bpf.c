/* test_backend_bpf.c - the eBPF backend's records as raw stacks
 * (pb_record_decode): lengths checked, shim frames left out, fingerprints
 * kept beside their frames, the chain's bottom checked per frame model,
 * truncation by the program's flag and by --max-depth, unknown threads and
 * failed reads torn.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/backend_bpf.h"
#include "pyspyc/py_layout.h"
#include "pyspyc_abi.h"

struct rec {
	struct pb_head h;
	struct pb_frame f[8];
};

static struct pb_decoded *d;

static int setup(void **state)
{
	(void)state;
	d = calloc(1, sizeof(*d));
	return d ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(d);
	return 0;
}

/* A record of n frames with owners owner[], code 0x1000 * (i + 1). */
static size_t make(struct rec *r, uint16_t flags, uint16_t n, const uint32_t *owner)
{
	uint16_t i;

	memset(r, 0, sizeof(*r));
	r->h.tgid = 100;
	r->h.tid = 101;
	r->h.time_ns = 5000;
	r->h.tstate = 0x7000;
	r->h.flags = flags;
	r->h.nframes = n;
	for (i = 0; i < n; i++) {
		r->f[i].code = 0x1000 * (uint64_t)(i + 1);
		r->f[i].instr = 0x10 + i;
		r->f[i].fp = 0xab00 + i;
		r->f[i].owner = owner ? owner[i] : 0;
	}
	return sizeof(r->h) + n * sizeof(r->f[0]);
}

/* 3.12+: owners 0 thread, 1 generator, 3 shim. */
static const struct pb_decode_opts v312 = { .objects = 0, .shim = 3, .gen_owner = 1,
					    .max_depth = 4096 };
/* 3.11: no shim frames. */
static const struct pb_decode_opts v311 = { .objects = 0, .shim = -1, .gen_owner = 1,
					    .max_depth = 4096 };
static const struct pb_decode_opts v310 = { .objects = 1, .shim = -1, .gen_owner = -1,
					    .max_depth = 4096 };

static void test_lengths(void **state)
{
	struct rec r;
	size_t len = make(&r, 0, 2, NULL);

	(void)state;
	assert_int_equal(pb_record_check(&r, len), 0);
	assert_int_equal(pb_record_check(&r, len - 1), -EBADMSG);
	assert_int_equal(pb_record_check(&r, len + sizeof(r.f[0])), -EBADMSG);
	assert_int_equal(pb_record_check(&r, sizeof(r.h) - 1), -EBADMSG);
	r.h.nframes = PB_MAX_FRAMES + 1;
	assert_int_equal(pb_record_check(&r, sizeof(r.h) + (PB_MAX_FRAMES + 1) *
					 sizeof(struct pb_frame)), -EBADMSG);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), -EBADMSG);
}

static void test_shims_left_out(void **state)
{
	static const uint32_t own[] = { 0, 0, 3, 0, 3 };
	struct rec r;
	size_t len = make(&r, 0, 5, own);

	(void)state;
	assert_int_equal(pb_record_decode(&r, len, &v312, d), 0);
	assert_int_equal(d->th.flags, 0);
	assert_int_equal(d->th.depth, 3);
	assert_int_equal(d->frames[0].code, 0x1000);
	assert_int_equal(d->frames[1].code, 0x2000);
	assert_int_equal(d->frames[2].code, 0x4000);
	assert_int_equal(d->fps[2], 0xab03);
	assert_int_equal(d->frames[2].instr, 0x13);
	assert_int_equal(d->th.tstate, 0x7000);
	assert_int_equal(d->th.native_tid, 101);
	assert_int_equal(d->at_ns, 5000);
	assert_int_equal(d->unknown, 0);
}

/* The chain's bottom: a shim from 3.12 (anything else is torn), not a
 * generator's frame in 3.11 and before. */
static void test_bottom(void **state)
{
	static const uint32_t no_shim[] = { 0, 0 }, gen[] = { 0, 1 }, gen_obj[] = { 0, 1 };
	struct rec r;
	size_t len;

	(void)state;
	len = make(&r, 0, 2, no_shim);
	assert_int_equal(pb_record_decode(&r, len, &v312, d), 0);
	assert_true(d->th.flags & RAW_TORN);
	assert_int_equal(d->th.depth, 0);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_false(d->th.flags & RAW_TORN);
	len = make(&r, 0, 2, gen);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_true(d->th.flags & RAW_TORN);
	len = make(&r, 0, 2, gen_obj);
	assert_int_equal(pb_record_decode(&r, len, &v310, d), 0);
	assert_true(d->th.flags & RAW_TORN);
	/* Truncated: the bottom was not reached, nothing to check. */
	len = make(&r, PB_TRUNCATED, 2, gen);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_int_equal(d->th.flags, RAW_TRUNCATED);
	assert_int_equal(d->th.depth, 2);
}

static void test_objects_owner_not_passed(void **state)
{
	static const uint32_t own[] = { 1, 0 };
	struct rec r;
	size_t len = make(&r, 0, 2, own);

	(void)state;
	/* A generator's frame inside the chain is fine; its mark is the
	 * program's, not a 3.11 owner value. */
	assert_int_equal(pb_record_decode(&r, len, &v310, d), 0);
	assert_int_equal(d->th.flags, 0);
	assert_int_equal(d->frames[0].owner, 0);
}

static void test_torn_and_unknown(void **state)
{
	struct rec r;
	size_t len;

	(void)state;
	len = make(&r, PB_READ_FAILED, 2, NULL);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_true(d->th.flags & RAW_TORN);
	assert_int_equal(d->th.depth, 0);
	len = make(&r, PB_UNKNOWN_THREAD, 0, NULL);
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_int_equal(d->unknown, 1);
	r.h.tstate = 0;
	assert_int_equal(pb_record_decode(&r, len, &v311, d), 0);
	assert_int_equal(d->th.tstate, 101); /* the tid stands in for the key */
}

static void test_max_depth(void **state)
{
	static const uint32_t own[] = { 0, 3, 0, 0, 0, 3 };
	struct pb_decode_opts o = v312;
	struct rec r;
	size_t len = make(&r, 0, 6, own);

	(void)state;
	o.max_depth = 2;
	assert_int_equal(pb_record_decode(&r, len, &o, d), 0);
	assert_int_equal(d->th.flags, RAW_TRUNCATED);
	assert_int_equal(d->th.depth, 2);
	assert_int_equal(d->frames[1].code, 0x3000); /* the shim between is not one */
	o.max_depth = 4;
	assert_int_equal(pb_record_decode(&r, len, &o, d), 0);
	assert_int_equal(d->th.flags, 0);
	assert_int_equal(d->th.depth, 4);
}

/* Every supported version's layout is one the program walks: 3.14 and
 * 3.15 too (their frames' code words tagged, 3.15's base frame). */
static void test_opts_of_layouts(void **state)
{
	static const uint16_t versions[] = { 0x0207, 0x0306, 0x030a, 0x030b, 0x030c, 0x030d,
					     0x030e, 0x030f };
	struct pb_decode_opts o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		const struct py_layout *L = py_layout_find(versions[i]);

		assert_non_null(L);
		assert_true(bpf_layout_ok(L));
		pb_decode_opts_of(L, 100, &o);
		assert_int_equal(o.max_depth, 100);
		assert_int_equal(o.objects, versions[i] <= 0x030a);
		if (versions[i] >= 0x030c)
			assert_true(o.shim >= 0);
		else
			assert_int_equal(o.shim, -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_shims_left_out),
		cmocka_unit_test(test_bottom),
		cmocka_unit_test(test_objects_owner_not_passed),
		cmocka_unit_test(test_torn_and_unknown),
		cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_opts_of_layouts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
