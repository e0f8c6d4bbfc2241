/* embed_host: a program that embeds CPython without linking libpython.
 *
 *   embed_host LIBPYTHON.so SCRIPT.py
 *
 * dlopen()s the given libpython, resolves the few functions it needs with
 * dlsym (prototypes declared by hand: no Python headers), reads SCRIPT.py
 * into a string, compiles it under its own file name (so its frames name
 * SCRIPT.py, not "<string>"), runs it in __main__ and finalizes.
 *
 * Build: cc -o embed_host embed_host.c -ldl
 * Exit status: 0 on success, 1 if the script raised, 2 on a setup error.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct py_object PyObject; /* opaque */

#define PY_FILE_INPUT 257 /* Py_file_input from Include/compile.h */

struct py_api {
	void (*Py_Initialize)(void);
	int (*Py_FinalizeEx)(void);
	int (*PyRun_SimpleString)(const char *);
	PyObject *(*Py_CompileString)(const char *, const char *, int);
	PyObject *(*PyImport_AddModule)(const char *);
	PyObject *(*PyModule_GetDict)(PyObject *);
	PyObject *(*PyUnicode_DecodeFSDefault)(const char *);
	int (*PyDict_SetItemString)(PyObject *, const char *, PyObject *);
	PyObject *(*PyEval_EvalCode)(PyObject *, PyObject *, PyObject *);
	void (*PyErr_Print)(void);
	void (*Py_DecRef)(PyObject *);
};

static int resolve(void *lib, const char *name, void *slot)
{
	void *f = dlsym(lib, name);

	if (!f) {
		fprintf(stderr, "embed_host: %s: %s\n", name, dlerror());
		return -1;
	}
	memcpy(slot, &f, sizeof(f));
	return 0;
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
	struct py_api py;
	PyObject *code, *mod, *dict, *file, *res;
	char *src;
	void *lib;
	int rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBPYTHON.so SCRIPT.py\n", argv[0]);
		return 2;
	}
	/* RTLD_GLOBAL: extension modules loaded later resolve the C API
	 * against this libpython. */
	lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		fprintf(stderr, "embed_host: %s\n", dlerror());
		return 2;
	}
	if (resolve(lib, "Py_Initialize", &py.Py_Initialize) ||
	    resolve(lib, "Py_FinalizeEx", &py.Py_FinalizeEx) ||
	    resolve(lib, "PyRun_SimpleString", &py.PyRun_SimpleString) ||
	    resolve(lib, "Py_CompileString", &py.Py_CompileString) ||
	    resolve(lib, "PyImport_AddModule", &py.PyImport_AddModule) ||
	    resolve(lib, "PyModule_GetDict", &py.PyModule_GetDict) ||
	    resolve(lib, "PyUnicode_DecodeFSDefault", &py.PyUnicode_DecodeFSDefault) ||
	    resolve(lib, "PyDict_SetItemString", &py.PyDict_SetItemString) ||
	    resolve(lib, "PyEval_EvalCode", &py.PyEval_EvalCode) ||
	    resolve(lib, "PyErr_Print", &py.PyErr_Print) ||
	    resolve(lib, "Py_DecRef", &py.Py_DecRef))
		return 2;
	src = read_file(argv[2]);
	if (!src)
		return 2;

	py.Py_Initialize();
	/* Like `python SCRIPT.py`: sys.argv names the script. */
	if (py.PyRun_SimpleString("import sys\nsys.argv = ['embedded']\n"))
		rc = 1;
	mod = py.PyImport_AddModule("__main__"); /* borrowed */
	dict = mod ? py.PyModule_GetDict(mod) : NULL; /* borrowed */
	code = dict && !rc ? py.Py_CompileString(src, argv[2], PY_FILE_INPUT) : NULL;
	if (!code) {
		py.PyErr_Print();
		rc = 1;
	} else {
		file = py.PyUnicode_DecodeFSDefault(argv[2]);
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
	if (py.Py_FinalizeEx() < 0 && !rc)
		rc = 1;
	free(src);
	return rc;
}
