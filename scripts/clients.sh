#!/usr/bin/env bash
# Generates the API clients from api/openapi.yaml, and lints the document.
#
# Usage:
#   scripts/clients.sh [generate]        regenerate clients/ (make clients)
#   scripts/clients.sh generate DIR      write the same files under DIR instead (the freshness
#                                        test in clients/ compares them with the committed ones)
#   scripts/clients.sh lint              Redocly CLI's lint of the document, at 0 warnings
#   scripts/clients.sh node              print the folder of the Node tools (installed if absent)
#
# What it writes, from the same document:
#   clients/go/oapi/client.gen.go        oapi-codegen (package oapi, in the service's module)
#   clients/go/ogen/oas_*_gen.go         ogen (package ogen, a module of its own)
#   clients/ts/schema.d.ts               openapi-typescript (types for openapi-fetch)
# The Go generators are pinned in tools/codegen/go.mod and built once by scripts/tools.sh; the
# Node tools (openapi-typescript, typescript, openapi-fetch, Redocly CLI) are pinned in
# tools/node/package-lock.json and installed with `npm ci` into
#   ${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}/node-<hash of the lock file>/
# (outside the clone, as CI starts from a fresh one), linked from tools/node/node_modules.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MISYBOT_TOOLS_CACHE:-$HOME/.cache/misybot/tools}
DOC=$REPO/api/openapi.yaml

log() { echo "clients: $*" >&2; }
die() {
	echo "clients: error: $*" >&2
	exit 1
}

# node_tools: print the folder holding node_modules/ of tools/node, running `npm ci` there once
# per version of the lock file.
node_tools() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		die "node and npm are needed for the TypeScript client and the lint (apt-get install nodejs npm)"
	fi
	local hash dir tmp
	hash=$(cat "$REPO/tools/node/package.json" "$REPO/tools/node/package-lock.json" | sha256sum | cut -c1-16)
	dir=$CACHE/node-$hash
	if [[ ! -x $dir/node_modules/.bin/openapi-typescript ]]; then
		mkdir -p "$CACHE"
		exec 7>"$CACHE/.node-$hash.lock"
		flock 7
		if [[ ! -x $dir/node_modules/.bin/openapi-typescript ]]; then
			log "installing the Node tools into $dir"
			tmp=$(mktemp -d "$CACHE/.node-$hash.XXXXXX")
			cp "$REPO/tools/node/package.json" "$REPO/tools/node/package-lock.json" "$tmp/"
			(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
			rm -rf "$dir"
			mv "$tmp" "$dir"
		fi
		exec 7>&-
	fi
	ln -sfn "$dir/node_modules" "$REPO/tools/node/node_modules" 2>/dev/null || true
	echo "$dir"
}

# generate OUT: every client under OUT, in the layout of clients/.
generate() {
	local out=$1 oapi ogen node
	oapi=$("$REPO/scripts/tools.sh" oapi-codegen)
	ogen=$("$REPO/scripts/tools.sh" ogen)
	mkdir -p "$out/go/oapi" "$out/go/ogen" "$out/ts"
	"$oapi" -config "$REPO/clients/go/oapi/oapi-codegen.yaml" -o "$out/go/oapi/client.gen.go" "$DOC"
	# ogen's notices (unsupported status checks, canonical header names) are not errors.
	"$ogen" -loglevel error -clean -config "$REPO/clients/go/ogen/ogen.yml" -package ogen -target "$out/go/ogen" "$DOC"
	if ! command -v node >/dev/null; then
		log "warning: no node here: the TypeScript client (clients/ts/schema.d.ts) is left as it is"
	else
		node=$(node_tools)
		"$node/node_modules/.bin/openapi-typescript" "$DOC" -o "$out/ts/schema.d.ts" >&2
	fi
	log "generated into $out"
}

lint() {
	local node report
	node=$(node_tools)
	# Redocly fails on errors only; a warning fails here too (the document is held at 0).
	report=$("$node/node_modules/.bin/redocly" lint --config "$REPO/tools/node/redocly.yaml" --max-problems 1000 "$DOC" 2>&1) ||
		die "Redocly finds errors in api/openapi.yaml:"$'\n'"$report"
	if grep -qE 'You have [0-9]+ warnings?' <<<"$report"; then
		die "Redocly warns about api/openapi.yaml (fix it, or state an exception in tools/node/redocly.yaml):"$'\n'"$report"
	fi
	log "Redocly lint of api/openapi.yaml: no error, no warning"
}

main() {
	local cmd=${1:-generate}
	case $cmd in
	generate) generate "${2:-$REPO/clients}" ;;
	lint) lint ;;
	node) node_tools ;;
	-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" ;;
	*) die "unknown command '$cmd' (try: generate [DIR], lint, node)" ;;
	esac
}

main "$@"
