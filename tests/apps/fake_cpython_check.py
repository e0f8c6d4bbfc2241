#!/usr/bin/env python3
"""Check tests/apps/fake_cpython.c the way an out-of-process reader sees it.

    fake_cpython_check.py EXE [EXE ...]

Starts each fake (built with -DPYV=... -DFT=...), reads its "ready PID" line and
the stacks it says a sampler must find, then decodes its memory through
/proc/PID/mem (as root) knowing only what a reader of CPython 3.14/3.15 knows:
where _PyRuntime is (the .PyRuntime section of the executable plus its load
address), the order of the _Py_DebugOffsets words of each version, the tagging
of _PyStackRef, the _PyStackChunk and _PyCodeArray headers, the unicode state
bits, the location table format, and for threading's names (default builds)
the dict keys header (dk_log2_index_bytes at 9, dk_kind at 10, dk_nentries at
24, indices at 32), the inline values' header (8 bytes), the managed dict
pointer 3 words before an object, and 3.14's tp_basicsize (32) and
ht_cached_keys (880), which its table lacks.  On Python 3.11+ each location
table is also decoded by this Python's own co_lines() (the format is that of
3.11).  Everything else comes from the table.
Prints the stacks it decoded and exits 1 if they differ from the fake's.
Standard library only.
"""
import dis
import os
import struct
import subprocess
import sys
import time

COMMON_HEAD = ["cookie", "version", "free_threaded",
               "runtime_state.size", "runtime_state.finalizing",
               "runtime_state.interpreters_head",
               "interp.size", "interp.id", "interp.next", "interp.threads_head",
               "interp.threads_main", "interp.gc", "interp.imports_modules", "interp.sysdict",
               "interp.builtins", "interp.ceval_gil", "interp.gil_runtime_state",
               "interp.gil_runtime_state_enabled", "interp.gil_runtime_state_locked",
               "interp.gil_runtime_state_holder", "interp.code_object_generation",
               "interp.tlbc_generation"]
FRAME_CODE = ["frame.size", "frame.previous", "frame.executable", "frame.instr_ptr",
              "frame.localsplus", "frame.owner", "frame.stackpointer", "frame.tlbc_index",
              "code.size", "code.filename", "code.name", "code.qualname", "code.linetable",
              "code.firstlineno", "code.argcount", "code.localsplusnames",
              "code.localspluskinds", "code.co_code_adaptive", "code.co_tlbc",
              "pyobject.size", "pyobject.ob_type"]
COLLECTIONS = ["tuple.size", "tuple.ob_item", "tuple.ob_size",
               "list.size", "list.ob_item", "list.ob_size",
               "set.size", "set.used", "set.table", "set.mask",
               "dict.size", "dict.ma_keys", "dict.ma_values",
               "float.size", "float.ob_fval",
               "long.size", "long.lv_tag", "long.ob_digit",
               "bytes.size", "bytes.ob_size", "bytes.ob_sval"]
TAIL = ["gen.size", "gen.gi_name", "gen.gi_iframe", "gen.gi_frame_state",
        "llist.next", "llist.prev",
        "dbg.eval_breaker", "dbg.remote_debugger_support", "dbg.remote_debugging_enabled",
        "dbg.debugger_pending_call", "dbg.debugger_script_path",
        "dbg.debugger_script_path_size"]

# Word order of _Py_DebugOffsets per (major, minor): the struct in
# Include/internal/pycore_debug_offsets.h of 3.14.10 and 3.15.2.
WORDS = {
    (3, 14): COMMON_HEAD +
    ["tstate.size", "tstate.prev", "tstate.next", "tstate.interp", "tstate.current_frame",
     "tstate.thread_id", "tstate.native_thread_id", "tstate.datastack_chunk",
     "tstate.status"] + FRAME_CODE +
    ["type.size", "type.tp_name", "type.tp_repr", "type.tp_flags"] + COLLECTIONS +
    ["unicode.size", "unicode.state", "unicode.length", "unicode.asciiobject_size",
     "gc.size", "gc.collecting"] + TAIL,
    (3, 15): COMMON_HEAD +
    ["tstate.size", "tstate.prev", "tstate.next", "tstate.interp", "tstate.current_frame",
     "tstate.base_frame", "tstate.last_profiled_frame", "tstate.last_profiled_frame_seq",
     "tstate.thread_id", "tstate.native_thread_id", "tstate.datastack_chunk",
     "tstate.status", "tstate.holds_gil", "tstate.gil_requested",
     "tstate.current_exception", "tstate.exc_state", "err_stackitem.exc_value"] + FRAME_CODE +
    ["type.size", "type.tp_name", "type.tp_repr", "type.tp_flags", "type.tp_basicsize",
     "type.tp_dictoffset", "heap_type.size", "heap_type.ht_cached_keys"] + COLLECTIONS +
    ["unicode.size", "unicode.state", "unicode.length", "unicode.asciiobject_size",
     "unicode.compactunicodeobject_size",
     "gc.size", "gc.collecting", "gc.frame", "gc.generation_stats_size",
     "gc.generation_stats"] + TAIL,
}
OWNED_BY_INTERPRETER = 3          # entry frames and the 3.15 base frame
RETURN_VALUE = {(3, 14): 35, (3, 15): 33}
CHUNK_HEADER = 24                 # _PyStackChunk {previous, size, top, data[]}


class Mem:
    def __init__(self, pid):
        self.f = open("/proc/%d/mem" % pid, "rb", buffering=0)

    def read(self, addr, n):
        self.f.seek(addr)
        b = self.f.read(n)
        if len(b) != n:
            raise IOError("short read at 0x%x" % addr)
        return b

    def u64(self, a):
        return struct.unpack("<Q", self.read(a, 8))[0]

    def i64(self, a):
        return struct.unpack("<q", self.read(a, 8))[0]

    def u32(self, a):
        return struct.unpack("<I", self.read(a, 4))[0]

    def i32(self, a):
        return struct.unpack("<i", self.read(a, 4))[0]

    def u8(self, a):
        return self.read(a, 1)[0]

    def cstr(self, a, limit=256):
        b = self.read(a, limit)
        return b.split(b"\0", 1)[0].decode()


def pyruntime_address(pid):
    """The .PyRuntime section's address in the running executable."""
    exe = os.readlink("/proc/%d/exe" % pid)
    with open(exe, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2, "not a 64-bit ELF"
    e_type = struct.unpack_from("<H", elf, 16)[0]
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3a)
    sections = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    stroff = sections[shstrndx][4]
    addr = None
    for name, _typ, _flags, sh_addr, _off, _size in sections:
        if elf[stroff + name:].split(b"\0", 1)[0] == b".PyRuntime":
            addr = sh_addr
    assert addr is not None, "no .PyRuntime section"
    base = 0
    if e_type == 3:  # ET_DYN: add where the file's first page is mapped
        with open("/proc/%d/maps" % pid) as m:
            for line in m:
                parts = line.split()
                if len(parts) >= 6 and parts[5] == exe and int(parts[2], 16) == 0:
                    base = int(parts[0].split("-")[0], 16)
                    break
    return base + addr


def line_for(table, firstlineno, unit, nunits=None):
    """Line of code unit `unit` from a 3.11+ location table (None: no line).
    The whole table is parsed; with nunits, it must cover that many units."""
    i, addr, line, found = 0, 0, firstlineno, None

    def byte():
        nonlocal i
        b = table[i]
        i += 1
        assert not b & 0x80, "entry payload byte 0x%x with the start bit" % b
        return b

    def varint():
        b = byte()
        val, shift = b & 63, 6
        while b & 64:
            b = byte()
            val |= (b & 63) << shift
            shift += 6
        return val

    def svarint():
        v = varint()
        return -(v >> 1) if v & 1 else v >> 1

    while i < len(table):
        b = table[i]
        i += 1
        assert b & 0x80, "location entry without its start bit at %d" % (i - 1)
        code, length = (b >> 3) & 15, (b & 7) + 1
        if code == 15:
            here = None
        elif code == 14:
            line += svarint()
            varint()
            varint()
            varint()
            here = line
        elif code == 13:
            line += svarint()
            here = line
        elif code >= 10:
            line += code - 10
            byte()
            byte()
            here = line
        else:
            byte()
            here = line
        if addr <= unit < addr + length:
            found = here
        addr += length
    assert nunits is None or addr == nunits, "table covers %d of %d units" % (addr, nunits)
    return found


def cpython_lines(table, firstlineno, nunits):
    """{code unit: line} by this Python's own decoder (3.11+: same format)."""
    co = (lambda: None).__code__.replace(
        co_code=bytes([dis.opmap["NOP"], 0]) * nunits, co_linetable=table,
        co_firstlineno=firstlineno, co_exceptiontable=b"")
    return {u: line for start, end, line in co.co_lines() for u in range(start // 2, end // 2)}


class Reader:
    def __init__(self, pid):
        self.pid = pid
        self.m = Mem(pid)
        self.runtime = pyruntime_address(pid)
        head = self.m.read(self.runtime, 24)
        assert head[:8] == b"xdebugpy", "no debug cookie: %r" % head[:8]
        version, free = struct.unpack_from("<QQ", head, 8)
        self.version = version
        self.key = (version >> 24, (version >> 16) & 0xff)
        names = WORDS[self.key]
        raw = self.m.read(self.runtime, 8 * len(names))
        self.o = {n: struct.unpack_from("<Q", raw, 8 * i)[0] for i, n in enumerate(names)}
        self.ft = free
        self.notes = []

    def w(self, name):
        return self.o[name]

    def type_name(self, obj):
        t = self.m.u64(obj + self.w("pyobject.ob_type"))
        return self.m.cstr(self.m.u64(t + self.w("type.tp_name")))

    def string(self, obj):
        assert self.type_name(obj) == "str", "not a str at 0x%x" % obj
        state = self.m.u32(obj + self.w("unicode.state"))
        if self.ft:
            kind, compact, ascii_ = (state >> 8) & 7, (state >> 11) & 1, (state >> 12) & 1
        else:
            kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
        assert compact and kind == 1, "str at 0x%x: state 0x%x" % (obj, state)
        n = self.m.i64(obj + self.w("unicode.length"))
        if ascii_:
            data = obj + self.w("unicode.asciiobject_size")
        else:
            data = obj + self.o.get("unicode.compactunicodeobject_size",
                                    self.w("unicode.asciiobject_size") + 16)
        return self.m.read(data, n).decode("latin-1")

    def bytes_(self, obj):
        assert self.type_name(obj) == "bytes", "not bytes at 0x%x" % obj
        n = self.m.i64(obj + self.w("bytes.ob_size"))
        return self.m.read(obj + self.w("bytes.ob_sval"), n)

    def int_(self, obj):
        assert self.type_name(obj) == "int", "not an int at 0x%x" % obj
        tag = self.m.u64(obj + self.w("long.lv_tag"))
        assert tag & 3 == 0, "not a positive int: lv_tag 0x%x" % tag
        v = 0
        for i in reversed(range(tag >> 3)):
            v = v << 30 | self.m.u32(obj + self.w("long.ob_digit") + 4 * i)
        return v

    def keys_items(self, keys, values=0):
        """[(key, value)] of a PyDictKeysObject's entries; the values from
        an inline values block when it is given (split keys)."""
        lib, kind, n = self.m.u8(keys + 9), self.m.u8(keys + 10), self.m.i64(keys + 24)
        assert kind <= 2 and 0 <= n <= 64 and 3 <= lib <= 24, (kind, n, lib)
        esize, entries = (24 if kind == 0 else 16), keys + 32 + (1 << lib)
        return [(self.m.u64(entries + i * esize + (8 if kind == 0 else 0)),
                 self.m.u64(values + 8 + 8 * i) if values else
                 self.m.u64(entries + i * esize + (16 if kind == 0 else 8))) for i in range(n)]

    def dict_get(self, d, key):
        assert self.type_name(d) == "dict", "not a dict at 0x%x" % d
        assert not self.m.u64(d + self.w("dict.ma_values")), "split dict"
        hits = [v for k, v in self.keys_items(self.m.u64(d + self.w("dict.ma_keys")))
                if self.string(k) == key]
        return hits[0] if hits else None

    def thread_names(self, interp):
        """{ident: name} from sys.modules["threading"]._active, or None."""
        modules = self.m.u64(interp + self.w("interp.imports_modules"))
        mod = modules and self.dict_get(modules, "threading")
        if not mod:
            return None
        assert self.type_name(mod) == "module"
        # PyModuleObject: md_dict is the first field after the header.
        active = self.dict_get(self.m.u64(mod + self.w("pyobject.size")), "_active")
        names = {}
        for k, thread in self.keys_items(self.m.u64(active + self.w("dict.ma_keys"))):
            cls = self.m.u64(thread + self.w("pyobject.ob_type"))
            flags = self.m.u64(cls + self.w("type.tp_flags"))
            assert flags & (1 << 2) and flags & (1 << 4), "Thread without inline values"
            assert not self.m.u64(thread - 24), "a Thread with a dict of its own"
            basic = self.m.i64(cls + self.o.get("type.tp_basicsize", 32))
            values = thread + basic
            assert self.m.u8(values + 3), "inline values not valid"
            keys = self.m.u64(cls + self.o.get("heap_type.ht_cached_keys", 880))
            attrs = {self.string(a): v for a, v in self.keys_items(keys, values)}
            names[self.int_(k)] = self.string(attrs["_name"])
        return names

    def chunks(self, ts):
        out, c = [], self.m.u64(ts + self.w("tstate.datastack_chunk"))
        while c:
            previous, size = self.m.u64(c), self.m.u64(c + 8)
            assert CHUNK_HEADER < size <= 16 << 20, "chunk size %d" % size
            out.append((c + CHUNK_HEADER, c + size))
            c = previous
        return out

    def frame_text(self, f, chunks):
        o = self.w
        size = o("frame.size")
        ref = self.m.u64(f + o("frame.executable"))
        assert ref & 3 != 3, "tagged int as f_executable"
        code = ref & ~3
        self.tags.append(ref & 3)
        assert self.type_name(code) == "code", "f_executable 0x%x is a %s" % (
            ref, self.type_name(code))
        assert any(lo <= f and f + size <= hi for lo, hi in chunks), \
            "Python frame 0x%x outside the thread's data stack" % f
        ip = self.m.u64(f + o("frame.instr_ptr"))
        base = code + o("code.co_code_adaptive")
        if o("frame.tlbc_index") and o("code.co_tlbc"):
            idx = self.m.i32(f + o("frame.tlbc_index"))
            if idx:
                arr = self.m.u64(code + o("code.co_tlbc"))
                n = self.m.i64(arr)
                assert 0 < idx < n <= 2048, "tlbc index %d of %d" % (idx, n)
                entry = self.m.u64(arr + 8 + 8 * idx)
                if entry:
                    base = entry
                    self.tlbc_frames += 1
        nunits = self.m.i64(code + o("tuple.ob_size"))  # PyVarObject ob_size: code units
        unit = (ip - base) // 2
        assert (ip - base) % 2 == 0 and 0 <= unit < nunits, \
            "instr_ptr 0x%x not in the bytecode at 0x%x (%d units)" % (ip, base, nunits)
        op = self.m.u8(ip)
        assert op != RETURN_VALUE[self.key], "frame at a RETURN_VALUE"
        firstlineno = self.m.i32(code + o("code.firstlineno"))
        table = self.bytes_(self.m.u64(code + o("code.linetable")))
        line = line_for(table, firstlineno, unit, nunits)
        if sys.version_info >= (3, 11):
            real = cpython_lines(table, firstlineno, nunits)
            mine = {u: line_for(table, firstlineno, u) for u in range(nunits)}
            assert real == mine, "this Python decodes the table otherwise: %r %r" % (real, mine)
            self.cross_checked += 1
        qual = self.string(self.m.u64(code + o("code.qualname")))
        name = self.string(self.m.u64(code + o("code.name")))
        fname = self.string(self.m.u64(code + o("code.filename")))
        assert qual.endswith(name), (qual, name)
        return "%s (%s:%d)" % (qual, fname, line)

    def thread(self, ts):
        o = self.w
        self.regions.append((ts, o("tstate.size")))
        tid = self.m.u64(ts + o("tstate.native_thread_id"))
        with open("/proc/%d/task/%d/comm" % (self.pid, tid)) as f:
            name = f.read().rstrip("\n")
        if self.tnames is not None:
            ident = self.m.u64(ts + o("tstate.thread_id"))
            assert self.tnames.get(ident) == name, \
                "threading names thread %d %r, the OS %r" % (tid, self.tnames.get(ident), name)
            self.named += 1
        chunks = self.chunks(ts)
        self.regions += [(lo - CHUNK_HEADER, hi - lo + CHUNK_HEADER) for lo, hi in chunks]
        frames, f, last, entries = [], self.m.u64(ts + o("tstate.current_frame")), 0, 0
        depth = 0
        while f:
            depth += 1
            assert depth < 1536, "frame chain loops"
            owner = self.m.u8(f + o("frame.owner"))
            self.regions.append((f, o("frame.size")))
            if owner == OWNED_BY_INTERPRETER:
                entries += 1
            else:
                frames.append(self.frame_text(f, chunks))
            last = f
            f = self.m.u64(f + o("frame.previous"))
        if "tstate.base_frame" in self.o:
            bf = self.m.u64(ts + o("tstate.base_frame"))
            assert bf and last == bf, "chain ends at 0x%x, base frame 0x%x" % (last, bf)
            assert self.m.u8(bf + o("frame.owner")) == OWNED_BY_INTERPRETER
        self.notes.append("thread %d: %d Python frames, %d owner-3 frames (entry%s), "
                          "%d data-stack chunk(s)" % (
                              tid, len(frames), entries,
                              "/base" if "tstate.base_frame" in self.o else "", len(chunks)))
        return tid, 'thread %d "%s";%s 1' % (tid, name, ";".join(reversed(frames)))

    def stacks(self):
        o = self.w
        self.tags, self.tlbc_frames, self.cross_checked, self.notes = [], 0, 0, []
        self.regions = [(self.runtime, o("runtime_state.size"))]
        interp = self.m.u64(self.runtime + o("runtime_state.interpreters_head"))
        assert interp and not self.m.u64(interp + o("interp.next"))
        main = self.m.u64(interp + o("interp.threads_main"))
        gil = interp + o("interp.gil_runtime_state")
        locked = self.m.i32(interp + o("interp.gil_runtime_state_locked"))
        holder = self.m.u64(interp + o("interp.gil_runtime_state_holder")) if locked else 0
        enabled = self.m.i32(gil + o("interp.gil_runtime_state_enabled")) if self.ft else 1
        assert self.m.u64(interp + o("interp.ceval_gil")) == gil
        self.tnames, self.named = (None if self.ft else self.thread_names(interp)), 0
        out, ts, seen = [], self.m.u64(interp + o("interp.threads_head")), 0
        while ts:
            seen += 1
            assert seen < 1000
            assert self.m.u64(ts + o("tstate.interp")) == interp
            nxt = self.m.u64(ts + o("tstate.next"))
            if nxt:
                assert self.m.u64(nxt + o("tstate.prev")) == ts, "prev link broken"
            out.append(self.thread(ts))
            ts = nxt
        self.notes.append("version 0x%08x free_threaded %d; GIL enabled %d locked %d, "
                          "holder %s" % (self.version, self.ft, enabled, locked,
                                         "main thread" if holder and holder == main
                                         else hex(holder)))
        self.notes.append("f_executable tags: %d tagged, %d untagged; %d frame(s) read "
                          "through thread-local bytecode" % (
                              sum(1 for t in self.tags if t), sum(1 for t in self.tags if not t),
                              self.tlbc_frames))
        self.notes.append("location tables of %d frame(s) decoded alike by this Python %s" % (
            self.cross_checked, sys.version.split()[0]))
        self.notes.append("%d thread(s) named alike by threading._active and the OS" %
                          self.named)
        return [line for _, line in sorted(out)]

    def snapshot(self):
        return [self.m.read(a, n) for a, n in self.regions]

    def running(self):
        """OS ids of the threads seen running (state R) in a few looks."""
        seen = set()
        for _ in range(20):
            for tid in os.listdir("/proc/%d/task" % self.pid):
                with open("/proc/%d/task/%s/stat" % (self.pid, tid)) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "R":
                        seen.add(int(tid))
            time.sleep(0.02)
        return seen


def check(exe):
    p = subprocess.Popen([exe, "20"], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        ready = p.stdout.readline().split()
        assert ready[0] == "ready" and int(ready[1]) == p.pid, ready
        expected = sorted(p.stdout.readline().rstrip("\n") for _ in range(2))
        r = Reader(p.pid)
        got = r.stacks()
        before = r.snapshot()
        running = r.running()
        time.sleep(0.5)
        assert r.snapshot() == before, "laid-out memory changed while spinning"
        assert r.stacks() == got
        r.notes.append("%d regions unchanged after a second; threads seen running: %s" % (
            len(before), sorted(running)))
        assert len(running) == 2, "not both threads on a CPU"
    finally:
        p.kill()
        p.wait()
    print("== %s" % exe)
    for n in r.notes:
        print("   " + n)
    for line in got:
        print(line)
    if got != expected:
        print("MISMATCH; the fake expects:")
        for line in expected:
            print(line)
        return False
    return True


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ok = all([check(exe) for exe in sys.argv[1:]])
    print("all match" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
