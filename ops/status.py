"""``posventa status``: is Posventa keeping up? One line per figure (or ``--format json``), exit 1 when not.

* **The due backlog** (from the database): enrollments due now and how long the oldest has waited. Over
  ``--max-backlog-minutes`` (default 60) is unhealthy: sweeps are not keeping up, or not running.
* **The scheduler** (from the Prefect API, ``POSVENTA_PREFECT_API_URL`` or ``PREFECT_API_URL``): the last
  *completed* ``tick`` and ``nightly`` runs. While a deployment's schedule is active, no completed run for
  twice its period (at least the period plus a minute: a slow run, a worker's polling) is unhealthy —
  the scheduler creates no runs, no worker runs them, or every run fails (the last run's state says which).
  A paused schedule is reported, not judged: someone paused it. Without a Prefect API: "no Prefect API
  configured" (embedded mode has no scheduler).
* **Sends** (from the ledger): ``unknown`` ones awaiting reconciliation and ``failed`` ones, with the most
  frequent reasons. More than ``--max-failed-sends`` (10) failed, or ``--max-unknown-sends`` (10) left
  unknown, within the last ``--sends-window-minutes`` (60) is unhealthy: sends are failing now (a revoked
  key, a provider outage). Fewer, or older ones, are reported, not judged: ``posventa retry`` decides.
  Except an authentication or authorization rejection (SendGrid's 401 / 403, a failed send whose reason
  starts ``401:`` or ``403:``): a revoked key or a lost permission fails every send, so one such failure
  within the window is unhealthy (``provider_auth_rejected``), whatever the limit — until a send is
  accepted after it (the key was fixed).

``posventa doctor`` runs the same scheduler check (:func:`scheduler_checks`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from posventa.i18n import Catalogue

SCHEDULED = ("tick", "nightly")
DEFAULT_MAX_BACKLOG_MINUTES = 60
DEFAULT_MAX_RECENT_SENDS = 10
DEFAULT_SENDS_WINDOW_MINUTES = 60
MIN_SLACK = timedelta(minutes=1)
#: A failed send's reason when SendGrid refused the key (``infra.email.sendgrid_sender``: "401: …").
AUTH_PREFIXES = ("401:", "403:")
AUTH_REJECTED = re.compile(r"^(401|403):")

TEXT = Catalogue(
    {
        "help_status": {
            "en": "is Posventa keeping up? due backlog, last tick and nightly, sends awaiting reconciliation",
            "es": "¿va Posventa al día? pendientes, último tick y nocturno, envíos por conciliar",
        },
        "help_format": {"en": "output format", "es": "formato de salida"},
        "help_max_backlog": {
            "en": "unhealthy when the oldest due enrollment waited longer (minutes)",
            "es": "no saludable si la inscripción pendiente más antigua espera más (minutos)",
        },
        "help_max_failed": {
            "en": "unhealthy when more sends than this failed within the window",
            "es": "no saludable si fallan más envíos que estos dentro de la ventana",
        },
        "help_max_unknown": {
            "en": "unhealthy when more sends than this were left unknown within the window",
            "es": "no saludable si quedan más envíos sin confirmar que estos dentro de la ventana",
        },
        "help_window": {
            "en": "the window for --max-failed-sends and --max-unknown-sends (minutes)",
            "es": "la ventana de --max-failed-sends y --max-unknown-sends (minutos)",
        },
        "recent": {
            "en": "{n} in the last {window}, limit {limit}",
            "es": "{n} en los últimos {window}, límite {limit}",
        },
        "title": {"en": "Posventa status at {at} UTC", "es": "Estado de Posventa a las {at} UTC"},
        "due": {"en": "due now: {n} enrollments", "es": "pendientes ahora: {n} inscripciones"},
        "oldest": {
            "en": "oldest due enrollment: waiting {age} (limit {limit} min)",
            "es": "inscripción pendiente más antigua: espera desde hace {age} (límite {limit} min)",
        },
        "no_prefect": {
            "en": "scheduler: no Prefect API configured (POSVENTA_PREFECT_API_URL / PREFECT_API_URL)",
            "es": "planificador: no hay API de Prefect configurada "
            "(POSVENTA_PREFECT_API_URL / PREFECT_API_URL)",
        },
        "unreachable": {
            "en": "scheduler: Prefect API {url} unreachable: {error}",
            "es": "planificador: la API de Prefect {url} no responde: {error}",
        },
        "not_deployed": {
            "en": "{name}: not deployed on {url} (prefect deploy --all)",
            "es": "{name}: no está desplegado en {url} (prefect deploy --all)",
        },
        "paused": {
            "en": "{name}: schedule paused or inactive; last completed {last}",
            "es": "{name}: programación pausada o inactiva; última ejecución completada {last}",
        },
        "scheduled": {
            "en": "{name}: last completed {last} (every {period}; alarm after {window})",
            "es": "{name}: última ejecución completada {last} (cada {period}; alarma tras {window})",
        },
        "latest": {
            "en": "latest {name} run: {state} {message}",
            "es": "última ejecución de {name}: {state} {message}",
        },
        "ago": {"en": "{age} ago", "es": "hace {age}"},
        "never": {"en": "never (deployed {age} ago)", "es": "nunca (desplegado hace {age})"},
        "unknown_sends": {
            "en": "sends awaiting reconciliation (unknown): {n}",
            "es": "envíos por conciliar (unknown): {n}",
        },
        "failed_sends": {"en": "failed sends: {n}", "es": "envíos fallidos: {n}"},
        "auth_rejected": {
            "en": "the email provider rejected {n} sends as unauthorized (401/403) in the last {window}: "
            "the API key is revoked or lacks the Mail Send permission (POSVENTA_SENDGRID_API_KEY)",
            "es": "el proveedor de correo rechazó {n} envíos por falta de autorización (401/403) en los "
            "últimos {window}: la clave de API está revocada o no tiene el permiso Mail Send "
            "(POSVENTA_SENDGRID_API_KEY)",
        },
        "healthy": {"en": "healthy", "es": "saludable"},
        "unhealthy": {"en": "NOT healthy: {problems}", "es": "NO saludable: {problems}"},
    }
)
t = TEXT.t


@dataclass
class Line:
    """One figure: ``ok`` True (✓), False (✗: makes the exit status 1) or None (information: !/·)."""

    ok: bool | None
    text: str
    problem: str | None = None

    def render(self) -> str:
        mark = {True: "✓", False: "✗", None: "!"}[self.ok]
        return f"{mark} {self.text}"


@dataclass
class Report:
    at: datetime
    lines: list[Line] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [line.problem or line.text for line in self.lines if line.ok is False]

    @property
    def healthy(self) -> bool:
        return not self.problems


def human(delta: timedelta) -> str:
    """``45 s``, ``12 min``, ``3 h 12 min``, ``2 d 4 h``."""
    s = max(0, int(delta.total_seconds()))
    if s < 120:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


# --- the database ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendLimits:
    """More than ``failed`` failed sends, or ``unknown`` unknown ones, within ``window`` is unhealthy."""

    failed: int = DEFAULT_MAX_RECENT_SENDS
    unknown: int = DEFAULT_MAX_RECENT_SENDS
    window: timedelta = timedelta(minutes=DEFAULT_SENDS_WINDOW_MINUTES)


def database_lines(
    store: Any, now: datetime, max_backlog: timedelta, limits: SendLimits | None = None
) -> tuple[list[Line], list[Line], dict[str, Any]]:
    """The backlog lines, the sends lines and their figures."""
    limits = limits or SendLimits()
    with store.read() as tx:
        due, oldest = tx.health.backlog(now)
        counts = tx.health.ledger_counts(("unknown", "failed"))
        recent = tx.health.ledger_counts(("unknown", "failed"), since=now - limits.window)
        failed_reasons = tx.health.reasons(("failed",), limit=20)
        recent_reasons = tx.health.reasons(("failed",), since=now - limits.window, limit=200)
        # A send the provider accepted after the last 401/403: the key works again (fixed or rotated).
        last_rejected = tx.health.latest("failed", reason_prefixes=AUTH_PREFIXES)
        last_sent = tx.health.latest("sent")
    auth_rejected = sum(n for *_, reason, n in recent_reasons if AUTH_REJECTED.match(reason or ""))
    if last_rejected is not None and last_sent is not None and last_sent > last_rejected:
        auth_rejected = 0
    age = now - oldest if oldest is not None else timedelta(0)
    backlog = [Line(True, t("due", n=due))]
    if oldest is not None:
        limit = int(max_backlog.total_seconds() // 60)
        text = t("oldest", age=human(age), limit=limit)
        backlog.append(Line(age <= max_backlog, text, problem="backlog_too_old"))
    grouped: dict[str, int] = {}
    for _, _, _, reason, n in failed_reasons:
        grouped[reason or "?"] = grouped.get(reason or "?", 0) + n
    top = sorted(grouped.items(), key=lambda x: -x[1])
    window = f"{int(limits.window.total_seconds() // 60)} min"

    def judged(status: str, text: str, limit: int) -> Line:
        if recent[status]:
            text += f" ({t('recent', n=recent[status], window=window, limit=limit)})"
        if recent[status] > limit:
            return Line(False, text, problem=f"{status}_sends")
        return Line(None if counts[status] else True, text)

    failed = t("failed_sends", n=counts["failed"])
    failed_line = judged("failed", failed, limits.failed)
    if top:
        failed_line.text += " — " + ", ".join(f"{r} ×{n}" for r, n in top[:3])
    sends = [judged("unknown", t("unknown_sends", n=counts["unknown"]), limits.unknown), failed_line]
    if auth_rejected:  # systemic: every send will fail the same way until someone fixes the key
        text = t("auth_rejected", n=auth_rejected, window=window)
        sends.append(Line(False, text, problem="provider_auth_rejected"))
    data = {
        "backlog": {
            "due": due,
            "oldest_due_at": oldest.isoformat() if oldest else None,
            "oldest_age_seconds": int(age.total_seconds()),
            "max_age_seconds": int(max_backlog.total_seconds()),
        },
        "sends": {
            **counts,
            "failed_reasons": [{"reason": r, "n": n} for r, n in top],
            "recent": {
                **recent,
                "auth_rejected": auth_rejected,
                "window_seconds": int(limits.window.total_seconds()),
            },
            "limits": {"failed": limits.failed, "unknown": limits.unknown},
        },
    }
    return backlog, sends, data


# --- the Prefect API ---------------------------------------------------------------------------------------


def prefect_api_url() -> str | None:
    from infra.settings import get_settings

    return get_settings().prefect_api_url or os.environ.get("PREFECT_API_URL") or None


def scheduler_checks(api_url: str | None, now: datetime) -> tuple[list[Line], dict[str, Any]]:
    """The scheduler lines of ``status`` and ``doctor``: the last completed tick and nightly."""
    if not api_url:
        return [Line(None, t("no_prefect"))], {"configured": False}
    from prefect.client.orchestration import SyncPrefectClient

    data: dict[str, Any] = {"configured": True, "api_url": api_url}
    lines: list[Line] = []
    try:
        with SyncPrefectClient(api_url) as client:
            down = client.api_healthcheck()  # returns the connection error instead of raising it
            if down is not None:
                raise down
            for name in SCHEDULED:
                found, info = _deployment(client, name, now, api_url)
                lines += found
                data[name] = info
    except Exception as exc:  # the API is down or refuses us: the scheduler cannot be vouched for
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Line(False, t("unreachable", url=api_url, error=error), problem="prefect_unreachable")], data
    return lines, data


def _deployment(client: Any, name: str, now: datetime, url: str) -> tuple[list[Line], dict[str, Any]]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(f"{name}/{name}")
    except ObjectNotFound:
        return [Line(False, t("not_deployed", name=name, url=url), problem=f"{name}_not_deployed")], {
            "deployed": False
        }

    def runs(*states: StateType, sort: FlowRunSort, limit: int) -> list[Any]:
        found: list[Any] = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states)))
            ),
            sort=sort,
            limit=limit,
        )
        return found

    completed = runs(StateType.COMPLETED, sort=FlowRunSort.END_TIME_DESC, limit=1)
    final = (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
    latest = runs(*final, sort=FlowRunSort.END_TIME_DESC, limit=1)
    upcoming = runs(StateType.SCHEDULED, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=2)
    active = not deployment.paused and any(s.active for s in deployment.schedules)
    period = _period(deployment, upcoming)
    last_at = completed[0].end_time if completed else None
    since = now - (last_at or deployment.created or now)
    last = t("ago", age=human(since)) if last_at else t("never", age=human(since))
    info: dict[str, Any] = {
        "deployed": True,
        "schedule_active": active,
        "period_seconds": int(period.total_seconds()) if period else None,
        "last_completed_at": last_at.isoformat() if last_at else None,
        "seconds_since": int(since.total_seconds()),
    }
    lines = []
    if not active or period is None:
        lines.append(Line(None, t("paused", name=name, last=last)))
    else:
        window = max(2 * period, period + MIN_SLACK)
        info["alarm_after_seconds"] = int(window.total_seconds())
        text = t("scheduled", name=name, last=last, period=human(period), window=human(window))
        lines.append(Line(since <= window, text, problem=f"{name}_stalled"))
    if latest and (not completed or latest[0].id != completed[0].id):
        run = latest[0]
        state = run.state.name if run.state else "?"
        message = (run.state.message or "")[:160] if run.state else ""
        info["latest"] = {"state": state, "message": message, "name": run.name}
        lines.append(Line(None, t("latest", name=name, state=state, message=message)))
    return lines, info


def _period(deployment: Any, upcoming: list[Any]) -> timedelta | None:
    """The schedule's period: the gap between the next two scheduled runs (any schedule kind), else an
    interval schedule's interval."""
    if len(upcoming) == 2 and upcoming[0].expected_start_time and upcoming[1].expected_start_time:
        gap: timedelta = upcoming[1].expected_start_time - upcoming[0].expected_start_time
        if gap > timedelta(0):
            return gap
    for s in deployment.schedules:
        interval = getattr(s.schedule, "interval", None)
        if s.active and isinstance(interval, timedelta):
            return interval
    return None


# --- the command -------------------------------------------------------------------------------------------


def status(
    store: Any, api_url: str | None, now: datetime, max_backlog: timedelta, limits: SendLimits | None = None
) -> Report:
    backlog, sends, data = database_lines(store, now, max_backlog, limits)
    scheduler, prefect = scheduler_checks(api_url, now)
    return Report(at=now, lines=backlog + scheduler + sends, data={**data, "prefect": prefect})


def cmd_status(args: argparse.Namespace) -> int:
    from ops.cli import _store

    now = datetime.now(UTC)
    limits = SendLimits(
        args.max_failed_sends, args.max_unknown_sends, timedelta(minutes=args.sends_window_minutes)
    )
    report = status(_store(), prefect_api_url(), now, timedelta(minutes=args.max_backlog_minutes), limits)
    if args.format == "json":
        out = {"at": now.isoformat(), "healthy": report.healthy, "problems": report.problems, **report.data}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(t("title", at=f"{now:%Y-%m-%d %H:%M}"))
        for line in report.lines:
            print(line.render())
        print(t("healthy") if report.healthy else t("unhealthy", problems=", ".join(report.problems)))
    return 0 if report.healthy else 1


def register(subparsers: Any) -> None:
    """``posventa status`` (the ``posventa.commands`` entry point ``status``)."""
    p = subparsers.add_parser("status", help=t("help_status"))
    p.add_argument("--format", choices=["text", "json"], default="text", help=t("help_format"))
    p.add_argument(
        "--max-backlog-minutes", type=int, default=DEFAULT_MAX_BACKLOG_MINUTES, help=t("help_max_backlog")
    )
    p.add_argument(
        "--max-failed-sends", type=int, default=DEFAULT_MAX_RECENT_SENDS, help=t("help_max_failed")
    )
    p.add_argument(
        "--max-unknown-sends", type=int, default=DEFAULT_MAX_RECENT_SENDS, help=t("help_max_unknown")
    )
    p.add_argument(
        "--sends-window-minutes", type=int, default=DEFAULT_SENDS_WINDOW_MINUTES, help=t("help_window")
    )
    p.set_defaults(func=cmd_status)
