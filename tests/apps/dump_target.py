# -*- coding: utf-8 -*-
"""Named threads parked in functions with known arguments and locals, for
`pyspyc dump`.  Prints "ready" once every thread is in place, then waits
(argv[1] seconds, default 60).  With "fork" as argv[2], also starts a child
process running the same program (without "fork") and waits for it to be
ready first.  Works on Python 2.7 and every 3.x.

The thread "worker-1" sits in hold_locals(), whose arguments and locals are
checked by the tests: count=42, ratio=0.25, label, QUOTED, DATA, ITEMS,
BIG, NEG, flag=True, nothing=None, raw and extra (a cell).  The thread
'sleeper "q"' has quotes in its name; "worker-2" waits in a class method."""
import os
import subprocess
import sys
import threading
import time

QUOTED = "it's a \"quoted\"\nline\t\x01"
DATA = {"a": 1, "b": [1, 2], "c": None}
ITEMS = [1, 2, 3]
BIG = 2 ** 100 + 7
NEG = -123456789012345678901


def hold_locals(stop, count, ratio=0.25, *rest, **opts):
    label = "hello dump"
    quoted = QUOTED
    data = DATA
    items = ITEMS
    big = BIG
    neg = NEG
    flag = True
    nothing = None
    pair = (1, "two")
    raw = b"\x00bytes'"
    extra = "captured"

    def inner():
        return extra

    while not stop.is_set():  # hold_locals wait
        stop.wait(5)
    return inner, label, quoted, data, items, big, neg, flag, nothing, pair, raw


class Worker(object):
    def park(self, stop):
        while not stop.is_set():  # park wait
            stop.wait(5)


def sleeper(stop):
    while not stop.is_set():  # sleeper wait
        time.sleep(0.5)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    stop = threading.Event()
    threads = [
        threading.Thread(target=hold_locals, args=(stop, 42), name="worker-1"),
        threading.Thread(target=Worker().park, args=(stop,), name="worker-2"),
        threading.Thread(target=sleeper, args=(stop,), name='sleeper "q"'),
    ]
    for t in threads:
        t.daemon = True
        t.start()
    child = None
    if len(sys.argv) > 2 and sys.argv[2] == "fork":
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(seconds)],
                                 stdout=subprocess.PIPE)
        line = child.stdout.readline()
        assert line.strip() == b"ready", line
    # Let every thread reach its loop before saying so.
    time.sleep(0.3)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    end = time.time() + seconds
    while time.time() < end:  # main wait
        time.sleep(0.5)
    stop.set()
    if child:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()
