"""Shared record-file helpers for the produce/consume round-trip scripts.

The Go test (tests/integration/e2e_clients_test.go) writes the records to produce as
JSON lines {"p": partition, "k": base64 key or null, "v": base64 value}; a script
produces them in file order and writes what its consumer read back as JSON lines
{"p": partition, "o": offset, "k": base64 key or null, "v": base64 value}. The Go side
checks every record, so the scripts only move bytes and report.
"""
import base64
import json


def read_records(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            key = base64.b64decode(r["k"]) if r.get("k") is not None else None
            out.append((r["p"], key, base64.b64decode(r["v"])))
    return out


def write_consumed(path, records):
    """records: iterable of (partition, offset, key bytes or None, value bytes or
    None); a null value (a tombstone) is written as null."""
    with open(path, "w") as f:
        for p, o, k, v in records:
            f.write(json.dumps({
                "p": p,
                "o": o,
                "k": base64.b64encode(k).decode() if k is not None else None,
                "v": base64.b64encode(v).decode() if v is not None else None,
            }) + "\n")
