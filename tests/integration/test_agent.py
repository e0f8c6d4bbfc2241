"""pyspyc agent: services from a configuration file (and the command line),
their processes found and sampled, a window per service written to the
state directory as pprof (and collapsed stacks) that `go tool pprof`
reads, the time split shown right, windows that add up, signals (SIGUSR1,
SIGHUP, SIGTERM), retention, the free-space stop, systemd's notify
protocol, and every kind of configuration mistake refused before anything
starts."""
import glob
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import APPS, PYSPYC, parse_collapsed, wait_for

CONFIG_ERROR = 8
STEM = re.compile(r"^\d{8}T\d{6}Z(-\d+)?\.(pb\.gz|folded)$")


def write(path, text):
    path.write_text(text)
    return str(path)


class Agent:
    """pyspyc agent started in the background, its stderr to a file."""

    def __init__(self, args, tmp_path, env=None, listen="127.0.0.1:0"):
        # Its HTTP on a port of its own (the default, 6060, may be taken).
        if listen and "--listen" not in args:
            args = args + ["--listen", listen]
        self.log = tmp_path / "agent.log"
        self.err = open(str(self.log), "w")
        self.proc = subprocess.Popen([PYSPYC, "agent"] + args, stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=env)

    def text(self):
        return self.log.read_text()

    def url(self, timeout=20):
        """http://ADDR:PORT it serves on, from its log."""
        found = []

        def served():
            m = re.search(r"serving profiles on (http://[^/\s]+)/", self.text())
            if m:
                found.append(m.group(1))
            return bool(found) or self.proc.poll() is not None
        assert wait_for(served, timeout) and found, self.text()
        return found[0]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.err.close()
        return rc


def windows(d, ext=".folded"):
    return sorted(glob.glob(os.path.join(str(d), "*" + ext)))


def folded_total(path):
    with open(path) as f:
        return sum(c for _, c in parse_collapsed(f.read()))


def shares(paths):
    a = b = 0
    for p in paths:
        with open(p) as f:
            for fr, c in parse_collapsed(f.read()):
                names = " ".join(fr)
                if "spin_a" in names:
                    a += c
                elif "spin_b" in names:
                    b += c
    return a, b


@pytest.mark.serial  # shares and samples per window: another test's load would be in them
def test_two_services_windows_on_disk(one_python, target, tmp_path):
    web = target(one_python, "split.py", 60)
    other = target(one_python, "split.py", 61)
    state = tmp_path / "state"
    conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
rate = 100
window = 1s
rediscover = 500ms
folded = yes
labels = env=test

[service web]
pid = %d
labels = team=web

[service batch]
match = split\\.py 61$
""" % (state, web.pid))
    a = Agent(["--config", conf], tmp_path)
    try:
        assert wait_for(lambda: len(windows(state / "web")) >= 3 and
                        len(windows(state / "batch")) >= 3, 20), a.text()
    finally:
        rc = a.stop()
    assert rc == 0, a.text()
    for svc in ("web", "batch"):
        names = os.listdir(str(state / svc))
        assert names and all(STEM.match(n) for n in names), names
        folded = windows(state / svc)
        pbs = windows(state / svc, ".pb.gz")
        assert [p[:-len(".folded")] for p in folded] == [p[:-len(".pb.gz")] for p in pbs]
        # Full windows of 1 s at 100 Hz: about 100 samples each (the first
        # and last are partial), a busy single thread in each.
        full = [folded_total(p) for p in folded[1:-1]]
        assert full and all(50 <= n <= 130 for n in full), full
        a_, b_ = shares(folded)
        assert a_ + b_ > 200
        assert abs(a_ / float(a_ + b_) - 0.6) < 0.1, (a_, b_)
        # pprof, as go tool pprof reads it, with the labels.
        raw = subprocess.run(["go", "tool", "pprof", "-raw", pbs[1]], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
        assert raw.returncode == 0, raw.stdout
        assert "service_name:[%s]" % svc in raw.stdout, raw.stdout[:2000]
        assert "env:[test]" in raw.stdout
        assert ("team:[web]" in raw.stdout) == (svc == "web")
        assert "pid:[" not in raw.stdout  # only when asked
        with gzip.open(pbs[1]) as f:
            assert f.read(1)  # a gzip member with a body


def test_check_lists_processes(one_python, target, tmp_path):
    t = target(one_python, "dump_target.py", 30)
    conf = write(tmp_path / "agent.conf", """
[service app]
match = dump_target\\.py 30$
[service nothing]
pidfile = %s/none.pid
""" % tmp_path)
    r = subprocess.run([PYSPYC, "agent", "-c", conf, "--check"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "configuration ok: 2 services" in r.stdout
    assert re.search(r"service app: 100 Hz, 60 s windows, 1 process now\n  %d  Python 3\.\d+ "
                     % t.pid, r.stdout), r.stdout
    assert "service nothing: 100 Hz, 60 s windows, 0 processes now; pidfile %s/none.pid: " \
        "No such file or directory" % tmp_path in r.stdout, r.stdout
    assert not (tmp_path / "state").exists()


def test_signals_and_reload(one_python, target, tmp_path):
    # A target that sleeps, sampled with idle: samples without load.
    t = target(one_python, "dump_target.py", 60)
    target(one_python, "dump_target.py", 61)
    state = tmp_path / "state"
    base = """
[agent]
state_dir = %s
window = 1h
rediscover = 200ms
folded = yes
idle = yes
[service one]
pid = %d
""" % (state, t.pid)
    conf = tmp_path / "agent.conf"
    write(conf, base)
    a = Agent(["-c", str(conf)], tmp_path)
    try:
        time.sleep(1.5)
        assert windows(state / "one") == []  # an hour's window is open
        a.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: len(windows(state / "one")) == 1, 10), a.text()
        first = folded_total(windows(state / "one")[0])
        assert first > 50
        # A bad reload is logged and changes nothing.
        write(conf, base + "rate = fast\n")
        a.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload: %s:10: rate: 'fast' is not a rate" % conf in a.text(),
                        10), a.text()
        assert a.proc.poll() is None
        # A good one adds a service.
        write(conf, base + "[service two]\nmatch = dump_target\\.py 61$\n")
        a.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded: sampling 2 services" in a.text(), 10), a.text()
        time.sleep(1.5)
    finally:
        rc = a.stop(signal.SIGINT)
    assert rc == 0, a.text()
    # SIGINT wrote the open windows: one's second, two's first.
    assert len(windows(state / "one")) == 2
    assert len(windows(state / "two")) == 1
    assert folded_total(windows(state / "two")[0]) > 50
    assert "stopping: writing the open windows" in a.text()


def test_retention_and_free_space(one_python, target, tmp_path):
    t = target(one_python, "dump_target.py", 60)
    state = tmp_path / "state"
    (state / "one").mkdir(parents=True)
    # Old windows of the service, and one file that is not a window.
    for stem in ("20200101T000000Z", "20200101T000100Z"):
        (state / "one" / (stem + ".pb.gz")).write_bytes(b"x" * 5000)
    (state / "one" / "keep.txt").write_text("mine")
    # A service the configuration no longer has: [agent]'s keep_age (7d).
    (state / "former").mkdir()
    (state / "former" / "20200101T000000Z.pb.gz").write_bytes(b"x" * 5000)
    (state / "former" / "notes.txt").write_text("mine")
    conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
window = 1s
rediscover = 200ms
idle = yes
[service one]
pid = %d
keep_bytes = 1
keep_age = 30d
""" % (state, t.pid))
    a = Agent(["-c", conf], tmp_path)
    try:
        # Over keep_age and keep_bytes: the old ones go, and each new
        # window replaces the one before; never none.
        assert wait_for(lambda: len(windows(state / "one", ".pb.gz")) == 1 and
                        not (state / "one" / "20200101T000000Z.pb.gz").exists() and
                        not (state / "one" / "20200101T000100Z.pb.gz").exists(), 20), a.text()
        first = windows(state / "one", ".pb.gz")

        def replaced():
            now = windows(state / "one", ".pb.gz")
            assert now, "no window left"
            return len(now) == 1 and now != first

        assert wait_for(replaced, 10), os.listdir(str(state / "one"))
        assert (state / "one" / "keep.txt").exists()
        assert os.listdir(str(state / "former")) == ["notes.txt"]
    finally:
        assert a.stop() == 0, a.text()

    # min_free no disk has: nothing written, said once.
    state2 = tmp_path / "state2"
    a = Agent(["--pid", str(t.pid), "--state-dir", str(state2), "--window", "1s", "--idle",
               "--min-free", "99.999%"], tmp_path)
    try:
        assert wait_for(lambda: "not writing windows until there is room" in a.text(), 15), \
            a.text()
        time.sleep(1.5)
    finally:
        assert a.stop() == 0, a.text()
    assert a.text().count("not writing windows until there is room") == 1, a.text()
    assert not os.path.exists(str(state2 / "default")) or not os.listdir(str(state2 / "default"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_min_free_on_small_tmpfs(one_python, target, tmp_path):
    """A 1 MiB file system: windows are written while 256 KiB stay free,
    stop (said once) when a file takes the room, and start again when it
    is gone."""
    t = target(one_python, "dump_target.py", 60)
    small = tmp_path / "small"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                       stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
    try:
        state = small / "state"
        a = Agent(["--pid", str(t.pid), "--state-dir", str(state), "--window", "1s",
                   "--idle", "--min-free", "256K"], tmp_path)
        try:
            assert wait_for(lambda: len(windows(state / "default", ".pb.gz")) >= 2, 15), \
                a.text()
            st = os.statvfs(str(small))
            free = st.f_bavail * st.f_frsize
            # Leave 200 KiB free: under min_free.
            with open(str(small / "filler"), "wb") as f:
                f.write(b"\0" * (free - 200 * 1024))
            assert wait_for(lambda: "not writing windows until there is room" in a.text(),
                            15), a.text()
            n = len(windows(state / "default", ".pb.gz"))
            time.sleep(2.5)
            assert len(windows(state / "default", ".pb.gz")) == n
            os.unlink(str(small / "filler"))
            assert wait_for(lambda: len(windows(state / "default", ".pb.gz")) > n, 15), \
                a.text()
        finally:
            assert a.stop() == 0, a.text()
        log = a.text()
        assert log.count("not writing windows until there is room") == 1, log
        assert "writing windows again" in log, log
    finally:
        subprocess.run(["umount", "-l", str(small)])


def test_notify_socket(one_python, target, tmp_path):
    t = target(one_python, "dump_target.py", 60)
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st")], tmp_path, env=env)
    got = []
    try:
        while not any(m.startswith("READY=1") for m in got):
            got.append(s.recv(4096).decode())
        while not any("STATUS=" in m for m in got):
            got.append(s.recv(4096).decode())
        while not any(m == "WATCHDOG=1" for m in got):
            got.append(s.recv(4096).decode())
    finally:
        rc = a.stop()
    assert rc == 0, a.text()
    s.settimeout(5)
    while "STOPPING=1" not in got:
        got.append(s.recv(4096).decode())
    s.close()
    assert "STATUS=1 service, 1 process selected" in got, got


# (config text, the message's start after "FILE:"); each refused with one line
# and exit status 8, and nothing started.
BAD = [
    ("[agent]\nfoo = 1\n", "2: unknown key 'foo' in [agent]"),
    ("[agent]\nrate = -5\n[service s]\npid = 1\n", "2: rate: '-5' is not a rate in Hz"),
    ("[agent]\nwindow = forever\n", "2: window: 'forever' is not a duration"),
    ("[agent]\nkeep_bytes = lots\n", "2: keep_bytes: 'lots' is not a size"),
    ("[agent]\nmin_free = 120%\n", "2: min_free: '120%' is not a size or a percentage"),
    ("[agent]\nlisten = 0.0.0.0:6060\n[service s]\npid = 1\n",
     " listen 0.0.0.0:6060 is not a loopback address: set token"),
    ("[service s]\nmatch = (unclosed\n", "2: match: '(unclosed' does not compile"),
    ("[service s]\nrate = 10\n", "1: [service s] chooses no process"),
    ("[agent]\nrate = 10\n", " no service to sample"),
    ("[services]\npid = 1\n", "1: unknown section [services]"),
    ("[service s]\npid = 1\npid = 2\n", "3: 'pid' is set twice in this section"),
    ("[service s]\nunit = a/b\n", "2: unit: 'a/b' is not a unit name"),
    ("[agent]\ntoken = short\n", "2: token: must be 16 to 256 characters"),
]


@pytest.mark.parametrize("text,msg", BAD, ids=[
    "unknown-key", "rate", "window", "keep_bytes", "min_free", "listen-no-token", "regex",
    "no-selector", "no-service", "unknown-section", "set-twice", "unit", "token"])
def test_config_mistakes(tmp_path, text, msg):
    conf = write(tmp_path / "agent.conf", text)
    state = tmp_path / "state"
    for extra in ([], ["--check"]):
        r = subprocess.run([PYSPYC, "agent", "-c", conf, "--state-dir", str(state)] + extra,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
        assert r.returncode == CONFIG_ERROR, r.stderr
        assert r.stderr.startswith("pyspyc agent: %s:%s" % (conf, msg)), r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.endswith("\n") and r.stdout == ""
        assert not state.exists()


def test_unreadable_dropin_and_command_line(tmp_path):
    conf = write(tmp_path / "agent.conf", "[service s]\npid = 1\n")
    d = tmp_path / "agent.conf.d"
    d.mkdir()
    os.symlink("/nonexistent/x.conf", str(d / "10-gone.conf"))
    r = subprocess.run([PYSPYC, "agent", "-c", conf, "--check"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert r.returncode == CONFIG_ERROR
    assert r.stderr == "pyspyc agent: %s/10-gone.conf: cannot read it: No such file or " \
        "directory\n" % d, r.stderr
    r = subprocess.run([PYSPYC, "agent", "--match", "x", "--rate", "0"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=30)
    assert r.returncode == CONFIG_ERROR
    assert r.stderr.startswith("pyspyc agent: --rate: rate: '0' is not a rate"), r.stderr
    r = subprocess.run([PYSPYC, "agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=30)
    assert r.returncode == CONFIG_ERROR
    assert "no service to sample" in r.stderr
    r = subprocess.run([PYSPYC, "agent", "-c", str(tmp_path / "missing.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=30)
    assert r.returncode == CONFIG_ERROR
    assert r.stderr == "pyspyc agent: %s/missing.conf: cannot read it: No such file or " \
        "directory\n" % tmp_path, r.stderr
    shutil.rmtree(str(d))
