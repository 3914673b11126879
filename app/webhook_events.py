"""SendGrid Event Webhook events applied to Posventa's state (verification and parsing are the adapter's:
``infra.email.webhook``).

Each event is handled in its own transaction, and first recorded by ``sg_event_id``: SendGrid redelivers
batches, and a redelivered event changes nothing. A database error propagates (the endpoint answers 5xx
and SendGrid retries the batch; the events already applied are then duplicates). Events are matched to
ledger rows through the ``posventa_key`` custom arg, and to customers through that row (or, failing
that, the address). Statuses only move forward: the ledger guards every move.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from app.clicks import Clicks
from app.config import Config
from app.ingest import Ingest
from app.links import verify_survey
from app.ports import Store, Tx, mask_email
from posventa import tokens
from posventa.errors import PosventaError
from posventa.events import parse_event

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
_MAX_KEY = 255  # ledger.key


@dataclass(frozen=True)
class WebhookEvent:
    """One SendGrid event; ``ledger_key`` is our ``posventa_key`` custom arg echoed back (None for mail
    not sent by Posventa). ``sg_event_id`` is SendGrid's id for de-duplicating redelivered events."""

    sg_event_id: str
    event: str
    email: str
    timestamp: int
    ledger_key: str | None
    sg_message_id: str | None = None
    url: str | None = None
    reason: str | None = None
    category: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def provider_message_id(self) -> str | None:
        """The X-Message-Id returned by mail/send: ``sg_message_id`` up to its first dot."""
        return self.sg_message_id.split(".", 1)[0] if self.sg_message_id else None


@dataclass(frozen=True)
class _Target:
    customer_id: str
    order_id: str | None
    ledger_key: str | None


# Values an event may carry that cannot be stored: the event is skipped rather than have SendGrid
# redeliver the batch forever. A database outage is not among them: it propagates and the batch is retried.
_UNSTORABLE: tuple[type[Exception], ...] = (ValueError, OverflowError, OSError, PosventaError)


class WebhookEvents:
    def __init__(self, store: Store, ingest: Ingest, clicks: Clicks, config: Config) -> None:
        self.store = store
        self.ingest = ingest
        self.clicks = clicks
        self.config = config
        self.unstorable = _UNSTORABLE + store.value_errors

    def apply(self, events: Sequence[WebhookEvent], now: datetime) -> dict[str, Any]:
        """Apply a verified batch; returns counts (``received``, ``applied``, ``duplicates``, ``ignored``,
        ``failed``) and what was done (``actions``: suppressions, ledger moves, statistics events, survey
        answers)."""
        outcomes: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        for ev in events:
            try:
                outcome = self._apply_one(ev, now, actions)
            except self.unstorable as exc:
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

    def _apply_one(self, ev: WebhookEvent, now: datetime, actions: Counter[str]) -> str:
        if len(ev.sg_event_id) > _MAX_SG_ID or len(ev.email) > _MAX_EMAIL:
            log.warning("webhook event with an over-long sg_event_id or address ignored")
            return "ignored"
        at = datetime.fromtimestamp(ev.timestamp, UTC)
        ledger_key = ev.ledger_key if ev.ledger_key and len(ev.ledger_key) <= _MAX_KEY else None
        with self.store.begin() as tx:
            if not tx.provider_events.record(ev.sg_event_id, ev.event[:32], ledger_key, ev.email, at, ev.raw):
                return "duplicate"
            target = self._target(tx, ev.email, ledger_key)
            if target is None:
                log.info("webhook %s for unknown address %s ignored", ev.event, mask_email(ev.email))
                return "ignored"
            self._act(tx, ev, at, target, now, actions)
        return "applied"

    def _target(self, tx: Tx, email: str, ledger_key: str | None) -> _Target | None:
        row = tx.ledger.get(ledger_key) if ledger_key else None
        if row is not None:
            return _Target(row.customer_id, row.payload.get("order_id"), row.key)
        customer_id = tx.customers.find_by_email(email)
        return _Target(customer_id, None, None) if customer_id else None

    def _act(
        self, tx: Tx, ev: WebhookEvent, at: datetime, t: _Target, now: datetime, actions: Counter[str]
    ) -> None:
        kind, key = ev.event, t.ledger_key
        if (
            kind in SENT_EVIDENCE
            and key
            and tx.ledger.mark(
                key, ("unknown", "sending"), "sent", provider_message_id=ev.provider_message_id, now=now
            )
        ):
            actions["ledger_sent"] += 1
        if kind == "bounce" and str(ev.raw.get("type", "bounce")) == "blocked":
            pass  # a block is temporary (the receiving server refused for now): statistics only
        elif kind in ("bounce", "dropped"):
            reason = "bounced" if kind == "bounce" else "dropped"
            detail = (ev.reason or "")[:500] or None
            if tx.suppressions.suppress(
                ev.email, reason, scope="all", customer_id=t.customer_id, source="sendgrid", detail=detail
            ):
                actions[f"suppressed_{reason}"] += 1
            if key and tx.ledger.mark(
                key, ("unknown", "sending"), "failed", reason=f"{kind}: {ev.reason or ''}"[:500], now=now
            ):
                actions["ledger_failed"] += 1
        elif kind == "spamreport":
            if tx.suppressions.suppress(
                ev.email, "spam_report", scope="all", customer_id=t.customer_id, source="sendgrid"
            ):
                actions["suppressed_spam_report"] += 1
        elif kind in ("unsubscribe", "group_unsubscribe"):
            if tx.suppressions.suppress(
                ev.email, "unsubscribed", scope="promotional", customer_id=t.customer_id, source="sendgrid"
            ):
                actions["suppressed_unsubscribed"] += 1
            data = {"scope": "promotional", "source": "sendgrid"}
            self._event(tx, ev, at, t, now, "customer.unsubscribed", data, actions)
        if kind in STAT_EVENTS:
            stat: dict[str, Any] = {"ledger_key": key, "url": ev.url if kind == "click" else None}
            self._event(tx, ev, at, t, now, STAT_EVENTS[kind], {k: v for k, v in stat.items() if v}, actions)
        if kind == "click" and ev.url:
            self._survey_click(tx, ev.url, at, t, actions)

    def _event(
        self,
        tx: Tx,
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
            with tx.savepoint():
                if self.ingest.apply_one(tx, parse_event(raw), "webhook", now):
                    actions[type_] += 1
        except (PosventaError, ValueError) as exc:
            log.warning("webhook %s: could not record %s: %s", ev.event, type_, exc)

    def _survey_click(self, tx: Tx, url: str, at: datetime, t: _Target, actions: Counter[str]) -> None:
        """A tracked click on ``<public_base_url>/s/<token>`` answers the survey like opening the link
        does, except that it never overrides an answer already given (the page may have changed it)."""
        base = urlsplit(self.config.public_base_url)
        parts = urlsplit(url)
        prefix = base.path.rstrip("/") + "/s/"
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(prefix):
            return
        try:
            link = verify_survey(parts.path[len(prefix) :], self.config.secret_key, at)
        except tokens.TokenError:
            return
        if link.customer_id != t.customer_id:
            return
        try:
            with tx.savepoint():
                answer = self.clicks.answer_in(tx, link, at, source="webhook", keep_existing=True)
        except (PosventaError, ValueError) as exc:
            log.warning("webhook click: could not record the survey answer: %s", exc)
            return
        if answer.first:
            actions["survey_answered"] += 1
