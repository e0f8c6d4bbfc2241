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
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while time.time() < stop:
        embed_spin(SLICE * SPLIT)
        embed_other(SLICE * (1 - SPLIT))


main()
