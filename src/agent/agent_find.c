/* agent_find.c - the processes a service's selectors choose (agent_find.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/agent_find.h"
#include "pyspyc/cli.h"

#define CMDLINE_MAX 4096        /* bytes of a command line matched */
#define CGROUP_DEPTH 6          /* levels searched for a unit's group */
#define CGROUP_DIRS_MAX 4096    /* groups visited by one search or collection */
#define PIDFILE_MAX 64

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct proc_ident *)a)->pid, y = ((const struct proc_ident *)b)->pid;

	return (x > y) - (x < y);
}

int agent_scan_take(struct agent_scan *sc)
{
	struct dirent *e;
	DIR *d;

	sc->n = 0;
	sc->left_out = 0;
	sc->self = getpid();
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		long long pid;
		pid_t ppid;
		uint64_t start;

		if (e->d_name[0] < '1' || e->d_name[0] > '9' || cli_parse_ll(e->d_name, &pid) ||
		    pid > INT_MAX)
			continue;
		if (proc_stat_ids((pid_t)pid, &ppid, &start, NULL))
			continue; /* gone meanwhile */
		if (sc->n == sc->cap) {
			size_t cap = sc->cap ? sc->cap * 2 : 1024;
			struct proc_ident *v;

			if (sc->cap >= AGENT_SCAN_MAX) {
				sc->left_out++;
				continue;
			}
			v = realloc(sc->procs, cap * sizeof(*v));
			if (!v) {
				closedir(d);
				return -ENOMEM;
			}
			sc->procs = v;
			sc->cap = cap;
		}
		sc->procs[sc->n++] = (struct proc_ident){ .pid = (pid_t)pid, .ppid = ppid,
							  .start = start };
	}
	closedir(d);
	qsort(sc->procs, sc->n, sizeof(*sc->procs), by_pid);
	return 0;
}

void agent_scan_release(struct agent_scan *sc)
{
	if (!sc)
		return;
	free(sc->procs);
	memset(sc, 0, sizeof(*sc));
}

const struct proc_ident *agent_scan_get(const struct agent_scan *sc, pid_t pid)
{
	struct proc_ident key = { .pid = pid };

	if (!sc->n)
		return NULL;
	return bsearch(&key, sc->procs, sc->n, sizeof(*sc->procs), by_pid);
}

/* The result being built: a pid set, sorted at the end. */
struct found {
	struct proc_ident *v;
	size_t n, cap, left_out;
	const struct agent_scan *sc;
};

static void add(struct found *f, pid_t pid)
{
	const struct proc_ident *p = agent_scan_get(f->sc, pid);
	size_t i;

	if (!p || pid == f->sc->self)
		return;
	for (i = 0; i < f->n; i++)
		if (f->v[i].pid == pid)
			return;
	if (f->n == f->cap) {
		f->left_out++;
		return;
	}
	f->v[f->n++] = *p;
}

/* root and every process under it in the scan. */
static void add_tree(struct found *f, pid_t root)
{
	size_t first = f->n, i, j;

	if (!agent_scan_get(f->sc, root))
		return;
	add(f, root);
	if (f->n == first)
		return;
	/* Breadth first over what was added: a parent's children join the
	 * end; a pid is added once, so a loop in ppids cannot spin. */
	for (i = first; i < f->n; i++)
		for (j = 0; j < f->sc->n; j++)
			if (f->sc->procs[j].ppid == f->v[i].pid && f->sc->procs[j].pid != f->v[i].pid)
				add(f, f->sc->procs[j].pid);
}

/* "KIND WHAT: WHY" appended to notes, "; " between. */
static void note(struct agent_find_notes *notes, const char *kind, const char *what,
		 const char *why)
{
	size_t used;

	if (!notes)
		return;
	used = strlen(notes->text);
	snprintf(notes->text + used, sizeof(notes->text) - used, "%s%s %s: %s",
		 used ? "; " : "", kind, what, why);
}

/* The pid in a pid file: a decimal number, blanks and a newline around it. */
static int read_pidfile(const char *path, pid_t *out)
{
	char buf[PIDFILE_MAX + 1], *p, *end;
	long long pid;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, PIDFILE_MAX);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	for (end = p; *end >= '0' && *end <= '9'; end++)
		;
	if (end == p || end - p > 10)
		return -EINVAL;
	*end = '\0';
	if (cli_parse_ll(p, &pid) || pid < 1 || pid > INT_MAX)
		return -EINVAL;
	*out = (pid_t)pid;
	return 0;
}

/* Every pid in dir/cgroup.procs and in the groups under dir. */
static int add_cgroup(struct found *f, const char *dir, int depth, size_t *visited)
{
	char path[PATH_MAX];
	struct dirent *e;
	FILE *procs;
	DIR *d;
	int err = 0;

	if (++*visited > CGROUP_DIRS_MAX)
		return 0;
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	procs = fopen(path, "re");
	if (!procs)
		return -errno;
	{
		char line[32];

		while (fgets(line, sizeof(line), procs)) {
			long long pid;

			line[strcspn(line, "\n")] = '\0';
			if (!cli_parse_ll(line, &pid) && pid > 0 && pid <= INT_MAX)
				add(f, (pid_t)pid);
		}
	}
	fclose(procs);
	if (depth >= CGROUP_DEPTH * 2)
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		(void)add_cgroup(f, path, depth + 1, visited);
	}
	closedir(d);
	return err;
}

/* Breadth-first search for a directory named name under root, at most
 * CGROUP_DEPTH levels down; the top level's system.slice first, where
 * system services live. */
int agent_unit_cgroup(const char *cgroup_root, const char *unit, char *path, size_t size)
{
	char (*queue)[PATH_MAX];
	size_t head = 0, tail = 0, qcap = 256;
	int depth_of[256], found = -ENOENT;

	if (snprintf(path, size, "%s/system.slice/%s", cgroup_root, unit) >= (int)size)
		return -ENAMETOOLONG;
	{
		struct stat st;

		if (!stat(path, &st) && S_ISDIR(st.st_mode))
			return 0;
	}
	queue = malloc(qcap * sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	snprintf(queue[tail], PATH_MAX, "%s", cgroup_root);
	depth_of[tail++] = 0;
	while (head < tail && found == -ENOENT) {
		struct dirent *e;
		DIR *d;
		size_t cur = head++;

		d = opendir(queue[cur]);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			char sub[PATH_MAX];

			if (e->d_type != DT_DIR || e->d_name[0] == '.')
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", queue[cur], e->d_name) >= (int)sizeof(sub))
				continue;
			if (!strcmp(e->d_name, unit)) {
				if (snprintf(path, size, "%s", sub) >= (int)size)
					found = -ENAMETOOLONG;
				else
					found = 0;
				break;
			}
			if (depth_of[cur] + 1 < CGROUP_DEPTH && tail < qcap) {
				memcpy(queue[tail], sub, strlen(sub) + 1);
				depth_of[tail++] = depth_of[cur] + 1;
			}
		}
		closedir(d);
	}
	free(queue);
	return found;
}

int agent_find(const struct agent_scan *sc, const struct agent_service *s,
	       const char *cgroup_root, struct proc_ident *out, size_t cap, size_t *n,
	       size_t *left_out, struct agent_find_notes *notes)
{
	struct found f = { .v = out, .cap = cap, .sc = sc };
	char path[PATH_MAX];
	size_t i, visited;
	int err;

	if (notes)
		notes->text[0] = '\0';
	for (i = 0; i < s->npids; i++)
		add_tree(&f, s->pids[i]);
	if (s->pidfile) {
		pid_t pid = 0;

		err = read_pidfile(s->pidfile, &pid);
		if (err)
			note(notes, "pidfile", s->pidfile,
			     err == -EINVAL ? "holds no process id" : strerror(-err));
		else
			add_tree(&f, pid);
	}
	if (s->has_re) {
		char *cmd = malloc(CMDLINE_MAX);

		if (!cmd)
			return -ENOMEM;
		for (i = 0; i < sc->n; i++) {
			if (sc->procs[i].pid == sc->self ||
			    proc_cmdline(sc->procs[i].pid, cmd, CMDLINE_MAX) || !cmd[0])
				continue;
			if (!regexec(&s->match_re, cmd, 0, NULL, 0))
				add(&f, sc->procs[i].pid);
		}
		free(cmd);
	}
	if (s->unit) {
		err = agent_unit_cgroup(cgroup_root, s->unit, path, sizeof(path));
		visited = 0;
		if (!err)
			err = add_cgroup(&f, path, 0, &visited);
		if (err)
			note(notes, "unit", s->unit,
			     err == -ENOENT ? "no control group of that name" : strerror(-err));
	}
	if (s->cgroup) {
		visited = 0;
		if (snprintf(path, sizeof(path), "%s%s", cgroup_root, s->cgroup) >= (int)sizeof(path))
			err = -ENAMETOOLONG;
		else
			err = add_cgroup(&f, path, 0, &visited);
		if (err)
			note(notes, "cgroup", s->cgroup, strerror(-err));
	}
	qsort(f.v, f.n, sizeof(*f.v), by_pid);
	*n = f.n;
	if (left_out)
		*left_out = f.left_out;
	return 0;
}
