"""Code compiled, run and dropped in a loop: each round compiles a fresh
function, work_a or work_b in turn (same source shape, so each new code
object usually lands at the address the last one freed), spins in it on the
process's CPU clock (work_a SLICE_A, work_b SLICE_B seconds), then drops it
and collects it.  A profiler that trusts a cached code object by its address
names work_b's time work_a's or the reverse.  Runs argv[1] seconds (default
5).  With argv[2] "nested", work_a and work_b spend their time in step(), a
function of this file, so that their own frame is seldom the innermost
one: it stays at the same place, running code at the same address at the
same offset, round after round.  Works on Python 2.7 and every 3.x."""
import gc
import sys
import time

SLICE_A = 0.010
SLICE_B = 0.030

SRC = '''
def work_%s(end):
    x = 0
    while now() < end:
        x += 1
    return x
'''

NESTED = '''
def work_%s(end):
    x = 0
    while now() < end:
        x += step()
    return x
'''

now = getattr(time, "process_time", None) or time.clock


def step():
    y = 0
    for i in range(2000):
        y += i
    return 1


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    src = NESTED if sys.argv[2:3] == ["nested"] else SRC
    stop = now() + duration
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    i = 0
    while now() < stop:
        name, secs = ("a", SLICE_A) if i % 2 == 0 else ("b", SLICE_B)
        g = {"now": now, "step": step}
        exec(compile(src % name, "churn_gen.py", "exec"), g)
        g["work_" + name](now() + secs)
        g = None
        gc.collect()
        i += 1


if __name__ == "__main__":
    main()
