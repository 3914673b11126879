"""The results report as a Prefect artifact: the nightly run publishes the KPI summary and the funnel per
journey step as Markdown (key ``results-report``), so whoever looks at the nightly run in the UI sees
whether the journeys work, not only that they ran.

The cohort is the enrollments that entered in the last ``days`` days (30 by default), the KPIs those of
the same period (``infra.report.assemble.build_report``); labels follow ``POSVENTA_LANG`` (or the
locale), like the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect.artifacts import create_markdown_artifact

from infra.db.store import SqlTx
from infra.report.assemble import build_report
from infra.report.render_markdown import render_markdown
from posventa.i18n import language
from tasks.steps import durable, services

ARTIFACT_KEY = "results-report"
DEFAULT_DAYS = 30


@durable("results-report", "results report (last {days} days)")
def publish_report(now: datetime, days: int = DEFAULT_DAYS, journey: str | None = None) -> dict[str, Any]:
    """Build the report of the last ``days`` days up to ``now`` and publish it; returns its headline
    numbers (what the artifact says, for the caller and the tests)."""
    svc = services()
    with svc.store.read() as tx:
        if not isinstance(tx, SqlTx):  # the report is SQL: it needs the SQL store's session
            raise TypeError(f"the results report needs the SQL store, not {type(tx).__name__}")
        report = build_report(
            tx.session,
            journey=journey,
            since=now - timedelta(days=days),
            until=now,
            now=now,
            parallel=True,
        )
    markdown = render_markdown(report, language())
    create_markdown_artifact(
        markdown,
        key=ARTIFACT_KEY,
        description=f"KPI summary and funnel of the enrollments of the last {days} days",
    )
    steps = [st for j in report.funnel for st in j.steps]
    return {
        "entered": sum(j.entered for j in report.funnel),
        "sent": sum(st.sent for st in steps),
        "delivered": sum(st.delivered or 0 for st in steps),
        "deferred": report.deferred,
        "nps": report.nps.overall.nps,
    }
