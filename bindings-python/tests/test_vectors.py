"""spec/vectors through the Python binding: every golden envelope decodes to its expected values,
every bad one fails with exactly its code (spec/PROTOCOL.md, "Golden vectors"), as
core/tests/vectors.rs checks the core and bindings-node/test/vectors.test.js the Node binding."""

import base64
import hashlib
import json

import pytest
from conftest import REPO

import natsbridge as nb

VECTORS = sorted((REPO / "spec/vectors").glob("*.json"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def message(doc) -> bytes:
    if "raw" in doc:
        return doc["raw"].encode()
    if "raw_base64" in doc:
        return base64.b64decode(doc["raw_base64"])
    return json.dumps(doc["envelope"], ensure_ascii=False).encode()


def check_value(want, payload_type, got):
    if payload_type in ("image", "audio", "video", "binary"):
        assert isinstance(got, bytes)
        if "base64" in want:
            assert base64.b64encode(got).decode() == want["base64"]
        else:
            assert {"size": len(got), "sha256": hashlib.sha256(got).hexdigest()} == want
    elif payload_type == "arrowtable":
        # The rows view is core's (checked in core/tests/vectors.rs); here the table's shape.
        assert [[f.name, str(f.type)] for f in got.schema] == want["schema"]
        assert got.num_rows == len(want["rows"])
    else:
        assert got == want


def test_there_are_golden_vectors():
    assert len(VECTORS) > 70


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path, nats_url):
    doc = load(path)
    expect = doc["expect"]
    if "error" in expect:
        with pytest.raises(nb.NATSBridgeError) as e:
            nb.smartreceive_sync(message(doc))
        assert e.value.code == expect["error"], e.value
        return
    links = [p for p in expect["payloads"] if p["transport"] == "link"]
    if links:
        # No vector's link exists anywhere. One no store serves is refused before any
        # connection is made (no broker is given, and none listens on the default); a nats-obj
        # link gets as far as the object store of a real connection.
        url = links[0]["value"]["url"]
        if url.startswith("nats-obj://"):
            with nb.connect_sync(nats_url) as nc, pytest.raises(nb.NATSBridgeError) as e:
                nc.smartreceive_sync(message(doc))
            assert e.value.code == "DOWNLOAD_FAILED", e.value
        else:
            with pytest.raises(nb.NATSBridgeError) as e:
                nb.smartreceive_sync(message(doc), broker_url="nats://127.0.0.1:1")
            assert e.value.code == "URL_NOT_ALLOWED", e.value
        return
    env = nb.smartreceive_sync(message(doc), arrow="pyarrow")
    assert env["correlation_id"] == (doc["envelope"].get("correlation_id") or "")
    assert len(env["payloads"]) == len(expect["payloads"])
    for (dataname, value, payload_type), transport, want in zip(env["payloads"], env["transports"],
                                                                expect["payloads"]):
        assert (dataname, payload_type, transport) == (want["dataname"], want["payload_type"], want["transport"])
        check_value(want["value"], payload_type, value)
    if "error_reply" in expect:
        assert env["error"] == doc["envelope"]["error"]
