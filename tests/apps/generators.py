"""Busy loops through generators, under main(): python generators.py MODE SECONDS.

MODE genexpr: sum() of a generator expression; forgen: a for loop over a
generator function; both: the two in turn.  Every frame of every stack runs under main() (and the
module); a stack rooted at the generator frame lost its callers."""
import sys
import time


def squares(n):
    for i in range(n):
        yield i * i


def run_genexpr():
    return sum(i * i for i in range(1000))


def run_forgen():
    total = 0
    for x in squares(1000):
        total += x
    return total


def run_both():
    return run_genexpr() + run_forgen()


def main():
    mode, seconds = sys.argv[1], float(sys.argv[2])
    work = {"genexpr": run_genexpr, "forgen": run_forgen, "both": run_both}[mode]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    end = time.time() + seconds
    while time.time() < end:
        work()


if __name__ == "__main__":
    main()
