"""Callgrind output read back by a real consumer, callgrind_annotate
(Debian's valgrind).

One run writes x.callgrind and x.folded together, so the two must agree
sample for sample: each function's self cost (callgrind_annotate's list)
is the samples whose innermost frame it is, and its inclusive cost
(--inclusive=yes) the samples whose stacks hold it.  Names that would end
a line stay in theirs.  Skipped only where callgrind_annotate is not
installed."""
import collections
import re
import shutil
import subprocess

import pytest

from conftest import parse_collapsed, run_pyspyc, why

ANNOTATE = shutil.which("callgrind_annotate")
pytestmark = pytest.mark.skipif(ANNOTATE is None,
                                reason="callgrind_annotate (valgrind) is not installed")

ROW = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$")


def annotate(path, *args):
    """({"file:function": samples}, the program total) from
    callgrind_annotate's function list, every function listed."""
    r = subprocess.run([ANNOTATE, "--threshold=100", "--auto=no"] + list(args) + [str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout
    rows, total = {}, None
    for line in r.stdout.split("\n"):
        m = ROW.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if m.group(2).strip() == "PROGRAM TOTALS":
            total = n
        else:
            rows[m.group(2)] = rows.get(m.group(2), 0) + n
    assert total is not None, r.stdout
    return rows, total


def key(frame):
    """'spin_a (split.py:21)' -> 'split.py:spin_a'."""
    m = re.match(r"^(.*) \((.*):\d+\)$", frame)
    assert m, frame
    return "%s:%s" % (m.group(2), m.group(1))


def test_callgrind_annotate_agrees_with_the_collapsed_stacks(one_python, target, tmp_path):
    t = target(one_python, "split.py", 30)
    cg, raw = tmp_path / "x.callgrind", tmp_path / "callgrind.out.x"
    folded = tmp_path / "x.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "2", "-r", "200", "-o", str(cg),
                    "-o", str(raw), "-o", str(folded)])
    assert r.returncode == 0, r.stderr
    # callgrind.out.* is the same format as .callgrind.
    assert raw.read_bytes() == cg.read_bytes()
    stacks = parse_collapsed(folded.read_text())
    own, incl = collections.Counter(), collections.Counter()
    for frames, count in stacks:
        keys = [key(f) for f in frames]
        own[keys[-1]] += count
        for k in set(keys):
            incl[k] += count
    total = sum(c for _, c in stacks)
    rows, got_total = annotate(cg)
    assert got_total == total
    assert rows == dict(own), why(rows, dict(own))
    assert "split.py:spin_a" in rows and "split.py:spin_b" in rows, rows
    rows, _ = annotate(cg, "--inclusive=yes")
    assert rows == dict(incl), why(rows, dict(incl))
    # Self cost per line: each of spin_a's lines carries its samples.
    text = cg.read_text()
    assert text.startswith("# callgrind format\nversion: 1\n"), text[:200]
    assert "events: Samples\n" in text and "summary: %d\n" % total in text


def test_hostile_names_stay_in_their_lines(one_python, target, tmp_path):
    """hostile.py's functions (newlines, quotes, '(' and '=' in names and
    file names): the file still parses, and its total is the run's."""
    t = target(one_python, "hostile.py", 30, "a\nb\rc")  # the command line is in cmd:
    cg, folded = tmp_path / "h.callgrind", tmp_path / "h.folded"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "1.5", "-o", str(cg), "-o", str(folded)])
    assert r.returncode == 0, r.stderr
    total = sum(c for _, c in parse_collapsed(folded.read_text()))
    rows, got_total = annotate(cg)
    assert got_total == total and sum(rows.values()) == total, why(rows, total)
    for line in cg.read_text().split("\n"):
        assert not re.search(r"[\x00-\x1f\x7f]", line), repr(line)
