/* in_collapsed.c - collapsed stacks read back (input.h).
 *
 *   frame;frame;frame count\n
 *
 * The inverse of out_collapsed.c: a line is split at its last space into
 * the stack and the count, the stack at each ';' into frames, root first.
 * A frame ending in ")" with a " (" before it is "name (file:line)", the
 * line being the digits after the last ':' when there are only digits;
 * without, "name (file)" (a file of at least one byte); anything else is
 * a bare name, as flamegraph.pl's
 * stackcollapse scripts write them.  Whatever our writer wrote comes back
 * as the same text, so a profile read and written again is the same file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/input.h"
#include "pyspyc/py_code.h"

__attribute__((format(printf, 4, 5)))
static int bad(struct in_error *e, uint64_t line, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	e->line = line;
	e->offset = offset;
	va_start(ap, fmt);
	vsnprintf(e->what, sizeof(e->what), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int is_digits(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Digits s[0..n) as a number below limit, or -1. */
static long long number(const char *s, size_t n, long long limit)
{
	long long v = 0;
	size_t i;

	if (!is_digits(s, n))
		return -1;
	for (i = 0; i < n; i++) {
		if (v > (limit - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Frame key of pyspyc's markers: a process marker "process PID:\"cmd\"" at
 * the root, a thread marker "thread TID \"name\"" (TID decimal, or 0x and
 * a pthread id) at the root or after the process's.  1 when f[0..n) is one
 * (k->kind, line and the bare text's span in *bare, *blen), else 0. */
static int marker(const char *f, size_t n, uint32_t at, int after_process,
		  struct frame_key *k, const char **bare, size_t *blen)
{
	const char *q;
	size_t d = 0;

	if (at == 0 && n > 11 && !memcmp(f, "process ", 8)) {
		while (8 + d < n && f[8 + d] >= '0' && f[8 + d] <= '9')
			d++;
		q = f + 8 + d;
		if (!d || q + 3 > f + n || q[0] != ':' || q[1] != '"' || f[n - 1] != '"')
			return 0;
		k->kind = FRAME_PROCESS;
		k->line = (int32_t)number(f + 8, d, INT32_MAX);
		*bare = q + 2;
		*blen = (size_t)(f + n - 1 - *bare);
		return k->line >= 0;
	}
	if ((at == 0 || (at == 1 && after_process)) && n > 10 && !memcmp(f, "thread ", 7)) {
		int hex = n > 9 && f[7] == '0' && f[8] == 'x';
		const char *p = f + 7 + (hex ? 2 : 0);

		while (p + d < f + n && ((p[d] >= '0' && p[d] <= '9') ||
					 (hex && ((p[d] >= 'a' && p[d] <= 'f')))))
			d++;
		q = p + d;
		if (!d || q + 3 > f + n || q[0] != ' ' || q[1] != '"' || f[n - 1] != '"')
			return 0;
		k->kind = FRAME_THREAD;
		k->line = hex ? 0 : (int32_t)number(p, d, INT32_MAX);
		*bare = q + 2;
		*blen = (size_t)(f + n - 1 - *bare);
		return k->line >= 0;
	}
	return 0;
}

int in_marker(struct stacktab *t, const char *f, size_t n, uint32_t at, int after_process,
	      uint32_t *id)
{
	struct frame_key k = { 0 };
	const char *bare;
	size_t blen;
	int err;

	if (!marker(f, n, at, after_process, &k, &bare, &blen))
		return 0;
	err = stacktab_string(t, f, n, &k.name);
	if (!err)
		err = stacktab_string(t, bare, blen, &k.file);
	if (!err)
		err = stacktab_frame(t, &k, id);
	return err ? err : 1;
}

int in_frame(struct stacktab *t, const char *name, size_t nlen, const char *file, size_t flen,
	     int32_t line, uint32_t *id)
{
	struct frame_key k = { .line = line, .kind = FRAME_APP };
	char path[PATH_MAX];
	int err;

	if (flen && flen < sizeof(path) && !memchr(file, '\0', flen)) {
		memcpy(path, file, flen);
		path[flen] = '\0';
		k.kind = (uint32_t)py_file_kind(path, "");
	}
	err = stacktab_string(t, name, nlen, &k.name);
	if (!err)
		err = stacktab_string(t, file, flen, &k.file);
	return err ? err : stacktab_frame(t, &k, id);
}

/* Intern frame f[0..n), the at-th of its stack. */
static int frame_of(struct stacktab *t, const char *f, size_t n, uint32_t at,
		    int after_process, uint32_t *id)
{
	const char *name = f, *file = "";
	size_t nlen = n, flen = 0;
	int32_t lineno = 0;
	int err = in_marker(t, f, n, at, after_process, id);

	if (err)
		return err < 0 ? err : 0;
	if (n >= 3 && f[n - 1] == ')') {
		size_t i = n - 1;

		while (i >= 2 && !(f[i - 2] == ' ' && f[i - 1] == '('))
			i--;
		/* "f ()" holds no file: a bare name, which writes back as it
		 * came (the name alone, "f", would read as another frame). */
		if (i >= 2 && i < n - 1) {
			const char *in = f + i, *colon;
			size_t ilen = n - 1 - i;

			nlen = i - 2;
			file = in;
			flen = ilen;
			colon = memrchr(in, ':', ilen);
			if (colon) {
				long long line = number(colon + 1, (size_t)(in + ilen - colon - 1),
							INT32_MAX);

				if (line > 0) {
					flen = (size_t)(colon - in);
					lineno = (int32_t)line;
				}
			}
		}
	}
	return in_frame(t, name, nlen, file, flen, lineno, id);
}

int in_collapsed_read(struct stacktab *t, const char *data, size_t len,
		      struct in_totals *tot, struct in_error *e)
{
	uint32_t *ids = NULL;
	const char *p = data, *end = data + len;
	uint64_t lineno = 0;
	int err = 0;

	ids = malloc(IN_MAX_DEPTH * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	while (p < end && !err) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *sp, *f;
		uint64_t off = (uint64_t)(p - data);
		long long count;
		uint32_t depth = 0;
		int after_process = 0;

		lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p) {
			p = nl ? nl + 1 : end;
			continue;
		}
		if (memchr(p, '\0', (size_t)(le - p))) {
			err = bad(e, lineno, off, "a NUL byte: not a collapsed stacks file");
			break;
		}
		sp = memrchr(p, ' ', (size_t)(le - p));
		if (!sp) {
			err = bad(e, lineno, off, "no sample count at the end of the line");
			break;
		}
		count = number(sp + 1, (size_t)(le - sp - 1), (long long)IN_MAX_COUNT);
		if (count < 0) {
			err = bad(e, lineno, off + (uint64_t)(sp + 1 - p),
				  is_digits(sp + 1, (size_t)(le - sp - 1))
				  ? "the sample count is too large"
				  : "the sample count '%.*s' is not a whole number",
				  (int)(le - sp - 1 < 32 ? le - sp - 1 : 32), sp + 1);
			break;
		}
		if (sp == p) {
			err = bad(e, lineno, off, "no stack before the count");
			break;
		}
		if (tot->samples + (uint64_t)count > IN_MAX_COUNT) {
			err = bad(e, lineno, off, "more than 2^53 samples in all");
			break;
		}
		for (f = p; f <= sp && !err;) {
			const char *semi = memchr(f, ';', (size_t)(sp - f));
			const char *fe = semi ? semi : sp;

			if (fe == f) {
				err = bad(e, lineno, off + (uint64_t)(f - p), "an empty frame");
				break;
			}
			if (depth == IN_MAX_DEPTH) {
				err = bad(e, lineno, off, "more than %d frames in one stack",
					  IN_MAX_DEPTH);
				break;
			}
			err = frame_of(t, f, (size_t)(fe - f), depth, after_process, &ids[depth]);
			if (!err) {
				const struct frame_key *k = stacktab_frame_get(t, ids[depth]);

				after_process = depth == 0 && k && k->kind == FRAME_PROCESS;
				depth++;
			}
			f = fe + 1;
		}
		if (!err && count)
			err = stacktab_add(t, ids, depth, (uint64_t)count, NULL);
		if (!err) {
			tot->samples += (uint64_t)count;
			tot->stacks++;
		}
		p = nl ? nl + 1 : end;
	}
	free(ids);
	return err;
}

int in_read_file(const char *path, size_t max, char **data, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	size_t cap = 1 << 16, n = 0;
	char *buf = NULL;
	int err = 0;

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap || !buf) {
			char *nb;

			if (buf)
				cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			err = -EFBIG;
			break;
		}
	}
	if (fd > 0)
		close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}
