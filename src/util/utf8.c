/* utf8.c - strict UTF-8 decoding and encoding. */
#include <string.h>

#include "pyspyc/utf8.h"

size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t need, k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	need = c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : 0;
	if (!need || need >= len)
		return 0;
	c &= need == 1 ? 0x1f : need == 2 ? 0x0f : 0x07;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[k] & 0x3f);
	}
	if ((need == 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (need == 3 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	*cp = c;
	return need + 1;
}

size_t utf8_put(char *out, uint32_t c)
{
	if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		c = 0xfffd; /* not UTF-8 */
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* A byte that continues a UTF-8 sequence (10xxxxxx). */
static int continues(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

const char *utf8_shorten(const char *s, size_t max, char *buf, size_t size)
{
	size_t len = strlen(s), head, tail;

	if (len <= max)
		return s;
	if (max < 9 || size <= max) /* no room to show both ends */
		return s;
	/* "..." between two halves; the end gets the odd byte (it has the
	 * extension).  A cut inside a sequence moves off it, leaving that
	 * character out: the result is never longer than max. */
	head = (max - 3) / 2;
	tail = len - (max - 3 - head);
	while (head > 0 && continues((unsigned char)s[head]))
		head--;
	while (tail < len && continues((unsigned char)s[tail]))
		tail++;
	memcpy(buf, s, head);
	memcpy(buf + head, "...", 3);
	memcpy(buf + head + 3, s + tail, len - tail + 1);
	return buf;
}
