"""The report as text: JSON (every key, raw numbers), CSV (one number per row) and a table for a terminal.

JSON and CSV are for machines: their keys are the model's field names in English whatever the locale.
The table is for people: labels in the locale, rates as percentages, durations in their largest unit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from infra.report import fmt
from infra.report.i18n import check_locale, label
from infra.report.model import NpsCounts, Report, StepFunnel, to_plain

CSV_COLUMNS = ("section", "journey_id", "step_id", "variant", "group", "metric", "value")
#: The funnel columns the table shows (the JSON and CSV have every field).
TABLE_STEP_COLUMNS = (
    "entered",
    "sent",
    "deferred",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "unsubscribed",
    "spam_reports",
    "converted",
    "revenue",
    "median_time_to_step_s",
)


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"


# --- CSV --------------------------------------------------------------------------------------------------
#: Fields that name a row rather than measure it (they are the CSV's other columns).
_NAMES = frozenset({"journey_id", "step_id", "variant", "type", "key", "label", "category", "name"})


def _numbers(obj: Any, skip: Iterable[str] = ()) -> Iterator[tuple[str, Any]]:
    """(name, value) of an object's numeric fields and derived values (None when unknown), in JSON order."""
    skipped = _NAMES | set(skip)
    for name, value in to_plain(obj).items():
        if name not in skipped and (value is None or isinstance(value, int | float)):
            yield name, value


def csv_rows(report: Report) -> Iterator[tuple[Any, ...]]:
    """Long format: every number of the report on its own row, named by section, journey, step, variant,
    group (a week, SKU, locale, window or category) and metric — it pivots in any spreadsheet. The NPS
    comments are text, not numbers: they are in the JSON, the table and the HTML page."""

    def rows(
        section: str,
        obj: Any,
        journey: str = "",
        step: str = "",
        variant: str = "",
        group: Any = "",
        skip: Iterable[str] = (),
    ) -> Iterator[tuple[Any, ...]]:
        for metric, value in _numbers(obj, skip):
            yield (section, journey, step, variant, group, metric, "" if value is None else value)

    for j in report.funnel:
        yield from rows("journey", j, j.journey_id)
        for status, n in j.statuses.items():
            yield ("journey", j.journey_id, "", "", "", f"status_{status}", n)
        for st in j.steps:
            yield from rows("step", st, j.journey_id, st.step_id, st.variant or "")
    for sp in report.splits:
        for arm in (*([sp.holdout] if sp.holdout else []), *sp.variants):
            yield from rows("split", arm, sp.journey_id, sp.step_id or "", arm.variant)
    nps = report.nps
    yield from rows("nps", nps.overall)
    for section, groups in (
        ("nps_by_week", nps.by_week),
        ("nps_by_product", nps.by_product),
        ("nps_by_locale", nps.by_locale),
    ):
        for g in groups:
            yield from rows(section, g, group=g.key or "")
    for g in nps.by_journey:
        yield from rows("nps_by_journey", g, g.key or "")
    delivery = report.on_time_delivery
    yield from rows("on_time_delivery", delivery.overall)
    yield ("on_time_delivery", "", "", "", "", "without_promise", delivery.without_promise)
    yield ("on_time_delivery", "", "", "", "", "overdue", delivery.overdue)
    for week in delivery.by_week:
        yield from rows("on_time_delivery_by_week", week, group=week.key or "")
    repeat = report.repeat_purchase
    yield ("repeat_purchase", "", "", "", "", "first_time_customers", repeat.first_time_customers)
    for w in repeat.windows:
        yield from rows("repeat_purchase", w, group=w.days, skip=("days",))
    yield from rows("churn", report.churn, group=report.churn.window_days, skip=("window_days",))
    yield from rows("referral", report.referral, report.journey or "")
    for t in report.complaints.by_category:
        yield from rows("tickets", t, group=t.category)


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))
    return out.getvalue()


# --- the table --------------------------------------------------------------------------------------------
def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first ``left`` columns to the left, numbers to the right."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _step_cells(st: StepFunnel, locale: str) -> list[str]:
    cells = [st.step_id, st.variant or "—"]
    for name in TABLE_STEP_COLUMNS:
        value = getattr(st, name)
        if name == "revenue":
            cells.append(fmt.money(value, locale))
        elif name == "median_time_to_step_s":
            cells.append(fmt.duration(value, locale))
        else:
            cells.append(fmt.count(value, locale))
    return cells


def _nps_table(title: str, groups: Sequence[NpsCounts], locale: str) -> list[str]:
    if not groups:
        return []
    head = [
        label(title, locale),
        label("nps", locale),
        *(label(k, locale) for k in ("responses", "promoters", "passives", "detractors")),
    ]
    rows = [
        [
            g.label or g.key or "—",
            fmt.number(g.nps, locale, 1),
            *(
                fmt.number(getattr(g, k), locale)
                for k in ("responses", "promoters", "passives", "detractors")
            ),
        ]
        for g in groups
    ]
    return ["", *grid(head, rows)]


def render_table(report: Report, locale: str = "es") -> str:
    check_locale(locale)
    p = report.period
    since = p.since.isoformat() if p.since else label("since_start", locale)
    until = p.until.isoformat() if p.until else label("until_now", locale)
    out = [
        label("title", locale),
        f"{label('period', locale)}: {since} → {until} ({label('as_of', locale)} {p.as_of.isoformat()})",
        f"{label('journey', locale)}: {report.journey or label('all_journeys', locale)}",
        "",
        f"== {label('funnel', locale)}",
    ]
    if not report.funnel:
        out.append(label("no_data", locale))
    for j in report.funnel:
        summary = label(
            "journey_summary",
            locale,
            entered=fmt.number(j.entered, locale),
            converted=fmt.number(j.converted, locale),
            rate=fmt.percent(j.conversion_rate, locale),
            revenue=fmt.money(j.revenue, locale),
        )
        out += ["", f"-- {j.journey_id}" + (f" ({j.name})" if j.name else "") + f": {summary}"]
        if j.steps:
            head = [
                label("step_id", locale),
                label("variant", locale),
                *(label(c, locale) for c in TABLE_STEP_COLUMNS),
            ]
            out += grid(head, [_step_cells(st, locale) for st in j.steps], left=2)
            if any(st.delivered is None for st in j.steps):
                out.append(label("no_webhook_note", locale))
    if report.splits:
        out += ["", f"== {label('splits', locale)}", label("split_note", locale)]
        for sp in report.splits:
            out += ["", f"-- {sp.journey_id}" + (f" / {sp.step_id}" if sp.step_id else "")]
            head = [
                label(k, locale)
                for k in ("variant", "enrolled", "converted", "conversion_rate", "difference")
            ]
            rows = []
            for arm in (*([sp.holdout] if sp.holdout else []), *sp.variants):
                ci = "—"
                if arm.difference is not None:
                    low = fmt.signed_percent_points(arm.ci_low, locale)
                    high = fmt.signed_percent_points(arm.ci_high, locale)
                    ci = f"{fmt.signed_percent_points(arm.difference, locale)} [{low}, {high}]"
                name = label("holdout", locale) if arm is sp.holdout else arm.variant
                rows.append(
                    [
                        name,
                        fmt.number(arm.enrolled, locale),
                        fmt.number(arm.converted, locale),
                        fmt.percent(arm.conversion_rate, locale),
                        ci,
                    ]
                )
            out += grid(head, rows)
    nps = report.nps
    o = nps.overall
    out += [
        "",
        f"== {label('nps', locale)}",
        label(
            "nps_summary",
            locale,
            nps=fmt.number(o.nps, locale, 1),
            responses=fmt.number(o.responses, locale),
            promoters=fmt.number(o.promoters, locale),
            passives=fmt.number(o.passives, locale),
            detractors=fmt.number(o.detractors, locale),
        ),
    ]
    out += _nps_table("week", nps.by_week, locale)
    out += _nps_table("journey", nps.by_journey, locale)
    out += _nps_table("by_product", nps.by_product, locale)
    out += _nps_table("by_locale", nps.by_locale, locale)
    if nps.latest_comments:
        out += ["", label("latest_comments", locale)]
        out += [f"  [{c.score}] {c.answered_at:%Y-%m-%d} {c.comment}" for c in nps.latest_comments]
    d = report.on_time_delivery
    od = d.overall
    out += [
        "",
        f"== {label('on_time_delivery', locale)}",
        label(
            "on_time_summary",
            locale,
            rate=fmt.percent(od.on_time_rate, locale),
            on_time=fmt.number(od.on_time, locale),
            delivered=fmt.number(od.delivered, locale),
            late=fmt.number(od.late, locale),
            average=fmt.number(od.average_days_late, locale, 1),
            max=fmt.number(od.max_days_late, locale),
            without_promise=fmt.number(d.without_promise, locale),
            overdue=fmt.number(d.overdue, locale),
        ),
    ]
    if d.by_week:
        head = [label("week", locale), label("delivered", locale), label("on_time_rate", locale)]
        out += grid(
            head,
            [
                [w.key or "", fmt.number(w.delivered, locale), fmt.percent(w.on_time_rate, locale)]
                for w in d.by_week
            ],
        )
    r = report.repeat_purchase
    out += [
        "",
        f"== {label('repeat_purchase', locale)}",
        label("repeat_summary", locale, customers=fmt.number(r.first_time_customers, locale)),
    ]
    head = [label(k, locale) for k in ("window_days", "eligible", "repeated", "rate")]
    out += grid(
        head,
        [
            [
                str(w.days),
                fmt.number(w.eligible, locale),
                fmt.number(w.repeated, locale),
                fmt.percent(w.rate, locale),
            ]
            for w in r.windows
        ],
    )
    c = report.churn
    out += [
        "",
        f"== {label('churn', locale)}",
        label(
            "churn_summary",
            locale,
            rate=fmt.percent(c.rate, locale),
            churned=fmt.number(c.churned, locale),
            customers=fmt.number(c.customers, locale),
            days=c.window_days,
        ),
    ]
    ref = report.referral
    out += [
        "",
        f"== {label('referral', locale)}",
        label(
            "referral_summary",
            locale,
            codes=fmt.number(ref.codes_sent, locale),
            clicked=fmt.number(ref.referrers_clicked, locale),
            clicks=fmt.number(ref.clicks, locale),
            orders=fmt.number(ref.orders, locale),
            revenue=fmt.money(ref.revenue, locale),
        ),
    ]
    out += ["", f"== {label('complaints', locale)}"]
    head = [
        label(k, locale)
        for k in ("category", "opened_tickets", "resolved", "still_open", "median_resolution_s")
    ]
    out += grid(
        head,
        [
            [
                label(t.category, locale),
                fmt.number(t.opened, locale),
                fmt.number(t.resolved, locale),
                fmt.number(t.still_open, locale),
                fmt.duration(t.median_resolution_s, locale),
            ]
            for t in report.complaints.by_category
        ],
    )
    out += ["", f"{label('notes', locale)}: {label('deferred_note', locale)}"]
    return "\n".join(out) + "\n"
