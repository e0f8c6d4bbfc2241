"""pyspyc record -o x.trace.json: Chrome trace events per thread that nest,
balance, never go back in time, and last about as long as the samples say."""
import json
import os
import re

from conftest import APPS, children_of, parse_collapsed, run_pyspyc, wait_for
from json_formats import THREAD_RE, split_markers, trace_threads, walk_thread

RATE = 200
PERIOD_US = 1e6 / RATE


def record(args, tmp_path, rate=RATE, duration=2):
    """(trace document, collapsed stacks, stderr) of one run written both
    ways, the collapsed stacks with -t."""
    tr, fo = tmp_path / "p.trace.json", tmp_path / "p.folded"
    r = run_pyspyc(["record", "-t", "-r", str(rate), "-d", str(duration), "-o", str(tr),
                    "-o", str(fo)] + args)
    assert r.returncode == 0, r.stderr
    return json.loads(tr.read_text(encoding="utf-8")), parse_collapsed(fo.read_text()), r.stderr


def samples_by_thread(stacks):
    """{(process marker or None, tid): samples} from collapsed stacks."""
    out = {}
    for frames, count in stacks:
        proc, thread, _ = split_markers(frames)
        assert thread, frames
        key = (proc, int(THREAD_RE.match(thread).group(1)))
        out[key] = out.get(key, 0) + count
    return out


def check_durations(trdoc, stacks, pid_of=lambda proc: None):
    """A thread's frames are open about a period per sample: a sample
    stands until the next one, or one period when the next is more than
    1.5 periods away, so never more than 1.5 periods.  Less than one when
    samples bunch up (a sampler that is late catches up), which a loaded
    machine does: the lower bound is loose.  Returns {(pid, tid): us}."""
    threads, names = trace_threads(trdoc)
    counts = samples_by_thread(stacks)
    assert len(threads) == len(counts)
    open_us = {}
    for (proc, tid), n in counts.items():
        key = [k for k in threads if k[1] == tid and (proc is None or k[0] == pid_of(proc))]
        assert len(key) == 1, (proc, tid, sorted(threads))
        us, _ = walk_thread(threads[key[0]])
        assert 0.6 * n * PERIOD_US <= us <= 1.5 * n * PERIOD_US + 1, (key, n, us)
        open_us[key[0]] = us
    return open_us


def test_single_thread(one_python, tmp_path):
    """A busy thread sampled at every tick: one slice as long as the run."""
    trdoc, stacks, _ = record(["--", one_python, os.path.join(APPS, "split.py"), "3"],
                              tmp_path)
    open_us = check_durations(trdoc, stacks)
    (key, us), = [(k, v) for k, v in open_us.items() if v > 1e6]
    n = samples_by_thread(stacks)[(None, key[1])]
    assert abs(us - n * PERIOD_US) < 0.25 * n * PERIOD_US, (us, n)
    assert us <= 2e6 + PERIOD_US
    threads, names = trace_threads(trdoc)
    assert names[("thread_name", key[0], key[1])] == "MainThread"
    assert names[("process_name", key[0], 0)].endswith("split.py 3")
    begun = {e["name"] for e in threads[key] if e["ph"] == "B"}
    assert {"spin_a", "spin_b", "main", "<module>"} <= begun
    args = [e["args"] for e in threads[key] if e["ph"] == "B" and e["name"] == "spin_a"]
    assert all(a["file"] == "split.py" and a["line"] > 0 for a in args)
    other = trdoc["otherData"]
    assert other["exporter"] == "pyspyc" and other["rate_hz"] == RATE
    assert other["timeline_lost"] == 0
    assert other["timeline_samples"] == other["samples"] == sum(c for _, c in stacks)
    assert trdoc["displayTimeUnit"] == "ms"


def test_threads(one_python, target, tmp_path):
    t = target(one_python, "threads.py", 10)
    trdoc, stacks, _ = record(["-p", str(t.pid)], tmp_path)
    check_durations(trdoc, stacks)
    _, names = trace_threads(trdoc)
    thread_names = {v for (what, _, _), v in names.items() if what == "thread_name"}
    assert {"alpha", "beta"} <= thread_names
    assert all(pid == t.pid for (_, pid, _) in names)


def test_idle_threads_come_and_go(one_python, target, tmp_path):
    """With -i waiting threads are sampled too: every one of them."""
    t = target(one_python, "named_threads.py", 10)
    trdoc, stacks, _ = record(["-p", str(t.pid), "-i"], tmp_path)
    check_durations(trdoc, stacks)
    _, names = trace_threads(trdoc)
    thread_names = {v for (what, _, _), v in names.items() if what == "thread_name"}
    assert {"busy-1", "busy-2", "wait-1", "wait-2", "wait-3", "wait-4"} <= thread_names


def test_subprocesses(one_python, target, tmp_path):
    t = target(one_python, "dump_target.py", 30, "fork")
    assert wait_for(lambda: children_of(t.pid))
    child, = children_of(t.pid)
    trdoc, stacks, _ = record(["-p", str(t.pid), "-s", "-i"], tmp_path, duration=1.5)
    pid_of = lambda proc: int(re.match(r"process (\d+):", proc).group(1))
    open_us = check_durations(trdoc, stacks, pid_of)
    assert {pid for pid, _ in open_us} == {t.pid, child}
    _, names = trace_threads(trdoc)
    assert "fork" in names[("process_name", t.pid, 0)]
    assert "fork" not in names[("process_name", child, 0)]
    for pid in (t.pid, child):
        assert {names[("thread_name", p, tid)] for p, tid in open_us if p == pid} == \
            {"MainThread", "worker-1", "worker-2", 'sleeper "q"'}


def test_timeline_cut_short(one_python, target, tmp_path):
    """The timeline keeps the first N stacks: the trace covers the start and
    says so, and still balances."""
    t = target(one_python, "threads.py", 10)
    trdoc, _, err = record(["-p", str(t.pid), "--max-timeline", "40"], tmp_path)
    assert "--max-timeline" in err
    other = trdoc["otherData"]
    assert other["timeline_samples"] == 40 and other["timeline_lost"] > 0
    threads, _ = trace_threads(trdoc)
    assert sum(len([e for e in ev if e["ph"] == "B"]) for ev in threads.values()) >= 1
    last = max(e["ts"] for ev in threads.values() for e in ev)
    # 40 stacks of two busy threads cover about 20 ticks, not the 2 s run.
    assert last < 0.5e6
    for ev in threads.values():
        walk_thread(ev)


def test_no_samples_is_an_empty_trace(tmp_path):
    """A target that is not Python under -s: nothing sampled, a valid trace."""
    tr = tmp_path / "p.trace.json"
    r = run_pyspyc(["record", "-s", "-d", "0.3", "-o", str(tr), "--", "sleep", "1"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(tr.read_text())
    assert doc["traceEvents"] == [] and doc["otherData"]["samples"] == 0
