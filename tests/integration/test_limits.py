"""Bounds on what a run keeps: a full table is a bound hit, counted and named
with the option that raises it, never read errors or torn stacks.

The target has 1200 threads, each waiting in two functions of its own
(tests/apps/many_threads.py distinct): with -i every sample holds some 2400
distinct code objects, more than the smallest --max-frames table holds.
"""
import re

import pytest

from conftest import PYTHONS, Target, parse_collapsed, run_pyspyc

THREADS = 1200


@pytest.fixture(scope="module")
def crowd():
    py = [p for p in PYTHONS if p[2] == (3, 11)] or PYTHONS[:1]
    if not py:
        pytest.skip("no supported CPython found")
    t = Target(py[0][1], "many_threads.py", THREADS, 120, "distinct")
    yield t
    t.stop()


def record(t, *args):
    r = run_pyspyc(["record", "-p", str(t.pid), "-i", "-d", "1", "-f", "collapsed",
                    "-o", "-"] + list(args), timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) samples, (\d+) errors, (\d+) torn stacks", r.stderr)
    assert m, r.stderr
    return parse_collapsed(r.stdout), [int(x) for x in m.groups()], r.stderr


def dropped_for(stderr, option):
    m = re.search(r"(\d+) stacks dropped: table full, raise %s\b" % option, stderr)
    return int(m.group(1)) if m else 0


def test_full_frame_table_is_named_not_torn(crowd):
    stacks, (samples, errors, torn), err = record(crowd, "--max-frames", "1024")
    assert samples > 0, err
    assert errors == 0 and torn == 0, err
    assert dropped_for(err, "--max-frames") > 0, err
    # The stacks whose frames fit are kept.
    assert stacks, err


def test_full_stack_table_is_named_not_torn(crowd):
    stacks, (samples, errors, torn), err = record(crowd, "--max-stacks", "16")
    assert samples > 0, err
    assert errors == 0 and torn == 0, err
    assert dropped_for(err, "--max-stacks") > 0, err
    assert 0 < len(stacks) <= 16, err
