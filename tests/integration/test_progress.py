"""record's one-line progress display: redrawn in place while stderr is a
terminal, erased before the summary, absent when stderr is not a terminal."""
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

from conftest import PYSPYC, run_pyspyc

PROGRESS = re.compile(r"^pyspyc: (\d+\.\d) s, (\d+) samples, (\d+) errors, "
                      r"(\d+) late ticks(?:, \d+ processes)? \(Ctrl-C stops\)\x1b\[K$")
SUMMARY = re.compile(r"^pyspyc: \d+ samples, \d+ errors, \d+ torn stacks, \d+ late ticks in ")


def record_on_pty(args, env_extra=None, stdout_pty=False, columns=0, timeout=60):
    """Run pyspyc with stderr (and, if asked, stdout) on a pseudo-terminal
    (columns wide, when not 0); returns (exit status, text written to the
    stderr terminal)."""
    env = dict(os.environ, TERM="xterm")
    env.update(env_extra or {})
    master, slave = os.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    out_master = out_slave = None
    if stdout_pty:
        out_master, out_slave = os.openpty()
    try:
        proc = subprocess.Popen([PYSPYC] + args, stdin=subprocess.DEVNULL,
                                stdout=out_slave if stdout_pty else subprocess.DEVNULL,
                                stderr=slave, env=env)
    finally:
        os.close(slave)
        if out_slave is not None:
            os.close(out_slave)
    chunks, deadline = [], time.time() + timeout
    fds = [master] + ([out_master] if out_master is not None else [])
    try:
        while master in fds and time.time() < deadline:
            ready, _, _ = select.select(fds, [], [], 0.5)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    data = b""
                if not data:
                    fds.remove(fd)
                elif fd == master:
                    chunks.append(data)
        status = proc.wait(timeout=max(1, deadline - time.time()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        if out_master is not None:
            os.close(out_master)
    return status, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal(one_python, target, tmp_path):
    t = target(one_python, "split.py", 30)
    svg = tmp_path / "p.svg"
    status, text = record_on_pty(["record", "-p", str(t.pid), "-d", "2", "-o", str(svg)])
    assert status == 0, text
    assert svg.exists()
    # The terminal turns the summary's "\n" into "\r\n".
    assert text.endswith("\r\n"), repr(text[-200:])
    body = text[:-2]
    # Every redraw starts with a carriage return; the last piece is the
    # erase sequence followed by the summary.
    pieces = body.split("\r")
    assert pieces[0] == "", "output before the first progress line: %r" % pieces[0]
    progress = [PROGRESS.match(p) for p in pieces[1:-1]]
    assert all(progress), "not a progress line: %r" % [
        p for p, m in zip(pieces[1:-1], progress) if not m]
    # At 4 redraws a second, a 2 s run shows several.
    assert len(progress) >= 4, pieces
    elapsed = [float(m.group(1)) for m in progress]
    samples = [int(m.group(2)) for m in progress]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0], elapsed
    assert samples == sorted(samples) and samples[-1] > samples[0], samples
    assert elapsed[-1] >= 1.0, elapsed
    # The line is erased (cursor to column 0, clear to end of line) before
    # the summary is written over it.
    last = pieces[-1]
    assert last.startswith("\x1b[K"), repr(last)
    assert SUMMARY.match(last[len("\x1b[K"):]), repr(last)
    assert "wrote " + str(svg) in last


def test_progress_fits_a_narrow_terminal(one_python, target, tmp_path):
    # A line wider than the terminal wraps, and "\r" then goes back only to
    # the start of its last row: every redraw would leave a row behind.
    t = target(one_python, "split.py", 30)
    status, text = record_on_pty(["record", "-p", str(t.pid), "-d", "1.5",
                                  "-o", str(tmp_path / "p.svg")], columns=40)
    assert status == 0, text
    assert text.endswith("\r\n"), repr(text[-200:])
    # The last piece is the erase and the summary (which may wrap: it is
    # written once).
    pieces = text[:-2].split("\r")[1:-1]
    assert len(pieces) >= 3, pieces
    for p in pieces:
        assert p.startswith("pyspyc: ") and p.endswith("\x1b[K"), repr(p)
        assert len(p) - len("\x1b[K") < 40, repr(p)


def test_no_progress_when_stderr_is_a_pipe(one_python, target, tmp_path):
    t = target(one_python, "split.py", 30)
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-o", str(tmp_path / "p.svg")],
                   env=dict(os.environ, TERM="xterm"))
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "\x1b" not in r.stderr, repr(r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and SUMMARY.match(lines[0]), r.stderr


def test_no_progress_on_a_dumb_terminal(one_python, target, tmp_path):
    t = target(one_python, "split.py", 30)
    status, text = record_on_pty(["record", "-p", str(t.pid), "-d", "1",
                                  "-o", str(tmp_path / "p.svg")], env_extra={"TERM": "dumb"})
    assert status == 0, text
    assert "\x1b" not in text and "Ctrl-C stops" not in text, repr(text)
    assert SUMMARY.match(text), repr(text)


def test_no_progress_when_the_profile_goes_to_the_same_terminal(one_python, target):
    # -o - with stdout on a terminal: the profile is printed there, and a
    # progress line would be mixed into it.
    t = target(one_python, "split.py", 30)
    status, text = record_on_pty(["record", "-p", str(t.pid), "-d", "1", "-o", "-"],
                                 stdout_pty=True)
    assert status == 0, text
    assert "Ctrl-C stops" not in text and "\x1b" not in text, repr(text)
    assert SUMMARY.match(text), repr(text)
