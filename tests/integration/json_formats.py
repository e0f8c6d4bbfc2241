"""Readers for the speedscope and Chrome trace files pyspyc writes, for the
integration tests: stacks and counts in the collapsed format's terms, the
checks every trace must pass, and speedscope's own importer run under node."""
import collections
import json
import os
import re
import shutil
import subprocess

from conftest import ROOT

PROCESS_RE = re.compile(r'^process \d+:".*"$', re.S)
THREAD_RE = re.compile(r'^thread (\d+)( ".*")?$', re.S)
CONSUMERS = os.path.join(ROOT, "tests", "consumers")
NODE = shutil.which("node")


def clean(s):
    """What the collapsed writer makes of a name: ';' and control
    characters cannot stand in a frame there."""
    return "".join("," if c == ";" else "?" if ord(c) < 0x20 or c == "\x7f" else c for c in s)


def frame_text(name, file="", line=0):
    """A frame as collapsed stacks write it."""
    if not file:
        return clean(name)
    return "%s (%s%s)" % (clean(name), clean(file), ":%d" % line if line else "")


def split_markers(frames):
    """(process marker or None, thread marker or None, the other frames) of
    a collapsed stack."""
    proc = thread = None
    i = 0
    if i < len(frames) and PROCESS_RE.match(frames[i]):
        proc, i = frames[i], i + 1
    if i < len(frames) and THREAD_RE.match(frames[i]):
        thread, i = frames[i], i + 1
    return proc, thread, tuple(frames[i:])


# ---- speedscope ------------------------------------------------------------------

def speedscope_samples(doc, prof):
    """[(frames as collapsed text, weight)] of one profile, in file order."""
    frames = doc["shared"]["frames"]
    assert len(prof["samples"]) == len(prof["weights"])
    return [(tuple(frame_text(frames[i]["name"], frames[i].get("file", ""),
                              frames[i].get("line", 0)) for i in s), w)
            for s, w in zip(prof["samples"], prof["weights"])]


def speedscope_counts(doc, rate):
    """{(profile name, frames): samples}, weights turned back into counts."""
    out = collections.Counter()
    for prof in doc["profiles"]:
        for frames, w in speedscope_samples(doc, prof):
            out[(prof["name"], frames)] += w * rate
    rounded = collections.Counter()
    for k, v in out.items():
        assert abs(v - round(v)) < 1e-6, (k, v)
        rounded[k] = int(round(v))
    return rounded


def check_speedscope(doc):
    """What every speedscope file of ours holds."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert doc["exporter"] == "pyspyc"
    assert 0 <= doc["activeProfileIndex"] < max(1, len(doc["profiles"]))
    for f in doc["shared"]["frames"]:
        assert not PROCESS_RE.match(f["name"]) and not THREAD_RE.match(f["name"]), f
    for prof in doc["profiles"]:
        assert prof["type"] == "sampled" and prof["unit"] == "seconds"
        assert prof["samples"] and len(prof["samples"]) == len(prof["weights"])
        assert all(w > 0 for w in prof["weights"])
        span = prof["endValue"] - prof["startValue"]
        assert abs(span - sum(prof["weights"])) < 1e-6, prof["name"]
        for s in prof["samples"]:
            assert all(0 <= i < len(doc["shared"]["frames"]) for i in s)


# ---- chrometrace ------------------------------------------------------------------

def trace_threads(doc):
    """{(pid, tid): [B/E events in file order]}, metadata names checked."""
    threads = collections.defaultdict(list)
    names = {}
    for e in doc["traceEvents"]:
        assert e["ph"] in ("M", "B", "E"), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name")
            names[(e["name"], e["pid"], e["tid"] if e["name"] == "thread_name" else 0)] = \
                e["args"]["name"]
            continue
        threads[(e["pid"], e["tid"])].append(e)
    for pid, tid in threads:
        assert ("process_name", pid, 0) in names, pid
        assert ("thread_name", pid, tid) in names, (pid, tid)
    return threads, names


def event_frame(e):
    a = e.get("args", {})
    return frame_text(e["name"], a.get("file", ""), a.get("line", 0))


def walk_thread(events):
    """Check one thread's events nest, balance and never go back in time.
    Returns (microseconds its outermost frames were open, the stacks it
    showed in order, runs of one stack as one)."""
    stack, shown, open_us, begin = [], [], 0.0, 0.0
    for i, e in enumerate(events):
        if i:
            assert e["ts"] >= events[i - 1]["ts"], (events[i - 1], e)
        if e["ph"] == "B":
            if not stack:
                begin = e["ts"]
            stack.append(e)
        else:
            assert stack, "E with nothing open: %r" % e
            b = stack.pop()
            assert (b["name"], b.get("args")) == (e["name"], e.get("args")), (b, e)
            assert e["ts"] > b["ts"], (b, e)
            if not stack:
                open_us += e["ts"] - begin
        # The stack between two instants is what the thread was running.
        last = i + 1 == len(events) or events[i + 1]["ts"] != e["ts"]
        if last and stack:
            now = tuple(event_frame(x) for x in stack)
            if not shown or shown[-1] != now:
                shown.append(now)
    assert not stack, "left open: %r" % stack
    return open_us, shown


# ---- speedscope's own importer -------------------------------------------------------

def speedscope_import(*paths):
    """What speedscope's importer (the npm package, run by node) makes of
    the files: see tests/consumers/speedscope_load.mjs."""
    assert os.path.isdir(os.path.join(CONSUMERS, "node_modules", "speedscope")), \
        "speedscope is not installed: run scripts/install-deps.sh"
    r = subprocess.run([NODE, os.path.join(CONSUMERS, "speedscope_load.mjs")] + list(paths),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    out = json.loads(r.stdout)
    assert len(out["files"]) == len(paths)
    return out["files"]
