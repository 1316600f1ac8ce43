#!/usr/bin/env bash
# Run Apache Kafka's own perf tools ($KAFKA_HOME/bin) against ringbrokerd with
# the scenarios of `make bench`, creating each topic with kafka-topics.sh and
# the scenario's configs first.
#
#   KAFKA_HOME=/opt/kafka scripts/perf-test.sh [BOOTSTRAP]
#
# BOOTSTRAP defaults to 127.0.0.1:9092 (start the broker with `make run`).
# BENCH=full uses the full record counts; BENCH=tiny a few seconds' worth.
# PERF_TIMEOUT_MS is the consumer tool's --timeout (default 10000).
# Output is the tools' own, so it can be compared line for line with
# `ringbench produce` / `ringbench consume`.
set -euo pipefail

if [[ -z "${KAFKA_HOME:-}" || ! -x "${KAFKA_HOME}/bin/kafka-producer-perf-test.sh" ]]; then
	echo "perf-test.sh: set KAFKA_HOME to an Apache Kafka install (bin/kafka-producer-perf-test.sh)" >&2
	exit 2
fi
bs=${1:-127.0.0.1:9092}
bin="$KAFKA_HOME/bin"
stamp=$(date +%s)

case "${BENCH:-quick}" in
tiny)  small=20000;    large=200;    catchup_mib=4;    e2e_sec=1 ;;
quick) small=3000000;  large=16000;  catchup_mib=256;  e2e_sec=5 ;;
full)  small=20000000; large=100000; catchup_mib=1024; e2e_sec=30 ;;
*) echo "perf-test.sh: BENCH must be tiny, quick or full" >&2; exit 2 ;;
esac

topic() { # name partitions [config ...]
	local name=$1 parts=$2; shift 2
	local cfg=()
	for c in "$@"; do cfg+=(--config "$c"); done
	"$bin/kafka-topics.sh" --bootstrap-server "$bs" --create --if-not-exists \
		--topic "$name" --partitions "$parts" --replication-factor 1 "${cfg[@]}"
}

section() { printf '\n== %s\n' "$*"; }

section "1a: 100 B records, acks=all idempotent, 1 partition, unlimited"
topic "perf-p100-1p-$stamp" 1
"$bin/kafka-producer-perf-test.sh" --topic "perf-p100-1p-$stamp" --num-records "$small" \
	--record-size 100 --throughput -1 \
	--producer-props bootstrap.servers="$bs" acks=all enable.idempotence=true

section "1b: 100 B records, acks=all idempotent, 8 partitions, unlimited"
topic "perf-p100-8p-$stamp" 8
"$bin/kafka-producer-perf-test.sh" --topic "perf-p100-8p-$stamp" --num-records "$small" \
	--record-size 100 --throughput -1 \
	--producer-props bootstrap.servers="$bs" acks=all enable.idempotence=true

section "2: AutoMQ write path: 64 KiB records, batch.size=1 MiB, linger.ms=1, flush.messages=1"
topic "perf-automq-64k-$stamp" 1 flush.messages=1
"$bin/kafka-producer-perf-test.sh" --topic "perf-automq-64k-$stamp" --num-records "$large" \
	--record-size 65536 --throughput -1 \
	--producer-props bootstrap.servers="$bs" batch.size=1048576 linger.ms=1

section "3: consumer catch-up of ${catchup_mib} MiB (16 KiB records) from page cache"
n=$((catchup_mib * 64))
topic "perf-catchup-$stamp" 1
"$bin/kafka-producer-perf-test.sh" --topic "perf-catchup-$stamp" --num-records "$n" \
	--record-size 16384 --throughput -1 \
	--producer-props bootstrap.servers="$bs" acks=1 batch.size=1048576 linger.ms=5
# The Kafka tool always consumes in a group: a broker without a group
# coordinator times out here (ringbench consume --no-group measures it).
"$bin/kafka-consumer-perf-test.sh" --bootstrap-server "$bs" --topic "perf-catchup-$stamp" \
	--messages "$n" --fetch-size 4194304 --timeout "${PERF_TIMEOUT_MS:-10000}" || true

section "4: end-to-end latency at 20 MiB/s (1 KiB records, acks=all)"
# Kafka's EndToEndLatency tool sends one record at a time (no fixed rate);
# the fixed-rate run is `ringbench e2e`. Here: the producer side at 20 MiB/s.
topic "perf-e2e-$stamp" 1
"$bin/kafka-producer-perf-test.sh" --topic "perf-e2e-$stamp" --num-records $((20480 * e2e_sec)) \
	--record-size 1024 --throughput 20480 \
	--producer-props bootstrap.servers="$bs" acks=all linger.ms=0
# One-at-a-time round trips with Kafka's EndToEndLatency (positional
# arguments: org.apache.kafka.tools since Kafka 3.5, kafka.tools before).
"$bin/kafka-run-class.sh" org.apache.kafka.tools.EndToEndLatency "$bs" "perf-e2e-$stamp" 10000 all 1024 2>/dev/null ||
	"$bin/kafka-run-class.sh" kafka.tools.EndToEndLatency "$bs" "perf-e2e-$stamp" 10000 all 1024 ||
	echo "(EndToEndLatency tool not available in this Kafka install)"
