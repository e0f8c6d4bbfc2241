/* fuzz_code.c - code objects, names and line tables read by the symbolizer
 * (py_code.h) out of a fake memory image.
 *
 * Input (image.h): u8 layout, u8 options, u8 fail_after, u64 PyCode_Type
 * (0: unknown), u8 thread count (1-4), per thread u8 frame count (0-15) and
 * per frame u64 code object, u64 instruction (pointer or lasti), u8 owner;
 * then the image.  Four samples are added (odd ones without the innermost
 * frame, the innermost instruction moving), so the cache, the memos and the
 * prefetched windows all come into play, then each thread is described.
 * Code objects, str/bytes of every kind and line tables may be anything.
 */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pyspyc/py_code.h"
#include "pyspyc/stacktab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_THREADS 4
#define MAX_FRAMES 15

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct stacktab_limits lim = { 1024, 4096, 4096 };
	struct raw_frame frames[MAX_THREADS * MAX_FRAMES], cur[MAX_THREADS * MAX_FRAMES];
	uint64_t addrs[MAX_THREADS * MAX_FRAMES] = { 0 };
	struct raw_thread threads[MAX_THREADS];
	uint32_t depth[MAX_THREADS], nthreads, nf = 0, i, k;
	struct raw_sample rs = { 0 };
	struct sym_frame out[MAX_FRAMES];
	struct sym_stats st = { 0 };
	struct sym_opts so = { 0 };
	struct py_symbolizer *sym;
	struct stacktab *tab;
	struct py_target t;
	struct image im;
	struct rmem m;
	uint8_t opts;
	unsigned int s;

	image_init(&im, data, size);
	image_target(&t, image_u8(&im));
	opts = image_u8(&im);
	im.fail_after = image_u8(&im);
	t.code_type = image_u64(&im);
	nthreads = 1 + image_u8(&im) % MAX_THREADS;
	for (i = 0; i < nthreads; i++) {
		depth[i] = image_u8(&im) % (MAX_FRAMES + 1);
		for (k = 0; k < depth[i]; k++, nf++) {
			frames[nf].code = image_u64(&im);
			frames[nf].instr = image_u64(&im);
			frames[nf].owner = image_u8(&im);
			frames[nf].zero = 0;
		}
	}
	image_load(&im);
	so.full_filenames = !(opts & 1); /* shortening stats our own files */
	so.lineno = !(opts & 2);
	so.function = !!(opts & 4);
	rmem_init(&m, t.pid);
	image_attach(&im, &m);
	if (stacktab_new(&tab, &lim))
		return 0;
	if (py_sym_new(&sym, &t, &m, tab, &so)) {
		stacktab_free(tab);
		return 0;
	}
	for (s = 0; s < 4; s++) {
		const struct iovec *pl, *pr;
		uint32_t npf, at = 0, f = 0;
		int pf_ok;

		image_set_sample(&im, s);
		py_sym_prefetch(sym, &pl, &pr, &npf);
		pf_ok = rmem_readv(&m, pl, pr, npf) == 0;
		rs = (struct raw_sample){ .threads = threads, .nthreads = nthreads,
					  .frames = cur, .addrs = addrs };
		for (i = 0; i < nthreads; i++) {
			uint32_t skip = (s & 1) && depth[i] > 1;

			threads[i] = (struct raw_thread){ .tstate = 0x1000 * (i + 1),
							  .first = at,
							  .depth = depth[i] - skip };
			memcpy(&cur[at], &frames[f + skip], (depth[i] - skip) * sizeof(*cur));
			if (depth[i] - skip)
				cur[at].instr += 2 * s;
			at += depth[i] - skip;
			f += depth[i];
		}
		rs.nframes = at;
		py_sym_add(sym, &rs, NULL, pf_ok, (int64_t)s * 20000000, &st);
	}
	for (i = 0; i < nthreads; i++) {
		int n = py_sym_describe(sym, &rs, &threads[i], out, MAX_FRAMES);

		FUZZ_CHECK(n <= MAX_FRAMES);
		for (k = 0; n > 0 && k < (uint32_t)n; k++)
			FUZZ_CHECK(out[k].name && out[k].file && strlen(out[k].name) < 8192);
	}
	py_sym_free(sym);
	stacktab_free(tab);
	return 0;
}
