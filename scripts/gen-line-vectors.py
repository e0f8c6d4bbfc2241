#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Line-table test vectors from real CPython code objects.

    scripts/gen-line-vectors.py [-o tests/unit/py_lines_vectors.h] [PYTHON...]

With no PYTHON arguments, every $(pyenv root)/versions/*/bin/pythonX.Y is
used.  Each interpreter runs this same file with --dump (so it must stay
valid Python 2.7), compiles the snippets below, and prints one JSON line per
code object: the raw line table, co_firstlineno, and the line CPython itself
reports for every bytecode unit.  3.11+ also run with -X no_debug_ranges,
which makes the compiler write the no-column location form.

Expectations come from co_lines() on 3.10+ and dis.findlinestarts() before,
and every one is checked against the interpreter's own PyCode_Addr2Line
(called through ctypes) and, on 3.11+, co_positions(); a disagreement stops
the generator rather than writing a vector nobody can trust.

The output is deterministic: same interpreters, same bytes.
"""
from __future__ import print_function

import json
import os
import re
import subprocess
import sys
import textwrap

# (name, minimum version, source).  "@GAP n" stands for n lines with no code.
SNIPPETS = [
    ("basic", (2, 7), '''
def basic(a, b):
    x = a + b
    # a comment, no code

    y = x * 2
    if x > y:
        return x
    return y

def empty():
    pass

def docstring_only():
    """Only a docstring."""
'''),
    ("gaps", (2, 7), '''
def gaps(n):
    """A docstring long enough to push the first statement down.
@GAP 140
    """
    a = n
@GAP 127
    b = a
@GAP 128
    c = b
@GAP 200
    d = c
@GAP 255
    e = d
@GAP 256
    f = e
@GAP 300
    g = f
@GAP 1000
    h = g
@GAP 70000
    return h
'''),
    ("far", (2, 7), '''
@GAP 100000
def far(x):
    return x + 1
'''),
    ("loops", (2, 7), '''
def loops(xs):
    total = 0
    for x in xs:
        total += x
@GAP 300
        total -= 1
    while total > 0:
        total -= 1
@GAP 150
        if total == 7:
            break
    else:
        total = -1
    return total
'''),
    ("multiline", (2, 7), '''
def multiline(a, b):
    r = call(
        a,
        b,
@GAP 150
        a +
        b,
    )
    s = [
        a,
        b,
    ]
    t = (a
         if r else
         b)
    return (r,
            s,
            t)
'''),
    ("nested", (2, 7), '''
@decorator
@decorator2(
    1)
def decorated(x):
    return x

class K(object):
    attr = 1

    def meth(self):
        f = lambda x: (x +
                       1)
        g = lambda: 0
        return [f(i) for i in range(3)
                if i], dict((k, g()) for k in (1, 2))

def gen(n):
    for i in range(n):
        yield i
    yield (
        n)

def outer():
    def inner(y):
        return y
    return inner
'''),
    ("longline", (2, 7), None),    # built by longline_source()
    ("handlers", (2, 7), '''
def handlers(path):
    try:
        with open(path) as f:
            data = f.read()
    except (IOError, OSError) as e:
        data = None
    finally:
        path = None
    return data

def reraiser():
    try:
        return 1 / 0
    except ZeroDivisionError:
        raise
'''),
    ("async", (3, 6), '''
async def agen(xs):
    async with xs as c:
        async for y in c:
            await y
    return [z async for z in xs]
'''),
    ("walrus", (3, 8), '''
def walrus(xs):
    if (n := len(xs)) > 10:
        return n
    return (f"{n}"
            f"{xs!r:>{n}}")
'''),
    ("match", (3, 10), '''
def matcher(p):
    match p:
        case (0, y):
            return y
        case {"k": v}:
            return v
        case [*_]:
            return 2
@GAP 200
        case _:
            return None
'''),
    ("exceptstar", (3, 11), '''
def groups():
    try:
        raise ExceptionGroup("g", [ValueError()])
    except* ValueError:
        pass
'''),
    ("typeparams", (3, 12), '''
def typed[T](x: T) -> T:
    return x
'''),
]


def longline_source():
    # More than 256 bytes of bytecode on one line (EXTENDED_ARG past name 255
    # too), columns past 80 and 128, and a line of one-column-wide pieces.
    names = ", ".join("v%d" % i for i in range(300))
    deep = " " * 140
    return "\n".join([
        "def longline():",
        "    x = [%s]" % names,
        "    if x:",
        "%sy = x[0] + x[1] + x[2]" % deep,
        "    z = (" + " " * 84 + "x)",
        "    return x,y,z,x,y,z,x,y,z,x,y,z",
        "",
    ])


def expand(src):
    out = []
    for line in src.split("\n"):
        m = re.match(r"^@GAP (\d+)$", line)
        if m:
            # Alternate blank and comment lines: neither produces code.
            out.extend("" if i % 2 else "# gap" for i in range(int(m.group(1))))
        else:
            out.append(line)
    return "\n".join(out)


# ---- --dump: runs under the interpreter being described --------------------

def addr2line_fn():
    import ctypes
    fn = ctypes.pythonapi.PyCode_Addr2Line
    fn.argtypes = [ctypes.py_object, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def walk(co, path, out):
    out.append((path, co))
    seen = {}
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            k = seen.get(c.co_name, 0) + 1
            seen[c.co_name] = k
            name = c.co_name if k == 1 else "%s#%d" % (c.co_name, k)
            walk(c, path + "." + name, out)


def expected(co, ver, unit):
    import dis
    n = len(co.co_code)
    per_byte = [None] * n
    if ver >= (3, 10):
        for start, end, line in co.co_lines():
            for b in range(start, min(end, n)):
                per_byte[b] = -1 if line is None else line
    else:
        starts = list(dis.findlinestarts(co))
        for i, (start, line) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else n
            for b in range(start, min(end, n)):
                per_byte[b] = line
    return [-1 if per_byte[o] is None else per_byte[o]
            for o in range(0, n, unit)]


def dump(variant):
    ver = sys.version_info[:2]
    a2l = addr2line_fn()
    unit = 1 if ver < (3, 6) else 2
    if ver >= (3, 11):
        fmt = "PY_LINES_LOCATION"
    elif ver == (3, 10):
        fmt = "PY_LINES_310"
    elif ver >= (3, 6):
        fmt = "PY_LINES_LNOTAB"
    else:
        fmt = "PY_LINES_LNOTAB_U8"
    for name, minver, src in SNIPPETS:
        if ver < minver:
            continue
        if src is None:
            src = longline_source()
        top = compile(expand(src), "<%s>" % name, "exec")
        objs = []
        walk(top, name + ":<module>", objs)
        for path, co in objs:
            table = co.co_linetable if ver >= (3, 10) else co.co_lnotab
            exp = expected(co, ver, unit)
            for i, line in enumerate(exp):
                got = a2l(co, i * unit)
                if got != line:
                    sys.exit("%s %s: offset %d: expected %d, "
                             "PyCode_Addr2Line says %d"
                             % (ver, path, i * unit, line, got))
            if ver >= (3, 11):
                for i, pos in enumerate(co.co_positions()):
                    line = -1 if pos[0] is None else pos[0]
                    if line != exp[i]:
                        sys.exit("%s %s: offset %d: co_lines says %d, "
                                 "co_positions says %d"
                                 % (ver, path, i * 2, exp[i], line))
            print(json.dumps({
                "python": "%d.%d%s" % (ver[0], ver[1], variant),
                "name": path,
                "format": fmt,
                "firstlineno": co.co_firstlineno,
                "table": "".join("%02x" % b for b in bytearray(table)),
                "unit": unit,
                "lines": exp,
            }, sort_keys=True))


# ---- driver: runs the interpreters, writes the header ----------------------

def find_pythons():
    root = os.environ.get("PYENV_ROOT")
    if not root:
        try:
            root = subprocess.check_output(["pyenv", "root"]).decode().strip()
        except (OSError, subprocess.CalledProcessError):
            root = os.path.expanduser("~/.pyenv")
    found = []
    vdir = os.path.join(root, "versions")
    for v in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
        bindir = os.path.join(vdir, v, "bin")
        for f in sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []:
            m = re.match(r"^python(\d+)\.(\d+)$", f)
            if m:
                found.append(((int(m.group(1)), int(m.group(2))),
                              os.path.join(bindir, f)))
    # One binary per minor version, the newest install wins.
    best = {}
    for ver, path in found:
        best[ver] = path
    return [best[v] for v in sorted(best)]


def run(python):
    ver = subprocess.check_output(
        [python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"])
    ver = tuple(int(x) for x in ver.decode().split())
    runs = [([], "")]
    if ver >= (3, 11):
        runs.append((["-X", "no_debug_ranges"], "-nodebugranges"))
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONNODEBUGRANGES", None)
    vecs = []
    for flags, variant in runs:
        out = subprocess.check_output(
            [python, "-E"] + flags + [os.path.abspath(__file__), "--dump",
                                      variant], env=env)
        vecs.extend(json.loads(l) for l in out.decode().splitlines() if l)
    return vecs


def c_array(ctype, name, values, per_line):
    rows = []
    for i in range(0, len(values), per_line):
        rows.append("\t" + ",".join(values[i:i + per_line]) + ",")
    return "static const %s %s[%d] = {\n%s\n};\n" % (
        ctype, name, len(values), "\n".join(rows))


def version_key(name):
    """"3.10-nodebugranges" sorts after "3.9" and after "3.10"."""
    ver = name.split("-")[0]
    return ([int(x) for x in ver.split(".")], name)


def write_header(vecs, path):
    arrays = {}    # content -> name, so identical arrays are emitted once
    body = []

    def intern(ctype, prefix, values, per_line):
        key = (ctype, tuple(values))
        if key not in arrays:
            arrays[key] = "%s%d" % (prefix, len(arrays))
            body.append(c_array(ctype, arrays[key], values, per_line))
        return arrays[key]

    rows = []
    counts = {}
    for v in vecs:
        counts[v["python"]] = counts.get(v["python"], 0) + 1
        tb = ["0x" + v["table"][i:i + 2] for i in range(0, len(v["table"]), 2)]
        tname = intern("uint8_t", "lv_t", tb, 16) if tb else "NULL"
        lname = intern("int32_t", "lv_l", [str(x) for x in v["lines"]], 20)
        rows.append('\t{ "%s", "%s", %s, %d, %s, %d, %d, %s, %d },' % (
            v["python"], v["name"], v["format"], v["firstlineno"], tname,
            len(tb), v["unit"], lname, len(v["lines"])))

    summary = ", ".join("%s: %d" % (k, counts[k])
                        for k in sorted(counts, key=version_key))
    with open(path, "w") as f:
        f.write("/* py_lines_vectors.h - generated by "
                "scripts/gen-line-vectors.py; do not edit.\n"
                " *\n"
                " * Line tables of real code objects and, for every bytecode "
                "unit, the line the\n"
                " * interpreter reports there (-1: no line).\n"
                " *\n%s\n */\n" % "\n".join(
                    " * " + l for l in textwrap.wrap(
                        "%d vectors: %s." % (len(vecs), summary), 74)))
        f.write("#ifndef PY_LINES_VECTORS_H\n#define PY_LINES_VECTORS_H\n\n"
                "#include <stddef.h>\n#include <stdint.h>\n\n"
                "#include \"pyspyc/py_lines.h\"\n\n"
                "struct line_vector {\n"
                "\tconst char *python;     /* X.Y[-variant] */\n"
                "\tconst char *name;       /* snippet:code object path */\n"
                "\tint format;             /* enum py_line_format */\n"
                "\tint firstlineno;\n"
                "\tconst uint8_t *table;\n"
                "\tsize_t table_len;\n"
                "\tuint32_t unit;          /* bytes between expected lines */\n"
                "\tconst int32_t *lines;   /* line at offset i * unit */\n"
                "\tsize_t n_lines;         /* len(co_code) / unit */\n"
                "};\n\n")
        f.write("\n".join(body))
        f.write("\nstatic const struct line_vector line_vectors[] = {\n")
        f.write("\n".join(rows))
        f.write("\n};\n\n#endif\n")
    return counts


def main(argv):
    if len(argv) >= 2 and argv[1] == "--dump":
        dump(argv[2] if len(argv) > 2 else "")
        return 0
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "tests", "unit", "py_lines_vectors.h")
    args = argv[1:]
    if len(args) >= 2 and args[0] == "-o":
        out = args[1]
        args = args[2:]
    pythons = args or find_pythons()
    if not pythons:
        sys.exit("no interpreters found; pass their paths")
    vecs = []
    for p in pythons:
        vecs.extend(run(p))
    counts = write_header(vecs, out)
    for k in sorted(counts, key=version_key):
        print("%-18s %d vectors" % (k, counts[k]))
    print("wrote %s (%d bytes)" % (os.path.normpath(out), os.path.getsize(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
