#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (about two minutes in all).
# A failure leaves the crashing input in the package's testdata/fuzz/FuzzX/
# directory: commit it with the fix, so it stays a regression seed.
# FUZZ_SCALE multiplies every budget (FUZZ_SCALE=10 for a longer hunt).
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${FUZZ_SCALE:-1}"
run() { # package target seconds
	echo "fuzz $2 for $(( $3 * scale ))s"
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$(( $3 * scale ))s" "$1"
}

# Pure functions: cheap executions, short budgets.
run ./books FuzzDecodeBook 12
run ./books FuzzDecodeCursor 12
run ./clients FuzzValidateRedirectURI 12
run ./oauth FuzzVerifyDPoP 12
run ./accounts FuzzSafeReturnTo 12
run ./accounts FuzzPasskeyFinish 12
run ./clients FuzzMatchRedirectURI 12
run ./clients FuzzParseDocument 12
# Whole requests through the OAuth handler on SQLite: slower executions.
run ./oauth FuzzTokenRequest 30
run ./oauth FuzzAuthorizeRequest 30
run ./oauth FuzzLogoutRequest 15
