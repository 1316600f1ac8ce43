#!/usr/bin/python3
"""Produce and consume over SSL with confluent-kafka-python or kafka-python.

Driven by tests/integration (TestTLSPythonClients). Run with /usr/bin/python3.

usage: ssl_clients.py CLIENT BOOTSTRAP TOPIC CAFILE CERTFILE KEYFILE COUNT
  CLIENT is confluent or kafka-python; CERTFILE and KEYFILE are "-" for no
  client certificate. Produces COUNT records to partition 0 of TOPIC, then
  reads partition 0 from the beginning (assign(), no group) until it has
  COUNT records.
prints: {"produced": N, "consumed": M, "errors": [...]}
exit status: 0 when every record was delivered and read back; 1 otherwise.
"""
import json
import sys
import time


def confluent(bootstrap, topic, cafile, certfile, keyfile, count, errors):
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
    security = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": cafile}
    if certfile != "-":
        security.update({"ssl.certificate.location": certfile, "ssl.key.location": keyfile})

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer(dict(security, **{"error_cb": lambda e: errors.append(str(e)), "linger.ms": 5}))
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
    return produced, consumed


def kafka_python(bootstrap, topic, cafile, certfile, keyfile, count, errors):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    security = {"bootstrap_servers": bootstrap, "security_protocol": "SSL", "ssl_cafile": cafile, "ssl_check_hostname": True}
    if certfile != "-":
        security.update({"ssl_certfile": certfile, "ssl_keyfile": keyfile})
    p = KafkaProducer(**security)
    futures = [p.send(topic, value=("record-%d" % i).encode(), partition=0) for i in range(count)]
    produced = 0
    for f in futures:
        try:
            f.get(timeout=30)
            produced += 1
        except Exception as e:  # noqa: BLE001 - report any client error
            errors.append(repr(e))
    p.close()
    c = KafkaConsumer(enable_auto_commit=False, **security)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    consumed = 0
    deadline = time.time() + 30
    while consumed < count and time.time() < deadline:
        for records in c.poll(timeout_ms=1000).values():
            consumed += len(records)
    c.close()
    return produced, consumed


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    client, bootstrap, topic, cafile, certfile, keyfile, count = sys.argv[1:]
    count = int(count)
    errors = []
    run = {"confluent": confluent, "kafka-python": kafka_python}[client]
    produced, consumed = run(bootstrap, topic, cafile, certfile, keyfile, count, errors)
    print(json.dumps({"produced": produced, "consumed": consumed, "errors": errors}))
    return 0 if produced == count and consumed == count and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
