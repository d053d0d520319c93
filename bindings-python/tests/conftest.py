"""The real servers for the whole session, from the project's one Python starter
(servers/python/natsbridge_servers.py): nats-server on free loopback ports, and Plik."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "servers/python"))
from natsbridge_servers import NatsServer, Plik, free_port  # noqa: E402


def serve(config: str = "", jetstream: bool = True):
    """A started nats-server, stopped when the generator is resumed; yields its URL."""
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
    yield from serve()


@pytest.fixture(scope="session")
def small_nats_url():
    """A server with max_payload 65536 and no JetStream: no object store to fall back on."""
    yield from serve("max_payload: 65536", jetstream=False)


@pytest.fixture(scope="session")
def plik_url():
    """The real Plik (scripts/install-plik.sh): one-shot uploads allowed, TTLs up to one day."""
    try:
        plik = Plik(default_ttl="1h", max_ttl="1d").start()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=3)
    yield plik.url
    plik.stop()


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
              f'ca_file: "{paths["ca"]}", verify: true, timeout: 2 }}')
    for url in serve(config, jetstream=False):
        yield url.replace("nats://", "tls://"), {k: str(v) for k, v in paths.items()}


@pytest.fixture
def dead_url():
    return f"nats://127.0.0.1:{free_port()}"
