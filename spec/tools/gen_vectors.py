#!/usr/bin/env python3
"""Writes spec/vectors/*.json, the golden envelopes of wire protocol v1 (spec/PROTOCOL.md §11).

Run once by hand when a vector is added or changed; the vectors are committed files and no test
regenerates them. Needs pyarrow (the Arrow IPC payloads are made by pyarrow on purpose: they are
the cross-language evidence that the Rust core reads what Python writes).

    .venv/bin/pip install pyarrow
    .venv/bin/python spec/tools/gen_vectors.py

Everything is deterministic: fixed ids, fixed timestamp, fixed bytes. The expected Arrow rows are
written here by hand from the mapping in PROTOCOL.md §10, not computed by the code under test.
"""

import base64
import datetime as dt
import hashlib
import json
import pathlib
import uuid

import pyarrow as pa

OUT = pathlib.Path(__file__).resolve().parents[1] / "vectors"
TS = "2026-03-13T07:02:50.443Z"
THRESHOLD = 500_000
UTC = dt.timezone.utc

ENVELOPE_FIELDS = [
    "correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
    "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata", "payloads",
]
PAYLOAD_FIELDS = ["id", "dataname", "payload_type", "transport", "encoding", "size", "data", "metadata"]

written = []


def uid(seed: str) -> str:
    """A fixed UUID v4 (version and variant bits set) derived from `seed`."""
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def envelope(name, payloads, **fields):
    env = {
        "correlation_id": uid(name + "/correlation_id"),
        "msg_id": uid(name + "/msg_id"),
        "timestamp": TS,
        "send_to": "natsbridge.vectors." + name.replace("-", "_"),
        "msg_purpose": "chat",
        "sender_name": "vector-generator",
        "sender_id": uid("sender"),
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": "",
        "reply_to_msg_id": "",
        "broker_url": "nats://localhost:4222",
        "metadata": {},
        "payloads": payloads,
    }
    env.update(fields)
    return env


def direct(dataname, payload_type, raw: bytes, with_sha256=True, extra_metadata=None, seed=""):
    metadata = {"payload_bytes": len(raw)}
    if with_sha256:
        metadata["sha256"] = sha(raw)
    metadata.update(extra_metadata or {})
    return {
        "id": uid(f"payload/{seed}/{dataname}"),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": "direct",
        "encoding": "base64",
        "size": len(raw),
        "data": b64(raw),
        "metadata": metadata,
    }


def link(dataname, payload_type, raw: bytes, url, seed=""):
    return {
        "id": uid(f"payload/{seed}/{dataname}"),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": "link",
        "encoding": "none",
        "size": len(raw),
        "data": url,
        "metadata": {"payload_bytes": len(raw), "sha256": sha(raw)},
    }


def expect_value(payload_type, raw: bytes, transport="direct", url=None, big=False):
    if transport == "link":
        return {"url": url, "size": len(raw), "sha256": sha(raw)}
    if payload_type == "text":
        return raw.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(raw)
    if big:
        return {"sha256": sha(raw), "size": len(raw)}
    return {"base64": b64(raw)}


def item(payload, value):
    return {
        "dataname": payload["dataname"],
        "payload_type": payload["payload_type"],
        "transport": payload["transport"],
        "value": value,
    }


def write(name, description, env=None, expect=None, as_sent=None, raw=None, raw_base64=None, canonical=None):
    doc = {"description": description}
    if env is not None:
        doc["envelope"] = env
    if raw is not None:
        doc["raw"] = raw
    if raw_base64 is not None:
        doc["raw_base64"] = raw_base64
    if as_sent is not None:
        doc["as_sent"] = as_sent
    if canonical is not None:
        expect = dict(expect, canonical=canonical)
    doc["expect"] = expect
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path.name)


def ok(name, description, payload_specs, as_sent=True, threshold=None, canonical=None, **fields):
    """payload_specs: list of (wire payload, expected value)."""
    env = envelope(name, [p for p, _ in payload_specs], **fields)
    expect = {"payloads": [item(p, v) for p, v in payload_specs]}
    if threshold is not None:
        expect["threshold"] = threshold
    write(name, description, env, expect, as_sent=as_sent, canonical=canonical)
    return env


def bad(name, description, code, stage, env=None, raw=None, raw_base64=None):
    write(name, description, env, {"error": code, "stage": stage}, raw=raw, raw_base64=raw_base64)


def canonical_of(env):
    """What a receiver re-serializes (Envelope::to_json) for a leniently written envelope:
    null or missing strings read as "", null or missing metadata as {}, unknown fields dropped."""
    out = {}
    for k in ENVELOPE_FIELDS:
        v = env.get(k)
        if k == "metadata":
            out[k] = v if isinstance(v, dict) else {}
        elif k == "payloads":
            out[k] = [canonical_payload(p) for p in (v or [])]
        else:
            out[k] = "" if v is None else v
    if env.get("error") is not None:
        e = env["error"]
        out["error"] = {"code": e["code"], "message": e["message"], "details": e.get("details")}
    return out


def canonical_payload(p):
    out = {}
    for k in PAYLOAD_FIELDS:
        v = p.get(k)
        if k == "metadata":
            out[k] = v if isinstance(v, dict) else {}
        elif k in ("id", "encoding"):
            out[k] = "" if v is None else v
        else:
            out[k] = v
    return out


def ipc_stream(table: pa.Table, max_chunksize=None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max_chunksize)
    return sink.getvalue().to_pybytes()


def ipc_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def arrow_value(table: pa.Table, rows):
    assert table.num_rows == len(rows)
    return {"rows": rows, "schema": [[f.name, str(f.type)] for f in table.schema]}


def ms(*args):
    return dt.datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Tables (pyarrow). Expected rows follow PROTOCOL.md §10 (the JSON-rows view).

BASIC = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "score": pa.array([0.5, -1.25, 1e-3], pa.float64()),
    "name": pa.array(["alice", None, "Zoë ✓"], pa.string()),
    "ok": pa.array([True, None, False], pa.bool_()),
    "at": pa.array([ms(2026, 3, 13, 7, 2, 50, 443000), None, ms(1970, 1, 1)], pa.timestamp("ms", tz="UTC")),
})
BASIC_ROWS = [
    {"id": 1, "score": 0.5, "name": "alice", "ok": True, "at": "2026-03-13T07:02:50.443Z"},
    {"id": 2, "score": -1.25, "name": None, "ok": None, "at": None},
    {"id": 3, "score": 0.001, "name": "Zoë ✓", "ok": False, "at": "1970-01-01T00:00:00Z"},
]

NULLS = pa.table({
    "a": pa.array([None, None, None], pa.int64()),
    "b": pa.array([None, "x", None], pa.string()),
    "c": pa.array([None, None, None], pa.null()),
    "d": pa.array([None, 2.0, None], pa.float64()),
    "e": pa.array([None, None, True], pa.bool_()),
    "f": pa.array([None, None, None], pa.timestamp("ms", tz="UTC")),
})
NULLS_ROWS = [
    {"a": None, "b": None, "c": None, "d": None, "e": None, "f": None},
    {"a": None, "b": "x", "c": None, "d": 2.0, "e": None, "f": None},
    {"a": None, "b": None, "c": None, "d": None, "e": True, "f": None},
]

EMPTY = pa.table({
    "id": pa.array([], pa.int64()),
    "name": pa.array([], pa.string()),
    "at": pa.array([], pa.timestamp("ms", tz="UTC")),
})

SAFE = 2**53 - 1
MAPPING = pa.table({
    "i64": pa.array([SAFE, None, 2**53, -(2**63)], pa.int64()),
    "i64_neg": pa.array([-SAFE, -(2**53) - 1, 0, None], pa.int64()),
    "u64": pa.array([0, 2**64 - 1, None, SAFE], pa.uint64()),
    "f64": pa.array([1.5, float("nan"), float("inf"), float("-inf")], pa.float64()),
    "s": pa.array(["plain", None, "", "日本 🎉"], pa.string()),
    "ls": pa.array(["large", None, "x", ""], pa.large_string()),
    "dict": pa.array(["p", "q", None, "p"], pa.string()).dictionary_encode(),
    "ts_utc_ms": pa.array([ms(2026, 3, 13, 7, 2, 50, 443000), None, ms(1969, 12, 31, 23, 59, 59, 999000),
                           ms(2026, 3, 13, 7, 2, 50)], pa.timestamp("ms", tz="UTC")),
    "ts_naive_us": pa.array([dt.datetime(2026, 3, 13, 7, 2, 50, 443123), None, dt.datetime(2026, 3, 13, 7, 2, 50),
                             dt.datetime(1969, 12, 31, 23, 59, 59, 500000)], pa.timestamp("us")),
    "ts_tokyo_ns": pa.array([1773385370443123456, None, 0, 1773385370000000000], pa.timestamp("ns", tz="Asia/Tokyo")),
    "ts_offset_s": pa.array([1773385370, None, 0, -1], pa.timestamp("s", tz="+01:00")),
    "d32": pa.array([dt.date(2026, 3, 13), None, dt.date(1970, 1, 1), dt.date(1900, 1, 1)], pa.date32()),
    "d64": pa.array([dt.date(2026, 3, 13), None, dt.date(1970, 1, 1), None], pa.date64()),
    "lst": pa.array([[1, 2], None, [], [None, 2**60]], pa.list_(pa.int64())),
    "lst_ts": pa.array([[ms(2026, 3, 13, 7, 2, 50, 443000)], [], None, [None]], pa.list_(pa.timestamp("ms", tz="UTC"))),
    "st": pa.array([{"x": 1, "at": ms(2026, 3, 13, 7, 2, 50, 443000)}, None, {"x": None, "at": None},
                    {"x": 2**60, "at": ms(1970, 1, 1)}],
                   pa.struct([("x", pa.int64()), ("at", pa.timestamp("ms", tz="UTC"))])),
})
MAPPING_ROWS = [
    {"i64": SAFE, "i64_neg": -SAFE, "u64": 0, "f64": 1.5, "s": "plain", "ls": "large", "dict": "p",
     "ts_utc_ms": "2026-03-13T07:02:50.443Z", "ts_naive_us": "2026-03-13T07:02:50.443123",
     "ts_tokyo_ns": "2026-03-13T07:02:50.443123456Z", "ts_offset_s": "2026-03-13T07:02:50Z",
     "d32": "2026-03-13", "d64": "2026-03-13T00:00:00", "lst": [1, 2], "lst_ts": ["2026-03-13T07:02:50.443Z"],
     "st": {"x": 1, "at": "2026-03-13T07:02:50.443Z"}},
    {"i64": None, "i64_neg": str(-(2**53) - 1), "u64": str(2**64 - 1), "f64": None, "s": None, "ls": None,
     "dict": "q", "ts_utc_ms": None, "ts_naive_us": None, "ts_tokyo_ns": None, "ts_offset_s": None,
     "d32": None, "d64": None, "lst": None, "lst_ts": [], "st": None},
    {"i64": str(2**53), "i64_neg": 0, "u64": None, "f64": None, "s": "", "ls": "x", "dict": None,
     "ts_utc_ms": "1969-12-31T23:59:59.999Z", "ts_naive_us": "2026-03-13T07:02:50",
     "ts_tokyo_ns": "1970-01-01T00:00:00Z", "ts_offset_s": "1970-01-01T00:00:00Z",
     "d32": "1970-01-01", "d64": "1970-01-01T00:00:00", "lst": [], "lst_ts": None, "st": {"x": None, "at": None}},
    {"i64": str(-(2**63)), "i64_neg": None, "u64": SAFE, "f64": None, "s": "日本 🎉", "ls": "", "dict": "p",
     "ts_utc_ms": "2026-03-13T07:02:50Z", "ts_naive_us": "1969-12-31T23:59:59.500",
     "ts_tokyo_ns": "2026-03-13T07:02:50Z", "ts_offset_s": "1969-12-31T23:59:59Z",
     "d32": "1900-01-01", "d64": None, "lst": [None, str(2**60)], "lst_ts": [None],
     "st": {"x": str(2**60), "at": "1970-01-01T00:00:00Z"}},
]

SMALL = pa.table({"k": pa.array(["a", "b"], pa.string()), "v": pa.array([1, None], pa.int64())})
SMALL_ROWS = [{"k": "a", "v": 1}, {"k": "b", "v": None}]

# ---------------------------------------------------------------------------------------------
# Fixed media bytes.

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WAV = (b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
       + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
       + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
       + b"data" + (8).to_bytes(4, "little") + bytes([0, 0, 0xFF, 0x7F, 0x00, 0x80, 0, 0]))
MP4_FTYP = (32).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isomiso2avc1mp41"
ALL_BYTES = bytes(range(256))


def pattern(n: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(n))


PLIK = "http://localhost:8080"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()

    # --- every payload type, direct ---------------------------------------------------------
    hello = b"Hello World"
    p = direct("msg", "text", hello, with_sha256=False, seed="walkthrough")
    ok("direct-text-walkthrough",
       "The walkthrough's example: text 'Hello World', 11 bytes, direct, no sha256 (optional for direct).",
       [(p, "Hello World")], send_to="/chat/user/v1/message", sender_name="sender-app",
       receiver_name="receiver-app", receiver_id=uid("receiver"), reply_to="reply.subject",
       reply_to_msg_id=uid("previous-message"))

    p = direct("empty", "text", b"", seed="empty")
    ok("direct-text-empty", "Empty text: size 0, data \"\" (base64 of no bytes), sha256 of the empty string.",
       [(p, "")])

    uni = "héllo wörld — ✓ 日本語 한국어 العربية 🎉👩‍👩‍👧 e\u0301 \"quoted\" back\\slash\nnew line\ttab".encode()
    p = direct("unicode", "text", uni, seed="unicode")
    ok("direct-text-unicode",
       "Text with 2-, 3- and 4-byte UTF-8 sequences, a ZWJ emoji sequence, a combining accent, "
       "right-to-left script, quotes, backslash, newline and tab. size counts UTF-8 bytes, not characters.",
       [(p, uni.decode())])

    ctl = "nul:\u0000 unit-sep:\u001f del:\u007f line-sep:\u2028 para-sep:\u2029 bom:\ufeff end".encode()
    p = direct("control", "text", ctl, seed="control")
    ok("direct-text-control-chars",
       "Text containing U+0000, other control characters, U+2028/U+2029 and a BOM in the middle: "
       "all are ordinary text and must survive (C bindings must use lengths, not NUL termination).",
       [(p, ctl.decode())])

    d = b'{"key":"value"}'
    p = direct("dict", "dictionary", d, seed="dict")
    ok("direct-dictionary", "The walkthrough's dictionary {\"key\":\"value\"}, 15 bytes of compact JSON.",
       [(p, json.loads(d))])

    nested = ('{"caf\\u00e9":"café","emoji":"\\ud83c\\udf89 🎉","n":{"a":[1,-2.5,1e-7,null,true,false,'
              '{"b":{"c":{"d":[[],{}]}}}],"big":9007199254740991},"empty_obj":{},"empty_list":[],'
              '"s":"line\\nbreak \\"q\\" \\\\"}').encode()
    p = direct("nested", "dictionary", nested, seed="nested")
    ok("direct-dictionary-nested",
       "Nested dictionary: deep nesting, empty object and list, numbers (negative, fraction, exponent, "
       "2^53-1), booleans, null, and strings mixing \\u escapes (incl. a surrogate pair) with raw UTF-8.",
       [(p, json.loads(nested))])

    lst = b'[1,"two",{"three":3},null,[4.5]]'
    p = direct("list", "dictionary", lst, seed="list")
    ok("direct-dictionary-list",
       "A dictionary payload whose JSON value is a list: any JSON value is a valid dictionary payload.",
       [(p, json.loads(lst))])

    pretty = b'{\n  "spaced" : [ 1 , 2 ] ,\n  "k" : "v"\n}\n'
    p = direct("pretty", "dictionary", pretty, seed="pretty")
    ok("direct-dictionary-whitespace",
       "Dictionary JSON text with insignificant whitespace (as Python's json.dumps default or an "
       "indenting sender writes): receivers parse any valid JSON text; size counts the bytes as sent.",
       [(p, json.loads(pretty))])

    rows = b'[{"id":1,"name":"a","score":0.5},{"id":2,"name":null,"score":null},{"id":3,"extra":true}]'
    p = direct("rows", "jsontable", rows, seed="rows")
    ok("direct-jsontable-nulls",
       "jsontable (JSON array of row objects) with null cells and rows that do not share all keys "
       "(the JSON value is kept as it is; no column filling).",
       [(p, json.loads(rows))])

    p = direct("rows", "jsontable", b"[]", seed="rows-empty")
    ok("direct-jsontable-empty", "A 0-row jsontable: the JSON text [] (2 bytes).", [(p, [])])

    ipc = ipc_stream(BASIC)
    p = direct("table", "arrowtable", ipc, seed="basic")
    ok("direct-arrowtable-pyarrow",
       "Arrow IPC stream written by pyarrow with int64, float64, string (with a null), bool (with a null) "
       "and timestamp[ms, tz=UTC] (with a null) columns. Expected rows are the JSON-rows view "
       "(PROTOCOL.md §10): zoned timestamps as UTC ISO 8601 with Z and the fewest fraction digits.",
       [(p, arrow_value(BASIC, BASIC_ROWS))])

    ipc = ipc_stream(NULLS)
    p = direct("nulls", "arrowtable", ipc, seed="nulls")
    ok("direct-arrowtable-nulls",
       "pyarrow table where every column has nulls, including an all-null int64 column, an all-null "
       "timestamp column and a column of Arrow type null: nulls stay null in the JSON-rows view.",
       [(p, arrow_value(NULLS, NULLS_ROWS))])

    ipc = ipc_stream(EMPTY)
    p = direct("empty", "arrowtable", ipc, seed="arrow-empty")
    ok("direct-arrowtable-empty",
       "A 0-row pyarrow table (schema message, no record batch): decodes to no rows; the schema is kept.",
       [(p, arrow_value(EMPTY, []))])

    ipc = ipc_stream(MAPPING, max_chunksize=2)
    p = direct("types", "arrowtable", ipc, seed="mapping")
    ok("direct-arrowtable-type-mapping",
       "The Arrow type mapping of PROTOCOL.md §10 on one pyarrow table written as two record batches: "
       "int64/uint64 beyond ±(2^53-1) become decimal strings in the JSON-rows view (2^53-1 stays a number); "
       "NaN and ±Infinity become null; large_string and dictionary<string> read as plain strings; every "
       "zoned timestamp (UTC, Asia/Tokyo, +01:00; s/ms/us/ns) renders as its UTC instant with Z; naive "
       "timestamps render without a zone; date32 as YYYY-MM-DD, date64 as YYYY-MM-DDT00:00:00; lists and "
       "structs nest (with the same rules inside).",
       [(p, arrow_value(MAPPING, MAPPING_ROWS))])

    p = direct("photo", "image", PNG_1X1, extra_metadata={"content_type": "image/png"}, seed="image")
    ok("direct-image", "A 1x1 PNG image; payload metadata may carry extra keys (content_type here).",
       [(p, expect_value("image", PNG_1X1))])

    p = direct("beep", "audio", WAV, seed="audio")
    ok("direct-audio", "A tiny 16-bit PCM WAV file (4 samples).", [(p, expect_value("audio", WAV))])

    p = direct("clip", "video", MP4_FTYP, seed="video")
    ok("direct-video", "The first box (ftyp) of an MP4 file; video bytes are opaque to the protocol.",
       [(p, expect_value("video", MP4_FTYP))])

    p = direct("blob", "binary", ALL_BYTES, seed="binary")
    ok("direct-binary-all-bytes", "binary with every byte value 0x00..0xFF once (exercises all base64 symbols).",
       [(p, expect_value("binary", ALL_BYTES))], metadata={"app": "vectors", "trace": {"span": 3, "tags": ["a"]}})

    # --- link payloads ------------------------------------------------------------------------
    img = pattern(1200)
    url = f"{PLIK}/file/0KfNj6eMb93ilCrl/FvCIZ62hLKZkAnqv/photo.png"
    p = link("photo", "image", img, url, seed="plik")
    ok("link-plik-image",
       "A link payload on a Plik server: URL {server}/file/{uploadId}/{fileId}/{name}, encoding none, "
       "size and sha256 of the stored bytes (bytes i*31+7 mod 256, 1200 of them). A receiver fetches the URL "
       "only if its origin is allowed.",
       [(p, expect_value("image", img, "link", url))])

    blob = pattern(700_000)
    url = "http://127.0.0.1:9000/natsbridge/" + uid("http-object") + "/blob.bin"
    p = link("blob", "binary", blob, url, seed="http")
    ok("link-http-binary",
       "A link payload on a plain HTTP store ({base}/{uuid}/{dataname}); 700000 bytes, above the default "
       "threshold.",
       [(p, expect_value("binary", blob, "link", url))], threshold=THRESHOLD)

    big_rows = json.dumps([{"i": i, "s": "x" * 90} for i in range(6000)], separators=(",", ":")).encode()
    url = "nats-obj://natsbridge/" + uid("object-store-object")
    p = link("rows", "jsontable", big_rows, url, seed="objstore")
    ok("link-natsobj-jsontable",
       "A link payload in the JetStream object store: nats-obj://<bucket>/<object> (bucket natsbridge, "
       "object a UUID).",
       [(p, expect_value("jsontable", big_rows, "link", url))], threshold=THRESHOLD)

    # --- threshold --------------------------------------------------------------------------
    below = pattern(THRESHOLD - 1)
    p = direct("below", "binary", below, seed="threshold-1")
    ok("direct-threshold-minus-one",
       "A 499999-byte binary payload: size < threshold (500000), so direct. The expected value is given "
       "as sha256 + size of the decoded bytes instead of repeating 667 KB of base64.",
       [(p, expect_value("binary", below, big=True))], threshold=THRESHOLD)

    at = pattern(THRESHOLD)
    url = "nats-obj://natsbridge/" + uid("threshold-object")
    p = link("at", "binary", at, url, seed="threshold")
    ok("link-threshold-sized",
       "A payload of exactly 500000 bytes: size == threshold, so link (direct iff size < threshold).",
       [(p, expect_value("binary", at, "link", url))], threshold=THRESHOLD)

    # --- several payloads, mixed transports, in order --------------------------------------------
    specs = []
    t = b"first"
    specs.append((direct("note", "text", t, seed="multi"), "first"))
    big_img = pattern(600_000)
    url = f"{PLIK}/file/Ab3dE5gH7jK9mN1p/Qr5tU7wX9yZ1bC3d/scan.png"
    specs.append((link("scan", "image", big_img, url, seed="multi"), expect_value("image", big_img, "link", url)))
    d = b'{"step":2}'
    specs.append((direct("meta", "dictionary", d, seed="multi"), {"step": 2}))
    ipc = ipc_stream(SMALL)
    specs.append((direct("table", "arrowtable", ipc, seed="multi"), arrow_value(SMALL, SMALL_ROWS)))
    vid = pattern(2_000_000)
    url = "nats-obj://natsbridge/" + uid("multi-video")
    specs.append((link("movie", "video", vid, url, seed="multi"), expect_value("video", vid, "link", url)))
    specs.append((direct("note", "text", b"same dataname twice is allowed", seed="multi-2"),
                  "same dataname twice is allowed"))
    ok("multi-mixed-transports",
       "Six payloads in one envelope, direct and link interleaved; receivers return them in envelope order. "
       "datanames need not be unique.",
       specs, threshold=THRESHOLD)

    # --- accepted (receive-only) forms ----------------------------------------------------------
    value = {"key": "value", "n": [1, 2, None]}
    sent_text = json.dumps(value)  # Python default separators: ", " and ": "
    p = {"id": uid("json-dict"), "dataname": "cfg", "payload_type": "dictionary", "transport": "direct",
         "encoding": "json", "size": len(sent_text.encode()), "data": value,
         "metadata": {"payload_bytes": len(sent_text.encode())}}
    ok("accept-encoding-json-dictionary",
       "Receive-only form: encoding \"json\" with the JSON value inline in data (dictionary). size is that of "
       "the sender's JSON text and is not checked (a re-serialization need not reproduce it).",
       [(p, value)], as_sent=False)

    rows_v = [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    p = {"id": uid("json-table"), "dataname": "rows", "payload_type": "jsontable", "transport": "direct",
         "encoding": "json", "size": 999, "data": rows_v, "metadata": {"payload_bytes": 999, "sha256": "0" * 64}}
    ok("accept-encoding-json-jsontable",
       "Receive-only form: encoding \"json\" for a jsontable; neither size nor metadata.sha256 is checked for "
       "inline JSON (both are deliberately wrong here).",
       [(p, rows_v)], as_sent=False)

    p = {"id": uid("json-string"), "dataname": "cfg", "payload_type": "dictionary", "transport": "direct",
         "encoding": "json", "size": 7, "data": "{\"a\":1}", "metadata": {}}
    ok("accept-encoding-json-string-value",
       "With encoding \"json\", data IS the JSON value: a string in data is a string value, not JSON text "
       "to parse again (so this dictionary is the string '{\"a\":1}').",
       [(p, "{\"a\":1}")], as_sent=False)

    ipc = ipc_stream(SMALL)
    p = direct("table", "arrowtable", ipc, seed="arrow-ipc")
    p["encoding"] = "arrow-ipc"
    ok("accept-encoding-arrow-ipc",
       "Receive-only form: encoding \"arrow-ipc\" means base64 of Arrow IPC stream bytes, as \"base64\" does.",
       [(p, arrow_value(SMALL, SMALL_ROWS))], as_sent=False)

    env = {
        "correlation_id": uid("minimal"),
        "payloads": [
            {"dataname": "msg", "payload_type": "text", "transport": "direct", "size": 11,
             "data": "SGVsbG8gV29ybGQ="},
            {"dataname": "doc", "payload_type": "binary", "transport": "link", "size": 3,
             "data": f"{PLIK}/file/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/doc.bin"},
        ],
    }
    write("accept-minimal-envelope",
          "Receive-only: only payloads is required at envelope level, and only dataname, payload_type, "
          "transport, size and data in a payload. Missing strings read as \"\", missing metadata as {}; a "
          "missing encoding means base64 for direct and none for link. A link without metadata.sha256 is "
          "accepted (only size is checked after download). `canonical` is what Envelope::to_json re-emits.",
          env, {"payloads": [item(env["payloads"][0], "Hello World"),
                             item(env["payloads"][1], {"url": env["payloads"][1]["data"], "size": 3, "sha256": None})],
                "canonical": canonical_of(env)}, as_sent=False)

    env = envelope("nulls", [
        {"id": None, "dataname": "msg", "payload_type": "text", "transport": "direct", "encoding": None,
         "size": 2, "data": "aGk=", "metadata": None},
    ], sender_id=None, receiver_name=None, receiver_id=None, reply_to=None, reply_to_msg_id=None,
        broker_url=None, metadata=None, error=None)
    write("accept-null-fields",
          "Receive-only: a foreign sender (Python None, JS null) wrote null in optional string fields, in "
          "metadata, in payload id/encoding/metadata, and error: null. Nulls read as \"\" / {} / no error.",
          env, {"payloads": [{"dataname": "msg", "payload_type": "text", "transport": "direct", "value": "hi"}],
                "canonical": canonical_of(env)}, as_sent=False)

    p = direct("msg", "text", b"ab", with_sha256=False, seed="unpadded")
    p["data"] = "YWI"  # "ab" without its "=" padding
    ok("accept-base64-unpadded", "Receive-only: base64 without its = padding is accepted (the bytes are unambiguous).",
       [(p, "ab")], as_sent=False)

    p = direct("msg", "text", b"checksum", seed="upper")
    p["metadata"]["sha256"] = p["metadata"]["sha256"].upper()
    ok("accept-sha256-uppercase", "Receive-only: metadata.sha256 is compared case-insensitively.",
       [(p, "checksum")], as_sent=False)

    env = envelope("unknown-fields", [dict(direct("msg", "text", b"hi", seed="unknown"), future_field=[1])],
                   protocol_version=2, x_trace={"id": "abc"})
    write("accept-unknown-fields",
          "Receive-only: unknown fields at envelope and payload level are ignored (forward compatibility); "
          "a re-serialization drops them.",
          env, {"payloads": [{"dataname": "msg", "payload_type": "text", "transport": "direct", "value": "hi"}],
                "canonical": canonical_of(env)}, as_sent=False)

    ok("accept-custom-msg-purpose",
       "msg_purpose is any non-empty string; the seven named ones are conventions, not a closed set.",
       [(direct("msg", "text", b"tick", seed="purpose"), "tick")], msg_purpose="heartbeat")

    # --- error replies ----------------------------------------------------------------------------
    original = uid("original-request")
    env = envelope("nack", [], msg_purpose="NACK", reply_to_msg_id=original,
                   error={"code": "DOWNLOAD_FAILED", "message": "Failed to fetch data after 5 attempts",
                          "details": {"url": f"{PLIK}/file/UPLOAD_ID/FILE_ID/filename.ext",
                                      "correlation_id": uid("nack/correlation_id")}})
    write("nack-error-reply",
          "An error reply (NACK) as the walkthrough's error response format, in full envelope form: "
          "msg_purpose NACK, reply_to_msg_id = the failed request's msg_id, payloads [], and "
          "error {code, message, details}. The correlation_id is the request's.",
          env, {"payloads": [], "error_reply": "DOWNLOAD_FAILED"}, as_sent=True)

    env = envelope("nack-invalid-argument", [], msg_purpose="NACK", reply_to_msg_id=original,
                   error={"code": "INVALID_ARGUMENT", "message": "unknown option \"colour\"",
                          "details": {"correlation_id": uid("nack-invalid-argument/correlation_id")}})
    write("nack-invalid-argument",
          "An error reply reporting a caller mistake: INVALID_ARGUMENT, the 12th code, reads as itself "
          "(not as an unknown code).",
          env, {"payloads": [], "error_reply": "INVALID_ARGUMENT"}, as_sent=True)

    env = envelope("nack-unknown", [], msg_purpose="NACK",
                   error={"code": "QUOTA_EXCEEDED", "message": "over quota", "details": None})
    write("nack-unknown-error-code",
          "Receive-only: an error reply whose code is not one of the 12 reads as INVALID_ENVELOPE (message kept).",
          env, {"payloads": [], "error_reply": "INVALID_ENVELOPE"}, as_sent=False)

    # --- bad input ----------------------------------------------------------------------------------
    bad("err-malformed-json", "Not JSON at all (truncated object).", "INVALID_ENVELOPE", "parse",
        raw='{"correlation_id": "x", "payloads": [')
    bad("err-empty-message", "An empty message body.", "INVALID_ENVELOPE", "parse", raw="")
    bad("err-not-utf8", "Envelope bytes that are not UTF-8 (0xFF inside a string).", "INVALID_ENVELOPE", "parse",
        raw_base64=b64(b'{"sender_name":"\xff","payloads":[]}'))
    bad("err-not-object", "Valid JSON that is not an object.", "INVALID_ENVELOPE", "parse", env=[1, 2, 3])
    env = {"correlation_id": uid("seed-nack/correlation_id"), "msg_id": uid("seed-nack/msg_id"),
           "timestamp": TS, "send_to": "natsbridge.vectors.seed_nack",
           "error": {"code": "DOWNLOAD_FAILED", "message": "Failed to fetch data after 5 attempts",
                     "details": {"url": f"{PLIK}/file/UPLOAD_ID/FILE_ID/filename.ext",
                                 "correlation_id": uid("seed-nack/correlation_id")}}}
    write("accept-seed-error-response",
          "Receive-only: the walkthrough's error response format verbatim, with no payloads and only some "
          "header fields; missing payloads read as [] (decision: a seed NACK must be readable).",
          env, {"payloads": [], "error_reply": "DOWNLOAD_FAILED", "canonical": canonical_of(env)}, as_sent=False)
    env = dict(env, payloads=None)
    write("accept-error-reply-payloads-null",
          "Receive-only: an error reply may have payloads null, read as [] as when it is missing.",
          env, {"payloads": [], "error_reply": "DOWNLOAD_FAILED", "canonical": canonical_of(env)}, as_sent=False)
    bad("err-payloads-null", "payloads null in a message that is not an error reply: payloads is required "
        "unless the message has an error object.", "INVALID_ENVELOPE", "parse", env=envelope("null-payloads", None))
    bad("err-not-an-envelope", "A JSON object of another application on the same subject: no payloads, no "
        "error.", "INVALID_ENVELOPE", "parse", env={"temp": 21})
    bad("err-empty-object", "The empty JSON object.", "INVALID_ENVELOPE", "parse", env={})
    bad("err-payloads-not-array", "payloads is an object.", "INVALID_ENVELOPE", "parse",
        env=envelope("object-payloads", {"msg": "hi"}))
    bad("err-string-field-wrong-type", "correlation_id is a number.", "INVALID_ENVELOPE", "parse",
        env=envelope("wrong-type", [], correlation_id=42))
    p = direct("msg", "text", b"hi", seed="missing-data")
    del p["data"]
    bad("err-payload-missing-data", "A payload without data.", "INVALID_ENVELOPE", "parse", env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="null-dataname")
    p["dataname"] = None
    bad("err-payload-dataname-null", "dataname is null (required, must be a string).", "INVALID_ENVELOPE", "parse",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="neg-size")
    p["size"] = -1
    bad("err-size-negative", "size is negative.", "INVALID_ENVELOPE", "parse", env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="str-size")
    p["size"] = "2"
    bad("err-size-string", "size is a string.", "INVALID_ENVELOPE", "parse", env=envelope("x", [p]))

    p = direct("sheet", "text", b"hi", seed="bad-type")
    p["payload_type"] = "spreadsheet"
    bad("err-unknown-payload-type", "payload_type is not one of the eight.", "INVALID_PAYLOAD_TYPE", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="case-type")
    p["payload_type"] = "Text"
    bad("err-payload-type-case", "payload_type is case-sensitive: \"Text\" is unknown.", "INVALID_PAYLOAD_TYPE",
        "payload", env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="bad-transport")
    p["transport"] = "pigeon"
    bad("err-unknown-transport", "transport is neither direct nor link.", "INVALID_TRANSPORT", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="bad-b64")
    p["data"] = "SGVsbG8*V29ybGQ="
    bad("err-bad-base64", "data is not base64 ('*' is outside the alphabet).", "DESERIALIZATION_ERROR", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="urlsafe-b64")
    p["data"] = base64.urlsafe_b64encode(b"\xfb\xff").decode()
    p["size"] = 2
    p["metadata"] = {"payload_bytes": 2}
    bad("err-base64-urlsafe", "data uses the URL-safe alphabet ('-', '_'); only the standard one is valid.",
        "DESERIALIZATION_ERROR", "payload", env=envelope("x", [p]))
    p = direct("msg", "text", b"Hello World", seed="size-mismatch")
    p["size"] = 12
    p["metadata"]["payload_bytes"] = 12
    bad("err-size-mismatch", "size says 12 but the data decodes to 11 bytes.", "CHECKSUM_MISMATCH", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"Hello World", seed="sha-mismatch")
    p["metadata"]["sha256"] = sha(b"Hello World!")
    bad("err-sha256-mismatch", "metadata.sha256 is the digest of other bytes.", "CHECKSUM_MISMATCH", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="sha-type")
    p["metadata"]["sha256"] = 12345
    bad("err-sha256-not-string", "metadata.sha256 is a number.", "INVALID_ENVELOPE", "payload",
        env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="data-number")
    p["data"] = 12345
    bad("err-direct-data-not-string", "A direct base64 payload whose data is a number.", "INVALID_ENVELOPE",
        "payload", env=envelope("x", [p]))
    p = link("doc", "binary", b"abc", f"{PLIK}/file/a/b/doc", seed="link-b64")
    p["encoding"] = "base64"
    bad("err-link-encoding-base64", "A link payload must have encoding none.", "INVALID_ENVELOPE", "payload",
        env=envelope("x", [p]))
    p = link("doc", "binary", b"abc", None, seed="link-null")
    bad("err-link-data-null", "A link payload whose data (the URL) is null.", "INVALID_ENVELOPE", "payload",
        env=envelope("x", [p]))
    p = {"id": uid("json-text"), "dataname": "msg", "payload_type": "text", "transport": "direct",
         "encoding": "json", "size": 4, "data": "text", "metadata": {}}
    bad("err-encoding-json-for-text", "encoding json is only for dictionary and jsontable.", "INVALID_ENVELOPE",
        "payload", env=envelope("x", [p]))
    p = direct("msg", "text", b"hi", seed="enc-gzip")
    p["encoding"] = "gzip"
    bad("err-unknown-encoding", "An unknown encoding on a direct payload.", "INVALID_ENVELOPE", "payload",
        env=envelope("x", [p]))

    p = direct("msg", "text", b"\xff\xfe not utf-8", seed="not-utf8")
    bad("err-text-not-utf8", "A text payload whose bytes are not UTF-8.", "DESERIALIZATION_ERROR", "deserialize",
        env=envelope("x", [p]))
    p = direct("cfg", "dictionary", b'{"a": 1,', seed="bad-json")
    bad("err-dictionary-invalid-json", "A dictionary payload whose bytes are not valid JSON.",
        "DESERIALIZATION_ERROR", "deserialize", env=envelope("x", [p]))
    p = direct("cfg", "dictionary", b'{"x": NaN}', seed="nan-json")
    bad("err-dictionary-nan",
        "NaN is not JSON (Python's json.dumps writes it unless allow_nan=False): DESERIALIZATION_ERROR.",
        "DESERIALIZATION_ERROR", "deserialize", env=envelope("x", [p]))
    p = direct("rows", "jsontable", b'[{"a":1},2]', seed="rows-bad")
    bad("err-jsontable-not-rows", "A jsontable whose second item is not an object.", "DESERIALIZATION_ERROR",
        "deserialize", env=envelope("x", [p]))
    p = direct("rows", "jsontable", b'{"a":[1,2]}', seed="rows-obj")
    bad("err-jsontable-object", "A jsontable that is an object (column-oriented), not an array of rows.",
        "DESERIALIZATION_ERROR", "deserialize", env=envelope("x", [p]))
    p = direct("table", "arrowtable", b"definitely not arrow", seed="garbage")
    bad("err-arrowtable-garbage", "arrowtable bytes that are not Arrow IPC.", "DESERIALIZATION_ERROR",
        "deserialize", env=envelope("x", [p]))
    ipc = ipc_stream(SMALL)
    p = direct("table", "arrowtable", ipc[: len(ipc) // 2], seed="truncated")
    bad("err-arrowtable-truncated", "An Arrow IPC stream cut in half.", "DESERIALIZATION_ERROR", "deserialize",
        env=envelope("x", [p]))
    p = direct("table", "arrowtable", ipc_file(SMALL), seed="file-format")
    bad("err-arrowtable-file-format",
        "Arrow IPC FILE format (magic ARROW1, as pyarrow.ipc.new_file or Arrow.write(filename) write) instead of "
        "the stream format.", "DESERIALIZATION_ERROR", "deserialize", env=envelope("x", [p]))

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SMALL.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(SMALL)
    p = direct("table", "arrowtable", sink.getvalue().to_pybytes(), seed="compressed")
    bad("err-arrowtable-compressed",
        "An Arrow IPC stream with ZSTD-compressed buffers (pyarrow IpcWriteOptions(compression='zstd')): v1 "
        "arrowtable payloads are uncompressed IPC, and the core cannot read compressed buffers.",
        "DESERIALIZATION_ERROR", "deserialize", env=envelope("x", [p]))

    # pyarrow writes no buffer for a null-type column: 224 bytes hold 100 million rows, which a row
    # view (JSON rows, a pandas frame of None) would build (PROTOCOL.md §9.4, max_arrow_values).
    nulls = pa.record_batch([pa.nulls(10**8)], names=["n"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, nulls.schema) as w:
        w.write_batch(nulls)
    p = direct("table", "arrowtable", sink.getvalue().to_pybytes(), seed="values-bomb")
    bad("err-arrowtable-values-bomb",
        "An Arrow IPC stream of 224 bytes whose null-type column has 100,000,000 rows (pyarrow writes no "
        "buffer for the null type): beyond max_arrow_values (1,000,000 values plus 16 per byte of the stream "
        "by default), so a receiver refuses it before any row view is built.",
        "PAYLOAD_TOO_LARGE", "deserialize", env=envelope("x", [p]))

    good = direct("first", "text", b"fine", seed="second-bad")
    worse = direct("second", "text", b"hi", seed="second-bad")
    worse["transport"] = "carrier"
    bad("err-second-payload-bad",
        "The first payload is fine, the second has an unknown transport: the whole message fails with the "
        "second's code (no payload is returned on its own, none is dropped silently).",
        "INVALID_TRANSPORT", "payload", env=envelope("x", [good, worse]))

    print(f"wrote {len(written)} vectors to {OUT}")


if __name__ == "__main__":
    main()
