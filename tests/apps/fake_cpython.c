/* fake_cpython.c - a process that lays out, in its own memory, what a
 * CPython 3.14 or 3.15 interpreter (default or free-threaded build) lays
 * out as far as an out-of-process reader sees it, so that a profiler's
 * support for those versions can be tested where they cannot be installed.
 *
 * Build:  cc -O1 -g -rdynamic -pthread -DPYV=0x030e -DFT=0 fake_cpython.c
 *         PYV 0x030e = 3.14 (poses as 3.14.10), 0x030f = 3.15 (3.15.2);
 *         FT 1 = free-threaded.  FT builds run with the GIL disabled, as a
 *         free-threaded CPython does by default; add -DFT_GIL=1 to pose as
 *         one run with PYTHON_GIL=1 (GIL enabled, the main thread holding it).
 * Run:    ./fake [seconds]      (default 30)
 * Prints: "ready PID", then one line per thread with the stack a sampler
 *         must find, root first, in pyspyc's collapsed format with thread
 *         markers (-t):  thread TID "NAME";qualname (file:line);... 1
 *         Both threads then spin on the CPU for the given time with none of
 *         the laid-out memory changing, and the program exits 0.
 *
 * Nothing here comes from CPython's headers or code: every structure is
 * written out below, field by field, at the offsets CPython puts them at.
 * At start-up the whole _Py_DebugOffsets table (filled from offsetof() on
 * these structures) is compared word by word with the real table of the
 * version and build (real_words[] below); a difference exits 3.
 *
 * Sources, as short names used in the table below:
 *   [F]   /work/notes/py314-315-facts.md (a colleague's notes from the
 *         3.14.10 and 3.15.2 release headers, Debian sid packages, with the
 *         default-build tables checked against the compiled .PyRuntime).
 *   [H]   the 3.14.10 / 3.15.2 release headers themselves (Debian sid
 *         libpython3.14-dev 3.14.10-1, libpython3.15-dev 3.15.2-1), read
 *         and measured with offsetof()/sizeof() by a scratch program
 *         compiled against them (default, and -DPy_GIL_DISABLED=1 for FT).
 *         Files: cpython/code.h (_PyCode_DEF, _PyCodeArray, location kinds),
 *         cpython/pystate.h (_stack_chunk, _ts), internal/pycore_tstate.h,
 *         internal/pycore_interp_structs.h, internal/pycore_gil.h,
 *         internal/pycore_interpframe{,_structs}.h, internal/pycore_code.h
 *         (write_varint, write_signed_varint, write_location_entry_start),
 *         internal/pycore_stackref.h, refcount.h, object.h, opcode_ids.h,
 *         opcode.h, internal/pycore_opcode_metadata.h (_PyOpcode_Caches),
 *         internal/pycore_gc.h (_PyGC_BITS_DEFERRED), cpython/tupleobject.h.
 *   [C]   python/cpython sources in the search index: Objects/locations.md
 *         @ d77b2b68 (location table format), Python/pystate.c (push_chunk:
 *         root chunk skips data[0]), Python/ceval.c (entry frame set-up,
 *         _Py_INTERPRETER_TRAMPOLINE_INSTRUCTIONS), Include/internal/
 *         pycore_index_pool.h ("allocate the smallest available index").
 *
 * Offsets (bytes; "d/ft" = default / free-threaded; "14|15" = by version):
 *
 *   object header      size 16/32, ob_type 8/24; PyVarObject ob_size 16/32 [F][H]
 *                      d: ob_refcnt (u32) @0, ob_flags (u16) @6;
 *                      ft: ob_tid @0, ob_flags @8, ob_gc_bits @11,
 *                      ob_ref_local @12, ob_ref_shared @16             [H]
 *   PyTypeObject       size 416/432 |15: 424/440; tp_name 24/40,
 *                      tp_basicsize 32/48, tp_itemsize 40/56, tp_repr 88/104,
 *                      tp_flags 168/184, tp_dictoffset 288/304         [F][H]
 *   PyHeapTypeObject   size 936/960 |15: 944/968; ht_cached_keys
 *                      880/896 |15: 888/904                            [F][H]
 *   PyCodeObject       co_consts 24/40, co_names 32/48, co_exceptiontable
 *                      40/56, co_flags 48/64, co_argcount 52/68,
 *                      co_posonlyargcount 56/72, co_kwonlyargcount 60/76,
 *                      co_stacksize 64/80, co_firstlineno 68/84,
 *                      co_nlocalsplus 72/88, co_framesize 76/92, co_nlocals
 *                      80/96, co_ncellvars 84/100, co_nfreevars 88/104,
 *                      co_version 92/108, co_localsplusnames 96/112,
 *                      co_localspluskinds 104/120, co_filename 112/128,
 *                      co_name 120/136, co_qualname 128/144, co_linetable
 *                      136/152, co_weakreflist 144/160, co_executors
 *                      152/168, _co_cached 160/176, _co_instrumentation_
 *                      version 168/184, _co_monitoring 176/192,
 *                      _co_unique_id 184/200, _co_firsttraceable 192/208,
 *                      co_extra 200/216, co_tlbc -/224, co_code_adaptive
 *                      208/232, sizeof 216/240 (same in 3.14 and 3.15) [F][H]
 *   _PyCodeArray (ft)  size @0, entries[] @8                           [F][H]
 *   _PyInterpreterFrame f_executable 0, previous 8, f_funcobj 16,
 *                      f_globals 24, f_builtins 32, f_locals 40, frame_obj
 *                      48, instr_ptr 56, stackpointer 64, tlbc_index -/72,
 *                      return_offset 72/76, owner 74/78, visited 75/79,
 *                      localsplus 80, sizeof 88                        [F][H]
 *   _PyStackChunk      previous 0, size 8, top 16, data 24 (both versions,
 *                      both builds)                                    [H]
 *   PyThreadState      prev 0, next 8, interp 16, eval_breaker 24,
 *                      _status 32, holds_gil 36, current_frame 72;
 *     3.14             _whence 40, state 44, py_recursion_remaining 48,
 *                      py_recursion_limit 52, current_exception 112,
 *                      exc_info 120, thread_id 152, native_thread_id 160,
 *                      id 224, datastack_chunk 232, datastack_top 240,
 *                      datastack_limit 248, exc_state 256,
 *                      remote_debugger_support 304, sizeof 832
 *     3.15             gil_requested 40, _whence 44, state 48,
 *                      py_recursion_remaining 52, py_recursion_limit 56,
 *                      base_frame 80, last_profiled_frame 88, _seq 96,
 *                      current_exception 136, exc_info 144, thread_id 176,
 *                      native_thread_id 184, id 248, datastack_chunk 256,
 *                      datastack_top 264, datastack_limit 272, exc_state
 *                      288, remote_debugger_support 344, sizeof 888 [F][H]
 *   _PyThreadStateImpl base_frame |15: 888; tlbc_index ft: 19128 |15: 19328;
 *                      sizeof 936/19216 |15: 1096/19408               [F][H]
 *   PyInterpreterState ceval.recursion_limit 8, ceval.gil 16, ceval.own_gil
 *                      24;  3.14 | 3.15:  next 7272|7264, id 7280|7272,
 *                      _initialized 7312|7304, _ready 7316|7308,
 *                      threads.next_unique_id 7336|7328, threads.head
 *                      7344|7336, threads.main 7360|7352, threads.count
 *                      7368|7360, runtime 7384|7376, gc 7408|7400,
 *                      sysdict 7672/7696|7576, builtins 7680/7704|7584,
 *                      imports.modules 7688/7712|7592, _gil 7784/7808|7736,
 *                      _code_object_generation 7992/8024|7944/7952,
 *                      config.remote_debug 8076/8108|8028/8036,
 *                      tlbc_indices.tlbc_generation ft: 17300|17252,
 *                      _initial_thread 224928/230760|225136/230920,
 *                      sizeof 225864/249976|226240(*)/250328          [F][H]
 *   _gil_runtime_state ft: enabled 0; interval 0/8, last_holder 8/16,
 *                      locked 16/24; sizeof 208/216                    [H]
 *   _gc_runtime_state  sizeof 264/288 |15: 176; collecting 192 |15: 112;
 *                      3.15: generation_stats 104, frame 120;
 *                      sizeof(struct gc_stats) 3.15: 1120/224          [F][H]
 *   _PyRuntimeState    debug_offsets 0, _finalizing 784|912,
 *                      interpreters.head 808|936, interpreters.main
 *                      816|944, _main_interpreter 90752/115648|
 *                      120328/158968, sizeof 316616/365624|
 *                      346568(*)/409296                                [F][H]
 *   str (compact ASCII) length 16/32, hash 24/40, state 32/48, data at
 *                      sizeof(PyASCIIObject) 40/56; PyCompactUnicodeObject
 *                      56/72; PyUnicodeObject 64/80.  state bits d:
 *                      interned 0-1, kind 2-4, compact 5, ascii 6; ft:
 *                      interned byte 0, kind 8-10, compact 11, ascii 12 [F][H]
 *   bytes              ob_size 16/32, ob_shash 24/40, ob_sval 32/48,
 *                      sizeof 40/56                                    [F][H]
 *   tuple              ob_size 16/32, ob_hash 24/40, ob_item 32/48,
 *                      sizeof 40/56                                    [F][H]
 *   list 40/56 (ob_item 24/40); set 200/216 (used 24/40, mask 32/48,
 *   table 40/56); dict 48/64 (ma_keys 32/48, ma_values 40/56); float
 *   24/40 (ob_fval 16/32); long 32/48 (lv_tag 16/32, ob_digit 24/40);
 *   generator 160/176 (gi_name 24/40, gi_frame_state 67/83, gi_iframe
 *   72/88); llist_node next 0, prev 8; _PyRemoteDebuggerSupport
 *   debugger_pending_call 0, debugger_script_path 4 (512 bytes) [F][H]
 *   -- these last ones are placeholder structures: only their offsets
 *   feed the table, no such object is laid out; but for ints and dicts,
 *   laid out for threading._active (default builds):
 *   dict keys          dk_refcnt 0, dk_log2_size 8, dk_log2_index_bytes
 *                      9, dk_kind 10 (0 general, 1 unicode, 2 split; ft:
 *                      dk_mutex 11), dk_version 12, dk_usable 16,
 *                      dk_nentries 24, dk_indices 32, then the entries
 *                      {hash, key, value} or {key, value}; inline values
 *                      {capacity, size, embedded, valid, values[]} at the
 *                      object + tp_basicsize, its managed dict pointer 3
 *                      words before the object         [C] Include/internal/
 *                      pycore_dict.h @ 01041a40, Objects/dictobject.c
 *   module             md_dict 16/32  [C] internal/pycore_moduleobject.h
 *   int (compact)      lv_tag = digits << 3 | sign (0 positive), 30-bit
 *                      digits; type flags INLINE_VALUES 1<<2,
 *                      MANAGED_DICT 1<<4, HEAPTYPE 1<<9, LONG_SUBCLASS
 *                      1<<24, DICT_SUBCLASS 1<<29: as in 3.12 and 3.13
 *                      (cpython/longintrepr.h, object.h), whose real
 *                      interpreters the tests read the same way
 *   (*) 3.15.2 default sizes are those of Debian's compiled binary [F]; the
 *   headers give 8 bytes less (226232, 346560).  The 8 bytes are put at the
 *   end of the interpreter, which is the last member of the runtime in both.
 *
 * Other values:
 *   _PyStackRef tags: NULL = 1; a reference to an immortal (default build)
 *     or deferred-refcount (ft, ob_gc_bits & 1<<6) object carries tag 1
 *     (Py_TAG_REFCNT / Py_TAG_DEFERRED), others are untagged         [F][H]
 *   immortal refcount (default) 3<<30; static immortal adds
 *     (_Py_STATICALLY_ALLOCATED_FLAG 4 | _Py_IMMORTAL_FLAGS 1) << 48;
 *     ft immortal: ob_ref_local = UINT32_MAX                         [H]
 *   frame owners: THREAD 0, INTERPRETER 3 (entry frames and the 3.15 base
 *     frame)                                                          [F]
 *   entry frame (on the C stack of the function that "calls" Python):
 *     f_executable = None|1, instr_ptr = trampoline + 1 (trampoline:
 *     NOP, INTERPRETER_EXIT, NOP, INTERPRETER_EXIT, RESUME), stackpointer
 *     = the slot after the frame, previous = tstate->current_frame  [C][F]
 *   3.15 base frame: f_executable None|1, f_funcobj 1, stackpointer =
 *     &localsplus[0] holding 1, owner 3, previous NULL; tstate->base_frame
 *     points at it and is where every chain ends                     [F]
 *   data stack: first chunk 16 KiB, frames start at data[1] of the root
 *     chunk; a frame that does not fit (co_framesize >= limit - top)
 *     goes to a new chunk of 16 KiB doubled until 8*(framesize+1000) fits,
 *     and the old chunk's top records where it stopped              [C][H]
 *   co_framesize = nlocalsplus + stacksize + FRAME_SPECIALS_SIZE (10) [H]
 *   opcodes and inline cache counts differ by version: see OP_* below [H]
 *   location table: entries of a first byte 0x80|code<<3|(len-1) (len in
 *     code units, at most 8), codes 0-9 short form, 10-12 one-line
 *     (line delta 0-2, column bytes), 13 no columns (svarint delta), 14
 *     long (svarint line delta, varint end-line delta, varint col+1,
 *     varint end col+1), 15 none; varints in 6-bit chunks, bit 6 = more;
 *     the first delta is from co_firstlineno; unchanged in 3.14/3.15 [C][H]
 *   thread status bits: initialized 0, bound 1, unbound 2, bound_gilstate
 *     3, active 4; tstate->state DETACHED 0, ATTACHED 1               [F][H]
 *   tlbc: a thread's index comes from a pool giving the smallest free one
 *     (main thread 0 = the code object's own bytecode, worker 1)    [C][H]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PYV
#define PYV 0x030e
#endif
#ifndef FT
#define FT 0
#endif
#ifndef FT_GIL
#define FT_GIL 0
#endif
/* PATCH n (a multiple of 8): pose as the next patch release (3.14.11,
 * 3.15.3), one that moved fields as a patch release may: n bytes more in
 * the thread state before thread_id (moving it, native_thread_id, the
 * data-stack fields and all after, and growing the thread state, the
 * interpreter and the runtime), and n bytes more in the code object
 * before _co_firsttraceable (moving it and co_code_adaptive).  The
 * _Py_DebugOffsets table says where the fields it has went; a reader
 * must find the rest (the data-stack top, _co_firsttraceable) by their
 * place beside them.  The table is then not the real one of any release:
 * check_table() is skipped. */
#ifndef PATCH
#define PATCH 0
#endif
#if PYV == 0x030e
#define V15 0
#define VERSION_HEX (0x030e0af0UL + (PATCH ? 0x100 : 0)) /* 3.14.10 final */
#elif PYV == 0x030f
#define V15 1
#define VERSION_HEX (0x030f02f0UL + (PATCH ? 0x100 : 0)) /* 3.15.2 final */
#else
#error "PYV must be 0x030e or 0x030f"
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* A member at byte offset off of a union-laid structure. */
#define AT(off, decl) struct { char CAT(_pad, __COUNTER__)[off]; decl; }
#define CHECK_AT(T, f, off) _Static_assert(offsetof(T, f) == (off), #T "." #f)
#define CHECK_SIZE(T, n) _Static_assert(sizeof(T) == (n), "sizeof " #T)

/* ---- opcodes ([H] opcode_ids.h, opcode.h, _PyOpcode_Caches) ---------- */
#if !V15
enum { OP_CACHE = 0, OP_GET_ITER = 16, OP_INTERPRETER_EXIT = 20, OP_NOP = 27,
       OP_POP_TOP = 31, OP_PUSH_NULL = 33, OP_RETURN_VALUE = 35, OP_TO_BOOL = 39,
       OP_BINARY_OP = 44, OP_CALL = 52, OP_FOR_ITER = 70, OP_JUMP_BACKWARD = 75,
       OP_LOAD_ATTR = 80, OP_LOAD_CONST = 82, OP_LOAD_FAST_BORROW = 86,
       OP_LOAD_GLOBAL = 92, OP_LOAD_NAME = 93, OP_LOAD_SMALL_INT = 94,
       OP_POP_JUMP_IF_TRUE = 103, OP_STORE_FAST = 112, OP_STORE_NAME = 116,
       OP_RESUME = 128, OP_BINARY_OP_ADD_INT = 130, OP_BINARY_OP_SUBSCR_LIST_INT = 137,
       OP_CALL_PY_EXACT_ARGS = 161, OP_LOAD_ATTR_METHOD_WITH_VALUES = 183,
       OP_LOAD_GLOBAL_MODULE = 193 };
#else
enum { OP_CACHE = 0, OP_INTERPRETER_EXIT = 18, OP_NOP = 25, OP_POP_TOP = 29,
       OP_PUSH_NULL = 31, OP_RETURN_VALUE = 33, OP_TO_BOOL = 37, OP_BINARY_OP = 42,
       OP_CALL = 50, OP_FOR_ITER = 68, OP_GET_ITER = 70, OP_JUMP_BACKWARD = 74,
       OP_LOAD_ATTR = 79, OP_LOAD_CONST = 81, OP_LOAD_FAST_BORROW = 85,
       OP_LOAD_GLOBAL = 91, OP_LOAD_NAME = 92, OP_LOAD_SMALL_INT = 93,
       OP_POP_JUMP_IF_TRUE = 102, OP_STORE_FAST = 111, OP_STORE_NAME = 115,
       OP_RESUME = 128, OP_BINARY_OP_ADD_INT = 130, OP_BINARY_OP_SUBSCR_LIST_INT = 137,
       OP_CALL_PY_EXACT_ARGS = 164, OP_LOAD_ATTR_METHOD_WITH_VALUES = 189,
       OP_LOAD_GLOBAL_MODULE = 197 };
#endif
enum { NB_ADD = 0, NB_AND = 1, NB_MULTIPLY = 5, NB_INPLACE_ADD = 13, NB_INPLACE_AND = 14,
       NB_SUBSCR = 26 };

static int ncaches(int op)
{
	switch (op) {
	case OP_LOAD_GLOBAL: case OP_LOAD_GLOBAL_MODULE: return 4;
	case OP_LOAD_ATTR: case OP_LOAD_ATTR_METHOD_WITH_VALUES: return 9;
	case OP_TO_BOOL: case OP_CALL: case OP_CALL_PY_EXACT_ARGS: return 3;
	case OP_BINARY_OP: case OP_BINARY_OP_ADD_INT: case OP_BINARY_OP_SUBSCR_LIST_INT: return 5;
	case OP_JUMP_BACKWARD: case OP_POP_JUMP_IF_TRUE: case OP_FOR_ITER: return 1;
	case OP_RESUME: case OP_GET_ITER: return V15; /* 3.15 gave both a cache */
	default: return 0;
	}
}

/* ---- objects --------------------------------------------------------- */
struct ftype;
#if FT
struct fobj {
	uintptr_t ob_tid;
	uint16_t ob_flags;
	uint8_t ob_mutex;
	uint8_t ob_gc_bits;
	uint32_t ob_ref_local;
	int64_t ob_ref_shared;
	struct ftype *ob_type;
};
#else
struct fobj {
	uint32_t ob_refcnt;
	uint16_t ob_overflow;
	uint16_t ob_flags;
	struct ftype *ob_type;
};
#endif
struct fvar {
	struct fobj ob_base;
	int64_t ob_size;
};
#define OBJ_SIZE (FT ? 32 : 16)
#define VAR_SIZE (FT ? 40 : 24)
CHECK_SIZE(struct fobj, OBJ_SIZE);
CHECK_AT(struct fobj, ob_type, FT ? 24 : 8);
CHECK_AT(struct fvar, ob_size, FT ? 32 : 16);

#define IMMORTAL_REFCNT (3ULL << 30)
#define STATIC_FLAGS (4 | 1) /* _Py_STATICALLY_ALLOCATED_FLAG | _Py_IMMORTAL_FLAGS */
#define GC_BITS_TRACKED 1
#define GC_BITS_DEFERRED (1 << 6)

#define TYPE_SIZE (V15 ? (FT ? 440 : 424) : (FT ? 432 : 416))
struct ftype {
	union {
		char _raw[TYPE_SIZE];
		AT(0, struct fvar ob_base);
		AT(VAR_SIZE + 0, const char *tp_name);
		AT(VAR_SIZE + 8, int64_t tp_basicsize);
		AT(VAR_SIZE + 16, int64_t tp_itemsize);
		AT(VAR_SIZE + 64, void *tp_repr);
		AT(VAR_SIZE + 144, unsigned long tp_flags);
		AT(VAR_SIZE + 264, int64_t tp_dictoffset);
	};
};
CHECK_SIZE(struct ftype, TYPE_SIZE);
CHECK_AT(struct ftype, tp_name, FT ? 40 : 24);
CHECK_AT(struct ftype, tp_repr, FT ? 104 : 88);
CHECK_AT(struct ftype, tp_flags, FT ? 184 : 168);
CHECK_AT(struct ftype, tp_dictoffset, FT ? 304 : 288);

#define HT_SIZE (V15 ? (FT ? 968 : 944) : (FT ? 960 : 936))
#define HT_CACHED_KEYS (V15 ? (FT ? 904 : 888) : (FT ? 896 : 880))
struct fheaptype {
	union {
		char _raw[HT_SIZE];
		AT(0, struct ftype ht_type);
		AT(HT_CACHED_KEYS, void *ht_cached_keys);
	};
};
CHECK_SIZE(struct fheaptype, HT_SIZE);

struct fascii {
	struct fobj ob_base;
	int64_t length;
	int64_t hash;
	uint32_t state;
};
struct fcompact {
	struct fascii _base;
	int64_t utf8_length;
	char *utf8;
};
struct funicode {
	struct fcompact _base;
	void *data;
};
CHECK_SIZE(struct fascii, FT ? 56 : 40);
CHECK_SIZE(struct fcompact, FT ? 72 : 56);
CHECK_SIZE(struct funicode, FT ? 80 : 64);
CHECK_AT(struct fascii, state, FT ? 48 : 32);
CHECK_AT(struct fascii, length, FT ? 32 : 16);
/* compact ASCII, not interned, kind 1 */
#if FT
#define STR_STATE ((1u << 8) | (1u << 11) | (1u << 12))
#else
#define STR_STATE ((1u << 2) | (1u << 5) | (1u << 6))
#endif

struct fbytes {
	struct fvar ob_base;
	int64_t ob_shash;
	char ob_sval[1];
};
CHECK_SIZE(struct fbytes, FT ? 56 : 40);
CHECK_AT(struct fbytes, ob_sval, FT ? 48 : 32);

struct ftuple {
	struct fvar ob_base;
	int64_t ob_hash;
	struct fobj *ob_item[1];
};
CHECK_SIZE(struct ftuple, FT ? 56 : 40);
CHECK_AT(struct ftuple, ob_item, FT ? 48 : 32);

/* Placeholders: only their offsets feed the debug table. */
struct flist { struct fvar ob_base; struct fobj **ob_item; int64_t allocated; };
struct fset { struct fobj ob_base; int64_t fill, used, mask; void *table; int64_t hash, finger;
	      char smalltable[8 * 16]; void *weakreflist; };
struct fdict { struct fobj ob_base; int64_t ma_used; uint64_t _ma_watcher_tag; void *ma_keys, *ma_values; };
struct ffloat { struct fobj ob_base; double ob_fval; };
struct flong { struct fobj ob_base; uintptr_t lv_tag; uint32_t ob_digit[1]; };
struct fllist { struct fllist *next, *prev; };
/* Laid out (the threading module, for thread names; default builds). */
struct fmodule { struct fobj ob_base; struct fobj *md_dict; };
struct fdictkeys {
	int64_t dk_refcnt;
	uint8_t dk_log2_size, dk_log2_index_bytes, dk_kind;
#if FT
	uint8_t dk_mutex;
#endif
	uint32_t dk_version;
	int64_t dk_usable, dk_nentries;
	int8_t dk_indices[8]; /* log2_size 3: 8 one-byte indices, then the entries */
};
struct fdictvalues { uint8_t capacity, size, embedded, valid; struct fobj *values[1]; };
CHECK_SIZE(struct fmodule, FT ? 40 : 24);
CHECK_AT(struct fdictkeys, dk_version, 12);
CHECK_AT(struct fdictkeys, dk_nentries, 24);
CHECK_AT(struct fdictkeys, dk_indices, 32);
CHECK_AT(struct fdictvalues, values, 8);
struct ferr_stackitem { struct fobj *exc_value; struct ferr_stackitem *previous_item; };
struct fremote_dbg { int32_t debugger_pending_call; char debugger_script_path[512]; };
CHECK_SIZE(struct flist, FT ? 56 : 40);
CHECK_SIZE(struct fset, FT ? 216 : 200);
CHECK_SIZE(struct fdict, FT ? 64 : 48);
CHECK_SIZE(struct ffloat, FT ? 40 : 24);
CHECK_SIZE(struct flong, FT ? 48 : 32);

/* ---- frames, code ---------------------------------------------------- */
struct fcode;
struct fframe {
	uintptr_t f_executable; /* _PyStackRef */
	struct fframe *previous;
	uintptr_t f_funcobj;    /* _PyStackRef */
	struct fobj *f_globals, *f_builtins, *f_locals;
	void *frame_obj;
	uint16_t *instr_ptr;
	uintptr_t *stackpointer;
#if FT
	int32_t tlbc_index;
#endif
	uint16_t return_offset;
	char owner;
	uint8_t visited;
	uintptr_t localsplus[1];
};
CHECK_SIZE(struct fframe, 88);
CHECK_AT(struct fframe, owner, FT ? 78 : 74);
CHECK_AT(struct fframe, localsplus, 80);
#define FRAME_SPECIALS_SIZE ((int)((sizeof(struct fframe) - 1) / sizeof(void *)))
enum { OWNED_BY_THREAD = 0, OWNED_BY_INTERPRETER = 3 };
#define STACKREF_NULL ((uintptr_t)1)
#define TAG_REFCNT ((uintptr_t)1)

/* The entry frame _PyEval_EvalFrameDefault keeps on the C stack. */
struct fentry {
	struct fframe frame;
	uintptr_t stack[1];
};

struct fgen {
	struct fobj ob_base;
	struct fobj *gi_weakreflist, *gi_name, *gi_qualname;
	struct ferr_stackitem gi_exc_state;
	struct fobj *gi_origin_or_finalizer;
	char gi_hooks_inited, gi_closed, gi_running_async;
	int8_t gi_frame_state;
	struct fframe gi_iframe;
};
CHECK_SIZE(struct fgen, FT ? 176 : 160);
CHECK_AT(struct fgen, gi_frame_state, FT ? 83 : 67);

struct fcodearray {
	int64_t size;
	char *entries[];
};

struct fcode {
	struct fvar ob_base;
	struct fobj *co_consts, *co_names, *co_exceptiontable;
	int32_t co_flags, co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize,
		co_firstlineno, co_nlocalsplus, co_framesize, co_nlocals, co_ncellvars, co_nfreevars;
	uint32_t co_version;
	struct fobj *co_localsplusnames, *co_localspluskinds, *co_filename, *co_name, *co_qualname,
		*co_linetable, *co_weakreflist;
	void *co_executors, *_co_cached;
	uintptr_t _co_instrumentation_version;
	void *_co_monitoring;
	int64_t _co_unique_id;
#if PATCH
	char _co_patch[PATCH];
#endif
	int32_t _co_firsttraceable;
	void *co_extra;
#if FT
	struct fcodearray *co_tlbc;
#endif
	char co_code_adaptive[1];
};
CHECK_SIZE(struct fcode, (FT ? 240 : 216) + PATCH);
CHECK_AT(struct fcode, co_firstlineno, FT ? 84 : 68);
CHECK_AT(struct fcode, co_filename, FT ? 128 : 112);
CHECK_AT(struct fcode, _co_firsttraceable, (FT ? 208 : 192) + PATCH);
CHECK_AT(struct fcode, co_code_adaptive, (FT ? 232 : 208) + PATCH);

struct fchunk {
	struct fchunk *previous;
	size_t size;
	size_t top;
	uintptr_t data[1];
};
CHECK_AT(struct fchunk, data, 24);
#define DATA_STACK_CHUNK_SIZE (16 * 1024)
#define MINIMUM_OVERHEAD 1000

/* ---- thread state ---------------------------------------------------- */
#if !V15
#define TS_SIZE (832 + PATCH)
#define TS_THREAD_ID (152 + PATCH)
#define TS_CUR_EXC 112
#define TS_EXC_INFO 120
#define TS_ID (224 + PATCH)
#define TS_CHUNK (232 + PATCH)
#define TS_EXC_STATE (256 + PATCH)
#define TS_RDS (304 + PATCH)
#else
#define TS_SIZE (888 + PATCH)
#define TS_THREAD_ID (176 + PATCH)
#define TS_CUR_EXC 136
#define TS_EXC_INFO 144
#define TS_ID (248 + PATCH)
#define TS_CHUNK (256 + PATCH)
#define TS_EXC_STATE (288 + PATCH)
#define TS_RDS (344 + PATCH)
#endif
struct finterp;
struct fts {
	union {
		char _raw[TS_SIZE];
		AT(0, struct fts *prev);
		AT(8, struct fts *next);
		AT(16, struct finterp *interp);
		AT(24, uintptr_t eval_breaker);
		AT(32, uint32_t _status);
		AT(36, int32_t holds_gil);
#if V15
		AT(40, int32_t gil_requested);
		AT(44, int32_t _whence);
		AT(48, int32_t state);
		AT(52, int32_t py_recursion_remaining);
		AT(56, int32_t py_recursion_limit);
		AT(80, struct fframe *base_frame);
		AT(88, struct fframe *last_profiled_frame);
		AT(96, uintptr_t last_profiled_frame_seq);
#else
		AT(40, int32_t _whence);
		AT(44, int32_t state);
		AT(48, int32_t py_recursion_remaining);
		AT(52, int32_t py_recursion_limit);
#endif
		AT(72, struct fframe *current_frame);
		AT(TS_CUR_EXC, struct fobj *current_exception);
		AT(TS_EXC_INFO, struct ferr_stackitem *exc_info);
		AT(TS_THREAD_ID, unsigned long thread_id);
		AT(TS_THREAD_ID + 8, unsigned long native_thread_id);
		AT(TS_ID, uint64_t id);
		AT(TS_CHUNK, struct fchunk *datastack_chunk);
		AT(TS_CHUNK + 8, uintptr_t *datastack_top);
		AT(TS_CHUNK + 16, uintptr_t *datastack_limit);
		AT(TS_EXC_STATE, struct ferr_stackitem exc_state);
		AT(TS_RDS, struct fremote_dbg remote_debugger_support);
	};
};
CHECK_SIZE(struct fts, TS_SIZE);
enum { ST_INITIALIZED = 1, ST_BOUND = 2, ST_BOUND_GILSTATE = 8, ST_ACTIVE = 16 };
enum { THREAD_DETACHED = 0, THREAD_ATTACHED = 1 };
enum { WHENCE_INIT = 1, WHENCE_THREADING = 3 };

#define IMPL_SIZE ((V15 ? (FT ? 19408 : 1096) : (FT ? 19216 : 936)) + PATCH)
#define IMPL_TLBC_INDEX ((V15 ? 19328 : 19128) + PATCH)
struct fts_impl {
	union {
		char _raw[IMPL_SIZE];
		AT(0, struct fts base);
#if V15
		AT(TS_SIZE, struct fframe base_frame);
#endif
#if FT
		AT(IMPL_TLBC_INDEX, int32_t tlbc_index);
#endif
	};
};
CHECK_SIZE(struct fts_impl, IMPL_SIZE);

/* ---- interpreter ----------------------------------------------------- */
#define GIL_SIZE (FT ? 216 : 208)
struct fgil {
	union {
		char _raw[GIL_SIZE];
#if FT
		AT(0, int32_t enabled);
#endif
		AT(FT ? 8 : 0, unsigned long interval);
		AT(FT ? 16 : 8, struct fts *last_holder);
		AT(FT ? 24 : 16, int32_t locked);
	};
};
CHECK_SIZE(struct fgil, GIL_SIZE);

#if V15
#define GC_SIZE 176
#define GC_COLLECTING 112
#define GC_STATS_SIZE (FT ? 224 : 1120)
struct fgc_stats { char _raw[GC_STATS_SIZE]; };
#else
#define GC_SIZE (FT ? 288 : 264)
#define GC_COLLECTING 192
#endif
struct fgc {
	union {
		char _raw[GC_SIZE];
		AT(GC_COLLECTING, int32_t collecting);
#if V15
		AT(104, struct fgc_stats *generation_stats);
		AT(120, struct fframe *frame);
#endif
	};
};
CHECK_SIZE(struct fgc, GC_SIZE);

#if !V15
#define I_NEXT 7272
#define I_GC 7408
#define I_SYSDICT (FT ? 7696 : 7672)
#define I_GIL (FT ? 7808 : 7784)
#define I_CODE_GEN (FT ? 8024 : 7992)
#define I_REMOTE_DEBUG (FT ? 8108 : 8076)
#define I_TLBC_GEN 17300
#define I_INITIAL_THREAD (FT ? 230760 : 224928)
#define INTERP_SIZE ((FT ? 249976 : 225864) + PATCH)
#else
#define I_NEXT 7264
#define I_GC 7400
#define I_SYSDICT 7576
#define I_GIL 7736
#define I_CODE_GEN (FT ? 7952 : 7944)
#define I_REMOTE_DEBUG (FT ? 8036 : 8028)
#define I_TLBC_GEN 17252
#define I_INITIAL_THREAD (FT ? 230920 : 225136)
#define INTERP_SIZE ((FT ? 250328 : 226240) + PATCH)
#endif
struct finterp {
	union {
		char _raw[INTERP_SIZE];
		AT(8, int32_t ceval_recursion_limit);
		AT(16, struct fgil *ceval_gil);
		AT(24, int32_t ceval_own_gil);
		AT(I_NEXT, struct finterp *next);
		AT(I_NEXT + 8, int64_t id);
		AT(I_NEXT + 40, int32_t _initialized);
		AT(I_NEXT + 44, int32_t _ready);
		AT(I_NEXT + 64, int64_t threads_next_unique_id);
		AT(I_NEXT + 72, struct fts *threads_head);
		AT(I_NEXT + 88, struct fts *threads_main);
		AT(I_NEXT + 96, int64_t threads_count);
		AT(I_NEXT + 112, void *runtime);
		AT(I_GC, struct fgc gc);
		AT(I_SYSDICT, struct fobj *sysdict);
		AT(I_SYSDICT + 8, struct fobj *builtins);
		AT(I_SYSDICT + 16, struct fobj *imports_modules);
		AT(I_GIL, struct fgil _gil);
		AT(I_CODE_GEN, uint64_t _code_object_generation);
		AT(I_REMOTE_DEBUG, int32_t config_remote_debug);
#if FT
		AT(I_TLBC_GEN, uint32_t tlbc_generation);
#endif
		AT(I_INITIAL_THREAD, struct fts_impl _initial_thread);
	};
};
CHECK_SIZE(struct finterp, INTERP_SIZE);
CHECK_AT(struct finterp, threads_head, V15 ? 7336 : 7344);
CHECK_AT(struct finterp, threads_main, V15 ? 7352 : 7360);
CHECK_AT(struct finterp, runtime, V15 ? 7376 : 7384);
CHECK_AT(struct finterp, imports_modules, V15 ? 7592 : (FT ? 7712 : 7688));

/* ---- _Py_DebugOffsets ([F] §2a/§2b: word order) ---------------------- */
struct fdebug_offsets {
	char cookie[8];
	uint64_t version, free_threaded;
	struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
	struct { uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict,
		 builtins, ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
		 gil_runtime_state_locked, gil_runtime_state_holder, code_object_generation,
		 tlbc_generation; } interpreter_state;
	struct { uint64_t size, prev, next, interp, current_frame;
#if V15
		 uint64_t base_frame, last_profiled_frame, last_profiled_frame_seq;
#endif
		 uint64_t thread_id, native_thread_id, datastack_chunk, status;
#if V15
		 uint64_t holds_gil, gil_requested, current_exception, exc_state;
#endif
	} thread_state;
#if V15
	struct { uint64_t exc_value; } err_stackitem;
#endif
	struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer,
		 tlbc_index; } interpreter_frame;
	struct { uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
		 localsplusnames, localspluskinds, co_code_adaptive, co_tlbc; } code_object;
	struct { uint64_t size, ob_type; } pyobject;
	struct { uint64_t size, tp_name, tp_repr, tp_flags;
#if V15
		 uint64_t tp_basicsize, tp_dictoffset;
#endif
	} type_object;
#if V15
	struct { uint64_t size, ht_cached_keys; } heap_type_object;
#endif
	struct { uint64_t size, ob_item, ob_size; } tuple_object;
	struct { uint64_t size, ob_item, ob_size; } list_object;
	struct { uint64_t size, used, table, mask; } set_object;
	struct { uint64_t size, ma_keys, ma_values; } dict_object;
	struct { uint64_t size, ob_fval; } float_object;
	struct { uint64_t size, lv_tag, ob_digit; } long_object;
	struct { uint64_t size, ob_size, ob_sval; } bytes_object;
	struct { uint64_t size, state, length, asciiobject_size;
#if V15
		 uint64_t compactunicodeobject_size;
#endif
	} unicode_object;
	struct { uint64_t size, collecting;
#if V15
		 uint64_t frame, generation_stats_size, generation_stats;
#endif
	} gc;
	struct { uint64_t size, gi_name, gi_iframe, gi_frame_state; } gen_object;
	struct { uint64_t next, prev; } llist_node;
	struct { uint64_t eval_breaker, remote_debugger_support, remote_debugging_enabled,
		 debugger_pending_call, debugger_script_path, debugger_script_path_size; }
		debugger_support;
};
CHECK_SIZE(struct fdebug_offsets, V15 ? 888 : 760);

/* ---- runtime --------------------------------------------------------- */
#if !V15
#define RT_FINALIZING 784
#define RT_HEAD 808
#define RT_MAIN_INTERP (FT ? 115648 : 90752)
#define RT_SIZE ((FT ? 365624 : 316616) + PATCH)
#else
#define RT_FINALIZING 912
#define RT_HEAD 936
#define RT_MAIN_INTERP (FT ? 158968 : 120328)
#define RT_SIZE ((FT ? 409296 : 346568) + PATCH)
#endif
struct fruntime {
	union {
		char _raw[RT_SIZE];
		struct fdebug_offsets debug_offsets;
		AT(RT_FINALIZING, void *_finalizing);
		AT(RT_HEAD, struct finterp *interpreters_head);
		AT(RT_HEAD + 8, struct finterp *interpreters_main);
		AT(RT_MAIN_INTERP, struct finterp _main_interpreter);
	};
};
CHECK_SIZE(struct fruntime, RT_SIZE);

#define OFF(T, f) ((uint64_t)offsetof(T, f))

__attribute__((section(".PyRuntime"), used, aligned(32)))
struct fruntime _PyRuntime = { .debug_offsets = {
	.cookie = { 'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y' },
	.version = VERSION_HEX,
	.free_threaded = FT,
	.runtime_state = {
		.size = sizeof(struct fruntime),
		.finalizing = OFF(struct fruntime, _finalizing),
		.interpreters_head = OFF(struct fruntime, interpreters_head),
	},
	.interpreter_state = {
		.size = sizeof(struct finterp),
		.id = OFF(struct finterp, id),
		.next = OFF(struct finterp, next),
		.threads_head = OFF(struct finterp, threads_head),
		.threads_main = OFF(struct finterp, threads_main),
		.gc = OFF(struct finterp, gc),
		.imports_modules = OFF(struct finterp, imports_modules),
		.sysdict = OFF(struct finterp, sysdict),
		.builtins = OFF(struct finterp, builtins),
		.ceval_gil = OFF(struct finterp, ceval_gil),
		.gil_runtime_state = OFF(struct finterp, _gil),
#if FT
		.gil_runtime_state_enabled = OFF(struct fgil, enabled), /* relative to _gil */
		.tlbc_generation = OFF(struct finterp, tlbc_generation),
#endif
		.gil_runtime_state_locked = OFF(struct finterp, _gil) + OFF(struct fgil, locked),
		.gil_runtime_state_holder = OFF(struct finterp, _gil) + OFF(struct fgil, last_holder),
		.code_object_generation = OFF(struct finterp, _code_object_generation),
	},
	.thread_state = {
		.size = sizeof(struct fts),
		.prev = OFF(struct fts, prev),
		.next = OFF(struct fts, next),
		.interp = OFF(struct fts, interp),
		.current_frame = OFF(struct fts, current_frame),
#if V15
		.base_frame = OFF(struct fts, base_frame),
		.last_profiled_frame = OFF(struct fts, last_profiled_frame),
		.last_profiled_frame_seq = OFF(struct fts, last_profiled_frame_seq),
		.holds_gil = OFF(struct fts, holds_gil),
		.gil_requested = OFF(struct fts, gil_requested),
		.current_exception = OFF(struct fts, current_exception),
		.exc_state = OFF(struct fts, exc_state),
#endif
		.thread_id = OFF(struct fts, thread_id),
		.native_thread_id = OFF(struct fts, native_thread_id),
		.datastack_chunk = OFF(struct fts, datastack_chunk),
		.status = OFF(struct fts, _status),
	},
#if V15
	.err_stackitem = { .exc_value = OFF(struct ferr_stackitem, exc_value) },
#endif
	.interpreter_frame = {
		.size = sizeof(struct fframe),
		.previous = OFF(struct fframe, previous),
		.executable = OFF(struct fframe, f_executable),
		.instr_ptr = OFF(struct fframe, instr_ptr),
		.localsplus = OFF(struct fframe, localsplus),
		.owner = OFF(struct fframe, owner),
		.stackpointer = OFF(struct fframe, stackpointer),
#if FT
		.tlbc_index = OFF(struct fframe, tlbc_index),
#endif
	},
	.code_object = {
		.size = sizeof(struct fcode),
		.filename = OFF(struct fcode, co_filename),
		.name = OFF(struct fcode, co_name),
		.qualname = OFF(struct fcode, co_qualname),
		.linetable = OFF(struct fcode, co_linetable),
		.firstlineno = OFF(struct fcode, co_firstlineno),
		.argcount = OFF(struct fcode, co_argcount),
		.localsplusnames = OFF(struct fcode, co_localsplusnames),
		.localspluskinds = OFF(struct fcode, co_localspluskinds),
		.co_code_adaptive = OFF(struct fcode, co_code_adaptive),
#if FT
		.co_tlbc = OFF(struct fcode, co_tlbc),
#endif
	},
	.pyobject = { .size = sizeof(struct fobj), .ob_type = OFF(struct fobj, ob_type) },
	.type_object = {
		.size = sizeof(struct ftype),
		.tp_name = OFF(struct ftype, tp_name),
		.tp_repr = OFF(struct ftype, tp_repr),
		.tp_flags = OFF(struct ftype, tp_flags),
#if V15
		.tp_basicsize = OFF(struct ftype, tp_basicsize),
		.tp_dictoffset = OFF(struct ftype, tp_dictoffset),
#endif
	},
#if V15
	.heap_type_object = { .size = sizeof(struct fheaptype),
			      .ht_cached_keys = OFF(struct fheaptype, ht_cached_keys) },
#endif
	.tuple_object = { .size = sizeof(struct ftuple), .ob_item = OFF(struct ftuple, ob_item),
			  .ob_size = OFF(struct fvar, ob_size) },
	.list_object = { .size = sizeof(struct flist), .ob_item = OFF(struct flist, ob_item),
			 .ob_size = OFF(struct fvar, ob_size) },
	.set_object = { .size = sizeof(struct fset), .used = OFF(struct fset, used),
			.table = OFF(struct fset, table), .mask = OFF(struct fset, mask) },
	.dict_object = { .size = sizeof(struct fdict), .ma_keys = OFF(struct fdict, ma_keys),
			 .ma_values = OFF(struct fdict, ma_values) },
	.float_object = { .size = sizeof(struct ffloat), .ob_fval = OFF(struct ffloat, ob_fval) },
	.long_object = { .size = sizeof(struct flong), .lv_tag = OFF(struct flong, lv_tag),
			 .ob_digit = OFF(struct flong, ob_digit) },
	.bytes_object = { .size = sizeof(struct fbytes), .ob_size = OFF(struct fvar, ob_size),
			  .ob_sval = OFF(struct fbytes, ob_sval) },
	.unicode_object = {
		.size = sizeof(struct funicode),
		.state = OFF(struct fascii, state),
		.length = OFF(struct fascii, length),
		.asciiobject_size = sizeof(struct fascii),
#if V15
		.compactunicodeobject_size = sizeof(struct fcompact),
#endif
	},
	.gc = {
		.size = sizeof(struct fgc),
		.collecting = OFF(struct fgc, collecting),
#if V15
		.frame = OFF(struct fgc, frame),
		.generation_stats_size = sizeof(struct fgc_stats),
		.generation_stats = OFF(struct fgc, generation_stats),
#endif
	},
	.gen_object = { .size = sizeof(struct fgen), .gi_name = OFF(struct fgen, gi_name),
			.gi_iframe = OFF(struct fgen, gi_iframe),
			.gi_frame_state = OFF(struct fgen, gi_frame_state) },
	.llist_node = { .next = OFF(struct fllist, next), .prev = OFF(struct fllist, prev) },
	.debugger_support = {
		.eval_breaker = OFF(struct fts, eval_breaker),
		.remote_debugger_support = OFF(struct fts, remote_debugger_support),
		.remote_debugging_enabled = OFF(struct finterp, config_remote_debug),
		.debugger_pending_call = OFF(struct fremote_dbg, debugger_pending_call),
		.debugger_script_path = OFF(struct fremote_dbg, debugger_script_path),
		.debugger_script_path_size = sizeof(((struct fremote_dbg *)0)->debugger_script_path),
	},
} };

__attribute__((used)) const unsigned long Py_Version = VERSION_HEX;

/* ---- the real tables, to compare against ([F] §2c) -------------------- */
struct real_word {
	int word;
	const char *field;
	uint64_t value;
};
#if PYV == 0x030e && FT == 0
static const struct real_word real_words[] = {
	{   1, "version", 0x30e0af0 },
	{   2, "free_threaded", 0 },
	{   3, "runtime_state.size", 316616 },
	{   4, "runtime_state.finalizing", 784 },
	{   5, "runtime_state.interpreters_head", 808 },
	{   6, "interpreter_state.size", 225864 },
	{   7, "interpreter_state.id", 7280 },
	{   8, "interpreter_state.next", 7272 },
	{   9, "interpreter_state.threads_head", 7344 },
	{  10, "interpreter_state.threads_main", 7360 },
	{  11, "interpreter_state.gc", 7408 },
	{  12, "interpreter_state.imports_modules", 7688 },
	{  13, "interpreter_state.sysdict", 7672 },
	{  14, "interpreter_state.builtins", 7680 },
	{  15, "interpreter_state.ceval_gil", 16 },
	{  16, "interpreter_state.gil_runtime_state", 7784 },
	{  17, "interpreter_state.gil_runtime_state_enabled", 0 },
	{  18, "interpreter_state.gil_runtime_state_locked", 7800 },
	{  19, "interpreter_state.gil_runtime_state_holder", 7792 },
	{  20, "interpreter_state.code_object_generation", 7992 },
	{  21, "interpreter_state.tlbc_generation", 0 },
	{  22, "thread_state.size", 832 },
	{  23, "thread_state.prev", 0 },
	{  24, "thread_state.next", 8 },
	{  25, "thread_state.interp", 16 },
	{  26, "thread_state.current_frame", 72 },
	{  27, "thread_state.thread_id", 152 },
	{  28, "thread_state.native_thread_id", 160 },
	{  29, "thread_state.datastack_chunk", 232 },
	{  30, "thread_state.status", 32 },
	{  31, "interpreter_frame.size", 88 },
	{  32, "interpreter_frame.previous", 8 },
	{  33, "interpreter_frame.executable", 0 },
	{  34, "interpreter_frame.instr_ptr", 56 },
	{  35, "interpreter_frame.localsplus", 80 },
	{  36, "interpreter_frame.owner", 74 },
	{  37, "interpreter_frame.stackpointer", 64 },
	{  38, "interpreter_frame.tlbc_index", 0 },
	{  39, "code_object.size", 216 },
	{  40, "code_object.filename", 112 },
	{  41, "code_object.name", 120 },
	{  42, "code_object.qualname", 128 },
	{  43, "code_object.linetable", 136 },
	{  44, "code_object.firstlineno", 68 },
	{  45, "code_object.argcount", 52 },
	{  46, "code_object.localsplusnames", 96 },
	{  47, "code_object.localspluskinds", 104 },
	{  48, "code_object.co_code_adaptive", 208 },
	{  49, "code_object.co_tlbc", 0 },
	{  50, "pyobject.size", 16 },
	{  51, "pyobject.ob_type", 8 },
	{  52, "type_object.size", 416 },
	{  53, "type_object.tp_name", 24 },
	{  54, "type_object.tp_repr", 88 },
	{  55, "type_object.tp_flags", 168 },
	{  56, "tuple_object.size", 40 },
	{  57, "tuple_object.ob_item", 32 },
	{  58, "tuple_object.ob_size", 16 },
	{  59, "list_object.size", 40 },
	{  60, "list_object.ob_item", 24 },
	{  61, "list_object.ob_size", 16 },
	{  62, "set_object.size", 200 },
	{  63, "set_object.used", 24 },
	{  64, "set_object.table", 40 },
	{  65, "set_object.mask", 32 },
	{  66, "dict_object.size", 48 },
	{  67, "dict_object.ma_keys", 32 },
	{  68, "dict_object.ma_values", 40 },
	{  69, "float_object.size", 24 },
	{  70, "float_object.ob_fval", 16 },
	{  71, "long_object.size", 32 },
	{  72, "long_object.lv_tag", 16 },
	{  73, "long_object.ob_digit", 24 },
	{  74, "bytes_object.size", 40 },
	{  75, "bytes_object.ob_size", 16 },
	{  76, "bytes_object.ob_sval", 32 },
	{  77, "unicode_object.size", 64 },
	{  78, "unicode_object.state", 32 },
	{  79, "unicode_object.length", 16 },
	{  80, "unicode_object.asciiobject_size", 40 },
	{  81, "gc.size", 264 },
	{  82, "gc.collecting", 192 },
	{  83, "gen_object.size", 160 },
	{  84, "gen_object.gi_name", 24 },
	{  85, "gen_object.gi_iframe", 72 },
	{  86, "gen_object.gi_frame_state", 67 },
	{  87, "llist_node.next", 0 },
	{  88, "llist_node.prev", 8 },
	{  89, "debugger_support.eval_breaker", 24 },
	{  90, "debugger_support.remote_debugger_support", 304 },
	{  91, "debugger_support.remote_debugging_enabled", 8076 },
	{  92, "debugger_support.debugger_pending_call", 0 },
	{  93, "debugger_support.debugger_script_path", 4 },
	{  94, "debugger_support.debugger_script_path_size", 512 },
};
#endif
#if PYV == 0x030e && FT == 1
static const struct real_word real_words[] = {
	{   1, "version", 0x30e0af0 },
	{   2, "free_threaded", 1 },
	{   3, "runtime_state.size", 365624 },
	{   4, "runtime_state.finalizing", 784 },
	{   5, "runtime_state.interpreters_head", 808 },
	{   6, "interpreter_state.size", 249976 },
	{   7, "interpreter_state.id", 7280 },
	{   8, "interpreter_state.next", 7272 },
	{   9, "interpreter_state.threads_head", 7344 },
	{  10, "interpreter_state.threads_main", 7360 },
	{  11, "interpreter_state.gc", 7408 },
	{  12, "interpreter_state.imports_modules", 7712 },
	{  13, "interpreter_state.sysdict", 7696 },
	{  14, "interpreter_state.builtins", 7704 },
	{  15, "interpreter_state.ceval_gil", 16 },
	{  16, "interpreter_state.gil_runtime_state", 7808 },
	{  17, "interpreter_state.gil_runtime_state_enabled", 0 },
	{  18, "interpreter_state.gil_runtime_state_locked", 7832 },
	{  19, "interpreter_state.gil_runtime_state_holder", 7824 },
	{  20, "interpreter_state.code_object_generation", 8024 },
	{  21, "interpreter_state.tlbc_generation", 17300 },
	{  22, "thread_state.size", 832 },
	{  23, "thread_state.prev", 0 },
	{  24, "thread_state.next", 8 },
	{  25, "thread_state.interp", 16 },
	{  26, "thread_state.current_frame", 72 },
	{  27, "thread_state.thread_id", 152 },
	{  28, "thread_state.native_thread_id", 160 },
	{  29, "thread_state.datastack_chunk", 232 },
	{  30, "thread_state.status", 32 },
	{  31, "interpreter_frame.size", 88 },
	{  32, "interpreter_frame.previous", 8 },
	{  33, "interpreter_frame.executable", 0 },
	{  34, "interpreter_frame.instr_ptr", 56 },
	{  35, "interpreter_frame.localsplus", 80 },
	{  36, "interpreter_frame.owner", 78 },
	{  37, "interpreter_frame.stackpointer", 64 },
	{  38, "interpreter_frame.tlbc_index", 72 },
	{  39, "code_object.size", 240 },
	{  40, "code_object.filename", 128 },
	{  41, "code_object.name", 136 },
	{  42, "code_object.qualname", 144 },
	{  43, "code_object.linetable", 152 },
	{  44, "code_object.firstlineno", 84 },
	{  45, "code_object.argcount", 68 },
	{  46, "code_object.localsplusnames", 112 },
	{  47, "code_object.localspluskinds", 120 },
	{  48, "code_object.co_code_adaptive", 232 },
	{  49, "code_object.co_tlbc", 224 },
	{  50, "pyobject.size", 32 },
	{  51, "pyobject.ob_type", 24 },
	{  52, "type_object.size", 432 },
	{  53, "type_object.tp_name", 40 },
	{  54, "type_object.tp_repr", 104 },
	{  55, "type_object.tp_flags", 184 },
	{  56, "tuple_object.size", 56 },
	{  57, "tuple_object.ob_item", 48 },
	{  58, "tuple_object.ob_size", 32 },
	{  59, "list_object.size", 56 },
	{  60, "list_object.ob_item", 40 },
	{  61, "list_object.ob_size", 32 },
	{  62, "set_object.size", 216 },
	{  63, "set_object.used", 40 },
	{  64, "set_object.table", 56 },
	{  65, "set_object.mask", 48 },
	{  66, "dict_object.size", 64 },
	{  67, "dict_object.ma_keys", 48 },
	{  68, "dict_object.ma_values", 56 },
	{  69, "float_object.size", 40 },
	{  70, "float_object.ob_fval", 32 },
	{  71, "long_object.size", 48 },
	{  72, "long_object.lv_tag", 32 },
	{  73, "long_object.ob_digit", 40 },
	{  74, "bytes_object.size", 56 },
	{  75, "bytes_object.ob_size", 32 },
	{  76, "bytes_object.ob_sval", 48 },
	{  77, "unicode_object.size", 80 },
	{  78, "unicode_object.state", 48 },
	{  79, "unicode_object.length", 32 },
	{  80, "unicode_object.asciiobject_size", 56 },
	{  81, "gc.size", 288 },
	{  82, "gc.collecting", 192 },
	{  83, "gen_object.size", 176 },
	{  84, "gen_object.gi_name", 40 },
	{  85, "gen_object.gi_iframe", 88 },
	{  86, "gen_object.gi_frame_state", 83 },
	{  87, "llist_node.next", 0 },
	{  88, "llist_node.prev", 8 },
	{  89, "debugger_support.eval_breaker", 24 },
	{  90, "debugger_support.remote_debugger_support", 304 },
	{  91, "debugger_support.remote_debugging_enabled", 8108 },
	{  92, "debugger_support.debugger_pending_call", 0 },
	{  93, "debugger_support.debugger_script_path", 4 },
	{  94, "debugger_support.debugger_script_path_size", 512 },
};
#endif
#if PYV == 0x030f && FT == 0
static const struct real_word real_words[] = {
	{   1, "version", 0x30f02f0 },
	{   2, "free_threaded", 0 },
	{   3, "runtime_state.size", 346568 /* real binary; headers give 346560 */ },
	{   4, "runtime_state.finalizing", 912 },
	{   5, "runtime_state.interpreters_head", 936 },
	{   6, "interpreter_state.size", 226240 /* real binary; headers give 226232 */ },
	{   7, "interpreter_state.id", 7272 },
	{   8, "interpreter_state.next", 7264 },
	{   9, "interpreter_state.threads_head", 7336 },
	{  10, "interpreter_state.threads_main", 7352 },
	{  11, "interpreter_state.gc", 7400 },
	{  12, "interpreter_state.imports_modules", 7592 },
	{  13, "interpreter_state.sysdict", 7576 },
	{  14, "interpreter_state.builtins", 7584 },
	{  15, "interpreter_state.ceval_gil", 16 },
	{  16, "interpreter_state.gil_runtime_state", 7736 },
	{  17, "interpreter_state.gil_runtime_state_enabled", 0 },
	{  18, "interpreter_state.gil_runtime_state_locked", 7752 },
	{  19, "interpreter_state.gil_runtime_state_holder", 7744 },
	{  20, "interpreter_state.code_object_generation", 7944 },
	{  21, "interpreter_state.tlbc_generation", 0 },
	{  22, "thread_state.size", 888 },
	{  23, "thread_state.prev", 0 },
	{  24, "thread_state.next", 8 },
	{  25, "thread_state.interp", 16 },
	{  26, "thread_state.current_frame", 72 },
	{  27, "thread_state.base_frame", 80 },
	{  28, "thread_state.last_profiled_frame", 88 },
	{  29, "thread_state.last_profiled_frame_seq", 96 },
	{  30, "thread_state.thread_id", 176 },
	{  31, "thread_state.native_thread_id", 184 },
	{  32, "thread_state.datastack_chunk", 256 },
	{  33, "thread_state.status", 32 },
	{  34, "thread_state.holds_gil", 36 },
	{  35, "thread_state.gil_requested", 40 },
	{  36, "thread_state.current_exception", 136 },
	{  37, "thread_state.exc_state", 288 },
	{  38, "err_stackitem.exc_value", 0 },
	{  39, "interpreter_frame.size", 88 },
	{  40, "interpreter_frame.previous", 8 },
	{  41, "interpreter_frame.executable", 0 },
	{  42, "interpreter_frame.instr_ptr", 56 },
	{  43, "interpreter_frame.localsplus", 80 },
	{  44, "interpreter_frame.owner", 74 },
	{  45, "interpreter_frame.stackpointer", 64 },
	{  46, "interpreter_frame.tlbc_index", 0 },
	{  47, "code_object.size", 216 },
	{  48, "code_object.filename", 112 },
	{  49, "code_object.name", 120 },
	{  50, "code_object.qualname", 128 },
	{  51, "code_object.linetable", 136 },
	{  52, "code_object.firstlineno", 68 },
	{  53, "code_object.argcount", 52 },
	{  54, "code_object.localsplusnames", 96 },
	{  55, "code_object.localspluskinds", 104 },
	{  56, "code_object.co_code_adaptive", 208 },
	{  57, "code_object.co_tlbc", 0 },
	{  58, "pyobject.size", 16 },
	{  59, "pyobject.ob_type", 8 },
	{  60, "type_object.size", 424 },
	{  61, "type_object.tp_name", 24 },
	{  62, "type_object.tp_repr", 88 },
	{  63, "type_object.tp_flags", 168 },
	{  64, "type_object.tp_basicsize", 32 },
	{  65, "type_object.tp_dictoffset", 288 },
	{  66, "heap_type_object.size", 944 },
	{  67, "heap_type_object.ht_cached_keys", 888 },
	{  68, "tuple_object.size", 40 },
	{  69, "tuple_object.ob_item", 32 },
	{  70, "tuple_object.ob_size", 16 },
	{  71, "list_object.size", 40 },
	{  72, "list_object.ob_item", 24 },
	{  73, "list_object.ob_size", 16 },
	{  74, "set_object.size", 200 },
	{  75, "set_object.used", 24 },
	{  76, "set_object.table", 40 },
	{  77, "set_object.mask", 32 },
	{  78, "dict_object.size", 48 },
	{  79, "dict_object.ma_keys", 32 },
	{  80, "dict_object.ma_values", 40 },
	{  81, "float_object.size", 24 },
	{  82, "float_object.ob_fval", 16 },
	{  83, "long_object.size", 32 },
	{  84, "long_object.lv_tag", 16 },
	{  85, "long_object.ob_digit", 24 },
	{  86, "bytes_object.size", 40 },
	{  87, "bytes_object.ob_size", 16 },
	{  88, "bytes_object.ob_sval", 32 },
	{  89, "unicode_object.size", 64 },
	{  90, "unicode_object.state", 32 },
	{  91, "unicode_object.length", 16 },
	{  92, "unicode_object.asciiobject_size", 40 },
	{  93, "unicode_object.compactunicodeobject_size", 56 },
	{  94, "gc.size", 176 },
	{  95, "gc.collecting", 112 },
	{  96, "gc.frame", 120 },
	{  97, "gc.generation_stats_size", 1120 },
	{  98, "gc.generation_stats", 104 },
	{  99, "gen_object.size", 160 },
	{ 100, "gen_object.gi_name", 24 },
	{ 101, "gen_object.gi_iframe", 72 },
	{ 102, "gen_object.gi_frame_state", 67 },
	{ 103, "llist_node.next", 0 },
	{ 104, "llist_node.prev", 8 },
	{ 105, "debugger_support.eval_breaker", 24 },
	{ 106, "debugger_support.remote_debugger_support", 344 },
	{ 107, "debugger_support.remote_debugging_enabled", 8028 },
	{ 108, "debugger_support.debugger_pending_call", 0 },
	{ 109, "debugger_support.debugger_script_path", 4 },
	{ 110, "debugger_support.debugger_script_path_size", 512 },
};
#endif
#if PYV == 0x030f && FT == 1
static const struct real_word real_words[] = {
	{   1, "version", 0x30f02f0 },
	{   2, "free_threaded", 1 },
	{   3, "runtime_state.size", 409296 },
	{   4, "runtime_state.finalizing", 912 },
	{   5, "runtime_state.interpreters_head", 936 },
	{   6, "interpreter_state.size", 250328 },
	{   7, "interpreter_state.id", 7272 },
	{   8, "interpreter_state.next", 7264 },
	{   9, "interpreter_state.threads_head", 7336 },
	{  10, "interpreter_state.threads_main", 7352 },
	{  11, "interpreter_state.gc", 7400 },
	{  12, "interpreter_state.imports_modules", 7592 },
	{  13, "interpreter_state.sysdict", 7576 },
	{  14, "interpreter_state.builtins", 7584 },
	{  15, "interpreter_state.ceval_gil", 16 },
	{  16, "interpreter_state.gil_runtime_state", 7736 },
	{  17, "interpreter_state.gil_runtime_state_enabled", 0 },
	{  18, "interpreter_state.gil_runtime_state_locked", 7760 },
	{  19, "interpreter_state.gil_runtime_state_holder", 7752 },
	{  20, "interpreter_state.code_object_generation", 7952 },
	{  21, "interpreter_state.tlbc_generation", 17252 },
	{  22, "thread_state.size", 888 },
	{  23, "thread_state.prev", 0 },
	{  24, "thread_state.next", 8 },
	{  25, "thread_state.interp", 16 },
	{  26, "thread_state.current_frame", 72 },
	{  27, "thread_state.base_frame", 80 },
	{  28, "thread_state.last_profiled_frame", 88 },
	{  29, "thread_state.last_profiled_frame_seq", 96 },
	{  30, "thread_state.thread_id", 176 },
	{  31, "thread_state.native_thread_id", 184 },
	{  32, "thread_state.datastack_chunk", 256 },
	{  33, "thread_state.status", 32 },
	{  34, "thread_state.holds_gil", 36 },
	{  35, "thread_state.gil_requested", 40 },
	{  36, "thread_state.current_exception", 136 },
	{  37, "thread_state.exc_state", 288 },
	{  38, "err_stackitem.exc_value", 0 },
	{  39, "interpreter_frame.size", 88 },
	{  40, "interpreter_frame.previous", 8 },
	{  41, "interpreter_frame.executable", 0 },
	{  42, "interpreter_frame.instr_ptr", 56 },
	{  43, "interpreter_frame.localsplus", 80 },
	{  44, "interpreter_frame.owner", 78 },
	{  45, "interpreter_frame.stackpointer", 64 },
	{  46, "interpreter_frame.tlbc_index", 72 },
	{  47, "code_object.size", 240 },
	{  48, "code_object.filename", 128 },
	{  49, "code_object.name", 136 },
	{  50, "code_object.qualname", 144 },
	{  51, "code_object.linetable", 152 },
	{  52, "code_object.firstlineno", 84 },
	{  53, "code_object.argcount", 68 },
	{  54, "code_object.localsplusnames", 112 },
	{  55, "code_object.localspluskinds", 120 },
	{  56, "code_object.co_code_adaptive", 232 },
	{  57, "code_object.co_tlbc", 224 },
	{  58, "pyobject.size", 32 },
	{  59, "pyobject.ob_type", 24 },
	{  60, "type_object.size", 440 },
	{  61, "type_object.tp_name", 40 },
	{  62, "type_object.tp_repr", 104 },
	{  63, "type_object.tp_flags", 184 },
	{  64, "type_object.tp_basicsize", 48 },
	{  65, "type_object.tp_dictoffset", 304 },
	{  66, "heap_type_object.size", 968 },
	{  67, "heap_type_object.ht_cached_keys", 904 },
	{  68, "tuple_object.size", 56 },
	{  69, "tuple_object.ob_item", 48 },
	{  70, "tuple_object.ob_size", 32 },
	{  71, "list_object.size", 56 },
	{  72, "list_object.ob_item", 40 },
	{  73, "list_object.ob_size", 32 },
	{  74, "set_object.size", 216 },
	{  75, "set_object.used", 40 },
	{  76, "set_object.table", 56 },
	{  77, "set_object.mask", 48 },
	{  78, "dict_object.size", 64 },
	{  79, "dict_object.ma_keys", 48 },
	{  80, "dict_object.ma_values", 56 },
	{  81, "float_object.size", 40 },
	{  82, "float_object.ob_fval", 32 },
	{  83, "long_object.size", 48 },
	{  84, "long_object.lv_tag", 32 },
	{  85, "long_object.ob_digit", 40 },
	{  86, "bytes_object.size", 56 },
	{  87, "bytes_object.ob_size", 32 },
	{  88, "bytes_object.ob_sval", 48 },
	{  89, "unicode_object.size", 80 },
	{  90, "unicode_object.state", 48 },
	{  91, "unicode_object.length", 32 },
	{  92, "unicode_object.asciiobject_size", 56 },
	{  93, "unicode_object.compactunicodeobject_size", 72 },
	{  94, "gc.size", 176 },
	{  95, "gc.collecting", 112 },
	{  96, "gc.frame", 120 },
	{  97, "gc.generation_stats_size", 224 },
	{  98, "gc.generation_stats", 104 },
	{  99, "gen_object.size", 176 },
	{ 100, "gen_object.gi_name", 40 },
	{ 101, "gen_object.gi_iframe", 88 },
	{ 102, "gen_object.gi_frame_state", 83 },
	{ 103, "llist_node.next", 0 },
	{ 104, "llist_node.prev", 8 },
	{ 105, "debugger_support.eval_breaker", 24 },
	{ 106, "debugger_support.remote_debugger_support", 344 },
	{ 107, "debugger_support.remote_debugging_enabled", 8036 },
	{ 108, "debugger_support.debugger_pending_call", 0 },
	{ 109, "debugger_support.debugger_script_path", 4 },
	{ 110, "debugger_support.debugger_script_path_size", 512 },
};
#endif

static int check_table(void)
{
	const uint64_t *w = (const uint64_t *)&_PyRuntime.debug_offsets;
	size_t i, n = sizeof(real_words) / sizeof(real_words[0]);
	int bad = 0;

	if (PATCH)
		return 0; /* a made-up release: no real table to match */

	if (n + 1 != sizeof(struct fdebug_offsets) / 8) {
		fprintf(stderr, "fake_cpython: %zu real words for a %zu-word table\n", n,
			sizeof(struct fdebug_offsets) / 8);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (w[real_words[i].word] != real_words[i].value) {
			fprintf(stderr, "fake_cpython: word %d %s = %llu, real %llu\n",
				real_words[i].word, real_words[i].field,
				(unsigned long long)w[real_words[i].word],
				(unsigned long long)real_words[i].value);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* ---- objects laid out at run time ------------------------------------ */
static struct ftype type_type, code_type, str_type, bytes_type, tuple_type, none_type,
	int_type, dict_type, module_type;
static struct fobj none_struct;

static void *zalloc(size_t n)
{
	void *p = aligned_alloc(16, (n + 15) & ~(size_t)15);

	if (!p) {
		perror("fake_cpython: aligned_alloc");
		exit(3);
	}
	memset(p, 0, (n + 15) & ~(size_t)15);
	return p;
}

/* GC objects of the default build have a 16-byte PyGC_Head before them. */
static void *gc_alloc(size_t n)
{
	char *p = zalloc(n + (FT ? 0 : 16));

	return p + (FT ? 0 : 16);
}

static void static_header(struct fobj *o, struct ftype *t)
{
#if FT
	o->ob_flags = 4; /* _Py_STATICALLY_ALLOCATED_FLAG */
	o->ob_ref_local = UINT32_MAX;
#else
	o->ob_refcnt = (uint32_t)IMMORTAL_REFCNT;
	o->ob_flags = STATIC_FLAGS;
#endif
	o->ob_type = t;
}

/* A heap object: mortal with refcnt n, or (n < 0) immortal / deferred. */
static void heap_header(struct fobj *o, struct ftype *t, int n, int gc)
{
#if FT
	o->ob_tid = n < 0 ? 0 : (uintptr_t)pthread_self();
	o->ob_ref_local = n < 0 ? 1 : (uint32_t)n;
	o->ob_gc_bits = gc ? GC_BITS_TRACKED : 0;
	if (n < 0) {
		o->ob_gc_bits |= GC_BITS_DEFERRED;
		o->ob_ref_shared = 0;
	}
#else
	(void)gc;
	o->ob_refcnt = n < 0 ? (uint32_t)IMMORTAL_REFCNT : (uint32_t)n;
#endif
	o->ob_type = t;
}

static void init_type(struct ftype *t, const char *name, int64_t basic, int64_t item,
		      unsigned long flags)
{
	static_header(&t->ob_base.ob_base, &type_type);
	t->tp_name = name;
	t->tp_basicsize = basic;
	t->tp_itemsize = item;
	t->tp_flags = flags | (1UL << 12) /* READY */ | (1UL << 8) /* IMMUTABLETYPE */ |
		      (1UL << 18) | (1UL << 19); /* HAVE_/VALID_VERSION_TAG */
}

static struct fobj *mkstr(const char *s)
{
	size_t n = strlen(s);
	struct fascii *a = zalloc(sizeof(*a) + n + 1);

	heap_header(&a->ob_base, &str_type, 1, 0);
	a->length = (int64_t)n;
	a->hash = -1;
	a->state = STR_STATE;
	memcpy((char *)(a + 1), s, n + 1);
	return &a->ob_base;
}

static struct fobj *mkbytes(const void *b, size_t n)
{
	struct fbytes *o = zalloc(offsetof(struct fbytes, ob_sval) + n + 1);

	heap_header(&o->ob_base.ob_base, &bytes_type, 1, 0);
	o->ob_base.ob_size = (int64_t)n;
	o->ob_shash = -1;
	memcpy(o->ob_sval, b, n);
	return &o->ob_base.ob_base;
}

static struct fobj *mktuple(struct fobj *const *items, int n)
{
	struct ftuple *t = gc_alloc(offsetof(struct ftuple, ob_item) + 8 * (size_t)(n ? n : 1));
	int i;

	heap_header(&t->ob_base.ob_base, &tuple_type, 1, 1);
	t->ob_base.ob_size = n;
	t->ob_hash = -1;
	for (i = 0; i < n; i++)
		t->ob_item[i] = items[i];
	return &t->ob_base.ob_base;
}

/* ---- code objects: bytecode and location table ------------------------ */
/* One instruction of a fake function.  line -1: no location (code 15);
 * col -1: no columns (code 13).  jump: index of the target instruction. */
struct insn {
	int op, arg, line, col, ecol, jump;
};
#define I(op, arg, line, col, ecol) { OP_##op, arg, line, col, ecol, -1 }
#define J(op, target, line, col, ecol) { OP_##op, 0, line, col, ecol, target }

struct fdesc {
	const char *file, *name, *qualname;
	int firstlineno, argcount, flags, stacksize;
	const char *locals[4];
	int nlocals;
	const struct insn *code;
	int ncode;
	int at;          /* the instruction the frame is at */
	int stackdepth;  /* stack items above the locals there */
	int tagged;      /* immortal (default) / deferred (FT): tagged refs */
};

struct built {
	struct fcode *co;
	int nunits;
	int unit_of[64];  /* first code unit of each instruction */
	int line;         /* line of the frame's instruction */
	const struct fdesc *d;
};

static int put_varint(uint8_t *p, unsigned v)
{
	int n = 1;

	while (v >= 64) {
		*p++ = (uint8_t)(64 | (v & 63));
		v >>= 6;
		n++;
	}
	*p = (uint8_t)v;
	return n;
}

static int put_svarint(uint8_t *p, int v)
{
	return put_varint(p, v < 0 ? ((0u - (unsigned)v) << 1) | 1 : (unsigned)v << 1);
}

/* Entries for len code units at (line, col, ecol), after prev_line. */
static int put_location(uint8_t *p, int len, int line, int col, int ecol, int *prev_line)
{
	int n = 0;

	while (len > 0) {
		int k = len > 8 ? 8 : len, d = line - *prev_line;

		if (line < 0) {
			p[n++] = (uint8_t)(0x80 | 15 << 3 | (k - 1));
		} else if (col < 0) {
			p[n++] = (uint8_t)(0x80 | 13 << 3 | (k - 1));
			n += put_svarint(p + n, d);
		} else if (d == 0 && col < 80 && ecol >= col && ecol - col < 16) {
			p[n++] = (uint8_t)(0x80 | (col / 8) << 3 | (k - 1));
			p[n++] = (uint8_t)((col % 8) << 4 | (ecol - col));
		} else if (d >= 0 && d <= 2 && col < 128 && ecol < 128) {
			/* (column bytes must not look like an entry's start) */
			p[n++] = (uint8_t)(0x80 | (10 + d) << 3 | (k - 1));
			p[n++] = (uint8_t)col;
			p[n++] = (uint8_t)ecol;
		} else {
			p[n++] = (uint8_t)(0x80 | 14 << 3 | (k - 1));
			n += put_svarint(p + n, d);
			n += put_varint(p + n, 0);
			n += put_varint(p + n, (unsigned)col + 1);
			n += put_varint(p + n, (unsigned)ecol + 1);
		}
		if (line >= 0)
			*prev_line = line;
		len -= k;
	}
	return n;
}

static void build_code(struct built *b, const struct fdesc *d, int version)
{
	uint16_t units[512];
	uint8_t table[1024], kinds[4];
	struct fobj *names[4];
	int i, u = 0, tn = 0, prev_line = d->firstlineno;
	struct fcode *co;

	for (i = 0; i < d->ncode; i++) {
		b->unit_of[i] = u;
		u += 1 + ncaches(d->code[i].op);
	}
	b->nunits = u;
	for (i = 0; i < d->ncode; i++) {
		const struct insn *in = &d->code[i];
		int at = b->unit_of[i], after = at + 1 + ncaches(in->op), arg = in->arg, k;

		if (in->jump >= 0)
			arg = in->jump < i ? after - b->unit_of[in->jump]
					   : b->unit_of[in->jump] - after;
		units[at] = (uint16_t)(in->op | (arg & 0xff) << 8);
		for (k = at + 1; k < after; k++)
			units[k] = OP_CACHE;
		tn += put_location(table + tn, after - at, in->line, in->col, in->ecol, &prev_line);
	}
	b->line = d->code[d->at].line;
	b->d = d;

	co = gc_alloc(sizeof(struct fcode) + 2 * (size_t)u);
	b->co = co;
	heap_header(&co->ob_base.ob_base, &code_type, d->tagged ? -1 : 3, 1);
	co->ob_base.ob_size = u;
	co->co_consts = mktuple(&(struct fobj *){ &none_struct }, 1);
	co->co_names = mktuple(NULL, 0);
	co->co_exceptiontable = mkbytes("", 0);
	co->co_flags = d->flags;
	co->co_argcount = d->argcount;
	co->co_stacksize = d->stacksize;
	co->co_firstlineno = d->firstlineno;
	co->co_nlocalsplus = d->nlocals;
	co->co_nlocals = d->nlocals;
	co->co_framesize = d->nlocals + d->stacksize + FRAME_SPECIALS_SIZE;
	co->co_version = (uint32_t)version;
	for (i = 0; i < d->nlocals; i++) {
		names[i] = mkstr(d->locals[i]);
		kinds[i] = (uint8_t)(0x20 | (i < d->argcount ? 0x02 | 0x04 : 0)); /* LOCAL|ARG */
	}
	co->co_localsplusnames = mktuple(names, d->nlocals);
	co->co_localspluskinds = mkbytes(kinds, (size_t)d->nlocals);
	co->co_filename = mkstr(d->file);
	co->co_name = mkstr(d->name);
	co->co_qualname = mkstr(d->qualname);
	co->co_linetable = mkbytes(table, (size_t)tn);
	co->_co_unique_id = FT ? version : -1;
	co->_co_firsttraceable = 0; /* the RESUME: no cells, no generator prologue */
	memcpy(co->co_code_adaptive, units, 2 * (size_t)u);
#if FT
	co->co_tlbc = zalloc(sizeof(struct fcodearray) + sizeof(char *));
	co->co_tlbc->size = 1;
	co->co_tlbc->entries[0] = co->co_code_adaptive;
#endif
}

#if FT
/* The worker's own copy of a code's bytecode (tlbc index 1), with the
 * frame's instruction specialized to op_at. */
static void give_tlbc(struct built *b, int op_at)
{
	struct fcodearray *a = zalloc(sizeof(*a) + 2 * sizeof(char *));
	char *copy = zalloc(2 * (size_t)b->nunits + 64);
	uint16_t *units;

	memcpy(copy, b->co->co_code_adaptive, 2 * (size_t)b->nunits);
	units = (uint16_t *)copy;
	if (op_at >= 0)
		units[b->unit_of[b->d->at]] =
			(uint16_t)(op_at | (units[b->unit_of[b->d->at]] & 0xff00));
	a->size = 2;
	a->entries[0] = b->co->co_code_adaptive;
	a->entries[1] = copy;
	b->co->co_tlbc = a;
}
#endif

/* ---- the fake program ------------------------------------------------ */
/* app.py */
static const struct insn module_code[] = {
	I(RESUME, 0, 0, -1, -1),
	I(NOP, 0, 1, 0, 16),
	I(LOAD_CONST, 0, 10, 0, 12),
	I(STORE_NAME, 0, 10, 4, 8),
	I(LOAD_NAME, 0, 30, 0, 4),
	I(PUSH_NULL, 0, 30, 0, 4),
	I(CALL, 0, 30, 0, 6),                  /* [6] frame */
	I(POP_TOP, 0, 30, 0, 6),
	I(LOAD_CONST, 0, -1, 0, 0),
	I(RETURN_VALUE, 0, -1, 0, 0),
};
static const struct insn main_code[] = {
	I(RESUME, 0, 10, -1, -1),
	I(LOAD_GLOBAL, 1, 11, 8, 20),
	I(CALL, 0, 11, 8, 22),
	I(STORE_FAST, 0, 11, 4, 5),
	I(LOAD_SMALL_INT, 0, 12, 12, 13),
	I(STORE_FAST, 1, 12, 4, 9),
	I(LOAD_GLOBAL, 2, 13, 13, 19),
	I(GET_ITER, 0, 13, 13, 19),
	J(FOR_ITER, 22, 13, 13, 19),           /* [8] */
	I(STORE_FAST, 2, 13, 8, 9),
	I(LOAD_FAST_BORROW, 1, 14, 8, 13),
	I(LOAD_GLOBAL, 5, 14, 17, 20),
	I(LOAD_GLOBAL, 7, 14, 21, 24),
	I(LOAD_FAST_BORROW, 2, 14, 25, 26),
	I(LOAD_ATTR, 8, 14, 25, 34),
	I(LOAD_GLOBAL, 10, 14, 36, 40),
	I(CALL, 2, 14, 21, 41),
	I(CALL, 1, 14, 17, 42),                /* [17] frame: sum(map(...)) */
	I(BINARY_OP, NB_INPLACE_ADD, 14, 8, 42),
	I(STORE_FAST, 1, 14, 8, 13),
	J(JUMP_BACKWARD, 8, 13, 4, 19),
	I(NOP, 0, 13, 4, 19),
	I(LOAD_FAST_BORROW, 1, 15, 11, 16),    /* [22] */
	I(RETURN_VALUE, 0, 15, 4, 16),
};
/* lib/model.py */
static const struct insn compute_code[] = {
	I(RESUME, 0, 8, -1, -1),
	I(LOAD_SMALL_INT, 0, 9, 14, 15),
	I(STORE_FAST, 2, 9, 8, 11),
	I(LOAD_GLOBAL, 1, 10, 17, 22),
	I(LOAD_FAST_BORROW, 1, 10, 23, 24),
	I(CALL, 1, 10, 17, 25),
	I(GET_ITER, 0, 10, 17, 25),
	J(FOR_ITER, 16, 10, 17, 25),           /* [7] */
	I(STORE_FAST, 3, 10, 12, 13),
	I(LOAD_GLOBAL, 3, 11, 18, 26),
	I(LOAD_FAST_BORROW, 2, 11, 27, 30),
	I(LOAD_FAST_BORROW, 3, 11, 32, 33),
	I(CALL, 2, 11, 18, 34),                /* [12] frame: hot_loop(acc, i) */
	I(STORE_FAST, 2, 11, 12, 15),
	J(JUMP_BACKWARD, 7, 10, 8, 25),
	I(NOP, 0, 10, 8, 25),
	I(LOAD_FAST_BORROW, 2, 12, 15, 18),    /* [16] */
	I(RETURN_VALUE, 0, 12, 8, 18),
};
static const struct insn hot_code[] = {
	I(RESUME, 0, 20, -1, -1),
	I(NOP, 0, 21, 4, 14),
	I(LOAD_FAST_BORROW, 0, 22, 14, 17),    /* [2] loop */
	I(LOAD_SMALL_INT, 31, 22, 20, 22),
	I(BINARY_OP, NB_MULTIPLY, 22, 14, 22),
	I(LOAD_FAST_BORROW, 1, 22, 25, 26),
	I(BINARY_OP, NB_ADD, 22, 14, 26),      /* [6] frame */
	I(STORE_FAST, 0, 22, 8, 11),
	I(LOAD_FAST_BORROW, 0, 23, 8, 11),
	I(LOAD_CONST, 1, 23, 15, 21),
	I(BINARY_OP, NB_INPLACE_AND, 23, 8, 21),
	I(STORE_FAST, 0, 23, 8, 11),
	J(JUMP_BACKWARD, 2, 21, 10, 14),
	I(LOAD_FAST_BORROW, 0, 24, 11, 14),
	I(RETURN_VALUE, 0, 24, 4, 14),
};
/* worker.py */
static const struct insn run_code[] = {
	I(RESUME, 0, 6, -1, -1),
	I(LOAD_FAST_BORROW, 0, 7, 18, 22),     /* [1] loop */
	I(LOAD_ATTR, 0, 7, 18, 27),
	I(TO_BOOL, 0, 7, 14, 27),
	J(POP_JUMP_IF_TRUE, 10, 7, 14, 27),
	I(LOAD_FAST_BORROW, 0, 8, 12, 16),
	I(LOAD_ATTR, 3, 8, 12, 23),
	I(CALL, 0, 8, 12, 25),                 /* [7] frame: self.crunch() */
	I(POP_TOP, 0, 8, 12, 25),
	J(JUMP_BACKWARD, 1, 7, 8, 27),
	I(LOAD_CONST, 0, 7, 8, 27),            /* [10] */
	I(RETURN_VALUE, 0, 7, 8, 27),
};
static const struct insn crunch_code[] = {
	I(RESUME, 0, 10, -1, -1),
	I(LOAD_CONST, 1, 11, 16, 200),
	I(STORE_FAST, 1, 11, 8, 13),
	I(LOAD_GLOBAL, 1, 12, 15, 19),
	I(LOAD_FAST_BORROW, 1, 12, 20, 25),
	I(CALL, 1, 12, 15, 26),                /* [5] frame: spin(table) */
	I(RETURN_VALUE, 0, 12, 8, 26),
};
static const struct insn spin_code[] = {
	I(RESUME, 0, 40, -1, -1),
	I(LOAD_SMALL_INT, 0, 41, 8, 9),
	I(STORE_FAST, 1, 41, 4, 5),
	I(NOP, 0, 42, 4, 14),                  /* [3] loop */
	I(LOAD_FAST_BORROW, 1, 43, 8, 9),
	I(LOAD_FAST_BORROW, 0, 43, 13, 18),
	I(LOAD_FAST_BORROW, 1, 43, 19, 20),
	I(LOAD_SMALL_INT, 7, 43, 23, 24),
	I(BINARY_OP, NB_AND, 43, 19, 24),
	I(BINARY_OP, NB_SUBSCR, 43, 13, 25),
	I(BINARY_OP, NB_INPLACE_ADD, 43, 8, 25), /* [10] frame */
	I(STORE_FAST, 1, 43, 8, 9),
	J(JUMP_BACKWARD, 3, 42, 10, 14),
	I(LOAD_CONST, 0, -1, 0, 0),
	I(RETURN_VALUE, 0, -1, 0, 0),
};
#define N(a) (int)(sizeof(a) / sizeof(a[0]))

/* tagged: default build, immortal code objects (<module>, spin); FT,
 * deferred-refcount code objects (all but hot_loop and Worker.run). */
static const struct fdesc descs[] = {
	{ "app.py", "<module>", "<module>", 1, 0, 0, 3, { 0 }, 0, module_code, N(module_code), 6, 2, 1 },
	{ "app.py", "main", "main", 10, 0, 3, 6, { "w", "total", "m" }, 3, main_code, N(main_code), 17, 4, FT },
	{ "lib/model.py", "compute", "Model.compute", 8, 2, 3, 5, { "self", "x", "acc", "i" }, 4,
	  compute_code, N(compute_code), 12, 4, FT },
	{ "lib/model.py", "hot_loop", "hot_loop", 20, 2, 3, 3, { "acc", "i" }, 2, hot_code, N(hot_code), 6, 2, 0 },
	{ "worker.py", "run", "Worker.run", 6, 1, 3, 3, { "self" }, 1, run_code, N(run_code), 7, 2, 0 },
	/* a call of 2038 arguments on line 11: a frame too big for what is left of the first chunk */
	{ "worker.py", "crunch", "Worker.crunch", 10, 1, 3, 2040, { "self", "table" }, 2,
	  crunch_code, N(crunch_code), 5, 3, FT },
	{ "worker.py", "spin", "spin", 40, 1, 3, 5, { "table", "n" }, 2, spin_code, N(spin_code), 10, 2, 1 },
};
enum { C_MODULE, C_MAIN, C_COMPUTE, C_HOT, C_RUN, C_CRUNCH, C_SPIN, NCODE };
static struct built codes[NCODE];

static const uint16_t trampoline[5] = {
	OP_NOP, OP_INTERPRETER_EXIT, OP_NOP, OP_INTERPRETER_EXIT,
	OP_RESUME | (0x2 | 0x0) << 8, /* RESUME_OPARG_DEPTH1_MASK | RESUME_AT_FUNC_START */
};

#define INTERP (&_PyRuntime._main_interpreter)
static struct fts_impl *main_ts, *worker_ts;
static pthread_barrier_t built_barrier;
static volatile int stop;
static char lines[2][1024];

static void *chunk_alloc(size_t size, struct fchunk *previous)
{
	struct fchunk *c = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);

	if (c == MAP_FAILED) {
		perror("fake_cpython: mmap");
		exit(3);
	}
	c->previous = previous;
	c->size = size;
	c->top = 0;
	return c;
}

/* _PyThreadState_PushFrame: room on the data stack for a frame. */
static struct fframe *push_frame(struct fts *ts, int size)
{
	uintptr_t *res;

	if (ts->datastack_top && size < ts->datastack_limit - ts->datastack_top) {
		res = ts->datastack_top;
		ts->datastack_top += size;
		return (struct fframe *)res;
	}
	int alloc = DATA_STACK_CHUNK_SIZE;
	while (alloc < (int)sizeof(void *) * (size + MINIMUM_OVERHEAD))
		alloc *= 2;
	struct fchunk *c = chunk_alloc((size_t)alloc, ts->datastack_chunk);
	if (ts->datastack_chunk)
		ts->datastack_chunk->top =
			(size_t)(ts->datastack_top - &ts->datastack_chunk->data[0]);
	ts->datastack_chunk = c;
	ts->datastack_limit = (uintptr_t *)((char *)c + alloc);
	res = &c->data[c->previous == NULL];
	ts->datastack_top = res + size;
	return (struct fframe *)res;
}

/* What each code's frame holds in its locals (localsplus, as
 * _PyStackRefs): NULL (unbound), None (immortal: tagged), and strings,
 * bytes and tuples made at run time, some mortal (a plain pointer), some
 * deferred (tagged, as the interpreter tags an immortal or deferred
 * object's reference).  dump --locals must show exactly these
 * (test_fake_cpython.py, LOCALS). */
static uintptr_t local_values[NCODE][4];

static uintptr_t mortal(struct fobj *o)
{
	return (uintptr_t)o;
}

static uintptr_t tagged(struct fobj *o)
{
	return (uintptr_t)o | TAG_REFCNT;
}

static void make_locals(void)
{
	struct fobj *ab[2] = { mkstr("a"), mkstr("b") };
	uintptr_t none = tagged(&none_struct);

	/* main: w, total, m */
	local_values[C_MAIN][0] = mortal(mkstr("widget"));
	local_values[C_MAIN][1] = none;
	local_values[C_MAIN][2] = STACKREF_NULL;
	/* Model.compute(self, x): acc, i */
	local_values[C_COMPUTE][0] = none;
	local_values[C_COMPUTE][1] = tagged(mkbytes("xy", 2));
	local_values[C_COMPUTE][2] = mortal(mktuple(ab, 2));
	local_values[C_COMPUTE][3] = tagged(mkstr("i0"));
	/* hot_loop(acc, i) */
	local_values[C_HOT][0] = mortal(mkstr("acc"));
	local_values[C_HOT][1] = STACKREF_NULL;
	/* Worker.run(self) */
	local_values[C_RUN][0] = none;
	/* Worker.crunch(self): table */
	local_values[C_CRUNCH][0] = none;
	local_values[C_CRUNCH][1] = tagged(mktuple(NULL, 0));
	/* spin(table): n */
	local_values[C_SPIN][0] = mortal(mktuple(ab, 1));
	local_values[C_SPIN][1] = tagged(mkbytes("", 0));
}

/* ---- the threading module, for thread names -------------------------- */
/* sys.modules = {"threading": <module>}, whose dict holds _active, {ident:
 * Thread}: what a sampler reads threading's names from.  A Thread keeps
 * its attributes as inline values (a class with Py_TPFLAGS_INLINE_VALUES
 * and MANAGED_DICT, its instances' keys shared in ht_cached_keys, no dict
 * made: the managed dict pointer, 3 words before the object, is NULL).
 * Each thread's name is its OS name, as 3.14's threading sets the OS name
 * from the Python one.  Dict indices list the entries in order; no key's
 * hash is computed (a reader walks the entries).  Default builds only:
 * free-threaded ones are refused by pyspyc before any object is read. */
#if !FT
static struct fobj *mkint(uint64_t v)
{
	struct flong *o = zalloc(offsetof(struct flong, ob_digit) + 3 * 4);
	uint32_t *digit = (uint32_t *)((char *)o + offsetof(struct flong, ob_digit));
	uintptr_t n = 0;

	heap_header(&o->ob_base, &int_type, 1, 0);
	do {
		digit[n++] = (uint32_t)(v & ((1u << 30) - 1));
		v >>= 30;
	} while (v);
	o->lv_tag = n << 3; /* positive: sign bits 0 */
	return &o->ob_base;
}

/* A keys object of kind (0 general, 1 unicode, 2 split) holding n <= 5
 * entries: keys k[], values v[] (none for split keys). */
static struct fdictkeys *mkkeys(int kind, struct fobj *const *k, struct fobj *const *v, int n)
{
	size_t esize = kind ? 16 : 24;
	struct fdictkeys *dk = zalloc(sizeof(*dk) + 5 * esize);
	uint64_t *e = (uint64_t *)(dk + 1);
	int i;

	dk->dk_refcnt = 1;
	dk->dk_log2_size = 3;
	dk->dk_log2_index_bytes = 3;
	dk->dk_kind = (uint8_t)kind;
	dk->dk_usable = 5 - n;
	dk->dk_nentries = n;
	memset(dk->dk_indices, 0xff, sizeof(dk->dk_indices)); /* DKIX_EMPTY */
	for (i = 0; i < n; i++, e += esize / 8) {
		dk->dk_indices[i] = (int8_t)i;
		e[kind ? 0 : 1] = (uint64_t)k[i];
		e[kind ? 1 : 2] = kind == 2 ? 0 : (uint64_t)v[i];
	}
	return dk;
}

static struct fobj *mkdict(struct fdictkeys *dk)
{
	struct fdict *d = gc_alloc(sizeof(*d));

	heap_header(&d->ob_base, &dict_type, 1, 1);
	d->ma_used = dk->dk_nentries;
	d->ma_keys = dk;
	return &d->ob_base;
}

/* An instance of cls with inline values v[0..n) for its shared keys:
 * before it the managed weakref and dict pointers (NULL) and PyGC_Head. */
static struct fobj *mkinstance(struct fheaptype *cls, struct fobj *const *v, int n)
{
	char *p = zalloc(16 + 16 + sizeof(struct fobj) + 8 + 8 * (size_t)n + (size_t)n);
	struct fobj *o = (struct fobj *)(p + 32);
	struct fdictvalues *dv = (struct fdictvalues *)(o + 1);
	uint8_t *order = (uint8_t *)&dv->values[n];
	int i;

	heap_header(o, &cls->ht_type, 1, 1);
	dv->capacity = (uint8_t)n;
	dv->size = (uint8_t)n;
	dv->embedded = 1;
	dv->valid = 1;
	for (i = 0; i < n; i++) {
		dv->values[i] = v[i];
		order[i] = (uint8_t)i;
	}
	return o;
}

static void make_threading(pthread_t worker)
{
	static struct fheaptype thread_cls;
	struct fobj *attrs[4] = { mkstr("_target"), mkstr("_name"), mkstr("_ident"),
				  mkstr("_daemonic") };
	struct fobj *mv[2] = { 0 }, *tv[2], *names[2], *mod_keys[2], *mod_vals[2];
	struct fmodule *mod = gc_alloc(sizeof(*mod));
	pthread_t ids[2] = { pthread_self(), worker };
	int i;

	init_type(&thread_cls.ht_type, "Thread", (int64_t)sizeof(struct fobj), 0,
		  (1UL << 9) | (1UL << 10) | (1UL << 14) | (1UL << 4) | (1UL << 2));
	thread_cls.ht_type.tp_flags &= ~(1UL << 8); /* a class: not IMMUTABLETYPE */
	thread_cls.ht_type.tp_dictoffset = -1;
	thread_cls.ht_cached_keys = mkkeys(2, attrs, NULL, 4);
	names[0] = mkstr("fake-main");
	names[1] = mkstr("fake-worker");
	for (i = 0; i < 2; i++) {
		struct fobj *v[4] = { &none_struct, names[i], mkint((uint64_t)ids[i]), &none_struct };

		mv[i] = mkint((uint64_t)ids[i]);
		tv[i] = mkinstance(&thread_cls, v, 4);
	}
	mod_keys[0] = mkstr("__name__");
	mod_keys[1] = mkstr("_active");
	mod_vals[0] = mkstr("threading");
	mod_vals[1] = mkdict(mkkeys(0, mv, tv, 2));
	heap_header(&mod->ob_base, &module_type, 1, 1);
	mod->md_dict = mkdict(mkkeys(1, mod_keys, mod_vals, 2));
	mod_keys[0] = mkstr("threading");
	mod_vals[0] = &mod->ob_base;
	INTERP->imports_modules = mkdict(mkkeys(1, mod_keys, mod_vals, 1));
}
#endif

/* A Python frame of code k, called from previous, at its instruction. */
static struct fframe *python_frame(struct fts_impl *ti, int k, struct fframe *previous, int tlbc)
{
	struct built *b = &codes[k];
	struct fcode *co = b->co;
	struct fframe *f = push_frame(&ti->base, co->co_framesize);
	char *bytecode = co->co_code_adaptive;
	int i;

#if FT
	if (tlbc) {
		bytecode = co->co_tlbc->entries[tlbc];
		f->tlbc_index = tlbc;
	}
#else
	(void)tlbc;
#endif
	f->f_executable = (uintptr_t)co | (b->d->tagged ? TAG_REFCNT : 0);
	f->previous = previous;
	f->f_funcobj = STACKREF_NULL;
	f->instr_ptr = (uint16_t *)bytecode + b->unit_of[b->d->at];
	for (i = 0; i < co->co_nlocalsplus + b->d->stackdepth; i++)
		f->localsplus[i] = i < co->co_nlocalsplus ? local_values[k][i]
							  : (uintptr_t)&none_struct | TAG_REFCNT;
	f->stackpointer = &f->localsplus[co->co_nlocalsplus + b->d->stackdepth];
	/* a caller stopped at a CALL returns past it and its caches */
	if (((uint16_t *)bytecode)[b->unit_of[b->d->at]] % 256 == OP_CALL)
		f->return_offset = (uint16_t)(1 + ncaches(OP_CALL));
	f->owner = OWNED_BY_THREAD;
	ti->base.py_recursion_remaining--;
	return f;
}

static void entry_frame(struct fentry *e, struct fts *ts)
{
	memset(e, 0, sizeof(*e));
	e->frame.f_executable = (uintptr_t)&none_struct | TAG_REFCNT;
	e->frame.instr_ptr = (uint16_t *)trampoline + 1;
	e->frame.stackpointer = e->stack;
	e->frame.owner = OWNED_BY_INTERPRETER;
	e->frame.previous = ts->current_frame;
	e->frame.localsplus[0] = STACKREF_NULL;
}

static void init_tstate(struct fts_impl *ti, uint64_t id, int whence)
{
	struct fts *ts = &ti->base;

	ts->interp = INTERP;
	ts->id = id;
	ts->_whence = whence;
	ts->py_recursion_limit = 1000;
	ts->py_recursion_remaining = 1000;
	ts->exc_info = &ts->exc_state;
#if V15
	/* the embedded base frame, where every chain ends */
	ti->base_frame.f_executable = (uintptr_t)&none_struct | TAG_REFCNT;
	ti->base_frame.f_funcobj = STACKREF_NULL;
	ti->base_frame.stackpointer = &ti->base_frame.localsplus[0];
	ti->base_frame.localsplus[0] = STACKREF_NULL;
	ti->base_frame.owner = OWNED_BY_INTERPRETER;
	ts->base_frame = &ti->base_frame;
	ts->current_frame = &ti->base_frame;
#endif
}

/* The thread is running: bound to its OS thread, attached. */
static void bind_tstate(struct fts *ts, int holds_gil)
{
	ts->thread_id = (unsigned long)pthread_self();
	ts->native_thread_id = (unsigned long)syscall(SYS_gettid);
	ts->_status = ST_INITIALIZED | ST_BOUND | ST_BOUND_GILSTATE;
	if (FT || holds_gil) {
		ts->_status |= ST_ACTIVE;
		ts->state = THREAD_ATTACHED;
	}
	ts->holds_gil = holds_gil;
#if V15
	ts->gil_requested = !FT && !holds_gil;
#endif
}

static void put_line(int t, const char *name, const int *ks, int n)
{
	char *p = lines[t];
	int i;

	p += sprintf(p, "thread %ld \"%s\"", syscall(SYS_gettid), name);
	for (i = 0; i < n; i++)
		p += sprintf(p, ";%s (%s:%d)", codes[ks[i]].d->qualname, codes[ks[i]].d->file,
			     codes[ks[i]].line);
	sprintf(p, " 1");
}

static unsigned long spin_until_stop(void)
{
	unsigned long n = 0;

	while (!stop)
		n = n * 31 + 7;
	return n;
}

static void *worker(void *arg)
{
	struct fts_impl *ti = worker_ts;
	struct fts *ts = &ti->base;
	struct fentry e0;
	struct fframe *f;
	static const int ks[] = { C_RUN, C_CRUNCH, C_SPIN };

	(void)arg;
	pthread_setname_np(pthread_self(), "fake-worker");
	bind_tstate(ts, 0); /* waits for the GIL (default build) */
	/* threading's bootstrap calls Worker.run from C */
	entry_frame(&e0, ts);
	f = python_frame(ti, C_RUN, &e0.frame, FT);
	f = python_frame(ti, C_CRUNCH, f, FT);
	f = python_frame(ti, C_SPIN, f, FT);
	ts->current_frame = f;
	put_line(1, "fake-worker", ks, 3);
	__asm__ volatile("" ::: "memory");
	pthread_barrier_wait(&built_barrier);
	spin_until_stop();
	__asm__ volatile("" : : "r"(&e0) : "memory");
	return NULL;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* main's sum(map(m.compute, data)): C calls Python again, under a second
 * entry frame deeper on the C stack. */
static __attribute__((noinline)) void main_level1(double seconds, pthread_t th)
{
	struct fts_impl *ti = main_ts;
	struct fts *ts = &ti->base;
	struct fentry e1;
	struct fframe *f;
	double end;
	unsigned long n = 0;

	entry_frame(&e1, ts);
	f = python_frame(ti, C_COMPUTE, &e1.frame, 0);
	f = python_frame(ti, C_HOT, f, 0);
	ts->current_frame = f;
	{
		static const int ks[] = { C_MODULE, C_MAIN, C_COMPUTE, C_HOT };
		put_line(0, "fake-main", ks, 4);
	}
	__asm__ volatile("" ::: "memory");
	pthread_barrier_wait(&built_barrier);
	printf("ready %d\n%s\n%s\n", (int)getpid(), lines[0], lines[1]);
	fflush(stdout);
	end = now() + seconds;
	while (now() < end) {
		int i;

		for (i = 0; i < 1000000; i++)
			n = n * 31 + 7;
	}
	stop = 1;
	pthread_join(th, NULL);
	__asm__ volatile("" : : "r"(&e1), "r"(n) : "memory");
}

static __attribute__((noinline)) void main_level0(double seconds, pthread_t th)
{
	struct fts_impl *ti = main_ts;
	struct fts *ts = &ti->base;
	struct fentry e0;
	struct fframe *f;

	/* Py_RunMain runs the module's code from C */
	entry_frame(&e0, ts);
	f = python_frame(ti, C_MODULE, &e0.frame, 0);
	f = python_frame(ti, C_MAIN, f, 0);
	ts->current_frame = f;
	main_level1(seconds, th);
	__asm__ volatile("" : : "r"(&e0) : "memory");
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 30;
	struct finterp *in = INTERP;
	pthread_t th;
	int i;

	if (check_table())
		return 3;

	/* types and None (static objects of libpython) */
	init_type(&type_type, "type", (int64_t)sizeof(struct fheaptype), 40,
		  (1UL << 31) | (1UL << 10) | (1UL << 14)); /* TYPE_SUBCLASS|BASETYPE|HAVE_GC */
	init_type(&code_type, "code", (int64_t)sizeof(struct fcode), 2, 0);
	init_type(&str_type, "str", (int64_t)sizeof(struct funicode), 0,
		  (1UL << 28) | (1UL << 10)); /* UNICODE_SUBCLASS|BASETYPE */
	init_type(&bytes_type, "bytes", (int64_t)offsetof(struct fbytes, ob_sval) + 1, 1,
		  (1UL << 27) | (1UL << 10));
	init_type(&tuple_type, "tuple", (int64_t)offsetof(struct ftuple, ob_item), 8,
		  (1UL << 26) | (1UL << 10) | (1UL << 14) | (1UL << 5)); /* |HAVE_GC|SEQUENCE */
	init_type(&none_type, "NoneType", (int64_t)sizeof(struct fobj), 0, 0);
	init_type(&int_type, "int", (int64_t)offsetof(struct flong, ob_digit), 4,
		  (1UL << 24) | (1UL << 10)); /* LONG_SUBCLASS|BASETYPE */
	init_type(&dict_type, "dict", (int64_t)sizeof(struct fdict), 0,
		  (1UL << 29) | (1UL << 10) | (1UL << 14) | (1UL << 6)); /* |HAVE_GC|MAPPING */
	init_type(&module_type, "module", (int64_t)sizeof(struct fmodule), 0,
		  (1UL << 10) | (1UL << 14));
	static_header(&none_struct, &none_type);

	for (i = 0; i < NCODE; i++)
		build_code(&codes[i], &descs[i], 100 + i);
	make_locals();
#if FT
	/* The worker specialized its copies: the frames' instructions there
	 * are not the ones in co_code_adaptive. */
	give_tlbc(&codes[C_RUN], OP_CALL_PY_EXACT_ARGS);
	give_tlbc(&codes[C_CRUNCH], OP_CALL_PY_EXACT_ARGS);
	give_tlbc(&codes[C_SPIN], OP_BINARY_OP_ADD_INT);
#endif

	/* the runtime and its main interpreter */
	_PyRuntime.interpreters_head = in;
	_PyRuntime.interpreters_main = in;
	in->id = 0;
	in->runtime = &_PyRuntime;
	in->_initialized = 1;
	in->_ready = 1;
	in->ceval_recursion_limit = 1000;
	in->ceval_gil = &in->_gil;
	in->ceval_own_gil = 1;
	in->config_remote_debug = 1;
	in->_gil.interval = 5000;
	/* the main thread's state is the one inside the interpreter */
	main_ts = &in->_initial_thread;
	init_tstate(main_ts, 1, WHENCE_INIT);
	bind_tstate(&main_ts->base, !FT || FT_GIL);
	in->threads_head = &main_ts->base;
	in->threads_main = &main_ts->base;
	in->threads_count = 1;
	in->threads_next_unique_id = 2;
#if FT
	in->_gil.enabled = FT_GIL ? 0x7fffffff : 0;
	main_ts->tlbc_index = 0;
#endif
	if (!FT || FT_GIL) {
		in->_gil.locked = 1;
		in->_gil.last_holder = &main_ts->base;
	}
	pthread_setname_np(pthread_self(), "fake-main");

	/* threading.Thread.start(): the new state goes at the head */
	worker_ts = zalloc(sizeof(struct fts_impl));
	init_tstate(worker_ts, 2, WHENCE_THREADING);
#if FT
	worker_ts->tlbc_index = 1;
#endif
	worker_ts->base.next = in->threads_head;
	in->threads_head->prev = &worker_ts->base;
	in->threads_head = &worker_ts->base;
	in->threads_count = 2;
	in->threads_next_unique_id = 3;

	pthread_barrier_init(&built_barrier, NULL, 2);
	if (pthread_create(&th, NULL, worker, NULL)) {
		perror("fake_cpython: pthread_create");
		return 3;
	}
#if !FT
	make_threading(th);
#endif
	main_level0(seconds, th);
	return 0;
}
