"""Call confluent-kafka's init_transactions and print how it failed.

Driven by tests/integration (TestTransactionsFailFast): ringbroker has no
transaction coordinator yet and must make a transactional producer fail at
once with a non-retriable error.

usage: confluent_transaction.py BOOTSTRAP TRANSACTIONAL_ID
prints: {"ok": false, "code": error name, "fatal": bool, "retriable": bool, "message": text}
exit status: 0 when it printed a failure; 1 if init_transactions succeeded.
"""
import json
import sys

from confluent_kafka import KafkaException, Producer


def main():
    bootstrap, txid = sys.argv[1], sys.argv[2]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid})
    try:
        p.init_transactions(60)
    except KafkaException as e:
        err = e.args[0]
        print(json.dumps({"ok": False, "code": err.name(), "fatal": err.fatal(),
                          "retriable": err.retriable(), "message": err.str()}))
        return 0
    print(json.dumps({"ok": True}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
