/* agent_tap.h - a window of its own on a service's live sample stream.
 *
 * The agent's HTTP requests (/debug/pprof/profile?seconds=N) each want
 * the samples of their own N seconds, while the service's stacktab goes
 * on counting into its rotating windows.  A tap does it without touching
 * the sampling path: it keeps the counts the open window had when the tap
 * began (its base, by the window's stack index), and each time the owner
 * looks (a snapshot of the open window, or the window just closed by a
 * rotation) it adds what grew since to its own counts, kept by the
 * stack's frame ids, which a stacktab keeps for its whole life.  Counts in
 * a window only grow, so what a tap adds is never negative and every
 * sample counted between its start and its last look is counted in it
 * once; two taps over the same time each get every sample.
 *
 * Calls on one tap are serialized by the caller, as are stacktab_snapshot
 * and stacktab_rotate, which give the profiles it reads.
 */
#ifndef PYSPYC_AGENT_TAP_H
#define PYSPYC_AGENT_TAP_H
#include <stddef.h>
#include <stdint.h>

#include "pyspyc/profile.h"

struct tap;

/* A tap whose base is the open window's counts now (open: a snapshot of
 * it, or NULL for an empty window).  0 or -ENOMEM. */
int tap_new(struct tap **out, const struct profile *open);
void tap_free(struct tap *t);
/* Add what p (a snapshot of the open window, or with closed set the
 * window a rotation just closed) counted past the base; the base becomes
 * p's counts, or empty when p was closed (the next window starts empty).
 * 0, or -ENOMEM (nothing added: the tap is as before). */
int tap_take(struct tap *t, const struct profile *p, int closed);
/* Samples the tap holds. */
uint64_t tap_total(const struct tap *t);

/* One tap of a profile of taps, and the frames its ids index: a snapshot
 * of its stacktab taken after its last tap_take. */
struct tap_part {
	const struct tap *tap;
	const struct profile *frames;
	const char *service;    /* the service marker's name (mark) */
};

/* The profile of parts[0..n): their frames side by side, their stacks;
 * with mark, each stack under a FRAME_SERVICE marker of its part.  The
 * profile borrows the parts' frames and strings and the taps: release it
 * first.  The caller sets what was profiled (rate, times).  0 or
 * -ENOMEM. */
int tap_profile(const struct tap_part *parts, size_t n, int mark, struct profile *out);
#endif
