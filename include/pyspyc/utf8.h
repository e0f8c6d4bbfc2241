/* utf8.h - strict UTF-8 decoding for writers whose formats carry only valid
 * UTF-8 (JSON, protobuf strings).
 *
 * Strict means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF.  Callers replace what fails, one byte at a time,
 * with U+FFFD (EF BF BD).
 */
#ifndef PYSPYC_UTF8_H
#define PYSPYC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The UTF-8 encoding of U+FFFD, the replacement character. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* Length (1 to 4) of the valid UTF-8 sequence at s, which holds len >= 1
 * bytes, with its code point in *cp; 0 when s does not start one. */
size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp);

#endif
