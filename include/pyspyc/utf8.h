/* utf8.h - strict UTF-8 decoding and encoding, for writers whose formats
 * carry only valid UTF-8 (JSON, protobuf strings) and for text made from
 * the target's code points.
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
 * bytes, with its code point in *cp; 0 when s does not start one.  Bytes
 * are read in order and the first that cannot continue the sequence ends
 * it, so a NUL-terminated string may be passed with len 4: nothing past
 * its NUL is read. */
size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp);

/* Write code point c as UTF-8 at out (room for 4 bytes); a surrogate or a
 * value above U+10FFFF is written as U+FFFD.  Returns the length, 1 to 4. */
size_t utf8_put(char *out, uint32_t c);

/* s as a message shows it: s itself when it is at most max bytes long;
 * else its start, "...", and its end, max bytes in all, written to buf
 * (size > max, max >= 9), cut between characters (a UTF-8 sequence is
 * never split), so a long file name keeps its extension.  Returns s or
 * buf. */
const char *utf8_shorten(const char *s, size_t max, char *buf, size_t size);

#endif
