# Runs every message file in DIR (one golden vector each, as it arrives from NATS) through
# natsbridge.smartreceive and prints one JSON line per file: the decoded payloads and the
# re-serialized envelope, or the error code and the pipeline stage that raised it.
# Run: MICROPYPATH=bindings-micropython micropython vectors.py DIR
import binascii
import hashlib
import json
import os
import sys

import natsbridge as nb


def value_form(data):
    if isinstance(data, (bytes, bytearray)):
        out = {"size": len(data), "sha256": binascii.hexlify(hashlib.sha256(data).digest()).decode()}
        if len(data) <= 4096:
            out["base64"] = binascii.b2a_base64(data)[:-1].decode()
        return out
    return data


def stage_of(raw):
    """Which step of spec/PROTOCOL.md section 9.2 fails, by running the steps one by one."""
    try:
        env = nb.parse_envelope(raw)
    except nb.NATSBridgeError:
        return "parse"
    try:
        checked = [nb.check_payload(p) for p in env["payloads"]]
    except nb.NATSBridgeError:
        return "payload"
    if None in checked:
        return "link"
    for p, b in zip(env["payloads"], checked):
        try:
            nb.deserialize(p["payload_type"], b)
        except nb.NATSBridgeError:
            return "deserialize"
    return None


def run(path, name):
    with open(path, "rb") as f:
        raw = f.read()
    out = {"file": name}
    try:
        out["reserialized"] = str(nb.envelope_json(nb.parse_envelope(raw)), "utf-8")
    except nb.NATSBridgeError:
        pass
    try:
        env = nb.smartreceive(raw)
    except nb.NATSBridgeError as e:
        out["error"] = e.code
        out["message"] = e.message
        out["correlation_id"] = e.correlation_id
        out["stage"] = stage_of(raw)
        return out
    out["payloads"] = [{"dataname": n, "payload_type": t, "transport": tr, "value": value_form(d)}
                       for (n, d, t), tr in zip(env["payloads"], env["transports"])]
    reply = nb.error_reply(env)
    out["error_reply"] = None if reply is None else [reply.code, reply.correlation_id]
    return out


directory = sys.argv[1]
for name in sorted(os.listdir(directory)):
    print(json.dumps(run(directory + "/" + name, name)))
