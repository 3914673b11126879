"""CLI commands that need the database, Prefect or the network (imported lazily by ``posventa.cli``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from posventa.errors import ConfigError, PosventaError
from posventa.i18n import MESSAGES, t

MESSAGES.update(
    {
        "db_upgraded": {"en": "database at revision {rev}", "es": "base de datos en la revisión {rev}"},
        "ingest_summary": {
            "en": "{ok} accepted, {dup} duplicates, {bad} rejected",
            "es": "{ok} aceptados, {dup} duplicados, {bad} rechazados",
        },
        "rejected_line": {
            "en": "{path}:{line}: rejected: {reason}",
            "es": "{path}:{line}: rechazado: {reason}",
        },
        "outbox_note": {
            "en": "no SendGrid key: email is written to {path}",
            "es": "sin clave de SendGrid: el correo se escribe en {path}",
        },
        "run_summary": {
            "en": "{n} enrollments advanced, {sent} messages sent, {skipped} skipped, {failed} failed",
            "es": "{n} inscripciones avanzadas, {sent} mensajes enviados, {skipped} omitidos, "
            "{failed} fallidos",
        },
        "doctor_ok": {"en": "ok", "es": "bien"},
        "no_customer": {"en": "no customer '{id}'", "es": "no existe el cliente '{id}'"},
        "suppressions": {"en": "Suppressions", "es": "Bloqueos y bajas"},
        "open_complaint": {
            "en": "open complaint: promotions on hold",
            "es": "reclamación abierta: promociones en espera",
        },
        "journeys": {"en": "Journeys", "es": "Recorridos"},
        "messages": {"en": "Messages", "es": "Mensajes"},
        "api_key_created": {
            "en": "API key for {shop} (shown once, store it now):",
            "es": "Clave de API para {shop} (se muestra una vez, guárdala ahora):",
        },
    }
)


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
    from infra.db.migrate import current, upgrade

    url = _settings().database_url
    try:
        if args.action == "upgrade":
            upgrade(url)
        print(t("db_upgraded", rev=current(url)))
    except Exception as exc:
        raise PosventaError(f"database {_masked(url)}: {exc}") from exc
    return 0


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"


def _read_events(path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw item); a line that is not JSON yields its error text for the report."""
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    with path.open(encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            for row in csv.DictReader(fh):
                item: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
                for key in ("data", "customer", "order"):
                    if isinstance(item.get(key), str):
                        try:
                            item[key] = json.loads(item[key])
                        except json.JSONDecodeError:
                            item[key] = {"__invalid_json__": item[key]}
                yield 0, item
            return
        for n, line_text in enumerate(fh, 1):
            if not line_text.strip():
                continue
            try:
                yield n, json.loads(line_text)
            except json.JSONDecodeError as exc:
                yield n, f"not JSON: {exc.msg} at column {exc.colno}"


def cmd_ingest(args: argparse.Namespace) -> int:
    from infra.runtime import IngestReport, Runtime

    path: Path = args.file
    if not path.exists():
        raise PosventaError(f"no such file: {path}")
    rt = Runtime.from_settings(_settings())
    total = IngestReport()
    csv_mode = args.format == "csv" or (args.format == "auto" and path.suffix.lower() == ".csv")
    chunk: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        # Consecutive good lines go in one call (one transaction); reports keep each line's number.
        lines = [line for line, _ in chunk]
        rep = rt.apply_events([item for _, item in chunk], "import", first_line=0)
        total.accepted += rep.accepted
        total.duplicates += rep.duplicates
        total.rejected += [(lines[i], reason) for i, reason in rep.rejected]
        chunk.clear()

    for i, (n, item) in enumerate(_read_events(path, args.format), 2 if csv_mode else 1):
        line = i if csv_mode else n
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
        print(t("rejected_line", path=path, line=line, reason=reason), file=sys.stderr)
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


def cmd_tick(args: argparse.Namespace) -> int:
    _prefect_env()
    from flows.sweep import tick

    stats = tick(journey=args.journey)
    _print_stats(stats)
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    _prefect_env()
    from flows.sweep import nightly

    stats = nightly(journey=args.journey)
    _print_stats(stats)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _prefect_env()
    from flows.sweep import journey_for_customer

    if not args.customer:
        raise PosventaError("--customer is required")
    stats = journey_for_customer(customer=args.customer, journey=args.journey)
    _print_stats(stats)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _prefect_env()
    from infra.demo import run_demo

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
        print(f"✗ settings: {exc}")
        return 1
    print(f"✓ settings: {t('doctor_ok')}")
    try:
        from sqlalchemy import text

        from infra.db.migrate import current
        from infra.db.session import make_engine

        with make_engine(s.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        rev = current(s.database_url)
        if rev is None:
            print(f"✗ database {_masked(s.database_url)}: reachable, not migrated — run: posventa db upgrade")
            failed = True
        else:
            print(f"✓ database {_masked(s.database_url)}: revision {rev}")
    except Exception as exc:
        print(f"✗ database {_masked(s.database_url)}: {str(exc).splitlines()[0]}")
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
        print("✓ prefect: embedded mode (POSVENTA_PREFECT_API_URL not set)")
    if s.sendgrid_api_key is None:
        print(f"✓ email: {t('outbox_note', path=s.outbox_dir)}")
    else:
        print(f"✓ email: SendGrid at {s.sendgrid_host}, from {s.email_from}")
    try:
        from posventa.plan import load_plans

        plans = load_plans(s.journeys_dir)
        print(f"✓ journeys: {len(plans)} valid in {s.journeys_dir}")
    except PosventaError as exc:
        print(f"✗ journeys: {str(exc).splitlines()[0]} — run: posventa validate")
        failed = True
    for warning in s.warnings():
        if not warning.startswith("POSVENTA_SENDGRID_API_KEY"):  # already said on the email line
            print(f"! {warning}")
    return 1 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from infra.web.app import serve

    serve(args.host, args.port)
    return 0


def cmd_fake_sendgrid(args: argparse.Namespace) -> int:
    from infra.email.fake_sendgrid import serve

    serve(args.host, args.port, args.api_key)
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    from infra.db import store
    from infra.db.session import make_engine, session_factory

    factory = session_factory(make_engine(_settings().database_url))
    with factory.begin() as s:
        key = store.create_api_key(s, args.shop, args.label or None)
    print(t("api_key_created", shop=args.shop))
    print(key)
    return 0


def customer_report(factory: Any, customer_id: str) -> dict[str, Any] | None:
    """Everything ops need to answer "why did (or didn't) this customer get that email?"."""
    from sqlalchemy import select

    from infra.db import models as m
    from infra.db import store

    with factory() as s:
        c = s.get(m.Customer, customer_id)
        if c is None:
            return None

        def iso(v: Any) -> str | None:
            return v.isoformat() if v is not None else None

        return {
            "customer": {
                "id": c.id,
                "email": c.email,
                "locale": c.locale,
                "timezone": c.timezone,
                "consent_email": c.consent_email,
                "attributes": c.attributes,
            },
            "suppressions": [
                {
                    "email": x.email,
                    "reason": x.reason,
                    "scope": x.scope,
                    "source": x.source,
                    "detail": x.detail,
                    "since": iso(x.created_at),
                }
                for x in store.suppressions_for(s, customer_id)
            ],
            "open_complaint": store.has_open_complaint(s, customer_id),
            "enrollments": [
                {
                    "id": e.id,
                    "journey": e.journey_id,
                    "status": e.status,
                    "step": (e.state or {}).get("step"),
                    "reason": (e.state or {}).get("reason"),
                    "next_due_at": iso(e.next_due_at),
                    "entered_at": iso(e.entered_at),
                    "last_error": e.last_error,
                }
                for e in s.scalars(
                    select(m.Enrollment)
                    .where(m.Enrollment.customer_id == customer_id)
                    .order_by(m.Enrollment.entered_at)
                )
            ],
            "messages": [
                {
                    "key": r.key,
                    "journey": r.journey_id,
                    "step": r.step_id,
                    "status": r.status,
                    "reason": r.reason,
                    "category": r.category,
                    "at": iso(r.sent_at or r.updated_at),
                }
                for r in s.scalars(
                    select(m.LedgerEntry)
                    .where(m.LedgerEntry.customer_id == customer_id)
                    .order_by(m.LedgerEntry.id)
                )
            ],
        }


def cmd_customer(args: argparse.Namespace) -> int:
    from infra.db.session import make_engine, session_factory

    report = customer_report(session_factory(make_engine(_settings().database_url)), args.customer_id)
    if report is None:
        raise PosventaError(t("no_customer", id=args.customer_id))
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    c = report["customer"]
    print(f"{c['id']}  {c['email'] or '-'}  {c['locale']}  {c['timezone'] or '-'}")
    print(t("suppressions") + ":")
    for x in report["suppressions"] or [{"reason": "-", "scope": "", "source": "", "since": ""}]:
        print(f"  {x['reason']:<14}{x['scope']:<13}{x['source']:<12}{x['since'] or ''}")
    if report["open_complaint"]:
        print("  " + t("open_complaint"))
    print(t("journeys") + ":")
    for e in report["enrollments"]:
        where = e["step"] or e["reason"] or ""
        print(f"  {e['journey']:<16}{e['status']:<11}{where:<24}{e['next_due_at'] or ''}")
    print(t("messages") + ":")
    for r in report["messages"]:
        print(f"  {r['journey']:<16}{r['step']:<24}{r['status']:<9}{r['reason'] or '':<28}{r['at'] or ''}")
    return 0
