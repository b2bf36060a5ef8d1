#!/usr/bin/env bash
# Follows README.md as a newcomer would: starts the server with no flags in
# an empty folder, pastes the curl walk-through and the device-flow
# walk-through into a shell, twice in a row on the same database, and checks
# what they print. `go run ./cmd/server` in the README runs a binary built
# once here, so the second pass is not slower than the first.
#
#   bash .ci/readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

tmp=$(mktemp -d)
server_pid=""
stop() {
	local status=$?
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
		echo "--- server log (last 40 lines)" >&2
		tail -n 40 "$tmp/server.log" >&2
	fi
	[ -n "${KEEP:-}" ] && cp "$tmp/out" /tmp/rw/out; rm -rf "$tmp"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/gatehouse" ./cmd/server

# The README's first shell block under a heading: the walk-through; later
# blocks there show options the default server does not have switched on.
block() {
	awk -v heading="$1" '
		$0 == heading { inside = 1; next }
		inside && /^## / { exit }
		inside && /^```sh$/ { code = 1; next }
		inside && code && /^```$/ { exit }
		inside && code { print }
	' "$repo/README.md"
}
block "## Using curl: the whole flow" > "$tmp/curl.sh"
block "## Devices without a browser: the device authorization grant" > "$tmp/device.sh"
for f in curl device; do
	[ -s "$tmp/$f.sh" ] || { echo "README: no shell block for the $f walk-through" >&2; exit 1; }
done

mkdir "$tmp/work"
cd "$tmp/work"
"$tmp/gatehouse" > "$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
	curl -sf -o /dev/null http://localhost:8080/healthz && break
	sleep 0.1
done

# Each pass is a fresh shell, as a person opening a new terminal; `go run
# ./cmd/server` is the binary built above.
pass() {
	cat > "$tmp/pass.sh" <<SHIM
set -euo pipefail
go() {
	if [ "\$1" = run ] && [ "\$2" = ./cmd/server ]; then shift 2; "$tmp/gatehouse" "\$@"; else command go "\$@"; fi
}
SHIM
	cat "$tmp/curl.sh" "$tmp/device.sh" >> "$tmp/pass.sh"
	bash "$tmp/pass.sh" > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; echo "README walk-through, pass $1: a command failed" >&2; exit 1; }
	# What the walk-through's comments say each step prints.
	local want
	for want in \
		'"issuer":"http://localhost:8080"' \
		'200 application/json' \
		'303 http://localhost:8080/login?' \
		'<title>Allow My App?' \
		'"token_type":"bearer"' \
		'"active":true' \
		'insufficient_scope' \
		'"title":"Dune Messiah"' \
		'^204$' \
		'^200$' \
		'{"active":false}' \
		'HTTP/1.1 401 Unauthorized' \
		'"type":"consent_granted"' \
		'"error":"authorization_pending"' \
		'You can return to your device' \
		'"refresh_token":"gatehouse_rt_'; do
		grep -q -- "$want" "$tmp/out" || { cat "$tmp/out" >&2; echo "README walk-through, pass $1: no line matching $want" >&2; exit 1; }
	done
	if [ -e "$tmp/work/jar" ] || [ -n "$(find "$tmp/work" -maxdepth 1 -name '*.txt')" ]; then
		echo "README walk-through, pass $1: left files behind: $(ls "$tmp/work")" >&2
		exit 1
	fi
}
pass 1
pass 2
echo "README walk-through: two passes on one database, every step as described"
