"""A target for the fault-injection tests: fault_app.py REPORT MODE [ARGS].

Every catchable signal that could come from a profiler (SIGINT, SIGTERM,
SIGHUP, SIGCONT, SIGUSR1, ...) is caught and written to the file REPORT as
"<pid> <signal number>" (one line each, forked children too), so a test can
assert that nothing signalled the target.  Prints "ready" once sampling can
start.  Works on Python 2.7 and every 3.x.

Modes:
  spin SECS              spin in work() for SECS seconds, then exit 0
  exec_sleep SECS        spin SECS, then execv sleep 30 (not Python)
  exec_python SECS       spin SECS, then execv fault_after_exec.py (30 s)
  exec_python_told SECS  spin until a line comes on stdin (the test's word
                         that the profiler samples it), then as exec_python
  fork SECS              fork; the child spins in child_work() for SECS, the
                         parent waits for it in parent_wait(); prints
                         "child PID" after "ready"
  churn SECS             start and join threads continuously (hundreds a
                         second) while busy() spins in the main thread
  deep DEPTH SECS        a thread recurses DEPTH Python frames deep and
                         spins in leaf(); prints "ready" once it is there
  reuse                  a parent that takes commands on stdin, one a line:
                         "fork" forks a child spinning in first_child();
                         "kill PID" kills and reaps it; "python LAST" and
                         "sleep LAST" set ns_last_pid to LAST and start
                         fault_after_exec.py or sleep (to take a dead
                         child's pid); each answers "child PID" or "done"
"""
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = sys.argv[1]
WATCHED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGCONT", "SIGUSR1", "SIGUSR2", "SIGALRM",
           "SIGQUIT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPIPE", "SIGWINCH", "SIGURG",
           "SIGVTALRM", "SIGPROF", "SIGTRAP"]


def report(sig, frame):
    with open(REPORT, "a") as f:
        f.write("%d %d\n" % (os.getpid(), sig))


def watch_signals():
    for name in WATCHED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, report)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def work(end):
    x = 0
    while time.time() < end:
        x += 1
    return x


def parent_wait(pid):
    # Idle (blocked in waitpid): a profile without -i leaves it out.
    os.waitpid(pid, 0)


def child_work(end):
    return work(end)


def busy(end):
    return work(end)


def spin(secs):
    say("ready")
    work(time.time() + secs)


def spin_until_told(secs):
    # In work() until a line comes on stdin, then secs more.
    told = []

    def reader():
        sys.stdin.readline()
        told.append(time.time() + secs)
    t = threading.Thread(target=reader)
    t.daemon = True
    t.start()
    while not told or time.time() < told[0]:
        work(time.time() + 0.01)


def exec_into(secs, argv, told=False):
    say("ready")
    if told:
        spin_until_told(secs)
    else:
        work(time.time() + secs)
    sys.stdout.flush()
    os.execv(argv[0], argv)


def fork(secs):
    end = time.time() + secs
    pid = os.fork()
    if pid == 0:
        child_work(end)
        os._exit(0)
    say("ready")
    say("child %d" % pid)
    parent_wait(pid)


def nothing():
    pass


def churn(secs):
    end = time.time() + secs
    stop = []

    def starter():
        while not stop:
            batch = [threading.Thread(target=nothing) for _ in range(10)]
            for t in batch:
                t.start()
            for t in batch:
                t.join()
    th = [threading.Thread(target=starter) for _ in range(2)]
    for t in th:
        t.start()
    say("ready")
    busy(end)
    stop.append(1)
    for t in th:
        t.join()


def leaf(end):
    say("ready")  # the whole depth is on the stack now
    return work(end)


def recurse(n, end):
    if n <= 1:
        return leaf(end)
    return recurse(n - 1, end)


def deep(depth, secs):
    end = time.time() + secs
    sys.setrecursionlimit(depth + 1000)
    # Before 3.11 every Python call also takes C stack: give the thread
    # plenty (the main thread's 8 MiB is not enough for 20,000 frames).
    threading.stack_size(1 << 30)

    def run():
        recurse(depth, end)
    t = threading.Thread(target=run, name="deep")
    t.start()
    t.join()


def first_child(end):
    return work(end)


def reuse():
    say("ready")
    started = []
    for line in iter(sys.stdin.readline, ""):
        words = line.split()
        if words[0] == "fork":
            pid = os.fork()
            if pid == 0:
                first_child(time.time() + 60)
                os._exit(0)
            say("child %d" % pid)
        elif words[0] == "kill":
            os.kill(int(words[1]), signal.SIGKILL)
            os.waitpid(int(words[1]), 0)
            say("done")
        else:
            argv = {"python": [sys.executable, os.path.join(HERE, "fault_after_exec.py"), REPORT],
                    "sleep": ["/bin/sleep", "60"]}[words[0]]
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(words[1])
            started.append(subprocess.Popen(argv))
            say("child %d" % started[-1].pid)
    for p in started:
        p.kill()
        p.wait()


def main():
    watch_signals()
    mode, args = sys.argv[2], sys.argv[3:]
    if mode == "spin":
        spin(float(args[0]))
    elif mode == "exec_sleep":
        exec_into(float(args[0]), ["/bin/sleep", "30"])
    elif mode in ("exec_python", "exec_python_told"):
        exec_into(float(args[0]), [sys.executable, os.path.join(HERE, "fault_after_exec.py"),
                                   REPORT], told=mode.endswith("_told"))
    elif mode == "fork":
        fork(float(args[0]))
    elif mode == "churn":
        churn(float(args[0]))
    elif mode == "deep":
        deep(int(args[0]), float(args[1]))
    elif mode == "reuse":
        reuse()
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
elif len(sys.argv) > 1:
    # Imported by fault_after_exec.py (REPORT is its argv[1]): watch its signals.
    watch_signals()
