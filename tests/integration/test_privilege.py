"""pyspyc runs as root against processes it does not trust: it executes
nothing the target names, looks at the files the target names only inside
the target's root and only if they are regular files, and gives its
outputs to the user who ran sudo."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import APPS, PYSPYC, parse_collapsed, run_pyspyc, run_pyspyc_traced

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# A target whose code says it comes from files the target controls: a
# package directory whose __init__.py is a FIFO (opening it for reading
# would block a careless profiler) and one whose __init__.py is an
# absolute symlink to a file that exists only outside the target's root.
TARGET = r"""
import os, sys, time
d = sys.argv[1]
src = "def spin(end):\n    while time.time() < end:\n        pass\n"
g = {"time": time}
exec(compile(src, os.path.join(d, "fifo", "mod.py"), "exec"), g)
h = {"time": time}
exec(compile(src, os.path.join(d, "link", "mod.py"), "exec"), h)
sys.stdout.write("ready\n")
sys.stdout.flush()
end = time.time() + float(sys.argv[2])
while time.time() < end:
    g["spin"](time.time() + 0.01)
    h["spin"](time.time() + 0.01)
"""


def _strace(args, tmp_path, *traced):
    log = tmp_path / "strace.log"
    r = run_pyspyc_traced(args, log, traced)
    return r, log.read_text().splitlines()


def test_target_named_files_stay_in_its_root(one_python, tmp_path):
    d = tempfile.mkdtemp(prefix="pyspyc-evil-")
    try:
        for sub in ("fifo", "link"):
            os.mkdir(os.path.join(d, sub))
        os.mkfifo(os.path.join(d, "fifo", "__init__.py"))
        # An absolute symlink, resolved inside the target's root (here "/"
        # as ours): link is a package.
        with open(os.path.join(d, "real_init.py"), "w"):
            pass
        os.symlink(os.path.join(d, "real_init.py"), os.path.join(d, "link", "__init__.py"))
        script = tmp_path / "target.py"
        script.write_text(TARGET)
        p = subprocess.Popen([one_python, str(script), d, "20"], stdout=subprocess.PIPE,
                             universal_newlines=True)
        try:
            assert p.stdout.readline().strip() == "ready"
            out = tmp_path / "p.folded"
            r, log = _strace(["record", "-p", str(p.pid), "-d", "1.5", "-o", str(out)],
                             tmp_path, "execve,execveat,open,openat,openat2,stat,lstat,"
                             "newfstatat,statx,access,faccessat,faccessat2,readlink")
        finally:
            p.kill()
            p.wait()
        assert r.returncode == 0, r.stderr
        files = {f.split(" (")[1].rsplit(":", 1)[0]
                 for st, _ in parse_collapsed(out.read_text()) for f in st
                 if f.startswith("spin (")}
        # The FIFO is no package marker; the symlinked __init__.py is one.
        assert files == {"mod.py", "link/mod.py"}, files
    finally:
        for sub, name in (("fifo", "__init__.py"), ("link", "__init__.py")):
            os.unlink(os.path.join(d, sub, name))
            os.rmdir(os.path.join(d, sub))
        os.unlink(os.path.join(d, "real_init.py"))
        os.rmdir(d)
    execs = [l for l in log if re.search(r"\bexecve(at)?\(", l)]
    assert len(execs) == 1 and PYSPYC in execs[0], execs
    evil = [l for l in log if d in l]
    assert evil, "pyspyc never looked at the target's package directories"
    for line in evil:
        # Only openat2 confined to the target's root (a descriptor of
        # /proc/PID/root, RESOLVE_IN_ROOT), and only for a path, never to
        # read: O_PATH.
        assert "openat2(" in line and "RESOLVE_IN_ROOT" in line and "O_PATH" in line, line


def test_outputs_belong_to_the_sudo_user(one_python, target, tmp_path):
    t = target(one_python, "split.py", 20)
    env = dict(os.environ, SUDO_UID="4321", SUDO_GID="1234")
    outs = [tmp_path / "a.svg", tmp_path / "a.folded", tmp_path / "a.speedscope.json"]
    args = ["record", "-p", str(t.pid), "-d", "0.5"]
    for o in outs:
        args += ["-o", str(o)]
    r = run_pyspyc(args, env=env)
    assert r.returncode == 0, r.stderr
    for o in outs:
        st = os.stat(str(o))
        assert (st.st_uid, st.st_gid) == (4321, 1234), o
    # Run by root itself (no sudo): root's.
    env.pop("SUDO_UID")
    env.pop("SUDO_GID")
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "0.3", "-o", str(tmp_path / "b.svg")],
                   env=env)
    assert r.returncode == 0, r.stderr
    assert os.stat(str(tmp_path / "b.svg")).st_uid == 0


@pytest.mark.parametrize("uid", ["", "abc", "-5", "99999999999999999999"])
def test_bad_sudo_uid_is_ignored(one_python, target, tmp_path, uid):
    t = target(one_python, "split.py", 20)
    env = dict(os.environ, SUDO_UID=uid, SUDO_GID="1234")
    out = tmp_path / "c.svg"
    r = run_pyspyc(["record", "-p", str(t.pid), "-d", "0.3", "-o", str(out)], env=env)
    assert r.returncode == 0, r.stderr
    assert os.stat(str(out)).st_uid == 0


def test_launch_execs_only_the_command(one_python, tmp_path):
    out = tmp_path / "l.folded"
    r, log = _strace(["record", "-o", str(out), "--", one_python,
                      os.path.join(APPS, "split.py"), "1"], tmp_path, "execve,execveat")
    assert r.returncode == 0, r.stderr
    execs = [l for l in log if re.search(r"\bexecve(at)?\(", l) and "= 0" in l]
    assert len(execs) == 2, execs
    assert PYSPYC in execs[0] and one_python in execs[1], execs
