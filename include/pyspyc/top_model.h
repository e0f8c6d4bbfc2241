/* top_model.h - the numbers behind `pyspyc top`, from profile snapshots.
 *
 * The model turns a series of profile snapshots of one live stacktab (each
 * holding every count since sampling began) into one row per function:
 *
 *   own    samples in which the function was the innermost frame;
 *   total  samples in which it was anywhere on the stack, counted once per
 *          stack however often it recurses.
 *
 * A function is the key (name, file, line) with line numbers on, or
 * (name, file) with them off; frames that differ only in kind are one
 * function.  FRAME_SPECIAL frames (process, thread and truncation markers)
 * are not functions: they are skipped, and a stack whose innermost frame is
 * one gives its own sample to the innermost real function.
 *
 * Each row carries two windows, after py-spy's top:
 *   - the interval: between the last two updates ("what runs now"), shown
 *     as percentages of the samples taken in that interval;
 *   - the window: since the last reset (or the start), shown as times
 *     (samples / the sampling rate, in thread-seconds).
 * A reset moves a baseline to the latest update; counts before it are
 * subtracted from everything shown after.  Both line-number modes are kept
 * up to date at every update, so toggling them is immediate and exact.
 *
 * The model copies every string it keeps: the profiles passed in may be
 * released as soon as top_model_update returns.  Memory grows with the
 * number of distinct functions and is reused from update to update.
 *
 * Not thread-safe: one thread updates, sorts and reads it.
 */
#ifndef PYSPYC_TOP_MODEL_H
#define PYSPYC_TOP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "pyspyc/profile.h"

/* Columns, in display order; keys 1-4 pick them. */
enum top_col {
	TOP_COL_OWN_PCT = 0,    /* own samples in the interval */
	TOP_COL_TOTAL_PCT = 1,  /* total samples in the interval */
	TOP_COL_OWN_TIME = 2,   /* own samples in the window */
	TOP_COL_TOTAL_TIME = 3, /* total samples in the window */
	TOP_NCOLS = 4,
};

struct top_row {
	const char *name;    /* as the target named it: escape before display */
	const char *file;
	int line;            /* 0: line numbers off, or unknown */
	uint64_t own_now;    /* samples in the interval */
	uint64_t total_now;
	uint64_t own;        /* samples in the window */
	uint64_t total;
	double own_pct;      /* own_now / samples in the interval, in % */
	double total_pct;
	double own_s;        /* own / rate, seconds */
	double total_s;
};

struct top_model;

/* rate_hz (> 0) converts sample counts to seconds.  Starts with line
 * numbers on and rows sorted by TOP_COL_OWN_TIME.  0 or -EINVAL, -ENOMEM. */
int top_model_new(struct top_model **out, double rate_hz);
void top_model_free(struct top_model *m);

/* Take a new snapshot.  p holds cumulative counts from one stacktab, so
 * every count is at least what the previous update saw; samples is the
 * cumulative number of samples the counts were taken over (the percentages'
 * denominator: session_stats.samples), 0 to use p->total.  Rebuilds and
 * re-sorts the rows.  0 or -ENOMEM (the model then keeps its previous
 * state). */
int top_model_update(struct top_model *m, const struct profile *p,
		     uint64_t samples);

/* Start the window afresh at the latest update: the rows become empty and
 * later updates show only what came after.  0 or -ENOMEM (nothing
 * changed). */
int top_model_reset(struct top_model *m);

/* Line numbers on (1) or off (0); rebuilds the rows from the latest update
 * (room for them was made by the update, so this cannot fail). */
void top_model_set_lineno(struct top_model *m, int on);
int top_model_lineno(const struct top_model *m);

/* Sort the rows by col, largest first; ties go to the other columns in
 * display order, then to name, file and line, so the order is total and
 * the same for the same counts. */
void top_model_set_sort(struct top_model *m, enum top_col col);
enum top_col top_model_sort(const struct top_model *m);

/* The rows, sorted; valid until the next call that changes the model.
 * Functions with nothing in the window are left out. */
const struct top_row *top_model_rows(const struct top_model *m, uint32_t *n);

/* Samples in the latest interval and in the window. */
uint64_t top_model_interval_samples(const struct top_model *m);
uint64_t top_model_window_samples(const struct top_model *m);

/* Header name of a column ("%Own", "%Total", "OwnTime", "TotalTime"). */
const char *top_col_name(enum top_col col);

/* Where a screen `cols` wide puts each column.  The function name keeps
 * at least TOP_NAME_MIN columns (all of a narrower screen): numeric
 * columns that would leave it less are dropped, TotalTime first, then
 * OwnTime, %Total and %Own, except that the column the rows are sorted by
 * goes last.  All four fit from TOP_COLS_ALL columns up. */
#define TOP_NAME_MIN 20
#define TOP_COLS_ALL 61

struct top_layout {
	int width[TOP_NCOLS]; /* a column's width, 0: not shown */
	int x[TOP_NCOLS];     /* where a shown column starts */
	int name_x;           /* where "Function (file:line)" starts */
};

void top_layout(int cols, enum top_col sorted, struct top_layout *out);

/* Make target-controlled text safe for a terminal, in at most max_cols
 * display columns: invalid UTF-8, control characters (C0, DEL, C1) and
 * characters without a positive width (format characters such as bidi
 * overrides, combining marks) each become one '?'; with utf8 == 0 every
 * non-ASCII character does too.  Characters that do not fit whole are cut
 * off.  Writes a NUL-terminated string of at most size-1 bytes to out
 * (size >= 1) and returns the columns it takes.  Wide characters are
 * measured with wcwidth(), so the caller's LC_CTYPE must be a UTF-8 locale
 * when utf8 is 1. */
int top_safe_text(const char *in, int max_cols, int utf8, char *out,
		  size_t size);

#endif
