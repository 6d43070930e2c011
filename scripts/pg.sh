#!/usr/bin/env bash
# pg.sh — the project's private PostgreSQL for `make run` and `make test`.
#
#   scripts/pg.sh start   start (creating on first use) the cluster in .pg/ and print
#                         DATABASE_URL=... for the database "stratumd" on stdout
#   scripts/pg.sh stop    stop it
#   scripts/pg.sh url     print the DATABASE_URL line without starting anything
#   scripts/pg.sh status  pg_ctl status
#
# When DATABASE_URL is already set, `start` prints it unchanged and touches nothing.
# The server binaries (initdb, pg_ctl, postgres) are taken from PATH or from
# /usr/lib/postgresql/*/bin (newest first). When they are missing and this machine
# has apt-get and root, Debian's postgresql package is installed; otherwise the
# script stops with one line saying what to install. initdb refuses to run as
# root, so as root the cluster runs as the user "postgres" (or "nobody").
#
# Settings: PGPORT_PRIVATE (default: 50000-59999, derived from the path),
# PG_DIR (default <repo>/.pg).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pgdir=${PG_DIR:-$here/.pg}
# A port of the checkout's own, so that two checkouts on one machine do not
# collide: derived from the path, then remembered in .pg/port (start moves on
# to the next free port when another program holds it).
port=${PGPORT_PRIVATE:-$((50000 + $(printf '%s' "$pgdir" | cksum | cut -d' ' -f1) % 10000))}
if [ -z "${PGPORT_PRIVATE:-}" ] && [ -f "$pgdir/port" ]; then port=$(cat "$pgdir/port"); fi
url() { echo "postgres://postgres@127.0.0.1:${port}/stratumd?sslmode=disable"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bindir() {
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return 0
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

ensure_binaries() {
	if bindir=$(find_bindir); then return 0; fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "pg.sh: PostgreSQL server binaries not found; installing Debian's postgresql package" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
		bindir=$(find_bindir) || die "postgresql installed but initdb still not found"
		return 0
	fi
	die "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL 15 or newer (Debian: apt-get install postgresql) or set DATABASE_URL"
}

psql_bin() {
	if [ -x "$bindir/psql" ]; then echo "$bindir/psql"; else command -v psql || die "psql not found (Debian: apt-get install postgresql-client)"; fi
}

# run_as runs a command as the cluster's owner.
owner=""
run_as() {
	if [ -n "$owner" ]; then
		runuser -u "$owner" -- "$@"
	else
		"$@"
	fi
}

pick_owner() {
	if [ "$(id -u)" != 0 ]; then owner=""; return; fi
	if getent passwd postgres >/dev/null; then owner=postgres; else owner=nobody; fi
	# The owner must be able to reach the data directory. When the checkout
	# lies below a directory it cannot enter (say /root), the cluster lives
	# in a directory of its own under /var/tmp instead, named after the
	# checkout, and .pg/ points there.
	if ! runuser -u "$owner" -- test -x "$(dirname "$pgdir")"; then
		local alt
		alt=/var/tmp/stratumd-pg-$(printf '%s' "$pgdir" | sha256sum | cut -c1-12)
		mkdir -p "$alt"
		chmod 755 "$alt"
		if [ ! -L "$pgdir" ]; then
			[ -d "$pgdir" ] && [ -z "$(ls -A "$pgdir")" ] && rmdir "$pgdir"
			[ -e "$pgdir" ] || ln -s "$alt" "$pgdir"
		fi
		pgdir=$alt
		runuser -u "$owner" -- test -x "$pgdir" || die "user $owner cannot enter $pgdir; set DATABASE_URL"
	fi
}

start() {
	if [ -n "${DATABASE_URL:-}" ]; then
		echo "DATABASE_URL=$DATABASE_URL"
		return 0
	fi
	ensure_binaries
	pick_owner
	mkdir -p "$pgdir"
	exec 9>"$pgdir/.lock"
	flock 9
	if [ -n "$owner" ]; then chown "$owner" "$pgdir"; fi
	if [ ! -f "$pgdir/data/PG_VERSION" ]; then
		rm -rf "$pgdir/data"
		run_as "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$pgdir/initdb.log" 2>&1 ||
			{ cat "$pgdir/initdb.log" >&2; die "initdb failed (log: $pgdir/initdb.log)"; }
		cat >>"$pgdir/data/postgresql.conf" <<EOF
# written by scripts/pg.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pgdir'
max_connections = 300
shared_buffers = 256MB
log_min_messages = warning
EOF
	fi
	if ! run_as "$bindir/pg_ctl" -D "$pgdir/data" status >/dev/null 2>&1; then
		# Not running: make sure nobody else holds our port.
		local tries=0
		while port_busy "$port"; do
			tries=$((tries + 1))
			[ $tries -lt 100 ] || die "no free port found from $port on"
			port=$((port + 1))
		done
		sed -i "s/^port = .*/port = $port/" "$pgdir/data/postgresql.conf"
		run_as "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 start >/dev/null 9>&- ||
			{ tail -20 "$pgdir/server.log" >&2; die "PostgreSQL did not start (log: $pgdir/server.log)"; }
	fi
	if ! run_as "$(psql_bin)" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'stratumd'" | grep -q 1; then
		run_as "$(psql_bin)" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE stratumd" >/dev/null
	fi
	echo "$port" >"$pgdir/port"
	echo "DATABASE_URL=$(url)"
}

stop() {
	bindir=$(find_bindir) || exit 0
	[ -f "$pgdir/data/PG_VERSION" ] || exit 0
	pick_owner
	run_as "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
url) echo "DATABASE_URL=${DATABASE_URL:-$(url)}" ;;
status)
	bindir=$(find_bindir) || die "no PostgreSQL binaries"
	pick_owner
	run_as "$bindir/pg_ctl" -D "$pgdir/data" status
	;;
*) die "usage: scripts/pg.sh [start|stop|url|status]" ;;
esac
