"""Threads that start and end all the time, as a thread-per-request server
makes them, each running a known call chain, for argv[1] seconds (default 5).

WORKERS threads at a time; each runs request() once and ends, and a new one
takes its place at once.  request() calls handle(), which calls the two
leaves in turn from lines of its own and, between the calls, works on lines
that call no Python function.  So a caller's line in any stack is the line
of its call to the frame above it, and a profiler that pairs a callee read
at one moment with its caller read a moment later (the callee returned, the
caller moved on) shows the caller on one of the work lines instead.

argv[2] "pool": the same chain run by WORKERS long-lived threads instead,
for comparison.  Works on Python 2.7 and every 3.x."""
import sys
import threading
import time

WORKERS = 4
ROUNDS = 3        # leaf pairs per request
LEAF = 0.0004     # seconds in each leaf call
WORK = 60         # iterations of each work line


def leaf_a(end):
    x = 0
    while time.time() < end:  # leaf_a loop
        x += 1
    return x


def leaf_b(end):
    x = 0
    while time.time() < end:  # leaf_b loop
        x += 1
    return x


def handle(rounds):
    total = 0
    for _ in range(rounds):
        total += leaf_a(time.time() + LEAF)  # call leaf_a
        for i in range(WORK):                # work 1
            total += i * 3 % 7               # work 2
        total += leaf_b(time.time() + LEAF)  # call leaf_b
        for i in range(WORK):                # work 3
            total ^= i                       # work 4
    return total


def request():
    n = handle(ROUNDS)  # call handle
    return n


def serve_churn(stop):
    live = []
    while time.time() < stop:
        live = [t for t in live if t.is_alive()]
        while len(live) < WORKERS:
            t = threading.Thread(target=request)
            t.start()
            live.append(t)
        time.sleep(0.0005)
    for t in live:
        t.join()


def pool_worker(stop):
    while time.time() < stop:
        request()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    pool = len(sys.argv) > 2 and sys.argv[2] == "pool"
    stop = time.time() + seconds
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if pool:
        threads = [threading.Thread(target=pool_worker, args=(stop,))
                   for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        serve_churn(stop)


if __name__ == "__main__":
    main()
