"""The shops' API: events in (``POST /v1/events``), the event catalogue, referral reports.

Authentication is a shop's API key as a Bearer token (``store.check_api_key``: only its sha256 is
stored). Events are applied through :meth:`app.ingest.Ingest.apply` (a batch set-based, with the effects of
applying its items one by one), idempotent by event id, so a client that retries a batch after a timeout
gets ``duplicates`` instead of double effects; one bad item never blocks the good ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from app.reports import referral_report as build_referral_report
from posventa.errors import EventError
from posventa.events import event_json_schema, parse_event
from web.context import WebContext, get_context
from web.errors import BadRequest, BodyTooLarge, Unauthorized
from web.limits import client_ip, read_body
from web.openapi import EVENTS_REQUEST_BODY

router = APIRouter(prefix="/v1")
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A shop's API key: `Authorization: Bearer pv_…` (`posventa api-key`).",
)


# --- response models (documentation and clients) ---------------------------------------------------------
class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in the request (0 for a single event).")
    errors: list[str] = Field(
        description="Every problem, each prefixed with its field path, "
        "e.g. `data.score: Input should be less than or equal to 10`."
    )


class IngestResult(BaseModel):
    accepted: int = Field(description="Events applied now.")
    duplicates: int = Field(description="Events whose id was applied before: nothing changed.")
    rejected: list[RejectedItem]


class ApiError(BaseModel):
    error: str = Field(description="A stable code: unauthorized, invalid-json, too-large, rate-limited…")
    message: str
    request_id: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "The body is not JSON, or not an event / batch."},
    401: {"model": ApiError, "description": "Missing, unknown or revoked API key."},
    413: {"model": ApiError, "description": "Body over 1 MiB, or more than 1000 events."},
    429: {"model": ApiError, "description": "Too many requests for this API key; see Retry-After."},
}


# --- auth ------------------------------------------------------------------------------------------------
def _shop_for(ctx: WebContext, key: str) -> str | None:
    return ctx.services().store.check_api_key(key)


async def api_shop(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The shop of the request's API key; rate-limited per key (per address when there is none)."""
    ctx = get_context(request)
    key = creds.credentials.strip() if creds else ""
    who = "key:" + hashlib.sha256(key.encode()).hexdigest()[:24] if key else "ip:" + client_ip(request)
    ctx.api_bucket.check(who)
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'", code="missing-api-key")
    shop = await run_in_threadpool(_shop_for, ctx, key)
    if shop is None:
        raise Unauthorized("unknown or revoked API key", code="invalid-api-key")
    return shop


# --- events ----------------------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_items(body: bytes, max_batch: int) -> list[Any]:
    """One event object, ``{"events": [...]}``, or a bare array of events → the list of items."""
    if not body.strip():
        raise BadRequest('the body is empty: send one event object or {"events": [...]}', code="empty-body")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise BadRequest("the body is not UTF-8 text", code="invalid-json") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid-json",
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid-json") from exc
    if isinstance(data, dict) and "events" in data:
        if set(data) != {"events"} or not isinstance(data["events"], list):
            raise BadRequest('a batch is {"events": [ ... ]} with no other field', code="invalid-batch")
        items: list[Any] = data["events"]
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise BadRequest(
            'the body must be an event object, {"events": [...]} or an array of events', code="invalid-batch"
        )
    if len(items) > max_batch:
        raise BodyTooLarge(max_batch, "events per request")
    return items


def _errors(item: Any, reason: str) -> list[str]:
    """The problems of a rejected item as a list (apply_events joins them into one string)."""
    if isinstance(item, Mapping):
        try:
            parse_event(item)
        except EventError as exc:
            return list(exc.problems)
    else:
        return [f"(event): expected a JSON object, got {type(item).__name__ if item is not None else 'null'}"]
    return [reason]


@router.post(
    "/events",
    tags=["events"],
    summary="Send events (one, or a batch of up to 1000)",
    response_model=IngestResult,
    openapi_extra={"requestBody": EVENTS_REQUEST_BODY},
    responses={
        207: {"model": IngestResult, "description": "Some items were rejected; the others were applied."},
        422: {"model": IngestResult, "description": "Every item was rejected."},
        **_ERRORS,
    },
)
async def post_events(request: Request, shop: Annotated[str, Depends(api_shop)]) -> JSONResponse:
    """Apply events idempotently by `id`. Items are independent: good ones are applied even when others are
    rejected, and each rejected item is reported by its index with every field problem. Status 200 when
    nothing was rejected, 207 when some were, 422 when all were."""
    ctx = get_context(request)
    body = await read_body(request, ctx.limits.api_body_bytes)
    items = parse_items(body, ctx.limits.max_batch)
    report = await run_in_threadpool(ctx.services().ingest.apply, items, "api", ctx.now(), 0)
    rejected = [{"index": i, "errors": _errors(items[i], reason)} for i, reason in report.rejected]
    status = 200 if not rejected else 207 if report.accepted + report.duplicates else 422
    return JSONResponse(
        {"accepted": report.accepted, "duplicates": report.duplicates, "rejected": rejected},
        status_code=status,
    )


@router.get("/event-types", tags=["events"], summary="The event catalogue as JSON Schema")
async def event_types() -> dict[str, Any]:
    """The envelope (`envelope`) and, for each event type, the schema of its `data` payload (`types`)."""
    return event_json_schema()


# --- reports ---------------------------------------------------------------------------------------------
@router.get(
    "/reports/referrals", tags=["reports"], summary="Referral clicks and conversions", responses=_ERRORS
)
async def referral_report(
    request: Request,
    shop: Annotated[str, Depends(api_shop)],
    limit: Annotated[int, Query(ge=1, le=10_000, description="Referrers listed, best first.")] = 100,
) -> dict[str, Any]:
    """Conversions are orders whose `order.referral_code` named a customer's code (self-referrals are not
    counted). Totals per journey that created the code, and per referrer."""
    ctx = get_context(request)
    return await run_in_threadpool(build_referral_report, ctx.services().store, limit)
