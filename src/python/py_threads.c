/* py_threads.c - OS thread ids, activity and names of Python threads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/bytes.h"
#include "pyspyc/clock.h"
#include "pyspyc/proc_ns.h"
#include "pyspyc/py_obj.h"
#include "pyspyc/py_threads.h"
#include "pyspyc/runwatch.h"

#define FD_SLOTS 1024        /* power of two; stat files kept open, to start */
#define FD_SPARE 64          /* descriptors never taken for stat files */
#define NAME_SLOTS 1024      /* power of two; threads whose name is cached */
#define NAME_PROBES 8
#define FIRST_TNAMES 512     /* threading names read at once, to start */
#define DESC_SCAN 2048       /* bytes of a thread descriptor searched for the tid */
#define MAX_TASKS 4096
#define TID_REFRESH_NS 1000000000LL
#define NAME_RETRY_NS 500000000LL
#define NS_GAP_NS 1000000LL        /* between two reads of the NSpid map */
#define NS_GONE 64                 /* ids a read did not find, not asked again */
#define NS_FORGET_NS 1000000000LL  /* ... for a second */
/* How often the GIL holder's OS state is read (it is active unless
 * stopped, and a stopped process stays so for a while). */
#define HOLDER_STATE_NS (50 * 1000000LL)

struct fd_slot {
	int32_t tid;         /* 0: empty */
	int fd;
	uint64_t used;       /* thread_map.gen when last asked about */
};

struct name_slot {
	uint64_t thread_id;  /* 0: empty */
	int32_t tid;
	int from_os;         /* 1: the OS name stands in; retry for a better one */
	int64_t tried_ns;
	int64_t retry_ns;    /* wait before the next try: doubles, to 8 s */
	int64_t used_ns;     /* last looked up */
	uint64_t version;    /* bumped whenever label changes */
	char name[64];
	char label[96];
};

struct thread_map {
	const struct py_target *t;
	struct rmem *mem;
	struct runwatch *rw;       /* threads' states without /proc, or NULL */
	uint32_t rw_slot;          /* the target's slot in rw */
	int need_tids;        /* the version keeps no native tid */
	int32_t tid_off;      /* -1 not (yet) known */
	uint32_t tid_tries;   /* searches for it so far */
	uint64_t tried_gen;   /* thread list generation of the last search */
	int64_t tried_ns;     /* and when it was */
	uint64_t list_gen;
	int64_t tids_read_ns;
	/* pthread id -> tid, for the threads of the last sample, and an
	 * open-addressing index of pt_ids (pt_mask + 1 slots, a power of two
	 * at least twice npt; an index into pt_ids + 1, 0: empty) */
	uint64_t *pt_ids;
	int32_t *pt_tids;
	uint8_t *pt_read;     /* 1: the tid was read (0 there: thread exited) */
	uint32_t npt, pt_cap;
	uint32_t *pt_index, pt_mask;
	/* Open stat files by tid: fd_mask + 1 slots (a power of two), at
	 * most half of them used, nfds of them; at most fd_limit open (what
	 * RLIMIT_NOFILE leaves, FD_SPARE kept free), the others opened per
	 * question.  Files of threads not asked about for a sample are closed
	 * when the table would grow. */
	struct fd_slot *fds;
	uint32_t fd_mask, nfds, fd_limit;
	uint64_t gen;         /* samples (thread_map_tids calls) so far */
	struct name_slot names[NAME_SLOTS];
	uint64_t versions;
	uint64_t seen_gen;    /* the latest sample's thread list generation */
	uint32_t nthreads;    /* and its threads */
	/* threading's names as last read, when and for which thread list */
	struct py_thread_names tnames;
	int ntnames;          /* -1: not read yet */
	uint64_t tnames_gen;
	int64_t tnames_ns;
	/* The target's own ids -> ours, when it is in a PID namespace: read
	 * again at once when an id it does not know shows up, or a task it
	 * named is gone.  An id a read did not find (its thread ended before
	 * it was read, or a value that is no thread) is kept in ns_gone and
	 * not looked for again for a second: threads that churn cost one read
	 * each, not one per sample. */
	struct ns_map ns;
	int ns_stale;
	int32_t ns_gone[NS_GONE];
	uint32_t ns_ngone;
	int64_t ns_gone_ns;   /* when the first of ns_gone was put there */
	/* The GIL holder's OS state, read at most every HOLDER_STATE_NS */
	int32_t holder_tid;
	int holder_state;
	int64_t holder_ns;
};

static int fd_table_new(struct thread_map *tm, uint32_t slots)
{
	struct fd_slot *t = calloc(slots, sizeof(*t));
	uint32_t i;

	if (!t)
		return -ENOMEM;
	for (i = 0; i < slots; i++)
		t[i].fd = -1;
	tm->fds = t;
	tm->fd_mask = slots - 1;
	tm->nfds = 0;
	return 0;
}

static uint32_t fd_home(const struct thread_map *tm, int32_t tid)
{
	return ((uint32_t)tid * 2654435761u) & tm->fd_mask;
}

int thread_map_new(struct thread_map **out, const struct py_target *t,
		   struct rmem *mem)
{
	struct thread_map *tm;
	struct rlimit rl;

	*out = NULL;
	tm = calloc(1, sizeof(*tm));
	if (!tm)
		return -ENOMEM;
	tm->t = t;
	tm->mem = mem;
	tm->need_tids = t->layout->tstate_native_thread_id < 0;
	tm->tid_off = -1;
	tm->list_gen = UINT64_MAX;
	tm->ntnames = -1;
	tm->fd_limit = 1024 - FD_SPARE;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
		tm->fd_limit = rl.rlim_cur > 2 * FD_SPARE ? (uint32_t)(rl.rlim_cur - FD_SPARE) : FD_SPARE;
	else if (!getrlimit(RLIMIT_NOFILE, &rl))
		tm->fd_limit = UINT32_MAX / 4;
	if (fd_table_new(tm, FD_SLOTS)) {
		free(tm);
		return -ENOMEM;
	}
	/* A namespace that cannot be read is taken as ours: ids untranslated,
	 * as before namespaces were known. */
	if (ns_map_init(&tm->ns, t->pid))
		ns_map_release(&tm->ns);
	*out = tm;
	return 0;
}

void thread_map_set_runwatch(struct thread_map *tm, struct runwatch *rw, uint32_t slot)
{
	tm->rw = rw;
	tm->rw_slot = slot;
}

void thread_map_free(struct thread_map *tm)
{
	uint32_t i;

	if (!tm)
		return;
	for (i = 0; tm->fds && i <= tm->fd_mask; i++)
		if (tm->fds[i].fd >= 0)
			close(tm->fds[i].fd);
	free(tm->fds);
	free(tm->pt_ids);
	free(tm->pt_tids);
	free(tm->pt_index);
	free(tm->pt_read);
	py_thread_names_release(&tm->tnames);
	ns_map_release(&tm->ns);
	free(tm);
}

/* The process's task ids as it knows them itself (in its PID namespace),
 * sorted.  Returns the count or -errno. */
static int list_inner_tasks(struct thread_map *tm, int32_t *tids, int cap)
{
	uint32_t i;
	int n = 0, err = ns_map_read(&tm->ns);

	if (err)
		return err;
	for (i = 0; i < tm->ns.n && n < cap; i++) /* sorted by inner id */
		tids[n++] = tm->ns.ids[i].inner;
	return n;
}

static int has_tid(const int32_t *tids, int n, int32_t v)
{
	int lo = 0, hi = n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;

		if (tids[mid] == v)
			return 1;
		if (tids[mid] < v)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

/* Learn where the thread descriptor keeps the tid: the first offset at which
 * every thread's descriptor holds a distinct task id of the process, and the
 * main thread's (if it is among them) holds the pid.  The ids are the
 * process's own: those of its PID namespace. */
static void find_tid_offset(struct thread_map *tm, const struct raw_sample *rs)
{
	int32_t *tasks;
	uint8_t *descs;
	uint32_t n = 0, i, j;
	int ntasks, exited_main;
	size_t off;

	tm->tid_tries++;
	tm->tried_gen = rs->list_gen;
	tm->tried_ns = mono_ns();
	if (!rs->nthreads)
		return;
	tasks = malloc(MAX_TASKS * sizeof(*tasks));
	descs = calloc(rs->nthreads, DESC_SCAN);
	ntasks = !tasks ? -ENOMEM
		 : tm->ns.active ? list_inner_tasks(tm, tasks, MAX_TASKS)
				 : proc_tasks(tm->t->pid, tasks, MAX_TASKS);
	if (ntasks <= 0 || !descs)
		goto out;
	for (i = 0; i < rs->nthreads; i++) {
		uint64_t id = rs->threads[i].thread_id;

		/* A thread state whose thread has not run yet holds its
		 * creator's id: the same descriptor twice would fail the
		 * search's every offset (no two threads share a tid). */
		for (j = 0; j < i && rs->threads[j].thread_id != id; j++)
			;
		if (!id || (id & 7) || j < i ||
		    rmem_read(tm->mem, id, descs + (size_t)n * DESC_SCAN, DESC_SCAN))
			continue;
		n++;
	}
	/* A main thread that called pthread_exit() leaves its thread state
	 * behind, and the kernel zeroed the tid in its descriptor as it
	 * exited: one such 0 is allowed then, beside at least one live tid. */
	exited_main = proc_live_task(tm->t->pid) != tm->t->pid;
	for (off = 0; n && off + 4 <= DESC_SCAN; off += 4) {
		int ok = 1;
		uint32_t zeros = 0;

		for (i = 0; i < n && ok; i++) {
			int32_t v = rd32(descs + (size_t)i * DESC_SCAN, off);

			if (v == 0 && exited_main && ++zeros == 1)
				continue;
			ok = has_tid(tasks, ntasks, v);
			for (j = 0; j < i && ok; j++)
				ok = rd32(descs + (size_t)j * DESC_SCAN, off) != v;
		}
		if (ok && zeros == n)
			ok = 0;
		if (ok && n - zeros == 1 && !zeros && rd32(descs, off) != (int32_t)tm->ns.inner_pid &&
		    ntasks > 1)
			ok = 0; /* one thread only: insist on a known value */
		if (ok) {
			tm->tid_off = (int32_t)off;
			break;
		}
	}
out:
	free(descs);
	free(tasks);
}

static int grow_pt(struct thread_map *tm, uint32_t n)
{
	uint64_t *ids;
	int32_t *tids;
	uint8_t *read;

	if (n <= tm->pt_cap)
		return 0;
	ids = realloc(tm->pt_ids, n * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	tm->pt_ids = ids;
	tids = realloc(tm->pt_tids, n * sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	tm->pt_tids = tids;
	read = realloc(tm->pt_read, n * sizeof(*read));
	if (!read)
		return -ENOMEM;
	tm->pt_read = read;
	tm->pt_cap = n;
	return 0;
}

/* A thread_id's (a pthread_t's) home in a table of mask + 1 slots. */
static uint32_t id_home(uint64_t id, uint32_t mask)
{
	return (uint32_t)((id >> 4) * 0x9e3779b97f4a7c15ull >> 40) & mask;
}

/* Index pt_ids[0..npt) by id (the first of two with one id). */
static void index_pt(struct thread_map *tm)
{
	uint32_t size = 16, i, h;

	while (size < 2 * tm->npt)
		size <<= 1;
	if (size > tm->pt_mask + 1 || !tm->pt_index) {
		uint32_t *p = realloc(tm->pt_index, size * sizeof(*p));

		if (!p) {
			tm->pt_mask = 0;
			free(tm->pt_index);
			tm->pt_index = NULL;
			return;
		}
		tm->pt_index = p;
		tm->pt_mask = size - 1;
	}
	memset(tm->pt_index, 0, (tm->pt_mask + 1) * sizeof(*tm->pt_index));
	for (i = 0; i < tm->npt; i++) {
		if (!tm->pt_ids[i])
			continue;
		for (h = id_home(tm->pt_ids[i], tm->pt_mask); tm->pt_index[h];
		     h = (h + 1) & tm->pt_mask)
			if (tm->pt_ids[tm->pt_index[h] - 1] == tm->pt_ids[i])
				break;
		if (!tm->pt_index[h])
			tm->pt_index[h] = i + 1;
	}
}

int32_t thread_map_descriptor_tid(const struct thread_map *tm, uint64_t thread_id)
{
	uint32_t h;

	if (!tm->pt_index || !thread_id)
		return 0;
	for (h = id_home(thread_id, tm->pt_mask); tm->pt_index[h]; h = (h + 1) & tm->pt_mask) {
		uint32_t i = tm->pt_index[h] - 1;

		if (tm->pt_ids[i] == thread_id)
			return tm->pt_tids[i] > 0 ? tm->pt_tids[i] : 0;
	}
	return 0;
}

/* Older versions: each thread's tid from its pthread descriptor. */
static void descriptor_tids(struct thread_map *tm, const struct raw_sample *rs,
			    int32_t *tids, int64_t now)
{
	struct iovec l[256], r[256];
	uint32_t i, j, k;

	/* A thread being torn down can spoil a search: try again when the
	 * list changes, a few times. */
	if (tm->tid_off == -1 && tm->tid_tries < 8 &&
	    (!tm->tid_tries || rs->list_gen != tm->tried_gen ||
	     now - tm->tried_ns > NAME_RETRY_NS))
		find_tid_offset(tm, rs);
	if (tm->tid_off < 0)
		return;
	/* A thread state gets its thread's own id only once the thread runs
	 * (before, it holds its creator's): any change means read again. */
	for (i = 0; i < rs->nthreads && i < tm->npt; i++)
		if (tm->pt_ids[i] != rs->threads[i].thread_id)
			break;
	if (rs->list_gen != tm->list_gen || now - tm->tids_read_ns > TID_REFRESH_NS ||
	    tm->npt != rs->nthreads || i < rs->nthreads) {
		/* The list changed: read every thread's tid afresh. */
		if (grow_pt(tm, rs->nthreads))
			return;
		for (i = 0; i < rs->nthreads; i += k) {
			for (k = 0; k < 256 && i + k < rs->nthreads; k++) {
				tm->pt_ids[i + k] = rs->threads[i + k].thread_id;
				tm->pt_tids[i + k] = 0;
				tm->pt_read[i + k] = 1;
				rmem_iov(&l[k], &r[k], &tm->pt_tids[i + k],
					 rs->threads[i + k].thread_id + (uint64_t)tm->tid_off, 4);
			}
			if (rmem_readv(tm->mem, l, r, k))
				for (j = 0; j < k; j++) /* one went away: one by one */
					if (rmem_readv(tm->mem, &l[j], &r[j], 1)) {
						tm->pt_tids[i + j] = 0;
						tm->pt_read[i + j] = 0;
					}
		}
		tm->npt = rs->nthreads;
		tm->list_gen = rs->list_gen;
		tm->tids_read_ns = now;
		index_pt(tm);
	}
	for (i = 0; i < rs->nthreads; i++) {
		const struct raw_thread *th = &rs->threads[i];

		if (i < tm->npt && tm->pt_ids[i] == th->thread_id && tm->pt_tids[i] > 0)
			tids[i] = tm->pt_tids[i];
		/* The kernel zeroes the tid in a thread's descriptor as the
		 * thread exits: this thread state outlived its thread (a main
		 * thread that called pthread_exit()). */
		else if (i < tm->npt && tm->pt_ids[i] == th->thread_id && tm->pt_tids[i] == 0 &&
			 tm->pt_read[i])
			tids[i] = -1;
	}
}

static int ns_gone(const struct thread_map *tm, int32_t id)
{
	uint32_t i;

	for (i = 0; i < tm->ns_ngone; i++)
		if (tm->ns_gone[i] == id)
			return 1;
	return 0;
}

/* A thread id of tids[0..n) the map does not know and no read missed yet. */
static int new_unknown(const struct thread_map *tm, const int32_t *tids, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		int32_t id = tids[i];

		if (id > 0 && !ns_map_host(&tm->ns, id) && !ns_gone(tm, id))
			return 1;
	}
	return 0;
}

/* The target's ids are its namespace's: ours in their place.  An id the map
 * does not know is 0 (unknown), never taken for one of ours. */
static void host_tids(struct thread_map *tm, uint32_t n, int32_t *tids, int64_t now)
{
	uint32_t i;

	if (tm->ns_ngone && now - tm->ns_gone_ns > NS_FORGET_NS)
		tm->ns_ngone = 0;
	if ((tm->ns_stale || new_unknown(tm, tids, n)) && now - tm->ns.read_ns >= NS_GAP_NS &&
	    !ns_map_read(&tm->ns)) {
		tm->ns_stale = 0;
		for (i = 0; i < n && tm->ns_ngone < NS_GONE; i++) {
			int32_t id = tids[i];

			if (id <= 0 || ns_map_host(&tm->ns, id) || ns_gone(tm, id))
				continue;
			if (!tm->ns_ngone)
				tm->ns_gone_ns = now;
			tm->ns_gone[tm->ns_ngone++] = id;
		}
	}
	for (i = 0; i < n; i++)
		if (tids[i] > 0)
			tids[i] = ns_map_host(&tm->ns, tids[i]);
}

void thread_map_tids(struct thread_map *tm, const struct raw_sample *rs, int32_t *tids)
{
	int64_t now;
	uint32_t i;

	for (i = 0; i < rs->nthreads; i++)
		tids[i] = rs->threads[i].native_tid;
	tm->seen_gen = rs->list_gen;
	tm->nthreads = rs->nthreads;
	tm->gen++;
	if (!rs->nthreads || (!tm->need_tids && !tm->ns.active))
		return;
	now = mono_ns();
	if (tm->need_tids)
		descriptor_tids(tm, rs, tids, now);
	if (tm->ns.active)
		host_tids(tm, rs->nthreads, tids, now);
}

int32_t thread_map_ns_tid(const struct thread_map *tm, int32_t tid)
{
	return ns_map_inner(&tm->ns, tid);
}

pid_t thread_map_ns_pid(const struct thread_map *tm)
{
	return tm->ns.active ? tm->ns.inner_pid : 0;
}

int proc_stat_state(const char *buf, size_t len)
{
	const char *p = NULL;
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] == ')')
			p = buf + i;
	if (!p || (size_t)(p - buf) + 2 >= len || p[1] != ' ')
		return -EINVAL;
	return (unsigned char)p[2];
}

static struct fd_slot *fd_slot_for(struct thread_map *tm, int32_t tid)
{
	uint32_t h = fd_home(tm, tid), probes;
	struct fd_slot *empty = NULL;

	for (probes = 0; probes <= tm->fd_mask; probes++, h = (h + 1) & tm->fd_mask) {
		struct fd_slot *s = &tm->fds[h];

		if (s->tid == tid)
			return s;
		if (s->tid == 0) {
			empty = s;
			break;
		}
	}
	return empty;
}

/* Remove slot s, keeping every other key reachable (linear probing). */
static void fd_slot_drop(struct thread_map *tm, struct fd_slot *s)
{
	uint32_t i = (uint32_t)(s - tm->fds), j = i;

	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->tid = 0;
	tm->nfds--;
	for (;;) {
		uint32_t home;

		j = (j + 1) & tm->fd_mask;
		if (tm->fds[j].tid == 0)
			return;
		home = fd_home(tm, tm->fds[j].tid);
		/* j may move into the hole at i unless its home lies cyclically
		 * in (i, j]. */
		if (((j - home) & tm->fd_mask) >= ((j - i) & tm->fd_mask)) {
			tm->fds[i] = tm->fds[j];
			tm->fds[j].tid = 0;
			tm->fds[j].fd = -1;
			i = j;
		}
	}
}

/* Before one more file is kept open: the files of threads not asked about
 * in this sample or the last are closed, and the table grows while they
 * would fill more than half of it.  Returns 0, or -ENOSPC when no more may
 * be kept open (the caller opens and closes one). */
static int fd_make_room(struct thread_map *tm)
{
	struct fd_slot *old = tm->fds;
	uint32_t n = tm->fd_mask + 1, i, keep = 0, slots = FD_SLOTS;

	if (tm->nfds + 1 <= n / 2)
		return tm->nfds < tm->fd_limit ? 0 : -ENOSPC;
	for (i = 0; i < n; i++)
		if (old[i].tid && old[i].used + 1 >= tm->gen)
			keep++;
	while (slots / 2 < keep + 1 || slots < 4 * keep)
		slots *= 2;
	if (fd_table_new(tm, slots)) {
		tm->fds = old;
		return -ENOSPC;
	}
	for (i = 0; i < n; i++) {
		struct fd_slot *s;

		if (!old[i].tid)
			continue;
		if (old[i].used + 1 < tm->gen) {
			close(old[i].fd);
			continue;
		}
		s = fd_slot_for(tm, old[i].tid);
		*s = old[i];
		tm->nfds++;
	}
	free(old);
	return tm->nfds < tm->fd_limit ? 0 : -ENOSPC;
}

static int read_state(int fd)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n < 0)
		return -errno;
	return proc_stat_state(buf, (size_t)n);
}

/* A thread that has exited: a zombie main thread after pthread_exit(). */
static int gone(int st)
{
	return st == 'Z' || st == 'X';
}

/* Thread tid's state letter as /proc has it (a file kept open for it
 * when there is room), or -errno. */
static int task_proc_state(struct thread_map *tm, int32_t tid)
{
	struct fd_slot *s = fd_slot_for(tm, tid);
	char path[64];
	int st;

	if (s && s->tid == tid) {
		st = read_state(s->fd);
		if (st >= 0) {
			s->used = tm->gen;
			return st;
		}
		fd_slot_drop(tm, s); /* the thread is gone, or its tid reused */
	}
	s = fd_make_room(tm) ? NULL : fd_slot_for(tm, tid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)tm->t->pid, (int)tid);
	if (!s) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -errno;
		st = read_state(fd);
		close(fd);
		return st;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	s->tid = tid;
	s->used = tm->gen;
	tm->nfds++;
	st = read_state(s->fd);
	if (st < 0)
		fd_slot_drop(tm, s);
	return st;
}

/* The OS state letter of thread tid, or -errno (-ESRCH: gone, or a
 * zombie as a main thread after pthread_exit()). */
static int task_state(struct thread_map *tm, int32_t tid)
{
	int st;

	if (tid < 0)
		return -ESRCH;
	if (tid == 0)
		return -ENOENT;
	/* The scheduler's last word on it, when the watch has one: no
	 * system call (runwatch.h).  Where it has none (asleep since before
	 * the watch), what /proc says is noted there, for the host's word
	 * before the next sample's read (thread_map_known_state). */
	st = runwatch_thread_state(tm->rw, tm->rw_slot, tid);
	if (st > 0)
		return gone(st) ? -ESRCH : st;
	st = task_proc_state(tm, tid);
	if (st < 0)
		return st;
	runwatch_seed(tm->rw, tm->rw_slot, tid, st);
	return gone(st) ? -ESRCH : st;
}

int thread_map_state(struct thread_map *tm, int32_t tid)
{
	int r = task_state(tm, tid);

	/* In a namespace, a task gone may mean the map is old: the target
	 * reused the id for a new thread, whose id for us differs. */
	if (r < 0 && tid > 0 && tm->ns.active)
		tm->ns_stale = 1;
	return r;
}

int thread_map_active(struct thread_map *tm, int32_t tid)
{
	int st = thread_map_state(tm, tid);

	return st < 0 ? st : st == 'R';
}

int thread_map_known_state(const struct thread_map *tm, int32_t tid)
{
	int st;

	if (tid > 0 && tm->ns.active)
		tid = ns_map_host(&tm->ns, tid);
	if (tid <= 0)
		return 0;
	st = runwatch_thread_state(tm->rw, tm->rw_slot, tid);
	if (st <= 0)
		return 0;
	return gone(st) ? 'X' : st;
}

int thread_state_active(int state, int holds_gil)
{
	if (state == 'T' || state == 't')
		return 0;
	return state == 'R' || holds_gil;
}

int thread_map_holder_active(struct thread_map *tm, int32_t tid)
{
	int64_t now = mono_ns();

	if (tid <= 0)
		return 1; /* no OS id to ask: the GIL says it runs */
	if (tid != tm->holder_tid || now - tm->holder_ns >= HOLDER_STATE_NS) {
		tm->holder_tid = tid;
		tm->holder_ns = now;
		tm->holder_state = thread_map_state(tm, tid);
	}
	return tm->holder_state < 0 || thread_state_active(tm->holder_state, 1);
}

static void os_name(const struct thread_map *tm, int32_t tid, char *out, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (tid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)tm->t->pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

/* The best name the target tells us for thread th, into ns: threading's,
 * else the OS thread name.  threading registers a thread a moment after it
 * starts running, so an OS name is looked at again later. */
static int find_tname(const struct thread_map *tm, const struct raw_thread *th,
		      struct name_slot *ns)
{
	const char *name = tm->ntnames > 0 ? py_thread_names_find(&tm->tnames, th->thread_id)
					   : NULL;

	if (!name)
		return 0;
	snprintf(ns->name, sizeof(ns->name), "%s", name);
	ns->from_os = 0;
	return 1;
}

static void resolve_name(struct thread_map *tm, const struct raw_thread *th,
			 struct name_slot *ns, int64_t now)
{
	/* One read of threading's table serves every thread looked up after
	 * it: read it again only for a thread it does not name, and then only
	 * when the thread list may have changed since or it is old. */
	if (find_tname(tm, th, ns))
		return;
	if (tm->ntnames < 0 || tm->tnames_gen != tm->seen_gen ||
	    now - tm->tnames_ns > NAME_RETRY_NS) {
		tm->ntnames = py_thread_names_read(&tm->tnames, tm->t, tm->mem, tm->nthreads,
						   PY_WALK_MAX_THREADS);
		tm->tnames_gen = tm->seen_gen;
		tm->tnames_ns = now;
		if (find_tname(tm, th, ns))
			return;
	}
	ns->from_os = 1;
	os_name(tm, ns->tid, ns->name, sizeof(ns->name));
}

const char *thread_map_name(struct thread_map *tm, const struct raw_thread *th, int32_t tid,
			    uint64_t *version, const char **name, int *from_os)
{
	uint32_t h = id_home(th->thread_id, NAME_SLOTS - 1), k;
	struct name_slot *ns = NULL;
	int64_t now = mono_ns();
	char label[sizeof(ns->label)];
	int fresh;

	/* Up to NAME_PROBES slots from the hash; a new thread takes an empty
	 * one or the one used longest ago, so a few threads that hash alike
	 * do not keep evicting each other. */
	for (k = 0; k < NAME_PROBES; k++) {
		struct name_slot *c = &tm->names[(h + k) & (NAME_SLOTS - 1)];

		if (c->thread_id == th->thread_id) {
			ns = c;
			break;
		}
		if (!ns || c->used_ns < ns->used_ns)
			ns = c;
	}
	if (ns->thread_id != th->thread_id)
		ns->thread_id = 0;
	ns->used_ns = now;

	/* A name the OS stood in for is looked for again (the main thread is
	 * named only once the target imports threading): after half a second,
	 * then ever less often up to every 8 s, since a program that never
	 * imports threading would pay for the search all run long.  Not at
	 * every change of the walker's list generation, which also moves
	 * when a sample merely had to be read the slow way. */
	fresh = ns->thread_id != th->thread_id || ns->tid != tid;
	if (fresh || (ns->from_os && now - ns->tried_ns > ns->retry_ns)) {
		ns->retry_ns = fresh ? NAME_RETRY_NS
			     : ns->retry_ns < 16 * NAME_RETRY_NS ? 2 * ns->retry_ns
								 : ns->retry_ns;
		ns->thread_id = th->thread_id;
		ns->tid = tid;
		ns->tried_ns = now;
		resolve_name(tm, th, ns, now);
		if (tid > 0)
			snprintf(label, sizeof(label), "thread %d \"%s\"",
				 (int)tid, ns->name);
		else
			snprintf(label, sizeof(label), "thread 0x%llx \"%s\"",
				 (unsigned long long)th->thread_id, ns->name);
		if (strcmp(label, ns->label)) {
			memcpy(ns->label, label, sizeof(label));
			ns->version = ++tm->versions;
		}
	}
	*version = ns->version;
	if (name)
		*name = ns->name;
	if (from_os)
		*from_os = ns->from_os;
	return ns->label;
}

/* ---- threading's names ----------------------------------------------- */

static int by_ident(const void *a, const void *b)
{
	const struct py_thread_name *x = a, *y = b;

	return (x->ident > y->ident) - (x->ident < y->ident);
}

int py_thread_names_read(struct py_thread_names *tn, const struct py_target *t,
			 struct rmem *m, uint32_t hint, uint32_t max)
{
	uint32_t want = hint < max - 16 ? hint + 16 : max;
	int n;

	tn->n = 0;
	if (want < FIRST_TNAMES)
		want = FIRST_TNAMES;
	if (tn->cap < want) {
		struct py_thread_name *v = realloc(tn->v, (size_t)want * sizeof(*v));

		if (!v)
			return -ENOMEM;
		tn->v = v;
		tn->cap = want;
	}
	for (;;) {
		struct py_thread_name *v;
		uint32_t cap;

		n = py_obj_thread_names(t, m, tn->v, tn->cap);
		if (n < 0)
			return n;
		if ((uint32_t)n < tn->cap || tn->cap >= max)
			break;
		/* Full: there may be more.  Read again with twice the room. */
		cap = tn->cap * 2 < max ? tn->cap * 2 : max;
		v = realloc(tn->v, (size_t)cap * sizeof(*v));
		if (!v)
			break;
		tn->v = v;
		tn->cap = cap;
	}
	qsort(tn->v, (size_t)n, sizeof(*tn->v), by_ident);
	tn->n = (uint32_t)n;
	return n;
}

const char *py_thread_names_find(const struct py_thread_names *tn, uint64_t ident)
{
	struct py_thread_name key = { .ident = ident };
	const struct py_thread_name *hit;

	if (!tn->n)
		return NULL;
	hit = bsearch(&key, tn->v, tn->n, sizeof(*tn->v), by_ident);
	return hit ? hit->name : NULL;
}

void py_thread_names_release(struct py_thread_names *tn)
{
	free(tn->v);
	tn->v = NULL;
	tn->n = tn->cap = 0;
}
