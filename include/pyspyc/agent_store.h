/* agent_store.h - the agent's windows on disk, and what it keeps of them.
 *
 * A window of a service is STATE_DIR/SERVICE/START.pb.gz, START being the
 * window's start in UTC as YYYYMMDDTHHMMSSZ (so a listing is a timeline),
 * with START.folded beside it when asked; "-2", "-3"... follow START when
 * a second window starts in the same second.  Each file is written
 * atomically (output.h's out_write_file: a temporary file, fsync, rename)
 * and the directory is synced after the rename.
 *
 * Retention: a window goes when it is older than its service's keep_age,
 * when its service's files pass that service's keep_bytes (the oldest
 * first), or when all services' files pass the overall keep_bytes (the
 * oldest of all first); a service's newest window is never deleted to make
 * room.  Free space is not made by deleting: when writing would leave less
 * than min_free on the file system, the window is not written
 * (agent_store_room says so) and the history stays.
 */
#ifndef PYSPYC_AGENT_STORE_H
#define PYSPYC_AGENT_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One window's files, as found on disk. */
struct agent_window_file {
	uint32_t service;  /* index into the services given */
	int64_t start_ns;  /* Unix time, from its name */
	uint32_t seq;      /* 1, or N of a "-N" name */
	uint64_t bytes;    /* of all its files */
	int doomed;        /* set by agent_retention_plan */
};

struct agent_retention {
	uint64_t keep_bytes;            /* all services together; 0: no bound */
	const uint64_t *svc_keep_bytes; /* per service; 0: no bound */
	const double *svc_keep_age_s;   /* per service; 0: no bound */
	int64_t now_ns;                 /* Unix time */
};

/* Mark (doomed) the windows retention deletes, by the rules above.
 * Returns how many.  Pure. */
size_t agent_retention_plan(struct agent_window_file *v, size_t n,
			    const struct agent_retention *r);

/* A window's name stem for start_ns (Unix ns) and seq: "YYYYMMDDTHHMMSSZ"
 * or with "-SEQ"; and back (0 or -EINVAL).  Pure. */
int agent_window_stem(int64_t start_ns, uint32_t seq, char *buf, size_t size);
int agent_window_parse(const char *name, int64_t *start_ns, uint32_t *seq, const char **ext);

/* Every window file of the services under state_dir into *out (caller
 * frees), bytes summed per window.  Files that are not windows are left
 * alone.  0 or -errno. */
int agent_store_list(const char *state_dir, const char *const *services, size_t nservices,
		     struct agent_window_file **out, size_t *n);

/* Delete the files of the doomed windows.  Returns the bytes freed. */
uint64_t agent_store_delete(const char *state_dir, const char *const *services,
			    const struct agent_window_file *v, size_t n);

/* Is there room to write need bytes under dir and keep min_free_bytes (or,
 * when that is 0, min_free_pct percent of the file system) free?  0, or
 * -ENOSPC with why (one line) set, or -errno (statvfs). */
int agent_store_room(const char *dir, uint64_t need, uint64_t min_free_bytes,
		     double min_free_pct, char *why, size_t whylen);

/* Make STATE_DIR/SERVICE (mode 0750) if missing.  0 or -errno. */
int agent_store_service_dir(const char *state_dir, const char *service);

/* The path of a new window of service starting at start_ns, without its
 * extension (".pb.gz", ".folded" go after it): the first seq none of whose
 * files exists yet.  0 or -errno (-EEXIST past seq 999). */
int agent_store_path(const char *state_dir, const char *service, int64_t start_ns,
		     char *path, size_t size);

/* After a file was renamed into dir: make the rename durable.  0 or
 * -errno. */
int agent_store_sync_dir(const char *dir);

#endif
