/* py_code.c - code-object cache and symbolization of raw stacks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/bytes.h"
#include "pyspyc/clock.h"
#include "pyspyc/proc.h"
#include "pyspyc/py_code.h"
#include "pyspyc/py_lines.h"
#include "pyspyc/recent.h"
#include "pyspyc/utf8.h"
#include "pyspyc_abi.h"

#define CODE_CACHE_CAP 8192      /* power of two */
#define FILE_CACHE_CAP 4096      /* power of two */
#define FIRST_UNIQUE 1024        /* code objects checked per sample, to start */
#define MAX_UNIQUE (1u << 22)    /* ... at most (a sample's frames are fewer) */
#define MAX_PREFETCH 256         /* code windows read with the next sample */
#define MOVED_CODES 16           /* addresses lately found holding another code object */
#define MAX_NAME_CHARS 1024      /* longer names are cut, visibly */
#define MAX_LINETABLE (256 * 1024)
#define LINE_CACHE 4
/* New code objects are resolved from one read of everything they name
 * (stage_code): each name with this many bytes past its header, the
 * line table with STAGE_LINES, the bytecode whole up to STAGE_CODE.
 * Longer ones read the rest on their own. */
#define STAGE_NAME 128
#define STAGE_FILE 256
#define STAGE_LINES 1024
#define STAGE_CODE (16 * 1024)
#define STAGE_RANGES 256
#define STAGE_BYTES (512 * 1024)
/* Cached code objects a sample's stacks may use before their check: see
 * check_codes. */
#define MAX_OWED 256
#define MEMO_SLOTS 64            /* threads whose last stack is remembered */
/* Deeper stacks are not remembered.  A memo's arrays grow to the deepest
 * stack its thread had (first 64 frames), so a host of shallow threads
 * keeps little, and a deep one (a web framework's middleware, recursion)
 * is still handled in one comparison a sample. */
#define MEMO_DEPTH 4096
#define MEMO_DEPTH_MIN 64
#define NO_FRAME UINT32_MAX
#define NO_STACK UINT32_MAX      /* a memo's stack not counted yet (settle) */
/* How long a memo's frames go without their code objects being checked
 * (see memo_keep). */
#define MEMO_TRUST_NS (50 * 1000000LL)
/* A code object met for the first time vouches for the frames of a sample
 * by itself only when its window was read at most this long after the
 * sample's reads began (raw_sample.read_ns): see confirm_late. */
#define CODE_SPAN_NS (1000 * 1000LL)
/* co_flags of generators, coroutines (3.5+: 0x80, 0x100) and async
 * generators (3.6+: 0x200); 2.7 uses none of the last three bits. */
#define CO_GENERATOR_ANY (0x20 | 0x80 | 0x100 | 0x200)

/* s->text (and every buffer sized PY_NAME_MAX) holds a cut name whole. */
_Static_assert(PY_NAME_MAX >= MAX_NAME_CHARS * 4 + 4, "PY_NAME_MAX too small");

struct uniq_slot {
	uint64_t addr;
	uint32_t gen, idx;
};

/* A thread's last raw stack, the frame id each raw frame got and the stack
 * id it was counted under.  A thread still where it was (a loop) is counted
 * again without symbolizing; one that moved only near the top of its stack
 * symbolizes just the frames that changed. */
struct stack_memo {
	uint64_t tstate;             /* 0: empty */
	uint64_t epoch;              /* s->epoch when stored */
	int64_t checked_ns;          /* oldest check of the code entries used */
	uint64_t pinned;             /* s->nsample while this sample relies on it */
	const struct raw_thread *pin_th; /* ...for that thread's stack */
	uint32_t depth, flags, id;
	uint32_t nroot, root[2];
	uint32_t cap;                /* room in frames[], fid[] and fps[] */
	int has_fps;                 /* fps[] holds the frames' fingerprints */
	struct raw_frame *frames;
	uint32_t *fid;               /* frame id, NO_FRAME when left out */
	uint32_t *fps;               /* raw_sample.fps of the frames */
};

/* What must stay the same for a cached entry to still describe the code
 * object at its address. */
struct fingerprint {
	uint64_t type, size, filename, name, qualname, linetable;
	int32_t firstlineno;
};

struct code_entry {
	uint64_t addr;                /* 0: empty slot */
	struct fingerprint fp;
	uint32_t name_id, file_id, kind;
	/* 1: a table of the stacktab was full when this code object was
	 * resolved (they never empty): its frames are dropped, counted and
	 * the option named, not torn; kept so as not to resolve it again. */
	int table_full;
	int32_t firstlineno;
	uint32_t co_flags;            /* 0 when the layout has no co_flags */
	uint32_t firsttraceable;      /* bytes */
	uint64_t code_bytes;
	int64_t checked_ns;           /* when the fingerprint last matched */
	/* mono_ns() just after the window it was resolved from was read; 0
	 * when that window was read with a sample, before its frames */
	int64_t seen_ns;
	uint64_t owed_sample;         /* s->nsample whose stacks used it unchecked */
	uint64_t pf_sample;           /* s->nsample whose prefetch list has it, */
	uint32_t pf_slot;             /* at this index */
	struct line_range *lines;
	uint32_t nlines;
	/* 3.11: offsets (bytes, ascending) of the RETURN_VALUE instructions,
	 * in the allocation of lines, after them */
	const uint32_t *rets;
	uint32_t nrets;
	/* 3.11: offsets where a caller waits in a call from the interpreter
	 * loop (the last cache entry of a CALL or BINARY_SUBSCR), after rets */
	const uint32_t *calls;
	uint32_t ncalls;
	int32_t lc_line[LINE_CACHE];  /* line -> frame id, direct-mapped */
	uint32_t lc_frame[LINE_CACHE];
};

struct file_entry {
	uint32_t full_id_plus1;       /* 0: empty */
	uint32_t display_id, kind;
};

struct py_symbolizer {
	const struct py_layout *L;
	struct rmem *mem;
	struct stacktab *tab;
	struct sym_opts o;
	uint64_t code_type;
	char root[64];                /* "/proc/PID/root" */
	char stdlib_prefix[512];

	struct code_entry *codes;
	uint32_t ncodes;
	/* The line tables the entries own, so that freeing them does not
	 * read every slot of codes (most of whose pages are never touched). */
	struct line_range **owned;
	uint32_t nowned;
	struct file_entry *files;
	uint32_t nfiles;
	uint32_t truncated_frame;
	/* Bumped whenever a cache entry is dropped, which invalidates memos. */
	uint64_t epoch;
	struct stack_memo *memo;
	int invalid;                  /* a code object of this sample did not validate */

	/* Per-sample scratch, for uniq_cap distinct code objects; grown
	 * (doubled) by a sample that has more, before any is read. */
	uint32_t uniq_cap;
	uint64_t *uniq_addr;
	struct code_entry **uniq_entry;
	uint8_t *uniq_late;           /* confirm_late's verdicts */
	uint32_t *uniq_fp;            /* the sample's fingerprint of each (raw_sample.fps) */
	struct uniq_slot *uniq_set;   /* 2 * uniq_cap slots */
	uint32_t uniq_gen;
	uint8_t *windows;             /* uniq_cap * code_size */
	const uint8_t **win;          /* each one's window */
	struct iovec *liov, *riov;
	uint32_t *stack;              /* frame ids of one thread */
	uint32_t stack_cap;
	uint32_t *fid;                /* per raw frame of one thread */
	/* Per thread of the sample: root-side frames its memo covers; room
	 * for keep_cap threads, grown with the samples. */
	uint32_t *keep;
	uint32_t keep_cap;
	/* The stack ids the last sample counted (keep_cap of room). */
	uint32_t *counted;
	uint32_t ncounted;
	uint64_t nsample;             /* samples added, from 1 */
	/* The code objects of the last sample, whose windows the walker reads
	 * in the same call as the next sample. */
	uint64_t pf_addr[MAX_PREFETCH];
	uint8_t *pf_windows;
	/* Addresses whose code object was found replaced by another (freed
	 * and the address reused), most recent first. */
	uint64_t moved[MOVED_CODES];
	uint32_t nmoved;
	struct iovec pf_liov[MAX_PREFETCH], pf_riov[MAX_PREFETCH];
	uint32_t pf_n;
	char *text;                   /* string decoding scratch */
	struct line_range *ranges;    /* line-table decoding scratch */
	size_t ranges_cap;
	uint8_t *ltab;                /* line-table bytes scratch */
	/* The walker's recheck: one code object's window, and what resolving
	 * there counted (added to the next sample's). */
	uint8_t *rc_win;
	struct sym_stats rc_stats;
	/* Remote ranges read ahead for the code objects being resolved
	 * (stage_code), each at stage_l[i].iov_base in stage_buf. */
	struct iovec stage_l[STAGE_RANGES], stage_r[STAGE_RANGES];
	uint32_t nstage;
	size_t stage_used;
	uint8_t *stage_buf;
	/* Checks put off (check_codes): the cached code objects the last
	 * sample used with no window read with it, and its stacks that used
	 * them, kept (frame ids, root first, in pend_ids) to be counted once
	 * those are checked, with the next sample or by py_sym_flush. */
	uint64_t owed[MAX_OWED];
	uint32_t nowed;
	struct pending { int64_t t_ns; size_t off; uint32_t depth; } *pend;
	uint32_t npend, pend_cap;
	uint32_t *pend_ids;
	size_t pend_used, pend_ids_cap;
	uint8_t *owed_win;            /* MAX_OWED windows, read when not prefetched */
	struct iovec owed_l[MAX_OWED], owed_r[MAX_OWED];
	/* confirm_late: frames' code pointers read again, and whose, room
	 * for cf_cap */
	struct iovec *cf_l, *cf_r;
	uint64_t *cf_val;
	uint32_t *cf_uniq;
	uint32_t cf_cap;
};

static uint32_t addr_hash(uint64_t a, uint32_t mask)
{
	return (uint32_t)(((a >> 4) * 0x9e3779b97f4a7c15ull) >> 40) & mask;
}

static void uniq_insert(struct py_symbolizer *s, uint64_t a, uint32_t idx);

/* *p resized to n elements of size bytes; 0, or -ENOMEM with *p as it was. */
static int realloc_n(void **p, size_t n, size_t size)
{
	void *q = realloc(*p, n * size);

	if (!q)
		return -ENOMEM;
	*p = q;
	return 0;
}

/* Room for twice the distinct code objects (FIRST_UNIQUE at first), the
 * uniq_addr[0..n) found so far kept in the set.  0 or -ENOMEM (nothing
 * lost). */
static int uniq_grow_to(struct py_symbolizer *s, uint32_t n)
{
	uint32_t cap = s->uniq_cap ? 2 * s->uniq_cap : FIRST_UNIQUE, i;
	size_t wsize = (size_t)s->L->code_size;
	struct uniq_slot *set;

	if (cap > MAX_UNIQUE)
		return -ENOMEM;
	if (realloc_n((void **)&s->uniq_addr, cap, sizeof(*s->uniq_addr)) ||
	    realloc_n((void **)&s->uniq_entry, cap, sizeof(*s->uniq_entry)) ||
	    realloc_n((void **)&s->uniq_late, cap, sizeof(*s->uniq_late)) ||
	    realloc_n((void **)&s->uniq_fp, cap, sizeof(*s->uniq_fp)) ||
	    realloc_n((void **)&s->windows, cap, wsize) ||
	    realloc_n((void **)&s->win, cap, sizeof(*s->win)) ||
	    realloc_n((void **)&s->liov, cap, sizeof(*s->liov)) ||
	    realloc_n((void **)&s->riov, cap, sizeof(*s->riov)))
		return -ENOMEM;
	set = calloc(2 * (size_t)cap, sizeof(*set));
	if (!set)
		return -ENOMEM;
	free(s->uniq_set);
	s->uniq_set = set;
	s->uniq_cap = cap;
	s->uniq_gen = 1;
	for (i = 0; i < n; i++)
		uniq_insert(s, s->uniq_addr[i], i);
	return 0;
}

static int uniq_grow(struct py_symbolizer *s)
{
	return uniq_grow_to(s, 0);
}

int py_sym_new(struct py_symbolizer **out, const struct py_target *t,
	       struct rmem *mem, struct stacktab *tab, const struct sym_opts *o)
{
	struct py_symbolizer *s;
	struct frame_key k = { .kind = FRAME_SPECIAL };
	int err;

	*out = NULL;
	if (py_layout_check(t->layout))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->L = t->layout;
	s->mem = mem;
	s->tab = tab;
	s->o = *o;
	s->code_type = t->code_type;
	snprintf(s->root, sizeof(s->root), "/proc/%d/root", (int)t->pid);
	snprintf(s->stdlib_prefix, sizeof(s->stdlib_prefix), "%s", t->stdlib_prefix);
	s->codes = calloc(CODE_CACHE_CAP, sizeof(*s->codes));
	s->owned = malloc(CODE_CACHE_CAP * sizeof(*s->owned));
	s->files = calloc(FILE_CACHE_CAP, sizeof(*s->files));
	s->memo = calloc(MEMO_SLOTS, sizeof(*s->memo));
	s->epoch = 1;
	s->pf_windows = malloc((size_t)MAX_PREFETCH * (size_t)s->L->code_size);
	s->rc_win = malloc((size_t)s->L->code_size);
	s->stack_cap = 65536 + 1;
	s->stack = malloc(s->stack_cap * sizeof(*s->stack));
	s->fid = malloc(s->stack_cap * sizeof(*s->fid));
	s->text = malloc(PY_NAME_MAX);
	s->ranges_cap = 65536;
	s->ranges = malloc(s->ranges_cap * sizeof(*s->ranges));
	s->ltab = malloc(MAX_LINETABLE);
	s->stage_buf = malloc(STAGE_BYTES);
	s->owed_win = malloc((size_t)MAX_OWED * (size_t)s->L->code_size);
	if (!s->codes || !s->owned || !s->files || !s->memo || !s->pf_windows || !s->rc_win ||
	    !s->stack || !s->fid || !s->text || !s->ranges || !s->ltab || !s->stage_buf ||
	    !s->owed_win || uniq_grow(s)) {
		err = -ENOMEM;
		goto out_free;
	}
	err = stacktab_string(tab, "[truncated]", 11, &k.name);
	if (!err)
		err = stacktab_string(tab, "", 0, &k.file);
	if (!err)
		err = stacktab_frame(tab, &k, &s->truncated_frame);
	if (err)
		goto out_free;
	*out = s;
	return 0;

out_free:
	py_sym_free(s);
	return err;
}

static void cache_flush(struct py_symbolizer *s)
{
	uint32_t i;

	for (i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	s->nowned = 0;
	memset(s->codes, 0, CODE_CACHE_CAP * sizeof(*s->codes));
	s->ncodes = 0;
	s->epoch++;
}

void py_sym_free(struct py_symbolizer *s)
{
	uint32_t i;

	if (!s)
		return;
	for (i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	free(s->owned);
	free(s->codes);
	free(s->files);
	for (i = 0; s->memo && i < MEMO_SLOTS; i++) {
		free(s->memo[i].frames);
		free(s->memo[i].fid);
		free(s->memo[i].fps);
	}
	free(s->memo);
	free(s->windows);
	free(s->rc_win);
	free(s->uniq_addr);
	free(s->uniq_entry);
	free(s->uniq_late);
	free(s->uniq_fp);
	free(s->cf_l);
	free(s->cf_r);
	free(s->cf_val);
	free(s->cf_uniq);
	free(s->uniq_set);
	free(s->win);
	free(s->liov);
	free(s->riov);
	free(s->keep);
	free(s->counted);
	free(s->pf_windows);
	free(s->stack);
	free(s->fid);
	free(s->text);
	free(s->ranges);
	free(s->ltab);
	free(s->stage_buf);
	free(s->owed_win);
	free(s->pend);
	free(s->pend_ids);
	free(s);
}

/* ---- reads ahead ---------------------------------------------------- */

/* Resolving a code object reads its name, its file name, its line table
 * and (3.11+) its bytecode, each a header and then its bytes: seven reads
 * one after the other.  A sample that meets new code objects (a server
 * warming up goes on meeting them for minutes) instead asks for all of
 * them at once, with a guess at each one's length (stage_code), in one
 * call; sym_read then serves the reads resolve makes from those copies
 * and reads only what lies outside them.  A guess that runs past the end
 * of a mapping fails the whole call: then nothing is staged and every
 * read is made alone, as before. */

static void stage_clear(struct py_symbolizer *s)
{
	s->nstage = 0;
	s->stage_used = 0;
}

/* The staged copy of [addr, addr+len), or NULL when no staged range
 * holds all of it. */
static const uint8_t *staged(const struct py_symbolizer *s, uint64_t addr, size_t len)
{
	uint32_t i;

	for (i = 0; i < s->nstage; i++) {
		uint64_t a = (uint64_t)(uintptr_t)s->stage_r[i].iov_base;

		/* No sums: a bogus address near the top would wrap. */
		if (addr >= a && len <= s->stage_r[i].iov_len &&
		    addr - a <= s->stage_r[i].iov_len - len)
			return (const uint8_t *)s->stage_l[i].iov_base + (addr - a);
	}
	return NULL;
}

/* Stage [addr, addr+len); already staged, or no room: nothing. */
static void stage_add(struct py_symbolizer *s, uint64_t addr, size_t len)
{
	if (!addr || !len || staged(s, addr, len))
		return;
	if (s->nstage == STAGE_RANGES || STAGE_BYTES - s->stage_used < len)
		return;
	rmem_iov(&s->stage_l[s->nstage], &s->stage_r[s->nstage], s->stage_buf + s->stage_used,
		 addr, len);
	s->nstage++;
	s->stage_used += len;
}

/* What resolve will read of the code object at addr, of fingerprint fp. */
static void stage_code(struct py_symbolizer *s, uint64_t addr, const struct fingerprint *fp)
{
	const struct py_layout *L = s->L;
	size_t str_hdr = L->str_model == PY_STR_BYTES ? (size_t)L->bytes_data
						       : (size_t)L->unicode_compact_data;

	stage_add(s, fp->qualname ? fp->qualname : fp->name, str_hdr + STAGE_NAME);
	stage_add(s, fp->filename, str_hdr + STAGE_FILE);
	stage_add(s, fp->linetable, (size_t)L->bytes_data + STAGE_LINES);
	if (L->op_return_value >= 0 && L->code_adaptive >= 0 && fp->size * 2 <= STAGE_CODE)
		stage_add(s, addr + (uint64_t)L->code_adaptive, (size_t)fp->size * 2);
}

/* Read everything staged, in one call; on failure stage nothing. */
static void stage_read(struct py_symbolizer *s)
{
	if (s->nstage && rmem_readv(s->mem, s->stage_l, s->stage_r, s->nstage))
		stage_clear(s);
}

/* rmem_read, from the staged copies when one holds the whole range. */
static int sym_read(struct py_symbolizer *s, uint64_t addr, void *buf, size_t len)
{
	const uint8_t *p = staged(s, addr, len);

	if (!p)
		return rmem_read(s->mem, addr, buf, len);
	memcpy(buf, p, len);
	return 0;
}

/* ---- strings -------------------------------------------------------- */

/* End s->text at out bytes, with "..." when the name was cut.  Returns the
 * length. */
static int text_end(struct py_symbolizer *s, size_t out, int cut)
{
	if (cut) {
		memcpy(s->text + out, "...", 3);
		out += 3;
	}
	s->text[out] = '\0';
	return (int)out;
}

/* Python 2 names are byte strings, in the source's encoding (UTF-8 in
 * practice): copy them, replacing any byte that is not part of valid UTF-8
 * with U+FFFD so that no output ever carries invalid UTF-8.  A NUL becomes
 * U+FFFD too (see read_str). */
static int read_bytes_str(struct py_symbolizer *s, uint64_t addr)
{
	const struct py_layout *L = s->L;
	uint8_t hdr[PY_LAYOUT_MAX_BYTES_HDR], raw[MAX_NAME_CHARS];
	uint64_t length, n, i = 0;
	size_t out = 0;
	int err;

	if ((size_t)L->bytes_data > sizeof(hdr))
		return -EINVAL;
	err = sym_read(s, addr, hdr, (size_t)L->bytes_data);
	if (err)
		return err;
	length = rd64(hdr, L->bytes_size);
	n = length > MAX_NAME_CHARS ? MAX_NAME_CHARS : length;
	if (n && (err = sym_read(s, addr + (uint64_t)L->bytes_data, raw, n)))
		return err;
	while (i < n) {
		uint32_t c = raw[i], need = c < 0x80 ? 0 : c >= 0xf0 && c < 0xf5 ? 3 :
				 c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : 9;
		uint32_t k;

		if (need == 0 || need == 9 || i + need >= n) {
			out += utf8_put(s->text + out, need || !c ? 0xfffd : c);
			i++;
			continue;
		}
		c &= need == 1 ? 0x1f : need == 2 ? 0x0f : 0x07;
		for (k = 1; k <= need && (raw[i + k] & 0xc0) == 0x80; k++)
			c = c << 6 | (raw[i + k] & 0x3f);
		/* Short, overlong or out-of-range sequences are replaced. */
		if (k <= need || (need == 2 && c < 0x800) || (need == 3 && (c < 0x10000 || c > 0x10ffff))) {
			out += utf8_put(s->text + out, 0xfffd);
			i++;
			continue;
		}
		out += utf8_put(s->text + out, c);
		i += need + 1;
	}
	return text_end(s, out, length > n);
}

/* Read a str object at addr as UTF-8 into s->text.  Returns the length or
 * -errno.  Names longer than MAX_NAME_CHARS are cut and end in "...".  Lone
 * surrogates become U+FFFD (utf8_put), and so does U+0000: names travel on
 * as C strings, where a NUL would silently end the name early. */
static int read_str(struct py_symbolizer *s, uint64_t addr)
{
	const struct py_layout *L = s->L;
	uint8_t hdr[PY_LAYOUT_MAX_STR_HDR], raw[MAX_NAME_CHARS * 4];
	uint32_t state, kind, i;
	uint64_t length, n, data;
	size_t out = 0;
	int err;

	if (L->str_model == PY_STR_BYTES)
		return read_bytes_str(s, addr);
	if ((size_t)L->unicode_compact_data > sizeof(hdr))
		return -EINVAL;
	err = sym_read(s, addr, hdr, (size_t)L->unicode_ascii_data);
	if (err)
		return err;
	length = rd64(hdr, L->unicode_length);
	memcpy(&state, hdr + L->unicode_state, sizeof(state));
	kind = (state >> 2) & 7;
	if (!((state >> 5) & 1) || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL; /* not a compact, ready string */
	data = addr + (uint64_t)(((state >> 6) & 1) ? L->unicode_ascii_data
						    : L->unicode_compact_data);
	n = length > MAX_NAME_CHARS ? MAX_NAME_CHARS : length;
	if (n && (err = sym_read(s, data, raw, n * kind)))
		return err;
	for (i = 0; i < n; i++) {
		uint32_t c;

		if (kind == 1)
			c = raw[i];
		else if (kind == 2)
			c = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
		else
			memcpy(&c, raw + 4 * i, 4);
		out += utf8_put(s->text + out, c ? c : 0xfffd);
	}
	return text_end(s, out, length > n);
}

/* ---- files ---------------------------------------------------------- */

/* Copy s into out (size bytes), cut if need be at a character boundary: a
 * cut through a UTF-8 sequence would leave bytes no output may carry.  A
 * sequence has at most three continuation bytes; backing up further would
 * only step over bytes that are not UTF-8 anyway. */
static void copy_text(char *out, size_t size, const char *s)
{
	size_t n = strlen(s), k;

	if (!size)
		return;
	if (n >= size) {
		n = size - 1;
		for (k = 0; k < 3 && n && ((unsigned char)s[n] & 0xc0) == 0x80; k++)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

void py_shorten_filename(const char *root, const char *file, char *out,
			 size_t size)
{
	char probe[4096 + 128];
	const char *cut = NULL, *p;

	copy_text(out, size, file);
	if (file[0] != '/')
		return;
	/* Walk up from the file's directory while it is a package; the cut
	 * lands after the first ancestor that is not one (or at "/"). */
	p = strrchr(file, '/');
	for (;;) {
		int n = (int)(p - file), fd;

		cut = p;
		if (p == file)
			break;
		/* The target names the path: look inside its root only, and
		 * never at anything but a regular file. */
		snprintf(probe, sizeof(probe), "%.*s/__init__.py", n, file);
		fd = path_open_in_root(root, probe, 1);
		if (fd < 0)
			break;
		close(fd);
		/* Up one directory. */
		while (--p > file && *p != '/')
			;
	}
	if (cut && cut[1])
		copy_text(out, size, cut + 1);
}

int py_file_kind(const char *file, const char *stdlib_prefix)
{
	const char *p;

	if (!strncmp(file, "<frozen ", 8))
		return FRAME_STDLIB;
	if (strstr(file, "/site-packages/") || strstr(file, "/dist-packages/"))
		return FRAME_LIBRARY;
	if (stdlib_prefix[0] && !strncmp(file, stdlib_prefix, strlen(stdlib_prefix)))
		return FRAME_STDLIB;
	/* Any .../lib/pythonX.Y/ or .../lib64/pythonX.Y/ tree is a standard
	 * library. */
	p = strstr(file, "/lib/python");
	if (p && p[11] >= '2' && p[11] <= '3' && p[12] == '.')
		return FRAME_STDLIB;
	p = strstr(file, "/lib64/python");
	if (p && p[13] >= '2' && p[13] <= '3' && p[14] == '.')
		return FRAME_STDLIB;
	return FRAME_APP;
}

/* The display id and kind of the file name in s->text (len bytes). */
static int resolve_file(struct py_symbolizer *s, size_t len, uint32_t *display,
			uint32_t *kind)
{
	char shown[PY_NAME_MAX];
	uint32_t full, i;
	int err;

	err = stacktab_string(s->tab, s->text, len, &full);
	if (err)
		return err;
	for (i = addr_hash(full, FILE_CACHE_CAP - 1);; i = (i + 1) & (FILE_CACHE_CAP - 1)) {
		struct file_entry *f = &s->files[i];

		if (f->full_id_plus1 == full + 1) {
			*display = f->display_id;
			*kind = f->kind;
			return 0;
		}
		if (!f->full_id_plus1)
			break;
	}
	*kind = (uint32_t)py_file_kind(s->text, s->stdlib_prefix);
	if (s->o.full_filenames) {
		*display = full;
	} else {
		py_shorten_filename(s->root, s->text, shown, sizeof(shown));
		err = stacktab_string(s->tab, shown, strlen(shown), display);
		if (err)
			return err;
	}
	if (s->nfiles >= FILE_CACHE_CAP / 2) {
		memset(s->files, 0, FILE_CACHE_CAP * sizeof(*s->files));
		s->nfiles = 0;
	}
	for (i = addr_hash(full, FILE_CACHE_CAP - 1); s->files[i].full_id_plus1;
	     i = (i + 1) & (FILE_CACHE_CAP - 1))
		;
	s->files[i] = (struct file_entry){ full + 1, *display, *kind };
	s->nfiles++;
	return 0;
}

/* ---- code objects --------------------------------------------------- */

static void fingerprint_of(const struct py_layout *L, const uint8_t *w,
			   struct fingerprint *fp)
{
	memset(fp, 0, sizeof(*fp));
	fp->type = rd64(w, L->code_ob_type);
	fp->size = L->code_ob_size >= 0 ? rd64(w, L->code_ob_size) : 0;
	fp->filename = rd64(w, L->code_filename);
	fp->name = rd64(w, L->code_name);
	fp->qualname = L->code_qualname >= 0 ? rd64(w, L->code_qualname) : 0;
	fp->linetable = rd64(w, L->code_linetable);
	fp->firstlineno = rd32(w, L->code_firstlineno);
}

/* The fingerprint as the eBPF program folds it (bpf/pyspyc_abi.h). */
static uint32_t fp_hash(const struct fingerprint *fp)
{
	return pb_fp(fp->type, fp->size, fp->filename, fp->name, fp->qualname, fp->linetable,
		     (uint32_t)fp->firstlineno);
}

static int fingerprint_eq(const struct fingerprint *a, const struct fingerprint *b)
{
	return a->type == b->type && a->size == b->size &&
	       a->filename == b->filename && a->name == b->name &&
	       a->qualname == b->qualname && a->linetable == b->linetable &&
	       a->firstlineno == b->firstlineno;
}

static struct code_entry *cache_find(struct py_symbolizer *s, uint64_t addr)
{
	uint32_t i;

	if (!addr)
		return NULL; /* the mark of an empty slot, never an entry */
	for (i = addr_hash(addr, CODE_CACHE_CAP - 1);; i = (i + 1) & (CODE_CACHE_CAP - 1)) {
		if (s->codes[i].addr == addr)
			return &s->codes[i];
		if (!s->codes[i].addr)
			return NULL;
	}
}

static int read_lines(struct py_symbolizer *s, const struct fingerprint *fp,
		      struct code_entry *e)
{
	const struct py_layout *L = s->L;
	uint8_t hdr[PY_LAYOUT_MAX_BYTES_HDR];
	uint64_t len;
	size_t n = 0;
	int err;

	if ((size_t)L->bytes_data > sizeof(hdr))
		return -EINVAL;
	err = sym_read(s, fp->linetable, hdr, (size_t)L->bytes_data);
	if (err)
		return err;
	len = rd64(hdr, L->bytes_size);
	/* A table longer than any we read (a huge generated function, or
	 * garbage the program put there) costs the frame its line numbers,
	 * not the whole sample: the code object itself checked out. */
	if (len <= MAX_LINETABLE) {
		if (len && (err = sym_read(s, fp->linetable + L->bytes_data, s->ltab, len)))
			return err;
		err = py_lines_decode(L->line_format, s->ltab, len, fp->firstlineno,
				      s->ranges, s->ranges_cap, &n);
	}
	/* A damaged table still gives the lines decoded before the damage. */
	if (err && err != -EINVAL && err != -ENOSPC)
		return err;
	e->lines = malloc((n ? n : 1) * sizeof(*e->lines));
	if (!e->lines)
		return -ENOMEM;
	memcpy(e->lines, s->ranges, n * sizeof(*e->lines));
	e->nlines = (uint32_t)n;
	return 0;
}

/* 3.11+: find the code object's return instructions (RETURN_VALUE, and
 * RETURN_CONST from 3.12; read_lines made e->lines), kept after the line
 * ranges in their allocation.  A code unit is an opcode and its argument,
 * or an inline cache entry whose first byte may be anything; only
 * instruction starts are ever looked up, and neither is ever specialized,
 * so every unit that starts with one of them is listed.  Code too long to
 * read, or that cannot be read, lists none: its frames are not checked. */
static int is_return(const struct py_layout *L, uint8_t op)
{
	return op == L->op_return_value || op == L->op_return_const;
}

/* 3.11 (the only version with is_entry; 3.12+ have shim frames): its
 * frames carry no mark of a call made from the interpreter loop, as
 * 3.12-3.13's stacktop is, so the innermost frame at a return may have
 * returned.  3.14+ have no stacktop either, but their callers' rule is
 * 3.12's (a caller at a return is torn, the innermost is not). */
static int v311(const struct py_layout *L)
{
	return L->iframe_is_entry >= 0;
}

/* 3.11: is the code unit at k + 8 where a caller waits in a call made by
 * the instruction at k? */
static int is_call_end(const struct py_layout *L, const uint8_t *code, uint64_t k,
		       uint64_t len)
{
	uint32_t j;

	if (!v311(L) || k + 8 >= len)
		return 0;
	for (j = 0; j < sizeof(L->op_call_inline) / sizeof(L->op_call_inline[0]); j++)
		if (L->op_call_inline[j] > 0 && code[k] == L->op_call_inline[j])
			return 1;
	return 0;
}

static void read_returns(struct py_symbolizer *s, uint64_t addr, struct code_entry *e)
{
	const struct py_layout *L = s->L;
	uint64_t len = e->code_bytes, k;
	uint32_t n = 0, *rets;
	struct line_range *p;

	if (L->op_return_value < 0 || L->code_adaptive < 0 || !len || len > MAX_LINETABLE ||
	    (len & 1) || sym_read(s, addr + (uint64_t)L->code_adaptive, s->ltab, len))
		return;
	for (k = 0; k < len; k += 2)
		n += is_return(L, s->ltab[k]) + is_call_end(L, s->ltab, k, len);
	if (!n)
		return;
	p = realloc(e->lines, e->nlines * sizeof(*e->lines) + n * sizeof(*rets));
	if (!p)
		return;
	e->lines = p;
	rets = (uint32_t *)(p + e->nlines);
	for (k = 0, n = 0; k < len; k += 2)
		if (is_return(L, s->ltab[k]))
			rets[n++] = (uint32_t)k;
	e->rets = rets;
	e->nrets = n;
	e->calls = rets + n;
	for (k = 0; k < len; k += 2)
		if (is_call_end(L, s->ltab, k, len))
			rets[n++] = (uint32_t)(k + 8);
	e->ncalls = n - e->nrets;
}

/* Is off in v[0..n) (ascending)? */
static int in_offsets(const uint32_t *v, uint32_t n, uint64_t off)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v[mid] == off)
			return 1;
		if (v[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Is off one of e's return instructions? */
static int at_return(const struct code_entry *e, uint64_t off)
{
	return in_offsets(e->rets, e->nrets, off);
}

/* Where a frame (3.11+) stands in its code, by entry e: */
enum frame_pos {
	FRAME_NOT_STARTED,  /* pushed, not started: no line yet (CPython
			     * leaves it out of tracebacks too) */
	FRAME_FIRST_LINE,   /* 3.11, 3.12: one code unit before the first
			     * instruction, where a frame starts: CPython
			     * reports the first line */
	FRAME_AT,           /* at *off, a byte offset into the code */
	FRAME_OUTSIDE,      /* an instruction outside the code's bytes: the
			     * frame was read while being reused (its code
			     * and position from two calls), or e describes a
			     * code object since freed */
};

static enum frame_pos frame_pos(const struct py_layout *L, const struct code_entry *e,
				const struct raw_frame *f, uint64_t *off)
{
	uint64_t base = f->code + (uint64_t)L->code_adaptive;

	if (f->owner != 1 && f->instr < base + e->firsttraceable)
		return FRAME_NOT_STARTED;
	if (f->instr < base)
		return base - f->instr <= 2 ? FRAME_FIRST_LINE : FRAME_OUTSIDE;
	*off = f->instr - base;
	return *off >= e->code_bytes || *off > UINT32_MAX ? FRAME_OUTSIDE : FRAME_AT;
}

/* 3.11: the innermost frame of th is at a return.  Is its caller waiting
 * in its call to it (the frame has not returned yet)?  A caller that went
 * on is at an instruction instead.  Frames called from C (a callback) are
 * not told apart: their callers wait at the calling instruction itself. */
static int caller_waits(struct py_symbolizer *s, const struct raw_sample *rs,
			const struct raw_thread *th)
{
	const struct raw_frame *a;
	const struct code_entry *ce;
	uint64_t base;

	if (th->depth < 2)
		return 1;
	a = &rs->frames[th->first + 1];
	ce = cache_find(s, a->code);
	base = a->code + (uint64_t)s->L->code_adaptive;
	return ce && a->instr >= base && in_offsets(ce->calls, ce->ncalls, a->instr - base);
}

static struct code_entry *resolve(struct py_symbolizer *s, uint64_t addr,
				  const uint8_t *w, const struct fingerprint *fp,
				  int64_t seen_ns, struct sym_stats *st);

/* Does fingerprint fp (of a window read at some address) describe a code
 * object at all? */
static int fingerprint_ok(const struct py_symbolizer *s, const struct fingerprint *fp)
{
	return fp->type && (!s->code_type || fp->type == s->code_type) &&
	       fp->size <= (64u << 20);
}

/* For the walker's recheck: the cache entry of the code object at addr,
 * resolved now when there is none (the read check_codes would make for it
 * after the walk, made before).  A cached entry is taken as it is: a code
 * object freed and its address reused is check_codes' to find.  NULL when
 * addr holds no code object: the frame was read while it was reused. */
static struct code_entry *entry_now(struct py_symbolizer *s, uint64_t addr)
{
	const struct py_layout *L = s->L;
	struct code_entry *e = cache_find(s, addr);
	struct fingerprint fp;
	int64_t seen_ns;

	if (e || !addr || (addr & 7))
		return e;
	if (rmem_read(s->mem, addr, s->rc_win, (size_t)L->code_size))
		return NULL;
	seen_ns = mono_ns();
	fingerprint_of(L, s->rc_win, &fp);
	if (!fingerprint_ok(s, &fp))
		return NULL;
	stage_code(s, addr, &fp);
	stage_read(s);
	e = resolve(s, addr, s->rc_win, &fp, seen_ns, &s->rc_stats);
	stage_clear(s);
	return e;
}

/* The walker's recheck (py_walker_set_recheck): is th's stack one
 * symbolize_frames will find torn by its two innermost frames (a code
 * object that does not validate, an instruction outside its code, or the
 * caller at a return)?  Then it is RECHECK_TORN: the walker reads the
 * thread again at once, while a good stack is still to be had; dropped
 * later, the tick would be lost.  The innermost frame at a return while
 * its caller went on (3.11) is RECHECK_RETURNED: a caller goes on only
 * once its callee has returned, so its frame was copied after the call
 * returned, and its callers', which do not change while it runs, are as
 * they were then: the stack at that moment, but for the frame that had
 * returned, which is left out (the demo app: 113 of 175 torn walks were
 * this one, each read again before).  The walker leaves it out and asks
 * again: a caller that had returned too goes the same way (a recursion of
 * small calls returns several in the time of one read), up to the
 * walker's bound (RETURNED_MAX).  A code object first met here
 * is resolved here (once; check_codes then finds it cached). */
int py_sym_stale_return(void *ctx, const struct raw_sample *rs, const struct raw_thread *th)
{
	struct py_symbolizer *s = ctx;
	const struct py_layout *L = s->L;
	uint32_t i;

	if (L->frame_model == PY_FRAMES_OBJECTS)
		return RECHECK_WHOLE;
	for (i = 0; i < th->depth && i < 2; i++) {
		const struct raw_frame *f = &rs->frames[th->first + i];
		const struct code_entry *e = entry_now(s, f->code);
		uint64_t off = 0;

		if (!e)
			return RECHECK_TORN;
		/* What symbolize_frames finds torn, by the same rules. */
		switch (frame_pos(L, e, f, &off)) {
		case FRAME_OUTSIDE:
			return RECHECK_TORN;
		case FRAME_AT:
			break;
		default:
			continue;
		}
		if (!at_return(e, off))
			continue;
		if (i > 0)
			return RECHECK_TORN;
		if (!v311(L) || th->depth < 2 ||
		    !entry_now(s, rs->frames[th->first + 1].code))
			continue;
		if (!caller_waits(s, rs, th))
			return RECHECK_RETURNED;
	}
	return 0;
}

/* Resolve the code object at addr whose window is w into a new entry. */
static struct code_entry *resolve(struct py_symbolizer *s, uint64_t addr,
				  const uint8_t *w, const struct fingerprint *fp,
				  int64_t seen_ns, struct sym_stats *st)
{
	const struct py_layout *L = s->L;
	struct code_entry *e, tmp = { .addr = addr, .fp = *fp, .seen_ns = seen_ns };
	uint32_t i;
	int len, err;

	st->code_misses++;
	/* A code object freed since its frame was sampled (the eBPF
	 * backend names it a turn later; a module's code is freed once its
	 * import ends) may keep its header, so the fingerprint matches, while
	 * its names and line table are freed and reused: the allocator's free
	 * list link in its reference count says so (pymalloc writes it there;
	 * 0 at a list's end).  A live object's count is at least 1 and at
	 * most 32 bits (3.12's immortal ones: 2^32 - 1). */
	if (L->code_ob_type >= 8) {
		uint64_t refs = rd64(w, L->code_ob_type - 8);

		if (refs == 0 || refs > UINT32_MAX)
			return NULL; /* its stacks are torn */
	}
	tmp.firstlineno = fp->firstlineno;
	/* Before 3.11 the bytecode is a separate object: no bound here. */
	tmp.code_bytes = L->code_ob_size >= 0 ? fp->size * 2 : UINT64_MAX;
	if (L->code_firsttraceable >= 0)
		tmp.firsttraceable = (uint32_t)rd32(w, L->code_firsttraceable) * 2;
	if (L->code_flags >= 0 && L->code_flags <= L->code_size - 4)
		tmp.co_flags = (uint32_t)rd32(w, L->code_flags);
	len = read_str(s, fp->qualname ? fp->qualname : fp->name);
	if (len < 0)
		goto fail;
	err = stacktab_string(s->tab, s->text, (size_t)len, &tmp.name_id);
	if (!err) {
		len = read_str(s, fp->filename);
		if (len < 0)
			goto fail;
		err = resolve_file(s, (size_t)len, &tmp.file_id, &tmp.kind);
	}
	if (!err && read_lines(s, fp, &tmp))
		goto fail;
	if (!err)
		read_returns(s, addr, &tmp);
	/* A full table is a bound hit, not an object that failed to read:
	 * the entry is kept, marked, so its frames are dropped and counted
	 * without resolving it again at every sample. */
	if (err == -ENOSPC)
		tmp.table_full = 1;
	else if (err)
		goto fail;
	for (i = 0; i < LINE_CACHE; i++)
		tmp.lc_line[i] = INT32_MIN;

	if (s->ncodes >= CODE_CACHE_CAP * 3 / 4)
		cache_flush(s);
	for (i = addr_hash(addr, CODE_CACHE_CAP - 1); s->codes[i].addr;
	     i = (i + 1) & (CODE_CACHE_CAP - 1))
		;
	e = &s->codes[i];
	*e = tmp;
	s->ncodes++;
	s->owned[s->nowned++] = e->lines; /* nowned == ncodes < CODE_CACHE_CAP */
	return e;
fail:
	free(tmp.lines);
	st->errors++;
	return NULL;
}

/* Remove addr's entry, keeping the probe chains of the others intact. */
static void cache_remove(struct py_symbolizer *s, struct code_entry *e)
{
	uint32_t mask = CODE_CACHE_CAP - 1, i = (uint32_t)(e - s->codes), j = i, k;

	for (k = 0; k < s->nowned; k++)
		if (s->owned[k] == e->lines) {
			s->owned[k] = s->owned[--s->nowned];
			break;
		}
	free(e->lines);
	memset(e, 0, sizeof(*e));
	s->ncodes--;
	s->epoch++;
	for (;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (!s->codes[j].addr)
			return;
		home = addr_hash(s->codes[j].addr, mask);
		/* Move j back to i when i lies cyclically in [home, j). */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->codes[i] = s->codes[j];
			memset(&s->codes[j], 0, sizeof(s->codes[j]));
			i = j;
		}
	}
}

/* Entry e's address holds another code object now: out of the cache,
 * and its address read with the next samples (prefetch_next). */
static void code_moved(struct py_symbolizer *s, struct code_entry *e)
{
	recent_push(s->moved, &s->nmoved, MOVED_CODES, e->addr);
	cache_remove(s, e);
}

void py_sym_prefetch(struct py_symbolizer *s, const struct iovec **l,
		     const struct iovec **r, uint32_t *n)
{
	*l = s->pf_liov;
	*r = s->pf_riov;
	*n = s->pf_n;
}

/* The per-sample set of distinct code objects: addr -> index into
 * uniq_addr[], counted only under the current generation. */
static uint32_t uniq_find(const struct py_symbolizer *s, uint64_t a)
{
	uint32_t mask = 2 * s->uniq_cap - 1, i = addr_hash(a, mask);

	for (;; i = (i + 1) & mask) {
		const struct uniq_slot *u = &s->uniq_set[i];

		if (u->gen != s->uniq_gen)
			return UINT32_MAX;
		if (u->addr == a)
			return u->idx;
	}
}

static void uniq_insert(struct py_symbolizer *s, uint64_t a, uint32_t idx)
{
	uint32_t mask = 2 * s->uniq_cap - 1, i = addr_hash(a, mask);

	while (s->uniq_set[i].gen == s->uniq_gen)
		i = (i + 1) & mask;
	s->uniq_set[i] = (struct uniq_slot){ .addr = a, .gen = s->uniq_gen, .idx = idx };
}

/* The window of e's code object read with the sample, or NULL. */
static const uint8_t *prefetched(const struct py_symbolizer *s, const struct code_entry *e)
{
	if (!e || e->pf_sample + 1 != s->nsample || e->pf_slot >= s->pf_n ||
	    s->pf_addr[e->pf_slot] != e->addr)
		return NULL;
	return s->pf_windows + (size_t)e->pf_slot * (size_t)s->L->code_size;
}

static void prefetch_add(struct py_symbolizer *s, struct code_entry *e)
{
	size_t wsize = (size_t)s->L->code_size;
	uint32_t k = s->pf_n;

	if (!e || k >= MAX_PREFETCH || e->pf_sample == s->nsample)
		return; /* not a code object, no room, or listed already */
	e->pf_sample = s->nsample;
	e->pf_slot = k;
	s->pf_addr[k] = e->addr;
	rmem_iov(&s->pf_liov[k], &s->pf_riov[k], s->pf_windows + k * wsize, e->addr, wsize);
	s->pf_n = k + 1;
}

/* The consumer's decision on thread t (py_code.h): none means count it,
 * without root frames. */
static const struct thread_pick no_pick;

static const struct thread_pick *pick_of(const struct thread_pick *pick, uint32_t t)
{
	return pick ? &pick[t] : &no_pick;
}

/* Is thread t of rs left out of this sample (torn, or skipped)? */
static int left_out(const struct raw_sample *rs, const struct thread_pick *pick, uint32_t t)
{
	return rs->threads[t].flags & RAW_TORN || (pick && pick[t].skip);
}

/* Next sample, read along with it the windows of the code objects this
 * one checked (n of them, owed ones too: their stacks wait for them), and
 * of the addresses lately found holding another code object than cached
 * (code compiled, run and dropped in a loop): a window read with the
 * sample that shows another object resolves it, where a check put off
 * can only drop the stack.  A code object the next sample checks and does
 * not find there is owed, at no read (check_codes), so windows read in
 * case beyond these (the innermost frames' code of late, objects read
 * alone lately, the frames next to those that moved) cost more pages than
 * they saved: on the demo app 88% of them went unused, a fifth of the
 * pages of a read. */
static void prefetch_next(struct py_symbolizer *s, uint32_t n)
{
	uint32_t i;

	s->pf_n = 0;
	for (i = 0; i < n; i++)
		prefetch_add(s, s->uniq_entry[i]);
	for (i = 0; i < s->nmoved; i++)
		prefetch_add(s, cache_find(s, s->moved[i]));
}

/* How many of thread t's frames, innermost first, check_codes checks: all
 * when keep is NULL; else none of a thread left out, and not the root-side
 * frames its memo keeps. */
static uint32_t frames_checked(const struct raw_sample *rs, const struct thread_pick *pick,
			       const uint32_t *keep, uint32_t t)
{
	if (!keep)
		return rs->threads[t].depth;
	return left_out(rs, pick, t) ? 0 : rs->threads[t].depth - keep[t];
}

/* A code object met for the first time, from a window read after the
 * frames, has nothing before them to vouch that it is the object they ran:
 * a frame may have returned, its code object been freed and the address
 * taken by another since.  (An embedding host's start-up: site.py's module
 * code is freed after its import and the script's functions are compiled
 * into its place; a sampler on a loaded machine, put off for milliseconds
 * between its walk and its check, named a frame of site.py after one of
 * them.)  Read within CODE_SPAN_NS of the sample, it vouches by itself: too
 * soon for that.  Read later, each frame that runs it has its code pointer
 * read again, all in one call (a batch per RMEM_MAX_IOV): a frame that
 * still runs it at that address
 * held it, alive, from its read to now, the window's moment between them.
 * Where one no longer does (it returned) or cannot be read, the object
 * vouches for none of this sample's frames: their stacks are torn, counted
 * in late_codes, and the entry is kept, for the next samples to check
 * (entries met before are vouched for by their earlier check and this one,
 * on either side of the frames). */
static void confirm_late(struct py_symbolizer *s, const struct raw_sample *rs,
			 const struct thread_pick *pick, const uint32_t *keep, uint32_t n,
			 struct sym_stats *st)
{
	const struct py_layout *L = s->L;
	const uint64_t off = (uint64_t)(L->frame_model == PY_FRAMES_OBJECTS ? L->frame_code
									: L->iframe_code);
	uint32_t i, t, k = 0, nlate = 0;

	if (!rs->read_ns)
		return; /* the backend cannot tell when it read */
	for (i = 0; i < n; i++) {
		const struct code_entry *e = s->uniq_entry[i];

		s->uniq_late[i] = e && !e->table_full && e->seen_ns > rs->read_ns &&
				  e->seen_ns - rs->read_ns > CODE_SPAN_NS;
		nlate += s->uniq_late[i];
	}
	if (!nlate)
		return;
	/* Room for every frame; with no memory, each array keeps at least
	 * the old cap, and frames past it are not confirmed. */
	if (s->cf_cap < rs->nframes &&
	    !realloc_n((void **)&s->cf_l, rs->nframes, sizeof(*s->cf_l)) &&
	    !realloc_n((void **)&s->cf_r, rs->nframes, sizeof(*s->cf_r)) &&
	    !realloc_n((void **)&s->cf_val, rs->nframes, sizeof(*s->cf_val)) &&
	    !realloc_n((void **)&s->cf_uniq, rs->nframes, sizeof(*s->cf_uniq)))
		s->cf_cap = rs->nframes;
	for (t = 0; t < rs->nthreads; t++) {
		const struct raw_thread *th = &rs->threads[t];
		uint32_t end = frames_checked(rs, pick, keep, t), f;

		for (f = 0; f < end; f++) {
			uint64_t a = rs->frames[th->first + f].code;
			uint64_t at = rs->addrs ? rs->addrs[th->first + f] : 0;
			uint32_t j = a && !(a & 7) ? uniq_find(s, a) : UINT32_MAX;

			if (j == UINT32_MAX || !s->uniq_late[j])
				continue;
			if (!at || at > UINT64_MAX - off - 8 || k == s->cf_cap) {
				s->uniq_late[j] = 2; /* no way to confirm */
				continue;
			}
			s->cf_uniq[k] = j;
			rmem_iov(&s->cf_l[k], &s->cf_r[k], &s->cf_val[k], at + off, 8);
			k++;
		}
	}
	if (k && rmem_readv(s->mem, s->cf_l, s->cf_r, k)) {
		for (i = 0; i < k; i++)
			s->uniq_late[s->cf_uniq[i]] = 2;
	} else {
		for (i = 0; i < k; i++)
			if ((L->frame_model == PY_FRAMES_OBJECTS ? s->cf_val[i]
			     : py_frame_code(L, s->cf_val[i])) != s->uniq_addr[s->cf_uniq[i]])
				s->uniq_late[s->cf_uniq[i]] = 2;
	}
	for (i = 0; i < n; i++)
		if (s->uniq_late[i] == 2) {
			s->uniq_entry[i] = NULL;
			s->invalid = 1;
			st->late_codes++;
		}
}

/* Find the distinct code objects of the frames to symbolize (those of each
 * thread pick[] counts but its keep[] root-side frames; every frame when
 * keep is NULL) and make sure each has a cache entry that still describes
 * it.  A code object
 * is alive while a frame runs it, but the address of a freed one can later
 * hold another (code compiled and dropped, or run once at start-up), so
 * every one of them is checked against its fingerprint: from its window
 * read with the sample when the last sample had it too (prefetched), else
 * with one more read.  New and changed objects are resolved.  Fills
 * s->uniq_entry (NULL: invalid).
 *
 * With pf_ok (the sample came with its prefetched windows, so the next
 * one likely will too; py_sym_add only), a cached object with no window
 * here is not read now: it is owed (s->owed), its stacks are kept aside
 * by add_thread, and both are settled with the next sample, whose read
 * brings its window (prefetch_next lists it).  A stack is counted only
 * once every code object in it has matched its entry after the stack was
 * read, as before; a thread-pool server's threads keep entering code the
 * last sample had no frame of, and that read was a third of its reads. */
static uint32_t check_codes(struct py_symbolizer *s, const struct raw_sample *rs,
			    const struct thread_pick *pick, const uint32_t *keep,
			    int pf_ok, int64_t now,
			    struct sym_stats *st)
{
	const struct py_layout *L = s->L;
	size_t wsize = (size_t)L->code_size;
	const uint8_t **win;
	uint32_t i, t, n = 0, nread = 0;
	uint64_t epoch = s->epoch;
	int64_t seen_ns = 0;

	if (++s->uniq_gen == 0) { /* wrapped: old stamps would count again */
		memset(s->uniq_set, 0, 2 * (size_t)s->uniq_cap * sizeof(*s->uniq_set));
		s->uniq_gen = 1;
	}
	for (t = 0; t < rs->nthreads; t++) {
		const struct raw_thread *th = &rs->threads[t];
		uint32_t end = frames_checked(rs, pick, keep, t);

		for (i = 0; i < end; i++) {
			uint64_t a = rs->frames[th->first + i].code;

			if (!a || (a & 7))
				continue;
			if (uniq_find(s, a) != UINT32_MAX)
				continue;
			if (n == s->uniq_cap && uniq_grow_to(s, n))
				break; /* no memory: its frames are torn */
			uniq_insert(s, a, n);
			if (rs->fps)
				s->uniq_fp[n] = rs->fps[th->first + i];
			s->uniq_addr[n++] = a;
		}
	}
	win = s->win;
	for (i = 0; i < n; i++) {
		struct code_entry *e = cache_find(s, s->uniq_addr[i]);

		s->uniq_entry[i] = e;
		win[i] = pf_ok ? prefetched(s, e) : NULL;
		if (win[i])
			continue; /* read with the sample */
		if (pf_ok && e && s->nowed < MAX_OWED) {
			e->owed_sample = s->nsample;
			s->owed[s->nowed++] = e->addr;
			continue; /* owed: win[i] NULL */
		}
		/* The sample came with each code object's fingerprint, read
		 * with its frames: one that matches the entry's is the object
		 * the entry describes, with no read. */
		if (rs->fps && e && fp_hash(&e->fp) == s->uniq_fp[i]) {
			e->checked_ns = now;
			continue; /* win[i] NULL: taken as checked */
		}
		win[i] = s->windows + i * wsize;
		rmem_iov(&s->liov[nread], &s->riov[nread], s->windows + i * wsize,
			 s->uniq_addr[i], wsize);
		nread++;
	}
	if (rmem_readv(s->mem, s->liov, s->riov, nread)) {
		/* One object went away: check them one by one. */
		for (i = 0; i < nread; i++)
			if (rmem_readv(s->mem, &s->liov[i], &s->riov[i], 1))
				memset(s->liov[i].iov_base, 0, wsize);
	}
	if (nread)
		seen_ns = mono_ns();
	s->invalid = 0;
	/* Check each against its entry, found again here: removing one moves
	 * others in the table.  Those left with none (new, or freed and its
	 * address reused) keep their window, to be resolved after, from one
	 * read of all they name. */
	for (i = 0; i < n; i++) {
		struct code_entry *e;
		struct fingerprint fp;

		if (!win[i]) { /* owed */
			s->uniq_entry[i] = cache_find(s, s->uniq_addr[i]);
			continue;
		}
		fingerprint_of(L, win[i], &fp);
		s->uniq_entry[i] = NULL;
		/* Read now, it must be the object the sample's frames ran:
		 * another since (freed, its address reused) tears them. */
		if (!fingerprint_ok(s, &fp) || (rs->fps && fp_hash(&fp) != s->uniq_fp[i])) {
			s->invalid = 1;
			win[i] = NULL;
			continue;
		}
		e = cache_find(s, s->uniq_addr[i]);
		if (e && !fingerprint_eq(&e->fp, &fp)) {
			code_moved(s, e); /* freed and reused: not the same code */
			e = NULL;
		}
		if (!e) {
			stage_code(s, s->uniq_addr[i], &fp);
			continue;
		}
		e->checked_ns = now;
		s->uniq_entry[i] = e;
		win[i] = NULL;
	}
	stage_read(s);
	for (i = 0; i < n; i++) {
		struct code_entry *e;
		struct fingerprint fp;

		if (!win[i])
			continue;
		fingerprint_of(L, win[i], &fp);
		/* A window read with the sample came before its frames. */
		e = resolve(s, s->uniq_addr[i], win[i], &fp,
			    win[i] == s->windows + i * wsize ? seen_ns : 0, st);
		if (e)
			e->checked_ns = now;
		else
			s->invalid = 1;
		s->uniq_entry[i] = e;
	}
	stage_clear(s);
	/* Removing an entry moves others in the table, and a full table is
	 * emptied: find the entries again. */
	if (s->epoch != epoch)
		for (i = 0; i < n; i++)
			if (s->uniq_entry[i])
				s->uniq_entry[i] = cache_find(s, s->uniq_addr[i]);
	confirm_late(s, rs, pick, keep, n, st);
	return n;
}

static struct code_entry *entry_for(struct py_symbolizer *s, uint64_t addr)
{
	uint32_t j = uniq_find(s, addr);

	return j == UINT32_MAX ? NULL : s->uniq_entry[j];
}

static int frame_id(struct py_symbolizer *s, struct code_entry *e, int32_t line,
		    uint32_t *id)
{
	uint32_t slot = (uint32_t)line & (LINE_CACHE - 1);
	struct frame_key k;
	int err;

	if (e->lc_line[slot] == line) {
		*id = e->lc_frame[slot];
		return 0;
	}
	k = (struct frame_key){ .name = e->name_id, .file = e->file_id,
				.line = line, .kind = e->kind };
	err = stacktab_frame(s->tab, &k, id);
	if (err)
		return err;
	e->lc_line[slot] = line;
	e->lc_frame[slot] = *id;
	return 0;
}

/* Frame ids of th's raw frames [0, end) (innermost first) into fid[],
 * NO_FRAME for a frame left out.  *oldest is lowered to the oldest check of
 * the code entries used.  Returns 0, -ESTALE for a frame whose code object
 * did not validate (freed or replaced since the frame ran it), -EBADF for
 * a frame at a place the thread's stack cannot have been (both a torn
 * stack), or -ENOSPC. */
static int symbolize_frames(struct py_symbolizer *s, const struct raw_sample *rs,
			    const struct raw_thread *th, uint32_t end, uint32_t *fid,
			    int64_t *oldest)
{
	const struct py_layout *L = s->L;
	struct code_entry *e;
	uint32_t i;

	for (i = 0; i < end; i++) {
		const struct raw_frame *f = &rs->frames[th->first + i];
		uint64_t off = 0;
		int32_t line;

		e = entry_for(s, f->code);
		fid[i] = NO_FRAME;
		if (!e)
			return -ESTALE;
		if (e->table_full)
			return -ENOSPC;
		if (e->checked_ns < *oldest)
			*oldest = e->checked_ns;
		if (L->frame_model == PY_FRAMES_OBJECTS) {
			/* f_lasti: an index (bytes, or code units in 3.10); -1
			 * before the first instruction, where CPython reports
			 * the first line. */
			int64_t lasti = (int64_t)f->instr;

			if (lasti < 0) {
				line = e->firstlineno;
				goto have_line;
			}
			if (lasti > INT32_MAX / 2)
				lasti = INT32_MAX / 2;
			off = (uint64_t)lasti * (uint64_t)L->lasti_scale;
			if (off >= e->code_bytes)
				goto outside;
		} else {
			switch (frame_pos(L, e, f, &off)) {
			case FRAME_NOT_STARTED:
				continue;
			case FRAME_FIRST_LINE:
				line = e->firstlineno;
				goto have_line;
			case FRAME_OUTSIDE:
				goto outside;
			case FRAME_AT:
				break;
			}
		}
		/* A caller waits in a call, never at a return: one there has
		 * returned, read after it did (3.12+ keep a returned frame's
		 * stack pointer, so the walker's check of stacktop does not
		 * see it).  3.11: the innermost frame at its return may be one
		 * that returned too (nothing in the frame says so), its caller
		 * gone on to other lines in the copy read: unless the caller
		 * still waits in its call.  Torn either way. */
		if (e->nrets && (i > 0 || v311(L)) && at_return(e, off) &&
		    (i > 0 || !caller_waits(s, rs, th)))
			return -EBADF;
		if (s->o.function)
			line = e->firstlineno;
		else
			line = py_lines_lookup(e->lines, e->nlines, (uint32_t)off);
have_line:
		if (!s->o.lineno)
			line = 0;
		if (line < 0)
			line = 0;
		if (frame_id(s, e, line, &fid[i]))
			return -ENOSPC;
	}
	return 0;
outside:
	/* Not a stack the thread had (frame_pos): torn, and the entry is
	 * checked again. */
	e->checked_ns = INT64_MIN / 2;
	return -EBADF;
}

/* Does th's stack end at a generator's or coroutine's frame?  That is never
 * a thread's bottom frame: read between resumptions, or after the generator
 * finished, it has no link to its caller.  The walker tells from the frame
 * itself where it can (f_gen, the frame's owner, from 3.12 the shim frame
 * every whole chain ends at) and reads the thread again; but 2.7's frame
 * objects do not name their generator, and a finished generator's frame
 * (3.6-3.10) no longer does: there its code's flags tell. */
static int bottom_is_generator(struct py_symbolizer *s, const struct raw_sample *rs,
			       const struct raw_thread *th)
{
	const struct code_entry *e;

	if (s->L->frame_model != PY_FRAMES_OBJECTS || !th->depth || th->flags & RAW_TRUNCATED)
		return 0;
	e = entry_for(s, rs->frames[th->first + th->depth - 1].code);
	return e && (e->co_flags & CO_GENERATOR_ANY);
}

/* th's stack, root first, from the frame ids of its depth raw frames:
 * p's root frames, the truncation mark, then the frames outermost first;
 * it ends at s->stack + s->stack_cap.  Returns the depth. */
static uint32_t assemble(struct py_symbolizer *s, const struct raw_thread *th,
			 const struct thread_pick *p, const uint32_t *fid)
{
	uint32_t depth = 0, i, pos = s->stack_cap;

	for (i = 0; i < th->depth && pos > 1; i++)
		if (fid[i] != NO_FRAME) {
			s->stack[--pos] = fid[i];
			depth++;
		}
	if (th->flags & RAW_TRUNCATED && pos > 0) {
		s->stack[--pos] = s->truncated_frame;
		depth++;
	}
	if (depth)
		for (i = p->nroot; i > 0 && pos > 0; i--) {
			s->stack[--pos] = p->root[i - 1];
			depth++;
		}
	return depth;
}

/* Turn one thread's raw frames into frame ids, root first, ending at
 * s->stack + s->stack_cap.  Returns the depth, -EBADF for a frame whose code
 * object did not validate (a torn stack), or -ENOSPC. */
static int symbolize(struct py_symbolizer *s, const struct raw_sample *rs,
		     const struct raw_thread *th, uint32_t *first)
{
	int64_t oldest = INT64_MAX;
	uint32_t depth;
	int err;

	if (th->depth > s->stack_cap)
		return -ENOSPC;
	err = symbolize_frames(s, rs, th, th->depth, s->fid, &oldest);
	if (err)
		return err == -ESTALE ? -EBADF : err;
	if (bottom_is_generator(s, rs, th))
		return -EBADF;
	depth = assemble(s, th, &no_pick, s->fid);
	*first = s->stack_cap - depth;
	return (int)depth;
}

int py_sym_describe(struct py_symbolizer *s, const struct raw_sample *rs,
		    const struct raw_thread *th, struct sym_frame *out, uint32_t n)
{
	struct sym_stats st = { 0 };
	struct raw_thread one = *th;
	/* The sample as this thread alone (its frames where they are): the
	 * code objects checked are its own, not every thread's once per
	 * thread described (dump of 1100 threads: 7 s of reads). */
	struct raw_sample view = *rs;
	uint32_t first = 0, k = 0;
	int depth, i;

	one.flags &= ~(uint32_t)RAW_TRUNCATED;
	view.threads = &one;
	view.nthreads = 1;
	check_codes(s, &view, NULL, NULL, 0, 0, &st);
	depth = symbolize(s, &view, &one, &first);
	if (depth < 0)
		return depth;
	/* symbolize() skipped frames that have not started; match the rest
	 * back to their raw frames, innermost first. */
	for (i = depth - 1; i >= 0 && k < n; i--) {
		const struct frame_key *fk = stacktab_frame_get(s->tab, s->stack[first + (uint32_t)i]);

		if (!fk)
			return -ENOENT;
		out[k].name = stacktab_string_get(s->tab, fk->name);
		out[k].file = stacktab_string_get(s->tab, fk->file);
		out[k].line = fk->line;
		out[k].code = 0;
		out[k].addr = 0;
		k++;
	}
	/* Raw frame i (innermost first) that symbolize kept. */
	{
		uint32_t r, j = 0;
		const struct py_layout *L = s->L;

		for (r = 0; r < th->depth && j < k; r++) {
			const struct raw_frame *f = &rs->frames[th->first + r];
			struct code_entry *e = entry_for(s, f->code);

			if (L->frame_model == PY_FRAMES_INTERP && e && f->owner != 1 &&
			    f->instr < f->code + (uint64_t)L->code_adaptive + e->firsttraceable)
				continue;
			out[j].code = f->code;
			out[j].addr = rs->addrs ? rs->addrs[th->first + r] : 0;
			j++;
		}
	}
	return (int)k;
}

static struct stack_memo *memo_for(struct py_symbolizer *s, uint64_t tstate)
{
	return &s->memo[addr_hash(tstate, MEMO_SLOTS - 1)];
}

#define MEMO_FLAGS (RAW_TRUNCATED | RAW_TORN)

/* How many of th's root-side raw frames are exactly as its memo saw them,
 * with every code object behind them still the one cached then.  A frame
 * that did not move is the same call, so its code object is alive and the
 * same; but a frame popped and pushed again at the same place with the
 * same code address and offset looks the same, so never the innermost frame
 * (it is symbolized and its code object checked at every sample: code
 * compiled and dropped in a loop comes back just so), and past
 * MEMO_TRUST_NS the memo is not used, so that its code objects are checked
 * again.  A sample that came with its code objects' fingerprints (the eBPF
 * backend reads them with the frames) keeps a frame only when its
 * fingerprint is the memo's too: a function compiled again at the same
 * address and called from the same place is told apart at once. */
static uint32_t memo_keep(const struct py_symbolizer *s, const struct stack_memo *m,
			  const struct raw_sample *rs, const struct raw_thread *th,
			  int64_t now)
{
	const struct raw_frame *a, *b;
	const uint32_t *fa = NULL, *fb = NULL;
	uint32_t k = 0, n;

	if (m->tstate != th->tstate || m->epoch != s->epoch || !m->depth ||
	    th->depth < 2 || th->depth > MEMO_DEPTH || now - m->checked_ns >= MEMO_TRUST_NS ||
	    (rs->fps && !m->has_fps))
		return 0;
	/* Usually only the innermost frame moved (a loop): one memcmp. */
	if (th->depth == m->depth && th->depth > 1 &&
	    !memcmp(&rs->frames[th->first + 1], &m->frames[1],
		    (th->depth - 1) * sizeof(*m->frames)) &&
	    (!rs->fps || !memcmp(&rs->fps[th->first + 1], &m->fps[1],
				 (th->depth - 1) * sizeof(*m->fps))))
		return th->depth - 1;
	n = th->depth - 1 < m->depth ? th->depth - 1 : m->depth;
	a = &rs->frames[th->first + th->depth - 1];
	b = &m->frames[m->depth - 1];
	if (rs->fps) {
		fa = &rs->fps[th->first + th->depth - 1];
		fb = &m->fps[m->depth - 1];
	}
	while (k < n && a[-(long)k].code == b[-(long)k].code &&
	       a[-(long)k].instr == b[-(long)k].instr && a[-(long)k].owner == b[-(long)k].owner &&
	       (!fa || fa[-(long)k] == fb[-(long)k]))
		k++;
	return k;
}

static int memo_same_shape(const struct stack_memo *m, const struct raw_thread *th,
			   const struct thread_pick *p)
{
	return m->depth == th->depth && m->flags == (th->flags & MEMO_FLAGS) &&
	       m->nroot == p->nroot && m->root[0] == p->root[0] &&
	       m->root[1] == p->root[1];
}

/* Does th's stack use, in its first `inner` frames, a code object whose
 * check this sample owes (check_codes)? */
static int uses_owed(struct py_symbolizer *s, const struct raw_sample *rs,
		     const struct raw_thread *th, uint32_t inner)
{
	uint32_t i;

	for (i = 0; i < inner; i++) {
		const struct code_entry *e = entry_for(s, rs->frames[th->first + i].code);

		if (e && e->owed_sample == s->nsample)
			return 1;
	}
	return 0;
}

/* Keep the stack ids[0..depth) of time t_ns aside until settle().  0 or
 * -ENOMEM. */
static int pend_add(struct py_symbolizer *s, const uint32_t *ids, uint32_t depth, int64_t t_ns)
{
	if (s->npend == s->pend_cap) {
		uint32_t cap = s->pend_cap ? 2 * s->pend_cap : 16;

		if (realloc_n((void **)&s->pend, cap, sizeof(*s->pend)))
			return -ENOMEM;
		s->pend_cap = cap;
	}
	if (s->pend_ids_cap - s->pend_used < depth) {
		size_t cap = s->pend_ids_cap ? 2 * s->pend_ids_cap : 4096;

		while (cap - s->pend_used < depth)
			cap *= 2;
		if (realloc_n((void **)&s->pend_ids, cap, sizeof(*s->pend_ids)))
			return -ENOMEM;
		s->pend_ids_cap = cap;
	}
	memcpy(s->pend_ids + s->pend_used, ids, depth * sizeof(*ids));
	s->pend[s->npend++] = (struct pending){ .t_ns = t_ns, .off = s->pend_used, .depth = depth };
	s->pend_used += depth;
	return 0;
}

/* The checks the last sample put off (check_codes): each owed code object
 * against its window, read with this sample (prefetched: pf_ok, and
 * py_sym_add has counted this sample in s->nsample) or else now, all in
 * one call; then the stacks kept aside are counted at their own times, or,
 * when one of those objects turned out to be another (or could not be
 * read), dropped as torn.  Returns 1 when they were dropped. */
static int settle(struct py_symbolizer *s, int pf_ok, int64_t now, struct sym_stats *st)
{
	const struct py_layout *L = s->L;
	size_t wsize = (size_t)L->code_size;
	const uint8_t *w[MAX_OWED];
	uint32_t i, nread = 0;
	int ok = 1;

	if (!s->npend) {
		s->nowed = 0;
		return 0;
	}
	for (i = 0; i < s->nowed && ok; i++) {
		struct code_entry *e = cache_find(s, s->owed[i]);

		w[i] = e && pf_ok ? prefetched(s, e) : NULL;
		if (!e)
			ok = 0; /* dropped from the cache since: nothing to vouch */
		else if (!w[i]) {
			uint8_t *buf = s->owed_win + (size_t)i * wsize;

			rmem_iov(&s->owed_l[nread], &s->owed_r[nread], buf, s->owed[i], wsize);
			w[i] = buf;
			nread++;
		}
	}
	if (ok && nread && rmem_readv(s->mem, s->owed_l, s->owed_r, nread))
		ok = 0;
	for (i = 0; i < s->nowed && ok; i++) {
		struct code_entry *e = cache_find(s, s->owed[i]);
		struct fingerprint fp;

		fingerprint_of(L, w[i], &fp);
		if (e && fingerprint_eq(&e->fp, &fp)) {
			e->checked_ns = now;
			continue;
		}
		ok = 0;
		if (e)
			code_moved(s, e); /* freed and reused: not the same code */
	}
	for (i = 0; i < s->npend; i++) {
		const struct pending *p = &s->pend[i];
		uint32_t id;

		if (!ok) {
			st->torn++;
			st->code_gone++;
		} else if (stacktab_add_at(s->tab, s->pend_ids + p->off, p->depth, p->t_ns, &id))
			st->dropped++;
		else {
			s->counted[s->ncounted++] = id;
			st->stacks++;
		}
	}
	s->npend = 0;
	s->pend_used = 0;
	s->nowed = 0;
	if (!ok)
		s->epoch++; /* memos of those stacks trusted their objects */
	return !ok;
}

int py_sym_flush(struct py_symbolizer *s, int64_t now, struct sym_stats *st)
{
	return settle(s, 0, now, st);
}

/* Room in m for depth frames (its frames kept).  0 or -ENOMEM. */
static int memo_room(struct stack_memo *m, uint32_t depth)
{
	uint32_t cap = m->cap ? m->cap : MEMO_DEPTH_MIN;

	if (depth <= m->cap)
		return 0;
	while (cap < depth)
		cap *= 2;
	if (realloc_n((void **)&m->frames, cap, sizeof(*m->frames)) ||
	    realloc_n((void **)&m->fid, cap, sizeof(*m->fid)) ||
	    realloc_n((void **)&m->fps, cap, sizeof(*m->fps)))
		return -ENOMEM;
	m->cap = cap;
	return 0;
}

/* Count one thread's stack.  Frames its memo covers keep their frame ids;
 * the rest (at least the innermost) are symbolized; a stack whose ids all
 * came out as before is counted under the memo's stack id without hashing
 * it again. */
static void add_thread(struct py_symbolizer *s, const struct raw_sample *rs,
		       const struct raw_thread *th, const struct thread_pick *p,
		       uint32_t keep, int memo_ok, int64_t t_ns, struct sym_stats *st)
{
	struct stack_memo *m = memo_for(s, th->tstate);
	uint32_t inner = th->depth - keep, depth, id;
	int64_t oldest = keep ? m->checked_ns : INT64_MAX;
	int same, pend, err;

	if (th->depth > s->stack_cap)
		err = -ENOSPC;
	else
		err = symbolize_frames(s, rs, th, inner, s->fid, &oldest);
	/* The root-side frames a memo keeps were counted whole before. */
	if (!err && !keep && bottom_is_generator(s, rs, th))
		err = -EBADF;
	if (err == -EBADF || err == -ESTALE) {
		st->torn++;
		st->code_gone += err == -ESTALE;
		return;
	}
	if (err) {
		st->dropped++;
		return;
	}
	/* Raw frame i of this stack is frame i - depth + m->depth of the
	 * memo's, counted from the root. */
	if (keep)
		memcpy(s->fid + inner, m->fid + (inner + m->depth - th->depth),
		       keep * sizeof(*s->fid));
	/* A code object in it is checked with the next sample: it is counted
	 * then (settle), and remembered now with no stack id.  The memo is
	 * used next only after that check (settle comes first; a failed one
	 * turns every memo down). */
	pend = s->nowed && uses_owed(s, rs, th, inner);
	same = !pend && keep && m->id != NO_STACK && memo_same_shape(m, th, p) &&
	       !memcmp(s->fid, m->fid, inner * sizeof(*s->fid));
	/* The memo's stack id is of the window it was counted in: after a
	 * rotation (-ESTALE) the stack is added by its frames. */
	if (same && !stacktab_add_id_at(s->tab, m->id, t_ns)) {
		id = m->id;
	} else {
		depth = assemble(s, th, p, s->fid);
		if (!depth)
			return;
		id = NO_STACK;
		if (pend ? pend_add(s, s->stack + s->stack_cap - depth, depth, t_ns)
			 : stacktab_add_at(s->tab, s->stack + s->stack_cap - depth, depth, t_ns,
					   &id)) {
			st->dropped++;
			return;
		}
	}
	if (memo_ok && th->depth <= MEMO_DEPTH &&
	    (m->pinned != s->nsample || m->pin_th == th) && !memo_room(m, th->depth)) {
		/* The root-side frames it kept are already there. */
		if (m->depth != th->depth)
			keep = 0;
		m->tstate = th->tstate;
		m->epoch = s->epoch;
		m->checked_ns = oldest;
		m->depth = th->depth;
		m->flags = th->flags & MEMO_FLAGS;
		m->nroot = p->nroot;
		m->root[0] = p->root[0];
		m->root[1] = p->root[1];
		m->id = id;
		memcpy(m->frames, &rs->frames[th->first], (th->depth - keep) * sizeof(*m->frames));
		memcpy(m->fid, s->fid, (th->depth - keep) * sizeof(*m->fid));
		/* The frames kept had the memo's fingerprints (memo_keep). */
		m->has_fps = rs->fps != NULL;
		if (rs->fps)
			memcpy(m->fps, &rs->fps[th->first], (th->depth - keep) * sizeof(*m->fps));
	}
	if (pend)
		return;
	s->counted[s->ncounted++] = id;
	st->stacks++;
}

void py_sym_counted(const struct py_symbolizer *s, const uint32_t **ids, uint32_t *n)
{
	*ids = s->counted;
	*n = s->ncounted;
}

void py_sym_add(struct py_symbolizer *s, const struct raw_sample *rs,
		const struct thread_pick *pick, int prefetched_ok, int64_t t_ns,
		struct sym_stats *st)
{
	uint64_t epoch = s->epoch;
	uint32_t n, t;

	st->code_misses += s->rc_stats.code_misses;
	st->errors += s->rc_stats.errors;
	s->rc_stats = (struct sym_stats){ 0 };
	if (rs->nthreads > s->keep_cap) {
		uint32_t cap = rs->nthreads > 2 * s->keep_cap ? rs->nthreads : 2 * s->keep_cap;
		uint32_t *k = realloc(s->keep, (size_t)cap * sizeof(*k));
		uint32_t *c = k ? realloc(s->counted, (size_t)cap * sizeof(*c)) : NULL;

		if (k)
			s->keep = k;
		if (c)
			s->counted = c;
		if (!k || !c) {
			st->errors++;
			return;
		}
		s->keep_cap = cap;
	}
	s->nsample++;
	/* The last sample's stacks that wait for checks first (their ids
	 * join its counted[], which this sample's then replace). */
	settle(s, prefetched_ok, t_ns, st); /* and nothing owed after */
	s->ncounted = 0;
	for (t = 0; t < rs->nthreads; t++) {
		const struct raw_thread *th = &rs->threads[t];
		struct stack_memo *m = memo_for(s, th->tstate);

		/* One thread a sample relies on a memo: another of the same
		 * thread state (or hash) would rewrite it under it. */
		s->keep[t] = left_out(rs, pick, t) || m->pinned == s->nsample ? 0 :
			     memo_keep(s, m, rs, th, t_ns);
		if (s->keep[t]) {
			m->pinned = s->nsample; /* no other thread may take it now */
			m->pin_th = th;
		}
	}
	/* Windows read ahead came before the frames, in the same call: they
	 * vouch for them (with the check before) only when the frames were
	 * read soon after; a sample read or handled slowly (this thread put
	 * off) reads them again, after. */
	if (prefetched_ok && rs->read_ns && mono_ns() - rs->read_ns > CODE_SPAN_NS)
		prefetched_ok = 0;
	n = check_codes(s, rs, pick, s->keep, prefetched_ok, t_ns, st);
	if (s->epoch != epoch) {
		/* A cached code object turned out to be another one: trust no
		 * memo, check every frame. */
		memset(s->keep, 0, rs->nthreads * sizeof(*s->keep));
		s->nowed = 0;
		n = check_codes(s, rs, pick, s->keep, prefetched_ok, t_ns, st);
	}
	for (t = 0; t < rs->nthreads; t++) {
		const struct raw_thread *th = &rs->threads[t];

		if (left_out(rs, pick, t) || th->depth == 0)
			continue;
		add_thread(s, rs, th, pick_of(pick, t), s->keep[t], !s->invalid, t_ns, st);
	}
	prefetch_next(s, n);
}
