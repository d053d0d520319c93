"""A minimal NATS client that publishes exact bytes: the runner's own raw publisher for the error
cells (spec/vectors/err-*.json carry messages no binding would send). Standard library only:
INFO, CONNECT, PUB, PING/PONG over one TCP socket, every read bounded by a timeout."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import unquote, urlsplit


class NatsError(Exception):
    """The server refused, closed or did not answer in time."""


class RawPublisher:
    def __init__(self, url: str, timeout: float = 10.0, name: str = "natsbridge-interop-raw"):
        u = urlsplit(url if "://" in url else f"nats://{url}")
        if u.scheme not in ("nats", ""):
            raise NatsError(f"the raw publisher speaks plain nats://, not {u.scheme}://")
        self.timeout = timeout
        self._buf = b""
        try:
            self._sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=timeout)
        except OSError as e:
            raise NatsError(f"cannot connect to {url}: {e}") from None
        # PUB then PING are two small writes: without this, Nagle holds the PING back until the
        # server's delayed ACK of the PUB (40 ms a message on Linux).
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            op, arg = self._read_op(time.monotonic() + timeout)
            if op != "INFO":
                raise NatsError(f"expected INFO from {url}, got {op} {arg}")
            info = json.loads(arg)
            if info.get("tls_required"):
                raise NatsError(f"{url} requires TLS; the raw publisher is plain TCP only")
            self.max_payload = int(info.get("max_payload", 1 << 20))
            connect = {"verbose": False, "pedantic": False, "name": name, "lang": "python-raw",
                       "version": "0", "protocol": 1, "headers": False}
            if u.username:
                connect.update(user=unquote(u.username), **{"pass": unquote(u.password or "")})
            self._sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
            self.flush()  # the server answers -ERR to a refused CONNECT before this PONG
        except BaseException:
            self.close()
            raise

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NatsError(f"no answer from the server within {self.timeout:g} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise NatsError(f"connection lost: {e}") from None
            if not chunk:
                raise NatsError("the server closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _read_op(self, deadline: float) -> tuple[str, str]:
        line = self._read_line(deadline).decode("utf-8", "replace")
        op, _, arg = line.partition(" ")
        return op.upper(), arg

    def publish(self, subject: str, data: bytes):
        if not subject or any(c.isspace() for c in subject):
            raise NatsError(f"bad subject {subject!r}")
        if len(data) > self.max_payload:
            raise NatsError(f"{len(data)} bytes is over the server's max_payload {self.max_payload}")
        self._sock.settimeout(self.timeout)
        try:
            self._sock.sendall(f"PUB {subject} {len(data)}\r\n".encode() + data + b"\r\n")
        except OSError as e:
            raise NatsError(f"publish failed: {e}") from None

    def flush(self):
        """A PING/PONG round trip: the server has processed everything written before it."""
        self._sock.settimeout(self.timeout)
        try:
            self._sock.sendall(b"PING\r\n")
        except OSError as e:
            raise NatsError(f"PING failed: {e}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            op, arg = self._read_op(deadline)
            if op == "PONG":
                return
            if op == "PING":
                self._sock.sendall(b"PONG\r\n")
            elif op == "-ERR":
                raise NatsError(f"server error: {arg}")
            elif op not in ("+OK", "INFO"):
                raise NatsError(f"unexpected {op} {arg}"[:200])

    def close(self):
        try:
            self._sock.close()
        except OSError:
            pass
