"""A run whose last moments are known: after WAIT seconds asleep (argv[2],
default 1), phase_z spins for a tenth of a second of CPU time (so that a
sampler has named its code), phase_a for half a second, then phase_z again
for TAIL seconds (argv[1], default 0.012), and the process exits at once.
A sampler that loses what it took just before an exit shows the last call
of phase_z short.
Works on Python 2.7 and every 3.x.
"""
import sys
import time

_cpu = getattr(time, "process_time", None) or time.clock


def spin(seconds):
    end = _cpu() + seconds
    x = 0
    while _cpu() < end:
        x += 1
    return x


def phase_a():
    spin(0.5)


def phase_z(seconds):
    spin(seconds)


print("ready")
sys.stdout.flush()
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
phase_z(0.1)  # first call
phase_a()
phase_z(float(sys.argv[1]) if len(sys.argv) > 1 else 0.012)  # last call
