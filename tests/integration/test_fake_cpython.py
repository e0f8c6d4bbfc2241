"""The synthetic CPython 3.14 and 3.15 targets (tests/apps/fake_cpython.c):
processes that lay out, in their own memory, what those interpreters lay out
(default and free-threaded builds), for testing where they cannot be
installed.  Each image is first checked by an independent decoder
(tests/apps/fake_cpython_check.py) against the stacks the fake says a
sampler must find; then pyspyc is run on it.  Until pyspyc reads these
versions it must refuse them by name, never misread them."""
import os
import subprocess
import sys

import pytest

from conftest import APPS, PYSPYC

BUILDS = [("3.14", "0x030e", 0), ("3.14", "0x030e", 1),
          ("3.15", "0x030f", 0), ("3.15", "0x030f", 1)]
IDS = ["%s%s" % (v, "t" if ft else "") for v, _, ft in BUILDS]


@pytest.fixture(scope="module", params=BUILDS, ids=IDS)
def fake(request, tmp_path_factory):
    version, pyv, ft = request.param
    exe = tmp_path_factory.mktemp("fake") / ("python%s%s" % (version, "t" if ft else ""))
    subprocess.check_call(["cc", "-O1", "-g", "-rdynamic", "-pthread", "-DPYV=" + pyv,
                           "-DFT=%d" % ft, "-o", str(exe),
                           os.path.join(APPS, "fake_cpython.c")])
    return version, ft, str(exe)


def test_image_decodes_to_its_stacks(fake):
    _, _, exe = fake
    r = subprocess.run([sys.executable, os.path.join(APPS, "fake_cpython_check.py"), exe],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    assert r.returncode == 0 and "all match" in r.stdout, r.stdout[-2000:]


def test_refused_by_name(fake, tmp_path):
    version, _, exe = fake
    p = subprocess.Popen([exe, "30"], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline().startswith("ready ")
        r = subprocess.run([PYSPYC, "record", "-p", str(p.pid), "-d", "1",
                            "-o", str(tmp_path / "x.svg")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
    finally:
        p.kill()
        p.wait()
    assert r.returncode == 5, r.stderr
    assert "runs Python %s, which this pyspyc does not support" % version in r.stderr, r.stderr
    assert not (tmp_path / "x.svg").exists()
