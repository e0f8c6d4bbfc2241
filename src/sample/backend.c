/* backend.c - opening and closing any backend (backend.h). */
#include "pyspyc/backend.h"

int backend_open(struct backend **out, const struct backend_ops *ops,
		 const struct py_target *t, const struct backend_opts *o)
{
	int err;

	ops = ops ? ops : &backend_mem_ops;
	err = ops->open(out, t, o);
	if (!err)
		(*out)->ops = ops;
	return err;
}

void backend_close(struct backend *b)
{
	if (b)
		b->ops->close(b);
}
