"""Threads: -t names them, idle ones are left out unless -i, -g keeps only
the GIL holder.  On every CPython found."""
import os
import re

from conftest import APPS, parse_collapsed, run_pyspyc

BUSY = {"busy-1": "spin_one", "busy-2": "spin_two"}
WAITING = {"wait-1": "wait_event", "wait-2": "wait_lock", "wait-3": "wait_sleep",
           "wait-4": "wait_queue"}
THREAD_RE = re.compile(r'^thread (\d+|0x[0-9a-f]+) "(.*)"$')


def by_thread(stacks):
    """{thread name: (tid, {function names seen: samples})}.  A thread caught
    before its OS id was known (just starting) shows by pthread id: those few
    samples are left out, and must be few."""
    out, unknown, total = {}, 0, 0
    for frames, count in stacks:
        m = THREAD_RE.match(frames[0])
        assert m, "stack does not start at a thread: %r" % frames[0]
        total += count
        if m.group(1).startswith("0x"):
            unknown += count
            continue
        tid, name = int(m.group(1)), m.group(2)
        prev = out.setdefault(name, (tid, {}))
        assert prev[0] == tid, "thread %r under two tids" % name
        for f in frames[1:]:
            fn = f.rsplit(" (", 1)[0]
            prev[1][fn] = prev[1].get(fn, 0) + count
    assert unknown <= 0.02 * total, "%d of %d samples without a thread id" % (unknown, total)
    return out


def record(python, tmp_path, *opts):
    out = tmp_path / "t.folded"
    r = run_pyspyc(["record", "-r", "200", "-d", "3", "-o", str(out)] + list(opts) +
                   ["--", python, os.path.join(APPS, "named_threads.py"), "6"], timeout=120)
    assert r.returncode == 0, r.stderr
    return parse_collapsed(out.read_text()), r.stderr


def test_threads_named_and_idle_left_out(python, tmp_path):
    stacks, err = record(python, tmp_path, "-t")
    threads = by_thread(stacks)
    total = sum(c for _, c in stacks)
    for name, fn in BUSY.items():
        assert name in threads, "busy thread %s missing: %s" % (name, sorted(threads))
        assert threads[name][1].get(fn, 0) > 0.2 * 600, (name, threads[name], err)
    # Waiting threads sleep in the kernel: at most a stray sample each (a
    # thread caught between waits, e.g. wait-3 waking every 0.2 s).
    for name in WAITING:
        got = threads.get(name, (0, {}))[1]
        assert sum(got.values()) <= 0.02 * total * 8, (name, got)
    assert "idle thread stacks left out" in err


def test_idle_counts_waiting_threads(python, tmp_path):
    stacks, _ = record(python, tmp_path, "-t", "-i")
    threads = by_thread(stacks)
    for name, fn in list(BUSY.items()) + list(WAITING.items()):
        assert name in threads, "thread %s missing with --idle: %s" % (name, sorted(threads))
        assert threads[name][1].get(fn, 0) > 300, (name, threads[name])
    tids = [tid for tid, _ in threads.values()]
    assert len(set(tids)) == len(tids), "two threads share a tid"


def test_gil_only_the_holder(python, tmp_path):
    stacks, _ = record(python, tmp_path, "-t", "-g")
    threads = by_thread(stacks)
    total = sum(c for _, c in stacks)
    busy = sum(sum(threads.get(n, (0, {}))[1].get(fn, 0) for n, fn in [(n, f)])
               for n, f in BUSY.items())
    assert total <= 600 * 1.05, "more than one thread per sample: %d" % total
    # Nearly every sample has a spinning thread holding the GIL.
    assert busy >= 0.6 * total, threads
    for name in WAITING:
        got = threads.get(name, (0, {}))[1]
        assert got.get(WAITING[name], 0) <= 0.02 * total, (name, got)
