"""HTML pages: Jinja2 templates (autoescaped), the page language, and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from web import i18n
from web.context import WebContext

TEMPLATES = Path(__file__).parent / "templates"

#: No script, no external resource, no framing; forms post back to us only. Pages carry capability
#: tokens in their URL: never cached by shared caches, never sent on as a Referer.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_template(name: str, **values: Any) -> str:
    """A template of ``web/templates`` rendered with ``values`` (autoescaped)."""
    return _env.get_template(name).render(**values)


def page_lang(request: Request, customer_locale: str | None = None) -> str:
    return i18n.pick(
        request.query_params.get("lang"), customer_locale, request.headers.get("accept-language")
    )


def with_lang(url: str, request: Request) -> str:
    """Keep an explicit ``?lang=`` on the links and forms of a page."""
    lang = i18n.normalise(request.query_params.get("lang"))
    return f"{url}?lang={lang}" if lang else url


def page(
    ctx: WebContext,
    request: Request,
    name: str,
    lang: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    other = "en" if lang == "es" else "es"
    html = _env.get_template(name).render(
        lang=lang,
        t=i18n.translator(lang),
        brand=ctx.brand,
        other_lang=other,
        other_lang_url=f"{request.url.path}?lang={other}" if request.method == "GET" else None,
        **values,
    )
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def error_page(
    ctx: WebContext,
    request: Request,
    status: int,
    title: str,
    body: str,
    *,
    lang: str | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    **values: Any,
) -> HTMLResponse:
    lang = lang or page_lang(request)
    values.setdefault("support", ctx.support)
    return page(
        ctx,
        request,
        "error.html",
        lang,
        status=status,
        headers=headers,
        title=i18n.text(title, lang),
        body=i18n.text(body, lang, **values),
        request_id=request_id,
    )
