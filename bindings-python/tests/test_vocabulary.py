"""The public names against core's vocabulary (README "One vocabulary"): connect() documents
exactly core's connection options, smartsend takes exactly its per-message options, and every
operation of the README table's Python column exists, with its blocking twin."""

import inspect
import re
from pathlib import Path

import pytest

import natsbridge as nb
from natsbridge import _natsbridge as native

README = Path(__file__).resolve().parents[2] / "README.md"
HOST_ONLY = {"fileserver_upload_handler", "fileserver_download_handler", "transfer_progress"}


def documented_options(doc: str) -> set:
    """The names each ``- names: what`` line of a docstring's option list starts with."""
    names = set()
    for line in doc.splitlines():
        m = re.match(r"\s*- (.*?): ", line)
        if m:
            names |= set(re.findall(r"``(\w+)``", m.group(1)))
    return names


def keywords(fn) -> set:
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def vocabulary_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## One vocabulary"):text.index("## Feature parity")]


def test_native_module_exposes_core_option_names():
    assert nb.OPTION_NAMES == tuple(native.OPTION_NAMES)
    assert "nkey" in nb.OPTION_NAMES and "credentials_file" in nb.OPTION_NAMES  # not nkeys_seed, user_credentials
    assert {"correlation_id", "msg_purpose", "metadata"} <= set(nb.SEND_OPTION_NAMES)


def test_connect_documents_every_core_option_and_no_other():
    documented = documented_options(nb.connect.__doc__)
    assert documented - HOST_ONLY == set(nb.OPTION_NAMES), "connect() docstring vs core's OptionName"
    assert HOST_ONLY <= documented


def test_add_stream_and_consume_document_exactly_core_options():
    assert nb.STREAM_OPTION_NAMES == tuple(native.STREAM_OPTION_NAMES)
    assert nb.CONSUME_OPTION_NAMES == tuple(native.CONSUME_OPTION_NAMES)
    assert documented_options(nb.Connection.add_stream.__doc__) == set(nb.STREAM_OPTION_NAMES)
    assert documented_options(nb.Connection.consume.__doc__) == set(nb.CONSUME_OPTION_NAMES)


def test_add_stream_and_consume_accept_exactly_core_options(nats_url):
    """Every name core lists is taken (with a valid value, durations in seconds); any other name
    is INVALID_ARGUMENT."""
    stream = {"subjects": ["pyvocab.>"], "storage": "memory", "replicas": 1, "max_age": 60,
              "retention": "limits", "duplicate_window": 30, "dead_letter": True}
    consume = {"ack_wait": 2.5, "max_deliver": 3, "backoff": [0.5, 1], "max_ack_pending": 10, "double_ack": True,
               "nak_delay": 0.5, "dead_letter_subject": "pyvocab.dead", "filter_subject": "pyvocab.x", "batch": 5,
               "deliver_from": "new"}
    assert set(stream) == set(nb.STREAM_OPTION_NAMES) and set(consume) == set(nb.CONSUME_OPTION_NAMES)
    with nb.connect_sync(nats_url, jetstream=True) as nc:
        assert nc.add_stream_sync("PYVOCAB", **stream)["max_age_secs"] == 60
        nc.consume_sync("PYVOCAB", "vocab", **consume).stop_sync()
        with pytest.raises(nb.InvalidArgumentError, match="unknown stream option"):
            nc.add_stream_sync("PYVOCAB", max_msgs=10)
        with pytest.raises(nb.InvalidArgumentError, match="unknown consume option"):
            nc.consume_sync("PYVOCAB", "vocab", ack_wait_ms=1000)


def test_smartsend_takes_the_send_options():
    one_call = {"broker_url", "fileserver_url", "fileserver_upload_handler"}
    assert keywords(nb.smartsend) - {"connection"} == set(nb.SEND_OPTION_NAMES) | one_call


def test_smartreceive_options_are_core_options():
    handler_options = keywords(nb.smartreceive) - {"connection", "arrow", "broker_url", "fileserver_download_handler"}
    assert handler_options == {"fileserver_url", "allowed_origins", "max_retries", "base_delay", "max_delay"}
    assert handler_options <= set(nb.OPTION_NAMES)


def test_readme_option_lists_are_core_options():
    section = vocabulary_section()
    connection = section[section.index("Connection options"):section.index("Per-message")]
    per_message = section[section.index("Per-message"):re.search(r"the one-call style\s+adds", section).start()]
    assert set(re.findall(r"`(\w+)`", connection)) == set(nb.OPTION_NAMES) | HOST_ONLY
    assert set(re.findall(r"`(\w+)`", per_message)) == set(nb.SEND_OPTION_NAMES)


def test_readme_table_python_operations_exist_with_sync_twins():
    rows = [line.split("|")[1:-1] for line in vocabulary_section().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    python = header.index("Python")
    owners = {"": nb, "nc": nb.Connection, "sub": nb.Subscription, "consumer": nb.Consumer, "msg": nb.Delivery}
    found = []
    for row in rows[2:]:
        m = re.search(r"`(?:await )?(?:(\w+)\.)?(\w+)\(", row[python])
        assert m, row
        owner, name = owners[m.group(1) or ""], m.group(2)
        assert callable(getattr(owner, name, None)), f"{m.group(0)}: {owner.__name__}.{name}"
        assert callable(getattr(owner, name + "_sync", None)), f"{owner.__name__}.{name}_sync"
        found.append(f"{m.group(1) or ''}.{name}")
    assert found == [".connect", ".smartsend", ".smartreceive", "nc.subscribe", "sub.next", "nc.request",
                     "nc.reply", "nc.reply_error", "nc.add_stream", "nc.consume", "consumer.next", "msg.ack",
                     "nc.sweep_links", "nc.flush", "nc.close"]


def test_close_drains_and_the_units_are_seconds():
    assert nb.Connection.drain is nb.Connection.close  # one operation; close drains
    assert inspect.signature(nb.Connection.request).parameters["timeout"].default == 5.0
    assert "timeout" in inspect.signature(nb.Subscription.next).parameters
    assert "queue" in inspect.signature(nb.Connection.subscribe).parameters
