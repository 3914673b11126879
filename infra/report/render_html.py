"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no script, no link to
anything outside the file — it opens offline, from a mail attachment or a CI artifact.

The charts come from :mod:`infra.report.charts` (Altair + vl-convert; Graphviz for the journey diagrams,
shown as a table of counts when ``dot`` is not installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from infra.report import charts, fmt
from infra.report.i18n import check_locale, label
from infra.report.model import JourneyFunnel, Report

_ENV = Environment(
    loader=PackageLoader("infra.report", "templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class _JourneyView:
    funnel: JourneyFunnel
    funnel_svg: Markup | None
    diagram_svg: Markup | None


def _markup(svg: str | None) -> Markup | None:
    # SVG produced here from the report's own numbers and identifiers (vl-convert and Graphviz escape the
    # text they draw): safe to embed as markup.
    return None if svg is None else Markup(svg)


def render_html(report: Report, locale: str = "es", *, dot: str | None = None) -> str:
    """The page. ``dot``: the Graphviz executable (found on PATH when None; no diagrams without it)."""
    check_locale(locale)
    journeys = [
        _JourneyView(
            j,
            _markup(charts.funnel_chart(j, locale)),
            _markup(charts.diagram_svg(j, locale, dot=dot)),
        )
        for j in report.funnel
    ]
    context: dict[str, Any] = {
        "r": report,
        "locale": locale,
        "journeys": journeys,
        "nps_svg": _markup(charts.nps_chart(report.nps.by_week, locale)),
        "on_time_svg": _markup(charts.on_time_chart(report.on_time_delivery.by_week, locale)),
        "t": partial(label, locale=locale),
        "pct": lambda v: fmt.percent(v, locale),
        "num": lambda v, decimals=0: fmt.number(v, locale, decimals),
        "count": lambda v: fmt.count(v, locale),
        "money": lambda v: fmt.money(v, locale),
        "dur": lambda v: fmt.duration(v, locale),
        "pp": lambda v: fmt.signed_percent_points(v, locale),
        "step_columns": (
            "entered",
            "due",
            "sent",
            "deferred",
            "delivered",
            "bounced",
            "opened",
            "clicked",
            "unsubscribed",
            "spam_reports",
            "converted",
        ),
    }
    return _ENV.get_template("report.html").render(context)
