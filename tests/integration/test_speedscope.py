"""pyspyc record -o x.speedscope.json: one run written as speedscope, Chrome
trace and collapsed stacks must agree, and speedscope's own importer must
read the file as we mean it."""
import collections
import json
import re

import pytest

from conftest import children_of, parse_collapsed, run_pyspyc, wait_for
from json_formats import (NODE, check_speedscope, speedscope_counts,
                          speedscope_import, speedscope_samples, split_markers, trace_threads,
                          walk_thread)

RATE = 200
THREADS = (' "MainThread"', ' "worker-1"', ' "worker-2"', ' "sleeper "q""')
OWNER_RE = re.compile(r'^(?:process (\d+):".*" )?thread (\d+)(?: "|$)', re.S)


def record(target_args, tmp_path, *opts, rate=RATE, duration=2):
    """Record one run as all three formats; returns (speedscope document,
    trace document, collapsed stacks, pyspyc's stderr)."""
    ss, tr, fo = (tmp_path / "p.speedscope.json", tmp_path / "p.trace.json",
                  tmp_path / "p.folded")
    r = run_pyspyc(["record", "-r", str(rate), "-d", str(duration), "-o", str(ss),
                    "-o", str(tr), "-o", str(fo)] + list(opts) + target_args)
    assert r.returncode == 0, r.stderr
    ssdoc = json.loads(ss.read_text(encoding="utf-8"))
    check_speedscope(ssdoc)
    return ssdoc, json.loads(tr.read_text(encoding="utf-8")), \
        parse_collapsed(fo.read_text()), r.stderr


def owner(name):
    """(pid or None, tid) from a profile name."""
    m = OWNER_RE.match(name)
    assert m, name
    return (int(m.group(1)) if m.group(1) else None), int(m.group(2))


def compare_with_collapsed(doc, stacks, per_thread):
    """Per stack, the speedscope counts are the collapsed counts: per thread
    when the collapsed stacks start at their threads (-t), summed over the
    threads of each process otherwise."""
    want = collections.Counter()
    for frames, count in stacks:
        proc, thread, body = split_markers(frames)
        assert (thread is not None) == per_thread, frames
        key = " ".join(m for m in (proc, thread) if m)
        want[(key, body)] += count
    got = collections.Counter()
    for (name, body), count in speedscope_counts(doc, RATE).items():
        if not per_thread:
            name = name.rsplit(" thread ", 1)[0] if name.startswith("process ") else ""
        got[(name, body)] += count
    assert got == want
    return sum(want.values())


def check_time_order(ssdoc, trdoc):
    """A thread's speedscope samples are its stacks in the order the trace
    shows them: the two writers walk the same timeline."""
    threads, _ = trace_threads(trdoc)
    assert len(threads) == len(ssdoc["profiles"])
    for prof in ssdoc["profiles"]:
        pid, tid = owner(prof["name"])
        key = [k for k in threads if k[1] == tid and (pid is None or k[0] == pid)]
        assert len(key) == 1, (prof["name"], sorted(threads))
        _, shown = walk_thread(threads[key[0]])
        runs = []
        for frames, _ in speedscope_samples(ssdoc, prof):
            if frames and (not runs or runs[-1] != frames):
                runs.append(frames)
        assert runs == shown, prof["name"]


@pytest.mark.parametrize("threads", [False, True], ids=["default", "threads"])
def test_speedscope_agrees(one_python, target, tmp_path, threads):
    t = target(one_python, "threads.py", 10)
    ssdoc, trdoc, stacks, err = record(["-p", str(t.pid)], tmp_path,
                                       *(["-t"] if threads else []))
    assert "--max-timeline" not in err
    total = compare_with_collapsed(ssdoc, stacks, threads)
    assert total > 200
    names = [p["name"] for p in ssdoc["profiles"]]
    assert any(n.endswith(' "alpha"') for n in names), names
    assert any(n.endswith(' "beta"') for n in names), names
    assert all(owner(n)[0] is None for n in names), names
    # The busiest thread (the first of equals) is the one speedscope opens.
    counts = [round(sum(p["weights"]) * RATE) for p in ssdoc["profiles"]]
    assert ssdoc["activeProfileIndex"] == counts.index(max(counts))
    # With the whole timeline, the samples are in time order.
    check_time_order(ssdoc, trdoc)
    for prof in ssdoc["profiles"]:
        # Runs are merged: no two neighbours are the same stack.
        s = prof["samples"]
        assert all(s[i] != s[i + 1] for i in range(len(s) - 1)), prof["name"]


def test_speedscope_subprocesses(one_python, target, tmp_path):
    t = target(one_python, "dump_target.py", 30, "fork")
    assert wait_for(lambda: children_of(t.pid))
    child, = children_of(t.pid)
    ssdoc, trdoc, stacks, _ = record(["-p", str(t.pid)], tmp_path, "-s", "-i")
    compare_with_collapsed(ssdoc, stacks, False)
    pids = collections.defaultdict(set)
    for prof in ssdoc["profiles"]:
        pid, tid = owner(prof["name"])
        assert prof["name"].endswith(THREADS), prof["name"]
        pids[pid].add(tid)
    assert set(pids) == {t.pid, child}
    assert all(len(tids) == 4 for tids in pids.values()), pids
    check_time_order(ssdoc, trdoc)


def test_speedscope_timeline_cut_short(one_python, target, tmp_path):
    """When the timeline did not keep everything, the stacks are written
    whole instead, so the counts still hold."""
    t = target(one_python, "threads.py", 10)
    ssdoc, trdoc, stacks, err = record(["-p", str(t.pid)], tmp_path, "-t",
                                       "--max-timeline", "50")
    assert "--max-timeline" in err
    compare_with_collapsed(ssdoc, stacks, True)
    assert trdoc["otherData"]["timeline_lost"] > 0
    assert trdoc["otherData"]["timeline_samples"] == 50
    for prof in ssdoc["profiles"]:
        assert prof["startValue"] == 0


@pytest.mark.skipif(not NODE, reason="node is not installed")
def test_speedscope_importer_reads_it(one_python, target, tmp_path):
    t = target(one_python, "threads.py", 10)
    ssdoc, trdoc, stacks, _ = record(["-p", str(t.pid)], tmp_path, "-t")
    ss, tr = tmp_path / "p.speedscope.json", tmp_path / "p.trace.json"
    got, trace = speedscope_import(str(ss), str(tr))
    assert got["importer"] == "Importing as speedscope json file"
    assert got["warnings"] == []
    assert got["name"] == ssdoc["name"]
    assert got["indexToView"] == ssdoc["activeProfileIndex"]
    assert [p["name"] for p in got["profiles"]] == [p["name"] for p in ssdoc["profiles"]]
    for mine, theirs in zip(ssdoc["profiles"], got["profiles"]):
        assert theirs["unit"] == "seconds"
        assert abs(theirs["total"] - sum(mine["weights"])) < 1e-6
        # Speedscope merges neighbours that are the same stack; we did.
        assert theirs["samples"] == len(mine["samples"])
        assert theirs["frames"] == len({i for s in mine["samples"] for i in s})
        want = collections.Counter()
        for frames, w in speedscope_samples(ssdoc, mine):
            want[";".join(frames)] += w
        assert set(theirs["stacks"]) == set(want)
        for k, w in want.items():
            assert abs(theirs["stacks"][k] - w) < 1e-9, k

    # Speedscope reads Chrome traces too: one profile per thread, named by
    # our metadata, each as long as its frames were open.
    assert trace["importer"] == "Importing as Trace Event Format profile"
    threads, names = trace_threads(trdoc)
    assert len(trace["profiles"]) == len(threads)
    open_us = {k: walk_thread(ev)[0] for k, ev in threads.items()}
    for prof in trace["profiles"]:
        (pid, tid), = [k for k in threads if prof["name"].endswith("(tid %d)" % k[1])]
        assert prof["name"].startswith(names[("process_name", pid, 0)])
        assert names[("thread_name", pid, tid)] in prof["name"]
        assert abs(sum(prof["stacks"].values()) - open_us[(pid, tid)]) < 1.0
    # Its only complaint may be its own: several frames of one name
    # ending at one instant, it pairs by name first and says so.
    for w in trace["warnings"]:
        assert " instead." in w and "Doing nothing" not in w, w
