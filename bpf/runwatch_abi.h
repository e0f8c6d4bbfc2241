/* runwatch_abi.h - sizes shared by runwatch.bpf.c and src/proc/runwatch.c. */
#ifndef PYSPYC_RUNWATCH_ABI_H
#define PYSPYC_RUNWATCH_ABI_H

#define RW_MAX_SLOTS 4096 /* processes watched at once */
#define RW_MAX_CPUS 1024  /* CPUs whose occupant is known; past it: unknown */
#define RW_FILTER_BITS 65536 /* the tgid filter in front of the lookup */
/* Threads of watched processes, by tid mod RW_MAX_THREADS: each word is
 * (tid << 32 | generation << 8 | state letter): the state its last
 * scheduler event left it in ('R' running or runnable; 'S', 'D', 'T', 't'
 * as /proc says; 'X' exited), and the generation of its process's slot
 * then (slot_gen[], bumped at each runwatch_add: a word from before the
 * process was watched this time, or from another process in that slot,
 * is stale).  Two threads with one remainder share a word: the one whose
 * tid it does not hold is not known there. */
#define RW_MAX_THREADS 65536
#define RW_GEN_MASK 0xffffffu

#endif
