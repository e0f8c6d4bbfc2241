/* fuzz_bpf_records.c - the eBPF backend's ring-buffer records
 * (pb_record_decode): the first byte picks the frame model and the depth
 * cap, the rest is one record.  Accepted or refused (-EBADMSG); accepted,
 * the stack stays inside the record's frames, is torn with no frames or
 * has its frames and fingerprints in order; nothing is read out of
 * bounds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/backend_bpf.h"
#include "pyspyc_abi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pb_decoded d;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pb_decode_opts models[4] = {
		{ .objects = 1, .shim = -1, .gen_owner = -1 },
		{ .objects = 0, .shim = -1, .gen_owner = 1 },
		{ .objects = 0, .shim = 3, .gen_owner = 1 },
		{ .objects = 0, .shim = 3, .gen_owner = 1 },
	};
	struct pb_decode_opts o;
	struct pb_head h;
	uint8_t *rec;
	int err;

	if (size < 1)
		return 0;
	o = models[data[0] & 3];
	o.max_depth = (data[0] & 4) ? 1u + (data[0] >> 3) : 4096;
	/* A copy of exactly the record's bytes: a read past them is caught. */
	rec = malloc(size - 1 ? size - 1 : 1);
	if (!rec)
		return 0;
	memcpy(rec, data + 1, size - 1);
	err = pb_record_decode(rec, size - 1, &o, &d);
	if (err) {
		if (err != -EBADMSG || !pb_record_check(rec, size - 1))
			abort();
	} else {
		memcpy(&h, rec, sizeof(h));
		if (d.th.depth > h.nframes || d.th.depth > o.max_depth ||
		    ((d.th.flags & RAW_TORN) && d.th.depth) || d.tid != h.tid)
			abort();
	}
	free(rec);
	return 0;
}
