#!/usr/bin/env bash
# tools.sh — build the pinned btcd and btcwallet binaries the integration
# tests use into .tools/bin (git-ignored), from the Go module proxy.
# Prints the bin directory. Rebuilds only when a pinned version changes.
#
#   scripts/tools.sh            build what is missing, print the directory
set -euo pipefail
cd "$(dirname "$0")/.."

BTCD_VERSION=v0.24.2
BTCWALLET_VERSION=v0.16.13

bin=$PWD/.tools/bin
mkdir -p "$bin"
exec 9>"$bin/.lock"
flock 9

build() { # name module version
	local stamp="$bin/.$1.version"
	if [ -x "$bin/$1" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$3" ]; then return 0; fi
	echo "tools.sh: building $2@$3" >&2
	GOBIN="$bin" GOFLAGS=-mod=mod go install "$2@$3" >&2
	echo "$3" >"$stamp"
}

build btcd github.com/btcsuite/btcd "$BTCD_VERSION"
build btcctl github.com/btcsuite/btcd/cmd/btcctl "$BTCD_VERSION"
build btcwallet github.com/btcsuite/btcwallet "$BTCWALLET_VERSION"
echo "$bin"
