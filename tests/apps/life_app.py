"""Targets for test_lifecycle.py: a process's life as a profiler sees it.

    life_app.py spin SECONDS          spin in outer() -> inner()
    life_app.py pexit SECONDS DONE    a worker thread spins in worker_spin();
                                      the main thread calls pthread_exit();
                                      the worker writes DONE (a path) at the
                                      end and the process exits 0
    life_app.py exit CODE             spin a little, then exit with CODE
    life_app.py segv                  spin a little, then die of SIGSEGV

Prints "ready" once spinning has begun (pexit: once the main thread is
about to leave).  Works on Python 2.7 and every 3.x.
"""
import os
import sys
import threading
import time


def inner(end):
    x = 0
    while time.time() < end:
        x += 1
    return x


def outer(seconds):
    end = time.time() + seconds
    while time.time() < end:
        inner(min(end, time.time() + 0.01))


def ready():
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def worker_spin(end):
    x = 0
    while time.time() < end:
        x += 1
    return x


def worker(seconds, done):
    worker_spin(time.time() + seconds)
    with open(done, "w") as f:
        f.write("done\n")


def main():
    mode = sys.argv[1]
    if mode == "spin":
        ready()
        outer(float(sys.argv[2]))
    elif mode == "pexit":
        import ctypes
        t = threading.Thread(target=worker, args=(float(sys.argv[2]), sys.argv[3]),
                             name="worker")
        t.start()
        ready()
        # The process lives on in the worker; it exits 0 when the worker ends.
        ctypes.CDLL(None).pthread_exit(None)
    elif mode == "exit":
        outer(0.5)
        sys.exit(int(sys.argv[2]))
    elif mode == "segv":
        outer(0.5)
        os.kill(os.getpid(), 11)


main()
