"""Code compiled, run and dropped in a loop: each round compiles a fresh
function, work_a or work_b in turn (same source shape, so each new code
object usually lands at the address the last one freed), spins in it on the
process's CPU clock (work_a SLICE_A, work_b SLICE_B seconds), then drops it
and collects it.  A profiler that trusts a cached code object by its address
names work_b's time work_a's or the reverse.  Runs argv[1] seconds (default
5).  Works on Python 2.7 and every 3.x."""
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

now = getattr(time, "process_time", None) or time.clock


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    stop = now() + duration
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    i = 0
    while now() < stop:
        name, secs = ("a", SLICE_A) if i % 2 == 0 else ("b", SLICE_B)
        g = {"now": now}
        exec(compile(SRC % name, "churn_gen.py", "exec"), g)
        g["work_" + name](now() + secs)
        g = None
        gc.collect()
        i += 1


if __name__ == "__main__":
    main()
