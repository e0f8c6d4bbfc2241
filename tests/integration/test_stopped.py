"""A stopped target runs nothing (issue 14 NOTES: the SIGSTOP rule).

One rule for record, top and dump: a thread is active when /proc says it runs
or may run, or when it holds the GIL -- unless it is stopped (state T or t),
GIL or not.  A SIGSTOPped busy target gets no active samples, dump calls its
GIL holder idle, top counts no active thread; after SIGCONT it is busy again.
The GIL is found differently by version (a symbol up to 3.6, the runtime
3.7-3.11, the interpreter from 3.12): one Python of each kind."""
import os
import re
import signal
import time

import pytest

from conftest import PYTHONS, parse_collapsed, proc_stat, run_pyspyc, wait_for
from test_top import Tmux, top_line

KINDS = [p for p in PYTHONS if p[2] in ((2, 7), (3, 11), (3, 12))]

IDLE = re.compile(r"(\d+) idle thread stacks left out")
SAMPLES = re.compile(r"(\d+) samples, ")


def stopped_params():
    if not KINDS:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no CPython of the kinds"))]
    return [pytest.param(p[1], id=p[0]) for p in KINDS]


def record_total(pid, tmp_path, *extra):
    out = tmp_path / "s.folded"
    if out.exists():
        out.unlink()
    # A stopped process is the user-space backend's to count idle (the eBPF
    # backend samples threads on a CPU: a stopped one has no samples).
    r = run_pyspyc(["record", "--backend", "user", "-p", str(pid), "-r", "200", "-d", "1",
                    "-f", "collapsed",
                    "-o", str(out)] + list(extra), timeout=60)
    assert r.returncode == 0, r.stderr
    text = out.read_text() if out.exists() else ""
    return sum(c for _, c in parse_collapsed(text)), r.stderr


def dump_state(pid):
    r = run_pyspyc(["dump", "-p", str(pid)], timeout=30)
    assert r.returncode == 0, r.stderr
    m = re.search(r"^Thread \d+ \(([a-z+]+)\)", r.stdout, re.M)
    assert m, r.stdout
    return m.group(1)


def stop(pid):
    """SIGSTOP pid at a moment its thread holds the GIL (the case the rule
    is about: a stopped holder is idle too)."""
    for _ in range(20):
        os.kill(pid, signal.SIGSTOP)
        assert wait_for(lambda: (proc_stat(pid) or ("?",))[0] == "T"), proc_stat(pid)
        if dump_state(pid).endswith("+gil"):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("never stopped holding the GIL")


@pytest.mark.parametrize("py", stopped_params())
def test_stopped_target_is_idle(py, target, tmp_path):
    t = target(py, "generators.py", "both", 60)
    # Running: the GIL holder is active.
    assert dump_state(t.pid) in ("active", "active+gil")
    stop(t.pid)
    try:
        total, err = record_total(t.pid, tmp_path)
        assert total == 0, err
        m = IDLE.search(err)
        assert m and int(m.group(1)) >= 20, err
        # dump agrees, with or without the GIL shown.
        assert dump_state(t.pid) in ("idle", "idle+gil")
        # Pausing a stopped target (--blocking) changes nothing.
        total, err = record_total(t.pid, tmp_path, "--blocking")
        assert total == 0, err
        assert proc_stat(t.pid)[0] == "T"
    finally:
        os.kill(t.pid, signal.SIGCONT)
    # Busy again: stacks counted, (nearly) none left out as idle, however
    # loaded the machine (2.7 drops many as torn: its generator frames are
    # told by their code, after the walk, and not read again).
    total, err = record_total(t.pid, tmp_path)
    samples = int(SAMPLES.search(err).group(1))
    m = IDLE.search(err)
    assert samples >= 20 and total > 0 and (int(m.group(1)) if m else 0) <= 0.2 * samples, err
    assert dump_state(t.pid) in ("active", "active+gil")


def test_top_counts_stopped_target_idle(one_python, target):
    if os.system("command -v tmux >/dev/null 2>&1"):
        pytest.skip("tmux is not installed")
    t = target(one_python, "generators.py", "both", 60)
    stop(t.pid)
    tm = Tmux()
    try:
        tm.run(top_line(["--backend", "user", "-p", t.pid, "-r", "100"]))
        s, ok = tm.wait_screen(lambda s: re.search(r"Samples [1-9][\d.]*/s", s), 20)
        assert ok, s
        # Some refreshes later, still nothing active.
        time.sleep(1.5)
        s = tm.screen()
        assert re.search(r"Threads 0 active of 1", s), s
        assert "main (" not in s, s
        os.kill(t.pid, signal.SIGCONT)
        s, ok = tm.wait_screen(lambda s: re.search(r"Threads 1 active of 1", s) and
                               "main (" in s, 20)
        assert ok, s
        tm.keys("q")
    finally:
        os.kill(t.pid, signal.SIGCONT)
        tm.kill()
