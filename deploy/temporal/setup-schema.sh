#!/bin/sh
# One-shot job (temporal-schema) of both compose files, docker-compose.yml and
# deploy/docker-compose.prod.yml (image temporalio/admin-tools): creates
# Temporal's two PostgreSQL databases, temporal and temporal_visibility, and brings their schemas
# to the version this admin-tools image ships (the server image of the same version expects it).
# Safe to run on every start: an existing database is kept, setup-schema on an initialised one
# changes nothing, and update-schema applies only the versions not yet applied. Run it again,
# with the new image, before starting a newer Temporal server.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
PORT=${DB_PORT:-5432}
export SQL_PASSWORD="$POSTGRES_PWD"
SCHEMA=/etc/temporal/schema/postgresql/v12

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"; }

for db in temporal temporal_visibility; do
	dir=temporal
	[ "$db" = temporal_visibility ] && dir=visibility
	if sql --db "$db" create 2>/tmp/create.err; then
		echo "database $db created"
	elif grep -qi "already exists" /tmp/create.err; then
		echo "database $db exists"
	else
		cat /tmp/create.err >&2
		exit 1
	fi
	sql --db "$db" setup-schema -v 0.0
	sql --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "temporal schemas up to date"
