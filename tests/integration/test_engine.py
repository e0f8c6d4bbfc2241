"""The sampling engine: one thread samples every process of a run, however
many; a process that has not run since the last tick is not read (its CPU
clock and its GIL say so), and -i still counts its stack at every tick;
a Python burst that starts just before a tick is seen (the CPU clock alone
lags by a scheduler tick); trees of many short- and long-lived children;
the bound on processes is named when it is hit."""
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import (APPS, PYSPYC, cpu_seconds, frame_name, parse_collapsed, proc_stat, traced,
                      wait_for)

CHILDREN = os.path.join(APPS, "children.py")

# A parent of N sleeping children (children.py child I 0: sleeper_I) and B
# busy ones (child I -1: busy_I), numbered on from N; "ready" once all run.
# With a 4th argument, it then waits that many seconds and ends them all.
TREE = r'''
import os, subprocess, sys, time
app, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hold = float(sys.argv[4]) if len(sys.argv) > 4 else 1e9
# The busy ones first: attached to first.
kids = [subprocess.Popen([sys.executable, "-S", app, "child", str(i), "0" if i < n else "-1"],
                         stdout=subprocess.PIPE) for i in list(range(n, n + b)) + list(range(n))]
for p in kids:
    p.stdout.readline()
sys.stdout.write("ready\n")
sys.stdout.flush()
try:
    end = time.time() + hold
    while time.time() < end:
        time.sleep(0.1)
finally:
    for p in kids:
        p.kill()
        p.wait()
'''

# 64 children started over 3 s, child i living 0.2 to 0.5 s in life_I
# (a little CPU, then sleeps of 5 ms); the parent waits for them all.
WAVES = r'''
import os, subprocess, sys, time
CHILD = """
import sys, time
def life_%d(end):
    x = 0
    for _ in range(20000):
        x += 1
    while time.time() < end:
        time.sleep(0.005)
life_%d(time.time() + %f)
"""
n = int(sys.argv[1])
kids = []
t0 = time.time()
for i in range(n):
    while time.time() < t0 + 3.0 * i / n:
        time.sleep(0.005)
    life = 0.2 + 0.3 * (i % 7) / 6.0
    kids.append(subprocess.Popen([sys.executable, "-S", "-c", CHILD % (i, i, life)]))
for p in kids:
    p.wait()
'''

# Sleeps in sleeping() for good; "up" once there.
SLEEPER = r'''
import sys, time
def sleeping():
    sys.stdout.write("up\n")
    sys.stdout.flush()
    while True:
        time.sleep(10)
sleeping()
'''

# Short bursts of Python after sleeps: 3 ms in burst() every ~25 ms.  On the
# wall clock: reading its own CPU clock would make the kernel bring the
# process's CPU time up to date at each read.
BURSTS = r'''
import sys, time
now = time.monotonic
def burst():
    end = now() + 0.003
    x = 0
    while now() < end:
        x += 1
def main():
    sys.stdout.write("up\n")
    sys.stdout.flush()
    while True:
        time.sleep(0.022)
        burst()
main()
'''


def _start(python, code, *args, **kw):
    p = subprocess.Popen([python, "-c", code] + [str(a) for a in args],
                         stdout=subprocess.PIPE, universal_newlines=True, **kw)
    line = p.stdout.readline().strip()
    assert line in ("ready", "up"), line
    return p


def _end(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def _record(args, timeout=120, told_by=None, extra_env=None, trace=None, **kw):
    """told_by: the asleep test to use, "switches" (the eBPF watch, which
    must then be in use) or "clocks" (PYSPYC_RUNWATCH=0); None: default.
    extra_env: more variables for pyspyc's environment.  trace: (log,
    syscalls) to run it under strace, writing those calls to log."""
    env = dict(os.environ)
    env.update(extra_env or {})
    # The engine's asleep and idle counting is the user-space backend's
    # (the eBPF backend has no ticks of its own: test_bpf.py).
    cmd = [PYSPYC, "record"] + ([] if "--backend" in args else ["--backend", "user"]) + args
    if trace:
        cmd = traced(cmd, trace[0], trace[1], env)
    if told_by == "clocks":
        env["PYSPYC_RUNWATCH"] = "0"
    elif told_by == "switches":
        env.pop("PYSPYC_RUNWATCH", None)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, env=env,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, **kw)
    if told_by and r.returncode == 0 and "had not run" in r.stderr:
        want = {"switches": "the kernel's context switches",
                "clocks": "their CPU clocks"}[told_by]
        assert "(not read; told by %s)" % want in r.stderr, r.stderr
    return r


# Both asleep tests: the kernel's context switches (as root) and the CPU
# clocks with the GIL (without the watch).
TOLD_BY = pytest.mark.parametrize("told_by", ["switches", "clocks"])


def _summary(stderr):
    lines = [l for l in stderr.splitlines() if re.match(r"pyspyc: \d+ samples", l)]
    assert lines, stderr
    return lines[-1]


def _count(summary, pattern):
    m = re.search(pattern, summary)
    return int(m.group(1)) if m else None


def _stacks(path):
    with open(str(path)) as f:
        return parse_collapsed(f.read())


def _names(stacks, prefix):
    return {int(frame_name(fr)[len(prefix):]) for st, _ in stacks for fr in st
            if re.match(re.escape(prefix) + r"\d+$", frame_name(fr))}


def _threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return None


def test_one_sampling_thread_for_twenty_processes(one_python, tmp_path):
    """record -s on a parent of 20 Python children: pyspyc runs its main
    thread and one sampling thread, not one per process."""
    parent = _start(one_python, TREE, CHILDREN, 20, 0)
    out = tmp_path / "p.txt"
    try:
        rec = subprocess.Popen([PYSPYC, "record", "-s", "-i", "-d", "4", "-f", "collapsed",
                                "-o", str(out), "-p", str(parent.pid)],
                               stderr=subprocess.PIPE, universal_newlines=True)
        most = 0
        end = time.monotonic() + 3
        while time.monotonic() < end and rec.poll() is None:
            time.sleep(0.1)
            most = max(most, _threads(rec.pid) or 0)
        err = rec.communicate(timeout=60)[1]
    finally:
        _end(parent)
    assert rec.returncode == 0, err
    assert len(_names(_stacks(out), "sleeper_")) == 20, err
    assert most == 2, "pyspyc ran %d threads for 21 processes: %s" % (most, err)


@TOLD_BY
def test_idle_exact_and_asleep(one_python, tmp_path, told_by):
    """A sleeping process: with -i every sample counts its one stack (the
    sleeping one), nearly all of them without reading it; without -i it
    counts nothing."""
    p = _start(one_python, SLEEPER)
    try:
        # "up" comes before the sleep: right after reading it, the process
        # still ran in 136 and 143 of 200 tries here (with and without
        # PYTHONUNBUFFERED), and on a loaded machine pyspyc's first sample
        # can come that early (CI: one at line 4, the write).  The sleep is
        # the only place the process is in state S.
        assert wait_for(lambda: (proc_stat(p.pid) or ("?",))[0] == "S"), proc_stat(p.pid)
        out = tmp_path / "i.txt"
        r = _record(["-i", "-r", "200", "-d", "1", "-f", "collapsed", "-o", str(out),
                     "-p", str(p.pid)], told_by=told_by)
        assert r.returncode == 0, r.stderr
        s = _summary(r.stderr)
        samples = _count(s, r"(\d+) samples")
        stacks = _stacks(out)
        assert sum(c for _, c in stacks) == samples, (stacks, s)
        assert len(stacks) == 1 and frame_name(stacks[0][0][-1]) == "sleeping", stacks
        asleep = _count(s, r"; (\d+) samples of processes that had not run")
        assert asleep is not None and asleep >= samples // 2, s

        out = tmp_path / "d.txt"
        r = _record(["-r", "200", "-d", "1", "-f", "collapsed", "-o", str(out),
                     "-p", str(p.pid)], told_by=told_by)
        assert r.returncode == 0, r.stderr
        assert _count(_summary(r.stderr), r"(\d+) samples") > 100, r.stderr
        assert _stacks(out) == [], r.stderr
    finally:
        _end(p)


@TOLD_BY
@pytest.mark.parametrize("idle", [False, True])
def test_bursts_after_sleep_are_seen(one_python, tmp_path, told_by, idle):
    """3 ms bursts of Python after 22 ms sleeps: the samples in burst() are
    about the CPU time it took times the rate (at least half of it, on a
    loaded machine), with -i as without.  Through the clocks: the process's
    CPU clock takes a thread's time in only at the kernel's scheduler tick
    or when it leaves the CPU, so a burst under way is seen through the
    GIL, which it holds.  Through the switches: the burst's thread was
    switched in when its sleep ended.  With -i, a tick between bursts
    counts the sleep again (main() at its sleep), never burst().
    At the default rate, 100 Hz, where the engine's thread asks the
    scheduler to be prompt by default (src/proc/proc_sched.c): above it,
    on a machine whose CPUs are all busy, a tick waits for a CPU and the
    one that frees is often the burst's, as it sleeps (CI, sanitizer
    build, 250 Hz: 26 samples in burst() for 60 due; 105 of the 131
    walks found the thread asleep)."""
    p = _start(one_python, BURSTS)
    try:
        out = tmp_path / "b.txt"
        c0 = cpu_seconds(p.pid)
        r = _record(["-r", "100", "-d", "4", "-f", "collapsed", "-o", str(out)] +
                    (["-i"] if idle else []) + ["-p", str(p.pid)], told_by=told_by)
        cpu = cpu_seconds(p.pid) - c0
        assert r.returncode == 0, r.stderr
        stacks = _stacks(out)
        got = sum(c for st, c in stacks if any(frame_name(f) == "burst" for f in st))
        want = cpu * 100
        assert got >= 0.5 * want, "%d samples in burst() for %.3f s of CPU: %s" % (
            got, cpu, r.stderr)
        # Not more than the CPU it had: a burst is never counted again
        # while the process sleeps (4 ms per 25 ms at most, with slack).
        assert got <= 100 * 4 * 0.4, "%d samples in burst(): %s" % (got, r.stderr)
        if idle:
            total = sum(c for _, c in stacks)
            assert total >= 0.9 * _count(_summary(r.stderr), r"(\d+) samples"), r.stderr
    finally:
        _end(p)


def _one_cpu():
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@TOLD_BY
def test_bursts_seen_from_the_same_cpu(one_python, tmp_path, told_by):
    """The bursts above with pyspyc and the target on one CPU: a tick that
    falls while a burst has the CPU is taken then, not once the burst
    sleeps (the engine's thread asks the scheduler for a short slice and
    more weight: src/proc/proc_sched.c; by default only up to 100 Hz, so
    PYSPYC_PROMPT=1 here at 250).  Without that, 5 to 55 of some 60
    samples due were in burst(), most runs under 42."""
    p = _start(one_python, BURSTS, preexec_fn=_one_cpu)
    try:
        out = tmp_path / "b.txt"
        c0 = cpu_seconds(p.pid)
        r = _record(["-r", "250", "-d", "2", "-f", "collapsed", "-o", str(out),
                     "-p", str(p.pid)], told_by=told_by, preexec_fn=_one_cpu,
                    extra_env={"PYSPYC_PROMPT": "1"})
        cpu = cpu_seconds(p.pid) - c0
        assert r.returncode == 0, r.stderr
        got = sum(c for st, c in _stacks(out) if any(frame_name(f) == "burst" for f in st))
        assert got >= 0.7 * cpu * 250, "%d samples in burst() for %.3f s of CPU: %s" % (
            got, cpu, r.stderr)
    finally:
        _end(p)


# Six threads that wake every 5 ms and sleep again (in napping()), and the
# main thread spinning in spin(); "up" once all run.
NAPPERS = r'''
import sys, threading, time
def napping():
    while True:
        time.sleep(0.005)
def spin():
    x = 0
    while True:
        x += 1
for _ in range(6):
    threading.Thread(target=napping, daemon=True).start()
sys.stdout.write("up\n")
sys.stdout.flush()
spin()
'''


@TOLD_BY
def test_thread_states_without_proc(one_python, tmp_path, told_by):
    """Which threads are idle is told by the scheduler's events when the
    kernel's context switches are watched (runwatch_thread_state): no
    /proc/PID/task/TID/stat read per thread per sample, as the clocks'
    test still needs.  Either way the idle nappers are left out and the
    spinning thread is counted.  Counted per sample read (strace), not
    per second: on a loaded machine the spinner may not have run between
    two ticks, and such a tick reads nothing."""
    p = _start(one_python, NAPPERS)
    try:
        out, log = tmp_path / "n.txt", tmp_path / "strace.log"
        r = _record(["-r", "200", "-d", "2", "-f", "collapsed", "-o", str(out),
                     "-p", str(p.pid)], told_by=told_by, trace=(log, ["pread64"]))
        assert r.returncode == 0, r.stderr
        summary = _summary(r.stderr)
        walked = _count(summary, r"(\d+) samples") - (_count(summary, r"(\d+) samples of "
                                                                  r"processes that had not run")
                                                       or 0)
        # A task's stat: "TID (comm) S ...".
        states = len(re.findall(r'pread64\(\d+, "\d+ \(', log.read_text()))
        stacks = _stacks(out)
        total = sum(c for _, c in stacks)
        spin = sum(c for st, c in stacks if any(frame_name(f) == "spin" for f in st))
        # The nappers are on a CPU now and then (waking, and waiting for
        # the GIL the spinner holds): 12% of the stacks here, either way.
        assert total > 0 and spin >= 0.7 * total, (stacks, summary)
        assert walked >= 20, summary
        # Six nappers are six state reads a sample through /proc; the
        # scheduler's events need none (what is left: the occasional
        # main-thread and holder checks).
        per = states / walked
        if told_by == "switches":
            assert per < 0.5, "%.2f state reads a sample: %s" % (per, summary)
        else:
            assert per > 3, "%.2f state reads a sample: %s" % (per, summary)
    finally:
        _end(p)


def test_duration_counts_from_the_first_tick(one_python, tmp_path):
    """-d is time sampled: it runs from the engine's first tick, not from
    before the target was set up (under a sanitizer, on a loaded machine,
    setting up the static Debian python took all of a -d 1 once: 0
    samples).  However short the run, its first tick is taken; and the
    ticks of a longer one are all there, taken or counted late."""
    p = _start(one_python, NAPPERS)
    try:
        for _ in range(3):
            r = _record(["-r", "200", "-d", "0.0001", "-f", "collapsed", "-o",
                         str(tmp_path / "a.txt"), "-p", str(p.pid)])
            assert r.returncode == 0, r.stderr
            assert _count(_summary(r.stderr), r"(\d+) samples") == 1, r.stderr
        r = _record(["-r", "200", "-d", "0.5", "-f", "collapsed", "-o",
                     str(tmp_path / "b.txt"), "-p", str(p.pid)])
        assert r.returncode == 0, r.stderr
        summary = _summary(r.stderr)
        ticks = _count(summary, r"(\d+) samples") + _count(summary, r"(\d+) late ticks")
        assert 98 <= ticks <= 100, summary
        assert " in 0.50 s " in summary, summary
        assert "exited" not in summary, summary  # it runs on
    finally:
        _end(p)


def _nices(pid):
    """The nice value of each of pid's threads (/proc/PID/task/*/stat)."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                out.append(int(f.read().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):
            pass
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="a nice below 0 takes root")
@pytest.mark.parametrize("rate,prompt,want", [("100", None, True), ("1000", None, False),
                                              ("1000", "1", True), ("100", "0", False),
                                              ("1000 --blocking", None, True)])
def test_prompt_by_rate(one_python, rate, prompt, want):
    """The sampling thread raises its weight (nice -10 as root) at the
    default rate, not at 1 kHz, where switching the target out at every
    tick costs it more than the hint gives (src/proc/proc_sched.c), but with
    --blocking at any rate (the target waits, stopped, while it reads);
    PYSPYC_PROMPT=1 and 0 override."""
    p = _start(one_python, "import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    try:
        env = dict(os.environ)
        env.pop("PYSPYC_PROMPT", None)
        if prompt is not None:
            env["PYSPYC_PROMPT"] = prompt
        rec = subprocess.Popen([PYSPYC, "record", "-r"] + rate.split() + ["-d", "30", "-f", "collapsed",
                                "-o", os.devnull, "-p", str(p.pid)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               universal_newlines=True)
        try:
            # The engine's thread takes the hint first thing: once it is
            # there (a second thread), a moment later its nice is set.
            end = time.monotonic() + 20
            while len(_nices(rec.pid)) < 2 and time.monotonic() < end and rec.poll() is None:
                time.sleep(0.02)
            time.sleep(0.3)
            seen = _nices(rec.pid)
            assert rec.poll() is None, rec.stderr.read()
            assert len(seen) >= 2, seen
            assert (-10 in seen) == want, seen
        finally:
            rec.terminate()
            rec.communicate(timeout=30)
    finally:
        _end(p)


def test_short_lived_children(one_python, tmp_path):
    """-s -i on 64 children started over 3 s, each living 0.2 to 0.5 s:
    every child shows up (a few may be missed on a loaded machine), and
    the summary agrees with the profile."""
    out = tmp_path / "w.txt"
    r = _record(["-s", "-i", "-f", "collapsed", "-o", str(out), "--",
                 one_python, "-c", WAVES, "64"])
    assert r.returncode == 0, r.stderr
    s = _summary(r.stderr)
    stacks = _stacks(out)
    seen = _names(stacks, "life_")
    # All on a quiet machine.  pyspyc's one sampling thread competes for
    # a CPU with every process that runs: under a load of 10 to 20 (and a
    # sanitizer build, whose attach costs 20 ms of CPU instead of 3) it
    # was seen to attach to 23 of them in time; this is a floor.
    assert len(seen) >= 16, "saw %s: %s" % (sorted(seen), s)
    assert _count(s, r"; (\d+) processes") >= len(seen) + 1, s
    assert sum(c for _, c in stacks) <= _count(s, r"(\d+) samples"), s
    assert "not sampled" not in s, s


def test_two_hundred_children(one_python, tmp_path):
    """-s on a command that starts 3 busy Python children and 200 sleeping
    ones, holds them 2 s and ends: no process is left out by a bound, the
    busy ones are in the profile, the sleeping ones are mostly not read."""
    out = tmp_path / "t.txt"
    r = _record(["-s", "-f", "collapsed", "-o", str(out), "--",
                 one_python, "-c", TREE, CHILDREN, "200", "3", "2"], timeout=300)
    assert r.returncode == 0, r.stderr
    s = _summary(r.stderr)
    assert _names(_stacks(out), "busy_") == {200, 201, 202}, s
    # All 204 on a quiet machine; with a sanitizer build on a loaded one
    # (200 interpreters starting, each of them running while pyspyc's one
    # thread waits its turn for a CPU) 71 to 81 were attached to in time.
    assert _count(s, r"; (\d+) processes") >= 50, s
    assert "not sampled" not in s, s
    assert _count(s, r"; (\d+) samples of processes that had not run") > 0, s


def test_sleepers_beside_a_busy_one_are_counted(one_python, tmp_path):
    """-s on a parent of 8 sleeping children and a busy one, at 100 Hz
    without -i: the busy one runs at every tick, so the ticks are not
    skipped whole, and each sleeper is left unread at most of them (the
    watch saw no event of it).  Every process still counts a sample at
    every tick: the summary's samples are the ticks times the processes,
    the sleepers' nearly all "had not run"; and the busy one's stacks are
    most of the profile."""
    parent = _start(one_python, TREE, CHILDREN, 8, 1)
    out = tmp_path / "b.txt"
    try:
        r = _record(["-s", "-r", "100", "-d", "3", "-f", "collapsed", "-o", str(out),
                     "-p", str(parent.pid)])
    finally:
        _end(parent)
    assert r.returncode == 0, r.stderr
    s = _summary(r.stderr)
    procs = _count(s, r"; (\d+) processes")
    assert procs == 10, s
    samples = _count(s, r"(\d+) samples")
    late = _count(s, r"(\d+) late ticks") or 0
    # 300 ticks each; a process attached after the first tick has fewer
    # (attaching ten takes a few ticks, more on a loaded machine), and a
    # late tick is counted as such, not as a sample.
    assert samples >= 0.8 * procs * 300 - procs * late, s
    assert samples <= procs * 300 + procs, s
    asleep = _count(s, r"; (\d+) samples of processes that had not run")
    assert asleep is not None and asleep >= 0.8 * 9 * 300 - procs * late, s
    stacks = _stacks(out)
    assert _names(stacks, "busy_") == {8}, s
    # A sleeper wakes every 0.2 s for a moment: a tick may find it running
    # (or waiting for a CPU), and count it, but seldom.
    busy = sum(c for st, c in stacks if any(frame_name(f) == "busy_8" for f in st))
    assert busy >= 0.8 * sum(c for _, c in stacks), stacks


def test_process_bound_is_named(one_python, tmp_path):
    """--max-processes 3 on a tree of 7 Python processes: 3 are sampled and
    the summary says how many were left out, and which option raises it."""
    parent = _start(one_python, TREE, CHILDREN, 6, 0)
    out = tmp_path / "m.txt"
    try:
        r = _record(["-s", "-i", "--max-processes", "3", "-d", "1.5", "-f", "collapsed",
                     "-o", str(out), "-p", str(parent.pid)])
    finally:
        _end(parent)
    assert r.returncode == 0, r.stderr
    s = _summary(r.stderr)
    assert _count(s, r"; (\d+) processes") == 3, s
    assert re.search(r"; 4 Python processes not sampled: more than --max-processes 3", s), s
