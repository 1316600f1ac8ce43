#!/usr/bin/python3
"""Produce records with kafka-python to a topic that does not exist yet (kafka-python's
Metadata v1 request makes the broker auto-create it) and read them back with a
group-less consumer (group_id=None, assign()).

Driven by tests/integration (TestKafkaPythonRoundTrip). Run with /usr/bin/python3.

usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC PARTITIONS CODEC IN.jsonl OUT.jsonl
  CODEC is none, gzip, snappy, lz4 or zstd (as far as the Python modules for it exist).
prints: {"produced": N, "consumed": M, "partitions": [...], "errors": [...]}
exit status: 0 when every record was delivered and read back; 1 otherwise.
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from records_io import read_records, write_consumed


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, partitions, codec, in_path, out_path = sys.argv[1:]
    partitions = int(partitions)
    records = read_records(in_path)
    errors = []

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="ringbroker-it-kafka-python",
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        max_request_size=2097152,
        request_timeout_ms=10000,
        api_version_auto_timeout_ms=5000,
    )
    # partitions_for waits for metadata, which auto-creates the topic.
    found = producer.partitions_for(topic)
    futures = [producer.send(topic, value=v, key=k, partition=p) for p, k, v in records]
    producer.flush(30)
    for f in futures:
        try:
            f.get(timeout=1)
        except Exception as e:  # noqa: BLE001 - report every failure kind
            errors.append(repr(e))
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="ringbroker-it-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=2097152,
        api_version_auto_timeout_ms=5000,
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    consumed = []
    deadline = time.monotonic() + 30
    while len(consumed) < len(records) and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=1000).items():
            for m in msgs:
                consumed.append((tp.partition, m.offset, m.key, m.value))
    consumer.close()
    write_consumed(out_path, consumed)
    print(json.dumps({
        "produced": len(records),
        "consumed": len(consumed),
        "partitions": sorted(found or []),
        "errors": errors,
    }))
    return 0 if not errors and len(consumed) == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
