/* out_cost.c - what writing a large profile costs, per output format.
 *
 * Builds a synthetic profile shaped like a long run of a real application
 * (by default 50,000 unique stacks of depth 10 to 40 over 3,000 distinct
 * frames in 120 modules of application, standard-library and installed
 * code, with skewed counts) and writes it with each format's writer
 * through out_write_file(), as `pyspyc record -o` does at the end of a run:
 * a temporary file in DIR, fsync, rename.  Each format is written RUNS
 * times; the best wall and best CPU time are reported.
 *
 * Usage: out_cost DIR [STACKS [RUNS]]
 *
 * Prints one line per format for scripts/bench/bench.py:
 *   out_cost format=flamegraph stacks=50000 frames=3000 samples=N bytes=N
 *            wall_s=0.123456 cpu_s=0.120000 runs=3
 * and exits 0; on failure a line on stderr and exit status 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pyspyc/output.h"
#include "pyspyc/profile.h"

enum {
	NMODULES = 120,
	FUNCS_PER_MODULE = 25,
	NFRAMES = NMODULES * FUNCS_PER_MODULE,
	MIN_DEPTH = 10,
	MAX_DEPTH = 40,
	/* Three stack positions whose frames come from disjoint pools picked
	 * by the stack's index: any two stacks differ in one of them, so
	 * every stack is unique whatever the other positions draw. */
	POOL_A = 50, POOL_B = 40, POOL_C = 25,
	POS_A = 2, POS_B = 5, POS_C = 8,
	/* The first positions come from a few entry points: shared prefixes,
	 * as under a server's request loop. */
	NROOTS = 4,
};

/* What a synthetic profile owns. */
struct synth {
	struct profile p;
	struct profile_frame *frames;
	struct profile_stack *stacks;
	uint32_t *pool;
	char *names;   /* NFRAMES names of NAME_LEN bytes */
	char *files;   /* NMODULES file names of NAME_LEN bytes */
};

#define NAME_LEN 64

/* xorshift32: any fixed sequence will do, the profile must only be the
 * same from run to run. */
static uint32_t next_rand(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static void synth_release(struct synth *s)
{
	free(s->files);
	free(s->names);
	free(s->pool);
	free(s->stacks);
	free(s->frames);
	memset(s, 0, sizeof(*s));
}

static void make_frames(struct synth *s, uint32_t *seed)
{
	static const char *const dirs[] = { "shop/views", "shop/models", "shop/util" };
	static const char *const verbs[] = { "get", "load", "render", "parse", "check",
					     "send", "build", "update" };
	uint32_t m, f;

	for (m = 0; m < NMODULES; m++) {
		char *file = s->files + (size_t)m * NAME_LEN;

		/* A quarter standard library, a quarter installed packages,
		 * the rest the application's own modules. */
		if (m % 4 == 1)
			snprintf(file, NAME_LEN, "/usr/lib/python3.11/stdmod%u.py", m);
		else if (m % 4 == 2)
			snprintf(file, NAME_LEN, "site-packages/pkg%u/core.py", m);
		else
			snprintf(file, NAME_LEN, "%s/mod%u.py", dirs[m % 3], m);
	}
	for (f = 0; f < NFRAMES; f++) {
		uint32_t mod = f / FUNCS_PER_MODULE;
		char *name = s->names + (size_t)f * NAME_LEN;

		snprintf(name, NAME_LEN, "Class%u.%s_%u", f % 7, verbs[f % 8], f);
		s->frames[f].name = name;
		s->frames[f].file = s->files + (size_t)mod * NAME_LEN;
		s->frames[f].line = 1 + (int)(next_rand(seed) % 2000);
		s->frames[f].kind = mod % 4 == 1 ? FRAME_STDLIB :
				    mod % 4 == 2 ? FRAME_LIBRARY : FRAME_APP;
	}
}

/* Most stacks seen a few times, a few hot ones many times. */
static uint64_t skewed_count(uint32_t *seed)
{
	uint32_t r = next_rand(seed);

	if (r % 100 < 2)
		return 100 + next_rand(seed) % 5000;
	return 1 + next_rand(seed) % 40;
}

static void make_stacks(struct synth *s, uint32_t nstacks, uint32_t *seed)
{
	uint32_t i, j;

	for (i = 0; i < nstacks; i++) {
		uint32_t *fr = s->pool + (size_t)i * MAX_DEPTH;
		uint32_t depth = MIN_DEPTH + next_rand(seed) % (MAX_DEPTH - MIN_DEPTH + 1);

		for (j = 0; j < depth; j++)
			fr[j] = j < 2 ? (j * NROOTS + next_rand(seed) % NROOTS) * 31 % NFRAMES :
				next_rand(seed) % NFRAMES;
		fr[POS_A] = i % POOL_A;
		fr[POS_B] = POOL_A + i / POOL_A % POOL_B;
		fr[POS_C] = POOL_A + POOL_B + i / (POOL_A * POOL_B) % POOL_C;
		s->stacks[i].frames = fr;
		s->stacks[i].depth = depth;
		s->stacks[i].count = skewed_count(seed);
		s->stacks[i].id = i;
		s->p.total += s->stacks[i].count;
	}
}

/* Fill s with nstacks unique stacks.  Returns 0, -EINVAL (more stacks than
 * the pools can tell apart) or -ENOMEM. */
static int synth_init(struct synth *s, uint32_t nstacks)
{
	uint32_t seed = 2463534242u;

	memset(s, 0, sizeof(*s));
	if (nstacks == 0 || nstacks > (uint32_t)POOL_A * POOL_B * POOL_C)
		return -EINVAL;
	s->frames = calloc(NFRAMES, sizeof(*s->frames));
	s->stacks = calloc(nstacks, sizeof(*s->stacks));
	s->pool = calloc((size_t)nstacks * MAX_DEPTH, sizeof(*s->pool));
	s->names = calloc(NFRAMES, NAME_LEN);
	s->files = calloc(NMODULES, NAME_LEN);
	if (!s->frames || !s->stacks || !s->pool || !s->names || !s->files) {
		synth_release(s);
		return -ENOMEM;
	}
	make_frames(s, &seed);
	make_stacks(s, nstacks, &seed);
	s->p.frames = s->frames;
	s->p.nframes = NFRAMES;
	s->p.stacks = s->stacks;
	s->p.nstacks = nstacks;
	s->p.command = "python3 shop.py";
	s->p.pid = 4242;
	s->p.rate_hz = 100;
	s->p.duration_s = 600;
	/* As the profile builder hands them over: sorted. */
	profile_sort(&s->p, s->stacks);
	return 0;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cost {
	double wall_s, cpu_s; /* best of the runs, each on its own */
	long long bytes;
};

/* Write p as fmt to path runs times.  Returns 0 or -errno. */
static int time_format(const struct profile *p, const struct out_format *fmt,
		       const char *path, int runs, struct cost *c)
{
	struct out_opts oo = { .inverted = 0 };
	struct stat st;
	int i, err;

	c->wall_s = c->cpu_s = -1;
	c->bytes = 0;
	for (i = 0; i < runs; i++) {
		double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		double w, cpu;

		err = out_write_file(path, fmt, p, &oo);
		if (err)
			return err;
		cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		w = clock_s(CLOCK_MONOTONIC) - w0;
		if (c->wall_s < 0 || w < c->wall_s)
			c->wall_s = w;
		if (c->cpu_s < 0 || cpu < c->cpu_s)
			c->cpu_s = cpu;
	}
	if (stat(path, &st))
		return -errno;
	c->bytes = (long long)st.st_size;
	return 0;
}

/* Whole number argument in [lo, hi], or -1. */
static long parse_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	return v;
}

int main(int argc, char **argv)
{
	/* The formats the benchmark reports, and the file each is written
	 * to (its ending is the one a user would give). */
	static const char *const formats[][2] = {
		{ "flamegraph", "out.svg" },
		{ "raw", "out.folded" },
		{ "pprof", "out.pb.gz" },
	};
	long nstacks = 50000, runs = 3;
	struct synth s;
	size_t i;
	int err;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: out_cost DIR [STACKS [RUNS]]\n");
		return 2;
	}
	if (argc > 2)
		nstacks = parse_arg(argv[2], 1, (long)POOL_A * POOL_B * POOL_C);
	if (argc > 3)
		runs = parse_arg(argv[3], 1, 100);
	if (nstacks < 0 || runs < 0) {
		fprintf(stderr, "out_cost: STACKS is 1 to %d, RUNS 1 to 100\n",
			POOL_A * POOL_B * POOL_C);
		return 2;
	}
	err = synth_init(&s, (uint32_t)nstacks);
	if (err) {
		fprintf(stderr, "out_cost: building the profile: %s\n", strerror(-err));
		return 1;
	}
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		const struct out_format *fmt = out_format_by_name(formats[i][0]);
		char path[4096];
		struct cost c;

		if (!fmt) {
			fprintf(stderr, "out_cost: no format '%s'\n", formats[i][0]);
			err = -EINVAL;
			break;
		}
		if (snprintf(path, sizeof(path), "%s/%s", argv[1], formats[i][1]) >=
		    (int)sizeof(path)) {
			fprintf(stderr, "out_cost: directory name too long\n");
			err = -ENAMETOOLONG;
			break;
		}
		err = time_format(&s.p, fmt, path, (int)runs, &c);
		if (err) {
			fprintf(stderr, "out_cost: writing %s: %s\n", path, strerror(-err));
			break;
		}
		printf("out_cost format=%s stacks=%u frames=%u samples=%llu bytes=%lld "
		       "wall_s=%.6f cpu_s=%.6f runs=%ld\n", fmt->name, s.p.nstacks,
		       s.p.nframes, (unsigned long long)s.p.total, c.bytes, c.wall_s,
		       c.cpu_s, runs);
		fflush(stdout);
	}
	synth_release(&s);
	return err ? 1 : 0;
}
