/* rusage_run.c - run a command; report its CPU time and peak RSS.
 *
 * Why not wait4() in the benchmark driver itself: Linux carries a process's
 * peak RSS (ru_maxrss) across execve, and a child forked or vforked from
 * the driver starts with the driver's own peak -- tens of MiB of Python --
 * so every measurement would read at least that.  This program is small:
 * the command it forks starts from its few hundred KiB instead.
 *
 * Usage: rusage_run REPORT COMMAND [ARGS...]
 *
 * Runs COMMAND (searched in PATH) with this program's stdin, stdout and
 * stderr, waits for it and writes one line to the file REPORT:
 *   status=N cpu_s=S maxrss_kib=K wall_s=W
 * status is the exit status, or 128 + the signal that killed it; cpu_s is
 * user + system time.  Exits with the command's status, 127 when it could
 * not be run, 126 when REPORT could not be written.  A signal that kills
 * this program's process group kills the command too (it stays in the
 * group).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	double t0;
	int status, code;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: rusage_run REPORT COMMAND [ARGS...]\n");
		return 127;
	}
	t0 = now_s();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage_run: fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "rusage_run: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "rusage_run: wait4: %s\n", strerror(errno));
			return 127;
		}
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 127;
	f = fopen(argv[1], "w");
	if (!f) {
		fprintf(stderr, "rusage_run: %s: %s\n", argv[1], strerror(errno));
		return 126;
	}
	fprintf(f, "status=%d cpu_s=%.6f maxrss_kib=%ld wall_s=%.6f\n", code,
		tv_s(&ru.ru_utime) + tv_s(&ru.ru_stime), ru.ru_maxrss, now_s() - t0);
	if (fclose(f)) {
		fprintf(stderr, "rusage_run: %s: %s\n", argv[1], strerror(errno));
		return 126;
	}
	return code;
}
