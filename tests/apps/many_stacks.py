"""About 10,000 unique stacks: THREADS busy threads walking a call tree of
generated functions for SECONDS.

Usage: many_stacks.py THREADS SECONDS   (defaults 4 and 30)

The tree has 4 levels of 10 distinct functions each, l0_0 ... l3_9; a path
picks one function per level, so there are 10,000 leaf paths.  Each thread
visits them all in turn (each from its own start, with a stride prime to
10,000), spending about 0.2 ms of wall time spinning in the leaf.  Every
call and the leaf's loop sit on one line, so a path gives one stack: 10,000
leaf stacks, and the few thousand prefixes that a sample can catch between
them (up to 1,110).  For the profiler-memory benchmark
(scripts/bench/bench.py).  Works on Python 2.7 and every 3.x.
"""
import os
import sys
import threading
import time

LEVELS = 4
FANOUT = 10
STRIDE = 7919
SPIN = 0.0002


def generated_source():
    src = []
    for k in range(LEVELS):
        for d in range(FANOUT):
            if k < LEVELS - 1:
                body = "return L%d[path[%d]](path, end)" % (k + 1, k + 1)
            else:
                body = "while time() < end: pass"
            src.append("def l%d_%d(path, end):\n    %s\n" % (k, d, body))
    return "".join(src)


def build():
    name = os.path.join(os.path.dirname(os.path.abspath(__file__)), "many_stacks_gen.py")
    ns = {"time": time.time}
    exec(compile(generated_source(), name, "exec"), ns)
    for k in range(LEVELS):
        ns["L%d" % k] = [ns["l%d_%d" % (k, d)] for d in range(FANOUT)]
    return ns["L0"]


def paths():
    out = []
    for n in range(FANOUT ** LEVELS):
        digits = []
        for _ in range(LEVELS):
            digits.append(n % FANOUT)
            n //= FANOUT
        out.append(tuple(digits))
    return out


def walk(top, all_paths, first, stop):
    i = first
    n = len(all_paths)
    while time.time() < stop:
        path = all_paths[i]
        top[path[0]](path, time.time() + SPIN)
        i = (i + STRIDE) % n


def main():
    nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    stop = time.time() + seconds
    top = build()
    all_paths = paths()
    step = len(all_paths) // max(1, nthreads)
    threads = [threading.Thread(target=walk, args=(top, all_paths, i * step, stop),
                                name="walker-%d" % i) for i in range(nthreads)]
    for t in threads:
        t.daemon = True
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
