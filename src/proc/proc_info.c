/* proc_info.c - what /proc says about the target. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/proc.h"

/* Read a small /proc file whole.  Returns bytes read or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			total = -errno;
			break;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	if (total >= 0)
		buf[total] = '\0';
	return total;
}

int proc_maps_foreach(pid_t pid, int (*fn)(const struct proc_map *m, void *ctx),
		      void *ctx)
{
	char path[64], line[4096 + 256];
	struct proc_map *m;
	pid_t tid = proc_live_task(pid);
	FILE *f;
	int ret = 0;

	if (tid < 0)
		return tid;
	/* A main thread that exited has no maps; its live threads share them. */
	if (tid == pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", (int)pid, (int)tid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	m = malloc(sizeof(*m));
	if (!m) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "", *p;
		unsigned long long start, end, off, ino;
		unsigned int major, minor;
		size_t len;
		int consumed = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end,
			   perms, &off, &major, &minor, &ino, &consumed) < 7 || consumed == 0)
			continue;
		p = line + consumed;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\n")] = '\0';
		if (*p != '/')
			continue;
		/* A file deleted or replaced since it was mapped (a package
		 * upgrade) is named "path (deleted)"; a name that really ends
		 * so is told apart by the dev and inode checks of the callers. */
		len = strlen(p);
		m->deleted = len > 10 && !strcmp(p + len - 10, " (deleted)");
		if (m->deleted)
			p[len - 10] = '\0';
		m->start = start;
		m->end = end;
		m->offset = off;
		m->dev = makedev(major, minor);
		m->ino = ino;
		m->prot = (perms[0] == 'r' ? PROT_READ : 0) |
			  (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		snprintf(m->path, sizeof(m->path), "%s", p);
		ret = fn(m, ctx);
		if (ret)
			break;
	}
	if (!ret && ferror(f))
		ret = -EIO;
	free(m);
	fclose(f);
	return ret;
}


/* /proc/PID/stat into buf; *rest points just past the command name (which
 * may hold ')' and spaces itself). */
static int read_stat(pid_t pid, char *buf, size_t size, char **rest)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, size);
	if (n < 0)
		return (int)n;
	*rest = strrchr(buf, ')');
	return *rest ? 0 : -EINVAL;
}

int proc_state(pid_t pid)
{
	char buf[1024], *rp = NULL;
	int err;

	err = read_stat(pid, buf, sizeof(buf), &rp);
	if (err)
		return err;
	if (rp[1] != ' ' || !rp[2])
		return -EINVAL;
	return (unsigned char)rp[2];
}

static int dead_state(int st)
{
	return st == 'Z' || st == 'X' || st < 0;
}

pid_t proc_live_task(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	pid_t found = -ESRCH;
	int st = proc_state(pid);

	if (st == -ESRCH || st == -ENOENT)
		return -ESRCH;
	if (!dead_state(st))
		return pid;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while (found < 0 && (d = readdir(dir))) {
		char *end, stat_path[96], buf[512], *rp;
		long v = strtol(d->d_name, &end, 10);

		if (*end || v <= 0 || v > INT32_MAX || v == pid)
			continue;
		snprintf(stat_path, sizeof(stat_path), "/proc/%d/task/%ld/stat", (int)pid, v);
		if (read_small(stat_path, buf, sizeof(buf)) <= 0)
			continue;
		rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && rp[2] && !dead_state((unsigned char)rp[2]))
			found = (pid_t)v;
	}
	closedir(dir);
	return found;
}

int proc_exiting(pid_t pid)
{
	char path[64], buf[1024], *rp;
	unsigned long long vsize;
	pid_t tid = proc_live_task(pid);

	if (tid < 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (read_small(path, buf, sizeof(buf)) <= 0 || !(rp = strrchr(buf, ')')))
		return 1;
	/* Fields after comm: state ppid pgrp session tty_nr tpgid flags
	 * minflt cminflt majflt cmajflt utime stime cutime cstime priority
	 * nice num_threads itrealvalue starttime vsize: 0 once the memory
	 * is gone (a user process has some while it runs). */
	if (sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			   "%*d %*d %*d %*d %*u %llu", &vsize) != 1)
		return 0;
	return vsize == 0;
}

int proc_tasks_open(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

int proc_tasks_read(int dirfd, int32_t *tids, size_t cap)
{
	char buf[8192];
	size_t n = 0, i, j;
	ssize_t got;

	if (lseek(dirfd, 0, SEEK_SET) < 0)
		return -errno;
	while (n < cap && (got = getdents64(dirfd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < got && n < cap) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			char *end;
			long v = strtol(d->d_name, &end, 10);

			off += d->d_reclen;
			if (*end || v <= 0 || v > INT32_MAX)
				continue;
			tids[n++] = (int32_t)v;
		}
		/* An entry here takes at most 32 bytes (a name of at most 10
		 * digits): a call that left more room than that unfilled has
		 * listed them all, and the call that would say so is saved. */
		if ((size_t)got + 64 <= sizeof(buf))
			break;
	}
	if (n < cap && got < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Insertion sort: the kernel lists threads in the order they were
	 * made, which is nearly the order of their ids. */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && tids[j - 1] > tids[j]; j--) {
			int32_t x = tids[j];

			tids[j] = tids[j - 1];
			tids[j - 1] = x;
		}
	return n > INT_MAX ? INT_MAX : (int)n;
}

int proc_tasks(pid_t pid, int32_t *tids, size_t cap)
{
	int fd = proc_tasks_open(pid), n;

	if (fd < 0)
		return fd;
	n = proc_tasks_read(fd, tids, cap);
	close(fd);
	return n;
}

int proc_task_of(pid_t pid, pid_t tid)
{
	char path[64];

	if (tid == pid)
		return proc_state(pid) >= 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	return access(path, F_OK) == 0;
}

int64_t proc_age_ns(pid_t pid)
{
	struct timespec now;
	uint64_t start;
	pid_t ppid;
	long hz = sysconf(_SC_CLK_TCK);
	int err;

	err = proc_stat_ids(pid, &ppid, &start, NULL);
	if (err)
		return err;
	/* The start time counts clock ticks since boot, as CLOCK_BOOTTIME. */
	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now))
		return -EINVAL;
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec -
	       (int64_t)(start * (1000000000 / (uint64_t)hz));
}

int proc_is_kernel_thread(pid_t pid)
{
	char buf[1024], *rp = NULL;
	unsigned long flags;
	int err;

	err = read_stat(pid, buf, sizeof(buf), &rp);
	if (err)
		return err;
	/* Fields after comm: state ppid pgrp session tty_nr tpgid flags. */
	if (sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return -EINVAL;
	return (flags & 0x00200000) ? 1 : 0; /* PF_KTHREAD */
}

int proc_cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n, i;

	if (size == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_small(path, buf, size);
	if (n < 0)
		return (int)n;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\0')
			buf[i] = ' ';
		else if (c < 0x20 || c == 0x7f)
			buf[i] = '?';
	}
	buf[n] = '\0';
	return 0;
}

int proc_stat_ids(pid_t pid, pid_t *ppid, uint64_t *start, int *state)
{
	char buf[1024], *rp = NULL;
	unsigned long long st;
	char c;
	int pp, err;

	err = read_stat(pid, buf, sizeof(buf), &rp);
	if (err)
		return err;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads
	 * itrealvalue starttime */
	if (sscanf(rp + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
			   "%*d %*d %*d %*d %*d %*d %llu", &c, &pp, &st) != 3)
		return -EINVAL;
	*ppid = (pid_t)pp;
	*start = st;
	if (state)
		*state = (unsigned char)c;
	return 0;
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int proc_handle_open(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : (int)fd;
}

int proc_handle_exited(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, 0);
	while (n < 0 && errno == EINTR);
	return n > 0;
}

struct pnode {
	pid_t pid, ppid;
	uint64_t start;
};

/* Append the pids in one /proc/PID/task/TID/children file to kids (at
 * most cap in all).  0 or -errno (-ENOENT: no such file). */
static int read_children(const char *path, pid_t *kids, size_t cap, size_t *n)
{
	size_t size = 4096, used = 0;
	char *buf = malloc(size), *p, *end, *grown;
	ssize_t len;
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	/* Read it whole: "pid pid pid " (6 bytes a child at most, and at
	 * most 4 MiB: more than the pids a system has). */
	for (;;) {
		if (used == size - 1) {
			if (size >= (4u << 20))
				break;
			grown = realloc(buf, size * 2);
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			buf = grown;
			size *= 2;
		}
		len = read(fd, buf + used, size - 1 - used);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			break;
		used += (size_t)len;
	}
	close(fd);
	buf[used] = '\0';
	for (p = buf; !err && *p && *n < cap; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p) {
			end = p + 1; /* not a digit: step over it */
			continue;
		}
		if (v > 0 && v <= INT32_MAX)
			kids[(*n)++] = (pid_t)v;
	}
	free(buf);
	return err;
}

/* The processes pid's threads started, into kids (appended).  0 or -errno
 * (-ENOENT: the kernel has no children files, CONFIG_PROC_CHILDREN). */
static int children_of(pid_t pid, pid_t *kids, size_t cap, size_t *n)
{
	char path[96];
	struct dirent *d;
	DIR *dir;
	int err = 0, any = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while ((d = readdir(dir))) {
		char *end;
		long tid = strtol(d->d_name, &end, 10);

		if (*end || tid <= 0 || tid > INT32_MAX)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%ld/children", (int)pid, tid);
		err = read_children(path, kids, cap, n);
		if (err == -ENOENT && !any) {
			/* The thread exited, or no such files at all. */
			snprintf(path, sizeof(path), "/proc/%d/task/%ld", (int)pid, tid);
			if (!access(path, F_OK))
				break;
			err = 0;
			continue;
		}
		err = 0;
		any = 1;
	}
	closedir(dir);
	return err;
}

/* Breadth first from root through the children files; each process is
 * taken at most once, so a reused pid cannot make it loop.  -ENOENT when
 * the kernel has no children files. */
static int descendants_walk(pid_t root, struct proc_ident *out, size_t cap)
{
	pid_t *kids;
	size_t kcap = 1024, nout = 0, head;
	int err;

	kids = malloc(kcap * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (head = 0;; head++) {
		pid_t parent = head ? out[head - 1].pid : root;
		size_t nk = 0, i, j;

		if (head > nout)
			break;
		err = children_of(parent, kids, kcap, &nk);
		if (err == -ENOENT && !head)
			goto out;
		for (i = 0; i < nk && nout < cap; i++) {
			struct proc_ident id = { .pid = kids[i] };

			if (kids[i] == root)
				continue;
			for (j = 0; j < nout && out[j].pid != kids[i]; j++)
				;
			if (j < nout || proc_stat_ids(id.pid, &id.ppid, &id.start, NULL))
				continue; /* seen, or exited while we looked */
			out[nout++] = id;
		}
		if (head == nout)
			break;
	}
	err = 0;
out:
	free(kids);
	return err ? err : (int)nout;
}

int proc_descendants(pid_t root, struct proc_ident *out, size_t cap)
{
	struct pnode *all = NULL, *grown;
	size_t nall = 0, allcap = 0, nout = 0, head = 0, i;
	struct dirent *d;
	DIR *dir;
	pid_t *queue = NULL;
	int err;

	err = descendants_walk(root, out, cap);
	if (err != -ENOENT)
		return err;
	err = 0;
	/* No children files: one scan of every process. */
	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		char *end;
		long v = strtol(d->d_name, &end, 10);
		struct pnode pn;

		if (*end || v <= 0 || v > INT32_MAX || v == root)
			continue;
		pn.pid = (pid_t)v;
		if (proc_stat_ids(pn.pid, &pn.ppid, &pn.start, NULL))
			continue; /* exited while we looked */
		if (nall == allcap) {
			allcap = allcap ? allcap * 2 : 256;
			grown = realloc(all, allcap * sizeof(*all));
			if (!grown) {
				err = -ENOMEM;
				goto out;
			}
			all = grown;
		}
		all[nall++] = pn;
	}
	/* Breadth first from root; each process is taken at most once, so a
	 * parent loop (pid reuse while scanning) cannot spin. */
	queue = malloc((nall + 1) * sizeof(*queue));
	if (!queue) {
		err = -ENOMEM;
		goto out;
	}
	queue[0] = root;
	for (i = 1, head = 0; head < i && nout < cap; head++) {
		size_t k;

		for (k = 0; k < nall && nout < cap; k++) {
			if (all[k].ppid != queue[head] || !all[k].pid)
				continue;
			out[nout].pid = all[k].pid;
			out[nout].ppid = all[k].ppid;
			out[nout].start = all[k].start;
			nout++;
			queue[i++] = all[k].pid;
			all[k].pid = 0;
		}
	}
out:
	closedir(dir);
	free(queue);
	free(all);
	return err ? err : (int)nout;
}

static int open_path_in_root(const char *root, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	char joined[PATH_MAX];
	int dfd, fd, e;

	if (!root[0]) {
		fd = open(path, O_PATH | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
	e = errno;
	close(dfd);
	if (fd >= 0 || e != ENOSYS)
		return fd >= 0 ? fd : -e;
	/* A kernel before 5.6: the path joined to root, where an absolute
	 * symlink would resolve in our root; still only a regular file. */
	if (snprintf(joined, sizeof(joined), "%s%s", root, path) >= (int)sizeof(joined))
		return -ENAMETOOLONG;
	fd = open(joined, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int path_open_in_root(const char *root, const char *path, int o_path)
{
	char self[64];
	struct stat st;
	int fd, rfd;

	fd = open_path_in_root(root, path);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		rfd = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rfd = -EINVAL;
		goto out;
	}
	if (o_path)
		return fd;
	/* Reopen the very file resolved above, now known to be regular. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	rfd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rfd < 0)
		rfd = -errno;
out:
	close(fd);
	return rfd;
}
