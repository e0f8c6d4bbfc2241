#!/bin/sh
# Install every Debian package pyspyc's build, tests, demo and benchmarks
# need.
# Idempotent: when everything is present it does nothing and touches no
# network.  Run as root (apt-get); as another user it only reports.
set -eu

PKGS="build-essential pkg-config libelf-dev libunwind-dev libbpf-dev zlib1g-dev \
libcmocka-dev libxml2-dev python3 python3-pytest python3-pytest-xdist libxml2-utils procps mandoc \
uwsgi-core uwsgi-plugin-python3 libpython3.11 libncurses-dev tmux gunicorn python3-flask \
golang-go chromium bash-completion man-db wrk clang llvm bpftool libclang-rt-14-dev valgrind strace \
libinih-dev libmicrohttpd-dev libjansson-dev pyprof2calltree"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

# Node.js and npm run the consumer tests' programs (speedscope, playwright);
# any Node.js 18 or later does, Debian's own when none is there.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "install-deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The npm packages the consumer tests drive, at the versions in the lock
# file, into tests/consumers/node_modules.  Done again only when the lock
# file changed since.
consumers="$(dirname "$0")/../tests/consumers"
stamp="$consumers/node_modules/.pyspyc-lock"
if ! cmp -s "$consumers/package-lock.json" "$stamp" 2>/dev/null; then
	echo "install-deps: npm ci in tests/consumers" >&2
	(cd "$consumers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$consumers/package-lock.json" "$stamp"
fi

