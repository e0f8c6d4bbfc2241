"""Profile windows: SIGUSR1 writes the profile so far while sampling goes
on, and --period writes one set of outputs per period, named for its start.

The windows themselves (no sample lost or counted twice at a switch,
memory reused) are unit-tested in tests/unit/test_stacktab_windows.c; here
the command's side: what is written when, under which names, and that the
counts add up to the summary's."""
import calendar
import json
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import APPS, PYSPYC, catches_usr1, parse_collapsed, run_pyspyc, wait_for, why

SUMMARY = re.compile(r"pyspyc: (\d+) samples, (\d+) errors, (\d+) torn stacks")
STAMP = re.compile(r"(\d{8}T\d{6}Z)")


def counted(stderr):
    """The stacks the summary's figures say were counted: every sample of a
    one-thread target but the torn ones and idle ones left out."""
    m = SUMMARY.search(stderr)
    assert m, stderr
    idle = re.search(r"; (\d+) idle thread stacks left out", stderr)
    return int(m.group(1)) - int(m.group(3)) - (int(idle.group(1)) if idle else 0)


def total(path):
    return sum(c for _, c in parse_collapsed(path.read_text()))


@pytest.mark.parametrize("mode", ["launch", "pid"])
def test_sigusr1_writes_so_far(one_python, target, tmp_path, mode):
    folded, svg = tmp_path / "p.folded", tmp_path / "p.svg"
    args = ["record", "-r", "200", "-d", "3", "-o", str(folded), "-o", str(svg),
            "-o", "-"]
    if mode == "pid":
        args += ["-p", str(target(one_python, "split.py", 20).pid)]
    else:
        args += ["--", one_python, os.path.join(APPS, "split.py"), "20"]
    p = subprocess.Popen([PYSPYC] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    try:
        assert wait_for(lambda: catches_usr1(p.pid)), "pyspyc never caught SIGUSR1"
        time.sleep(1)
        p.send_signal(signal.SIGUSR1)
        line = p.stderr.readline()
        # Files only: the outputs are complete when the line is said.
        assert re.match(r"pyspyc: wrote %s, %s \(so far: \d+ stacks\)$" % (
            re.escape(str(folded)), re.escape(str(svg))), line), line
        mid = total(folded)
        assert mid > 0
        assert int(line.rsplit("so far: ", 1)[1].split()[0]) == mid
        ET.parse(str(svg))
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    # Sampling went on; the final outputs hold every sample, the stream
    # (which gets one profile) too.  A launched interpreter's first samples
    # may find its thread before its first frame: a sample, no stack.
    final = total(folded)
    if mode == "pid":
        assert final == counted(err), err
    else:
        assert counted(err) - 5 <= final <= counted(err), err
    assert final > mid
    assert sum(c for _, c in parse_collapsed(out.replace("ready\n", "", 1))) == final
    assert "wrote %s, %s, stdout" % (folded, svg) in err, err
    ET.parse(str(svg))


def test_period_writes_one_set_per_period(one_python, target, tmp_path):
    # -d 5 --period 1: periods start at 0, 1, 2, 3 and 4 s; the run ends
    # where a sixth would start, so there are exactly five.
    t = target(one_python, "split.py", 20)
    r = run_pyspyc(["record", "-r", "100", "-d", "5", "--period", "1",
                    "-o", str(tmp_path / "w-%t.folded"),
                    "-o", str(tmp_path / "w-%t.speedscope.json"), "-p", str(t.pid)])
    assert r.returncode == 0, r.stderr
    folded = sorted(tmp_path.glob("w-*.folded"))
    assert len(folded) == 5, (os.listdir(str(tmp_path)), r.stderr)
    assert len(list(tmp_path.glob("w-*.speedscope.json"))) == 5
    starts = [calendar.timegm(time.strptime(STAMP.search(f.name).group(1), "%Y%m%dT%H%M%SZ"))
              for f in folded]
    # Named for each period's start: a second apart (periods do not drift).
    assert [b - a for a, b in zip(starts, starts[1:])] == [1, 1, 1, 1], starts
    assert abs(starts[0] - time.time()) < 120
    counts = [total(f) for f in folded]
    assert sum(counts) == counted(r.stderr), why(counts, r.stderr)
    # Each period's own samples: about 100 each on an idle machine.
    assert all(c > 10 for c in counts), counts
    for f in folded:
        doc = json.loads(open(str(f).replace(".folded", ".speedscope.json")).read())
        assert doc["profiles"], f
    assert r.stderr.count("pyspyc: wrote ") == 4, r.stderr
    assert "wrote 5 periods, the last to %s" % folded[-1] in r.stderr, r.stderr


def test_time_in_names(one_python, target, tmp_path):
    # Without --period %t is the run's start; %% is a %.  The default name
    # with --period carries the period's start.
    t = target(one_python, "split.py", 10)
    r = run_pyspyc(["record", "-r", "50", "-d", "0.5", "-o", str(tmp_path / "a-%t-100%%.folded"),
                    "-p", str(t.pid)])
    assert r.returncode == 0, r.stderr
    names = os.listdir(str(tmp_path))
    assert len(names) == 1 and re.match(r"^a-\d{8}T\d{6}Z-100%\.folded$", names[0]), names
    d = tmp_path / "default"
    d.mkdir()
    r = run_pyspyc(["record", "-r", "50", "-d", "1.5", "--period", "1", "-p", str(t.pid)],
                   cwd=str(d))
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(str(d)))
    assert len(names) == 2, names
    for n in names:
        assert re.match(r"^pyspyc-%d-\d{8}T\d{6}Z\.svg$" % t.pid, n), names
