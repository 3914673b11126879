"""Signed Event Webhook verification and parsing, against SendGrid's own test vector and fresh keys."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import Outcome, OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender
from infra.email.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    parse_events,
    verify_signature,
)
from posventa.errors import PosventaError

# sendgrid-python's published vector (test/unit/test_eventwebhook.py): note the trailing CRLF.
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXv"
    "VpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)
SG_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7G"
    "jUuFDb/R1NGe1OPzpA=="
)
SG_NOW = int(SG_TIMESTAMP) + 5


def _reason(call: Callable[[], object]) -> str:
    with pytest.raises(WebhookRejected) as caught:
        call()
    return caught.value.reason


def test_sendgrid_published_vector_verifies() -> None:
    verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW)
    [event] = parse_events(SG_PAYLOAD)
    assert (event.event, event.email, event.reason) == ("dropped", "hello@world.com", "Bounced Address")
    assert event.provider_message_id == "LRzXl_NHStOGhQ4kofSm_A"
    assert event.ledger_key is None


def test_vector_without_its_trailing_crlf_is_rejected() -> None:
    payload = SG_PAYLOAD.removesuffix(b"\r\n")
    assert (
        _reason(lambda: verify_signature(SG_PUBLIC_KEY, payload, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW))
        == "bad-signature"
    )


@pytest.mark.parametrize("position", [0, 10, len(SG_PAYLOAD) // 2, len(SG_PAYLOAD) - 3])
def test_any_changed_byte_is_rejected(position: int) -> None:
    tampered = bytearray(SG_PAYLOAD)
    tampered[position] ^= 0x01
    call = lambda: verify_signature(SG_PUBLIC_KEY, bytes(tampered), SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW)  # noqa: E731
    assert _reason(call) == "bad-signature"


def test_changed_timestamp_is_rejected() -> None:
    call = lambda: verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "1600112503", now=SG_NOW)  # noqa: E731
    assert _reason(call) == "bad-signature"


def test_wrong_key_is_rejected() -> None:
    call = lambda: verify_signature(SG_OTHER_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW)  # noqa: E731
    assert _reason(call) == "bad-signature"


@pytest.mark.parametrize(
    ("signature", "timestamp", "reason"),
    [
        (None, SG_TIMESTAMP, "missing-header"),
        ("", SG_TIMESTAMP, "missing-header"),
        (SG_SIGNATURE, None, "missing-header"),
        ("not base64 at all!!", SG_TIMESTAMP, "malformed-signature"),
        ("MEUCIGHQ", SG_TIMESTAMP, "bad-signature"),  # valid base64, not a DER signature
        (SG_SIGNATURE[:-1], SG_TIMESTAMP, "malformed-signature"),  # broken padding
        (SG_SIGNATURE, "timestamp", "malformed-timestamp"),
        (SG_SIGNATURE, "-1600112502", "malformed-timestamp"),
        (SG_SIGNATURE, "1600112502.5", "malformed-timestamp"),
    ],
)
def test_malformed_headers_are_rejected(signature: str | None, timestamp: str | None, reason: str) -> None:
    call = lambda: verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, signature, timestamp, now=SG_NOW)  # noqa: E731
    assert _reason(call) == reason


def test_old_and_future_timestamps_are_rejected() -> None:
    stale = lambda: verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW + 601)  # noqa: E731
    assert _reason(stale) == "stale-timestamp"
    future = lambda: verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW - 300)  # noqa: E731
    assert _reason(future) == "future-timestamp"
    # Within tolerance on both sides.
    verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=int(SG_TIMESTAMP) + 600)
    verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=int(SG_TIMESTAMP) - 60)


@pytest.mark.parametrize("key", ["", "not-base64!!", base64.b64encode(b"garbage").decode()])
def test_unusable_configured_key_is_rejected(key: str) -> None:
    call = lambda: verify_signature(key, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW)  # noqa: E731
    assert _reason(call) == "invalid-public-key"


def test_non_p256_key_is_rejected() -> None:
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other_curve.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    call = lambda: verify_signature(  # noqa: E731
        base64.b64encode(der).decode(), SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW
    )
    assert _reason(call) == "invalid-public-key"


def test_pem_key_is_accepted() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\n" + SG_PUBLIC_KEY + "\n-----END PUBLIC KEY-----\n"
    verify_signature(pem, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=SG_NOW)


def test_rejection_is_a_posventa_error_with_a_message() -> None:
    with pytest.raises(PosventaError, match=r"webhook rejected \(missing-header\)"):
        verify_signature(SG_PUBLIC_KEY, SG_PAYLOAD, None, SG_TIMESTAMP, now=SG_NOW)


# -- fresh key pairs, through the fake -------------------------------------------------------------------


def test_fake_signs_like_sendgrid(fake: FakeSendGrid) -> None:
    """Our verifier and sendgrid's own helper both accept the fake's signatures."""
    events = [{"email": "a@example.com", "event": "open", "sg_event_id": "e1", "timestamp": 1}]
    body, headers = fake.signed_webhook_request(events)
    assert body.endswith(b"\r\n")

    verify_signature(
        fake.webhook_public_key_b64,
        body,
        headers[SIGNATURE_HEADER],
        headers[TIMESTAMP_HEADER],
        now=time.time(),
    )
    helper = EventWebhook(fake.webhook_public_key_b64)
    assert helper.verify_signature(body.decode(), headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])


def test_another_fake_key_is_rejected(fake: FakeSendGrid) -> None:
    body, headers = fake.signed_webhook_request([])
    with FakeSendGrid() as other:
        call = lambda: verify_signature(  # noqa: E731
            other.webhook_public_key_b64,
            body,
            headers[SIGNATURE_HEADER],
            headers[TIMESTAMP_HEADER],
            now=time.time(),
        )
        assert _reason(call) == "bad-signature"


def test_own_key_pair_signature_from_scratch() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_b64 = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    body = b'[{"event":"delivered"}]\r\n'
    signature = base64.b64encode(private.sign(b"1700000000" + body, ec.ECDSA(hashes.SHA256()))).decode()

    verify_signature(public_b64, body, signature, "1700000000", now=1_700_000_010)
    call = lambda: verify_signature(public_b64, body + b" ", signature, "1700000000", now=1_700_000_010)  # noqa: E731
    assert _reason(call) == "bad-signature"


def test_ledger_key_round_trips_from_send_to_event(
    fake: FakeSendGrid, make_sender: Callable[..., SendGridSender], make_message: Callable[..., OutgoingEmail]
) -> None:
    results = make_sender().send([make_message(1), make_message(2)])
    assert {r.outcome for r in results} == {Outcome.SENT}

    body, headers = fake.signed_webhook_request(fake.webhook_events("delivered"))
    verify_signature(
        fake.webhook_public_key_b64,
        body,
        headers[SIGNATURE_HEADER],
        headers[TIMESTAMP_HEADER],
        now=time.time(),
    )
    events = parse_events(body)
    assert sorted(e.ledger_key or "" for e in events) == ["enr-1:nps_survey:0", "enr-2:nps_survey:0"]
    assert {e.provider_message_id for e in events} == {results[0].provider_message_id}
    assert all(e.category == ("post_purchase", "post_purchase:nps_survey") for e in events)


# -- parsing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{not json",
        b'{"event": "open"}',
        b"\xff\xfe",
        b'[{"event": "open", "email": "a@example.com", "timestamp": 1}]',  # no sg_event_id
        b'[{"sg_event_id": "e", "event": "open", "email": "a@example.com", "timestamp": "soon"}]',
        b'[{"sg_event_id": "e", "event": "open", "email": "a@example.com", "timestamp": true}]',
        b"[1]",
    ],
)
def test_malformed_payloads_are_rejected(payload: bytes) -> None:
    assert _reason(lambda: parse_events(payload)) == "malformed-payload"


def test_parse_events_fields() -> None:
    payload = (
        json.dumps(
            [
                {
                    "email": "ana@example.com",
                    "timestamp": 1700000000,
                    "event": "click",
                    "sg_event_id": "ev-1",
                    "sg_message_id": "MSG.filter-1",
                    "url": "https://posventa.example/nps?s=9",
                    "category": "post_purchase",
                    "posventa_key": "enr-1:nps_survey:0",
                    "tenant": "acme",
                },
                {
                    "email": "ana@example.com",
                    "timestamp": "1700000001",
                    "event": "bounce",
                    "sg_event_id": "ev-2",
                    "reason": "550 no such user",
                    "type": "bounce",
                    "category": ["post_purchase", "post_purchase:nps_survey"],
                },
            ]
        ).encode()
        + b"\r\n"
    )
    click, bounce = parse_events(payload)

    assert click.ledger_key == "enr-1:nps_survey:0"
    assert click.url == "https://posventa.example/nps?s=9"
    assert click.category == ("post_purchase",)
    assert click.provider_message_id == "MSG"
    assert click.raw["tenant"] == "acme"
    assert bounce.timestamp == 1700000001
    assert bounce.reason == "550 no such user"
    assert bounce.ledger_key is None
    assert bounce.category == ("post_purchase", "post_purchase:nps_survey")
    assert parse_events(b"[]") == []
