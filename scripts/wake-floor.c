/* wake-floor.c - the CPU a thread spends just waking up N times a second on
 * absolute deadlines, doing nothing else: the floor under any sampler that
 * sleeps between samples.  Usage: wake-floor HZ SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv)
{
	double hz = argc > 1 ? atof(argv[1]) : 2000, secs = argc > 2 ? atof(argv[2]) : 10;
	long long period = (long long)(1e9 / hz), next, n = (long long)(hz * secs), i;
	struct timespec ts;
	struct rusage ru;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	next = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	for (i = 0; i < n; i++) {
		next += period;
		ts.tv_sec = next / 1000000000LL;
		ts.tv_nsec = next % 1000000000LL;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("%.1f\n", ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
			  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) / (double)n);
	return 0;
}
