"""The benchmark's hand-written seeds-style peer: nats-py + json + base64, no natsbridge code.

Built the way the seeds describe (and as bindings-python/tests/peer.py does): uuid4 ids, a UTC
ISO 8601 timestamp, base64 of the serialized bytes, ``json.dumps``; decoding is ``json.loads``
+ base64 + a per-type deserialize. DataFrames travel as Arrow IPC stream bytes written and read
with pyarrow (``arrowtable``). It is written to be fast where a careful hand-written peer would
be (no base64 validation pass, the IPC buffer handed to base64 without a copy), so the ratios
are not flattered.
"""

import base64
import datetime
import json
import uuid

try:
    import pyarrow as pa
    import pyarrow.ipc  # noqa: F401
except ImportError:  # only arrowtable needs it
    pa = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serialize(data, payload_type):
    if payload_type == "text":
        return data.encode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.dumps(data).encode("utf-8")
    if payload_type == "arrowtable":
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return memoryview(sink.getvalue())
    if payload_type in ("image", "audio", "video", "binary"):
        return data
    raise ValueError(payload_type)


def deserialize(raw, payload_type):
    if payload_type == "text":
        return raw.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(raw)
    if payload_type == "arrowtable":
        return pa.ipc.open_stream(raw).read_all().to_pandas()
    return raw


def direct_payload(dataname, data, payload_type):
    raw = serialize(data, payload_type)
    size = len(raw) if not isinstance(raw, memoryview) else raw.nbytes
    return {
        "id": str(uuid.uuid4()),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": "direct",
        "encoding": "base64",
        "size": size,
        "data": base64.b64encode(raw).decode("ascii"),
        "metadata": {"payload_bytes": size},
    }


def link_payload(dataname, url, size, payload_type):
    return {
        "id": str(uuid.uuid4()),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": "link",
        "encoding": "none",
        "size": size,
        "data": url,
        "metadata": {"payload_bytes": size},
    }


def envelope(subject, items, *, broker_url="nats://localhost:4222", msg_purpose="chat", sender_id=None,
             correlation_id=None, reply_to="", reply_to_msg_id=""):
    """``items``: payload dicts from :func:`direct_payload` / :func:`link_payload`."""
    return {
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "msg_id": str(uuid.uuid4()),
        "timestamp": _now(),
        "send_to": subject,
        "msg_purpose": msg_purpose,
        "sender_name": "py-peer",
        "sender_id": sender_id or str(uuid.uuid4()),
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": reply_to,
        "reply_to_msg_id": reply_to_msg_id,
        "broker_url": broker_url,
        "metadata": {},
        "payloads": items,
    }


def encode(subject, payloads, **fields) -> bytes:
    """``[(dataname, data, payload_type)]`` to the bytes of one direct envelope."""
    items = [direct_payload(n, d, t) for n, d, t in payloads]
    return json.dumps(envelope(subject, items, **fields)).encode("utf-8")


def decode(message_bytes) -> dict:
    """An envelope's bytes to the envelope with ``payloads`` as ``(dataname, data, payload_type)``
    (direct payloads only; link payloads are left as their URL for the caller to fetch)."""
    env = json.loads(message_bytes)
    out = []
    for p in env["payloads"]:
        if p["transport"] == "link":
            out.append((p["dataname"], p["data"], p["payload_type"]))
            continue
        if p["encoding"] != "base64":
            raise ValueError(f"unexpected encoding {p['encoding']!r}")
        raw = base64.b64decode(p["data"])
        if len(raw) != p["size"]:
            raise ValueError(f"size mismatch: {len(raw)} != {p['size']}")
        out.append((p["dataname"], deserialize(raw, p["payload_type"]), p["payload_type"]))
    env["payloads"] = out
    return env
