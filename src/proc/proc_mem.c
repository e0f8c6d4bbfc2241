/* proc_mem.c - bounded reads of the target's memory. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#include "pyspyc/proc.h"

#define PAGE 4096u

void rmem_init(struct rmem *m, pid_t pid)
{
	m->pid = pid;
	m->tgid = pid;
	m->reads = 0;
	m->ranges = 0;
	m->pages = 0;
	m->bytes = 0;
	m->fake = NULL;
	m->fake_ctx = NULL;
}

static size_t iov_total(const struct iovec *v, size_t n)
{
	size_t i, t = 0;

	for (i = 0; i < n; i++)
		t += v[i].iov_len;
	return t;
}

/* Per sampler thread: the merged read being built.  Gap bytes land in
 * discard, which nobody reads. */
static __thread struct iovec co_local[2 * RMEM_MAX_IOV], co_remote[RMEM_MAX_IOV];
static __thread uint16_t co_order[RMEM_MAX_IOV];
static __thread uint8_t discard[2 * PAGE];

static uint64_t r_start(const struct iovec *r)
{
	return (uint64_t)(uintptr_t)r->iov_base;
}

/* Order remote ranges by address; n is small and often nearly sorted. */
static void sort_order(const struct iovec *remote, uint16_t *o, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		o[i] = (uint16_t)i;
	for (i = 1; i < n; i++) {
		uint16_t v = o[i];
		uint64_t a = r_start(&remote[v]);

		for (j = i; j > 0 && r_start(&remote[o[j - 1]]) > a; j--)
			o[j] = o[j - 1];
		o[j] = v;
	}
}

/* The kernel's cost of a remote read grows with the number of remote ranges
 * (each is looked up and its pages pinned separately), hardly with their
 * bytes.  So ranges that touch the same or adjacent pages are read as one
 * range, the bytes between them thrown away.  Every page of a merged range
 * holds bytes of some requested range, so merging never reads a page that
 * the separate reads would not have.  Returns the number of remote ranges,
 * or 0 when merging would not help. */
static size_t coalesce(const struct iovec *local, const struct iovec *remote,
		       size_t n, size_t *nlocal)
{
	size_t i, nl = 0, nr = 0;
	uint64_t end = 0;

	sort_order(remote, co_order, n);
	for (i = 0; i < n; i++) {
		const struct iovec *r = &remote[co_order[i]];
		uint64_t a = r_start(r), len = r->iov_len;

		if (!len)
			continue;
		if (nr && a >= end && a / PAGE <= (end - 1) / PAGE + 1 &&
		    a - end <= sizeof(discard)) {
			if (a > end) {
				co_local[nl].iov_base = discard;
				co_local[nl++].iov_len = (size_t)(a - end);
			}
			co_remote[nr - 1].iov_len += (size_t)(a + len - end);
		} else {
			co_remote[nr].iov_base = r->iov_base;
			co_remote[nr++].iov_len = (size_t)len;
		}
		co_local[nl++] = local[co_order[i]];
		end = a + len;
	}
	if (nr == n || nl > 2 * RMEM_MAX_IOV || nl > IOV_MAX)
		return 0;
	*nlocal = nl;
	return nr;
}

/* Count a call of n remote ranges in m's statistics. */
static void count_call(struct rmem *m, const struct iovec *r, size_t n)
{
	size_t i;

	m->reads++;
	m->ranges += n;
	for (i = 0; i < n; i++) {
		uint64_t a = r_start(&r[i]), len = r[i].iov_len;

		if (!len)
			continue;
		m->pages += (a + len - 1) / PAGE - a / PAGE + 1;
		m->bytes += len;
	}
}

/* One syscall for at most RMEM_MAX_IOV pairs. */
static int readv_batch(struct rmem *m, const struct iovec *local,
		       const struct iovec *remote, size_t n)
{
	const struct iovec *l = local, *r = remote;
	size_t nl = n, nr = n;
	ssize_t got;
	int tries;

	if (n > 1 && (nr = coalesce(local, remote, n, &nl)) != 0) {
		l = co_local;
		r = co_remote;
	} else {
		nr = n;
	}
	count_call(m, r, nr);
	if (m->fake) {
		got = m->fake(m->fake_ctx, l, nl, r, nr);
		if (got < 0)
			return -errno;
	} else {
		for (tries = 0;; tries++) {
			pid_t tid;

			got = process_vm_readv(m->pid, l, nl, r, nr, 0);
			/* Through a thread: its tid could have been taken by
			 * another process since it exited; then the bytes are
			 * not the target's. */
			if (got >= 0 && m->pid != m->tgid && !proc_task_of(m->tgid, m->pid)) {
				got = -1;
				errno = ESRCH;
			}
			if (got >= 0)
				break;
			/* The task read through has exited: the main thread
			 * after pthread_exit(), or the thread read through
			 * since.  Go on through another live one, if any. */
			if (errno != ESRCH || tries == 3)
				return -errno;
			tid = proc_live_task(m->tgid);
			if (tid < 0 || tid == m->pid)
				return -ESRCH;
			m->pid = tid;
		}
	}
	/* A short count means one remote range crossed into unmapped memory. */
	if ((size_t)got != iov_total(r, nr))
		return -EFAULT;
	return 0;
}

/* The kernel takes at most IOV_MAX (1024) ranges a call: more are read in
 * batches of RMEM_MAX_IOV, the first failure failing the whole read. */
int rmem_readv(struct rmem *m, const struct iovec *local,
	       const struct iovec *remote, size_t n)
{
	size_t i, k;
	int err;

	for (i = 0; i < n; i += k) {
		k = n - i < RMEM_MAX_IOV ? n - i : RMEM_MAX_IOV;
		err = readv_batch(m, local + i, remote + i, k);
		if (err)
			return err;
	}
	return 0;
}

int rmem_readv_opt(struct rmem *m, const struct iovec *local,
		   const struct iovec *remote, size_t n, size_t nopt, size_t *done)
{
	size_t nreq = n - nopt, nl = nreq, nr = nreq, i, req;
	ssize_t got;

	*done = 0;
	if (nopt > n)
		return -EINVAL;
	/* Reading through another thread than the main one (it exited)
	 * takes rmem_readv's care: without the optional ones. */
	if (!nopt || n > RMEM_MAX_IOV || m->pid != m->tgid)
		return rmem_readv(m, local, remote, nreq);
	if (nreq > 1 && (nr = coalesce(local, remote, nreq, &nl)) != 0) {
		if (nl + nopt > 2 * RMEM_MAX_IOV || nl + nopt > IOV_MAX)
			return rmem_readv(m, local, remote, nreq);
	} else {
		memcpy(co_local, local, nreq * sizeof(*local));
		memcpy(co_remote, remote, nreq * sizeof(*remote));
		nl = nr = nreq;
	}
	req = iov_total(co_remote, nr);
	/* The optional ranges go last, as they are: the kernel reads the
	 * remote ranges in order and stops at the first it cannot read. */
	memcpy(co_local + nl, local + nreq, nopt * sizeof(*local));
	memcpy(co_remote + nr, remote + nreq, nopt * sizeof(*remote));
	count_call(m, co_remote, nr + nopt);
	if (m->fake)
		got = m->fake(m->fake_ctx, co_local, nl + nopt, co_remote, nr + nopt);
	else
		got = process_vm_readv(m->pid, co_local, nl + nopt, co_remote, nr + nopt, 0);
	if (got < 0 && errno == ESRCH)
		return rmem_readv(m, local, remote, nreq); /* main thread gone? */
	if (got < 0)
		return errno == EFAULT && !req ? 0 : -errno;
	if ((size_t)got < req)
		return -EFAULT;
	got -= (ssize_t)req;
	for (i = 0; i < nopt && (size_t)got >= remote[nreq + i].iov_len; i++)
		got -= (ssize_t)remote[nreq + i].iov_len;
	*done = i;
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
