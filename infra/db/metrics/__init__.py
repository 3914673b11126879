"""Metrics for the results report, computed in SQL from the ledger, webhook events, orders and feedback.

``funnel`` holds the journey results (per-step funnel, totals, live positions, split arms), ``kpis`` the
post-sale KPIs (NPS, on-time delivery, repeat purchase, churn, referrals, complaint tickets), ``_sql`` the
few constructs that differ between PostgreSQL and SQLite. ``infra.report.assemble`` puts them together.
"""

from infra.db.metrics.funnel import (
    HOLDOUT,
    Scope,
    fold_step_funnel,
    journey_totals,
    known_journeys,
    latest_plans,
    positions,
    splits,
    step_funnel,
    step_funnel_queries,
)
from infra.db.metrics.kpis import (
    DEFAULT_CHURN_WINDOW_DAYS,
    REPEAT_WINDOWS_DAYS,
    churn,
    complaints,
    nps,
    on_time_delivery,
    referral,
    repeat_purchase,
)

__all__ = [
    "DEFAULT_CHURN_WINDOW_DAYS",
    "HOLDOUT",
    "REPEAT_WINDOWS_DAYS",
    "Scope",
    "churn",
    "complaints",
    "fold_step_funnel",
    "journey_totals",
    "known_journeys",
    "latest_plans",
    "nps",
    "on_time_delivery",
    "positions",
    "referral",
    "repeat_purchase",
    "splits",
    "step_funnel",
    "step_funnel_queries",
]
