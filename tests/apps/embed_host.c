/* embed_host: a program that embeds CPython without linking libpython.
 *
 *   embed_host LIBPYTHON.so SCRIPT.py [ROUNDS]
 *
 * dlopen()s the given libpython, resolves the few functions it needs with
 * dlsym (prototypes declared by hand: no Python headers), reads SCRIPT.py
 * into a string, compiles it under its own file name (so its frames name
 * SCRIPT.py, not "<string>"), runs it in __main__ and finalizes.  The
 * functions used exist in every CPython from 2.7 to 3.13; where a newer one
 * is missing (Py_FinalizeEx before 3.6, PyUnicode_DecodeFSDefault in 2.7)
 * the older equivalent is used.
 *
 * With ROUNDS (default 1), the interpreter is initialized, runs the script
 * and is finalized that many times over, as some hosts do (sys.argv[1] is
 * the round, from 0), so a profiler sees the runtime go and come back.
 * EMBED_GAP_MS (environment) keeps it gone that long between rounds, after
 * printing "finalized"; with EMBED_GAP_HOLD too, it then takes up the
 * memory freed, so the next interpreter is put somewhere else; with
 * EMBED_GAP_WAIT, the first gap begins only once a line is read on stdin
 * (a test starts its profiler after "finalized", and says when it runs).
 *
 * Build: cc -o embed_host embed_host.c -ldl
 * Exit status: 0 on success, 1 if the script raised, 2 on a setup error.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct py_object PyObject; /* opaque */

#define PY_FILE_INPUT 257 /* Py_file_input from Include/compile.h */

struct py_api {
	void (*Py_Initialize)(void);
	int (*Py_FinalizeEx)(void); /* 3.6+; else Py_Finalize */
	void (*Py_Finalize)(void);
	int (*PyRun_SimpleString)(const char *);
	PyObject *(*Py_CompileString)(const char *, const char *, int);
	PyObject *(*PyImport_AddModule)(const char *);
	PyObject *(*PyModule_GetDict)(PyObject *);
	/* PyUnicode_DecodeFSDefault (3.x) or PyString_FromString (2.x) */
	PyObject *(*str_from_path)(const char *);
	int (*PyDict_SetItemString)(PyObject *, const char *, PyObject *);
	PyObject *(*PyEval_EvalCode)(PyObject *, PyObject *, PyObject *);
	void (*PyErr_Print)(void);
	void (*Py_DecRef)(PyObject *);
};

/* Store the address of the first of names (NULL-terminated) that lib
 * defines in *slot. */
static int resolve_any(void *lib, const char *const *names, void *slot)
{
	const char *const *n;
	void *f = NULL;

	for (n = names; *n && !f; n++)
		f = dlsym(lib, *n);
	if (!f) {
		fprintf(stderr, "embed_host: %s: %s\n", names[0], dlerror());
		return -1;
	}
	memcpy(slot, &f, sizeof(f));
	return 0;
}

static int resolve(void *lib, const char *name, void *slot)
{
	const char *names[] = { name, NULL };

	return resolve_any(lib, names, slot);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		perror(path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		perror(path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	static const char *const str_names[] = { "PyUnicode_DecodeFSDefault",
						 "PyString_FromString", NULL };
	struct py_api py;
	PyObject *code, *mod, *dict, *file, *res;
	char *src;
	static void *held[2048];
	size_t nheld = 0;
	char argv_code[64];
	void *lib;
	int rc = 0, round, rounds = 1;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s LIBPYTHON.so SCRIPT.py [ROUNDS]\n", argv[0]);
		return 2;
	}
	/* RTLD_GLOBAL: extension modules loaded later resolve the C API
	 * against this libpython. */
	lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		fprintf(stderr, "embed_host: %s\n", dlerror());
		return 2;
	}
	memset(&py, 0, sizeof(py));
	/* Optional: older Pythons have only Py_Finalize. */
	*(void **)&py.Py_FinalizeEx = dlsym(lib, "Py_FinalizeEx");
	if (resolve(lib, "Py_Initialize", &py.Py_Initialize) ||
	    resolve(lib, "Py_Finalize", &py.Py_Finalize) ||
	    resolve(lib, "PyRun_SimpleString", &py.PyRun_SimpleString) ||
	    resolve(lib, "Py_CompileString", &py.Py_CompileString) ||
	    resolve(lib, "PyImport_AddModule", &py.PyImport_AddModule) ||
	    resolve(lib, "PyModule_GetDict", &py.PyModule_GetDict) ||
	    resolve_any(lib, str_names, &py.str_from_path) ||
	    resolve(lib, "PyDict_SetItemString", &py.PyDict_SetItemString) ||
	    resolve(lib, "PyEval_EvalCode", &py.PyEval_EvalCode) ||
	    resolve(lib, "PyErr_Print", &py.PyErr_Print) ||
	    resolve(lib, "Py_DecRef", &py.Py_DecRef))
		return 2;
	src = read_file(argv[2]);
	if (!src)
		return 2;

	if (argc == 4)
		rounds = atoi(argv[3]);
	for (round = 0; round < rounds && !rc; round++) {
		py.Py_Initialize();
		/* Like `python SCRIPT.py`, or `python SCRIPT.py ROUND`. */
		if (argc == 4)
			snprintf(argv_code, sizeof(argv_code),
				 "import sys\nsys.argv = ['embedded', '%d']\n", round);
		else
			snprintf(argv_code, sizeof(argv_code), "import sys\nsys.argv = ['embedded']\n");
		if (py.PyRun_SimpleString(argv_code))
			rc = 1;
		mod = py.PyImport_AddModule("__main__"); /* borrowed */
		dict = mod ? py.PyModule_GetDict(mod) : NULL; /* borrowed */
		code = dict && !rc ? py.Py_CompileString(src, argv[2], PY_FILE_INPUT) : NULL;
		if (!code) {
			py.PyErr_Print();
			rc = 1;
		} else {
			file = py.str_from_path(argv[2]);
			if (file) {
				py.PyDict_SetItemString(dict, "__file__", file);
				py.Py_DecRef(file);
			}
			res = py.PyEval_EvalCode(code, dict, dict);
			if (res) {
				py.Py_DecRef(res);
			} else {
				py.PyErr_Print();
				rc = 1;
			}
			py.Py_DecRef(code);
		}
		fflush(stdout);
		if (py.Py_FinalizeEx) {
			if (py.Py_FinalizeEx() < 0 && !rc)
				rc = 1;
		} else {
			py.Py_Finalize();
		}
		/* Between rounds, with EMBED_GAP_MS: a while with no
		 * interpreter at all, announced on stdout. */
		if (round + 1 < rounds && getenv("EMBED_GAP_MS")) {
			struct timespec gap = { 0, 0 };
			long ms = atol(getenv("EMBED_GAP_MS"));
			char go[16];

			gap.tv_sec = ms / 1000;
			gap.tv_nsec = ms % 1000 * 1000000L;
			printf("finalized\n");
			fflush(stdout);
			if (round == 0 && getenv("EMBED_GAP_WAIT") && !fgets(go, sizeof(go), stdin))
				rc = 2;
			nanosleep(&gap, NULL);
			/* Take the freed memory, so the next interpreter lands
			 * elsewhere (blocks of every size up to 1 MiB, kept). */
			if (getenv("EMBED_GAP_HOLD"))
				for (size_t sz = 64; sz <= (1u << 20) && nheld < 2048; sz += sz / 8)
					for (int k = 0; k < 4; k++)
						held[nheld++] = calloc(1, sz);
		}
	}
	while (nheld)
		free(held[--nheld]);
	free(src);
	return rc;
}
