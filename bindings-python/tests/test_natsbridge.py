"""The Python binding against a real nats-server (fixture in conftest.py)."""

import asyncio
import json
import threading
import time
import uuid

import pytest

import natsbridge as nb
from conftest import nats_py_subscribe
import peer

try:
    import pyarrow as pa
except ImportError:  # arrow tests are skipped
    pa = None
try:
    import pandas as pd
except ImportError:
    pd = None

needs_arrow = pytest.mark.skipif(pa is None, reason="pyarrow not installed")
needs_pandas = pytest.mark.skipif(pa is None or pd is None, reason="pandas/pyarrow not installed")


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def subject():
    return f"test.py.{uuid.uuid4().hex}"


def arrow_table():
    return pa.table({"id": [1, 2, 3], "name": ["a", "b", None], "x": [0.5, 1.5, 2.5]})


SAMPLES = {
    "text": "héllo wörld ✓",
    "dictionary": {"a": [1, 2.5, None, True, False], "b": {"c": "d"}, "big": 2**63 - 1, "s": ""},
    "jsontable": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}],
    "image": bytes(range(256)) * 4,
    "audio": b"\x00\x01RIFF" * 100,
    "video": bytearray(b"\xff\x00" * 300),
    "binary": memoryview(b"\x00binary\xff" * 50),
    "arrowtable": None,  # filled in by the test (needs pyarrow)
}


def expected(value):
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


@pytest.mark.parametrize("threshold,transport", [(None, "direct"), (1, "link")])
@pytest.mark.parametrize("ptype", list(SAMPLES))
def test_every_payload_type_both_transports(nats_url, ptype, threshold, transport):
    if ptype == "arrowtable" and pa is None:
        pytest.skip("pyarrow not installed")
    value = arrow_table() if ptype == "arrowtable" else SAMPLES[ptype]

    async def go():
        async with nb.connect(nats_url, arrow="pyarrow") as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env, msg_json = await nc.smartsend(subj, [("p", value, ptype)], size_threshold=threshold)
            assert env["payloads"][0]["transport"] == transport
            assert json.loads(msg_json)["payloads"][0]["transport"] == transport
            got = await sub.next(timeout=10)
            return env, got

    env, got = run(go())
    assert got["correlation_id"] == env["correlation_id"]
    assert got["transports"] == [transport]
    (name, data, t), = got["payloads"]
    assert (name, t) == ("p", ptype)
    if ptype == "arrowtable":
        assert data.equals(value)
    else:
        assert data == expected(value)
        assert type(data) is type(expected(value))


def test_multi_payload_order_and_mixed_transports(nats_url):
    big = b"\x07" * 600_000  # over the default 500 kB threshold: goes by link
    payloads = [
        ("first", "one", "text"),
        ("second", {"n": 2}, "dictionary"),
        ("blob", big, "binary"),
        ("rows", [{"r": 1}], "jsontable"),
        ("last", b"\x00", "image"),
    ]

    async def go():
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            await nc.smartsend(subj, payloads)
            return await sub.next(timeout=10)

    got = run(go())
    assert got["payloads"] == payloads
    assert got["transports"] == ["direct", "direct", "link", "direct", "direct"]


@needs_pandas
def test_arrow_inputs_and_outputs(nats_url):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    async def go():
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            await nc.smartsend(subj, [
                ("from_pandas", df, "arrowtable"),
                ("from_stream", pa.RecordBatchReader.from_batches(
                    arrow_table().schema, arrow_table().to_batches()), "arrowtable"),
                ("rows_from_df", df, "jsontable"),
            ])
            raw = await sub.next(timeout=10)
            await nc.smartsend(subj, [("t", arrow_table(), "arrowtable")])
            return raw, await sub.next(timeout=10)

    got, second = run(go())
    (_, out_df, _), (_, out_stream, _), (_, rows, _) = got["payloads"]
    assert isinstance(out_df, pd.DataFrame)  # pandas by default
    pd.testing.assert_frame_equal(out_df, df)
    assert out_stream.equals(arrow_table().to_pandas())
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    # the same message re-decoded as pyarrow / raw IPC
    assert isinstance(second["payloads"][0][1], pd.DataFrame)


@needs_arrow
def test_arrow_output_choices():
    env, msg_json = None, None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, arrow_table().schema) as w:
        w.write_table(arrow_table())
    msg = json.dumps(peer.envelope("s", [("t", sink.getvalue().to_pybytes(), "arrowtable")]))
    assert nb.smartreceive_sync(msg, arrow="pyarrow")["payloads"][0][1].equals(arrow_table())
    assert nb.smartreceive_sync(msg, arrow="ipc")["payloads"][0][1] == sink.getvalue().to_pybytes()
    try:
        import polars
    except ImportError:
        return
    assert isinstance(nb.smartreceive_sync(msg, arrow="polars")["payloads"][0][1], polars.DataFrame)


@needs_arrow
def test_arrowtable_from_row_dicts(nats_url):
    """A list of row dicts is an arrowtable too: core infers the schema and builds the IPC stream."""
    rows = [{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": "b", "score": 1.5}]
    with nb.connect_sync(nats_url, arrow="pyarrow") as nc:
        sub = nc.subscribe_sync(subj := subject())
        nc.smartsend_sync(subj, [("rows", rows, "arrowtable")])
        got = sub.next_sync(timeout=10)
    table = got["payloads"][0][1]
    assert table.to_pylist() == rows
    assert table.schema.field("id").type == pa.int64()


def test_header_fields_and_options(nats_url):
    async def go():
        async with nb.connect(nats_url, sender_name="conn-name") as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env, _ = await nc.smartsend(subj, [("m", "x", nb.TEXT)], correlation_id="cid-1", msg_purpose=nb.COMMAND,
                                        receiver_name="rx", receiver_id="rid", reply_to="r.s", reply_to_msg_id="m0",
                                        metadata={"k": [1, "v"]})
            return nc.sender_id, env, await sub.next(timeout=10)

    sender_id, env, got = run(go())
    for key, value in {"correlation_id": "cid-1", "msg_purpose": "command", "sender_name": "conn-name",
                       "sender_id": sender_id, "receiver_name": "rx", "receiver_id": "rid", "reply_to": "r.s",
                       "reply_to_msg_id": "m0", "metadata": {"k": [1, "v"]}}.items():
        assert got[key] == value, key
        assert env[key] == value, key
    assert got["subject"] == got["send_to"]
    # smartreceive of the bytes (built from a view of the message, no owned envelope) gives the
    # same dict, key for key and in the same order, as the subscription (built from core's
    # envelope), without the route it has no way to know; escapes and an error body included.
    direct = nb.smartreceive_sync(json.dumps(env).encode())
    routed = {k: v for k, v in got.items() if k not in ("subject", "reply")}
    assert list(direct.items()) == list(routed.items())
    escaped = dict(env, sender_name="é \"q\" \\ \u2603", error={"code": "TIMEOUT", "message": "m", "details": [1]})
    assert nb.smartreceive_sync(json.dumps(escaped).encode())["sender_name"] == escaped["sender_name"]
    assert nb.smartreceive_sync(json.dumps(escaped).encode())["error"] == escaped["error"]


# ---- errors --------------------------------------------------------------------------------------

def test_every_core_code_has_a_subclass():
    assert sorted(nb.ERRORS) == sorted(nb._natsbridge.error_codes())
    assert len(nb.ERRORS) == 12
    for code, cls in nb.ERRORS.items():
        assert issubclass(cls, nb.NATSBridgeError) and cls.code == code
    # a caller mistake is also a ValueError, as Python code expects of a bad argument
    assert nb.ERRORS["INVALID_ARGUMENT"] is nb.InvalidArgumentError
    assert issubclass(nb.InvalidArgumentError, ValueError)
    assert not any(issubclass(cls, ValueError) for code, cls in nb.ERRORS.items() if code != "INVALID_ARGUMENT")


@pytest.mark.parametrize("payloads", [
    [("a", "x", "nope")],                   # unknown payload type
    [("a", b"\xff\xfe", "text")],            # data does not fit the type (not UTF-8)
    [("a", {"k": 1}, "jsontable")],         # not rows
    [("a", {"k": float("nan")}, "dictionary")],
    [("a", object(), "dictionary")],
    [("ok", "fine", "text"), ("a", "str", "binary")],  # one bad payload of two
    [("a", b"not arrow ipc", "arrowtable")],
    ["not a tuple"],
])
def test_bad_input_raises_before_publishing(nats_url, payloads):
    import nats

    async def go():
        raw = await nats.connect(nats_url)
        subj = subject()
        sub = await nats_py_subscribe(raw, subj)
        async with nb.connect(nats_url) as nc:
            with pytest.raises(nb.InvalidPayloadTypeError) as info:
                await nc.smartsend(subj, payloads)
        with pytest.raises(nb.InvalidPayloadTypeError):
            await nb.smartsend(subj, payloads, broker_url=nats_url)
        with pytest.raises(nats.errors.TimeoutError):  # nothing was published
            await sub.next_msg(timeout=0.3)
        await raw.close()
        return info.value

    err = run(go())
    assert err.code == "INVALID_PAYLOAD_TYPE"


def test_error_carries_correlation_id(nats_url):
    async def go():
        async with nb.connect(nats_url) as nc:
            await nc.smartsend(subject(), [("a", b"not arrow ipc", "arrowtable")], correlation_id="cid-err")

    with pytest.raises(nb.InvalidPayloadTypeError) as info:
        run(go())
    assert info.value.correlation_id == "cid-err"


@pytest.mark.parametrize("msg", [b"not json", b"[]", b'{"payloads": 3}'])
def test_malformed_message_is_invalid_envelope(msg):
    with pytest.raises(nb.InvalidEnvelopeError) as info:
        nb.smartreceive_sync(msg)
    assert info.value.code == "INVALID_ENVELOPE"
    with pytest.raises(nb.InvalidEnvelopeError):
        run(nb.smartreceive(msg))


def test_bad_base64_is_deserialization_error():
    env = peer.envelope("s", [("a", "hi", "text")])
    env["payloads"][0]["data"] = "!!!"
    with pytest.raises(nb.NATSBridgeError) as info:
        nb.smartreceive_sync(json.dumps(env))
    assert info.value.code in ("DESERIALIZATION_ERROR", "INVALID_ENVELOPE")
    assert info.value.correlation_id == env["correlation_id"]


def test_no_server_is_connection_failed(dead_url):
    with pytest.raises(nb.NatsConnectionFailedError) as info:
        run(nb.connect(dead_url, connect_timeout=1, max_reconnect_attempts=0))
    assert info.value.code == "NATS_CONNECTION_FAILED"
    with pytest.raises(nb.NatsConnectionFailedError):
        nb.smartsend_sync("s", [("a", "x", "text")], broker_url=dead_url)


def test_receive_timeout_and_no_responders(nats_url):
    async def go():
        async with nb.connect(nats_url) as nc:
            sub = await nc.subscribe(subject())
            with pytest.raises(nb.TimeoutError) as info:
                await sub.next(timeout=0.2)
            assert info.value.code == "TIMEOUT"
            with pytest.raises(nb.TimeoutError):
                await nc.request(subject(), [("q", "?", "text")], timeout=2)

    run(go())


def test_cancel_pending_receive(nats_url):
    async def go():
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            pending = asyncio.ensure_future(sub.next())
            await asyncio.sleep(0.2)
            assert not pending.done()
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            # the subscription is still usable after the cancelled receive
            await nc.smartsend(subj, [("after", "cancel", "text")])
            got = await sub.next(timeout=5)
            assert got["payloads"] == [("after", "cancel", "text")]
            # and an async-for loop can be cancelled with wait_for
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.__anext__(), 0.2)

    run(go())


# ---- request / reply, queue groups ---------------------------------------------------------------

def test_request_reply_and_queue_group(nats_url):
    async def go():
        async with nb.connect(nats_url) as server, nb.connect(nats_url) as client:
            subj = subject()
            workers = [await server.subscribe(subj, queue="q"), await server.subscribe(subj, queue="q")]

            async def serve(sub):
                async for req in sub:
                    (_, n, _), = req["payloads"]
                    await server.smartsend(req["reply_to"], [("answer", {"n": n["n"] + 1}, "dictionary")],
                                           msg_purpose=nb.ACK, reply_to_msg_id=req["msg_id"],
                                           correlation_id=req["correlation_id"])

            tasks = [asyncio.ensure_future(serve(w)) for w in workers]
            replies = [await client.request(subj, [("q", {"n": i}, "dictionary")], timeout=5) for i in range(6)]
            for t in tasks:
                t.cancel()
            return replies

    replies = run(go())
    assert [r["payloads"][0][1]["n"] for r in replies] == [1, 2, 3, 4, 5, 6]
    assert all(r["msg_purpose"] == "ACK" for r in replies)


# ---- sync twins and the one-call style ---------------------------------------------------------

def test_sync_twins(nats_url):
    with nb.connect_sync(nats_url) as nc:
        subj = subject()
        sub = nc.subscribe_sync(subj)
        env, msg_json = nc.smartsend_sync(subj, [("a", "sync", "text"), ("b", b"\x01" * 10, "binary")],
                                          size_threshold=5)
        got = sub.next_sync(timeout=5)
        assert got["payloads"] == [("a", "sync", "text"), ("b", b"\x01" * 10, "binary")]
        assert got["transports"] == ["direct", "link"]
        again = nc.smartreceive_sync(msg_json.encode())
        assert again["payloads"] == got["payloads"]
        nc.smartsend_sync(subj, [("c", "iter", "text")])
        assert next(iter(sub))["payloads"] == [("c", "iter", "text")]
        sub.unsubscribe_sync()
        assert sub.next_sync(timeout=1) is None


def test_send_result_is_the_pair_env_msg_json(nats_url):
    """A send returns (env, msg_json) as a SendResult: it unpacks, indexes and compares as that
    tuple, and each part, once built, is the same object on every read."""
    with nb.connect_sync(nats_url) as nc:
        sent = nc.smartsend_sync(subject(), [("a", "x", "text")], correlation_id="c-sent")
        assert isinstance(sent, nb.SendResult) and len(sent) == 2
        env, msg_json = sent
        assert env["correlation_id"] == "c-sent" and env["payloads"][0]["data"] == "eA=="
        assert json.loads(msg_json) == env
        assert sent[0] is sent.env is env and sent[1] is sent[-1] is sent.msg_json is msg_json
        assert sent[-2] is env
        assert sent == (env, msg_json) and list(sent) == [env, msg_json]
        with pytest.raises(IndexError):
            sent[2]
        assert repr(sent).startswith("SendResult({'correlation_id': 'c-sent'")


def test_a_call_finished_at_once_is_an_awaitable_of_its_result(nats_url):
    """A send or receive that completes at the call returns an awaitable holding the result (no
    event-loop future): `await` gives the result or raises the error, once; `gather`, `wait_for`
    and `ensure_future` take it like any awaitable."""
    async def main():
        async with await nb.connect(nats_url) as nc:
            call = nc.smartsend(subject(), [("a", "x", "text")], correlation_id="c-ready")
            assert call.done()
            env, msg_json = await call
            assert env["correlation_id"] == "c-ready" and json.loads(msg_json) == env
            with pytest.raises(RuntimeError, match="twice"):
                await call
            sent = await asyncio.gather(*(nc.smartsend(subject(), [("i", str(i), "text")]) for i in range(3)))
            assert [json.loads(s.msg_json)["payloads"][0]["data"] for s in sent] == ["MA==", "MQ==", "Mg=="]
            got = await asyncio.wait_for(nb.smartreceive(sent[1].msg_json.encode()), 2)
            assert got["payloads"] == [("i", "1", "text")]
            assert (await asyncio.ensure_future(nc.smartsend(subject(), [("a", "y", "text")]))).env["payloads"]
            with pytest.raises(nb.InvalidEnvelopeError):
                await nb.smartreceive(b"{not json")

    asyncio.run(main())


def test_sends_made_before_the_coroutine_yields_go_out_together_at_the_next_turn(nats_url):
    """`await nc.smartsend(...)`: the first send of a burst goes out at once (a lone request or
    reply waits for nothing); the sends after it are handed to the connection together at the
    event loop's next turn (as nats-py's publishes wait for its flusher), in order, and a burst
    larger than the queue goes out by itself."""
    async def main():
        async with await nb.connect(nats_url) as nc, await nb.connect(nats_url) as rx:
            subj = subject()
            sub = await rx.subscribe(subj)
            for i in range(3):
                await nc.smartsend(subj, [("m", str(i), "text")])
            # Blocking, so this coroutine has not yielded: the first is out, the other two queued.
            assert sub.next_sync(2)["payloads"][0][1] == "0"
            with pytest.raises(nb.TimeoutError):
                sub.next_sync(0.3)
            got = [(await sub.next(2))["payloads"][0][1] for _ in range(2)]
            assert got == ["1", "2"]
            # 1,000 sends without yielding: the queue hands itself over each time it is full.
            for i in range(1000):
                await nc.smartsend(subj, [("m", str(i), "text")])
            unyielded = [sub.next_sync(2)["payloads"][0][1] for _ in range(100)]
            assert unyielded == [str(i) for i in range(100)], "only full queues can have sent these"
            rest = [(await sub.next(2))["payloads"][0][1] for _ in range(900)]
            assert rest == [str(i) for i in range(100, 1000)]
            # A send that is not awaited at all goes out too.
            nc.smartsend(subj, [("m", "unawaited", "text")])
            assert (await sub.next(2))["payloads"][0][1] == "unawaited"

    asyncio.run(main())


def test_unsubscribe_ends_a_pending_wait(nats_url):
    """A `next` waiting without a timeout does not hold up `unsubscribe`: it returns None."""
    async def main():
        async with await nb.connect(nats_url) as nc:
            sub = await nc.subscribe(subject())
            task = asyncio.create_task(sub.next())
            await asyncio.sleep(0.2)  # the wait is under way
            await asyncio.wait_for(sub.unsubscribe(), 2)
            assert await asyncio.wait_for(task, 2) is None

        with nb.connect_sync(nats_url) as nc:
            sub = nc.subscribe_sync(subject())
            done = []
            waiter = threading.Thread(target=lambda: done.append(sub.next_sync()))
            waiter.start()
            time.sleep(0.2)  # next_sync blocks without the GIL
            sub.unsubscribe_sync()
            waiter.join(2)
            assert done == [None]
    run(main())


def test_async_for_takes_what_is_waiting_in_one_call_and_bad_messages_raise_in_turn(nats_url):
    """`async for` takes every envelope already waiting in one native call and hands them out
    in order; a message that fails to decode raises its error in its turn and the iteration
    goes on; unsubscribe drops what was taken but not handed out."""
    import nats

    async def main():
        async with await nb.connect(nats_url) as nc:
            raw = await nats.connect(nats_url)
            sub = await nc.subscribe(subj := subject())
            # One connection publishes all six, so they arrive in this order.
            good = [(await nc.smartsend(subj + ".unheard", [("n", i, "dictionary")])).msg_json.encode()
                    for i in range(5)]
            for message in good[:3] + [b"not json"] + good[3:]:
                await raw.publish(subj, message)
            await raw.flush()
            await asyncio.sleep(0.3)  # all six are waiting in the subscription
            got = []
            async for env in sub:
                got.append(env["payloads"][0][1])
                if len(got) == 1:
                    assert len(sub._ready) == 5, "the other five came with the first"
                if len(got) == 3:
                    break
            with pytest.raises(nb.InvalidEnvelopeError):
                await sub.__anext__()
            async for env in sub:
                got.append(env["payloads"][0][1])
                if len(got) == 5:
                    break
            assert got == [0, 1, 2, 3, 4]
            await nc.smartsend(subj, [("n", 5, "dictionary")])
            assert (await asyncio.wait_for(sub.__anext__(), 5))["payloads"][0][1] == 5
            await sub.unsubscribe()
            assert await sub.next(timeout=1) is None
            await raw.drain()
    run(main())


def test_a_cancelled_await_drops_its_work(nats_url):
    """Cancelling an awaitable whose work runs on the runtime drops that work: a cancelled
    `next` takes no message, so the following `next` gets it."""
    async def main(url):
        async with await nb.connect(url) as nc:
            sub = await nc.subscribe(subj := subject())
            waiting = asyncio.ensure_future(sub.next())
            await asyncio.sleep(0.1)  # pending on the runtime
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await nc.smartsend(subj, [("m", "kept", "text")])
            assert (await sub.next(timeout=5))["payloads"] == [("m", "kept", "text")]
    run(main(nats_url))


def test_many_awaits_complete_together(nats_url):
    """Results that finish on the runtime at once reach the event loop in batches; each goes to
    its own awaitable."""
    async def main():
        async with await nb.connect(nats_url) as nc:
            sub = await nc.subscribe(subj := subject())

            async def responder():
                async for env in sub:
                    await nc.reply(env, [("n", env["payloads"][0][1], "dictionary")])

            serving = asyncio.create_task(responder())
            replies = await asyncio.gather(*(nc.request(subj, [("n", i, "dictionary")]) for i in range(300)))
            assert [r["payloads"][0][1] for r in replies] == list(range(300))
            serving.cancel()
    run(main())


def test_one_call_style_with_link(nats_url):
    import nats

    async def go():
        raw = await nats.connect(nats_url)
        subj = subject()
        sub = await nats_py_subscribe(raw, subj)
        env, msg_json = await nb.smartsend(subj, [("big", b"\x05" * 1000, "binary"), ("t", "small", "text")],
                                           broker_url=nats_url, size_threshold=100)
        msg = await sub.next_msg(timeout=5)
        got = await nb.smartreceive(msg, broker_url=nats_url)  # a nats-py Msg: its .data is read
        await raw.close()
        return env, msg, got

    env, msg, got = run(go())
    assert [p["transport"] for p in env["payloads"]] == ["link", "direct"]
    assert got["payloads"] == [("big", b"\x05" * 1000, "binary"), ("t", "small", "text")]
    assert got["transports"] == ["link", "direct"]


# ---- wire compatibility with a hand-written nats-py + json + base64 peer -----------------------

PEER_PAYLOADS = [
    ("msg", "Hello World ✓", "text"),
    ("cfg", {"a": 1, "b": [True, None, 2.5], "c": {"d": "e"}}, "dictionary"),
    ("rows", [{"x": 1}, {"x": 2}], "jsontable"),
    ("img", bytes(range(256)), "image"),
    ("bin", b"\x00\xff" * 33, "binary"),
]


def test_peer_to_natsbridge(nats_url):
    import nats

    async def go():
        raw = await nats.connect(nats_url)
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env = peer.envelope(subj, PEER_PAYLOADS, nats_url)
            await raw.publish(subj, json.dumps(env).encode())
            await raw.flush()
            got = await sub.next(timeout=5)
        await raw.close()
        return env, got

    env, got = run(go())
    assert got["payloads"] == PEER_PAYLOADS
    assert got["correlation_id"] == env["correlation_id"]
    assert got["sender_name"] == "py-peer"
    assert got["timestamp"] == env["timestamp"]


def test_natsbridge_to_peer(nats_url):
    import nats

    async def go():
        raw = await nats.connect(nats_url)
        subj = subject()
        sub = await nats_py_subscribe(raw, subj)
        env, msg_json = await nb.smartsend(subj, PEER_PAYLOADS, broker_url=nats_url, sender_name="bridge")
        msg = await sub.next_msg(timeout=5)
        await raw.close()
        return env, msg_json, msg

    env, msg_json, msg = run(go())
    assert msg.data == msg_json.encode()
    got = peer.receive(msg.data)
    assert got["payloads"] == PEER_PAYLOADS
    assert got["correlation_id"] == env["correlation_id"]
    assert got["sender_name"] == "bridge"
    wire = json.loads(msg.data)
    assert list(wire)[:13] == ["correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
                               "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id",
                               "broker_url", "metadata"]
    for p in wire["payloads"]:
        assert p["metadata"]["payload_bytes"] == p["size"]


def test_a_closed_connection_refuses_to_send(nats_url):
    """A send after close/drain raises instead of being dropped silently by the NATS client."""
    nc = nb.connect_sync(nats_url)
    nc.close_sync()
    with pytest.raises(nb.NatsConnectionFailedError) as e:
        nc.smartsend_sync(subject(), [("m", "late", "text")], correlation_id="cid-closed")
    assert e.value.correlation_id == "cid-closed"
    with pytest.raises(nb.NatsConnectionFailedError):
        nc.subscribe_sync(subject())
