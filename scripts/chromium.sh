#!/usr/bin/env bash
# chromium.sh — find (or install) a headless-capable Chromium for the web page's
# browser test, and print its path on stdout.
#
#   scripts/chromium.sh        print the path of chromium, installing Debian's
#                              chromium package when it is missing, this machine has
#                              apt-get and the script runs as root
#
# CHROMIUM=/path/to/chrome overrides the search. Otherwise chromium,
# chromium-browser, google-chrome and google-chrome-stable are looked up in PATH.
# When none is found and nothing can be installed, the script stops with one line
# saying what to install. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

die() { echo "chromium.sh: $*" >&2; exit 1; }

find_chromium() {
	if [ -n "${CHROMIUM:-}" ]; then
		[ -x "$CHROMIUM" ] || die "CHROMIUM=$CHROMIUM is not an executable file"
		echo "$CHROMIUM"
		return 0
	fi
	local c
	for c in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

if path=$(find_chromium); then
	echo "$path"
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: chromium not found; installing Debian's chromium package" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
	path=$(find_chromium) || die "chromium installed but still not found in PATH"
	echo "$path"
	exit 0
fi
die "no chromium found: install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/chrome"
