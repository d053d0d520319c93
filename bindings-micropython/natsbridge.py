"""NATSBridge for MicroPython 1.19+: smartsend/smartreceive over a small synchronous NATS client.

Direct transport only (spec/PROTOCOL.md section 8.4): a payload over 50 KB raises PAYLOAD_TOO_LARGE
before anything is sent, and a received link payload raises INVALID_TRANSPORT. Envelopes are
byte-compatible with the Rust core (core/src/protocol/json.rs): the seeds' field order, compact
JSON, standard padded base64. Error codes are the core's (core/src/error.rs).

    import natsbridge
    env, msg_json = natsbridge.smartsend("sensors.t1", [("reading", {"t": 21.5}, "dictionary")],
                                         broker_url="nats://192.168.1.10:4222")
    nc = natsbridge.connect("nats://192.168.1.10:4222")
    nc.subscribe("cmd.>")
    msg = nc.next_msg(timeout=10)
    env = natsbridge.smartreceive(msg)   # env["payloads"] == [(dataname, data, payload_type), ...]
"""

import binascii
import hashlib
import json
import os
import socket
import time

VERSION = "0.1.0"

TEXT = "text"
DICTIONARY = "dictionary"
ARROWTABLE = "arrowtable"
JSONTABLE = "jsontable"
IMAGE = "image"
AUDIO = "audio"
VIDEO = "video"
BINARY = "binary"
PAYLOAD_TYPES = (TEXT, DICTIONARY, ARROWTABLE, JSONTABLE, IMAGE, AUDIO, VIDEO, BINARY)
BYTE_TYPES = (IMAGE, AUDIO, VIDEO, BINARY)

ACK = "ACK"
NACK = "NACK"
UPDATE_STATUS = "updateStatus"
SHUTDOWN = "shutdown"
CHAT = "chat"
COMMAND = "command"
EVENT = "event"
MSG_PURPOSES = (ACK, NACK, UPDATE_STATUS, SHUTDOWN, CHAT, COMMAND, EVENT)

INVALID_PAYLOAD_TYPE = "INVALID_PAYLOAD_TYPE"
UPLOAD_FAILED = "UPLOAD_FAILED"
DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
INVALID_TRANSPORT = "INVALID_TRANSPORT"
NATS_CONNECTION_FAILED = "NATS_CONNECTION_FAILED"
DESERIALIZATION_ERROR = "DESERIALIZATION_ERROR"
INVALID_ENVELOPE = "INVALID_ENVELOPE"
CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
URL_NOT_ALLOWED = "URL_NOT_ALLOWED"
TIMEOUT = "TIMEOUT"
INVALID_ARGUMENT = "INVALID_ARGUMENT"  # a caller mistake: a bad option, subject, URL or argument type
ERROR_CODES = (INVALID_PAYLOAD_TYPE, UPLOAD_FAILED, DOWNLOAD_FAILED, INVALID_TRANSPORT, NATS_CONNECTION_FAILED,
               DESERIALIZATION_ERROR, INVALID_ENVELOPE, CHECKSUM_MISMATCH, PAYLOAD_TOO_LARGE, URL_NOT_ALLOWED,
               TIMEOUT, INVALID_ARGUMENT)

#: The largest serialized payload MicroPython sends (bytes): the seeds' hard limit for 256 KB devices.
MAX_PAYLOAD_SIZE = 50000

# Base64 is written and checked in pieces of this many source bytes, so a 50 KB payload never
# has a second full-size copy on the heap (a multiple of 3: no padding inside the text).
_CHUNK = 3 * 512
# A message's writes are gathered up to this many bytes per send: with TCP_NODELAY each send is
# a TCP segment, and a message is several writes (its PUB line, its parts, their quotes, CRLF).
_OUT = 2048
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Received strings this long are read in place, not by json.loads: MicroPython's json grows each
# string a few bytes at a time, and a 67 KB base64 string then needs over twice that in heap.
_LIFT_MIN = 256
# A message up to this size goes to json.loads whole: what its strings cost there is small, and
# lifting them (a pass over every string in Python) took most of a small message's receive.
_LIFT_ABOVE = 2048
_LIFT_MARK = "\x00natsbridge:"
_INF = float("inf")
_HEADER = ("correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
           "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url")


class NATSBridgeError(Exception):
    """Every error of this module: ``code`` is one of ERROR_CODES, as in the Rust core."""

    def __init__(self, code, message, correlation_id=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.correlation_id = correlation_id


def new_id():
    """A lowercase UUID v4 string from os.urandom."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = binascii.hexlify(b).decode()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def timestamp_now():
    """UTC ISO 8601 with milliseconds and Z. gmtime and time_ns share the port's epoch."""
    try:
        ns = time.time_ns()
        secs, ms = ns // 1000000000, ns // 1000000 % 1000
    except AttributeError:
        t = time.time()
        secs = int(t)
        ms = int((t - secs) * 1000)
    t = time.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], ms)


try:
    json.dumps(0, separators=(",", ":"))

    def _dumps(value):
        return json.dumps(value, separators=(",", ":"))
except TypeError:  # older ports lack separators: the JSON gets spaces, and stays valid
    _dumps = json.dumps


def _type_name(value):
    return type(value).__name__


def _check_json(value):
    """Raises ValueError for what JSON cannot carry (MicroPython's json.dumps would write it anyway)."""
    if value is None or isinstance(value, str) or type(value) is bool:
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if value != value or value == _INF or value == -_INF:
            raise ValueError("NaN and infinities are not JSON numbers")
        return
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ValueError("JSON object keys must be str, not %s" % _type_name(k))
            _check_json(value[k])
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item)
        return
    raise ValueError("a %s is not JSON-serializable" % _type_name(value))


def _is_buffer(value):
    return isinstance(value, (bytes, bytearray, memoryview))


def _serialize(dataname, payload_type, data):
    """The payload's serialized bytes as a buffer (str buffers are their UTF-8; nothing is copied)."""
    def mismatch(want):
        return NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r has payload_type %r, which needs %s, but the data"
                               " is %s" % (dataname, payload_type, want, _type_name(data)))
    if payload_type == TEXT:
        if not isinstance(data, str):
            raise mismatch("a str")
        return data
    if payload_type == DICTIONARY or payload_type == JSONTABLE:
        if payload_type == JSONTABLE:
            if not isinstance(data, (list, tuple)):
                raise mismatch("a list of row dicts")
            for i in range(len(data)):
                if not isinstance(data[i], dict):
                    raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r: a jsontable must be a list of row dicts;"
                                          " row %d is a %s" % (dataname, i, _type_name(data[i])))
        try:
            _check_json(data)
        except ValueError as e:
            raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r: %s" % (dataname, e))
        return _dumps(data)
    if payload_type == ARROWTABLE:
        raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r: MicroPython cannot build Arrow tables;"
                              " send the rows as a jsontable" % dataname)
    if payload_type in BYTE_TYPES:
        if not _is_buffer(data):
            raise mismatch("bytes")
        return data
    raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "unknown payload_type %r; expected one of %s"
                          % (payload_type, ", ".join(PAYLOAD_TYPES)))


class _Base64:
    """A payload's `data` still to be written: the base64 of `source`, quoted."""

    def __init__(self, source):
        self.source = memoryview(source)
        self.size = len(self.source)

    def __len__(self):
        return (self.size + 2) // 3 * 4 + 2


class _Span:
    """A received JSON string without escapes, left in place in the message bytes."""

    def __init__(self, raw, start, end):
        self.raw = raw
        self.start = start
        self.end = end

    def __len__(self):
        return self.end - self.start + 2  # quoted, as _Base64

    def view(self):
        return memoryview(self.raw)[self.start:self.end]

    def text(self):
        return str(self.view(), "utf-8")


# The envelope's fields up to its payloads, in the seeds' order, as one format.
_HEAD = "{" + ",".join('"%s":%%s' % key for key in _HEADER) + ',"metadata":%s,"payloads":['


def _envelope_parts(env):
    """The envelope JSON in the seeds' field order: str parts, and each payload's data as a
    _Base64 or _Span between them. The JSON text around the data is joined into one str, so a
    small envelope has three parts, not eighteen, to measure and write."""
    parts = []
    text = [_HEAD % tuple([_dumps(env[key]) for key in _HEADER] + [_dumps(env["metadata"])])]
    sep = ""
    for p in env["payloads"]:
        text.append('%s{"id":%s,"dataname":%s,"payload_type":%s,"transport":%s,"encoding":%s,"size":%d,"data":' % (
            sep, _dumps(p["id"]), _dumps(p["dataname"]), _dumps(p["payload_type"]), _dumps(p["transport"]),
            _dumps(p["encoding"]), p["size"]))
        data = p["data"]
        if isinstance(data, (_Base64, _Span)):
            parts.append("".join(text))
            parts.append(data)
            text = []
        else:
            text.append(_dumps(data))
        text.append(',"metadata":%s}' % _dumps(p["metadata"]))
        sep = ","
    text.append("]")
    if env.get("error") is not None:
        text.append(',"error":%s' % _dumps(env["error"]))
    text.append("}")
    parts.append("".join(text))
    return parts


def _parts_size(parts):
    return sum(len(memoryview(p)) if isinstance(p, str) else len(p) for p in parts)


def _emit(parts, write):
    """Calls write() with the envelope's bytes in order; base64 is encoded piece by piece."""
    for p in parts:
        if isinstance(p, _Base64):
            write(b'"')
            for i in range(0, p.size, _CHUNK):
                text = binascii.b2a_base64(p.source[i:i + _CHUNK])
                write(memoryview(text)[:len(text) - 1])  # without its newline
            write(b'"')
        elif isinstance(p, _Span):
            write(b'"')
            write(p.view())
            write(b'"')
        else:
            write(memoryview(p))


def envelope_json(env):
    """The envelope (a dict in wire form, e.g. from parse_envelope) as UTF-8 JSON bytes (a bytearray)."""
    parts = _envelope_parts(env)
    buf = bytearray(_parts_size(parts))
    out = memoryview(buf)
    pos = [0]

    def write(b):
        n = len(b)
        out[pos[0]:pos[0] + n] = b
        pos[0] += n

    _emit(parts, write)
    return buf


# ---------------------------------------------------------------------------------------------
# NATS client: the text protocol over one blocking socket.

class Msg:
    """A message from a subscription: `data` is a bytearray of the message body."""

    def __init__(self, subject, sid, reply, data):
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.data = data


def _connection_failed(message):
    return NATSBridgeError(NATS_CONNECTION_FAILED, message)


def _invalid(message, cid=None):
    return NATSBridgeError(INVALID_ARGUMENT, message, cid)


def _check_subject(subject, what="subject"):
    if not isinstance(subject, str) or not subject or " " in subject or "\t" in subject or "\r" in subject \
            or "\n" in subject:
        raise _invalid("invalid %s %r: NATS subjects are non-empty and have no whitespace" % (what, subject))


def _is_timeout(e):
    # MicroPython reports a socket timeout as OSError ETIMEDOUT (110) or EAGAIN (11).
    return e.args and e.args[0] in (110, 11)


class Connection:
    """A NATS connection: connect(), publish, subscribe, next_msg, flush, close. Not thread-safe."""

    def __init__(self, url=None, name=None, timeout=5.0):
        self.url = url or _env("NATS_URL") or "nats://localhost:4222"
        self.timeout = timeout
        self.sender_id = new_id()
        self.max_payload = 1048576
        self._name = name
        self._sock = None
        self._buf = b""
        self._pending = []
        self._next_sid = 1
        self._out = bytearray(_OUT)
        self._out_len = 0

    def connect(self):
        url = self.url
        scheme = "nats"
        if "://" in url:
            scheme, url = url.split("://", 1)
        if scheme != "nats":
            raise _invalid("%s: only nats:// URLs are supported (no TLS on MicroPython)" % self.url)
        user = password = token = None
        if "@" in url:
            auth, url = url.rsplit("@", 1)
            if ":" in auth:
                user, password = auth.split(":", 1)
            else:
                token = auth
        host, port = url.rstrip("/"), "4222"
        if ":" in host:
            host, port = host.rsplit(":", 1)
        try:
            port = int(port)
        except ValueError:
            raise _invalid("%s: the port is not a number" % self.url)
        try:
            addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
            self._sock = socket.socket(addr[0], addr[1], addr[2])
            try:
                # Nagle's algorithm holds a message's payload back until the server acknowledges
                # its PUB line (up to its delayed-ACK time, 40 ms on Linux): every round trip took
                # 45 ms. MicroPython names no constants: IPPROTO_TCP 6, TCP_NODELAY 1 (Linux, lwIP).
                self._sock.setsockopt(6, 1, 1)
            except OSError:
                pass  # a port without the option keeps Nagle
            self._sock.settimeout(self.timeout)
            self._sock.connect(addr[-1])
        except (OSError, ValueError) as e:
            self._close_socket()
            raise _connection_failed("cannot connect to %s: %s" % (self.url, e))
        op, info = self._read_op(self.timeout)
        if op != "INFO":
            self._close_socket()
            raise _connection_failed("%s did not greet with INFO (got %r)" % (self.url, op))
        opts = {"verbose": False, "pedantic": False, "lang": "micropython", "version": VERSION, "protocol": 1,
                "headers": False, "no_responders": False}
        if self._name:
            opts["name"] = self._name
        if user is not None:
            opts["user"], opts["pass"] = user, password
        if token is not None:
            opts["auth_token"] = token
        self._write(b"CONNECT " + _dumps(opts).encode() + b"\r\n")
        self.flush()
        return self

    def _close_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def close(self):
        self._close_socket()
        self._pending = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, data):
        if self._sock is None:
            raise _connection_failed("the connection to %s is closed" % self.url)
        view = memoryview(data)
        try:
            while len(view):
                view = view[self._sock.send(view):]
        except OSError as e:
            self._close_socket()
            raise _connection_failed("write to %s failed: %s" % (self.url, e))

    def _gather(self, data):
        """Writes `data` after what is gathered; sends whenever _OUT bytes would be exceeded."""
        n = len(data)
        if self._out_len + n > _OUT:
            self._send_gathered()
            if n > _OUT:
                self._write(data)
                return
        memoryview(self._out)[self._out_len:self._out_len + n] = data
        self._out_len += n

    def _send_gathered(self):
        n, self._out_len = self._out_len, 0
        if n:
            self._write(memoryview(self._out)[:n])

    def _recv(self, deadline_ms):
        """Bytes from the socket; None when the deadline passes first."""
        left = time.ticks_diff(deadline_ms, time.ticks_ms()) if deadline_ms is not None else None
        if left is not None and left <= 0:
            return None
        try:
            self._sock.settimeout(None if left is None else left / 1000)
            chunk = self._sock.recv(4096)
        except OSError as e:
            if _is_timeout(e):
                return None
            self._close_socket()
            raise _connection_failed("read from %s failed: %s" % (self.url, e))
        if not chunk:
            self._close_socket()
            raise _connection_failed("%s closed the connection" % self.url)
        return chunk

    def _read_op(self, timeout):
        """The next protocol operation as (op, argument); (None, None) on timeout. Answers PING."""
        if self._sock is None:
            raise _connection_failed("the connection to %s is closed" % self.url)
        deadline = None if timeout is None else time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while True:
            end = self._buf.find(b"\r\n")
            while end < 0:
                chunk = self._recv(deadline)
                if chunk is None:
                    return None, None
                self._buf += chunk
                end = self._buf.find(b"\r\n")
            line = self._buf[:end].decode()
            self._buf = self._buf[end + 2:]
            op, _, arg = line.partition(" ")
            op = op.upper()
            if op == "PING":
                self._write(b"PONG\r\n")
            elif op == "+OK":
                pass
            elif op == "-ERR":
                self._close_socket()
                raise _connection_failed("%s: %s" % (self.url, arg.strip().strip("'")))
            elif op == "INFO":
                info = json.loads(arg)
                self.max_payload = info.get("max_payload", self.max_payload)
                return op, info
            elif op == "MSG":
                return op, self._read_msg(arg, deadline)
            else:
                return op, arg

    def _read_msg(self, arg, deadline):
        fields = arg.split()
        if len(fields) == 3:
            subject, sid, size = fields
            reply = ""
        else:
            subject, sid, reply, size = fields
        size = int(size)
        data = bytearray(size)
        view = memoryview(data)
        got = min(size, len(self._buf))
        view[:got] = memoryview(self._buf)[:got]
        self._buf = self._buf[got:]
        while got < size:
            chunk = self._recv(deadline)
            if chunk is None:
                self._close_socket()
                raise _connection_failed("timed out inside a %d-byte message from %s" % (size, self.url))
            take = min(len(chunk), size - got)
            view[got:got + take] = memoryview(chunk)[:take]
            got += take
            self._buf = chunk[take:]
        while len(self._buf) < 2:
            chunk = self._recv(deadline)
            if chunk is None:
                self._close_socket()
                raise _connection_failed("timed out inside a message from %s" % self.url)
            self._buf += chunk
        self._buf = self._buf[2:]
        return Msg(subject, int(sid), reply, data)

    def flush(self, timeout=None):
        """A PING/PONG round trip: the server has everything written before."""
        timeout = self.timeout if timeout is None else timeout
        self._write(b"PING\r\n")
        while True:
            op, arg = self._read_op(timeout)
            if op is None:
                raise NATSBridgeError(TIMEOUT, "no PONG from %s within %s s" % (self.url, timeout))
            if op == "PONG":
                return
            if op == "MSG":
                self._pending.append(arg)

    def publish(self, subject, data, reply=""):
        """Publishes bytes (or str); PAYLOAD_TOO_LARGE over the server's max_payload, nothing sent."""
        self._publish_parts(subject, (data,), len(memoryview(data)), reply)

    def _publish_parts(self, subject, parts, size, reply=""):
        """Publishes the parts of one message (see _emit) straight to the socket."""
        _check_subject(subject)
        if reply:
            _check_subject(reply, "reply subject")
        if size > self.max_payload:
            raise NATSBridgeError(PAYLOAD_TOO_LARGE, "the message is %d bytes, over the server's max_payload of %d"
                                  % (size, self.max_payload))
        self._out_len = 0  # nothing of a message that failed halfway goes out with this one
        self._gather(("PUB %s %s%d\r\n" % (subject, reply + " " if reply else "", size)).encode())
        _emit(parts, self._gather)
        self._gather(b"\r\n")
        self._send_gathered()

    def subscribe(self, subject, queue=None):
        """Subscribes and waits until the server has the subscription; returns its sid."""
        _check_subject(subject)
        sid = self._next_sid
        self._next_sid += 1
        self._write(("SUB %s %s%d\r\n" % (subject, queue + " " if queue else "", sid)).encode())
        self.flush()
        return sid

    def unsubscribe(self, sid):
        self._write(("UNSUB %d\r\n" % sid).encode())

    def next_msg(self, timeout=None):
        """The next message of any subscription, or None after `timeout` seconds (None: wait forever)."""
        if self._pending:
            return self._pending.pop(0)
        while True:
            op, arg = self._read_op(timeout)
            if op is None:
                return None
            if op == "MSG":
                return arg


def _env(name):
    try:
        return os.getenv(name)
    except AttributeError:  # ports without an environment
        return None


_connections = {}


def connect(url=None, name=None, timeout=5.0):
    """A new connection to `url` (else NATS_URL, else nats://localhost:4222)."""
    return Connection(url, name, timeout).connect()


def _shared_connection(url):
    """One connection per URL for the seeds' one-call style, made on first use."""
    url = url or _env("NATS_URL") or "nats://localhost:4222"
    nc = _connections.get(url)
    if nc is None or nc._sock is None:
        nc = _connections[url] = connect(url)
    return nc


# ---------------------------------------------------------------------------------------------
# Sending

def _option(name, value):
    if not isinstance(value, str):
        raise _invalid("%s must be a str, not %s" % (name, _type_name(value)))
    return value


def smartsend(subject, data, connection=None, broker_url=None, correlation_id=None, msg_purpose=CHAT,
              sender_name="", sender_id=None, receiver_name="", receiver_id="", reply_to="", reply_to_msg_id="",
              metadata=None, return_json=False):
    """Sends [(dataname, data, payload_type), ...] as one envelope, every payload direct.

    Returns (env, msg_json): env is the envelope dict in wire form without the payloads' base64
    ("data" is None). The envelope is streamed to the socket in small pieces, so a 50 KB payload
    costs no second full-size copy; msg_json is therefore None unless return_json=True, which
    builds the published JSON as a bytearray (4/3 of the payloads' size more heap).
    Bad input raises NATSBridgeError before anything is published: INVALID_PAYLOAD_TYPE,
    PAYLOAD_TOO_LARGE (a payload over MAX_PAYLOAD_SIZE bytes, or an envelope over the server's
    max_payload), INVALID_ARGUMENT (header options, subject), NATS_CONNECTION_FAILED.
    """
    if not isinstance(data, (list, tuple)):
        raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "data must be a list of (dataname, data, payload_type) tuples,"
                              " not %s" % _type_name(data))
    env = {
        "correlation_id": _option("correlation_id", correlation_id) if correlation_id else new_id(),
        "msg_id": new_id(),
        "timestamp": timestamp_now(),
        "send_to": _option("subject", subject),
        "msg_purpose": _option("msg_purpose", msg_purpose),
        "sender_name": _option("sender_name", sender_name),
        "sender_id": "",
        "receiver_name": _option("receiver_name", receiver_name),
        "receiver_id": _option("receiver_id", receiver_id),
        "reply_to": _option("reply_to", reply_to),
        "reply_to_msg_id": _option("reply_to_msg_id", reply_to_msg_id),
        "broker_url": "",
        "metadata": {} if metadata is None else metadata,
        "payloads": [],
    }
    cid = env["correlation_id"]
    if not msg_purpose:
        raise _invalid("msg_purpose must not be empty", cid)
    if not isinstance(env["metadata"], dict):
        raise _invalid("metadata must be a dict", cid)
    try:
        _check_json(env["metadata"])
    except ValueError as e:
        raise _invalid("metadata: %s" % e, cid)
    for item in data:
        if not isinstance(item, (tuple, list)) or len(item) != 3 or not isinstance(item[0], str):
            raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "each payload must be a (dataname, data, payload_type) tuple,"
                                  " not %r" % (item,), cid)
        dataname, value, payload_type = item
        try:
            serialized = _Base64(_serialize(dataname, payload_type, value))
        except NATSBridgeError as e:
            e.correlation_id = cid
            raise
        if serialized.size > MAX_PAYLOAD_SIZE:
            raise NATSBridgeError(PAYLOAD_TOO_LARGE, "payload %r is %d bytes; MicroPython sends direct payloads of at"
                                  " most %d bytes" % (dataname, serialized.size, MAX_PAYLOAD_SIZE), cid)
        env["payloads"].append({"id": new_id(), "dataname": dataname, "payload_type": payload_type,
                                "transport": "direct", "encoding": "base64", "size": serialized.size,
                                "data": serialized, "metadata": {"payload_bytes": serialized.size}})
    try:
        nc = connection if connection is not None else _shared_connection(broker_url)
    except NATSBridgeError as e:
        e.correlation_id = cid
        raise
    env["sender_id"] = _option("sender_id", sender_id) if sender_id is not None else nc.sender_id
    env["broker_url"] = nc.url
    parts = _envelope_parts(env)
    size = _parts_size(parts)
    if size > nc.max_payload:
        raise NATSBridgeError(PAYLOAD_TOO_LARGE, "the envelope is %d bytes, over the server's max_payload of %d;"
                              " MicroPython cannot move payloads to a link" % (size, nc.max_payload), cid)
    msg_json = envelope_json(env) if return_json else None
    try:
        nc._publish_parts(subject, parts if msg_json is None else (msg_json,), size)
    except NATSBridgeError as e:
        e.correlation_id = cid
        raise
    for p in env["payloads"]:
        p["data"] = None  # drops the reference to the caller's buffer
    return env, msg_json


# ---------------------------------------------------------------------------------------------
# Receiving (spec/PROTOCOL.md section 9.2: the first failure wins; no payload is returned alone)

def _bad(message, cid=None):
    return NATSBridgeError(INVALID_ENVELOPE, message, cid)


def _check_utf8(buf):
    """UnicodeError unless `buf` is UTF-8; checked in pieces, never split inside a character."""
    n = len(buf)
    view = memoryview(buf)
    i = 0
    while i < n:
        j = min(i + 4096, n)
        while j < n and buf[j] & 0xC0 == 0x80:
            j += 1
        str(view[i:j], "utf-8")
        i = j


def _join_surrogates(raw):
    """MicroPython's json decodes \\ud83d\\ude00 as two lone surrogates: write such pairs as UTF-8 first."""
    out = bytearray()
    i = 0
    while True:
        j = raw.find(b"\\u", i)
        if j < 0 or j + 12 > len(raw):
            break
        # An escaped backslash before \u is not an escape: count the backslashes.
        k = j
        while k > 0 and raw[k - 1] == 92:
            k -= 1
        hi = raw[j + 2:j + 6]
        if (j - k) % 2 == 0 and hi[:1] in (b"d", b"D") and hi[1:2] in b"89abAB" and raw[j + 6:j + 8] == b"\\u":
            try:
                h = int(bytes(hi), 16)
                lo = int(bytes(raw[j + 8:j + 12]), 16)
            except ValueError:
                h = lo = 0
            if 0xDC00 <= lo <= 0xDFFF:
                out += raw[i:j]
                out += chr(0x10000 + ((h - 0xD800) << 10) + (lo - 0xDC00)).encode()
                i = j + 12
                continue
        out += raw[i:j + 2]
        i = j + 2
    out += raw[i:]
    return out


def _string_end(raw, start):
    """Index of the quote closing the JSON string that starts after raw[start - 1], or -1."""
    end = start
    while True:
        end = raw.find(b'"', end)
        if end < 0:
            return -1
        k = end
        while raw[k - 1] == 92:  # backslashes before the quote: an odd count escapes it
            k -= 1
        if (end - k) % 2 == 0:
            return end
        end += 1


def _lift_strings(raw):
    """(JSON text, spans): long escape-free strings replaced by numbered marks, kept as _Spans."""
    spans = []
    out = None
    done = pos = 0
    while True:
        quote = raw.find(b'"', pos)
        if quote < 0:
            break
        end = _string_end(raw, quote + 1)
        if end < 0:
            return raw, []  # unterminated: json.loads reports it
        if end - quote > _LIFT_MIN and raw.find(b"\\", quote + 1, end) < 0:
            if out is None:
                out = bytearray()
            out += memoryview(raw)[done:quote + 1]
            out += ("\\u0000natsbridge:%d" % len(spans)).encode()
            spans.append(_Span(raw, quote + 1, end))
            done = end
        pos = end + 1
    if out is None:
        return raw, spans
    out += memoryview(raw)[done:]
    return out, spans


def _unlift(value, spans):
    """Puts lifted strings back (as str) into a parsed value, in place."""
    if isinstance(value, str):
        return spans[int(value[len(_LIFT_MARK):])].text() if value.startswith(_LIFT_MARK) else value
    if isinstance(value, list):
        for i in range(len(value)):
            value[i] = _unlift(value[i], spans)
    elif isinstance(value, dict):
        for k in list(value):
            v = _unlift(value[k], spans)
            if k.startswith(_LIFT_MARK):
                del value[k]
                k = _unlift(k, spans)
            value[k] = v
    return value


def _message_bytes(msg):
    if isinstance(msg, str):
        return msg.encode()
    if _is_buffer(msg):
        return msg
    data = getattr(msg, "data", None)
    if isinstance(data, str):
        return data.encode()
    if _is_buffer(data):
        return data
    raise _invalid("a message is bytes, bytearray, str or an object with .data, not %s" % _type_name(msg))


def _get_str(obj, key, what, cid=None, required=False):
    if key not in obj:
        if required:
            raise _bad("%s has no %r" % (what, key), cid)
        return ""
    value = obj[key]
    if value is None:
        if required:
            raise _bad("%s: %r must not be null" % (what, key), cid)
        return ""
    if not isinstance(value, str):
        raise _bad("%s: %r must be a string, not %s" % (what, key, _type_name(value)), cid)
    return value


def _get_map(obj, key, what, cid=None):
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad("%s: %r must be an object" % (what, key), cid)
    return value


def parse_envelope(msg):
    """Parses a message (step 1): the envelope in wire form with every field present, or INVALID_ENVELOPE."""
    raw = _message_bytes(msg)
    first = 0
    while first < len(raw) and raw[first] in b" \t\r\n":
        first += 1
    if first == len(raw) or raw[first] != 123:  # '{'
        raise _bad("message is not a JSON object")
    try:
        _check_utf8(raw)
    except UnicodeError:
        raise _bad("message is not valid UTF-8")
    if raw.find(b"\\u") >= 0:
        raw = _join_surrogates(raw)
    text, spans = _lift_strings(raw) if len(raw) > _LIFT_ABOVE else (raw, [])
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise _bad("message is not valid JSON: %s" % e)
    del text
    if not isinstance(obj, dict):
        raise _bad("message is not a JSON object")
    if spans:
        # Payload data stays in place (the base64 is decoded from the message bytes); the rest goes back.
        payloads = obj.get("payloads")
        for p in payloads if isinstance(payloads, list) else ():
            data = p.get("data") if isinstance(p, dict) else None
            if isinstance(data, str) and data.startswith(_LIFT_MARK):
                p["data"] = spans[int(data[len(_LIFT_MARK):])]
        _unlift(obj, spans)
    cid = obj.get("correlation_id") if isinstance(obj.get("correlation_id"), str) else None
    env = {}
    for key in _HEADER:
        env[key] = _get_str(obj, key, "envelope", cid)
    env["metadata"] = _get_map(obj, "metadata", "envelope", cid)
    payloads = obj.get("payloads")
    if payloads is None:
        # Only an error reply may leave payloads out; any other JSON object is not an envelope.
        if obj.get("error") is None:
            raise _bad("message is not an envelope: it has no 'payloads' array (only an error reply may leave it out)", cid)
        payloads = []
    if not isinstance(payloads, list):
        raise _bad("envelope: 'payloads' must be an array", cid)
    env["payloads"] = []
    for i in range(len(payloads)):
        p = payloads[i]
        what = "payload %d" % i
        if not isinstance(p, dict):
            raise _bad("%s must be an object" % what, cid)
        size = p.get("size")
        if "size" not in p or type(size) is bool or not isinstance(size, int) or size < 0:
            raise _bad("%s: 'size' must be a non-negative integer, not %r" % (what, size), cid)
        if "data" not in p:
            raise _bad("%s has no 'data'" % what, cid)
        env["payloads"].append({
            "id": _get_str(p, "id", what, cid),
            "dataname": _get_str(p, "dataname", what, cid, True),
            "payload_type": _get_str(p, "payload_type", what, cid, True),
            "transport": _get_str(p, "transport", what, cid, True),
            "encoding": _get_str(p, "encoding", what, cid),
            "size": size,
            "data": p["data"],
            "metadata": _get_map(p, "metadata", what, cid),
        })
        payloads[i] = None  # the parsed copy is the only one kept
    error = obj.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("code"), str) \
                or not isinstance(error.get("message"), str):
            raise _bad("envelope: 'error' must be an object with string 'code' and 'message'", cid)
        error = {"code": error["code"], "message": error["message"], "details": error.get("details")}
    env["error"] = error
    return env


def _decode_base64(data, dataname):
    """Standard alphabet, padding optional, nothing else: the core's rule. `data` is a str or a _Span."""
    view = data.view() if isinstance(data, _Span) else memoryview(data)
    n = len(view)

    def invalid():
        return NATSBridgeError(DESERIALIZATION_ERROR, "payload %r: invalid base64 data (%d characters; standard"
                               " alphabet expected)" % (dataname, n))
    pad = 0
    while pad < 2 and pad < n and view[n - 1 - pad] == 61:  # '='
        pad += 1
    if (n - pad) % 4 == 1 or (pad and n % 4):
        raise invalid()
    for i in range(0, n - pad, 4096):  # in pieces: no full-size copy of the text
        if bytes(view[i:min(i + 4096, n - pad)]).strip(_B64_ALPHABET):
            raise invalid()
    if n % 4:
        view = memoryview(bytes(view) + b"=" * (4 - n % 4))
    try:
        raw = binascii.a2b_base64(view)
    except ValueError:
        raise invalid()
    # binascii ignores bits past the last byte; the core does not (e.g. "YR==" is not "YQ==").
    tail = len(raw) % 3 or 3
    if len(raw) and binascii.b2a_base64(raw[-tail:])[:4] != bytes(view[-4:]):
        raise invalid()
    return raw


def check_payload(p, cid=None):
    """Step 2 for one parsed payload. Direct: its bytes, size- and sha256-checked. Link: None."""
    name = p["dataname"]
    transport = p["transport"]
    if transport != "direct" and transport != "link":
        raise NATSBridgeError(INVALID_TRANSPORT, "payload %r: unknown transport %r; expected direct or link"
                              % (name, transport), cid)
    if p["payload_type"] not in PAYLOAD_TYPES:
        raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r: unknown payload_type %r; expected one of %s"
                              % (name, p["payload_type"], ", ".join(PAYLOAD_TYPES)), cid)
    sha256 = p["metadata"].get("sha256")
    if sha256 is not None and not isinstance(sha256, str):
        raise _bad("payload %r: metadata.sha256 must be a hex string" % name, cid)
    encoding = p["encoding"]
    data = p["data"]
    if isinstance(data, _Span) and (transport == "link" or encoding not in ("", "base64", "arrow-ipc")):
        data = data.text()
    if transport == "link":
        if encoding not in ("", "none"):
            raise _bad("payload %r: a link payload has encoding \"none\", not %r" % (name, encoding), cid)
        if not isinstance(data, str):
            raise _bad("payload %r: data must be a URL string" % name, cid)
        return None
    if encoding in ("", "base64", "arrow-ipc"):
        if not isinstance(data, (str, _Span)):
            raise _bad("payload %r: data must be a base64 string" % name, cid)
        try:
            raw = _decode_base64(data, name)
        except NATSBridgeError as e:
            e.correlation_id = cid
            raise
    elif encoding == "json" and p["payload_type"] in (DICTIONARY, JSONTABLE):
        # Inline JSON: its size and sha256 describe the sender's JSON text, which is not kept.
        return _dumps(data).encode()
    else:
        raise _bad("payload %r: encoding %r is not valid for a direct %s payload" % (name, encoding, p["payload_type"]),
                   cid)
    if len(raw) != p["size"]:
        raise NATSBridgeError(CHECKSUM_MISMATCH, "payload %r declares size %d but has %d bytes"
                              % (name, p["size"], len(raw)), cid)
    if sha256 is not None:
        actual = binascii.hexlify(hashlib.sha256(raw).digest()).decode()
        if actual != sha256.lower():
            raise NATSBridgeError(CHECKSUM_MISMATCH, "payload %r sha256 is %s, metadata says %s"
                                  % (name, actual, sha256), cid)
    return raw


def deserialize(payload_type, raw, dataname=""):
    """Step 4: the serialized bytes as the payload's value (DESERIALIZATION_ERROR when they do not fit)."""
    if payload_type == TEXT:
        try:
            return str(raw, "utf-8")
        except UnicodeError:
            raise NATSBridgeError(DESERIALIZATION_ERROR, "text payload %r is not valid UTF-8" % dataname)
    if payload_type == DICTIONARY or payload_type == JSONTABLE:
        try:
            _check_utf8(raw)
            if raw.find(b"\\u") >= 0:
                raw = _join_surrogates(raw)
            value = json.loads(raw)
        except (ValueError, UnicodeError):
            raise NATSBridgeError(DESERIALIZATION_ERROR, "%s payload %r is not valid JSON" % (payload_type, dataname))
        if payload_type == JSONTABLE:
            if not isinstance(value, list) or any(not isinstance(row, dict) for row in value):
                raise NATSBridgeError(DESERIALIZATION_ERROR, "jsontable payload %r is not an array of row objects"
                                      % dataname)
        return value
    if payload_type == ARROWTABLE:
        raise NATSBridgeError(INVALID_PAYLOAD_TYPE, "payload %r is an arrowtable; MicroPython cannot read Arrow"
                              " tables (ask the sender for a jsontable)" % dataname)
    return raw


def smartreceive(msg):
    """Decodes a message (bytes, bytearray, str, or a Msg) into the envelope dict.

    env["payloads"] is [(dataname, data, payload_type), ...] in order (text: str; dictionary,
    jsontable: the JSON value; image, audio, video, binary: bytes), env["transports"] one
    "direct" per payload, env["error"] the error body of a NACK reply or None (see error_reply).
    Raises NATSBridgeError; a link payload is INVALID_TRANSPORT (MicroPython receives direct only).
    """
    env = parse_envelope(msg)
    cid = env["correlation_id"] or None
    wire = env["payloads"]
    raws = []
    for p in wire:
        raws.append(check_payload(p, cid))
        p["data"] = None  # frees the base64 text as soon as its bytes are decoded
    for i in range(len(wire)):
        if raws[i] is None:
            raise NATSBridgeError(INVALID_TRANSPORT, "payload %r is a link payload; MicroPython receives direct"
                                  " payloads only (ask the sender for a size_threshold above %d bytes)"
                                  % (wire[i]["dataname"], wire[i]["size"]), cid)
    payloads = []
    for i in range(len(wire)):
        p = wire[i]
        try:
            value = deserialize(p["payload_type"], raws[i], p["dataname"])
        except NATSBridgeError as e:
            e.correlation_id = cid
            raise
        raws[i] = None
        payloads.append((p["dataname"], value, p["payload_type"]))
    env["payloads"] = payloads
    env["transports"] = ["direct"] * len(payloads)
    if isinstance(msg, Msg):
        env["subject"] = msg.subject
        env["reply"] = msg.reply
    return env


def error_reply(env):
    """The NATSBridgeError an error reply (NACK) carries, or None; an unknown code reads as INVALID_ENVELOPE."""
    body = env.get("error")
    if body is None:
        return None
    code = body["code"] if body["code"] in ERROR_CODES else INVALID_ENVELOPE
    return NATSBridgeError(code, body["message"], env.get("correlation_id") or None)
