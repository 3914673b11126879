"""One entry point for every output format: ``render(report, "table" | "json" | "csv" | "html" | "summary" |
"markdown", locale)``."""

from __future__ import annotations

from collections.abc import Callable

from infra.report.i18n import DEFAULT_LOCALE, check_locale
from infra.report.model import Report, ReportError
from infra.report.render_html import render_html
from infra.report.render_markdown import render_markdown, render_summary
from infra.report.render_text import render_csv, render_json, render_table

#: format → renderer(report, locale). JSON and CSV are the same in every locale (machine-readable keys).
FORMATS: dict[str, Callable[[Report, str], str]] = {
    "table": render_table,
    "json": lambda report, locale: render_json(report),
    "csv": lambda report, locale: render_csv(report),
    "html": lambda report, locale: render_html(report, locale),
    "summary": render_summary,
    "markdown": render_markdown,
}


def render(report: Report, fmt: str = "table", locale: str = DEFAULT_LOCALE) -> str:
    """The report as text in ``fmt``; ReportError for an unknown format or locale."""
    renderer = FORMATS.get(fmt)
    if renderer is None:
        raise ReportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderer(report, check_locale(locale))
