"""Output paths that are not regular files (pyspyc(1), WHERE OUTPUTS GO):
pyspyc's own descriptors are written through, character devices and
FIFOs are written in place, directories, block devices, sockets and other
users' FIFOs in sticky directories are refused, and nothing is ever
replaced by a file.

Everything happens in a private mount namespace that a `sleep` holds
(unshare --mount): a tmpfs on a scratch directory takes the device nodes
(made with the numbers of null and full), FIFOs and sockets, and a tmpfs
over /dev takes the /dev/stdout and /dev/stderr symlinks of the cases that
name them.  The system's own /dev is never touched, whatever pyspyc does.
The test reads the namespace's files through /proc/HOLDER/root."""
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import APPS, PYSPYC, PYTHONS, parse_collapsed

USAGE, OUTPUT = 2, 6

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, mount)")


class Namespace:
    """A private mount namespace: run commands in it, see its files."""

    def __init__(self, scratch):
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                        "sleep", "600"])
        self.scratch = scratch
        mine = os.readlink("/proc/self/ns/mnt")
        end = time.time() + 10
        while os.readlink("/proc/%d/ns/mnt" % self.holder.pid) == mine:
            assert time.time() < end, "unshare did not make a mount namespace"
            time.sleep(0.01)
        self.sh("mount -t tmpfs -o mode=755 pyspyc-scratch %s" % scratch)

    def sh(self, script):
        subprocess.check_call(["nsenter", "-t", str(self.holder.pid), "-m", "sh", "-ec", script])

    def run(self, args, **kw):
        """pyspyc args in the namespace."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", PYSPYC] + args,
                              universal_newlines=True, timeout=60, **kw)

    def popen(self, args, **kw):
        return subprocess.Popen(["nsenter", "-t", str(self.holder.pid), "-m", PYSPYC] + args,
                                universal_newlines=True, **kw)

    def path(self, p):
        """p as the namespace sees it, from outside."""
        return "/proc/%d/root%s" % (self.holder.pid, p)

    def close(self):
        self.holder.kill()
        self.holder.wait()


@pytest.fixture(scope="module")
def py():
    """A running Python target for the module (the version does not matter)."""
    if not PYTHONS:
        pytest.skip("no supported CPython found")
    exe = [p[1] for p in PYTHONS if p[2] == (3, 11)] or [PYTHONS[0][1]]
    p = subprocess.Popen([exe[0], os.path.join(APPS, "split.py"), "300"],
                         stdout=subprocess.PIPE, universal_newlines=True)
    assert p.stdout.readline().strip() == "ready"
    yield str(p.pid)
    p.kill()
    p.wait()


@pytest.fixture
def ns(tmp_path):
    scratch = tmp_path / "s"
    scratch.mkdir()
    n = Namespace(str(scratch))
    n.s = str(scratch)
    yield n
    n.close()


@pytest.fixture
def ns_dev(ns):
    """The namespace with a tmpfs over /dev holding what the cases name."""
    ns.sh("mount -t tmpfs -o mode=755 pyspyc-dev /dev; cd /dev; mknod -m 666 null c 1 3; "
          "ln -s /proc/self/fd fd; ln -s /proc/self/fd/1 stdout; "
          "ln -s /proc/self/fd/2 stderr")
    return ns


def record(py, *outs):
    args = ["record", "-p", py, "-d", "0.3", "-f", "raw"]
    for o in outs:
        args += ["-o", o]
    return args


def summary(stderr):
    lines = [l for l in stderr.splitlines() if " samples, " in l]
    assert len(lines) == 1, stderr
    return lines[0]


def check_stacks(text):
    stacks = parse_collapsed(text)
    assert sum(c for _, c in stacks) > 0, text


def mode_of(ns, p):
    return os.lstat(ns.path(p)).st_mode


# --- written in place ------------------------------------------------------

def test_char_device_null(py, ns):
    null = ns.s + "/null"
    os.mknod(ns.path(null), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    r = ns.run(["record", "-p", py, "-d", "0.3", "-f", "flamegraph", "-o", null])
    assert r.returncode == 0, r.stderr
    assert "wrote " + null in summary(r.stderr)
    st = os.lstat(ns.path(null))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_char_device_full(py, ns):
    full = ns.s + "/full"
    os.mknod(ns.path(full), 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    r = ns.run(record(py, full))
    assert r.returncode == OUTPUT, r.stderr
    assert "pyspyc: writing '%s' failed: No space left on device" % full in r.stderr
    assert "wrote" not in summary(r.stderr)
    assert stat.S_ISCHR(mode_of(ns, full))


def test_fifo_with_reader(py, ns):
    fifo = ns.s + "/fifo"
    os.mkfifo(ns.path(fifo))
    reader = subprocess.Popen(["cat", ns.path(fifo)], stdout=subprocess.PIPE,
                              universal_newlines=True)
    try:
        r = ns.run(record(py, fifo))
        out, _ = reader.communicate(timeout=10)
    finally:
        if reader.poll() is None:
            reader.kill()  # pyspyc never opened it
            reader.wait()
    assert r.returncode == 0, r.stderr
    assert "wrote " + fifo in summary(r.stderr)
    check_stacks(out)
    assert stat.S_ISFIFO(mode_of(ns, fifo))


def test_fifo_without_reader_sigint(py, ns):
    """No reader: pyspyc says it waits, and Ctrl-C gives up (status 6)."""
    fifo = ns.s + "/fifo"
    os.mkfifo(ns.path(fifo))
    p = ns.popen(record(py, fifo), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = p.stderr.readline()
        assert first == "pyspyc: waiting for a reader of '%s' (Ctrl-C gives up)\n" % fifo, first
        p.send_signal(signal.SIGINT)  # nsenter passes it on
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == OUTPUT, err
    assert "pyspyc: writing '%s' failed: gave up waiting for a reader" % fifo in err, err
    assert "wrote" not in summary(err)
    assert stat.S_ISFIFO(mode_of(ns, fifo))


def test_fifo_replaced_during_the_run(py, ns):
    """A FIFO swapped for a regular file after start-up is not written
    through (nor truncated): the file is not what was checked."""
    fifo = ns.s + "/fifo"
    os.mkfifo(ns.path(fifo))
    # The launched command swaps it: it runs only after the checks.
    swap = "import os, time; os.unlink(%r); open(%r, 'w').write('keep'); time.sleep(1)" % (
        fifo, fifo)
    r = ns.run(["record", "-f", "raw", "-o", fifo, "--", PYTHONS[0][1], "-c", swap])
    assert r.returncode == OUTPUT, r.stderr
    assert "pyspyc: writing '%s' failed: it is no longer the file" % fifo in r.stderr, r.stderr
    with open(ns.path(fifo)) as f:
        assert f.read() == "keep"


# --- pyspyc's own descriptors ----------------------------------------------

@pytest.mark.parametrize("name,fd", [("/dev/stdout", 1), ("/dev/stderr", 2),
                                     ("/proc/self/fd/1", 1), ("/dev/fd/1", 1),
                                     ("{s}/to-stdout", 1)])
def test_own_descriptor(py, ns_dev, name, fd):
    ns = ns_dev
    name = name.format(s=ns.s)
    if name.endswith("to-stdout"):
        os.symlink("/dev/stdout", ns.path(name))
    before = {p: os.readlink(ns.path(p)) for p in ("/dev/stdout", "/dev/stderr", "/dev/fd")}
    r = ns.run(record(py, name))
    assert r.returncode == 0, r.stderr
    assert "wrote " + name in summary(r.stderr)
    if fd == 1:
        check_stacks(r.stdout)
    else:
        assert r.stdout == ""
        check_stacks("".join(l + "\n" for l in r.stderr.splitlines() if " samples, " not in l))
    # The names are as they were: nothing was replaced by a file.
    assert {p: os.readlink(ns.path(p)) for p in before} == before
    assert sorted(os.listdir(ns.path(ns.s))) == (["to-stdout"] if "to-stdout" in name else [])


def test_descriptor_not_open(py, ns_dev):
    r = ns_dev.run(record(py, "/dev/fd/9"))
    assert r.returncode == OUTPUT, r.stderr
    assert r.stderr == "pyspyc: cannot write '/dev/fd/9': descriptor 9 is not open for " \
                       "writing\n"


def test_reader_closes_stdout(py):
    """The reader of -o - goes before pyspyc writes (| head -c 10, early):
    status 0, and the summary says the output was cut short."""
    p = subprocess.Popen([PYSPYC] + record(py, "-"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    p.stdout.close()  # the only reader
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    line = summary(err)
    assert line.endswith("; stdout cut short: its reader closed it"), err
    assert "wrote" not in line
    assert len(err.splitlines()) == 1, err


# --- replaced, as a file ---------------------------------------------------

def test_symlink_to_regular_file_is_replaced(py, ns):
    victim, link = ns.s + "/victim", ns.s + "/link.folded"
    with open(ns.path(victim), "w") as f:
        f.write("keep me")
    os.symlink(victim, ns.path(link))
    r = ns.run(record(py, link))
    assert r.returncode == 0, r.stderr
    assert stat.S_ISREG(mode_of(ns, link))
    with open(ns.path(link)) as f:
        check_stacks(f.read())
    with open(ns.path(victim)) as f:
        assert f.read() == "keep me"


# --- refused before sampling -----------------------------------------------

def _make_socket(ns, path):
    # A socket's name is short (108 bytes): bind it from its directory.
    subprocess.check_call(["nsenter", "-t", str(ns.holder.pid), "-m", "python3", "-c",
                           "import os, socket; os.chdir(%r); "
                           "socket.socket(socket.AF_UNIX).bind(%r)" %
                           (os.path.dirname(path), os.path.basename(path))])


@pytest.mark.parametrize("kind,says", [("directory", "a directory"),
                                       ("block", "it is a block device"),
                                       ("socket", "it is a socket"),
                                       ("foreign-fifo", "another user's FIFO"),
                                       ("foreign-device", "another user's FIFO or device"),
                                       ("foreign-link", "another user's symlink")])
def test_refused(py, ns, kind, says):
    d = ns.s
    if kind.startswith("foreign"):
        d = ns.s + "/tmp"  # like /tmp: sticky, anyone may write
        os.mkdir(ns.path(d))
        os.chmod(ns.path(d), 0o1777)
    name = d + "/" + kind
    if kind == "directory":
        os.mkdir(ns.path(name))
    elif kind == "block":
        os.mknod(ns.path(name), 0o644 | stat.S_IFBLK, os.makedev(7, 0))
    elif kind == "socket":
        _make_socket(ns, name)
    elif kind == "foreign-fifo":
        os.mkfifo(ns.path(name))
    elif kind == "foreign-device":
        os.mknod(ns.path(name), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        # nobody's symlink in the sticky directory, to a FIFO of root's
        os.mkfifo(ns.path(ns.s + "/fifo"))
        os.symlink(ns.s + "/fifo", ns.path(name))
    os.lchown(ns.path(name), 65534, 65534)  # nobody's
    before = os.lstat(ns.path(name))
    r = ns.run(record(py, name))
    assert r.returncode == OUTPUT, r.stderr
    assert r.stderr.startswith("pyspyc: cannot write '%s': " % name) and says in r.stderr, \
        r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stdout == ""
    after = os.lstat(ns.path(name))
    assert (after.st_mode, after.st_ino, after.st_uid) == \
        (before.st_mode, before.st_ino, before.st_uid)


@pytest.mark.parametrize("a,b", [("{s}/null", "{s}/../s/./null"),
                                 ("{s}/p.folded", "{s}//p.folded"),
                                 ("-", "/dev/stdout"),
                                 ("/dev/stdout", "/proc/self/fd/1"),
                                 ("{s}/null", "{s}/to-null")])
def test_same_file_twice(py, ns_dev, a, b):
    """Two -o that are one file, by device and inode, not by string."""
    ns = ns_dev
    a, b = a.format(s=ns.s), b.format(s=ns.s)
    os.mknod(ns.path(ns.s + "/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.symlink(ns.s + "/null", ns.path(ns.s + "/to-null"))
    r = ns.run(record(py, a, b))
    assert r.returncode == USAGE, r.stderr
    assert r.stderr == "pyspyc: '-o %s' is the same file as '-o %s'\n" % (b, a)
    assert r.stdout == ""
    assert sorted(os.listdir(ns.path(ns.s))) == ["null", "to-null"]
    assert stat.S_ISLNK(mode_of(ns, "/dev/stdout"))


def test_long_name_shown_with_its_end(py, ns):
    """A name too long for a message keeps its start and its end."""
    whole = ns.s + "/missing/" + "n" * 300 + ".svg"
    cut = ns.s + "/missing/" + "m" * 600 + ".svg"
    r = ns.run(["record", "-p", py, "-o", whole])
    assert r.returncode == OUTPUT
    assert r.stderr == "pyspyc: cannot write '%s': No such file or directory\n" % whole
    r = ns.run(["record", "-p", py, "-o", cut])
    assert r.returncode == OUTPUT
    shown = r.stderr.split("'")[1]
    assert len(shown) == 400 and "..." in shown, r.stderr
    head, tail = shown.split("...")
    assert cut.startswith(head) and cut.endswith(tail) and tail.endswith("m.svg")
