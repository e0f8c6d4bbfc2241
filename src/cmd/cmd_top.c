/* cmd_top.c - `pyspyc top`: a live view of where a program's time goes.
 *
 * Attaches (or launches), starts a session that samples into a stacktab,
 * and redraws an ncurses screen every second from a snapshot of it, through
 * top_model.  The terminal is restored on every way out: q, Ctrl-C,
 * SIGTERM/SIGHUP and the target's exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include "pyspyc/cli.h"
#include "pyspyc/cmd.h"
#include "pyspyc/cmd_util.h"
#include "pyspyc/proc.h"
#include "pyspyc/py_runtime.h"
#include "pyspyc/session.h"
#include "pyspyc/stacktab.h"
#include "pyspyc/top_model.h"

#define WHO "pyspyc top"
#define REFRESH_NS 1000000000LL
#define POLL_MS 200         /* how often the loop looks at the session */
#define HEAD_ROWS 5         /* title, counters, status, blank, column names */
#define TEXT_MAX 4096       /* one screen line, in bytes */

struct top_args {
	long long pid;
	struct sample_args s;
	int subprocesses;
	int nolineno;
};

#define OFF(f) offsetof(struct top_args, f)

static const struct opt top_opts[] = {
	{ 'p', "pid", OPT_INT, "PID", "watch the running process PID",
	  OFF(pid), 1, 4194304, 0 },
	SAMPLE_OPT_RATE(struct top_args, s),
	{ 's', "subprocesses", OPT_FLAG, NULL,
	  "also watch every Python process under the target, including ones "
	  "started later (web server workers)",
	  OFF(subprocesses), 0, 0, 0 },
	SAMPLE_OPTS_MODE(struct top_args, s),
	{ 0, "nolineno", OPT_FLAG, NULL,
	  "start with line numbers hidden (L shows them)",
	  OFF(nolineno), 0, 0, 0 },
	SAMPLE_OPTS_NAMES(struct top_args, s),
	SAMPLE_OPTS_LIMITS(struct top_args, s),
};

static const struct cmd_usage top_usage = {
	.name = "top",
	.synopsis = "[OPTIONS] (--pid PID | [--] COMMAND [ARGS...])",
	.about = "Show a live, top-like view of the functions a Python program spends\n"
		 "its time in, refreshed every second.  %Own and %Total are shares of\n"
		 "the last second's samples; OwnTime and TotalTime add up since the\n"
		 "start or the last reset.  Keys: 1-4 or Left/Right sort by a column,\n"
		 "L toggles line numbers, R resets the counters, Up/Down/PgUp/PgDn\n"
		 "scroll, ? shows help, Q or Ctrl-C quits.  A launched command's\n"
		 "input and output are /dev/null: the terminal is top's.",
	.opts = top_opts,
	.nopts = sizeof(top_opts) / sizeof(top_opts[0]),
	.examples =
		"  sudo pyspyc top --pid 12345\n"
		"  sudo pyspyc top -s -p $(pgrep -o gunicorn)\n"
		"  pyspyc top -r 200 --nolineno -- python3 app.py arg\n",
	.takes_command = 1,
};



/* ---- the target ---------------------------------------------------------- */

/* ---- the screen ------------------------------------------------------------ */

struct top_ui {
	const struct top_args *a;
	struct top_model *model;
	struct stacktab *tab;
	struct session *sess;
	pid_t pid;
	const char *command;       /* as given or read from /proc: escape it */
	int utf8;                  /* the terminal takes UTF-8 */

	struct session_stats st, prev; /* the latest refresh and the one before */
	int have_prev;
	int snap_err;              /* the latest snapshot's error, 0 if none */
	const char *note;          /* a passing message... */
	int64_t note_until;        /* ...shown until then (CLOCK_MONOTONIC ns) */

	uint32_t scroll;           /* first row shown */
	int help;                  /* the help page is up */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Take a snapshot and feed the model.  The stats are read after the
 * snapshot, so the samples they count cover every stack it holds. */
static void refresh_data(struct top_ui *ui)
{
	struct profile p;
	struct session_stats st;
	int err;

	memset(&p, 0, sizeof(p));
	err = stacktab_snapshot(ui->tab, &p);
	session_stats(ui->sess, &st);
	if (!err)
		err = top_model_update(ui->model, &p, st.samples);
	profile_release(&p);
	ui->snap_err = err;
	ui->prev = ui->st;
	ui->have_prev = ui->st.elapsed_s > 0;
	ui->st = st;
}

/* Write s at (y, x) as one line in at most the columns left; s is ours,
 * never the target's. */
static void put_line(int y, int x, const char *s)
{
	if (y >= LINES || x >= COLS)
		return;
	mvaddnstr(y, x, s, COLS - x);
}

/* Target text at the cursor, escaped, in at most cols columns; returns the
 * columns used. */
static int put_safe(const struct top_ui *ui, const char *s, int cols)
{
	char buf[TEXT_MAX];
	int used;

	if (cols <= 0)
		return 0;
	used = top_safe_text(s, cols, ui->utf8, buf, sizeof(buf));
	addstr(buf);
	return used;
}

static double ratio(uint64_t num, uint64_t den)
{
	return den ? 100.0 * (double)num / (double)den : 0.0;
}

static void draw_title(const struct top_ui *ui)
{
	char buf[128];
	int n;

	attron(A_BOLD);
	n = snprintf(buf, sizeof(buf), "pyspyc top - pid %d%s: ", (int)ui->pid,
		     ui->a->subprocesses ? " and its subprocesses" : "");
	put_line(0, 0, buf);
	attroff(A_BOLD);
	if (n > 0 && n < COLS)
		put_safe(ui, ui->command, COLS - n);
}

/* What a counter gained since the last refresh; never negative, whatever
 * the session does with the counters of processes that went away. */
static uint64_t gain(uint64_t now, uint64_t before)
{
	return now > before ? now - before : 0;
}

static void draw_counters(const struct top_ui *ui)
{
	static const struct session_stats zero;
	const struct session_stats *c = &ui->st, *p = ui->have_prev ? &ui->prev : &zero;
	char buf[512], gil[32], procs[32];
	double dt = c->elapsed_s - p->elapsed_s;
	uint64_t samples = gain(c->samples, p->samples), ticks = gain(c->ticks, p->ticks);
	uint64_t errors = gain(c->errors, p->errors);
	uint64_t known = gain(c->gil_known, p->gil_known);
	uint64_t held = gain(c->gil_held, p->gil_held);
	double window = (double)top_model_window_samples(ui->model);

	if (known)
		snprintf(gil, sizeof(gil), "%.1f%%", ratio(held, known));
	else
		snprintf(gil, sizeof(gil), "n/a");
	snprintf(procs, sizeof(procs), "  Processes %u", c->processes);
	snprintf(buf, sizeof(buf),
		 "Samples %.1f/s (%g Hz%s)  Threads %llu active of %llu  GIL %s  "
		 "Errors %.1f%%  Window %.0f samples%s",
		 dt > 0 ? (double)samples / dt : 0.0, ui->a->s.rate,
		 c->processes > 1 ? " each" : "",
		 (unsigned long long)c->active, (unsigned long long)c->threads, gil,
		 ratio(errors, ticks ? ticks : samples), window,
		 ui->a->subprocesses ? procs : "");
	put_line(1, 0, buf);
}

static void draw_status(const struct top_ui *ui)
{
	const char *full = stacktab_full(ui->tab);
	char buf[256];
	int bold = 1;

	if (ui->snap_err) {
		snprintf(buf, sizeof(buf), "cannot read the counters: %s",
			 strerror(-ui->snap_err));
	} else if (ui->st.dropped && full) {
		snprintf(buf, sizeof(buf), "%llu stacks dropped: a table is full, raise %s",
			 (unsigned long long)ui->st.dropped, full);
	} else if (ui->note && now_ns() < ui->note_until) {
		snprintf(buf, sizeof(buf), "%s", ui->note);
		bold = 0;
	} else if (ui->st.processes_left_out) {
		snprintf(buf, sizeof(buf), "%u Python processes not sampled: raise "
			 "--max-processes (%lld)", ui->st.processes_left_out,
			 ui->a->s.max_processes);
	} else if (ui->st.processes_unread) {
		snprintf(buf, sizeof(buf), "%u Python processes not sampled: the eBPF program "
			 "cannot read their frames, --backend user can",
			 ui->st.processes_unread);
	} else if (ui->st.threads_left_out) {
		snprintf(buf, sizeof(buf), "up to %llu threads left out of a sample (the "
			 "oldest): raise --max-threads (%lld)",
			 (unsigned long long)ui->st.threads_left_out, ui->a->s.max_threads);
	} else {
		bold = 0;
		snprintf(buf, sizeof(buf), "Sorted by %s.  Keys: 1-4 sort  L line numbers "
			 "(%s)  R reset  ? help  Q quit",
			 top_col_name(top_model_sort(ui->model)),
			 top_model_lineno(ui->model) ? "on" : "off");
	}
	if (bold)
		attron(A_BOLD);
	put_line(2, 0, buf);
	attroff(A_BOLD);
}

/* Column layout: %Own %Total OwnTime TotalTime Function (file:line), the
 * numeric columns dropped on a narrow screen (top_layout). */
static void draw_column_names(const struct top_ui *ui, const struct top_layout *lay)
{
	int col, sorted = (int)top_model_sort(ui->model);
	char buf[32];

	attron(A_REVERSE);
	move(HEAD_ROWS - 1, 0);
	hline(' ', COLS);
	for (col = 0; col < TOP_NCOLS; col++) {
		if (!lay->width[col])
			continue;
		if (col == sorted)
			attron(A_BOLD | A_UNDERLINE);
		if (snprintf(buf, sizeof(buf), "%*s", lay->width[col], top_col_name(col)) <
		    (int)sizeof(buf))
			put_line(HEAD_ROWS - 1, lay->x[col], buf);
		if (col == sorted)
			attroff(A_BOLD | A_UNDERLINE);
	}
	put_line(HEAD_ROWS - 1, lay->name_x, top_model_lineno(ui->model) ?
		 "Function (filename:line)" : "Function (filename)");
	attroff(A_REVERSE);
}

/* Seconds in a fixed width: 12.34s, then 1234.5s, then hours. */
static void fmt_time(double s, char *buf, size_t n)
{
	if (s < 1000)
		snprintf(buf, n, "%.2fs", s);
	else if (s < 100000)
		snprintf(buf, n, "%.1fs", s);
	else
		snprintf(buf, n, "%.1fh", s / 3600);
}

static void draw_row(const struct top_ui *ui, const struct top_layout *lay, int y,
		     const struct top_row *r, char *text, size_t size)
{
	char cell[TOP_NCOLS][24], buf[64];
	int col, x = lay->name_x;

	snprintf(cell[TOP_COL_OWN_PCT], sizeof(cell[0]), "%.2f%%", r->own_pct);
	snprintf(cell[TOP_COL_TOTAL_PCT], sizeof(cell[0]), "%.2f%%", r->total_pct);
	fmt_time(r->own_s, cell[TOP_COL_OWN_TIME], sizeof(cell[0]));
	fmt_time(r->total_s, cell[TOP_COL_TOTAL_TIME], sizeof(cell[0]));
	for (col = 0; col < TOP_NCOLS; col++) {
		if (!lay->width[col])
			continue;
		if (snprintf(buf, sizeof(buf), "%*s", lay->width[col], cell[col]) <
		    (int)sizeof(buf))
			put_line(y, lay->x[col], buf);
	}
	/* "name (file:line)", cut as a whole at the edge of the screen; a name
	 * longer than the buffer is cut there first, which no screen shows. */
	if (!r->file[0])
		snprintf(text, size, "%s", r->name);
	else if (r->line > 0)
		snprintf(text, size, "%s (%s:%d)", r->name, r->file, r->line);
	else
		snprintf(text, size, "%s (%s)", r->name, r->file);
	if (x < COLS) {
		move(y, x);
		put_safe(ui, text, COLS - x);
	}
}

static void draw_help(void)
{
	static const char *const lines[] = {
		"Keys",
		"",
		"  1  sort by %Own       share of the last second's samples spent in the function itself",
		"  2  sort by %Total     ...in the function and what it called",
		"  3  sort by OwnTime    time in the function itself since the start or reset",
		"  4  sort by TotalTime  ...in the function and what it called",
		"  Left/Right            sort by the previous/next column",
		"  L  show or hide line numbers",
		"  R  reset the counters",
		"  Up/Down PgUp/PgDn Home/End  scroll",
		"  ?  show or hide this help",
		"  Q  quit (also Ctrl-C)",
		"",
		"Times are thread-seconds: samples / the sampling rate.  Percentages over",
		"100% mean several threads (or processes) ran the function at once.",
	};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		put_line(HEAD_ROWS + (int)i, 0, lines[i]);
}

static int page_rows(void)
{
	return LINES > HEAD_ROWS ? LINES - HEAD_ROWS : 0;
}

static void draw(struct top_ui *ui)
{
	const struct top_row *rows;
	uint32_t n, i, page = (uint32_t)page_rows();
	char text[TEXT_MAX];
	struct top_layout lay;

	top_layout(COLS, top_model_sort(ui->model), &lay);
	erase();
	draw_title(ui);
	draw_counters(ui);
	draw_status(ui);
	draw_column_names(ui, &lay);
	if (ui->help) {
		draw_help();
	} else {
		rows = top_model_rows(ui->model, &n);
		if (ui->scroll + page > n)
			ui->scroll = n > page ? n - page : 0;
		for (i = 0; i < page && ui->scroll + i < n; i++)
			draw_row(ui, &lay, HEAD_ROWS + (int)i, &rows[ui->scroll + i], text,
				 sizeof(text));
	}
	refresh();
}

/* Apply one key; returns 1 to quit. */
static int on_key(struct top_ui *ui, int ch)
{
	uint32_t n, page = (uint32_t)page_rows();
	int col = (int)top_model_sort(ui->model);

	top_model_rows(ui->model, &n);
	ui->note = NULL;
	if (ui->help && ch != KEY_RESIZE && ch != 'q' && ch != 'Q') {
		ui->help = 0;
		return 0;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		return 1;
	case '1':
	case '2':
	case '3':
	case '4':
		top_model_set_sort(ui->model, (enum top_col)(ch - '1'));
		ui->scroll = 0;
		break;
	case KEY_LEFT:
		top_model_set_sort(ui->model, (enum top_col)((col + TOP_NCOLS - 1) % TOP_NCOLS));
		ui->scroll = 0;
		break;
	case KEY_RIGHT:
		top_model_set_sort(ui->model, (enum top_col)((col + 1) % TOP_NCOLS));
		ui->scroll = 0;
		break;
	case 'l':
	case 'L':
		top_model_set_lineno(ui->model, !top_model_lineno(ui->model));
		break;
	case 'r':
	case 'R':
		if (top_model_reset(ui->model))
			ui->note = "cannot reset: out of memory";
		else
			ui->note = "Counters reset.";
		ui->note_until = now_ns() + 3 * REFRESH_NS;
		ui->scroll = 0;
		break;
	case '?':
	case 'h':
	case 'H':
		ui->help = 1;
		break;
	case KEY_UP:
		if (ui->scroll)
			ui->scroll--;
		break;
	case KEY_DOWN:
		if (ui->scroll + page < n)
			ui->scroll++;
		break;
	case KEY_PPAGE:
		ui->scroll = ui->scroll > page ? ui->scroll - page : 0;
		break;
	case KEY_NPAGE:
		ui->scroll += page;
		break;
	case KEY_HOME:
		ui->scroll = 0;
		break;
	case KEY_END:
		ui->scroll = n;
		break;
	default:
		break;
	}
	return 0;
}

/* The screen loop: refresh every second, react to keys in between.
 * Returns 1 when the target exited, 0 when the user quit. */
static int run_screen(struct top_ui *ui, pid_t child)
{
	int64_t next = now_ns();
	int gone = 0;

	while (!cmd_stop_flag) {
		int64_t now = now_ns(), wait_ms;
		int ch;

		if (now >= next) {
			refresh_data(ui);
			draw(ui);
			next += REFRESH_NS;
			if (next <= now)
				next = now + REFRESH_NS;
		}
		if (session_done(ui->sess) ||
		    (child && !ui->a->subprocesses && cmd_child_exited(child))) {
			gone = 1;
			break;
		}
		wait_ms = (next - now_ns() + 999999) / 1000000;
		if (wait_ms > POLL_MS)
			wait_ms = POLL_MS;
		timeout(wait_ms > 0 ? (int)wait_ms : 0);
		ch = getch();
		if (ch == ERR)
			continue;
		if (on_key(ui, ch))
			break;
		draw(ui);
	}
	return gone;
}

/* Set up curses on the terminal; NULL when it cannot drive it. */
static SCREEN *screen_open(void)
{
	SCREEN *scr = newterm(NULL, stdout, stdin);

	if (!scr)
		return NULL;
	set_term(scr);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	return scr;
}

static void screen_close(SCREEN *scr)
{
	if (!scr)
		return;
	curs_set(1);
	endwin();
	delscreen(scr);
}

/* ---- the command ----------------------------------------------------------- */

/* Checked after what can be said of the target and before a command is
 * started: a pipe or a file would get escape codes, not a view. */
static int check_terminal(void)
{
	int out = isatty(STDOUT_FILENO);

	if (out && isatty(STDIN_FILENO))
		return 0;
	return cmd_die(WHO, EXIT_USAGE, "standard %s is not a terminal: top draws a live screen "
		   "and reads keys (use 'pyspyc record' to write a profile instead)",
		   out ? "input" : "output");
}

int cmd_top(int argc, char **argv)
{
	struct top_args a = { .s = SAMPLE_ARGS_DEFAULT };
	struct backend_choice bc = { 0 };
	struct top_ui ui;
	struct py_target *t = NULL;
	struct stacktab *tab = NULL;
	struct session *sess = NULL;
	struct top_model *model = NULL;
	SCREEN *scr = NULL;
	char command[1024];
	int cmd_i, rc = EXIT_OK, e, exited = 0, have_t = 0, gone;
	unsigned int find_flags = 0;
	pid_t pid, child = 0;

	rc = cmd_parse(WHO, &top_usage, argc, argv, &a, &cmd_i, &find_flags);
	if (rc >= 0)
		return rc;
	if (a.pid && cmd_i < argc)
		return cmd_die(WHO, EXIT_USAGE, "give either --pid or a command, not both");
	if (!a.pid && cmd_i >= argc)
		return cmd_die(WHO, EXIT_USAGE,
			   "nothing to watch: give --pid PID or a command after '--'");
	if ((rc = cmd_sample_check(WHO, &a.s)))
		return rc;
	if ((rc = cmd_backend_open(WHO, &a.s, &bc)) >= 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t) {
		cmd_backend_close(&bc);
		return cmd_die(WHO, EXIT_FAILURE_RUN, "out of memory");
	}

	cmd_install_signals();
	if (a.pid) {
		pid = (pid_t)a.pid;
		if ((rc = cmd_check_pid(WHO, pid)))
			goto out;
		e = cmd_find_target(t, pid, find_flags);
		/* With -s the root may be a supervisor that is not Python. */
		if (e && !(a.subprocesses && (e == -ENOEXEC || e == -EAGAIN))) {
			rc = cmd_attach_error(WHO, e, pid, t);
			goto out;
		}
		have_t = !e;
		if (have_t && (rc = cmd_backend_fit(WHO, t, &bc)) >= 0)
			goto out;
		rc = 0;
		if (proc_cmdline(pid, command, sizeof(command)) || !command[0])
			snprintf(command, sizeof(command), "(no command line)");
		if ((rc = check_terminal()))
			goto out;
	} else {
		if ((rc = check_terminal()))
			goto out;
		cmd_join_command(argv + cmd_i, command, sizeof(command));
		e = cmd_launch(argv + cmd_i, 1, &child);
		if (e) {
			rc = cmd_launch_error(WHO, argv[cmd_i], e);
			goto out;
		}
		pid = child;
		/* With -s the session's tree watcher finds Python wherever it
		 * starts, the command itself included. */
		e = a.subprocesses ? -ENOEXEC : cmd_attach_launched(t, child, find_flags, &exited);
		if (cmd_stop_flag)
			goto out;
		if (exited) {
			rc = e == -ENOEXEC ?
				cmd_die(WHO, EXIT_NOT_PYTHON, "'%s' exited without running Python",
				    CMD_NAME(argv[cmd_i])) :
				cmd_die(WHO, EXIT_OK, "'%s' exited before it could be sampled",
				    CMD_NAME(argv[cmd_i]));
			goto out;
		}
		if (e && !a.subprocesses) {
			rc = cmd_attach_error(WHO, e, pid, t);
			goto out;
		}
		have_t = !e;
		if (have_t && (rc = cmd_backend_fit(WHO, t, &bc)) >= 0)
			goto out;
		rc = 0;
	}

	{
		struct stacktab_limits lim;
		struct session_opts so;

		cmd_sample_setup(&a.s, &so, &lim);
		cmd_backend_setup(&bc, &so);
		so.subprocesses = a.subprocesses;
		so.find_flags = find_flags;
		/* Line numbers are always recorded, so L can show them. */
		so.sym.lineno = 1;

		e = stacktab_new(&tab, &lim);
		if (!e)
			e = top_model_new(&model, a.s.rate);
		if (!e)
			e = session_new(&sess, &so, tab);
		if (!e)
			e = session_start(sess, pid, have_t ? t : NULL);
		if (e) {
			rc = cmd_die(WHO, EXIT_FAILURE_RUN, "cannot start sampling: %s", strerror(-e));
			goto out;
		}
	}
	top_model_set_lineno(model, !a.nolineno);

	setlocale(LC_CTYPE, "");
	scr = screen_open();
	if (!scr) {
		rc = cmd_die(WHO, EXIT_USAGE, "cannot drive this terminal (TERM=%.64s): set TERM "
			 "to a type terminfo knows", getenv("TERM") ? getenv("TERM") : "");
		goto out;
	}
	memset(&ui, 0, sizeof(ui));
	ui.a = &a;
	ui.model = model;
	ui.tab = tab;
	ui.sess = sess;
	ui.pid = pid;
	ui.command = command;
	ui.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	gone = run_screen(&ui, child);
	screen_close(scr);
	scr = NULL;
	rc = EXIT_OK;
	if (child) {
		/* How a command we launched ended is the exit status, as for
		 * record. */
		struct child_end end;
		char ended[128];

		session_stop(sess);
		cmd_end_child(child, &end);
		child = 0;
		cmd_child_end_words(&end, ended, sizeof(ended));
		if (ended[0])
			fprintf(stderr, "pyspyc top: %s\n", ended);
		rc = cmd_child_exit_status(rc, &end);
	} else if (gone) {
		fprintf(stderr, "pyspyc top: pid %d exited%s\n", (int)pid,
			a.subprocesses ? ", with every subprocess" : "");
	}
out:
	screen_close(scr);
	session_stop(sess);
	if (child)
		cmd_end_child(child, NULL);
	session_free(sess);
	cmd_backend_close(&bc);
	top_model_free(model);
	stacktab_free(tab);
	free(t);
	return rc;
}
