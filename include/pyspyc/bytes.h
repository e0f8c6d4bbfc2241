/* bytes.h - fields out of a local copy of the target's memory.
 *
 * Copies of remote structures are plain byte buffers, unaligned in general:
 * fields are read with memcpy at an offset the caller has bounds-checked.
 */
#ifndef PYSPYC_BYTES_H
#define PYSPYC_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint64_t rd64(const uint8_t *b, int32_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static inline int32_t rd32(const uint8_t *b, int32_t off)
{
	int32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

#endif
