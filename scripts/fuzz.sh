#!/usr/bin/env bash
# fuzz.sh DURATION — run every Fuzz target of the module for DURATION each.
# Go runs one fuzz target at a time; new crashers land in the package's
# testdata/fuzz/<Target>/ and make the next `make test` fail until fixed.
# Minimizing an input is capped at FUZZMINIMIZETIME (default 1s): Go's
# default, 60s, is spent on every input that adds coverage, and held some
# targets at 0 execs/s for most of a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
if [ -z "${DATABASE_URL:-}" ]; then eval "$(scripts/pg.sh start)"; export DATABASE_URL; fi
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg=./$(dirname "${f#./}")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r name; do
		echo "== $pkg $name ($t)"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime "${FUZZMINIMIZETIME:-1s}" "$pkg"
	done
done
