/* cmd_outputs.c - the output files of record and convert (cmd_outputs.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pyspyc/cli.h"
#include "pyspyc/cmd_outputs.h"
#include "pyspyc/cmd_util.h"

#define WHO "pyspyc"

/* The names of every format, "a, b or c", for messages. */
static void format_names(char *buf, size_t size)
{
	const struct out_format *const *f = out_formats();
	size_t n = 0, i, count = 0;

	while (f[count])
		count++;
	buf[0] = '\0';
	for (i = 0; i < count && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
				      i == 0 ? "" : i + 1 == count ? " or " : ", ", f[i]->name);
}

int cmd_format_forced(const char *who, const char *format, const struct out_format **forced)
{
	char names[160];

	*forced = NULL;
	if (!format || (*forced = out_format_by_name(format)))
		return 0;
	format_names(names, sizeof(names));
	return cmd_die(who, EXIT_USAGE, "unknown format '%.64s' (%s)", format, names);
}

int cmd_output_plan(const char *who, const char *path, const struct out_format *forced,
		    struct cmd_output *out)
{
	const struct out_format *f = out_format_by_path(path);
	char names[160];

	if (!f || (!strcmp(path, "-") && forced))
		f = forced;
	if (!f) {
		format_names(names, sizeof(names));
		return cmd_die(who, EXIT_USAGE, "cannot tell the format of '%s' from its name: "
			       "give --format (%s)", CMD_NAME(path), names);
	}
	*out = (struct cmd_output){ .tmpl = path, .path = path, .fmt = f, .dest.fd = -1 };
	return 0;
}

int cmd_outputs_check(struct cmd_output *outs, int nout)
{
	int i, stdout_uses = 0;

	for (i = 0; i < nout; i++)
		outs[i].dest.fd = -1;
	for (i = 0; i < nout; i++) {
		int err = out_dest_init(&outs[i].dest, outs[i].path), j;
		const char *why = out_kind_refusal(outs[i].dest.kind);

		outs[i].set_up = 1;
		if (!strcmp(outs[i].path, "-") && ++stdout_uses > 1)
			return cmd_die(WHO, EXIT_USAGE, "'-o -' given more than once");
		for (j = 0; j < i; j++)
			if (strcmp(outs[i].path, "-") && !strcmp(outs[i].path, outs[j].path))
				return cmd_die(WHO, EXIT_USAGE, "'-o %s' given more than once",
					       CMD_NAME(outs[i].path));
		if (err == -EBADF && outs[i].dest.kind == OUT_STREAM)
			return cmd_die(WHO, EXIT_OUTPUT, "cannot write '%s': descriptor %d is not "
				       "open for writing", CMD_NAME(outs[i].path),
				       outs[i].dest.named_fd);
		if (err)
			return cmd_die(WHO, EXIT_OUTPUT, "cannot write '%s': %s",
				       CMD_NAME(outs[i].path), strerror(-err));
		if (why)
			return cmd_die(WHO, EXIT_OUTPUT, "cannot write '%s': %s",
				       CMD_NAME(outs[i].path), why);
		/* The same file by another name (-o - and -o /dev/stdout). */
		for (j = 0; j < i; j++)
			if (out_dest_same(&outs[i].dest, &outs[j].dest))
				return cmd_die(WHO, EXIT_USAGE, "'-o %s' is the same file as '-o %s'",
					       CMD_NAME(outs[i].path), CMD_NAME(outs[j].path));
	}
	return 0;
}

void cmd_outputs_release(struct cmd_output *outs, int nout)
{
	int i;

	for (i = 0; i < nout; i++)
		out_dest_release(&outs[i].dest);
}

int cmd_output_open(struct cmd_output *out)
{
	int err = out_dest_open(&out->dest, 1000, &cmd_stop_flag);

	if (err == -EAGAIN) {
		fprintf(stderr, "pyspyc: waiting for a reader of '%s' (Ctrl-C gives up)\n",
			CMD_NAME(out->path));
		err = out_dest_open(&out->dest, -1, &cmd_stop_flag);
	}
	return err;
}

int cmd_output_write(const char *who, struct cmd_output *out, const struct profile *p,
		     const struct out_opts *oo)
{
	int err = cmd_output_open(out);

	if (!err)
		err = out_dest_write(&out->dest, out->fmt, p, oo);
	if (err == -EINTR)
		cmd_die(who, EXIT_OUTPUT, "writing '%s' failed: gave up waiting for a reader "
			"(interrupted)", CMD_NAME(out->path));
	else if (err == -ESTALE)
		cmd_die(who, EXIT_OUTPUT, "writing '%s' failed: it is no longer the file it "
			"was when pyspyc started", CMD_NAME(out->path));
	else if (err && err != -EPIPE)
		cmd_die(who, EXIT_OUTPUT, "writing '%s' failed: %s", CMD_NAME(out->path),
			strerror(-err));
	return err;
}
