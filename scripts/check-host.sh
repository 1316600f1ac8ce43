#!/usr/bin/env bash
# check-host.sh: grade this host for ringbroker before installing it.
#
# Runs `ringbrokerd check-host "$@"` (e.g. --json, --config FILE) and exits
# with its status: 0 all ok, 1 warnings, 2 fatal findings. 127 means no
# ringbrokerd could be found or built.
#
# The binary is, in order: $RINGBROKERD; ringbrokerd on PATH; bin/ringbrokerd
# of the repository this script lives in, built with
# `go build -o bin/ringbrokerd ./cmd/ringbrokerd` when it is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

find_binary() {
	if [[ -n "${RINGBROKERD:-}" ]]; then
		if [[ ! -x "$RINGBROKERD" ]]; then
			echo "check-host: RINGBROKERD=$RINGBROKERD is not an executable file" >&2
			return 1
		fi
		printf '%s\n' "$RINGBROKERD"
		return 0
	fi
	if command -v ringbrokerd >/dev/null 2>&1; then
		command -v ringbrokerd
		return 0
	fi
	if [[ -x "$repo/bin/ringbrokerd" ]]; then
		printf '%s\n' "$repo/bin/ringbrokerd"
		return 0
	fi
	# Inside a checkout: build it (the go.mod check keeps an installed copy
	# of this script in /usr/local/... from trying).
	if [[ -f "$repo/go.mod" && -d "$repo/cmd/ringbrokerd" ]] && command -v go >/dev/null 2>&1; then
		echo "check-host: building bin/ringbrokerd" >&2
		if (cd "$repo" && go build -o bin/ringbrokerd ./cmd/ringbrokerd) >&2; then
			printf '%s\n' "$repo/bin/ringbrokerd"
			return 0
		fi
		echo "check-host: go build failed" >&2
		return 1
	fi
	echo "check-host: no ringbrokerd: set RINGBROKERD, put it on PATH, or run from a checkout with Go installed" >&2
	return 1
}

bin="$(find_binary)" || exit 127
# exec: the checker's exit status (0/1/2) is this script's.
exec "$bin" check-host "$@"
