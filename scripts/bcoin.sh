#!/usr/bin/env bash
# bcoin.sh — install the pinned bcoin (npm) for the RPC-mode tests against a
# second real node, and print the path of its node script (bin/node, run
# with `node`) on stdout.
#
#   scripts/bcoin.sh        install into .bcoin/ (git-ignored) when missing
#                           or when this script or scripts/bcoin/ changed
#
# bcoin 1.0.2 is the newest bcoin on the npm registry. Every package is
# pinned by scripts/bcoin/package-lock.json and installed with `npm ci`.
# Install scripts are not run (--ignore-scripts): bcoin's native addons
# bcrypto, bsip, bstring and secp256k1 do not build against Node 20's V8
# headers and each has a pure-JS fallback that bcoin uses instead. mrmr
# (murmur3 for bcoin's address filter) has no fallback and builds: it alone
# is compiled afterwards (npm rebuild mrmr: node-gyp with gcc, make and
# python3, against the installed Node's headers). bcoin
# 1.0.2's database layer (bdb 0.2) loads leveldown at start even for an
# in-memory chain, and its leveldown 4 does not build on Node 20 either;
# package.json overrides it with leveldown 6.1.1, whose npm package ships
# N-API prebuilt binaries (the tests run bcoin with --memory, so leveldown
# is only loaded, never used).
#
# Node.js and npm are taken from PATH; when missing, this machine has
# apt-get and the script runs as root, Debian's nodejs and npm are
# installed. Progress goes to stderr; stdout carries only the path.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bcoin.sh: $*" >&2; exit 1; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bcoin.sh: node or npm not found; installing Debian's nodejs and npm" >&2
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nodejs npm >&2
	fi
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
		die "node and npm not found: install Node.js 18 or newer with npm (Debian: apt-get install nodejs npm)"
fi

dir=$PWD/.bcoin
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

stamp="$dir/.installed"
want=$(sha256sum scripts/bcoin.sh scripts/bcoin/package.json scripts/bcoin/package-lock.json | sha256sum | cut -d' ' -f1)
script="$dir/node_modules/bcoin/bin/node"
if [ ! -f "$script" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	echo "bcoin.sh: installing bcoin from scripts/bcoin/package-lock.json into .bcoin" >&2
	cp scripts/bcoin/package.json scripts/bcoin/package-lock.json "$dir/"
	if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "bcoin.sh: g++ or make not found; installing Debian's g++ and make" >&2
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends g++ make python3 >&2
		fi
		command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 ||
			die "g++ and make are needed to build bcoin's mrmr addon (Debian: apt-get install g++ make)"
	fi
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
	# node-gyp builds against the installed Node's headers (it cannot
	# download them here).
	nodedir=()
	if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then nodedir=(--nodedir=/usr); fi
	(cd "$dir" && npm rebuild mrmr "${nodedir[@]}" --no-audit --no-fund --loglevel=error >&2)
	[ -f "$dir/node_modules/mrmr/build/Release/mrmr.node" ] || die "bcoin's mrmr addon did not build"
	[ -f "$script" ] || die "npm ci finished but $script is missing"
	echo "$want" >"$stamp"
fi
echo "$script"
