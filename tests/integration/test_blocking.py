"""--blocking: the same shares as the default, the target paused only for
each sample and never left stopped or traced, its signals delivered."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (PYSPYC, frame_name, parse_collapsed, run_pyspyc, split_truth, wall_share,
                      why)
from test_record import check_split


def status_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


@pytest.mark.serial
def test_blocking_same_shares(python, target, tmp_path):
    truth = tmp_path / "truth"
    t = target(python, "split.py", 20, env={"SPLIT_TRUTH": str(truth)})
    out = tmp_path / "b.folded"
    before = split_truth(truth)
    r = run_pyspyc(["record", "--blocking", "-p", str(t.pid), "-r", "500", "-d", "3",
                    "-o", str(out)], timeout=60)
    after = split_truth(truth)
    assert r.returncode == 0, r.stderr
    check_split(parse_collapsed(out.read_text()), wall_share(before, after))
    m = re.search(r"paused ([\d.]+) us per sample \(longest ([\d.]+) us\)", r.stderr)
    assert m, r.stderr
    assert float(m.group(1)) > 0
    # Left running and untraced.
    assert t.proc.poll() is None
    assert status_field(t.pid, "TracerPid") == "0"
    assert status_field(t.pid, "State")[0] in "RS"


def test_blocking_with_idle_pauses(python, target, tmp_path):
    # -i needs no thread states, but --blocking still needs every thread's
    # OS id to trace it (on <= 3.10 learnt from the thread descriptors).
    t = target(python, "split.py", 20)
    out = tmp_path / "i.folded"
    r = run_pyspyc(["record", "--blocking", "-i", "-p", str(t.pid), "-r", "200", "-d", "2",
                    "-o", str(out)], timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"paused [\d.]+ us per sample", r.stderr), r.stderr
    assert status_field(t.pid, "TracerPid") == "0"


def test_blocking_pauses_new_threads(model_python, target, tmp_path):
    """A thread started since the last sample is paused with the others:
    recursion.py runs each fib(18) in a thread of its own, so the thread
    running Python is new at nearly every sample.  Read running, before
    3.11 most of its stacks come out torn (test_torn_share_names_blocking);
    paused, they are read whole."""
    t = target(model_python, "recursion.py", 30, "threads")
    out = tmp_path / "n.folded"
    r = run_pyspyc(["record", "--blocking", "-p", str(t.pid), "-r", "200", "-d", "2",
                    "-o", str(out)], timeout=60)
    assert r.returncode == 0, r.stderr
    torn = int(re.search(r"(\d+) torn stacks", r.stderr).group(1))
    fib = sum(c for fr, c in parse_collapsed(out.read_text())
              if frame_name(fr[-1]) == "fib")
    assert fib >= 60 and torn <= 0.05 * (fib + torn), why(
        "%d fib stacks, %d torn" % (fib, torn), r.stderr)
    assert t.proc.poll() is None
    assert status_field(t.pid, "TracerPid") == "0"


def test_blocking_delivers_signals_and_job_control(one_python, tmp_path):
    # A target that counts SIGUSR1, says so for each, and reports the count
    # on SIGUSR2.  Each signal is sent once the last one was handled: two
    # pending at once are one for the kernel (on a loaded machine the
    # target, runnable but not running, or held for a sample, can be sent
    # two 20 ms apart before it handles the first: CI saw 16 of 20).
    code = ("import os, signal, sys, time\n"
            "n = [0]\n"
            "def usr1(s, f):\n"
            "    n[0] += 1\n"
            "    sys.stdout.write('got %d\\n' % n[0]); sys.stdout.flush()\n"
            "def usr2(s, f): sys.stdout.write('count %d\\n' % n[0]); sys.stdout.flush()\n"
            "signal.signal(signal.SIGUSR1, usr1)\n"
            "signal.signal(signal.SIGUSR2, usr2)\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "end = time.time() + 30\n"
            "while time.time() < end:\n"
            "    sum(range(1000))\n")
    p = subprocess.Popen([one_python, "-c", code], stdout=subprocess.PIPE,
                         universal_newlines=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        out = tmp_path / "s.folded"
        rec = subprocess.Popen([PYSPYC, "record", "--blocking", "-p", str(p.pid), "-r", "500",
                                "-d", "6", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
        time.sleep(1)
        for i in range(20):
            os.kill(p.pid, signal.SIGUSR1)
            assert p.stdout.readline().strip() == "got %d" % (i + 1)
        # Job control still works while traced: stopped stays stopped.
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.5)
        assert status_field(p.pid, "State")[0] in "tT"
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGUSR2)
        _, err = rec.communicate(timeout=60)
        assert rec.returncode == 0, err
        assert p.stdout.readline().strip() == "count 20"
        assert status_field(p.pid, "TracerPid") == "0"
        assert status_field(p.pid, "State")[0] in "RS"
        assert sum(c for _, c in parse_collapsed(out.read_text())) > 500
    finally:
        p.kill()
        p.wait()
