"""The report in short: the KPI summary as lines of text (the demo's last words, ``posventa report
--format summary``) and as Markdown with the funnel per journey (the nightly run's Prefect artifact).

Labels in the locale, numbers the local way (``infra.report.fmt``), like the table; the JSON and CSV stay
the machine-readable forms.
"""

from __future__ import annotations

from infra.report import fmt
from infra.report.i18n import check_locale, label
from infra.report.model import Report

#: The funnel columns of the Markdown tables.
MARKDOWN_STEP_COLUMNS = ("entered", "sent", "deferred", "delivered", "opened", "clicked", "converted")


def kpi_lines(report: Report, locale: str = "es") -> list[tuple[str, str]]:
    """(label, text) per KPI: messages, NPS, on-time delivery, repeat purchase, churn, referrals, journeys."""
    check_locale(locale)
    steps = [st for j in report.funnel for st in j.steps if st.type != "action"]
    sent = sum(st.sent for st in steps)
    delivered = sum(st.delivered or 0 for st in steps)
    opened = sum(st.opened or 0 for st in steps)
    clicked = sum(st.clicked or 0 for st in steps)
    n = lambda v: fmt.number(v, locale)  # noqa: E731
    pct = lambda part, whole: fmt.percent(part / whole if whole else None, locale)  # noqa: E731
    messages = label(
        "messages_summary",
        locale,
        sent=n(sent),
        delivered=n(delivered),
        delivery=pct(delivered, sent),
        opened=n(opened),
        open=pct(opened, delivered),
        clicked=n(clicked),
        click=pct(clicked, delivered),
        deferred=n(report.deferred),
    )
    if any(st.delivered is None for st in steps):
        messages = label(
            "messages_summary_no_webhook",
            locale,
            sent=n(sent),
            na=label("no_webhook", locale),
            deferred=n(report.deferred),
        )
    o = report.nps.overall
    nps = label(
        "nps_summary",
        locale,
        nps=fmt.number(o.nps, locale, 1),
        responses=n(o.responses),
        promoters=n(o.promoters),
        passives=n(o.passives),
        detractors=n(o.detractors),
    )
    d = report.on_time_delivery.overall
    on_time = label(
        "on_time_short",
        locale,
        rate=fmt.percent(d.on_time_rate, locale),
        on_time=n(d.on_time),
        delivered=n(d.delivered),
        average=fmt.number(d.average_days_late, locale, 1),
    )
    repeat = " · ".join(
        f"{w.days} d: {fmt.percent(w.rate, locale)} ({n(w.repeated)}/{n(w.eligible)})"
        for w in report.repeat_purchase.windows
    )
    c = report.churn
    churn = label(
        "churn_summary",
        locale,
        rate=fmt.percent(c.rate, locale),
        churned=n(c.churned),
        customers=n(c.customers),
        days=c.window_days,
    )
    r = report.referral
    referral = label(
        "referral_summary",
        locale,
        codes=n(r.codes_sent),
        clicked=n(r.referrers_clicked),
        clicks=n(r.clicks),
        orders=n(r.orders),
        revenue=fmt.money(r.revenue, locale),
    )
    journeys = sum(j.entered for j in report.funnel)
    converted = sum(j.converted for j in report.funnel)
    revenue = sum(j.revenue for j in report.funnel)
    enrolled = label(
        "journey_summary",
        locale,
        entered=n(journeys),
        converted=n(converted),
        rate=pct(converted, journeys),
        revenue=fmt.money(revenue, locale),
    )
    return [
        (label("messages", locale), messages),
        (label("nps", locale), nps),
        (label("on_time_delivery", locale), on_time),
        (label("repeat_purchase", locale), repeat),
        (label("churn", locale), churn),
        (label("referral", locale), referral),
        (label("journeys", locale), enrolled),
    ]


def render_summary(report: Report, locale: str = "es") -> str:
    """The KPI summary for a terminal: a title line, then ``label: text`` per KPI."""
    lines = kpi_lines(report, locale)
    width = max(len(name) for name, _ in lines)
    return (
        "\n".join([label("kpi_summary", locale), *(f"  {name:<{width}}  {text}" for name, text in lines)])
        + "\n"
    )


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, locale: str = "es") -> str:
    """The KPI summary and the funnel per journey step, in Markdown (a Prefect artifact)."""
    check_locale(locale)
    p = report.period
    since = f"{p.since:%Y-%m-%d %H:%M} UTC" if p.since else label("since_start", locale)
    until = f"{p.until:%Y-%m-%d %H:%M} UTC" if p.until else label("until_now", locale)
    out = [
        f"# {label('title', locale)}",
        "",
        f"{label('period', locale)}: {since} → {until} · {label('journey', locale)}: "
        f"{report.journey or label('all_journeys', locale)}",
        "",
        f"## {label('kpi_summary', locale)}",
        "",
        *(f"- **{_cell(name)}**: {_cell(text)}" for name, text in kpi_lines(report, locale)),
        "",
        f"## {label('funnel', locale)}",
    ]
    head = [
        label("step_id", locale),
        label("variant", locale),
        *(label(c, locale) for c in MARKDOWN_STEP_COLUMNS),
    ]
    head.append(label("revenue", locale))
    for j in report.funnel:
        title = j.journey_id + (f" ({j.name})" if j.name else "")
        out += ["", f"### {_cell(title)}", ""]
        if not j.steps:
            out.append(label("no_data", locale))
            continue
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
        for st in j.steps:
            cells = [st.step_id, st.variant or "—"]
            cells += [fmt.count(getattr(st, c), locale) for c in MARKDOWN_STEP_COLUMNS]
            cells.append(fmt.money(st.revenue, locale))
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"
