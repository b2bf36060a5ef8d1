#!/usr/bin/env bash
# The official MCP TypeScript SDK against a live server: once with a client
# ID metadata document (served by the client over https on loopback, with a
# certificate made here that the server trusts through SSL_CERT_FILE), once
# with dynamic registration. testdata/mcp/client.mjs does the checks.
#
#   bash .ci/mcp-sdk.sh
#
# MCP_SDK_DIR may name a folder where the SDK is already installed;
# otherwise the pinned version is installed from npm into a temporary one.
set -euo pipefail
cd "$(dirname "$0")/.."

sdk_version=1.32.2
username=mcp
password='mcp-password-for-ci'

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
	rm -rf "$tmp"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

fail() {
	echo "mcp-sdk.sh: $*" >&2
	exit 1
}

dir="${MCP_SDK_DIR:-$tmp/npm}"
if [ -z "${MCP_SDK_DIR:-}" ]; then
	echo "--- installing @modelcontextprotocol/sdk@$sdk_version"
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact "@modelcontextprotocol/sdk@$sdk_version" >/dev/null
fi
# ESM resolves packages from the script's own folder.
cp testdata/mcp/client.mjs "$dir/client.mjs"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

echo "--- building the server"
go build -o "$tmp/server" ./cmd/server
secret=$(openssl rand -hex 32)
db="$tmp/gatehouse.db"
: >"$tmp/server.log"
# SSL_CERT_FILE makes the test certificate the server's only trusted root,
# so it fetches the client's document from https://localhost.
SSL_CERT_FILE="$tmp/cert.pem" "$tmp/server" --addr 127.0.0.1:0 --db "$db" --secret "$secret" --log-format json \
	--dynamic-registration --client-metadata-allow-loopback >"$tmp/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 100); do
	base=$(sed -nE 's/.*"msg":"gatehouse listening".*"issuer":"([^"]+)".*/\1/p' "$tmp/server.log" | head -n 1)
	[ -n "$base" ] && break
	kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
	sleep 0.1
done
[ -n "$base" ] || fail "the server did not start within 10 s"
echo "server at $base"
printf '%s\n' "$password" | "$tmp/server" users create --db "$db" --secret "$secret" --username "$username" --password-stdin >/dev/null

for mode in cimd dcr; do
	echo "--- TypeScript SDK, $mode"
	(cd "$dir" && MCP_URL="$base/mcp" MODE="$mode" USERNAME="$username" PASSWORD="$password" \
		TLS_CERT="$tmp/cert.pem" TLS_KEY="$tmp/key.pem" node client.mjs)
done
