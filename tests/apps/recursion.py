"""recursion.py [SECONDS]: a pure-Python recursion that never blocks.

fib(22) over and over for SECONDS (default 5) of wall time: a thread whose
innermost frames are made and freed every few hundred nanoseconds, the
hardest stack to read whole from outside (before Python 3.11 each call's
frame is a heap object, freed and reused at once).  Prints "ready" first.
Works on Python 2.7 and every 3.x.
"""
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    end = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while time.time() < end:
        fib(22)


if __name__ == "__main__":
    main()
