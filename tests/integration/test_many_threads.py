"""More threads than one read takes: a busy thread started first, then
hundreds of sleeping threads (tests/apps/many_threads.py).

The interpreter lists its threads newest first, so the busy thread and the
main thread are at the end of the list: a walker that stops early loses
exactly them.  Run on a few interpreters, one per thread-list and frame
layout: 2.7, one of 3.6-3.10, 3.11, 3.12 and 3.13.
"""
import json
import os
import re
import resource
import subprocess
import sys
import time

import pytest

from conftest import MODEL_PYTHONS, PYSPYC, Target, frame_name, parse_collapsed, run_pyspyc, share, why

SLEEPERS = 560          # more than 512, the old fixed number of slots
MANY = 1100             # more than 1024, IOV_MAX: reads split in batches


VERSIONS = MODEL_PYTHONS
TWO = [p for p in VERSIONS if p[2] in ((2, 7), (3, 12))] or VERSIONS[:1]


def _params(pythons):
    return dict(params=[p[1] for p in pythons] or [None],
                ids=[p[0] for p in pythons] or ["none"])


def _start(request, n):
    if request.param is None:
        pytest.skip("no supported CPython found")
    t = Target(request.param, "many_threads.py", n, 120)
    request.addfinalizer(t.stop)
    return t


@pytest.fixture(scope="module", **_params(VERSIONS))
def crowd(request):
    """SLEEPERS sleeping threads after a busy one, for the module."""
    return _start(request, SLEEPERS)


@pytest.fixture(scope="module", **_params(TWO))
def throng(request):
    return _start(request, MANY)


def samples_of(stderr):
    m = re.search(r"(\d+) samples", stderr)
    assert m, stderr
    return int(m.group(1))


def record(t, *args):
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-f", "collapsed", "-o", "-"] +
                   list(args), timeout=60)
    assert r.returncode == 0, r.stderr
    return parse_collapsed(r.stdout), r.stderr


def dump_json(t, *args):
    r = run_pyspyc(["dump", "-j", "-p", str(t.pid)] + list(args), timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def busy_samples(stacks):
    return sum(c for fr, c in stacks if any(frame_name(f) == "busy_spin" for f in fr))


def check_busy_counted(t):
    stacks, err = record(t)
    # By default only threads on a CPU count: the busy thread, alone.
    assert share(stacks, "busy_spin") > 0.9, why(stacks[:5], err)
    assert busy_samples(stacks) >= samples_of(err) // 2, err
    assert "--max-threads" not in err, err


def test_record_counts_the_oldest_busy_thread(crowd):
    check_busy_counted(crowd)


def test_gil_holder_is_seen(crowd):
    stacks, err = record(crowd, "-g")
    # The busy thread is the only Python thread that runs: it holds the
    # GIL nearly always; allow for the moments the others take it.
    assert busy_samples(stacks) >= samples_of(err) // 2, why(stacks[:5], err)
    assert share(stacks, "busy_spin") > 0.8, why(stacks[:5], err)


def check_dump_lists_all(t, n):
    d = dump_json(t)
    names = [th["name"] for th in d["threads"]]
    assert len(names) == n + 2, (len(names), names[:5])
    assert "MainThread" in names and "busy" in names, names[-5:]
    assert sum(1 for x in names if x and x.startswith("sleeper-")) == n
    assert d["threads_left_out"] == 0
    busy = [th for th in d["threads"] if th["name"] == "busy"][0]
    assert "busy_spin" in [f["name"] for f in busy["frames"]], busy
    text = run_pyspyc(["dump", "-p", str(t.pid)], timeout=60)
    assert text.returncode == 0, text.stderr
    assert '"MainThread"' in text.stdout and '"busy"' in text.stdout
    assert "--max-threads" not in text.stdout


def bytes_per_sample(stderr):
    """KB read a sample, from the summary's reads a sample and KB a read."""
    reads = re.search(r"([0-9.]+) reads per sample", stderr)
    kb = re.search(r"([0-9.]+) KB a read", stderr)
    assert reads and kb, stderr
    return float(reads.group(1)) * float(kb.group(1))


def test_sleepers_are_not_read(crowd):
    """By default a thread asleep is left out, and after the first sample
    it is not even read: the scheduler watch says it sleeps (what /proc said
    of a thread asleep since before pyspyc came is noted there, and before
    3.11 the thread's OS id comes from its descriptor), so the sample reads
    the thread states, not the 560 sleepers' stacks.  With -i every stack
    is read.  (Before: every sleeper was read at every sample, and left out
    after.)"""
    _, quiet = record(crowd)
    _, everyone = record(crowd, "-i")
    assert bytes_per_sample(quiet) < 0.6 * bytes_per_sample(everyone), (quiet, everyone)


def test_dump_lists_every_thread(crowd):
    check_dump_lists_all(crowd, SLEEPERS)


def test_max_threads_cut_is_counted_and_named(crowd):
    stacks, err = record(crowd, "--max-threads", "100", "-i")
    # The 100 newest threads (sleepers) are read, the oldest left out.
    assert "--max-threads" in err and "%d threads left out" % (SLEEPERS + 2 - 100) in err, err
    assert busy_samples(stacks) == 0, stacks[:5]
    d = dump_json(crowd, "--max-threads", "100")
    assert len(d["threads"]) == 100
    assert d["threads_left_out"] == SLEEPERS + 2 - 100
    names = [th["name"] for th in d["threads"]]
    assert "MainThread" not in names and "busy" not in names
    text = run_pyspyc(["dump", "-p", str(crowd.pid), "--max-threads", "100"], timeout=60)
    assert "%d more threads not shown" % (SLEEPERS + 2 - 100) in text.stdout, text.stdout[-300:]
    assert "--max-threads 100" in text.stdout


def test_more_threads_than_one_read_takes(throng):
    check_busy_counted(throng)
    check_dump_lists_all(throng, MANY)


def _nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return [int(x) for x in line.split()[3:5]]
    raise AssertionError("no open-files limit for %d" % pid)


def test_open_files_limit_raised_but_not_for_the_command():
    """pyspyc keeps a file open per thread: it raises its soft limit to
    the hard one; the command it launches starts with the limit pyspyc was
    given."""
    p = subprocess.Popen(
        [PYSPYC, "record", "-o", "/dev/null", "-f", "raw", "--", sys.executable, "-c",
         "import time; time.sleep(30)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)))
    try:
        end = time.time() + 20
        kids = []
        while time.time() < end and not kids:
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                kids = [int(c) for c in f.read().split()]
            time.sleep(0.05)
        assert kids, "no command started"
        assert _nofile(p.pid) == [4096, 4096]
        assert _nofile(kids[0]) == [256, 4096]
    finally:
        p.kill()
        p.wait()
        for k in kids:
            try:
                os.kill(k, 9)
            except OSError:
                pass
