#!/bin/sh
# Run every test: the C unit tests (cmocka), a short run of each fuzzer,
# then the integration suite (pytest against every CPython found).  Ends
# with one line "N passed, N failed" and exits non-zero when anything failed.
#
# Environment: PYSPYC (the binary), BUILD (where unit tests were built),
# FUZZ_BINS (the fuzzers; empty: none, as under SAN=1), FUZZ_OBJ (their
# scratch directory), FUZZ_SMOKE_SECONDS (each fuzzer's run, 15).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYSPYC=${PYSPYC:-$PWD/pyspyc}
export PYSPYC

passed=0
failed=0
skipped=0

for t in "$BUILD"/tests/test_*; do
	case "$t" in *.d) continue ;; esac
	[ -x "$t" ] || continue
	out=$("$t" 2>&1)
	rc=$?
	# Summed over the groups a test program runs.
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or exited early
	fi
	echo "unit $(basename "$t"): $p passed, $f failed"
	[ "$f" -eq 0 ] || printf '%s\n' "$out" | grep -E "FAIL|ERROR|error|Assert" | head -n 20
	passed=$((passed + p))
	failed=$((failed + f))
done

# Each fuzzer is one test (tests/fuzz/run.sh runs one per CPU at a time).
nfuzz=$(echo ${FUZZ_BINS:-} | wc -w)
if [ "$nfuzz" -gt 0 ]; then
	# shellcheck disable=SC2086
	out=$(./tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-15}" "${FUZZ_OBJ:-build-fuzz}" $FUZZ_BINS)
	printf '%s\n' "$out"
	# Passed: the fuzzers that said ok; any other failed.
	ok=$(printf '%s\n' "$out" | grep -c "^fuzz .*, ok$")
	passed=$((passed + ok))
	failed=$((failed + nfuzz - ok))
fi

# The integration suite runs on PYTEST_JOBS workers (2; pytest-xdist), but
# the tests marked serial (shares measured with the target paused for every
# sample, rates and costs) run alone afterwards: a second worker's load
# would be part of what they measure.
pytest() {
	/usr/bin/python3 -m pytest -q -rs -p no:cacheprovider "$@"
}
jobs=${PYTEST_JOBS:-2}
if [ "$jobs" -gt 1 ] && /usr/bin/python3 -c "import xdist" 2>/dev/null; then
	runs="par ser"
else
	runs="all"
fi
for run in $runs; do
	xml="$BUILD/pytest-$run.xml"
	rm -f "$xml"
	case $run in
	par) pytest -n "$jobs" -m "not serial" --junitxml="$xml" tests/integration "$@" ;;
	ser) pytest -m serial --junitxml="$xml" tests/integration "$@" ;;
	all) pytest --junitxml="$xml" tests/integration "$@" ;;
	esac
	rc=$?
	# 5: no test was selected (a -k that picks none of one run's tests).
	if [ -f "$xml" ]; then
		counts=$(/usr/bin/python3 - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PY
)
		# Not set --: "$@" holds the arguments for the next run.
		p=${counts%% *}
		k=${counts##* }
		f=${counts#* }
		f=${f%% *}
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + k))
	elif [ "$rc" -ne 5 ]; then
		echo "integration ($run): pytest did not run"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
