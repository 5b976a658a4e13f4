#!/usr/bin/env bash
# Runs the control plane locally: `dev.sh start` builds the binaries, applies migrations,
# starts the worker and the API in the background (PID files in .state/pids) and waits until
# /readyz answers; `dev.sh stop` stops exactly those two processes. Services (PostgreSQL, Redis,
# Temporal, FerretDB) are scripts/services.sh's job; `make dev` runs both.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$REPO/.state"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
BIN="$REPO/bin"
mkdir -p "$PIDS" "$LOGS" "$BIN"

log() { echo "dev: $*"; }

alive() { # alive NAME: the process in .state/pids/NAME.pid is running
	local f="$PIDS/$1.pid"
	[[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# Development secrets: generated once, kept in the gitignored state folder, never committed.
ensure_secrets() {
	umask 077
	[[ -s $STATE/master-key ]] || head -c 32 /dev/urandom | base64 >"$STATE/master-key"
	[[ -s $STATE/operator-token ]] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/operator-token"
}

export_env() {
	export APP_ENV="${APP_ENV:-dev}"
	export TENANT_MASTER_KEY="${TENANT_MASTER_KEY:-$(cat "$STATE/master-key")}"
	export OPERATOR_TOKEN="${OPERATOR_TOKEN:-$(cat "$STATE/operator-token")}"
	export API_ADDR="${API_ADDR:-127.0.0.1:8080}"
	export EXPORT_DIR="${EXPORT_DIR:-$STATE/exports}"
}

api_url() { echo "http://${API_ADDR/#:/127.0.0.1:}"; }

print_urls() {
	cat <<TXT

MisyBot Tenancy is running.
  API              $(api_url)$( [[ -n ${1:-} ]] && echo "  (management: $(api_url)/api/meta-agent/tenants)")
  Dashboard        $(api_url)/dashboard/   (sign in with the operator token)
  Temporal Web UI  http://127.0.0.1:8233
  Metrics          http://${METRICS_ADDR:-127.0.0.1:9464}/metrics (API), http://${WORKER_METRICS_ADDR:-127.0.0.1:9465}/metrics (worker)
  Operator token   $OPERATOR_TOKEN   (Authorization: Bearer <token>; stored in .state/operator-token)
  Master key       $TENANT_MASTER_KEY   (.state/master-key; development only)
  Archives         .state/exports/*.tar.gz.age, decrypt with the identity in .state/export-identity.txt
  Logs             .state/logs/api.log, .state/logs/worker.log
  Stop             make down

Try:
  curl -s -H "Authorization: Bearer \$(cat .state/operator-token)" $(api_url)/api/meta-agent/tenants
TXT
}

start() {
	ensure_secrets
	export_env
	if alive api || alive worker; then
		log "already running (api pid $(cat "$PIDS/api.pid" 2>/dev/null || echo -), worker pid $(cat "$PIDS/worker.pid" 2>/dev/null || echo -)); nothing started. 'make down' stops it."
		print_urls mgmt
		return 0
	fi
	log "building starter and worker"
	(cd "$REPO" && go build -o "$BIN/starter" ./starter && go build -o "$BIN/worker" ./worker)
	# The age identity offboarding archives are encrypted to (its secret half stays here).
	if [[ ! -s $STATE/export-identity.txt ]]; then
		(umask 077 && "$BIN/starter" export-keygen >"$STATE/export-identity.txt" 2>/dev/null)
	fi
	export EXPORT_RECIPIENT="${EXPORT_RECIPIENT:-$(sed -n 's/^# public key: //p' "$STATE/export-identity.txt")}"
	log "applying migrations"
	"$BIN/starter" migrate >>"$LOGS/migrate.log" 2>&1 || { tail -20 "$LOGS/migrate.log"; exit 1; }

	for name in worker api; do
		local cmd=("$BIN/worker")
		[[ $name == api ]] && cmd=("$BIN/starter" serve)
		setsid nohup "${cmd[@]}" >>"$LOGS/$name.log" 2>&1 </dev/null &
		echo $! >"$PIDS/$name.pid"
		log "$name started (pid $!, log .state/logs/$name.log)"
	done

	local url deadline
	url="$(api_url)/readyz"
	deadline=$((SECONDS + 60))
	until curl -fsS -o /dev/null "$url" 2>/dev/null; do
		for name in api worker; do
			alive "$name" || { log "$name exited; last lines of .state/logs/$name.log:"; tail -20 "$LOGS/$name.log"; stop; exit 1; }
		done
		if ((SECONDS > deadline)); then
			log "API not ready after 60 s; $url says:"
			curl -sS "$url" || true
			echo
			stop
			exit 1
		fi
		sleep 0.3
	done
	log "ready: $(curl -sS "$url")"
	print_urls mgmt
}

stop_one() {
	local name=$1 f="$PIDS/$1.pid" pid
	[[ -f $f ]] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		log "stopped $name (pid $pid)"
	fi
	rm -f "$f"
}

stop() {
	stop_one api
	stop_one worker
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
