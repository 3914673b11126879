"""The marketer's commands: ``preview``, ``send-test``, ``plan``, ``publish``, ``migrate``, ``pause``,
``resume``, ``stop``, ``environment``. :func:`register` adds them to the ``posventa`` command (the
``posventa.commands`` entry point); each imports what it needs when it runs.

The use cases are in ``app/`` (:mod:`app.preview`, :mod:`app.publish`, :mod:`app.migrate`,
:mod:`app.control`); this module reads the settings, wires them and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.cli import _settings
from ops.marketer_i18n import t
from posventa.errors import PosventaError

EXIT_OK, EXIT_PROBLEMS, EXIT_CHANGES = 0, 1, 2


def _now() -> datetime:
    return datetime.now(UTC)


def _short(version: str | None) -> str:
    return version[:12] if version else "—"


def _migrated(url: str) -> bool:
    """Whether the database was ever migrated; one behind this code's schema is an error to act on."""
    from infra.db.migrate import require_head

    try:
        return require_head(url) is not None
    except PosventaError:
        raise
    except Exception as exc:  # unreachable server, bad URL: say so, no traceback
        raise PosventaError(f"database: {str(exc).splitlines()[0]}") from exc


def _store(settings: Any, *, required: bool = True) -> Any:
    """The store on the configured database; None (or an error, if ``required``) when never migrated."""
    from infra.db.session import make_engine, session_factory
    from infra.db.store import SqlStore

    if not _migrated(settings.database_url):
        if required:
            raise PosventaError(t("not_migrated"))
        return None
    return SqlStore(session_factory(make_engine(settings.database_url)))


def _book(settings: Any, store: Any) -> Any:
    """The journey files compiled (the drafts); invalid journeys raise JourneyError (exit 1)."""
    from app.plans import PlanBook
    from posventa.compile import load_plans

    return PlanBook(store, load_plans(settings.journeys_dir))


# --- preview, send-test ----------------------------------------------------------------------------------
def _previewer(settings: Any, store: Any) -> Any:
    from app.links import Links
    from app.preview import Preview
    from app.render import Renderer
    from infra.wiring import config_from
    from posventa.compile import load_plans
    from posventa.templates import Templates

    config = config_from(settings)
    renderer = Renderer(config, Templates(Path(settings.journeys_dir) / "templates"), Links(config))
    return Preview(renderer, load_plans(settings.journeys_dir), store)


def preview_message(args: argparse.Namespace, settings: Any) -> Any:
    """The :class:`app.preview.Previewed` the arguments ask for (sample unless ``--customer``)."""
    store = _store(settings) if args.customer else None
    previewer = _previewer(settings, store)
    if args.customer:
        return previewer.customer(args.journey, args.step, args.customer, _now(), args.locale)
    return previewer.sample(args.journey, args.step, _now(), args.locale)


def _eml(settings: Any, message: Any) -> bytes:
    """The message as the outbox writes it: the real RFC 5322 bytes (headers, text and HTML parts)."""
    from infra.email.outbox import FileOutboxSender

    writer = FileOutboxSender(settings.outbox_dir, settings.email_from, settings.email_from_name)
    return writer.render(message)


def cmd_preview(args: argparse.Namespace) -> int:
    from email import message_from_bytes
    from email.policy import default

    settings = _settings()
    p = preview_message(args, settings)
    m = p.message
    raw = _eml(settings, m)
    parsed = message_from_bytes(raw, policy=default)
    headers = [(k, str(v)) for k, v in parsed.items() if not k.lower().startswith(("content-", "mime-"))]
    if args.format == "json":
        out = {"journey": p.journey, "step": p.step, "locale": p.locale, "source": p.source}
        out |= {"draft_version": p.draft_version, "headers": dict(headers), "subject": m.subject}
        out |= {"text": m.text, "html": m.html, "template_data": m.template_data}
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    else:
        who = t("sample_customer") if p.source == "sample" else t("customer", id=p.customer_id)
        print(
            t(
                "preview_head",
                journey=p.journey,
                step=p.step,
                locale=p.locale,
                who=who,
                version=_short(p.draft_version),
            )
        )
        for k, v in headers:
            print(f"{k}: {v}")
        print()
        print(m.text or json.dumps(dict(m.template_data or {}), indent=2, ensure_ascii=False, default=str))
        print()
    target: Path | None = args.output
    if target is None and args.open:
        import tempfile

        target = Path(tempfile.mkdtemp(prefix="posventa-preview-")) / f"{p.journey}-{p.step}-{p.locale}.html"
    if target is not None:
        suffix = target.suffix.lower()
        if suffix == ".html":
            target.write_text(m.html, encoding="utf-8")
        elif suffix == ".eml":
            target.write_bytes(raw)
        else:
            raise PosventaError(t("bad_output", path=target))
        print(t("written", path=target), file=sys.stderr)
        if args.open:
            import webbrowser

            webbrowser.open(target.resolve().as_uri())
    elif args.format == "text":
        print(t("html_hint"), file=sys.stderr)
    return EXIT_OK


def cmd_send_test(args: argparse.Namespace) -> int:
    from app.ports import mask_email
    from app.preview import send_test, succeeded
    from infra.wiring import sender_from

    settings = _settings()
    store = _store(settings)
    p = preview_message(args, settings)
    sender = sender_from(settings)
    sent = send_test(
        p,
        args.to,
        sender,
        store,
        allow_list=settings.test_recipients,
        limit=settings.test_send_limit,
        now=_now(),
    )
    to = mask_email(args.to)
    if not succeeded(sent):
        r = sent.result
        raise PosventaError(t("test_failed", to=to, outcome=r.outcome, error=r.error or "-"))
    ident = sent.result.provider_message_id or sent.message.ledger_key
    print(t("test_sent", to=to, sender=sender.name, id=ident, used=sent.used, limit=sent.limit))
    return EXIT_OK


# --- plan, publish, migrate -------------------------------------------------------------------------------
def _print_diff(d: Any) -> None:
    status = t(f"status_{d.status}")
    if d.status == "changed":
        versions = t("versions", live=_short(d.live_version), draft=_short(d.draft_version))
    elif d.live_version:
        versions = t("live_only", live=_short(d.live_version))
    else:
        versions = ""
    state = f", {d.state}" if d.state and d.state != "running" else ""
    mark = {"new": "+", "changed": "~", "removed": "-", "retired": "-"}.get(d.status, "=")
    print(f"{mark} {d.journey_id}  {status}" + (f"  ({versions}{state})" if versions or state else ""))
    if d.status not in ("changed", "new", "removed"):
        return
    for c in d.settings:
        print(f"    ~ {t('settings')}: {c.show()}")
    if d.order_changed:
        print(f"    ~ {t('order_changed')}")
    for s in d.steps:
        sign = {"added": "+", "removed": "-", "changed": "~"}[s.kind]
        here = f"  [{t('here_now', n=s.waiting)}]" if s.kind != "added" else ""
        details = [c.show() for c in s.fields] + (
            [t("template_changed", names=", ".join(s.templates))] if s.templates else []
        )
        if d.status == "new" or not details:
            print(f"    {sign} {s.step}{here}")
            continue
        print(f"    {sign} {s.step}{here}")
        for line in details:
            print(f"        {line}")
    inside = sum(d.enrollments.values())
    if inside and d.status in ("changed", "removed"):
        print(f"    {t('inside', n=inside)}")


def cmd_plan(args: argparse.Namespace) -> int:
    from app.publish import plan_changes

    settings = _settings()
    store = _store(settings, required=False)
    book = _book(settings, store)
    report = plan_changes(store, book, args.journeys or None)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        if store is None:
            print(t("not_migrated_plan"), file=sys.stderr)
        for d in report.journeys:
            _print_diff(d)
        print()
        n = len(report.pending)
        print(t("plan_summary", n=n) if n else t("plan_nothing"))
    return EXIT_CHANGES if report.pending else EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from app.control import journey_controls
    from app.publish import publish

    settings = _settings()
    store = _store(settings)
    book = _book(settings, store)
    done = publish(store, book, _now(), args.journeys or None)
    for pub in done.publications:
        print(
            t("published", journey=pub.journey_id, old=_short(pub.previous_version), new=_short(pub.version))
        )
    for jid in done.drained:
        print(t("drained", journey=jid))
    if not done.publications and not done.drained:
        print(t("publish_nothing"))
    controls = journey_controls(store)
    with store.read() as tx:
        for pub in done.publications:
            live = controls[pub.journey_id].live_version
            behind = sum(c.count for c in tx.journeys.step_counts(pub.journey_id) if c.plan_version != live)
            if behind:
                print(t("migrate_hint", n=behind, journey=pub.journey_id))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.migrate import blocked_message, migrate, parse_mapping, rerun_message

    settings = _settings()
    store = _store(settings)
    book = _book(settings, store)
    mapping = parse_mapping(args.map or [])
    m = migrate(
        store, book, args.journey, args.to, mapping, _now(), dry_run=args.dry_run, allow_rerun=args.rerun
    )
    print(
        t(
            "migrate_head",
            journey=m.journey_id,
            version=_short(m.to_version),
            dry=t("dry") if args.dry_run else "",
        )
    )
    if not m.moves and not m.blocked:
        print(f"  {t('moves_none')}")
    groups: dict[tuple[str, str | None, str | None], list[Any]] = {}
    for mv in m.moves:
        groups.setdefault((mv.from_version, mv.from_step, mv.to_step), []).append(mv)
    for (version, old, new), moves in sorted(groups.items(), key=lambda g: (-len(g[1]), str(g[0]))):
        rerun = f"  ({t('rerun_note')})" if any(mv.rerun for mv in moves) else ""
        print(f"  {len(moves):>6}  {_short(version)}  {old or '—'} → {new or '—'}{rerun}")
        shown = ", ".join(mv.customer_id for mv in moves[: args.show])
        more = f", … (+{len(moves) - args.show})" if len(moves) > args.show else ""
        print(f"          {shown}{more}")
    if m.unused:
        print(f"  {t('unused_maps', maps=', '.join(m.unused))}")
    problems = []
    if m.blocked:
        problems.append(blocked_message(m))
    if m.reruns and not args.rerun:
        problems.append(rerun_message(m))
    for problem in problems:
        print(t("blocked", what=problem), file=sys.stderr)
    if args.dry_run:
        return EXIT_PROBLEMS if problems else EXIT_OK
    print(t("migrated", n=len(m.moves)))
    return EXIT_OK


# --- pause, resume, stop, environment --------------------------------------------------------------------
def _live_count(store: Any, journey: str) -> int:
    with store.read() as tx:
        return sum(c.count for c in tx.journeys.step_counts(journey))


def _already(store: Any, journey: str, state: str, timezone: str) -> bool:
    """Say so when the journey is already in ``state`` (pause twice, resume a running journey)."""
    from app.control import journey_controls
    from posventa.tables import local_time

    current = journey_controls(store).get(journey)
    if current is None or current.state != state:
        return False
    if state == "running":
        print(t("already_running", journey=journey))
        return True
    since = local_time(current.changed_at, timezone)
    reason = f" ({current.reason})" if current.reason else ""
    print(t("already", journey=journey, state=t(f"word_{state}"), since=since, reason=reason))
    return True


def cmd_state(args: argparse.Namespace) -> int:
    from app.control import set_state, stop

    settings = _settings()
    store = _store(settings)
    book = _book(settings, store)
    now = _now()
    wanted = {"pause": "paused", "resume": "running"}.get(args.command) or ("draining" if args.drain else "")
    if wanted and _already(store, args.journey, wanted, settings.timezone):
        return EXIT_OK
    if args.command == "pause":
        set_state(store, book, args.journey, "paused", args.reason, now)
        print(t("state_paused", journey=args.journey))
    elif args.command == "resume":
        set_state(store, book, args.journey, "running", None, now)
        print(t("state_running", journey=args.journey))
    elif args.drain:
        set_state(store, book, args.journey, "draining", args.reason or "drain", now)
        print(t("state_draining", journey=args.journey, n=_live_count(store, args.journey)))
    else:
        reason = args.reason or "stopped"
        done = stop(store, book, args.journey, reason, now)
        print(t("state_stopped", journey=args.journey, n=done.enrollments, reason=reason, m=done.messages))
    return EXIT_OK


def cmd_environment(args: argparse.Namespace) -> int:
    from app.control import PRODUCTION, is_production, mark_environment

    settings = _settings()
    store = _store(settings)
    if args.mark == "production":
        mark_environment(store, True, _now())
        print(t("env_marked"))
    elif args.mark == "development":
        if not args.yes:
            raise PosventaError(t("env_confirm"))
        mark_environment(store, False, _now())
        print(t("env_unmarked"))
    env = PRODUCTION if is_production(store, settings.environment) else "development"
    marked = is_production(store, "")
    print(t("env_show", env=env, setting=settings.environment, mark=PRODUCTION if marked else t("none")))
    return EXIT_OK


# --- used by ops.cli: run --at/--advance, doctor ------------------------------------------------------------
def travel_time(customer: str, at: str | None, advance: str | None) -> tuple[Any, datetime]:
    """The virtual time ``posventa run --customer … --at/--advance`` runs at, and the store to record it
    in; refused on a production database and backwards in the customer's own virtual time."""
    from app.control import customer_clock, is_production
    from posventa.timeutil import parse_duration, parse_instant

    settings = _settings()
    store = _store(settings)
    if is_production(store, settings.environment):
        raise PosventaError(t("production_refused"))
    clock = customer_clock(store, customer)
    if at is not None:
        when = parse_instant(at)
        if when is None:
            raise PosventaError(f"--at takes a time such as 2026-12-06T10:00, not '{at}'")
    else:
        try:
            step = parse_duration(advance or "")
        except (ValueError, PosventaError) as exc:
            raise PosventaError(f"--advance takes a duration such as 7d or 12h, not '{advance}'") from exc
        when = max(clock or _now(), _now()) + step
    if clock is not None and when < clock:
        raise PosventaError(t("clock_backwards", id=customer, at=clock.isoformat()))
    return store, when


def after_travel(store: Any, customer: str, when: datetime) -> None:
    from app.control import set_customer_clock

    set_customer_clock(store, customer, when, _now())
    print(t("virtual_time", id=customer, at=when.isoformat()))


def doctor_lines(settings: Any) -> list[str]:
    """What ``posventa doctor`` adds: shop policy and brand settings still at their shipped placeholders,
    journeys with unpublished changes, journeys not running."""
    from infra.settings import Settings
    from posventa import placeholders

    lines: list[str] = []
    by_file: dict[str, list[str]] = {}
    for p in placeholders.marked(Path(settings.journeys_dir) / "templates"):
        by_file.setdefault(str(p.path), []).append(p.name)
    for path, names in by_file.items():
        lines.append(t("doctor_placeholder", path=path, names=", ".join(names), n=len(names)))
    defaults = Settings.model_fields
    for name in ("email_from", "email_from_name"):
        value = getattr(settings, name)
        if value == defaults[name].default:
            lines.append(t("doctor_brand", setting=f"POSVENTA_{name.upper()}", value=value))
    base = settings.public_base_url
    if any(host in base for host in ("://127.", "://localhost", "://0.0.0.0")):
        lines.append(t("doctor_links", value=base))
    if not settings.shop_url:
        lines.append(t("doctor_shop_url", value=base))
    try:
        store = _store(settings, required=False)
        if store is not None:
            from app.control import journey_controls
            from app.publish import plan_changes

            pending = plan_changes(store, _book(settings, store)).pending
            never = [d.journey_id for d in pending if d.status == "new"]
            changed = [d.journey_id for d in pending if d.status != "new"]
            if never:
                with store.read() as tx:
                    first_run = settings.auto_publish_first_run and not tx.journeys.any_published()
                # on a database where nothing was ever published, the first process publishes them all
                key = "doctor_first_run" if first_run else "doctor_never_published"
                lines.append(t(key, names=", ".join(never)))
            if changed:
                lines.append(t("doctor_unpublished", names=", ".join(changed)))
            held = [f"{j} ({c.state})" for j, c in journey_controls(store).items() if c.state != "running"]
            if held:
                lines.append(t("doctor_held", names=", ".join(held)))
    except PosventaError:
        pass  # the database or journey lines above already said what is wrong
    return lines


# --- registration -----------------------------------------------------------------------------------------
def _message_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journey")
    p.add_argument("step")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--customer", help=t("arg_customer"))
    who.add_argument("--sample", action="store_true", help=t("arg_sample"))
    p.add_argument("--locale", choices=["es", "en"])


def _preview_args(p: argparse.ArgumentParser) -> None:
    _message_args(p)
    p.add_argument("-o", "--output", type=Path, help=t("arg_output"))
    p.add_argument("--open", action="store_true", help=t("arg_open"))
    p.add_argument("--format", choices=["text", "json"], default="text")


def _send_test_args(p: argparse.ArgumentParser) -> None:
    _message_args(p)
    p.add_argument("--to", required=True, help=t("arg_to"))


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journeys", nargs="*")
    p.add_argument("--format", choices=["text", "json"], default="text")


def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journeys", nargs="*")


def _migrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journey")
    p.add_argument("--to", required=True, help=t("arg_version"))
    p.add_argument("--map", action="append", metavar="OLD=NEW", help=t("arg_map"))
    p.add_argument("--dry-run", action="store_true", help=t("arg_dry_run"))
    p.add_argument("--rerun", action="store_true", help=t("arg_rerun"))
    p.add_argument("--show", type=int, default=10, help=t("arg_show"))


def _pause_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journey")
    p.add_argument("--reason", help=t("arg_reason"))


def _resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journey")


def _stop_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("journey")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--drain", action="store_true", help=t("arg_drain"))
    how.add_argument("--exit", action="store_true", help=t("arg_exit"))
    p.add_argument("--reason", help=t("arg_reason"))


def _environment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("mark", nargs="?", choices=["production", "development"])
    p.add_argument("--yes", action="store_true", help=t("arg_yes"))


_Command = tuple[str, Callable[[argparse.Namespace], int], str, Callable[[argparse.ArgumentParser], None]]
COMMANDS: list[_Command] = [
    ("preview", cmd_preview, "help_preview", _preview_args),
    ("send-test", cmd_send_test, "help_send_test", _send_test_args),
    ("plan", cmd_plan, "help_plan", _plan_args),
    ("publish", cmd_publish, "help_publish", _publish_args),
    ("migrate", cmd_migrate, "help_migrate", _migrate_args),
    ("pause", cmd_state, "help_pause", _pause_args),
    ("resume", cmd_state, "help_resume", _resume_args),
    ("stop", cmd_state, "help_stop", _stop_args),
    ("environment", cmd_environment, "help_environment", _environment_args),
]


def register(subparsers: Any) -> None:
    """Add the marketer commands to the ``posventa`` command (``posventa.commands`` entry point)."""
    for name, func, helptext, arguments in COMMANDS:
        p = subparsers.add_parser(name, help=t(helptext))
        arguments(p)
        p.set_defaults(func=func)
