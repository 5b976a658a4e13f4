#!/bin/sh
# One-shot job (temporal-namespace) of both compose files, docker-compose.yml and
# deploy/docker-compose.prod.yml (image temporalio/admin-tools), once the server answers: the
# namespace the API and workers use, and the custom search attributes every lifecycle workflow
# sets, so that runs can be found by tenant or cell
# (temporal workflow list --query 'TenantId="acme"', and the Web UI's filter). Idempotent.
# On a cluster of your own, or Temporal Cloud, run the same commands once (docs/operations.md).
set -eu
ADDR=${TEMPORAL_ADDRESS:-temporal:7233}
NS=${TEMPORAL_NAMESPACE:-default}
RETENTION=${TEMPORAL_RETENTION:-30d}

i=0
until temporal operator cluster health --address "$ADDR" >/dev/null 2>&1; do
	i=$((i + 1))
	[ "$i" -lt 60 ] || { echo "Temporal at $ADDR is not healthy after 120 s" >&2; exit 1; }
	sleep 2
done

if temporal operator namespace describe --address "$ADDR" --namespace "$NS" >/dev/null 2>&1; then
	echo "namespace $NS exists"
else
	temporal operator namespace create --address "$ADDR" --namespace "$NS" --retention "$RETENTION"
fi

# Keyword: exact match, the right type for ids and enumerations. One per call: the CLI takes
# several --name but creates only the first.
for name in TenantId LifecycleOperation TenantType TenantStatus CellId; do
	temporal operator search-attribute create --address "$ADDR" --namespace "$NS" --type Keyword --name "$name" 2>/tmp/sa.err ||
		grep -qi "already" /tmp/sa.err || { cat /tmp/sa.err >&2; exit 1; }
done
echo "namespace $NS and search attributes ready"
