"""A fast subset of the benchmarks (scripts/bench/bench.py, `make bench`):
the profiler's CPU per sample at 25 frames and the rate fidelity at 1 kHz,
a few seconds each, through the benchmark's own measuring functions.

The limits are generous, far from the issue's targets, so that a loaded
2-core machine does not make them flake; they fail when sampling breaks
(no samples, stacks of the wrong depth) or becomes many times slower.
`make bench` measures the real figures."""
import importlib.util
import os

import pytest

from conftest import PYSPYC, ROOT

pytestmark = pytest.mark.serial


def _load_bench():
    path = os.path.join(ROOT, "scripts", "bench", "bench.py")
    spec = importlib.util.spec_from_file_location("pyspyc_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()

# The targets are 5 us per sample at 25 frames and 99% at 1 kHz.
COST_LIMIT_US = 100.0
FIDELITY_LIMIT_PCT = 90.0


@pytest.fixture
def env():
    """The benchmark's process keeper: every target and pyspyc it starts is
    killed at the end of the test."""
    with bench.Env(PYSPYC) as e:
        yield e


def test_cost_per_sample(one_python, env):
    s = bench.Settings(quick=True)
    s.cost_warm, s.cost_short, s.cost_extra, s.cost_pairs = 0.3, 0.5, 4000, 1
    c = bench.measure_cost(env, one_python, 25, s)
    print("cost: %.2f us per sample warm (%.2f us with start-up), %d extra samples"
          % (c["us"], c["whole_us"], c["dsamples"]))
    # The long run is meant for 4,000 samples more than the short one;
    # half of them is the least a working sampler takes on a busy machine.
    assert c["dsamples"] >= 2000, c
    assert c["depths"] == [25], "bench_deep.py 25 must give stacks of 25 frames: %r" % c
    assert 0 < c["us"] <= COST_LIMIT_US, c
    assert 0 < c["whole_us"] <= 2 * COST_LIMIT_US, c


def test_fidelity_1khz(one_python, env):
    f = bench.measure_fidelity(env, one_python, 1000, 3.0)
    print("fidelity: %d of %d samples at 1 kHz (%.2f%%), %d late ticks"
          % (f["got"], f["expected"], f["pct"], f["late"]))
    assert FIDELITY_LIMIT_PCT <= f["pct"] <= 101.0, f
    assert f["errors"] == 0, f
