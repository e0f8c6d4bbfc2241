"""Write seeds for fuzz_lines: real line tables of this Python's own code.

    python gen_lines.py OUTDIR

Each file is one u8 format (py_lines.h), co_firstlineno as a little-endian
u32, then the table.  Runs on 2.7 and 3.6+; run once with each version.
"""
import struct
import sys


def sample(a, b):
    total = 0
    for i in range(a):
        if i % 3:
            total += b
        else:
            try:
                total -= [b][i]
            except IndexError:
                total = -total
    return total


def table(code):
    v = sys.version_info
    if v >= (3, 11):
        return 3, code.co_linetable
    if v >= (3, 10):
        return 2, code.co_linetable
    if v >= (3, 6):
        return 1, code.co_lnotab
    return 4, code.co_lnotab


def main():
    out = sys.argv[1]
    tag = "%d%d" % sys.version_info[:2]
    for name, code in (("sample", sample.__code__), ("table", table.__code__)):
        fmt, tab = table(code)
        with open("%s/%s-%s" % (out, tag, name), "wb") as f:
            f.write(struct.pack("<BI", fmt, code.co_firstlineno) + bytes(tab))


main()
