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
``benchmarks/bench_report.py``). Aggregated in SQL: one pass over the ledger joined to the cohort with
``FILTER`` counts, the medians' histogram in the same pass, what SendGrid said of each message read from
the row's ``evidence`` bits (revision 0009) instead of 1.8 million webhook events, and an index-only scan:
the unique (enrollment, step, occurrence) index carries ``status``, ``created_at`` and ``evidence``
(revision 0010). The cohort is narrowed to the columns the pass needs before the join, and the revenue
of converted enrollments is summed apart (a few thousand enrollments looked up by index) rather than
joined to every ledger row. ``_sql.hash_plans`` keeps PostgreSQL on hash aggregates (its estimates for
JSON and computed keys made it sort a million rows). Measured: the pass 2.1 s → 1.1–1.3 s; the whole
report runs its queries on two connections at once (``infra.db.metrics.snapshot``). A summary table
kept by every writer was rejected: ledger statuses, webhook events and conversions change a cohort's
numbers for weeks, so every code path that touches them would need to update it, and rows hit by many
workers at once (one per journey and step) serialise them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
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
Key = tuple[str, str, str | None]  # (journey, step, variant)


def step_funnel(
    s: Session, scope: Scope, by_variant: Mapping[str, frozenset[str]] | None = None
) -> list[StepFunnel]:
    """The funnel rows of every (journey, step, variant) the cohort reached, unordered.

    ``by_variant``: journey → the steps that get one row per split variant (those reachable from a split);
    the other steps of a journey named there get one row with variant None. Journeys not named keep every
    step broken down by variant (no plan to tell).

    The queries are :func:`step_funnel_queries` (independent of each other: the report runs them on
    several connections at once), put together by :func:`fold_step_funnel`; here, one after the other on
    ``s``.
    """
    return fold_step_funnel({name: q(s) for name, q in step_funnel_queries(scope).items()}, by_variant)


def step_funnel_queries(scope: Scope, parts: int = 1) -> dict[str, Callable[[Session], Any]]:
    """The funnel's queries by name, each a function of a session, for :func:`fold_step_funnel`.

    The ledger pass (``pass:K``) is cut into ``parts`` by enrollment id (``id % parts``), so that pieces of
    the one big aggregate can run at the same time on separate connections; every other query is small.
    """
    queries: dict[str, Callable[[Session], Any]] = {
        f"pass:{k}": partial(_ledger_pass, scope=scope, part=(k, parts) if parts > 1 else None)
        for k in range(parts)
    }
    queries["revenue"] = partial(_revenue_by_step, scope=scope)
    queries["deferred"] = partial(_deferral_counts, scope=scope)
    return queries


def _narrow_cohort(scope: Scope, part: tuple[int, int] | None = None) -> Subquery:
    """The cohort as the few columns the funnel needs, computed before a join: a hash table of 100,000
    narrow rows, not of each enrollment's JSON state (measured: a third of the ledger pass)."""
    e = m.Enrollment
    conds = in_cohort(scope)
    if part is not None:
        conds.append(e.id % part[1] == part[0])
    return (
        select(
            e.id,
            e.journey_id,
            e.state["variant"].as_string().label("variant"),
            (e.status == "converted").label("converted"),
            epoch_s(e.entered_at).label("entered_s"),
        )
        .where(*conds)
        .subquery("c")
    )


def _ledger_pass(s: Session, scope: Scope, part: tuple[int, int] | None) -> list[dict[str, Any]]:
    """One aggregate: the ledger joined to the cohort, grouped by (journey, step, variant, bucket of the
    time to reach the step) so the medians come out of the same pass (``_sql.median_of``); what SendGrid's
    Event Webhook said of each message (delivered, opened, clicked …) is the row's ``evidence`` bit set,
    kept by the webhook path (revision 0009), so the million-row ledger is read once and the webhook
    events not at all. ``part`` (k, n): only enrollments whose id is k modulo n."""
    prepare(s)
    ledger = m.LedgerEntry
    c = _narrow_cohort(scope, part)
    first = ledger.occurrence == 0
    secs = epoch_s(ledger.created_at) - c.c.entered_s
    bucket = case((first, log_bucket(secs)))
    keys = [c.c.journey_id, ledger.step_id, c.c.variant, bucket.label("bucket")]
    agg = (
        select(
            *keys,
            func.count().filter(first).label("entered"),
            func.count().label("due"),
            func.count().filter(ledger.status == "sent").label("sent"),
            func.count().filter(ledger.status == "skipped").label("skipped"),
            func.count().filter(ledger.status == "failed").label("failed"),
            func.count().filter(and_(first, c.c.converted)).label("converted"),
            func.sum(case((first, secs))).label("secs"),
            *(
                func.count().filter(ledger.evidence.op("&")(_bits(events)) != 0).label(name)
                for name, events in WEBHOOK_FIELDS.items()
            ),
        )
        .select_from(ledger)
        .join(c, c.c.id == ledger.enrollment_id)
        .group_by(*keys)
    )
    if part is not None:
        agg = agg.where(ledger.enrollment_id % part[1] == part[0])
    with hash_plans(s):
        return [dict(row) for row in s.execute(agg).mappings()]


def fold_step_funnel(
    found: Mapping[str, Any], by_variant: Mapping[str, frozenset[str]] | None = None
) -> list[StepFunnel]:
    """The funnel rows from the results of :func:`step_funnel_queries` (by the same names)."""
    revenue: dict[Key, float] = found["revenue"]
    deferred, deferred_by = found["deferred"]
    counts: dict[Key, dict[str, Any]] = {}
    # key → bucket → [values, their sum]: a bucket's rows from several parts of the pass are one bucket
    histograms: dict[Key, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))

    def blank() -> dict[str, Any]:
        return {name: 0 for name in (*_COUNTS, *WEBHOOK_FIELDS)} | {"revenue": 0.0}

    def fold(key: Key) -> Key:
        j, st, _ = key
        if by_variant is not None and j in by_variant and st not in by_variant[j]:
            return (j, st, None)
        return key

    deferred_folded: dict[Key, int] = defaultdict(int)
    deferred_by_folded: dict[Key, dict[str, int]] = defaultdict(dict)
    for key, n in deferred.items():
        deferred_folded[fold(key)] += n
    for key, reasons in deferred_by.items():
        per_reason = deferred_by_folded[fold(key)]
        for reason, n in reasons.items():
            per_reason[reason] = per_reason.get(reason, 0) + n
    deferred, deferred_by = dict(deferred_folded), dict(deferred_by_folded)

    evidence = 0
    rows = (row for name in sorted(found) if name.startswith("pass:") for row in found[name])
    for row in rows:
        key = fold((row["journey_id"], row["step_id"], row["variant"]))
        into = counts.setdefault(key, blank())
        for name in (*_COUNTS, *WEBHOOK_FIELDS):
            into[name] += int(row[name])
        evidence += sum(int(row[name]) for name in WEBHOOK_FIELDS)
        if row["bucket"] is not None:
            bucket = histograms[key][int(row["bucket"])]
            bucket[0] += int(row["entered"])
            bucket[1] += float(row["secs"])
    for key, amount in revenue.items():
        counts.setdefault(fold(key), blank())["revenue"] += amount
    for key in deferred:
        counts.setdefault(key, blank())  # messages still waiting: the step has no ledger row yet
    if not evidence:  # no provider data: unknown, not zero (StepFunnel's doc)
        for into in counts.values():
            into.update(dict.fromkeys(PROVIDER_ONLY))
    out = []
    for key, into in counts.items():
        middle = median_of((b, int(n), total) for b, (n, total) in histograms.get(key, {}).items())
        out.append(
            StepFunnel(
                *key,
                **{k: v for k, v in into.items() if k != "revenue"},
                revenue=money(into["revenue"]),
                median_time_to_step_s=None if middle is None else round(middle, 1),
                deferred=deferred.get(key, 0),
                deferred_by=dict.fromkeys(DEFERRAL_REASONS, 0) | deferred_by.get(key, {}),
            )
        )
    return out


def _revenue_by_step(s: Session, scope: Scope) -> dict[Key, float]:
    """The revenue attributed to the converted enrollments that reached each (journey, step, variant):
    a few thousand enrollments, looked up in the ledger by enrollment (its unique index), apart from the
    ledger pass so that pass does not join every ledger row to them."""
    e, ledger = m.Enrollment, m.LedgerEntry
    rev = _revenue(scope)
    variant = e.state["variant"].as_string()
    keys = (e.journey_id, ledger.step_id, variant)
    q = (
        select(*keys, func.sum(rev.c.revenue))
        .select_from(rev)
        .join(e, e.id == rev.c.id)
        .join(ledger, and_(ledger.enrollment_id == rev.c.id, ledger.occurrence == 0))
        .group_by(*keys)
    )
    return {(j, st, v): float(total or 0) for j, st, v, total in s.execute(q)}


def _deferral_counts(s: Session, scope: Scope) -> tuple[dict[Key, int], dict[Key, dict[str, int]]]:
    """The cohort's deferred messages per (journey, step, variant): distinct messages, and per reason.

    One pass: the deferrals (one row per message and reason) grouped by message with a 0/1 per reason,
    then by step: a message held for two reasons counts once in the total and once under each reason."""
    prepare(s)
    d = m.Deferral
    c = _narrow_cohort(scope)
    per_message = (
        select(
            c.c.journey_id,
            d.step_id,
            c.c.variant,
            *(func.count().filter(d.reason == reason).label(reason) for reason in DEFERRAL_REASONS),
        )
        .select_from(d)
        .join(c, c.c.id == d.enrollment_id)
        .group_by(c.c.journey_id, d.step_id, c.c.variant, d.enrollment_id, d.occurrence)
        .subquery("messages")
    )
    mc = per_message.c
    keys = (mc.journey_id, mc.step_id, mc.variant)
    q = select(*keys, func.count(), *(func.sum(mc[reason]) for reason in DEFERRAL_REASONS)).group_by(*keys)
    total: dict[Key, int] = {}
    by: dict[Key, dict[str, int]] = {}
    with hash_plans(s):
        for j, st, v, n, *per_reason in s.execute(q):
            total[(j, st, v)] = int(n)
            by[(j, st, v)] = {r: int(x) for r, x in zip(DEFERRAL_REASONS, per_reason, strict=True) if x}
    return total, by


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
