"""natsbridge.py under the real MicroPython against a real nats-server, with the Python binding
(the Rust core) on the other side: every supported type both ways, the bytes on the wire, the
50 KB limit, the server's max_payload, and the error codes for bad input."""

import base64
import hashlib
import json
import re
import subprocess
import time

import pytest
from conftest import MICROPYTHON, PKG, RawSub, free_port, mpy_env, run_mpy

import natsbridge  # the Python binding (a wheel), not natsbridge.py: tests/ is the working directory

assert hasattr(natsbridge, "connect_sync"), f"{natsbridge.__file__} is not the Python binding"

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEED_ORDER = ["correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
              "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "metadata", "payloads"]
PAYLOAD_ORDER = ["id", "dataname", "payload_type", "transport", "encoding", "size", "data", "metadata"]

# Values of every type MicroPython supports; bytes are what a sensor would send.
VALUES = {
    "text": ("Héllo ✓ 😀\n\ttab \"quoted\" \\ back\x00nul\x1f", "text"),
    "text_empty": ("", "text"),
    "dictionary": ({"a": {"b": [1, 2.5, None, True, False, "x\"y"]}, "big": 2 ** 60, "neg": -3, "é ✓": "😀",
                    "empty": {}, "list": []}, "dictionary"),
    "dictionary_list": ([1, "two", None, 3.25], "dictionary"),
    "dictionary_string": ("just a string", "dictionary"),
    "jsontable": ([{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": None, "ok": False}, {}], "jsontable"),
    "jsontable_empty": ([], "jsontable"),
    "image": (bytes((i * 7) % 251 for i in range(3000)), "image"),
    "audio": (bytes((i * 13 + 5) % 256 for i in range(1001)), "audio"),
    "video": (bytes((i * 3) % 256 for i in range(2002)), "video"),
    "binary": (bytes(range(256)) * 4, "binary"),
    "binary_empty": (b"", "binary"),
}


def mpy_literal(value):
    """The value as MicroPython source (repr of bytes/str/containers is the same language)."""
    return repr(value)


def check_wire(body, subject):
    """The envelope as the core writes it: compact, the seeds' field order, ids and timestamp in form."""
    env = json.loads(body)
    assert list(env) == SEED_ORDER
    assert body == json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode(), "not compact JSON"
    assert env["send_to"] == subject
    assert UUID4.match(env["correlation_id"]) and UUID4.match(env["msg_id"]) and UUID4.match(env["sender_id"])
    assert TIMESTAMP.match(env["timestamp"]) and abs(
        time.mktime(time.strptime(env["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.mktime(time.gmtime())) < 120
    for p in env["payloads"]:
        assert list(p) == PAYLOAD_ORDER
        assert UUID4.match(p["id"])
        assert (p["transport"], p["encoding"]) == ("direct", "base64")
        assert p["metadata"] == {"payload_bytes": p["size"]}
        assert len(base64.b64decode(p["data"], validate=True)) == p["size"]
    return env


@pytest.mark.parametrize("name", VALUES)
def test_micropython_to_python(nats_url, name):
    value, ptype = VALUES[name]
    subject = f"mpy.to.py.{name}"
    sub = RawSub(nats_url, subject)
    try:
        proc = run_mpy(f"""
import natsbridge as nb
env, msg_json = nb.smartsend({subject!r}, [("p", {mpy_literal(value)}, {ptype!r})], broker_url={nats_url!r},
                             sender_name="sensor-7", msg_purpose=nb.EVENT, metadata={{"room": "lab"}},
                             return_json=True)
nb._shared_connection({nats_url!r}).flush()
print(env["correlation_id"], env["payloads"][0]["size"], len(msg_json))
print(str(msg_json, "utf-8"))
""")
        got = sub.next()
    finally:
        sub.close()
    assert got is not None, "no message arrived"
    _, body = got
    cid, size, json_len = proc.stdout.split("\n")[0].split()
    env = check_wire(body, subject)
    assert (env["correlation_id"], env["sender_name"], env["msg_purpose"], env["metadata"]) == (
        cid, "sensor-7", "event", {"room": "lab"})
    assert int(json_len) == len(body), "msg_json is not the published message"
    assert env == json.loads(proc.stdout.split("\n")[1]), "msg_json is not the published message"
    assert env["broker_url"] == nats_url

    received = natsbridge.smartreceive_sync(body)  # the core decodes it
    assert received["payloads"] == [("p", value, ptype)]
    assert received["transports"] == ["direct"]
    serialized = value.encode() if ptype == "text" else value if isinstance(value, bytes) else None
    if serialized is not None:
        assert int(size) == len(serialized) == env["payloads"][0]["size"]


def receive_in_micropython(url, subject, count, send, heapsize=None, path=None):
    """Starts interop/receive.py, waits for its ready line, calls send(), returns its JSON lines."""
    heap = ["-X", f"heapsize={heapsize}"] if heapsize else []
    proc = subprocess.Popen([MICROPYTHON, *heap, str(PKG / "interop/receive.py"), url, subject, str(count), "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=mpy_env(path))
    try:
        ready = proc.stderr.readline().decode()
        assert ready.startswith("ready:"), ready + proc.stderr.read().decode()
        send()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().split("\n")[:-1]]


@pytest.mark.parametrize("name", VALUES)
def test_python_to_micropython(nats_url, name):
    value, ptype = VALUES[name]
    subject = f"py.to.mpy.{name}"
    sent = {}

    def send():
        with natsbridge.connect_sync(nats_url) as nc:
            env, _ = nc.smartsend_sync(subject, [("p", value, ptype)], sender_name="py", reply_to="r.1")
            sent.update(env)

    [line] = receive_in_micropython(nats_url, "py.to.mpy.>", 1, send)
    assert (line["correlation_id"], line["msg_id"], line["sender_name"], line["reply_to"], line["send_to"]) == (
        sent["correlation_id"], sent["msg_id"], "py", "r.1", subject)
    [p] = line["payloads"]
    assert (p["dataname"], p["payload_type"], p["transport"]) == ("p", ptype, "direct")
    if isinstance(value, bytes):
        assert p["value"] == {"size": len(value), "sha256": hashlib.sha256(value).hexdigest()}
    else:
        assert p["value"] == value


def test_python_link_and_arrowtable_are_refused_with_their_codes(nats_url):
    """A real link (the core's object store) is INVALID_TRANSPORT; Arrow is INVALID_PAYLOAD_TYPE."""
    import pyarrow as pa

    def send():
        with natsbridge.connect_sync(nats_url) as nc:
            nc.smartsend_sync("refuse.link", [("big", b"x" * 100, "binary")], size_threshold=0)
            nc.smartsend_sync("refuse.arrow", [("t", pa.table({"a": [1, 2]}), "arrowtable")])
            nc.smartsend_sync("refuse.ok", [("t", "still receiving", "text")])

    link, arrow, ok = receive_in_micropython(nats_url, "refuse.>", 3, send)
    assert link["subject"] == "refuse.link" and link["error"]["code"] == "INVALID_TRANSPORT"
    assert "link" in link["error"]["message"] and "direct" in link["error"]["message"]
    assert arrow["subject"] == "refuse.arrow" and arrow["error"]["code"] == "INVALID_PAYLOAD_TYPE"
    assert ok["payloads"][0]["value"] == "still receiving"


LIMIT_PROGRAM = """
import natsbridge as nb
nc = nb.connect({url!r})
def attempt(label, subject, payloads):
    try:
        nb.smartsend(subject, payloads, connection=nc)
        print(label, "sent")
    except nb.NATSBridgeError as e:
        print(label, e.code, e.correlation_id is not None)
attempt("bytes_over", "limit.over", [("b", bytes(50001), "binary")])
attempt("text_over", "limit.over", [("t", "é" * 25001, "text")])
attempt("dict_over", "limit.over", [("d", {{"k": "x" * 49999}}, "dictionary")])
attempt("second_over", "limit.over", [("ok", b"small", "binary"), ("b", bytearray(50001), "image")])
attempt("bytes_at_limit", "limit.ok", [("b", bytes(range(250)) * 200, "binary")])
nc.flush()
"""


def test_payload_over_50kb_is_refused_before_anything_is_sent(nats_url):
    sub = RawSub(nats_url, "limit.>")
    try:
        proc = run_mpy(LIMIT_PROGRAM.format(url=nats_url))
        first = sub.next()
        nothing_else = sub.next(timeout=0.3)
    finally:
        sub.close()
    assert proc.stdout.split("\n")[:-1] == [
        "bytes_over PAYLOAD_TOO_LARGE True",
        "text_over PAYLOAD_TOO_LARGE True",  # 25001 x 'é' is 50002 bytes of UTF-8
        "dict_over PAYLOAD_TOO_LARGE True",  # {"k":"..."} is 50007 bytes of JSON
        "second_over PAYLOAD_TOO_LARGE True",  # the small first payload is not sent alone
        "bytes_at_limit sent",
    ]
    # Messages from one connection arrive in order: the first one seen is the one at the limit.
    subject, body = first
    assert subject == "limit.ok"
    [(name, data, ptype)] = natsbridge.smartreceive_sync(body)["payloads"]
    assert (name, data, ptype) == ("b", bytes(range(250)) * 200, "binary")
    assert nothing_else is None


def test_envelope_over_server_max_payload_is_refused(small_nats_url):
    sub = RawSub(small_nats_url, "small.>")
    try:
        proc = run_mpy(f"""
import natsbridge as nb
nc = nb.connect({small_nats_url!r})
print(nc.max_payload)
try:
    nb.smartsend("small.over", [("b", bytes(1600), "binary")], connection=nc)
except nb.NATSBridgeError as e:
    print(e.code)
nb.smartsend("small.ok", [("b", bytes(1000), "binary")], connection=nc)
nc.flush()
""")
        first = sub.next()
    finally:
        sub.close()
    # 1600 bytes are 2136 characters of base64: over 2048 once inside the envelope.
    assert proc.stdout.split() == ["2048", "PAYLOAD_TOO_LARGE"]
    assert first[0] == "small.ok"
    assert natsbridge.smartreceive_sync(first[1])["payloads"] == [("b", bytes(1000), "binary")]


BAD_INPUT_PROGRAM = """
import natsbridge as nb
nc = nb.connect({url!r})
def code(label, f):
    try:
        f()
        print(label, "ok")
    except nb.NATSBridgeError as e:
        print(label, e.code)
send = lambda payloads, **kw: nb.smartsend("bad.x", payloads, connection=nc, **kw)
code("arrowtable", lambda: send([("t", [{{"a": 1}}], "arrowtable")]))
code("unknown_type", lambda: send([("t", "x", "spreadsheet")]))
code("type_case", lambda: send([("t", "x", "Text")]))
code("text_given_bytes", lambda: send([("t", b"x", "text")]))
code("binary_given_str", lambda: send([("t", "x", "binary")]))
code("jsontable_not_rows", lambda: send([("t", [1, 2], "jsontable")]))
code("jsontable_object", lambda: send([("t", {{"a": 1}}, "jsontable")]))
code("dict_nan", lambda: send([("t", {{"a": float("nan")}}, "dictionary")]))
code("dict_inf", lambda: send([("t", [float("inf")], "dictionary")]))
code("dict_int_key", lambda: send([("t", {{1: 2}}, "dictionary")]))
code("dict_bytes", lambda: send([("t", {{"a": b"x"}}, "dictionary")]))
code("data_not_list", lambda: send("hello"))
code("payload_not_triple", lambda: send([("t", "x")]))
code("dataname_not_str", lambda: send([(1, "x", "text")]))
code("subject_space", lambda: nb.smartsend("bad x", [("t", "x", "text")], connection=nc))
code("subject_empty", lambda: nb.smartsend("", [("t", "x", "text")], connection=nc))
code("sender_name_int", lambda: send([("t", "x", "text")], sender_name=5))
code("metadata_nan", lambda: send([("t", "x", "text")], metadata={{"a": float("nan")}}))
code("msg_purpose_empty", lambda: send([("t", "x", "text")], msg_purpose=""))
code("receive_not_json", lambda: nb.smartreceive(b"hello"))
code("receive_int", lambda: nb.smartreceive(42))
code("receive_truncated", lambda: nb.smartreceive(b'{{"payloads": ['))
code("dead_server", lambda: nb.connect("nats://127.0.0.1:{dead_port}"))
code("tls_url", lambda: nb.connect("tls://127.0.0.1:{dead_port}"))
code("bad_port", lambda: nb.connect("nats://127.0.0.1:port"))
print("next_msg_timeout", nc.next_msg(timeout=0.2))
send([("t", "the only message", "text")])
nc.flush()
"""


def test_bad_input_gets_the_core_codes_and_publishes_nothing(nats_url):
    sub = RawSub(nats_url, ">")
    try:
        proc = run_mpy(BAD_INPUT_PROGRAM.format(url=nats_url, dead_port=free_port()))
        first = sub.next()
    finally:
        sub.close()
    got = dict(line.split(" ", 1) for line in proc.stdout.split("\n")[:-1])
    assert got == {
        "arrowtable": "INVALID_PAYLOAD_TYPE",
        "unknown_type": "INVALID_PAYLOAD_TYPE",
        "type_case": "INVALID_PAYLOAD_TYPE",
        "text_given_bytes": "INVALID_PAYLOAD_TYPE",
        "binary_given_str": "INVALID_PAYLOAD_TYPE",
        "jsontable_not_rows": "INVALID_PAYLOAD_TYPE",
        "jsontable_object": "INVALID_PAYLOAD_TYPE",
        "dict_nan": "INVALID_PAYLOAD_TYPE",
        "dict_inf": "INVALID_PAYLOAD_TYPE",
        "dict_int_key": "INVALID_PAYLOAD_TYPE",
        "dict_bytes": "INVALID_PAYLOAD_TYPE",
        "data_not_list": "INVALID_PAYLOAD_TYPE",
        "payload_not_triple": "INVALID_PAYLOAD_TYPE",
        "dataname_not_str": "INVALID_PAYLOAD_TYPE",
        # caller mistakes are INVALID_ARGUMENT, never another code
        "subject_space": "INVALID_ARGUMENT",
        "subject_empty": "INVALID_ARGUMENT",
        "sender_name_int": "INVALID_ARGUMENT",
        "metadata_nan": "INVALID_ARGUMENT",
        "msg_purpose_empty": "INVALID_ARGUMENT",
        "receive_not_json": "INVALID_ENVELOPE",
        "receive_int": "INVALID_ARGUMENT",
        "receive_truncated": "INVALID_ENVELOPE",
        "dead_server": "NATS_CONNECTION_FAILED",
        "tls_url": "INVALID_ARGUMENT",
        "bad_port": "INVALID_ARGUMENT",
        "next_msg_timeout": "None",
    }
    assert first is not None and first[0] == "bad.x"
    assert natsbridge.smartreceive_sync(first[1])["payloads"] == [("t", "the only message", "text")]


def test_error_codes_are_the_cores():
    proc = run_mpy("import natsbridge as nb\nprint(' '.join(nb.ERROR_CODES))")
    assert proc.stdout.split() == natsbridge._natsbridge.error_codes()


HEAP_PROGRAM = """
import gc
import natsbridge as nb
nc = nb.connect({url!r})
data = {make}
gc.collect()
before = gc.mem_alloc()
env, msg_json = nb.smartsend("heap.{name}", [("p", data, {ptype!r})], connection=nc)
gc.collect()
print(gc.mem_alloc() - before, msg_json)
nc.flush()
"""


HEAP_CASES = [
    ("binary", "bytes(range(250)) * 200", "binary"),  # 50,000 bytes
    ("text", "'a' * 49995 + 'é✓'", "text"),  # 50,000 bytes of UTF-8
    ("dictionary", "{'rows': [{'t': 21.5, 'id': i} for i in range(2000)]}", "dictionary"),  # 40,900 bytes of JSON
]


# Precompiled (.mpy, as devices run it) for every case; from source (compiled on import, ~110 KB
# more heap: see bench/RESULTS-micropython.md) the binary case still fits.
@pytest.mark.parametrize("name,make,ptype,source", [c + (False,) for c in HEAP_CASES] + [HEAP_CASES[0] + (True,)],
                         ids=[c[0] + "-mpy" for c in HEAP_CASES] + ["binary-source"])
def test_50kb_send_fits_a_256k_heap(nats_url, compiled, name, make, ptype, source):
    """The seeds' device budget: the program, its 50 KB payload and the send in 256 KB of heap
    (bindings-micropython/scripts/heap.py measures the margins)."""
    sub = RawSub(nats_url, f"heap.{name}")
    try:
        proc = run_mpy(HEAP_PROGRAM.format(url=nats_url, name=name, make=make, ptype=ptype), heapsize="256K",
                       path=None if source else compiled)
        got = sub.next()
    finally:
        sub.close()
    delta, msg_json = proc.stdout.split()
    assert got is not None and msg_json == "None"
    [(_, data, _)] = natsbridge.smartreceive_sync(got[1])["payloads"]
    size = len(data.encode()) if ptype == "text" else len(data) if ptype == "binary" else len(
        json.dumps(data, separators=(",", ":")))
    assert size == json.loads(got[1])["payloads"][0]["size"] == (40900 if ptype == "dictionary" else 50000)
    # The send keeps only the small env dict: the base64 went to the socket in pieces.
    assert int(delta) < 4096, delta


def test_50kb_receive_fits_a_256k_heap(nats_url, compiled):
    value = bytes((i * 7) % 256 for i in range(50000))

    def send():
        with natsbridge.connect_sync(nats_url) as nc:
            nc.smartsend_sync("heap.receive", [("p", value, "binary")])

    [line] = receive_in_micropython(nats_url, "heap.receive", 1, send, heapsize="256K", path=compiled)
    assert line["payloads"][0]["value"] == {"size": 50000, "sha256": hashlib.sha256(value).hexdigest()}
