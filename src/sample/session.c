/* session.c - one sampler thread per process, a watcher for the tree. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>
#include <unistd.h>

#include "pyspyc/clock.h"
#include "pyspyc/proc_events.h"
#include "pyspyc/sampler.h"
#include "pyspyc/session.h"

#define MAX_LIVE 256          /* processes sampled at once */
#define MAX_TREE 4096         /* descendants looked at per scan */
#define MAX_SKIP 1024         /* non-Python processes remembered */
#define SCAN_NS 100000000LL   /* without process events, the tree is walked
			       * ten times a second... */
#define WALK_NS 1000000000LL  /* ...with them, once a second, in case some
			       * were lost */
#define NAP_NS 10000000LL     /* the watcher sees a stop this quickly */
/* Looks at a process that is not Python yet: after 2, 4 and 8 ms, then
 * every 16 ms for a second (an interpreter starting up), then five times a
 * second for 6 s more (a program that starts Python later). */
#define RETRY_NS 2000000LL
#define RETRY_FAST 60
#define RETRY_MAX 90
#define MEMBER_SLOTS 8192     /* the tree's pids, hashed (> 2 * MAX_TREE) */
#define MAX_EVENTS 256        /* process events taken per read */

struct proc_run {
	struct session *s;
	struct proc_ident id;
	struct py_target t;
	struct sampler *smp;
	struct sampler_stats st;  /* published live by the sampler */
	pthread_t thread;
	int done;                 /* atomic: the sampler returned */
};

/* A descendant that is not (yet) Python: looked at again a few times (a
 * fork that will exec python, an interpreter still starting), then left. */
struct skip {
	struct proc_ident id;
	int tries;
	int64_t next_ns;
};

struct session {
	struct session_opts o;
	struct stacktab *tab;
	struct proc_ident root;
	int64_t start_ns, end_ns, stop_ns;
	volatile sig_atomic_t stop;

	pthread_mutex_t lock;     /* guards everything below */
	struct proc_run *live[MAX_LIVE];
	uint32_t nlive;
	struct sampler_stats done; /* summed over finished samplers */
	uint32_t seen;
	uint32_t execs;           /* processes that exec'd another program */
	uint32_t execs_lost;      /* ...that was not Python: left unsampled */
	uint32_t reinits;         /* interpreters finalized and started anew */
	int root_gone;
	struct skip skips[MAX_SKIP];
	uint32_t nskips;

	pthread_t watcher;
	int watching, started, stopped;
	struct proc_ident *tree;  /* watcher scratch */
	/* The watcher's own (no lock): the process events socket (-1: none,
	 * the tree is walked SCAN_NS apart), and the pids of the tree as last
	 * walked plus those forked in it since (0: free, -1: removed). */
	int ev_fd;
	pid_t *members;
	struct proc_ev *events;
	struct py_find_cache *elf_cache; /* each binary read once */
};

int session_new(struct session **out, const struct session_opts *o,
		struct stacktab *tab)
{
	struct session *s;

	*out = NULL;
	if (!(o->rate_hz > 0))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->tab = tab;
	s->ev_fd = -1;
	if (py_find_cache_new(&s->elf_cache)) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

static void *sampler_main(void *arg)
{
	struct proc_run *pr = arg;

	sampler_run(pr->smp, &pr->s->stop, &pr->st);
	__atomic_store_n(&pr->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Threads the session starts take no signals: the caller's thread does. */
static int spawn(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

/* Start sampling a found target.  Called with the lock held. */
static int start_proc(struct session *s, const struct py_target *t, uint64_t start)
{
	struct sampler_opts so = {
		.rate_hz = s->o.rate_hz,
		.end_ns = s->end_ns,
		.idle = s->o.idle,
		.gil = s->o.gil,
		.threads = s->o.threads,
		.blocking = s->o.blocking,
		.process_root = s->o.subprocesses,
		.walk = s->o.walk,
		.sym = s->o.sym,
	};
	struct proc_run *pr;
	uint64_t now_start;
	pid_t ppid;
	int err;

	if (s->nlive >= MAX_LIVE)
		return -ENOSPC;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->s = s;
	pr->t = *t;
	pr->t.layout = &pr->t.layout_buf; /* it pointed into the caller's copy */
	pr->id.pid = t->pid;
	pr->id.start = start;
	err = sampler_new(&pr->smp, &pr->t, s->tab, &so);
	if (err)
		goto out_free;
	/* The sampler holds the process now: make sure it holds the one that
	 * was found, not a later one that took its pid in between. */
	if (proc_stat_ids(t->pid, &ppid, &now_start, NULL) || now_start != start) {
		err = -ESRCH;
		goto out_sampler;
	}
	err = spawn(&pr->thread, sampler_main, pr);
	if (err)
		goto out_sampler;
	s->live[s->nlive++] = pr;
	s->seen++;
	return 0;

out_sampler:
	sampler_free(pr->smp);
out_free:
	free(pr);
	return err;
}

static void add_stats(struct sampler_stats *sum, const struct sampler_stats *x)
{
	sum->ticks += x->ticks;
	sum->samples += x->samples;
	sum->stacks += x->stacks;
	sum->errors += x->errors;
	sum->torn += x->torn;
	sum->rereads += x->rereads;
	sum->late += x->late;
	sum->dropped += x->dropped;
	sum->idle += x->idle;
	sum->code_misses += x->code_misses;
	sum->reads += x->reads;
	sum->fast += x->fast;
	sum->gil_known += x->gil_known;
	sum->gil_held += x->gil_held;
	sum->pauses += x->pauses;
	sum->pause_ns += x->pause_ns;
	if (x->pause_ns_max > sum->pause_ns_max)
		sum->pause_ns_max = x->pause_ns_max;
	sum->interps_capped += x->interps_capped;
	sum->threads_left_out += x->threads_left_out;
}

static struct skip *skip_for(struct session *s, const struct proc_ident *id);

/* id exec'd another program: sample it if it is Python.  With
 * subprocesses, one that is not Python yet is left to the watcher, which
 * looks at it again a few times.  Lock held. */
static void follow_exec(struct session *s, const struct proc_ident *id, int reinit)
{
	struct py_target *t = malloc(sizeof(*t));
	struct skip *sk;

	if (reinit)
		s->reinits++;
	else
		s->execs++;
	if (t && !py_target_find_cached(t, id->pid, s->o.find_flags, s->elf_cache) &&
	    !start_proc(s, t, id->start)) {
		s->seen--; /* the same process */
		free(t);
		return;
	}
	free(t);
	if (reinit)
		return; /* gone again already: nothing to follow */
	if (s->o.subprocesses && (sk = skip_for(s, id)))
		*sk = (struct skip){ .id = *id };
	else
		s->execs_lost++;
}

/* Join samplers that finished and fold their counters in; follow a
 * process that exec'd.  Lock held. */
static void reap(struct session *s)
{
	struct proc_ident execd[MAX_LIVE];
	int reinit[MAX_LIVE];
	uint32_t i = 0, nexecd = 0;

	while (i < s->nlive) {
		struct proc_run *pr = s->live[i];
		struct sampler_stats st;

		if (!__atomic_load_n(&pr->done, __ATOMIC_ACQUIRE)) {
			i++;
			continue;
		}
		pthread_join(pr->thread, NULL);
		sampler_stats_read(&pr->st, &st);
		add_stats(&s->done, &st);
		if ((st.target_exec || st.target_reinit) && !s->stop) {
			reinit[nexecd] = !st.target_exec;
			execd[nexecd++] = pr->id;
		}
		else if (pr->id.pid == s->root.pid && pr->id.start == s->root.start)
			s->root_gone = 1;
		sampler_free(pr->smp);
		free(pr);
		s->live[i] = s->live[--s->nlive];
	}
	for (i = 0; i < nexecd; i++)
		follow_exec(s, &execd[i], reinit[i]);
}

static int is_live(const struct session *s, const struct proc_ident *id)
{
	uint32_t i;

	for (i = 0; i < s->nlive; i++)
		if (s->live[i]->id.pid == id->pid && s->live[i]->id.start == id->start)
			return 1;
	return 0;
}

/* The skip entry for id, a fresh one, or NULL when the table is full. */
static struct skip *skip_for(struct session *s, const struct proc_ident *id)
{
	uint32_t i;

	for (i = 0; i < s->nskips; i++)
		if (s->skips[i].id.pid == id->pid)
			break;
	if (i == s->nskips) {
		if (s->nskips == MAX_SKIP)
			return NULL;
		s->nskips++;
	} else if (s->skips[i].id.start == id->start) {
		return &s->skips[i];
	}
	/* New, or a reused pid: start over. */
	s->skips[i] = (struct skip){ .id = *id };
	return &s->skips[i];
}

/* Forget skip entries whose process is gone. */
static void prune_skips(struct session *s, const struct proc_ident *tree, int n)
{
	uint32_t i = 0;
	int k;

	while (i < s->nskips) {
		for (k = 0; k < n; k++)
			if (tree[k].pid == s->skips[i].id.pid &&
			    tree[k].start == s->skips[i].id.start)
				break;
		if (k == n)
			s->skips[i] = s->skips[--s->nskips];
		else
			i++;
	}
}

static int expired(const struct session *s)
{
	return s->stop || (s->end_ns && mono_ns() >= s->end_ns);
}

/* ---- the tree's pids, a small open-addressed set (watcher only) ---- */

static uint32_t member_slot(const struct session *s, pid_t pid, int for_insert)
{
	uint32_t h = ((uint32_t)pid * 2654435761u) % MEMBER_SLOTS, i;

	for (i = 0; i < MEMBER_SLOTS; i++, h = (h + 1) % MEMBER_SLOTS) {
		if (s->members[h] == pid || s->members[h] == 0 ||
		    (for_insert && s->members[h] == -1))
			return h;
	}
	return UINT32_MAX;
}

static int is_member(const struct session *s, pid_t pid)
{
	uint32_t h = member_slot(s, pid, 0);

	return h != UINT32_MAX && s->members[h] == pid;
}

static void member_add(struct session *s, pid_t pid)
{
	uint32_t h;

	if (is_member(s, pid))
		return;
	h = member_slot(s, pid, 1);
	if (h != UINT32_MAX)
		s->members[h] = pid;
}

static void member_del(struct session *s, pid_t pid)
{
	uint32_t h = member_slot(s, pid, 0);

	if (h != UINT32_MAX && s->members[h] == pid)
		s->members[h] = -1;
}

/* A process to look at soon: a new one, or one that ran exec.  Lock held. */
static void candidate(struct session *s, const struct proc_ident *id, int64_t when)
{
	struct skip *sk;

	if (is_live(s, id) || !(sk = skip_for(s, id)))
		return;
	sk->tries = 0;
	sk->next_ns = when;
}

/* Walk the tree from the root: the members are what it finds; a process
 * not seen before is a candidate at once. */
static void walk(struct session *s)
{
	int n, k, state = 0;
	pid_t ppid;
	uint64_t start;

	if (proc_stat_ids(s->root.pid, &ppid, &start, &state) ||
	    start != s->root.start ||
	    ((state == 'Z' || state == 'X') && proc_live_task(s->root.pid) < 0)) {
		pthread_mutex_lock(&s->lock);
		s->root_gone = 1;
		pthread_mutex_unlock(&s->lock);
	}
	/* The root is a candidate too: a launched command becomes Python
	 * only after it has started. */
	s->tree[0] = s->root;
	n = proc_descendants(s->root.pid, s->tree + 1, MAX_TREE - 1);
	if (n < 0)
		return;
	n++;
	memset(s->members, 0, MEMBER_SLOTS * sizeof(*s->members));
	pthread_mutex_lock(&s->lock);
	for (k = 0; k < n; k++) {
		member_add(s, s->tree[k].pid);
		if (!is_live(s, &s->tree[k]))
			skip_for(s, &s->tree[k]); /* a new entry is due now */
	}
	prune_skips(s, s->tree, n);
	pthread_mutex_unlock(&s->lock);
}

/* Take the process events: a fork in the tree adds the child to it and
 * makes it a candidate; an exec in it makes the process one again.
 * Returns 1 when events were lost (the tree must be walked again). */
static int take_events(struct session *s)
{
	size_t n = 0, i;
	int err, lost = 0;

	do {
		err = proc_events_read(s->ev_fd, s->events, MAX_EVENTS, &n);
		if (err == -ENOBUFS)
			lost = 1;
		for (i = 0; i < n; i++) {
			struct proc_ident id = { .pid = s->events[i].pid };
			const struct proc_ev *ev = &s->events[i];
			int state = 0;

			if (ev->kind == PROC_EV_EXIT) {
				if (ev->pid != s->root.pid)
					member_del(s, ev->pid);
				continue;
			}
			if (ev->kind == PROC_EV_FORK ? !is_member(s, ev->ppid) :
			    !is_member(s, ev->pid))
				continue;
			member_add(s, ev->pid);
			if (proc_stat_ids(id.pid, &id.ppid, &id.start, &state) || state == 'Z')
				continue; /* gone already */
			pthread_mutex_lock(&s->lock);
			candidate(s, &id, mono_ns() + RETRY_NS);
			pthread_mutex_unlock(&s->lock);
		}
	} while ((err > 0 || err == -ENOBUFS) && n >= MAX_EVENTS - 8 && !expired(s));
	return lost;
}

/* Look at every candidate that is due: start a sampler for each that is
 * Python now; look again later at one that is not (yet).  Returns when the
 * next one is due (INT64_MAX: none). */
static int64_t try_candidates(struct session *s)
{
	struct py_target *t = malloc(sizeof(*t));
	int64_t next = INT64_MAX;
	uint32_t i;

	if (!t)
		return mono_ns() + SCAN_NS;
	for (i = 0;; i++) {
		struct proc_ident id;
		struct skip *sk;
		int64_t now = mono_ns(), wait;
		int err;

		pthread_mutex_lock(&s->lock);
		if (i >= s->nskips || expired(s)) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		sk = &s->skips[i];
		if (sk->tries >= RETRY_MAX || is_live(s, &sk->id)) {
			sk->tries = RETRY_MAX;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		if (now < sk->next_ns) {
			if (sk->next_ns < next)
				next = sk->next_ns;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		id = sk->id;
		pthread_mutex_unlock(&s->lock);
		err = py_target_find_cached(t, id.pid, s->o.find_flags, s->elf_cache);
		pthread_mutex_lock(&s->lock);
		if (!err)
			err = start_proc(s, t, id.start);
		/* The table may have changed while we looked (reap adds). */
		sk = skip_for(s, &id);
		if (sk && err) {
			/* Not Python (yet), or not one we support: look again a
			 * little later, and later, in case it execs Python. */
			sk->tries = err == -EPROTONOSUPPORT || err == -ESRCH ?
				RETRY_MAX : sk->tries + 1;
			wait = sk->tries < 3 ? RETRY_NS << sk->tries :
			       sk->tries < RETRY_FAST ? 8 * RETRY_NS : SCAN_NS * 2;
			sk->next_ns = mono_ns() + wait;
			if (sk->tries < RETRY_MAX && sk->next_ns < next)
				next = sk->next_ns;
		} else if (sk) {
			sk->tries = RETRY_MAX; /* sampled: the entry is spent */
		}
		pthread_mutex_unlock(&s->lock);
	}
	free(t);
	return next;
}

static void *watcher_main(void *arg)
{
	struct session *s = arg;
	int64_t next_walk = 0, walk_every = s->ev_fd >= 0 ? WALK_NS : SCAN_NS;

	while (!expired(s)) {
		struct pollfd p = { .fd = s->ev_fd, .events = POLLIN };
		int64_t now, due, wait;

		pthread_mutex_lock(&s->lock);
		reap(s);
		pthread_mutex_unlock(&s->lock);
		/* The walk first: events queued before it are about
		 * processes it makes members. */
		if (mono_ns() >= next_walk) {
			walk(s);
			next_walk = mono_ns() + walk_every;
		}
		if (s->ev_fd >= 0 && take_events(s))
			next_walk = 0;
		due = try_candidates(s);
		now = mono_ns();
		if (due > next_walk)
			due = next_walk;
		if (s->end_ns && due > s->end_ns)
			due = s->end_ns;
		wait = due - now;
		if (wait > NAP_NS)
			wait = NAP_NS; /* short naps, so a stop is seen quickly */
		if (wait <= 0)
			continue;
		if (s->ev_fd >= 0) {
			poll(&p, 1, (int)((wait + 999999) / 1000000));
		} else {
			struct timespec ts = { 0, (long)wait };

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int session_start(struct session *s, pid_t root, const struct py_target *t)
{
	pid_t ppid;
	int err;

	if (s->started)
		return -EALREADY;
	if (!t && !s->o.subprocesses)
		return -EINVAL;
	s->root.pid = root;
	err = proc_stat_ids(root, &ppid, &s->root.start, NULL);
	if (err)
		return err;
	s->start_ns = mono_ns();
	if (s->o.duration_s > 0)
		s->end_ns = s->start_ns + (int64_t)(s->o.duration_s * 1e9);
	if (s->o.subprocesses) {
		s->tree = malloc(MAX_TREE * sizeof(*s->tree));
		s->members = calloc(MEMBER_SLOTS, sizeof(*s->members));
		s->events = malloc(MAX_EVENTS * sizeof(*s->events));
		if (!s->tree || !s->members || !s->events)
			return -ENOMEM;
		/* Root only; else the tree is walked, more often. */
		s->ev_fd = proc_events_open();
	}
	pthread_mutex_lock(&s->lock);
	err = t ? start_proc(s, t, s->root.start) : 0;
	if (!err && t) {
		/* Sampled already: the watcher must not start it again. */
		struct skip *sk = skip_for(s, &s->root);

		if (sk)
			sk->tries = RETRY_MAX;
	}
	pthread_mutex_unlock(&s->lock);
	if (err)
		return err;
	s->started = 1;
	if (s->o.subprocesses) {
		err = spawn(&s->watcher, watcher_main, s);
		if (err) {
			session_stop(s);
			return err;
		}
		s->watching = 1;
	}
	return 0;
}

int session_done(struct session *s)
{
	int done;

	if (!s->started || s->stopped)
		return 1;
	if (s->end_ns && mono_ns() >= s->end_ns)
		return 1;
	pthread_mutex_lock(&s->lock);
	reap(s);
	done = s->nlive == 0 && (!s->o.subprocesses || s->root_gone);
	pthread_mutex_unlock(&s->lock);
	return done;
}

void session_stats(struct session *s, struct session_stats *out)
{
	struct sampler_stats sum;
	uint32_t i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	sum = s->done;
	for (i = 0; i < s->nlive; i++) {
		struct sampler_stats st;

		sampler_stats_read(&s->live[i]->st, &st);
		add_stats(&sum, &st);
		if (!__atomic_load_n(&s->live[i]->done, __ATOMIC_ACQUIRE)) {
			out->threads += (uint32_t)st.threads;
			out->active += (uint32_t)st.active;
			out->processes++;
		}
	}
	out->processes_seen = s->seen;
	out->execs = s->execs;
	out->execs_lost = s->execs_lost;
	out->reinits = s->reinits;
	pthread_mutex_unlock(&s->lock);
	out->ticks = sum.ticks;
	out->samples = sum.samples;
	out->errors = sum.errors;
	out->late = sum.late;
	out->torn = sum.torn;
	out->rereads = sum.rereads;
	out->stacks = sum.stacks;
	out->dropped = sum.dropped;
	out->idle = sum.idle;
	out->reads = sum.reads;
	out->gil_known = sum.gil_known;
	out->gil_held = sum.gil_held;
	out->pauses = sum.pauses;
	out->pause_ns = sum.pause_ns;
	out->pause_ns_max = sum.pause_ns_max;
	out->interps_capped = sum.interps_capped;
	out->threads_left_out = sum.threads_left_out;
	if (s->started) {
		int64_t end = s->stop_ns ? s->stop_ns : mono_ns();

		if (s->end_ns && end > s->end_ns)
			end = s->end_ns;
		out->elapsed_s = (double)(end - s->start_ns) / 1e9;
	}
}

void session_stop(struct session *s)
{
	if (!s || s->stopped)
		return;
	s->stop_ns = mono_ns();
	s->stop = 1;
	if (s->watching)
		pthread_join(s->watcher, NULL);
	s->watching = 0;
	/* A sampler sees stop within 100 ms (it never sleeps longer). */
	for (;;) {
		struct timespec ts = { 0, 1000000 };
		uint32_t left;

		pthread_mutex_lock(&s->lock);
		reap(s);
		left = s->nlive;
		pthread_mutex_unlock(&s->lock);
		if (!left)
			break;
		nanosleep(&ts, NULL);
	}
	if (s->started)
		s->stopped = 1;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	session_stop(s);
	pthread_mutex_destroy(&s->lock);
	proc_events_close(s->ev_fd);
	py_find_cache_free(s->elf_cache);
	free(s->members);
	free(s->events);
	free(s->tree);
	free(s);
}
