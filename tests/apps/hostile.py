"""Code objects with hostile names and file names, spinning for argv[1]
seconds.  Nothing in a profile of this may be executed or break a format."""
import sys
import time

NAMES = [
    "<script>alert(1)</script>",
    "quote\"'and`back",
    "semi;colon",
    "new\nline",
    "tab\there",
    "sp ace",
    "amp&lt;",
    "\u00e9t\u00e9\u2603\U0001f600",
    "surrogate\udcff",
    "x" * 5000,
]
FILE = "a;b <c>&d\"'.py"

SRC = """
def spin(end):
    x = 0
    while now() < end:
        x += 1
    return x
"""


def make(name):
    g = {"now": time.time}
    exec(compile(SRC, FILE, "exec"), g)
    f = g["spin"]
    kw = {"co_name": name}
    if sys.version_info >= (3, 11):
        kw["co_qualname"] = name
    f.__code__ = f.__code__.replace(**kw)
    return f


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    funcs = [make(n) for n in NAMES]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop = time.time() + seconds
    while time.time() < stop:
        for f in funcs:
            f(time.time() + 0.003)


if __name__ == "__main__":
    main()
