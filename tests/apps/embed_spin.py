"""Script run by embed_host inside a dlopen()ed libpython: prints "ready",
then alternates between embed_spin (SPLIT of the time) and embed_other for
EMBED_SPIN_SECONDS seconds (default 5), then returns.  Works on 2.7 and 3.x.

The slices are measured in the process's CPU time, not wall time: when the
machine is oversubscribed the process is preempted after a CPU-time slice,
so the wall time it spends off the CPU falls on each function in proportion
to its CPU time and the split holds.  (Spinning against the wall clock, the
function running when each timeslice ends takes the whole wait.)
"""
import os
import sys
import time

SLICE = 0.0073  # CPU seconds; not a multiple of any sampling period
SPLIT = 0.8     # embed_spin's share of the time

cpu = getattr(time, "process_time", None) or time.clock  # 2.7: clock()


def embed_spin(seconds):
    end = cpu() + seconds
    x = 0
    while cpu() < end:  # embed loop
        x += 1           # embed body
    return x


def embed_other(seconds):
    end = cpu() + seconds
    x = 0
    while cpu() < end:
        x += 1
    return x


def main():
    stop = time.time() + float(os.environ.get("EMBED_SPIN_SECONDS", "5"))
    # SPLIT_TRUTH=FILE: wall seconds so far in embed_spin and embed_other,
    # rewritten after every pair of slices (as split.py: a sampler that
    # counts threads waiting for a CPU follows the wall split).
    truth = os.environ.get("SPLIT_TRUTH")
    out = open(truth, "w") if truth else None
    wall_a = wall_b = 0.0
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while time.time() < stop:
        t0 = time.time()
        embed_spin(SLICE * SPLIT)
        t1 = time.time()
        embed_other(SLICE * (1 - SPLIT))
        if out:
            wall_a += t1 - t0
            wall_b += time.time() - t1
            out.seek(0)
            out.write("%020.6f %020.6f\n" % (wall_a, wall_b))
            out.flush()


main()
