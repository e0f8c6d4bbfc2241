/* backend.c - opening and closing any backend (backend.h). */
#include "pyspyc/backend.h"

int backend_open(struct backend **out, const struct backend_ops *ops,
		 const struct py_target *t, const struct backend_opts *o)
{
	return (ops ? ops : &backend_mem_ops)->open(out, t, o);
}

void backend_close(struct backend *b)
{
	if (b)
		b->ops->close(b);
}
