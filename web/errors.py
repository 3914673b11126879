"""Why the web app refuses a request. Each error knows its HTTP status and a stable ``code``.

PosventaError
└── WebError              a request is refused; ``status``, ``code`` and a message for people
    ├── BadRequest        400: the body cannot be read as what the endpoint takes
    ├── Unauthorized      401: no API key, or an unknown or revoked one
    ├── BodyTooLarge      413: more bytes (or events) than the endpoint accepts
    ├── UnsupportedMedia  415: a form endpoint got something that is not a form
    └── RateLimited       429: the client's token bucket is empty; ``retry_after`` seconds
"""

from __future__ import annotations

import math

from posventa.errors import PosventaError


class WebError(PosventaError):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(message)


class BadRequest(WebError):
    status = 400
    code = "bad-request"


class Unauthorized(WebError):
    status = 401
    code = "unauthorized"


class BodyTooLarge(WebError):
    status = 413
    code = "too-large"

    def __init__(self, limit: int, what: str = "bytes") -> None:
        self.limit = limit
        super().__init__(f"the request is too large: at most {limit} {what}")


class UnsupportedMedia(WebError):
    status = 415
    code = "unsupported-media-type"


class RateLimited(WebError):
    status = 429
    code = "rate-limited"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many requests: try again in {self.retry_after} s")
