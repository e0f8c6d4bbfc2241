"""pstats output read back by its consumers: pstats.Stats in every Python 3
found, and pyprof2calltree (then callgrind_annotate).

One run writes x.pstats and x.folded together, so the two must agree: a
function's own time is the samples whose innermost frame it is, over the
rate; its cumulative time the samples whose stacks hold it, once however
deep it recurses; its call counts are samples (nc once per frame of it,
cc once per stack), so a recursive function shows nc > cc."""
import collections
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import APPS, PYTHONS, parse_collapsed, run_pyspyc, why
from test_callgrind import ANNOTATE, annotate

RATE = 200
PY3 = [p for p in PYTHONS if p[2][0] == 3]
PYPROF2CALLTREE = shutil.which("pyprof2calltree")

LOAD = r"""
import io, json, pstats, sys
s = pstats.Stats(sys.argv[1], stream=io.StringIO())
s.sort_stats("cumulative").print_stats()
s.print_callers()
out = {}
for (file, line, name), (cc, nc, tt, ct, callers) in s.stats.items():
    out["%s:%s" % (file, name)] = [cc, nc, tt, ct, sorted(
        "%s:%s" % (k[0], k[2]) for k in callers)]
print(json.dumps({"total_tt": s.total_tt, "stats": out}))
"""


def load(py, path):
    """What Python py's pstats reads from path (LOAD's document)."""
    r = subprocess.run([py, "-c", LOAD, str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def key(frame):
    m = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    return "%s:%s" % (m.group(2), m.group(1)) if m else ":" + frame


def expected(folded):
    """{file:name: (own, cumulative, frames, stacks, callers)} in samples."""
    own, cum, nc, cc = (collections.Counter() for _ in range(4))
    callers = collections.defaultdict(set)
    total = 0
    for frames, count in parse_collapsed(folded):
        fns = [key(f) for f in frames]
        total += count
        own[fns[-1]] += count
        for f in set(fns):
            cum[f] += count
            cc[f] += count
        for f in fns:
            nc[f] += count
        for a, b in zip(fns, fns[1:]):
            callers[b].add(a)
    return {f: (own[f], cum[f], nc[f], cc[f], sorted(callers[f])) for f in cum}, total


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from conftest import MODEL_PYTHONS
    if not MODEL_PYTHONS:
        pytest.skip("no supported CPython found")
    py = MODEL_PYTHONS[-1][1]
    d = tmp_path_factory.mktemp("pstats")
    out = {}
    for app, args in (("split.py", ["4"]), ("recursion.py", ["4"])):
        ps, folded = d / (app + ".pstats"), d / (app + ".folded")
        r = run_pyspyc(["record", "-r", str(RATE), "-d", "2", "-o", str(ps), "-o",
                        str(folded), "--", py, os.path.join(APPS, app)] + args)
        assert r.returncode == 0, r.stderr
        out[app] = (ps, folded.read_text())
    return out


@pytest.mark.parametrize("py", [p[1] for p in PY3] or [None], ids=[p[0] for p in PY3] or
                         ["none"])
def test_pstats_loads_everywhere(recorded, py):
    if py is None:
        pytest.skip("no Python 3 found")
    for app, (ps, folded) in recorded.items():
        got = load(py, ps)
        want, total = expected(folded)
        assert total > 100, folded[:500]
        assert abs(got["total_tt"] - total / float(RATE)) < 1e-6
        assert set(got["stats"]) == set(want), why(sorted(got["stats"]), sorted(want))
        for f, (own, cum, nc, cc, callers) in want.items():
            g = got["stats"][f]
            assert (g[0], g[1]) == (cc, nc), (f, g, want[f])
            assert abs(g[2] - own / float(RATE)) < 1e-9 and abs(g[3] - cum / float(RATE)) < 1e-9, \
                (f, g, want[f])
            assert g[4] == callers, (f, g[4], callers)


def test_split_and_recursion_shares(recorded):
    """The split target's two functions hold their shares of its time; fib
    recurses: many frames a sample, its cumulative time once."""
    want, total = expected(recorded["split.py"][1])
    a = [v for k, v in want.items() if k.endswith(":spin_a")]
    b = [v for k, v in want.items() if k.endswith(":spin_b")]
    assert a and b, sorted(want)
    share = a[0][1] / float(a[0][1] + b[0][1])
    assert 0.45 < share < 0.75, share  # split.py: 60% in spin_a
    want, total = expected(recorded["recursion.py"][1])
    fib = [v for k, v in want.items() if k.endswith(":fib")][0]
    assert fib[1] <= total and fib[1] > 0.8 * total, (fib, total)
    assert fib[2] > 5 * fib[3], fib  # nc/cc: many frames of fib a sample


@pytest.mark.skipif(not PYPROF2CALLTREE or not ANNOTATE,
                    reason="pyprof2calltree or callgrind_annotate is not installed")
def test_pyprof2calltree_reads_it(recorded, tmp_path):
    ps, folded = recorded["split.py"]
    cg = tmp_path / "p.callgrind"
    r = subprocess.run([PYPROF2CALLTREE, "-i", str(ps), "-o", str(cg)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout
    rows, _ = annotate(cg)
    want, _ = expected(folded)
    for f, (own, cum, nc, cc, callers) in want.items():
        # Its self cost in nanoseconds: own samples over the rate.
        assert abs(rows.get(f, 0) - own * 1e9 / RATE) <= 1, (f, rows.get(f), own)


def test_record_names_and_format(tmp_path):
    """.pstats and .prof are pstats; so is -f pstats for a name that says
    nothing."""
    src = tmp_path / "in.folded"
    src.write_text("main (app.py:3);work (app.py:9) 7\n")
    for name, args in (("a.pstats", []), ("b.prof", []), ("c.out", ["-f", "pstats"])):
        out = tmp_path / name
        r = run_pyspyc(["convert", str(src), "-o", str(out)] + args)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes()[:1] == b"{", name


def test_hostile_names_load(one_python, target, tmp_path):
    """hostile.py's names (newlines, quotes, bytes that are not UTF-8 in
    file names): marshal takes every string, pstats prints them."""
    t = target(one_python, "hostile.py", 30, "a\nb\rc")
    ps, folded = tmp_path / "h.pstats", tmp_path / "h.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1", "-r", str(RATE), "-o", str(ps),
                    "-o", str(folded)])
    assert r.returncode == 0, r.stderr
    py = PY3[-1][1] if PY3 else "/usr/bin/python3"
    got = load(py, ps)
    _, total = expected(folded.read_text())
    assert abs(got["total_tt"] - total / float(RATE)) < 1e-6


def test_counts_past_32_bits(tmp_path):
    """Counts that do not fit marshal's 32-bit int go as its long."""
    src, ps = tmp_path / "big.folded", tmp_path / "big.pstats"
    src.write_text("main (a.py:1);f (a.py:2) 3000000000\nmain (a.py:1) 5\n")
    r = run_pyspyc(["convert", str(src), "-r", "1000", "-o", str(ps)])
    assert r.returncode == 0, r.stderr
    py = PY3[-1][1] if PY3 else "/usr/bin/python3"
    got = load(py, ps)["stats"]
    assert got["a.py:f"][:4] == [3000000000, 3000000000, 3000000.0, 3000000.0], got
    assert got["a.py:main"][:4] == [3000000005, 3000000005, 0.005, 3000000.005], got
    assert got["a.py:f"][4] == ["a.py:main"], got
