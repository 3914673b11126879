"""Rendering an /admin page: the admin texts, links that keep an explicit ``?lang=``, the CSRF token of
the page's forms (and its cookie when new), and the headers every page carries (``web.render``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.admins import Admin
from infra.report import fmt
from posventa.timeutil import zone
from web import i18n
from web.admin import texts
from web.admin.auth import csrf_nonce, csrf_token, set_csrf
from web.context import WebContext
from web.render import PAGE_HEADERS, page_lang, render_template


def local_time(at: datetime | str | None, tz: str) -> str:
    """An instant (or its ISO text) in the shop's zone with the zone's abbreviation: ``2026-03-02 11:00
    CET`` — every time on the admin pages reads the same way."""
    if not at:
        return "—"
    found = datetime.fromisoformat(at) if isinstance(at, str) else at
    return found.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def url_for(request: Request, path: str, **params: str | None) -> str:
    """``path`` with ``params`` (None ones left out) and the page's explicit ``?lang=``."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    lang = i18n.normalise(request.query_params.get("lang"))
    if lang:
        query["lang"] = lang
    return path + (f"?{urlencode(query)}" if query else "")


def other_lang_url(request: Request, lang: str) -> str:
    """This page (with its filters) in the other language."""
    other = "en" if lang == "es" else "es"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*query, ("lang", other)])


def render_admin(
    ctx: WebContext, request: Request, name: str, *, admin: Admin | None, **values: Any
) -> tuple[str, str | None]:
    """The template ``name`` as text, and the CSRF nonce to set as a cookie when the browser had none."""
    lang = page_lang(request)
    nonce, new = csrf_nonce(request)
    html = render_template(
        name,
        lang=lang,
        t=texts.translator(lang),
        brand=ctx.brand,
        admin=admin,
        csrf=csrf_token(ctx, nonce),
        url=lambda path, **params: url_for(request, path, **params),
        other_lang="en" if lang == "es" else "es",
        other_lang_url=other_lang_url(request, lang),
        lang_param=i18n.normalise(request.query_params.get("lang")),
        when=lambda at: local_time(at, ctx.settings.timezone),
        yes_no=lambda v: texts.translator(lang)("yes" if v else "no"),
        num=lambda v, decimals=0: fmt.number(v, lang, decimals),
        money=lambda v: fmt.money(v, lang),
        **values,
    )
    return html, nonce if new else None


def respond(
    request: Request,
    html: str,
    new_nonce: str | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """An admin page's response: the pages' headers (strict CSP, no-store), the CSRF cookie when new."""
    response = HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
    if new_nonce:
        set_csrf(response, request, new_nonce)
    return response


def admin_page(
    ctx: WebContext,
    request: Request,
    name: str,
    *,
    admin: Admin | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    html, nonce = render_admin(ctx, request, name, admin=admin, **values)
    return respond(request, html, nonce, status=status, headers=headers)
