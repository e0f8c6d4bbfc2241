"""pyspyc agent over HTTP: Go's pprof endpoint (every service, or one under
/t/SERVICE), each request its own window on the live samples (two at once
both get every sample, across the windows the agent rotates on disk), the
index and its 404s, Prometheus service discovery and metrics, the live
flame graph, pause and resume, the bearer token, a port taken, SIGTERM
ending open requests; and real servers (gunicorn, uWSGI) from a
configuration, their handler split seen in the windows on disk and by
`go tool pprof` against the endpoint."""
import contextlib
import glob
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import APPS, PYSPYC, children_of, free_port, wait_for
from test_agent import Agent, folded_total, windows, write
from test_pprof import GO, go_pprof, parse_tags, parse_top

needs_go = pytest.mark.skipif(GO is None, reason="go (for go tool pprof) is not installed")


def http(url, method="GET", token=None, timeout=60):
    """(status, headers, body bytes), whatever the status."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def samples_of(tmp_path, body, name="p.pb.gz"):
    """{label value of service_name (or ''): samples} and the total, from go tool pprof."""
    path = tmp_path / name
    path.write_bytes(body)
    rows, total = parse_top(go_pprof(tmp_path, "-top", "-sample_index=samples", str(path)))
    tags = parse_tags(go_pprof(tmp_path, "-tags", "-sample_index=samples", str(path)))
    return total, rows, tags


def sleeper(target, one_python, n):
    """A Python process whose threads all sleep: with idle sampling each
    tick counts every thread, whatever the machine's load."""
    return target(one_python, "dump_target.py", n)


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


@needs_go
def test_profile_endpoint_every_sample(one_python, target, tmp_path):
    """Two requests at once, spanning the agent's own 1 s windows: both
    get every sample; the disk windows lose nothing to them."""
    t = sleeper(target, one_python, 60)
    nthreads = threads_of(t.pid)
    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st"), "--window", "1s",
               "--idle", "--rate", "50", "--folded"], tmp_path)
    try:
        url = a.url()
        assert wait_for(lambda: windows(tmp_path / "st" / "default"), 15), a.text()
        got = [None, None]

        def ask(i):
            got[i] = http(url + "/debug/pprof/profile?seconds=3")
        ths = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(timeout=60)
    finally:
        rc = a.stop()
    assert rc == 0, a.text()
    totals = []
    for i, (status, headers, body) in enumerate(got):
        assert status == 200, body
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"] == 'attachment; filename="profile"'
        total, rows, tags = samples_of(tmp_path, body, "p%d.pb.gz" % i)
        assert tags["service_name"] == {"default": total}, tags
        totals.append(total)
    # 3 s at 50 Hz, every thread each tick: 150 ticks; the two requests
    # started within a few ms of each other.
    want = 150 * nthreads
    assert all(0.9 * want <= n <= 1.05 * want for n in totals), (totals, want)
    assert abs(totals[0] - totals[1]) <= 2 * nthreads, totals


def two_services(one_python, target, tmp_path, n):
    """An agent sampling two sleeping processes, as services web (with a
    label) and jobs."""
    web, jobs = sleeper(target, one_python, n), sleeper(target, one_python, n + 1)
    conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
idle = yes
rediscover = 500ms
[service web]
pid = %d
labels = team=web
[service jobs]
pid = %d
""" % (tmp_path / "st", web.pid, jobs.pid))
    return Agent(["-c", conf], tmp_path)


def test_services_index_and_errors(one_python, target, tmp_path):
    a = two_services(one_python, target, tmp_path, 61)
    try:
        url = a.url()
        st, h, body = http(url + "/debug/pprof/")
        assert st == 200 and h["Content-Type"].startswith("text/html"), body
        assert b"/t/web/debug/pprof/profile" in body and b"/t/jobs/debug/pprof/profile" in body
        for path, code, says in [
                ("/debug/pprof/heap", 404, "only the CPU profile"),
                ("/debug/pprof/goroutine", 404, "only the CPU profile"),
                ("/t/web/debug/pprof/allocs", 404, "only the CPU profile"),
                ("/nothing", 404, "not found"),
                ("/t/nosuch/debug/pprof/profile", 404, "no service 'nosuch'"),
                ("/debug/pprof/profile?seconds=abc", 400, "seconds: not a number"),
                ("/debug/pprof/profile?seconds=99999", 400, "longer than the 3600"),
                ("/flamegraph.svg?service=nosuch", 404, "no service 'nosuch'")]:
            st, h, body = http(url + path)
            assert st == code and says in body.decode(), (path, st, body)
            assert h["Content-Type"] == "text/plain; charset=utf-8", path
            assert h["X-Go-Pprof"] == "1", path
        st, h, body = http(url + "/pause")
        assert st == 405 and h["Allow"] == "POST", body
        st, h, body = http(url + "/debug/pprof/profile", method="POST")
        assert st == 405, body
        # /targets: Prometheus HTTP service discovery, a path prefix per service.
        st, h, body = http(url + "/targets")
        assert st == 200 and h["Content-Type"] == "application/json"
        tg = json.loads(body)
        host = url[len("http://"):]
        assert sorted(tg, key=lambda x: x["labels"]["service_name"]) == [
            {"targets": [host], "labels": {"service_name": "jobs",
                                           "__profile_path_prefix__": "/t/jobs"}},
            {"targets": [host], "labels": {"service_name": "web", "team": "web",
                                           "__profile_path_prefix__": "/t/web"}}], tg
        # One service's profile carries its labels; every service's, one
        # service_name per sample.
        if GO:
            st, h, body = http(url + "/t/web/debug/pprof/profile?seconds=1")
            assert st == 200, body
            total, rows, tags = samples_of(tmp_path, body, "web.pb.gz")
            assert total > 0 and tags["service_name"] == {"web": total}, tags
            assert tags["team"] == {"web": total}, tags
            st, h, body = http(url + "/debug/pprof/profile?seconds=1")
            assert st == 200, body
            total, rows, tags = samples_of(tmp_path, body, "all.pb.gz")
            assert set(tags["service_name"]) == {"web", "jobs"}, tags
            assert sum(tags["service_name"].values()) == total
            assert "team" not in tags
    finally:
        assert a.stop() == 0, a.text()


@needs_go
def test_reload_during_requests(one_python, target, tmp_path):
    """A reload while requests wait: the service kept answers with every
    sample, the one removed drops out, nothing is read from freed memory
    (the sanitizer build runs this too)."""
    a = two_services(one_python, target, tmp_path, 68)
    got = {}
    try:
        url = a.url()
        conf = tmp_path / "agent.conf"

        def ask(path):
            got[path] = http(url + path)
        paths = ["/t/web/debug/pprof/profile?seconds=3", "/debug/pprof/profile?seconds=3",
                 "/t/jobs/debug/pprof/profile?seconds=3"]
        ths = [threading.Thread(target=ask, args=(p,)) for p in paths]
        for th in ths:
            th.start()
        time.sleep(1.0)
        text = conf.read_text()
        conf.write_text(text[:text.index("[service jobs]")])
        a.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded: sampling 1 service" in a.text(), 10), a.text()
        for th in ths:
            th.join(timeout=60)
    finally:
        assert a.stop() == 0, a.text()
    st, h, body = got[paths[0]]
    assert st == 200, body
    total, rows, tags = samples_of(tmp_path, body, "web.pb.gz")
    assert total > 0 and tags["service_name"] == {"web": total}
    st, h, body = got[paths[1]]
    assert st == 200, body
    total, rows, tags = samples_of(tmp_path, body, "all.pb.gz")
    assert set(tags["service_name"]) == {"web"}, tags
    st, h, body = got[paths[2]]
    assert st == 503 and b"went away" in body, (st, body)


def test_short_soak_windows_add_up(one_python, target, tmp_path):
    """The soak of make bench, short: 1 s windows for 15 s under a
    keep_bytes that retention must act on.  Every window is read as it
    appears; at the end (sampling paused, the counts read, SIGTERM) the
    windows hold exactly the stacks the agent counted, none lost between
    windows, and the directory stayed within its bound."""
    busy = target(one_python, "split.py", 60)
    asleep = sleeper(target, one_python, 69)
    state = tmp_path / "st"
    keep = 12 * 1024
    conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
window = 1s
keep_bytes = %d
folded = yes
rate = 200
[service busy]
pid = %d
[service asleep]
pid = %d
idle = yes
""" % (state, keep, busy.pid, asleep.pid))
    a = Agent(["-c", conf], tmp_path)
    seen, sums, biggest = set(), {"busy": 0, "asleep": 0}, 0

    def poll():
        size = 0
        for svc in sums:
            for path in glob.glob(str(state / svc / "*")):
                try:
                    size += os.path.getsize(path)
                    if path.endswith(".folded") and path not in seen:
                        sums[svc] += folded_total(path)
                        seen.add(path)
                except OSError:
                    pass  # deleted meanwhile: the sums will not match
        return size
    try:
        url = a.url()
        end = time.time() + 15
        while time.time() < end:
            biggest = max(biggest, poll())
            time.sleep(0.2)
        # The reply to /pause comes once both engines (busy's and the
        # idle=yes one's) took the change: the counts read at once are
        # final, and stay so.
        assert http(url + "/pause", method="POST")[0] == 200
        m = parse_metrics(http(url + "/metrics")[2].decode())
        time.sleep(0.3)
        again = parse_metrics(http(url + "/metrics")[2].decode())
        for svc in sums:
            k = ("pyspyc_agent_stacks_total", '{service="%s"}' % svc)
            assert m[k] == again[k], (svc, m[k], again[k])
    finally:
        assert a.stop() == 0, a.text()
    poll()
    for svc in sums:
        assert sums[svc] == m[("pyspyc_agent_stacks_total", '{service="%s"}' % svc)], \
            (svc, sums, m)
    assert sums["busy"] > 1000 and sums["asleep"] > 1000, sums
    assert m[("pyspyc_agent_windows_written_total", "")] >= 20
    # Retention acted, and the newest window of each is all it may keep past keep_bytes.
    assert len(seen) > len(glob.glob(str(state / "*" / "*.folded")))
    assert biggest <= keep + 2 * 16 * 1024, biggest


def parse_metrics(text):
    """{(name, labels text): value}; every line a comment or a sample."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$', line)
        assert m, "bad metrics line: %r" % line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def test_metrics_and_pause(one_python, target, tmp_path):
    a = two_services(one_python, target, tmp_path, 63)
    try:
        url = a.url()

        def metrics():
            st, h, body = http(url + "/metrics")
            assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4")
            return parse_metrics(body.decode())

        assert wait_for(lambda: metrics()[("pyspyc_agent_stacks_total",
                                           '{service="web"}')] > 0, 15), a.text()
        m = metrics()
        for name in ("samples", "stacks", "errors", "torn", "late", "dropped"):
            for svc in ("web", "jobs"):
                assert ("pyspyc_agent_%s_total" % name, '{service="%s"}' % svc) in m
        assert m[("pyspyc_agent_processes", '{service="web"}')] == 1
        assert m[("pyspyc_agent_services", "")] == 2
        assert m[("process_cpu_seconds_total", "")] > 0
        assert m[("process_resident_memory_bytes", "")] > 1e6
        for k in ("pyspyc_agent_windows_written_total", "pyspyc_agent_disk_bytes",
                  "pyspyc_agent_write_errors_total", "pyspyc_agent_open_requests"):
            assert (k, "") in m, k

        st, h, body = http(url + "/pause?service=web", method="POST")
        assert st == 200 and body == b"paused 1 service\n", body
        st, h, body = http(url + "/pause?service=nosuch", method="POST")
        assert st == 404, body
        # Paused: its count stands still while the other's goes on.
        assert wait_for(lambda: metrics()[("pyspyc_agent_processes",
                                           '{service="web"}')] == 0, 5)
        before = metrics()
        time.sleep(1.0)
        after = metrics()
        web_k = ("pyspyc_agent_stacks_total", '{service="web"}')
        jobs_k = ("pyspyc_agent_stacks_total", '{service="jobs"}')
        assert after[web_k] == before[web_k], (before[web_k], after[web_k])
        assert after[jobs_k] > before[jobs_k]
        assert after[("pyspyc_agent_paused", '{service="web"}')] == 1
        assert after[("pyspyc_agent_services", "")] == 1
        # A rediscovery does not undo a pause.
        time.sleep(1.0)
        assert metrics()[web_k] == after[web_k]
        st, h, body = http(url + "/resume", method="POST")
        assert st == 200 and body == b"resumed 2 services\n", body
        assert wait_for(lambda: metrics()[web_k] > after[web_k], 5)
    finally:
        assert a.stop() == 0, a.text()


def local_address():
    """An address of this host that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_token(one_python, target, tmp_path):
    t = sleeper(target, one_python, 65)
    token = "s3cret-token-0123456789"
    addr = local_address() or "0.0.0.0"
    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st"),
               "--token", token], tmp_path, listen=addr + ":0")
    try:
        url = a.url()
        port = url.rsplit(":", 1)[1]
        url = "http://%s:%s" % ("127.0.0.1" if addr == "0.0.0.0" else addr, port)
        for tok in (None, "wrong", token[:-1], token + "x"):
            st, h, body = http(url + "/metrics", token=tok)
            assert st == 401 and h["WWW-Authenticate"].startswith("Bearer"), (tok, st)
        st, h, body = http(url + "/metrics", token=token)
        assert st == 200, body
        st, h, body = http(url + "/pause", method="POST")
        assert st == 401
    finally:
        assert a.stop() == 0, a.text()
    # Off loopback, no token: refused before anything starts.
    r = subprocess.run([PYSPYC, "agent", "--pid", str(t.pid), "--listen", addr + ":0",
                        "--state-dir", str(tmp_path / "st2")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert r.returncode == 8 and "is not a loopback address: set token" in r.stderr, r.stderr


def test_port_taken_and_stop_ends_requests(one_python, target, tmp_path):
    t = sleeper(target, one_python, 66)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([PYSPYC, "agent", "--pid", str(t.pid), "--listen",
                            "127.0.0.1:%d" % port, "--state-dir", str(tmp_path / "st")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
    finally:
        s.close()
    assert r.returncode == 1, r.stderr
    assert r.stderr == "pyspyc agent: cannot listen on 127.0.0.1:%d: Address already in " \
        "use\n" % port, r.stderr
    assert not (tmp_path / "st" / "default").exists()

    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st"), "--idle"], tmp_path)
    got = []
    try:
        url = a.url()
        th = threading.Thread(target=lambda: got.append(
            http(url + "/debug/pprof/profile?seconds=600", timeout=120)))
        th.start()
        time.sleep(1.5)
        began = time.time()
    finally:
        rc = a.stop()
    th.join(timeout=60)
    assert rc == 0, a.text()
    assert time.time() - began < 20
    assert got and got[0][0] == 200, got
    assert got[0][2][:2] == b"\x1f\x8b"  # what it had: a gzipped profile


def test_too_many_requests(one_python, target, tmp_path):
    t = sleeper(target, one_python, 67)
    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st")], tmp_path)
    got = []
    lock = threading.Lock()
    try:
        url = a.url()

        def ask():
            r = http(url + "/debug/pprof/profile?seconds=4")
            with lock:
                got.append(r[0])
        ths = [threading.Thread(target=ask) for _ in range(16)]
        for th in ths:
            th.start()
        assert wait_for(lambda: b"pyspyc_agent_open_requests 16" in
                        http(url + "/metrics")[2], 10)
        st, h, body = http(url + "/debug/pprof/profile?seconds=1")
        assert st == 503 and b"16 profile requests are open" in body, (st, body)
        for th in ths:
            th.join(timeout=60)
    finally:
        assert a.stop() == 0, a.text()
    assert got == [200] * 16, got


def test_flamegraph_endpoint(one_python, target, tmp_path):
    t = target(one_python, "split.py", 60)
    a = Agent(["--pid", str(t.pid), "--state-dir", str(tmp_path / "st")], tmp_path)
    try:
        url = a.url()
        st, h, body = http(url + "/flamegraph.svg?seconds=2&service=default")
        assert st == 200 and h["Content-Type"] == "image/svg+xml", body[:200]
        svg = tmp_path / "live.svg"
        svg.write_bytes(body)
        st, h, body = http(url + "/flamegraph.svg?seconds=1")
        assert st == 200 and b"spin_" in body
    finally:
        assert a.stop() == 0, a.text()
    from test_svg_browser import NODE, CHROMIUM, CONSUMERS, browse, check_page, check_standalone
    check_standalone(svg)
    text = svg.read_text()
    assert "spin_a" in text and "spin_b" in text
    if not (NODE and os.access(CHROMIUM, os.X_OK) and
            os.path.isdir(os.path.join(CONSUMERS, "node_modules", "playwright-core"))):
        pytest.skip("no headless Chromium to open the live flame graph in")
    rep = browse(svg, "spin_a", "spin_b")
    check_page(rep, rep["requests"][0])


# ---- real servers ----------------------------------------------------------

GUNICORN = "/usr/bin/gunicorn"


class Loader:
    """CLIENTS threads requesting /heavy and /light in turn until stopped."""

    def __init__(self, port, clients=2):
        self.port = port
        self.done = threading.Event()
        self.ok = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        n = 0
        while not self.done.is_set():
            path = "/heavy" if n % 2 == 0 else "/light"
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                            timeout=5) as r:
                    if r.status == 200:
                        self.ok += 1
                        n += 1
            except OSError:
                time.sleep(0.05)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=10)


def heavy_share(rows):
    h = rows.get("heavy_handler", [0, 0])[1]
    l_ = rows.get("light_handler", [0, 0])[1]
    assert h + l_ > 50, rows
    return h / float(h + l_)


def start_server(kind, port, tmp_path):
    if kind == "gunicorn":
        if not os.access(GUNICORN, os.X_OK):
            pytest.skip("needs Debian's gunicorn")
        return subprocess.Popen(["/usr/bin/python3", GUNICORN, "-w", "2", "-b",
                                 "127.0.0.1:%d" % port, "--chdir", APPS, "wsgi_split"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    from test_embedded import _uwsgi_binary, _uwsgi_python_plugin
    binary = _uwsgi_binary()
    plugin, why = _uwsgi_python_plugin()
    if not binary or not plugin:
        pytest.skip("needs uWSGI and its python3 plugin")
    return subprocess.Popen([binary, "--plugin", plugin, "--http-socket",
                             "127.0.0.1:%d" % port, "--master", "--processes", "2",
                             "--wsgi-file", os.path.join(APPS, "wsgi_split.py"), "--need-app",
                             "--die-on-term", "--disable-logging", "--no-orphans"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(tmp_path), start_new_session=True)


@contextlib.contextmanager
def loaded_server(kind, tmp_path):
    """A real server (2 workers) under Loader's load: yields (server, port);
    stops both, whatever happens."""
    port = free_port()
    server = start_server(kind, port, tmp_path)
    loader = None
    try:
        def up():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/light" % port,
                                            timeout=2) as r:
                    return r.status == 200
            except OSError:
                return server.poll() is not None
        assert wait_for(up, 30) and server.poll() is None, "%s did not start" % kind
        loader = Loader(port)
        yield server, port
    finally:
        if loader:
            loader.stop()
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@needs_go
@pytest.mark.serial  # a handler split: another test's load would be in it
@pytest.mark.parametrize("kind", ["gunicorn", "uwsgi"])
def test_real_server(kind, tmp_path):
    """A real server's workers from a configuration (its master's pid
    file): the heavy handler's 3/4 of the handlers' time, in the windows on
    disk and from `go tool pprof` against the live endpoint."""
    state = tmp_path / "st"
    with loaded_server(kind, tmp_path) as (server, port):
        pidfile = write(tmp_path / "master.pid", "%d\n" % server.pid)
        conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
window = 2s
rediscover = 1s
rate = 200
[service %s]
pidfile = %s
""" % (state, kind, pidfile))
        a = Agent(["-c", conf], tmp_path)
        try:
            top = go_pprof(tmp_path, "-top", "-sample_index=samples",
                           a.url() + "/t/%s/debug/pprof/profile?seconds=4" % kind)
            assert wait_for(lambda: len(windows(state / kind, ".pb.gz")) >= 3, 20), a.text()
        finally:
            rc = a.stop()
    assert rc == 0, a.text()
    live = heavy_share(parse_top(top)[0])
    assert abs(live - 0.75) < 0.1, (live, top)
    # The windows on disk, merged by go tool pprof as the README shows.
    merged = tmp_path / "merged.pb.gz"
    with open(str(merged), "wb") as f:
        f.write(subprocess.run(["go", "tool", "pprof", "-proto"] +
                               windows(state / kind, ".pb.gz"), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, check=True,
                               env=dict(os.environ, HOME=str(tmp_path))).stdout)
    rows, total = parse_top(go_pprof(tmp_path, "-top", "-sample_index=samples", str(merged)))
    assert abs(heavy_share(rows) - 0.75) < 0.1, rows
    tags = parse_tags(go_pprof(tmp_path, "-tags", "-sample_index=samples", str(merged)))
    assert tags["service_name"] == {kind: total}, tags


@needs_go
@pytest.mark.serial  # workers killed and replaced under load
def test_replaced_worker_followed(tmp_path):
    """gunicorn replaces a killed worker; the agent samples the new one."""
    with loaded_server("gunicorn", tmp_path) as (server, port):
        assert wait_for(lambda: len(workers(server.pid)) == 2, 30)
        conf = write(tmp_path / "agent.conf", """
[agent]
state_dir = %s
rediscover = 500ms
[service web]
match = gunicorn.*127\\.0\\.0\\.1:%d
pid_label = yes
""" % (tmp_path / "st", port))
        a = Agent(["-c", conf], tmp_path)
        try:
            url = a.url()
            old = workers(server.pid)
            os.kill(old[0], signal.SIGKILL)
            assert wait_for(lambda: len(workers(server.pid)) == 2 and
                            old[0] not in workers(server.pid), 30)
            new = [w for w in workers(server.pid) if w not in old]
            time.sleep(1.5)  # a rediscovery or two
            st, h, body = http(url + "/debug/pprof/profile?seconds=3")
            assert st == 200, body
        finally:
            rc = a.stop()
    assert rc == 0, a.text()
    # The new worker served requests and was sampled; the killed one is gone.
    total, rows, tags = samples_of(tmp_path, body)
    assert rows.get("heavy_handler", [0, 0])[1] > 0, rows
    assert str(new[0]) in tags["pid"], (new, tags["pid"])
    assert str(old[0]) not in tags["pid"], (old, tags["pid"])


def workers(master):
    try:
        return sorted(children_of(master))
    except OSError:
        return []
