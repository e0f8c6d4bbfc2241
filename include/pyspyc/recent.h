/* recent.h - a short most-recent-first list of 64-bit values (addresses). */
#ifndef PYSPYC_RECENT_H
#define PYSPYC_RECENT_H

#include <stdint.h>

/* Put v at the front of a[0..*n), moving it up if it is there already,
 * else dropping the last value when the list holds cap. */
static inline void recent_push(uint64_t *a, uint32_t *n, uint32_t cap, uint64_t v)
{
	uint32_t k, j;

	for (k = 0; k < *n && a[k] != v; k++)
		;
	if (k == *n && *n < cap)
		(*n)++;
	if (k == *n)
		k--;
	for (j = k; j > 0; j--)
		a[j] = a[j - 1];
	a[0] = v;
}

#endif
