"""Threads that start and end all the time, as a thread-per-request server
makes them (tests/apps/thread_churn.py), each running a known call chain:
request -> handle -> leaf_a / leaf_b, handle working on lines of its own
between the calls.

Correct or absent: every stack shows each of the chain's callers at the
line of its call to the frame above it.  A stack whose frames were read at
different moments (a callee read before it returned, its caller after it
went on) must be dropped and counted as torn, never reported.  The torn
share stays below a bound that holds on a loaded machine.  One interpreter
per frame layout (2.7, one of 3.6-3.10, 3.11, 3.12, 3.13).
"""
import os
import re
import shutil
import subprocess
import time
from urllib.request import urlopen

import pytest

from conftest import (APPS, app_line, children_of, frame_line, frame_name, free_port,
                      parse_collapsed, run_pyspyc, version_of, wait_for, why)

APP = "thread_churn.py"
SUMMARY = re.compile(r"(\d+) samples, \d+ errors, (\d+) torn stacks, .*?"
                     r"and ([0-9.]+) reads per sample")
CALLS = {("handle", "leaf_a"): app_line(APP, "# call leaf_a"),
         ("handle", "leaf_b"): app_line(APP, "# call leaf_b"),
         ("request", "handle"): app_line(APP, "# call handle")}


def record(target, python, mode):
    t = target(python, APP, 10, mode)
    # -i: every thread at every tick, running or not, so that the stacks
    # of threads waiting for the GIL, mid-chain, are checked too.
    r = run_pyspyc(["record", "-p", str(t.pid), "-i", "-r", "400", "-d", "2",
                    "-f", "collapsed", "-o", "-"], timeout=60)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.search(r.stderr)
    assert m, r.stderr
    return parse_collapsed(r.stdout), int(m.group(2)), float(m.group(3)), r.stderr


def check_chains(stacks):
    """Every caller of the chain at its call's line; returns the stacks in
    the chain (request on them)."""
    wrong, chain = [], 0
    for frames, c in stacks:
        names = [frame_name(f) for f in frames]
        if "request" in names:
            chain += c
        for caller, callee in zip(frames, frames[1:]):
            key = (frame_name(caller), frame_name(callee))
            if key[0] in ("request", "handle") and \
                    (key not in CALLS or frame_line(caller) != CALLS[key]):
                wrong.append((c, caller, callee))
    assert not wrong, wrong[:5]
    return chain


def test_churn_callers_at_their_calls(model_python, target):
    stacks, torn, reads, err = record(target, model_python, "churn")
    total = sum(c for _, c in stacks)
    chain = check_chains(stacks)
    # The main thread is at every tick too, mostly waiting in
    # Thread.start for the next one; how many requests run beside it
    # varies with the load, but 800 ticks see many.
    assert chain >= 40, why(chain, total, err)
    # What was dropped as torn stays small even on a loaded machine (the
    # threads are re-read at once; the rest are counted, not shown).
    assert torn <= 0.15 * (total + torn), why(torn, total, err)
    # 3.11+: a thread list that changed is rebuilt from the sample's own
    # read (an ended thread's predecessor links past it; a new thread's
    # state is often where an ended one's was), and costs one read more,
    # two with a thread state never seen: not a walk of the whole list,
    # one read per thread (5.7 to 8.5 reads a sample before).
    if version_of(model_python) >= (3, 11):
        assert reads < 4.5, err


def test_pool_callers_at_their_calls(model_python, target):
    """The same chain in long-lived threads (a thread pool)."""
    stacks, torn, _, err = record(target, model_python, "pool")
    total = sum(c for _, c in stacks)
    assert check_chains(stacks) > 0.5 * total, why(total, err)
    assert torn <= 0.15 * (total + torn), why(torn, total, err)


# The servers of the benchmark (scripts/bench/bench.py, section churn),
# under load: the share of thread stacks dropped as torn.  The benchmark's
# target is 0.5% on a quiet machine; these bounds hold beside another test
# worker (before the torn stacks at a return were read again, the demo app
# tore 3-7% of its stacks on 3.11, fib's recursion most; on a quiet machine
# now 0-0.3%).  Frame objects (2.7, 3.6-3.10) are not there yet: a frame
# read is checked by reading it again, and fib's innermost frame is seldom
# the same a few microseconds later: on a quiet machine 24-26% of the demo's
# stacks are torn (35-44% before each thread was checked and read again
# right after its walk); their bound only catches worse.
DEMO_TORN = 0.03
DEMO_TORN_OBJECTS = 0.35
GTHREAD_TORN = 0.02
GUNICORN = "/usr/bin/gunicorn"


def torn_share(pid, seconds=4):
    """record the process at 200 Hz: (stacks counted, torn stacks, stderr)."""
    r = run_pyspyc(["record", "-p", str(pid), "-r", "200", "-d", str(seconds),
                    "-f", "collapsed", "-o", "-"], timeout=60)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.search(r.stderr)
    assert m, r.stderr
    return sum(c for _, c in parse_collapsed(r.stdout)), int(m.group(2)), r.stderr


def stop(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.kill()
        p.wait()


def test_demo_app_torn(model_python):
    """tests/apps/webapp.py (a thread per request) loaded by load.py."""
    procs = []
    try:
        app = subprocess.Popen([model_python, os.path.join(APPS, "webapp.py"), "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               universal_newlines=True)
        procs.append(app)
        line = app.stdout.readline().split()
        assert line and line[0] == "ready", line
        procs.append(subprocess.Popen([model_python, os.path.join(APPS, "load.py"), line[1],
                                       "30", "4"], stdout=subprocess.DEVNULL))
        time.sleep(1.0)
        # Runs of 8 s until 200 stacks (what a share needs), at most 3: the
        # eBPF backend (the default as root) samples a thread only while it
        # is on a CPU, and how much the demo runs depends on the machine
        # and on what runs beside it: 60-75 stacks a second alone, 49
        # beside a busy test worker, 20 under 2.7 on a slower machine
        # beside one (158 in 8 s).
        stacks = torn = 0
        errs = []
        for _ in range(3):
            s, t, err = torn_share(app.pid, seconds=8)
            stacks, torn = stacks + s, torn + t
            errs.append(err)
            if stacks >= 200:
                break
        err = "".join(errs)
    finally:
        stop(procs)
    assert stacks >= 200, err
    bound = DEMO_TORN if version_of(model_python) >= (3, 11) else DEMO_TORN_OBJECTS
    assert torn <= bound * (stacks + torn), why(torn, stacks, err)


@pytest.mark.skipif(not (os.access(GUNICORN, os.X_OK) and shutil.which("wrk")),
                    reason="needs Debian's gunicorn and wrk")
def test_gthread_torn():
    """gunicorn -k gthread --threads 8 serving flask_app.py, loaded by wrk."""
    port = free_port()
    procs = [subprocess.Popen(["/usr/bin/python3", GUNICORN, "-w", "1", "-k", "gthread",
                               "--threads", "8", "-b", "127.0.0.1:%d" % port, "--chdir", APPS,
                               "flask_app:app"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        def up():
            try:
                return urlopen("http://127.0.0.1:%d/light" % port, timeout=2).status == 200
            except OSError:
                return False
        assert wait_for(up, timeout=30), "gunicorn did not start"
        worker = children_of(procs[0].pid)
        assert worker
        procs.append(subprocess.Popen(["wrk", "-t", "1", "-c", "8", "-d", "8s",
                                       "http://127.0.0.1:%d/light" % port],
                                      stdout=subprocess.DEVNULL))
        time.sleep(1.0)
        stacks, torn, err = torn_share(worker[0])
    finally:
        stop(procs)
    assert stacks >= 200, err
    assert torn <= GTHREAD_TORN * (stacks + torn), why(torn, stacks, err)
