"""N busy Python threads for SECONDS: worker-0 ... worker-(N-1), each
spinning in work() on the wall clock.  The main thread prints "ready" once
all have started and waits for them.

Usage: busy_threads.py N SECONDS   (defaults 8 and 5)

With the GIL only one of them runs at a time; the others wait for it, so a
profiler counts all N only when it counts waiting threads (pyspyc -i).
Works on Python 2.7 and every 3.x.
"""
import sys
import threading
import time


def work(end):
    x = 0
    while time.time() < end: x += 1  # noqa: E701 - one line, one stack
    return x


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    end = time.time() + seconds
    threads = [threading.Thread(target=work, args=(end,), name="worker-%d" % i)
               for i in range(n)]
    for t in threads:
        t.daemon = True
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
