"""Spin at a fixed stack depth: argv[1] frames deep (default 25) for argv[2]
seconds (default 5).  Used for the per-sample cost benchmark and the deep
recursion tests."""
import sys
import time


def leaf(end):
    x = 0
    while time.time() < end:
        x += 1
    return x


def recurse(n, end):
    if n <= 1:
        return leaf(end)
    return recurse(n - 1, end)


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    sys.setrecursionlimit(max(1000, depth + 100))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # main + <module> are two frames; recurse fills the rest, leaf is one.
    recurse(max(1, depth - 3), time.time() + seconds)


if __name__ == "__main__":
    main()
