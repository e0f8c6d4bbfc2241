/* session.c - one sampler thread per process, a watcher for the tree. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyspyc/clock.h"
#include "pyspyc/sampler.h"
#include "pyspyc/session.h"

#define MAX_LIVE 256          /* processes sampled at once */
#define MAX_TREE 4096         /* descendants looked at per scan */
#define MAX_SKIP 1024         /* non-Python processes remembered */
#define SCAN_NS 200000000LL   /* the tree is scanned five times a second */
#define RETRY_MAX 10          /* looks at a process that is not Python yet */

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
	int root_gone;
	struct skip skips[MAX_SKIP];
	uint32_t nskips;

	pthread_t watcher;
	int watching, started, stopped;
	struct proc_ident *tree;  /* watcher scratch */
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
}

static struct skip *skip_for(struct session *s, const struct proc_ident *id);

/* id exec'd another program: sample it if it is Python.  With
 * subprocesses, one that is not Python yet is left to the watcher, which
 * looks at it again a few times.  Lock held. */
static void follow_exec(struct session *s, const struct proc_ident *id)
{
	struct py_target *t = malloc(sizeof(*t));
	struct skip *sk;

	s->execs++;
	if (t && !py_target_find(t, id->pid, s->o.find_flags) &&
	    !start_proc(s, t, id->start)) {
		s->seen--; /* the same process */
		free(t);
		return;
	}
	free(t);
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
		if (st.target_exec && !s->stop)
			execd[nexecd++] = pr->id;
		else if (pr->id.pid == s->root.pid && pr->id.start == s->root.start)
			s->root_gone = 1;
		sampler_free(pr->smp);
		free(pr);
		s->live[i] = s->live[--s->nlive];
	}
	for (i = 0; i < nexecd; i++)
		follow_exec(s, &execd[i]);
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

/* One look at the tree: start samplers for Python processes not yet
 * sampled. */
static void scan(struct session *s)
{
	struct py_target *t;
	int n, k, state = 0;
	pid_t ppid;
	uint64_t start;
	int64_t now = mono_ns();

	if (proc_stat_ids(s->root.pid, &ppid, &start, &state) ||
	    start != s->root.start || state == 'Z') {
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
	t = malloc(sizeof(*t));
	if (!t)
		return;
	for (k = 0; k < n && !s->stop; k++) {
		struct skip *sk;
		int err, live;

		pthread_mutex_lock(&s->lock);
		live = is_live(s, &s->tree[k]);
		sk = live ? NULL : skip_for(s, &s->tree[k]);
		pthread_mutex_unlock(&s->lock);
		if (live || !sk || sk->tries >= RETRY_MAX || now < sk->next_ns)
			continue;
		err = py_target_find(t, s->tree[k].pid, s->o.find_flags);
		pthread_mutex_lock(&s->lock);
		if (!err)
			err = start_proc(s, t, s->tree[k].start);
		if (err) {
			/* Not Python (yet), or not one we support: look again a
			 * little later, a few times, in case it execs Python. */
			sk->tries = err == -EPROTONOSUPPORT ? RETRY_MAX : sk->tries + 1;
			sk->next_ns = now + SCAN_NS * sk->tries;
		} else {
			sk->tries = RETRY_MAX; /* sampled: the entry is spent */
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->lock);
	prune_skips(s, s->tree, n);
	pthread_mutex_unlock(&s->lock);
	free(t);
}

static void *watcher_main(void *arg)
{
	struct session *s = arg;
	int64_t next = mono_ns();

	while (!s->stop && !(s->end_ns && mono_ns() >= s->end_ns)) {
		pthread_mutex_lock(&s->lock);
		reap(s);
		pthread_mutex_unlock(&s->lock);
		scan(s);
		next += SCAN_NS;
		/* Short naps, so a stop is seen quickly. */
		while (!s->stop && mono_ns() < next) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		if (mono_ns() > next + SCAN_NS)
			next = mono_ns();
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
		if (!s->tree)
			return -ENOMEM;
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
	free(s->tree);
	free(s);
}
