/* cmd_dump.c - `pyspyc dump`: print every Python thread's stack once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyspyc/backend.h"
#include "pyspyc/cli.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/json.h"
#include "pyspyc/proc.h"
#include "pyspyc/py_code.h"
#include "pyspyc/py_obj.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/py_threads.h"
#include "pyspyc/py_walk.h" /* PY_WALK_MAX_THREADS */
#include "pyspyc/stacktab.h"

#define WHO "pyspyc"

#define MAX_DEPTH 4096        /* frames shown per thread */
#define MAX_PROCS 1024        /* processes of a tree (-s) */
#define TRIES 5               /* samples taken before a changing stack is shown as is */
#define TEXT 4096             /* one printable name or file name */
#define REPR 512              /* one value */
#define READERS 8             /* -s: processes read at once, ... */
#define READ_AHEAD 32         /* ...at most this far ahead of the printing */

struct dump_args {
	long long pid;
	int locals;
	int json;
	int subprocesses;
	int nolineno;
	int full_filenames;
	long long max_threads;
};

#define OFF(f) offsetof(struct dump_args, f)

static const struct opt dump_opts[] = {
	{ 'p', "pid", OPT_INT, "PID", "dump the running process PID (required)",
	  OFF(pid), 1, 4194304, 0 },
	{ 'l', "locals", OPT_FLAG, NULL,
	  "show each frame's arguments and local variables (read from memory, "
	  "nothing is run in the target)",
	  OFF(locals), 0, 0, 0 },
	{ 'j', "json", OPT_FLAG, NULL, "write one JSON document instead of text",
	  OFF(json), 0, 0, 0 },
	{ 's', "subprocesses", OPT_FLAG, NULL,
	  "also dump every Python process under PID", OFF(subprocesses), 0, 0, 0 },
	OPT_FULL_FILENAMES(struct dump_args, full_filenames),
	OPT_NOLINENO(struct dump_args, nolineno),
	OPT_MAX_THREADS(struct dump_args, max_threads),
};

static const struct cmd_usage dump_usage = {
	.name = "dump",
	.synopsis = "[OPTIONS] --pid PID",
	.about = "Print the Python stack of every thread of a running process once:\n"
		 "thread id, name, whether it is on a CPU and holds the GIL, and its\n"
		 "frames innermost first.",
	.opts = dump_opts,
	.nopts = sizeof(dump_opts) / sizeof(dump_opts[0]),
	.examples =
		"  sudo pyspyc dump --pid 12345\n"
		"  pyspyc dump --locals -p 12345\n"
		"  pyspyc dump --json -s -p 12345 > stacks.json\n",
};


/* ---- reading one process -------------------------------------------- */

struct thread_view {
	const struct raw_thread *th;
	int32_t tid;
	int32_t ns_tid;           /* the target's own id for it (PID namespace), or 0 */
	int active;               /* 1, 0, or -errno: unknown */
	const char *name;         /* NULL: threading does not know it */
	struct sym_frame *frames;
	int nframes;              /* or -errno */
};

struct proc_view {
	pid_t pid, ppid;
	pid_t ns_pid;             /* its own pid in its PID namespace, or 0 */
	int found;                /* the interpreter was found */
	int err;                  /* attaching or reading failed */
	int interps_capped;       /* more interpreters than PY_MAX_INTERPS */
	struct py_target *t;
	struct backend *be;       /* the same backend record and top sample with */
	struct stacktab *tab;
	struct py_symbolizer *sym;
	struct thread_map *tm;
	struct raw_sample *rs;
	struct py_thread_names names;
	struct thread_view *threads;
	uint32_t nthreads;
	struct sym_frame *frames;  /* every thread's, as many as the sample has */
	char command[1024];
};

static void proc_release(struct proc_view *p)
{
	thread_map_free(p->tm);
	py_thread_names_release(&p->names);
	py_sym_free(p->sym);
	stacktab_free(p->tab);
	backend_close(p->be);
	free(p->threads);
	free(p->frames);
	free(p->t);
	memset(p, 0, sizeof(*p));
}

static int by_tid(const void *a, const void *b)
{
	const struct thread_view *x = a, *y = b;
	uint64_t kx = x->tid > 0 ? (uint64_t)x->tid : x->th->thread_id;
	uint64_t ky = y->tid > 0 ? (uint64_t)y->tid : y->th->thread_id;

	/* threads with an OS id first, each group in order */
	if ((x->tid > 0) != (y->tid > 0))
		return x->tid > 0 ? -1 : 1;
	return (kx > ky) - (kx < ky);
}

/* Take a sample (the backend's, as record's) and describe every thread; a
 * stack that changed under the backend is sampled again, a few times at
 * most. */
static int sample_threads(struct proc_view *p)
{
	uint32_t i;
	int tries, err = 0;

	for (tries = 0; tries < TRIES; tries++) {
		struct backend_stats before, after;
		int32_t *tids;
		int again = 0;

		backend_stats(p->be, &before);
		err = backend_sample(p->be, NULL, &p->rs);
		if (err)
			return err;
		backend_stats(p->be, &after);
		p->interps_capped = after.interps_capped != before.interps_capped;
		free(p->threads);
		free(p->frames);
		p->threads = calloc(p->rs->nthreads + 1, sizeof(*p->threads));
		p->frames = calloc(p->rs->nframes + 1, sizeof(*p->frames));
		if (!p->threads || !p->frames)
			return -ENOMEM;
		p->nthreads = p->rs->nthreads;
		tids = calloc(p->rs->nthreads + 1, sizeof(*tids));
		if (!tids)
			return -ENOMEM;
		thread_map_tids(p->tm, p->rs, tids);
		for (i = 0; i < p->nthreads; i++) {
			struct thread_view *tv = &p->threads[i];

			tv->th = &p->rs->threads[i];
			tv->tid = tids[i];
			tv->frames = p->frames + tv->th->first;
			if (tv->th->flags & RAW_TORN) {
				tv->nframes = -EAGAIN;
				again = 1;
				continue;
			}
			tv->nframes = tv->th->depth ?
				py_sym_describe(p->sym, p->rs, tv->th, tv->frames, tv->th->depth) : 0;
			if (tv->nframes == -EBADF)
				again = 1;
		}
		free(tids);
		if (!again)
			break;
	}
	/* Names are a nicety: stacks without them when they cannot be read. */
	py_thread_names_read(&p->names, p->t, backend_mem(p->be),
			     p->nthreads + p->rs->threads_left_out, PY_WALK_MAX_THREADS);
	for (i = 0; i < p->nthreads; i++) {
		struct thread_view *tv = &p->threads[i];

		tv->ns_tid = thread_map_ns_tid(p->tm, tv->tid);
		/* The rule record and top count by (thread_state_active). */
		tv->active = tv->tid != 0 ? thread_map_state(p->tm, tv->tid) : -ENOENT;
		if (tv->active >= 0)
			tv->active = thread_state_active(tv->active,
							 !!(tv->th->flags & RAW_GIL));
		tv->name = py_thread_names_find(&p->names, tv->th->thread_id);
	}
	/* A thread state whose thread has exited (left by a main thread's
	 * pthread_exit()) is no thread to show. */
	for (i = 0; i < p->nthreads;)
		if (p->threads[i].active == -ESRCH)
			p->threads[i] = p->threads[--p->nthreads];
		else
			i++;
	qsort(p->threads, p->nthreads, sizeof(*p->threads), by_tid);
	return 0;
}

static int proc_read(struct proc_view *p, pid_t pid, unsigned int find_flags, int lineno,
		     uint32_t max_threads, struct py_find_cache *cache)
{
	struct backend_opts bo = { .max_depth = MAX_DEPTH, .max_threads = max_threads };
	struct stacktab_limits lim = { .max_stacks = 1024, .max_frames = 1 << 16,
				       .max_strings = 1 << 16 };
	struct sym_opts so = { .full_filenames = 1, .lineno = lineno };
	struct rmem *m;
	int err;

	p->pid = pid;
	if (proc_cmdline(pid, p->command, sizeof(p->command)) || !p->command[0])
		snprintf(p->command, sizeof(p->command), "pid %d", (int)pid);
	p->t = calloc(1, sizeof(*p->t));
	if (!p->t)
		return -ENOMEM;
	err = py_target_find_cached(p->t, pid, find_flags, cache);
	if (err)
		return err;
	p->found = 1;
	err = backend_open(&p->be, NULL, p->t, &bo);
	if (!err)
		err = stacktab_new(&p->tab, &lim);
	if (err)
		return err;
	m = backend_mem(p->be);
	err = py_sym_new(&p->sym, p->t, m, p->tab, &so);
	if (!err)
		err = thread_map_new(&p->tm, p->t, m);
	if (err)
		return err;
	p->ns_pid = thread_map_ns_pid(p->tm);
	return sample_threads(p);
}

/* ---- text ------------------------------------------------------------ */

struct out {
	FILE *f;
	struct json j;
	const struct dump_args *a;
	struct proc_view *p;
	char text[TEXT], file[TEXT], repr[REPR];
	int printed_args, printed_locals;
};

static const char *printable(struct out *o, const char *s)
{
	py_text_printable(s ? s : "", s ? strlen(s) : 0, o->text, sizeof(o->text));
	return o->text;
}

/* The file name as shown: package-relative unless --full-filenames. */
static const char *shown_file(struct out *o, const char *file)
{
	char root[64], shortened[PY_NAME_MAX];

	if (o->a->full_filenames) {
		py_text_printable(file, strlen(file), o->file, sizeof(o->file));
		return o->file;
	}
	snprintf(root, sizeof(root), "/proc/%d/root", (int)o->p->pid);
	py_shorten_filename(root, file, shortened, sizeof(shortened));
	py_text_printable(shortened, strlen(shortened), o->file, sizeof(o->file));
	return o->file;
}

static void version_text(const struct py_target *t, char *buf, size_t size)
{
	uint32_t v = t->version_hex;

	/* Py_Version gives the micro version; the file name only X.Y. */
	if (v & 0xffff)
		snprintf(buf, size, "%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff);
	else
		snprintf(buf, size, "%u.%u", v >> 24, (v >> 16) & 0xff);
}

static int text_local(const char *name, uint64_t value, int is_arg, void *ctx)
{
	struct out *o = ctx;

	if (!value)
		return 0; /* unbound: nothing to show */
	if (is_arg && !o->printed_args) {
		fputs("        Arguments:\n", o->f);
		o->printed_args = 1;
	}
	if (!is_arg && !o->printed_locals) {
		fputs("        Locals:\n", o->f);
		o->printed_locals = 1;
	}
	py_obj_repr(o->p->t, backend_mem(o->p->be), value, o->repr, sizeof(o->repr));
	fprintf(o->f, "            %s: %s\n", name, o->repr);
	return 0;
}

static const char *err_text(int err)
{
	switch (err) {
	case -ESTALE:
		return "the frame moved on while it was read";
	case -EBADMSG:
		return "the frame did not read consistently";
	default:
		return strerror(-err);
	}
}

static void text_frames(struct out *o, const struct thread_view *tv)
{
	int i;

	if (tv->nframes < 0) {
		fprintf(o->f, "    (stack unreadable: %s)\n",
			tv->nframes == -EBADF || tv->nframes == -EAGAIN
				? "it kept changing while it was read" : strerror(-tv->nframes));
		return;
	}
	for (i = 0; i < tv->nframes; i++) {
		const struct sym_frame *fr = &tv->frames[i];

		fprintf(o->f, "    %s (", printable(o, fr->name));
		fputs(shown_file(o, fr->file ? fr->file : ""), o->f);
		if (fr->line > 0)
			fprintf(o->f, ":%d", fr->line);
		fputs(")\n", o->f);
		if (o->a->locals && fr->addr && fr->code) {
			int err;

			o->printed_args = o->printed_locals = 0;
			err = py_obj_frame_locals(o->p->t, backend_mem(o->p->be), fr->addr,
						  fr->code, text_local, o);
			if (err < 0)
				fprintf(o->f, "        (locals unavailable: %s)\n", err_text(err));
		}
	}
	if (tv->th->flags & RAW_TRUNCATED)
		fprintf(o->f, "    ... (more than %d frames; outer frames not shown)\n", MAX_DEPTH);
}

static void text_process(struct out *o, int root)
{
	struct proc_view *p = o->p;
	char ver[32];
	uint32_t i;

	fprintf(o->f, "Process %d", (int)p->pid);
	if (p->ns_pid > 0)
		fprintf(o->f, " [ns %d]", (int)p->ns_pid);
	fprintf(o->f, ": %s\n", p->command);
	if (!root)
		fprintf(o->f, "Parent process %d\n", (int)p->ppid);
	version_text(p->t, ver, sizeof(ver));
	fprintf(o->f, "Python v%s (%s)\n\n", ver, printable(o, p->t->binary));
	if (p->interps_capped)
		fprintf(o->f, "(more than %d interpreters: the threads of the first %d and of "
			"the main one only)\n", PY_MAX_INTERPS, PY_MAX_INTERPS);
	for (i = 0; i < p->nthreads; i++) {
		const struct thread_view *tv = &p->threads[i];
		const char *state = tv->active < 0 ? "unknown" : tv->active ? "active" : "idle";

		if (tv->tid > 0)
			fprintf(o->f, "Thread %d", (int)tv->tid);
		else
			fprintf(o->f, "Thread 0x%llx", (unsigned long long)tv->th->thread_id);
		if (tv->ns_tid > 0)
			fprintf(o->f, " [ns %d]", (int)tv->ns_tid);
		fprintf(o->f, " (%s%s)", state, tv->th->flags & RAW_GIL ? "+gil" : "");
		if (tv->name)
			fprintf(o->f, ": \"%s\"", tv->name);
		fputc('\n', o->f);
		text_frames(o, tv);
	}
	if (p->rs->threads_left_out)
		fprintf(o->f, "\n%u more threads not shown (the oldest, the main thread "
			"among them): more than --max-threads %lld\n",
			p->rs->threads_left_out, o->a->max_threads);
}

/* ---- JSON ------------------------------------------------------------ */

static int json_local(const char *name, uint64_t value, int is_arg, void *ctx)
{
	struct out *o = ctx;
	char addr[32];

	if (!value)
		return 0;
	py_obj_repr(o->p->t, backend_mem(o->p->be), value, o->repr, sizeof(o->repr));
	snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)value);
	json_object_begin(&o->j);
	json_key(&o->j, "name");
	json_string(&o->j, name);
	json_key(&o->j, "arg");
	json_bool(&o->j, is_arg);
	json_key(&o->j, "repr");
	json_string(&o->j, o->repr);
	json_key(&o->j, "addr");
	json_string(&o->j, addr);
	json_object_end(&o->j);
	return 0;
}

static void json_frames(struct out *o, const struct thread_view *tv)
{
	char root[64], shortened[PY_NAME_MAX];
	int i;

	json_key(&o->j, "frames");
	json_array_begin(&o->j);
	for (i = 0; i < tv->nframes; i++) {
		const struct sym_frame *fr = &tv->frames[i];
		const char *file = fr->file ? fr->file : "";

		snprintf(root, sizeof(root), "/proc/%d/root", (int)o->p->pid);
		py_shorten_filename(root, file, shortened, sizeof(shortened));
		json_object_begin(&o->j);
		json_key(&o->j, "name");
		json_string(&o->j, fr->name);
		json_key(&o->j, "filename");
		json_string(&o->j, file);
		json_key(&o->j, "short_filename");
		json_string(&o->j, shortened);
		json_key(&o->j, "line");
		if (fr->line > 0)
			json_int(&o->j, fr->line);
		else
			json_null(&o->j);
		if (o->a->locals && fr->addr && fr->code) {
			int err;

			json_key(&o->j, "locals");
			json_array_begin(&o->j);
			err = py_obj_frame_locals(o->p->t, backend_mem(o->p->be), fr->addr,
						  fr->code, json_local, o);
			json_array_end(&o->j);
			if (err < 0) {
				json_key(&o->j, "locals_error");
				json_string(&o->j, err_text(err));
			}
		}
		json_object_end(&o->j);
	}
	json_array_end(&o->j);
}

static void json_threads(struct out *o)
{
	struct proc_view *p = o->p;
	uint32_t i;

	json_key(&o->j, "threads");
	json_array_begin(&o->j);
	for (i = 0; p->t && i < p->nthreads; i++) {
		const struct thread_view *tv = &p->threads[i];

		json_object_begin(&o->j);
		json_key(&o->j, "thread_id");
		json_uint(&o->j, tv->th->thread_id);
		json_key(&o->j, "os_thread_id");
		if (tv->tid > 0)
			json_int(&o->j, tv->tid);
		else
			json_null(&o->j);
		json_key(&o->j, "ns_thread_id");
		if (tv->ns_tid > 0)
			json_int(&o->j, tv->ns_tid);
		else
			json_null(&o->j);
		json_key(&o->j, "name");
		json_string(&o->j, tv->name);
		json_key(&o->j, "active");
		if (tv->active < 0)
			json_null(&o->j);
		else
			json_bool(&o->j, tv->active);
		json_key(&o->j, "owns_gil");
		if (p->rs->gil_known)
			json_bool(&o->j, (tv->th->flags & RAW_GIL) != 0);
		else
			json_null(&o->j);
		json_key(&o->j, "truncated");
		json_bool(&o->j, (tv->th->flags & RAW_TRUNCATED) != 0);
		if (tv->nframes < 0) {
			json_key(&o->j, "error");
			json_string(&o->j, "the stack kept changing while it was read");
		} else {
			json_frames(o, tv);
		}
		json_object_end(&o->j);
	}
	json_array_end(&o->j);
	/* Threads past --max-threads: the oldest, not read. */
	json_key(&o->j, "threads_left_out");
	json_uint(&o->j, p->t && p->rs ? p->rs->threads_left_out : 0);
}

/* The members of one process object; "children" is left to the caller. */
static void json_process(struct out *o, int root)
{
	struct proc_view *p = o->p;
	char ver[32];

	json_key(&o->j, "pid");
	json_int(&o->j, p->pid);
	json_key(&o->j, "ns_pid");
	if (p->ns_pid > 0)
		json_int(&o->j, p->ns_pid);
	else
		json_null(&o->j);
	if (!root) {
		json_key(&o->j, "ppid");
		json_int(&o->j, p->ppid);
	}
	json_key(&o->j, "command");
	json_string(&o->j, p->command);
	if (p->err) {
		json_key(&o->j, "error");
		json_string(&o->j, p->err == -ENOEXEC ? "not a Python process" : strerror(-p->err));
	} else {
		version_text(p->t, ver, sizeof(ver));
		json_key(&o->j, "python");
		json_string(&o->j, ver);
		json_key(&o->j, "binary");
		json_string(&o->j, p->t->binary);
	}
	json_threads(o);
}

/* ---- the tree -------------------------------------------------------- */

struct node {
	pid_t pid, ppid;
	int parent;         /* index of the nearest dumped ancestor, -1: root */
};

/* Every descendant of root, parents before children, each tied to its
 * nearest ancestor in the list. */
static int tree_of(pid_t root, struct node **out)
{
	struct proc_ident *ids;
	struct node *nodes;
	int n, i, k;

	ids = calloc(MAX_PROCS, sizeof(*ids));
	nodes = calloc(MAX_PROCS + 1, sizeof(*nodes));
	if (!ids || !nodes) {
		free(ids);
		free(nodes);
		return -ENOMEM;
	}
	nodes[0] = (struct node){ root, 0, -1 };
	n = proc_descendants(root, ids, MAX_PROCS);
	if (n < 0)
		n = 0;
	for (i = 0; i < n; i++) {
		nodes[i + 1].pid = ids[i].pid;
		nodes[i + 1].ppid = ids[i].ppid;
		nodes[i + 1].parent = 0;
		for (k = 0; k <= i; k++)
			if (nodes[k].pid == ids[i].ppid)
				nodes[i + 1].parent = k;
	}
	free(ids);
	*out = nodes;
	return n + 1;
}

/* The processes of the tree are read by READERS threads, in the order
 * they are printed, up to READ_AHEAD ahead of the printing; the printer
 * takes each in turn (tree_take), waiting for it if need be.  A hundred
 * processes cost the slowest few reads, not the sum of them all. */
struct reader {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *order;          /* node indexes in printing order */
	int *pos;            /* node index -> position in order */
	struct proc_view **views; /* by position (NULL: out of memory) */
	unsigned char *ready;     /* by position: views[k] is read */
	int next;            /* the next position to read */
	int asked;           /* positions the printer has asked for */
	int quit;
	pthread_t th[READERS];
	int nth;
};

struct tree {
	struct out *o;
	struct node *nodes;
	int n;
	unsigned int find_flags;
	int dumped;         /* Python processes shown */
	int first_err;      /* the root's error, when it was not Python */
	struct py_find_cache *cache;
	struct reader rd;
};

static void *reader_main(void *arg)
{
	struct tree *tr = arg;
	struct reader *rd = &tr->rd;

	pthread_mutex_lock(&rd->lock);
	while (!rd->quit) {
		struct proc_view *p;
		int k;

		if (rd->next >= tr->n - 1 || rd->next >= rd->asked + READ_AHEAD) {
			pthread_cond_wait(&rd->cond, &rd->lock);
			continue;
		}
		k = rd->next++;
		pthread_mutex_unlock(&rd->lock);
		p = calloc(1, sizeof(*p));
		if (p) {
			p->err = proc_read(p, tr->nodes[rd->order[k]].pid, tr->find_flags,
					   !tr->o->a->nolineno,
					   (uint32_t)tr->o->a->max_threads, tr->cache);
			p->ppid = tr->nodes[rd->order[k]].ppid;
		}
		pthread_mutex_lock(&rd->lock);
		rd->views[k] = p;
		rd->ready[k] = 1;
		pthread_cond_broadcast(&rd->cond);
	}
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

/* Preorder from idx: the order dump_json_node and the text both print. */
static void order_from(struct tree *tr, int idx, int *n)
{
	int i;

	for (i = idx + 1; i < tr->n; i++)
		if (tr->nodes[i].parent == idx) {
			tr->rd.pos[i] = *n;
			tr->rd.order[(*n)++] = i;
			order_from(tr, i, n);
		}
}

/* Start the readers on nodes 1..n-1.  0 or -errno (then nothing runs). */
static int tree_read_start(struct tree *tr)
{
	struct reader *rd = &tr->rd;
	sigset_t all, old;
	int n = 0, err;

	rd->order = calloc((size_t)tr->n, sizeof(*rd->order));
	rd->pos = calloc((size_t)tr->n, sizeof(*rd->pos));
	rd->views = calloc((size_t)tr->n, sizeof(*rd->views));
	rd->ready = calloc((size_t)tr->n, 1);
	if (!rd->order || !rd->pos || !rd->views || !rd->ready)
		return -ENOMEM;
	order_from(tr, 0, &n);
	err = py_find_cache_new(&tr->cache);
	if (err)
		return err;
	pthread_mutex_init(&rd->lock, NULL);
	pthread_cond_init(&rd->cond, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (rd->nth = 0; rd->nth < READERS && rd->nth < tr->n - 1; rd->nth++)
		if (pthread_create(&rd->th[rd->nth], NULL, reader_main, tr))
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rd->nth)
		return 0;
	pthread_cond_destroy(&rd->cond);
	pthread_mutex_destroy(&rd->lock);
	return tr->n <= 1 ? 0 : -EAGAIN;
}

/* Node idx as read (NULL: it could not be), the printer's to release. */
static struct proc_view *tree_take(struct tree *tr, int idx)
{
	struct reader *rd = &tr->rd;
	struct proc_view *p;
	int k = rd->pos[idx];

	pthread_mutex_lock(&rd->lock);
	if (k + 1 > rd->asked) {
		rd->asked = k + 1;
		pthread_cond_broadcast(&rd->cond);
	}
	while (!rd->ready[k])
		pthread_cond_wait(&rd->cond, &rd->lock);
	p = rd->views[k];
	rd->views[k] = NULL;
	pthread_mutex_unlock(&rd->lock);
	return p;
}

/* Stop the readers and release what the printer did not take. */
static void tree_read_stop(struct tree *tr)
{
	struct reader *rd = &tr->rd;
	int i;

	if (!rd->nth)
		goto out_free;
	pthread_mutex_lock(&rd->lock);
	rd->quit = 1;
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
	for (i = 0; i < rd->nth; i++)
		pthread_join(rd->th[i], NULL);
	pthread_cond_destroy(&rd->cond);
	pthread_mutex_destroy(&rd->lock);
	for (i = 0; i < tr->n; i++)
		if (rd->views[i]) {
			proc_release(rd->views[i]);
			free(rd->views[i]);
		}
out_free:
	free(rd->order);
	free(rd->pos);
	free(rd->views);
	free(rd->ready);
	py_find_cache_free(tr->cache);
	tr->cache = NULL;
}

static void dump_json_node(struct tree *tr, int idx);

static void json_children(struct tree *tr, int idx)
{
	int i;

	json_key(&tr->o->j, "children");
	json_array_begin(&tr->o->j);
	for (i = idx + 1; i < tr->n; i++)
		if (tr->nodes[i].parent == idx)
			dump_json_node(tr, i);
	json_array_end(&tr->o->j);
}

/* A child: its own object when it is Python; otherwise its Python
 * descendants stand in its place. */
static void dump_json_node(struct tree *tr, int idx)
{
	struct proc_view *p = tree_take(tr, idx);
	int i;

	if (!p)
		return;
	if (p->err) {
		for (i = idx + 1; i < tr->n; i++)
			if (tr->nodes[i].parent == idx)
				dump_json_node(tr, i);
	} else {
		tr->o->p = p;
		json_object_begin(&tr->o->j);
		json_process(tr->o, 0);
		json_children(tr, idx);
		json_object_end(&tr->o->j);
		tr->dumped++;
	}
	proc_release(p);
	free(p);
}

static void dump_text_tree(struct tree *tr)
{
	int i;

	for (i = 0; i < tr->n - 1; i++) {
		struct proc_view *p = tree_take(tr, tr->rd.order[i]);

		if (!p)
			continue;
		if (!p->err) {
			tr->o->p = p;
			if (tr->dumped)
				fputc('\n', tr->o->f);
			text_process(tr->o, 0);
			tr->dumped++;
		}
		proc_release(p);
		free(p);
	}
}

/* ---- the command ----------------------------------------------------- */

/* The stream's fate: a closed pipe (| head) is not a failure. */
static int finish_output(FILE *f)
{
	if (fflush(f) || ferror(f)) {
		if (errno == EPIPE)
			return EXIT_OK;
		return cmd_die(WHO, EXIT_OUTPUT, "writing the dump failed: %s", strerror(errno));
	}
	return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	struct dump_args a = { .max_threads = MAX_THREADS_DEFAULT };
	struct tree tr = { 0 };
	struct proc_view *root = NULL;
	struct out *o = NULL;
	int cmd_i, rc, e;
	pid_t pid;

	rc = cmd_parse(WHO, &dump_usage, argc, argv, &a, &cmd_i, &tr.find_flags);
	if (rc >= 0)
		return rc;
	if (!a.pid)
		return cmd_die(WHO, EXIT_USAGE, "dump needs --pid PID");
	if (cmd_i < argc)
		return cmd_die(WHO, EXIT_USAGE, "dump reads a running process: it takes "
			       "--pid, not a command ('%s')", CMD_NAME(argv[cmd_i]));
	pid = (pid_t)a.pid;
	rc = cmd_check_pid(WHO, pid);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	root = calloc(1, sizeof(*root));
	o = calloc(1, sizeof(*o));
	if (!root || !o) {
		rc = cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
		goto out;
	}
	o->f = stdout;
	o->a = &a;
	/* An interpreter still starting up is waited for, a bounded while. */
	root->t = calloc(1, sizeof(*root->t));
	if (root->t) {
		cmd_find_target(root->t, pid, tr.find_flags);
		free(root->t);
		root->t = NULL;
	}
	tr.o = o; /* before the readers start: they read o->a */
	e = proc_read(root, pid, tr.find_flags, !a.nolineno, (uint32_t)a.max_threads, NULL);
	if (e && root->found) {
		if (e == -ESRCH)
			rc = cmd_die(WHO, EXIT_NO_PROCESS, "pid %d exited while it was read", (int)pid);
		else
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot read the threads of pid %d: %s",
				 (int)pid, strerror(-e));
		goto out;
	}
	if (e && !(a.subprocesses && (e == -ENOEXEC || e == -EAGAIN))) {
		rc = cmd_attach_error(WHO, e, pid, root->t);
		goto out;
	}
	root->err = e;
	if (a.subprocesses) {
		tr.n = tree_of(pid, &tr.nodes);
		if (tr.n < 0) {
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot list the processes under pid %d: %s",
				 (int)pid, strerror(-tr.n));
			goto out;
		}
		e = tree_read_start(&tr);
		if (e) {
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot read the processes under pid %d: %s",
				 (int)pid, strerror(-e));
			goto out;
		}
	}
	tr.o = o;
	o->p = root;
	if (a.json) {
		json_init(&o->j, stdout);
		if (!root->err)
			tr.dumped++;
		json_object_begin(&o->j);
		json_process(o, 1);
		if (a.subprocesses)
			json_children(&tr, 0);
		json_object_end(&o->j);
		json_finish(&o->j);
	} else {
		if (!root->err) {
			text_process(o, 1);
			tr.dumped++;
		}
		if (a.subprocesses)
			dump_text_tree(&tr);
	}
	rc = finish_output(stdout);
	if (rc == EXIT_OK && root->err && !tr.dumped)
		rc = cmd_die(WHO, EXIT_NOT_PYTHON, "no Python process in the tree under pid %d", (int)pid);
out:
	if (root)
		proc_release(root);
	free(root);
	free(o);
	tree_read_stop(&tr);
	free(tr.nodes);
	return rc;
}
