"""NATSBridge for Python: typed payloads over NATS, large ones through claim-check links.

The protocol and all I/O live in the Rust core (``natsbridge._natsbridge``); this module adds
Python idioms only: keyword arguments, Arrow conversion, context managers, iterators.

Options have core's names in snake_case, durations in seconds (the README's "One vocabulary");
a caller mistake (unknown option, bad value, non-callable handler) raises
:class:`InvalidArgumentError`, which is also a ``ValueError``.

Custom link stores: ``fileserver_upload_handler(fileserver_url, dataname, data) -> {"url": ...}``
(or the URL str) and ``fileserver_download_handler(url, max_retries, base_delay_ms, max_delay_ms,
correlation_id) -> bytes`` (the seeds' contracts: delays in integer milliseconds), plain functions
or coroutine functions, given to :func:`connect` for the whole connection or to
:func:`smartsend` / :func:`smartreceive` for one message.

Naming rule: every call that waits is a coroutine (``smartsend``, ``connect``, ``nc.request``)
with a blocking twin of the same name plus ``_sync`` (``smartsend_sync``, ``connect_sync``,
``nc.request_sync``). The blocking twins release the GIL while they wait.
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections import deque
from typing import Any, Awaitable, Callable, Iterable, Iterator, Literal, Optional, Sequence, Tuple, Type, Union

from . import _natsbridge as _nb
from ._natsbridge import (
    ChecksumMismatchError,
    DeserializationError,
    DownloadFailedError,
    InvalidArgumentError,
    InvalidEnvelopeError,
    InvalidPayloadTypeError,
    InvalidTransportError,
    LinkStream,
    NATSBridgeError,
    NatsConnectionFailedError,
    PayloadTooLargeError,
    SendResult,
    TimeoutError,
    UploadFailedError,
    UrlNotAllowedError,
)

__version__: str = _nb.__version__

# Drains the one-call style's shared connections (a script that sends and exits loses nothing),
# then waits for the native runtime's threads to leave Python before the interpreter finalizes.
atexit.register(_nb.before_exit)

__all__ = [
    "smartsend", "smartsend_sync", "smartreceive", "smartreceive_sync", "connect", "connect_sync", "Connection",
    "Subscription", "NATSBridgeError", "InvalidPayloadTypeError", "UploadFailedError", "DownloadFailedError",
    "InvalidTransportError", "NatsConnectionFailedError", "DeserializationError", "InvalidEnvelopeError",
    "ChecksumMismatchError", "PayloadTooLargeError", "UrlNotAllowedError", "TimeoutError",
    "InvalidArgumentError", "ERRORS", "PAYLOAD_TYPES", "MSG_PURPOSES", "TEXT", "DICTIONARY", "ARROWTABLE",
    "JSONTABLE", "IMAGE", "AUDIO", "VIDEO", "BINARY", "ACK", "NACK", "UPDATE_STATUS", "SHUTDOWN", "CHAT",
    "COMMAND", "EVENT", "DEFAULT_SIZE_THRESHOLD", "OPTION_NAMES", "SEND_OPTION_NAMES", "Consumer", "Delivery",
    "STREAM_OPTION_NAMES", "CONSUME_OPTION_NAMES", "SendResult", "LinkStream", "export_spans",
]

# Payload types (the seeds' strings).
TEXT = "text"
DICTIONARY = "dictionary"
ARROWTABLE = "arrowtable"
JSONTABLE = "jsontable"
IMAGE = "image"
AUDIO = "audio"
VIDEO = "video"
BINARY = "binary"
PAYLOAD_TYPES: Tuple[str, ...] = tuple(_nb.PAYLOAD_TYPES)

# msg_purpose values named by the seeds (receivers accept any non-empty string).
ACK = "ACK"
NACK = "NACK"
UPDATE_STATUS = "updateStatus"
SHUTDOWN = "shutdown"
CHAT = "chat"
COMMAND = "command"
EVENT = "event"
MSG_PURPOSES: Tuple[str, ...] = tuple(_nb.MSG_PURPOSES)

DEFAULT_SIZE_THRESHOLD: int = _nb.DEFAULT_SIZE_THRESHOLD

#: Core's connection option names (:func:`connect` takes these and the three host-only
#: callables) and per-message option names (:func:`smartsend`, ``request``, ``reply``).
OPTION_NAMES: Tuple[str, ...] = tuple(_nb.OPTION_NAMES)
SEND_OPTION_NAMES: Tuple[str, ...] = tuple(_nb.SEND_OPTION_NAMES)
STREAM_OPTION_NAMES: Tuple[str, ...] = tuple(_nb.STREAM_OPTION_NAMES)
CONSUME_OPTION_NAMES: Tuple[str, ...] = tuple(_nb.CONSUME_OPTION_NAMES)

#: Error code string -> exception class, one per code of the core.
ERRORS = {cls.code: cls for cls in (getattr(_nb, n) for n in dir(_nb)) if isinstance(cls, type)
          and issubclass(cls, NATSBridgeError) and cls is not NATSBridgeError}

Payload = Tuple[str, Any, str]
ArrowOut = Literal["pandas", "pyarrow", "polars", "ipc"]
Envelope = dict
#: ``(fileserver_url, dataname, data) -> {"status": 200, "uploadid": ..., "fileid": ..., "url": ...}``
#: (only "url" is required; the URL str alone also works), or a coroutine function returning that.
UploadHandler = Callable[[str, str, bytes], Union[dict, str, Awaitable[Union[dict, str]]]]
#: ``(url, max_retries, base_delay_ms, max_delay_ms, correlation_id) -> bytes``, or a coroutine function.
DownloadHandler = Callable[[str, int, int, int, str], Union[bytes, Awaitable[bytes]]]


def _error(cls: type, message: str) -> NATSBridgeError:
    e = cls(f"{cls.code}: {message}")
    e.code = cls.code
    e.correlation_id = None
    return e


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise _error(InvalidPayloadTypeError, "arrowtable payloads need pyarrow: pip install 'natsbridge[arrow]'") from None
    return pyarrow


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.partition(".")[0] == "pandas" and hasattr(obj, "to_dict")


def _to_ipc(obj: Any) -> Any:
    """An Arrow IPC stream of a pyarrow, pandas or polars table, or any ``__arrow_c_stream__``.
    IPC bytes and a list of row dicts go to core as they are (core builds the table from rows)."""
    if isinstance(obj, (bytes, bytearray, memoryview, list)):
        return obj
    pa = _pyarrow()
    if isinstance(obj, pa.Table):
        reader = obj.to_reader()
    elif isinstance(obj, pa.RecordBatch):
        reader = pa.Table.from_batches([obj]).to_reader()
    elif _is_pandas(obj):
        # nthreads=1: the default starts a thread pool on every call, 0.7-4 ms against 0.29 ms
        # single-threaded for 10,000 x 5 (bench/RESULTS-python.md).
        reader = pa.Table.from_pandas(obj, preserve_index=False, nthreads=1).to_reader()
    elif hasattr(obj, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(obj)
    elif hasattr(obj, "to_arrow"):  # polars < 1.0
        reader = obj.to_arrow().to_reader()
    else:
        raise _error(InvalidPayloadTypeError, f"an arrowtable needs a table (pyarrow, pandas, polars, "
                                              f"__arrow_c_stream__ or a list of row dicts), not {type(obj).__name__}")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    return memoryview(sink.getvalue())


def _from_ipc(data: bytes, arrow: str) -> Any:
    if arrow == "ipc":
        return data
    pa = _pyarrow()
    table = pa.ipc.open_stream(data).read_all()
    if arrow == "pyarrow":
        return table
    if arrow == "polars":
        import polars
        return polars.from_arrow(table)
    if arrow == "pandas":
        return table.to_pandas()
    raise _error(InvalidArgumentError, f"arrow must be 'pandas', 'pyarrow', 'polars' or 'ipc', not {arrow!r}")


def _prepare(data: Iterable[Payload]) -> list:
    out = []
    for item in data:
        if isinstance(item, tuple) and len(item) == 3:
            name, value, ptype = item
            if ptype == ARROWTABLE:
                item = (name, _to_ipc(value), ptype)
            elif ptype == JSONTABLE and _is_pandas(value):
                item = (name, value.to_json(orient="records").encode(), ptype)
        out.append(item)
    return out


def _finish(env: dict, arrow: str) -> dict:
    payloads = env["payloads"]
    for i, p in enumerate(payloads):
        if p[2] == ARROWTABLE and not isinstance(p[1], LinkStream):
            payloads[i] = (p[0], _from_ipc(p[1], arrow), ARROWTABLE)
    return env


# Most envelopes one `async for` step takes from the native subscription at once.
_BATCH = 256


def _message_bytes(msg: Any) -> Any:
    # Anything else is checked by the native module (INVALID_ARGUMENT).
    return msg if isinstance(msg, (bytes, bytearray, memoryview, str)) else getattr(msg, "data", msg)


def _send_opts(**opts: Any) -> dict:
    return {k: v for k, v in opts.items() if v is not None}


try:  # OpenTelemetry's API, when installed: a send joins the caller's current trace.
    from opentelemetry import propagate as _otel_propagate
except ImportError:
    _otel_propagate = None


try:  # OpenTelemetry's metrics API, when installed: each connection's counts are observable.
    from opentelemetry import metrics as _otel_metrics
except ImportError:
    _otel_metrics = None

_observed: "weakref.WeakSet[Connection]" = weakref.WeakSet()
# (instrument, unit, key of Connection.metrics(), counted by transport): spec/PROTOCOL.md §13.3;
# the download duration, a histogram in core, is observed as its total and its count.
_COUNTERS = (
    ("natsbridge.messages.sent", "{message}", "messages_sent", False),
    ("natsbridge.messages.received", "{message}", "messages_received", False),
    ("natsbridge.payloads.sent", "{payload}", "payloads_sent", True),
    ("natsbridge.payloads.received", "{payload}", "payloads_received", True),
    ("natsbridge.bytes.sent", "By", "bytes_sent", True),
    ("natsbridge.bytes.received", "By", "bytes_received", True),
    ("natsbridge.download.retries", "{retry}", "download_retries", False),
    ("natsbridge.checksum.failures", "{failure}", "checksum_failures", False),
    ("natsbridge.downloads", "{download}", "downloads", False),
    ("natsbridge.download.time", "s", "download_time", False),
)


def _observation_of(key: str, by_transport: bool):
    def observe(_options: Any) -> Iterator[Any]:
        for conn in list(_observed):
            counts = conn._native.metrics()
            series = {"natsbridge.sender_id": conn.sender_id}
            if by_transport:
                for transport in ("direct", "link"):
                    yield _otel_metrics.Observation(counts[key][transport], {**series, "natsbridge.transport": transport})
            else:
                yield _otel_metrics.Observation(counts[key], series)
    return observe


def _observe_metrics(conn: "Connection") -> None:
    """Makes `conn`'s counts observable through OpenTelemetry (one series per connection,
    by its sender_id); the instruments are made with the first connection."""
    if _otel_metrics is None:
        return
    if not _observed_by_meter:
        meter = _otel_metrics.get_meter("natsbridge")
        for name, unit, key, by_transport in _COUNTERS:
            meter.create_observable_counter(name, callbacks=[_observation_of(key, by_transport)], unit=unit)
        _observed_by_meter.append(meter)
    _observed.add(conn)


_observed_by_meter: list = []


def export_spans(span_processor: Any, *, resource: Any = None) -> None:
    """Hands natsbridge's own spans (send, upload, publish, receive, download: spec/PROTOCOL.md
    §13.2) to an OpenTelemetry SDK span processor, as the ``ReadableSpan``s the SDK makes of its
    own spans: ``natsbridge.export_spans(BatchSpanProcessor(exporter))``, or the processor you
    gave your tracer provider. They carry the span ids the messages carry, so a receiver's spans
    continue them, and a send in your span is its child. Needs ``opentelemetry-sdk``.

    ``resource``: the spans' resource; by default the global tracer provider's. The processor's
    ``on_end`` is called from a thread of natsbridge's, with the GIL, as spans end; exceptions
    it raises are reported as unraisable. A later call replaces the processor. Once called, the
    spans are made for the rest of the process (a caller's unsampled trace stays unrecorded)."""
    import json

    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    if resource is None:
        resource = getattr(trace_api.get_tracer_provider(), "resource", None) or Resource.get_empty()
    scope = InstrumentationScope("natsbridge", __version__)
    kinds = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER,
             "producer": SpanKind.PRODUCER, "consumer": SpanKind.CONSUMER}

    def context(d: dict, span_id: str, remote: bool) -> SpanContext:
        state = TraceState.from_header([d["trace_state"]]) if d["trace_state"] else TraceState()
        return SpanContext(int(d["trace_id"], 16), int(span_id, 16), is_remote=remote,
                           trace_flags=TraceFlags(d["trace_flags"]), trace_state=state)

    def ns(at: list) -> int:
        return at[0] * 1_000_000_000 + at[1]

    def readable(d: dict) -> ReadableSpan:
        parent = d["parent_span_id"]
        status = d["status"]
        return ReadableSpan(
            name=d["name"], context=context(d, d["span_id"], False),
            parent=context(d, parent, d["parent_is_remote"]) if parent else None, resource=resource,
            attributes=d["attributes"], kind=kinds[d["kind"]], instrumentation_scope=scope,
            events=[Event(e["name"], e["attributes"], ns(e["time"])) for e in d["events"]],
            links=[Link(context(link, link["span_id"], True), link["attributes"]) for link in d["links"]],
            status=Status(StatusCode.ERROR, status["description"]) if status["code"] == "error"
            else Status(StatusCode.OK if status["code"] == "ok" else StatusCode.UNSET),
            start_time=ns(d["start"]), end_time=ns(d["end"]))

    def hand_over(batch: str) -> None:
        for span in json.loads(batch):
            span_processor.on_end(readable(span))

    _nb.export_spans(hand_over)


def _traced(opts: dict) -> dict:
    """``opts`` with the caller's current OpenTelemetry context as ``trace_headers`` (the W3C
    headers its propagator injects), unless the caller gave them or there is no current span."""
    if _otel_propagate is not None and "trace_headers" not in opts:
        carrier: dict = {}
        _otel_propagate.inject(carrier)
        if carrier:
            opts["trace_headers"] = carrier
    return opts


async def smartsend(
    subject: str,
    data: Sequence[Payload],
    *,
    connection: Optional["Connection"] = None,
    broker_url: Optional[str] = None,
    fileserver_url: Optional[str] = None,
    size_threshold: Optional[int] = None,
    correlation_id: Optional[str] = None,
    msg_purpose: Optional[str] = None,
    sender_name: Optional[str] = None,
    sender_id: Optional[str] = None,
    receiver_name: Optional[str] = None,
    receiver_id: Optional[str] = None,
    reply_to: Optional[str] = None,
    reply_to_msg_id: Optional[str] = None,
    metadata: Optional[dict] = None,
    trace_headers: Optional[dict] = None,
    fileserver_upload_handler: Optional[UploadHandler] = None,
    **options: Any,
) -> SendResult:
    """Send ``[(dataname, data, payload_type), ...]`` as one envelope; returns ``(env, msg_json)``
    as a :class:`SendResult` (it unpacks, indexes and compares as that tuple; each part is built
    the first time it is read, so a caller that ignores it pays for neither).

    The per-message options are core's (:data:`SEND_OPTION_NAMES`); any other name raises
    :class:`InvalidArgumentError`. Without ``connection``, a process-wide connection per
    ``broker_url`` (else ``NATS_URL``, else nats://localhost:4222) and ``fileserver_url`` is made
    on first use, reused, and drained at interpreter exit. Bad input raises before anything is
    published. ``fileserver_upload_handler`` takes this message's link payloads (it is called
    with ``fileserver_url``, else the connection's, else ``FILESERVER_URL``, else ""); if it
    fails, a payload goes direct when the envelope still fits, else :class:`UploadFailedError`
    carries the handler's exception text. ``trace_headers`` (W3C ``traceparent``, ``tracestate``,
    ``baggage``) go with the message as NATS headers; when the ``opentelemetry-api`` package is
    installed they default to the caller's current context, so receivers continue its trace (a
    received message then has them under ``"trace_headers"``).
    """
    opts = _send_opts(broker_url=broker_url, fileserver_url=fileserver_url, size_threshold=size_threshold,
                      correlation_id=correlation_id, msg_purpose=msg_purpose, sender_name=sender_name,
                      sender_id=sender_id, receiver_name=receiver_name, receiver_id=receiver_id, reply_to=reply_to,
                      reply_to_msg_id=reply_to_msg_id, metadata=metadata, trace_headers=trace_headers,
                      fileserver_upload_handler=fileserver_upload_handler, **options)
    native = connection._native if connection is not None else None
    return await _nb.smartsend(subject, _prepare(data), native, _traced(opts))


def smartsend_sync(subject: str, data: Sequence[Payload], *, connection: Optional["Connection"] = None,
                   **opts: Any) -> SendResult:
    """Blocking twin of :func:`smartsend` (same keyword arguments)."""
    native = connection._native if connection is not None else None
    return _nb.smartsend_sync(subject, _prepare(data), native, _traced(_send_opts(**opts)))


async def smartreceive(msg: Any, *, connection: Optional["Connection"] = None, broker_url: Optional[str] = None,
                       fileserver_url: Optional[str] = None, arrow: ArrowOut = "pandas",
                       fileserver_download_handler: Optional[DownloadHandler] = None,
                       allowed_origins: Optional[Sequence[str]] = None, max_retries: Optional[int] = None,
                       base_delay: Optional[float] = None, max_delay: Optional[float] = None,
                       **options: Any) -> dict:
    """Decode a message: ``bytes`` or any object with ``.data`` (e.g. a nats-py ``Msg``).

    Returns the envelope as a dict with the seeds' field names; ``payloads`` is a list of
    ``(dataname, data, payload_type)`` tuples (``transports`` says how each travelled). Link
    payloads are fetched through ``connection`` or the process-wide connection of ``broker_url``
    and ``fileserver_url``; the other options are for the one-call style only (a connection has
    its own, from :func:`connect`), and an unknown one raises :class:`InvalidArgumentError`.

    With ``fileserver_download_handler`` (no connection), links are fetched by the handler alone
    and no NATS connection is made. It serves only URLs the caller allows: the origin of
    ``fileserver_url`` (else ``FILESERVER_URL``) and each of ``allowed_origins``
    (``scheme://host[:port][/path]``, or ``scheme:`` for every URL of a custom scheme); any
    other link raises :class:`UrlNotAllowedError`. It is called with ``max_retries``,
    ``base_delay`` and ``max_delay`` (given in seconds, defaults 5, 0.1, 5.0; the handler gets the
    delays in integer ms) and does its own retrying; its exception raises
    :class:`DownloadFailedError` with the exception text.
    """
    native = connection._native if connection is not None else None
    opts = _send_opts(broker_url=broker_url, fileserver_url=fileserver_url,
                      fileserver_download_handler=fileserver_download_handler, allowed_origins=allowed_origins,
                      max_retries=max_retries, base_delay=base_delay, max_delay=max_delay, **options)
    return _finish(await _nb.smartreceive(_message_bytes(msg), native, opts), arrow)


def smartreceive_sync(msg: Any, *, connection: Optional["Connection"] = None, arrow: ArrowOut = "pandas",
                      **opts: Any) -> dict:
    """Blocking twin of :func:`smartreceive` (same keyword arguments)."""
    native = connection._native if connection is not None else None
    return _finish(_nb.smartreceive_sync(_message_bytes(msg), native, _send_opts(**opts) if opts else None), arrow)


class Subscription:
    """Decoded envelopes of one subscription: ``async for env in sub`` (or ``for env in sub``).

    ``async for`` takes every envelope already waiting in one native call and hands them out in
    order; a message that failed to decode raises its error in its turn, and the iteration can
    go on. Envelopes taken but not yet handed out are dropped by :meth:`unsubscribe`.
    """

    def __init__(self, native: Any, arrow: str) -> None:
        self._native = native
        self._arrow = arrow
        self._ready: deque = deque()

    def _take(self) -> dict:
        item = self._ready.popleft()
        if isinstance(item, BaseException):
            raise item
        return _finish(item, self._arrow)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> dict:
        if not self._ready:
            batch = await self._native.next_batch(_BATCH)
            if batch is None:
                raise StopAsyncIteration
            self._ready.extend(batch)
        return self._take()

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> dict:
        if self._ready:
            return self._take()
        return _finish(self._native.__next__(), self._arrow)

    async def next(self, timeout: Optional[float] = None) -> Optional[dict]:
        """The next envelope; None once closed; :class:`TimeoutError` after ``timeout`` seconds."""
        return self._taken_first() or self._finished(await self._native.next(timeout))

    def next_sync(self, timeout: Optional[float] = None) -> Optional[dict]:
        return self._taken_first() or self._finished(self._native.next_sync(timeout))

    async def next_streamed(self, timeout: Optional[float] = None) -> Optional[dict]:
        """The next envelope with each link payload's data a :class:`LinkStream`: ``async for
        chunk in link``, ``for chunk in link`` or ``link.save(path)`` move the bytes without
        holding them whole; nothing is fetched until the link is read. Direct payloads are decoded
        as by :meth:`next`. Envelopes an ``async for`` already took come first, as :meth:`next`
        gives them. None once closed; :class:`TimeoutError` after ``timeout`` seconds."""
        return self._taken_first() or self._finished(await self._native.next_streamed(timeout))

    def next_streamed_sync(self, timeout: Optional[float] = None) -> Optional[dict]:
        return self._taken_first() or self._finished(self._native.next_streamed_sync(timeout))

    def _taken_first(self) -> Optional[dict]:
        return self._take() if self._ready else None

    def _finished(self, env: Optional[dict]) -> Optional[dict]:
        return None if env is None else _finish(env, self._arrow)

    async def unsubscribe(self) -> None:
        self._ready.clear()
        await self._native.unsubscribe()

    def unsubscribe_sync(self) -> None:
        self._ready.clear()
        self._native.unsubscribe_sync()


class Delivery:
    """One decoded delivery of a durable consumer: ``envelope`` (as a subscription yields it),
    ``info`` (``stream``, ``consumer``, ``stream_sequence``, ``consumer_sequence``, ``delivered``,
    ``pending``, ``replayed``, ``redelivered``), and its settlement: :meth:`ack` once processed,
    :meth:`nak` to have it delivered again, :meth:`in_progress` to ask for more time,
    :meth:`term` never to see it again. Settling twice raises :class:`InvalidArgumentError`."""

    def __init__(self, native: Any, arrow: str) -> None:
        self._native = native
        self.envelope: dict = _finish(native.envelope, arrow)
        self.info: dict = native.info

    async def ack(self) -> None:
        await self._native.ack()

    def ack_sync(self) -> None:
        self._native.ack_sync()

    async def nak(self, delay: Optional[float] = None) -> None:
        """Delivered again after ``delay`` seconds (None: at once)."""
        await self._native.nak(delay)

    def nak_sync(self, delay: Optional[float] = None) -> None:
        self._native.nak_sync(delay)

    async def in_progress(self) -> None:
        await self._native.in_progress()

    def in_progress_sync(self) -> None:
        self._native.in_progress_sync()

    async def term(self) -> None:
        await self._native.term()

    def term_sync(self) -> None:
        self._native.term_sync()


class Consumer:
    """A durable pull consumer (:meth:`Connection.consume`): ``async for msg in consumer`` (or
    ``for msg in consumer``) yields :class:`Delivery` objects until the connection closes or
    :meth:`stop`. Deliveries that fail to decode are settled by the bridge (nak'd
    when a link download failed, dead-lettered and terminated when they can never decode) and
    not yielded."""

    def __init__(self, native: Any, arrow: str) -> None:
        self._native = native
        self._arrow = arrow

    def __aiter__(self) -> "Consumer":
        return self

    async def __anext__(self) -> Delivery:
        return Delivery(await self._native.__anext__(), self._arrow)

    def __iter__(self) -> "Consumer":
        return self

    def __next__(self) -> Delivery:
        return Delivery(self._native.__next__(), self._arrow)

    async def next(self, timeout: Optional[float] = None) -> Optional[Delivery]:
        """The next delivery; None once closed; :class:`TimeoutError` after ``timeout`` seconds."""
        d = await self._native.next(timeout)
        return None if d is None else Delivery(d, self._arrow)

    def next_sync(self, timeout: Optional[float] = None) -> Optional[Delivery]:
        d = self._native.next_sync(timeout)
        return None if d is None else Delivery(d, self._arrow)

    async def stop(self) -> None:
        """Stop pulling: iteration ends, and a pending or later :meth:`next` returns None (also
        from another task or thread). The durable stays on the server: :meth:`Connection.consume`
        with the same name resumes after what was acked; deliveries not yet settled come back
        after ``ack_wait``."""
        await self._native.stop()

    def stop_sync(self) -> None:
        self._native.stop_sync()


class Connection:
    """One NATS connection with the bridge's link stores. ``async with`` closes (drains) it on exit."""

    def __init__(self, native: Any, arrow: str = "pandas") -> None:
        self._native = native
        self._arrow = arrow
        _observe_metrics(self)

    @property
    def sender_id(self) -> str:
        return self._native.sender_id

    @property
    def max_payload(self) -> int:
        return self._native.max_payload

    def metrics(self) -> dict:
        """What this connection sent and received since it connected (spec/PROTOCOL.md §13.3):
        ``messages_sent``, ``messages_received``, ``payloads_sent`` / ``payloads_received`` /
        ``bytes_sent`` / ``bytes_received`` as ``{"direct": n, "link": n}``,
        ``download_retries``, ``checksum_failures``, ``downloads`` and ``download_time``
        (seconds). With ``opentelemetry-api`` installed the same counts are observable
        instruments of the ``natsbridge`` meter, one series per connection."""
        return self._native.metrics()

    def smartsend(self, subject: str, data: Sequence[Payload], **opts: Any) -> Awaitable[SendResult]:
        """:func:`natsbridge.smartsend` on this connection (same keyword arguments). Returns the
        native awaitable itself (no coroutine in between: this is the per-message hot path), so
        bad input raises at the call, before anything is published."""
        return _nb.smartsend(subject, _prepare(data), self._native, _traced(opts))

    def smartsend_sync(self, subject: str, data: Sequence[Payload], **opts: Any) -> SendResult:
        return _nb.smartsend_sync(subject, _prepare(data), self._native, _traced(_send_opts(**opts)))

    async def smartreceive(self, msg: Any, *, arrow: Optional[ArrowOut] = None) -> dict:
        return _finish(await _nb.smartreceive(_message_bytes(msg), self._native, None), arrow or self._arrow)

    def smartreceive_sync(self, msg: Any, *, arrow: Optional[ArrowOut] = None) -> dict:
        return _finish(_nb.smartreceive_sync(_message_bytes(msg), self._native, None), arrow or self._arrow)

    async def subscribe(self, subject: str, queue: Optional[str] = None, *,
                        arrow: Optional[ArrowOut] = None) -> Subscription:
        """Subscribe (optionally in a queue group); returns once the server has the subscription."""
        return Subscription(await self._native.subscribe(subject, queue), arrow or self._arrow)

    def subscribe_sync(self, subject: str, queue: Optional[str] = None, *,
                       arrow: Optional[ArrowOut] = None) -> Subscription:
        return Subscription(self._native.subscribe_sync(subject, queue), arrow or self._arrow)

    async def request(self, subject: str, data: Sequence[Payload], *, timeout: float = 5.0,
                      arrow: Optional[ArrowOut] = None, **opts: Any) -> dict:
        """Send a request envelope and wait up to ``timeout`` seconds for one reply (a NACK reply
        raises its error). Keyword arguments as for :meth:`smartsend`."""
        env = await self._native.request(subject, _prepare(data), timeout, _traced(_send_opts(**opts)))
        return _finish(env, arrow or self._arrow)

    def request_sync(self, subject: str, data: Sequence[Payload], *, timeout: float = 5.0,
                     arrow: Optional[ArrowOut] = None, **opts: Any) -> dict:
        env = self._native.request_sync(subject, _prepare(data), timeout, _traced(_send_opts(**opts)))
        return _finish(env, arrow or self._arrow)

    async def reply(self, request: dict, data: Sequence[Payload], **opts: Any) -> SendResult:
        """Reply to a received request envelope (from :meth:`subscribe`): sent to its
        ``reply_to`` (else the NATS reply subject) with its correlation_id,
        ``reply_to_msg_id`` = its msg_id and ``msg_purpose`` ACK unless given; the receiver
        fields name its sender. Keyword arguments as for :meth:`smartsend`. Returns ``(env, msg_json)``.
        """
        return await self._native.reply(request, _prepare(data), _traced(_send_opts(**opts)))

    def reply_sync(self, request: dict, data: Sequence[Payload], **opts: Any) -> SendResult:
        return self._native.reply_sync(request, _prepare(data), _traced(_send_opts(**opts)))

    async def reply_error(self, request: dict, code: Union[str, Type[NATSBridgeError]],
                          message: str) -> SendResult:
        """Reply with a NACK carrying ``{"code", "message", "details"}``; the requester's
        :meth:`request` raises the code's exception class with ``message``. ``code`` is a code
        string (``"INVALID_PAYLOAD_TYPE"``) or an exception class (``InvalidPayloadTypeError``).
        """
        return await self._native.reply_error(request, _code(code), message)

    def reply_error_sync(self, request: dict, code: Union[str, Type[NATSBridgeError]],
                         message: str) -> SendResult:
        return self._native.reply_error_sync(request, _code(code), message)

    async def add_stream(self, name: str, **opts: Any) -> dict:
        """Create (or update) a JetStream stream and its dead-letter stream ``<NAME>_DEAD_LETTER``;
        returns a summary: ``name``, ``subjects``, ``max_age_secs``, ``replicas``, ``messages``,
        ``dead_letter_stream`` (None without one).

        Options are core's (:data:`STREAM_OPTION_NAMES`), durations in seconds; any other name
        raises :class:`InvalidArgumentError`. Each line below names options, then says what they are:

        - ``subjects``: the subjects it captures (default ``NAME.>``).
        - ``storage``: ``"file"`` (default) or ``"memory"``.
        - ``replicas``: 1 to 5.
        - ``max_age``: seconds a message is kept (default the link objects' TTL, which it may not
          exceed).
        - ``retention``: ``"limits"`` (default), ``"workqueue"`` (a message leaves when acked, its
          link objects too) or ``"interest"``.
        - ``duplicate_window``: seconds within which a retried publish is stored once (default 120,
          or ``max_age`` when shorter; longer than ``max_age`` raises :class:`InvalidArgumentError`).
        - ``dead_letter``: also create the dead-letter stream (default True).
        """
        return await self._native.add_stream(name, _send_opts(**opts))

    def add_stream_sync(self, name: str, **opts: Any) -> dict:
        return self._native.add_stream_sync(name, _send_opts(**opts))

    async def consume(self, stream: str, durable: str, *, arrow: Optional[ArrowOut] = None,
                      **opts: Any) -> Consumer:
        """A durable pull consumer named ``durable`` on ``stream`` (created, or updated to these
        options); a consumer opened again with the same name resumes after what was acked.

        Options are core's (:data:`CONSUME_OPTION_NAMES`), durations in seconds; any other name
        raises :class:`InvalidArgumentError`. Each line below names options, then says what they are:

        - ``ack_wait``: seconds before an unsettled delivery comes back (default 30).
        - ``max_deliver``: deliveries at most (-1, the default: unlimited).
        - ``backoff``: a list of redelivery delays in seconds (server side), instead of ``ack_wait``.
        - ``max_ack_pending``: deliveries outstanding at most (default the server's, 1,000).
        - ``double_ack``: ``ack`` waits for the server's confirmation.
        - ``nak_delay``: seconds before a delivery whose link download failed comes back
          (doubling with each delivery; default 1).
        - ``dead_letter_subject``: where what can never decode goes (default
          ``natsbridge.dead_letter.<stream>``, kept by the stream ``<stream>_DEAD_LETTER``).
        - ``filter_subject``: only messages on this subject.
        - ``batch``: messages per pull request (default 100).
        - ``deliver_from``: a new durable starts from ``"all"`` (default) or only ``"new"`` messages.
        """
        return Consumer(await self._native.consume(stream, durable, _send_opts(**opts)), arrow or self._arrow)

    def consume_sync(self, stream: str, durable: str, *, arrow: Optional[ArrowOut] = None,
                     **opts: Any) -> Consumer:
        return Consumer(self._native.consume_sync(stream, durable, _send_opts(**opts)), arrow or self._arrow)

    async def sweep_links(self, stream: str, *, dry_run: bool = True, min_age: Optional[float] = None) -> dict:
        """Object-store link objects uploaded for ``stream`` whose message is not in it and that are
        older than ``min_age`` seconds (default: the stream's duplicate window); removed unless
        ``dry_run``."""
        return await self._native.sweep_links(stream, dry_run, min_age)

    def sweep_links_sync(self, stream: str, *, dry_run: bool = True, min_age: Optional[float] = None) -> dict:
        return self._native.sweep_links_sync(stream, dry_run, min_age)

    async def flush(self) -> None:
        await self._native.flush()

    def flush_sync(self) -> None:
        self._native.flush_sync()

    async def close(self) -> None:
        """Drain, then close: write out what is buffered, deliver what is in flight to the
        subscriptions, unsubscribe everything and close the connection."""
        await self._native.close()

    def close_sync(self) -> None:
        self._native.close_sync()

    # close drains; the old name stays.
    drain = close
    drain_sync = close_sync

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close_sync()


def _code(code: Union[str, Type[NATSBridgeError]]) -> str:
    if isinstance(code, type) and issubclass(code, NATSBridgeError):
        return code.code
    return code


def _connect_opts(servers: Union[str, Sequence[str], None], opts: dict) -> dict:
    out = _send_opts(**opts)
    if servers is not None:
        out["servers"] = [servers] if isinstance(servers, str) else list(servers)
    for key in ("credentials_file", "tls_ca_file", "tls_cert_file", "tls_key_file"):
        if key in out:
            out[key] = os.fspath(out[key])
    return out


class _Connecting:
    """What :func:`connect` returns: await it, or use it directly with ``async with``."""

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._conn: Optional[Connection] = None

    def __await__(self):
        return self._coro.__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await self._coro
        return self._conn

    async def __aexit__(self, *exc: Any) -> None:
        if self._conn is not None:
            await self._conn.close()


def connect(servers: Union[str, Sequence[str], None] = None, *, arrow: ArrowOut = "pandas",
            **options: Any) -> _Connecting:
    """Connect to a NATS server (with its link stores) and return a :class:`Connection`.

    Options are core's (:data:`OPTION_NAMES`, the README's "One vocabulary"), durations in
    seconds; an unknown name or a bad value raises :class:`InvalidArgumentError`. Each line
    below names options, then says what they are:

    - ``servers``: the first argument, a URL or a list of them (None: ``NATS_URL``, else
      nats://localhost:4222).
    - ``name``: the connection name the server shows.
    - ``user``, ``password``, ``token``, ``nkey``, ``credentials_file``: authentication
      (``nkey`` is an nkey seed, ``credentials_file`` a .creds file).
    - ``tls_ca_file``, ``tls_cert_file``, ``tls_key_file``, ``tls_required``: TLS.
    - ``max_reconnect_attempts``, ``reconnect_time_wait``, ``connect_timeout``: reconnecting
      (-1 attempts is forever).
    - ``pending_msgs_limit``: messages buffered per subscription.
    - ``size_threshold``: payloads this large (serialized) or larger go by link (default 500,000).
    - ``fileserver_url``, ``fileserver_kind``: the file server links are uploaded to, and its
      kind, ``"plik"``, ``"http"`` or ``"s3"`` (an ``s3://bucket/prefix`` URL is an S3 store).
    - ``object_store``, ``object_store_bucket``, ``object_store_ttl``, ``object_store_replicas``: the
      JetStream object store (replicas: of the bucket when it is created).
    - ``plik_oneshot``, ``plik_ttl``, ``plik_token``: Plik uploads (a ttl of 0 is the server's default).
    - ``s3_endpoint``, ``s3_region``, ``s3_profile``, ``s3_addressing_style``: the S3 store
      (spec/PROTOCOL.md §8.5); unset ones come from the AWS environment variables and the
      shared config and credentials files, as in the AWS SDKs.
    - ``s3_access_key_id``, ``s3_secret_access_key``, ``s3_session_token``: S3 credentials.
    - ``s3_presign``, ``s3_ttl``: presigned https links, and how long links live (default 1 h).
    - ``allowed_origins``: further origins links may be fetched from.
    - ``max_retries``, ``base_delay``, ``max_delay``: the download retry policy.
    - ``max_download_bytes``: larger link payloads are refused.
    - ``max_payloads``, ``max_message_bytes``: what one received message may hold (defaults:
      10,000 payloads, 4 GiB of declared sizes together); beyond them it raises
      INVALID_ENVELOPE (payloads) or PAYLOAD_TOO_LARGE (bytes).
    - ``max_json_depth``, ``max_arrow_columns``, ``max_arrow_batches``, ``max_arrow_values``: what
      one received payload may hold (defaults: 128 deep, also the most allowed; 10,000
      columns; 100,000 batches; 1,000,000 values, rows and cells, beyond 16 per byte of the
      Arrow stream); beyond them it raises PAYLOAD_TOO_LARGE. The one-call ``smartreceive``
      takes these six too.
    - ``sender_name``, ``sender_id``: the envelopes' sender (sender_id: a UUID unless given).
    - ``jetstream``: ``smartsend`` publishes to the JetStream stream capturing the subject and
      waits for its acknowledgement (at-least-once); the envelope it returns then has
      ``"pub_ack": {"stream", "sequence", "duplicate"}`` (without ``jetstream`` it has no
      ``pub_ack`` key). A subject no stream captures raises :class:`InvalidArgumentError`.
    - ``transfer_progress``: ``callable(nbytes)``, told each chunk of every link upload and
      download, from a runtime thread (keep it quick).
    - ``fileserver_upload_handler``: ``(fileserver_url, dataname, data) -> {"url": ...}`` takes
      every link upload of the connection (called with ``fileserver_url``, else
      ``FILESERVER_URL``, else "").
    - ``fileserver_download_handler``: ``(url, max_retries, base_delay_ms, max_delay_ms,
      correlation_id) -> bytes`` fetches the links it serves: the origin of ``fileserver_url``
      and each of ``allowed_origins`` (``scheme://host[:port][/path]``, or ``scheme:`` for every
      URL of a custom scheme); at least one must be given. Other links (e.g. the object
      store's) go to the connection's other stores. It does its own retrying; an exception is
      :class:`DownloadFailedError`. Without an upload handler, uploads still go to the file
      server or the object store.

    The handlers are plain or coroutine functions. ``async with natsbridge.connect(url) as nc``
    and ``nc = await natsbridge.connect(url)`` both work; leaving the block closes (drains).
    """
    opts = _connect_opts(servers, options)

    async def go() -> Connection:
        return Connection(await _nb.connect(opts), arrow)

    return _Connecting(go())


def connect_sync(servers: Union[str, Sequence[str], None] = None, *, arrow: ArrowOut = "pandas",
                 **options: Any) -> Connection:
    """Blocking twin of :func:`connect`; ``with natsbridge.connect_sync(url) as nc`` closes (drains) on exit."""
    return Connection(_nb.connect_sync(_connect_opts(servers, options)), arrow)
