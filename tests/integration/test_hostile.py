"""Hostile targets, on every CPython found: function and file names made to
break formats (markup, quotes, ';', control characters, NUL, lone
surrogates, bytes that are not UTF-8 on 2.7, 100,000 characters) and line
tables that are garbage (tests/apps/hostile.py, hostile_lines.py).

One record run writes every format; each must be well-formed on its own
terms and all of them must hold the same frames:

- collapsed stacks: valid UTF-8, every line `frame(;frame)* count`, no
  control character inside a frame;
- speedscope, chrometrace and `dump --json`: JSON whose strings are the
  names as pyspyc holds them (cut to 1024 characters plus "...", U+FFFD for
  NUL, lone surrogates and bytes that are not UTF-8);
- pprof: decodes, every string valid UTF-8, the same stacks and counts as
  speedscope;
- SVG: XML, no element or attribute of the target's making, one <script>
  (pyspyc's), each frame's <title> the name as the writer cleans it;
- `dump` text: valid UTF-8, nothing that could drive a terminal.

Line numbers read from garbage tables may be wrong, but never negative nor
past 2**31 - 1, and the run ends in time with every spinner seen."""
import collections
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import APPS, PYSPYC, run_pyspyc, version_of
from json_formats import (NODE, check_speedscope, event_frame, frame_text, speedscope_counts,
                          speedscope_import, trace_threads, walk_thread)
from test_formats import pprof_stacks, speedscope_stacks

sys.path.insert(0, APPS)
import hostile  # noqa: E402  (what the target holds)
import hostile_lines  # noqa: E402

RATE = 200
DURATION = 2
MAX_CHARS = 1024  # pyspyc keeps this much of a name (bytes on 2.7), then "..."
# Passed to the target: its command line is in several outputs too.
ARGV = "<script>alert(2)</script>;\x1b[2J\"'&\n"
APP_FRAMES = {"<module>", "main", "spin_all"}
COLLAPSED_LINE = re.compile(r"^[^;\x00-\x1f\x7f]+(?:;[^;\x00-\x1f\x7f]+)* [1-9][0-9]*$")
SVG_TAGS = {"svg", "defs", "linearGradient", "stop", "style", "script", "g", "title", "rect",
            "text"}
# What `dump` text must never print raw: controls (C0, DEL, C1), line and
# paragraph separators, bidirectional overrides and isolates.
TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def squash(s):
    """Runs of U+FFFD as one: on 2.7 pyspyc and Python's decoder may replace
    a bad sequence with different numbers of U+FFFD."""
    return re.sub("\ufffd+", "\ufffd", s)


def held(s, py2):
    """A name or file name of the target as pyspyc holds it."""
    cut = s[:MAX_CHARS]
    if py2:
        text = cut.decode("utf-8", "replace")
    else:
        text = "".join("\ufffd" if 0xd800 <= ord(c) < 0xe000 else c for c in cut)
    return squash(text.replace("\x00", "\ufffd") + ("..." if len(s) > MAX_CHARS else ""))


def shortened(file):
    """hostile.FILES as profiles show them: none has a '/' but the leading
    one of an absolute name, so a package-relative name drops just that."""
    return file[1:] if file.startswith("/") else file


def expected_names(python):
    """{(name, file as shown): file in full} of hostile.py's spinners."""
    py2 = version_of(python) < (3,)
    names, files = hostile.names(py2), hostile.files(py2)
    out = {}
    for i, n in enumerate(names):
        f = held(files[i % len(files)], py2)
        out[(held(n, py2), shortened(f))] = f
    return out


def expected_lines(python):
    return {("lines_" + k, "garbage_lines.py"): "garbage_lines.py"
            for k in hostile_lines.tables(version_of(python))}


# ---- the formats -----------------------------------------------------------------

def read_collapsed(raw):
    """Counter of stacks; asserts the grammar line by line (split on '\\n'
    only: a name may hold U+2028, which str.splitlines() breaks at)."""
    text = raw.decode("utf-8")
    assert text.endswith("\n"), text[-200:]
    stacks = collections.Counter()
    for line in text[:-1].split("\n"):
        assert COLLAPSED_LINE.match(line), repr(line[:300])
        head, _, count = line.rpartition(" ")
        stacks[tuple(head.split(";"))] += int(count)
    return stacks


def svg_clean(s, cap=200):
    """The SVG writer's text for a target string: line breaks as spaces,
    other controls, XML non-characters and bidi controls as U+FFFD, at most
    cap characters then "..."."""
    out = []
    for i, c in enumerate(s):
        if i == cap:
            out.append("...")
            break
        o = ord(c)
        if c in "\t\n\r":
            c = " "
        elif (o < 0x20 or 0x7f <= o <= 0x9f or o in (0xfffe, 0xffff) or
              0x202a <= o <= 0x202e or 0x2066 <= o <= 0x2069):
            c = "\ufffd"
        out.append(c)
    return "".join(out)


def check_svg(raw, frames):
    """frames: {(name, file, line)} the JSON formats hold."""
    root = ET.fromstring(raw)
    local = lambda name: name.rsplit("}", 1)[-1]  # noqa: E731
    scripts = []
    for e in root.iter():
        assert local(e.tag) in SVG_TAGS, e.tag
        for a in e.attrib:
            assert not local(a).lower().startswith("on"), (e.tag, a)
        if local(e.tag) == "script":
            scripts.append(e.text or "")
    assert len(scripts) == 1 and "alert" not in scripts[0] and "pwned" not in scripts[0]
    titles = set()
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        t = g.find("{http://www.w3.org/2000/svg}title")
        if t is None or g.get("data-d") in (None, "0") or "data-m" in g.attrib:
            continue
        titles.add(t.text.rsplit(" \u2014 ", 1)[0])
    want = {"%s (%s%s)" % (svg_clean(n), svg_clean(f), ":%d" % l if l else "")
            for n, f, l in frames}
    assert titles == want, (titles ^ want)


def record_all(pid, tmp_path):
    """Record pid into every format; returns {extension: path}."""
    paths = {ext: tmp_path / ("p." + ext) for ext in
             ("folded", "svg", "speedscope.json", "trace.json", "pb.gz")}
    args = ["record", "-p", str(pid), "-r", str(RATE), "-d", str(DURATION)]
    for p in paths.values():
        args += ["-o", str(p)]
    r = run_pyspyc(args, timeout=60)
    assert r.returncode == 0, r.stderr
    return paths


def check_outputs(paths):
    """Every format well-formed and holding the same stacks; returns the
    frames {(name, file, line)}."""
    ss = json.loads(paths["speedscope.json"].read_bytes().decode("utf-8"))
    check_speedscope(ss)
    frames = {(f["name"], f.get("file", ""), f.get("line", 0)) for f in ss["shared"]["frames"]}
    by_ss = collections.Counter()
    for (_, stack), n in speedscope_counts(ss, RATE).items():
        by_ss[stack] += n
    assert read_collapsed(paths["folded"].read_bytes()) == by_ss

    from_pprof, types = pprof_stacks(str(paths["pb.gz"]))  # strict UTF-8 strings
    assert types == [("samples", "count"), ("cpu", "nanoseconds")]
    assert from_pprof == speedscope_stacks(str(paths["speedscope.json"]), RATE)[0]

    trace = json.loads(paths["trace.json"].read_bytes().decode("utf-8"))
    threads, _ = trace_threads(trace)
    begun = set()
    for ev in threads.values():
        walk_thread(ev)
        begun |= {event_frame(e) for e in ev if e["ph"] == "B"}
    assert begun == {frame_text(*f) for f in frames}

    check_svg(paths["svg"].read_bytes(), frames)
    return frames


def check_frames(frames, expected, lines):
    """The target's spinners, each seen, with lines in range."""
    seen = collections.defaultdict(set)
    for name, file, line in frames:
        assert 0 <= line <= 2 ** 31 - 1, (name, line)
        if file in ("hostile.py", "hostile_lines.py"):
            assert name in APP_FRAMES, name
            continue
        key = (squash(name), squash(file))
        assert key in expected, (name[:80], file[:80])
        seen[key].add(line)
        if lines:
            assert 0 < line <= lines, (name, line)
    assert set(seen) == set(expected), set(expected) - set(seen)


def check_dump(pid, expected, lines):
    r = subprocess.run([PYSPYC, "dump", "-p", str(pid), "--locals"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8")
    for line in text.split("\n"):
        assert not TERMINAL_UNSAFE.search(line), repr(line[:300])
    r = run_pyspyc(["dump", "-p", str(pid), "--json", "--locals"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for th in doc["threads"]:
        for fr in th["frames"]:
            line = fr.get("line") or 0
            assert 0 <= line <= 2 ** 31 - 1, fr
            if fr["short_filename"] in ("hostile.py", "hostile_lines.py"):
                continue
            key = (squash(fr["name"]), squash(fr["short_filename"]))
            assert expected.get(key) == squash(fr["filename"]), (key, fr["filename"][:80])
            assert not lines or 0 < line <= lines, fr


# ---- the tests -------------------------------------------------------------------

def test_hostile_names(python, target, tmp_path):
    """Every format from one run against hostile.py, and dump."""
    t = target(python, "hostile.py", 30, ARGV)
    expected = expected_names(python)
    frames = check_outputs(record_all(t.pid, tmp_path))
    # The spinners' source is 6 lines long: their lines are right.
    check_frames(frames, expected, 6)
    check_dump(t.pid, expected, 6)


def test_hostile_line_tables(python, target, tmp_path):
    t = target(python, "hostile_lines.py", 30)
    expected = expected_lines(python)
    frames = check_outputs(record_all(t.pid, tmp_path))
    check_frames(frames, expected, None)
    check_dump(t.pid, expected, None)


@pytest.mark.skipif(not NODE, reason="node is not installed")
def test_speedscope_importer_reads_hostile_names(one_python, target, tmp_path):
    """speedscope's own importer takes names with ';', newlines and the
    rest whole, from both the speedscope and the Chrome trace file."""
    t = target(one_python, "hostile.py", 30)
    paths = record_all(t.pid, tmp_path)
    ss = json.loads(paths["speedscope.json"].read_text(encoding="utf-8"))
    names = {f["name"] for f in ss["shared"]["frames"]} - APP_FRAMES
    assert {"semi;colon", "new\nline"} <= names
    got, trace = speedscope_import(str(paths["speedscope.json"]), str(paths["trace.json"]))
    assert got["warnings"] == []
    seen = "".join(k for p in got["profiles"] for k in p["stacks"])
    assert all(n in seen for n in names)
    assert len(trace["profiles"]) == 1
