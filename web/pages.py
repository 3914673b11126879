"""The pages customers reach from our emails: survey answers, unsubscribe, referral links.

Every link is a capability: ``/s/<token>`` and ``/u/<token>`` are signed, expiring tokens
(:mod:`posventa.tokens`), so the forms need no CSRF token and no login. Nothing here needs JavaScript.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from app.clicks import Answer
from app.links import SurveyLink, verify_survey, verify_unsubscribe
from web import i18n
from web.context import WebContext, get_context
from web.limits import client_ip, read_body, read_form
from web.render import page, page_lang, with_lang

router = APIRouter(include_in_schema=False)

MAX_TOKEN = 2048
#: What a comment may not hold (``posventa.events`` refuses it in multi-line text): C0 controls but tab and
#: line breaks, and DEL.
_CONTROL = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]")


def _limit(ctx: WebContext, request: Request) -> None:
    ctx.public_bucket.check(client_ip(request))


def _token(token: str) -> str:
    if len(token) > MAX_TOKEN:
        from posventa.tokens import TokenError

        raise TokenError("malformed")
    return token


async def _form(ctx: WebContext, request: Request) -> dict[str, list[str]]:
    return await read_form(request, ctx.limits.page_body_bytes)


# --- survey ----------------------------------------------------------------------------------------------
def _thanks(
    ctx: WebContext,
    request: Request,
    link: SurveyLink,
    answer: Answer,
    *,
    status: int = 200,
    commented: bool = False,
    problem: str | None = None,
    draft: str | None = None,
) -> Response:
    lang = page_lang(request, answer.locale)
    now = ctx.now()
    urls = [
        with_lang(
            "/s/" + (link.for_score(i, ctx.secret, now) if i != link.score else request.path_params["token"]),
            request,
        )
        for i in range(11)
    ]
    return page(
        ctx,
        request,
        "thanks.html",
        lang,
        status=status,
        score=answer.score,
        first_name=answer.first_name,
        comment=draft if draft is not None else answer.comment,
        commented=commented,
        problem=problem,
        score_urls=urls,
        max_comment=ctx.limits.max_comment_chars,
        form_action=with_lang(f"/s/{request.path_params['token']}", request),
    )


@router.get("/s/{token}")
async def survey_answer(request: Request, token: str) -> Response:
    """One click in the email is the answer: record it at once, then offer a comment box and the scale."""
    ctx = get_context(request)
    _limit(ctx, request)
    now = ctx.now()
    link = verify_survey(_token(token), ctx.secret, now)
    answer = await run_in_threadpool(ctx.services().clicks.answer, link, now)
    return _thanks(ctx, request, link, answer)


@router.post("/s/{token}")
async def survey_comment(request: Request, token: str) -> Response:
    ctx = get_context(request)
    _limit(ctx, request)
    now = ctx.now()
    link = verify_survey(_token(token), ctx.secret, now)
    fields = await _form(ctx, request)
    # line breaks are kept; other control characters (invisible, and refused by the event) are dropped
    comment = _CONTROL.sub("", (fields.get("comment") or [""])[0].replace("\r\n", "\n")).strip()
    limit = ctx.limits.max_comment_chars
    if len(comment) > limit:
        answer = await run_in_threadpool(ctx.services().clicks.answer, link, now)
        lang = page_lang(request, answer.locale)
        return _thanks(
            ctx,
            request,
            link,
            answer,
            status=400,
            draft=comment[:limit],
            problem=i18n.text("comment_too_long", lang, n=limit),
        )
    answer = await run_in_threadpool(ctx.services().clicks.answer, link, now, comment=comment or None)
    return _thanks(ctx, request, link, answer, commented=bool(comment))


# --- unsubscribe -----------------------------------------------------------------------------------------
@router.get("/u/{token}")
async def unsubscribe_page(request: Request, token: str) -> Response:
    """Say what the customer is leaving, and ask: a GET must never unsubscribe (link scanners open links).
    Once they left, the link shows the confirmation (no button to press again)."""
    ctx = get_context(request)
    _limit(ctx, request)
    link = verify_unsubscribe(_token(token), ctx.secret, ctx.now())
    view = await run_in_threadpool(ctx.services().clicks.unsubscribe_view, link)
    lang = page_lang(request, view.locale)
    if view.already:
        return page(ctx, request, "unsubscribed.html", lang, email=view.masked_email, already=True)
    return page(
        ctx,
        request,
        "unsubscribe.html",
        lang,
        email=view.masked_email,
        journey=view.journey_in(lang),
        form_action=with_lang(f"/u/{token}", request),
    )


@router.post("/u/{token}")
async def unsubscribe_confirm(request: Request, token: str) -> Response:
    """The confirmation button and RFC 8058 one-click (``List-Unsubscribe=One-Click``) land here alike."""
    ctx = get_context(request)
    _limit(ctx, request)
    now = ctx.now()
    link = verify_unsubscribe(_token(token), ctx.secret, now)
    await read_body(request, ctx.limits.page_body_bytes)  # the body says nothing the token does not
    view = await run_in_threadpool(ctx.services().clicks.unsubscribe, link, now)
    lang = page_lang(request, view.locale)
    return page(ctx, request, "unsubscribed.html", lang, email=view.masked_email, already=False)


# --- referral --------------------------------------------------------------------------------------------
def with_ref(url: str, code: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    if code:
        query.append(("ref", code))
    return urlunsplit(parts._replace(query=urlencode(query)))


@router.get("/r/{code}")
async def referral(request: Request, code: str) -> Response:
    """Send the visitor to the shop with ``?ref=CODE`` and count the click for the referrer. An unknown
    code still reaches the shop, without ``ref``: a friend's typo must not end on an error page. Without a
    shop URL the visitor gets a page with the code (or, for an unknown one, a welcome) instead."""
    ctx = get_context(request)
    _limit(ctx, request)
    visitor = f"{client_ip(request)}|{request.headers.get('user-agent', '')[:200]}"
    known = None
    if len(code) <= 64:
        known = await run_in_threadpool(ctx.services().clicks.referral, code, visitor, ctx.now())
    if ctx.shop_url is None:  # no shop to send them to: show the code to use when ordering
        lang = page_lang(request)
        return page(ctx, request, "referral.html", lang, code=known, headers={"Cache-Control": "no-store"})
    return RedirectResponse(
        with_ref(ctx.shop_url, known), status_code=303, headers={"Cache-Control": "no-store"}
    )
