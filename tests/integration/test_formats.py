"""Output formats chosen by name and --format, several in one run, and the
round trip: the collapsed stacks, the pprof profile and the speedscope file
of one run hold the same stacks with the same counts."""
import collections
import gzip
import json
import os

import pytest

from conftest import parse_collapsed, run_pyspyc


# ---- choosing formats --------------------------------------------------------

def test_bare_json_needs_format(tmp_path):
    out = tmp_path / "x.json"
    r = run_pyspyc(["record", "-d", "0.2", "-o", str(out), "--", "true"])
    assert r.returncode == 2
    assert "--format" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unknown_format_lists_the_known(tmp_path):
    r = run_pyspyc(["record", "-f", "svgz", "-o", str(tmp_path / "x"), "--", "true"])
    assert r.returncode == 2
    for name in ("flamegraph", "raw", "speedscope", "chrometrace", "pprof", "callgrind",
                 "pstats"):
        assert name in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_extension_wins_and_format_fills_in(one_python, target, tmp_path):
    """-f names the format of outputs whose name says none; the others keep
    the format their extension names."""
    t = target(one_python, "split.py", 10)
    svg, js, raw = tmp_path / "a.svg", tmp_path / "b.json", tmp_path / "c.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-f", "speedscope",
                    "-o", str(svg), "-o", str(js), "-o", str(raw)])
    assert r.returncode == 0, r.stderr
    assert svg.read_text().lstrip().startswith("<?xml")
    doc = json.loads(js.read_text())
    assert doc["$schema"].startswith("https://www.speedscope.app/")
    assert parse_collapsed(raw.read_text())


def test_stdout_takes_the_format(one_python, target, tmp_path):
    t = target(one_python, "split.py", 10)
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-f", "chrometrace", "-o", "-"])
    assert r.returncode == 0, r.stderr
    assert "traceEvents" in json.loads(r.stdout)


def test_default_name_follows_format(one_python, target, tmp_path):
    t = target(one_python, "split.py", 10)
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "0.5", "-f", "pprof"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    names = os.listdir(str(tmp_path))
    assert len(names) == 1 and names[0].endswith(".pb.gz"), names
    with gzip.open(str(tmp_path / names[0])) as f:
        assert f.read(1)  # a gzip stream with something in it


# ---- the round trip ------------------------------------------------------------

def _varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _fields(buf):
    """(field number, wire type, value) of one protobuf message; lengths
    delimited values as bytes, varints as ints (packed lists are left to
    the caller)."""
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise AssertionError("bad wire type %d" % wt)
        out.append((num, wt, v))
    return out


def _ints(wt, v):
    """A repeated integer field's values, packed or not."""
    if wt == 0:
        return [v]
    vals, i = [], 0
    while i < len(v):
        x, i = _varint(v, i)
        vals.append(x)
    return vals


def pprof_stacks(path):
    """{root-first tuple of 'name (file:line)': samples} from a .pb.gz, and
    the sample types, decoded here from profile.proto's wire format."""
    with gzip.open(path) as f:
        msg = f.read()
    strings, functions, locations, samples, types = [], {}, {}, [], []
    for num, wt, v in _fields(msg):
        if num == 6:
            strings.append(v.decode("utf-8"))
        elif num == 1:
            t = dict((n, x) for n, _, x in _fields(v))
            types.append((t.get(1, 0), t.get(2, 0)))
        elif num == 5:
            fn = dict((n, x) for n, _, x in _fields(v))
            functions[fn[1]] = (fn.get(2, 0), fn.get(4, 0))
        elif num == 4:
            loc, lines = {}, []
            for n, w, x in _fields(v):
                if n == 4:
                    ln = dict((a, b) for a, _, b in _fields(x))
                    lines.append((ln.get(1, 0), ln.get(2, 0)))
                else:
                    loc[n] = x
            locations[loc[1]] = lines
        elif num == 2:
            locs, vals = [], []
            for n, w, x in _fields(v):
                if n == 1:
                    locs += _ints(w, x)
                elif n == 2:
                    vals += _ints(w, x)
            samples.append((locs, vals))
    out = collections.Counter()
    for locs, vals in samples:
        frames = []
        for lid in reversed(locs):  # leaf first on the wire
            for fid, line in reversed(locations[lid]):
                name, file = (strings[i] for i in functions[fid])
                frames.append(_frame(name, file, line))
        out[tuple(frames)] += vals[0]
    return out, [(strings[a], strings[b]) for a, b in types]


def _frame(name, file, line):
    if not file:
        return name
    return "%s (%s:%d)" % (name, file, line) if line else "%s (%s)" % (name, file)


def speedscope_stacks(path, rate):
    doc = json.load(open(path))
    frames = doc["shared"]["frames"]
    out = collections.Counter()
    for prof in doc["profiles"]:
        assert prof["type"] == "sampled" and prof["unit"] == "seconds"
        for stack, w in zip(prof["samples"], prof["weights"]):
            key = tuple(_frame(frames[i]["name"], frames[i].get("file", ""),
                               frames[i].get("line", 0)) for i in stack)
            out[key] += w * rate
    return collections.Counter({k: int(round(v)) for k, v in out.items()}), doc


@pytest.mark.parametrize("threads", [False, True], ids=["default", "threads"])
def test_round_trip(one_python, target, tmp_path, threads):
    rate = 97
    t = target(one_python, "threads.py", 10)
    folded, pb, ss = tmp_path / "p.folded", tmp_path / "p.pb.gz", tmp_path / "p.speedscope.json"
    args = ["record", "-p", str(t.pid), "-d", "2", "-r", str(rate), "-i",
            "-o", str(folded), "-o", str(pb), "-o", str(ss)]
    if threads:
        args.append("-t")
    r = run_pyspyc(args)
    assert r.returncode == 0, r.stderr
    collapsed = collections.Counter()
    for frames, count in parse_collapsed(folded.read_text()):
        if threads:
            assert frames[0].startswith("thread "), frames
            frames = frames[1:]
        else:
            assert not any(f.startswith("thread ") for f in frames), frames
        collapsed[tuple(frames)] += count
    assert sum(collapsed.values()) > 100

    from_pprof, types = pprof_stacks(str(pb))
    assert types == [("samples", "count"), ("cpu", "nanoseconds")]
    assert from_pprof == collapsed

    from_speedscope, doc = speedscope_stacks(str(ss), rate)
    assert from_speedscope == collapsed
    # One profile per thread whatever -t says: threads.py runs several.
    assert len(doc["profiles"]) >= 3
