/* json.c - a streaming JSON writer with strict string escaping. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/json.h"
#include "pyspyc/utf8.h"

/* Feed the escaped form of s to out, piece by piece. */
static size_t escape(const char *str, size_t len, void (*out)(void *, const char *, size_t),
		     void *ctx)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, total = 0;
	char buf[8];

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);
		const char *piece = buf;
		size_t plen;

		if (n == 0) {
			piece = "\\ufffd"; /* not UTF-8: the replacement character */
			plen = 6;
			n = 1;
		} else if (cp == '"') {
			piece = "\\\"";
			plen = 2;
		} else if (cp == '\\') {
			piece = "\\\\";
			plen = 2;
		} else if (cp == '\n') {
			piece = "\\n";
			plen = 2;
		} else if (cp == '\t') {
			piece = "\\t";
			plen = 2;
		} else if (cp == '\r') {
			piece = "\\r";
			plen = 2;
		} else if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029) {
			plen = (size_t)snprintf(buf, sizeof(buf), "\\u%04x", cp);
		} else {
			piece = (const char *)s + i;
			plen = n;
		}
		out(ctx, piece, plen);
		total += plen;
		i += n;
	}
	return total;
}

static void to_file(void *ctx, const char *p, size_t n)
{
	fwrite(p, 1, n, ctx);
}

/* Most names and paths need no escaping: written in one piece, which is
 * most of the time a big trace takes. */
static void put_escaped(const char *s, size_t len, FILE *f)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			escape(s, len, to_file, f);
			return;
		}
	}
	fwrite_unlocked(s, 1, len, f);
}

struct membuf {
	char *p;
	size_t size, used;
	int full;
};

/* Whole pieces only: a cut never splits an escape or a character. */
static void to_mem(void *ctx, const char *p, size_t n)
{
	struct membuf *m = ctx;

	if (m->full || m->used + n >= m->size) {
		m->full = 1;
		return;
	}
	memcpy(m->p + m->used, p, n);
	m->used += n;
}

size_t json_escape(const char *s, size_t len, char *out, size_t size)
{
	struct membuf m = { out, size, 0, 0 };
	size_t need = escape(s, len, to_mem, &m);

	if (size)
		out[m.used] = '\0';
	return need;
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = 1;
}

static void indent(struct json *j)
{
	int i;

	fputc('\n', j->f);
	for (i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Before any value: the comma and newline it needs, unless it follows its
 * key. */
static void before_value(struct json *j)
{
	if (j->key_pending) {
		j->key_pending = 0;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = 0;
	if (!j->oneline[j->depth])
		indent(j);
}

static void open_(struct json *j, char c)
{
	before_value(j);
	if (j->depth + 1 >= JSON_MAX_DEPTH) {
		j->bad = 1;
		fputs("null", j->f);
		return;
	}
	fputc(c, j->f);
	j->depth++;
	j->first[j->depth] = 1;
	j->oneline[j->depth] = j->oneline[j->depth - 1] || j->oneline_next;
	j->oneline_next = 0;
}

static void close_(struct json *j, char c)
{
	if (j->depth == 0) {
		j->bad = 1;
		return;
	}
	j->depth--;
	if (!j->first[j->depth + 1] && !j->oneline[j->depth + 1])
		indent(j);
	fputc(c, j->f);
}

void json_object_begin(struct json *j)
{
	open_(j, '{');
}

void json_object_end(struct json *j)
{
	close_(j, '}');
}

void json_array_begin(struct json *j)
{
	open_(j, '[');
}

void json_array_end(struct json *j)
{
	close_(j, ']');
}

void json_oneline(struct json *j)
{
	j->oneline_next = 1;
}

void json_key(struct json *j, const char *key)
{
	before_value(j);
	fputc('"', j->f);
	put_escaped(key, strlen(key), j->f);
	fputs(j->oneline[j->depth] ? "\":" : "\": ", j->f);
	j->key_pending = 1;
}

void json_string_n(struct json *j, const char *s, size_t len)
{
	before_value(j);
	fputc('"', j->f);
	put_escaped(s, len, j->f);
	fputc('"', j->f);
}

void json_string(struct json *j, const char *s)
{
	if (!s)
		json_null(j);
	else
		json_string_n(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
	before_value(j);
	fprintf(j->f, "%" PRId64, v);
}

void json_uint(struct json *j, uint64_t v)
{
	before_value(j);
	fprintf(j->f, "%" PRIu64, v);
}

void json_double(struct json *j, double v)
{
	char buf[40];
	int prec;

	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	/* 17 significant digits always read back exactly; fewer usually do
	 * and are what a person wrote (0.01, not 0.01000000000000000021). */
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(buf, sizeof(buf), "%.17g", v);
	before_value(j);
	fputs(buf, j->f);
}

void json_decimal(struct json *j, int64_t v, unsigned decimals)
{
	uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v, scale = 1, frac;
	char digits[24];
	unsigned k;
	int n;

	if (decimals > 18)
		decimals = 18;
	for (k = 0; k < decimals; k++)
		scale *= 10;
	frac = mag % scale;
	before_value(j);
	fprintf(j->f, "%s%" PRIu64, v < 0 ? "-" : "", mag / scale);
	if (!frac)
		return;
	n = snprintf(digits, sizeof(digits), "%0*" PRIu64, (int)decimals, frac);
	while (n > 0 && digits[n - 1] == '0')
		n--;
	fputc('.', j->f);
	fwrite(digits, 1, (size_t)n, j->f);
}

void json_bool(struct json *j, int v)
{
	before_value(j);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
	before_value(j);
	fputs("null", j->f);
}

void json_member_string(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_string(j, s);
}

void json_member_int(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void json_member_uint(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_uint(j, v);
}

void json_member_double(struct json *j, const char *key, double v)
{
	json_key(j, key);
	json_double(j, v);
}

int json_finish(struct json *j)
{
	fputc('\n', j->f);
	return j->depth || j->bad ? -EINVAL : 0;
}
