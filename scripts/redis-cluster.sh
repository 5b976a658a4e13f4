#!/usr/bin/env bash
# Starts, stops and reports a local Redis Cluster of three masters (no replicas) for the tests
# of the Redis Cluster support (REDIS_URL=redis+cluster://…): real redis-server processes with
# --cluster-enabled yes, on 127.0.0.1.
#
# Usage: scripts/redis-cluster.sh up|down|status
#
#   up      Idempotent: a healthy cluster on the ports is left alone (and not recorded as ours);
#           nodes of ours that run but form no cluster yet are joined; otherwise each node is
#           started (after installing redis-server with apt-get when absent) and the cluster is
#           created with redis-cli --cluster create. Waits until every node says cluster_state:ok.
#   down    Stops exactly the nodes this script started (PID files), SIGTERM then SIGKILL.
#   status  Whether the cluster is healthy; exit status 1 when it is not.
#
# Environment:
#   REDIS_CLUSTER_PORTS  three ports (default "7001 7002 7003"); each also uses port+10000 for
#                        the cluster bus.
#   SERVICES_TIMEOUT     seconds to wait for the cluster to become healthy (default 60)
#
# State (gitignored): .state/redis-cluster/<port>/ (nodes.conf, pid, log). Nothing persists:
# no RDB, no AOF; `down` then `up` makes a new, empty cluster.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$REPO/.state/redis-cluster
HOST=127.0.0.1
read -ra PORTS <<<"${REDIS_CLUSTER_PORTS:-7001 7002 7003}"
TIMEOUT=${SERVICES_TIMEOUT:-60}

say() { echo "redis-cluster: $*"; }
die() {
	echo "redis-cluster: error: $*" >&2
	exit 1
}

cli() { timeout 5 redis-cli -h "$HOST" -p "$1" "${@:2}" 2>/dev/null; }
node_up() { [[ $(cli "$1" ping) == PONG ]]; }
node_ok() { cli "$1" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok'; }
healthy() {
	local p
	for p in "${PORTS[@]}"; do node_ok "$p" || return 1; done
}
port_open() { (: <>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ours PORT: the node on PORT was started by this script and still runs.
ours() {
	local f=$DIR/$1/pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- ":$1" || return 1
	echo "$pid"
}

wait_for() {
	local what=$1 check=$2 deadline=$((SECONDS + TIMEOUT))
	until "$check"; do
		((SECONDS < deadline)) || die "$what not reached within ${TIMEOUT} s (logs: $DIR/*/redis.log)"
		sleep 0.2
	done
}

up() {
	if healthy; then
		say "healthy on ports ${PORTS[*]} (left alone)"
		return
	fi
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		command -v apt-get >/dev/null || die "redis-server is not installed and there is no apt-get"
		say "installing the Debian package redis-server"
		apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq redis-server >/dev/null
	fi
	local p
	for p in "${PORTS[@]}"; do
		if ours "$p" >/dev/null; then
			continue
		fi
		if port_open "$p" || port_open $((p + 10000)); then
			die "port $HOST:$p (or its bus port $((p + 10000))) is in use by a process this script did not start; set REDIS_CLUSTER_PORTS"
		fi
		# A new node: no cluster state left from an earlier run (its peers are new too).
		rm -rf "${DIR:?}/$p"
		mkdir -p "$DIR/$p"
		redis-server --port "$p" --bind "$HOST" --cluster-enabled yes \
			--cluster-config-file "$DIR/$p/nodes.conf" --dir "$DIR/$p" --daemonize yes \
			--save '' --appendonly no --pidfile "$DIR/$p/pid" --logfile "$DIR/$p/redis.log" </dev/null ||
			die "redis-server on port $p failed to start (log $DIR/$p/redis.log)"
	done
	all_up() {
		local q
		for q in "${PORTS[@]}"; do node_up "$q" || return 1; done
	}
	wait_for "every node answering" all_up
	# Nodes of ours that know no peer yet: make the cluster (all 16384 slots over the masters).
	local known
	known=$(cli "${PORTS[0]}" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
	if [[ ${known:-1} -lt ${#PORTS[@]} ]]; then
		local addrs=()
		for p in "${PORTS[@]}"; do addrs+=("$HOST:$p"); done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 ||
			die "redis-cli --cluster create failed (log $DIR/create.log)"
	fi
	wait_for "cluster_state:ok on every node" healthy
	say "healthy on ports ${PORTS[*]} (REDIS_URL=redis+cluster://$HOST:${PORTS[0]},$HOST:${PORTS[1]},$HOST:${PORTS[2]})"
}

down() {
	local p pid i
	for p in "${PORTS[@]}"; do
		if ! pid=$(ours "$p"); then
			say "node $p: not started by this script (left alone)"
			continue
		fi
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		rm -f "$DIR/$p/pid"
		say "node $p: stopped (pid $pid)"
	done
}

status() {
	if healthy; then
		say "healthy on ports ${PORTS[*]}"
	else
		say "not healthy on ports ${PORTS[*]}"
		return 1
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
