#!/usr/bin/env bash
# haproxy.sh — find HAProxy for the multi-instance test (and for operators
# trying deploy/haproxy.cfg), installing Debian's package when it is missing.
#
#   scripts/haproxy.sh        print the path of the haproxy binary on stdout
#
# The binary is taken from $HAPROXY, then PATH, then /usr/sbin. When none is
# found and this machine has apt-get and root, Debian's haproxy package is
# installed (its service is not started: the tests start their own haproxy
# with a generated configuration). Otherwise the script stops with one line
# saying what to install.
set -euo pipefail

die() { echo "haproxy.sh: $*" >&2; exit 1; }

find_haproxy() {
	if [ -n "${HAPROXY:-}" ] && [ -x "$HAPROXY" ]; then echo "$HAPROXY"; return 0; fi
	if command -v haproxy >/dev/null 2>&1; then command -v haproxy; return 0; fi
	if [ -x /usr/sbin/haproxy ]; then echo /usr/sbin/haproxy; return 0; fi
	return 1
}

if bin=$(find_haproxy); then
	echo "$bin"
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "haproxy.sh: haproxy not found; installing Debian's haproxy package" >&2
	# policy-rc.d keeps the package's own service from starting.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >&2
	bin=$(find_haproxy) || die "haproxy installed but the binary is still not found"
	echo "$bin"
	exit 0
fi
die "haproxy not found: install HAProxy 2.4 or newer (Debian: apt-get install haproxy) or set HAPROXY=/path/to/haproxy"
