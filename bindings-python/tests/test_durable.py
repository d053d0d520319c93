"""JetStream mode from Python against a real nats-server: durable publish, streams, durable
consumers and their settlement, dead letters, the sweep (spec/PROTOCOL.md §12)."""

import asyncio
import inspect
import uuid

import nats
import pytest

import natsbridge as nb

try:
    import pandas as pd
except ImportError:
    pd = None


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def stream_name():
    return "PY" + uuid.uuid4().hex[:10].upper()


def test_durable_publish_consume_and_settle(nats_url):
    async def main():
        name = stream_name()
        async with await nb.connect(nats_url, jetstream=True) as nc:
            summary = await nc.add_stream(name)
            assert summary["subjects"] == [f"{name}.>"] and summary["dead_letter_stream"] == f"{name}_DEAD_LETTER"
            env1, _ = await nc.smartsend(f"{name}.x", [("msg", "one", "text")])
            env2, _ = await nc.smartsend(f"{name}.x", [("msg", "two", "text")])
            assert env1["pub_ack"] == {"stream": name, "sequence": 1, "duplicate": False}
            assert env2["pub_ack"]["sequence"] == 2

            consumer = await nc.consume(name, "worker", ack_wait=2)
            first = await consumer.next(timeout=10)
            assert first.envelope["payloads"][0][1] == "one"
            assert first.envelope["msg_id"] == env1["msg_id"]
            assert (first.info["stream_sequence"], first.info["delivered"], first.info["redelivered"]) == (1, 1, False)
            await first.ack()
            with pytest.raises(nb.InvalidArgumentError):
                await first.ack()
            second = await consumer.next(timeout=10)
            await second.nak()
            again = await consumer.next(timeout=10)
            assert (again.info["stream_sequence"], again.info["delivered"], again.info["redelivered"]) == (2, 2, True)
            await again.in_progress()
            await again.ack()
            with pytest.raises(nb.TimeoutError):
                await consumer.next(timeout=0.5)

            # A new consumer with the same durable name resumes after what was acked.
            await nc.smartsend(f"{name}.x", [("msg", "three", "text")])
            resumed = await nc.consume(name, "worker", ack_wait=2)
            async for d in resumed:
                assert (d.envelope["payloads"][0][1], d.info["stream_sequence"]) == ("three", 3)
                await d.ack()
                break
    run(main())


def test_an_uncaptured_subject_is_invalid_argument_and_nothing_is_sent(nats_url):
    async def main():
        async with await nb.connect(nats_url, jetstream=True) as nc:
            sub = await nc.subscribe("nostream.py")
            with pytest.raises(nb.InvalidArgumentError, match="no JetStream stream captures"):
                await nc.smartsend("nostream.py", [("msg", "lost?", "text")])
            with pytest.raises(nb.TimeoutError):
                await sub.next(timeout=0.3)
            with pytest.raises(nb.InvalidArgumentError):
                await nc.add_stream("BAD", retention="queue")
            with pytest.raises(nb.InvalidArgumentError):
                await nc.consume("NOSUCHSTREAM", "w")
            with pytest.raises(nb.InvalidArgumentError):
                await nc.consume("NOSUCHSTREAM", "w", ackwait=1)
    run(main())


def test_what_never_decodes_is_dead_lettered_and_never_yielded(nats_url):
    async def main():
        name = stream_name()
        garbage = b'{"correlation_id": "c-py", "payloads": 7}'
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name)
            raw = await nats.connect(nats_url)
            await raw.jetstream().publish(f"{name}.x", garbage)
            await raw.close()
            await nc.smartsend(f"{name}.x", [("msg", "fine", "text")])
            consumer = await nc.consume(name, "w", ack_wait=1)
            good = await consumer.next(timeout=10)
            assert good.info["stream_sequence"] == 2 and good.envelope["payloads"][0][1] == "fine"
            await good.ack()
            dead = await nc.consume(f"{name}_DEAD_LETTER", "audit")
            letter = await dead.next(timeout=10)
            env = letter.envelope
            assert env["msg_purpose"] == "NACK" and env["correlation_id"] == "c-py"
            assert env["error"]["code"] == "INVALID_ENVELOPE"
            assert env["error"]["details"]["stream_sequence"] == 1
            assert env["payloads"][0] == ("original_message", garbage, "binary")
    run(main())


@pytest.mark.skipif(pd is None, reason="pandas not installed")
def test_a_linked_table_through_a_work_queue_and_the_sweep(nats_url):
    async def main():
        name = stream_name()
        frame = pd.DataFrame({"id": list(range(50)), "v": [i / 3 for i in range(50)]})
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, retention="workqueue", max_age=600)
            env, _ = await nc.smartsend(f"{name}.t", [("table", frame, "arrowtable")], size_threshold=1)
            assert env["payloads"][0]["transport"] == "link"
            report = await nc.sweep_links(name, min_age=0)
            assert (report["checked"], report["orphans"], report["dry_run"]) == (1, [], True)
            consumer = await nc.consume(name, "w")
            d = await consumer.next(timeout=10)
            pd.testing.assert_frame_equal(d.envelope["payloads"][0][1], frame)
            await d.ack()  # work queue: the link object goes with the final ack
            assert (await nc.sweep_links(name, min_age=0))["checked"] == 0
    run(main())


def test_the_sync_api(nats_url):
    name = stream_name()
    with nb.connect_sync(nats_url, jetstream=True) as nc:
        nc.add_stream_sync(name, storage="memory")
        env, _ = nc.smartsend_sync(f"{name}.s", [("msg", {"k": 1}, "dictionary")])
        consumer = nc.consume_sync(name, "w")
        for d in consumer:
            assert d.envelope["payloads"][0][1] == {"k": 1}
            assert d.envelope["msg_id"] == env["msg_id"]
            d.ack_sync()
            break
        assert nc.sweep_links_sync(name)["dry_run"] is True


def test_stream_and_consume_options_are_core_names():
    doc = inspect.getdoc(nb.Connection.add_stream)
    for name in nb.STREAM_OPTION_NAMES:
        assert f"``{name}``" in doc, name
    doc = inspect.getdoc(nb.Connection.consume)
    for name in nb.CONSUME_OPTION_NAMES:
        assert f"``{name}``" in doc, name
