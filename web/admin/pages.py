"""The /admin area of ``posventa serve``, for marketers: sign in and out, the journeys with their live
counts, a journey's diagram with the counts on each step, the report's charts, a customer's timeline.

Every page needs a signed-in admin user (:mod:`web.admin.auth`); nothing here is in the public OpenAPI
document. Pages are server-rendered, autoescaped Jinja templates with no script (the strict CSP of
``web.render``); charts and diagrams are inline SVG drawn by ``infra.report``.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from app.admins import Admin
from web.admin import auth, data
from web.admin.render import admin_page, url_for
from web.admin.texts import text
from web.context import get_context
from web.errors import RateLimited
from web.limits import read_form

log = logging.getLogger("posventa.web.admin")
router = APIRouter(prefix="/admin", include_in_schema=False)
PageAdmin = Annotated[Admin, Depends(auth.admin_page_user)]
ApiAdmin = Annotated[Admin, Depends(auth.admin_api_user)]
#: Enrollment statuses in the journeys table, in the order an enrollment lives them.
STATUSES = ("active", "waiting", "held", "completed", "converted", "exited", "failed")


def _rid(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


# --- signing in and out ----------------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request) -> Response:
    ctx = get_context(request)
    admin = await auth.current_admin(request)
    if admin is not None:
        return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)
    notice = text("signed_out", auth.admin_lang(request)) if request.query_params.get("out") else None
    return admin_page(
        ctx,
        request,
        "admin/login.html",
        admin=None,
        next_url=request.query_params.get("next"),
        username="",
        problem=None,
        notice=notice,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = get_context(request)
    lang = auth.admin_lang(request)
    fields = await read_form(request, 16 * 1024, max_fields=5)
    username = (fields.get("username") or [""])[0][:64]
    password = (fields.get("password") or [""])[0]
    next_url = request.query_params.get("next")

    def again(status: int, problem: str, headers: dict[str, str] | None = None) -> Response:
        return admin_page(
            ctx,
            request,
            "admin/login.html",
            admin=None,
            status=status,
            headers=headers,
            next_url=next_url,
            username=username,
            problem=problem,
            notice=None,
        )

    if not auth.csrf_ok(ctx, request, fields):
        log.info("admin sign-in refused: bad CSRF token rid=%s", _rid(request))
        return again(403, text("login_expired_form", lang))
    try:
        for key in auth.login_keys(request, username):
            ctx.login_bucket.check(key)
    except RateLimited as exc:
        log.warning("admin sign-in rate-limited rid=%s", _rid(request))
        return again(
            429,
            text("login_limited", lang, seconds=exc.retry_after),
            {"Retry-After": str(exc.retry_after)},
        )
    admin = await run_in_threadpool(auth.accounts(ctx).authenticate, username, password)
    if admin is None:
        log.info("admin sign-in refused: wrong user name or password rid=%s", _rid(request))
        return again(401, text("login_failed", lang))
    log.info("admin sign-in admin_id=%s rid=%s", admin.id, _rid(request))
    response = RedirectResponse(auth.safe_next(next_url), status_code=303)
    auth.set_session(response, request, auth.session_value(ctx, admin, ctx.now()))
    nonce, _ = auth.csrf_nonce_new()
    auth.set_csrf(response, request, nonce)  # a new CSRF nonce for the new session
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = get_context(request)
    fields = await read_form(request, 4 * 1024, max_fields=5)
    if not auth.csrf_ok(ctx, request, fields):
        return RedirectResponse(auth.login_url(), status_code=303)  # nothing changes; the form was stale
    response = RedirectResponse(url_for(request, "/admin/login", out="1"), status_code=303)
    auth.end_session(response, request)
    return response


# --- journeys --------------------------------------------------------------------------------------------
@router.get("")
async def journeys_page(request: Request, admin: PageAdmin) -> Response:
    ctx = get_context(request)
    rows = await run_in_threadpool(data.journeys, ctx.services(), ctx.now())
    return admin_page(
        ctx, request, "admin/journeys.html", admin=admin, section="journeys", rows=rows, statuses=STATUSES
    )


@router.get("/api/journeys")
async def journeys_json(request: Request, admin: ApiAdmin) -> dict[str, object]:
    ctx = get_context(request)
    rows = await run_in_threadpool(data.journeys, ctx.services(), ctx.now())
    return {
        "journeys": [
            {
                "journey_id": r.journey_id,
                "name": r.name,
                "state": r.state,
                "live_version": r.live_version,
                "entered": r.entered,
                "live": r.live,
                "converted": r.converted,
                "revenue": r.revenue,
                "statuses": r.statuses,
            }
            for r in rows
        ]
    }


def install(app: FastAPI) -> None:
    """Add the /admin routes and the redirect of signed-out page requests to the sign-in page."""

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        return RedirectResponse(
            auth.login_url(exc.next_url), status_code=303, headers={"Cache-Control": "no-store"}
        )

    app.include_router(router)
    app.add_exception_handler(auth.LoginRequired, login_required)
