"""A hand-written seeds-style peer: nats-py + json + base64, no natsbridge code at all.

It builds and reads envelopes exactly as the seeds' walkthrough describes (direct transport,
standard padded base64, payload_bytes in metadata)."""

import base64
import datetime
import json
import uuid


def serialize(data, payload_type):
    if payload_type == "text":
        return data.encode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.dumps(data).encode("utf-8")
    if payload_type in ("image", "audio", "video", "binary", "arrowtable"):
        return bytes(data)
    raise ValueError(payload_type)


def deserialize(raw, payload_type):
    if payload_type == "text":
        return raw.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(raw)
    return raw


def envelope(subject, payloads, broker_url="nats://localhost:4222"):
    items = []
    for dataname, data, payload_type in payloads:
        raw = serialize(data, payload_type)
        items.append({
            "id": str(uuid.uuid4()),
            "dataname": dataname,
            "payload_type": payload_type,
            "transport": "direct",
            "encoding": "base64",
            "size": len(raw),
            "data": base64.b64encode(raw).decode("ascii"),
            "metadata": {"payload_bytes": len(raw)},
        })
    return {
        "correlation_id": str(uuid.uuid4()),
        "msg_id": str(uuid.uuid4()),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "send_to": subject,
        "msg_purpose": "chat",
        "sender_name": "py-peer",
        "sender_id": str(uuid.uuid4()),
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": "",
        "reply_to_msg_id": "",
        "broker_url": broker_url,
        "metadata": {},
        "payloads": items,
    }


def receive(message_bytes):
    env = json.loads(message_bytes)
    out = []
    for p in env["payloads"]:
        assert p["transport"] == "direct", p["transport"]
        assert p["encoding"] == "base64", p["encoding"]
        raw = base64.b64decode(p["data"], validate=True)
        assert len(raw) == p["size"]
        out.append((p["dataname"], deserialize(raw, p["payload_type"]), p["payload_type"]))
    env["payloads"] = out
    return env
