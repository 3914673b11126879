"""The post-sale KPIs: NPS, on-time delivery, repeat purchase, churn, referrals and complaint tickets.

Each function reads one concern, aggregates in SQL and returns ``infra.report.model`` values. Periods are
half-open, ``since`` ≤ t < ``until``; what t is, is said per metric. Canceled orders are not purchases
anywhere here. The ``journey`` filter applies where the data says which journey it belongs to (NPS
answers, through the survey email they came from; referral codes); orders and tickets are the shop's,
not a journey's, and are not filtered by it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.selectable import Subquery, TableValuedAlias

from infra.db import models as m
from infra.db.metrics._sql import (
    days_between,
    epoch_s,
    json_array_elements,
    log_bucket,
    median_of,
    prepare,
    utc_day,
    week_start,
)
from infra.db.metrics.funnel import Scope, money
from infra.db.types import JSONType
from infra.report.model import (
    Churn,
    Complaints,
    DeliveryCounts,
    Nps,
    NpsComment,
    NpsCounts,
    OnTimeDelivery,
    Referral,
    RepeatPurchase,
    RepeatWindow,
    TicketCounts,
)

REPEAT_WINDOWS_DAYS = (30, 60, 90, 180)
DEFAULT_CHURN_WINDOW_DAYS = 180
PROMOTER, DETRACTOR = 9, 6  # promoters score 9–10, detractors 0–6
_SURVEY_EVENT_PREFIX = "survey:"  # feedback.submitted ids are "survey:<ledger key>" (app/clicks.py)


def _in_period(
    column: InstrumentedAttribute[Any] | ColumnElement[Any], scope: Scope
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if scope.since is not None:
        conds.append(column >= scope.since)
    if scope.until is not None:
        conds.append(column < scope.until)
    return conds


def iso_week(monday: date | str) -> str:
    """``2026-03-02`` → ``2026-W10``."""
    d = date.fromisoformat(monday) if isinstance(monday, str) else monday
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


# --- NPS ----------------------------------------------------------------------------------------------------
def _survey_journeys() -> Subquery:
    """(feedback id, journey id) for NPS answers given through a survey email: the answer's
    ``feedback.submitted`` event is ``survey:<ledger key>``, and that ledger row names the journey."""
    f, ev, ledger = m.FeedbackResponse, m.StoredEvent, m.LedgerEntry
    prefix = len(_SURVEY_EVENT_PREFIX)
    return (
        select(f.id.label("feedback_id"), ledger.journey_id)
        .select_from(f)
        .join(
            ev,
            and_(
                ev.customer_id == f.customer_id,
                ev.order_id.is_not_distinct_from(f.order_id),
                ev.type == "feedback.submitted",
                ev.id.startswith(_SURVEY_EVENT_PREFIX, autoescape=True),
            ),
        )
        .join(ledger, ledger.key == func.substr(ev.id, prefix + 1))
        .where(f.survey == "nps")
        .distinct()
        .subquery("survey_journey")
    )


def _answers(scope: Scope) -> tuple[Subquery, Subquery]:
    """The NPS answers given in the period (by ``created_at``, the first answer: changing it later keeps
    its week), restricted to the journey's when one is asked for; and their journeys."""
    f = m.FeedbackResponse
    sj = _survey_journeys()
    q = select(f.id, f.customer_id, f.order_id, f.score, f.created_at).where(
        f.survey == "nps", *_in_period(f.created_at, scope)
    )
    if scope.journey is not None:
        q = q.where(f.id.in_(select(sj.c.feedback_id).where(sj.c.journey_id == scope.journey)))
    return q.subquery("answers"), sj


def _nps_counts(score: ColumnElement[int]) -> list[ColumnElement[Any]]:
    return [
        func.count().label("responses"),
        func.count().filter(score >= PROMOTER).label("promoters"),
        func.count().filter(and_(score > DETRACTOR, score < PROMOTER)).label("passives"),
        func.count().filter(score <= DETRACTOR).label("detractors"),
    ]


def _nps_rows(s: Session, q: Select[Any]) -> list[NpsCounts]:
    return [
        NpsCounts(
            key=None if row.get("key") is None else str(row["key"]),
            label=row.get("label"),
            responses=int(row["responses"]),
            promoters=int(row["promoters"]),
            passives=int(row["passives"]),
            detractors=int(row["detractors"]),
        )
        for row in s.execute(q).mappings()
    ]


def _json_field(elements: TableValuedAlias, key: str) -> ColumnElement[str]:
    """``value->>key`` of an element from :func:`json_array_elements`, on either backend."""
    return type_coerce(elements.c.value, JSONType)[key].as_string()


def nps(s: Session, scope: Scope, comments: int = 10) -> Nps:
    """NPS overall and by ISO week, journey, product (SKU of the answered order's items) and locale, and
    the latest ``comments`` comments. An answer not tied to an order has no product; one not given through
    a journey's survey email (e.g. sent by the shop through the API) has no journey."""
    a, sj = _answers(scope)
    counts = _nps_counts(a.c.score)
    overall = _nps_rows(s, select(*counts))[0]

    weekly = select(week_start(a.c.created_at).label("key"), a.c.score).subquery("weekly")
    by_week = [
        replace(row, key=iso_week(row.key or ""))
        for row in _nps_rows(s, select(weekly.c.key, *_nps_counts(weekly.c.score)).group_by(weekly.c.key))
    ]

    by_journey = _nps_rows(
        s,
        select(sj.c.journey_id.label("key"), *counts)
        .select_from(a.join(sj, sj.c.feedback_id == a.c.id))
        .group_by(sj.c.journey_id),
    )

    o = m.Order
    item = json_array_elements(_dialect(s), o.items)
    products = (
        select(
            a.c.id, a.c.score, _json_field(item, "sku").label("sku"), _json_field(item, "name").label("name")
        )
        .select_from(a.join(o, o.id == a.c.order_id), item)
        .distinct()  # an order listing a SKU twice is one answer about it
        .subquery("products")
    )
    p = products.c
    by_product = _nps_rows(
        s,
        select(p.sku.label("key"), func.max(p.name).label("label"), *_nps_counts(p.score))
        .where(p.sku.is_not(None))
        .group_by(p.sku),
    )

    c = m.Customer
    by_locale = _nps_rows(
        s,
        select(c.locale.label("key"), *counts)
        .select_from(a.join(c, c.id == a.c.customer_id))
        .group_by(c.locale),
    )

    f = m.FeedbackResponse
    latest = s.execute(
        select(f.updated_at, f.score, f.comment, f.customer_id, f.order_id, c.locale)
        .join(a, a.c.id == f.id)
        .outerjoin(c, c.id == f.customer_id)
        .where(f.comment.is_not(None), f.comment != "")
        .order_by(f.updated_at.desc(), f.id.desc())
        .limit(comments)
    )
    return Nps(
        overall=overall,
        by_week=tuple(sorted(by_week, key=lambda r: r.key or "")),
        by_journey=tuple(sorted(by_journey, key=lambda r: r.key or "")),
        by_product=tuple(sorted(by_product, key=lambda r: (-r.responses, r.key or ""))),
        by_locale=tuple(sorted(by_locale, key=lambda r: r.key or "")),
        latest_comments=tuple(
            NpsComment(answered_at, score, comment or "", customer_id, order_id, locale)
            for answered_at, score, comment, customer_id, order_id, locale in latest
        ),
    )


# --- on-time delivery ---------------------------------------------------------------------------------------
def _delivery_counts(late_days: ColumnElement[int]) -> list[ColumnElement[Any]]:
    late = late_days > 0
    return [
        func.count().label("delivered"),
        func.count().filter(late_days <= 0).label("on_time"),
        func.count().filter(late).label("late"),
        func.coalesce(func.sum(late_days).filter(late), 0).label("days_late_total"),
        func.coalesce(func.max(late_days).filter(late), 0).label("max_days_late"),
    ]


def _delivery_rows(s: Session, q: Select[Any]) -> list[DeliveryCounts]:
    return [
        DeliveryCounts(
            key=None if row.get("key") is None else iso_week(str(row["key"])),
            **{k: int(row[k]) for k in ("delivered", "on_time", "late", "days_late_total", "max_days_late")},
        )
        for row in s.execute(q).mappings()
    ]


def on_time_delivery(s: Session, scope: Scope) -> OnTimeDelivery:
    """Orders delivered in the period (by ``delivered_at``) against their promised date: on time when the
    UTC day of delivery is on or before the promised day; days late = the difference otherwise. By ISO
    week of delivery. The promised date is the shop's calendar day and the delivery day is taken in UTC,
    so a delivery in the late evening west of Greenwich can read one day later than the shop's."""
    o = m.Order
    delivered = [o.delivered_at.is_not(None), o.status != "canceled", *_in_period(o.delivered_at, scope)]
    rows = (
        select(
            week_start(o.delivered_at).label("key"),
            days_between(o.promised_delivery_date, utc_day(o.delivered_at)).label("late_days"),
        )
        .where(*delivered, o.promised_delivery_date.is_not(None))
        .subquery("deliveries")
    )
    by_week = _delivery_rows(
        s, select(rows.c.key, *_delivery_counts(rows.c.late_days)).group_by(rows.c.key).order_by(rows.c.key)
    )
    overall = DeliveryCounts(
        key=None,
        delivered=sum(w.delivered for w in by_week),
        on_time=sum(w.on_time for w in by_week),
        late=sum(w.late for w in by_week),
        days_late_total=sum(w.days_late_total for w in by_week),
        max_days_late=max((w.max_days_late for w in by_week), default=0),
    )
    today = scope.as_of.astimezone(UTC).date()
    pending = [
        o.status.in_(("placed", "shipped")),
        o.delivered_at.is_(None),
        o.promised_delivery_date < today,
    ]
    if scope.since is not None:
        pending.append(o.promised_delivery_date >= scope.since.astimezone(UTC).date())
    without, overdue = s.execute(
        select(
            func.count().filter(and_(*delivered, o.promised_delivery_date.is_(None))),
            func.count().filter(and_(*pending)),
        )
    ).one()
    return OnTimeDelivery(overall, tuple(by_week), int(without), int(overdue))


# --- repeat purchase and churn ------------------------------------------------------------------------------
def _purchases(scope: Scope) -> list[ColumnElement[bool]]:
    """Orders that count as purchases by ``as_of``: placed before it and not canceled."""
    o = m.Order
    return [o.status != "canceled", o.placed_at < scope.as_of]


def repeat_purchase(
    s: Session, scope: Scope, windows_days: Sequence[int] = REPEAT_WINDOWS_DAYS
) -> RepeatPurchase:
    """Customers whose first purchase ever falls in the period; for each window of N days, of those whose
    first purchase is at least N days before ``as_of`` (the whole window has passed), how many bought
    again within N days of it (a second order, the same instant included)."""
    o = m.Order
    # Each customer's first two purchases, in one sort of the orders: a repeat within N days is a second
    # purchase at most N days after the first (the same instant included).
    nth = (
        select(
            o.customer_id,
            epoch_s(o.placed_at).label("at_s"),
            o.placed_at,
            func.row_number().over(partition_by=o.customer_id, order_by=(o.placed_at, o.id)).label("n"),
        )
        .where(*_purchases(scope))
        .subquery("nth")
    )
    firsts = (
        select(
            nth.c.customer_id,
            func.min(nth.c.placed_at).label("first_at"),
            func.min(nth.c.at_s).label("first_s"),
            func.max(nth.c.at_s).filter(nth.c.n == 2).label("second_s"),
        )
        .where(nth.c.n <= 2)
        .group_by(nth.c.customer_id)
        .subquery("firsts")
    )
    in_period = [
        *([firsts.c.first_at >= scope.since] if scope.since is not None else []),
        *([firsts.c.first_at < scope.until] if scope.until is not None else []),
    ]
    as_of_s = scope.as_of.timestamp()
    cols: list[ColumnElement[Any]] = [func.count().label("customers")]
    for n in windows_days:
        eligible = firsts.c.first_s <= as_of_s - n * 86400
        again = firsts.c.second_s - firsts.c.first_s <= n * 86400
        cols.append(func.count().filter(eligible).label(f"eligible{n}"))
        cols.append(func.count().filter(and_(eligible, again)).label(f"repeated{n}"))
    row = s.execute(select(*cols).where(*in_period)).mappings().one()
    return RepeatPurchase(
        int(row["customers"]),
        tuple(RepeatWindow(n, int(row[f"eligible{n}"]), int(row[f"repeated{n}"])) for n in windows_days),
    )


def churn(s: Session, scope: Scope, window_days: int = DEFAULT_CHURN_WINDOW_DAYS) -> Churn:
    """Of the customers with a purchase before ``as_of − window_days``, the share with none since, up to
    ``as_of``. The period's ``since`` does not apply: churn looks back from ``as_of``."""
    if window_days < 1:
        raise ValueError("the churn window must be at least one day")
    o = m.Order
    cutoff = scope.as_of - timedelta(days=window_days)
    per = (
        select(o.customer_id, func.min(o.placed_at).label("first_at"), func.max(o.placed_at).label("last_at"))
        .where(*_purchases(scope))
        .group_by(o.customer_id)
        .subquery("per_customer")
    )
    before = per.c.first_at < cutoff
    customers, churned = s.execute(
        select(func.count().filter(before), func.count().filter(and_(before, per.c.last_at < cutoff)))
    ).one()
    return Churn(window_days, scope.as_of, int(customers), int(churned))


# --- referrals and tickets ----------------------------------------------------------------------------------
def referral(s: Session, scope: Scope) -> Referral:
    """Codes issued in the period (``referral_codes.created_at``; a code is created the first time a
    message shows it, and tagged with that journey) → ``referral.clicked`` events of their owners (the
    referral page records one per visitor and hour) → orders placed with them (not canceled) → those
    orders' total. Clicks and orders are counted whenever they happened."""
    rc, ev, conv, o = m.ReferralCode, m.StoredEvent, m.ReferralConversion, m.Order
    q = select(rc.code, rc.customer_id).where(*_in_period(rc.created_at, scope))
    if scope.journey is not None:
        q = q.where(rc.journey_id == scope.journey)
    codes = q.subquery("codes")
    issued = s.scalar(select(func.count()).select_from(codes)) or 0
    clicks, clicked = s.execute(
        select(func.count(), func.count(ev.customer_id.distinct()))
        .select_from(codes)
        .join(ev, and_(ev.customer_id == codes.c.customer_id, ev.type == "referral.clicked"))
    ).one()
    orders, revenue = s.execute(
        select(func.count(), func.sum(o.total))
        .select_from(codes)
        .join(conv, conv.code == codes.c.code)
        .join(o, and_(o.id == conv.order_id, o.status != "canceled"))
    ).one()
    return Referral(int(issued), int(clicked), int(clicks), int(orders), money(revenue))


def complaints(s: Session, scope: Scope) -> Complaints:
    """Tickets opened in the period, by category: how many, how many are resolved, the median time from
    opening to resolution of the resolved ones."""
    prepare(s)
    t = m.SupportTicket
    secs = epoch_s(t.resolved_at) - epoch_s(t.opened_at)
    resolved = t.resolved_at.is_not(None)
    tickets = (
        select(
            t.category,
            t.status,
            case((resolved, secs)).label("secs"),
            case((resolved, log_bucket(secs))).label("bucket"),
        )
        .where(*_in_period(t.opened_at, scope))
        .subquery("tickets")
    )
    k = tickets.c
    totals: dict[str, list[int]] = {}
    histograms: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for cat, bucket, n, closed, still, total in s.execute(
        select(
            k.category,
            k.bucket,
            func.count(),
            func.count().filter(k.status == "resolved"),
            func.count().filter(k.status == "open"),
            func.sum(k.secs),
        ).group_by(k.category, k.bucket)
    ):
        sums = totals.setdefault(cat, [0, 0, 0])
        for i, value in enumerate((n, closed, still)):
            sums[i] += int(value)
        if bucket is not None:
            histograms[cat].append((int(bucket), int(n), float(total)))
    found = {}
    for cat, (n, closed, still) in totals.items():
        middle = median_of(histograms.get(cat, ()))
        found[cat] = TicketCounts(cat, n, closed, still, None if middle is None else round(middle, 1))
    by_category = tuple(found.get(cat) or TicketCounts(cat) for cat in m.TICKET_CATEGORIES)
    return Complaints(found.get("complaint") or TicketCounts("complaint"), by_category)
