"""A thread that threading learns of only after it has run a while.

Started with the low-level thread module, the thread spins unknown to
threading (the OS thread name stands in) for FIRST seconds (argv[1],
default 1), then asks threading for its current thread, which registers it
as "Dummy-1", and spins for SECOND seconds more (argv[2], default 2.5).
Python 2.7 and every 3.x."""
import sys
import threading
import time

try:
    import _thread as thread_module
except ImportError:  # 2.7
    import thread as thread_module


def spin(until):
    x = 0
    while time.time() < until:
        x += 1
    return x


def worker(first, second, done):
    spin(time.time() + first)
    threading.current_thread()
    spin(time.time() + second)
    done.append(1)


def main():
    first = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    second = float(sys.argv[2]) if len(sys.argv) > 2 else 2.5
    done = []
    thread_module.start_new_thread(worker, (first, second, done))
    while not done:
        time.sleep(0.05)


if __name__ == "__main__":
    main()
