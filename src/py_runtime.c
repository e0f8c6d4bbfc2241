/* py_runtime.c - find and validate the interpreter in a target process. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/elf.h"
#include "pyspyc/py_runtime.h"

#define MAX_CANDIDATES 16

struct candidate {
	char path[4096];
	uint64_t start, offset, end;
};

struct scan {
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
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0'; /* strip bin/ or lib/ */
	snprintf(t->stdlib_prefix, sizeof(t->stdlib_prefix), "%.400s/lib/python%u.%u/",
		 dir, major, minor);
}

/* Read the interpreter head and check that it looks like one: mapped, and its
 * first thread (if any) points back to it. */
static int validate(struct py_target *t, struct rmem *m)
{
	const struct py_layout *L = t->layout;
	uint64_t interp, tstate, back;
	int err;

	err = rmem_read_ptr(m, t->runtime + L->runtime_interp_head, &interp);
	if (err)
		return err == -EFAULT ? -ENOEXEC : err;
	if (interp == 0)
		return -EAGAIN;
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

static int try_candidate(struct py_target *t, const struct candidate *c,
			 struct rmem *m)
{
	static const char *const names[] = { "_PyRuntime", "Py_Version", "PyCode_Type" };
	uint64_t addrs[3], bias, vers = 0;
	struct elf_file *ef;
	char path[4096 + 64];
	int err;

	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)t->pid, c->path);
	err = elf_file_open(&ef, path);
	if (err) {
		/* Deleted or replaced on disk: the mapping still has the file. */
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)t->pid,
			 (unsigned long long)c->start, (unsigned long long)c->end);
		err = elf_file_open(&ef, path);
		if (err)
			return err;
	}
	err = elf_file_symbols(ef, names, addrs, NULL, 3);
	if (err < 0)
		goto out_elf;
	if (!addrs[0]) {
		uint64_t size;

		if (elf_file_section(ef, ".PyRuntime", &addrs[0], &size)) {
			err = -ENOEXEC;
			goto out_elf;
		}
	}
	err = elf_file_bias(ef, c->start, c->offset, &bias);
	if (err)
		goto out_elf;
	t->runtime = addrs[0] + bias;
	t->code_type = addrs[2] ? addrs[2] + bias : 0;
	if (addrs[1] && rmem_read(m, addrs[1] + bias, &vers, sizeof(vers)) == 0 &&
	    (vers >> 24) == 3)
		t->version_hex = (uint32_t)vers;
	else
		t->version_hex = version_from_name(c->path);
	snprintf(t->binary, sizeof(t->binary), "%s", c->path);
	if (!t->version_hex) {
		err = -ENOEXEC;
		goto out_elf;
	}
	t->layout = py_layout_find(t->version_hex >> 16);
	if (!t->layout) {
		err = -EPROTONOSUPPORT;
		goto out_elf;
	}
	stdlib_prefix(t);
	err = validate(t, m);
out_elf:
	elf_file_close(ef);
	return err;
}

int py_target_find(struct py_target *t, pid_t pid)
{
	struct scan *s;
	struct rmem m;
	char link[64];
	ssize_t n;
	int i, err, best = -ENOEXEC;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
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
			int is_exe = !strcmp(s->c[i].path, s->exe);

			if (is_exe != (pass == 1))
				continue;
			err = try_candidate(t, &s->c[i], &m);
			if (!err)
				goto out;
			/* Keep the most telling failure for the caller. */
			if (err == -ESRCH || err == -EPERM || err == -EAGAIN ||
			    err == -EPROTONOSUPPORT || best == -ENOEXEC)
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
