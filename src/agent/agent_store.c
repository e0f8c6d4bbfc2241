/* agent_store.c - the agent's windows on disk (agent_store.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/agent_store.h"

#define STEM_LEN 16            /* YYYYMMDDTHHMMSSZ */
#define SEQ_MAX 999
#define LIST_MAX (1u << 20)    /* window files listed at most */

static const char *const exts[] = { ".pb.gz", ".folded" };

static int cmp_age(const struct agent_window_file *a, const struct agent_window_file *b)
{
	if (a->start_ns != b->start_ns)
		return (a->start_ns > b->start_ns) - (a->start_ns < b->start_ns);
	if (a->seq != b->seq)
		return (a->seq > b->seq) - (a->seq < b->seq);
	return (a->service > b->service) - (a->service < b->service);
}

static int by_age(const void *a, const void *b, void *base)
{
	const struct agent_window_file *v = base;

	return cmp_age(&v[*(const size_t *)a], &v[*(const size_t *)b]);
}

size_t agent_retention_plan(struct agent_window_file *v, size_t n,
			    const struct agent_retention *r)
{
	size_t *order, *newest = NULL, i, doomed = 0;
	uint32_t nsvc = 0;
	uint64_t total = 0;

	if (!n)
		return 0;
	order = malloc(n * sizeof(*order));
	if (!order)
		return 0; /* nothing deleted this time; the next pass tries again */
	for (i = 0; i < n; i++) {
		order[i] = i;
		v[i].doomed = 0;
		if (v[i].service + 1 > nsvc)
			nsvc = v[i].service + 1;
	}
	newest = calloc(nsvc, sizeof(*newest));
	if (!newest) {
		free(order);
		return 0;
	}
	/* Oldest first. */
	qsort_r(order, n, sizeof(*order), by_age, v);
	for (i = 0; i < n; i++)
		newest[v[order[i]].service] = order[i] + 1; /* the last seen: newest */

	for (i = 0; i < n; i++) {
		struct agent_window_file *w = &v[i];
		double age = r->svc_keep_age_s ? r->svc_keep_age_s[w->service] : 0;

		if (age > 0 && (double)(r->now_ns - w->start_ns) > age * 1e9) {
			w->doomed = 1;
			doomed++;
		}
	}
	if (r->svc_keep_bytes) {
		uint32_t s;

		for (s = 0; s < nsvc; s++) {
			uint64_t bound = r->svc_keep_bytes[s], sum = 0;

			if (!bound)
				continue;
			for (i = 0; i < n; i++)
				if (v[i].service == s && !v[i].doomed)
					sum += v[i].bytes;
			for (i = 0; i < n && sum > bound; i++) {
				struct agent_window_file *w = &v[order[i]];

				if (w->service != s || w->doomed || newest[s] == order[i] + 1)
					continue;
				w->doomed = 1;
				doomed++;
				sum -= w->bytes;
			}
		}
	}
	if (r->keep_bytes) {
		for (i = 0; i < n; i++)
			if (!v[i].doomed)
				total += v[i].bytes;
		for (i = 0; i < n && total > r->keep_bytes; i++) {
			struct agent_window_file *w = &v[order[i]];

			if (w->doomed || newest[w->service] == order[i] + 1)
				continue;
			w->doomed = 1;
			doomed++;
			total -= w->bytes;
		}
	}
	free(newest);
	free(order);
	return doomed;
}

int agent_window_stem(int64_t start_ns, uint32_t seq, char *buf, size_t size)
{
	time_t t = (time_t)(start_ns / 1000000000);
	struct tm tm;
	int n;

	if (start_ns < 0 || !gmtime_r(&t, &tm) || seq < 1 || seq > SEQ_MAX)
		return -EINVAL;
	if (seq == 1)
		n = snprintf(buf, size, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		n = snprintf(buf, size, "%04d%02d%02dT%02d%02d%02dZ-%u", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, seq);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int agent_window_parse(const char *name, int64_t *start_ns, uint32_t *seq, const char **ext)
{
	struct tm tm;
	const char *p = name + STEM_LEN;
	int y, mo, d, h, mi, s, k;
	time_t t;
	char back[STEM_LEN + 1];

	if (strlen(name) < STEM_LEN || name[8] != 'T' || name[15] != 'Z' ||
	    digits(name, 4, &y) || digits(name + 4, 2, &mo) || digits(name + 6, 2, &d) ||
	    digits(name + 9, 2, &h) || digits(name + 11, 2, &mi) || digits(name + 13, 2, &s))
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	/* Only a time written the way agent_window_stem writes it. */
	if (agent_window_stem((int64_t)t * 1000000000, 1, back, sizeof(back)) ||
	    memcmp(back, name, STEM_LEN))
		return -EINVAL;
	*seq = 1;
	if (*p == '-') {
		const char *q = ++p;

		while (*q >= '0' && *q <= '9' && q - p < 4)
			q++;
		if (q == p || *p == '0' || digits(p, (int)(q - p), &k) || k < 2 || k > SEQ_MAX)
			return -EINVAL;
		*seq = (uint32_t)k;
		p = q;
	}
	for (k = 0; k < (int)(sizeof(exts) / sizeof(exts[0])); k++)
		if (!strcmp(p, exts[k])) {
			*start_ns = (int64_t)t * 1000000000;
			*ext = exts[k];
			return 0;
		}
	return -EINVAL;
}

static int by_window(const void *a, const void *b)
{
	return cmp_age(a, b);
}

int agent_store_list(const char *state_dir, const char *const *services, size_t nservices,
		     struct agent_window_file **out, size_t *n)
{
	struct agent_window_file *v = NULL;
	size_t cap = 0, used = 0, s, i, k;
	int err = 0;

	/* A file each, then a window's files (.pb.gz, .folded) merged: one
	 * sort, not a search of the list per file. */
	for (s = 0; s < nservices && !err; s++) {
		char dir[PATH_MAX];
		struct dirent *e;
		DIR *d;
		int dfd;

		if (snprintf(dir, sizeof(dir), "%s/%s", state_dir, services[s]) >= (int)sizeof(dir))
			continue;
		d = opendir(dir);
		if (!d) {
			if (errno == ENOENT)
				continue;
			err = -errno;
			break;
		}
		dfd = dirfd(d);
		while ((e = readdir(d))) {
			struct agent_window_file w = { .service = (uint32_t)s };
			const char *ext;
			struct stat st;

			if (agent_window_parse(e->d_name, &w.start_ns, &w.seq, &ext) ||
			    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
				continue;
			if (used == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct agent_window_file *nv;

				if (ncap > LIST_MAX) {
					err = -E2BIG;
					break;
				}
				nv = realloc(v, ncap * sizeof(*nv));
				if (!nv) {
					err = -ENOMEM;
					break;
				}
				v = nv;
				cap = ncap;
			}
			w.bytes = (uint64_t)st.st_size;
			v[used++] = w;
		}
		closedir(d);
	}
	if (err) {
		free(v);
		return err;
	}
	if (used)
		qsort(v, used, sizeof(*v), by_window);
	for (i = k = 0; i < used; i++) {
		if (k && !cmp_age(&v[k - 1], &v[i]))
			v[k - 1].bytes += v[i].bytes;
		else
			v[k++] = v[i];
	}
	*out = v;
	*n = k;
	return 0;
}

uint64_t agent_store_delete(const char *state_dir, const char *const *services,
			    const struct agent_window_file *v, size_t n)
{
	uint64_t freed = 0;
	size_t i, k;

	for (i = 0; i < n; i++) {
		char stem[STEM_LEN + 8], path[PATH_MAX];
		int gone = 0;

		if (!v[i].doomed || agent_window_stem(v[i].start_ns, v[i].seq, stem, sizeof(stem)))
			continue;
		for (k = 0; k < sizeof(exts) / sizeof(exts[0]); k++) {
			if (snprintf(path, sizeof(path), "%s/%s/%s%s", state_dir,
				     services[v[i].service], stem, exts[k]) >= (int)sizeof(path))
				continue;
			if (!unlink(path))
				gone = 1;
		}
		if (gone)
			freed += v[i].bytes;
	}
	return freed;
}

int agent_store_room(const char *dir, uint64_t need, uint64_t min_free_bytes,
		     double min_free_pct, char *why, size_t whylen)
{
	struct statvfs sv;
	uint64_t avail, total, keep;

	if (statvfs(dir, &sv))
		return -errno;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	keep = min_free_bytes ? min_free_bytes : (uint64_t)((double)total * min_free_pct / 100.0);
	if (avail >= need && avail - need >= keep)
		return 0;
	if (min_free_bytes)
		snprintf(why, whylen, "%llu bytes free under %s; min_free keeps %llu",
			 (unsigned long long)avail, dir, (unsigned long long)keep);
	else
		snprintf(why, whylen, "%llu bytes free under %s; min_free keeps %g%% (%llu bytes)",
			 (unsigned long long)avail, dir, min_free_pct, (unsigned long long)keep);
	return -ENOSPC;
}

int agent_store_service_dir(const char *state_dir, const char *service)
{
	char dir[PATH_MAX];
	struct stat st;

	if (snprintf(dir, sizeof(dir), "%s/%s", state_dir, service) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	if (!mkdir(dir, 0750))
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int agent_store_path(const char *state_dir, const char *service, int64_t start_ns,
		     char *path, size_t size)
{
	uint32_t seq;

	for (seq = 1; seq <= SEQ_MAX; seq++) {
		char stem[STEM_LEN + 8], probe[PATH_MAX];
		size_t k;
		int taken = 0, err;

		err = agent_window_stem(start_ns, seq, stem, sizeof(stem));
		if (err)
			return err;
		for (k = 0; k < sizeof(exts) / sizeof(exts[0]); k++) {
			struct stat st;

			if (snprintf(probe, sizeof(probe), "%s/%s/%s%s", state_dir, service, stem,
				     exts[k]) >= (int)sizeof(probe))
				return -ENAMETOOLONG;
			if (!lstat(probe, &st) || errno != ENOENT)
				taken = 1;
		}
		if (taken)
			continue;
		if (snprintf(path, size, "%s/%s/%s", state_dir, service, stem) >= (int)size)
			return -ENAMETOOLONG;
		return 0;
	}
	return -EEXIST;
}

int agent_store_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}
