/* cmd.h - subcommands.  Each orchestrates library calls, prints, and returns
 * an exit status (cli.h); none holds low-level logic. */
#ifndef PYSPYC_CMD_H
#define PYSPYC_CMD_H

int cmd_record(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
