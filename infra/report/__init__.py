"""The results report: journey funnels and the post-sale KPIs as a table, JSON, CSV or one HTML page.

    build_report(session, journey=…, since=…, until=…, now=…, plans=…)  → Report   (assemble.py)
    render(report, "table" | "json" | "csv" | "html", locale)           → str      (render.py)
    parse_period("2026-03-01", "2026-04-01", tz)                        → (since, until)

The numbers come from ``infra.db.metrics`` (SQL, PostgreSQL and SQLite); ``model.py`` is the data and
its JSON form; ``render_text.py``, ``render_html.py`` and ``charts.py`` draw it; ``i18n.py`` holds the
Spanish and English labels. A request the report cannot answer raises ``model.ReportError``.

Import from the modules: this package imports nothing, because ``infra.db.metrics`` builds the model's
values and the assembly calls the metrics.
"""
