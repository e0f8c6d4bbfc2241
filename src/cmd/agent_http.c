/* agent_http.c - the agent's HTTP server (libmicrohttpd).
 *
 *   GET  /debug/pprof/profile?seconds=N       every service, N seconds from now
 *   GET  /t/SERVICE/debug/pprof/profile?...   one service
 *   GET  /debug/pprof/, /t/SERVICE/debug/pprof/   an index
 *   GET  /flamegraph.svg?seconds=N&service=S  the flame graph of a live window
 *   GET  /targets                             Prometheus HTTP service discovery
 *   GET  /metrics                             Prometheus text
 *   POST /pause, /resume [?service=S]         stop and start sampling
 *
 * Profiles follow Go's net/http/pprof: N defaults to 30 when missing or
 * not above 0, a bad or too long N is a 400 in plain text with the header
 * X-Go-Pprof: 1, the profile is gzipped profile.proto as an attachment.
 * Each request has its own window on the live stream (agent_tap.h): it
 * takes every sample counted while it waits, whoever else is asking, and
 * the windows on disk lose nothing to it.  Requests wait in their own
 * connection thread (libmicrohttpd's thread per connection), at most
 * MAX_OPEN of them; the agent's stop ends their wait early and they answer
 * with what they have.
 *
 * With a token, every request needs "Authorization: Bearer TOKEN" (401
 * otherwise).  A listen address that is not loopback always needs one:
 * the configuration refuses it without, and a reload that drops the token
 * leaves every request refused rather than open.
 */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pyspyc/agent_tap.h"
#include "pyspyc/clock.h"
#include "pyspyc/json.h"
#include "pyspyc/output.h"

#include "agent_run.h"

#define MAX_OPEN 16            /* profile and flame graph requests at once */
#define MAX_CONNECTIONS 64
#define MAX_SECONDS 3600
#define PPROF_DEFAULT_SECONDS 30
#define SVG_DEFAULT_SECONDS 10
#define STOP_WAIT_S 10         /* for open requests to answer, at the agent's stop */

struct req_part {
	struct tap *tap;
	const struct stacktab *tab; /* NULL: the service went away */
	struct profile frames;      /* the last snapshot, for the frames */
};

struct agent_req {
	struct agent_req *next;
	struct req_part *parts;
	size_t n;
};

/* ---- what the main thread tells ------------------------------------------- */

void agent_http_rotated(struct agent *ag, const struct stacktab *tab, const struct profile *closed)
{
	struct agent_req *q;
	size_t i;

	for (q = ag->reqs; q; q = q->next)
		for (i = 0; i < q->n; i++)
			if (q->parts[i].tab == tab && tap_take(q->parts[i].tap, closed, 1))
				q->parts[i].tab = NULL; /* out of memory: this part is lost */
}

void agent_http_forget(struct agent *ag, const struct stacktab *tab)
{
	struct agent_req *q;
	size_t i;

	for (q = ag->reqs; q; q = q->next)
		for (i = 0; i < q->n; i++)
			if (q->parts[i].tab == tab)
				q->parts[i].tab = NULL;
}

/* ---- replies --------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     char *body, size_t len, int go_pprof)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
								  MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (go_pprof)
		MHD_add_response_header(r, "X-Go-Pprof", "1");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"pyspyc\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", go_pprof == 2 ? "POST" : "GET, HEAD");
	if (status == MHD_HTTP_OK && !strcmp(type, "application/octet-stream"))
		MHD_add_response_header(r, "Content-Disposition", "attachment; filename=\"profile\"");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* One line of plain text (errors carry X-Go-Pprof, as Go's do). */
static enum MHD_Result text(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum MHD_Result text(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", s, (size_t)n, status != MHD_HTTP_OK);
}

/* ---- a live window ---------------------------------------------------------- */

static void req_free(struct agent_req *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->n; i++) {
		tap_free(q->parts[i].tap);
		profile_release(&q->parts[i].frames);
	}
	free(q->parts);
	free(q);
}

static int live(const struct svc_run *r)
{
	return r->eng && !r->gone; /* an inert service has no engine */
}

/* The service sampling into tab now (a reload moves services in memory,
 * and keeps a table only with its service). */
static const struct svc_run *svc_of(const struct agent *ag, const struct stacktab *tab)
{
	size_t i;

	for (i = 0; tab && i < ag->nsvcs; i++)
		if (live(&ag->svcs[i]) && ag->svcs[i].tab == tab)
			return &ag->svcs[i];
	return NULL;
}

static const struct svc_run *find_svc(const struct agent *ag, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ag->nsvcs; i++)
		if (live(&ag->svcs[i]) && strlen(ag->svcs[i].name) == len &&
		    !memcmp(ag->svcs[i].name, name, len))
			return &ag->svcs[i];
	return NULL;
}

/* Under the lock: a request over svc (NULL: every service), its taps
 * started now, linked in. */
static int req_open(struct agent *ag, const struct svc_run *svc, struct agent_req **out)
{
	struct agent_req *q = calloc(1, sizeof(*q));
	size_t i, n = svc ? 1 : ag->nsvcs;

	*out = NULL;
	if (!q || !(q->parts = calloc(n ? n : 1, sizeof(*q->parts)))) {
		free(q);
		return -ENOMEM;
	}
	for (i = 0; i < ag->nsvcs; i++) {
		const struct svc_run *r = &ag->svcs[i];
		struct profile snap = { 0 };
		struct req_part *p = &q->parts[q->n];
		int err;

		if (!live(r) || (svc && r != svc))
			continue;
		err = stacktab_snapshot(r->tab, &snap);
		if (!err)
			err = tap_new(&p->tap, &snap);
		profile_release(&snap);
		if (err) {
			req_free(q);
			return err;
		}
		p->tab = r->tab;
		q->n++;
	}
	q->next = ag->reqs;
	ag->reqs = q;
	ag->nreqs++;
	*out = q;
	return 0;
}

static void req_unlink(struct agent *ag, struct agent_req *q)
{
	struct agent_req **pp;

	for (pp = &ag->reqs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			ag->nreqs--;
			return;
		}
}

/* Wait, with the lock held, until deadline (mono_ns) or the agent stops. */
static void wait_until(struct agent *ag, int64_t deadline)
{
	while (!ag->stopping) {
		int64_t now = mono_ns();
		struct timespec ts;

		if (now >= deadline)
			return;
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		pthread_cond_timedwait(&ag->wake, &ag->lock, &ts);
	}
}

struct window_ask {
	const char *service;        /* NULL: every service */
	size_t service_len;
	double seconds;
	const struct out_format *format;
	int mark;                   /* a root frame per service */
};

/* Sample for a->seconds and write the window in a->format into a buffer.
 * Returns an HTTP status; *why says what went wrong, *body the document. */
static unsigned int take_window(struct agent *ag, const struct window_ask *a, char **body,
				size_t *len, char *why, size_t wlen)
{
	struct agent_req *q = NULL;
	const struct svc_run *svc = NULL;
	struct tap_part *tp = NULL;
	struct profile prof = { 0 }, plain = { 0 };
	const char *labels[2 * OUT_LABELS_MAX];
	struct out_opts oo = { .labels = labels };
	int64_t start_mono, start_wall;
	unsigned int status = MHD_HTTP_OK, thread_labels = 1;
	double rate = 0;
	size_t i, n = 0;
	FILE *f = NULL;
	int err;

	*body = NULL;
	*len = 0;
	pthread_mutex_lock(&ag->lock);
	if (a->service && !(svc = find_svc(ag, a->service, a->service_len))) {
		snprintf(why, wlen, "no service '%.*s' (GET /targets lists them)",
			 (int)(a->service_len > 64 ? 64 : a->service_len), a->service);
		status = MHD_HTTP_NOT_FOUND;
		goto out;
	}
	if (ag->nreqs >= MAX_OPEN) {
		snprintf(why, wlen, "%d profile requests are open already: try again later",
			 MAX_OPEN);
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		goto out;
	}
	for (i = 0; i < ag->nsvcs; i++) {
		const struct svc_run *r = &ag->svcs[i];

		if (!live(r) || (svc && r != svc))
			continue;
		if (rate && r->conf->rate_hz != rate) {
			snprintf(why, wlen, "the services sample at different rates: ask each "
				 "one at /t/SERVICE/debug/pprof/profile");
			status = MHD_HTTP_BAD_REQUEST;
			goto out;
		}
		rate = r->conf->rate_hz;
	}
	err = req_open(ag, svc, &q);
	if (err) {
		snprintf(why, wlen, "out of memory");
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		goto out;
	}
	start_mono = mono_ns();
	start_wall = wall_ns();
	wait_until(ag, start_mono + (int64_t)(a->seconds * 1e9));

	/* The last look, then the profile, while the tables live.  A reload
	 * while waiting may have moved the services: each is found again by
	 * its table. */
	if (svc && !(svc = svc_of(ag, q->parts[0].tab))) {
		snprintf(why, wlen, "service '%.*s' went away while sampling",
			 (int)(a->service_len > 64 ? 64 : a->service_len), a->service);
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		goto out;
	}
	tp = calloc(q->n ? q->n : 1, sizeof(*tp));
	if (!tp)
		goto nomem;
	for (i = 0; i < q->n; i++) {
		struct req_part *p = &q->parts[i];
		const struct svc_run *r = svc_of(ag, p->tab);

		if (!r)
			continue;
		if (stacktab_snapshot(p->tab, &p->frames) || tap_take(p->tap, &p->frames, 0))
			goto nomem;
		tp[n].tap = p->tap;
		tp[n].frames = &p->frames;
		tp[n].service = r->name;
		thread_labels &= (unsigned int)r->conf->thread_label;
		n++;
	}
	if (tap_profile(tp, n, a->mark, &prof))
		goto nomem;
	prof.command = svc ? svc->name : ag->host;
	prof.rate_hz = rate ? rate : 100;
	prof.start_ns = start_mono;
	prof.start_wall_ns = start_wall;
	prof.duration_s = (double)(mono_ns() - start_mono) / 1e9;
	oo.nlabels = agent_labels(ag, svc ? svc->conf : NULL, labels);
	if (profile_strip(&prof, thread_labels && n ? 0 : PROFILE_KIND(FRAME_THREAD), &plain))
		goto nomem;
	f = open_memstream(body, len);
	if (!f || a->format->write(&plain, &oo, f)) {
		if (f)
			fclose(f);
		f = NULL;
		free(*body);
		*body = NULL;
		goto nomem;
	}
	fclose(f);
	goto out;
nomem:
	snprintf(why, wlen, "out of memory");
	status = MHD_HTTP_INTERNAL_SERVER_ERROR;
out:
	if (q)
		req_unlink(ag, q);
	profile_release(&plain);
	profile_release(&prof);
	req_free(q);
	pthread_mutex_unlock(&ag->lock);
	free(tp);
	return status;
}

/* ?seconds=: Go's rules (missing or <= 0: the default; not a number or
 * past MAX_SECONDS: an error). */
static int parse_seconds(struct MHD_Connection *c, double dflt, double *out, char *why,
			 size_t wlen)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");
	char *end;
	double s;

	*out = dflt;
	if (!v || !*v)
		return 0;
	errno = 0;
	s = strtod(v, &end);
	if (errno || *end || !isfinite(s)) {
		snprintf(why, wlen, "seconds: not a number: '%.32s'", v);
		return -1;
	}
	if (s > MAX_SECONDS) {
		snprintf(why, wlen, "seconds: %g is longer than the %d this agent allows", s,
			 MAX_SECONDS);
		return -1;
	}
	if (s > 0)
		*out = s;
	return 0;
}

static enum MHD_Result serve_window(struct agent *ag, struct MHD_Connection *c,
				    struct window_ask *a, double dflt, const char *type)
{
	char why[256], *body;
	size_t len;
	unsigned int status;

	if (parse_seconds(c, dflt, &a->seconds, why, sizeof(why)))
		return text(c, MHD_HTTP_BAD_REQUEST, "%s\n", why);
	status = take_window(ag, a, &body, &len, why, sizeof(why));
	if (status != MHD_HTTP_OK)
		return text(c, status, "%s\n", why);
	return reply(c, MHD_HTTP_OK, type, body, len, 0);
}

/* ---- the other pages ---------------------------------------------------------- */

static enum MHD_Result index_page(struct agent *ag, struct MHD_Connection *c, const char *prefix)
{
	char *s = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return MHD_NO;
	fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pyspyc agent"
		   "</title></head><body>\n<h1>pyspyc agent on %s</h1>\n<p>Profiles: "
		   "<a href=\"%s/debug/pprof/profile?seconds=30\">profile</a> (CPU, pprof, "
		   "30 s); the other kinds of Go's index are not served.</p>\n", ag->host, prefix);
	pthread_mutex_lock(&ag->lock);
	fprintf(f, "<ul>\n");
	for (i = 0; i < ag->nsvcs; i++) {
		const struct svc_run *r = &ag->svcs[i];

		if (!live(r))
			continue;
		fprintf(f, "<li>%s%s: <a href=\"/t/%s/debug/pprof/profile?seconds=30\">profile</a>,"
			   " <a href=\"/flamegraph.svg?service=%s&amp;seconds=10\">flame graph</a>"
			   "</li>\n", r->name, r->paused ? " (paused)" : "", r->name, r->name);
	}
	pthread_mutex_unlock(&ag->lock);
	fprintf(f, "</ul>\n<p><a href=\"/targets\">targets</a> <a href=\"/metrics\">metrics</a>"
		   "</p>\n</body></html>\n");
	if (fclose(f)) {
		free(s);
		return MHD_NO;
	}
	return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", s, len, 0);
}

static enum MHD_Result targets(struct agent *ag, struct MHD_Connection *c)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	char addr[300], prefix[80], *s = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&s, &len);
	struct json j;

	if (!f)
		return MHD_NO;
	/* The address a scraper reached us at is the one to give back. */
	if (host && *host && strlen(host) < sizeof(addr))
		snprintf(addr, sizeof(addr), "%s", host);
	else
		snprintf(addr, sizeof(addr), "%s", ag->addr);
	json_init(&j, f);
	json_oneline(&j);
	json_array_begin(&j);
	pthread_mutex_lock(&ag->lock);
	for (i = 0; i < ag->nsvcs; i++) {
		const struct svc_run *r = &ag->svcs[i];

		if (!live(r))
			continue;
		snprintf(prefix, sizeof(prefix), "/t/%s", r->name);
		json_object_begin(&j);
		json_key(&j, "targets");
		json_array_begin(&j);
		json_string(&j, addr);
		json_array_end(&j);
		json_key(&j, "labels");
		json_object_begin(&j);
		json_key(&j, "service_name");
		json_string(&j, r->name);
		json_key(&j, "__profile_path_prefix__");
		json_string(&j, prefix);
		for (k = 0; k < r->conf->nlabels; k++) {
			json_key(&j, r->conf->labels[k].key);
			json_string(&j, r->conf->labels[k].value);
		}
		json_object_end(&j);
		json_object_end(&j);
	}
	pthread_mutex_unlock(&ag->lock);
	json_array_end(&j);
	fputc('\n', f);
	if (fclose(f)) {
		free(s);
		return MHD_NO;
	}
	return reply(c, MHD_HTTP_OK, "application/json", s, len, 0);
}

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The agent's own resident memory, from /proc/self/statm. */
static uint64_t rss_bytes(void)
{
	unsigned long long size, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%llu %llu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static enum MHD_Result metrics(struct agent *ag, struct MHD_Connection *c)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} per_svc[] = {
#define M(field, help) { "pyspyc_agent_" #field "_total", help, \
			  offsetof(struct session_stats, field) }
		M(samples, "Ticks at which a process's threads were looked at."),
		M(stacks, "Thread stacks counted."),
		M(errors, "Ticks or code objects that failed to read."),
		M(torn, "Stacks dropped because they changed while being read."),
		M(late, "Ticks skipped because the sampler fell behind."),
		M(dropped, "Stacks lost to a full table."),
		M(reads, "process_vm_readv calls."),
#undef M
	};
	struct session_stats *st;
	struct rusage ru;
	char *s = NULL;
	size_t len = 0, i, k, n;
	FILE *f;

	pthread_mutex_lock(&ag->lock);
	n = ag->nsvcs;
	st = calloc(n ? n : 1, sizeof(*st));
	f = open_memstream(&s, &len);
	if (!st || !f) {
		pthread_mutex_unlock(&ag->lock);
		free(st);
		if (f)
			fclose(f);
		free(s);
		return MHD_NO;
	}
	for (i = 0; i < n; i++)
		if (live(&ag->svcs[i]))
			session_stats_table(ag->svcs[i].eng->sess, ag->svcs[i].tab, &st[i]);
	for (k = 0; k < sizeof(per_svc) / sizeof(per_svc[0]); k++) {
		metric_head(f, per_svc[k].name, "counter", per_svc[k].help);
		for (i = 0; i < n; i++)
			if (live(&ag->svcs[i]))
				fprintf(f, "%s{service=\"%s\"} %llu\n", per_svc[k].name,
					ag->svcs[i].name,
					*(unsigned long long *)((char *)&st[i] + per_svc[k].off));
	}
	metric_head(f, "pyspyc_agent_processes", "gauge", "Processes selected and sampled now.");
	for (i = 0; i < n; i++)
		if (live(&ag->svcs[i]))
			fprintf(f, "pyspyc_agent_processes{service=\"%s\"} %u\n", ag->svcs[i].name,
				st[i].processes);
	metric_head(f, "pyspyc_agent_paused", "gauge", "1 while a service is paused.");
	for (i = 0; i < n; i++)
		if (live(&ag->svcs[i]))
			fprintf(f, "pyspyc_agent_paused{service=\"%s\"} %d\n", ag->svcs[i].name,
				ag->svcs[i].paused);
	metric_head(f, "pyspyc_agent_services", "gauge", "Services sampled.");
	for (i = k = 0; i < n; i++)
		k += live(&ag->svcs[i]) && !ag->svcs[i].paused;
	fprintf(f, "pyspyc_agent_services %zu\n", k);
	metric_head(f, "pyspyc_agent_windows_written_total", "counter", "Windows written to disk.");
	fprintf(f, "pyspyc_agent_windows_written_total %llu\n",
		(unsigned long long)ag->windows_written);
	metric_head(f, "pyspyc_agent_write_errors_total", "counter", "Windows that failed to write.");
	fprintf(f, "pyspyc_agent_write_errors_total %llu\n", (unsigned long long)ag->write_errors);
	metric_head(f, "pyspyc_agent_disk_bytes", "gauge",
		    "Bytes of the windows under the state directory, after the last retention.");
	fprintf(f, "pyspyc_agent_disk_bytes %llu\n", (unsigned long long)ag->disk_bytes);
	metric_head(f, "pyspyc_agent_disk_short", "gauge",
		    "1 while windows are not written for want of room.");
	fprintf(f, "pyspyc_agent_disk_short %d\n", ag->disk_short);
	metric_head(f, "pyspyc_agent_open_requests", "gauge", "Profile requests waiting.");
	fprintf(f, "pyspyc_agent_open_requests %u\n", ag->nreqs);
	metric_head(f, "pyspyc_agent_http_requests_total", "counter", "HTTP requests received.");
	fprintf(f, "pyspyc_agent_http_requests_total %llu\n", (unsigned long long)ag->http_requests);
	pthread_mutex_unlock(&ag->lock);
	free(st);
	getrusage(RUSAGE_SELF, &ru);
	metric_head(f, "process_cpu_seconds_total", "counter",
		    "User and system CPU time of the agent, in seconds.");
	fprintf(f, "process_cpu_seconds_total %.6f\n",
		(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	metric_head(f, "process_resident_memory_bytes", "gauge", "The agent's resident memory.");
	fprintf(f, "process_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes());
	if (fclose(f)) {
		free(s);
		return MHD_NO;
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", s, len, 0);
}

/* POST /pause, /resume: every service, or ?service=NAME. */
static enum MHD_Result pause_resume(struct agent *ag, struct MHD_Connection *c, int pause)
{
	const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");
	size_t i, n = 0, late = 0;

	pthread_mutex_lock(&ag->lock);
	if (name && !find_svc(ag, name, strlen(name))) {
		pthread_mutex_unlock(&ag->lock);
		return text(c, MHD_HTTP_NOT_FOUND, "no service '%.64s'\n", name);
	}
	for (i = 0; i < ag->nsvcs; i++) {
		struct svc_run *r = &ag->svcs[i];

		if (!live(r) || (name && strcmp(r->name, name)))
			continue;
		r->paused = pause;
		n++;
	}
	for (i = 0; i < ag->nengines; i++)
		agent_engine_give(ag, ag->engines[i]);
	/* The reply means it is done: after a 200 to /pause no sample of a
	 * paused service is counted any more (the engines took the new set). */
	for (i = 0; i < ag->nengines; i++)
		if (session_sync(ag->engines[i]->sess, AGENT_SYNC_NS))
			late++;
	pthread_mutex_unlock(&ag->lock);
	if (late)
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%zu engine%s did not take it in time\n",
			    late, late == 1 ? "" : "s");
	return text(c, MHD_HTTP_OK, "%s %zu service%s\n", pause ? "paused" : "resumed", n,
		    n == 1 ? "" : "s");
}

/* ---- routing -------------------------------------------------------------- */

/* Constant time in the token's length: no early exit on a mismatch. */
static int token_ok(const char *want, const char *auth)
{
	size_t i, wl = strlen(want), al;
	unsigned char d = 0;

	if (!auth || strncasecmp(auth, "Bearer ", 7))
		return 0;
	auth += 7;
	al = strlen(auth);
	for (i = 0; i < wl; i++)
		d |= (unsigned char)(want[i] ^ (i < al ? auth[i] : 0));
	return !d && al == wl;
}

static int authorized(struct agent *ag, struct MHD_Connection *c)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	int ok;

	pthread_mutex_lock(&ag->lock);
	if (ag->conf.token)
		ok = token_ok(ag->conf.token, auth);
	else
		ok = !ag->need_token;
	pthread_mutex_unlock(&ag->lock);
	return ok;
}

static const char *const go_kinds[] = {
	"allocs", "block", "cmdline", "goroutine", "heap", "mutex", "symbol", "threadcreate",
	"trace", "delta_heap", "delta_block", "delta_mutex", NULL,
};

static enum MHD_Result route(struct agent *ag, struct MHD_Connection *c, const char *url,
			     const char *method)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	struct window_ask a = { 0 };
	const char *rest = url;
	size_t i;

	if (!strcmp(url, "/pause") || !strcmp(url, "/resume")) {
		if (!post)
			return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
				     strdup("use POST\n"), 9, 2);
		return pause_resume(ag, c, url[1] == 'p');
	}
	if (!get)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
			     strdup("use GET\n"), 8, 1);
	if (!strcmp(url, "/") || !strcmp(url, "/debug/pprof") || !strcmp(url, "/debug/pprof/"))
		return index_page(ag, c, "");
	if (!strcmp(url, "/targets"))
		return targets(ag, c);
	if (!strcmp(url, "/metrics"))
		return metrics(ag, c);
	if (!strcmp(url, "/flamegraph.svg")) {
		const char *svc = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");

		a.service = svc && *svc ? svc : NULL;
		a.service_len = a.service ? strlen(a.service) : 0;
		a.format = out_format_by_name("flamegraph");
		a.mark = !a.service;
		return serve_window(ag, c, &a, SVG_DEFAULT_SECONDS, "image/svg+xml");
	}
	/* /t/SERVICE/debug/pprof/... */
	if (!strncmp(url, "/t/", 3)) {
		const char *slash = strchr(url + 3, '/');

		if (!slash || slash == url + 3)
			return text(c, MHD_HTTP_NOT_FOUND, "not found: %.128s\n", url);
		a.service = url + 3;
		a.service_len = (size_t)(slash - a.service);
		rest = slash;
		pthread_mutex_lock(&ag->lock);
		i = find_svc(ag, a.service, a.service_len) != NULL;
		pthread_mutex_unlock(&ag->lock);
		if (!i)
			return text(c, MHD_HTTP_NOT_FOUND, "no service '%.*s' (GET /targets lists "
				    "them)\n", (int)(a.service_len > 64 ? 64 : a.service_len),
				    a.service);
		if (!strcmp(rest, "/debug/pprof") || !strcmp(rest, "/debug/pprof/"))
			return index_page(ag, c, "");
	}
	if (!strcmp(rest, "/debug/pprof/profile")) {
		a.format = out_format_by_name("pprof");
		a.mark = !a.service;
		return serve_window(ag, c, &a, PPROF_DEFAULT_SECONDS, "application/octet-stream");
	}
	if (!strncmp(rest, "/debug/pprof/", 13))
		for (i = 0; go_kinds[i]; i++)
			if (!strcmp(rest + 13, go_kinds[i]))
				return text(c, MHD_HTTP_NOT_FOUND, "profile %s: pyspyc serves only the "
					    "CPU profile, /debug/pprof/profile\n", go_kinds[i]);
	return text(c, MHD_HTTP_NOT_FOUND, "not found: %.128s\n", url);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	static int seen;
	struct agent *ag = cls;

	(void)version;
	(void)upload;
	/* The first call only announces the request; a body is read and
	 * dropped; the answer comes on the call after. */
	if (!*con_cls) {
		*con_cls = &seen;
		pthread_mutex_lock(&ag->lock);
		ag->http_requests++;
		ag->inflight++;
		pthread_mutex_unlock(&ag->lock);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!authorized(ag, c))
		return text(c, MHD_HTTP_UNAUTHORIZED, "a bearer token is needed: 'Authorization: "
			    "Bearer TOKEN'\n");
	return route(ag, c, url, method);
}

/* A request's answer is sent (or it failed): agent_http_stop waits for
 * every one. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	struct agent *ag = cls;

	(void)c;
	(void)why;
	if (!*con_cls)
		return;
	*con_cls = NULL;
	pthread_mutex_lock(&ag->lock);
	ag->inflight--;
	pthread_cond_broadcast(&ag->wake);
	pthread_mutex_unlock(&ag->lock);
}

/* ---- start and stop ----------------------------------------------------------- */

static int is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

static void bound_address(const struct agent_conf *c, unsigned int port, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (c->listen.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&c->listen)->sin6_addr, host,
			  sizeof(host));
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->listen)->sin_addr, host,
			  sizeof(host));
		snprintf(out, len, "%s:%u", host, port);
	}
}

int agent_http_start(struct agent *ag, const struct agent_conf *c, char *why, size_t len)
{
	const union MHD_DaemonInfo *info;
	pthread_condattr_t ca;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | MHD_USE_ITC;
	int fd, one = 1;

	/* Waits run on the monotonic clock, as the agent's deadlines do. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&ag->wake);
	pthread_cond_init(&ag->wake, &ca);
	pthread_condattr_destroy(&ca);
	ag->httpd = NULL;
	ag->port = 0;
	if (c->listen.ss_family == AF_UNSPEC)
		return 0;
	ag->need_token = !is_loopback(&c->listen);
	/* The socket is ours, so that a failure names its reason. */
	fd = socket(c->listen.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)&c->listen, c->listen_len) || listen(fd, 64)) {
		int e = errno;

		snprintf(why, len, "cannot listen on %s: %s", c->listen_text, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (c->listen.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* A connection waits in its handler as long as its window lasts. */
	ag->httpd = MHD_start_daemon(flags, 0, NULL, NULL, handle, ag,
				     MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_NOTIFY_COMPLETED, completed, ag,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(MAX_SECONDS + 120),
				     MHD_OPTION_END);
	if (!ag->httpd) {
		snprintf(why, len, "cannot serve HTTP on %s: the server did not start",
			 c->listen_text);
		close(fd);
		return -EIO;
	}
	info = MHD_get_daemon_info(ag->httpd, MHD_DAEMON_INFO_BIND_PORT);
	ag->port = info ? info->port : 0;
	bound_address(c, ag->port, ag->addr, sizeof(ag->addr));
	return 0;
}

void agent_http_stop(struct agent *ag)
{
	MHD_socket fd = MHD_INVALID_SOCKET;
	int64_t until = mono_ns() + (int64_t)STOP_WAIT_S * 1000000000;

	/* No new connections; the requests open end their wait now and
	 * answer with what they have; then the server stops. */
	if (ag->httpd)
		fd = MHD_quiesce_daemon(ag->httpd);
	pthread_mutex_lock(&ag->lock);
	ag->stopping = 1;
	pthread_cond_broadcast(&ag->wake);
	while (ag->inflight && mono_ns() < until) {
		struct timespec ts = { .tv_sec = until / 1000000000, .tv_nsec = until % 1000000000 };

		pthread_cond_timedwait(&ag->wake, &ag->lock, &ts);
	}
	pthread_mutex_unlock(&ag->lock);
	if (ag->httpd)
		MHD_stop_daemon(ag->httpd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	ag->httpd = NULL;
}
