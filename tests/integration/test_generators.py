"""Generator and coroutine stacks keep their callers (issue 14, item 2).

A generator's frame read between two resumptions has no link to its caller:
a stack read then ends at the generator's frame.  Such a stack is torn (read
again, else dropped), never counted or shown as a root-level <genexpr>.
Every stack of these targets runs under <module> and main()."""
import re

import pytest

from conftest import parse_collapsed, run_pyspyc, version_of, frame_name

SUMMARY = re.compile(r"(\d+) samples, \d+ errors, (\d+) torn stacks")


def rooted_elsewhere(stacks):
    """The stacks (and their count) that do not start <module>;main."""
    bad = [(fr, c) for fr, c in stacks
           if len(fr) < 2 or frame_name(fr[0]) != "<module>" or frame_name(fr[1]) != "main"]
    return bad, sum(c for _, c in bad)


def record(pid, tmp_path, *extra):
    out = tmp_path / "p.folded"
    r = run_pyspyc(["record", "-p", str(pid), "-r", "400", "-d", "1.5", "-f", "collapsed",
                    "-o", str(out)] + list(extra), timeout=60)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.search(r.stderr)
    assert m, r.stderr
    stacks = parse_collapsed(out.read_text())
    assert sum(c for _, c in stacks) >= 100, r.stderr
    return stacks


def test_generators_keep_callers(python, target, tmp_path):
    # sum() over a generator expression and a for loop over a generator,
    # in turn, all the time.
    t = target(python, "generators.py", "both", 30)
    stacks = record(t.pid, tmp_path)
    bad, n = rooted_elsewhere(stacks)
    assert not bad, "%d samples lost their callers: %r" % (n, bad[:3])
    names = set(frame_name(f) for fr, _ in stacks for f in fr)
    assert "run_genexpr" in names and "run_forgen" in names, names


def test_coroutines_keep_callers(python, target, tmp_path):
    if version_of(python) < (3, 6):
        pytest.skip("async def needs 3.5+ syntax; asyncio chains from 3.6")
    t = target(python, "coroutines.py", 30)
    stacks = record(t.pid, tmp_path)
    bad, n = rooted_elsewhere(stacks)
    assert not bad, "%d samples lost their callers: %r" % (n, bad[:3])
    assert any(any(frame_name(f).endswith("leaf") for f in fr) for fr, _ in stacks)


def test_blocking_generators_whole(one_python, target, tmp_path):
    # Paused threads never tear: whole stacks only, none torn.
    t = target(one_python, "generators.py", "both", 30)
    stacks = record(t.pid, tmp_path, "--blocking")
    bad, n = rooted_elsewhere(stacks)
    assert not bad, "%d samples lost their callers: %r" % (n, bad[:3])


def dump_bottoms(pid):
    """The outermost frame of every thread dump shows, or "" for a thread
    shown without frames (none, or its stack kept changing while read)."""
    r = run_pyspyc(["dump", "-p", str(pid)], timeout=30)
    assert r.returncode == 0, r.stderr
    bottoms, last = [], None
    for line in r.stdout.splitlines() + ["Thread end"]:
        if line.startswith("Thread "):
            if last is not None:
                bottoms.append(last)
            last = ""
        elif line.startswith("    (stack unreadable"):
            last = ""
        elif line.startswith("    ") and not line.startswith("     ") and last is not None:
            last = frame_name(line.strip())
    return bottoms


def test_dump_never_shows_root_generator(python, target):
    t = target(python, "generators.py", "both", 30)
    for _ in range(25):
        for bottom in dump_bottoms(t.pid):
            # A thread shown with frames starts at the module; one whose
            # stack kept changing is said so, with no frames.
            assert bottom in ("", "<module>"), bottom
