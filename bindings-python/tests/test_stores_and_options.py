"""Link stores and connection options against real servers: Plik, the object store, TLS, token,
user/password, nkey and .creds file authentication."""

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import natsbridge as nb
from conftest import nkey_user

BLOB = bytes(range(256)) * 8000  # 2,048,000 bytes: a link at the default threshold


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def subject():
    return f"test.py.stores.{uuid.uuid4().hex}"


async def send_and_receive(nc, payloads, **opts):
    subj = subject()
    sub = await nc.subscribe(subj)
    env, _ = await nc.smartsend(subj, payloads, **opts)
    return env, await sub.next(timeout=20)


def test_plik_link_round_trip(nats_url, plik_url):
    async def go():
        async with nb.connect(nats_url, fileserver_url=plik_url) as nc:
            return await send_and_receive(nc, [("blob", BLOB, "binary"), ("note", "small", "text")])

    env, got = run(go())
    link = env["payloads"][0]
    assert link["transport"] == "link"
    assert link["data"].startswith(plik_url + "/file/"), link["data"]
    assert got["payloads"] == [("blob", BLOB, "binary"), ("note", "small", "text")]
    assert got["transports"] == ["link", "direct"]


def test_plik_one_call_api_of_the_seeds(nats_url, plik_url):
    """smartsend(..., broker_url=, fileserver_url=) and smartreceive(msg, fileserver_url=)."""
    async def go():
        env, msg_json = await nb.smartsend(subject(), [("blob", BLOB, "image")], broker_url=nats_url,
                                           fileserver_url=plik_url, size_threshold=1000)
        got = await nb.smartreceive(msg_json.encode(), broker_url=nats_url, fileserver_url=plik_url)
        return env, got

    env, got = run(go())
    assert env["payloads"][0]["data"].startswith(plik_url)
    assert got["payloads"] == [("blob", BLOB, "image")]


def test_plik_oneshot_link_is_consumed_by_the_first_download(nats_url, plik_url):
    async def go():
        async with nb.connect(nats_url, fileserver_url=plik_url, plik_oneshot=True) as nc:
            env, msg_json = await nc.smartsend(subject(), [("once", BLOB, "binary")])
            first = await nc.smartreceive(msg_json)
            with pytest.raises(nb.DownloadFailedError) as e:
                await nc.smartreceive(msg_json)
            return env, first, e.value

    env, first, error = run(go())
    assert first["payloads"][0][1] == BLOB
    assert error.code == "DOWNLOAD_FAILED"
    assert error.correlation_id == env["correlation_id"]


def test_plik_ttl_over_the_server_maximum_is_upload_failed(nats_url, plik_url):
    async def go():
        # The fixture's Plik allows one day; two days are refused, and no message is published.
        async with nb.connect(nats_url, fileserver_url=plik_url, plik_ttl=2 * 86400, object_store=False) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            with pytest.raises(nb.UploadFailedError) as e:
                await nc.smartsend(subj, [("blob", BLOB, "binary")])
            with pytest.raises(nb.TimeoutError):
                await sub.next(timeout=0.5)
            return e.value

    assert "ttl" in str(run(go())).lower()


@pytest.mark.parametrize("store", ["object_store", "plik"])
def test_transfer_progress_reports_every_byte(nats_url, plik_url, store):
    sent = []
    opts = {"fileserver_url": plik_url} if store == "plik" else {}

    async def go():
        async with nb.connect(nats_url, transfer_progress=sent.append, **opts) as nc:
            env, got = await send_and_receive(nc, [("blob", BLOB, "binary")])
            return got

    got = run(go())
    assert got["payloads"][0][1] == BLOB
    # Both ends ran on this connection: the upload, then the download, each reported in full.
    assert sum(sent) == 2 * len(BLOB), (len(sent), sum(sent))
    assert all(isinstance(n, int) and n > 0 for n in sent)


@pytest.mark.parametrize("store", ["object_store", "plik"])
def test_a_path_is_a_file_sent_while_it_is_read(nats_url, plik_url, store, tmp_path):
    opts = {"fileserver_url": plik_url} if store == "plik" else {}
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(BLOB)
    small.write_bytes(b"tiny")

    async def go():
        async with nb.connect(nats_url, **opts) as nc:
            return await send_and_receive(nc, [("big", big, "binary"), ("small", small, "image")])

    env, got = run(go())
    assert [(p["transport"], p["size"]) for p in env["payloads"]] == [("link", len(BLOB)), ("direct", 4)]
    assert [p[1] for p in got["payloads"]] == [BLOB, b"tiny"]


@pytest.mark.parametrize("store", ["object_store", "plik"])
def test_a_streamed_link_is_read_in_chunks_or_saved_and_direct_payloads_are_decoded(nats_url, plik_url, store,
                                                                                    tmp_path):
    opts = {"fileserver_url": plik_url} if store == "plik" else {}

    async def go():
        async with nb.connect(nats_url, **opts) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            await nc.smartsend(subj, [("big", BLOB, "binary"), ("note", "small", "text")])
            env = await sub.next_streamed(timeout=20)
            link = env["payloads"][0][1]
            assert isinstance(link, nb.LinkStream)
            assert (link.dataname, link.payload_type, link.size, link.sha256) == ("big", "binary", len(BLOB), None)
            assert env["payloads"][1] == ("note", "small", "text")
            assert env["transports"] == ["link", "direct"]
            chunks = [chunk async for chunk in link]
            assert b"".join(chunks) == BLOB and link.sha256 == hashlib.sha256(BLOB).hexdigest()
            # The same message again, saved to a file by the blocking twin in a thread.
            await nc.smartsend(subj, [("big", BLOB, "binary")])
            env = await sub.next_streamed(timeout=20)
            return await asyncio.to_thread(env["payloads"][0][1].save_sync, tmp_path / "big.bin")

    assert run(go()) == len(BLOB)
    assert (tmp_path / "big.bin").read_bytes() == BLOB


def test_a_streamed_link_with_other_bytes_is_checksum_mismatch_and_leaves_no_file(nats_url, tmp_path):
    import nats

    async def go():
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            env, msg_json = await nc.smartsend(subj, [("big", BLOB, "binary")])
            await sub.next_streamed(timeout=20)  # the genuine message
            # The same message twice more, with the sha256 of other bytes.
            forged = msg_json.replace(env["payloads"][0]["metadata"]["sha256"], hashlib.sha256(b"x").hexdigest())
            raw = await nats.connect(nats_url)
            for _ in range(2):
                await raw.publish(subj, forged.encode())
            await raw.close()
            link = (await sub.next_streamed(timeout=20))["payloads"][0][1]
            with pytest.raises(nb.ChecksumMismatchError):
                await link.save(tmp_path / "forged.bin")
            # Read by chunks, the bytes come, and the last read raises.
            link = (await sub.next_streamed(timeout=20))["payloads"][0][1]
            with pytest.raises(nb.ChecksumMismatchError):
                await asyncio.to_thread(lambda: list(link))

    run(go())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("store", ["object_store", "plik"])
def test_a_binary_file_object_is_sent_from_its_position_while_it_is_read(nats_url, plik_url, store, tmp_path):
    import io
    opts = {"fileserver_url": plik_url} if store == "plik" else {}
    (tmp_path / "big.bin").write_bytes(BLOB)

    class CountedReads(io.BytesIO):
        sizes: list = []

        def read(self, n=-1):
            self.sizes.append(n)
            return super().read(n)

    async def go():
        async with nb.connect(nats_url, **opts) as nc:
            with open(tmp_path / "big.bin", "rb") as big:
                big.seek(3)  # sent from where it stands, as shutil.copyfileobj would copy it
                return await send_and_receive(nc, [("big", big, "binary"), ("small", CountedReads(b"tiny"), "image")])

    env, got = run(go())
    assert [(p["transport"], p["size"]) for p in env["payloads"]] == [("link", len(BLOB) - 3), ("direct", 4)]
    assert [p[1] for p in got["payloads"]] == [BLOB[3:], b"tiny"]
    assert CountedReads.sizes and all(0 < n <= 256 * 1024 for n in CountedReads.sizes)

    # The blocking API reads it too (the GIL is released while the send waits for the reads).
    with nb.connect_sync(nats_url, **opts) as nc:
        with open(tmp_path / "big.bin", "rb") as big:
            env, _ = nc.smartsend_sync(subject(), [("big", big, "binary")])
            assert big.tell() == len(BLOB)
    assert env["payloads"][0]["size"] == len(BLOB)


def test_a_file_object_that_cannot_be_sent_is_an_error_and_publishes_nothing(nats_url, tmp_path):
    import io
    (tmp_path / "notes.txt").write_text("hello")

    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise OSError("the disk went away")

    class TooGenerous(io.BytesIO):
        def read(self, n=-1):
            return b"x" * (n + 1)

    async def go(payload):
        async with nb.connect(nats_url) as nc:
            subj = subject()
            sub = await nc.subscribe(subj)
            try:
                await nc.smartsend(subj, [payload])
            finally:
                with pytest.raises(nb.TimeoutError):
                    await sub.next(timeout=0.3)

    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as pipe, open(tmp_path / "notes.txt") as text:
        os.close(write_fd)
        with pytest.raises(nb.InvalidArgumentError, match="cannot seek"):
            run(go(("p", pipe, "binary")))
        with pytest.raises(nb.UploadFailedError, match="binary mode"):
            run(go(("t", text, "binary")))
    with pytest.raises(nb.UploadFailedError, match="the disk went away"):
        run(go(("b", Broken(BLOB), "binary")))
    with pytest.raises(nb.UploadFailedError, match=r"read\(262144\) gave 262145 bytes"):
        run(go(("g", TooGenerous(b"y" * 10), "binary")))
    with pytest.raises(nb.InvalidPayloadTypeError, match="only image, audio, video and binary"):
        run(go(("j", io.BytesIO(b"{}"), "dictionary")))


def test_a_path_for_a_missing_file_or_a_non_byte_type_is_an_error_before_sending(nats_url, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")

    async def go(payload):
        async with nb.connect(nats_url) as nc:
            await nc.smartsend(subject(), [payload])

    with pytest.raises(nb.InvalidArgumentError, match="missing.bin"):
        run(go(("big", tmp_path / "missing.bin", "binary")))
    with pytest.raises(nb.InvalidPayloadTypeError, match="only image, audio, video and binary"):
        run(go(("notes", tmp_path / "notes.txt", "text")))


def test_object_store_ttl_and_bucket_options(nats_url):
    async def go():
        async with nb.connect(nats_url, object_store_bucket="py_opts", object_store_ttl=120) as nc:
            return await send_and_receive(nc, [("blob", BLOB, "audio")])

    env, got = run(go())
    assert env["payloads"][0]["data"].startswith("nats-obj://py_opts/")
    assert got["payloads"] == [("blob", BLOB, "audio")]


@pytest.mark.parametrize("options,why", [
    ({"transfer_progress": "not callable"}, "transfer_progress must be callable"),
    ({"plik_ttl": -1}, "plik_ttl"),
    ({"connect_timeout": "soon"}, "connect_timeout"),
    ({"size_threshold": 1.5}, "size_threshold"),
    ({"plik_tll": 60}, "unknown option \"plik_tll\""),
    ({"fileserver_kind": "http_put"}, "fileserver_kind"),  # the old spelling: "http" now
    ({"nkeys_seed": "SU..."}, "unknown option \"nkeys_seed\""),  # nkey now
    ({"user_credentials": "x.creds"}, "unknown option \"user_credentials\""),  # credentials_file now
    ({"retries": 3}, "unknown option \"retries\""),  # max_retries now
    ({"max_retries": 0}, "max_retries"),
    ({"allowed_origins": 5}, "allowed_origins"),
    ({"sender_name": object()}, "JSON"),
])
def test_bad_options_are_invalid_arguments_before_connecting(dead_url, options, why):
    with pytest.raises(nb.InvalidArgumentError, match=why) as info:
        nb.connect_sync(dead_url, **options)
    assert info.value.code == "INVALID_ARGUMENT"
    assert isinstance(info.value, ValueError) and isinstance(info.value, nb.NATSBridgeError)


@pytest.mark.parametrize("options,why", [
    ({"size_threshold": -1}, "size_threshold"),
    ({"correlation": "x"}, "unknown send option"),
    ({"metadata": [1]}, "metadata"),
    ({"msg_purpose": ""}, "msg_purpose"),
    ({"transfer_progress": print}, "unknown send option"),
])
def test_bad_send_options_are_invalid_arguments(nats_url, options, why):
    with pytest.raises(nb.InvalidArgumentError, match=why):
        nb.smartsend_sync(subject(), [("a", "b", "text")], broker_url=nats_url, **options)
    with pytest.raises(nb.InvalidArgumentError, match=why):
        run(nb.smartsend(subject(), [("a", "b", "text")], broker_url=nats_url, **options))
    with nb.connect_sync(nats_url) as nc:
        with pytest.raises(nb.InvalidArgumentError, match=why):
            nc.smartsend_sync(subject(), [("a", "b", "text")], **options)


def test_bad_timeouts_are_invalid_arguments(nats_url):
    with nb.connect_sync(nats_url) as nc:
        sub = nc.subscribe_sync(subject())
        for bad in (-1, float("nan"), "soon"):
            with pytest.raises(nb.InvalidArgumentError, match="timeout"):
                sub.next_sync(timeout=bad)
            with pytest.raises(nb.InvalidArgumentError, match="timeout"):
                nc.request_sync(subject(), [("q", "?", "text")], timeout=bad)
        with pytest.raises(nb.InvalidArgumentError, match="a message is bytes"):
            nc.smartreceive_sync(42)


def test_tls_with_ca_and_client_certificate(tls_server):
    url, pem = tls_server

    async def go():
        async with nb.connect(url, tls_ca_file=pem["ca"], tls_cert_file=pem["cert"], tls_key_file=pem["key"],
                              tls_required=True) as nc:
            return await send_and_receive(nc, [("m", "over tls", "text"), ("d", {"k": [1, 2]}, "dictionary")])

    env, got = run(go())
    assert got["payloads"] == [("m", "over tls", "text"), ("d", {"k": [1, 2]}, "dictionary")]


def test_tls_without_the_client_certificate_or_ca_fails_to_connect(tls_server):
    url, pem = tls_server
    with pytest.raises(nb.NatsConnectionFailedError):
        nb.connect_sync(url, tls_ca_file=pem["ca"], tls_required=True, connect_timeout=3, max_reconnect_attempts=0)
    for ca in ({}, {"tls_ca_file": pem["other-ca"]}):  # the server's certificate is not trusted
        with pytest.raises(nb.NatsConnectionFailedError):
            nb.connect_sync(url, tls_cert_file=pem["cert"], tls_key_file=pem["key"], tls_required=True,
                            connect_timeout=3, max_reconnect_attempts=0, **ca)


def test_numpy_values_in_json_payloads(nats_url):
    np = pytest.importorskip("numpy")
    value = {"i": np.int64(-7), "u": np.uint8(200), "f": np.float32(0.5), "b": np.bool_(True),
             "s": np.str_("x"), "arr": np.arange(3), "m": np.array([[1.5, 2.0]])}
    rows = [{"x": np.int32(1), "ok": np.bool_(False)}]

    with nb.connect_sync(nats_url) as nc:
        sub = nc.subscribe_sync(subj := subject())
        nc.smartsend_sync(subj, [("d", value, "dictionary"), ("t", rows, "jsontable")])
        got = sub.next_sync(timeout=10)
    assert got["payloads"][0][1] == {"i": -7, "u": 200, "f": 0.5, "b": True, "s": "x", "arr": [0, 1, 2],
                                     "m": [[1.5, 2.0]]}
    assert type(got["payloads"][0][1]["b"]) is bool
    assert got["payloads"][1][1] == [{"x": 1, "ok": False}]
    with pytest.raises(nb.InvalidPayloadTypeError, match="NaN"):
        nb.smartsend_sync("x", [("d", {"nan": np.float64("nan")}, "dictionary")], broker_url=nats_url)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_blocking_call(nats_url):
    """A _sync call waiting on the network gives way to KeyboardInterrupt within ~100 ms."""
    # Python's own Ctrl-C handler, whatever the child inherits: a process started in the
    # background by a non-interactive shell (a CI runner, `nohup ... &`) has SIGINT ignored, and
    # its children then never see the signal (the failure seen on a fresh machine).
    # SIGUSR1 makes the child print every thread's Python stack: a child that outlives the
    # deadline shows where it waits (in next_sync, in close_sync or at exit).
    script = textwrap.dedent(f"""
        import faulthandler, signal
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import natsbridge as nb
        nc = nb.connect_sync({nats_url!r})
        sub = nc.subscribe_sync("test.py.nothing.{uuid.uuid4().hex}")
        try:
            print("waiting", flush=True)  # inside the try: the signal may land before the call
            sub.next_sync()  # no timeout: waits until interrupted
        except KeyboardInterrupt:
            nc.close_sync()
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.3)  # let it get into next_sync, which must then give way
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the child did not end within 10 s of SIGINT; its output {out!r}, its stacks:\n{err}")
    finally:
        proc.kill()
    assert "interrupted" in out, err
    assert proc.returncode == 0, err


@pytest.fixture(scope="module")
def auth_servers():
    """Two servers: one wants a token, one a user and password."""
    from conftest import serve
    token_gen = serve('authorization { token: "s3cret-token" }', jetstream=False)
    user_gen = serve('authorization { user: "alice", password: "pw-1" }', jetstream=False)
    yield next(token_gen), next(user_gen)
    for gen in (token_gen, user_gen):
        next(gen, None)


def test_token_and_user_password_auth(auth_servers):
    token_url, user_url = auth_servers
    for url, good, bad in ((token_url, {"token": "s3cret-token"}, {"token": "wrong"}),
                           (user_url, {"user": "alice", "password": "pw-1"}, {"user": "alice", "password": "no"})):
        with nb.connect_sync(url, **good) as nc:
            sub = nc.subscribe_sync(subj := subject())
            nc.smartsend_sync(subj, [("m", "authorized", "text")])
            assert sub.next_sync(timeout=10)["payloads"] == [("m", "authorized", "text")]
        with pytest.raises(nb.NatsConnectionFailedError):
            nb.connect_sync(url, connect_timeout=3, max_reconnect_attempts=0, **bad)


def round_trip_sync(url, **auth):
    with nb.connect_sync(url, **auth) as nc:
        sub = nc.subscribe_sync(subj := subject())
        nc.smartsend_sync(subj, [("m", "authenticated", "text")])
        assert sub.next_sync(timeout=10)["payloads"] == [("m", "authenticated", "text")]


def refused(url, error=nb.NatsConnectionFailedError, **auth):
    with pytest.raises(error) as e:
        nb.connect_sync(url, connect_timeout=3, max_reconnect_attempts=0, **auth)
    return e.value


def test_nkey_auth(nkey_server):
    url, seed = nkey_server
    round_trip_sync(url, nkey=seed)
    other_seed, _ = nkey_user()  # a valid seed the server does not know
    e = refused(url, nkey=other_seed)
    assert e.code == "NATS_CONNECTION_FAILED" and "authorization violation" in str(e)
    assert refused(url).code == "NATS_CONNECTION_FAILED"
    # Not a seed (a truncated one): refused before connecting, without the secret in the message.
    e = refused(url, nb.InvalidArgumentError, nkey=seed[:-1])
    assert "not an nkey seed" in str(e) and seed[:-1] not in str(e)


def test_creds_file_auth(jwt_server):
    url, auth = jwt_server
    round_trip_sync(url, credentials_file=auth["creds"])
    e = refused(url, credentials_file=auth["foreign_creds"])  # signed under another operator
    assert e.code == "NATS_CONNECTION_FAILED" and "authorization violation" in str(e)
    assert refused(url).code == "NATS_CONNECTION_FAILED"
    missing = os.path.join(os.path.dirname(auth["creds"]), "missing.creds")
    e = refused(url, nb.InvalidArgumentError, credentials_file=missing)  # found before connecting
    assert e.code == "INVALID_ARGUMENT" and "missing.creds" in str(e)


def test_max_payload_guard(small_nats_url):
    """An envelope over the server's max_payload (64 KiB here) is never published: with no link
    store it is PAYLOAD_TOO_LARGE, raised before anything is sent."""
    with nb.connect_sync(small_nats_url, object_store=False) as nc:
        sub = nc.subscribe_sync(subj := subject())
        # 60,000 bytes is under the 500 kB threshold, but its base64 envelope is over 64 KiB.
        with pytest.raises(nb.PayloadTooLargeError) as e:
            nc.smartsend_sync(subj, [("big", b"\x01" * 60_000, "binary")], correlation_id="cid-big")
        assert e.value.correlation_id == "cid-big"
        nc.smartsend_sync(subj, [("small", b"\x01" * 40_000, "binary")])
        got = sub.next_sync(timeout=10)
        assert got["payloads"] == [("small", b"\x01" * 40_000, "binary")]  # the first never arrived


def test_receive_limits_are_connection_and_one_call_options(nats_url):
    """spec/PROTOCOL.md 9.4: beyond a limit a message raises its code; within them it decodes."""
    with nb.connect_sync(nats_url) as nc:
        _, three = nc.smartsend_sync("test.py.limits", [("a", "x", "text"), ("b", "y", "text"), ("c", "z", "text")])
        _, deep = nc.smartsend_sync("test.py.limits", [("d", {"a": [[[1]]]}, "dictionary")])
    with pytest.raises(nb.InvalidEnvelopeError):
        nb.smartreceive_sync(three, max_payloads=2)
    assert len(nb.smartreceive_sync(three, max_payloads=3)["payloads"]) == 3
    with nb.connect_sync(nats_url, max_json_depth=3) as nc:
        with pytest.raises(nb.PayloadTooLargeError, match="deeper than 3"):
            nc.smartreceive_sync(deep)
        assert len(nc.smartreceive_sync(three)["payloads"]) == 3
    with nb.connect_sync(nats_url, max_message_bytes=2) as nc:
        with pytest.raises(nb.PayloadTooLargeError, match="declare 3 bytes, over the limit of 2"):
            nc.smartreceive_sync(three)
    with pytest.raises(nb.InvalidArgumentError):
        nb.connect_sync(nats_url, max_json_depth=129)
