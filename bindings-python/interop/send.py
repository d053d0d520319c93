"""tests-interop sender: one message per run from a send spec (tests-interop/README.md)."""

import json
import sys

import natsbridge


def value(p):
    t, given = p["payload_type"], p["input"]
    if t in ("image", "audio", "video", "binary"):
        with open(p["file"], "rb") as f:
            return f.read()
    if t == "arrowtable":
        import pyarrow as pa
        return pa.Table.from_pylist(given["rows"])
    return given


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    payloads = [(p["dataname"], value(p), p["payload_type"]) for p in spec["payloads"]]
    # JetStream mode: a durable publish, confirmed by the stream's PubAck.
    with natsbridge.connect_sync(spec["server"], jetstream=spec.get("jetstream", False)) as nc:  # drains on exit
        nc.smartsend_sync(spec["subject"], payloads, size_threshold=spec["threshold"])


if __name__ == "__main__":
    main()
