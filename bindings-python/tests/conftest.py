"""The real servers for the whole session, from the project's one Python starter
(servers/python/natsbridge_servers.py): nats-server on free loopback ports, Plik and s3s-fs."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "servers/python"))
from natsbridge_servers import NatsServer, Plik, S3Server, free_port, jwt_auth, nkey_user, tls_config, tls_files  # noqa: E402


async def nats_py_subscribe(nc, subject: str):
    """A nats-py subscription the server already has. nats-py (2.16) leaves the SUB for its
    flusher task but writes flush()'s PING straight to the socket, so under load the PONG can
    come back before the server has read the SUB, and a message published at once is missed (1
    in 20 with both CPUs saturated, a nats-py publisher's as well). The first flush lets the
    flusher write the SUB; the second's PING goes after it."""
    sub = await nc.subscribe(subject)
    await nc.flush()
    await nc.flush()
    return sub


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
def s3_server():
    """The real s3s-fs (scripts/install-s3s.sh) with the bucket ``natsbridge``."""
    try:
        s3 = S3Server().start()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=3)
    yield s3
    s3.stop()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    """A nats-server that requires TLS and a client certificate, from a CA made by trustme.
    Yields (url, dict of PEM paths: ca, cert, key, other-ca)."""
    pytest.importorskip("trustme")
    paths = tls_files(tmp_path_factory.mktemp("pki"))
    for url in serve(tls_config(paths), jetstream=False):
        yield url.replace("nats://", "tls://"), paths


@pytest.fixture(scope="session")
def nkey_server():
    """A nats-server that knows one user by an nkey made here. Yields (url, that user's seed)."""
    seed, public = nkey_user()
    for url in serve(f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}', jetstream=False):
        yield url, seed


@pytest.fixture(scope="session")
def jwt_server(tmp_path_factory):
    """A nats-server in operator mode (JWTs made by nsc, a memory resolver). Yields (url, dict:
    creds, a user's .creds file it accepts; foreign_creds, another operator's user)."""
    auth = jwt_auth(tmp_path_factory.mktemp("nsc"))
    for url in serve(auth["config"], jetstream=False):
        yield url, auth


@pytest.fixture
def dead_url():
    return f"nats://127.0.0.1:{free_port()}"
