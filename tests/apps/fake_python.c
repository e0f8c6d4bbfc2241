/* A process that looks like a CPython runtime to a profiler but is not one:
 * it exports _PyRuntime starting with a _Py_DebugOffsets head (cookie,
 * version, free_threaded) and Py_Version, both chosen at compile time, then
 * sleeps.  pyspyc must refuse it with a message naming the version.
 * Build: cc -rdynamic -DVERSION=0x030e00f0 -DFREE_THREADED=0 fake_python.c */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION 0x030e00f0
#endif
#ifndef FREE_THREADED
#define FREE_THREADED 0
#endif

struct head {
	char cookie[8];
	uint64_t version;
	uint64_t free_threaded;
	uint64_t rest[1021];
};

struct head _PyRuntime = { "xdebugpy", VERSION, FREE_THREADED, { 0 } };
const unsigned long Py_Version = VERSION;

int main(void)
{
	printf("ready\n");
	fflush(stdout);
	/* Keep the symbols referenced so nothing drops them. */
	if (_PyRuntime.rest[0] == 1 && Py_Version == 0)
		return 1;
	sleep(60);
	return 0;
}
