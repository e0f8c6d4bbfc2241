/* fuzz_debug_offsets.c - a 3.13, 3.14 or 3.15 target's _Py_DebugOffsets
 * (py_debug_offsets_apply) and everything that then reads the target
 * through the layout they made.
 *
 * Input (image.h): u8 minor version (mod 3: 3.13, 3.14, 3.12), u8
 * fail_after, u64 _PyRuntime, then the image (the debug offsets at
 * _PyRuntime).  The offsets are the target's word, so they are hostile too:
 * a layout they were allowed to make is then used as py_target_find's
 * caller would, to walk two samples, symbolize them and read thread names.
 */
#include <string.h>

#include "image.h"
#include "pyspyc/py_code.h"
#include "pyspyc/py_obj.h"
#include "pyspyc/py_walk.h"
#include "pyspyc/stacktab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_layout(struct py_target *t, struct image *im, struct rmem *m0)
{
	static const struct stacktab_limits lim = { 1024, 4096, 4096 };
	struct walk_opts o = { .max_depth = 64, .max_threads = 4 };
	struct sym_opts so = { .full_filenames = 1, .lineno = 1 };
	struct py_thread_name names[4];
	struct walk_stats ws = { 0 };
	struct sym_stats ss = { 0 };
	struct py_symbolizer *sym;
	struct raw_sample *rs;
	struct stacktab *tab;
	struct py_walker *w;
	struct rmem *m;
	char out[128];
	unsigned int s;
	int x_ok;

	if (rmem_read_ptr(m0, t->runtime + (uint64_t)t->layout->runtime_interp_head, &t->interp))
		return;
	if (py_walker_new(&w, t, &o))
		return;
	m = py_walker_mem(w);
	image_attach(im, m);
	if (stacktab_new(&tab, &lim))
		goto out_walker;
	if (py_sym_new(&sym, t, m, tab, &so))
		goto out_tab;
	for (s = 0; s < 2; s++) {
		const struct iovec *pl, *pr;
		uint32_t npf;

		image_set_sample(im, s);
		py_sym_prefetch(sym, &pl, &pr, &npf);
		if (py_walker_sample(w, pl, pr, npf, &x_ok, &rs, &ws))
			continue;
		py_sym_add(sym, rs, NULL, x_ok, (int64_t)s * 20000000, &ss);
		if (rs->nthreads && rs->threads[0].depth)
			py_obj_repr(t, m, rs->frames[rs->threads[0].first].code, out, sizeof(out));
	}
	py_obj_thread_names(t, m, names, 4);
	py_sym_free(sym);
out_tab:
	stacktab_free(tab);
out_walker:
	py_walker_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The claimed minor version, and image_target's table of it, which
	 * the offsets amend (3.12 has no debug offsets: none is applied). */
	static const struct { uint8_t minor, table; } vs[] = {
		{ 0x0d, 8 }, { 0x0e, 9 }, { 0x0c, 8 }, { 0x0f, 10 },
	};
	struct py_target t;
	struct image im;
	struct rmem m;
	uint8_t k;

	image_init(&im, data, size);
	k = image_u8(&im) % (sizeof(vs) / sizeof(vs[0]));
	image_target(&t, vs[k].table);
	t.version_hex = 0x03000000u | (uint32_t)vs[k].minor << 16;
	im.fail_after = image_u8(&im);
	t.runtime = image_u64(&im);
	image_load(&im);
	rmem_init(&m, t.pid);
	image_attach(&im, &m);
	if (py_debug_offsets_apply(&t, &m) == 0) {
		im.reads = 0;
		use_layout(&t, &im, &m);
	}
	return 0;
}
