/* session.c - one sampling thread for every process, the tree watched from
 * the same loop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "pyspyc/clock.h"
#include "pyspyc/proc.h"
#include "pyspyc/proc_events.h"
#include "pyspyc/sampler.h"
#include "pyspyc/runwatch.h"
#include "pyspyc/session.h"
#include "pyspyc/backend_bpf.h"

#define TREE_FIRST 256        /* descendants room at first; grows */
#define TREE_MAX (1u << 22)   /* above any pid_max: never a real bound */
#define SCAN_NS 100000000LL   /* without process events, the tree is walked
			       * ten times a second... */
#define WALK_NS 10000000000LL /* ...with them, every 10 s: events lost to a
			       * full socket are told (ENOBUFS: walked at
			       * once), and this finds those the kernel
			       * could not send (no memory) */
#define WAIT_MAX_NS 100000000LL /* the engine sees a stop this quickly */
#define WAIT_POLL_NS 20000000LL /* session_wait with no eventfd looks this often */
#define WAIT_CLOCK_NS 1000000LL /* ...and this often until the engine has started */
/* Looks at a process that is not Python yet: after 2, 4 and 8 ms, then
 * every 16 ms for a second (an interpreter starting up), then five times a
 * second for 6 s more (a program that starts Python later). */
#define RETRY_NS 2000000LL
#define RETRY_FAST 60
#define RETRY_MAX 90
#define MEMBER_FIRST 1024     /* the tree's pids, hashed; grows */
#define MAX_EVENTS 256        /* process events taken per read */
#define EPOLL_BATCH 64
#define EV_GAP_NS 5000000LL   /* process events wake the engine this seldom */
#define TELL_NS 100000000LL   /* skipped ticks are counted at least this often */
/* With a push backend (the eBPF one) the engine wakes this often, not at
 * the rate: the kernel took the samples, the engine drains them. */
#define DRAIN_NS 20000000LL
/* ...and this often while, within CHURN_HOLD_NS, stacks were lost as torn
 * because a code object they ran was gone when it was named (code_gone):
 * code made, run and dropped within a period (compiled templates, exec'd
 * code) is freed before the turn that would name it.  Named within a few
 * ms, nearly all of them are.  Other torn stacks (read as a frame was
 * being pushed or popped: the eBPF program's records flag them, or their
 * frames say so) are torn however soon they are drained, and do not
 * quicken the drains: a server that tears one stack in a thousand would
 * otherwise pay 500 wake-ups a second for a second after each. */
#define CHURN_DRAIN_NS 2000000LL
#define CHURN_HOLD_NS 1000000000LL
/* ...and this seldom when no process was begun within QUIET_AFTER_NS and
 * none is within CHURN_HOLD_NS of a loss: a server in its steady state, or
 * a host of sleepers, costs the engine 10 wake-ups a second, not 50.  A
 * code object seen for the first time is then named at most this late.  A server's code lives
 * as long as the server, and its rarely run functions keep turning up for
 * the first time for minutes: naming one late loses nothing.  Code made
 * and freed within the wait (exec'd, compiled per request) is found freed
 * at its naming, its stack torn, and the drains are CHURN_DRAIN_NS at once,
 * for CHURN_HOLD_NS after the last such loss.  A thread the program could
 * not look up itself (backend_bpf.c, LIST_SOON_NS) is found by a walk of
 * the list at most this late; the program wakes the engine at once when
 * the ring is a quarter full (PB_RING_WAKE_BYTES). */
#define QUIET_DRAIN_NS 100000000LL
#define QUIET_AFTER_NS 1000000000LL

/* live[i]'s quiet verdict as of its last tick (sampler_quiet): until is
 * INT64_MIN when it may not be skipped.  told: the session's ticks (by
 * their number, s->ticks) that it has counted, by taking them or by being
 * told of those skipped (tell_skips). */
struct live_quiet {
	int64_t until;
	uint64_t told;
	uint32_t slot;
};

struct proc_run {
	struct proc_ident id;
	struct stacktab *tab;     /* its samples' table (given mode: per process) */
	struct py_target t;
	struct sampler *smp;
	struct sampler_stats st;  /* published live by the sampler */
	int begun;                /* sampler_begin ran (on the engine) */
};

/* A descendant that is not (yet) Python: looked at again a few times (a
 * fork that will exec python, an interpreter still starting), then left. */
struct skip {
	struct proc_ident id;
	int tries;
	int unread;             /* counted in procs_unread already */
	int64_t next_ns;
};

struct tab_done {
	struct stacktab *tab;
	struct sampler_stats done;
};

struct session {
	struct session_opts o;
	struct stacktab *tab;
	struct proc_ident root;
	/* The run's clock starts at the engine's first tick, not before the
	 * target was set up (-d is time sampled): the engine sets start_ns
	 * and end_ns, then clocked (atomic), before which the other threads
	 * read neither. */
	int64_t start_ns, end_ns, stop_ns;
	int clocked;
	int stop;                 /* atomic: session_stop asks the engine to end */
	int finished;             /* atomic: the engine has ended */
	int done_fd;              /* eventfd the engine signals as it ends, or -1 */

	/* The engine thread is the only one that changes these; it does so
	 * with the lock held, and session_stats reads them with it held. */
	pthread_mutex_t lock;
	struct proc_run **live;
	uint32_t nlive, live_cap;
	/* Beside live[i], the engine's own (no lock): whether and until when
	 * the process may be skipped at a tick (tick_all).  Kept apart so a
	 * tick at which most processes sleep reads this array, not their
	 * samplers. */
	struct live_quiet *lq;
	struct sampler_stats done; /* summed over finished samplers */
	uint32_t seen;
	uint32_t execs;           /* processes that exec'd another program */
	uint32_t execs_lost;      /* ...that was not Python: left unsampled */
	uint32_t reinits;         /* interpreters finalized and started anew */
	uint32_t procs_left_out;  /* Python processes past max_processes */
	uint32_t procs_unread;    /* Python processes the backend cannot read */
	int root_gone;            /* the root is not sampled any more */
	int root_exited;          /* ...because it exited */
	int root_exiting;         /* its exit event came: walk often */
	struct runwatch *rw;      /* the asleep test's watch, or NULL */

	/* The engine's own (before it starts, session_start's). */
	pthread_t engine;
	int running, started, stopped;
	int epfd;                 /* the processes' handles, the events socket */
	struct skip *skips;
	uint32_t nskips, skips_cap;
	struct proc_ident *tree;  /* scratch of a walk of the tree */
	size_t tree_cap;
	/* Given mode: the set session_give set last (under give_lock), its
	 * generation, and the one the engine took. */
	pthread_mutex_t give_lock;
	struct proc_ident *given;
	struct stacktab **given_tabs; /* beside given; NULL: every one s->tab */
	size_t ngiven;
	uint64_t given_gen, given_taken;
	/* The set taken last (the engine's): its ids are in tree[0..ntaken),
	 * their tables in taken_tabs. */
	struct stacktab **taken_tabs;
	size_t ntaken, taken_cap;
	/* Counters of finished processes by table (session_stats_table). */
	struct tab_done *tab_done;
	uint32_t ntab_done, tab_done_cap;
	/* The process events socket (-1: none, the tree is walked SCAN_NS
	 * apart), and the pids of the tree as last walked plus those forked
	 * in it since (0: free, -1: removed), open addressed. */
	int ev_fd;
	/* The socket wakes the engine at most once per EV_GAP_NS: it is in
	 * the epoll set one-shot, armed again (ev_rearm_at) that long after
	 * it was drained.  Every fork, exec and exit on the host is an event;
	 * a host that starts processes all the time would otherwise wake the
	 * engine for each. */
	int ev_armed;
	int64_t ev_rearm_at;
	/* The last turn at which a process lost a stack to a code object gone
	 * before it was named (code_gone): drains every CHURN_DRAIN_NS within
	 * CHURN_HOLD_NS of it. */
	int64_t gone_at;
	/* The last turn at which a process was begun (QUIET_DRAIN_NS, with
	 * gone_at); ring_woke: the ring said it fills up (its fd in the epoll
	 * set, edge-triggered, at &ring_tag). */
	int64_t begun_at;
	int ring_woke;
	char ring_tag;
	pid_t *members;
	uint32_t member_slots, members_used;
	struct proc_ev *events;
	struct py_find_cache *elf_cache; /* each binary read once */
	int64_t next_walk, walk_every, next_due;
	/* Quiet ticks (tick_all): at the last one taken, every process was
	 * asleep and said until when that holds (quiet_until) unless the
	 * watch stirs from stir_seen.  A process added clears quiet
	 * (add_live).  ticks: tick_all's calls so far, taken or skipped, the
	 * last at tick_ns. */
	int quiet;
	int64_t quiet_until, tick_ns, tell_at;
	uint64_t stir_seen, ticks;
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
	if (!s->o.max_processes)
		s->o.max_processes = UINT32_MAX;
	s->tab = tab;
	s->ev_fd = -1;
	s->epfd = -1;
	s->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (py_find_cache_new(&s->elf_cache)) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->give_lock, NULL);
	/* Without it (not root, an older kernel, another PID namespace)
	 * the asleep test reads clocks: nothing else changes. */
	if (runwatch_open(&s->rw))
		s->rw = NULL;
	*out = s;
	return 0;
}

/* The engine takes no signals: the caller's thread does. */
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

static int stopping(const struct session *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* Has the engine set the run's start and end (start_ns, end_ns)? */
static int clocked(const struct session *s)
{
	return __atomic_load_n(&s->clocked, __ATOMIC_ACQUIRE);
}

static struct tab_done *done_of(struct session *s, struct stacktab *tab);

/* The table the process (pid, start) counts into: its own in the set
 * given last, else the session's. */
static struct stacktab *table_of(const struct session *s, pid_t pid, uint64_t start)
{
	size_t k;

	for (k = 0; s->taken_tabs && k < s->ntaken; k++)
		if (s->tree[k].pid == pid && s->tree[k].start == start)
			return s->taken_tabs[k];
	return s->tab;
}

/* Start sampling a found target: it is ticked from the engine's next
 * deadline on.  -EDQUOT: max_processes are sampled already (counted);
 * -ENOTSUP: the backend cannot read it (a layout whose fields lie past what
 * the eBPF program reads of a frame or code object: the caller counts it,
 * note_unread). */
static int start_proc(struct session *s, const struct py_target *t, uint64_t start)
{
	struct sampler_opts so = {
		.idle = s->o.idle,
		.gil = s->o.gil,
		.threads = s->o.threads,
		.blocking = s->o.blocking,
		.process_root = s->o.subprocesses || s->o.process_root,
		.backend = s->o.backend,
		.walk = s->o.walk,
		.sym = s->o.sym,
		.rw = s->rw,
	};
	struct epoll_event ev = { .events = EPOLLIN };
	struct proc_run *pr;
	uint64_t now_start;
	pid_t ppid;
	int err, fd;

	if (s->nlive >= s->o.max_processes) {
		pthread_mutex_lock(&s->lock);
		s->procs_left_out++;
		pthread_mutex_unlock(&s->lock);
		return -EDQUOT;
	}
	if (s->nlive == s->live_cap) {
		uint32_t cap = s->live_cap ? 2 * s->live_cap : 16;
		struct proc_run **grown;
		struct live_quiet *lq = realloc(s->lq, cap * sizeof(*lq));

		if (!lq)
			return -ENOMEM;
		s->lq = lq;
		pthread_mutex_lock(&s->lock);
		grown = realloc(s->live, cap * sizeof(*grown));
		if (grown) {
			s->live = grown;
			s->live_cap = cap;
		}
		pthread_mutex_unlock(&s->lock);
		if (!grown)
			return -ENOMEM;
	}
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->t = *t;
	pr->t.layout = &pr->t.layout_buf; /* it pointed into the caller's copy */
	pr->id.pid = t->pid;
	pr->id.start = start;
	pr->tab = table_of(s, t->pid, start);
	err = sampler_new(&pr->smp, &pr->t, pr->tab, &so);
	if (err)
		goto out_free;
	/* The sampler holds the process now: make sure it holds the one that
	 * was found, not a later one that took its pid in between. */
	if (proc_stat_ids(t->pid, &ppid, &now_start, NULL) || now_start != start) {
		err = -ESRCH;
		goto out_sampler;
	}
	fd = sampler_handle(pr->smp);
	ev.data.ptr = pr;
	if (fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		goto out_sampler;
	}
	s->quiet = 0; /* its first tick is taken, not skipped */
	/* The ticks so far were not its: it starts at the next. */
	s->lq[s->nlive] = (struct live_quiet){ .until = INT64_MIN, .told = s->ticks };
	pthread_mutex_lock(&s->lock);
	s->live[s->nlive++] = pr;
	s->seen++;
	done_of(s, pr->tab); /* its entry made now: finish_proc may not fail */
	pthread_mutex_unlock(&s->lock);
	return 0;

out_sampler:
	sampler_free(pr->smp);
out_free:
	free(pr);
	return err;
}

/* Fold x into sum as counters.h says; live: x is of a process sampled now. */
static void add_stats(struct sampler_stats *sum, const struct sampler_stats *x, int live)
{
#define FOLD_ONE(name, merge, desc) merge##_FOLD(sum->name, x->name, live);
	SAMPLER_COUNTERS(FOLD_ONE)
#undef FOLD_ONE
}

/* The finished processes' counters of table tab (lock held); NULL without
 * memory for a new entry (only s->tab's then: it has the session's). */
static struct tab_done *done_of(struct session *s, struct stacktab *tab)
{
	uint32_t i;

	for (i = 0; i < s->ntab_done; i++)
		if (s->tab_done[i].tab == tab)
			return &s->tab_done[i];
	if (s->ntab_done == s->tab_done_cap) {
		uint32_t cap = s->tab_done_cap ? 2 * s->tab_done_cap : 4;
		struct tab_done *grown = realloc(s->tab_done, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		s->tab_done = grown;
		s->tab_done_cap = cap;
	}
	s->tab_done[s->ntab_done] = (struct tab_done){ .tab = tab };
	return &s->tab_done[s->ntab_done++];
}

static struct skip *skip_for(struct session *s, const struct proc_ident *id);

/* start_proc said the backend cannot read the process of sk (NULL: none
 * kept): counted once, however often its events make it a candidate. */
static void note_unread(struct session *s, struct skip *sk)
{
	if (sk) {
		sk->tries = RETRY_MAX;
		if (sk->unread)
			return;
		sk->unread = 1;
	}
	pthread_mutex_lock(&s->lock);
	s->procs_unread++;
	pthread_mutex_unlock(&s->lock);
}

/* id exec'd another program: sample it if it is Python.  With
 * subprocesses, one that is not Python yet is left to the watcher, which
 * looks at it again a few times. */
static void follow_exec(struct session *s, const struct proc_ident *id, int reinit)
{
	struct py_target *t = malloc(sizeof(*t));
	struct skip *sk;
	int ok, err = -ENOEXEC;

	if (t && !py_target_find_cached(t, id->pid, s->o.find_flags, s->elf_cache))
		err = start_proc(s, t, id->start);
	ok = !err;
	free(t);
	pthread_mutex_lock(&s->lock);
	if (reinit)
		s->reinits++;
	else
		s->execs++;
	if (ok)
		s->seen--; /* the same process */
	pthread_mutex_unlock(&s->lock);
	if (ok || reinit)
		return; /* reinit and not found: gone again already */
	if ((s->o.subprocesses || s->o.given) && (sk = skip_for(s, id))) {
		*sk = (struct skip){ .id = *id };
		if (err == -ENOTSUP)
			note_unread(s, sk);
	} else {
		if (err == -ENOTSUP)
			note_unread(s, NULL);
		pthread_mutex_lock(&s->lock);
		s->execs_lost++;
		pthread_mutex_unlock(&s->lock);
	}
}

/* Tell live[i] of the ticks skipped for it (tick_all), whole or for it
 * alone, up to tick number upto, the last of them at deadline last. */
static void tell_skips(struct session *s, uint32_t i, uint64_t upto, int64_t last)
{
	struct live_quiet *q = &s->lq[i];

	if (upto > q->told) {
		sampler_skipped(s->live[i]->smp, upto - q->told, last, &s->live[i]->st);
		q->told = upto;
	}
}

/* live[i] is done (gone: its handle said it exited): fold its counters in,
 * drop it, and follow it when it exec'd.  live[i] is then another one. */
static void finish_proc(struct session *s, uint32_t i, int gone)
{
	struct proc_run *pr = s->live[i];
	struct sampler_stats st;
	struct tab_done *td;
	int fd = sampler_handle(pr->smp), follow, reinit;

	if (pr->begun) {
		tell_skips(s, i, s->ticks, s->tick_ns);
		/* Its last samples, in the ring still, to its queue first:
		 * sampler_end counts them. */
		if (s->o.walk.hub)
			bpf_hub_drain(s->o.walk.hub);
		sampler_end(pr->smp, gone, &pr->st);
	} else if (gone)
		__atomic_store_n(&pr->st.target_gone, 1, __ATOMIC_RELAXED);
	if (fd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	sampler_stats_read(&pr->st, &st);
	follow = (st.target_exec || st.target_reinit) && !stopping(s);
	reinit = !st.target_exec;
	pthread_mutex_lock(&s->lock);
	add_stats(&s->done, &st, 0);
	if ((td = done_of(s, pr->tab)))
		add_stats(&td->done, &st, 0);
	s->live[i] = s->live[--s->nlive];
	s->lq[i] = s->lq[s->nlive];
	if (!follow && pr->id.pid == s->root.pid && pr->id.start == s->root.start) {
		s->root_gone = 1; /* no more to sample of it */
		s->root_exited |= gone || st.target_gone;
	}
	pthread_mutex_unlock(&s->lock);
	if (follow)
		follow_exec(s, &pr->id, reinit);
	sampler_free(pr->smp);
	free(pr);
}

static int is_live(const struct session *s, const struct proc_ident *id)
{
	uint32_t i;

	for (i = 0; i < s->nlive; i++)
		if (s->live[i]->id.pid == id->pid && s->live[i]->id.start == id->start)
			return 1;
	return 0;
}

/* The skip entry for id, a fresh one, or NULL without memory for it. */
static struct skip *skip_for(struct session *s, const struct proc_ident *id)
{
	uint32_t i;

	for (i = 0; i < s->nskips; i++)
		if (s->skips[i].id.pid == id->pid)
			break;
	if (i == s->nskips) {
		if (s->nskips == s->skips_cap) {
			uint32_t cap = s->skips_cap ? 2 * s->skips_cap : 64;
			struct skip *grown = realloc(s->skips, cap * sizeof(*grown));

			if (!grown)
				return NULL;
			s->skips = grown;
			s->skips_cap = cap;
		}
		s->nskips++;
	} else if (s->skips[i].id.start == id->start) {
		return &s->skips[i];
	}
	/* New, or a reused pid: start over. */
	s->skips[i] = (struct skip){ .id = *id };
	return &s->skips[i];
}

/* Forget skip entries whose process is gone. */
static void prune_skips(struct session *s, const struct proc_ident *tree, size_t n)
{
	uint32_t i = 0;
	size_t k;

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

/* ---- the tree's pids, an open-addressed set that grows ---- */

static uint32_t member_slot(const struct session *s, pid_t pid, int for_insert)
{
	uint32_t mask = s->member_slots - 1, h = ((uint32_t)pid * 2654435761u) & mask, i;

	for (i = 0; i < s->member_slots; i++, h = (h + 1) & mask) {
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

/* An empty set of room for at least 2 * n pids; 0 or -ENOMEM (the old one
 * is kept). */
static int members_reset(struct session *s, size_t n)
{
	uint32_t slots = MEMBER_FIRST;
	pid_t *m;

	while (slots < 2 * n && slots < (1u << 30))
		slots *= 2;
	if (slots != s->member_slots) {
		m = calloc(slots, sizeof(*m));
		if (!m)
			return -ENOMEM;
		free(s->members);
		s->members = m;
		s->member_slots = slots;
	} else {
		memset(s->members, 0, slots * sizeof(*s->members));
	}
	s->members_used = 0;
	return 0;
}

static void member_add(struct session *s, pid_t pid)
{
	uint32_t h;

	if (is_member(s, pid))
		return;
	if (2 * (s->members_used + 1) > s->member_slots) {
		/* Half full: the same pids (removed ones left out) in twice
		 * the room. */
		pid_t *old = s->members;
		uint32_t i, n = s->member_slots;

		s->members = NULL;
		s->member_slots = 0;
		if (members_reset(s, n)) {
			s->members = old;
			s->member_slots = n;
			if (s->members_used + 1 >= n)
				return; /* full and no memory: the next walk adds it */
		} else {
			for (i = 0; i < n; i++)
				if (old[i] > 0) {
					s->members[member_slot(s, old[i], 1)] = old[i];
					s->members_used++;
				}
			free(old);
		}
	}
	h = member_slot(s, pid, 1);
	if (h == UINT32_MAX)
		return;
	if (s->members[h] == 0)
		s->members_used++;
	s->members[h] = pid;
}

static void member_del(struct session *s, pid_t pid)
{
	uint32_t h = member_slot(s, pid, 0);

	if (h != UINT32_MAX && s->members[h] == pid)
		s->members[h] = -1;
}

/* A process to look at soon: a new one, or one that ran exec. */
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
	int n, state = 0;
	size_t k;
	pid_t ppid;
	uint64_t start;

	if (proc_stat_ids(s->root.pid, &ppid, &start, &state) ||
	    start != s->root.start ||
	    ((state == 'Z' || state == 'X') && proc_live_task(s->root.pid) < 0)) {
		pthread_mutex_lock(&s->lock);
		s->root_gone = 1;
		s->root_exited = 1;
		pthread_mutex_unlock(&s->lock);
	}
	/* The root is a candidate too: a launched command becomes Python
	 * only after it has started.  The room grows until the tree fits. */
	for (;;) {
		struct proc_ident *grown;

		s->tree[0] = s->root;
		n = proc_descendants(s->root.pid, s->tree + 1, s->tree_cap - 1);
		if (n < 0)
			return;
		if ((size_t)n < s->tree_cap - 1 || s->tree_cap >= TREE_MAX)
			break;
		grown = realloc(s->tree, 2 * s->tree_cap * sizeof(*grown));
		if (!grown)
			break;
		s->tree = grown;
		s->tree_cap *= 2;
	}
	n++;
	if (members_reset(s, (size_t)n))
		memset(s->members, 0, s->member_slots * sizeof(*s->members));
	for (k = 0; k < (size_t)n; k++) {
		member_add(s, s->tree[k].pid);
		if (!is_live(s, &s->tree[k]))
			skip_for(s, &s->tree[k]); /* a new entry is due now */
	}
	prune_skips(s, s->tree, (size_t)n);
}

/* Take the process events: a fork in the tree adds the child to it and
 * makes it a candidate; an exec in it makes the process one again.
 * Returns 1 when the tree must be walked again: events were lost, or the
 * root exited (walked then every SCAN_NS until it is gone: its exit is
 * told before it is a zombie). */
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
				else
					lost = s->root_exiting = 1;
				continue;
			}
			if (ev->kind == PROC_EV_FORK ? !is_member(s, ev->ppid) :
			    !is_member(s, ev->pid))
				continue;
			member_add(s, ev->pid);
			if (proc_stat_ids(id.pid, &id.ppid, &id.start, &state) || state == 'Z')
				continue; /* gone already */
			candidate(s, &id, mono_ns() + RETRY_NS);
		}
	} while ((err > 0 || err == -ENOBUFS) && n >= MAX_EVENTS - 8 && !stopping(s));
	return lost;
}

/* Look at every candidate that is due: start sampling each that is Python
 * now; look again later at one that is not (yet).  Finding an interpreter
 * reads the process's maps and perhaps a binary, so after the first one
 * this stops at deadline (the next tick) and says it has more to do.
 * Returns when the next one is due (INT64_MAX: none). */
static int64_t try_candidates(struct session *s, int64_t deadline)
{
	struct py_target *t = malloc(sizeof(*t));
	int64_t next = INT64_MAX;
	uint32_t i;
	int looked = 0;

	if (!t)
		return mono_ns() + SCAN_NS;
	for (i = 0; i < s->nskips && !stopping(s); i++) {
		struct proc_ident id;
		struct skip *sk = &s->skips[i];
		int64_t now = mono_ns(), wait;
		int err;

		if (sk->tries >= RETRY_MAX || is_live(s, &sk->id)) {
			sk->tries = RETRY_MAX;
			continue;
		}
		if (now < sk->next_ns) {
			if (sk->next_ns < next)
				next = sk->next_ns;
			continue;
		}
		if (looked && now >= deadline) {
			next = now; /* more after the tick */
			break;
		}
		looked = 1;
		id = sk->id;
		err = py_target_find_cached(t, id.pid, s->o.find_flags, s->elf_cache);
		if (!err)
			err = start_proc(s, t, id.start);
		sk = &s->skips[i];
		if (err == -ENOTSUP) {
			note_unread(s, sk);
		} else if (err && err != -EDQUOT) {
			/* Not Python (yet), or not one we support: look again a
			 * little later, and later, in case it execs Python. */
			sk->tries = err == -EPROTONOSUPPORT || err == -ESRCH ?
				RETRY_MAX : sk->tries + 1;
			wait = sk->tries < 3 ? RETRY_NS << sk->tries :
			       sk->tries < RETRY_FAST ? 8 * RETRY_NS : SCAN_NS * 2;
			sk->next_ns = mono_ns() + wait;
			if (sk->tries < RETRY_MAX && sk->next_ns < next)
				next = sk->next_ns;
		} else {
			/* Sampled, or counted as left out: the entry is spent. */
			sk->tries = RETRY_MAX;
		}
	}
	free(t);
	return next;
}

/* Given mode: take the set session_give set last, when it is new: a
 * process in it not sampled yet is a candidate at once, a sampled one not
 * in it is finished, and candidates not in it are forgotten. */
static void take_given(struct session *s)
{
	uint64_t gen = __atomic_load_n(&s->given_gen, __ATOMIC_ACQUIRE);
	size_t n, k;
	uint32_t i;

	if (gen == s->given_taken)
		return;
	pthread_mutex_lock(&s->give_lock);
	gen = s->given_gen;
	n = s->ngiven;
	if (n > s->tree_cap) {
		struct proc_ident *grown = realloc(s->tree, n * sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&s->give_lock);
			return; /* taken at the next look */
		}
		s->tree = grown;
		s->tree_cap = n;
	}
	if (n > s->taken_cap || !s->taken_tabs) {
		struct stacktab **tabs = realloc(s->taken_tabs, (n ? n : 1) * sizeof(*tabs));

		if (!tabs) {
			pthread_mutex_unlock(&s->give_lock);
			return;
		}
		s->taken_tabs = tabs;
		s->taken_cap = n;
	}
	if (n)
		memcpy(s->tree, s->given, n * sizeof(*s->tree));
	for (k = 0; k < n; k++)
		s->taken_tabs[k] = s->given_tabs && s->given_tabs[k] ? s->given_tabs[k] : s->tab;
	s->ntaken = n;
	pthread_mutex_unlock(&s->give_lock);
	/* A process left out, or given with another table, is finished (its
	 * counts flushed into its table); one given anew starts. */
	for (i = 0; i < s->nlive;) {
		for (k = 0; k < n; k++)
			if (s->tree[k].pid == s->live[i]->id.pid &&
			    s->tree[k].start == s->live[i]->id.start &&
			    s->taken_tabs[k] == s->live[i]->tab)
				break;
		if (k == n)
			finish_proc(s, i, 0); /* live[i] is another one now */
		else
			i++;
	}
	for (k = 0; k < n; k++)
		if (!is_live(s, &s->tree[k]))
			skip_for(s, &s->tree[k]); /* a new entry is due now */
	prune_skips(s, s->tree, n);
	s->next_due = 0;
	/* session_sync: no process of a table left out writes to it now. */
	__atomic_store_n(&s->given_taken, gen, __ATOMIC_RELEASE);
}

/* The tree's work that is due, until deadline (the next tick). */
static void watch(struct session *s, int64_t deadline)
{
	if (s->o.given) {
		take_given(s);
		s->next_due = try_candidates(s, deadline);
		return;
	}
	if (mono_ns() >= s->next_walk) {
		walk(s);
		s->next_walk = mono_ns() + (s->root_exiting ? SCAN_NS : s->walk_every);
	}
	s->next_due = try_candidates(s, deadline);
}

/* Sample every live process at deadline now.  With the runwatch, a
 * process that the last tick found asleep (sampler_quiet) and that has had
 * no event since (runwatch_take_moved), with nothing due, is skipped at
 * this tick; and a tick at which that holds for every process is skipped
 * whole, on one load (the watch has not stirred since the last tick).
 * Each sampler counts the ticks it missed so at its next tick or its end
 * (tell_skips), as it would have counted them one by one, and every
 * TELL_NS meanwhile, so that what session_stats says (top's shares,
 * record's progress) is never further behind.  A host of sleeping workers
 * costs a memory load a tick then, whatever their number; one where a few
 * of many workers run, a byte and this array's entry for each sleeper. */
static void tick_all(struct session *s, int64_t now)
{
	uint64_t stir = 0, t = s->ticks + 1, gone;
	uint32_t i = 0;
	int64_t until = INT64_MAX, before = s->tick_ns;
	int quiet = s->rw != NULL && s->nlive > 0, tell = now >= s->tell_at;

	__atomic_store_n(&s->ticks, t, __ATOMIC_RELAXED); /* session_stats reads it */
	s->tick_ns = now;
	if (s->o.walk.hub)
		bpf_hub_drain(s->o.walk.hub);
	if (tell)
		s->tell_at = now + TELL_NS;
	if (quiet) {
		stir = runwatch_stir(s->rw); /* before any process is looked at */
		if (s->quiet && stir == s->stir_seen && now < s->quiet_until) {
			for (i = 0; tell && i < s->nlive; i++)
				tell_skips(s, i, t, now);
			return;
		}
	}
	s->quiet = 1; /* until a process is added (add_live) */
	while (i < s->nlive) {
		struct proc_run *pr = s->live[i];
		struct live_quiet *q = &s->lq[i];

		/* Asleep at its last tick, due for nothing, and no event of it
		 * since (the mark is taken after the stir was read: an event
		 * after that is seen at the next tick). */
		if (now < q->until && !runwatch_take_moved(s->rw, q->slot)) {
			if (tell)
				tell_skips(s, i, t, now);
			if (q->until < until)
				until = q->until;
			i++;
			continue;
		}
		if (!pr->begun) {
			if (sampler_begin(pr->smp, now, &pr->st)) {
				finish_proc(s, i, 0);
				continue;
			}
			pr->begun = 1;
			s->begun_at = now;
		}
		tell_skips(s, i, t - 1, before);
		q->told = t; /* this one it takes */
		gone = pr->st.code_gone;
		if (sampler_tick(pr->smp, now, &pr->st)) {
			finish_proc(s, i, 0);
			continue; /* live[i] is another one now */
		}
		if (pr->st.code_gone != gone)
			s->gone_at = now;
		if (!s->rw || !sampler_quiet(pr->smp, &q->until, &q->slot)) {
			q->until = INT64_MIN;
			quiet = 0;
		} else if (q->until < until) {
			until = q->until;
		}
		i++;
	}
	s->quiet = s->quiet && quiet;
	s->quiet_until = until;
	s->stir_seen = stir;
}

/* Put the events socket back in the wait: it wakes the engine at once if
 * events came meanwhile.  A failure leaves it out; the tree walk, made
 * more often then, finds what it would have told. */
static void arm_events(struct session *s)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = NULL };

	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->ev_fd, &ev)) {
		proc_events_close(s->ev_fd);
		s->ev_fd = -1;
		s->walk_every = SCAN_NS;
		return;
	}
	s->ev_armed = 1;
}

/* Wait until `until` for the handles and the events socket; a process
 * that exited is finished at once. */
static void wait_events(struct session *s, int64_t until)
{
	struct epoll_event evs[EPOLL_BATCH];
	int64_t wait = until - mono_ns();
	struct timespec ts;
	int n, k;

	if (wait < 0)
		wait = 0;
	ts.tv_sec = wait / 1000000000;
	ts.tv_nsec = wait % 1000000000;
	n = epoll_pwait2(s->epfd, evs, EPOLL_BATCH, &ts, NULL);
	if (n < 0 && errno == ENOSYS) {
		/* Before 5.11: sleep to the deadline, then take what came. */
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		n = epoll_wait(s->epfd, evs, EPOLL_BATCH, 0);
	}
	for (k = 0; k < n; k++) {
		struct proc_run *pr = evs[k].data.ptr;
		uint32_t i;

		if ((void *)pr == &s->ring_tag) {
			s->ring_woke = 1;
			continue;
		}
		if (!pr) {
			if (take_events(s))
				s->next_walk = 0;
			s->next_due = mono_ns();
			s->ev_armed = 0; /* one-shot: armed again EV_GAP_NS on */
			s->ev_rearm_at = s->next_due + EV_GAP_NS;
			continue;
		}
		for (i = 0; i < s->nlive; i++)
			if (s->live[i] == pr) {
				finish_proc(s, i, 1);
				break;
			}
	}
}

static int all_gone(struct session *s)
{
	return !s->o.given && s->nlive == 0 && (!s->o.subprocesses || s->root_gone);
}

/* The time to the next turn: the rate's period, or with a push backend
 * (period is DRAIN_NS at least) that, CHURN_DRAIN_NS or QUIET_DRAIN_NS. */
static int64_t drain_gap(const struct session *s, int64_t now, int64_t period)
{
	if (!s->o.walk.hub)
		return period;
	if (now - s->gone_at < CHURN_HOLD_NS)
		return CHURN_DRAIN_NS;
	if (now - s->begun_at < QUIET_AFTER_NS ||
	    period >= QUIET_DRAIN_NS)
		return period;
	return QUIET_DRAIN_NS;
}

static void *engine_main(void *arg)
{
	struct session *s = arg;
	int64_t period = (int64_t)(1e9 / s->o.rate_hz + 0.5);
	int64_t next, now;

	if (period < 1)
		period = 1;
	if (s->o.walk.hub && period < DRAIN_NS)
		period = DRAIN_NS;
	/* The default 50 us timer slack would smear every deadline. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	/* And a tick that falls while the target has this CPU is taken then,
	 * not once the target sleeps, at rates where that costs the target
	 * little, and with --blocking, whose pauses it keeps short
	 * (proc_sched.c). */
	(void)proc_sched_prompt(s->o.rate_hz, s->o.blocking);
	/* The run starts now: a slow set-up (a large binary read under a
	 * sanitizer) or a thread scheduled late takes none of -d. */
	next = s->start_ns = mono_ns();
	if (s->o.duration_s > 0)
		s->end_ns = s->start_ns + (int64_t)(s->o.duration_s * 1e9);
	__atomic_store_n(&s->clocked, 1, __ATOMIC_RELEASE);
	while (!stopping(s) && !all_gone(s)) {
		/* No tick at or past the end: the run waits for the end. */
		int more = !s->end_ns || next < s->end_ns;
		int64_t until;

		now = mono_ns();
		if (!more && now >= s->end_ns)
			break;
		if (s->ring_woke && !(more && now >= next)) {
			/* The ring fills up before the drain due (or, past the
			 * last turn, before the end): now. */
			s->ring_woke = 0;
			tick_all(s, now);
			if (more)
				next = now + drain_gap(s, now, period);
		} else if (more && now >= next) {
			s->ring_woke = 0;
			tick_all(s, now);
			next += drain_gap(s, now, period);
			now = mono_ns();
			if (now - next >= period) {
				/* Fell behind by whole ticks: skip them, do not
				 * bunch. */
				int64_t missed = (now - next) / period;
				uint32_t i;

				for (i = 0; i < s->nlive; i++)
					sampler_late(s->live[i]->smp, (uint64_t)missed,
						     &s->live[i]->st);
				next += missed * period;
			}
		}
		if (s->o.given && (now >= s->next_due ||
				   __atomic_load_n(&s->given_gen, __ATOMIC_ACQUIRE) != s->given_taken))
			watch(s, next);
		else if (s->o.subprocesses && (now >= s->next_walk || now >= s->next_due))
			watch(s, next);
		until = more ? next : s->end_ns;
		if (s->o.given && s->next_due < until)
			until = s->next_due;
		if (s->o.subprocesses) {
			if (s->next_due < until)
				until = s->next_due;
			if (s->next_walk < until)
				until = s->next_walk;
			if (s->ev_fd >= 0 && !s->ev_armed) {
				if (now >= s->ev_rearm_at)
					arm_events(s);
				else if (s->ev_rearm_at < until)
					until = s->ev_rearm_at;
			}
		}
		if (s->end_ns && until > s->end_ns)
			until = s->end_ns;
		if (until - mono_ns() > WAIT_MAX_NS)
			until = mono_ns() + WAIT_MAX_NS;
		wait_events(s, until);
	}
	/* What the kernel took since the last drain counts too. */
	if (s->o.walk.hub)
		tick_all(s, mono_ns());
	/* Detach here, on the thread that traced (--blocking). */
	while (s->nlive)
		finish_proc(s, s->nlive - 1, 0);
	__atomic_store_n(&s->finished, 1, __ATOMIC_RELEASE);
	if (s->done_fd >= 0) {
		uint64_t one = 1;
		/* Fails only when the counter is full: signalled already. */
		ssize_t n = write(s->done_fd, &one, sizeof(one));

		(void)n;
	}
	return NULL;
}

int session_start(struct session *s, pid_t root, const struct py_target *t)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	pid_t ppid;
	int err;

	if (s->started)
		return -EALREADY;
	if (s->o.given) {
		if (root || t)
			return -EINVAL;
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (s->epfd < 0)
			return -errno;
		s->next_due = INT64_MAX;
		goto spawn;
	}
	if (!t && !s->o.subprocesses)
		return -EINVAL;
	s->root.pid = root;
	err = proc_stat_ids(root, &ppid, &s->root.start, NULL);
	if (err)
		return err;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return -errno;
	if (s->o.subprocesses) {
		s->tree_cap = TREE_FIRST;
		s->tree = malloc(s->tree_cap * sizeof(*s->tree));
		s->events = malloc(MAX_EVENTS * sizeof(*s->events));
		if (!s->tree || !s->events || members_reset(s, 1))
			return -ENOMEM;
		/* Root only; else the tree is walked, more often. */
		s->ev_fd = proc_events_open();
		ev.events = EPOLLIN | EPOLLONESHOT;
		if (s->ev_fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ev_fd, &ev)) {
			proc_events_close(s->ev_fd);
			s->ev_fd = -1;
		}
		s->ev_armed = 1;
		s->walk_every = s->ev_fd >= 0 ? WALK_NS : SCAN_NS;
		s->next_due = INT64_MAX;
	}
	err = t ? start_proc(s, t, s->root.start) : 0;
	if (err)
		return err;
	if (t) {
		/* Sampled already: the watcher must not start it again. */
		struct skip *sk = skip_for(s, &s->root);

		if (sk)
			sk->tries = RETRY_MAX;
	}
spawn:
	if (s->o.walk.hub) {
		struct epoll_event rev = { .events = EPOLLIN | EPOLLET,
					   .data.ptr = &s->ring_tag };

		/* Without it the drains come on their timer alone. */
		(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, bpf_hub_ring_fd(s->o.walk.hub), &rev);
	}
	s->started = 1;
	err = spawn(&s->engine, engine_main, s);
	if (err) {
		while (s->nlive)
			finish_proc(s, s->nlive - 1, 0);
		s->stopped = 1;
		return err;
	}
	s->running = 1;
	return 0;
}

int session_give_tables(struct session *s, const struct proc_ident *ids,
			struct stacktab *const *tabs, size_t n)
{
	struct proc_ident *copy = NULL;
	struct stacktab **tcopy = NULL;

	if (n) {
		copy = malloc(n * sizeof(*copy));
		tcopy = tabs ? malloc(n * sizeof(*tcopy)) : NULL;
		if (!copy || (tabs && !tcopy)) {
			free(copy);
			free(tcopy);
			return -ENOMEM;
		}
		memcpy(copy, ids, n * sizeof(*copy));
		if (tabs)
			memcpy(tcopy, tabs, n * sizeof(*tcopy));
	}
	pthread_mutex_lock(&s->give_lock);
	free(s->given);
	free(s->given_tabs);
	s->given = copy;
	s->given_tabs = tcopy;
	s->ngiven = n;
	__atomic_store_n(&s->given_gen, s->given_gen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->give_lock);
	return 0;
}

int session_give(struct session *s, const struct proc_ident *ids, size_t n)
{
	return session_give_tables(s, ids, NULL, n);
}

int session_sync(struct session *s, int64_t timeout_ns)
{
	int64_t end = mono_ns() + timeout_ns;
	uint64_t gen;

	pthread_mutex_lock(&s->give_lock);
	gen = s->given_gen;
	pthread_mutex_unlock(&s->give_lock);
	while (__atomic_load_n(&s->given_taken, __ATOMIC_ACQUIRE) < gen) {
		if (!s->running || __atomic_load_n(&s->finished, __ATOMIC_ACQUIRE))
			return 0; /* no engine: nothing writes */
		if (mono_ns() >= end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	return 0;
}

int session_done(struct session *s)
{
	if (!s->started || s->stopped)
		return 1;
	if (clocked(s) && s->end_ns &&
	    mono_ns() >= s->end_ns)
		return 1;
	return __atomic_load_n(&s->finished, __ATOMIC_ACQUIRE);
}

void session_wait(struct session *s, int64_t until_ns, const sigset_t *mask)
{
	struct pollfd pfd = { .fd = s->done_fd, .events = POLLIN };
	struct timespec ts, *tp = NULL;
	int64_t now = mono_ns();

	if (session_done(s))
		return;
	if (!clocked(s)) {
		/* Not started yet: its end is not known. */
		if (!until_ns || until_ns > now + WAIT_CLOCK_NS)
			until_ns = now + WAIT_CLOCK_NS;
	} else if (s->end_ns && (!until_ns || s->end_ns < until_ns)) {
		until_ns = s->end_ns;
	}
	if (s->done_fd < 0 && (!until_ns || until_ns > now + WAIT_POLL_NS))
		until_ns = now + WAIT_POLL_NS;
	if (until_ns) {
		int64_t d = until_ns > now ? until_ns - now : 0;

		ts = (struct timespec){ d / 1000000000, d % 1000000000 };
		tp = &ts;
	}
	(void)ppoll(&pfd, s->done_fd >= 0 ? 1 : 0, tp, mask);
}

/* With the lock held: done, with the counters of every live process
 * (that counts into tab; NULL: all) folded in, into *sum; out->processes
 * counts them. */
static void sum_live(struct session *s, const struct stacktab *tab,
		     const struct sampler_stats *done, struct sampler_stats *sum,
		     struct session_stats *out)
{
	uint32_t i;

	*sum = *done;
	for (i = 0; i < s->nlive; i++) {
		struct sampler_stats st;

		if (tab && s->live[i]->tab != tab)
			continue;
		sampler_stats_read(&s->live[i]->st, &st);
		add_stats(sum, &st, 1);
		out->processes++;
	}
}

static void copy_counters(struct session_stats *out, const struct sampler_stats *sum)
{
#define COPY_ONE(name, merge, desc) out->name = sum->name;
	SAMPLER_COUNTERS(COPY_ONE)
#undef COPY_ONE
}

void session_stats(struct session *s, struct session_stats *out)
{
	struct sampler_stats sum;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	sum_live(s, NULL, &s->done, &sum, out);
	out->processes_seen = s->seen;
	out->execs = s->execs;
	out->execs_lost = s->execs_lost;
	out->reinits = s->reinits;
	out->processes_left_out = s->procs_left_out;
	out->processes_unread = s->procs_unread;
	out->runwatch = s->rw != NULL;
	out->root_exited = s->root_exited;
	pthread_mutex_unlock(&s->lock);
	out->engine_ticks = __atomic_load_n(&s->ticks, __ATOMIC_RELAXED);
	copy_counters(out, &sum);
	if (s->started && clocked(s)) {
		int64_t end = s->stop_ns ? s->stop_ns : mono_ns();

		if (s->end_ns && end > s->end_ns)
			end = s->end_ns;
		/* Stopped as it started: the stop may be the earlier. */
		out->elapsed_s = end > s->start_ns ? (double)(end - s->start_ns) / 1e9 : 0;
	}
}

void session_stats_table(struct session *s, const struct stacktab *tab,
			 struct session_stats *out)
{
	static const struct sampler_stats none;
	const struct sampler_stats *done = &none;
	struct sampler_stats sum;
	uint32_t i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->ntab_done; i++)
		if (s->tab_done[i].tab == tab)
			done = &s->tab_done[i].done;
	sum_live(s, tab, done, &sum, out);
	out->runwatch = s->rw != NULL;
	pthread_mutex_unlock(&s->lock);
	out->engine_ticks = __atomic_load_n(&s->ticks, __ATOMIC_RELAXED);
	copy_counters(out, &sum);
}

void session_forget_table(struct session *s, const struct stacktab *tab)
{
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->ntab_done; i++)
		if (s->tab_done[i].tab == tab) {
			s->tab_done[i] = s->tab_done[--s->ntab_done];
			break;
		}
	pthread_mutex_unlock(&s->lock);
}

void session_stop(struct session *s)
{
	if (!s || s->stopped)
		return;
	s->stop_ns = mono_ns();
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	/* The engine sees stop within WAIT_MAX_NS or one tick. */
	if (s->running)
		pthread_join(s->engine, NULL);
	s->running = 0;
	if (s->started)
		s->stopped = 1;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	session_stop(s);
	while (s->nlive) /* started but never run */
		finish_proc(s, s->nlive - 1, 0);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->give_lock);
	free(s->given);
	runwatch_close(s->rw);
	proc_events_close(s->ev_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->done_fd >= 0)
		close(s->done_fd);
	py_find_cache_free(s->elf_cache);
	free(s->live);
	free(s->lq);
	free(s->skips);
	free(s->members);
	free(s->events);
	free(s->tree);
	free(s->given_tabs);
	free(s->taken_tabs);
	free(s->tab_done);
	free(s);
}
