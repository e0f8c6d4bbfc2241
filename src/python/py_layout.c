/* py_layout.c - checks on a layout before anything reads through it. */
#include <errno.h>
#include <stddef.h>

#include "pyspyc/py_layout.h"

/* A field of width bytes at off (-1: absent) lies within size bytes. */
static int within(int32_t off, int32_t width, int32_t size)
{
	return off < 0 || (size >= width && off <= size - width);
}

/* The same for a field every version has: absent is wrong too. */
static int present(int32_t off, int32_t width, int32_t size)
{
	return off >= 0 && within(off, width, size);
}

int py_layout_check(const struct py_layout *L)
{
	const int32_t ts = L->tstate_size, cs = L->code_size, ch = L->chunk_data;
	const int32_t tsf[] = { L->tstate_next, L->tstate_interp, L->tstate_frame,
				L->tstate_cframe, L->tstate_current_frame,
				L->tstate_thread_id, L->tstate_native_thread_id,
				L->tstate_datastack_chunk, L->tstate_datastack_top,
				L->tstate_base_frame };
	const int32_t tsneed[] = { L->tstate_next, L->tstate_interp, L->tstate_thread_id };
	const int32_t codef[] = { L->code_ob_size, L->code_qualname };
	const int32_t codeneed[] = { L->code_ob_type, L->code_filename, L->code_name,
				     L->code_linetable };
	int32_t fs;
	size_t i;
	int ok;

	/* 0: the version has none; never absent (-1) otherwise */
	ok = ts > 0 && cs > 0 && cs <= PY_LAYOUT_MAX_CODE && L->tstate_base_frame >= 0 &&
	     (L->iframe_code_tags == 0 || L->iframe_code_tags == 3);
	for (i = 0; i < sizeof(tsf) / sizeof(tsf[0]); i++)
		ok = ok && within(tsf[i], 8, ts);
	for (i = 0; i < sizeof(tsneed) / sizeof(tsneed[0]); i++)
		ok = ok && present(tsneed[i], 8, ts);
	for (i = 0; i < sizeof(codef) / sizeof(codef[0]); i++)
		ok = ok && within(codef[i], 8, cs);
	for (i = 0; i < sizeof(codeneed) / sizeof(codeneed[0]); i++)
		ok = ok && present(codeneed[i], 8, cs);
	ok = ok && present(L->code_firstlineno, 4, cs) && within(L->code_firsttraceable, 4, cs);
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		fs = L->frame_size;
		ok = ok && present(L->frame_back, 8, fs) && present(L->frame_code, 8, fs) &&
		     present(L->frame_lasti, 4, fs) && present(L->tstate_frame, 8, ts) &&
		     within(L->frame_gen, 8, fs) && within(L->frame_refcnt, 8, fs);
	} else {
		fs = L->iframe_size;
		ok = ok && present(L->iframe_code, 8, fs) && present(L->iframe_previous, 8, fs) &&
		     present(L->iframe_instr, 8, fs) && present(L->iframe_owner, 1, fs) &&
		     within(L->iframe_stacktop, 4, fs) &&
		     ch >= 0 && ch <= PY_LAYOUT_MAX_CHUNK_HDR &&
		     present(L->chunk_previous, 8, ch) && present(L->chunk_size, 8, ch) &&
		     present(L->chunk_top, 8, ch) &&
		     /* The walker reads these from every thread state. */
		     present(L->tstate_datastack_chunk, 8, ts) &&
		     present(L->tstate_datastack_top, 8, ts) &&
		     (present(L->tstate_current_frame, 8, ts) ||
		      (present(L->tstate_cframe, 8, ts) && L->cframe_current_frame >= 0));
	}
	ok = ok && fs > 0 && fs <= PY_LAYOUT_MAX_FRAME;
	if (L->str_model == PY_STR_UNICODE)
		ok = ok && L->unicode_ascii_data > 0 &&
		     L->unicode_ascii_data <= PY_LAYOUT_MAX_STR_HDR &&
		     L->unicode_compact_data >= 0 &&
		     L->unicode_compact_data <= PY_LAYOUT_MAX_STR_HDR &&
		     present(L->unicode_length, 8, L->unicode_ascii_data) &&
		     present(L->unicode_state, 4, L->unicode_ascii_data);
	ok = ok && L->bytes_data > 0 && L->bytes_data <= PY_LAYOUT_MAX_BYTES_HDR &&
	     present(L->bytes_size, 8, L->bytes_data);
	return ok ? 0 : -EINVAL;
}
