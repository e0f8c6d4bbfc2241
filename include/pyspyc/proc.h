/* proc.h - the target process: remote reads, memory maps, threads.
 *
 * struct rmem reads the target's memory with process_vm_readv.  Every read is
 * bounded by the caller's buffer; a read that returns fewer bytes than asked
 * fails with -EFAULT (the address was not mapped), so partial data never
 * looks like success.  After the target exits, reads fail with -ESRCH.
 */
#ifndef PYSPYC_PROC_H
#define PYSPYC_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* A stand-in for process_vm_readv, for tests and fuzzers that read a fake
 * memory image instead of a process.  Same contract as the syscall with
 * pid and flags dropped: the bytes copied (stopping at the first remote
 * byte it cannot read, a short count), or -1 with errno set when not even
 * the first byte could be read. */
typedef ssize_t (*rmem_readv_fn)(void *ctx, const struct iovec *local,
				 unsigned long nlocal, const struct iovec *remote,
				 unsigned long nremote);

struct rmem {
	pid_t pid;        /* the task read through: tgid, or one of its threads */
	pid_t tgid;       /* the process (what rmem_init was given) */
	uint64_t reads;   /* syscalls issued, for statistics */
	uint64_t ranges;  /* remote ranges they read, after merging */
	/* Pages those ranges span (the kernel pins each range's pages in
	 * turn, so a page two ranges share counts twice) and bytes asked:
	 * with the calls, what a read costs (bench.py's floor section). */
	uint64_t pages;
	uint64_t bytes;
	/* NULL (what rmem_init sets): read pid with process_vm_readv.  Set
	 * by tests after rmem_init to read through fake instead; everything
	 * above the syscall (merging, all-or-nothing) stays the same. */
	rmem_readv_fn fake;
	void *fake_ctx;
};

void rmem_init(struct rmem *m, pid_t pid);

/* Read len bytes at remote address addr into buf.  0 or -errno (-EFAULT for
 * an unmapped or short read, -ESRCH when the process is gone, -EPERM).
 * A process whose main thread has exited (pthread_exit) while others run
 * has no memory to read through its pid: the reads go through one of its
 * live threads instead (proc_live_task), picked again when that one exits. */
int rmem_read(struct rmem *m, uint64_t addr, void *buf, size_t len);

/* One syscall for several reads: local[i] receives remote[i].  All-or-
 * nothing: 0 when every byte arrived, else -errno as rmem_read.  Up to
 * RMEM_MAX_IOV pairs are one syscall (the kernel's IOV_MAX); more are read
 * in batches of that many, one syscall each.  Remote ranges on the same or
 * neighbouring pages of a batch are read as one (the kernel's cost is per
 * range, hardly per byte); the order and overlap of the ranges do not
 * matter. */
#define RMEM_MAX_IOV 1024
int rmem_readv(struct rmem *m, const struct iovec *local,
	       const struct iovec *remote, size_t n);

/* One pair for rmem_readv: len bytes at remote address addr into buf. */
static inline void rmem_iov(struct iovec *local, struct iovec *remote, void *buf,
			    uint64_t addr, size_t len)
{
	local->iov_base = buf;
	local->iov_len = len;
	remote->iov_base = (void *)(uintptr_t)addr;
	remote->iov_len = len;
}

/* As rmem_readv for the first n - nopt pairs; the last nopt are optional
 * (memory that may be gone): read after the others, in their order, never
 * merged, in the same syscall.  *done gets how many of them arrived whole
 * (the kernel stops at the first it cannot read).  With more than
 * RMEM_MAX_IOV pairs in all, or where the merged ranges leave no room,
 * the optional ones are not read (*done 0).  0 or -errno as rmem_readv,
 * for the required ones. */
int rmem_readv_opt(struct rmem *m, const struct iovec *local,
		   const struct iovec *remote, size_t n, size_t nopt, size_t *done);

/* Read a pointer-sized value. */
int rmem_read_ptr(struct rmem *m, uint64_t addr, uint64_t *out);

/* One mapping of /proc/PID/maps that is backed by a file. */
struct proc_map {
	uint64_t start, end, offset;
	unsigned int prot;   /* PROT_READ | PROT_WRITE | PROT_EXEC */
	uint64_t dev, ino;   /* the mapped file's device (makedev) and inode */
	int deleted;         /* the name no longer leads to the mapped file */
	char path[4096];     /* as the target named it, " (deleted)" taken off */
};

/* Call fn for every file-backed mapping of pid, in address order; fn returns
 * non-zero to stop (that value is returned).  The maps are read through a
 * live thread when the main thread has exited.  Returns 0, the callback's
 * value, or -errno (-ESRCH: no such process, -EACCES/-EPERM: not allowed). */
int proc_maps_foreach(pid_t pid, int (*fn)(const struct proc_map *m, void *ctx),
		      void *ctx);

/* Process state letter from /proc/PID/stat ('R', 'S', 'Z', ...), or -errno. */
int proc_state(pid_t pid);

/* A process lives while any of its threads does: a main thread that
 * called pthread_exit() shows as a zombie ('Z') while the others run.
 * Returns pid itself when its main thread lives, else the id of a live
 * thread of pid (state neither Z nor X), or -ESRCH when none is left (the
 * process has exited, or there is no such process). */
pid_t proc_live_task(pid_t pid);

/* 1 when process pid is on its way out: no live thread, or the live one
 * has let go of its memory already (an exit in progress, before the
 * process becomes a zombie its parent can reap).  0 while it runs. */
int proc_exiting(pid_t pid);

/* A handle on /proc/PID/task, for proc_tasks_read().  The fd or -errno
 * (-ESRCH: no such process). */
int proc_tasks_open(pid_t pid);

/* The ids of the threads listed in dirfd (proc_tasks_open), read again from
 * the start each call, so that one fd serves every read: no open, one or
 * two getdents64 calls.  Sorted, into tids[0..cap): a process with more
 * threads gives cap of them.  Returns the count or -errno (0 once the
 * process has exited). */
int proc_tasks_read(int dirfd, int32_t *tids, size_t cap);

/* The same for pid, through a handle of its own. */
int proc_tasks(pid_t pid, int32_t *tids, size_t cap);

/* 1 when tid is a thread of process pid now, 0 when not. */
int proc_task_of(pid_t pid, pid_t tid);

/* How long ago pid started, in nanoseconds, or -errno. */
int64_t proc_age_ns(pid_t pid);

/* 1 if pid is a kernel thread, 0 if not, -errno. */
int proc_is_kernel_thread(pid_t pid);

/* The command line with NULs turned into spaces, printable (control bytes
 * replaced), at most size-1 bytes.  0 or -errno. */
int proc_cmdline(pid_t pid, char *buf, size_t size);

/* A process told apart from a later one that reuses its pid. */
struct proc_ident {
	pid_t pid;
	pid_t ppid;          /* its parent when it was looked at */
	uint64_t start;      /* start time, clock ticks after boot */
};

/* pid's parent, start time and (state may be NULL) state letter, from one
 * read of /proc/PID/stat.  0 or -errno. */
int proc_stat_ids(pid_t pid, pid_t *ppid, uint64_t *start, int *state);

/* A handle on the process pid itself (a pidfd), which, unlike the pid, is
 * never taken over by a later process.  The caller owns the returned fd.
 * Returns the fd or -errno (-ESRCH: no such process, -ENOSYS: the kernel
 * predates pidfds, 5.3). */
int proc_handle_open(pid_t pid);

/* 1 when the process behind handle fd has exited (it may be a zombie, and
 * its pid may already belong to another process), 0 while it lives. */
int proc_handle_exited(int fd);

/* Every live descendant of root (not root itself), parents before their
 * children, into out[0..cap).  Found through the children files of root's
 * threads, and theirs (/proc/PID/task/TID/children), which costs reads in
 * proportion to the tree, not to the system; a kernel without them
 * (CONFIG_PROC_CHILDREN) gets one scan of all of /proc.  A process whose
 * parent exited was reparented out of the tree and is not found.  Returns
 * the count (at most cap) or -errno. */
int proc_descendants(pid_t root, struct proc_ident *out, size_t cap);

/* Ask the scheduler to run the calling thread as soon as it wakes (a short
 * slice, more weight where permitted), so that a tick is taken when it
 * falls even when the sampled process has the thread's CPU.  Taken when
 * proc_sched_prompt_wanted says so for the thread's rate, --blocking and
 * the environment's PYSPYC_PROMPT.  1 when a hint was taken, 0 when none
 * was wanted or none could be. */
int proc_sched_prompt(double rate_hz, int blocking);

/* Is the hint wanted at rate_hz, with or without --blocking, with
 * PYSPYC_PROMPT set to env (NULL when unset)?  "0": never; "1": always;
 * otherwise with --blocking (the target waits, stopped, while the sampler
 * runs) or up to the default rate (its preemptions cost the sampled
 * processes more the higher the rate: proc_sched.c). */
int proc_sched_prompt_wanted(double rate_hz, int blocking, const char *env);

/* Open path (absolute, as a process whose root directory is root sees it)
 * for reading, confined to root: every symlink on the way, absolute ones
 * too, resolves inside root, and ".." stops at it (openat2
 * RESOLVE_IN_ROOT; root is "/proc/PID/root" for a target).  root "" is
 * our own root, unconfined.  Only a regular file is opened, and never in
 * a way that could block or act on a device: a FIFO, socket or device
 * there is -EINVAL.  o_path gives an O_PATH descriptor (enough to fstat).
 * Returns a descriptor (O_CLOEXEC) or -errno. */
int path_open_in_root(const char *root, const char *path, int o_path);

#endif
