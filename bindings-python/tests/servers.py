"""A real nats-server on a free loopback port, for the pytest suites that drive it from CPython
(this one, and bindings-micropython's, which imports this module)."""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(binary: str, config=None):
    """Starts nats-server (JetStream on, unless a config file text is given) and yields its URL;
    stops it when resumed."""
    store = tempfile.mkdtemp(prefix="natsbridge-nats-")
    port = free_port()
    args = [binary, "-a", "127.0.0.1", "-p", str(port)]
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
        proc.wait(5)
    shutil.rmtree(store, ignore_errors=True)
