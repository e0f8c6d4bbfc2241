/* runwatch_abi.h - sizes shared by runwatch.bpf.c and src/proc/runwatch.c. */
#ifndef PYSPYC_RUNWATCH_ABI_H
#define PYSPYC_RUNWATCH_ABI_H

#define RW_MAX_SLOTS 4096 /* processes watched at once */
#define RW_MAX_CPUS 1024  /* CPUs whose occupant is known; past it: unknown */
#define RW_FILTER_BITS 65536 /* the tgid filter in front of the lookup */

#endif
