/* image.h - a fake process memory image for the fuzzers.
 *
 * A fuzz input is read front to back: first the fuzzer's own parameters
 * (image_u8/u32/u64 return 0 once the input runs out), then the image, as
 * records until the input ends:
 *
 *   u64 address (little endian), u16 length, u8 samples, length bytes
 *
 * "samples" is a bit mask of the samples (image_set_sample 0..7) the region
 * exists in, so threads can come and go and frames move between samples of
 * one run; 0 means all of them.  Regions may overlap (the first listed wins)
 * and may be adjacent (a read may span them).  Memory is mapped in pages:
 * bytes in no region but on a page some region touches read as 0.  A read
 * of any other byte stops there, like process_vm_readv on an unmapped page:
 * a short count, or -1/EFAULT when nothing was read.  After fail_after reads (0:
 * never) every read fails with ESRCH, as when the target exits.
 */
#ifndef PYSPYC_FUZZ_IMAGE_H
#define PYSPYC_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"

#define IMAGE_MAX_REGIONS 256

struct image_region {
	uint64_t addr;
	const uint8_t *data;
	uint32_t len;
	uint8_t samples;
};

struct image {
	const uint8_t *in;
	size_t size, pos;
	struct image_region r[IMAGE_MAX_REGIONS];
	uint32_t n;
	unsigned int sample;
	uint32_t reads, fail_after;
};

void image_init(struct image *im, const uint8_t *data, size_t size);
uint8_t image_u8(struct image *im);
uint32_t image_u32(struct image *im);
uint64_t image_u64(struct image *im);
/* Parse the rest of the input as regions. */
void image_load(struct image *im);
void image_set_sample(struct image *im, unsigned int sample);
/* Make m read this image. */
void image_attach(struct image *im, struct rmem *m);

/* One of the generated layouts, chosen by sel; fills t (pid: ours). */
void image_target(struct py_target *t, uint8_t sel);

/* Abort (a crash libFuzzer reports) when cond is false: the fuzzers check
 * the documented contracts, not just memory safety. */
#define FUZZ_CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#endif
