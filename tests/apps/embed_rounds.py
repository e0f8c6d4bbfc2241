"""Run by embed_host with ROUNDS: each round (sys.argv[1]) spins in a
function of its own, round_0(), round_1(), ..., for SECONDS (the
EMBED_ROUND_SECONDS environment variable, default 1) and prints "round N"."""
import os
import sys
import time


def spin(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1
    return x


def round_0(s):
    spin(s)


def round_1(s):
    spin(s)


def round_2(s):
    spin(s)


def round_3(s):
    spin(s)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 0
sys.stdout.write("round %d\n" % n)
sys.stdout.flush()
globals()["round_%d" % (n % 4)](float(os.environ.get("EMBED_ROUND_SECONDS", "1")))
