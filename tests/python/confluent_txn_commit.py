"""Commit and abort confluent-kafka transactions, then read the topic
read_committed and print what was seen.

Driven by tests/integration (TestTransactionsClients): transaction 1
commits c1 c2, transaction 2 aborts a1, transaction 3 commits c3; a
read_committed consumer must see exactly c1 c2 c3.

usage: confluent_txn_commit.py BOOTSTRAP TRANSACTIONAL_ID TOPIC
prints: {"values": [values seen by the read_committed consumer]}
exit status: 0 when it printed; 1 on a client error (printed to stderr).
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer


def main():
    bootstrap, txid, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid})
    p.init_transactions(30)
    for values, commit in ((["c1", "c2"], True), (["a1"], False), (["c3"], True)):
        p.begin_transaction()
        for v in values:
            p.produce(topic, value=v.encode())
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-read-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    values = []
    deadline = time.monotonic() + 30
    # Read until the three committed values arrived, then one more second
    # for anything that should not be there.
    quiet_until = None
    while time.monotonic() < deadline:
        if quiet_until is None and len(values) >= 3:
            quiet_until = time.monotonic() + 1
        if quiet_until is not None and time.monotonic() > quiet_until:
            break
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        values.append(m.value().decode())
    c.close()
    print(json.dumps({"values": values}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
