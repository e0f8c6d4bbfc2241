/* proc_ns.c - a process's thread ids as its own PID namespace numbers them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/clock.h"
#include "pyspyc/proc_ns.h"

#define STATUS_FIRST 4096       /* the NSpid line is near the top */
#define STATUS_MAX (1 << 20)    /* a huge Groups line can push it down */
#define PID_LIMIT 4194304       /* the kernel's PID_MAX_LIMIT: no more tasks */
#define MAX_LEVELS 40           /* NSpid fields: the kernel nests 32 deep */

int proc_nspid_parse(const char *buf, size_t len, int32_t *ids, int cap)
{
	static const char key[] = "NSpid:";
	size_t i = 0, k = sizeof(key) - 1;
	int n = 0;

	/* the line starts the text or follows a newline */
	while (i + k <= len && memcmp(buf + i, key, k)) {
		const char *nl = memchr(buf + i, '\n', len - i);

		if (!nl)
			return 0;
		i = (size_t)(nl - buf) + 1;
	}
	if (i + k > len)
		return 0;
	for (i += k;;) {
		long long v = 0;
		size_t digits = 0;

		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i >= len)
			return -EINVAL; /* cut short: the line has no end here */
		if (buf[i] == '\n')
			return n ? n : -EINVAL;
		while (i < len && buf[i] >= '0' && buf[i] <= '9' && digits < 10) {
			v = v * 10 + (buf[i++] - '0');
			digits++;
		}
		if (!digits || v <= 0 || v > INT32_MAX || i >= len ||
		    (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n'))
			return -EINVAL;
		if (n < cap)
			ids[n] = (int32_t)v;
		if (n == INT32_MAX)
			return -EINVAL;
		n++;
	}
}

/* The NSpid fields of /proc/<dir>/status (dir: "PID" or "PID/task/TID")
 * into ids[0..cap).  Returns the field count, 0 when there is no NSpid
 * line, or -errno. */
static int read_nspid(struct ns_map *m, const char *dir, int32_t *ids, int cap)
{
	char path[96];
	size_t len = 0;
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/%s/status", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t got;

		if (len == m->buf_size) {
			size_t size = m->buf_size ? m->buf_size * 2 : STATUS_FIRST;
			char *b;

			if (size > STATUS_MAX) {
				n = -EFBIG;
				break;
			}
			b = realloc(m->buf, size);
			if (!b) {
				n = -ENOMEM;
				break;
			}
			m->buf = b;
			m->buf_size = size;
		}
		got = read(fd, m->buf + len, m->buf_size - len);
		if (got < 0) {
			n = -errno;
			break;
		}
		len += (size_t)got;
		n = proc_nspid_parse(m->buf, len, ids, cap);
		if (n > 0)
			break;
		if (got == 0)
			break; /* 0: no NSpid line (kernels before 4.1) */
	}
	close(fd);
	return n;
}

static int by_inner(const void *a, const void *b)
{
	const struct ns_tid *x = a, *y = b;

	return (x->inner > y->inner) - (x->inner < y->inner);
}

static int by_host(const void *a, const void *b)
{
	const struct ns_tid *x = a, *y = b;

	return (x->host > y->host) - (x->host < y->host);
}

int ns_map_read(struct ns_map *m)
{
	char path[64], dir[96];
	struct ns_tid *ids = NULL, key, *old;
	uint32_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dh;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)m->pid);
	dh = opendir(path);
	if (!dh)
		return -errno;
	/* A task keeps its ids for life: only tasks new since the last read
	 * have their status read (a thread pool that churns threads costs a
	 * directory listing and the new ones). */
	if (m->n)
		qsort(m->ids, m->n, sizeof(*m->ids), by_host);
	while ((d = readdir(dh))) {
		int32_t f[MAX_LEVELS];
		char *end;
		long v = strtol(d->d_name, &end, 10);
		int k;

		if (*end || v <= 0 || v > INT32_MAX)
			continue;
		key.host = (int32_t)v;
		old = m->n ? bsearch(&key, m->ids, m->n, sizeof(*m->ids), by_host) : NULL;
		if (old) {
			f[0] = old->inner;
			k = 1;
		} else {
			snprintf(dir, sizeof(dir), "%d/task/%ld", (int)m->pid, v);
			k = read_nspid(m, dir, f, MAX_LEVELS);
			if (k <= 0 || k > MAX_LEVELS)
				continue; /* the task ended meanwhile */
		}
		if (n == cap) {
			struct ns_tid *grown;

			if (cap >= PID_LIMIT) {
				err = -E2BIG;
				break;
			}
			cap = cap ? cap * 2 : 64;
			grown = realloc(ids, cap * sizeof(*ids));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			ids = grown;
		}
		ids[n].host = (int32_t)v;
		ids[n].inner = f[k - 1];
		n++;
	}
	closedir(dh);
	if (err) {
		free(ids);
		if (m->n)
			qsort(m->ids, m->n, sizeof(*m->ids), by_inner);
		return err;
	}
	qsort(ids, n, sizeof(*ids), by_inner);
	free(m->ids);
	m->ids = ids;
	m->n = n;
	m->cap = cap;
	m->read_ns = mono_ns();
	return 0;
}

/* 1 when pid's PID namespace is ours, 0 when not, -errno when unknown. */
static int same_pid_ns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &a) || stat("/proc/self/ns/pid", &b))
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int ns_map_init(struct ns_map *m, pid_t pid)
{
	char dir[32];
	int32_t f[MAX_LEVELS];
	int k;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->inner_pid = pid;
	if (same_pid_ns(pid) == 1)
		return 0;
	/* Another namespace, or one we may not look at: NSpid tells whether
	 * the process's ids differ from /proc's. */
	snprintf(dir, sizeof(dir), "%d", (int)pid);
	k = read_nspid(m, dir, f, MAX_LEVELS);
	if (k < 0)
		return k == -ENOENT ? -ESRCH : k;
	if (k < 2 || k > MAX_LEVELS)
		return 0;
	m->inner_pid = f[k - 1];
	m->active = 1;
	return ns_map_read(m);
}

int32_t ns_map_host(const struct ns_map *m, int32_t inner)
{
	uint32_t lo = 0, hi = m->n;

	if (!m->active)
		return inner;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (m->ids[mid].inner == inner)
			return m->ids[mid].host;
		if (m->ids[mid].inner < inner)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int32_t ns_map_inner(const struct ns_map *m, int32_t host)
{
	uint32_t i;

	if (!m->active || host <= 0)
		return 0;
	for (i = 0; i < m->n; i++) /* a dump's worth of lookups: no index */
		if (m->ids[i].host == host)
			return m->ids[i].inner;
	return 0;
}

void ns_map_release(struct ns_map *m)
{
	if (!m)
		return;
	free(m->ids);
	free(m->buf);
	m->ids = NULL;
	m->buf = NULL;
	m->n = m->cap = 0;
	m->buf_size = 0;
	m->active = 0;
}
