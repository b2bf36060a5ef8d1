#!/usr/bin/env bash
# Reports known vulnerabilities in the code Gatehouse actually calls
# (govulncheck works at the symbol level, so an unused vulnerable function
# in a dependency does not fail the build).
#
# govulncheck needs its database: https://vuln.go.dev by default, or a
# mirror named by GOVULNCHECK_DB (an https:// URL or file:///path of a copy
# in the vuln.go.dev layout). Found vulnerabilities always fail. A database
# that cannot be reached fails too, unless GOVULNCHECK_OFFLINE_OK=1 says
# that this machine is known to have no route to it; then the check is
# reported as not run, loudly, and does not fail.
set -uo pipefail
cd "$(dirname "$0")/.."

args=()
if [ -n "${GOVULNCHECK_DB:-}" ]; then args+=(-db "$GOVULNCHECK_DB"); fi

out=$(go tool govulncheck "${args[@]}" ./... 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ] && [ "${GOVULNCHECK_OFFLINE_OK:-}" = 1 ] && grep -q 'fetching vulnerabilities' <<<"$out"; then
	echo "govulncheck: NOT RUN, the vulnerability database is unreachable from this machine" >&2
	exit 0
fi
exit "$rc"
