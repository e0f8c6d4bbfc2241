"""pyspyc against embedded interpreters, in processes whose executable is not python.

* uWSGI workers (Debian packages uwsgi + uwsgi-plugin-python3): the
  executable is uwsgi-core, the interpreter lives in libpython pulled in by
  the python3 plugin, and the worker is a fork of the master.
* A C host (tests/apps/embed_host.c) that does not link libpython but
  dlopen()s it at run time, so libpython appears in the maps only after the
  process has started.
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import (APPS, SUPPORTED, _pyenv_root, app_line, frame_line, frame_name,
                      parse_collapsed, run_pyspyc, share, split_truth, wait_for, wall_share,
                      why)

# ---------------------------------------------------------------- helpers


def children(pid):
    """Pids whose parent is pid, from /proc/*/stat."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                data = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses.
        fields = data[data.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(data.split(" ", 1)[0]))
    return sorted(kids)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def kill_group(proc):
    """SIGKILL proc's whole process group (it was started as a session
    leader) and reap proc."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check_spinner(stacks, app, fn, loop_markers, parents):
    """Every frame of fn names app and a line inside fn, nearly all of them
    on the loop's lines, and the frames above fn are exactly parents
    (names, root first)."""
    first = app_line(app, "def " + fn + "(")
    loop = {app_line(app, m) for m in loop_markers}
    on_loop = total = 0
    for frames, c in stacks:
        names = [frame_name(f) for f in frames]
        if fn not in names:
            continue
        i = names.index(fn)
        assert names[:i] == parents, frames
        f = frames[i]
        assert f.startswith(fn + " (" + app + ":"), "file shortened like py-spy: " + f
        assert first <= frame_line(f) <= first + 5, f
        total += c
        on_loop += c if frame_line(f) in loop else 0
    assert total and on_loop >= 0.9 * total, (fn, on_loop, total)
    return total


# ---------------------------------------------------------------- uWSGI

UWSGI_APP = os.path.join(APPS, "uwsgi_app.py")
UWSGI_PLUGIN_DIR = "/usr/lib/uwsgi/plugins"


def _uwsgi_binary():
    for name in ("uwsgi", "uwsgi-core"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _uwsgi_python_plugin():
    """A uWSGI Python plugin name whose Python version pyspyc supports, or
    (None, why)."""
    seen = []
    names = ["python3"] + ["python%d%d" % v for v in sorted(SUPPORTED)]
    for name in names:
        so = os.path.join(UWSGI_PLUGIN_DIR, name + "_plugin.so")
        if not os.path.exists(so):
            continue
        m = re.match(r"python(\d)(\d+)_plugin\.so$", os.path.basename(os.path.realpath(so)))
        if m and (int(m.group(1)), int(m.group(2))) in SUPPORTED:
            return name, None
        seen.append(os.path.basename(os.path.realpath(so)))
    if seen:
        return None, "uWSGI Python plugins %s are for unsupported versions" % seen
    return None, "uWSGI python3 plugin missing (Debian package uwsgi-plugin-python3)"


# mode: (uwsgi options, request path)
UWSGI_MODES = {
    # Two single-threaded workers, 2 ms requests: profile one fork of the
    # master.
    "processes": (["--processes", "2"], "/"),
    # One worker with two request threads, each with its own thread state,
    # and 20 ms requests: longer than the GIL's 5 ms switch interval, so
    # both threads are inside spin_request at once and each tick samples
    # two stacks.
    "threads": (["--processes", "1", "--threads", "2", "--enable-threads"], "/?ms=20"),
}


@pytest.fixture
def uwsgi(tmp_path):
    """Start uwsgi in its own process group; yield (proc, port, log path);
    kill the whole group afterwards."""
    binary = _uwsgi_binary()
    if not binary:
        pytest.skip("uwsgi not installed (Debian packages uwsgi, uwsgi-plugin-python3)")
    plugin, why = _uwsgi_python_plugin()
    if not plugin:
        pytest.skip(why)
    started = []

    def start(mode):
        port = free_port()
        log = tmp_path / "uwsgi.log"
        args = [binary, "--plugin", plugin, "--http-socket", "127.0.0.1:%d" % port,
                "--master", "--wsgi-file", UWSGI_APP, "--need-app", "--die-on-term",
                "--disable-logging", "--chdir", str(tmp_path), "--no-orphans",
                "--listen", "64"] + UWSGI_MODES[mode][0]
        with open(str(log), "w") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=str(tmp_path),
                                    start_new_session=True)
        started.append(proc)

        def answers():
            if proc.poll() is not None:
                return True
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        ok = wait_for(answers, timeout=10)
        assert ok and proc.poll() is None, "uwsgi did not start:\n" + log.read_text()
        return proc, port, log
    yield start
    for proc in started:
        kill_group(proc)


class Load:
    """A bounded HTTP load: CLIENTS threads issuing GETs until stop() or
    SECONDS pass, at most MAX_REQUESTS each."""
    CLIENTS = 4
    SECONDS = 8.0
    MAX_REQUESTS = 4000

    def __init__(self, port, path):
        self.url = "http://127.0.0.1:%d%s" % (port, path)
        self.done = threading.Event()
        self.deadline = time.time() + self.SECONDS
        self.ok = self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(self.CLIENTS)]
        for t in self.threads:
            t.start()

    def _client(self):
        for _ in range(self.MAX_REQUESTS):
            if self.done.is_set() or time.time() > self.deadline:
                return
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    good = r.status == 200 and r.read().startswith(b"ok ")
            except OSError:
                good = False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=5)


@pytest.mark.parametrize("mode", sorted(UWSGI_MODES))
def test_uwsgi_worker(uwsgi, mode, tmp_path):
    master, port, log = uwsgi(mode)
    want = 2 if mode == "processes" else 1
    assert wait_for(lambda: len(children(master.pid)) >= want, timeout=5), \
        (children(master.pid), log.read_text())
    worker = children(master.pid)[0]
    out = tmp_path / "x.folded"
    load = Load(port, UWSGI_MODES[mode][1])
    try:
        time.sleep(0.3)  # let the load reach the workers
        # -i: a request thread waiting for the GIL counts too, so two
        # threads in requests give two stacks a tick.
        r = run_pyspyc(["record", "--pid", str(worker), "-i", "-d", "3", "-r", "200",
                        "-o", str(out)], timeout=30)
    finally:
        load.stop()
    assert r.returncode == 0, r.stderr
    assert load.ok > (100 if mode == "processes" else 50), (load.ok, load.failed)
    assert worker in children(master.pid), "the worker must keep running"
    stacks = parse_collapsed(out.read_text())
    # Idle workers have no Python frames, so every stack is a request.
    # uWSGI calls application() straight from C: it is the root.
    call = app_line("uwsgi_app.py", "n = spin_request(spin_time(environ))")
    for frames, _ in stacks:
        assert frame_name(frames[0]) == "application", frames
        assert frames[0].startswith("application (uwsgi_app.py:"), frames
    spin = check_spinner(stacks, "uwsgi_app.py", "spin_request",
                         ["# spin loop", "# spin body"], ["application"])
    assert all(frame_line(fr[0]) == call for fr, _ in stacks
               if any(frame_name(f) == "spin_request" for f in fr))
    assert share(stacks, "spin_request") > 0.8, share(stacks, "spin_request")
    # 600 ticks; a worker under this load is in a request most of the time,
    # and with two threads, mostly in two requests at once.
    assert spin >= (150 if mode == "processes" else 750), why(spin, r.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="the context switch watch needs root")
def test_uwsgi_idle_workers_not_read(uwsgi, tmp_path):
    """uWSGI without --enable-threads never lets its workers' GIL go, even
    asleep between requests in C: the GIL holder has no Python frames,
    and the workers are left unread while they sleep, as any others."""
    master, port, log = uwsgi("processes")
    assert wait_for(lambda: len(children(master.pid)) >= 2, timeout=5), log.read_text()
    time.sleep(0.5)
    # Idle workers not read is the user-space backend's (the eBPF backend
    # reads none: test_bpf.py).
    r = run_pyspyc(["record", "--backend", "user", "--pid", str(master.pid), "-s", "-d", "3",
                    "-r", "100",
                    "-o", str(tmp_path / "x.folded")], timeout=30)
    assert r.returncode == 0, r.stderr
    total = re.search(r"pyspyc: (\d+) samples,", r.stderr)
    assert total, r.stderr
    samples = int(total.group(1))
    m = re.search(r"; (\d+) samples of processes that had not run", r.stderr)
    asleep = int(m.group(1)) if m else 0
    # 3 processes for 3 s at 100 Hz; the master wakes once a second.
    assert samples >= 700 and asleep >= 0.9 * samples, r.stderr


# ---------------------------------------------------------------- dlopen host

EMBED_SCRIPT = os.path.join(APPS, "embed_spin.py")
# embed_spin.py's split, and a tolerance for 1000 samples (see test_record).
EMBED_SPLIT = 0.8
TOLERANCE = 0.07


def _libpythons():
    """[(id, path or None)]: every libpythonX.Y[m].so.1.0 of a supported
    version, Debian's (any multiarch directory) and each pyenv build; a
    None (skipped) entry for Debian's and pyenv's 3.11 when missing, and for
    each supported version with no libpython at all."""
    found = []
    for major, minor in sorted(SUPPORTED):
        so = "libpython%d.%d.so.1.0 libpython%d.%dm.so.1.0" % (major, minor, major, minor)
        deb, pyenv = [], []
        for name in so.split():
            deb += glob.glob("/usr/lib/*/" + name) + glob.glob("/usr/lib/" + name)
            pyenv += glob.glob(os.path.join(_pyenv_root(), "versions",
                                            "%d.%d.*" % (major, minor), "lib", name))
        ver = "%d.%d" % (major, minor)
        if deb:
            found.append(("debian-" + ver, sorted(deb)[0]))
        for path in sorted(pyenv):
            found.append(("pyenv-" + path.split(os.sep)[-3], path))
        if (major, minor) == (3, 11):
            if not deb:
                found.append(("debian-" + ver, None))
            if not pyenv:
                found.append(("pyenv-" + ver, None))
        elif not deb and not pyenv:
            found.append((ver, None))
    return found


LIBPYTHONS = [pytest.param(path, id=ident, marks=() if path else pytest.mark.skip(
    reason="%s: no libpython of that version on this machine" % ident))
    for ident, path in _libpythons()]


@pytest.fixture(scope="module")
def embed_host(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler (Debian package build-essential)")
    exe = str(tmp_path_factory.mktemp("embed") / "host")
    r = subprocess.run([cc, "-O2", "-Wall", "-o", exe, os.path.join(APPS, "embed_host.c"),
                        "-ldl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    return exe


def embed_env(libpython, seconds):
    env = dict(os.environ)
    # <prefix>/lib/libpython... (pyenv) or <prefix>/lib/<triplet>/libpython...
    # (Debian): the stdlib is under <prefix>/lib/pythonX.Y either way.
    prefix = os.path.dirname(os.path.dirname(libpython))
    if not glob.glob(os.path.join(prefix, "lib", "python[23].*", "os.py")):
        prefix = os.path.dirname(prefix)
    env["PYTHONHOME"] = prefix
    env["EMBED_SPIN_SECONDS"] = str(seconds)
    env.pop("PYTHONPATH", None)
    return env


def check_embed(stacks, want=EMBED_SPLIT):
    # <module> calls main() calls the spinners: the walk reaches the script's
    # module frame, run by PyEval_EvalCode from C.  want: embed_spin's
    # wall share (split_truth), which a sampler counting waiting threads
    # follows.
    parents = ["<module>", "main"]
    check_spinner(stacks, "embed_spin.py", "embed_spin", ["# embed loop", "# embed body"],
                  parents)
    total = sum(c for _, c in stacks)
    a = share(stacks, "embed_spin")
    assert abs(a - want) < TOLERANCE, "embed_spin share %.3f of %d, want %.3f" % (a, total, want)
    b = share(stacks, "embed_other")
    assert abs(b - (1 - want)) < TOLERANCE, "embed_other share %.3f of %d" % (b, total)


@pytest.mark.parametrize("libpython", LIBPYTHONS)
def test_dlopen_host_pid(embed_host, libpython, tmp_path):
    truth = tmp_path / "truth"
    env = embed_env(libpython, 20)
    env["SPLIT_TRUTH"] = str(truth)
    proc = subprocess.Popen([embed_host, libpython, EMBED_SCRIPT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.poll(),
                                         proc.stderr.read() if proc.poll() is not None else "")
        out = tmp_path / "x.folded"
        before = split_truth(truth)
        r = run_pyspyc(["record", "--pid", str(proc.pid), "-d", "2", "-r", "500",
                        "-o", str(out)], timeout=30)
        after = split_truth(truth)
        assert r.returncode == 0, r.stderr
        assert proc.poll() is None, "the host must keep running"
    finally:
        kill_group(proc)
    check_embed(parse_collapsed(out.read_text()), wall_share(before, after))


@pytest.mark.parametrize("libpython", LIBPYTHONS)
def test_dlopen_host_launch(embed_host, libpython, tmp_path):
    out = tmp_path / "x.folded"
    r = run_pyspyc(["record", "-r", "500", "-d", "2", "-o", str(out), "--",
                    embed_host, libpython, EMBED_SCRIPT],
                   timeout=30, env=embed_env(libpython, 20), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "ready" in r.stdout  # the host's output passes through
    stacks = parse_collapsed(out.read_text())
    # Launched, the profile also holds the interpreter's start-up (site and
    # encodings imports): a few percent idle, more on a loaded machine.
    script = [(fr, c) for fr, c in stacks if fr[0].startswith("<module> (embed_spin.py:")]
    assert sum(c for _, c in script) > 0.5 * sum(c for _, c in stacks), stacks
    check_embed(script)
