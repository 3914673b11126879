"""Request limits: a token bucket per client (in process) and body reads that stop at a size.

In process on purpose: one ``posventa serve`` process protects itself from a runaway client or a link
scanner; a fleet behind a load balancer limits at the proxy as well. Memory is bounded: the least
recently seen clients are forgotten first (a forgotten client simply starts with a full bucket).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request

from web.errors import BadRequest, BodyTooLarge, RateLimited, UnsupportedMedia

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """Rates are requests per second (sustained), bursts the bucket size."""

    public_rate: float = 1.0  # /s, /u, /r per client IP: a person clicks a few times, a NAT many people
    public_burst: float = 60
    api_rate: float = 100.0  # /v1 per API key
    api_burst: float = 400
    api_body_bytes: int = 1 * MIB
    max_batch: int = 1000
    page_body_bytes: int = 64 * KIB  # a 5000-character comment, percent-encoded, fits
    webhook_body_bytes: int = (
        8 * MIB
    )  # SendGrid batches events (it posts when a batch is ~768 KB or 30 s old)
    max_comment_chars: int = 5000  # FeedbackSubmitted.comment
    #: /admin sign-in attempts, per client address and per user name alike: a burst of 10, then one
    #: every 30 s (a person mistyping is not slowed; a password guesser gets 2,880 tries a day, at most)
    login_rate: float = 1 / 30
    login_burst: float = 10


class TokenBucket:
    """``acquire(key)`` takes one token from ``key``'s bucket: 0.0 if it could, else seconds to wait."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> float:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def check(self, key: str) -> None:
        """Raise :class:`RateLimited` when ``key`` has no token left."""
        wait = self.acquire(key)
        if wait > 0:
            raise RateLimited(wait)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, exactly as received, refused with 413 as soon as it exceeds ``limit`` bytes (a
    declared Content-Length is checked before reading anything)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)


def client_ip(request: Request) -> str:
    """The peer address (uvicorn has already applied X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


async def read_form(request: Request, limit: int, max_fields: int = 20) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body of at most ``limit`` bytes, as lists of values."""
    body = await read_body(request, limit)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UnsupportedMedia("send the form as application/x-www-form-urlencoded")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the form could not be read") from exc
