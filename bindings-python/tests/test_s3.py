"""The S3 link store from Python against the real s3s-fs: links with credentials from options,
from an AWS profile and presigned, the TTL, wrong credentials, and a receiver without the store."""

import asyncio
import time
import uuid

import pytest

import natsbridge as nb
from conftest import S3Server

BLOB = bytes(range(251)) * 4400  # 1,104,400 bytes: over max_payload, a link with no direct fallback


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def credentials(s3, **more):
    return dict(s3_endpoint=s3.endpoint, s3_access_key_id=S3Server.ACCESS_KEY,
                s3_secret_access_key=S3Server.SECRET_KEY, object_store=False, **more)


async def send_and_receive(sender, receiver, payloads):
    subject = f"test.py.s3.{uuid.uuid4().hex}"
    sub = await receiver.subscribe(subject)
    await receiver.flush()
    env, _ = await sender.smartsend(subject, payloads)
    return env, await sub.next(timeout=20)


def key_of(s3, url, prefix):
    """The object key an ``s3://`` link names, checked to be in the store's bucket and prefix."""
    assert url.startswith(f"s3://{s3.bucket}/{prefix}/"), url
    return url.removeprefix(f"s3://{s3.bucket}/").replace("%20", " ")


def test_an_s3_link_carries_the_exact_bytes_between_two_connections(nats_url, s3_server):
    opts = credentials(s3_server, fileserver_url=s3_server.url("py"))

    async def go():
        async with nb.connect(nats_url, **opts) as tx, nb.connect(nats_url, **opts) as rx:
            return await send_and_receive(tx, rx, [("big file", BLOB, "binary"), ("note", "small", "text")])

    env, got = run(go())
    assert [p["transport"] for p in env["payloads"]] == ["link", "direct"]
    key = key_of(s3_server, env["payloads"][0]["data"], "py")
    assert key.endswith("/big file")
    # The server holds exactly the bytes sent, at the key the link names.
    assert (s3_server.bucket_dir / key).read_bytes() == BLOB
    assert got["payloads"] == [("big file", BLOB, "binary"), ("note", "small", "text")]
    assert got["transports"] == ["link", "direct"]


def test_credentials_and_endpoint_come_from_an_aws_profile(nats_url, s3_server, tmp_path, monkeypatch):
    (tmp_path / "credentials").write_text(
        f"[natsbridge-test]\naws_access_key_id = {S3Server.ACCESS_KEY}\n"
        f"aws_secret_access_key = {S3Server.SECRET_KEY}\n")
    (tmp_path / "config").write_text(
        f"[profile natsbridge-test]\nregion = eu-west-3\nendpoint_url = {s3_server.endpoint}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)

    async def go():
        async with nb.connect(nats_url, fileserver_url=s3_server.url("profile"), s3_profile="natsbridge-test",
                              object_store=False) as nc:
            env, msg_json = await nc.smartsend(f"test.py.s3.{uuid.uuid4().hex}", [("blob", BLOB, "image")])
            return env, await nc.smartreceive(msg_json)

    env, got = run(go())
    key = key_of(s3_server, env["payloads"][0]["data"], "profile")
    assert (s3_server.bucket_dir / key).read_bytes() == BLOB
    assert got["payloads"] == [("blob", BLOB, "image")]


def test_a_presigned_link_is_fetched_by_a_receiver_without_credentials(nats_url, s3_server):
    async def go():
        async with nb.connect(nats_url, **credentials(s3_server, fileserver_url=s3_server.url("signed"),
                                                      s3_presign=True, s3_ttl=600)) as tx, \
                nb.connect(nats_url, object_store=False,
                           allowed_origins=[f"{s3_server.endpoint}/{s3_server.bucket}/signed"]) as rx:
            return await send_and_receive(tx, rx, [("blob", BLOB, "binary")])

    env, got = run(go())
    link = env["payloads"][0]["data"]
    assert link.startswith(f"{s3_server.endpoint}/{s3_server.bucket}/signed/"), link
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=600" in link, link
    assert got["payloads"] == [("blob", BLOB, "binary")]


def test_a_receiver_without_the_store_is_refused_the_link(nats_url, s3_server):
    async def go():
        async with nb.connect(nats_url, **credentials(s3_server, fileserver_url=s3_server.url("py"))) as tx, \
                nb.connect(nats_url, object_store=False) as stranger:
            _, msg_json = await tx.smartsend("test.py.s3.stranger", [("blob", BLOB, "binary")])
            with pytest.raises(nb.UrlNotAllowedError) as e:
                await stranger.smartreceive(msg_json)
            return e.value

    assert run(go()).code == "URL_NOT_ALLOWED"


def test_a_link_past_its_ttl_is_download_failed(nats_url, s3_server):
    async def go():
        async with nb.connect(nats_url, **credentials(s3_server, fileserver_url=s3_server.url("ttl"),
                                                      s3_ttl=1)) as nc:
            env, msg_json = await nc.smartsend("test.py.s3.ttl", [("blob", BLOB, "binary")])
            assert (await nc.smartreceive(msg_json))["payloads"][0][1] == BLOB
            await asyncio.sleep(2.2)
            with pytest.raises(nb.DownloadFailedError) as e:
                await nc.smartreceive(msg_json)
            return env, e.value

    env, error = run(go())
    assert "expired" in str(error), error
    assert error.correlation_id == env["correlation_id"]


def test_wrong_credentials_are_upload_failed_and_nothing_is_published(nats_url, s3_server):
    async def go():
        async with nb.connect(nats_url, **credentials(s3_server, fileserver_url=s3_server.url("py"))) as rx:
            wrong = dict(credentials(s3_server, fileserver_url=s3_server.url("py")),
                         s3_secret_access_key="not-the-secret")
            async with nb.connect(nats_url, **wrong) as tx:
                subject = f"test.py.s3.{uuid.uuid4().hex}"
                sub = await rx.subscribe(subject)
                await rx.flush()
                with pytest.raises(nb.UploadFailedError) as e:
                    await tx.smartsend(subject, [("blob", BLOB, "binary")])
                with pytest.raises(nb.TimeoutError):
                    await sub.next(timeout=0.5)
                return e.value

    assert run(go()).code == "UPLOAD_FAILED"


@pytest.mark.parametrize("options,why", [
    ({"s3_addressing_style": "sideways"}, "s3_addressing_style"),
    ({"s3_presign": "maybe"}, "s3_presign"),
    ({"s3_ttl": -1}, "s3_ttl"),
    ({"fileserver_url": "s3://"}, "bucket"),
])
def test_bad_s3_options_are_invalid_arguments(dead_url, options, why):
    started = time.monotonic()
    with pytest.raises(nb.InvalidArgumentError, match=why):
        nb.connect_sync(dead_url, **options)
    assert time.monotonic() - started < 5
