"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook.

The raw body bytes are verified as received (never re-serialised: the signature covers the exact bytes,
trailing CRLF included) with the key in ``POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY``; an unsigned, forged or
stale request is refused before anything is parsed or recorded. Without a configured key every request
is refused: the webhook can suppress addresses and end journeys, so it is never open.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from infra.email.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    parse_events,
    verify_signature,
)
from web.api import ApiError
from web.context import get_context
from web.limits import read_body

router = APIRouter()
log = logging.getLogger("posventa.web.webhooks")

#: Missing or unreadable credentials → 401; present but wrong (or replayed) → 403.
_STATUS = {
    "missing-header": 401,
    "malformed-signature": 401,
    "malformed-timestamp": 401,
    "bad-signature": 403,
    "stale-timestamp": 403,
    "future-timestamp": 403,
    "invalid-public-key": 503,
    "malformed-payload": 400,
}


def _refuse(request: Request, exc: WebhookRejected) -> JSONResponse:
    status = _STATUS.get(exc.reason, 403)
    log.warning("SendGrid webhook refused: %s", exc)
    message = "webhook verification is misconfigured" if status == 503 else exc.detail or exc.reason
    return JSONResponse(
        {"error": exc.reason, "message": message, "request_id": getattr(request.state, "request_id", None)},
        status_code=status,
    )


class WebhookResult(BaseModel):
    received: int = Field(description="Events in the batch.")
    applied: int = Field(description="Events applied now.")
    duplicates: int = Field(description="Events whose `sg_event_id` was applied before.")
    ignored: int = Field(description="Events for addresses Posventa does not know, or of no interest.")
    failed: int = Field(description="Events that could not be applied (logged); the batch is still accepted.")


#: The request as SendGrid sends it: the signature headers and a JSON array of events. Documented here
#: because the endpoint reads the raw bytes (the signature covers them exactly).
WEBHOOK_REQUEST: dict[str, Any] = {
    "parameters": [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": description,
            "schema": {"type": "string", "minLength": 1},
        }
        for name, description in (
            (SIGNATURE_HEADER, "ECDSA P-256 / SHA-256 signature of timestamp + body, DER, base64."),
            (TIMESTAMP_HEADER, "Unix time in seconds when SendGrid signed the request."),
        )
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["sg_event_id", "event", "email", "timestamp"],
                        "properties": {
                            "sg_event_id": {"type": "string", "minLength": 1},
                            "event": {"type": "string", "minLength": 1},
                            "email": {"type": "string", "minLength": 1},
                            "timestamp": {"type": "integer", "minimum": 0},
                            "posventa_key": {"type": "string"},
                            "sg_message_id": {"type": "string"},
                            "url": {"type": "string"},
                            "reason": {"type": "string"},
                            "category": {
                                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                            },
                        },
                    },
                }
            }
        },
    },
}


@router.post(
    "/webhooks/sendgrid",
    tags=["webhooks"],
    summary="SendGrid Event Webhook (signed)",
    response_model=WebhookResult,
    openapi_extra=WEBHOOK_REQUEST,
    responses={
        400: {"model": ApiError, "description": "Signed, but not a JSON array of events."},
        401: {"model": ApiError, "description": "Signature or timestamp header missing or unreadable."},
        403: {
            "model": ApiError,
            "description": "Bad signature, stale timestamp, or no verification key set.",
        },
        413: {"model": ApiError, "description": "Body too large."},
        503: {"model": ApiError, "description": "The configured verification key cannot be used."},
    },
)
async def sendgrid_events(request: Request) -> JSONResponse:
    """Verify, then apply each event once (deduplicated by `sg_event_id`). Events for addresses Posventa
    does not know are ignored; the batch is still accepted."""
    ctx = get_context(request)
    body = await read_body(request, ctx.limits.webhook_body_bytes)
    key = ctx.settings.sendgrid_webhook_public_key
    if not key:
        log.warning("SendGrid webhook refused: POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return JSONResponse(
            {
                "error": "not-configured",
                "message": "signed webhooks are not configured",
                "request_id": getattr(request.state, "request_id", None),
            },
            status_code=403,
        )
    now = ctx.now()
    try:
        verify_signature(
            key,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            now=now.timestamp(),
        )
        events = parse_events(body)
    except WebhookRejected as exc:
        return _refuse(request, exc)
    result: dict[str, Any] = await run_in_threadpool(ctx.services().webhook_events.apply, events, now)
    return JSONResponse(result)
