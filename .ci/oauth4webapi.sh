#!/usr/bin/env bash
# The FAPI 2.0 baseline end to end with panva's oauth4webapi (pinned):
# testdata/oauth4webapi/fapi.mjs against a live server, once as it starts
# by default but with --require-par, once with --dpop-nonce. A user and a
# private_key_jwt client are made with the CLI.
#
#   bash .ci/oauth4webapi.sh
#
# OAUTH4WEBAPI_DIR may name a folder whose node_modules holds it already;
# otherwise it is installed from npm into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.8.8
redirect_uri=http://127.0.0.1:9/cb
username=fapi
password='fapi-password-for-ci'

tmp=$(mktemp -d)
pids=()
stop() {
	local status=$?
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ]; then
		for log in "$tmp"/*.log; do
			[ -s "$log" ] && { echo "--- $log (last 30 lines)" >&2; tail -n 30 "$log" >&2; }
		done
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

fail() {
	echo "oauth4webapi.sh: $*" >&2
	exit 1
}

dir=${OAUTH4WEBAPI_DIR:-$tmp/npm}
if [ -z "${OAUTH4WEBAPI_DIR:-}" ]; then
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "oauth4webapi@$version" >/dev/null
fi
# The script imports oauth4webapi by name: run it from beside node_modules.
cp testdata/oauth4webapi/fapi.mjs "$dir/fapi.mjs"

go build -o "$tmp/server" ./cmd/server
secret=$(openssl rand -hex 32)

flow() { # name, then server flags
	local name=$1 db="$tmp/$1.db" log="$tmp/$1.log" base=""
	shift
	: >"$log"
	"$tmp/server" --addr 127.0.0.1:0 --db "$db" --secret "$secret" --log-format json "$@" >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		base=$(sed -nE 's/.*"msg":"gatehouse listening".*"issuer":"([^"]+)".*/\1/p' "$log" | head -n 1)
		[ -n "$base" ] && break
		sleep 0.1
	done
	[ -n "$base" ] || fail "$name: the server did not start within 10 s"
	echo "--- $name: server at $base ($*)"
	printf '%s\n' "$password" | "$tmp/server" users create --db "$db" --secret "$secret" --username "$username" --password-stdin >/dev/null
	mkdir -p "$tmp/$name"
	node "$dir/fapi.mjs" keys "$tmp/$name"
	client_id=$("$tmp/server" clients create --db "$db" --secret "$secret" --name "FAPI client" \
		--redirect-uri "$redirect_uri" --auth-method private_key_jwt --jwks-file "$tmp/$name/jwks.json" --dpop-bound |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).client_id))')
	node "$dir/fapi.mjs" run "$base" "$client_id" "$tmp/$name" "$username" "$password" "$redirect_uri"
}

flow require-par --require-par
flow dpop-nonce --dpop-nonce
