"""Script run by embed_host inside a dlopen()ed libpython: prints "ready",
then spins in embed_spin for EMBED_SPIN_SECONDS seconds (default 5), with a
short stretch in embed_other between slices, then returns.
"""
import os
import sys
import time

SLICE = 0.0073  # not a multiple of any sampling period
SPLIT = 0.8     # embed_spin's share of the time


def embed_spin(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:  # embed loop
        x += 1                 # embed body
    return x


def embed_other(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
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
