#!/usr/bin/python3
"""A confluent-kafka-python consumer group member: subscribe(), consume, commit.

Driven by tests/integration (groups_clients_test.go). Run with /usr/bin/python3: the
`python3` on PATH may be a pyenv shim that cannot import Debian's python3-confluent-kafka.

usage: group_consumer_confluent.py BOOTSTRAP TOPIC GROUP CLIENT_ID OUT.jsonl STOP_FILE DEADLINE_S

The member subscribes to TOPIC in GROUP (auto.offset.reset=earliest, no auto commit)
and loops: consume a batch, commit it synchronously (Consumer.commit(asynchronous=False),
which commits the positions of the current assignment), then append each record of the
batch to OUT as a JSON line {"c": CLIENT_ID, "p": partition, "o": offset,
"k": base64 key or null, "v": base64 value} and flush. So a record the Go test sees in
OUT has been committed (or its commit failed and is listed in the summary: after a
rebalance it may then be delivered again, which at-least-once allows).

It stops when STOP_FILE exists (then closes the consumer: LeaveGroup) or after
DEADLINE_S seconds (exit status 1).
prints: {"consumed": N, "assignments": [[partitions...], ...], "commit_errors": [...], "errors": [...]}
"""
import base64
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException


def line(client_id, msg):
    key = msg.key()
    return json.dumps({
        "c": client_id,
        "p": msg.partition(),
        "o": msg.offset(),
        "k": base64.b64encode(key).decode() if key is not None else None,
        "v": base64.b64encode(msg.value() or b"").decode(),
    }) + "\n"


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, group, client_id, out_path, stop_path, deadline_s = sys.argv[1:]
    deadline = time.monotonic() + float(deadline_s)
    assignments, commit_errors, errors = [], [], []

    def on_assign(_consumer, partitions):
        assignments.append(sorted(tp.partition for tp in partitions))

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
    })
    consumer.subscribe([topic], on_assign=on_assign)
    consumed = 0
    stopped = False
    with open(out_path, "a") as out:
        while time.monotonic() < deadline:
            if os.path.exists(stop_path):
                stopped = True
                break
            batch = []
            for msg in consumer.consume(num_messages=500, timeout=0.1):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        errors.append(str(msg.error()))
                    continue
                batch.append(msg)
            if not batch:
                continue
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                commit_errors.append(str(e))
            out.write("".join(line(client_id, m) for m in batch))
            out.flush()
            consumed += len(batch)
    consumer.close()
    print(json.dumps({"consumed": consumed, "assignments": assignments,
                      "commit_errors": commit_errors, "errors": errors}))
    return 0 if stopped and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
