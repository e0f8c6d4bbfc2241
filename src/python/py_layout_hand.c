/* py_layout_hand.c - the layouts of CPython 3.14 and 3.15 (default builds),
 * written by hand: their headers are not installed where the generated
 * tables are made (scripts/gen-layouts.sh).  Values from the 3.14.10 and
 * 3.15.2 release headers (offsetof over Include/internal, checked against
 * the .PyRuntime tables of the compiled releases; the colleague's notes
 * and the source of every value are in the comment of
 * tests/apps/fake_cpython.c).  At attach py_debug_offsets_apply takes
 * every offset the target's own _Py_DebugOffsets gives over these; what
 * stays from here is what the table does not give: the data-stack top and
 * chunk header, _co_firsttraceable, the opcodes of returns, the frame
 * owners, the tag bits of f_executable, the string state bits.
 *
 * Against 3.13: f_executable is a _PyStackRef (iframe_code_tags); the
 * frame has no int stacktop (a stackpointer instead: iframe_stacktop -1)
 * and its localsplus are _PyStackRefs too, untagged by the same rule
 * (py_frame_local) for dump --locals; owner moved to 74,
 * localsplus to 80; RETURN_CONST is gone; the entry frames keep owner 3
 * (FRAME_OWNED_BY_INTERPRETER), and 3.15 ends every thread's chain at the
 * thread state's embedded base frame (owner 3), through tstate_base_frame.
 * The object layouts past the debug offsets' (dict keys objects and
 * inline values, type flag bits, cells, modules) are 3.13's, as
 * pycore_dict.h and object.h still have them; the synthetic images of
 * tests/apps/fake_cpython.c lay out threading._active with them (names
 * read by dump), and cells are not laid out there.  Only thread names
 * (py_threads) and the values dump --locals shows read them; a read that
 * makes no sense leaves the OS name, or shows the value as unreadable.
 * RETURN_VALUE is 35 (3.14) and 33 (3.15) in opcode_ids.h; RETURN_CONST
 * went in 3.14a2 (magic number 3609).
 * FRAME_OWNED_BY_CSTACK (4 in 3.14, gone in 3.15) is set on no frame, so
 * owner 3 alone marks frames to skip. */
#include <stddef.h>
#include "pyspyc/py_layout.h"
#include "pyspyc/py_lines.h"

/* What 3.14 and 3.15 share; each entry adds its own offsets. */
#define PY_LAYOUT_314_315 \
	.runtime_symbol = "_PyRuntime", \
	.tstate_next = 8, \
	.tstate_interp = 16, \
	.code_ob_type = 8, \
	.code_filename = 112, \
	.code_name = 120, \
	.code_firstlineno = 68, \
	.gil_model = PY_GIL_INTERP_STATE, \
	.runtime_tstate_current = -1, \
	.interp_ceval_gil = 16, \
	.gil_locked = 16, \
	.gil_last_holder = 8, \
	.str_model = PY_STR_UNICODE, \
	.bytes_size = 16, \
	.bytes_data = 32, \
	.unicode_length = 16, \
	.unicode_state = 32, \
	.unicode_ascii_data = 40, \
	.unicode_compact_data = 56, \
	.frame_model = PY_FRAMES_INTERP, \
	.line_format = PY_LINES_LOCATION, \
	.lasti_scale = 1, \
	.tstate_frame = -1, \
	.chunk_previous = 0, \
	.chunk_size = 8, \
	.chunk_top = 16, \
	.chunk_data = 24, \
	.frame_size = -1, \
	.frame_back = -1, \
	.frame_code = -1, \
	.frame_lasti = -1, \
	.frame_refcnt = -1, \
	.iframe_stacktop = -1, \
	.op_return_const = -1, \
	.iframe_size = 80, \
	.iframe_previous = 8, \
	.iframe_code_tags = 3, \
	.iframe_owner = 74, \
	.iframe_owned_by_generator = 1, \
	.frame_gen = -1, \
	.interp_trampoline = -1, \
	.code_ob_size = 16, \
	.code_qualname = 128, \
	.code_linetable = 136, \
	.code_firsttraceable = 192, \
	.code_adaptive = 208, \
	.code_size = 208, \
	.tstate_cframe = -1, \
	.tstate_current_frame = 72, \
	.cframe_current_frame = -1, \
	.iframe_code = 0, \
	.iframe_instr = 56, \
	.iframe_is_entry = -1, \
	.iframe_owned_by_cstack = 3, \
	.obj_type = 8, \
	.obj_var_size = 16, \
	.type_name = 24, \
	.type_flags = 168, \
	.type_basicsize = 32, \
	.type_dictoffset = 288, \
	.tpflags_heaptype = 512, \
	.float_fval = 16, \
	.tuple_items = 32, \
	.set_used = 24, \
	.cell_ref = 16, \
	.long_shift = 30, \
	.long_digit_size = 4, \
	.dict_used = 16, \
	.code_argcount = 52, \
	.code_flags = 48, \
	.code_kwonlyargcount = 60, \
	.int_ival = -1, \
	.ustr_length = -1, \
	.ustr_str = -1, \
	.ustr_unit = -1, \
	.dict_mask = -1, \
	.dict_table = -1, \
	.dict_keys = 32, \
	.dict_values = 40, \
	.dict_model = PY_DICT_KINDS, \
	.dk_size = -1, \
	.dk_log2_size = 8, \
	.dk_log2_index_bytes = 9, \
	.dk_kind = 10, \
	.dk_nentries = 24, \
	.dk_indices = 32, \
	.dk_entry_size = 24, \
	.dk_unicode_entry_size = 16, \
	.dict_values_items = 8, \
	.code_nlocals = -1, \
	.code_varnames = -1, \
	.code_cellvars = -1, \
	.code_freevars = -1, \
	.code_localsplusnames = 96, \
	.code_localspluskinds = 104, \
	.fast_cell = 64, \
	.fast_free = 128, \
	.frame_localsplus = -1, \
	.iframe_localsplus = 80, \
	.tpflags_managed_dict = 16, \
	.module_dict = 16, \
	.long_size = 16, \
	.long_tag_shift = 3, \
	.fast_hidden = 16, \
	.long_digits = 24, \
	.tpflags_inline_values = 4, \
	.dict_values_valid = 3, \
	.mdict_model = PY_MDICT_INLINE, \
	.mdict_values = 16, \
	.mdict_dict = -24

static const struct py_layout layouts[] = {
	{
		PY_LAYOUT_314_315,
		.version = 0x030e,
		.runtime_interp_head = 808,
		.interp_next = 7272,
		.tstate_size = 832,
		.tstate_thread_id = 152,
		.interp_threads_head = 7344,
		.tstate_native_thread_id = 160,
		.tstate_datastack_chunk = 232,
		.tstate_datastack_top = 240,
		.tstate_base_frame = 0,
		.op_return_value = 35,
		.heaptype_cached_keys = 880,
		.interp_modules = 7688,
	},
	{
		PY_LAYOUT_314_315,
		.version = 0x030f,
		.runtime_interp_head = 936,
		.interp_next = 7264,
		.tstate_size = 888,
		.tstate_thread_id = 176,
		.interp_threads_head = 7336,
		.tstate_native_thread_id = 184,
		.tstate_datastack_chunk = 256,
		.tstate_datastack_top = 264,
		.tstate_base_frame = 80,
		.op_return_value = 33,
		.heaptype_cached_keys = 888,
		.interp_modules = 7592,
	},
};

const struct py_layout *py_layout_find(uint32_t version)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].version == version)
			return &layouts[i];
	return py_layout_find_generated(version);
}
