"""What the /admin pages show, read from the database (run in the thread pool): the journeys with their
live counts, a journey's funnel and diagram, the report, a customer. The numbers come from
``infra.db.metrics`` and ``infra.report`` — the same queries as the report — never recomputed here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.records import TimelineEntry
from app.reports import customer_report, customer_timeline
from app.services import Services
from infra.db import metrics
from infra.db.metrics import Scope
from infra.report import charts
from infra.report.assemble import build_report
from infra.report.model import JourneyFunnel
from infra.report.render import render

LIVE = ("active", "waiting", "held")


@contextmanager
def read_session(services: Services) -> Iterator[Session]:
    """A read-only SQLAlchemy session of the services' store (the report's queries take one)."""
    with services.store.read() as tx:
        session = getattr(tx, "session", None)
        if not isinstance(session, Session):
            raise TypeError("the admin pages need the SQL store")
        yield session


@dataclass(frozen=True)
class JourneyRow:
    journey_id: str
    name: str | None
    state: str | None  # None: never published
    live_version: str | None
    statuses: dict[str, int]
    revenue: float

    @property
    def entered(self) -> int:
        return sum(self.statuses.values())

    @property
    def live(self) -> int:
        return sum(self.statuses.get(s, 0) for s in LIVE)

    @property
    def converted(self) -> int:
        return self.statuses.get("converted", 0)


def journeys(services: Services, now: datetime) -> list[JourneyRow]:
    """Every journey the database knows (published, stored or with enrollments), with its enrollments by
    status right now since the start."""
    with services.store.read() as tx:
        controls = {c.journey_id: c for c in tx.journeys.controls()}
    with read_session(services) as s:
        totals = metrics.journey_totals(s, Scope(None, None, None, now))
        plans = metrics.latest_plans(s)
        known = metrics.known_journeys(s)
    rows = []
    for j in sorted(known | set(controls) | set(totals)):
        control, total = controls.get(j), totals.get(j)
        name = plans.get(j, {}).get("name")
        rows.append(
            JourneyRow(
                journey_id=j,
                name=name if isinstance(name, str) else None,
                state=control.state if control else None,
                live_version=control.live_version if control else None,
                statuses=dict(total.statuses) if total else {},
                revenue=total.revenue if total else 0.0,
            )
        )
    return rows


def journey_ids(services: Services) -> list[str]:
    """The journeys a report can be filtered by."""
    with services.store.read() as tx:
        controlled = {c.journey_id for c in tx.journeys.controls()}
    with read_session(services) as s:
        return sorted(controlled | metrics.known_journeys(s))


@dataclass(frozen=True)
class JourneyView:
    funnel: JourneyFunnel
    diagram_svg: Markup | None
    funnel_svg: Markup | None


def _markup(svg: str | None) -> Markup | None:
    # SVG drawn by infra.report.charts from the report's own numbers and ids (Graphviz and vl-convert
    # escape the text they draw), as the HTML report embeds it
    return None if svg is None else Markup(svg)


def journey_view(
    services: Services,
    journey_id: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    lang: str,
) -> JourneyView:
    """A journey's funnel with its diagram (counts on each step) and funnel chart; ReportError when no
    such journey is known."""
    with read_session(services) as s:
        report = build_report(s, journey=journey_id, since=since, until=until, now=now, parallel=True)
    funnel = next((j for j in report.funnel if j.journey_id == journey_id), None)
    if funnel is None:
        funnel = JourneyFunnel(journey_id, None)
    return JourneyView(
        funnel, _markup(charts.diagram_svg(funnel, lang)), _markup(charts.funnel_chart(funnel, lang))
    )


def report_html(
    services: Services,
    journey: str | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    lang: str,
) -> str:
    """The results report as the self-contained HTML page of ``posventa report --format html``."""
    with read_session(services) as s:
        report = build_report(s, journey=journey, since=since, until=until, now=now, parallel=True)
    return render(report, "html", lang)


@dataclass(frozen=True)
class CustomerView:
    customer: dict[str, Any]
    timeline: list[TimelineEntry]
    limit: int


def customer_view(services: Services, customer_id: str, limit: int = 500) -> CustomerView | None:
    """A customer's facts, suppressions and journeys (``app.reports.customer_report``) and timeline."""
    found = customer_report(services.store, customer_id)
    if found is None:
        return None
    return CustomerView(found, customer_timeline(services.store, customer_id, limit), limit)
