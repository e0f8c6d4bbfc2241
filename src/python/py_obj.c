/* py_obj.c - Python objects out of a target's memory, read safely. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/bytes.h"
#include "pyspyc/py_obj.h"
#include "pyspyc/utf8.h"

#define MAX_TYPE_NAME 64          /* bytes of tp_name read */
#define TYPE_WINDOW 512           /* bytes of a type object read */
#define TYPE_CACHE 16             /* types remembered per call */
#define MAX_INT_DIGITS 1024       /* digits converted to decimal */
#define INT_MAX_CHARS 60          /* longer ints are shown by size */
#define MAX_DICT_SLOTS (1u << 20) /* entries or slots of one dict walked */
#define DICT_BATCH 128            /* entries per read */
#define MAX_SIZE ((uint64_t)1 << 40) /* a larger length is a damaged object */
#define MAX_THREADS MAX_DICT_SLOTS /* entries of threading._active walked */
#define REPR_TEXT_BYTES (PY_OBJ_MAX_STR * 10 + 64)

/* Flag bits and kind values that have been the same in every version. */
#define CO_VARARGS 0x4
#define CO_VARKEYWORDS 0x8
#define DICT_KEYS_GENERAL 0

/* What a type is, for the builtins this module knows how to show. */
enum kind {
	K_OTHER, K_NONE, K_BOOL, K_INT, K_INT27, K_FLOAT, K_STR, K_BYTES,
	K_USTR27, K_LIST, K_TUPLE, K_DICT, K_SET, K_FROZENSET, K_CELL, K_MODULE,
	K_CODE,
};

struct type_info {
	uint64_t addr;
	uint64_t flags;
	int64_t dictoffset;
	int kind;
	char name[MAX_TYPE_NAME * 4 + 8]; /* printable */
};

struct reader {
	const struct py_layout *L;
	struct rmem *m;
	uint32_t reads;
	int py2;
	struct type_info types[TYPE_CACHE];
	uint32_t ntypes, next_type;
};

static void reader_init(struct reader *r, const struct py_target *t, struct rmem *m)
{
	memset(r, 0, sizeof(*r));
	r->L = t->layout;
	r->m = m;
	r->py2 = t->layout->str_model == PY_STR_BYTES;
}

/* An address an object (or a field of one) can be at: user space, and far
 * enough from 0 that the negative offsets of managed dicts stay positive. */
static int addr_ok(uint64_t a)
{
	return a >= 4096 && a < ((uint64_t)1 << 56);
}

static int obj_ok(uint64_t a)
{
	return addr_ok(a) && !(a & 7);
}

static int rd(struct reader *r, uint64_t addr, void *buf, size_t len)
{
	if (r->reads >= PY_OBJ_MAX_READS)
		return -E2BIG;
	if (!addr_ok(addr))
		return -EFAULT;
	r->reads++;
	return rmem_read(r->m, addr, buf, len);
}

static int rd_ptr(struct reader *r, uint64_t addr, uint64_t *v)
{
	return rd(r, addr, v, sizeof(*v));
}

static uint64_t at(uint64_t base, int32_t off)
{
	return base + (uint64_t)(int64_t)off;
}

/* ---- text ----------------------------------------------------------- */

struct sink {
	char *p;
	size_t size, len;
	size_t safe; /* longest prefix after which "..." still fits */
	int full;
};

static void sink_init(struct sink *s, char *p, size_t size)
{
	s->p = p;
	s->size = size;
	s->len = s->safe = 0;
	s->full = size == 0;
}

/* Add a token whole, or cut the text at the last token that leaves room
 * for "..." and stop. */
static void sink_put(struct sink *s, const char *t, size_t n)
{
	size_t room;

	if (s->full)
		return;
	if (s->len + n + 1 > s->size) {
		s->full = 1;
		s->len = s->safe;
		room = s->size - 1 - s->len;
		memcpy(s->p + s->len, "...", room < 3 ? room : 3);
		s->len += room < 3 ? room : 3;
		return;
	}
	memcpy(s->p + s->len, t, n);
	s->len += n;
	if (s->len + 4 <= s->size)
		s->safe = s->len;
}

static void sink_str(struct sink *s, const char *t)
{
	sink_put(s, t, strlen(t));
}

static size_t sink_end(struct sink *s)
{
	if (s->size)
		s->p[s->len] = '\0';
	return s->len;
}

/* Python's str.isprintable(), without its tables: control, format,
 * separator, surrogate, private-use and non-characters known to be
 * non-printable are escaped; unassigned code points pass (they show as a
 * replacement glyph at worst, never as a control). */
static int printable(uint32_t c)
{
	static const struct { uint32_t lo, hi; } no[] = {
		{ 0x0000, 0x001f }, { 0x007f, 0x00a0 }, { 0x00ad, 0x00ad },
		{ 0x0600, 0x0605 }, { 0x061c, 0x061c }, { 0x06dd, 0x06dd },
		{ 0x070f, 0x070f }, { 0x08e2, 0x08e2 }, { 0x1680, 0x1680 },
		{ 0x180e, 0x180e }, { 0x2000, 0x200f }, { 0x2028, 0x202f },
		{ 0x205f, 0x206f }, { 0x3000, 0x3000 }, { 0xd800, 0xf8ff },
		{ 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0xfffe, 0xffff },
		{ 0x110bd, 0x110bd }, { 0x110cd, 0x110cd }, { 0x13430, 0x1343f },
		{ 0x1bca0, 0x1bca3 }, { 0x1d173, 0x1d17a }, { 0xe0000, 0xe0fff },
		{ 0xf0000, 0xffffffff },
	};
	size_t i;

	if ((c & 0xfffe) == 0xfffe)
		return 0; /* a non-character of any plane */
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (c >= no[i].lo && c <= no[i].hi)
			return 0;
	return 1;
}

size_t py_text_format(const uint32_t *cp, size_t n, uint64_t total,
		      const char *prefix, int flags, char *out, size_t size)
{
	int bytes = flags & PY_TEXT_BYTES, quote = flags & PY_TEXT_QUOTE;
	char q = '\'', tok[16];
	struct sink s;
	size_t i;

	sink_init(&s, out, size);
	if (quote) {
		int single = 0, dbl = 0;

		for (i = 0; i < n; i++) {
			single |= cp[i] == '\'';
			dbl |= cp[i] == '"';
		}
		if (single && !dbl)
			q = '"';
		sink_str(&s, prefix);
		sink_put(&s, &q, 1);
	}
	for (i = 0; i < n && !s.full; i++) {
		uint32_t c = cp[i];
		size_t k;

		if (c == '\\')
			sink_put(&s, "\\\\", 2);
		else if (quote && c == (uint32_t)q)
			sink_put(&s, q == '\'' ? "\\'" : "\\\"", 2);
		else if (c == '\n')
			sink_put(&s, "\\n", 2);
		else if (c == '\t')
			sink_put(&s, "\\t", 2);
		else if (c == '\r')
			sink_put(&s, "\\r", 2);
		else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80) ||
			 (!bytes && !printable(c))) {
			if (c < 0x100)
				k = (size_t)snprintf(tok, sizeof(tok), "\\x%02x", c);
			else if (c < 0x10000)
				k = (size_t)snprintf(tok, sizeof(tok), "\\u%04x", c);
			else
				k = (size_t)snprintf(tok, sizeof(tok), "\\U%08x", c);
			sink_put(&s, tok, k);
		} else {
			k = utf8_put(tok, c);
			sink_put(&s, tok, k);
		}
	}
	if (quote)
		sink_put(&s, &q, 1);
	if (total > n) {
		if (quote) {
			i = (size_t)snprintf(tok, sizeof(tok), "%llu", (unsigned long long)total);
			sink_str(&s, "... (");
			sink_put(&s, tok, i);
			sink_str(&s, bytes ? " bytes)" : " chars)");
		} else {
			sink_str(&s, "...");
		}
	}
	return sink_end(&s);
}

size_t py_text_decode_utf8(const uint8_t *s, size_t len, uint32_t *cp,
			   size_t cap, size_t *used)
{
	size_t i = 0, n = 0;

	while (i < len && n < cap) {
		size_t k = utf8_seq(s + i, len - i, &cp[n]);

		if (!k) {
			cp[n] = 0xdc00 + s[i]; /* invalid or cut short */
			k = 1;
		}
		n++;
		i += k;
	}
	if (used)
		*used = i;
	return n;
}

size_t py_text_printable(const char *s, size_t len, char *out, size_t size)
{
	enum { CAP = 4096 };
	uint32_t *cp = malloc(CAP * sizeof(*cp));
	size_t n, used, w;

	if (!cp) {
		if (size)
			out[0] = '\0';
		return 0;
	}
	n = py_text_decode_utf8((const uint8_t *)s, len < CAP ? len : CAP, cp, CAP, &used);
	w = py_text_format(cp, n, len > used ? n + 1 : n, "", 0, out, size);
	free(cp);
	return w;
}

/* ---- numbers -------------------------------------------------------- */

size_t py_float_format(double v, char *out, size_t size)
{
	char buf[64], digits[32], *e;
	int prec, exp10, decpt, nd = 0, neg;
	struct sink s;
	size_t i;

	sink_init(&s, out, size);
	if (isnan(v)) {
		sink_str(&s, "nan");
		return sink_end(&s);
	}
	if (isinf(v)) {
		sink_str(&s, v < 0 ? "-inf" : "inf");
		return sink_end(&s);
	}
	/* The fewest digits that read back as v. */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	neg = buf[0] == '-';
	for (i = (size_t)neg; buf[i] && buf[i] != 'e'; i++)
		if (buf[i] >= '0' && buf[i] <= '9' && nd < (int)sizeof(digits) - 1)
			digits[nd++] = buf[i];
	e = strchr(buf, 'e');
	exp10 = e ? atoi(e + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	decpt = exp10 + 1;
	if (neg)
		sink_put(&s, "-", 1);
	if (decpt <= -4 || decpt > 16) {
		/* d[.ddd]e+XX, as Python's repr */
		sink_put(&s, digits, 1);
		if (nd > 1) {
			sink_put(&s, ".", 1);
			sink_put(&s, digits + 1, (size_t)nd - 1);
		}
		snprintf(buf, sizeof(buf), "e%c%02d", exp10 < 0 ? '-' : '+',
			 exp10 < 0 ? -exp10 : exp10);
		sink_str(&s, buf);
	} else if (decpt <= 0) {
		sink_str(&s, "0.");
		for (i = 0; i < (size_t)-decpt; i++)
			sink_put(&s, "0", 1);
		sink_put(&s, digits, (size_t)nd);
	} else if (decpt >= nd) {
		sink_put(&s, digits, (size_t)nd);
		for (i = 0; i < (size_t)(decpt - nd); i++)
			sink_put(&s, "0", 1);
		sink_str(&s, ".0");
	} else {
		sink_put(&s, digits, (size_t)decpt);
		sink_put(&s, ".", 1);
		sink_put(&s, digits + decpt, (size_t)(nd - decpt));
	}
	return sink_end(&s);
}

size_t py_int_format(const uint32_t *digits, size_t ndigits, unsigned shift,
		     int negative, size_t max_chars, char *out, size_t size)
{
	/* Base 10^9 limbs, least significant first (CPython's own method). */
	uint32_t limbs[MAX_INT_DIGITS * 31 / 29 + 2];
	size_t nl = 0, i, j, nchars;
	char buf[32];
	struct sink s;

	sink_init(&s, out, size);
	if (shift < 1 || shift > 30)
		return 0;
	for (i = 0; i < ndigits; i++)
		if (digits[i] >> shift)
			return 0;
	while (ndigits && !digits[ndigits - 1])
		ndigits--;
	if (ndigits > MAX_INT_DIGITS) {
		snprintf(buf, sizeof(buf), "%.0f",
			 floor((double)ndigits * shift * 0.30102999566398120) + 1);
		sink_str(&s, "<int of ~");
		sink_str(&s, buf);
		sink_str(&s, " digits>");
		return sink_end(&s);
	}
	for (i = ndigits; i-- > 0;) {
		uint64_t hi = digits[i];

		for (j = 0; j < nl; j++) {
			uint64_t z = ((uint64_t)limbs[j] << shift) + hi;

			hi = z / 1000000000u;
			limbs[j] = (uint32_t)(z - hi * 1000000000u);
		}
		while (hi && nl < sizeof(limbs) / sizeof(limbs[0])) {
			limbs[nl++] = (uint32_t)(hi % 1000000000u);
			hi /= 1000000000u;
		}
	}
	if (nl == 0) {
		sink_put(&s, "0", 1);
		return sink_end(&s);
	}
	nchars = (nl - 1) * 9 + (size_t)snprintf(buf, sizeof(buf), "%u", limbs[nl - 1]);
	if (nchars > max_chars) {
		snprintf(buf, sizeof(buf), "%zu", nchars);
		sink_str(&s, "<int of ");
		sink_str(&s, buf);
		sink_str(&s, " digits>");
		return sink_end(&s);
	}
	if (negative)
		sink_put(&s, "-", 1);
	snprintf(buf, sizeof(buf), "%u", limbs[nl - 1]);
	sink_str(&s, buf);
	for (i = nl - 1; i-- > 0;) {
		snprintf(buf, sizeof(buf), "%09u", limbs[i]);
		sink_put(&s, buf, 9);
	}
	return sink_end(&s);
}

/* ---- types ---------------------------------------------------------- */

/* Read a NUL-terminated string of at most cap bytes without reading past
 * the page it ends in (the next may not be mapped). */
static int read_cstr(struct reader *r, uint64_t addr, char *buf, size_t cap,
		     size_t *len)
{
	size_t got = 0;
	int err;

	while (got < cap) {
		size_t chunk = 4096 - ((addr + got) & 4095);
		char *z;

		if (chunk > cap - got)
			chunk = cap - got;
		err = rd(r, addr + got, buf + got, chunk);
		if (err)
			return err;
		z = memchr(buf + got, 0, chunk);
		if (z) {
			*len = (size_t)(z - buf);
			return 0;
		}
		got += chunk;
	}
	*len = cap;
	return 0;
}

static int kind_of_name(const struct reader *r, const char *n)
{
	static const struct { const char *name; int py3, py2; } k[] = {
		{ "NoneType", K_NONE, K_NONE },
		{ "bool", K_BOOL, K_BOOL },
		{ "int", K_INT, K_INT27 },
		{ "long", K_OTHER, K_INT },
		{ "float", K_FLOAT, K_FLOAT },
		{ "str", K_STR, K_BYTES },
		{ "bytes", K_BYTES, K_OTHER },
		{ "unicode", K_OTHER, K_USTR27 },
		{ "list", K_LIST, K_LIST },
		{ "tuple", K_TUPLE, K_TUPLE },
		{ "dict", K_DICT, K_DICT },
		{ "set", K_SET, K_SET },
		{ "frozenset", K_FROZENSET, K_FROZENSET },
		{ "cell", K_CELL, K_CELL },
		{ "module", K_MODULE, K_MODULE },
		{ "code", K_CODE, K_CODE },
	};
	size_t i;

	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (!strcmp(n, k[i].name))
			return r->py2 ? k[i].py2 : k[i].py3;
	return K_OTHER;
}

/* The type at address type, from the cache or read. */
static int type_at(struct reader *r, uint64_t type, struct type_info *ti)
{
	const struct py_layout *L = r->L;
	uint8_t win[TYPE_WINDOW];
	char raw[MAX_TYPE_NAME + 1];
	uint32_t cp[MAX_TYPE_NAME];
	size_t need = 0, len, n, i;
	int32_t offs[4] = { L->type_name, L->type_flags, L->type_dictoffset,
			    L->obj_type };
	int err;

	for (i = 0; i < r->ntypes; i++) {
		if (r->types[i].addr == type) {
			*ti = r->types[i];
			return 0;
		}
	}
	if (!obj_ok(type))
		return -EBADMSG;
	for (i = 0; i < 4; i++) {
		if (offs[i] < 0 || (size_t)offs[i] + 8 > sizeof(win))
			return -ENOTSUP;
		if ((size_t)offs[i] + 8 > need)
			need = (size_t)offs[i] + 8;
	}
	err = rd(r, type, win, need);
	if (err)
		return err;
	memset(ti, 0, sizeof(*ti));
	ti->addr = type;
	ti->flags = rd64(win, L->type_flags);
	ti->dictoffset = (int64_t)rd64(win, L->type_dictoffset);
	err = read_cstr(r, rd64(win, L->type_name), raw, MAX_TYPE_NAME, &len);
	if (err)
		return err;
	raw[len] = '\0';
	n = py_text_decode_utf8((const uint8_t *)raw, len, cp, MAX_TYPE_NAME, NULL);
	py_text_format(cp, n, len == MAX_TYPE_NAME ? n + 1 : n, "", 0, ti->name,
		       sizeof(ti->name));
	/* Only a static type can be a builtin: a class of the program may
	 * call itself "int". */
	ti->kind = (ti->flags & (uint64_t)L->tpflags_heaptype) ? K_OTHER : kind_of_name(r, raw);
	r->types[r->next_type] = *ti;
	r->next_type = (r->next_type + 1) % TYPE_CACHE;
	if (r->ntypes < TYPE_CACHE)
		r->ntypes++;
	return 0;
}

static int type_of(struct reader *r, uint64_t obj, struct type_info *ti)
{
	uint64_t type;
	int err;

	if (!obj_ok(obj))
		return -EBADMSG;
	err = rd_ptr(r, at(obj, r->L->obj_type), &type);
	if (err)
		return err;
	return type_at(r, type, ti);
}

/* ---- values --------------------------------------------------------- */

/* The digits of an int (3.x int, 2.7 long): sign, count, and the digits
 * themselves when there are at most cap. */
static int read_long(struct reader *r, uint64_t obj, uint32_t *d, size_t cap,
		     size_t *nd, int *neg)
{
	const struct py_layout *L = r->L;
	uint8_t raw[MAX_INT_DIGITS * 4];
	uint64_t head, count;
	size_t i;
	int err;

	err = rd(r, at(obj, L->long_size), &head, sizeof(head));
	if (err)
		return err;
	if (L->long_tag_shift >= 0) {
		/* 3.12+: sign in the low two bits (0 +, 1 zero, 2 -) */
		if ((head & 3) == 3)
			return -EBADMSG;
		*neg = (head & 3) == 2;
		count = head >> L->long_tag_shift;
	} else {
		int64_t sz = (int64_t)head;

		*neg = sz < 0;
		count = sz < 0 ? (uint64_t)0 - (uint64_t)sz : (uint64_t)sz;
	}
	if (count > MAX_SIZE)
		return -EBADMSG;
	*nd = (size_t)count;
	if (count > cap || count == 0)
		return 0;
	if (L->long_digit_size != 2 && L->long_digit_size != 4)
		return -ENOTSUP;
	err = rd(r, at(obj, L->long_digits), raw, count * (size_t)L->long_digit_size);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		if (L->long_digit_size == 4) {
			memcpy(&d[i], raw + 4 * i, 4);
		} else {
			uint16_t v;

			memcpy(&v, raw + 2 * i, 2);
			d[i] = v;
		}
	}
	return 0;
}

/* An int object's value when it fits in 64 bits (two's complement for a
 * negative value that fits in int64). */
static int int_value(struct reader *r, uint64_t obj, int kind, uint64_t *v,
		     int *neg)
{
	uint32_t d[4];
	size_t nd, i;
	uint64_t acc = 0;
	int err;

	if (kind == K_INT27 || (kind == K_BOOL && r->py2)) {
		int64_t iv;

		err = rd(r, at(obj, r->L->int_ival), &iv, sizeof(iv));
		*v = (uint64_t)iv;
		*neg = iv < 0;
		return err;
	}
	err = read_long(r, obj, d, 4, &nd, neg);
	if (err)
		return err;
	if (nd > 4)
		return -ERANGE;
	for (i = nd; i-- > 0;) {
		if ((acc >> (64 - r->L->long_shift)) != 0)
			return -ERANGE;
		acc = acc << r->L->long_shift | d[i];
	}
	*v = *neg ? (uint64_t)0 - acc : acc;
	return 0;
}

static int repr_int(struct reader *r, uint64_t obj, int kind, struct sink *s)
{
	uint32_t d[MAX_INT_DIGITS];
	char buf[128];
	size_t nd;
	int err, neg;

	if (kind == K_INT27) {
		uint64_t v;

		err = int_value(r, obj, kind, &v, &neg);
		if (err)
			return err;
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
		sink_str(s, buf);
		return 0;
	}
	err = read_long(r, obj, d, MAX_INT_DIGITS, &nd, &neg);
	if (err)
		return err;
	if (!py_int_format(d, nd > MAX_INT_DIGITS ? MAX_INT_DIGITS + 1 : nd,
			   (unsigned)r->L->long_shift, neg, INT_MAX_CHARS, buf, sizeof(buf))) {
		if (nd <= MAX_INT_DIGITS)
			return -EBADMSG;
		/* Too long to read: its size is all that is shown. */
		snprintf(buf, sizeof(buf), "<int of ~%.0f digits>",
			 floor((double)nd * r->L->long_shift * 0.30102999566398120) + 1);
	}
	sink_str(s, buf);
	return 0;
}

/* Where a str, bytes or 2.7 unicode object's characters are. */
struct text_ref {
	uint64_t data;
	uint64_t length;  /* characters */
	uint32_t unit;    /* bytes per character */
};

static int text_ref(struct reader *r, uint64_t obj, int kind, struct text_ref *tr)
{
	const struct py_layout *L = r->L;
	uint8_t hdr[128];
	int err;

	if (kind == K_BYTES) {
		if (L->bytes_data < 0 || (size_t)L->bytes_data > sizeof(hdr))
			return -ENOTSUP;
		err = rd(r, obj, hdr, (size_t)L->bytes_data);
		if (err)
			return err;
		tr->length = rd64(hdr, L->bytes_size);
		tr->data = at(obj, L->bytes_data);
		tr->unit = 1;
	} else if (kind == K_USTR27) {
		if (L->ustr_str < 0 || (size_t)L->ustr_str + 8 > sizeof(hdr) ||
		    (L->ustr_unit != 2 && L->ustr_unit != 4))
			return -ENOTSUP;
		err = rd(r, obj, hdr, (size_t)L->ustr_str + 8);
		if (err)
			return err;
		tr->length = rd64(hdr, L->ustr_length);
		tr->data = rd64(hdr, L->ustr_str);
		tr->unit = (uint32_t)L->ustr_unit;
	} else {
		uint32_t state, k;

		if (L->unicode_ascii_data < 0 || L->unicode_compact_data < 0 ||
		    (size_t)L->unicode_compact_data + 8 > sizeof(hdr))
			return -ENOTSUP;
		err = rd(r, obj, hdr, (size_t)L->unicode_ascii_data);
		if (err)
			return err;
		tr->length = rd64(hdr, L->unicode_length);
		memcpy(&state, hdr + L->unicode_state, sizeof(state));
		k = (state >> 2) & 7;
		if ((k != 1 && k != 2 && k != 4) || (((state >> 6) & 1) && k != 1))
			return -EBADMSG;
		tr->unit = k;
		if ((state >> 5) & 1) {
			tr->data = at(obj, ((state >> 6) & 1) ? L->unicode_ascii_data
							     : L->unicode_compact_data);
		} else {
			/* A legacy string: its data elsewhere, once "ready"
			 * (a flag before 3.12, always so since). */
			if (L->version < 0x030c && !((state >> 7) & 1))
				return -EBADMSG;
			err = rd_ptr(r, at(obj, L->unicode_compact_data), &tr->data);
			if (err)
				return err;
		}
	}
	if (tr->length > MAX_SIZE || (tr->length && !addr_ok(tr->data)))
		return -EBADMSG;
	return 0;
}

/* Up to cap characters of a text object as code points (bytes: 0..255). */
static int text_read(struct reader *r, const struct text_ref *tr, uint32_t *cp,
		     size_t cap, size_t *n)
{
	uint8_t raw[PY_OBJ_MAX_NAME * 4];
	size_t want = tr->length < cap ? (size_t)tr->length : cap, i;
	int err;

	if (want * tr->unit > sizeof(raw))
		want = sizeof(raw) / tr->unit;
	*n = want;
	if (!want)
		return 0;
	err = rd(r, tr->data, raw, want * tr->unit);
	if (err)
		return err;
	for (i = 0; i < want; i++) {
		if (tr->unit == 1) {
			cp[i] = raw[i];
		} else if (tr->unit == 2) {
			uint16_t v;

			memcpy(&v, raw + 2 * i, 2);
			cp[i] = v;
		} else {
			memcpy(&cp[i], raw + 4 * i, 4);
		}
	}
	return 0;
}

static int repr_text(struct reader *r, uint64_t obj, int kind, struct sink *s)
{
	uint32_t cp[PY_OBJ_MAX_STR];
	char buf[REPR_TEXT_BYTES];
	struct text_ref tr;
	const char *prefix = "";
	size_t n;
	int err, flags = PY_TEXT_QUOTE;

	err = text_ref(r, obj, kind, &tr);
	if (!err)
		err = text_read(r, &tr, cp, PY_OBJ_MAX_STR, &n);
	if (err)
		return err;
	if (kind == K_BYTES) {
		flags |= PY_TEXT_BYTES;
		prefix = r->py2 ? "" : "b";
	} else if (kind == K_USTR27) {
		prefix = "u";
	}
	py_text_format(cp, n, tr.length, prefix, flags, buf, sizeof(buf));
	sink_str(s, buf);
	return 0;
}

/* A str (any kind, 2.7 str or unicode) as printable text without quotes,
 * as names are shown.  2.7's byte strings are decoded as UTF-8. */
static int read_name(struct reader *r, uint64_t obj, char *out, size_t size)
{
	uint32_t raw[PY_OBJ_MAX_NAME], cp[PY_OBJ_MAX_NAME];
	struct type_info ti;
	struct text_ref tr;
	size_t n;
	int err;

	err = type_of(r, obj, &ti);
	if (err)
		return err;
	if (ti.kind != K_STR && ti.kind != K_BYTES && ti.kind != K_USTR27)
		return -EBADMSG;
	err = text_ref(r, obj, ti.kind, &tr);
	if (!err)
		err = text_read(r, &tr, raw, PY_OBJ_MAX_NAME, &n);
	if (err)
		return err;
	if (ti.kind == K_BYTES) {
		uint8_t b[PY_OBJ_MAX_NAME];
		size_t i, used;

		for (i = 0; i < n; i++)
			b[i] = (uint8_t)raw[i];
		n = py_text_decode_utf8(b, n, cp, PY_OBJ_MAX_NAME, &used);
		py_text_format(cp, n, tr.length > used ? n + 1 : n, "", 0, out, size);
	} else {
		py_text_format(raw, n, tr.length, "", 0, out, size);
	}
	return 0;
}

/* Is obj a str equal to the ASCII string want? */
static int str_eq(struct reader *r, uint64_t obj, const char *want)
{
	uint32_t cp[64];
	struct type_info ti;
	struct text_ref tr;
	size_t len = strlen(want), n, i;

	if (len > sizeof(cp) / sizeof(cp[0]) || type_of(r, obj, &ti) ||
	    (ti.kind != K_STR && ti.kind != K_BYTES && ti.kind != K_USTR27) ||
	    text_ref(r, obj, ti.kind, &tr) || tr.length != len ||
	    text_read(r, &tr, cp, len, &n) || n != len)
		return 0;
	for (i = 0; i < len; i++)
		if (cp[i] != (uint8_t)want[i])
			return 0;
	return 1;
}

/* ---- dicts ---------------------------------------------------------- */

typedef int (*entry_fn)(struct reader *r, uint64_t key, uint64_t value, void *ctx);

/* Entries [0, count) of esize bytes from entries, key and value at koff and
 * voff, or the values from values[] (a split table) when it is not 0. */
static int entries_foreach(struct reader *r, uint64_t entries, uint64_t count,
			   size_t esize, size_t koff, size_t voff,
			   uint64_t values, entry_fn fn, void *ctx)
{
	uint8_t buf[DICT_BATCH * 32];
	uint64_t vals[DICT_BATCH], i;
	int err;

	if (esize > 32 || koff + 8 > esize || voff + 8 > esize)
		return -ENOTSUP;
	for (i = 0; i < count; i += DICT_BATCH) {
		size_t b = count - i < DICT_BATCH ? (size_t)(count - i) : DICT_BATCH, j;

		err = rd(r, entries + i * esize, buf, b * esize);
		if (!err && values)
			err = rd(r, values + i * 8, vals, b * 8);
		if (err)
			return err;
		for (j = 0; j < b; j++) {
			uint64_t k = rd64(buf + j * esize, (int32_t)koff);
			uint64_t v = values ? vals[j] : rd64(buf + j * esize, (int32_t)voff);

			if (k && v && (err = fn(r, k, v, ctx)))
				return err;
		}
	}
	return 0;
}

/* The entries of a PyDictKeysObject (3.x), values from values[] when the
 * table is split. */
static int keys_foreach(struct reader *r, uint64_t keys, uint64_t values,
			entry_fn fn, void *ctx)
{
	const struct py_layout *L = r->L;
	uint8_t hdr[64];
	uint64_t size, n, ixsize, entries;
	size_t esize = (size_t)L->dk_entry_size, koff = 8, voff = 16;
	int err;

	if (L->dk_indices < 0 || (size_t)L->dk_indices > sizeof(hdr) || L->dk_nentries < 0)
		return -ENOTSUP;
	if (!obj_ok(keys))
		return -EBADMSG;
	err = rd(r, keys, hdr, (size_t)L->dk_indices);
	if (err)
		return err;
	n = rd64(hdr, L->dk_nentries);
	if (L->dict_model == PY_DICT_COMPACT) {
		size = rd64(hdr, L->dk_size);
		if (size < 8 || size > MAX_DICT_SLOTS * 2 || (size & (size - 1)))
			return -EBADMSG;
		ixsize = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		entries = keys + (uint64_t)L->dk_indices + size * ixsize;
	} else {
		unsigned log2 = hdr[L->dk_log2_size], lib = hdr[L->dk_log2_index_bytes];
		unsigned kind = hdr[L->dk_kind];

		/* index bytes: 1, 2, 4 or 8 per slot */
		if (log2 < 3 || log2 > 21 || lib < log2 || lib > log2 + 3 || kind > 2)
			return -EBADMSG;
		size = (uint64_t)1 << log2;
		entries = keys + (uint64_t)L->dk_indices + ((uint64_t)1 << lib);
		if (kind != DICT_KEYS_GENERAL) {
			/* {key, value}: str keys only, no hash */
			esize = (size_t)L->dk_unicode_entry_size;
			koff = 0;
			voff = 8;
		}
	}
	if (n > size || n > MAX_DICT_SLOTS)
		return -EBADMSG;
	if (values)
		values += (uint64_t)L->dict_values_items;
	return entries_foreach(r, entries, n, esize, koff, voff, values, fn, ctx);
}

static int dict_foreach(struct reader *r, uint64_t dict, entry_fn fn, void *ctx)
{
	const struct py_layout *L = r->L;
	struct type_info ti;
	uint8_t hdr[128];
	int err;

	err = type_of(r, dict, &ti);
	if (err)
		return err;
	if (ti.kind != K_DICT)
		return -EBADMSG;
	if (L->dict_model == PY_DICT_TABLE) {
		uint64_t mask;

		if (L->dict_table < 0 || (size_t)L->dict_table + 8 > sizeof(hdr))
			return -ENOTSUP;
		err = rd(r, dict, hdr, (size_t)L->dict_table + 8);
		if (err)
			return err;
		mask = rd64(hdr, L->dict_mask);
		if (mask >= MAX_DICT_SLOTS || ((mask + 1) & mask))
			return -EBADMSG;
		/* PyDictEntry {hash, key, value}; deleted slots keep a dummy key
		 * and no value. */
		return entries_foreach(r, rd64(hdr, L->dict_table), mask + 1,
				       (size_t)L->dk_entry_size, 8, 16, 0, fn, ctx);
	}
	if (L->dict_keys < 0 || L->dict_values < 0 ||
	    (size_t)L->dict_keys + 8 > sizeof(hdr) || (size_t)L->dict_values + 8 > sizeof(hdr))
		return -ENOTSUP;
	err = rd(r, dict, hdr, (size_t)(L->dict_keys > L->dict_values ? L->dict_keys
								     : L->dict_values) + 8);
	if (err)
		return err;
	return keys_foreach(r, rd64(hdr, L->dict_keys), rd64(hdr, L->dict_values), fn, ctx);
}

struct lookup {
	const char *want;
	uint64_t value;
};

static int lookup_fn(struct reader *r, uint64_t key, uint64_t value, void *ctx)
{
	struct lookup *lk = ctx;

	if (!str_eq(r, key, lk->want))
		return 0;
	lk->value = value;
	return 1;
}

/* The value of the str key want in dict: 0, -ENOENT, or -errno. */
static int dict_get(struct reader *r, uint64_t dict, const char *want, uint64_t *value)
{
	struct lookup lk = { want, 0 };
	int err = dict_foreach(r, dict, lookup_fn, &lk);

	if (err < 0)
		return err;
	if (!err)
		return -ENOENT;
	*value = lk.value;
	return 0;
}

/* The attribute want from obj's own __dict__ (no class attributes, no
 * descriptors: nothing is evaluated). */
static int instance_attr(struct reader *r, uint64_t obj, const char *want,
			 uint64_t *value)
{
	const struct py_layout *L = r->L;
	struct type_info ti;
	uint64_t dict = 0, values = 0, w;
	int err;

	err = type_of(r, obj, &ti);
	if (err)
		return err;
	if (L->mdict_model != PY_MDICT_NONE && (ti.flags & (uint64_t)L->tpflags_managed_dict)) {
		switch (L->mdict_model) {
		case PY_MDICT_VALUES_PTR:
			err = rd_ptr(r, at(obj, L->mdict_values), &values);
			if (!err && !values)
				err = rd_ptr(r, at(obj, L->mdict_dict), &dict);
			break;
		case PY_MDICT_TAGGED:
			err = rd_ptr(r, at(obj, L->mdict_dict), &w);
			if (err)
				break;
			if (w & 1)
				values = w + 1; /* stored less one, to tag it */
			else
				dict = w;
			break;
		case PY_MDICT_INLINE:
			err = rd_ptr(r, at(obj, L->mdict_dict), &dict);
			if (!err && !dict && (ti.flags & (uint64_t)L->tpflags_inline_values)) {
				uint8_t valid = 0;

				values = at(obj, L->mdict_values);
				err = rd(r, at(values, L->dict_values_valid), &valid, 1);
				if (!valid)
					values = 0;
			}
			break;
		default:
			return -ENOTSUP;
		}
		if (err)
			return err;
		if (values) {
			struct lookup lk = { want, 0 };
			uint64_t keys;

			/* Split values: the keys are the class's shared keys. */
			if (!(ti.flags & (uint64_t)L->tpflags_heaptype) || L->heaptype_cached_keys < 0)
				return -EBADMSG;
			err = rd_ptr(r, at(ti.addr, L->heaptype_cached_keys), &keys);
			if (!err)
				err = keys_foreach(r, keys, values, lookup_fn, &lk);
			if (err < 0)
				return err;
			if (!err)
				return -ENOENT;
			*value = lk.value;
			return 0;
		}
	} else if (ti.dictoffset > 0 && ti.dictoffset < (1 << 16)) {
		err = rd_ptr(r, obj + (uint64_t)ti.dictoffset, &dict);
		if (err)
			return err;
	}
	if (!dict)
		return -ENOENT;
	return dict_get(r, dict, want, value);
}

/* ---- py_obj_repr ---------------------------------------------------- */

static void plural(struct sink *s, const char *what, uint64_t n)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "<%s of %llu item%s>", what, (unsigned long long)n,
		 n == 1 ? "" : "s");
	sink_str(s, buf);
}

static int repr_size(struct reader *r, uint64_t obj, int32_t off, const char *what,
		     struct sink *s)
{
	int64_t n;
	int err;

	if (off < 0)
		return -ENOTSUP;
	err = rd(r, at(obj, off), &n, sizeof(n));
	if (err)
		return err;
	if (n < 0 || (uint64_t)n > MAX_SIZE)
		return -EBADMSG;
	plural(s, what, (uint64_t)n);
	return 0;
}

static int repr_float(struct reader *r, uint64_t obj, struct sink *s)
{
	char buf[64];
	double v;
	int err;

	err = rd(r, at(obj, r->L->float_fval), &v, sizeof(v));
	if (err)
		return err;
	py_float_format(v, buf, sizeof(buf));
	sink_str(s, buf);
	return 0;
}

static int repr_obj(struct reader *r, uint64_t obj, struct sink *s)
{
	const struct py_layout *L = r->L;
	struct type_info ti;
	char buf[MAX_TYPE_NAME * 4 + 64];
	uint64_t v;
	int err, neg;

	if (!obj) {
		sink_str(s, "<NULL>");
		return 0;
	}
	err = type_of(r, obj, &ti);
	if (err) {
		snprintf(buf, sizeof(buf), "<unreadable at 0x%llx>", (unsigned long long)obj);
		sink_str(s, buf);
		return err;
	}
	switch (ti.kind) {
	case K_NONE:
		sink_str(s, "None");
		break;
	case K_BOOL:
		err = int_value(r, obj, ti.kind, &v, &neg);
		if (!err && v > 1)
			err = -EBADMSG;
		if (!err)
			sink_str(s, v ? "True" : "False");
		break;
	case K_INT:
	case K_INT27:
		err = repr_int(r, obj, ti.kind, s);
		break;
	case K_FLOAT:
		err = repr_float(r, obj, s);
		break;
	case K_STR:
	case K_BYTES:
	case K_USTR27:
		err = repr_text(r, obj, ti.kind, s);
		break;
	case K_LIST:
		err = repr_size(r, obj, L->obj_var_size, "list", s);
		break;
	case K_TUPLE:
		err = repr_size(r, obj, L->obj_var_size, "tuple", s);
		break;
	case K_DICT:
		err = repr_size(r, obj, L->dict_used, "dict", s);
		break;
	case K_SET:
	case K_FROZENSET:
		err = repr_size(r, obj, L->set_used, ti.kind == K_SET ? "set" : "frozenset", s);
		break;
	default:
		snprintf(buf, sizeof(buf), "<%s at 0x%llx>", ti.name, (unsigned long long)obj);
		sink_str(s, buf);
		break;
	}
	if (err) {
		snprintf(buf, sizeof(buf), "<%s at 0x%llx: unreadable>", ti.name,
			 (unsigned long long)obj);
		sink_str(s, buf);
	}
	return err;
}

int py_obj_repr(const struct py_target *t, struct rmem *m, uint64_t obj,
		char *out, size_t size)
{
	struct reader *r;
	struct sink s;
	int err;

	if (!size)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r) {
		snprintf(out, size, "<out of memory>");
		return -ENOMEM;
	}
	reader_init(r, t, m);
	sink_init(&s, out, size);
	err = repr_obj(r, obj, &s);
	sink_end(&s);
	free(r);
	return err;
}

/* ---- frames --------------------------------------------------------- */

/* A tuple's items (at most cap). */
static int read_tuple(struct reader *r, uint64_t tuple, uint64_t *items, size_t cap,
		      size_t *n)
{
	struct type_info ti;
	int64_t size;
	int err;

	*n = 0;
	if (!tuple)
		return 0; /* absent (2.7 code objects may lack cellvars) */
	err = type_of(r, tuple, &ti);
	if (err)
		return err;
	if (ti.kind != K_TUPLE)
		return -EBADMSG;
	err = rd(r, at(tuple, r->L->obj_var_size), &size, sizeof(size));
	if (err)
		return err;
	if (size < 0 || (uint64_t)size > cap)
		return -EBADMSG;
	*n = (size_t)size;
	return size ? rd(r, at(tuple, r->L->tuple_items), items, (size_t)size * 8) : 0;
}

/* A cell's content, or the value itself when it is not a cell. */
static uint64_t cell_content(struct reader *r, uint64_t v)
{
	struct type_info ti;
	uint64_t ref;

	if (!v || type_of(r, v, &ti) || ti.kind != K_CELL ||
	    rd_ptr(r, at(v, r->L->cell_ref), &ref))
		return v;
	return ref;
}

struct frame_vars {
	uint64_t names[PY_OBJ_MAX_LOCALS];
	uint64_t values[PY_OBJ_MAX_LOCALS];
	uint8_t kinds[PY_OBJ_MAX_LOCALS];
	uint64_t cells[PY_OBJ_MAX_LOCALS], frees[PY_OBJ_MAX_LOCALS];
	char name[PY_OBJ_MAX_NAME];
};

static int emit(struct reader *r, struct frame_vars *fv, uint64_t name,
		uint64_t value, int is_arg, py_obj_local_fn cb, void *ctx)
{
	if (read_name(r, name, fv->name, sizeof(fv->name)))
		snprintf(fv->name, sizeof(fv->name), "<unreadable name>");
	return cb(fv->name, value, is_arg, ctx);
}

/* Code-object counts both frame models need. */
static int code_counts(struct reader *r, const uint8_t *cw, uint64_t *nargs)
{
	const struct py_layout *L = r->L;
	int32_t argc = rd32(cw, L->code_argcount), flags = rd32(cw, L->code_flags);
	int32_t kwc = L->code_kwonlyargcount >= 0 ? rd32(cw, L->code_kwonlyargcount) : 0;

	if (argc < 0 || kwc < 0 || argc > PY_OBJ_MAX_LOCALS || kwc > PY_OBJ_MAX_LOCALS)
		return -EBADMSG;
	*nargs = (uint64_t)argc + (uint64_t)kwc + !!(flags & CO_VARARGS) +
		 !!(flags & CO_VARKEYWORDS);
	return 0;
}

/* <= 3.10: co_varnames over f_localsplus, then cells and free variables
 * (which follow the locals in f_localsplus, each slot a cell). */
static int locals_objects(struct reader *r, struct frame_vars *fv, uint64_t frame,
			  const uint8_t *cw, py_obj_local_fn cb, void *ctx)
{
	const struct py_layout *L = r->L;
	size_t nnames, ncells = 0, nfrees = 0, i, j, total;
	int32_t nlocals = rd32(cw, L->code_nlocals);
	uint8_t used[PY_OBJ_MAX_LOCALS];
	uint64_t nargs;
	int err;

	err = code_counts(r, cw, &nargs);
	if (!err)
		err = read_tuple(r, rd64(cw, L->code_varnames), fv->names, PY_OBJ_MAX_LOCALS, &nnames);
	if (!err)
		err = read_tuple(r, rd64(cw, L->code_cellvars), fv->cells, PY_OBJ_MAX_LOCALS, &ncells);
	if (!err)
		err = read_tuple(r, rd64(cw, L->code_freevars), fv->frees, PY_OBJ_MAX_LOCALS, &nfrees);
	if (err)
		return err;
	if (nlocals < 0 || (size_t)nlocals != nnames)
		return -EBADMSG;
	total = nnames + ncells + nfrees;
	if (total > PY_OBJ_MAX_LOCALS)
		return -EBADMSG;
	if (total && (err = rd(r, at(frame, L->frame_localsplus), fv->values, total * 8)))
		return err;
	memset(used, 0, ncells);
	for (i = 0; i < nnames; i++) {
		uint64_t v = fv->values[i];

		/* An argument that a closure captures lives in a cell; the
		 * names are interned, so the same object names both. */
		for (j = 0; i < nargs && j < ncells; j++) {
			if (fv->cells[j] == fv->names[i] && !used[j]) {
				v = cell_content(r, fv->values[nnames + j]);
				used[j] = 1;
				break;
			}
		}
		err = emit(r, fv, fv->names[i], v, i < nargs, cb, ctx);
		if (err)
			return err;
	}
	for (j = 0; j < ncells + nfrees; j++) {
		if (j < ncells && used[j])
			continue;
		err = emit(r, fv, j < ncells ? fv->cells[j] : fv->frees[j - ncells],
			   cell_content(r, fv->values[nnames + j]), 0, cb, ctx);
		if (err)
			return err;
	}
	return 0;
}

/* 3.11+: co_localsplusnames and co_localspluskinds over localsplus. */
static int locals_interp(struct reader *r, struct frame_vars *fv, uint64_t frame,
			 const uint8_t *cw, py_obj_local_fn cb, void *ctx)
{
	const struct py_layout *L = r->L;
	uint64_t kinds = rd64(cw, L->code_localspluskinds), nargs;
	struct text_ref tr;
	struct type_info ti;
	size_t n, i;
	int err;

	err = code_counts(r, cw, &nargs);
	if (!err)
		err = read_tuple(r, rd64(cw, L->code_localsplusnames), fv->names,
				 PY_OBJ_MAX_LOCALS, &n);
	if (!err)
		err = type_of(r, kinds, &ti);
	if (err)
		return err;
	if (ti.kind != K_BYTES)
		return -EBADMSG;
	err = text_ref(r, kinds, K_BYTES, &tr);
	if (err)
		return err;
	if (tr.length != n)
		return -EBADMSG;
	if (n && ((err = rd(r, tr.data, fv->kinds, n)) ||
		  (err = rd(r, at(frame, L->iframe_localsplus), fv->values, n * 8))))
		return err;
	for (i = 0; i < n; i++) {
		uint64_t v = py_frame_local(L, fv->values[i]);

		if (fv->kinds[i] & L->fast_hidden)
			continue; /* an inlined comprehension's variable */
		/* A cell or free variable holds its cell once the frame has
		 * started (before that, the plain value or nothing). */
		if (fv->kinds[i] & (L->fast_cell | L->fast_free))
			v = cell_content(r, v);
		err = emit(r, fv, fv->names[i], v, i < nargs, cb, ctx);
		if (err)
			return err;
	}
	return 0;
}

int py_obj_frame_locals(const struct py_target *t, struct rmem *m,
			uint64_t frame, uint64_t code, py_obj_local_fn cb,
			void *ctx)
{
	const struct py_layout *L = t->layout;
	int32_t offs[10] = { L->code_argcount, L->code_flags, L->code_kwonlyargcount,
			     L->code_nlocals, L->code_varnames, L->code_cellvars,
			     L->code_freevars, L->code_localsplusnames,
			     L->code_localspluskinds, 0 };
	int objects = L->frame_model == PY_FRAMES_OBJECTS;
	struct frame_vars *fv;
	struct type_info ti;
	struct reader *r;
	uint8_t cw[512];
	uint64_t fcode;
	size_t need = 0, i;
	int err;

	if (!obj_ok(frame) || !obj_ok(code))
		return -EFAULT;
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (offs[i] >= 0 && (size_t)offs[i] + 8 > need)
			need = (size_t)offs[i] + 8;
	if (need > sizeof(cw) || L->code_argcount < 0 || L->code_flags < 0 ||
	    (objects ? L->frame_localsplus < 0 || L->code_varnames < 0 || L->code_nlocals < 0
		     : L->iframe_localsplus < 0 || L->code_localsplusnames < 0 ||
		       L->code_localspluskinds < 0))
		return -ENOTSUP;
	r = malloc(sizeof(*r));
	fv = malloc(sizeof(*fv));
	if (!r || !fv) {
		err = -ENOMEM;
		goto out;
	}
	reader_init(r, t, m);
	/* The frame must still run this code, and it must be code. */
	err = rd_ptr(r, at(frame, objects ? L->frame_code : L->iframe_code), &fcode);
	if (err)
		goto out;
	if (!objects)
		fcode = py_frame_code(L, fcode);
	if (fcode != code) {
		err = -ESTALE;
		goto out;
	}
	err = type_of(r, code, &ti);
	if (!err && ti.kind != K_CODE)
		err = -EBADMSG;
	if (!err)
		err = rd(r, code, cw, need);
	if (err)
		goto out;
	if (objects)
		err = locals_objects(r, fv, frame, cw, cb, ctx);
	else
		err = locals_interp(r, fv, frame, cw, cb, ctx);
out:
	free(fv);
	free(r);
	return err;
}

/* ---- thread names --------------------------------------------------- */

struct names_ctx {
	struct py_thread_name *out;
	size_t n, filled, seen;
};

static int thread_fn(struct reader *r, uint64_t key, uint64_t value, void *ctx)
{
	struct names_ctx *c = ctx;
	struct py_thread_name *tn;
	struct type_info ti;
	uint64_t ident, name;
	int neg;

	if (c->filled >= c->n || ++c->seen > MAX_THREADS)
		return 1;
	/* threading._active: {get_ident(): Thread} */
	if (type_of(r, key, &ti) ||
	    (ti.kind != K_INT && ti.kind != K_INT27) ||
	    int_value(r, key, ti.kind, &ident, &neg))
		return 0;
	if (instance_attr(r, value, r->py2 ? "_Thread__name" : "_name", &name))
		return 0;
	tn = &c->out[c->filled];
	if (read_name(r, name, tn->name, sizeof(tn->name)))
		return 0;
	tn->ident = ident;
	c->filled++;
	return 0;
}

int py_obj_thread_names(const struct py_target *t, struct rmem *m,
			struct py_thread_name *out, size_t n)
{
	const struct py_layout *L = t->layout;
	struct names_ctx c = { out, n, 0, 0 };
	uint64_t modules, mod, mdict, active;
	struct type_info ti;
	struct reader *r;
	int err;

	if (L->interp_modules < 0 || L->module_dict < 0)
		return -ENOTSUP;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	reader_init(r, t, m);
	err = rd_ptr(r, at(t->interp, L->interp_modules), &modules);
	if (err || !modules)
		goto out; /* 0: sys.modules not set up yet */
	err = dict_get(r, modules, "threading", &mod);
	if (err) {
		if (err == -ENOENT)
			err = 0; /* threading never imported */
		goto out;
	}
	err = type_of(r, mod, &ti);
	if (!err && ti.kind != K_MODULE)
		err = -EBADMSG;
	if (!err)
		err = rd_ptr(r, at(mod, L->module_dict), &mdict);
	if (!err)
		err = dict_get(r, mdict, "_active", &active);
	if (err)
		goto out_none;
	err = dict_foreach(r, active, thread_fn, &c);
	if (err < 0 && !c.filled)
		goto out_none;
	err = (int)c.filled;
	goto out;
out_none:
	/* A modules dict that reads is an answer: no threading, no names. */
	err = err == -ESRCH ? err : 0;
out:
	free(r);
	return err;
}
