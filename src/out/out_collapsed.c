/* out_collapsed.c - collapsed ("folded") stacks, the flamegraph.pl grammar:
 *
 *   frame;frame;frame count\n
 *
 * one line per unique stack, root first, each frame "name (file:line)".
 * Bytes the grammar cannot carry inside a frame are replaced: ';' by ',',
 * and control characters (newline, CR, tab, NUL, ...) by '?'.  Everything
 * else, spaces included, is kept: parsers split the count off at the last
 * space.  Lines come in profile order, so the same profile gives the same
 * bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "pyspyc/output.h"

static void put_clean(const char *s, FILE *f)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == ';')
			c = ',';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		putc_unlocked(c, f);
	}
}

static void put_frame(const struct profile_frame *fr, FILE *f)
{
	put_clean(fr->name, f);
	if (!fr->file[0] || frame_is_marker(fr->kind))
		return;
	fputs_unlocked(" (", f);
	put_clean(fr->file, f);
	if (fr->line > 0)
		fprintf(f, ":%d", fr->line);
	putc_unlocked(')', f);
}

int out_collapsed_write(const struct profile *p, const struct out_opts *o,
			FILE *f)
{
	uint32_t i, j;

	(void)o;
	for (i = 0; i < p->nstacks; i++) {
		const struct profile_stack *s = &p->stacks[i];

		if (!s->depth)
			continue;
		for (j = 0; j < s->depth; j++) {
			if (j)
				putc_unlocked(';', f);
			put_frame(&p->frames[s->frames[j]], f);
		}
		fprintf(f, " %" PRIu64 "\n", s->count);
	}
	return ferror(f) ? -EIO : 0;
}
