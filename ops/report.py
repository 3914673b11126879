"""``posventa report``: journey funnels and the post-sale KPIs from the database, as a table for a terminal,
JSON, CSV or one self-contained HTML page (``-o FILE``; the standard output otherwise).

The numbers and their definitions are ``infra.report``'s (``infra.db.metrics`` computes them in SQL); this
command parses the options, opens the database and writes the result. A request it cannot answer (a bad
day, an unknown journey, an empty period, a database not migrated) is one ``error:`` line and exit 1
(2: a usage error), never a traceback; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posventa.errors import PosventaError
from posventa.i18n import Catalogue, language

FORMATS = ("table", "json", "csv", "html", "summary", "markdown")

TEXT = Catalogue(
    {
        "help_report": {
            "en": "journey funnels and KPIs (NPS, on-time delivery, repeat purchase, churn, referrals)",
            "es": "embudos de los recorridos y KPI (NPS, entregas a tiempo, recompra, abandono, referidos)",
        },
        "help_journey": {"en": "one journey (default: all)", "es": "un recorrido (por defecto: todos)"},
        "help_since": {
            "en": "enrollments that entered from this day (2026-03-01) or instant (with its offset)",
            "es": "inscripciones que entraron desde este día (2026-03-01) o instante (con su desfase)",
        },
        "help_until": {
            "en": "… up to this day or instant (exclusive)",
            "es": "… hasta este día o instante (excluido)",
        },
        "help_format": {"en": "output format", "es": "formato de salida"},
        "help_output": {
            "en": "write to this file instead of the standard output",
            "es": "escribe en este archivo en vez de la salida estándar",
        },
        "help_lang": {"en": "language of the table and the page", "es": "idioma de la tabla y la página"},
        "help_churn": {
            "en": "churn: customers with no order in this many days",
            "es": "abandono: clientes sin pedidos en estos días",
        },
        "written": {"en": "report written to {path}", "es": "informe escrito en {path}"},
        "database": {
            "en": "database {url}: {error} (is it migrated? posventa db upgrade)",
            "es": "base de datos {url}: {error} (¿está migrada? posventa db upgrade)",
        },
    }
)
t = TEXT.t


def make_report(
    url: str,
    *,
    journey: str | None = None,
    since: str | None = None,
    until: str | None = None,
    tz: str = "UTC",
    churn_window_days: int | None = None,
    now: datetime | None = None,
) -> Any:
    """The :class:`~infra.report.model.Report` of the database at ``url`` (the stored plans give step order
    and diagrams). Raises PosventaError for every request it cannot answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from infra.db import metrics
    from infra.db.session import make_engine, session_factory
    from infra.report.assemble import build_report, parse_period

    start, end = parse_period(since, until, tz)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            return build_report(
                s,
                journey=journey,
                since=start,
                until=end,
                now=now or datetime.now(UTC),
                churn_window_days=churn_window_days or metrics.DEFAULT_CHURN_WINDOW_DAYS,
                parallel=True,
            )
    except SQLAlchemyError as exc:
        from ops.cli import _masked

        error = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise PosventaError(t("database", url=_masked(url), error=error)) from exc
    finally:
        engine.dispose()


def cmd_report(args: argparse.Namespace) -> int:
    from infra.report.render import render
    from ops.cli import _settings

    settings = _settings()
    locale = args.report_lang or language()
    report = make_report(
        settings.database_url,
        journey=args.journey,
        since=args.since,
        until=args.until,
        tz=settings.timezone,
        churn_window_days=args.churn_days,
    )
    text = render(report, args.format, locale)
    if args.output:
        path = Path(args.output)
        path.write_text(text, encoding="utf-8")
        print(t("written", path=path.resolve()), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} days: at least 1")
    return value


def register(subparsers: Any) -> None:
    """``posventa report`` (the ``posventa.commands`` entry point ``report``)."""
    p = subparsers.add_parser("report", help=t("help_report"))
    p.add_argument("--journey", help=t("help_journey"))
    p.add_argument("--since", help=t("help_since"))
    p.add_argument("--until", help=t("help_until"))
    p.add_argument("--format", choices=FORMATS, default="table", help=t("help_format"))
    p.add_argument("-o", "--output", help=t("help_output"))
    # Also accepted after the command; posventa.cli.main has already chosen the language from it.
    p.add_argument("--lang", dest="report_lang", choices=["es", "en"], help=t("help_lang"))
    p.add_argument("--churn-days", type=_positive, help=t("help_churn"))
    p.set_defaults(func=cmd_report)
