#!/usr/bin/python3
"""A kafka-python consumer group member: KafkaConsumer(group_id=...), subscribe(), poll,
commit.

Driven by tests/integration (groups_clients_test.go). Run with /usr/bin/python3: the
`python3` on PATH may be a pyenv shim that cannot import Debian's python3-kafka.

usage: group_consumer_kafka_python.py BOOTSTRAP TOPIC GROUP CLIENT_ID OUT.jsonl STOP_FILE DEADLINE_S

The member subscribes to TOPIC in GROUP (auto_offset_reset=earliest, no auto commit)
and loops: poll a batch, commit synchronously (KafkaConsumer.commit(), which commits
the consumed positions), then append each record of the batch to OUT as a JSON line
{"c": CLIENT_ID, "p": partition, "o": offset, "k": base64 key or null,
"v": base64 value} and flush. So a record the Go test sees in OUT has been committed
(or its commit failed and is listed in the summary).

It stops when STOP_FILE exists (then closes the consumer: LeaveGroup) or after
DEADLINE_S seconds (exit status 1).
prints: {"consumed": N, "assignments": [[partitions...], ...], "commit_errors": [...]}
"""
import base64
import json
import os
import sys
import time

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError


class Listener(ConsumerRebalanceListener):
    def __init__(self):
        self.assignments = []

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        self.assignments.append(sorted(tp.partition for tp in assigned))


def line(client_id, m):
    return json.dumps({
        "c": client_id,
        "p": m.partition,
        "o": m.offset,
        "k": base64.b64encode(m.key).decode() if m.key is not None else None,
        "v": base64.b64encode(m.value or b"").decode(),
    }) + "\n"


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, group, client_id, out_path, stop_path, deadline_s = sys.argv[1:]
    deadline = time.monotonic() + float(deadline_s)
    commit_errors = []
    listener = Listener()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=2097152,
        # A loaded machine (several client processes starting at once on 2 cores) can
        # take seconds to get through the version probe: NoBrokersAvailable at 5 s.
        api_version_auto_timeout_ms=20000,
    )
    consumer.subscribe([topic], listener=listener)
    consumed = 0
    stopped = False
    with open(out_path, "a") as out:
        while time.monotonic() < deadline:
            if os.path.exists(stop_path):
                stopped = True
                break
            batch = []
            for _tp, msgs in consumer.poll(timeout_ms=100, max_records=500).items():
                batch.extend(msgs)
            if not batch:
                continue
            try:
                consumer.commit()
            except KafkaError as e:
                commit_errors.append(repr(e))
            out.write("".join(line(client_id, m) for m in batch))
            out.flush()
            consumed += len(batch)
    consumer.close(autocommit=False)
    print(json.dumps({"consumed": consumed, "assignments": listener.assignments,
                      "commit_errors": commit_errors}))
    return 0 if stopped else 1


if __name__ == "__main__":
    sys.exit(main())
