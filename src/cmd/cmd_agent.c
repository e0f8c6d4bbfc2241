/* cmd_agent.c - pyspyc agent: sample a host's Python services all the
 * time, keep their profiles on disk, window by window, and serve live
 * windows over HTTP (agent_http.c).
 *
 * The configuration (agent_conf.h) names services; every `rediscover`
 * seconds the processes each one selects are found again (agent_find.h)
 * and handed to its session, which samples them (session.h, given mode);
 * every `window` seconds a service's window is closed and written under
 * the state directory as pprof (and collapsed stacks when asked), then
 * retention runs (agent_store.h).  SIGTERM and SIGINT write every open
 * window and exit 0; SIGUSR1 writes them now and sampling goes on; SIGHUP
 * reads the configuration again (a bad one is logged and the old one
 * kept).  Under systemd's Type=notify it tells READY=1, STATUS=,
 * WATCHDOG=1 (while every session's sampling thread goes on ticking),
 * RELOADING=1 and STOPPING=1 (agent_notify.h).
 *
 * One engine (a session, a sampling thread) samples every service with
 * the same rate and sampling options, each process into its service's
 * table: a host's services cost one wake-up a tick.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/agent_conf.h"
#include "pyspyc/agent_find.h"
#include "pyspyc/agent_notify.h"
#include "pyspyc/agent_store.h"
#include "pyspyc/clock.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/output.h"
#include "pyspyc/profile.h"
#include "pyspyc/session.h"
#include "pyspyc/stacktab.h"

#include "agent_run.h"

#define WHO "pyspyc agent"
#define FIND_CAP 4096            /* processes one service samples */
#define MAX_STACKS (1u << 20)    /* a window's unique stacks */
#define MAX_FRAMES (1u << 20)
#define FORMER_MAX 256           /* removed services' directories retention sees */

struct agent_args {
	const char *config;
	int check;
	const char *listen, *token, *state_dir, *keep_bytes, *keep_age, *min_free;
	const char *rediscover, *rate, *window, *labels, *backend;
	struct opt_list pids;
	const char *pidfile, *match, *unit, *cgroup;
	int folded, idle, gil, threads, pid_label, thread_label;
};

#define A(m) offsetof(struct agent_args, m)
static const struct opt agent_opts[] = {
	{ 'c', "config", OPT_STRING, "FILE", "the configuration file (its drop-ins: FILE.d/*.conf)",
	  A(config), 0, 0, 0 },
	{ 0, "check", OPT_FLAG, NULL, "check the configuration, list the processes each service "
	  "would sample, and exit", A(check), 0, 0, 0 },
	{ 0, "listen", OPT_STRING, "ADDR:PORT", "serve profiles over HTTP here (default "
	  "127.0.0.1:6060; 'none': no HTTP)", A(listen), 0, 0, 0 },
	{ 0, "token", OPT_STRING, "TOKEN", "requests need 'Authorization: Bearer TOKEN' "
	  "(required off loopback)", A(token), 0, 0, 0 },
	{ 0, "state-dir", OPT_STRING, "DIR", "where windows are written (default /var/lib/pyspyc)",
	  A(state_dir), 0, 0, 0 },
	{ 0, "keep-bytes", OPT_STRING, "SIZE", "every service's windows together at most SIZE "
	  "(default 1G)", A(keep_bytes), 0, 0, 0 },
	{ 0, "keep-age", OPT_STRING, "DURATION", "windows kept this long (default 7d)",
	  A(keep_age), 0, 0, 0 },
	{ 0, "min-free", OPT_STRING, "SIZE|PCT%", "leave this much of the file system free "
	  "(default 5%)", A(min_free), 0, 0, 0 },
	{ 0, "rediscover", OPT_STRING, "DURATION", "find the services' processes again this often "
	  "(default 5s)", A(rediscover), 0, 0, 0 },
	{ 'r', "rate", OPT_STRING, "HZ", "samples per second (default 100)", A(rate), 0, 0, 0 },
	{ 0, "backend", OPT_STRING, "NAME", "bpf, user or auto, as record's", A(backend), 0, 0,
	  0 },
	{ 0, "window", OPT_STRING, "DURATION", "one profile per service this long (default 60s)",
	  A(window), 0, 0, 0 },
	{ 0, "labels", OPT_STRING, "K=V,...", "labels on every profile", A(labels), 0, 0, 0 },
	{ 'p', "pid", OPT_LIST, "PID", "sample this process and its descendants (repeatable)",
	  A(pids), 0, 0, 0 },
	{ 0, "pidfile", OPT_STRING, "FILE", "the process in this pid file and its descendants",
	  A(pidfile), 0, 0, 0 },
	{ 0, "match", OPT_STRING, "REGEX", "processes whose command line matches", A(match), 0, 0,
	  0 },
	{ 0, "unit", OPT_STRING, "UNIT", "the processes of a systemd unit", A(unit), 0, 0, 0 },
	{ 0, "cgroup", OPT_STRING, "PATH", "the processes of a control group", A(cgroup), 0, 0, 0 },
	{ 0, "folded", OPT_FLAG, NULL, "write collapsed stacks beside each window", A(folded), 0,
	  0, 0 },
	{ 'i', "idle", OPT_FLAG, NULL, "count threads that are not on a CPU", A(idle), 0, 0, 0 },
	{ 'g', "gil", OPT_FLAG, NULL, "count only the thread holding the GIL", A(gil), 0, 0, 0 },
	{ 't', "threads", OPT_FLAG, NULL, "a root frame per thread (folded)", A(threads), 0, 0, 0 },
	{ 0, "pid-label", OPT_FLAG, NULL, "label samples with their process id", A(pid_label), 0,
	  0, 0 },
	{ 0, "thread-label", OPT_FLAG, NULL, "label samples with their thread", A(thread_label), 0,
	  0, 0 },
};
#undef A

static const struct cmd_usage agent_usage = {
	.name = "agent",
	.synopsis = "[OPTIONS]",
	.about = "Sample a host's Python services all the time; write a profile per service and "
		 "window under the state directory, and serve live profiles over HTTP.",
	.opts = agent_opts,
	.nopts = sizeof(agent_opts) / sizeof(agent_opts[0]),
	.examples = "  sudo pyspyc agent --config /etc/pyspyc/agent.conf\n"
		    "  sudo pyspyc agent --match 'gunicorn: worker' --listen 127.0.0.1:6060\n"
		    "  go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=30\n"
		    "  pyspyc agent --config /etc/pyspyc/agent.conf --check\n",
};

/* ---- logging: one line per event ----------------------------------------- */

static int to_journal;

/* stderr is the journal when $JOURNAL_STREAM names its device and inode. */
static void log_setup(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) &&
		     (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

enum { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6 };

static void say(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	cmd_vline(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to_journal)
		fprintf(stderr, "<%d>%s\n", prio, line);
	else
		fprintf(stderr, "%s: %s%s\n", WHO,
			prio == LOG_ERR ? "error: " : prio == LOG_WARN ? "warning: " : "", line);
}

/* ---- the configuration ----------------------------------------------------- */

/* The file (if any), then the command line over it. */
static int load_conf(const struct agent_args *a, struct agent_conf *c)
{
	const struct {
		const char *opt, *key, *val;
	} agent_keys[] = {
		{ "--listen", "listen", a->listen }, { "--token", "token", a->token },
		{ "--state-dir", "state_dir", a->state_dir },
		{ "--keep-bytes", "keep_bytes", a->keep_bytes },
		{ "--keep-age", "keep_age", a->keep_age }, { "--min-free", "min_free", a->min_free },
		{ "--rediscover", "rediscover", a->rediscover }, { "--rate", "rate", a->rate },
		{ "--backend", "backend", a->backend },
		{ "--window", "window", a->window }, { "--labels", "labels", a->labels },
		{ "--folded", "folded", a->folded ? "yes" : NULL },
		{ "--idle", "idle", a->idle ? "yes" : NULL }, { "--gil", "gil", a->gil ? "yes" : NULL },
		{ "--threads", "threads", a->threads ? "yes" : NULL },
		{ "--pid-label", "pid_label", a->pid_label ? "yes" : NULL },
		{ "--thread-label", "thread_label", a->thread_label ? "yes" : NULL },
	}, svc_keys[] = {
		{ "--pidfile", "pidfile", a->pidfile }, { "--match", "match", a->match },
		{ "--unit", "unit", a->unit }, { "--cgroup", "cgroup", a->cgroup },
	};
	size_t i;
	int k;

	if (agent_conf_init(c))
		return -ENOMEM;
	if (a->config && agent_conf_load(c, a->config))
		return -EINVAL;
	for (i = 0; i < sizeof(agent_keys) / sizeof(agent_keys[0]); i++)
		if (agent_keys[i].val &&
		    agent_conf_set(c, agent_keys[i].opt, "agent", agent_keys[i].key, agent_keys[i].val))
			return -EINVAL;
	for (i = 0; i < sizeof(svc_keys) / sizeof(svc_keys[0]); i++)
		if (svc_keys[i].val && agent_conf_set(c, svc_keys[i].opt, AGENT_CLI_SERVICE,
						      svc_keys[i].key, svc_keys[i].val))
			return -EINVAL;
	for (k = 0; k < a->pids.n; k++)
		if (agent_conf_set(c, "--pid", AGENT_CLI_SERVICE, "pid", a->pids.v[k]))
			return -EINVAL;
	return agent_conf_finish(c);
}

/* ---- --check ---------------------------------------------------------------- */

static int check(const struct agent_conf *c)
{
	struct proc_ident *found = malloc(FIND_CAP * sizeof(*found));
	struct py_target *t = malloc(sizeof(*t));
	struct agent_scan sc = { 0 };
	size_t i, k, n, left;
	int err, rc = EXIT_OK;

	if (!found || !t) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
		goto out;
	}
	err = agent_scan_take(&sc);
	if (err) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot list processes: %s", strerror(-err));
		goto out;
	}
	printf("configuration ok: %zu service%s, windows under %s\n", c->nservices,
	       c->nservices == 1 ? "" : "s", c->state_dir);
	if (c->listen.ss_family != AF_UNSPEC)
		printf("listen on %s%s\n", c->listen_text, c->token ? ", with a token" : "");
	for (i = 0; i < c->nservices; i++) {
		const struct agent_service *s = &c->services[i];
		struct agent_find_notes notes;

		err = agent_find(&sc, s, AGENT_CGROUP_ROOT, found, FIND_CAP, &n, &left, &notes);
		if (err) {
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
			goto out;
		}
		printf("service %s: %g Hz, %g s windows%s, %zu process%s now%s%s\n", s->name,
		       s->rate_hz, s->window_s, s->enabled ? "" : ", disabled", n,
		       n == 1 ? "" : "es", notes.text[0] ? "; " : "", notes.text);
		for (k = 0; k < n; k++) {
			char cmd[256];

			if (proc_cmdline(found[k].pid, cmd, sizeof(cmd)))
				cmd[0] = '\0';
			err = py_target_find(t, found[k].pid, 0);
			if (!err)
				printf("  %d  Python %u.%u  %s\n", (int)found[k].pid,
				       (unsigned)(t->version_hex >> 24), (unsigned)(t->version_hex >> 16 & 0xff),
				       cmd);
			else
				printf("  %d  not sampled (%s)  %s\n", (int)found[k].pid,
				       err == -ENOEXEC || err == -ENOENT ? "not Python" :
				       strerror(-err), cmd);
		}
		if (left)
			printf("  and %zu more, past %d\n", left, FIND_CAP);
	}
out:
	agent_scan_release(&sc);
	free(found);
	free(t);
	return rc;
}

/* ---- running ---------------------------------------------------------------- */

/* The engine for s's rate and options: one already running, or a new one. */
static int engine_get(struct agent *ag, const struct agent_service *s, const char *backend,
		      struct agent_engine **out)
{
	struct stacktab_limits spare_lim = { .max_stacks = 16, .max_frames = 16,
					     .max_strings = 16 };
	struct session_opts so = {
		.rate_hz = s->rate_hz,
		.idle = s->idle,
		.gil = s->gil,
		.threads = s->threads || s->thread_label,
		.given = 1,
		.process_root = s->pid_label,
		.max_processes = FIND_CAP,
		.walk = { .max_depth = 4096, .max_threads = MAX_THREADS_DEFAULT },
		.sym = { .lineno = 1 },
	};
	struct agent_engine *e;
	size_t i;
	int err;

	for (i = 0; i < ag->nengines; i++) {
		e = ag->engines[i];
		if (e->rate_hz == so.rate_hz && e->idle == so.idle && e->gil == so.gil &&
		    e->threads == so.threads && e->process_root == so.process_root &&
		    !strcmp(e->backend, backend ? backend : "")) {
			e->users++;
			*out = e;
			return 0;
		}
	}
	if (ag->nengines == AGENT_SERVICES_MAX || !(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->rate_hz = so.rate_hz;
	e->idle = so.idle;
	e->gil = so.gil;
	e->threads = so.threads;
	e->process_root = so.process_root;
	snprintf(e->backend, sizeof(e->backend), "%s", backend ? backend : "");
	/* The backend as record chooses it, from backend = (or
	 * PYSPYC_BACKEND); bpf that cannot serve falls back, said once. */
	err = cmd_backend_pick(backend, so.idle ? "idle = yes" : so.gil ? "gil = yes"
			       : NULL, so.rate_hz, &e->bc);
	if (err) {
		say(LOG_ERR, "backend bpf at %g Hz: %s; sampling with the user backend",
		    so.rate_hz, e->bc.why);
		cmd_backend_pick("user", NULL, so.rate_hz, &e->bc);
	} else if (e->bc.hub) {
		say(LOG_INFO, "sampling at %g Hz with the bpf backend", so.rate_hz);
	} else if (e->bc.why[0]) {
		say(LOG_INFO, "sampling at %g Hz with the user backend (not bpf: %s)", so.rate_hz,
		    e->bc.why);
	}
	cmd_backend_setup(&e->bc, &so);
	err = stacktab_new(&e->spare, &spare_lim);
	if (!err)
		err = session_new(&e->sess, &so, e->spare);
	if (!err)
		err = session_start(e->sess, 0, NULL);
	if (err) {
		session_free(e->sess);
		cmd_backend_close(&e->bc);
		stacktab_free(e->spare);
		free(e);
		return err;
	}
	e->users = 1;
	ag->engines[ag->nengines++] = e;
	*out = e;
	return 0;
}

/* A service leaves e; the last one stops it. */
static void engine_put(struct agent *ag, struct agent_engine *e)
{
	size_t i;

	if (!e || --e->users)
		return;
	for (i = 0; i < ag->nengines; i++)
		if (ag->engines[i] == e)
			ag->engines[i] = ag->engines[--ag->nengines];
	session_free(e->sess);
	cmd_backend_close(&e->bc);
	stacktab_free(e->spare);
	free(e);
}

void agent_engine_give(struct agent *ag, struct agent_engine *e)
{
	struct proc_ident *ids;
	struct stacktab **tabs;
	size_t i, k, n = 0, cap = 0;

	for (i = 0; i < ag->nsvcs; i++)
		if (ag->svcs[i].eng == e && !ag->svcs[i].gone && !ag->svcs[i].paused)
			cap += ag->svcs[i].nfound;
	ids = malloc((cap ? cap : 1) * sizeof(*ids));
	tabs = malloc((cap ? cap : 1) * sizeof(*tabs));
	if (ids && tabs) {
		for (i = 0; i < ag->nsvcs; i++) {
			const struct svc_run *r = &ag->svcs[i];

			if (r->eng != e || r->gone || r->paused)
				continue;
			for (k = 0; k < r->nfound; k++) {
				size_t j;

				for (j = 0; j < n && ids[j].pid != r->found[k].pid; j++)
					;
				if (j < n)
					continue; /* another service has it */
				ids[n] = r->found[k];
				tabs[n++] = r->tab;
			}
		}
		session_give_tables(e->sess, ids, tabs, n);
	}
	free(ids);
	free(tabs);
}

static int svc_start(struct agent *ag, struct svc_run *r, const struct agent_service *s,
		     const char *backend)
{
	struct stacktab_limits lim = { .max_stacks = MAX_STACKS, .max_frames = MAX_FRAMES,
				       .max_strings = MAX_FRAMES };
	int err;

	memset(r, 0, sizeof(*r));
	r->name = strdup(s->name);
	if (!r->name)
		return -ENOMEM;
	r->conf = s;
	err = stacktab_new(&r->tab, &lim);
	if (!err)
		err = engine_get(ag, s, backend, &r->eng);
	if (err) {
		/* Inert: nothing samples it; its name stays for the log. */
		stacktab_free(r->tab);
		r->tab = NULL;
		r->eng = NULL;
	}
	r->win_mono = mono_ns();
	r->win_wall = wall_ns();
	return err;
}

/* When r's open window ends. */
static int64_t window_end(const struct svc_run *r)
{
	return r->win_mono + (int64_t)(r->conf->window_s * 1e9);
}

/* Free what is left of r once its engine no longer samples into its
 * table. */
static void svc_free(struct svc_run *r)
{
	free(r->found);
	stacktab_free(r->tab);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

/* The directories under the state directory that may be services' but
 * are not the configuration's: a service removed from it.  Appended to
 * names[n..cap); returns the new count. */
static size_t former_services(const struct agent_conf *c, const char **names, char **own,
			      size_t n, size_t cap)
{
	DIR *d = opendir(c->state_dir);
	struct dirent *e;
	size_t i, first = n;

	while (d && n < cap && (e = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (!agent_service_name_ok(e->d_name))
			continue;
		for (i = 0; i < first && strcmp(names[i], e->d_name); i++)
			;
		if (i < first)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->state_dir, e->d_name);
		if (lstat(path, &st) || !S_ISDIR(st.st_mode) || !(own[n - first] = strdup(e->d_name)))
			continue;
		names[n] = own[n - first];
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* Delete what retention says, over the services of the configuration and
 * the directories of services it no longer has ([agent]'s keep_age for
 * them; keep_bytes bounds them all together). */
static void retain(struct agent *ag)
{
	const struct agent_conf *c = &ag->conf;
	size_t cap = c->nservices + FORMER_MAX;
	const char **names = calloc(cap, sizeof(*names));
	char **own = calloc(FORMER_MAX, sizeof(*own));
	uint64_t *bytes = calloc(cap, sizeof(*bytes));
	double *ages = calloc(cap, sizeof(*ages));
	struct agent_window_file *v = NULL;
	size_t i, n = 0, nnames;

	if (!names || !own || !bytes || !ages)
		goto out;
	for (i = 0; i < c->nservices; i++) {
		names[i] = c->services[i].name;
		bytes[i] = c->services[i].keep_bytes;
		ages[i] = c->services[i].keep_age_s;
	}
	nnames = former_services(c, names, own, c->nservices, cap);
	for (i = c->nservices; i < nnames; i++)
		ages[i] = c->defaults.keep_age_s;
	if (!agent_store_list(c->state_dir, names, nnames, &v, &n)) {
		struct agent_retention r = { .keep_bytes = c->keep_bytes, .svc_keep_bytes = bytes,
					     .svc_keep_age_s = ages, .now_ns = wall_ns() };
		uint64_t kept = 0;

		if (agent_retention_plan(v, n, &r))
			agent_store_delete(c->state_dir, names, v, n);
		for (i = 0; i < n; i++)
			kept += v[i].doomed ? 0 : v[i].bytes;
		pthread_mutex_lock(&ag->lock);
		ag->disk_bytes = kept;
		pthread_mutex_unlock(&ag->lock);
	}
out:
	for (i = 0; own && i < FORMER_MAX; i++)
		free(own[i]);
	free(own);
	free(v);
	free(names);
	free(bytes);
	free(ages);
}

size_t agent_labels(const struct agent *ag, const struct agent_service *s, const char **labels)
{
	size_t i, n = 0;

	if (s) {
		labels[2 * n] = "service_name";
		labels[2 * n++ + 1] = s->name;
	}
	labels[2 * n] = "hostname";
	labels[2 * n++ + 1] = ag->host;
	for (i = 0; s && i < s->nlabels && n < OUT_LABELS_MAX; i++, n++) {
		labels[2 * n] = s->labels[i].key;
		labels[2 * n + 1] = s->labels[i].value;
	}
	return n;
}

/* Write one closed window of r: pprof, and collapsed stacks when asked. */
static void write_window(struct agent *ag, struct svc_run *r, const struct profile *prof)
{
	const struct agent_service *s = r->conf;
	const char *labels[2 * OUT_LABELS_MAX];
	char stem[PATH_MAX], path[PATH_MAX + 16], dir[PATH_MAX], why[256];
	struct profile plain = { 0 };
	struct out_opts oo = { .labels = labels, .nlabels = agent_labels(ag, s, labels) };
	int err;

	err = agent_store_room(ag->conf.state_dir, 0, ag->conf.min_free_bytes,
			       ag->conf.min_free_pct, why, sizeof(why));
	if (err == -ENOSPC) {
		if (!ag->disk_short)
			say(LOG_WARN, "not writing windows until there is room: %s", why);
		ag->disk_short = 1;
		return;
	}
	if (ag->disk_short)
		say(LOG_INFO, "writing windows again: there is room under %s", ag->conf.state_dir);
	ag->disk_short = 0;
	err = agent_store_service_dir(ag->conf.state_dir, s->name);
	if (!err)
		err = agent_store_path(ag->conf.state_dir, s->name, prof->start_wall_ns, stem,
				       sizeof(stem));
	/* pprof carries threads as labels, and only when asked. */
	if (!err)
		err = profile_strip(prof, s->thread_label ? 0 : PROFILE_KIND(FRAME_THREAD), &plain);
	if (!err) {
		snprintf(path, sizeof(path), "%s.pb.gz", stem);
		err = out_write_file(path, out_format_by_name("pprof"), &plain, &oo);
		profile_release(&plain);
	}
	if (!err && s->folded) {
		err = profile_strip(prof, s->threads ? 0 : PROFILE_KIND(FRAME_THREAD), &plain);
		if (!err) {
			snprintf(path, sizeof(path), "%s.folded", stem);
			err = out_write_file(path, out_format_by_name("collapsed"), &plain, &oo);
			profile_release(&plain);
		}
	}
	if (!err) {
		snprintf(dir, sizeof(dir), "%s/%s", ag->conf.state_dir, s->name);
		err = agent_store_sync_dir(dir);
	}
	if (err) {
		ag->write_errors++;
		say(LOG_ERR, "service %s: cannot write its window under %s: %s", s->name,
		    ag->conf.state_dir, strerror(-err));
		return;
	}
	ag->windows_written++;
	retain(ag);
}

/* Under the lock: close r's open window at now into *prof (the open
 * requests take it in) and open the next. */
static int rotate_window(struct agent *ag, struct svc_run *r, int64_t now, struct profile *prof)
{
	int err = stacktab_rotate(r->tab, prof);

	if (!err) {
		agent_http_rotated(ag, r->tab, prof);
		prof->command = r->name;
		prof->pid = 0;
		prof->rate_hz = r->conf->rate_hz;
		prof->start_ns = r->win_mono;
		prof->start_wall_ns = r->win_wall;
		prof->duration_s = (double)(now - r->win_mono) / 1e9;
	}
	r->win_wall += now - r->win_mono;
	r->win_mono = now;
	return err;
}

/* Write a closed window if it has samples, and let it go. */
static void finish_window(struct agent *ag, struct svc_run *r, int err, struct profile *prof)
{
	if (err)
		say(LOG_ERR, "service %s: cannot build its window: %s", r->name, strerror(-err));
	else if (prof->total)
		write_window(ag, r, prof);
	profile_release(prof);
}

/* Close r's open window at now, write it if it has samples, open the next. */
static void close_window(struct agent *ag, struct svc_run *r, int64_t now)
{
	struct profile prof = { 0 };
	int err;

	pthread_mutex_lock(&ag->lock);
	err = rotate_window(ag, r, now, &prof);
	pthread_mutex_unlock(&ag->lock);
	finish_window(ag, r, err, &prof);
}

/* Find every service's processes again and give them to its engine (a
 * paused service keeps them for its resume). */
static void discover(struct agent *ag)
{
	size_t i, n, left;
	int err = agent_scan_take(&ag->scan);

	if (err) {
		say(LOG_ERR, "cannot list processes: %s", strerror(-err));
		return;
	}
	for (i = 0; i < ag->nsvcs; i++) {
		struct svc_run *r = &ag->svcs[i];
		struct proc_ident *keep;

		n = 0;
		if (!r->eng)
			continue;
		if (r->conf->enabled &&
		    agent_find(&ag->scan, r->conf, AGENT_CGROUP_ROOT, ag->found, FIND_CAP, &n, &left,
			       NULL))
			continue;
		keep = malloc((n ? n : 1) * sizeof(*keep));
		if (!keep)
			continue;
		memcpy(keep, ag->found, n * sizeof(*keep));
		pthread_mutex_lock(&ag->lock);
		free(r->found);
		r->found = keep;
		r->nfound = n;
		pthread_mutex_unlock(&ag->lock);
	}
	pthread_mutex_lock(&ag->lock);
	for (i = 0; i < ag->nengines; i++)
		agent_engine_give(ag, ag->engines[i]);
	pthread_mutex_unlock(&ag->lock);
}

static void tell_status(struct agent *ag)
{
	char msg[256];
	size_t i, procs = 0;

	pthread_mutex_lock(&ag->lock);
	for (i = 0; i < ag->nsvcs; i++)
		procs += ag->svcs[i].paused ? 0 : ag->svcs[i].nfound;
	pthread_mutex_unlock(&ag->lock);
	snprintf(msg, sizeof(msg), "STATUS=%zu service%s, %zu process%s selected%s", ag->nsvcs,
		 ag->nsvcs == 1 ? "" : "s", procs, procs == 1 ? "" : "es",
		 ag->disk_short ? "; not writing: disk short" : "");
	agent_notify_send(&ag->notify, msg);
}

/* Services of the new configuration c: the same name, rate and sampling
 * options keep their table, engine, open window and pause; others start
 * anew (on the engine of their rate and options); the ones gone leave
 * their engine, and their last window is written under their old
 * settings.  The HTTP threads see the old services or the new, never a
 * mix, and never a gone service's table. */
static int apply_conf(struct agent *ag, struct agent_conf *c, int64_t now)
{
	struct svc_run *next = calloc(c->nservices ? c->nservices : 1, sizeof(*next));
	struct svc_run *old = ag->svcs;
	size_t nold = ag->nsvcs, i, j;
	struct profile *closed = calloc(nold ? nold : 1, sizeof(*closed));
	int *cerr = calloc(nold ? nold : 1, sizeof(*cerr));

	if (!next || !closed || !cerr) {
		free(next);
		free(closed);
		free(cerr);
		return -ENOMEM;
	}
	pthread_mutex_lock(&ag->lock);
	for (j = 0; j < nold; j++)
		old[j].gone = 1;
	for (i = 0; i < c->nservices; i++) {
		const struct agent_service *s = &c->services[i];
		int err;

		for (j = 0; j < nold; j++) {
			const struct agent_service *o = old[j].conf;

			if (old[j].gone && !strcmp(o->name, s->name) && o->rate_hz == s->rate_hz &&
			    o->idle == s->idle && o->gil == s->gil && o->threads == s->threads &&
			    o->pid_label == s->pid_label && o->thread_label == s->thread_label)
				break;
		}
		if (j < nold) {
			next[i] = old[j];
			next[i].conf = s;
			next[i].gone = 0;
			memset(&old[j], 0, sizeof(old[j]));
			continue;
		}
		err = svc_start(ag, &next[i], s, c->backend);
		if (err)
			say(LOG_ERR, "service %s: cannot start sampling: %s", s->name, strerror(-err));
	}
	ag->svcs = next;
	ag->nsvcs = c->nservices;
	/* The gone ones' processes out of their engines, and taken out: then
	 * their tables are whole and no longer written. */
	for (j = 0; j < nold; j++)
		if (old[j].eng)
			agent_engine_give(ag, old[j].eng);
	for (j = 0; j < nold; j++)
		if (old[j].eng && session_sync(old[j].eng->sess, AGENT_SYNC_NS))
			say(LOG_WARN, "service %s: its engine did not let it go in time",
			    old[j].name);
	for (j = 0; j < nold; j++) {
		struct svc_run *r = &old[j];

		if (!r->eng)
			continue;
		cerr[j] = rotate_window(ag, r, now, &closed[j]);
		agent_http_forget(ag, r->tab);
		session_forget_table(r->eng->sess, r->tab);
		engine_put(ag, r->eng);
		r->eng = NULL;
		r->closing = 1;
	}
	pthread_mutex_unlock(&ag->lock);
	/* ag->conf is still the old configuration: the gone ones' last
	 * windows are written under it. */
	for (j = 0; j < nold; j++)
		if (old[j].closing)
			finish_window(ag, &old[j], cerr[j], &closed[j]);
	pthread_mutex_lock(&ag->lock);
	for (j = 0; j < nold; j++)
		svc_free(&old[j]);
	free(old);
	agent_conf_release(&ag->conf);
	ag->conf = *c; /* the services' conf pointers move with the array */
	for (i = 0; i < ag->nsvcs; i++)
		ag->svcs[i].conf = &ag->conf.services[i];
	pthread_mutex_unlock(&ag->lock);
	free(closed);
	free(cerr);
	return 0;
}

/* Is every engine's thread still ticking? */
static int all_ticking(struct agent *ag)
{
	int ok = 1;
	size_t i;

	for (i = 0; i < ag->nengines; i++) {
		struct agent_engine *e = ag->engines[i];
		struct session_stats st;

		session_stats(e->sess, &st);
		if (st.engine_ticks == e->last_ticks)
			ok = 0;
		e->last_ticks = st.engine_ticks;
	}
	return ok;
}

static int run(const struct agent_args *a, struct agent_conf *first)
{
	struct agent ag = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };
	int64_t watchdog_ns, next_discover, next_watchdog, now;
	uint64_t errors;
	char why[512];
	sigset_t sigs;
	size_t i;
	int rc = EXIT_OK, err, ready = 0;

	log_setup();
	if (mkdir(first->state_dir, 0755) && errno != EEXIST) {
		rc = cmd_die(WHO, EXIT_OUTPUT, "cannot make the state directory %s: %s",
			     first->state_dir, strerror(errno));
		agent_conf_release(first);
		return rc;
	}
	if (access(first->state_dir, W_OK | X_OK)) {
		rc = cmd_die(WHO, EXIT_OUTPUT, "cannot write in the state directory %s: %s",
			     first->state_dir, strerror(errno));
		agent_conf_release(first);
		return rc;
	}
	if (gethostname(ag.host, sizeof(ag.host) - 1))
		strcpy(ag.host, "unknown");
	err = agent_notify_open(&ag.notify, getenv("NOTIFY_SOCKET"));
	if (err)
		say(LOG_WARN, "NOTIFY_SOCKET is not a socket name: not telling systemd");
	watchdog_ns = agent_notify_watchdog_ns(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
					       getpid());
	ag.found = malloc(FIND_CAP * sizeof(*ag.found));
	if (!ag.found) {
		agent_conf_release(first);
		return cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
	}
	/* The signals are taken here, synchronously; sessions' threads block
	 * them all. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The address first: a port taken is an error with nothing started. */
	if (agent_http_start(&ag, first, why, sizeof(why))) {
		agent_conf_release(first);
		free(ag.found);
		return cmd_die(WHO, EXIT_FAILURE_RUN, "%s", why);
	}
	now = mono_ns();
	apply_conf(&ag, first, now);
	say(LOG_INFO, "sampling %zu service%s; windows under %s", ag.nsvcs,
	    ag.nsvcs == 1 ? "" : "s", ag.conf.state_dir);
	if (ag.httpd)
		say(LOG_INFO, "serving profiles on http://%s/debug/pprof/", ag.addr);
	next_discover = now;
	next_watchdog = now;
	for (;;) {
		int64_t until;
		struct timespec ts;
		siginfo_t info;
		int sig;

		now = mono_ns();
		if (now >= next_discover) {
			discover(&ag);
			next_discover = now + (int64_t)(ag.conf.rediscover_s * 1e9);
			if (!ready) {
				agent_notify_send(&ag.notify, "READY=1");
				ready = 1;
			}
			tell_status(&ag);
		}
		for (i = 0; i < ag.nsvcs; i++) {
			struct svc_run *r = &ag.svcs[i];

			if (r->eng && now >= window_end(r))
				close_window(&ag, r, now);
		}
		if (watchdog_ns && now >= next_watchdog) {
			if (all_ticking(&ag))
				agent_notify_send(&ag.notify, "WATCHDOG=1");
			next_watchdog = now + watchdog_ns;
		}
		until = next_discover;
		for (i = 0; i < ag.nsvcs; i++) {
			if (ag.svcs[i].eng && window_end(&ag.svcs[i]) < until)
				until = window_end(&ag.svcs[i]);
		}
		if (watchdog_ns && next_watchdog < until)
			until = next_watchdog;
		now = mono_ns();
		if (until < now)
			until = now;
		ts.tv_sec = (until - now) / 1000000000;
		ts.tv_nsec = (until - now) % 1000000000;
		sig = sigtimedwait(&sigs, &info, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			agent_notify_send(&ag.notify, "STOPPING=1");
			say(LOG_INFO, "stopping: writing the open windows");
			break;
		}
		if (sig == SIGUSR1) {
			now = mono_ns();
			for (i = 0; i < ag.nsvcs; i++)
				if (ag.svcs[i].eng)
					close_window(&ag, &ag.svcs[i], now);
		}
		if (sig == SIGHUP) {
			struct agent_conf c;

			agent_notify_send(&ag.notify, "RELOADING=1");
			if (load_conf(a, &c)) {
				say(LOG_ERR, "reload: %s; keeping the configuration in use",
				    c.err[0] ? c.err : "out of memory");
				agent_conf_release(&c);
			} else {
				if (strcmp(c.listen_text, ag.conf.listen_text))
					say(LOG_WARN, "reload: listen %s: a new address needs a "
					    "restart; still on %s", c.listen_text,
					    ag.conf.listen_text);
				apply_conf(&ag, &c, mono_ns());
				say(LOG_INFO, "reloaded: sampling %zu service%s", ag.nsvcs,
				    ag.nsvcs == 1 ? "" : "s");
				next_discover = mono_ns();
			}
			agent_notify_send(&ag.notify, "READY=1");
		}
	}
	agent_http_stop(&ag);
	/* The status says whether these last windows were written: earlier
	 * failures were logged as they came. */
	errors = ag.write_errors;
	for (i = 0; i < ag.nengines; i++)
		session_stop(ag.engines[i]->sess); /* every count in its table */
	now = mono_ns();
	for (i = 0; i < ag.nsvcs; i++)
		if (ag.svcs[i].eng)
			close_window(&ag, &ag.svcs[i], now);
	for (i = 0; i < ag.nsvcs; i++)
		engine_put(&ag, ag.svcs[i].eng); /* the last one stops it */
	if (ag.write_errors > errors)
		rc = EXIT_OUTPUT;
	for (i = 0; i < ag.nsvcs; i++)
		svc_free(&ag.svcs[i]);
	free(ag.svcs);
	agent_conf_release(&ag.conf);
	agent_scan_release(&ag.scan);
	agent_notify_close(&ag.notify);
	free(ag.found);
	return rc;
}

int cmd_agent(int argc, char **argv)
{
	struct agent_args a = { 0 };
	struct agent_conf c;
	int rc, cmd_i;

	rc = cmd_parse(WHO, &agent_usage, argc, argv, &a, &cmd_i, NULL);
	if (rc >= 0)
		return rc;
	if (load_conf(&a, &c)) {
		rc = cmd_die(WHO, EXIT_CONFIG, "%s", c.err[0] ? c.err : "out of memory");
		agent_conf_release(&c);
		return rc;
	}
	if (a.check) {
		rc = check(&c);
		agent_conf_release(&c);
		return rc;
	}
	return run(&a, &c);
}
