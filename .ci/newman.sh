#!/usr/bin/env bash
# Runs the Postman collection with newman against a live server: a fresh
# SQLite database, a user and a confidential client made with the CLI, and
# tokens from the authorization-code flow driven the way a scripted client
# would (curl with a cookie jar, PKCE S256). Any failed assertion fails the
# script.
#
#   bash .ci/newman.sh
#
# NEWMAN may name a newman binary to use; otherwise newman 6 is installed
# from npm into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

collection=testdata/postman/gatehouse.postman_collection.json
environment=testdata/postman/gatehouse.postman_environment.json
# The collection's default callback: Postman's own, which every client used
# with the collection must have registered. curl never follows it.
redirect_uri=https://oauth.pstmn.io/v1/callback
username=newman
password='newman-password-for-ci'

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
	echo "newman.sh: $*" >&2
	exit 1
}

# json_field NAME reads one JSON object on stdin and prints its member NAME.
json_field() {
	node -e '
		let s = "";
		process.stdin.on("data", (d) => (s += d)).on("end", () => {
			const v = JSON.parse(s)[process.argv[1]];
			if (v === undefined || v === null) process.exit(1);
			process.stdout.write(String(v));
		});' "$1"
}

urlencode() {
	node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$1"
}

echo "--- building the server"
go build -o "$tmp/server" ./cmd/server
# In the environment rather than on command lines, where ps shows it.
export GATEHOUSE_SECRET="$(openssl rand -hex 32)"
db="$tmp/gatehouse.db"
cli() { "$tmp/server" "$@"; }

# Port 0: the kernel picks a free port, and the server logs the one it got,
# so nothing can take it between choosing and listening.
: >"$tmp/server.log"
"$tmp/server" --addr 127.0.0.1:0 --db "$db" --log-format json >"$tmp/server.log" 2>&1 &
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

printf '%s\n' "$password" | cli users create --db "$db" --username "$username" --password-stdin >/dev/null
client=$(cli clients create --db "$db" --name "Newman" --redirect-uri "$redirect_uri" \
	--grant-type authorization_code --grant-type refresh_token --grant-type client_credentials)
client_id=$(printf %s "$client" | json_field client_id)
client_secret=$(printf %s "$client" | json_field client_secret)

echo "--- authorization code flow"
jar="$tmp/cookies"
verifier=$(openssl rand -hex 32)
challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
state=$(openssl rand -hex 12)
authz="$base/oauth2/authorize?response_type=code&client_id=$(urlencode "$client_id")&redirect_uri=$(urlencode "$redirect_uri")&scope=$(urlencode "openid profile offline_access books:read books:write")&state=$state&code_challenge=$challenge&code_challenge_method=S256"

read -r status location < <(curl -sS -o /dev/null -c "$jar" -b "$jar" -w '%{http_code} %header{location}\n' "$authz")
[ "$status" = 303 ] && [[ "$location" == /login\?return_to=* ]] || fail "authorize before sign-in: $status $location, want 303 to /login"
return_to=$(node -e 'process.stdout.write(new URLSearchParams(process.argv[1].split("?")[1]).get("return_to"))' "$location")

read -r status location < <(curl -sS -o /dev/null -c "$jar" -b "$jar" -w '%{http_code} %header{location}\n' \
	--data-urlencode "username=$username" --data-urlencode "password=$password" --data-urlencode "return_to=$return_to" "$base/login")
[ "$status" = 303 ] && [ "$location" = "$return_to" ] || fail "sign-in: $status $location, want 303 to $return_to"

status=$(curl -sS -o "$tmp/consent.html" -c "$jar" -b "$jar" -w '%{http_code}' "$base$return_to")
[ "$status" = 200 ] && grep -q 'name="decision"' "$tmp/consent.html" || fail "consent page: $status"

read -r status location < <(curl -sS -o /dev/null -c "$jar" -b "$jar" -w '%{http_code} %header{location}\n' -d decision=allow "$authz")
[ "$status" = 303 ] && [[ "$location" == "$redirect_uri?"* ]] || fail "consent: $status $location, want 303 to $redirect_uri"
query=${location#*\?}
param() { node -e 'process.stdout.write(new URLSearchParams(process.argv[1]).get(process.argv[2]) ?? "")' "$query" "$1"; }
[ "$(param state)" = "$state" ] || fail "the redirect's state does not match"
[ "$(param iss)" = "$base" ] || fail "the redirect's iss is not $base"
code=$(param code)
[ -n "$code" ] || fail "no code in the redirect"

tokens=$(curl -sS -u "$client_id:$client_secret" -d grant_type=authorization_code --data-urlencode "code=$code" \
	--data-urlencode "redirect_uri=$redirect_uri" -d "code_verifier=$verifier" "$base/oauth2/token")
access_token=$(printf %s "$tokens" | json_field access_token) || fail "code exchange: $tokens"
refresh_token=$(printf %s "$tokens" | json_field refresh_token) || fail "code exchange gave no refresh token"

echo "--- newman"
if [ -z "${NEWMAN:-}" ]; then
	npm install --prefix "$tmp/npm" --no-audit --no-fund --loglevel=error newman@6 >/dev/null
	NEWMAN="$tmp/npm/node_modules/.bin/newman"
fi
# The values go in a file, not on newman's command line, where any process
# on the machine could read the secret and tokens.
(umask 077 && BASE="$base" CLIENT_ID="$client_id" CLIENT_SECRET="$client_secret" \
	ACCESS_TOKEN="$access_token" REFRESH_TOKEN="$refresh_token" REDIRECT_URI="$redirect_uri" \
	node -e '
		const fs = require("fs");
		const env = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
		const set = { base_url: "BASE", client_id: "CLIENT_ID", client_secret: "CLIENT_SECRET",
			access_token: "ACCESS_TOKEN", refresh_token: "REFRESH_TOKEN", redirect_uri: "REDIRECT_URI" };
		for (const v of env.values) if (v.key in set) v.value = process.env[set[v.key]];
		const missing = Object.keys(set).filter((k) => !env.values.some((v) => v.key === k));
		if (missing.length) { console.error("environment lacks " + missing.join(", ")); process.exit(1); }
		fs.writeFileSync(process.argv[2], JSON.stringify(env));' "$environment" "$tmp/environment.json")

"$NEWMAN" run "$collection" --environment "$tmp/environment.json" \
	--reporters cli --color off --timeout-request 10000
