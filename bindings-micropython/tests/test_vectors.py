"""spec/vectors under the real MicroPython: every vector decodes to its values (or fails with its
code at its stage) and re-serializes to its envelope, as core/tests/vectors.rs checks the core.

MicroPython is direct-only and has no Arrow (spec/PROTOCOL.md section 8.4), so where the core
would download a link it raises INVALID_TRANSPORT, and where it would read Arrow IPC it raises
INVALID_PAYLOAD_TYPE. Every other vector must give exactly the core's result."""

import base64
import json
import tempfile
from pathlib import Path

import pytest
from conftest import HERE, REPO, run_mpy

VECTORS = sorted((REPO / "spec/vectors").glob("*.json"))
# Each message as the core's test sends it (serde_json: compact, raw UTF-8), and as a seeds-era
# CPython sender writes it (json.dumps default: \u escapes, surrogate pairs for emoji).
VARIANTS = ("utf8", "ascii")


def wire(doc, variant):
    if "envelope" in doc:
        if variant == "utf8":
            return json.dumps(doc["envelope"], separators=(",", ":"), ensure_ascii=False).encode()
        return json.dumps(doc["envelope"]).encode()
    if "raw" in doc:
        return doc["raw"].encode()
    return base64.b64decode(doc["raw_base64"])


def micropython_expectation(doc):
    """(code, stage) MicroPython must fail with, or None when it decodes like the core."""
    expect = doc["expect"]
    if "error" in expect:
        # Any arrowtable it is given is refused before its bytes are looked at.
        if expect.get("stage") == "deserialize" and doc["envelope"]["payloads"][0]["payload_type"] == "arrowtable":
            return "INVALID_PAYLOAD_TYPE", "deserialize"
        return expect["error"], expect.get("stage")
    if any(p["transport"] == "link" for p in expect["payloads"]):
        return "INVALID_TRANSPORT", "link"
    if any(p["payload_type"] == "arrowtable" for p in expect["payloads"]):
        return "INVALID_PAYLOAD_TYPE", "deserialize"
    return None


@pytest.fixture(scope="module")
def results():
    with tempfile.TemporaryDirectory(prefix="natsbridge-mpy-vectors-") as d:
        for path in VECTORS:
            doc = json.loads(path.read_text(encoding="utf-8"))
            for variant in VARIANTS:
                (Path(d) / f"{path.stem}.{variant}").write_bytes(wire(doc, variant))
        proc = run_mpy((HERE / "mpy/vectors.py").read_text(), d, heapsize="16M", timeout=120)  # one vector is 500 KB
    out = {}
    for line in proc.stdout.split("\n")[:-1]:  # not splitlines(): it also splits at U+2028 and \x1c
        r = json.loads(line)
        out[r["file"]] = r
    return out


def test_every_vector_ran(results):
    assert len(VECTORS) >= 71
    assert len(results) == len(VECTORS) * len(VARIANTS)


def numbers_as_floats(v):
    """JSON numbers compare by value (MicroPython prints 2.0 where the vector has 2)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [numbers_as_floats(x) for x in v]
    return {k: numbers_as_floats(x) for k, x in v.items()}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(results, path, variant):
    doc = json.loads(path.read_text(encoding="utf-8"))
    r = results[f"{path.stem}.{variant}"]
    expect = doc["expect"]
    failure = micropython_expectation(doc)

    # Every ok vector parses, and re-serializes to the envelope or its canonical form.
    if "error" not in expect:
        assert "reserialized" in r, r
        want = expect.get("canonical", doc["envelope"])
        assert json.loads(r["reserialized"]) == want
        # The writer's field order is the seeds' (and the core's): compare the key sequence.
        assert list(json.loads(r["reserialized"])) == list(want)

    if failure is not None:
        assert (r.get("error"), r.get("stage")) == failure, r
        if r["stage"] != "parse":  # errors after parsing carry the message's correlation id
            assert r["correlation_id"] == doc["envelope"]["correlation_id"]
        return

    assert "error" not in r, r
    assert len(r["payloads"]) == len(expect["payloads"])
    for got, want in zip(r["payloads"], expect["payloads"]):
        for key in ("dataname", "payload_type", "transport"):
            assert got[key] == want[key]
        value = got["value"]
        if isinstance(value, dict) and "sha256" in value and "size" in value:
            value = {k: value[k] for k in want["value"]}  # the vector's form: base64, or sha256 and size
        assert numbers_as_floats(value) == numbers_as_floats(want["value"])
    want_reply = expect.get("error_reply")
    assert r["error_reply"] == (None if want_reply is None else [want_reply, doc["envelope"]["correlation_id"]])
