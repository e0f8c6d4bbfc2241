/* window_soak.c - resident memory of a long run that rotates windows.
 *
 * Feeds synthetic samples through the real stack table (stacktab_add_at,
 * as the symbolizer does, with a timeline as speedscope and chrometrace
 * keep) and closes a window every PER_WINDOW samples with
 * stacktab_rotate(), writing each closed window's profile as collapsed
 * stacks to /dev/null, as `record --period` does.  A quarter of the
 * samples are stacks never seen before (new unique stacks all the time);
 * the rest come from a fixed set of hot stacks.  The table has pyspyc's
 * default bounds (--max-stacks 200000, --max-frames 1048576).
 *
 * Usage: window_soak [SAMPLES [PER_WINDOW [REPORT_EVERY]]]
 *   (defaults 10000000, 5000, 100: 2,000 windows, a line every 100)
 *
 * Prints for scripts/bench/bench.py, at the start and every REPORT_EVERY
 * windows:
 *   window_soak windows=N samples=N new_stacks=N rss_kib=N seconds=S
 * and at the end
 *   window_soak done windows=N samples=N new_stacks=N dropped=N hwm_kib=N
 * and exits 0; on failure a line on stderr and exit status 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyspyc/output.h"
#include "pyspyc/stacktab.h"

enum {
	NFRAMES = 3000,
	NHOT = 500,          /* recurring stacks */
	DEPTH = 24,
	/* Positions of the digits (base DIGIT_BASE) of a new stack's number:
	 * 64^4 = 16.7 million distinct stacks. */
	DIGIT_POS = 4, NDIGITS = 4, DIGIT_BASE = 64,
	NEW_EVERY = 4,       /* one sample in four is a new stack */
};

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static long status_kib(const char *field)
{
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stack k of the new ones (k < 64^4): random frames, with k's digits at
 * fixed positions from a pool of their own, so no two are alike. */
static void new_stack(const uint32_t *frames, uint64_t k, uint32_t *rnd, uint32_t *out)
{
	uint32_t i;

	for (i = 0; i < DEPTH; i++)
		out[i] = frames[DIGIT_BASE + next_rand(rnd) % (NFRAMES - DIGIT_BASE)];
	for (i = 0; i < NDIGITS; i++) {
		out[DIGIT_POS + i] = frames[k % DIGIT_BASE];
		k /= DIGIT_BASE;
	}
}

static void hot_stack(const uint32_t *frames, uint32_t h, uint32_t *out)
{
	uint32_t s = h * 2654435761u + 1, i;

	for (i = 0; i < DEPTH; i++)
		out[i] = frames[DIGIT_BASE + next_rand(&s) % (NFRAMES - DIGIT_BASE)];
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "window_soak: %s: %s\n", what, strerror(-err));
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t samples = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	uint64_t per_window = argc > 2 ? strtoull(argv[2], NULL, 10) : 5000;
	uint64_t every = argc > 3 ? strtoull(argv[3], NULL, 10) : 100;
	const struct stacktab_limits lim = { .max_stacks = 200000, .max_frames = 1u << 20,
					     .max_strings = 1u << 20 };
	static uint32_t frames[NFRAMES];
	uint32_t stack[DEPTH], rnd = 2463534242u, id;
	uint64_t n, fresh = 0, dropped = 0, windows = 0;
	struct stacktab *t = NULL;
	FILE *null;
	double t0 = now_s();
	int err, i;

	if (!samples || !per_window || !every) {
		fprintf(stderr, "usage: window_soak [SAMPLES [PER_WINDOW [REPORT_EVERY]]]\n");
		return 2;
	}
	null = fopen("/dev/null", "w");
	if (!null)
		return fail("/dev/null", -errno);
	err = stacktab_new(&t, &lim);
	if (!err)
		err = stacktab_timeline(t, 10000000);
	if (err)
		return fail("stacktab", err);
	for (i = 0; i < NFRAMES; i++) {
		struct frame_key k = { .line = 10 + i % 500, .kind = FRAME_APP };
		char name[32], file[32];

		snprintf(name, sizeof(name), "handler_%d", i);
		snprintf(file, sizeof(file), "app/module_%d.py", i / 25);
		err = stacktab_string(t, name, strlen(name), &k.name);
		if (!err)
			err = stacktab_string(t, file, strlen(file), &k.file);
		if (!err)
			err = stacktab_frame(t, &k, &frames[i]);
		if (err)
			return fail("frames", err);
	}
	printf("window_soak windows=0 samples=0 new_stacks=0 rss_kib=%ld seconds=0.0\n",
	       status_kib("VmRSS"));
	fflush(stdout);
	for (n = 0; n < samples; n++) {
		if (n % NEW_EVERY == 0)
			new_stack(frames, fresh++, &rnd, stack);
		else
			hot_stack(frames, next_rand(&rnd) % NHOT, stack);
		if (stacktab_add_at(t, stack, DEPTH, (int64_t)n * 1000, &id))
			dropped++;
		if ((n + 1) % per_window == 0 || n + 1 == samples) {
			struct profile p = { 0 };

			err = stacktab_rotate(t, &p);
			if (!err)
				err = out_collapsed_write(&p, NULL, null);
			profile_release(&p);
			if (err)
				return fail("rotate", err);
			windows++;
			if (windows % every == 0) {
				printf("window_soak windows=%llu samples=%llu new_stacks=%llu "
				       "rss_kib=%ld seconds=%.1f\n", (unsigned long long)windows,
				       (unsigned long long)(n + 1), (unsigned long long)fresh,
				       status_kib("VmRSS"), now_s() - t0);
				fflush(stdout);
			}
		}
	}
	printf("window_soak done windows=%llu samples=%llu new_stacks=%llu dropped=%llu "
	       "hwm_kib=%ld\n", (unsigned long long)windows, (unsigned long long)samples,
	       (unsigned long long)fresh, (unsigned long long)dropped, status_kib("VmHWM"));
	stacktab_free(t);
	fclose(null);
	return 0;
}
