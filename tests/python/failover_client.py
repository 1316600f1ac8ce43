#!/usr/bin/python3
"""Produce a paced, bounded stream of keyed records with acks=all while a consumer in
the same process reads the topic from the beginning, both across a partition
leader's SIGKILL that the Go test causes mid-stream: the process is never
restarted, so its producer and consumer must fail over on their own.

Driven by tests/integration (cluster_failover_clients_test.go). Run with
/usr/bin/python3.

usage: failover_client.py LIB BOOTSTRAP TOPIC PARTITIONS TOTAL RATE DEADLINE_S
  LIB is confluent (librdkafka, idempotent producer) or kafka-python (no idempotent
  producer in 2.0.2: acks=all with retries and one request in flight, at least once).
  Record seq (0 <= seq < TOTAL) has key "key-<seq>" and value "<LIB>-<seq>" (seq in
  five digits) and is handed to the producer no earlier than seq/RATE seconds after
  the start; the client's own key partitioner picks its partition.
prints one JSON object a line (times are wall-clock milliseconds):
  {"ack": [seq, partition, offset, t]}   a record acknowledged
  {"fail": [seq, "error"]}               a record given up on
  {"rec": [partition, offset, "value", t]} a record the consumer read
  {"done": {"acked": N, "failed": F, "consumed": C, "errors": [...], "warnings": [...]}}
  (warnings: errors the consumer reported and read on after, at most 20)
exit status: 0 when every record was acknowledged or failed and the consumer read up
to the last acknowledged offset of every partition within DEADLINE_S; 1 otherwise.
RINGBROKER_RDKAFKA_DEBUG, when set, is librdkafka's "debug" (confluent: its log goes
to stderr).
"""
import json
import os
import sys
import threading
import time

out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def now_ms():
    return int(time.time() * 1000)


class State:
    """What the producer and consumer reported, shared with kafka-python's sender
    thread (its callbacks run there)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = 0
        self.failed = 0
        self.max_acked = {}  # partition -> highest acknowledged offset
        self.max_read = {}  # partition -> highest offset read
        self.consumed = 0
        self.warnings = []

    def on_ack(self, seq, partition, offset):
        with self.lock:
            self.acked += 1
            self.max_acked[partition] = max(self.max_acked.get(partition, -1), offset)
        emit({"ack": [seq, partition, offset, now_ms()]})

    def on_fail(self, seq, err):
        with self.lock:
            self.failed += 1
        emit({"fail": [seq, str(err)]})

    def on_read(self, partition, offset, value):
        with self.lock:
            self.consumed += 1
            self.max_read[partition] = max(self.max_read.get(partition, -1), offset)
        emit({"rec": [partition, offset, value.decode("ascii", "replace") if value is not None else None, now_ms()]})

    def finished(self, total):
        with self.lock:
            if self.acked + self.failed < total:
                return False
            return all(self.max_read.get(p, -1) >= o for p, o in self.max_acked.items())


def run_confluent(bootstrap, topic, parts, total, rate, deadline, state, errors):
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

    def report(err, msg, seq):
        if err is not None:
            state.on_fail(seq, err)
        else:
            state.on_ack(seq, msg.partition(), msg.offset())

    debug = {"debug": os.environ["RINGBROKER_RDKAFKA_DEBUG"]} if os.environ.get("RINGBROKER_RDKAFKA_DEBUG") else {}
    producer = Producer(dict({
        "bootstrap.servers": bootstrap,
        "client.id": "ringbroker-it-failover-confluent",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 45000,
    }, **debug))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "ringbroker-it-failover-confluent",
        # librdkafka wants a group id; nothing is committed.
        "group.id": "ringbroker-it-failover-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
    start = time.monotonic()
    seq = 0
    while time.monotonic() < deadline:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while seq < due:
            s = seq
            producer.produce(topic, key=b"key-%05d" % s, value=b"confluent-%05d" % s,
                             on_delivery=lambda err, msg, s=s: report(err, msg, s))
            seq += 1
        producer.poll(0)
        for msg in consumer.consume(num_messages=500, timeout=0.02):
            if msg.error():
                # Reported, not fatal: what matters is that it reads on.
                state.warnings.append("consumer: %s" % msg.error())
                continue
            state.on_read(msg.partition(), msg.offset(), msg.value())
        if seq == total and state.finished(total):
            break
    left = producer.flush(max(0.0, deadline - time.monotonic()))
    if left:
        errors.append("%d records still queued at the deadline" % left)
    consumer.close()


def run_kafka_python(bootstrap, topic, parts, total, rate, deadline, state, errors):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="ringbroker-it-failover-kafka-python",
        acks="all",
        # No idempotence in kafka-python 2.0.2: retries with one request in flight
        # keep the order, a retried batch that had been written is a duplicate.
        retries=1000,
        retry_backoff_ms=100,
        max_in_flight_requests_per_connection=1,
        linger_ms=5,
        request_timeout_ms=10000,
        api_version_auto_timeout_ms=5000,
    )
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="ringbroker-it-failover-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        request_timeout_ms=10000,
        api_version_auto_timeout_ms=5000,
    )
    tps = [TopicPartition(topic, p) for p in range(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    start = time.monotonic()
    seq = 0
    while time.monotonic() < deadline:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while seq < due:
            s = seq
            fut = producer.send(topic, key=b"key-%05d" % s, value=b"kafka-python-%05d" % s)
            fut.add_callback(lambda md, s=s: state.on_ack(s, md.partition, md.offset))
            fut.add_errback(lambda exc, s=s: state.on_fail(s, exc))
            seq += 1
        for tp, msgs in consumer.poll(timeout_ms=20, max_records=500).items():
            for m in msgs:
                state.on_read(tp.partition, m.offset, m.value)
        if seq == total and state.finished(total):
            break
    producer.flush(timeout=max(0.0, deadline - time.monotonic()))
    producer.close(timeout=5)
    consumer.close()


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    lib, bootstrap, topic = sys.argv[1:4]
    parts, total, rate, deadline_s = (int(a) for a in sys.argv[4:8])
    deadline = time.monotonic() + deadline_s
    state = State()
    errors = []
    if lib == "confluent":
        run_confluent(bootstrap, topic, parts, total, rate, deadline, state, errors)
    elif lib == "kafka-python":
        run_kafka_python(bootstrap, topic, parts, total, rate, deadline, state, errors)
    else:
        print("unknown LIB %r" % lib, file=sys.stderr)
        return 2
    ok = state.finished(total)
    if not ok:
        errors.append("not finished within %d s: %d acked, %d failed of %d; last acked %r, last read %r" % (
            deadline_s, state.acked, state.failed, total, state.max_acked, state.max_read))
    emit({"done": {"acked": state.acked, "failed": state.failed, "consumed": state.consumed, "errors": errors,
                   "warnings": state.warnings[:20]}})
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
