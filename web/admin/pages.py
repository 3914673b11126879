"""The /admin area of ``posventa serve``, for marketers: sign in and out, the journeys with their live
counts, a journey's diagram with the counts on each step, the report's charts, a customer's timeline.

Every page needs a signed-in admin user (:mod:`web.admin.auth`); nothing here is in the public OpenAPI
document. Pages are server-rendered, autoescaped Jinja templates with no script (the strict CSP of
``web.render``); charts and diagrams are inline SVG drawn by ``infra.report``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.admins import Admin
from infra.report.assemble import parse_period
from infra.report.model import ReportError
from web.admin import auth, data
from web.admin.render import admin_page, render_admin, respond, url_for
from web.admin.texts import text
from web.context import WebContext, get_context
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


# --- a journey, the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """The report filters as typed (days, ``YYYY-MM-DD``) and as instants (``until`` exclusive)."""

    since: str | None
    until: str | None
    journey: str | None
    since_at: datetime | None = None
    until_at: datetime | None = None


def _filters(ctx: WebContext, request: Request) -> tuple[Filters, str | None]:
    """The query's filters, and the problem with them (the page says it; nothing is computed)."""
    q = request.query_params
    since, until, journey = ((q.get(k) or "").strip()[:64] or None for k in ("since", "until", "journey"))
    filters = Filters(since, until, journey)
    try:
        since_at, until_at = parse_period(since, until, ctx.settings.timezone)
        if since_at is not None and until_at is not None and since_at >= until_at:
            raise ReportError("'since' must be before 'until'")
    except ReportError as exc:
        return filters, str(exc)
    return replace(filters, since_at=since_at, until_at=until_at), None


@router.get("/journeys/{journey_id}")
async def journey_page(request: Request, journey_id: str, admin: PageAdmin) -> Response:
    ctx = get_context(request)
    lang = auth.admin_lang(request)
    filters, problem = _filters(ctx, request)
    filters = replace(filters, journey=journey_id)
    common: dict[str, Any] = {
        "section": "journeys",
        "filters": filters,
        "filter_action": f"/admin/journeys/{journey_id}",
        "journey_choices": None,
    }
    if problem is None:
        try:
            view = await run_in_threadpool(
                data.journey_view,
                ctx.services(),
                journey_id,
                filters.since_at,
                filters.until_at,
                ctx.now(),
                lang,
            )
        except ReportError:
            return admin_page(
                ctx,
                request,
                "admin/report_problem.html",
                admin=admin,
                status=404,
                problem=text("unknown_journey", lang, journey=journey_id),
                **{**common, "filters": replace(filters, journey=None)},
            )
        rows = {r.journey_id: r for r in await run_in_threadpool(data.journeys, ctx.services(), ctx.now())}
        row = rows.get(journey_id)
        report = url_for(
            request, "/admin/report", journey=journey_id, since=filters.since, until=filters.until
        )
        return admin_page(
            ctx,
            request,
            "admin/journey.html",
            admin=admin,
            view=view,
            j=view.funnel,
            state=row.state if row else None,
            live=sum(view.funnel.statuses.get(s, 0) for s in data.LIVE),
            statuses=STATUSES,
            report_url=report,
            problem=None,
            **common,
        )
    return admin_page(
        ctx,
        request,
        "admin/report_problem.html",
        admin=admin,
        status=400,
        problem=text("bad_filter", lang, problem=problem),
        **common,
    )


@router.get("/report")
async def report_page(request: Request, admin: PageAdmin) -> Response:
    """The results report (``posventa report --format html``) with the admin bar and its filters."""
    ctx = get_context(request)
    lang = auth.admin_lang(request)
    filters, problem = _filters(ctx, request)
    choices = await run_in_threadpool(data.journey_ids, ctx.services())
    common: dict[str, Any] = {
        "section": "report",
        "filters": filters,
        "filter_action": "/admin/report",
        "journey_choices": choices,
    }
    if problem is None and filters.journey is not None and filters.journey not in choices:
        problem = text("unknown_journey", lang, journey=filters.journey)
        return admin_page(
            ctx, request, "admin/report_problem.html", admin=admin, status=404, problem=problem, **common
        )
    if problem is not None:
        problem = text("bad_filter", lang, problem=problem)
        return admin_page(
            ctx, request, "admin/report_problem.html", admin=admin, status=400, problem=problem, **common
        )
    html = await run_in_threadpool(
        data.report_html, ctx.services(), filters.journey, filters.since_at, filters.until_at, ctx.now(), lang
    )
    bar, nonce = render_admin(ctx, request, "admin/report_bar.html", admin=admin, problem=None, **common)
    # the report is a whole page: the admin bar goes at the top of its body
    head, found, body = html.partition("<body>")
    page = head + found + "\n" + bar + body if found else bar + html
    return respond(request, page, nonce)


# --- a customer ------------------------------------------------------------------------------------------
@router.get("/customers")
async def customer_page(request: Request, admin: PageAdmin) -> Response:
    """Search by customer id (``?id=``: a query parameter, so the access log, which records paths, never
    holds it); the customer's facts, journeys and timeline."""
    ctx = get_context(request)
    lang = auth.admin_lang(request)
    query = (request.query_params.get("id") or "").strip()
    values: dict[str, Any] = {"section": "customers", "query": query[:128], "view": None, "problem": None}
    if not query:
        return admin_page(ctx, request, "admin/customer.html", admin=admin, **values)
    view = await run_in_threadpool(data.customer_view, ctx.services(), query) if len(query) <= 128 else None
    if view is None:
        values["problem"] = text("no_customer", lang, id=query[:128])
        return admin_page(ctx, request, "admin/customer.html", admin=admin, status=404, **values)
    return admin_page(ctx, request, "admin/customer.html", admin=admin, **{**values, "view": view})


@router.get("/api/customers")
async def customer_json(request: Request, admin: ApiAdmin) -> Response:
    ctx = get_context(request)
    query = (request.query_params.get("id") or "").strip()
    view = (
        await run_in_threadpool(data.customer_view, ctx.services(), query) if 0 < len(query) <= 128 else None
    )
    if view is None:
        return JSONResponse({"error": "not-found", "message": "no such customer"}, status_code=404)
    return JSONResponse(
        {
            **view.customer,
            "timeline": [
                {
                    **{
                        k: getattr(e, k)
                        for k in ("kind", "what", "journey_id", "status", "detail", "order_id")
                    },
                    "at": e.at.isoformat(),
                }
                for e in view.timeline
            ],
        }
    )


def install(app: FastAPI) -> None:
    """Add the /admin routes and the redirect of signed-out page requests to the sign-in page."""

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        return RedirectResponse(
            auth.login_url(exc.next_url), status_code=303, headers={"Cache-Control": "no-store"}
        )

    app.include_router(router)
    app.add_exception_handler(auth.LoginRequired, login_required)
