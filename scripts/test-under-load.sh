#!/usr/bin/env bash
# test-under-load.sh CMD... — runs CMD (make unit integration, from
# `make test-under-load`) while LOAD_HOGS (default 2) busy loops compete for
# the CPUs, and prints the wall time and the result. Every hog is bounded by
# timeout(1) (LOAD_SECONDS, default 3600) and is killed by its PID when CMD
# ends, whether it passed or failed, or when this script is interrupted.
set -euo pipefail

hogs="${LOAD_HOGS:-2}"
bound="${LOAD_SECONDS:-3600}"
pids=()
stop_hogs() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true # timeout(1) passes the TERM on to its loop
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

for _ in $(seq "$hogs"); do
	timeout "$bound" sh -c 'while :; do :; done' &
	pids+=("$!")
done
echo "test-under-load: $hogs CPU hogs (pids ${pids[*]}, at most ${bound}s each) on $(nproc) CPUs: $*"

start=$(date +%s)
rc=0
"$@" || rc=$?
elapsed=$(($(date +%s) - start))
stop_hogs
if [ "$rc" -eq 0 ]; then
	echo "test-under-load: PASS in ${elapsed}s wall time with $hogs CPU hogs"
else
	echo "test-under-load: FAIL (exit $rc) after ${elapsed}s wall time with $hogs CPU hogs"
fi
exit "$rc"
