#!/usr/bin/env bash
# Builds, caches and prints the paths of the development tool binaries: the Temporal CLI
# (which embeds the dev server and the Web UI), FerretDB (MongoDB wire protocol on SQLite),
# golangci-lint (`make lint`), the client generators oapi-codegen and ogen (`make clients`), and
# a real Temporal server with its schema tool (scripts/temporal-server.sh, `make temporal-server`).
#
# Usage:
#   scripts/tools.sh temporal            print the Temporal CLI path, building it if absent
#   scripts/tools.sh ferretdb            print the FerretDB path, building it if absent
#   scripts/tools.sh golangci-lint       print the golangci-lint path, building it if absent
#   scripts/tools.sh oapi-codegen|ogen   print a client generator's path, building it if absent
#   scripts/tools.sh temporal-server|temporal-sql-tool
#                                        print the Temporal server's (or its SQL schema tool's)
#                                        path, building it if absent
#   scripts/tools.sh [all]               build both if absent, print TEMPORAL_BIN=… FERRETDB_BIN=…
#   scripts/tools.sh --cached NAME       print the path only if already built (exit 1 otherwise)
#
# The binaries are cached outside the clone, keyed by version, because CI runs in a fresh clone
# on the same machine and each build takes minutes:
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/temporal-v1.5.1/temporal
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/ferretdb-v1.24.2/ferretdb
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/golangci-lint-v2.15.0/golangci-lint
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/oapi-codegen-v2.8.2/oapi-codegen
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/ogen-v1.25.0/ogen
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/temporal-server-v1.29.7/temporal-server
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/temporal-sql-tool-v1.29.7/temporal-sql-tool
# and symlinked into .tools/bin/ (gitignored) for convenience. Only paths go to stdout; build
# progress goes to stderr. A build writes a temporary file and renames it into place, so an
# interrupted build never leaves a broken binary in the cache; a lock per tool keeps two callers
# from building the same thing at once.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}

TEMPORAL_VERSION=v1.5.1 # keep in step with tools/go.mod
FERRETDB_VERSION=v1.24.2
GOLANGCI_LINT_VERSION=v2.15.0 # keep in step with tools/lint/go.mod
OAPI_CODEGEN_VERSION=v2.8.2   # keep in step with tools/codegen/go.mod
OGEN_VERSION=v1.25.0          # keep in step with tools/codegen/go.mod
TEMPORAL_SERVER_VERSION=v1.29.7 # keep in step with tools/temporal-server/go.mod and deploy/docker-compose.prod.yml

log() { echo "tools: $*" >&2; }
die() {
	echo "tools: error: $*" >&2
	exit 1
}

# cached_path NAME: where the binary of NAME lives in the cache.
cached_path() {
	case $1 in
	temporal) echo "$CACHE/temporal-$TEMPORAL_VERSION/temporal" ;;
	ferretdb) echo "$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb" ;;
	golangci-lint) echo "$CACHE/golangci-lint-$GOLANGCI_LINT_VERSION/golangci-lint" ;;
	oapi-codegen) echo "$CACHE/oapi-codegen-$OAPI_CODEGEN_VERSION/oapi-codegen" ;;
	ogen) echo "$CACHE/ogen-$OGEN_VERSION/ogen" ;;
	temporal-server) echo "$CACHE/temporal-server-$TEMPORAL_SERVER_VERSION/temporal-server" ;;
	temporal-sql-tool) echo "$CACHE/temporal-sql-tool-$TEMPORAL_SERVER_VERSION/temporal-sql-tool" ;;
	*) die "unknown tool '$1' (expected temporal, ferretdb, golangci-lint, oapi-codegen, ogen, temporal-server or temporal-sql-tool)" ;;
	esac
}

# link NAME PATH: convenience symlink in .tools/bin/ (best effort: a read-only clone still works).
link() {
	if mkdir -p "$REPO/.tools/bin" 2>/dev/null; then
		ln -sfn "$2" "$REPO/.tools/bin/$1" 2>/dev/null || true
	fi
}

build_temporal() { # $1: temporary output file
	[[ -f $REPO/tools/go.mod ]] || die "missing $REPO/tools/go.mod (the tools module)"
	(cd "$REPO/tools" && go build -o "$1" github.com/temporalio/cli/cmd/temporal)
}

# golangci-lint has a module of its own (tools/lint), so its many dependencies never meet the
# Temporal CLI's or the service's in one build list.
build_golangci-lint() { # $1: temporary output file
	[[ -f $REPO/tools/lint/go.mod ]] || die "missing $REPO/tools/lint/go.mod (the lint tools module)"
	(cd "$REPO/tools/lint" && go build -o "$1" github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
}

# The client generators share a module of their own (tools/codegen), for the same reason.
build_oapi-codegen() { # $1: temporary output file
	[[ -f $REPO/tools/codegen/go.mod ]] || die "missing $REPO/tools/codegen/go.mod (the codegen tools module)"
	(cd "$REPO/tools/codegen" && go build -o "$1" github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen)
}

build_ogen() { # $1: temporary output file
	[[ -f $REPO/tools/codegen/go.mod ]] || die "missing $REPO/tools/codegen/go.mod (the codegen tools module)"
	(cd "$REPO/tools/codegen" && go build -o "$1" github.com/ogen-go/ogen/cmd/ogen)
}

# The Temporal server and its schema tool share a module of their own (tools/temporal-server):
# the server pulls about 200 modules, which must meet neither the CLI's (a different server
# version) nor the service's. Both are `tool` directives there, which keeps go.sum complete (a
# bare `go get go.temporal.io/server@…` leaves it short and the build fails).
build_temporal-server() { # $1: temporary output file
	[[ -f $REPO/tools/temporal-server/go.mod ]] || die "missing $REPO/tools/temporal-server/go.mod (the Temporal server tools module)"
	(cd "$REPO/tools/temporal-server" && go build -o "$1" go.temporal.io/server/cmd/server)
}

build_temporal-sql-tool() { # $1: temporary output file
	[[ -f $REPO/tools/temporal-server/go.mod ]] || die "missing $REPO/tools/temporal-server/go.mod (the Temporal server tools module)"
	(cd "$REPO/tools/temporal-server" && go build -o "$1" go.temporal.io/server/cmd/tools/sql)
}

# FerretDB cannot be built with `go install …@version`: that binary panics at start with
# "Invalid build/version/version.txt". Build from a writable copy of the module instead, with the
# version file filled in.
build_ferretdb() ( # $1: temporary output file; runs in a subshell so its trap stays its own
	local out=$1 work moddir
	work=$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-src.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now.
	trap "rm -rf '$work'" EXIT
	moddir=$(cd "$work" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n $moddir && -d $moddir ]] || die "go mod download did not give FerretDB's module directory"
	cp -R "$moddir/." "$work/src"
	chmod -R u+w "$work/src"
	echo "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
	(cd "$work/src" && go build -buildvcs=false -o "$out" ./cmd/ferretdb)
)

# ensure NAME: print the cached binary's path, building it first if it is absent.
ensure() {
	local name=$1 bin dir tmp start
	bin=$(cached_path "$name")
	if [[ ! -x $bin ]]; then
		dir=$(dirname "$bin")
		mkdir -p "$dir"
		# Serialise builds of the same tool across callers (make dev, CI, tests started at once).
		exec 8>"$dir/.build.lock"
		flock 8
		if [[ ! -x $bin ]]; then
			tmp=$(mktemp "$dir/.$name.tmp.XXXXXX")
			# Until the rename, any exit (set -e included) removes the partial file and says why.
			# shellcheck disable=SC2064 # expand $tmp and $name now.
			trap "rm -f '$tmp'; echo 'tools: error: building $name failed' >&2" EXIT
			trap 'exit 130' INT TERM HUP # so that Ctrl-C runs the EXIT trap too
			start=$SECONDS
			log "building $name into $bin (takes a few minutes the first time)"
			"build_$name" "$tmp" >&2 # no "|| …": that would switch off set -e inside
			# A binary that cannot even print its version is not worth caching.
			"$tmp" --version >/dev/null 2>&1 || die "the freshly built $name does not run ($tmp --version failed)"
			chmod 0755 "$tmp"
			mv -f "$tmp" "$bin"
			trap - EXIT INT TERM HUP
			log "built $name in $((SECONDS - start)) s"
		fi
		exec 8>&-
	fi
	link "$name" "$bin"
	echo "$bin"
}

main() {
	local cmd=${1:-all} bin
	case $cmd in
	temporal | ferretdb | golangci-lint | oapi-codegen | ogen | temporal-server | temporal-sql-tool) ensure "$cmd" ;;
	all)
		echo "TEMPORAL_BIN=$(ensure temporal)"
		echo "FERRETDB_BIN=$(ensure ferretdb)"
		;;
	--cached)
		[[ $# -eq 2 ]] || die "usage: $0 --cached temporal|ferretdb|golangci-lint|oapi-codegen|ogen|temporal-server|temporal-sql-tool"
		bin=$(cached_path "$2")
		[[ -x $bin ]] || exit 1
		link "$2" "$bin"
		echo "$bin"
		;;
	-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" ;;
	*) die "unknown command '$cmd' (try: temporal, ferretdb, golangci-lint, oapi-codegen, ogen, temporal-server, temporal-sql-tool, all, --cached NAME)" ;;
	esac
}

main "$@"
