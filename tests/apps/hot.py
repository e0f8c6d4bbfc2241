"""A known flat split between two leaf functions, for the profile formats.

The thread 'hot "spinner"' spends HOT (70%) of its CPU time in hot() and
the rest in warm().  Both spin on the process's CPU clock, a builtin, so no
Python frame sits under them: each is the leaf of its samples, and its flat
share is its whole share.  The thread starts through a lambda, so that each
of its stacks holds a frame named <lambda> (main.<locals>.<lambda> on
3.11+), which pprof readers must not take for a C++ template.  The main
thread waits in join() (idle: left out unless -i).  Runs argv[1] seconds of
CPU time (default 5), then exits.  With "fork" as argv[2], also starts a
child process running the same program (without "fork") and waits until it
is ready.  Works on Python 2.7 and every 3.x.
"""
import os
import subprocess
import sys
import threading
import time

HOT = 0.7
# Not a multiple of any sampling period, so samples do not alias.
SLICE = 0.0073
THREAD_NAME = 'hot "spinner"'

# The process's CPU time (see split.py: a busy machine then stretches
# both functions alike).  A builtin: it adds no Python frame.
clock = getattr(time, "process_time", None) or time.clock


def hot(seconds):
    end = clock() + seconds
    x = 0
    while clock() < end:  # hot loop
        x += 1
    return x


def warm(seconds):
    end = clock() + seconds
    x = 0
    while clock() < end:  # warm loop
        x += 1
    return x


def spin(stop):
    while clock() < stop:
        hot(SLICE * HOT)
        warm(SLICE * (1 - HOT))


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    child = None
    if len(sys.argv) > 2 and sys.argv[2] == "fork":
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(duration)],
                                 stdout=subprocess.PIPE)
        if child.stdout.readline().strip() != b"ready":
            sys.exit("the child did not start")
    stop = clock() + duration
    # Through a lambda, so that every spinner stack holds a "<...>" name.
    t = threading.Thread(target=lambda: spin(stop), name=THREAD_NAME)
    t.daemon = True
    t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # Wall-clock bound as well: the thread spins on CPU time.
    end = time.time() + 3 * duration + 5
    while t.is_alive() and time.time() < end:
        t.join(0.1)
    if child:
        child.wait()


if __name__ == "__main__":
    main()
