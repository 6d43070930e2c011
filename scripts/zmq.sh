#!/usr/bin/env bash
# zmq.sh — find (or install) a Python with pyzmq on Debian's libzmq5, the
# real libzmq publisher of the ZMQ hashblock test (internal/chain/rpcsource,
# TestZMQLibzmq), and print its path on stdout.
#
#   scripts/zmq.sh        print the path of a python3 that imports zmq
#
# Only Debian's own interpreter is used (/usr/bin/python3, or $ZMQ_PYTHON):
# python3-zmq is installed for it, not for a pyenv or virtualenv python that
# may come first in PATH. When the module is missing, this machine has
# apt-get and the script runs as root, Debian's python3-zmq is installed
# (bookworm: python3-zmq 24.0.1-4+b1 on libzmq5 4.3.4-6; the test logs the
# libzmq version it ran against). Otherwise the script stops with one line
# saying what to install. Progress goes to stderr; stdout carries only the
# path.
set -euo pipefail

die() { echo "zmq.sh: $*" >&2; exit 1; }

py=${ZMQ_PYTHON:-/usr/bin/python3}

has_zmq() { [ -x "$py" ] && "$py" -c 'import zmq' >/dev/null 2>&1; }

if has_zmq; then
	echo "$py"
	exit 0
fi
if [ -n "${ZMQ_PYTHON:-}" ]; then
	die "ZMQ_PYTHON=$ZMQ_PYTHON cannot import zmq"
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "zmq.sh: python3-zmq not found; installing Debian's python3-zmq (and libzmq5)" >&2
	# Wait for another apt-get (a parallel install) instead of failing.
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends python3 python3-zmq >&2
	has_zmq || die "python3-zmq installed but $py still cannot import zmq"
	echo "$py"
	exit 0
fi
die "no python3 with pyzmq: install Debian's python3-zmq (apt-get install python3-zmq) or set ZMQ_PYTHON=/path/to/python3"
