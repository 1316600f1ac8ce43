#!/usr/bin/python3
"""Describe the cluster through kafka-python's admin client and print it as JSON.

Driven by tests/integration (TestKafkaPythonDescribeCluster). Run with /usr/bin/python3:
the `python3` on PATH may be a pyenv shim that cannot import Debian's python3-kafka.

usage: describe_cluster.py BOOTSTRAP   (e.g. 127.0.0.1:9092)
prints: {"cluster_id": ..., "controller_id": ..., "brokers": [{"node_id": ..., "host": ..., "port": ...}]}
exit status: 0 on success; 1 with the error on stderr otherwise.
"""
import json
import sys

from kafka.admin import KafkaAdminClient


def main():
    if len(sys.argv) != 2:
        print("usage: describe_cluster.py BOOTSTRAP", file=sys.stderr)
        return 2
    admin = KafkaAdminClient(
        bootstrap_servers=sys.argv[1],
        client_id="ringbroker-it-kafka-python",
        request_timeout_ms=5000,
        api_version_auto_timeout_ms=5000,
    )
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    out = {
        "cluster_id": cluster.get("cluster_id"),
        "controller_id": cluster.get("controller_id"),
        "brokers": [
            {"node_id": b["node_id"], "host": b["host"], "port": b["port"]}
            for b in cluster.get("brokers", [])
        ],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
