"""recursion.py [SECONDS] [threads]: a pure-Python recursion that never blocks.

fib(22) over and over for SECONDS (default 5) of wall time: a thread whose
innermost frames are made and freed every few hundred nanoseconds, the
hardest stack to read whole from outside (before Python 3.11 each call's
frame is a heap object, freed and reused at once).  Prints "ready" first.

argv[2] "threads": each fib(18) in a thread of its own, started for it and
joined, as a server that starts a thread per request: at nearly every
sample the thread running Python is one that did not exist at the last.
Works on Python 2.7 and every 3.x.
"""
import sys
import threading
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    end = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if len(sys.argv) > 2 and sys.argv[2] == "threads":
        while time.time() < end:
            t = threading.Thread(target=fib, args=(18,))
            t.start()
            t.join()
        return
    while time.time() < end:
        fib(22)


if __name__ == "__main__":
    main()
