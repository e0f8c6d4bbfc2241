/* test_py_layout.c - layouts are checked before anything reads through
 * them (py_layout_check), above all those made from a target's
 * _Py_DebugOffsets, whose offsets are the target's word. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pyspyc/py_runtime.h"

static const uint32_t versions[] = { 0x0207, 0x0306, 0x0307, 0x0308, 0x0309,
				     0x030a, 0x030b, 0x030c, 0x030d, 0x030e, 0x030f };

static void test_generated_pass(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		assert_int_equal(py_layout_check(py_layout_find(versions[i])), 0);
}

static void test_fields_outside(void **state)
{
	struct py_layout L = *py_layout_find(0x030d);

	(void)state;
	L.unicode_ascii_data = 4000;   /* a str header past its buffer */
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030d);
	L.iframe_size = 2000;
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030d);
	L.iframe_owner = L.iframe_size; /* just past the frame */
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030d);
	L.code_size = 1 << 20;
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x0207);
	L.bytes_size = L.bytes_data;   /* the length inside the data */
	assert_int_equal(py_layout_check(&L), -EINVAL);
}

/* Fields the walker reads from every thread state, absent (-1): rd64 at
 * -1, before the thread-state copy (found by fuzz_debug_offsets). */
static void test_thread_state_fields_absent(void **state)
{
	struct py_layout L = *py_layout_find(0x030d);

	(void)state;
	L.tstate_datastack_top = -1;
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030d);
	L.tstate_datastack_chunk = -1;
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030d);
	L.tstate_current_frame = -1;   /* 3.13 has no cframe to fall back on */
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x030c);
	L.tstate_current_frame = -1;   /* 3.12 reads the frame through cframe */
	assert_int_equal(py_layout_check(&L), 0);
	L.tstate_cframe = -1;
	assert_int_equal(py_layout_check(&L), -EINVAL);
	L = *py_layout_find(0x0309);
	L.tstate_frame = -1;
	assert_int_equal(py_layout_check(&L), -EINVAL);
}

/* A fake target memory: _Py_DebugOffsets at address 4096. */
static uint64_t offsets[112];

static ssize_t fake_readv(void *ctx, const struct iovec *local, unsigned long nl,
			  const struct iovec *remote, unsigned long nr)
{
	(void)ctx;
	if (nl != 1 || nr != 1 || (uintptr_t)remote[0].iov_base != 4096 ||
	    remote[0].iov_len > sizeof(offsets)) {
		errno = EFAULT;
		return -1;
	}
	memcpy(local[0].iov_base, offsets, remote[0].iov_len);
	return (ssize_t)remote[0].iov_len;
}

static int apply_with(int word, uint64_t value)
{
	struct py_target t;
	struct rmem m;

	memset(&t, 0, sizeof(t));
	t.layout_buf = *py_layout_find(0x030d);
	t.layout = &t.layout_buf;
	t.version_hex = 0x030d00f0;
	t.runtime = 4096;
	memset(offsets, 0, sizeof(offsets));
	memcpy(&offsets[0], "xdebugpy", 8);
	offsets[1] = 0x030d00f0;
	offsets[5] = 632;
	offsets[9] = 7344;
	offsets[19] = 304;
	offsets[21] = 8;
	offsets[22] = 16;
	offsets[23] = 72;
	offsets[29] = 8;
	offsets[30] = 0;
	offsets[31] = 56;
	offsets[32] = 72;
	offsets[33] = 70;
	offsets[35] = 112;
	offsets[36] = 120;
	offsets[37] = 128;
	offsets[38] = 136;
	offsets[39] = 68;
	offsets[43] = 200;
	offsets[45] = 8;
	offsets[65] = 16;
	offsets[66] = 32;
	offsets[68] = 32;
	offsets[69] = 16;
	offsets[70] = 40;
	offsets[word] = value;
	rmem_init(&m, 1);
	m.fake = fake_readv;
	return py_debug_offsets_apply(&t, &m);
}

static void test_debug_offsets(void **state)
{
	(void)state;
	assert_int_equal(apply_with(2, 0), 0); /* as written: a usable layout */
	/* asciiobject_size past the str header buffer: a stack overflow in
	 * the symbolizer's read_str before the check */
	assert_int_equal(apply_with(70, 4000), -ENOEXEC);
	/* interpreter frame size past the walker's frame buffer */
	assert_int_equal(apply_with(32, 2000), -ENOEXEC);
	/* a code object field past co_code_adaptive */
	assert_int_equal(apply_with(36, 4000), -ENOEXEC);
	/* the bytes length past the header */
	assert_int_equal(apply_with(65, 60), -ENOEXEC);
	/* an offset too large to keep reads as absent (-1), which a field
	 * every version has cannot be: rd64 at -1 before the buffer */
	assert_int_equal(apply_with(65, 1u << 20), -ENOEXEC);
}

/* 3.14+: f_executable is a _PyStackRef. */
static void test_frame_code(void **state)
{
	const struct py_layout *L13 = py_layout_find(0x030d), *L14 = py_layout_find(0x030e);

	(void)state;
	assert_int_equal(py_frame_code(L13, 0x7f0000001001), 0x7f0000001001);
	assert_int_equal(py_frame_code(L14, 0x7f0000001000), 0x7f0000001000);
	assert_int_equal(py_frame_code(L14, 0x7f0000001001), 0x7f0000001000); /* borrowed */
	assert_int_equal(py_frame_code(L14, 1), 0);                           /* NULL */
	assert_int_equal(py_frame_code(L14, 42 << 2 | 3), 0);                 /* an int */
	assert_int_equal(py_frame_code(py_layout_find(0x030f), 0x7f0000002001), 0x7f0000002000);
}

/* The 3.15.2 default build's own table (the words pyspyc takes; values
 * of the compiled release), read into the hand-written 3.15 layout. */
static int apply_315_words(const int *words, const uint64_t *values, size_t n,
			   struct py_target *t);

static int apply_315(int word, uint64_t value, struct py_target *t)
{
	return apply_315_words(&word, &value, 1, t);
}

static int apply_315_words(const int *words, const uint64_t *values, size_t n,
			   struct py_target *t)
{
	static const struct { int word; uint64_t value; } w[] = {
		{ 5, 936 }, { 8, 7264 }, { 9, 7336 }, { 12, 7592 }, { 15, 16 },
		{ 16, 7736 }, { 18, 7752 }, { 19, 7744 }, { 22, 888 }, { 24, 8 }, { 25, 16 },
		{ 26, 72 }, { 27, 80 }, { 30, 176 }, { 31, 184 }, { 32, 256 },
		{ 40, 8 }, { 41, 0 }, { 42, 56 }, { 43, 80 }, { 44, 74 },
		{ 48, 112 }, { 49, 120 }, { 50, 128 }, { 51, 136 }, { 52, 68 },
		{ 53, 52 }, { 54, 96 }, { 55, 104 }, { 56, 208 }, { 59, 8 },
		{ 61, 24 }, { 63, 168 }, { 64, 32 }, { 65, 288 }, { 67, 888 },
		{ 69, 32 }, { 70, 16 }, { 79, 32 }, { 80, 40 }, { 82, 16 },
		{ 84, 16 }, { 85, 24 }, { 87, 16 }, { 88, 32 }, { 90, 32 },
		{ 91, 16 }, { 92, 40 }, { 93, 56 },
	};
	struct rmem m;
	size_t i;

	memset(t, 0, sizeof(*t));
	t->layout_buf = *py_layout_find(0x030f);
	t->layout = &t->layout_buf;
	t->version_hex = 0x030f02f0;
	t->runtime = 4096;
	memset(offsets, 0, sizeof(offsets));
	memcpy(&offsets[0], "xdebugpy", 8);
	offsets[1] = 0x030f02f0;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		offsets[w[i].word] = w[i].value;
	for (i = 0; i < n; i++)
		offsets[words[i]] = values[i];
	rmem_init(&m, 1);
	m.fake = fake_readv;
	return py_debug_offsets_apply(t, &m);
}

/* A patch release that inserted 8 bytes in PyThreadState before thread_id
 * and 8 in the code object before _co_firsttraceable (as
 * tests/apps/fake_cpython.c -DPATCH=8 lays out): the table's fields move,
 * and the data-stack top and _co_firsttraceable, which it lacks, move with
 * their neighbours. */
static void test_debug_offsets_moved(void **state)
{
	static const int words[] = { 22, 30, 31, 32, 56 };
	static const uint64_t values[] = { 896, 184, 192, 264, 216 };
	const struct py_layout *H = py_layout_find(0x030f);
	struct py_target t;
	const struct py_layout *L = &t.layout_buf;

	(void)state;
	assert_int_equal(apply_315_words(words, values, 5, &t), 0);
	assert_int_equal(L->tstate_size, 896);
	assert_int_equal(L->tstate_thread_id, 184);
	assert_int_equal(L->tstate_datastack_chunk, 264);
	assert_int_equal(L->tstate_datastack_top, H->tstate_datastack_top + 8);
	assert_int_equal(L->code_adaptive, 216);
	assert_int_equal(L->code_firsttraceable, H->code_firsttraceable + 8);
	/* unmoved: as written */
	assert_int_equal(apply_315(2, 0, &t), 0);
	assert_int_equal(L->tstate_datastack_top, H->tstate_datastack_top);
	assert_int_equal(L->code_firsttraceable, H->code_firsttraceable);
	assert_int_equal(L->tstate_size, H->tstate_size);
}

static void test_debug_offsets_315(void **state)
{
	struct py_target t;
	const struct py_layout *L = &t.layout_buf;

	(void)state;
	assert_int_equal(apply_315(3, 346568, &t), 0); /* runtime_state.size */
	assert_int_equal(L->tstate_base_frame, 80);
	assert_int_equal(L->tstate_thread_id, 176);
	assert_int_equal(L->tstate_native_thread_id, 184);
	assert_int_equal(L->tstate_datastack_chunk, 256);
	assert_int_equal(L->iframe_owner, 74);
	assert_int_equal(L->iframe_size, 80);
	assert_int_equal(L->iframe_stacktop, -1);
	assert_int_equal(L->iframe_localsplus, 80); /* tagged: py_frame_local */
	assert_int_equal(L->code_adaptive, 208);
	assert_int_equal(L->unicode_compact_data, 56);
	assert_int_equal(L->gil_locked, 16);
	assert_int_equal(L->gil_last_holder, 8);
	assert_int_equal(L->heaptype_cached_keys, 888);
	assert_int_equal(L->op_return_value, 33);
	assert_int_equal(L->op_return_const, -1);
	/* a free-threaded build is refused, and known as one */
	assert_int_equal(apply_315(2, 1, &t), -EPROTONOSUPPORT);
	assert_int_equal(t.free_threaded, 1);
	/* the owner past the frame the table gives; base_frame past the
	 * thread state, or too large to keep (read as absent: refused, as
	 * 3.15 has one) */
	assert_int_equal(apply_315(44, 200, &t), -ENOEXEC);
	assert_int_equal(apply_315(27, 4000, &t), -ENOEXEC);
	assert_int_equal(apply_315(27, 1u << 20, &t), -ENOEXEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_pass),
		cmocka_unit_test(test_fields_outside),
		cmocka_unit_test(test_thread_state_fields_absent),
		cmocka_unit_test(test_debug_offsets),
		cmocka_unit_test(test_frame_code),
		cmocka_unit_test(test_debug_offsets_315),
		cmocka_unit_test(test_debug_offsets_moved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
