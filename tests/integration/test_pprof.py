"""pprof output read back by the real consumer, `go tool pprof`.

One run writes x.pb.gz and x.folded together, so the two must agree sample
for sample: pprof's flat counts, its raw samples and its traces are compared
with the collapsed stacks, and the hot function's share with the truth that
tests/apps/hot.py spins.  Labels (pid, tid, thread_name) are read back with
-tags.  Skipped only where `go` is not installed."""
import collections
import datetime
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (APPS, children_of, frame_line, frame_name, parse_collapsed, run_pyspyc,
                      wait_for)

GO = shutil.which("go")
pytestmark = pytest.mark.skipif(GO is None, reason="go (for go tool pprof) is not installed")

# hot.py: hot() takes HOT of the spinner thread's CPU time, warm() the rest.
HOT = 0.7
SPINNER = 'hot "spinner"'
RATE = 500
PERIOD_NS = 2000000  # round(1e9 / RATE)
# The writer's own checks are exact: pprof and the collapsed stacks come
# from the same run.  The share against the truth checks the whole path
# and is statistical: at 500 Hz for 3 s (1500 samples) its standard error
# is 1.2 points, but on a loaded machine a preemption lands its whole wait
# on whichever function was running (the thread stays runnable), and with
# a load average of 7 on 2 cores one run in about twenty was 8 points off.
TOLERANCE = 0.12


def go_pprof(tmp, *args, text=True):
    """stdout of `go tool pprof ARGS` (bytes unless text): no network, no
    home directory."""
    home = os.path.join(str(tmp), "gohome")
    if not os.path.isdir(home):
        os.makedirs(home)
    env = dict(os.environ, HOME=home, PPROF_TMPDIR=home, GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="", GOCACHE=os.path.join(home, "cache"))
    env.pop("PPROF_BINARY_PATH", None)
    r = subprocess.run([GO, "tool", "pprof"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=text, timeout=120, env=env)
    assert r.returncode == 0, "go tool pprof %s: %s" % (" ".join(args), r.stderr)
    return r.stdout


def parse_top(text):
    """{function: [flat, cum]} and the total from -top -sample_index=samples
    (names that appear on several rows, <module> of several files, add up)."""
    rows = collections.defaultdict(lambda: [0, 0])
    total = None
    body = False
    for line in text.splitlines():
        m = re.search(r"of (\d+) total", line)
        if m:
            total = int(m.group(1))
        if re.match(r"^\s+flat\s+flat%\s+sum%\s+cum\s+cum%", line):
            body = True
            continue
        if body:
            m = re.match(r"^\s*(\d+)\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(.*)$", line)
            assert m, "bad -top row: %r" % line
            rows[m.group(3)][0] += int(m.group(1))
            rows[m.group(3)][1] += int(m.group(2))
    assert body and total is not None, text
    return rows, total


def parse_raw(text):
    """(header lines, [(values, [location ids leaf first], labels text)],
    {location id: "name file:line"}) from -raw."""
    header, samples, locs = [], [], {}
    section = "header"
    for line in text.splitlines():
        if line in ("Samples:", "Locations", "Mappings"):
            section = line
            continue
        if section == "header":
            header.append(line)
        elif section == "Samples:":
            m = re.match(r"^\s+(\d+)\s+(\d+): ([\d ]+)$", line)
            if m:
                ids = [int(x) for x in m.group(3).split()]
                samples.append(([int(m.group(1)), int(m.group(2))], ids, []))
            elif samples and ":[" in line:
                samples[-1][2].append(line.strip())
            else:
                assert line.startswith("samples/count cpu/nanoseconds"), line
        elif section == "Locations":
            # One Line per location: "id: 0xADDR M=n name file:line s=0()".
            m = re.match(r"^\s*(\d+): 0x[0-9a-f]+ (?:M=\d+ )?(.*) s=0\(\)$", line)
            assert m, "bad location (one line each, no system name): %r" % line
            locs[int(m.group(1))] = m.group(2)
    return header, samples, locs


def parse_traces(text):
    """[(count, {label: value}, [function names leaf first])] from -traces
    -sample_index=samples."""
    traces = []
    for block in text.split("-----------+-------------------------------------------------------")[1:]:
        labels, names, count = {}, [], None
        if not block.strip():
            continue  # after the closing separator
        for line in block.strip("\n").splitlines():
            if count is None:
                m = re.match(r"^\s*(\w+):\s+(.*)$", line)
                if m:
                    labels[m.group(1)] = m.group(2)
                    continue
                m = re.match(r"^\s*(\d+)\s+(\S.*)$", line)
                assert m, "bad trace line: %r" % line
                count = int(m.group(1))
                names.append(m.group(2))
            else:
                names.append(line.strip())
        traces.append((count, labels, names))
    return traces


def parse_tags(text):
    """{label: {value: samples}} from -tags -sample_index=samples."""
    tags, key = {}, None
    for line in text.splitlines():
        m = re.match(r"^\s*(\w+): Total ([\d.]+)$", line)
        if m:
            key = m.group(1)
            tags[key] = {}
            continue
        m = re.match(r"^\s*([\d.]+) \(\s*[\d.]+%\): (.*)$", line)
        if m and key:
            tags[key][m.group(2)] = int(float(m.group(1)))
    return tags


def folded_where(frame):
    """A collapsed frame as -raw prints its location: "name file:line"."""
    name = frame_name(frame)
    if name == frame:
        return "%s :0" % name
    inner = frame[len(name) + 2:-1]
    line = frame_line(frame)
    if line is None:
        return "%s %s:0" % (name, inner)
    return "%s %s:%d" % (name, inner[:inner.rindex(":")], line)


_runs = {}


def recorded(python, tmp_path_factory):
    """One launch of hot.py with x.pb.gz and x.folded from the same run
    (made once per interpreter, shared by the tests below)."""
    if python not in _runs:
        d = tmp_path_factory.mktemp("pprof")
        pb, folded = d / "x.pb.gz", d / "x.folded"
        started = time.time()
        r = run_pyspyc(["record", "-r", str(RATE), "-d", "3", "-o", str(pb), "-o", str(folded),
                        "--", python, os.path.join(APPS, "hot.py"), "5"], timeout=120)
        assert r.returncode == 0, r.stderr
        with open(str(pb), "rb") as f:
            assert f.read(2) == b"\x1f\x8b", "not gzip"
        _runs[python] = (d, pb, parse_collapsed(folded.read_text()), started)
    return _runs[python]


def leaf_counts(stacks):
    out = collections.Counter()
    for frames, c in stacks:
        out[frame_name(frames[-1])] += c
    return out


def test_top_flat_share(one_python, tmp_path_factory):
    d, pb, stacks, _ = recorded(one_python, tmp_path_factory)
    total = sum(c for _, c in stacks)
    assert total > 500, "too few samples: %d" % total
    rows, pp_total = parse_top(go_pprof(d, "-top", "-sample_index=samples", "-nodefraction=0",
                                        str(pb)))
    assert pp_total == total
    assert "hot" in rows and "warm" in rows, sorted(rows)
    leaves = leaf_counts(stacks)
    # Same run: pprof's flat counts are the collapsed leaf counts exactly.
    for fn in ("hot", "warm"):
        assert rows[fn][0] == leaves[fn], (fn, rows[fn], leaves[fn])
    assert sum(flat for flat, _ in rows.values()) == total
    # And the split is the one the app spins.
    share = rows["hot"][0] / float(rows["hot"][0] + rows["warm"][0])
    assert abs(share - HOT) < TOLERANCE, "hot share %.3f, want %.2f" % (share, HOT)
    # hot is the top entry by flat, and the spinner's <lambda> keeps its
    # name (pprof would show "<unknown>" had it taken it for C++).
    assert max(rows, key=lambda n: rows[n][0]) == "hot"
    # The spinner's lambda: the one most samples went through (a start-up
    # sample may hold another, from the standard library).
    lam = sorted((n for n in rows if n.endswith("<lambda>")), key=lambda n: -rows[n][1])
    assert lam and rows[lam[0]][1] >= rows["hot"][0] + rows["warm"][0], sorted(rows)
    assert "<unknown>" not in rows

    # The default view (cpu, nanoseconds) shows the same share in time.
    text = go_pprof(d, "-top", "-nodefraction=0", "-unit=ms", str(pb))
    assert "Type: cpu" in text
    m = re.search(r"^\s*([\d.]+)ms\s+([\d.]+)%\s+[\d.]+%\s+[\d.]+ms\s+[\d.]+%\s+hot$", text, re.M)
    assert m, text
    assert float(m.group(1)) == pytest.approx(leaves["hot"] * PERIOD_NS / 1e6)
    assert float(m.group(2)) / 100 == pytest.approx(leaves["hot"] / float(total), abs=2e-4)


def test_raw_matches_collapsed(one_python, tmp_path_factory):
    d, pb, stacks, started = recorded(one_python, tmp_path_factory)
    header, samples, locs = parse_raw(go_pprof(d, "-raw", str(pb)))
    assert "PeriodType: cpu nanoseconds" in header
    assert "Period: %d" % PERIOD_NS in header
    assert any(h.startswith("Comment: ") and "hot.py" in h for h in header), header
    when = [h for h in header if h.startswith("Time: ")][0]
    t = datetime.datetime.strptime(when[6:32], "%Y-%m-%d %H:%M:%S.%f")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert started - 5 < t < started + 30, (when, started)
    dur = re.search(r"^Duration: ([\d.]+)s$", "\n".join(header), re.M)
    assert dur and 2.5 <= float(dur.group(1)) <= 6, header

    got = collections.Counter()
    for (count, cpu), ids, labels in samples:
        assert cpu == count * PERIOD_NS
        assert any(l.startswith("pid:[") for l in labels), labels
        got[tuple(locs[i] for i in reversed(ids))] += count
    want = collections.Counter()
    for frames, c in stacks:
        want[tuple(folded_where(f) for f in frames)] += c
    assert sum(got.values()) == sum(want.values())
    assert got == want


def test_traces_match_collapsed(one_python, tmp_path_factory):
    d, pb, stacks, _ = recorded(one_python, tmp_path_factory)
    traces = parse_traces(go_pprof(d, "-traces", "-sample_index=samples", str(pb)))
    got = collections.Counter()
    for count, labels, names in traces:
        assert set(labels) == {"pid", "tid", "thread_name"}, labels
        got[tuple(reversed(names))] += count
        if names[0] in ("hot", "warm"):
            assert labels["thread_name"] == SPINNER, labels
    want = collections.Counter()
    for frames, c in stacks:
        want[tuple(frame_name(f) for f in frames)] += c
    assert got == want
    pids = {labels["pid"] for _, labels, _ in traces}
    assert len(pids) == 1, pids


@pytest.mark.parametrize("threads", [False, True], ids=["plain", "with-t"])
def test_tags(one_python, target, tmp_path, threads):
    t = target(one_python, "hot.py", 30)
    pb, folded = tmp_path / "t.pb.gz", tmp_path / "t.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "200", "-d", "1.5", "-o", str(pb),
                    "-o", str(folded)] + (["-t"] if threads else []), timeout=60)
    assert r.returncode == 0, r.stderr
    stacks = parse_collapsed(folded.read_text())
    total = sum(c for _, c in stacks)
    assert total > 100, r.stderr
    tags = parse_tags(go_pprof(tmp_path, "-tags", "-sample_index=samples", str(pb)))
    assert set(tags) == {"pid", "tid", "thread_name"}, tags
    assert tags["pid"] == {str(t.pid): total}
    assert sum(tags["thread_name"].values()) == total
    assert tags["thread_name"].get(SPINNER, 0) >= 0.9 * total, tags["thread_name"]
    tasks = set(os.listdir("/proc/%d/task" % t.pid))
    assert set(tags["tid"]) <= tasks, (tags["tid"], tasks)
    # A thread caught before its OS id was known has no tid label (and
    # shows by pthread id in -t stacks): those samples must be few.
    assert 0.98 * total <= sum(tags["tid"].values()) <= total, tags["tid"]
    marked = [fr for fr, _ in stacks if re.match(r'^thread (\d+|0x[0-9a-f]+) "', fr[0])]
    if not threads:
        # Threads are pprof's own labels: the other outputs keep their
        # stacks without -t.
        assert not marked, marked[:3]
        return
    assert len(marked) == len(stacks)
    per_tid, per_name = collections.Counter(), collections.Counter()
    for frames, c in stacks:
        m = re.match(r'^thread (\d+|0x[0-9a-f]+) "(.*)"$', frames[0])
        if not m.group(1).startswith("0x"):
            per_tid[m.group(1)] += c
        per_name[m.group(2)] += c
    assert dict(per_tid) == tags["tid"]
    assert dict(per_name) == tags["thread_name"]


def test_tags_subprocesses(one_python, target, tmp_path):
    t = target(one_python, "hot.py", 30, "fork")
    assert wait_for(lambda: children_of(t.pid))
    kids = children_of(t.pid)
    try:
        _tags_subprocesses(t, kids, tmp_path)
    finally:
        # The target fixture stops the parent only: its child would spin
        # on for its 30 s, taking a CPU from the tests after this one.
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass


def _tags_subprocesses(t, kids, tmp_path):
    assert len(kids) == 1, kids
    pb = tmp_path / "s.pb.gz"
    r = run_pyspyc(["record", "-p", str(t.pid), "-s", "-r", "200", "-d", "2", "-o", str(pb)],
                   timeout=60)
    assert r.returncode == 0, r.stderr
    tags = parse_tags(go_pprof(tmp_path, "-tags", "-sample_index=samples", str(pb)))
    # The process markers became pid labels: both spinners are there.
    assert set(tags["pid"]) == {str(t.pid), str(kids[0])}, tags["pid"]
    assert min(tags["pid"].values()) > 50, tags["pid"]
    assert tags["thread_name"].get(SPINNER, 0) >= 0.9 * sum(tags["pid"].values())
    tops, _ = parse_top(go_pprof(tmp_path, "-top", "-sample_index=samples", "-nodefraction=0",
                                 "-tagfocus=pid=%d" % kids[0], str(pb)))
    assert "hot" in tops and not any(n.startswith("process ") for n in tops), sorted(tops)
