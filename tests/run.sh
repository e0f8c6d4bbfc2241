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
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
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

xml="$BUILD/pytest.xml"
rm -f "$xml"
/usr/bin/python3 -m pytest -q -rs -p no:cacheprovider --junitxml="$xml" tests/integration "$@"
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
	set -- $counts
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + $3))
else
	echo "integration: pytest did not run"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
