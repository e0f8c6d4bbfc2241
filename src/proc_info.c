/* proc_info.c - what /proc says about the target. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
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
		unsigned long long start, end, off;
		int consumed = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s%n", &start, &end,
			   perms, &off, &consumed) < 4 || consumed == 0)
			continue;
		p = line + consumed;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\n")] = '\0';
		if (*p != '/')
			continue;
		m->start = start;
		m->end = end;
		m->offset = off;
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

int proc_state(pid_t pid)
{
	char path[64], buf[1024], *rp;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* comm may hold ')' and spaces: the state follows the last ')'. */
	rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || !rp[2])
		return -EINVAL;
	return (unsigned char)rp[2];
}

int proc_is_kernel_thread(pid_t pid)
{
	char path[64], buf[1024], *rp;
	unsigned long flags;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	rp = strrchr(buf, ')');
	if (!rp)
		return -EINVAL;
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
