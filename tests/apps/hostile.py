"""Code objects with hostile names and file names, spinning for argv[1]
seconds.  Nothing in a profile of this may be executed or break a format.

Runs on 2.7 and 3.6+.  On 2.7 names and file names are byte strings, so
there they are the UTF-8 of the text ones (lone surrogates included, which
2.7 encodes as is) and some bytes that are no UTF-8 at all.  The integration
tests import this module to know what the target holds: names() and files()
give it for either kind of interpreter."""
import sys
import time
import types

PY2 = sys.version_info[0] == 2
LONG = 100000

NAMES = [
    u"<script>alert(1)</script>",
    u"quote\"'and`back",
    u"semi;colon",
    u"new\nline",
    u"cr\rreturn",
    u"tab\there",
    u"nul\x00byte",
    u"sp ace",
    u"amp&lt;",
    u"\u00e9t\u00e9\u2603\U0001f600",
    u"surrogate\udcff",
    u"fmt%s%n%x{0}",
    u"shell$(touch pwned)`id`",
    u"cdata]]>--><!--",
    u"ls\u2028ps\u2029rtl\u202eesc\x1b[2J",
    u"x" * LONG,
    u"\U0001f600" * LONG,
]
# Byte strings only 2.7 can name a function with.
BAD_BYTES = [
    b"bad\xff\xfebytes",
    b"overlong\xc0\xafslash",
    b"cut\xe2\x82",
    b"surr\xed\xa0\x80gate",
]
FILE = u"a;b <c>&d\"'.py"
FILES = [
    FILE,
    u"new\nline\x00nul.py",
    u"<script>x</script>.py",
    u"f" * LONG + u".py",
    u"\U0001f600" * LONG,
    u"/" + u"\u00e9" * LONG,
]

SRC = """
def spin(end):
    x = 0
    while now() < end:
        x += 1
    return x
"""

# types.CodeType's arguments in order, where code.replace() is missing.
CODE_ARGS_27 = ["co_argcount", "co_nlocals", "co_stacksize", "co_flags", "co_code",
                "co_consts", "co_names", "co_varnames", "co_filename", "co_name",
                "co_firstlineno", "co_lnotab", "co_freevars", "co_cellvars"]
CODE_ARGS_36 = CODE_ARGS_27[:1] + ["co_kwonlyargcount"] + CODE_ARGS_27[1:]


# The spinners take turns by the process's CPU time, not the wall clock: on a
# loaded machine a turn the target spent waiting for a CPU would otherwise
# pass unsampled, and a spinner could go unseen.
_cpu = getattr(time, "process_time", None) or time.clock


def native(s, py2):
    """s as a code object of that kind of interpreter holds a name."""
    if not py2 or isinstance(s, bytes):
        return s
    return s.encode("utf-8") if PY2 else s.encode("utf-8", "surrogatepass")


def names(py2=PY2):
    return [native(n, py2) for n in NAMES] + (BAD_BYTES if py2 else [])


def files(py2=PY2):
    return [native(f, py2) for f in FILES] + (BAD_BYTES[:1] if py2 else [])


def recode(code, **changes):
    """code with some of its co_* fields changed, on any version."""
    if hasattr(code, "replace"):
        return code.replace(**changes)
    args = CODE_ARGS_27 if PY2 else CODE_ARGS_36
    return types.CodeType(*[changes.get(a, getattr(code, a)) for a in args])


def make(name, file=None, src=SRC, **changes):
    g = {"now": _cpu}
    exec(compile(src, "hostile-src", "exec"), g)
    f = g["spin"]
    changes["co_name"] = native(name, PY2)
    changes["co_filename"] = native(file or FILE, PY2)
    if sys.version_info >= (3, 11):
        changes["co_qualname"] = name
    f.__code__ = recode(f.__code__, **changes)
    return f


def spin_all(funcs, seconds):
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop = time.time() + seconds
    while time.time() < stop:
        for f in funcs:
            f(_cpu() + 0.003)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    fs = files()
    spin_all([make(n, fs[i % len(fs)]) for i, n in enumerate(names())], seconds)


if __name__ == "__main__":
    main()
