"""Bad input, table-driven: every case is one line of CASES (or one value
of VALUES for every numeric option).  Each must end with exactly one line
on stderr that names the problem, the exit status pyspyc(1) documents for
it, and nothing left behind in the working directory or next to the
outputs named.

A case's words may name things the fixtures provide:
  {py}       a running Python process (owned by root)
  {sleep}    a running process that is not Python
  {zombie}   a process that has exited and not been reaped
  {kthread}  a kernel thread
  {out}      a scratch directory for outputs (checked empty afterwards)
  {noexec}   a regular file without execute permission
  {blk}      a block device node, {sock} a unix socket (root only)
  {sticky}   a sticky directory anyone may write, holding nobody's FIFO
             (fifo) and character device (null) (root only)
  {fdlink}   a symlink to /proc/self/fd/9 (a descriptor pyspyc has not got)
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import APPS, PYSPYC, PYTHONS, proc_stat, run_pyspyc, wait_for, why

USAGE, NO_PROCESS, PERMISSION, NOT_PYTHON, OUTPUT = 2, 3, 4, 5, 6
CANNOT_EXEC, NO_COMMAND = 126, 127

# Every numeric option of every subcommand, and a pid nobody has, so that
# a value that parses goes on to fail in a known way (no such process).
NUMERIC = {
    "record": ["--pid", "--rate", "--duration", "--max-depth", "--max-stacks",
               "--max-frames", "--max-timeline", "--max-threads", "--period"],
    "top": ["--pid", "--rate", "--max-depth", "--max-stacks", "--max-frames",
            "--max-threads"],
    "dump": ["--pid", "--max-threads"],
}
VALUES = {
    "empty": "",
    "zero": "0",
    "negative": "-1",
    "huge": "1000000000000",
    "non-numeric": "abc",
    "overflowing": "99999999999999999999999999",
    "overflowing-float": "1e999",
    "trailing": "12x",
    "leading-space": " 5",
    "nan": "nan",
    "newline": "1\n2",
}
NOPID = "4194000"


def numeric_cases():
    for cmd, opts in sorted(NUMERIC.items()):
        for opt in opts:
            rest = [] if opt == "--pid" else ["--pid", NOPID]
            for kind, v in sorted(VALUES.items()):
                yield ("%s %s=%s" % (cmd, opt, kind), [cmd, opt, v] + rest, USAGE, opt)
            yield ("%s %s missing" % (cmd, opt), [cmd] + rest + [opt], USAGE, opt)


# (words, exit status, what the message must say)
CASES = [
    ("", USAGE, "no command"),
    ("recrod", USAGE, "unknown command"),
    ("--bogus", USAGE, "unknown command"),
    ("record", USAGE, "--pid"),
    ("record --bogus", USAGE, "--bogus"),
    ("record -x", USAGE, "-x"),
    ("record --idle=3 --pid " + NOPID, USAGE, "--idle"),
    ("record --pid " + NOPID + " stray", USAGE, "not both"),
    ("record --pid " + NOPID + " -- python3", USAGE, "not both"),
    ("record --blocking --nonblocking --pid " + NOPID, USAGE, "--blocking"),
    ("record --output", USAGE, "--output"),
    ("record --output= --pid " + NOPID, USAGE, "--output"),
    ("record --format", USAGE, "--format"),
    ("record --format= --pid " + NOPID, USAGE, "--format"),
    ("record --format nope --pid " + NOPID, USAGE, "nope"),
    ("record -o {out}/noextension --pid " + NOPID, USAGE, "noextension"),
    ("record -o {out}/a.svg -o {out}/a.svg --pid " + NOPID, USAGE, "a.svg"),
    ("record -o - -o - --pid " + NOPID, USAGE, "-o -"),
    ("record --rate 100001 --pid " + NOPID, USAGE, "--rate"),
    ("record --duration 1e300 --pid " + NOPID, USAGE, "--duration"),
    # --period: every output's name carries %t, the period's start.
    ("record --period 0.5 --pid " + NOPID, USAGE, "--period"),
    ("record --period 60 -o {out}/a.svg --pid " + NOPID, USAGE, "no %t"),
    ("record --period 60 -o {out}/a-%%t.svg --pid " + NOPID, USAGE, "no %t"),
    ("record --period 60 -f raw -o - --pid " + NOPID, USAGE, "no %t"),
    ("record --period 60 -o {out}/a-%t.svg -o {out}/a-%t.svg --pid " + NOPID, USAGE,
     "more than once"),
    ("record --period 60 -o {out}/a-%t.svg --pid " + NOPID, NO_PROCESS, "no process"),
    ("record --max-depth 65537 --pid " + NOPID, USAGE, "--max-depth"),
    ("record --max-threads 1000001 --pid " + NOPID, USAGE, "--max-threads"),
    ("dump --max-threads 1000001 --pid " + NOPID, USAGE, "--max-threads"),
    ("top", USAGE, "--pid"),
    ("top --pid {py}", USAGE, "terminal"),
    ("dump", USAGE, "--pid"),
    ("dump --pid {py} -- python3", USAGE, "command"),
    ("dump --pid {py} -o x.svg", USAGE, "-o"),
    # The process named is not one pyspyc can read.
    ("record --pid " + NOPID, NO_PROCESS, "no process"),
    ("dump --pid " + NOPID, NO_PROCESS, "no process"),
    ("record --pid {zombie} -o {out}/z.svg", NO_PROCESS, "zombie"),
    ("dump --pid {zombie}", NO_PROCESS, "zombie"),
    ("record --pid {kthread} -o {out}/k.svg", NOT_PYTHON, "kernel thread"),
    ("record --pid {sleep} -o {out}/s.svg", NOT_PYTHON, "not a Python process"),
    ("dump --pid {sleep}", NOT_PYTHON, "not a Python process"),
    # Outputs that cannot be written: checked before sampling starts.
    ("record -o {out} --pid {py} -f flamegraph", OUTPUT, "directory"),
    ("record -o {out}/missing/x.svg --pid {py}", OUTPUT, "missing/x.svg"),
    ("record -o /proc/x.svg --pid {py}", OUTPUT, "/proc/x.svg"),
    ("record -o {out}/" + "n" * 252 + ".svg --pid {py}", OUTPUT, "File name too long"),
    # A long name is shown whole (up to 400 bytes), its extension too.
    ("record -o {out}/missing/" + "m" * 300 + ".svg --pid {py}", OUTPUT, "m" * 300 + ".svg'"),
    # Outputs that are not files (pyspyc(1): WHERE OUTPUTS GO).
    # -d: a pyspyc that took them for files would not sample forever.
    ("record -o {blk} -f raw -d 0.3 --pid {py}", OUTPUT, "block device"),
    ("record -o {sock} -f raw -d 0.3 --pid {py}", OUTPUT, "socket"),
    ("record -o {sticky}/fifo -f raw -d 0.3 --pid {py}", OUTPUT, "another user's FIFO"),
    ("record -o {sticky}/null -f raw -d 0.3 --pid {py}", OUTPUT, "another user's FIFO or device"),
    ("record -o /dev/fd/9 -f raw -d 0.3 --pid {py}", OUTPUT, "descriptor 9 is not open"),
    ("record -o {fdlink} -f raw -d 0.3 --pid {py}", OUTPUT, "descriptor 9 is not open"),
    ("record -f raw -o - -o /proc/self/fd/1 --pid " + NOPID, USAGE, "same file"),
    # Commands that cannot be run.
    ("record -o {out}/c.svg -- /nonexistent/python", NO_COMMAND, "/nonexistent/python"),
    ("record -o {out}/c.svg -- no-such-command-anywhere", NO_COMMAND, "no-such-command"),
    ("top -- /nonexistent/python", USAGE, "terminal"),
    ("record -o {out}/c.svg -- {noexec}", CANNOT_EXEC, "Permission denied"),
    ("record -o {out}/c.svg -- {out}", CANNOT_EXEC, "Permission denied"),
]

ALL = [(w, w.split(" ") if w else [], st, m) for w, st, m in CASES] + list(numeric_cases())


@pytest.fixture(scope="module")
def places():
    """The things the cases' {names} stand for, alive for the module."""
    procs = []
    d = tempfile.mkdtemp(prefix="pyspyc-bad-")
    noexec = os.path.join(d, "noexec")
    with open(noexec, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(noexec, 0o644)
    sleep = subprocess.Popen(["sleep", "300"])
    procs.append(sleep)
    zombie = subprocess.Popen(["true"])
    assert wait_for(lambda: (proc_stat(zombie.pid) or "?")[0] == "Z")
    procs.append(zombie)
    py = None
    if PYTHONS:
        py = subprocess.Popen([PYTHONS[0][1], os.path.join(APPS, "split.py"), "300"],
                              stdout=subprocess.PIPE, universal_newlines=True)
        assert py.stdout.readline().strip() == "ready"
        procs.append(py)
    yield dict({"py": str(py.pid) if py else None, "sleep": str(sleep.pid),
                "zombie": str(zombie.pid), "kthread": _kernel_thread(), "noexec": noexec},
               **_special_files(d))
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    shutil.rmtree(d)


def _special_files(d):
    """Paths that are not regular files, in the scratch directory d."""
    fdlink = os.path.join(d, "fd9")
    os.symlink("/proc/self/fd/9", fdlink)
    names = {"fdlink": fdlink, "blk": None, "sock": None, "sticky": None}
    if os.geteuid() != 0:
        return names
    names["blk"] = os.path.join(d, "blk")
    os.mknod(names["blk"], 0o644 | stat.S_IFBLK, os.makedev(7, 0))
    names["sock"] = os.path.join(d, "sock")
    # A socket's name is short (108 bytes): bind it from its directory.
    subprocess.check_call([sys.executable, "-c", "import socket; "
                           "socket.socket(socket.AF_UNIX).bind('sock')"], cwd=d)
    names["sticky"] = os.path.join(d, "sticky")
    os.mkdir(names["sticky"])
    os.chmod(names["sticky"], 0o1777)
    os.mkfifo(os.path.join(names["sticky"], "fifo"))
    os.mknod(os.path.join(names["sticky"], "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for n in ("fifo", "null"):
        os.chown(os.path.join(names["sticky"], n), 65534, 65534)
    return names


def _kernel_thread():
    """A kernel thread's pid: PF_KTHREAD (0x00200000) in its stat flags."""
    for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[6]) & 0x00200000:
            return name
    return None


def _files_under(d):
    out = []
    for root, dirs, files in os.walk(d):
        out += [os.path.relpath(os.path.join(root, n), d) for n in dirs + files]
    return sorted(out)


@pytest.mark.parametrize("words,args,status,says", ALL, ids=[c[0] or "(none)" for c in ALL])
def test_bad_input(words, args, status, says, places, tmp_path):
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    out.mkdir()
    cwd.mkdir()
    names = dict(places, out=str(out))
    if any("{%s}" % k in words for k, v in names.items() if v is None):
        pytest.skip("this machine has nothing to stand for " + words)
    args = [a.format(**names) for a in args]
    r = run_pyspyc(args, cwd=str(cwd), stdin=subprocess.DEVNULL)
    lines = r.stderr.splitlines()
    assert r.returncode == status, why(r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("pyspyc"), r.stderr
    assert says in lines[0], lines[0]
    assert r.stdout == ""
    assert _files_under(str(cwd)) == [] and _files_under(str(out)) == []


def test_pid_of_pyspyc_itself(tmp_path):
    # exec keeps the shell's pid: pyspyc is asked to profile itself.
    r = subprocess.run(["sh", "-c", 'exec "$0" record -o x.svg --pid $$', PYSPYC],
                       cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=30)
    assert r.returncode == NOT_PYTHON and "pyspyc itself" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and os.listdir(str(tmp_path)) == []


def test_pid_1(tmp_path):
    # The init process is not Python; where it is not dumpable (a container's
    # init), even root may not read it.
    r = run_pyspyc(["record", "-o", "x.svg", "--pid", "1"], cwd=str(tmp_path))
    assert r.returncode in (PERMISSION, NOT_PYTHON), r.stderr
    assert len(r.stderr.splitlines()) == 1 and os.listdir(str(tmp_path)) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as nobody")
@pytest.mark.parametrize("cmd", [["record", "-o", "-", "-d", "1"], ["dump"]])
def test_other_users_process(cmd, places):
    """Not root, another user's process: permission denied, status 4."""
    if not places["py"]:
        pytest.skip("no Python found")
    d = tempfile.mkdtemp(prefix="pyspyc-nobody-")
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "pyspyc")
        shutil.copy(PYSPYC, exe)
        os.chmod(exe, 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            exe] + cmd + ["--pid", places["py"]],
                           cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
    finally:
        shutil.rmtree(d)
    assert r.returncode == PERMISSION, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "permission denied" in r.stderr, r.stderr
    assert r.stdout == ""


def test_symlinked_output_is_replaced_not_followed(places, tmp_path):
    """A symlink at the output path, even one to a file of root's, is
    replaced: the file it points to is never written."""
    if not places["py"]:
        pytest.skip("no Python found")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.chmod(str(victim), stat.S_IRUSR)
    for name, to in (("a.folded", str(victim)), ("b.svg", str(tmp_path / "no" / "where"))):
        link = tmp_path / name
        os.symlink(to, str(link))
        r = run_pyspyc(["record", "-p", places["py"], "-d", "0.5", "-o", str(link)])
        assert r.returncode == 0, r.stderr
        assert not os.path.islink(str(link)) and os.path.getsize(str(link)) > 0
    assert victim.read_text() == "keep me"
    assert sorted(os.listdir(str(tmp_path))) == ["a.folded", "b.svg", "victim"]


@pytest.mark.parametrize("redirect", [">&-", "</dev/null >&0"], ids=["closed", "read-only"])
def test_stdout_not_writable(places, redirect, tmp_path):
    """-o - with standard output closed or read-only: refused before
    sampling, status 6."""
    if not places["py"]:
        pytest.skip("no Python found")
    r = subprocess.run(["sh", "-c", 'exec "$0" record -o - -d 5 --pid "$1" ' + redirect,
                        PYSPYC, places["py"]], cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert r.returncode == OUTPUT and "cannot write '-'" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and os.listdir(str(tmp_path)) == []


def test_longest_file_name_is_taken(places, tmp_path):
    """A name as long as the file system takes (255 bytes) is written: the
    temporary file beside it has a name of its own, not name + suffix."""
    if not places["py"]:
        pytest.skip("no Python found")
    name = "n" * 251 + ".svg"
    r = run_pyspyc(["record", "-p", places["py"], "-d", "0.3", "-o", str(tmp_path / name)])
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(tmp_path)) == [name]
