#!/usr/bin/python3
"""Produce records with confluent-kafka-python (librdkafka) and read them back with a
group-less consumer (assign(), no commits).

Driven by tests/integration (TestConfluentKafkaPython). Run with /usr/bin/python3: the
`python3` on PATH may be a pyenv shim that cannot import Debian's python3-confluent-kafka.

usage: confluent_roundtrip.py BOOTSTRAP TOPIC PARTITIONS CODEC IN.jsonl OUT.jsonl
  produces IN's records (see records_io.py) idempotently with compression CODEC, then
  consumes partitions 0..PARTITIONS-1 from the beginning until it has as many records
  and writes them to OUT.
prints: {"produced": N, "consumed": M, "delivery_errors": [...]}
exit status: 0 when every record was delivered and read back; 1 otherwise.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

from records_io import read_records, write_consumed


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, partitions, codec, in_path, out_path = sys.argv[1:]
    partitions = int(partitions)
    records = read_records(in_path)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "ringbroker-it-confluent",
        "enable.idempotence": True,
        "compression.type": codec,
        "linger.ms": 5,
        "message.max.bytes": 2097152,
    })
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    for p, k, v in records:
        while True:
            try:
                producer.produce(topic, value=v, key=k, partition=p, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(30)
    if left:
        errors.append("%d records still undelivered after 30 s" % left)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "ringbroker-it-confluent",
        # librdkafka wants a group id for a consumer; nothing is committed (issue 5
        # brings groups): assign() and no auto commit or offset store.
        "group.id": "ringbroker-it-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    consumed = []
    deadline = time.monotonic() + 30
    while len(consumed) < len(records) and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                errors.append(str(msg.error()))
                continue
            consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    consumer.close()
    write_consumed(out_path, consumed)
    print(json.dumps({"produced": len(records), "consumed": len(consumed), "delivery_errors": errors}))
    return 0 if not errors and len(consumed) == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
