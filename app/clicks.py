"""What a click does: a survey answer, an unsubscribe, a referral visit (no web framework here).

The survey page and the SendGrid click webhook both answer a survey through :meth:`Clicks.answer_in`, so
a click is the same ``feedback.submitted`` event whichever way it reaches us. Event ids are derived from
what was clicked (``survey:<ledger key>``, ``unsubscribe:<ledger key>``), never random: the same click
arriving twice is one event.

Changing a survey answer: the first answer is the event that resolves the journey's ``wait_for``; a
later answer updates the stored feedback row. If no enrollment has consumed the answer event yet (the
sweep has not run), the event's payload is updated as well, so a customer who corrects a mis-tap within
minutes is branched on the corrected score. Once a journey has branched, the branch stands; conditions
that read ``feedback.score`` see the latest answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.config import Config
from app.ingest import Ingest
from app.links import SurveyLink, UnsubscribeLink
from app.plans import PlanBook
from app.ports import Store, Tx, mask_email
from posventa.errors import PosventaError
from posventa.events import parse_event

SURVEY = "nps"
_MAX_ID = 128  # events.id
_CODE = re.compile(r"[A-Z0-9]{4,32}")


def derived_id(prefix: str, key: str) -> str:
    """``prefix:key``, or ``prefix:#<sha256>`` when that would not fit the events table's id."""
    plain = f"{prefix}:{key}"
    if len(plain) <= _MAX_ID:
        return plain
    return f"{prefix}:#{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def normalise_code(code: str) -> str | None:
    """Codes are read aloud and typed: accept any case and stray spaces; None if it cannot be one."""
    c = code.strip().upper()
    return c if _CODE.fullmatch(c) else None


@dataclass(frozen=True)
class Answer:
    score: int
    comment: str | None
    first: bool  # this request created the answer event
    locale: str | None
    first_name: str | None


@dataclass(frozen=True)
class UnsubscribeView:
    masked_email: str | None
    journey_name: str | None  # in the customer's locale when the journey names it there
    already: bool
    locale: str | None
    journey_names: Mapping[str, str] = field(default_factory=dict)  # the journey's name per locale

    def journey_in(self, lang: str) -> str | None:
        """The journey's name for a page in ``lang``."""
        return self.journey_names.get(lang) or self.journey_name


class Clicks:
    def __init__(self, store: Store, ingest: Ingest, plans: PlanBook, config: Config) -> None:
        self.store = store
        self.ingest = ingest
        self.plans = plans
        self.config = config

    # --- survey ----------------------------------------------------------------------------------------
    def answer(
        self,
        link: SurveyLink,
        now: datetime,
        *,
        source: str = "api",
        comment: str | None = None,
        keep_existing: bool = False,
    ) -> Answer:
        """Answer the survey of ``link`` (its score, and ``comment`` if given) in one transaction."""
        with self.store.begin() as tx:
            return self.answer_in(tx, link, now, source=source, comment=comment, keep_existing=keep_existing)

    def answer_in(
        self,
        tx: Tx,
        link: SurveyLink,
        now: datetime,
        *,
        source: str,
        comment: str | None = None,
        keep_existing: bool = False,
    ) -> Answer:
        """Inside the caller's transaction. ``keep_existing``: only a first answer counts (the webhook's
        late copy of a click must not overwrite an answer the customer changed since)."""
        data: dict[str, Any] = {"score": link.score, "survey": SURVEY}
        if comment:
            data["comment"] = comment
        event_id = derived_id("survey", link.ledger_key)
        ev = parse_event(
            {
                "id": event_id,
                "type": "feedback.submitted",
                "occurred_at": now.isoformat(),
                "customer_id": link.customer_id,
                "order_id": link.order_id,
                "data": data,
            }
        )
        before = tx.feedback.get(link.customer_id, link.order_id, SURVEY)
        kept = before.comment if before is not None else None
        first = self.ingest.apply_one(tx, ev, source, now)
        if not first and not keep_existing:
            self._change_answer(tx, event_id, link, comment)
        elif first and comment is None and kept:
            # an answer from another email of the same survey (the reminder) keeps the comment given before
            tx.feedback.save(link.customer_id, link.order_id, SURVEY, link.score, kept)
        row = tx.feedback.get(link.customer_id, link.order_id, SURVEY)
        customer = tx.customers.fact(link.customer_id)
        name = (customer or {}).get("name")
        return Answer(
            score=row.score if row else link.score,
            comment=row.comment if row else comment,
            first=first,
            locale=customer.get("locale") if customer else None,
            first_name=(name.split(" ", 1)[0] or None) if name else None,
        )

    def _change_answer(self, tx: Tx, event_id: str, link: SurveyLink, comment: str | None) -> None:
        existing = tx.feedback.get(link.customer_id, link.order_id, SURVEY)
        kept = comment if comment is not None else (existing.comment if existing else None)
        tx.feedback.save(link.customer_id, link.order_id, SURVEY, link.score, kept)
        # The customer's live enrollments are locked: a sweep advancing one of them right now either
        # committed (and we see the event consumed) or waits for us (and sees the new score).
        states = tx.enrollments.states_for_customer(link.customer_id, lock_live=True)
        if any(event_id in (st.get("consumed") or ()) for st in states):
            return  # a journey already acted on the first answer
        data = tx.events.data(event_id)
        if data is not None:
            data["score"] = link.score
            if kept:
                data["comment"] = kept
            tx.events.set_data(event_id, data)

    # --- unsubscribe -----------------------------------------------------------------------------------
    def unsubscribe_view(self, link: UnsubscribeLink) -> UnsubscribeView:
        """What the customer would leave (a GET never unsubscribes: link scanners open links)."""
        with self.store.read() as tx:
            customer = tx.customers.fact(link.customer_id)
            email = link.email or (customer.get("email") if customer else None)
            already = bool(email and tx.suppressions.is_suppressed(email, promotional=True))
        return self._view(link, email, already, customer.get("locale") if customer else None)

    def unsubscribe(self, link: UnsubscribeLink, now: datetime, *, source: str = "api") -> UnsubscribeView:
        """Suppress promotional mail to the address the link was sent to and record
        ``customer.unsubscribed`` (journeys that exit on it end at their next advance; deliveries check
        the suppression before every send, so a pending promotional message is already stopped)."""
        with self.store.begin() as tx:
            customer = tx.customers.fact(link.customer_id)
            email = link.email or (customer.get("email") if customer else None)
            already = bool(email and tx.suppressions.is_suppressed(email, promotional=True))
            if email:
                tx.suppressions.suppress(
                    email,
                    "unsubscribed",
                    scope="promotional",
                    customer_id=link.customer_id,
                    source="unsubscribe-link",
                )
            ev = parse_event(
                {
                    "id": derived_id("unsubscribe", link.ledger_key or link.customer_id),
                    "type": "customer.unsubscribed",
                    "occurred_at": now.isoformat(),
                    "customer_id": link.customer_id,
                    "data": {"scope": "promotional", "source": "unsubscribe-link"},
                }
            )
            self.ingest.apply_one(tx, ev, source, now)
        return self._view(link, email, already, customer.get("locale") if customer else None)

    def _view(
        self, link: UnsubscribeLink, email: str | None, already: bool, locale: str | None
    ) -> UnsubscribeView:
        plan = self.plans.get(link.journey or "")
        return UnsubscribeView(
            masked_email=mask_email(email) if email else None,
            journey_name=plan.display_name(locale) if plan else None,
            journey_names=dict(plan.names) if plan else {},
            already=already,
            locale=locale,
        )

    # --- referrals -------------------------------------------------------------------------------------
    def referral(self, code: str, visitor: str, now: datetime) -> str | None:
        """Record ``referral.clicked`` for the code's owner; return the normalised code, or None if
        unknown.

        ``visitor`` (client address and user agent) is folded into the event id with the hour, keyed with
        the secret: reloading the page does not count twice, and the stored id reveals nothing about the
        visitor.
        """
        normal = normalise_code(code)
        if normal is None:
            return None
        with self.store.begin() as tx:
            owner = tx.referrals.owner(normal)
            if owner is None:
                return None
            who = hmac.new(self.config.secret_key.encode(), visitor.encode(), hashlib.sha256).hexdigest()[:16]
            ev = parse_event(
                {
                    "id": derived_id("referral", f"{normal}:{who}:{now.astimezone(UTC):%Y%m%d%H}"),
                    "type": "referral.clicked",
                    "occurred_at": now.isoformat(),
                    "customer_id": owner,
                    "data": {"code": normal},
                }
            )
            try:
                with tx.savepoint():
                    self.ingest.apply_one(tx, ev, "api", now)
            except PosventaError:
                pass  # the redirect matters more than the statistic
        return normal
