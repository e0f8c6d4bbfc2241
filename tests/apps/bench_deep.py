"""Spin on the CPU at a known stack depth made of distinct functions.

Usage: bench_deep.py DEPTH SECONDS   (defaults 25 and 5)

DEPTH counts every Python frame of the spinning (main) thread, so a
profile's stacks have exactly DEPTH frames: <module>, main, and DEPTH - 2
generated functions f0 ... f(DEPTH-3), each with a code object of its own as
in a real application (not one function recursing).  The innermost prints
"ready" once the whole stack is built, then spins until SECONDS of wall time
have passed since start.  For the per-sample cost benchmark
(scripts/bench/bench.py).  Works on Python 2.7 and every 3.x.
"""
import os
import sys
import time


def generated_source(n):
    """f0 ... f(n-1): each calls the next; the last reports ready and spins,
    its loop on one line so every sample of it shows the same line."""
    src = []
    for i in range(n - 1):
        src.append("def f%d(end, ready):\n    return f%d(end, ready)\n" % (i, i + 1))
    src.append("def f%d(end, ready):\n"
               "    ready()\n"
               "    x = 0\n"
               "    while time() < end: x += 1\n"
               "    return x\n" % (n - 1))
    return "".join(src)


def ready():
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    if depth < 3:
        sys.exit("bench_deep.py: DEPTH counts <module> and main too: 3 or more")
    end = time.time() + seconds
    sys.setrecursionlimit(max(1000, depth + 100))
    # A file name of its own, beside this one, so the frames read like an
    # application's: f7 (bench_deep_gen.py:15).
    name = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_deep_gen.py")
    ns = {"time": time.time}
    exec(compile(generated_source(depth - 2), name, "exec"), ns)
    return ns["f0"](end, ready)


if __name__ == "__main__":
    main()
