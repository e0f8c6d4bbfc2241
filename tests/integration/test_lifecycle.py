"""A target's life as production shows it: an interpreter deleted or
replaced on disk after it started (a package upgrade under a running
service), a main thread that called pthread_exit() while other threads run
Python, attaching while the interpreter is still starting up, an embedding
host that finalizes its interpreter and starts another, and how a launched
command ended (pyspyc's exit status is the command's).

Targets are tests/apps/life_app.py and, embedded, tests/apps/embed_rounds.py
run by tests/apps/embed_host.c.  Assertions are on behaviour; sleeps only
give a run time to collect some samples."""
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import APPS, PYSPYC, frame_name, parse_collapsed, proc_stat, run_pyspyc, wait_for, why
from test_embedded import LIBPYTHONS, embed_env, embed_host  # noqa: F401 (fixture)
from test_top import EXIT_WAIT, exited, top_line, tmux, wait_rows  # noqa: F401 (fixture)

APP = os.path.join(APPS, "life_app.py")
ROUNDS_SCRIPT = os.path.join(APPS, "embed_rounds.py")


def names_in(path):
    """{function name: samples} over every stack of a collapsed file."""
    counts = {}
    for frames, c in parse_collapsed(path.read_text()):
        for n in set(frame_name(f) for f in frames):
            counts[n] = counts.get(n, 0) + c
    return counts


def wait_ready(proc):
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.poll(),
                                      proc.stderr.read() if proc.poll() is not None else "")


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# --- 5: the interpreter deleted or replaced on disk --------------------------

def _home(python):
    """The prefix a copy of python needs as PYTHONHOME to find its library."""
    return os.path.dirname(os.path.dirname(os.path.realpath(python)))


def test_interpreter_gone_from_disk(python, tmp_path):
    # Debian's python3.11 is static: the runtime is in the executable, the
    # case a package upgrade breaks.  pyenv's builds keep it in libpython.
    # The copy the target runs is deleted, then another file takes its name
    # (as an upgrade leaves it): record and dump read the file it runs.
    copy = tmp_path / "python-copy"
    shutil.copy2(python, str(copy))
    env = dict(os.environ, PYTHONHOME=_home(python))
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([str(copy), APP, "spin", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, env=env)
    try:
        wait_ready(proc)
        copy.unlink()
        for fate in ("deleted", "replaced"):
            if fate == "replaced":
                shutil.copy2("/bin/true", str(copy))
            out = tmp_path / ("%s.folded" % fate)
            r = run_pyspyc(["record", "-p", str(proc.pid), "-d", "0.5", "-r", "200",
                            "-o", str(out)], timeout=30)
            assert r.returncode == 0, why(fate, r.stderr)
            got = names_in(out)
            assert got.get("inner", 0) > 0 and got.get("outer", 0) > 0, (fate, got)
            r = run_pyspyc(["dump", "-p", str(proc.pid)], timeout=30)
            assert r.returncode == 0, why(fate, r.stderr)
            assert "outer (" in r.stdout and "life_app.py" in r.stdout, (fate, r.stdout)
    finally:
        stop(proc)


def _as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run as another user")
def test_replaced_libpython_unprivileged(embed_host):
    # Not root: /proc/PID/map_files is closed (it needs CAP_SYS_ADMIN), and
    # the name of a replaced libpython leads to another file.  That is said
    # as such (exit status 7), not "not a Python process"; root reads it.
    libs = glob.glob("/usr/lib/*/libpython3.11.so.1.0")
    if not libs:
        pytest.skip("no Debian libpython3.11")
    d = tempfile.mkdtemp(prefix="pyspyc-stale-")
    proc = None
    try:
        os.chmod(d, 0o777)
        lib, host = os.path.join(d, "libpython3.11.so.1.0"), os.path.join(d, "host")
        shutil.copy2(libs[0], lib)
        shutil.copy2(embed_host, host)
        shutil.copy2(os.path.join(APPS, "embed_spin.py"), d)
        proc = subprocess.Popen([host, lib, os.path.join(d, "embed_spin.py")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, env=embed_env(libs[0], 60),
                                preexec_fn=_as_nobody)
        wait_ready(proc)
        os.unlink(lib)
        shutil.copy2("/bin/true", lib)
        out = os.path.join(d, "p.folded")
        r = subprocess.run([PYSPYC, "record", "-p", str(proc.pid), "-d", "0.5", "-o", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30, preexec_fn=_as_nobody)
        assert r.returncode == 7, r.stderr
        assert "replaced or deleted" in r.stderr, r.stderr
        assert not os.path.exists(out)
        r = run_pyspyc(["record", "-p", str(proc.pid), "-d", "0.5", "-o", out], timeout=30)
        assert r.returncode == 0, r.stderr
        assert names_in(Path(out)).get("embed_spin", 0) > 0, open(out).read()
    finally:
        if proc:
            stop(proc)
        shutil.rmtree(d)


# --- 6: a main thread that called pthread_exit() -----------------------------

def start_pexit(python, seconds, done):
    proc = subprocess.Popen([python, APP, "pexit", str(seconds), str(done)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    wait_ready(proc)
    # The main thread is gone: the leader shows as a zombie while the
    # worker runs on.
    assert wait_for(lambda: (proc_stat(proc.pid) or ("?",))[0] == "Z"), proc_stat(proc.pid)
    return proc


def only_worker(path):
    """Every stack is the worker's: none is the exited main thread's."""
    stacks = parse_collapsed(path.read_text())
    assert stacks, "no stacks"
    for frames, _ in stacks:
        assert "worker" in [frame_name(f) for f in frames], frames
    return sum(c for fr, c in stacks if "worker_spin" in [frame_name(f) for f in fr])


def test_pthread_exit_pid(model_python, tmp_path):
    proc = start_pexit(model_python, 60, tmp_path / "done")
    try:
        out = tmp_path / "p.folded"
        r = run_pyspyc(["record", "-p", str(proc.pid), "-d", "1", "-r", "200",
                        "-o", str(out)], timeout=30)
        assert r.returncode == 0, r.stderr
        assert only_worker(out) > 0
        # -i counts every thread: the exited main thread is still none.
        r = run_pyspyc(["record", "-i", "-p", str(proc.pid), "-d", "0.5", "-r", "200",
                        "-o", str(out)], timeout=30)
        assert r.returncode == 0, r.stderr
        assert only_worker(out) > 0
        r = run_pyspyc(["dump", "-p", str(proc.pid)], timeout=30)
        assert r.returncode == 0, r.stderr
        threads = [l for l in r.stdout.splitlines() if l.startswith("Thread ")]
        assert len(threads) == 1 and "worker" in threads[0], r.stdout
        assert "worker_spin (" in r.stdout, r.stdout
        assert proc.poll() is None, "the target must keep running"
    finally:
        stop(proc)


def test_pthread_exit_subprocesses(one_python, tmp_path):
    proc = start_pexit(one_python, 60, tmp_path / "done")
    try:
        out = tmp_path / "s.folded"
        r = run_pyspyc(["record", "-s", "-p", str(proc.pid), "-d", "1", "-r", "200",
                        "-o", str(out)], timeout=30)
        assert r.returncode == 0, r.stderr
        assert names_in(out).get("worker_spin", 0) > 0, out.read_text()
        r = run_pyspyc(["dump", "-s", "-p", str(proc.pid)], timeout=30)
        assert r.returncode == 0, r.stderr
        assert "worker_spin (" in r.stdout, r.stdout
    finally:
        stop(proc)


def test_pthread_exit_launched(model_python, tmp_path):
    done, out = tmp_path / "done", tmp_path / "l.folded"
    r = run_pyspyc(["record", "-r", "200", "-o", str(out), "--", model_python, APP, "pexit",
                    "1", str(done)], timeout=60)
    # pyspyc sampled until the process really ended, and never ended it.
    assert r.returncode == 0, r.stderr
    assert done.exists(), "the target was ended early: " + r.stderr
    assert "the command exited with status 0" in r.stderr, r.stderr
    assert names_in(out).get("worker_spin", 0) >= 10, out.read_text()


def test_pthread_exit_top(one_python, tmux, tmp_path):
    proc = start_pexit(one_python, 60, tmp_path / "done")
    try:
        tmux.run(top_line(["--pid", proc.pid]))
        wait_rows(tmux, lambda rows, s: any(r.name == "worker_spin" for r in rows))
        tmux.keys("q")
        s, ok = tmux.wait_screen(lambda s: exited(s) is not None, EXIT_WAIT)
        assert ok and exited(s) == 0, s
        assert proc.poll() is None, "the target must keep running"
    finally:
        stop(proc)


# --- 8: attaching while the interpreter starts up ----------------------------

@pytest.mark.parametrize("how", ["shell", "direct"])
def test_attach_during_startup(one_python, tmp_path, how):
    # "shell": the pid is a shell that execs Python a moment later, as with
    # `sh -c '...; exec python app.py'` or `python app.py & pyspyc -p $!`
    # racing the exec.  "direct": attach the moment Python was started.
    for i in range(4):
        if how == "shell":
            argv = ["sh", "-c", 'sleep 0.2; exec "$0" "$@"', one_python, APP, "spin", "5"]
        else:
            argv = [one_python, APP, "spin", "5"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out = tmp_path / ("s%d.folded" % i)
            r = run_pyspyc(["record", "-p", str(proc.pid), "-d", "0.5", "-r", "200",
                            "-o", str(out)], timeout=30)
            assert r.returncode == 0, "run %d: %s" % (i, r.stderr)
            assert out.exists(), r.stderr
            if i == 0:
                # dump waits the same way.
                stop(proc)
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                r = run_pyspyc(["dump", "-p", str(proc.pid)], timeout=30)
                assert r.returncode == 0, r.stderr
                assert "Thread " in r.stdout, r.stdout
        finally:
            stop(proc)


def test_old_process_not_python_is_refused(tmp_path):
    # The wait is for young processes only: one that has run a while and
    # is not Python is refused as before.
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert wait_for(lambda: float(open("/proc/uptime").read().split()[0]) -
                        int(open("/proc/%d/stat" % proc.pid).read().rsplit(")", 1)[1]
                            .split()[19]) / os.sysconf("SC_CLK_TCK") > 1.2, 5)
        r = run_pyspyc(["record", "-p", str(proc.pid), "-d", "0.5",
                        "-o", str(tmp_path / "x.folded")], timeout=30)
        assert r.returncode == 5, r.stderr
        assert "not a Python process" in r.stderr, r.stderr
    finally:
        stop(proc)


def record_from_gap(embed_host, libpython, rounds, out, **host_env):
    """Start embed_host with `rounds` rounds of ROUNDS_SCRIPT, attach
    `record` in the first gap between interpreters (EMBED_GAP_WAIT: the gap
    begins once pyspyc sleeps between its looks) and record to out until the
    host ends.  Returns pyspyc's exit status and standard error; the host
    must end well."""
    env = embed_env(libpython, 0)
    env.update(EMBED_ROUND_SECONDS="0.5", EMBED_GAP_WAIT="1", **host_env)
    proc = subprocess.Popen([embed_host, libpython, ROUNDS_SCRIPT, str(rounds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, env=env)
    rec = None
    try:
        line = proc.stdout.readline()
        while line and line.strip() != "finalized":
            line = proc.stdout.readline()
        assert line, proc.stderr.read()
        rec = subprocess.Popen([PYSPYC, "record", "-p", str(proc.pid), "-r", "200",
                                "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
        assert wait_for(lambda: rec.poll() is not None or
                        read_text("/proc/%d/wchan" % rec.pid) == "hrtimer_nanosleep", 60)
        proc.stdin.write("go\n")
        proc.stdin.close()
        _, err = rec.communicate(timeout=60)
    finally:
        if rec and rec.poll() is None:
            rec.kill()
            rec.wait()
        proc.stdout.read()
        stop(proc)
    assert proc.returncode == 0, proc.stderr.read()
    return rec.returncode, err


def test_attach_waits_through_a_long_gap(embed_host, tmp_path):
    """Attached in an embedding host's gap of 2 s between two interpreters,
    pyspyc waits (up to five seconds after its first look) and records the
    second one, where it once gave up after a second."""
    found = [p.values[0] for p in LIBPYTHONS if p.values[0]]
    if not found:
        pytest.skip("no libpython found")
    out = tmp_path / "g.folded"
    rc, err = record_from_gap(embed_host, found[-1], 2, out, EMBED_GAP_MS="2000")
    assert rc == 0, err
    assert names_in(out).get("round_1", 0) > 0, out.read_text()


@pytest.mark.parametrize("libpython", LIBPYTHONS)
def test_embedded_interpreter_restarts(embed_host, libpython, tmp_path):
    """The host runs three rounds, each its own interpreter (round_0, ...),
    with 0.3 s without any between them, and in that gap takes the memory
    the last one freed, so the next one is put elsewhere.  pyspyc attaches
    in the first gap: it waits for the next interpreter, and follows the
    one after it too.  The first gap begins only once pyspyc has looked and
    waits (it sleeps between looks, for up to five seconds after its first,
    so a loaded machine's slow gap and start fit): a start slower than the
    gap and round_1 together (a sanitizer build on a loaded machine) would
    otherwise find round_2 first."""
    out = tmp_path / "e.folded"
    rc, err = record_from_gap(embed_host, libpython, 3, out, EMBED_GAP_MS="300",
                              EMBED_GAP_HOLD="1")
    assert rc == 0, err
    got = names_in(out)
    assert got.get("round_1", 0) > 0 and got.get("round_2", 0) > 0, got
    # round_0 ran before pyspyc attached; any stack naming it is wrong.
    assert got.get("round_0", 0) == 0, \
        [ln for ln in out.read_text().splitlines() if "round_0" in ln]


def read_text(path):
    """The text of a file, or "" when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


# --- how a launched command ended --------------------------------------------

@pytest.mark.parametrize("case", [
    (["exit", "0"], 0, "the command exited with status 0"),
    (["exit", "7"], 7, "the command exited with status 7"),
    (["segv"], 128 + 11, "the command was killed by signal SIGSEGV"),
])
def test_launched_command_status(one_python, tmp_path, case):
    args, code, words = case
    out = tmp_path / "c.folded"
    r = run_pyspyc(["record", "-r", "200", "-o", str(out), "--", one_python, APP] + args,
                   timeout=60)
    assert r.returncode == code, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("pyspyc: ") and last.endswith("; " + words), r.stderr
    assert "wrote " + str(out) in last, r.stderr
    assert names_in(out).get("outer", 0) > 0


def test_own_error_comes_first(one_python, tmp_path):
    # The command succeeds but takes the output's directory away: pyspyc's
    # own failure (6) is the exit status, and the summary still says how the
    # command ended.
    d = tmp_path / "gone"
    d.mkdir()
    code = "import shutil, sys, time; time.sleep(0.3); shutil.rmtree(sys.argv[1])"
    r = run_pyspyc(["record", "-o", str(d / "p.folded"), "--", one_python, "-c", code,
                    str(d)], timeout=60)
    assert r.returncode == 6, r.stderr
    assert "writing '%s' failed" % (d / "p.folded") in r.stderr, r.stderr
    assert r.stderr.strip().endswith("; the command exited with status 0"), r.stderr


def test_top_launched_command_status(one_python, tmux):
    tmux.run(top_line(["--", one_python, APP, "exit", "7"]))
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, 3 * EXIT_WAIT)
    assert ok, s
    assert exited(s) == 7, s
    assert "pyspyc top: the command exited with status 7" in s, s
