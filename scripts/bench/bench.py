#!/usr/bin/python3
"""pyspyc's benchmarks: `make bench` runs this.

It measures what issue 6 asks and prints a plain-text table on stdout, then
writes BENCHMARKS.md (generated: never edit it by hand) with every figure
beside its target, how it was measured, and the machine it ran on.

  cost      profiler CPU per thread-sample, warm, stacks of 25 and 200 frames,
            on every CPython found
  fidelity  samples collected / expected: one busy thread at 100 Hz, 1 kHz and
            10 kHz; 8 busy threads at 1 kHz
  overhead  requests per second lost by a gunicorn + Flask app under wrk while
            pyspyc samples it (100 Hz, 1 kHz; default and --blocking), and
            beside a null sampler at the same rates (floor.c --tick: wake-ups
            and reads alone)
  memory    peak RSS of pyspyc after 1,000,000 samples of ~10,000 unique stacks
  output    time to write SVG, collapsed stacks and pprof for 50,000 stacks
  accuracy  error of the measured split on tests/apps/split.py (60/40), 100 Hz
  churn     reads, CPU and torn stacks per sample on thread-per-request servers
            (the demo app under its load; gunicorn -k gthread --threads 8 under
            wrk) beside one busy thread at the same rate, in the same run
  scaling   pyspyc's CPU for record -s on gunicorn with 1, 8, 32 and 128 idle
            sync workers and 2 and 8 busy ones (under wrk), 100 Hz and 1 kHz

Progress goes to stderr.  Every process it starts (targets, gunicorn, wrk,
pyspyc) runs in a session of its own and is killed with its whole process
group when the benchmark ends, whether it ends normally, on an error or on
Ctrl-C / SIGTERM.

Only the standard library; run it with /usr/bin/python3.  Its measuring
functions are also used by tests/integration/test_bench_smoke.py.
"""
import argparse
import datetime
import glob
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "apps")
SECTIONS = ("cost", "fidelity", "overhead", "memory", "output", "accuracy", "windows",
            "churn", "scaling", "agent", "bpf")

# Minor versions pyspyc profiles (as tests/integration/conftest.py).
SUPPORTED = {(2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13)}

# The issue's targets.
COST_TARGET_US = {25: 5.0, 200: 20.0}
COST_TARGET_VERSIONS = ((3, 11), (3, 12))
COST_LONGEST_S = 30.0
FIDELITY_TARGET_PCT = {100: 99.0, 1000: 99.0, 10000: 97.0}
OVERHEAD_TARGET_PCT = {100: 1.0, 1000: 2.0}
# The eBPF backend's (section 11 and the bpf rows of section 3).
BPF_COST_TARGET_US = {25: 2.0, 200: 10.0}
BPF_OVERHEAD_TARGET_PCT = {100: 0.5, 1000: 1.0}
BPF_FIDELITY_PCT = 1.0
MEMORY_TARGET_MIB = 32.0
SVG_TARGET_S = 1.0
ACCURACY_TARGET_PP = 2.0
CHURN_READS = 1.5          # reads per sample
CHURN_CPU_RATIO = 2.0      # CPU per sample against one busy thread's
CHURN_TORN_PCT = 0.5
CHURN_RATE = 200
SPLIT = {"spin_a": 60.0, "spin_b": 40.0}
# windows: resident memory may grow at most this much from the first tenth
# of the soak to its end (flat, but for allocator noise).
WINDOWS_GROWTH_MIB = 2.0
# scaling: pyspyc's CPU, % of one core, for this many idle workers at 100 Hz.
SCALING_TARGET = (32, 100, 1.0)


class Settings:
    """Durations and repetitions of one run: the full benchmark, or --quick."""

    def __init__(self, quick):
        self.quick = quick
        # cost: a warm-up run, then pairs of (short, long) runs at cost_rate,
        # the long one long enough for cost_extra more samples than the
        # short one at the rate the warm-up run reached.
        self.cost_rate = 2000
        self.cost_warm = 0.5
        self.cost_short = 0.5 if quick else 1.0
        self.cost_extra = 4000 if quick else 10000
        self.cost_pairs = 1 if quick else 3
        # the machine's floor under any sampler: seconds of waking alone
        self.floor_seconds = 2.0 if quick else 5.0
        # fidelity: (rate, seconds) for one busy thread; the threaded case.
        self.fidelity_one = ((100, 2.0), (1000, 2.0), (10000, 1.0)) if quick else \
            ((100, 10.0), (1000, 5.0), (10000, 3.0))
        self.fidelity_threads = (8, 1000, 2.0 if quick else 5.0)
        # overhead: rounds of every configuration, each a wrk run of seconds.
        self.overhead_rounds = 2 if quick else 5
        self.overhead_seconds = 2.0 if quick else 5.0
        # memory
        self.memory_samples = 100000 if quick else 1000000
        self.memory_threads = 4
        self.memory_rate = 10000
        # output
        self.output_runs = 1 if quick else 3
        # accuracy
        self.accuracy_seconds = 3.0 if quick else 10.0
        # windows: samples through the stack table, a window every
        # soak_window of them, RSS every soak_every windows
        self.soak_samples = 2000000 if quick else 10000000
        self.soak_window = 5000
        self.soak_every = 50 if quick else 200
        # churn: seconds of each side-by-side run, runs per workload
        self.churn_seconds = 3.0 if quick else 8.0
        self.churn_rounds = 1 if quick else 3
        # scaling: idle and busy worker counts, rates, seconds per run
        self.scaling_idle = (1, 8, 32) if quick else (1, 8, 32, 128)
        self.scaling_busy = (2,) if quick else (2, 8)
        self.scaling_mixed = (32,)
        self.scaling_tree = (32, 2)
        self.scaling_rates = (100, 1000)
        self.scaling_seconds = 3.0 if quick else 6.0
        # agent: idle seconds, loaded seconds and rounds, the soak and its
        # bound on disk
        self.agent_idle_s = 10.0 if quick else 60.0
        self.agent_load_s = 3.0 if quick else 10.0
        self.agent_rounds = 2 if quick else 4
        self.agent_soak_s = 60.0 if quick else 1800.0
        self.agent_soak_keep = "1M" if quick else "4M"


# ---- processes ----------------------------------------------------------

class Failed(Exception):
    """A measurement that could not be made; the message says why."""


class Run:
    """A finished child: exit status, its CPU time and peak RSS from wait4,
    wall time, and its stderr."""

    def __init__(self, status, cpu_s, maxrss_kib, wall_s, stderr):
        self.status = status
        self.cpu_s = cpu_s
        self.maxrss_kib = maxrss_kib
        self.wall_s = wall_s
        self.stderr = stderr


class Env:
    """The pyspyc binary, a scratch directory, and every process started,
    so that all of them can be killed at the end.  Use as a context
    manager."""

    def __init__(self, pyspyc, out_cost=None, rusage_run=None, log=None):
        self.pyspyc = pyspyc
        self.out_cost = out_cost
        self.rusage_run = rusage_run if rusage_run and os.access(rusage_run, os.X_OK) else None
        self.log = log or (lambda msg: None)
        self.tmp = tempfile.mkdtemp(prefix="pyspyc-bench-")
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start(self, argv, **kw):
        """Popen argv in a session of its own (so its whole group can be
        killed), remembered for close()."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        """Kill p's process group (a target's threads, gunicorn's workers)."""
        if p.returncode is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=10)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass
        # The group may outlive its leader: gunicorn's workers, the command
        # of a rusage_run that was killed alone.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for s in (p.stdout, p.stderr):
            if s:
                s.close()
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in reversed(list(self.procs)):
            self.stop(p)
        for dirpath, dirnames, filenames in os.walk(self.tmp, topdown=False):
            for n in filenames:
                os.unlink(os.path.join(dirpath, n))
            for n in dirnames:
                os.rmdir(os.path.join(dirpath, n))
        if os.path.isdir(self.tmp):
            os.rmdir(self.tmp)

    def spawn(self, argv, stdout, stderr):
        """Start argv, through rusage_run when there is one (see
        rusage_run.c: wait4 here would floor peak RSS at this driver's
        own).  Pass the result to finish()."""
        report = None
        if self.rusage_run:
            report = self.path("rusage-%d" % len(self.procs))
            if os.path.exists(report):
                os.unlink(report)
            argv = [self.rusage_run, report] + list(argv)
        return self.start(argv, stdout=stdout, stderr=stderr), report

    def finish(self, spawned, timeout):
        """Wait for a spawn()ed process; (exit status, user+sys CPU seconds,
        peak RSS in KiB or None when measured without rusage_run).  Kills it
        after timeout."""
        p, report = spawned
        end = time.monotonic() + timeout
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > end:
                    raise Failed("%s did not finish within %.0f s" % (p.args[-1], timeout))
                time.sleep(0.02)
        finally:
            self.stop(p)
        if not report:
            return p.returncode, ru.ru_utime + ru.ru_stime, None
        try:
            with open(report) as f:
                fields = dict(kv.split("=", 1) for kv in f.read().split())
        except OSError:
            raise Failed("%s could not run %s (exit %d)" % (self.rusage_run, p.args[2],
                                                             p.returncode))
        return int(fields["status"]), float(fields["cpu_s"]), int(fields["maxrss_kib"])

    def run(self, argv, timeout, stdout=subprocess.DEVNULL):
        """Run argv to its end; a Run with its CPU time and peak RSS."""
        with tempfile.TemporaryFile(dir=self.tmp) as err:
            t0 = time.monotonic()
            status, cpu, rss = self.finish(self.spawn(argv, stdout, err), timeout)
            wall = time.monotonic() - t0
            err.seek(0)
            text = err.read().decode("utf-8", "replace")
        return Run(status, cpu, rss, wall, text)

    def target(self, python, app, *args):
        """Start tests/apps/APP under python and wait for its "ready" line."""
        errfile = open(self.path("target-%d.err" % len(self.procs)), "w+b")
        try:
            p = self.start([python, os.path.join(APPS, app)] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=errfile)
        finally:
            errfile.close()
        ready, _, _ = select.select([p.stdout], [], [], 60)
        line = p.stdout.readline().decode("utf-8", "replace").strip() if ready else ""
        if line != "ready":
            self.stop(p)
            raise Failed("%s %s did not start (%r)" % (python, app, line))
        return p

    def record(self, pid, args, outputs=(".folded",), timeout=None, duration=None):
        """pyspyc record -p pid ARGS -o ... ; returns (Run, summary dict,
        collapsed text or None).  outputs are file endings; the first one
        that is collapsed stacks is read back."""
        paths = [self.path("rec%s" % o) for o in outputs]
        argv = [self.pyspyc, "record", "-p", str(pid)] + list(args)
        for path in paths:
            argv += ["-o", path]
        r = self.run(argv, timeout or (duration or 0) + 60)
        if r.status != 0:
            raise Failed("pyspyc exited %d: %s" % (r.status, r.stderr.strip()[-300:]))
        summary = parse_summary(r.stderr)
        folded = None
        for path in paths:
            if path.endswith(".folded"):
                with open(path) as f:
                    folded = f.read()
                break
        return r, summary, folded


SUMMARY_RE = re.compile(r"pyspyc: (\d+) samples, (\d+) errors, (\d+) torn stacks, "
                        r"(\d+) late ticks in ([\d.]+) s")


def parse_summary(stderr):
    """pyspyc's closing line: ticks sampled, errors, torn, late, elapsed."""
    m = SUMMARY_RE.search(stderr)
    if not m:
        raise Failed("no summary line from pyspyc: %r" % stderr[-300:])
    return {"ticks": int(m.group(1)), "errors": int(m.group(2)), "torn": int(m.group(3)),
            "late": int(m.group(4)), "elapsed": float(m.group(5))}


READS_RE = re.compile(r"and ([\d.]+) reads per sample")


def parse_reads(stderr):
    m = READS_RE.search(stderr)
    return float(m.group(1)) if m else None


def parse_collapsed(text):
    """[(frames, count)] from collapsed stacks."""
    out = []
    for line in text.splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            raise Failed("bad collapsed line: %r" % line[:200])
        out.append((head.split(";"), int(count)))
    return out


def total(stacks):
    return sum(c for _, c in stacks)


def frame_name(frame):
    """'spin_a (split.py:21)' -> 'spin_a' (as conftest.frame_name)."""
    return frame.rsplit(" (", 1)[0] if frame.endswith(")") else frame


# ---- the Pythons --------------------------------------------------------

def _pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.check_output(["pyenv", "root"], stderr=subprocess.DEVNULL,
                                       universal_newlines=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def python_version(exe):
    """(major, minor, 'X.Y.Z') of an interpreter, or None."""
    try:
        out = subprocess.check_output(
            [exe, "-c", "import sys; print('%d %d ' % sys.version_info[:2] + "
                        "sys.version.split()[0])"],
            stderr=subprocess.DEVNULL, universal_newlines=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor, full = out.split()
    return int(major), int(minor), full


def find_pythons(explicit=None):
    """[(label, path, (major, minor), full version)] of the supported
    interpreters.  Mirrors find_pythons() in tests/integration/conftest.py
    (pyenv's versions, then Debian's /usr/bin/pythonX.Y that are not
    symlinks, then PYSPYC_TEST_PYTHONS); keep the two rules equal.
    explicit: paths to use instead."""
    cands = []
    if explicit:
        cands = [(exe, exe) for exe in explicit]
    else:
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
        v = python_version(exe)
        if v and v[:2] in SUPPORTED:
            found.append((label, exe, v[:2], v[2]))
    return found


def pick(pythons, versions):
    """The interpreters of the given (major, minor) versions, Debian's first."""
    chosen = [p for p in pythons if p[2] in versions]
    return sorted(chosen, key=lambda p: (not p[0].startswith("debian-"), p[2]))


# ---- 1. cost per thread-sample ------------------------------------------

KERNEL_RE = re.compile(r"kernel: ([\d.]+) us per sample, ([\d.]+) us per interrupt elsewhere")


def measure_cost(env, python, depth, s, backend="user"):
    """Warm CPU per thread-sample on bench_deep.py DEPTH, by difference:
    pairs of a short and a long run at s.cost_rate, cost = (cpu_long -
    cpu_short) / (samples_long - samples_short), so the start-up (attach,
    ELF, a cold code-object cache, writing the output) is the same in both
    and cancels out.  The long run lasts long enough for s.cost_extra more
    samples at the rate the warm-up run reached (a slow sampler falls
    behind the requested rate), at most COST_LONGEST_S.  Thread-samples are
    the counts of the collapsed output (one busy thread: one per tick)."""
    p = env.target(python, "bench_deep.py", depth, 3600)
    kernel = []
    try:
        rate = ["-r", str(s.cost_rate), "--backend", backend]
        _, _, folded = env.record(p.pid, rate + ["-d", str(s.cost_warm)], duration=s.cost_warm)
        stacks = parse_collapsed(folded)
        depths = sorted(set(len(fr) for fr, _ in stacks))
        at_depth = sum(c for fr, c in stacks if len(fr) == depth)
        reached = max(total(stacks) / s.cost_warm, 1.0)
        long_s = round(min(COST_LONGEST_S,
                           s.cost_short + 1.1 * s.cost_extra / min(reached, s.cost_rate)), 1)
        diffs, whole, dsamples = [], [], []
        for i in range(s.cost_pairs):
            runs = []
            for secs in (s.cost_short, long_s):
                r, _, folded = env.record(p.pid, rate + ["-d", str(secs)], duration=secs)
                runs.append((r.cpu_s, total(parse_collapsed(folded))))
                m = KERNEL_RE.search(r.stderr)
                if m and secs == long_s:
                    kernel.append((float(m.group(1)), float(m.group(2))))
            (c0, n0), (c1, n1) = runs
            env.log("cost %s %d frames, pair %d: %.3f s CPU for %d samples, %.3f s for %d"
                    % (python, depth, i + 1, c0, n0, c1, n1))
            if n1 > n0:
                diffs.append(1e6 * (c1 - c0) / (n1 - n0))
                dsamples.append(n1 - n0)
            if n1:
                whole.append(1e6 * c1 / n1)
    finally:
        env.stop(p)
    if not diffs:
        raise Failed("the long runs took no more samples than the short ones")
    if backend == "bpf" and not kernel:
        raise Failed("no kernel time in the summaries (BPF statistics off?)")
    return {"kernel_us": statistics.median(k for k, _ in kernel) if kernel else 0.0,
            "elsewhere_us": statistics.median(e for _, e in kernel) if kernel else 0.0,
            "us": statistics.median(diffs), "pairs": diffs, "long_s": long_s,
            "whole_us": statistics.median(whole) if whole else None,
            "dsamples": min(dsamples), "depths": depths,
            "at_depth": at_depth / float(total(stacks)) if stacks else 0.0}


# ---- 2. rate fidelity ---------------------------------------------------

WORKER_RE = re.compile(r'^thread \d+ "worker-\d+"$')


def measure_fidelity(env, python, rate, seconds, threads=0):
    """Thread-samples collected / expected over `seconds` at `rate`: one
    busy thread (bench_deep.py 25: expected rate x seconds), or `threads`
    busy threads (busy_threads.py, sampled with -i so that threads waiting
    for the GIL count, and -t to count the workers' stacks alone: expected
    threads x rate x seconds)."""
    if threads:
        p = env.target(python, "busy_threads.py", threads, seconds + 30)
        extra, n = ["-i", "-t"], threads
    else:
        p = env.target(python, "bench_deep.py", 25, seconds + 30)
        extra, n = [], 1
    try:
        _, summ, folded = env.record(p.pid, ["-r", str(rate), "-d", str(seconds)] + extra,
                                     duration=seconds)
    finally:
        env.stop(p)
    stacks = parse_collapsed(folded)
    if threads:
        got = sum(c for fr, c in stacks if WORKER_RE.match(fr[0]))
    else:
        got = total(stacks)
    expected = n * rate * seconds
    return {"pct": 100.0 * got / expected, "got": got, "expected": expected,
            "late": summ["late"], "ticks": summ["ticks"], "errors": summ["errors"]}


# ---- 3. target overhead -------------------------------------------------

# (name, rate, mode): mode "" is pyspyc in its default mode (--backend
# auto: bpf where it loads), "user" and "bpf" with that backend, "blocking"
# with --blocking, "floor" not pyspyc but floor.c's null sampler,
# "ifloor" floor.c's null in-kernel sampler (--interrupt).
OVERHEAD_CONFIGS = (
    ("none", None, ""),
    ("100 Hz", 100, ""),
    ("1 kHz", 1000, ""),
    ("100 Hz --backend user", 100, "user"),
    ("1 kHz --backend user", 1000, "user"),
    ("100 Hz floor (no pyspyc)", 100, "floor"),
    ("1 kHz floor (no pyspyc)", 1000, "floor"),
    ("100 Hz --blocking", 100, "blocking"),
    ("1 kHz --blocking", 1000, "blocking"),
    ("100 Hz --backend bpf", 100, "bpf"),
    ("1 kHz --backend bpf", 1000, "bpf"),
    ("100 Hz interrupt floor (no pyspyc)", 100, "ifloor"),
    ("1 kHz interrupt floor (no pyspyc)", 1000, "ifloor"),
)
# The null sampler's read: ranges of 1 KB, each on its own page, about what
# pyspyc reads a sample of a gunicorn worker (its summary gives pages and
# bytes a read; the overhead section reports them).
FLOOR_PAGES = 11
READ_SIZE_RE = re.compile(r"; ([\d.]+) pages and ([\d.]+) KB a read")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid):
    """pid's child processes (as conftest.children_of)."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def serving(p, port, workers, wait_s):
    """Does server p answer /light on port with its `workers` workers up,
    within wait_s?"""
    end = time.monotonic() + wait_s
    while time.monotonic() < end and p.poll() is None:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/light" % port, timeout=2) as r:
                if r.status == 200 and len(children_of(p.pid)) >= workers:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def start_gunicorn(env, port, workers=2, wait_s=30):
    """Debian's gunicorn (its script run by /usr/bin/python3, as its #! line
    does) serving tests/apps/flask_app.py on 127.0.0.1:port with `workers`
    sync workers; returns once /light answers and the workers are up."""
    log = open(env.path("gunicorn.log"), "w+b")
    try:
        p = env.start(["/usr/bin/python3", "/usr/bin/gunicorn", "-w", str(workers), "-k", "sync",
                       "-b", "127.0.0.1:%d" % port, "--chdir", APPS, "flask_app:app"],
                      stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    if serving(p, port, workers, wait_s):
        return p
    with open(env.path("gunicorn.log"), "rb") as f:
        tail = f.read()[-400:].decode("utf-8", "replace")
    env.stop(p)
    raise Failed("gunicorn did not come up on port %d: %s" % (port, tail))


PROCESS_RE = re.compile(r"^process (\d+):")
WRK_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)


def wrk(env, port, seconds, connections=4):
    """One bounded wrk run (1 thread, fixed connections and duration)
    against /light: {rps, requests, errors}."""
    out = env.path("wrk.out")
    with open(out, "wb") as f:
        r = env.run(["wrk", "-t", "1", "-c", str(connections), "-d", "%ds" % round(seconds),
                     "http://127.0.0.1:%d/light" % port], timeout=seconds + 30, stdout=f)
    with open(out) as f:
        text = f.read()
    rps = WRK_RPS_RE.search(text)
    requests = re.search(r"^\s*(\d+) requests in", text, re.M)
    if r.status != 0 or not rps or not requests:
        raise Failed("wrk failed (%d): %s %s" % (r.status, text[-300:], r.stderr[-300:]))
    errors = 0
    for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), "
                r"read (\d+), write (\d+), timeout (\d+)"):
        e = re.search(pat, text)
        if e:
            errors += sum(int(g) for g in e.groups())
    return {"rps": float(rps.group(1)), "requests": int(requests.group(1)), "errors": errors}


def cpu_seconds(pids):
    """User + system CPU seconds the processes have used so far
    (/proc/PID/stat; ones gone count nothing)."""
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        t += int(fields[11]) + int(fields[12])  # utime, stime
    return t / float(os.sysconf("SC_CLK_TCK"))


def loaded_wrk(env, master, port, seconds):
    """wrk, and the CPU time gunicorn's workers spent over it per request."""
    workers = children_of(master)
    c0 = cpu_seconds(workers)
    w = wrk(env, port, seconds)
    used = cpu_seconds(workers) - c0
    w["worker_us"] = 1e6 * used / w["requests"] if w["requests"] else None
    return w


def pyspyc_during(env, argv, load, timeout):
    """Run pyspyc argv to its end, and load(its Popen) meanwhile: (what
    load returned, pyspyc's user+sys CPU seconds, its stderr)."""
    with tempfile.TemporaryFile(dir=env.tmp) as err:
        spawned = env.spawn(argv, subprocess.DEVNULL, err)
        try:
            result = load(spawned[0])
        except BaseException:
            env.stop(spawned[0])
            raise
        status, cpu, _ = env.finish(spawned, timeout)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if status != 0:
        raise Failed("%s exited %d: %s" % (os.path.basename(argv[0]), status, text[-300:]))
    return result, cpu, text


def wrk_after(env, master, port, seconds):
    """The load of an overhead run, for pyspyc_during: loaded_wrk half a
    second after the sampler started, if it still runs."""
    def load(p):
        time.sleep(0.5)
        if p.poll() is not None:
            raise Failed("the sampler ended before the load started")
        return loaded_wrk(env, master, port, seconds)
    return load


def overhead_run(env, master, port, config, seconds):
    """One wrk run under one configuration: pyspyc (if any) attaches to the
    gunicorn master with -s half a second before the load starts and stops
    about half a second after it ends."""
    _, rate, mode = config
    if rate is None:
        return loaded_wrk(env, master, port, seconds)
    if mode == "floor":
        return floor_run(env, master, port, rate, seconds)
    if mode == "ifloor":
        return interrupt_floor_run(env, master, port, rate, seconds)
    folded = env.path("overhead.folded")
    argv = [env.pyspyc, "record", "-p", str(master), "-s", "-r", str(rate),
            "-d", str(seconds + 1.0), "-o", folded] + {
                "blocking": ["--blocking"], "bpf": ["--backend", "bpf"],
                "user": ["--backend", "user"]}.get(mode, [])
    w, cpu, text = pyspyc_during(env, argv, wrk_after(env, master, port, seconds),
                                 seconds + 60)
    summ = parse_summary(text)
    used = re.search(r"; backend (\w+)", text)
    w["backend"] = used.group(1) if used else "?"
    with open(folded) as f:
        stacks = parse_collapsed(f.read())
    w["worker_samples"] = 0
    for fr, c in stacks:
        m = PROCESS_RE.match(fr[0])
        if m and int(m.group(1)) != master:
            w["worker_samples"] += c
    w["cpu_s"], w["elapsed"] = cpu, summ["elapsed"]
    size = READ_SIZE_RE.search(text)
    if size:
        w["read_pages"], w["read_kb"] = float(size.group(1)), float(size.group(2))
    return w


def floor_run(env, master, port, rate, seconds):
    """One wrk run beside floor.c's null sampler instead of pyspyc: it wakes
    at rate and reads each worker's heap once a tick (FLOOR_PAGES ranges of
    1 KB on separate pages), from half a second before the load to about
    half a second after, and does nothing else."""
    if not env.floor or not os.access(env.floor, os.X_OK):
        raise Failed("%s is not built (make bench builds it)" % env.floor)
    workers = children_of(master)
    if not workers:
        raise Failed("gunicorn has no workers")
    argv = [env.floor, "--tick", str(rate), str(seconds + 1.0), str(FLOOR_PAGES)] + [
        str(p) for p in workers]
    w, cpu, text = pyspyc_during(env, argv, wrk_after(env, master, port, seconds),
                                 seconds + 60)
    w["cpu_s"], w["elapsed"] = cpu, seconds + 1.0
    return w


def interrupt_floor_run(env, master, port, rate, seconds):
    """One wrk run beside floor.c's null in-kernel sampler instead of
    pyspyc: a cpu-clock event on every CPU at rate, as the eBPF backend
    opens, each running a program that returns at once, from half a second
    before the load to about half a second after."""
    if not env.floor or not os.access(env.floor, os.X_OK):
        raise Failed("%s is not built (make bench builds it)" % env.floor)
    argv = [env.floor, "--interrupt", str(rate), str(seconds + 1.0)]
    w, cpu, text = pyspyc_during(env, argv, wrk_after(env, master, port, seconds),
                                 seconds + 60)
    w["cpu_s"], w["elapsed"] = cpu, seconds + 1.0
    return w


def measure_overhead(env, s):
    """Interleaved rounds: each runs every configuration once, in an order
    rotated by one per round; medians per configuration."""
    port = free_port()
    g = start_gunicorn(env, port)
    try:
        wrk(env, port, 2)  # warm-up: imports, caches, the CPU's clocks
        load0 = os.getloadavg()
        runs = {c[0]: [] for c in OVERHEAD_CONFIGS}
        for rnd in range(s.overhead_rounds):
            k = rnd % len(OVERHEAD_CONFIGS)
            for config in OVERHEAD_CONFIGS[k:] + OVERHEAD_CONFIGS[:k]:
                r = overhead_run(env, g.pid, port, config, s.overhead_seconds)
                env.log("overhead round %d, %s: %.0f req/s" % (rnd + 1, config[0], r["rps"]))
                runs[config[0]].append(r)
    finally:
        env.stop(g)
    base = statistics.median(r["rps"] for r in runs["none"])
    out = {"base": base, "configs": [], "load": (load0[0], os.getloadavg()[0])}
    for name, rate, mode in OVERHEAD_CONFIGS:
        rs = runs[name]
        rps = [r["rps"] for r in rs]
        med = statistics.median(rps)
        took = sorted(set(r["backend"] for r in rs if "backend" in r))
        row = {"name": name + (" (auto: %s)" % ", ".join(took) if not mode and took else ""),
               "rate": rate, "mode": mode, "median": med,
               "min": min(rps), "max": max(rps), "loss_pct": 100.0 * (1 - med / base),
               "errors": sum(r["errors"] for r in rs), "runs": len(rs)}
        per_request = [r["worker_us"] for r in rs if r["worker_us"] is not None]
        if per_request:
            row["worker_us"] = statistics.median(per_request)
            row["worker_cores"] = statistics.median(
                r["rps"] * r["worker_us"] / 1e6 for r in rs if r["worker_us"] is not None)
        if rate:
            row["cpu_pct"] = statistics.median(100.0 * r["cpu_s"] / r["elapsed"] for r in rs)
            if mode not in ("floor", "ifloor"):
                row["worker_samples"] = min(r["worker_samples"] for r in rs)
            sizes = [(r["read_pages"], r["read_kb"]) for r in rs if "read_pages" in r]
            if sizes:
                row["read_pages"] = statistics.median(p for p, _ in sizes)
                row["read_kb"] = statistics.median(kb for _, kb in sizes)
        out["configs"].append(row)
    return out


# ---- scaling: pyspyc's CPU against the number of processes ---------------

# The Python of the scaling section's process tree: gunicorn's.
SCALING_PYTHON = "/usr/bin/python3"
ASLEEP_RE = re.compile(r"; (\d+) samples of processes that had not run")
PROCESSES_RE = re.compile(r"; (\d+) processes")
INTERRUPTS_RE = re.compile(r"us per interrupt elsewhere, (\d+) interrupts")


def run_ns(pid):
    """CPU time every thread of pid has had, in ns (schedstat: exact, and
    up to date for running threads)."""
    t = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                t += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return t


def steady_cpu(env, procs, t0, seconds):
    """The CPU time of each pyspyc's threads in its steady state, from 1.5 s
    after t0 (its start) to 0.3 s before its end (-d seconds), when every
    process is attached and it only samples.  procs: the Popen of each
    (rusage_run's, when spawned through it).  For each, (ns of CPU, seconds
    of the span), or None when it could not be read."""
    time.sleep(max(0.0, t0 + 1.5 - time.monotonic()))
    pids = []
    for p in procs:
        kids = children_of(p.pid) if env.rusage_run else [p.pid]
        pids.append(kids[0] if kids else None)
    first = [(run_ns(pid), time.monotonic()) if pid else (None, 0.0) for pid in pids]
    time.sleep(max(0.0, t0 + seconds - 0.3 - time.monotonic()))
    spans = []
    for pid, (a, ta) in zip(pids, first):
        b, tb = (run_ns(pid), time.monotonic()) if pid else (None, 0.0)
        # (Threads that end in between take their time with them: a
        # build with a thread per process shows none then.)
        ok = a is not None and b is not None and tb > ta and b >= a
        spans.append((b - a, tb - ta) if ok else None)
    return spans


def scaling_run(env, master, port, rate, seconds, conns):
    """pyspyc record -s -p MASTER -r RATE for `seconds` (under wrk with
    conns connections, if any): its CPU in % of one core over its whole run (user+sys over its
    elapsed time, from outside: attaching and writing included), and in
    its steady state (from 1.5 s after it started to 0.3 s before its end:
    every process attached, sampling alone), and what its summary says."""
    folded = env.path("scaling.folded")
    argv = [env.pyspyc, "record", "-p", str(master), "-s", "-r", str(rate),
            "-d", str(seconds), "-o", folded]
    steady = {}

    def measure(p):
        got = steady_cpu(env, [p], time.monotonic(), seconds)[0]
        if got:
            steady["pct"] = 100.0 * got[0] / 1e9 / got[1]

    def load(p):
        m = threading.Thread(target=measure, args=(p,))
        m.start()
        try:
            if conns:
                time.sleep(0.3)
                wrk(env, port, max(1.0, seconds - 0.6), connections=conns)
        finally:
            m.join()
    _, cpu, text = pyspyc_during(env, argv, load, seconds + 120)
    summ = parse_summary(text)
    asleep = ASLEEP_RE.search(text)
    procs = PROCESSES_RE.search(text)
    # The eBPF program's time, on the CPUs it interrupted: its walks plus
    # what every other interrupt pays.
    kernel, ints = KERNEL_RE.search(text), INTERRUPTS_RE.search(text)
    kernel_pct = None
    if kernel and ints and summ["elapsed"]:
        others = max(0, int(ints.group(1)) - summ["ticks"])
        kernel_pct = 100.0 * (float(kernel.group(1)) * summ["ticks"] +
                              float(kernel.group(2)) * others) / 1e6 / summ["elapsed"]
    return {"cpu_pct": 100.0 * cpu / summ["elapsed"] if summ["elapsed"] else None,
            "steady_pct": steady.get("pct"), "kernel_pct": kernel_pct,
            "samples": summ["ticks"], "late": summ["late"],
            "asleep": int(asleep.group(1)) if asleep else 0,
            "processes": int(procs.group(1)) if procs else None}


def settle(master, quiet_s=0.01, longest_s=60):
    """Wait until the workers have booted: gunicorn answers once one worker
    is up, while the others may still be importing the app for seconds.
    Settled: the master and its workers used under quiet_s of CPU in a
    second."""
    end = time.monotonic() + longest_s
    last = None
    while time.monotonic() < end:
        now = cpu_seconds([master] + children_of(master))
        if last is not None and now - last < quiet_s:
            return
        last = now
        time.sleep(1.0)


def scaling_label(workers, conns):
    if not conns:
        return "%d idle" % workers
    if conns == 2 * workers:
        return "%d busy" % workers
    return "%d, %d requests at a time" % (workers, conns)


def measure_scaling(env, s):
    """For each worker count: one gunicorn, then a run per rate."""
    rows = []
    # (workers, wrk's connections): idle, every worker busy (two requests
    # each in flight), and a few busy among many (two requests in flight).
    for workers, conns in [(n, 0) for n in s.scaling_idle] + \
                          [(n, 2 * n) for n in s.scaling_busy] + \
                          [(n, 2) for n in s.scaling_mixed]:
        port = free_port()
        g = start_gunicorn(env, port, workers, wait_s=30 + workers)
        try:
            settle(g.pid)
            if conns:
                wrk(env, port, 1)  # warm-up
            for rate in s.scaling_rates:
                r = scaling_run(env, g.pid, port, rate, s.scaling_seconds, conns)
                env.log("scaling: %s at %s: pyspyc %.2f%% of a core, %s steady" % (
                    scaling_label(workers, conns), hz(rate), r["cpu_pct"],
                    "%.2f%%" % r["steady_pct"] if r["steady_pct"] is not None else "-"))
                r.update(label=scaling_label(workers, conns), workers=workers,
                         busy=conns > 0, rate=rate)
                rows.append(r)
        finally:
            env.stop(g)
    # Not gunicorn: sleepers that no request wakes, beside one busy process.
    n, b = s.scaling_tree
    tree = env.target(SCALING_PYTHON, "children.py", "mixed", n, b)
    try:
        for rate in s.scaling_rates:
            r = scaling_run(env, tree.pid, None, rate, s.scaling_seconds, 0)
            r.update(label="%d sleeping, %d busy (children.py)" % (n, b), workers=n + b,
                     busy=True, rate=rate)
            env.log("scaling: %s at %s: pyspyc %.2f%% of a core" % (
                r["label"], hz(rate), r["cpu_pct"]))
            rows.append(r)
    finally:
        env.stop(tree)
    return rows


# ---- 4. profiler memory -------------------------------------------------

def measure_memory(env, python, s):
    """Peak RSS (wait4's ru_maxrss) of one pyspyc run that collects
    s.memory_samples thread-samples of many_stacks.py (about 10,000 unique
    stacks), writing collapsed stacks and an SVG.  -i counts the threads
    waiting for the GIL, so s.memory_threads threads give that many
    thread-samples a tick; a 2 s run first measures the rate reached, from
    which the main run's duration follows (at most 10 minutes)."""
    p = env.target(python, "many_stacks.py", s.memory_threads, 3600)
    try:
        args = ["-i", "-r", str(s.memory_rate)]
        _, _, folded = env.record(p.pid, args + ["-d", "2"], duration=2)
        per_s = total(parse_collapsed(folded)) / 2.0
        if per_s <= 0:
            raise Failed("no samples in the calibration run")
        secs = min(600.0, round(1.05 * s.memory_samples / per_s + 1, 1))
        env.log("memory: %.0f thread-samples/s, %.1f s for %d" % (per_s, secs, s.memory_samples))
        r, summ, folded = env.record(p.pid, args + ["-d", str(secs)],
                                     outputs=(".folded", ".svg"), duration=secs)
    finally:
        env.stop(p)
    if r.maxrss_kib is None:
        raise Failed("peak RSS needs build/bench/rusage_run (make build/bench/rusage_run)")
    stacks = parse_collapsed(folded)
    return {"mib": r.maxrss_kib / 1024.0, "samples": total(stacks), "stacks": len(stacks),
            "seconds": secs, "ticks": summ["ticks"], "late": summ["late"]}


# ---- 5. output cost -----------------------------------------------------

OUT_COST_RE = re.compile(r"^out_cost format=(\S+) stacks=(\d+) frames=(\d+) samples=(\d+) "
                         r"bytes=(\d+) wall_s=([\d.]+) cpu_s=([\d.]+) runs=(\d+)$", re.M)


def measure_output(env, s):
    """scripts/bench/out_cost.c: each writer on a synthetic 50,000-stack
    profile, written as pyspyc writes its outputs; best of s.output_runs."""
    if not env.out_cost or not os.access(env.out_cost, os.X_OK):
        raise Failed("%s not built (make %s)" % (env.out_cost, "build/bench/out_cost"))
    d = env.path("out")
    os.mkdir(d)
    out = env.path("out_cost.txt")
    with open(out, "wb") as f:
        r = env.run([env.out_cost, d, "50000", str(s.output_runs)], timeout=600, stdout=f)
    with open(out) as f:
        text = f.read()
    if r.status != 0:
        raise Failed("out_cost exited %d: %s" % (r.status, r.stderr.strip()[-300:]))
    rows = []
    for m in OUT_COST_RE.finditer(text):
        rows.append({"format": m.group(1), "stacks": int(m.group(2)), "frames": int(m.group(3)),
                     "samples": int(m.group(4)), "bytes": int(m.group(5)),
                     "wall_s": float(m.group(6)), "cpu_s": float(m.group(7)),
                     "runs": int(m.group(8))})
    if not rows:
        raise Failed("no figures from out_cost: %r" % text[-300:])
    return rows


# ---- 6. accuracy --------------------------------------------------------

def measure_accuracy(env, python, s):
    """tests/apps/split.py (spin_a 60%, spin_b 40% of its CPU time) at
    100 Hz: each function's share of the samples (a stack counts for a
    function when one of its frames is that function, as the tests count)
    and its error in percentage points."""
    p = env.target(python, "split.py", s.accuracy_seconds + 30)
    try:
        _, _, folded = env.record(p.pid, ["-r", "100", "-d", str(s.accuracy_seconds)],
                                  duration=s.accuracy_seconds)
    finally:
        env.stop(p)
    stacks = parse_collapsed(folded)
    n = total(stacks)
    out = {"samples": n}
    for name, want in SPLIT.items():
        hit = sum(c for fr, c in stacks if any(frame_name(f) == name for f in fr))
        got = 100.0 * hit / n if n else 0.0
        out[name] = {"pct": got, "err": abs(got - want)}
    return out


# ---- the machine --------------------------------------------------------

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _command(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip()


def machine():
    """What the figures were measured on."""
    cpuinfo = _read("/proc/cpuinfo")
    m = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    vm = _command(["systemd-detect-virt", "--vm"])
    container = _command(["systemd-detect-virt", "--container"])
    vendor = " ".join(_read("/sys/class/dmi/id/" + f).strip()
                      for f in ("sys_vendor", "product_name")).strip()
    if not vm or vm == "none":
        vm = "yes (CPU flag hypervisor)" if re.search(r"\bhypervisor\b", cpuinfo) else \
             (vm or "unknown")
    if vendor:
        vm += " (%s)" % vendor
    return [
        ("CPU", m.group(1).strip() if m else "unknown"),
        ("cores", str(os.cpu_count())),
        ("memory", "%.1f GiB" % (int(mem.group(1)) / 1048576.0) if mem else "unknown"),
        ("kernel", os.uname().release),
        ("Debian", _read("/etc/debian_version").strip() or "unknown"),
        ("virtual machine", vm),
        ("container", container if container else "unknown"),
    ]


def commit():
    """HEAD's short hash, and whether the tree differs from it (apart from
    BENCHMARKS.md, which a run rewrites)."""
    h = _command(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = [l for l in _command(["git", "-C", ROOT, "status", "--porcelain",
                                  "--untracked-files=no"]).splitlines()
             if not l.endswith("BENCHMARKS.md")]
    return h + (" (with uncommitted changes)" if dirty else "")


# ---- the report ---------------------------------------------------------

def verdict(ok):
    return "met" if ok else "MISSED"


class Report:
    """What each section measured: rows for the table (section, what,
    measured, target, verdict), and Markdown for BENCHMARKS.md."""

    def __init__(self):
        self.rows = []
        self.md = []

    def row(self, section, what, measured, target="", result=""):
        self.rows.append((section, what, measured, target, result))

    def section(self, title, target, method):
        """A section of BENCHMARKS.md: its title, target and method."""
        self.md.append("## %s\n\nTarget: %s\n\nMethod: %s\n\n" % (title, target, method))

    def table(self, head, rows):
        """A Markdown table of a section's figures (none: nothing)."""
        if rows:
            self.md.append(md_table(head, rows) + "\n")

    def failed(self, section, what, why):
        self.row(section, what, "not measured", "", "n/a")
        self.md.append("%s: **not measured**: %s\n" % (what, why))

    def text(self):
        head = ("section", "measurement", "measured", "target", "result")
        widths = [max(len(r[i]) for r in self.rows + [head]) for i in range(5)]
        lines = []
        for r in [head] + self.rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if r is head:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def count(n):
    return "{:,}".format(n)


def judged(target_text, result):
    """The target column of a section's table: "<= 5 us: met"."""
    return "%s: %s" % (target_text, result) if target_text else result


def section_cost(env, rep, pythons, s):
    rep.section(
        "1. Profiler cost per thread-sample",
        "<= %.0f us at 25 frames and <= %.0f us at 200 frames on CPython %s."
        % (COST_TARGET_US[25], COST_TARGET_US[200],
           " and ".join("%d.%d" % v for v in COST_TARGET_VERSIONS)),
        "`tests/apps/bench_deep.py DEPTH` keeps one thread spinning on the CPU at the bottom "
        "of a stack of exactly DEPTH Python frames (`<module>`, `main` and DEPTH-2 distinct "
        "generated functions, each with its own code object); the collapsed stacks are "
        "checked to have that depth. pyspyc attaches with `record -p PID -r %d` and writes "
        "collapsed stacks; its thread-samples are their counts (one busy thread: one a "
        "tick). Warm: after a %.1f s warm-up run, %d pair(s) of runs, interleaved: one of "
        "%.1f s and one long enough for %s samples more at the rate the warm-up run reached "
        "(\"long run\"; a sampler slower than the rate falls behind it). Cost = (CPU of the "
        "long run - CPU of the short one) / (its samples - the short one's), so attaching, "
        "reading the ELF files, filling the code-object cache and writing the output, the "
        "same in both runs, cancel out. The figure is the median over the pairs; \"whole "
        "run\" is CPU / samples of a long run with all of that included; \"extra samples\" "
        "is the smallest difference of a pair."
        % (s.cost_rate, s.cost_warm, s.cost_pairs, s.cost_short, count(s.cost_extra)))
    table = []
    for label, exe, v, full in pythons:
        for depth in (25, 200):
            what = "%s %d frames" % (label, depth)
            env.log("cost: %s" % what)
            try:
                c = measure_cost(env, exe, depth, s)
            except Failed as e:
                rep.failed("cost", what, e)
                continue
            target = "<= %.0f us" % COST_TARGET_US[depth] if v in COST_TARGET_VERSIONS else ""
            res = verdict(c["us"] <= COST_TARGET_US[depth]) if target else "(no target)"
            if c["dsamples"] < s.cost_extra:
                res += " (only %s extra samples)" % count(c["dsamples"])
            rep.row("cost", what, "%.2f us" % c["us"], target, res)
            table.append((label, full, depth, "%.2f" % c["us"],
                          " / ".join("%.2f" % x for x in c["pairs"]),
                          "%.2f" % c["whole_us"] if c["whole_us"] else "-",
                          "%g s" % c["long_s"], count(c["dsamples"]),
                          "%s (%.0f%% at %d)" % (", ".join(str(d) for d in c["depths"]),
                                                 100 * c["at_depth"], depth),
                          judged(target, res)))
    rep.table(("Python", "version", "frames", "us / sample (warm, median)", "pairs",
               "whole run", "long run", "extra samples", "stack depths seen", "target"), table)
    section_floor(env, rep, s)


def run_floor(env, rate, seconds, ranges):
    """scripts/bench/floor.c at rate for seconds: {"wake": us per wake-up,
    "readN": us per process_vm_readv of N ranges, for each N of ranges}."""
    if not env.floor or not os.access(env.floor, os.X_OK):
        raise Failed("%s is not built (make bench builds it)" % env.floor)
    out = subprocess.run([env.floor, str(rate), str(seconds)] + [str(n) for n in ranges],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120 + 2 * seconds)
    if out.returncode != 0:
        raise Failed("floor exited with %d: %s" % (out.returncode, out.stderr.strip()))
    vals = {}
    for line in out.stdout.splitlines():
        k, _, v = line.partition(" ")
        vals[k] = float(v)
    if not {"wake"} | {"read%d" % n for n in ranges} <= set(vals):
        raise Failed("floor printed %r" % out.stdout)
    return vals


def measure_floor(env, s):
    """The CPU any sampler that sleeps between samples pays here, whatever
    its own work (scripts/bench/floor.c): per wake-up at s.cost_rate, and per
    process_vm_readv of 1 and 5 ranges on separate pages."""
    return run_floor(env, s.cost_rate, s.floor_seconds, (1, 5))


def section_floor(env, rep, s):
    """What the cost above stands on: no sampler of this design can go
    below waking up plus one read of the ranges a sample needs."""
    try:
        f = measure_floor(env, s)
    except Failed as e:
        rep.failed("cost", "floor", e)
        return
    rep.row("cost", "floor: wake-up at %s" % hz(s.cost_rate), "%.2f us" % f["wake"], "",
            "(this machine)")
    rep.row("cost", "floor: one read, 5 ranges", "%.2f us" % f["read5"], "", "(this machine)")
    rep.md.append(
        "The floor under these figures, measured on this machine by `scripts/bench/floor.c` "
        "(no pyspyc code): a thread that only sleeps to absolute deadlines at %s, as the "
        "sampler does, spends **%.2f us** of CPU per wake-up; one `process_vm_readv` of 1 "
        "range costs **%.2f us**, of 5 ranges on separate pages **%.2f us** (a 3.11+ "
        "sample of one thread reads about 5: the thread list head, the thread state, the "
        "GIL word, the current frame pointer and the data-stack chunk, all in one call). "
        "A sample of one thread cannot cost less than about %.1f us here, before any "
        "decoding.\n\n"
        % (hz(s.cost_rate), f["wake"], f["read1"], f["read5"], f["wake"] + f["read5"]))


def section_fidelity(env, rep, pythons, s):
    n, trate, tsecs = s.fidelity_threads
    rep.section(
        "2. Rate fidelity",
        "one busy thread: %s; the threaded case is reported." % ", ".join(
            ">= %.0f%% at %s" % (t, hz(r)) for r, t in sorted(FIDELITY_TARGET_PCT.items())),
        "thread-samples collected / expected. One busy thread: `tests/apps/bench_deep.py "
        "25`, `record -r RATE -d SECONDS`, collected = the counts of the collapsed output, "
        "expected = RATE x SECONDS. %d busy threads: `tests/apps/busy_threads.py %d` sampled "
        "with `-i` (threads waiting for the GIL count) and `-t` (each stack starts at its "
        "thread, so only the workers' stacks are counted), expected = %d x RATE x SECONDS. "
        "Late ticks are ticks pyspyc skipped because a sample overran." % (n, n, n))
    table = []
    for label, exe, v, full in pythons:
        cases = [(rate, secs, 0) for rate, secs in s.fidelity_one] + [(trate, tsecs, n)]
        for rate, secs, threads in cases:
            what = "%s %s%s" % (label, hz(rate), ", %d threads" % threads if threads else "")
            env.log("fidelity: %s" % what)
            try:
                f = measure_fidelity(env, exe, rate, secs, threads)
            except Failed as e:
                rep.failed("fidelity", what, e)
                continue
            want = None if threads else FIDELITY_TARGET_PCT.get(rate)
            target = ">= %.0f%%" % want if want else ""
            res = verdict(f["pct"] >= want) if want else "(no target)"
            rep.row("fidelity", what, "%.2f%%" % f["pct"], target, res)
            table.append((label, full, threads or 1, hz(rate), "%g s" % secs,
                          "%s / %s" % (count(f["got"]), count(int(f["expected"]))),
                          "%.2f%%" % f["pct"], count(f["late"]), judged(target, res)))
    rep.table(("Python", "version", "busy threads", "rate", "duration",
               "collected / expected", "fidelity", "late ticks", "target"), table)


def floor_said(floors, who, targets=None, whose="the target"):
    """What the floor rows of the overhead section leave for pyspyc under
    targets (the default mode's when None), in words."""
    said = []
    for f in floors:
        want = (targets or OVERHEAD_TARGET_PCT)[f["rate"]]
        spread = 100.0 * (f["max"] - f["min"]) / f["median"]
        if f["loss_pct"] >= want and f["loss_pct"] > spread / 2:
            left = ("at or over the %g%% %s allows: %s cannot be told to meet "
                    "it here, whatever its own work costs" % (want, whose, who))
        elif f["loss_pct"] > 0 and f["loss_pct"] > spread / 2:
            left = ("which leaves about %.1f%% of the %g%% %s allows for "
                    "pyspyc's own work" % (want - f["loss_pct"], want, whose))
        else:
            left = ("a loss within this run's noise (its runs were %.1f%% apart)" % spread)
        said.append("at %s it lost %.1f%% of the requests using %.1f%% of a core, %s"
                    % (hz(f["rate"]), f["loss_pct"], f.get("cpu_pct", 0.0), left))
    return "; ".join(said)


def section_overhead(env, rep, s):
    rep.section(
        "3. Target overhead",
        "<= %.0f%% of throughput lost at 100 Hz and <= %.0f%% at 1 kHz in the default mode; "
        "what --blocking costs is reported." % (OVERHEAD_TARGET_PCT[100],
                                                OVERHEAD_TARGET_PCT[1000]),
        "Debian's gunicorn (`/usr/bin/python3 /usr/bin/gunicorn -w 2 -k sync -b "
        "127.0.0.1:PORT`) serves `tests/apps/flask_app.py`; `wrk -t 1 -c 4 -d %gs` loads "
        "`/light` (1 ms of CPU a request) from 127.0.0.1. After a 2 s warm-up, %d rounds "
        "each run every configuration once, in an order rotated by one per round. With a "
        "profiler, `pyspyc record -p MASTER -s -r RATE -o x.folded` (following the workers) "
        "attaches half a second before the load starts and stops about half a second "
        "after it ends. Lost = 1 - median req/s / median req/s with no profiler; min - max "
        "shows the noise. Sampler CPU is pyspyc's (or the floor's, below) user+sys time over "
        "its run, in %% of one core; "
        "worker CPU / request is the user+sys time gunicorn's workers spent during the wrk "
        "run (/proc/PID/stat) divided by the requests served, which depends less than "
        "req/s on what else the machine runs; workers' cores is req/s x that, the CPU the "
        "workers got. gunicorn's two workers, wrk and pyspyc share the machine's cores, so "
        "what pyspyc takes is taken from the workers."
        % (s.overhead_seconds, s.overhead_rounds))
    env.log("overhead: gunicorn + wrk, %d rounds" % s.overhead_rounds)
    try:
        o = measure_overhead(env, s)
    except Failed as e:
        rep.failed("overhead", "gunicorn + Flask", e)
        return
    table = []
    base = o["configs"][0]
    # How far apart the runs of a configuration and of the unprofiled one
    # were, at worst: a loss smaller than that cannot be told from the noise.
    def spread(c):
        return 100.0 * (c["max"] - c["min"]) / c["median"]

    faster, unclear = [], []
    worst = 0.0
    for c in o["configs"]:
        noise = max(spread(c), spread(base))
        want = (BPF_OVERHEAD_TARGET_PCT.get(c["rate"]) if c["mode"] == "bpf" else
                None if c["mode"] else OVERHEAD_TARGET_PCT.get(c["rate"]))
        target = "<= %g%%" % want if want is not None else ""
        if c["rate"] is None:
            res, measured = "", "%.0f req/s" % c["median"]
        else:
            if not target:
                res = "(reported)"
            elif noise > want:
                res = "median %s, noise %.1f%%: inconclusive" % (
                    verdict(c["loss_pct"] <= want), noise)
                unclear.append(c["name"])
                worst = max(worst, noise)
            else:
                res = verdict(c["loss_pct"] <= want)
            measured = "%.1f%% lost" % c["loss_pct"]
            if "worker_us" in c and "worker_us" in base:
                measured += ", worker CPU/request %+.1f%%" % (
                    100.0 * (c["worker_us"] / base["worker_us"] - 1))
            if c["median"] > 1.02 * base["max"]:
                faster.append(c["name"])
        rep.row("overhead", c["name"], measured, target, res)
        table.append((c["name"], "%.0f" % c["median"], "%.0f - %.0f" % (c["min"], c["max"]),
                      "-" if c["rate"] is None else "%.1f%%" % c["loss_pct"],
                      "%.0f us" % c["worker_us"] if "worker_us" in c else "-",
                      "%.2f" % c["worker_cores"] if "worker_cores" in c else "-",
                      "%.1f%%" % c["cpu_pct"] if "cpu_pct" in c else "-",
                      count(c["worker_samples"]) if "worker_samples" in c else "-",
                      c["errors"], judged(target, res)))
    rep.table(("configuration", "median req/s", "min - max", "lost", "worker CPU / request",
               "workers' cores", "sampler CPU", "worker samples (fewest)", "errors", "target"),
              table)
    rep.md.append("Load average (1 min) %.2f when the rounds began, %.2f when they ended.\n\n"
                  % o["load"])
    floors = [c for c in o["configs"] if c["mode"] == "floor"]
    if floors:
        sized = [c for c in o["configs"] if not c["mode"] and "read_pages" in c]
        size = "; ".join("%.1f pages and %.1f KB a read at %s" % (
            c["read_pages"], c["read_kb"], hz(c["rate"])) for c in sized)
        said = floor_said(floors, "a sampler that wakes and reads that often")
        rep.md.append(
            "The floor rows are not pyspyc: `scripts/bench/floor.c --tick` wakes at the "
            "rate, as pyspyc's sampler does, and reads each worker's heap once a tick, %d "
            "ranges of 1 KB on separate pages%s, and does nothing else (no frames found, "
            "named or counted): what any sampler that wakes and reads that often pays on "
            "this machine, with the noise of its min - max. %s.\n\n"
            % (FLOOR_PAGES, " (pyspyc's runs read %s, by their summaries)" % size
               if size else "", said[:1].upper() + said[1:]))
    ifloors = [c for c in o["configs"] if c["mode"] == "ifloor"]
    if ifloors:
        who = "a sampler that interrupts the running threads that often"
        said = floor_said(ifloors, who)
        bpf_said = floor_said(ifloors, who, BPF_OVERHEAD_TARGET_PCT, "the eBPF backend's target")
        rep.md.append(
            "The interrupt floor rows are not pyspyc either: `scripts/bench/floor.c "
            "--interrupt` opens a cpu-clock event on every CPU at the rate, as the eBPF "
            "backend does, each running a program that returns at once: what any sampler "
            "that interrupts the running threads that often pays on this machine (a virtual "
            "machine's timer interrupts are dear), before it reads a byte of a stack, with "
            "the noise of its min - max. Against the default mode's target: %s. Against the "
            "eBPF backend's own: %s.\n\n" % (said, bpf_said))
    if unclear:
        rep.md.append(
            "The runs of a configuration or of the unprofiled one were up to %.1f%% apart "
            "(min to max), more than the target for %s: this machine was too noisy for a "
            "verdict there, and the median is only an indication. The "
            "workers' CPU per request depends much less on that noise; it shows what "
            "sampling costs the workers themselves, not what pyspyc's own CPU takes from "
            "them.\n\n" % (worst, " and ".join(unclear)))
    if faster:
        rep.md.append(
            "Note: with %s the server served over 2%% more requests than in any run "
            "without a profiler. Compare the workers' cores: where the CPU per request "
            "stayed the same, the workers got more CPU time a second, presumably from other "
            "work on a machine whose cores are shared (for example, the scheduler may give "
            "a worker that wakes from pyspyc's stop an earlier turn); read such a row as "
            "this machine's noise, not as a gain.\n\n" % " and ".join(faster))


def section_memory(env, rep, pythons, s):
    rep.section(
        "4. Profiler memory",
        "<= %.0f MiB peak RSS after 1,000,000 samples with about 10,000 unique stacks."
        % MEMORY_TARGET_MIB,
        "`tests/apps/many_stacks.py %d` runs %d threads through a generated call tree of "
        "10,000 leaf paths; `record -i -r %d -o x.folded -o x.svg` (-i counts the threads "
        "waiting for the GIL too, so each thread, and the main thread waiting for them, "
        "gives a thread-sample every tick). A 2 s run measures the rate of thread-samples; "
        "the measured run lasts long enough for %s of them. Peak RSS is the ru_maxrss of "
        "that run; the unique stacks are the lines of its collapsed output."
        % (s.memory_threads, s.memory_threads, s.memory_rate, count(s.memory_samples)))
    if not pythons:
        rep.failed("memory", "peak RSS", "no Python found")
        return
    label, exe, _, full = pythons[0]
    env.log("memory: %s" % label)
    try:
        m = measure_memory(env, exe, s)
    except Failed as e:
        rep.failed("memory", "peak RSS", e)
        return
    target = "<= %.0f MiB" % MEMORY_TARGET_MIB
    res = verdict(m["mib"] <= MEMORY_TARGET_MIB)
    if m["samples"] < s.memory_samples:
        res += " (only %s samples)" % count(m["samples"])
    rep.row("memory", "peak RSS, %s samples, %s stacks" % (count(m["samples"]),
                                                           count(m["stacks"])),
            "%.1f MiB" % m["mib"], target, res)
    rep.table(("Python", "thread-samples", "unique stacks", "duration", "ticks", "late ticks",
               "peak RSS", "target"),
              [("%s (%s)" % (label, full), count(m["samples"]), count(m["stacks"]),
                "%.1f s" % m["seconds"], count(m["ticks"]), count(m["late"]),
                "%.1f MiB" % m["mib"], judged(target, res))])


def section_output(env, rep, s):
    rep.section(
        "5. Output cost",
        "SVG in <= %.0f s for a profile of 50,000 unique stacks." % SVG_TARGET_S,
        "`scripts/bench/out_cost.c`, linked with pyspyc's library objects, builds a "
        "synthetic profile (50,000 unique stacks of depth 10 to 40 over 3,000 frames in 120 "
        "modules of application, standard-library and installed-package code, skewed "
        "counts) and writes it with each format's writer through `out_write_file()`, as "
        "`record -o` does (temporary file, fsync, rename), into a temporary directory. Best "
        "wall and best CPU time of %d run(s)." % s.output_runs)
    env.log("output: out_cost")
    try:
        rows = measure_output(env, s)
    except Failed as e:
        rep.failed("output", "writers", e)
        return
    table = []
    for r in rows:
        if r["format"] == "flamegraph":
            target, res = "<= %.0f s" % SVG_TARGET_S, verdict(r["wall_s"] <= SVG_TARGET_S)
        else:
            target, res = "", "(reported)"
        rep.row("output", "%s, %s stacks" % (r["format"], count(r["stacks"])),
                "%.3f s" % r["wall_s"], target, res)
        table.append((r["format"], count(r["stacks"]), count(r["samples"]),
                      "%.3f s" % r["wall_s"], "%.3f s" % r["cpu_s"],
                      "%.1f MB" % (r["bytes"] / 1e6), judged(target, res)))
    rep.table(("format", "stacks", "samples", "wall", "CPU", "size", "target"), table)


def section_accuracy(env, rep, pythons, s):
    rep.section(
        "6. Accuracy",
        "each function's share within %.0f percentage points of the truth."
        % ACCURACY_TARGET_PP,
        "`tests/apps/split.py` spends 60%% of its CPU time in spin_a and 40%% in spin_b "
        "(slices of 7.3 ms against the process's CPU clock); `record -r 100 -d %g`; a stack "
        "counts for a function when one of its frames is that function. Error = |measured "
        "share - true share| in percentage points. At 100 Hz for %g s a share rests on "
        "about %s samples: were they independent draws, the standard error of a 60%% share "
        "would be %.1f pp (sampling a periodic split at a fixed rate usually does better)."
        % (s.accuracy_seconds, s.accuracy_seconds, count(int(100 * s.accuracy_seconds)),
           100 * (0.6 * 0.4 / (100 * s.accuracy_seconds)) ** 0.5))
    target = "<= %.0f pp" % ACCURACY_TARGET_PP
    table = []
    for label, exe, v, full in pythons:
        env.log("accuracy: %s" % label)
        try:
            a = measure_accuracy(env, exe, s)
        except Failed as e:
            rep.failed("accuracy", label, e)
            continue
        worst = max(a[n]["err"] for n in SPLIT)
        res = verdict(worst <= ACCURACY_TARGET_PP)
        rep.row("accuracy", label, "spin_a %.1f%%, spin_b %.1f%% (error %.1f pp)"
                % (a["spin_a"]["pct"], a["spin_b"]["pct"], worst), target, res)
        table.append((label, full, count(a["samples"]),
                      "%.1f%% (%.1f pp)" % (a["spin_a"]["pct"], a["spin_a"]["err"]),
                      "%.1f%% (%.1f pp)" % (a["spin_b"]["pct"], a["spin_b"]["err"]),
                      judged(target, res)))
    rep.table(("Python", "version", "samples", "spin_a (60%)", "spin_b (40%)", "target"),
              table)


# ---- 7. windows ---------------------------------------------------------

SOAK_RE = re.compile(r"^window_soak windows=(\d+) samples=(\d+) new_stacks=(\d+) "
                     r"rss_kib=(\d+) seconds=([\d.]+)$", re.M)
SOAK_DONE_RE = re.compile(r"^window_soak done windows=(\d+) samples=(\d+) new_stacks=(\d+) "
                          r"dropped=(\d+) hwm_kib=(\d+)$", re.M)


def measure_windows(env, s):
    """scripts/bench/window_soak.c: synthetic samples, a quarter of them new
    stacks, through the stack table, a window closed (and written as
    collapsed stacks to /dev/null) every s.soak_window samples; RSS every
    s.soak_every windows."""
    if not getattr(env, "window_soak", None) or not os.access(env.window_soak, os.X_OK):
        raise Failed("%s is not built (make bench builds it)" % env.window_soak)
    out = subprocess.run([env.window_soak, str(s.soak_samples), str(s.soak_window),
                          str(s.soak_every)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=1800)
    if out.returncode != 0:
        raise Failed("window_soak exited with %d: %s" % (out.returncode, out.stderr.strip()))
    curve = [{"windows": int(m.group(1)), "samples": int(m.group(2)),
              "new": int(m.group(3)), "rss_mib": int(m.group(4)) / 1024.0,
              "seconds": float(m.group(5))} for m in SOAK_RE.finditer(out.stdout)]
    done = SOAK_DONE_RE.search(out.stdout)
    if len(curve) < 3 or not done:
        raise Failed("window_soak printed %r" % out.stdout[-300:])
    return curve, {"windows": int(done.group(1)), "samples": int(done.group(2)),
                   "new": int(done.group(3)), "dropped": int(done.group(4)),
                   "hwm_mib": int(done.group(5)) / 1024.0}


def section_windows(env, rep, s):
    rep.section(
        "7. Windows: memory over a long run",
        "resident memory flat (at most %.0f MiB more at the end than after the first tenth) "
        "over %s samples and %s windows with new unique stacks all the time."
        % (WINDOWS_GROWTH_MIB, count(s.soak_samples), count(s.soak_samples // s.soak_window)),
        "`scripts/bench/window_soak.c`, linked with pyspyc's library objects, feeds "
        "synthetic samples (stacks of 24 frames over 3,000 frames; one sample in four a "
        "stack never seen before, the rest from 500 hot stacks) through the real stack "
        "table as the sampler does (`stacktab_add_at`, with a timeline), with pyspyc's "
        "default bounds, and closes a window every %s samples with `stacktab_rotate`, "
        "writing each window's profile as collapsed stacks to /dev/null, as "
        "`record --period` does. RSS is read from /proc/self/status every %d windows. "
        "Without windows the same run would need %s unique stacks, past --max-stacks "
        "(200,000)." % (count(s.soak_window), s.soak_every, count(s.soak_samples // 4)))
    env.log("windows: window_soak")
    try:
        curve, done = measure_windows(env, s)
    except Failed as e:
        rep.failed("windows", "soak", e)
        return
    tenth = curve[max(1, len(curve) // 10)]
    growth = curve[-1]["rss_mib"] - tenth["rss_mib"]
    ok = growth <= WINDOWS_GROWTH_MIB and done["dropped"] == 0
    rep.row("windows", "RSS growth over %s windows" % count(done["windows"]),
            "%+.1f MiB" % growth, "<= %.0f MiB" % WINDOWS_GROWTH_MIB, verdict(ok))
    rep.md.append("%s samples in %s windows, %s of them new stacks, %s dropped; peak RSS "
                  "%.1f MiB.\n\n" % (count(done["samples"]), count(done["windows"]),
                                     count(done["new"]), count(done["dropped"]),
                                     done["hwm_mib"]))
    rep.table(("windows", "samples", "new stacks so far", "RSS", "seconds"),
              [(count(c["windows"]), count(c["samples"]), count(c["new"]),
                "%.1f MiB" % c["rss_mib"], "%.1f" % c["seconds"]) for c in curve])


# ---- 8. churn -----------------------------------------------------------

def start_gthread(env, port, threads=8):
    """gunicorn with one gthread worker of `threads` threads serving
    flask_app.py; returns (master, worker pid) once /light answers."""
    log = open(env.path("gthread.log"), "w+b")
    try:
        p = env.start(["/usr/bin/python3", "/usr/bin/gunicorn", "-w", "1", "-k", "gthread",
                       "--threads", str(threads), "-b", "127.0.0.1:%d" % port,
                       "--chdir", APPS, "flask_app:app"], stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    end = time.monotonic() + 30
    while time.monotonic() < end and p.poll() is None:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/light" % port, timeout=2) as r:
                kids = children_of(p.pid)
                if r.status == 200 and kids:
                    return p, kids[0]
        except OSError:
            pass
        time.sleep(0.1)
    env.stop(p)
    raise Failed("gunicorn -k gthread did not come up on port %d" % port)


def mean_depth(stacks):
    """Frames per counted stack, on average."""
    n = total(stacks)
    return sum(len(fr) * c for fr, c in stacks) / float(n) if n else 0.0


def churn_side_by_side(env, server_pid, busy_pid, seconds, backend):
    """Two pyspyc records at CHURN_RATE for `seconds` with `backend`, at
    once: the server and one busy thread.  {side: dict of reads, cpu (us
    per sample: the steady CPU of pyspyc's threads, schedstat from 1.5 s
    after the start to 0.3 s before the end, over the samples of that span,
    plus the eBPF program's time per sample), torn (%), samples, depth,
    steady_ms (per second), whole (us per sample over the whole run, set-up
    included, wait4)}."""
    runs = {}
    t0 = time.monotonic()
    for side, pid in (("server", server_pid), ("busy", busy_pid)):
        out = env.path("churn-%s.folded" % side)
        err = open(env.path("churn-%s.err" % side), "w+b")
        runs[side] = (env.spawn([env.pyspyc, "record", "--backend", backend, "-p", str(pid),
                                 "-r", str(CHURN_RATE), "-d", "%g" % seconds, "-o", out],
                                subprocess.DEVNULL, err),
                      out, err)
    steady = dict(zip(runs, steady_cpu(env, [r[0][0] for r in runs.values()], t0, seconds)))
    res = {}
    for side, (spawned, out, err) in runs.items():
        status, cpu, _ = env.finish(spawned, seconds + 60)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        err.close()
        if status != 0:
            raise Failed("pyspyc exited %d: %s" % (status, text.strip()[-300:]))
        summ = parse_summary(text)
        with open(out) as f:
            stacks = parse_collapsed(f.read())
        ticks = summ["ticks"] or 1
        if not steady[side] or not summ["elapsed"]:
            raise Failed("no steady CPU of pyspyc on the %s" % side)
        ns, span_s = steady[side]
        kernel = KERNEL_RE.search(text)
        # The samples of the span: the run's, pro rata (the load is even).
        span = ticks * span_s / summ["elapsed"]
        res[side] = {"reads": parse_reads(text),
                     "cpu": ns / 1e3 / max(1.0, span) +
                     (float(kernel.group(1)) if kernel else 0.0),
                     "kernel": float(kernel.group(1)) if kernel else 0.0,
                     "steady_ms": ns / 1e6 / span_s,
                     "whole": 1e6 * cpu / ticks,
                     "torn": 100.0 * summ["torn"] / max(1, total(stacks) + summ["torn"]),
                     "samples": summ["ticks"], "depth": mean_depth(stacks)}
    return res


def section_churn(env, rep, s):
    rep.section(
        "8. Thread churn: servers that start and end threads all the time",
        "<= %g reads per sample, CPU per sample <= %gx that of one busy thread at the same "
        "rate (same run), <= %g%% of thread stacks torn; on the demo app under its load and "
        "on gunicorn `-k gthread --threads 8`." % (CHURN_READS, CHURN_CPU_RATIO, CHURN_TORN_PCT),
        "demo: `tests/apps/webapp.py` (http.server's ThreadingHTTPServer, a thread per "
        "request) under /usr/bin/python3.11, loaded by `tests/apps/load.py PORT SECS 4` "
        "(4 clients, as `make demo`); gthread: Debian's gunicorn `-w 1 -k gthread --threads "
        "8` serving `tests/apps/flask_app.py`, loaded by `wrk -t 1 -c 8` on /light. The "
        "busy thread: `tests/apps/bench_deep.py DEPTH`, one thread spinning under a stack "
        "of DEPTH frames of distinct functions, under the same Python, DEPTH the server's "
        "mean depth in a 1 s record of it made first: each frame costs its share (the eBPF "
        "program reads it, user space names it), so a reference shallower than the server "
        "would compare depths, not threads. Two `pyspyc record -r %d -d %g` run at once, "
        "one on the server (the worker for gunicorn), one on the busy thread. Reads per "
        "sample from pyspyc's summary. CPU per sample: pyspyc's steady CPU (schedstat of "
        "its threads, from 1.5 s after its start to 0.3 s before its end) over the samples "
        "of that span (the run's, pro rata), plus the eBPF program's time per sample (the "
        "summary's `kernel:`, spent on the target's CPU); set-up (loading the eBPF program: "
        "tens of ms) is left out, as it is paid once a run, not a sample: the whole-run "
        "figure (wait4, set-up included) is shown beside it. Torn = torn stacks / (torn + "
        "stacks counted). %s; the verdicts are on the medians of the rounds, each round's "
        "servers started afresh. Each workload with each backend, both sides of a run with "
        "the same one: `--backend user`, the remote-memory walker, reads the process at "
        "every tick (a sample is a tick, the same count on both sides); `--backend bpf`, the "
        "default here, has a sample only where an interrupt found one of the target's "
        "threads on a CPU, so a server whose threads run a third of the time has a third "
        "of the busy thread's samples, and the costs paid by the second whatever the "
        "samples (the engine's wake-ups, reading the thread list each second) are spread "
        "over a third as many: the steady ms/s columns compare those directly."
        % (CHURN_RATE, s.churn_seconds,
           "%d rounds per workload" % s.churn_rounds
           if s.churn_rounds > 1 else "One round per workload"))
    table = []
    py = "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) else "/usr/bin/python3"
    for name, backend in (("demo", "user"), ("gthread", "user"), ("demo", "bpf"),
                          ("gthread", "bpf")):
        rounds = []
        for k in range(s.churn_rounds):
            env.log("churn: %s, %s, round %d of %d" % (name, backend, k + 1, s.churn_rounds))
            try:
                rounds.append(churn_round(env, s, py, name, backend))
            except Failed as e:
                rep.failed("churn", "%s, %s" % (name, backend), e)
                break
        if len(rounds) < s.churn_rounds:
            continue
        for k, r in enumerate(rounds):
            sv, bz = r["server"], r["busy"]
            table.append((name, backend, k + 1, count(sv["samples"]), "%.1f" % sv["depth"],
                          "%.2f" % sv["reads"], "%.1f (%.1f)" % (sv["cpu"], sv["kernel"]),
                          "%.2f" % sv["steady_ms"], "%.0f" % sv["whole"], "%.2f%%" % sv["torn"],
                          count(bz["samples"]), "%.1f" % bz["depth"], "%.2f" % bz["reads"],
                          "%.1f (%.1f)" % (bz["cpu"], bz["kernel"]), "%.2f" % bz["steady_ms"],
                          "%.0f" % bz["whole"], "%.2fx" % churn_ratio(r)))
        # The verdicts on the medians of the rounds: one side-by-side run
        # of 8 s swung from 1.1x to 2.4x on one machine within minutes.
        reads = statistics.median(r["server"]["reads"] for r in rounds)
        cpu = statistics.median(r["server"]["cpu"] for r in rounds)
        bcpu = statistics.median(r["busy"]["cpu"] for r in rounds)
        torn = statistics.median(r["server"]["torn"] for r in rounds)
        ratio = statistics.median(churn_ratio(r) for r in rounds)
        every = ", ".join("%.2fx" % churn_ratio(r) for r in rounds)
        name_be = "%s, %s" % (name, backend)
        checks = (("%s reads per sample" % name_be, "%.2f" % reads, "<= %g" % CHURN_READS,
                   reads <= CHURN_READS),
                  ("%s CPU per sample / one busy thread's" % name_be,
                   "%.2fx (%s; medians %.1f us / %.1f us)" % (ratio, every, cpu, bcpu)
                   if len(rounds) > 1 else "%.1f us / %.1f us = %.2fx" % (cpu, bcpu, ratio),
                   "<= %gx" % CHURN_CPU_RATIO, ratio <= CHURN_CPU_RATIO),
                  ("%s torn" % name_be, "%.2f%%" % torn, "<= %g%%" % CHURN_TORN_PCT,
                   torn <= CHURN_TORN_PCT))
        for what, measured, target, ok in checks:
            rep.row("churn", what, measured, target, verdict(ok))
        if backend == "bpf":
            per_s = statistics.median(r["server"]["steady_ms"] / r["busy"]["steady_ms"]
                                      for r in rounds if r["busy"]["steady_ms"])
            rep.row("churn", "%s steady CPU per second / one busy thread's" % name_be,
                    "%.2fx" % per_s, "", "(reported)")
    rep.table(("workload", "backend", "round", "samples", "depth", "reads / sample",
               "us CPU / sample (eBPF)", "steady ms/s", "whole run us / sample", "torn",
               "busy: samples", "busy: depth", "busy: reads", "busy: us CPU (eBPF)",
               "busy: steady ms/s", "busy: whole run", "CPU ratio"), table)


def churn_ratio(r):
    """A side-by-side run's CPU per sample on the server over the busy
    thread's."""
    return r["server"]["cpu"] / r["busy"]["cpu"] if r["busy"]["cpu"] else float("inf")


def churn_round(env, s, py, name, backend):
    """One side-by-side run on workload `name` (demo or gthread) with
    `backend`, its server, load and busy thread started for it and stopped
    after."""
    started = []
    try:
        port = free_port()
        if name == "demo":
            app = env.start([py, os.path.join(APPS, "webapp.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            started.append(app)
            ready, _, _ = select.select([app.stdout], [], [], 30)
            if not ready or not app.stdout.readline().startswith(b"ready"):
                raise Failed("webapp.py did not start")
            server = app.pid
            started.append(env.start([py, os.path.join(APPS, "load.py"), str(port),
                                      str(s.churn_seconds + 6), "4"],
                                     stdout=subprocess.DEVNULL))
        else:
            master, server = start_gthread(env, port)
            started.append(master)
            started.append(env.start(["wrk", "-t", "1", "-c", "8", "-d",
                                      "%ds" % round(s.churn_seconds + 6),
                                      "http://127.0.0.1:%d/light" % port],
                                     stdout=subprocess.DEVNULL))
        time.sleep(1.0)
        _, _, text = env.record(server, ["--backend", backend, "-r", str(CHURN_RATE), "-d", "1"],
                                duration=1)
        depth = int(round(mean_depth(parse_collapsed(text or ""))))
        busy = env.target(py, "bench_deep.py", max(3, depth), s.churn_seconds + 30)
        started.append(busy)
        time.sleep(0.5)
        return churn_side_by_side(env, server, busy.pid, s.churn_seconds, backend)
    finally:
        for p in reversed(started):
            env.stop(p)


def section_scaling(env, rep, s):
    n, rate, want = SCALING_TARGET
    rep.section(
        "9. Scaling with processes",
        "pyspyc's CPU <= %.0f%% of one core for %d idle workers at %s; reported for "
        "%s idle workers, %s busy ones and %s serving two requests at a time, at %s." % (
            want, n, hz(rate), ", ".join(str(x) for x in s.scaling_idle),
            " and ".join(str(x) for x in s.scaling_busy),
            " and ".join(str(x) for x in s.scaling_mixed),
            " and ".join(hz(r) for r in s.scaling_rates)),
        "Debian's gunicorn (`-w N -k sync`) serves `tests/apps/flask_app.py`, as in the "
        "overhead section; `pyspyc record -s -p MASTER -r RATE -d %g` samples the master "
        "and its workers, once they have booted (a second in which they used no CPU). "
        "Idle: no requests (every worker asleep in its accept loop). "
        "Busy: `wrk -t 1 -c 2N` loads `/light` through the run. Two requests at a "
        "time: `wrk -t 1 -c 2`, two requests in flight among many workers; gunicorn's "
        "sync workers all wait on the one listening socket, so a new connection may wake "
        "many of them (the not-read share says how many slept through a tick). Last, "
        "not gunicorn: `tests/apps/children.py mixed %d %d` under Debian's python3, %d "
        "children that sleep (waking every 0.2 s) and %d that spin, all sampled with "
        "`-s` on their parent: no request wakes the sleepers. Whole run: pyspyc's "
        "user+sys time over its run, in %% of one core, measured from outside "
        "(finding the interpreter, attaching to every process and writing the profile "
        "included: with one idle worker that is all of it). Steady: the CPU time of "
        "pyspyc's threads (/proc/PID/task/TID/schedstat) from 1.5 s after it started "
        "to 0.3 s before its end, when every process is attached and it only samples; "
        "the target is judged on it; per process divides it by the processes sampled "
        "(the master and the workers). Not read: the share of samples of a process "
        "that had not run since its last one, which cost no read: the kernel's context "
        "switches, counted by pyspyc's eBPF program, said so (without it: its CPU clock "
        "and GIL, two small reads). eBPF program: the sampling program's time in %% of "
        "one core, spent on the CPUs it interrupted (charged to whatever ran there), "
        "from the summary: its time per sample x the samples, plus its time per "
        "interrupt elsewhere x the other interrupts." % (
            s.scaling_seconds, s.scaling_tree[0], s.scaling_tree[1], s.scaling_tree[0],
            s.scaling_tree[1]))
    env.log("scaling: gunicorn with %s idle and %s busy workers" % (
        ", ".join(str(x) for x in s.scaling_idle), ", ".join(str(x) for x in s.scaling_busy)))
    try:
        rows = measure_scaling(env, s)
    except Failed as e:
        rep.failed("scaling", "gunicorn -w N", e)
        return
    table = []
    for r in rows:
        procs = r["processes"] or (r["workers"] + 1)
        steady = r["steady_pct"]
        target, res = "", ""
        if not r["busy"] and (r["workers"], r["rate"]) == (n, rate) and steady is not None:
            target = "<= %.0f%%" % want
            res = verdict(steady <= want)
            rep.row("scaling", "%d idle workers, %s" % (n, hz(rate)),
                    "%.2f%% of a core" % steady, target, res)
        table.append((r["label"], hz(r["rate"]),
                      procs, "%.2f%%" % r["cpu_pct"],
                      "%.2f%%" % steady if steady is not None else "-",
                      "%.3f%%" % (steady / procs) if steady is not None else "-",
                      "%.2f%%" % r["kernel_pct"] if r["kernel_pct"] is not None else "-",
                      count(r["samples"]),
                      "%.0f%%" % (100.0 * r["asleep"] / r["samples"]) if r["samples"] else "-",
                      count(r["late"]), judged(target, res)))
    rep.table(("sampled", "rate", "processes", "pyspyc CPU, whole run", "steady",
               "steady per process", "eBPF program (kernel)", "samples", "not read",
               "late ticks", "target"), table)
    # What waking alone costs at each rate, measured after the rows: the
    # steady figures stand on it.
    floors = []
    for r in s.scaling_rates:
        try:
            f = run_floor(env, r, s.floor_seconds, (1,))
        except Failed as e:
            rep.failed("scaling", "floor at %s" % hz(r), e)
            continue
        floors.append("at %s, %.2f us a wake-up, %.2f%% of a core" % (
            hz(r), f["wake"], f["wake"] * r / 1e4))
    if floors:
        rep.md.append(
            "The floor under the steady figures, measured right after them by "
            "`scripts/bench/floor.c` (no pyspyc code): a thread that only sleeps to "
            "absolute deadlines, as the sampling thread does, costs %s.\n\n"
            % "; ".join(floors))


# ---- 10. the agent ----------------------------------------------------------

# The agent's cost targets: % of a core idle, % of requests per second lost.
AGENT_IDLE_TARGET_PCT = 1.0
AGENT_LOSS_TARGET_PCT = 1.0
AGENT_WORKERS = 8
AGENT_RSS_GROWTH_MIB = 2.0
# (service, gunicorn worker class or "uwsgi")
AGENT_SERVICES = (("sync", "sync"), ("gthread", "gthread"), ("uwsgi", "uwsgi"))
METRIC_RE = re.compile(r'^([a-z_]+)(?:\{service="([^"]*)"\})? ([0-9.e+-]+)$', re.M)


def start_server(env, kind, port, workers):
    """Debian's gunicorn (sync or gthread, 4 threads a worker) or uWSGI
    (processes, no --enable-threads) serving tests/apps/wsgi_split.py with
    `workers` workers on 127.0.0.1:port; returns once /light answers and
    every worker is up."""
    log = open(env.path("%s.log" % kind), "w+b")
    try:
        if kind == "uwsgi":
            argv = ["uwsgi", "--plugin", "python3", "--http-socket", "127.0.0.1:%d" % port,
                    "--master", "--processes", str(workers), "--wsgi-file",
                    os.path.join(APPS, "wsgi_split.py"), "--need-app", "--die-on-term",
                    "--disable-logging", "--listen", "64"]
        else:
            argv = ["/usr/bin/python3", "/usr/bin/gunicorn", "-w", str(workers), "-k", kind,
                    "-b", "127.0.0.1:%d" % port, "--chdir", APPS, "wsgi_split"]
            if kind == "gthread":
                argv[6:6] = ["--threads", "4"]
        p = env.start(argv, stdout=log, stderr=subprocess.STDOUT, cwd=env.tmp)
    finally:
        log.close()
    if serving(p, port, workers, 60):
        return p
    env.stop(p)
    raise Failed("%s did not come up on port %d" % (kind, port))


class AgentRun:
    """pyspyc agent on a configuration file, its log in the scratch
    directory; url() once it serves."""

    def __init__(self, env, conf):
        self.env = env
        self.log_path = env.path("agent.log")
        self.err = open(self.log_path, "w")
        self.p = env.start([env.pyspyc, "agent", "-c", conf], stdout=subprocess.DEVNULL,
                           stderr=self.err)
        self.url = None
        end = time.monotonic() + 20
        while time.monotonic() < end and self.p.poll() is None:
            m = re.search(r"serving profiles on (http://[^/\s]+)/", self.log())
            if m and "sampling" in self.log():
                self.url = m.group(1)
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            raise Failed("the agent did not start: %s" % self.log()[-300:])

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def get(self, path, method="GET"):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()

    def metrics(self):
        """{(name, service or ""): value}"""
        return {(m.group(1), m.group(2) or ""): float(m.group(3))
                for m in METRIC_RE.finditer(self.get("/metrics"))}

    def cpu_s(self):
        return cpu_seconds([self.p.pid])

    def rss_mib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self):
        """SIGTERM (the open windows are written); its exit status."""
        status = None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                status = self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        else:
            status = self.p.returncode
        self.env.stop(self.p)
        self.err.close()
        return status


def agent_conf(env, servers, state, window, keep_bytes, one_service=False, backend="user"):
    """A configuration for the servers {name: (Popen, port)}: a service
    each (or one for all), chosen by pid file, 100 Hz, collapsed stacks
    beside the windows, the backend given."""
    lines = ["[agent]", "state_dir = %s" % state, "listen = 127.0.0.1:0", "rate = 100",
             "window = %s" % window, "keep_bytes = %s" % keep_bytes, "folded = yes",
             "rediscover = 5s", "min_free = 1%", "backend = %s" % backend]
    pids = []
    for name, (p, port) in sorted(servers.items()):
        pidfile = env.path("%s.pid" % name)
        with open(pidfile, "w") as f:
            f.write("%d\n" % p.pid)
        if one_service:
            pids.append(str(p.pid))
        else:
            lines += ["[service %s]" % name, "pidfile = %s" % pidfile]
    if one_service:
        lines += ["[service all]", "pid = %s" % ", ".join(pids)]
    path = env.path("agent-%d.conf" % len(env.procs))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def agent_idle(env, servers, s, one_service, backend="user"):
    """The agent's CPU, % of a core, over s.agent_idle_s with the servers idle."""
    conf = agent_conf(env, servers, env.path("idle-state"), "60s", "100M", one_service,
                      backend)
    a = AgentRun(env, conf)
    try:
        time.sleep(3.0)  # the first discovery, the first ticks
        procs = sum(v for (k, _), v in a.metrics().items() if k == "pyspyc_agent_processes")
        c0, t0 = a.cpu_s(), time.monotonic()
        time.sleep(s.agent_idle_s)
        used, wall = a.cpu_s() - c0, time.monotonic() - t0
    finally:
        status = a.stop()
    if status != 0:
        raise Failed("the agent exited %s: %s" % (status, a.log()[-300:]))
    return 100.0 * used / wall, int(procs)


def wrk_all(env, servers, seconds):
    """wrk against every server at once (1 thread, 4 connections each, on
    /light): the requests per second summed."""
    runs = []
    for name, (p, port) in sorted(servers.items()):
        out = open(env.path("wrk-%s.out" % name), "wb")
        runs.append((name, out, env.start(["wrk", "-t", "1", "-c", "4", "-d",
                                           "%ds" % round(seconds),
                                           "http://127.0.0.1:%d/light" % port], stdout=out)))
    total = 0.0
    for name, out, p in runs:
        p.wait(timeout=seconds + 60)
        out.close()
        env.stop(p)
        with open(env.path("wrk-%s.out" % name)) as f:
            m = WRK_RPS_RE.search(f.read())
        if not m:
            raise Failed("wrk against %s printed no rate" % name)
        total += float(m.group(1))
    return total


def agent_loaded(env, servers, s):
    """Interleaved rounds of wrk without the agent, with it on the user
    backend and with it on the bpf one (each started before the load,
    stopped after it), in an order rotated by one per round: the requests
    per second of each, and the agent's CPU in % of a core."""
    confs = {b: agent_conf(env, servers, env.path("load-state-" + b), "60s", "100M",
                           backend=b) for b in ("user", "bpf")}
    wrk_all(env, servers, 2)  # warm-up
    order = ["none", "user", "bpf"]
    rps = {k: [] for k in order}
    cpu = {k: [] for k in order}
    for rnd in range(s.agent_rounds):
        k = rnd % len(order)
        for which in order[k:] + order[:k]:
            if which == "none":
                rps["none"].append(wrk_all(env, servers, s.agent_load_s))
                continue
            a = AgentRun(env, confs[which])
            try:
                time.sleep(1.0)
                c0, t0 = a.cpu_s(), time.monotonic()
                rps[which].append(wrk_all(env, servers, s.agent_load_s))
                cpu[which].append(100.0 * (a.cpu_s() - c0) / (time.monotonic() - t0))
            finally:
                status = a.stop()
            if status != 0:
                raise Failed("the agent exited %s: %s" % (status, a.log()[-300:]))
            if which == "bpf" and "bpf backend" not in a.log():
                raise Failed("the agent did not sample with the bpf backend: %s"
                             % a.log()[-300:])
        env.log("agent round %d: %s" % (rnd + 1, ", ".join(
            "%s %.0f" % (k, rps[k][-1]) for k in order)))
    return rps, cpu


def folded_sum(path):
    n = 0
    with open(path) as f:
        for line in f:
            head, _, c = line.rstrip("\n").rpartition(" ")
            if head and c.isdigit():
                n += int(c)
    return n


def agent_soak(env, servers, s):
    """The agent under load for s.agent_soak_s with 10 s windows and a
    bound on disk retention must act on: each window's collapsed stacks
    read as soon as it appears; RSS and the state directory's size every
    poll.  At the end sampling is paused, the counted stacks read from
    /metrics, and the agent stopped (its open windows written): the
    windows must add up to them."""
    state = env.path("soak-state")
    keep = s.agent_soak_keep
    conf = agent_conf(env, servers, state, "10s", keep)
    loads = []
    for name, (p, port) in sorted(servers.items()):
        loads.append(env.start(["wrk", "-t", "1", "-c", "2", "-d",
                                "%ds" % round(s.agent_soak_s + 30),
                                "http://127.0.0.1:%d/light" % port],
                               stdout=subprocess.DEVNULL))
    a = AgentRun(env, conf)
    seen, sums, rss, sizes = set(), {}, [], []
    starts = {}

    def poll():
        total = 0
        for name in servers:
            d = os.path.join(state, name)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                path = os.path.join(d, n)
                try:
                    total += os.path.getsize(path)
                except OSError:
                    continue
                if n.endswith(".folded") and path not in seen:
                    try:
                        sums[name] = sums.get(name, 0) + folded_sum(path)
                    except OSError:
                        continue  # deleted before it was read: the check will fail
                    seen.add(path)
                    starts.setdefault(name, []).append(n[:-len(".folded")])
        sizes.append(total)

    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < s.agent_soak_s:
            time.sleep(2.0)
            poll()
            rss.append((time.monotonic() - t0, a.rss_mib()))
        a.get("/pause", "POST")  # replies once nothing more is counted
        m = a.metrics()
        counted = {name: int(m.get(("pyspyc_agent_stacks_total", name), -1))
                   for name in servers}
        dropped = sum(v for (k, _), v in m.items() if k == "pyspyc_agent_dropped_total")
        written = int(m.get(("pyspyc_agent_windows_written_total", ""), 0))
    finally:
        status = a.stop()
        for p in loads:
            env.stop(p)
    poll()
    if status != 0:
        raise Failed("the agent exited %s: %s" % (status, a.log()[-300:]))
    return {"rss": rss, "sizes": sizes, "sums": sums, "counted": counted, "keep": keep,
            "dropped": dropped, "windows": len(seen), "written": written, "starts": starts}


def parse_size(text):
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


# ---- 11. the eBPF backend -------------------------------------------------

def cpu_between(samples, a, b):
    """The CPU (s) the polled (time, run_ns) pairs show between times a and
    b, interpolated."""
    def at(t):
        prev = samples[0]
        for cur in samples:
            if cur[0] >= t:
                if cur[0] == prev[0]:
                    return cur[1]
                return prev[1] + (cur[1] - prev[1]) * (t - prev[0]) / (cur[0] - prev[0])
            prev = cur
        return samples[-1][1]
    return (at(b) - at(a)) / 1e9


def measure_bpf_fidelity(env, python, rate, seconds, threads):
    """--backend bpf: thread-samples against the target's CPU time x rate.
    The target's CPU (schedstat, every thread) is polled every 2 ms while
    pyspyc runs; the sampling window is the `elapsed` its summary gives,
    ending when it exited (writing the output takes a few ms)."""
    if threads:
        p = env.target(python, "busy_threads.py", threads, seconds + 30)
        extra = ["-t"]
    else:
        p = env.target(python, "bench_deep.py", 25, seconds + 30)
        extra = []
    polled, stop = [], []

    def poll():
        while not stop:
            polled.append((time.monotonic(), run_ns(p.pid) or 0))
            time.sleep(0.002)
    th = threading.Thread(target=poll)
    th.start()
    try:
        r, summ, folded = env.record(p.pid, ["--backend", "bpf", "-r", str(rate), "-d",
                                             str(seconds)] + extra, duration=seconds)
        t_end = time.monotonic()
    finally:
        stop.append(1)
        th.join()
        env.stop(p)
    stacks = parse_collapsed(folded)
    got = (sum(c for fr, c in stacks if WORKER_RE.match(fr[0])) if threads else total(stacks))
    cpu = cpu_between(polled, t_end - summ["elapsed"], t_end)
    expected = rate * cpu
    return {"pct": 100.0 * got / expected, "got": got, "expected": expected, "cpu": cpu,
            "torn": summ["torn"]}


def section_bpf(env, rep, pythons, s):
    rep.section(
        "11. The eBPF backend",
        "cost <= %.0f us per sample in all at 25 frames and <= %.0f us at 200 frames on "
        "3.11+ (user CPU + the program's kernel time); samples within %.0f%% of CPU time x "
        "rate; throughput lost: section 3's bpf rows (<= %.1f%% at 100 Hz, <= %.0f%% at "
        "1 kHz)." % (BPF_COST_TARGET_US[25], BPF_COST_TARGET_US[200], BPF_FIDELITY_PCT,
                     BPF_OVERHEAD_TARGET_PCT[100], BPF_OVERHEAD_TARGET_PCT[1000]),
        "Cost: section 1's method (`bench_deep.py DEPTH`, pairs of a short and a long "
        "`record -r %d` run, CPU by difference), once with `--backend user` and once with "
        "`--backend bpf`, side by side in this run. For bpf, pyspyc's own CPU per sample "
        "is that difference, and the program's kernel time is what pyspyc's summary "
        "says: the program's run time (the kernel's BPF statistics, `run_time_ns`) split "
        "into the part every interrupt pays (per interrupt elsewhere: an interrupt in "
        "another process, which costs that process) and the walk the program times "
        "itself in a sample; median over the long runs. Fidelity: `--backend bpf` on one "
        "busy thread (`bench_deep.py 25`) and on %d (`busy_threads.py`, `-t`, the "
        "workers' stacks counted), against the target's CPU time over the sampling "
        "window (schedstat of every thread, polled every 2 ms) x the rate."
        % (s.cost_rate, s.fidelity_threads[0]))
    table = []
    for label, exe, v, full in pythons:
        for depth in (25, 200):
            row = {}
            for backend in ("user", "bpf"):
                what = "%s %d frames, %s" % (label, depth, backend)
                env.log("bpf cost: %s" % what)
                try:
                    row[backend] = measure_cost(env, exe, depth, s, backend)
                except Failed as e:
                    rep.failed("bpf", what, e)
            if "bpf" not in row:
                continue
            b = row["bpf"]
            all_us = b["us"] + b["kernel_us"]
            want = BPF_COST_TARGET_US[depth] if depth == 25 or v >= (3, 11) else None
            target = "<= %.0f us" % want if want else ""
            res = verdict(all_us <= want) if want else "(reported)"
            rep.row("bpf", "%s %d frames" % (label, depth), "%.2f us" % all_us, target, res)
            table.append((label, full, depth,
                          "%.2f" % row["user"]["us"] if "user" in row else "-",
                          "%.2f" % b["us"], "%.2f" % b["kernel_us"], "%.2f" % all_us,
                          "%.2f" % b["elsewhere_us"], count(b["dsamples"]),
                          judged(target, res)))
    rep.table(("Python", "version", "frames", "user backend: us / sample",
               "bpf: pyspyc us / sample", "bpf: kernel us / sample", "bpf: in all",
               "bpf: kernel us / interrupt elsewhere", "extra samples (bpf)", "target"), table)
    ftable = []
    n, trate, tsecs = s.fidelity_threads
    for label, exe, v, full in pythons[:2] if s.quick else pythons:
        cases = [(rate, secs, 0) for rate, secs in s.fidelity_one] + [(trate, tsecs, n)]
        for rate, secs, threads in cases:
            what = "%s %s%s" % (label, hz(rate), ", %d threads" % threads if threads else "")
            env.log("bpf fidelity: %s" % what)
            try:
                f = measure_bpf_fidelity(env, exe, rate, secs, threads)
            except Failed as e:
                rep.failed("bpf", "fidelity " + what, e)
                continue
            target = "within %.0f%%" % BPF_FIDELITY_PCT
            res = verdict(abs(f["pct"] - 100.0) <= BPF_FIDELITY_PCT)
            rep.row("bpf", "fidelity " + what, "%.2f%%" % f["pct"], target, res)
            ftable.append((label, full, threads or 1, hz(rate), "%g s" % secs,
                           "%s / %.0f" % (count(f["got"]), f["expected"]),
                           "%.2f s" % f["cpu"], "%.2f%%" % f["pct"], count(f["torn"]),
                           judged(target, res)))
    rep.table(("Python", "version", "busy threads", "rate", "duration",
               "samples / CPU x rate", "target CPU", "fidelity", "torn", "target"), ftable)


def section_agent(env, rep, s):
    rep.section(
        "10. The agent: a host's services",
        "3 services of %d workers each (gunicorn sync, gunicorn gthread, uWSGI): the agent at "
        "100 Hz at most %.0f%% of a core while they are idle, and at most %.0f%% of requests "
        "per second lost under wrk; over a soak with 10 s windows, RSS flat (at most %.0f MiB "
        "more at the end than after the first tenth), the state directory within keep_bytes "
        "(and each service's newest window), and the windows adding up to the stacks counted."
        % (AGENT_WORKERS, AGENT_IDLE_TARGET_PCT, AGENT_LOSS_TARGET_PCT, AGENT_RSS_GROWTH_MIB),
        "Debian's gunicorn (`-k sync`; `-k gthread --threads 4`) and uWSGI (`--processes`, "
        "no `--enable-threads`) serve `tests/apps/wsgi_split.py`, %d workers each. "
        "`pyspyc agent` runs from a configuration with a service per server (by its "
        "master's pid file) at 100 Hz. Idle: its CPU (/proc/PID/stat) over %.0f s, beside "
        "the same processes as one service. Loaded: one `wrk -t 1 -c 4` per server on "
        "/light at once for %.0f s, the requests per second summed; %d rounds, each "
        "without the agent, with it on the user backend and with it on the bpf one "
        "(`backend =`; started before the load, stopped after), in an order rotated by "
        "one per round; medians. The idle figure is the user backend's, then the bpf "
        "one's. "
        "Soak: `wrk -t 1 -c 2` on each server and the agent with 10 s windows, "
        "`keep_bytes = %s` and collapsed stacks beside each window, for %.0f s; every 2 s "
        "each new window is read and the directory's size and the agent's RSS noted; at the "
        "end `POST /pause`, the stacks counted read from /metrics, SIGTERM."
        % (AGENT_WORKERS, s.agent_idle_s, s.agent_load_s, s.agent_rounds,
           s.agent_soak_keep, s.agent_soak_s))
    servers = {}
    try:
        for name, kind in AGENT_SERVICES:
            port = free_port()
            env.log("agent: starting %s on %d" % (name, port))
            servers[name] = (start_server(env, kind, port, AGENT_WORKERS), port)
        time.sleep(2.0)
        env.log("agent: idle")
        idle3, procs = agent_idle(env, servers, s, False)
        idle1, _ = agent_idle(env, servers, s, True)
        ok = idle3 <= AGENT_IDLE_TARGET_PCT
        rep.row("agent", "idle, 3 services, %d processes, 100 Hz" % procs,
                "%.2f%% of a core" % idle3, "<= %.0f%%" % AGENT_IDLE_TARGET_PCT, verdict(ok))
        rep.row("agent", "idle, the same processes as 1 service", "%.2f%% of a core" % idle1)
        rep.md.append("Idle: %d processes (masters and workers), %.2f%% of a core as 3 "
                      "services, %.2f%% as one service (one sampling thread instead of "
                      "three).\n\n" % (procs, idle3, idle1))
        idleb, _ = agent_idle(env, servers, s, False, "bpf")
        rep.row("agent", "idle, 3 services, backend bpf", "%.2f%% of a core" % idleb,
                "<= %.0f%%" % AGENT_IDLE_TARGET_PCT, verdict(idleb <= AGENT_IDLE_TARGET_PCT))
        env.log("agent: loaded")
        rps, cpu = agent_loaded(env, servers, s)
        base = statistics.median(rps["none"])
        noise = 100.0 * (max(rps["none"]) - min(rps["none"])) / base
        rows = [("without the agent", "%.0f" % base,
                 " ".join("%.0f" % x for x in rps["none"]), "", "")]
        for b in ("user", "bpf"):
            med = statistics.median(rps[b])
            loss = 100.0 * (1 - med / base)
            rep.row("agent", "requests/s lost under wrk, backend %s" % b,
                    "%.1f%% (noise %.1f%%)" % (loss, noise), "<= %.0f%%" % AGENT_LOSS_TARGET_PCT,
                    verdict(loss <= AGENT_LOSS_TARGET_PCT))
            rows.append(("with the agent, backend %s" % b, "%.0f" % med,
                         " ".join("%.0f" % x for x in rps[b]), "%.1f%%" % loss,
                         "%.2f%% of a core" % statistics.median(cpu[b])))
        rep.table(("", "median req/s", "runs", "lost", "agent CPU"), rows)
        env.log("agent: soak of %.0f s" % s.agent_soak_s)
        soak = agent_soak(env, servers, s) if s.agent_soak_s > 0 else None
    except Failed as e:
        rep.failed("agent", "agent", e)
        return
    finally:
        for p, _ in servers.values():
            env.stop(p)
    if soak is None:
        rep.md.append("No soak in this run (`--agent-soak 0`).\n\n")
        return
    rss = soak["rss"]
    tenth = rss[max(1, len(rss) // 10)][1]
    growth = rss[-1][1] - tenth
    rep.row("agent", "soak: RSS growth", "%+.1f MiB (%.1f MiB at the end)" % (growth, rss[-1][1]),
            "<= %.0f MiB" % AGENT_RSS_GROWTH_MIB, verdict(growth <= AGENT_RSS_GROWTH_MIB))
    keep = parse_size(soak["keep"])
    biggest = max(soak["sizes"]) if soak["sizes"] else 0
    # The newest window of each service is never deleted to make room.
    slack = 3 * 256 * 1024
    rep.row("agent", "soak: state directory at most", "%.0f KiB" % (biggest / 1024.0),
            "<= %s + newest" % soak["keep"], verdict(biggest <= keep + slack))
    lost = {k: soak["counted"][k] - soak["sums"].get(k, 0) for k in soak["counted"]}
    ok = all(v == 0 for v in lost.values())
    rep.row("agent", "soak: stacks counted - stacks in windows",
            ", ".join("%s %+d" % (k, -v) for k, v in sorted(lost.items())), "0 each",
            verdict(ok))
    rep.md.append("Soak: %s windows read (%s written), %s; stacks counted %s, in the windows "
                  "%s; %d dropped to a full table.\n\n"
                  % (count(soak["windows"]), count(soak["written"]),
                     ", ".join("%s %d windows" % (k, len(v))
                               for k, v in sorted(soak["starts"].items())),
                     ", ".join("%s %s" % (k, count(v)) for k, v in sorted(soak["counted"].items())),
                     ", ".join("%s %s" % (k, count(v)) for k, v in sorted(soak["sums"].items())),
                     soak["dropped"]))
    step = max(1, len(rss) // 10)
    rep.table(("seconds", "RSS"), [("%.0f" % t, "%.1f MiB" % m) for t, m in rss[::step]])


def hz(rate):
    return "%g kHz" % (rate / 1000.0) if rate >= 1000 else "%d Hz" % rate


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".BENCHMARKS-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def document(rep, s, only, pythons, started, load0, load1, elapsed):
    when = started.strftime("%Y-%m-%d %H:%M UTC")
    out = ["# pyspyc benchmarks\n\n",
           "Generated by `make bench` on %s from commit %s; do not edit by hand.\n\n"
           % (when, commit())]
    if s.quick:
        out.append("**Quick run** (`--quick`): short runs for development, fewer repetitions "
                   "and samples than the issue asks for; the figures are indications, not the "
                   "benchmark.\n\n")
    if set(only) != set(SECTIONS):
        out.append("Sections run: %s.\n\n" % ", ".join(x for x in SECTIONS if x in only))
    out.append("## Machine\n\n")
    rows = machine() + [
        ("load average (1, 5, 15 min)", "%.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end"
         % (load0 + load1)),
        ("run time", "%.0f s" % elapsed),
        ("Pythons", ", ".join("%s (%s)" % (p[0], p[3]) for p in pythons) or "none"),
    ]
    out.append(md_table(("what", "value"), rows))
    out.append("\nThe machine may be shared: the load average shows what else ran. pyspyc's "
               "CPU time (user + system) and peak RSS are measured from outside, never taken "
               "from its own summary: `scripts/bench/rusage_run.c` runs it and takes them "
               "from `wait4()`.\n\n")
    out.append("## Summary\n\n")
    out.append(md_table(("section", "measurement", "measured", "target", "result"), rep.rows))
    out.append("\n")
    out += rep.md
    return "".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run pyspyc's benchmarks, print a table and write BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="short runs for development (BENCHMARKS.md says so)")
    ap.add_argument("--agent-soak", type=float, default=None, metavar="SECONDS",
                    help="the agent's soak this long (0: none) instead of the setting's")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="sections to run, comma-separated: " + ", ".join(SECTIONS))
    ap.add_argument("--pythons", help="interpreters to use, comma-separated paths "
                    "(default: every CPython found, as the tests find them)")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"),
                    help="the Markdown report (default: BENCHMARKS.md at the top)")
    ap.add_argument("--pyspyc", default=os.path.join(ROOT, "pyspyc"), help="the binary")
    ap.add_argument("--out-cost", default=os.path.join(ROOT, "build", "bench", "out_cost"),
                    help="the output-cost program (make build/bench/out_cost)")
    ap.add_argument("--rusage-run", default=os.path.join(ROOT, "build", "bench", "rusage_run"),
                    help="the CPU and peak-RSS wrapper (make build/bench/rusage_run)")
    ap.add_argument("--floor", default=os.path.join(ROOT, "build", "bench", "floor"),
                    help="the machine-floor program (make build/bench/floor)")
    ap.add_argument("--window-soak",
                    default=os.path.join(ROOT, "build", "bench", "window_soak"),
                    help="the window soak program (make build/bench/window_soak)")
    args = ap.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in only if x not in SECTIONS]
    if bad or not only:
        ap.error("unknown section %s; choose from %s" % (", ".join(bad), ", ".join(SECTIONS)))
    if not os.access(args.pyspyc, os.X_OK):
        ap.error("%s is not built (make)" % args.pyspyc)
    s = Settings(args.quick)
    if args.agent_soak is not None:
        s.agent_soak_s = args.agent_soak

    # SIGTERM and SIGHUP end the run like Ctrl-C: through the finally
    # blocks that kill what was started.
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    def log(msg):
        sys.stderr.write("bench: %s\n" % msg)
        sys.stderr.flush()

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    load0 = os.getloadavg()
    pythons = find_pythons(args.pythons.split(",") if args.pythons else None)
    if not pythons:
        log("no supported CPython found")
        return 1
    pythons.sort(key=lambda p: (p[2], p[0]))  # by version, Debian's first
    if s.quick and not args.pythons:
        pythons = pick(pythons, COST_TARGET_VERSIONS) or pythons[:1]
    log("pythons: " + ", ".join("%s (%s)" % (p[0], p[3]) for p in pythons))
    # Rate fidelity on one interpreter of each version the targets name
    # (Debian's 3.11, a 3.12), memory on the first; one alone when quick.
    targeted = []
    for v in COST_TARGET_VERSIONS:
        targeted += pick(pythons, [v])[:1]
    targeted = targeted or pythons[:1]
    fidelity_pythons = targeted[:1] if s.quick else targeted

    rep = Report()
    try:
        with Env(args.pyspyc, args.out_cost, args.rusage_run, log) as env:
            env.floor = args.floor
            env.window_soak = args.window_soak
            if "cost" in only:
                section_cost(env, rep, pythons, s)
            if "fidelity" in only:
                section_fidelity(env, rep, fidelity_pythons, s)
            if "overhead" in only:
                section_overhead(env, rep, s)
            if "bpf" in only:
                section_bpf(env, rep, pythons, s)
            if "memory" in only:
                section_memory(env, rep, targeted, s)
            if "output" in only:
                section_output(env, rep, s)
            if "accuracy" in only:
                section_accuracy(env, rep, pythons, s)
            if "windows" in only:
                section_windows(env, rep, s)
            if "churn" in only:
                section_churn(env, rep, s)
            if "scaling" in only:
                section_scaling(env, rep, s)
            if "agent" in only:
                section_agent(env, rep, s)
    except KeyboardInterrupt:
        log("interrupted: nothing written")
        return 130
    text = document(rep, s, only, pythons, started, load0, os.getloadavg(),
                    time.monotonic() - t0)
    write_atomic(args.out, text)
    sys.stdout.write(rep.text())
    log("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
