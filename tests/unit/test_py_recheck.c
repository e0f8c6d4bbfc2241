/* test_py_recheck.c - the symbolizer's recheck for the walker
 * (py_sym_stale_return), over the fuzzers' 3.11 image of three code objects
 * f0, f1, f2 (tests/fuzz/corpus/code/30b) with bytecode put in front: f0
 * NOP, RETURN_VALUE, NOP; f1 and f2 NOPs.  The recheck tells a stack the
 * symbolizer would drop as torn by its two innermost frames, resolving code
 * objects it has not met yet (once: the sample's own check finds them
 * cached), so that the walker reads such a thread again instead of the
 * tick being lost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image311.h"
#include "pyspyc/clock.h"
#include "pyspyc/py_code.h"
#include "pyspyc/stacktab.h"
#include "pyspyc_abi.h"

#define NOP 9     /* 3.11 */
/* Where the frames of setup_frames are, 256 bytes apart. */
#define FRAMES 0x7e0000001000ull

struct fixture {
	uint8_t in[1 << 16];
	struct image im;
	struct py_target t;
	struct rmem m;
	struct stacktab *tab;
	struct py_symbolizer *sym;
	uint64_t code[3];
};

/* A region of the image, in the samples of mask (image_set_sample; 0: all). */
static size_t put_region_when(uint8_t *p, uint64_t addr, const uint8_t *bytes, uint16_t len,
			      uint8_t mask)
{
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 2);
	p[10] = mask;
	memcpy(p + 11, bytes, len);
	return 11 + (size_t)len;
}

static size_t put_region(uint8_t *p, uint64_t addr, const uint8_t *bytes, uint16_t len)
{
	return put_region_when(p, addr, bytes, len, 0);
}

/* The fixture; with reuse, in sample 1 (image_set_sample) f1's address holds
 * another code object: f1's window with another first line.  With frames,
 * three interpreter frames at FRAMES run f0, f1, f2; in sample 1 the second
 * runs f0 instead (it returned, its place taken by another call). */
static int setup_image(void **state, int reuse, int frames)
{
	static const struct stacktab_limits lim = { 1024, 4096, 4096 };
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct sym_opts so = { .lineno = 1 };
	uint8_t seed[1 << 16], bc[3][6];
	size_t n, len;
	int i;

	assert_non_null(fx);
	n = seed311_read(seed, sizeof(seed));
	seed311_target(seed, &fx->t, fx->code);
	for (i = 0; i < 3; i++) {
		uint8_t op = i == 0 ? (uint8_t)fx->t.layout->op_return_value : NOP;

		bc[i][0] = NOP, bc[i][2] = op, bc[i][4] = NOP;
		bc[i][1] = bc[i][3] = bc[i][5] = 0;
	}
	/* Regions listed first win over the seed's. */
	memcpy(fx->in, seed, SEED311_HEADER);
	len = SEED311_HEADER;
	if (reuse) {
		const struct py_layout *L = fx->t.layout;
		uint8_t win[1024];
		struct image im;
		struct rmem m;
		int32_t line;

		assert_true((size_t)L->code_size <= sizeof(win));
		seed311_attach(&im, seed, n, &fx->t, &m);
		assert_int_equal(rmem_read(&m, fx->code[1], win, (size_t)L->code_size), 0);
		memcpy(&line, win + L->code_firstlineno, 4);
		line++;
		memcpy(win + L->code_firstlineno, &line, 4);
		len += put_region_when(fx->in + len, fx->code[1], win, (uint16_t)L->code_size, 2);
	}
	for (i = 0; i < 3; i++)
		len += put_region(fx->in + len, fx->code[i] + (uint64_t)fx->t.layout->code_adaptive,
				  bc[i], sizeof(bc[i]));
	if (frames) {
		uint64_t code_at = (uint64_t)fx->t.layout->iframe_code;

		len += put_region_when(fx->in + len, FRAMES + 0x100 + code_at,
				       (const uint8_t *)&fx->code[0], 8, 2);
		for (i = 0; i < 3; i++)
			len += put_region(fx->in + len, FRAMES + 0x100 * (uint64_t)i + code_at,
					  (const uint8_t *)&fx->code[i], 8);
	}
	memcpy(fx->in + len, seed + SEED311_HEADER, n - SEED311_HEADER);
	len += n - SEED311_HEADER;
	seed311_attach(&fx->im, fx->in, len, &fx->t, &fx->m);
	assert_int_equal(stacktab_new(&fx->tab, &lim), 0);
	assert_int_equal(py_sym_new(&fx->sym, &fx->t, &fx->m, fx->tab, &so), 0);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_image(state, 0, 0);
}

static int setup_reuse(void **state)
{
	return setup_image(state, 1, 0);
}

static int setup_frames(void **state)
{
	return setup_image(state, 0, 1);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	py_sym_free(fx->sym);
	stacktab_free(fx->tab);
	free(fx);
	return 0;
}

/* Frame i of the thread runs code object code[c] at byte offset off. */
static struct raw_frame frame(const struct fixture *fx, int c, uint64_t off)
{
	return (struct raw_frame){ .code = fx->code[c],
				   .instr = fx->code[c] +
					    (uint64_t)fx->t.layout->code_adaptive + off };
}

static int recheck(struct fixture *fx, struct raw_frame f0, struct raw_frame f1)
{
	struct raw_frame frames[3] = { f0, f1, frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };

	return py_sym_stale_return(fx->sym, &rs, &th);
}

/* Nothing cached: the innermost frame at its return while its caller went
 * on (at a NOP, not in a call) had returned: RECHECK_RETURNED, the walker
 * leaves it out.  Before the recheck resolved code objects itself it could
 * not tell, and such stacks were dropped later. */
static void test_return_with_caller_gone_on(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(recheck(fx, frame(fx, 0, 2), frame(fx, 1, 2)), RECHECK_RETURNED);
}

/* The caller at a return has returned itself. */
static void test_caller_at_return(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(recheck(fx, frame(fx, 1, 2), frame(fx, 0, 2)), 1);
}

static void test_whole_stack(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(recheck(fx, frame(fx, 0, 0), frame(fx, 1, 2)), 0);
	assert_int_equal(recheck(fx, frame(fx, 0, 4), frame(fx, 1, 0)), 0);
}

/* A frame whose code pointer holds no code object, or whose instruction is
 * past its code's bytes, was read while being reused. */
static void test_no_code_object(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame f0 = frame(fx, 0, 0);

	f0.code += 8;
	f0.instr += 8;
	assert_int_equal(recheck(fx, f0, frame(fx, 1, 2)), 1);
	assert_int_equal(recheck(fx, frame(fx, 1, 2), f0), 1);
}

static void test_past_the_code(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(recheck(fx, frame(fx, 0, 6), frame(fx, 1, 2)), 1);
	assert_int_equal(recheck(fx, frame(fx, 0, 0), frame(fx, 1, 64)), 1);
}

/* Before the code: a thread's frame there has not started; a generator's
 * (owner 1) one code unit before the first instruction is where it starts
 * (its first line), further is outside, as symbolize_frames has it (one
 * rule for both: frame_pos). */
static void test_before_the_code(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame start = frame(fx, 1, 0), before = frame(fx, 1, 0);
	struct raw_frame pushed = frame(fx, 1, 0);

	start.instr -= 2;
	before.instr -= 8;
	pushed.instr -= 8;
	start.owner = before.owner = 1;
	assert_int_equal(recheck(fx, frame(fx, 0, 0), pushed), 0);
	assert_int_equal(recheck(fx, frame(fx, 0, 0), start), 0);
	assert_int_equal(recheck(fx, frame(fx, 0, 0), before), 1);
	assert_int_equal(recheck(fx, before, frame(fx, 1, 2)), 1);
}

/* Code objects the recheck resolved are counted once, with the next sample,
 * which finds them cached: f0 and f1 by the recheck, f2 by the sample. */
static void test_resolved_once(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct sym_stats st = { 0 };

	assert_int_equal(py_sym_stale_return(fx->sym, &rs, &th), 0);
	assert_int_equal(py_sym_stale_return(fx->sym, &rs, &th), 0);
	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	assert_int_equal(st.code_misses, 3);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.stacks, 1);
	py_sym_add(fx->sym, &rs, NULL, 0, 2, &st);
	assert_int_equal(st.code_misses, 3);
}

/* A sample of three code objects not met yet resolves them all from two
 * reads: their windows, then in one call what they name (names, file,
 * line tables, bytecode); one by one that was seven reads each.  They
 * come out with the names the seed gives them. */
static void test_resolved_in_two_reads(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct sym_stats st = { 0 };
	uint64_t reads = fx->m.reads;
	struct sym_frame d[3];
	char name[8];
	int i;

	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	assert_int_equal(st.code_misses, 3);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.stacks, 1);
	assert_int_equal(fx->m.reads - reads, 2);
	assert_int_equal(py_sym_describe(fx->sym, &rs, &th, d, 3), 3);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_string_equal(d[i].name, name);
	}
}

/* dump describes a sample one thread at a time: each description checks
 * and resolves that thread's code objects, not every thread's (which, once
 * per thread, made a dump of 1100 threads read for 7 s).  Thread 0 runs f0,
 * thread 1 f1 and f2: describing thread 0 reads one code object's window
 * and names, thread 1 then two of each. */
static void test_describe_reads_its_thread(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th[2] = { { .depth = 1, .tstate = 1 },
				    { .first = 1, .depth = 2, .tstate = 2 } };
	struct raw_sample rs = { .threads = th, .nthreads = 2, .frames = frames, .nframes = 3 };
	struct sym_frame d[2];
	uint64_t bytes = fx->m.bytes, first;

	assert_int_equal(py_sym_describe(fx->sym, &rs, &th[0], d, 2), 1);
	assert_string_equal(d[0].name, "f0");
	first = fx->m.bytes - bytes;
	bytes = fx->m.bytes;
	assert_int_equal(py_sym_describe(fx->sym, &rs, &th[1], d, 2), 2);
	assert_string_equal(d[0].name, "f1");
	assert_string_equal(d[1].name, "f2");
	assert_true(first > 0);
	assert_true(first < fx->m.bytes - bytes);
}

/* Read the windows the symbolizer asks the next sample to bring (nx of
 * them). */
static void read_prefetch(struct fixture *fx, uint32_t nx)
{
	const struct iovec *l, *r;
	uint32_t n;

	py_sym_prefetch(fx->sym, &l, &r, &n);
	assert_int_equal(n, nx);
	assert_int_equal(rmem_readv(&fx->m, l, r, n), 0);
}

/* Bring the symbolizer to a sample whose stack [f1, f2] uses cached code
 * objects whose windows were not read with it: f0..f2 resolved by a first
 * sample; a second of f0 alone, with the windows of all three read ahead,
 * leaves f0 alone on the list to read ahead (the code objects it checked).
 * The third sample comes with that window.  Returns the reads it made. */
static uint64_t owed_sample(struct fixture *fx, struct sym_stats *st)
{
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	uint64_t reads;

	py_sym_add(fx->sym, &rs, NULL, 0, 1, st);
	assert_int_equal(st->stacks, 1);
	read_prefetch(fx, 3);
	th = (struct raw_thread){ .depth = 1, .tstate = 2 };
	reads = fx->m.reads;
	py_sym_add(fx->sym, &rs, NULL, 1, 2, st);
	assert_int_equal(fx->m.reads, reads); /* checked by its window */
	assert_int_equal(st->stacks, 2);
	read_prefetch(fx, 1);
	frames[0] = frame(fx, 1, 2);
	frames[1] = frame(fx, 2, 2);
	th = (struct raw_thread){ .depth = 2, .tstate = 3 };
	reads = fx->m.reads;
	py_sym_add(fx->sym, &rs, NULL, 1, 3, st);
	return fx->m.reads - reads;
}

/* The owed sample makes no read: its stack waits, and is counted (at its
 * own time) by the flush, which checks f1 and f2 in one read. */
static void test_check_put_off(void **state)
{
	struct fixture *fx = *state;
	struct sym_stats st = { 0 };
	uint64_t reads;

	assert_int_equal(owed_sample(fx, &st), 0);
	assert_int_equal(st.stacks, 2);
	reads = fx->m.reads;
	assert_int_equal(py_sym_flush(fx->sym, 4, &st), 0);
	assert_int_equal(fx->m.reads - reads, 1);
	assert_int_equal(st.stacks, 3);
	assert_int_equal(st.torn, 0);
	assert_int_equal(py_sym_flush(fx->sym, 5, &st), 0); /* nothing left */
	assert_int_equal(fx->m.reads - reads, 1);
}

/* f1's address holds another code object by the time of the check: the
 * stack that waited is dropped as torn, never counted under f1's name. */
static void test_put_off_check_fails(void **state)
{
	struct fixture *fx = *state;
	struct sym_stats st = { 0 };

	assert_int_equal(owed_sample(fx, &st), 0);
	image_set_sample(&fx->im, 1);
	assert_int_equal(py_sym_flush(fx->sym, 4, &st), 1);
	assert_int_equal(st.stacks, 2);
	assert_int_equal(st.torn, 1);
}

/* f1's address found holding another code object (its window, read with
 * the sample, shows it): it is resolved anew, the stack counted (once the
 * new entry is checked, with the next sample), and the address is read
 * with the next samples even when they do not run it, so that code
 * compiled and dropped in a loop is checked at the sample and not put off
 * (a check put off that finds another object can only drop the stack). */
static void test_moved_address_read_ahead(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct sym_stats st = { 0 };
	const struct iovec *l, *r;
	uint32_t nx, k, f1 = 0;

	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	assert_int_equal(st.code_misses, 3);
	image_set_sample(&fx->im, 1);
	read_prefetch(fx, 3);
	th.tstate = 2;
	py_sym_add(fx->sym, &rs, NULL, 1, 2, &st);
	assert_int_equal(st.code_misses, 4); /* f1 again: another object */
	assert_int_equal(st.torn, 0);
	read_prefetch(fx, 3);
	th = (struct raw_thread){ .depth = 1, .tstate = 3 };
	py_sym_add(fx->sym, &rs, NULL, 1, 3, &st);
	assert_int_equal(st.stacks, 3); /* the second's waited for f1's new entry */
	assert_int_equal(st.torn, 0);
	py_sym_prefetch(fx->sym, &l, &r, &nx);
	assert_int_equal(nx, 2); /* f0, checked; f1, moved lately */
	for (k = 0; k < nx; k++)
		f1 += (uint64_t)r[k].iov_base == fx->code[1];
	assert_int_equal(f1, 1);
}

/* A code object met for the first time vouches by itself for the frames
 * that run it only when its window was read soon after the sample: read
 * 10 ms after, the frame may have returned and its code object's address
 * been given to another (an embedding host's site.py module frame was once
 * named after a function compiled later).  With no frame addresses to
 * confirm them by, the stack is torn.  The entries are kept: the next
 * sample, read just before its check, is counted with them. */
static void test_first_met_too_late(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct sym_stats st = { 0 };

	rs.read_ns = mono_ns() - 10 * 1000 * 1000;
	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	assert_int_equal(st.code_misses, 3);
	assert_int_equal(st.late_codes, 3);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.stacks, 0);
	rs.read_ns = mono_ns();
	py_sym_add(fx->sym, &rs, NULL, 0, 2, &st);
	assert_int_equal(st.code_misses, 3); /* cached */
	assert_int_equal(st.late_codes, 3);
	assert_int_equal(st.stacks, 1);
}

/* A sample of f0, f1, f2 in the frames at FRAMES (setup_frames), read
 * 10 ms before it is added. */
static void add_late_sample(struct fixture *fx, struct sym_stats *st)
{
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	uint64_t addrs[3] = { FRAMES, FRAMES + 0x100, FRAMES + 0x200 };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames,
				 .nframes = 3, .addrs = addrs };

	rs.read_ns = mono_ns() - 10 * 1000 * 1000;
	py_sym_add(fx->sym, &rs, NULL, 0, 1, st);
}

/* Read late, the code objects met first are confirmed by their frames'
 * code pointers, read again in one more call: the frames still run them,
 * so they ran them all along, and the stack counts. */
static void test_first_met_late_confirmed(void **state)
{
	struct fixture *fx = *state;
	struct sym_stats st = { 0 };
	uint64_t reads = fx->m.reads;

	add_late_sample(fx, &st);
	assert_int_equal(fx->m.reads - reads, 3); /* windows, what they name, frames */
	assert_int_equal(st.late_codes, 0);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.stacks, 1);
}

/* ... but the second frame runs another code object now: f1, met first and
 * late, vouches for nothing, and the stack is torn; f0 and f2 were
 * confirmed. */
static void test_first_met_late_frame_moved(void **state)
{
	struct fixture *fx = *state;
	struct sym_stats st = { 0 };

	image_set_sample(&fx->im, 1);
	add_late_sample(fx, &st);
	assert_int_equal(st.late_codes, 1);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.stacks, 0);
}

/* Read soon after the sample, the same first meeting counts the stack. */
static void test_first_met_in_time(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct sym_stats st = { 0 };

	rs.read_ns = mono_ns();
	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	assert_int_equal(st.late_codes, 0);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.stacks, 1);
}

/* Windows read ahead with a sample came before its frames: for a sample
 * handled long after it was read they vouch for nothing, and its cached
 * code objects are read again (one call) rather than trusted or put off. */
static void test_late_sample_reads_again(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	struct timespec wait = { 0, 3 * 1000 * 1000 };
	struct sym_stats st = { 0 };
	uint64_t reads;

	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	read_prefetch(fx, 3);
	th.tstate = 2;
	rs.read_ns = mono_ns();
	reads = fx->m.reads;
	py_sym_add(fx->sym, &rs, NULL, 1, 2, &st);
	assert_int_equal(fx->m.reads, reads); /* the windows read ahead */
	read_prefetch(fx, 3);
	/* Read now, handled 3 ms later (the span is 1 ms). */
	th.tstate = 3;
	rs.read_ns = mono_ns();
	nanosleep(&wait, NULL);
	reads = fx->m.reads;
	py_sym_add(fx->sym, &rs, NULL, 1, 3, &st);
	assert_int_equal(fx->m.reads - reads, 1);
	assert_int_equal(st.stacks, 3);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.late_codes, 0); /* met before: the two checks vouch */
}

/* One thread's stack of depth frames: f0 innermost, then f1 and f2 by
 * turns, at sample time t.  Returns the bytes it read; *id is the stack id
 * it was counted under. */
static uint64_t deep_sample(struct fixture *fx, struct raw_frame *frames, uint32_t depth,
			    int64_t t, struct sym_stats *st, uint32_t *id)
{
	struct raw_thread th = { .depth = depth, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames };
	uint64_t bytes = fx->m.bytes, stacks = st->stacks;
	const uint32_t *ids;
	uint32_t i, n;

	frames[0] = frame(fx, 0, 0);
	for (i = 1; i < depth; i++)
		frames[i] = frame(fx, 1 + (int)(i & 1), 2);
	py_sym_add(fx->sym, &rs, NULL, 0, t, st);
	assert_int_equal(st->stacks, stacks + 1);
	py_sym_counted(fx->sym, &ids, &n);
	assert_int_equal(n, 1);
	*id = ids[0];
	return fx->m.bytes - bytes;
}

/* A deep stack (a web framework's middleware, recursion) seen again keeps
 * its root-side frames from the thread's memo, whose room grows with the
 * stack: only the innermost frame's code object is checked (its window
 * read, not the three objects'), and it is counted under the same id.  A memo that only held 256 frames read all three objects at every
 * sample of 1000 frames, and symbolized each frame again. */
static void test_deep_stack_kept(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame *frames = calloc(4096, sizeof(*frames));
	struct sym_stats st = { 0 };
	uint32_t depth[] = { 10, 1000, 4096 }, id, again;
	unsigned k;

	assert_non_null(frames);
	for (k = 0; k < sizeof(depth) / sizeof(*depth); k++) {
		deep_sample(fx, frames, depth[k], 10 * k + 1, &st, &id);
		assert_int_equal(deep_sample(fx, frames, depth[k], 10 * k + 2, &st, &again),
				 fx->t.layout->code_size);
		assert_int_equal(again, id);
	}
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.dropped, 0);
	free(frames);
}

/* Code object c's fingerprint as the eBPF program folds it, from the image. */
static uint32_t fp_of(struct fixture *fx, int c)
{
	const struct py_layout *L = fx->t.layout;
	uint64_t v[6] = { 0 };
	const int32_t at[6] = { L->code_ob_type, L->code_ob_size, L->code_filename,
				L->code_name, L->code_qualname, L->code_linetable };
	uint32_t line = 0;
	int i;

	for (i = 0; i < 6; i++)
		if (at[i] >= 0)
			assert_int_equal(rmem_read(&fx->m, fx->code[c] + (uint64_t)at[i], &v[i], 8), 0);
	assert_int_equal(rmem_read(&fx->m, fx->code[c] + (uint64_t)L->code_firstlineno, &line, 4),
			 0);
	return pb_fp(v[0], v[1], v[2], v[3], v[4], v[5], line);
}

/* A sample that comes with its code objects' fingerprints (the eBPF
 * backend) keeps no root-side frame from the memo whose fingerprint
 * changed, though the frame looks unmoved: a function compiled again at
 * the same address, called from the same place.  That frame is checked:
 * here the fingerprint matches nothing the address holds, and the stack is
 * torn, where the memo counted it under the old frames' names before. */
static void test_memo_checks_fingerprints(void **state)
{
	struct fixture *fx = *state;
	struct raw_frame frames[3] = { frame(fx, 0, 0), frame(fx, 1, 2), frame(fx, 2, 2) };
	uint32_t fps[3] = { fp_of(fx, 0), fp_of(fx, 1), fp_of(fx, 2) };
	struct raw_thread th = { .depth = 3, .tstate = 1 };
	struct raw_sample rs = { .threads = &th, .nthreads = 1, .frames = frames, .fps = fps };
	struct sym_stats st = { 0 };

	py_sym_add(fx->sym, &rs, NULL, 0, 1, &st);
	py_sym_add(fx->sym, &rs, NULL, 0, 2, &st);
	assert_int_equal(st.stacks, 2);
	assert_int_equal(st.torn, 0);
	fps[1] ^= 1;
	py_sym_add(fx->sym, &rs, NULL, 0, 3, &st);
	assert_int_equal(st.stacks, 2);
	assert_int_equal(st.torn, 1);
	fps[1] ^= 1; /* and the same frames as first are counted again */
	py_sym_add(fx->sym, &rs, NULL, 0, 4, &st);
	assert_int_equal(st.stacks, 3);
	assert_int_equal(st.torn, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_return_with_caller_gone_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caller_at_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whole_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_code_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_past_the_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_before_the_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolved_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolved_in_two_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_put_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_off_check_fails, setup_reuse, teardown),
		cmocka_unit_test_setup_teardown(test_moved_address_read_ahead, setup_reuse, teardown),
		cmocka_unit_test_setup_teardown(test_first_met_too_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_met_in_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_met_late_confirmed, setup_frames, teardown),
		cmocka_unit_test_setup_teardown(test_first_met_late_frame_moved, setup_frames,
						teardown),
		cmocka_unit_test_setup_teardown(test_late_sample_reads_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_stack_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memo_checks_fingerprints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_reads_its_thread, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
