#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs from spec/vectors into fuzz/seeds/<target>/ (not committed:
scripts/fuzz.sh runs this before every run, so the seeds follow the vectors).

    python3 fuzz/seed_corpus.py

envelope: every vector's message bytes (compact and pretty); payload_json, payload_jsontable,
payload_arrow: the decoded bytes of each direct payload of that type; payload_envelope: every
direct payload as that target's input; url_scope: each link URL with scopes that do and do not
serve it; trace_headers: spec/PROTOCOL.md §13's header examples, whole and in parts. c_abi reads structured input (`arbitrary`) and starts from nothing; its calls build
their own envelopes.
"""

import base64
import hashlib
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "spec" / "vectors"
OUT = FUZZ / "seeds"
# PayloadType::ALL's order in core (payload_envelope's first byte indexes it).
PAYLOAD_TYPES = ["text", "dictionary", "arrowtable", "jsontable", "image", "audio", "video", "binary"]
SCOPES = ["http://localhost:8080/file", "nats-obj:", "https://Files.example:8443/store/", "mem:", "http://localhost:8080/upload"]

seeds = {name: set() for name in
         ["envelope", "payload_json", "payload_jsontable", "payload_arrow", "payload_envelope", "url_scope",
          "trace_headers"]}

# trace_headers' layout: a byte of link bits (payloads 0 and 2 here), then traceparent, tracestate,
# baggage and natsbridge-upload-spans, separated by 0 bytes.
TRACE_HEADERS = [b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                 b"userId=alice,serverNode=DF%2028;isProduction=false", b"0:53995c3f42cd8ad8,2:00f067aa0ba902b7"]
for parts in range(1, len(TRACE_HEADERS) + 1):
    seeds["trace_headers"].add(bytes([0b101]) + b"\0".join(TRACE_HEADERS[:parts]))


def wire(doc):
    """The message bytes as they arrive (core/tests/vectors.rs reads them the same way)."""
    if "envelope" in doc:
        env = doc["envelope"]
        return [json.dumps(env, separators=(",", ":")).encode(), json.dumps(env, indent=2).encode()]
    if "raw" in doc:
        return [doc["raw"].encode()]
    if "raw_base64" in doc:
        return [base64.b64decode(doc["raw_base64"] + "=" * (-len(doc["raw_base64"]) % 4))]
    return []


def direct_bytes(payload):
    """A direct payload's serialized bytes, or None when its data is not decodable here."""
    data, encoding = payload.get("data"), payload.get("encoding") or "base64"
    if encoding == "json":
        return json.dumps(data, separators=(",", ":")).encode()
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except ValueError:
        return None


for path in sorted(VECTORS.glob("*.json")):
    doc = json.loads(path.read_text())
    for message in wire(doc):
        seeds["envelope"].add(message)
    envelope = doc.get("envelope")
    payloads = envelope.get("payloads") if isinstance(envelope, dict) else None
    for p in payloads if isinstance(payloads, list) else []:
        if not isinstance(p, dict):
            continue
        if p.get("transport") == "link" and isinstance(p.get("data"), str):
            for scope in SCOPES:
                seeds["url_scope"].add(b"\0".join([scope.encode(), p["data"].encode(), b"x.bin"]))
            continue
        raw = direct_bytes(p)
        if raw is None or len(raw) > 64 * 1024 or p.get("payload_type") not in PAYLOAD_TYPES:
            continue
        kind = {"dictionary": "payload_json", "jsontable": "payload_jsontable", "arrowtable": "payload_arrow"}
        if p["payload_type"] in kind:
            seeds[kind[p["payload_type"]]].add(raw)
        header = str(envelope.get("sender_name") or "").encode()
        seeds["payload_envelope"].add(bytes([PAYLOAD_TYPES.index(p["payload_type"]), 0]) + header + b"\0" + raw)

for name, inputs in seeds.items():
    directory = OUT / name
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for data in inputs:
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{name}: {len(inputs)} seeds")
