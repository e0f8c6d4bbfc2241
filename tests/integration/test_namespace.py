"""A target in a PID namespace of its own (a container seen from the host),
started with `unshare --pid --mount --fork --mount-proc`: Python as pid 1
there, as a shell's child, and two namespaces deep.  The interpreter knows
its threads by the namespace's ids; pyspyc must look at /proc by ours.
Thread ids come from native_thread_id on 3.11+ and from the pthread
descriptor before, so the first test runs on every CPython found."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import APPS, children_of, parse_collapsed, run_pyspyc, why

UNSHARE = ["unshare", "--pid", "--mount", "--fork", "--mount-proc"]
BUSY = ("busy-1", "busy-2")
# Blocked on an event, a lock and a queue: never on a CPU.
WAITING = ("wait-1", "wait-2", "wait-4")
NAMES = ("MainThread",) + BUSY + ("wait-1", "wait-2", "wait-3", "wait-4")
LABEL = re.compile(r'^thread (\d+|0x[0-9a-f]+) "(.*)"$')


def _unshare_works():
    try:
        return subprocess.run(UNSHARE + ["true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytestmark = pytest.mark.skipif(not _unshare_works(),
                                reason="cannot make a PID namespace here (needs root)")


def nspid(pid, task=None):
    """The NSpid fields of a task of ours: our id first, its own last."""
    path = "/proc/%d/task/%d/status" % (pid, task) if task else "/proc/%d/status" % pid
    with open(path) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(v) for v in line.split()[1:]]
    raise AssertionError("no NSpid line in %s" % path)


def ns_tids(pid):
    """{our tid: its own tid} for every thread of pid."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            out[int(t)] = nspid(pid, int(t))[-1]
        except OSError:
            pass
    return out


def descendants(pid):
    """Every process under pid (none when pid is gone)."""
    try:
        kids = children_of(pid)
    except OSError:
        return []
    return sum(([k] + descendants(k) for k in kids), [])


class NsTarget:
    """named_threads.py in a new PID namespace (levels deep), directly as
    the namespace's pid 1 or (shell) as a child of a shell that is."""

    def __init__(self, python, seconds=30, shell=False, levels=1):
        cmd = [python, os.path.join(APPS, "named_threads.py"), str(seconds)]
        if shell:
            cmd = ["sh", "-c", '"$@"; exit $?', "sh"] + cmd
        for _ in range(levels):
            cmd = UNSHARE + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True)
        try:
            line = self.proc.stdout.readline()
            assert line.strip() == "ready", "target did not start: %r %r" % (
                line, self.proc.stderr.read() if self.proc.poll() is not None else "")
            app = [p for p in descendants(self.proc.pid)
                   if os.path.realpath("/proc/%d/exe" % p) == os.path.realpath(python)]
            assert len(app) == 1, app
        except BaseException:
            self.stop()
            raise
        self.pid = app[0]
        self.ids = nspid(self.pid)
        assert len(self.ids) == levels + 1, self.ids

    def stop(self):
        # Killing a namespace's pid 1 kills everything in it; unshare ends.
        for p in descendants(self.proc.pid):
            try:
                os.kill(p, 9)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def ns_target():
    started = []

    def start(*args, **kw):
        t = NsTarget(*args, **kw)
        started.append(t)
        return t
    yield start
    for t in started:
        t.stop()


def dump_json(t, want, tries=5):
    """dump -j of t until want(doc) holds (a thread may be caught between two
    waits), a few times at most; returns the last document."""
    for _ in range(tries):
        r = run_pyspyc(["dump", "-j", "-p", str(t.pid)])
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        if want(doc):
            break
        time.sleep(0.2)
    return doc


def check_dump(t):
    """dump names every thread by our tid and by its own, and tells the
    waiting ones idle: their states were read from the right tasks."""
    def threads(doc):
        return {th["name"]: th for th in doc["threads"]}

    def settled(doc):
        th = threads(doc)
        return all(n in th for n in NAMES) and all(th[n]["active"] is False for n in WAITING)

    doc = dump_json(t, settled)
    ids = ns_tids(t.pid)
    assert doc["pid"] == t.pid
    th = threads(doc)
    assert set(NAMES) <= set(th), sorted(th)
    for name in NAMES:
        tid = th[name]["os_thread_id"]
        assert tid in ids, "%s: os_thread_id %r is not one of our tids %r" % (name, tid, ids)
        assert th[name]["active"] is not None, (name, th[name])
    for name in WAITING:
        assert th[name]["active"] is False, (name, th[name])
    assert th["MainThread"]["os_thread_id"] == t.pid
    assert doc.get("ns_pid") == t.ids[-1], doc
    for name in NAMES:
        assert th[name].get("ns_thread_id") == ids[th[name]["os_thread_id"]], (name, th[name])

    r = run_pyspyc(["dump", "-p", str(t.pid)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Process %d [ns %d]: " % (t.pid, t.ids[-1])), r.stdout
    heads = [l for l in r.stdout.splitlines() if l.startswith("Thread ")]
    assert len(heads) == len(NAMES), r.stdout
    for line in heads:
        m = re.match(r'^Thread (\d+) \[ns (\d+)\] \((active|idle)(\+gil)?\): "(.*)"$', line)
        assert m, line
        assert ids.get(int(m.group(1))) == int(m.group(2)), (line, ids)
    return th


def thread_samples(path, ids=None, labels=None):
    """{thread name: samples} of a record -t profile; every label names one
    of our tids (ids, when given); few samples are of a thread whose id was
    not known yet.  labels (a dict) gets {name: tid}."""
    per, unknown, total = {}, 0, 0
    for frames, count in parse_collapsed(path.read_text()):
        m = LABEL.match(frames[0])
        assert m, frames[0]
        total += count
        if m.group(1).startswith("0x"):
            unknown += count
            continue
        tid, name = int(m.group(1)), m.group(2)
        if ids is not None:
            assert tid in ids, "label %r: %d is not one of our tids %r" % (frames[0], tid, ids)
        if labels is not None:
            labels[name] = tid
        per[name] = per.get(name, 0) + count
    assert unknown <= 0.02 * total, "%d of %d samples without a thread id" % (unknown, total)
    return per


def check_busy_only(per, stderr):
    """Default counting: the busy threads, not the waiting ones."""
    busy = sum(per.get(n, 0) for n in BUSY)
    assert busy > 50, why(per, stderr)
    for name in WAITING:
        assert per.get(name, 0) <= 0.02 * busy, (name, per)
    # The user-space backend reads them and leaves them out; the eBPF one
    # never meets them (they are not on a CPU).
    if "backend bpf" not in stderr:
        assert "idle thread stacks left out" in stderr, stderr


def check_record(t, tmp_path):
    """Default record -t: busy threads only, under our tids.  Returns
    {thread name: tid its label shows}."""
    out = tmp_path / "ns.folded"
    labels = {}
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "2", "-r", "100", "-t", "-o", str(out)],
                   timeout=60)
    assert r.returncode == 0, r.stderr
    check_busy_only(thread_samples(out, ns_tids(t.pid), labels), r.stderr)
    return labels


def same_tids(labels, dumped):
    """record -t and dump give a thread the same id."""
    for name, tid in labels.items():
        if name in dumped:
            assert tid == dumped[name]["os_thread_id"], (name, tid, dumped[name])


def test_python_as_pid_1(model_python, ns_target, tmp_path):
    t = ns_target(model_python)
    assert t.ids[-1] == 1
    labels = check_record(t, tmp_path)
    same_tids(labels, check_dump(t))


def test_python_under_a_shell(one_python, ns_target, tmp_path):
    t = ns_target(one_python, shell=True)
    assert t.ids[-1] > 1
    labels = check_record(t, tmp_path)
    same_tids(labels, check_dump(t))


def test_namespace_in_a_namespace(one_python, ns_target):
    # The thread ids are those of the innermost namespace.
    t = ns_target(one_python, shell=True, levels=2)
    check_dump(t)


def test_own_namespace_unchanged(one_python, tmp_path):
    """Launch mode, and dump of a process in our own namespace: one id."""
    out = tmp_path / "own.folded"
    r = run_pyspyc(["record", "-d", "2", "-r", "100", "-t", "-o", str(out), "--", one_python,
                    os.path.join(APPS, "named_threads.py"), "4"], timeout=60)
    assert r.returncode == 0, r.stderr
    check_busy_only(thread_samples(out), r.stderr)
    p = subprocess.Popen([one_python, os.path.join(APPS, "named_threads.py"), "20"],
                         stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        r = run_pyspyc(["dump", "-j", "-p", str(p.pid)])
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc.get("ns_pid") is None
        assert all(th.get("ns_thread_id") is None for th in doc["threads"]), doc["threads"]
        tids = set(int(t) for t in os.listdir("/proc/%d/task" % p.pid))
        assert all(th["os_thread_id"] in tids for th in doc["threads"]), (doc["threads"], tids)
        r = run_pyspyc(["dump", "-p", str(p.pid)])
        assert r.returncode == 0 and "[ns " not in r.stdout, r.stdout
    finally:
        p.kill()
        p.wait()


def test_launched_into_a_namespace(one_python, tmp_path):
    """record -s launching unshare: the Python process and its threads start
    in the namespace after pyspyc is there, so every id is new to it."""
    out = tmp_path / "launch.folded"
    r = run_pyspyc(["record", "-s", "-t", "-d", "2", "-r", "100", "-o", str(out), "--"] +
                   UNSHARE + [one_python, os.path.join(APPS, "named_threads.py"), "4"],
                   timeout=60)
    assert r.returncode == 0, r.stderr
    per, pids = {}, set()
    for frames, count in parse_collapsed(out.read_text()):
        m = re.match(r'^process (\d+):', frames[0])
        assert m, frames[0]
        pids.add(int(m.group(1)))
        m = LABEL.match(frames[1])
        assert m, frames[1]
        per.setdefault(m.group(2), {}).setdefault(m.group(1), 0)
        per[m.group(2)][m.group(1)] += count
    assert len(pids) == 1, pids
    # Our ids, not the namespace's (1 for the main thread, 2, 3... for the
    # others): ours go to early boot processes below 300 (the kernel's
    # RESERVED_PIDS, where it starts again once it wraps).
    pid = pids.pop()
    tids = [int(t) for v in per.values() for t in v if not t.startswith("0x")]
    assert all(t >= 300 for t in tids), (pid, per)
    counts = {name: sum(c for tid, c in v.items() if not tid.startswith("0x"))
              for name, v in per.items()}
    unknown = sum(c for v in per.values() for tid, c in v.items() if tid.startswith("0x"))
    assert unknown <= 0.02 * sum(counts.values()) + 2, per
    check_busy_only(counts, r.stderr)
