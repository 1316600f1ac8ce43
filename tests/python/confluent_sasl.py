#!/usr/bin/python3
"""Produce and consume over SASL_PLAINTEXT with confluent-kafka-python (librdkafka).

Driven by tests/integration (TestSASLClients). Run with /usr/bin/python3.

usage: confluent_sasl.py BOOTSTRAP TOPIC MECHANISM USER PASSWORD COUNT
  produces COUNT records (idempotent) to partition 0 of TOPIC, then reads partition 0
  from the beginning with a group-less consumer (assign()) until it has COUNT records.
prints: {"produced": N, "consumed": M, "errors": [...]}
exit status: 0 when every record was delivered and read back; 1 otherwise.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, mechanism, user, password, count = sys.argv[1:]
    count = int(count)
    security = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer(dict(security, **{"enable.idempotence": True, "error_cb": lambda e: errors.append(str(e))}))
    for i in range(count):
        p.produce(topic, value=("record-%d" % i).encode(), partition=0, on_delivery=delivered)
    left = p.flush(30)
    produced = count - left - len(errors)

    c = Consumer(dict(security, **{"group.id": "unused", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    consumed = 0
    deadline = time.time() + 30
    while consumed < count and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            errors.append(str(m.error()))
            break
        consumed += 1
    c.close()
    print(json.dumps({"produced": produced, "consumed": consumed, "errors": errors}))
    return 0 if produced == count and consumed == count and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
