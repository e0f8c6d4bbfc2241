"""Interpreter discovery on every version: the fallbacks, and refusals."""
import os
import subprocess

import pytest

from conftest import APPS, PYSPYC, parse_collapsed, share

MODES = ["no-symbols,no-section", "no-version-hints"]


@pytest.mark.parametrize("mode", MODES)
def test_discovery_fallbacks(python, target, tmp_path, mode):
    """Found by scanning .data/.bss (no symbols), or with the version read
    from the PY_VERSION string in .rodata (no Py_Version, no file name)."""
    t = target(python, "split.py", 10)
    out = tmp_path / "f.folded"
    env = dict(os.environ, PYSPYC_FIND=mode)
    r = subprocess.run([PYSPYC, "record", "-p", str(t.pid), "-r", "300", "-d", "1.5",
                        "-o", str(out)], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    stacks = parse_collapsed(out.read_text())
    assert abs(share(stacks, "spin_a") - 0.6) < 0.12, stacks[:5]


def test_bad_find_words():
    env = dict(os.environ, PYSPYC_FIND="no-such-step")
    r = subprocess.run([PYSPYC, "record", "-p", "1"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 2 and "PYSPYC_FIND" in r.stderr


@pytest.mark.parametrize("version,free,message", [
    ("0x031000f0", 0, "runs Python 3.16, which this pyspyc does not support"),
    ("0x030d00f0", 1, "runs a free-threaded build of Python 3.13"),
    ("0x030e00f0", 1, "runs a free-threaded build of Python 3.14"),
    ("0x030f02f0", 1, "runs a free-threaded build of Python 3.15"),
])
def test_unknown_runtime_refused(tmp_path, version, free, message):
    exe = tmp_path / "python3.x"
    subprocess.check_call(["cc", "-rdynamic", "-DVERSION=" + version,
                           "-DFREE_THREADED=%d" % free, "-o", str(exe),
                           os.path.join(APPS, "fake_python.c")])
    p = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        r = subprocess.run([PYSPYC, "record", "-p", str(p.pid), "-o", str(tmp_path / "x.svg")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
    finally:
        p.kill()
        p.wait()
    assert r.returncode == 5 and message in r.stderr, r.stderr
    assert not (tmp_path / "x.svg").exists()
