"""The FastAPI application (``create_app``) and its server (``serve``, behind ``posventa serve``).

Handlers are ``async`` only to read bodies and render pages; every database call runs in the thread
pool (the store is synchronous SQLAlchemy). Errors never show a traceback: refusals are
:class:`~web.errors.WebError` with a status and a code, anything unexpected is logged with a
request id and answered with a generic message carrying that id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services import Services
from infra.settings import Settings, get_settings
from posventa.tokens import TokenError
from web import api, openapi, pages, webhooks
from web.admin import pages as admin_pages
from web.context import WebContext
from web.errors import RateLimited, Unauthorized, WebError
from web.limits import Limits
from web.logs import install_scrubbing, log_unexpected
from web.render import error_page

__all__ = ["create_app", "serve"]

log = logging.getLogger("posventa.web")
access_log = logging.getLogger("posventa.web.access")

#: Headers on every response. The strict CSP is added by the pages themselves (/docs needs its CDN).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Paths answered with HTML pages (errors too): the customer pages and the /admin pages (not /admin/api).
_PAGE_PATH = re.compile(r"^/(s|u|r)/|^/admin(/(?!api/)|$)")
_SECRET_PATH = re.compile(r"^/(s|u|r)/[^/?]*")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _is_page(request: Request) -> bool:
    return bool(_PAGE_PATH.match(request.url.path))


def redact(path: str) -> str:
    """Tokens and referral codes are capabilities: they never reach the logs."""
    return _SECRET_PATH.sub(lambda mt: f"/{mt.group(1)}/…", path)


class RequestContext:
    """Pure ASGI middleware: a request id (``X-Request-ID``, echoed when sane), the security headers, and an
    access log line with the path redacted (uvicorn's own access log is off for that reason)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %s %.1fms rid=%s",
                scope["method"],
                redact(scope["path"]),
                status or 500,
                (time.perf_counter() - started) * 1000,
                rid,
            )


def _rid(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _error_headers(exc: WebError) -> dict[str, str]:
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="posventa"'}
    return {}


def create_app(
    services: Services | None = None,
    *,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
    limits: Limits | None = None,
    shop_url: str | None = None,
) -> FastAPI:
    """The web app around ``services`` (built from ``settings`` on first use when None).

    ``clock`` replaces the wall clock (tests on a virtual clock: token expiry, event times, webhook
    timestamps); ``limits`` the rate and size limits; ``shop_url`` where referral links lead.
    """
    settings = settings or get_settings()
    ctx = WebContext(services, settings, clock=clock, limits=limits or Limits(), shop_url=shop_url)
    app = FastAPI(
        title="Posventa",
        version="1",
        description=openapi.DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        openapi_tags=[
            {"name": "events", "description": "Events in, from the shop."},
            {"name": "reports", "description": "What the journeys achieved."},
            {"name": "webhooks", "description": "Provider callbacks."},
        ],
    )
    app.state.ctx = ctx
    app.add_middleware(RequestContext)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(webhooks.router)
    admin_pages.install(app)

    async def web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        headers = _error_headers(exc)
        if _is_page(request):
            if isinstance(exc, RateLimited):
                return error_page(
                    ctx,
                    request,
                    exc.status,
                    "limited_title",
                    "limited_body",
                    headers=headers,
                    seconds=exc.retry_after,
                )
            return error_page(ctx, request, exc.status, "bad_form_title", "bad_form_body", headers=headers)
        return JSONResponse(
            {"error": exc.code, "message": exc.message, "request_id": _rid(request)},
            status_code=exc.status,
            headers=headers,
        )

    async def bad_link(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenError)
        if exc.reason == "expired":
            return error_page(ctx, request, 410, "expired_title", "expired_body")
        return error_page(ctx, request, 400, "invalid_title", "invalid_body")

    async def unexpected(request: Request, exc: Exception) -> Response:
        rid = _rid(request) or uuid.uuid4().hex[:16]
        log_unexpected(log, rid, request.method, redact(request.url.path), exc)
        # uvicorn closes the connection after an unhandled error: say so, or a client reusing it fails
        headers = {"X-Request-ID": rid, **SECURITY_HEADERS, "Connection": "close"}
        if _is_page(request):
            return error_page(ctx, request, 500, "error_title", "error_body", headers=headers, request_id=rid)
        return JSONResponse(
            {
                "error": "internal",
                "message": "something went wrong on our side; the request id identifies it in our logs",
                "request_id": rid,
            },
            status_code=500,
            headers=headers,
        )

    async def no_such_page(request: Request, exc: Exception) -> Response:
        """A page path (a link, the admin) that matches no route gets a page, not FastAPI's JSON."""
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and _is_page(request):
            return error_page(ctx, request, 404, "not_found_title", "not_found_body")
        return await http_exception_handler(request, exc)

    app.add_exception_handler(WebError, web_error)
    app.add_exception_handler(StarletteHTTPException, no_such_page)
    app.add_exception_handler(TokenError, bad_link)
    app.add_exception_handler(Exception, unexpected)
    openapi.install(app)
    return app


def serve(host: str, port: int) -> None:
    """Run the web app with uvicorn on the configured database (``posventa serve``)."""
    import uvicorn

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_scrubbing()  # no address reaches the log, whoever logs it (uvicorn's records propagate here)
    settings = get_settings()
    for warning in settings.warnings():
        log.warning("%s", warning)
    from infra.wiring import build_services

    app = create_app(build_services(settings), settings=settings)
    options: dict[str, Any] = {
        "proxy_headers": True,
        "server_header": False,
        "access_log": False,
        "timeout_keep_alive": 5,
        "log_config": None,  # uvicorn's loggers propagate to the handlers above, and their filter
    }
    uvicorn.run(app, host=host, port=port, **options)


@contextmanager
def running_in_thread(app: ASGIApp, port: int, *, name: str, start_timeout: float) -> Iterator[None]:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a daemon thread for the block (the demo's
    webhook target, the tests' live server); TimeoutError when it has not started in time."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"the web app ({name}) did not start on port {port}")
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
