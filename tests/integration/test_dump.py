"""pyspyc dump: every thread's stack once, as text or JSON, with --locals
and -s, on every CPython found."""
import json
import os
import re
import subprocess
import time

from conftest import APPS, PYSPYC, children_of, qualname, run_pyspyc, version_of, wait_for

NAMES = ["MainThread", "worker-1", "worker-2", 'sleeper "q"']
# The innermost function of each thread of dump_target.py, the method
# names as the version shows them.
QUOTED_REPR = "'it\\'s a \"quoted\"\\nline\\t\\x01'"  # repr(QUOTED)
HEADER = re.compile(r'^Thread (\d+|0x[0-9a-f]+) \((active|idle|unknown)(\+gil)?\)(?:: "(.*)")?$')
FRAME = re.compile(r"^    (\S.*) \((.*?)(?::(\d+))?\)$")


def parse_text(text):
    """{pid: {thread name: [(function, file, line, {local: repr})...]}} from
    the text output, asserting its grammar."""
    procs, threads, frames, section = {}, None, None, None
    for line in text.splitlines():
        m = re.match(r"^Process (\d+): ", line)
        if m:
            threads = procs.setdefault(int(m.group(1)), {})
            continue
        if not line.strip() or line.startswith(("Python v", "Parent process ")):
            continue
        m = HEADER.match(line)
        if m:
            frames = threads.setdefault(m.group(4) or m.group(1), [])
            continue
        m = FRAME.match(line)
        if m:
            frames.append((m.group(1), m.group(2), m.group(3), {}))
            continue
        if line in ("        Arguments:", "        Locals:"):
            section = line.strip()
            continue
        m = re.match(r"^            (\S+): (.*)$", line)
        assert m and frames, "unexpected line %r in:\n%s" % (line, text)
        frames[-1][3][m.group(1)] = (m.group(2), section)
    return procs


def dump(args, want=None, tries=4):
    """Run dump until want(result) holds (a thread may be caught between two
    waits), at most `tries` times; returns the last result."""
    for _ in range(tries):
        r = run_pyspyc(["dump"] + args)
        assert r.returncode == 0, r.stderr
        if want is None or want(r):
            break
        time.sleep(0.2)
    return r


def fn(frame):
    return frame[0].rsplit(".", 1)[-1]


def innermost_ok(threads):
    return (all(n in threads and threads[n] for n in NAMES) and
            fn(threads["MainThread"][0]) == "main" and
            fn(threads['sleeper "q"'][0]) == "sleeper" and
            fn(threads["worker-1"][0]) == "wait" and
            fn(threads["worker-2"][0]) == "wait")


def test_dump_threads(python, target):
    t = target(python, "dump_target.py")
    r = dump(["-p", str(t.pid)], lambda r: innermost_ok(parse_text(r.stdout)[t.pid]))
    threads = parse_text(r.stdout)[t.pid]
    assert set(threads) == set(NAMES), r.stdout
    assert innermost_ok(threads), r.stdout
    assert "hold_locals" in [f[0] for f in threads["worker-1"]]
    assert qualname(python, "Worker", "park") in [f[0] for f in threads["worker-2"]]
    main = threads["MainThread"]
    assert [f[0] for f in main][-2:] == ["main", "<module>"]
    assert main[-1][1] == "dump_target.py" and main[-1][2].isdigit()
    # The main thread's OS id is the pid.
    assert 'Thread %d (' % t.pid in r.stdout
    assert r.stdout.startswith("Process %d: " % t.pid)
    assert "\nPython v%d.%d" % version_of(python) in r.stdout


def test_dump_full_filenames_and_nolineno(one_python, target):
    t = target(one_python, "dump_target.py")
    r = dump(["-p", str(t.pid), "--full-filenames", "--nolineno"])
    main = parse_text(r.stdout)[t.pid]["MainThread"]
    assert main[-1][1] == os.path.join(APPS, "dump_target.py")
    assert all(f[2] is None for f in main)


def hold_locals_frame(threads):
    for f in threads.get("worker-1", []):
        if f[0] == "hold_locals":
            return f
    return None


def test_dump_locals(python, target):
    t = target(python, "dump_target.py")
    r = dump(["-p", str(t.pid), "--locals"],
             lambda r: hold_locals_frame(parse_text(r.stdout)[t.pid]) is not None)
    frame = hold_locals_frame(parse_text(r.stdout)[t.pid])
    assert frame, r.stdout
    loc = frame[3]
    v = version_of(python)
    args = {"count": "42", "ratio": "0.25", "rest": "<tuple of 0 items>",
            "opts": "<dict of 0 items>"}
    for name, want in args.items():
        assert loc.get(name) == (want, "Arguments:"), (name, loc)
    assert loc["stop"][0].startswith("<") and loc["stop"][1] == "Arguments:"
    local = {
        "label": "'hello dump'",
        "quoted": QUOTED_REPR,
        "data": "<dict of 3 items>",
        "items": "<list of 3 items>",
        "big": str(2 ** 100 + 7),
        "neg": "-123456789012345678901",
        "flag": "True",
        "nothing": "None",
        "pair": "<tuple of 2 items>",
        "raw": "\"\\x00bytes'\"" if v < (3, 0) else "b\"\\x00bytes'\"",
        "extra": "'captured'",  # a cell: its content is shown
    }
    for name, want in local.items():
        assert loc.get(name) == (want, "Locals:"), (name, loc.get(name), want)
    assert re.match(r"^<function at 0x[0-9a-f]+>$", loc["inner"][0]), loc["inner"]


def test_dump_json(python, target):
    t = target(python, "dump_target.py")

    def ok(r):
        doc = json.loads(r.stdout)
        ths = {th["name"]: th for th in doc["threads"]}
        return "worker-1" in ths and any(
            f["name"] == "hold_locals" for f in ths["worker-1"]["frames"])
    r = dump(["-p", str(t.pid), "--json", "--locals"], ok)
    doc = json.loads(r.stdout)
    assert doc["pid"] == t.pid
    assert doc["python"].startswith("%d.%d" % version_of(python))
    threads = {th["name"]: th for th in doc["threads"]}
    assert set(threads) == set(NAMES), [th["name"] for th in doc["threads"]]
    assert threads["MainThread"]["os_thread_id"] == t.pid
    for th in doc["threads"]:
        assert isinstance(th["thread_id"], int) and th["thread_id"] > 0
        assert isinstance(th["os_thread_id"], int)
        assert th["active"] in (True, False, None)
        assert th["owns_gil"] in (True, False, None)
        assert th["frames"], th
        for f in th["frames"]:
            assert f["filename"] and f["short_filename"] and isinstance(f["line"], int)
            assert isinstance(f["locals"], list)
    main = threads["MainThread"]["frames"]
    assert main[-1]["name"] == "<module>"
    assert main[-1]["filename"] == os.path.join(APPS, "dump_target.py")
    frame = [f for f in threads["worker-1"]["frames"] if f["name"] == "hold_locals"][0]
    loc = {l["name"]: l for l in frame["locals"]}
    assert loc["count"]["repr"] == "42" and loc["count"]["arg"] is True
    assert loc["label"]["repr"] == "'hello dump'" and loc["label"]["arg"] is False
    assert loc["quoted"]["repr"] == QUOTED_REPR
    assert loc["data"]["repr"] == "<dict of 3 items>"
    assert re.match(r"^0x[0-9a-f]+$", loc["data"]["addr"])
    # Without --locals, no "locals" member.
    r = dump(["-p", str(t.pid), "-j"])
    doc = json.loads(r.stdout)
    assert all("locals" not in f for th in doc["threads"] for f in th["frames"])


def test_dump_subprocesses(python, target):
    t = target(python, "dump_target.py", 60, "fork")
    assert wait_for(lambda: children_of(t.pid))
    child = children_of(t.pid)[0]
    r = dump(["-p", str(t.pid), "-s"],
             lambda r: all(set(th) == set(NAMES) for th in parse_text(r.stdout).values()))
    procs = parse_text(r.stdout)
    assert set(procs) == {t.pid, child}, r.stdout
    for pid in (t.pid, child):
        assert set(procs[pid]) == set(NAMES), (pid, r.stdout)
    assert "Parent process %d" % t.pid in r.stdout
    r = dump(["-p", str(t.pid), "-s", "--json"])
    doc = json.loads(r.stdout)
    assert doc["pid"] == t.pid and len(doc["children"]) == 1
    kid = doc["children"][0]
    assert kid["pid"] == child and kid["ppid"] == t.pid and kid["children"] == []
    assert {th["name"] for th in kid["threads"]} == set(NAMES)
    # Without -s the child is not shown.
    r = dump(["-p", str(t.pid)])
    assert set(parse_text(r.stdout)) == {t.pid}


def test_dump_subprocesses_under_a_shell(one_python):
    """A root that is not Python: its Python descendants are dumped."""
    sh = subprocess.Popen(["/bin/sh", "-c", '"$0" "$1" 60 & wait', one_python,
                           os.path.join(APPS, "dump_target.py")],
                          stdout=subprocess.PIPE, universal_newlines=True)
    kids = []
    try:
        assert sh.stdout.readline().strip() == "ready"
        kids = children_of(sh.pid)
        assert len(kids) == 1
        r = run_pyspyc(["dump", "-s", "-p", str(sh.pid), "-j"])
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["pid"] == sh.pid and doc["error"] == "not a Python process"
        assert doc["threads"] == []
        assert [c["pid"] for c in doc["children"]] == kids
        assert {th["name"] for th in doc["children"][0]["threads"]} == set(NAMES)
        r = run_pyspyc(["dump", "-s", "-p", str(sh.pid)])
        assert r.returncode == 0, r.stderr
        assert set(parse_text(r.stdout)) == set(kids)
        r = run_pyspyc(["dump", "-p", str(sh.pid)])
        assert r.returncode == 5 and "not a Python process" in r.stderr
    finally:
        for k in kids:
            os.kill(k, 9)
        sh.kill()
        sh.wait()


def test_dump_errors(one_python):
    r = run_pyspyc(["dump"])
    assert r.returncode == 2 and "--pid" in r.stderr
    r = run_pyspyc(["dump", "-p", "nope"])
    assert r.returncode == 2
    r = run_pyspyc(["dump", "-p", "4194000"])
    assert r.returncode == 3, r.stderr
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = run_pyspyc(["dump", "-p", str(sleeper.pid)])
        assert r.returncode == 5 and "not a Python process" in r.stderr
        r = run_pyspyc(["dump", "-s", "-p", str(sleeper.pid)])
        assert r.returncode == 5, r.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    r = run_pyspyc(["dump", "--help"])
    assert r.returncode == 0
    for opt in ("--pid", "--locals", "--json", "--subprocesses", "--full-filenames", "--nolineno"):
        assert opt in r.stdout


def test_dump_closed_pipe(one_python, target):
    """A reader that went away (| head) is not an error."""
    t = target(one_python, "dump_target.py")
    p = subprocess.Popen([PYSPYC, "dump", "--locals", "-p", str(t.pid)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0, err
    assert err == ""


def test_dump_gil(python, target):
    """Two threads spin: one of them is seen holding the GIL, and never more
    than one thread is said to."""
    t = target(python, "threads.py", 30)
    seen = False
    for _ in range(10):
        r = run_pyspyc(["dump", "-p", str(t.pid)])
        assert r.returncode == 0, r.stderr
        holders = [l for l in r.stdout.splitlines() if l.startswith("Thread ") and "+gil)" in l]
        assert len(holders) <= 1, r.stdout
        if holders and ('"alpha"' in holders[0] or '"beta"' in holders[0]):
            assert "(active+gil)" in holders[0] or "(idle+gil)" in holders[0]
            seen = True
            break
        time.sleep(0.1)
    assert seen, r.stdout
    doc = json.loads(run_pyspyc(["dump", "-p", str(t.pid), "--json"]).stdout)
    assert sum(1 for th in doc["threads"] if th["owns_gil"]) <= 1
