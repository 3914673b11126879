"""What every request handler needs, built once per app: settings, the services, the clock, the limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request

from app.services import Services
from infra.settings import Settings
from web.limits import Limits, TokenBucket


def utcnow() -> datetime:
    return datetime.now(UTC)


class WebContext:
    def __init__(
        self,
        services: Services | None,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None,
        limits: Limits,
        shop_url: str | None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.clock = clock or utcnow
        #: Where /r/<code> sends people: the shop (``POSVENTA_SHOP_URL``). None: the link shows the friend's
        #: code on a page of its own (Posventa's server root is not a shop: it answers 404).
        self.shop_url: str | None = shop_url or getattr(settings, "shop_url", None) or None
        self.public_bucket = TokenBucket(limits.public_rate, limits.public_burst)
        self.api_bucket = TokenBucket(limits.api_rate, limits.api_burst)
        self.login_bucket = TokenBucket(limits.login_rate, limits.login_burst)
        self._services = services
        self._lock = threading.Lock()

    def services(self) -> Services:
        """The use cases, built from the settings on first use when the app was created without them (so
        that importing the app or rendering /openapi.json needs no database)."""
        if self._services is None:
            with self._lock:
                if self._services is None:
                    from infra.wiring import build_services

                    self._services = build_services(self.settings)
        return self._services

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
