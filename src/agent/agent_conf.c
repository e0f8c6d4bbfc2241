/* agent_conf.c - the agent's configuration (agent_conf.h).
 *
 * libinih splits the file into (section, key, value); everything else is
 * here: which keys exist where, their values checked strictly, the first
 * error as one line with its file and line.  libinih's handler is not told
 * the line (Debian builds it without INI_HANDLER_LINENO), so the text is
 * handed to it through a reader of our own, which counts lines, notes
 * whether a line continues the previous value (it starts with blanks), and
 * refuses a line longer than libinih's buffer instead of letting the rest
 * of it be read as a line of its own.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/agent_conf.h"
#include "pyspyc/cli.h"

#define CONF_FILE_MAX (1024 * 1024) /* bytes of one file */
#define DROPINS_MAX 256
#define TOKEN_MIN 16

enum where { IN_AGENT = 1, IN_SERVICE = 2, IN_BOTH = 3 };

enum vtype { V_LISTEN, V_PATH, V_TOKEN, V_SIZE, V_DURATION, V_SIZE_PCT, V_RATE, V_LABELS,
	     V_BOOL, V_PIDS, V_REGEX, V_UNIT, V_CGROUP, V_BACKEND };

/* A service's own field for the key (a bool: int; a rate or duration:
 * double), set by set_value and copied from [agent]'s by inherit. */
#define F(f) .field = 1, .off = offsetof(struct agent_service, f)

static const struct key_row {
	const char *name;
	enum where where;
	enum vtype type;
	int list;   /* takes continuation lines */
	int field;  /* off is a field of struct agent_service */
	size_t off;
} keys[AK_COUNT] = {
	[AK_LISTEN] = { "listen", IN_AGENT, V_LISTEN, 0, 0, 0 },
	[AK_STATE_DIR] = { "state_dir", IN_AGENT, V_PATH, 0, 0, 0 },
	[AK_TOKEN] = { "token", IN_AGENT, V_TOKEN, 0, 0, 0 },
	[AK_KEEP_BYTES] = { "keep_bytes", IN_BOTH, V_SIZE, 0, 0, 0 },
	[AK_KEEP_AGE] = { "keep_age", IN_BOTH, V_DURATION, 0, F(keep_age_s) },
	[AK_MIN_FREE] = { "min_free", IN_AGENT, V_SIZE_PCT, 0, 0, 0 },
	[AK_REDISCOVER] = { "rediscover", IN_AGENT, V_DURATION, 0, 0, 0 },
	[AK_RATE] = { "rate", IN_BOTH, V_RATE, 0, F(rate_hz) },
	[AK_WINDOW] = { "window", IN_BOTH, V_DURATION, 0, F(window_s) },
	[AK_LABELS] = { "labels", IN_BOTH, V_LABELS, 1, 0, 0 },
	[AK_ENABLED] = { "enabled", IN_SERVICE, V_BOOL, 0, F(enabled) },
	[AK_IDLE] = { "idle", IN_BOTH, V_BOOL, 0, F(idle) },
	[AK_GIL] = { "gil", IN_BOTH, V_BOOL, 0, F(gil) },
	[AK_THREADS] = { "threads", IN_BOTH, V_BOOL, 0, F(threads) },
	[AK_FOLDED] = { "folded", IN_BOTH, V_BOOL, 0, F(folded) },
	[AK_PID_LABEL] = { "pid_label", IN_BOTH, V_BOOL, 0, F(pid_label) },
	[AK_THREAD_LABEL] = { "thread_label", IN_BOTH, V_BOOL, 0, F(thread_label) },
	[AK_PID] = { "pid", IN_SERVICE, V_PIDS, 1, 0, 0 },
	[AK_PIDFILE] = { "pidfile", IN_SERVICE, V_PATH, 0, 0, 0 },
	[AK_MATCH] = { "match", IN_SERVICE, V_REGEX, 0, 0, 0 },
	[AK_UNIT] = { "unit", IN_SERVICE, V_UNIT, 0, 0, 0 },
	[AK_CGROUP] = { "cgroup", IN_SERVICE, V_CGROUP, 0, 0, 0 },
	[AK_BACKEND] = { "backend", IN_AGENT, V_BACKEND, 0, 0, 0 },
};
#undef F

static int *bool_field(struct agent_service *s, enum agent_key k)
{
	return (int *)((char *)s + keys[k].off);
}

static double *double_field(struct agent_service *s, enum agent_key k)
{
	return (double *)((char *)s + keys[k].off);
}

/* Bounds of the numbers, with why. */
#define RATE_MAX 10000.0       /* as record's; a daemon wants far less */
#define WINDOW_MIN 1.0         /* a file a second at most per service */
#define WINDOW_MAX 86400.0
#define REDISCOVER_MIN 0.1
#define REDISCOVER_MAX 3600.0
#define KEEP_AGE_MAX (3650.0 * 86400.0)

const char *agent_key_name(enum agent_key k)
{
	return (unsigned)k < AK_COUNT ? keys[k].name : "?";
}

/* The key called name, or AK_COUNT. */
static enum agent_key key_of(const char *name)
{
	enum agent_key k;

	for (k = 0; k < AK_COUNT; k++)
		if (!strcmp(name, keys[k].name))
			break;
	return k;
}

static int fail(struct agent_conf *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keep the first error: "FILE:LINE: ..." (or "FILE: ..." with no line). */
static int fail(struct agent_conf *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return -EINVAL;
	c->failed = 1;
	if (c->cur_line > 0)
		n = snprintf(c->err, sizeof(c->err), "%s:%d: ", c->cur_file ? c->cur_file : "?",
			     c->cur_line);
	else
		n = snprintf(c->err, sizeof(c->err), "%s: ", c->cur_file ? c->cur_file : "?");
	if (n < 0 || (size_t)n >= sizeof(c->err))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A value as messages show it: at most 60 bytes, control bytes as '?'. */
static const char *shown(const char *v, char *buf, size_t size)
{
	size_t i, n = strlen(v);
	size_t max = size - 4 < 60 ? size - 4 : 60;

	for (i = 0; i < n && i < max; i++)
		buf[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	if (n > max) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static void service_release(struct agent_service *s)
{
	size_t i;

	free(s->name);
	free(s->pidfile);
	free(s->match);
	if (s->has_re)
		regfree(&s->match_re);
	free(s->unit);
	free(s->cgroup);
	free(s->file);
	for (i = 0; i < s->nlabels; i++) {
		free(s->labels[i].key);
		free(s->labels[i].value);
	}
	memset(s, 0, sizeof(*s));
}

static void service_defaults(struct agent_service *s)
{
	s->rate_hz = 100;
	s->window_s = 60;
	s->enabled = 1;
	s->keep_age_s = 7 * 86400.0;
}

static int set_listen_text(struct agent_conf *c, const char *text);

int agent_conf_init(struct agent_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	service_defaults(&conf->defaults);
	conf->keep_bytes = 1ULL << 30;
	conf->min_free_pct = 5.0;
	conf->rediscover_s = 5.0;
	conf->state_dir = strdup("/var/lib/pyspyc");
	if (!conf->state_dir || set_listen_text(conf, "127.0.0.1:6060")) {
		agent_conf_release(conf);
		return -ENOMEM;
	}
	return 0;
}

void agent_conf_release(struct agent_conf *conf)
{
	size_t i;

	if (!conf)
		return;
	for (i = 0; i < conf->nservices; i++)
		service_release(&conf->services[i]);
	free(conf->services);
	service_release(&conf->defaults);
	free(conf->listen_text);
	free(conf->origin);
	free(conf->state_dir);
	free(conf->backend);
	free(conf->token);
	memset(conf, 0, sizeof(*conf));
}

/* ---- values ------------------------------------------------------------ */

int agent_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* A number with an optional unit from units (the unit's name, its factor),
 * no blank between them; no unit multiplies by 1. */
struct unit_row {
	const char *name;
	double factor;
};

static int parse_with_units(const char *s, const struct unit_row *units, size_t n, double *out)
{
	char num[64];
	const char *u = s;
	double v;
	size_t i, len;

	while (*u && (isdigit((unsigned char)*u) || *u == '.'))
		u++;
	len = (size_t)(u - s);
	if (!len || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len);
	num[len] = '\0';
	if (cli_parse_double(num, &v) || v < 0)
		return -EINVAL;
	if (!*u) {
		*out = v;
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!strcmp(u, units[i].name)) {
			*out = v * units[i].factor;
			return 0;
		}
	return -EINVAL;
}

static const struct unit_row size_units[] = {
	{ "K", 1024.0 }, { "KiB", 1024.0 }, { "M", 1048576.0 }, { "MiB", 1048576.0 },
	{ "G", 1073741824.0 }, { "GiB", 1073741824.0 }, { "T", 1099511627776.0 },
	{ "TiB", 1099511627776.0 }, { "B", 1.0 },
};

int agent_parse_size(const char *s, uint64_t *out)
{
	double v;

	if (parse_with_units(s, size_units, sizeof(size_units) / sizeof(size_units[0]), &v) ||
	    v >= 0x1p63 || v != floor(v))
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

static const struct unit_row time_units[] = {
	{ "ms", 0.001 }, { "s", 1.0 }, { "m", 60.0 }, { "min", 60.0 },
	{ "h", 3600.0 }, { "d", 86400.0 },
};

int agent_parse_duration(const char *s, double *out)
{
	return parse_with_units(s, time_units, sizeof(time_units) / sizeof(time_units[0]), out);
}

/* "HOST:PORT": an IPv4 address, "[IPv6]", or "localhost"; port 0 takes any
 * free port (the agent logs the one it got).  "none" or "": no HTTP. */
static int set_listen_text(struct agent_conf *c, const char *text)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	long long port;
	size_t hl;
	char *copy;

	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	if (!*text || !strcmp(text, "none")) {
		memset(&c->listen, 0, sizeof(c->listen));
		c->listen_len = 0;
		goto ok;
	}
	colon = strrchr(text, ':');
	if (!colon || cli_parse_ll(colon + 1, &port) || port < 0 || port > 65535)
		goto bad;
	hl = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hl < 3 || text[hl - 1] != ']' || hl - 2 >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, text, hl);
		host[hl] = '\0';
		if (!strcmp(host, "localhost"))
			strcpy(host, "127.0.0.1");
	}
	memset(&c->listen, 0, sizeof(c->listen));
	if (text[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->listen;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto bad;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		c->listen_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&c->listen;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		c->listen_len = sizeof(*a);
	}
ok:
	free(c->listen_text);
	c->listen_text = copy;
	return 0;
bad:
	free(copy);
	return -EINVAL;
}

static int listen_is_loopback(const struct agent_conf *c)
{
	if (c->listen.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&c->listen;

		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (c->listen.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&c->listen;

		return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
	}
	return 1; /* no HTTP */
}

/* Prometheus's label name syntax; names starting "__" are its own. */
static int label_key_ok(const char *k, size_t n)
{
	size_t i;

	if (!n || n > 64 || (n >= 2 && k[0] == '_' && k[1] == '_'))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)k[i];

		if (!(isalpha(ch) || ch == '_' || (i && isdigit(ch))))
			return 0;
	}
	return 1;
}

static char *trimmed_dup(const char *s, size_t n)
{
	char *d;

	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* "k=v, k2=v2" (a continuation line adds more): a key given again takes
 * the new value. */
static int add_labels(struct agent_conf *c, struct agent_service *s, const char *v)
{
	char show[80];

	while (*v) {
		const char *end = strchr(v, ','), *eq;
		size_t n = end ? (size_t)(end - v) : strlen(v), i;
		char *key, *val;

		eq = memchr(v, '=', n);
		if (!eq) {
			char *t = trimmed_dup(v, n);

			if (t && !*t) { /* an empty item: "a=1,," */
				free(t);
				v += n + (end ? 1 : 0);
				continue;
			}
			fail(c, "labels: '%s' is not KEY=VALUE", shown(t ? t : "", show, sizeof(show)));
			free(t);
			return -EINVAL;
		}
		key = trimmed_dup(v, (size_t)(eq - v));
		val = trimmed_dup(eq + 1, n - (size_t)(eq - v) - 1);
		if (!key || !val) {
			free(key);
			free(val);
			return fail(c, "out of memory");
		}
		if (!label_key_ok(key, strlen(key))) {
			fail(c, "labels: '%s' is not a label name (letters, digits and '_', not "
				"starting with a digit or '__')", shown(key, show, sizeof(show)));
			free(key);
			free(val);
			return -EINVAL;
		}
		if (!strcmp(key, "service_name") || !strcmp(key, "hostname") ||
		    !strcmp(key, "pid") || !strcmp(key, "thread")) {
			fail(c, "labels: '%s' is set by the agent itself", key);
			free(key);
			free(val);
			return -EINVAL;
		}
		for (i = 0; i < s->nlabels; i++)
			if (!strcmp(s->labels[i].key, key))
				break;
		if (i == s->nlabels && s->nlabels == AGENT_LABELS_MAX) {
			free(key);
			free(val);
			return fail(c, "labels: more than %d labels", AGENT_LABELS_MAX);
		}
		if (i < s->nlabels) {
			free(s->labels[i].key);
			free(s->labels[i].value);
		} else {
			s->nlabels++;
		}
		s->labels[i].key = key;
		s->labels[i].value = val;
		v += n + (end ? 1 : 0);
	}
	return 0;
}

static int add_pids(struct agent_conf *c, struct agent_service *s, const char *v)
{
	char item[32], show[80];

	while (*v) {
		long long pid;
		size_t n;

		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		if (!*v)
			break;
		n = strcspn(v, ", \t");
		if (n >= sizeof(item) || (memcpy(item, v, n), item[n] = '\0', cli_parse_ll(item, &pid)) ||
		    pid < 1 || pid > INT_MAX)
			return fail(c, "pid: '%s' is not a process id", shown(v, show, sizeof(show)));
		if (s->npids == AGENT_PIDS_MAX)
			return fail(c, "pid: more than %d process ids", AGENT_PIDS_MAX);
		s->pids[s->npids++] = (pid_t)pid;
		v += n;
	}
	return 0;
}

/* A unit name as systemd spells one: no '/', a known type suffix
 * (".service" is added when there is none). */
static int set_unit(struct agent_conf *c, struct agent_service *s, const char *v)
{
	static const char *const types[] = { ".service", ".scope", ".slice" };
	char show[80];
	size_t i, n = strlen(v);
	int typed = 0;

	if (!n || n > 200 || strchr(v, '/') || v[0] == '.')
		return fail(c, "unit: '%s' is not a unit name", shown(v, show, sizeof(show)));
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
			return fail(c, "unit: '%s' is not a unit name", shown(v, show, sizeof(show)));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t t = strlen(types[i]);

		if (n > t && !strcmp(v + n - t, types[i]))
			typed = 1;
	}
	free(s->unit);
	s->unit = malloc(n + 9);
	if (!s->unit)
		return fail(c, "out of memory");
	snprintf(s->unit, n + 9, "%s%s", v, typed ? "" : ".service");
	return 0;
}

/* A control group's path, relative to the cgroup2 mount ("/sys/fs/cgroup"
 * in front is taken off); no "." or ".." components. */
static int set_cgroup(struct agent_conf *c, struct agent_service *s, const char *v)
{
	static const char mount[] = "/sys/fs/cgroup";
	char show[80];
	const char *p = v;
	char *d;

	if (!strncmp(p, mount, sizeof(mount) - 1) && (!p[sizeof(mount) - 1] || p[sizeof(mount) - 1] == '/'))
		p += sizeof(mount) - 1;
	while (*p == '/')
		p++;
	if (strlen(p) > PATH_MAX / 2)
		return fail(c, "cgroup: '%s' is too long", shown(v, show, sizeof(show)));
	d = malloc(strlen(p) + 2);
	if (!d)
		return fail(c, "out of memory");
	d[0] = '/';
	strcpy(d + 1, p);
	for (p = d + 1; *p;) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
		    (n == 0 && p[0] == '/')) {
			free(d);
			return fail(c, "cgroup: '%s' is not a control group path",
				    shown(v, show, sizeof(show)));
		}
		p += n;
		if (*p == '/')
			p++;
	}
	free(s->cgroup);
	s->cgroup = d;
	return 0;
}

/* glibc's regcomp expands repetitions into copies of what they repeat:
 * nested counts multiply ("((a{100}){100}){100}{100}" took 10 GB and more
 * than 30 s here), and so do repetitions stacked on one another ("s+++"
 * with 30 '+' took 4 GB).  A pattern is refused when one repetition
 * follows another directly (undefined in POSIX, and no lazy or possessive
 * matching there), or when the product of all its counts (each interval's
 * larger bound, nested or not) passes REGEX_WEIGHT_MAX; bracket
 * expressions and escapes are skipped.  Returns 0, 1 (stacked) or 2
 * (counts). */
#define REGEX_WEIGHT_MAX 4096

static int regex_check(const char *v)
{
	double w = 1;
	const char *p = v;
	int after_rep = 0; /* the last thing was a repetition */

	while (*p) {
		int rep = 0;

		if (*p == '\\') {
			p += p[1] ? 2 : 1;
			after_rep = 0;
			continue;
		}
		if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']')
				p++;
			if (*p)
				p++;
			after_rep = 0;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?') {
			rep = 1;
		} else if (*p == '{') {
			double a = 0, b = 0;
			const char *q = p + 1;

			while (*q >= '0' && *q <= '9' && a < 1e9)
				a = a * 10 + (*q++ - '0');
			if (*q == ',') {
				q++;
				while (*q >= '0' && *q <= '9' && b < 1e9)
					b = b * 10 + (*q++ - '0');
			}
			if (*q == '}') {
				rep = 1;
				w *= (a > b ? a : b) > 1 ? (a > b ? a : b) : 1;
				p = q;
			}
		}
		if (rep && after_rep)
			return 1;
		if (w > REGEX_WEIGHT_MAX)
			return 2;
		after_rep = rep;
		p++;
	}
	return 0;
}

static int set_string(struct agent_conf *c, char **dst, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return fail(c, "out of memory");
	free(*dst);
	*dst = d;
	return 0;
}

static int set_value(struct agent_conf *c, struct agent_service *s, enum agent_key k,
		     const char *v)
{
	const char *name = keys[k].name;
	char show[80];
	uint64_t size;
	double d;
	int b, err;

	switch (keys[k].type) {
	case V_LISTEN:
		err = set_listen_text(c, v);
		if (err == -ENOMEM)
			return fail(c, "out of memory");
		if (err)
			return fail(c, "listen: '%s' is not ADDRESS:PORT (an IPv4 address, "
				       "[an IPv6 address] or localhost; or none)",
				    shown(v, show, sizeof(show)));
		return 0;
	case V_PATH:
		if (v[0] != '/')
			return fail(c, "%s: '%s' is not an absolute path", name,
				    shown(v, show, sizeof(show)));
		if (strlen(v) >= PATH_MAX - 64)
			return fail(c, "%s: the path is too long", name);
		return set_string(c, k == AK_STATE_DIR ? &c->state_dir : &s->pidfile, v);
	case V_TOKEN:
		if (strlen(v) < TOKEN_MIN || strlen(v) > 256 || strpbrk(v, " \t\r\n"))
			return fail(c, "token: must be %d to 256 characters with no blanks", TOKEN_MIN);
		return set_string(c, &c->token, v);
	case V_SIZE:
		if (agent_parse_size(v, &size))
			return fail(c, "%s: '%s' is not a size (bytes, or a number with K, M, G "
				       "or T)", name, shown(v, show, sizeof(show)));
		if (s == &c->defaults)
			c->keep_bytes = size;
		else
			s->keep_bytes = size;
		return 0;
	case V_SIZE_PCT: {
		size_t n = strlen(v);

		if (n > 1 && v[n - 1] == '%') {
			char num[32];

			if (n - 1 >= sizeof(num))
				goto bad_pct;
			memcpy(num, v, n - 1);
			num[n - 1] = '\0';
			if (cli_parse_double(num, &d) || d < 0 || d >= 100)
				goto bad_pct;
			c->min_free_pct = d;
			c->min_free_bytes = 0;
			return 0;
		}
		if (agent_parse_size(v, &size))
			goto bad_pct;
		c->min_free_bytes = size;
		c->min_free_pct = 0;
		return 0;
bad_pct:
		return fail(c, "min_free: '%s' is not a size or a percentage under 100%%",
			    shown(v, show, sizeof(show)));
	}
	case V_DURATION:
		if (agent_parse_duration(v, &d))
			return fail(c, "%s: '%s' is not a duration (seconds, or a number with ms, "
				       "s, m, h or d)", name, shown(v, show, sizeof(show)));
		if (k == AK_WINDOW && (d < WINDOW_MIN || d > WINDOW_MAX))
			return fail(c, "window: must be from 1s to 1d");
		if (k == AK_REDISCOVER && (d < REDISCOVER_MIN || d > REDISCOVER_MAX))
			return fail(c, "rediscover: must be from 100ms to 1h");
		if (k == AK_KEEP_AGE && d > KEEP_AGE_MAX)
			return fail(c, "keep_age: must be at most 3650d (0: no bound by age)");
		if (keys[k].field)
			*double_field(s, k) = d;
		else
			c->rediscover_s = d;
		return 0;
	case V_BACKEND:
		if (strcmp(v, "auto") && strcmp(v, "bpf") && strcmp(v, "user"))
			return fail(c, "backend: '%s' is not auto, bpf or user",
				    shown(v, show, sizeof(show)));
		return set_string(c, &c->backend, v);
	case V_RATE:
		if (cli_parse_double(v, &d) || !(d > 0) || d > RATE_MAX)
			return fail(c, "rate: '%s' is not a rate in Hz (above 0, at most %g)",
				    shown(v, show, sizeof(show)), RATE_MAX);
		*double_field(s, k) = d;
		return 0;
	case V_LABELS:
		return add_labels(c, s, v);
	case V_BOOL:
		if (agent_parse_bool(v, &b))
			return fail(c, "%s: '%s' is not yes or no", name, shown(v, show, sizeof(show)));
		*bool_field(s, k) = b;
		return 0;
	case V_PIDS:
		return add_pids(c, s, v);
	case V_REGEX: {
		regex_t re;
		int rc;

		switch (regex_check(v)) {
		case 1:
			return fail(c, "match: a repetition right after another ('a++', 'a+?', "
				       "'a{2}*') is not POSIX; write it another way");
		case 2:
			return fail(c, "match: repetition counts ({n}) multiply past %d; write it "
				       "another way", REGEX_WEIGHT_MAX);
		}
		rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB);

		if (rc) {
			char why[128];

			regerror(rc, &re, why, sizeof(why));
			return fail(c, "match: '%s' does not compile: %s", shown(v, show, sizeof(show)),
				    why);
		}
		if (set_string(c, &s->match, v)) {
			regfree(&re);
			return -EINVAL;
		}
		if (s->has_re)
			regfree(&s->match_re);
		s->match_re = re;
		s->has_re = 1;
		return 0;
	}
	case V_UNIT:
		return set_unit(c, s, v);
	case V_CGROUP:
		return set_cgroup(c, s, v);
	}
	return fail(c, "%s: internal error", name);
}

/* ---- sections ---------------------------------------------------------- */

int agent_service_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (!len || len > 40 || n[0] == '.' || n[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return 0;
	return 1;
}

static struct agent_service *find_service(struct agent_conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nservices; i++)
		if (!strcmp(c->services[i].name, name))
			return &c->services[i];
	return NULL;
}

/* Enter section sec (as written between the brackets). */
static int enter(struct agent_conf *c, const char *sec)
{
	char show[80];
	struct agent_service *s;
	const char *n;

	if (!strcmp(sec, "agent")) {
		c->cur = NULL;
		c->in_section = 1;
		return 0;
	}
	if (strncmp(sec, "service", 7) || !isspace((unsigned char)sec[7]))
		return fail(c, "unknown section [%s] (sections: [agent], [service NAME])",
			    shown(sec, show, sizeof(show)));
	for (n = sec + 7; isspace((unsigned char)*n); n++)
		;
	if (!agent_service_name_ok(n))
		return fail(c, "[service %s]: a service name is 1 to 40 letters, digits, '_', "
			       "'.' or '-', not starting with '.' or '-'", shown(n, show, sizeof(show)));
	s = find_service(c, n);
	if (!s) {
		if (c->nservices == AGENT_SERVICES_MAX)
			return fail(c, "more than %d services", AGENT_SERVICES_MAX);
		if (c->nservices == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8;
			struct agent_service *v = realloc(c->services, cap * sizeof(*v));

			if (!v)
				return fail(c, "out of memory");
			c->services = v;
			c->cap = cap;
		}
		s = &c->services[c->nservices];
		memset(s, 0, sizeof(*s));
		service_defaults(s);
		s->name = strdup(n);
		s->file = strdup(c->cur_file ? c->cur_file : "?");
		if (!s->name || !s->file) {
			service_release(s);
			return fail(c, "out of memory");
		}
		s->line = c->cur_line;
		c->nservices++;
	}
	c->cur = s;
	c->in_section = 1;
	return 0;
}

/* One key = value of the current section. */
static int take(struct agent_conf *c, const char *key, const char *value, int cont)
{
	struct agent_service *s = c->cur;
	enum agent_key k;
	uint32_t bit;

	if (!c->in_section)
		return fail(c, "'%s' comes before any section", key);
	k = key_of(key);
	if (k == AK_COUNT) {
		char show[80];

		return fail(c, "unknown key '%s' in [%s]", shown(key, show, sizeof(show)),
			    s ? "service" : "agent");
	}
	if (!(keys[k].where & (s ? IN_SERVICE : IN_AGENT)))
		return fail(c, "'%s' belongs in %s", key,
			    s ? "[agent]" : "a [service NAME] section");
	bit = 1u << k;
	if (cont) {
		if (!keys[k].list)
			return fail(c, "'%s' takes one line (only labels and pid go on over "
				       "lines that start with blanks)", key);
	} else {
		struct agent_service *t = s ? s : &c->defaults;

		if (t->set_here & bit)
			return fail(c, "'%s' is set twice in this section", key);
		t->set_here |= bit;
		t->set |= bit;
		/* A list set again (a drop-in) starts anew. */
		if (k == AK_PID)
			t->npids = 0;
		if (k == AK_LABELS) {
			size_t i;

			for (i = 0; i < t->nlabels; i++) {
				free(t->labels[i].key);
				free(t->labels[i].value);
			}
			t->nlabels = 0;
		}
	}
	return set_value(c, s ? s : &c->defaults, k, value);
}

/* ---- the reader and handler for libinih -------------------------------- */

/* A section header is entered here, where its line is read: libinih
 * keeps at most 49 bytes of a section's name and calls the handler for
 * none that has no keys. */
static void section_line(struct agent_conf *c, const char *line)
{
	const char *p = line, *end;
	char name[256];
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '[')
		return;
	end = strchr(p, ']');
	if (!end) {
		fail(c, "no ']' closes the section header");
		return;
	}
	p++;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	n = (size_t)(end - p);
	if (n >= sizeof(name)) {
		fail(c, "the section header is too long");
		return;
	}
	memcpy(name, p, n);
	name[n] = '\0';
	enter(c, name);
}

struct text_reader {
	struct agent_conf *c;
	const char *p, *end;
	int line;
};

static char *read_line(char *str, int num, void *stream)
{
	struct text_reader *r = stream;
	const char *nl;
	size_t n;

	if (r->c->failed || r->p >= r->end)
		return NULL;
	nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
	n = nl ? (size_t)(nl - r->p) + 1 : (size_t)(r->end - r->p);
	r->line++;
	r->c->cur_line = r->line;
	if (memchr(r->p, '\0', n)) {
		fail(r->c, "a NUL byte in the file");
		return NULL;
	}
	if (n + 1 > (size_t)num) {
		fail(r->c, "the line is longer than %d bytes", num - 2);
		return NULL;
	}
	memcpy(str, r->p, n);
	str[n] = '\0';
	r->c->cur_cont = n > 0 && (r->p[0] == ' ' || r->p[0] == '\t');
	r->p += n;
	section_line(r->c, str);
	return str;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct agent_conf *c = user;

	(void)section; /* entered by read_line, at full length */
	if (!c->failed)
		take(c, name, value, c->cur_cont);
	return 1;
}

/* The first file read (or "command line") names the whole in messages. */
static int note_origin(struct agent_conf *c, const char *name)
{
	if (!c->origin && !(c->origin = strdup(name)))
		return fail(c, "out of memory");
	return 0;
}

int agent_conf_parse(struct agent_conf *conf, const char *name, const char *text, size_t len)
{
	struct text_reader r = { .c = conf, .p = text, .end = text + len };
	size_t i;
	int rc;

	if (conf->failed || note_origin(conf, name))
		return -EINVAL;
	conf->cur_file = name;
	conf->cur_line = 0;
	conf->cur = NULL;
	conf->in_section = 0;
	conf->defaults.set_here = 0;
	for (i = 0; i < conf->nservices; i++)
		conf->services[i].set_here = 0;
	rc = ini_parse_stream(read_line, &r, on_pair, conf);
	if (!conf->failed && rc > 0) {
		conf->cur_line = rc;
		fail(conf, "not a section header, a 'key = value' line or a comment");
	}
	conf->cur_file = NULL;
	return conf->failed ? -EINVAL : 0;
}

/* ---- files ------------------------------------------------------------- */

static int read_file(struct agent_conf *c, const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, err;

	c->cur_file = path;
	c->cur_line = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		fail(c, "cannot read it: %s", strerror(-err));
		return err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		fail(c, "not a regular file");
		return -EINVAL;
	}
	if (st.st_size > CONF_FILE_MAX) {
		close(fd);
		fail(c, "larger than %d bytes", CONF_FILE_MAX);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		fail(c, "out of memory");
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			free(buf);
			close(fd);
			fail(c, "cannot read it: %s", strerror(-err));
			return err;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

static int load_one(struct agent_conf *c, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int err = read_file(c, path, &text, &len);

	if (err)
		return err;
	err = agent_conf_parse(c, path, text, len);
	free(text);
	return err;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int agent_conf_load(struct agent_conf *conf, const char *path)
{
	char dir[PATH_MAX], file[PATH_MAX + 256];
	char *names[DROPINS_MAX];
	size_t n = 0, i;
	struct dirent *e;
	DIR *d;
	int err;

	if (conf->failed || note_origin(conf, path))
		return -EINVAL;
	err = load_one(conf, path);
	if (err)
		return err;
	if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir)) {
		conf->cur_file = path;
		conf->cur_line = 0;
		return fail(conf, "the path is too long");
	}
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		conf->cur_file = dir;
		conf->cur_line = 0;
		fail(conf, "cannot read the drop-in directory: %s", strerror(-err));
		return err;
	}
	err = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len < 6 || e->d_name[0] == '.' || strcmp(e->d_name + len - 5, ".conf"))
			continue;
		if (n == DROPINS_MAX) {
			conf->cur_file = dir;
			conf->cur_line = 0;
			err = fail(conf, "more than %d drop-ins", DROPINS_MAX);
			break;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			err = fail(conf, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	for (i = 0; i < n; i++) {
		if (!err) {
			snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
			err = load_one(conf, file);
		}
		free(names[i]);
	}
	return err;
}

int agent_conf_set(struct agent_conf *conf, const char *where, const char *section,
		   const char *key, const char *value)
{
	int cont = 0;

	if (conf->failed || note_origin(conf, "command line"))
		return -EINVAL;
	conf->cur_file = where;
	conf->cur_line = 0;
	if (enter(conf, section))
		return -EINVAL;
	/* The command line may give a list option more than once: each adds. */
	{
		struct agent_service *t = conf->cur ? conf->cur : &conf->defaults;
		enum agent_key k = key_of(key);

		if (k < AK_COUNT && keys[k].list && (t->set_here & (1u << k)))
			cont = 1;
		else if (k < AK_COUNT)
			t->set_here &= ~(1u << k); /* the command line overrides */
	}
	take(conf, key, value, cont);
	conf->cur_file = NULL;
	return conf->failed ? -EINVAL : 0;
}

/* Copy [agent]'s value of key k into s. */
static int inherit(struct agent_service *s, const struct agent_service *d, enum agent_key k)
{
	size_t i;

	if (keys[k].field) {
		memcpy((char *)s + keys[k].off, (const char *)d + keys[k].off,
		       keys[k].type == V_BOOL ? sizeof(int) : sizeof(double));
		return 0;
	}
	if (k == AK_LABELS) {
		/* [agent]'s labels under the service's own (which win). */
		for (i = 0; i < d->nlabels; i++) {
			size_t j;

			for (j = 0; j < s->nlabels; j++)
				if (!strcmp(s->labels[j].key, d->labels[i].key))
					break;
			if (j < s->nlabels)
				continue;
			if (s->nlabels == AGENT_LABELS_MAX)
				return -E2BIG;
			s->labels[s->nlabels].key = strdup(d->labels[i].key);
			s->labels[s->nlabels].value = strdup(d->labels[i].value);
			if (!s->labels[s->nlabels].key || !s->labels[s->nlabels].value) {
				free(s->labels[s->nlabels].key);
				free(s->labels[s->nlabels].value);
				return -ENOMEM;
			}
			s->nlabels++;
		}
	}
	return 0;
}

int agent_conf_finish(struct agent_conf *conf)
{
	const uint32_t selectors = 1u << AK_PID | 1u << AK_PIDFILE | 1u << AK_MATCH |
				   1u << AK_UNIT | 1u << AK_CGROUP;
	size_t i, j;

	if (conf->failed)
		return -EINVAL;
	for (i = 0; i < conf->nservices; i++) {
		struct agent_service *s = &conf->services[i];

		conf->cur_file = s->file;
		conf->cur_line = s->line;
		/* Every key of both sections is a default from [agent], but
		 * keep_bytes, which bounds all services together there. */
		for (j = 0; j < AK_COUNT; j++) {
			enum agent_key k = (enum agent_key)j;
			int err;

			if (keys[k].where != IN_BOTH || k == AK_KEEP_BYTES)
				continue;
			if ((s->set & (1u << k)) && k != AK_LABELS)
				continue;
			if (!(conf->defaults.set & (1u << k)))
				continue;
			err = inherit(s, &conf->defaults, k);
			if (err == -E2BIG)
				return fail(conf, "[service %s]: more than %d labels with [agent]'s",
					    s->name, AGENT_LABELS_MAX);
			if (err)
				return fail(conf, "out of memory");
		}
		if (!(s->set & selectors))
			return fail(conf, "[service %s] chooses no process: give pid, pidfile, "
					  "match, unit or cgroup", s->name);
		if (s->window_s * s->rate_hz > 1e9)
			return fail(conf, "[service %s]: window x rate is over 10^9 samples",
				    s->name);
	}
	conf->cur_file = conf->origin ? conf->origin : "command line";
	conf->cur_line = 0;
	if (!conf->nservices)
		return fail(conf, "no service to sample: add a [service NAME] section (or "
				  "--pid, --pidfile, --match, --unit or --cgroup)");
	if (!listen_is_loopback(conf) && !conf->token)
		return fail(conf, "listen %s is not a loopback address: set token (requests "
				  "then need 'Authorization: Bearer TOKEN')", conf->listen_text);
	return 0;
}
