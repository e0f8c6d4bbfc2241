"""Known time split: spin_a runs SPLIT_A of the time, spin_b the rest.

Both spin against the process's CPU clock in slices, so the shares hold
whatever the machine's speed and load.  Runs for DURATION seconds (argv[1], default 5), then exits.
Works on Python 2.7 and every 3.x.
"""
import os
import sys
import time

SPLIT_A = 0.6
# Not a multiple of any sampling period, so samples do not alias.
SLICE = 0.0073


# Spin against the process's CPU time, not the wall clock: when the machine
# is busy and the thread waits for a CPU, the wait then stretches whichever
# function it hit in proportion, instead of handing it all to one of them.
_cpu = getattr(time, "process_time", None) or time.clock


def now():
    return _cpu()


def spin_a(seconds):
    end = now() + seconds
    x = 0
    while now() < end:  # loop A
        x += 1          # body A
    return x


def spin_b(seconds):
    end = now() + seconds
    x = 0
    while now() < end:  # loop B
        x += 1          # body B
    return x


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    stop = now() + duration
    # SPLIT_TRUTH=FILE: the wall-clock seconds spent so far in spin_a and in
    # spin_b, rewritten in place after every pair of slices.  Spinning on
    # CPU time, each function's wall time is its CPU time plus the time the
    # process waited for a CPU in it: on a loaded machine the wall split
    # wanders from 60/40 by whole waits, and a sampler that counts waiting
    # (runnable) threads follows the wall split, not the CPU one.
    truth = os.environ.get("SPLIT_TRUTH")
    out = open(truth, "w") if truth else None
    wall_a = wall_b = 0.0
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while now() < stop:
        t0 = time.time()
        spin_a(SLICE * SPLIT_A)
        t1 = time.time()
        spin_b(SLICE * (1 - SPLIT_A))
        if out:
            wall_a += t1 - t0
            wall_b += time.time() - t1
            out.seek(0)
            out.write("%020.6f %020.6f\n" % (wall_a, wall_b))
            out.flush()


if __name__ == "__main__":
    main()
