"""What a click does, as functions on the :class:`~infra.runtime.Runtime` (no web framework here).

The survey page and the SendGrid click webhook both answer a survey through :func:`record_answer`, so a
click is the same ``feedback.submitted`` event whichever way it reaches us. Event ids are derived from
what was clicked (``survey:<ledger key>``, ``unsubscribe:<ledger key>``), never random: the same click
arriving twice is one event (STYLE.md §8).

Changing a survey answer: the first answer is the event that resolves the journey's ``wait_for``; a
later answer updates the stored feedback row (``store.save_feedback`` upserts). If no enrollment has
consumed the answer event yet (the sweep has not run), the event's payload is updated as well, so a
customer who corrects a mis-tap within minutes is branched on the corrected score. Once a journey has
branched, the branch stands; conditions that read ``feedback.score`` see the latest answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.db import models as m
from infra.db import store
from infra.email.message import mask_email
from infra.runtime import Runtime
from posventa import tokens
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


# --- links -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SurveyLink:
    """A verified ``/s/<token>``: payload k (ledger key), c, o, s (score), j, x (expiry)."""

    payload: Mapping[str, Any]
    ledger_key: str
    customer_id: str
    order_id: str | None
    score: int
    journey: str | None
    expires: int

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> SurveyLink:
        k, c, o, s, j, x = (p.get(n) for n in ("k", "c", "o", "s", "j", "x"))
        if (
            not isinstance(k, str)
            or not k
            or not isinstance(c, str)
            or not c
            or not (o is None or isinstance(o, str))
            or isinstance(s, bool)
            or not isinstance(s, int)
            or not 0 <= s <= 10
            or not (j is None or isinstance(j, str))
            or not isinstance(x, int)
        ):
            raise tokens.TokenError("malformed")
        return cls(dict(p), k, c, o or None, s, j, x)

    def for_score(self, score: int, secret: str, now: datetime) -> str:
        """A token for the same survey with another score, expiring when this one does."""
        body = {n: v for n, v in self.payload.items() if n != "x"}
        body["s"] = score
        ttl = timedelta(seconds=self.expires - now.timestamp() + 0.5)  # sign() floors to the same second
        return tokens.sign(body, secret, now=now, ttl=ttl)


@dataclass(frozen=True)
class UnsubscribeLink:
    """A verified ``/u/<token>``: payload c, e (the address the mail went to), j, k."""

    customer_id: str
    email: str | None
    journey: str | None
    ledger_key: str | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> UnsubscribeLink:
        c, e, j, k = (p.get(n) for n in ("c", "e", "j", "k"))
        if (
            not isinstance(c, str)
            or not c
            or not (e is None or isinstance(e, str))
            or not (j is None or isinstance(j, str))
            or not (k is None or isinstance(k, str))
        ):
            raise tokens.TokenError("malformed")
        return cls(c, e or None, j or None, k or None)


def verify_survey(token: str, secret: str, now: datetime) -> SurveyLink:
    return SurveyLink.from_payload(tokens.verify(token, secret, now=now))


def verify_unsubscribe(token: str, secret: str, now: datetime) -> UnsubscribeLink:
    return UnsubscribeLink.from_payload(tokens.verify(token, secret, now=now))


# --- survey ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    score: int
    comment: str | None
    first: bool  # this request created the answer event
    locale: str | None
    first_name: str | None


def record_answer(
    rt: Runtime,
    link: SurveyLink,
    now: datetime,
    *,
    source: str = "api",
    comment: str | None = None,
    keep_existing: bool = False,
) -> Answer:
    """Answer the survey of ``link`` (its score, and ``comment`` if given) in one transaction."""
    with rt.factory.begin() as s:
        return record_answer_in(s, rt, link, now, source=source, comment=comment, keep_existing=keep_existing)


def record_answer_in(
    s: Session,
    rt: Runtime,
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
    before = _feedback(s, link.customer_id, link.order_id)
    kept = before.comment if before is not None else None  # a value: the row object is refreshed below
    first = rt.apply_event(s, ev, source, now)
    if not first and not keep_existing:
        _change_answer(s, event_id, link, comment)
    elif first and comment is None and kept:
        # an answer from another email of the same survey (the reminder) keeps the comment given before
        store.save_feedback(s, link.customer_id, link.order_id, SURVEY, link.score, kept)
    row = _feedback(s, link.customer_id, link.order_id)
    customer = s.get(m.Customer, link.customer_id)
    first_name = None
    if customer is not None and customer.name:
        first_name = customer.name.split(" ", 1)[0] or None
    return Answer(
        score=row.score if row else link.score,
        comment=row.comment if row else comment,
        first=first,
        locale=customer.locale if customer else None,
        first_name=first_name,
    )


def _feedback(s: Session, customer_id: str, order_id: str | None) -> m.FeedbackResponse | None:
    same_order = (
        m.FeedbackResponse.order_id.is_(None) if order_id is None else m.FeedbackResponse.order_id == order_id
    )
    q = select(m.FeedbackResponse).where(
        m.FeedbackResponse.customer_id == customer_id, same_order, m.FeedbackResponse.survey == SURVEY
    )
    return s.scalars(q.execution_options(populate_existing=True)).one_or_none()


def _change_answer(s: Session, event_id: str, link: SurveyLink, comment: str | None) -> None:
    existing = _feedback(s, link.customer_id, link.order_id)
    kept = comment if comment is not None else (existing.comment if existing else None)
    store.save_feedback(s, link.customer_id, link.order_id, SURVEY, link.score, kept)
    # Lock the customer's live enrollments: a sweep that is advancing one of them right now either
    # committed (and we see the event consumed) or waits for us (and sees the new score).
    live = s.scalars(
        select(m.Enrollment)
        .where(
            m.Enrollment.customer_id == link.customer_id, m.Enrollment.status.in_(m.LIVE_ENROLLMENT_STATUSES)
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    ended = s.scalars(
        select(m.Enrollment.state).where(
            m.Enrollment.customer_id == link.customer_id,
            m.Enrollment.status.not_in(m.LIVE_ENROLLMENT_STATUSES),
        )
    ).all()
    states = [e.state or {} for e in live] + [st or {} for st in ended]
    if any(event_id in (st.get("consumed") or ()) for st in states):
        return  # a journey already acted on the first answer
    stored = s.get(m.StoredEvent, event_id, populate_existing=True)
    if stored is not None:
        data = {**(stored.data or {}), "score": link.score}
        if kept:
            data["comment"] = kept
        stored.data = data


# --- unsubscribe -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnsubscribeView:
    masked_email: str | None
    journey_name: str | None
    already: bool
    locale: str | None


def unsubscribe_view(rt: Runtime, link: UnsubscribeLink) -> UnsubscribeView:
    with rt.factory() as s:
        customer = s.get(m.Customer, link.customer_id)
        email = link.email or (customer.email if customer else None)
        already = bool(email and store.is_suppressed(s, email, promotional=True))
    plan = rt.plans.get(link.journey or "")
    return UnsubscribeView(
        masked_email=mask_email(email) if email else None,
        journey_name=plan.name if plan else None,
        already=already,
        locale=customer.locale if customer else None,
    )


def unsubscribe(rt: Runtime, link: UnsubscribeLink, now: datetime, *, source: str = "api") -> UnsubscribeView:
    """Suppress promotional mail to the address the link was sent to and record ``customer.unsubscribed``
    (journeys that exit on it end at their next advance; deliveries check the suppression before every
    send, so a pending promotional message is already stopped)."""
    with rt.factory.begin() as s:
        customer = s.get(m.Customer, link.customer_id)
        email = link.email or (customer.email if customer else None)
        already = bool(email and store.is_suppressed(s, email, promotional=True))
        if email:
            store.suppress(
                s,
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
        rt.apply_event(s, ev, source, now)
        locale = customer.locale if customer else None
    plan = rt.plans.get(link.journey or "")
    return UnsubscribeView(
        masked_email=mask_email(email) if email else None,
        journey_name=plan.name if plan else None,
        already=already,
        locale=locale,
    )


# --- referrals -------------------------------------------------------------------------------------------
def normalise_code(code: str) -> str | None:
    """Codes are read aloud and typed: accept any case and stray spaces; None if it cannot be one."""
    c = code.strip().upper()
    return c if _CODE.fullmatch(c) else None


def referral_click(rt: Runtime, code: str, visitor: str, now: datetime) -> str | None:
    """Record ``referral.clicked`` for the code's owner; return the normalised code, or None if unknown.

    ``visitor`` (client address and user agent) is folded into the event id with the hour, keyed with the
    secret: reloading the page does not count twice, and the stored id reveals nothing about the visitor.
    """
    normal = normalise_code(code)
    if normal is None:
        return None
    with rt.factory.begin() as s:
        owner = s.scalar(select(m.ReferralCode.customer_id).where(m.ReferralCode.code == normal))
        if owner is None:
            return None
        secret = rt.settings.secret_key.get_secret_value().encode()
        who = hmac.new(secret, visitor.encode(), hashlib.sha256).hexdigest()[:16]
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
            with s.begin_nested():
                rt.apply_event(s, ev, "api", now)
        except PosventaError:
            pass  # the redirect matters more than the statistic
    return normal


def referral_report(rt: Runtime, limit: int = 100) -> dict[str, Any]:
    """Referral codes, clicks and attributed orders (``order.referral_code``) per journey and referrer."""
    rc, conv, o = m.ReferralCode, m.ReferralConversion, m.Order
    with rt.factory() as s:
        clicks = dict(
            s.execute(
                select(m.StoredEvent.customer_id, func.count())
                .where(m.StoredEvent.type == "referral.clicked")
                .group_by(m.StoredEvent.customer_id)
            )
            .tuples()
            .all()
        )
        conversions: dict[str, tuple[int, float]] = {}
        for code, n, amount in s.execute(
            select(conv.code, func.count(conv.id), func.sum(o.total))
            .select_from(conv)
            .outerjoin(o, o.id == conv.order_id)
            .group_by(conv.code)
        ).tuples():
            conversions[code] = (int(n), float(amount or 0))
        codes = s.execute(select(rc.code, rc.customer_id, rc.journey_id)).tuples().all()
    referrers: list[dict[str, Any]] = []
    journeys: dict[str, dict[str, Any]] = {}
    for code, owner, journey in codes:
        n, revenue = conversions.get(code, (0, 0.0))
        row: dict[str, Any] = {
            "customer_id": owner,
            "code": code,
            "journey_id": journey,
            "clicks": int(clicks.get(owner, 0)),
            "conversions": n,
            "revenue": round(revenue, 2),
        }
        referrers.append(row)
        j = journeys.setdefault(
            journey or "", {"journey_id": journey, "codes": 0, "clicks": 0, "conversions": 0, "revenue": 0.0}
        )
        j["codes"] += 1
        j["clicks"] += row["clicks"]
        j["conversions"] += n
        j["revenue"] = round(j["revenue"] + revenue, 2)
    referrers.sort(key=lambda r: (-r["conversions"], -r["clicks"], r["code"]))
    total = {k: sum(j[k] for j in journeys.values()) for k in ("codes", "clicks", "conversions")}
    total["revenue"] = round(sum(j["revenue"] for j in journeys.values()), 2)
    return {
        "total": total,
        "journeys": sorted(journeys.values(), key=lambda j: j["journey_id"] or ""),
        "referrers": referrers[:limit],
    }
