"""Apply verified SendGrid Event Webhook events to Posventa's state.

Each event is handled in its own transaction, and first recorded by ``sg_event_id``
(``store.record_webhook_event``): SendGrid redelivers batches, and a redelivered event changes nothing.
A database error propagates (the endpoint answers 5xx and SendGrid retries the batch; the events
already applied are then duplicates). Events are matched to ledger rows through the ``posventa_key``
custom arg, and to customers through that row (or, failing that, the address). Statuses only move
forward: ``store.mark`` guards every move.

=================== ==============================================================================
SendGrid event      effect
=================== ==============================================================================
processed           evidence the message was sent: ``unknown``/``sending`` → ``sent``
delivered           the same, plus an ``email.delivered`` event (per-step statistics)
open / click        the same, plus ``email.opened`` / ``email.clicked``; a click on one of our survey
                    links is also that survey's answer (as if the link was opened, first answer only)
bounce              suppress the address (``bounced``, all mail), ambiguous row → ``failed``,
                    ``email.bounced``; a ``blocked`` bounce is temporary: statistics only
dropped             suppress (``dropped``, all mail), ambiguous row → ``failed``
spamreport          suppress (``spam_report``, all mail)
unsubscribe,        suppress (``unsubscribed``, promotional mail) and ``customer.unsubscribed``, which
group_unsubscribe   ends the journeys that exit on it
deferred, others    recorded, nothing else
=================== ==============================================================================
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from infra.db import models as m
from infra.db import store
from infra.email.message import mask_email
from infra.email.webhook import WebhookEvent
from infra.runtime import Runtime
from posventa import tokens
from posventa.errors import PosventaError
from posventa.events import parse_event

__all__ = ["apply_webhook_events"]

log = logging.getLogger("posventa.email.webhook")

SENT_EVIDENCE = frozenset({"processed", "delivered", "open", "click"})
STAT_EVENTS = {
    "delivered": "email.delivered",
    "open": "email.opened",
    "click": "email.clicked",
    "bounce": "email.bounced",
}
_MAX_SG_ID = 128  # webhook_events.sg_event_id
_MAX_EMAIL = 320  # webhook_events.email


@dataclass(frozen=True)
class _Target:
    customer_id: str
    order_id: str | None
    ledger_key: str | None


def apply_webhook_events(runtime: Runtime, events: Sequence[WebhookEvent], now: datetime) -> dict[str, Any]:
    """Apply a verified batch; returns counts (``received``, ``applied``, ``duplicates``, ``ignored``) and
    what was done (``actions``: suppressions, ledger moves, statistics events, survey answers)."""
    outcomes: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for ev in events:
        try:
            outcome = _apply_one(runtime, ev, now, actions)
        except (DataError, IntegrityError, ValueError, OverflowError, OSError, PosventaError) as exc:
            # A value this event carries cannot be stored: skip it rather than have SendGrid redeliver the
            # batch forever. A database outage (OperationalError…) propagates: the batch is retried.
            log.warning("webhook %s event could not be applied: %s", ev.event[:32], type(exc).__name__)
            outcome = "failed"
        outcomes[outcome] += 1
    return {
        "received": len(events),
        "applied": outcomes["applied"],
        "duplicates": outcomes["duplicate"],
        "ignored": outcomes["ignored"],
        "failed": outcomes["failed"],
        "actions": dict(sorted(actions.items())),
    }


def _apply_one(rt: Runtime, ev: WebhookEvent, now: datetime, actions: Counter[str]) -> str:
    if len(ev.sg_event_id) > _MAX_SG_ID or len(ev.email) > _MAX_EMAIL:
        log.warning("webhook event with an over-long sg_event_id or address ignored")
        return "ignored"
    at = datetime.fromtimestamp(ev.timestamp, UTC)
    ledger_key = ev.ledger_key if ev.ledger_key and len(ev.ledger_key) <= 255 else None
    with rt.factory.begin() as s:
        if not store.record_webhook_event(s, ev.sg_event_id, ev.event[:32], ledger_key, ev.email, at, ev.raw):
            return "duplicate"
        target = _target(s, ev.email, ledger_key)
        if target is None:
            log.info("webhook %s for unknown address %s ignored", ev.event, mask_email(ev.email))
            return "ignored"
        _act(s, rt, ev, at, target, now, actions)
    return "applied"


def _target(s: Session, email: str, ledger_key: str | None) -> _Target | None:
    row = store.get_ledger_entry(s, ledger_key) if ledger_key else None
    if row is not None:
        return _Target(row.customer_id, (row.payload or {}).get("order_id"), row.key)
    customer_id = s.scalar(
        select(m.Customer.id)
        .where(func.lower(m.Customer.email) == store.normalise_email(email))
        .order_by(m.Customer.id)
        .limit(1)
    )
    return _Target(customer_id, None, None) if customer_id else None


def _act(
    s: Session, rt: Runtime, ev: WebhookEvent, at: datetime, t: _Target, now: datetime, actions: Counter[str]
) -> None:
    kind = ev.event
    key = t.ledger_key
    if (
        kind in SENT_EVIDENCE
        and key
        and store.mark(
            s, key, ("unknown", "sending"), "sent", provider_message_id=ev.provider_message_id, now=now
        )
    ):
        actions["ledger_sent"] += 1
    if kind == "bounce" and str(ev.raw.get("type", "bounce")) == "blocked":
        pass  # a block is temporary (the receiving server refused for now): statistics only
    elif kind in ("bounce", "dropped"):
        reason = "bounced" if kind == "bounce" else "dropped"
        if store.suppress(
            s,
            ev.email,
            reason,
            scope="all",
            customer_id=t.customer_id,
            source="sendgrid",
            detail=(ev.reason or "")[:500] or None,
        ):
            actions[f"suppressed_{reason}"] += 1
        if key and store.mark(
            s, key, ("unknown", "sending"), "failed", reason=f"{kind}: {ev.reason or ''}"[:500], now=now
        ):
            actions["ledger_failed"] += 1
    elif kind == "spamreport":
        if store.suppress(
            s, ev.email, "spam_report", scope="all", customer_id=t.customer_id, source="sendgrid"
        ):
            actions["suppressed_spam_report"] += 1
    elif kind in ("unsubscribe", "group_unsubscribe"):
        if store.suppress(
            s, ev.email, "unsubscribed", scope="promotional", customer_id=t.customer_id, source="sendgrid"
        ):
            actions["suppressed_unsubscribed"] += 1
        _event(
            s,
            rt,
            ev,
            at,
            t,
            now,
            "customer.unsubscribed",
            {"scope": "promotional", "source": "sendgrid"},
            actions,
        )
    if kind in STAT_EVENTS:
        data = {"ledger_key": key, "url": ev.url if kind == "click" else None}
        _event(s, rt, ev, at, t, now, STAT_EVENTS[kind], {k: v for k, v in data.items() if v}, actions)
    if kind == "click" and ev.url:
        _survey_click(s, rt, ev.url, at, t, now, actions)


def _event(
    s: Session,
    rt: Runtime,
    ev: WebhookEvent,
    at: datetime,
    t: _Target,
    now: datetime,
    type_: str,
    data: dict[str, Any],
    actions: Counter[str],
) -> None:
    raw = {
        "id": f"sg:{ev.sg_event_id}",
        "type": type_,
        "occurred_at": at.isoformat(),
        "customer_id": t.customer_id,
        "order_id": t.order_id,
        "data": data,
    }
    try:
        with s.begin_nested():
            if rt.apply_event(s, parse_event(raw), "webhook", now):
                actions[type_] += 1
    except (PosventaError, ValueError) as exc:
        log.warning("webhook %s: could not record %s: %s", ev.event, type_, exc)


def _survey_click(
    s: Session, rt: Runtime, url: str, at: datetime, t: _Target, now: datetime, actions: Counter[str]
) -> None:
    """A tracked click on ``<public_base_url>/s/<token>`` answers the survey like opening the link does,
    except that it never overrides an answer already given (the page may have changed it since)."""
    from infra.web import actions as web_actions  # the survey logic lives with the survey page

    base = urlsplit(rt.settings.public_base_url)
    parts = urlsplit(url)
    prefix = base.path.rstrip("/") + "/s/"
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(prefix):
        return
    token = parts.path[len(prefix) :]
    try:
        link = web_actions.verify_survey(token, rt.settings.secret_key.get_secret_value(), at)
    except tokens.TokenError:
        return
    if link.customer_id != t.customer_id:
        return
    try:
        with s.begin_nested():
            answer = web_actions.record_answer_in(s, rt, link, at, source="webhook", keep_existing=True)
    except (PosventaError, ValueError) as exc:
        log.warning("webhook click: could not record the survey answer: %s", exc)
        return
    if answer.first:
        actions["survey_answered"] += 1
