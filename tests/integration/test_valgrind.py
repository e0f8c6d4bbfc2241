"""Whole runs under valgrind's memcheck: no invalid access, no use of
uninitialised memory, no leak of any kind, at exit or on the way.  (The
sanitizer build covers the rest of the suite; this covers what it does
not: uninitialised reads and leaks of still-reachable blocks.)"""
import os
import shutil
import subprocess

import pytest

from conftest import APPS, PYSPYC, why

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None, reason="no valgrind")

VALGRIND = ["valgrind", "-q", "--leak-check=full", "--show-leak-kinds=all",
            "--errors-for-leak-kinds=all", "--error-exitcode=99", "--track-fds=no",
            "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "valgrind.supp")]


def _memcheck(args, **kw):
    if "build-san" in PYSPYC:
        pytest.skip("valgrind cannot run a sanitizer build")
    r = subprocess.run(VALGRIND + [PYSPYC] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300, **kw)
    # Valgrind's own notes on syscalls it does not know (openat2) are not
    # errors in pyspyc; everything else it says is.
    said = [l for l in r.stderr.splitlines() if l.startswith("==")]
    assert r.returncode != 99 and not said, r.stderr
    return r


def test_record_launched_every_format(one_python, tmp_path):
    outs = ["p.svg", "p.folded", "p.speedscope.json", "p.trace.json", "p.pb.gz"]
    args = ["record", "-r", "200", "-t"]
    for o in outs:
        args += ["-o", str(tmp_path / o)]
    # Without the eBPF watch: under valgrind loading it (libbpf reads the
    # kernel's BTF) takes longer than the command lives.  test_runwatch
    # runs it.
    r = _memcheck(args + ["--", one_python, os.path.join(APPS, "threads.py"), "4"],
                  env=dict(os.environ, PYSPYC_RUNWATCH="0"))
    assert r.returncode == 0, r.stderr
    sizes = {o: os.path.getsize(str(tmp_path / o)) for o in outs}
    assert all(sizes.values()), why(sizes, r.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="the eBPF watch needs root")
def test_runwatch(one_python, target, tmp_path):
    """The eBPF context-switch watch: loaded, used, and closed cleanly (on
    dump_target.py, whose threads all wait: asleep at most ticks)."""
    t = target(one_python, "dump_target.py", 60)
    out = tmp_path / "w.folded"
    r = _memcheck(["record", "-p", str(t.pid), "-i", "-d", "1", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert "told by the kernel's context switches" in r.stderr, r.stderr
    assert out.stat().st_size > 0


def test_record_pid_subprocesses_idle(one_python, target, tmp_path):
    t = target(one_python, "threads.py", 30)
    out = tmp_path / "q.folded"
    r = _memcheck(["record", "-p", str(t.pid), "-s", "-i", "-t", "-g", "-d", "2",
                   "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0


def test_dump_locals_json(one_python, target):
    t = target(one_python, "threads.py", 30)
    r = _memcheck(["dump", "-p", str(t.pid), "--locals", "--json"])
    assert r.returncode == 0 and r.stdout.startswith("{"), r.stderr
