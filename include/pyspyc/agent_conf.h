/* agent_conf.h - the agent's configuration: an INI file, its drop-ins and
 * the command line, checked whole before anything starts.
 *
 * The file (libinih's syntax: "[section]", "key = value", comments from ';'
 * or '#' at a line's start) has one [agent] section and one
 * [service NAME] section per service.  Drop-ins (the files named *.conf in
 * the directory FILE.d, in name order) are read after it: a key set again there overrides the earlier
 * value; a key set twice in one file is an error.  The command line comes
 * last and sets [agent] keys (agent_conf_set), or an implicit service
 * (agent_conf_set on the section AGENT_CLI_SERVICE).
 *
 * A key of [agent] that is also a service key (rate, window, labels, idle,
 * gil, threads, folded, pid_label, thread_label, keep_age) is the default
 * of every service that does not set it; keep_bytes in [agent] bounds all
 * services together and in a service that service alone; listen,
 * state_dir, token, min_free and rediscover are [agent]'s only.
 *
 * Errors: the first one is kept, as one line naming the file and line
 * ("agent.conf:12: rate: not a number: 'fast'"), and every call after it
 * returns the same error without doing anything.  Nothing here prints,
 * opens a socket or looks at a process.
 */
#ifndef PYSPYC_AGENT_CONF_H
#define PYSPYC_AGENT_CONF_H

#include <netinet/in.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define AGENT_LABELS_MAX 16
#define AGENT_PIDS_MAX 64
#define AGENT_SERVICES_MAX 256
/* The section of the service the command line's selectors make. */
#define AGENT_CLI_SERVICE "service default"

struct agent_label {
	char *key, *value;
};

/* The keys, each a bit of a section's `set` mask. */
enum agent_key {
	AK_LISTEN, AK_STATE_DIR, AK_TOKEN, AK_KEEP_BYTES, AK_KEEP_AGE, AK_MIN_FREE,
	AK_REDISCOVER, AK_RATE, AK_WINDOW, AK_LABELS, AK_ENABLED, AK_IDLE, AK_GIL,
	AK_THREADS, AK_FOLDED, AK_PID_LABEL, AK_THREAD_LABEL, AK_PID, AK_PIDFILE,
	AK_MATCH, AK_UNIT, AK_CGROUP, AK_BACKEND, AK_COUNT
};

struct agent_service {
	char *name;
	/* How its processes are chosen: any that one of these selects.  pid
	 * and pidfile select a process and its descendants (a server's master
	 * and its workers); match a regular expression (POSIX extended) on
	 * the command line, its arguments joined by spaces; unit the
	 * processes in a systemd unit's control group and the groups under
	 * it; cgroup the same for a control group given by its path. */
	pid_t pids[AGENT_PIDS_MAX];
	size_t npids;
	char *pidfile;
	char *match;
	regex_t match_re;
	int has_re;
	char *unit;   /* with its ".service" (or other unit type) suffix */
	char *cgroup; /* relative to the cgroup2 mount, starting with '/' */
	/* Sampling and output. */
	double rate_hz;
	double window_s;
	int enabled, idle, gil, threads, folded, pid_label, thread_label;
	struct agent_label labels[AGENT_LABELS_MAX];
	size_t nlabels;
	uint64_t keep_bytes; /* this service's files; 0: no bound of its own */
	double keep_age_s;   /* 0: kept whatever their age (bytes bound them) */
	uint32_t set;        /* keys this section set (1 << enum agent_key) */
	uint32_t set_here;   /* ... in the file being read now */
	int line;            /* where the section began, for messages */
	char *file;
};

struct agent_conf {
	/* [agent] */
	struct sockaddr_storage listen; /* ss_family AF_UNSPEC: no HTTP */
	socklen_t listen_len;
	char *listen_text;   /* as given, for messages */
	char *state_dir;
	char *token;         /* NULL: none */
	uint64_t keep_bytes; /* every service's files together */
	uint64_t min_free_bytes;
	double min_free_pct; /* of the file system; used when min_free_bytes 0 */
	double rediscover_s;
	char *backend;       /* "auto", "bpf" or "user"; NULL: the default */
	struct agent_service defaults; /* [agent]'s service keys */
	struct agent_service *services;
	size_t nservices, cap;
	/* Parsing state. */
	char *origin;         /* the first file read, or "command line" */
	char err[512];
	int failed;
	const char *cur_file;
	int cur_line;
	int cur_cont;         /* the current line continues the last value */
	struct agent_service *cur; /* the section being read; NULL: [agent] */
	int in_section;       /* a section header was seen in this file */
	enum agent_key last_key;
	int have_last;
};

/* 1 when name may name a service (and its directory under state_dir):
 * 1 to 40 letters, digits, '_', '.' or '-', not starting with '.' or
 * '-'. */
int agent_service_name_ok(const char *name);
/* Set up conf with the built-in defaults.  0 or -ENOMEM. */
int agent_conf_init(struct agent_conf *conf);
void agent_conf_release(struct agent_conf *conf);

/* Read the INI text of file name (used in messages only).  0, or -EINVAL
 * with conf->err set. */
int agent_conf_parse(struct agent_conf *conf, const char *name, const char *text, size_t len);

/* Read path and then its drop-ins, the files ending ".conf" in the
 * directory path + ".d", in name order (a
 * missing directory is none; an unreadable file or directory is an error).
 * 0 or -errno with conf->err set. */
int agent_conf_load(struct agent_conf *conf, const char *path);

/* Set key to value in section ("agent", or "service NAME"), as the line of a
 * file named where would ("command line").  0 or -EINVAL with conf->err
 * set. */
int agent_conf_set(struct agent_conf *conf, const char *where, const char *section,
		   const char *key, const char *value);

/* After everything is read: every service gets [agent]'s defaults for the
 * keys it did not set, and the whole is checked (a service selects
 * something; a listen address that is not loopback has a token; some
 * service exists).  0 or -EINVAL with conf->err set. */
int agent_conf_finish(struct agent_conf *conf);

/* Value parsers (exposed for the tests).  0 or -EINVAL. */
int agent_parse_size(const char *s, uint64_t *out);
int agent_parse_duration(const char *s, double *out);
int agent_parse_bool(const char *s, int *out);

/* The name of key k as the file spells it. */
const char *agent_key_name(enum agent_key k);

#endif
