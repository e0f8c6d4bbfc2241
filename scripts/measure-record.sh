#!/bin/sh
# Measure what the record issue promises, on each CPython found (all pyenv
# versions and Debian's python3.11 unless interpreters are named):
#   cost      profiler CPU per sample, 25-frame stack, 2 kHz: five runs of
#             8 s (16,000 samples each), min and median, beside the CPU a
#             thread spends only waking 2,000 times a second (scripts/wake-floor.c)
#   fidelity  samples taken / expected, one busy thread, 1 kHz, 4 s
#   shares    spin_a / spin_b on the 60/40 split target, 500 Hz, 10 s
# Usage: scripts/measure-record.sh [PYTHON...]
set -eu
cd "$(dirname "$0")/.."
PYSPYC=${PYSPYC:-$PWD/pyspyc}
[ $# -gt 0 ] || set -- /usr/bin/python3.11 $(ls "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/*/bin/python[23].* 2>/dev/null | grep -E 'python[23]\.[0-9]+$')
RUNS=${RUNS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT
cc -O2 -o "$tmp/wake-floor" scripts/wake-floor.c

start() { # start APP ARGS... -> pid, once it printed "ready"
	"$py" "$@" > "$tmp/out" &
	pid=$!
	while ! grep -q ready "$tmp/out" 2>/dev/null; do sleep 0.05; done
}

for py in "$@"; do
	[ -x "$py" ] || continue
	echo "== $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
	start tests/apps/deep.py 25 90
	"$PYSPYC" record -p "$pid" -r 2000 -d 2 -o "$tmp/w.folded" 2>/dev/null # warm the page cache
	: > "$tmp/costs"
	for run in $(seq "$RUNS"); do
		"$PYSPYC" record -p "$pid" -r 2000 -d 8 -o "$tmp/c.folded" 2> "$tmp/c.err"
		sed -n 's/.*(\([0-9.]*\) us CPU.*/\1/p' "$tmp/c.err" >> "$tmp/costs"
	done
	kill "$pid"; wait "$pid" 2>/dev/null || true
	floor=$("$tmp/wake-floor" 2000 8)
	echo "cost:     $(sort -n "$tmp/costs" | awk '{ v[NR] = $1 } END { printf "min %s, median %s", v[1], v[int((NR + 1) / 2)] }') us CPU per sample at 2 kHz, 25 frames (runs: $(tr '\n' ' ' < "$tmp/costs")); waking alone: $floor us"

	start tests/apps/split.py 30
	"$PYSPYC" record -p "$pid" -r 1000 -d 4 -o "$tmp/f.folded" 2> "$tmp/f.err"
	n=$(sed -n 's/^pyspyc: \([0-9]*\) samples.*/\1/p' "$tmp/f.err")
	echo "fidelity: $n / 4000 samples at 1 kHz for 4 s = $(awk -v n="$n" 'BEGIN { printf "%.2f%%", n / 40 }')"
	"$PYSPYC" record -p "$pid" -r 500 -d 10 -o "$tmp/s.folded" 2>/dev/null
	kill "$pid"; wait "$pid" 2>/dev/null || true
	awk '{ n = $NF; t += n; if ($0 ~ /;spin_a /) a += n; if ($0 ~ /;spin_b /) b += n }
	     END { printf "shares:   spin_a %.1f%% (want 60), spin_b %.1f%% (want 40), %d samples\n", 100 * a / t, 100 * b / t, t }' "$tmp/s.folded"
done
