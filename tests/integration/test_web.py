"""A Flask app under gunicorn with two sync workers (Debian's gunicorn and
python3-flask): `record --pid <master> --subprocesses` sees both handlers in
the right proportion, both workers, and a worker started during the run."""
import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import APPS, PYSPYC, free_port, parse_collapsed, wait_for

GUNICORN = shutil.which("gunicorn")
PROCESS_RE = re.compile(r'^process (\d+):"(.*)"$')
pytestmark = pytest.mark.skipif(not GUNICORN, reason="gunicorn is not installed")


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return sorted(int(x) for x in out.split())


class Server:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [GUNICORN, "-w", "2", "-b", "127.0.0.1:%d" % self.port, "--chdir", APPS,
             "flask_app:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self.up, timeout=30), "gunicorn did not start"
        assert wait_for(lambda: len(children(self.proc.pid)) == 2, timeout=30)

    def up(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/light")
            return c.getresponse().status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Load:
    """Two loopback clients, each asking for /heavy then /light in turn until
    stopped.  A connection a killed worker drops is opened again."""

    def __init__(self, port):
        self.port, self.stopping, self.done = port, False, [0, 0]
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(2)]
        for t in self.threads:
            t.start()

    def client(self, i):
        c = None
        while not self.stopping:
            for path in ("/heavy", "/light"):
                try:
                    if c is None:
                        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    c.request("GET", path)
                    c.getresponse().read()
                    self.done[i] += 1
                except (OSError, http.client.HTTPException):
                    c = None
                    time.sleep(0.05)

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(timeout=30)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def by_process(stacks):
    """{pid: {function: samples}} from stacks rooted at process frames."""
    out = {}
    for frames, count in stacks:
        m = PROCESS_RE.match(frames[0])
        assert m, "stack does not start at a process: %r" % frames[0]
        fns = out.setdefault(int(m.group(1)), {})
        for f in set(fr.rsplit(" (", 1)[0] for fr in frames[1:]):
            fns[f] = fns.get(f, 0) + count
    return out


def test_gunicorn_workers(server, backend, tmp_path):
    out = tmp_path / "web.folded"
    workers = children(server.proc.pid)
    load = Load(server.port)
    try:
        p = subprocess.Popen([PYSPYC, "record", "--backend", backend, "-s", "-p",
                              str(server.proc.pid), "-r", "200", "-d", "10", "-o", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        time.sleep(4)
        # Replace a worker mid-run: the master starts a new one.
        os.kill(workers[0], signal.SIGKILL)
        assert wait_for(lambda: len(set(children(server.proc.pid)) - set(workers)) == 1,
                        timeout=20), "gunicorn did not replace the worker"
        new = (set(children(server.proc.pid)) - set(workers)).pop()
        _, err = p.communicate(timeout=60)
    finally:
        load.stop()
    assert p.returncode == 0, err
    assert sum(load.done) > 200, "the load did not run: %r" % load.done
    procs = by_process(parse_collapsed(out.read_text()))
    for w in workers + [new]:
        fns = procs.get(w, {})
        assert fns.get("heavy_handler", 0) + fns.get("light_handler", 0) > 20, \
            "worker %d: %r (seen: %r)" % (w, fns, sorted(procs))
    heavy = sum(f.get("heavy_handler", 0) for f in procs.values())
    light = sum(f.get("light_handler", 0) for f in procs.values())
    # Each client alternates 3 ms and 1 ms of CPU: heavy is 75% of the two.
    ratio = heavy / float(heavy + light)
    assert 0.65 <= ratio <= 0.85, "heavy %d light %d" % (heavy, light)
    print("gunicorn shares: heavy %.1f%% light %.1f%% (%d samples); workers %s, new %d"
          % (100 * ratio, 100 - 100 * ratio, heavy + light, workers, new))
