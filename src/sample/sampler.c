/* sampler.c - one process sampled a tick at a time (see sampler.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/clock.h"
#include "pyspyc/proc_pause.h"
#include "pyspyc/py_threads.h"
#include "pyspyc/runwatch.h"
#include "pyspyc/sampler.h"

struct sampler {
	struct backend *be;
	struct rmem *mem;           /* the backend's: the target's memory */
	struct py_symbolizer *sym;
	struct thread_map *tmap;
	struct stacktab *tab;
	struct sampler_opts o;
	pid_t pid;
	/* The process itself, not its pid: a sample read from a pid that a
	 * new process took over is never counted (-1: no pidfds, 5.3). */
	int handle;
	/* Is it still the interpreter we attached to?  Checked while reads
	 * fail, which is what an exec looks like from here. */
	uint64_t runtime;
	uint64_t interp;            /* the interpreter sampled */
	int32_t head_off;           /* where the runtime points at its first one */
	int64_t next_reinit_ns;
	uint32_t version_hex;
	unsigned int find_flags;
	struct py_target *probe;
	int64_t next_probe_ns;
	int not_python;             /* probes in a row that found no Python */
	/* Its main thread has exited (pthread_exit()) while others run: the
	 * thread state it left is told apart and left out.  Looked at every
	 * MAIN_CHECK_NS. */
	int main_exited;
	int64_t main_check_ns;
	uint32_t process_frame;
	/* --blocking: the threads traced, and their OS states read just
	 * before they were paused (paused, they all show as stopped). */
	struct proc_pause *pause;
	pid_t *traced;
	uint32_t ntraced;
	struct pre_state { int32_t tid; int state; } *pre; /* state letter, or -errno */
	uint32_t npre;
	/* The process's threads as /proc/PID/task listed them at the last
	 * pause (sorted), and room for the next listing: a thread listed now
	 * and not then is new, and traced with the rest. */
	int task_fd;
	int32_t *tasks, *tasks_now;
	uint32_t ntasks;
	/* Thread label -> frame id, for -t: the last few threads seen. */
	struct { uint64_t thread_id, version; int32_t tid; uint32_t frame; int named; } tframes[64];

	/* Counters and state kept from tick to tick. */
	int64_t start, alive_at;    /* alive_at: when the handle last said so */
	uint64_t ticks, samples, errors, late, idle, asleep;
	uint64_t gil_known, gil_held, pauses, pause_ns, pause_max, left_out;
	const struct raw_sample *last;
	/* The filter's decision on each thread of the last sample, parallel
	 * to its threads[] (the sample is the backend's, never written). */
	struct thread_pick *pick;
	int32_t *tids;              /* thread_map_tids' answer, parallel */
	uint32_t pick_cap;
	uint32_t npick;             /* threads of s->last that pick[] is for */
	struct backend_stats bs;
	uint64_t raw_torn;          /* threads flagged RAW_TORN that would count */
	struct sym_stats ss;
	/* The asleep test (sampler.h): the process's CPU clock as read before
	 * the last walk (cpu_ok: it could be read), and whether that walk
	 * counted every thread whole (repeat_ok: -i may count its stacks
	 * again), how many threads it saw and how many counted. */
	clockid_t cpu_clock;
	int has_clock, cpu_ok, repeat_ok;
	/* The last walk saw a thread hold the GIL or (by default) run: the
	 * process is likely running still, and is walked without the test
	 * (a busy process pays no syscall for it). */
	int was_active;
	int holder_in_python;      /* the last sample's GIL holder had Python frames */
	/* The last tick found the process asleep and counted it so: the same
	 * verdict holds until the watch stirs or rw_check_at (sampler_quiet). */
	int quiet;
	int64_t cpu_ns;
	/* With a runwatch (runwatch.h): the process's slot (-1: none), its
	 * switch count as read at the last tick, and when the clock test is
	 * next made as well. */
	struct runwatch *rw;
	int32_t rw_slot;
	uint64_t rw_seen;
	int64_t rw_check_at;
	int rw_still;             /* its clock stood still between two tests */
	/* After a failed walk: when to walk again though the process sleeps
	 * (its next exec or re-init probe; INT64_MAX after a good walk).  A
	 * process that exec'd into a program that sleeps moves no more, and
	 * would be left failing once, unprobed, for good. */
	int64_t retry_at;
	uint64_t last_threads;
	int push;                 /* the backend's samples come by themselves */
	/* A push backend's threads seen on a CPU lately (take_pushed), the
	 * oldest replaced when full. */
	struct { int32_t tid; int64_t at; } seen[256];
	uint32_t nseen;
	int list_failed;          /* ...and its last walk of the thread list failed */
};

#define PUB(dst, v) __atomic_store_n(&(dst), (v), __ATOMIC_RELAXED)
#define GET(src) __atomic_load_n(&(src), __ATOMIC_RELAXED)

void sampler_stats_read(const struct sampler_stats *src, struct sampler_stats *dst)
{
#define READ_ONE(name, merge, desc) dst->name = GET(src->name);
	SAMPLER_COUNTERS(READ_ONE)
#undef READ_ONE
}

/* A root marker (FRAME_PROCESS or FRAME_THREAD) shown as label, for the
 * process or thread id with its bare command line or name, interned. */
static int marker_frame(struct stacktab *tab, int kind, const char *label, int id_,
			const char *bare, uint32_t *id)
{
	struct frame_key k = { .kind = (uint32_t)kind, .line = id_ };
	int err;

	err = stacktab_string(tab, label, strlen(label), &k.name);
	if (!err)
		err = stacktab_string(tab, bare, strlen(bare), &k.file);
	if (!err)
		err = stacktab_frame(tab, &k, id);
	return err;
}

/* The backend's word from the scheduler watch (backend_set_host).  An
 * idle thread is said so only when idle threads are left out (the
 * filter's rule, thread_state_active; not with -i, --gil or --blocking,
 * whose paused threads are all stopped): then the backend need not read
 * it at all. */
static int host_thread(void *ctx, int64_t tid, uint64_t thread_id)
{
	const struct sampler *s = ctx;
	int st;

	/* Before 3.11 a thread state holds no OS id: the last sample's
	 * thread descriptors said which. */
	if (tid <= 0)
		tid = thread_map_descriptor_tid(s->tmap, thread_id);
	st = thread_map_known_state(s->tmap, (int32_t)tid);

	if (st == 'X')
		return HOST_EXITED;
	if (!st || st == 'R' || s->o.idle || s->o.gil || s->o.blocking)
		return HOST_UNKNOWN;
	return st == 'T' || st == 't' ? HOST_STOPPED : HOST_ASLEEP;
}

int sampler_new(struct sampler **out, const struct py_target *t,
		struct stacktab *tab, const struct sampler_opts *o)
{
	struct backend_opts bo;
	struct sampler *s;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->tab = tab;
	s->pid = t->pid;
	s->runtime = t->runtime;
	s->interp = t->interp;
	s->head_off = t->layout->runtime_interp_head;
	s->version_hex = t->version_hex;
	s->find_flags = t->flags;
	s->task_fd = -1;
	s->handle = proc_handle_open(t->pid);
	if (s->handle == -ENOSYS) {
		s->handle = -1;
	} else if (s->handle < 0) {
		err = s->handle;
		s->handle = -1;
		goto out_free;
	}
	s->has_clock = clock_getcpuclockid(t->pid, &s->cpu_clock) == 0;
	/* The first tick walks: there is no walk to compare with yet. */
	s->was_active = 1;
	s->retry_at = INT64_MAX;
	s->rw_slot = -1;
	s->push = o->backend && o->backend->push;
	if (o->rw && !s->push) {
		uint32_t slot;

		if (!runwatch_add(o->rw, t->pid, &slot)) {
			s->rw = o->rw;
			s->rw_slot = (int32_t)slot;
			s->rw_seen = runwatch_switches(s->rw, slot);
		}
	}
	s->probe = malloc(sizeof(*s->probe));
	if (!s->probe) {
		err = -ENOMEM;
		goto out_free;
	}
	bo = o->walk;
	bo.thread_ids = o->threads;
	err = backend_open(&s->be, o->backend, t, &bo);
	if (err)
		goto out_free;
	s->mem = backend_mem(s->be);
	err = py_sym_new(&s->sym, t, s->mem, tab, &o->sym);
	if (err)
		goto out_free;
	backend_set_recheck(s->be, py_sym_stale_return, s->sym);
	err = thread_map_new(&s->tmap, t, s->mem);
	if (err)
		goto out_free;
	if (s->rw) {
		thread_map_set_runwatch(s->tmap, s->rw, (uint32_t)s->rw_slot);
		backend_set_host(s->be, host_thread, s);
	}
	if (o->blocking) {
		s->traced = calloc(o->walk.max_threads, sizeof(*s->traced));
		s->pre = calloc(o->walk.max_threads, sizeof(*s->pre));
		s->tasks = calloc(o->walk.max_threads, sizeof(*s->tasks));
		s->tasks_now = calloc(o->walk.max_threads, sizeof(*s->tasks_now));
		if (!s->traced || !s->pre || !s->tasks || !s->tasks_now) {
			err = -ENOMEM;
			goto out_free;
		}
		/* Without it, only the threads of the last sample are paused. */
		s->task_fd = proc_tasks_open(t->pid);
	}
	if (o->process_root) {
		char cmd[512], label[600];

		if (proc_cmdline(t->pid, cmd, sizeof(cmd)) || !cmd[0])
			snprintf(cmd, sizeof(cmd), "?");
		snprintf(label, sizeof(label), "process %d:\"%s\"", (int)t->pid, cmd);
		err = marker_frame(tab, FRAME_PROCESS, label, (int)t->pid, cmd,
				   &s->process_frame);
		if (err)
			goto out_free;
	}
	*out = s;
	return 0;

out_free:
	sampler_free(s);
	return err;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	if (s->rw_slot >= 0)
		runwatch_del(s->rw, s->pid, (uint32_t)s->rw_slot);
	thread_map_free(s->tmap);
	if (s->handle >= 0)
		close(s->handle);
	free(s->probe);
	free(s->traced);
	free(s->pre);
	free(s->tasks);
	free(s->tasks_now);
	if (s->task_fd >= 0)
		close(s->task_fd);
	free(s->pick);
	free(s->tids);
	py_sym_free(s->sym);
	backend_close(s->be);
	free(s);
}

/* The -t root frame of th.  One frame per thread for its whole life, keyed
 * by its OS id and pthread id, labelled with the name it has now: a thread
 * seen before threading registered it (under its OS name) and a thread the
 * program renames are each one thread in every output, under the last
 * name (stacktab_frame_relabel). */
static uint32_t thread_frame(struct sampler *s, const struct raw_thread *th, int32_t os_tid)
{
	uint32_t slot = (uint32_t)((th->thread_id >> 4) ^ (uint64_t)os_tid) % 64;
	uint64_t version;
	int from_os = 0;
	const char *name, *label = thread_map_name(s->tmap, th, os_tid, &version, &name, &from_os);
	int32_t tid = os_tid > 0 ? os_tid : 0;
	char key[40];
	uint32_t id, lab, bare;
	int same = s->tframes[slot].thread_id == th->thread_id &&
		   s->tframes[slot].tid == os_tid && s->tframes[slot].frame;

	if (same && s->tframes[slot].version == version)
		return s->tframes[slot].frame;
	snprintf(key, sizeof(key), "%" PRIx64, th->thread_id);
	if (marker_frame(s->tab, FRAME_THREAD, "thread", tid, key, &id))
		return 0;
	/* threading's name, once known, is not given back for the OS one
	 * (threading forgets its threads as the interpreter shuts down). */
	if (!(from_os && same && s->tframes[slot].named) &&
	    (stacktab_string(s->tab, label, strlen(label), &lab) ||
	     stacktab_string(s->tab, name, strlen(name), &bare) ||
	     stacktab_frame_relabel(s->tab, id, lab, bare)))
		return 0;
	s->tframes[slot].named = (same && s->tframes[slot].named) || !from_os;
	s->tframes[slot].thread_id = th->thread_id;
	s->tframes[slot].tid = os_tid;
	s->tframes[slot].version = version;
	s->tframes[slot].frame = id;
	return id;
}

static int cmp_pre_tid(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* --blocking: a thread's OS state from before the pause into *state;
 * returns 0 for one the last sample did not know (new: not paused).
 * pre[] is sorted by tid: a search per thread stays cheap with thousands
 * of threads. */
static int pre_state(const struct sampler *s, int32_t tid, int *state)
{
	const struct pre_state *p;

	p = bsearch(&tid, s->pre, s->npre, sizeof(*s->pre), cmp_pre_tid);
	if (!p)
		return 0;
	*state = p->state;
	return 1;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Is the sorted set traced[] the same as the tids in pre[0..n)? */
static int same_threads(const struct sampler *s, uint32_t n)
{
	uint32_t i;

	if (n != s->ntraced)
		return 0;
	for (i = 0; i < n; i++) {
		pid_t tid = s->pre[i].tid;

		if (!bsearch(&tid, s->traced, s->ntraced, sizeof(*s->traced), cmp_pid))
			return 0;
	}
	return 1;
}

/* --blocking: append to pre[0..n) (sorted) the threads started since the
 * last listing of the process's threads, and list them anew.  A thread
 * started since the last sample is one the walk may find running Python
 * (a server that starts a thread per request has one at nearly every
 * tick): traced only from the next sample on, it would be read running,
 * and before 3.11 such a stack is often torn.  A listing costs a seek and
 * a getdents64 or two.  Threads in neither list (non-Python ones, or ones
 * that started Python after the listing) are left as they are.  Returns
 * the new count. */
static uint32_t add_new_threads(struct sampler *s, uint32_t n)
{
	uint32_t i, j = 0, base = n, max = s->o.walk.max_threads;
	int32_t *t;
	int m;

	if (s->task_fd < 0)
		return n;
	m = proc_tasks_read(s->task_fd, s->tasks_now, max);
	if (m < 0)
		return n;
	for (i = 0; i < (uint32_t)m && n < max; i++) {
		int32_t tid = s->tasks_now[i];

		while (j < s->ntasks && s->tasks[j] < tid)
			j++;
		if ((j < s->ntasks && s->tasks[j] == tid) ||
		    bsearch(&tid, s->pre, base, sizeof(*s->pre), cmp_pre_tid))
			continue;
		s->pre[n++].tid = tid;
	}
	t = s->tasks;
	s->tasks = s->tasks_now;
	s->tasks_now = t;
	s->ntasks = (uint32_t)m;
	if (n > base)
		qsort(s->pre, n, sizeof(*s->pre), cmp_pre_tid);
	return n;
}

/* --blocking, before a sample: trace the Python threads the last sample
 * saw and the threads started since, read their OS states while they
 * still run, and stop them.  Returns 1 when the threads are held (the
 * caller resumes them). */
static int pause_threads(struct sampler *s, const struct raw_sample *last)
{
	uint32_t i, n = 0;

	proc_pause_poll(s->pause);
	if (last) {
		/* Their tids as the last sample's filter found them (npick:
		 * 0 when it did not get that far). */
		for (i = 0; i < s->npick && n < s->o.walk.max_threads; i++)
			if (s->pick[i].tid > 0)
				s->pre[n++].tid = s->pick[i].tid;
		qsort(s->pre, n, sizeof(*s->pre), cmp_pre_tid);
		n = add_new_threads(s, n);
		s->npre = n;
	}
	/* The states before any thread is newly traced: a thread seized in
	 * a stop (SIGSTOP'd) is woken to report the stop to us, and the
	 * seize returns once it has, but before the thread is switched out:
	 * the scheduler watch's word for it ('R' since the wakeup) changes
	 * only then, and a stopped GIL holder read in between counts as
	 * running (CI: test_stopped_target_is_idle, 1 sample of 200 under
	 * --blocking; here 1 run in 6 under two CPU hogs). */
	if (!s->o.idle)
		for (i = 0; i < s->npre; i++)
			s->pre[i].state = thread_map_state(s->tmap, s->pre[i].tid);
	if (last && !same_threads(s, n)) {
		for (i = 0; i < n; i++)
			s->traced[i] = s->pre[i].tid;
		qsort(s->traced, n, sizeof(*s->traced), cmp_pid);
		s->ntraced = n;
		/* A thread that cannot be traced (gone, or already traced by
		 * a debugger) is sampled without pausing. */
		proc_pause_sync(s->pause, s->traced, n);
	}
	return s->ntraced && proc_pause_stop(s->pause) == 0;
}

/* Room in s->pick and s->tids for n threads; 0 or -ENOMEM. */
static int pick_room(struct sampler *s, uint32_t n)
{
	uint32_t cap = s->pick_cap ? s->pick_cap : 16;
	struct thread_pick *p;
	int32_t *t;

	if (n <= s->pick_cap)
		return 0;
	while (cap < n)
		cap = cap > UINT32_MAX / 2 ? n : 2 * cap;
	p = realloc(s->pick, (size_t)cap * sizeof(*p));
	if (p)
		s->pick = p;
	t = p ? realloc(s->tids, (size_t)cap * sizeof(*t)) : NULL;
	if (!t)
		return -ENOMEM;
	s->tids = t;
	s->pick_cap = cap;
	return 0;
}

/* Decide which threads count, and give them their root frames, into
 * s->pick[] (the consumer's array: the raw sample is left as it is).
 * 0 or -ENOMEM. */
static int filter(struct sampler *s, const struct raw_sample *rs, struct sampler_stats *st,
		  uint64_t *idle)
{
	uint32_t i, threads = 0, active = 0;
	/* OS tids: for the /proc state, the -t label and the threads to
	 * trace with --blocking. */
	int need_tids = !s->o.idle || s->o.threads || s->o.blocking || s->main_exited;

	s->holder_in_python = 0;
	if (pick_room(s, rs->nthreads))
		return -ENOMEM;
	if (need_tids)
		thread_map_tids(s->tmap, rs, s->tids);
	for (i = 0; i < rs->nthreads; i++) {
		const struct raw_thread *th = &rs->threads[i];
		struct thread_pick *p = &s->pick[i];
		int on_cpu = 1, state = 0, gil = !!(th->flags & RAW_GIL);
		int32_t tid = need_tids ? s->tids[i] : th->native_tid;

		*p = (struct thread_pick){ .tid = tid };
		/* Not read: the host said it was idle (host_thread). */
		if (th->flags & RAW_IDLE) {
			threads++;
			p->skip = 1;
			(*idle)++;
			continue;
		}
		/* A stack the backend could not read whole (RAW_TORN) is
		 * still a thread: idle, it is left out as any idle one; one
		 * that would count is counted torn, below. */
		if (!th->depth && !(th->flags & RAW_TORN))
			continue;
		s->holder_in_python |= gil;
		/* The GIL holder is running Python (or blocking every thread
		 * that would): active unless stopped, which is asked of /proc
		 * only now and then.  A thread whose state cannot be read
		 * counts too.  One rule: thread_state_active. */
		if (!s->o.idle || s->main_exited) {
			/* Traced: a thread the tracer has in a group-stop is
			 * stopped, whatever the scheduler's word (a stopped
			 * thread seized is woken to report, and runs again
			 * only to go back into the stop). */
			if (s->pause && proc_pause_group_stopped(s->pause, tid))
				on_cpu = 0;
			else if (s->pause && pre_state(s, tid, &state))
				on_cpu = state == -ESRCH ? -ESRCH
				       : state < 0 || thread_state_active(state, gil);
			else if (gil)
				on_cpu = thread_map_holder_active(s->tmap, tid);
			else
				on_cpu = thread_map_active(s->tmap, tid);
		}
		/* The thread state of a thread that has exited (a main thread
		 * after pthread_exit()) runs nothing: not a thread any more. */
		if (tid < 0 || on_cpu == -ESRCH) {
			p->skip = 1;
			continue;
		}
		on_cpu = s->o.idle || on_cpu != 0;
		threads++;
		active += on_cpu;
		if (s->o.gil) {
			/* The GIL holder counts whatever its OS state. */
			if (!(th->flags & RAW_GIL))
				p->skip = 1;
		} else if (!s->o.idle && !on_cpu) {
			p->skip = 1;
			(*idle)++;
		}
		if (p->skip)
			continue;
		if (th->flags & RAW_TORN) {
			p->skip = 1;
			s->raw_torn++;
			continue;
		}
		if (s->o.process_root)
			p->root[p->nroot++] = s->process_frame;
		if (s->o.threads) {
			uint32_t id = thread_frame(s, th, tid);

			if (id)
				p->root[p->nroot++] = id;
		}
	}
	s->npick = rs->nthreads;
	PUB(st->threads, threads);
	PUB(st->active, active);
	return 0;
}

/* After a failed sample: has the process exec'd another program?  Then
 * its memory no longer holds the interpreter we attached to: either another
 * one (another Python, or the same at new addresses) or none.  Looked at
 * five times a second at most, as finding the interpreter reads the maps
 * and the binary; no Python three times in a row (0.4 s: long enough for a
 * new program's libraries to be mapped) means the new program is not
 * Python.  1 when it exec'd, 0 when not (or not known yet).  known: the
 * backend saw the exec (the kernel told it), so any interpreter found up
 * is the new program's, the same one at the same addresses included. */
#define PROBE_NS 200000000LL
#define PROBES_NOT_PYTHON 3

static int execd(struct sampler *s, int64_t now, int known)
{
	int err;

	if (now < s->next_probe_ns)
		return 0;
	s->next_probe_ns = now + PROBE_NS;
	err = py_target_find(s->probe, s->pid, s->find_flags);
	if (!err) {
		s->not_python = 0;
		return known || s->probe->runtime != s->runtime ||
		       s->probe->version_hex != s->version_hex;
	}
	s->not_python = err == -ENOEXEC ? s->not_python + 1 : 0;
	return s->not_python >= PROBES_NOT_PYTHON;
}

/* After a failed or empty sample: did an embedding host finalize the
 * interpreter and start a new one (Py_FinalizeEx, then Py_Initialize)?  The
 * runtime then points at an interpreter other than the one sampled (one
 * read, at most every REINIT_CHECK_NS); a new one that validates the whole
 * way is sampled from then on, by a new sampler.  1 when so. */
#define REINIT_CHECK_NS 50000000LL

static int reinitialized(struct sampler *s, int64_t now)
{
	uint64_t head;

	if (now < s->next_reinit_ns || s->head_off < 0)
		return 0;
	s->next_reinit_ns = now + REINIT_CHECK_NS;
	if (rmem_read_ptr(s->mem, s->runtime + (uint64_t)s->head_off, &head) ||
	    !head || head == s->interp)
		return 0;
	return !py_target_find(s->probe, s->pid, s->find_flags) &&
	       s->probe->runtime == s->runtime && s->probe->interp != s->interp;
}

int sampler_handle(const struct sampler *s)
{
	return s->handle;
}

/* Has the process run since the last walk?  0 when it has not (asleep:
 * its clock is where it was and nobody holds the GIL), 1 when it has or
 * that cannot be told.  The clock read here is the one the next tick
 * compares with, when this one walks. */
static int ran(struct sampler *s)
{
	struct timespec ts;
	int64_t v;

	if (!s->has_clock)
		return 1;
	if (clock_gettime(s->cpu_clock, &ts)) {
		s->cpu_ok = 0; /* gone, or not to be read: the walk tells */
		return 1;
	}
	v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (!s->cpu_ok || v != s->cpu_ns) {
		s->cpu_ns = v;
		s->cpu_ok = 1;
		return 1;
	}
	/* Clock unchanged: a thread that came onto a CPU within the last
	 * scheduler tick and runs Python holds the GIL. */
	return backend_gil_held(s->be) != 0;
}

/* A watched process found asleep is also put to the clock test every
 * RW_CHECK_NS: a thread on a CPU since before the watch began, never
 * switched since, shows there and nowhere else (runwatch.h).  Once its
 * clock has stood still between two tests (rw_still), no thread of it was
 * on a CPU, and every one that runs after is switched in and counted; but
 * a switch in that the watch did not see (runwatch.bpf.c: rare) leaves no
 * mark while the thread runs, only the thread's word from before, 'R'
 * (runnable_thread, for the threads of the last sample): the test goes on
 * every RW_RECHECK_NS for those.  A thread missed is found within two
 * tests (ran_unseen). */
#define RW_CHECK_NS 250000000LL
#define RW_RECHECK_NS 1000000000LL

/* With the watch, at its clock test: did a thread that it cannot see run
 * since the last test?  The clock is compared only across a stretch in
 * which the watch saw no move (a move sets cpu_ok to 0, and the first test
 * after one only reads the clock): so a change is a thread the watch
 * missed, and a process whose threads it saw wake pays no walk for them.
 * No GIL read: a test is RW_CHECK_NS from the last, many scheduler ticks,
 * and a thread on a CPU all that time has moved the clock. */
static int ran_unseen(struct sampler *s)
{
	struct timespec ts;
	int64_t v;
	int was_ok = s->cpu_ok;

	if (!s->has_clock)
		return 1;
	if (clock_gettime(s->cpu_clock, &ts)) {
		s->cpu_ok = 0;
		return 1;
	}
	v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	s->cpu_ok = 1;
	if (was_ok && v == s->cpu_ns) {
		s->rw_still = 1;
		return 0;
	}
	s->cpu_ns = v;
	return was_ok;
}

/* Does the watch have a thread of the last sample runnable: on a CPU, or
 * waiting for one, or on one whose switch in it did not see?  By the ids
 * the last filter had (ours, or the backend's when it asked for none:
 * another thread's word then at worst, a read for nothing). */
static int runnable_thread(const struct sampler *s)
{
	uint32_t i;

	for (i = 0; i < s->npick; i++)
		if (s->pick[i].tid > 0 &&
		    runwatch_thread_state(s->rw, (uint32_t)s->rw_slot, s->pick[i].tid) == 'R')
			return 1;
	return 0;
}

/* Has the process slept since its last walk (1), or may it have run (0)?
 * Also keeps what the next tick compares with. */
static int slept(struct sampler *s, int64_t now)
{
	if (now >= s->retry_at)
		return 0;
	if (s->rw_slot >= 0) {
		uint64_t n = runwatch_switches(s->rw, (uint32_t)s->rw_slot);
		int moved = n != s->rw_seen || runwatch_on_cpu(s->rw, (uint32_t)s->rw_slot);
		int64_t every;

		s->rw_seen = n;
		if (s->was_active || moved || runnable_thread(s)) {
			s->cpu_ok = 0;
			return 0;
		}
		if (now < s->rw_check_at)
			return 1;
		/* On one grid for every process: the ticks between stay quiet. */
		every = s->rw_still ? RW_RECHECK_NS : RW_CHECK_NS;
		s->rw_check_at = (now / every + 1) * every;
		return !ran_unseen(s);
	}
	if (s->was_active) {
		s->cpu_ok = 0; /* no clock read before this walk to compare with */
		return 0;
	}
	return !ran(s);
}

/* n ticks at which the process had not run, as samples (the GIL known,
 * free); and, unless idle (their stacks were counted) or -g, its threads
 * as idle ones left out. */
static void count_asleep(struct sampler *s, uint64_t n, int idle, struct sampler_stats *st)
{
	if (!idle && !s->o.gil)
		PUB(st->idle, s->idle += n * s->last_threads);
	PUB(st->asleep, s->asleep += n);
	PUB(st->samples, s->samples += n);
	PUB(st->gil_known, s->gil_known += n);
}

/* A tick at which the process had not run: count what sampler.h says.
 * Returns 1, counting nothing, when the stacks to count again are of a
 * window the stack table has closed since, or when the last read's stacks
 * that waited for a code object's check (py_sym_flush, counted first)
 * were dropped: the process is read instead.  What the flush counted is
 * published with the next read or at the end. */
static int tick_asleep(struct sampler *s, int64_t now, struct sampler_stats *st)
{
	if (py_sym_flush(s->sym, now, &s->ss))
		return 1;
	if (s->o.idle && !s->o.gil) {
		const uint32_t *ids;
		uint32_t i, n;

		py_sym_counted(s->sym, &ids, &n);
		for (i = 0; i < n; i++) {
			if (!stacktab_add_id_at(s->tab, ids[i], now))
				s->ss.stacks++;
			else if (i == 0)
				return 1; /* another window since: read it */
			else
				s->ss.dropped++; /* a window closed in between */
		}
		PUB(st->stacks, s->ss.stacks);
		PUB(st->dropped, s->ss.dropped);
		PUB(st->active, s->last_threads);
	} else {
		count_asleep(s, 1, 0, st);
		PUB(st->active, 0);
		return 0;
	}
	count_asleep(s, 1, 1, st);
	return 0;
}

#define ALIVE_CHECK_NS 10000000LL
#define MAIN_CHECK_NS 500000000LL

int sampler_begin(struct sampler *s, int64_t now, struct sampler_stats *st)
{
	int err;

	s->start = now;
	s->alive_at = INT64_MIN / 2;
	(void)st;
	/* Tracing belongs to this thread: it is set up and torn down here. */
	if (s->o.blocking && !s->pause) {
		err = proc_pause_new(&s->pause, s->pid);
		if (err)
			return err;
	}
	return 0;
}

int sampler_quiet(const struct sampler *s, int64_t *until, uint32_t *slot)
{
	if (!s->quiet || s->rw_slot < 0)
		return 0;
	*until = s->rw_check_at < s->retry_at ? s->rw_check_at : s->retry_at;
	*slot = (uint32_t)s->rw_slot;
	return 1;
}

void sampler_skipped(struct sampler *s, uint64_t n, int64_t last, struct sampler_stats *st)
{
	PUB(st->ticks, s->ticks += n);
	PUB(st->elapsed_ns, (uint64_t)(last - s->start));
	count_asleep(s, n, 0, st); /* quiet: never with -i */
}

void sampler_late(struct sampler *s, uint64_t missed, struct sampler_stats *st)
{
	s->late += missed;
	PUB(st->late, s->late);
}

/* What each sample read and counted, as of now (sampler_tick, sampler_end). */
static void publish_reads(const struct sampler *s, struct sampler_stats *st)
{
	PUB(st->stacks, s->ss.stacks);
	PUB(st->torn, s->raw_torn + s->ss.torn);
	PUB(st->rereads, s->bs.rereads);
	PUB(st->returned, s->bs.returned);
	PUB(st->dropped, s->ss.dropped);
	PUB(st->code_misses, s->ss.code_misses);
	PUB(st->code_gone, s->ss.code_gone);
	PUB(st->interps_capped, s->bs.interps_capped);
	PUB(st->fast, s->bs.fast);
	PUB(st->reads, s->mem->reads);
	PUB(st->pages, s->mem->pages);
	PUB(st->bytes, s->mem->bytes);
}

/* Has the process exited, by its handle?  A pid is free for reuse only
 * once its process has exited: while the handle says it lives, the reads
 * before were of it.  Asked after the first sample that ends
 * ALIVE_CHECK_NS after the last answer (a syscall every sample would cost
 * 5% at high rates; at 100 Hz it is every sample), so also at once when
 * pyspyc itself was stopped: what a process that took over the pid (its
 * predecessor exited, reaped and the pid handed out again, all within
 * that time) can add is at most ALIVE_CHECK_NS of samples.  (The session
 * also watches the handle, so an exit is seen at once between ticks.) */
static int exited(struct sampler *s, int64_t now)
{
	if (s->handle < 0 || now - s->alive_at <= ALIVE_CHECK_NS)
		return 0;
	s->alive_at = now;
	return proc_handle_exited(s->handle);
}

/* After a read that failed with err (0: none failed): 1 when the process
 * is done (gone, exec'd or re-initialized: counted in st), else 0, the
 * error counted. */
static int read_failed(struct sampler *s, int err, int64_t now, struct sampler_stats *st)
{
	if (err == -ESRCH) {
		PUB(st->target_gone, 1);
		return 1;
	}
	if (!err)
		return 0;
	PUB(st->errors, ++s->errors);
	if (execd(s, now, 0)) {
		PUB(st->target_exec, 1);
		return 1;
	}
	if (reinitialized(s, now)) {
		PUB(st->target_reinit, 1);
		return 1;
	}
	return 0;
}

/* A push backend's "active" threads: those it sampled within the last
 * SEEN_NS.  Its samples come only from threads on a CPU, at the kernel's
 * pace and not at the turn's: a thread that runs all the time may have no
 * sample in one turn (its sample was taken just after the drain, or the
 * machine kept it waiting for a CPU), and would show as idle half the time
 * if only the last turn counted. */
#define SEEN_NS 250000000LL

static void seen_thread(struct sampler *s, int32_t tid, int64_t at)
{
	uint32_t k, oldest = 0;

	for (k = 0; k < s->nseen && s->seen[k].tid != tid; k++)
		if (s->seen[k].at < s->seen[oldest].at)
			oldest = k;
	if (k == s->nseen) {
		if (s->nseen < sizeof(s->seen) / sizeof(s->seen[0]))
			s->nseen++;
		else
			k = oldest;
		s->seen[k].tid = tid;
		s->seen[k].at = at;
	} else if (at > s->seen[k].at) {
		s->seen[k].at = at;
	}
}

/* How many threads were seen since now - SEEN_NS; the rest forgotten. */
static uint32_t seen_recent(struct sampler *s, int64_t now)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nseen; i++)
		if (s->seen[i].at >= now - SEEN_NS)
			s->seen[n++] = s->seen[i];
	s->nseen = n;
	return n;
}

/* Every sample a push backend took since the last turn, counted, each at
 * its own time.  Its samples are of threads on a CPU: none is left out as
 * idle.  Also when the process is done (gone or exec'd): what it ran
 * before counts too. */
static void take_pushed(struct sampler *s, int64_t now, struct sampler_stats *st)
{
	struct raw_sample *rs;

	if (pick_room(s, 1))
		return; /* no memory: the samples wait for the next turn */
	while (!backend_sample(s->be, NULL, &rs)) {
		const struct raw_thread *th = &rs->threads[0];
		struct thread_pick *p = &s->pick[0];
		int64_t at = rs->at_ns ? rs->at_ns : now;

		PUB(st->samples, ++s->samples);
		if (th->flags & RAW_TORN) {
			s->raw_torn++;
			continue;
		}
		if (!th->depth)
			continue; /* on a CPU with no Python frame */
		seen_thread(s, th->native_tid, at);
		*p = (struct thread_pick){ .tid = th->native_tid };
		if (s->o.process_root)
			p->root[p->nroot++] = s->process_frame;
		if (s->o.threads) {
			uint32_t id = thread_frame(s, th, th->native_tid);

			if (id)
				p->root[p->nroot++] = id;
		}
		s->npick = 1;
		py_sym_add(s->sym, rs, s->pick, 0, at, &s->ss);
	}
	PUB(st->active, seen_recent(s, now));
	backend_stats(s->be, &s->bs);
	PUB(st->bpf_unknown, s->bs.bpf_unknown);
	PUB(st->bpf_dropped, s->bs.bpf_dropped);
}

/* A push backend's turn (backend.h): its thread list walked when due, so
 * that it knows every thread's OS id, then its samples (take_pushed). */
static int tick_push(struct sampler *s, int64_t now, struct sampler_stats *st)
{
	struct raw_sample *rs;
	int err = 0;

	/* After a failed walk, again at every turn (an exec is probed for
	 * at its own pace, execd). */
	if (s->list_failed || s->be->ops->list_due(s->be, now)) {
		err = s->be->ops->list(s->be, &rs);
		s->list_failed = err != 0;
		if (!err && pick_room(s, rs->nthreads))
			err = -ENOMEM;
		if (!err) {
			thread_map_tids(s->tmap, rs, s->tids);
			s->be->ops->set_tids(s->be, rs, s->tids, now);
			PUB(st->threads, rs->nthreads);
		}
	}
	if (exited(s, now))
		err = -ESRCH;
	if (err != -ESRCH && s->be->ops->execd(s->be)) {
		if (execd(s, now, 1)) {
			PUB(st->target_exec, 1);
			return 1; /* its samples: sampler_end */
		}
		return 0;
	}
	if (read_failed(s, err, now, st))
		return 1;
	take_pushed(s, now, st);
	publish_reads(s, st);
	return 0;
}

int sampler_tick(struct sampler *s, int64_t now, struct sampler_stats *st)
{
	struct raw_sample *rs;
	struct backend_reads x;
	uint64_t lost;
	int err;

	PUB(st->ticks, ++s->ticks);
	PUB(st->elapsed_ns, (uint64_t)(now - s->start));
	s->quiet = 0;
	if (s->push)
		return tick_push(s, now, st);
	if (slept(s, now) && (s->repeat_ok || !s->o.idle || s->o.gil) &&
	    !tick_asleep(s, now, st)) {
		/* -i counts the last stacks again at each tick's own time:
		 * those ticks are taken one by one. */
		s->quiet = s->rw_slot >= 0 && !(s->o.idle && !s->o.gil);
		return 0;
	}
	s->was_active = 0;
	s->repeat_ok = 0;
	lost = s->raw_torn + s->ss.torn + s->ss.dropped + s->ss.errors;
	py_sym_prefetch(s->sym, &x.l, &x.r, &x.n);
	x.done = 0;
	if (s->pause && pause_threads(s, s->last)) {
		int64_t t0 = mono_ns(), dt;

		err = backend_sample(s->be, &x, &rs);
		proc_pause_resume(s->pause);
		dt = mono_ns() - t0;
		PUB(st->pauses, ++s->pauses);
		s->pause_ns += (uint64_t)dt;
		PUB(st->pause_ns, s->pause_ns);
		if ((uint64_t)dt > s->pause_max)
			PUB(st->pause_ns_max, s->pause_max = (uint64_t)dt);
	} else {
		err = backend_sample(s->be, &x, &rs);
	}
	backend_stats(s->be, &s->bs);
	s->last = err ? NULL : rs;
	s->npick = 0;
	if (s->handle >= 0)
		now = mono_ns();
	if (exited(s, now))
		err = -ESRCH;
	if (now >= s->main_check_ns) {
		pid_t live = proc_live_task(s->pid);

		s->main_check_ns = now + MAIN_CHECK_NS;
		s->main_exited = live > 0 && live != s->pid;
	}
	if (read_failed(s, err, now, st))
		return 1;
	if (err) {
		s->retry_at = s->next_probe_ns;
		return 0;
	}
	s->retry_at = INT64_MAX;
	if (!rs->nthreads && reinitialized(s, now)) {
		PUB(st->target_reinit, 1);
		return 1;
	}
	s->not_python = 0;
	PUB(st->samples, ++s->samples);
	if (rs->threads_left_out > s->left_out)
		PUB(st->threads_left_out, s->left_out = rs->threads_left_out);
	if (rs->gil_known) {
		PUB(st->gil_known, ++s->gil_known);
		if (rs->gil_holder)
			PUB(st->gil_held, ++s->gil_held);
	}
	if (filter(s, rs, st, &s->idle)) {
		PUB(st->errors, ++s->errors); /* no memory to decide in */
		return 0;
	}
	py_sym_add(s->sym, rs, s->pick, x.done, now, &s->ss);
	/* Every thread read whole and counted (or left out as the options
	 * say): a tick at which the process has not run since may count
	 * the same stacks again. */
	s->repeat_ok = s->raw_torn + s->ss.torn + s->ss.dropped + s->ss.errors == lost;
	s->last_threads = GET(st->threads);
	/* A GIL holder with Python frames runs Python (or blocks every
	 * thread that would) whatever its OS state: read it again.  One with
	 * none holds the GIL in C code (an embedding host's loop that never
	 * lets it go, as uWSGI without --enable-threads): asleep there, it
	 * must be switched onto a CPU to run Python, and the asleep test sees
	 * that. */
	s->was_active = (rs->gil_holder && s->holder_in_python) ||
			(!s->o.idle && GET(st->active));
	PUB(st->idle, s->idle);
	publish_reads(s, st);
	return 0;
}

void sampler_end(struct sampler *s, int gone, struct sampler_stats *st)
{
	if (gone)
		PUB(st->target_gone, 1);
	/* The samples the kernel took up to the end (the caller drained its
	 * ring first), gone or not: a run that ends, or a process that exits,
	 * loses none of its last turn. */
	if (s->push)
		take_pushed(s, mono_ns(), st);
	py_sym_flush(s->sym, mono_ns(), &s->ss);
	publish_reads(s, st);
	PUB(st->errors, s->errors + s->ss.errors);
	/* Detach here, on the tracing thread: nothing is left traced. */
	proc_pause_free(s->pause);
	s->pause = NULL;
}
