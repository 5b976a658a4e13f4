#!/usr/bin/env bash
# Starts, stops and reports a real Temporal server (go.temporal.io/server v1.29.7, the version
# deploy/docker-compose.prod.yml runs) on the local PostgreSQL: the production shape (four
# history shards, SQL persistence and the SQL visibility store, no `default` namespace until one
# is made) beside the dev server of scripts/services.sh, for checking what the dev server's
# SQLite shortcut could hide. `make test` runs the e2e and chaos suites on it after the rest.
#
#   frontend gRPC 17233, HTTP 17243; history 17234, matching 17235, worker 17239 (membership
#   16933-16939); Prometheus 127.0.0.1:18000, pprof 17936. Config: deploy/temporal/local/.
#
# Usage: scripts/temporal-server.sh up|down|status
#
#   up      Idempotent: a healthy server on 127.0.0.1:17233 is left alone (and not recorded as
#           ours). Otherwise: PostgreSQL started if needed (scripts/services.sh, postgres only);
#           the role `temporal` (password generated into .state/temporal-server/) and its
#           databases temporal and temporal_visibility created; both schemas brought up to the
#           server's version (temporal-sql-tool create-database, setup-schema -v 0.0,
#           update-schema); the server started and waited for (cluster health SERVING). In
#           both cases the `default` namespace and the search attributes TenantId,
#           LifecycleOperation, TenantType, TenantStatus and CellId (Keyword) are made sure of.
#   down    Stops the server if this script started it (.state/pids/temporal-server.pid):
#           SIGTERM, up to 20 s, then SIGKILL. Never touches PostgreSQL or a server it did not
#           start. The databases stay: runs survive down/up.
#   status  One line: healthy or not, started by this script or external. Exit 1 if unhealthy.
#
# Then: TEST_TEMPORAL_ADDRESS=127.0.0.1:17233 go test -count=1 ./workflows/ ./e2e/ (or
# TEMPORAL_ADDRESS=127.0.0.1:17233 for the worker and API).
#
# Environment:
#   TEMPORAL_SERVER_TIMEOUT  seconds to wait for the server to become healthy (default 120)
#   TEMPORAL_RETENTION       retention of the namespace when this script creates it (default 3d)
#   TEMPORAL_LOG_LEVEL       the server's log level (default warn)
#   MISYBOT_TOOLS_CACHE      where the binaries are cached (scripts/tools.sh)
#
# State (gitignored): .state/temporal-server/postgres.password, .state/logs/temporal-server.log
# (the server) and temporal-server-schema.log (temporal-sql-tool), .state/pids/temporal-server.pid.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$REPO/.state
LOGS=$STATE/logs
PIDS=$STATE/pids
OWN=$STATE/temporal-server

HOST=127.0.0.1
PG_PORT=5432
FRONTEND_PORT=17233
# Every port of deploy/temporal/local/temporal-server.yaml, checked free before a start.
PORTS=(17233 17243 16933 17234 16934 17235 16935 17239 16939 18000 17936)
CONFIG_DIR=deploy/temporal/local # relative to REPO, as the server's --config wants it
CONFIG_ENV=temporal-server       # the config file's name without .yaml
PID_MATCH=$CONFIG_DIR            # in the server's command line: tells our server from a recycled PID
ROLE=temporal
DATABASES=(temporal temporal_visibility)
NAMESPACE=default
RETENTION=${TEMPORAL_RETENTION:-3d}
# The custom search attributes every lifecycle run sets (workflows/searchattrs.go).
SEARCH_ATTRIBUTES=(TenantId LifecycleOperation TenantType TenantStatus CellId)

TIMEOUT=${TEMPORAL_SERVER_TIMEOUT:-120}
NAME=temporal-server
LOG=$LOGS/$NAME.log
SCHEMA_LOG=$LOGS/$NAME-schema.log
CLI=

# Output. The generated password is never printed.
say() { echo "temporal-server: $*"; }
die() {
	echo "temporal-server: error: $*" >&2
	exit 1
}
# fail_with_log MESSAGE LOGFILE: die, naming the log and showing its tail since the last start.
fail_with_log() {
	echo "temporal-server: error: $1 (log: $2)" >&2
	if [[ -r $2 ]]; then
		awk '/^=== / { n = 0 } { line[n++] = $0 } END { for (i = (n > 15 ? n - 15 : 0); i < n; i++) print "temporal-server:   | " line[i] }' "$2" >&2
	fi
	exit 1
}

as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

# port_open PORT: something accepts TCP connections on HOST:PORT.
port_open() { (: <>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# port_owner PORT: best-effort name of the listening process, for error messages.
port_owner() {
	local line
	line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1) || true
	if [[ $line =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]} (pid ${BASH_REMATCH[2]})"
	else
		echo "another process"
	fi
}

# alive PID: the process exists and is not a zombie.
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# our_pid: prints the PID in .state/pids/temporal-server.pid if that process is alive and its
# command line still names our config folder (a recycled PID is not ours).
our_pid() {
	local f=$PIDS/$NAME.pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PID_MATCH" || return 1
	echo "$pid"
}

healthy() {
	[[ -n $CLI ]] &&
		timeout 10 "$CLI" operator cluster health --address "$HOST:$FRONTEND_PORT" 2>/dev/null | grep -q SERVING
}

# --- PostgreSQL -----------------------------------------------------------------------------

# ensure_postgres: the local PostgreSQL answers on HOST:PG_PORT; if not, scripts/services.sh
# starts (or installs) it, and nothing else. `make down` / services.sh down stops it then.
ensure_postgres() {
	if command -v pg_isready >/dev/null && pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2; then
		return
	fi
	say "PostgreSQL does not answer on $HOST:$PG_PORT; starting it with scripts/services.sh"
	SKIP_SERVICES="redis temporal ferretdb" "$REPO/scripts/services.sh" up
}

# superuser_psql: runs the SQL on stdin as a PostgreSQL superuser, as scripts/services.sh does:
# the postgres OS user over the socket, else the postgres role over TCP (the main cluster here
# trusts 127.0.0.1). Through stdin, so the password in it never reaches a command line.
superuser_psql() {
	local sql out
	sql=$(cat)
	if id postgres >/dev/null 2>&1 &&
		out=$(as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres -f - <<<"$sql" 2>&1); then
		return 0
	fi
	out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -f - <<<"$sql" 2>&1) ||
		die "PostgreSQL: SQL as superuser failed: $out"
}

# password: the role's password, generated once into .state/temporal-server/ (mode 0600).
password() {
	local f=$OWN/postgres.password
	if [[ ! -s $f ]]; then
		mkdir -p "$OWN"
		(umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$f.tmp" && mv -f "$f.tmp" "$f")
	fi
	cat "$f"
}

# ensure_role: the login role `temporal`, allowed to create its databases, with the password of
# .state/ (set again on every start, so a regenerated file keeps working).
ensure_role() {
	local pw=$1
	[[ $pw =~ ^[0-9a-f]+$ ]] || die "the password in $OWN/postgres.password is not hex; delete the file to regenerate it"
	superuser_psql <<SQL
SELECT 'CREATE ROLE $ROLE LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE WITH LOGIN CREATEDB PASSWORD '$pw';
SQL
}

# schema_dir: the module's schema/postgresql/v12 folder, from the tools module's own pin.
schema_dir() {
	local dir
	dir=$(cd "$REPO/tools/temporal-server" && go mod download go.temporal.io/server &&
		go list -m -f '{{.Dir}}' go.temporal.io/server) || die "cannot find go.temporal.io/server's module folder (go list in tools/temporal-server)"
	[[ -d $dir/schema/postgresql/v12 ]] || die "no schema/postgresql/v12 in $dir"
	echo "$dir/schema/postgresql/v12"
}

# ensure_schema: both databases exist and are at the server's schema version. Safe on every
# start: an existing database is kept, setup-schema -v 0.0 on an initialised one changes
# nothing, update-schema applies only the versions not yet applied.
# The password reaches temporal-sql-tool as SQL_PASSWORD, exported by the caller.
ensure_schema() {
	local tool dir db sub out
	tool=$("$REPO/scripts/tools.sh" temporal-sql-tool)
	dir=$(schema_dir)
	echo "=== $(date -u +%FT%TZ) temporal-server.sh: schema from $dir" >>"$SCHEMA_LOG"
	for db in "${DATABASES[@]}"; do
		sub=temporal
		[[ $db == temporal_visibility ]] && sub=visibility
		local sql=("$tool" --plugin postgres12 --ep "$HOST" -p "$PG_PORT" -u "$ROLE" --db "$db")
		out=$("${sql[@]}" create-database 2>&1) || grep -qi 'already exists' <<<"$out" || {
			echo "$out" >>"$SCHEMA_LOG"
			fail_with_log "create-database $db failed" "$SCHEMA_LOG"
		}
		echo "$out" >>"$SCHEMA_LOG"
		"${sql[@]}" setup-schema -v 0.0 >>"$SCHEMA_LOG" 2>&1 || fail_with_log "setup-schema $db failed" "$SCHEMA_LOG"
		"${sql[@]}" update-schema -d "$dir/$sub/versioned" >>"$SCHEMA_LOG" 2>&1 ||
			fail_with_log "update-schema $db failed" "$SCHEMA_LOG"
	done
}

# --- The server -----------------------------------------------------------------------------

# start_server: the server detached in its own session (Ctrl-C in the caller's terminal does not
# reach it), output appended to the log, PID in .state/pids/temporal-server.pid.
start_server() {
	local bin=$1 pidf=$PIDS/$NAME.pid i p
	for p in "${PORTS[@]}"; do
		if port_open "$p"; then
			die "port $HOST:$p is in use by $(port_owner "$p"), which is not a healthy Temporal server on $HOST:$FRONTEND_PORT; free it"
		fi
	done
	rm -f "$pidf"
	echo "=== $(date -u +%FT%TZ) temporal-server.sh: $bin --root $REPO --config $CONFIG_DIR --env $CONFIG_ENV --allow-no-auth start" >>"$LOG"
	# The inner shell records its own PID, moves to the repository, then execs the server: the
	# PID stays the server's. The password reaches the config template through the environment,
	# not the command line. Nothing of this script stays behind (or holds its lock, fd 9).
	# shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner shell.
	TEMPORAL_SQL_PASSWORD=$2 TEMPORAL_DYNAMIC_CONFIG=$REPO/$CONFIG_DIR/dynamicconfig.yaml \
		nohup setsid bash -c 'echo $$ >"$0"; cd "$1" && shift && exec "$@"' "$pidf" "$REPO" \
		"$bin" --root "$REPO" --config "$CONFIG_DIR" --env "$CONFIG_ENV" --allow-no-auth start \
		</dev/null >>"$LOG" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	[[ -s $pidf ]] || fail_with_log "the server did not start" "$LOG"
	STARTED_PID=$(<"$pidf")
}

wait_healthy() {
	local pid=$1 deadline=$((SECONDS + TIMEOUT))
	until healthy; do
		if ! alive "$pid"; then
			rm -f "$PIDS/$NAME.pid"
			fail_with_log "the server exited during start-up" "$LOG"
		fi
		((SECONDS < deadline)) || fail_with_log "the server did not become healthy within ${TIMEOUT} s" "$LOG"
		sleep 0.5
	done
}

# ensure_namespace: the `default` namespace (a real server has none) and the search
# attributes, idempotent. Right after a namespace is created the frontend may not know it yet,
# hence the retries.
ensure_namespace() {
	local addr=$HOST:$FRONTEND_PORT out have name missing err deadline=$((SECONDS + 60))
	if ! timeout 10 "$CLI" operator namespace describe --address "$addr" --namespace "$NAMESPACE" >/dev/null 2>&1; then
		out=$(timeout 30 "$CLI" operator namespace create --address "$addr" --namespace "$NAMESPACE" --retention "$RETENTION" 2>&1) ||
			grep -qi 'already' <<<"$out" || die "cannot create the namespace $NAMESPACE: $out"
		say "namespace $NAMESPACE created (retention $RETENTION)"
	fi
	while :; do
		missing=() err=
		if have=$(timeout 10 "$CLI" operator search-attribute list --address "$addr" --namespace "$NAMESPACE" 2>&1); then
			for name in "${SEARCH_ATTRIBUTES[@]}"; do
				grep -qw -- "$name" <<<"$have" || missing+=("$name")
			done
			((${#missing[@]})) || return 0
			# One per call: the CLI (v1.5.1) takes several --name but creates only the first.
			for name in "${missing[@]}"; do
				out=$(timeout 30 "$CLI" operator search-attribute create --address "$addr" --namespace "$NAMESPACE" \
					--type Keyword --name "$name" 2>&1) || grep -qi 'already' <<<"$out" || err=$out
			done
			# Listed again on the next turn: done only once every name shows.
			[[ -n $err ]] || say "search attributes registered: ${missing[*]} (Keyword)"
		else
			err=$have
		fi
		((SECONDS < deadline)) || die "cannot register the search attributes on $NAMESPACE: ${err:-still not listed: ${missing[*]}}"
		sleep 1
	done
}

# --- Commands -------------------------------------------------------------------------------

lock() {
	# One up/down at a time. The server gets `9>&-`, so it never holds the lock.
	exec 9>"$STATE/.temporal-server.lock"
	flock -w 600 9 || die "another temporal-server.sh up/down has held $STATE/.temporal-server.lock for 10 minutes"
}

cmd_up() {
	local start=$SECONDS t pid bin pw
	lock
	CLI=$("$REPO/scripts/tools.sh" temporal)
	if healthy; then
		if pid=$(our_pid); then
			say "already running on $HOST:$FRONTEND_PORT (started by temporal-server.sh, pid $pid)"
		else
			say "a Temporal server already answers on $HOST:$FRONTEND_PORT (left alone)"
		fi
	elif pid=$(our_pid); then
		say "started earlier (pid $pid), waiting until healthy"
		wait_healthy "$pid"
	else
		t=$SECONDS
		bin=$("$REPO/scripts/tools.sh" temporal-server)
		"$REPO/scripts/tools.sh" temporal-sql-tool >/dev/null
		((SECONDS - t < 5)) || say "binaries built in $((SECONDS - t)) s"
		ensure_postgres
		pw=$(password)
		t=$SECONDS
		ensure_role "$pw"
		export SQL_PASSWORD=$pw
		ensure_schema
		say "PostgreSQL: role $ROLE, databases ${DATABASES[*]} at the server's schema version ($((SECONDS - t)) s; log $SCHEMA_LOG)"
		t=$SECONDS
		start_server "$bin" "$pw"
		say "starting on $HOST:$FRONTEND_PORT (pid $STARTED_PID, log $LOG)"
		wait_healthy "$STARTED_PID"
		say "healthy (SERVING) in $((SECONDS - t)) s"
	fi
	ensure_namespace
	say "ready in $((SECONDS - start)) s: TEMPORAL_ADDRESS=$HOST:$FRONTEND_PORT TEMPORAL_NAMESPACE=$NAMESPACE"
}

cmd_down() {
	local f=$PIDS/$NAME.pid pid i
	lock
	if [[ ! -f $f ]]; then
		say "not started by temporal-server.sh (left alone)"
		return
	fi
	if ! pid=$(our_pid); then
		rm -f "$f"
		say "process already gone (stale PID file removed)"
		return
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		say "still running 20 s after SIGTERM, sent SIGKILL (pid $pid)"
	else
		say "stopped (pid $pid)"
	fi
	rm -f "$f"
}

cmd_status() {
	local pid who=external
	CLI=$("$REPO/scripts/tools.sh" --cached temporal) || CLI=
	pid=$(our_pid) && who="started by temporal-server.sh, pid $pid"
	if healthy; then
		say "healthy on $HOST:$FRONTEND_PORT ($who)"
	elif [[ $who != external ]]; then
		say "not healthy on $HOST:$FRONTEND_PORT ($who; log $LOG)"
		return 1
	else
		say "not running on $HOST:$FRONTEND_PORT"
		return 1
	fi
}

main() {
	mkdir -p "$LOGS" "$PIDS"
	case ${1:-} in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" ;;
	*) die "usage: $0 up|down|status" ;;
	esac
}

main "$@"
