"""Trace context (spec/PROTOCOL.md §13) with the real OpenTelemetry SDK: a send joins the caller's
current span, the receiver continues its trace from ``trace_headers``, explicit and malformed
headers, and a process without the ``opentelemetry`` package."""

import asyncio
import subprocess
import sys
import textwrap
import uuid

import nats
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import natsbridge as nb
from conftest import nats_py_subscribe

BLOB = bytes(range(256)) * 4000  # 1,024,000 bytes: a link at the default threshold
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("natsbridge-test")


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def subject():
    return f"test.py.trace.{uuid.uuid4().hex}"


def ids(traceparent: str):
    version, trace_id, parent_id, flags = traceparent.split("-")
    return int(trace_id, 16), int(parent_id, 16)


def test_a_send_joins_the_callers_span_and_the_receiver_continues_it(nats_url, tracer):
    subj = subject()

    async def go():
        async with nb.connect(nats_url, object_store=True) as nc:
            raw = await nats.connect(nats_url)
            wire = await nats_py_subscribe(raw, subj)
            sub = await nc.subscribe(subj)
            with tracer.start_as_current_span("caller") as caller:
                await nc.smartsend(subj, [("blob", BLOB, "binary"), ("note", "hi", "text")])
            message = await wire.next_msg(timeout=10)
            received = await sub.next(timeout=20)
            await raw.close()
            return caller, message, received

    caller, message, received = run(go())
    context = caller.get_span_context()
    # No OpenTelemetry layer under the Python process: the caller's context goes on unchanged.
    assert ids(message.headers["traceparent"]) == (context.trace_id, context.span_id)
    assert received["payloads"][0][1] == BLOB
    assert received["trace_headers"] == {"traceparent": message.headers["traceparent"]}

    # The receiver continues the trace: its span is a child of the caller's.
    parent = propagate.extract(received["trace_headers"])
    with tracer.start_as_current_span("process", context=parent) as process:
        pass
    spans = {s.name: s for s in EXPORTER.get_finished_spans() if s.context.trace_id == context.trace_id}
    assert spans["process"].parent.span_id == context.span_id
    assert process.get_span_context().trace_id == context.trace_id


def test_explicit_headers_win_and_outside_a_span_nothing_is_sent(nats_url, tracer):
    subj = subject()
    given = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             "tracestate": "congo=t61rcWkgMzE", "baggage": "tenant=acme"}

    async def go():
        async with nb.connect(nats_url) as nc:
            sub = await nc.subscribe(subj)
            with tracer.start_as_current_span("ignored"):
                await nc.smartsend(subj, [("n", "x", "text")], trace_headers=given)
            await nc.smartsend(subj, [("n", "y", "text")])
            return await sub.next(timeout=10), await sub.next(timeout=10)

    explicit, untraced = run(go())
    assert explicit["trace_headers"] == given
    assert "trace_headers" not in untraced


def test_sync_sends_and_requests_join_the_current_span(nats_url, tracer):
    subj = subject()
    with nb.connect_sync(nats_url) as nc:
        sub = nc.subscribe_sync(subj)
        with tracer.start_as_current_span("sync caller") as caller:
            nc.smartsend_sync(subj, [("n", "x", "text")])
        got = sub.next_sync(timeout=10)
    context = caller.get_span_context()
    assert ids(got["trace_headers"]["traceparent"]) == (context.trace_id, context.span_id)


def test_malformed_trace_headers_are_refused_on_send_and_dropped_on_receive(nats_url, tracer):
    subj = subject()

    async def go():
        async with nb.connect(nats_url) as nc:
            with pytest.raises(nb.InvalidArgumentError, match="traceparent"):
                await nc.smartsend(subj, [("n", "x", "text")], trace_headers={"traceparent": "00-zz"})
            with pytest.raises(nb.InvalidArgumentError, match="trace_headers"):
                await nc.smartsend(subj, [("n", "x", "text")], trace_headers="00-zz")
            env, msg_json = await nc.smartsend(f"{subj}.built", [("n", "x", "text")])
            raw = await nats.connect(nats_url)
            sub = await nc.subscribe(subj)
            await raw.publish(subj, msg_json.encode(), headers={"traceparent": "garbage", "baggage": "a=b"})
            got = await sub.next(timeout=10)
            await raw.close()
            return got

    got = run(go())
    assert got["payloads"] == [("n", "x", "text")]
    assert "trace_headers" not in got


def test_without_the_opentelemetry_package_sends_carry_no_trace(nats_url):
    # A fresh interpreter where `import opentelemetry` fails, as when it is not installed.
    script = textwrap.dedent(f"""
        import sys
        sys.modules["opentelemetry"] = None
        import natsbridge as nb
        assert nb._otel_propagate is None
        with nb.connect_sync({nats_url!r}) as nc:
            sub = nc.subscribe_sync("test.py.trace.none")
            nc.smartsend_sync("test.py.trace.none", [("n", "x", "text")])
            got = sub.next_sync(timeout=10)
        assert got["payloads"] == [("n", "x", "text")] and "trace_headers" not in got, got
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_metrics_count_per_connection_and_are_observable(nats_url):
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    subj = subject()
    blob = bytes(range(256)) * 2400  # 614,400 bytes: a link

    async def go():
        async with nb.connect(nats_url) as sender, nb.connect(nats_url) as receiver:
            sub = await receiver.subscribe(subj)
            _, first = await sender.smartsend(subj, [("n", "x", "text")])
            _, second = await sender.smartsend(subj, [("blob", blob, "binary"), ("n", "y", "text")])
            for _ in range(2):
                await sub.next(timeout=20)
            observed = reader.get_metrics_data()
            return sender.metrics(), receiver.metrics(), len(first) + len(second), receiver.sender_id, observed

    sent, got, envelopes, receiver_id, observed = run(go())
    assert sent["messages_sent"] == 2 and sent["messages_received"] == 0
    assert sent["payloads_sent"] == {"direct": 2, "link": 1}
    assert sent["bytes_sent"] == {"direct": envelopes, "link": len(blob)}
    assert got["messages_received"] == 2
    assert got["payloads_received"] == {"direct": 2, "link": 1}
    assert got["bytes_received"] == {"direct": envelopes, "link": len(blob)}
    assert got["downloads"] == 1 and got["download_time"] > 0
    assert got["download_retries"] == 0 and got["checksum_failures"] == 0

    points = {}
    for rm in observed.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes)
                    if attrs.get("natsbridge.sender_id") == receiver_id:
                        points[(metric.name, attrs.get("natsbridge.transport"))] = point.value
    assert points[("natsbridge.messages.received", None)] == 2
    assert points[("natsbridge.payloads.received", "link")] == 1
    assert points[("natsbridge.bytes.received", "link")] == len(blob)
    assert points[("natsbridge.downloads", None)] == 1


def test_export_spans_hands_natsbridge_spans_to_the_sdk_under_the_callers_span(nats_url):
    # A fresh interpreter: once exported, spans are made for the rest of the process, and the
    # header then names natsbridge's publish span, not the caller's span (as the tests above see).
    script = textwrap.dedent(f"""
        import asyncio, json, time
        import nats
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import natsbridge as nb

        exporter = InMemorySpanExporter()
        processor = SimpleSpanProcessor(exporter)
        provider = TracerProvider(resource=Resource.create({{"service.name": "py-test"}}))
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        nb.export_spans(processor)

        async def go():
            async with nb.connect({nats_url!r}, object_store=True) as nc:
                raw = await nats.connect({nats_url!r})
                wire = await raw.subscribe("py.export")
                await raw.flush()
                sub = await nc.subscribe("py.export")
                with trace.get_tracer("t").start_as_current_span("caller") as caller:
                    await nc.smartsend("py.export", [("blob", bytes(range(256)) * 2400, "binary")])
                header = (await wire.next_msg(timeout=10)).headers["traceparent"]
                await sub.next(timeout=20)
                await raw.close()
                return caller.get_span_context().span_id, header

        caller, header = asyncio.run(go())
        for _ in range(300):
            if len(exporter.get_finished_spans()) >= 6:
                break
            time.sleep(0.01)
        spans = {{s.name: s for s in exporter.get_finished_spans()}}
        print(json.dumps({{
            "caller": format(caller, "016x"), "header": header,
            "spans": {{name: {{
                "trace_id": format(s.context.trace_id, "032x"), "span_id": format(s.context.span_id, "016x"),
                "parent": format(s.parent.span_id, "016x") if s.parent else None,
                "parent_remote": s.parent.is_remote if s.parent else None, "kind": s.kind.name,
                "links": [format(link.context.span_id, "016x") for link in s.links],
                "service": s.resource.attributes.get("service.name"), "scope": s.instrumentation_scope.name,
                "size": s.attributes.get("natsbridge.size"), "ns": [s.start_time, s.end_time],
            }} for name, s in spans.items()}},
        }}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json
    got = json.loads(out.stdout)
    spans = got["spans"]
    assert set(spans) == {"caller", "send py.export", "upload blob", "publish py.export", "receive py.export",
                          "download blob"}, spans.keys()
    send, upload, publish = spans["send py.export"], spans["upload blob"], spans["publish py.export"]
    receive, download = spans["receive py.export"], spans["download blob"]
    assert len({s["trace_id"] for s in spans.values()}) == 1
    assert send["parent"] == got["caller"] and send["parent_remote"] is True
    assert upload["parent"] == publish["parent"] == send["span_id"]
    # The flags are the caller's: sampled, and the SDK's "random trace id" bit (W3C level 2).
    assert got["header"].rsplit("-", 1)[0] == f"00-{send['trace_id']}-{publish['span_id']}", "names the publish span"
    assert int(got["header"].rsplit("-", 1)[1], 16) & 1, "sampled"
    assert receive["parent"] == publish["span_id"] and download["parent"] == receive["span_id"]
    assert download["links"] == [upload["span_id"]]
    assert [s["kind"] for s in (send, upload, publish, receive, download)] == \
        ["INTERNAL", "CLIENT", "PRODUCER", "CONSUMER", "CLIENT"]
    assert all(s["service"] == "py-test" for s in spans.values())
    assert {s["scope"] for s in (send, download)} == {"natsbridge"}
    assert upload["size"] == 614400
    assert 0 < send["ns"][0] <= send["ns"][1]
