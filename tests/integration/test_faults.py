"""Fault injection: pyspyc never crashes, never hangs, never loses a profile.

Each test injects one fault (into the target, into pyspyc, or into where the
outputs go) and asserts its outcome.  Every target is tests/apps/fault_app.py,
which writes every catchable signal it receives to a report file: after each
run the target must be unharmed (not signalled, not left stopped or traced).
The assertions are on behaviour, never on timing: sleeps only give a run time
to collect some samples."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (APPS, PYSPYC, children_of, frame_name, parse_collapsed, proc_stat,
                      recorded_yet, run_pyspyc, run_pyspyc_traced, wait_for)
from test_record import check_svg

APP = "fault_app.py"


def signals_received(report):
    """[(pid, signal)] the fault apps wrote to their report file."""
    if not os.path.exists(str(report)):
        return []
    with open(str(report)) as f:
        return [tuple(int(w) for w in line.split()) for line in f if line.strip()]


def check_unharmed(report, *pids):
    """Nothing signalled the targets; those still alive run untraced."""
    assert signals_received(report) == [], "a target was signalled"
    for pid in pids:
        st = proc_stat(pid)
        if st is not None and st[0] != "Z":
            assert st[0] not in "tT", "pid %d left stopped (%s)" % (pid, st[0])
            assert st[1] == 0, "pid %d left traced by %d" % (pid, st[1])


def stacks_of(path):
    stacks = parse_collapsed(path.read_text())
    assert stacks, "no stacks in %s" % path
    return stacks


def names(frames):
    return [frame_name(f) for f in frames]


def count(stacks, name):
    return sum(c for fr, c in stacks if name in names(fr))


def samples_in(stderr):
    m = re.search(r"pyspyc: (\d+) samples, (\d+) errors", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


def record_bg(args):
    return subprocess.Popen([PYSPYC, "record"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)


def error_lines(stderr):
    """stderr without the closing summary line."""
    return [l for l in stderr.splitlines() if l.strip() and not re.match(r"pyspyc: \d+ samples", l)]


# --- the target dies, exits, exec's, forks -------------------------------

@pytest.mark.parametrize("how", ["pid", "launch"])
def test_target_sigkilled_midrun(target, one_python, tmp_path, how):
    report = tmp_path / "signals"
    folded, svg = tmp_path / "k.folded", tmp_path / "k.svg"
    outs = ["-r", "200", "-o", str(folded), "-o", str(svg)]
    if how == "pid":
        pid = target(one_python, APP, report, "spin", 60).pid
        p = record_bg(["-p", str(pid)] + outs)
    else:
        p = record_bg(outs + ["--", one_python, os.path.join(APPS, APP), str(report),
                              "spin", "60"])
        assert wait_for(lambda: children_of(p.pid))
        pid = children_of(p.pid)[0]
    # Killed a second after pyspyc samples it (it holds its pidfd), not
    # at a fixed time from the start, which a slow start (a sanitizer
    # build on a loaded machine) may eat.
    assert wait_for(lambda: holds_pidfd(p.pid, pid) or p.poll() is not None, 30)
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    _, err = p.communicate(timeout=30)
    if how == "pid":
        assert p.returncode == 0, err
    else:
        # A command pyspyc launched gives it its status, as a shell would.
        assert p.returncode == 128 + signal.SIGKILL, err
        assert "the command was killed by signal SIGKILL" in err, err
    assert count(stacks_of(folded), "work") > 0
    check_svg(str(svg), "work")
    assert error_lines(err) == [], err
    check_unharmed(report)


@pytest.mark.parametrize("subprocesses", [False, True], ids=["", "-s"])
def test_target_exits_normally(target, one_python, tmp_path, subprocesses):
    report = tmp_path / "signals"
    folded, svg = tmp_path / "e.folded", tmp_path / "e.svg"
    t = target(one_python, APP, report, "spin", 1.5)
    # No --duration: the run ends with the target.
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "200", "-o", str(folded), "-o", str(svg)]
                   + (["-s"] if subprocesses else []), timeout=30)
    assert r.returncode == 0, r.stderr
    assert t.proc.wait(timeout=10) == 0
    assert count(stacks_of(folded), "work") > 0
    check_svg(str(svg), "work")
    check_unharmed(report)


def test_exec_into_not_python(target, one_python, tmp_path):
    # The target becomes `sleep 30`: sampling it ends (it is not Python),
    # the run ends without waiting for sleep, and the profile keeps what
    # was sampled before the exec.
    report = tmp_path / "signals"
    out = tmp_path / "x.folded"
    t = target(one_python, APP, report, "exec_sleep", 1)
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "200", "-o", str(out)], timeout=25)
    assert r.returncode == 0, r.stderr
    assert "1 exec into a program that is not Python" in r.stderr, r.stderr
    assert count(stacks_of(out), "exec_into") > 0
    with open("/proc/%d/cmdline" % t.pid) as f:
        assert f.read().startswith("/bin/sleep"), "the exec did not happen"
    check_unharmed(report, t.pid)


def holds_pidfd(pid, target_pid):
    """Does process pid hold a pidfd of target_pid (pyspyc opens one when it
    starts sampling a process)?"""
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                if re.search(r"^Pid:\s+%d$" % target_pid, f.read(), re.M):
                    return True
        except OSError:
            pass
    return False


def test_exec_into_python(target, python, backend, tmp_path):
    # The target exec's another Python script: pyspyc follows it, and the
    # profile has both programs.  The target spins until pyspyc samples it
    # (it holds the target's pidfd), then 1.5 s more before the exec: with a
    # fixed time from its start, pyspyc, slow to start on a loaded machine,
    # sometimes attached after the exec (3 runs of make test in 4, once).
    # pyspyc samples the new program for 1.5 s once it has reached
    # after_exec (it makes REPORT.after_exec): 1.5 s from the exec itself
    # was sometimes all spent in its start-up and imports (the SAN pass at
    # 992d4f2, 3.7: the profile held only import stacks of it).
    report = tmp_path / "signals"
    out = tmp_path / "x.folded"
    t = target(python, APP, report, "exec_python_told", 1.5, stdin=True)
    p = subprocess.Popen([PYSPYC, "record", "--backend", backend, "-p", str(t.pid), "-r", "200",
                          "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    try:
        assert wait_for(lambda: holds_pidfd(p.pid, t.pid) or p.poll() is not None, 30)
        t.proc.stdin.write("go\n")
        t.proc.stdin.flush()

        def execd():
            with open("/proc/%d/cmdline" % t.pid) as f:
                return "fault_after_exec" in f.read()
        assert wait_for(lambda: execd() or p.poll() is not None, 30), "the exec did not happen"
        assert wait_for(lambda: os.path.exists(str(report) + ".after_exec") or
                        p.poll() is not None, 30), "the new program did not begin"
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    # Where the new interpreter is elsewhere (a PIE python: new
    # addresses at every exec) pyspyc finds it anew and says so; a
    # python built without PIE has it where the old one was, and it is
    # read on seamlessly.
    assert "not Python" not in err, err
    stacks = stacks_of(out)
    if not (count(stacks, "exec_into") > 0 and count(stacks, "after_exec") > 0):
        pytest.fail("both programs wanted: %s\n%s" % (err, "\n".join(
            "%d %s" % (c, ";".join(names(fr))) for fr, c in stacks)), pytrace=False)
    for fr, _ in stacks:
        # Each stack is one program's: none mixes the two.
        assert not ("exec_into" in names(fr) and "after_exec" in names(fr)), fr
    check_unharmed(report, t.pid)


@pytest.mark.parametrize("subprocesses", [False, True], ids=["", "-s"])
def test_fork(target, one_python, tmp_path, subprocesses):
    # The target forks; the child runs Python (child_work) while the
    # parent waits for it.  Without -s only the parent is profiled; with
    # -s each process's stacks start at their own process.
    report = tmp_path / "signals"
    out = tmp_path / "f.folded"
    t = target(one_python, APP, report, "fork", 2.5)
    child = int(t.proc.stdout.readline().split()[1])
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "200", "-i", "-o", str(out)]
                   + (["-s"] if subprocesses else []), timeout=30)
    assert r.returncode == 0, r.stderr
    # The summary says why, should the profile be empty.
    assert out.stat().st_size > 0, r.stderr
    stacks = stacks_of(out)
    if not subprocesses:
        assert count(stacks, "parent_wait") > 0
        assert count(stacks, "child_work") == 0
    else:
        assert "2 processes" in r.stderr, r.stderr
        for fr, _ in stacks:
            m = re.match(r"process (\d+):", fr[0])
            assert m, fr[0]
            pid = int(m.group(1))
            if "child_work" in names(fr):
                assert pid == child, fr
            if "parent_wait" in names(fr):
                assert pid == t.pid, fr
        assert count(stacks, "parent_wait") > 0 and count(stacks, "child_work") > 0
    check_unharmed(report, t.pid, child)


@pytest.mark.parametrize("mode", ["", "--blocking"])
def test_thread_churn(target, one_python, tmp_path, mode):
    # Threads started and ended continuously (hundreds a second) while
    # sampling at 1 kHz, every thread counted (-i) under its own root (-t).
    report = tmp_path / "signals"
    folded, svg = tmp_path / "c.folded", tmp_path / "c.svg"
    t = target(one_python, APP, report, "churn", 30)
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "1000", "-t", "-i", "-d", "2",
                    "-o", str(folded), "-o", str(svg)] + ([mode] if mode else []),
                   timeout=60)
    assert r.returncode == 0, r.stderr
    samples, _ = samples_in(r.stderr)
    stacks = stacks_of(folded)
    check_svg(str(svg), "busy")
    tids, main = set(), 0
    for fr, c in stacks:
        m = re.match(r'thread (\d+) ', fr[0])
        assert m, fr[0]
        tid = int(m.group(1))
        tids.add(tid)
        # A stack belongs to its own thread: busy() runs only in the
        # main thread, whose OS id is the pid.
        if "busy" in names(fr):
            assert tid == t.pid, fr
            main += c
        elif tid == t.pid:
            assert names(fr)[1] == "<module>", fr
        else:
            assert frame_name(fr[1]).endswith("_bootstrap"), fr
    # The main thread is in (nearly) every sample, and so are the two
    # threads that start the others.  (How many of the short-lived
    # ones a sample catches is chance.)
    assert main >= 0.9 * samples, (main, samples)
    assert len(tids) >= 3, tids
    check_unharmed(report, t.pid)


DEPTH = 20000


def test_deep_recursion(target, python, tmp_path):
    # A thread 20,000 Python frames deep (with a big C stack for the
    # versions whose calls use it): with --max-depth above it, every frame
    # is there, from the thread's root to the leaf, nothing truncated.
    report = tmp_path / "signals"
    out = tmp_path / "d.folded"
    t = target(python, APP, report, "deep", DEPTH, 30)
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "50", "-d", "1.5",
                    "--max-depth", "25000", "-o", str(out)], timeout=60)
    assert r.returncode == 0, r.stderr
    stacks = stacks_of(out)
    full = 0
    for fr, _ in stacks:
        n = names(fr)
        assert "[truncated]" not in n
        depth = n.count("recurse")
        assert depth <= DEPTH
        if depth == DEPTH:
            # root: the thread's bootstrap frames, then run(), then
            # recurse * DEPTH, leaf (in work, or still saying ready).
            assert n[0].endswith("_bootstrap"), n[:4]
            first = n.index("recurse")
            assert n[first:first + DEPTH] == ["recurse"] * DEPTH
            assert n[first - 1].endswith("run"), n[:first]
            assert n[first + DEPTH] == "leaf", n[first + DEPTH:]
            full += 1
    assert full > 0, [len(fr) for fr, _ in stacks]
    check_unharmed(report, t.pid)


# --- a pid that dies and is taken over -----------------------------------

class Reuser:
    """fault_app.py reuse, started with address randomization off (setarch
    -R, inherited by its children): a Python it starts later sits at the
    same addresses as one it forked, so a sampler that read the pid of a
    dead child would read the new process without an error."""

    def __init__(self, python, report):
        self.proc = subprocess.Popen(["setarch", "-R", python, os.path.join(APPS, APP),
                                      str(report), "reuse"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     universal_newlines=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def take_pid(self, kind, pid):
        """Start kind ("python" or "sleep") with pid, the pid of a child
        just reaped; None when another process on the machine took it."""
        for _ in range(20):
            got = int(self.cmd("%s %d" % (kind, pid - 1))[1])
            if got == pid:
                return got
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.parametrize("how,kind", [("-s", "python"), ("-s", "sleep"), ("pid", "python"),
                                      ("pid", "sleep")])
def test_pid_reused(one_python, backend, tmp_path, how, kind):
    # A sampled child dies while pyspyc is held still (SIGSTOP, as a busy
    # machine may), and a new process takes its pid (ns_last_pid) before
    # pyspyc runs again.  Its stacks must never be counted as the dead
    # child's: with -s the new process is sampled as itself (a Python) or
    # not at all (sleep); with -p the run ends with the child.
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        pytest.skip("needs root to set ns_last_pid")
    report = tmp_path / "signals"
    out = tmp_path / "r.folded"
    root = Reuser(one_python, report)
    p = None
    try:
        old = int(root.cmd("fork")[1])
        args = ["-s", "-p", str(root.pid)] if how == "-s" else ["-p", str(old)]
        p = record_bg(["--backend", backend] + args + ["-r", "200", "-o", str(out)])
        assert recorded_yet(p, out, "first_child"), "the child was never sampled"
        p.send_signal(signal.SIGSTOP)
        assert wait_for(lambda: proc_stat(p.pid)[0] in "tT")
        root.cmd("kill %d" % old)
        new = root.take_pid(kind, old)
        p.send_signal(signal.SIGCONT)
        if new is None:
            pytest.skip("another process took pid %d first" % old)
        if how == "pid":
            # The child is gone: the run ends by itself.
            _, err = p.communicate(timeout=30)
        else:
            if kind == "python":
                recorded_yet(p, out, "after_exec")  # asserted below
            else:
                time.sleep(1.5)  # what it must not sample: nothing to wait for
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        stacks = stacks_of(out)
        assert count(stacks, "first_child") > 0
        for fr, _ in stacks:
            if how == "-s":
                # process PID:"command line" of the process sampled.
                assert fr[0].startswith("process "), fr[0]
                if "after_exec" in names(fr):
                    assert "fault_after_exec.py" in fr[0], fr[0]
                if "first_child" in names(fr):
                    assert "fault_app.py" in fr[0], fr[0]
        if how == "-s" and kind == "python":
            assert count(stacks, "after_exec") > 0, "the new process was not sampled"
        else:
            assert count(stacks, "after_exec") == 0
        _, errors = samples_in(err)
        # The dead child's sampler stopped at once: it did not go on
        # failing to read the new process.
        assert errors < 20, err
        check_unharmed(report, root.pid, new)
    finally:
        if p and p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        root.stop()


# --- pyspyc itself is signalled -------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_writes_profile(target, one_python, tmp_path, sig):
    report = tmp_path / "signals"
    folded, svg = tmp_path / "s.folded", tmp_path / "s.svg"
    t = target(one_python, APP, report, "spin", 60)
    p = record_bg(["-p", str(t.pid), "-r", "200", "-o", str(folded), "-o", str(svg)])
    # Once it samples (it holds the target's pidfd; its handlers are in
    # place by then), a second of it.  A fixed 1.5 s from its start was
    # sometimes still inside the attach for a sanitizer build under make
    # test's load, and the signal's default action ended it.
    assert wait_for(lambda: holds_pidfd(p.pid, t.pid) or p.poll() is not None, 30)
    time.sleep(1.0)
    p.send_signal(sig)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    samples, _ = samples_in(err)
    stacks = stacks_of(folded)
    assert sum(c for _, c in stacks) == samples > 0
    check_svg(str(svg), "work")
    assert t.proc.poll() is None, "the target keeps running"
    check_unharmed(report, t.pid)


def test_stdout_pipe_closed_by_head(target, one_python, tmp_path):
    # `pyspyc record ... -o - | head -1`: head leaves after one line of a
    # long profile (every thread's stacks); pyspyc exits 0 without a word.
    report = tmp_path / "signals"
    t = target(one_python, APP, report, "churn", 30)
    r = subprocess.run(["bash", "-c", '"$0" record -p "$1" -r 1000 -t -i -d 1.5 -o - '
                        '| head -1; echo "status ${PIPESTATUS[0]}" >&2',
                        PYSPYC, str(t.pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert len(r.stdout.splitlines()) == 1 and r.stdout.startswith("thread "), r.stdout
    assert "status 0" in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l != "status 0"]
    assert error_lines("\n".join(lines)) == [], r.stderr
    check_unharmed(report, t.pid)


def test_stdout_closed_early(one_python):
    # The reader leaves while the target still runs (launched with `--`).
    # 4 s: CI's sanitizer pass under -n 2 once began sampling a 1.5 s
    # target only in its last 0.28 s and took no sample there (a warning,
    # which this test counts as an error line); the late start of a
    # launched command under load is open (issue 15 notes).
    p = subprocess.Popen([PYSPYC, "record", "-r", "300", "-o", "-", "--",
                          one_python, os.path.join(APPS, "threads.py"), "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()  # the target's "ready"
    p.stdout.close()
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert error_lines(err.decode()) == [], err


# --- where the outputs go fails -------------------------------------------

def check_output_failure(r, bad, good_folded, good_svg, bad_dir):
    """Exit 6, one line naming the bad output, nothing left where it was
    going (not even a temporary file), the other outputs whole."""
    assert r.returncode == 6, r.stderr
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and errs[0].startswith("pyspyc: writing '%s' failed: " % bad), r.stderr
    samples, _ = samples_in(r.stderr)
    assert sum(c for _, c in stacks_of(good_folded)) == samples > 0
    check_svg(str(good_svg), "work")
    assert "wrote %s, %s" % (good_folded, good_svg) in r.stderr, r.stderr
    if os.path.isdir(str(bad_dir)):
        assert not [f for f in os.listdir(str(bad_dir)) if f != "filler"], os.listdir(str(bad_dir))


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs with 8 KiB free: too little for a flame graph."""
    d = tmp_path / "tiny"
    d.mkdir()
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)]):
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(str(d / "filler"), "wb") as f:
            f.write(b"x" * (56 * 1024))
        yield d
    finally:
        subprocess.call(["umount", str(d)])


def test_output_filesystem_full(target, one_python, tmp_path, tiny_fs):
    report = tmp_path / "signals"
    bad = tiny_fs / "p.svg"
    good_folded, good_svg = tmp_path / "ok.folded", tmp_path / "ok.svg"
    t = target(one_python, APP, report, "spin", 60)
    r = run_pyspyc(["record", "-p", str(t.pid), "-r", "200", "-d", "1", "-o", str(bad),
                    "-o", str(good_folded), "-o", str(good_svg)])
    check_output_failure(r, bad, good_folded, good_svg, tiny_fs)
    assert "No space left on device" in r.stderr, r.stderr
    check_unharmed(report, t.pid)


def test_output_directory_removed(target, one_python, tmp_path):
    report = tmp_path / "signals"
    gone = tmp_path / "gone"
    gone.mkdir()
    bad = gone / "p.svg"
    good_folded, good_svg = tmp_path / "ok.folded", tmp_path / "ok.svg"
    t = target(one_python, APP, report, "spin", 60)
    p = record_bg(["-p", str(t.pid), "-r", "200", "-d", "2", "-o", str(bad),
                   "-o", str(good_folded), "-o", str(good_svg)])
    # Gone once pyspyc samples (it checked its outputs before it attached),
    # not after a fixed time: the sanitizer build on a loaded machine took
    # longer than 0.5 s to start and refused the output at the start.
    assert wait_for(lambda: holds_pidfd(p.pid, t.pid) or p.poll() is not None, 30)
    os.rmdir(str(gone))
    out, err = p.communicate(timeout=30)
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    check_output_failure(r, bad, good_folded, good_svg, gone)
    assert "No such file or directory" in r.stderr, r.stderr
    assert not os.path.exists(str(gone))
    check_unharmed(report, t.pid)


# --- pyspyc never writes to the target, never signals it ------------------

# What --blocking may ask of ptrace (src/proc/proc_pause.c): trace without a
# signal (SEIZE), stop (INTERRUPT), let go (CONT, LISTEN, DETACH), and tell
# the kind of a stop (GETSIGINFO).  Never PTRACE_ATTACH (it sends SIGSTOP),
# never a POKE or SETREGS.
PTRACE_ALLOWED = {"PTRACE_SEIZE", "PTRACE_INTERRUPT", "PTRACE_CONT", "PTRACE_LISTEN",
                  "PTRACE_DETACH", "PTRACE_GETSIGINFO"}
TRACED = ("process_vm_writev", "ptrace", "kill", "tgkill", "tkill", "pidfd_send_signal",
          "rt_sigqueueinfo", "rt_tgsigqueueinfo")


@pytest.mark.parametrize("mode", ["--nonblocking", "--blocking"])
def test_never_writes_or_signals_the_target(target, one_python, tmp_path, mode):
    report = tmp_path / "signals"
    log = tmp_path / "strace.log"
    out = tmp_path / "n.folded"
    t = target(one_python, APP, report, "churn", 60)
    r = run_pyspyc_traced(["record", mode, "-p", str(t.pid), "-r", "200", "-d", "1.5",
                           "-o", str(out)], log, TRACED)
    assert r.returncode == 0, r.stderr
    assert count(stacks_of(out), "busy") > 0
    calls = {}
    for line in log.read_text().splitlines():
        m = re.match(r"^\d+\s+(\w+)\((.*)\)\s+= ", line)
        if not m:
            continue  # "<unfinished ...>", "resumed", exits
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        calls[name] = calls.get(name, 0) + 1
        assert name not in ("process_vm_writev", "pidfd_send_signal", "rt_sigqueueinfo",
                            "rt_tgsigqueueinfo"), line
        if name in ("kill", "tgkill", "tkill"):
            # Signal 0 only asks whether a thread exists.
            assert args[-1] == "0", line
        if name == "ptrace":
            assert mode == "--blocking", line
            assert args[0] in PTRACE_ALLOWED, line
            if args[0] in ("PTRACE_CONT", "PTRACE_DETACH"):
                # Nothing signalled the target: nothing to pass on.
                assert args[-1] == "0", line
    if mode == "--blocking":
        assert calls.get("ptrace", 0) > 0, calls
    check_unharmed(report, t.pid)
