#!/usr/bin/python3
"""Read partitions of a topic from the beginning up to given end offsets with a
group-less consumer (assign(), no commits), with confluent-kafka-python (librdkafka)
or kafka-python. For compacted topics: offsets have gaps, so the script stops on the
offset it reaches, not on a record count.

Driven by tests/integration (compaction_clients_test.go). Run with /usr/bin/python3.

usage: read_to_end.py LIB BOOTSTRAP TOPIC ENDS OUT.jsonl
  LIB is confluent or kafka-python; ENDS is "partition:end,..." (an end is the high
  watermark: the record at end-1 must exist; a partition whose end is 0 is skipped).
  Writes every record read to OUT (see records_io.py; a tombstone's value is null).
prints: {"consumed": N, "errors": [...]}
exit status: 0 when every partition reached its end within 60 s; 1 otherwise.
"""
import json
import sys
import time

from records_io import write_consumed

DEADLINE_S = 60


def parse_ends(arg):
    ends = {}
    for part in arg.split(","):
        p, end = part.split(":")
        if int(end) > 0:
            ends[int(p)] = int(end)
    return ends


def read_confluent(bootstrap, topic, ends, errors):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "ringbroker-it-confluent",
        # librdkafka wants a group id; nothing is committed.
        "group.id": "ringbroker-it-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    consumed = []
    last = {p: -1 for p in ends}
    deadline = time.monotonic() + DEADLINE_S
    while any(last[p] < ends[p] - 1 for p in ends) and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                errors.append(str(msg.error()))
                continue
            consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            last[msg.partition()] = max(last[msg.partition()], msg.offset())
    consumer.close()
    return consumed, last


def read_kafka_python(bootstrap, topic, ends, errors):
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="ringbroker-it-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        api_version_auto_timeout_ms=5000,
    )
    tps = [TopicPartition(topic, p) for p in ends]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    consumed = []
    last = {p: -1 for p in ends}
    deadline = time.monotonic() + DEADLINE_S
    while any(last[p] < ends[p] - 1 for p in ends) and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=1000).items():
            for m in msgs:
                consumed.append((tp.partition, m.offset, m.key, m.value))
                last[tp.partition] = max(last[tp.partition], m.offset)
    consumer.close()
    return consumed, last


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    lib, bootstrap, topic, ends_arg, out_path = sys.argv[1:]
    ends = parse_ends(ends_arg)
    errors = []
    if lib == "confluent":
        consumed, last = read_confluent(bootstrap, topic, ends, errors)
    elif lib == "kafka-python":
        consumed, last = read_kafka_python(bootstrap, topic, ends, errors)
    else:
        print("unknown LIB %r" % lib, file=sys.stderr)
        return 2
    write_consumed(out_path, consumed)
    short = {p: last[p] for p in ends if last[p] < ends[p] - 1}
    if short:
        errors.append("partitions short of their end offset (last offset read): %r" % short)
    print(json.dumps({"consumed": len(consumed), "errors": errors}))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
