"""A parent and its Python children, for -s (subprocesses).

  children.py short N MS CONC   spawn N children one after another, at most
                                CONC at a time; child i spins MS ms of CPU
                                in a function named child_<i>, then exits.
                                The parent waits for them all and exits.
  children.py sleep N           spawn N children that sleep in sleeper_<i>
                                until the parent goes; print "ready" once
                                all of them run Python; the parent sleeps.
  children.py busy N            as sleep, but the children spin in busy_<i>
                                (an overloaded machine).
  children.py mixed N B         as sleep, and B more children (numbered on
                                from N) spin in busy_<i>.
  children.py child I MS        one child (what the modes above start):
                                MS > 0 spins, MS = 0 sleeps, MS < 0 spins
                                until the parent goes.

Each child's function gets its own name, so a profile shows which children
were seen.  Works on Python 2.7 and every 3.x."""
import os
import subprocess
import sys
import time

now = getattr(time, "process_time", None) or time.clock

SPIN = '''
def child_%d(end):
    x = 0
    while now() < end:
        x += 1
    return x
'''

SLEEP = '''
def sleeper_%d(parent):
    while os.getppid() == parent:
        time.sleep(0.2)
'''

BUSY = '''
def busy_%d(parent):
    x = 0
    while os.getppid() == parent:
        for _ in range(10000):
            x += 1
'''


def child(i, ms):
    g = {"now": now, "time": time, "os": os}
    if ms < 0:
        exec(compile(BUSY % i, "children_gen.py", "exec"), g)
        sys.stdout.write("up\n")
        sys.stdout.flush()
        g["busy_%d" % i](os.getppid())
    elif ms > 0:
        exec(compile(SPIN % i, "children_gen.py", "exec"), g)
        g["child_%d" % i](now() + ms / 1000.0)
    else:
        exec(compile(SLEEP % i, "children_gen.py", "exec"), g)
        sys.stdout.write("up\n")
        sys.stdout.flush()
        g["sleeper_%d" % i](os.getppid())


def spawn(i, ms, **kw):
    # -S: no site (quick to start, so a hundred start in little time).
    return subprocess.Popen([sys.executable, "-S", os.path.abspath(__file__), "child",
                             str(i), str(ms)], **kw)


def short(n, ms, conc):
    running = []
    for i in range(n):
        while len(running) >= conc:
            running = [p for p in running if p.poll() is None]
            if len(running) >= conc:
                time.sleep(0.002)
        running.append(spawn(i, ms))
    for p in running:
        p.wait()


def sleep(n, ms=0, busy=0):
    kids = [spawn(i, ms, stdout=subprocess.PIPE) for i in range(n)] + \
        [spawn(n + i, -1, stdout=subprocess.PIPE) for i in range(busy)]
    for p in kids:
        p.stdout.readline()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1)
    finally:
        for p in kids:
            p.kill()


def main():
    mode = sys.argv[1]
    if mode == "short":
        short(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "sleep":
        sleep(int(sys.argv[2]))
    elif mode == "busy":
        sleep(int(sys.argv[2]), -1)
    elif mode == "mixed":
        sleep(int(sys.argv[2]), 0, int(sys.argv[3]))
    else:
        child(int(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    main()
