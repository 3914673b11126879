"""Signed, expiring tokens for the links customers click (survey answers, unsubscribe).

HMAC-SHA256 over a compact JSON payload, URL-safe base64, no dependency: ``<payload>.<signature>``.
A token is refused if it was altered, signed with another key, has expired, or was made for another
purpose: every token carries its purpose (``p``: ``survey``, ``unsubscribe``…) and the verifier names the
one it expects, so a survey link's token posted to the unsubscribe page unsubscribes nobody.

Tokens signed before purposes existed have no ``p``. The caller decides, by the payload's exact shape,
whether such a *legacy* token can be one of its own (``legacy=``); the links in already-sent emails keep
working until their own expiry, and no token of one shape is ever accepted for the other purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from posventa.errors import PosventaError

#: Why a token is refused. Only ``expired`` is the customer's doing (the page says so); the others are
#: an invalid link.
REASONS = ("malformed", "forged", "expired", "wrong-purpose")


class TokenError(PosventaError):
    def __init__(self, reason: str) -> None:
        self.reason = reason  # one of REASONS
        super().__init__(f"invalid link ({reason})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: Mapping[str, Any], secret: str, *, purpose: str, now: datetime, ttl: timedelta) -> str:
    """A token for ``purpose`` carrying ``payload`` (whose keys ``p`` and ``x`` are the token's own)."""
    body = dict(payload, p=purpose, x=int((now + ttl).timestamp()))
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:18]
    return f"{_b64(raw)}.{_b64(mac)}"


def verify(
    token: str,
    secret: str,
    *,
    purpose: str,
    now: datetime,
    legacy: Callable[[Mapping[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The payload of a token signed with ``secret`` for ``purpose`` that has not expired.

    ``legacy`` says whether a payload without a purpose (signed before purposes existed) is one of this
    purpose's; without it such tokens are refused. Never raises anything but :class:`TokenError`."""
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
    except (ValueError, RecursionError) as exc:
        raise TokenError("malformed") from exc
    expiry = body.get("x") if isinstance(body, dict) else None
    if isinstance(expiry, bool) or not isinstance(expiry, int):
        raise TokenError("malformed")
    if "p" in body:
        if body["p"] != purpose:
            raise TokenError("wrong-purpose")
    elif legacy is None or not legacy(body):
        raise TokenError("wrong-purpose")
    if expiry < now.timestamp():
        raise TokenError("expired")
    return body
