#!/bin/sh
# The demo: start the bundled web app, put a bounded load on it from
# 127.0.0.1, profile it with pyspyc for a few seconds, and write
# profile.svg and profile.folded in the current directory.
set -eu
cd "$(dirname "$0")/.."
PYSPYC=${PYSPYC:-$PWD/pyspyc}
PY=${DEMO_PYTHON:-/usr/bin/python3.11}
SECS=${DEMO_SECONDS:-8}

fifo=$(mktemp -u)
mkfifo "$fifo"
"$PY" tests/apps/webapp.py 0 > "$fifo" &
app=$!
trap 'kill $app 2>/dev/null; rm -f "$fifo"' EXIT INT TERM
read -r ready port < "$fifo"
[ "$ready" = ready ] || { echo "demo: the web app did not start" >&2; exit 1; }
echo "demo: web app pid $app on 127.0.0.1:$port; loading it for $SECS s"

"$PY" tests/apps/load.py "$port" $((SECS + 2)) 4 &
load=$!
sleep 1
"$PYSPYC" record --pid "$app" --rate 200 --duration "$SECS" \
	-o profile.svg -o profile.folded
wait $load
echo "demo: open profile.svg in a browser; collapsed stacks are in profile.folded"
echo "demo: hottest stacks:"
# Leaf frame and count of the five largest stacks.
awk '{ n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); print n "\t" f[k] }' profile.folded |
	sort -n -r | head -n 5 | awk -F'\t' '{ printf "  %6d  %s\n", $1, substr($2, 1, 120) }'
