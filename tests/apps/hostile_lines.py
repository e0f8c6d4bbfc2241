"""Code objects whose line tables are garbage, spinning for argv[1] seconds.

Each spinner's table is replaced (co_lnotab up to 3.9, co_linetable from
3.10 on) by one that no compiler writes: empty, cut short in the middle of a
pair or a varint, line deltas that run far past 2**31 or below 0, tables
much longer than the bytecode (one longer than pyspyc reads at all), and
random bytes.  CPython only reads the table for tracebacks and tracing, so
the spinners run as usual.  Runs on 2.7 and 3.6+."""
import random
import sys

from hostile import make, spin_all

V = sys.version_info[:2]
FILE = "garbage_lines.py"


def varint(v):
    """A location-table varint: 6-bit chunks, least significant first."""
    out = bytearray()
    while v >= 0x40:
        out.append(0x40 | (v & 0x3f))
        v >>= 6
    out.append(v)
    return out


def svarint(v):
    return varint((-v) << 1 | 1 if v < 0 else v << 1)


def noise(seed, n):
    r = random.Random(seed)
    return bytes(bytearray(r.randrange(256) for _ in range(n)))


def pairs(step, delta, n):
    """n (offset increment, line increment) pairs; delta as a signed byte."""
    return bytes(bytearray([step, delta & 0xff] * n))


def location(code, length, body=b""):
    """One 3.11+ location entry: header byte, then what the code needs."""
    return bytes(bytearray([0x80 | code << 3 | (length - 1)])) + bytes(body)


def tables(v=V):
    """{name: (table, co_firstlineno or None)} for version v's format."""
    t = {
        "empty": (b"", None),
        "longer": (noise(1, 20000), None),
        "beyond_cap": (noise(2, 300000), None),
        "huge_first": (b"", 2 ** 31 - 1),
    }
    for seed in range(6):
        t["random%d" % seed] = (noise(100 + seed, 1 + seed * 37), None)
    if v >= (3, 11):
        t.update({
            "cut_varint": (location(14, 1, b"\x41\x40"), None),
            "cut_header": (location(13, 2, b"\x02") + location(14, 8), None),
            "no_header_bit": (b"\x01\x02\x03", None),
            "up": (location(13, 1, svarint(2 ** 31 - 2)) * 4, None),
            "down": (location(13, 1, svarint(-(2 ** 31 - 2))) * 4, None),
            "top_up": (location(13, 8, svarint(1)) * 8, 2 ** 31 - 1),
            "varint_huge": (location(13, 1, b"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x3f"), None),
        })
    else:
        t.update({
            "cut_pair": (b"\x02\x01\x04", None),
            "up": (pairs(0, 127, 40000) + pairs(2, 127, 4000), None),
            "down": (pairs(2, -128, 4000), None),
            "top_up": (pairs(2, 1, 300), 2 ** 31 - 100),
        })
    return t


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    field = "co_linetable" if V >= (3, 10) else "co_lnotab"
    funcs = []
    for name, (table, first) in sorted(tables().items()):
        changes = {field: table}
        if first is not None:
            changes["co_firstlineno"] = first
        funcs.append(make("lines_" + name, FILE, **changes))
    spin_all(funcs, seconds)


if __name__ == "__main__":
    main()
