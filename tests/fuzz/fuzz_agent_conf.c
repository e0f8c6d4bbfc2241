/* fuzz_agent_conf.c - the agent's configuration file (agent_conf.h): any
 * bytes as a file's text, then the whole checked.  Either it is accepted
 * or there is one error line; nothing is read out of bounds or leaked. */
#include <stdlib.h>
#include <string.h>

#include "pyspyc/agent_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_conf c;
	int err;

	if (agent_conf_init(&c))
		return 0;
	err = agent_conf_parse(&c, "f.conf", (const char *)data, size);
	if (!err)
		err = agent_conf_finish(&c);
	/* One line, and set exactly when it failed. */
	if ((err != 0) != (c.err[0] != '\0') || strchr(c.err, '\n'))
		abort();
	agent_conf_release(&c);
	return 0;
}
