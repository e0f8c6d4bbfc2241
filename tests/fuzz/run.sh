#!/bin/sh
# Run each fuzzer for a while on a scratch copy of its seed corpus.
#
#   tests/fuzz/run.sh SECONDS WORKDIR FUZZER...
#
# Seeds come from tests/fuzz/corpus/<name>/ and are never written to; new
# inputs go to WORKDIR/corpus/<name>/, logs to WORKDIR/logs/<name>.log, and
# a crashing, hanging or leaking input to WORKDIR/crashes/<name>-*.  Prints
# one line per fuzzer ("fuzz fuzz_lines: 123456 runs in 15 s, ok") and
# exits with the number that failed.  A fuzzer that is missing fails.
# FUZZ_JOBS fuzzers run at once (default: one per CPU).
set -u
cd "$(dirname "$0")/../.."
secs=$1
work=$2
shift 2

# One fuzzer: its line on stdout, its log and crash input under $work;
# exit 0 when it ran clean.
one() {
	bin=$1
	name=$(basename "$bin")
	corpus="$work/corpus/$name"
	log="$work/logs/$name.log"
	mkdir -p "$corpus" "$work/logs" "$work/crashes"
	if [ ! -x "$bin" ]; then
		echo "fuzz $name: not built ($bin), FAILED"
		return 1
	fi
	cp tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/crashes/$name-" \
		"$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $name: ${runs:-?} runs in ${took:-$secs} s, ok"
		return 0
	fi
	art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	echo "fuzz $name: ${runs:-?} runs, FAILED (exit $rc${art:+, input $art}; log $log)"
	grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error)" "$log" | head -n 5
	return 1
}

# Each fuzzer is one process: run one per CPU at a time, dealt
# round-robin, and print their lines in the order given.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
out=$(mktemp -d)
j=0
while [ "$j" -lt "$jobs" ]; do
	(
		i=0
		for bin in "$@"; do
			if [ $((i % jobs)) -eq "$j" ]; then
				one "$bin" >"$out/$i" 2>&1
				echo $? >"$out/$i.rc"
			fi
			i=$((i + 1))
		done
	) &
	j=$((j + 1))
done
wait
failed=0
i=0
for bin in "$@"; do
	cat "$out/$i" 2>/dev/null
	[ "$(cat "$out/$i.rc" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
	i=$((i + 1))
done
rm -rf "$out"
exit "$failed"
