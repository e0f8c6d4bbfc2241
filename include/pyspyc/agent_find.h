/* agent_find.h - the processes a service's selectors choose, now.
 *
 * A scan is one look at the system's processes (pid, parent, start time),
 * taken once per rediscovery and shared by every service; each service's
 * selectors (agent_conf.h) are then resolved against it:
 *   pid, pidfile   the process and its descendants (a pid file that cannot
 *                  be read, or names no live process, selects nothing)
 *   match          every process whose command line (arguments joined by
 *                  spaces) the regular expression matches, but this one
 *   unit, cgroup   every process in the control group (cgroup.procs) and
 *                  in the groups under it; a unit's group is found by name
 *                  under the cgroup2 mount
 * Processes are told apart by pid and start time.  Nothing here samples,
 * and nothing decides whether a process is Python.
 */
#ifndef PYSPYC_AGENT_FIND_H
#define PYSPYC_AGENT_FIND_H

#include <stddef.h>
#include <sys/types.h>

#include "pyspyc/agent_conf.h"
#include "pyspyc/proc.h"

#define AGENT_SCAN_MAX 65536  /* processes one scan keeps */
#define AGENT_CGROUP_ROOT "/sys/fs/cgroup"

struct agent_scan {
	struct proc_ident *procs; /* sorted by pid */
	size_t n, cap;
	size_t left_out;          /* processes past AGENT_SCAN_MAX */
	pid_t self;
};

/* Take a scan of /proc (again): 0 or -errno. */
int agent_scan_take(struct agent_scan *sc);
void agent_scan_release(struct agent_scan *sc);

/* The scan's entry of pid, or NULL. */
const struct proc_ident *agent_scan_get(const struct agent_scan *sc, pid_t pid);

/* Where a selector failed, for `--check` and the log: one line per
 * selector that chose nothing because something could not be read (a pid
 * file, a control group), not for one that chose no process. */
struct agent_find_notes {
	char text[512];
};

/* The processes service s selects in scan sc, sorted by pid, into
 * out[0..cap); *n gets the count (processes past cap are counted in
 * *left_out).  cgroup_root is the cgroup2 mount (AGENT_CGROUP_ROOT; the
 * tests give another).  notes (may be NULL) gets what could not be read.
 * Returns 0 or -ENOMEM. */
int agent_find(const struct agent_scan *sc, const struct agent_service *s,
	       const char *cgroup_root, struct proc_ident *out, size_t cap, size_t *n,
	       size_t *left_out, struct agent_find_notes *notes);

/* The directory of the control group unit is in (a name under
 * cgroup_root, searched a few levels deep, system.slice first) into path.
 * 0, -ENOENT, or -ENAMETOOLONG. */
int agent_unit_cgroup(const char *cgroup_root, const char *unit, char *path, size_t size);

#endif
