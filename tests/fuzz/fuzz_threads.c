/* fuzz_threads.c - thread ids and names (py_threads.h) over a fake image.
 *
 * Input (image.h): u8 layout, u8 fail_after, u64 interpreter state, u8
 * thread count (0-7), per thread u64 thread state, u64 pthread id, i32
 * native tid; then the image.  Before 3.11 the OS thread id is searched for
 * in each pthread descriptor (the image) against this process's own task
 * list; names come from threading's _active dict in the image, else the
 * OS.  Four samples, the list generation moving every other one.  The
 * remaining input is also given to proc_stat_state as a stat line and to
 * proc_nspid_parse as a status file (it never counts more fields than the
 * text could hold, and keeps only positive ids).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pyspyc/proc_ns.h"
#include "pyspyc/py_threads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_THREADS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct raw_thread threads[MAX_THREADS];
	int32_t tids[MAX_THREADS];
	struct raw_sample rs = { .threads = threads };
	struct thread_map *tm;
	struct py_target t;
	struct image im;
	struct rmem m;
	uint32_t i, n;
	unsigned int s;
	size_t rest;

	image_init(&im, data, size);
	image_target(&t, image_u8(&im));
	im.fail_after = image_u8(&im);
	t.interp = image_u64(&im);
	n = image_u8(&im) % (MAX_THREADS + 1);
	memset(threads, 0, sizeof(threads));
	for (i = 0; i < n; i++) {
		threads[i].tstate = image_u64(&im);
		threads[i].thread_id = image_u64(&im);
		threads[i].native_tid = (int32_t)image_u32(&im);
	}
	rest = im.pos;
	image_load(&im);
	rmem_init(&m, t.pid);
	image_attach(&im, &m);
	if (thread_map_new(&tm, &t, &m))
		return 0;
	for (s = 0; s < 4; s++) {
		image_set_sample(&im, s);
		rs.nthreads = n;
		rs.list_gen = s / 2;
		thread_map_tids(tm, &rs, tids);
		for (i = 0; i < n; i++) {
			const char *label, *name = NULL;
			uint64_t version;

			label = thread_map_name(tm, &threads[i], tids[i], &version, &name, NULL);
			FUZZ_CHECK(label && name && strlen(label) < 96 && strlen(name) < 64);
		}
	}
	thread_map_free(tm);
	(void)proc_stat_state((const char *)data + rest, size - rest);
	{
		int32_t ids[4];
		int k = proc_nspid_parse((const char *)data + rest, size - rest, ids, 4);

		FUZZ_CHECK((k == -EINVAL || k >= 0) && (size_t)(k > 0 ? k : 0) <= (size - rest) / 2);
		for (i = 0; k > 0 && i < (uint32_t)k && i < 4; i++)
			FUZZ_CHECK(ids[i] > 0);
	}
	return 0;
}
