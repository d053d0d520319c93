"""tests-interop sender: one message per run from a send spec (tests-interop/README.md)."""

import contextlib
import json
import sys

import natsbridge


def value(p):
    t, given = p["payload_type"], p["input"]
    if t in ("image", "audio", "video", "binary"):
        with open(p["file"], "rb") as f:
            return f.read()
    if t == "arrowtable":
        import pyarrow as pa
        return pa.Table.from_pylist(given["rows"])
    return given


def in_span(trace_headers):
    """A span of the OpenTelemetry SDK, a child of the spec's trace: the send joins it, so the
    trace the receivers show was carried on by the binding. Without the SDK: no span."""
    try:
        from opentelemetry import propagate, trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    trace.set_tracer_provider(TracerProvider())
    parent = propagate.extract(trace_headers)
    return trace.get_tracer("interop").start_as_current_span("interop send", context=parent)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    payloads = [(p["dataname"], value(p), p["payload_type"]) for p in spec["payloads"]]
    span = in_span(spec["trace_headers"]) if spec.get("trace_headers") else None
    options = {} if span else {"trace_headers": spec.get("trace_headers")}
    # JetStream mode: a durable publish, confirmed by the stream's PubAck.
    with natsbridge.connect_sync(spec["server"], jetstream=spec.get("jetstream", False)) as nc:  # drains on exit
        with span or contextlib.nullcontext():
            nc.smartsend_sync(spec["subject"], payloads, size_threshold=spec["threshold"], **options)


if __name__ == "__main__":
    main()
