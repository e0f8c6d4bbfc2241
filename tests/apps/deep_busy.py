"""deep_busy.py DEPTH SECONDS: one thread busy for SECONDS seconds at a
stack of DEPTH Python frames.

The frames: the module's, main's, and DEPTH - 2 distinct functions,
level_1 calling level_2 and so on (each its own code object, as a server's
stack is made of); the innermost spins.  The benchmark's reference for thread
churn: one busy thread whose stacks are as deep as the server's it is
compared with, so that the two differ in their threads, not their depth.
Works on Python 2.7 and every 3.x.
"""
import sys
import time

SPIN = """
def level_%d(end):
    x = 0
    while time.time() < end:
        x += 1
    return x
"""

CALL = """
def level_%d(end):
    return level_%d(end)
"""


def make(n):
    """level_1, the outermost of n functions."""
    n = max(1, n)
    src = "".join(CALL % (k, k + 1) for k in range(1, n)) + SPIN % n
    scope = {"time": time}
    exec(compile(src, "deep_levels.py", "exec"), scope)
    return scope["level_1"]


def main():
    depth = int(sys.argv[1])
    seconds = float(sys.argv[2])
    outer = make(depth - 2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    outer(time.time() + seconds)


main()
