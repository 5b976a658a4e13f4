#!/usr/bin/env bash
# Installs the Debian packages a make target needs besides the servers (scripts/services.sh
# installs those), each only when its command is missing, so that the README's commands hold
# on a machine that has never seen the project:
#
#   scripts/packages.sh test   chromium (the dashboard's browser tests, e2e/dashboard_browser_test.go)
#   scripts/packages.sh lint   shellcheck, docker-compose (parses the compose files; no engine needed)
#   scripts/packages.sh dev    curl (make dev waits for the API with it)
#
# Needs root or passwordless sudo only when something is missing; apt-get's output goes to
# .state/logs/apt.log. A dpkg lock held by another apt-get is waited for, not failed on.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG=$REPO/.state/logs/apt.log

say() { echo "packages: $*"; }
die() {
	echo "packages: error: $*" >&2
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

# needs TARGET: "command:package" pairs the target needs.
needs() {
	case $1 in
	test) echo "chromium:chromium" ;;
	lint) echo "shellcheck:shellcheck docker-compose:docker-compose" ;;
	dev) echo "curl:curl" ;;
	*) die "unknown target '$1' (test, lint, dev)" ;;
	esac
}

[[ $# -ge 1 ]] || die "usage: scripts/packages.sh test|lint|dev ..."
missing=()
for target in "$@"; do
	for pair in $(needs "$target"); do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
done
((${#missing[@]})) || exit 0

command -v apt-get >/dev/null || die "missing: ${missing[*]}; there is no apt-get here: install them yourself"
mkdir -p "$(dirname "$LOG")"
say "installing ${missing[*]} with apt-get (about a minute for chromium; log $LOG)"
as_root apt-get -o DPkg::Lock::Timeout=600 update >>"$LOG" 2>&1 ||
	{ tail -n 15 "$LOG" >&2; die "apt-get update failed (log $LOG)"; }
as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 ||
	{ tail -n 15 "$LOG" >&2; die "apt-get install ${missing[*]} failed (log $LOG)"; }
for pkg in "${missing[@]}"; do
	say "$pkg: installed"
done
