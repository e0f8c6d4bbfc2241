/* backend_mem.c - the remote-memory backend: the walker (py_walk.h) behind
 * struct backend_ops (backend.h). */
#include <errno.h>
#include <stdlib.h>

#include "pyspyc/backend.h"
#include "pyspyc/py_walk.h"

struct backend_mem {
	struct backend b;   /* first: a struct backend * is one of these */
	struct py_walker *w;
	struct walk_stats ws;
};

static struct backend_mem *mem_of(struct backend *b)
{
	return (struct backend_mem *)b;
}

static int mem_open(struct backend **out, const struct py_target *t,
		    const struct backend_opts *o)
{
	struct walk_opts wo = { .max_depth = o->max_depth, .max_threads = o->max_threads };
	struct backend_mem *m;
	int err;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->b.ops = &backend_mem_ops;
	err = py_walker_new(&m->w, t, &wo);
	if (err) {
		free(m);
		return err;
	}
	*out = &m->b;
	return 0;
}

static int mem_sample(struct backend *b, struct backend_reads *x, struct raw_sample **out)
{
	struct backend_mem *m = mem_of(b);
	int done = 0, err;

	if (!x)
		return py_walker_sample(m->w, NULL, NULL, 0, &done, out, &m->ws);
	err = py_walker_sample(m->w, x->l, x->r, x->n, &done, out, &m->ws);
	x->done = done;
	return err;
}

static int mem_gil_held(struct backend *b)
{
	return py_walker_gil_held(mem_of(b)->w);
}

static struct rmem *mem_mem(struct backend *b)
{
	return py_walker_mem(mem_of(b)->w);
}

static void mem_stats(const struct backend *b, struct backend_stats *st)
{
	const struct backend_mem *m = (const struct backend_mem *)b;

	st->fast = m->ws.fast;
	st->rereads = m->ws.rereads;
	st->returned = m->ws.returned;
	st->interps_capped = m->ws.interps_capped;
}

static void mem_set_recheck(struct backend *b, recheck_fn fn, void *ctx)
{
	py_walker_set_recheck(mem_of(b)->w, fn, ctx);
}

static void mem_set_host(struct backend *b, host_word_fn host, void *ctx)
{
	py_walker_set_host(mem_of(b)->w, host, ctx);
}

static void mem_close(struct backend *b)
{
	if (!b)
		return;
	py_walker_free(mem_of(b)->w);
	free(b);
}

const struct backend_ops backend_mem_ops = {
	.name = "mem",
	.open = mem_open,
	.sample = mem_sample,
	.gil_held = mem_gil_held,
	.mem = mem_mem,
	.stats = mem_stats,
	.set_recheck = mem_set_recheck,
	.set_host = mem_set_host,
	.close = mem_close,
};
