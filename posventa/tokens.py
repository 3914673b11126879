"""Signed, expiring tokens for the links customers click (survey answers, unsubscribe).

HMAC-SHA256 over a compact JSON payload, URL-safe base64, no dependency: ``<payload>.<signature>``.
A token is refused if it was altered, signed with another key, or has expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from posventa.errors import PosventaError


class TokenError(PosventaError):
    def __init__(self, reason: str) -> None:
        self.reason = reason  # "malformed" | "forged" | "expired"
        super().__init__(f"invalid link ({reason})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: Mapping[str, Any], secret: str, *, now: datetime, ttl: timedelta) -> str:
    body = dict(payload, x=int((now + ttl).timestamp()))
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:18]
    return f"{_b64(raw)}.{_b64(mac)}"


def verify(token: str, secret: str, *, now: datetime) -> dict[str, Any]:
    try:
        raw_b64, mac_b64 = token.split(".", 1)
        raw, mac = _unb64(raw_b64), _unb64(mac_b64)
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed") from exc
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:18]
    if not hmac.compare_digest(mac, expected):
        raise TokenError("forged")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise TokenError("malformed") from exc
    if not isinstance(body, dict) or int(body.get("x", 0)) < now.timestamp():
        raise TokenError("expired")
    return body
