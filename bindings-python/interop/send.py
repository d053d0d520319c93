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
    with natsbridge.connect_sync(spec["server"]) as nc:  # drains (flushes) on exit
        nc.smartsend_sync(spec["subject"], payloads, size_threshold=spec["threshold"])


if __name__ == "__main__":
    main()
