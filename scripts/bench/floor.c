/* floor.c - what any sampler that sleeps between samples and reads another
 * process's memory pays on this machine, whatever its own work:
 *
 *   wake    CPU per wake-up of a thread sleeping to absolute deadlines at
 *           HZ (clock_nanosleep, timer slack 1 ns, as pyspyc's sampler)
 *   readN   CPU per process_vm_readv call of N ranges of 64 bytes, each on
 *           its own page, from a child process
 *
 * Usage: floor HZ SECONDS RANGES...   prints "wake US" and "readN US" lines.
 * CPU is the process's user+sys time (getrusage), over all iterations. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RANGES 64
#define PAGE 4096

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double wake_us(double hz, double secs)
{
	long long period = (long long)(1e9 / hz), next, n = (long long)(hz * secs), i;
	struct timespec ts;
	double t0;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	next = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	t0 = cpu_us();
	for (i = 0; i < n; i++) {
		next += period;
		ts.tv_sec = next / 1000000000LL;
		ts.tv_nsec = next % 1000000000LL;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	return (cpu_us() - t0) / (double)n;
}

/* Back-to-back reads of n ranges from the child's copy of mem. */
static double read_us(pid_t child, const char *mem, int n, long iters)
{
	static char buf[MAX_RANGES][64];
	struct iovec l[MAX_RANGES], r[MAX_RANGES];
	double t0;
	long i;
	int k;

	for (k = 0; k < n; k++) {
		l[k] = (struct iovec){ buf[k], sizeof(buf[k]) };
		r[k] = (struct iovec){ (void *)(mem + (size_t)k * 2 * PAGE + 128), sizeof(buf[k]) };
	}
	t0 = cpu_us();
	for (i = 0; i < iters; i++)
		if (process_vm_readv(child, l, (unsigned long)n, r, (unsigned long)n, 0) < 0) {
			perror("process_vm_readv");
			exit(1);
		}
	return (cpu_us() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
	double hz = argc > 1 ? atof(argv[1]) : 2000, secs = argc > 2 ? atof(argv[2]) : 5;
	char *mem;
	pid_t child;
	int i;

	if (hz <= 0 || secs <= 0) {
		fprintf(stderr, "usage: floor HZ SECONDS RANGES...\n");
		return 2;
	}
	printf("wake %.2f\n", wake_us(hz, secs));
	fflush(stdout);
	if (argc <= 3)
		return 0;
	/* Touched before the fork, so the child's pages are present. */
	mem = mmap(NULL, (size_t)MAX_RANGES * 2 * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	for (i = 0; i < MAX_RANGES * 2 * PAGE; i++)
		mem[i] = (char)i;
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (child < 0)
		return 1;
	for (i = 3; i < argc; i++) {
		int n = atoi(argv[i]);

		if (n < 1 || n > MAX_RANGES)
			continue;
		read_us(child, mem, n, 20000); /* warm */
		printf("read%d %.2f\n", n, read_us(child, mem, n, 200000));
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
