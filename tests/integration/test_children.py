"""-s (subprocesses) on busy trees: children that live a few tens of
milliseconds are all seen, -d ends on time while a hundred processes are
attached on a loaded machine, and dump -s reads sixty processes promptly.
tests/apps/children.py names each child's function after its number, so a
profile says which children were seen."""
import os
import re
import subprocess
import time

import pytest

from conftest import APPS, PYSPYC, SANITIZED, parse_collapsed, frame_name, run_pyspyc_traced

APP = os.path.join(APPS, "children.py")

# Short-lived children: how many are started, and how many of them a run
# may miss.  Each spins SHORT_MS of CPU after its interpreter starts; four run
# at a time.  On a quiet machine none is missed; on this shared 2-core one,
# with a load of 10 to 30, pyspyc itself waits for a CPU and up to 12 were
# seen missed (the scan of main missed 5 to 18), so these two are a floor,
# not the measure: test_only_the_tree_is_read is the exact check.
SHORT_N = 30
SHORT_MISS = 12
# How long each spins.  A sanitizer build is several times slower at
# finding and attaching to each child (this run's summary: 2,320 us of CPU
# per sample against 380 us for the plain build), and on an idle machine it
# missed 14 to 17 of 30 20-ms children where the plain build missed none:
# its children spin five times as long, so the bound means the same.
SHORT_MS = 100 if SANITIZED else 20


def _hogs(python, n):
    """n busy processes outside the tree under test: a loaded machine.  The
    tests that start them run alone (serial): four hogs beside another
    test's sanitizer build starved it (CI: an embedded host's 0.8 CPU share
    measured 0.724)."""
    return [subprocess.Popen([python, "-c", "while True: pass"]) for _ in range(n)]


def _end(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _seen(path, prefix):
    with open(str(path)) as f:
        stacks = parse_collapsed(f.read())
    return {int(frame_name(fr)[len(prefix):]) for st, _ in stacks for fr in st
            if re.match(re.escape(prefix) + r"\d+$", frame_name(fr))}


def _short_run(python, tmp_path, prefix=()):
    out = tmp_path / "short.txt"
    r = subprocess.run(list(prefix) + [PYSPYC, "record", "-s", "-r", "200", "-f", "collapsed",
                                       "-o", str(out), "--", python, APP, "short",
                                       str(SHORT_N), str(SHORT_MS), "4"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return _seen(out, "child_"), r.stderr


def test_short_lived_children_are_seen(one_python, tmp_path):
    """Process events show each fork and exec as it happens: a child is
    looked at 2 ms after it appears, not at the next scan of the tree."""
    seen, err = _short_run(one_python, tmp_path)
    missed = sorted(set(range(SHORT_N)) - seen)
    assert len(missed) <= SHORT_MISS, "missed children %s; %s" % (missed, err)


def test_short_lived_children_without_events(one_python, tmp_path):
    """Without the connector (no CAP_NET_ADMIN: not root, or a container)
    the tree is walked through its children files ten times a second: most
    children are still seen."""
    seen, err = _short_run(one_python, tmp_path,
                           ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"])
    assert len(seen) >= SHORT_N // 3, "saw %s; %s" % (sorted(seen), err)


def _sleepers(python, n):
    p = subprocess.Popen([python, APP, "sleep", str(n)], stdout=subprocess.PIPE,
                         universal_newlines=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _timed_under_load(python, n, args):
    """pyspyc args -p PARENT, PARENT having n sleeping Python children,
    while 4 busy processes load the machine: (result, seconds it took)."""
    parent, hogs = None, []
    try:
        parent = _sleepers(python, n)
        hogs = _hogs(python, 4)
        t0 = time.monotonic()
        r = subprocess.run([PYSPYC] + args + ["-p", str(parent.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=120)
        return r, time.monotonic() - t0
    finally:
        _end(hogs + ([parent] if parent else []))


@pytest.mark.serial
def test_duration_is_kept_while_attaching_under_load(one_python, tmp_path):
    """-d 2 on a parent with 100 Python children, with the machine loaded:
    the run ends within a few seconds of -d (attaching does not push the
    end out), having sampled children."""
    out = tmp_path / "p.txt"
    r, took = _timed_under_load(one_python, 100, ["record", "-s", "-i", "-d", "2", "-f",
                                                  "collapsed", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert took < 2 + 3, "record -d 2 took %.1f s: %s" % (took, r.stderr)
    seen = _seen(out, "sleeper_")
    # All of them on a quiet machine; on this loaded one 24 to 101 of them
    # were attached to within the 2 s (main: 58 to 89, ending late).
    assert len(seen) >= 10, "sampled %d of 100 children: %s" % (len(seen), r.stderr)


@pytest.mark.serial
def test_dump_tree_of_sixty_is_prompt(one_python):
    """dump -s on a parent with 60 Python children, on a loaded machine:
    read several at a time, each binary read once, every child listed."""
    r, took = _timed_under_load(one_python, 60, ["dump", "-s"])
    assert r.returncode == 0, r.stderr
    names = set(re.findall(r"^    sleeper_(\d+) ", r.stdout, re.M))
    assert len(names) == 60, sorted(names)
    assert len(re.findall(r"^Process \d+: ", r.stdout, re.M)) == 61
    assert took < 6, "dump -s of 61 processes took %.1f s" % took


def test_only_the_tree_is_read(one_python, tmp_path):
    """-s reads the /proc files of the tree's processes, never those of the
    rest of the system (a scan of all of /proc costs as much as the system
    has processes, five times a second)."""
    parent = _sleepers(one_python, 3)
    log = tmp_path / "strace.log"
    try:
        r = run_pyspyc_traced(["record", "-s", "-d", "1", "-f", "collapsed", "-o",
                               str(tmp_path / "p.txt"), "-p", str(parent.pid)],
                              log, ["openat"])
        tree = {parent.pid} | {int(c) for t in os.listdir("/proc/%d/task" % parent.pid)
                               for c in open("/proc/%d/task/%s/children"
                                             % (parent.pid, t)).read().split()}
    finally:
        _end([parent])
    assert r.returncode == 0, r.stderr
    read = {int(m) for m in re.findall(r'openat\(AT_FDCWD, "/proc/(\d+)/', log.read_text())}
    assert len(tree) == 4 and read, (tree, read)
    assert read <= tree, "read /proc of %d processes outside the tree" % len(read - tree)
