"""Build the :class:`~infra.report.model.Report` from the database: run the metric queries, put the funnel
rows in plan order, draw each journey's graph with its counts, compare split arms with the holdout.

``build_report`` is the one entry point (the CLI, the nightly artifact and the admin pages call it);
``parse_period`` turns ``--since`` / ``--until`` text into instants.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, time
from queue import Queue
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from infra.db import metrics
from infra.db.metrics import HOLDOUT, Scope
from infra.db.metrics.snapshot import shared_snapshot
from infra.report.model import (
    DiagramEdge,
    DiagramNode,
    JourneyFunnel,
    Period,
    Report,
    ReportError,
    SplitResult,
    StepFunnel,
)
from posventa.errors import PosventaError
from posventa.graph import after_split
from posventa.graph import edges as plan_edges
from posventa.plan import ActionStep, BranchStep, JourneyPlan, SendStep, SplitStep, Step, WaitForStep
from posventa.timeutil import zone

#: Step types that leave a ledger row, so the funnel has numbers for them.
LEDGER_STEP_TYPES = frozenset({"send", "action"})
END = "END"  # posventa.graph.edges' name for the end of a journey


def parse_period(
    since: str | None, until: str | None, tz: str = "UTC"
) -> tuple[datetime | None, datetime | None]:
    """``--since`` / ``--until`` as given on a command line: a day (``2026-03-01``, its start in ``tz``) or
    an ISO 8601 instant with an offset. ``until`` is exclusive: ``--until 2026-04-01`` ends with March."""

    def one(text: str | None, flag: str) -> datetime | None:
        if text is None or not text.strip():
            return None
        raw = text.strip()
        problem = (
            f"{flag} {raw!r} is neither a day (2026-03-01) nor an instant with its offset "
            "(2026-03-01T09:00:00+01:00)"
        )
        try:
            if len(raw) == len("2026-03-01"):
                return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=zone(tz)).astimezone(UTC)
            found = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ReportError(problem) from exc
        if found.tzinfo is None or found.utcoffset() is None:
            raise ReportError(problem)
        return found.astimezone(UTC)

    return one(since, "--since"), one(until, "--until")


def build_report(
    s: Session,
    *,
    journey: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    plans: Mapping[str, JourneyPlan] | None = None,
    churn_window_days: int = metrics.DEFAULT_CHURN_WINDOW_DAYS,
    comments: int = 10,
    parallel: bool = False,
) -> Report:
    """The report for enrollments that entered in [``since``, ``until``) (NPS answers, deliveries, codes
    and tickets of that period; see each metric), for one ``journey`` or all.

    ``plans`` (the runtime's loaded journeys) give step order, names and the diagrams; without them the
    most recently stored plan of each journey is used. Raises :class:`ReportError` for a period that is
    empty or not aware, or a journey nobody knows.

    ``parallel``: on PostgreSQL, run the metric queries at the same time on two more connections of the
    session's engine that share one snapshot, so the numbers agree as if one transaction had read them.
    Those connections do not see this session's uncommitted writes: for callers that own their read (the
    CLI, the nightly artifact, the admin pages). Without it, or on SQLite, every query runs on ``s``.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    for name, value in (("since", since), ("until", until), ("now", now)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ReportError(f"{name} must be an aware datetime (with a time zone)")
    if since is not None and until is not None and since >= until:
        raise ReportError(
            f"the period is empty: since ({since.isoformat()}) is not before until ({until.isoformat()})"
        )
    if churn_window_days < 1:
        raise ReportError(f"the churn window must be at least one day, not {churn_window_days}")
    all_plans = dict(plans) if plans is not None else _stored_plans(s)
    if journey is not None and journey not in all_plans and journey not in metrics.known_journeys(s):
        known = ", ".join(sorted(set(all_plans) | metrics.known_journeys(s))) or "none"
        raise ReportError(f"unknown journey {journey!r} (known: {known})")
    # "as of" the end of the period, or now when the period runs into the future (--until next month)
    scope = Scope(journey, since, until, min(until, now).astimezone(UTC) if until is not None else now)
    if journey is not None:
        all_plans = {j: p for j, p in all_plans.items() if j == journey}

    by_variant = {j: after_split(p) for j, p in all_plans.items()}
    parallel = parallel and _shareable(s) is not None
    funnel_queries = metrics.step_funnel_queries(scope, PARALLEL_SESSIONS if parallel else 1)
    queries: dict[str, Callable[[Session], Any]] = {  # the slowest first: they start while the rest run
        **{f"steps.{name}": query for name, query in funnel_queries.items()},
        "nps": lambda x: metrics.nps(x, scope, comments=comments),
        "repeat_purchase": lambda x: metrics.repeat_purchase(x, scope),
        "totals": lambda x: metrics.journey_totals(x, scope),
        "splits": lambda x: metrics.splits(x, scope),
        "on_time_delivery": lambda x: metrics.on_time_delivery(x, scope),
        "referral": lambda x: metrics.referral(x, scope),
        "churn": lambda x: metrics.churn(x, scope, churn_window_days),
        "positions": lambda x: metrics.positions(x, scope),
        "complaints": lambda x: metrics.complaints(x, scope),
    }
    found = _run(s, queries, parallel)
    steps = metrics.fold_step_funnel({name: found[f"steps.{name}"] for name in funnel_queries}, by_variant)
    steps_by_journey: dict[str, list[StepFunnel]] = defaultdict(list)
    for row in steps:
        steps_by_journey[row.journey_id].append(row)
    totals = found["totals"]
    journeys = sorted(set(all_plans) | set(totals) | set(steps_by_journey))
    funnel = tuple(
        _journey(j, all_plans.get(j), totals.get(j), steps_by_journey.get(j, []), found["positions"])
        for j in journeys
    )
    splits = tuple(_split(j, arms, all_plans.get(j)) for j, arms in sorted(found["splits"].items()))
    return Report(
        generated_at=now,
        period=Period(since, until, scope.as_of),
        journey=journey,
        funnel=funnel,
        splits=splits,
        nps=found["nps"],
        on_time_delivery=found["on_time_delivery"],
        repeat_purchase=found["repeat_purchase"],
        churn=found["churn"],
        referral=found["referral"],
        complaints=found["complaints"],
        deferred=sum(st.deferred for j in funnel for st in j.steps),
    )


#: Connections a parallel report uses on PostgreSQL: the machine this was measured on has two cores, and
#: the funnel's own query already runs with PostgreSQL's parallel workers.
PARALLEL_SESSIONS = 2


def _shareable(s: Session) -> Engine | None:
    """The engine behind ``s`` when its connections can share a snapshot (PostgreSQL, not a session bound
    to one connection); None otherwise."""
    bind = s.get_bind()
    return bind if isinstance(bind, Engine) and bind.dialect.name == "postgresql" else None


def _run(s: Session, queries: Mapping[str, Callable[[Session], Any]], parallel: bool) -> dict[str, Any]:
    """Each metric query's result by name: in order on ``s``; or, with ``parallel`` on PostgreSQL, at the
    same time on sessions that share one snapshot (``infra.db.metrics.snapshot``), each session used by
    one thread at a time.

    ``s`` keeps its connection while those sessions take theirs: two reports doing that at once could each
    hold one and wait for the other's (the pool's hold-and-wait, found in review). One parallel report at
    a time per process; a report that finds one running runs on ``s`` alone."""
    engine = _shareable(s) if parallel else None
    if engine is None or not _ONE_PARALLEL_REPORT.acquire(blocking=False):
        return {name: query(s) for name, query in queries.items()}
    try:
        return _run_parallel(engine, queries)
    finally:
        _ONE_PARALLEL_REPORT.release()


_ONE_PARALLEL_REPORT = threading.BoundedSemaphore(1)


def _run_parallel(bind: Engine, queries: Mapping[str, Callable[[Session], Any]]) -> dict[str, Any]:
    with shared_snapshot(bind, PARALLEL_SESSIONS) as sessions:
        free: Queue[Session] = Queue()
        for session in sessions:
            free.put(session)

        def on_free_session(query: Callable[[Session], Any]) -> Any:
            session = free.get()
            try:
                return query(session)
            finally:
                free.put(session)

        with ThreadPoolExecutor(len(sessions), thread_name_prefix="report") as pool:
            futures = {name: pool.submit(on_free_session, query) for name, query in queries.items()}
            return {name: future.result() for name, future in futures.items()}


def _stored_plans(s: Session) -> dict[str, JourneyPlan]:
    out = {}
    for journey, body in metrics.latest_plans(s).items():
        try:
            out[journey] = JourneyPlan.from_json(body)
        except (PosventaError, KeyError, TypeError, ValueError):
            continue  # an old or partial stored plan: the journey still gets its numbers, not its drawing
    return out


def _journey(
    journey_id: str,
    plan: JourneyPlan | None,
    totals: metrics.funnel.JourneyTotals | None,
    rows: list[StepFunnel],
    here: Mapping[tuple[str, str], int],
) -> JourneyFunnel:
    order = {sid: i for i, sid in enumerate(plan.order)} if plan else {}
    types = {sid: spec.TYPE for sid, spec in plan.steps.items()} if plan else {}
    rows = sorted(
        (replace(r, type=types.get(r.step_id)) for r in rows),
        key=lambda r: (order.get(r.step_id, len(order)), r.step_id, r.variant or ""),
    )
    reached: dict[str, int] = defaultdict(int)
    for r in rows:
        reached[r.step_id] += r.entered
    nodes: tuple[DiagramNode, ...] = ()
    edges: tuple[DiagramEdge, ...] = ()
    if plan is not None:
        nodes = tuple(
            DiagramNode(
                sid,
                spec.TYPE,
                _detail(spec),
                reached.get(sid, 0) if spec.TYPE in LEDGER_STEP_TYPES else None,
                here.get((journey_id, sid), 0),
            )
            for sid, spec in ((sid, plan.steps[sid]) for sid in plan.order)
        )
        edges = _edges(plan)
    return JourneyFunnel(
        journey_id=journey_id,
        name=plan.name if plan else None,
        entered=totals.entered if totals else 0,
        converted=totals.converted if totals else 0,
        revenue=totals.revenue if totals else 0.0,
        statuses=totals.statuses if totals else {},
        steps=tuple(rows),
        nodes=nodes,
        edges=edges,
    )


def _edges(plan: JourneyPlan) -> tuple[DiagramEdge, ...]:
    """The plan's arrows; a branch's cases (its first arrows, in order) by number, the condition as the
    title — a raw Jinja expression is no label."""
    out: list[DiagramEdge] = []
    cases: dict[str, int] = defaultdict(int)
    for a, b, text in plan_edges(plan):
        spec = plan.steps.get(a)
        if isinstance(spec, BranchStep) and cases[a] < len(spec.cases):
            cases[a] += 1
            out.append(DiagramEdge(a, b, condition=cases[a], title=text))
        else:
            out.append(DiagramEdge(a, b, text))
    return tuple(out)


def _detail(spec: Step) -> str:
    if isinstance(spec, SendStep):
        return spec.template
    if isinstance(spec, ActionStep):
        return spec.action
    if isinstance(spec, WaitForStep):
        return spec.event
    if isinstance(spec, SplitStep):
        return " / ".join(v.name for v in spec.variants)
    return ""


def _split(journey_id: str, arms: Mapping[str, Any], plan: JourneyPlan | None) -> SplitResult:
    holdout = arms.get(HOLDOUT)
    variants = tuple(arm.against(holdout) for name, arm in sorted(arms.items()) if name != HOLDOUT)
    step_id = None
    if plan is not None:
        names = set(arms) - {HOLDOUT}
        for sid in plan.order:
            spec = plan.steps[sid]
            if isinstance(spec, SplitStep) and names <= {v.name for v in spec.variants}:
                step_id = sid
                break
    return SplitResult(journey_id, step_id, holdout, variants)
