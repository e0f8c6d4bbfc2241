/* fuzz_walk.c - frame-chain walking (py_walk.h) over a fake memory image.
 *
 * Input (image.h): u8 layout, u8 options (max depth, max threads), u8
 * fail_after, u64 interpreter state, u64 _PyRuntime, u64
 * _PyThreadState_Current, u64 an extra read's address, then the image.
 * Eight samples are taken, each seeing the regions marked for it, so the
 * thread list, chunks and frames change between them as in a live target.
 * Chains that loop, point into themselves or into garbage must end, within
 * the caps, and the sample must hold together.
 */
#include <stdlib.h>

#include "image.h"
#include "pyspyc/py_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sample(const struct raw_sample *rs, const struct walk_opts *o)
{
	uint32_t i, end = 0;

	FUZZ_CHECK(rs->nthreads <= o->max_threads);
	for (i = 0; i < rs->nthreads; i++) {
		const struct raw_thread *th = &rs->threads[i];

		FUZZ_CHECK(th->depth <= o->max_depth);
		FUZZ_CHECK(th->first >= end && th->first + th->depth <= rs->nframes);
		end = th->first + th->depth;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image im;
	struct py_target t;
	struct walk_opts o;
	struct walk_stats st = { 0 };
	struct py_walker *w;
	struct raw_sample *rs;
	struct iovec xl, xr;
	uint8_t opts, extra[64];
	uint64_t xaddr;
	unsigned int s;
	int x_ok;

	image_init(&im, data, size);
	image_target(&t, image_u8(&im));
	opts = image_u8(&im);
	im.fail_after = image_u8(&im);
	t.interp = image_u64(&im);
	t.runtime = image_u64(&im);
	t.tstate_current = image_u64(&im);
	xaddr = image_u64(&im);
	image_load(&im);
	o.max_depth = 1 + (opts & 31) * 8;
	o.max_threads = 1 + (opts >> 5) * 2;
	if (py_walker_new(&w, &t, &o))
		return 0;
	image_attach(&im, py_walker_mem(w));
	xl = (struct iovec){ .iov_base = extra, .iov_len = sizeof(extra) };
	xr = (struct iovec){ .iov_base = (void *)(uintptr_t)xaddr, .iov_len = sizeof(extra) };
	for (s = 0; s < 8; s++) {
		image_set_sample(&im, s);
		if (py_walker_sample(w, &xl, &xr, xaddr ? 1 : 0, &x_ok, &rs, &st) == 0)
			check_sample(rs, &o);
	}
	py_walker_free(w);
	return 0;
}
