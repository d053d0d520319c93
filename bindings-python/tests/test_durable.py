"""JetStream mode from Python against a real nats-server: durable publish, streams, durable
consumers and their settlement, dead letters, the sweep (spec/PROTOCOL.md §12)."""

import asyncio
import threading
import time
import uuid

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


def text_of(delivery):
    return delivery.envelope["payloads"][0][1]


async def stored_messages(nats_url):
    """Messages in every stream of the server (the object store's bucket included), by nats-py."""
    import nats
    raw = await nats.connect(nats_url)
    try:
        return {s.config.name: s.state.messages for s in await raw.jetstream().streams_info()}
    finally:
        await raw.close()


def test_durable_publish_is_acknowledged_in_sequence(nats_url):
    async def main():
        name = stream_name()
        async with await nb.connect(nats_url, jetstream=True) as nc:
            summary = await nc.add_stream(name, storage="memory")
            assert summary["name"] == name and summary["subjects"] == [f"{name}.>"]
            assert summary["dead_letter_stream"] == f"{name}_DEAD_LETTER" and summary["messages"] == 0
            acks = [(await nc.smartsend(f"{name}.x", [("n", i, "dictionary")]))[0]["pub_ack"] for i in range(3)]
            assert acks == [{"stream": name, "sequence": i, "duplicate": False} for i in (1, 2, 3)]
            assert (await nc.add_stream(name, storage="memory"))["messages"] == 3  # an update keeps them
        async with await nb.connect(nats_url) as core:  # core NATS mode: no pub_ack key at all
            env, _ = await core.smartsend(f"{name}.x", [("n", 0, "dictionary")])
            assert "pub_ack" not in env
    run(main())


def test_an_uncaptured_subject_is_invalid_argument_and_nothing_is_stored(nats_url):
    async def main():
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(stream_name())  # so some stream exists that does not capture it
            before = await stored_messages(nats_url)
            sub = await nc.subscribe("nostream.py")
            with pytest.raises(nb.InvalidArgumentError, match="no JetStream stream captures") as e:
                # by link: the rule is checked before anything is uploaded
                await nc.smartsend("nostream.py", [("blob", b"x" * 1000, "binary")], size_threshold=1)
            assert e.value.code == "INVALID_ARGUMENT"
            with pytest.raises(nb.TimeoutError):
                await sub.next(timeout=0.3)  # no silent core-NATS publish either
            assert await stored_messages(nats_url) == before
    run(main())


def test_bad_stream_and_consume_arguments_are_invalid_argument(nats_url):
    async def main():
        async with await nb.connect(nats_url, jetstream=True) as nc:
            for call in (lambda: nc.add_stream("BAD", retention="queue"),
                         lambda: nc.add_stream("BAD", replicas=9),
                         lambda: nc.add_stream("BAD.NAME"),
                         lambda: nc.add_stream("BAD", maxage=1),
                         lambda: nc.consume("NOSUCHSTREAM", "w"),
                         lambda: nc.consume(stream_name(), "w", ackwait=1),
                         lambda: nc.consume(stream_name(), "w", ack_wait=0.01),
                         lambda: nc.consume(stream_name(), "w", deliver_from="last")):
                with pytest.raises(nb.InvalidArgumentError) as e:
                    await call()
                assert e.value.code == "INVALID_ARGUMENT"
    run(main())


def test_consume_settles_each_delivery(nats_url):
    async def main():
        name = stream_name()
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, storage="memory")
            env1, _ = await nc.smartsend(f"{name}.x", [("msg", "one", "text")], correlation_id="c-1")
            await nc.smartsend(f"{name}.x", [("msg", "two", "text")])
            await nc.smartsend(f"{name}.x", [("msg", "three", "text")])
            consumer = await nc.consume(name, "worker", ack_wait=5)

            first = await consumer.next(timeout=10)
            assert text_of(first) == "one" and first.envelope["msg_id"] == env1["msg_id"]
            assert first.envelope["correlation_id"] == "c-1"
            assert first.info == {"stream": name, "consumer": "worker", "stream_sequence": 1, "consumer_sequence": 1,
                                  "delivered": 1, "pending": 2, "replayed": False, "redelivered": False}
            await first.in_progress()
            await first.ack()
            for settle in (first.ack, first.nak, first.term, first.in_progress):
                with pytest.raises(nb.InvalidArgumentError) as e:
                    await settle()
                assert e.value.code == "INVALID_ARGUMENT"

            second = await consumer.next(timeout=10)
            assert (text_of(second), second.info["delivered"]) == ("two", 1)
            await second.nak(delay=0.2)  # seconds
            third = await consumer.next(timeout=10)
            assert text_of(third) == "three"
            await third.term()  # never again
            again = await consumer.next(timeout=10)
            assert (text_of(again), again.info["stream_sequence"]) == ("two", 2)
            assert (again.info["delivered"], again.info["redelivered"]) == (2, True)
            await again.ack()

            with pytest.raises(nb.TimeoutError) as e:
                await consumer.next(timeout=0.5)
            assert e.value.code == "TIMEOUT"
    run(main())


def test_a_stopped_consumer_resumes_after_what_was_acked(nats_url):
    async def main():
        name = stream_name()
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, storage="memory")
            for word in ("a", "b"):
                await nc.smartsend(f"{name}.x", [("msg", word, "text")])
            consumer = await nc.consume(name, "worker", ack_wait=0.5)
            seen = []
            async for d in consumer:
                seen.append(text_of(d))
                await d.ack()
                if len(seen) == 2:
                    await consumer.stop()
            assert seen == ["a", "b"]  # iteration ended with stop()
            assert await consumer.next(timeout=1) is None

            await nc.smartsend(f"{name}.x", [("msg", "c", "text")])
            resumed = await nc.consume(name, "worker", ack_wait=0.5)
            c = await resumed.next(timeout=10)
            assert (text_of(c), c.info["stream_sequence"], c.info["delivered"]) == ("c", 3, 1)
            await resumed.stop()  # c not settled: at least once, it comes back after ack_wait

            again = await (await nc.consume(name, "worker", ack_wait=0.5)).next(timeout=10)
            assert (text_of(again), again.info["stream_sequence"], again.info["redelivered"]) == ("c", 3, True)
            await again.ack()
    run(main())


def test_stop_ends_a_pending_wait(nats_url):
    async def main():
        name = stream_name()
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, storage="memory")
            consumer = await nc.consume(name, "w")

            async def drain():
                return [d async for d in consumer]

            task = asyncio.create_task(drain())
            await asyncio.sleep(0.2)  # the iteration waits for a delivery that never comes
            await asyncio.wait_for(consumer.stop(), 2)
            assert await asyncio.wait_for(task, 2) == []

        with nb.connect_sync(nats_url, jetstream=True) as nc:
            consumer = nc.consume_sync(name, "w")
            done = []
            waiter = threading.Thread(target=lambda: done.append(consumer.next_sync()))
            waiter.start()
            time.sleep(0.2)  # next_sync blocks without the GIL
            consumer.stop_sync()
            waiter.join(2)
            assert done == [None]
    run(main())


def test_what_never_decodes_is_dead_lettered_and_never_yielded(nats_url):
    nats = pytest.importorskip("nats")

    async def main():
        name = stream_name()
        garbage = b'{"correlation_id": "c-py", "payloads": 7}'
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, storage="memory")
            raw = await nats.connect(nats_url)
            await raw.jetstream().publish(f"{name}.x", garbage)
            await raw.close()
            await nc.smartsend(f"{name}.x", [("msg", "fine", "text")])
            consumer = await nc.consume(name, "w", ack_wait=1)
            good = await consumer.next(timeout=10)
            assert good.info["stream_sequence"] == 2 and text_of(good) == "fine"
            await good.ack()
            with pytest.raises(nb.TimeoutError):
                await consumer.next(timeout=0.5)  # the garbage is never handed to the application

            letter = await (await nc.consume(f"{name}_DEAD_LETTER", "audit")).next(timeout=10)
            env = letter.envelope
            assert letter.info["stream"] == f"{name}_DEAD_LETTER"
            assert env["msg_purpose"] == "NACK" and env["correlation_id"] == "c-py"
            assert env["error"]["code"] == "INVALID_ENVELOPE"
            assert env["error"]["details"]["stream"] == name and env["error"]["details"]["stream_sequence"] == 1
            assert env["payloads"] == [("original_message", garbage, "binary")]
            await letter.ack()
    run(main())


@pytest.mark.skipif(pd is None, reason="pandas not installed")
def test_a_linked_table_through_a_work_queue_and_the_sweep(nats_url):
    async def main():
        name = stream_name()
        frame = pd.DataFrame({"id": list(range(50)), "v": [i / 3 for i in range(50)]})
        async with await nb.connect(nats_url, jetstream=True) as nc:
            await nc.add_stream(name, retention="workqueue", max_age=600)
            env, _ = await nc.smartsend(f"{name}.t", [("table", frame, "arrowtable")], size_threshold=1)
            assert env["payloads"][0]["transport"] == "link" and env["pub_ack"]["sequence"] == 1
            report = await nc.sweep_links(name, min_age=0)
            assert report == {"stream": name, "checked": 1, "orphans": [], "dry_run": True}
            consumer = await nc.consume(name, "w")
            d = await consumer.next(timeout=10)
            assert d.envelope["transports"] == ["link"]
            pd.testing.assert_frame_equal(text_of(d), frame)
            await d.ack()  # work queue: the link object goes with the final ack
            assert (await nc.sweep_links(name, dry_run=False, min_age=0))["checked"] == 0
        async with await nb.connect(nats_url, jetstream=True, arrow="pyarrow") as nc:  # arrow= as for subscribe
            await nc.smartsend(f"{name}.t", [("table", frame, "arrowtable")], size_threshold=1)
            d = await (await nc.consume(name, "w")).next(timeout=10)
            assert text_of(d).to_pandas().equals(frame)
            await d.ack()
            # An orphan: a link object whose message left the stream unconsumed.
            env, _ = await nc.smartsend(f"{name}.t", [("table", frame, "arrowtable")], size_threshold=1)
            import nats
            raw = await nats.connect(nats_url)
            # nats-py's JetStream API timeout is 5 s; one fresh-clone CI run saw this request time
            # out there (the server's reply, not natsbridge, was late), so it gets the test's budget.
            await raw.jetstream(timeout=20).delete_msg(name, env["pub_ack"]["sequence"])
            await raw.close()
            [orphan] = (await nc.sweep_links(name, min_age=0))["orphans"]
            assert orphan["msg_id"] == env["msg_id"] and orphan["url"] == env["payloads"][0]["data"]
            assert isinstance(orphan["age_secs"], float) and 0 <= orphan["age_secs"] < 60
    run(main())


def test_the_sync_api(nats_url):
    name = stream_name()
    with nb.connect_sync(nats_url, jetstream=True) as nc:
        assert nc.add_stream_sync(name, storage="memory", dead_letter=False)["dead_letter_stream"] is None
        env, _ = nc.smartsend_sync(f"{name}.s", [("msg", {"k": 1}, "dictionary")])
        assert env["pub_ack"] == {"stream": name, "sequence": 1, "duplicate": False}
        consumer = nc.consume_sync(name, "w", ack_wait=5)
        for d in consumer:
            assert d.envelope["payloads"][0][1] == {"k": 1} and d.envelope["msg_id"] == env["msg_id"]
            d.in_progress_sync()
            d.nak_sync(delay=0)
            break
        d = consumer.next_sync(timeout=10)
        assert d.info["delivered"] == 2
        d.ack_sync()
        with pytest.raises(nb.InvalidArgumentError):
            d.term_sync()
        with pytest.raises(nb.TimeoutError):
            consumer.next_sync(timeout=0.3)
        consumer.stop_sync()
        assert consumer.next_sync() is None and list(consumer) == []
        assert nc.sweep_links_sync(name) == {"stream": name, "checked": 0, "orphans": [], "dry_run": True}
