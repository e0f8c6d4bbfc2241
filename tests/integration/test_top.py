"""pyspyc top: the live view, driven through a real terminal (tmux).

Each test runs `pyspyc top ...; echo EXITED $?` in a shell inside a
detached tmux server of its own, reads the screen with capture-pane and
sends keys.  Waits are generous: a loaded 2-core machine may take a while to
draw the first rows.
"""
import os
import re
import shlex
import subprocess
import sys
import time
import uuid

import pytest

from conftest import APPS, PYSPYC, app_line, run_pyspyc, why

ROWS_WAIT = 20.0
EXIT_WAIT = 20.0

# "  78.00%   78.00%      2.45s      2.45s  now (split.py:22)"
ROW = re.compile(r"^\s*(\d+\.\d\d)%\s+(\d+\.\d\d)%\s+(\d+\.\d+)([sh])\s+(\d+\.\d+)([sh])  (.*)$")
COLUMNS = ("%Own", "%Total", "OwnTime", "TotalTime")


class Row:
    def __init__(self, m):
        self.own_pct = float(m.group(1))
        self.total_pct = float(m.group(2))
        self.own_s = float(m.group(3)) * (3600 if m.group(4) == "h" else 1)
        self.total_s = float(m.group(5)) * (3600 if m.group(6) == "h" else 1)
        self.function = m.group(7).rstrip()

    def value(self, col):
        return (self.own_pct, self.total_pct, self.own_s, self.total_s)[col]

    @property
    def name(self):
        return self.function.rsplit(" (", 1)[0]

    def __repr__(self):
        return "Row(%r %.2f%% %.2f%% %.2fs %.2fs)" % (
            self.function, self.own_pct, self.total_pct, self.own_s, self.total_s)


def rows_of(screen):
    return [Row(m) for m in (ROW.match(l) for l in screen.splitlines()) if m]


class Tmux:
    """A private tmux server (its own socket) running one shell, 160x40."""

    def __init__(self):
        self.sock = "pyspyc-top-%d-%s" % (os.getpid(), uuid.uuid4().hex[:10])
        env = dict(os.environ, PS1="$ ", ENV="/dev/null")
        env.pop("TMUX", None)
        self.tmux(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "160",
                   "-y", "40", "sh"], env=env)
        self.tmux(["set-option", "-t", "t", "remain-on-exit", "on"])

    def tmux(self, args, **kw):
        return subprocess.run(["tmux", "-L", self.sock] + args, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=30, **kw)

    def run(self, line):
        """Type a command line into the shell."""
        self.tmux(["send-keys", "-t", "t", "-l", line])
        self.tmux(["send-keys", "-t", "t", "Enter"])

    def keys(self, *keys):
        self.tmux(["send-keys", "-t", "t"] + list(keys))

    def screen(self):
        return self.tmux(["capture-pane", "-p", "-t", "t"]).stdout

    def title(self):
        return self.tmux(["display-message", "-p", "-t", "t", "#{pane_title}"]).stdout

    def alternate_on(self):
        return self.tmux(["display-message", "-p", "-t", "t",
                          "#{alternate_on}"]).stdout.strip() == "1"

    def wait_screen(self, pred, timeout):
        """The first screen pred accepts, or the last one seen (for the
        assertion message) with ok=False."""
        end = time.time() + timeout
        s = self.screen()
        while time.time() < end:
            s = self.screen()
            if pred(s):
                return s, True
            time.sleep(0.1)
        return s, False

    def kill(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)


@pytest.fixture
def tmux():
    if subprocess.run(["sh", "-c", "command -v tmux"], stdout=subprocess.DEVNULL).returncode:
        pytest.skip("tmux is not installed")
    t = Tmux()
    yield t
    t.kill()


def top_line(args):
    return "%s top %s; echo EXITED $?" % (shlex.quote(PYSPYC),
                                         " ".join(shlex.quote(str(a)) for a in args))


def exited(screen):
    m = re.search(r"^EXITED (\d+)\s*$", screen, re.M)
    return int(m.group(1)) if m else None


def wait_rows(tm, pred=lambda rows, s: True, timeout=ROWS_WAIT):
    s, ok = tm.wait_screen(lambda s: bool(rows_of(s)) and pred(rows_of(s), s), timeout)
    assert ok, "no rows as expected within %.0f s; screen:\n%s" % (timeout, s)
    return s, rows_of(s)


def window_of(s):
    """The samples in top's window, from its counters line (0 if none)."""
    m = re.search(r"Window (\d+) samples", s)
    return int(m.group(1)) if m else 0


def sorted_by(rows, col):
    vals = [r.value(col) for r in rows]
    return all(a >= b for a, b in zip(vals, vals[1:]))


def assert_shell_back(tm, s, command):
    """top is gone: its screen was the alternate one, the shell's is back."""
    assert not tm.alternate_on(), s
    assert "%Own" not in s and "Sorted by" not in s and not rows_of(s), s
    assert command[:60] in s, s  # the line typed at the prompt


def test_top_pid_keys_and_quit(one_python, target, tmux):
    t = target(one_python, "split.py", 120)
    now_line = app_line("split.py", "def now") + 1
    cmd = top_line(["--pid", t.pid])
    tmux.run(cmd)

    # Default sort: OwnTime.  The spinners spend most of their time in the
    # clock call inside now(), so now() is where time goes.
    s, rows = wait_rows(tmux, lambda rows, s: rows[0].own_s > 0.5)
    assert "Sorted by OwnTime" in s, s
    assert "pid %d" % t.pid in s and "split.py" in s.splitlines()[0], s
    assert rows[0].function == "now (split.py:%d)" % now_line, s
    assert sorted_by(rows, 2), s
    assert re.search(r"Samples \d+\.\d/s \(100 Hz\)", s), s
    assert re.search(r"Threads 1 active of 1", s), s

    # 4: TotalTime.  <module> and main hold every sample; spin_a (60%) is
    # above spin_b (40%) once each has enough samples to tell.
    tmux.keys("4")
    s, rows = wait_rows(tmux, lambda rows, s: "Sorted by TotalTime" in s and
                        rows[0].total_s >= 3.0)
    assert rows[0].name == "<module>", s
    assert sorted_by(rows, 3), s
    names = [r.name for r in rows]
    assert names.index("spin_a") < names.index("spin_b"), s

    # L: line numbers off; each function is one row; the split holds.
    tmux.keys("L")
    s, rows = wait_rows(tmux, lambda rows, s: "Function (filename)" in s)
    assert "line numbers (off)" in s, s
    fns = [r.function for r in rows]
    assert "spin_a (split.py)" in fns and "spin_b (split.py)" in fns, s
    assert len(set(fns)) == len(fns), s
    assert not any(re.search(r":\d+\)$", f) for f in fns), s
    by = {r.name: r for r in rows}
    share_a = by["spin_a"].total_s / by["<module>"].total_s
    assert 0.45 < share_a < 0.75, (share_a, s)

    # 1: %Own, over the last second.
    tmux.keys("1")
    s, rows = wait_rows(tmux, lambda rows, s: "Sorted by %Own" in s)
    assert sorted_by(rows, 0), s

    # R: counters reset, so the window starts again near zero.
    before = by["<module>"].total_s
    tmux.keys("R")
    s, rows = wait_rows(tmux, lambda rows, s: "<module>" in [r.name for r in rows] and
                        [r for r in rows if r.name == "<module>"][0].total_s < before - 1.0)

    # ?: help, then any key closes it.
    tmux.keys("?")
    s, ok = tmux.wait_screen(lambda s: "show or hide line numbers" in s, 5)
    assert ok, s
    tmux.keys("x")
    s, ok = tmux.wait_screen(lambda s: "show or hide line numbers" not in s, 5)
    assert ok, s

    tmux.keys("q")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok, s
    assert exited(s) == 0, s
    assert_shell_back(tmux, s, cmd)
    assert t.proc.poll() is None, "the target must keep running"


def test_top_function_and_ctrl_c(one_python, target, tmux):
    t = target(one_python, "split.py", 60)
    cmd = top_line(["-p", t.pid, "-r", "50", "-F"])
    tmux.run(cmd)
    # -F: one row per function, at its first line.
    first = app_line("split.py", "def spin_a")
    s, rows = wait_rows(tmux, lambda rows, s: "spin_a" in [r.name for r in rows])
    assert [r.function for r in rows if r.name == "spin_a"] == [
        "spin_a (split.py:%d)" % first], s
    assert "(50 Hz)" in s, s
    tmux.keys("C-c")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok, s
    assert exited(s) == 0, s
    assert_shell_back(tmux, s, cmd)
    assert t.proc.poll() is None


def test_top_target_exit_ends_top(one_python, target, tmux):
    t = target(one_python, "split.py", 60)
    cmd = top_line(["--pid", t.pid])
    tmux.run(cmd)
    wait_rows(tmux)
    t.stop()  # killed and reaped
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok, s
    assert exited(s) == 0, s
    assert "pyspyc top: pid %d exited" % t.pid in s, s
    assert_shell_back(tmux, s, cmd)


def test_top_launches_command(one_python, tmux):
    # split.py runs for 3 s of CPU time: longer on a busy machine.
    cmd = top_line(["-r", "200", "--nolineno", "--", one_python,
                    os.path.join(APPS, "split.py"), "3"])
    tmux.run(cmd)
    s, rows = wait_rows(tmux, lambda rows, s: "spin_a" in s)
    assert "Samples" in s and "(200 Hz)" in s, s
    assert "Function (filename)" in s and "spin_a (split.py)" in s, s
    # The target's own output ("ready") must not scribble on the view.
    assert "ready" not in s, s
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, 3 * EXIT_WAIT)
    assert ok, s
    assert exited(s) == 0, s
    assert_shell_back(tmux, s, cmd)


# hostile.py's code objects, renamed with terminal escapes: a clear-screen, a
# window-title change, a bell, a C1 CSI and a right-to-left override.
HOSTILE = r'''
import sys, time
sys.path.insert(0, sys.argv[2])
import hostile
hostile.FILE = "esc\x1b[7mfile.py"
NAMES = ["clear\x1b[2Jscreen", "title\x1b]2;pwned\x07set", "bell\x07x",
         "csi\u009b31mred", "rtl\u202eevil"]
funcs = [hostile.make(n) for n in NAMES]
sys.stdout.write("ready\n")
sys.stdout.flush()
stop = time.time() + float(sys.argv[1])
while time.time() < stop:
    for f in funcs:
        f(hostile._cpu() + 0.0137)  # the spinners run by CPU time
'''


def test_top_escapes_target_text(one_python, target, tmux, tmp_path):
    app = tmp_path / "evil.py"
    app.write_text(HOSTILE)
    t = target(one_python, str(app), 60, APPS)
    cmd = top_line(["--pid", t.pid, "--nolineno"])
    tmux.run(cmd)
    want = ["clear?[2Jscreen", "title?]2;pwned?set", "bell?x", "csi?31mred", "rtl?evil"]
    s, rows = wait_rows(tmux, lambda rows, s: all(w in s for w in want))
    assert "esc?[7mfile.py" in s, s
    assert "pwned" not in tmux.title()
    # The screen was not cleared from under the view: the header is intact.
    assert "Sorted by OwnTime" in s and "%Own" in s, s
    tmux.keys("q")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok and exited(s) == 0, s


# A Python parent with two split.py workers; prints their pids after "ready".
PARENT = r'''
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, sys.argv[1], "60"], stdout=subprocess.PIPE)
        for _ in range(2)]
for k in kids:
    k.stdout.readline()
sys.stdout.write("ready\n%s\n" % " ".join(str(k.pid) for k in kids))
sys.stdout.flush()
time.sleep(120)
'''


def test_top_subprocesses(one_python, target, tmux, tmp_path):
    app = tmp_path / "parent.py"
    app.write_text(PARENT)
    t = target(one_python, str(app), os.path.join(APPS, "split.py"))
    kids = [int(p) for p in t.proc.stdout.readline().split()]
    try:
        cmd = top_line(["-s", "--nolineno", "--pid", t.pid])
        tmux.run(cmd)
        # Shares are judged on a window of some size: the first screen can
        # hold a dozen samples, where both workers in spin_a at once (each
        # spends 60% of its time there) is an even chance, not a fault.
        s, rows = wait_rows(tmux, lambda rows, s: "spin_a" in s and "spin_b" in s and
                            "Processes 3" in s and window_of(s) >= 200)
        assert "and its subprocesses" in s.splitlines()[0], s
        # Both workers spin: <module> is on two stacks at every tick, and
        # spin_a holds about 60% of them.
        by = {r.name: r for r in rows}
        assert by["<module>"].total_s > 1.2 * by["spin_a"].total_s, s
        tmux.keys("q")
        s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
        assert ok and exited(s) == 0, s
        assert_shell_back(tmux, s, cmd)
    finally:
        for k in kids:
            try:
                os.kill(k, 9)
            except OSError:
                pass


def test_top_needs_a_terminal(one_python, target):
    t = target(one_python, "split.py", 30)
    r = run_pyspyc(["top", "--pid", str(t.pid)], stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r
    assert r.stdout == "", "no escape codes into a pipe"
    assert len(r.stderr.splitlines()) == 1 and "not a terminal" in r.stderr, r.stderr
    # A command is not started when there is nothing to show it on.
    marker = "pyspyc-top-never-%s" % uuid.uuid4().hex
    r = run_pyspyc(["top", "--", sys.executable, "-c", "open(%r, 'w')" % marker],
                   stdin=subprocess.DEVNULL, cwd="/tmp")
    assert r.returncode == 2, r
    time.sleep(0.5)
    assert not os.path.exists(os.path.join("/tmp", marker))


def test_top_usage_errors(one_python, target):
    cases = [
        ([], 2, "nothing to watch"),
        (["--pid", "1", "--", "true"], 2, "not both"),
        (["--rate", "0", "--pid", "1"], 2, "--rate"),
        (["--rate", "fast", "--pid", "1"], 2, "--rate"),
        (["--bogus"], 2, "unknown option"),
        (["--pid", "4194303"], 3, "no process"),
    ]
    for args, code, text in cases:
        r = run_pyspyc(["top"] + args, stdin=subprocess.DEVNULL)
        assert r.returncode == code, (args, r)
        assert len(r.stderr.splitlines()) == 1 and text in r.stderr, why(args, r.stderr)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = run_pyspyc(["top", "--pid", str(sleeper.pid)], stdin=subprocess.DEVNULL)
        assert r.returncode == 5, r
        assert "not a Python process" in r.stderr and "--subprocesses" in r.stderr, r.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    r = run_pyspyc(["top", "--help"])
    assert r.returncode == 0 and "Examples:" in r.stdout
    for opt in ("--pid", "--rate", "--subprocesses", "--idle", "--gil", "--nolineno",
                "--function", "--full-filenames"):
        assert opt in r.stdout, opt


def test_top_names_max_threads(one_python, target, tmux):
    """Threads past --max-threads (the oldest) are named on the status line."""
    t = target(one_python, "many_threads.py", 120, 60)
    # The bound on threads read a sample is the user-space backend's.
    cmd = top_line(["--backend", "user", "-p", t.pid, "--max-threads", "50"])
    tmux.run(cmd)
    want = "up to 72 threads left out of a sample (the oldest): raise --max-threads (50)"
    s, ok = tmux.wait_screen(lambda s: want in s, ROWS_WAIT)
    assert ok, s
    tmux.keys("q")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok and exited(s) == 0, s


def test_top_narrow_keeps_function_names(one_python, target, tmux):
    """At 40 columns the function names stay; the numeric columns go,
    TotalTime first and the sort column (OwnTime, the default) last."""
    t = target(one_python, "split.py", 60)
    tmux.tmux(["resize-window", "-t", "t", "-x", "40", "-y", "30"])
    tmux.run(top_line(["-p", t.pid, "-r", "50"]))
    s, ok = tmux.wait_screen(lambda s: re.search(r"^ +\S+s +spin_a ", s, re.M), ROWS_WAIT)
    assert ok, s
    head = [l for l in s.splitlines() if "Function" in l]
    assert head and "OwnTime" in head[0] and "TotalTime" not in head[0], s
    tmux.keys("q")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
    assert ok and exited(s) == 0, s
