"""Python called back from C in a loop: sorted() calls key() for every item,
then reduce() calls add() through map(), which calls key() again, deeper in
the C stack; key() spins a little each time.  On 3.11 and 3.12 every call
from C into Python makes a new _PyCFrame on the C stack, here at two depths
in turn.  Runs argv[1] seconds (default 5).  Works on Python 2.7 and every
3.x."""
from functools import reduce
import sys
import time

_cpu = getattr(time, "process_time", None) or time.clock


def key(x):
    end = _cpu() + 0.0003
    while _cpu() < end:  # key loop
        pass
    return -x


def add(a, b):
    return a + b


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    stop = _cpu() + duration
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while _cpu() < stop:
        sorted(range(10), key=key)  # sort call
        reduce(add, map(key, range(10)))  # reduce call


if __name__ == "__main__":
    main()
