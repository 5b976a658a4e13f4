#!/usr/bin/env bash
# Starts, stops and reports extra local "cells" for tests and the bench. A cell is a complete set
# of stores of its own (each tenant lives on exactly one cell); scripts/services.sh runs the
# first one (cell-1: PostgreSQL 5432, Redis 6379, FerretDB 27017). This script runs cell-2 …
# cell-N beside it on 127.0.0.1, each store a separate server process:
#
#   cell     postgres (Debian cluster)   ferretdb (debug)   redis
#   cell-2   5442  15/cell2              27027 (8098)       6389
#   cell-3   5443  15/cell3              27037 (8108)       6399
#   cell-K   5440+K  cellK               27017+10(K-1)      6379+10(K-1)   (K ≤ 20)
#
# Usage: scripts/cells.sh up|down|status|destroy [N]      N: the number of cells (default 3)
#        scripts/cells.sh env <cell> [database]
#
#   up       Idempotent, per store: healthy already → left alone; stopped → started; absent →
#            created (the PostgreSQL cluster with pg_createcluster). Then, in each cell's cluster,
#            the roles and databases of scripts/pg-bootstrap.sql, with passwords generated once
#            per cell (tenancy_app: no superuser, no BYPASSRLS; checked). Its pg_hba.conf allows
#            only those two roles, over TCP from 127.0.0.1, with scram-sha-256 (the postgres
#            superuser: the local socket, peer).
#   down     Stops exactly what `up` started (PID files and markers in .state/cells/<cell>/);
#            without N, every cell that has a state folder. Data survives down/up.
#   status   One line per store; exit status 1 when one is not healthy.
#   destroy  down, then drops the PostgreSQL clusters this script created and deletes the cells'
#            state folders (their data and passwords). For measuring `up` from nothing.
#   env      The cell's connection strings for tests, as shell assignments (NAME=value, one a
#            line; no value needs quoting): `eval "$(scripts/cells.sh env cell-2)"`. The only
#            command that prints a password. database: tenancy_test (default), tenancy or
#            tenancy_bench; the Redis database follows the main stack's habit (tenancy 0,
#            tenancy_test 1, tenancy_bench 2).
#
# Environment:
#   CELLS             default N (3)
#   SERVICES_TIMEOUT  seconds to wait for each store to become healthy (default 60)
#   MISYBOT_TOOLS_CACHE  where FerretDB's binary is cached (scripts/tools.sh)
#
# State (gitignored), per cell in .state/cells/<cell>/: pg-password (mode 600, in the .pgpass
# format, so PGPASSFILE=… works), markers postgres.created and postgres.started, redis.pid,
# ferretdb.pid, *.log, redis/, ferret/{data,state}/. The cluster itself lives where Debian puts it
# (/var/lib/postgresql/<ver>/cellK, /etc/postgresql/<ver>/cellK); a copy of the passwords is kept
# in its configuration folder (root only), so another clone on this machine (CI) reuses them
# instead of resetting them under the first one's feet.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CELLS_DIR=$REPO/.state/cells
HOST=127.0.0.1
TIMEOUT=${SERVICES_TIMEOUT:-60}
MAX_CELLS=20
ROLES=(tenancy_owner tenancy_app)
PW_COPY_NAME=misybot-cell.pgpass # in the cluster's configuration folder

say() { echo "cells: $*"; }
die() {
	echo "cells: error: $*" >&2
	exit 1
}
# fail_with_log MESSAGE LOGFILE: die, showing the tail of the log since the last start by us.
fail_with_log() {
	echo "cells: error: $1 (log: $2)" >&2
	if [[ -r $2 ]]; then
		awk '/^=== / { n = 0 } { line[n++] = $0 } END { for (i = (n > 15 ? n - 15 : 0); i < n; i++) print "cells:   | " line[i] }' "$2" >&2
	fi
	exit 1
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
apt_install() { # apt_install PACKAGE
	command -v apt-get >/dev/null || die "$1 is not installed and there is no apt-get"
	local aptlog=$CELLS_DIR/apt.log
	if ((!APT_UPDATED)); then
		as_root apt-get -o DPkg::Lock::Timeout=600 update >>"$aptlog" 2>&1 9>&- ||
			fail_with_log "apt-get update failed" "$aptlog"
		APT_UPDATED=1
	fi
	say "installing the Debian package $1 (log $aptlog)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "$1" \
		>>"$aptlog" 2>&1 9>&- || fail_with_log "apt-get install $1 failed" "$aptlog"
}

port_open() { (: <>"/dev/tcp/$HOST/$1") 2>/dev/null; }

port_owner() {
	local line
	line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1) || true
	if [[ $line =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]} (pid ${BASH_REMATCH[2]})"
	else
		echo "another process"
	fi
}

# require_free WHAT PORT...: fail, naming the port, if something else listens there.
require_free() {
	local what=$1 p
	shift
	for p in "$@"; do
		port_open "$p" && die "$what: port $HOST:$p is in use by $(port_owner "$p"), which is not this cell's healthy server; free it"
	done
	return 0
}

alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# our_pid PIDFILE MATCH: the PID in PIDFILE if that process lives and its command line contains
# MATCH (a recycled PID is not ours).
our_pid() {
	local f=$1 pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
	echo "$pid"
}

# wait_healthy WHAT LOGFILE CHECK [PID]: poll CHECK for up to TIMEOUT seconds; stop early if PID
# (the process we started) exits.
wait_healthy() {
	local what=$1 logf=$2 check=$3 pid=${4:-} deadline=$((SECONDS + TIMEOUT))
	until "$check"; do
		if [[ -n $pid ]] && ! alive "$pid"; then
			fail_with_log "$what exited during start-up" "$logf"
		fi
		((SECONDS < deadline)) || fail_with_log "$what did not become healthy within ${TIMEOUT} s" "$logf"
		sleep 0.1
	done
}

# --- Cells ----------------------------------------------------------------------------------

# in_range VALUE LO HI: VALUE is a decimal number from LO to HI.
in_range() {
	[[ $1 =~ ^[0-9]{1,3}$ ]] || return 1
	(($((10#$1)) >= $2 && $((10#$1)) <= $3))
}

# use_cell K: set the names, ports and paths of cell-K.
use_cell() {
	local k=$1
	CELL=cell-$k
	DIR=$CELLS_DIR/$CELL
	PG_CLUSTER=cell$k
	PG_PORT=$((5440 + k))
	FERRET_PORT=$((27017 + 10 * (k - 1)))
	FERRET_DEBUG_PORT=$((8088 + 10 * (k - 1)))
	REDIS_PORT=$((6379 + 10 * (k - 1)))
	PW_FILE=$DIR/pg-password
}

# cell_number NAME: K from "cell-K", "cellK" or "K".
cell_number() {
	local n=${1#cell}
	n=${n#-}
	in_range "$n" 2 "$MAX_CELLS" ||
		die "unknown cell '$1' (expected cell-2 … cell-$MAX_CELLS; cell-1 is scripts/services.sh's)"
	echo "$((10#$n))"
}

# cell_list N: the cell numbers a command acts on. With N: 2…N. Without: 2…CELLS (default 3),
# plus any cell that has a state folder (down, status and destroy find every cell up started).
cell_list() {
	local n=${1:-} d k max
	if [[ -n $n ]]; then
		in_range "$n" 1 "$MAX_CELLS" || die "N must be 1 … $MAX_CELLS (got '$n')"
		max=$((10#$n))
	else
		max=${CELLS:-3}
		in_range "$max" 1 "$MAX_CELLS" || die "CELLS must be 1 … $MAX_CELLS"
		max=$((10#$max))
		if [[ ${2:-} == all ]]; then
			for d in "$CELLS_DIR"/cell-*; do
				[[ -d $d ]] || continue
				k=${d##*/cell-}
				if in_range "$k" $((max + 1)) "$MAX_CELLS"; then max=$((10#$k)); fi
			done
		fi
	fi
	for ((k = 2; k <= max; k++)); do echo "$k"; done
}

# --- PostgreSQL -----------------------------------------------------------------------------

pg_healthy() { pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2 2>/dev/null; }

# pg_cluster_info: "version port status" of the cell's Debian cluster, if it exists.
pg_cluster_info() {
	pg_lsclusters -h 2>/dev/null | awk -v n="$PG_CLUSTER" '$2 == n { print $1, $3, $4; exit }'
}

pg_version() {
	find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1
}

# The cell cluster's whole pg_hba.conf: no trust anywhere.
pg_hba() {
	cat <<EOF
# Written by scripts/cells.sh for $CELL (rewritten by every \`up\`): the application roles over
# TCP from $HOST with SCRAM passwords, the postgres superuser on the local socket (peer),
# nothing else.
local   all   postgres                                  peer
host    all   tenancy_owner,tenancy_app   $HOST/32   scram-sha-256
host    all   all                         0.0.0.0/0      reject
host    all   all                         ::/0           reject
EOF
}

# ensure_pg_hba VERSION ONLINE: write the cluster's pg_hba.conf if it differs; reload if online.
ensure_pg_hba() {
	local ver=$1 online=$2 f want
	f=/etc/postgresql/$ver/$PG_CLUSTER/pg_hba.conf
	want=$(pg_hba)
	[[ -f $f && $(<"$f") == "$want" ]] && return 0
	printf '%s\n' "$want" | as_root install -o postgres -g postgres -m 640 /dev/stdin "$f"
	if [[ $online == 1 ]]; then
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" reload >>"$DIR/postgres.log" 2>&1 ||
			fail_with_log "$CELL postgres: reload after writing pg_hba.conf failed" "$DIR/postgres.log"
	fi
	say "$CELL postgres: pg_hba.conf written (scram-sha-256 from $HOST for ${ROLES[*]})"
}

# pw_of ROLE [FILE]: the role's password from a .pgpass-format file.
pw_of() { awk -F: -v r="$1" '$4 == r { print $5; exit }' "${2:-$PW_FILE}" 2>/dev/null; }

pw_file_valid() { # pw_file_valid FILE
	local r p
	for r in "${ROLES[@]}"; do
		p=$(pw_of "$r" "$1") && [[ $p =~ ^[0-9a-f]{48}$ ]] || return 1
	done
}

# ensure_passwords VERSION: the cell's passwords in PW_FILE (mode 600). The copy in the cluster's
# configuration folder wins when there is one (the roles were set from it); otherwise the state
# file's, or new ones. Then the copy is (re)written. Passwords never reach argv or a log.
ensure_passwords() {
	local ver=$1 copy r pw content=
	copy=/etc/postgresql/$ver/$PG_CLUSTER/$PW_COPY_NAME
	rm -f "$PW_FILE.tmp"
	(umask 077 && : >"$PW_FILE.tmp")
	if as_root test -s "$copy" && as_root cat "$copy" >"$PW_FILE.tmp" && pw_file_valid "$PW_FILE.tmp"; then
		: # from the cluster
	elif pw_file_valid "$PW_FILE"; then
		cat "$PW_FILE" >"$PW_FILE.tmp"
	else
		for r in "${ROLES[@]}"; do
			pw=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
			content+="$HOST:$PG_PORT:*:$r:$pw"$'\n'
		done
		printf '%s' "$content" >"$PW_FILE.tmp"
		say "$CELL postgres: generated passwords for ${ROLES[*]} (in $PW_FILE)"
	fi
	chmod 600 "$PW_FILE.tmp"
	mv -f "$PW_FILE.tmp" "$PW_FILE"
	if ! as_root cmp -s "$PW_FILE" "$copy"; then
		as_root install -o root -g root -m 600 "$PW_FILE" "$copy"
	fi
}

# bootstrap_postgres: roles with the cell's passwords, then scripts/pg-bootstrap.sql (its CREATE
# ROLEs are skipped, the roles exist), all through stdin as the postgres OS user; then checks.
bootstrap_postgres() {
	local out owner_pw app_pw r
	owner_pw=$(pw_of tenancy_owner)
	app_pw=$(pw_of tenancy_app)
	# log_min_error_statement=panic: a failing statement is not copied into the server log.
	if ! out=$({
		printf '%s\n' "SET log_min_error_statement = panic;" "SET log_statement = none;" \
			"SELECT 'CREATE ROLE tenancy_owner LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenancy_owner')" '\gexec' \
			"SELECT 'CREATE ROLE tenancy_app LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenancy_app')" '\gexec' \
			"ALTER ROLE tenancy_owner LOGIN PASSWORD '$owner_pw';" \
			"ALTER ROLE tenancy_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '$app_pw';"
		cat "$REPO/scripts/pg-bootstrap.sql"
	} | as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres -f - 2>&1 9>&-); then
		out=${out//$owner_pw/***}
		die "$CELL postgres: bootstrap failed: ${out//$app_pw/***}"
	fi
	for r in "${ROLES[@]}"; do
		out=$(PGPASSFILE=$PW_FILE psql -X -Atq -h "$HOST" -p "$PG_PORT" -U "$r" -d tenancy -w \
			-c "select rolsuper or rolbypassrls from pg_roles where rolname = 'tenancy_app'" 2>&1) ||
			die "$CELL postgres: $r cannot log in over TCP at $HOST:$PG_PORT/tenancy: $out"
	done
	[[ $out == f ]] || die "$CELL postgres: tenancy_app is a superuser or bypasses RLS"
}

up_postgres() {
	local info ver port status logf=$DIR/postgres.log
	command -v pg_ctlcluster >/dev/null || apt_install postgresql
	info=$(pg_cluster_info)
	if [[ -z $info ]]; then
		ver=$(pg_version)
		[[ -n $ver ]] || die "$CELL postgres: no PostgreSQL server under /usr/lib/postgresql"
		require_free "$CELL postgres" "$PG_PORT"
		say "$CELL postgres: creating the cluster $ver/$PG_CLUSTER on port $PG_PORT"
		echo "=== $(date -u +%FT%TZ) cells.sh: pg_createcluster $ver $PG_CLUSTER" >>"$logf"
		as_root pg_createcluster --port "$PG_PORT" --start-conf manual \
			"$ver" "$PG_CLUSTER" -- --auth-local=peer --auth-host=scram-sha-256 >>"$logf" 2>&1 9>&- ||
			fail_with_log "$CELL postgres: pg_createcluster $ver $PG_CLUSTER failed" "$logf"
		# TCP on 127.0.0.1 only (the default, localhost, adds ::1). In conf.d, which Debian's
		# postgresql.conf includes (pg_createcluster -o cannot quote an address).
		printf '%s\n' "# Written by scripts/cells.sh for $CELL." "listen_addresses = '$HOST'" |
			as_root install -o postgres -g postgres -m 644 /dev/stdin "/etc/postgresql/$ver/$PG_CLUSTER/conf.d/cells.conf"
		echo "$ver $PG_CLUSTER" >"$DIR/postgres.created"
		info=$(pg_cluster_info)
		[[ -n $info ]] || die "$CELL postgres: pg_createcluster made no cluster $PG_CLUSTER"
	fi
	read -r ver port status <<<"$info"
	[[ $port == "$PG_PORT" ]] ||
		die "$CELL postgres: the cluster $ver/$PG_CLUSTER is configured for port $port, not $PG_PORT; fix or drop it (pg_dropcluster --stop $ver $PG_CLUSTER)"

	if [[ $status == online* ]]; then
		ensure_pg_hba "$ver" 1
		if pg_healthy; then
			if [[ -f $DIR/postgres.started ]]; then
				say "$CELL postgres already running on $HOST:$PG_PORT (cluster $ver/$PG_CLUSTER, started by cells.sh)"
			else
				say "$CELL postgres already running on $HOST:$PG_PORT (cluster $ver/$PG_CLUSTER, left alone)"
			fi
		else
			say "$CELL postgres: cluster $ver/$PG_CLUSTER is online; waiting for $HOST:$PG_PORT"
			wait_healthy "$CELL postgres" "/var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log" pg_healthy
		fi
	else
		ensure_pg_hba "$ver" 0
		require_free "$CELL postgres" "$PG_PORT"
		say "$CELL postgres: starting the cluster $ver/$PG_CLUSTER on $HOST:$PG_PORT"
		echo "=== $(date -u +%FT%TZ) cells.sh: pg_ctlcluster $ver $PG_CLUSTER start" >>"$logf"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" start >>"$logf" 2>&1 9>&- ||
			fail_with_log "$CELL postgres: pg_ctlcluster $ver $PG_CLUSTER start failed (server log /var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log)" "$logf"
		echo "$ver $PG_CLUSTER" >"$DIR/postgres.started"
		wait_healthy "$CELL postgres" "/var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log" pg_healthy
	fi
	ensure_passwords "$ver"
	bootstrap_postgres
}

stop_postgres() {
	local ver name
	if [[ ! -f $DIR/postgres.started ]]; then
		say "$CELL postgres: not started by cells.sh (left alone)"
		return
	fi
	read -r ver name <"$DIR/postgres.started" || true
	if [[ -n ${ver:-} && $name == "$PG_CLUSTER" ]] &&
		pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n && $4 ~ /^online/ { f = 1 } END { exit !f }'; then
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop >>"$DIR/postgres.log" 2>&1 ||
			fail_with_log "$CELL postgres: pg_ctlcluster $ver $name stop failed" "$DIR/postgres.log"
		say "$CELL postgres: stopped the cluster $ver/$name"
	else
		say "$CELL postgres: cluster ${ver:-?}/${name:-?} already stopped (marker removed)"
	fi
	rm -f "$DIR/postgres.started"
}

# --- Redis ----------------------------------------------------------------------------------

redis_healthy() { [[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

up_redis() {
	local pid
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		apt_install redis-server
	fi
	if redis_healthy; then
		if pid=$(our_pid "$DIR/redis.pid" redis-server); then
			say "$CELL redis already running on $HOST:$REDIS_PORT (started by cells.sh, pid $pid)"
		else
			say "$CELL redis already running on $HOST:$REDIS_PORT (left alone)"
		fi
		return
	fi
	require_free "$CELL redis" "$REDIS_PORT"
	rm -f "$DIR/redis.pid"
	mkdir -p "$DIR/redis"
	say "$CELL redis: starting on $HOST:$REDIS_PORT"
	echo "=== $(date -u +%FT%TZ) cells.sh: redis-server --port $REDIS_PORT" >>"$DIR/redis.log"
	redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
		--pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR/redis" </dev/null 9>&- ||
		fail_with_log "$CELL redis: redis-server failed to start" "$DIR/redis.log"
	wait_healthy "$CELL redis" "$DIR/redis.log" redis_healthy
}

# --- FerretDB -------------------------------------------------------------------------------

ferret_healthy() {
	curl -fs --max-time 2 -o /dev/null "http://$HOST:$FERRET_DEBUG_PORT/debug/livez" && port_open "$FERRET_PORT"
}

up_ferretdb() {
	local pid bin pidf=$DIR/ferretdb.pid logf=$DIR/ferretdb.log i
	if ferret_healthy; then
		if pid=$(our_pid "$pidf" ferretdb); then
			say "$CELL ferretdb already running on $HOST:$FERRET_PORT (started by cells.sh, pid $pid)"
		else
			say "$CELL ferretdb already running on $HOST:$FERRET_PORT (left alone)"
		fi
		return
	fi
	if pid=$(our_pid "$pidf" ferretdb); then
		say "$CELL ferretdb: started earlier (pid $pid), waiting until healthy"
		wait_healthy "$CELL ferretdb" "$logf" ferret_healthy "$pid"
		return
	fi
	bin=$("$REPO/scripts/tools.sh" ferretdb)
	require_free "$CELL ferretdb" "$FERRET_PORT" "$FERRET_DEBUG_PORT"
	mkdir -p "$DIR/ferret/data" "$DIR/ferret/state"
	rm -f "$pidf"
	say "$CELL ferretdb: starting on $HOST:$FERRET_PORT (debug $FERRET_DEBUG_PORT), SQLite files in $DIR/ferret/data"
	echo "=== $(date -u +%FT%TZ) cells.sh: ferretdb --listen-addr=$HOST:$FERRET_PORT" >>"$logf"
	# As scripts/services.sh: SQLite's synchronous(NORMAL), detached in its own session, the PID
	# recorded by the shell that then execs the server.
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
	nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$bin" --handler=sqlite \
		--sqlite-url="file:$DIR/ferret/data/?_pragma=synchronous(NORMAL)" \
		--listen-addr="$HOST:$FERRET_PORT" --debug-addr="$HOST:$FERRET_DEBUG_PORT" \
		--state-dir="$DIR/ferret/state" --telemetry=disable --log-level=warn \
		</dev/null >>"$logf" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	[[ -s $pidf ]] || fail_with_log "$CELL ferretdb did not start" "$logf"
	wait_healthy "$CELL ferretdb" "$logf" ferret_healthy "$(<"$pidf")"
}

# stop_daemon WHAT PIDFILE MATCH: SIGTERM the recorded process, SIGKILL after 10 s.
stop_daemon() {
	local what=$1 f=$2 pid i
	if [[ ! -f $f ]]; then
		say "$what: not started by cells.sh (left alone)"
		return
	fi
	if ! pid=$(our_pid "$f" "$3"); then
		rm -f "$f"
		say "$what: process already gone (stale PID file removed)"
		return
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		say "$what: still running 10 s after SIGTERM, sent SIGKILL (pid $pid)"
	else
		say "$what: stopped (pid $pid)"
	fi
	rm -f "$f"
}

# --- Commands -------------------------------------------------------------------------------

lock() {
	exec 9>"$CELLS_DIR/.lock"
	flock -w 900 9 || die "another cells.sh up/down has held $CELLS_DIR/.lock for 15 minutes"
}

cmd_up() {
	local start=${EPOCHREALTIME/[.,]/} ks k elapsed names=()
	ks=$(cell_list "${1:-}") || exit 1
	lock
	for k in $ks; do
		use_cell "$k"
		mkdir -p "$DIR"
		chmod 700 "$DIR"
		up_postgres
		up_redis
		up_ferretdb
		names+=("$CELL")
	done
	elapsed=$(((${EPOCHREALTIME/[.,]/} - start) / 100000))
	if ((${#names[@]})); then
		say "ready in $((elapsed / 10)).$((elapsed % 10)) s: ${names[*]} (connection strings: scripts/cells.sh env <cell>)"
	else
		say "N=1: no cell beside scripts/services.sh's"
	fi
}

cmd_down() {
	local ks k
	ks=$(cell_list "${1:-}" all) || exit 1
	lock
	for k in $ks; do
		use_cell "$k"
		[[ -d $DIR ]] || continue
		stop_daemon "$CELL ferretdb" "$DIR/ferretdb.pid" ferretdb
		stop_daemon "$CELL redis" "$DIR/redis.pid" redis-server
		stop_postgres
	done
}

cmd_destroy() {
	local ks k ver name
	ks=$(cell_list "${1:-}" all) || exit 1
	cmd_down "${1:-}"
	for k in $ks; do
		use_cell "$k"
		[[ -d $DIR ]] || continue
		if [[ -f $DIR/postgres.created ]]; then
			read -r ver name <"$DIR/postgres.created" || true
			if [[ $name == "$PG_CLUSTER" ]] && pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n { f = 1 } END { exit !f }'; then
				as_root pg_dropcluster --stop "$ver" "$name"
				say "$CELL postgres: dropped the cluster $ver/$name"
			fi
		else
			say "$CELL postgres: cluster not created by cells.sh (left alone)"
		fi
		rm -rf "${DIR:?}"
		say "$CELL: state folder removed"
	done
}

status_line() { printf 'cells: %-7s %-9s %-8s %-36s %s\n' "$@"; }

cmd_status() {
	local ks k rc=0 health who pid info
	ks=$(cell_list "${1:-}" all) || exit 1
	for k in $ks; do
		use_cell "$k"
		info=$(pg_cluster_info)
		if pg_healthy; then health=healthy; else health=down rc=1; fi
		if [[ -f $DIR/postgres.started ]]; then
			who="cells.sh (cluster ${info%% *}/$PG_CLUSTER)"
		elif [[ -n $info && $health == healthy ]]; then
			who="external (cluster ${info%% *}/$PG_CLUSTER)"
		elif [[ -n $info ]]; then
			who="- (cluster ${info%% *}/$PG_CLUSTER stopped)"
		elif [[ $health == healthy ]]; then
			who=external
		else
			who="- (no cluster $PG_CLUSTER)"
		fi
		status_line "$CELL" postgres "$health" "$who" "$HOST:$PG_PORT"

		if redis_healthy; then health=healthy; else health=down rc=1; fi
		if pid=$(our_pid "$DIR/redis.pid" redis-server); then
			who="cells.sh (pid $pid)"
		elif [[ $health == healthy ]]; then who=external; else who=-; fi
		status_line "$CELL" redis "$health" "$who" "$HOST:$REDIS_PORT"

		if ferret_healthy; then health=healthy; else health=down rc=1; fi
		if pid=$(our_pid "$DIR/ferretdb.pid" ferretdb); then
			who="cells.sh (pid $pid)"
		elif [[ $health == healthy ]]; then who=external; else who=-; fi
		status_line "$CELL" ferretdb "$health" "$who" "$HOST:$FERRET_PORT (debug $FERRET_DEBUG_PORT)"
	done
	return "$rc"
}

# cmd_env CELL [DATABASE]: connection strings; the one command that prints passwords.
cmd_env() {
	local k db=${2:-tenancy_test} redis_db owner_pw app_pw
	[[ -n ${1:-} ]] || die "usage: $0 env <cell> [database]"
	k=$(cell_number "$1")
	use_cell "$k"
	case $db in
	tenancy) redis_db=0 ;;
	tenancy_test) redis_db=1 ;;
	tenancy_bench) redis_db=2 ;;
	*) die "database must be tenancy, tenancy_test or tenancy_bench (got '$db')" ;;
	esac
	pw_file_valid "$PW_FILE" || die "$CELL has no passwords yet: run scripts/cells.sh up first"
	owner_pw=$(pw_of tenancy_owner)
	app_pw=$(pw_of tenancy_app)
	printf '%s\n' \
		"CELL=$CELL" \
		"CELL_POSTGRES_URL=postgres://tenancy_app:$app_pw@$HOST:$PG_PORT/$db?sslmode=disable" \
		"CELL_POSTGRES_OWNER_URL=postgres://tenancy_owner:$owner_pw@$HOST:$PG_PORT/$db?sslmode=disable" \
		"CELL_MONGO_URL=mongodb://$HOST:$FERRET_PORT/" \
		"CELL_REDIS_URL=redis://$HOST:$REDIS_PORT/$redis_db"
}

main() {
	mkdir -p "$CELLS_DIR"
	case ${1:-} in
	up) cmd_up "${2:-}" ;;
	down) cmd_down "${2:-}" ;;
	status) cmd_status "${2:-}" ;;
	destroy) cmd_destroy "${2:-}" ;;
	env) cmd_env "${2:-}" "${3:-}" ;;
	-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" ;;
	*) die "usage: $0 up|down|status|destroy [N] | env <cell> [database]" ;;
	esac
}

main "$@"
