"""Shared fixtures for the integration suite: the pyspyc binary, every CPython
found on the machine, and helpers to run targets and read profiles."""
import glob
import os
import re
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "apps")
PYSPYC = os.environ.get("PYSPYC", os.path.join(ROOT, "pyspyc"))
# The sanitizer pass (make test SAN=1 sets BUILD=build-san): its pyspyc runs
# several times slower, which tests of how fast something is seen allow for.
SANITIZED = os.environ.get("BUILD", "").endswith("-san")

# Minor versions this build of pyspyc profiles.
SUPPORTED = {(2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13)}


def _pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.check_output(["pyenv", "root"], stderr=subprocess.DEVNULL,
                                       universal_newlines=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def _version_of(exe):
    try:
        out = subprocess.check_output(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            stderr=subprocess.DEVNULL, universal_newlines=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = out.strip().split(".")
    return int(major), int(minor)


def find_pythons():
    """Every CPython interpreter on the machine: [(label, path, (major, minor))]."""
    cands = []
    for d in sorted(glob.glob(os.path.join(_pyenv_root(), "versions", "*"))):
        for exe in sorted(glob.glob(os.path.join(d, "bin", "python[23].*"))):
            if re.search(r"python\d\.\d+$", exe):
                cands.append(("pyenv-" + os.path.basename(d), exe))
    for exe in sorted(glob.glob("/usr/bin/python[23].*")):
        if re.search(r"python\d\.\d+$", exe) and os.path.realpath(exe) == exe:
            cands.append(("debian-" + os.path.basename(exe)[6:], exe))
    for exe in os.environ.get("PYSPYC_TEST_PYTHONS", "").replace(",", " ").split():
        cands.append(("env-" + exe, exe))
    found, seen = [], set()
    for label, exe in cands:
        real = os.path.realpath(exe)
        if real in seen or not os.access(exe, os.X_OK):
            continue
        seen.add(real)
        v = _version_of(exe)
        if v:
            found.append((label, exe, v))
    return found


ALL_PYTHONS = find_pythons()
PYTHONS = [p for p in ALL_PYTHONS if p[2] in SUPPORTED]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: measures rates, costs or shares that another test's load "
        "would be part of; tests/run.sh runs these alone, after the others")


def pytest_report_header(config):
    lines = ["pythons found: " + (", ".join(
        "%s (%d.%d)" % (l, v[0], v[1]) for l, _, v in ALL_PYTHONS) or "none")]
    lines.append("pythons tested: " + (", ".join(l for l, _, _ in PYTHONS) or "none"))
    skipped = [l for l, _, v in ALL_PYTHONS if v not in SUPPORTED]
    if skipped:
        lines.append("pythons skipped (version not supported yet): " + ", ".join(skipped))
    return lines


def _one_python():
    """The interpreter for tests that do not depend on the version."""
    for p in PYTHONS:
        if p[2] == (3, 11):
            return [p]
    return PYTHONS[:1]


def _model_pythons():
    """One interpreter per way pyspyc reads a version: 2.7, the newest of
    3.6-3.10 (frame objects, the thread id in the pthread descriptor),
    3.11, 3.12, 3.13 (the first found of each).  For tests of behaviour that
    differs by model but not by each version in it."""
    picked, mid = [], None
    for p in PYTHONS:
        if p[2] in ((2, 7), (3, 11), (3, 12), (3, 13)) and p[2] not in [q[2] for q in picked]:
            picked.append(p)
        elif (3, 6) <= p[2] <= (3, 10) and (mid is None or p[2] > mid[2]):
            mid = p
    return picked + ([mid] if mid else [])


MODEL_PYTHONS = _model_pythons()


def pytest_generate_tests(metafunc):
    for name, pythons in (("python", PYTHONS), ("one_python", _one_python()),
                          ("model_python", MODEL_PYTHONS)):
        if name not in metafunc.fixturenames:
            continue
        if not pythons:
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
                reason="no supported CPython found"))])
        else:
            metafunc.parametrize(name, [p[1] for p in pythons], ids=[p[0] for p in pythons])


def version_of(python):
    """(major, minor) of an interpreter path from the list found."""
    for _, exe, v in ALL_PYTHONS:
        if exe == python:
            return v
    raise KeyError(python)


def qualname(python, cls, name):
    """How a method shows: Class.method where the version has co_qualname."""
    return "%s.%s" % (cls, name) if version_of(python) >= (3, 11) else name


def parse_collapsed(text):
    """[(list of frames, count)] from collapsed stacks; asserts the grammar."""
    stacks = []
    # Lines end at "\n" only: str.splitlines() would also break a frame
    # name at U+2028, U+0085 and other characters a target may use.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        assert line.strip(), "empty line in collapsed output"
        head, _, count = line.rpartition(" ")
        assert head and count.isdigit(), "bad collapsed line: %r" % line
        stacks.append((head.split(";"), int(count)))
    return stacks


def frame_name(frame):
    """'spin_a (split.py:21)' -> 'spin_a'."""
    return frame.rsplit(" (", 1)[0] if frame.endswith(")") else frame


def frame_line(frame):
    m = re.search(r":(\d+)\)$", frame)
    return int(m.group(1)) if m else None


def share(stacks, name):
    total = sum(c for _, c in stacks)
    hit = sum(c for fr, c in stacks if any(frame_name(f) == name for f in fr))
    return hit / float(total) if total else 0.0


def split_truth(path):
    """(wall seconds in spin_a, in spin_b) so far, as split.py with
    SPLIT_TRUTH=path says; (0, 0) before its first pair of slices."""
    try:
        with open(str(path)) as f:
            a, b = f.read().split()[:2]
        return float(a), float(b)
    except (OSError, ValueError):
        return 0.0, 0.0


def wall_share(before, after):
    """spin_a's share of the wall time split.py spent in the two between two
    split_truth readings."""
    a, b = after[0] - before[0], after[1] - before[1]
    assert a + b > 0.5, (before, after)
    return a / (a + b)


def why(*parts):
    """An assertion's message, one part a line.  A string, because pytest
    cuts any other message at 240 characters: a tuple ending in pyspyc's
    summary lost the summary, the one part that said why."""
    return "\n".join(p if isinstance(p, str) else repr(p) for p in parts)


def run_pyspyc(args, timeout=60, **kw):
    return subprocess.run([PYSPYC] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, **kw)


def traced(cmd, log, syscalls, env):
    """cmd under `strace -f`, tracing syscalls into the file log.  A
    sanitizer build's leak checker cannot run traced: it is turned off in
    env (changed here)."""
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return ["strace", "-f", "-qq", "-s", "512", "-o", str(log),
            "-e", "trace=" + ",".join(syscalls)] + cmd


def run_pyspyc_traced(args, log, syscalls, timeout=120):
    """pyspyc args under strace (traced)."""
    env = dict(os.environ)
    return subprocess.run(traced([PYSPYC] + args, log, syscalls, env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, env=env)


def cpu_seconds(pid):
    """User and system CPU time of a live pid so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / float(os.sysconf("SC_CLK_TCK"))


def proc_stat(pid):
    """(state letter, tracer pid) of a live pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/status" % pid) as f:
            tracer = [l.split()[1] for l in f if l.startswith("TracerPid:")][0]
    except (OSError, IndexError):
        return None
    return state, int(tracer)


def pyspyc_help(*cmd):
    """The --help text of pyspyc [cmd]."""
    r = run_pyspyc(list(cmd) + ["--help"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_block(text, title):
    """The indented lines under "title:" in a help text, up to the next
    unindented line."""
    lines = text.split("\n%s:\n" % title, 1)[1].splitlines()
    block = []
    for line in lines:
        if line and not line[0].isspace():
            break
        if line.strip():
            block.append(line)
    return block


def help_commands():
    """The subcommands pyspyc --help lists."""
    return [line.split()[0] for line in help_block(pyspyc_help(), "Commands")]


def help_options(*cmd):
    """The options pyspyc [cmd] --help lists, in order: [(short or None,
    long, metavar or None, help text)].  An option starts a line at column 2
    ("  -p, --pid PID  text" or "      --nolineno  text"); its text may go on
    over lines indented further."""
    opts = []
    for line in help_block(pyspyc_help(*cmd), "Options"):
        m = re.match(r"^  (?:-(\w), |    )--([\w-]+)(?: ([A-Z][A-Z_]*))?(?:\s+(.*))?$", line)
        if m:
            opts.append([m.group(1), m.group(2), m.group(3), m.group(4) or ""])
        else:
            assert opts and line.startswith("   "), "not an option line: %r" % line
            opts[-1][3] = (opts[-1][3] + " " + line.strip()).strip()
    return [tuple(o) for o in opts]


def help_option_names(*cmd):
    """Every spelling of every option pyspyc [cmd] --help lists: {"-p", "--pid", ...}."""
    names = set()
    for short, long, _, _ in help_options(*cmd):
        names.add("--" + long)
        if short:
            names.add("-" + short)
    return names


def help_formats():
    """The output formats, in the order record --help lists them after the
    last ': ' of --format's help ("a, b or c")."""
    for _, long, _, text in help_options("record"):
        if long == "format":
            names = re.split(r", | or ", text.rsplit(": ", 1)[1].rstrip("."))
            assert all(re.match(r"^[a-z]+$", n) for n in names), text
            return names
    raise AssertionError("record --help has no --format")


def help_examples(*cmd):
    """The command lines under "Examples:" in pyspyc [cmd] --help."""
    return [line.strip() for line in help_block(pyspyc_help(*cmd), "Examples")]


class Target:
    """A Python app started in the background; waits for its 'ready' line."""

    def __init__(self, python, app, *args, **kw):
        # stdin=True: a pipe to the app's stdin (self.proc.stdin).
        # env: added to the app's environment.
        env = dict(os.environ, **kw["env"]) if kw.get("env") else None
        self.proc = subprocess.Popen([python, os.path.join(APPS, app)] + [str(a) for a in args],
                                     stdin=subprocess.PIPE if kw.get("stdin") else None,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True, env=env)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", "target did not start: %r %r" % (
            line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_BPF_WHY = []


def bpf_unavailable():
    """None when pyspyc's eBPF backend loads on this machine, else the line
    it said (asked once, on a target of a tenth of a second)."""
    if not _BPF_WHY:
        r = subprocess.run([PYSPYC, "record", "--backend", "bpf", "-d", "0.1", "-f",
                            "collapsed", "-o", "/dev/null", "--", "/usr/bin/python3", "-c",
                            "import time; time.sleep(0.3)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        _BPF_WHY.append(None if r.returncode == 0 else
                        (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[0])
    return _BPF_WHY[0]


@pytest.fixture(params=["user", "bpf"])
def backend(request):
    """Each backend in turn; bpf skipped, with pyspyc's reason, where the
    kernel does not take it."""
    if request.param == "bpf":
        why = bpf_unavailable()
        if why:
            pytest.skip("eBPF backend: %s" % why)
    return request.param


@pytest.fixture
def target():
    started = []

    def start(python, app, *args, **kw):
        t = Target(python, app, *args, **kw)
        started.append(t)
        return t
    yield start
    for t in started:
        t.stop()


def app_line(app, marker):
    """The line number of the first source line of app containing marker."""
    with open(os.path.join(APPS, app)) as f:
        for i, line in enumerate(f, 1):
            if marker in line:
                return i
    raise AssertionError("marker %r not in %s" % (marker, app))


def children_of(pid):
    """The pids of pid's child processes (every thread's children)."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def free_port():
    """A TCP port on 127.0.0.1 free now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def catches_usr1(pid):
    """Has pid a handler for SIGUSR1 (its SigCgt mask)?"""
    try:
        with open("/proc/%d/status" % pid) as f:
            cgt = [l.split()[1] for l in f if l.startswith("SigCgt:")][0]
    except (OSError, IndexError):
        return False
    return bool(int(cgt, 16) & (1 << (signal.SIGUSR1 - 1)))


def recorded_yet(p, out, name, timeout=20.0):
    """Has `pyspyc record` p (writing collapsed stacks to out) counted a
    frame of function name yet?  Asks it for the profile so far (SIGUSR1) until
    one holds it, or timeout seconds pass."""
    def has():
        try:
            st = os.stat(str(out))
            before = (st.st_ino, st.st_mtime_ns)
        except OSError:
            before = None
        p.send_signal(signal.SIGUSR1)
        end = time.time() + 2
        while time.time() < end:
            try:
                st = os.stat(str(out))
            except OSError:
                st = None
            if st is not None and (st.st_ino, st.st_mtime_ns) != before:
                return any(frame_name(f) == name
                           for fr, _ in parse_collapsed(out.read_text()) for f in fr)
            time.sleep(0.02)
        return False

    return wait_for(lambda: catches_usr1(p.pid)) and wait_for(has, timeout)


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False
