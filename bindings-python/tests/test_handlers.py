"""Custom link stores from Python callables, reply / reply_error, and the GIL during a send."""

import asyncio
import json
import threading
import time
import uuid

import pytest

import natsbridge as nb
from conftest import nats_py_subscribe
import peer



def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def subject():
    return f"test.py.{uuid.uuid4().hex}"


class MemStore:
    """The seeds' handler contracts over a dict, with URLs of a custom scheme."""

    def __init__(self):
        self.blobs = {}
        self.uploads = []    # (fileserver_url, dataname, size)
        self.downloads = []  # (url, max_retries, base_delay_ms, max_delay_ms, correlation_id)
        self.loops = []      # the running loop an async handler saw

    def upload(self, fileserver_url, dataname, data):
        assert type(data) is bytes
        key = uuid.uuid4().hex
        self.blobs[key] = data
        self.uploads.append((fileserver_url, dataname, len(data)))
        return {"status": 200, "uploadid": key, "fileid": "f", "url": f"mem://store/{key}/{dataname}"}

    def download(self, url, max_retries, base_delay_ms, max_delay_ms, correlation_id):
        self.downloads.append((url, max_retries, base_delay_ms, max_delay_ms, correlation_id))
        return self.blobs[url.split("/")[3]]

    async def upload_async(self, fileserver_url, dataname, data):
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        return self.upload(fileserver_url, dataname, data)

    async def download_async(self, url, max_retries, base_delay_ms, max_delay_ms, correlation_id):
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        return bytearray(self.download(url, max_retries, base_delay_ms, max_delay_ms, correlation_id))

    def handlers(self, kind):
        if kind == "async":
            return self.upload_async, self.download_async
        return self.upload, self.download


PAYLOADS = [
    ("big", bytes(range(256)) * 20, "binary"),
    ("small", "hi", "text"),
    ("cfg", {"rows": list(range(200))}, "dictionary"),
]


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_connection_handlers_round_trip(nats_url, kind):
    store = MemStore()
    up, down = store.handlers(kind)

    async def go():
        async with nb.connect(nats_url, fileserver_upload_handler=up, fileserver_download_handler=down,
                              allowed_origins=["mem://store"], max_retries=3, base_delay=0.01, max_delay=0.2) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env, _ = await nc.smartsend(subj, PAYLOADS, size_threshold=300)
            got = await sub.next(timeout=10)
            return asyncio.get_running_loop(), env, got

    loop, env, got = run(go())
    assert [p["transport"] for p in env["payloads"]] == ["link", "direct", "link"]
    assert env["payloads"][0]["data"].startswith("mem://store/")
    assert got["payloads"] == PAYLOADS
    assert got["transports"] == ["link", "direct", "link"]
    assert sorted(u[1:] for u in store.uploads) == [("big", 5120), ("cfg", len(json.dumps(PAYLOADS[2][1], separators=(",", ":"))))]
    assert all(u[0] == "" for u in store.uploads)  # no fileserver_url configured
    assert sorted(d[0] for d in store.downloads) == sorted(p["data"] for p in env["payloads"] if p["transport"] == "link")
    # delays given in seconds reach the handler as the seeds' integer milliseconds
    assert all(d[1:] == (3, 10, 200, env["correlation_id"]) for d in store.downloads)
    assert all(type(d[2]) is int and type(d[3]) is int for d in store.downloads)
    if kind == "async":  # awaited on the caller's own event loop
        assert store.loops and all(lp is loop for lp in store.loops)


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_connection_handlers_sync_twins(nats_url, kind):
    store = MemStore()
    up, down = store.handlers(kind)
    with nb.connect_sync(nats_url, fileserver_url="mem://store", fileserver_upload_handler=up,
                         fileserver_download_handler=down) as nc:
        subj = subject()
        sub = nc.subscribe_sync(subj)
        env, msg_json = nc.smartsend_sync(subj, PAYLOADS, size_threshold=300)
        got = sub.next_sync(timeout=10)
        again = nc.smartreceive_sync(msg_json)
    assert got["payloads"] == PAYLOADS == again["payloads"]
    assert {u[0] for u in store.uploads} == {"mem://store"}  # fileserver_url is the handler's first argument
    assert len(store.downloads) == 4


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_one_call_handlers_round_trip(nats_url, kind):
    import nats

    store = MemStore()
    up, down = store.handlers(kind)

    async def go():
        raw = await nats.connect(nats_url)
        subj = subject()
        sub = await nats_py_subscribe(raw, subj)
        env, _ = await nb.smartsend(subj, PAYLOADS, broker_url=nats_url, fileserver_url="mem://store",
                                    fileserver_upload_handler=up, size_threshold=300)
        msg = await sub.next_msg(timeout=5)
        got = await nb.smartreceive(msg, fileserver_download_handler=down, allowed_origins="mem://store")
        await raw.close()
        return env, msg, got

    env, msg, got = run(go())
    assert [p["transport"] for p in env["payloads"]] == ["link", "direct", "link"]
    assert got["payloads"] == PAYLOADS
    assert {u[0] for u in store.uploads} == {"mem://store"}
    # the one-call path knows the envelope: the handler gets the seeds' five arguments in full
    assert {d[1:] for d in store.downloads} == {(5, 100, 5000, env["correlation_id"])}
    # the blocking twin, no NATS connection needed at all
    store.downloads.clear()
    again = nb.smartreceive_sync(msg.data, fileserver_download_handler=down, fileserver_url="mem://store",
                                 max_retries=2, base_delay=0.001, max_delay=0.002)
    assert again["payloads"] == PAYLOADS
    assert {d[1:4] for d in store.downloads} == {(2, 1, 2)}


def test_download_only_handler_leaves_uploads_to_the_object_store(nats_url):
    store = MemStore()

    async def go():
        async with nb.connect(nats_url, fileserver_download_handler=store.download, allowed_origins=["mem:"]) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env, _ = await nc.smartsend(subj, [("big", b"\x01" * 2000, "binary")], size_threshold=100)
            got = await sub.next(timeout=10)
            # a mem: link (here from a per-message upload handler) goes to the download handler
            env2, _ = await nc.smartsend(subj, [("m", b"\x02" * 2000, "binary")], size_threshold=100,
                                         fileserver_upload_handler=store.upload)
            got2 = await sub.next(timeout=10)
            return env, got, env2, got2

    env, got, env2, got2 = run(go())
    assert env["payloads"][0]["data"].startswith("nats-obj://")
    assert got["payloads"] == [("big", b"\x01" * 2000, "binary")]
    assert env2["payloads"][0]["data"].startswith("mem://store/")
    assert got2["payloads"] == [("m", b"\x02" * 2000, "binary")]
    assert [d[0] for d in store.downloads] == [env2["payloads"][0]["data"]]


def test_download_only_handler_with_a_file_server(nats_url):
    """The handler serves the file server's origin; uploads still go to the file server (here a
    closed port, so they fail and the payload goes direct), not to the handler or object store."""
    from conftest import free_port

    server = f"http://127.0.0.1:{free_port()}"
    seen = []

    def download(url, *rest):
        seen.append(url)
        return b"payload"

    with nb.connect_sync(nats_url, fileserver_url=server, fileserver_download_handler=download) as nc:
        got = nc.smartreceive_sync(link_message(f"{server}/file/u/f/p")[0])
        assert got["payloads"] == [("p", b"payload", "binary")]
        with pytest.raises(nb.UrlNotAllowedError):
            nc.smartreceive_sync(link_message(f"http://127.0.0.1:{free_port()}/file/u/f/p")[0])
        env, _ = nc.smartsend_sync(subject(), [("d", b"\x01" * 1000, "binary")], size_threshold=100)
        with pytest.raises(nb.UploadFailedError, match=f"POST {server}/upload"):  # Plik's create-upload call
            nc.smartsend_sync(subject(), [("d", b"\x01" * 2_000_000, "binary")])
    assert seen == [f"{server}/file/u/f/p"]
    assert env["payloads"][0]["transport"] == "direct"


def test_upload_only_handler_and_other_receiver(nats_url):
    store = MemStore()

    async def go():
        async with nb.connect(nats_url, fileserver_upload_handler=store.upload) as tx, \
                nb.connect(nats_url, fileserver_download_handler=store.download, allowed_origins=["mem://store"]) as rx:
            subj = subject()
            sub = await rx.subscribe(subj)
            await tx.smartsend(subj, PAYLOADS, size_threshold=300)
            got = await sub.next(timeout=10)
            # the sender has no download handler: a mem:// link is not an allowed origin there
            tx_sub = await tx.subscribe(subj)
            await tx.smartsend(subj, PAYLOADS, size_threshold=300)
            with pytest.raises(nb.UrlNotAllowedError):
                await tx_sub.next(timeout=10)
            return got

    assert run(go())["payloads"] == PAYLOADS


# ---- failing handlers ----------------------------------------------------------------------------

def boom(*args):
    raise RuntimeError("file server on fire")


async def boom_async(*args):
    await asyncio.sleep(0)
    raise RuntimeError("file server on fire")


@pytest.mark.parametrize("handler", [boom, boom_async], ids=["plain", "async"])
def test_raising_upload_handler_falls_back_or_fails(small_nats_url, handler):
    async def go():
        async with nb.connect(small_nats_url, fileserver_upload_handler=handler) as nc:
            assert nc.max_payload == 65536
            subj = subject()
            sub = await nc.subscribe(subj)
            # fits max_payload: goes direct
            env, _ = await nc.smartsend(subj, [("a", b"\x03" * 1000, "binary")], size_threshold=100)
            got = await sub.next(timeout=5)
            # does not fit: UPLOAD_FAILED with the handler's exception text
            with pytest.raises(nb.UploadFailedError) as info:
                await nc.smartsend(subj, [("b", b"\x04" * 100_000, "binary")], size_threshold=100,
                                   correlation_id="cid-up")
            # the same without a threshold link: the too-large envelope asks the store, which fails
            with pytest.raises(nb.UploadFailedError):
                await nc.smartsend(subj, [("c", b"\x05" * 100_000, "binary")])
            return env, got, info.value

    env, got, e = run(go())
    assert env["payloads"][0]["transport"] == "direct"
    assert got["payloads"] == [("a", b"\x03" * 1000, "binary")]
    assert e.code == "UPLOAD_FAILED" and e.correlation_id == "cid-up"
    assert "RuntimeError: file server on fire" in str(e)


def test_raising_upload_handler_per_message(small_nats_url):
    env, _ = nb.smartsend_sync(subject(), [("a", b"\x03" * 1000, "binary")], broker_url=small_nats_url,
                               fileserver_upload_handler=boom, size_threshold=100)
    assert env["payloads"][0]["transport"] == "direct"
    with pytest.raises(nb.UploadFailedError, match="file server on fire"):
        run(nb.smartsend(subject(), [("b", b"\x04" * 100_000, "binary")], broker_url=small_nats_url,
                         fileserver_upload_handler=boom_async))


@pytest.mark.parametrize("result,why", [
    (None, "returned null, not an object"),
    (object(), "returned object, not a dict"),
    ({"status": 200}, "returned no \"url\""),
    ({"url": ""}, "returned an empty \"url\""),
    ({"url": 7}, "not a string"),
    ({"status": 500, "url": "mem://store/x"}, "returned status 500"),
])
def test_bad_upload_result_is_upload_failed(small_nats_url, result, why):
    with pytest.raises(nb.UploadFailedError) as info:
        nb.smartsend_sync(subject(), [("b", b"\x04" * 100_000, "binary")], broker_url=small_nats_url,
                          fileserver_upload_handler=lambda *a: result, size_threshold=100)
    assert why in str(info.value)
    assert "fileserver_upload_handler" in str(info.value)


def test_upload_result_may_be_the_url_itself(nats_url):
    """The seeds' dict, or only its URL (core's UploadReply)."""
    store = MemStore()

    def upload(fileserver_url, dataname, data):
        return store.upload(fileserver_url, dataname, data)["url"]

    env, msg_json = nb.smartsend_sync(subject(), [("b", b"\x04" * 1000, "binary")], broker_url=nats_url,
                                      fileserver_upload_handler=upload, size_threshold=100)
    assert env["payloads"][0]["data"].startswith("mem://store/")
    got = nb.smartreceive_sync(msg_json, fileserver_download_handler=store.download, allowed_origins=["mem:"])
    assert got["payloads"] == [("b", b"\x04" * 1000, "binary")]


def link_message(url, data=b"payload"):
    env = peer.envelope("s", [("p", data, "binary")])
    p = env["payloads"][0]
    p.update(transport="link", encoding="none", data=url)
    return json.dumps(env), env["correlation_id"]


@pytest.mark.parametrize("handler,why", [
    (boom, "RuntimeError: file server on fire"),
    (boom_async, "RuntimeError: file server on fire"),
    (lambda *a: "not bytes", "returned str, not bytes"),
    (lambda *a: None, "returned NoneType, not bytes"),
])
def test_failing_download_handler_is_download_failed(handler, why):
    msg, cid = link_message("mem://store/k/p")
    calls = []

    def counted(*args):
        calls.append(args)
        return handler(*args)

    with pytest.raises(nb.DownloadFailedError) as info:
        nb.smartreceive_sync(msg, fileserver_download_handler=counted, allowed_origins=["mem://store"])
    assert why in str(info.value)
    assert info.value.code == "DOWNLOAD_FAILED" and info.value.correlation_id == cid
    assert len(calls) == 1  # fatal: the handler does its own retries
    with pytest.raises(nb.DownloadFailedError, match="file server on fire"):
        run(nb.smartreceive(msg, fileserver_download_handler=boom_async, allowed_origins=["mem://store"]))


def test_download_handler_result_is_checked(nats_url):
    msg, _ = link_message("mem://store/k/p", b"payload")
    # wrong size
    with pytest.raises(nb.ChecksumMismatchError):
        nb.smartreceive_sync(msg, fileserver_download_handler=lambda *a: b"other bytes", allowed_origins="mem://store")
    # a URL outside the allowed origins: the handler is never called
    called = []
    with pytest.raises(nb.UrlNotAllowedError):
        nb.smartreceive_sync(msg, fileserver_download_handler=lambda *a: called.append(a),
                             allowed_origins=["mem://elsewhere", "http://store"])
    assert called == []
    # memoryview results are fine
    got = nb.smartreceive_sync(msg, fileserver_download_handler=lambda *a: memoryview(b"payload"),
                               allowed_origins=["mem:"])
    assert got["payloads"] == [("p", b"payload", "binary")]


def test_failing_download_handler_on_a_connection(nats_url):
    store = MemStore()

    async def go():
        async with nb.connect(nats_url, fileserver_upload_handler=store.upload, fileserver_download_handler=boom,
                              allowed_origins=["mem://store"]) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            await nc.smartsend(subj, PAYLOADS, size_threshold=300, correlation_id="cid-down")
            with pytest.raises(nb.DownloadFailedError) as info:
                await sub.next(timeout=10)
            # the subscription goes on
            await nc.smartsend(subj, [("ok", "fine", "text")])
            return info.value, await sub.next(timeout=10)

    e, after = run(go())
    assert "file server on fire" in str(e) and e.correlation_id == "cid-down"
    assert after["payloads"] == [("ok", "fine", "text")]


def test_handler_argument_errors(nats_url):
    with pytest.raises(nb.InvalidArgumentError, match="must be callable"):
        nb.connect_sync(nats_url, fileserver_upload_handler="not callable")
    with pytest.raises(nb.InvalidArgumentError, match="must be callable"):
        nb.smartsend_sync(subject(), [("a", "b", "text")], broker_url=nats_url, fileserver_upload_handler=42)
    with pytest.raises(nb.InvalidArgumentError, match="allowed_origins"):
        nb.connect_sync(nats_url, fileserver_download_handler=MemStore().download)
    with pytest.raises(nb.InvalidArgumentError, match="allowed_origins"):
        nb.smartreceive_sync(link_message("mem://store/k/p")[0], fileserver_download_handler=lambda *a: b"")
    with nb.connect_sync(nats_url) as nc:
        with pytest.raises(nb.InvalidArgumentError, match="connect"):
            nb.smartreceive_sync(b"{}", connection=nc, fileserver_download_handler=lambda *a: b"",
                                 allowed_origins=["mem:"])
        with pytest.raises(nb.InvalidArgumentError, match="broker_url"):
            nc.smartsend_sync(subject(), [("a", "b", "text")], broker_url=nats_url)
    with pytest.raises(nb.InvalidArgumentError, match="unknown smartreceive option"):
        nb.smartreceive_sync(b"{}", no_such_option=1)
    with pytest.raises(nb.InvalidArgumentError, match="unknown smartreceive option \"retries\""):
        nb.smartreceive_sync(b"{}", retries=2)  # the old name: max_retries now
    with pytest.raises(nb.InvalidArgumentError, match="base_delay"):
        nb.smartreceive_sync(b"{}", base_delay=-1)


# ---- reply / reply_error ------------------------------------------------------------------------

def test_reply_round_trip(nats_url):
    async def go():
        async with nb.connect(nats_url, sender_name="server") as server, \
                nb.connect(nats_url, sender_name="client") as client:
            subj = subject()
            sub = await server.subscribe(subj)

            async def serve():
                req = await sub.next(timeout=10)
                (_, q, _), = req["payloads"]
                env, _ = await server.reply(req, [("answer", {"n": q["n"] + 1}, "dictionary")],
                                            metadata={"served": True})
                return req, env

            task = asyncio.ensure_future(serve())
            reply = await client.request(subj, [("q", {"n": 41}, "dictionary")], timeout=10)
            req, sent = await task
            return client.sender_id, req, sent, reply

    client_id, req, sent, reply = run(go())
    assert reply["payloads"] == [("answer", {"n": 42}, "dictionary")]
    assert reply["msg_purpose"] == "ACK"
    assert reply["correlation_id"] == req["correlation_id"]
    assert reply["reply_to_msg_id"] == req["msg_id"]
    assert reply["receiver_name"] == "client" and reply["receiver_id"] == client_id
    assert reply["sender_name"] == "server"
    assert reply["metadata"] == {"served": True}
    assert sent["send_to"] == req["reply_to"]


@pytest.mark.parametrize("code,cls", [
    ("INVALID_PAYLOAD_TYPE", nb.InvalidPayloadTypeError),
    (nb.DownloadFailedError, nb.DownloadFailedError),
    ("TIMEOUT", nb.TimeoutError),
])
def test_reply_error_raises_at_the_requester(nats_url, code, cls):
    async def go():
        async with nb.connect(nats_url) as server, nb.connect(nats_url) as client:
            subj = subject()
            sub = await server.subscribe(subj)

            async def serve():
                req = await sub.next(timeout=10)
                env, _ = await server.reply_error(req, code, "rows must be a list")
                return req, env

            task = asyncio.ensure_future(serve())
            with pytest.raises(nb.NATSBridgeError) as info:
                await client.request(subj, [("q", "?", "text")], timeout=10)
            req, nack = await task
            return req, nack, info.value

    req, nack, e = run(go())
    assert type(e) is cls
    assert e.code == cls.code
    assert "rows must be a list" in str(e)
    assert e.correlation_id == req["correlation_id"]
    assert nack["msg_purpose"] == "NACK" and nack["error"]["code"] == cls.code
    assert nack["error"]["message"] == "rows must be a list"
    assert nack["reply_to_msg_id"] == req["msg_id"]


def test_reply_sync_twins_with_threads(nats_url):
    with nb.connect_sync(nats_url) as server, nb.connect_sync(nats_url) as client:
        subj = subject()
        sub = server.subscribe_sync(subj)

        def serve():
            for _ in range(2):
                req = sub.next_sync(timeout=10)
                (_, text, _), = req["payloads"]
                if text == "fail":
                    server.reply_error_sync(req, nb.PayloadTooLargeError, "too big for me")
                else:
                    server.reply_sync(req, [("echo", text.upper(), "text")])

        t = threading.Thread(target=serve)
        t.start()
        reply = client.request_sync(subj, [("q", "hello", "text")], timeout=10)
        with pytest.raises(nb.PayloadTooLargeError, match="too big for me"):
            client.request_sync(subj, [("q", "fail", "text")], timeout=10)
        t.join(10)
    assert reply["payloads"] == [("echo", "HELLO", "text")]


def test_reply_to_a_nats_reply_subject(nats_url):
    """A seeds-style requester (nats-py request, empty reply_to): the reply goes to msg.reply."""
    import nats

    async def go():
        raw = await nats.connect(nats_url)
        async with nb.connect(nats_url) as server:
            subj = subject()
            sub = await server.subscribe(subj)

            async def serve():
                req = await sub.next(timeout=10)
                assert req["reply_to"] == "" and req["reply"]
                await server.reply(req, [("pong", "ok", "text")])

            task = asyncio.ensure_future(serve())
            env = peer.envelope(subj, [("ping", "?", "text")], nats_url)
            msg = await raw.request(subj, json.dumps(env).encode(), timeout=10)
            await task
        await raw.close()
        return env, peer.receive(msg.data)

    env, reply = run(go())
    assert reply["payloads"] == [("pong", "ok", "text")]
    assert reply["correlation_id"] == env["correlation_id"] and reply["reply_to_msg_id"] == env["msg_id"]


def test_reply_argument_errors(nats_url):
    with nb.connect_sync(nats_url) as nc:
        with pytest.raises(nb.InvalidEnvelopeError):  # no reply_to and no NATS reply subject
            nc.reply_sync({"correlation_id": "c", "msg_id": "m", "reply_to": ""}, [("a", "b", "text")])
        with pytest.raises(nb.InvalidArgumentError, match="unknown error code"):
            nc.reply_error_sync({"correlation_id": "c", "reply_to": "x"}, "NOPE", "m")
        with pytest.raises(nb.InvalidArgumentError, match="correlation_id"):
            nc.reply_sync({"reply_to": "x"}, [])
        with pytest.raises(nb.InvalidArgumentError, match="not a string"):
            nc.reply_sync({"correlation_id": 5, "reply_to": "x"}, [])
        with pytest.raises(nb.InvalidArgumentError, match="envelope dict"):
            nc.reply_sync("not an envelope", [])


# ---- the GIL ---------------------------------------------------------------------------------------

def test_gil_released_during_a_large_send(nats_url):
    """While smartsend_sync moves 64 MB to the object store, another Python thread runs.

    The spinner yields the GIL every 100 increments, so if the send held the GIL the counter
    could move by a few hundred at most (one or two hand-offs before the call). Released, it
    moves by hundreds of thousands while the send hashes and uploads.
    """
    data = b"\x5a" * (64 << 20)
    counter = [0]
    stop = threading.Event()
    running = threading.Event()

    def spin():
        n = 0
        running.set()
        while not stop.is_set():
            for _ in range(100):
                n += 1
            counter[0] = n
            time.sleep(0)  # let a waiting thread have the GIL

    with nb.connect_sync(nats_url, max_download_bytes=1 << 30) as nc:
        t = threading.Thread(target=spin, daemon=True)
        t.start()
        assert running.wait(5)
        try:
            before = counter[0]
            env, _ = nc.smartsend_sync(subject(), [("big", data, "binary")])
            during = counter[0] - before
        finally:
            stop.set()
            t.join(5)
    assert env["payloads"][0]["transport"] == "link"
    assert env["payloads"][0]["data"].startswith("nats-obj://")
    assert during > 5_000, f"the counter moved by {during} during the send"
