"""pyspyc convert: collapsed stacks (ours and flamegraph.pl's) read back,
merged and written in every format, each read by its consumer; malformed
inputs named with their line, nothing written."""
import collections
import gzip
import json
import os
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import parse_collapsed, run_pyspyc, why
from json_formats import NODE, speedscope_import
from test_callgrind import ANNOTATE, annotate
from test_formats import pprof_stacks, speedscope_stacks
from test_pprof import GO, go_pprof

# flamegraph.pl's dialect, written by hand as stackcollapse-perf.pl writes
# it: bare names, kernel frames marked _[k], [unknown], a CRLF line, a
# blank line, and one stack given twice (its counts add).
FOREIGN = (
    "swapper;secondary_startup_64_[k];cpu_idle_[k] 40\n"
    "python3;_start;main;PyRun_SimpleFile;[unknown] 25\r\n"
    "\n"
    "python3;_start;main;Py_RunMain;_PyEval_EvalFrameDefault 30\n"
    "python3;_start;main;PyRun_SimpleFile;[unknown] 5\n"
)
FOREIGN_COUNTS = {
    ("swapper", "secondary_startup_64_[k]", "cpu_idle_[k]"): 40,
    ("python3", "_start", "main", "PyRun_SimpleFile", "[unknown]"): 30,
    ("python3", "_start", "main", "Py_RunMain", "_PyEval_EvalFrameDefault"): 30,
}


def convert(*args):
    return run_pyspyc(["convert"] + [str(a) for a in args])


def counts(text):
    out = collections.Counter()
    for frames, c in parse_collapsed(text):
        out[tuple(frames)] += c
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, request):
    """A recorded profile of split.py, with -t (thread markers), as
    collapsed stacks."""
    from conftest import APPS, MODEL_PYTHONS
    py = MODEL_PYTHONS[0][1] if MODEL_PYTHONS else None
    if py is None:
        pytest.skip("no supported CPython found")
    d = tmp_path_factory.mktemp("convert")
    folded = d / "rec.folded"
    r = run_pyspyc(["record", "-t", "-r", "200", "-d", "1.5", "-o", str(folded), "--", py,
                    os.path.join(APPS, "split.py"), "3"])
    assert r.returncode == 0, r.stderr
    assert sum(counts(folded.read_text()).values()) > 100, r.stderr
    return folded


def test_collapsed_round_trip_is_the_same_file(recorded, tmp_path):
    out = tmp_path / "again.folded"
    r = convert(recorded, "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == recorded.read_bytes()
    assert re.match(r"pyspyc convert: 1 input, \d+ stacks, \d+ samples; wrote 1 output$",
                    r.stderr.strip()), r.stderr


def test_through_pprof_and_speedscope(recorded, tmp_path):
    """collapsed -> pprof and speedscope: the same stacks and counts (thread
    markers become labels or profiles)."""
    pb, ss = tmp_path / "c.pb.gz", tmp_path / "c.speedscope.json"
    r = convert(recorded, "-r", "200", "-o", pb, "-o", ss)
    assert r.returncode == 0, r.stderr
    want = collections.Counter()
    for frames, c in counts(recorded.read_text()).items():
        assert frames[0].startswith("thread "), frames
        want[frames[1:]] += c
    got, types = pprof_stacks(str(pb))
    assert types == [("samples", "count"), ("cpu", "nanoseconds")]
    assert got == want
    got, doc = speedscope_stacks(str(ss), 200)
    assert got == want
    if GO:
        top = go_pprof(tmp_path, "-top", "-sample_index=samples", str(pb))
        assert "spin_a" in top and "spin_b" in top, top


def test_merging_adds_counts(recorded, tmp_path):
    out = tmp_path / "three.folded"
    r = convert(recorded, recorded, recorded, "-o", out)
    assert r.returncode == 0, r.stderr
    one = counts(recorded.read_text())
    assert counts(out.read_text()) == collections.Counter({k: 3 * v for k, v in one.items()})
    assert "3 inputs" in r.stderr
    # From standard input too, beside a file.
    p = subprocess.run([os.environ.get("PYSPYC", "pyspyc"), "convert", "-", str(recorded),
                        "-o", "-"], input=recorded.read_text(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert counts(p.stdout) == collections.Counter({k: 2 * v for k, v in one.items()})


def test_flamegraph_pl_dialect_in_every_format(tmp_path):
    src = tmp_path / "perf.folded"
    src.write_bytes(FOREIGN.encode())
    outs = {"folded": tmp_path / "o.folded", "svg": tmp_path / "o.svg",
            "pprof": tmp_path / "o.pb.gz", "speedscope": tmp_path / "o.speedscope.json",
            "trace": tmp_path / "o.trace.json", "callgrind": tmp_path / "callgrind.out.perf",
            "pstats": tmp_path / "o.pstats"}
    args = [src, "-r", "100"]
    for p in outs.values():
        args += ["-o", p]
    r = convert(*args)
    assert r.returncode == 0, r.stderr
    assert "wrote 7 outputs" in r.stderr
    assert counts(outs["folded"].read_text()) == FOREIGN_COUNTS
    # SVG: well-formed, every frame drawn with its samples.
    tree = ET.parse(str(outs["svg"]))
    titles = ["".join(e.itertext()) for e in tree.iter("{http://www.w3.org/2000/svg}title")]
    for name, n in (("cpu_idle_[k]", 40), ("[unknown]", 30), ("_start", 60)):
        assert any(t.startswith(name + " ") and " %d samples " % n in t for t in titles), \
            why(name, titles[:20])
    got, _ = pprof_stacks(str(outs["pprof"]))
    assert got == FOREIGN_COUNTS
    got, _ = speedscope_stacks(str(outs["speedscope"]), 100)
    assert got == FOREIGN_COUNTS
    doc = json.load(open(str(outs["trace"])))
    assert doc["traceEvents"] is not None
    if ANNOTATE:
        rows, total = annotate(outs["callgrind"])
        assert total == 100, rows
    # pstats: Python's own reader; own time per function at 100 Hz.
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import pstats, sys; s = pstats.Stats(sys.argv[1]); "
                        "print(sorted((k[2], round(v[2] * 100)) for k, v in s.stats.items() "
                        "if v[2]))", str(outs["pstats"])],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(sorted([("cpu_idle_[k]", 40), ("[unknown]", 30),
                                           ("_PyEval_EvalFrameDefault", 30)])), r.stdout
    if GO:
        top = go_pprof(tmp_path, "-top", "-sample_index=samples", str(outs["pprof"]))
        assert "cpu_idle_[k]" in top, top
    if NODE:
        files = speedscope_import(str(outs["speedscope"]))
        assert files[0]["warnings"] == []
        assert abs(sum(p["total"] for p in files[0]["profiles"]) - 1.0) < 1e-6


BAD = [
    ("a;b 3\nc;d x\n", "line 2: the sample count 'x' is not a whole number"),
    ("a;b 3\nno count\n", "line 2: the sample count 'count' is not a whole number"),
    ("a;b 3\nnocount\n", "line 2: no sample count at the end of the line"),
    ("a;;b 3\n", "line 1: an empty frame"),
    ("a 1\x00\n", "line 1: a NUL byte"),
]


@pytest.mark.parametrize("text,said", BAD, ids=["count", "words", "nocount", "empty", "nul"])
def test_malformed_input_is_named_and_nothing_written(tmp_path, text, said):
    good, bad = tmp_path / "good.folded", tmp_path / "bad.folded"
    good.write_text("a;b 1\n")
    bad.write_bytes(text.encode())
    outs = [tmp_path / "x.svg", tmp_path / "x.folded"]
    r = convert(good, bad, "-o", outs[0], "-o", outs[1])
    assert r.returncode == 9, r.stderr
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and "'%s' %s" % (bad, said) in lines[0], r.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["bad.folded", "good.folded"]


def test_usage_errors(tmp_path):
    good = tmp_path / "good.folded"
    good.write_text("a;b 1\n")
    for args, said, rc in (
            ([good], "no output given", 2),
            (["-o", tmp_path / "x.svg"], "no input profile given", 2),
            ([good, "-o", tmp_path / "x.unknown"], "cannot tell the format", 2),
            ([tmp_path / "missing.folded", "-o", tmp_path / "x.svg"],
             "cannot read '%s': No such file or directory" % (tmp_path / "missing.folded"), 9),
            (["-", "-", "-o", "-"], "'-' (standard input) given more than once", 2),
            ([good, "-o", tmp_path / "x.svg", "-r", "0"], "--rate", 2)):
        r = convert(*args)
        assert r.returncode == rc, (args, r.stderr)
        assert said in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    assert not (tmp_path / "x.svg").exists()


def test_hostile_names_survive(one_python, target, tmp_path):
    """hostile.py's names (newlines, quotes, ';', '(' in names and files)
    recorded, converted to collapsed stacks again: the same file; to
    callgrind and pprof: their consumers read them whole."""
    t = target(one_python, "hostile.py", 30, "a\nb\rc")
    folded = tmp_path / "h.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-o", str(folded)])
    assert r.returncode == 0, r.stderr
    again, cg, pb = tmp_path / "again.folded", tmp_path / "h.callgrind", tmp_path / "h.pb.gz"
    r = convert(folded, "-o", again, "-o", cg, "-o", pb)
    assert r.returncode == 0, r.stderr
    assert again.read_bytes() == folded.read_bytes()
    total = sum(counts(folded.read_text()).values())
    got, _ = pprof_stacks(str(pb))
    assert sum(got.values()) == total
    if ANNOTATE:
        rows, got_total = annotate(cg)
        assert got_total == total, why(rows, total)


def test_pprof_round_trip_keeps_threads(recorded, tmp_path):
    """collapsed -> pprof -> collapsed: the same file, thread markers back
    from the tid and thread_name labels; gzip or plain; and what
    `go tool pprof -proto` makes of ours reads back the same."""
    pb, back = tmp_path / "r.pb.gz", tmp_path / "back.folded"
    r = convert(recorded, "-r", "200", "-o", pb)
    assert r.returncode == 0, r.stderr
    r = convert(pb, "-o", back)
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == recorded.read_bytes()
    plain = tmp_path / "r.pb"
    plain.write_bytes(gzip.decompress(pb.read_bytes()))
    r = convert(plain, "-o", "-")
    assert r.returncode == 0 and r.stdout == recorded.read_text(), r.stderr
    if GO:
        gone = tmp_path / "go.pb.gz"
        gone.write_bytes(go_pprof(tmp_path, "-proto", str(pb), text=False))
        r = convert(gone, "-o", "-")
        assert r.returncode == 0, r.stderr
        assert counts(r.stdout) == counts(recorded.read_text())


def test_pprof_windows_merge(recorded, tmp_path):
    """Windows as the agent writes them (pprof): merged, their counts add;
    the rate comes from them."""
    pb = tmp_path / "w.pb.gz"
    assert convert(recorded, "-r", "200", "-o", pb).returncode == 0
    out, ss = tmp_path / "hour.folded", tmp_path / "hour.speedscope.json"
    r = convert(pb, pb, pb, recorded, "-o", out, "-o", ss)
    assert r.returncode == 0, r.stderr
    one = counts(recorded.read_text())
    assert counts(out.read_text()) == collections.Counter({k: 4 * v for k, v in one.items()})
    doc = json.load(open(str(ss)))
    total_s = sum(sum(p["weights"]) for p in doc["profiles"])
    assert abs(total_s - 4 * sum(one.values()) / 200.0) < 1e-6, total_s


def test_pprof_rates_must_agree(recorded, tmp_path):
    a, b = tmp_path / "a.pb.gz", tmp_path / "b.pb.gz"
    assert convert(recorded, "-r", "200", "-o", a).returncode == 0
    assert convert(recorded, "-r", "100", "-o", b).returncode == 0
    r = convert(a, b, "-o", tmp_path / "x.svg")
    assert r.returncode == 9, r.stderr
    assert "'%s' at byte 0 of its inflated data: sampled at 100 Hz, and the inputs before " \
        "at 200 Hz" % b in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = convert(a, "-r", "100", "-o", tmp_path / "x.svg")
    assert r.returncode == 9 and "sampled at 200 Hz, not the 100 Hz --rate gives" in r.stderr
    assert not (tmp_path / "x.svg").exists()


def test_broken_pprof_is_named(recorded, tmp_path):
    pb = tmp_path / "ok.pb.gz"
    assert convert(recorded, "-o", pb).returncode == 0
    data = pb.read_bytes()
    cut = tmp_path / "cut.pb.gz"
    cut.write_bytes(data[:len(data) // 2])
    r = convert(cut, "-o", tmp_path / "x.folded")
    assert r.returncode == 9, r.stderr
    assert re.match(r"pyspyc convert: '%s' at byte \d+: the gzip stream is corrupt or cut "
                    r"short" % re.escape(str(cut)), r.stderr), r.stderr
    raw = gzip.decompress(data)
    bad = tmp_path / "bad.pb"
    bad.write_bytes(raw[:40] + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + raw[40:])
    r = convert(bad, "-o", tmp_path / "x.folded")
    assert r.returncode == 9 and re.search(r"at byte \d+: ", r.stderr), r.stderr
    assert not (tmp_path / "x.folded").exists()


def test_speedscope_round_trip(recorded, tmp_path):
    """collapsed -> speedscope -> collapsed: the same file (threads are
    profiles named by their markers); a recorded speedscope file, its
    samples in time order and split over runs, converts to the counts the
    same run's collapsed stacks hold."""
    ss, back = tmp_path / "r.speedscope.json", tmp_path / "back.folded"
    assert convert(recorded, "-r", "200", "-o", ss).returncode == 0
    r = convert(ss, "-r", "200", "-o", back)
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == recorded.read_bytes()


def test_recorded_speedscope_reads_back(one_python, target, tmp_path):
    t = target(one_python, "threads.py", 10)
    ss, folded = tmp_path / "p.speedscope.json", tmp_path / "p.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1.5", "-r", "97", "-t", "-i",
                    "-o", str(ss), "-o", str(folded)])
    assert r.returncode == 0, r.stderr
    doc = json.load(open(str(ss)))
    # The timeline was whole: a thread's samples in time order, one run of
    # a stack one sample, so one stack has several.
    assert any(len(p["samples"]) > len({tuple(s) for s in p["samples"]})
               for p in doc["profiles"]), "no stack came back in several runs"
    r = convert(ss, "-r", "97", "-o", "-")
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == counts(folded.read_text())


def test_evented_speedscope(tmp_path):
    """An evented profile (speedscope's other kind, as other tools write
    it): a stack weighs the time it was the open one, at --rate."""
    doc = {"$schema": "https://www.speedscope.app/file-format-schema.json",
           "shared": {"frames": [{"name": "main", "file": "app.py", "line": 3},
                                 {"name": "work", "file": "app.py", "line": 9},
                                 {"name": "io"}]},
           "profiles": [{"type": "evented", "name": "worker", "unit": "milliseconds",
                         "startValue": 0, "endValue": 100,
                         "events": [{"type": "O", "at": 0, "frame": 0},
                                    {"type": "O", "at": 10, "frame": 1},
                                    {"type": "O", "at": 40, "frame": 2},
                                    {"type": "C", "at": 60, "frame": 2},
                                    {"type": "C", "at": 90, "frame": 1},
                                    {"type": "C", "at": 100, "frame": 0}]}]}
    src = tmp_path / "ev.json"
    src.write_text(json.dumps(doc))
    r = convert(src, "-r", "100", "-o", "-")
    assert r.returncode == 0, r.stderr
    assert counts(r.stdout) == {("main (app.py:3)",): 2,
                                ("main (app.py:3)", "work (app.py:9)"): 6,
                                ("main (app.py:3)", "work (app.py:9)", "io"): 2}
    # Closing a frame that is not the innermost open one is an error.
    doc["profiles"][0]["events"][3]["frame"] = 1
    src.write_text(json.dumps(doc))
    r = convert(src, "-o", "-")
    assert r.returncode == 9, r.stderr
    assert "'%s': profiles[0]: event 3 closes a frame that is not the innermost one open" \
        % src in r.stderr, r.stderr


def test_broken_speedscope_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "shared": {"frames": []},\n  "profiles": [,]\n}\n')
    r = convert(bad, "-o", tmp_path / "x.svg")
    assert r.returncode == 9 and r.stderr.startswith(
        "pyspyc convert: '%s' line 3: not JSON: " % bad), r.stderr
    bad.write_text('{"shared": {"frames": [{"name": "a"}]}, "profiles": '
                   '[{"type": "sampled", "unit": "seconds", "samples": [[0], [4]], '
                   '"weights": [0.01, 0.01]}]}')
    r = convert(bad, "-o", tmp_path / "x.svg")
    assert r.returncode == 9 and "'%s': profiles[0]: sample or event 1 names no shared frame" \
        % bad in r.stderr, r.stderr
    assert not (tmp_path / "x.svg").exists()


def test_inputs_from_pipes(recorded, tmp_path):
    """Each input is read once: a pipe (bash's <(...)) of collapsed stacks,
    of pprof and of speedscope gives its stacks, not an empty profile."""
    pb, ss = tmp_path / "p.pb.gz", tmp_path / "p.speedscope.json"
    assert convert(recorded, "-r", "200", "-o", pb, "-o", ss).returncode == 0
    out = tmp_path / "all.folded"
    line = "%s convert <(cat %s) <(cat %s) <(cat %s) -o %s" % tuple(
        shlex.quote(str(x)) for x in (os.environ.get("PYSPYC", "pyspyc"), recorded, pb, ss,
                                      out))
    r = subprocess.run(["bash", "-c", line], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    one = counts(recorded.read_text())
    assert counts(out.read_text()) == collections.Counter({k: 3 * v for k, v in one.items()})
