#!/usr/bin/env bash
# Side-by-side benchmark: ringbrokerd (io_uring and portable backends), the
# null broker and any PEERS, with a machine probe; prints one table and
# writes results.json and PNG plots. Called by `make bench`.
#
#   scripts/bench.sh                      quick mode (< 3 minutes)
#   BENCH=full scripts/bench.sh           the full run recorded in docs/BENCHMARKS.md
#   PEERS=kafka=127.0.0.1:9092 scripts/bench.sh   add external brokers
#   BENCH_OUT=dir RINGBROKERD=path BENCH_SCENARIOS=p100-1p,e2e-20mb scripts/bench.sh
#   KAFKA_JAVA_BIN=/opt/kafka_2.13-3.9.0/bin scripts/bench.sh   add Kafka's Java producer
#       perf tool at 50,000 records/s against ringbrokerd and an in-memory kfake peer
#
# Extra arguments go to benchharness (see `go run ./bench/cmd/benchharness -h`).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
"$GO" build -o "$bin/benchharness" ./bench/cmd/benchharness
"$bin/benchharness" "$@" # not exec: the EXIT trap removes the binary

# TLS against PLAINTEXT on both backends (tests/integration
# TestTLSThroughput, build tag tlsbench): produce and catch-up over
# PLAINTEXT, SSL and SASL_SSL in one broker per backend, the ratios printed
# as a table. BENCH_TLS=0 skips it.
if [ "${BENCH_TLS:-1}" != 0 ]; then
	records=100000
	if [ "${BENCH:-}" = full ]; then
		records=300000
	fi
	echo
	echo "== TLS vs PLAINTEXT ($records records of 1000 bytes per run)"
	out="$bin/tlsbench.out"
	if RINGBROKER_TLSBENCH_RECORDS=$records "$GO" test -tags tlsbench -run '^TestTLSThroughput$' -count=1 -v -timeout 20m ./tests/integration >"$out" 2>&1; then
		sed -n '/TLS vs PLAINTEXT,/,/^---/p' "$out" | grep -v '^---' | sed 's/^ *//'
	else
		tail -n 80 "$out"
		exit 1
	fi
fi
