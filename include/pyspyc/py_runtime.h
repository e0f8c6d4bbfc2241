/* py_runtime.h - find the CPython interpreter in a target process.
 *
 * Looks at the target's mappings for the main executable and any libpython
 * shared object, opens each through /proc/PID/root (so containers work), and
 * finds the runtime with libelf: the _PyRuntime symbol (3.7+), the .PyRuntime
 * section, interp_head (2.7, 3.6), or as a last resort a scan of .data and
 * .bss for a pointer that validates as the interpreter.  The version comes
 * from Py_Version (3.11+), else the file name, else a version string in
 * .rodata; the target's binary is never run.  3.13+ layouts are filled from
 * the target's own _Py_DebugOffsets.  Every candidate is validated by reading
 * it: the interpreter list head must be mapped and its first thread state
 * must point back to it.
 */
#ifndef PYSPYC_PY_RUNTIME_H
#define PYSPYC_PY_RUNTIME_H

#include <stdint.h>
#include <sys/types.h>

#include "pyspyc/proc.h"
#include "pyspyc/py_layout.h"

struct py_target {
	pid_t pid;
	uint32_t version_hex;        /* PY_VERSION_HEX, e.g. 0x030b07f0 */
	const struct py_layout *layout; /* points at layout_buf */
	struct py_layout layout_buf; /* the version's table, 3.13+ filled
				      * from the target's _Py_DebugOffsets */
	int free_threaded;           /* a 3.13+ free-threaded build (refused) */
	unsigned int flags;          /* PY_FIND_* given to py_target_find */
	uint64_t runtime;            /* address of _PyRuntime */
	uint64_t code_type;          /* address of PyCode_Type, 0 if unknown */
	uint64_t interp;             /* main interpreter state: the last of the
				      * runtime's list (newest first) */
	uint64_t tstate_current;     /* _PyThreadState_Current (2.7, 3.6), 0 if
				      * unknown: the GIL holder's thread state */
	char binary[4096];           /* path of the file holding the runtime */
	char stdlib_prefix[512];     /* e.g. "/usr/lib/python3.11/" or "" */
};

/* Interpreters the walker follows per sample (the runtime's list, newest
 * first, main last); a longer list is counted (walk_stats.interps_capped)
 * and its main interpreter still walked. */
#define PY_MAX_INTERPS 256

/* Find and validate the interpreter of pid.  Returns 0, or:
 *   -ESRCH            no such process (or it exited)
 *   -EPERM / -EACCES  not allowed to read it
 *   -ENOEXEC          no Python interpreter found in it
 *   -EPROTONOSUPPORT  a Python whose version has no layout
 *                     (t->version_hex says which)
 *   -EAGAIN           Python, but the interpreter is not initialised yet
 *                     (a just-launched process: try again shortly) */
int py_target_find(struct py_target *t, pid_t pid, unsigned int flags);

/* Many processes of one interpreter (a server's workers, the children
 * -s follows) cost one reading of its binary: a cache of what was read from
 * each binary (its symbols), known by the file's identity (device, inode,
 * size, times), so a binary replaced on disk is read again.  It keeps up to
 * 16 binaries open.  Thread-safe: one cache may serve several threads,
 * which take turns on it.  free accepts NULL. */
struct py_find_cache;

int py_find_cache_new(struct py_find_cache **out);
void py_find_cache_free(struct py_find_cache *c);

/* py_target_find through cache (NULL: read every binary anew). */
int py_target_find_cached(struct py_target *t, pid_t pid, unsigned int flags,
			  struct py_find_cache *cache);

/* 3.13+: take the offsets of t->layout_buf from the target's
 * _Py_DebugOffsets at t->runtime (the first member of _PyRuntimeState),
 * over the generated table.  Returns 0 (also when there are none: the
 * table stays), -ENOEXEC when they are unreadable, claim another version or
 * do not make a usable layout, -EPROTONOSUPPORT for a free-threaded build,
 * or another -errno of the read.  Called by py_target_find; public for the
 * fuzzer. */
int py_debug_offsets_apply(struct py_target *t, struct rmem *m);

/* flags: leave out discovery steps, to exercise the fallbacks (tests) or to
 * work around a binary whose symbols lie (PYSPYC_FIND in pyspyc(1)). */
#define PY_FIND_NO_SYMBOLS 0x1   /* ignore _PyRuntime / interp_head symbols */
#define PY_FIND_NO_SECTION 0x2   /* ignore the .PyRuntime section */
#define PY_FIND_NO_VERSION_HINTS 0x4 /* ignore Py_Version and the file name */

/* Parse a PYSPYC_FIND value ("no-symbols,no-section,no-version-hints").
 * Returns the flags, or -EINVAL for an unknown word. */
int py_find_flags_parse(const char *s);

#endif
