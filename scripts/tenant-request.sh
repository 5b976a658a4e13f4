#!/usr/bin/env bash
# Sends one signed request to the tenant API: the signing recipe of docs/tenant-api.md as a script.
#   TENANT=acme SECRET=<tenantSecret> scripts/tenant-request.sh METHOD PATH [JSON_BODY]
#   e.g. scripts/tenant-request.sh PUT '/api/tenant/v1/settings/theme' '{"value":"dark"}'
# API (default http://127.0.0.1:8080) and ORIGIN (sent as Origin when set) are optional.
set -euo pipefail
method=${1:?METHOD}
path=${2:?PATH (with its query string, exactly as sent)}
body=${3:-}
: "${TENANT:?set TENANT}" "${SECRET:?set SECRET}"
ts=$(date +%s)
nonce=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
body_hash=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
canonical=$(printf '%s\n%s\n%s\n%s\n%s' "$method" "$path" "$ts" "$nonce" "$body_hash")
signature=$(printf '%s' "$canonical" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
args=(-sS -X "$method" "${API:-http://127.0.0.1:8080}$path"
	-H "X-Tenant-Id: $TENANT" -H "X-Timestamp: $ts" -H "X-Nonce: $nonce" -H "X-Signature: v1=$signature")
[[ -n ${ORIGIN:-} ]] && args+=(-H "Origin: $ORIGIN")
[[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
curl "${args[@]}"
echo
