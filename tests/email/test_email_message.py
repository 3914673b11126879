"""The message contract's local checks: address validation, masking, problems, de-duplication."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.email import FileOutboxSender, make_sender
from infra.email.message import (
    Outcome,
    OutgoingEmail,
    mask_email,
    message_problems,
    unique_by_key,
    valid_address,
)
from infra.email.sendgrid_sender import SendGridSender

MakeMessage = Callable[..., OutgoingEmail]


@pytest.mark.parametrize(
    "address",
    [
        "ana@example.com",
        "ana.maria+nps@sub.example.co",
        "o'brien@example.ie",
        "x@xn--bcher-kva.example",
        "a@b.io",
        "first_last-1@example-shop.com.ar",
    ],
)
def test_valid_addresses(address: str) -> None:
    assert valid_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "ana@example..com",
        "ana..b@example.com",
        ".ana@example.com",
        "ana.@example.com",
        "ana @example.com",
        "ana@exa mple.com",
        "ana@-example.com",
        "ana@example.c",
        "ana@example.com\r\nBcc: x@example.com",
        "ñandú@example.com",
        "a" * 65 + "@example.com",
        "ana@" + "a" * 250 + ".com",
        "ana@example.com,otro@example.com",
        "<ana@example.com>",
    ],
)
def test_invalid_addresses(address: str) -> None:
    assert not valid_address(address)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("ana@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("@example.com", "***@example.com"),
        ("nobody", "***"),
    ],
)
def test_mask_email(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_problems(make_message: MakeMessage) -> None:
    assert message_problems(make_message(0)) == []
    assert message_problems(make_message(0, promotional=True, unsubscribe_url="javascript:alert(1)")) == [
        "unsubscribe_url is not an absolute http(s) URL"
    ]
    assert message_problems(make_message(0, html="", text="")) == ["message has neither html nor text"]
    assert message_problems(make_message(0, extra_custom_args={"posventa_key": "other"})) == [
        "extra_custom_args may not override posventa_key"
    ]
    assert message_problems(make_message(0, ledger_key="")) == ["ledger_key is empty"]
    assert message_problems(make_message(0, sendgrid_template_id="d-1", subject="", html="", text="")) == []


def test_unique_by_key(make_message: MakeMessage) -> None:
    a, b = make_message(1), make_message(2)
    unique, positions = unique_by_key([a, b, a, a])
    assert unique == [a, b]
    assert positions == [0, 1, 0, 0]


def test_outcome_values_are_the_stored_strings() -> None:
    assert [o.value for o in Outcome] == ["sent", "failed", "unknown", "retry"]


def test_make_sender_without_key_is_the_outbox(tmp_path: Path) -> None:
    for key in (None, "", "  "):
        sender = make_sender(key, None, "tienda@posventa.example", tmp_path)
        assert isinstance(sender, FileOutboxSender)
        assert sender.name == "outbox"


def test_make_sender_with_key_is_sendgrid(tmp_path: Path) -> None:
    sender = make_sender("SG.k", "http://127.0.0.1:9", "tienda@posventa.example", tmp_path, timeout=3)
    assert isinstance(sender, SendGridSender)
    assert (sender.name, sender.host, sender.timeout) == ("sendgrid", "http://127.0.0.1:9", 3.0)
    assert make_sender("SG.k", None, "tienda@posventa.example", tmp_path).host == "https://api.sendgrid.com"  # type: ignore[attr-defined]


def test_benchmark_runs_small() -> None:
    from benchmarks.bench_email import run

    result = run(40)
    assert result["batched_requests"] == 1
    assert result["single_requests"] == 40
    assert result["ratio"] > 0
