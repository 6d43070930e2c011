#!/usr/bin/env bash
# bench-conns.sh — the connection-count measurements of docs/BENCHMARKS.md
# (issue 19): stratumd in RPC mode on a simnet btcd, miners from
# cmd/stratum-load dialling all at once (no ramp), then one new block.
#
#   scripts/bench-conns.sh storm N [IDLE]   one stratumd, N miners at once
#   scripts/bench-conns.sh pair N [IDLE]    two stratumd processes sharing
#                                           :3333 with --reuse-port, and two
#                                           load tools of N miners each
#
# IDLE (default 20) is how many seconds the miners stay connected; RAMP
# (environment, default 0: all at once) is each load tool's new connections
# per second; STRATUMD_ARGS (environment) is added to stratumd's arguments.
# Prints
# each process's descriptor budget, the box's load and busiest processes,
# each stratumd's descriptors, RSS and threads once every miner is in, each
# load tool's report (connections, time to all subscribed with a job, the
# new block's fan-out), the kernel's listen-queue overflow counters before
# and after, and each stratumd's final counters. Needs a hard descriptor
# limit of N + 1000 or more per process (ulimit -Hn) and, for pair, N up to
# the ephemeral port range per destination (the two load tools dial
# 127.0.0.1 and 127.0.0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?storm or pair}
n=${2:?miners per load tool}
idle=${3:-20}
ramp=${RAMP:-0}

work=$(mktemp -d /tmp/bench-conns.XXXX)
tools=$(scripts/tools.sh)
go build -o "$work/" ./cmd/stratumd ./cmd/stratum-load
eval "$(scripts/pg.sh start)"
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS bench_conns" 2>/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE bench_conns"
db="${DATABASE_URL%/*}/bench_conns?sslmode=disable"
"$work/stratumd" --db "$db" migrate up >/dev/null 2>&1

rpc=18556
pay=sb1qw508d6qejxtdg4y5r3zarvary0c5xw7krxe8se # simnet, key 1
touch "$work/btcd.conf"
ctl() { "$tools/btcctl" --configfile="$work/btcd.conf" --simnet --rpcuser=u --rpcpass=p --notls --rpcserver=127.0.0.1:$rpc "$@"; }
"$tools/btcd" --simnet --datadir="$work/btcd" --logdir="$work/btcd" --configfile="$work/btcd.conf" --rpcuser=u --rpcpass=p \
	--notls --rpclisten=127.0.0.1:$rpc --listen=127.0.0.1:18555 --miningaddr=$pay --nodnsseed >/dev/null 2>&1 &
btcd=$!
pids=("$btcd")
cleanup() { # btcd does not always exit on SIGTERM here: then SIGKILL
	kill "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$btcd" 2>/dev/null || return 0; sleep 0.2; done
	kill -9 "${pids[@]}" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM
until ctl getblockcount >/dev/null 2>&1; do sleep 0.2; done
ctl generate 1 >/dev/null

# Every miner comes from 127.0.0.1: a farm behind one address, whose burst
# must cover all of it (with pair, a process may get more than half).
farm=$n
[ "$mode" = pair ] && farm=$((2 * n))
stratumd() { # instance id
	"$work/stratumd" --db "$db" --network simnet --node rpc --rpc-url http://127.0.0.1:$rpc --rpc-user u --rpc-pass p \
		--payout-address $pay --auth open --listen 0.0.0.0:3333 --reuse-port --instance-id "$1" \
		--datadir "$work/sd$1" --share-dir "$work/shares$1" --min-diff 0.001 \
		--conn-rate-per-ip $((farm / 10)) --conn-burst-per-ip "$farm" --log-format json ${STRATUMD_ARGS:-} >/dev/null 2>"$work/sd$1.log" &
	echo $!
}
a=$(stratumd 1)
pids+=("$a")
sds=("$a")
if [ "$mode" = pair ]; then
	b=$(stratumd 2)
	pids+=("$b")
	sds+=("$b")
fi
for i in 1 2; do [ "$mode" = pair ] || [ $i = 1 ] || break; until grep -q '"stratumd ready"' "$work/sd$i.log"; do sleep 0.2; done; done
grep -h '"descriptor budget"' "$work"/sd*.log
echo "load before: $(cat /proc/loadavg)"
top -bn1 -o %CPU | sed -n 7,14p
overflows() { nstat -az TcpExtListenOverflows TcpExtListenDrops 2>/dev/null | awk 'NR>1 {printf "%s=%s ", $1, $2}'; }
before=$(overflows)

# Once every load tool is idle: sample the pools, then a new block.
(
	for i in 1 2; do
		[ "$mode" = pair ] || [ $i = 1 ] || break
		until grep -q 'msg=idle' "$work/load$i.err" 2>/dev/null; do sleep 0.2; done
	done
	sleep 3
	for p in "${sds[@]}"; do
		echo "stratumd $p with every miner in: fds $(ls /proc/"$p"/fd | wc -l), $(grep VmRSS /proc/"$p"/status | tr -s ' \t' ' '), $(grep Threads /proc/"$p"/status | tr -s ' \t' ' ')"
	done
	echo "load with every miner in: $(cat /proc/loadavg)"
	top -bn1 -o %CPU | sed -n 7,14p
	ctl generate 1 >/dev/null
) &
sampler=$!
load() { # i addr pid
	"$work/stratum-load" -addr "$2":3333 -conns "$n" -parallel "$n" -ramp "$ramp" -idle -duration "${idle}s" -settle 2s \
		-user $pay -pid "$3" -json >"$work/load$1.json" 2>"$work/load$1.err"
}
if [ "$mode" = pair ]; then
	load 1 127.0.0.1 "$a" &
	l1=$!
	load 2 127.0.0.2 "$b"
	wait $l1
else
	load 1 127.0.0.1 "$a"
fi
wait $sampler
for f in "$work"/load*.json; do
	python3 - "$f" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
c, f = r["connections"], r["fanout"]
print(f"{sys.argv[1].rsplit('/', 1)[1]}: {c['established']} established, {c['failed']} failed {c.get('fail_reasons') or ''}, "
      f"all subscribed with a job in {c['seconds']:.2f} s; new block: {f['jobs']} job(s), fan-out after the first arrival "
      f"p50 {f['delay_ms']['p50']:.0f} ms, p99 {f['delay_ms']['p99']:.0f} ms, max {f['delay_ms']['max']:.0f} ms, {f['missed']} missed")
EOF
done
echo "listen queue before: $before"
echo "listen queue after:  $(overflows)"
kill -TERM "${sds[@]}"
for f in "$work"/sd*.log; do # not this shell's children: wait for their last line
	for _ in $(seq 300); do grep -q '"stratumd stopped"' "$f" && break; sleep 0.2; done
done
grep -h '"stratumd stopped"' "$work"/sd*.log | python3 -c '
import sys, json, re
for l in sys.stdin:
    s = json.loads(l)["server"]
    keep = [w for w in s.strip("{}").split() if w.split(":")[0] in ("ConnectionsTotal", "Refused", "RefusedFull", "MaxConns", "MaxFanout")]
    print(" ".join(keep), "handshake-timeouts:" + re.search(r"handshake-timeout:(\d+)", s).group(1))'
rm -rf "$work"
