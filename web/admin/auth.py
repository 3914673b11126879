"""Who may use /admin: a signed session cookie after signing in with an admin user's password.

* **Session** (``pv_admin``): ``<admin id>.<issued at>.<password fingerprint>.<HMAC-SHA256>``, keyed by
  ``POSVENTA_SECRET_KEY`` (a key derived for this use only). It lasts :data:`SESSION_SECONDS`; a new
  password or a removed user ends it (the fingerprint no longer matches). ``HttpOnly``,
  ``SameSite=Strict``, ``Path=/admin``, and ``Secure`` when the request came over https (uvicorn applies
  ``X-Forwarded-Proto`` from trusted proxies).
* **CSRF**: every POST form carries ``csrf`` = HMAC of a random nonce kept in the ``pv_admin_csrf``
  cookie (the signed double-submit cookie pattern); ``SameSite=Strict`` already keeps other sites'
  forms from carrying the session.
* **Sign-in attempts** are rate-limited per client address and per user name (``Limits.login_*``), before
  any password is hashed.
* Not signed in: pages redirect (303) to ``/admin/login?next=…``; ``/admin/api/…`` answers 401 JSON.
  Scripts call ``/admin/api/…`` with an admin API key (``posventa admin-user key NAME``) as a Bearer
  token; a shop's events key opens nothing here, and an admin key nothing on /v1.

The log gets no user name and no password: only the outcome and the request id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import datetime
from urllib.parse import quote

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.admins import Admin, AdminAccounts
from web.context import WebContext, get_context
from web.errors import Unauthorized
from web.limits import client_ip
from web.render import page_lang

log = logging.getLogger("posventa.web.admin")

SESSION_COOKIE = "pv_admin"
CSRF_COOKIE = "pv_admin_csrf"
SESSION_SECONDS = 12 * 3600
COOKIE_PATH = "/admin"


class LoginRequired(Exception):
    """An /admin page asked for without a valid session: answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url
        super().__init__("sign in first")


def _key(ctx: WebContext, purpose: str) -> bytes:
    return hmac.new(ctx.secret.encode("utf-8"), f"posventa-admin-{purpose}".encode(), hashlib.sha256).digest()


def _mac(ctx: WebContext, purpose: str, message: str) -> str:
    digest = hmac.new(_key(ctx, purpose), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def accounts(ctx: WebContext) -> AdminAccounts:
    return AdminAccounts(ctx.services().store, ctx.now)


# --- session ---------------------------------------------------------------------------------------------
def session_value(ctx: WebContext, admin: Admin, now: datetime) -> str:
    payload = f"{admin.id}.{int(now.timestamp())}.{admin.fingerprint}"
    return f"{payload}.{_mac(ctx, 'session', payload)}"


def read_session(ctx: WebContext, value: str | None, now: datetime) -> tuple[int, str] | None:
    """(admin id, password fingerprint) of a valid, unexpired session cookie; None otherwise."""
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _mac(ctx, "session", payload)):
        return None
    age = now.timestamp() - int(parts[1])
    if not -300 <= age <= SESSION_SECONDS:
        return None
    return int(parts[0]), parts[2]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="strict"
    )


async def current_admin(request: Request) -> Admin | None:
    ctx = get_context(request)
    found = read_session(ctx, request.cookies.get(SESSION_COOKIE), ctx.now())
    if found is None:
        return None
    return await run_in_threadpool(accounts(ctx).session_user, *found)


async def admin_page_user(request: Request) -> Admin:
    """The signed-in admin of a page request; :class:`LoginRequired` (a redirect) without one."""
    admin = await current_admin(request)
    if admin is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return admin


async def admin_api_user(request: Request) -> Admin:
    """The admin of a JSON request: an admin API key (``Authorization: Bearer``, ``posventa admin-user
    key``) or a signed-in session; 401 without either."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        ctx = get_context(request)
        key = key.strip()
        ctx.api_bucket.check("admin-key:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:24])
        admin = await run_in_threadpool(accounts(ctx).key_user, key) if len(key) <= 200 else None
        if admin is None:
            raise Unauthorized("unknown or revoked admin API key", code="invalid-api-key")
        return admin
    admin = await current_admin(request)
    if admin is None:
        raise Unauthorized("sign in at /admin/login first", code="not-signed-in")
    return admin


def login_url(next_url: str | None = None) -> str:
    return "/admin/login" + (f"?next={quote(next_url, safe='/')}" if next_url else "")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: an /admin path of this site only (no open redirect)."""
    if (
        value
        and value.startswith("/admin")
        and not value.startswith("/admin/login")
        and "\\" not in value
        and not any(ord(c) < 0x21 for c in value)
    ):
        return value
    return "/admin"


# --- CSRF ------------------------------------------------------------------------------------------------
def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The request's CSRF nonce and whether it is new (then the response must set its cookie)."""
    found = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(found) <= 64 and found.isascii():
        return found, False
    return secrets.token_urlsafe(24), True


def csrf_nonce_new() -> tuple[str, bool]:
    return secrets.token_urlsafe(24), True


def csrf_token(ctx: WebContext, nonce: str) -> str:
    return _mac(ctx, "csrf", nonce)


def set_csrf(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, nonce, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="strict"
    )


def csrf_ok(ctx: WebContext, request: Request, fields: dict[str, list[str]]) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = (fields.get("csrf") or [""])[0]
    return bool(nonce) and bool(sent) and hmac.compare_digest(sent, csrf_token(ctx, nonce))


def admin_lang(request: Request) -> str:
    return page_lang(request)


def login_keys(request: Request, username: str) -> tuple[str, str]:
    """The rate-limit buckets of a sign-in attempt: the client's address and the (hashed) user name."""
    name = hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:24]
    return "ip:" + client_ip(request), "user:" + name
