"""The synthetic CPython 3.14 and 3.15 targets (tests/apps/fake_cpython.c):
processes that lay out, in their own memory, what those interpreters lay out
(default and free-threaded builds), for testing where they cannot be
installed.  Each image is first checked by an independent decoder
(tests/apps/fake_cpython_check.py) against the stacks the fake says a
sampler must find; then pyspyc is run on it.  The default builds are read
with both backends (record: the eBPF program untags their frames' code
words and, on 3.15, checks that a chain ends at the thread's base frame;
dump and top with the user-space one; dump with the locals and the
threading module's thread names they lay out); the free-threaded builds
are refused by name, never misread."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import APPS, bpf_unavailable, parse_collapsed, run_pyspyc, why
from test_top import exited, tmux, top_line, wait_rows  # noqa: F401 (tmux: a fixture)

BUILDS = [("3.14", "0x030e", 0), ("3.14", "0x030e", 1),
          ("3.15", "0x030f", 0), ("3.15", "0x030f", 1)]
IDS = ["%s%s" % (v, "t" if ft else "") for v, _, ft in BUILDS]
DEFAULT = [b for b in BUILDS if not b[2]]
DEFAULT_IDS = [i for i in IDS if not i.endswith("t")]
FREE_THREADED = [b for b in BUILDS if b[2]]
FREE_THREADED_IDS = [i for i in IDS if i.endswith("t")]


def build(tmp_path_factory, version, pyv, ft, patch=0):
    exe = tmp_path_factory.mktemp("fake") / ("python%s%s" % (version, "t" if ft else ""))
    subprocess.check_call(["cc", "-O1", "-g", "-rdynamic", "-pthread", "-DPYV=" + pyv,
                           "-DFT=%d" % ft, "-DPATCH=%d" % patch, "-o", str(exe),
                           os.path.join(APPS, "fake_cpython.c")])
    return version, ft, str(exe)


@pytest.fixture(scope="module", params=BUILDS, ids=IDS)
def fake(request, tmp_path_factory):
    return build(tmp_path_factory, *request.param)


@pytest.fixture(scope="module", params=DEFAULT, ids=DEFAULT_IDS)
def fake_default(request, tmp_path_factory):
    return build(tmp_path_factory, *request.param)


@pytest.fixture(scope="module", params=DEFAULT, ids=DEFAULT_IDS)
def fake_patched(request, tmp_path_factory):
    """The next patch release (3.14.11, 3.15.3), one that moved fields:
    8 bytes inserted in the thread state before thread_id and in the code
    object before _co_firsttraceable (fake_cpython.c, PATCH)."""
    return build(tmp_path_factory, *request.param, patch=8)


@pytest.fixture(scope="module", params=FREE_THREADED, ids=FREE_THREADED_IDS)
def fake_ft(request, tmp_path_factory):
    return build(tmp_path_factory, *request.param)


class Running:
    """A fake started for the test: its pid and the stacks it printed
    (collapsed, with thread markers, count 1 each)."""

    def __init__(self, exe, seconds=30):
        self.p = subprocess.Popen([exe, str(seconds)], stdout=subprocess.PIPE,
                                  universal_newlines=True)
        line = self.p.stdout.readline()
        assert line.startswith("ready "), line
        self.pid = int(line.split()[1])
        self.stacks = [self.p.stdout.readline().rstrip("\n") for _ in range(2)]
        for s in self.stacks:
            assert s.startswith("thread ") and s.endswith(" 1"), s

    def expected(self):
        """{stack without its count}: what every sample of each thread is."""
        return {s.rpartition(" ")[0] for s in self.stacks}

    def stop(self):
        self.p.kill()
        self.p.wait()


@pytest.fixture
def running(fake_default):
    r = Running(fake_default[2])
    yield fake_default[0], r
    r.stop()


def test_image_decodes_to_its_stacks(fake):
    _, _, exe = fake
    r = subprocess.run([sys.executable, os.path.join(APPS, "fake_cpython_check.py"), exe],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    assert r.returncode == 0 and "all match" in r.stdout, r.stdout[-2000:]


def record(pid, out, *backend):
    return run_pyspyc(["record"] + list(backend) + ["-t", "-p", str(pid), "-d", "1.5",
                                                     "-r", "200", "-f", "raw", "-o", str(out)])


def check_recorded(r, out, fk, share):
    """Every thread sample on its thread's one stack, and each thread in at
    least share of the samples."""
    assert r.returncode == 0, r.stderr
    stacks = parse_collapsed(out.read_text())
    got = {";".join(frames) for frames, _ in stacks}
    # Every sample of each thread on its one stack: the fake's never
    # change, so there is no other stack to find.
    assert got == fk.expected(), why(sorted(got), sorted(fk.expected()), r.stderr)
    m = re.search(r"pyspyc: (\d+) samples", r.stderr)
    assert m and int(m.group(1)) >= 100, r.stderr
    for frames, count in stacks:
        assert count >= share * int(m.group(1)), why(stacks, r.stderr)


@pytest.mark.parametrize("name", ["user", "auto", "bpf"])
def test_record(running, tmp_path, name):
    """Both backends read them (auto takes bpf where the program loads).
    The user-space backend reads both threads at every tick: each is in
    nearly every sample.  The eBPF one samples the thread on a CPU at each
    interrupt: both spin, so each has a good share of the samples (the
    two together are every sample the run took)."""
    _, fk = running
    whynot = bpf_unavailable()
    if name == "bpf" and whynot:
        pytest.skip("eBPF backend: %s" % whynot)
    bpf = name == "bpf" or (name == "auto" and not whynot)
    out = tmp_path / "r.txt"
    r = record(fk.pid, out, "--backend", name)
    check_recorded(r, out, fk, 0.25 if bpf else 0.9)
    assert ("; backend bpf" if bpf else "; backend user") in r.stderr, r.stderr


def test_subprocess_under_bpf(fake_default, tmp_path):
    """With -s the eBPF backend is chosen before the fake is found (the
    root is a shell): the fake is found and sampled with it."""
    whynot = bpf_unavailable()
    if whynot:
        pytest.skip("eBPF backend: %s" % whynot)
    out = tmp_path / "s.txt"
    r = run_pyspyc(["record", "-s", "--backend", "auto", "-d", "1.5", "-f", "raw", "-o",
                    str(out), "--", "sh", "-c", "%s 5 >/dev/null; true" % fake_default[2]])
    assert r.returncode == 0, r.stderr
    assert "; backend bpf" in r.stderr and "not sampled" not in r.stderr, r.stderr
    text = out.read_text()
    assert "hot_loop (lib/model.py:22)" in text and "spin (worker.py:43)" in text, text


def test_dump_json(running):
    version, fk = running
    r = run_pyspyc(["dump", "--json", "-p", str(fk.pid)])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["python"].startswith(version + "."), d["python"]
    got = set()
    for th in d["threads"]:
        assert not th["truncated"], th
        frames = ["%s (%s:%d)" % (f["name"], f["filename"], f["line"])
                  for f in reversed(th["frames"])]
        got.add(";".join(frames))
    want = {s.split(";", 1)[1] for s in fk.expected()}
    assert got == want, why(sorted(got), sorted(want))
    # Names from threading._active (dump takes no OS name): each thread's
    # Thread object's _name, an inline value of a class's shared keys.
    names = {th["os_thread_id"]: th["name"] for th in d["threads"]}
    want = {int(s.split()[1]): s.split('"')[1] for s in fk.stacks}
    assert names == want, why(names, want)


# What the fakes' frames hold (fake_cpython.c, make_locals): per function,
# its bound locals in order, (name, is an argument, repr).  Unbound ones
# (a NULL reference) are left out; some references are tagged, some not.
LOCALS = {
    "hot_loop": [("acc", True, "'acc'")],
    "Model.compute": [("self", True, "None"), ("x", True, "b'xy'"),
                      ("acc", False, "<tuple of 2 items>"), ("i", False, "'i0'")],
    "main": [("w", False, "'widget'"), ("total", False, "None")],
    "<module>": [],
    "spin": [("table", True, "<tuple of 1 item>"), ("n", False, "b''")],
    "Worker.crunch": [("self", True, "None"), ("table", False, "<tuple of 0 items>")],
    "Worker.run": [("self", True, "None")],
}


def test_dump_locals(running):
    """dump --locals reads 3.14/3.15 frames' localsplus, _PyStackRefs
    untagged as the frame's code word is: every bound local with its
    value, unbound ones left out, as JSON and as text."""
    _, fk = running
    r = run_pyspyc(["dump", "--json", "--locals", "-p", str(fk.pid)])
    assert r.returncode == 0, r.stderr
    got = {}
    for th in json.loads(r.stdout)["threads"]:
        for f in th["frames"]:
            assert "locals_error" not in f, f
            got[f["name"]] = [(v["name"], v["arg"], v["repr"]) for v in f["locals"]]
            assert all(int(v["addr"], 16) % 8 == 0 for v in f["locals"]), f
    assert got == LOCALS, why(got, LOCALS)
    t = run_pyspyc(["dump", "--locals", "-p", str(fk.pid)])
    assert t.returncode == 0 and "unavailable" not in t.stdout, t.stdout
    assert "            i: 'i0'\n" in t.stdout and "Locals:\n            n: b''\n" in t.stdout, \
        t.stdout


def test_top(running, tmux):
    """top's rows: each of the fakes' functions, the two innermost ones
    holding about a thread each (two threads spin)."""
    _, fk = running
    tmux.run(top_line(["--backend", "user", "--pid", fk.pid]))
    want = {f.rsplit(" (", 1)[0] for s in fk.expected() for f in s.split(";")[1:]}
    s, rows = wait_rows(tmux, lambda rows, s: {r.name for r in rows} >= want and
                        all(r.own_s > 1.0 for r in rows if r.name in ("hot_loop", "spin")))
    assert {r.name for r in rows} == want, s
    tmux.keys("q")
    s, ok = tmux.wait_screen(lambda s: exited(s) is not None, 20)
    assert ok and exited(s) == 0, s


def test_patch_release_that_moved_fields(fake_patched, tmp_path):
    """Fields the table gives are taken from it; those it lacks (the
    data-stack top, _co_firsttraceable) follow their neighbours: record
    and dump find the exact stacks, lines and names of a release whose
    thread state and code object grew in the middle."""
    version, _, exe = fake_patched
    chk = subprocess.run([sys.executable, os.path.join(APPS, "fake_cpython_check.py"), exe],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=120)
    assert chk.returncode == 0 and "all match" in chk.stdout, chk.stdout[-2000:]
    fk = Running(exe)
    try:
        out = tmp_path / "r.txt"
        r = record(fk.pid, out, "--backend", "user")
        check_recorded(r, out, fk, 0.9)
        d = run_pyspyc(["dump", "--json", "-p", str(fk.pid)])
    finally:
        fk.stop()
    assert d.returncode == 0, d.stderr
    doc = json.loads(d.stdout)
    assert doc["python"] == {"3.14": "3.14.11", "3.15": "3.15.3"}[version], doc["python"]
    names = {th["os_thread_id"]: th["name"] for th in doc["threads"]}
    assert names == {int(x.split()[1]): x.split('"')[1] for x in fk.stacks}, names


def test_free_threaded_refused_by_name(fake_ft, tmp_path):
    version, _, exe = fake_ft
    fk = Running(exe)
    try:
        r = run_pyspyc(["record", "--backend", "user", "-p", str(fk.pid), "-d", "1",
                        "-o", str(tmp_path / "x.svg")])
        d = run_pyspyc(["dump", "-p", str(fk.pid)])
    finally:
        fk.stop()
    for res in (r, d):
        assert res.returncode == 5, res.stderr
        assert "runs a free-threaded build of Python %s, which this pyspyc does not " \
            "support" % version in res.stderr, res.stderr
    assert not (tmp_path / "x.svg").exists()
