/* gen_images.c - seeds for the fuzzers that read a fake memory image: for
 * several CPython layouts, a valid image of one thread running a 3-frame
 * chain of code objects with names, files and line tables (gen_corpus.sh
 * builds and runs it); for the walker also the chain made to loop, and the
 * thread entering a sub-interpreter (sub-).  Format: image.h.
 *
 *   gen_images OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/py_layout.h"
#include "pyspyc/py_lines.h"

#define MAX_REGIONS 32

struct region {
	uint64_t addr;
	uint32_t len;
	uint8_t data[16384];
};

static struct region regs[MAX_REGIONS];
static unsigned int nregs;
static uint8_t *runtime;

static uint8_t *region(uint64_t addr, uint32_t len)
{
	struct region *r;

	if (nregs == MAX_REGIONS)
		exit(1);
	r = &regs[nregs++];

	memset(r, 0, sizeof(*r));
	r->addr = addr;
	r->len = len;
	return r->data;
}

static void put(uint8_t *p, int32_t off, uint64_t v, int bytes)
{
	if (off >= 0)
		memcpy(p + off, &v, (size_t)bytes);
}

static void put_u(FILE *f, uint64_t v, int bytes)
{
	fwrite(&v, (size_t)bytes, 1, f);
}

enum {
	INTERP = 0x10000, TSTATE = 0x20000, FRAMES = 0x30000, CODES = 0x40000,
	STRS = 0x50000, TABLES = 0x60000, CHUNK = 0x70000, CFRAME = 0x80000,
	CODE_TYPE = 0x90000, STR_TYPE = 0x92000, NAMES = 0x94000, RUNTIME = 0x8000,
	SHIM = 0xa0000, GEN = 0xa8000, TRAMPOLINE = 0xb0000,
	SUBINTERP = 0xc0000, SUBTSTATE = 0xc4000,
};

static uint64_t frame_addr(const struct py_layout *L, int i)
{
	if (L->frame_model == PY_FRAMES_OBJECTS)
		return FRAMES + 0x200u * (uint64_t)i;
	return CHUNK + (uint64_t)L->chunk_data + (uint64_t)(2 - i) * (uint64_t)L->iframe_size;
}

static uint64_t instr_of(const struct py_layout *L, int i)
{
	if (L->frame_model == PY_FRAMES_OBJECTS)
		return 2;
	return CODES + 0x400u * (uint64_t)i + (uint64_t)L->code_adaptive + 2;
}

static void str_obj(const struct py_layout *L, uint64_t addr, const char *s)
{
	uint8_t *p = region(addr, 0x80);
	uint64_t n = strlen(s);

	put(p, L->obj_type, STR_TYPE, 8);
	if (L->str_model == PY_STR_BYTES) {
		put(p, L->bytes_size, n, 8);
		memcpy(p + L->bytes_data, s, n);
		return;
	}
	put(p, L->unicode_length, n, 8);
	put(p, L->unicode_state, 0x64, 4); /* compact, ascii, 1 byte a char */
	memcpy(p + L->unicode_ascii_data, s, n);
}

static void type_obj(const struct py_layout *L, uint64_t addr, uint64_t name_at,
		     const char *name)
{
	uint8_t *p = region(addr, 0x200);

	put(p, L->type_name, name_at, 8);
	memcpy(region(name_at, 16), name, strlen(name));
}

/* Where frame i's caller link is in the image, or NULL. */
static uint8_t *link_of(const struct py_layout *L, int i)
{
	uint64_t at = frame_addr(L, i);
	int32_t off = L->frame_model == PY_FRAMES_OBJECTS ? L->frame_back : L->iframe_previous;
	unsigned int k;

	for (k = 0; k < nregs; k++)
		if (at >= regs[k].addr && at + (uint64_t)off + 8 <= regs[k].addr + regs[k].len)
			return regs[k].data + (at - regs[k].addr) + off;
	return NULL;
}

/* One line table: three lines, one instruction each. */
static void table_obj(const struct py_layout *L, uint64_t addr)
{
	static const uint8_t lnotab[] = { 2, 1, 2, 1 }, t310[] = { 2, 1, 2, 1, 2, 1 };
	static const uint8_t loc[] = { 0xe8, 0x02, 0xe8, 0x02, 0xe8, 0x02 };
	const uint8_t *t = L->line_format == PY_LINES_LOCATION ? loc :
			   L->line_format == PY_LINES_310 ? t310 : lnotab;
	size_t n = L->line_format == PY_LINES_LOCATION ? sizeof(loc) :
		   L->line_format == PY_LINES_310 ? sizeof(t310) : sizeof(lnotab);
	uint8_t *p = region(addr, 0x80);

	put(p, L->bytes_size, n, 8);
	memcpy(p + L->bytes_data, t, n);
}

static void build(const struct py_layout *L)
{
	uint8_t *ts, *p;
	int i;

	nregs = 0;
	runtime = region(RUNTIME, L->runtime_tstate_current > 0x308 ?
				  (uint32_t)L->runtime_tstate_current + 8 :
				  L->runtime_interp_head > 0x308 ? /* 3.14+ */
				  (uint32_t)L->runtime_interp_head + 8 : 0x310);
	put(runtime, L->runtime_tstate_current, TSTATE, 8); /* holds the GIL */
	/* The runtime's interpreter list: the one interpreter, its next NULL. */
	put(runtime, L->runtime_interp_head, INTERP, 8);
	p = region(INTERP, (uint32_t)(L->interp_next > L->interp_threads_head ?
				      L->interp_next : L->interp_threads_head) + 8);
	put(p, L->interp_threads_head, TSTATE, 8);
	if (L->interp_trampoline >= 0)
		put(region(INTERP + (uint64_t)L->interp_trampoline, 8), 0, TRAMPOLINE, 8);
	ts = region(TSTATE, (uint32_t)L->tstate_size);
	put(ts, L->tstate_interp, INTERP, 8);
	put(ts, L->tstate_thread_id, 0x7f0000001000ull, 8);
	put(ts, L->tstate_native_thread_id, 4242, 8);
	type_obj(L, CODE_TYPE, NAMES, "code");
	type_obj(L, STR_TYPE, NAMES + 16, "str");
	str_obj(L, STRS, "/app/main.py");
	for (i = 0; i < 3; i++) {
		uint64_t code = CODES + 0x400u * (uint64_t)i;
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		str_obj(L, STRS + 0x100u * (uint64_t)(i + 1), name);
		table_obj(L, TABLES + 0x100u * (uint64_t)i);
		p = region(code, (uint32_t)L->code_size);
		put(p, L->code_ob_type - 8, 1, 8); /* a live object's count */
		put(p, L->code_ob_type, CODE_TYPE, 8);
		put(p, L->code_ob_size, 3, 8);
		put(p, L->code_filename, STRS, 8);
		put(p, L->code_name, STRS + 0x100u * (uint64_t)(i + 1), 8);
		put(p, L->code_qualname, STRS + 0x100u * (uint64_t)(i + 1), 8);
		put(p, L->code_linetable, TABLES + 0x100u * (uint64_t)i, 8);
		put(p, L->code_firstlineno, 10 + 10 * (uint64_t)i, 4);
		if (L->frame_model == PY_FRAMES_OBJECTS) {
			p = region(frame_addr(L, i), (uint32_t)L->frame_size);
			put(p, L->frame_back, i < 2 ? frame_addr(L, i + 1) : 0, 8);
			put(p, L->frame_code, code, 8);
			put(p, L->frame_lasti, 1, 4);
			/* Live: a frame object freed since is torn. */
			put(p, L->frame_refcnt, 1, 8);
		}
	}
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		put(ts, L->tstate_frame, frame_addr(L, 0), 8);
		return;
	}
	p = region(CHUNK, (uint32_t)(L->chunk_data + 3 * L->iframe_size));
	put(p, L->chunk_size, 0x4000, 8);
	for (i = 0; i < 3; i++) {
		uint8_t *f = p + (frame_addr(L, i) - CHUNK);

		/* 3.14+: a _PyStackRef, tagged as a deferred reference */
		put(f, L->iframe_code, CODES + 0x400u * (uint64_t)i + (L->iframe_code_tags ? 1 : 0),
		    8);
		put(f, L->iframe_previous, i < 2 ? frame_addr(L, i + 1) : 0, 8);
		put(f, L->iframe_instr, instr_of(L, i), 8);
		/* 3.12+: a caller waits in its call with its stack pointer
		 * saved (-1 would be a caller gone on: torn). */
		if (i > 0)
			put(f, L->iframe_stacktop, 1, 4);
	}
	/* 3.12+: the outermost call into the interpreter has a shim frame on
	 * the C stack below it, the bottom of every thread's chain; it runs
	 * the interpreter's trampoline (3.12) or nothing (3.13). */
	if (L->iframe_owned_by_cstack >= 0) {
		uint8_t *shim = region(SHIM, (uint32_t)L->iframe_size);

		put(shim, L->iframe_owner, (uint64_t)L->iframe_owned_by_cstack, 1);
		put(shim, L->iframe_code, L->interp_trampoline >= 0 ? TRAMPOLINE : 0, 8);
		put(p + (frame_addr(L, 2) - CHUNK), L->iframe_previous, SHIM, 8);
		/* 3.15: that one is the thread's base frame */
		if (L->tstate_base_frame > 0)
			put(ts, L->tstate_base_frame, SHIM, 8);
	}
	put(ts, L->tstate_datastack_chunk, CHUNK, 8);
	put(ts, L->tstate_datastack_top, CHUNK + (uint64_t)(L->chunk_data + 3 * L->iframe_size), 8);
	if (L->tstate_current_frame >= 0) {
		put(ts, L->tstate_current_frame, frame_addr(L, 0), 8);
	} else {
		put(ts, L->tstate_cframe, CFRAME, 8);
		put(region(CFRAME, 0x40), L->cframe_current_frame, frame_addr(L, 0), 8);
	}
}

/* Where a version's _Py_DebugOffsets keeps the layout's fields, by 8-byte
 * word (transcribed from the real tables listed in
 * tests/apps/fake_cpython.c, real_words[], by their names there), and the
 * words of the GIL's state, locked and holder fields, interpreters_head,
 * and the table's size in words. */
struct dbg_map {
	uint32_t version;
	int nwords, head, gil_state, gil_locked, gil_holder;
	struct { int word; size_t off; } f[48];
};

#define F(w, field) { w, offsetof(struct py_layout, field) }
static const struct dbg_map dbg_maps[] = {
	{ 0x030d, 73, 5, 15, 17, 18, {
		F(8, interp_next), F(9, interp_threads_head), F(11, interp_modules),
		F(14, interp_ceval_gil), F(19, tstate_size), F(21, tstate_next),
		F(22, tstate_interp), F(23, tstate_current_frame), F(24, tstate_thread_id),
		F(25, tstate_native_thread_id), F(26, tstate_datastack_chunk),
		F(29, iframe_previous), F(30, iframe_code), F(31, iframe_instr),
		F(32, iframe_size), F(33, iframe_owner), F(35, code_filename),
		F(36, code_name), F(37, code_qualname), F(38, code_linetable),
		F(39, code_firstlineno), F(40, code_argcount), F(41, code_localsplusnames),
		F(42, code_localspluskinds), F(43, code_adaptive), F(45, obj_type),
		F(47, type_name), F(49, type_flags), F(51, tuple_items), F(52, obj_var_size),
		F(57, dict_keys), F(58, dict_values), F(60, float_fval), F(62, long_size),
		F(63, long_digits), F(65, bytes_size), F(66, bytes_data),
		F(68, unicode_state), F(69, unicode_length), F(70, unicode_ascii_data) } },
	{ 0x030e, 95, 5, 16, 18, 19, {
		F(8, interp_next), F(9, interp_threads_head), F(12, interp_modules),
		F(15, interp_ceval_gil), F(22, tstate_size), F(24, tstate_next),
		F(25, tstate_interp), F(26, tstate_current_frame), F(27, tstate_thread_id),
		F(28, tstate_native_thread_id), F(29, tstate_datastack_chunk),
		F(32, iframe_previous), F(33, iframe_code), F(34, iframe_instr),
		F(35, iframe_size), F(36, iframe_owner), F(40, code_filename),
		F(41, code_name), F(42, code_qualname), F(43, code_linetable),
		F(44, code_firstlineno), F(45, code_argcount), F(46, code_localsplusnames),
		F(47, code_localspluskinds), F(48, code_adaptive), F(51, obj_type),
		F(53, type_name), F(55, type_flags), F(57, tuple_items), F(58, obj_var_size),
		F(67, dict_keys), F(68, dict_values), F(70, float_fval), F(72, long_size),
		F(73, long_digits), F(75, bytes_size), F(76, bytes_data),
		F(78, unicode_state), F(79, unicode_length), F(80, unicode_ascii_data) } },
	{ 0x030f, 111, 5, 16, 18, 19, {
		F(8, interp_next), F(9, interp_threads_head), F(12, interp_modules),
		F(15, interp_ceval_gil), F(22, tstate_size), F(24, tstate_next),
		F(25, tstate_interp), F(26, tstate_current_frame), F(27, tstate_base_frame),
		F(30, tstate_thread_id), F(31, tstate_native_thread_id),
		F(32, tstate_datastack_chunk), F(40, iframe_previous), F(41, iframe_code),
		F(42, iframe_instr), F(43, iframe_size), F(44, iframe_owner),
		F(48, code_filename), F(49, code_name), F(50, code_qualname),
		F(51, code_linetable), F(52, code_firstlineno), F(53, code_argcount),
		F(54, code_localsplusnames), F(55, code_localspluskinds), F(56, code_adaptive),
		F(59, obj_type), F(61, type_name), F(63, type_flags), F(64, type_basicsize),
		F(65, type_dictoffset), F(67, heaptype_cached_keys), F(69, tuple_items),
		F(70, obj_var_size), F(79, dict_keys), F(80, dict_values), F(82, float_fval),
		F(84, long_size), F(85, long_digits), F(87, bytes_size), F(88, bytes_data),
		F(90, unicode_state), F(91, unicode_length), F(92, unicode_ascii_data),
		F(93, unicode_compact_data) } },
};
#undef F

/* L's version's _Py_DebugOffsets at RUNTIME, as py_debug_offsets_apply
 * reads it back into L; 0, or -1 when the version has none. */
static int debug_offsets(const struct py_layout *L)
{
	const struct dbg_map *M = NULL;
	uint64_t d[128] = { 0 };
	size_t i, at;

	for (i = 0; i < sizeof(dbg_maps) / sizeof(dbg_maps[0]); i++)
		if (dbg_maps[i].version == L->version)
			M = &dbg_maps[i];
	if (!M)
		return -1;
	/* The interpreter list's head at 0x300, past the table, or where
	 * build() put it when the table is longer (3.15). */
	at = (size_t)M->nwords * 8 <= 0x300 ? 0x300 : (size_t)L->runtime_interp_head;
	memcpy(&d[0], "xdebugpy", 8);
	d[1] = (uint64_t)L->version << 16 | 0xf0;
	d[M->head] = at;
	for (i = 0; i < sizeof(M->f) / sizeof(M->f[0]) && M->f[i].word; i++) {
		int32_t v;

		memcpy(&v, (const char *)L + M->f[i].off, sizeof(v));
		d[M->f[i].word] = (uint64_t)(int64_t)v;
	}
	d[M->gil_state] = 0x100;
	d[M->gil_locked] = 0x100 + (uint64_t)L->gil_locked;
	d[M->gil_holder] = 0x100 + (uint64_t)L->gil_last_holder;
	memcpy(runtime, d, (size_t)M->nwords * 8);
	put(runtime, at, INTERP, 8);
	return 0;
}

static FILE *seed_named(const char *dir, const char *what, const char *prefix,
			const struct py_layout *L)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s%x", dir, what, prefix, L->version);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

/* A sub-interpreter at the head of the list, whose one thread state is the
 * same OS thread's as the main interpreter's, running the same frames: a
 * thread that entered a sub-interpreter, one stack of both, stitched. */
static void add_subinterp(const struct py_layout *L)
{
	uint8_t *p, *ts;
	unsigned int i;

	for (i = 0; i < nregs && regs[i].addr != TSTATE; i++)
		;
	if (i == nregs)
		exit(1);
	p = region(SUBINTERP, (uint32_t)(L->interp_next > L->interp_threads_head ?
					 L->interp_next : L->interp_threads_head) + 8);
	put(p, L->interp_next, INTERP, 8);
	put(p, L->interp_threads_head, SUBTSTATE, 8);
	ts = region(SUBTSTATE, (uint32_t)L->tstate_size);
	memcpy(ts, regs[i].data, (size_t)L->tstate_size);
	put(ts, L->tstate_interp, SUBINTERP, 8);
	put(runtime, L->runtime_interp_head, SUBINTERP, 8);
}

/* Point frame `from`'s caller link at frame `to` (a loop when to <= from). */
static void relink(const struct py_layout *L, int from, int to)
{
	uint64_t at = frame_addr(L, from);
	int32_t off = L->frame_model == PY_FRAMES_OBJECTS ? L->frame_back : L->iframe_previous;
	unsigned int i;

	for (i = 0; i < nregs; i++)
		if (at >= regs[i].addr && at + (uint64_t)off + 8 <= regs[i].addr + regs[i].len)
			put(regs[i].data + (at - regs[i].addr), off, frame_addr(L, to), 8);
}

/* The stack as read while frame 0, a generator's, was suspended: its
 * caller link cleared, so the chain ends there.  Before 3.11 the frame
 * object names its generator (f_gen; 2.7 has none: code flags tell); from
 * 3.11 the frame is owned by the generator and lives in it, on the heap. */
static void gen_bottom(const struct py_layout *L)
{
	uint8_t *link = link_of(L, 0);

	memset(link, 0, 8);
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		put(link - L->frame_back, L->frame_gen, GEN, 8);
		return;
	}
	put(link - L->iframe_previous, L->iframe_owner, (uint64_t)L->iframe_owned_by_generator, 1);
}

/* The innermost frame is a shim's stale copy: the trampoline's code with
 * its owner overwritten (3.12). */
static void stale_shim(const struct py_layout *L)
{
	uint8_t *f = link_of(L, 0) - L->iframe_previous;

	put(f, L->iframe_code, TRAMPOLINE, 8);
}

/* The chain ends at an ordinary frame, not at the shim (3.12+). */
static void no_shim(const struct py_layout *L)
{
	memset(link_of(L, 2), 0, 8);
}

/* 3.15: the thread's base frame is another than the shim frame the chain
 * ends at: the chain was cut. */
static void other_base(const struct py_layout *L)
{
	unsigned int k;

	for (k = 0; k < nregs; k++)
		if (regs[k].addr == TSTATE)
			put(regs[k].data, L->tstate_base_frame, SHIM + 0x1000, 8);
}

/* The caller of the innermost frame read after that frame returned: it
 * runs on, its stack pointer taken back (stacktop -1, 3.12+); before 3.11
 * the innermost frame object was freed (no reference left). */
static void gone_on(const struct py_layout *L)
{
	uint8_t *link = link_of(L, L->frame_model == PY_FRAMES_OBJECTS ? 0 : 1);

	if (L->frame_model == PY_FRAMES_OBJECTS) {
		put(link - L->frame_back, L->frame_refcnt, 0, 8);
		return;
	}
	put(link - L->iframe_previous, L->iframe_stacktop, (uint32_t)-1, 4);
}

static FILE *seed(const char *dir, const char *what, const struct py_layout *L)
{
	return seed_named(dir, what, "", L);
}

static void regions_out(FILE *f)
{
	unsigned int i;

	for (i = 0; i < nregs; i++) {
		put_u(f, regs[i].addr, 8);
		put_u(f, regs[i].len, 2);
		put_u(f, 0, 1);
		fwrite(regs[i].data, regs[i].len, 1, f);
	}
	fclose(f);
}

static void walk_seed(const char *dir, const char *name, const struct py_layout *L,
		      uint8_t sel)
{
	FILE *f = seed_named(dir, "walk", name, L);

	put_u(f, sel, 1);
	put_u(f, 0x28, 1); /* depth 65, 3 threads */
	put_u(f, 0, 1);
	put_u(f, INTERP, 8);
	put_u(f, RUNTIME, 8);
	put_u(f, 0, 8);
	put_u(f, 0, 8);
	regions_out(f);
}

int main(int argc, char **argv)
{
	/* image_target()'s numbering */
	static const uint32_t versions[] = { 0x0207, 0x0306, 0x0307, 0x0308, 0x0309,
					     0x030a, 0x030b, 0x030c, 0x030d, 0x030e,
					     0x030f };
	static const int pick[] = { 0, 4, 5, 6, 7, 8, 9, 10 };
	size_t k;
	int i;

	if (argc != 2)
		return 2;
	for (k = 0; k < sizeof(pick) / sizeof(pick[0]); k++) {
		const struct py_layout *L = py_layout_find(versions[pick[k]]);
		uint8_t sel = (uint8_t)pick[k];
		FILE *f;

		/* Chains that loop: the outermost frame's caller is the
		 * innermost (a cycle of 3), or a frame is its own caller. */
		build(L);
		relink(L, 2, 0);
		walk_seed(argv[1], "loop-", L, sel);
		build(L);
		relink(L, 0, 0);
		walk_seed(argv[1], "self-", L, sel);
		build(L);
		add_subinterp(L);
		walk_seed(argv[1], "sub-", L, sel);
		build(L);
		if (L->version != 0x0207) { /* 2.7: the symbolizer's test */
			gen_bottom(L);
			walk_seed(argv[1], "gen-", L, sel);
			build(L);
		}
		if (L->interp_trampoline >= 0) {
			stale_shim(L);
			walk_seed(argv[1], "trampoline-", L, sel);
			build(L);
		}
		if (L->iframe_owned_by_cstack >= 0) {
			no_shim(L);
			walk_seed(argv[1], "noshim-", L, sel);
			build(L);
		}
		if (L->tstate_base_frame > 0) {
			other_base(L);
			walk_seed(argv[1], "nobase-", L, sel);
			build(L);
		}
		if (L->frame_refcnt >= 0 || L->iframe_stacktop >= 0) {
			gone_on(L);
			walk_seed(argv[1], "gone-", L, sel);
			build(L);
		}
		walk_seed(argv[1], "", L, sel);

		f = seed(argv[1], "code", L);
		put_u(f, sel, 1);
		put_u(f, 0, 1);
		put_u(f, 0, 1);
		put_u(f, CODE_TYPE, 8);
		put_u(f, 0, 1);
		put_u(f, 3, 1);
		for (i = 0; i < 3; i++) {
			put_u(f, CODES + 0x400u * (uint64_t)i, 8);
			put_u(f, instr_of(L, i), 8);
			put_u(f, 0, 1);
		}
		regions_out(f);

		f = seed(argv[1], "threads", L);
		put_u(f, sel, 1);
		put_u(f, 0, 1);
		put_u(f, INTERP, 8);
		put_u(f, 1, 1);
		put_u(f, TSTATE, 8);
		put_u(f, 0x7f0000001000ull, 8);
		put_u(f, 4242, 4);
		regions_out(f);

		f = seed(argv[1], "obj", L);
		put_u(f, sel, 1);
		put_u(f, 0, 1);
		put_u(f, 200, 1);
		put_u(f, STRS, 8);
		put_u(f, frame_addr(L, 0), 8);
		put_u(f, CODES, 8);
		put_u(f, INTERP, 8);
		regions_out(f);

		if (debug_offsets(L) == 0) {
			/* fuzz_debug_offsets' first byte: 3.13, 3.14, 3.12, 3.15 */
			f = seed(argv[1], "debug_offsets", L);
			put_u(f, L->version == 0x030d ? 0 : L->version == 0x030e ? 1 : 3, 1);
			put_u(f, 0, 1);
			put_u(f, RUNTIME, 8);
			regions_out(f);
		}
	}
	return 0;
}
