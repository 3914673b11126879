"""The ops commands: those that need the database, Prefect or the network. :func:`register` adds them
to the ``posventa`` command (the ``posventa.commands`` entry point); each imports its dependencies only
when it runs, so ``posventa validate`` stays fast."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.i18n import t
from posventa.errors import ConfigError, PosventaError


def _settings() -> Any:
    from pydantic import ValidationError

    from infra.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"POSVENTA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(problems) from exc


def cmd_db(args: argparse.Namespace) -> int:
    from infra.db.migrate import current, head, upgrade

    url = _settings().database_url
    try:
        if args.action == "upgrade":
            upgrade(url, args.revision)
        rev, newest = current(url), head()
    except Exception as exc:
        raise PosventaError(f"database {_masked(url)}: {exc}") from exc
    print(t("db_upgraded", rev=rev) if rev == newest else t("db_behind", rev=rev, head=newest))
    return 0


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"


#: Not printed as is in a report: control characters (a file's ANSI escapes) and undecodable bytes.
_UNPRINTABLE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")


def _read_events(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw item); a line that cannot be read yields its error text for the report.

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``), so the event's check names
    the field that holds them instead of the whole file failing. A CSV record is numbered by the line it
    starts on (a quoted value may span lines)."""
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            try:
                _ = reader.fieldnames  # reads the header, so record line numbers start after it
            except csv.Error as exc:
                yield 1, f"not CSV: {exc}"
                return
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield start, f"not CSV: {exc}"
                    continue
                item: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
                for key in ("data", "customer", "order"):
                    if isinstance(item.get(key), str):
                        try:
                            item[key] = json.loads(item[key])
                        except (ValueError, RecursionError):
                            item[key] = {"__invalid_json__": item[key]}
                yield start, item
        for n, line_text in enumerate(fh, 1):
            if not line_text.strip():
                continue
            try:
                yield n, json.loads(line_text)
            except json.JSONDecodeError as exc:
                yield n, f"not JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"
            except (ValueError, RecursionError) as exc:  # a number of 5000 digits, nesting too deep
                yield n, f"not JSON: {type(exc).__name__}: {str(exc)[:200]}"


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.stats import IngestReport
    from infra.wiring import build_services

    path: Path = args.file
    if not path.exists():
        raise PosventaError(f"no such file: {path}")
    services = build_services(_settings())
    total = IngestReport()
    chunk: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        # Consecutive good lines go in one call (one transaction); reports keep each line's number.
        lines = [line for line, _ in chunk]
        rep = services.ingest.apply([item for _, item in chunk], "import", first_line=0)
        total.accepted += rep.accepted
        total.duplicates += rep.duplicates
        total.rejected += [(lines[i], reason) for i, reason in rep.rejected]
        chunk.clear()

    for line, item in _read_events(path, args.format):
        if isinstance(item, str):
            total.rejected.append((line, item))
            continue
        if not isinstance(item, dict):
            total.rejected.append((line, "each line must be a JSON object"))
            continue
        chunk.append((line, item))
        if len(chunk) >= 500:
            flush()
    if chunk:
        flush()
    total.rejected.sort()
    for line, reason in total.rejected:
        shown = _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", reason)  # no terminal escapes
        print(t("rejected_line", path=path, line=line, reason=shown), file=sys.stderr)
    print(t("ingest_summary", ok=total.accepted, dup=total.duplicates, bad=len(total.rejected)))
    return 1 if total.rejected else 0


def _print_stats(stats: Any) -> None:
    settings = _settings()
    if settings.sendgrid_api_key is None:
        print(t("outbox_note", path=settings.outbox_dir))
    print(
        t(
            "run_summary",
            n=stats.enrollments,
            sent=stats.total("sent"),
            skipped=stats.total("skipped"),
            failed=stats.total("failed"),
        )
    )


def _prefect_env() -> None:
    """Set before Prefect is imported: no telemetry (no internet here, and none wanted), quiet logs, the
    project's own Prefect home (as `make` does), and time for the embedded server to start."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if "PREFECT_HOME" not in os.environ and "PREFECT_API_URL" not in os.environ:
        home = Path(".posventa/prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)


def _run_flow(flow: Any, **params: Any) -> int:
    """Run a flow in this process; print its summary. Exit 1 when the run is not clean (failed sends,
    engine errors): the reasons are printed, grouped."""
    from flows.outcome import stats_of

    state = flow(**params, return_state=True)
    stats = stats_of(state)
    if stats is None:  # the run failed before it could conclude (Prefect says why)
        raise PosventaError(state.message or str(state))
    _print_stats(stats)
    if not state.is_completed():
        print(state.message, file=sys.stderr)
        return 1
    if " — " in (state.message or ""):  # sends awaiting reconciliation, or why everything was skipped
        print(state.message)
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    _prefect_env()
    from flows.sweep import tick

    return _run_flow(tick, journey=args.journey)


def cmd_nightly(args: argparse.Namespace) -> int:
    _prefect_env()
    from flows.sweep import nightly

    return _run_flow(nightly, journey=args.journey)


def cmd_run(args: argparse.Namespace) -> int:
    """Advance one customer now — or at a virtual time (``--at``/``--advance``: walking a customer
    through their journey without SQL; refused on a production database, ``ops.marketer``)."""
    if not args.customer:
        raise PosventaError("--customer is required")
    walk: Any = None
    if args.at or args.advance:
        from ops.marketer import after_travel, travel_time

        walk = travel_time(args.customer, args.at, args.advance)
    _prefect_env()
    from flows.sweep import journey_for_customer

    code = _run_flow(
        journey_for_customer, customer=args.customer, journey=args.journey, now=walk[1] if walk else None
    )
    if walk:
        after_travel(walk[0], args.customer, walk[1])
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    _prefect_env()
    from ops.demo import run_demo

    try:
        return run_demo(customers=args.customers, weeks=args.weeks, seed=args.seed)
    except RuntimeError as exc:  # Prefect's embedded server did not come up
        raise PosventaError(f"Prefect: {exc} (is the machine very busy? try again)") from exc


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check; exit 1 if any check failed."""
    failed = False
    try:
        s = _settings()
    except ConfigError as exc:
        print(f"✗ {t('doctor_settings')}: {exc}")
        return 1
    print(f"✓ {t('doctor_settings')}: {t('doctor_ok')}")
    try:
        from infra.db.migrate import current, head

        rev, newest = current(s.database_url), head()
        if rev is None:
            print(f"✗ {t('doctor_not_migrated', url=_masked(s.database_url))}")
            failed = True
        elif rev != newest:
            print(f"✗ {t('doctor_behind', url=_masked(s.database_url), rev=rev, head=newest)}")
            failed = True
        else:
            print(f"✓ {t('doctor_revision', url=_masked(s.database_url), rev=rev)}")
    except Exception as exc:
        print(f"✗ {t('doctor_database', url=_masked(s.database_url), error=str(exc).splitlines()[0])}")
        failed = True
    if s.prefect_api_url:
        try:
            import httpx

            r = httpx.get(s.prefect_api_url.rstrip("/") + "/health", timeout=5)
            ok = r.status_code == 200
            print(f"{'✓' if ok else '✗'} prefect API {s.prefect_api_url}: HTTP {r.status_code}")
            failed |= not ok
        except Exception as exc:
            print(f"✗ prefect API {s.prefect_api_url}: {type(exc).__name__}: {exc}")
            failed = True
    else:
        print(f"✓ {t('doctor_embedded')}")
    if s.prefect_api_url and not failed:  # the scheduler produces runs (the check of `posventa status`)
        from ops.status import scheduler_checks

        for line in scheduler_checks(s.prefect_api_url, datetime.now(UTC))[0]:
            print(line.render())
            failed |= line.ok is False
    if s.sendgrid_api_key is None:
        print(f"✓ {t('doctor_email')}: {t('outbox_note', path=s.outbox_dir)}")
    else:
        print(f"✓ {t('doctor_sendgrid', host=s.sendgrid_host, sender=s.email_from)}")
    try:
        from posventa.compile import load_plans

        plans = load_plans(s.journeys_dir)
        print(f"✓ {t('doctor_journeys', n=len(plans), path=s.journeys_dir)}")
    except PosventaError as exc:
        print(f"✗ {t('doctor_bad_journeys', error=str(exc).splitlines()[0])}")
        failed = True
    for warning in s.warnings():
        if not warning.startswith("POSVENTA_SENDGRID_API_KEY"):  # already said on the email line
            print(f"! {warning}")
    from ops.marketer import doctor_lines  # shop policy and brand placeholders, unpublished journeys

    for note in doctor_lines(s):
        print(f"! {note}")
    return 1 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from web.app import serve

    serve(args.host, args.port)
    return 0


def cmd_fake_sendgrid(args: argparse.Namespace) -> int:
    from infra.email.fake_sendgrid import serve

    serve(args.host, args.port, args.api_key)
    return 0


def _store() -> Any:
    from infra.db.session import make_engine, session_factory
    from infra.db.store import SqlStore

    return SqlStore(session_factory(make_engine(_settings().database_url)))


def cmd_api_key(args: argparse.Namespace) -> int:
    with _store().begin() as tx:
        key = tx.api_keys.create(args.shop, args.label or None)
    print(t("api_key_created", shop=args.shop))
    print(key)
    return 0


def cmd_customer(args: argparse.Namespace) -> int:
    from app.control import journey_controls
    from app.reports import customer_report

    store = _store()
    report = customer_report(store, args.customer_id)
    if report is None:
        raise PosventaError(t("no_customer", id=args.customer_id))
    controls = journey_controls(store)  # paused, draining, stopped journeys show it
    for e in report["enrollments"]:
        e["journey_state"] = controls[e["journey"]].state if e["journey"] in controls else None
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    _print_customer(report, _settings().timezone)
    return 0


def _print_customer(report: dict[str, Any], timezone: str) -> None:
    from ops.i18n import status_label
    from posventa.tables import local_time

    c = report["customer"]
    print(
        t(
            "customer_head",
            id=c["id"],
            email=c["email"] or "-",
            locale=c["locale"],
            timezone=c["timezone"] or "-",
            zone=timezone,
        )
    )
    print(t("suppressions") + ":")
    suppressions = [
        (x["reason"], x["scope"], x["source"], local_time(x["since"], timezone))
        for x in report["suppressions"]
    ]
    cols = ("col_reason", "col_scope", "col_source", "col_since")
    _print_rows([t(k) for k in cols], suppressions)
    if report["open_complaint"]:
        print("  " + t("open_complaint"))
    print(t("journeys") + ":")
    enrollments = []
    for e in report["enrollments"]:
        held = e["journey_state"] not in (None, "running")
        state = status_label("journey", e["journey_state"]) if held else ""
        enrollments.append(
            (
                e["journey"],
                status_label("enrollment", e["status"]),
                e["step"] or e["reason"],
                local_time(e["next_due_at"], timezone),
                f"[{state}]" if state else "",
            )
        )
    _print_rows([t(k) for k in ("col_journey", "col_status", "col_step", "col_next")] + [""], enrollments)
    print(t("messages") + ":")
    messages = [
        (
            r["journey"],
            r["step"],
            status_label("send", r["status"]),
            r["reason"],
            local_time(r["at"], timezone),
        )
        for r in report["messages"]
    ]
    _print_rows(
        [t(k) for k in ("col_journey", "col_msg_step", "col_status", "col_reason", "col_at")], messages
    )


def _print_rows(header: list[str], rows: list[tuple[Any, ...]]) -> None:
    from posventa.tables import table

    if not rows:
        print("  " + t("none_yet"))
        return
    for line in table(header, rows, indent="  "):
        print(line)


# --- registration ----------------------------------------------------------------------------------------
def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["upgrade", "current"], help=t("arg_db_action"))
    p.add_argument("revision", nargs="?", default="head", help=t("arg_db_revision"))


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto")


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--customers", type=int, default=300)
    p.add_argument("--weeks", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fresh", action="store_true", default=True)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--journey")
    p.add_argument("--customer")


def _walk_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    from ops.marketer_i18n import t as mt

    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help=mt("arg_at"))
    when.add_argument("--advance", help=mt("arg_advance"))


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)


def _fake_args(p: argparse.ArgumentParser) -> None:
    import textwrap

    paragraphs = t("fake_epilog").split("\n\n")
    p.epilog = "\n\n".join(par if par.startswith(" ") else textwrap.fill(par, 100) for par in paragraphs)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--host", default="127.0.0.1", help=t("arg_fake_host") + " (%(default)s)")
    p.add_argument("--port", type=int, default=3030, help=t("arg_fake_port") + " (%(default)s)")
    p.add_argument("--api-key", default="SG.fake", help=t("arg_fake_key") + " (%(default)s)")


def _customer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("customer_id")
    p.add_argument("--format", choices=["text", "json"], default="text")


def _apikey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shop")
    p.add_argument("--label", default="")


def _no_args(p: argparse.ArgumentParser) -> None:
    return None


_Command = tuple[str, Callable[[argparse.Namespace], int], str, Callable[[argparse.ArgumentParser], None]]
COMMANDS: list[_Command] = [
    ("db", cmd_db, "help_db", _db_args),
    ("ingest", cmd_ingest, "help_ingest", _ingest_args),
    ("tick", cmd_tick, "help_tick", _run_args),
    ("nightly", cmd_nightly, "help_nightly", _run_args),
    ("run", cmd_run, "help_run", _walk_args),
    ("demo", cmd_demo, "help_demo", _demo_args),
    ("doctor", cmd_doctor, "help_doctor", _no_args),
    ("serve", cmd_serve, "help_serve", _serve_args),
    ("fake-sendgrid", cmd_fake_sendgrid, "help_fake_sendgrid", _fake_args),
    ("api-key", cmd_api_key, "help_api_key", _apikey_args),
    ("customer", cmd_customer, "help_customer", _customer_args),
]


def register(subparsers: Any) -> None:
    """Add the ops commands to the ``posventa`` command's subparsers (``posventa.commands`` entry point)."""
    for name, func, helptext, arguments in COMMANDS:
        p = subparsers.add_parser(name, help=t(helptext), description=t(helptext))
        arguments(p)
        p.set_defaults(func=func)
