"""What every request handler needs, built once per app: settings, the runtime, the clock, the limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request

from infra.runtime import Runtime
from infra.settings import Settings
from infra.web.limits import Limits, TokenBucket


def utcnow() -> datetime:
    return datetime.now(UTC)


class WebContext:
    def __init__(
        self,
        runtime: Runtime | None,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None,
        limits: Limits,
        shop_url: str | None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.clock = clock or utcnow
        #: Where /r/<code> sends people: the shop (a ``shop_url`` setting when there is one, else the public
        #: base URL, which the email templates also call the shop).
        self.shop_url = shop_url or getattr(settings, "shop_url", None) or settings.public_base_url
        self.public_bucket = TokenBucket(limits.public_rate, limits.public_burst)
        self.api_bucket = TokenBucket(limits.api_rate, limits.api_burst)
        self._runtime = runtime
        self._lock = threading.Lock()

    def runtime(self) -> Runtime:
        """The runtime, built from the settings on first use when the app was created without one (so that
        importing the app or rendering /openapi.json needs no database)."""
        if self._runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = Runtime.from_settings(self.settings)
        return self._runtime

    def now(self) -> datetime:
        return self.clock()

    @property
    def secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    @property
    def brand(self) -> str:
        return self.settings.email_from_name

    @property
    def support(self) -> str:
        return self.settings.email_from


def get_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx
