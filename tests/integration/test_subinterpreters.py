"""Sub-interpreters created after attach are sampled: record -p (also with
-i, -t and -g), launch mode and dump, on every CPython found (3.8+ through
_xxsubinterpreters / _interpreters, 2.7-3.7 through Py_NewInterpreter by
ctypes; see tests/apps/subinterp.py).

The thread that runs the sub-interpreter has a thread state in each
interpreter: its stack shows once, busy_in_subinterp on top of
run_subinterp, the main interpreter's frames that called it."""
import os
import subprocess
import time

import pytest

from conftest import APPS, PYSPYC, bpf_unavailable, frame_name, parse_collapsed, run_pyspyc, why

BUSY = "busy_in_subinterp"
CALLER = "run_subinterp"


def names(frames):
    return [frame_name(f) for f in frames]


def count(stacks, name):
    return sum(c for fr, c in stacks if name in names(fr))


def check_stitched(stacks, err):
    """Every stack of the sub-interpreter has the calling frames below it,
    and the calling thread is not shown a second time on its own."""
    busy = count(stacks, BUSY)
    assert busy >= 30, "%d samples in %s: %s" % (busy, BUSY, err)
    for fr, c in stacks:
        n = names(fr)
        if BUSY in n:
            assert CALLER in n and n.index(CALLER) < n.index(BUSY), fr
    # The caller on its own, its sub-interpreter's frames missing: only
    # while the sub-interpreter is being made in C, a moment.
    alone = sum(c for fr, c in stacks if names(fr)[-1] == CALLER)
    assert alone <= 0.25 * busy, (alone, busy, stacks)


def test_record_attached_before_subinterpreter(model_python, target, tmp_path):
    """Three recordings at once, all attached before the sub-interpreter
    exists: plain, -i -t (one stack per thread per tick) and -g (3.12+: the
    sub-interpreter has a GIL of its own)."""
    t = target(model_python, "subinterp.py", 1.0, 2.0)
    runs = {}
    for name, opts in (("plain", []), ("idle", ["-i", "-t"]), ("gil", ["-g"])):
        out = tmp_path / (name + ".folded")
        runs[name] = (out, subprocess.Popen(
            [PYSPYC, "record", "-r", "100", "-d", "3", "-o", str(out), "-p", str(t.pid)] + opts,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True))
    res = {}
    for name, (out, p) in runs.items():
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, why(name, err)
        res[name] = (parse_collapsed(out.read_text()), err)
    for name in ("plain", "gil"):
        stacks, err = res[name]
        assert count(stacks, BUSY) >= 30, why(name, stacks, err)
    stacks, err = res["idle"]
    check_stitched(stacks, err)
    # -t: the stitched stack is under the thread that runs it, once.
    roots = set(fr[0] for fr, _ in stacks if BUSY in names(fr))
    assert len(roots) == 1 and '"subinterp"' in roots.pop(), stacks
    # The main thread (sleeping, -i) is still there.
    assert count(stacks, "main") >= 100, why(stacks, err)


def test_launch_samples_subinterpreter(model_python, tmp_path):
    out = tmp_path / "launch.folded"
    r = run_pyspyc(["record", "-r", "100", "-i", "-o", str(out), "--",
                    model_python, os.path.join(APPS, "subinterp.py"), "0.3", "1.5"], timeout=120)
    assert r.returncode == 0, r.stderr
    check_stitched(parse_collapsed(out.read_text()), r.stderr)


def test_dump_shows_both_interpreters(python, target):
    t = target(python, "subinterp.py", 0.1, 3.0)
    for _ in range(20):
        time.sleep(0.2)
        r = run_pyspyc(["dump", "-p", str(t.pid)])
        assert r.returncode == 0, r.stderr
        if BUSY in r.stdout:
            break
    blocks = r.stdout.split("\nThread ")[1:]
    sub = [b for b in blocks if BUSY in b]
    assert len(sub) == 1, r.stdout
    # On top of its caller, in one thread; the main thread is there too.
    lines = [l.strip().split(" (")[0] for l in sub[0].splitlines()[1:]]
    assert lines.index(BUSY) < lines.index(CALLER), r.stdout
    assert any(l.strip().startswith("main (") for b in blocks if b is not sub[0]
               for l in b.splitlines()), r.stdout


def test_bpf_walks_both_interpreters(model_python, target, tmp_path):
    """The eBPF backend walks the thread states of a thread in a
    sub-interpreter one after another, the newest interpreter's first: the
    same stitched stacks, from the kernel."""
    reason = bpf_unavailable()
    if reason:
        pytest.skip("eBPF backend: %s" % reason)
    t = target(model_python, "subinterp.py", 0.3, 2.0)
    out = tmp_path / "bpf.folded"
    r = run_pyspyc(["record", "--backend", "bpf", "-r", "100", "-d", "2.5", "-o", str(out),
                    "-p", str(t.pid)], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "backend bpf" in r.stderr, r.stderr
    check_stitched(parse_collapsed(out.read_text()), r.stderr)
