/* floor.c - what any sampler that sleeps between samples and reads another
 * process's memory pays on this machine, whatever its own work:
 *
 *   wake    CPU per wake-up of a thread sleeping to absolute deadlines at
 *           HZ (clock_nanosleep, timer slack 1 ns, as pyspyc's sampler)
 *   readN   CPU per process_vm_readv call of N ranges of 64 bytes, each on
 *           its own page, from a child process
 *
 *   tick    a null sampler of running processes: at HZ for SECONDS, one
 *           process_vm_readv per process a tick, of PAGES ranges of 1 KB,
 *           each on its own page of the process's heap, and nothing else
 *           (what a sampler that reads as much pays with no work of its own)
 *
 *   interrupt  a null in-kernel sampler: for SECONDS, a cpu-clock perf
 *           event on every CPU at HZ, as the eBPF backend opens, each with a
 *           BPF program that returns at once (what any sampler that
 *           interrupts the running thread that often pays here, before it
 *           reads a byte)
 *
 * Usage: floor HZ SECONDS RANGES...   prints "wake US" and "readN US" lines;
 *        floor --tick HZ SECONDS PAGES PID...   prints "tick US" (CPU per tick)
 *        and "reads N" (reads that succeeded).
 *        floor --interrupt HZ SECONDS   prints "cpus N" (events opened) and
 *        "runs N" (times the program ran, by the kernel's BPF statistics).
 * CPU is the process's user+sys time (getrusage), over all iterations. */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

/* Ticks to absolute deadlines, period ns apart, as pyspyc's sampler: the
 * first call (*next 0) sets the timer slack and starts from now. */
static void tick_sleep(long long *next, long long period)
{
	struct timespec ts;

	if (!*next) {
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		*next = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	*next += period;
	ts.tv_sec = *next / 1000000000LL;
	ts.tv_nsec = *next % 1000000000LL;
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static double wake_us(double hz, double secs)
{
	long long period = (long long)(1e9 / hz), next = 0, n = (long long)(hz * secs), i;
	double t0 = cpu_us();

	for (i = 0; i < n; i++)
		tick_sleep(&next, period);
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

/* The start of pid's heap (its [heap] mapping, else its first private
 * anonymous writable one) when it spans pages pages; 0 if none does. */
static unsigned long heap_of(int pid, int pages)
{
	char path[64], line[512];
	unsigned long lo, hi, found = 0, anon = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "";
		int name = 0;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &name) < 3 ||
		    hi - lo < (unsigned long)pages * PAGE || strncmp(perms, "rw", 2))
			continue;
		if (strstr(line, "[heap]")) {
			found = lo;
			break;
		}
		if (!anon && name > 0 && (line[name] == '\n' || line[name] == '\0'))
			anon = lo;
	}
	fclose(f);
	return found ? found : anon;
}

/* --tick HZ SECONDS PAGES PID...: see the head of the file. */
static int tick_main(int argc, char **argv)
{
	static char buf[MAX_RANGES][1024];
	struct iovec l[MAX_RANGES], r[64][MAX_RANGES];
	double hz = argc > 5 ? atof(argv[2]) : 0, secs = argc > 5 ? atof(argv[3]) : 0, t0;
	int pages = argc > 5 ? atoi(argv[4]) : 0, npid = argc - 5, pid[64], i, k;
	long long period, next = 0, n, t;
	unsigned long reads = 0;

	if (hz <= 0 || secs <= 0 || pages < 1 || pages > MAX_RANGES || npid < 1 || npid > 64) {
		fprintf(stderr, "usage: floor --tick HZ SECONDS PAGES PID... (PAGES 1 to %d, "
			"1 to 64 pids)\n", MAX_RANGES);
		return 2;
	}
	for (k = 0; k < pages; k++)
		l[k] = (struct iovec){ buf[k], sizeof(buf[k]) };
	for (i = 0; i < npid; i++) {
		unsigned long heap;

		pid[i] = atoi(argv[5 + i]);
		heap = heap_of(pid[i], pages);
		if (!heap) {
			fprintf(stderr, "floor: pid %d has no heap of %d pages\n", pid[i], pages);
			return 1;
		}
		for (k = 0; k < pages; k++)
			r[i][k] = (struct iovec){ (void *)(heap + (unsigned long)k * PAGE + 1024),
						  sizeof(buf[k]) };
	}
	period = (long long)(1e9 / hz);
	n = (long long)(hz * secs);
	t0 = cpu_us();
	for (t = 0; t < n; t++) {
		tick_sleep(&next, period);
		for (i = 0; i < npid; i++) {
			if (process_vm_readv(pid[i], l, (unsigned long)pages, r[i],
					     (unsigned long)pages, 0) > 0)
				reads++;
			else if (errno != ESRCH && errno != EFAULT)
				perror("process_vm_readv");
		}
	}
	printf("tick %.2f\nreads %lu\n", (cpu_us() - t0) / (double)n, reads);
	if (!reads)
		fprintf(stderr, "floor: no read succeeded\n");
	return reads ? 0 : 1;
}

/* --interrupt HZ SECONDS: see the head of the file. */
static int interrupt_main(int argc, char **argv)
{
	/* r0 = 0; exit */
	struct bpf_insn prog[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	double hz = argc == 4 ? atof(argv[2]) : 0, secs = argc == 4 ? atof(argv[3]) : 0;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF), cpu;
	int pfd, sfd, opened = 0;
	union bpf_attr a;
	struct bpf_prog_info info;

	if (hz < 1 || secs <= 0) {
		fprintf(stderr, "usage: floor --interrupt HZ SECONDS\n");
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_PERF_EVENT;
	a.insns = (unsigned long)prog;
	a.insn_cnt = 2;
	a.license = (unsigned long)"GPL";
	pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (pfd < 0) {
		perror("floor: loading the program");
		return 1;
	}
	/* The kernel counts the program's runs while this is open. */
	memset(&a, 0, sizeof(a));
	a.enable_stats.type = BPF_STATS_RUN_TIME;
	sfd = (int)syscall(SYS_bpf, BPF_ENABLE_STATS, &a, sizeof(a));
	for (cpu = 0; cpu < ncpu; cpu++) {
		struct perf_event_attr e;
		int fd;

		memset(&e, 0, sizeof(e));
		e.size = sizeof(e);
		e.type = PERF_TYPE_SOFTWARE;
		e.config = PERF_COUNT_SW_CPU_CLOCK;
		e.freq = 1;
		e.sample_freq = (unsigned long long)(hz + 0.5);
		fd = (int)syscall(SYS_perf_event_open, &e, -1, (int)cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0)
			continue; /* an offline CPU */
		if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, pfd) || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) {
			perror("floor: attaching the program");
			return 1;
		}
		opened++;
	}
	if (!opened) {
		fprintf(stderr, "floor: no CPU took a cpu-clock event\n");
		return 1;
	}
	usleep((useconds_t)(secs * 1e6));
	memset(&info, 0, sizeof(info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (unsigned)pfd;
	a.info.info_len = sizeof(info);
	a.info.info = (unsigned long)&info;
	printf("cpus %d\n", opened);
	if (sfd >= 0 && !syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)))
		printf("runs %llu\n", (unsigned long long)info.run_cnt);
	return 0;
}

int main(int argc, char **argv)
{
	double hz = argc > 1 ? atof(argv[1]) : 2000, secs = argc > 2 ? atof(argv[2]) : 5;
	char *mem;
	pid_t child;
	int i;

	if (argc > 1 && !strcmp(argv[1], "--tick"))
		return tick_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "--interrupt"))
		return interrupt_main(argc, argv);
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
