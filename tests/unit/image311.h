/* image311.h - the fuzzers' CPython 3.11 image of three code objects f0, f1,
 * f2 (tests/fuzz/corpus/code/30b: f0 at main.py:11, f1 and f2 after it),
 * for unit tests of what consumes raw stacks (the symbolizer, the sampler).
 * Include it once, in place of ../fuzz/image.c.
 */
#ifndef PYSPYC_TEST_IMAGE311_H
#define PYSPYC_TEST_IMAGE311_H

#include "../fuzz/image.c"

#define SEED311_HEADER 64 /* the fuzzer's parameters, 3 frames of one thread */

/* The seed, into seed[0..cap): its length. */
static size_t seed311_read(uint8_t *seed, size_t cap)
{
	FILE *f = fopen("tests/fuzz/corpus/code/30b", "rb");
	size_t n;

	assert_non_null(f);
	n = fread(seed, 1, cap, f);
	fclose(f);
	assert_true(n > SEED311_HEADER);
	return n;
}

/* The seed's target (3.11, pid = ours) and its code objects' addresses. */
static void seed311_target(const uint8_t *seed, struct py_target *t, uint64_t code[3])
{
	int i;

	image_target(t, seed[0]);
	assert_int_equal(t->version_hex >> 16, 0x030b);
	for (i = 0; i < 3; i++)
		memcpy(&code[i], seed + 13 + 17 * i, 8);
	memcpy(&t->code_type, seed + 3, 8);
}

/* Load the image in[0..len) (the seed's header first, then regions; the
 * ones listed first win) and read it through m. */
static void seed311_attach(struct image *im, const uint8_t *in, size_t len,
			   const struct py_target *t, struct rmem *m)
{
	image_init(im, in, len);
	im->pos = SEED311_HEADER;
	image_load(im);
	rmem_init(m, t->pid);
	image_attach(im, m);
}

#endif
