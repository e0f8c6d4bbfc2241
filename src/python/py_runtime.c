/* py_runtime.c - find and validate the interpreter in a target process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/elf.h"
#include "pyspyc/py_runtime.h"

#define MAX_CANDIDATES 16
#define CACHE_FILES 16     /* binaries whose symbols a py_find_cache keeps */

static const char *const sym_names[] = { "_PyRuntime", "Py_Version", "PyCode_Type",
					 "interp_head", "_PyThreadState_Current" };
enum { S_RUNTIME, S_VERSION, S_CODE_TYPE, S_INTERP_HEAD, S_TSTATE_CUR, S_N };

/* One binary as read once: the file is known by its identity, not its
 * name, so a binary replaced on disk is read anew. */
struct cached_elf {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct elf_file *ef;      /* NULL: a free slot */
	int nsyms;                /* elf_file_symbols' result */
	uint64_t addrs[S_N];
};

struct py_find_cache {
	pthread_mutex_t lock;     /* held while an entry's ELF file is used */
	struct cached_elf e[CACHE_FILES];
	unsigned int next;        /* the slot to reuse next, round robin */
};

int py_find_cache_new(struct py_find_cache **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void py_find_cache_free(struct py_find_cache *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < CACHE_FILES; i++)
		elf_file_close(c->e[i].ef);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The cached reading of the file open on fd (which is taken: kept or
 * closed), read now if it is not there.  Called with c->lock held. */
static int cache_get(struct py_find_cache *c, int fd, struct cached_elf **out)
{
	struct cached_elf *e;
	struct stat st;
	int i, err;

	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	for (i = 0; i < CACHE_FILES; i++) {
		e = &c->e[i];
		if (e->ef && e->dev == st.st_dev && e->ino == st.st_ino &&
		    e->size == st.st_size &&
		    e->mtime.tv_sec == st.st_mtim.tv_sec &&
		    e->mtime.tv_nsec == st.st_mtim.tv_nsec &&
		    e->ctime.tv_sec == st.st_ctim.tv_sec &&
		    e->ctime.tv_nsec == st.st_ctim.tv_nsec) {
			close(fd);
			*out = e;
			return 0;
		}
	}
	e = &c->e[c->next];
	c->next = (c->next + 1) % CACHE_FILES;
	elf_file_close(e->ef);
	memset(e, 0, sizeof(*e));
	err = elf_file_open_fd(&e->ef, fd);
	if (err)
		return err;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->size = st.st_size;
	e->mtime = st.st_mtim;
	e->ctime = st.st_ctim;
	e->nsyms = elf_file_symbols(e->ef, sym_names, e->addrs, NULL, S_N);
	*out = e;
	return 0;
}

struct candidate {
	char path[4096];
	uint64_t start, offset, end, dev, ino;
	int deleted, is_exe;
};

struct scan {
	pid_t reader;       /* a live task of the process, for /proc */
	char exe[4096];
	struct candidate c[MAX_CANDIDATES];
	int n;
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Keep the first mapping of the main executable and of any file whose name
 * says it is a Python runtime. */
static int scan_map(const struct proc_map *m, void *ctx)
{
	struct scan *s = ctx;
	const char *b = base_name(m->path);
	int i;

	/* The executable and libpython (an embedder such as uWSGI's
	 * python3_plugin.so links libpython, which is mapped under its own
	 * name). */
	if (strcmp(m->path, s->exe) && strncmp(b, "libpython", 9))
		return 0;
	for (i = 0; i < s->n; i++)
		if (!strcmp(s->c[i].path, m->path))
			return 0;
	if (s->n == MAX_CANDIDATES)
		return 0;
	snprintf(s->c[s->n].path, sizeof(s->c[s->n].path), "%s", m->path);
	s->c[s->n].start = m->start;
	s->c[s->n].offset = m->offset;
	s->c[s->n].end = m->end;
	s->c[s->n].dev = m->dev;
	s->c[s->n].ino = m->ino;
	s->c[s->n].deleted = m->deleted;
	s->c[s->n].is_exe = !strcmp(m->path, s->exe);
	s->n++;
	return 0;
}

/* "python3.11", "libpython3.11.so.1.0" -> 0x030b0000; 0 if no version. */
static uint32_t version_from_name(const char *path)
{
	const char *b = base_name(path), *p = strstr(b, "python");
	unsigned int major, minor;

	if (!p || sscanf(p + 6, "%u.%u", &major, &minor) != 2 || major > 9 ||
	    minor > 99)
		return 0;
	return major << 24 | minor << 16;
}

/* The directory of the standard library, from the binary's location:
 * <prefix>/bin/pythonX.Y or <prefix>/lib/libpythonX.Y.so -> <prefix>/lib/pythonX.Y/ */
static void stdlib_prefix(struct py_target *t)
{
	char dir[4096];
	char *slash;
	unsigned int major = t->version_hex >> 24, minor = (t->version_hex >> 16) & 0xff;

	snprintf(dir, sizeof(dir), "%s", t->binary);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	/* Debian's multiarch directory: /usr/lib/x86_64-linux-gnu/libpython... */
	slash = strrchr(dir, '/');
	if (slash && strstr(slash, "-linux-"))
		*slash = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0'; /* strip bin/ or lib/ */
	snprintf(t->stdlib_prefix, sizeof(t->stdlib_prefix), "%.400s/lib/python%u.%u/",
		 dir, major, minor);
}

/* Hops validate() follows along the interpreter list to its end (one read
 * each, once per attach); a list longer than this is taken for a loop. */
#define VALIDATE_MAX_INTERPS 65536

/* Find the main interpreter and check that it looks like one: mapped, and
 * its first thread (if any) points back to it.  The runtime's list is
 * newest first: sub-interpreters (mod_wsgi's applications, the interpreters
 * module) come and go at its head, the main interpreter is the last. */
static int validate(struct py_target *t, struct rmem *m)
{
	const struct py_layout *L = t->layout;
	uint64_t interp, tstate, back, next;
	uint32_t hops;
	int err;

	err = rmem_read_ptr(m, t->runtime + L->runtime_interp_head, &interp);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	if (interp == 0)
		return -EAGAIN;
	for (hops = 0;; hops++) {
		err = rmem_read_ptr(m, interp + L->interp_next, &next);
		if (err)
			return err == -EFAULT ? -ENOEXEC : err;
		if (!next)
			break;
		if (hops == VALIDATE_MAX_INTERPS || (next & 7))
			return -ENOEXEC;
		interp = next;
	}
	err = rmem_read_ptr(m, interp + L->interp_threads_head, &tstate);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	if (tstate == 0)
		return -EAGAIN;
	err = rmem_read_ptr(m, tstate + L->tstate_interp, &back);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	if (back != interp)
		return -ENOEXEC;
	t->interp = interp;
	return 0;
}

/* A PY_VERSION string ("3.9.18", "2.7.18", "3.13.0rc1") at the end of a
 * string in .rodata: Py_GetVersion's format uses it, and the linker often
 * merges it into the tail of a longer string such as the install prefix.  Returns PY_VERSION_HEX style
 * major << 24 | minor << 16 of the first one with a known layout, else 0. */
static uint32_t version_from_rodata(struct elf_file *ef)
{
	const uint8_t *d;
	size_t n, i;

	if (elf_file_section_data(ef, ".rodata", &d, &n))
		return 0;
	for (i = 1; i + 6 < n; i++) {
		unsigned int major, minor, patch;
		size_t j = i;

		if ((d[i - 1] >= '0' && d[i - 1] <= '9') || d[i - 1] == '.' ||
		    (d[i] != '2' && d[i] != '3') || d[i + 1] != '.')
			continue;
		/* digits.digits.digits then NUL or a release tag */
		while (j < n && j - i < 16 && d[j] && (d[j] == '.' || (d[j] >= '0' && d[j] <= '9') ||
						       d[j] == 'a' || d[j] == 'b' || d[j] == 'c' ||
						       d[j] == 'r' || d[j] == '+'))
			j++;
		if (j >= n || d[j] != '\0' ||
		    sscanf((const char *)d + i, "%u.%u.%u", &major, &minor, &patch) != 3 ||
		    minor > 99 || patch > 99)
			continue;
		if (py_layout_find(major << 8 | minor))
			return major << 24 | minor << 16;
	}
	return 0;
}

/* Where the fields pyspyc takes are in one minor version's
 * _Py_DebugOffsets, by 8-byte word from its start; 0 where the version has
 * none (word 0 is the cookie).  Only the first 24 bytes (cookie, version,
 * free_threaded) are stable across minor versions, and the table gives no
 * size of its own: nwords is the version's sizeof / 8.  From the struct in
 * Include/internal/pycore_runtime.h (3.13) and pycore_debug_offsets.h
 * (3.14.10, 3.15.2), whose body has no #ifdef: free-threaded builds have
 * the same words with other values.  3.14 inserts interpreter_state's
 * threads_main (word 10), code_object_generation and tlbc_generation, and
 * appends interpreter_frame's stackpointer and tlbc_index and co_tlbc;
 * 3.15 also grows thread_state (base_frame at 27), adds err_stackitem,
 * type_object's basicsize and dictoffset, heap_type_object and unicode's
 * compactunicodeobject_size. */
struct dbg_words {
	uint32_t version;      /* major << 8 | minor */
	uint32_t nwords;
	uint8_t interp_head, interp_next, threads_head, imports_modules;
	uint8_t gil_ptr, gil_state, gil_locked, gil_holder;
	uint8_t ts_size, ts_next, ts_interp, ts_current_frame, ts_base_frame, ts_thread_id,
		ts_native_thread_id, ts_datastack_chunk;
	uint8_t fr_previous, fr_executable, fr_instr_ptr, fr_localsplus, fr_owner;
	uint8_t co_filename, co_name, co_qualname, co_linetable, co_firstlineno,
		co_argcount, co_localsplusnames, co_localspluskinds, co_adaptive;
	uint8_t ob_type, tp_name, tp_flags, tp_basicsize, tp_dictoffset, ht_cached_keys;
	uint8_t tuple_items, var_size, dict_keys, dict_values, float_fval, long_tag,
		long_digits, bytes_size, bytes_data;
	uint8_t str_state, str_length, str_ascii, str_compact;
};

static const struct dbg_words dbg_layouts[] = {
	{ .version = 0x030d, .nwords = 73,
	  .interp_head = 5, .interp_next = 8, .threads_head = 9, .imports_modules = 11,
	  .gil_ptr = 14, .gil_state = 15, .gil_locked = 17, .gil_holder = 18,
	  .ts_size = 19, .ts_next = 21, .ts_interp = 22, .ts_current_frame = 23, .ts_thread_id = 24,
	  .ts_native_thread_id = 25, .ts_datastack_chunk = 26,
	  .fr_previous = 29, .fr_executable = 30, .fr_instr_ptr = 31, .fr_localsplus = 32,
	  .fr_owner = 33,
	  .co_filename = 35, .co_name = 36, .co_qualname = 37, .co_linetable = 38,
	  .co_firstlineno = 39, .co_argcount = 40, .co_localsplusnames = 41,
	  .co_localspluskinds = 42, .co_adaptive = 43,
	  .ob_type = 45, .tp_name = 47, .tp_flags = 49,
	  .tuple_items = 51, .var_size = 52, .dict_keys = 57, .dict_values = 58,
	  .float_fval = 60, .long_tag = 62, .long_digits = 63, .bytes_size = 65,
	  .bytes_data = 66, .str_state = 68, .str_length = 69, .str_ascii = 70 },
	{ .version = 0x030e, .nwords = 95,
	  .interp_head = 5, .interp_next = 8, .threads_head = 9, .imports_modules = 12,
	  .gil_ptr = 15, .gil_state = 16, .gil_locked = 18, .gil_holder = 19,
	  .ts_size = 22, .ts_next = 24, .ts_interp = 25, .ts_current_frame = 26, .ts_thread_id = 27,
	  .ts_native_thread_id = 28, .ts_datastack_chunk = 29,
	  .fr_previous = 32, .fr_executable = 33, .fr_instr_ptr = 34, .fr_localsplus = 35,
	  .fr_owner = 36,
	  .co_filename = 40, .co_name = 41, .co_qualname = 42, .co_linetable = 43,
	  .co_firstlineno = 44, .co_argcount = 45, .co_localsplusnames = 46,
	  .co_localspluskinds = 47, .co_adaptive = 48,
	  .ob_type = 51, .tp_name = 53, .tp_flags = 55,
	  .tuple_items = 57, .var_size = 58, .dict_keys = 67, .dict_values = 68,
	  .float_fval = 70, .long_tag = 72, .long_digits = 73, .bytes_size = 75,
	  .bytes_data = 76, .str_state = 78, .str_length = 79, .str_ascii = 80 },
	{ .version = 0x030f, .nwords = 111,
	  .interp_head = 5, .interp_next = 8, .threads_head = 9, .imports_modules = 12,
	  .gil_ptr = 15, .gil_state = 16, .gil_locked = 18, .gil_holder = 19,
	  .ts_size = 22, .ts_next = 24, .ts_interp = 25, .ts_current_frame = 26, .ts_base_frame = 27,
	  .ts_thread_id = 30, .ts_native_thread_id = 31, .ts_datastack_chunk = 32,
	  .fr_previous = 40, .fr_executable = 41, .fr_instr_ptr = 42, .fr_localsplus = 43,
	  .fr_owner = 44,
	  .co_filename = 48, .co_name = 49, .co_qualname = 50, .co_linetable = 51,
	  .co_firstlineno = 52, .co_argcount = 53, .co_localsplusnames = 54,
	  .co_localspluskinds = 55, .co_adaptive = 56,
	  .ob_type = 59, .tp_name = 61, .tp_flags = 63, .tp_basicsize = 64,
	  .tp_dictoffset = 65, .ht_cached_keys = 67,
	  .tuple_items = 69, .var_size = 70, .dict_keys = 79, .dict_values = 80,
	  .float_fval = 82, .long_tag = 84, .long_digits = 85, .bytes_size = 87,
	  .bytes_data = 88, .str_state = 90, .str_length = 91, .str_ascii = 92,
	  .str_compact = 93 },
};

#define DBG_MAX_WORDS 111

/* The layout of version's table, or NULL when pyspyc knows none. */
static const struct dbg_words *dbg_words_find(uint32_t version)
{
	for (size_t i = 0; i < sizeof(dbg_layouts) / sizeof(dbg_layouts[0]); i++)
		if (dbg_layouts[i].version == version)
			return &dbg_layouts[i];
	return NULL;
}

/* The offsets of t->layout_buf from the table, over the version's own
 * (generated or hand-written) table: the fields each version's table has. */
int py_debug_offsets_apply(struct py_target *t, struct rmem *m)
{
	struct py_layout *L = &t->layout_buf;
	const struct dbg_words *W;
	uint64_t d[DBG_MAX_WORDS];
	int err;

	_Static_assert(sizeof(d) >= 24, "the stable head");
	err = rmem_read(m, t->runtime, d, 24);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	if (memcmp(d, "xdebugpy", 8))
		return 0; /* no debug offsets: keep the generated table */
	if ((uint32_t)(d[1] >> 16) != (t->version_hex >> 16))
		return -ENOEXEC; /* not the version it claims */
	t->free_threaded = d[2] != 0;
	if (t->free_threaded)
		return -EPROTONOSUPPORT;
	W = dbg_words_find(t->version_hex >> 16);
	if (!W)
		return 0;
	err = rmem_read(m, t->runtime, d, (size_t)W->nwords * 8);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	/* A word too large for an offset reads as absent (-1); a word the
	 * version does not have (0) leaves the table's value. */
#define OFF(i) ((int32_t)(d[i] < 1u << 20 ? d[i] : (uint64_t)-1))
#define TAKE(field, w) do { if (W->w) L->field = OFF(W->w); } while (0)
	TAKE(runtime_interp_head, interp_head);
	TAKE(interp_next, interp_next);
	TAKE(interp_threads_head, threads_head);
	/* The GIL fields are given inside the interpreter's own _gil. */
	TAKE(interp_ceval_gil, gil_ptr);
	if (OFF(W->gil_state) >= 0 && OFF(W->gil_locked) > OFF(W->gil_state) &&
	    OFF(W->gil_holder) > OFF(W->gil_state)) {
		L->gil_locked = OFF(W->gil_locked) - OFF(W->gil_state);
		L->gil_last_holder = OFF(W->gil_holder) - OFF(W->gil_state);
	}
	/* What the table lacks keeps its distance from a neighbour it gives,
	 * in the same structure, so that a patch release that inserted a
	 * field before both (a moved field is what breaks samplers that keep
	 * their own tables) is followed: the data-stack top comes right
	 * after the chunk pointer in PyThreadState (3.11+), and
	 * _co_firsttraceable a fixed way before co_code_adaptive. */
	if (W->ts_datastack_chunk && OFF(W->ts_datastack_chunk) >= 0 &&
	    L->tstate_datastack_chunk >= 0 && L->tstate_datastack_top >= 0)
		L->tstate_datastack_top += OFF(W->ts_datastack_chunk) - L->tstate_datastack_chunk;
	if (W->co_adaptive && OFF(W->co_adaptive) >= 0 && L->code_adaptive >= 0 &&
	    L->code_firsttraceable >= 0)
		L->code_firsttraceable += OFF(W->co_adaptive) - L->code_adaptive;
	TAKE(tstate_size, ts_size);
	TAKE(tstate_next, ts_next);
	TAKE(tstate_interp, ts_interp);
	TAKE(tstate_current_frame, ts_current_frame);
	TAKE(tstate_base_frame, ts_base_frame);
	TAKE(tstate_thread_id, ts_thread_id);
	TAKE(tstate_native_thread_id, ts_native_thread_id);
	TAKE(tstate_datastack_chunk, ts_datastack_chunk);
	/* stacktop is not in the table: the table's offset holds while the
	 * frame is laid out as the table says. */
	if (OFF(W->fr_previous) != L->iframe_previous || OFF(W->fr_executable) != L->iframe_code ||
	    OFF(W->fr_instr_ptr) != L->iframe_instr || OFF(W->fr_localsplus) != L->iframe_size ||
	    OFF(W->fr_owner) != L->iframe_owner)
		L->iframe_stacktop = -1;
	TAKE(iframe_previous, fr_previous);
	TAKE(iframe_code, fr_executable);
	TAKE(iframe_instr, fr_instr_ptr);
	TAKE(iframe_size, fr_localsplus);
	TAKE(iframe_owner, fr_owner);
	TAKE(code_filename, co_filename);
	TAKE(code_name, co_name);
	TAKE(code_qualname, co_qualname);
	TAKE(code_linetable, co_linetable);
	TAKE(code_firstlineno, co_firstlineno);
	TAKE(code_adaptive, co_adaptive);
	TAKE(code_size, co_adaptive);
	TAKE(code_ob_type, ob_type);
	TAKE(bytes_size, bytes_size);
	TAKE(bytes_data, bytes_data);
	TAKE(unicode_state, str_state);
	TAKE(unicode_length, str_length);
	TAKE(unicode_ascii_data, str_ascii);
	TAKE(unicode_compact_data, str_compact);
	/* py_obj (objects): modules, locals, types, containers, numbers.
	 * 3.14+'s localsplus are tagged as f_executable is (py_frame_local). */
	TAKE(interp_modules, imports_modules);
	TAKE(iframe_localsplus, fr_localsplus);
	TAKE(code_argcount, co_argcount);
	TAKE(code_localsplusnames, co_localsplusnames);
	TAKE(code_localspluskinds, co_localspluskinds);
	TAKE(obj_type, ob_type);
	TAKE(type_name, tp_name);
	TAKE(type_flags, tp_flags);
	TAKE(type_basicsize, tp_basicsize);
	TAKE(type_dictoffset, tp_dictoffset);
	TAKE(heaptype_cached_keys, ht_cached_keys);
	TAKE(tuple_items, tuple_items);
	TAKE(obj_var_size, var_size);
	TAKE(dict_keys, dict_keys);
	TAKE(dict_values, dict_values);
	TAKE(float_fval, float_fval);
	TAKE(long_size, long_tag);
	TAKE(long_digits, long_digits);
#undef TAKE
#undef OFF
	/* Anything out of range would be read as -1: refuse rather than guess.
	 * py_layout_check covers the fields read out of copied structures
	 * (the frame, thread state, code and str headers, all within their
	 * buffers); these are offsets into the target's own memory. */
	if (L->runtime_interp_head < 0 || L->interp_threads_head < 0 || L->interp_next < 0 ||
	    L->code_adaptive < 0 ||
	    py_layout_check(L))
		return -ENOEXEC;
	return 0;
}

/* Does thread state tstate run a frame whose code object has PyCode_Type?
 * Interpreter and thread states point at each other, so a pointer to a
 * thread state can pass for an interpreter; a frame running real code
 * cannot be faked that way.  Without PyCode_Type there is nothing to check
 * against, and the answer is yes. */
static int runs_code(const struct py_target *t, struct rmem *m, uint64_t tstate)
{
	const struct py_layout *L = t->layout;
	uint64_t f = 0, code, type;
	int hops;

	if (!t->code_type)
		return 1;
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		if (rmem_read_ptr(m, tstate + L->tstate_frame, &f))
			return 0;
	} else if (L->tstate_current_frame >= 0) {
		if (rmem_read_ptr(m, tstate + L->tstate_current_frame, &f))
			return 0;
	} else {
		uint64_t cframe;

		if (rmem_read_ptr(m, tstate + L->tstate_cframe, &cframe) ||
		    rmem_read_ptr(m, cframe + L->cframe_current_frame, &f))
			return 0;
	}
	/* Shim frames (3.12+) run no code: look a few frames further. */
	for (hops = 0; f && hops < 4; hops++) {
		int32_t code_off = L->frame_model == PY_FRAMES_OBJECTS ? L->frame_code : L->iframe_code;
		int32_t back_off = L->frame_model == PY_FRAMES_OBJECTS ? L->frame_back
								       : L->iframe_previous;

		if (rmem_read_ptr(m, f + code_off, &code))
			return 0;
		if (L->frame_model != PY_FRAMES_OBJECTS)
			code = py_frame_code(L, code);
		if (code && !rmem_read_ptr(m, code + L->code_ob_type, &type) &&
		    type == t->code_type)
			return 1;
		if (rmem_read_ptr(m, f + back_off, &f))
			return 0;
	}
	return 0;
}

/* Last resort for a binary with no usable symbol: look through its .data and
 * .bss, as mapped in the target, for a slot holding a pointer that validates
 * as the interpreter; the runtime is that slot less the head's offset. */
static int scan_for_runtime(struct py_target *t, struct elf_file *ef,
			    uint64_t bias, struct rmem *m)
{
	static const char *const secs[] = { ".data", ".bss", ".PyRuntime" };
	const struct py_layout *L = t->layout;
	uint64_t *buf;
	size_t cap = 1 << 17, si;
	int err = -ENOEXEC, checked = 0;

	buf = malloc(cap * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	for (si = 0; si < sizeof(secs) / sizeof(secs[0]) && err; si++) {
		uint64_t addr, size, off;

		if (elf_file_section(ef, secs[si], &addr, &size))
			continue;
		addr = (addr + bias + 7) & ~7ull;
		for (off = 0; off < size && err && checked < 200000; off += cap * 8) {
			size_t n = (size - off) / 8 < cap ? (size - off) / 8 : cap, i;

			if (rmem_read(m, addr + off, buf, n * 8))
				break;
			for (i = 0; i < n && err && checked < 200000; i++) {
				uint64_t v = buf[i], tstate, back;

				if (!v || (v & 7) || v < 4096 || v >> 47)
					continue;
				checked++;
				if (rmem_read_ptr(m, v + L->interp_threads_head, &tstate) ||
				    !tstate || (tstate & 7) ||
				    rmem_read_ptr(m, tstate + L->tstate_interp, &back) || back != v ||
				    !runs_code(t, m, tstate))
					continue;
				t->runtime = addr + off + i * 8 - (uint64_t)L->runtime_interp_head;
				err = 0;
			}
		}
	}
	free(buf);
	return err;
}

/* Is fd the file c maps?  Its device and inode say so. */
static int same_file(int fd, const struct candidate *c)
{
	struct stat st;

	return !fstat(fd, &st) && (uint64_t)st.st_dev == c->dev && (uint64_t)st.st_ino == c->ino;
}

/* Open the file mapped at c, whatever became of its name since the target
 * mapped it (an upgrade deletes or replaces interpreters under running
 * services): the mapping itself through map_files (root only: it needs
 * CAP_SYS_ADMIN); the main executable through /proc/PID/exe; else the name
 * the maps give, which the target controls, resolved inside its root and a
 * regular file only, and only while it still leads to the mapped file.
 * Returns an fd or -errno; -ESTALE when the name now leads to another file
 * (or to none) and the mapped one cannot be reached. */
static int open_mapped(pid_t reader, const struct candidate *c)
{
	char path[4096 + 64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)reader,
		 (unsigned long long)c->start, (unsigned long long)c->end);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	if (c->is_exe) {
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)reader);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0)
			return fd;
	}
	snprintf(path, sizeof(path), "/proc/%d/root", (int)reader);
	fd = path_open_in_root(path, c->path, 0);
	if (fd == -ESRCH)
		return fd;
	/* A name the kernel still gives as the mapped file's is that file
	 * (on overlayfs its stat can show other numbers); once marked
	 * deleted, it is only if dev and inode agree (a hard link). */
	if (!c->deleted)
		return fd;
	if (fd >= 0 && same_file(fd, c))
		return fd;
	if (fd >= 0)
		close(fd);
	return -ESTALE;
}

static int try_candidate(struct py_target *t, const struct candidate *c,
			 struct rmem *m, pid_t reader, struct py_find_cache *cache)
{
	uint64_t addrs[S_N], bias, vers = 0, size;
	const struct py_layout *found;
	struct elf_file *ef = NULL;
	struct cached_elf *ce = NULL;
	int err, fd;

	fd = open_mapped(reader, c);
	if (fd < 0)
		return fd;
	if (cache) {
		/* Held to the end: libelf is not safe on one file from
		 * several threads. */
		pthread_mutex_lock(&cache->lock);
		err = cache_get(cache, fd, &ce);
		if (err) {
			pthread_mutex_unlock(&cache->lock);
			return err;
		}
		ef = ce->ef;
		err = ce->nsyms;
		memcpy(addrs, ce->addrs, sizeof(addrs));
	} else {
		err = elf_file_open_fd(&ef, fd);
		if (err)
			return err;
		err = elf_file_symbols(ef, sym_names, addrs, NULL, S_N);
	}
	if (err < 0)
		goto out_elf;
	if (t->flags & PY_FIND_NO_SYMBOLS)
		addrs[S_RUNTIME] = addrs[S_INTERP_HEAD] = 0;
	if (t->flags & PY_FIND_NO_VERSION_HINTS)
		addrs[S_VERSION] = 0;
	err = elf_file_bias(ef, c->start, c->offset, &bias);
	if (err)
		goto out_elf;
	t->code_type = addrs[S_CODE_TYPE] ? addrs[S_CODE_TYPE] + bias : 0;
	t->tstate_current = addrs[S_TSTATE_CUR] ? addrs[S_TSTATE_CUR] + bias : 0;
	t->version_hex = 0;
	if (addrs[S_VERSION] &&
	    rmem_read(m, addrs[S_VERSION] + bias, &vers, sizeof(vers)) == 0 &&
	    (vers >> 24) == 3)
		t->version_hex = (uint32_t)vers;
	if (!t->version_hex && !(t->flags & PY_FIND_NO_VERSION_HINTS))
		t->version_hex = version_from_name(c->path);
	if (!t->version_hex)
		t->version_hex = version_from_rodata(ef);
	snprintf(t->binary, sizeof(t->binary), "%s", c->path);
	if (!t->version_hex || (!addrs[S_RUNTIME] && !addrs[S_INTERP_HEAD] &&
				!addrs[S_CODE_TYPE] && !addrs[S_VERSION] &&
				!strstr(base_name(c->path), "python"))) {
		err = -ENOEXEC;
		goto out_elf;
	}
	found = py_layout_find(t->version_hex >> 16);
	if (!found) {
		err = -EPROTONOSUPPORT;
		goto out_elf;
	}
	t->layout_buf = *found;
	t->layout = &t->layout_buf;
	stdlib_prefix(t);

	t->runtime = 0;
	if (!strcmp(found->runtime_symbol, "interp_head") && addrs[S_INTERP_HEAD]) {
		t->runtime = addrs[S_INTERP_HEAD] + bias;
	} else if (!strcmp(found->runtime_symbol, "_PyRuntime")) {
		if (addrs[S_RUNTIME] ||
		    (!(t->flags & PY_FIND_NO_SECTION) &&
		     !elf_file_section(ef, ".PyRuntime", &addrs[S_RUNTIME], &size)))
			t->runtime = addrs[S_RUNTIME] + bias;
	}
	if (t->runtime && (t->version_hex >> 16) >= 0x030d) {
		err = py_debug_offsets_apply(t, m);
		if (err)
			goto out_elf;
	}
	if (t->runtime) {
		err = validate(t, m);
		if (err != -ENOEXEC)
			goto out_elf;
	}
	/* No symbol, or one that did not validate: look for it. */
	err = scan_for_runtime(t, ef, bias, m);
	if (!err)
		err = validate(t, m);
out_elf:
	if (cache)
		pthread_mutex_unlock(&cache->lock);
	else
		elf_file_close(ef);
	return err;
}

int py_find_flags_parse(const char *s)
{
	static const struct { const char *word; int flag; } words[] = {
		{ "no-symbols", PY_FIND_NO_SYMBOLS },
		{ "no-section", PY_FIND_NO_SECTION },
		{ "no-version-hints", PY_FIND_NO_VERSION_HINTS },
	};
	int flags = 0;

	while (s && *s) {
		size_t n = strcspn(s, ","), i;

		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i].word) == n && !strncmp(s, words[i].word, n))
				break;
		if (i == sizeof(words) / sizeof(words[0]))
			return n ? -EINVAL : flags;
		flags |= words[i].flag;
		s += n;
		if (*s == ',')
			s++;
	}
	return flags;
}

int py_target_find(struct py_target *t, pid_t pid, unsigned int flags)
{
	return py_target_find_cached(t, pid, flags, NULL);
}

int py_target_find_cached(struct py_target *t, pid_t pid, unsigned int flags,
			  struct py_find_cache *cache)
{
	struct scan *s;
	struct rmem m;
	char link[64];
	ssize_t n;
	int i, err, best = -ENOEXEC;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->flags = flags;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* A main thread that called pthread_exit() has no exe, maps or root
	 * any more: they are read through a live thread. */
	s->reader = proc_live_task(pid);
	if (s->reader < 0) {
		err = s->reader;
		goto out;
	}
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)s->reader);
	n = readlink(link, s->exe, sizeof(s->exe) - 1);
	if (n < 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto out;
	}
	s->exe[n] = '\0';
	/* A replaced binary reads "path (deleted)". */
	if (n > 10 && !strcmp(s->exe + n - 10, " (deleted)"))
		s->exe[n - 10] = '\0';
	err = proc_maps_foreach(pid, scan_map, s);
	if (err)
		goto out;
	rmem_init(&m, pid);
	/* libpython before the executable: an embedding binary has no runtime
	 * of its own, and a python linked against libpython has none either. */
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < s->n; i++) {
			if (s->c[i].is_exe != (pass == 1))
				continue;
			err = try_candidate(t, &s->c[i], &m, s->reader, cache);
			if (!err)
				goto out;
			/* Keep the most telling failure for the caller. */
			if (err == -ESRCH || err == -EPERM || err == -EAGAIN ||
			    err == -EPROTONOSUPPORT || err == -ESTALE || best == -ENOEXEC)
				best = err;
			if (err == -ESRCH || err == -EPERM)
				goto out;
		}
	}
	err = best;
out:
	free(s);
	return err;
}
