"""Journey results: the per-step funnel, the journey totals, where live enrollments are, and splits.

The cohort is the enrollments that **entered** in the period (``since`` ≤ ``entered_at`` < ``until``), and
everything is what happened to them since, up to the time of the query: a funnel whose steps count
different customers would show conversion rates that are not rates.

Definitions (the JSON keys of ``infra.report.model.StepFunnel``):

* a step row is (journey, step, variant), built from the ledger — the one row per (enrollment, step,
  occurrence) reserved before every send and action, so only sends and actions have rows. ``variant`` is
  the split variant the *enrollment* was assigned (``state.variant``; None when it reached no split), the
  same grouping as the split comparison: the steps before the split are broken down by the arm the
  customer got later too, which shows whether the arms were alike before it;
* ``entered`` = ledger rows with ``occurrence = 0`` (the first time an enrollment reached the step: the
  engine numbers occurrences from the step's visit count), ``due`` = all its ledger rows, ``sent`` /
  ``skipped`` / ``failed`` = those rows by status (an action is ``sent`` once performed);
* ``delivered`` / ``bounced`` / ``dropped`` / ``opened`` / ``clicked`` / ``unsubscribed`` /
  ``spam_reports`` = ledger rows with at least one such SendGrid event in ``webhook_events``, matched by
  the ledger key SendGrid echoes back in ``custom_args`` (``posventa_key``): unique opens and clicks, not
  event counts. A ``blocked`` bounce (temporary) counts as a bounce: the message did not arrive. When the
  cohort's messages have no webhook event at all (no Event Webhook set up), ``delivered`` / ``opened`` /
  ``clicked`` are None — unknown, not zero;
* ``converted`` = enrollments that reached the step and have the status ``converted`` (the engine sets it
  when the journey's goal event arrives);
* **revenue attributed** to a converted enrollment = the total of the orders its customer placed from
  entering the journey up to converting (``entered_at`` ≤ ``placed_at`` ≤ ``ended_at``), except the order
  that started the enrollment and canceled orders. A step's revenue sums its converted enrollments'.
  Amounts are summed whatever their currency: one shop, one currency;
* ``median_time_to_step_s`` = median of (first ledger row of the step − ``entered_at``), in seconds, from a
  1%-wide log histogram (``_sql.median_of``: exact when the middle values are far enough apart to sit in
  buckets of their own, within 1% otherwise) — an exact ``percentile_cont`` sorts every ledger row;
* ``deferred`` = distinct messages of the step (enrollment, step, occurrence) that waited when due, from
  the ``deferrals`` table the advance writes (one row per message and reason, however many sweeps it
  waited: a message held for a week by an open complaint is one, not one per sweep); ``deferred_by`` = the
  same per reason (``quiet_hours``, ``frequency_cap``, ``complaint_hold``). A step whose messages are all
  still waiting has a row with ``entered`` 0 and its ``deferred``.

Speed (issue 13: 1,000,000 ledger rows and 100,000 enrollments, under 2 s on PostgreSQL; measured by
``benchmarks/bench_report.py``, which also seeds 1.7 M webhook events). Aggregated in SQL, today's schema:
one pass over the ledger joined to the cohort with ``FILTER`` counts (the medians' histogram in the same
pass), and one over the webhook events reduced to distinct (ledger key, kind) pairs and joined to the
cohort through the enrollment id at the front of the key — the million-row ledger is never probed per
event. ``_sql.hash_plans`` keeps PostgreSQL on hash aggregates (its estimates for JSON and computed keys
made it sort a million rows). This is not enough on the shared two-core machine: the whole report took
4.7 s, and 4.3 s with the two covering indexes the benchmark proposes (load average 4–5 during the run;
6.4 and 4.5 s at 5–9); the funnel is 3.5 s of it, and EXPLAIN ANALYZE puts 2.3 s of that in the webhook
query (a million distinct (key, kind) pairs to find) and 1.2 s in the ledger pass. The way under 2 s,
for the next step (both need a migration, so they are proposals here): (1) keep each message's first
delivered / opened / clicked / bounced / unsubscribed / spam-report instant on its ledger row, set by
``webhook_apply`` in the transaction that records the event — exact, one writer, and the webhook table
leaves the report; (2) the covering index
``ledger (enrollment_id, step_id, occurrence, status) INCLUDE (created_at, <those columns>)``, so the
funnel is one index-only scan (measured: the ledger pass alone is 0.6 s index-only, 1.3 s from the heap,
at load 2–3). A summary table kept by every writer was rejected: ledger statuses,
webhook events and conversions change a cohort's numbers for weeks, so every code path that touches them
would need to update it, and rows hit by many workers at once (one per journey and step) serialise them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from infra.db import models as m
from infra.db.metrics._sql import (
    epoch_s,
    hash_plans,
    log_bucket,
    median_of,
    prepare,
)
from infra.report.model import DEFERRAL_REASONS, StepFunnel, VariantResult

#: webhook_events.event → StepFunnel field (several SendGrid events may feed one field).
WEBHOOK_FIELDS: Mapping[str, tuple[str, ...]] = {
    "delivered": ("delivered",),
    "bounced": ("bounce",),
    "dropped": ("dropped",),
    "opened": ("open",),
    "clicked": ("click",),
    "unsubscribed": ("unsubscribe", "group_unsubscribe"),
    "spam_reports": ("spamreport",),
}
#: The funnel fields that are None when the cohort's messages have no webhook event at all.
PROVIDER_ONLY = ("delivered", "opened", "clicked")
HOLDOUT = "holdout"  # the variant name the engine gives the holdout (posventa.engine, stored)


@dataclass(frozen=True)
class Scope:
    """The report's filters. ``until`` exclusive; ``as_of`` is when windows that end "now" end."""

    journey: str | None
    since: datetime | None
    until: datetime | None
    as_of: datetime


def money(value: Decimal | float | None) -> float:
    return round(float(value or 0), 2)


def in_cohort(scope: Scope) -> list[ColumnElement[bool]]:
    """Conditions on ``enrollments``: entered in the period (and the journey, if one is asked for)."""
    e = m.Enrollment
    conds: list[ColumnElement[bool]] = []
    if scope.journey is not None:
        conds.append(e.journey_id == scope.journey)
    if scope.since is not None:
        conds.append(e.entered_at >= scope.since)
    if scope.until is not None:
        conds.append(e.entered_at < scope.until)
    return conds


def cohort(scope: Scope) -> Subquery:
    """The cohort's enrollments with their split variant."""
    e = m.Enrollment
    return (
        select(e.id, e.journey_id, e.customer_id, e.order_id, e.status, e.entered_at, e.ended_at)
        .add_columns(e.state["variant"].as_string().label("variant"))
        .where(*in_cohort(scope))
        .subquery("cohort")
    )


def _revenue(scope: Scope) -> Subquery:
    """Revenue attributed to each converted enrollment of the cohort (definition in the module doc)."""
    e, o = m.Enrollment, m.Order
    return (
        select(e.id, func.sum(o.total).label("revenue"))
        .join(o, o.customer_id == e.customer_id)
        .where(
            *in_cohort(scope),
            e.status == "converted",
            o.placed_at >= e.entered_at,
            o.placed_at <= e.ended_at,
            or_(e.order_id.is_(None), o.id != e.order_id),
            o.status != "canceled",
        )
        .group_by(e.id)
        .subquery("revenue")
    )


_COUNTS = ("entered", "due", "sent", "skipped", "failed", "converted")


def step_funnel(
    s: Session, scope: Scope, by_variant: Mapping[str, frozenset[str]] | None = None
) -> list[StepFunnel]:
    """The funnel rows of every (journey, step, variant) the cohort reached, unordered.

    ``by_variant``: journey → the steps that get one row per split variant (those reachable from a split);
    the other steps of a journey named there get one row with variant None. Journeys not named keep every
    step broken down by variant (no plan to tell).

    One aggregate: the ledger joined to the cohort, grouped by (journey, step, variant, bucket of the
    time to reach the step) so the medians come out of the same pass (``_sql.median_of``); what SendGrid's
    Event Webhook said of each message (delivered, opened, clicked …) is the row's ``evidence`` bit set,
    kept by the webhook path (revision 0009), so the million-row ledger is read once and the webhook
    events not at all.
    """
    prepare(s)
    e, ledger = m.Enrollment, m.LedgerEntry
    rev = _revenue(scope)
    first = ledger.occurrence == 0
    secs = epoch_s(ledger.created_at) - epoch_s(e.entered_at)
    rows = (
        select(
            e.journey_id,
            ledger.step_id,
            e.state["variant"].as_string().label("variant"),
            ledger.status,
            first.label("first"),
            (e.status == "converted").label("converted"),
            rev.c.revenue,
            case((first, secs)).label("secs"),
            case((first, log_bucket(secs))).label("bucket"),
            ledger.evidence,
        )
        .select_from(ledger)
        .join(e, e.id == ledger.enrollment_id)
        .outerjoin(rev, rev.c.id == e.id)
        .where(*in_cohort(scope))
        .subquery("rows")
    )
    r = rows.c
    keys = [r.journey_id, r.step_id, r.variant, r.bucket]
    agg = select(
        *keys,
        func.count().filter(r.first).label("entered"),
        func.count().label("due"),
        func.count().filter(r.status == "sent").label("sent"),
        func.count().filter(r.status == "skipped").label("skipped"),
        func.count().filter(r.status == "failed").label("failed"),
        func.count().filter(and_(r.first, r.converted)).label("converted"),
        func.sum(r.revenue).filter(r.first).label("revenue"),
        func.sum(r.secs).label("secs"),
        *(
            func.count().filter(r.evidence.op("&")(_bits(events)) != 0).label(name)
            for name, events in WEBHOOK_FIELDS.items()
        ),
    ).group_by(*keys)
    counts: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    histograms: dict[tuple[str, str, str | None], list[tuple[int, int, float]]] = defaultdict(list)
    with hash_plans(s):
        found_rows = s.execute(agg).mappings().all()
    deferred, deferred_by = _deferral_counts(s, scope)

    def blank() -> dict[str, Any]:
        return {name: 0 for name in (*_COUNTS, *WEBHOOK_FIELDS)} | {"revenue": 0.0}

    def fold(key: tuple[str, str, str | None]) -> tuple[str, str, str | None]:
        j, st, _ = key
        if by_variant is not None and j in by_variant and st not in by_variant[j]:
            return (j, st, None)
        return key

    deferred_folded: dict[tuple[str, str, str | None], int] = defaultdict(int)
    deferred_by_folded: dict[tuple[str, str, str | None], dict[str, int]] = defaultdict(dict)
    for key, n in deferred.items():
        deferred_folded[fold(key)] += n
    for key, reasons in deferred_by.items():
        into = deferred_by_folded[fold(key)]
        for reason, n in reasons.items():
            into[reason] = into.get(reason, 0) + n
    deferred, deferred_by = dict(deferred_folded), dict(deferred_by_folded)

    evidence = 0
    for row in found_rows:
        key = fold((row["journey_id"], row["step_id"], row["variant"]))
        found = counts.setdefault(key, blank())
        for name in (*_COUNTS, *WEBHOOK_FIELDS):
            found[name] += int(row[name])
        evidence += sum(int(row[name]) for name in WEBHOOK_FIELDS)
        found["revenue"] += float(row["revenue"] or 0)
        if row["bucket"] is not None:
            histograms[key].append((int(row["bucket"]), int(row["entered"]), float(row["secs"])))
    for key in deferred:
        counts.setdefault(key, blank())  # messages still waiting: the step has no ledger row yet
    if not evidence:  # no provider data: unknown, not zero (StepFunnel's doc)
        for found in counts.values():
            found.update(dict.fromkeys(PROVIDER_ONLY))
    out = []
    for key, found in counts.items():
        middle = median_of(histograms.get(key, ()))
        out.append(
            StepFunnel(
                *key,
                **{k: v for k, v in found.items() if k != "revenue"},
                revenue=money(found["revenue"]),
                median_time_to_step_s=None if middle is None else round(middle, 1),
                deferred=deferred.get(key, 0),
                deferred_by=dict.fromkeys(DEFERRAL_REASONS, 0) | deferred_by.get(key, {}),
            )
        )
    return out


def _deferral_counts(
    s: Session, scope: Scope
) -> tuple[dict[tuple[str, str, str | None], int], dict[tuple[str, str, str | None], dict[str, int]]]:
    """The cohort's deferred messages per (journey, step, variant): distinct messages, and per reason."""
    e, d = m.Enrollment, m.Deferral
    rows = (
        select(
            e.journey_id,
            d.step_id,
            e.state["variant"].as_string().label("variant"),
            d.enrollment_id,
            d.occurrence,
            d.reason,
        )
        .join(e, e.id == d.enrollment_id)
        .where(*in_cohort(scope))
        .subquery("deferred")
    )
    r = rows.c
    keys = (r.journey_id, r.step_id, r.variant)
    by: dict[tuple[str, str, str | None], dict[str, int]] = defaultdict(dict)
    for j, st, v, reason, n in s.execute(select(*keys, r.reason, func.count()).group_by(*keys, r.reason)):
        by[(j, st, v)][reason] = int(n)
    messages = select(*keys, r.enrollment_id, r.occurrence).distinct().subquery("messages")
    mc = messages.c
    mkeys = (mc.journey_id, mc.step_id, mc.variant)
    total = {(j, st, v): int(n) for j, st, v, n in s.execute(select(*mkeys, func.count()).group_by(*mkeys))}
    return total, dict(by)


def _bits(events: tuple[str, ...]) -> int:
    """The ``ledger.evidence`` bits of a funnel field's webhook events (``EVIDENCE_BITS``)."""
    out = 0
    for event in events:
        out |= m.EVIDENCE_BITS[event]
    return out


@dataclass(frozen=True)
class JourneyTotals:
    journey_id: str
    statuses: dict[str, int]
    revenue: float

    @property
    def entered(self) -> int:
        return sum(self.statuses.values())

    @property
    def converted(self) -> int:
        return self.statuses.get("converted", 0)


def journey_totals(s: Session, scope: Scope) -> dict[str, JourneyTotals]:
    """Per journey: the cohort's enrollments by status now, and the revenue attributed to it."""
    c = cohort(scope)
    rev = _revenue(scope)
    statuses: dict[str, dict[str, int]] = {}
    for journey, status, n in s.execute(
        select(c.c.journey_id, c.c.status, func.count()).group_by(c.c.journey_id, c.c.status)
    ):
        statuses.setdefault(journey, {})[status] = int(n)
    revenue = dict(
        s.execute(
            select(c.c.journey_id, func.sum(rev.c.revenue))
            .select_from(c.join(rev, rev.c.id == c.c.id))
            .group_by(c.c.journey_id)
        ).all()
    )
    return {
        j: JourneyTotals(j, dict(sorted(st.items())), money(revenue.get(j))) for j, st in statuses.items()
    }


def positions(s: Session, scope: Scope) -> dict[tuple[str, str], int]:
    """(journey, step) → live enrollments of the cohort at that step now (waiting, held or due)."""
    e = m.Enrollment
    at = (
        select(e.journey_id, e.state["step"].as_string().label("step"))
        .where(*in_cohort(scope), e.status.in_(m.LIVE_ENROLLMENT_STATUSES))
        .subquery("at")
    )
    q = select(at.c.journey_id, at.c.step, func.count()).where(at.c.step.is_not(None))
    return {(j, st): int(n) for j, st, n in s.execute(q.group_by(at.c.journey_id, at.c.step))}


def splits(s: Session, scope: Scope) -> dict[str, dict[str, VariantResult]]:
    """journey → variant → its arm: enrolled, converted, revenue (differences are filled in later).

    Converted here means "the customer placed another order (not the one that started the enrollment,
    not canceled) after entering the journey and before ``as_of``", not the enrollment status, because the
    holdout cannot have that status: the engine ends a holdout enrollment (``exited``) at the split, so
    its goal is never checked again, and a variant that ends right after its offer (the shipped warranty
    journey) is no different. For the shipped journeys with a split this *is* the goal (a new order).
    An enrollment gets its variant at the split, and an order before the split would have converted it
    there and then, so "after entering" is "after the split" for every enrollment that has a variant.
    ``revenue`` is the total of those orders.
    """
    c = cohort(scope)
    o = m.Order
    after = (
        select(
            c.c.id,
            c.c.journey_id,
            c.c.variant,
            func.count(o.id).label("orders"),
            func.sum(o.total).label("revenue"),
        )
        .select_from(
            c.outerjoin(
                o,
                and_(
                    o.customer_id == c.c.customer_id,
                    o.placed_at >= c.c.entered_at,
                    o.placed_at < scope.as_of,
                    or_(c.c.order_id.is_(None), o.id != c.c.order_id),
                    o.status != "canceled",
                ),
            )
        )
        .where(c.c.variant.is_not(None))
        .group_by(c.c.id, c.c.journey_id, c.c.variant)
        .subquery("after")
    )
    q = select(
        after.c.journey_id,
        after.c.variant,
        func.count().label("enrolled"),
        func.count().filter(after.c.orders > 0).label("converted"),
        func.sum(after.c.revenue).label("revenue"),
    ).group_by(after.c.journey_id, after.c.variant)
    out: dict[str, dict[str, VariantResult]] = {}
    for row in s.execute(q).mappings():
        out.setdefault(row["journey_id"], {})[row["variant"]] = VariantResult(
            row["variant"], int(row["enrolled"]), int(row["converted"]), money(row["revenue"])
        )
    return out


def latest_plans(s: Session, journey: str | None = None) -> dict[str, dict[str, Any]]:
    """journey → its most recently stored compiled plan (JSON), for step order, types and names."""
    p = m.StoredPlan
    q = select(p.journey_id, p.plan).order_by(p.journey_id, p.created_at, p.version)
    if journey is not None:
        q = q.where(p.journey_id == journey)
    return {j: dict(plan) for j, plan in s.execute(q)}


def known_journeys(s: Session) -> set[str]:
    """Journeys the database knows of (a stored plan or an enrollment)."""
    e, p = m.Enrollment, m.StoredPlan
    q = select(p.journey_id).union(select(e.journey_id))
    return set(s.scalars(q))
