/* json_read.h - a strict JSON reader for the writers' unit tests.
 *
 * Reads a whole document into a tree (struct jv) or refuses it: anything
 * RFC 8259 does not allow (trailing commas, leading zeros, raw control
 * characters, bad escapes, invalid UTF-8, unpaired surrogates, text after
 * the value) and, stricter than the RFC, duplicate keys in an object.  A
 * test that reads a writer's output with it has checked that the output is
 * JSON.  Header-only so every test can include it; not for production use
 * (recursive, no size caps beyond the depth).
 */
#ifndef PYSPYC_TEST_JSON_READ_H
#define PYSPYC_TEST_JSON_READ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JV_MAX_DEPTH 64

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type type;
	int boolean;
	double num;
	char *str;          /* JV_STR: decoded UTF-8, NUL-terminated */
	size_t len;         /* its length (it may hold NULs) */
	struct jv *items;   /* JV_ARR, JV_OBJ: the values */
	char **keys;        /* JV_OBJ: the keys, NUL-terminated */
	size_t n;
};

struct jv_in {
	const unsigned char *s;
	size_t len, pos;
};

static inline void jv_release(struct jv *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		jv_release(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static inline void jv_ws(struct jv_in *in)
{
	while (in->pos < in->len && (in->s[in->pos] == ' ' || in->s[in->pos] == '\t' ||
				     in->s[in->pos] == '\n' || in->s[in->pos] == '\r'))
		in->pos++;
}

static inline int jv_lit(struct jv_in *in, const char *word)
{
	size_t n = strlen(word);

	if (in->len - in->pos < n || memcmp(in->s + in->pos, word, n))
		return -1;
	in->pos += n;
	return 0;
}

static inline int jv_digits(struct jv_in *in)
{
	size_t start = in->pos;

	while (in->pos < in->len && in->s[in->pos] >= '0' && in->s[in->pos] <= '9')
		in->pos++;
	return in->pos > start ? 0 : -1;
}

static inline int jv_number(struct jv_in *in, struct jv *v)
{
	size_t start = in->pos;
	char buf[64];

	if (in->pos < in->len && in->s[in->pos] == '-')
		in->pos++;
	if (in->pos < in->len && in->s[in->pos] == '0')
		in->pos++;
	else if (jv_digits(in))
		return -1;
	if (in->pos < in->len && in->s[in->pos] == '.') {
		in->pos++;
		if (jv_digits(in))
			return -1;
	}
	if (in->pos < in->len && (in->s[in->pos] == 'e' || in->s[in->pos] == 'E')) {
		in->pos++;
		if (in->pos < in->len && (in->s[in->pos] == '+' || in->s[in->pos] == '-'))
			in->pos++;
		if (jv_digits(in))
			return -1;
	}
	if (in->pos - start >= sizeof(buf))
		return -1;
	memcpy(buf, in->s + start, in->pos - start);
	buf[in->pos - start] = '\0';
	v->type = JV_NUM;
	v->num = strtod(buf, NULL);
	return 0;
}

static inline int jv_hex4(struct jv_in *in, uint32_t *out)
{
	uint32_t c = 0;
	int i;

	if (in->len - in->pos < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char h = in->s[in->pos++];

		c <<= 4;
		if (h >= '0' && h <= '9')
			c |= h - '0';
		else if (h >= 'a' && h <= 'f')
			c |= h - 'a' + 10;
		else if (h >= 'A' && h <= 'F')
			c |= h - 'A' + 10;
		else
			return -1;
	}
	*out = c;
	return 0;
}

static inline size_t jv_put_utf8(char *o, uint32_t c)
{
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };
	size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4, k;

	if (n == 1) {
		o[0] = (char)c;
		return 1;
	}
	for (k = n - 1; k > 0; k--, c >>= 6)
		o[k] = (char)(0x80 | (c & 0x3f));
	o[0] = (char)(lead[n] | c);
	return n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0.  From the
 * table of well-formed sequences in RFC 3629 section 4, on purpose not the
 * writer's arithmetic: a test that shared the writer's code would share its
 * mistakes. */
static inline size_t jv_utf8(const unsigned char *s, size_t n)
{
	static const struct {
		unsigned char lo, hi, len, lo2, hi2; /* lead byte; second byte */
	} seq[] = {
		{ 0x00, 0x7f, 1, 0, 0 },       { 0xc2, 0xdf, 2, 0x80, 0xbf },
		{ 0xe0, 0xe0, 3, 0xa0, 0xbf }, { 0xe1, 0xec, 3, 0x80, 0xbf },
		{ 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf },
		{ 0xf0, 0xf0, 4, 0x90, 0xbf }, { 0xf1, 0xf3, 4, 0x80, 0xbf },
		{ 0xf4, 0xf4, 4, 0x80, 0x8f },
	};
	size_t i, k;

	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		if (s[0] < seq[i].lo || s[0] > seq[i].hi)
			continue;
		if (seq[i].len > n)
			return 0;
		if (seq[i].len > 1 && (s[1] < seq[i].lo2 || s[1] > seq[i].hi2))
			return 0;
		for (k = 2; k < seq[i].len; k++)
			if (s[k] < 0x80 || s[k] > 0xbf)
				return 0;
		return seq[i].len;
	}
	return 0;
}

/* A string at in (the opening quote next), decoded into *out / *outlen. */
static inline int jv_string(struct jv_in *in, char **out, size_t *outlen)
{
	size_t n = 0, end = in->pos + 1;
	char *o;

	/* Decoded text is never longer than its source: find where that ends. */
	while (end < in->len && in->s[end] != '"')
		end += in->s[end] == '\\' ? 2 : 1;
	o = malloc(end - in->pos + 1);
	if (!o || in->s[in->pos++] != '"')
		goto out_bad;
	for (;;) {
		unsigned char c;
		size_t k;

		if (in->pos >= in->len)
			goto out_bad;
		c = in->s[in->pos];
		if (c == '"') {
			in->pos++;
			break;
		}
		if (c < 0x20)
			goto out_bad;
		if (c != '\\') {
			k = jv_utf8(in->s + in->pos, in->len - in->pos);
			if (!k)
				goto out_bad;
			memcpy(o + n, in->s + in->pos, k);
			n += k;
			in->pos += k;
			continue;
		}
		if (++in->pos >= in->len)
			goto out_bad;
		c = in->s[in->pos++];
		switch (c) {
		case '"': case '\\': case '/':
			o[n++] = (char)c;
			break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			uint32_t cp, lo;

			if (jv_hex4(in, &cp) || (cp >= 0xdc00 && cp <= 0xdfff))
				goto out_bad;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (jv_lit(in, "\\u") || jv_hex4(in, &lo) || lo < 0xdc00 || lo > 0xdfff)
					goto out_bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			n += jv_put_utf8(o + n, cp);
			break;
		}
		default:
			goto out_bad;
		}
	}
	o[n] = '\0';
	*out = o;
	*outlen = n;
	return 0;

out_bad:
	free(o);
	return -1;
}

static inline int jv_value(struct jv_in *in, struct jv *v, int depth);

/* An array or an object: the opening bracket next. */
static inline int jv_container(struct jv_in *in, struct jv *v, int depth, int object)
{
	size_t cap = 0, i;

	v->type = object ? JV_OBJ : JV_ARR;
	in->pos++;
	jv_ws(in);
	if (in->pos < in->len && in->s[in->pos] == (object ? '}' : ']')) {
		in->pos++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;

		if (v->n == cap) {
			struct jv *items;
			char **keys;

			cap = cap ? 2 * cap : 8;
			items = realloc(v->items, cap * sizeof(*items));
			if (!items)
				return -1;
			v->items = items;
			if (object) {
				keys = realloc(v->keys, cap * sizeof(*keys));
				if (!keys)
					return -1;
				v->keys = keys;
			}
		}
		memset(&v->items[v->n], 0, sizeof(v->items[v->n]));
		if (object) {
			jv_ws(in);
			if (in->pos >= in->len || in->s[in->pos] != '"' ||
			    jv_string(in, &key, &klen))
				return -1;
			for (i = 0; i < v->n && strlen(key) == klen; i++)
				if (!strcmp(v->keys[i], key))
					break;
			if (i < v->n || strlen(key) != klen) {
				free(key);
				return -1;
			}
			v->keys[v->n] = key;
			jv_ws(in);
			if (in->pos >= in->len || in->s[in->pos++] != ':') {
				free(key);
				return -1;
			}
		}
		v->n++;
		if (jv_value(in, &v->items[v->n - 1], depth + 1))
			return -1;
		jv_ws(in);
		if (in->pos >= in->len)
			return -1;
		if (in->s[in->pos] == ',') {
			in->pos++;
			continue;
		}
		if (in->s[in->pos++] != (object ? '}' : ']'))
			return -1;
		return 0;
	}
}

static inline int jv_value(struct jv_in *in, struct jv *v, int depth)
{
	unsigned char c;

	if (depth > JV_MAX_DEPTH)
		return -1;
	jv_ws(in);
	if (in->pos >= in->len)
		return -1;
	c = in->s[in->pos];
	switch (c) {
	case '{':
		return jv_container(in, v, depth, 1);
	case '[':
		return jv_container(in, v, depth, 0);
	case '"':
		v->type = JV_STR;
		return jv_string(in, &v->str, &v->len);
	case 't':
		v->type = JV_BOOL;
		v->boolean = 1;
		return jv_lit(in, "true");
	case 'f':
		v->type = JV_BOOL;
		return jv_lit(in, "false");
	case 'n':
		v->type = JV_NULL;
		return jv_lit(in, "null");
	default:
		return jv_number(in, v);
	}
}

/* Read the document s[0..len) into *v.  Returns 0, or -1 (and *v empty)
 * when it is not JSON. */
static inline int jv_read(const char *s, size_t len, struct jv *v)
{
	struct jv_in in = { (const unsigned char *)s, len, 0 };

	memset(v, 0, sizeof(*v));
	if (jv_value(&in, v, 0))
		goto out_bad;
	jv_ws(&in);
	if (in.pos != in.len)
		goto out_bad;
	return 0;

out_bad:
	jv_release(v);
	return -1;
}

/* The member key of object o, or NULL (absent, or o is not an object). */
static inline const struct jv *jv_get(const struct jv *o, const char *key)
{
	size_t i;

	if (!o || o->type != JV_OBJ)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	return NULL;
}

/* Item i of array a, or NULL. */
static inline const struct jv *jv_at(const struct jv *a, size_t i)
{
	if (!a || a->type != JV_ARR || i >= a->n)
		return NULL;
	return &a->items[i];
}

#endif
