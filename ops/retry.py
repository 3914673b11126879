"""``posventa retry``: requeue sends after their cause is fixed (the rules: :mod:`app.retry`).

::

    posventa retry --dry-run                     # what would be requeued, by journey, step and reason
    posventa retry --reason 401                  # requeue the sends SendGrid rejected with a 401
    posventa retry --journey post_purchase --step thank_you --since 6h
    posventa retry --unknown --since 2026-03-02  # ambiguous sends too: may duplicate (a warning says so)

Filters combine (AND): ``--journey`` and ``--step`` match exactly; ``--reason`` is a case-insensitive
substring of the recorded reason (``401`` matches ``401: The provided authorization grant is invalid…``);
``--since`` is a duration back from now (``90m``, ``6h``, ``2d``) or an ISO date or time (without an offset
it is read in ``POSVENTA_TIMEZONE``), compared with when the row reached its status.

Exit codes: 0 rows were requeued (with ``--dry-run``: would be); 1 nothing matched, or an error (printed
on stderr); 2 a usage error (an unknown option, a ``--since`` that is neither a duration nor a date).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from app.records import LedgerGroup
from posventa.errors import PosventaError
from posventa.i18n import Catalogue
from posventa.tables import local_time, table
from posventa.timeutil import parse_duration, zone

EXIT_DONE, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2

RETRY = Catalogue(
    {
        "help_retry": {
            "en": "requeue failed sends after the cause is fixed (each still sent once)",
            "es": "reencola envíos fallidos una vez corregida la causa (cada uno se envía una sola vez)",
        },
        "help_journey": {"en": "only this journey (exact id)", "es": "solo este recorrido (id exacto)"},
        "help_step": {"en": "only this step (exact id)", "es": "solo este paso (id exacto)"},
        "help_reason": {
            "en": "only reasons containing this text (case-insensitive), e.g. 401",
            "es": "solo motivos que contengan este texto (sin distinguir mayúsculas), p. ej. 401",
        },
        "help_since": {
            "en": "only rows that reached their status since: a duration back (6h, 2d) or an ISO date/time",
            "es": "solo filas que llegaron a su estado desde: una duración atrás (6h, 2d) o fecha/hora ISO",
        },
        "help_unknown": {
            "en": "requeue 'unknown' sends (the provider may have them: they may arrive twice)",
            "es": "reencola envíos 'unknown' (el proveedor puede tenerlos: pueden llegar dos veces)",
        },
        "help_dry_run": {
            "en": "only show what would be requeued, by journey, step and reason",
            "es": "solo muestra qué se reencolaría, por recorrido, paso y motivo",
        },
        "bad_since": {
            "en": "'{value}' is neither a duration (90m, 6h, 2d) nor an ISO date or time",
            "es": "'{value}' no es una duración (90m, 6h, 2d) ni una fecha u hora ISO",
        },
        "unknown_warning": {
            "en": "warning: 'unknown' sends may already have reached the customer (the provider gave no "
            "clear answer); requeued, they may arrive twice.",
            "es": "aviso: los envíos 'unknown' pueden haber llegado ya al cliente (el proveedor no dio una "
            "respuesta clara); reencolados, pueden llegar dos veces.",
        },
        "col_journey": {"en": "journey", "es": "recorrido"},
        "col_step": {"en": "step", "es": "paso"},
        "col_count": {"en": "count", "es": "total"},
        "col_oldest": {"en": "oldest ({zone})", "es": "más antiguo ({zone})"},
        "col_reason": {"en": "reason", "es": "motivo"},
        "st_failed": {"en": "failed", "es": ("fallido", "fallidos")},
        "st_unknown": {"en": "unknown", "es": "sin confirmar"},
        "would_requeue": {
            "en": (
                "{n} {status} send would be requeued (dry run: nothing changed)",
                "{n} {status} sends would be requeued (dry run: nothing changed)",
            ),
            "es": (
                "se reencolaría {n} envío {status} (simulacro: no se cambió nada)",
                "se reencolarían {n} envíos {status} (simulacro: no se cambió nada)",
            ),
        },
        "requeued": {
            "en": (
                "{n} {status} send requeued: the next tick sends it (or now: posventa tick)",
                "{n} {status} sends requeued: the next tick sends them (or now: posventa tick)",
            ),
            "es": (
                "{n} envío {status} reencolado: el próximo tick lo envía (o ya: posventa tick)",
                "{n} envíos {status} reencolados: el próximo tick los envía (o ya: posventa tick)",
            ),
        },
        "nothing": {
            "en": "nothing to requeue: no {status} send matches",
            "es": "nada que reencolar: ningún envío {status} coincide",
        },
        "database": {"en": "database: {error}", "es": "base de datos: {error}"},
    }
)
t = RETRY.t


class Since(NamedTuple):
    """``--since`` as typed (for the history note) and parsed: a duration back from now, or an ISO date
    or date-time (naive: read in the business's time zone)."""

    text: str
    value: timedelta | datetime

    def resolve(self, now: datetime, timezone: str) -> datetime:
        if isinstance(self.value, timedelta):
            return now - abs(self.value)
        return self.value if self.value.tzinfo is not None else self.value.replace(tzinfo=zone(timezone))


def _since(text: str) -> Since:
    try:
        return Since(text, parse_duration(text))
    except ValueError:
        pass
    try:
        return Since(text, datetime.fromisoformat(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(t("bad_since", value=text)) from None


def _note(args: argparse.Namespace) -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        who = "unknown user"
    filters = [
        f"--{name} {getattr(args, name)}" for name in ("journey", "step", "reason") if getattr(args, name)
    ]
    if args.since is not None:
        filters.append(f"--since {args.since.text}")
    return " ".join(["posventa retry", *filters, *(["--unknown"] if args.unknown else []), f"by {who}"])


def cmd_retry(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.records import RequeueFilter
    from app.retry import Requeue
    from ops.cli import _settings, _store

    settings = _settings()
    now = datetime.now(UTC)
    status = "unknown" if args.unknown else "failed"
    f = RequeueFilter(
        status=status,
        journey=args.journey,
        step=args.step,
        reason=args.reason,
        since=args.since.resolve(now, settings.timezone) if args.since else None,
    )
    if args.unknown:
        print(t("unknown_warning"), file=sys.stderr)
    requeue = Requeue(_store(), lambda: now)
    try:
        groups = requeue.preview(f)
        moved = 0 if args.dry_run or not groups else requeue.run(f, _note(args), now)
    except SQLAlchemyError as exc:
        raise PosventaError(t("database", error=str(exc).splitlines()[0])) from exc
    if not groups:
        print(t("nothing", status=t(f"st_{status}", n=1)))
        return EXIT_NOTHING
    _print_groups(groups, settings.timezone)
    total = sum(g.count for g in groups)
    if args.dry_run:
        print(t("would_requeue", n=total, status=t(f"st_{status}", n=total)))
        return EXIT_DONE
    if not moved:  # matched a moment ago, moved by someone else since
        print(t("nothing", status=t(f"st_{status}", n=1)))
        return EXIT_NOTHING
    print(t("requeued", n=moved, status=t(f"st_{status}", n=moved)))
    return EXIT_DONE


def _print_groups(groups: Sequence[LedgerGroup], timezone: str) -> None:
    """One aligned row per journey, step and reason; the oldest row's time in the business's zone."""
    header = [
        t("col_journey"),
        t("col_step"),
        t("col_count"),
        t("col_oldest", zone=timezone),
        t("col_reason"),
    ]
    rows = []
    for g in groups:
        reason = g.reason or "-"
        reason = reason if len(reason) <= 100 else reason[:99] + "…"
        rows.append((g.journey_id, g.step_id, g.count, local_time(g.oldest, timezone), reason))
    for line in table(header, rows, right={2}):
        print(line)


def register(subparsers: Any) -> None:
    """Add ``posventa retry`` (the ``posventa.commands`` entry point)."""
    p = subparsers.add_parser("retry", help=t("help_retry"), description=t("help_retry"))
    p.add_argument("--journey", help=t("help_journey"))
    p.add_argument("--step", help=t("help_step"))
    p.add_argument("--reason", help=t("help_reason"))
    p.add_argument("--since", type=_since, help=t("help_since"))
    p.add_argument("--unknown", action="store_true", help=t("help_unknown"))
    p.add_argument("--dry-run", action="store_true", help=t("help_dry_run"))
    p.set_defaults(func=cmd_retry)
