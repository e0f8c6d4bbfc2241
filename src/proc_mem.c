/* proc_mem.c - bounded reads of the target's memory. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "pyspyc/proc.h"

void rmem_init(struct rmem *m, pid_t pid)
{
	m->pid = pid;
	m->reads = 0;
}

static size_t iov_total(const struct iovec *v, size_t n)
{
	size_t i, t = 0;

	for (i = 0; i < n; i++)
		t += v[i].iov_len;
	return t;
}

int rmem_readv(struct rmem *m, const struct iovec *local,
	       const struct iovec *remote, size_t n)
{
	ssize_t got;

	if (n == 0)
		return 0;
	if (n > RMEM_MAX_IOV)
		return -E2BIG;
	m->reads++;
	got = process_vm_readv(m->pid, local, n, remote, n, 0);
	if (got < 0)
		return -errno;
	/* A short count means one remote range crossed into unmapped memory. */
	if ((size_t)got != iov_total(remote, n))
		return -EFAULT;
	return 0;
}

int rmem_read(struct rmem *m, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { .iov_base = buf, .iov_len = len };
	struct iovec r = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	if (addr == 0)
		return -EFAULT;
	return rmem_readv(m, &l, &r, 1);
}

int rmem_read_ptr(struct rmem *m, uint64_t addr, uint64_t *out)
{
	return rmem_read(m, addr, out, sizeof(*out));
}
