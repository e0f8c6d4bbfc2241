/* agent_run.h - the running agent's state, shared by its main thread
 * (cmd_agent.c: sampling, windows, reloads) and its HTTP server
 * (agent_http.c).
 *
 * The main thread owns everything.  What the HTTP threads read or change
 * is under `lock`: the services array (replaced by a reload), each
 * service's paused flag and last-found processes, the stacktabs'
 * snapshots and rotations (which must not run at once), and the open
 * requests with their taps.  Disk writes and process scans run outside
 * it.
 */
#ifndef PYSPYC_AGENT_RUN_H
#define PYSPYC_AGENT_RUN_H
#include <pthread.h>
#include <stdint.h>

#include "pyspyc/agent_conf.h"
#include "pyspyc/agent_find.h"
#include "pyspyc/agent_notify.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/profile.h"
#include "pyspyc/session.h"
#include "pyspyc/stacktab.h"

/* How long an engine may take to take a new set of processes (a reload,
 * a pause) before it is reported late. */
#define AGENT_SYNC_NS 2000000000LL

/* One sampling engine (a session, one thread) for every service with
 * the same rate and sampling options: each process is given with its
 * service's table (session_give_tables). */
struct agent_engine {
	struct session *sess;
	struct stacktab *spare;           /* the session's own table; unused */
	double rate_hz;
	int idle, gil, threads, process_root;
	unsigned int users;               /* services on it */
	struct backend_choice bc;         /* its backend (and eBPF hub) */
	char backend[8];                  /* as the configuration named it ("": none) */
	uint64_t last_ticks;
};

struct svc_run {
	char *name;
	const struct agent_service *conf; /* in the agent's current configuration */
	struct stacktab *tab;
	struct agent_engine *eng;         /* NULL: inert (could not start) */
	int64_t win_mono, win_wall;       /* the open window's start */
	struct proc_ident *found;         /* the processes found last */
	size_t nfound;
	uint64_t last_ticks;
	int paused;                       /* POST /pause: nothing given to sample */
	int gone;                         /* left out of a reload: to be closed */
	int closing;                      /* ...and its last window taken */
};

struct agent_req;                         /* an open profile request (agent_http.c) */
struct MHD_Daemon;

struct agent {
	struct agent_conf conf;
	struct svc_run *svcs;
	size_t nsvcs;
	struct agent_engine *engines[AGENT_SERVICES_MAX];
	size_t nengines;
	struct agent_scan scan;
	struct proc_ident *found;
	struct agent_notify notify;
	char host[256];
	int disk_short;                    /* the last write found no room */
	uint64_t windows_written, write_errors;
	uint64_t disk_bytes;               /* windows on disk after the last retention */
	/* Shared with the HTTP threads. */
	pthread_mutex_t lock;
	pthread_cond_t wake;               /* stopping, for requests that wait */
	int stopping;
	struct agent_req *reqs;
	unsigned int nreqs;
	uint64_t http_requests;
	unsigned int inflight;             /* requests not yet answered */
	struct MHD_Daemon *httpd;
	unsigned int port;                 /* the one bound */
	char addr[64];                     /* "HOST:PORT" bound, "[V6]:PORT" */
	int need_token;                    /* bound to an address that is not loopback */
};

/* Under the lock: give engine e the processes of its services that are
 * not paused (a process two of them choose counts for the first). */
void agent_engine_give(struct agent *ag, struct agent_engine *e);
/* The labels on every sample of a profile of service s (NULL: of every
 * service, which carry service_name each): labels[2i] = labels[2i + 1],
 * at most OUT_LABELS_MAX; returns how many. */
size_t agent_labels(const struct agent *ag, const struct agent_service *s, const char **labels);
/* Serve HTTP on c's listen address, if any (ag->port: the port bound).
 * 0, or -errno with why (a line) set. */
int agent_http_start(struct agent *ag, const struct agent_conf *c, char *why, size_t len);
/* Finish every open request (each answers with what it has) and stop
 * serving.  Call without the lock, before the services are freed. */
void agent_http_stop(struct agent *ag);
/* Under the lock: tab's window closed (its profile) — the open requests
 * on tab take it in. */
void agent_http_rotated(struct agent *ag, const struct stacktab *tab, const struct profile *closed);
/* Under the lock: tab is about to be freed; requests on it lose it. */
void agent_http_forget(struct agent *ag, const struct stacktab *tab);
#endif
