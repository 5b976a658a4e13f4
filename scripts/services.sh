#!/usr/bin/env bash
# Starts, stops and reports the servers MisyBot Tenancy needs in development and tests, all on
# 127.0.0.1 (no Docker needed):
#
#   postgres   5432   PostgreSQL (Debian cluster, started with pg_ctlcluster)
#   redis      6379   Redis
#   temporal   7233   Temporal dev server, gRPC (Web UI 8233, HTTP API 7243, metrics 7244)
#   ferretdb   27017  FerretDB: MongoDB wire protocol on SQLite (debug/metrics 8088)
#
# Usage: scripts/services.sh up|down|status
#
#   up      Idempotent, per service: healthy already → left alone (and not recorded as ours);
#           installed but stopped → started; absent → installed with apt-get, then started.
#           Waits until each is healthy, then runs scripts/pg-bootstrap.sql (roles, databases).
#   down    Stops exactly what `up` started (PID files and markers in .state/pids/), in reverse
#           order: SIGTERM, up to 10 s, then SIGKILL. Never touches a server it did not start.
#   status  One line per service: healthy or not, started by this script or external.
#           Exit status 1 when a service that is not skipped is unhealthy.
#
# Environment:
#   SKIP_SERVICES     e.g. "temporal ferretdb": leave these alone because you point the app at
#                     servers of your own (names: postgres redis temporal ferretdb; mongo works too)
#   SERVICES_TIMEOUT  seconds to wait for each service to become healthy (default 60)
#   MISYBOT_TOOLS_CACHE  where the Temporal CLI and FerretDB binaries are cached (scripts/tools.sh)
#
# State (gitignored): .state/logs/<service>.log, .state/pids/, .state/temporal/temporal.db,
# .state/ferret/{data,state}/, .state/redis/. Temporal runs and FerretDB data survive down/up.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$REPO/.state
LOGS=$STATE/logs
PIDS=$STATE/pids

HOST=127.0.0.1
PG_PORT=5432
PG_CLUSTER=main # the Debian cluster name used when none serves PG_PORT yet
REDIS_PORT=6379
TEMPORAL_PORT=7233
TEMPORAL_UI_PORT=8233
TEMPORAL_HTTP_PORT=7243
TEMPORAL_METRICS_PORT=7244
FERRETDB_PORT=27017
FERRETDB_DEBUG_PORT=8088

TIMEOUT=${SERVICES_TIMEOUT:-60}
PG_MARKER=$PIDS/postgresql.started
TEMPORAL_BIN=

# Output. Dev default passwords are not printed either.
say() { echo "services: $*"; }
die() {
	echo "services: error: $*" >&2
	exit 1
}
# fail_with_log MESSAGE LOGFILE: die, naming the log and showing its tail.
fail_with_log() {
	echo "services: error: $1 (log: $2)" >&2
	# The tail of the log, from the last start by this script on (earlier runs only confuse).
	if [[ -r $2 ]]; then
		awk '/^=== / { n = 0 } { line[n++] = $0 } END { for (i = (n > 15 ? n - 15 : 0); i < n; i++) print "services:   | " line[i] }' "$2" >&2
	fi
	exit 1
}

# skipped NAME: whether SKIP_SERVICES asks to leave NAME alone.
skipped() {
	local list=${SKIP_SERVICES:-} words w
	read -ra words <<<"${list//,/ }"
	for w in "${words[@]}"; do
		case $w in
		postgresql | pg) w=postgres ;;
		mongo | mongodb | ferret) w=ferretdb ;;
		esac
		[[ $w == "$1" ]] && return 0
	done
	return 1
}

as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo -n "$@"
	else
		die "root is needed for: $*"
	fi
}

APT_UPDATED=0
# apt_install PACKAGE SERVICE: install a Debian package (apt-get update once per run). It waits
# for a dpkg lock held by another apt-get instead of failing at once.
apt_install() {
	command -v apt-get >/dev/null ||
		die "$2: $1 is not installed and there is no apt-get; install it, or add $2 to SKIP_SERVICES"
	local aptlog=$LOGS/apt.log
	if ((!APT_UPDATED)); then
		say "apt-get update (log $aptlog)"
		as_root apt-get -o DPkg::Lock::Timeout=600 update >>"$aptlog" 2>&1 9>&- ||
			fail_with_log "apt-get update failed" "$aptlog"
		APT_UPDATED=1
	fi
	say "$2: installing the Debian package $1 (log $aptlog)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "$1" \
		>>"$aptlog" 2>&1 9>&- || fail_with_log "apt-get install $1 failed" "$aptlog"
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

# require_free SERVICE PORT...: fail, naming the port, if one is taken by something else.
require_free() {
	local svc=$1 p
	shift
	for p in "$@"; do
		if port_open "$p"; then
			die "$svc: port $HOST:$p is in use by $(port_owner "$p"), which is not a healthy $svc; free the port, or add $svc to SKIP_SERVICES"
		fi
	done
}

# alive PID: the process exists and is not a zombie.
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# our_pid NAME MATCH: prints the PID recorded in .state/pids/NAME.pid if that process is alive
# and its command line still contains MATCH (a recycled PID is not ours).
our_pid() {
	local f=$PIDS/$1.pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
	echo "$pid"
}

# wait_healthy NAME LOGFILE CHECK [PID]: poll CHECK until it succeeds, for at most TIMEOUT
# seconds; stop early if PID (the process we started, recorded in .state/pids/NAME.pid) exits.
wait_healthy() {
	local name=$1 logf=$2 check=$3 pid=${4:-} deadline=$((SECONDS + TIMEOUT))
	until "$check"; do
		if [[ -n $pid ]] && ! alive "$pid"; then
			rm -f "$PIDS/$name.pid"
			fail_with_log "$name exited during start-up" "$logf"
		fi
		if ((SECONDS >= deadline)); then
			fail_with_log "$name did not become healthy within ${TIMEOUT} s" "$logf"
		fi
		sleep 0.2
	done
}

# start_daemon NAME COMMAND...: run COMMAND detached in its own session (Ctrl-C in the caller's
# terminal does not reach it), output appended to .state/logs/NAME.log, PID in .state/pids/NAME.pid.
# Sets STARTED_PID.
start_daemon() {
	local name=$1 pidf=$PIDS/$1.pid logf=$LOGS/$1.log i
	shift
	rm -f "$pidf"
	echo "=== $(date -u +%FT%TZ) services.sh: $*" >>"$logf"
	# The inner shell records its own PID, then execs the server: the PID stays the server's,
	# whether or not setsid had to fork.
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
	nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" </dev/null >>"$logf" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	[[ -s $pidf ]] || fail_with_log "$name did not start" "$logf"
	STARTED_PID=$(<"$pidf")
}

# stop_daemon NAME MATCH: stop the process recorded in .state/pids/NAME.pid, if any.
stop_daemon() {
	local name=$1 f=$PIDS/$1.pid pid i
	if [[ ! -f $f ]]; then
		say "$name: not started by services.sh (left alone)"
		return
	fi
	if ! pid=$(our_pid "$name" "$2"); then
		rm -f "$f"
		say "$name: process already gone (stale PID file removed)"
		return
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		say "$name: still running 10 s after SIGTERM, sent SIGKILL (pid $pid)"
	else
		say "$name: stopped (pid $pid)"
	fi
	rm -f "$f"
}

# --- PostgreSQL -----------------------------------------------------------------------------

pg_healthy() { command -v pg_isready >/dev/null && pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2; }

# pg_cluster: "version name status logfile" of the Debian cluster on PG_PORT, if there is one.
pg_cluster() {
	pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4, $7; exit }'
}

up_postgres() {
	if pg_healthy; then
		if [[ -f $PG_MARKER ]]; then
			say "postgres already running on $HOST:$PG_PORT (started by services.sh)"
		else
			say "postgres already running on $HOST:$PG_PORT (left alone)"
		fi
		return
	fi
	command -v pg_ctlcluster >/dev/null || apt_install postgresql postgres
	if pg_healthy; then
		say "postgres started by its installer on $HOST:$PG_PORT (left alone)"
		return
	fi

	local ver name status logf
	read -r ver name status logf < <(pg_cluster) || true
	if [[ -z ${ver:-} ]]; then
		ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)
		[[ -n $ver ]] || die "postgres: no PostgreSQL server found under /usr/lib/postgresql"
		say "postgres: creating the cluster $ver/$PG_CLUSTER on port $PG_PORT"
		as_root pg_createcluster -p "$PG_PORT" "$ver" "$PG_CLUSTER" >>"$LOGS/postgresql.log" 2>&1 9>&- ||
			fail_with_log "postgres: pg_createcluster $ver $PG_CLUSTER failed" "$LOGS/postgresql.log"
		read -r ver name status logf < <(pg_cluster) || true
		[[ -n ${ver:-} ]] || die "postgres: pg_createcluster made no cluster on port $PG_PORT"
	fi
	logf=${logf:-$LOGS/postgresql.log}

	if [[ $status == online* ]]; then
		# Running but not (yet) answering on HOST:PG_PORT: starting up, or not listening on TCP.
		say "postgres: cluster $ver/$name is online; waiting for $HOST:$PG_PORT"
		wait_healthy "postgres (cluster $ver/$name, check listen_addresses)" "$logf" pg_healthy
		return
	fi
	require_free postgres "$PG_PORT"
	say "postgres: starting cluster $ver/$name on $HOST:$PG_PORT (log $logf)"
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >>"$LOGS/postgresql.log" 2>&1 9>&- ||
		fail_with_log "postgres: pg_ctlcluster $ver $name start failed (see also $LOGS/postgresql.log)" "$logf"
	echo "$ver $name" >"$PG_MARKER"
	wait_healthy postgres "$logf" pg_healthy
}

# bootstrap_postgres runs scripts/pg-bootstrap.sql (idempotent) as superuser, then checks that
# both application roles can log in over TCP with the URLs the code uses.
bootstrap_postgres() {
	local sql=$REPO/scripts/pg-bootstrap.sql out role
	# Through stdin, so the postgres OS user need not be able to read the repository.
	if id postgres >/dev/null 2>&1 &&
		out=$(as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres -f - <"$sql" 2>&1); then
		:
	elif out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -f - <"$sql" 2>&1); then
		:
	else
		die "postgres: scripts/pg-bootstrap.sql failed as superuser: $out"
	fi
	for role in tenancy_owner tenancy_app; do
		out=$(psql -X -Atq -c 'select 1' "postgres://$role:$role@$HOST:$PG_PORT/tenancy" 2>&1) ||
			die "postgres: role $role cannot log in at $HOST:$PG_PORT/tenancy (check pg_hba.conf; its password is its name): $out"
	done
	say "postgres: bootstrap done (roles tenancy_owner, tenancy_app; databases tenancy, tenancy_test)"
}

stop_postgres() {
	if [[ ! -f $PG_MARKER ]]; then
		say "postgres: not started by services.sh (left alone)"
		return
	fi
	local ver name
	read -r ver name <"$PG_MARKER" || true
	if [[ -n ${ver:-} && -n ${name:-} ]] &&
		pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n && $4 ~ /^online/ { f = 1 } END { exit !f }'; then
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop >>"$LOGS/postgresql.log" 2>&1 ||
			fail_with_log "postgres: pg_ctlcluster $ver $name stop failed" "$LOGS/postgresql.log"
		say "postgres: stopped cluster $ver/$name"
	else
		say "postgres: cluster ${ver:-?}/${name:-?} already stopped (marker removed)"
	fi
	rm -f "$PG_MARKER"
}

# --- Redis ----------------------------------------------------------------------------------

redis_healthy() {
	command -v redis-cli >/dev/null &&
		[[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

up_redis() {
	local pid
	if redis_healthy; then
		if pid=$(our_pid redis redis-server); then
			say "redis already running on $HOST:$REDIS_PORT (started by services.sh, pid $pid)"
		else
			say "redis already running on $HOST:$REDIS_PORT (left alone)"
		fi
		return
	fi
	command -v redis-server >/dev/null || apt_install redis-server redis
	if redis_healthy; then
		say "redis started by its installer on $HOST:$REDIS_PORT (left alone)"
		return
	fi
	require_free redis "$REDIS_PORT"
	rm -f "$PIDS/redis.pid"
	mkdir -p "$STATE/redis"
	say "redis: starting on $HOST:$REDIS_PORT (log $LOGS/redis.log)"
	redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
		--pidfile "$PIDS/redis.pid" --logfile "$LOGS/redis.log" --dir "$STATE/redis" </dev/null 9>&- ||
		fail_with_log "redis: redis-server failed to start" "$LOGS/redis.log"
	wait_healthy redis "$LOGS/redis.log" redis_healthy
}

# --- Temporal -------------------------------------------------------------------------------

temporal_healthy() {
	[[ -n $TEMPORAL_BIN ]] &&
		timeout 10 "$TEMPORAL_BIN" operator cluster health --address "$HOST:$TEMPORAL_PORT" >/dev/null 2>&1
}

up_temporal() {
	local pid
	TEMPORAL_BIN=$("$REPO/scripts/tools.sh" temporal)
	if temporal_healthy; then
		if pid=$(our_pid temporal start-dev); then
			say "temporal already running on $HOST:$TEMPORAL_PORT (started by services.sh, pid $pid)"
		else
			say "temporal already running on $HOST:$TEMPORAL_PORT (left alone)"
		fi
		return
	fi
	if pid=$(our_pid temporal start-dev); then
		say "temporal: started earlier (pid $pid), waiting until healthy"
		wait_healthy temporal "$LOGS/temporal.log" temporal_healthy "$pid"
		return
	fi
	require_free temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$TEMPORAL_HTTP_PORT" "$TEMPORAL_METRICS_PORT"
	mkdir -p "$STATE/temporal"
	say "temporal: starting the dev server on $HOST:$TEMPORAL_PORT, Web UI http://$HOST:$TEMPORAL_UI_PORT (log $LOGS/temporal.log)"
	# The sqlite pragmas and dynamic config remove the dev server's ~50 ms wait per task
	# dispatch (see STACK.md). The partition counts must hold from the first start on a state file.
	# The 1 s queue checkpoints keep dispatch cost flat under load (internal/testkit/devtemporal says
	# why; the bench and the chaos suite start their servers with the same list).
	start_daemon temporal "$TEMPORAL_BIN" server start-dev \
		--ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
		--http-port "$TEMPORAL_HTTP_PORT" --metrics-port "$TEMPORAL_METRICS_PORT" \
		--db-filename "$STATE/temporal/temporal.db" --log-level warn \
		--sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=OFF \
		--dynamic-config-value history.transferProcessorMaxPollRPS=1000 \
		--dynamic-config-value 'history.transferProcessorUpdateAckInterval="1s"' \
		--dynamic-config-value 'history.visibilityProcessorUpdateAckInterval="1s"' \
		--dynamic-config-value 'history.outboundProcessorUpdateAckInterval="1s"' \
		--dynamic-config-value matching.numTaskqueueReadPartitions=1 \
		--dynamic-config-value matching.numTaskqueueWritePartitions=1
	wait_healthy temporal "$LOGS/temporal.log" temporal_healthy "$STARTED_PID"
}

# The custom search attributes every lifecycle run sets (workflows/searchattrs.go), so that
# `temporal workflow list --query 'TenantId="acme"'` and the Web UI's filter work. Registered on
# the dev server whoever started it (the workflows cannot start without them); idempotent.
TEMPORAL_SEARCH_ATTRIBUTES=(TenantId LifecycleOperation TenantType TenantStatus CellId)

temporal_search_attributes() {
	local have missing=() name
	have=$(timeout 10 "$TEMPORAL_BIN" operator search-attribute list --address "$HOST:$TEMPORAL_PORT" --namespace default 2>&1) ||
		die "temporal: cannot list search attributes: $have"
	for name in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
		grep -qw -- "$name" <<<"$have" || missing+=("$name")
	done
	((${#missing[@]})) || return 0
	local out
	# One per call: the CLI (v1.5.1) takes several --name but creates only the first.
	for name in "${missing[@]}"; do
		out=$(timeout 30 "$TEMPORAL_BIN" operator search-attribute create --address "$HOST:$TEMPORAL_PORT" \
			--namespace default --type Keyword --name "$name" 2>&1) ||
			die "temporal: cannot create the search attribute $name: $out"
	done
	say "temporal: search attributes registered: ${missing[*]} (Keyword)"
}

# --- FerretDB -------------------------------------------------------------------------------

# FerretDB's own liveness probe (true once its listener is up) when it answers; a bare TCP
# connect otherwise (another MongoDB-protocol server), which FerretDB logs as a dropped client.
ferretdb_healthy() {
	if command -v curl >/dev/null &&
		curl -fs --max-time 2 -o /dev/null "http://$HOST:$FERRETDB_DEBUG_PORT/debug/livez"; then
		return 0
	fi
	port_open "$FERRETDB_PORT"
}

up_ferretdb() {
	local pid bin
	if ferretdb_healthy; then
		if pid=$(our_pid ferretdb ferretdb); then
			say "ferretdb already running on $HOST:$FERRETDB_PORT (started by services.sh, pid $pid)"
		else
			say "ferretdb: $(port_owner "$FERRETDB_PORT") already listens on $HOST:$FERRETDB_PORT (left alone)"
		fi
		return
	fi
	if pid=$(our_pid ferretdb ferretdb); then
		say "ferretdb: started earlier (pid $pid), waiting until healthy"
		wait_healthy ferretdb "$LOGS/ferretdb.log" ferretdb_healthy "$pid"
		return
	fi
	bin=$("$REPO/scripts/tools.sh" ferretdb)
	require_free ferretdb "$FERRETDB_PORT" "$FERRETDB_DEBUG_PORT"
	mkdir -p "$STATE/ferret/data" "$STATE/ferret/state"
	say "ferretdb: starting on $HOST:$FERRETDB_PORT, SQLite files in $STATE/ferret/data (log $LOGS/ferretdb.log)"
	# synchronous(NORMAL): FerretDB runs SQLite in WAL mode, whose default (FULL) fsyncs the log
	# at every commit; NORMAL fsyncs at checkpoints, so a commit survives a crash of FerretDB
	# and only a power loss can take the last ones. That is MongoDB's own default (w:1 without
	# j, journal synced every 100 ms). FULL cost an onboarding about 5 ms of CPU here (fsync of
	# a new database file, three collections and their indexes), a third of FerretDB's share.
	start_daemon ferretdb "$bin" --handler=sqlite --sqlite-url="file:$STATE/ferret/data/?_pragma=synchronous(NORMAL)" \
		--listen-addr="$HOST:$FERRETDB_PORT" --debug-addr="$HOST:$FERRETDB_DEBUG_PORT" \
		--state-dir="$STATE/ferret/state" --telemetry=disable --log-level=warn
	wait_healthy ferretdb "$LOGS/ferretdb.log" ferretdb_healthy "$STARTED_PID"
}

# --- Commands -------------------------------------------------------------------------------

lock() {
	# One up/down at a time (parallel `make test` runs). Servers started here get `9>&-`, so
	# they never hold the lock after this script exits.
	exec 9>"$STATE/.services.lock"
	flock -w 900 9 || die "another services.sh up/down has held $STATE/.services.lock for 15 minutes"
}

cmd_up() {
	local start=${EPOCHREALTIME/[.,]/} svc elapsed ready=()
	lock
	for svc in postgres redis temporal ferretdb; do
		if skipped "$svc"; then
			say "$svc: skipped (SKIP_SERVICES)"
			continue
		fi
		"up_$svc"
		case $svc in
		postgres)
			bootstrap_postgres
			ready+=("postgres://tenancy_app@$HOST:$PG_PORT/tenancy")
			;;
		redis) ready+=("redis://$HOST:$REDIS_PORT") ;;
		temporal)
			temporal_search_attributes
			ready+=("temporal $HOST:$TEMPORAL_PORT (Web UI http://$HOST:$TEMPORAL_UI_PORT)")
			;;
		ferretdb) ready+=("mongodb://$HOST:$FERRETDB_PORT") ;;
		esac
	done
	elapsed=$(((${EPOCHREALTIME/[.,]/} - start) / 100000))
	local list
	list=$(printf '%s, ' "${ready[@]}")
	say "ready in $((elapsed / 10)).$((elapsed % 10)) s: ${list%, }"
}

cmd_down() {
	lock
	stop_daemon ferretdb ferretdb
	stop_daemon temporal start-dev
	stop_daemon redis redis-server
	stop_postgres
}

# status_line NAME HEALTH OWNER ADDRESS
status_line() { printf 'services: %-9s %-10s %-34s %s\n' "$1" "$2" "$3" "$4"; }

# owner NAME MATCH HEALTH: who started NAME, as seen from .state/pids ("-" when nobody runs it).
owner() {
	local pid
	if pid=$(our_pid "$1" "$2"); then
		echo "services.sh (pid $pid)"
	elif [[ $3 == down ]]; then
		echo -
	else
		echo external
	fi
}

cmd_status() {
	local rc=0 health who
	if skipped postgres; then
		status_line postgres skipped - "$HOST:$PG_PORT"
	else
		if pg_healthy; then health=healthy; else health=down rc=1; fi
		if [[ -f $PG_MARKER ]]; then
			who="services.sh (cluster $(tr " " / <"$PG_MARKER"))"
		elif [[ $health == down ]]; then
			who=-
		else
			who=external
		fi
		status_line postgres "$health" "$who" "$HOST:$PG_PORT"
	fi

	if skipped redis; then
		status_line redis skipped - "$HOST:$REDIS_PORT"
	else
		if redis_healthy; then health=healthy; else health=down rc=1; fi
		status_line redis "$health" "$(owner redis redis-server "$health")" "$HOST:$REDIS_PORT"
	fi

	if skipped temporal; then
		status_line temporal skipped - "$HOST:$TEMPORAL_PORT"
	else
		# Never build in `status`: without the CLI, fall back to a TCP check.
		TEMPORAL_BIN=$("$REPO/scripts/tools.sh" --cached temporal 2>/dev/null) || TEMPORAL_BIN=
		if temporal_healthy; then
			health=healthy
		elif [[ -z $TEMPORAL_BIN ]] && port_open "$TEMPORAL_PORT"; then
			health=listening
		else
			health=down rc=1
		fi
		status_line temporal "$health" "$(owner temporal start-dev "$health")" "$HOST:$TEMPORAL_PORT (Web UI http://$HOST:$TEMPORAL_UI_PORT)"
	fi

	if skipped ferretdb; then
		status_line ferretdb skipped - "$HOST:$FERRETDB_PORT"
	else
		if ferretdb_healthy; then health=healthy; else health=down rc=1; fi
		status_line ferretdb "$health" "$(owner ferretdb ferretdb "$health")" "$HOST:$FERRETDB_PORT"
	fi
	return "$rc"
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
