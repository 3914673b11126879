"""SendGrid Signed Event Webhook: verification and parsing, pure (no database, no web framework).

SendGrid signs ``timestamp + body`` (the body exactly as received, with its trailing CRLF) with ECDSA
P-256 / SHA-256 and sends the DER signature base64-encoded. ``sendgrid.helpers.eventwebhook`` is not
used: it raises ``binascii.Error`` on a malformed signature instead of rejecting it, and it never checks
the timestamp's age, which is what stops a captured request from being replayed later.

    PosventaError
    └── WebhookRejected     a webhook request must not be processed; ``reason`` says why
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.webhook_events import WebhookEvent
from posventa.errors import PosventaError

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookEvent",
    "WebhookRejected",
    "load_public_key",
    "parse_events",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
LEDGER_KEY_ARG = "posventa_key"


class WebhookRejected(PosventaError):
    """The request is not from SendGrid, is too old, or cannot be read. ``reason`` is a stable code for
    metrics and tests (``missing-header``, ``malformed-signature``, ``malformed-timestamp``,
    ``stale-timestamp``, ``future-timestamp``, ``bad-signature``, ``invalid-public-key``,
    ``malformed-payload``); ``detail`` is for people."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"webhook rejected ({reason})" + (f": {detail}" if detail else ""))


@lru_cache(maxsize=8)
def load_public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    """The verification key from SendGrid's settings (base64 DER SubjectPublicKeyInfo; a PEM block is
    accepted too). A bad key is a configuration problem, reported as ``invalid-public-key``."""
    text = public_key_b64.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise WebhookRejected("invalid-public-key", "cannot load the configured verification key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise WebhookRejected("invalid-public-key", "the verification key is not an ECDSA P-256 key")
    return key


def verify_signature(
    public_key_b64: str,
    payload: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    *,
    now: float,
    max_age_s: int = 600,
    max_future_s: int = 120,
) -> None:
    """Return if SendGrid signed ``payload`` at ``timestamp`` within ``max_age_s`` of ``now`` (and no
    more than ``max_future_s`` ahead, for clock skew); raise ``WebhookRejected`` otherwise."""
    if not signature_b64 or not timestamp:
        missing = SIGNATURE_HEADER if not signature_b64 else TIMESTAMP_HEADER
        raise WebhookRejected("missing-header", f"{missing} is missing")
    stamp = timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookRejected("malformed-timestamp", "the timestamp is not a Unix time in seconds")
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected("malformed-signature", "the signature is not base64") from exc
    if not signature:
        raise WebhookRejected("malformed-signature", "the signature is empty")
    age = now - int(stamp)
    if age > max_age_s:
        raise WebhookRejected("stale-timestamp", f"signed {int(age)} s ago, more than {max_age_s} s")
    if -age > max_future_s:
        raise WebhookRejected("future-timestamp", f"signed {int(-age)} s in the future")
    key = load_public_key(public_key_b64)
    try:
        key.verify(signature, stamp.encode("ascii") + payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise WebhookRejected("bad-signature", "the signature does not match the payload") from exc


def parse_events(payload: bytes) -> list[WebhookEvent]:
    """Parse a (verified) Event Webhook body; a body that is not a JSON array of events is rejected
    whole, so SendGrid retries it and nothing is half-applied."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected("malformed-payload", "the body is not UTF-8 JSON") from exc
    if not isinstance(data, list):
        raise WebhookRejected("malformed-payload", "the body is not a JSON array of events")
    return [_event(item, index) for index, item in enumerate(data)]


def _event(item: Any, index: int) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookRejected("malformed-payload", f"event {index} is not an object")
    for name in ("sg_event_id", "event", "email"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise WebhookRejected("malformed-payload", f"event {index} has no {name}")
    stamp = _timestamp(item.get("timestamp"))
    if stamp is None:
        raise WebhookRejected("malformed-payload", f"event {index} has no integer timestamp")
    category = item.get("category")
    if isinstance(category, str):
        categories: tuple[str, ...] = (category,)
    elif isinstance(category, list):
        categories = tuple(str(c) for c in category)
    else:
        categories = ()
    return WebhookEvent(
        sg_event_id=item["sg_event_id"],
        event=item["event"],
        email=item["email"],
        timestamp=stamp,
        ledger_key=_text(item.get(LEDGER_KEY_ARG)),
        sg_message_id=_text(item.get("sg_message_id")),
        url=_text(item.get("url")),
        reason=_text(item.get("reason")),
        category=categories,
        raw=item,
    )


def _timestamp(value: Any) -> int | None:
    """Unix seconds: an integer, the same written ``1700000000.0`` (JSON does not tell them apart), or a
    string of ASCII digits (``"²"`` is a digit to ``str.isdigit``, not to ``int``); None otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
